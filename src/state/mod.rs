//! Records of the devices we changed, so a reattach (in this process or the
//! next one) knows which driver to give back.
//!
//! On disk: one JSON file per device in the state directory, replaced
//! atomically (write temp, fsync, rename, fsync dir) and only while holding
//! the host-wide lock file. One lock for the host keeps it simple: operations
//! take milliseconds, and a group operation touches several devices at once.
//! flock is released by the kernel when its holder dies, so a crashed
//! process never blocks the next one.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// How far an operation on the device got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Intent written, kernel not yet (or not completely) changed.
    Detaching,
    /// On its stub.
    Detached,
    /// Being given back to its original driver.
    Reattaching,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub address: String,
    /// Driver before we touched it; None: it had no driver.
    pub original_driver: Option<String>,
    /// Kernel name of the stub we bound it to.
    pub stub: String,
    /// Guest (or other consumer) the device is prepared for; others are refused.
    pub owner: Option<String>,
    /// Prepared managed: release gives it back to its original driver.
    pub managed: bool,
    /// The record only holds an owner: nodedev did not move the device (an
    /// unmanaged device the admin put on its stub); release drops the record.
    #[serde(default)]
    pub ownership_only: bool,
    pub step: Step,
    /// Seconds since the epoch of the last update.
    pub updated: u64,
}

impl Record {
    pub fn new(address: &str, original_driver: Option<String>, stub: &str) -> Record {
        Record {
            address: address.to_string(),
            original_driver,
            stub: stub.to_string(),
            owner: None,
            managed: false,
            ownership_only: false,
            step: Step::Detaching,
            updated: now(),
        }
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[derive(Clone)]
pub struct StateStore {
    backend: Backend,
    faults: Arc<Mutex<Option<WriteFault>>>,
}

/// The panic payload of `die_at_write`.
#[derive(Debug)]
pub struct SimulatedCrash;

/// An injected failure of record writes (tests): a full or read-only disk.
#[derive(Debug, Clone, Copy)]
struct WriteFault {
    /// 0: the process "dies" (panics) instead of failing.
    errno: i32,
    /// Writes that still succeed before the failures start.
    after: u32,
    times: u32,
}

#[derive(Clone)]
enum Backend {
    /// Records in files under this directory; the process-wide mutex orders
    /// threads, the flock orders processes.
    Dir(PathBuf, Arc<Mutex<()>>),
    /// Records in memory (the built-in simulated host: its kernel is in memory too).
    Memory(Arc<Mutex<BTreeMap<String, Record>>>, Arc<Mutex<()>>),
}

/// Held for the duration of one operation.
pub struct StateLock<'a> {
    _thread: MutexGuard<'a, ()>,
    _file: Option<fs::File>,
}

fn sys_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::System(format!("{what} {}: {e}", path.display()))
}

impl StateStore {
    pub fn dir(path: impl Into<PathBuf>) -> StateStore {
        StateStore { backend: Backend::Dir(path.into(), Arc::default()), faults: Arc::default() }
    }

    pub fn memory() -> StateStore {
        StateStore { backend: Backend::Memory(Arc::default(), Arc::default()), faults: Arc::default() }
    }

    /// Fault injection: after `after` more successful record writes or
    /// removals, the next `times` fail with `errno` (ENOSPC: disk full,
    /// EROFS: read-only) and change nothing.
    pub fn fail_writes(&self, errno: i32, after: u32, times: u32) {
        *lock_ignoring_poison(&self.faults) = Some(WriteFault { errno, after, times });
    }

    /// Crash injection (tests): the process "dies" (panics with
    /// `SimulatedCrash`) at the record write or removal after `after` more,
    /// before it touches anything.
    pub fn die_at_write(&self, after: u32) {
        *lock_ignoring_poison(&self.faults) = Some(WriteFault { errno: 0, after, times: 1 });
    }

    fn injected(&self, what: &str, address: &str) -> Result<()> {
        let mut f = lock_ignoring_poison(&self.faults);
        match f.as_mut() {
            Some(w) if w.after > 0 => {
                w.after -= 1;
                Ok(())
            }
            Some(w) if w.times > 0 && w.errno == 0 => {
                w.times = 0;
                drop(f);
                std::panic::panic_any(SimulatedCrash)
            }
            Some(w) if w.times > 0 => {
                w.times -= 1;
                let e = std::io::Error::from_raw_os_error(w.errno);
                Err(Error::System(format!("cannot {what} state record of {address} in {}: {e}", self.location())))
            }
            _ => Ok(()),
        }
    }

