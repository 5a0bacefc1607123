//! SR-IOV provisioning: a PF's VFs created straight onto a stub (or left
//! without a driver), so that no host VF driver ever binds them.
//!
//! The kernel probes new VFs only while the PF's `sriov_drivers_autoprobe`
//! is on, unless a VF's `driver_override` names a driver (the kernel's
//! pci_device_can_probe). So: autoprobe off, write `sriov_numvfs`, give each
//! VF its override and probe it, autoprobe back as it was. Any failure
//! removes the VFs again and puts autoprobe back: all or nothing.

use super::{dev_path, Host, Operation};
use crate::address::PciAddress;
use crate::error::{Error, Result};
use crate::state::{Record, Step};
use crate::stub::{is_stub_driver, Stub, StubRequest};
use crate::sysfs::link_basename;

impl Host {
    /// A PF that can have `count` VFs: Unsupported for a function without
    /// SR-IOV, InvalidArg beyond its `sriov_totalvfs`.
    pub(crate) fn check_vf_count(&self, pf: &PciAddress, count: u16) -> Result<()> {
        let total: u16 = self.attr(pf, "sriov_totalvfs").and_then(|t| t.parse().ok()).unwrap_or(0);
        if total == 0 {
            return Err(Error::Unsupported(format!(
                "{pf} is not an SR-IOV physical function (no sriov_totalvfs): it cannot have VFs"
            )));
        }
        if count > total {
            return Err(Error::InvalidArg(format!("{pf} supports at most {total} VFs, not {count}")));
        }
        Ok(())
    }

    /// The PF's VFs now, in virtfn order.
    pub fn virtual_functions(&self, pf: &PciAddress) -> Result<Vec<PciAddress>> {
        self.require(pf)?;
        let entries = self.sysfs.list_dir(&dev_path(pf, "")).unwrap_or_default();
        let mut vfs: Vec<(u32, PciAddress)> = entries
            .iter()
            .filter_map(|e| {
                let n: u32 = e.strip_prefix("virtfn")?.parse().ok()?;
                let target = self.sysfs.read_link(&dev_path(pf, e)).ok()?;
                Some((n, PciAddress::parse(link_basename(&target)).ok()?))
            })
            .collect();
        vfs.sort();
        Ok(vfs.into_iter().map(|(_, a)| a).collect())
    }

    /// Give the PF `count` VFs, each bound to `stub` (None: no driver) from
    /// the moment it appears; 0 removes them. VFs already there (another
    /// number, or on another driver) are removed first. Removing VFs is refused while
    /// one is assigned to a guest or was detached from a host driver (its
    /// record expects it back), unless `force`. Returns the VFs.
    pub fn set_vf_count(
        &self,
        pf: &PciAddress,
        count: u16,
        stub: Option<Stub>,
        force: bool,
    ) -> Result<Vec<PciAddress>> {
        self.provision_vfs(pf, count, stub.map(StubRequest::from).as_ref(), force)
    }

