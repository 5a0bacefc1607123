//! Node-device events from the kernel's uevents, as libvirt's node-device
//! driver reports them: a PCI function that appears is CREATED, one that
//! goes away DELETED, and any other change the kernel announces (bind,
//! unbind, change, move: another driver, whoever moved it) is an UPDATE.
//! A PCI function's network interface (`net_IFNAME_MAC`) is CREATED when
//! its driver registers it, DELETED when the driver lets go of it, and a
//! rename (`move`) is the old name DELETED then the new one CREATED, as
//! libvirt's udev driver handles add/remove/move of the net subsystem.
//!
//! A [`Watcher`] owns one uevent listener of a host (real netlink or the
//! simulated kernel's) and turns what is waiting into [`DeviceEvent`]s when
//! asked; it never reads on its own, so nothing runs, and nothing wakes up,
//! between kernel events. The C API drives it from the caller's event loop
//! (`capi/node_device_events.rs`), `nodedev watch` from poll(2).
//!
//! A watcher keeps its view of the tree (each device's sysfs path, a
//! function's driver, an interface's MAC): an interface's `remove` uevent
//! names a path that no longer exists, and the view says which device it
//! was. When the listener overflows (ENOBUFS: the kernel dropped uevents
//! the reader was too slow for), the watcher reads the tree again and
//! reports the difference as events (action "resync"), so a client's view
//! is right again; [`Watcher::overflows`] counts such overflows. libvirt
//! 9.x's udev driver stops receiving events for good at that point.

use crate::address::PciAddress;
use crate::error::{Error, Result};
use crate::host::{net_node_name, NetIface};
use crate::sysfs::uevent::{Uevent, UeventSource};
use crate::sysfs::Sysfs;
use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// libvirt's event kinds (virNodeDeviceEventID + virNodeDeviceEventLifecycleType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// LIFECYCLE / VIR_NODE_DEVICE_EVENT_CREATED: the device appeared.
    Created,
    /// LIFECYCLE / VIR_NODE_DEVICE_EVENT_DELETED: the device went away.
    Deleted,
    /// UPDATE: the device changed (another driver, no driver).
    Updated,
}

/// One event about one device.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceEvent {
    #[serde(rename = "event")]
    pub kind: EventKind,
    /// libvirt's name: `pci_0000_03_00_0`, `net_eth0_52_54_00_12_34_56`.
    #[serde(rename = "device")]
    pub name: String,
    /// The kernel's name: `0000:03:00.0`, or the interface's (`eth0`).
    pub address: String,
    /// libvirt's name of its parent (the upstream bridge, or "computer";
    /// for an interface, its PCI function).
    pub parent: String,
    /// "pci" or "net": the kernel subsystem of the device.
    pub subsystem: String,
    /// An interface's MAC address, as its name has it; None for a PCI function.
    pub mac: Option<String>,
    /// The kernel's path of the device under /sys (`/devices/pci0000:00/...`),
    /// as the uevent gives it. Not part of the JSON: `parent` says where it is.
    #[serde(skip)]
    pub devpath: String,
    /// The uevent it comes from: add, remove, bind, unbind, change, move;
    /// "resync" for a difference found after the listener overflowed.
    pub action: String,
    /// The driver the kernel names in the uevent (a bind's), if any.
    pub driver: Option<String>,
    /// The kernel's sequence number of the uevent.
    pub seqnum: Option<u64>,
    /// The interface, for an event about one.
    #[serde(skip)]
    pub net: Option<NetIface>,
}

/// `/devices/...` from a sysfs link target (`../../../devices/...`).
fn devpath_of(link: &str) -> String {
    format!("/{}", link.trim_start_matches("../").trim_start_matches("./"))
}

/// The PCI function closest above an interface's `.../net/IFNAME` path.
fn pci_above_net(devpath: &str) -> Option<PciAddress> {
    let comps: Vec<&str> = devpath.split('/').collect();
    let (last, above) = comps.split_last()?;
    if last.is_empty() || above.last() != Some(&"net") {
        return None;
    }
    above.iter().rev().find_map(|c| PciAddress::parse(c).ok().filter(|_| c.contains(':')))
}

