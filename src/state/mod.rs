//! Records of the devices we changed, so a reattach (in this process or the
//! next one) knows which driver to give back.
//!
//! On disk: one file per device in the state directory, changed only while
//! holding a lock that covers the device: its IOMMU group's (or its own,
//! without a group), or the whole store's (see `lock.rs` for which
//! operation takes which, and why no two callers deadlock). flock is
//! released by the kernel when its holder dies, so a crashed process never
//! blocks the next one.
//!
//! A record file is two fixed-size copies ("slots") of the record, each JSON
//! padded with spaces and ended by a line with a sequence number and a
//! checksum (see `encode_slot`). A new record is written to a temporary file
//! (O_EXCL) that is fsynced and renamed over the old one; a change of an
//! existing record rewrites, in place, the slot that does not hold the
//! newest copy. An in-place rewrite needs no new disk space, so reattach and
//! release work on a full filesystem (tmpfs, ext4, xfs: overwriting allocated
//! blocks allocates nothing; a copy-on-write filesystem would still need
//! space, and then the write fails cleanly). It is crash-safe: a torn write
//! damages only the slot being written, whose checksum then fails, and the
//! reader takes the other slot, the record as it was before the change.
//! Every caller writes the record before it touches the kernel, so "as it
//! was before" is exactly what the kernel still is.
//!
//! A record that cannot be read (damaged, not ours, not a record) is never
//! dropped or renamed: it stays where it is, every operation on its device is
//! refused, and `recover` reports it until an administrator clears it
//! (`nodedev recover --clear ADDRESS`, or by deleting the file).

mod autoprobe;
mod lock;

pub use autoprobe::SavedAutoprobe;
pub use lock::{flock_holders, LockKey, StateLock};

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// How far an operation on the device got, as its record says (what
/// [`Recovered::step`](crate::Recovered::step) reports). Releases may add steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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
    /// Bridges and bonds the device's interfaces were ports of at detach:
    /// reattach puts the interfaces back (host/safety.rs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMembership>,
}

/// An interface that was a port of a bridge or bond.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMembership {
    pub interface: String,
    pub master: String,
    /// "bridge" or "bond".
    pub kind: String,
    /// Administratively up (a bridge port comes back down otherwise).
    pub up: bool,
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
            ports: Vec::new(),
        }
    }

    /// Fields a record read from disk must have before anyone acts on it: the
    /// driver names end up in sysfs paths, the owner in messages and checks.
    pub fn validate(&self, file_address: &str) -> std::result::Result<(), String> {
        match crate::address::PciAddress::parse(&self.address) {
            Ok(a) if a.to_string() == self.address && self.address == file_address => {}
            Ok(_) | Err(_) => {
                return Err(format!(
                    "its address '{}' is not the one its file is named for",
                    self.address.escape_debug()
                ))
            }
        }
        if let Some(d) = &self.original_driver {
            if !is_kernel_driver_name(d) {
                return Err(format!("its original driver '{}' is not a kernel driver name", d.escape_debug()));
            }
        }
        if !crate::stub::is_stub_driver(&self.stub) {
            return Err(format!("its stub '{}' is not a stub driver", self.stub.escape_debug()));
        }
        if let Some(o) = &self.owner {
            crate::host::check_owner_name(o).map_err(|e| format!("its owner is invalid: {e}"))?;
        }
        Ok(())
    }
}

/// Letters, digits, '-' and '_', at most 64 bytes: what the kernel names drivers.
pub fn is_kernel_driver_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A record file that cannot be used. Its device stays protected until an
/// administrator clears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptRecord {
    /// The device the file is named for.
    pub address: String,
    pub file: PathBuf,
    /// Why it cannot be used, and what to check.
    pub why: String,
}

impl CorruptRecord {
    /// How to lift the protection, for every message that names it.
    pub fn how_to_clear(&self) -> String {
        format!(
            "check {} by hand (its driver, and whether a guest uses it), then clear the record with 'nodedev recover --clear {}' (or delete the file)",
            self.address, self.address
        )
    }

    /// The refusal of any operation on its device.
    pub fn refusal(&self) -> Error {
        Error::OperationInvalid(format!(
            "{} is protected: its state record {} cannot be used ({}); nodedev does not know which driver or guest it belongs to; {}",
            self.address,
            self.file.display(),
            self.why,
            self.how_to_clear()
        ))
    }
}

/// What the state directory holds for a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Valid(Record),
    Corrupt(CorruptRecord),
}

