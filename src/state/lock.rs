//! Locks over the state store: which caller (a thread, a process) may
//! change which records, and the devices they describe, at a time.
//!
//! Independent operations must not wait for each other (a daemon starts many
//! guests at once), while two operations on one IOMMU group must never both
//! act on what the other is changing. Three kinds of lock, always taken in
//! this order:
//!
//! 1. The store lock, `DIR/lock`. Every operation on devices holds it
//!    *shared* for its whole duration. What changes the host as a whole
//!    holds it *exclusive*, and then needs no other lock: recovery (it
//!    settles half-done records of any device and removes dead writers'
//!    temporary files), `recover --clear`, SR-IOV provisioning (VFs, and
//!    with them IOMMU groups, appear and vanish), and binding through
//!    `new_id` on kernels without driver_override (new_id binds every
//!    unbound device with those ids, in any group). nodedev before these
//!    finer locks took this file exclusive for every operation, so old and
//!    new callers still exclude each other.
//! 2. Device locks, exclusive, one file per `LockKey` in `DIR/locks/`:
//!    `group-N` for IOMMU group N, `device-ADDRESS` for a device without a
//!    group (no IOMMU, or not in one yet). An operation holding the store
//!    lock shared takes the key of every device it touches. A group lock
//!    covers every function of the group: each rule nodedev keeps across
//!    devices is a rule within a group (one owner per group, VFIO
//!    viability, the group detach), so it reads only records and drivers
//!    of devices whose group it holds. Reads of other records (listing
//!    assignments, release's look-up of an owner's devices) take no lock:
//!    a record file is replaced by rename or rewritten one slot at a time,
//!    so a reader always gets an intact copy, and what such a read finds is
//!    checked again under the device's own lock before anything is done.
//!    The caller (`Host::lock_devices`) checks, once the keys are held,
//!    that each device's group is still the one it locked, and starts over
//!    when not (a device removed and added again, a VF re-created).
//! 3. The host step, `DIR/locks/host`, exclusive and short: what is shared
//!    between groups but lasts a moment (loading a module). It is a leaf:
//!    taken with or without the others, nothing is waited for while it is
//!    held.
//!
//! No deadlock: every caller takes store, then keys in ascending `LockKey`
//! order (groups by number, then devices by address), then the host step;
//! an exclusive store holder takes no key; the host step waits for nothing.
//! Every wait is bounded by the store's `lock_wait`, one deadline for the
//! whole acquisition, and ends in `Error::Timeout` naming the lock and the
//! pids holding it (from /proc/locks; else the pid the last exclusive holder
//! wrote into the file): a holder that never lets go (a CLI stopped with
//! ^Z) must not hang every caller.
//!
//! Across processes the locks are flock(2)s, released by the kernel when a
//! holder dies, so a crashed process never blocks the next one. A lock
//! file is locked only while the path still names it (one replaced while
//! waited on is opened again); one removed while *held* is not seen by the
//! next caller, so nothing may delete `DIR/locks/` while nodedev runs.
//! Within this process a thread waiting for the store exclusively holds
//! back new key holders (flock gives no such preference across processes). Within a
//! process a table of what its threads hold comes first (flock would
//! order them too, but the table lets a timeout say "another thread of this
//! process", and tells writers which records their lock covers).

use super::{check_trusted, lock_ignoring_poison, sys_err, Backend, StateStore};
use crate::address::PciAddress;
use crate::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What one device lock covers. Ordered as locks are taken: groups by
/// number, then devices without a group by address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockKey {
    /// IOMMU group N: every function in it.
    Group(u32),
    /// A device that is in no IOMMU group.
    Device(PciAddress),
}

impl LockKey {
    fn file_name(&self) -> String {
        match self {
            LockKey::Group(n) => format!("group-{n}"),
            LockKey::Device(a) => format!("device-{a}"),
        }
    }

    /// For messages: "IOMMU group 5", "device 0000:03:00.0 (in no IOMMU group)".
    pub fn describe(&self) -> String {
        match self {
            LockKey::Group(n) => format!("IOMMU group {n}"),
            LockKey::Device(a) => format!("device {a} (in no IOMMU group)"),
        }
    }
}

