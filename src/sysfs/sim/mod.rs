//! An in-memory Linux kernel, seen through its PCI sysfs files.
//!
//! The kernel state is a set of PCI functions and drivers; the file tree
//! (`tree.rs`) is computed from it on each access, and writes to attribute
//! files run the kernel's own rules (bind, unbind, drivers_probe, new_id,
//! driver_override, reset, remove, rescan, sriov_numvfs) with the errno the
//! kernel gives. Behaviour follows Linux 6.x `drivers/base` and `drivers/pci`.

mod builtin;
mod hostuse;
mod identity;
mod mdev;
mod spec;
mod tree;
mod uevent;
mod validate;

pub use spec::{
    BlockSpec, DeviceSpec, DmiSpec, DriverSpec, HolderSpec, HostSpec, LinkSpec, MdevParentSpec, MdevTypeSpec, NetSpec,
    PcieSpec, StackedSpec, VpdSpec,
};

use crate::sysfs::modalias::{self, ModuleAlias};
use crate::sysfs::{HoldKind, Holder, HolderScan, SwapArea, Sysfs, VfioDevice};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;
use tree::{Entry, File};

/// `PCI_ANY_ID`: a wildcard in a dynamic id.
const ANY: u32 = u32::MAX;

/// Drivers without a `sriov_configure` method: they cannot change sriov_numvfs.
const NO_SRIOV_CONFIGURE: [&str; 3] = ["pci-stub", "xen-pciback", "pciback"];

fn err(errno: i32) -> io::Error {
    io::Error::from_raw_os_error(errno)
}

/// A PCI function's address, ordered like the kernel's scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Addr {
    domain: u32,
    bus: u8,
    slot: u8,
    func: u8,
}

impl Addr {
    /// Only the kernel's own spelling (`0000:03:00.0`): device names are compared as strings.
    fn parse(name: &str) -> Option<Addr> {
        let (rest, func) = name.rsplit_once('.')?;
        let mut it = rest.split(':');
        let (domain, bus, slot) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() {
            return None;
        }
        let hex = |s: &str| u32::from_str_radix(s, 16).ok();
        let a = Addr {
            domain: hex(domain)?,
            bus: u8::try_from(hex(bus)?).ok()?,
            slot: u8::try_from(hex(slot)?).ok().filter(|s| *s < 32)?,
            func: u8::try_from(hex(func)?).ok().filter(|f| *f < 8)?,
        };
        (a.to_string() == name).then_some(a)
    }

    /// Routing id: bus, device and function in 16 bits (SR-IOV offsets count in these).
    fn rid(self) -> u32 {
        (u32::from(self.bus) << 8) | (u32::from(self.slot) << 3) | u32::from(self.func)
    }

    fn from_rid(domain: u32, rid: u32) -> Option<Addr> {
        (rid <= 0xffff).then_some(Addr {
            domain,
            bus: (rid >> 8) as u8,
            slot: ((rid >> 3) & 0x1f) as u8,
            func: (rid & 7) as u8,
        })
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:02x}:{:02x}.{:x}", self.domain, self.bus, self.slot, self.func)
    }
}

/// One PCI function: what the hardware is, and what the kernel made of it.
#[derive(Debug, Clone)]
struct Dev {
    addr: Addr,
    vendor: u16,
    device: u16,
    subsystem_vendor: u16,
    subsystem_device: u16,
    class: u32,
    vendor_name: Option<String>,
    product_name: Option<String>,
    parent: Option<Addr>,
    group: Option<u32>,
    numa_node: i32,
    /// Methods the hardware supports; `reset_methods` is what is enabled now.
    reset_supported: Vec<String>,
    boot_vga: bool,
    physfn: Option<Addr>,
    totalvfs: u16,
    /// A VF made by an sriov_numvfs write, not in the description; gone for
    /// good when SR-IOV is disabled.
    created: bool,

    present: bool,
    driver: Option<usize>,
    driver_override: Option<String>,
    reset_methods: Vec<String>,
    numvfs: u16,
    /// `sriov_drivers_autoprobe` of a PF: whether its new VFs may be probed
    /// by drivers (an override still lets its one driver in).
    sriov_autoprobe: bool,
    resets: u32,
    /// A writer waits in the kernel with the device lock held (an unbind or
    /// remove waiting for a VFIO holder): other writes about it wait too.
    locked: bool,
    /// The PCI Express capability's link, for a PCIe function.
    pcie: Option<spec::PcieSpec>,
    /// The encoded contents of `vpd`, for a function that has VPD.
    vpd: Option<Vec<u8>>,
}

impl Dev {
    fn is_bridge(&self) -> bool {
        matches!(self.class >> 8, 0x0604 | 0x0607)
    }

    /// The kernel's state of a freshly enumerated function.
    fn enumerate(&mut self) {
        self.present = true;
        self.driver = None;
        self.driver_override = None;
        self.reset_methods = self.reset_supported.clone();
        self.numvfs = 0;
        self.sriov_autoprobe = true;
    }
}

/// A dynamic id (`new_id`): `struct pci_device_id` without driver_data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DynId {
    vendor: u32,
    device: u32,
    subvendor: u32,
    subdevice: u32,
    class: u32,
    class_mask: u32,
}

#[derive(Debug, Clone)]
struct Drv {
    name: String,
    module: String,
    loaded: bool,
    available: bool,
    ids: Vec<(u16, u16)>,
    /// Class prefixes as (value, mask).
    classes: Vec<(u32, u32)>,
    /// modules.alias `vfio_pci:` patterns of its module (spec.rs).
    vfio_aliases: Vec<String>,
    dynids: Vec<DynId>,
}

/// What `pci_match_device` compares: the device's ids, or a fake device's.
struct Ids {
    vendor: u32,
    device: u32,
    subvendor: u32,
    subdevice: u32,
    class: u32,
}

impl Drv {
    fn claims(&self, id: &Ids) -> bool {
        let dynamic = self.dynids.iter().any(|d| {
            (d.vendor == ANY || d.vendor == id.vendor)
                && (d.device == ANY || d.device == id.device)
                && (d.subvendor == ANY || d.subvendor == id.subvendor)
                && (d.subdevice == ANY || d.subdevice == id.subdevice)
                && (d.class ^ id.class) & d.class_mask == 0
        });
        dynamic
            || self.ids.iter().any(|&(v, d)| u32::from(v) == id.vendor && u32::from(d) == id.device)
            || self.classes.iter().any(|&(c, m)| (id.class ^ c) & m == 0)
    }
}

