//! Persistent assignments: "this device belongs on this stub from boot on".
//!
//! One JSON file per device, `ADDRESS.json`, in the definitions directory
//! (/etc/nodedev/persistent on the live host), written atomically. The udev
//! rule nodedev installs (udev/40-nodedev.rules) asks `nodedev udev ADDR`
//! on each PCI `add` event and sets the device's `driver_override` before
//! the rule that loads driver modules runs, so the host driver never binds;
//! `nodedev apply` (a boot unit) moves devices that were bound before the
//! rule could act and writes the records reattach needs.

use crate::address::PciAddress;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const SYSTEM_DEFINITIONS_DIR: &str = "/etc/nodedev/persistent";

/// A definition file is a few hundred bytes; anything larger is not ours.
const MAX_SIZE: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub address: String,
    /// The identity the definition was made for: a different device at this
    /// address later is refused, not taken.
    pub vendor: u16,
    pub device: u16,
    /// Kernel driver of the stub (`vfio-pci`).
    pub stub: String,
    /// The host driver the device had when it was defined (None: none).
    pub original_driver: Option<String>,
}

/// A definition file names its device twice (file name and content): both
/// must agree, or the file could act on another device than it seems to.
fn names_its_file(address: &str, file_stem: &str) -> std::result::Result<(), String> {
    let addr = PciAddress::parse(address).map_err(|e| e.to_string())?;
    if addr.to_string() != file_stem {
        return Err(format!("it names {address} but is the file of {file_stem}"));
    }
    Ok(())
}

impl Definition {
    fn check(&self, file_stem: &str) -> std::result::Result<(), String> {
        names_its_file(&self.address, file_stem)?;
        let name_ok = |n: &str| {
            !n.is_empty() && n.len() <= 64 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        // The stub goes to udev as a KEY=value line and to driver_override:
        // a kernel driver name, nothing that could end a line or name a path.
        if !name_ok(&self.stub) || !crate::stub::is_stub_driver(&self.stub) {
            return Err(format!("'{}' is not a stub driver", self.stub.escape_debug()));
        }
        if let Some(d) = self.original_driver.as_deref().filter(|d| !name_ok(d)) {
            return Err(format!("'{}' is not a driver name", d.escape_debug()));
        }
        Ok(())
    }
}

/// A persistent VF count: "this SR-IOV PF has COUNT VFs on DRIVER from
/// boot on" (`nodedev sriov PF COUNT --persistent`), in `ADDRESS.vfs.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VfDefinition {
    /// The PF.
    pub address: String,
    /// The PF's identity when defined: another device there later is refused.
    pub vendor: u16,
    pub device: u16,
    pub count: u16,
    /// As a caller names it: "vfio", "vfio:NAME", "kvm", "xen"; None: the VFs get no driver.
    pub driver: Option<String>,
}

