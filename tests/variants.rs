//! VFIO variant drivers on the simulated kernel: the choice libvirt 10 makes
//! from modules.alias (fewest wildcards, first on a tie), explicit
//! "vfio:NAME", refusals, a connection that may not load modules, SR-IOV,
//! persistent definitions, reattach and recovery with a variant.

use nodedev::capi::connect::{virConnectClose, virConnectOpen};
use nodedev::capi::error::{virGetLastError, virGetLastErrorMessage};
use nodedev::capi::nodedev::{virNodeDeviceDetachFlags, virNodeDeviceFree, virNodeDeviceLookupByName};
use nodedev::persist::Definitions;
use nodedev::state::StateStore;
use nodedev::sysfs::sim::SimKernel;
use nodedev::sysfs::Sysfs;
use nodedev::{DetachOptions, Error, Host, HostOptions, PciAddress, PrepareOptions, Stub, StubRequest};
use std::ffi::{CStr, CString};
use std::sync::Arc;

/// A host with VFIO variant drivers: an mlx5 PF and VF (two variants claim
/// the VF with as many wildcards: a tie), a GPU two variants claim (one
/// more specifically, listed second; its driver is named unlike its
/// module), and an e1000e that only vfio-pci's catch-all matches.
pub const HOST: &str = r#"{
  "drivers": [
    {"name": "pcieport", "ids": ["8086:a110"]},
    {"name": "mlx5_core", "ids": ["15b3:101d", "15b3:101e"]},
    {"name": "nvidia", "ids": ["10de:2342"]},
    {"name": "e1000e", "ids": ["8086:10d3"]},
    {"name": "vfio-pci", "module": "vfio_pci", "loaded": false,
     "vfio_aliases": ["vfio_pci:v*d*sv*sd*bc*sc*i*"]},
    {"name": "mlx5_vfio_pci", "loaded": false,
     "vfio_aliases": ["vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i*"]},
    {"name": "twin_vfio_pci", "loaded": false,
     "vfio_aliases": ["vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i*"]},
    {"name": "acme_gpu_vfio_pci", "loaded": false,
     "vfio_aliases": ["vfio_pci:v000010DEd00002342sv*sd*bc*sc*i*"]},
    {"name": "gpu-vfio-pci", "module": "oem_gpu_vfio_pci", "loaded": false,
     "vfio_aliases": ["vfio_pci:v000010DEd00002342sv000010DEsd000016EBbc*sc*i*"]}
  ],
  "devices": [
    {"address": "0000:00:01.0", "vendor": "0x8086", "device": "0xa110", "class": "0x060400",
     "driver": "pcieport", "iommu_group": 1},
    {"address": "0000:01:00.0", "vendor": "0x15b3", "device": "0x101d", "class": "0x020000",
     "subsystem_vendor": "0x15b3", "subsystem_device": "0x0016",
     "driver": "mlx5_core", "iommu_group": 2, "parent": "0000:00:01.0", "sriov_totalvfs": 4,
     "reset_method": ["flr"]},
    {"address": "0000:01:00.1", "vendor": "0x15b3", "device": "0x101e", "class": "0x020000",
     "subsystem_vendor": "0x15b3", "subsystem_device": "0x0016",
     "driver": "mlx5_core", "iommu_group": 3, "parent": "0000:00:01.0", "physfn": "0000:01:00.0",
     "reset_method": ["flr"]},
    {"address": "0000:00:03.0", "vendor": "0x10de", "device": "0x2342", "class": "0x030200",
     "subsystem_vendor": "0x10de", "subsystem_device": "0x16eb",
     "driver": "nvidia", "iommu_group": 4, "reset_method": ["flr"]},
    {"address": "0000:00:04.0", "vendor": "0x8086", "device": "0x10d3", "class": "0x020000",
     "subsystem_vendor": "0x8086", "subsystem_device": "0xa01f",
     "driver": "e1000e", "iommu_group": 5, "reset_method": ["flr"]}
  ]
}"#;

const PF: &str = "0000:01:00.0";
const VF: &str = "0000:01:00.1";
const GPU: &str = "0000:00:03.0";
const NIC: &str = "0000:00:04.0";