impl DeviceEvent {
    /// The event a kernel uevent about a PCI function means for libvirt's
    /// node devices; None for uevents about other subsystems and for
    /// actions that change nothing a client sees (online/offline).
    pub fn from_uevent(u: &Uevent) -> Option<DeviceEvent> {
        if u.subsystem != "pci" {
            return None;
        }
        let kind = match u.action.as_str() {
            "add" => EventKind::Created,
            "remove" => EventKind::Deleted,
            "bind" | "unbind" | "change" | "move" => EventKind::Updated,
            _ => return None,
        };
        let mut ev = DeviceEvent::pci(kind, &u.devpath, &u.action, u.var("DRIVER").map(str::to_string))?;
        ev.seqnum = u.var("SEQNUM").and_then(|s| s.parse().ok());
        Some(ev)
    }

    fn pci(kind: EventKind, devpath: &str, action: &str, driver: Option<String>) -> Option<DeviceEvent> {
        let mut components = devpath.rsplit('/');
        let last = components.next()?;
        let addr = PciAddress::parse(last).ok().filter(|_| last.contains(':'))?;
        let parent = components
            .next()
            .and_then(|p| PciAddress::parse(p).ok())
            .map_or_else(|| "computer".to_string(), |p| p.node_name());
        Some(DeviceEvent {
            kind,
            name: addr.node_name(),
            address: addr.to_string(),
            parent,
            subsystem: "pci".to_string(),
            mac: None,
            devpath: devpath.to_string(),
            action: action.to_string(),
            driver,
            seqnum: None,
            net: None,
        })
    }

    fn net(kind: EventKind, n: &NetIface, devpath: &str, action: &str, seqnum: Option<u64>) -> DeviceEvent {
        DeviceEvent {
            kind,
            name: n.name.clone(),
            address: n.iface.clone(),
            parent: n.parent.node_name(),
            subsystem: "net".to_string(),
            mac: n.mac.clone(),
            devpath: devpath.to_string(),
            action: action.to_string(),
            driver: None,
            seqnum,
            net: Some(n.clone()),
        }
    }
}

/// What a watcher last knew of one node device.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    /// `/devices/...`
    devpath: String,
    /// A PCI function's driver.
    driver: Option<String>,
    /// An interface.
    net: Option<NetIface>,
}

impl Known {
    fn event(&self, kind: EventKind, action: &str) -> Option<DeviceEvent> {
        match &self.net {
            Some(n) => Some(DeviceEvent::net(kind, n, &self.devpath, action, None)),
            None => DeviceEvent::pci(kind, &self.devpath, action, self.driver.clone()),
        }
    }
}

/// Node devices by libvirt's name.
type View = BTreeMap<String, Known>;

/// The interface `iface` as the tree shows it now, if it belongs to a PCI
/// function (and sits at `devpath`, when given: the name may be another
/// interface's by now).
fn net_now(sysfs: &dyn Sysfs, iface: &str, devpath: Option<&str>) -> Option<(NetIface, String)> {
    if iface.is_empty() || iface.contains('/') || iface == "." || iface == ".." {
        return None;
    }
    let at = devpath_of(&sysfs.read_link(&format!("class/net/{iface}")).ok()?);
    if devpath.is_some_and(|d| d != at) || !at.ends_with(&format!("/net/{iface}")) {
        return None;
    }
    let parent = pci_above_net(&at)?;
    let mac = sysfs.read(&format!("class/net/{iface}/address")).ok().map(|m| m.trim_end().to_string());
    let mac = mac.filter(|m| !m.is_empty());
    let n = NetIface {
        name: net_node_name(iface, mac.as_deref()),
        iface: iface.to_string(),
        mac,
        parent,
        sysfs_path: format!("/sys{at}"),
    };
    Some((n, at))
}

/// Read the tree: every PCI function with its driver, every interface of one.
fn scan(sysfs: &dyn Sysfs) -> std::io::Result<View> {
    // A host without PCI (or without network interfaces) has no such directory.
    let list = |dir: &str| match sysfs.list_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        other => other,
    };
    let mut view = View::new();
    for name in list("bus/pci/devices")? {
        let Ok(addr) = PciAddress::parse(&name) else { continue };
        let Ok(link) = sysfs.read_link(&format!("bus/pci/devices/{name}")) else { continue };
        let driver = sysfs
            .read_link(&format!("bus/pci/devices/{name}/driver"))
            .ok()
            .and_then(|l| l.rsplit('/').next().map(str::to_string));
        view.insert(addr.node_name(), Known { devpath: devpath_of(&link), driver, net: None });
    }
    for iface in list("class/net")? {
        if let Some((n, at)) = net_now(sysfs, &iface, None) {
            view.insert(n.name.clone(), Known { devpath: at, driver: None, net: Some(n) });
        }
    }
    Ok(view)
}

