//! Moving a device between drivers: detach to a stub, reattach to its
//! original (or a named) host driver, reset.
//!
//! Order of every change: lock, write the record (intent), touch the kernel,
//! verify the driver link, update the record. A failure after the device has
//! left its driver puts it back and reports both errors.

use super::failed::{Failed, Left};
use super::{dev_path, Host, Operation};
use crate::address::PciAddress;
use crate::error::{Error, Result};
use crate::state::{Record, Step};
use crate::stub::{is_stub_driver, Stub, StubRequest};

/// Options of a detach beyond the stub.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DetachOptions {
    /// Every endpoint of the device's IOMMU group, all or nothing.
    pub group: bool,
    /// Even when the host uses the device (see `safety.rs`).
    pub force: bool,
}

/// A detach decided on, nothing touched yet.
struct DetachPlan {
    /// The device's driver now.
    current: Option<String>,
    /// The stub's kernel driver, loaded.
    stub_driver: String,
    /// The driver to record as the one to give it back to.
    original: Option<String>,
}

fn describe(driver: &Option<String>) -> String {
    match driver {
        Some(d) => format!("bound to {d}"),
        None => "bound to no driver".to_string(),
    }
}

/// A host driver name given by a caller: a kernel driver name, never a path.
fn check_host_driver_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(Error::InvalidArg(format!(
            "'{}' is not a kernel driver name (letters, digits, '-' and '_' only)",
            name.escape_debug()
        )));
    }
    if is_stub_driver(name) {
        return Err(Error::InvalidArg(format!(
            "'{name}' is a stub driver: reattach gives a device back to a host driver; use detach with driver name \"vfio\", \"kvm\" or \"xen\" to move it to a stub"
        )));
    }
    Ok(())
}

impl Host {
    pub(crate) fn has_override(&self, addr: &PciAddress) -> bool {
        self.sysfs.exists(&dev_path(addr, "driver_override"))
    }

    fn driver_loaded(&self, driver: &str) -> bool {
        self.sysfs.exists(&format!("bus/pci/drivers/{driver}"))
    }

