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
