//! Findings of the second attack review of this session's landings, each
//! with the test that failed before its fix.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nodedev-review2-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn nodedev(uri: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nodedev")).arg("-c").arg(uri).args(args).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// `nodedev apply` applies the PCI definitions first; when the mdev
/// definitions directory then cannot be listed, what apply already did to
/// devices is still reported (it printed only the mdev error, and a device
/// moved to its stub went unreported), and the run fails.
#[test]
fn apply_reports_the_devices_it_moved_when_the_mdev_definitions_cannot_be_listed() {
    let dir = tempdir("apply");
    let uri = format!("test:///default?confdir={0}&statedir={0}/state", dir.display());
    let (code, text) = nodedev(&uri, &["detach", "0000:03:01.0", "--persistent"]);
    assert_eq!(code, Some(0), "{text}");
    // A new process: a new simulated host, the device back on e1000.
    fs::remove_dir_all(dir.join("state")).unwrap();
    fs::write(dir.join("mdevctl.d"), "").unwrap();
    let (code, text) = nodedev(&uri, &["apply"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("0000:03:01.0: detached to vfio-pci from e1000"), "{text}");
    assert!(text.contains("mdev definitions not applied") && text.contains("mdevctl.d"), "{text}");
    assert!(text.contains("1 applied, 0 waiting, 1 not applied"), "{text}");
    fs::remove_dir_all(&dir).unwrap();
}

mod mdev_autostart {
    use nodedev::mdevctl::MdevDefinitions;
    use nodedev::state::StateStore;
    use nodedev::sysfs::sim::SimKernel;
    use nodedev::{AuthRequest, Error, Host, HostOptions, MdevConfig, MdevId, Operation, PciAddress};
    use std::path::Path;
    use std::sync::Arc;

    const IGPU: &str = "0000:00:02.0"; // test:///default's GVT-g parent
    const V4: &str = "i915-GVTg_V5_4";
    const V8: &str = "i915-GVTg_V5_8";
    const U2: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1002";

    fn host(sim: &Arc<SimKernel>, defs: &Path) -> Host {
        let options = HostOptions { mdev_definitions: Some(MdevDefinitions::new(defs)), ..HostOptions::default() };
        Host::new(sim.clone(), StateStore::memory(), options)
    }

    fn cfg(t: &str) -> MdevConfig {
        MdevConfig {
            parent: PciAddress::parse(IGPU).unwrap(),
            type_id: t.into(),
            uuid: Some(U2.into()),
            attrs: Vec::new(),
        }
    }

    /// The callback allowed autostart of the definition of one type; when
    /// another process redefines it with another type meanwhile, autostart
    /// is refused (it turned on autostart of a type nobody was asked about),
    /// as start already refuses.
    #[test]
    fn autostart_is_not_set_on_a_definition_redefined_while_the_callback_was_asked() {
        let dir = super::tempdir("autostart");
        let sim = Arc::new(SimKernel::builtin());
        let other = Arc::new(host(&sim, &dir));
        let h = host(&sim, &dir);
        let id = other.mdev_define(&cfg(V4), Some(false)).unwrap();
        let o = other.clone();
        h.set_authorizer(Some(Arc::new(move |r: &AuthRequest<'_>| {
            assert_eq!((r.operation, r.mdev_type), (Operation::MdevAutostart, Some(V4)));
            o.mdev_define(&cfg(V8), None).unwrap();
            true
        })));
        let e = h.mdev_set_autostart(&id, true).unwrap_err();
        assert!(matches!(&e, Error::OperationInvalid(m) if m.contains("redefined")), "{e}");
        let now = h.mdev(&MdevId { parent: id.parent, uuid: U2.into() }).unwrap();
        let def = now.definition.unwrap();
        assert_eq!((def.mdev_type.as_str(), def.autostart), (V8, false));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
