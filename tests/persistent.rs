//! Persistent assignments on the simulated kernel: definitions, the udev
//! rule's answer at a device's `add` event, `apply`, identity checks.

use nodedev::capi::connect::{virConnectClose, virConnectOpen};
use nodedev::capi::error::{virGetLastError, virGetLastErrorMessage};
use nodedev::capi::nodedev::{virNodeDeviceFree, virNodeDeviceLookupByName};
use nodedev::capi::persistent::{virNodeDeviceGetAutostart, virNodeDeviceSetAutostart};
use nodedev::persist::{Definition, Definitions};
use nodedev::state::StateStore;
use nodedev::sysfs::sim::SimKernel;
use nodedev::sysfs::Sysfs;
use nodedev::{Error, Host, HostOptions, PciAddress, Policy, Stub};
use std::ffi::{CStr, CString};
use std::path::PathBuf;
use std::sync::Arc;

const NIC: &str = "0000:03:01.0"; // e1000, group 5

fn a(s: &str) -> PciAddress {
    PciAddress::parse(s).unwrap()
}

fn confdir(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("nodedev-persistent-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

fn host(sim: &Arc<SimKernel>, dir: &PathBuf, state: &StateStore) -> Host {
    let options = HostOptions { definitions: Some(Definitions::new(dir)), ..HostOptions::default() };
    Host::new(sim.clone(), state.clone(), options)
}

/// The host after a reboot: the same hardware, the host driver's module not
/// loaded yet (udev loads it from 80-drivers.rules), so the device is
/// enumerated without a driver.
fn rebooted(h: &Host, addr: &str, host_driver: &str) -> Arc<SimKernel> {
    let mut spec = h.describe().unwrap();
    for d in spec.devices.iter_mut().filter(|d| d.driver.as_deref() == Some(host_driver) || d.address == addr) {
        d.driver = None;
    }
    for d in spec.drivers.iter_mut().filter(|d| d.name == host_driver || d.name == "vfio-pci") {
        d.loaded = false;
    }
    Arc::new(SimKernel::from_spec(spec).unwrap())
}

/// What udev does for the device's `add` event with nodedev's rule (40-),
/// then for every device with 80-drivers.rules: the rule's program answers,
/// the override is written, the stub's module loaded and the device probed; then the host
/// driver's module is loaded and takes every device it matches that has no
/// override.
fn boot_add_event(sim: &SimKernel, h: &Host, addr: &str, host_module: &str) {
    if let Some((driver, module)) = h.udev_override(&a(addr)).unwrap() {
        sim.write(&format!("bus/pci/devices/{addr}/driver_override"), &driver).unwrap();
        sim.load_module(&module).unwrap();
        sim.write("bus/pci/drivers_probe", addr).unwrap();
    }
    sim.load_module(host_module).unwrap();
}

#[test]
fn a_persistent_device_is_on_its_stub_from_its_add_event_on() {
    let dir = confdir("boot");
    let sim = Arc::new(SimKernel::builtin());
    let h = host(&sim, &dir, &StateStore::memory());
    h.detach(&a(NIC), Stub::Vfio).unwrap();
    h.define(&a(NIC)).unwrap();
    assert!(h.is_persistent(&a(NIC)).unwrap());
    let def: Definition = serde_json::from_slice(&std::fs::read(dir.join(format!("{NIC}.json"))).unwrap()).unwrap();
    assert_eq!(
        (def.stub.as_str(), def.original_driver.as_deref(), def.vendor, def.device),
        ("vfio-pci", Some("e1000"), 0x8086, 0x100e)
    );
    // A reattach without --persistent keeps the definition.
    h.reattach(&a(NIC), None).unwrap();
    assert!(h.is_persistent(&a(NIC)).unwrap());

    // "Reboot": the kernel as it enumerates the device, no records; the
    // device's add event.
    let sim = rebooted(&h, NIC, "e1000");
    let h = host(&sim, &dir, &StateStore::memory());
    assert_eq!(sim.driver_of(NIC), None);
    boot_add_event(&sim, &h, NIC, "e1000");
    assert_eq!(sim.bind_history(NIC), ["vfio-pci"], "e1000 never bound it");
    assert_eq!(sim.driver_of("0000:03:02.0").as_deref(), Some("e1000"), "its twin without a definition got e1000");
    // apply writes the record that reattach needs, knowing the original from the definition.
    let applied = h.apply().unwrap();
    assert_eq!(applied.len(), 1);
    assert!(applied[0].done && applied[0].outcome.contains("record written"), "{applied:?}");
    let rec = h.state().get(NIC).unwrap().unwrap();
    assert_eq!(rec.original_driver.as_deref(), Some("e1000"));
    h.reattach(&a(NIC), None).unwrap();
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("e1000"));

    // Without the rule (a host driver won the race): apply detaches it.
    let applied = h.apply().unwrap();
    assert!(applied[0].done && applied[0].outcome.contains("detached to vfio-pci from e1000"), "{applied:?}");
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("vfio-pci"));
    // Applying again changes nothing.
    let writes = sim.writes().len();
    assert!(h.apply().unwrap()[0].outcome.contains("already"));
    assert_eq!(sim.writes().len(), writes);
    // Undefine: gone, the device stays where it is.
    assert!(h.undefine(&a(NIC)).unwrap());
    assert!(!h.is_persistent(&a(NIC)).unwrap());
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("vfio-pci"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn apply_detaches_a_defined_device_that_no_driver_took_at_boot() {
    // No udev rule ran, the host driver's module is not loaded yet: the
    // device is driverless and the definition knows its original driver.
    let dir = confdir("nodriver");
    let sim = Arc::new(SimKernel::builtin());
    let h = host(&sim, &dir, &StateStore::memory());
    h.detach(&a(NIC), Stub::Vfio).unwrap();
    h.define(&a(NIC)).unwrap();
    let sim = rebooted(&h, NIC, "e1000");
    let state = StateStore::memory();
    let h = host(&sim, &dir, &state);
    assert_eq!(sim.driver_of(NIC), None);
    let applied = h.apply().unwrap();
    assert!(applied[0].done && applied[0].outcome.contains("detached to vfio-pci from no driver"), "{applied:?}");
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("vfio-pci"));
    let rec = state.get(NIC).unwrap().unwrap();
    assert_eq!((rec.step, rec.original_driver.as_deref()), (nodedev::state::Step::Detached, Some("e1000")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn another_device_at_the_address_and_absent_devices() {
    let dir = confdir("identity");
    let sim = Arc::new(SimKernel::builtin());
    let h = host(&sim, &dir, &StateStore::memory());
    let defs = Definitions::new(&dir);
    let mut other = Definition {
        address: NIC.into(),
        vendor: 0x8086,
        device: 0x10d3,
        stub: "vfio-pci".into(),
        original_driver: Some("e1000e".into()),
    };
    defs.put(&other).unwrap();
    other.address = "0000:0a:00.0".into();
    defs.put(&other).unwrap();
    let applied = h.apply().unwrap();
    let nic = applied.iter().find(|x| x.address == NIC).unwrap();
    assert!(!nic.done && nic.outcome.contains("made for 8086:10d3") && nic.outcome.contains("is 8086:100e"), "{nic:?}");
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("e1000"), "the other device is not taken");
    let err = h.udev_override(&a(NIC)).unwrap_err();
    assert!(matches!(err, Error::OperationInvalid(_)));
    let absent = applied.iter().find(|x| x.address == "0000:0a:00.0").unwrap();
    assert!(!absent.done && absent.outcome.contains("absent") && absent.outcome.contains("kept"), "{absent:?}");
    assert!(dir.join("0000:0a:00.0.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn definitions_obey_the_connection_and_the_policy() {
    let dir = confdir("rules");
    let sim = Arc::new(SimKernel::builtin());
    let state = StateStore::memory();
    let h = host(&sim, &dir, &state);
    // Not on a stub: nothing to make persistent.
    assert!(matches!(h.define(&a(NIC)), Err(Error::OperationInvalid(m)) if m.contains("not on a stub")));
    h.detach(&a(NIC), Stub::Vfio).unwrap();
    for options in [
        HostOptions { read_only: true, definitions: Some(Definitions::new(&dir)), ..HostOptions::default() },
        HostOptions {
            policy: Policy::parse("lockdown yes", "p.conf").unwrap(),
            definitions: Some(Definitions::new(&dir)),
            ..HostOptions::default()
        },
    ] {
        let other = Host::new(sim.clone(), state.clone(), options);
        assert!(matches!(other.define(&a(NIC)), Err(Error::Denied(_))));
    }
    // A host without a definitions directory says where they would go.
    let bare = Host::new(sim.clone(), state.clone(), HostOptions::default());
    assert!(matches!(bare.define(&a(NIC)), Err(Error::Unsupported(m)) if m.contains("confdir=")));
    assert!(!dir.exists());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_cli_and_the_c_calls() {
    let dir = confdir("c");
    let uri = format!("test:///default?confdir={}", dir.display());
    let cstr = |s: &str| CString::new(s).unwrap();
    unsafe {
        let conn = virConnectOpen(cstr(&uri).as_ptr());
        assert!(!conn.is_null());
        let dev = virNodeDeviceLookupByName(conn, cstr("pci_0000_04_10_2").as_ptr());
        assert!(!dev.is_null());
        let msg = || CStr::from_ptr(virGetLastErrorMessage()).to_string_lossy().into_owned();
        let mut on = -1;
        assert_eq!(virNodeDeviceGetAutostart(dev, std::ptr::null_mut()), -1);
        assert_eq!((*virGetLastError()).code, 8);
        assert_eq!(virNodeDeviceGetAutostart(std::ptr::null_mut(), &mut on), -1);
        assert_eq!(virNodeDeviceGetAutostart(dev, &mut on), 0, "{}", msg());
        assert_eq!(on, 0);
        assert_eq!(virNodeDeviceSetAutostart(dev, 1), -1, "on igbvf: not on a stub");
        assert!(msg().contains("not on a stub"), "{}", msg());
        assert_eq!(nodedev::capi::nodedev::virNodeDeviceDetachFlags(dev, std::ptr::null(), 1 << 19), 0, "{}", msg());
        assert_eq!(virNodeDeviceGetAutostart(dev, &mut on), 0);
        assert_eq!(on, 1);
        assert_eq!(nodedev::capi::nodedev::virNodeDeviceReAttachFlags(dev, std::ptr::null(), 1 << 19), 0, "{}", msg());
        assert_eq!(virNodeDeviceGetAutostart(dev, &mut on), 0);
        assert_eq!(on, 0, "reattach with VIR_NODE_DEVICE_PERSISTENT drops the definition");
        assert_eq!(virNodeDeviceSetAutostart(dev, 0), 0, "removing none is fine: {}", msg());
        virNodeDeviceFree(dev);
        virConnectClose(conn);
    }
    // The CLI: detach --persistent, the udev answer, reattach --persistent.
    let bin = env!("CARGO_BIN_EXE_nodedev");
    let run = |script: &str| std::process::Command::new(bin).args(["-c", &uri, script]).output().unwrap();
    let o = run("detach 0000:04:10.4 --persistent; udev 0000:04:10.4; udev 0000:04:10.0; reattach 0000:04:10.4 --persistent; udev 0000:04:10.4");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out} {}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "0000:04:10.4 detached to vfio-pci",
            "0000:04:10.4 stays on it from boot on (persistent)",
            "NODEDEV_DRIVER_OVERRIDE=vfio-pci",
            "NODEDEV_MODULE=vfio-pci",
            "0000:04:10.4: persistent definition removed",
            "0000:04:10.4 reattached to igbvf",
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