/// What this process's threads hold, per store (shared by its clones).
#[derive(Default)]
pub(super) struct Table {
    held: Mutex<Held>,
    changed: Condvar,
}

#[derive(Default)]
struct Held {
    /// Operations holding the store lock shared.
    shared: usize,
    exclusive: bool,
    /// Threads waiting for the store exclusively: new key holders wait
    /// behind them, or overlapping ones would starve recovery.
    exclusive_waiting: usize,
    keys: BTreeSet<LockKey>,
    /// Records the held keys cover (address -> holders), for `covers`.
    covered: BTreeMap<String, usize>,
    step: bool,
}

enum Want {
    Exclusive,
    Keys(Vec<LockKey>, Vec<String>),
    Step,
}

/// Held for the duration of one operation (or one host step); dropping it
/// lets go of every lock it holds.
pub struct StateLock {
    table: Arc<Table>,
    want: Want,
    /// The flocked files, in the order taken: closing one releases its flock.
    files: Vec<fs::File>,
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Files first: a thread let in by the table then finds them free.
        while self.files.pop().is_some() {}
        let mut h = lock_ignoring_poison(&self.table.held);
        match &self.want {
            Want::Exclusive => h.exclusive = false,
            Want::Step => h.step = false,
            Want::Keys(keys, covers) => {
                h.shared -= 1;
                for k in keys {
                    h.keys.remove(k);
                }
                for a in covers {
                    if let Some(n) = h.covered.get_mut(a) {
                        *n -= 1;
                        if *n == 0 {
                            h.covered.remove(a);
                        }
                    }
                }
            }
        }
        drop(h);
        self.table.changed.notify_all();
    }
}

impl StateStore {
    /// The whole store, exclusively: no other operation (thread or process)
    /// runs meanwhile. For what changes the host as a whole (see the module
    /// comment); operations on devices take `lock_keys`. Waits at most
    /// `lock_wait`, then `Error::Timeout` naming the holders.
    pub fn lock(&self) -> Result<StateLock> {
        self.acquire(Want::Exclusive)
    }

    /// The store shared and `keys` exclusively (taken in ascending order
    /// whatever order they come in), for an operation on the devices whose
    /// records are `covers` (their addresses). Operations on other keys run
    /// meanwhile. Waits at most `lock_wait` in all, then `Error::Timeout`
    /// naming the lock and its holders.
    pub fn lock_keys(&self, keys: &[LockKey], covers: &[String]) -> Result<StateLock> {
        let keys: Vec<LockKey> = keys.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
        self.acquire(Want::Keys(keys, covers.to_vec()))
    }

    /// The short host-wide step (a leaf lock, see the module comment): wait
    /// for nothing else while holding it.
    pub fn host_step(&self) -> Result<StateLock> {
        self.acquire(Want::Step)
    }

    /// Whether this process holds a lock that covers the record of
    /// `address` (the store exclusively, or a key whose devices include
    /// it): writers do, so a temporary file of that record found then was
    /// left by a process that died.
    pub(super) fn covers(&self, address: &str) -> bool {
        let h = lock_ignoring_poison(&self.table.held);
        h.exclusive || h.covered.contains_key(address)
    }

    /// Whether a thread of this process holds the whole store.
    pub(super) fn exclusive_here(&self) -> bool {
        lock_ignoring_poison(&self.table.held).exclusive
    }