#[derive(Clone)]
pub struct StateStore {
    backend: Backend,
    faults: Arc<Mutex<Option<WriteFault>>>,
    /// The memory backend's saved `sriov_drivers_autoprobe` values (autoprobe.rs).
    autoprobe: Arc<Mutex<BTreeMap<String, String>>>,
    /// What this process's threads hold (lock.rs).
    table: Arc<lock::Table>,
    /// How long `lock` waits for another holder (thread or process) before
    /// `Error::Timeout`: a holder that never lets go must not hang everyone.
    lock_wait: std::time::Duration,
}

/// `StateStore::lock`'s wait unless the connection says otherwise
/// (`HostOptions::lock_wait`): legitimate operations hold the lock for
/// seconds under load.
pub const DEFAULT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Sequence numbers above this are not ones nodedev wrote (one write per
/// microsecond would take 8 years to get there): such a slot is taken for
/// damaged, so that `seq + 1` can never wrap.
const MAX_PLAUSIBLE_SEQ: u64 = 1 << 48;

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
    /// Only writes that need new disk space count and fail (a full disk):
    /// creating a record; rewriting one in place and removing one do not.
    new_space_only: bool,
}

#[derive(Clone)]
enum Backend {
    /// Records in files under this directory, lock files next to them.
    Dir(PathBuf),
    /// Records in memory (the built-in simulated host: its kernel is in memory
    /// too). A record is rewritten in place when it exists, as on disk.
    Memory(Arc<Mutex<BTreeMap<String, Record>>>),
}

pub(super) fn sys_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::System(format!("{what} {}: {e}", path.display()))
}

/// Largest record file read at all; a real one is `FILE_SIZE` bytes.
pub const MAX_RECORD_BYTES: u64 = 64 * 1024;
/// One copy of the record.
const SLOT_SIZE: usize = 2048;
const FILE_SIZE: usize = 2 * SLOT_SIZE;
/// "\n" + 16 hex digits (sequence) + " " + 16 hex digits (checksum) + "\n".
const TRAILER_LEN: usize = 35;

