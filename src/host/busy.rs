//! Devices busy through VFIO never hang a caller.
//!
//! Unbinding (or removing) a device that a process holds open through VFIO
//! makes the kernel wait until the process lets go, after a first signal
//! uninterruptibly. So:
//! 1. before a change that would unbind, remove or reset a device on a VFIO
//!    driver, the holders are looked for (`Sysfs::vfio_holders`) and the
//!    change is refused, naming them, before anything is changed;
//! 2. where no holder can be seen (another pid namespace, a process we may
//!    not inspect) but the kernel still waits, the write that can wait runs
//!    bounded (`Sysfs::write_bounded`, `HostOptions::write_timeout`) and the
//!    caller gets `Error::Timeout`. The record stays in the step it had
//!    reached, for `recover` to finish once the holder is gone.
//!
//! The state lock is the calling thread's, never the write's: when the call
//! returns with a timeout, its lock guard is dropped and the host lock is
//! free again. The write goes on outside the caller (a process of its own on
//! the real kernel, see `sysfs/bounded.rs`), so the caller's process can
//! also exit. Until the kernel finishes, the device's own lock is held by
//! that write, so every later write about the device is bounded too.

use super::{dev_path, Host};
use crate::address::PciAddress;
use crate::error::{sysfs_error, Error, Result};
use crate::sysfs::{HoldKind, HolderScan, VfioDevice};
use std::io;

pub(crate) use crate::stub::is_vfio_driver;

/// "pid 4242 (qemu-system-x86)" for each holder, joined.
fn names(scan: &HolderScan) -> String {
    let each: Vec<String> = scan.holders.iter().map(|h| format!("pid {} ({})", h.pid, h.comm)).collect();
    match each.len() {
        0 => String::new(),
        1 => each[0].clone(),
        n => format!("{} and {}", each[..n - 1].join(", "), each[n - 1]),
    }
}

fn uninspected_note(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => "; 1 process could not be inspected (run as root to see every process)".to_string(),
        n => format!("; {n} processes could not be inspected (run as root to see every process)"),
    }
}

impl Host {
    /// The device's cdev name (`vfio3`) when the kernel made one.
    fn vfio_cdev(&self, addr: &PciAddress) -> Option<String> {
        self.sysfs.list_dir(&dev_path(addr, "vfio-dev")).ok()?.into_iter().find(|n| n.starts_with("vfio"))
    }

    /// Who holds the device through VFIO now.
    fn holders_of(&self, addr: &PciAddress) -> Result<HolderScan> {
        let name = addr.to_string();
        let cdev = self.vfio_cdev(addr);
        let dev = VfioDevice { address: &name, group: self.group_number(addr), cdev: cdev.as_deref() };
        self.sysfs.vfio_holders(&dev).map_err(|e| {
            Error::OperationFailed(format!(
                "cannot tell whether a process holds {addr} through VFIO: reading /proc failed: {e}"
            ))
        })
    }

    /// Who holds the device, when it is on a VFIO driver and someone does.
    fn held(&self, addr: &PciAddress) -> Result<Option<HolderScan>> {
        // On no driver: nothing to unbind (a write still waiting in the
        // kernel there is met by the bounded writes).
        if !self.driver(addr)?.as_deref().is_some_and(is_vfio_driver) {
            return Ok(None);
        }
        let scan = self.holders_of(addr)?;
        Ok((!scan.holders.is_empty()).then_some(scan))
    }

    /// The refusal of `what` on `addr`, which `scan`'s processes hold.
    fn held_refusal(&self, addr: &PciAddress, scan: &HolderScan, what: &str) -> Error {
        let name = addr.to_string();
        let cdev = self.vfio_cdev(addr);
        let dev = VfioDevice { address: &name, group: self.group_number(addr), cdev: cdev.as_deref() };
        let how: Vec<String> = scan
            .holders
            .iter()
            .map(|h| format!("pid {} ({}) holds {}", h.pid, h.comm, h.kind.describe(&dev)))
            .collect();
        let why = if what == "reset" {
            "a reset would pull the device from under it"
        } else {
            "the kernel would keep the unbind waiting until it lets go"
        };
        Error::OperationInvalid(format!(
            "{addr} is in use by {}: stop it first; cannot {what} it now ({}; {why}){}",
            names(scan),
            how.join(", "),
            uninspected_note(scan.uninspected)
        ))
    }

