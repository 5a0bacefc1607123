//! Mediated devices: the types a parent offers, the mdevs that exist (in
//! /sys/bus/mdev/devices) or are defined (mdevctl's files, see
//! `crate::mdevctl`), and their lifecycle as libvirt names it: create
//! (transient), define, start, destroy (stop), undefine, autostart.
//!
//! libvirt names an mdev `mdev_UUID_PARENT` with every '-', ':' and '.' as
//! '_' (`mdev_83b8f4f2_509f_382f_3c1e_e6bfe0fa1001_0000_00_02_0`): mdevctl
//! lets one UUID be defined under two parents, so the parent is part of the
//! name. Parents here are PCI functions.

use super::{dev_path, Host, Operation};
use crate::address::PciAddress;
use crate::error::{sysfs_error, Error, Result};
use crate::mdevctl::{attr_name_ok, canonical_uuid, type_id_ok, MdevDefinition, MdevDefinitions};
use crate::sysfs::{link_basename, VfioDevice};
use std::io;

/// One type a parent offers (`mdev_supported_types/ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdevType {
    /// `i915-GVTg_V5_4`
    pub id: String,
    /// The vendor's name for it (the `name` file is optional).
    pub name: Option<String>,
    pub description: Option<String>,
    /// `vfio-pci`
    pub device_api: String,
    pub available_instances: u32,
}

/// Which mdev: its UUID under its parent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MdevId {
    pub parent: PciAddress,
    /// Lower-case, dashed.
    pub uuid: String,
}

impl MdevId {
    /// libvirt's node-device name.
    #[doc(hidden)]
    pub fn node_name(&self) -> String {
        let flat = |s: &str| s.replace(['-', ':', '.'], "_");
        format!("mdev_{}_{}", flat(&self.uuid), flat(&self.parent.to_string()))
    }

    /// The inverse of `node_name`; None for any other shape.
    #[doc(hidden)]
    pub fn from_node_name(name: &str) -> Option<MdevId> {
        let rest = name.strip_prefix("mdev_")?;
        let (u, p) = (rest.get(..36)?, rest.get(37..)?);
        if rest.as_bytes().get(36) != Some(&b'_') {
            return None;
        }
        let mut uuid = u.to_string();
        for i in [8, 13, 18, 23] {
            if uuid.as_bytes()[i] != b'_' {
                return None;
            }
            uuid.replace_range(i..=i, "-");
        }
        let uuid = canonical_uuid(&uuid).filter(|c| *c == uuid)?;
        let parent = PciAddress::parse(&format!("pci_{p}")).ok()?;
        let id = MdevId { parent, uuid };
        (id.node_name() == name).then_some(id)
    }
}

/// What a caller asks for: an mdev of a type on a parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdevConfig {
    pub parent: PciAddress,
    pub type_id: String,
    /// None: a new random one.
    pub uuid: Option<String>,
    pub attrs: Vec<(String, String)>,
}

/// An mdev as the host knows it: live, defined, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdevInfo {
    pub id: MdevId,
    /// The live device's type, else the definition's.
    pub type_id: String,
    pub active: bool,
    /// The live device's directory: /sys/devices/.../PARENT/UUID.
    pub sysfs_path: Option<String>,
    pub driver: Option<String>,
    pub iommu_group: Option<u32>,
    /// The mdevctl definition, when persistent.
    pub definition: Option<MdevDefinition>,
}

impl MdevInfo {
    /// A defined mdev that is not live.
    fn inactive(id: MdevId, d: MdevDefinition) -> MdevInfo {
        MdevInfo {
            id,
            type_id: d.mdev_type.clone(),
            active: false,
            sysfs_path: None,
            driver: None,
            iommu_group: None,
            definition: Some(d),
        }
    }

    pub fn persistent(&self) -> bool {
        self.definition.is_some()
    }

    pub fn autostart(&self) -> bool {
        self.definition.as_ref().is_some_and(|d| d.autostart)
    }
}

