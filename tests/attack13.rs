//! Attack review of issue 13 items 1-3 (persistent definitions, the udev
//! rule's answer, `apply`, SR-IOV provisioning, variant drivers): each test
//! failed before its fix.

use nodedev::capi::connect::{virConnectClose, virConnectOpen};
use nodedev::capi::error::{virGetLastError, virGetLastErrorMessage};
use nodedev::capi::nodedev::{virNodeDeviceDetachFlags, virNodeDeviceFree, virNodeDeviceLookupByName};
use nodedev::capi::sriov::virNodeDeviceSetVFs;
use nodedev::persist::{Definition, Definitions};
use nodedev::state::StateStore;
use nodedev::sysfs::sim::SimKernel;
use nodedev::{Error, Host, HostOptions, PciAddress, Policy};
use std::ffi::{CStr, CString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const NIC: &str = "0000:03:01.0"; // e1000 8086:100e, group 5
const PF: &str = "0000:04:00.0"; // igb, three igbvf VFs at start

fn a(s: &str) -> PciAddress {
    PciAddress::parse(s).unwrap()
}

fn confdir(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("nodedev-attack13-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn host_with(sim: &Arc<SimKernel>, dir: &Path, policy: Option<&str>) -> Host {
    let mut options = HostOptions { definitions: Some(Definitions::new(dir)), ..HostOptions::default() };
    if let Some(p) = policy {
        options.policy = Policy::parse(p, "test.conf").unwrap();
    }
    Host::new(sim.clone(), StateStore::memory(), options)
}

fn nic_def(stub: &str) -> Definition {
    Definition {
        address: NIC.into(),
        vendor: 0x8086,
        device: 0x100e,
        stub: stub.into(),
        original_driver: Some("e1000".into()),
    }
}

/// Write a definition file as a person (or an attacker) would: no checks.
fn plant(dir: &Path, name: &str, def: &Definition) {
    std::fs::write(dir.join(name), serde_json::to_vec(def).unwrap()).unwrap();
}

/// Run `f` on another thread; None when it did not return within 5 s.
fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(5)).ok()
}

