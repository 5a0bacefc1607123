//! A host: a kernel seen through `Sysfs`, plus the state store. Every
//! operation is written once here and runs the same on the real and the
//! simulated kernel.

mod assign;
mod busy;
mod describe;
mod device;
mod failed;
mod group;
mod locking;
mod mdev;
mod mdev_xml;
mod node;
mod ops;
mod pcie;
mod persistent;
mod recover;
mod safety;
mod sriov;
mod variant;
mod vpd;
mod xml;

pub use assign::{check_owner_name, PrepareOptions};
pub use device::{parent_name_of, DeviceInfo, DeviceSummary};
pub use group::{Group, GroupMember};
pub use mdev::{MdevConfig, MdevId, MdevInfo, MdevType};
pub use mdev_xml::{parse_mdev_xml, MdevXmlProblem};
pub use node::{net_node_name, pci_by_name, NetIface, NetInfo, Node, PciExtras, SystemInfo, CAP_NAMES};
pub use ops::DetachOptions;
pub use pcie::{from_config as pcie_from_config, Bridge, PcieInfo, PcieLink};
pub use persistent::Applied;
pub use recover::Recovered;
pub use variant::{VfioCandidate, VfioChoice};
pub use vpd::{parse as parse_vpd, Vpd, VpdFields};

use crate::address::PciAddress;
use crate::error::{sysfs_error, Error, Result};
use crate::policy::{Policy, Subject};
use crate::state::StateStore;
use crate::sysfs::{link_basename, Sysfs};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What an operation does to a device, as an authorization callback sees it.
/// Releases may add operations, so a callback's `match` needs a `_` arm:
///
/// ```compile_fail,E0004
/// fn allowed(op: nodedev::Operation) -> bool {
///     use nodedev::Operation::*;
///     match op {
///         Detach | Reattach | Reset | Prepare | Release | Provision | Recover => true,
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// [`Host::detach`], [`Host::detach_with`].
    Detach,
    /// [`Host::reattach`].
    Reattach,
    /// [`Host::reset`].
    Reset,
    /// [`Host::prepare`].
    Prepare,
    /// [`Host::release`].
    Release,
    /// Create or remove the VFs of an SR-IOV physical function.
    Provision,
    /// Finishing or rolling back what a dead process left half done.
    Recover,
    // ---- Mediated devices (issue 13 item 4): the request names the mdev
    // (`AuthRequest::mdev`) and its type; `address` is its parent.
    /// Create a mediated device on a parent: a transient one
    /// ([`Host::mdev_create`]), a defined one started ([`Host::mdev_start`]),
    /// or an autostart one started by `nodedev apply`.
    MdevCreate,
    /// Remove a live mediated device ([`Host::mdev_destroy`]).
    MdevDestroy,
    /// Write or replace a mediated device's definition ([`Host::mdev_define`]).
    MdevDefine,
    /// Remove a mediated device's definition ([`Host::mdev_undefine`]).
    MdevUndefine,
    /// Turn a defined mediated device's autostart on or off ([`Host::mdev_set_autostart`]).
    MdevAutostart,
}

impl Operation {
    /// The operation in a sentence ("detach", "provisioning of VFs").
    pub fn verb(self) -> &'static str {
        match self {
            Operation::Detach => "detach",
            Operation::Reattach => "reattach",
            Operation::Reset => "reset",
            Operation::Prepare => "prepare",
            Operation::Release => "release",
            Operation::Provision => "provisioning of VFs",
            Operation::Recover => "recovery",
            Operation::MdevCreate => "creation of mediated device",
            Operation::MdevDestroy => "removal of mediated device",
            Operation::MdevDefine => "definition of mediated device",
            Operation::MdevUndefine => "undefinition of mediated device",
            Operation::MdevAutostart => "autostart change of mediated device",
        }
    }
}

