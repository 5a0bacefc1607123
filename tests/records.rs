//! Records and recovery on a live host (issue 11, items 3 to 5): recovery
//! obeys the connection, the policy and the authorization callback and never
//! runs at open; a record that cannot be used is kept and protects its
//! device; a full state filesystem changes nothing, and reattach and release
//! still work on one.

use nodedev::state::{Record, StateStore, Step};
use nodedev::sysfs::sim::SimKernel;
use nodedev::{
    AuthRequest, DetachOptions, Error, Host, HostOptions, Operation, PciAddress, Policy, PrepareOptions, Stub,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const VF: &str = "0000:04:10.0";
const VF2: &str = "0000:04:10.2";
const NIC1: &str = "0000:03:01.0";
const NIC2: &str = "0000:03:02.0";
const GPU: &str = "0000:01:00.0";
const AUDIO: &str = "0000:01:00.1";
const MANAGED: PrepareOptions = PrepareOptions { managed: true, force: false };
const UNMANAGED: PrepareOptions = PrepareOptions { managed: false, force: false };

fn a(s: &str) -> PciAddress {
    PciAddress::parse(s).unwrap()
}

fn tempdir(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("nodedev-records-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&p);
    p
}

fn host_with(sim: &Arc<SimKernel>, store: &StateStore, options: HostOptions) -> Host {
    Host::new(sim.clone(), store.clone(), options)
}

fn rw() -> HostOptions {
    HostOptions::default()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// A detach of the VF that died after writing its intent and unbinding it.
fn half_done_detach(sim: &Arc<SimKernel>, store: &StateStore) {
    store.put(&Record::new(VF, Some("igbvf".into()), "vfio-pci")).unwrap();
    nodedev::sysfs::Sysfs::write(sim.as_ref(), "bus/pci/drivers/igbvf/unbind", VF).unwrap();
    assert_eq!(sim.driver_of(VF), None);
}

#[test]
fn no_connection_recovers_at_open_and_lockdown_read_only_and_policy_only_report() {
    let dir = tempdir("open");
    let uri = format!("test:///default?statedir={}", dir.display());
    // Opening with nothing there creates nothing.
    let (h, _) = nodedev::uri::open(Some(&uri), false).unwrap();
    assert!(!dir.exists());
    assert!(h.recover().unwrap().is_empty());
    assert!(!dir.exists(), "recover with nothing to do created the state directory");
    drop(h);

    let (sim, store) = (Arc::new(SimKernel::builtin()), StateStore::dir(&dir));
    half_done_detach(&sim, &store);
    let before = fs::read(dir.join(format!("{VF}.json"))).unwrap();
    // Every kind of connection: opening changes nothing.
    for query in ["", "&lockdown=1"] {
        for ro in [false, true] {
            let (h, _) = nodedev::uri::open(Some(&format!("{uri}{query}")), ro).unwrap();
            drop(h);
            assert_eq!(fs::read(dir.join(format!("{VF}.json"))).unwrap(), before);
        }
    }
    let locked = Policy::parse("lockdown yes", "test policy").unwrap();
    for (what, options) in [
        ("read-only", HostOptions { read_only: true, ..rw() }),
        ("lockdown", HostOptions { policy: locked.clone(), ..rw() }),
        ("read-only", HostOptions { policy: locked, read_only: true, ..rw() }),
    ] {
        let h = host_with(&sim, &store, options);
        for _ in 0..2 {
            let report = h.recover().unwrap();
            assert_eq!(report.len(), 1, "{report:?}");
            assert!(
                !report[0].resolved && report[0].outcome.contains(what) && report[0].outcome.contains("pending"),
                "{report:?}"
            );
        }
        assert_eq!(sim.driver_of(VF), None);
        assert_eq!(fs::read(dir.join(format!("{VF}.json"))).unwrap(), before, "{what}");
    }
    // Until recovered, every operation on the device refuses (no guessing
    // from a half-done record).
    let h = host_with(&sim, &store, rw());
    for err in [
        h.detach(&a(VF), Stub::Vfio).unwrap_err(),
        h.reattach(&a(VF), None).unwrap_err(),
        h.reset(&a(VF)).unwrap_err(),
        h.prepare("vm1", &[a(VF)], Stub::Vfio, MANAGED).unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::OperationInvalid(m) if m.contains("half done") && m.contains("nodedev recover")),
            "{err:?}"
        );
    }
    assert_eq!(sim.driver_of(VF), None);
    let report = h.recover().unwrap();
    assert!(
        report.len() == 1 && report[0].resolved && report[0].outcome.contains("rolled back to igbvf"),
        "{report:?}"
    );
    assert_eq!(sim.driver_of(VF).as_deref(), Some("igbvf"));
    assert!(store.list().unwrap().is_empty());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn finishing_a_detach_needs_the_policy_giving_back_does_not() {
    let sim = Arc::new(SimKernel::builtin());
    let store = StateStore::memory();
    // The dead process reached the stub: recovery would finish the detach.
    host_with(&sim, &store, rw()).detach(&a(VF), Stub::Vfio).unwrap();
    let mut rec = store.get(VF).unwrap().unwrap();
    rec.step = Step::Detaching;
    store.put(&rec).unwrap();
    let deny = HostOptions { policy: Policy::parse(&format!("deny {VF}"), "test policy").unwrap(), ..rw() };
    let report = host_with(&sim, &store, deny.clone()).recover().unwrap();
    assert!(report.len() == 1 && !report[0].resolved && report[0].outcome.contains("finish the detach"), "{report:?}");
    assert_eq!(store.get(VF).unwrap().unwrap().step, Step::Detaching);
    // Giving back is allowed under the same policy.
    rec.step = Step::Reattaching;
    store.put(&rec).unwrap();
    let report = host_with(&sim, &store, deny).recover().unwrap();
    assert!(
        report.len() == 1 && report[0].resolved && report[0].outcome.contains("rolled back to igbvf"),
        "{report:?}"
    );
    assert_eq!(sim.driver_of(VF).as_deref(), Some("igbvf"));
    assert!(store.get(VF).unwrap().is_none());
}

#[test]
fn recovery_asks_the_callback_with_its_own_operation_and_obeys_a_denial() {
    let sim = Arc::new(SimKernel::builtin());
    let store = StateStore::memory();
    half_done_detach(&sim, &store);
    let h = host_with(&sim, &store, rw());
    let asked: Arc<Mutex<Vec<(Operation, String, Option<String>)>>> = Arc::default();
    let allow = Arc::new(Mutex::new(false));
    let (log, yes) = (asked.clone(), allow.clone());
    h.set_authorizer(Some(Arc::new(move |req: &AuthRequest<'_>| {
        log.lock().unwrap().push((req.operation, req.address.to_string(), req.driver.map(str::to_string)));
        *yes.lock().unwrap()
    })));
    let report = h.recover().unwrap();
    assert!(report.len() == 1 && !report[0].resolved && report[0].outcome.contains("denied"), "{report:?}");
    // Told the driver the device would get back.
    assert_eq!(*asked.lock().unwrap(), [(Operation::Recover, VF.to_string(), Some("igbvf".to_string()))]);
    assert_eq!(sim.driver_of(VF), None);
    assert_eq!(store.get(VF).unwrap().unwrap().step, Step::Detaching);
    *allow.lock().unwrap() = true;
    let report = h.recover().unwrap();
    assert!(report.len() == 1 && report[0].resolved, "{report:?}");
    assert_eq!(asked.lock().unwrap().len(), 2);
    assert_eq!(sim.driver_of(VF).as_deref(), Some("igbvf"));
    assert!(h.recover().unwrap().is_empty());
    assert_eq!(asked.lock().unwrap().len(), 2, "asked with nothing to recover");
}

#[test]
fn an_unusable_record_is_kept_reported_and_protects_its_device_until_cleared() {
    let dir = tempdir("corrupt");
    let sim = Arc::new(SimKernel::builtin());
    let store = StateStore::dir(&dir);
    let h = host_with(&sim, &store, rw());
    // GPU and AUDIO assigned to vm1; then GPU's record is damaged.
    h.prepare("vm1", &[a(GPU), a(AUDIO)], Stub::Vfio, MANAGED).unwrap();
    let file = dir.join(format!("{GPU}.json"));
    let mut bytes = fs::read(&file).unwrap();
    bytes.truncate(100);
    fs::write(&file, &bytes).unwrap();

    // A read-only connection reports it and renames nothing.
    let listed = listing(&dir);
    let ro = host_with(&sim, &store, HostOptions { read_only: true, ..rw() });
    for _ in 0..2 {
        let report = ro.recover().unwrap();
        assert!(report.len() == 1 && report[0].address == GPU && report[0].outcome.contains("--clear"), "{report:?}");
        assert!(ro.detach(&a(GPU), Stub::Vfio).is_err());
        assert!(ro.state().get(GPU).is_err());
    }
    assert_eq!(listing(&dir), listed);
    assert!(matches!(ro.clear_record(&a(GPU)), Err(Error::Denied(_))));

    // Nobody can take, give back, reset or release it; nor its group mate.
    let protected = |e: Error| matches!(&e, Error::OperationInvalid(m) if m.contains(&format!("{GPU}.json")) && m.contains("recover --clear"));
    assert!(protected(h.prepare("vm2", &[a(GPU)], Stub::Vfio, MANAGED).unwrap_err()));
    assert!(protected(h.prepare("vm1", &[a(GPU)], Stub::Vfio, UNMANAGED).unwrap_err()));
    assert!(protected(h.reattach(&a(GPU), None).unwrap_err()));
    assert!(matches!(h.reattach(&a(AUDIO), None), Err(Error::OperationInvalid(_))));
    assert!(protected(h.reset(&a(GPU)).unwrap_err()));
    assert!(protected(h.detach(&a(GPU), Stub::Kvm).unwrap_err()));
    assert!(h.release("vm1", Some(&[a(GPU)])).is_err());
    assert!(matches!(h.prepare("vm2", &[a(AUDIO)], Stub::Vfio, MANAGED), Err(Error::OperationInvalid(_))));
    assert_eq!(sim.driver_of(GPU).as_deref(), Some("vfio-pci"));
    // Reported by every call until cleared; the file stays as it is.
    for _ in 0..3 {
        let report = h.recover().unwrap();
        assert_eq!(report.iter().filter(|r| r.address == GPU && !r.resolved).count(), 1, "{report:?}");
    }
    assert_eq!(fs::read(&file).unwrap(), bytes);
    // Clearing a usable record of a present device is refused...
    let err = h.clear_record(&a(AUDIO)).unwrap_err();
    assert!(matches!(&err, Error::OperationInvalid(m) if m.contains("valid") && m.contains("vm1")), "{err:?}");
    // ...an unusable one is cleared (kept aside), and the device is usable again.
    let said = h.clear_record(&a(GPU)).unwrap();
    assert!(said.contains(".cleared-"), "{said}");
    assert!(h.recover().unwrap().is_empty());
    h.release("vm1", None).unwrap();
    assert_eq!(sim.driver_of(AUDIO).as_deref(), Some("snd_hda_intel"));
    h.reattach(&a(GPU), Some("nouveau")).unwrap();
    assert_eq!(store.list().unwrap(), []);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_record_of_a_vanished_device_is_reported_once_and_kept() {
    let dir = tempdir("vanished");
    let sim = Arc::new(SimKernel::builtin());
    let store = StateStore::dir(&dir);
    let h = host_with(&sim, &store, rw());
    h.detach(&a(VF2), Stub::Vfio).unwrap();
    half_done_detach(&sim, &store);
    // Both VFs vanish (hot-unplug: their PF's VFs are switched off).
    nodedev::sysfs::Sysfs::write(sim.as_ref(), &format!("bus/pci/devices/{VF}/remove"), "1").unwrap();
    nodedev::sysfs::Sysfs::write(sim.as_ref(), &format!("bus/pci/devices/{VF2}/remove"), "1").unwrap();
    let report = h.recover().unwrap();
    assert_eq!(report.len(), 2, "{report:?}");
    assert!(report.iter().all(|r| !r.resolved && r.outcome.contains("gone")), "{report:?}");
    assert!(h.recover().unwrap().is_empty(), "reported twice");
    assert_eq!(store.list().unwrap().len(), 2, "a vanished device's record was dropped");
    // A new connection reports them again, once.
    let other = host_with(&sim, &store, rw());
    assert_eq!(other.recover().unwrap().len(), 2);
    assert!(other.recover().unwrap().is_empty());
    // The administrator forgets them.
    other.clear_record(&a(VF)).unwrap();
    other.clear_record(&a(VF2)).unwrap();
    assert!(store.list_checked().unwrap().0.is_empty());
    fs::remove_dir_all(&dir).unwrap();
}

/// An operation, what it starts from, and its devices.
struct Op {
    name: &'static str,
    devices: &'static [&'static str],
    run: fn(&Host) -> nodedev::Result<()>,
}

fn taking_ops() -> Vec<Op> {
    vec![
        Op { name: "detach", devices: &[VF], run: |h| h.detach(&a(VF), Stub::Vfio) },
        Op {
            name: "group detach",
            devices: &[NIC1, NIC2],
            run: |h| h.detach_with(&a(NIC1), Stub::Vfio, DetachOptions { group: true, force: false }),
        },
        Op {
            name: "managed prepare",
            devices: &[GPU, AUDIO],
            run: |h| h.prepare("vm1", &[a(GPU), a(AUDIO)], Stub::Vfio, MANAGED),
        },
        Op {
            name: "unmanaged prepare",
            devices: &[VF],
            run: |h| {
                // Set up outside the fault: an admin put the VF on vfio-pci.
                h.prepare("vm1", &[a(VF)], Stub::Vfio, UNMANAGED)
            },
        },
    ]
}

/// The unmanaged case starts from a VF an admin put on vfio-pci (no record).
fn setup(op: &Op, h: &Host) {
    if op.name == "unmanaged prepare" {
        h.detach(&a(VF), Stub::Vfio).unwrap();
        h.state().remove(VF).unwrap();
    }
}

#[test]
fn a_failed_record_write_at_any_point_changes_nothing_and_says_so() {
    let mut cases = 0;
    for op in taking_ops() {
        for fault in ["full disk", "one EIO"] {
            for on_disk in [false, true] {
                let dir = tempdir("enospc");
                for n in 0.. {
                    assert!(n < 50, "{} never succeeded", op.name);
                    let store = if on_disk { StateStore::dir(&dir) } else { StateStore::memory() };
                    let what = format!("{} with a {fault} after {n} writes ({})", op.name, store.location());
                    let sim = Arc::new(SimKernel::builtin());
                    let h = host_with(&sim, &store, rw());
                    setup(&op, &h);
                    let before: Vec<Option<String>> = op.devices.iter().map(|d| sim.driver_of(d)).collect();
                    match fault {
                        "full disk" => store.fail_new_space(libc::ENOSPC, n, 1000),
                        _ => store.fail_writes(libc::EIO, n, 1),
                    }
                    let result = (op.run)(&h);
                    store.fail_writes(0, 0, 0);
                    let Err(e) = result else {
                        assert!(n >= 1, "{what}: no write failed");
                        let _ = fs::remove_dir_all(&dir);
                        break;
                    };
                    cases += 1;
                    let m = e.message();
                    assert!(m.contains("nothing changed") && !m.contains("not everything"), "{what}: {m}");
                    assert!(
                        m.contains(if fault == "full disk" { "No space left" } else { "Input/output error" }),
                        "{what}: {m}"
                    );
                    let after: Vec<Option<String>> = op.devices.iter().map(|d| sim.driver_of(d)).collect();
                    assert_eq!(after, before, "{what}: {m}");
                    assert_eq!(store.list_checked().unwrap().0, [], "{what}: {m}");
                    assert!(h.recover().unwrap().is_empty(), "{what}: left something to recover");
                    let _ = fs::remove_dir_all(&dir);
                }
            }
        }
    }
    println!("failed writes tested: {cases}");
}

#[test]
fn reattach_and_release_work_when_no_new_space_can_be_had() {
    for on_disk in [false, true] {
        let dir = tempdir("full");
        let store = if on_disk { StateStore::dir(&dir) } else { StateStore::memory() };
        let sim = Arc::new(SimKernel::builtin());
        let h = host_with(&sim, &store, rw());
        h.detach(&a(VF), Stub::Vfio).unwrap();
        h.detach_with(&a(NIC1), Stub::Kvm, DetachOptions { group: true, force: false }).unwrap();
        h.prepare("vm1", &[a(GPU), a(AUDIO)], Stub::Vfio, MANAGED).unwrap();
        // The filesystem fills up: every new allocation fails from now on.
        store.fail_new_space(libc::ENOSPC, 0, u32::MAX);
        // Taking more is refused, with nothing changed...
        let err = h.detach(&a(VF2), Stub::Vfio).unwrap_err();
        assert!(err.message().contains("nothing changed"), "{err:?}");
        assert_eq!(sim.driver_of(VF2).as_deref(), Some("igbvf"));
        // ...giving back works.
        h.reattach(&a(VF), None).unwrap();
        h.reattach(&a(NIC1), None).unwrap();
        h.reattach(&a(NIC2), None).unwrap();
        assert_eq!(h.release("vm1", None).unwrap(), 2);
        for (d, drv) in [(VF, "igbvf"), (NIC1, "e1000"), (NIC2, "e1000"), (GPU, "nouveau"), (AUDIO, "snd_hda_intel")] {
            assert_eq!(sim.driver_of(d).as_deref(), Some(drv), "{d} ({})", store.location());
        }
        assert_eq!(store.list().unwrap(), []);
        // A device on a stub without a record needs one written first: refused, unchanged.
        h.detach(&a(VF2), Stub::Vfio).unwrap_err();
        store.fail_writes(0, 0, 0);
        h.detach(&a(VF2), Stub::Vfio).unwrap();
        store.remove(VF2).unwrap();
        store.fail_new_space(libc::ENOSPC, 0, u32::MAX);
        let err = h.reattach(&a(VF2), None).unwrap_err();
        assert!(err.message().contains("nothing changed"), "{err:?}");
        assert_eq!(sim.driver_of(VF2).as_deref(), Some("vfio-pci"));
        store.fail_writes(0, 0, 0);
        let _ = fs::remove_dir_all(&dir);
    }
}

#[test]
fn the_cli_reports_an_unusable_record_until_it_is_cleared() {
    let dir = tempdir("cli");
    let uri = format!("test:///default?statedir={}", dir.display());
    let run = |script: &str| {
        let out =
            std::process::Command::new(env!("CARGO_BIN_EXE_nodedev")).args(["-c", &uri, script]).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    // One process detaches; the record is damaged before the next one runs
    // (each process has a fresh simulated kernel: the records are what is shared).
    assert_eq!(run(&format!("detach {VF2}")).0, Some(0));
    fs::write(dir.join(format!("{VF2}.json")), b"{\"address\"").unwrap();
    let (code, out) = run(&format!("recover; reattach {VF2}"));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("cannot be used")
            && out.contains(&format!("recover --clear {VF2}"))
            && out.contains("1 still need attention"),
        "{out}"
    );
    let (code, out) = run(&format!("reattach {VF2}"));
    assert!(code == Some(1) && out.contains("protected"), "{out}");
    let (code, out) = run(&format!("recover --clear {VF}"));
    assert!(code == Some(1) && out.contains("no record"), "{out}");
    let (code, out) = run(&format!("recover --clear {VF2}; recover; detach {VF2}; reattach {VF2}"));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("record cleared") && out.contains("0 record(s) reported"), "{out}");
    fs::remove_dir_all(&dir).unwrap();
}