#[derive(Debug)]
struct Kernel {
    has_driver_override: bool,
    iommu: bool,
    autoprobe: bool,
    modules_allowed: bool,
    drivers: Vec<Drv>,
    devs: BTreeMap<Addr, Dev>,
    writes: Vec<(String, String)>,
    /// Every driver bind, in order: (device, driver), as the kernel's
    /// `bind` uevents would tell them.
    binds: Vec<(Addr, String)>,
    faults: Vec<Fault>,
    /// The host bridges' directories (`pci0000:00`), fixed at build: every
    /// path below devices/ starts with one.
    roots: std::collections::BTreeSet<String>,
    /// Injected probe outcomes: (device, driver to bind or none, times).
    misprobes: Vec<(Addr, Option<String>, u32)>,
    /// Injected hot-removal: the device goes after this many more writes.
    removals: Vec<(Addr, u32)>,
    /// Processes holding devices through VFIO.
    holders: Vec<SimHolder>,
    /// Processes whose fds the caller may not read (another user's, for a
    /// caller that is not root): `vfio_holders` counts them.
    uninspectable: usize,
    /// Interfaces, disks, framebuffers and what the host does with them.
    uses: hostuse::Uses,
    // ---- Mediated devices (mdev.rs)
    /// Functions whose driver can register them with the mdev core.
    mdev_parents: BTreeMap<Addr, mdev::MdevParent>,
    /// Live mdevs, in creation order.
    mdevs: Vec<mdev::Mdev>,
    /// DMI strings (`devices/virtual/dmi/id`); None: no DMI.
    dmi: Option<spec::DmiSpec>,
    /// Reads are answered as to a user without root (`identity.rs`).
    unprivileged: bool,
    /// Who hears the uevents (`uevent.rs`), and the last SEQNUM sent.
    listeners: Vec<std::sync::Weak<uevent::Listener>>,
    seqnum: u64,
}

/// A process holding a device through VFIO (see `SimKernel::hold_vfio`).
#[derive(Debug, Clone)]
struct SimHolder {
    pid: u32,
    comm: String,
    addr: Addr,
    kind: HoldKind,
    /// Not in the process table (another pid namespace, say): only the
    /// kernel's waiting shows it.
    hidden: bool,
    /// The mdev (by UUID) whose group is held; `addr` is then its parent.
    mdev: Option<u128>,
}

use crate::stub::is_vfio_driver;

/// An injected failure: matching writes fail with `errno` and change nothing.
#[derive(Debug, Clone)]
struct Fault {
    path: String,
    value: Option<String>,
    errno: i32,
    remaining: u32,
}

impl Kernel {
    /// pci_parent_bus_reset: only for a device alone on a bus below a
    /// bridge (a secondary bus reset would hit every device on the bus).
    fn bus_reset_possible(&self, a: Addr) -> bool {
        let dev = self.dev(a);
        dev.parent.is_some()
            && !dev.is_bridge()
            && !self.devs.values().any(|o| o.present && o.addr != a && o.addr.domain == a.domain && o.addr.bus == a.bus)
    }

    /// Consumes one use of the first fault matching this write, if any.
    fn injected_fault(&mut self, path: &str, value: &str) -> Option<i32> {
        let trimmed = value.trim_end_matches('\n');
        let f = self
            .faults
            .iter_mut()
            .find(|f| f.remaining > 0 && f.path == path && f.value.as_deref().is_none_or(|v| v == trimmed))?;
        f.remaining -= 1;
        Some(f.errno)
    }
}

/// `kstrtoul(buf, 0, ...)`: decimal, 0x hex or 0 octal, one trailing newline allowed.
fn kstrtoul(value: &str) -> io::Result<u64> {
    let s = value.strip_suffix('\n').unwrap_or(value);
    let s = s.strip_prefix('+').unwrap_or(s);
    let parsed = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8)
    } else {
        s.parse()
    };
    parsed.map_err(|_| err(libc::EINVAL))
}

/// `kstrtobool`: the first character decides (1/y/Y/0/n/N), or on/off.
fn kstrtobool(value: &str) -> io::Result<bool> {
    let s = value.as_bytes();
    match (s.first(), s.get(1)) {
        (Some(b'1' | b'y' | b'Y'), _) => Ok(true),
        (Some(b'0' | b'n' | b'N'), _) => Ok(false),
        (Some(b'o' | b'O'), Some(b'n' | b'N')) => Ok(true),
        (Some(b'o' | b'O'), Some(b'f' | b'F')) => Ok(false),
        _ => Err(err(libc::EINVAL)),
    }
}

/// `sscanf(buf, "%x %x ...")`: the hex fields that parse, in order.
fn scan_hex(value: &str, max: usize) -> Vec<u32> {
    value
        .split_whitespace()
        .take(max)
        .map(|t| u32::from_str_radix(t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t), 16))
        .take_while(Result::is_ok)
        .map(Result::unwrap_or_default)
        .collect()
}

/// A device name written to bind, unbind or drivers_probe: `sysfs_streq` ignores one newline.
fn name_arg(value: &str) -> &str {
    value.strip_suffix('\n').unwrap_or(value)
}

impl Kernel {
    /// The IOMMU group a holder has open (an mdev's own, or its device's).
    fn holder_group(&self, h: &SimHolder) -> Option<u32> {
        match h.mdev {
            Some(u) => self.mdevs.iter().find(|m| m.uuid == u).map(|m| m.group),
            None => self.dev(h.addr).group,
        }
    }

    /// The device a write is about, whose device lock the kernel takes for it.
    fn locked_by_write(&self, file: File, value: &str) -> Option<Addr> {
        match file {
            File::Dev(a, _) => Some(a),
            File::Drv(_, "bind" | "unbind") | File::Bus("drivers_probe") => self.present(name_arg(value)),
            _ => None,
        }
    }

