//! Busy devices never hang a caller (issue 11, item 2), on the simulated
//! kernel, whose unbind or remove of a device held through VFIO really waits
//! (the writing thread blocks until the holder lets go).
//!
//! - A visible holder: reattach, reset, release, group detach and recover
//!   are refused with its pid and command, and nothing changes.
//! - A hidden holder (not in the process table): the call returns within the
//!   connection's bound with Error::Timeout, the host lock is free again, and
//!   `recover` finishes once the holder is gone.

use nodedev::capi::LibvirtError;
use nodedev::host::{DetachOptions, PrepareOptions};
use nodedev::state::{StateStore, Step};
use nodedev::sysfs::sim::SimKernel;
use nodedev::sysfs::HoldKind;
use nodedev::{Error, Host, HostOptions, PciAddress, Stub};
use std::sync::Arc;
use std::time::{Duration, Instant};

const VF: &str = "0000:04:10.0"; // igbvf, group 8 alone, flr
const VF2: &str = "0000:04:10.2"; // igbvf, group 9 alone
const GPU: &str = "0000:01:00.0"; // nouveau, group 2 with AUDIO
const AUDIO: &str = "0000:01:00.1"; // snd_hda_intel
const NIC: &str = "0000:03:01.0"; // e1000

/// Short enough to keep the suite fast, long enough for a loaded machine.
const BOUND: Duration = Duration::from_millis(300);

fn a(s: &str) -> PciAddress {
    PciAddress::parse(s).unwrap()
}

fn fresh() -> (Arc<SimKernel>, Host) {
    let sim = Arc::new(SimKernel::builtin());
    let host =
        Host::new(sim.clone(), StateStore::memory(), HostOptions { write_timeout: BOUND, ..HostOptions::default() });
    (sim, host)
}

fn refused_for_holder(err: &Error, addr: &str) {
    let want = format!("{addr} is in use by pid 4242 (qemu-system-x86): stop it first");
    assert!(matches!(err, Error::OperationInvalid(m) if m.contains(&want)), "{err:?}");
    assert_eq!(err.code(), 55, "VIR_ERR_OPERATION_INVALID");
}

/// Wait (briefly) for the simulated kernel to finish a write that waited.
fn until(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < end, "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_visible_holder_refuses_reattach_and_reset_and_changes_nothing() {
    for kind in [HoldKind::Device, HoldKind::Cdev, HoldKind::Group] {
        let (sim, host) = fresh();
        host.detach(&a(VF), Stub::Vfio).unwrap();
        sim.hold_vfio(VF, 4242, "qemu-system-x86", kind, false).unwrap();
        let (writes, resets, record) = (sim.writes().len(), sim.reset_count(VF), host.state().get(VF).unwrap());

        let start = Instant::now();
        refused_for_holder(&host.reattach(&a(VF), None).unwrap_err(), VF);
        refused_for_holder(&host.reset(&a(VF)).unwrap_err(), VF);
        assert!(start.elapsed() < BOUND, "refusals do not wait: {:?}", start.elapsed());
        assert_eq!(sim.writes().len(), writes, "{kind:?}: no write at all");
        assert_eq!(sim.reset_count(VF), resets);
        assert_eq!(sim.driver_of(VF).as_deref(), Some("vfio-pci"));
        assert_eq!(host.state().get(VF).unwrap(), record, "the record is untouched");

        // Once it lets go, both work.
        sim.release_holder(4242);
        host.reset(&a(VF)).unwrap();
        host.reattach(&a(VF), None).unwrap();
        assert_eq!(sim.driver_of(VF).as_deref(), Some("igbvf"));
        assert!(host.state().get(VF).unwrap().is_none());
    }
}

#[test]
fn a_visible_holder_refuses_release_before_any_device_changes() {
    let (sim, host) = fresh();
    let managed = PrepareOptions { managed: true, force: false };
    host.prepare("vm1", &[a(VF), a(VF2)], Stub::Vfio, managed).unwrap();
    // The guest's QEMU still holds the second device.
    sim.hold_vfio(VF2, 4242, "qemu-system-x86", HoldKind::Device, false).unwrap();
    let writes = sim.writes().len();
    refused_for_holder(&host.release("vm1", None).unwrap_err(), VF2);
    assert_eq!(sim.writes().len(), writes, "not even the first device was given back");
    for d in [VF, VF2] {
        assert_eq!(sim.driver_of(d).as_deref(), Some("vfio-pci"));
        let r = host.state().get(d).unwrap().unwrap();
        assert_eq!((r.owner.as_deref(), r.managed, r.step), (Some("vm1"), true, Step::Detached));
    }
    sim.release_holder(4242);
    assert_eq!(host.release("vm1", None).unwrap(), 2);
    assert_eq!(sim.driver_of(VF2).as_deref(), Some("igbvf"));
}

