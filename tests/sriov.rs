//! SR-IOV provisioning on the simulated kernel: VFs straight onto a stub,
//! never bound to a host VF driver, all or nothing, removal rules.

use nodedev::capi::connect::{virConnectClose, virConnectOpen};
use nodedev::capi::error::{virGetLastError, virGetLastErrorMessage};
use nodedev::capi::nodedev::{virNodeDeviceFree, virNodeDeviceLookupByName};
use nodedev::capi::sriov::virNodeDeviceSetVFs;
use nodedev::state::StateStore;
use nodedev::sysfs::sim::SimKernel;
use nodedev::sysfs::HoldKind;
use nodedev::sysfs::Sysfs;
use nodedev::{AuthRequest, Error, Host, HostOptions, Operation, PciAddress, Policy, PrepareOptions, Stub};
use std::ffi::{CStr, CString};
use std::sync::{Arc, Mutex};

const PF: &str = "0000:04:00.0"; // igb, sriov_totalvfs 7, three igbvf VFs at start
const NIC: &str = "0000:03:01.0"; // e1000: not a PF

fn a(s: &str) -> PciAddress {
    PciAddress::parse(s).unwrap()
}

fn fresh() -> (Arc<SimKernel>, Host) {
    let sim = Arc::new(SimKernel::builtin());
    (sim.clone(), Host::new(sim.clone(), StateStore::memory(), HostOptions::default()))
}

fn autoprobe(sim: &SimKernel) -> String {
    sim.read(&format!("bus/pci/devices/{PF}/sriov_drivers_autoprobe")).unwrap().trim().to_string()
}

#[test]
fn provisioned_vfs_never_meet_the_host_vf_driver() {
    let (sim, host) = fresh();
    let vfs = host.set_vf_count(&a(PF), 4, Some(Stub::Vfio), false).unwrap();
    assert_eq!(vfs.len(), 4);
    for vf in &vfs {
        let vf = vf.to_string();
        assert_eq!(sim.driver_of(&vf).as_deref(), Some("vfio-pci"), "{vf}");
        // VFs 04:10.6 and up are new: vfio-pci is the only driver they ever had.
        if vf.as_str() > "0000:04:10.4" {
            assert_eq!(sim.bind_history(&vf), ["vfio-pci"], "{vf}");
        }
        let rec = host.state().get(&vf).unwrap().expect("a record per VF");
        assert_eq!((rec.original_driver, rec.stub.as_str()), (None, "vfio-pci"));
    }
    assert_eq!(autoprobe(&sim), "1", "autoprobe is put back");
    // The same request again changes nothing.
    let writes = sim.writes().len();
    assert_eq!(host.set_vf_count(&a(PF), 4, Some(Stub::Vfio), false).unwrap(), vfs);
    assert_eq!(sim.writes().len(), writes);
    // Removal: no record is left behind.
    assert!(host.set_vf_count(&a(PF), 0, None, false).unwrap().is_empty());
    assert!(host.virtual_functions(&a(PF)).unwrap().is_empty());
    assert!(host.state().list().unwrap().is_empty(), "{:?}", host.state().list());
}

#[test]
fn without_provisioning_the_host_vf_driver_takes_new_vfs() {
    // The contrast that makes the test above mean something.
    let (sim, _host) = fresh();
    sim.write(&format!("bus/pci/devices/{PF}/sriov_numvfs"), "0").unwrap();
    sim.write(&format!("bus/pci/devices/{PF}/sriov_numvfs"), "4").unwrap();
    assert_eq!(sim.bind_history("0000:04:10.6"), ["igbvf"]);
}