    /// A process keeps the device's vfio_device open (a device fd or its cdev):
    /// `vfio_unregister_group_dev` waits for it. A group fd alone does not
    /// (Linux >= 6.0 dropped the wait for the container).
    fn device_open(&self, a: Addr) -> bool {
        self.holders.iter().any(|h| h.addr == a && h.kind != HoldKind::Group)
    }

    /// The device whose driver's remove callback this write would run and
    /// which then waits for a holder: an unbind or remove of a held device
    /// on a VFIO driver.
    fn waits_for_holder(&self, file: File, value: &str) -> Option<Addr> {
        let a = match file {
            File::Drv(d, "unbind") => self.present(name_arg(value)).filter(|a| self.dev(*a).driver == Some(d))?,
            File::Dev(a, "remove") if kstrtoul(value).is_ok_and(|v| v != 0) => a,
            _ => return None,
        };
        let on_vfio = self.dev(a).driver.is_some_and(|d| is_vfio_driver(&self.drivers[d].name));
        (on_vfio && self.device_open(a)).then_some(a)
    }

    fn present(&self, name: &str) -> Option<Addr> {
        Addr::parse(name).filter(|a| self.devs.get(a).is_some_and(|d| d.present))
    }

    fn dev(&self, a: Addr) -> &Dev {
        &self.devs[&a]
    }

    fn dev_mut(&mut self, a: Addr) -> &mut Dev {
        self.devs.get_mut(&a).expect("device in the table")
    }

    /// `pci_match_device`: an override names the one driver that may take the
    /// device (even without a matching id); otherwise the ids decide.
    fn matches(&self, d: usize, a: Addr) -> bool {
        let drv = &self.drivers[d];
        let dev = self.dev(a);
        if let Some(o) = &dev.driver_override {
            if *o != drv.name {
                return false;
            }
        }
        let id = Ids {
            vendor: dev.vendor.into(),
            device: dev.device.into(),
            subvendor: dev.subsystem_vendor.into(),
            subdevice: dev.subsystem_device.into(),
            class: dev.class,
        };
        dev.driver_override.is_some() || drv.claims(&id)
    }

    /// The driver's probe routine. vfio-pci and its variants (vfio_pci_core)
    /// refuse non-endpoint headers and devices without an IOMMU group, with EINVAL.
    fn probe(&mut self, d: usize, a: Addr) -> Result<(), i32> {
        let dev = self.dev(a);
        if is_vfio_driver(&self.drivers[d].name) && (dev.is_bridge() || !self.iommu || dev.group.is_none()) {
            return Err(libc::EINVAL);
        }
        // pci_device_can_probe: a VF whose PF turned sriov_drivers_autoprobe
        // off is probed only by the driver its override names.
        if dev.physfn.is_some_and(|pf| !self.dev(pf).sriov_autoprobe) && dev.driver_override.is_none() {
            return Err(libc::ENODEV);
        }
        self.dev_mut(a).driver = Some(d);
        self.binds.push((a, self.drivers[d].name.clone()));
        self.emit("bind", a);
        Ok(())
    }

    /// `device_attach`: the first loaded driver, in priority order, that
    /// matches and whose probe succeeds. A failed probe lets the next try.
    fn attach(&mut self, a: Addr) {
        if self.dev(a).driver.is_some() {
            return;
        }
        for d in 0..self.drivers.len() {
            if self.drivers[d].loaded && self.matches(d, a) && self.probe(d, a).is_ok() {
                return;
            }
        }
    }

    /// `driver_attach`: the driver takes every unbound device it matches.
    fn driver_attach(&mut self, d: usize) {
        let unbound: Vec<Addr> =
            self.devs.values().filter(|v| v.present && v.driver.is_none()).map(|v| v.addr).collect();
        for a in unbound {
            if self.matches(d, a) {
                let _ = self.probe(d, a);
            }
        }
    }

    fn bind(&mut self, d: usize, value: &str) -> io::Result<()> {
        let a = self.present(name_arg(value)).ok_or_else(|| err(libc::ENODEV))?;
        if !self.matches(d, a) {
            return Err(err(libc::ENODEV));
        }
        if self.dev(a).driver.is_some() {
            return Err(err(libc::EBUSY));
        }
        self.probe(d, a).map_err(err)
    }

    fn unbind(&mut self, d: usize, value: &str) -> io::Result<()> {
        match self.present(name_arg(value)) {
            Some(a) if self.dev(a).driver == Some(d) => {
                self.host_driver_gone(a);
                self.mdev_parent_gone(a);
                self.dev_mut(a).driver = None;
                self.emit("unbind", a);
                Ok(())
            }
            _ => Err(err(libc::ENODEV)),
        }
    }

    fn drivers_probe(&mut self, value: &str) -> io::Result<()> {
        let a = self.present(name_arg(value)).ok_or_else(|| err(libc::ENODEV))?;
        if let Some(m) = self.misprobes.iter_mut().find(|m| m.0 == a && m.2 > 0) {
            // A driver whose probe fails leaves the device unbound (and the
            // write still succeeds); "wrong" binds another loaded driver.
            m.2 -= 1;
            let wrong = m.1.clone();
            if let (Some(name), None) = (wrong, self.dev(a).driver) {
                if let Some(d) = self.loaded_driver(&name) {
                    self.dev_mut(a).driver = Some(d);
                    self.binds.push((a, name));
                    self.emit("bind", a);
                }
            }
            return Ok(());
        }
        self.attach(a);
        Ok(())
    }

    /// Count a successful write towards injected hot-removals.
    fn after_write(&mut self) {
        let mut gone = Vec::new();
        for r in self.removals.iter_mut().filter(|r| r.1 > 0) {
            r.1 -= 1;
            if r.1 == 0 {
                gone.push(r.0);
            }
        }
        for a in gone {
            self.remove(a);
        }
    }

    /// `new_id`: refuse an id the driver already claims, add it, then
    /// `driver_attach`, which grabs every unbound device the driver now matches.
    fn new_id(&mut self, d: usize, value: &str) -> io::Result<()> {
        let f = scan_hex(value, 7);
        if f.len() < 2 {
            return Err(err(libc::EINVAL));
        }
        let field = |i: usize, default: u32| f.get(i).copied().unwrap_or(default);
        let id = DynId {
            vendor: f[0],
            device: f[1],
            subvendor: field(2, ANY),
            subdevice: field(3, ANY),
            class: field(4, 0),
            class_mask: field(5, 0),
        };
        let fake = Ids {
            vendor: id.vendor,
            device: id.device,
            subvendor: id.subvendor,
            subdevice: id.subdevice,
            class: id.class,
        };
        if f.len() != 7 && self.drivers[d].claims(&fake) {
            return Err(err(libc::EEXIST));
        }
        self.drivers[d].dynids.push(id);
        self.driver_attach(d);
        Ok(())
    }

