//! Locks per IOMMU group (src/state/lock.rs, src/host/locking.rs): an
//! operation waits only for operations on its own groups. Proven without
//! timing: a lock held by another process (this test binary run again as a
//! holder) or thread blocks exactly the operations on its group, within the
//! bound, and the Timeout names the holder; operations on other groups go
//! on meanwhile. Two CLI processes racing for one group never both win.

mod common;

use nodedev::state::{LockKey, StateStore};
use nodedev::sysfs::sim::SimKernel;
use nodedev::sysfs::Sysfs;
use nodedev::{Error, Host, HostOptions, PciAddress, PrepareOptions, Stub};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

const PF: &str = "0000:04:00.0";
/// The built-in host's VFs: IOMMU groups 8, 9 and 10.
const VF8: &str = "0000:04:10.0";
const VF9: &str = "0000:04:10.2";
/// The two e1000 behind the PCI bridge: both in group 5.
const NIC1: &str = "0000:03:01.0";
const NIC2: &str = "0000:03:02.0";
const MANAGED: PrepareOptions = PrepareOptions { managed: true, force: false };

fn a(s: &str) -> PciAddress {
    PciAddress::parse(s).unwrap()
}

fn scratch(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("nodedev-grouplock-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&p);
    fs::create_dir_all(&p).unwrap();
    p
}

fn host(sim: &Arc<SimKernel>, state: &StateStore, wait_ms: u64) -> Arc<Host> {
    let options = HostOptions { lock_wait: Duration::from_millis(wait_ms), ..HostOptions::default() };
    Arc::new(Host::new(sim.clone(), state.clone(), options))
}

/// What the holder prints once it holds its locks.
const READY: &str = "NODEDEV-HOLDER-READY";

/// Run by `Holder::start` in a process of its own (this test binary again):
/// takes the locks NODEDEV_TEST_HOLD names ("DIR KEY..."; KEY is `host`,
/// `group:N` or `device:ADDRESS`), says `READY`, and keeps them until its
/// stdin closes.
#[test]
#[ignore = "a helper: the other tests run it as a separate process"]
fn holder_process() {
    let spec = std::env::var("NODEDEV_TEST_HOLD").expect("run by Holder::start");
    let mut words = spec.split(' ');
    let store = StateStore::dir(words.next().unwrap());
    let keys: Vec<String> = words.map(str::to_string).collect();
    let _held = if keys == ["host"] {
        store.lock().unwrap()
    } else {
        let keys: Vec<LockKey> = keys
            .iter()
            .map(|k| match k.split_once(':') {
                Some(("group", n)) => LockKey::Group(n.parse().unwrap()),
                Some(("device", d)) => LockKey::Device(a(d)),
                _ => panic!("bad key {k}"),
            })
            .collect();
        store.lock_keys(&keys, &[]).unwrap()
    };
    // libtest has printed "test holder_process ... " without a newline.
    println!("{READY}");
    std::io::stdout().flush().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut rest);
}

/// Another process holding locks of a state directory.
struct Holder {
    child: Child,
    /// Its stdout, read to the end at `stop` (its test harness writes there).
    out: BufReader<std::process::ChildStdout>,
}

impl Holder {
    fn start(state: &Path, keys: &str) -> Holder {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "holder_process", "--nocapture", "--test-threads=1"])
            .env("NODEDEV_TEST_HOLD", format!("{} {keys}", state.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.trim_end().ends_with(READY) {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "the holder exited before taking its locks");
        }
        Holder { child, out }
    }

    fn pid(&self) -> String {
        format!("pid {}", self.child.id())
    }

    fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = std::io::Read::read_to_end(&mut self.out, &mut Vec::new());
        assert!(self.child.wait().unwrap().success());
    }
}