impl VfDefinition {
    fn check(&self, file_stem: &str) -> std::result::Result<(), String> {
        names_its_file(&self.address, file_stem)?;
        if let Some(d) = &self.driver {
            crate::stub::StubRequest::parse(Some(d)).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// The definitions directory.
#[derive(Debug, Clone)]
pub struct Definitions {
    dir: PathBuf,
}

fn sys_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::System(format!("{what} {}: {e}", path.display()))
}

impl Definitions {
    pub fn new(dir: impl Into<PathBuf>) -> Definitions {
        Definitions { dir: dir.into() }
    }

    pub fn location(&self) -> &Path {
        &self.dir
    }

    fn path(&self, address: &str) -> PathBuf {
        self.dir.join(format!("{address}.json"))
    }

    /// Write (or replace) a definition: temporary file (O_EXCL), fsync,
    /// rename, fsync of the directory.
    pub fn put(&self, def: &Definition) -> Result<()> {
        def.check(&def.address).map_err(|e| Error::InvalidArg(format!("definition of {}: {e}", def.address)))?;
        let text = serde_json::to_vec_pretty(def).map_err(|e| Error::Internal(e.to_string()))?;
        self.write_file(&format!("{}.json", def.address), &text)
    }

    /// Write (or replace) a PF's persistent VF count, as `put`.
    pub fn put_vfs(&self, def: &VfDefinition) -> Result<()> {
        def.check(&def.address).map_err(|e| Error::InvalidArg(format!("VF definition of {}: {e}", def.address)))?;
        let text = serde_json::to_vec_pretty(def).map_err(|e| Error::Internal(e.to_string()))?;
        self.write_file(&format!("{}{VFS_SUFFIX}", def.address), &text)
    }

    /// Whether the directory exists (Ok(false): not yet), refusing one
    /// another user owns or can write into: its files decide which devices
    /// leave the host at boot.
    fn trusted_dir(&self) -> Result<bool> {
        let m = match fs::symlink_metadata(&self.dir) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(sys_err("cannot read the definitions directory", &self.dir, e)),
        };
        if !m.is_dir() {
            return Err(Error::System(format!(
                "{} is not a directory (a symlink or file is refused)",
                self.dir.display()
            )));
        }
        untrusted(&m).map_or(Ok(true), |why| {
            Err(Error::System(format!(
                "definitions directory {} {why}: refusing its definitions (they decide which devices leave the host at boot); {}",
                self.dir.display(),
                fix_hint(&m, "755")
            )))
        })
    }

    /// Whether a definition could be written now (the directory is trusted
    /// or can be made): checked before a change that would be made persistent.
    pub fn check_writable(&self) -> Result<()> {
        self.trusted_dir().map(drop)
    }

    fn write_file(&self, name: &str, text: &[u8]) -> Result<()> {
        match self.trusted_dir()? {
            true => {}
            false => fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(&self.dir)
                .map_err(|e| sys_err("cannot create the definitions directory", &self.dir, e))?,
        }
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let _ = fs::remove_file(&tmp); // a leftover of a crash
        let write = || -> std::io::Result<()> {
            let mut f = fs::OpenOptions::new().create_new(true).write(true).mode(0o644).open(&tmp)?;
            f.write_all(text)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            sys_err("cannot write the definition", &path, e)
        })
    }

    /// Remove a definition; Ok(false) when there was none.
    pub fn remove(&self, address: &str) -> Result<bool> {
        self.remove_file(self.path(address))
    }

    /// Remove a PF's persistent VF count; Ok(false) when there was none.
    pub fn remove_vfs(&self, address: &str) -> Result<bool> {
        self.remove_file(self.dir.join(format!("{address}{VFS_SUFFIX}")))
    }