    /// `remove_id`: drop the first dynamic id that fits; bound devices stay bound.
    fn remove_id(&mut self, d: usize, value: &str) -> io::Result<()> {
        let f = scan_hex(value, 6);
        if f.len() < 2 {
            return Err(err(libc::EINVAL));
        }
        let field = |i: usize, default: u32| f.get(i).copied().unwrap_or(default);
        let (subvendor, subdevice, class, mask) = (field(2, ANY), field(3, ANY), field(4, 0), field(5, 0));
        let ids = &mut self.drivers[d].dynids;
        let pos = ids.iter().position(|id| {
            id.vendor == f[0]
                && id.device == f[1]
                && (subvendor == ANY || id.subvendor == subvendor)
                && (subdevice == ANY || id.subdevice == subdevice)
                && (id.class ^ class) & mask == 0
        });
        ids.remove(pos.ok_or_else(|| err(libc::ENODEV))?);
        Ok(())
    }

    /// Hot-remove a function with everything below it: a bridge's subtree, a PF's VFs.
    fn remove(&mut self, a: Addr) {
        let below: Vec<Addr> = self
            .devs
            .values()
            .filter(|v| v.present && (v.parent == Some(a) || v.physfn == Some(a)) && v.addr != a)
            .map(|v| v.addr)
            .collect();
        for b in below {
            if self.devs.get(&b).is_some_and(|v| v.present) {
                self.remove(b);
            }
        }
        self.host_driver_gone(a);
        self.mdev_parent_gone(a);
        if self.dev(a).driver.is_some() {
            self.dev_mut(a).driver = None;
            self.emit("unbind", a);
        }
        self.emit("remove", a);
        let dev = self.dev_mut(a);
        dev.present = false;
        dev.numvfs = 0;
        if dev.created {
            self.devs.remove(&a);
        }
    }

    /// `bus/pci/rescan`: removed functions come back fresh (unbound, no
    /// override), then probe. VFs are not found by a bus scan: they return
    /// only when their PF enables SR-IOV again.
    fn rescan(&mut self) {
        let found: Vec<Addr> =
            self.devs.values().filter(|v| !v.present && v.physfn.is_none()).map(|v| v.addr).collect();
        for &a in &found {
            self.dev_mut(a).enumerate();
            self.emit("add", a);
        }
        // pci_bus_add_device calls device_attach itself: the bus's
        // drivers_autoprobe does not hold back a device the scan finds
        // (seen on the guest's 6.1 kernel too).
        for a in found {
            self.attach(a);
        }
    }

    /// Where a PF's VFs live, virtfn0 first: the described VFs in address
    /// order, then further ones at the same stride (the hardware's VF
    /// offset and stride).
    fn vf_slots(&self, pf: Addr) -> Vec<Addr> {
        let described: Vec<Addr> =
            self.devs.values().filter(|v| v.physfn == Some(pf) && !v.created).map(|v| v.addr).collect();
        let Some(&last) = described.last() else { return Vec::new() };
        let stride = match described.as_slice() {
            [a, b, ..] => b.rid().saturating_sub(a.rid()).max(1),
            _ => 1,
        };
        let total = usize::from(self.dev(pf).totalvfs);
        let more = (1..).map_while(|k: u32| Addr::from_rid(pf.domain, last.rid() + k * stride));
        described.iter().copied().chain(more).take(total).collect()
    }

    fn sriov_numvfs(&mut self, pf: Addr, value: &str) -> io::Result<()> {
        let n = u16::try_from(kstrtoul(value)?).map_err(|_| err(libc::EINVAL))?;
        let dev = self.dev(pf);
        if n > dev.totalvfs {
            return Err(err(libc::ERANGE));
        }
        if n == dev.numvfs {
            return Ok(());
        }
        match dev.driver {
            Some(d) if !NO_SRIOV_CONFIGURE.contains(&self.drivers[d].name.as_str()) => {}
            _ => return Err(err(libc::ENOENT)),
        }
        let slots = self.vf_slots(pf);
        if n == 0 {
            for a in slots {
                if self.devs.get(&a).is_some_and(|v| v.present && v.physfn == Some(pf)) {
                    self.remove(a);
                }
            }
            self.dev_mut(pf).numvfs = 0;
            return Ok(());
        }
        if dev.numvfs != 0 {
            return Err(err(libc::EBUSY));
        }
        let n = usize::from(n);
        if slots.len() < n {
            // No described VF to copy, or the addresses ran out.
            return Err(err(libc::EOPNOTSUPP));
        }
        // Another function (even a hot-removed one) already owns one of the addresses.
        if slots[..n].iter().any(|a| self.devs.get(a).is_some_and(|v| v.physfn != Some(pf))) {
            return Err(err(libc::EBUSY));
        }
        let template = self.devs.values().rev().find(|v| v.physfn == Some(pf) && !v.created).cloned();
        let template = template.expect("slots exist only with a described VF");
        let mut next_group = self.devs.values().filter_map(|v| v.group).max().map_or(0, |g| g + 1);
        for &a in &slots[..n] {
            let dev = self.devs.entry(a).or_insert_with(|| {
                let group = template.group.map(|_| {
                    next_group += 1;
                    next_group - 1
                });
                Dev { addr: a, group, created: true, resets: 0, locked: false, ..template.clone() }
            });
            dev.enumerate();
        }
        self.dev_mut(pf).numvfs = n as u16;
        // As for a rescan, device_attach directly: only the PF's
        // sriov_drivers_autoprobe (in `probe`) holds new VFs back.
        // pci_iov_add_virtfn, VF by VF: its add uevent, then its probe.
        for &a in &slots[..n] {
            self.emit("add", a);
            self.attach(a);
        }
        Ok(())
    }

