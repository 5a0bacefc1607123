//! Attacks on what issue 11 built (a reviewer's findings). A test whose
//! comment says "Was a bug, fixed" (or "was a finding") failed on the code
//! it was written against and guards the fix; the others are attacks that
//! held up, kept as regression guards.
//!
//! SAFETY: nothing here writes to the real /sys. The tests that open the
//! live host open it read-only (or look only at the policy and the sysfs
//! backend's notion of "live"), and a tree's `sys` that links to /sys is
//! only ever read.

use nodedev::sysfs::holders;
use nodedev::sysfs::host::HostSysfs;
use nodedev::sysfs::{Sysfs, VfioDevice};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::time::Duration;

fn scratch(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("nodedev-attack-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&p);
    fs::create_dir_all(&p).unwrap();
    p
}

// ---------------------------------------------------------------------------
// Finding: `root=DIR` where DIR/sys is a symlink to /sys (or a bind mount of
// it) is the live kernel, but counts as a test tree: the host policy
// (lockdown yes), the host-use checks (addresses, routes, mounts, swap) and
// the VFIO holder scan are all skipped, while every write goes to /sys.
// ---------------------------------------------------------------------------

/// Was a bug, fixed: uri.rs:is_live / HostSysfs::is_live compare only `root`.
#[test]
fn a_root_whose_sys_links_to_the_live_sys_keeps_the_lockdown() {
    let dir = scratch("sys-link");
    symlink("/sys", dir.join("sys")).unwrap();
    let host_policy = dir.join("host.conf");
    fs::write(&host_policy, "lockdown yes\n").unwrap();
    let uri = format!("nodedev:///system?root={}", dir.display());
    // Read-only: this test must never be able to change the real /sys.
    let (host, _) = nodedev::uri::open_with_host_policy(Some(&uri), true, host_policy.to_str().unwrap()).unwrap();
    // The tree's sysfs IS this kernel's /sys ...
    assert!(host.list().unwrap().len() == nodedev_live_device_count(), "the tree does read the live /sys");
    // ... so the host's lockdown must hold, and the safety checks must be live.
    assert!(
        host.options().policy.is_locked_down(),
        "{uri}: root=DIR with DIR/sys -> /sys drives the live kernel without the host policy"
    );
    assert!(
        HostSysfs::new(&dir).is_live(),
        "HostSysfs treats the live /sys as a test tree: holder scan, addresses, mounts skipped"
    );
    fs::remove_dir_all(&dir).unwrap();
}

fn nodedev_live_device_count() -> usize {
    fs::read_dir("/sys/bus/pci/devices").map(|d| d.count()).unwrap_or(0)
}

/// Held: the spellings of / that the issue named resolve to the live host.
#[test]
fn root_spellings_of_slash_keep_the_host_policy() {
    let dir = scratch("slash");
    let host_policy = dir.join("host.conf");
    fs::write(&host_policy, "lockdown yes\n").unwrap();
    symlink("/", dir.join("l1")).unwrap();
    symlink(dir.join("l1"), dir.join("l2")).unwrap();
    for root in [
        "/proc/self/root",
        "/sys/..",
        "/proc/self/cwd/../../../../../../..",
        &dir.join("l2").display().to_string(),
        "/tmp/../",
    ] {
        let uri = format!("nodedev:///system?root={root}");
        let (host, _) = nodedev::uri::open_with_host_policy(Some(&uri), true, host_policy.to_str().unwrap()).unwrap();
        assert!(host.options().policy.is_locked_down(), "{uri}");
    }
    // A symlink loop is not / and reads nothing.
    symlink(dir.join("loop"), dir.join("loop")).unwrap();
    let uri = format!("nodedev:///system?root={}&statedir={}", dir.join("loop").display(), dir.join("state").display());
    if let Ok((host, _)) = nodedev::uri::open_with_host_policy(Some(&uri), true, host_policy.to_str().unwrap()) {
        assert!(host.list().map(|l| l.is_empty()).unwrap_or(true));
    }
    fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------
// Finding: the live host's records can be stepped around with `statedir=`.
// A device assigned to guest A (record with owner in /run/nodedev), or one
// protected by a record that cannot be used, is unprotected for any caller
// that opens nodedev:///system?statedir=/elsewhere: it sees no record.
// ---------------------------------------------------------------------------

/// Was a bug, fixed: uri.rs:open_with_host_policy accepts any statedir for the live /sys.
#[test]
fn statedir_on_the_live_host_is_refused() {
    let dir = scratch("statedir");
    let uri = format!("nodedev:///system?statedir={}", dir.join("state").display());
    match nodedev::uri::open(Some(&uri), true) {
        Err(e) => assert!(e.to_string().contains("statedir="), "{e}"),
        Ok((host, _)) => assert_eq!(
            host.state().location(),
            "/run/nodedev",
            "{uri}: the live host's records (owners, protected devices) are not consulted"
        ),
    }
    fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------
// Holder scan (src/sysfs/holders.rs:scan) on a fake /proc.
// ---------------------------------------------------------------------------

/// pid -> (comm, fd dir: [(fd, link, fdinfo)], threads: [(tid, [(fd, link)])])
fn fake_proc(tag: &str, pid: &str, fds: &[(&str, &str)], thread_fds: &[(&str, &[(&str, &str)])]) -> PathBuf {
    let root = scratch(tag);
    let p = root.join(pid);
    fs::create_dir_all(p.join("fd")).unwrap();
    fs::create_dir_all(p.join("fdinfo")).unwrap();
    fs::write(p.join("comm"), "holder\n").unwrap();
    for (fd, link) in fds {
        symlink(link, p.join("fd").join(fd)).unwrap();
        fs::write(p.join("fdinfo").join(fd), "pos: 0\n").unwrap();
    }
    for (tid, fds) in thread_fds {
        let t = p.join("task").join(tid);
        fs::create_dir_all(t.join("fd")).unwrap();
        fs::create_dir_all(t.join("fdinfo")).unwrap();
        for (fd, link) in *fds {
            symlink(link, t.join("fd").join(fd)).unwrap();
            fs::write(t.join("fdinfo").join(fd), "pos: 0\n").unwrap();
        }
    }
    root
}

const DEV: VfioDevice<'static> = VfioDevice { address: "0000:04:10.0", group: Some(12), cdev: None };

/// Held (was a finding): in no-IOMMU mode (vfio enable_unsafe_noiommu_mode,
/// common with DPDK) the group's node is /dev/vfio/noiommu-N; its holder is
/// seen (by device number on the real kernel, by the link here).
#[test]
fn a_holder_of_a_noiommu_group_is_seen() {
    let root = fake_proc("noiommu", "4242", &[("3", "/dev/vfio/noiommu-12")], &[]);
    let scan = holders::scan(&root, &DEV).unwrap();
    assert_eq!(scan.holders.len(), 1, "a process holding /dev/vfio/noiommu-12 is not seen: {scan:?}");
    fs::remove_dir_all(&root).unwrap();
}

/// Held (was a finding): a process whose main thread has exited (pthread_exit
/// in main, the other threads running) shows an EMPTY /proc/PID/fd; its fds
/// are only in /proc/PID/task/TID/fd, which the scan then reads.
#[test]
fn a_holder_whose_main_thread_exited_is_seen() {
    let root = fake_proc("zombie-leader", "4242", &[], &[("4242", &[]), ("4243", &[("3", "/dev/vfio/12")])]);
    let scan = holders::scan(&root, &DEV).unwrap();
    assert_eq!(scan.holders.len(), 1, "a holder whose thread-group leader exited is not seen: {scan:?}");
    assert_eq!(scan.holders[0].pid, 4242);
    fs::remove_dir_all(&root).unwrap();
}

/// Held (was a finding): a process keeps its group fd after the node was
/// unlinked (udev recreated /dev/vfio/12, or a private /dev was torn down):
/// the link reads "/dev/vfio/12 (deleted)". The scan compares the fd's
/// st_rdev with the group's (which also catches a node made at any other
/// path: holders.rs unit test), and the link text without " (deleted)"
/// where the numbers cannot be read, as in this fake /proc.
#[test]
fn a_holder_of_an_unlinked_group_node_is_seen() {
    let root = fake_proc("deleted", "4242", &[("3", "/dev/vfio/12 (deleted)")], &[]);
    let scan = holders::scan(&root, &DEV).unwrap();
    assert_eq!(scan.holders.len(), 1, "{scan:?}");
    fs::remove_dir_all(&root).unwrap();
}

// ---------------------------------------------------------------------------
// The bounded writer (src/sysfs/bounded.rs) through HostSysfs on a test tree.
// ---------------------------------------------------------------------------

fn tree_with_file(tag: &str) -> (PathBuf, HostSysfs) {
    let dir = scratch(tag);
    fs::create_dir_all(dir.join("sys/bus/pci/devices")).unwrap();
    fs::write(dir.join("sys/attr"), "").unwrap();
    let sysfs = HostSysfs::new(&dir);
    (dir, sysfs)
}

/// Zombie children of this process. Only meaningful in a process that
/// spawns nothing else meanwhile (the subreaper test's own child process)
/// or right after its other children were waited for.
fn own_zombies() -> Vec<u32> {
    let mut out = Vec::new();
    for task in fs::read_dir("/proc/self/task").unwrap().flatten() {
        let kids = fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for pid in kids.split_whitespace() {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit(')').next().and_then(|s| s.split_whitespace().next()).unwrap_or("");
            if state == "Z" {
                out.push(pid.parse().unwrap());
            }
        }
    }
    out
}

/// Held (was a finding): the bounded writer double-forks, and the orphaned
/// grandchild is reparented to the nearest child subreaper, not to init. A
/// daemon that is a subreaper, or PID 1 of its container (a Kubernetes
/// device plugin, an entrypoint), becomes the parent of every writer: the
/// writer sends its pid, and the caller reaps it. Run in a child process so
/// that the subreaper bit stays out of the other tests of this binary.
#[test]
fn the_bounded_writer_leaves_no_zombie_under_a_subreaper() {
    if std::env::var("NODEDEV_ATTACK_SUBREAPER").is_ok() {
        // SAFETY: prctl on this process only.
        assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }, 0);
        let (dir, sysfs) = tree_with_file("subreaper");
        for _ in 0..5 {
            sysfs.write_bounded("attr", "1", Duration::from_secs(5)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(300));
        let z = own_zombies();
        fs::remove_dir_all(&dir).unwrap();
        assert!(z.is_empty(), "bounded writes left zombie processes {z:?} behind a subreaper caller");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "the_bounded_writer_leaves_no_zombie_under_a_subreaper", "--nocapture", "--test-threads=1"])
        .env("NODEDEV_ATTACK_SUBREAPER", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// Held (was a finding: at `timeout=0.01`, 39 of 500 instant writes timed
/// out on this 2-core machine with 8 spinning threads): the URI accepts no
/// timeout under 1 s, and at 1 s writes the kernel finishes at once do not
/// time out under load. No fd and no zombie is left behind either.
#[test]
fn fast_writes_do_not_time_out_at_the_smallest_accepted_timeout() {
    // Counts this process's fds and children: alone in a process of its own,
    // so that the other tests' threads do not move the counts.
    if std::env::var_os("NODEDEV_ISOLATED").is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "fast_writes_do_not_time_out_at_the_smallest_accepted_timeout", "--test-threads=1"])
            .env("NODEDEV_ISOLATED", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("1 passed"), "{text}{}", String::from_utf8_lossy(&out.stderr));
        return;
    }
    let smallest = "test:///default?timeout=1";
    assert_eq!(nodedev::uri::parse(smallest).unwrap().1.timeout, Some(Duration::from_secs(1)));
    assert!(nodedev::uri::parse("test:///default?timeout=0.99").is_err());
    let (dir, sysfs) = tree_with_file("leaks");
    let fds = || fs::read_dir("/proc/self/fd").unwrap().count();
    let before = fds();
    // Load both cores while writing.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spinners: Vec<_> = (0..8)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let mut timeouts = 0;
    for i in 0..500 {
        if let Err(e) = sysfs.write_bounded("attr", &i.to_string(), Duration::from_secs(1)) {
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
            timeouts += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    spinners.into_iter().for_each(|t| t.join().unwrap());
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(fds(), before, "fds leaked");
    assert!(own_zombies().is_empty());
    assert_eq!(timeouts, 0, "{timeouts} of 500 instant writes timed out at timeout=1");
    fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------
// Simulated kernel attacks.
// ---------------------------------------------------------------------------

use nodedev::persist::{Definition, Definitions};
use nodedev::state::{StateStore, Step};
use nodedev::sysfs::sim::SimKernel;
use nodedev::{Error, Host, HostOptions, PciAddress, Stub};
use std::sync::Arc;

fn a(s: &str) -> PciAddress {
    PciAddress::parse(s).unwrap()
}

/// Was a bug, fixed: `nodedev apply` (host/persistent.rs:apply_one) of a device
/// that no driver has at boot (the host driver's module not loaded yet, the
/// udev rule not installed or not run): apply_one writes a record at step
/// "detaching" and then calls detach_locked, whose settled_record refuses
/// that very record as "left half done". The device is not detached, and
/// the stray half-done record now blocks every operation on it until
/// someone runs recover.
#[test]
fn apply_detaches_a_device_that_has_no_driver_at_boot() {
    const NIC: &str = "0000:03:01.0";
    let dir = scratch("apply-nodriver");
    let defs = Definitions::new(dir.join("conf"));
    defs.put(&Definition {
        address: NIC.into(),
        vendor: 0x8086,
        device: 0x100e,
        stub: "vfio-pci".into(),
        original_driver: Some("e1000".into()),
    })
    .unwrap();
    // Boot: the NIC enumerated without a driver, e1000 not loaded yet.
    let mut spec =
        Host::new(Arc::new(SimKernel::builtin()), StateStore::memory(), HostOptions::default()).describe().unwrap();
    for d in spec.devices.iter_mut().filter(|d| d.driver.as_deref() == Some("e1000")) {
        d.driver = None;
    }
    for d in spec.drivers.iter_mut().filter(|d| d.name == "e1000") {
        d.loaded = false;
    }
    let sim = Arc::new(SimKernel::from_spec(spec).unwrap());
    let state = StateStore::memory();
    let h = Host::new(
        sim.clone(),
        state.clone(),
        HostOptions { definitions: Some(Definitions::new(dir.join("conf"))), ..HostOptions::default() },
    );
    let applied = h.apply().unwrap();
    let rec = state.get(NIC);
    fs::remove_dir_all(&dir).unwrap();
    assert!(applied[0].done, "apply did not detach a driverless defined device: {applied:?}");
    assert_eq!(sim.driver_of(NIC).as_deref(), Some("vfio-pci"));
    let rec = rec.unwrap().unwrap();
    assert_eq!((rec.step, rec.original_driver.as_deref()), (Step::Detached, Some("e1000")));
}

/// A PF with one VF whose network interface carries the host's address.
const SRIOV_HOST: &str = r#"{
  "drivers": [{"name": "igb", "ids": ["8086:10c9"]}, {"name": "igbvf", "ids": ["8086:10ca"]},
              {"name": "vfio-pci", "module": "vfio_pci"}],
  "devices": [
    {"address": "0000:04:00.0", "vendor": "0x8086", "device": "0x10c9", "class": "0x020000",
     "driver": "igb", "iommu_group": 7, "sriov_totalvfs": 7},
    {"address": "0000:04:10.0", "vendor": "0x8086", "device": "0x10ca", "class": "0x020000",
     "driver": "igbvf", "iommu_group": 8, "physfn": "0000:04:00.0",
     "net": [{"name": "eth5", "up": true, "addresses": ["192.0.2.77/24"]}]}
  ]
}"#;

/// Was a bug, fixed: set_vf_count (host/sriov.rs:remove_vfs_locked) removes VFs
/// the host uses (an interface up with the host's address) without FORCE:
/// only records and VFIO holders are checked, never `check_safe`. A detach
/// of that same VF is refused. (Changing the VF count to another number
/// also goes through removal.)
#[test]
fn removing_vfs_checks_what_the_host_uses_like_a_detach() {
    let sim = Arc::new(SimKernel::from_json(SRIOV_HOST).unwrap());
    let h = Host::new(sim.clone(), StateStore::memory(), HostOptions::default());
    let vf = a("0000:04:10.0");
    assert!(matches!(h.detach(&vf, Stub::Vfio), Err(Error::OperationInvalid(m)) if m.contains("192.0.2.77")));
    let r = h.set_vf_count(&a("0000:04:00.0"), 0, None, false);
    let still = sim.driver_of("0000:04:10.0");
    assert!(
        matches!(&r, Err(Error::OperationInvalid(m)) if m.contains("192.0.2.77")),
        "removing the VFs took eth5 (192.0.2.77/24) from the host without --force: {r:?}, VF now {still:?}"
    );
}

/// Was a bug, fixed: the host policy's deny list does not protect a PF's VFs from
/// being removed (set_vf_count checks only lockdown on the PF, and
/// `provision` on VFs it creates). `deny 0000:04:00.0` (or `deny class
/// 0x02`) is meant to keep the host's NIC as it is.
#[test]
fn a_denied_pf_keeps_its_vfs() {
    let sim = Arc::new(SimKernel::from_json(SRIOV_HOST).unwrap());
    let policy = nodedev::Policy::parse("deny 0000:04:00.0\n", "host.conf").unwrap();
    let h = Host::new(sim.clone(), StateStore::memory(), HostOptions { policy, ..HostOptions::default() });
    let r = h.set_vf_count(&a("0000:04:00.0"), 0, None, true);
    assert!(matches!(&r, Err(Error::Denied(_)) | Err(Error::OperationInvalid(_))), "a denied PF lost its VFs: {r:?}");
    assert!(sim.driver_of("0000:04:10.0").is_some());
}

/// Held (was a finding: a blocking flock with no bound, so a process that
/// holds the host lock and does not come back, a CLI stopped with ^Z, hung
/// every caller whatever `timeout=` said). The wait is bounded by the
/// connection's `lock_wait` (from a URI: 3 x timeout=, at least 30 s), for
/// another process's flock and for another thread's hold alike, and the
/// Timeout names the holder's pid (which the lock file records).
#[test]
fn waiting_for_the_host_lock_is_bounded() {
    use std::os::fd::AsRawFd;
    assert_eq!(
        nodedev::uri::open(Some("test:///default?timeout=20"), true).unwrap().0.options().lock_wait,
        Duration::from_secs(60)
    );
    assert_eq!(
        nodedev::uri::open(Some("test:///default"), true).unwrap().0.options().lock_wait,
        Duration::from_secs(30)
    );
    let dir = scratch("lock-wait");
    let state = StateStore::dir(dir.join("state"));
    let sim = Arc::new(SimKernel::builtin());
    let wait = Duration::from_millis(300);
    let h = Arc::new(Host::new(sim.clone(), state, HostOptions { lock_wait: wait, ..HostOptions::default() }));
    // Another process's lock: a separate open file description of the lock file.
    h.state().lock().map(drop).unwrap();
    let other = fs::OpenOptions::new().write(true).open(dir.join("state/lock")).unwrap();
    // SAFETY: flock on our own descriptor.
    assert_eq!(unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX) }, 0);
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = {
        let h = h.clone();
        std::thread::spawn(move || {
            let r = h.detach(&a("0000:03:01.0"), Stub::Kvm);
            let _ = tx.send(r);
        })
    };
    let got = rx.recv_timeout(Duration::from_secs(3));
    drop(other); // let the worker finish either way
    worker.join().unwrap();
    let e = got.expect("detach still waited for the host lock after 3 s").unwrap_err();
    let pid = format!("pid {}", std::process::id());
    assert!(matches!(e, Error::Timeout(_)) && e.to_string().contains(&pid), "{e}");
    assert_eq!(sim.driver_of("0000:03:01.0").as_deref(), Some("e1000"), "nothing changed");

    // Another thread of this process holding it: bounded the same way.
    let held = h.state().lock().unwrap();
    let h2 = h.clone();
    let start = std::time::Instant::now();
    let e = std::thread::spawn(move || h2.detach(&a("0000:03:01.0"), Stub::Kvm)).join().unwrap().unwrap_err();
    assert!(matches!(e, Error::Timeout(_)) && e.to_string().contains("another thread"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    drop(held);
    h.detach(&a("0000:03:01.0"), Stub::Kvm).unwrap();
    h.reattach(&a("0000:03:01.0"), None).unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

/// Was a bug, fixed: uri.rs:policy_for applies /etc/nodedev/policy.conf only when
/// `Path::exists` says so, which is false for a dangling symlink and for any
/// stat error (EACCES, EIO, ELOOP): the host policy then silently does not
/// apply (fail-open). An admin who links policy.conf to a config volume
/// mounted later in boot gets no lockdown for `nodedev apply` at boot.
/// Only ENOENT of a path that is not a symlink should mean "no policy";
/// anything else should refuse the connection.
#[test]
fn a_host_policy_that_cannot_be_read_does_not_fail_open() {
    let dir = scratch("policy-link");
    symlink(dir.join("not-mounted-yet/policy.conf"), dir.join("policy.conf")).unwrap();
    let uri = "nodedev:///system".to_string();
    let r = nodedev::uri::open_with_host_policy(Some(&uri), true, dir.join("policy.conf").to_str().unwrap());
    let opened_without_policy =
        r.as_ref().is_ok_and(|(h, _)| !h.options().policy.is_locked_down() && !h.options().policy.has_device_rules());
    fs::remove_dir_all(&dir).unwrap();
    assert!(!opened_without_policy, "a dangling /etc/nodedev/policy.conf link is taken for 'no host policy'");
}

/// A slot as state/mod.rs encodes it (FNV-1a over the padded JSON and the
/// sequence number), so a test can craft one that passes the checksum.
fn crafted_slot(record: &nodedev::state::Record, seq: u64) -> Vec<u8> {
    let mut body = serde_json::to_vec(record).unwrap();
    body.resize(2048 - 35, b' ');
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body.iter().chain(&seq.to_le_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    body.extend_from_slice(format!("\n{seq:016x} {h:016x}\n").as_bytes());
    body
}

/// Held (was a finding: a copy with sequence u64::MAX, which passes the
/// checksum, made `seq + 1` wrap and every later write was lost). A copy
/// with an implausibly high sequence number counts as damaged: the other
/// copy is used, and a file with no other copy is an unusable record (the
/// device stays protected).
#[test]
fn a_crafted_top_sequence_number_does_not_swallow_later_writes() {
    use nodedev::state::Record;
    const A: &str = "0000:03:00.0";
    let dir = scratch("seq");
    let store = StateStore::dir(dir.join("state"));
    let mut rec = Record::new(A, Some("e1000e".into()), "vfio-pci");
    rec.step = Step::Detached;
    store.put(&rec).unwrap(); // creates the directory and a genuine file
    let mut bytes = crafted_slot(&rec, u64::MAX);
    bytes.extend(crafted_slot(&rec, 0));
    fs::write(dir.join(format!("state/{A}.json")), &bytes).unwrap();
    assert_eq!(store.get(A).unwrap().unwrap().step, Step::Detached);
    rec.step = Step::Reattaching;
    rec.owner = Some("vm1".into());
    let put = store.put(&rec);
    let now = store.get(A);
    fs::remove_dir_all(&dir).unwrap();
    put.unwrap();
    let now = now.unwrap().unwrap();
    assert_eq!(
        (now.step, now.owner.as_deref()),
        (Step::Reattaching, Some("vm1")),
        "put returned Ok but the record did not change"
    );

    // Both copies at the top: unusable, refused, never overwritten.
    let dir = scratch("seq-both");
    let store = StateStore::dir(dir.join("state"));
    store.put(&rec).unwrap();
    let mut bytes = crafted_slot(&rec, u64::MAX);
    bytes.extend(crafted_slot(&rec, u64::MAX - 1));
    fs::write(dir.join(format!("state/{A}.json")), &bytes).unwrap();
    let got = store.get(A);
    let put = store.put(&rec);
    let after = fs::read(dir.join(format!("state/{A}.json"))).unwrap();
    fs::remove_dir_all(&dir).unwrap();
    assert!(got.is_err(), "{got:?}");
    assert!(put.is_err(), "{put:?}");
    assert_eq!(after, bytes);
}

/// The invariant after any call, whatever failed: no device on a stub it was
/// not on before without a record saying so (step detached or mid-operation
/// for recover), and an error that says "nothing changed" changed nothing.
fn check_invariant(
    what: &str,
    sim: &SimKernel,
    h: &Host,
    before: &[(PciAddress, Option<String>)],
    result: &Result<(), Error>,
) {
    let records = h.state().list().unwrap();
    let after: Vec<(PciAddress, Option<String>)> =
        before.iter().map(|(a, _)| (*a, sim.driver_of(&a.to_string()))).collect();
    for ((a, was), (_, now)) in before.iter().zip(&after) {
        let on_stub = now.as_deref().is_some_and(nodedev::stub::is_stub_driver);
        let was_stub = was.as_deref().is_some_and(nodedev::stub::is_stub_driver);
        if on_stub && !was_stub {
            assert!(
                records.iter().any(|r| r.address == a.to_string()),
                "{what}: {a} left on {now:?} without a record ({result:?})"
            );
        }
        let exists = nodedev::sysfs::Sysfs::exists(sim, &format!("bus/pci/devices/{a}"));
        if now.is_none() && was.is_some() && exists {
            assert!(
                records.iter().any(|r| r.address == a.to_string()),
                "{what}: {a} left on no driver without a record ({result:?})"
            );
        }
    }
    if let Err(e) = result {
        let m = e.to_string();
        // A message that reports a partial undo may quote per-device "nothing changed" clauses.
        if m.contains("nothing changed") && !m.contains("not everything could be undone") && !m.starts_with("released ")
        {
            assert_eq!(before, &after[..], "{what}: '{e}' but drivers changed");
        }
    }
}

/// Held: every record
/// write failing in turn (a full disk, then EROFS), at every step of group
/// detach, managed prepare, release, reattach and SR-IOV provisioning.
#[test]
fn record_write_failures_at_every_step_leave_no_device_unrecorded() {
    const GPU: &str = "0000:01:00.0";
    const B1: &str = "0000:03:01.0";
    const B2: &str = "0000:03:02.0";
    const PF: &str = "0000:04:00.0";
    let watched: Vec<PciAddress> = [GPU, "0000:01:00.1", B1, B2, PF, "0000:04:10.0", "0000:04:10.2", "0000:04:10.4"]
        .iter()
        .map(|s| a(s))
        .collect();
    type Op = fn(&Host) -> Result<(), Error>;
    let ops: Vec<(&str, Op, Op)> = vec![
        (
            "group detach",
            |_| Ok(()),
            |h| h.detach_with(&a(GPU), Stub::Vfio, nodedev::DetachOptions { group: true, force: false }),
        ),
        (
            "managed prepare",
            |_| Ok(()),
            |h| h.prepare("vm1", &[a(B1), a(B2)], Stub::Vfio, nodedev::PrepareOptions { managed: true, force: false }),
        ),
        (
            "release",
            |h| h.prepare("vm1", &[a(B1), a(B2)], Stub::Vfio, nodedev::PrepareOptions { managed: true, force: false }),
            |h| h.release("vm1", None).map(drop),
        ),
        ("reattach", |h| h.detach(&a(B1), Stub::Kvm), |h| h.reattach(&a(B1), None)),
        ("sriov", |_| Ok(()), |h| h.set_vf_count(&a(PF), 3, Some(Stub::Vfio), true).map(drop)),
    ];
    for (name, setup, op) in ops {
        for (errno, times) in [(libc::ENOSPC, 1), (libc::ENOSPC, 100), (libc::EROFS, 100)] {
            for k in 0..8 {
                let sim = Arc::new(SimKernel::builtin());
                let h = Host::new(sim.clone(), StateStore::memory(), HostOptions::default());
                setup(&h).unwrap();
                let before: Vec<(PciAddress, Option<String>)> =
                    watched.iter().map(|a| (*a, sim.driver_of(&a.to_string()))).collect();
                h.state().fail_writes(errno, k, times);
                let r = op(&h);
                h.state().fail_writes(0, 0, 0);
                check_invariant(&format!("{name}, errno {errno} x{times} after {k} writes"), &sim, &h, &before, &r);
            }
        }
    }
}

/// Held: simulated-kernel write failures and misprobes at each step.
#[test]
fn kernel_write_failures_leave_no_device_unrecorded() {
    const B1: &str = "0000:03:01.0";
    const B2: &str = "0000:03:02.0";
    let watched = [a(B1), a(B2)];
    let paths = [
        format!("bus/pci/devices/{B1}/driver_override"),
        format!("bus/pci/devices/{B2}/driver_override"),
        "bus/pci/drivers/e1000/unbind".to_string(),
        "bus/pci/drivers/vfio-pci/unbind".to_string(),
        "bus/pci/drivers_probe".to_string(),
        "bus/pci/drivers/e1000/bind".to_string(),
    ];
    for path in &paths {
        for phase in 0..2 {
            let sim = Arc::new(SimKernel::builtin());
            let h = Host::new(sim.clone(), StateStore::memory(), HostOptions::default());
            if phase == 1 {
                h.prepare("vm1", &[a(B1), a(B2)], Stub::Vfio, nodedev::PrepareOptions { managed: true, force: false })
                    .unwrap();
            }
            let before: Vec<(PciAddress, Option<String>)> =
                watched.iter().map(|a| (*a, sim.driver_of(&a.to_string()))).collect();
            sim.fail_writes(path, None, libc::EIO, 1);
            let r = if phase == 0 {
                h.prepare("vm1", &[a(B1), a(B2)], Stub::Vfio, nodedev::PrepareOptions { managed: true, force: false })
            } else {
                h.release("vm1", None).map(drop)
            };
            sim.clear_faults();
            check_invariant(&format!("phase {phase}, {path} fails"), &sim, &h, &before, &r);
        }
    }
    for (addr, drv) in [(B1, Some("e1000")), (B2, None), (B1, None)] {
        let sim = Arc::new(SimKernel::builtin());
        let h = Host::new(sim.clone(), StateStore::memory(), HostOptions::default());
        let before: Vec<(PciAddress, Option<String>)> =
            watched.iter().map(|a| (*a, sim.driver_of(&a.to_string()))).collect();
        sim.misprobe(addr, drv, 1);
        let r = h.prepare("vm1", &[a(B1), a(B2)], Stub::Vfio, nodedev::PrepareOptions { managed: true, force: false });
        sim.clear_faults();
        check_invariant(&format!("misprobe {addr} -> {drv:?}"), &sim, &h, &before, &r);
    }
}

/// Was a bug, fixed: host/sriov.rs:remove_vfs_locked removes the VFs (writes 0 to
/// sriov_numvfs), then drops each gone VF's record with `?`: when the state
/// filesystem is read-only (EROFS after an I/O error) the call returns just
/// "cannot remove state record of VF", without saying that every VF of the
/// PF is gone and the asked-for VFs were never created.
#[test]
fn a_record_removal_failure_after_removing_vfs_says_the_vfs_are_gone() {
    const PF: &str = "0000:04:00.0";
    let sim = Arc::new(SimKernel::builtin());
    let h = Host::new(sim.clone(), StateStore::memory(), HostOptions::default());
    h.detach(&a("0000:04:10.0"), Stub::Vfio).unwrap();
    h.state().fail_writes(libc::EROFS, 0, 100);
    let r = h.set_vf_count(&a(PF), 2, None, true);
    h.state().fail_writes(0, 0, 0);
    let left = h.virtual_functions(&a(PF)).unwrap().len();
    let msg = format!("{r:?}");
    assert_eq!(left, 0, "the VFs were not removed: {msg}");
    assert!(
        msg.contains(PF) && (msg.contains("removed") || msg.contains("has none") || msg.contains("no VFs")),
        "the error hides that {PF} lost all its VFs: {msg}"
    );
}

/// Held: the C boundary refuses NULLs, odd driver names and unknown flags
/// with -1 and changes nothing (the simulated host of a fresh file URI).
#[test]
fn c_boundary_bad_input_is_refused_and_changes_nothing() {
    use nodedev::capi::connect::{virConnectClose, virConnectOpen};
    use nodedev::capi::nodedev::{
        virNodeDeviceDetachFlags, virNodeDeviceFree, virNodeDeviceLookupByName, virNodeDeviceReAttachFlags,
    };
    use nodedev::capi::recover::virNodeDeviceRecover;
    use nodedev::capi::sriov::virNodeDeviceSetVFs;
    use std::ffi::CString;
    let dir = scratch("capi");
    let spec = dir.join("host.json");
    let desc =
        Host::new(Arc::new(SimKernel::builtin()), StateStore::memory(), HostOptions::default()).describe().unwrap();
    fs::write(&spec, serde_json::to_string(&desc).unwrap()).unwrap();
    let uri = CString::new(format!("test://{}?statedir={}", spec.display(), dir.join("state").display())).unwrap();
    unsafe {
        let conn = virConnectOpen(uri.as_ptr());
        assert!(!conn.is_null());
        let name = CString::new("pci_0000_01_00_0").unwrap();
        let dev = virNodeDeviceLookupByName(conn, name.as_ptr());
        assert!(!dev.is_null());
        assert_eq!(virNodeDeviceDetachFlags(dev, c"vfio".as_ptr(), 0), 0);
        for bad in [c"../x", c"vfio\n", c"", c"nouveau/../../unbind", c"vfio-pci", c"pci-stub", c"dccp"] {
            assert_eq!(virNodeDeviceReAttachFlags(dev, bad.as_ptr(), 0), -1, "{bad:?}");
        }
        assert_eq!(virNodeDeviceReAttachFlags(dev, std::ptr::null(), 0x8000_0000), -1);
        assert_eq!(virNodeDeviceReAttachFlags(std::ptr::null_mut(), std::ptr::null(), 0), -1);
        // A NUL inside the buffer: C reads "vfio".
        let nul_inside: &[u8] = b"vfio\0x\0";
        assert_eq!(virNodeDeviceDetachFlags(dev, nul_inside.as_ptr().cast(), 0), 0, "already on vfio-pci: idempotent");
        assert_eq!(virNodeDeviceRecover(std::ptr::null_mut(), std::ptr::null_mut(), 0), -1);
        assert_eq!(virNodeDeviceRecover(conn, std::ptr::null_mut(), 1), -1);
        assert_eq!(virNodeDeviceSetVFs(std::ptr::null_mut(), 1, std::ptr::null(), 0), -1);
        assert_eq!(virNodeDeviceSetVFs(dev, u32::MAX, std::ptr::null(), 0), -1);
        assert_eq!(virNodeDeviceSetVFs(dev, 1, c"../vfio".as_ptr(), 0), -1);
        // Still detached, record intact; then back.
        assert_eq!(virNodeDeviceReAttachFlags(dev, std::ptr::null(), 0), 0);
        virNodeDeviceFree(dev);
        virConnectClose(conn);
    }
    fs::remove_dir_all(&dir).unwrap();
}
