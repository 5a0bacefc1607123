//! Mediated devices on the simulated kernel: the kernel's rules (sysfs
//! files, create/remove, pool, UUIDs, groups), the host's operations and
//! refusals, mdevctl's definition files, libvirt's calls, XML and list
//! flags, and the real backend reading a tree with mdevs.

use nodedev::capi::connect::{virConnectClose, virConnectOpen, virConnectOpenReadOnly};
use nodedev::capi::error::{virGetLastError, virGetLastErrorMessage, virResetLastError};
use nodedev::capi::mdev::*;
use nodedev::capi::nodedev::{
    virConnectListAllNodeDevices, virNodeDeviceDetachFlags, virNodeDeviceFree, virNodeDeviceGetName,
    virNodeDeviceGetParent, virNodeDeviceGetXMLDesc, virNodeDeviceListCaps, virNodeDeviceLookupByName,
    virNodeDeviceNumOfCaps, virNodeNumOfDevices,
};
use nodedev::capi::persistent::{virNodeDeviceGetAutostart, virNodeDeviceSetAutostart};
use nodedev::capi::virConnectListAllNodeDeviceFlags as F;
use nodedev::capi::{virConnectPtr, virNodeDevicePtr};
use nodedev::mdevctl::MdevDefinitions;
use nodedev::state::StateStore;
use nodedev::sysfs::host::HostSysfs;
use nodedev::sysfs::sim::SimKernel;
use nodedev::sysfs::Sysfs;
use nodedev::{AuthRequest, Error, Host, HostOptions, MdevConfig, MdevId, PciAddress, Policy};
use std::ffi::{c_char, c_int, c_uint, CStr, CString};
use std::fs;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{Arc, Mutex};

#[path = "common/json_schema.rs"]
mod json_schema;

const IGPU: &str = "0000:00:02.0"; // i915, the GVT-g parent of test:///default
const V4: &str = "i915-GVTg_V5_4"; // 2 units of 8
const V8: &str = "i915-GVTg_V5_8"; // 1 unit of 8
const U1: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001";
const U2: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1002";

fn types_dir(t: &str) -> String {
    format!("bus/pci/devices/{IGPU}/mdev_supported_types/{t}")
}

fn available(sim: &dyn Sysfs, t: &str) -> u32 {
    sim.read(&format!("{}/available_instances", types_dir(t))).unwrap().trim().parse().unwrap()
}

fn errno(r: std::io::Result<()>) -> i32 {
    r.unwrap_err().raw_os_error().unwrap()
}

