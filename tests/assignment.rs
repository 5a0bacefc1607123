//! IOMMU groups, guest assignment (prepare/release), ownership, policy,
//! safety refusals and the authorization callback, on the simulated kernel.

#[macro_use]
mod common;
use nodedev::state::StateStore;
use nodedev::sysfs::sim::SimKernel;
use nodedev::sysfs::Sysfs;
use nodedev::{
    AuthRequest, DetachOptions, Error, Host, HostOptions, Operation, PciAddress, Policy, PrepareOptions, Stub,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

fn a(s: &str) -> PciAddress {
    PciAddress::parse(s).unwrap()
}

fn host(sim: &Arc<SimKernel>) -> Host {
    Host::new(sim.clone(), StateStore::memory(), HostOptions::default())
}

fn builtin() -> (Arc<SimKernel>, Host) {
    let sim = Arc::new(SimKernel::builtin());
    (sim.clone(), host(&sim))
}

// The built-in host.
const GPU: &str = "0000:01:00.0"; // nouveau, group 2 with AUDIO, bus reset
const AUDIO: &str = "0000:01:00.1"; // snd_hda_intel, group 2
const VF: &str = "0000:04:10.0"; // igbvf, group 8 alone, flr
const VF2: &str = "0000:04:10.2"; // igbvf, group 9 alone
const NIC1: &str = "0000:03:01.0"; // e1000, group 5 behind bridge 0000:02:00.0
const NIC2: &str = "0000:03:02.0";
const IGPU: &str = "0000:00:02.0"; // boot VGA
const NVME: &str = "0000:06:00.0"; // holds "/"
const PF: &str = "0000:04:00.0"; // eth0 up with 192.0.2.10/24

/// A card with three functions in one IOMMU group: two e1000e NICs and a
/// function no driver claims.
const TRIPLE: &str = r#"{
  "driver_override": true, "iommu": true,
  "drivers": [
    {"name": "pcieport", "ids": ["8086:a110"]},
    {"name": "e1000e", "ids": ["8086:10d3"]},
    {"name": "vfio-pci", "module": "vfio_pci", "loaded": false},
    {"name": "pci-stub", "module": "pci_stub"}
  ],
  "devices": [
    {"address": "0000:00:1c.0", "vendor": "0x8086", "device": "0xa110", "class": "0x060400",
     "driver": "pcieport", "iommu_group": 7},
    {"address": "0000:07:00.0", "vendor": "0x8086", "device": "0x10d3", "class": "0x020000",
     "driver": "e1000e", "iommu_group": 7, "parent": "0000:00:1c.0", "reset_method": ["flr"]},
    {"address": "0000:07:00.1", "vendor": "0x8086", "device": "0x10d3", "class": "0x020000",
     "driver": "e1000e", "iommu_group": 7, "parent": "0000:00:1c.0", "reset_method": ["flr"]},
    {"address": "0000:07:00.2", "vendor": "0x1234", "device": "0x11e8", "class": "0x00ff00",
     "iommu_group": 7, "parent": "0000:00:1c.0"}
  ]
}"#;
const T0: &str = "0000:07:00.0";
const T1: &str = "0000:07:00.1";
const T2: &str = "0000:07:00.2";

fn triple() -> (Arc<SimKernel>, Host) {
    let sim = Arc::new(SimKernel::from_json(TRIPLE).unwrap());
    (sim.clone(), host(&sim))
}

fn group_opts() -> DetachOptions {
    DetachOptions { group: true, ..DetachOptions::default() }
}

const MANAGED: PrepareOptions = PrepareOptions { managed: true, force: false };
const UNMANAGED: PrepareOptions = PrepareOptions { managed: false, force: false };

