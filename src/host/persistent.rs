//! Persistent assignments on a host: define, undefine, apply at boot, and
//! the answer the udev rule asks for (`crate::persist` has the files).

use super::{Host, Operation};
use crate::address::PciAddress;
use crate::error::{Error, Result};
use crate::persist::{Definition, Definitions, VfDefinition};
use crate::state::{Record, Step};
use crate::stub::{Stub, StubRequest};

/// What a definition's stub driver asks for: that very driver (a VFIO
/// variant is named, not chosen again: the choice was made at define time).
fn request_of(stub_driver: &str) -> Result<StubRequest> {
    match Stub::of_driver(stub_driver) {
        Some(Stub::Vfio) => Ok(StubRequest { stub: Stub::Vfio, vfio_driver: Some(stub_driver.to_string()) }),
        Some(s) => Ok(s.into()),
        None => Err(Error::InvalidArg(format!("'{stub_driver}' is not a stub driver"))),
    }
}

/// What `apply` did with one definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub address: String,
    /// One line for a person.
    pub outcome: String,
    /// The device is on its stub now, as defined.
    pub done: bool,
    /// Not done, and not a failure: what it needs is not there yet (the
    /// device is absent, or a PF has no driver to make VFs with). At boot
    /// this is normal: the udev rule applies it when that appears.
    pub waiting: bool,
}

impl Applied {
    /// Neither done nor waiting: something is wrong and needs a person.
    pub fn failed(&self) -> bool {
        !self.done && !self.waiting
    }
}

/// How one definition stands after `apply` looked at it.
enum Outcome {
    Done(String),
    Waiting(String),
}

impl Host {
    fn definitions(&self) -> Result<&Definitions> {
        self.options.definitions.as_ref().ok_or_else(|| {
            Error::Unsupported(
                "this connection keeps no persistent definitions (nodedev:///system keeps them in /etc/nodedev/persistent; other URIs need confdir=DIR)"
                    .to_string(),
            )
        })
    }

    /// Whether the device has a persistent definition.
    pub fn is_persistent(&self, addr: &PciAddress) -> Result<bool> {
        Ok(self.definitions()?.get(&addr.to_string())?.is_some())
    }

    /// Make the device's current stub binding persistent: it must be on a
    /// stub, detached by nodedev (its record knows the original driver).
    pub fn define(&self, addr: &PciAddress) -> Result<()> {
        let defs = self.definitions()?;
        self.check_writable(addr, "make persistent")?;
        let ids = self.ids(addr)?;
        let stub = ids.driver.clone().filter(|d| Stub::of_driver(d).is_some()).ok_or_else(|| {
            Error::OperationInvalid(format!(
                "cannot make {addr} persistent: it is on {}, not on a stub; detach it first",
                ids.driver.as_deref().unwrap_or("no driver")
            ))
        })?;
        self.authorize_driver(Operation::Detach, addr, None, Some(&stub))?;
        let original = self.state.get(&addr.to_string())?.and_then(|r| r.original_driver);
        defs.put(&Definition {
            address: addr.to_string(),
            vendor: ids.vendor,
            device: ids.device,
            stub,
            original_driver: original,
        })
    }

    /// Drop the device's definition (the device itself is not changed).
    /// Ok(false): it had none.
    pub fn undefine(&self, addr: &PciAddress) -> Result<bool> {
        let defs = self.definitions()?;
        if self.options.read_only {
            return Err(Error::Denied(format!("cannot change the definition of {addr}: the connection is read-only")));
        }
        defs.remove(&addr.to_string())
    }

    /// A definition that applies to the device now: present, same identity.
    fn applicable(&self, def: &Definition) -> Result<Option<PciAddress>> {
        let addr = PciAddress::parse(&def.address)?;
        if self.require(&addr).is_err() {
            return Ok(None);
        }
        let ids = self.ids(&addr)?;
        if (ids.vendor, ids.device) != (def.vendor, def.device) {
            return Err(Error::OperationInvalid(format!(
                "the definition of {addr} was made for {:04x}:{:04x}, but the device there now is {:04x}:{:04x}: refused; remove the definition ('nodedev reattach {addr} --persistent') or define it again",
                def.vendor, def.device, ids.vendor, ids.device
            )));
        }
        Ok(Some(addr))
    }

