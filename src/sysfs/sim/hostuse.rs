//! What the host does with its devices, as the kernel shows it: network
//! interfaces (of PCI functions, and bridges, bonds, VLANs over them) with
//! their `master`/`upper_*`/`lower_*` links, addresses and routes; disks,
//! partitions and device-mapper/md devices stacked on them (`holders/`,
//! `slaves/`), mounts and swap; framebuffers and the framebuffer console.
//!
//! Kernel rules kept here: a function's interfaces, disks and framebuffer
//! exist only while a host driver (not a stub) holds it; when it leaves that
//! driver its interfaces leave their master (the bridge forgets the port),
//! the VLANs and macvlans over them are deleted and their configuration is
//! lost; a bond takes only a port that is down, and brings it up.

use super::spec::{BlockSpec, HostSpec};
use super::tree::{Entry, File};
use super::{err, Addr, Kernel};
use crate::stub::is_stub_driver;
use std::io;

/// Upper-device kinds a host description may use.
pub(super) const LINK_KINDS: [&str; 6] = ["bridge", "bond", "team", "vlan", "macvlan", "ipvlan"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NetOwner {
    Pci(Addr),
    /// A software device of this kind (bridge, bond, ...).
    Link(String),
}

#[derive(Debug, Clone)]
pub(super) struct NetDev {
    pub name: String,
    pub owner: NetOwner,
    pub up: bool,
    pub addresses: Vec<String>,
    pub routes: Vec<String>,
    pub master: Option<String>,
    /// A VLAN's or macvlan's link (its lower device).
    pub lower: Option<String>,
    /// `address`: the MAC address.
    pub mac: String,
    /// `speed` in Mb/s while the interface is up.
    pub speed: u32,
    /// ethtool offload features, libvirt's names.
    pub features: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum BlkOwner {
    Pci(Addr),
    /// A partition of this disk.
    Partition(String),
    /// device-mapper or md over these devices.
    Stacked(Vec<String>),
    /// An NVMe multipath head over these hidden path devices.
    Head(Vec<String>),
}

#[derive(Debug, Clone)]
pub(super) struct Blk {
    pub name: String,
    pub owner: BlkOwner,
    pub mounts: Vec<String>,
    pub swap: bool,
    pub swap_files: Vec<String>,
    /// MAJ:MIN
    pub number: (u32, u32),
    /// Partition number (1-based) for partitions.
    pub partno: u32,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Uses {
    pub nets: Vec<NetDev>,
    pub blocks: Vec<Blk>,
    /// (fbN, the PCI function whose driver registered it).
    pub fbs: Vec<(String, Addr)>,
    pub fbcon: bool,
}

fn up(depth: usize) -> String {
    "../".repeat(depth)
}

fn link(depth: usize, target: &str) -> Option<Entry> {
    Some(Entry::Link(format!("{}{target}", up(depth))))
}

fn dir<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Option<Entry> {
    Some(Entry::Dir(names.into_iter().map(Into::into).collect()))
}

/// Offload features an interface may have, in the order libvirt reports them.
const FEATURES: [&str; 11] = ["rx", "tx", "sg", "tso", "gso", "gro", "lro", "rxvlan", "txvlan", "ntuple", "rxhash"];

/// 52:54:00 (QEMU's prefix) then the function's bus, slot and function and the interface's index.
fn default_mac(a: Addr, index: usize) -> String {
    format!("52:54:00:{:02x}:{:02x}:{:x}{:x}", a.bus, a.slot, a.func, index & 0xf)
}

/// Six lower-case hex pairs separated by ':', as the kernel prints `address`.
fn valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

fn depth_of(path: &str) -> usize {
    path.split('/').count()
}

/// Build the host-use state from a description; errors name the entry.
pub(super) fn build(spec: &HostSpec, devs: &std::collections::BTreeMap<Addr, super::Dev>) -> Result<Uses, String> {
    let mut u = Uses { fbcon: spec.fbcon, ..Uses::default() };
    let mut minor = 0;
    let mut number = |major: u32| {
        minor += 1;
        (major, minor - 1)
    };
    for d in &spec.devices {
        let Some(a) = Addr::parse(&d.address) else { continue };
        if !devs.contains_key(&a) {
            continue;
        }
        for (i, n) in d.net.iter().enumerate() {
            let mac = n.mac.clone().unwrap_or_else(|| default_mac(a, i));
            let mut features = Vec::new();
            for f in &n.features {
                if !FEATURES.contains(&f.as_str()) || features.contains(f) {
                    return Err(format!(
                        "devices ({a}).net ({}).features: '{}' is not one of {} or is listed twice",
                        n.name,
                        f.escape_debug(),
                        FEATURES.join(", ")
                    ));
                }
                features.push(f.clone());
            }
            // ethtool reports them in its own order, whatever the description's.
            features.sort_by_key(|f| FEATURES.iter().position(|x| x == f));
            if !valid_mac(&mac) {
                return Err(format!(
                    "devices ({a}).net ({}).mac: '{}' is not a MAC address",
                    n.name,
                    mac.escape_debug()
                ));
            }
            u.nets.push(NetDev {
                name: n.name.clone(),
                owner: NetOwner::Pci(a),
                up: n.up,
                addresses: n.addresses.clone(),
                routes: n.routes.clone(),
                master: n.master.clone(),
                lower: None,
                mac,
                speed: n.speed.unwrap_or(1000),
                features,
            });
        }
        let disk = |b: &BlockSpec, owner: BlkOwner, number: (u32, u32), partno: u32| Blk {
            name: b.name.clone(),
            owner,
            mounts: b.mounts.clone(),
            swap: b.swap,
            swap_files: b.swap_files.clone(),
            number,
            partno,
        };
        for b in &d.block {
            u.blocks.push(disk(b, BlkOwner::Pci(a), number(259), 0));
            for (i, p) in b.partitions.iter().enumerate() {
                if !p.partitions.is_empty() {
                    return Err(format!(
                        "devices ({a}).block ({}): partition {} cannot have partitions",
                        b.name, p.name
                    ));
                }
                u.blocks.push(disk(p, BlkOwner::Partition(b.name.clone()), number(259), i as u32 + 1));
            }
        }
        if let Some(fb) = &d.framebuffer {
            let ok = fb.strip_prefix("fb").is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()));
            if !ok || u.fbs.iter().any(|(f, _)| f == fb) {
                return Err(format!(
                    "devices ({a}).framebuffer: '{}' is not a framebuffer name like \"fb0\" or is listed twice",
                    fb.escape_debug()
                ));
            }
            u.fbs.push((fb.clone(), a));
        }
    }
    for (i, l) in spec.links.iter().enumerate() {
        let at = format!("links[{i}] ({})", l.name);
        if !LINK_KINDS.contains(&l.kind.as_str()) {
            return Err(format!("{at}.kind: '{}' is not one of {}", l.kind.escape_debug(), LINK_KINDS.join(", ")));
        }
        let stacked_on = matches!(l.kind.as_str(), "vlan" | "macvlan" | "ipvlan");
        if stacked_on != l.lower.is_some() {
            return Err(format!(
                "{at}.lower: a vlan, macvlan or ipvlan needs its lower interface; other kinds have none"
            ));
        }
        u.nets.push(NetDev {
            name: l.name.clone(),
            owner: NetOwner::Link(l.kind.clone()),
            up: l.up,
            addresses: l.addresses.clone(),
            routes: l.routes.clone(),
            master: l.master.clone(),
            lower: l.lower.clone(),
            // A software device takes the address of its first port or lower device.
            mac: format!("52:54:01:00:00:{:02x}", i),
            speed: 0,
            features: Vec::new(),
        });
    }
    for s in &spec.stacked {
        u.blocks.push(Blk {
            name: s.name.clone(),
            owner: if s.multipath { BlkOwner::Head(s.over.clone()) } else { BlkOwner::Stacked(s.over.clone()) },
            mounts: s.mounts.clone(),
            swap: s.swap,
            swap_files: s.swap_files.clone(),
            number: number(253),
            partno: 0,
        });
    }
    // Names are unique per class, and every reference names something.
    for (i, n) in u.nets.iter().enumerate() {
        let ok = !n.name.is_empty() && n.name.len() < 16 && !n.name.contains(['/', ' ', ':']);
        if !ok || u.nets[..i].iter().any(|o| o.name == n.name) {
            return Err(format!("net: '{}' is not an interface name or is listed twice", n.name.escape_debug()));
        }
    }
    for n in &u.nets {
        if let Some(m) = &n.master {
            let kind = u.nets.iter().find(|o| o.name == *m).map(|o| &o.owner);
            if !matches!(kind, Some(NetOwner::Link(k)) if k == "bridge" || k == "bond" || k == "team") {
                return Err(format!("net {}: master {m} is not a listed bridge, bond or team", n.name));
            }
        }
        if let Some(l) = &n.lower {
            if l == &n.name || !u.nets.iter().any(|o| o.name == *l) {
                return Err(format!("links ({}): lower {l} is not a listed interface", n.name));
            }
        }
    }
    for (i, b) in u.blocks.iter().enumerate() {
        let ok = !b.name.is_empty()
            && b.name.len() <= 64
            && b.name.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c));
        if !ok || u.blocks[..i].iter().any(|o| o.name == b.name) {
            return Err(format!("block: '{}' is not a block device name or is listed twice", b.name.escape_debug()));
        }
        if let BlkOwner::Stacked(over) | BlkOwner::Head(over) = &b.owner {
            if let Some(missing) = over.iter().find(|o| !u.blocks.iter().any(|x| x.name == **o) || **o == b.name) {
                return Err(format!("stacked ({}): over {missing}, which is not a listed disk or partition", b.name));
            }
        }
    }
    Ok(u)
}