    /// Where records live, for messages and the CLI.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Dir(p, _) => p.display().to_string(),
            Backend::Memory(..) => "(memory)".to_string(),
        }
    }

    /// Exclusive lock over the whole store, across threads and processes.
    pub fn lock(&self) -> Result<StateLock<'_>> {
        match &self.backend {
            Backend::Memory(_, m) => Ok(StateLock { _thread: lock_ignoring_poison(m), _file: None }),
            Backend::Dir(dir, m) => {
                let thread = lock_ignoring_poison(m);
                self.ensure_dir(dir)?;
                let path = dir.join("lock");
                let file = fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| sys_err("cannot open lock file", &path, e))?;
                // SAFETY: flock on a descriptor we own; blocks until the holder releases or dies.
                let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
                if rc != 0 {
                    return Err(sys_err("cannot lock", &path, std::io::Error::last_os_error()));
                }
                Ok(StateLock { _thread: thread, _file: Some(file) })
            }
        }
    }

    fn ensure_dir(&self, dir: &Path) -> Result<()> {
        match fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() => check_trusted(dir, &m),
            Ok(_) => Err(Error::System(format!(
                "state directory {} is not a directory (a symlink or file is refused)",
                dir.display()
            ))),
            Err(_) => fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| sys_err("cannot create state directory", dir, e)),
        }
    }

    /// Keep a corrupt record for the admin under another name, so it is
    /// neither read again nor lost. Says where it went.
    fn set_aside(path: &Path) -> String {
        let aside = PathBuf::from(format!("{}.corrupt-{}", path.display(), now()));
        match fs::rename(path, &aside) {
            Ok(()) => format!("it was moved to {}", aside.display()),
            Err(e) => format!("moving it aside failed ({e}), it stays where it is"),
        }
    }

    fn record_path(dir: &Path, address: &str) -> PathBuf {
        dir.join(format!("{address}.json"))
    }

    pub fn get(&self, address: &str) -> Result<Option<Record>> {
        match &self.backend {
            Backend::Memory(map, _) => Ok(lock_ignoring_poison(map).get(address).cloned()),
            Backend::Dir(dir, _) => {
                if existing_dir(dir)?.is_none() {
                    return Ok(None);
                }
                let path = Self::record_path(dir, address);
                match fs::read(&path) {
                    Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                        let aside = Self::set_aside(&path);
                        Error::System(format!(
                            "state record {} was corrupt ({e}); {aside}; check the device's driver by hand",
                            path.display()
                        ))
                    }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(sys_err("cannot read state record", &path, e)),
                }
            }
        }
    }

    /// Write (or replace) a record atomically.
    pub fn put(&self, record: &Record) -> Result<()> {
        self.injected("write", &record.address)?;
        let mut record = record.clone();
        record.updated = now();
        match &self.backend {
            Backend::Memory(map, _) => {
                lock_ignoring_poison(map).insert(record.address.clone(), record);
                Ok(())
            }
            Backend::Dir(dir, _) => {
                self.ensure_dir(dir)?;
                let path = Self::record_path(dir, &record.address);
                let tmp = dir.join(format!(".{}.json.tmp", record.address));
                let text = serde_json::to_vec_pretty(&record).map_err(|e| Error::Internal(e.to_string()))?;
                let write = || -> std::io::Result<()> {
                    let mut f = fs::OpenOptions::new()
                        .create(true)
                        .write(true)
                        .truncate(true)
                        .mode(0o600)
                        .open(&tmp)?;
                    f.write_all(&text)?;
                    f.sync_all()?;
                    fs::rename(&tmp, &path)?;
                    fs::File::open(dir)?.sync_all()
                };
                write().map_err(|e| {
                    let _ = fs::remove_file(&tmp);
                    sys_err("cannot write state record", &path, e)
                })
            }
        }
    }

    pub fn remove(&self, address: &str) -> Result<()> {
        self.injected("remove", address)?;
        match &self.backend {
            Backend::Memory(map, _) => {
                lock_ignoring_poison(map).remove(address);
                Ok(())
            }
            Backend::Dir(dir, _) => {
                let path = Self::record_path(dir, address);
                match fs::remove_file(&path) {
                    Ok(()) => fs::File::open(dir)
                        .and_then(|d| d.sync_all())
                        .map_err(|e| sys_err("cannot sync state directory", dir, e)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(sys_err("cannot remove state record", &path, e)),
                }
            }
        }
    }

    pub fn list(&self) -> Result<Vec<Record>> {
        Ok(self.list_checked()?.0)
    }

    /// Every readable record, and one message per corrupt record found (each
    /// moved aside, see `get`).
    pub fn list_checked(&self) -> Result<(Vec<Record>, Vec<String>)> {
        match &self.backend {
            Backend::Memory(map, _) => Ok((lock_ignoring_poison(map).values().cloned().collect(), Vec::new())),
            Backend::Dir(dir, _) => {
                if existing_dir(dir)?.is_none() {
                    return Ok((Vec::new(), Vec::new()));
                }
                let entries = match fs::read_dir(dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
                    Err(e) => return Err(sys_err("cannot list state directory", dir, e)),
                };
                let mut out = Vec::new();
                let mut problems = Vec::new();
                for entry in entries {
                    let name = entry.map_err(|e| sys_err("cannot list state directory", dir, e))?.file_name();
                    let name = name.to_string_lossy();
                    // Only ADDRESS.json files are records: anything else in the
                    // directory (a mistyped statedir=) is never touched.
                    let record_name = name.strip_suffix(".json").filter(|a| crate::address::PciAddress::parse(a).is_ok());
                    if let Some(address) = record_name {
                        match self.get(address) {
                            Ok(Some(r)) => out.push(r),
                            Ok(None) => {}
                            Err(Error::System(m)) if m.contains("was corrupt") => problems.push(m),
                            Err(e) => return Err(e),
                        }
                    }
                }
                out.sort_by(|a, b| a.address.cmp(&b.address));
                Ok((out, problems))
            }
        }
    }
}