    /// The stub's kernel driver as it would be used now: the loaded one, else
    /// the one its module provides first.
    pub(crate) fn stub_kernel_name(&self, stub: Stub) -> &'static str {
        let drivers = stub.kernel_drivers();
        drivers.iter().copied().find(|d| self.driver_loaded(d)).unwrap_or(drivers[0])
    }

    /// The device's MODALIAS (`pci:v00008086d000010D3sv...`), from its uevent.
    pub(crate) fn modalias(&self, addr: &PciAddress) -> Result<String> {
        let path = dev_path(addr, "uevent");
        let text = self.sysfs.read(&path).map_err(|e| crate::error::sysfs_error("reading", &path, &e))?;
        text.lines()
            .find_map(|l| l.strip_prefix("MODALIAS="))
            .map(str::to_string)
            .ok_or_else(|| Error::OperationFailed(format!("/sys/{path} has no MODALIAS line")))
    }

    /// A host driver that is not loaded may be loaded only from a module of
    /// that name whose modules.alias entries claim this device: a caller's
    /// driver name never loads an arbitrary module. Refused with what
    /// would have been loaded.
    fn check_loadable(&self, addr: &PciAddress, driver: &str) -> Result<()> {
        let modalias = self.modalias(addr)?;
        let modules = self.sysfs.matching_aliases(&modalias).map_err(|e| {
            Error::OperationFailed(format!("cannot tell which modules claim {addr}: reading modules.alias failed: {e}"))
        })?;
        let mut names: Vec<String> = modules.into_iter().map(|a| a.module).collect();
        names.dedup();
        if names.contains(&crate::sysfs::modalias::normalize(driver)) {
            return Ok(());
        }
        let claim = if names.is_empty() {
            "no module claims it".to_string()
        } else {
            format!("modules that claim it: {}", names.join(", "))
        };
        Err(Error::InvalidArg(format!(
            "cannot give {addr} to {driver}: no driver {driver} is loaded, and no module of that name claims the device ({modalias}; {claim}), so 'modprobe {driver}' would not give it a driver; nothing was loaded. Name a loaded driver, or load the right module first"
        )))
    }

    /// Load a host driver's module, after `check_loadable` and only when the
    /// connection may load modules.
    fn load_host_driver(&self, addr: &PciAddress, driver: &str) -> Result<()> {
        if !self.options.allow_modprobe {
            return Err(Error::OperationFailed(format!(
                "cannot give {addr} to {driver}: that driver is not loaded and this connection may not load modules; run 'modprobe {driver}' as root and reattach again"
            )));
        }
        self.check_loadable(addr, driver)?;
        // Shared by every group, as in `stub_driver`.
        let _step = self.state.host_step()?;
        if self.driver_loaded(driver) {
            return Ok(());
        }
        self.sysfs.load_module(driver).map_err(|e| {
            Error::OperationFailed(format!("cannot give {addr} to {driver}: loading module {driver} failed: {e}"))
        })
    }

    /// Unbinding from a VFIO driver waits in the kernel for the device's
    /// holders: that write is bounded (`busy.rs`).
    fn unbind(&self, addr: &PciAddress, driver: &str) -> Result<()> {
        let path = format!("bus/pci/drivers/{driver}/unbind");
        let bounded = super::busy::is_vfio_driver(driver);
        self.write_about(addr, &path, &addr.to_string(), &format!("unbinding it from {driver}"), bounded)
    }

    /// `bounded`: the device may still be locked by an unbind waiting in the kernel.
    fn probe(&self, addr: &PciAddress, bounded: bool) -> Result<()> {
        self.write_about(addr, "bus/pci/drivers_probe", &addr.to_string(), "probing a driver for it", bounded)
    }

    /// The kernel driver a request binds the device to now, for the
    /// authorization callback and "already as asked" checks: for vfio the
    /// chosen VFIO driver (its module's name while it is not loaded).
    pub(crate) fn planned_stub_driver(&self, addr: &PciAddress, req: &StubRequest) -> Result<String> {
        if req.stub == Stub::Vfio {
            let choice = self.vfio_choice(addr, req.vfio_driver.as_deref())?;
            if !choice.is_plain() {
                return Ok(self.module_driver(&choice.module).unwrap_or(choice.module));
            }
        }
        Ok(self.stub_kernel_name(req.stub).to_string())
    }

    /// The request's kernel driver for this device, loading its module when
    /// allowed: for vfio, the named or chosen VFIO driver (`variant.rs`).
    pub(crate) fn stub_driver(&self, addr: &PciAddress, req: &StubRequest) -> Result<String> {
        if req.stub == Stub::Vfio {
            let choice = self.vfio_choice(addr, req.vfio_driver.as_deref())?;
            if !choice.is_plain() {
                return self.variant_driver(addr, &choice);
            }
        }
        self.plain_stub_driver(addr, req.stub).map(str::to_string)
    }

    /// The stub's own kernel driver, loading its module when allowed.
    fn plain_stub_driver(&self, addr: &PciAddress, stub: Stub) -> Result<&'static str> {
        let present = || stub.kernel_drivers().iter().copied().find(|d| self.driver_loaded(d));
        if let Some(d) = present() {
            return Ok(d);
        }
        let module = stub.module();
        if !self.options.allow_modprobe {
            return Err(Error::OperationFailed(format!(
                "cannot detach {addr} to '{}': the {} driver is not loaded and this connection may not load modules; run 'modprobe {module}' as root first",
                stub.name(),
                stub.kernel_drivers()[0]
            )));
        }
        let hint = if stub == Stub::Xen { " (xen-pciback works only in a Xen dom0)" } else { "" };
        // Loading a module is shared by every group: one caller at a time,
        // and the others find it loaded.
        let _step = self.state.host_step()?;
        if let Some(d) = present() {
            return Ok(d);
        }
        self.sysfs.load_module(module).map_err(|e| {
            Error::OperationFailed(format!(
                "cannot detach {addr} to '{}': loading module {module} failed: {e}{hint}",
                stub.name()
            ))
        })?;
        present().ok_or_else(|| {
            Error::OperationFailed(format!(
                "cannot detach {addr} to '{}': module {module} loaded but no {} driver appeared{hint}",
                stub.name(),
                stub.kernel_drivers()[0]
            ))
        })
    }

    /// Detach a device from its host driver to a stub (virNodeDeviceDetachFlags).
    /// A device already on that stub is left as it is. The original driver is
    /// recorded, so [`Host::reattach`] (from any process, C or Rust) gives it
    /// back. Refused while the host uses the device (a mounted disk, the
    /// default route's NIC: [`Host::detach_with`] with `force`), while a
    /// guest owns it, or while a process holds it.
    ///
    /// A caller with libvirt's driver name (`"vfio"`, `"kvm"`, `"xen"`)
    /// parses it into a [`Stub`]:
    ///
    /// ```
    /// use nodedev::{Host, Stub};
    ///
    /// let host = Host::open("test:///default")?;
    /// let nic = host.lookup("0000:04:10.0")?;
    /// let stub: Stub = "vfio".parse()?;
    /// host.detach(&nic, stub)?;
    /// assert_eq!(host.driver(&nic)?.as_deref(), Some("vfio-pci"));
    /// host.reattach(&nic, None)?;
    /// assert_eq!(host.driver(&nic)?.as_deref(), Some("igbvf"));
    /// assert!("vfio-pci".parse::<Stub>().is_err()); // kernel names are refused
    /// # Ok::<(), nodedev::Error>(())
    /// ```
    ///
    /// With [`Stub::Vfio`] the device's VFIO variant driver is chosen as
    /// libvirt 10 does ([`Host::vfio_choice`]); [`Host::detach_request`]
    /// takes a named one (`"vfio:mlx5_vfio_pci"`).
    pub fn detach(&self, addr: &PciAddress, stub: Stub) -> Result<()> {
        self.detach_with(addr, stub, DetachOptions::default())
    }

    /// Detach with options: the whole IOMMU group (all or nothing,
    /// VIR_NODE_DEVICE_DETACH_GROUP), and/or despite the host using the device.
    ///
    /// ```
    /// use nodedev::{DetachOptions, Host, Stub};
    ///
    /// let host = Host::open("test:///default")?;
    /// // Two NICs behind one PCI bridge share an IOMMU group.
    /// let nic = host.lookup("0000:03:01.0")?;
    /// host.detach_with(&nic, Stub::Vfio, DetachOptions { group: true, ..Default::default() })?;
    /// let group = host.group(&nic)?.expect("an IOMMU group");
    /// assert!(group.viable());
    /// for member in group.endpoints() {
    ///     assert_eq!(member.driver.as_deref(), Some("vfio-pci"));
    ///     host.reattach(&member.address, None)?;
    /// }
    /// # Ok::<(), nodedev::Error>(())
    /// ```
    pub fn detach_with(&self, addr: &PciAddress, stub: Stub, opts: DetachOptions) -> Result<()> {
        self.detach_request(addr, &stub.into(), opts)
    }

    /// [`Host::detach_with`] for a driver name as a caller gives it
    /// (`"vfio:mlx5_vfio_pci"`: that VFIO driver, checked against
    /// modules.alias before anything changes; see [`StubRequest`]).
    ///
    /// ```
    /// use nodedev::{DetachOptions, Host, StubRequest};
    ///
    /// let host = Host::open("test:///default")?;
    /// let vf = host.lookup("0000:04:10.0")?;
    /// let plain: StubRequest = "vfio:vfio-pci".parse()?;
    /// host.detach_request(&vf, &plain, DetachOptions::default())?;
    /// assert_eq!(host.driver(&vf)?.as_deref(), Some("vfio-pci"));
    /// host.reattach(&vf, None)?;
    /// // Not a VFIO driver of this kernel: refused, nothing changed.
    /// let bogus: StubRequest = "vfio:e1000e".parse()?;
    /// assert!(host.detach_request(&vf, &bogus, DetachOptions::default()).is_err());
    /// # Ok::<(), nodedev::Error>(())
    /// ```
    pub fn detach_request(&self, addr: &PciAddress, req: &StubRequest, opts: DetachOptions) -> Result<()> {
        let stub = req.stub;
        self.check_writable(addr, "detach")?;
        let targets = if opts.group { self.group_endpoints(addr, stub)? } else { vec![*addr] };
        for t in &targets {
            self.check_policy("detach", t)?;
            // Also checks a "vfio:NAME" before anything changes.
            let driver = self.planned_stub_driver(t, req)?;
            self.authorize_driver(Operation::Detach, t, None, Some(&driver))?;
            if !self.on_stub(t, stub)? {
                self.check_safe("detach", t, opts.force)?;
            }
        }
        let _lock = self.lock_devices(&targets)?;
        // Nothing is changed while a process holds what would be unbound; a
        // device already on the stub is not touched (a guest may hold it).
        let mut moving = Vec::new();
        for t in &targets {
            if !self.on_stub(t, stub)? {
                moving.push(*t);
            }
        }
        if opts.group && !moving.is_empty() {
            self.check_group_not_held(addr)?;
        }
        // Checked before the lock only if off the stub then: another caller
        // may have given it back to the host while this one waited.
        for t in &moving {
            self.check_safe("detach", t, opts.force)?;
        }
        self.check_none_held(&moving, "detach")?;
        for t in &targets {
            if let Some(owner) = self.owner_of(t)? {
                if !self.on_stub(t, stub)? {
                    return Err(Error::OperationInvalid(format!(
                        "{t} is assigned to {owner}: release it from {owner} first"
                    )));
                }
            }
        }
        Ok(self.detach_all_locked(&targets, req, None)?)
    }

    /// Whether the device is bound to one of the stub's kernel drivers now.
    pub(crate) fn on_stub(&self, addr: &PciAddress, stub: Stub) -> Result<bool> {
        Ok(self.driver(addr)?.is_some_and(|d| Stub::of_driver(&d) == Some(stub)))
    }

    /// Every endpoint of the device's group (itself alone without an IOMMU,
    /// except for vfio, which needs one).
    #[doc(hidden)]
    pub fn group_endpoints(&self, addr: &PciAddress, stub: Stub) -> Result<Vec<PciAddress>> {
        match self.group(addr)? {
            Some(g) => {
                let mut v: Vec<PciAddress> = g.endpoints().map(|m| m.address).collect();
                if v.is_empty() {
                    v.push(*addr); // a bridge alone: let detach explain why not
                }
                Ok(v)
            }
            None if stub == Stub::Vfio => Err(self.no_iommu_error(addr)),
            None => Ok(vec![*addr]),
        }
    }

    /// Guest the device is assigned to, from its record (a half-done one
    /// too: prepare writes the owner with its intent). Refuses a device whose
    /// record cannot be used: it may be assigned.
    pub(crate) fn owner_of(&self, addr: &PciAddress) -> Result<Option<String>> {
        Ok(self.state.get(&addr.to_string())?.and_then(|r| r.owner))
    }

    /// Detach the devices at once (lock held); if any fails, the ones this
    /// call moved go back to their original drivers.
    pub(crate) fn detach_all_locked(
        &self,
        targets: &[PciAddress],
        stub: &StubRequest,
        owner: Option<(&str, bool)>,
    ) -> std::result::Result<(), Failed> {
        // ---- mdev: a parent leaving its driver takes its mediated devices
        // with it (and waits for any a guest holds): refused, nothing changed.
        for t in targets {
            if !self.on_stub(t, stub.stub).map_err(Failed::untouched)? {
                self.check_no_live_mdevs(t, "detach").map_err(Failed::untouched)?;
            }
        }
        let results = self.each_at_once(targets, |t| self.detach_locked(t, stub, owner));
        let mut moved = Vec::new();
        let mut failures = Vec::new();
        for (t, r) in targets.iter().zip(results) {
            match r {
                Ok(true) => moved.push(*t),
                Ok(false) => {}
                Err(f) => failures.push(f),
            }
        }
        match Failed::merge(failures) {
            Some(failed) => Err(self.undo_detaches(&moved, failed)),
            None => Ok(()),
        }
    }

    /// `op` on every device, each in a thread of its own: with the lock held
    /// the devices are independent, and a driver's unbind or probe can take
    /// long (resets, firmware mailboxes), so a guest with many VFs waits for
    /// the slowest device rather than for the sum. Results in `targets` order.
    /// Without driver_override, binding goes through new_id, which takes
    /// every device with the same ids: there, one device at a time.
    pub(crate) fn each_at_once<T: Send>(&self, targets: &[PciAddress], op: impl Fn(&PciAddress) -> T + Sync) -> Vec<T> {
        if targets.len() < 2 || !targets.iter().all(|t| self.has_override(t)) {
            return targets.iter().map(&op).collect();
        }
        let op = &op;
        std::thread::scope(|s| {
            let threads: Vec<_> = targets.iter().map(|t| s.spawn(move || op(t))).collect();
            // A panic in one thread goes on in the caller, as if it had happened there.
            threads.into_iter().map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        })
    }

    /// Put back devices a failed transaction moved, adding to what the
    /// failure left: each device that goes back is one more clause of
    /// "nothing changed"; one that cannot is left changed, record kept.
    /// Reattach rewrites records in place, so this works on a full disk.
    pub(crate) fn undo_detaches(&self, moved: &[PciAddress], mut failed: Failed) -> Failed {
        if moved.is_empty() {
            return failed;
        }
        let mut all_back = true;
        let notes: Vec<String> = moved
            .iter()
            .rev()
            .map(|m| {
                let original = self.state.get(&m.to_string()).ok().flatten().and_then(|r| r.original_driver);
                let to = original.as_deref().unwrap_or("no driver");
                match self.reattach_locked(m, None) {
                    Ok(()) => format!("{m} went back to {to}"),
                    Err(e) => {
                        all_back = false;
                        format!("{m} could not go back to {to} ({e}); its record is kept for 'nodedev recover'")
                    }
                }
            })
            .collect();
        failed.undone.extend(notes);
        if all_back {
            failed.left = failed.left.max(Left::PutBack);
            failed
        } else {
            let error = failed
                .error
                .context_after(format_args!("not everything could be undone: {}", failed.undone.join(", ")));
            Failed { error, left: Left::Changed, undone: Vec::new() }
        }
    }

    /// A detach that changed the kernel but cannot stand (the stub did not
    /// take it, or its record cannot be completed): back to the original
    /// driver and no record, before the call returns.
    fn undo_one_detach(&self, addr: &PciAddress, original: Option<&str>, err: Error) -> Failed {
        let to = original.unwrap_or("no driver");
        match self.restore(addr, original) {
            Ok(()) => match self.state.remove(&addr.to_string()) {
                Ok(()) => Failed::put_back(err, format!("{addr} went back to {to}")),
                // The record (an intent, with its owner) would refuse the device to others.
                Err(e) => Failed::changed(err.context_after(format_args!(
                    "{addr} went back to {to}, but its record could not be removed ({e}); 'nodedev recover' removes it"
                ))),
            },
            Err(undo) => {
                let now = match self.driver(addr) {
                    Ok(d) => describe(&d),
                    Err(_) => "in a state nodedev could not read".to_string(),
                };
                Failed::changed(Error::OperationFailed(format!(
                    "{err}; putting {addr} back on {to} also failed: {undo}; {addr} is left {now}, and the record in {} keeps its original driver ('nodedev recover' retries)",
                    self.state.location()
                )))
            }
        }
    }

    /// One detach, lock held. Ok(false): already on that stub, nothing done.
    fn detach_locked(
        &self,
        addr: &PciAddress,
        req: &StubRequest,
        owner: Option<(&str, bool)>,
    ) -> std::result::Result<bool, Failed> {
        let Some(DetachPlan { current, stub_driver, original }) =
            self.detach_plan(addr, req).map_err(Failed::untouched)?
        else {
            return Ok(false);
        };
        let mut record = Record::new(&addr.to_string(), original.clone(), &stub_driver);
        record.ports = self.port_memberships(addr);
        if let Some((owner, managed)) = owner {
            record.owner = Some(owner.to_string());
            record.managed = managed;
        }
        if let Err(e) = self.state.put(&record) {
            return Err(Failed::put_back(e, format!("{addr} stays {}", describe(&current))));
        }

        match self.bind_to_stub(addr, current.as_deref(), &stub_driver) {
            Ok(()) => {
                record.step = Step::Detached;
                match self.state.put(&record) {
                    Ok(()) => Ok(true),
                    // Never on the stub without a complete record.
                    Err(err) => Err(self.undo_one_detach(addr, original.as_deref(), err)),
                }
            }
            // The kernel still works on it: the record (mid-detach) is for recover.
            Err(err @ Error::Timeout(_)) => Err(Failed::changed(err)),
            Err(err) => Err(self.undo_one_detach(addr, original.as_deref(), err)),
        }
    }

    /// What a detach of the device would do, checked before anything is
    /// touched. None: already on that stub.
    fn detach_plan(&self, addr: &PciAddress, req: &StubRequest) -> Result<Option<DetachPlan>> {
        let stub = req.stub;
        let current = self.driver(addr)?;
        if let Some(cur) = &current {
            // On that stub already (for vfio: vfio-pci or a variant of it,
            // unless the caller named another VFIO driver).
            if Stub::of_driver(cur) == Some(stub) {
                if let Some(named) = req.vfio_driver.as_deref() {
                    let wanted = self.module_driver(named).unwrap_or_else(|| named.to_string());
                    if crate::sysfs::modalias::normalize(cur) != crate::sysfs::modalias::normalize(&wanted) {
                        return Err(Error::OperationInvalid(format!(
                            "{addr} is already detached to VFIO driver {cur}, not {named}: reattach it first, then detach it to 'vfio:{named}'"
                        )));
                    }
                }
                return Ok(None);
            }
            if let Some(other) = Stub::of_driver(cur) {
                return Err(Error::OperationInvalid(format!(
                    "{addr} is already detached to {cur} (driver name '{}'): reattach it first, then detach it to '{}'",
                    other.name(),
                    stub.name()
                )));
            }
        }
        if stub == Stub::Vfio && !self.sysfs.exists(&dev_path(addr, "iommu_group")) {
            return Err(self.no_iommu_error(addr));
        }
        if stub == Stub::Vfio {
            let class = self.ids(addr)?.class >> 8;
            if class == 0x0600 || class == 0x0604 {
                return Err(Error::OperationInvalid(format!(
                    "{addr} is a PCI bridge (class 0x{class:04x}): vfio-pci takes only endpoints; assign the devices behind it instead"
                )));
            }
        }
        let stub_driver = self.stub_driver(addr, req)?;

        // A record left by an interrupted operation knows the original driver
        // better than the device's current (driverless) state does.
        let original = match (&current, self.settled_record(addr)?) {
            (None, Some(rec)) => rec.original_driver,
            _ => current.clone(),
        };
        Ok(Some(DetachPlan { current, stub_driver, original }))
    }

    fn bind_to_stub(&self, addr: &PciAddress, current: Option<&str>, stub: &str) -> Result<()> {
        let bounded = self.may_wait(current);
        if self.has_override(addr) {
            self.write_about(addr, &dev_path(addr, "driver_override"), stub, "setting its driver_override", bounded)?;
            // Already there (a reattach that failed before its unbind): keep it.
            if current == Some(stub) {
                return Ok(());
            }
            if let Some(cur) = current {
                self.unbind(addr, cur)?;
            }
            self.probe(addr, bounded)?;
        } else {
            self.bind_with_new_id(addr, current, stub)?;
        }
        let now = self.driver(addr)?;
        if now.as_deref() == Some(stub) {
            Ok(())
        } else {
            Err(Error::OperationFailed(format!(
                "detaching {addr} to {stub} failed: after the probe the device is {}",
                describe(&now)
            )))
        }
    }

    /// Kernels without driver_override (< 3.16): teach the stub the device's
    /// id. new_id binds every unbound device with that id, so devices that
    /// were unbound before and got grabbed are released again.
    fn bind_with_new_id(&self, addr: &PciAddress, current: Option<&str>, stub: &str) -> Result<()> {
        let info = self.ids(addr)?;
        let id = format!("{:04x} {:04x}", info.vendor, info.device);
        let bystanders: Vec<PciAddress> = self
            .list()?
            .into_iter()
            .filter(|a| a != addr)
            .filter(|a| {
                self.attr(a, "vendor").as_deref() == Some(format!("0x{:04x}", info.vendor).as_str())
                    && self.attr(a, "device").as_deref() == Some(format!("0x{:04x}", info.device).as_str())
                    && matches!(self.driver(a), Ok(None))
            })
            .collect();
        if let Some(cur) = current {
            self.unbind(addr, cur)?;
        }
        let added = match self.sysfs.write(&format!("bus/pci/drivers/{stub}/new_id"), &id) {
            Ok(()) => true,
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => false,
            Err(e) => {
                return Err(crate::error::sysfs_error(
                    &format!("writing \"{id}\" to"),
                    &format!("bus/pci/drivers/{stub}/new_id"),
                    &e,
                ))
            }
        };
        if self.driver(addr)?.is_none() {
            let _ = self.write(&format!("bus/pci/drivers/{stub}/bind"), &addr.to_string());
        }
        if added {
            let _ = self.sysfs.write(&format!("bus/pci/drivers/{stub}/remove_id"), &id);
        }
        for other in bystanders {
            if self.driver(&other)?.as_deref() == Some(stub) {
                self.unbind(&other, stub)?;
            }
        }
        Ok(())
    }

    /// Give a device (on a stub or on nothing) to `target`, or leave it
    /// driverless when target is None. Clears driver_override first.
    pub(crate) fn restore(&self, addr: &PciAddress, target: Option<&str>) -> Result<()> {
        let current = self.driver(addr)?;
        let bounded = self.may_wait(current.as_deref());
        if self.has_override(addr) {
            self.write_about(addr, &dev_path(addr, "driver_override"), "\n", "clearing its driver_override", bounded)?;
        }
        if current.as_deref() == target {
            return Ok(());
        }
        if let Some(cur) = &current {
            self.unbind(addr, cur)?;
        }
        let Some(target) = target else { return Ok(()) };
        if !self.driver_loaded(target) {
            self.load_host_driver(addr, target)?;
            if !self.driver_loaded(target) {
                return Err(Error::OperationFailed(format!(
                    "cannot give {addr} to {target}: module {target} loaded but registered no driver {target}; load the module that provides it and reattach again"
                )));
            }
        }
        // Let the kernel choose first: it picks the original driver on a normal
        // host. If the probe fails, the explicit bind below still can work.
        if let Err(e @ Error::Timeout(_)) = self.probe(addr, bounded) {
            return Err(e);
        }
        let mut now = self.driver(addr)?;
        if now.as_deref() != Some(target) {
            if let Some(other) = &now {
                self.unbind(addr, other)?;
            }
            let path = format!("bus/pci/drivers/{target}/bind");
            self.write_about(addr, &path, &addr.to_string(), &format!("binding it to {target}"), bounded)?;
            now = self.driver(addr)?;
        }
        if now.as_deref() == Some(target) {
            Ok(())
        } else {
            Err(Error::OperationFailed(format!("binding {addr} to {target} failed: the device is {}", describe(&now))))
        }
    }

    /// Give a detached device back (virNodeDeviceReAttach): to `driver` if
    /// named (a kernel driver name such as `"e1000e"`, never a stub's), else
    /// to the driver recorded at detach time by whichever process detached
    /// it (none: it stays driverless), else (no record) to whatever the
    /// kernel probes. Refused while a guest owns the device
    /// ([`Host::release`] it) or a process holds it.
    ///
    /// ```
    /// use nodedev::{Host, Stub};
    ///
    /// let host = Host::open("test:///default")?;
    /// let nic = host.lookup("0000:03:02.0")?;
    /// host.detach(&nic, Stub::Kvm)?;
    /// assert_eq!(host.driver(&nic)?.as_deref(), Some("pci-stub"));
    /// host.reattach(&nic, None)?;
    /// assert_eq!(host.driver(&nic)?.as_deref(), Some("e1000"));
    /// # Ok::<(), nodedev::Error>(())
    /// ```
    pub fn reattach(&self, addr: &PciAddress, driver: Option<&str>) -> Result<()> {
        if let Some(d) = driver {
            check_host_driver_name(d)?;
        }
        self.check_writable(addr, "reattach")?;
        // A named driver that is not loaded: refuse before anything changes
        // unless a module of that name claims the device.
        if let Some(d) = driver.filter(|d| !self.driver_loaded(d)) {
            self.check_loadable(addr, d)?;
        }
        // Tell the callback where the device goes: the named driver, else the
        // recorded original (None: the kernel chooses, or no driver).
        let recorded = self.state.get(&addr.to_string()).ok().flatten().and_then(|r| r.original_driver);
        self.authorize_driver(Operation::Reattach, addr, None, driver.or(recorded.as_deref()))?;
        let _lock = self.lock_devices(&[*addr])?;
        self.check_not_assigned("give back", addr)?;
        self.reattach_locked(addr, driver)
    }

    /// Refuse to touch a device assigned to a guest, or one whose IOMMU
    /// group another device assigned to a guest shares.
    pub(crate) fn check_not_assigned(&self, what: &str, addr: &PciAddress) -> Result<()> {
        if let Some(owner) = self.owner_of(addr)? {
            return Err(Error::OperationInvalid(format!(
                "cannot {what} {addr}: it is assigned to {owner}; release it from {owner} first (virNodeDeviceRelease, CLI 'release {owner} {addr}')"
            )));
        }
        if let Some((number, members)) = self.group_addresses(addr)? {
            for m in members.iter().filter(|m| *m != addr) {
                if let Some(owner) = self.owner_of(m)? {
                    return Err(Error::OperationInvalid(format!(
                        "cannot {what} {addr}: it shares IOMMU group {number} with {m}, assigned to {owner}, and a host driver on it would break that isolation; release {owner}'s devices first"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Reattach with the lock held and ownership already checked.
    pub(crate) fn reattach_locked(&self, addr: &PciAddress, driver: Option<&str>) -> Result<()> {
        self.check_not_held(addr, "reattach")?;
        let current = self.driver(addr)?;
        // A half-done record is acted on only where its meaning is certain:
        // the device is already on the record's original host driver, so
        // finishing is removing the record (what recovery would do).
        let existing = match self.state.get(&addr.to_string())? {
            Some(r)
                if current
                    .as_deref()
                    .is_some_and(|c| !is_stub_driver(c) && r.original_driver.as_deref() == Some(c)) =>
            {
                Some(r)
            }
            _ => self.settled_record(addr)?,
        };
        match (&current, &existing) {
            // Already with the host, as asked: nothing to do (libvirt returns
            // success too). A record left by an interrupted reattach that got
            // this far is finished.
            (Some(cur), rec) if !is_stub_driver(cur) => {
                let wanted =
                    driver.map(str::to_string).or_else(|| rec.as_ref().and_then(|r| r.original_driver.clone()));
                if wanted.as_deref().is_none_or(|w| w == cur) {
                    return match rec {
                        Some(_) => self.state.remove(&addr.to_string()),
                        None => Ok(()),
                    };
                }
                let why = match (driver, rec) {
                    (Some(d), _) => format!("it is bound to host driver {cur}, not to a stub, and nodedev moves a device from a stub only; unbind it from {cur} first to give it to {d}"),
                    (None, _) => format!("it is bound to host driver {cur}, while nodedev recorded {} as its original driver; the record was left as it is: check the device and run 'nodedev recover'", wanted.as_deref().unwrap_or("none")),
                };
                return Err(Error::OperationInvalid(format!("cannot reattach {addr}: {why}")));
            }
            // Not on any driver and never detached by us: give it to whatever
            // the kernel probes, as libvirt does.
            (None, None) if driver.is_none() => {
                return self.probe(addr, true);
            }
            _ => {}
        }
        // Without a record, the kernel's own choice is the best guess.
        let probe_anything = driver.is_none() && existing.is_none();
        let target: Option<String> = match driver {
            Some(d) => Some(d.to_string()),
            None => existing.as_ref().and_then(|r| r.original_driver.clone()),
        };
        let stub = current.clone().or_else(|| existing.as_ref().map(|r| r.stub.clone())).unwrap_or_default();
        let mut record = existing.unwrap_or_else(|| Record::new(&addr.to_string(), target.clone(), &stub));
        record.step = Step::Reattaching;
        self.state
            .put(&record)
            .map_err(|e| e.context_after(format_args!("nothing changed: {addr} stays on {stub}")))?;

        let result = if probe_anything {
            self.restore(addr, None).and_then(|()| self.probe(addr, true))
        } else {
            self.restore(addr, target.as_deref())
        };
        match result {
            Ok(()) => {
                // Bridge and bond ports go back where they were (safety.rs).
                let lost =
                    if self.driver(addr)?.is_some() { self.rejoin_ports(addr, &record.ports) } else { Vec::new() };
                self.state.remove(&addr.to_string())?;
                for sentence in lost {
                    self.note(addr, sentence);
                }
                Ok(())
            }
            // The kernel still works on it: the record (mid-reattach) is for recover.
            Err(err @ Error::Timeout(_)) => Err(err),
            Err(err) => {
                // Back to the stub, so the device is never left in between.
                let back = self.bind_to_stub(addr, self.driver(addr)?.as_deref(), &stub);
                // Only a device really back on its stub counts as detached;
                // otherwise the record stays mid-reattach for recovery.
                if back.is_ok() {
                    record.step = Step::Detached;
                    self.state.put(&record)?;
                }
                Err(match back {
                    Ok(()) => Error::OperationFailed(format!("{err}; {addr} stays detached on {stub}")),
                    Err(e) => Error::OperationFailed(format!(
                        "{err}; returning {addr} to {stub} also failed: {e}; the record in {} keeps its original driver ('nodedev recover' retries)",
                        self.state.location()
                    )),
                })
            }
        }
    }

    /// Function reset through the kernel. Refused while a host driver owns
    /// the device: resetting it under the driver would break the driver
    /// (virNodeDeviceReset).
    ///
    /// ```
    /// use nodedev::{Host, Stub};
    ///
    /// let host = Host::open("test:///default")?;
    /// let vf = host.lookup("0000:04:10.2")?;
    /// assert!(host.reset(&vf).is_err()); // igbvf drives it
    /// host.detach(&vf, Stub::Vfio)?;
    /// host.reset(&vf)?;
    /// host.reattach(&vf, None)?;
    /// # Ok::<(), nodedev::Error>(())
    /// ```
    pub fn reset(&self, addr: &PciAddress) -> Result<()> {
        self.check_writable(addr, "reset")?;
        self.check_policy("reset", addr)?;
        self.authorize(Operation::Reset, addr, None)?;
        let _lock = self.lock_devices(&[*addr])?;
        if let Some(owner) = self.owner_of(addr)? {
            return Err(Error::OperationInvalid(format!(
                "cannot reset {addr}: it is assigned to {owner}, which may be using it; release it from {owner} first"
            )));
        }
        self.settled_record(addr)?;
        self.reset_locked(addr)
    }

    /// Reset with the lock held and ownership already checked.
    pub(crate) fn reset_locked(&self, addr: &PciAddress) -> Result<()> {
        let current = self.driver(addr)?;
        if let Some(cur) = current.as_deref().filter(|c| !is_stub_driver(c)) {
            return Err(Error::OperationInvalid(format!(
                "cannot reset {addr}: it is bound to host driver {cur}, which is using it; detach it first"
            )));
        }
        let path = dev_path(addr, "reset");
        if !self.sysfs.exists(&path) {
            return Err(Error::Unsupported(format!(
                "cannot reset {addr}: the kernel has no reset method for it (no FLR, PM or bus reset)"
            )));
        }
        self.check_not_held(addr, "reset")?;
        // A reset takes the device's lock, which a waiting unbind may hold.
        match self.write_bounded_raw(addr, &path, "1", "resetting it")? {
            // Every method said "not here": typically a bus reset refused
            // because other functions share the bus.
            Err(e) if e.raw_os_error() == Some(libc::ENOTTY) => Err(Error::Unsupported(format!(
                "cannot reset {addr} now: none of its reset methods ({}) applies; a bus reset is refused while other functions share its bus (vfio-pci resets the device itself when a guest opens it)",
                self.attr(addr, "reset_method").unwrap_or_else(|| "unknown".into())
            ))),
            Err(e) => Err(crate::error::sysfs_error("writing \"1\" to", &path, &e)),
            Ok(()) => Ok(()),
        }
    }

    /// Reset when the kernel can; Ok(false) when it has no way to (the
    /// device is then used as it is, as libvirt does).
    pub(crate) fn reset_if_possible(&self, addr: &PciAddress) -> Result<bool> {
        match self.reset_locked(addr) {
            Ok(()) => Ok(true),
            Err(Error::Unsupported(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
