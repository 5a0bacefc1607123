//! Every detach/reattach/reset rule, on the simulated kernel.

#[macro_use]
mod common;
use nodedev::state::{StateStore, Step};
use nodedev::sysfs::sim::SimKernel;
use nodedev::sysfs::Sysfs;
use nodedev::{DetachOptions, Error, Host, HostOptions, PciAddress, Stub};
use std::io;
use std::sync::{Arc, Mutex};

fn host_on(sim: Arc<dyn Sysfs>) -> Host {
    Host::new(sim, StateStore::memory(), HostOptions::default())
}

fn fresh() -> (Arc<SimKernel>, Host) {
    let sim = Arc::new(SimKernel::builtin());
    (sim.clone(), host_on(sim))
}

fn a(s: &str) -> PciAddress {
    PciAddress::parse(s).unwrap()
}

const NIC: &str = "0000:03:01.0"; // e1000, group 5, no reset method
const VF: &str = "0000:04:10.0"; // igbvf, own group, flr
const EDU: &str = "0000:05:00.0"; // no driver

#[test]
fn every_device_round_trips_through_every_stub() {
    let (sim, host) = fresh();
    let mut moved = 0;
    for stub in [Stub::Vfio, Stub::Kvm, Stub::Xen] {
        for addr in host.list().unwrap() {
            let info = host.device_info(&addr).unwrap();
            let class = info.class >> 8;
            if stub == Stub::Vfio && (class == 0x0600 || class == 0x0604) {
                assert!(matches!(host.detach(&addr, stub), Err(Error::OperationInvalid(_))));
                continue;
            }
            let before = sim.driver_of(&addr.to_string());
            // Forced: the boot VGA, the disk holding "/" and the NIC with an address are here too.
            let forced = DetachOptions { force: true, ..DetachOptions::default() };
            host.detach_with(&addr, stub, forced).unwrap_or_else(|e| panic!("detach {addr} to {stub:?}: {e}"));
            assert_eq!(sim.driver_of(&addr.to_string()).as_deref(), Some(stub.kernel_drivers()[0]), "{addr}");
            let rec = host.state().get(&addr.to_string()).unwrap().expect("record");
            assert_eq!(rec.original_driver, before, "{addr}");
            assert_eq!(rec.step, Step::Detached);
            host.reattach(&addr, None).unwrap_or_else(|e| panic!("reattach {addr} from {stub:?}: {e}"));
            assert_eq!(sim.driver_of(&addr.to_string()), before, "{addr} after {stub:?}");
            assert!(host.state().get(&addr.to_string()).unwrap().is_none());
            moved += 1;
        }
    }
    assert!(moved > 40, "only {moved} round trips");
}

#[test]
fn a_device_already_on_the_stub_is_left_alone() {
    let (sim, host) = fresh();
    host.detach(&a(NIC), Stub::Kvm).unwrap();
    let writes = sim.writes().len();
    host.detach(&a(NIC), Stub::Kvm).unwrap();
    assert_eq!(sim.writes().len(), writes, "second detach wrote to sysfs");
    assert_eq!(host.state().get(NIC).unwrap().unwrap().original_driver.as_deref(), Some("e1000"));
}

#[test]
fn a_device_on_another_stub_must_be_reattached_first() {
    let (_sim, host) = fresh();
    host.detach(&a(NIC), Stub::Kvm).unwrap();
    let err = host.detach(&a(NIC), Stub::Vfio).unwrap_err();
    assert!(
        matches!(&err, Error::OperationInvalid(m) if m.contains(NIC) && m.contains("pci-stub") && m.contains("reattach")),
        "{err}"
    );
}

#[test]
fn the_stub_module_is_loaded_when_missing() {
    let (sim, host) = fresh();
    assert!(!sim.module_loaded("vfio_pci"));
    host.detach(&a(VF), Stub::Vfio).unwrap();
    assert!(sim.module_loaded("vfio_pci"));
    assert_eq!(sim.driver_of(VF).as_deref(), Some("vfio-pci"));
}

