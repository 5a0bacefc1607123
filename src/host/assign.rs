//! Guest assignment: prepare a set of devices for an owner (a guest) before
//! it starts, release them after it stops. What libvirt does inside
//! virHostdevPreparePCIDevices, as calls of their own.
//!
//! - managed: the devices are moved to the stub as one transaction (any
//!   failure puts every device this call moved back) and reset; release
//!   gives back to its original driver each device that prepare moved.
//! - unmanaged: no driver is changed; each device must already be on the
//!   stub. Only ownership is recorded.
//!
//! With vfio every other endpoint of each device's IOMMU group must be on
//! vfio-pci, on pci-stub or on no driver, and no device of a group can belong to two
//! owners, so a guest's group is never shared with the host or another guest.

use super::failed::{Failed, Left};
use super::{Host, Operation};
use crate::address::PciAddress;
use crate::error::{Error, Result};
use crate::state::{Record, Step};
use crate::stub::{Stub, StubRequest};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrepareOptions {
    /// Move the devices to the stub (and back at release); false: verify only.
    pub managed: bool,
    /// Even when the host uses a device (see `safety.rs`).
    pub force: bool,
}

/// An owner is a guest's name: printable, 1 to 256 bytes.
#[doc(hidden)]
pub fn check_owner_name(owner: &str) -> Result<()> {
    if owner.is_empty() || owner.len() > 256 || owner.chars().any(char::is_control) {
        return Err(Error::InvalidArg(format!(
            "owner '{}' is not a valid name: 1 to 256 printable characters",
            owner.escape_debug()
        )));
    }
    Ok(())
}

fn dedup(devices: &[PciAddress]) -> Vec<PciAddress> {
    let mut out: Vec<PciAddress> = Vec::with_capacity(devices.len());
    for d in devices {
        if !out.contains(d) {
            out.push(*d);
        }
    }
    out
}

impl Host {
    /// Prepare `devices` for the guest `owner` with `stub`, all or nothing:
    /// managed, move them to the stub (each one's original driver recorded)
    /// and reset them; unmanaged, only check that they are on the stub
    /// already. Either way the owner is recorded, so no other caller (C,
    /// Rust or CLI, in any process) can prepare, detach or reattach them
    /// until [`Host::release`]. With vfio every endpoint of each device's
    /// IOMMU group must be on a stub or on no driver, and a group is never
    /// split between two owners.
    ///
    /// ```
    /// use nodedev::{Host, PrepareOptions, Stub};
    ///
    /// let host = Host::open("test:///default")?;
    /// let vf = host.lookup("0000:04:10.4")?;
    /// host.prepare("vm-7", &[vf], Stub::Vfio, PrepareOptions { managed: true, force: false })?;
    /// assert_eq!(host.assignments()?, vec![(vf.to_string(), "vm-7".to_string())]);
    /// // The record says who owns it: a detach or reattach by anyone else is refused.
    /// assert!(host.reattach(&vf, None).is_err());
    /// assert_eq!(host.release("vm-7", Some(&[vf]))?, 1);
    /// assert_eq!(host.driver(&vf)?.as_deref(), Some("igbvf"));
    /// # Ok::<(), nodedev::Error>(())
    /// ```
    pub fn prepare(&self, owner: &str, devices: &[PciAddress], stub: Stub, opts: PrepareOptions) -> Result<()> {
        self.prepare_request(owner, devices, &stub.into(), opts)
    }