fn tempdir(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("nodedev-assign-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

#[test]
fn group_knowledge_names_members_bridges_and_blockers() {
    let (_sim, host) = triple();
    let g = host.group(&a(T1)).unwrap().expect("a group");
    assert_eq!(g.number, 7);
    let members: Vec<String> = g.members.iter().map(|m| m.address.to_string()).collect();
    assert_eq!(members, ["0000:00:1c.0", T0, T1, T2]);
    assert!(g.members[0].bridge && !g.members[1].bridge);
    assert_eq!(g.endpoints().count(), 3);
    let blockers: Vec<String> = g.blockers(&[]).iter().map(|m| m.address.to_string()).collect();
    assert_eq!(blockers, [T0, T1], "the pcieport bridge and the driverless function do not block");
    assert!(!g.viable());

    // libvirt's XML lists the group with every member.
    let xml = host.xml(&a(T2)).unwrap();
    assert!(xml.contains("<iommuGroup number='7'>"), "{xml}");
    assert_eq!(xml.matches("<address domain='0x0000' bus='0x07'").count(), 3, "{xml}");

    // A conventional bridge without a driver is a bridge too.
    let (_sim, host) = builtin();
    let g = host.group(&a(NIC1)).unwrap().unwrap();
    assert!(g.members.iter().any(|m| m.address == a("0000:02:00.0") && m.bridge && m.driver.is_none()));
}

#[test]
fn detaching_one_endpoint_leaves_its_group_not_viable_and_assignment_refuses_it() {
    let (sim, host) = triple();
    host.detach(&a(T0), Stub::Vfio).unwrap();
    assert_eq!(sim.driver_of(T0).as_deref(), Some("vfio-pci"));
    let g = host.group(&a(T0)).unwrap().unwrap();
    let blockers: Vec<String> = g.blockers(&[]).iter().map(|m| format!("{} {:?}", m.address, m.driver)).collect();
    assert_eq!(blockers, [format!("{T1} Some(\"e1000e\")")]);

    for opts in [MANAGED, UNMANAGED] {
        let err = host.prepare("vm1", &[a(T0)], Stub::Vfio, opts).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::OperationInvalid(_)), "{msg}");
        for want in [T0, "IOMMU group 7", T1, "e1000e", "detach the group"] {
            assert!(msg.contains(want), "{want} missing: {msg}");
        }
    }
    assert!(host.state().get(T0).unwrap().unwrap().owner.is_none(), "a refused prepare records no owner");
    assert_eq!(sim.driver_of(T1).as_deref(), Some("e1000e"));
}

#[test]
fn an_endpoint_on_pci_stub_leaves_its_group_usable_by_vfio_but_not_by_another_guest() {
    let (sim, host) = triple();
    host.detach(&a(T0), Stub::Vfio).unwrap();
    host.detach(&a(T1), Stub::Kvm).unwrap();
    assert_eq!(sim.driver_of(T1).as_deref(), Some("pci-stub"));
    // pci-stub does no DMA of its own: the kernel lets VFIO open the group.
    assert!(host.group(&a(T0)).unwrap().unwrap().viable());
    host.prepare("vm1", &[a(T0)], Stub::Vfio, UNMANAGED).unwrap();
    let err = host.prepare("vm2", &[a(T1)], Stub::Kvm, UNMANAGED).unwrap_err();
    assert!(err.to_string().contains("assigned to vm1"), "{err}");
}

#[test]
fn group_detach_moves_every_endpoint_or_none() {
    let (sim, host) = triple();
    // The third endpoint's probe fails: the two already moved go back.
    sim.fail_writes("bus/pci/drivers_probe", Some(T2), libc::EIO, 1);
    let err = host.detach_with(&a(T1), Stub::Vfio, group_opts()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(T2) && msg.contains(&format!("{T0} went back to e1000e")), "{msg}");
    assert!(msg.contains(&format!("{T1} went back to e1000e")), "{msg}");
    for (d, want) in [(T0, Some("e1000e")), (T1, Some("e1000e")), (T2, None)] {
        assert_eq!(sim.driver_of(d).as_deref(), want, "{d}");
        assert!(host.state().get(d).unwrap().is_none(), "{d} kept a record");
    }

    // Without the fault the whole group moves, the bridge stays.
    host.detach_with(&a(T1), Stub::Vfio, group_opts()).unwrap();
    for d in [T0, T1, T2] {
        assert_eq!(sim.driver_of(d).as_deref(), Some("vfio-pci"), "{d}");
    }
    assert_eq!(sim.driver_of("0000:00:1c.0").as_deref(), Some("pcieport"));
    assert!(host.group(&a(T0)).unwrap().unwrap().viable());
    assert_eq!(host.state().get(T2).unwrap().unwrap().original_driver, None);
    // Each goes back to what it had.
    for d in [T0, T1, T2] {
        host.reattach(&a(d), None).unwrap();
    }
    assert_eq!([T0, T1, T2].map(|d| sim.driver_of(d)), [Some("e1000e".to_string()), Some("e1000e".to_string()), None]);
}