#[test]
fn no_module_loading_gives_an_actionable_error_and_changes_nothing() {
    let sim = Arc::new(SimKernel::builtin());
    let host =
        Host::new(sim.clone(), StateStore::memory(), HostOptions { allow_modprobe: false, ..Default::default() });
    let err = host.detach(&a(VF), Stub::Vfio).unwrap_err();
    assert!(matches!(&err, Error::OperationFailed(m) if m.contains("modprobe vfio-pci") && m.contains(VF)), "{err}");
    assert_eq!(sim.driver_of(VF).as_deref(), Some("igbvf"));
    assert!(host.state().get(VF).unwrap().is_none());

    // The kernel refusing to load modules ends the same way.
    let (sim, host) = fresh();
    sim.set_module_loading_allowed(false);
    let err = host.detach(&a(VF), Stub::Xen).unwrap_err();
    assert!(
        matches!(&err, Error::OperationFailed(m) if m.contains("xen_pciback") || m.contains("xen-pciback")),
        "{err}"
    );
    assert_eq!(sim.driver_of(VF).as_deref(), Some("igbvf"));
    // pci-stub is already loaded, so kvm still works.
    host.detach(&a(VF), Stub::Kvm).unwrap();
}

#[test]
fn a_driverless_device_goes_back_to_no_driver() {
    let (sim, host) = fresh();
    host.detach(&a(EDU), Stub::Vfio).unwrap();
    assert_eq!(sim.driver_of(EDU).as_deref(), Some("vfio-pci"));
    assert_eq!(host.state().get(EDU).unwrap().unwrap().original_driver, None);
    host.reattach(&a(EDU), None).unwrap();
    assert_eq!(sim.driver_of(EDU), None);
    let ov = sim.read(&format!("bus/pci/devices/{EDU}/driver_override")).unwrap();
    assert_eq!(ov.trim(), "(null)");
}

#[test]
fn reattach_to_a_named_driver() {
    let (sim, host) = fresh();
    host.detach(&a(NIC), Stub::Vfio).unwrap();
    host.reattach(&a(NIC), Some("e1000")).unwrap();
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("e1000"));

    // A driver that does not take the device: error, and the device stays on its stub.
    host.detach(&a(NIC), Stub::Vfio).unwrap();
    let err = host.reattach(&a(NIC), Some("nvme")).unwrap_err();
    assert!(
        matches!(&err, Error::OperationFailed(m) if m.contains(NIC) && m.contains("nvme") && m.contains("stays detached")),
        "{err}"
    );
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("vfio-pci"));
    let rec = host.state().get(NIC).unwrap().unwrap();
    assert_eq!((rec.step, rec.original_driver.as_deref()), (Step::Detached, Some("e1000")));

    for bad in ["vfio-pci", "../e1000", "", "a b"] {
        assert!(matches!(host.reattach(&a(NIC), Some(bad)), Err(Error::InvalidArg(_))), "{bad:?}");
    }
}

#[test]
fn reattach_is_idempotent_as_libvirt_is() {
    let (sim, host) = fresh();
    // On its host driver, never detached: success, not one write.
    let writes = sim.writes().len();
    host.reattach(&a(NIC), None).unwrap();
    host.reattach(&a(NIC), Some("e1000")).unwrap();
    assert_eq!(sim.writes().len(), writes, "{:?}", &sim.writes()[writes..]);
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("e1000"));
    // Asked for another host driver: nodedev moves devices off stubs only.
    let err = host.reattach(&a(NIC), Some("igbvf")).unwrap_err();
    assert!(
        matches!(&err, Error::OperationInvalid(m) if m.contains("host driver e1000") && m.contains("not to a stub")),
        "{err}"
    );
    // No driver and no record: the kernel probes it; nothing claims EDU.
    host.reattach(&a(EDU), None).unwrap();
    assert_eq!(sim.driver_of(EDU), None);
    assert_eq!(sim.writes()[writes..], [("bus/pci/drivers_probe".to_string(), EDU.to_string())]);
    // Detach twice: the second changes nothing.
    host.detach(&a(NIC), Stub::Vfio).unwrap();
    let writes = sim.writes().len();
    host.detach(&a(NIC), Stub::Vfio).unwrap();
    assert_eq!(sim.writes().len(), writes);
    // A record left by a reattach cut short after the device reached its
    // original driver: reattach finishes it.
    host.reattach(&a(NIC), None).unwrap();
    let mut rec = nodedev::state::Record::new(NIC, Some("e1000".into()), "vfio-pci");
    rec.step = Step::Reattaching;
    host.state().put(&rec).unwrap();
    host.reattach(&a(NIC), None).unwrap();
    assert!(host.state().get(NIC).unwrap().is_none());
}