    fn reset_method(&mut self, a: Addr, value: &str) -> io::Result<()> {
        let s = value.split('\n').next().unwrap_or_default().trim();
        let dev = self.dev_mut(a);
        let methods = match s {
            "default" => dev.reset_supported.clone(),
            _ => {
                let want: Vec<String> = s.split_whitespace().map(str::to_string).collect();
                if want.iter().any(|m| !dev.reset_supported.contains(m)) {
                    return Err(err(libc::EINVAL));
                }
                want
            }
        };
        dev.reset_methods = methods;
        Ok(())
    }

    fn numa_node(&mut self, a: Addr, value: &str) -> io::Result<()> {
        let s = value.strip_suffix('\n').unwrap_or(value);
        let node: i32 = s.parse().map_err(|_| err(libc::EINVAL))?;
        if node != -1 && !self.devs.values().any(|v| v.numa_node == node) {
            return Err(err(libc::EINVAL));
        }
        self.dev_mut(a).numa_node = node;
        Ok(())
    }

    /// The kernel's `store` method for one attribute.
    fn store(&mut self, file: File, value: &str) -> io::Result<()> {
        match file {
            File::Dev(a, "driver_override") => {
                // The kernel keeps what precedes the first newline; nothing left clears it.
                let v = value.split('\n').next().unwrap_or_default();
                if v.len() >= 4095 {
                    return Err(err(libc::EINVAL));
                }
                self.dev_mut(a).driver_override = (!v.is_empty()).then(|| v.to_string());
                Ok(())
            }
            File::Dev(a, "reset") => {
                if kstrtoul(value)? != 1 {
                    return Err(err(libc::EINVAL));
                }
                // The kernel tries each enabled method in order; ENOTTY from
                // one means "not here", try the next.
                let dev = self.dev(a);
                let works = dev.reset_methods.iter().any(|m| m != "bus" || self.bus_reset_possible(a));
                if !works {
                    return Err(err(libc::ENOTTY));
                }
                self.dev_mut(a).resets += 1;
                Ok(())
            }
            File::Dev(a, "remove") => {
                if kstrtoul(value)? != 0 {
                    self.remove(a);
                }
                Ok(())
            }
            File::Dev(a, "sriov_numvfs") => self.sriov_numvfs(a, value),
            File::Dev(a, "sriov_drivers_autoprobe") => {
                self.dev_mut(a).sriov_autoprobe = kstrtobool(value)?;
                Ok(())
            }
            File::Dev(a, "reset_method") => self.reset_method(a, value),
            File::Dev(a, "numa_node") => self.numa_node(a, value),
            File::Drv(d, "bind") => self.bind(d, value),
            File::Drv(d, "unbind") => self.unbind(d, value),
            File::Drv(d, "new_id") => self.new_id(d, value),
            File::Drv(d, "remove_id") => self.remove_id(d, value),
            File::Bus("drivers_probe") => self.drivers_probe(value),
            File::Bus("drivers_autoprobe") => {
                self.autoprobe = !value.starts_with('0');
                Ok(())
            }
            File::Bus("rescan") => {
                if kstrtoul(value)? != 0 {
                    self.rescan();
                }
                Ok(())
            }
            f @ (File::Net(..) | File::Blk(..) | File::Vt(..)) => self.store_use(f, value),
            f @ (File::MdevType(..) | File::Mdev(..)) => self.store_mdev(f, value),
            _ => Err(err(libc::EACCES)),
        }
    }

    /// The kernel's `show` method for one attribute.
    fn show(&self, file: File) -> String {
        let line = |s: String| s + "\n";
        match file {
            File::Dev(a, name) => {
                let dev = self.dev(a);
                line(match name {
                    "vendor" => format!("0x{:04x}", dev.vendor),
                    "device" => format!("0x{:04x}", dev.device),
                    "subsystem_vendor" => format!("0x{:04x}", dev.subsystem_vendor),
                    "subsystem_device" => format!("0x{:04x}", dev.subsystem_device),
                    "class" => format!("0x{:06x}", dev.class),
                    "numa_node" => dev.numa_node.to_string(),
                    "driver_override" => dev.driver_override.clone().unwrap_or_else(|| "(null)".into()),
                    // With every method disabled the kernel prints nothing at all.
                    "reset_method" if dev.reset_methods.is_empty() => return String::new(),
                    "reset_method" => dev.reset_methods.join(" "),
                    "boot_vga" => u8::from(dev.boot_vga).to_string(),
                    "sriov_totalvfs" => dev.totalvfs.to_string(),
                    "sriov_numvfs" => dev.numvfs.to_string(),
                    "sriov_drivers_autoprobe" => u8::from(dev.sriov_autoprobe).to_string(),
                    "uevent" => return self.uevent(dev),
                    "config" | "vpd" => {
                        return String::from_utf8_lossy(&self.bytes(file).unwrap_or_default()).into_owned()
                    }
                    l if l.contains("_link_") => {
                        dev.pcie.as_ref().map(|p| identity::link_file(p, l)).unwrap_or_default()
                    }
                    _ => String::new(),
                })
            }
            f @ (File::Net(..) | File::Blk(..) | File::Vt(..)) => self.show_use(f),
            f @ (File::MdevType(..) | File::Mdev(..)) => self.show_mdev(f),
            File::Dmi(name) => line(self.dmi_value(name).unwrap_or_default().to_string()),
            File::Bus("drivers_autoprobe") => line(u8::from(self.autoprobe).to_string()),
            File::Drv(..) | File::Bus(_) => String::new(),
        }
    }

    /// The kernel's PCI `uevent`: the driver core's DRIVER= (when bound), then
    /// the PCI bus's variables, upper-case hex as the kernel prints them.
    fn uevent(&self, dev: &Dev) -> String {
        let mut s = String::new();
        if let Some(d) = dev.driver {
            s += &format!("DRIVER={}\n", self.drivers[d].name);
        }
        let (v, d, sv, sd, c) = (dev.vendor, dev.device, dev.subsystem_vendor, dev.subsystem_device, dev.class);
        s += &format!("PCI_CLASS={c:04X}\nPCI_ID={v:04X}:{d:04X}\nPCI_SUBSYS_ID={sv:04X}:{sd:04X}\n");
        s += &format!("PCI_SLOT_NAME={}\n", dev.addr);
        s += &format!(
            "MODALIAS=pci:v{v:08X}d{d:08X}sv{sv:08X}sd{sd:08X}bc{:02X}sc{:02X}i{:02X}\n",
            c >> 16,
            (c >> 8) & 0xff,
            c & 0xff
        );
        s
    }