    /// [`Host::prepare`] for a driver name as a caller gives it
    /// (`"vfio:mlx5_vfio_pci"`, see [`StubRequest`]).
    pub fn prepare_request(
        &self,
        owner: &str,
        devices: &[PciAddress],
        req: &StubRequest,
        opts: PrepareOptions,
    ) -> Result<()> {
        let stub = req.stub;
        check_owner_name(owner)?;
        let devices = dedup(devices);
        if devices.is_empty() {
            return Err(Error::InvalidArg(format!("no devices to prepare for {owner}")));
        }
        for d in &devices {
            self.require(d)?;
            if opts.managed {
                self.check_writable(d, "prepare (managed)")?;
            } else {
                self.check_records_writable(d, "prepare")?;
            }
            self.check_policy("prepare", d)?;
            let stub_driver = if opts.managed { Some(self.planned_stub_driver(d, req)?) } else { None };
            self.authorize_driver(Operation::Prepare, d, Some(owner), stub_driver.as_deref())?;
            if opts.managed && !self.on_stub(d, stub)? {
                self.check_safe("prepare", d, opts.force)?;
            }
        }
        let _lock = self.lock_devices(&devices)?;
        for d in &devices {
            self.check_assignable(d, owner)?;
            // Checked before the lock only if off the stub then: another
            // caller may have given it back to the host meanwhile.
            if opts.managed && !self.on_stub(d, stub)? {
                self.check_safe("prepare", d, opts.force)?;
            }
            if !opts.managed && !self.on_stub(d, stub)? {
                let now = self.driver(d)?.unwrap_or_else(|| "no driver".to_string());
                return Err(Error::OperationInvalid(format!(
                    "{d} is unmanaged but bound to {now}, not to the '{}' stub: nodedev changes no driver for unmanaged devices; detach it first (virNodeDeviceDetachFlags, CLI 'detach {d} --driver {}') or prepare it managed",
                    stub.name(),
                    stub.name()
                )));
            }
        }
        if stub == Stub::Vfio {
            self.check_groups_viable(&devices, opts.managed)?;
        }

        let mut moved = Vec::new();
        // Devices only marked as owned, with the record each had before.
        let mut marked: Vec<(PciAddress, Option<Record>)> = Vec::new();
        let result = (|| -> std::result::Result<(), Failed> {
            let mut to_move = Vec::new();
            for d in &devices {
                if opts.managed && !self.on_stub(d, stub).map_err(Failed::untouched)? {
                    to_move.push(*d);
                } else {
                    marked.push((*d, self.settled_record(d).map_err(Failed::untouched)?));
                    self.set_owner(d, owner).map_err(Failed::untouched)?;
                }
            }
            // All or nothing: a failure puts back what this call moved.
            self.detach_all_locked(&to_move, req, Some((owner, true)))?;
            moved = to_move;
            // A guest gets the devices clean, as libvirt does; a device the
            // kernel cannot reset is used as it is.
            self.each_at_once(&moved, |d| self.reset_if_possible(d))
                .into_iter()
                .try_for_each(|r| r.map(drop))
                .map_err(Failed::untouched)
        })();
        result.map_err(|failed| {
            // Ownership marks go back as they were: an in-place rewrite or a
            // removal, which a full disk allows.
            let unmarked: Vec<String> = marked
                .iter()
                .filter_map(|(d, rec)| {
                    let r = match rec {
                        Some(r) => self.state.put(r),
                        None => self.state.remove(&d.to_string()),
                    };
                    r.err().map(|e| format!("{d} could not be unmarked ({e})"))
                })
                .collect();
            let failed = self.undo_detaches(&moved, failed.context(format_args!("preparing devices for {owner}")));
            let left = failed.left;
            let err = failed.into_error();
            if !unmarked.is_empty() {
                err.context_after(format_args!("not everything could be undone: {}", unmarked.join(", ")))
            } else if left == Left::Untouched {
                // Marks undone, no device touched: say it, as the others do.
                err.context_after("nothing changed")
            } else {
                err
            }
        })
    }

    /// Record the owner of a device already on its stub.
    fn set_owner(&self, d: &PciAddress, owner: &str) -> Result<()> {
        let mut rec = match self.settled_record(d)? {
            Some(r) => r,
            None => {
                let stub = self.driver(d)?.unwrap_or_default();
                let mut r = Record::new(&d.to_string(), None, &stub);
                r.ownership_only = true;
                r.step = Step::Detached;
                r
            }
        };
        rec.owner = Some(owner.to_string());
        self.state.put(&rec)
    }

    /// Not assigned elsewhere, and no device of its group is.
    fn check_assignable(&self, d: &PciAddress, owner: &str) -> Result<()> {
        if let Some(other) = self.owner_of(d)?.filter(|o| o != owner) {
            return Err(Error::OperationInvalid(format!(
                "{d} is assigned to {other}; it cannot be prepared for {owner} until {other} releases it"
            )));
        }
        if let Some(g) = self.group(d)? {
            for m in g.members.iter().filter(|m| m.address != *d) {
                if let Some(other) = self.owner_of(&m.address)?.filter(|o| o != owner) {
                    return Err(Error::OperationInvalid(format!(
                        "{d} shares IOMMU group {} with {}, assigned to {other}; a group can belong to one guest only, so it cannot be prepared for {owner}",
                        g.number, m.address
                    )));
                }
            }
        }
        Ok(())
    }