impl Kernel {
    /// A function held by a host driver (not a stub): its interfaces, disks
    /// and framebuffer exist.
    pub(super) fn host_bound(&self, a: Addr) -> bool {
        self.devs.get(&a).is_some_and(|d| d.present && d.driver.is_some_and(|x| !is_stub_driver(&self.drivers[x].name)))
    }

    fn net_visible(&self, n: &NetDev) -> bool {
        match n.owner {
            NetOwner::Pci(a) => self.host_bound(a),
            NetOwner::Link(_) => true,
        }
    }

    pub(super) fn net_index(&self, name: &str) -> Option<usize> {
        self.uses.nets.iter().position(|n| n.name == name && self.net_visible(n))
    }

    pub(super) fn nets_visible(&self) -> impl Iterator<Item = &NetDev> {
        self.uses.nets.iter().filter(|n| self.net_visible(n))
    }

    fn blk_visible(&self, b: &Blk) -> bool {
        match &b.owner {
            BlkOwner::Pci(a) => self.host_bound(*a),
            BlkOwner::Partition(disk) => self.blk_index(disk).is_some(),
            BlkOwner::Stacked(_) | BlkOwner::Head(_) => true,
        }
    }

    pub(super) fn blk_index(&self, name: &str) -> Option<usize> {
        self.uses.blocks.iter().position(|b| b.name == name && self.blk_visible(b))
    }