#[test]
fn group_detach_checks_every_member_before_touching_any() {
    // Group 15 of the built-in host holds the SATA controller; policy denies it.
    let sim = Arc::new(SimKernel::builtin());
    let policy = Policy::parse("deny class 0x0106", "test-policy").unwrap();
    let host = Host::new(sim.clone(), StateStore::memory(), HostOptions { policy, ..HostOptions::default() });
    let writes = sim.writes().len();
    let err = host.detach_with(&a("0000:00:1f.3"), Stub::Vfio, group_opts()).unwrap_err();
    assert!(matches!(&err, Error::Denied(m) if m.contains("0000:00:1f.2") && m.contains("test-policy")), "{err}");
    assert_eq!(sim.writes().len(), writes, "nothing was written");
}

#[test]
fn prepare_managed_gpu_audio_and_vf_then_release_restores_everything() {
    let (sim, host) = builtin();
    let devs = [a(GPU), a(AUDIO), a(VF)];
    let before = devs.map(|d| sim.driver_of(&d.to_string()));
    host.prepare("vm1", &devs, Stub::Vfio, MANAGED).unwrap();
    for d in &devs {
        assert_eq!(sim.driver_of(&d.to_string()).as_deref(), Some("vfio-pci"), "{d}");
        let rec = host.state().get(&d.to_string()).unwrap().unwrap();
        assert_eq!((rec.owner.as_deref(), rec.managed), (Some("vm1"), true), "{d}");
    }
    // Reset where the kernel can: the VF has FLR; the GPU's only method is a
    // bus reset, which the kernel refuses while its audio function shares the bus.
    assert_eq!(sim.reset_count(VF), 1);
    assert_eq!(sim.reset_count(GPU), 0);
    assert_eq!(host.assignments().unwrap().len(), 3);

    // Preparing again for the same owner is harmless.
    host.prepare("vm1", &[a(VF)], Stub::Vfio, MANAGED).unwrap();

    // Another guest is refused, by device and by group; the owner is named.
    for d in [VF, AUDIO] {
        let err = host.prepare("vm2", &[a(d)], Stub::Vfio, MANAGED).unwrap_err();
        assert!(matches!(&err, Error::OperationInvalid(m) if m.contains("vm1") && m.contains(d)), "{err}");
    }
    // The host cannot take them back, nor reset them, while vm1 owns them.
    let err = host.reattach(&a(GPU), None).unwrap_err();
    assert!(matches!(&err, Error::OperationInvalid(m) if m.contains("assigned to vm1")), "{err}");
    let err = host.reset(&a(VF)).unwrap_err();
    assert!(matches!(&err, Error::OperationInvalid(m) if m.contains("vm1")), "{err}");
    // vm2 cannot release vm1's devices.
    assert!(host.release("vm2", Some(&[a(GPU)])).is_err());

    assert_eq!(host.release("vm1", None).unwrap(), 3);
    assert_eq!(devs.map(|d| sim.driver_of(&d.to_string())), before);
    assert!(host.state().list().unwrap().is_empty(), "records left after release");
    assert!(host.release("vm1", Some(&[a(GPU)])).is_err(), "nothing left to release");
}

#[test]
fn prepare_is_one_transaction() {
    let (sim, host) = builtin();
    let devs = [a(VF), a(VF2), a(GPU), a(AUDIO)];
    // The fourth device's probe fails: the three already moved go back.
    sim.fail_writes("bus/pci/drivers_probe", Some(AUDIO), libc::EIO, 1);
    let err = host.prepare("vm1", &devs, Stub::Vfio, MANAGED).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("vm1") && msg.contains(AUDIO), "{msg}");
    for (d, want) in [(VF, "igbvf"), (VF2, "igbvf"), (GPU, "nouveau"), (AUDIO, "snd_hda_intel")] {
        assert_eq!(sim.driver_of(d).as_deref(), Some(want), "{d}");
        assert!(host.state().get(d).unwrap().is_none(), "{d}");
    }
}