    /// Every group of the devices usable by VFIO once the managed ones are moved.
    fn check_groups_viable(&self, devices: &[PciAddress], managed: bool) -> Result<()> {
        for d in devices {
            let Some(g) = self.group(d)? else { return Err(self.no_iommu_error(d)) };
            let except: &[PciAddress] = if managed { devices } else { &[] };
            let blockers = g.blockers(except);
            if !blockers.is_empty() {
                let hint = if managed { "; or add them to the devices to prepare" } else { "" };
                return Err(g
                    .not_viable_error(d, &blockers)
                    .context_after(format_args!("the group cannot be used with vfio until then{hint}")));
            }
        }
        Ok(())
    }

    /// Unmanaged paths change records only; read-only connections refuse those too.
    fn check_records_writable(&self, d: &PciAddress, what: &str) -> Result<()> {
        if self.options.read_only {
            return Err(Error::Denied(format!(
                "cannot {what} {d}: the connection is read-only; open it with virConnectOpen to assign devices"
            )));
        }
        Ok(())
    }

    /// Release `owner`'s devices (None: all of them): give back to its
    /// original driver each device prepare moved, forget the owner of the
    /// others. Every device is attempted; returns how many were released.
    pub fn release(&self, owner: &str, devices: Option<&[PciAddress]>) -> Result<usize> {
        check_owner_name(owner)?;
        let targets: Vec<PciAddress> = match devices {
            Some(list) => dedup(list),
            None => self
                .state
                .list()?
                .into_iter()
                .filter(|r| r.owner.as_deref() == Some(owner))
                .filter_map(|r| PciAddress::parse(&r.address).ok())
                .collect(),
        };
        let records: Vec<Record> = {
            let _lock = self.lock_devices(&targets)?;
            let mut out = Vec::new();
            for d in &targets {
                match self.settled_record(d)? {
                    Some(r) if r.owner.as_deref() == Some(owner) => out.push(r),
                    Some(Record { owner: Some(other), .. }) => {
                        return Err(Error::OperationInvalid(format!(
                            "{d} is assigned to {other}, not to {owner}: only {other} can release it"
                        )))
                    }
                    _ => {
                        return Err(Error::OperationInvalid(format!(
                            "{d} is not assigned to {owner}: nothing to release"
                        )))
                    }
                }
            }
            out
        };
        for (d, r) in targets.iter().zip(&records) {
            if r.managed {
                self.check_writable(d, "release (give back)")?;
            } else {
                self.check_records_writable(d, "release")?;
            }
            let back_to = r.original_driver.as_deref().filter(|_| r.managed);
            self.authorize_driver(Operation::Release, d, Some(owner), back_to)?;
        }

        let _lock = self.lock_devices(&targets)?;
        // A guest still holding a device: refuse before anything changes.
        let managed: Vec<PciAddress> =
            targets.iter().zip(&records).filter(|(_, r)| r.managed).map(|(d, _)| *d).collect();
        self.check_none_held(&managed, "release")?;
        // Each device on its own (a thread each): resets and probes overlap.
        let outcomes = self.each_at_once(&targets, |d| {
            // Re-read under this lock: another process may have released it meanwhile.
            let Some(mut rec) = self.state.get(&d.to_string())?.filter(|r| r.owner.as_deref() == Some(owner)) else {
                return Ok(());
            };
            if rec.managed {
                // Best effort (the guest is gone), unless the kernel is stuck on the device.
                let reset = self.reset_if_possible(d);
                let gave_back = match reset {
                    Err(e @ Error::Timeout(_)) => Err(e),
                    _ => self.reattach_locked(d, None),
                };
                gave_back.inspect_err(|_| {
                    // Still on its stub: no longer the guest's, for the admin to reattach.
                    if let Ok(Some(mut r)) = self.state.get(&d.to_string()) {
                        r.owner = None;
                        r.managed = false;
                        let _ = self.state.put(&r);
                    }
                })
            } else if rec.ownership_only {
                self.state.remove(&d.to_string())
            } else {
                rec.owner = None;
                self.state.put(&rec)
            }
        });
        let failures: Vec<String> =
            targets.iter().zip(outcomes).filter_map(|(d, r)| r.err().map(|e| format!("{d}: {e}"))).collect();
        if failures.is_empty() {
            Ok(targets.len())
        } else {
            Err(Error::OperationFailed(format!(
                "released {} of {} devices of {owner}; {}",
                targets.len() - failures.len(),
                targets.len(),
                failures.join("; ")
            )))
        }
    }

    /// Devices assigned to guests, as (address, owner), in address order:
    /// every caller's assignments on this host, the C ABI's and the CLI's too.
    pub fn assignments(&self) -> Result<Vec<(String, String)>> {
        Ok(self.state.list()?.into_iter().filter_map(|r| Some((r.address, r.owner?))).collect())
    }
}