/// A host described with an e1000e driver whose module is installed but not loaded.
fn host_with_unloaded_driver() -> (Arc<SimKernel>, Host) {
    let sim = Arc::new(
        SimKernel::from_json(
            r#"{"drivers": [{"name": "e1000e", "loaded": false, "ids": ["8086:10d3"]},
                            {"name": "igb", "loaded": false, "ids": ["8086:10c9"]},
                            {"name": "vfio-pci", "module": "vfio_pci", "loaded": true}],
                "devices": [{"address": "0000:03:00.0", "vendor": "0x8086", "device": "0x10d3",
                             "class": "0x020000", "iommu_group": 3}]}"#,
        )
        .unwrap(),
    );
    (sim.clone(), host_on(sim))
}

#[test]
fn a_named_driver_loads_only_a_module_that_claims_the_device() {
    let (sim, host) = host_with_unloaded_driver();
    let dev = a("0000:03:00.0");
    host.detach(&dev, Stub::Vfio).unwrap();
    // Not a module that claims this device (an installed one, or none at
    // all): refused before anything changes, saying what would be loaded.
    for name in ["dccp", "igb"] {
        let writes = sim.writes().len();
        let err = host.reattach(&dev, Some(name)).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArg(m) if m.contains(name) && m.contains("modules that claim it: e1000e") && m.contains("nothing was loaded")),
            "{err}"
        );
        assert!(!sim.module_loaded(name), "{name} was loaded");
        assert_eq!(sim.writes().len(), writes, "{name}: {:?}", &sim.writes()[writes..]);
        assert_eq!(sim.driver_of("0000:03:00.0").as_deref(), Some("vfio-pci"));
    }
    // The module that claims it is loaded and binds it.
    host.reattach(&dev, Some("e1000e")).unwrap();
    assert!(sim.module_loaded("e1000e"));
    assert_eq!(sim.driver_of("0000:03:00.0").as_deref(), Some("e1000e"));
    // Without module loading, even the right one is not loaded.
    let (sim, _) = host_with_unloaded_driver();
    let host =
        Host::new(sim.clone(), StateStore::memory(), HostOptions { allow_modprobe: false, ..HostOptions::default() });
    host.detach(&dev, Stub::Vfio).unwrap();
    let err = host.reattach(&dev, Some("e1000e")).unwrap_err();
    assert!(err.to_string().contains("may not load modules"), "{err}");
    assert!(!sim.module_loaded("e1000e"));
}

#[test]
fn the_modules_of_the_simulated_kernel_are_its_drivers_id_tables() {
    let (sim, _) = fresh();
    let modalias = "pci:v00008086d0000100Esv00008086sd0000001Ebc02sc00i00";
    let found = sim.matching_aliases(modalias).unwrap();
    assert_eq!(found.iter().map(|m| m.module.as_str()).collect::<Vec<_>>(), ["e1000"]);
    assert_eq!(found[0].pattern, "pci:v00008086d0000100Esv*sd*bc*sc*i*");
    // A class entry (pcieport takes bridges by class).
    let bridge = "pci:v00008086d000029C1sv00000000sd00000000bc06sc04i00";
    assert!(
        sim.matching_aliases(bridge).unwrap().iter().any(|m| m.module == "pcieport"),
        "{:?}",
        sim.matching_aliases(bridge)
    );
}