    pub(super) fn blocks_visible(&self) -> impl Iterator<Item = &Blk> {
        self.uses.blocks.iter().filter(|b| self.blk_visible(b))
    }

    fn fbs_visible(&self) -> Vec<&(String, Addr)> {
        self.uses.fbs.iter().filter(|(_, a)| self.host_bound(*a)).collect()
    }

    /// The framebuffer console is bound (and has a framebuffer to draw on).
    fn fbcon_bound(&self) -> bool {
        self.uses.fbcon && !self.fbs_visible().is_empty()
    }

    /// The function left its host driver (unbind, removal): its interfaces
    /// are unregistered, which takes them out of their master and deletes
    /// the VLANs and macvlans over them; they come back unconfigured.
    pub(super) fn host_driver_gone(&mut self, a: Addr) {
        // unregister_netdev: each interface's `remove` uevent, while the
        // function is still bound (its `unbind` comes after).
        if self.host_bound(a) {
            for i in self.nets_of(a) {
                self.emit_net("remove", i, None);
            }
        }
        let names: Vec<String> =
            self.uses.nets.iter().filter(|n| n.owner == NetOwner::Pci(a)).map(|n| n.name.clone()).collect();
        for name in names {
            self.unregister_net(&name, false);
        }
    }

    /// Unregister an interface: a PCI function's stays listed (it returns
    /// with the driver), a software device is deleted.
    fn unregister_net(&mut self, name: &str, delete: bool) {
        let uppers: Vec<String> =
            self.uses.nets.iter().filter(|n| n.lower.as_deref() == Some(name)).map(|n| n.name.clone()).collect();
        for upper in uppers {
            self.unregister_net(&upper, true);
        }
        for n in self.uses.nets.iter_mut().filter(|n| n.master.as_deref() == Some(name)) {
            n.master = None;
        }
        if delete {
            self.uses.nets.retain(|n| n.name != name);
        } else if let Some(n) = self.uses.nets.iter_mut().find(|n| n.name == name) {
            n.master = None;
            n.up = false;
            n.addresses.clear();
            n.routes.clear();
        }
    }

    /// `ip link delete NAME` of a software device; ENODEV if there is none,
    /// EOPNOTSUPP for a PCI function's interface.
    pub(super) fn delete_link(&mut self, name: &str) -> io::Result<()> {
        let i = self.net_index(name).ok_or_else(|| err(libc::ENODEV))?;
        if matches!(self.uses.nets[i].owner, NetOwner::Pci(_)) {
            return Err(err(libc::EOPNOTSUPP));
        }
        self.unregister_net(name, true);
        Ok(())
    }