fn a(s: &str) -> PciAddress {
    PciAddress::parse(s).unwrap()
}

fn fresh(options: HostOptions) -> (Arc<SimKernel>, Host) {
    let sim = Arc::new(SimKernel::from_json(HOST).unwrap());
    (sim.clone(), Host::new(sim, StateStore::memory(), options))
}

fn vfio(name: &str) -> StubRequest {
    StubRequest::parse(Some(name)).unwrap()
}

#[test]
fn the_fewest_wildcards_win_and_the_first_wins_a_tie() {
    let (sim, host) = fresh(HostOptions::default());
    // The VF: vfio-pci's catch-all (7), then two variants with 5 each.
    let c = host.vfio_choice(&a(VF), None).unwrap();
    let found: Vec<(&str, u32)> = c.candidates.iter().map(|c| (c.module.as_str(), c.wildcards)).collect();
    assert_eq!(found, [("vfio_pci", 7), ("mlx5_vfio_pci", 5), ("twin_vfio_pci", 5)]);
    assert_eq!(c.modalias, "pci:v000015B3d0000101Esv000015B3sd00000016bc02sc00i00");
    assert_eq!((c.module.as_str(), c.explicit), ("mlx5_vfio_pci", false));
    assert!(c.reason.contains("fewest wildcards (5, the first of 2"), "{}", c.reason);
    // The GPU: the more specific entry wins although it comes later.
    let g = host.vfio_choice(&a(GPU), None).unwrap();
    assert_eq!(g.module, "oem_gpu_vfio_pci");
    assert_eq!(g.candidates.iter().map(|c| c.wildcards).collect::<Vec<_>>(), [7, 5, 3]);
    // The e1000e: only the catch-all: plain vfio-pci.
    let n = host.vfio_choice(&a(NIC), None).unwrap();
    assert!(n.is_plain() && n.reason.contains("plain vfio-pci"), "{n:?}");

    // Detaching with "vfio" uses the choice, loading the variant's module;
    // the record keeps the driver used, and reattach gives the VF back.
    host.detach(&a(VF), Stub::Vfio).unwrap();
    assert_eq!(sim.bind_history(VF), ["mlx5_vfio_pci"]);
    assert!(sim.module_loaded("mlx5_vfio_pci") && !sim.module_loaded("twin_vfio_pci"));
    let rec = host.state().get(VF).unwrap().unwrap();
    assert_eq!((rec.stub.as_str(), rec.original_driver.as_deref()), ("mlx5_vfio_pci", Some("mlx5_core")));
    // Detaching again: on a VFIO driver already, nothing is written.
    let writes = sim.writes().len();
    host.detach(&a(VF), Stub::Vfio).unwrap();
    assert_eq!(sim.writes().len(), writes);
    host.reattach(&a(VF), None).unwrap();
    assert_eq!(sim.driver_of(VF).as_deref(), Some("mlx5_core"));
    assert!(host.state().get(VF).unwrap().is_none());

    // A driver named unlike its module is found through /sys/module/M/drivers.
    host.detach(&a(GPU), Stub::Vfio).unwrap();
    assert_eq!(sim.driver_of(GPU).as_deref(), Some("gpu-vfio-pci"));
    assert_eq!(host.state().get(GPU).unwrap().unwrap().stub, "gpu-vfio-pci");
    host.detach(&a(NIC), Stub::Vfio).unwrap();
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("vfio-pci"));
}