#[test]
fn a_process_holding_a_group_blocks_that_group_only_and_is_named() {
    let dir = scratch("other-process");
    let state = StateStore::dir(dir.join("state"));
    let sim = Arc::new(SimKernel::builtin());
    let h = host(&sim, &state, 300);
    let holder = Holder::start(&dir.join("state"), "group:8");

    // Other groups go on while group 8 is held: a VF, the e1000 pair, the edu device.
    h.detach(&a(VF9), Stub::Kvm).unwrap();
    h.prepare("vm2", &[a(NIC1), a(NIC2)], Stub::Kvm, MANAGED).unwrap();
    assert_eq!(sim.driver_of(NIC2).as_deref(), Some("pci-stub"));
    assert_eq!(h.release("vm2", None).unwrap(), 2);
    h.reattach(&a(VF9), None).unwrap();

    // Group 8 waits for the holder, within the bound, and names it.
    for r in [
        h.detach(&a(VF8), Stub::Kvm),
        h.reset(&a(VF8)),
        // All or nothing: VF9's group is free, but VF8's is not.
        h.prepare("vm1", &[a(VF9), a(VF8)], Stub::Kvm, MANAGED),
    ] {
        let e = r.unwrap_err();
        assert!(
            matches!(&e, Error::Timeout(m) if m.contains("IOMMU group 8") && m.contains(&holder.pid()) && m.contains("0.3 s")),
            "{e}"
        );
    }
    assert_eq!(sim.driver_of(VF8).as_deref(), Some("igbvf"));
    assert_eq!(sim.driver_of(VF9).as_deref(), Some("igbvf"), "a prepare that could not lock changed nothing");
    assert!(state.list().unwrap().is_empty());
    // What locks the whole host waits for every group holder.
    let e = h.set_vf_count(&a(PF), 0, None, false).unwrap_err();
    assert!(matches!(&e, Error::Timeout(m) if m.contains("host lock") && m.contains(&holder.pid())), "{e}");
    let e = h.clear_record(&a(VF8)).unwrap_err();
    assert!(matches!(&e, Error::Timeout(m) if m.contains(&holder.pid())), "{e}");

    holder.stop();
    h.prepare("vm1", &[a(VF9), a(VF8)], Stub::Kvm, MANAGED).unwrap();
    assert_eq!(h.release("vm1", None).unwrap(), 2);
    assert_eq!(sim.driver_of(VF8).as_deref(), Some("igbvf"));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_process_holding_the_host_lock_blocks_every_group() {
    let dir = scratch("host-holder");
    let state = StateStore::dir(dir.join("state"));
    let sim = Arc::new(SimKernel::builtin());
    let h = host(&sim, &state, 300);
    let holder = Holder::start(&dir.join("state"), "host");
    for addr in [VF8, VF9, NIC1] {
        let e = h.detach(&a(addr), Stub::Kvm).unwrap_err();
        assert!(matches!(&e, Error::Timeout(m) if m.contains("host lock") && m.contains(&holder.pid())), "{e}");
    }
    holder.stop();
    h.detach(&a(VF8), Stub::Kvm).unwrap();
    h.reattach(&a(VF8), None).unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

/// Devices without an IOMMU group are locked one by one.
#[test]
fn without_an_iommu_each_device_is_its_own_lock() {
    let dir = scratch("no-iommu");
    let sim = Arc::new(
        SimKernel::from_json(
            r#"{"iommu": false,
                "drivers": [{"name": "e1000e", "module": "e1000e", "ids": ["8086:10d3"]},
                            {"name": "pci-stub", "module": "pci_stub"}],
                "devices": [{"address": "0000:03:00.0", "vendor": "0x8086", "device": "0x10d3",
                             "class": "0x020000", "driver": "e1000e"},
                            {"address": "0000:07:00.0", "vendor": "0x8086", "device": "0x10d3",
                             "class": "0x020000", "driver": "e1000e"}]}"#,
        )
        .unwrap(),
    );
    let state = StateStore::dir(dir.join("state"));
    let h = host(&sim, &state, 300);
    assert_eq!(h.lock_key(&a("0000:03:00.0")), LockKey::Device(a("0000:03:00.0")));
    let holder = Holder::start(&dir.join("state"), "device:0000:03:00.0");
    h.detach(&a("0000:07:00.0"), Stub::Kvm).unwrap();
    let e = h.detach(&a("0000:03:00.0"), Stub::Kvm).unwrap_err();
    assert!(
        matches!(&e, Error::Timeout(m) if m.contains("device 0000:03:00.0 (in no IOMMU group)") && m.contains(&holder.pid())),
        "{e}"
    );
    holder.stop();
    h.detach(&a("0000:03:00.0"), Stub::Kvm).unwrap();
    assert_eq!(sim.driver_of("0000:03:00.0").as_deref(), Some("pci-stub"));
    fs::remove_dir_all(&dir).unwrap();
}

/// Threads of one process: one per group, each holding its group while the
/// others prepare theirs (a barrier proves they overlap); a thread on a
/// held group waits.
#[test]
fn threads_prepare_in_different_groups_at_once() {
    let sim = Arc::new(SimKernel::builtin());
    let state = StateStore::memory();
    let h = host(&sim, &state, 300);
    let vfs = [VF8, VF9, "0000:04:10.4"];
    // Each thread holds its VF's group, waits until all hold theirs, then prepares.
    let barrier = Arc::new(std::sync::Barrier::new(vfs.len()));
    let threads: Vec<_> = vfs
        .iter()
        .enumerate()
        .map(|(i, vf)| {
            let (h, state, barrier, vf) = (h.clone(), state.clone(), barrier.clone(), a(vf));
            std::thread::spawn(move || {
                let held = state.lock_keys(&[h.lock_key(&vf)], &[]).unwrap();
                barrier.wait(); // every group is held at once
                drop(held);
                h.prepare(&format!("vm{i}"), &[vf], Stub::Kvm, MANAGED)
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    assert_eq!(h.assignments().unwrap().len(), 3);
    // A group held by a thread: an operation on it waits, then gives up.
    let held = state.lock_keys(&[LockKey::Group(8)], &[]).unwrap();
    let h2 = h.clone();
    let e = std::thread::spawn(move || h2.release("vm0", None)).join().unwrap().unwrap_err();
    assert!(matches!(&e, Error::Timeout(m) if m.contains("IOMMU group 8") && m.contains("another thread")), "{e}");
    h.release("vm1", None).unwrap();
    drop(held);
    h.release("vm0", None).unwrap();
    h.release("vm2", None).unwrap();
    for vf in vfs {
        assert_eq!(sim.driver_of(vf).as_deref(), Some("igbvf"));
    }
}

/// The simulated kernel, telling once when the operation has read the
/// device's IOMMU group to lock it (the first read of its `iommu_group`
/// link after the look at its `driver_override`: `Host::lock_devices`),
/// and, once `moved`, showing the device in IOMMU group 20: as after the
/// device was removed and added again (the kernel numbers a new group with
/// the lowest free number, which another device may have taken meanwhile).
struct Regrouped {
    sim: Arc<SimKernel>,
    device: String,
    armed: AtomicBool,
    moved: AtomicBool,
    told: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

impl Sysfs for Regrouped {
    fn exists(&self, p: &str) -> bool {
        if p == format!("{}/driver_override", self.device) {
            self.armed.store(true, SeqCst);
        }
        self.sim.exists(p)
    }
    fn read_link(&self, p: &str) -> std::io::Result<String> {
        if p != format!("{}/iommu_group", self.device) {
            return self.sim.read_link(p);
        }
        if self.armed.load(SeqCst) {
            if let Some(tx) = self.told.lock().unwrap().take() {
                let _ = tx.send(());
            }
        }
        if self.moved.load(SeqCst) {
            Ok("../../../../kernel/iommu_groups/20".to_string())
        } else {
            self.sim.read_link(p)
        }
    }
    forward_sysfs!(sim; read_bytes, net_features, read, write, list_dir, load_module, matching_aliases, vfio_aliases, pci_names, vfio_holders, write_bounded, net_addresses, net_routes, mounts, swaps, set_master, set_link_up, uevents);
}

/// A device's group changes between reading it and locking it: the
/// operation notices once it holds the old group, and locks the new one
/// instead (so it waits for whoever holds that).
#[test]
fn a_group_that_changes_while_waiting_is_locked_again() {
    let dir = scratch("regroup");
    let sim = Arc::new(SimKernel::builtin());
    let (tx, rx) = std::sync::mpsc::channel();
    let kernel = Arc::new(Regrouped {
        sim: sim.clone(),
        device: format!("bus/pci/devices/{VF8}"),
        armed: AtomicBool::new(false),
        moved: AtomicBool::new(false),
        told: std::sync::Mutex::new(Some(tx)),
    });
    let state = StateStore::dir(dir.join("state"));
    let options = HostOptions { lock_wait: Duration::from_millis(1000), ..HostOptions::default() };
    let h = Arc::new(Host::new(kernel.clone(), state.clone(), options));
    let old = state.lock_keys(&[LockKey::Group(8)], &[]).unwrap();
    let worker = {
        let h = h.clone();
        std::thread::spawn(move || h.detach(&a(VF8), Stub::Kvm))
    };
    // The worker has read group 8 and waits for it; then the device moves.
    rx.recv().unwrap();
    kernel.moved.store(true, SeqCst);
    assert_eq!(h.lock_key(&a(VF8)), LockKey::Group(20));
    let new = state.lock_keys(&[LockKey::Group(20)], &[]).unwrap();
    drop(old);
    let e = worker.join().unwrap().unwrap_err();
    assert!(matches!(&e, Error::Timeout(m) if m.contains("IOMMU group 20")), "{e}");
    assert_eq!(sim.driver_of(VF8).as_deref(), Some("igbvf"));
    drop(new);
    h.detach(&a(VF8), Stub::Kvm).unwrap();
    assert_eq!(sim.driver_of(VF8).as_deref(), Some("pci-stub"));
    fs::remove_dir_all(&dir).unwrap();
}

/// A test tree of the real-sysfs backend (nodedev-gen-sysfs) with the
/// e1000 pair of group 4 and the VF 0000:04:02.0 (group 8) moved to
/// vfio-pci, so unmanaged prepares (records only) act on it.
fn tree_on_vfio(dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_nodedev-gen-sysfs")).arg("20").arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sys = dir.join("sys");
    for d in ["0000:03:01.0", "0000:03:02.0", "0000:04:02.0"] {
        let dev = sys.join("bus/pci/devices").join(d);
        let old = fs::read_link(dev.join("driver")).unwrap();
        let old_name = old.file_name().unwrap().to_str().unwrap().to_string();
        fs::remove_file(dev.join("driver")).unwrap();
        symlink(old.parent().unwrap().join("vfio-pci"), dev.join("driver")).unwrap();
        let _ = fs::remove_file(sys.join("bus/pci/drivers").join(&old_name).join(d));
        let uevent = fs::read_to_string(dev.join("uevent")).unwrap();
        fs::write(dev.join("uevent"), uevent.replace(&format!("DRIVER={old_name}"), "DRIVER=vfio-pci")).unwrap();
    }
    format!("nodedev:///system?root={}&statedir={}", dir.display(), dir.join("state").display())
}

fn cli(uri: &str, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_nodedev"))
        .arg("-c")
        .arg(uri)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(c: Child) -> (bool, String) {
    let out = c.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn two_processes_racing_for_one_group_never_both_win() {
    let dir = scratch("race");
    let uri = tree_on_vfio(&dir);
    let (nic1, nic2) = ("0000:03:01.0", "0000:03:02.0");
    for round in 0..20 {
        // Two guests, two devices of one group: a group belongs to one guest.
        let (d1, d2) = if round % 2 == 0 { (nic1, nic2) } else { (nic1, nic1) };
        let (p1, p2) = (cli(&uri, &["prepare", "vmA", d1]), cli(&uri, &["prepare", "vmB", d2]));
        let (r1, r2) = (finish(p1), finish(p2));
        assert!(r1.0 != r2.0, "round {round}: both or neither won: {r1:?} {r2:?}");
        let (winner, loser) = if r1.0 { ("vmA", &r2.1) } else { ("vmB", &r1.1) };
        assert!(
            loser.contains("shares IOMMU group 4") || loser.contains("is assigned to"),
            "round {round}: the loser failed for another reason: {loser}"
        );
        let owners: Vec<String> = fs::read_dir(dir.join("state"))
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                (p.extension()? == "json").then(|| fs::read_to_string(p).unwrap())
            })
            .collect();
        assert!(owners.len() == 1 && owners[0].contains(winner), "round {round}: records {owners:?}");
        let (ok, out) = finish(cli(&uri, &["release", winner]));
        assert!(ok, "{out}");
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cli_on_another_group_runs_while_a_group_is_held() {
    let dir = scratch("cli-held");
    let uri = tree_on_vfio(&dir);
    // This process holds group 4 (the e1000 pair), as another nodedev call would.
    let state = StateStore::dir(dir.join("state"));
    let held = state.lock_keys(&[LockKey::Group(4)], &[]).unwrap();
    let blocked = cli(&uri, &["prepare", "vmA", "0000:03:01.0"]);
    // Group 8 is free: this one finishes while the other waits.
    let (ok, out) = finish(cli(&uri, &["prepare", "vmB", "0000:04:02.0"]));
    assert!(ok, "{out}");
    let mut blocked = blocked;
    assert!(blocked.try_wait().unwrap().is_none(), "the prepare on the held group did not wait");
    assert!(!dir.join("state/0000:03:01.0.json").exists());
    drop(held);
    let (ok, out) = finish(blocked);
    assert!(ok, "{out}");
    assert!(fs::read_to_string(dir.join("state/0000:03:01.0.json")).unwrap().contains("vmA"));
    for owner in ["vmA", "vmB"] {
        let (ok, out) = finish(cli(&uri, &["release", owner]));
        assert!(ok, "{out}");
    }
    fs::remove_dir_all(&dir).unwrap();
}

// ---- Attacks on the lock files and the in-process table (review of issue 14) ----

/// A FIFO planted where a lock file goes must not hang the caller: opening
/// a FIFO for writing blocks until a reader comes, outside every bound.
#[test]
fn a_fifo_planted_as_a_lock_file_is_refused_without_hanging() {
    let dir = scratch("fifo");
    let state = StateStore::dir(dir.join("state")).with_lock_wait(Duration::from_millis(200));
    drop(state.lock_keys(&[LockKey::Group(6)], &[]).unwrap()); // makes locks/
    let fifo = dir.join("state/locks/group-5");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let (tx, rx) = std::sync::mpsc::channel();
    let s = state.clone();
    std::thread::spawn(move || {
        let _ = tx.send(s.lock_keys(&[LockKey::Group(5)], &[]).map(drop));
    });
    let got = rx.recv_timeout(Duration::from_secs(10)).expect("lock_keys hung on a FIFO lock file");
    let e = got.unwrap_err();
    assert!(e.to_string().contains("group-5"), "{e}");
    fs::remove_dir_all(&dir).unwrap();
}

/// A lock file removed (or replaced, `rm -rf locks/`) while a caller waits
/// on it: once the holder lets go, the waiter must lock the file the path
/// names now, not the removed one, or it and the next caller both hold
/// the group.
#[test]
fn a_waiter_on_a_removed_lock_file_locks_the_file_there_now() {
    let dir = scratch("unlinked");
    // Stores on one directory: a table each, as separate processes have.
    let store = || StateStore::dir(dir.join("state")).with_lock_wait(Duration::from_millis(3000));
    let (first, second, third) = (store(), store(), store().with_lock_wait(Duration::from_millis(300)));
    let held = first.lock_keys(&[LockKey::Group(5)], &[]).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let g = second.lock_keys(&[LockKey::Group(5)], &[]).unwrap();
        tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        drop(g);
    });
    // The waiter has opened the file and polls it; then it is replaced.
    std::thread::sleep(Duration::from_millis(300));
    let file = dir.join("state/locks/group-5");
    fs::rename(&file, dir.join("old-group-5")).unwrap();
    fs::write(&file, "").unwrap();
    drop(held);
    rx.recv().unwrap();
    let e = third.lock_keys(&[LockKey::Group(5)], &[]).map(drop);
    assert!(matches!(&e, Err(Error::Timeout(m)) if m.contains("IOMMU group 5")), "both hold group 5: {e:?}");
    waiter.join().unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

/// Not fixed (a limit of lock files): a file removed while *held* leaves
/// its holder locking a file nobody else opens. Run with --ignored to see.
#[test]
#[ignore = "known limit: a lock file removed while held is not seen by the next caller"]
fn a_lock_file_removed_while_held_is_not_taken_twice() {
    let dir = scratch("unlinked-held");
    let first = StateStore::dir(dir.join("state")).with_lock_wait(Duration::from_millis(200));
    let second = StateStore::dir(dir.join("state")).with_lock_wait(Duration::from_millis(200));
    let held = first.lock_keys(&[LockKey::Group(5)], &[]).unwrap();
    fs::remove_file(dir.join("state/locks/group-5")).unwrap();
    let e = second.lock_keys(&[LockKey::Group(5)], &[]).map(drop);
    drop(held);
    fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(&e, Err(Error::Timeout(_))), "both hold group 5: {e:?}");
}

/// Recovery (the store lock exclusive) waits while group operations
/// overlap; those that start after it began waiting must let it in, or a
/// busy host never recovers (each holder is brief, yet one always holds).
#[test]
fn an_exclusive_waiter_is_not_starved_by_overlapping_group_holders() {
    let dir = scratch("starve");
    let state = StateStore::dir(dir.join("state")).with_lock_wait(Duration::from_millis(1500));
    let stop = Arc::new(AtomicBool::new(false));
    // How many group locks have been taken: a holder lets go only once the
    // other thread has taken its own (or after 50 ms), so one always holds.
    let taken = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let churn: Vec<_> = (0..2u32)
        .map(|i| {
            let (s, stop, taken) = (state.clone(), stop.clone(), taken.clone());
            std::thread::spawn(move || {
                while !stop.load(SeqCst) {
                    if let Ok(g) = s.lock_keys(&[LockKey::Group(1 + i)], &[]) {
                        let mine = taken.fetch_add(1, SeqCst) + 1;
                        for _ in 0..50 {
                            if taken.load(SeqCst) > mine {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        drop(g);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let got = state.lock().map(drop);
    stop.store(true, SeqCst);
    for t in churn {
        t.join().unwrap();
    }
    assert!(got.is_ok(), "the exclusive lock starved: {got:?}");
    fs::remove_dir_all(&dir).unwrap();
}

/// The host-use check (boot VGA, an interface with the host's address, a
/// mounted disk) runs before the group lock, and only for a device not on
/// the stub then. If another caller gives the device back to its host
/// driver while this detach waits for the group, the detach unbinds it
/// without ever checking: the check must be made on what is found under
/// the lock.
#[test]
fn a_device_given_back_while_a_detach_waits_is_checked_for_host_use() {
    let gpu = "0000:00:02.0"; // the boot VGA (i915), IOMMU group 3
    let dir = scratch("safe-race");
    let sim = Arc::new(SimKernel::builtin());
    let state = StateStore::dir(dir.join("state"));
    let h = host(&sim, &state, 3000);
    let forced = nodedev::DetachOptions { force: true, ..nodedev::DetachOptions::default() };
    h.detach_with(&a(gpu), Stub::Kvm, forced).unwrap();
    assert_eq!(sim.driver_of(gpu).as_deref(), Some("pci-stub"));
    let held = state.lock_keys(&[LockKey::Group(3)], &[]).unwrap();
    let worker = {
        let h = h.clone();
        std::thread::spawn(move || h.detach(&a(gpu), Stub::Kvm))
    };
    std::thread::sleep(Duration::from_millis(300));
    // Another caller (holding the group meanwhile) gave it back to i915.
    sim.write(&format!("bus/pci/devices/{gpu}/driver/unbind"), gpu).unwrap();
    sim.write(&format!("bus/pci/devices/{gpu}/driver_override"), "\n").unwrap();
    sim.write("bus/pci/drivers/i915/bind", gpu).unwrap();
    assert_eq!(sim.driver_of(gpu).as_deref(), Some("i915"));
    drop(held);
    let r = worker.join().unwrap();
    let now = sim.driver_of(gpu);
    assert!(
        matches!(&r, Err(Error::OperationInvalid(m)) if m.contains("boot VGA")),
        "the boot VGA was detached unchecked: {r:?}, now on {now:?}"
    );
    assert_eq!(now.as_deref(), Some("i915"));
    fs::remove_dir_all(&dir).unwrap();
}

/// `apply` looked at the device before waiting for its group: a device it
/// found on no driver it did not check for host use. If another caller binds
/// it to its host driver meanwhile, apply unbinds it unchecked: what counts
/// is what is found under the lock.
#[test]
fn a_device_given_back_while_apply_waits_is_checked_for_host_use() {
    let gpu = "0000:00:02.0"; // the boot VGA (i915), IOMMU group 3
    let dir = scratch("apply-race");
    let sim = Arc::new(SimKernel::builtin());
    let state = StateStore::dir(dir.join("state"));
    let options = HostOptions {
        lock_wait: Duration::from_millis(3000),
        definitions: Some(nodedev::persist::Definitions::new(dir.join("conf"))),
        ..HostOptions::default()
    };
    let h = Arc::new(Host::new(sim.clone(), state.clone(), options));
    let forced = nodedev::DetachOptions { force: true, ..nodedev::DetachOptions::default() };
    h.detach_with(&a(gpu), Stub::Kvm, forced).unwrap();
    h.define(&a(gpu)).unwrap();
    // As at boot before any driver took it: no driver, no record.
    sim.write(&format!("bus/pci/devices/{gpu}/driver/unbind"), gpu).unwrap();
    state.remove(gpu).unwrap();
    assert_eq!(sim.driver_of(gpu), None);
    let held = state.lock_keys(&[LockKey::Group(3)], &[]).unwrap();
    let worker = {
        let h = h.clone();
        std::thread::spawn(move || h.apply())
    };
    std::thread::sleep(Duration::from_millis(300));
    // Another caller (holding the group meanwhile) gave it to i915.
    sim.write(&format!("bus/pci/devices/{gpu}/driver_override"), "\n").unwrap();
    sim.write("bus/pci/drivers/i915/bind", gpu).unwrap();
    assert_eq!(sim.driver_of(gpu).as_deref(), Some("i915"));
    drop(held);
    let applied = worker.join().unwrap().unwrap();
    let now = sim.driver_of(gpu);
    let outcome = applied.iter().find(|x| x.address == gpu).expect("apply reports the device");
    assert!(
        !outcome.done && outcome.outcome.contains("boot VGA"),
        "the boot VGA was detached unchecked: {outcome:?}, now on {now:?}"
    );
    assert_eq!(now.as_deref(), Some("i915"));
    assert_eq!(state.get(gpu).unwrap(), None, "no record for a device left on its host driver");
    fs::remove_dir_all(&dir).unwrap();
}