#[test]
fn reset_rules() {
    let (sim, host) = fresh();
    let err = host.reset(&a(VF)).unwrap_err();
    assert!(matches!(&err, Error::OperationInvalid(m) if m.contains("igbvf") && m.contains("detach")), "{err}");
    assert_eq!(sim.reset_count(VF), 0);
    host.detach(&a(VF), Stub::Vfio).unwrap();
    host.reset(&a(VF)).unwrap();
    assert_eq!(sim.reset_count(VF), 1);
    host.reset(&a(EDU)).unwrap(); // no driver at all: fine
    assert_eq!(sim.reset_count(EDU), 1);
    host.detach(&a(NIC), Stub::Kvm).unwrap();
    let err = host.reset(&a(NIC)).unwrap_err();
    assert!(matches!(&err, Error::Unsupported(m) if m.contains(NIC) && m.contains("no reset method")), "{err}");
}

#[test]
fn read_only_hosts_change_nothing() {
    let sim = Arc::new(SimKernel::builtin());
    let host = Host::new(sim.clone(), StateStore::memory(), HostOptions { read_only: true, ..Default::default() });
    assert!(matches!(host.detach(&a(NIC), Stub::Vfio), Err(Error::Denied(_))));
    assert!(matches!(host.reattach(&a(NIC), None), Err(Error::Denied(_))));
    assert!(matches!(host.reset(&a(VF)), Err(Error::Denied(_))));
    assert!(sim.writes().is_empty());
    assert!(host.xml(&a(NIC)).unwrap().contains("<name>pci_0000_03_01_0</name>"));
}

#[test]
fn lookup_accepts_both_spellings() {
    let (_sim, host) = fresh();
    assert_eq!(host.lookup("pci_0000_03_01_0").unwrap(), host.lookup(NIC).unwrap());
    assert!(matches!(host.lookup("0000:09:00.0"), Err(Error::NoDevice(m)) if m.contains("0000:09:00.0")));
    assert!(matches!(host.lookup("eth0"), Err(Error::InvalidArg(_))));
}

#[test]
fn xml_describes_drivers_groups_and_sriov() {
    let (_sim, host) = fresh();
    let nic = host.xml(&a(NIC)).unwrap();
    for want in [
        "<name>pci_0000_03_01_0</name>",
        "<parent>pci_0000_02_00_0</parent>",
        "<name>e1000</name>",
        "<capability type='pci'>",
        "<class>0x020000</class>",
        "<bus>3</bus>",
        "<slot>1</slot>",
        "<product id='0x100e'",
        "<vendor id='0x8086'",
        "<iommuGroup number='5'>",
        "<address domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>",
        "<address domain='0x0000' bus='0x03' slot='0x02' function='0x0'/>",
        "/0000:02:00.0/0000:03:01.0</path>",
    ] {
        assert!(nic.contains(want), "missing {want} in\n{nic}");
    }
    let pf = host.xml(&a("0000:04:00.0")).unwrap();
    assert!(pf.contains("<capability type='virt_functions' maxCount='7'>"), "{pf}");
    assert!(pf.contains("<address domain='0x0000' bus='0x04' slot='0x10' function='0x2'/>"), "{pf}");
    let vf = host.xml(&a(VF)).unwrap();
    assert!(vf.contains("<capability type='phys_function'>"), "{vf}");
    let edu = host.xml(&a(EDU)).unwrap();
    assert!(!edu.contains("<driver>"), "{edu}");
    assert_eq!(host.parent_name(&a("0000:00:1c.0")).unwrap(), "computer");
}

#[test]
fn vfio_without_an_iommu_says_how_to_enable_it() {
    let sim = Arc::new(
        SimKernel::from_json(
            r#"{"iommu": false,
                "drivers": [{"name": "e1000e", "module": "e1000e", "loaded": true, "ids": ["8086:10d3"]},
                            {"name": "vfio-pci", "module": "vfio_pci", "loaded": true},
                            {"name": "pci-stub", "module": "pci_stub", "loaded": true}],
                "devices": [{"address": "0000:03:00.0", "vendor": "0x8086", "device": "0x10d3",
                             "class": "0x020000", "driver": "e1000e"}]}"#,
        )
        .unwrap(),
    );
    let host = host_on(sim.clone());
    let err = host.detach(&a("0000:03:00.0"), Stub::Vfio).unwrap_err();
    assert!(matches!(&err, Error::Unsupported(m) if m.contains("intel_iommu=on") && m.contains("\"kvm\"")), "{err}");
    host.detach(&a("0000:03:00.0"), Stub::Kvm).unwrap();
    assert_eq!(sim.driver_of("0000:03:00.0").as_deref(), Some("pci-stub"));
}