#[test]
fn a_named_vfio_driver_is_used_when_it_is_one_for_the_device() {
    let (sim, host) = fresh(HostOptions::default());
    // The second of the tie, and plain vfio-pci in either spelling.
    host.detach_request(&a(VF), &vfio("vfio:twin_vfio_pci"), DetachOptions::default()).unwrap();
    assert_eq!(sim.driver_of(VF).as_deref(), Some("twin_vfio_pci"));
    assert!(host.vfio_choice(&a(VF), Some("twin-vfio-pci")).unwrap().explicit);
    host.detach_request(&a(GPU), &vfio("vfio:vfio-pci"), DetachOptions::default()).unwrap();
    assert_eq!(sim.driver_of(GPU).as_deref(), Some("vfio-pci"));
    host.detach_request(&a(NIC), &vfio("vfio:vfio_pci"), DetachOptions::default()).unwrap();
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("vfio-pci"));
    // Named again on the same driver: nothing to do; on another VFIO driver: refused.
    host.detach_request(&a(VF), &vfio("vfio:twin_vfio_pci"), DetachOptions::default()).unwrap();
    let err = host.detach_request(&a(GPU), &vfio("vfio:acme_gpu_vfio_pci"), DetachOptions::default()).unwrap_err();
    assert!(
        matches!(&err, Error::OperationInvalid(m) if m.contains("already detached to VFIO driver vfio-pci, not acme_gpu_vfio_pci") && m.contains("reattach it first")),
        "{err:?}"
    );
    // Prepare takes the same names.
    host.reattach(&a(GPU), None).unwrap();
    host.prepare_request(
        "vm1",
        &[a(GPU)],
        &vfio("vfio:acme_gpu_vfio_pci"),
        PrepareOptions { managed: true, force: false },
    )
    .unwrap();
    assert_eq!(sim.driver_of(GPU).as_deref(), Some("acme_gpu_vfio_pci"));
    assert!(host.group(&a(GPU)).unwrap().unwrap().viable(), "a variant driver is VFIO for the group rules");
    assert_eq!(host.release("vm1", None).unwrap(), 1);
    assert_eq!(sim.driver_of(GPU).as_deref(), Some("nvidia"));
}

#[test]
fn names_that_are_no_vfio_driver_for_the_device_are_refused_before_anything_changes() {
    let (sim, host) = fresh(HostOptions::default());
    let writes = sim.writes().len();
    // No modules.alias vfio_pci: line of that module.
    let err = host.detach_request(&a(VF), &vfio("vfio:bogus_vfio_pci"), DetachOptions::default()).unwrap_err();
    let m = err.to_string();
    assert!(matches!(err, Error::InvalidArg(_)), "{err:?}");
    assert!(m.contains("'vfio:bogus_vfio_pci' names no VFIO driver"), "{m}");
    assert!(m.contains("mlx5_vfio_pci (5 wildcards") && m.contains("twin_vfio_pci") && m.contains(VF), "{m}");
    // A host driver is no VFIO driver either.
    assert!(
        matches!(host.detach_request(&a(VF), &vfio("vfio:mlx5_core"), DetachOptions::default()), Err(Error::InvalidArg(m)) if m.contains("names no VFIO driver"))
    );
    // A variant for other devices.
    let err = host.detach_request(&a(NIC), &vfio("vfio:mlx5_vfio_pci"), DetachOptions::default()).unwrap_err();
    let m = err.to_string();
    assert!(m.contains("'vfio:mlx5_vfio_pci' is a VFIO variant driver for other devices"), "{m}");
    assert!(m.contains("pci:v00008086d000010D3") && m.contains("vfio_pci (7 wildcards"), "{m}");
    // Malformed names never reach the host.
    assert!(matches!(StubRequest::parse(Some("vfio:")), Err(Error::InvalidArg(_))));
    // A group detach checks every member's name first.
    assert!(host.detach_request(&a(VF), &vfio("vfio:bogus"), DetachOptions { group: true, force: false }).is_err());
    assert_eq!(sim.writes().len(), writes, "nothing was written");
    assert!(!sim.module_loaded("mlx5_vfio_pci") && !sim.module_loaded("bogus_vfio_pci"));
    assert_eq!(sim.driver_of(VF).as_deref(), Some("mlx5_core"));
    assert!(host.state().list().unwrap().is_empty());
}