    /// What the udev rule sets on a device's `add` event: its stub's kernel
    /// driver for `driver_override`, and the module to load. None: no
    /// definition (or its device is someone else now: refused, see `apply`).
    #[doc(hidden)]
    pub fn udev_override(&self, addr: &PciAddress) -> Result<Option<(String, String)>> {
        let Some(def) = self.definitions()?.get(&addr.to_string())? else { return Ok(None) };
        self.applicable(&def)?;
        // The override takes the device from the host as a detach does: the
        // policy as it is now (a deny rule or lockdown added after the
        // definition was made) wins over the definition.
        self.check_writable(addr, "set the boot-time stub override of")?;
        self.check_policy("detach", addr)?;
        // A VFIO variant driver comes from its own module, which must be a
        // VFIO driver for this device by modules.alias: the module udev
        // loads is the one modules.alias names, not text of the definition.
        let module = match Stub::of_driver(&def.stub) {
            Some(Stub::Vfio) if def.stub != "vfio-pci" => self.vfio_choice(addr, Some(&def.stub))?.module,
            Some(s) => s.module().to_string(),
            None => return Err(Error::InvalidArg(format!("'{}' is not a stub driver", def.stub))),
        };
        Ok(Some((def.stub, module)))
    }

    /// Whether a change can be made persistent on this connection: checked
    /// before the change itself, so that "detach --persistent" does not
    /// detach and then fail to keep it (a caller would take the -1 for
    /// "nothing happened").
    pub fn check_definable(&self) -> Result<()> {
        let defs = self.definitions()?;
        if self.options.read_only {
            return Err(Error::Denied("cannot make a change persistent: the connection is read-only".to_string()));
        }
        defs.check_writable()
    }

    /// Bring every defined device onto its stub (a boot unit runs this after
    /// udev): devices a host driver took first are detached (with the
    /// safety, policy and authorization checks of any detach), devices the
    /// udev rule already put on the stub get the record reattach needs.
    /// Definitions of absent devices are kept and reported.
    /// Persistent VF counts come first, so that their VFs exist for any
    /// definition of a VF.
    #[doc(hidden)]
    pub fn apply(&self) -> Result<Vec<Applied>> {
        self.apply_where(|_| true)
    }

    /// `apply` for one device's definitions only (the udev rule, when a PF
    /// with a persistent VF count gets its driver).
    #[doc(hidden)]
    pub fn apply_device(&self, addr: &PciAddress) -> Result<Vec<Applied>> {
        let name = addr.to_string();
        self.apply_where(|a| a == name)
    }

    fn apply_where(&self, wanted: impl Fn(&str) -> bool) -> Result<Vec<Applied>> {
        let (vf_defs, vf_problems) = self.definitions()?.list_vfs()?;
        let (defs, problems) = self.definitions()?.list()?;
        let mut out: Vec<Applied> = vf_problems
            .into_iter()
            .chain(problems)
            .map(|p| Applied { address: "-".into(), outcome: p, done: false, waiting: false })
            .collect();
        let applied = |address: &str, outcome: Result<Outcome>| {
            let (outcome, done, waiting) = match outcome {
                Ok(Outcome::Done(o)) => (o, true, false),
                Ok(Outcome::Waiting(o)) => (format!("waiting: {o}"), false, true),
                Err(e) => (format!("not applied: {e}"), false, false),
            };
            Applied { address: address.to_string(), outcome, done, waiting }
        };
        for def in vf_defs.into_iter().filter(|d| wanted(&d.address)) {
            out.push(applied(&def.address, self.apply_vfs(&def)));
        }
        for def in defs.into_iter().filter(|d| wanted(&d.address)) {
            let outcome = match self.apply_one(&def) {
                Ok(Some(o)) => Ok(Outcome::Done(o)),
                Ok(None) => Ok(Outcome::Waiting("absent; the definition is kept for when it appears".to_string())),
                Err(e) => Err(e),
            };
            out.push(applied(&def.address, outcome));
        }
        Ok(out)
    }

    /// Make a PF's VF count persistent: `count` VFs on `driver` (None: no
    /// driver) from boot on; 0 removes the definition.
    pub fn define_vfs(&self, pf: &PciAddress, count: u16, driver: Option<&StubRequest>) -> Result<()> {
        let defs = self.definitions()?;
        self.check_writable(pf, "make the VFs persistent of")?;
        if count == 0 {
            return defs.remove_vfs(&pf.to_string()).map(drop);
        }
        let ids = self.ids(pf)?;
        self.check_vf_count(pf, count)?;
        self.authorize_driver(Operation::Provision, pf, None, driver.and_then(|d| d.vfio_driver.as_deref()))?;
        defs.put_vfs(&VfDefinition {
            address: pf.to_string(),
            vendor: ids.vendor,
            device: ids.device,
            count,
            driver: driver.map(StubRequest::name),
        })
    }