/// A random (version 4) UUID from the kernel's generator.
fn random_uuid() -> Result<String> {
    let mut b = [0u8; 16];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        return Err(Error::System(format!("cannot make a UUID: getrandom: {}", io::Error::last_os_error())));
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
}

fn mdev_path(uuid: &str, attr: &str) -> String {
    if attr.is_empty() {
        format!("bus/mdev/devices/{uuid}")
    } else {
        format!("bus/mdev/devices/{uuid}/{attr}")
    }
}

/// The mdev a checked config names: its UUID, or a new random one.
fn mdev_id_of(cfg: &MdevConfig) -> Result<MdevId> {
    let uuid = match &cfg.uuid {
        Some(u) => canonical_uuid(u).expect("checked by check_config"),
        None => random_uuid()?,
    };
    Ok(MdevId { parent: cfg.parent, uuid })
}

impl Host {
    fn mdev_definitions(&self) -> Result<&MdevDefinitions> {
        self.options.mdev_definitions.as_ref().ok_or_else(|| {
            Error::Unsupported(
                "this connection keeps no mediated-device definitions (nodedev:///system keeps them in /etc/mdevctl.d as mdevctl does; other URIs need confdir=DIR, which keeps them in DIR/mdevctl.d)"
                    .to_string(),
            )
        })
    }

    /// The types the device offers as an mdev parent (empty: it is none).
    #[doc(hidden)]
    pub fn mdev_types(&self, addr: &PciAddress) -> Result<Vec<MdevType>> {
        let types = self.mdev_types_if_parent(addr)?;
        if types.is_empty() {
            self.require(addr)?;
        }
        Ok(types)
    }