#[test]
fn a_holder_of_the_group_refuses_a_group_detach() {
    let (sim, host) = fresh();
    host.detach(&a(GPU), Stub::Vfio).unwrap();
    sim.hold_vfio(GPU, 4242, "qemu-system-x86", HoldKind::Group, false).unwrap();
    let writes = sim.writes().len();
    let err = host.detach_with(&a(AUDIO), Stub::Vfio, DetachOptions { group: true, force: false }).unwrap_err();
    refused_for_holder(&err, GPU);
    assert!(err.message().contains("IOMMU group 2"), "{err}");
    assert_eq!(sim.writes().len(), writes);
    assert_eq!(sim.driver_of(AUDIO).as_deref(), Some("snd_hda_intel"));
    assert!(host.state().get(AUDIO).unwrap().is_none());
}

#[test]
fn recover_leaves_a_held_device_and_its_record_alone() {
    let (sim, host) = fresh();
    host.detach(&a(VF), Stub::Vfio).unwrap();
    // A process died mid-reattach while a guest held the device.
    let mut rec = host.state().get(VF).unwrap().unwrap();
    rec.step = Step::Reattaching;
    host.state().put(&rec).unwrap();
    sim.hold_vfio(VF, 4242, "qemu-system-x86", HoldKind::Device, false).unwrap();
    let writes = sim.writes().len();
    let report = host.recover().unwrap();
    assert_eq!(report.len(), 1);
    assert!(
        report[0].outcome.contains("record kept") && report[0].outcome.contains("pid 4242 (qemu-system-x86)"),
        "{report:?}"
    );
    assert_eq!(sim.writes().len(), writes);
    assert_eq!(host.state().get(VF).unwrap().unwrap().step, Step::Reattaching);
    sim.release_holder(4242);
    let report = host.recover().unwrap();
    assert!(report[0].outcome.contains("rolled back to igbvf"), "{report:?}");
    assert_eq!(sim.driver_of(VF).as_deref(), Some("igbvf"));
}

#[test]
fn a_hidden_holder_times_out_within_the_bound_and_recover_finishes_later() {
    let (sim, host) = fresh();
    host.detach(&a(VF), Stub::Vfio).unwrap();
    sim.hold_vfio(VF, 77, "hidden-guest", HoldKind::Device, true).unwrap();

    let start = Instant::now();
    let err = host.reattach(&a(VF), None).unwrap_err();
    let took = start.elapsed();
    assert!(took >= BOUND && took < BOUND + Duration::from_secs(2), "{took:?}");
    assert!(
        matches!(&err, Error::Timeout(m) if m.contains(VF) && m.contains("unbinding it from vfio-pci") && m.contains("nodedev recover")),
        "{err:?}"
    );
    assert_eq!(err.code(), 68, "VIR_ERR_OPERATION_TIMEOUT");
    // The kernel still waits (the driver link is already gone, as in
    // __device_release_driver); the record says where the reattach got to.
    assert!(sim.write_waiting(VF));
    assert_eq!(sim.driver_of(VF), None);
    assert_eq!(host.state().get(VF).unwrap().unwrap().step, Step::Reattaching);

    // The host lock is free: other devices go on meanwhile.
    let start = Instant::now();
    host.detach(&a(NIC), Stub::Vfio).unwrap();
    host.reattach(&a(NIC), None).unwrap();
    assert!(start.elapsed() < BOUND, "{:?}", start.elapsed());

    // Recover cannot finish yet: its writes about the device are bounded too.
    let start = Instant::now();
    let report = host.recover().unwrap();
    assert!(start.elapsed() < BOUND + Duration::from_secs(2));
    assert!(
        report.len() == 1 && report[0].outcome.contains("record kept") && report[0].outcome.contains("did not finish"),
        "{report:?}"
    );
    assert_eq!(host.state().get(VF).unwrap().unwrap().step, Step::Reattaching);

    // The holder goes: the waiting unbind completes, recover finishes.
    sim.release_holder(77);
    until("the unbind finishes once the holder is gone", || !sim.write_waiting(VF));
    let report = host.recover().unwrap();
    assert!(report.len() == 1 && report[0].outcome.contains("rolled back to igbvf"), "{report:?}");
    assert_eq!(sim.driver_of(VF).as_deref(), Some("igbvf"));
    assert!(host.state().get(VF).unwrap().is_none());
}