/// Records decide which driver a device gets back: refuse a directory another
/// user could have planted or can write into.
fn check_trusted(dir: &Path, m: &fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if m.uid() != euid {
        return Err(Error::System(format!(
            "state directory {} belongs to uid {}, not to this process (uid {euid}): refusing its records; remove it, or chown it to uid {euid} and chmod 700 it",
            dir.display(),
            m.uid()
        )));
    }
    if m.mode() & 0o022 != 0 {
        return Err(Error::System(format!(
            "state directory {} is writable by other users (mode {:o}): refusing its records; chmod 700 it",
            dir.display(),
            m.mode() & 0o7777
        )));
    }
    Ok(())
}

/// The directory's metadata when it exists (checked), None when it does not.
fn existing_dir(dir: &Path) -> Result<Option<()>> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => check_trusted(dir, &m).map(Some),
        Ok(_) => Err(Error::System(format!(
            "state directory {} is not a directory (a symlink or file is refused)",
            dir.display()
        ))),
        Err(_) => Ok(None),
    }
}

/// A panic in another thread must not wedge every later operation.
fn lock_ignoring_poison<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tempdir(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("nodedev-state-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn records_round_trip_on_disk_with_private_modes() {
        let dir = tempdir("rt");
        let store = StateStore::dir(dir.join("state"));
        let _l = store.lock().unwrap();
        let rec = Record::new("0000:03:00.0", Some("e1000e".into()), "vfio-pci");
        store.put(&rec).unwrap();
        // A second store on the same directory (a new process) sees it.
        let again = StateStore::dir(dir.join("state")).get("0000:03:00.0").unwrap().unwrap();
        assert_eq!(again.original_driver.as_deref(), Some("e1000e"));
        assert_eq!(again.stub, "vfio-pci");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("state")), 0o700);
        assert_eq!(mode(&dir.join("state/0000:03:00.0.json")), 0o600);
        assert_eq!(store.list().unwrap().len(), 1);
        store.remove("0000:03:00.0").unwrap();
        assert!(store.get("0000:03:00.0").unwrap().is_none());
        assert!(store.list().unwrap().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlinked_state_dir_is_refused() {
        let dir = tempdir("link");
        fs::create_dir_all(dir.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), dir.join("state")).unwrap();
        let store = StateStore::dir(dir.join("state"));
        let err = store.put(&Record::new("0000:03:00.0", None, "pci-stub")).unwrap_err();
        assert!(matches!(&err, Error::System(m) if m.contains("not a directory")), "{err:?}");
        assert!(fs::read_dir(dir.join("elsewhere")).unwrap().next().is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_record_is_reported_not_dropped() {
        let dir = tempdir("corrupt");
        let store = StateStore::dir(&dir);
        store.put(&Record::new("0000:03:00.0", None, "pci-stub")).unwrap();
        fs::write(dir.join("0000:03:00.0.json"), b"{\"address\": ").unwrap();
        let err = store.get("0000:03:00.0").unwrap_err();
        assert!(matches!(&err, Error::System(m) if m.contains("corrupt") && m.contains("moved to")), "{err:?}");
        // Kept aside with its content, and no longer read as a record.
        let aside: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("0000:03:00.0.json.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert_eq!(fs::read(dir.join(&aside[0])).unwrap(), b"{\"address\": ");
        assert!(store.get("0000:03:00.0").unwrap().is_none());
        // list() reports a corrupt record instead of failing.
        store.put(&Record::new("0000:04:00.0", None, "pci-stub")).unwrap();
        fs::write(dir.join("0000:05:00.0.json"), b"").unwrap();
        let (records, problems) = store.list_checked().unwrap();
        assert_eq!(records.len(), 1);
        assert!(problems.len() == 1 && problems[0].contains("0000:05:00.0.json"), "{problems:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_untrusted_state_dir_is_refused() {
        let dir = tempdir("untrusted");
        let store = StateStore::dir(&dir);
        store.put(&Record::new("0000:03:00.0", None, "pci-stub")).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        for err in [store.get("0000:03:00.0").unwrap_err(), store.lock().err().unwrap(), store.list().unwrap_err()] {
            assert!(matches!(&err, Error::System(m) if m.contains("writable by other users") && m.contains("chmod 700")), "{err:?}");
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(store.get("0000:03:00.0").unwrap().is_some());
        // Owned by someone else (only root can arrange that here).
        // SAFETY: geteuid and chown on our own temporary directory.
        if unsafe { libc::geteuid() } == 0 {
            let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
            assert_eq!(unsafe { libc::chown(c.as_ptr(), 1, 1) }, 0);
            let err = store.get("0000:03:00.0").unwrap_err();
            assert!(matches!(&err, Error::System(m) if m.contains("belongs to uid 1")), "{err:?}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
