//! The simulated kernel's uevents: every bind, unbind, add and remove of a
//! PCI function sends the message the real driver core would multicast, in
//! the kernel's order (a removal: unbind, then remove; children before
//! their parent; new VFs: add for each, then bind for each probed), to every
//! listener, whoever made the change (nodedev or a "foreign" tool writing
//! the files itself).
//!
//! A listener is a queue plus an eventfd that polls readable while the
//! queue holds messages, as a netlink socket does. Like a netlink socket's
//! buffer, the queue is bounded: a listener that never reads loses the
//! newest messages instead of growing without end.

use super::{Addr, Kernel};
use crate::sysfs::uevent::{Uevent, UeventSource};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, Weak};

/// Messages a listener keeps before dropping new ones (a netlink socket's
/// default buffer holds a few hundred).
const QUEUE_LIMIT: usize = 4096;

pub(super) struct Listener {
    queue: Mutex<VecDeque<Vec<u8>>>,
    /// Counter > 0 (readable) once a message has been queued, read back to 0 when drained.
    efd: OwnedFd,
}

impl Listener {
    fn push(&self, msg: Vec<u8>) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= QUEUE_LIMIT {
            return;
        }
        q.push_back(msg);
        let one: u64 = 1;
        // SAFETY: an 8-byte write to our own eventfd; it cannot block (EFD_NONBLOCK).
        unsafe { libc::write(self.efd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

/// What `SimKernel::uevents` hands out.
pub(super) struct SimUevents(Arc<Listener>);

impl SimUevents {
    pub(super) fn new() -> io::Result<(SimUevents, Weak<Listener>)> {
        // SAFETY: eventfd returns a new fd we then own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor.
        let efd = unsafe { OwnedFd::from_raw_fd(fd) };
        let l = Arc::new(Listener { queue: Mutex::new(VecDeque::new()), efd });
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
        let msg = q.pop_front();
        if q.is_empty() {
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
        self.listeners.retain(|l| l.strong_count() > 0);
        if self.listeners.is_empty() {
            return;
        }
        self.seqnum += 1;
        let devpath = format!("/{}", self.canonical(a));
        let mut vars = vec![
            ("ACTION".to_string(), action.to_string()),
            ("DEVPATH".to_string(), devpath.clone()),
            ("SUBSYSTEM".to_string(), "pci".to_string()),
        ];
        for line in self.uevent(self.dev(a)).lines() {
            if let Some((k, v)) = line.split_once('=') {
                vars.push((k.to_string(), v.to_string()));
            }
        }
        vars.push(("SEQNUM".to_string(), self.seqnum.to_string()));
        let msg = Uevent { action: action.to_string(), devpath, subsystem: "pci".to_string(), vars }.to_bytes();
        for l in self.listeners.iter().filter_map(Weak::upgrade) {
            l.push(msg.clone());
        }
    }
}