/// Before Linux 6.18 a device fd alone (group and container closed) does not
/// say whose device it is: it is reported for every VFIO device, as a
/// possible holder, and the kernel does wait for it on its own device.
#[test]
fn an_unnamed_device_fd_is_a_possible_holder_of_every_vfio_device() {
    let (sim, host) = fresh();
    host.detach(&a(VF), Stub::Vfio).unwrap();
    host.detach(&a(VF2), Stub::Vfio).unwrap();
    sim.hold_vfio(VF, 4242, "qemu-system-x86", HoldKind::UnnamedDevice, false).unwrap();
    for d in [VF, VF2] {
        let err = host.reattach(&a(d), None).unwrap_err();
        refused_for_holder(&err, d);
        assert!(
            err.message().contains("pid 4242 (qemu-system-x86) holds a VFIO device fd that the kernel does not name: it may be this device"),
            "{err}"
        );
        assert_eq!(sim.driver_of(d).as_deref(), Some("vfio-pci"));
    }
    // Beside the device's group it is taken for this device's.
    sim.hold_vfio(VF, 4242, "qemu-system-x86", HoldKind::Group, false).unwrap();
    let err = host.reattach(&a(VF), None).unwrap_err();
    assert!(err.message().contains("pid 4242 (qemu-system-x86) holds a VFIO device fd;"), "{err}");
    sim.release_holder(4242);
    host.reattach(&a(VF), None).unwrap();
    host.reattach(&a(VF2), None).unwrap();
}

/// Of several devices, one a process certainly holds names the refusal, not
/// one that an unnamed device fd may be of.
#[test]
fn a_certain_holder_names_the_refusal_before_a_possible_one() {
    let (sim, host) = fresh();
    host.prepare("vm1", &[a(VF), a(VF2)], Stub::Vfio, PrepareOptions { managed: true, force: false }).unwrap();
    sim.hold_vfio(VF2, 4242, "qemu-system-x86", HoldKind::Device, false).unwrap();
    sim.hold_vfio(VF2, 4343, "dpdk", HoldKind::UnnamedDevice, false).unwrap();
    let err = host.release("vm1", None).unwrap_err();
    assert!(
        err.message().starts_with(&format!("{VF2} is in use by pid 4242 (qemu-system-x86) and pid 4343 (dpdk)")),
        "{err}"
    );
    sim.release_holder(4242);
    let err = host.release("vm1", None).unwrap_err();
    assert!(err.message().starts_with(&format!("{VF} is in use by pid 4343 (dpdk)")), "{err}");
    sim.release_holder(4343);
    assert_eq!(host.release("vm1", None).unwrap(), 2);
}

/// A write that times out with no holder in sight does not blame one.
#[test]
fn a_timeout_with_no_visible_holder_blames_none() {
    let (sim, host) = fresh();
    host.detach(&a(VF), Stub::Vfio).unwrap();
    sim.hold_vfio(VF, 77, "hidden-guest", HoldKind::Device, true).unwrap();
    let err = host.reattach(&a(VF), None).unwrap_err();
    let m = err.message();
    assert!(m.contains("the kernel did not finish the write in time, and no process visibly holds the device"), "{m}");
    assert!(!m.contains("waits until every process holding"), "{m}");
    sim.release_holder(77);
    until("the unbind finishes", || !sim.write_waiting(VF));
    host.recover().unwrap();
}

#[test]
fn processes_that_could_not_be_inspected_are_said_so() {
    let (sim, host) = fresh();
    host.detach(&a(VF), Stub::Vfio).unwrap();
    sim.set_uninspectable_processes(3);
    sim.hold_vfio(VF, 77, "hidden-guest", HoldKind::Device, true).unwrap();
    let err = host.reattach(&a(VF), None).unwrap_err();
    assert!(matches!(&err, Error::Timeout(m) if m.contains("3 processes could not be inspected")), "{err:?}");
    sim.release_holder(77);
    until("the unbind finishes", || !sim.write_waiting(VF));
    host.recover().unwrap();
    host.detach(&a(VF), Stub::Vfio).unwrap();
    sim.hold_vfio(VF, 4242, "qemu-system-x86", HoldKind::Device, false).unwrap();
    let err = host.reset(&a(VF)).unwrap_err();
    refused_for_holder(&err, VF);
    assert!(err.message().contains("3 processes could not be inspected (run as root"), "{err}");
}