#[test]
fn driverless_vfs_and_a_pf_whose_autoprobe_was_off() {
    let (sim, host) = fresh();
    sim.write(&format!("bus/pci/devices/{PF}/sriov_drivers_autoprobe"), "0").unwrap();
    let vfs = host.set_vf_count(&a(PF), 2, None, false).unwrap();
    for vf in &vfs {
        assert_eq!(sim.driver_of(&vf.to_string()), None);
        assert!(host.state().get(&vf.to_string()).unwrap().is_none(), "no record for an untouched VF");
    }
    assert_eq!(autoprobe(&sim), "0", "autoprobe stays as it was");
    // Another driver with the same count recreates them on it, and so
    // does another count.
    let vfs = host.set_vf_count(&a(PF), 2, Some(Stub::Kvm), false).unwrap();
    assert!(vfs.iter().all(|v| sim.driver_of(&v.to_string()).as_deref() == Some("pci-stub")));
    assert_eq!(sim.bind_history("0000:04:10.2"), ["pci-stub"], "recreated driverless, then straight onto pci-stub");
    let vfs = host.set_vf_count(&a(PF), 3, Some(Stub::Kvm), false).unwrap();
    assert!(vfs.len() == 3 && vfs.iter().all(|v| sim.driver_of(&v.to_string()).as_deref() == Some("pci-stub")));
}

#[test]
fn vfs_in_use_are_not_removed_unless_forced() {
    let (sim, host) = fresh();
    let vfs = host.set_vf_count(&a(PF), 3, Some(Stub::Vfio), false).unwrap();
    host.prepare("vm1", &[vfs[1]], Stub::Vfio, PrepareOptions::default()).unwrap();
    let err = host.set_vf_count(&a(PF), 0, None, false).unwrap_err();
    assert!(
        matches!(&err, Error::OperationInvalid(m) if m.contains(&format!("{} is assigned to vm1", vfs[1])) && m.contains("FORCE")),
        "{err}"
    );
    assert_eq!(host.virtual_functions(&a(PF)).unwrap().len(), 3, "nothing removed");
    host.release("vm1", None).unwrap();
    // A VF detached from igbvf by hand: its record expects igbvf back.
    host.set_vf_count(&a(PF), 0, None, false).unwrap();
    sim.write(&format!("bus/pci/devices/{PF}/sriov_numvfs"), "2").unwrap();
    host.detach(&a("0000:04:10.0"), Stub::Vfio).unwrap();
    let err = host.set_vf_count(&a(PF), 0, None, false).unwrap_err();
    assert!(err.to_string().contains("0000:04:10.0 was detached from igbvf"), "{err}");
    // Forced: removed, and the records of the VFs that went are dropped.
    host.set_vf_count(&a(PF), 0, None, true).unwrap();
    assert!(host.state().list().unwrap().is_empty());
}

#[test]
fn a_vf_held_through_vfio_is_never_removed_even_forced() {
    let (sim, host) = fresh();
    let vfs = host.set_vf_count(&a(PF), 2, Some(Stub::Vfio), false).unwrap();
    sim.hold_vfio(&vfs[1].to_string(), 4242, "qemu-system-x86", HoldKind::Device, false).unwrap();
    let writes = sim.writes().len();
    for force in [false, true] {
        let err = host.set_vf_count(&a(PF), 0, None, force).unwrap_err();
        assert!(
            matches!(&err, Error::OperationInvalid(m) if m.contains("pid 4242 (qemu-system-x86)") && m.contains(&vfs[1].to_string())),
            "{err}"
        );
    }
    assert_eq!(sim.writes().len(), writes, "nothing written");
    assert_eq!(host.virtual_functions(&a(PF)).unwrap(), vfs);
    sim.release_holder(4242);
    host.set_vf_count(&a(PF), 0, None, false).unwrap();
    assert!(host.state().list().unwrap().is_empty());
}

// Removing VFs under a detach's safety and policy rules, and the message
// when a record cannot be dropped after the VFs went: tests/attack.rs
// (removing_vfs_checks_what_the_host_uses_like_a_detach, a_denied_pf_keeps_its_vfs,
// a_record_removal_failure_after_removing_vfs_says_the_vfs_are_gone).

