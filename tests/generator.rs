//! The benchmark tree generator: a generated tree read through the
//! real-sysfs backend (nodedev:///system?root=) describes exactly the host
//! the simulation runs from the same description.

use nodedev::uri::open;
use std::path::PathBuf;
use std::process::Command;

#[test]
fn a_generated_tree_reads_like_its_simulated_host() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tmp/generator");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nodedev-gen-sysfs")).arg("150").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let uri = format!("nodedev:///system?root={}&statedir={}/state", dir.display(), dir.display());
    let (tree, _) = open(Some(&uri), true).unwrap();
    let (sim, _) = open(Some(&format!("test://{}/host.json", dir.display())), true).unwrap();
    let devices = tree.list().unwrap();
    assert_eq!(devices.len(), 150);
    assert_eq!(devices, sim.list().unwrap());
    let (mut vfs, mut on_vfio, mut shared_groups) = (0, 0, 0);
    for d in &devices {
        let (a, b) = (tree.device_info(d).unwrap(), sim.device_info(d).unwrap());
        assert_eq!(a, b, "{d}");
        assert_eq!(tree.xml(d).unwrap(), sim.xml(d).unwrap(), "{d}");
        vfs += usize::from(a.physfn.is_some());
        on_vfio += usize::from(a.driver.as_deref() == Some("vfio-pci"));
        shared_groups += usize::from(a.group_members.len() > 1);
        // The files other tools need are there too.
        for f in ["config", "resource", "irq", "modalias"] {
            assert!(dir.join("sys/bus/pci/devices").join(d.to_string()).join(f).exists(), "{d}/{f}");
        }
    }
    assert!(
        vfs > 100 && on_vfio > 10 && shared_groups >= 2,
        "mix: {vfs} VFs, {on_vfio} on vfio-pci, {shared_groups} in shared groups"
    );
    assert!(!dir.join("state").exists(), "a read-only open created the state dir");
}