#[test]
fn a_hidden_holder_times_out_a_release_which_recover_finishes() {
    let (sim, host) = fresh();
    host.prepare("vm1", &[a(VF)], Stub::Vfio, PrepareOptions { managed: true, force: false }).unwrap();
    sim.hold_vfio(VF, 77, "hidden-guest", HoldKind::Cdev, true).unwrap();
    let start = Instant::now();
    let err = host.release("vm1", None).unwrap_err();
    assert!(start.elapsed() < BOUND * 2 + Duration::from_secs(2), "{:?}", start.elapsed());
    assert!(err.message().contains("did not finish"), "{err}");
    // No longer vm1's; mid-reattach, for recover.
    let rec = host.state().get(VF).unwrap().unwrap();
    assert_eq!((rec.owner, rec.step), (None, Step::Reattaching));
    sim.release_holder(77);
    until("the unbind finishes", || !sim.write_waiting(VF));
    let report = host.recover().unwrap();
    assert!(report[0].outcome.contains("rolled back to igbvf"), "{report:?}");
    assert_eq!(sim.driver_of(VF).as_deref(), Some("igbvf"));
}

#[test]
fn an_unbind_waits_for_a_device_fd_but_not_for_a_group_fd_alone() {
    // Kernel semantics (Linux >= 6.0): vfio_unregister_group_dev waits for
    // the device's users; an fd on the group alone does not hold it.
    let (sim, host) = fresh();
    host.detach(&a(VF), Stub::Vfio).unwrap();
    sim.hold_vfio(VF, 5, "group-only", HoldKind::Group, true).unwrap();
    host.reattach(&a(VF), None).unwrap();
    assert_eq!(sim.driver_of(VF).as_deref(), Some("igbvf"));
    // hold_vfio needs a device on a VFIO driver, as /dev/vfio/N needs one.
    assert!(sim.hold_vfio(NIC, 6, "x", HoldKind::Device, false).is_err());
}