#[test]
fn a_failure_half_way_removes_every_new_vf() {
    let (sim, host) = fresh();
    host.set_vf_count(&a(PF), 0, None, false).unwrap();
    sim.fail_writes("bus/pci/devices/0000:04:10.4/driver_override", None, libc::EIO, 1);
    let err = host.set_vf_count(&a(PF), 4, Some(Stub::Vfio), false).unwrap_err();
    assert!(err.to_string().contains("the VFs were removed again"), "{err}");
    assert!(host.virtual_functions(&a(PF)).unwrap().is_empty());
    assert!(host.state().list().unwrap().is_empty(), "{:?}", host.state().list());
    assert_eq!(autoprobe(&sim), "1");
    // None of them met igbvf on the way.
    for vf in ["0000:04:10.6", "0000:04:11.0"] {
        assert!(!sim.bind_history(vf).contains(&"igbvf".to_string()), "{vf}: {:?}", sim.bind_history(vf));
    }
}

#[test]
fn rules_checks_and_the_authorization_callback() {
    let (sim, host) = fresh();
    let err = host.set_vf_count(&a(NIC), 1, Some(Stub::Vfio), false).unwrap_err();
    assert!(matches!(&err, Error::Unsupported(m) if m.contains("not an SR-IOV physical function")), "{err}");
    let err = host.set_vf_count(&a(PF), 8, Some(Stub::Vfio), false).unwrap_err();
    assert!(matches!(&err, Error::InvalidArg(m) if m.contains("at most 7")), "{err}");

    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s = seen.clone();
    host.set_authorizer(Some(Arc::new(move |r: &AuthRequest<'_>| {
        s.lock().unwrap().push(format!("{:?} {} {}", r.operation, r.address, r.driver.unwrap_or("-")));
        false
    })));
    let writes = sim.writes().len();
    let err = host.set_vf_count(&a(PF), 2, Some(Stub::Vfio), false).unwrap_err();
    assert!(matches!(&err, Error::Denied(_)), "{err}");
    assert_eq!(*seen.lock().unwrap(), [format!("{:?} {PF} vfio-pci", Operation::Provision)]);
    assert_eq!(sim.writes().len(), writes);

    let locked = Host::new(
        sim.clone(),
        StateStore::memory(),
        HostOptions { policy: Policy::parse("lockdown yes", "p.conf").unwrap(), ..HostOptions::default() },
    );
    assert!(matches!(locked.set_vf_count(&a(PF), 2, None, false), Err(Error::Denied(m)) if m.contains("locked down")));
    // A deny rule for VFs: refused after creation, and nothing is left.
    host.set_authorizer(None);
    host.set_vf_count(&a(PF), 0, None, false).unwrap();
    let denied = Host::new(
        sim.clone(),
        StateStore::memory(),
        HostOptions { policy: Policy::parse("deny 8086:10ca", "p.conf").unwrap(), ..HostOptions::default() },
    );
    let err = denied.set_vf_count(&a(PF), 2, Some(Stub::Vfio), false).unwrap_err();
    assert!(matches!(&err, Error::Denied(m) if m.contains("deny rule")), "{err}");
    assert!(denied.virtual_functions(&a(PF)).unwrap().is_empty());
}

#[test]
fn the_c_call_checks_its_arguments() {
    let cstr = |s: &str| CString::new(s).unwrap();
    unsafe {
        let conn = virConnectOpen(cstr("test:///default").as_ptr());
        assert!(!conn.is_null());
        let pf = virNodeDeviceLookupByName(conn, cstr("pci_0000_04_00_0").as_ptr());
        assert!(!pf.is_null());
        let code = || (*virGetLastError()).code;
        let msg = || CStr::from_ptr(virGetLastErrorMessage()).to_string_lossy().into_owned();
        assert_eq!(virNodeDeviceSetVFs(std::ptr::null_mut(), 1, std::ptr::null(), 0), -1);
        assert_eq!(code(), 52, "VIR_ERR_INVALID_NODE_DEVICE: {}", msg());
        assert_eq!(virNodeDeviceSetVFs(pf, 1, cstr("vfio-pci").as_ptr(), 0), -1);
        assert!(code() == 8 && msg().contains("driverName") && msg().contains("\"none\""), "{}", msg());
        assert_eq!(virNodeDeviceSetVFs(pf, 1, std::ptr::null(), 1), -1);
        assert_eq!(code(), 8, "unknown flags: {}", msg());
        assert_eq!(virNodeDeviceSetVFs(pf, 70000, std::ptr::null(), 0), -1);
        assert_eq!(code(), 8, "{}", msg());
        assert_eq!(virNodeDeviceSetVFs(pf, 2, cstr("none").as_ptr(), 0), 2, "{}", msg());
        assert_eq!(virNodeDeviceSetVFs(pf, 3, std::ptr::null(), 0), 3, "{}", msg());
        assert_eq!(virNodeDeviceSetVFs(pf, 3, std::ptr::null(), 0), 3, "idempotent: {}", msg());
        assert_eq!(virNodeDeviceSetVFs(pf, 0, std::ptr::null(), 0), 0, "{}", msg());
        virNodeDeviceFree(pf);
        virConnectClose(conn);
    }
}