    /// `set_vf_count` with a stub request: with "vfio" each VF gets its
    /// own best VFIO driver (a variant driver for VFs that have one), or
    /// the VFIO driver named ("vfio:NAME").
    pub fn provision_vfs(
        &self,
        pf: &PciAddress,
        count: u16,
        stub: Option<&StubRequest>,
        force: bool,
    ) -> Result<Vec<PciAddress>> {
        self.require(pf)?;
        self.check_vf_count(pf, count)?;
        self.check_writable(pf, "change the VFs of")?;
        if let Some(name) = stub.and_then(|s| s.vfio_driver.as_deref()) {
            self.check_vfio_name(name)?;
        }
        // The VFs do not exist yet: the callback gets the named VFIO driver, or the stub's own.
        let stub_driver =
            stub.map(|s| s.vfio_driver.clone().unwrap_or_else(|| self.stub_kernel_name(s.stub).to_string()));
        self.authorize_driver(Operation::Provision, pf, None, stub_driver.as_deref())?;

        // VFs, and their IOMMU groups, come and go: the whole host.
        let _lock = self.lock_host()?;
        let current = self.virtual_functions(pf)?;
        let as_asked = |vf: &PciAddress| {
            let planned = match stub {
                Some(s) => self.planned_stub_driver(vf, s).ok(),
                None => None,
            };
            self.driver(vf).is_ok_and(|d| d == planned)
        };
        if current.len() == usize::from(count) && current.iter().all(as_asked) {
            return Ok(current); // already as asked
        }
        // Any other number, or VFs on another driver: the kernel changes
        // sriov_numvfs only through 0, so they all go and come back.
        if !current.is_empty() {
            self.remove_vfs_locked(pf, &current, force)?;
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        self.create_vfs_locked(pf, count, stub)
    }

    /// Write 0 to sriov_numvfs after checking that no VF is in use, and drop
    /// the records of the VFs that went.
    fn remove_vfs_locked(&self, pf: &PciAddress, vfs: &[PciAddress], force: bool) -> Result<()> {
        // Removing a VF takes it from the host as a detach does: the same
        // policy (the PF's rules cover its VFs) and the same safety checks.
        self.check_policy("remove the VFs of", pf)?;
        for vf in vfs {
            self.check_policy("remove", vf)?;
            if self.driver(vf)?.is_some_and(|d| !is_stub_driver(&d)) {
                self.check_safe("remove", vf, force)?;
            }
        }
        let mut in_use = Vec::new();
        for vf in vfs {
            match self.state.get(&vf.to_string())? {
                Some(r) if r.owner.is_some() => {
                    in_use.push(format!("{vf} is assigned to {}", r.owner.unwrap_or_default()))
                }
                Some(Record { original_driver: Some(d), .. }) => {
                    in_use.push(format!("{vf} was detached from {d}, which expects it back"))
                }
                _ => {}
            }
        }
        if !in_use.is_empty() && !force {
            return Err(Error::OperationInvalid(format!(
                "refusing to remove the VFs of {pf}: {}; release or reattach them first, or pass VIR_NODE_DEVICE_FORCE (CLI --force)",
                in_use.join("; ")
            )));
        }
        // Removing a VF a process holds through VFIO waits for that process,
        // forced or not: refuse, and bound the write for holders not seen.
        self.check_none_held(vfs, &format!("remove it with the other VFs of {pf}"))
            .map_err(|e| e.context_after("forcing does not help: the kernel would wait for it"))?;
        self.write_bounded(pf, &dev_path(pf, "sriov_numvfs"), "0", "removing its VFs")?;
        for vf in vfs {
            if !self.sysfs.exists(&dev_path(vf, "")) {
                self.state.remove(&vf.to_string()).map_err(|e| {
                    e.context_after(format_args!(
                        "the VFs of {pf} were removed ({pf} has none now) but this record of a removed VF stays: 'nodedev recover' reports it"
                    ))
                })?;
            }
        }
        Ok(())
    }

    /// Create `count` VFs with host drivers kept away, then bind each to the
    /// stub; on any failure remove them again.
    fn create_vfs_locked(&self, pf: &PciAddress, count: u16, stub: Option<&StubRequest>) -> Result<Vec<PciAddress>> {
        let autoprobe_path = dev_path(pf, "sriov_drivers_autoprobe");
        // Kernels before 4.12 have no such file: their host VF driver binds
        // at creation, and the VFs are detached from it like any device.
        let mut autoprobe = self.attr(pf, "sriov_drivers_autoprobe");
        if autoprobe.is_some() {
            // Saved before the "0", so that a process killed before putting it
            // back leaves what to put back: a "0" read then is ours, not the PF's.
            autoprobe = Some(self.original_autoprobe(pf, autoprobe)?);
            let was = autoprobe.as_deref().unwrap_or("1");
            self.state.save_autoprobe(&pf.to_string(), was)?;
            if let Err(e) = self.write(&autoprobe_path, "0") {
                // Still as it was: nothing to put back.
                return Err(match self.state.remove_saved_autoprobe(&pf.to_string()) {
                    Ok(()) => e,
                    Err(r) => e.context_after(format_args!("its saved value stays ({r}): 'nodedev recover' drops it")),
                });
            }
        }
        let restore_autoprobe = |result: Result<Vec<PciAddress>>| -> Result<Vec<PciAddress>> {
            let Some(was) = &autoprobe else { return result };
            // Forgotten only once it is back; else recover puts it back.
            match self.write(&autoprobe_path, was).and_then(|()| self.state.remove_saved_autoprobe(&pf.to_string())) {
                Ok(()) => result,
                Err(e) => Err(result.err().unwrap_or(e).context_after(format_args!(
                    "sriov_drivers_autoprobe of {pf} could not be set back to {was}: 'nodedev recover' sets it back"
                ))),
            }
        };
        if let Err(e) = self.write(&dev_path(pf, "sriov_numvfs"), &count.to_string()) {
            return restore_autoprobe(Err(e));
        }
        let result = self.virtual_functions(pf).and_then(|vfs| {
            if vfs.len() != usize::from(count) {
                return Err(Error::OperationFailed(format!(
                    "{pf} shows {} VFs after writing {count} to sriov_numvfs",
                    vfs.len()
                )));
            }
            for vf in &vfs {
                self.check_policy("provision", vf)?;
                if let Some(stub) = stub {
                    if autoprobe.is_some() {
                        self.bind_new_vf(vf, stub)?;
                    } else {
                        self.detach_all_locked(&[*vf], stub, None)?;
                    }
                }
            }
            Ok(vfs)
        });
        let result = match result {
            Ok(vfs) => Ok(vfs),
            Err(err) => Err(self.undo_vfs(pf, err)),
        };
        restore_autoprobe(result)
    }

    /// The PF's autoprobe before any provisioning: what a killed one saved,
    /// else what the kernel says now.
    fn original_autoprobe(&self, pf: &PciAddress, now: Option<String>) -> Result<String> {
        match self.state.saved_autoprobe(&pf.to_string())? {
            Some(Ok(saved)) => Ok(saved),
            Some(Err(why)) => Err(Error::OperationInvalid(format!(
                "the saved sriov_drivers_autoprobe of {pf} in {} cannot be used ({why}): check the PF's sriov_drivers_autoprobe by hand, then delete {pf}.autoprobe there",
                self.state.location()
            ))),
            None => Ok(now.unwrap_or_else(|| "1".to_string())),
        }
    }

    /// A VF that no driver has seen: record it (no original driver), set
    /// its override, probe, verify.
    fn bind_new_vf(&self, vf: &PciAddress, stub: &StubRequest) -> Result<()> {
        let driver = self.stub_driver(vf, stub)?;
        let mut record = Record::new(&vf.to_string(), None, &driver);
        self.state.put(&record)?;
        self.write(&dev_path(vf, "driver_override"), &driver)?;
        self.write("bus/pci/drivers_probe", &vf.to_string())?;
        match self.driver(vf)? {
            Some(d) if d == driver => {}
            now => {
                return Err(Error::OperationFailed(format!(
                    "binding the new VF {vf} to {driver} failed: after the probe it is on {}",
                    now.as_deref().unwrap_or("no driver")
                )))
            }
        }
        record.step = Step::Detached;
        self.state.put(&record)
    }

    /// After a failed provisioning: the VFs go again, with their records.
    fn undo_vfs(&self, pf: &PciAddress, err: Error) -> Error {
        let vfs = self.virtual_functions(pf).unwrap_or_default();
        match self.write(&dev_path(pf, "sriov_numvfs"), "0") {
            Ok(()) => {
                let mut kept = Vec::new();
                for vf in &vfs {
                    if self.state.remove(&vf.to_string()).is_err() {
                        kept.push(vf.to_string());
                    }
                }
                let note = if kept.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (stale records of {} remain: 'nodedev recover --clear ADDRESS' drops each)",
                        kept.join(", ")
                    )
                };
                err.context_after(format_args!("the VFs were removed again, {pf} has none{note}"))
            }
            Err(e) => err.context_after(format_args!("removing the VFs again failed too ({e}); {pf} keeps them")),
        }
    }
}