/// One question to a daemon's access control: may `operation` change this device?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthRequest<'a> {
    pub operation: Operation,
    pub address: &'a PciAddress,
    /// The guest, for prepare and release.
    pub owner: Option<&'a str>,
    /// The kernel driver the device is to be bound to (a stub's for detach
    /// and prepare, the host driver for reattach and release); None when the
    /// operation binds none or lets the kernel choose.
    pub driver: Option<&'a str>,
    /// For the mediated-device operations: the mdev (`address` is its parent).
    pub mdev: Option<&'a MdevId>,
    /// For creating or defining a mediated device: its type (what the parent
    /// is to serve, `i915-GVTg_V5_4`).
    pub mdev_type: Option<&'a str>,
}

/// A daemon's access control: request -> allowed?
pub type Authorizer = Arc<dyn Fn(&AuthRequest<'_>) -> bool + Send + Sync>;

#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Refuse every operation that changes a device (virConnectOpenReadOnly).
    pub read_only: bool,
    /// Load a missing stub driver's module; false: ask the admin to.
    pub allow_modprobe: bool,
    pub policy: Policy,
    /// Where persistent assignments live (None: this host keeps none).
    pub definitions: Option<crate::persist::Definitions>,
    /// Where persistent mediated devices live, in mdevctl's layout (None:
    /// this host keeps none): /etc/mdevctl.d, or DIR/mdevctl.d with confdir=DIR.
    pub mdev_definitions: Option<crate::mdevctl::MdevDefinitions>,
    /// How long a caller waits for a sysfs write the kernel may hold up (an
    /// unbind, remove or reset of a device a process holds through VFIO)
    /// before getting `Error::Timeout` (URI parameter `timeout=SECONDS`).
    pub write_timeout: Duration,
    /// How long a call waits for the host lock that another call (another
    /// thread or process) holds, before `Error::Timeout` naming the holder.
    /// From a URI: `lock_wait_for(timeout=)`.
    pub lock_wait: Duration,
}

/// The host-lock wait of a connection whose writes wait `write_timeout`:
/// the holder may itself be waiting out a few such writes, and legitimate
/// operations hold the lock for seconds under load, so never under 30 s.
#[doc(hidden)]
pub fn lock_wait_for(write_timeout: Duration) -> Duration {
    (write_timeout * 3).max(crate::state::DEFAULT_LOCK_WAIT)
}

/// `HostOptions::write_timeout` unless the URI says otherwise.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            read_only: false,
            allow_modprobe: true,
            policy: Policy::default(),
            definitions: None,
            mdev_definitions: None,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            lock_wait: crate::state::DEFAULT_LOCK_WAIT,
        }
    }
}

/// One host: a kernel (this machine's, or a simulated one) and the records
/// of what nodedev changed on it, opened from a connection URI.
///
/// Every method checks its arguments, takes the host's lock where it
/// changes anything, and writes the device's record before it touches the
/// kernel, so the C ABI, the CLI and other processes see the change (and a
/// crash half way is finished or rolled back by [`Host::recover`]).
pub struct Host {
    sysfs: Arc<dyn Sysfs>,
    state: StateStore,
    options: HostOptions,
    authorizer: Mutex<Option<Authorizer>>,
    /// Records of vanished devices this connection has reported (once each).
    reported_vanished: Mutex<std::collections::BTreeSet<String>>,
    /// What finished operations could not put back (safety.rs `note`),
    /// until the CLI or `recover` takes it.
    notes: Mutex<Vec<Recovered>>,
}

pub(crate) fn dev_path(addr: &PciAddress, attr: &str) -> String {
    if attr.is_empty() {
        format!("bus/pci/devices/{addr}")
    } else {
        format!("bus/pci/devices/{addr}/{attr}")
    }
}