#[test]
fn prepare_for_a_group_with_a_blocker_outside_the_set_is_refused_up_front() {
    let (sim, host) = builtin();
    let writes = sim.writes().len();
    let err = host.prepare("vm1", &[a(GPU)], Stub::Vfio, MANAGED).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(AUDIO) && msg.contains("snd_hda_intel") && msg.contains("add them"), "{msg}");
    assert_eq!(sim.writes().len(), writes);
}

#[test]
fn unmanaged_devices_are_verified_never_moved() {
    let (sim, host) = builtin();
    let err = host.prepare("vm1", &[a(VF)], Stub::Vfio, UNMANAGED).unwrap_err();
    assert!(matches!(&err, Error::OperationInvalid(m) if m.contains("unmanaged") && m.contains("igbvf")), "{err}");
    assert_eq!(sim.driver_of(VF).as_deref(), Some("igbvf"));

    // The admin detached it; prepare only records the owner.
    host.detach(&a(VF), Stub::Vfio).unwrap();
    let writes = sim.writes().len();
    host.prepare("vm1", &[a(VF)], Stub::Vfio, UNMANAGED).unwrap();
    assert_eq!(sim.writes().len(), writes, "unmanaged prepare wrote to sysfs");
    assert_eq!(host.state().get(VF).unwrap().unwrap().owner.as_deref(), Some("vm1"));
    host.release("vm1", None).unwrap();
    assert_eq!(sim.writes().len(), writes, "unmanaged release wrote to sysfs");
    assert_eq!(sim.driver_of(VF).as_deref(), Some("vfio-pci"), "stays where the admin put it");
    let rec = host.state().get(VF).unwrap().unwrap();
    assert_eq!((rec.owner, rec.original_driver.as_deref()), (None, Some("igbvf")), "the detach record is intact");
    host.reattach(&a(VF), None).unwrap();
    assert_eq!(sim.driver_of(VF).as_deref(), Some("igbvf"));

    // A device the admin bound by hand (no record at all): release drops our record.
    sim.write(&format!("bus/pci/devices/{VF2}/driver_override"), "pci-stub").unwrap();
    sim.write("bus/pci/drivers/igbvf/unbind", VF2).unwrap();
    sim.write("bus/pci/drivers_probe", VF2).unwrap();
    host.prepare("vm1", &[a(VF2)], Stub::Kvm, UNMANAGED).unwrap();
    host.release("vm1", None).unwrap();
    assert!(host.state().get(VF2).unwrap().is_none());
    assert_eq!(sim.driver_of(VF2).as_deref(), Some("pci-stub"));
}