/// Finding: a FIFO named as a definition hung `nodedev apply` (the boot
/// unit) and `nodedev udev` (udev's worker) forever in open(2).
#[test]
fn a_fifo_definition_hangs_neither_apply_nor_the_udev_answer() {
    let dir = confdir("fifo");
    let fifo = CString::new(dir.join(format!("{NIC}.json")).to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a path of our own.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let sim = Arc::new(SimKernel::builtin());
    let h = host_with(&sim, &dir, None);
    let applied = within(move || h.apply().unwrap()).expect("apply hung on a FIFO");
    assert!(applied.iter().any(|x| x.failed() && x.outcome.contains("not a regular file")), "{applied:?}");
    let h = host_with(&sim, &dir, None);
    let udev = within(move || h.udev_override(&a(NIC))).expect("the udev answer hung on a FIFO");
    assert!(matches!(&udev, Err(Error::System(m)) if m.contains("not a regular file")), "{udev:?}");
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("e1000"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Finding: definitions decide which devices leave the host at boot, but a
/// file or a directory another user can write (or owns) was obeyed.
#[test]
fn definitions_another_user_could_write_are_refused() {
    let dir = confdir("trust");
    let sim = Arc::new(SimKernel::builtin());
    let h = host_with(&sim, &dir, None);
    plant(&dir, &format!("{NIC}.json"), &nic_def("vfio-pci"));
    let file = dir.join(format!("{NIC}.json"));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let applied = h.apply().unwrap();
    assert!(
        applied.len() == 1
            && applied[0].failed()
            && applied[0].outcome.contains("writable by other users (mode 666)")
            && applied[0].outcome.contains("chmod 644"),
        "{applied:?}"
    );
    assert!(matches!(h.udev_override(&a(NIC)), Err(Error::System(_))));
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("e1000"), "not taken");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Another user's file (root can make one to show it).
        std::os::unix::fs::chown(&file, Some(1000), None).unwrap();
        let applied = h.apply().unwrap();
        assert!(applied[0].failed() && applied[0].outcome.contains("belongs to uid 1000"), "{applied:?}");
        std::os::unix::fs::chown(&file, Some(0), None).unwrap();
    }
    // A directory everyone may write into: nothing in it is obeyed or written.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = h.apply().unwrap_err();
    assert!(err.to_string().contains("writable by other users (mode 777)"), "{err}");
    assert!(h.udev_override(&a(NIC)).is_err());
    let defs = Definitions::new(&dir);
    assert!(defs.put(&nic_def("vfio-pci")).is_err(), "written into a directory others can write");
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("e1000"), "not taken");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(h.apply().unwrap()[0].done);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Finding: any text ending in "vfio-pci" passed as a stub driver, so a
/// definition could inject lines into the udev rule's IMPORT{program}
/// output (KEY=value lines) or name a path.
#[test]
fn a_stub_that_is_not_a_driver_name_is_refused() {
    let dir = confdir("stubname");
    let sim = Arc::new(SimKernel::builtin());
    let h = host_with(&sim, &dir, None);
    for stub in ["vfio-pci\nNODEDEV_MODULE=evil_vfio-pci", "../../../evil/vfio-pci", "x vfio-pci"] {
        assert!(Definitions::new(&dir).put(&nic_def(stub)).is_err(), "{stub:?} written");
        plant(&dir, &format!("{NIC}.json"), &nic_def(stub));
        let udev = h.udev_override(&a(NIC));
        assert!(matches!(&udev, Err(e) if e.to_string().contains("is not a stub driver")), "{stub:?}: {udev:?}");
        let applied = h.apply().unwrap();
        assert!(applied[0].failed() && applied[0].outcome.contains("unusable"), "{applied:?}");
    }
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("e1000"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Finding: the udev answer named any module ending in "vfio_pci" for udev
/// to load, unchecked: it must be a VFIO driver for the device by
/// modules.alias, and the module named is the one modules.alias has.
#[test]
fn the_udev_answer_loads_only_a_vfio_driver_of_the_device() {
    let dir = confdir("variant");
    let sim = Arc::new(SimKernel::builtin());
    let h = host_with(&sim, &dir, None);
    plant(&dir, &format!("{NIC}.json"), &nic_def("nosuch_vfio_pci"));
    let udev = h.udev_override(&a(NIC));
    assert!(
        matches!(&udev, Err(Error::InvalidArg(m)) if m.contains("names no VFIO driver") && m.contains("modules.alias")),
        "{udev:?}"
    );
    plant(&dir, &format!("{NIC}.json"), &nic_def("vfio-pci"));
    assert_eq!(h.udev_override(&a(NIC)).unwrap(), Some(("vfio-pci".to_string(), "vfio-pci".to_string())));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Finding: the udev answer ignored the policy: a device a deny rule (or
/// lockdown) added after its definition was made still got the stub's
/// override at boot, so the host lost it (apply refused, udev did not).
#[test]
fn the_udev_answer_obeys_the_policy_of_now() {
    let dir = confdir("policy");
    let sim = Arc::new(SimKernel::builtin());
    Definitions::new(&dir).put(&nic_def("vfio-pci")).unwrap();
    for policy in ["deny 8086:100e", "lockdown yes"] {
        let h = host_with(&sim, &dir, Some(policy));
        let udev = h.udev_override(&a(NIC));
        assert!(matches!(&udev, Err(Error::Denied(_))), "{policy}: {udev:?}");
        let applied = h.apply().unwrap();
        assert!(applied[0].failed(), "{policy}: {applied:?}");
    }
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("e1000"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Finding: "detach --persistent" (and prepare, and SetVFs with
/// VIR_NODE_DEVICE_PERSISTENT) on a connection that keeps no definitions
/// detached the device (made the VFs), then failed: -1 with the device
/// moved, which a caller takes for "nothing happened".
#[test]
fn a_persistent_change_that_cannot_be_kept_changes_nothing() {
    let cstr = |s: &str| CString::new(s).unwrap();
    unsafe {
        let conn = virConnectOpen(cstr("test:///default").as_ptr());
        assert!(!conn.is_null());
        let msg = || CStr::from_ptr(virGetLastErrorMessage()).to_string_lossy().into_owned();
        let xml = |name: &str| {
            let dev = virNodeDeviceLookupByName(conn, cstr(name).as_ptr());
            let x = nodedev::capi::nodedev::virNodeDeviceGetXMLDesc(dev, 0);
            let s = CStr::from_ptr(x).to_string_lossy().into_owned();
            libc::free(x.cast());
            virNodeDeviceFree(dev);
            s
        };
        let dev = virNodeDeviceLookupByName(conn, cstr("pci_0000_03_01_0").as_ptr());
        assert_eq!(virNodeDeviceDetachFlags(dev, std::ptr::null(), 1 << 19), -1);
        assert!(msg().contains("confdir="), "{}", msg());
        assert_eq!((*virGetLastError()).code, 84, "VIR_ERR_OPERATION_UNSUPPORTED: {}", msg());
        assert!(xml("pci_0000_03_01_0").contains("<name>e1000</name>"), "detached anyway");
        virNodeDeviceFree(dev);
        let pf = virNodeDeviceLookupByName(conn, cstr("pci_0000_04_00_0").as_ptr());
        let before = xml("pci_0000_04_00_0");
        assert_eq!(virNodeDeviceSetVFs(pf, 2, cstr("vfio").as_ptr(), 1 << 19), -1);
        assert!(msg().contains("confdir="), "{}", msg());
        assert_eq!(xml("pci_0000_04_00_0"), before, "the VFs were changed anyway");
        virNodeDeviceFree(pf);
        virConnectClose(conn);
    }
    // The CLI: nothing detached, nothing provisioned.
    let bin = env!("CARGO_BIN_EXE_nodedev");
    for script in [format!("detach {NIC} --persistent"), format!("sriov {PF} 2 --persistent")] {
        let o = std::process::Command::new(bin).args(["-c", "test:///default", &script]).output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(1), "{script}: {out}");
        assert!(out.is_empty(), "{script}: it acted before failing: {out}");
    }
}