impl Host {
    /// Open the host a connection URI names, for reading and changing devices.
    ///
    /// - `nodedev:///system` (also libvirt's `qemu:///system`): this machine's
    ///   /sys, records in /run/nodedev, shared with every other caller.
    /// - `test:///default`: the built-in simulated host, one per process,
    ///   shared by every `Host` opened on it.
    /// - `test:///PATH.json`: a simulated host described in a file (what
    ///   `nodedev dump-host` writes), new for each open.
    ///
    /// Parameters after `?` are README.md's ("Connection URIs"): `timeout=`,
    /// `modprobe=0`, `lockdown=1`, `policy=`, and for test trees `root=`,
    /// `statedir=`, `confdir=`. Opening changes nothing, not even after a
    /// crash: call [`Host::recover`] once the authorization callback (if any)
    /// is set.
    ///
    /// ```
    /// let host = nodedev::Host::open("test:///default")?;
    /// assert!(host.list()?.len() > 10);
    /// assert!(nodedev::Host::open("http://example.com").is_err());
    /// # Ok::<(), nodedev::Error>(())
    /// ```
    pub fn open(uri: &str) -> Result<Host> {
        crate::uri::open(Some(uri), false).map(|(host, _)| host)
    }

    /// Open a host for reading only (virConnectOpenReadOnly): every change is
    /// refused with [`Error::Denied`].
    ///
    /// ```
    /// let host = nodedev::Host::open_read_only("test:///default")?;
    /// let nic = host.lookup("0000:03:01.0")?;
    /// let err = host.detach(&nic, nodedev::Stub::Vfio).unwrap_err();
    /// assert!(matches!(err, nodedev::Error::Denied(_)), "{err}");
    /// # Ok::<(), nodedev::Error>(())
    /// ```
    pub fn open_read_only(uri: &str) -> Result<Host> {
        crate::uri::open(Some(uri), true).map(|(host, _)| host)
    }

    /// A host over any kernel backend and record store (tests, the C ABI).
    #[doc(hidden)]
    pub fn new(sysfs: Arc<dyn Sysfs>, state: StateStore, options: HostOptions) -> Host {
        let state = state.with_lock_wait(options.lock_wait);
        Host {
            sysfs,
            state,
            options,
            authorizer: Mutex::new(None),
            reported_vanished: Mutex::default(),
            notes: Mutex::default(),
        }
    }

    /// Register (or with None remove) the callback asked before every change
    /// (a daemon's access control). It is called without any lock held, so it
    /// may call back into the library.
    ///
    /// ```
    /// use nodedev::{Host, Operation, Stub};
    /// use std::sync::Arc;
    ///
    /// let host = Host::open("test:///default")?;
    /// host.set_authorizer(Some(Arc::new(|req: &nodedev::AuthRequest<'_>| req.operation != Operation::Detach)));
    /// let nic = host.lookup("0000:03:01.0")?;
    /// assert!(matches!(host.detach(&nic, Stub::Vfio), Err(nodedev::Error::Denied(_))));
    /// # Ok::<(), nodedev::Error>(())
    /// ```
    pub fn set_authorizer(&self, auth: Option<Authorizer>) {
        *self.authorizer.lock().unwrap_or_else(|p| p.into_inner()) = auth;
    }

    /// Ask the registered callback, if any. Called without any lock held, so
    /// the callback may call back into the library.
    pub(crate) fn authorize(&self, op: Operation, addr: &PciAddress, owner: Option<&str>) -> Result<()> {
        self.authorize_driver(op, addr, owner, None)
    }

    /// `authorize`, telling the callback which driver the device would get.
    pub(crate) fn authorize_driver(
        &self,
        operation: Operation,
        address: &PciAddress,
        owner: Option<&str>,
        driver: Option<&str>,
    ) -> Result<()> {
        let req = AuthRequest { operation, address, owner, driver, mdev: None, mdev_type: None };
        if self.ask(&req) {
            return Ok(());
        }
        Err(Error::Denied(format!(
            "the authorization callback denied {} of {address}{}{}",
            operation.verb(),
            owner.map(|o| format!(" for {o}")).unwrap_or_default(),
            driver.map(|d| format!(" (driver {d})")).unwrap_or_default()
        )))
    }