#[test]
fn without_module_loading_a_variant_must_be_loaded_already() {
    let (sim, host) = fresh(HostOptions { allow_modprobe: false, ..HostOptions::default() });
    let err = host.detach(&a(VF), Stub::Vfio).unwrap_err();
    let m = err.to_string();
    assert!(matches!(err, Error::OperationFailed(_)), "{err:?}");
    assert!(m.contains("VFIO variant driver mlx5_vfio_pci") && m.contains("may not load modules"), "{m}");
    assert!(m.contains("modprobe mlx5_vfio_pci") && m.contains("\"vfio:vfio-pci\""), "{m}");
    assert_eq!(sim.driver_of(VF).as_deref(), Some("mlx5_core"), "nothing changed");
    assert!(host.state().list().unwrap().is_empty());
    assert!(sim.writes().is_empty());
    // Plain vfio-pci is not loaded either: the same refusal as ever.
    let err = host.detach_request(&a(VF), &vfio("vfio:vfio-pci"), DetachOptions::default()).unwrap_err();
    assert!(err.to_string().contains("run 'modprobe vfio-pci' as root first"), "{err}");
    // Loaded by the admin: used without loading anything.
    sim.load_module("mlx5_vfio_pci").unwrap();
    sim.set_module_loading_allowed(false);
    host.detach(&a(VF), Stub::Vfio).unwrap();
    assert_eq!(sim.driver_of(VF).as_deref(), Some("mlx5_vfio_pci"));
    host.reattach(&a(VF), None).unwrap();
}

#[test]
fn provisioned_vfs_get_their_variant_driver_and_never_the_host_vf_driver() {
    let (sim, host) = fresh(HostOptions::default());
    let vfs = host.provision_vfs(&a(PF), 3, Some(&Stub::Vfio.into()), false).unwrap();
    assert_eq!(vfs.len(), 3);
    for vf in &vfs {
        let vf = vf.to_string();
        assert_eq!(sim.driver_of(&vf).as_deref(), Some("mlx5_vfio_pci"), "{vf}");
        if vf != VF {
            assert_eq!(sim.bind_history(&vf), ["mlx5_vfio_pci"], "{vf} never met mlx5_core");
        }
        assert_eq!(host.state().get(&vf).unwrap().unwrap().stub, "mlx5_vfio_pci");
    }
    // As asked already: nothing changes.
    let writes = sim.writes().len();
    assert_eq!(host.provision_vfs(&a(PF), 3, Some(&Stub::Vfio.into()), false).unwrap(), vfs);
    assert_eq!(sim.writes().len(), writes);
    // Named: every VF on it; a name that is no VFIO driver: refused before any change.
    let again = host.provision_vfs(&a(PF), 2, Some(&vfio("vfio:twin_vfio_pci")), false).unwrap();
    assert!(again.iter().all(|v| sim.driver_of(&v.to_string()).as_deref() == Some("twin_vfio_pci")));
    let writes = sim.writes().len();
    let err = host.provision_vfs(&a(PF), 4, Some(&vfio("vfio:nope")), false).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArg(m) if m.contains("VFIO drivers this kernel has: vfio_pci, mlx5_vfio_pci")),
        "{err:?}"
    );
    assert_eq!(sim.writes().len(), writes);
    assert!(host.provision_vfs(&a(PF), 0, None, false).unwrap().is_empty());
    assert!(host.state().list().unwrap().is_empty());
}