    /// RTM_NEWLINK with IFLA_MASTER: enslave to a bridge or bond, or release.
    pub(super) fn set_master(&mut self, iface: &str, master: Option<&str>) -> io::Result<()> {
        let i = self.net_index(iface).ok_or_else(|| err(libc::ENODEV))?;
        let Some(m) = master else {
            self.uses.nets[i].master = None;
            return Ok(());
        };
        let mi = self.net_index(m).ok_or_else(|| err(libc::ENODEV))?;
        let kind = match &self.uses.nets[mi].owner {
            NetOwner::Link(k) if k == "bridge" || k == "bond" || k == "team" => k.clone(),
            _ => return Err(err(libc::EOPNOTSUPP)),
        };
        if self.uses.nets[i].master.as_deref() == Some(m) {
            return Ok(());
        }
        // Enslaving a device to its own upper would make a loop.
        let mut at = Some(m.to_string());
        let mut hops = 0;
        while let Some(x) = at {
            if x == iface || hops > 16 {
                return Err(err(libc::EBUSY));
            }
            hops += 1;
            at = self.uses.nets.iter().find(|n| n.name == x).and_then(|n| n.master.clone().or(n.lower.clone()));
        }
        if kind == "bond" && self.uses.nets[i].up {
            // bond_enslave: "Device can not be enslaved while up".
            return Err(err(libc::EPERM));
        }
        let n = &mut self.uses.nets[i];
        n.master = Some(m.to_string());
        if kind == "bond" {
            n.up = true;
        }
        Ok(())
    }

    /// `ip link set dev OLD name NEW` (dev_change_name): EBUSY while the
    /// interface is up, EEXIST if NEW is taken, EINVAL for a bad name; a
    /// `move` uevent with DEVPATH_OLD. Masters, VLANs and macvlans follow.
    pub(super) fn rename_link(&mut self, old: &str, new: &str) -> io::Result<()> {
        let i = self.net_index(old).ok_or_else(|| err(libc::ENODEV))?;
        if new == old {
            return Ok(());
        }
        if new.is_empty() || new.len() >= 16 || new.contains(['/', ' ', ':']) || new == "." || new == ".." {
            return Err(err(libc::EINVAL));
        }
        if self.uses.nets.iter().any(|n| n.name == new) {
            return Err(err(libc::EEXIST));
        }
        if self.uses.nets[i].up {
            return Err(err(libc::EBUSY));
        }
        let before = format!("/{}", self.net_dir(&self.uses.nets[i]));
        for n in &mut self.uses.nets {
            if n.master.as_deref() == Some(old) {
                n.master = Some(new.to_string());
            }
            if n.lower.as_deref() == Some(old) {
                n.lower = Some(new.to_string());
            }
        }
        self.uses.nets[i].name = new.to_string();
        self.emit_net("move", i, Some(before));
        Ok(())
    }

    pub(super) fn set_link_up(&mut self, iface: &str, up: bool) -> io::Result<()> {
        let i = self.net_index(iface).ok_or_else(|| err(libc::ENODEV))?;
        self.uses.nets[i].up = up;
        Ok(())
    }

    /// sysfs directory of a visible interface.
    pub(super) fn net_dir(&self, n: &NetDev) -> String {
        match &n.owner {
            NetOwner::Pci(a) => format!("{}/net/{}", self.canonical(*a), n.name),
            NetOwner::Link(_) => format!("devices/virtual/net/{}", n.name),
        }
    }

    fn blk_dir(&self, b: &Blk) -> String {
        match &b.owner {
            BlkOwner::Pci(a) => format!("{}/block/{}", self.canonical(*a), b.name),
            BlkOwner::Partition(disk) => {
                let d = self.blk_index(disk).map(|i| self.blk_dir(&self.uses.blocks[i])).unwrap_or_default();
                format!("{d}/{}", b.name)
            }
            BlkOwner::Stacked(_) => format!("devices/virtual/block/{}", b.name),
            BlkOwner::Head(_) => format!("devices/virtual/nvme-subsystem/nvme-subsys0/{}", b.name),
        }
    }

    fn uppers(&self, n: &NetDev) -> Vec<String> {
        let mut v: Vec<String> = self
            .nets_visible()
            .filter(|o| o.lower.as_deref() == Some(n.name.as_str()))
            .map(|o| o.name.clone())
            .chain(n.master.clone().filter(|m| self.net_index(m).is_some()))
            .collect();
        v.sort();
        v
    }