    /// `modprobe`: every driver of the module registers and, with
    /// drivers_autoprobe, takes the unbound devices it matches.
    fn load_module(&mut self, module: &str) -> io::Result<()> {
        let module = module.replace('-', "_");
        let of_module: Vec<usize> = (0..self.drivers.len()).filter(|&d| self.drivers[d].module == module).collect();
        if of_module.is_empty() {
            return Err(err(libc::ENOENT));
        }
        if of_module.iter().all(|&d| self.drivers[d].loaded) {
            return Ok(());
        }
        if !self.modules_allowed {
            return Err(err(libc::EPERM));
        }
        let loadable: Vec<usize> =
            of_module.into_iter().filter(|&d| !self.drivers[d].loaded && self.drivers[d].available).collect();
        if loadable.is_empty() {
            return Err(err(libc::ENOENT));
        }
        for d in loadable {
            self.drivers[d].loaded = true;
            if self.autoprobe {
                self.driver_attach(d);
            }
        }
        Ok(())
    }
}

/// A simulated kernel. Every method takes the one lock, so concurrent
/// callers see the kernel's writes one at a time, as sysfs serializes them.
pub struct SimKernel {
    inner: Arc<Inner>,
}

struct Inner {
    kernel: Mutex<Kernel>,
    /// Signalled when a holder lets go or a waiting writer finishes.
    changed: Condvar,
}

impl SimKernel {
    /// The `test:///default` host (see `builtin.rs`).
    pub fn builtin() -> SimKernel {
        SimKernel::from_json(builtin::HOST).expect("the built-in host description is valid")
    }

    /// A host from its JSON description (format: `spec.rs`).
    pub fn from_json(text: &str) -> Result<SimKernel, String> {
        SimKernel::from_spec(HostSpec::from_json(text)?)
    }

    /// A host from a parsed description, after checking that it is consistent.
    pub fn from_spec(spec: HostSpec) -> Result<SimKernel, String> {
        let kernel = Mutex::new(validate::build_kernel(spec)?);
        Ok(SimKernel { inner: Arc::new(Inner { kernel, changed: Condvar::new() }) })
    }

    /// A panic elsewhere while holding the lock leaves the kernel as
    /// consistent as after any single write, so keep going.
    fn lock(&self) -> MutexGuard<'_, Kernel> {
        self.inner.kernel.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait (the kernel lock released meanwhile) until something changes.
    fn wait<'a>(&'a self, k: MutexGuard<'a, Kernel>) -> MutexGuard<'a, Kernel> {
        self.inner.changed.wait(k).unwrap_or_else(|p| p.into_inner())
    }

    /// Driver bound to a present device, by its kernel name.
    pub fn driver_of(&self, addr: &str) -> Option<String> {
        let k = self.lock();
        let a = k.present(addr)?;
        k.dev(a).driver.map(|d| k.drivers[d].name.clone())
    }

    /// Resets done through the device's `reset` file so far.
    pub fn reset_count(&self, addr: &str) -> u32 {
        let k = self.lock();
        Addr::parse(addr).and_then(|a| k.devs.get(&a)).map_or(0, |d| d.resets)
    }

    /// Every driver that was ever bound to this device, in order (the
    /// `bind` uevents a real kernel sends).
    pub fn bind_history(&self, addr: &str) -> Vec<String> {
        let k = self.lock();
        let Some(a) = Addr::parse(addr) else { return Vec::new() };
        k.binds.iter().filter(|(b, _)| *b == a).map(|(_, d)| d.clone()).collect()
    }

    /// Every successful write, in order, as (path as given, value as given).
    pub fn writes(&self) -> Vec<(String, String)> {
        self.lock().writes.clone()
    }

    /// Whether a module (either spelling) is loaded.
    pub fn module_loaded(&self, module: &str) -> bool {
        let module = module.replace('-', "_");
        self.lock().drivers.iter().any(|d| d.loaded && d.module == module)
    }

    /// Fault injection: the next `times` writes to `path` (exactly as the
    /// caller spells it) whose value, without its newline, is `value` (any
    /// value if None) fail with `errno` and change nothing.
    pub fn fail_writes(&self, path: &str, value: Option<&str>, errno: i32, times: u32) {
        self.lock().faults.push(Fault {
            path: path.to_string(),
            value: value.map(str::to_string),
            errno,
            remaining: times,
        });
    }

    /// Fault injection: the next `times` writes of this device's address to
    /// drivers_probe bind `driver` (a loaded driver that does not match it),
    /// or nothing at all with None (its driver's probe failed).
    pub fn misprobe(&self, addr: &str, driver: Option<&str>, times: u32) {
        let mut k = self.lock();
        if let Some(a) = Addr::parse(addr) {
            k.misprobes.push((a, driver.map(str::to_string), times));
        }
    }

    /// Fault injection: the device is hot-removed right after the `after`-th
    /// successful write from now (any file).
    pub fn remove_after_writes(&self, addr: &str, after: u32) {
        let mut k = self.lock();
        if let Some(a) = Addr::parse(addr) {
            k.removals.push((a, after));
        }
    }

    /// Drop every injected fault not yet used up.
    pub fn clear_faults(&self) {
        let mut k = self.lock();
        k.faults.clear();
        k.misprobes.clear();
        k.removals.clear();
    }

    // ---- Busy devices: processes holding devices through VFIO.

    /// A process `pid` named `comm` opens the device through VFIO: its
    /// group's /dev/vfio/N, its cdev, or a device fd (the group and a device
    /// fd from it, as QEMU does; `UnnamedDevice`: a device fd alone on a
    /// kernel before 6.18, which the scan reports for every VFIO device). With `hidden`, the process is not in the
    /// process table `vfio_holders` reads (it lives in another pid
    /// namespace), yet the kernel waits for it all the same. The device must
    /// be on a VFIO driver, as /dev/vfio exists only then.
    pub fn hold_vfio(&self, addr: &str, pid: u32, comm: &str, kind: HoldKind, hidden: bool) -> Result<(), String> {
        let mut k = self.lock();
        let a = k.present(addr).ok_or_else(|| format!("no device {addr}"))?;
        let dev = k.dev(a);
        if !dev.driver.is_some_and(|d| is_vfio_driver(&k.drivers[d].name)) || dev.group.is_none() {
            return Err(format!("{addr} is not on a VFIO driver with an IOMMU group: nothing to open"));
        }
        k.holders.push(SimHolder { pid, comm: comm.to_string(), addr: a, kind, hidden, mdev: None });
        Ok(())
    }