// ---- Persistent VF counts (issue 13, item 2) ----

fn confdir(tag: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("nodedev-sriov-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

fn with_definitions(sim: &Arc<SimKernel>, dir: &std::path::Path) -> Host {
    let options = HostOptions { definitions: Some(nodedev::persist::Definitions::new(dir)), ..HostOptions::default() };
    Host::new(sim.clone(), StateStore::memory(), options)
}

#[test]
fn a_persistent_vf_count_is_made_again_at_boot_straight_onto_the_stub() {
    let dir = confdir("boot");
    let sim = Arc::new(SimKernel::builtin());
    let host = with_definitions(&sim, &dir);
    let req = nodedev::StubRequest::from(Stub::Vfio);
    host.provision_vfs(&a(PF), 4, Some(&req), false).unwrap();
    host.define_vfs(&a(PF), 4, Some(&req)).unwrap();
    let def = host.persistent_vfs(&a(PF)).unwrap().unwrap();
    assert_eq!((def.count, def.driver.as_deref(), def.vendor, def.device), (4, Some("vfio"), 0x8086, 0x10c9));
    assert!(dir.join(format!("{PF}.vfs.json")).exists());
    // The device definitions do not mistake it for one of theirs.
    assert_eq!(nodedev::persist::Definitions::new(&dir).list().unwrap(), (Vec::new(), Vec::new()));

    // "Reboot": the PF comes up without VFs, igb bound (the rule runs on its bind event).
    let sim = Arc::new(SimKernel::builtin());
    sim.write(&format!("bus/pci/devices/{PF}/sriov_numvfs"), "0").unwrap();
    let history_before = sim.bind_history("0000:04:10.6");
    let host = with_definitions(&sim, &dir);
    let applied = host.apply_device(&a(PF)).unwrap();
    assert_eq!(applied.len(), 1);
    assert!(applied[0].done && applied[0].outcome == "4 VF(s) on vfio", "{applied:?}");
    let vfs = host.virtual_functions(&a(PF)).unwrap();
    assert_eq!(vfs.len(), 4);
    for vf in &vfs {
        let vf = vf.to_string();
        assert_eq!(sim.driver_of(&vf).as_deref(), Some("vfio-pci"), "{vf}");
    }
    assert_eq!(sim.bind_history("0000:04:10.6")[history_before.len()..], ["vfio-pci"], "igbvf never bound it");
    assert_eq!(autoprobe(&sim), "1");
    // apply (the boot unit) finds it done; another device's apply leaves it alone.
    let writes = sim.writes().len();
    assert!(host.apply().unwrap().iter().all(|x| x.done));
    assert!(host.apply_device(&a(NIC)).unwrap().is_empty());
    assert_eq!(sim.writes().len(), writes);
    // Count 0 removes the definition; the VFs stay until asked.
    host.define_vfs(&a(PF), 0, None).unwrap();
    assert!(host.persistent_vfs(&a(PF)).unwrap().is_none());
    assert_eq!(host.virtual_functions(&a(PF)).unwrap().len(), 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn persistent_vf_counts_are_checked_and_wait_for_the_pf_driver() {
    let dir = confdir("checks");
    let sim = Arc::new(SimKernel::builtin());
    let host = with_definitions(&sim, &dir);
    assert!(matches!(host.define_vfs(&a(NIC), 2, None), Err(Error::Unsupported(_))));
    assert!(matches!(host.define_vfs(&a(PF), 8, None), Err(Error::InvalidArg(m)) if m.contains("at most 7")));
    let bare = Host::new(sim.clone(), StateStore::memory(), HostOptions::default());
    assert!(matches!(bare.define_vfs(&a(PF), 2, None), Err(Error::Unsupported(m)) if m.contains("confdir=")));
    // No PF driver yet (before the PF's bind event): not applied, kept.
    host.define_vfs(&a(PF), 2, None).unwrap();
    host.set_vf_count(&a(PF), 0, None, false).unwrap();
    sim.write("bus/pci/drivers/igb/unbind", PF).unwrap();
    let applied = host.apply().unwrap();
    assert!(
        applied[0].waiting
            && !applied[0].failed()
            && applied[0].outcome.starts_with("waiting: ")
            && applied[0].outcome.contains("has no driver yet"),
        "{applied:?}"
    );
    assert!(host.persistent_vfs(&a(PF)).unwrap().is_some());
    // Another device at the address: refused with both ids.
    let defs = nodedev::persist::Definitions::new(&dir);
    let mut other = defs.get_vfs(PF).unwrap().unwrap();
    other.device = 0x1521;
    defs.put_vfs(&other).unwrap();
    let applied = host.apply().unwrap();
    assert!(
        applied[0].outcome.contains("made for 8086:1521") && applied[0].outcome.contains("is 8086:10c9"),
        "{applied:?}"
    );
    // A driver name that is none is refused when written, and reported when read.
    other.driver = Some("vfio:".into());
    assert!(defs.put_vfs(&other).is_err());
    std::fs::write(dir.join(format!("{PF}.vfs.json")), serde_json::to_vec(&other).unwrap()).unwrap();
    let applied = host.apply().unwrap();
    assert!(applied[0].address == "-" && applied[0].outcome.contains("unusable"), "{applied:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_cli_the_c_flag_and_the_udev_rule_for_persistent_vf_counts() {
    let dir = confdir("cli");
    let uri = format!("test:///default?confdir={}", dir.display());
    let bin = env!("CARGO_BIN_EXE_nodedev");
    let run = |script: &str| std::process::Command::new(bin).args(["-c", &uri, script]).output().unwrap();
    let o = run(&format!("sriov {PF} 2 --driver kvm --persistent; sriov {PF} 0; apply {PF}; apply"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out} {}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"0000:04:00.0 gets 2 VF(s) again at boot (persistent)"), "{out}");
    assert!(lines.contains(&"0000:04:00.0: 2 VF(s) on kvm"), "{out}");
    assert_eq!(lines.iter().filter(|l| l.ends_with(" on pci-stub")).count(), 2, "{out}");
    assert_eq!(lines.last(), Some(&"1 definition(s), 1 applied, 0 waiting, 0 not applied"), "{out}");
    let o = run(&format!("sriov {PF} 0 --persistent"));
    assert!(String::from_utf8_lossy(&o.stdout).contains("no VFs at boot (persistent VF count removed)"));
    assert!(!dir.join(format!("{PF}.vfs.json")).exists());

    // The C flag.
    let cstr = |s: &str| CString::new(s).unwrap();
    unsafe {
        let conn = virConnectOpen(cstr(&uri).as_ptr());
        let dev = virNodeDeviceLookupByName(conn, cstr("pci_0000_04_00_0").as_ptr());
        let msg = || CStr::from_ptr(virGetLastErrorMessage()).to_string_lossy().into_owned();
        assert_eq!(virNodeDeviceSetVFs(dev, 3, cstr("vfio").as_ptr(), 1 << 19), 3, "{}", msg());
        let def: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{PF}.vfs.json"))).unwrap()).unwrap();
        assert_eq!((def["count"].as_u64(), def["driver"].as_str()), (Some(3), Some("vfio")));
        assert_eq!(virNodeDeviceSetVFs(dev, 0, std::ptr::null(), 1 << 19), 0, "{}", msg());
        assert!(!dir.join(format!("{PF}.vfs.json")).exists());
        assert_eq!(virNodeDeviceSetVFs(dev, 1, cstr("vfio:nope").as_ptr(), 1 << 19), -1);
        assert_eq!((*virGetLastError()).code, 8, "{}", msg());
        assert!(!dir.join(format!("{PF}.vfs.json")).exists());
        virNodeDeviceFree(dev);
        virConnectClose(conn);
    }
    // The rule runs exactly `nodedev apply $kernel` on the PF's bind event.
    let rules = include_str!("../dist/40-nodedev.rules.in");
    assert!(
        rules.contains(
            r#"ACTION=="bind", TEST=="/etc/nodedev/persistent/$kernel.vfs.json", RUN+="@BINDIR@/nodedev apply $kernel""#
        ),
        "{rules}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `nodedev apply` at boot (the systemd unit) runs before the PF's driver is
/// loaded: the PF waits, it is no failure (exit 0, "waiting" shown); a
/// definition that cannot be applied still fails the command.
#[test]
fn apply_at_boot_waits_for_a_pf_without_its_driver_and_exits_0() {
    let dir = confdir("boot-wait");
    let sim = Arc::new(SimKernel::builtin());
    let host = with_definitions(&sim, &dir);
    host.define_vfs(&a(PF), 2, Some(&nodedev::StubRequest::from(Stub::Vfio))).unwrap();
    // The kernel at boot: the PF enumerated, igb not loaded yet, no VFs.
    let mut spec = host.describe().unwrap();
    spec.devices.retain(|d| d.physfn.as_deref() != Some(PF));
    for d in spec.devices.iter_mut().filter(|d| d.driver.as_deref() == Some("igb")) {
        d.driver = None;
    }
    let spec_file = dir.join("boot.json");
    std::fs::write(&spec_file, serde_json::to_vec(&spec).unwrap()).unwrap();
    let uri = format!("test://{}?confdir={}", spec_file.display(), dir.display());
    let bin = env!("CARGO_BIN_EXE_nodedev");
    let o = std::process::Command::new(bin).args(["-c", &uri, "apply"]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out} {}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains(&format!("{PF}: waiting: {PF} has no driver yet")), "{out}");
    assert_eq!(out.lines().last(), Some("1 definition(s), 0 applied, 1 waiting, 0 not applied"), "{out}");
    // A definition that is unusable is a real failure: exit 1.
    std::fs::write(dir.join("0000:03:01.0.json"), b"{").unwrap();
    let o = std::process::Command::new(bin).args(["-c", &uri, "apply"]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("1 waiting, 1 not applied"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// --- the PF's saved sriov_drivers_autoprobe (issue 13 item 2) ---

#[test]
fn autoprobe_that_cannot_be_turned_off_leaves_nothing_saved() {
    let (sim, host) = fresh();
    sim.fail_writes(&format!("bus/pci/devices/{PF}/sriov_drivers_autoprobe"), Some("0"), libc::EIO, 1);
    assert!(host.set_vf_count(&a(PF), 4, Some(Stub::Vfio), false).is_err());
    assert_eq!(autoprobe(&sim), "1");
    assert!(host.state().saved_autoprobes().unwrap().is_empty());
}

#[test]
fn autoprobe_that_cannot_be_put_back_stays_saved_for_recover() {
    let (sim, host) = fresh();
    sim.fail_writes(&format!("bus/pci/devices/{PF}/sriov_drivers_autoprobe"), Some("1"), libc::EIO, 1);
    let e = host.set_vf_count(&a(PF), 4, Some(Stub::Vfio), false).unwrap_err();
    assert!(e.to_string().contains("nodedev recover"), "{e}");
    assert_eq!(autoprobe(&sim), "0");
    assert_eq!(host.state().saved_autoprobes().unwrap(), [(PF.to_string(), Ok("1".to_string()))]);
    let report = host.recover().unwrap();
    assert!(report.iter().any(|r| r.address == PF && r.resolved), "{report:?}");
    assert_eq!(autoprobe(&sim), "1");
    assert!(host.state().saved_autoprobes().unwrap().is_empty());
}