    fn lowers(&self, n: &NetDev) -> Vec<String> {
        let mut v: Vec<String> = self
            .nets_visible()
            .filter(|o| o.master.as_deref() == Some(n.name.as_str()))
            .map(|o| o.name.clone())
            .chain(n.lower.clone().filter(|l| self.net_index(l).is_some()))
            .collect();
        v.sort();
        v
    }

    fn kind_of(&self, name: &str) -> Option<&str> {
        match &self.uses.nets[self.net_index(name)?].owner {
            NetOwner::Link(k) => Some(k),
            NetOwner::Pci(_) => None,
        }
    }

    /// Entries below a visible interface's directory.
    pub(super) fn net_entry(&self, i: usize, rest: &[&str]) -> Option<Entry> {
        let n = &self.uses.nets[i];
        let depth = depth_of(&self.net_dir(n));
        let kind = match &n.owner {
            NetOwner::Link(k) => Some(k.as_str()),
            NetOwner::Pci(_) => None,
        };
        let master_kind = n.master.as_deref().and_then(|m| self.kind_of(m));
        let to_net = |d: usize, name: &str, suffix: &str| {
            let o = &self.uses.nets[self.net_index(name)?];
            link(d, &format!("{}{suffix}", self.net_dir(o)))
        };
        match rest {
            [] => {
                let mut names: Vec<String> =
                    ["addr_len", "address", "flags", "operstate", "speed", "uevent"].map(String::from).to_vec();
                names.extend(n.master.iter().filter(|m| self.net_index(m).is_some()).map(|_| "master".to_string()));
                names.extend(self.uppers(n).into_iter().map(|u| format!("upper_{u}")));
                names.extend(self.lowers(n).into_iter().map(|l| format!("lower_{l}")));
                match kind {
                    Some("bridge") => names.extend(["bridge".to_string(), "brif".to_string()]),
                    Some("bond") => names.push("bonding".into()),
                    _ => {}
                }
                if master_kind == Some("bridge") {
                    names.push("brport".into());
                }
                if let NetOwner::Pci(_) = n.owner {
                    names.push("device".into());
                }
                Some(Entry::Dir(names))
            }
            ["flags"] => Some(Entry::File(File::Net(i, "flags"))),
            ["address"] => Some(Entry::File(File::Net(i, "address"))),
            ["addr_len"] => Some(Entry::File(File::Net(i, "addr_len"))),
            ["speed"] => Some(Entry::File(File::Net(i, "speed"))),
            ["operstate"] => Some(Entry::File(File::Net(i, "operstate"))),
            ["uevent"] => Some(Entry::File(File::Net(i, "uevent"))),
            ["master"] => to_net(depth, n.master.as_deref()?, ""),
            [u] if u.starts_with("upper_") => {
                let name = &u["upper_".len()..];
                self.uppers(n).iter().any(|x| x == name).then_some(())?;
                to_net(depth, name, "")
            }
            [l] if l.starts_with("lower_") => {
                let name = &l["lower_".len()..];
                self.lowers(n).iter().any(|x| x == name).then_some(())?;
                to_net(depth, name, "")
            }
            ["device"] => match n.owner {
                NetOwner::Pci(a) => link(depth, &self.canonical(a)),
                NetOwner::Link(_) => None,
            },
            ["bridge"] if kind == Some("bridge") => dir(Vec::<String>::new()),
            ["brif"] if kind == Some("bridge") => {
                dir(self.lowers(n).into_iter().filter(|l| n.lower.as_deref() != Some(l.as_str())))
            }
            ["brif", p] if kind == Some("bridge") => {
                let port = &self.uses.nets[self.net_index(p)?];
                (port.master.as_deref() == Some(n.name.as_str())).then_some(())?;
                to_net(depth + 1, p, "/brport")
            }
            ["brport"] if master_kind == Some("bridge") => dir(["bridge"]),
            ["brport", "bridge"] if master_kind == Some("bridge") => to_net(depth + 1, n.master.as_deref()?, ""),
            ["bonding"] if kind == Some("bond") => dir(["slaves"]),
            ["bonding", "slaves"] if kind == Some("bond") => Some(Entry::File(File::Net(i, "slaves"))),
            _ => None,
        }
    }

