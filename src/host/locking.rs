//! Which locks an operation takes (the locks themselves, their order and
//! why it cannot deadlock: `state/lock.rs`).
//!
//! - An operation on devices (detach, reattach, reset, prepare, release,
//!   applying a definition) locks the IOMMU group of each device, or the
//!   device itself when it has none: `lock_devices`. Operations on other
//!   groups run meanwhile, in this process and in others.
//! - What changes which devices or groups exist, or binds devices of other
//!   groups as a side effect, locks the whole host: `lock_host` (SR-IOV
//!   provisioning, recovery, `recover --clear`), and `lock_devices` itself
//!   when a device has no driver_override (binding through new_id).

use super::Host;
use crate::address::PciAddress;
use crate::error::{Error, Result};
use crate::state::{LockKey, StateLock};

/// How often `lock_devices` starts over when groups change under it.
const REGROUP_TRIES: usize = 5;

impl Host {
    /// The lock that covers the device: its IOMMU group's, or its own
    /// without a group.
    pub fn lock_key(&self, addr: &PciAddress) -> LockKey {
        match self.group_number(addr) {
            Some(n) => LockKey::Group(n),
            None => LockKey::Device(*addr),
        }
    }

    /// Lock what an operation on `devices` touches: their groups (each
    /// device without one: itself). Once held, each device's group is read
    /// again: one that changed meanwhile (the device removed and added, a VF
    /// re-created) means the wrong group is locked, so it starts over.
    pub(crate) fn lock_devices(&self, devices: &[PciAddress]) -> Result<StateLock> {
        // new_id binds every unbound device with the same ids, in any group.
        if devices.iter().any(|d| self.sysfs.exists(&super::dev_path(d, "")) && !self.has_override(d)) {
            return self.lock_host();
        }
        for _ in 0..REGROUP_TRIES {
            let keys: Vec<LockKey> = devices.iter().map(|d| self.lock_key(d)).collect();
            let mut covers: Vec<String> = devices.iter().map(|d| d.to_string()).collect();
            for k in &keys {
                if let LockKey::Group(n) = k {
                    covers.extend(self.group_members(*n).iter().map(|m| m.to_string()));
                }
            }
            let lock = self.state.lock_keys(&keys, &covers)?;
            if devices.iter().zip(&keys).all(|(d, k)| self.lock_key(d) == *k) {
                return Ok(lock);
            }
        }
        Err(Error::OperationFailed(format!(
            "the IOMMU groups of {} kept changing while nodedev locked them (devices being removed and added?); retry once the host is settled",
            devices.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
        )))
    }

    /// Lock the whole host: no other operation runs meanwhile.
    pub(crate) fn lock_host(&self) -> Result<StateLock> {
        self.state.lock()
    }
}