#[test]
fn the_timeout_comes_from_the_uri_and_holders_from_the_host_description() {
    let dir = std::env::temp_dir().join(format!("nodedev-busy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("host.json");
    std::fs::write(
        &json,
        r#"{"drivers": [{"name": "igbvf", "ids": ["8086:10ca"]}, {"name": "vfio-pci"}],
            "devices": [
              {"address": "0000:04:10.0", "vendor": "0x8086", "device": "0x10ca", "class": "0x020000",
               "driver": "vfio-pci", "iommu_group": 12, "reset_method": ["flr"]},
              {"address": "0000:04:10.2", "vendor": "0x8086", "device": "0x10ca", "class": "0x020000",
               "driver": "vfio-pci", "iommu_group": 13}],
            "vfio_holders": [
              {"pid": 4242, "comm": "qemu-system-x86", "device": "0000:04:10.0", "holds": "device"},
              {"pid": 77, "comm": "hidden", "device": "0000:04:10.2", "holds": "cdev", "hidden": true}]}"#,
    )
    .unwrap();
    let uri = format!("test://{}?timeout=1", json.display());
    let (host, _) = nodedev::uri::open(Some(&uri), false).unwrap();
    assert_eq!(host.options().write_timeout, Duration::from_secs(1));
    refused_for_holder(&host.reattach(&a(VF), None).unwrap_err(), VF);
    let start = Instant::now();
    let err = host.reattach(&a(VF2), None).unwrap_err();
    assert!(matches!(err, Error::Timeout(_)) && start.elapsed() < Duration::from_secs(3), "{err:?}");

    // The default, and what the parameter accepts.
    let (host, _) = nodedev::uri::open(Some("test:///default"), true).unwrap();
    assert_eq!(host.options().write_timeout, Duration::from_secs(10));
    for bad in ["0", "0.5", "-1", "abc", "3601", "1e9"] {
        let e = nodedev::uri::parse(&format!("test:///default?timeout={bad}")).unwrap_err();
        assert!(e.message().contains("timeout must be a number of seconds"), "{bad}: {e}");
    }
    // A holder of a device not on VFIO is a mistake in the description.
    let e = SimKernel::from_json(
        r#"{"drivers": [{"name": "igbvf", "ids": ["8086:10ca"]}],
            "devices": [{"address": "0000:04:10.0", "vendor": "0x8086", "device": "0x10ca", "class": "0x020000",
                         "driver": "igbvf", "iommu_group": 12}],
            "vfio_holders": [{"pid": 1, "comm": "x", "device": "0000:04:10.0", "holds": "group"}]}"#,
    )
    .err()
    .unwrap();
    assert!(e.contains("vfio_holders[0]") && e.contains("not on a VFIO driver"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_real_write_that_times_out_leaves_the_state_lock_free() {
    // The real backend on a temporary tree: its `fifo` is a FIFO nobody
    // drains, so a large write waits as an unbind would. The write runs in a
    // forked process, which must not keep the state lock's file open: after
    // the caller drops its lock, another lock (another open of the lock
    // file, as another process would make) is granted at once.
    use nodedev::sysfs::host::HostSysfs;
    use nodedev::sysfs::Sysfs;
    let root = std::env::temp_dir().join(format!("nodedev-busy-real-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("sys")).unwrap();
    let fifo = root.join("sys/fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo on a path of our own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // A reader that never reads, so the writer's open succeeds and its write fills the pipe.
    let mut reader = std::fs::OpenOptions::new().read(true).write(true).open(&fifo).unwrap();

    let store = StateStore::dir(root.join("state"));
    let lock = store.lock().unwrap();
    let big = "x".repeat(1 << 20);
    let start = Instant::now();
    let err = HostSysfs::new(&root).write_bounded("fifo", &big, BOUND).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert!(start.elapsed() < BOUND + Duration::from_secs(2), "{:?}", start.elapsed());
    drop(lock);

    let other = StateStore::dir(root.join("state"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let granted = other.lock().is_ok();
        let _ = tx.send(granted);
    });
    let granted = rx.recv_timeout(Duration::from_secs(5));
    // Let the orphaned writer finish before judging, so no process is left behind.
    let mut left = big.len();
    let mut buf = vec![0u8; 65536];
    while left > 0 {
        left -= std::io::Read::read(&mut reader, &mut buf).unwrap();
    }
    assert_eq!(granted, Ok(true), "the state lock stayed held by the writer process");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_variant_vfio_driver_is_a_vfio_driver() {
    // mlx5_vfio_pci and the like: held devices on them are refused too, and
    // their unbind waits in the simulated kernel as vfio-pci's does.
    let spec = r#"{"drivers": [{"name": "mlx5_core", "ids": ["15b3:101e"]}, {"name": "mlx5_vfio_pci", "ids": ["15b3:101e"]}, {"name": "vfio-pci"}],
        "devices": [
          {"address": "0000:08:00.1", "vendor": "0x15b3", "device": "0x101e", "class": "0x020000",
           "driver": "mlx5_vfio_pci", "iommu_group": 30}],
        "vfio_holders": [{"pid": 4242, "comm": "qemu-system-x86", "device": "0000:08:00.1", "holds": "cdev"}]}"#;
    let sim = Arc::new(SimKernel::from_json(spec).unwrap());
    let host =
        Host::new(sim.clone(), StateStore::memory(), HostOptions { write_timeout: BOUND, ..HostOptions::default() });
    let dev = "0000:08:00.1";
    // On a variant it is on vfio already: detaching to vfio changes nothing.
    host.detach(&a(dev), Stub::Vfio).unwrap();
    assert!(sim.writes().is_empty());
    // Giving it to its host driver unbinds it from the variant: refused while held.
    refused_for_holder(&host.reattach(&a(dev), Some("mlx5_core")).unwrap_err(), dev);
    assert_eq!(sim.driver_of(dev).as_deref(), Some("mlx5_vfio_pci"));
    assert!(sim.writes().is_empty());
    sim.release_holder(4242);
    sim.hold_vfio(dev, 9, "hidden", HoldKind::Device, true).unwrap();
    let err = host.reattach(&a(dev), Some("mlx5_core")).unwrap_err();
    assert!(matches!(&err, Error::Timeout(m) if m.contains("unbinding it from mlx5_vfio_pci")), "{err:?}");
    // Mid-reattach for recover, which finishes it once the holder is gone.
    assert_eq!(host.state().get(dev).unwrap().unwrap().step, Step::Reattaching);
    sim.release_holder(9);
    until("the unbind finishes", || !sim.write_waiting(dev));
    let report = host.recover().unwrap();
    assert!(report.len() == 1 && report[0].outcome.contains("mlx5_core"), "{report:?}");
    assert_eq!(sim.driver_of(dev).as_deref(), Some("mlx5_core"));
}