/// FNV-1a: detects a torn or damaged slot (not an adversary: the directory
/// is private to its owner).
fn checksum(body: &[u8], seq: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body.iter().chain(&seq.to_le_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn encode_slot(record: &Record, seq: u64) -> Result<Vec<u8>> {
    let mut body = serde_json::to_vec(record).map_err(|e| Error::Internal(e.to_string()))?;
    if body.len() > SLOT_SIZE - TRAILER_LEN {
        return Err(Error::Internal(format!("the record of {} does not fit in {SLOT_SIZE} bytes", record.address)));
    }
    body.resize(SLOT_SIZE - TRAILER_LEN, b' ');
    let sum = checksum(&body, seq);
    body.extend_from_slice(format!("\n{seq:016x} {sum:016x}\n").as_bytes());
    debug_assert_eq!(body.len(), SLOT_SIZE);
    Ok(body)
}

/// A slot's sequence number and JSON, when its checksum holds.
fn decode_slot(slot: &[u8]) -> Option<(u64, &[u8])> {
    let (body, trailer) = slot.split_at(SLOT_SIZE - TRAILER_LEN);
    let t = std::str::from_utf8(trailer).ok()?;
    let t = t.strip_prefix('\n')?.strip_suffix('\n')?;
    let (seq, sum) = t.split_once(' ')?;
    let seq = u64::from_str_radix(seq, 16).ok().filter(|s| *s <= MAX_PLAUSIBLE_SEQ)?;
    let sum = u64::from_str_radix(sum, 16).ok()?;
    (checksum(body, seq) == sum).then_some((seq, body))
}

/// The newest intact copy in a record file: (record, slot index, sequence).
/// Files of another size are plain JSON (written by nodedev before slots).
fn decode_file(bytes: &[u8]) -> std::result::Result<(Record, Option<(usize, u64)>), String> {
    if bytes.len() != FILE_SIZE {
        return serde_json::from_slice(bytes).map(|r| (r, None)).map_err(|e| format!("not a record: {e}"));
    }
    let newest = (0..2)
        .filter_map(|i| decode_slot(&bytes[i * SLOT_SIZE..(i + 1) * SLOT_SIZE]).map(|(seq, body)| (i, seq, body)))
        .max_by_key(|(_, seq, _)| *seq);
    let Some((i, seq, body)) = newest else {
        return serde_json::from_slice(bytes)
            .map(|r| (r, None))
            .map_err(|_| "both of its copies fail their checksum (damaged, or not written by nodedev)".to_string());
    };
    serde_json::from_slice(body)
        .map(|r| (r, Some((i, seq))))
        .map_err(|e| format!("its newest copy is not a record: {e}"))
}

/// A record file's bytes, read and validated as `entry` does (the fuzz
/// target's entry point too): the record, or why it cannot be used.
pub fn parse_record_file(bytes: &[u8], address: &str) -> std::result::Result<Record, String> {
    let (r, _) = decode_file(bytes)?;
    r.validate(address)?;
    Ok(r)
}

/// A record as a new file holds it (two identical slots), for tests and fuzz seeds.
pub fn record_file_bytes(record: &Record) -> Result<Vec<u8>> {
    let mut bytes = encode_slot(record, 1)?;
    bytes.extend(encode_slot(record, 0)?);
    Ok(bytes)
}

impl StateStore {
    pub fn dir(path: impl Into<PathBuf>) -> StateStore {
        StateStore {
            backend: Backend::Dir(path.into()),
            faults: Arc::default(),
            autoprobe: Arc::default(),
            table: Arc::default(),
            lock_wait: DEFAULT_LOCK_WAIT,
        }
    }

    pub fn memory() -> StateStore {
        StateStore {
            backend: Backend::Memory(Arc::default()),
            faults: Arc::default(),
            autoprobe: Arc::default(),
            table: Arc::default(),
            lock_wait: DEFAULT_LOCK_WAIT,
        }
    }

    /// The same store, whose `lock` gives up after `wait`.
    pub fn with_lock_wait(mut self, wait: std::time::Duration) -> StateStore {
        self.lock_wait = wait;
        self
    }

    /// How long `lock` waits for another holder.
    pub fn lock_wait(&self) -> std::time::Duration {
        self.lock_wait
    }

    /// Fault injection: after `after` more successful record writes or
    /// removals, the next `times` fail with `errno` (ENOSPC: disk full,
    /// EROFS: read-only) and change nothing.
    pub fn fail_writes(&self, errno: i32, after: u32, times: u32) {
        *lock_ignoring_poison(&self.faults) = Some(WriteFault { errno, after, times, new_space_only: false });
    }

    /// Fault injection of a full disk: only writes that need new space (a
    /// new record file) count; after `after` of them, the next `times` fail
    /// with `errno`. In-place rewrites and removals succeed.
    pub fn fail_new_space(&self, errno: i32, after: u32, times: u32) {
        *lock_ignoring_poison(&self.faults) = Some(WriteFault { errno, after, times, new_space_only: true });
    }

    /// Crash injection (tests): the process "dies" (panics with
    /// `SimulatedCrash`) at the record write or removal after `after` more,
    /// before it touches anything.
    pub fn die_at_write(&self, after: u32) {
        *lock_ignoring_poison(&self.faults) = Some(WriteFault { errno: 0, after, times: 1, new_space_only: false });
    }

    fn injected(&self, what: &str, address: &str, needs_space: bool) -> Result<()> {
        let mut f = lock_ignoring_poison(&self.faults);
        match f.as_mut() {
            Some(w) if w.new_space_only && !needs_space => Ok(()),
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
            Backend::Dir(p) => p.display().to_string(),
            Backend::Memory(_) => "(memory)".to_string(),
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

    fn record_path(dir: &Path, address: &str) -> PathBuf {
        dir.join(format!("{address}.json"))
    }

    fn temp_path(dir: &Path, address: &str) -> PathBuf {
        dir.join(format!(".{address}.json.tmp"))
    }

    /// The device's record. A record that cannot be used refuses (its device
    /// is protected, see `CorruptRecord::refusal`); `entry` reports it instead.
    pub fn get(&self, address: &str) -> Result<Option<Record>> {
        match self.entry(address)? {
            None => Ok(None),
            Some(Entry::Valid(r)) => Ok(Some(r)),
            Some(Entry::Corrupt(c)) => Err(c.refusal()),
        }
    }

    /// The device's record, or why it cannot be used. Reads only: nothing is
    /// created, renamed or removed, with or without the lock.
    pub fn entry(&self, address: &str) -> Result<Option<Entry>> {
        match &self.backend {
            Backend::Memory(map) => Ok(lock_ignoring_poison(map).get(address).cloned().map(Entry::Valid)),
            Backend::Dir(dir) => {
                let Some(dir_uid) = existing_dir(dir)? else { return Ok(None) };
                let path = Self::record_path(dir, address);
                let corrupt = |why: String| {
                    Ok(Some(Entry::Corrupt(CorruptRecord { address: address.to_string(), file: path.clone(), why })))
                };
                let (_, bytes) = match open_record(&path, dir_uid, false) {
                    Ok(None) => return Ok(None),
                    Ok(Some(x)) => x,
                    Err(Refused::Untrusted(why)) => return corrupt(why),
                    Err(Refused::Io(e)) => return Err(sys_err("cannot read state record", &path, e)),
                };
                match parse_record_file(&bytes, address) {
                    Ok(r) => Ok(Some(Entry::Valid(r))),
                    Err(why) => corrupt(why),
                }
            }
        }
    }

    /// Write (or replace) a record: in place when the device has one (no new
    /// space needed), else through a new file renamed over. A record that
    /// cannot be used is never overwritten (see `clear`).
    pub fn put(&self, record: &Record) -> Result<()> {
        let mut record = record.clone();
        record.updated = now();
        match &self.backend {
            Backend::Memory(map) => {
                let exists = lock_ignoring_poison(map).contains_key(&record.address);
                self.injected("write", &record.address, !exists)?;
                lock_ignoring_poison(map).insert(record.address.clone(), record);
                Ok(())
            }
            Backend::Dir(dir) => {
                self.ensure_dir(dir)?;
                let dir_uid = existing_dir(dir)?.unwrap_or(0);
                let path = Self::record_path(dir, &record.address);
                let existing = match open_record(&path, dir_uid, true) {
                    Ok(x) => x,
                    Err(Refused::Untrusted(why)) => {
                        return Err(CorruptRecord { address: record.address.clone(), file: path, why }.refusal())
                    }
                    Err(Refused::Io(e)) => return Err(sys_err("cannot read state record", &path, e)),
                };
                if let Some((file, bytes)) = existing {
                    match decode_file(&bytes) {
                        Ok((_, Some((slot, seq)))) => {
                            self.injected("write", &record.address, false)?;
                            // decode_slot refuses implausible sequence numbers: no wrap.
                            let Some(next) = seq.checked_add(1) else {
                                let why = "its sequence number is at the top of its range (not written by nodedev)"
                                    .to_string();
                                return Err(
                                    CorruptRecord { address: record.address.clone(), file: path, why }.refusal()
                                );
                            };
                            return rewrite_slot(&file, 1 - slot, &record, next)
                                .map_err(|e| sys_err("cannot write state record", &path, e));
                        }
                        Ok((_, None)) => {} // plain JSON: replaced by a slotted file
                        Err(why) => {
                            return Err(CorruptRecord { address: record.address.clone(), file: path, why }.refusal())
                        }
                    }
                }
                self.injected("write", &record.address, true)?;
                self.create(dir, &path, &record)
            }
        }
    }

    /// A new record file: written to a temporary file created with O_EXCL,
    /// fsynced, renamed over `path`, directory fsynced.
    fn create(&self, dir: &Path, path: &Path, record: &Record) -> Result<()> {
        let tmp = Self::temp_path(dir, &record.address);
        let text = record_file_bytes(record)?;
        let open = || {
            fs::OpenOptions::new().create_new(true).write(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&tmp)
        };
        let mut f = match open() {
            // Writers hold a lock covering the record: a temporary file then is a dead writer's.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && self.covers(&record.address) => {
                fs::remove_file(&tmp).map_err(|e| sys_err("cannot remove leftover temporary file", &tmp, e))?;
                open()
            }
            other => other,
        }
        .map_err(|e| sys_err("cannot create state record", &tmp, e))?;
        let mut write = || -> std::io::Result<()> {
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
            f.write_all(&text)?;
            f.sync_all()?;
            fs::rename(&tmp, path)?;
            fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            sys_err("cannot write state record", path, e)
        })
    }

    /// Remove temporary files dead writers left. Only with the whole store
    /// locked (`lock`): any writer of any record would hold a lock too.
    pub fn clean_temporaries(&self) -> Result<()> {
        let Backend::Dir(dir) = &self.backend else { return Ok(()) };
        if existing_dir(dir)?.is_none() || !self.exclusive_here() {
            return Ok(());
        }
        for entry in fs::read_dir(dir).map_err(|e| sys_err("cannot list state directory", dir, e))? {
            let name = entry.map_err(|e| sys_err("cannot list state directory", dir, e))?.file_name();
            let name = name.to_string_lossy();
            let is_temp = name.strip_prefix('.').and_then(|n| n.strip_suffix(".json.tmp"));
            if is_temp.is_some_and(|a| crate::address::PciAddress::parse(a).is_ok()) {
                let path = dir.join(&*name);
                fs::remove_file(&path).map_err(|e| sys_err("cannot remove leftover temporary file", &path, e))?;
            }
        }
        Ok(())
    }

    pub fn remove(&self, address: &str) -> Result<()> {
        self.injected("remove", address, false)?;
        match &self.backend {
            Backend::Memory(map) => {
                lock_ignoring_poison(map).remove(address);
                Ok(())
            }
            Backend::Dir(dir) => {
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

    /// An administrator's decision: forget a device's record (after checking
    /// the device by hand). The file is kept for reference as
    /// `ADDRESS.json.cleared-TIME`, which is never read as a record. Lock
    /// held. Returns where it went; None: there was no record.
    pub fn clear(&self, address: &str) -> Result<Option<String>> {
        match &self.backend {
            Backend::Memory(map) => Ok(lock_ignoring_poison(map).remove(address).map(|_| "(memory)".to_string())),
            Backend::Dir(dir) => {
                if existing_dir(dir)?.is_none() {
                    return Ok(None);
                }
                let path = Self::record_path(dir, address);
                if fs::symlink_metadata(&path).is_err() {
                    return Ok(None);
                }
                let aside = PathBuf::from(format!("{}.cleared-{}", path.display(), now()));
                fs::rename(&path, &aside).map_err(|e| sys_err("cannot clear state record", &path, e))?;
                fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| sys_err("cannot sync state directory", dir, e))?;
                Ok(Some(aside.display().to_string()))
            }
        }
    }

    pub fn list(&self) -> Result<Vec<Record>> {
        Ok(self.list_checked()?.0)
    }

    /// Every usable record, and every record that cannot be used (kept in
    /// place, see `entry`). Reads only.
    pub fn list_checked(&self) -> Result<(Vec<Record>, Vec<CorruptRecord>)> {
        match &self.backend {
            Backend::Memory(map) => Ok((lock_ignoring_poison(map).values().cloned().collect(), Vec::new())),
            Backend::Dir(dir) => {
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
                    let record_name =
                        name.strip_suffix(".json").filter(|a| crate::address::PciAddress::parse(a).is_ok());
                    if let Some(address) = record_name {
                        match self.entry(address)? {
                            Some(Entry::Valid(r)) => out.push(r),
                            Some(Entry::Corrupt(c)) => problems.push(c),
                            None => {}
                        }
                    }
                }
                out.sort_by(|a, b| a.address.cmp(&b.address));
                problems.sort_by(|a, b| a.address.cmp(&b.address));
                Ok((out, problems))
            }
        }
    }
}

/// Why a record file is not read.
enum Refused {
    /// Not a file nodedev wrote: a symlink, another owner, other modes, too big.
    Untrusted(String),
    Io(std::io::Error),
}

/// Open a record file without following a symlink and check that it is a
/// private regular file of the directory's owner, of a sane size. Ok(None):
/// no such file.
fn open_record(path: &Path, dir_uid: u32, write: bool) -> std::result::Result<Option<(fs::File, Vec<u8>)>, Refused> {
    let opened = fs::OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let mut file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Refused::Untrusted("it is a symbolic link; records are plain files nodedev wrote".into()))
        }
        Err(e) => return Err(Refused::Io(e)),
    };
    let m = file.metadata().map_err(Refused::Io)?;
    if !m.is_file() {
        return Err(Refused::Untrusted("it is not a regular file".into()));
    }
    if m.uid() != dir_uid {
        return Err(Refused::Untrusted(format!(
            "it belongs to uid {}, not to the state directory's owner (uid {dir_uid}); if it is genuine, chown it to uid {dir_uid}",
            m.uid()
        )));
    }
    if m.mode() & 0o777 != 0o600 {
        return Err(Refused::Untrusted(format!(
            "its mode is {:o}, not 600; if it is genuine, chmod 600 it",
            m.mode() & 0o7777
        )));
    }
    if m.len() > MAX_RECORD_BYTES {
        return Err(Refused::Untrusted(format!(
            "it is {} bytes long, more than a record ever is ({MAX_RECORD_BYTES})",
            m.len()
        )));
    }
    let mut bytes = Vec::with_capacity(m.len() as usize);
    (&mut file).take(MAX_RECORD_BYTES + 1).read_to_end(&mut bytes).map_err(Refused::Io)?;
    if bytes.len() as u64 > MAX_RECORD_BYTES {
        return Err(Refused::Untrusted(format!("it is more than {MAX_RECORD_BYTES} bytes long")));
    }
    Ok(Some((file, bytes)))
}

