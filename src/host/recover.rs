//! Finishing what a dead process left half done.
//!
//! Records change step only while the state lock is held, so a record found
//! mid-operation under the lock was left by a process that died. Each one is
//! completed or rolled back so that the device ends either on its stub with
//! a complete record, or on its original driver with no record.
//!
//! Recovery changes drivers, so it obeys the same rules as every other
//! change: nothing happens on a read-only connection or a locked-down host;
//! finishing a detach (taking the device from the host) needs the policy's
//! allow/deny lists too; and each device is put to the authorization
//! callback as `Operation::Recover`. Opening a connection recovers nothing:
//! a daemon opens, registers its callback, then calls `recover`. Until then
//! every operation on a device with a half-done record is refused (see
//! `Host::settled_record`), so none acts on what that record claims.

use super::{Host, Operation};
use crate::address::PciAddress;
use crate::error::{Error, Result};
use crate::state::{Record, Step};
use crate::stub::is_stub_driver;
use std::fmt;

/// What recovery did with one record. Reports like this one may gain
/// fields in any release, so they cannot be built or matched field by field
/// outside the crate:
///
/// ```compile_fail,E0639
/// let r = nodedev::Recovered { address: String::new(), step: None, outcome: String::new(), resolved: true };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovered {
    /// The device's address.
    pub address: String,
    /// The step the dead process was at; None for a record that cannot be
    /// used, and for a PF's `sriov_drivers_autoprobe` that an interrupted
    /// provisioning left off.
    pub step: Option<Step>,
    /// One line for a person: what the device is now, or why it was left.
    pub outcome: String,
    /// The record was settled (completed, rolled back or dropped); false:
    /// it is still there and needs another recover or an administrator.
    pub resolved: bool,
}

/// What a half-done record needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    /// A detach that reached the stub: mark it detached.
    Complete,
    /// Give the device back to its original driver (None: no driver) and forget it.
    RollBack(Option<String>),
    /// A host driver other than the original took it (the admin did, by
    /// hand): the record no longer applies.
    Drop(String),
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Plan::Complete => write!(f, "finish the detach"),
            Plan::RollBack(to) => write!(f, "give it back to {}", to.as_deref().unwrap_or("no driver")),
            Plan::Drop(cur) => write!(f, "drop the record (the device is on {cur} now)"),
        }
    }
}

