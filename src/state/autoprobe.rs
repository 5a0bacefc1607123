//! A PF's `sriov_drivers_autoprobe` as it was before provisioning turned it
//! off: saved before the "0" is written, removed once it is put back. A
//! process that dies in between leaves the file, so `recover` and the next
//! provisioning know the value to put back instead of taking the "0" for
//! the PF's own. On disk: `ADDRESS.autoprobe` next to the records (never
//! read as a record: those end in `.json`), "0" or "1", written to a
//! temporary file, fsynced and renamed over, under the whole store's lock.

use super::{existing_dir, lock_ignoring_poison, open_record, sys_err, Backend, Refused, StateStore};
use crate::error::{Error, Result};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const SUFFIX: &str = ".autoprobe";

/// A saved value, or why the file cannot be used.
pub type SavedAutoprobe = std::result::Result<String, String>;

fn path_of(dir: &Path, pf: &str) -> PathBuf {
    dir.join(format!("{pf}{SUFFIX}"))
}

fn parse(bytes: &[u8]) -> SavedAutoprobe {
    match std::str::from_utf8(bytes).map(str::trim) {
        Ok(v @ ("0" | "1")) => Ok(v.to_string()),
        _ => Err("it does not hold 0 or 1".to_string()),
    }
}

impl StateStore {
    /// Save the PF's autoprobe value before it is turned off. Whole store locked.
    pub fn save_autoprobe(&self, pf: &str, value: &str) -> Result<()> {
        parse(value.as_bytes()).map_err(|_| Error::Internal(format!("autoprobe value {value:?} of {pf}")))?;
        self.injected("write", pf, true)?;
        match &self.backend {
            Backend::Memory(_) => {
                lock_ignoring_poison(&self.autoprobe).insert(pf.to_string(), value.to_string());
                Ok(())
            }
            Backend::Dir(dir) => {
                self.ensure_dir(dir)?;
                let path = path_of(dir, pf);
                let tmp = dir.join(format!(".{pf}{SUFFIX}.tmp"));
                // The whole store is locked: a temporary file here is a dead writer's.
                let _ = fs::remove_file(&tmp);
                let write = || -> std::io::Result<()> {
                    let mut f = fs::OpenOptions::new()
                        .create_new(true)
                        .write(true)
                        .mode(0o600)
                        .custom_flags(libc::O_NOFOLLOW)
                        .open(&tmp)?;
                    f.set_permissions(fs::Permissions::from_mode(0o600))?;
                    f.write_all(format!("{value}\n").as_bytes())?;
                    f.sync_all()?;
                    fs::rename(&tmp, &path)?;
                    fs::File::open(dir)?.sync_all()
                };
                write().map_err(|e| {
                    let _ = fs::remove_file(&tmp);
                    sys_err("cannot save sriov_drivers_autoprobe in", &path, e)
                })
            }
        }
    }

    /// The PF's saved autoprobe value, if a provisioning left one.
    pub fn saved_autoprobe(&self, pf: &str) -> Result<Option<SavedAutoprobe>> {
        match &self.backend {
            Backend::Memory(_) => Ok(lock_ignoring_poison(&self.autoprobe).get(pf).cloned().map(Ok)),
            Backend::Dir(dir) => {
                let Some(uid) = existing_dir(dir)? else { return Ok(None) };
                let path = path_of(dir, pf);
                match open_record(&path, uid, false) {
                    Ok(None) => Ok(None),
                    Ok(Some((_, bytes))) => Ok(Some(parse(&bytes))),
                    Err(Refused::Untrusted(why)) => Ok(Some(Err(why))),
                    Err(Refused::Io(e)) => Err(sys_err("cannot read", &path, e)),
                }
            }
        }
    }

    /// Forget the PF's saved value, once it is put back. Whole store locked.
    pub fn remove_saved_autoprobe(&self, pf: &str) -> Result<()> {
        self.injected("remove", pf, false)?;
        match &self.backend {
            Backend::Memory(_) => {
                lock_ignoring_poison(&self.autoprobe).remove(pf);
                Ok(())
            }
            Backend::Dir(dir) => {
                let path = path_of(dir, pf);
                match fs::remove_file(&path) {
                    Ok(()) => fs::File::open(dir)
                        .and_then(|d| d.sync_all())
                        .map_err(|e| sys_err("cannot sync state directory", dir, e)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(sys_err("cannot remove", &path, e)),
                }
            }
        }
    }

    /// Every PF with a saved autoprobe value. Reads only.
    pub fn saved_autoprobes(&self) -> Result<Vec<(String, SavedAutoprobe)>> {
        let pfs: Vec<String> = match &self.backend {
            Backend::Memory(_) => lock_ignoring_poison(&self.autoprobe).keys().cloned().collect(),
            Backend::Dir(dir) => {
                if existing_dir(dir)?.is_none() {
                    return Ok(Vec::new());
                }
                let entries = fs::read_dir(dir).map_err(|e| sys_err("cannot list state directory", dir, e))?;
                let mut pfs = Vec::new();
                for entry in entries {
                    let name = entry.map_err(|e| sys_err("cannot list state directory", dir, e))?.file_name();
                    let name = name.to_string_lossy();
                    if let Some(pf) = name.strip_suffix(SUFFIX).filter(|a| crate::address::PciAddress::parse(a).is_ok())
                    {
                        pfs.push(pf.to_string());
                    }
                }
                pfs.sort();
                pfs
            }
        };
        let mut out = Vec::new();
        for pf in pfs {
            if let Some(v) = self.saved_autoprobe(&pf)? {
                out.push((pf, v));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_values_survive_in_the_directory_and_are_not_records() {
        let dir = std::env::temp_dir().join(format!("nodedev-autoprobe-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = StateStore::dir(&dir);
        store.save_autoprobe("0000:04:00.0", "1").unwrap();
        let again = StateStore::dir(&dir);
        assert_eq!(again.saved_autoprobe("0000:04:00.0").unwrap(), Some(Ok("1".to_string())));
        assert_eq!(again.saved_autoprobes().unwrap(), [("0000:04:00.0".to_string(), Ok("1".to_string()))]);
        assert!(again.list_checked().unwrap().0.is_empty() && again.list_checked().unwrap().1.is_empty());
        // Damaged: reported, never taken for a value.
        fs::write(dir.join("0000:04:00.0.autoprobe"), "7\n").unwrap();
        assert!(again.saved_autoprobe("0000:04:00.0").unwrap().unwrap().is_err());
        again.remove_saved_autoprobe("0000:04:00.0").unwrap();
        assert!(again.saved_autoprobes().unwrap().is_empty());
        let _ = fs::remove_dir_all(&dir);
    }
}