#[test]
fn a_persistent_variant_is_named_in_its_definition() {
    let dir = std::env::temp_dir().join(format!("nodedev-variants-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = HostOptions { definitions: Some(Definitions::new(&dir)), ..HostOptions::default() };
    let (sim, host) = fresh(options);
    host.detach(&a(VF), Stub::Vfio).unwrap();
    host.define(&a(VF)).unwrap();
    let (driver, module) = host.udev_override(&a(VF)).unwrap().unwrap();
    assert_eq!((driver.as_str(), module.as_str()), ("mlx5_vfio_pci", "mlx5_vfio_pci"));
    // apply binds the defined variant even where "vfio" would now choose another.
    host.reattach(&a(VF), None).unwrap();
    let applied = host.apply().unwrap();
    assert!(applied[0].done && applied[0].outcome.contains("detached to mlx5_vfio_pci"), "{applied:?}");
    assert_eq!(sim.driver_of(VF).as_deref(), Some("mlx5_vfio_pci"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn recovery_completes_or_rolls_back_a_detach_to_a_variant() {
    use nodedev::state::{Record, Step};
    // A detach that died after the kernel bound the variant (its record
    // still says mid-detach): recover completes it.
    let (sim, host) = fresh(HostOptions::default());
    let mut rec = Record::new(VF, Some("mlx5_core".into()), "mlx5_vfio_pci");
    rec.step = Step::Detaching;
    host.state().put(&rec).unwrap();
    sim.load_module("mlx5_vfio_pci").unwrap();
    sim.write(&format!("bus/pci/devices/{VF}/driver_override"), "mlx5_vfio_pci").unwrap();
    sim.write("bus/pci/drivers/mlx5_core/unbind", VF).unwrap();
    sim.write("bus/pci/drivers_probe", VF).unwrap();
    let done = host.recover().unwrap();
    assert!(done[0].resolved && done[0].outcome.contains("on mlx5_vfio_pci"), "{done:?}");
    assert_eq!(host.state().get(VF).unwrap().unwrap().step, Step::Detached);
    host.reattach(&a(VF), None).unwrap();
    assert_eq!(sim.driver_of(VF).as_deref(), Some("mlx5_core"));
    // One that died between unbind and bind: rolled back to mlx5_core.
    host.state().put(&rec).unwrap();
    sim.write("bus/pci/drivers/mlx5_core/unbind", VF).unwrap();
    let done = host.recover().unwrap();
    assert!(done[0].resolved, "{done:?}");
    assert_eq!(sim.driver_of(VF).as_deref(), Some("mlx5_core"));
    assert!(host.state().get(VF).unwrap().is_none());
}

#[test]
fn the_cli_and_the_c_call_take_vfio_names() {
    let file = std::env::temp_dir().join(format!("nodedev-variants-host-{}.json", std::process::id()));
    std::fs::write(&file, HOST).unwrap();
    let uri = format!("test://{}", file.display());
    let bin = env!("CARGO_BIN_EXE_nodedev");
    let run = |script: &str| std::process::Command::new(bin).args(["-c", &uri, script]).output().unwrap();
    let o =
        run(&format!("detach {VF}; detach {GPU} --driver vfio:acme_gpu_vfio_pci; detach {NIC} --driver vfio:vfio-pci"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out} {}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains(&format!("{VF} detached to mlx5_vfio_pci")), "{out}");
    assert!(out.contains(&format!("{GPU} detached to acme_gpu_vfio_pci")), "{out}");
    assert!(out.contains(&format!("{NIC} detached to vfio-pci")), "{out}");
    let o = run(&format!("detach {NIC} --driver vfio:mlx5_vfio_pci"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("VFIO variant driver for other devices"), "{err}");
    // show --json explains the choice.
    let o = run(&format!("show {VF} --json"));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let v = &doc["vfio_driver"];
    assert_eq!(v["module"], "mlx5_vfio_pci");
    assert_eq!(v["candidates"].as_array().unwrap().len(), 3);
    assert_eq!(v["candidates"][1]["wildcards"], 5);
    assert!(v["reason"].as_str().unwrap().contains("the first of 2"), "{v}");

    let cstr = |s: &str| CString::new(s).unwrap();
    unsafe {
        let conn = virConnectOpen(cstr(&uri).as_ptr());
        assert!(!conn.is_null());
        let dev = virNodeDeviceLookupByName(conn, cstr("pci_0000_01_00_1").as_ptr());
        assert!(!dev.is_null());
        let msg = || CStr::from_ptr(virGetLastErrorMessage()).to_string_lossy().into_owned();
        assert_eq!(virNodeDeviceDetachFlags(dev, cstr("vfio:bogus").as_ptr(), 0), -1);
        assert_eq!((*virGetLastError()).code, 8, "VIR_ERR_INVALID_ARG: {}", msg());
        assert!(msg().contains("names no VFIO driver"), "{}", msg());
        assert_eq!(virNodeDeviceDetachFlags(dev, cstr("vfio:twin-vfio-pci").as_ptr(), 0), 0, "{}", msg());
        virNodeDeviceFree(dev);
        virConnectClose(conn);
    }
    std::fs::remove_file(&file).unwrap();
}
