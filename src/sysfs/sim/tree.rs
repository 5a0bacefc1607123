//! The sysfs file tree of a simulated kernel: which names exist where, what
//! each is (directory, link, attribute), and path resolution through links.
//!
//! Link targets are relative, with as many `../` as the link's directory is
//! deep, exactly as the kernel writes them, so following one lands where it
//! would on a real host (`bus/pci/devices/ADDR` -> `../../../devices/pci0000:00/...`).

use super::{err, Addr, Dev, Kernel};
use std::collections::BTreeSet;
use std::io;

/// Attributes of a device directory, in the order a listing gives them.
const DEV_ATTRS: [&str; 21] = [
    "boot_vga",
    "class",
    "config",
    "current_link_speed",
    "current_link_width",
    "device",
    "driver_override",
    "max_link_speed",
    "max_link_width",
    "numa_node",
    "remove",
    "reset",
    "reset_method",
    "sriov_drivers_autoprobe",
    "sriov_numvfs",
    "sriov_totalvfs",
    "subsystem_device",
    "subsystem_vendor",
    "uevent",
    "vendor",
    "vpd",
];

const DRV_FILES: [&str; 4] = ["bind", "new_id", "remove_id", "unbind"];
const BUS_FILES: [&str; 3] = ["drivers_autoprobe", "drivers_probe", "rescan"];