    /// A PF's persistent VF count, if any.
    pub fn persistent_vfs(&self, pf: &PciAddress) -> Result<Option<VfDefinition>> {
        self.definitions()?.get_vfs(&pf.to_string())
    }

    /// Give a defined PF its VFs. An absent PF, or one that has no driver
    /// yet (only the PF driver can make VFs), waits: the udev rule applies
    /// the definition when the PF's driver binds.
    fn apply_vfs(&self, def: &VfDefinition) -> Result<Outcome> {
        let pf = PciAddress::parse(&def.address)?;
        if self.require(&pf).is_err() {
            return Ok(Outcome::Waiting("absent; the VF definition is kept for when it appears".to_string()));
        }
        let ids = self.ids(&pf)?;
        if (ids.vendor, ids.device) != (def.vendor, def.device) {
            return Err(Error::OperationInvalid(format!(
                "the VF definition of {pf} was made for {:04x}:{:04x}, but the device there now is {:04x}:{:04x}: refused; remove it ('nodedev sriov {pf} 0 --persistent') or define it again",
                def.vendor, def.device, ids.vendor, ids.device
            )));
        }
        if self.driver(&pf)?.is_none() {
            return Ok(Outcome::Waiting(format!(
                "{pf} has no driver yet, and only its PF driver can make VFs: the udev rule applies the definition when one binds (or run 'nodedev apply {pf}' then)"
            )));
        }
        let req = StubRequest::parse_or_none(def.driver.as_deref())?;
        let vfs = self.provision_vfs(&pf, def.count, req.as_ref(), false)?;
        let on = def.driver.as_deref().unwrap_or("no driver");
        Ok(Outcome::Done(format!("{} VF(s) on {on}", vfs.len())))
    }

    fn apply_one(&self, def: &Definition) -> Result<Option<String>> {
        let Some(addr) = self.applicable(def)? else { return Ok(None) };
        let stub = request_of(&def.stub)?;
        let current = self.driver(&addr)?;
        if current.as_deref() == Some(def.stub.as_str()) && self.state.get(&addr.to_string())?.is_some() {
            return Ok(Some(format!("on {} already", def.stub)));
        }
        self.check_writable(&addr, "apply the definition of")?;
        self.check_policy("detach", &addr)?;
        self.authorize_driver(Operation::Detach, &addr, None, Some(&def.stub))?;
        let _lock = self.lock_devices(&[addr])?;
        // Read again under the group lock: another caller may have moved the
        // device while this one waited (given it back to its host driver).
        let current = self.driver(&addr)?;
        if current.as_deref() == Some(def.stub.as_str()) && self.state.get(&addr.to_string())?.is_some() {
            return Ok(Some(format!("on {} already", def.stub)));
        }
        if current.as_deref().is_some_and(|c| Stub::of_driver(c).is_none()) {
            self.check_safe("detach", &addr, false)?;
        }
        if self.state.get(&addr.to_string())?.is_none() {
            // The host driver never had it this boot (or it is on the stub
            // through the udev rule): the definition knows the original.
            let original = match &current {
                Some(c) if Stub::of_driver(c).is_none() => Some(c.clone()),
                _ => def.original_driver.clone(),
            };
            let mut record = Record::new(&addr.to_string(), original, &def.stub);
            if current.as_deref() == Some(def.stub.as_str()) {
                record.step = Step::Detached;
                self.state.put(&record)?;
                return Ok(Some(format!("on {} (set at boot), record written", def.stub)));
            }
            if current.is_none() {
                // A settled record that knows the original driver: detach
                // takes the original from it for a driverless device (a
                // half-done one it would refuse), and a crash before the
                // stub binds leaves "detached, on no driver", which recover
                // gives back to that original.
                record.step = Step::Detached;
                self.state.put(&record)?;
            }
        }
        self.detach_all_locked(&[addr], &stub, None)?;
        Ok(Some(format!("detached to {} from {}", def.stub, current.as_deref().unwrap_or("no driver"))))
    }
}