#[test]
fn ownership_is_shared_by_connections_on_one_state_dir() {
    let dir = tempdir("conns");
    let sim = Arc::new(SimKernel::builtin());
    let one = Host::new(sim.clone(), StateStore::dir(&dir), HostOptions::default());
    let two = Host::new(sim.clone(), StateStore::dir(&dir), HostOptions::default());
    one.prepare("vm1", &[a(VF)], Stub::Vfio, MANAGED).unwrap();
    let err = two.prepare("vm2", &[a(VF)], Stub::Vfio, MANAGED).unwrap_err();
    assert!(err.to_string().contains("assigned to vm1"), "{err}");
    let err = two.reattach(&a(VF), None).unwrap_err();
    assert!(err.to_string().contains("vm1"), "{err}");
    two.release("vm1", None).unwrap();
    assert_eq!(sim.driver_of(VF).as_deref(), Some("igbvf"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The second process of the test below: tries to take the device for vm2.
#[test]
fn child_process_prepares_for_vm2() {
    let Ok(dir) = std::env::var("NODEDEV_TEST_CHILD_STATEDIR") else { return };
    let sim = Arc::new(SimKernel::builtin());
    // Same kernel state as the parent left it: the VF on vfio-pci.
    sim.write(&format!("bus/pci/devices/{VF}/driver_override"), "pci-stub").unwrap();
    sim.write("bus/pci/drivers/igbvf/unbind", VF).unwrap();
    sim.write("bus/pci/drivers_probe", VF).unwrap();
    let host = Host::new(sim, StateStore::dir(&dir), HostOptions::default());
    let result = host.prepare("vm2", &[a(VF)], Stub::Kvm, UNMANAGED);
    println!("CHILD-RESULT: {}", result.err().map(|e| e.to_string()).unwrap_or_else(|| "ok".into()));
}

#[test]
fn ownership_is_seen_by_another_process() {
    let dir = tempdir("procs");
    let sim = Arc::new(SimKernel::builtin());
    let host = Host::new(sim.clone(), StateStore::dir(&dir), HostOptions::default());
    host.detach(&a(VF), Stub::Kvm).unwrap();
    host.prepare("vm1", &[a(VF)], Stub::Kvm, UNMANAGED).unwrap();
    let run_child = || {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_process_prepares_for_vm2", "--nocapture", "--test-threads=1"])
            .env("NODEDEV_TEST_CHILD_STATEDIR", &dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines().find_map(|l| l.split_once("CHILD-RESULT: ").map(|(_, r)| r.to_string())).expect(&text)
    };
    let seen = run_child();
    assert!(seen.contains("assigned to vm1") && seen.contains(VF), "child saw: {seen}");
    host.release("vm1", None).unwrap();
    assert_eq!(run_child(), "ok", "after release the other process may take it");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn locked_down_refuses_every_write_path_and_verifies() {
    let sim = Arc::new(SimKernel::builtin());
    // The admin prepared VF2 before the lockdown.
    host(&sim).detach(&a(VF2), Stub::Vfio).unwrap();
    let writes = sim.writes().len();
    let policy = Policy::parse("lockdown yes", "/etc/nodedev/policy.conf").unwrap();
    let host = Host::new(sim.clone(), StateStore::memory(), HostOptions { policy, ..HostOptions::default() });
    let denied = |r: nodedev::Result<()>, what: &str| {
        let err = r.unwrap_err();
        assert!(matches!(&err, Error::Denied(m) if m.contains("locked down")), "{what}: {err}");
    };
    denied(host.detach(&a(VF), Stub::Vfio), "detach");
    denied(host.detach_with(&a(GPU), Stub::Vfio, group_opts()), "group detach");
    denied(host.reattach(&a(VF2), None), "reattach");
    denied(host.reset(&a(VF2)), "reset");
    denied(host.prepare("vm1", &[a(VF)], Stub::Vfio, MANAGED), "managed prepare");
    assert_eq!(sim.writes().len(), writes, "a locked-down host was written to");
    assert!(!sim.module_loaded("xen_pciback"));
    denied(host.detach(&a(VF), Stub::Xen), "modprobe path");
    assert!(!sim.module_loaded("xen_pciback"), "a locked-down host loaded a module");

    // Reading and verifying still work.
    assert!(host.list().unwrap().len() > 10);
    assert!(host.xml(&a(VF2)).unwrap().contains("vfio-pci"));
    assert!(host.group(&a(GPU)).unwrap().is_some());
    host.prepare("vm1", &[a(VF2)], Stub::Vfio, UNMANAGED).unwrap();
    host.release("vm1", None).unwrap();
    assert_eq!(sim.writes().len(), writes);
}

#[test]
fn allow_and_deny_lists_apply_to_taking_devices() {
    let sim = Arc::new(SimKernel::builtin());
    let policy = Policy::parse("allow 8086:10ca\nallow class 0x0403\ndeny 0000:04:10.2", "p.conf").unwrap();
    let host = Host::new(sim.clone(), StateStore::memory(), HostOptions { policy, ..HostOptions::default() });
    host.detach(&a(VF), Stub::Vfio).unwrap(); // allowed by id
    let err = host.detach(&a(VF2), Stub::Vfio).unwrap_err(); // same id, denied by address
    assert!(matches!(&err, Error::Denied(m) if m.contains("deny rule in p.conf") && m.contains(VF2)), "{err}");
    let err = host.detach(&a(NIC1), Stub::Kvm).unwrap_err();
    assert!(matches!(&err, Error::Denied(m) if m.contains("no allow rule")), "{err}");
    let err = host.prepare("vm1", &[a(GPU), a(AUDIO)], Stub::Vfio, MANAGED).unwrap_err();
    assert!(matches!(&err, Error::Denied(m) if m.contains(GPU)), "{err}");
    assert_eq!(sim.driver_of(AUDIO).as_deref(), Some("snd_hda_intel"));
    host.reattach(&a(VF), None).unwrap(); // giving back is always allowed
}

#[test]
fn safety_refusals_name_the_use_and_force_overrides_each() {
    let (sim, host) = builtin();
    for (dev, want) in [
        (IGPU, "boot VGA"),
        (NVME, "is nvme0n1, whose partition nvme0n1p1 is mounted on /"),
        (PF, "is eth0, a port of bridge br0, which has 192.0.2.10/24 and the default route"),
    ] {
        let err = host.detach(&a(dev), Stub::Vfio).unwrap_err();
        assert!(
            matches!(&err, Error::OperationInvalid(m) if m.contains(want) && m.contains(dev) && m.contains("FORCE")),
            "{err}"
        );
        let err = host.prepare("vm1", &[a(dev)], Stub::Kvm, MANAGED).unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
        assert!(host.state().get(dev).unwrap().is_none());
        let force = DetachOptions { force: true, ..DetachOptions::default() };
        host.detach_with(&a(dev), Stub::Vfio, force).unwrap();
        assert_eq!(sim.driver_of(dev).as_deref(), Some("vfio-pci"), "{dev}");
        host.reattach(&a(dev), None).unwrap();
        host.prepare("vm1", &[a(dev)], Stub::Kvm, PrepareOptions { managed: true, force: true }).unwrap();
        host.release("vm1", None).unwrap();
    }
    // An interface that is down is no reason to refuse.
    host.detach(&a(NIC1), Stub::Kvm).unwrap();
    assert!(host.host_uses(&a(NIC2)).is_empty());
}

#[test]
fn the_authorization_callback_can_deny_and_sees_each_device() {
    let (sim, host) = builtin();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let (s, c) = (seen.clone(), calls.clone());
    host.set_authorizer(Some(Arc::new(move |r: &AuthRequest<'_>| {
        c.fetch_add(1, Ordering::SeqCst);
        let d = r.address;
        s.lock().unwrap().push(format!(
            "{} {d} {} {}",
            r.operation.verb(),
            r.owner.unwrap_or("-"),
            r.driver.unwrap_or("-")
        ));
        r.owner != Some("intruder") && !(r.operation == Operation::Reset && d.to_string() == VF)
    })));
    host.prepare("vm1", &[a(GPU), a(AUDIO)], Stub::Vfio, MANAGED).unwrap();
    let err = host.prepare("intruder", &[a(VF2)], Stub::Vfio, MANAGED).unwrap_err();
    assert!(
        matches!(&err, Error::Denied(m) if m.contains("authorization callback denied prepare") && m.contains("intruder")),
        "{err}"
    );
    assert_eq!(sim.driver_of(VF2).as_deref(), Some("igbvf"));
    host.detach(&a(VF), Stub::Vfio).unwrap();
    let err = host.reset(&a(VF)).unwrap_err();
    assert!(matches!(&err, Error::Denied(m) if m.contains("reset") && m.contains(VF)), "{err}");
    host.release("vm1", None).unwrap();
    let seen = seen.lock().unwrap().clone();
    // The callback is told the driver each device is to get.
    for want in [
        format!("prepare {GPU} vm1 vfio-pci"),
        format!("prepare {AUDIO} vm1 vfio-pci"),
        format!("release {GPU} vm1 nouveau"),
        format!("release {AUDIO} vm1 snd_hda_intel"),
        format!("detach {VF} - vfio-pci"),
        format!("reset {VF} - -"),
    ] {
        assert!(seen.contains(&want), "{want} not in {seen:?}");
    }
    // Removing the callback allows again.
    host.set_authorizer(None);
    let n = calls.load(Ordering::SeqCst);
    host.reset(&a(VF)).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), n);
}

#[test]
fn without_an_iommu_vfio_explains_and_kvm_works() {
    let text = TRIPLE.replace("\"iommu\": true", "\"iommu\": false");
    let sim = Arc::new(SimKernel::from_json(&text).unwrap());
    let host = host(&sim);
    assert!(!host.iommu_enabled());
    assert!(host.group(&a(T0)).unwrap().is_none());
    for r in [
        host.detach(&a(T0), Stub::Vfio),
        host.detach_with(&a(T0), Stub::Vfio, group_opts()),
        host.prepare("vm1", &[a(T2)], Stub::Vfio, MANAGED),
    ] {
        let err = r.unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported(m) if m.contains("intel_iommu=on") && m.contains("without an IOMMU")),
            "{err}"
        );
    }
    host.detach_with(&a(T0), Stub::Kvm, group_opts()).unwrap();
    assert_eq!(sim.driver_of(T0).as_deref(), Some("pci-stub"));
    assert_eq!(sim.driver_of(T1).as_deref(), Some("e1000e"), "without groups, the group is the device");
}

