//! The simulated kernel's uevents: every bind, unbind, add and remove of a
//! PCI function sends the message the real driver core would multicast, in
//! the kernel's order (a removal: unbind, then remove; children before
//! their parent; new VFs: add for each, then bind for each probed), to every
//! listener, whoever made the change (nodedev or a "foreign" tool writing
//! the files itself).
//!
//! A PCI function's network interfaces come and go with its host driver:
//! `add` of `net/IFNAME` during the probe (before the function's `bind`),
//! `remove` when the driver lets go (before its `unbind`), and `move` with
//! DEVPATH_OLD on a rename, as register_netdev, unregister_netdev and
//! dev_change_name make the real kernel send them.
//!
//! A listener is a queue plus an eventfd that polls readable while the
//! queue holds messages, as a netlink socket does. Like a netlink socket's
//! buffer, the queue is bounded: a listener that does not read in time
//! loses the newest messages, and its next receive fails once with ENOBUFS
//! (netlink's overrun: the socket's error, reported before what is queued).

use super::{Addr, Kernel};
use crate::sysfs::uevent::{Uevent, UeventSource};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, Weak};

/// Messages a listener keeps before dropping new ones (a netlink socket's
/// default buffer holds a few hundred); `SimKernel::set_uevent_buffer`
/// makes it smaller for listeners opened after, as SO_RCVBUF would.
pub(super) const QUEUE_LIMIT: usize = 4096;

struct Queue {
    messages: VecDeque<Vec<u8>>,
    /// Messages were dropped since the last receive (netlink's sk_err = ENOBUFS).
    overrun: bool,
}

pub(super) struct Listener {
    queue: Mutex<Queue>,
    limit: usize,
    /// Counter > 0 (readable) once a message has been queued, read back to 0 when drained.
    efd: OwnedFd,
}

impl Listener {
    fn push(&self, msg: Vec<u8>) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.messages.len() >= self.limit {
            // Full: the message is lost and the next receive says so.
            q.overrun = true;
            return;
        }
        q.messages.push_back(msg);
        let one: u64 = 1;
        // SAFETY: an 8-byte write to our own eventfd; it cannot block (EFD_NONBLOCK).
        unsafe { libc::write(self.efd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

/// What `SimKernel::uevents` hands out.
pub(super) struct SimUevents(Arc<Listener>);

impl SimUevents {
    pub(super) fn new(limit: usize) -> io::Result<(SimUevents, Weak<Listener>)> {
        // SAFETY: eventfd returns a new fd we then own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor.
        let efd = unsafe { OwnedFd::from_raw_fd(fd) };
        let queue = Mutex::new(Queue { messages: VecDeque::new(), overrun: false });
        let l = Arc::new(Listener { queue, limit: limit.max(1), efd });
        let weak = Arc::downgrade(&l);
        Ok((SimUevents(l), weak))
    }
}

impl UeventSource for SimUevents {
    fn fd(&self) -> RawFd {
        self.0.efd.as_raw_fd()
    }

    fn recv(&self) -> io::Result<Option<Vec<u8>>> {
        let mut q = self.0.queue.lock().unwrap_or_else(|p| p.into_inner());
        if std::mem::take(&mut q.overrun) {
            // The queue is full, so the descriptor stays readable for what follows.
            return Err(io::Error::from_raw_os_error(libc::ENOBUFS));
        }
        let msg = q.messages.pop_front();
        if q.messages.is_empty() {
            // Drained: not readable any more until the next message (pushed
            // under the same lock, so none slips between).
            let mut n: u64 = 0;
            // SAFETY: an 8-byte read from our own non-blocking eventfd.
            unsafe { libc::read(self.0.efd.as_raw_fd(), (&mut n as *mut u64).cast(), 8) };
        }
        Ok(msg)
    }
}

impl Kernel {
    /// Send `action` about function `a` (still in the table) to every
    /// listener: the driver core's `kobject_uevent`, with the PCI bus's
    /// variables as its `uevent` file shows them at that moment.
    pub(super) fn emit(&mut self, action: &str, a: Addr) {
        let devpath = format!("/{}", self.canonical(a));
        let vars: Vec<(String, String)> = self
            .uevent(self.dev(a))
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.send(action, devpath, "pci", vars);
    }

    /// Send `action` about network interface `i` of `uses.nets` (visible,
    /// under its current name): what the net class adds to a uevent.
    /// `old`: the interface's DEVPATH before a rename (a `move`).
    pub(super) fn emit_net(&mut self, action: &str, i: usize, old: Option<String>) {
        let n = &self.uses.nets[i];
        let devpath = format!("/{}", self.net_dir(n));
        let mut vars: Vec<(String, String)> = old.map(|o| ("DEVPATH_OLD".to_string(), o)).into_iter().collect();
        vars.push(("INTERFACE".to_string(), n.name.clone()));
        vars.push(("IFINDEX".to_string(), (i + 1).to_string()));
        self.send(action, devpath, "net", vars);
    }

    /// The interfaces of function `a`, as indexes into `uses.nets`.
    pub(super) fn nets_of(&self, a: Addr) -> Vec<usize> {
        let owner = super::hostuse::NetOwner::Pci(a);
        (0..self.uses.nets.len()).filter(|&i| self.uses.nets[i].owner == owner).collect()
    }

    fn send(&mut self, action: &str, devpath: String, subsystem: &str, extra: Vec<(String, String)>) {
        self.listeners.retain(|l| l.strong_count() > 0);
        if self.listeners.is_empty() {
            return;
        }
        self.seqnum += 1;
        let mut vars = vec![
            ("ACTION".to_string(), action.to_string()),
            ("DEVPATH".to_string(), devpath.clone()),
            ("SUBSYSTEM".to_string(), subsystem.to_string()),
        ];
        vars.extend(extra);
        vars.push(("SEQNUM".to_string(), self.seqnum.to_string()));
        let msg = Uevent { action: action.to_string(), devpath, subsystem: subsystem.to_string(), vars }.to_bytes();
        for l in self.listeners.iter().filter_map(Weak::upgrade) {
            l.push(msg.clone());
        }
    }
}
