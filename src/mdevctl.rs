//! Persistent mediated devices in mdevctl's own files, so that mdevctl and
//! nodedev see the same definitions: one JSON file per device,
//! `DIR/PARENT/UUID` (DIR is /etc/mdevctl.d on the live host, PARENT the
//! parent's sysfs name `0000:00:02.0`), holding
//! `{"mdev_type": "i915-GVTg_V5_4", "start": "auto"|"manual", "attrs": [{"NAME": "VALUE"}, ...]}`.
//! Keys mdevctl may add later are kept as they are when nodedev rewrites a
//! file (autostart), and ignored otherwise. Writes are atomic.

use crate::address::PciAddress;
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const SYSTEM_MDEVCTL_DIR: &str = "/etc/mdevctl.d";

/// A definition file is small; anything larger is not mdevctl's.
const MAX_SIZE: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdevDefinition {
    pub uuid: String,
    pub parent: PciAddress,
    pub mdev_type: String,
    /// `"start": "auto"`: started at boot (`nodedev apply`, mdevctl's unit).
    pub autostart: bool,
    /// Vendor attributes, written in this order after the device is created.
    pub attrs: Vec<(String, String)>,
    /// Keys of the file nodedev does not interpret, kept on rewrite.
    pub other: Map<String, Value>,
}

/// A UUID as the kernel prints it: 36 characters, lower-case hex and dashes.
pub fn canonical_uuid(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let ok = b.iter().enumerate().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => *c == b'-',
        _ => c.is_ascii_hexdigit(),
    });
    ok.then(|| s.to_ascii_lowercase())
}

/// A vendor attribute name: a sysfs file name directly in the mdev's directory.
pub fn attr_name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !matches!(n, "remove" | "uevent" | "driver" | "iommu_group" | "mdev_type" | "subsystem" | "power")
}

/// A type id: the directory name under `mdev_supported_types`.
pub fn type_id_ok(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
        && t != "."
        && t != ".."
}

impl MdevDefinition {
    fn from_json(uuid: &str, parent: PciAddress, text: &str) -> std::result::Result<MdevDefinition, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let Value::Object(mut map) = v else { return Err("not a JSON object".into()) };
        let mdev_type = match map.remove("mdev_type") {
            Some(Value::String(t)) if type_id_ok(&t) => t,
            Some(other) => return Err(format!("mdev_type {other} is not a type id")),
            None => return Err("no mdev_type".into()),
        };
        let autostart = match map.remove("start") {
            Some(Value::String(s)) if s == "auto" => true,
            Some(Value::String(s)) if s == "manual" => false,
            None => false,
            Some(other) => return Err(format!("start {other} is neither \"auto\" nor \"manual\"")),
        };
        let mut attrs = Vec::new();
        match map.remove("attrs") {
            None => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let Value::Object(pair) = item else { return Err("an attrs entry is not an object".into()) };
                    for (k, v) in pair {
                        let Value::String(v) = v else { return Err(format!("attribute {k} is not a string")) };
                        if !attr_name_ok(&k) {
                            return Err(format!("'{}' is not an attribute name", k.escape_debug()));
                        }
                        attrs.push((k, v));
                    }
                }
            }
            Some(_) => return Err("attrs is not a list".into()),
        }
        Ok(MdevDefinition { uuid: uuid.to_string(), parent, mdev_type, autostart, attrs, other: map })
    }

    fn to_json(&self) -> Vec<u8> {
        let mut map = self.other.clone();
        map.insert("mdev_type".into(), Value::String(self.mdev_type.clone()));
        map.insert("start".into(), Value::String(if self.autostart { "auto" } else { "manual" }.into()));
        let attrs = self
            .attrs
            .iter()
            .map(|(k, v)| {
                let mut m = Map::new();
                m.insert(k.clone(), Value::String(v.clone()));
                Value::Object(m)
            })
            .collect();
        map.insert("attrs".into(), Value::Array(attrs));
        let mut text = serde_json::to_vec_pretty(&Value::Object(map)).unwrap_or_default();
        text.push(b'\n');
        text
    }
}

/// An mdevctl definitions directory.
#[derive(Debug, Clone)]
pub struct MdevDefinitions {
    dir: PathBuf,
}

fn sys_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::System(format!("{what} {}: {e}", path.display()))
}

impl MdevDefinitions {
    pub fn new(dir: impl Into<PathBuf>) -> MdevDefinitions {
        MdevDefinitions { dir: dir.into() }
    }

    pub fn location(&self) -> &Path {
        &self.dir
    }