impl Host {
    /// Complete or roll back every interrupted operation that the
    /// connection, the policy and the authorization callback allow; report
    /// the others (left as they are, with why), every record that cannot be
    /// used (until an administrator clears it), and once per connection each
    /// record whose device is gone.
    ///
    /// A VMM calls it once at start, after [`Host::set_authorizer`] if it
    /// uses one; what a crashed C daemon, CLI or Rust VMM left is finished
    /// alike, since all write the same records.
    ///
    /// ```
    /// let host = nodedev::Host::open("test:///default")?;
    /// for r in host.recover()? {
    ///     println!("{}: {}", r.address, r.outcome);
    /// }
    /// # Ok::<(), nodedev::Error>(())
    /// ```
    pub fn recover(&self) -> Result<Vec<Recovered>> {
        // Reads only, without the lock: nothing is created when nothing is there.
        let (records, corrupt) = self.state.list_checked()?;
        let mut done: Vec<Recovered> = corrupt
            .iter()
            .map(|c| Recovered {
                address: c.address.clone(),
                step: None,
                outcome: format!(
                    "record {} cannot be used ({}); the device stays protected until it is cleared: {}",
                    c.file.display(),
                    c.why,
                    c.how_to_clear()
                ),
                resolved: false,
            })
            .collect();
        // What finished reattaches could not put back (bridge ports): said once.
        done.extend(self.take_all_notes());
        let mut todo = Vec::new();
        for rec in records {
            let Ok(addr) = PciAddress::parse(&rec.address) else { continue };
            if self.require(&addr).is_err() {
                if self.first_report_of_vanished(&rec.address) {
                    done.push(Recovered {
                        address: rec.address.clone(),
                        step: Some(rec.step),
                        outcome: format!(
                            "the device is gone (hot-unplugged?); its record is kept, so it stays protected if it comes back; 'nodedev recover --clear {}' forgets it",
                            rec.address
                        ),
                        resolved: false,
                    });
                }
                continue;
            }
            let plan = match self.plan(&addr, &rec) {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(e) => {
                    done.push(Recovered {
                        address: rec.address.clone(),
                        step: Some(rec.step),
                        outcome: format!("record kept: {e}"),
                        resolved: false,
                    });
                    continue;
                }
            };
            // Asked without the lock held: the callback may call into the library.
            match self.may_recover(&addr, &rec, &plan) {
                Ok(()) => todo.push((addr, rec, plan)),
                Err(e) => done.push(Recovered {
                    address: rec.address.clone(),
                    step: Some(rec.step),
                    outcome: format!("pending ({plan}), not done: {e}; the record is kept"),
                    resolved: false,
                }),
            }
        }
        let autoprobes = self.autoprobes_to_restore(&mut done)?;
        if todo.is_empty() && autoprobes.is_empty() {
            return Ok(done);
        }
        // Records of any group, and dead writers' temporary files: the whole host.
        let _lock = self.lock_host()?;
        self.state.clean_temporaries()?;
        for (addr, rec, plan) in todo {
            // Again under the lock: another process may have recovered it meanwhile.
            let (outcome, resolved) = match self.state.get(&rec.address) {
                Ok(Some(now)) if now.step == rec.step && now.original_driver == rec.original_driver => {
                    match self.plan(&addr, &now) {
                        Ok(Some(p)) if p == plan => self.carry_out(&addr, &now, &plan),
                        Ok(None) => continue,
                        Ok(Some(p)) => {
                            (format!("the device changed meanwhile (now: {p}); record kept, run recover again"), false)
                        }
                        Err(e) => (format!("record kept: {e}"), false),
                    }
                }
                Ok(_) => continue, // done by another process meanwhile
                Err(e) => (format!("record kept: {e}"), false),
            };
            done.push(Recovered { address: rec.address.clone(), step: Some(rec.step), outcome, resolved });
        }
        // After the VFs' records: their rollback never needs the PF's autoprobe.
        for (pf, was) in autoprobes {
            match self.state.saved_autoprobe(&pf.to_string()) {
                Ok(Some(Ok(now))) if now == was => {}
                _ => continue, // put back by another process meanwhile
            }
            let (outcome, resolved) = match self
                .write(&super::dev_path(&pf, "sriov_drivers_autoprobe"), &was)
                .and_then(|()| self.state.remove_saved_autoprobe(&pf.to_string()))
            {
                Ok(()) => (
                    format!("sriov_drivers_autoprobe set back to {was} (a provisioning of its VFs was interrupted)"),
                    true,
                ),
                Err(e) => {
                    (format!("sriov_drivers_autoprobe not set back to {was}, kept for the next recover: {e}"), false)
                }
            };
            done.push(Recovered { address: pf.to_string(), step: None, outcome, resolved });
        }
        Ok(done)
    }

    /// The PFs whose `sriov_drivers_autoprobe` an interrupted provisioning
    /// left off, that the connection and the callback let recovery set back
    /// (a give-back: the rules of a rollback); the others are reported.
    fn autoprobes_to_restore(&self, done: &mut Vec<Recovered>) -> Result<Vec<(PciAddress, String)>> {
        let mut todo = Vec::new();
        for (address, saved) in self.state.saved_autoprobes()? {
            let report = |outcome: String| Recovered { address: address.clone(), step: None, outcome, resolved: false };
            let file = format!("{}/{address}.autoprobe", self.state.location());
            let Ok(pf) = PciAddress::parse(&address) else { continue };
            let was = match saved {
                Ok(v) => v,
                Err(why) => {
                    done.push(report(format!(
                        "the saved sriov_drivers_autoprobe {file} cannot be used ({why}): check the PF's sriov_drivers_autoprobe by hand, then delete the file"
                    )));
                    continue;
                }
            };
            if self.require(&pf).is_err() {
                if self.first_report_of_vanished(&file) {
                    done.push(report(format!(
                        "the PF is gone; its saved sriov_drivers_autoprobe ({was}) is kept in {file} for when it comes back"
                    )));
                }
                continue;
            }
            let allowed = self
                .check_writable(&pf, "recover (set back sriov_drivers_autoprobe of)")
                .and_then(|()| self.authorize_driver(Operation::Recover, &pf, None, None));
            match allowed {
                Ok(()) => todo.push((pf, was)),
                Err(e) => done.push(report(format!(
                    "pending (set sriov_drivers_autoprobe back to {was}), not done: {e}; {file} is kept"
                ))),
            }
        }
        Ok(todo)
    }

    /// Whether this connection has not reported `address` as gone yet.
    fn first_report_of_vanished(&self, address: &str) -> bool {
        self.reported_vanished.lock().unwrap_or_else(|p| p.into_inner()).insert(address.to_string())
    }