    fn acquire(&self, want: Want) -> Result<StateLock> {
        let deadline = Instant::now() + self.lock_wait;
        self.enter_table(&want, deadline)?;
        let mut guard = StateLock { table: self.table.clone(), want, files: Vec::new() };
        let Backend::Dir(dir) = &self.backend else { return Ok(guard) };
        match &guard.want {
            Want::Exclusive => {
                self.ensure_dir(dir)?;
                let f = self.flock(&dir.join("lock"), libc::LOCK_EX, "the host lock", deadline)?;
                guard.files.push(f);
            }
            Want::Keys(keys, _) => {
                self.ensure_dir(dir)?;
                let f = self.flock(&dir.join("lock"), libc::LOCK_SH, "the host lock", deadline)?;
                guard.files.push(f);
                let locks = ensure_locks_dir(dir)?;
                for k in keys {
                    let what = format!("the lock of {}", k.describe());
                    let f = self.flock(&locks.join(k.file_name()), libc::LOCK_EX, &what, deadline)?;
                    guard.files.push(f);
                }
            }
            Want::Step => {
                self.ensure_dir(dir)?;
                let locks = ensure_locks_dir(dir)?;
                let f = self.flock(&locks.join("host"), libc::LOCK_EX, "the host step lock", deadline)?;
                guard.files.push(f);
            }
        }
        Ok(guard)
    }

    /// Register `want` in this process's table once no other thread holds
    /// what it conflicts with, waiting until `deadline`.
    fn enter_table(&self, want: &Want, deadline: Instant) -> Result<()> {
        let mut h = lock_ignoring_poison(&self.table.held);
        let exclusive = matches!(want, Want::Exclusive);
        if exclusive {
            h.exclusive_waiting += 1;
        }
        loop {
            let conflict = match want {
                Want::Exclusive if h.exclusive || h.shared > 0 => Some("the host lock".to_string()),
                Want::Keys(..) if h.exclusive || h.exclusive_waiting > 0 => Some("the host lock".to_string()),
                Want::Keys(keys, _) => {
                    keys.iter().find(|k| h.keys.contains(k)).map(|k| format!("the lock of {}", k.describe()))
                }
                Want::Step if h.step => Some("the host step lock".to_string()),
                _ => None,
            };
            let Some(what) = conflict else { break };
            let now = Instant::now();
            if now >= deadline {
                if exclusive {
                    h.exclusive_waiting -= 1;
                    // Key waiters held back by this one may go now.
                    self.table.changed.notify_all();
                }
                return Err(Error::Timeout(format!(
                    "{what} of {} is held by another thread of this process (pid {}) for more than {:.1} s; retry once its operation has finished",
                    self.location(),
                    std::process::id(),
                    self.lock_wait.as_secs_f64()
                )));
            }
            h = self.table.changed.wait_timeout(h, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
        match want {
            Want::Exclusive => {
                h.exclusive_waiting -= 1;
                h.exclusive = true;
            }
            Want::Step => h.step = true,
            Want::Keys(keys, covers) => {
                h.shared += 1;
                h.keys.extend(keys.iter().cloned());
                for a in covers {
                    *h.covered.entry(a.clone()).or_default() += 1;
                }
            }
        }
        Ok(())
    }

    /// flock `path` (`LOCK_SH` or `LOCK_EX`), polling until `deadline`. An
    /// exclusive holder writes its pid into the file, for the message of a
    /// caller that gives up waiting.
    fn flock(&self, path: &Path, how: i32, what: &str, deadline: Instant) -> Result<fs::File> {
        let mut pause = Duration::from_millis(1);
        let file = loop {
            let file = open_lock_file(path)?;
            // SAFETY: flock on a descriptor we own; never blocks (LOCK_NB).
            if unsafe { libc::flock(file.as_raw_fd(), how | libc::LOCK_NB) } == 0 {
                // The file may have been removed or replaced while we
                // waited: a lock on it then excludes nobody who opens the
                // path now. Lock what the path names.
                if is_still_at(&file, path) {
                    break file;
                }
                // Retried (within the bound) with the file there now.
            } else {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EWOULDBLOCK) && e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(sys_err("cannot lock", path, e));
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "{what} {} is held by {} for more than {:.1} s (another nodedev call is still running, or is stopped); wait for it to finish, or stop that process, and retry",
                    path.display(),
                    lock_holders(path),
                    self.lock_wait.as_secs_f64()
                )));
            }
            std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
            pause = (pause * 2).min(Duration::from_millis(50));
        };
        if how == libc::LOCK_EX {
            let pid = format!("{}\n", std::process::id());
            let _ = file.set_len(0).and_then(|()| file.write_all_at(pid.as_bytes(), 0));
        }
        Ok(file)
    }
}