/// Messages one `ready` reads at most: the rest waits for the next call
/// (the descriptor stays readable), so a flood never holds a caller's loop.
pub const MAX_BATCH: usize = 512;

struct Tracking {
    view: View,
    /// The listener overflowed; the tree is read again once it is drained.
    resync: bool,
}

/// A listener on a host's kernel events.
pub struct Watcher {
    source: Box<dyn UeventSource>,
    sysfs: Arc<dyn Sysfs>,
    tracking: Mutex<Tracking>,
    overflows: AtomicU64,
    /// Overflows `new_overflows` has told of.
    told: AtomicU64,
}

impl Watcher {
    /// Start listening: events from now on. Unsupported for a sysfs tree
    /// that is not the running kernel's (`root=`): it has no events.
    pub fn new(sysfs: Arc<dyn Sysfs>) -> Result<Watcher> {
        let source = sysfs.uevents().map_err(|e| match e.kind() {
            std::io::ErrorKind::Unsupported => Error::Unsupported(e.to_string()),
            _ => Error::System(format!("cannot listen to the kernel's uevents (netlink KOBJECT_UEVENT): {e}")),
        })?;
        // Listening first, then reading: nothing falls between the two.
        let view = scan(sysfs.as_ref())
            .map_err(|e| Error::System(format!("cannot read the device tree (bus/pci/devices, class/net): {e}")))?;
        Ok(Watcher {
            source,
            sysfs,
            tracking: Mutex::new(Tracking { view, resync: false }),
            overflows: AtomicU64::new(0),
            told: AtomicU64::new(0),
        })
    }

    /// Readable (poll POLLIN) while events wait. Owned by the watcher:
    /// valid as long as it lives, never to be closed by the caller.
    pub fn fd(&self) -> RawFd {
        self.source.fd()
    }

    /// How many times the listener overflowed (kernel events lost, then the
    /// tree read again) since listening began.
    pub fn overflows(&self) -> u64 {
        self.overflows.load(Ordering::SeqCst)
    }

    /// Overflows since the last call (for a reader that keeps its own count).
    pub fn new_overflows(&self) -> u64 {
        let now = self.overflows();
        now.saturating_sub(self.told.swap(now, Ordering::SeqCst))
    }

    /// The events waiting now, oldest first, at most [`MAX_BATCH`] messages'
    /// worth (the descriptor stays readable for the rest); empty when none
    /// (never blocks).
    pub fn ready(&self) -> Result<Vec<DeviceEvent>> {
        let mut t = self.tracking.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        let mut drained = false;
        for _ in 0..MAX_BATCH {
            match self.source.recv() {
                Ok(Some(msg)) => {
                    if let Some(u) = Uevent::parse(&msg) {
                        self.apply(&mut t.view, &u, &mut out);
                    }
                }
                Ok(None) => {
                    drained = true;
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.overflows.fetch_add(1, Ordering::SeqCst);
                    t.resync = true;
                }
                Err(e) => return Err(Error::System(format!("cannot read the kernel's uevents: {e}"))),
            }
        }
        if drained && t.resync {
            match scan(self.sysfs.as_ref()) {
                Ok(now) => {
                    out.extend(differences(&t.view, &now));
                    t.view = now;
                    t.resync = false;
                }
                Err(e) => crate::debug::log(format_args!("events: cannot read the tree again after an overflow: {e}")),
            }
        }
        Ok(out)
    }

    /// What one message means to this watcher, as if it had been received
    /// (the view taken along). For the fuzz target of the uevent parser.
    #[doc(hidden)]
    pub fn take_message(&self, msg: &[u8]) -> Vec<DeviceEvent> {
        let mut out = Vec::new();
        if let Some(u) = Uevent::parse(msg) {
            let mut t = self.tracking.lock().unwrap_or_else(|p| p.into_inner());
            self.apply(&mut t.view, &u, &mut out);
        }
        out
    }