    /// Entries below a visible block device's directory.
    pub(super) fn blk_entry(&self, i: usize, rest: &[&str]) -> Option<Entry> {
        let b = &self.uses.blocks[i];
        let depth = depth_of(&self.blk_dir(b));
        let partitions = || {
            self.blocks_visible()
                .filter(move |p| p.owner == BlkOwner::Partition(b.name.clone()))
                .map(|p| p.name.clone())
        };
        let holders = || {
            self.blocks_visible()
                .filter(move |h| matches!(&h.owner, BlkOwner::Stacked(over) if over.contains(&b.name)))
                .map(|h| h.name.clone())
        };
        let below = |head: bool| match &b.owner {
            BlkOwner::Stacked(over) if !head => over.iter().filter(|s| self.blk_index(s).is_some()).cloned().collect(),
            BlkOwner::Head(over) if head => over.iter().filter(|s| self.blk_index(s).is_some()).cloned().collect(),
            _ => Vec::new(),
        };
        let slaves = || below(false);
        let paths = || below(true);
        // A path device of a multipath head is hidden (no /dev node).
        let hidden = self.uses.blocks.iter().any(|h| matches!(&h.owner, BlkOwner::Head(p) if p.contains(&b.name)));
        let to_blk = |d: usize, name: &str| link(d, &self.blk_dir(&self.uses.blocks[self.blk_index(name)?]));
        match rest {
            [] => {
                let mut names: Vec<String> = vec!["dev".into(), "holders".into()];
                if matches!(b.owner, BlkOwner::Partition(_)) {
                    names.push("partition".into());
                }
                if matches!(b.owner, BlkOwner::Stacked(_)) {
                    names.push("slaves".into());
                }
                if matches!(b.owner, BlkOwner::Head(_)) {
                    names.push("multipath".into());
                }
                if hidden {
                    names.push("hidden".into());
                }
                names.extend(partitions());
                Some(Entry::Dir(names))
            }
            ["dev"] => Some(Entry::File(File::Blk(i, "dev"))),
            ["partition"] if matches!(b.owner, BlkOwner::Partition(_)) => Some(Entry::File(File::Blk(i, "partition"))),
            ["holders"] => dir(holders()),
            ["holders", h] => {
                holders().any(|x| x == *h).then_some(())?;
                to_blk(depth + 1, h)
            }
            ["slaves"] if matches!(b.owner, BlkOwner::Stacked(_)) => dir(slaves()),
            ["slaves", s] => slaves().iter().any(|x| x == s).then_some(()).and_then(|_| to_blk(depth + 1, s)),
            ["multipath"] if matches!(b.owner, BlkOwner::Head(_)) => dir(paths()),
            ["multipath", p] => paths().iter().any(|x| x == p).then_some(()).and_then(|_| to_blk(depth + 1, p)),
            ["hidden"] if hidden => Some(Entry::File(File::Blk(i, "hidden"))),
            [p, more @ ..] => {
                let pi = self.blk_index(p)?;
                (self.uses.blocks[pi].owner == BlkOwner::Partition(b.name.clone())).then_some(())?;
                self.blk_entry(pi, more)
            }
        }
    }

    /// `net`, `block` and `graphics` inside a PCI function's directory.
    pub(super) fn function_uses_entry(&self, a: Addr, depth: usize, rest: &[&str]) -> Option<Entry> {
        let nets = || self.nets_visible().filter(move |n| n.owner == NetOwner::Pci(a)).map(|n| n.name.clone());
        let disks = || self.blocks_visible().filter(move |b| b.owner == BlkOwner::Pci(a)).map(|b| b.name.clone());
        let fbs = || self.fbs_visible().into_iter().filter(move |(_, x)| *x == a).map(|(f, _)| f.clone());
        match rest {
            ["net"] => Some(nets().collect::<Vec<_>>()).filter(|v| !v.is_empty()).map(Entry::Dir),
            ["net", name, more @ ..] => {
                let i = self.net_index(name).filter(|&i| self.uses.nets[i].owner == NetOwner::Pci(a))?;
                self.net_entry(i, more)
            }
            ["block"] => Some(disks().collect::<Vec<_>>()).filter(|v| !v.is_empty()).map(Entry::Dir),
            ["block", name, more @ ..] => {
                let i = self.blk_index(name).filter(|&i| self.uses.blocks[i].owner == BlkOwner::Pci(a))?;
                self.blk_entry(i, more)
            }
            ["graphics"] => Some(fbs().collect::<Vec<_>>()).filter(|v| !v.is_empty()).map(Entry::Dir),
            ["graphics", fb] => fbs().any(|f| f == *fb).then(|| Entry::Dir(vec!["device".into()])),
            ["graphics", fb, "device"] => {
                fbs().any(|f| f == *fb).then(|| Entry::Link(format!("{}{}", up(depth + 2), self.canonical(a))))
            }
            _ => None,
        }
    }

