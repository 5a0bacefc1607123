//! Finishing what a dead process left half done.
//!
//! Records change step only while the state lock is held, so a record found
//! mid-operation under the lock was left by a process that died. Each one is
//! completed or rolled back so that the device ends either on its stub with
//! a complete record, or on its original driver with no record.

use super::Host;
use crate::address::PciAddress;
use crate::error::Result;
use crate::state::{Record, Step};
use crate::stub::is_stub_driver;

/// What recovery did with one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The device's address, or the record file for a corrupt record.
    pub address: String,
    /// The step the dead process was at; None for a corrupt record.
    pub step: Option<Step>,
    /// One line for a person: what the device is now.
    pub outcome: String,
}

impl Host {
    /// Complete or roll back every interrupted operation. Read-only
    /// connections only report.
    pub fn recover(&self) -> Result<Vec<Recovered>> {
        let _lock = self.state.lock()?;
        let (records, problems) = self.state.list_checked()?;
        let mut done: Vec<Recovered> = problems
            .into_iter()
            .map(|p| Recovered { address: self.state.location(), step: None, outcome: p })
            .collect();
        for rec in records {
            if rec.step == Step::Detached && !self.lost_its_stub(&rec) {
                continue;
            }
            let outcome = if self.options.read_only {
                "left alone: the connection is read-only".to_string()
            } else {
                self.recover_one(&rec)
            };
            done.push(Recovered { address: rec.address.clone(), step: Some(rec.step), outcome });
        }
        Ok(done)
    }

    /// At open: recover only when a record says an operation was cut short,
    /// so that opening never creates the state directory for nothing. The
    /// report is kept for `take_recovered`.
    pub fn recover_at_open(&self) {
        let pending = match self.state.list_checked() {
            Ok((records, problems)) => !problems.is_empty() || records.iter().any(|r| r.step != Step::Detached),
            Err(_) => false, // every operation will report the state dir's problem
        };
        if pending && !self.options.read_only {
            let report = self.recover().unwrap_or_else(|e| {
                vec![Recovered { address: self.state.location(), step: None, outcome: format!("recovery failed: {e}") }]
            });
            self.recovered.lock().unwrap_or_else(|p| p.into_inner()).extend(report);
        }
    }

    /// What recovery did since the last call (at open and in `recover`).
    pub fn take_recovered(&self) -> Vec<Recovered> {
        std::mem::take(&mut *self.recovered.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A "detached" device that is present but on no driver at all: its stub
    /// binding was lost (a failed step, or a stub driver unloaded). An owned
    /// device is left for its owner to release.
    fn lost_its_stub(&self, rec: &Record) -> bool {
        rec.owner.is_none()
            && PciAddress::parse(&rec.address).is_ok_and(|a| matches!(self.driver(&a), Ok(None)))
    }

    fn recover_one(&self, rec: &Record) -> String {
        let Ok(addr) = PciAddress::parse(&rec.address) else {
            return format!("record names no PCI address; kept in {}", self.state.location());
        };
        let current = match self.driver(&addr) {
            Ok(c) => c,
            Err(e) => return format!("kept the record: {e}"),
        };
        let original = rec.original_driver.as_deref();
        let result = match rec.step {
            // Interrupted detach that reached the stub: finish it.
            Step::Detaching if current.as_deref() == Some(rec.stub.as_str()) => {
                let mut r = rec.clone();
                r.step = Step::Detached;
                self.state.put(&r).map(|()| format!("detach completed: on {}", rec.stub))
            }
            // Anything else goes back to where it came from.
            _ if current.as_deref().is_none_or(is_stub_driver) || current.as_deref() == original => self
                .check_not_held(&addr, "recover")
                .and_then(|()| self.restore(&addr, original))
                .and_then(|()| self.state.remove(&rec.address))
                .map(|()| format!("rolled back to {}", original.unwrap_or("no driver"))),
            _ => {
                // A host driver other than the original took it: the admin
                // changed it by hand; our record no longer applies.
                self.state.remove(&rec.address).map(|()| {
                    format!("record dropped: the device is on {} now", current.as_deref().unwrap_or("-"))
                })
            }
        };
        result.unwrap_or_else(|e| format!("could not recover, record kept: {e}"))
    }
}