    /// The parent's directory when it is a real one: Ok(None) when absent;
    /// a symlink (or file) there is refused, so that no definition is read
    /// from, or removed in, a directory elsewhere.
    fn parent_dir(&self, parent: &PciAddress) -> Result<Option<PathBuf>> {
        let dir = self.dir.join(parent.to_string());
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(Some(dir)),
            Ok(_) => Err(Error::System(format!(
                "{} is not a directory (a symlink or file is refused); fix or remove it",
                dir.display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(sys_err("cannot read the mdev definitions directory", &dir, e)),
        }
    }

    fn path(&self, parent: &PciAddress, uuid: &str) -> PathBuf {
        self.dir.join(parent.to_string()).join(uuid)
    }

    fn ensure_dir(dir: &Path) -> Result<()> {
        match fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(Error::System(format!("{} is not a directory (a symlink or file is refused)", dir.display()))),
            Err(_) => fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(|e| sys_err("cannot create the mdev definitions directory", dir, e)),
        }
    }

    /// Write (or replace) a definition: temporary file, fsync, rename, fsync of the directory.
    pub fn put(&self, def: &MdevDefinition) -> Result<()> {
        Self::ensure_dir(&self.dir)?;
        let dir = self.dir.join(def.parent.to_string());
        Self::ensure_dir(&dir)?;
        let path = dir.join(&def.uuid);
        let tmp = dir.join(format!(".{}.tmp", def.uuid));
        let text = def.to_json();
        let _ = fs::remove_file(&tmp);
        let write = || -> std::io::Result<()> {
            let mut f = fs::OpenOptions::new().create_new(true).write(true).mode(0o644).open(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            fs::File::open(&dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            sys_err("cannot write the mdev definition", &path, e)
        })
    }

    /// Remove a definition; Ok(false) when there was none.
    pub fn remove(&self, parent: &PciAddress, uuid: &str) -> Result<bool> {
        if self.parent_dir(parent)?.is_none() {
            return Ok(false);
        }
        let path = self.path(parent, uuid);
        match fs::remove_file(&path) {
            Ok(()) => {
                let dir = self.dir.join(parent.to_string());
                // mdevctl leaves empty parent directories; so do we, but synced.
                let _ = fs::File::open(&dir).and_then(|d| d.sync_all());
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(sys_err("cannot remove the mdev definition", &path, e)),
        }
    }

    pub fn get(&self, parent: &PciAddress, uuid: &str) -> Result<Option<MdevDefinition>> {
        if self.parent_dir(parent)?.is_none() {
            return Ok(None);
        }
        let path = self.path(parent, uuid);
        // O_NONBLOCK: a FIFO put there opens without waiting for a writer
        // (and is refused below); a symlink is refused by O_NOFOLLOW.
        let file = match fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(sys_err("cannot read the mdev definition", &path, e)),
        };
        let bad = |why: String| {
            Error::System(format!("mdev definition {} is unusable: {why}; fix or remove it", path.display()))
        };
        match file.metadata() {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(bad("it is not a regular file (a FIFO, device or directory is not mdevctl's)".into())),
            Err(e) => return Err(sys_err("cannot read the mdev definition", &path, e)),
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_SIZE + 1), &mut text)
            .map_err(|e| sys_err("cannot read the mdev definition", &path, e))?;
        if text.len() as u64 > MAX_SIZE {
            return Err(bad("larger than a definition can be".into()));
        }
        MdevDefinition::from_json(uuid, *parent, &text).map(Some).map_err(bad)
    }

    /// Every definition, by parent then UUID; unusable files are reported.
    pub fn list(&self) -> Result<(Vec<MdevDefinition>, Vec<String>)> {
        let read = |dir: &Path| -> Result<Vec<String>> {
            match fs::read_dir(dir) {
                Ok(e) => Ok(e.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(sys_err("cannot list the mdev definitions directory", dir, e)),
            }
        };
        let mut parents: Vec<PciAddress> =
            read(&self.dir)?.iter().filter_map(|n| PciAddress::parse(n).ok().filter(|a| a.to_string() == *n)).collect();
        parents.sort();
        let (mut defs, mut problems) = (Vec::new(), Vec::new());
        for p in parents {
            let dir = match self.parent_dir(&p) {
                Ok(Some(dir)) => dir,
                Ok(None) => continue,
                Err(e) => {
                    problems.push(e.to_string());
                    continue;
                }
            };
            let mut uuids: Vec<String> =
                read(&dir)?.into_iter().filter(|n| canonical_uuid(n).as_deref() == Some(n.as_str())).collect();
            uuids.sort();
            for u in uuids {
                match self.get(&p, &u) {
                    Ok(Some(d)) => defs.push(d),
                    Ok(None) => {}
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
        Ok((defs, problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mdevctl_files_round_trip_and_keep_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("nodedev-mdevctl-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let defs = MdevDefinitions::new(&dir);
        let parent = PciAddress::parse("0000:00:02.0").unwrap();
        let uuid = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001";
        // As mdevctl writes it, with a key nodedev does not know.
        fs::create_dir_all(dir.join("0000:00:02.0")).unwrap();
        fs::write(
            dir.join("0000:00:02.0").join(uuid),
            r#"{"mdev_type": "i915-GVTg_V5_4", "start": "manual", "attrs": [{"a": "1"}, {"b": "2"}], "x-future": 7}"#,
        )
        .unwrap();
        let mut d = defs.get(&parent, uuid).unwrap().unwrap();
        assert_eq!(d.mdev_type, "i915-GVTg_V5_4");
        assert!(!d.autostart);
        assert_eq!(d.attrs, vec![("a".into(), "1".into()), ("b".into(), "2".into())]);
        d.autostart = true;
        defs.put(&d).unwrap();
        let text = fs::read_to_string(dir.join("0000:00:02.0").join(uuid)).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["start"], "auto");
        assert_eq!(v["x-future"], 7);
        assert_eq!(v["attrs"][1]["b"], "2");
        // Junk is reported, not skipped silently; other names are not ours.
        fs::write(dir.join("0000:00:02.0").join("11111111-2222-3333-4444-555555555555"), "{").unwrap();
        fs::write(dir.join("0000:00:02.0").join("README"), "x").unwrap();
        let (ok, problems) = defs.list().unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(defs.remove(&parent, uuid).unwrap());
        assert!(!defs.remove(&parent, uuid).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }
}