    fn remove_file(&self, path: PathBuf) -> Result<bool> {
        match fs::remove_file(&path) {
            Ok(()) => {
                let _ = fs::File::open(&self.dir).and_then(|d| d.sync_all());
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(sys_err("cannot remove the definition", &path, e)),
        }
    }

    pub fn get(&self, address: &str) -> Result<Option<Definition>> {
        let Some((def, path)) = self.read_file::<Definition>(self.path(address))? else { return Ok(None) };
        def.check(address).map_err(|e| unusable(&path, e))?;
        Ok(Some(def))
    }

    /// A PF's persistent VF count, if defined.
    pub fn get_vfs(&self, address: &str) -> Result<Option<VfDefinition>> {
        let path = self.dir.join(format!("{address}{VFS_SUFFIX}"));
        let Some((def, path)) = self.read_file::<VfDefinition>(path)? else { return Ok(None) };
        def.check(address).map_err(|e| unusable(&path, e))?;
        Ok(Some(def))
    }

    fn read_file<T: serde::de::DeserializeOwned>(&self, path: PathBuf) -> Result<Option<(T, PathBuf)>> {
        if !self.trusted_dir()? {
            return Ok(None);
        }
        // O_NONBLOCK: a FIFO put there must not hang the boot (or udev).
        let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
        let file = match fs::OpenOptions::new().read(true).custom_flags(flags).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(unusable(&path, "it is a symbolic link; definitions are plain files nodedev wrote"))
            }
            Err(e) => return Err(sys_err("cannot read the definition", &path, e)),
        };
        let bad = |why: String| unusable(&path, why);
        let meta = file.metadata().map_err(|e| sys_err("cannot read the definition", &path, e))?;
        if !meta.is_file() {
            return Err(bad("it is not a regular file".to_string()));
        }
        if let Some(why) = untrusted(&meta) {
            return Err(bad(format!("it {why}; if it is genuine, {}", fix_hint(&meta, "644"))));
        }
        if meta.len() > MAX_SIZE {
            return Err(bad(format!("{} bytes, more than a definition can be", meta.len())));
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_SIZE), &mut text)
            .map_err(|e| sys_err("cannot read the definition", &path, e))?;
        let def: T = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        Ok(Some((def, path)))
    }

    /// Every definition, in address order; unusable files are reported, not skipped silently.
    pub fn list(&self) -> Result<(Vec<Definition>, Vec<String>)> {
        self.list_files(".json", |a| self.get(a))
    }

    /// Every persistent VF count, in address order, and the unusable files.
    pub fn list_vfs(&self) -> Result<(Vec<VfDefinition>, Vec<String>)> {
        self.list_files(VFS_SUFFIX, |a| self.get_vfs(a))
    }

    /// The files `ADDRESS<suffix>`, each read with `get`, in address order,
    /// and why each unusable one cannot be used.
    fn list_files<T>(&self, suffix: &str, get: impl Fn(&str) -> Result<Option<T>>) -> Result<(Vec<T>, Vec<String>)> {
        if !self.trusted_dir()? {
            return Ok((Vec::new(), Vec::new()));
        }
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
            Err(e) => return Err(sys_err("cannot list the definitions directory", &self.dir, e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter_map(|n| n.strip_suffix(suffix).filter(|a| PciAddress::parse(a).is_ok()).map(str::to_string))
            .collect();
        names.sort();
        let (mut defs, mut problems) = (Vec::new(), Vec::new());
        for n in names {
            match get(&n) {
                Ok(Some(d)) => defs.push(d),
                Ok(None) => {}
                Err(e) => problems.push(e.to_string()),
            }
        }
        Ok((defs, problems))
    }
}

/// The file name of a PF's VF count after its address.
pub const VFS_SUFFIX: &str = ".vfs.json";

/// Why a file or directory of definitions cannot be trusted: another user
/// owns it or may write it. None: trusted.
fn untrusted(m: &fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if m.uid() != euid {
        return Some(format!("belongs to uid {}, not to this process's user (uid {euid})", m.uid()));
    }
    if m.mode() & 0o022 != 0 {
        return Some(format!("is writable by other users (mode {:o})", m.mode() & 0o7777));
    }
    None
}

/// What a person runs to make a genuine file trusted.
fn fix_hint(m: &fs::Metadata, mode: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if m.uid() != euid {
        format!("chown it to uid {euid} and chmod {mode} it")
    } else {
        format!("chmod {mode} it")
    }
}

fn unusable(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::System(format!("definition {} is unusable: {why}; fix or remove it", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("nodedev-defs-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        p
    }

    fn def(addr: &str) -> Definition {
        Definition {
            address: addr.into(),
            vendor: 0x8086,
            device: 0x10d3,
            stub: "vfio-pci".into(),
            original_driver: Some("e1000e".into()),
        }
    }

    #[test]
    fn definitions_round_trip_and_bad_files_are_reported() {
        let dir = tempdir("rt");
        let defs = Definitions::new(&dir);
        defs.put(&def("0000:03:00.0")).unwrap();
        assert_eq!(defs.get("0000:03:00.0").unwrap(), Some(def("0000:03:00.0")));
        // Wrong address inside, a stub that is none, a symlink, junk: reported.
        fs::write(dir.join("0000:04:00.0.json"), serde_json::to_vec(&def("0000:05:00.0")).unwrap()).unwrap();
        let mut not_stub = def("0000:06:00.0");
        not_stub.stub = "e1000e".into();
        fs::write(dir.join("0000:06:00.0.json"), serde_json::to_vec(&not_stub).unwrap()).unwrap();
        std::os::unix::fs::symlink(dir.join("0000:03:00.0.json"), dir.join("0000:07:00.0.json")).unwrap();
        fs::write(dir.join("0000:08:00.0.json"), b"{").unwrap();
        fs::write(dir.join("notes.txt"), b"ignored").unwrap();
        let (ok, problems) = defs.list().unwrap();
        assert_eq!(ok, vec![def("0000:03:00.0")]);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(defs.put(&not_stub).is_err());
        assert!(defs.remove("0000:03:00.0").unwrap());
        assert!(!defs.remove("0000:03:00.0").unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }
}