    /// Take one uevent into the view, and the event it means (if any) into `out`.
    fn apply(&self, view: &mut View, u: &Uevent, out: &mut Vec<DeviceEvent>) {
        let seqnum = u.var("SEQNUM").and_then(|s| s.parse().ok());
        match u.subsystem.as_str() {
            "pci" => {
                let Some(mut ev) = DeviceEvent::from_uevent(u) else { return };
                // As libvirt's udevAddOneDevice: an add of a device already
                // known (`udevadm trigger --action=add`) is an UPDATE.
                if u.action == "add" && view.contains_key(&ev.name) {
                    ev.kind = EventKind::Updated;
                }
                match u.action.as_str() {
                    "remove" => {
                        view.remove(&ev.name);
                    }
                    "add" | "move" => {
                        let driver = view.get(&ev.name).and_then(|k| k.driver.clone());
                        view.insert(ev.name.clone(), Known { devpath: u.devpath.clone(), driver, net: None });
                    }
                    "bind" | "unbind" => {
                        let driver = ev.driver.clone().filter(|_| u.action == "bind");
                        let k = view.entry(ev.name.clone());
                        k.or_insert_with(|| Known { devpath: u.devpath.clone(), driver: None, net: None }).driver =
                            driver;
                    }
                    _ => {}
                }
                out.push(ev);
            }
            "net" => {
                // libvirt's udevHandleOneDevice: remove by path; move is a
                // remove of DEVPATH_OLD then an add; add or change of a
                // known device is an UPDATE.
                let known_at = |view: &View, path: &str| {
                    view.iter().find(|(_, k)| k.net.is_some() && k.devpath == path).map(|(n, _)| n.clone())
                };
                match u.action.as_str() {
                    "remove" => {
                        if let Some(name) = known_at(view, &u.devpath) {
                            let k = view.remove(&name).expect("found above");
                            out.extend(
                                k.net.map(|n| DeviceEvent::net(EventKind::Deleted, &n, &u.devpath, "remove", seqnum)),
                            );
                        }
                    }
                    "add" | "change" | "move" => {
                        if u.action == "move" {
                            if let Some(old) = u.var("DEVPATH_OLD").and_then(|o| known_at(view, o)) {
                                let k = view.remove(&old).expect("found above");
                                out.extend(
                                    k.net.map(|n| DeviceEvent::net(EventKind::Deleted, &n, &k.devpath, "move", seqnum)),
                                );
                            }
                        }
                        if pci_above_net(&u.devpath).is_none() {
                            return;
                        }
                        let iface = u.devpath.rsplit('/').next().unwrap_or_default();
                        // Gone or renamed meanwhile: a later uevent says what it became.
                        let Some((n, at)) = net_now(self.sysfs.as_ref(), iface, Some(&u.devpath)) else { return };
                        let kind = if view.contains_key(&n.name) { EventKind::Updated } else { EventKind::Created };
                        out.push(DeviceEvent::net(kind, &n, &at, &u.action, seqnum));
                        view.insert(n.name.clone(), Known { devpath: at, driver: None, net: Some(n) });
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// Wait up to `timeout` (None: for ever) for events, then return them
    /// (empty after a timeout). Sleeps in poll(2): no wake-up without events.
    pub fn wait(&self, timeout: Option<std::time::Duration>) -> Result<Vec<DeviceEvent>> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            let events = self.ready()?;
            if !events.is_empty() {
                return Ok(events);
            }
            let ms = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Ok(Vec::new());
                    }
                    left.as_millis().clamp(1, i32::MAX as u128) as i32
                }
            };
            let mut pfd = libc::pollfd { fd: self.fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one pollfd we own.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return Err(Error::System(format!("poll on the uevent listener: {}", std::io::Error::last_os_error())));
            }
        }
    }
}