    /// What the record needs, from the kernel's view of the device; None: nothing.
    fn plan(&self, addr: &PciAddress, rec: &Record) -> Result<Option<Plan>> {
        let current = self.driver(addr)?;
        let original = rec.original_driver.clone();
        Ok(Some(match rec.step {
            // On its stub, or owned (left for its owner to release).
            Step::Detached if current.is_some() || rec.owner.is_some() => return Ok(None),
            // A "detached" device on no driver at all lost its stub binding
            // (a failed step, or a stub driver unloaded): give it back.
            Step::Detached => Plan::RollBack(original),
            Step::Detaching if current.as_deref() == Some(rec.stub.as_str()) => Plan::Complete,
            _ if current.as_deref().is_none_or(is_stub_driver) || current == original => Plan::RollBack(original),
            _ => Plan::Drop(current.unwrap_or_default()),
        }))
    }

    /// The rules of every other change: the connection, the policy, the callback.
    fn may_recover(&self, addr: &PciAddress, rec: &Record, plan: &Plan) -> Result<()> {
        match plan {
            Plan::Complete => {
                self.check_writable(addr, "recover (finish the detach of)")?;
                self.check_policy("recover (finish the detach of)", addr)?;
            }
            Plan::RollBack(_) => self.check_writable(addr, "recover (give back)")?,
            Plan::Drop(_) if self.options.read_only => {
                return Err(Error::Denied(format!(
                    "cannot recover {addr}: the connection is read-only; open it with virConnectOpen to change records"
                )))
            }
            Plan::Drop(_) => {}
        }
        let driver = match plan {
            Plan::Complete => Some(rec.stub.as_str()),
            Plan::RollBack(original) => original.as_deref(),
            Plan::Drop(_) => None,
        };
        self.authorize_driver(Operation::Recover, addr, rec.owner.as_deref(), driver)
    }

    fn carry_out(&self, addr: &PciAddress, rec: &Record, plan: &Plan) -> (String, bool) {
        let result = match plan {
            Plan::Complete => {
                let mut r = rec.clone();
                r.step = Step::Detached;
                self.state.put(&r).map(|()| format!("detach completed: on {}", rec.stub))
            }
            Plan::RollBack(original) => self
                .check_not_held(addr, "recover")
                .and_then(|()| self.restore(addr, original.as_deref()))
                .and_then(|()| self.state.remove(&rec.address))
                .map(|()| format!("rolled back to {}", original.as_deref().unwrap_or("no driver"))),
            Plan::Drop(current) => {
                self.state.remove(&rec.address).map(|()| format!("record dropped: the device is on {current} now"))
            }
        };
        match result {
            Ok(m) => (m, true),
            Err(e) => (format!("could not recover, record kept: {e}"), false),
        }
    }

    /// An administrator's decision, after checking the device by hand: forget
    /// the record of a device that is gone, or one that cannot be used.
    /// Records of present devices that can be used are refused: reattach or
    /// release them instead. Returns what happened, for a person.
    pub fn clear_record(&self, addr: &PciAddress) -> Result<String> {
        if self.options.read_only {
            return Err(Error::Denied(format!(
                "cannot clear the record of {addr}: the connection is read-only; open it with virConnectOpen to change records"
            )));
        }
        let _lock = self.lock_host()?;
        match self.state.entry(&addr.to_string())? {
            None => return Err(Error::OperationInvalid(format!("{addr} has no record in {}: nothing to clear", self.state.location()))),
            Some(crate::state::Entry::Valid(r)) if self.require(addr).is_ok() => {
                return Err(Error::OperationInvalid(format!(
                    "the record of {addr} is valid (step {:?}{}) and the device is present: reattach it, release it from its owner, or run 'nodedev recover'; --clear is for records that cannot be used or whose device is gone",
                    r.step,
                    r.owner.map(|o| format!(", assigned to {o}")).unwrap_or_default()
                )))
            }
            Some(_) => {}
        }
        let aside = self.state.clear(&addr.to_string())?;
        Ok(format!("record cleared (kept for reference as {})", aside.unwrap_or_default()))
    }

    /// The device's record, refusing one that an interrupted operation left
    /// half done: acting on it could use a driver or owner it only half
    /// describes. `recover` settles it first.
    pub(crate) fn settled_record(&self, addr: &PciAddress) -> Result<Option<Record>> {
        match self.state.get(&addr.to_string())? {
            Some(r) if r.step != Step::Detached => Err(Error::OperationInvalid(format!(
                "{addr} has an operation that a process left half done (its record in {} is at step '{}'): run 'nodedev recover' (virNodeDeviceRecover) first, which finishes or rolls it back",
                self.state.location(),
                match r.step {
                    Step::Detaching => "detaching",
                    Step::Reattaching => "reattaching",
                    Step::Detached => "detached",
                }
            ))),
            other => Ok(other),
        }
    }
}
