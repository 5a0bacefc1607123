//! Mediated devices (VFIO mdev) of the simulated kernel, as
//! drivers/vfio/mdev and Documentation/driver-api/vfio-mediated-device.rst
//! describe them.
//!
//! A parent is a PCI function whose driver registered with the mdev core:
//! while bound to that driver it has `mdev_supported_types/TYPE/` with
//! `name`, `description`, `device_api`, `available_instances`, `create`
//! and `devices/`, and it is listed in `class/mdev_bus`. Writing a UUID to
//! `create` makes a child device `PARENT/UUID` (also
//! `bus/mdev/devices/UUID`), bound to the vfio_mdev driver, in an IOMMU
//! group of its own (VFIO's emulated IOMMU: the lowest free group number).
//! Its `remove` file takes it away. The parent's driver keeps a pool of
//! resources: each type costs some of it, `available_instances` is what is
//! left divided by the cost, and a create beyond it fails in the driver's
//! probe with ENOSPC. UUIDs are unique across every parent (EEXIST). When
//! the parent leaves its driver (unbind, removal), its mdevs go with it.

use super::tree::{Entry, File};
use super::{err, kstrtoul, Addr, Kernel};
use std::io;

/// The mdev bus driver every simulated mdev binds to.
pub(super) const MDEV_DRIVER: &str = "vfio_mdev";

const TYPE_FILES: [&str; 5] = ["available_instances", "create", "description", "device_api", "name"];
const MDEV_FILES: [&str; 2] = ["remove", "uevent"];

#[derive(Debug, Clone)]
pub(super) struct MdevType {
    /// The directory name, "DRIVER-NAME" as the kernel makes it (`i915-GVTg_V5_4`).
    pub id: String,
    pub name: String,
    pub description: String,
    pub device_api: String,
    /// Units of the parent's pool one instance takes.
    pub cost: u32,
}

#[derive(Debug, Clone)]
pub(super) struct MdevParent {
    /// The driver that registers the parent with the mdev core.
    pub driver: String,
    /// The pool the types draw from.
    pub capacity: u32,
    pub types: Vec<MdevType>,
}

#[derive(Debug, Clone)]
pub(super) struct Mdev {
    pub uuid: u128,
    pub parent: Addr,
    pub type_index: usize,
    pub group: u32,
}

/// The VFIO cdev name of an mdev (`vfioN`; numbered here by its group).
pub(super) fn mdev_cdev(m: &Mdev) -> String {
    format!("vfio{}", m.group)
}

/// `uuid_parse`: 36 characters, dashes at 8, 13, 18 and 23, hex elsewhere.
pub(super) fn parse_uuid(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut v: u128 = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        v = (v << 4) | u128::from((c as char).to_digit(16)?);
    }
    Some(v)
}