    /// `mdev_types` of a device known to exist: one failed lookup when it
    /// is no parent (what `device_info_placed` pays for every device).
    pub(crate) fn mdev_types_if_parent(&self, addr: &PciAddress) -> Result<Vec<MdevType>> {
        let base = dev_path(addr, "mdev_supported_types");
        let ids = match self.sysfs.list_dir(&base) {
            Ok(ids) => ids,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(sysfs_error("listing", &base, &e)),
        };
        let mut out = Vec::new();
        for id in ids {
            let read = |f: &str| self.sysfs.read(&format!("{base}/{id}/{f}")).ok();
            let line = |f: &str| read(f).map(|s| s.trim_end().to_string());
            let Some(available) = line("available_instances").and_then(|s| s.parse().ok()) else { continue };
            out.push(MdevType {
                name: line("name").filter(|s| !s.is_empty()),
                description: read("description").map(|s| s.trim_end().to_string()).filter(|s| !s.is_empty()),
                device_api: line("device_api").unwrap_or_default(),
                available_instances: available,
                id,
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Every mdev parent now registered (`class/mdev_bus`), in address order.
    #[doc(hidden)]
    pub fn mdev_parents(&self) -> Vec<PciAddress> {
        let mut out: Vec<PciAddress> = self
            .sysfs
            .list_dir("class/mdev_bus")
            .unwrap_or_default()
            .iter()
            .filter_map(|n| PciAddress::parse(n).ok())
            .collect();
        out.sort();
        out
    }

    /// A live mdev, read from its sysfs directory; None when there is none.
    fn live_mdev(&self, uuid: &str) -> Option<(MdevId, String, Option<String>, Option<u32>, String)> {
        let canonical = self.sysfs.read_link(&mdev_path(uuid, "")).ok()?;
        let rel = canonical.trim_start_matches("../");
        let parent = PciAddress::parse(rel.rsplit('/').nth(1)?).ok()?;
        let type_id = link_basename(&self.sysfs.read_link(&mdev_path(uuid, "mdev_type")).ok()?).to_string();
        let driver = self.sysfs.read_link(&mdev_path(uuid, "driver")).ok().map(|t| link_basename(&t).to_string());
        let group =
            self.sysfs.read_link(&mdev_path(uuid, "iommu_group")).ok().and_then(|t| link_basename(&t).parse().ok());
        Some((MdevId { parent, uuid: uuid.to_string() }, type_id, driver, group, format!("/sys/{rel}")))
    }

    /// UUIDs of the live mdevs.
    fn live_uuids(&self) -> Vec<String> {
        self.sysfs
            .list_dir("bus/mdev/devices")
            .unwrap_or_default()
            .into_iter()
            .filter(|n| canonical_uuid(n).as_deref() == Some(n.as_str()))
            .collect()
    }

    /// Every mdev, live or defined, by parent then UUID. Unusable definition
    /// files are left out here (`nodedev apply` reports them).
    #[doc(hidden)]
    pub fn mdevs(&self) -> Result<Vec<MdevInfo>> {
        let mut out: Vec<MdevInfo> = Vec::new();
        for u in self.live_uuids() {
            if let Some((id, type_id, driver, iommu_group, path)) = self.live_mdev(&u) {
                out.push(MdevInfo {
                    id,
                    type_id,
                    active: true,
                    sysfs_path: Some(path),
                    driver,
                    iommu_group,
                    definition: None,
                });
            }
        }
        if let Some(defs) = &self.options.mdev_definitions {
            for d in defs.list()?.0 {
                let id = MdevId { parent: d.parent, uuid: d.uuid.clone() };
                match out.iter_mut().find(|m| m.id == id) {
                    Some(m) => m.definition = Some(d),
                    None => out.push(MdevInfo::inactive(id, d)),
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn no_mdev(id: &MdevId) -> Error {
        Error::NoDevice(format!(
            "no mediated device {} ({}) on this host, live or defined: 'nodedev mdev list' shows those there are",
            id.uuid,
            id.node_name()
        ))
    }

    /// One mdev, live or defined.
    #[doc(hidden)]
    pub fn mdev(&self, id: &MdevId) -> Result<MdevInfo> {
        let definition = match &self.options.mdev_definitions {
            Some(defs) => defs.get(&id.parent, &id.uuid)?,
            None => None,
        };
        match self.live_mdev(&id.uuid).filter(|l| l.0 == *id) {
            Some((id, type_id, driver, iommu_group, path)) => {
                Ok(MdevInfo { id, type_id, active: true, sysfs_path: Some(path), driver, iommu_group, definition })
            }
            None => Ok(MdevInfo::inactive(id.clone(), definition.ok_or_else(|| Self::no_mdev(id))?)),
        }
    }

    /// An mdev by libvirt's name, or by its UUID alone when that is unambiguous.
    #[doc(hidden)]
    pub fn mdev_lookup(&self, name: &str) -> Result<MdevId> {
        if let Some(id) = MdevId::from_node_name(name) {
            self.mdev(&id)?;
            return Ok(id);
        }
        let Some(uuid) = canonical_uuid(name) else {
            return Err(Error::NoDevice(format!(
                "'{}' names no mediated device: give its UUID or libvirt's name (mdev_UUID_PARENT)",
                name.escape_debug()
            )));
        };
        let matching: Vec<MdevId> = self.mdevs()?.into_iter().filter(|m| m.id.uuid == uuid).map(|m| m.id).collect();
        match matching.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Error::NoDevice(format!("no mediated device {uuid} on this host, live or defined"))),
            many => Err(Error::InvalidArg(format!(
                "{uuid} is defined under {} parents: name it with its parent ({})",
                many.len(),
                many.iter().map(MdevId::node_name).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// Refuse `what` (an unbind) of a parent that has live mediated
    /// devices: the kernel would remove them with it, and wait for any a
    /// guest holds.
    pub(crate) fn check_no_live_mdevs(&self, parent: &PciAddress, what: &str) -> Result<()> {
        if !self.sysfs.exists(&dev_path(parent, "mdev_supported_types")) {
            return Ok(());
        }
        let live: Vec<String> = self
            .live_uuids()
            .into_iter()
            .filter(|u| self.live_mdev(u).is_some_and(|l| l.0.parent == *parent))
            .collect();
        if live.is_empty() {
            return Ok(());
        }
        Err(Error::OperationInvalid(format!(
            "cannot {what} {parent}: it is the parent of {} live mediated device(s) ({}), which leaving its driver would destroy; remove them first ('nodedev mdev remove UUID', virNodeDeviceDestroy)",
            live.len(),
            live.join(", ")
        )))
    }

    /// The lock an mdev operation takes: its parent's IOMMU group (see
    /// `locking.rs`). What an mdev races with is its parent changing driver
    /// (detach, reattach, reset run under that group's lock and refuse a
    /// parent with live mdevs), and another mdev operation on that parent;
    /// the mdev's own IOMMU group is new and no PCI device's, so no other
    /// operation's lock set changes, and the kernel itself refuses a UUID
    /// taken on another parent (EEXIST). Operations on other groups go on
    /// meanwhile, where the store lock would stop the whole host for as long
    /// as a removal waits (up to the write timeout).
    fn lock_mdev_parent(&self, parent: &PciAddress) -> Result<crate::state::StateLock> {
        self.lock_devices(&[*parent])
    }

    /// Refuse a change on a read-only connection or a locked-down host.
    fn check_mdev_writable(&self, parent: &PciAddress, what: &str) -> Result<()> {
        self.check_writable(parent, what)
    }

    fn check_config(&self, cfg: &MdevConfig) -> Result<()> {
        if !type_id_ok(&cfg.type_id) {
            return Err(Error::InvalidArg(format!("'{}' is not an mdev type id", cfg.type_id.escape_debug())));
        }
        if let Some(u) = &cfg.uuid {
            if canonical_uuid(u).is_none() {
                return Err(Error::InvalidArg(format!(
                    "'{}' is not a UUID (like 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001)",
                    u.escape_debug()
                )));
            }
        }
        for (n, v) in &cfg.attrs {
            if !attr_name_ok(n) {
                return Err(Error::InvalidArg(format!("'{}' is not an mdev attribute name", n.escape_debug())));
            }
            if v.contains('\0') || v.len() > 4096 {
                return Err(Error::InvalidArg(format!("the value of attribute {n} is not a sysfs value")));
            }
        }
        Ok(())
    }

    /// Create a live mdev (not persistent). The parent must offer the type
    /// with an instance left, and no live mdev may have the UUID.
    #[doc(hidden)]
    pub fn mdev_create(&self, cfg: &MdevConfig) -> Result<MdevId> {
        self.check_mdev_writable(&cfg.parent, "create a mediated device on")?;
        self.check_config(cfg)?;
        self.check_policy("create a mediated device on", &cfg.parent)?;
        let id = mdev_id_of(cfg)?;
        self.authorize_mdev(Operation::MdevCreate, &id, Some(&cfg.type_id))?;
        let _lock = self.lock_mdev_parent(&id.parent)?;
        self.start_locked(&id, &cfg.type_id, &cfg.attrs)?;
        Ok(id)
    }

    fn start_locked(&self, id: &MdevId, type_id: &str, attrs: &[(String, String)]) -> Result<()> {
        let parent = &id.parent;
        self.require(parent)?;
        if let Some((live, ..)) = self.live_mdev(&id.uuid) {
            return Err(Error::OperationInvalid(if live == *id {
                format!("mediated device {} is already active", id.uuid)
            } else {
                format!(
                    "UUID {} is taken by a live mediated device on {}: a UUID is unique on a host",
                    id.uuid, live.parent
                )
            }));
        }
        let types = self.mdev_types(parent)?;
        if types.is_empty() {
            return Err(Error::OperationFailed(format!(
                "{parent} is not a mediated-device parent now (no mdev_supported_types: its driver, {}, registers none)",
                self.driver(parent)?.as_deref().unwrap_or("none")
            )));
        }
        let Some(ty) = types.iter().find(|t| t.id == type_id) else {
            return Err(Error::OperationFailed(format!(
                "{parent} offers no mdev type '{type_id}'; its types: {}",
                types.iter().map(|t| t.id.as_str()).collect::<Vec<_>>().join(", ")
            )));
        };
        if ty.available_instances == 0 {
            return Err(Error::OperationFailed(format!(
                "{parent} has no instance of {type_id} left (available_instances 0): remove another mdev of it first"
            )));
        }
        let create = format!("{}/mdev_supported_types/{type_id}/create", dev_path(parent, ""));
        self.sysfs.write(&create, &id.uuid).map_err(|e| match e.raw_os_error() {
            Some(libc::EEXIST) => Error::OperationInvalid(format!(
                "the kernel has a mediated device {} already (EEXIST): a UUID is unique on a host",
                id.uuid
            )),
            _ => sysfs_error(&format!("creating mdev {} by writing to", id.uuid), &create, &e),
        })?;
        for (n, v) in attrs {
            if let Err(e) = self.write(&mdev_path(&id.uuid, n), v) {
                // Half configured is not what was asked: take it away again.
                let undo = self.write(&mdev_path(&id.uuid, "remove"), "1");
                return Err(e.context_after(match undo {
                    Ok(()) => format!("mdev {} removed again", id.uuid),
                    Err(u) => format!("and removing mdev {} again failed too: {u}", id.uuid),
                }));
            }
        }
        Ok(())
    }

    /// Stop (remove) a live mdev. Refused while a process holds its IOMMU
    /// group through VFIO (a guest uses it): the kernel would wait for it.
    #[doc(hidden)]
    pub fn mdev_destroy(&self, id: &MdevId) -> Result<()> {
        self.check_mdev_writable(&id.parent, "remove a mediated device of")?;
        // Only the live device matters here: an unusable definition file
        // of it must not keep it from being removed.
        let live = || self.live_mdev(&id.uuid).filter(|l| l.0 == *id).map(|l| l.3);
        let not_active = || -> Error {
            // As libvirt: an unknown device is "no such device".
            match self.mdev(id) {
                Err(e) => e,
                Ok(_) => Error::OperationInvalid(format!(
                    "mediated device {} is not active (defined only): nothing to stop",
                    id.uuid
                )),
            }
        };
        if live().is_none() {
            return Err(not_active());
        }
        self.authorize_mdev(Operation::MdevDestroy, id, None)?;
        let _lock = self.lock_mdev_parent(&id.parent)?;
        let Some(iommu_group) = live() else { return Err(not_active()) };
        let name = id.uuid.clone();
        // Its VFIO cdev too (Linux >= 6.6): an iommufd VMM opens only that.
        let cdev = self
            .sysfs
            .list_dir(&mdev_path(&name, "vfio-dev"))
            .ok()
            .and_then(|names| names.into_iter().find(|n| n.starts_with("vfio")));
        let dev = VfioDevice { address: &name, group: iommu_group, cdev: cdev.as_deref() };
        let scan = self.sysfs.vfio_holders(&dev).map_err(|e| {
            Error::OperationFailed(format!(
                "cannot tell whether a process holds mdev {name} through VFIO: reading /proc failed: {e}"
            ))
        })?;
        if !scan.holders.is_empty() {
            let who: Vec<String> = scan
                .holders
                .iter()
                .map(|h| format!("pid {} ({}) holds {}", h.pid, h.comm, h.kind.describe(&dev)))
                .collect();
            return Err(Error::OperationInvalid(format!(
                "mediated device {name} is in use: {}; stop it first, the kernel would keep the removal waiting until it lets go",
                who.join(", ")
            )));
        }
        let path = mdev_path(&name, "remove");
        match self.sysfs.write_bounded(&path, "1", self.options.write_timeout) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(Error::Timeout(format!(
                "removing mediated device {name} did not finish within {:.1} s: a process no one can see (another pid namespace) may hold it; the removal goes on in the background",
                self.options.write_timeout.as_secs_f64()
            ))),
            Err(e) => Err(sysfs_error("writing \"1\" to", &path, &e)),
        }
    }

    /// Write a persistent definition (mdevctl's file). An existing
    /// definition of the same UUID under the parent is replaced; its
    /// autostart is kept unless `autostart` says otherwise.
    #[doc(hidden)]
    pub fn mdev_define(&self, cfg: &MdevConfig, autostart: Option<bool>) -> Result<MdevId> {
        let defs = self.mdev_definitions()?;
        self.check_mdev_writable(&cfg.parent, "define a mediated device on")?;
        self.check_config(cfg)?;
        // A definition is a device to create later (at boot, unattended):
        // refused now where creating it would be.
        self.check_policy("define a mediated device on", &cfg.parent)?;
        let id = mdev_id_of(cfg)?;
        self.authorize_mdev(Operation::MdevDefine, &id, Some(&cfg.type_id))?;
        let _lock = self.lock_mdev_parent(&id.parent)?;
        let old = defs.get(&id.parent, &id.uuid)?;
        if let Some((live, type_id, ..)) = self.live_mdev(&id.uuid) {
            if live == id && type_id != cfg.type_id {
                return Err(Error::OperationInvalid(format!(
                    "mediated device {} is active with type {type_id}: a definition of type {} would not describe it; stop it first",
                    id.uuid, cfg.type_id
                )));
            }
        }
        let def = MdevDefinition {
            uuid: id.uuid.clone(),
            parent: id.parent,
            mdev_type: cfg.type_id.clone(),
            autostart: autostart.unwrap_or_else(|| old.as_ref().is_some_and(|d| d.autostart)),
            attrs: cfg.attrs.clone(),
            other: old.map(|d| d.other).unwrap_or_default(),
        };
        defs.put(&def)?;
        Ok(id)
    }

    /// Remove the definition (a live device stays, now transient).
    #[doc(hidden)]
    pub fn mdev_undefine(&self, id: &MdevId) -> Result<()> {
        let defs = self.mdev_definitions()?;
        self.check_mdev_writable(&id.parent, "undefine a mediated device of")?;
        // An unusable definition file is still one to remove (as mdevctl undefine does).
        let live = self.live_mdev(&id.uuid).is_some_and(|l| l.0 == *id);
        if !live && matches!(defs.get(&id.parent, &id.uuid), Ok(None)) {
            return Err(Self::no_mdev(id));
        }
        self.authorize_mdev(Operation::MdevUndefine, id, None)?;
        let _lock = self.lock_mdev_parent(&id.parent)?;
        if !defs.remove(&id.parent, &id.uuid)? {
            return Err(Error::OperationInvalid(format!("mediated device {} is not defined", id.uuid)));
        }
        Ok(())
    }

    /// Start a defined, inactive mdev from its definition.
    #[doc(hidden)]
    pub fn mdev_start(&self, id: &MdevId) -> Result<()> {
        self.check_mdev_writable(&id.parent, "start a mediated device on")?;
        // As libvirt: "already active" before anyone is asked.
        let info = self.mdev(id)?;
        if info.active {
            return Err(Error::OperationInvalid(format!("mediated device {} is already active", id.uuid)));
        }
        self.check_policy("start a mediated device on", &id.parent)?;
        let asked = info.definition.as_ref().map(|d| d.mdev_type.clone());
        self.authorize_mdev(Operation::MdevCreate, id, asked.as_deref())?;
        let _lock = self.lock_mdev_parent(&id.parent)?;
        // Read again under the lock: another caller may have started,
        // removed or redefined it meanwhile.
        let info = self.mdev(id)?;
        if info.active {
            return Err(Error::OperationInvalid(format!("mediated device {} is already active", id.uuid)));
        }
        let def = info.definition.expect("an inactive mdev is a defined one");
        if Some(&def.mdev_type) != asked.as_ref() {
            return Err(Error::OperationInvalid(format!(
                "mediated device {} was redefined (type {}) while this start waited: start it again",
                id.uuid, def.mdev_type
            )));
        }
        self.start_locked(id, &def.mdev_type, &def.attrs)
    }

    /// Set whether a defined mdev starts at boot.
    #[doc(hidden)]
    pub fn mdev_set_autostart(&self, id: &MdevId, autostart: bool) -> Result<()> {
        let defs = self.mdev_definitions()?;
        self.check_mdev_writable(&id.parent, "change the autostart of a mediated device of")?;
        let info = self.mdev(id)?;
        if autostart {
            // Autostart creates it at boot, unattended.
            self.check_policy("autostart a mediated device on", &id.parent)?;
        }
        let asked = info.definition.as_ref().map(|d| d.mdev_type.as_str());
        self.authorize_mdev(Operation::MdevAutostart, id, asked)?;
        let _lock = self.lock_mdev_parent(&id.parent)?;
        let Some(mut def) = defs.get(&id.parent, &id.uuid)? else {
            self.mdev(id)?; // no such mdev at all: say that
            return Err(Error::OperationInvalid(format!(
                "cannot set autostart for transient mediated device {}: define it first",
                id.uuid
            )));
        };
        // Read under the lock: redefined with another type while the
        // callback was asked is a change nobody authorized (as start).
        if Some(def.mdev_type.as_str()) != asked {
            return Err(Error::OperationInvalid(format!(
                "mediated device {} was redefined (type {}) while this autostart change waited: set it again",
                id.uuid, def.mdev_type
            )));
        }
        if def.autostart != autostart {
            def.autostart = autostart;
            defs.put(&def)?;
        }
        Ok(())
    }

    /// Start every autostart definition not yet live (a boot unit runs
    /// this, as mdevctl's does). Unusable files are reported.
    #[doc(hidden)]
    pub fn apply_mdevs(&self) -> Result<Vec<super::Applied>> {
        let Some(defs) = &self.options.mdev_definitions else { return Ok(Vec::new()) };
        let (list, problems) = defs.list()?;
        let mut out: Vec<super::Applied> = problems
            .into_iter()
            .map(|p| super::Applied { address: "-".into(), outcome: p, done: false, waiting: false })
            .collect();
        for d in list.into_iter().filter(|d| d.autostart) {
            let id = MdevId { parent: d.parent, uuid: d.uuid.clone() };
            let address = format!("mdev {} on {}", d.uuid, d.parent);
            let parent_present = self.sysfs.exists(&dev_path(&d.parent, ""));
            let (outcome, done, waiting) = match self.live_mdev(&d.uuid) {
                Some((live, ..)) if live == id => ("active already".to_string(), true, false),
                // Not failures at boot: the parent (or its driver's module)
                // may come later; the definition is kept (as mdevctl does).
                _ if !parent_present => (
                    format!("absent: parent {} is not present; the definition is kept for when it appears", d.parent),
                    false,
                    true,
                ),
                _ if self.mdev_types_if_parent(&d.parent).is_ok_and(|t| t.is_empty()) => (
                    format!(
                        "waiting: {} is not a mediated-device parent yet ({}); run 'nodedev apply' again once it is",
                        d.parent,
                        match self.driver(&d.parent).ok().flatten() {
                            Some(drv) => format!("its driver, {drv}, has not registered it"),
                            None =>
                                "it has no driver yet: the module of the driver that offers its types may not be loaded"
                                    .into(),
                        }
                    ),
                    false,
                    true,
                ),
                _ => match self.mdev_start(&id) {
                    Ok(()) => (format!("started ({})", d.mdev_type), true, false),
                    Err(e) => (format!("not started: {e}"), false, false),
                },
            };
            out.push(super::Applied { address, outcome, done, waiting });
        }
        Ok(out)
    }
}