/// Open (create) the lock file at `path`: a regular file, never followed
/// through a symlink, and never waited on (O_NONBLOCK: a FIFO planted there
/// would block an open for writing until a reader comes).
fn open_lock_file(path: &Path) -> Result<fs::File> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| sys_err("cannot open lock file", path, e))?;
    let m = file.metadata().map_err(|e| sys_err("cannot read lock file", path, e))?;
    if !m.is_file() {
        return Err(Error::System(format!(
            "lock file {} is not a regular file (something else was put there): remove it and retry",
            path.display()
        )));
    }
    Ok(file)
}

/// Whether `file` is still the file `path` names (not removed or replaced).
fn is_still_at(file: &fs::File, path: &Path) -> bool {
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// `DIR/locks`, created private, refused when another user could plant
/// lock files there (they would only block us, but a symlink is refused).
fn ensure_locks_dir(dir: &Path) -> Result<PathBuf> {
    let locks = dir.join("locks");
    match fs::symlink_metadata(&locks) {
        Ok(m) if m.is_dir() => check_trusted(&locks, &m)?,
        Ok(_) => {
            return Err(Error::System(format!(
                "lock directory {} is not a directory (a symlink or file is refused)",
                locks.display()
            )))
        }
        Err(_) => match fs::DirBuilder::new().mode(0o700).create(&locks) {
            Ok(()) => {}
            // Another caller made it meanwhile: check it as above.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return ensure_locks_dir(dir),
            Err(e) => return Err(sys_err("cannot create lock directory", &locks, e)),
        },
    }
    Ok(locks)
}

/// Who holds the lock file at `path`: "pid N (comm)" for each process with
/// a flock on it (from /proc/locks), else the pid its last exclusive holder
/// wrote, else "another process".
fn lock_holders(path: &Path) -> String {
    let from_kernel = fs::metadata(path).ok().and_then(|m| {
        let text = fs::read_to_string("/proc/locks").ok()?;
        Some(flock_holders(&text, libc::major(m.dev()), libc::minor(m.dev()), m.ino()))
    });
    let pids = match from_kernel {
        Some(p) if !p.is_empty() => p,
        _ => match fs::read_to_string(path).ok().and_then(|s| s.trim().parse::<u32>().ok()) {
            Some(pid) => vec![pid],
            None => return "another process".to_string(),
        },
    };
    let names: Vec<String> = pids
        .iter()
        .map(|pid| match fs::read_to_string(format!("/proc/{pid}/comm")) {
            Ok(comm) => format!("pid {pid} ({})", comm.trim_end()),
            Err(_) => format!("pid {pid} (not visible here)"),
        })
        .collect();
    names.join(", ")
}

/// The pids holding (not waiting for) a flock on the file `major:minor:ino`,
/// from the text of /proc/locks ("1: FLOCK ADVISORY WRITE 1234 00:1a:5678 0
/// EOF"; a waiter's line has "->" after the number). Pids the reader cannot
/// see are 0 or -1 there and left out.
pub fn flock_holders(text: &str, major: u32, minor: u32, ino: u64) -> Vec<u32> {
    let want = format!("{major:02x}:{minor:02x}:{ino}");
    let mut pids: Vec<u32> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // id:, FLOCK, ADVISORY, READ|WRITE, pid, dev:ino, start, end
            if f.len() < 6 || f[1] != "FLOCK" || f[5] != want {
                return None;
            }
            f[4].parse::<u32>().ok().filter(|p| *p > 0)
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> PciAddress {
        PciAddress::parse(s).unwrap()
    }

    #[test]
    fn keys_order_groups_by_number_then_devices_by_address() {
        let mut keys = [
            LockKey::Device(a("0000:03:00.0")),
            LockKey::Group(10),
            LockKey::Group(9),
            LockKey::Device(a("0000:01:00.0")),
        ];
        keys.sort();
        assert_eq!(
            keys,
            [
                LockKey::Group(9),
                LockKey::Group(10),
                LockKey::Device(a("0000:01:00.0")),
                LockKey::Device(a("0000:03:00.0"))
            ]
        );
        assert_eq!(LockKey::Group(9).file_name(), "group-9");
        assert_eq!(LockKey::Device(a("0000:01:00.0")).file_name(), "device-0000:01:00.0");
    }

    #[test]
    fn flock_holders_are_read_from_proc_locks() {
        let text = "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF\n\
                    1: -> FLOCK  ADVISORY  WRITE 1240 00:1a:5678 0 EOF\n\
                    2: POSIX  ADVISORY  WRITE 999 00:1a:5678 0 EOF\n\
                    3: FLOCK  ADVISORY  READ  77 00:1a:5678 0 EOF\n\
                    4: FLOCK  ADVISORY  READ  78 00:1a:5679 0 EOF\n\
                    5: FLOCK  ADVISORY  READ  0 00:1a:5678 0 EOF\n\
                    6: OFDLCK ADVISORY  READ  -1 00:1a:5678 0 EOF\n";
        assert_eq!(flock_holders(text, 0, 0x1a, 5678), [77, 1234]);
        assert!(flock_holders(text, 8, 1, 5678).is_empty());
    }

    #[test]
    fn this_process_holding_a_lock_is_found_in_proc_locks() {
        let dir = std::env::temp_dir().join(format!("nodedev-lock-holders-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = StateStore::dir(&dir);
        let held = store.lock().unwrap();
        let m = fs::metadata(dir.join("lock")).unwrap();
        let text = fs::read_to_string("/proc/locks").unwrap();
        assert_eq!(flock_holders(&text, libc::major(m.dev()), libc::minor(m.dev()), m.ino()), [std::process::id()]);
        assert!(lock_holders(&dir.join("lock")).starts_with(&format!("pid {} (", std::process::id())));
        drop(held);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn threads_on_different_keys_proceed_and_on_one_key_wait_within_the_bound() {
        for store in [
            StateStore::dir(std::env::temp_dir().join(format!("nodedev-lock-keys-{}", std::process::id()))),
            StateStore::memory(),
        ] {
            let store = store.with_lock_wait(Duration::from_millis(200));
            let g5 = store.lock_keys(&[LockKey::Group(5)], &["0000:05:00.0".into()]).unwrap();
            assert!(store.covers("0000:05:00.0") && !store.covers("0000:06:00.0"));
            let other = store.clone();
            // Group 6 is free while 5 is held; 5 again (with 6) waits, then times out.
            std::thread::spawn(move || {
                drop(other.lock_keys(&[LockKey::Group(6)], &[]).unwrap());
                let start = Instant::now();
                let e = other.lock_keys(&[LockKey::Group(6), LockKey::Group(5)], &[]).err().unwrap();
                assert!(start.elapsed() >= Duration::from_millis(200));
                assert!(
                    matches!(&e, Error::Timeout(m) if m.contains("IOMMU group 5") && m.contains("another thread")),
                    "{e:?}"
                );
                // The store lock waits for every key holder.
                assert!(matches!(other.lock(), Err(Error::Timeout(_))));
            })
            .join()
            .unwrap();
            drop(g5);
            assert!(!store.covers("0000:05:00.0"));
            let all = store.lock().unwrap();
            assert!(store.covers("0000:06:00.0") && store.exclusive_here());
            let other = store.clone();
            let e =
                std::thread::spawn(move || other.lock_keys(&[LockKey::Group(6)], &[]).err().unwrap()).join().unwrap();
            assert!(matches!(&e, Error::Timeout(m) if m.contains("host lock")), "{e:?}");
            drop(all);
            // The host step is a lock of its own: held with keys or without.
            let keys = store.lock_keys(&[LockKey::Group(6)], &[]).unwrap();
            let step = store.host_step().unwrap();
            let other = store.clone();
            assert!(std::thread::spawn(move || other.host_step().is_err()).join().unwrap());
            drop((step, keys));
            if let Backend::Dir(d) = &store.backend {
                let mut names: Vec<String> = fs::read_dir(d.join("locks"))
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect();
                names.sort();
                assert_eq!(names, ["group-5", "group-6", "host"]);
                fs::remove_dir_all(d).unwrap();
            }
        }
    }
}