#[test]
fn old_kernels_use_new_id_without_grabbing_bystanders() {
    let sim = Arc::new(
        SimKernel::from_json(
            r#"{"driver_override": false,
                "drivers": [{"name": "e1000", "module": "e1000", "loaded": true, "ids": ["8086:100e"]},
                            {"name": "pci-stub", "module": "pci_stub", "loaded": true}],
                "devices": [{"address": "0000:03:01.0", "vendor": "0x8086", "device": "0x100e", "class": "0x020000",
                             "driver": "e1000", "iommu_group": 1},
                            {"address": "0000:03:02.0", "vendor": "0x8086", "device": "0x100e", "class": "0x020000",
                             "iommu_group": 2}]}"#,
        )
        .unwrap(),
    );
    let host = host_on(sim.clone());
    host.detach(&a("0000:03:01.0"), Stub::Kvm).unwrap();
    assert_eq!(sim.driver_of("0000:03:01.0").as_deref(), Some("pci-stub"));
    assert_eq!(sim.driver_of("0000:03:02.0"), None, "the unbound twin was grabbed by new_id");
    assert!(sim.writes().iter().any(|(p, _)| p.ends_with("pci-stub/new_id")));
    assert!(sim.writes().iter().any(|(p, _)| p.ends_with("pci-stub/remove_id")));
    host.reattach(&a("0000:03:01.0"), None).unwrap();
    assert_eq!(sim.driver_of("0000:03:01.0").as_deref(), Some("e1000"));
    assert_eq!(sim.driver_of("0000:03:02.0"), None);
}

#[test]
fn records_survive_the_process_and_a_new_host_reattaches() {
    let dir = std::env::temp_dir().join(format!("nodedev-ops-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sim = Arc::new(SimKernel::builtin());
    {
        let first = Host::new(sim.clone(), StateStore::dir(&dir), HostOptions::default());
        first.detach(&a(NIC), Stub::Xen).unwrap();
    } // the first "process" is gone; the kernel and the directory remain
    let second = Host::new(sim.clone(), StateStore::dir(&dir), HostOptions::default());
    assert_eq!(second.state().get(NIC).unwrap().unwrap().stub, "xen-pciback");
    second.reattach(&a(NIC), None).unwrap();
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("e1000"));
    assert!(std::fs::read_dir(&dir).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".json")));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Passes everything to the simulated kernel, except writes matching a rule.
struct Faulty {
    sim: Arc<SimKernel>,
    fail: Mutex<Vec<(String, i32)>>,
}

impl Faulty {
    fn new(sim: Arc<SimKernel>, rules: &[(&str, i32)]) -> Arc<Faulty> {
        Arc::new(Faulty { sim, fail: Mutex::new(rules.iter().map(|(p, e)| (p.to_string(), *e)).collect()) })
    }
}

impl Sysfs for Faulty {
    fn write(&self, p: &str, v: &str) -> io::Result<()> {
        if let Some((_, errno)) = self.fail.lock().unwrap().iter().find(|(rule, _)| p.ends_with(rule.as_str())) {
            return Err(io::Error::from_raw_os_error(*errno));
        }
        self.sim.write(p, v)
    }
    fn write_bounded(&self, p: &str, v: &str, limit: std::time::Duration) -> io::Result<()> {
        if let Some((_, errno)) = self.fail.lock().unwrap().iter().find(|(rule, _)| p.ends_with(rule.as_str())) {
            return Err(io::Error::from_raw_os_error(*errno));
        }
        self.sim.write_bounded(p, v, limit)
    }
    forward_sysfs!(sim; read_bytes, net_features, read, read_link, list_dir, exists, load_module, matching_aliases, vfio_aliases, vfio_holders, net_addresses, net_routes, mounts, swaps, set_master, set_link_up, pci_names, uevents);
}

