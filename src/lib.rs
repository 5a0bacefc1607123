//! nodedev: move Linux PCI devices between their host drivers and the stub
//! drivers used for passthrough (vfio-pci, pci-stub, xen-pciback), and put
//! them back, behind libvirt's node-device C API.

pub mod address;
pub mod capi;
pub mod debug;
pub mod error;
pub mod host;
pub mod inventory;
pub mod persist;
pub mod policy;
pub mod state;
pub mod stub;
pub mod sysfs;
pub mod uri;

pub use address::PciAddress;
pub use error::{Error, Result};
pub use host::{
    AuthRequest, DetachOptions, DeviceInfo, DeviceSummary, Group, GroupMember, Host, HostOptions, Operation,
    PrepareOptions,
};
pub use policy::Policy;
pub use stub::Stub;