fn tempdir(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("nodedev-mdev-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&p);
    p
}

fn host_with(sim: &Arc<SimKernel>, defs: Option<&Path>) -> Host {
    let options = HostOptions { mdev_definitions: defs.map(MdevDefinitions::new), ..HostOptions::default() };
    Host::new(sim.clone(), StateStore::memory(), options)
}

fn igpu() -> PciAddress {
    PciAddress::parse(IGPU).unwrap()
}

fn cfg(t: &str, uuid: Option<&str>) -> MdevConfig {
    MdevConfig { parent: igpu(), type_id: t.into(), uuid: uuid.map(str::to_string), attrs: Vec::new() }
}

#[test]
fn the_kernel_creates_mdevs_from_a_shared_pool_with_unique_uuids() {
    let sim = SimKernel::builtin();
    let s: &dyn Sysfs = &sim;
    let mut types = s.list_dir(&format!("bus/pci/devices/{IGPU}/mdev_supported_types")).unwrap();
    types.sort();
    assert_eq!(types, [V4, V8]);
    assert_eq!(s.read(&format!("{}/name", types_dir(V4))).unwrap(), "GVTg_V5_4\n");
    assert_eq!(s.read(&format!("{}/device_api", types_dir(V4))).unwrap(), "vfio-pci\n");
    assert!(s.read(&format!("{}/description", types_dir(V8))).unwrap().contains("resolution: 1024x768"));
    assert_eq!((available(s, V4), available(s, V8)), (4, 8));
    assert_eq!(s.list_dir("class/mdev_bus").unwrap(), [IGPU]);

    // create: a UUID, with or without its newline; the pool shrinks for both types.
    s.write(&format!("{}/create", types_dir(V4)), &format!("{U1}\n")).unwrap();
    assert_eq!((available(s, V4), available(s, V8)), (3, 6));
    assert_eq!(errno(s.write(&format!("{}/create", types_dir(V8)), U1)), libc::EEXIST, "a UUID is host-wide");
    assert_eq!(errno(s.write(&format!("{}/create", types_dir(V8)), "not-a-uuid")), libc::EINVAL);
    assert_eq!(errno(s.write(&format!("{}/create", types_dir(V8)), &format!("{U2}xx"))), libc::EINVAL);
    assert_eq!(errno(s.read(&format!("{}/create", types_dir(V8))).map(drop)), libc::EACCES, "write-only");

    // The device: on the mdev bus, bound to vfio_mdev, its type, a group of its own.
    let dev = format!("bus/mdev/devices/{U1}");
    assert_eq!(s.read_link(&dev).unwrap(), format!("../../../devices/pci0000:00/{IGPU}/{U1}"));
    assert_eq!(s.read_link(&format!("{dev}/driver")).unwrap(), "../../../../bus/mdev/drivers/vfio_mdev");
    assert_eq!(s.read_link(&format!("{dev}/mdev_type")).unwrap(), format!("../mdev_supported_types/{V4}"));
    let group = s.read_link(&format!("{dev}/iommu_group")).unwrap();
    let g: u32 = group.rsplit('/').next().unwrap().parse().unwrap();
    let pci_groups: Vec<u32> = s
        .list_dir("bus/pci/devices")
        .unwrap()
        .iter()
        .filter_map(|a| s.read_link(&format!("bus/pci/devices/{a}/iommu_group")).ok())
        .map(|t| t.rsplit('/').next().unwrap().parse().unwrap())
        .collect();
    assert!(!pci_groups.contains(&g), "group {g} is the mdev's own");
    assert_eq!(s.list_dir(&format!("kernel/iommu_groups/{g}/devices")).unwrap(), [U1]);
    assert!(s.exists(&format!("kernel/iommu_groups/{g}/devices/{U1}/remove")), "the group's link leads to the mdev");
    assert_eq!(s.list_dir(&format!("{}/devices", types_dir(V4))).unwrap(), [U1]);
    assert!(s.exists(&format!("{}/devices/{U1}/mdev_type", types_dir(V4))));

    // The pool runs out: the parent driver's probe refuses (ENOSPC).
    for i in 0..3 {
        s.write(&format!("{}/create", types_dir(V4)), &format!("00000000-0000-0000-0000-00000000000{i}")).unwrap();
    }
    assert_eq!(available(s, V8), 0);
    assert_eq!(errno(s.write(&format!("{}/create", types_dir(V8)), U2)), libc::ENOSPC);

    // remove: "0" does nothing, "1" takes it away and gives its share back.
    s.write(&format!("{dev}/remove"), "0").unwrap();
    assert!(s.exists(&dev));
    s.write(&format!("{dev}/remove"), "1\n").unwrap();
    assert!(!s.exists(&dev));
    assert!(!s.exists(&format!("kernel/iommu_groups/{g}")));
    assert_eq!(available(s, V8), 2);
}

#[test]
fn an_mdev_goes_with_its_parents_driver() {
    let sim = SimKernel::builtin();
    let s: &dyn Sysfs = &sim;
    s.write(&format!("{}/create", types_dir(V8)), U1).unwrap();
    s.write("bus/pci/drivers/i915/unbind", IGPU).unwrap();
    assert!(!s.exists(&format!("bus/mdev/devices/{U1}")));
    assert!(!s.exists(&format!("bus/pci/devices/{IGPU}/mdev_supported_types")), "unregistered");
    assert!(s.list_dir("class/mdev_bus").unwrap().is_empty());
    s.write("bus/pci/drivers/i915/bind", IGPU).unwrap();
    assert_eq!(available(s, V8), 8, "a fresh registration, no mdev left");
}

#[test]
fn the_host_lists_types_creates_describes_and_removes() {
    let sim = Arc::new(SimKernel::builtin());
    let h = host_with(&sim, None);
    let types = h.mdev_types(&igpu()).unwrap();
    assert_eq!(types.iter().map(|t| (t.id.as_str(), t.available_instances)).collect::<Vec<_>>(), [(V4, 4), (V8, 8)]);
    assert_eq!(types[0].name.as_deref(), Some("GVTg_V5_4"));
    assert!(h.mdev_types(&PciAddress::parse("0000:03:01.0").unwrap()).unwrap().is_empty());
    assert_eq!(h.mdev_parents(), [igpu()]);
    let parent_xml = h.xml(&igpu()).unwrap();
    assert!(
        parent_xml.contains(
            "    <capability type='mdev_types'>\n      <type id='i915-GVTg_V5_4'>\n        <name>GVTg_V5_4</name>\n        <deviceAPI>vfio-pci</deviceAPI>\n        <availableInstances>4</availableInstances>\n      </type>\n"
        ),
        "{parent_xml}"
    );

    let id = h.mdev_create(&cfg(V4, Some(&U1.to_uppercase()))).unwrap();
    assert_eq!(id.uuid, U1, "the kernel's spelling");
    assert_eq!(id.node_name(), "mdev_83b8f4f2_509f_382f_3c1e_e6bfe0fa1001_0000_00_02_0");
    assert_eq!(MdevId::from_node_name(&id.node_name()), Some(id.clone()));
    let m = h.mdev(&id).unwrap();
    assert!(m.active && !m.persistent());
    let g = m.iommu_group.unwrap();
    let xml = h.mdev_xml(&id).unwrap();
    assert_eq!(
        xml,
        format!(
            "<device>\n  <name>{}</name>\n  <path>/sys/devices/pci0000:00/{IGPU}/{U1}</path>\n  <parent>pci_0000_00_02_0</parent>\n  <driver>\n    <name>vfio_mdev</name>\n  </driver>\n  <capability type='mdev'>\n    <type id='{V4}'/>\n    <uuid>{U1}</uuid>\n    <parent_addr>{IGPU}</parent_addr>\n    <iommuGroup number='{g}'/>\n  </capability>\n</device>\n",
            id.node_name()
        )
    );
    assert!(h.xml(&igpu()).unwrap().contains("<availableInstances>3</availableInstances>"));
    // A random UUID when none is given.
    let r = h.mdev_create(&cfg(V8, None)).unwrap();
    assert_ne!(r.uuid, U1);
    assert_eq!(h.mdevs().unwrap().len(), 2);

    // Refusals, each before the kernel is asked.
    let e = h.mdev_create(&cfg(V8, Some(U1))).unwrap_err();
    assert!(matches!(&e, Error::OperationInvalid(m) if m.contains("already active")), "{e:?}");
    let e = h.mdev_create(&cfg("i915-GVTg_V5_1", Some(U2))).unwrap_err();
    assert!(matches!(&e, Error::OperationFailed(m) if m.contains(V4) && m.contains(V8)), "lists the types: {e:?}");
    let nic = MdevConfig { parent: PciAddress::parse("0000:03:01.0").unwrap(), ..cfg(V8, Some(U2)) };
    assert!(
        matches!(h.mdev_create(&nic), Err(Error::OperationFailed(m)) if m.contains("not a mediated-device parent"))
    );
    assert!(matches!(h.mdev_create(&cfg(V8, Some("83b8f4f2"))), Err(Error::InvalidArg(_))));
    let mut bad_attr = cfg(V8, Some(U2));
    bad_attr.attrs = vec![("../x".into(), "1".into())];
    assert!(matches!(h.mdev_create(&bad_attr), Err(Error::InvalidArg(_))));
    // An attribute the device does not have: created, then removed again.
    let mut attr = cfg(V8, Some(U2));
    attr.attrs = vec![("gvt_weight".into(), "4".into())];
    let e = h.mdev_create(&attr).unwrap_err();
    assert!(e.to_string().contains("removed again"), "{e}");
    assert!(!sim.exists(&format!("bus/mdev/devices/{U2}")));
    // No parent type left.
    for _ in 0..2 {
        h.mdev_create(&cfg(V4, None)).unwrap();
    }
    h.mdev_create(&cfg(V8, None)).unwrap(); // 2 + 1 + 2 * 2 + 1 = 8 units
    assert!(matches!(h.mdev_create(&cfg(V8, None)), Err(Error::OperationFailed(m)) if m.contains("no instance")));

    // Its parent is not taken from its driver while mdevs live on it.
    let e =
        h.detach_with(&igpu(), nodedev::Stub::Vfio, nodedev::DetachOptions { group: false, force: true }).unwrap_err();
    assert!(matches!(&e, Error::OperationInvalid(m) if m.contains("live mediated device") && m.contains(U1)), "{e:?}");
    assert_eq!(sim.driver_of(IGPU).as_deref(), Some("i915"));

    h.mdev_destroy(&id).unwrap();
    assert!(matches!(h.mdev(&id), Err(Error::NoDevice(_))));
    assert!(matches!(h.mdev_destroy(&id), Err(Error::NoDevice(_))));

    // Read-only and locked-down connections change nothing.
    let ro = Host::new(sim.clone(), StateStore::memory(), HostOptions { read_only: true, ..HostOptions::default() });
    assert!(matches!(ro.mdev_create(&cfg(V8, None)), Err(Error::Denied(_))));
    assert!(matches!(ro.mdev_destroy(&r), Err(Error::Denied(_))));
}

#[test]
fn an_mdev_in_use_is_not_removed() {
    let sim = Arc::new(SimKernel::builtin());
    let h = host_with(&sim, None);
    let id = h.mdev_create(&cfg(V8, Some(U1))).unwrap();
    let g = h.mdev(&id).unwrap().iommu_group.unwrap();
    sim.hold_vfio_mdev(U1, 4242, "qemu-system-x86").unwrap();
    let e = h.mdev_destroy(&id).unwrap_err();
    let Error::OperationInvalid(m) = &e else { panic!("{e:?}") };
    assert!(m.contains("pid 4242 (qemu-system-x86)") && m.contains(&format!("/dev/vfio/{g}")), "{m}");
    assert!(sim.exists(&format!("bus/mdev/devices/{U1}")), "nothing written");
    sim.release_holder(4242);
    h.mdev_destroy(&id).unwrap();
    assert!(!sim.exists(&format!("bus/mdev/devices/{U1}")));
}

/// An mdev operation locks its parent's IOMMU group (what a detach of the
/// parent locks), not the whole host: one on another group goes on.
#[test]
fn mdev_operations_lock_the_parents_group_only() {
    use nodedev::state::LockKey;
    let sim = Arc::new(SimKernel::builtin());
    let state = StateStore::memory();
    let defs = tempdir("lock");
    let options = HostOptions {
        mdev_definitions: Some(MdevDefinitions::new(&defs)),
        lock_wait: std::time::Duration::from_millis(300),
        ..HostOptions::default()
    };
    let h = Arc::new(Host::new(sim.clone(), state.clone(), options));
    let parent_group = h.lock_key(&igpu());
    assert_eq!(parent_group, LockKey::Group(3));

    // Another group held: create, define, start, autostart, stop, undefine go on.
    let other = state.lock_keys(&[LockKey::Group(8)], &[]).unwrap();
    let id = h.mdev_create(&cfg(V4, Some(U1))).unwrap();
    h.mdev_destroy(&id).unwrap();
    let id = h.mdev_define(&cfg(V4, Some(U2)), Some(false)).unwrap();
    h.mdev_start(&id).unwrap();
    h.mdev_set_autostart(&id, true).unwrap();
    h.mdev_destroy(&id).unwrap();
    drop(other);

    // The parent's group held (by another thread): each waits, then names it.
    let held = state.lock_keys(&[parent_group], &[]).unwrap();
    let h2 = h.clone();
    let id2 = id.clone();
    let errors = std::thread::spawn(move || {
        vec![
            h2.mdev_create(&cfg(V4, Some(U1))).unwrap_err(),
            h2.mdev_start(&id2).unwrap_err(),
            h2.mdev_set_autostart(&id2, false).unwrap_err(),
            h2.mdev_undefine(&id2).unwrap_err(),
        ]
    })
    .join()
    .unwrap();
    for e in errors {
        assert!(matches!(&e, Error::Timeout(m) if m.contains("IOMMU group 3")), "{e}");
    }
    assert!(!sim.exists(&format!("bus/mdev/devices/{U1}")), "nothing created while the group was held");
    drop(held);
    h.mdev_undefine(&id).unwrap();
    fs::remove_dir_all(&defs).unwrap();
}

#[test]
fn definitions_are_mdevctls_files_and_autostart_ones_start_at_apply() {
    let dir = tempdir("defs");
    let sim = Arc::new(SimKernel::builtin());
    let h = host_with(&sim, Some(&dir));
    let mut c = cfg(V4, Some(U1));
    c.attrs = vec![("gvt_weight".into(), "4".into())];
    let id = h.mdev_define(&c, Some(true)).unwrap();
    let file = dir.join(IGPU).join(U1);
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(v["mdev_type"], V4);
    assert_eq!(v["start"], "auto");
    assert_eq!(v["attrs"][0]["gvt_weight"], "4");
    let m = h.mdev(&id).unwrap();
    assert!(!m.active && m.persistent() && m.autostart());
    assert!(h.mdev_xml(&id).unwrap().contains("<attr name='gvt_weight' value='4'/>"));
    assert!(!h.mdev_xml(&id).unwrap().contains("<path>"), "not live: no sysfs path");
    // Its attribute does not exist on the simulated device: start fails, nothing is left behind.
    assert!(h.mdev_start(&id).is_err());
    assert!(!h.mdev(&id).unwrap().active);
    // Defined again without it (autostart kept), then started by apply.
    let id = h.mdev_define(&cfg(V4, Some(U1)), None).unwrap();
    assert!(h.mdev(&id).unwrap().autostart());
    let manual = h.mdev_define(&cfg(V8, Some(U2)), Some(false)).unwrap();
    let applied = h.apply_mdevs().unwrap();
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert!(applied[0].done && applied[0].outcome.contains("started"), "{applied:?}");
    assert!(h.mdev(&id).unwrap().active);
    assert!(!h.mdev(&manual).unwrap().active, "start manual is not started");
    assert!(h.apply_mdevs().unwrap()[0].outcome.contains("active already"));
    // A live device cannot be redefined with another type.
    assert!(matches!(h.mdev_define(&cfg(V8, Some(U1)), None), Err(Error::OperationInvalid(_))));
    h.mdev_start(&manual).unwrap();
    assert!(matches!(h.mdev_start(&manual), Err(Error::OperationInvalid(m)) if m.contains("already active")));
    h.mdev_set_autostart(&manual, true).unwrap();
    assert!(h.mdev(&manual).unwrap().autostart());
    // Undefine: the live device stays, transient.
    h.mdev_undefine(&manual).unwrap();
    let m = h.mdev(&manual).unwrap();
    assert!(m.active && !m.persistent());
    assert!(matches!(h.mdev_undefine(&manual), Err(Error::OperationInvalid(_))));
    assert!(matches!(h.mdev_set_autostart(&manual, true), Err(Error::OperationInvalid(m)) if m.contains("transient")));
    // Stop: a defined one stays defined, inactive.
    h.mdev_destroy(&id).unwrap();
    let m = h.mdev(&id).unwrap();
    assert!(!m.active && m.persistent());
    assert!(matches!(h.mdev_destroy(&id), Err(Error::OperationInvalid(m)) if m.contains("not active")));
    // An unusable file is reported by apply.
    fs::write(dir.join(IGPU).join("11111111-2222-3333-4444-555555555555"), "{").unwrap();
    assert!(h.apply_mdevs().unwrap().iter().any(|a| !a.done && a.outcome.contains("unusable")));
    // Without a definitions directory: unsupported, said so.
    assert!(matches!(host_with(&sim, None).mdev_define(&cfg(V8, None), None), Err(Error::Unsupported(_))));
    fs::remove_dir_all(&dir).unwrap();
}

// ---- Authorization, lockdown and policy (issue 13 item 4).

/// Live mdev UUIDs and definition files, to show a refusal changed nothing.
fn snapshot(sim: &SimKernel, defs: &Path) -> (Vec<String>, Vec<(String, String)>) {
    let mut live = sim.list_dir("bus/mdev/devices").unwrap();
    live.sort();
    let mut files = Vec::new();
    for p in fs::read_dir(defs).into_iter().flatten().flatten() {
        for f in fs::read_dir(p.path()).unwrap().flatten() {
            files.push((f.path().display().to_string(), fs::read_to_string(f.path()).unwrap()));
        }
    }
    files.sort();
    (live, files)
}

/// Every mdev operation asks the callback with its own operation, the
/// mdev and its type; a denial changes nothing, and `apply` asks too.
#[test]
fn the_authorization_callback_is_asked_for_every_mdev_operation() {
    let dir = tempdir("auth");
    let sim = Arc::new(SimKernel::builtin());
    let h = host_with(&sim, Some(&dir));
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let allow: Arc<Mutex<bool>> = Arc::new(Mutex::new(false));
    let (s, a) = (seen.clone(), allow.clone());
    h.set_authorizer(Some(Arc::new(move |r: &AuthRequest<'_>| {
        let m = r.mdev.map(|m| m.node_name()).unwrap_or_default();
        s.lock().unwrap().push(format!("{:?} {} {m} {}", r.operation, r.address, r.mdev_type.unwrap_or("-")));
        *a.lock().unwrap()
    })));
    let set = |v: bool| *allow.lock().unwrap() = v;
    let take = || std::mem::take(&mut *seen.lock().unwrap());
    let n1 = MdevId { parent: igpu(), uuid: U1.into() }.node_name();
    let n2 = MdevId { parent: igpu(), uuid: U2.into() }.node_name();

    // Denied: nothing created, nothing written.
    let before = snapshot(&sim, &dir);
    let e = h.mdev_create(&cfg(V4, Some(U1))).unwrap_err();
    assert!(matches!(&e, Error::Denied(m) if m.contains("authorization callback") && m.contains(U1)), "{e}");
    let e = h.mdev_define(&cfg(V8, Some(U2)), Some(true)).unwrap_err();
    assert!(matches!(&e, Error::Denied(_)), "{e}");
    assert_eq!(snapshot(&sim, &dir), before);
    assert_eq!(take(), [format!("MdevCreate {IGPU} {n1} {V4}"), format!("MdevDefine {IGPU} {n2} {V8}")]);

    // Allowed: made; then each further change denied leaves it as it was.
    set(true);
    let live = h.mdev_create(&cfg(V4, Some(U1))).unwrap();
    let defined = h.mdev_define(&cfg(V8, Some(U2)), Some(false)).unwrap();
    take();
    set(false);
    let before = snapshot(&sim, &dir);
    assert!(matches!(h.mdev_start(&defined), Err(Error::Denied(_))));
    assert!(matches!(h.mdev_set_autostart(&defined, true), Err(Error::Denied(_))));
    assert!(matches!(h.mdev_destroy(&live), Err(Error::Denied(_))));
    assert!(matches!(h.mdev_undefine(&defined), Err(Error::Denied(_))));
    assert_eq!(snapshot(&sim, &dir), before);
    assert_eq!(
        take(),
        [
            format!("MdevCreate {IGPU} {n2} {V8}"),
            format!("MdevAutostart {IGPU} {n2} {V8}"),
            format!("MdevDestroy {IGPU} {n1} -"),
            format!("MdevUndefine {IGPU} {n2} -"),
        ]
    );
    // Unknown devices are "no such device" before the callback is asked (libvirt's order).
    let ghost = MdevId { parent: igpu(), uuid: "00000000-0000-0000-0000-000000000009".into() };
    assert!(matches!(h.mdev_destroy(&ghost), Err(Error::NoDevice(_))));
    assert!(matches!(h.mdev_start(&ghost), Err(Error::NoDevice(_))));
    assert!(matches!(h.mdev_undefine(&ghost), Err(Error::NoDevice(_))));
    assert!(take().is_empty());

    // apply at boot asks before it starts an autostart definition.
    set(true);
    h.mdev_set_autostart(&defined, true).unwrap();
    take();
    set(false);
    let applied = h.apply_mdevs().unwrap();
    assert!(applied.iter().any(|a| !a.done && a.outcome.contains("authorization callback")), "{applied:?}");
    assert!(!sim.exists(&format!("bus/mdev/devices/{U2}")));
    assert_eq!(take(), [format!("MdevCreate {IGPU} {n2} {V8}")]);
    set(true);
    assert!(h.apply_mdevs().unwrap().iter().all(|a| a.done));
    assert!(sim.exists(&format!("bus/mdev/devices/{U2}")));
    h.mdev_destroy(&defined).unwrap();
    h.mdev_destroy(&live).unwrap();
    h.mdev_undefine(&defined).unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

/// A locked-down host creates, removes, defines, undefines, autostarts
/// and applies no mdev; policy deny rules on the parent refuse what would
/// give part of it to a guest, and let what gives it back go on.
#[test]
fn lockdown_and_policy_forbid_mdev_changes() {
    let dir = tempdir("lockdown");
    let sim = Arc::new(SimKernel::builtin());
    let open = host_with(&sim, Some(&dir));
    let live = open.mdev_create(&cfg(V4, Some(U1))).unwrap();
    let defined = open.mdev_define(&cfg(V8, Some(U2)), Some(true)).unwrap();
    let with_policy = |text: &str| {
        let options = HostOptions {
            mdev_definitions: Some(MdevDefinitions::new(&dir)),
            policy: Policy::parse(text, "p.conf").unwrap(),
            ..HostOptions::default()
        };
        Host::new(sim.clone(), StateStore::memory(), options)
    };
    let locked = with_policy("lockdown yes");
    let before = snapshot(&sim, &dir);
    let denied = |r: Result<(), Error>| matches!(&r, Err(Error::Denied(m)) if m.contains("locked down"));
    assert!(denied(locked.mdev_create(&cfg(V8, None)).map(drop)));
    assert!(denied(locked.mdev_define(&cfg(V8, None), None).map(drop)));
    assert!(denied(locked.mdev_start(&defined)));
    assert!(denied(locked.mdev_set_autostart(&defined, false)));
    assert!(denied(locked.mdev_destroy(&live)));
    assert!(denied(locked.mdev_undefine(&defined)));
    let applied = locked.apply_mdevs().unwrap();
    assert!(applied.iter().any(|a| !a.done && a.outcome.contains("locked down")), "{applied:?}");
    assert_eq!(snapshot(&sim, &dir), before, "nothing changed");

    // A deny rule on the parent (by address or by its class, display 0x03).
    for rule in [format!("deny {IGPU}"), "deny class 0x03".to_string()] {
        let p = with_policy(&rule);
        let denied = |r: Result<(), Error>| matches!(&r, Err(Error::Denied(m)) if m.contains("deny rule"));
        assert!(denied(p.mdev_create(&cfg(V8, None)).map(drop)), "{rule}");
        assert!(denied(p.mdev_define(&cfg(V8, None), None).map(drop)));
        assert!(denied(p.mdev_start(&defined)));
        assert!(denied(p.mdev_set_autostart(&defined, true)));
        assert!(p.apply_mdevs().unwrap().iter().any(|a| !a.done && a.outcome.contains("deny rule")));
        assert_eq!(snapshot(&sim, &dir), before, "nothing changed");
    }
    // Giving back is allowed under deny rules (as reattach is).
    let p = with_policy(&format!("deny {IGPU}"));
    p.mdev_set_autostart(&defined, false).unwrap();
    p.mdev_destroy(&live).unwrap();
    p.mdev_undefine(&defined).unwrap();
    assert_eq!(snapshot(&sim, &dir), (vec![], vec![]));
    fs::remove_dir_all(&dir).unwrap();
}

// ---- The C API (one test: test:///default is one simulated host per process).

unsafe fn last() -> (c_int, String) {
    let e = virGetLastError();
    assert!(!e.is_null(), "an error was expected");
    let msg = CStr::from_ptr(virGetLastErrorMessage()).to_string_lossy().into_owned();
    let code = (*e).code;
    virResetLastError();
    (code, msg)
}

unsafe fn name(d: virNodeDevicePtr) -> String {
    CStr::from_ptr(virNodeDeviceGetName(d)).to_string_lossy().into_owned()
}

unsafe fn xml_of(d: virNodeDevicePtr) -> String {
    let p = virNodeDeviceGetXMLDesc(d, 0);
    assert!(!p.is_null());
    let s = CStr::from_ptr(p).to_string_lossy().into_owned();
    libc::free(p.cast());
    s
}

unsafe fn list(conn: virConnectPtr, flags: c_uint) -> Vec<String> {
    let mut devs: *mut virNodeDevicePtr = ptr::null_mut();
    let n = virConnectListAllNodeDevices(conn, &mut devs, flags);
    assert!(n >= 0, "{:?}", last());
    let mut out = Vec::new();
    for i in 0..n as usize {
        out.push(name(*devs.add(i)));
        virNodeDeviceFree(*devs.add(i));
    }
    libc::free(devs.cast());
    out
}

fn doc(parent: &str, cap: &str) -> CString {
    CString::new(format!("<device><parent>{parent}</parent>{cap}</device>")).unwrap()
}

fn mdev_cap(t: &str, uuid: &str) -> String {
    format!("<capability type='mdev'><type id='{t}'/><uuid>{uuid}</uuid></capability>")
}

const VIR_ERR_INVALID_ARG: c_int = 8;
const VIR_ERR_INTERNAL_ERROR: c_int = 1;
const VIR_ERR_XML_ERROR: c_int = 27;
const VIR_ERR_OPERATION_DENIED: c_int = 29;
const VIR_ERR_NO_NODE_DEVICE: c_int = 53;
const VIR_ERR_OPERATION_INVALID: c_int = 55;
const VIR_ERR_CONFIG_UNSUPPORTED: c_int = 67;
const VIR_ERR_PARSE_FAILED: c_int = 32;
const VIR_ERR_XML_DETAIL: c_int = 35;

#[test]
fn libvirts_calls_xml_and_list_flags() {
    let dir = tempdir("capi");
    let uri = CString::new(format!("test:///default?confdir={}", dir.display())).unwrap();
    unsafe {
        let conn = virConnectOpen(uri.as_ptr());
        assert!(!conn.is_null());
        let pci_count = list(conn, 0).len();

        // Create (transient) from libvirt's XML.
        let d = virNodeDeviceCreateXML(conn, doc("pci_0000_00_02_0", &mdev_cap(V4, U1)).as_ptr(), 0);
        assert!(!d.is_null(), "{:?}", last());
        let mdev_name = "mdev_83b8f4f2_509f_382f_3c1e_e6bfe0fa1001_0000_00_02_0";
        assert_eq!(name(d), mdev_name);
        assert_eq!(CStr::from_ptr(virNodeDeviceGetParent(d)).to_str().unwrap(), "pci_0000_00_02_0");
        assert!(xml_of(d).contains(&format!("<uuid>{U1}</uuid>")));
        assert_eq!((virNodeDeviceIsActive(d), virNodeDeviceIsPersistent(d)), (1, 0));
        assert_eq!(virNodeDeviceNumOfCaps(d), 1);
        let mut caps: [*mut c_char; 4] = [ptr::null_mut(); 4];
        assert_eq!(virNodeDeviceListCaps(d, caps.as_mut_ptr(), 4), 1);
        assert_eq!(CStr::from_ptr(caps[0]).to_str().unwrap(), "mdev");
        libc::free(caps[0].cast());
        let mut auto: c_int = -1;
        assert_eq!(virNodeDeviceGetAutostart(d, &mut auto), 0);
        assert_eq!(auto, 0);
        // Transient: no autostart, nothing to undefine (libvirt's codes,
        // node_device_driver.c nodeDeviceSetAutostart / nodeDeviceUndefine).
        assert_eq!(virNodeDeviceSetAutostart(d, 1), -1);
        assert_eq!(last().0, VIR_ERR_OPERATION_INVALID);
        assert_eq!(virNodeDeviceUndefine(d, 0), -1);
        assert_eq!(last().0, VIR_ERR_OPERATION_INVALID);
        assert_eq!(virNodeDeviceCreate(d, 0), -1);
        assert_eq!(last().0, VIR_ERR_OPERATION_INVALID, "already active");
        // PCI-only calls on an mdev.
        assert_eq!(virNodeDeviceDetachFlags(d, ptr::null(), 0), -1);
        let (code, msg) = last();
        assert!(code == VIR_ERR_INVALID_ARG && msg.contains("not a PCI device"), "{msg}");
        // Found by name; the parent lists mdev_types.
        let cname = CString::new(mdev_name).unwrap();
        let again = virNodeDeviceLookupByName(conn, cname.as_ptr());
        assert!(!again.is_null());
        virNodeDeviceFree(again);
        let parent = virNodeDeviceLookupByName(conn, c"pci_0000_00_02_0".as_ptr());
        assert_eq!(virNodeDeviceNumOfCaps(parent), 2);
        assert_eq!(virNodeDeviceListCaps(parent, caps.as_mut_ptr(), 4), 2);
        assert_eq!(CStr::from_ptr(caps[1]).to_str().unwrap(), "mdev_types");
        libc::free(caps[0].cast());
        libc::free(caps[1].cast());
        assert!(xml_of(parent).contains("<availableInstances>3</availableInstances>"));
        // A PCI device is active, cannot be created, destroyed or undefined.
        assert_eq!(virNodeDeviceIsActive(parent), 1);
        assert_eq!(virNodeDeviceIsPersistent(parent), 0);
        assert_eq!(virNodeDeviceCreate(parent, 0), -1);
        assert_eq!(last().0, VIR_ERR_OPERATION_INVALID);
        assert_eq!(virNodeDeviceDestroy(parent), -1);
        assert_eq!(last().0, VIR_ERR_CONFIG_UNSUPPORTED);
        // nodeDeviceUndefine: "not defined" comes before the device type.
        assert_eq!(virNodeDeviceUndefine(parent, 0), -1);
        assert_eq!(last().0, VIR_ERR_OPERATION_INVALID);

        // Define (persistent, inactive), start, autostart, undefine.
        let def = virNodeDeviceDefineXML(conn, doc("0000:00:02.0", &mdev_cap(V8, U2)).as_ptr(), 0);
        assert!(!def.is_null(), "{:?}", last());
        assert_eq!((virNodeDeviceIsActive(def), virNodeDeviceIsPersistent(def)), (0, 1));
        assert!(dir.join("mdevctl.d").join(IGPU).join(U2).exists(), "mdevctl's file");
        assert_eq!(virNodeDeviceDestroy(def), -1);
        assert_eq!(last().0, VIR_ERR_OPERATION_INVALID, "not active");
        // List flags as libvirt filters them.
        assert_eq!(list(conn, 0).len(), pci_count + 2);
        let mdev_flag = F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV as c_uint;
        let types_flag = F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV_TYPES as c_uint;
        let active = F::VIR_CONNECT_LIST_NODE_DEVICES_ACTIVE as c_int as c_uint;
        let inactive = F::VIR_CONNECT_LIST_NODE_DEVICES_INACTIVE as c_uint;
        let def_name = name(def);
        assert_eq!(list(conn, mdev_flag), [mdev_name.to_string(), def_name.clone()]);
        assert_eq!(list(conn, mdev_flag | active), [mdev_name]);
        assert_eq!(list(conn, mdev_flag | inactive), std::slice::from_ref(&def_name));
        assert_eq!(list(conn, inactive), std::slice::from_ref(&def_name));
        assert_eq!(list(conn, active).len(), pci_count + 1);
        assert_eq!(list(conn, types_flag), ["pci_0000_00_02_0"]);
        assert_eq!(list(conn, types_flag | inactive), Vec::<String>::new());
        assert_eq!(list(conn, types_flag | mdev_flag).len(), 3);
        assert_eq!(virNodeNumOfDevices(conn, c"mdev".as_ptr(), 0), 2);
        assert_eq!(virNodeNumOfDevices(conn, c"mdev_types".as_ptr(), 0), 1);

        assert_eq!(virNodeDeviceGetAutostart(def, &mut auto), 0);
        assert_eq!(auto, 0);
        assert_eq!(virNodeDeviceSetAutostart(def, 1), 0);
        assert_eq!(virNodeDeviceGetAutostart(def, &mut auto), 0);
        assert_eq!(auto, 1);
        assert_eq!(virNodeDeviceCreate(def, 0), 0, "{:?}", last());
        assert_eq!(virNodeDeviceIsActive(def), 1);
        assert_eq!(virNodeDeviceCreate(def, 1), -1);
        assert_eq!(last().0, VIR_ERR_INVALID_ARG, "flags");
        assert_eq!(virNodeDeviceDestroy(def), 0);
        assert_eq!((virNodeDeviceIsActive(def), virNodeDeviceIsPersistent(def)), (0, 1));
        assert_eq!(virNodeDeviceUndefine(def, 0), 0);
        assert_eq!(virNodeDeviceIsActive(def), -1);
        assert_eq!(last().0, VIR_ERR_NO_NODE_DEVICE, "neither live nor defined: gone");
        virNodeDeviceFree(def);

        // Errors of the XML and of its parent.
        let bad = |xml: &str| {
            let x = CString::new(xml).unwrap();
            let d = virNodeDeviceCreateXML(conn, x.as_ptr(), 0);
            assert!(d.is_null());
            last().0
        };
        // libvirt's classes (virxml.c, node_device_conf.c, node_device_driver.c
        // nodeDeviceDefValidateMdev; a failing mdevctl is INTERNAL_ERROR).
        assert_eq!(bad("<device>"), VIR_ERR_XML_DETAIL);
        assert_eq!(bad("<domain/>"), VIR_ERR_XML_ERROR);
        assert_eq!(
            bad("<device><capability type='mdev'><type id='x'/></capability></device>"),
            VIR_ERR_CONFIG_UNSUPPORTED
        );
        assert_eq!(
            bad("<device><parent>pci_0000_00_02_0</parent><capability type='scsi_host'/></device>"),
            VIR_ERR_CONFIG_UNSUPPORTED
        );
        assert_eq!(
            bad(&format!("<device><parent>pci_0000_99_00_0</parent>{}</device>", mdev_cap(V8, U2))),
            VIR_ERR_CONFIG_UNSUPPORTED
        );
        assert_eq!(
            bad(&format!("<device><parent>computer</parent>{}</device>", mdev_cap(V8, U2))),
            VIR_ERR_PARSE_FAILED
        );
        assert_eq!(
            bad(&format!("<device><parent>pci_0000_00_02_0</parent>{}</device>", mdev_cap("nope", U2))),
            VIR_ERR_INTERNAL_ERROR
        );
        assert_eq!(
            bad(&format!("<device><parent>pci_0000_00_02_0</parent>{}</device>", mdev_cap(V8, U1))),
            VIR_ERR_INTERNAL_ERROR
        );
        assert!(virNodeDeviceCreateXML(conn, ptr::null(), 0).is_null());
        assert_eq!(last().0, VIR_ERR_INVALID_ARG);
        assert!(virNodeDeviceCreateXML(conn, doc("pci_0000_00_02_0", &mdev_cap(V8, U2)).as_ptr(), 2).is_null());
        assert_eq!(last().0, VIR_ERR_INVALID_ARG);

        // A read-only connection: refused before the XML is read.
        let ro = virConnectOpenReadOnly(uri.as_ptr());
        assert!(virNodeDeviceCreateXML(ro, ptr::null(), 0).is_null());
        assert_eq!(last().0, VIR_ERR_OPERATION_DENIED);
        assert!(virNodeDeviceDefineXML(ro, ptr::null(), 0).is_null());
        assert_eq!(last().0, VIR_ERR_OPERATION_DENIED);
        let d_ro = virNodeDeviceLookupByName(ro, cname.as_ptr());
        assert_eq!(virNodeDeviceDestroy(d_ro), -1);
        assert_eq!(last().0, VIR_ERR_OPERATION_DENIED);
        virNodeDeviceFree(d_ro);
        virConnectClose(ro);

        // Destroy: gone, its handle says so.
        assert_eq!(virNodeDeviceDestroy(d), 0);
        assert_eq!(virNodeDeviceIsActive(d), -1);
        assert_eq!(last().0, VIR_ERR_NO_NODE_DEVICE);
        virNodeDeviceFree(d);
        virNodeDeviceFree(parent);
        assert_eq!(list(conn, mdev_flag).len(), 0);
        virConnectClose(conn);
    }
    fs::remove_dir_all(&dir).unwrap();
}

// ---- The real backend reading a tree with mdevs.

/// Write the simulated kernel's tree at `rel` into `out` (links as links).
fn materialize(sim: &SimKernel, rel: &str, out: &Path) {
    for name in sim.list_dir(rel).unwrap() {
        let path = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
        let dest = out.join(&path);
        if let Ok(target) = sim.read_link(&path) {
            std::os::unix::fs::symlink(target, &dest).unwrap();
        } else if sim.list_dir(&path).is_ok() {
            fs::create_dir_all(&dest).unwrap();
            materialize(sim, &path, out);
        } else {
            fs::write(&dest, sim.read(&path).unwrap_or_default()).unwrap();
        }
    }
}

#[test]
fn the_real_backend_reads_mdev_parents_types_and_devices() {
    let sim = Arc::new(SimKernel::builtin());
    let h = host_with(&sim, None);
    let id = h.mdev_create(&cfg(V4, Some(U1))).unwrap();
    let root = tempdir("real");
    fs::create_dir_all(root.join("sys")).unwrap();
    materialize(&sim, "", &root.join("sys"));
    let real = Host::new(Arc::new(HostSysfs::new(&root)), StateStore::memory(), HostOptions::default());
    assert_eq!(real.mdev_parents(), h.mdev_parents());
    assert_eq!(real.mdev_types(&igpu()).unwrap(), h.mdev_types(&igpu()).unwrap());
    assert_eq!(real.mdevs().unwrap(), h.mdevs().unwrap());
    assert_eq!(real.mdev_xml(&id).unwrap(), h.mdev_xml(&id).unwrap());
    // (Names from pci.ids aside: a test tree has none.)
    let types_block =
        |x: String| x[x.find("<capability type='mdev_types'>").unwrap()..x.find("<iommuGroup").unwrap()].to_string();
    assert_eq!(types_block(real.xml(&igpu()).unwrap()), types_block(h.xml(&igpu()).unwrap()));
    assert_eq!(real.mdev_types(&igpu()).unwrap()[0].description.as_deref().map(|d| d.lines().count()), Some(5));
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn the_cli_runs_the_whole_cycle_and_explains_refusals() {
    let dir = tempdir("cli");
    let uri = format!("test:///default?confdir={}", dir.display());
    let run = |script: &str| {
        let out =
            std::process::Command::new(env!("CARGO_BIN_EXE_nodedev")).args(["-c", &uri, script]).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&format!("mdev types; mdev create {IGPU} {V4} --uuid {U1} --attr=x=1; mdev list"));
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("i915-GVTg_V5_4       GVTg_V5_4    vfio-pci  available 4"), "{out}");
    assert!(err.contains("removed again"), "the attribute it lacks: {err}");
    let (code, out, err) = run(&format!(
        "mdev define pci_0000_00_02_0 {V8} --uuid {U2} --auto; mdev list; apply; mdev show {U2}; mdev remove {U2}; mdev list --json"
    ));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("{U2} {IGPU} {V8} (inactive, defined, autostart)")), "{out}");
    assert!(out.contains("started (i915-GVTg_V5_8)"), "{out}");
    assert!(out.contains("<type id='i915-GVTg_V5_8'/>"), "{out}");
    let last_line: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last_line["mdevs"][0]["active"], false);
    assert_eq!(last_line["mdevs"][0]["autostart"], true);
    // Both JSON documents match doc/nodedev-json.schema.json.
    let (code, out, err) = run(&format!("mdev types --json; mdev start {U2}; mdev list --json"));
    assert_eq!(code, Some(0), "{out}{err}");
    let schema: serde_json::Value = serde_json::from_str(include_str!("../doc/nodedev-json.schema.json")).unwrap();
    let docs: Vec<serde_json::Value> =
        out.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["parents"][0]["types"][1]["available_instances"], 8);
    assert_eq!(docs[1]["mdevs"][0]["active"], true);
    for d in &docs {
        let mut errs = Vec::new();
        json_schema::schema_errors(&schema, &schema, d, "", &mut errs);
        assert!(errs.is_empty(), "{errs:?}\n{d}");
    }
    // Usage errors before anything runs: exit 2.
    assert_eq!(run("mdev create 0000:00:02.0").0, Some(2));
    assert_eq!(run("mdev frob").0, Some(2));
    assert_eq!(run("mdev list --uuid x").0, Some(2));
    fs::remove_dir_all(&dir).unwrap();
}