#[test]
fn a_failed_probe_puts_the_device_back_on_its_driver() {
    let sim = Arc::new(SimKernel::builtin());
    let host = host_on(Faulty::new(sim.clone(), &[("bus/pci/drivers_probe", libc::EIO)]));
    // drivers_probe fails after the unbind; the restore binds e1000 directly.
    let err = host.detach(&a(NIC), Stub::Kvm).unwrap_err();
    assert!(matches!(&err, Error::OperationFailed(m) if m.contains("drivers_probe")), "{err}");
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("e1000"));
    assert!(host.state().get(NIC).unwrap().is_none());
}

#[test]
fn a_failed_rollback_reports_both_errors_and_keeps_the_record() {
    let sim = Arc::new(SimKernel::builtin());
    let host = host_on(Faulty::new(
        sim.clone(),
        &[("bus/pci/drivers_probe", libc::EIO), ("drivers/e1000/bind", libc::ENODEV)],
    ));
    let err = host.detach(&a(NIC), Stub::Kvm).unwrap_err();
    let Error::OperationFailed(m) = &err else { panic!("{err:?}") };
    assert!(m.contains("drivers_probe") && m.contains("e1000/bind") && m.contains("original driver"), "{m}");
    assert_eq!(sim.driver_of(NIC), None);
    let rec = host.state().get(NIC).unwrap().expect("the record must survive");
    assert_eq!(rec.original_driver.as_deref(), Some("e1000"));
}

#[test]
fn a_failed_unbind_leaves_the_device_on_its_driver() {
    let sim = Arc::new(SimKernel::builtin());
    let host = host_on(Faulty::new(sim.clone(), &[("drivers/e1000/unbind", libc::EBUSY)]));
    let err = host.detach(&a(NIC), Stub::Vfio).unwrap_err();
    assert!(matches!(&err, Error::OperationFailed(m) if m.contains("unbind") && m.contains("busy")), "{err}");
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("e1000"));
    assert!(host.state().get(NIC).unwrap().is_none());
    let ov = sim.read(&format!("bus/pci/devices/{NIC}/driver_override")).unwrap();
    assert_eq!(ov.trim(), "(null)", "override left behind");
}

/// The simulated kernel with every `uevent` hidden, as in a tree that has none.
struct WithoutUevent(Arc<SimKernel>);

impl Sysfs for WithoutUevent {
    fn read(&self, p: &str) -> io::Result<String> {
        if p.ends_with("/uevent") {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        self.0.read(p)
    }
    forward_sysfs!(0; read_bytes, net_features, write, read_link, list_dir, exists, load_module, matching_aliases, vfio_aliases, net_addresses, net_routes, mounts, swaps, set_master, set_link_up, pci_names, vfio_holders, write_bounded, uevents);
}

#[test]
fn uevent_and_the_separate_attributes_describe_devices_alike() {
    let (sim, host) = fresh();
    let slow = host_on(Arc::new(WithoutUevent(sim.clone())));
    // Drivers of every kind: a stub, a host driver, none.
    host.detach(&a(VF), Stub::Vfio).unwrap();
    host.detach(&a(NIC), Stub::Kvm).unwrap();
    let uevent = sim.read(&format!("bus/pci/devices/{VF}/uevent")).unwrap();
    assert!(uevent.starts_with("DRIVER=vfio-pci\nPCI_CLASS=20000\nPCI_ID=8086:10CA\n"), "{uevent}");
    assert!(!sim.read(&format!("bus/pci/devices/{EDU}/uevent")).unwrap().contains("DRIVER="));
    for d in host.list().unwrap() {
        let info = host.device_info(&d).unwrap();
        assert_eq!(info, slow.device_info(&d).unwrap(), "{d}");
        let s = host.summary(&d).unwrap();
        assert_eq!(
            (s.driver, s.vendor, s.device, s.class, s.iommu_group, s.product_name),
            (info.driver, info.vendor, info.device, info.class, info.iommu_group, info.product_name),
            "{d}"
        );
    }
    assert!(matches!(host.summary(&a("0000:09:00.0")), Err(Error::NoDevice(_))));
}