    /// A process `pid` named `comm` opens the group of the mdev `uuid`
    /// (/dev/vfio/N of its own group, as QEMU does for a mediated device).
    pub fn hold_vfio_mdev(&self, uuid: &str, pid: u32, comm: &str) -> Result<(), String> {
        self.hold_vfio_mdev_as(uuid, pid, comm, HoldKind::Group)
    }

    /// `hold_vfio_mdev` through `kind`: its group, its cdev
    /// (/dev/vfio/devices/vfioN, as an iommufd VMM does) or a device fd.
    pub fn hold_vfio_mdev_as(&self, uuid: &str, pid: u32, comm: &str, kind: HoldKind) -> Result<(), String> {
        let mut k = self.lock();
        let m = k.mdev_by_name(uuid).ok_or_else(|| format!("no mdev {uuid}"))?;
        let (addr, u) = (m.parent, m.uuid);
        k.holders.push(SimHolder { pid, comm: comm.to_string(), addr, kind, hidden: false, mdev: Some(u) });
        Ok(())
    }

    /// The process `pid` closes every VFIO fd it has (or exits): writers
    /// the kernel kept waiting for it go on.
    pub fn release_holder(&self, pid: u32) {
        self.lock().holders.retain(|h| h.pid != pid);
        self.inner.changed.notify_all();
    }

    /// `n` processes the caller may not inspect (as for a caller without root).
    pub fn set_uninspectable_processes(&self, n: usize) {
        self.lock().uninspectable = n;
    }

    /// Whether a writer is waiting in the kernel on this device (its lock held).
    pub fn write_waiting(&self, addr: &str) -> bool {
        let k = self.lock();
        Addr::parse(addr).and_then(|a| k.devs.get(&a)).is_some_and(|d| d.locked)
    }

    /// What `swapoff NAME` does (a /dev path or a swap file's path).
    pub fn swapoff(&self, name: &str) -> io::Result<()> {
        self.lock().swapoff(name)
    }

    /// What `ip link delete NAME` does to a bridge, bond, VLAN or macvlan.
    pub fn delete_link(&self, name: &str) -> io::Result<()> {
        self.lock().delete_link(name)
    }

    /// false: `load_module` fails with EPERM, like a kernel with module loading disabled.
    pub fn set_module_loading_allowed(&self, allowed: bool) {
        self.lock().modules_allowed = allowed;
    }
}

impl Sysfs for SimKernel {
    fn read(&self, path: &str) -> io::Result<String> {
        let k = self.lock();
        match k.resolve(path, true)? {
            Entry::Dir(_) => Err(err(libc::EISDIR)),
            Entry::File(f) if f.readable() => match k.read_error(f) {
                Some(e) => Err(err(e)),
                None => Ok(k.show(f)),
            },
            _ => Err(err(libc::EACCES)),
        }
    }

    // ---- libvirt's device tree (tree) ----
    fn read_bytes(&self, path: &str, limit: usize) -> io::Result<Vec<u8>> {
        let k = self.lock();
        match k.resolve(path, true)? {
            Entry::Dir(_) => Err(err(libc::EISDIR)),
            Entry::File(f) if f.readable() => {
                let mut b = k.bytes(f)?;
                b.truncate(limit);
                Ok(b)
            }
            _ => Err(err(libc::EACCES)),
        }
    }

    fn net_features(&self, iface: &str) -> io::Result<Vec<String>> {
        let k = self.lock();
        let i = k.net_index(iface).ok_or_else(|| err(libc::ENODEV))?;
        Ok(k.uses.nets[i].features.clone())
    }

    fn write(&self, path: &str, value: &str) -> io::Result<()> {
        let mut k = self.lock();
        if let Some(errno) = k.injected_fault(path, value) {
            return Err(err(errno));
        }
        // The device lock: a write about a device whose lock a waiting
        // writer holds waits behind it.
        let mut entry = k.resolve(path, true)?;
        while let Entry::File(f) = entry {
            match k.locked_by_write(f, value) {
                Some(a) if k.dev(a).locked => {
                    k = self.wait(k);
                    entry = k.resolve(path, true)?;
                }
                _ => break,
            }
        }
        if let Entry::File(f) = entry {
            if let Some(a) = k.waits_for_holder(f, value) {
                // __device_release_driver: the driver link goes first, then
                // the driver's remove waits for the holder, device locked.
                let dev = k.dev_mut(a);
                dev.driver = None;
                dev.locked = true;
                k.emit("unbind", a);
                while k.device_open(a) {
                    k = self.wait(k);
                }
                k.dev_mut(a).locked = false;
                if matches!(f, File::Dev(_, "remove")) {
                    k.remove(a);
                }
                k.writes.push((path.to_string(), value.to_string()));
                k.after_write();
                drop(k);
                self.inner.changed.notify_all();
                return Ok(());
            }
        }
        match entry {
            Entry::Dir(_) => return Err(err(libc::EISDIR)),
            // sysfs refuses the open(2) itself for a file without a store method.
            Entry::File(f) if !f.writable() => return Err(err(libc::EACCES)),
            // sysfs never calls store for zero bytes.
            Entry::File(_) if value.is_empty() => {}
            Entry::File(f) => k.store(f, value)?,
            Entry::Link(_) => return Err(err(libc::EACCES)),
        }
        k.writes.push((path.to_string(), value.to_string()));
        k.after_write();
        Ok(())
    }

    fn read_link(&self, path: &str) -> io::Result<String> {
        match self.lock().resolve(path, false)? {
            Entry::Link(target) => Ok(target),
            _ => Err(err(libc::EINVAL)),
        }
    }

