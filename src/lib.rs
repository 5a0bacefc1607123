//! nodedev: move Linux PCI devices between their host drivers and the stub
//! drivers used for passthrough (vfio-pci, pci-stub, xen-pciback), and put
//! them back, behind libvirt's node-device C API and this Rust API.
//!
//! # The Rust API, for Rust VMMs
//!
//! Cloud Hypervisor, crosvm, Firecracker and other Rust VMMs can call the
//! library directly instead of writing sysfs by hand or shelling out. The
//! Rust API and the C ABI are the same code over the same records and the
//! same locks: a device a Rust VMM prepares for its guest is seen as
//! assigned by a C daemon and by the `nodedev` CLI on the same host, and the
//! other way round, and two callers racing for one device never both win.
//!
//! What this page shows is the API, under the semver policy of README.md
//! ("Rust API policy"). Items hidden from this documentation (`#[doc(hidden)]`)
//! serve the CLI, the C ABI and the tests; they may change in any release.
//!
//! | C ABI (libvirt's name)                | Rust API                                   |
//! |---------------------------------------|--------------------------------------------|
//! | `virConnectOpen(uri)`                 | [`Host::open`]                             |
//! | `virConnectOpenReadOnly(uri)`         | [`Host::open_read_only`]                   |
//! | `virConnectListAllNodeDevices`        | [`Host::list`]                             |
//! | `virNodeDeviceLookupByName`           | [`Host::lookup`]                           |
//! | `virNodeDeviceGetXMLDesc`             | [`Host::xml`] (structured: [`Host::device_info`]) |
//! | `virNodeDeviceDetachFlags(dev, name)` | [`Host::detach`], [`Host::detach_with`] (`name.parse::<Stub>()`) |
//! | `VIR_NODE_DEVICE_DETACH_GROUP`        | [`DetachOptions::group`]                   |
//! | `virNodeDeviceReAttach`               | [`Host::reattach`]                         |
//! | `virNodeDeviceReset`                  | [`Host::reset`]                            |
//! | nodedev's prepare / release           | [`Host::prepare`], [`Host::release`], [`Host::assignments`] |
//! | nodedev's recover                     | [`Host::recover`]                          |
//! | `nodedev list --json`                 | [`inventory::devices`]                     |
//!
//! Every call returns [`Result`]; an [`Error`]'s variant is the class of the
//! failure (libvirt's error code on the C side) and its message says which
//! device, what state it is in and what to do. No call panics on bad input
//! and none blocks without bound: kernel writes that a holder can delay and
//! the wait for another caller's lock end with [`Error::Timeout`].
//!
//! A [`Host`] is `Send + Sync`: share one between threads (an `Arc<Host>`)
//! or open one per thread; both see the same records.
//!
//! # Example: a guest's passthrough device, from start to stop
//!
//! `test:///default` is the built-in simulated host (the same code as the
//! real one, no root needed), so this example runs as a doctest; a VMM
//! opens `nodedev:///system` instead.
//!
//! ```
//! use nodedev::{Host, PrepareOptions, Stub};
//!
//! # fn main() -> nodedev::Result<()> {
//! let host = Host::open("test:///default")?;
//! // Finish or roll back what a crashed caller left half done (once, at start).
//! host.recover()?;
//!
//! // The GPU and its audio function share an IOMMU group.
//! let gpu = host.lookup("0000:01:00.0")?;
//! let audio = host.lookup("pci_0000_01_00_1")?;
//!
//! // Guest start: move both to vfio-pci and record the owner, all or nothing.
//! let managed = PrepareOptions { managed: true, ..Default::default() };
//! host.prepare("guest-1", &[gpu, audio], Stub::Vfio, managed)?;
//! assert_eq!(host.driver(&gpu)?.as_deref(), Some("vfio-pci"));
//! assert!(host.group(&gpu)?.expect("an IOMMU group").viable());
//!
//! // Another guest cannot take a device guest-1 owns.
//! let err = host.prepare("guest-2", &[gpu], Stub::Vfio, managed).unwrap_err();
//! assert!(err.to_string().contains("guest-1"), "{err}");
//!
//! // Guest stop: the devices go back to the drivers they had.
//! assert_eq!(host.release("guest-1", None)?, 2);
//! assert_eq!(host.driver(&gpu)?.as_deref(), Some("nouveau"));
//! # Ok(())
//! # }
//! ```

#[doc(hidden)]
pub mod address;
#[cfg(feature = "capi")]
#[doc(hidden)]
pub mod capi;
#[doc(hidden)]
pub mod debug;
#[doc(hidden)]
pub mod dra;
pub mod error;
#[doc(hidden)]
pub mod events;
#[doc(hidden)]
pub mod host;
pub mod inventory;
#[doc(hidden)]
pub mod mdevctl;
#[doc(hidden)]
pub mod persist;
#[doc(hidden)]
pub mod policy;
#[doc(hidden)]
pub mod state;
#[doc(hidden)]
pub mod stub;
#[doc(hidden)]
pub mod sysfs;
#[doc(hidden)]
pub mod uri;

pub use address::PciAddress;
pub use error::{Error, Result};
#[doc(hidden)]
pub use host::HostOptions;
/// The mediated-device types a parent offers (`DeviceInfo::mdev_types`).
pub use host::MdevType;
pub use host::{
    AuthRequest, Authorizer, DetachOptions, DeviceInfo, DeviceSummary, Group, GroupMember, Host, Operation,
    PrepareOptions, Recovered, VfioCandidate, VfioChoice,
};
// Mediated devices' operations (issue 13 item 4): not part of the documented Rust API yet.
#[doc(hidden)]
pub use host::{MdevConfig, MdevId, MdevInfo};
#[doc(hidden)]
pub use policy::Policy;
pub use state::Step;
pub use stub::{Stub, StubRequest};