/// An attribute file: whose, and which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum File {
    Dev(Addr, &'static str),
    /// An attribute of the i-th network interface (`hostuse.rs`).
    Net(usize, &'static str),
    /// An attribute of the i-th block device.
    Blk(usize, &'static str),
    /// An attribute of vtconN.
    Vt(u8, &'static str),
    /// An attribute of `devices/virtual/dmi/id`.
    Dmi(&'static str),
    Drv(usize, &'static str),
    Bus(&'static str),
    /// A file of `mdev_supported_types/TYPE` of a parent (type by index).
    MdevType(Addr, u8, &'static str),
    /// A file of a mediated device (by UUID).
    Mdev(u128, &'static str),
}

impl File {
    pub(super) fn readable(self) -> bool {
        !matches!(
            self,
            File::Dev(_, "reset" | "remove")
                | File::Drv(..)
                | File::Bus("drivers_probe" | "rescan")
                | File::MdevType(_, _, "create")
                | File::Mdev(_, "remove")
        )
    }

    pub(super) fn writable(self) -> bool {
        match self {
            File::Dev(_, name) => {
                matches!(
                    name,
                    "driver_override"
                        | "numa_node"
                        | "remove"
                        | "reset"
                        | "reset_method"
                        | "sriov_numvfs"
                        | "sriov_drivers_autoprobe"
                )
            }
            File::Net(_, name) => name == "slaves",
            File::Blk(..) | File::Dmi(_) => false,
            File::Vt(_, name) => name == "bind",
            File::Drv(..) | File::Bus(_) => true,
            File::MdevType(_, _, name) => name == "create",
            File::Mdev(_, name) => name == "remove",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Entry {
    Dir(Vec<String>),
    Link(String),
    File(File),
}

fn up(depth: usize) -> String {
    "../".repeat(depth)
}

fn dir<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Option<Entry> {
    Some(Entry::Dir(names.into_iter().map(Into::into).collect()))
}

fn known(list: &[&'static str], name: &str) -> Option<&'static str> {
    list.iter().copied().find(|n| *n == name)
}

impl Kernel {
    /// `pciDDDD:BB`: the root bus a device hangs from.
    pub(super) fn root_of(&self, a: Addr) -> String {
        let mut top = a;
        while let Some(p) = self.devs.get(&top).and_then(|d| d.parent) {
            top = p;
        }
        format!("pci{:04x}:{:02x}", top.domain, top.bus)
    }

    /// `devices/pci0000:00/0000:00:1c.0/0000:02:00.0/0000:03:01.0`.
    pub(super) fn canonical(&self, a: Addr) -> String {
        let mut chain = vec![a.to_string()];
        let mut at = a;
        while let Some(p) = self.devs.get(&at).and_then(|d| d.parent) {
            chain.push(p.to_string());
            at = p;
        }
        chain.push(self.root_of(a));
        chain.push("devices".into());
        chain.reverse();
        chain.join("/")
    }

    fn link_to_dev(&self, depth: usize, a: Addr) -> Option<Entry> {
        Some(Entry::Link(format!("{}{}", up(depth), self.canonical(a))))
    }

    /// A present device by its exact sysfs name (no other spelling).
    fn named(&self, name: &str) -> Option<Addr> {
        self.present(name).filter(|a| a.to_string() == name)
    }

    pub(super) fn present_devs(&self) -> impl Iterator<Item = &Dev> {
        self.devs.values().filter(|d| d.present)
    }

    pub(super) fn loaded_driver(&self, name: &str) -> Option<usize> {
        self.drivers.iter().position(|d| d.loaded && d.name == name)
    }

    fn groups(&self) -> BTreeSet<u32> {
        self.present_devs().filter_map(|d| d.group).chain(self.mdev_groups()).collect()
    }

    /// The entry at a path that has no links before its last component.
    pub(super) fn entry(&self, c: &[&str]) -> Option<Entry> {
        match c {
            [] => dir(["bus", "class", "devices", "kernel", "module"]),
            ["bus"] => dir(if self.has_mdev() { vec!["mdev", "pci"] } else { vec!["pci"] }),
            ["bus", "mdev", rest @ ..] if self.has_mdev() => self.mdev_bus_entry(rest),
            ["bus", "pci"] => dir(["devices", "drivers"].into_iter().chain(BUS_FILES)),
            ["bus", "pci", "devices"] => dir(self.present_devs().map(|d| d.addr.to_string())),
            ["bus", "pci", "devices", a] => self.link_to_dev(3, self.present(a)?),
            ["bus", "pci", "drivers"] => dir(self.drivers.iter().filter(|d| d.loaded).map(|d| d.name.clone())),
            ["bus", "pci", "drivers", d, rest @ ..] => self.driver_entry(self.loaded_driver(d)?, rest),
            ["bus", "pci", f] => known(&BUS_FILES, f).map(|f| Entry::File(File::Bus(f))),
            ["class"] => {
                let mut names = vec!["block", "graphics", "net", "vtconsole"];
                if self.dmi.is_some() {
                    names.push("dmi");
                }
                if self.has_mdev() {
                    names.push("mdev_bus");
                }
                names.sort_unstable();
                dir(names)
            }
            ["class", "mdev_bus", rest @ ..] if self.has_mdev() => self.mdev_class_entry(rest),
            ["class", "dmi"] if self.dmi.is_some() => dir(["id"]),
            ["class", "dmi", "id"] if self.dmi.is_some() => Some(Entry::Link("../../devices/virtual/dmi/id".into())),
            ["devices", "virtual", "dmi"] if self.dmi.is_some() => dir(["id"]),
            ["devices", "virtual", "dmi", "id"] if self.dmi.is_some() => {
                dir(super::identity::DMI_ATTRS.iter().filter(|n| self.dmi_value(n).is_some()).copied())
            }
            ["devices", "virtual", "dmi", "id", f] if self.dmi_value(f).is_some() => {
                super::identity::DMI_ATTRS.iter().find(|n| *n == f).map(|n| Entry::File(File::Dmi(n)))
            }
            ["class", kind @ ("net" | "block" | "graphics" | "vtconsole"), rest @ ..] => self.class_entry(kind, rest),
            ["kernel"] => dir(if self.iommu { vec!["iommu_groups"] } else { vec![] }),
            ["kernel", "iommu_groups", rest @ ..] if self.iommu => self.group_entry(rest),
            ["module"] => {
                let loaded: BTreeSet<&str> =
                    self.drivers.iter().filter(|d| d.loaded).map(|d| d.module.as_str()).collect();
                dir(loaded)
            }
            ["module", m, rest @ ..] => {
                let drivers: Vec<String> = self
                    .drivers
                    .iter()
                    .filter(|d| d.loaded && d.module == *m)
                    .map(|d| format!("pci:{}", d.name))
                    .collect();
                match rest {
                    _ if drivers.is_empty() => None,
                    [] => dir(["drivers"]),
                    ["drivers"] => dir(drivers),
                    ["drivers", x] if drivers.iter().any(|d| d == x) => {
                        Some(Entry::Link(format!("../../../bus/pci/drivers/{}", &x[4..])))
                    }
                    _ => None,
                }
            }
            ["devices", "virtual", rest @ ..] => self.virtual_entry(rest),
            ["devices", rest @ ..] => self.devices_entry(rest),
            _ => None,
        }
    }

    fn driver_entry(&self, d: usize, rest: &[&str]) -> Option<Entry> {
        let bound = || self.present_devs().filter(move |v| v.driver == Some(d));
        match rest {
            [] => dir(DRV_FILES
                .into_iter()
                .map(String::from)
                .chain(["module".into()])
                .chain(bound().map(|v| v.addr.to_string()))),
            ["module"] => Some(Entry::Link(format!("../../../../module/{}", self.drivers[d].module))),
            [f] => match known(&DRV_FILES, f) {
                Some(f) => Some(Entry::File(File::Drv(d, f))),
                // By address, not by scanning: a driver may hold thousands of VFs.
                None => self.link_to_dev(4, self.named(f).filter(|a| self.dev(*a).driver == Some(d))?),
            },
            _ => None,
        }
    }

    fn group_entry(&self, rest: &[&str]) -> Option<Entry> {
        let members = |g: &str| {
            let g: u32 = g.parse().ok().filter(|n: &u32| n.to_string() == g)?;
            let m: Vec<Addr> = self.present_devs().filter(|d| d.group == Some(g)).map(|d| d.addr).collect();
            (!m.is_empty()).then_some(m)
        };
        // An mdev's group has that one device.
        let mdev_group = |g: &str| {
            let g: u32 = g.parse().ok().filter(|n: &u32| n.to_string() == g)?;
            self.mdev_in_group(g)
        };
        match rest {
            [] => dir(self.groups().iter().map(u32::to_string)),
            [g] if mdev_group(g).is_some() => dir(["devices"]),
            [g, "devices"] if mdev_group(g).is_some() => dir([super::mdev::format_uuid(mdev_group(g)?.uuid)]),
            [g, "devices", u] if mdev_group(g).is_some() => {
                let m = mdev_group(g).filter(|m| super::mdev::format_uuid(m.uuid) == *u)?;
                Some(self.mdev_group_link(m))
            }
            [g] => members(g).and_then(|_| dir(["devices"])),
            [g, "devices"] => dir(members(g)?.iter().map(Addr::to_string)),
            [g, "devices", a] => {
                let g: u32 = g.parse().ok().filter(|n: &u32| n.to_string() == *g)?;
                self.link_to_dev(4, self.named(a).filter(|a| self.dev(*a).group == Some(g))?)
            }
            _ => None,
        }
    }

    /// `devices/pciDDDD:BB/A/B/...`: walk down the bridges, then look inside the device.
    fn devices_entry(&self, c: &[&str]) -> Option<Entry> {
        let Some((root, path)) = c.split_first() else {
            return dir(self.roots.iter().cloned().chain(["virtual".to_string()]));
        };
        if !self.roots.contains(*root) {
            return None;
        }
        let child = |parent: Option<Addr>, name: &str| {
            self.present(name).filter(|a| {
                let d = self.dev(*a);
                d.parent == parent && (parent.is_some() || self.root_of(*a) == *root)
            })
        };
        let mut at = None;
        let mut used = 0;
        for name in path {
            match child(at, name) {
                Some(a) => at = Some(a),
                None => break,
            }
            used += 1;
        }
        let Some(a) = at else {
            return match path {
                [] => dir(self
                    .present_devs()
                    .filter(|d| d.parent.is_none() && self.root_of(d.addr) == *root)
                    .map(|d| d.addr.to_string())),
                _ => None,
            };
        };
        // "devices", the root and the chain of functions.
        self.device_entry(self.dev(a), 2 + used, &path[used..])
    }

    fn device_entry(&self, dev: &Dev, depth: usize, rest: &[&str]) -> Option<Entry> {
        let a = dev.addr;
        match rest {
            [] => {
                let mut names: Vec<String> = DEV_ATTRS
                    .iter()
                    .chain(&["subsystem", "driver", "iommu_group", "physfn"])
                    .filter(|n| self.device_entry(dev, depth, &[n]).is_some())
                    .map(|n| n.to_string())
                    .collect();
                names.extend(self.function_uses_names(a, depth));
                names.extend(self.virtfns(dev).into_iter().map(|(i, _)| format!("virtfn{i}")));
                names.extend(self.present_devs().filter(|d| d.parent == Some(a)).map(|d| d.addr.to_string()));
                names.extend(self.mdev_names_of(a));
                Some(Entry::Dir(names))
            }
            [name] => {
                let has = match *name {
                    "driver_override" => self.has_driver_override,
                    "reset" | "reset_method" => !dev.reset_supported.is_empty(),
                    "boot_vga" => dev.class >> 8 == 0x0300,
                    "sriov_numvfs" | "sriov_totalvfs" | "sriov_drivers_autoprobe" => dev.totalvfs > 0,
                    l if l.contains("_link_") => dev.pcie.is_some(),
                    "vpd" => dev.vpd.is_some(),
                    _ => true,
                };
                match *name {
                    "subsystem" => Some(Entry::Link(format!("{}bus/pci", up(depth)))),
                    "driver" => {
                        Some(Entry::Link(format!("{}bus/pci/drivers/{}", up(depth), self.drivers[dev.driver?].name)))
                    }
                    "iommu_group" if self.iommu => {
                        Some(Entry::Link(format!("{}kernel/iommu_groups/{}", up(depth), dev.group?)))
                    }
                    "physfn" => Some(Entry::Link(format!("../{}", dev.physfn?))),
                    "net" | "block" | "graphics" => self.function_uses_entry(a, depth, &[name]),
                    n if n == "mdev_supported_types" || super::mdev::parse_uuid(n).is_some() => {
                        self.mdev_entry(a, depth, rest)
                    }
                    v if v.starts_with("virtfn") => {
                        let (_, vf) = self.virtfns(dev).into_iter().find(|(i, _)| format!("virtfn{i}") == v)?;
                        Some(Entry::Link(format!("../{vf}")))
                    }
                    _ if has => Some(Entry::File(File::Dev(a, known(&DEV_ATTRS, name)?))),
                    _ => None,
                }
            }
            ["net" | "block" | "graphics", _, ..] => self.function_uses_entry(a, depth, rest),
            [_, _, ..] => self.mdev_entry(a, depth, rest),
        }
    }

    /// A PF's `virtfnN` links: the first sriov_numvfs VF slots whose function is present.
    fn virtfns(&self, pf: &Dev) -> Vec<(usize, Addr)> {
        if pf.totalvfs == 0 {
            return Vec::new();
        }
        self.vf_slots(pf.addr)
            .into_iter()
            .take(usize::from(pf.numvfs))
            .enumerate()
            .filter(|(_, a)| self.devs.get(a).is_some_and(|d| d.present && d.physfn == Some(pf.addr)))
            .collect()
    }

    /// Resolve a path the way the VFS does: every link before the last
    /// component is followed, the last one only when `follow` is set.
    ///
    /// The walk starts from the longest prefix that exists without passing a
    /// link (usually the whole path) and goes up only as far as the link, so
    /// a lookup never builds the listing of a directory it merely passes
    /// through: with thousands of functions under bus/pci/devices that made
    /// every lookup cost as much as a listing.
    pub(super) fn resolve(&self, path: &str, follow: bool) -> io::Result<Entry> {
        if path.starts_with('/') || path.split('/').any(|c| c == "..") {
            return Err(err(libc::EINVAL));
        }
        let mut at: Vec<String> = path.split('/').filter(|c| !c.is_empty() && *c != ".").map(String::from).collect();
        let mut hops = 0;
        loop {
            let refs: Vec<&str> = at.iter().map(String::as_str).collect();
            let (k, found) =
                (0..=refs.len()).rev().find_map(|k| self.entry(&refs[..k]).map(|e| (k, e))).expect("the root exists");
            match found {
                Entry::Link(target) if k < refs.len() || follow => {
                    hops += 1;
                    if hops > 40 {
                        return Err(err(libc::ELOOP));
                    }
                    // Splice the target in place of the link and walk again.
                    let mut spliced: Vec<String> = at[..k - 1].to_vec();
                    for c in target.split('/') {
                        match c {
                            ".." => {
                                spliced.pop();
                            }
                            "" | "." => {}
                            _ => spliced.push(c.to_string()),
                        }
                    }
                    spliced.extend_from_slice(&at[k..]);
                    at = spliced;
                }
                found if k == refs.len() => return Ok(found),
                Entry::Dir(_) => return Err(err(libc::ENOENT)),
                _ => return Err(err(libc::ENOTDIR)),
            }
        }
    }
}