#[test]
fn owner_names_are_checked() {
    let (_sim, host) = builtin();
    for bad in ["", "a\nb", &"x".repeat(257)] {
        let err = host.prepare(bad, &[a(VF)], Stub::Vfio, MANAGED).unwrap_err();
        assert!(matches!(err, Error::InvalidArg(_)), "{bad:?}");
    }
    assert!(matches!(host.prepare("vm1", &[], Stub::Vfio, MANAGED), Err(Error::InvalidArg(_))));
}

/// The simulated kernel, where every write to `drivers_probe` or `reset`
/// lasts a moment, as a real driver's probe or an FLR does; counts how many
/// were under way at once.
struct SlowProbe {
    sim: Arc<SimKernel>,
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Sysfs for SlowProbe {
    fn write(&self, p: &str, v: &str) -> std::io::Result<()> {
        if !(p.ends_with("drivers_probe") || p.ends_with("/reset")) {
            return self.sim.write(p, v);
        }
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(n, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(100));
        self.now.fetch_sub(1, Ordering::SeqCst);
        self.sim.write(p, v)
    }
    /// Slow like `write`, then bounded by the simulated kernel.
    fn write_bounded(&self, p: &str, v: &str, limit: std::time::Duration) -> std::io::Result<()> {
        if !(p.ends_with("drivers_probe") || p.ends_with("/reset")) {
            return self.sim.write_bounded(p, v, limit);
        }
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(n, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(100));
        self.now.fetch_sub(1, Ordering::SeqCst);
        self.sim.write_bounded(p, v, limit)
    }
    forward_sysfs!(sim; read_bytes, net_features, read, read_link, list_dir, exists, load_module, matching_aliases, vfio_aliases, vfio_holders, net_addresses, net_routes, mounts, swaps, set_master, set_link_up, pci_names, uevents);
}

#[test]
fn managed_prepare_and_release_move_and_reset_independent_devices_at_once() {
    let sim = Arc::new(SimKernel::builtin());
    let slow = Arc::new(SlowProbe { sim: sim.clone(), now: AtomicUsize::new(0), most: AtomicUsize::new(0) });
    let h = Host::new(slow.clone(), StateStore::memory(), HostOptions::default());
    let vfs = [a(VF), a(VF2), a("0000:04:10.4")];
    h.prepare("vm1", &vfs, Stub::Vfio, PrepareOptions { managed: true, force: false }).unwrap();
    for v in &vfs {
        assert_eq!(sim.driver_of(&v.to_string()).as_deref(), Some("vfio-pci"), "{v}");
    }
    assert!(sim.reset_count(VF) > 0, "the VF was not reset");
    // One by one, the probes (and resets) could never overlap.
    assert_eq!(slow.most.load(Ordering::SeqCst), vfs.len(), "probes and resets under way at once");
    slow.most.store(0, Ordering::SeqCst);
    h.release("vm1", None).unwrap();
    assert_eq!(slow.most.load(Ordering::SeqCst), vfs.len(), "release: probes and resets under way at once");
    for v in &vfs {
        assert_eq!(sim.driver_of(&v.to_string()).as_deref(), Some("igbvf"), "{v}");
    }
}
