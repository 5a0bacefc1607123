//! Node-device events from the kernel's uevents, as libvirt's node-device
//! driver reports them: a PCI function that appears is CREATED, one that
//! goes away DELETED, and any other change the kernel announces (bind,
//! unbind, change, move: another driver, whoever moved it) is an UPDATE.
//!
//! A [`Watcher`] owns one uevent listener of a host (real netlink or the
//! simulated kernel's) and turns what is waiting into [`DeviceEvent`]s when
//! asked; it never reads on its own, so nothing runs, and nothing wakes up,
//! between kernel events. The C API drives it from the caller's event loop
//! (`capi/node_device_events.rs`), `nodedev watch` from poll(2).

use crate::address::PciAddress;
use crate::error::{Error, Result};
use crate::sysfs::uevent::{Uevent, UeventSource};
use crate::sysfs::Sysfs;
use std::os::fd::RawFd;

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
    /// libvirt's name: `pci_0000_03_00_0`.
    #[serde(rename = "device")]
    pub name: String,
    /// The kernel's name: `0000:03:00.0`.
    pub address: String,
    /// libvirt's name of its parent (the upstream bridge, or "computer").
    pub parent: String,
    /// The kernel's path of the device under /sys (`/devices/pci0000:00/...`),
    /// as the uevent gives it. Not part of the JSON: `parent` says where it is.
    #[serde(skip)]
    pub devpath: String,
    /// The uevent it comes from: add, remove, bind, unbind, change, move.
    pub action: String,
    /// The driver the kernel names in the uevent (a bind's), if any.
    pub driver: Option<String>,
    /// The kernel's sequence number of the uevent.
    pub seqnum: Option<u64>,
}

impl DeviceEvent {
    /// The event a kernel uevent means for libvirt's node devices; None
    /// for uevents about other subsystems (nodedev's devices are PCI
    /// functions) and for actions that change nothing a client sees
    /// (online/offline).
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
        let mut components = u.devpath.rsplit('/');
        let last = components.next()?;
        let addr = PciAddress::parse(last).ok()?;
        let parent = components
            .next()
            .and_then(|p| PciAddress::parse(p).ok())
            .map_or_else(|| "computer".to_string(), |p| p.node_name());
        Some(DeviceEvent {
            kind,
            name: addr.node_name(),
            address: addr.to_string(),
            parent,
            devpath: u.devpath.clone(),
            action: u.action.clone(),
            driver: u.var("DRIVER").map(str::to_string),
            seqnum: u.var("SEQNUM").and_then(|s| s.parse().ok()),
        })
    }
}

/// A listener on a host's kernel events.
pub struct Watcher {
    source: Box<dyn UeventSource>,
}

impl Watcher {
    /// Start listening: events from now on. Unsupported for a sysfs tree
    /// that is not the running kernel's (`root=`): it has no events.
    pub fn new(sysfs: &dyn Sysfs) -> Result<Watcher> {
        let source = sysfs.uevents().map_err(|e| match e.kind() {
            std::io::ErrorKind::Unsupported => Error::Unsupported(e.to_string()),
            _ => Error::System(format!("cannot listen to the kernel's uevents (netlink KOBJECT_UEVENT): {e}")),
        })?;
        Ok(Watcher { source })
    }

    /// Readable (poll POLLIN) while events wait. Owned by the watcher:
    /// valid as long as it lives, never to be closed by the caller.
    pub fn fd(&self) -> RawFd {
        self.source.fd()
    }

    /// Every event waiting now, oldest first; empty when none (never blocks).
    pub fn ready(&self) -> Result<Vec<DeviceEvent>> {
        let mut out = Vec::new();
        while let Some(msg) =
            self.source.recv().map_err(|e| Error::System(format!("cannot read the kernel's uevents: {e}")))?
        {
            if let Some(ev) = Uevent::parse(&msg).as_ref().and_then(DeviceEvent::from_uevent) {
                out.push(ev);
            }
        }
        Ok(out)
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

    #[test]
    fn the_simulated_kernel_announces_binds_unbinds_and_new_and_gone_vfs() {
        let sim = SimKernel::builtin();
        let w = Watcher::new(&sim).unwrap();
        assert!(w.ready().unwrap().is_empty());
        // A "foreign" tool: the files written directly.
        sim.write("bus/pci/devices/0000:03:01.0/driver/unbind", "0000:03:01.0").unwrap();
        let got = w.ready().unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            (got[0].kind, got[0].name.as_str(), got[0].action.as_str()),
            (EventKind::Updated, "pci_0000_03_01_0", "unbind")
        );
        sim.write("bus/pci/drivers_probe", "0000:03:01.0").unwrap();
        let got = w.ready().unwrap();
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
        let w2 = Watcher::new(&sim).unwrap();
        drop(w);
        sim.write("bus/pci/devices/0000:04:00.0/sriov_numvfs", "0").unwrap();
        assert_eq!(w2.ready().unwrap().iter().filter(|e| e.kind == EventKind::Deleted).count(), 5);
    }

    #[test]
    fn a_watch_sleeps_until_an_event_and_times_out_empty() {
        let sim = std::sync::Arc::new(SimKernel::builtin());
        let w = Watcher::new(sim.as_ref()).unwrap();
        let t = std::time::Instant::now();
        assert!(w.wait(Some(std::time::Duration::from_millis(50))).unwrap().is_empty());
        assert!(t.elapsed() >= std::time::Duration::from_millis(50));
        let s = sim.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(30));
            s.write("bus/pci/devices/0000:03:01.0/driver/unbind", "0000:03:01.0").unwrap();
        });
        let got = w.wait(None).unwrap();
        writer.join().unwrap();
        assert_eq!(got[0].action, "unbind");
    }

    #[test]
    fn a_test_tree_under_another_root_has_no_events() {
        let dir = std::env::temp_dir().join(format!("nodedev-events-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sys")).unwrap();
        let host = crate::sysfs::host::HostSysfs::new(&dir);
        let e = Watcher::new(&host).err().unwrap();
        assert!(matches!(e, Error::Unsupported(_)), "{e:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