/// `%pUl`: lower-case, dashed.
pub(super) fn format_uuid(u: u128) -> String {
    let h = format!("{u:032x}");
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

impl Kernel {
    /// The parent's registration, while its registering driver has it.
    pub(super) fn mdev_parent(&self, a: Addr) -> Option<&MdevParent> {
        let p = self.mdev_parents.get(&a)?;
        let dev = self.devs.get(&a)?;
        (dev.present && dev.driver.is_some_and(|d| self.drivers[d].name == p.driver)).then_some(p)
    }

    fn registered_parents(&self) -> Vec<Addr> {
        self.mdev_parents.keys().copied().filter(|a| self.mdev_parent(*a).is_some()).collect()
    }

    /// Pool units the parent's live mdevs take.
    fn pool_used(&self, a: Addr) -> u32 {
        let Some(p) = self.mdev_parents.get(&a) else { return 0 };
        self.mdevs.iter().filter(|m| m.parent == a).map(|m| p.types[m.type_index].cost).sum()
    }

    fn available(&self, a: Addr, t: usize) -> u32 {
        let p = &self.mdev_parents[&a];
        p.capacity.saturating_sub(self.pool_used(a)) / p.types[t].cost.max(1)
    }

    pub(super) fn mdev_by_name(&self, name: &str) -> Option<&Mdev> {
        let u = parse_uuid(name).filter(|u| format_uuid(*u) == name)?;
        self.mdevs.iter().find(|m| m.uuid == u)
    }

    /// The mdevs' IOMMU groups, as `groups()` lists them beside the PCI ones.
    pub(super) fn mdev_groups(&self) -> impl Iterator<Item = u32> + '_ {
        self.mdevs.iter().map(|m| m.group)
    }

    /// An mdev group's member (one device).
    pub(super) fn mdev_in_group(&self, g: u32) -> Option<&Mdev> {
        self.mdevs.iter().find(|m| m.group == g)
    }

    /// `mdev_unregister_parent`: the parent's driver goes, its mdevs with it.
    pub(super) fn mdev_parent_gone(&mut self, a: Addr) {
        let gone: Vec<u128> = self.mdevs.iter().filter(|m| m.parent == a).map(|m| m.uuid).collect();
        for u in gone {
            self.remove_mdev(u);
        }
    }

    fn remove_mdev(&mut self, u: u128) {
        self.mdevs.retain(|m| m.uuid != u);
        self.holders.retain(|h| h.mdev != Some(u));
    }

    /// `vfio_register_emulated_iommu_dev`: a group of its own, the lowest
    /// number no other group has (the kernel's ida).
    fn free_group(&self) -> u32 {
        let used: std::collections::BTreeSet<u32> =
            self.devs.values().filter_map(|d| d.group).chain(self.mdev_groups()).collect();
        (0..).find(|g| !used.contains(g)).unwrap_or(u32::MAX)
    }

    fn create_mdev(&mut self, a: Addr, t: usize, value: &str) -> io::Result<()> {
        // create_store: 36 characters, or 37 with one more (the newline).
        if value.len() < 36 || value.len() > 37 {
            return Err(err(libc::EINVAL));
        }
        let u = value.get(..36).and_then(parse_uuid).ok_or_else(|| err(libc::EINVAL))?;
        if self.mdevs.iter().any(|m| m.uuid == u) {
            return Err(err(libc::EEXIST));
        }
        if self.available(a, t) == 0 {
            // The parent driver's probe finds its pool spent.
            return Err(err(libc::ENOSPC));
        }
        let group = self.free_group();
        self.mdevs.push(Mdev { uuid: u, parent: a, type_index: t, group });
        Ok(())
    }

    /// `store` of an mdev file.
    pub(super) fn store_mdev(&mut self, file: File, value: &str) -> io::Result<()> {
        match file {
            File::MdevType(a, t, "create") => self.create_mdev(a, usize::from(t), value),
            File::Mdev(u, "remove") => {
                if kstrtoul(value)? != 0 {
                    self.remove_mdev(u);
                }
                Ok(())
            }
            _ => Err(err(libc::EACCES)),
        }
    }

    /// `show` of an mdev file.
    pub(super) fn show_mdev(&self, file: File) -> String {
        match file {
            File::MdevType(a, t, name) => {
                let ty = &self.mdev_parents[&a].types[usize::from(t)];
                match name {
                    "name" => format!("{}\n", ty.name),
                    "description" => format!("{}\n", ty.description),
                    "device_api" => format!("{}\n", ty.device_api),
                    "available_instances" => format!("{}\n", self.available(a, usize::from(t))),
                    _ => String::new(),
                }
            }
            File::Mdev(u, "uevent") => match self.mdevs.iter().find(|m| m.uuid == u) {
                Some(m) => {
                    let ty = &self.mdev_parents[&m.parent].types[m.type_index];
                    format!("DRIVER={MDEV_DRIVER}\nMDEV_TYPE={}\n", ty.id)
                }
                None => String::new(),
            },
            _ => String::new(),
        }
    }

    /// Names an mdev parent adds to its device directory.
    pub(super) fn mdev_names_of(&self, a: Addr) -> Vec<String> {
        if self.mdev_parent(a).is_none() {
            return Vec::new();
        }
        let mut names = vec!["mdev_supported_types".to_string()];
        names.extend(self.mdevs.iter().filter(|m| m.parent == a).map(|m| format_uuid(m.uuid)));
        names
    }

    /// Below a device directory at `depth`: `mdev_supported_types/...` and `UUID/...`.
    pub(super) fn mdev_entry(&self, a: Addr, depth: usize, rest: &[&str]) -> Option<Entry> {
        let p = self.mdev_parent(a)?;
        let type_at = |id: &str| p.types.iter().position(|t| t.id == id);
        match rest {
            ["mdev_supported_types"] => Some(Entry::Dir(p.types.iter().map(|t| t.id.clone()).collect())),
            ["mdev_supported_types", id] => {
                type_at(id)?;
                Some(Entry::Dir(TYPE_FILES.iter().map(|s| s.to_string()).chain(["devices".to_string()]).collect()))
            }
            ["mdev_supported_types", id, "devices"] => {
                let t = type_at(id)?;
                Some(Entry::Dir(
                    self.mdevs
                        .iter()
                        .filter(|m| m.parent == a && m.type_index == t)
                        .map(|m| format_uuid(m.uuid))
                        .collect(),
                ))
            }
            ["mdev_supported_types", id, "devices", u] => {
                let t = type_at(id)?;
                self.mdev_by_name(u).filter(|m| m.parent == a && m.type_index == t)?;
                Some(Entry::Link(format!("../../../{u}")))
            }
            ["mdev_supported_types", id, f] => {
                let t = u8::try_from(type_at(id)?).ok()?;
                let f = TYPE_FILES.iter().copied().find(|n| n == f)?;
                Some(Entry::File(File::MdevType(a, t, f)))
            }
            [u, more @ ..] => {
                let m = self.mdev_by_name(u).filter(|m| m.parent == a)?;
                let up = "../".repeat(depth + 1);
                match more {
                    [] => Some(Entry::Dir(
                        ["driver", "iommu_group", "mdev_type", "remove", "subsystem", "uevent", "vfio-dev"]
                            .iter()
                            .map(|s| s.to_string())
                            .collect(),
                    )),
                    // VFIO's cdev for the device (Linux >= 6.6, iommufd): /dev/vfio/devices/vfioN.
                    ["vfio-dev"] => Some(Entry::Dir(vec![mdev_cdev(m)])),
                    ["vfio-dev", c] if *c == mdev_cdev(m) => Some(Entry::Dir(Vec::new())),
                    ["driver"] => Some(Entry::Link(format!("{up}bus/mdev/drivers/{MDEV_DRIVER}"))),
                    ["iommu_group"] => Some(Entry::Link(format!("{up}kernel/iommu_groups/{}", m.group))),
                    ["subsystem"] => Some(Entry::Link(format!("{up}bus/mdev"))),
                    ["mdev_type"] => Some(Entry::Link(format!("../mdev_supported_types/{}", p.types[m.type_index].id))),
                    [f] => MDEV_FILES.iter().copied().find(|n| n == f).map(|f| Entry::File(File::Mdev(m.uuid, f))),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Where an mdev's directory is: `devices/.../PARENT/UUID`.
    fn mdev_path(&self, m: &Mdev) -> String {
        format!("{}/{}", self.canonical(m.parent), format_uuid(m.uuid))
    }

    /// `bus/mdev/...`.
    pub(super) fn mdev_bus_entry(&self, rest: &[&str]) -> Option<Entry> {
        let all = || self.mdevs.iter().map(|m| format_uuid(m.uuid)).collect::<Vec<_>>();
        match rest {
            [] => Some(Entry::Dir(vec!["devices".into(), "drivers".into()])),
            ["devices"] => Some(Entry::Dir(all())),
            ["devices", u] => Some(Entry::Link(format!("../../../{}", self.mdev_path(self.mdev_by_name(u)?)))),
            ["drivers"] => Some(Entry::Dir(vec![MDEV_DRIVER.into()])),
            ["drivers", MDEV_DRIVER] => Some(Entry::Dir(all())),
            ["drivers", MDEV_DRIVER, u] => {
                Some(Entry::Link(format!("../../../../{}", self.mdev_path(self.mdev_by_name(u)?))))
            }
            _ => None,
        }
    }

    /// `class/mdev_bus/PARENT`: a link to each registered parent.
    pub(super) fn mdev_class_entry(&self, rest: &[&str]) -> Option<Entry> {
        match rest {
            [] => Some(Entry::Dir(self.registered_parents().iter().map(Addr::to_string).collect())),
            [name] => {
                let a = Addr::parse(name).filter(|a| self.mdev_parent(*a).is_some())?;
                Some(Entry::Link(format!("../../{}", self.canonical(a))))
            }
            _ => None,
        }
    }

    /// `kernel/iommu_groups/N/devices/UUID` of an mdev group.
    pub(super) fn mdev_group_link(&self, m: &Mdev) -> Entry {
        Entry::Link(format!("../../../../{}", self.mdev_path(m)))
    }

    /// Whether the host has the mdev core (any parent described).
    pub(super) fn has_mdev(&self) -> bool {
        !self.mdev_parents.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_parse_as_the_kernel_does() {
        let u = parse_uuid("83b8f4f2-509f-382f-3c1e-e6bfe0fa1001").unwrap();
        assert_eq!(format_uuid(u), "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001");
        assert_eq!(parse_uuid("83B8F4F2-509F-382F-3C1E-E6BFE0FA1001"), Some(u));
        assert_eq!(parse_uuid("83b8f4f2-509f-382f-3c1e-e6bfe0fa100"), None);
        assert_eq!(parse_uuid("83b8f4f2x509f-382f-3c1e-e6bfe0fa1001"), None);
        assert_eq!(parse_uuid("83b8f4f2-509f-382f-3c1e-e6bfe0fa100g"), None);
    }
}