    /// Refuse when the device is on a VFIO driver and a process holds it:
    /// the unbind, remove or reset `what` would wait for that process.
    pub(crate) fn check_not_held(&self, addr: &PciAddress, what: &str) -> Result<()> {
        match self.held(addr)? {
            Some(scan) => Err(self.held_refusal(addr, &scan, what)),
            None => Ok(()),
        }
    }

    /// `check_not_held` for each device, before any of them is changed. A
    /// device some process certainly holds names the refusal rather than
    /// one that a device fd the kernel does not name (before 6.18) may be of.
    pub(crate) fn check_none_held(&self, addrs: &[PciAddress], what: &str) -> Result<()> {
        let mut maybe = None;
        for a in addrs {
            let Some(scan) = self.held(a)? else { continue };
            if scan.holders.iter().any(|h| h.kind != HoldKind::UnnamedDevice) {
                return Err(self.held_refusal(a, &scan, what));
            }
            maybe.get_or_insert((a, scan));
        }
        match maybe {
            Some((a, scan)) => Err(self.held_refusal(a, &scan, what)),
            None => Ok(()),
        }
    }

    /// A group detach takes every endpoint of the group: refuse while any
    /// process holds the group or one of its devices.
    pub(crate) fn check_group_not_held(&self, addr: &PciAddress) -> Result<()> {
        let Some((number, members)) = self.group_addresses(addr)? else { return Ok(()) };
        // /dev/vfio/N exists only while a member is on a VFIO driver; the
        // scan of a member there finds the group's holders too.
        for m in &members {
            if !self.driver(m)?.as_deref().is_some_and(is_vfio_driver) {
                continue;
            }
            let scan = self.holders_of(m)?;
            if !scan.holders.is_empty() {
                return Err(Error::OperationInvalid(format!(
                    "{m} is in use by {}: stop it first; IOMMU group {number} of {addr} is open through VFIO, so its devices are not detached as a group{}",
                    names(&scan),
                    uninspected_note(scan.uninspected)
                )));
            }
        }
        Ok(())
    }

    /// A write about `addr` that the kernel may keep waiting (an unbind,
    /// remove or reset of a device a process holds): bounded by the
    /// connection's timeout. `doing` says what it is for ("unbinding it
    /// from vfio-pci").
    pub(crate) fn write_bounded(&self, addr: &PciAddress, path: &str, value: &str, doing: &str) -> Result<()> {
        self.write_bounded_raw(addr, path, value, doing)?
            .map_err(|e| sysfs_error(&format!("writing \"{}\" to", value.escape_debug()), path, &e))
    }

    /// `write_bounded` keeping the kernel's errno: Err only on timeout.
    pub(crate) fn write_bounded_raw(
        &self,
        addr: &PciAddress,
        path: &str,
        value: &str,
        doing: &str,
    ) -> Result<io::Result<()>> {
        let limit = self.options.write_timeout;
        match self.sysfs.write_bounded(path, value, limit) {
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                // Who holds it now, for the message (a holder may have appeared).
                let scan = self.holders_of(addr).unwrap_or_default();
                let why = if scan.holders.is_empty() {
                    // No holder seen: do not blame one that may not exist.
                    format!(
                        "the kernel did not finish the write in time, and no process visibly holds the device through VFIO{} (one in another pid namespace would not be visible; a heavily loaded host can also be this slow)",
                        uninspected_note(scan.uninspected)
                    )
                } else {
                    format!(
                        "the kernel waits until every process holding the device through VFIO lets go; it is in use by {}{}",
                        names(&scan),
                        uninspected_note(scan.uninspected)
                    )
                };
                Err(Error::Timeout(format!(
                    "{addr}: {doing} did not finish within {:.1} s: {why}. The write goes on in the background; the record in {} keeps the operation, and 'nodedev recover' (virNodeDeviceRecover) finishes it once the device is free",
                    limit.as_secs_f64(),
                    self.state.location()
                )))
            }
            other => Ok(other),
        }
    }

    /// A write about a device, bounded when `bounded` (see `may_wait`).
    pub(crate) fn write_about(
        &self,
        addr: &PciAddress,
        path: &str,
        value: &str,
        doing: &str,
        bounded: bool,
    ) -> Result<()> {
        if bounded {
            self.write_bounded(addr, path, value, doing)
        } else {
            self.write(path, value)
        }
    }

    /// Whether writes about the device must be bounded: it is on a VFIO
    /// driver, or on none (an earlier unbind may still wait in the kernel,
    /// holding the device's lock).
    pub(crate) fn may_wait(&self, current: Option<&str>) -> bool {
        current.is_none_or(is_vfio_driver)
    }
}
