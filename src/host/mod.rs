//! A host: a kernel seen through `Sysfs`, plus the state store. Every
//! operation is written once here and runs the same on the real and the
//! simulated kernel.

mod describe;
mod device;
mod ops;
mod recover;
mod xml;

pub use device::DeviceInfo;
pub use recover::Recovered;

use crate::address::PciAddress;
use crate::error::{sysfs_error, Error, Result};
use crate::state::StateStore;
use crate::sysfs::{link_basename, Sysfs};
use std::io;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Refuse every operation that changes a device (virConnectOpenReadOnly).
    pub read_only: bool,
    /// Load a missing stub driver's module; false: ask the admin to.
    pub allow_modprobe: bool,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions { read_only: false, allow_modprobe: true }
    }
}

pub struct Host {
    sysfs: Arc<dyn Sysfs>,
    state: StateStore,
    options: HostOptions,
}

pub(crate) fn dev_path(addr: &PciAddress, attr: &str) -> String {
    if attr.is_empty() {
        format!("bus/pci/devices/{addr}")
    } else {
        format!("bus/pci/devices/{addr}/{attr}")
    }
}

impl Host {
    pub fn new(sysfs: Arc<dyn Sysfs>, state: StateStore, options: HostOptions) -> Host {
        Host { sysfs, state, options }
    }

    pub fn sysfs(&self) -> &Arc<dyn Sysfs> {
        &self.sysfs
    }

    pub fn state(&self) -> &StateStore {
        &self.state
    }

    pub fn options(&self) -> &HostOptions {
        &self.options
    }

    /// Every PCI function the kernel lists, in address order.
    pub fn list(&self) -> Result<Vec<PciAddress>> {
        let names = self
            .sysfs
            .list_dir("bus/pci/devices")
            .map_err(|e| sysfs_error("listing", "bus/pci/devices", &e))?;
        let mut out: Vec<PciAddress> = names.iter().filter_map(|n| PciAddress::parse(n).ok()).collect();
        out.sort();
        Ok(out)
    }

    /// Parse a device name (either spelling) and check that the device exists.
    pub fn lookup(&self, name: &str) -> Result<PciAddress> {
        let addr = PciAddress::parse(name)?;
        self.require(&addr)?;
        Ok(addr)
    }

    pub(crate) fn require(&self, addr: &PciAddress) -> Result<()> {
        if self.sysfs.exists(&dev_path(addr, "")) {
            Ok(())
        } else {
            Err(Error::NoDevice(format!(
                "no PCI device {addr} ({}) on this host: 'nodedev list' shows the devices there are",
                addr.node_name()
            )))
        }
    }

    /// Driver bound to the device now, if any.
    pub fn driver(&self, addr: &PciAddress) -> Result<Option<String>> {
        let path = dev_path(addr, "driver");
        match self.sysfs.read_link(&path) {
            Ok(t) => Ok(Some(link_basename(&t).to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.require(addr)?;
                Ok(None)
            }
            Err(e) => Err(sysfs_error("reading", &path, &e)),
        }
    }

    /// An attribute's value without its trailing newline; None when absent.
    pub(crate) fn attr(&self, addr: &PciAddress, name: &str) -> Option<String> {
        self.sysfs.read(&dev_path(addr, name)).ok().map(|s| s.trim_end().to_string())
    }

    pub(crate) fn write(&self, path: &str, value: &str) -> Result<()> {
        self.sysfs.write(path, value).map_err(|e| sysfs_error("writing", path, &e))
    }

    pub(crate) fn check_writable(&self, addr: &PciAddress, what: &str) -> Result<()> {
        if self.options.read_only {
            return Err(Error::Denied(format!(
                "cannot {what} {addr}: the connection is read-only; open it with virConnectOpen to change devices"
            )));
        }
        Ok(())
    }
}