    /// Whether a name inside a function's directory is one of ours.
    pub(super) fn function_uses_names(&self, a: Addr, depth: usize) -> Vec<String> {
        ["net", "block", "graphics"]
            .into_iter()
            .filter(|n| self.function_uses_entry(a, depth, &[n]).is_some())
            .map(String::from)
            .collect()
    }

    /// `class/{net,block,graphics,vtconsole}/...`.
    pub(super) fn class_entry(&self, kind: &str, rest: &[&str]) -> Option<Entry> {
        match (kind, rest) {
            ("net", []) => dir(self.nets_visible().map(|n| n.name.clone())),
            ("net", [name]) => link(2, &self.net_dir(&self.uses.nets[self.net_index(name)?])),
            ("block", []) => dir(self.blocks_visible().map(|b| b.name.clone())),
            ("block", [name]) => link(2, &self.blk_dir(&self.uses.blocks[self.blk_index(name)?])),
            ("graphics", []) => {
                dir(self.fbs_visible().into_iter().map(|(f, _)| f.clone()).chain(["fbcon".to_string()]))
            }
            ("graphics", ["fbcon"]) => link(2, "devices/virtual/graphics/fbcon"),
            ("graphics", [fb]) => {
                let (f, a) = self.fbs_visible().into_iter().find(|(f, _)| f == fb)?;
                link(2, &format!("{}/graphics/{f}", self.canonical(*a)))
            }
            ("vtconsole", []) => dir(self.vtcons()),
            ("vtconsole", [v]) => self
                .vtcons()
                .contains(&v.to_string())
                .then(|| Entry::Link(format!("../../devices/virtual/vtconsole/{v}"))),
            _ => None,
        }
    }

    /// vtcon0 is the boot console (VGA text); vtcon1 the framebuffer console,
    /// registered once there is a framebuffer.
    fn vtcons(&self) -> Vec<String> {
        let mut v = vec!["vtcon0".to_string()];
        if !self.uses.fbs.is_empty() {
            v.push("vtcon1".into());
        }
        v
    }

    /// `devices/virtual/...`.
    pub(super) fn virtual_entry(&self, rest: &[&str]) -> Option<Entry> {
        match rest {
            [] if self.dmi.is_some() => dir(["block", "dmi", "graphics", "net", "nvme-subsystem", "vtconsole"]),
            [] => dir(["block", "graphics", "net", "nvme-subsystem", "vtconsole"]),
            ["net"] => {
                dir(self.nets_visible().filter(|n| matches!(n.owner, NetOwner::Link(_))).map(|n| n.name.clone()))
            }
            ["net", name, more @ ..] => {
                let i = self.net_index(name).filter(|&i| matches!(self.uses.nets[i].owner, NetOwner::Link(_)))?;
                self.net_entry(i, more)
            }
            ["block"] => {
                dir(self.blocks_visible().filter(|b| matches!(b.owner, BlkOwner::Stacked(_))).map(|b| b.name.clone()))
            }
            ["block", name, more @ ..] => {
                let i = self.blk_index(name).filter(|&i| matches!(self.uses.blocks[i].owner, BlkOwner::Stacked(_)))?;
                self.blk_entry(i, more)
            }
            ["nvme-subsystem"] => dir(["nvme-subsys0"]),
            ["nvme-subsystem", "nvme-subsys0"] => {
                dir(self.blocks_visible().filter(|b| matches!(b.owner, BlkOwner::Head(_))).map(|b| b.name.clone()))
            }
            ["nvme-subsystem", "nvme-subsys0", name, more @ ..] => {
                let i = self.blk_index(name).filter(|&i| matches!(self.uses.blocks[i].owner, BlkOwner::Head(_)))?;
                self.blk_entry(i, more)
            }
            ["graphics"] => dir(["fbcon"]),
            ["graphics", "fbcon"] => dir(Vec::<String>::new()),
            ["vtconsole"] => dir(self.vtcons()),
            ["vtconsole", v] => {
                self.vtcons().contains(&v.to_string()).then(|| Entry::Dir(vec!["bind".into(), "name".into()]))
            }
            ["vtconsole", v, f @ ("bind" | "name")] => {
                let n: u8 = v.strip_prefix("vtcon")?.parse().ok()?;
                let f = if *f == "bind" { "bind" } else { "name" };
                self.vtcons().contains(&v.to_string()).then_some(Entry::File(File::Vt(n, f)))
            }
            _ => None,
        }
    }