/// What changed between two views, as events: gone devices DELETED, new
/// ones CREATED, functions on another driver UPDATE.
fn differences(before: &View, now: &View) -> Vec<DeviceEvent> {
    let gone =
        before.iter().filter(|(n, _)| !now.contains_key(*n)).filter_map(|(_, k)| k.event(EventKind::Deleted, "resync"));
    let new =
        now.iter().filter(|(n, _)| !before.contains_key(*n)).filter_map(|(_, k)| k.event(EventKind::Created, "resync"));
    let changed = now
        .iter()
        .filter(|(n, k)| before.get(*n).is_some_and(|b| b.driver != k.driver || b.devpath != k.devpath))
        .filter_map(|(_, k)| k.event(EventKind::Updated, "resync"));
    gone.chain(new).chain(changed).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sysfs::sim::SimKernel;

    fn ev(raw: &str) -> Option<DeviceEvent> {
        DeviceEvent::from_uevent(&Uevent::parse(raw.replace('|', "\0").as_bytes())?)
    }

    #[test]
    fn kernel_actions_map_to_libvirt_events() {
        let e = ev("add@/devices/pci0000:00/0000:00:1c.0/0000:04:10.2|ACTION=add|DEVPATH=/devices/pci0000:00/0000:00:1c.0/0000:04:10.2|SUBSYSTEM=pci|SEQNUM=12|").unwrap();
        assert_eq!(
            (e.kind, e.name.as_str(), e.parent.as_str()),
            (EventKind::Created, "pci_0000_04_10_2", "pci_0000_00_1c_0")
        );
        assert_eq!(e.seqnum, Some(12));
        let e = ev("unbind@/devices/pci0000:00/0000:00:02.0|SUBSYSTEM=pci|").unwrap();
        assert_eq!((e.kind, e.parent.as_str()), (EventKind::Updated, "computer"));
        assert_eq!(ev("remove@/devices/pci0000:00/0000:00:02.0|SUBSYSTEM=pci|").unwrap().kind, EventKind::Deleted);
        assert_eq!(
            ev("bind@/devices/pci0000:00/0000:00:02.0|SUBSYSTEM=pci|DRIVER=e1000e|").unwrap().driver.as_deref(),
            Some("e1000e")
        );
        // Not a PCI function: no node-device event.
        assert_eq!(ev("add@/devices/virtual/net/lo|SUBSYSTEM=net|"), None);
        assert_eq!(ev("add@/devices/pci0000:00|SUBSYSTEM=pci|"), None);
    }

    /// `udevadm trigger --action=add` makes the kernel send an add for a
    /// device that exists: libvirt finds it in its list and says UPDATE; a
    /// device it has not seen (or saw removed) is CREATED.
    #[test]
    fn an_add_of_a_device_already_known_is_an_update() {
        let sim = Arc::new(SimKernel::builtin());
        let w = Watcher::new(sim.clone()).unwrap();
        let add = |addr: &str| {
            let path = format!("/devices/pci0000:00/0000:00:1c.0/{addr}");
            format!("add@{path}\0ACTION=add\0DEVPATH={path}\0SUBSYSTEM=pci\0")
        };
        let brief = |v: Vec<DeviceEvent>| v.into_iter().map(|e| (e.kind, e.name)).collect::<Vec<_>>();
        assert_eq!(
            brief(w.take_message(add("0000:03:01.0").as_bytes())),
            [(EventKind::Updated, "pci_0000_03_01_0".to_string())]
        );
        assert_eq!(
            brief(w.take_message(add("0000:0a:00.0").as_bytes())),
            [(EventKind::Created, "pci_0000_0a_00_0".to_string())]
        );
        let remove = "remove@/devices/pci0000:00/0000:00:1c.0/0000:0a:00.0\0ACTION=remove\0DEVPATH=/devices/pci0000:00/0000:00:1c.0/0000:0a:00.0\0SUBSYSTEM=pci\0";
        assert_eq!(brief(w.take_message(remove.as_bytes())), [(EventKind::Deleted, "pci_0000_0a_00_0".to_string())]);
        assert_eq!(
            brief(w.take_message(add("0000:0a:00.0").as_bytes())),
            [(EventKind::Created, "pci_0000_0a_00_0".to_string())]
        );
    }

    #[test]
    fn the_simulated_kernel_announces_binds_unbinds_and_new_and_gone_vfs() {
        let sim = Arc::new(SimKernel::builtin());
        let w = Watcher::new(sim.clone()).unwrap();
        assert!(w.ready().unwrap().is_empty());
        // A "foreign" tool: the files written directly.
        sim.write("bus/pci/devices/0000:03:01.0/driver/unbind", "0000:03:01.0").unwrap();
        let pci_only = |v: Vec<DeviceEvent>| v.into_iter().filter(|e| e.subsystem == "pci").collect::<Vec<_>>();
        let got = pci_only(w.ready().unwrap());
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            (got[0].kind, got[0].name.as_str(), got[0].action.as_str()),
            (EventKind::Updated, "pci_0000_03_01_0", "unbind")
        );
        sim.write("bus/pci/drivers_probe", "0000:03:01.0").unwrap();
        let got = pci_only(w.ready().unwrap());
        assert_eq!((got.len(), got[0].action.as_str(), got[0].driver.as_deref()), (1, "bind", Some("e1000")));
        // Three VFs at start; 0 removes them, 5 creates five.
        sim.write("bus/pci/devices/0000:04:00.0/sriov_numvfs", "0").unwrap();
        let got = w.ready().unwrap();
        assert_eq!(got.iter().filter(|e| e.kind == EventKind::Deleted).count(), 3, "{got:?}");
        sim.write("bus/pci/devices/0000:04:00.0/sriov_numvfs", "5").unwrap();
        let got = w.ready().unwrap();
        let created: Vec<&str> = got.iter().filter(|e| e.kind == EventKind::Created).map(|e| e.name.as_str()).collect();
        assert_eq!(created.len(), 5, "{got:?}");
        assert!(created.iter().all(|n| n.starts_with("pci_0000_04_1")), "{created:?}");
        // As pci_iov_add_virtfn does, VF by VF: its add, then its bind.
        let order: Vec<(&str, &str)> = got.iter().map(|e| (e.action.as_str(), e.name.as_str())).collect();
        for pair in order.chunks(2) {
            assert!(matches!(pair, [("add", a), ("bind", b)] if a == b), "{order:?}");
        }
        // Sequence numbers grow.
        let seqs: Vec<u64> = got.iter().filter_map(|e| e.seqnum).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        // A listener that is dropped is forgotten; another one still hears.
        let w2 = Watcher::new(sim.clone()).unwrap();
        drop(w);
        sim.write("bus/pci/devices/0000:04:00.0/sriov_numvfs", "0").unwrap();
        assert_eq!(w2.ready().unwrap().iter().filter(|e| e.kind == EventKind::Deleted).count(), 5);
    }

    fn brief(v: &[DeviceEvent]) -> Vec<(EventKind, String, String)> {
        v.iter().map(|e| (e.kind, e.name.clone(), e.action.clone())).collect()
    }

    fn owned(v: &[(EventKind, &str, &str)]) -> Vec<(EventKind, String, String)> {
        v.iter().map(|(k, n, a)| (*k, n.to_string(), a.to_string())).collect()
    }

    #[test]
    fn an_interface_is_created_with_its_driver_and_deleted_before_the_unbind() {
        let sim = Arc::new(SimKernel::builtin());
        let w = Watcher::new(sim.clone()).unwrap();
        let mac = sim.read("class/net/eth1/address").unwrap().trim_end().replace(':', "_");
        let net = format!("net_eth1_{mac}");
        // unregister_netdev in the driver's remove, then the unbind.
        sim.write("bus/pci/devices/0000:03:01.0/driver/unbind", "0000:03:01.0").unwrap();
        let got = w.ready().unwrap();
        assert_eq!(
            brief(&got),
            owned(&[(EventKind::Deleted, &net, "remove"), (EventKind::Updated, "pci_0000_03_01_0", "unbind")])
        );
        assert_eq!(
            (got[0].subsystem.as_str(), got[0].address.as_str(), got[0].parent.as_str()),
            ("net", "eth1", "pci_0000_03_01_0")
        );
        assert_eq!(got[0].mac.as_deref().map(|m| m.replace(':', "_")), Some(mac.clone()));
        // A stub driver registers no interface: only the bind.
        sim.write("bus/pci/devices/0000:03:01.0/driver_override", "pci-stub").unwrap();
        sim.write("bus/pci/drivers_probe", "0000:03:01.0").unwrap();
        assert_eq!(brief(&w.ready().unwrap()), owned(&[(EventKind::Updated, "pci_0000_03_01_0", "bind")]));
        sim.write("bus/pci/devices/0000:03:01.0/driver/unbind", "0000:03:01.0").unwrap();
        sim.write("bus/pci/devices/0000:03:01.0/driver_override", "\n").unwrap();
        assert_eq!(brief(&w.ready().unwrap()), owned(&[(EventKind::Updated, "pci_0000_03_01_0", "unbind")]));
        // The host driver again: register_netdev during the probe, then the bind.
        sim.write("bus/pci/drivers_probe", "0000:03:01.0").unwrap();
        let got = w.ready().unwrap();
        assert_eq!(
            brief(&got),
            owned(&[(EventKind::Created, &net, "add"), (EventKind::Updated, "pci_0000_03_01_0", "bind")])
        );
        assert_eq!(
            got[0].net.as_ref().map(|n| n.sysfs_path.as_str()),
            Some("/sys/devices/pci0000:00/0000:00:1c.0/0000:02:00.0/0000:03:01.0/net/eth1")
        );
        // Hot removal: the interface, the unbind, the function.
        sim.write("bus/pci/devices/0000:03:01.0/remove", "1").unwrap();
        assert_eq!(
            brief(&w.ready().unwrap()),
            owned(&[
                (EventKind::Deleted, &net, "remove"),
                (EventKind::Updated, "pci_0000_03_01_0", "unbind"),
                (EventKind::Deleted, "pci_0000_03_01_0", "remove")
            ])
        );
    }

    #[test]
    fn a_renamed_interface_is_the_old_name_deleted_and_the_new_one_created() {
        let sim = Arc::new(SimKernel::builtin());
        let w = Watcher::new(sim.clone()).unwrap();
        let mac = sim.read("class/net/eth1/address").unwrap().trim_end().replace(':', "_");
        sim.rename_link("eth1", "lan0").unwrap();
        let got = w.ready().unwrap();
        assert_eq!(
            brief(&got),
            owned(&[
                (EventKind::Deleted, &format!("net_eth1_{mac}"), "move"),
                (EventKind::Created, &format!("net_lan0_{mac}"), "move")
            ])
        );
        assert_eq!((got[1].address.as_str(), got[1].parent.as_str()), ("lan0", "pci_0000_03_01_0"));
        // The kernel's rules: only while down, a free and valid name.
        assert_eq!(sim.rename_link("lan0", "eth2").unwrap_err().raw_os_error(), Some(libc::EEXIST));
        assert_eq!(sim.rename_link("lan0", "a/b").unwrap_err().raw_os_error(), Some(libc::EINVAL));
        assert_eq!(sim.rename_link("eth0", "wan0").unwrap_err().raw_os_error(), Some(libc::EBUSY));
        assert_eq!(sim.rename_link("nope0", "x").unwrap_err().raw_os_error(), Some(libc::ENODEV));
        assert!(w.ready().unwrap().is_empty());
        // The new name leaves with its driver.
        sim.write("bus/pci/devices/0000:03:01.0/driver/unbind", "0000:03:01.0").unwrap();
        assert_eq!(w.ready().unwrap()[0].name, format!("net_lan0_{mac}"));
    }

    #[test]
    fn an_interface_gone_before_its_add_is_read_gives_no_event() {
        // The add names eth1, which is lan0 by the time the watcher reads
        // it: the move that follows creates it, once, under its new name.
        let sim = Arc::new(SimKernel::builtin());
        let w = Watcher::new(sim.clone()).unwrap();
        sim.write("bus/pci/devices/0000:03:01.0/driver/unbind", "0000:03:01.0").unwrap();
        assert_eq!(w.ready().unwrap().len(), 2);
        sim.write("bus/pci/drivers_probe", "0000:03:01.0").unwrap();
        sim.rename_link("eth1", "lan0").unwrap();
        let got = w.ready().unwrap();
        let names: Vec<&str> = got.iter().filter(|e| e.subsystem == "net").map(|e| e.name.as_str()).collect();
        assert_eq!(names.len(), 1, "{got:?}");
        assert!(names[0].starts_with("net_lan0_"), "{got:?}");
        assert_eq!(got.iter().filter(|e| e.kind == EventKind::Created).count(), 1, "{got:?}");
    }

    #[test]
    fn an_overflow_is_counted_and_the_tree_read_again_into_events() {
        let sim = Arc::new(SimKernel::builtin());
        sim.set_uevent_buffer(4);
        let w = Watcher::new(sim.clone()).unwrap();
        // 3 VFs removed (unbind + remove each), eth1 and its function unbound:
        // 8 messages for a buffer of 4.
        sim.write("bus/pci/devices/0000:04:00.0/sriov_numvfs", "0").unwrap();
        sim.write("bus/pci/devices/0000:03:01.0/driver/unbind", "0000:03:01.0").unwrap();
        let got = w.ready().unwrap();
        assert_eq!(w.overflows(), 1);
        assert_eq!(w.new_overflows(), 1);
        assert_eq!(w.new_overflows(), 0);
        // The 4 kept, then what they missed, found by reading the tree.
        let resync: Vec<(EventKind, String, String)> =
            brief(&got).into_iter().filter(|(_, _, a)| a == "resync").collect();
        let mut seen: Vec<(EventKind, String)> = got.iter().map(|e| (e.kind, e.name.clone())).collect();
        seen.dedup();
        for vf in ["pci_0000_04_10_0", "pci_0000_04_10_2", "pci_0000_04_10_4"] {
            assert!(seen.contains(&(EventKind::Deleted, vf.to_string())), "{got:?}");
        }
        assert!(got.iter().any(|e| e.kind == EventKind::Deleted && e.name.starts_with("net_eth1_")), "{got:?}");
        assert!(got.iter().any(|e| e.kind == EventKind::Updated && e.name == "pci_0000_03_01_0"), "{got:?}");
        assert!(!resync.is_empty(), "{got:?}");
        assert!(got.iter().filter(|e| e.action == "resync").all(|e| e.seqnum.is_none()));
        // Once set right, quiet; and events flow again.
        assert!(w.ready().unwrap().is_empty());
        sim.write("bus/pci/drivers_probe", "0000:03:01.0").unwrap();
        let got = w.ready().unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(w.overflows(), 1);
    }

    #[test]
    fn one_ready_reads_a_bounded_batch_and_leaves_the_rest_readable() {
        let sim = Arc::new(SimKernel::builtin());
        let w = Watcher::new(sim.clone()).unwrap();
        for _ in 0..300 {
            sim.write("bus/pci/devices/0000:03:02.0/driver/unbind", "0000:03:02.0").unwrap();
            sim.write("bus/pci/drivers_probe", "0000:03:02.0").unwrap();
        }
        // 1200 messages (net remove, unbind, net add, bind each round).
        let first = w.ready().unwrap();
        assert_eq!(first.len(), MAX_BATCH);
        let mut pfd = libc::pollfd { fd: w.fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd on the watcher's descriptor.
        assert_eq!(unsafe { libc::poll(&mut pfd, 1, 0) }, 1);
        let mut total = first.len();
        loop {
            let more = w.ready().unwrap();
            if more.is_empty() {
                break;
            }
            assert!(more.len() <= MAX_BATCH);
            total += more.len();
        }
        assert_eq!(total, 1200);
        assert_eq!(w.overflows(), 0);
    }

    #[test]
    fn a_watch_sleeps_until_an_event_and_times_out_empty() {
        let sim = Arc::new(SimKernel::builtin());
        let w = Watcher::new(sim.clone()).unwrap();
        let t = std::time::Instant::now();
        assert!(w.wait(Some(std::time::Duration::from_millis(50))).unwrap().is_empty());
        assert!(t.elapsed() >= std::time::Duration::from_millis(50));
        let s = sim.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(30));
            s.write("bus/pci/devices/0000:03:01.0/driver/unbind", "0000:03:01.0").unwrap();
        });
        // The interface's remove first, then the unbind (maybe in a second wait).
        let mut got = w.wait(None).unwrap();
        if got.len() < 2 {
            got.extend(w.wait(Some(std::time::Duration::from_secs(5))).unwrap());
        }
        writer.join().unwrap();
        let actions: Vec<&str> = got.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["remove", "unbind"]);
    }

    #[test]
    fn a_test_tree_under_another_root_has_no_events() {
        let dir = std::env::temp_dir().join(format!("nodedev-events-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sys")).unwrap();
        let host = Arc::new(crate::sysfs::host::HostSysfs::new(&dir));
        let e = Watcher::new(host).err().unwrap();
        assert!(matches!(e, Error::Unsupported(_)), "{e:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