    /// Ask about a mediated-device operation (`mdev_type`: the type it
    /// creates or defines).
    pub(crate) fn authorize_mdev(&self, operation: Operation, id: &MdevId, mdev_type: Option<&str>) -> Result<()> {
        let req = AuthRequest { operation, address: &id.parent, owner: None, driver: None, mdev: Some(id), mdev_type };
        if self.ask(&req) {
            return Ok(());
        }
        Err(Error::Denied(format!(
            "the authorization callback denied {} {} on {}{}",
            operation.verb(),
            id.uuid,
            id.parent,
            mdev_type.map(|t| format!(" (type {t})")).unwrap_or_default()
        )))
    }

    /// The registered callback's answer (true without one). Called without
    /// any lock held, so the callback may call back into the library.
    fn ask(&self, req: &AuthRequest<'_>) -> bool {
        let auth = self.authorizer.lock().unwrap_or_else(|p| p.into_inner()).clone();
        auth.is_none_or(|f| f(req))
    }

    /// The policy's allow/deny lists for taking this device from the host.
    pub(crate) fn check_policy(&self, what: &str, addr: &PciAddress) -> Result<()> {
        let p = &self.options.policy;
        if !p.has_device_rules() {
            return Ok(());
        }
        let hex =
            |name: &str| self.attr(addr, name).and_then(|v| u32::from_str_radix(v.trim_start_matches("0x"), 16).ok());
        let subject = Subject {
            address: *addr,
            vendor: hex("vendor").unwrap_or(0) as u16,
            device: hex("device").unwrap_or(0) as u16,
            class: hex("class").unwrap_or(0),
        };
        p.check_take(what, &subject)
    }

    #[doc(hidden)]
    pub fn sysfs(&self) -> &Arc<dyn Sysfs> {
        &self.sysfs
    }

    #[doc(hidden)]
    pub fn state(&self) -> &StateStore {
        &self.state
    }

    #[doc(hidden)]
    pub fn options(&self) -> &HostOptions {
        &self.options
    }

    /// Every PCI function the kernel lists, in address order
    /// (virConnectListAllNodeDevices).
    ///
    /// ```
    /// let host = nodedev::Host::open("test:///default")?;
    /// for addr in host.list()? {
    ///     let info = host.device_info(&addr)?;
    ///     println!("{addr} {:04x}:{:04x} {:?}", info.vendor, info.device, info.driver);
    /// }
    /// # Ok::<(), nodedev::Error>(())
    /// ```
    pub fn list(&self) -> Result<Vec<PciAddress>> {
        let names =
            self.sysfs.list_dir("bus/pci/devices").map_err(|e| sysfs_error("listing", "bus/pci/devices", &e))?;
        // Only the kernel's spelling: another ("pci_0000_03_00_0", upper-case
        // hex) in a tree under root= would list a function twice.
        let mut out: Vec<PciAddress> =
            names.iter().filter_map(|n| PciAddress::parse(n).ok().filter(|a| a.to_string() == *n)).collect();
        out.sort();
        Ok(out)
    }

    /// Parse a device name (either spelling: `0000:03:00.0` or libvirt's
    /// `pci_0000_03_00_0`) and check that the device exists
    /// (virNodeDeviceLookupByName).
    ///
    /// ```
    /// let host = nodedev::Host::open("test:///default")?;
    /// assert_eq!(host.lookup("pci_0000_03_01_0")?, host.lookup("0000:03:01.0")?);
    /// assert!(matches!(host.lookup("0000:7f:00.0"), Err(nodedev::Error::NoDevice(_))));
    /// assert!(matches!(host.lookup("eth0"), Err(nodedev::Error::InvalidArg(_))));
    /// # Ok::<(), nodedev::Error>(())
    /// ```
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
        self.sysfs
            .write(path, value)
            .map_err(|e| sysfs_error(&format!("writing \"{}\" to", value.escape_debug()), path, &e))
    }

    /// Refuse any change on a read-only connection or a locked-down host.
    pub(crate) fn check_writable(&self, addr: &PciAddress, what: &str) -> Result<()> {
        if self.options.read_only {
            return Err(Error::Denied(format!(
                "cannot {what} {addr}: the connection is read-only; open it with virConnectOpen to change devices"
            )));
        }
        self.options.policy.check_unlocked(what, addr)
    }
}