// ---- Attack review (issue 13 item 4): hostile definitions, names, XML and boot.

/// Run `f` on another thread; None when it does not finish in `secs` (a hang).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs)).ok()
}

/// A FIFO, a device node or a directory where mdevctl keeps a definition
/// file is reported as unusable; reading it never waits for a writer.
#[test]
fn a_fifo_in_the_definitions_directory_does_not_hang_list_lookup_or_apply() {
    let dir = tempdir("fifo");
    let sim = Arc::new(SimKernel::builtin());
    let h = Arc::new(host_with(&sim, Some(&dir)));
    h.mdev_define(&cfg(V4, Some(U1)), Some(true)).unwrap();
    fs::remove_file(dir.join(IGPU).join(U1)).unwrap();
    let c = CString::new(dir.join(IGPU).join(U1).as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    fs::create_dir(dir.join(IGPU).join(U2)).unwrap();
    let h2 = h.clone();
    let name = MdevId { parent: igpu(), uuid: U1.into() }.node_name();
    let r = within(10, move || (h2.mdevs().map(|m| m.len()), h2.apply_mdevs(), h2.mdev_lookup(&name).map(drop)));
    let (listed, applied, looked) = r.expect("listing, applying or looking up a FIFO definition hung");
    assert_eq!(listed.unwrap(), 0);
    let applied = applied.unwrap();
    assert_eq!(applied.iter().filter(|a| a.outcome.contains("not a regular file")).count(), 2, "{applied:?}");
    let e = looked.unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    fs::remove_dir_all(&dir).unwrap();
}

/// At boot an autostart definition whose parent is absent, or not yet a
/// parent (its driver has not registered it), waits: it is kept and
/// reported, and `nodedev apply` does not fail for it (as for PCI
/// definitions of absent devices).
#[test]
fn apply_at_boot_reports_a_definition_whose_parent_is_absent_or_unregistered_as_waiting() {
    let dir = tempdir("boot");
    let sim = Arc::new(SimKernel::builtin());
    let h = host_with(&sim, Some(&dir));
    h.mdev_define(&cfg(V4, Some(U1)), Some(true)).unwrap();
    // A parent that is not there at all (written as mdevctl would).
    fs::create_dir_all(dir.join("0000:00:09.0")).unwrap();
    fs::write(dir.join("0000:00:09.0").join(U2), format!("{{\"mdev_type\": \"{V8}\", \"start\": \"auto\"}}")).unwrap();
    sim.write("bus/pci/drivers/i915/unbind", IGPU).unwrap();
    let applied = h.apply_mdevs().unwrap();
    assert_eq!(applied.len(), 2, "{applied:?}");
    let absent = applied.iter().find(|a| a.address.contains("0000:00:09.0")).unwrap();
    assert!(absent.outcome.starts_with("absent"), "{absent:?}");
    let waiting = applied.iter().find(|a| a.address.contains(IGPU)).unwrap();
    assert!(waiting.outcome.starts_with("waiting") && waiting.outcome.contains("no driver yet"), "{waiting:?}");
    assert!(applied.iter().all(|a| !a.done));
    // The CLI's boot unit: kept, reported, exit 0.
    let confdir = tempdir("boot-cli");
    fs::create_dir_all(confdir.join("mdevctl.d").join("0000:00:09.0")).unwrap();
    fs::write(
        confdir.join("mdevctl.d").join("0000:00:09.0").join(U2),
        format!("{{\"mdev_type\": \"{V8}\", \"start\": \"auto\"}}"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nodedev"))
        .args(["-c", &format!("test:///default?confdir={}", confdir.display()), "apply"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("absent"), "{text}");
    // Once the parent is back, apply starts it.
    sim.write("bus/pci/drivers/i915/bind", IGPU).unwrap();
    assert!(h.apply_mdevs().unwrap().iter().any(|a| a.done && a.address.contains(IGPU)));
    fs::remove_dir_all(&dir).unwrap();
    fs::remove_dir_all(&confdir).unwrap();
}

/// Names of the mdev_UUID_PARENT shape that name no device, malformed in
/// every way, are VIR_ERR_NO_NODE_DEVICE, as libvirt answers any unknown name.
#[test]
fn malformed_mdev_names_are_no_node_device() {
    let dir = tempdir("names");
    let uri = CString::new(format!("test:///default?confdir={}", dir.display())).unwrap();
    let flat = U1.replace('-', "_");
    let long = format!("mdev_{flat}_{}", "0".repeat(1 << 16));
    let names = [
        "mdev_".to_string(),
        "mdev".to_string(),
        format!("mdev_{flat}"),
        format!("mdev_{flat}_"),
        format!("mdev_{}_0000_00_02_0", flat.to_uppercase()),
        format!("mdev_{{{flat}}}_0000_00_02_0"),
        format!("mdev_{flat}_0000_00_02_0_"),
        format!("mdev_{flat}_0000_00_02_0\n"),
        format!("mdev_{flat}_0000_00_02"),
        format!("mdev_{flat}_0000_00_02_9"),
        format!("mdev_{flat}_ffff_ff_1f_7"),
        format!("mdev_{flat}_0000_00_09_0"),
        format!("mdev_{}_0000_00_02_0", flat.replace('_', "-")),
        format!("mdev_{}é_0000_00_02_0", &flat[..35]),
        format!("mdev_{}_0000_00_02_0", "é".repeat(18)),
        format!("mdev_{flat}_0000:00:02.0"),
        format!("mdev_{flat}_..%2f..%2fetc"),
        long,
    ];
    unsafe {
        let conn = virConnectOpen(uri.as_ptr());
        assert!(!conn.is_null());
        for n in &names {
            let c = CString::new(n.as_str()).unwrap();
            let d = virNodeDeviceLookupByName(conn, c.as_ptr());
            assert!(d.is_null(), "{n}");
            let (code, _) = last();
            assert_eq!(code, VIR_ERR_NO_NODE_DEVICE, "{}", n.escape_debug());
        }
        virConnectClose(conn);
    }
    let _ = fs::remove_dir_all(&dir);
}

/// libvirt checks flags before it reads the document (virCheckFlags comes
/// first in the driver), reads UUIDs as virUUIDParse does (white space
/// around, dashes optional), and calls a missing type id or an <attr>
/// without name or value VIR_ERR_CONFIG_UNSUPPORTED.
#[test]
fn create_and_define_check_flags_then_read_the_document_as_libvirt() {
    let dir = tempdir("xmlcodes");
    let uri = CString::new(format!("test:///default?confdir={}", dir.display())).unwrap();
    unsafe {
        let conn = virConnectOpen(uri.as_ptr());
        let code = |xml: &str, flags: c_uint, define: bool| {
            let x = CString::new(xml).unwrap();
            let d = if define {
                virNodeDeviceDefineXML(conn, x.as_ptr(), flags)
            } else {
                virNodeDeviceCreateXML(conn, x.as_ptr(), flags)
            };
            if d.is_null() {
                last().0
            } else {
                virNodeDeviceDestroy(d);
                virNodeDeviceUndefine(d, 0);
                virNodeDeviceFree(d);
                virResetLastError();
                0
            }
        };
        for define in [false, true] {
            assert_eq!(code("<device>", 2, define), VIR_ERR_INVALID_ARG, "flags first");
            assert_eq!(
                code("<device><parent>pci_0000_00_02_0</parent><capability type='mdev'/></device>", 0, define),
                VIR_ERR_CONFIG_UNSUPPORTED,
                "no type id"
            );
            let attr = format!(
                "<device><parent>pci_0000_00_02_0</parent><capability type='mdev'><type id='{V8}'/><attr name='x'/></capability></device>"
            );
            assert_eq!(code(&attr, 0, define), VIR_ERR_CONFIG_UNSUPPORTED, "attr without value");
        }
        // virUUIDParse's spellings: kept as the kernel spells it.
        let dashless = U2.replace('-', "").to_uppercase();
        let x = doc("pci_0000_00_02_0", &mdev_cap(V8, &format!("  {dashless}\n")));
        let d = virNodeDeviceCreateXML(conn, x.as_ptr(), 0);
        assert!(!d.is_null(), "{:?}", last());
        assert_eq!(name(d), "mdev_83b8f4f2_509f_382f_3c1e_e6bfe0fa1002_0000_00_02_0");
        assert_eq!(virNodeDeviceDestroy(d), 0);
        virNodeDeviceFree(d);
        // Braces, short, long, non-hex: refused before anything is made.
        for bad in [format!("{{{U2}}}"), U2[..35].to_string(), format!("{U2}0"), U2.replace('a', "g")] {
            let x = doc("pci_0000_00_02_0", &mdev_cap(V8, &bad));
            assert!(virNodeDeviceCreateXML(conn, x.as_ptr(), 0).is_null(), "{bad}");
            let (code, msg) = last();
            assert!(code != 0 && msg.contains("UUID") || msg.contains("uuid"), "{bad}: {code} {msg}");
        }
        assert_eq!(list(conn, F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV as c_uint).len(), 0);
        virConnectClose(conn);
    }
    let _ = fs::remove_dir_all(&dir);
}

/// An iommufd VMM holds an mdev through its VFIO cdev
/// (/dev/vfio/devices/vfioN) and not its group: its removal is refused all
/// the same, naming the cdev, instead of waiting in the kernel.
#[test]
fn an_mdev_held_through_its_vfio_cdev_or_a_device_fd_is_not_removed() {
    let sim = Arc::new(SimKernel::builtin());
    let h = host_with(&sim, None);
    let id = h.mdev_create(&cfg(V8, Some(U1))).unwrap();
    let cdev = sim.list_dir(&format!("bus/mdev/devices/{U1}/vfio-dev")).unwrap();
    assert_eq!(cdev.len(), 1, "the kernel's cdev for it");
    for (pid, kind) in [(4343, nodedev::sysfs::HoldKind::Cdev), (4344, nodedev::sysfs::HoldKind::Device)] {
        sim.hold_vfio_mdev_as(U1, pid, "qemu-iommufd", kind).unwrap();
        let e = h.mdev_destroy(&id).unwrap_err();
        let Error::OperationInvalid(m) = &e else { panic!("{e:?}") };
        assert!(m.contains(&format!("pid {pid} (qemu-iommufd)")), "{m}");
        if pid == 4343 {
            assert!(m.contains(&format!("/dev/vfio/devices/{}", cdev[0])), "{m}");
        }
        assert!(sim.exists(&format!("bus/mdev/devices/{U1}")), "nothing written");
        sim.release_holder(pid);
    }
    h.mdev_destroy(&id).unwrap();
}

/// A tree whose type files are hostile: a FIFO for a description, a huge
/// description, a non-numeric available_instances, a type entry that is a
/// link out of the tree. Reading the types never hangs, never reads
/// without bound, and lists what it can.
#[test]
fn hostile_mdev_type_files_neither_hang_nor_read_without_bound() {
    let sim = Arc::new(SimKernel::builtin());
    let root = tempdir("hostile-types");
    fs::create_dir_all(root.join("sys")).unwrap();
    materialize(&sim, "", &root.join("sys"));
    let types = root.join("sys").join(types_dir(V4)).parent().unwrap().to_path_buf();
    let fifo = CString::new(types.join(V4).join("description").as_os_str().as_encoded_bytes()).unwrap();
    fs::remove_file(types.join(V4).join("description")).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let big = fs::File::create(types.join(V8).join("description")).unwrap();
    big.set_len(64 << 20).unwrap(); // sparse: 64 MiB of zeros
                                    // A third type: its count is not a number, its files elsewhere.
    let outside = root.join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("available_instances"), "lots\n").unwrap();
    std::os::unix::fs::symlink(&outside, types.join("i915-evil")).unwrap();
    let real = Arc::new(Host::new(Arc::new(HostSysfs::new(&root)), StateStore::memory(), HostOptions::default()));
    let r = real.clone();
    let got = within(20, move || r.mdev_types(&igpu())).expect("reading a FIFO description hung").unwrap();
    assert_eq!(got.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), [V4, V8], "the unreadable count: left out");
    assert!(got.iter().all(|t| t.description.as_ref().is_none_or(|d| d.len() < (1 << 20))), "bounded");
    fs::remove_dir_all(&root).unwrap();
}

/// An unusable mdevctl file (hostile JSON: wrong types, not an object)
/// for a live mdev does not keep the device from being removed, and
/// undefine removes the file itself, as mdevctl undefine does.
#[test]
fn an_unusable_definition_neither_pins_a_live_mdev_nor_resists_undefine() {
    let dir = tempdir("junk");
    let sim = Arc::new(SimKernel::builtin());
    let h = host_with(&sim, Some(&dir));
    let live = h.mdev_create(&cfg(V4, Some(U1))).unwrap();
    let defined = h.mdev_define(&cfg(V8, Some(U2)), Some(false)).unwrap();
    fs::write(dir.join(IGPU).join(U1), r#"{"mdev_type": 7, "start": ["auto"]}"#).unwrap();
    fs::write(dir.join(IGPU).join(U2), "[]").unwrap();
    h.mdev_destroy(&live).unwrap();
    assert!(!sim.exists(&format!("bus/mdev/devices/{U1}")));
    for id in [&live, &defined] {
        h.mdev_undefine(id).unwrap();
        assert!(!dir.join(IGPU).join(&id.uuid).exists());
        assert!(matches!(h.mdev_undefine(id), Err(Error::NoDevice(_))));
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// A parent directory in mdevctl's tree that is a symlink elsewhere is
/// reported, never read from, and undefine removes nothing through it;
/// type ids that would climb out of `mdev_supported_types` are refused
/// before anything is written.
#[test]
fn a_symlinked_parent_directory_is_refused_and_type_ids_stay_inside() {
    let dir = tempdir("symlinked");
    let elsewhere = tempdir("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::write(elsewhere.join(U1), format!("{{\"mdev_type\": \"{V4}\", \"start\": \"auto\"}}")).unwrap();
    fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.join(IGPU)).unwrap();
    let sim = Arc::new(SimKernel::builtin());
    let h = host_with(&sim, Some(&dir));
    assert!(h.mdevs().unwrap().is_empty(), "nothing read through the link");
    let applied = h.apply_mdevs().unwrap();
    assert!(applied.iter().any(|a| !a.done && a.outcome.contains("not a directory")), "{applied:?}");
    assert!(!sim.exists(&format!("bus/mdev/devices/{U1}")), "not started from elsewhere");
    let id = MdevId { parent: igpu(), uuid: U1.into() };
    assert!(h.mdev_undefine(&id).is_err());
    assert!(elsewhere.join(U1).exists(), "nothing removed elsewhere");
    assert!(h.mdev_define(&cfg(V4, Some(U1)), None).is_err(), "nothing written through the link");
    fs::remove_file(dir.join(IGPU)).unwrap();

    let writes = sim.writes().len();
    for t in ["..", ".", "a/b", "../../../../bus/pci/drivers/i915/unbind", "", "x\0y"] {
        let e = h.mdev_create(&cfg(t, Some(U1))).unwrap_err();
        assert!(matches!(e, Error::InvalidArg(_)), "{t:?}: {e}");
    }
    assert_eq!(sim.writes().len(), writes, "nothing written");
    fs::remove_dir_all(&dir).unwrap();
    fs::remove_dir_all(&elsewhere).unwrap();
}