/// Rewrite one slot of an existing record file in place, then flush it.
fn rewrite_slot(file: &fs::File, slot: usize, record: &Record, seq: u64) -> std::io::Result<()> {
    let bytes = encode_slot(record, seq).map_err(|e| std::io::Error::other(e.to_string()))?;
    file.write_all_at(&bytes, (slot * SLOT_SIZE) as u64)?;
    file.sync_data()
}

/// Records decide which driver a device gets back: refuse a directory another
/// user could have planted or can write into.
pub(super) fn check_trusted(dir: &Path, m: &fs::Metadata) -> Result<()> {
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

/// The directory's owner when it exists (checked), None when it does not.
fn existing_dir(dir: &Path) -> Result<Option<u32>> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => check_trusted(dir, &m).map(|()| Some(m.uid())),
        Ok(_) => Err(Error::System(format!(
            "state directory {} is not a directory (a symlink or file is refused)",
            dir.display()
        ))),
        Err(_) => Ok(None),
    }
}

/// A panic in another thread must not wedge every later operation.
pub(super) fn lock_ignoring_poison<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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

    const A: &str = "0000:03:00.0";

    #[track_caller]
    fn corrupt_why(store: &StateStore, address: &str) -> String {
        match store.entry(address).unwrap() {
            Some(Entry::Corrupt(c)) => c.why,
            other => panic!("{address}: not reported corrupt: {other:?}"),
        }
    }

    #[test]
    fn records_round_trip_on_disk_with_private_modes() {
        let dir = tempdir("rt");
        let store = StateStore::dir(dir.join("state"));
        let _l = store.lock().unwrap();
        let rec = Record::new(A, Some("e1000e".into()), "vfio-pci");
        store.put(&rec).unwrap();
        // A second store on the same directory (a new process) sees it.
        let again = StateStore::dir(dir.join("state")).get(A).unwrap().unwrap();
        assert_eq!(again.original_driver.as_deref(), Some("e1000e"));
        assert_eq!(again.stub, "vfio-pci");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("state")), 0o700);
        assert_eq!(mode(&dir.join("state/0000:03:00.0.json")), 0o600);
        assert_eq!(store.list().unwrap().len(), 1);
        store.remove(A).unwrap();
        assert!(store.get(A).unwrap().is_none());
        assert!(store.list().unwrap().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlinked_state_dir_is_refused() {
        let dir = tempdir("link");
        fs::create_dir_all(dir.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), dir.join("state")).unwrap();
        let store = StateStore::dir(dir.join("state"));
        let err = store.put(&Record::new(A, None, "pci-stub")).unwrap_err();
        assert!(matches!(&err, Error::System(m) if m.contains("not a directory")), "{err:?}");
        assert!(fs::read_dir(dir.join("elsewhere")).unwrap().next().is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_record_is_kept_in_place_and_protects_its_device() {
        let dir = tempdir("corrupt");
        let store = StateStore::dir(&dir);
        store.put(&Record::new(A, None, "pci-stub")).unwrap();
        fs::write(dir.join("0000:03:00.0.json"), b"{\"address\": ").unwrap();
        for _ in 0..2 {
            let err = store.get(A).unwrap_err();
            assert!(
                matches!(&err, Error::OperationInvalid(m) if m.contains("0000:03:00.0.json") && m.contains("protected") && m.contains("nodedev recover --clear 0000:03:00.0")),
                "{err:?}"
            );
        }
        // Nothing renamed, nothing lost, nothing overwritten by a later write.
        assert_eq!(fs::read(dir.join("0000:03:00.0.json")).unwrap(), b"{\"address\": ");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        assert!(matches!(store.put(&Record::new(A, None, "pci-stub")), Err(Error::OperationInvalid(_))));
        assert_eq!(fs::read(dir.join("0000:03:00.0.json")).unwrap(), b"{\"address\": ");
        // list reports it (typed), every time, next to the good records.
        store.put(&Record::new("0000:04:00.0", None, "pci-stub")).unwrap();
        for _ in 0..2 {
            let (records, problems) = store.list_checked().unwrap();
            assert_eq!(records.len(), 1);
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].address, A);
            assert_eq!(problems[0].file, dir.join("0000:03:00.0.json"));
        }
        // Cleared by the administrator: kept aside for reference, no longer a record.
        let _l = store.lock().unwrap();
        let aside = store.clear(A).unwrap().unwrap();
        assert!(aside.contains("0000:03:00.0.json.cleared-"), "{aside}");
        assert_eq!(fs::read(&aside).unwrap(), b"{\"address\": ");
        assert!(store.get(A).unwrap().is_none());
        assert_eq!(store.list_checked().unwrap().1.len(), 0);
        assert_eq!(store.clear(A).unwrap(), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn record_files_must_be_private_plain_small_and_valid() {
        let dir = tempdir("trust");
        let store = StateStore::dir(&dir);
        store.put(&Record::new(A, Some("e1000e".into()), "vfio-pci")).unwrap();
        let file = dir.join("0000:03:00.0.json");
        let good = fs::read(&file).unwrap();
        // A symlink is not followed (O_NOFOLLOW), even to a valid record.
        fs::rename(&file, dir.join("real")).unwrap();
        std::os::unix::fs::symlink(dir.join("real"), &file).unwrap();
        assert!(corrupt_why(&store, A).contains("symbolic link"));
        assert!(store.put(&Record::new(A, None, "vfio-pci")).is_err());
        assert_eq!(fs::read(dir.join("real")).unwrap(), good, "written through a symlink");
        fs::remove_file(&file).unwrap();
        fs::rename(dir.join("real"), &file).unwrap();
        assert!(store.get(A).unwrap().is_some());
        // Other modes.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let why = corrupt_why(&store, A);
        assert!(why.contains("644") && why.contains("chmod 600"), "{why}");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        // Another owner (only root can arrange that).
        // SAFETY: geteuid and chown on our own temporary file.
        if unsafe { libc::geteuid() } == 0 {
            let c = std::ffi::CString::new(file.as_os_str().as_encoded_bytes()).unwrap();
            assert_eq!(unsafe { libc::chown(c.as_ptr(), 1, 1) }, 0);
            let why = corrupt_why(&store, A);
            assert!(why.contains("uid 1") && why.contains("chown"), "{why}");
            assert_eq!(unsafe { libc::chown(c.as_ptr(), 0, 0) }, 0);
        }
        assert!(store.get(A).unwrap().is_some());
        // Too big.
        let mut big = serde_json::to_vec(&Record::new(A, None, "vfio-pci")).unwrap();
        big.resize(MAX_RECORD_BYTES as usize + 1, b' ');
        fs::write(&file, &big).unwrap();
        assert!(corrupt_why(&store, A).contains("bytes long"));
        // Fields that parse but are not valid.
        let bad = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = serde_json::to_value(Record::new(A, Some("e1000e".into()), "vfio-pci")).unwrap();
            f(&mut v);
            fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
            corrupt_why(&store, A)
        };
        assert!(bad(&|v| v["address"] = "0000:03:00.1".into()).contains("address"));
        assert!(bad(&|v| v["address"] = "03:00.0".into()).contains("address"));
        assert!(bad(&|v| v["original_driver"] = "../../unbind".into()).contains("original driver"));
        assert!(bad(&|v| v["stub"] = "e1000e".into()).contains("stub"));
        assert!(bad(&|v| v["owner"] = "".into()).contains("owner"));
        assert!(bad(&|v| v["step"] = "napping".into()).contains("not a record"));
        // A plain JSON record (as nodedev wrote before slots) still reads.
        fs::write(&file, serde_json::to_vec(&Record::new(A, Some("e1000e".into()), "vfio-pci")).unwrap()).unwrap();
        assert_eq!(store.get(A).unwrap().unwrap().original_driver.as_deref(), Some("e1000e"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporary_files_are_exclusive_and_a_dead_writers_is_cleaned_under_the_lock() {
        let dir = tempdir("tmp");
        let store = StateStore::dir(&dir);
        store.put(&Record::new(A, None, "vfio-pci")).unwrap();
        store.remove(A).unwrap();
        let tmp = dir.join(".0000:03:00.0.json.tmp");
        // Planted as a symlink: never followed, never written through.
        std::os::unix::fs::symlink(dir.join("victim"), &tmp).unwrap();
        let err = store.put(&Record::new(A, None, "vfio-pci")).unwrap_err();
        assert!(matches!(&err, Error::System(m) if m.contains("cannot create")), "{err:?}");
        assert!(!dir.join("victim").exists());
        // Under the lock it is a dead writer's: removed, and the write goes on.
        {
            let _l = store.lock().unwrap();
            store.put(&Record::new(A, None, "vfio-pci")).unwrap();
        }
        assert!(!dir.join("victim").exists() && fs::symlink_metadata(&tmp).is_err());
        fs::write(&tmp, b"half").unwrap();
        {
            let _l = store.lock().unwrap();
            store.clean_temporaries().unwrap();
        }
        assert!(fs::symlink_metadata(&tmp).is_err());
        assert!(store.get(A).unwrap().is_some());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn changes_of_an_existing_record_need_no_new_space() {
        for store in [StateStore::dir(tempdir("full")), StateStore::memory()] {
            let mut rec = Record::new(A, Some("e1000e".into()), "vfio-pci");
            store.put(&rec).unwrap();
            store.fail_new_space(libc::ENOSPC, 0, 100);
            for step in [Step::Detached, Step::Reattaching, Step::Detached] {
                rec.step = step;
                rec.owner = Some("a-guest-with-a-long-name".repeat(10));
                store.put(&rec).unwrap();
                assert_eq!(store.get(A).unwrap().unwrap().step, step);
            }
            store.remove(A).unwrap();
            let err = store.put(&rec).unwrap_err();
            assert!(matches!(&err, Error::System(m) if m.contains("No space left")), "{err:?}");
            assert!(store.get(A).unwrap().is_none());
            store.fail_writes(0, 0, 0);
            if let Backend::Dir(d) = &store.backend {
                fs::remove_dir_all(d).unwrap();
            }
        }
    }

    #[test]
    fn a_torn_in_place_write_reads_as_the_record_before_it() {
        let dir = tempdir("torn");
        let store = StateStore::dir(&dir);
        let mut rec = Record::new(A, Some("e1000e".into()), "vfio-pci");
        rec.step = Step::Detached;
        store.put(&rec).unwrap();
        rec.step = Step::Reattaching;
        store.put(&rec).unwrap(); // goes to slot 1
        let file = dir.join("0000:03:00.0.json");
        let intact = fs::read(&file).unwrap();
        assert_eq!(intact.len(), FILE_SIZE);
        // The next change goes to slot 0; tear it at every 64-byte boundary.
        rec.step = Step::Detached;
        rec.owner = Some("vm1".into());
        let new = encode_slot(&rec, 3).unwrap();
        for cut in (0..SLOT_SIZE).step_by(64).chain([SLOT_SIZE - 1]) {
            let mut torn = intact.clone();
            torn[..cut].copy_from_slice(&new[..cut]);
            fs::write(&file, &torn).unwrap();
            let got = store.get(A).unwrap().unwrap();
            // Only a slot written to its last byte is the new record.
            let want = if torn[..SLOT_SIZE] == new[..] {
                (Step::Detached, Some("vm1".into()))
            } else {
                (Step::Reattaching, None)
            };
            assert_eq!((got.step, got.owner), want, "cut at {cut}");
        }
        // Both slots damaged: kept, reported, never guessed.
        let mut both = intact.clone();
        both[10] ^= 1;
        both[SLOT_SIZE + 10] ^= 1;
        fs::write(&file, &both).unwrap();
        assert!(corrupt_why(&store, A).contains("checksum"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_untrusted_state_dir_is_refused() {
        let dir = tempdir("untrusted");
        let store = StateStore::dir(&dir);
        store.put(&Record::new(A, None, "pci-stub")).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        for err in [store.get(A).unwrap_err(), store.lock().err().unwrap(), store.list().unwrap_err()] {
            assert!(
                matches!(&err, Error::System(m) if m.contains("writable by other users") && m.contains("chmod 700")),
                "{err:?}"
            );
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(store.get(A).unwrap().is_some());
        // Owned by someone else (only root can arrange that here).
        // SAFETY: geteuid and chown on our own temporary directory.
        if unsafe { libc::geteuid() } == 0 {
            let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
            assert_eq!(unsafe { libc::chown(c.as_ptr(), 1, 1) }, 0);
            let err = store.get(A).unwrap_err();
            assert!(matches!(&err, Error::System(m) if m.contains("belongs to uid 1")), "{err:?}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