    fn list_dir(&self, path: &str) -> io::Result<Vec<String>> {
        match self.lock().resolve(path, true)? {
            Entry::Dir(names) => Ok(names),
            _ => Err(err(libc::ENOTDIR)),
        }
    }

    fn exists(&self, path: &str) -> bool {
        self.lock().resolve(path, false).is_ok()
    }

    fn load_module(&self, module: &str) -> io::Result<()> {
        self.lock().load_module(module)
    }

    /// depmod's aliases of every module on "disk" (available), from its
    /// drivers' static id tables; dynamic ids are not in modules.alias.
    fn matching_aliases(&self, modalias: &str) -> io::Result<Vec<ModuleAlias>> {
        let k = self.lock();
        let mut out = Vec::new();
        for drv in k.drivers.iter().filter(|d| d.available) {
            let ids = drv.ids.iter().map(|&(v, d)| modalias::pci_alias(Some(v), Some(d), 0, 0));
            let classes = drv.classes.iter().map(|&(c, m)| modalias::pci_alias(None, None, c, m));
            for pattern in ids.chain(classes) {
                if modalias::glob_match(&pattern, modalias) {
                    out.push(ModuleAlias { pattern, module: drv.module.clone() });
                }
            }
        }
        Ok(out)
    }

    /// depmod's `vfio_pci:` aliases of every module on "disk" (available).
    fn vfio_aliases(&self) -> io::Result<Vec<ModuleAlias>> {
        let k = self.lock();
        let mut out = Vec::new();
        for drv in k.drivers.iter().filter(|d| d.available) {
            for pattern in &drv.vfio_aliases {
                out.push(ModuleAlias { pattern: pattern.clone(), module: drv.module.clone() });
            }
        }
        Ok(out)
    }

    // --- Host use (see hostuse.rs) ---
    fn net_addresses(&self, iface: &str) -> Vec<String> {
        let k = self.lock();
        k.net_index(iface).map(|i| k.uses.nets[i].addresses.clone()).unwrap_or_default()
    }

    fn net_routes(&self, iface: &str) -> Vec<String> {
        let k = self.lock();
        k.net_index(iface).map(|i| k.uses.nets[i].routes.clone()).unwrap_or_default()
    }

    fn mounts(&self) -> Vec<(String, String)> {
        self.lock().mount_table()
    }

    fn swaps(&self) -> Vec<SwapArea> {
        self.lock().swap_table().into_iter().map(|(path, device, file)| SwapArea { path, device, file }).collect()
    }

    fn set_master(&self, iface: &str, master: Option<&str>) -> io::Result<()> {
        self.lock().set_master(iface, master)
    }

    fn set_link_up(&self, iface: &str, up: bool) -> io::Result<()> {
        self.lock().set_link_up(iface, up)
    }

    fn vfio_holders(&self, dev: &VfioDevice<'_>) -> io::Result<HolderScan> {
        let k = self.lock();
        let a = Addr::parse(dev.address);
        let mut out = HolderScan { holders: Vec::new(), uninspected: k.uninspectable };
        // What each visible process holds of `dev`, as the /proc scan sees it.
        let mut seen: Vec<(u32, String, Vec<HoldKind>)> = Vec::new();
        for h in k.holders.iter().filter(|h| !h.hidden) {
            let mdev = h.mdev.and_then(|u| k.mdevs.iter().find(|m| m.uuid == u));
            let holds = match (h.kind, mdev) {
                (HoldKind::Group, _) => dev.group.is_some() && k.holder_group(h) == dev.group,
                // Before Linux 6.18 a device fd does not say whose it is.
                (HoldKind::UnnamedDevice, _) => true,
                // An mdev's cdev is seen only by its node (the /proc scan
                // compares device numbers); a named device fd by its path.
                (HoldKind::Cdev, Some(m)) => {
                    dev.address == mdev::format_uuid(m.uuid) && dev.cdev == Some(mdev::mdev_cdev(m).as_str())
                }
                (HoldKind::Device, Some(m)) => dev.address == mdev::format_uuid(m.uuid),
                (_, None) if h.mdev.is_some() => false,
                _ => Some(h.addr) == a,
            };
            if !holds {
                continue;
            }
            match seen.iter_mut().find(|(pid, ..)| *pid == h.pid) {
                Some((.., kinds)) => kinds.push(h.kind),
                None => seen.push((h.pid, h.comm.clone(), vec![h.kind])),
            }
        }
        for (pid, comm, kinds) in seen {
            out.holders.push(Holder { pid, comm, kind: crate::sysfs::holders::strongest(kinds) });
        }
        out.holders.sort_by_key(|h| h.pid);
        Ok(out)
    }

    /// The write in a thread of its own, waited for at most `limit`; on
    /// timeout the thread goes on waiting in the simulated kernel, as a
    /// real writer would, and finishes when the holder lets go.
    fn write_bounded(&self, path: &str, value: &str, limit: Duration) -> io::Result<()> {
        let me = SimKernel { inner: self.inner.clone() };
        let (path, value) = (path.to_string(), value.to_string());
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new().name("sim-sysfs-write".into()).spawn(move || {
            let _ = tx.send(me.write(&path, &value));
        })?;
        match rx.recv_timeout(limit) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                Err(io::Error::new(io::ErrorKind::TimedOut, format!("the kernel did not return within {limit:?}")))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(io::Error::other("the simulated write panicked")),
        }
    }

    fn pci_names(&self, vendor: u16, device: u16) -> super::PciNames {
        // The description names ids as pci.ids would: a vendor by any of
        // its devices, a model by any device of that vendor and device id.
        let k = self.lock();
        super::PciNames {
            vendor: k.devs.values().filter(|d| d.vendor == vendor).find_map(|d| d.vendor_name.clone()),
            product: k
                .devs
                .values()
                .filter(|d| d.vendor == vendor && d.device == device)
                .find_map(|d| d.product_name.clone()),
        }
    }

    // ---- Events: a listener on this kernel's uevents (`uevent.rs`).
    fn uevents(&self) -> io::Result<Box<dyn crate::sysfs::uevent::UeventSource>> {
        let (source, listener) = uevent::SimUevents::new()?;
        self.lock().listeners.push(listener);
        Ok(Box::new(source))
    }
}

#[cfg(test)]
mod tests;