    pub(super) fn show_use(&self, file: File) -> String {
        match file {
            File::Net(i, name) => {
                let n = &self.uses.nets[i];
                match name {
                    "operstate" => format!("{}\n", if n.up { "up" } else { "down" }),
                    "address" => format!("{}\n", n.mac),
                    "addr_len" => "6\n".into(),
                    "speed" => format!("{}\n", n.speed),
                    "flags" => format!("0x{:x}\n", if n.up { 0x1003 } else { 0x1002 }),
                    "uevent" => {
                        let devtype = match &n.owner {
                            // The team driver sets no device type.
                            NetOwner::Link(k) if k != "team" => format!("DEVTYPE={k}\n"),
                            _ => String::new(),
                        };
                        format!("{devtype}INTERFACE={}\n", n.name)
                    }
                    "slaves" => {
                        let ports: Vec<String> = self.lowers(n);
                        if ports.is_empty() {
                            "\n".into()
                        } else {
                            format!("{}\n", ports.join(" "))
                        }
                    }
                    _ => String::new(),
                }
            }
            File::Blk(i, "dev") => {
                let (ma, mi) = self.uses.blocks[i].number;
                format!("{ma}:{mi}\n")
            }
            File::Blk(i, "partition") => format!("{}\n", self.uses.blocks[i].partno),
            File::Blk(_, "hidden") => "1\n".into(),
            File::Vt(0, "name") => "(S) VGA+\n".into(),
            File::Vt(_, "name") => "(M) frame buffer device\n".into(),
            File::Vt(0, "bind") => format!("{}\n", u8::from(!self.fbcon_bound())),
            File::Vt(_, "bind") => format!("{}\n", u8::from(self.fbcon_bound())),
            _ => String::new(),
        }
    }

    pub(super) fn store_use(&mut self, file: File, value: &str) -> io::Result<()> {
        match file {
            // bond_option_slaves_set: "+IF" enslaves, "-IF" releases.
            File::Net(i, "slaves") => {
                let bond = self.uses.nets[i].name.clone();
                let v = value.trim_end_matches('\n');
                let (op, iface) = v.split_at(v.len().min(1));
                match op {
                    "+" => self.set_master(iface, Some(&bond)),
                    "-" if self
                        .net_index(iface)
                        .is_some_and(|x| self.uses.nets[x].master.as_deref() == Some(bond.as_str())) =>
                    {
                        self.set_master(iface, None)
                    }
                    "-" => Err(err(libc::ENODEV)),
                    _ => Err(err(libc::EPERM)),
                }
            }
            // Binding fbcon needs a framebuffer; vtcon0 (VGA text) is only
            // replaced, never unbound, by writing here in this model.
            File::Vt(1, "bind") => {
                match super::kstrtoul(value)? {
                    0 => self.uses.fbcon = false,
                    _ if self.fbs_visible().is_empty() => return Err(err(libc::ENODEV)),
                    _ => self.uses.fbcon = true,
                }
                Ok(())
            }
            _ => Err(err(libc::EACCES)),
        }
    }

    /// /proc/self/mountinfo's (MAJ:MIN, mount point) of visible block devices.
    pub(super) fn mount_table(&self) -> Vec<(String, String)> {
        self.blocks_visible()
            .flat_map(|b| b.mounts.iter().map(move |m| (format!("{}:{}", b.number.0, b.number.1), m.clone())))
            .collect()
    }

    /// /proc/swaps: (name, MAJ:MIN of the block device it is on, is a file).
    pub(super) fn swap_table(&self) -> Vec<(String, String, bool)> {
        let mut out = Vec::new();
        for b in self.blocks_visible() {
            let number = format!("{}:{}", b.number.0, b.number.1);
            if b.swap {
                out.push((format!("/dev/{}", b.name), number.clone(), false));
            }
            out.extend(b.swap_files.iter().map(|f| (f.clone(), number.clone(), true)));
        }
        out
    }

    /// `swapoff NAME` (a /dev path or a file): ENOENT/EINVAL as swapoff gives.
    pub(super) fn swapoff(&mut self, name: &str) -> io::Result<()> {
        for b in &mut self.uses.blocks {
            if b.swap && name.strip_prefix("/dev/") == Some(b.name.as_str()) {
                b.swap = false;
                return Ok(());
            }
            if let Some(p) = b.swap_files.iter().position(|f| f == name) {
                b.swap_files.remove(p);
                return Ok(());
            }
        }
        Err(err(libc::EINVAL))
    }
}
