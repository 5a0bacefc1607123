//! Node device handles and calls. A `virNodeDevice` is an `Arc` holding its
//! connection, the PCI address and the two strings handed out by reference
//! (name and parent), created with `Arc::into_raw`; virNodeDeviceRef adds a
//! reference, virNodeDeviceFree drops one.
//!
//! Device names: lookups accept libvirt's `pci_0000_03_00_1` and the kernel's
//! `0000:03:00.1`; handles are always named the libvirt way. The tree is
//! libvirt's: the root `computer` (capability "system"), the PCI functions
//! ("pci", "vpd" when they have Vital Product Data, "mdev_types" for an
//! mdev parent), a `net_IFNAME_MAC` device ("net") for each interface of a
//! PCI function, and the mediated devices (`mdev_UUID_PARENT`, "mdev"; see
//! capi/mdev.rs), which the PCI-only calls refuse.

use super::boundary::{api, Call, Raised};
pub(crate) use super::connect::writable;
use super::connect::{conn_arg, virConnect, virConnectPtr};
use super::handle::{self, Handle, Tag};
use super::last_error::ErrorTarget;
pub(crate) use super::raised::with_unsupported_as;
use super::virterror::{virErrorDomain, virErrorNumber};
use crate::address::PciAddress;
use crate::host::{DetachOptions, Node};
use crate::stub::StubRequest;
use std::ffi::{c_char, c_int, c_uint, CString};
use std::ptr;
use std::sync::Arc;

const DEV_MAGIC: u64 = 0x6e6f_6465_6465_7669; // "nodedevi"
const DOMAIN: virErrorDomain = virErrorDomain::VIR_FROM_NODEDEV;

/// A host device (opaque): computer, a PCI function, a network interface
/// or a mediated device. Thread-safe. Holds a reference to its connection.
pub struct virNodeDevice {
    magic: Tag,
    pub(crate) conn: Arc<virConnect>,
    pub(crate) node: Node,
    name: CString,
    /// None for computer, the root.
    parent: Option<CString>,
    /// A PCI function's `bus/pci/devices/ADDR` link target, read when the
    /// handle was made: the XML's path and parent come from it without
    /// another readlink. Empty for computer and interfaces.
    placement: String,
}

impl virNodeDevice {
    /// The PCI function this handle names; VIR_ERR_INVALID_ARG for computer
    /// and interfaces, as libvirt's hostdev calls refuse a device that is not
    /// a PCI device.
    pub(crate) fn pci(&self, call: &Call) -> Result<PciAddress, Raised> {
        self.node
            .pci()
            .copied()
            .ok_or_else(|| call.invalid_arg(format_args!("device '{}' is not a PCI device", self.node.name())))
    }
}

/// Pointer to a device handle, as returned by virNodeDeviceLookupByName.
pub type virNodeDevicePtr = *mut virNodeDevice;

impl Handle for virNodeDevice {
    const LIVE: u64 = DEV_MAGIC;
    const INVALID: virErrorNumber = virErrorNumber::VIR_ERR_INVALID_NODE_DEVICE;
    const ARG: &'static str = "node device pointer dev";
    const NOT_LIVE: &'static str = "not a live device handle";

    unsafe fn tag_of(p: *const Self) -> *const Tag {
        ptr::addr_of!((*p).magic)
    }

    fn error_target(this: &Arc<Self>) -> Arc<dyn ErrorTarget> {
        this.conn.clone()
    }
}

#[allow(dead_code)]
fn assert_thread_safe() {
    fn is<T: Send + Sync>() {}
    is::<virNodeDevice>();
}

/// Flags of virConnectListAllNodeDevices, libvirt's values. Capability bits
/// select devices having any of the given capabilities (none: every device):
/// CAP_SYSTEM, CAP_PCI_DEV, CAP_NET, CAP_VPD, CAP_MDEV_TYPES and CAP_MDEV
/// select devices here, the others none. Every device is active but a
/// mediated device defined and not started, which is inactive.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virConnectListAllNodeDeviceFlags {
    /// System capability: matches computer.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_SYSTEM = 1,
    /// PCI device: matches every PCI function.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV = 1 << 1,
    /// USB device: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_USB_DEV = 1 << 2,
    /// USB interface: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_USB_INTERFACE = 1 << 3,
    /// Network interface: matches the net_IFNAME_MAC devices.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET = 1 << 4,
    /// SCSI host bus adapter: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_SCSI_HOST = 1 << 5,
    /// SCSI target: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_SCSI_TARGET = 1 << 6,
    /// SCSI device: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_SCSI = 1 << 7,
    /// Storage device: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_STORAGE = 1 << 8,
    /// Fibre Channel host bus adapter: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_FC_HOST = 1 << 9,
    /// Capable of vports: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_VPORTS = 1 << 10,
    /// SCSI generic device: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_SCSI_GENERIC = 1 << 11,
    /// DRM device: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_DRM = 1 << 12,
    /// Capable of mediated devices: PCI functions that are mdev parents now.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV_TYPES = 1 << 13,
    /// Mediated device: live and defined mediated devices.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV = 1 << 14,
    /// s390 CCW device: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_CCW_DEV = 1 << 15,
    /// s390 CSS device: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_CSS_DEV = 1 << 16,
    /// vDPA device: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_VDPA = 1 << 17,
    /// s390 AP card: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_AP_CARD = 1 << 18,
    /// s390 AP queue: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_AP_QUEUE = 1 << 19,
    /// s390 AP matrix: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_AP_MATRIX = 1 << 20,
    /// Device with VPD: matches the PCI functions whose `vpd` parses.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_VPD = 1 << 21,
    /// Inactive devices: mediated devices that are defined but not live.
    VIR_CONNECT_LIST_NODE_DEVICES_INACTIVE = 1 << 30,
    /// Active devices: every PCI function and live mediated device. libvirt's value 1U << 31,
    /// written as INT_MIN so that the enumeration stays ISO C; it converts to
    /// 0x80000000 in the `unsigned int flags` argument.
    VIR_CONNECT_LIST_NODE_DEVICES_ACTIVE = -2147483648,
}

const fn bit(f: virConnectListAllNodeDeviceFlags) -> c_uint {
    f as c_int as c_uint
}

use virConnectListAllNodeDeviceFlags as F;
const CAP_BITS: c_uint = (1 << 22) - 1;
const ACTIVE: c_uint = bit(F::VIR_CONNECT_LIST_NODE_DEVICES_ACTIVE);
const INACTIVE: c_uint = bit(F::VIR_CONNECT_LIST_NODE_DEVICES_INACTIVE);
const LIST_ALL_FLAGS: c_uint = CAP_BITS | ACTIVE | INACTIVE;

/// Check a device argument: VIR_ERR_INVALID_NODE_DEVICE when NULL or not a
/// live handle. Returns a new reference; the device's connection's error
/// callback applies to this call.
///
/// # Safety
/// `p` is NULL or a pointer C got from this library (see [`handle`] on what
/// the check can tell of a freed one).
pub(crate) unsafe fn dev_arg(call: &mut Call, p: virNodeDevicePtr) -> Result<Arc<virNodeDevice>, Raised> {
    handle::arg(call, p)
}

pub(crate) fn new_device(call: &Call, conn: &Arc<virConnect>, node: Node) -> Result<Arc<virNodeDevice>, Raised> {
    let (parent, placement) = match &node {
        Node::Pci(addr) => {
            let placement = conn.host.placement_link(addr)?;
            (Some(crate::host::parent_name_of(addr, &placement)), placement)
        }
        other => (conn.host.node_parent(other)?, String::new()),
    };
    let cstring = |s: String| CString::new(s).map_err(|_| call.invalid_arg("device name contains a NUL byte"));
    Ok(Arc::new(virNodeDevice {
        magic: Tag::new(DEV_MAGIC),
        conn: conn.clone(),
        name: cstring(node.name())?,
        parent: parent.map(cstring).transpose()?,
        placement,
        node,
    }))
}

// ---- Events (issue 12, item 5): the handle an event callback gets.

impl virNodeDevice {
    /// libvirt's name of the device (`pci_0000_03_00_0`).
    pub(crate) fn name(&self) -> &str {
        self.name.to_str().unwrap_or("")
    }
}

/// A handle for the device of an event, named and placed from the event
/// itself (`devpath`: the kernel's `/devices/...` path of the uevent): the
/// device may be gone already (DELETED), so nothing is looked up.
pub(crate) fn event_device(conn: &Arc<virConnect>, ev: &crate::events::DeviceEvent) -> Option<Arc<virNodeDevice>> {
    let (node, placement) = match &ev.net {
        Some(n) => (Node::Net(n.clone()), String::new()),
        // What bus/pci/devices/ADDR links to: the same place, from /sys/bus/pci/devices.
        None => (Node::Pci(PciAddress::parse(&ev.address).ok()?), format!("../../..{}", ev.devpath)),
    };
    Some(Arc::new(virNodeDevice {
        magic: Tag::new(DEV_MAGIC),
        conn: conn.clone(),
        name: CString::new(node.name()).ok()?,
        parent: Some(CString::new(ev.parent.as_str()).ok()?),
        placement,
        node,
    }))
}

/// Devices having capability `cap` (None: any), libvirt's capability names.
fn devices_with_cap(conn: &virConnect, cap: Option<&str>) -> Result<Vec<Node>, Raised> {
    match cap {
        None => Ok(conn.host.nodes()?),
        Some(c) => Ok(conn.host.nodes_with_cap(c)?),
    }
}

/// The capability each CAP_* bit selects (libvirt's virNodeDevCapType names).
const CAP_FLAGS: [(virConnectListAllNodeDeviceFlags, &str); 6] = [
    (F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_SYSTEM, "system"),
    (F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV, "pci"),
    (F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET, "net"),
    (F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_VPD, "vpd"),
    (F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV_TYPES, "mdev_types"),
    (F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV, "mdev"),
];

/// The devices having any capability `caps` names (0: every device), in
/// the order of a full listing.
fn devices_with_caps(conn: &virConnect, caps: c_uint) -> Result<Vec<Node>, Raised> {
    if caps == 0 {
        return devices_with_cap(conn, None);
    }
    let mut selected: Vec<Node> = Vec::new();
    for (flag, cap) in CAP_FLAGS {
        if caps & bit(flag) != 0 {
            for n in conn.host.nodes_with_cap(cap)? {
                if !selected.contains(&n) {
                    selected.push(n);
                }
            }
        }
    }
    let order = |n: &Node| match n {
        Node::Computer => (0, None, String::new()),
        Node::Pci(a) => (1, Some(*a), String::new()),
        Node::Net(i) => (2, Some(i.parent), i.iface.clone()),
        Node::Mdev(id) => (3, Some(id.parent), id.uuid.clone()),
    };
    selected.sort_by_key(order);
    Ok(selected)
}

/// VIR_ERR_NO_MEMORY for `call` (kept where code has found it: see [`Call::no_memory`]).
#[allow(dead_code)]
pub(crate) fn no_memory(call: &Call) -> Raised {
    call.no_memory()
}

/// All devices of `conn` matching `flags`, as new handles.
///
/// `flags`: 0 (every device), or capability bits of
/// `virConnectListAllNodeDeviceFlags` (devices having any of them: CAP_SYSTEM
/// computer, CAP_PCI_DEV the PCI functions, CAP_NET the interfaces of PCI
/// functions, CAP_VPD the functions with VPD, CAP_MDEV_TYPES the mdev
/// parents, CAP_MDEV the mediated devices; the others none), possibly with
/// VIR_CONNECT_LIST_NODE_DEVICES_ACTIVE (every device but mediated devices
/// defined and not started) and/or VIR_CONNECT_LIST_NODE_DEVICES_INACTIVE
/// (those). Bits outside libvirt's defined set: VIR_ERR_INVALID_ARG.
///
/// `devices` may be NULL to only count. Otherwise `*devices` receives an
/// array allocated with malloc() of the returned number of handles followed
/// by a NULL: the caller frees each handle with virNodeDeviceFree() and the
/// array with free(). On error `*devices` is NULL (set before any check, as
/// libvirt does).
///
/// Returns the number of devices, or -1 on error: VIR_ERR_INVALID_CONN (NULL
/// or dead `conn`), VIR_ERR_INVALID_ARG (unknown flags), VIR_ERR_OPERATION_FAILED
/// (the device list cannot be read), VIR_ERR_NO_MEMORY.
#[no_mangle]
pub unsafe extern "C" fn virConnectListAllNodeDevices(
    conn: virConnectPtr,
    devices: *mut *mut virNodeDevicePtr,
    flags: c_uint,
) -> c_int {
    api("virConnectListAllNodeDevices", DOMAIN, -1, |call| {
        // libvirt clears the caller's pointer before any check.
        if !devices.is_null() {
            *devices = ptr::null_mut();
        }
        let c = conn_arg(call, conn)?;
        call.check_flags(flags, LIST_ALL_FLAGS)?;
        // libvirt's filter: any of the capability bits given, then active
        // and/or inactive as asked. PCI functions are all active; mdevs
        // are active when live, inactive when only defined.
        let caps = flags & CAP_BITS;
        let states = flags & (ACTIVE | INACTIVE);
        // Only mediated devices can be inactive (defined, not started).
        let inactive: Vec<crate::host::MdevId> = if states != 0 && states != ACTIVE | INACTIVE {
            c.host.mdevs()?.into_iter().filter(|m| !m.active).map(|m| m.id).collect()
        } else {
            Vec::new()
        };
        let state_ok = |n: &Node| {
            let active = !n.mdev().is_some_and(|id| inactive.contains(id));
            states == 0 || (states & ACTIVE != 0 && active) || (states & INACTIVE != 0 && !active)
        };
        let nodes: Vec<Node> = devices_with_caps(&c, caps)?.into_iter().filter(|n| state_ok(n)).collect();
        if devices.is_null() {
            return c_int::try_from(nodes.len()).map_err(|_| call.no_memory());
        }
        // A device removed since the listing (a VF of a PF whose
        // sriov_numvfs another tool lowers) is left out: the listing does
        // not fail for it, as libvirt's (from its device list) does not.
        let mut handles = Vec::with_capacity(nodes.len());
        for n in nodes {
            match new_device(call, &c, n) {
                Ok(h) => handles.push(h),
                Err(e) if e.code == virErrorNumber::VIR_ERR_NO_NODE_DEVICE as c_int => {}
                Err(e) => return Err(e),
            }
        }
        let count = c_int::try_from(handles.len()).map_err(|_| call.no_memory())?;
        // The array first: once it exists, filling it cannot fail.
        let array = call.terminated_array::<virNodeDevicePtr>(handles.len())?;
        for (i, h) in handles.into_iter().enumerate() {
            *array.add(i) = handle::into_raw(h);
        }
        *devices = array;
        Ok(count)
    })
}

/// The number of devices having capability `cap` (libvirt's names: "system",
/// "pci", "net", "vpd" select devices here; NULL: every device; any other
/// name gives 0).
///
/// `flags` must be 0. Returns the count, or -1 on error: VIR_ERR_INVALID_CONN,
/// VIR_ERR_INVALID_ARG (non-zero flags), VIR_ERR_OPERATION_FAILED.
#[no_mangle]
pub unsafe extern "C" fn virNodeNumOfDevices(conn: virConnectPtr, cap: *const c_char, flags: c_uint) -> c_int {
    api("virNodeNumOfDevices", DOMAIN, -1, |call| {
        let c = conn_arg(call, conn)?;
        call.check_flags(flags, 0)?;
        match call.opt_str("cap", cap) {
            Ok(cap) => Ok(devices_with_cap(&c, cap)?.len() as c_int),
            Err(_) => Ok(0), // no capability has such a name, as libvirt counts
        }
    })
}

/// The names (`computer`, `pci_0000_03_00_1`, `net_eth0_52_54_00_12_34_56`)
/// of the devices having capability `cap` (as virNodeNumOfDevices; NULL:
/// every device), computer first, PCI functions in address order, then the
/// interfaces, at most `maxnames` of them.
///
/// `names` is a caller-owned array of at least `maxnames` pointers; each
/// name stored in it is allocated with malloc() and freed by the caller with
/// free(). `flags` must be 0. Returns the number of names stored, or -1 on
/// error (nothing stored): VIR_ERR_INVALID_CONN, VIR_ERR_INVALID_ARG (`names`
/// NULL, `maxnames` negative, non-zero flags), VIR_ERR_OPERATION_FAILED,
/// VIR_ERR_NO_MEMORY.
#[no_mangle]
pub unsafe extern "C" fn virNodeListDevices(
    conn: virConnectPtr,
    cap: *const c_char,
    names: *mut *mut c_char,
    maxnames: c_int,
    flags: c_uint,
) -> c_int {
    api("virNodeListDevices", DOMAIN, -1, |call| {
        let c = conn_arg(call, conn)?;
        let max = call.names_arg(names, maxnames)?;
        call.check_flags(flags, 0)?;
        let Ok(cap) = call.opt_str("cap", cap) else {
            return Ok(0); // no capability has such a name
        };
        let items: Vec<String> = devices_with_cap(&c, cap)?.into_iter().take(max).map(|n| n.name()).collect();
        call.store_names(names, &items)
    })
}

/// Look up a device by name: `computer`, `net_IFNAME_MAC`, `mdev_UUID_PARENT`, libvirt's
/// `pci_0000_03_00_1` or the kernel's `0000:03:00.1` (either way the
/// handle's name is libvirt's form). `name` is only read during the call.
///
/// Returns a new handle, freed by the caller with virNodeDeviceFree(), or
/// NULL on error: VIR_ERR_INVALID_CONN, VIR_ERR_INVALID_ARG (`name` NULL),
/// VIR_ERR_NO_NODE_DEVICE (no such device, whatever the name's shape:
/// "computer", "net_eth0_...", "" and malformed names included, as libvirt).
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceLookupByName(conn: virConnectPtr, name: *const c_char) -> virNodeDevicePtr {
    api("virNodeDeviceLookupByName", DOMAIN, ptr::null_mut(), |call| {
        let c = conn_arg(call, conn)?;
        if name.is_null() {
            return Err(call.invalid_arg("name must not be NULL"));
        }
        let name = std::ffi::CStr::from_ptr(name).to_string_lossy();
        // libvirt: whatever its shape, a name that is no device is
        // VIR_ERR_NO_NODE_DEVICE (clients test for it to mean "not there").
        // A PCI name: the handle's readlink (new_device) checks that the
        // device exists; other names are looked up in the tree.
        let node = match crate::host::pci_by_name(&name) {
            Some(addr) => Ok(Node::Pci(addr)),
            None => c.host.lookup_node(&name),
        };
        let node = node.map_err(|e| match e {
            crate::Error::InvalidArg(m) => Raised::new(
                virErrorNumber::VIR_ERR_NO_NODE_DEVICE,
                call.domain,
                format!("no node device with matching name '{name}': {m}"),
            ),
            e => Raised::from(e),
        })?;
        Ok(handle::into_raw(new_device(call, &c, node)?))
    })
}

/// The device's name, libvirt's form (`pci_0000_03_00_1`).
///
/// The string belongs to the handle: do not free it; it stays valid until
/// the handle's last reference is released. NULL on error:
/// VIR_ERR_INVALID_NODE_DEVICE.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceGetName(dev: virNodeDevicePtr) -> *const c_char {
    api("virNodeDeviceGetName", DOMAIN, ptr::null(), |call| {
        dev_arg(call, dev)?;
        Ok((*dev).name.as_ptr())
    })
}

/// The name of the device's parent: the upstream bridge
/// (`pci_0000_00_1c_0`), "computer" for a device on a root bus, the PCI
/// function for an interface.
///
/// The string belongs to the handle: do not free it; it stays valid until
/// the handle's last reference is released. NULL on error:
/// VIR_ERR_INVALID_NODE_DEVICE, VIR_ERR_INTERNAL_ERROR for computer (it has
/// no parent, as libvirt says).
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceGetParent(dev: virNodeDevicePtr) -> *const c_char {
    api("virNodeDeviceGetParent", DOMAIN, ptr::null(), |call| {
        dev_arg(call, dev)?;
        match &(*dev).parent {
            Some(p) => Ok(p.as_ptr()),
            None => Err(Raised::new(
                virErrorNumber::VIR_ERR_INTERNAL_ERROR,
                call.domain,
                format!("{}: no parent for this device (computer is the root)", call.func),
            )),
        }
    })
}

/// The device's description in libvirt's node-device XML (valid against
/// libvirt's nodedev.rng). A PCI function: name, sysfs path, parent, the
/// driver bound now (element absent when none), and `<capability
/// type='pci'>` with class, address, ids, SR-IOV functions, bridge type,
/// VPD, `<iommuGroup>`, NUMA node and `<pci-express>` link. computer:
/// `<capability type='system'>` with the DMI strings readable (serial
/// numbers and UUID need root). An interface: `<capability type='net'>`
/// with its name, MAC, link state and speed, and offload features.
///
/// `flags` must be 0. Returns a string the caller frees with free(), or NULL
/// on error: VIR_ERR_INVALID_NODE_DEVICE, VIR_ERR_INVALID_ARG (non-zero
/// flags), VIR_ERR_NO_NODE_DEVICE (the device has gone), VIR_ERR_NO_MEMORY.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceGetXMLDesc(dev: virNodeDevicePtr, flags: c_uint) -> *mut c_char {
    api("virNodeDeviceGetXMLDesc", DOMAIN, ptr::null_mut(), |call| {
        let d = dev_arg(call, dev)?;
        call.check_flags(flags, 0)?;
        let xml = match &d.node {
            Node::Pci(a) => d.conn.host.xml_placed(a, &d.placement)?,
            other => d.conn.host.node_xml(other)?,
        };
        call.dup(&xml)
    })
}

/// The number of capabilities of the device (as virNodeDeviceListCaps
/// names them), or -1 with VIR_ERR_INVALID_NODE_DEVICE,
/// VIR_ERR_NO_NODE_DEVICE (the device has gone).
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceNumOfCaps(dev: virNodeDevicePtr) -> c_int {
    api("virNodeDeviceNumOfCaps", DOMAIN, -1, |call| {
        let d = dev_arg(call, dev)?;
        Ok(d.conn.host.node_caps(&d.node)?.len() as c_int)
    })
}

/// The device's capability names, at most `maxnames` of them: "system"
/// (computer), "pci" then "vpd" when it has VPD (a PCI function), "net" (an
/// interface).
///
/// `names` is a caller-owned array of at least `maxnames` pointers; each
/// name stored in it is allocated with malloc() and freed by the caller with
/// free(). Returns the number of names stored, or -1 on error (nothing
/// stored): VIR_ERR_INVALID_NODE_DEVICE, VIR_ERR_INVALID_ARG (`names` NULL,
/// `maxnames` negative), VIR_ERR_NO_NODE_DEVICE (the device has gone),
/// VIR_ERR_NO_MEMORY.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceListCaps(
    dev: virNodeDevicePtr,
    names: *mut *mut c_char,
    maxnames: c_int,
) -> c_int {
    api("virNodeDeviceListCaps", DOMAIN, -1, |call| {
        let d = dev_arg(call, dev)?;
        let max = call.names_arg(names, maxnames)?;
        let caps: Vec<&str> = d.conn.host.node_caps(&d.node)?.into_iter().take(max).collect();
        call.store_names(names, &caps)
    })
}

/// Add a reference to `dev`, released by one more virNodeDeviceFree().
/// Returns 0, or -1 with VIR_ERR_INVALID_NODE_DEVICE.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceRef(dev: virNodeDevicePtr) -> c_int {
    api("virNodeDeviceRef", DOMAIN, -1, |call| handle::add_ref(call, dev))
}

/// Release one reference to `dev` (from a lookup, a list or
/// virNodeDeviceRef). After the last one the handle, its name and parent
/// strings are gone, and the connection reference it held is released.
/// The device itself is not changed. Returns 0, or -1 with
/// VIR_ERR_INVALID_NODE_DEVICE.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceFree(dev: virNodeDevicePtr) -> c_int {
    api("virNodeDeviceFree", DOMAIN, -1, |call| handle::release(call, dev).map(|_| 0))
}

/// nodedev's own flags for virNodeDeviceDetachFlags and virNodeDevicePrepare.
/// They start at bit 16, so they never mean something else than flags
/// libvirt may define for these calls later (from bit 0).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virNodeDeviceNodedevFlags {
    /// virNodeDeviceDetachFlags: detach every endpoint of the device's IOMMU
    /// group (bridges stay), all or nothing.
    VIR_NODE_DEVICE_DETACH_GROUP = 1 << 16,
    /// virNodeDeviceDetachFlags, virNodeDevicePrepare: take the device even
    /// though the host uses it (boot VGA, a mounted disk, a configured
    /// network interface that is up). virNodeDeviceSetVFs: remove VFs even
    /// when assigned or detached from a host driver.
    VIR_NODE_DEVICE_FORCE = 1 << 17,
    /// virNodeDevicePrepare: managed devices, moved to the stub (and back
    /// at release); without it nothing is moved, only verified.
    VIR_NODE_DEVICE_PREPARE_MANAGED = 1 << 18,
    /// virNodeDeviceDetachFlags, virNodeDevicePrepare: also keep the device
    /// on its stub from boot on (a definition in /etc/nodedev/persistent,
    /// applied by nodedev's udev rule and `nodedev apply`; see
    /// virNodeDeviceSetAutostart). virNodeDeviceReAttachFlags: remove the
    /// definition too (before the device is given back).
    VIR_NODE_DEVICE_PERSISTENT = 1 << 19,
}

pub(crate) const fn nflag(f: virNodeDeviceNodedevFlags) -> c_uint {
    f as c_uint
}

/// The stub for a `driverName` argument, errors prefixed with the function name.
pub(crate) unsafe fn stub_arg(call: &Call, driver: *const c_char) -> Result<StubRequest, Raised> {
    let driver = call.opt_str("driverName", driver)?;
    Ok(StubRequest::parse(driver).map_err(|e| e.context(format_args!("{}: driverName", call.func)))?)
}

fn detach(call: &mut Call, dev: virNodeDevicePtr, driver: *const c_char, flags: c_uint) -> Result<c_int, Raised> {
    use virNodeDeviceNodedevFlags::*;
    // libvirt's order: handle, read-only, flags, the device, the driver name.
    let d = unsafe { dev_arg(call, dev)? };
    writable(call, &d.conn)?;
    call.check_flags(
        flags,
        nflag(VIR_NODE_DEVICE_DETACH_GROUP) | nflag(VIR_NODE_DEVICE_FORCE) | nflag(VIR_NODE_DEVICE_PERSISTENT),
    )?;
    d.conn.host.require_node(&d.node)?;
    let addr = d.pci(call)?;
    let req = unsafe { stub_arg(call, driver)? };
    let stub = req.stub;
    let opts = DetachOptions {
        group: flags & nflag(VIR_NODE_DEVICE_DETACH_GROUP) != 0,
        force: flags & nflag(VIR_NODE_DEVICE_FORCE) != 0,
    };
    let host = &d.conn.host;
    if flags & nflag(VIR_NODE_DEVICE_PERSISTENT) != 0 {
        host.check_definable()?; // before anything moves
    }
    // No IOMMU for vfio: libvirt says VIR_ERR_ARGUMENT_UNSUPPORTED.
    host.detach_request(&addr, &req, opts)
        .map_err(|e| with_unsupported_as(e, virErrorNumber::VIR_ERR_ARGUMENT_UNSUPPORTED))?;
    if flags & nflag(VIR_NODE_DEVICE_PERSISTENT) != 0 {
        let moved = if opts.group { host.group_endpoints(&addr, stub)? } else { vec![addr] };
        moved.iter().try_for_each(|m| host.define(m))?;
    }
    Ok(0)
}

fn reattach(call: &mut Call, dev: virNodeDevicePtr, driver: *const c_char, flags: c_uint) -> Result<c_int, Raised> {
    let d = unsafe { dev_arg(call, dev)? };
    writable(call, &d.conn)?;
    call.check_flags(flags, nflag(virNodeDeviceNodedevFlags::VIR_NODE_DEVICE_PERSISTENT))?;
    d.conn.host.require_node(&d.node)?;
    let addr = d.pci(call)?;
    let driver = unsafe { call.opt_str("driverName", driver)? };
    if flags != 0 {
        d.conn.host.undefine(&addr)?;
    }
    d.conn.host.reattach(&addr, driver)?;
    Ok(0)
}

/// Same as virNodeDeviceDetachFlags(dev, NULL, 0): detach to vfio-pci, with
/// its checks, errors and refusals. (libvirt's historical spelling, kept for
/// compatibility.)
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceDettach(dev: virNodeDevicePtr) -> c_int {
    api("virNodeDeviceDettach", DOMAIN, -1, |call| detach(call, dev, ptr::null(), 0))
}

/// Detach the device from its host driver and bind it to a stub driver.
///
/// `driverName` is libvirt's abstract name: NULL or "vfio", "kvm"
/// (pci-stub), "xen" (xen-pciback); kernel module names such as "vfio-pci"
/// are refused. "vfio" picks the device's VFIO driver as libvirt 10 does:
/// the device's modalias is matched field by field against every
/// `alias vfio_pci:...` line of the kernel's modules.alias (a field matches
/// when it is `*` or equal); the matching line with the fewest `*` wins
/// (the first on a tie) and its module's driver is used, a VFIO variant
/// driver such as mlx5_vfio_pci (needed for live migration), else vfio-pci.
/// nodedev extension: "vfio:NAME" names the VFIO driver (a module name,
/// '-' and '_' alike: "vfio:mlx5_vfio_pci", "vfio:vfio-pci" for plain
/// vfio-pci whatever modules.alias says); NAME must be vfio-pci or a module
/// with modules.alias `vfio_pci:` entries that match the device, otherwise
/// VIR_ERR_INVALID_ARG names what was given and the device's candidates,
/// before anything changes. `nodedev show DEV --json` shows the candidates
/// and the choice. The driver's module is loaded when needed (unless the
/// URI says modprobe=0: then a variant driver that is not loaded is
/// VIR_ERR_OPERATION_FAILED, naming it and "vfio:vfio-pci"). The original
/// driver (or none) and the VFIO driver used are recorded for reattach. A
/// device already on that stub (for "vfio": on any VFIO driver; for
/// "vfio:NAME": on that one, another VFIO driver is VIR_ERR_OPERATION_INVALID)
/// is left as it is (success). `driverName` is only read during the call.
///
/// `flags`: 0 or a combination of VIR_NODE_DEVICE_DETACH_GROUP (every
/// endpoint of the IOMMU group, all or nothing; without it a vfio detach of
/// one endpoint succeeds but leaves its group unusable while other
/// endpoints stay on host drivers) and VIR_NODE_DEVICE_FORCE (detach even a
/// device the host uses: boot VGA, mounted disk, configured interface that
/// is up; without it such a device is refused with VIR_ERR_OPERATION_INVALID).
///
/// Checks in libvirt's order: the handle (VIR_ERR_INVALID_NODE_DEVICE), a
/// read-only connection (VIR_ERR_OPERATION_DENIED), flags
/// (VIR_ERR_INVALID_ARG), the device still there (VIR_ERR_NO_NODE_DEVICE),
/// `driverName` (VIR_ERR_INVALID_ARG, the message lists the accepted names),
/// then the host.
///
/// Returns 0, or -1 on error: those, and VIR_ERR_OPERATION_DENIED
/// (locked-down host, policy deny/allow rules, the authorization callback),
/// VIR_ERR_OPERATION_INVALID (assigned to a guest, as libvirt; and nodedev's
/// stricter refusals below), VIR_ERR_ARGUMENT_UNSUPPORTED (vfio on a host
/// without an IOMMU group for the device, as libvirt),
/// VIR_ERR_OPERATION_FAILED (the kernel refused; the device is put back on
/// its original driver and the message says so), VIR_ERR_SYSTEM_ERROR
/// (state records).
///
/// Stricter than libvirt (VIR_ERR_OPERATION_INVALID where libvirt proceeds):
/// a device the host uses (boot VGA, mounted disk, configured interface that
/// is up): VIR_NODE_DEVICE_FORCE gives libvirt's behaviour; a device on
/// another stub already (libvirt rebinds it) and a bridge to vfio: no flag
/// gives libvirt's behaviour (reattach first; bridges cannot be assigned).
/// Policy and lockdown refusals are configuration, not flags. Looser:
/// "kvm" and "xen" are accepted (libvirt's QEMU driver refuses them).
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceDetachFlags(
    dev: virNodeDevicePtr,
    driverName: *const c_char,
    flags: c_uint,
) -> c_int {
    api("virNodeDeviceDetachFlags", DOMAIN, -1, |call| detach(call, dev, driverName, flags))
}

/// Same as virNodeDeviceReAttachFlags(dev, NULL, 0): give the device back to
/// the driver it had before detach (none if it had none).
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceReAttach(dev: virNodeDevicePtr) -> c_int {
    api("virNodeDeviceReAttach", DOMAIN, -1, |call| reattach(call, dev, ptr::null(), 0))
}

/// nodedev extension: give a detached device back to a host driver.
///
/// `driverName` NULL: the driver recorded at detach (a device that had no
/// driver stays without one; without a record, whatever the kernel probes);
/// otherwise the name of a host kernel driver (e.g. "e1000e"; letters,
/// digits, '-' and '_'; not a stub driver). A named driver that is not
/// loaded is loaded only when a module of that name claims the device in
/// the kernel's modules.alias (and the connection may load modules);
/// anything else is refused with VIR_ERR_INVALID_ARG naming the modules that
/// do claim it, before anything changes. `flags` must be 0. `driverName` is
/// only read during the call.
///
/// Idempotent as libvirt's reattach: a device already on a host driver and
/// never detached (or on the driver named) is left as it is and 0 returned;
/// a device on no driver and never detached is probed by the kernel.
///
/// Checks in libvirt's order (as virNodeDeviceReAttach): the handle, a
/// read-only connection, flags, the device still there, then `driverName`.
///
/// Returns 0, or -1 on error: VIR_ERR_INVALID_NODE_DEVICE, VIR_ERR_INVALID_ARG
/// (malformed or stub `driverName`, a driver no module provides for the
/// device, non-zero flags), VIR_ERR_OPERATION_DENIED (read-only connection,
/// lockdown, the authorization callback), VIR_ERR_OPERATION_INVALID (on a
/// host driver other than the one named or recorded; assigned to a guest),
/// VIR_ERR_OPERATION_FAILED (the driver did not take it; the device stays on
/// its stub), VIR_ERR_NO_NODE_DEVICE, VIR_ERR_SYSTEM_ERROR.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceReAttachFlags(
    dev: virNodeDevicePtr,
    driverName: *const c_char,
    flags: c_uint,
) -> c_int {
    api("virNodeDeviceReAttachFlags", DOMAIN, -1, |call| reattach(call, dev, driverName, flags))
}

/// Reset the device (function-level, power-management or bus reset, as the
/// kernel can). Allowed only while the device is on a stub driver or on no
/// driver.
///
/// Checks in libvirt's order: the handle (VIR_ERR_INVALID_NODE_DEVICE), a
/// read-only connection (VIR_ERR_OPERATION_DENIED), the device still there
/// (VIR_ERR_NO_NODE_DEVICE).
///
/// Returns 0, or -1 on error: those, VIR_ERR_OPERATION_DENIED (lockdown, the
/// authorization callback), VIR_ERR_OPERATION_INVALID (assigned to a guest,
/// as libvirt; a host driver owns the device: detach it first),
/// VIR_ERR_INTERNAL_ERROR (the kernel has no reset method for it, as
/// libvirt's "no FLR, PM reset or bus reset available"),
/// VIR_ERR_OPERATION_FAILED.
///
/// Stricter than libvirt, which resets a device under its host driver: no
/// flag gives libvirt's behaviour (this call has no flags); detach the
/// device first. On vfio-pci libvirt skips the reset and returns 0 (vfio
/// resets on open); nodedev resets it.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceReset(dev: virNodeDevicePtr) -> c_int {
    api("virNodeDeviceReset", DOMAIN, -1, |call| {
        let d = dev_arg(call, dev)?;
        writable(call, &d.conn)?;
        d.conn.host.require_node(&d.node)?;
        let addr = d.pci(call)?;
        // No reset method: libvirt's virPCIDeviceReset says VIR_ERR_INTERNAL_ERROR.
        d.conn.host.reset(&addr).map_err(|e| with_unsupported_as(e, virErrorNumber::VIR_ERR_INTERNAL_ERROR))?;
        Ok(0)
    })
}

exports!(
    virConnectListAllNodeDevices,
    virNodeNumOfDevices,
    virNodeListDevices,
    virNodeDeviceLookupByName,
    virNodeDeviceGetName,
    virNodeDeviceGetParent,
    virNodeDeviceGetXMLDesc,
    virNodeDeviceNumOfCaps,
    virNodeDeviceListCaps,
    virNodeDeviceRef,
    virNodeDeviceFree,
    virNodeDeviceDettach,
    virNodeDeviceDetachFlags,
    virNodeDeviceReAttach,
    virNodeDeviceReAttachFlags,
    virNodeDeviceReset,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capi::connect::{virConnectClose, virConnectOpen};
    use std::ffi::CStr;

    unsafe fn open() -> virConnectPtr {
        let conn = virConnectOpen(c"test:///default".as_ptr());
        assert!(!conn.is_null());
        conn
    }

    #[test]
    fn listed_handles_and_names_are_released_by_their_owner() {
        unsafe {
            let conn = open();
            let mut devs: *mut virNodeDevicePtr = ptr::null_mut();
            let n = virConnectListAllNodeDevices(conn, &mut devs, 0);
            assert!(n > 0);
            assert!((*devs.add(n as usize)).is_null(), "the array ends with NULL");
            let mut names = vec![ptr::null_mut::<c_char>(); n as usize];
            assert_eq!(virNodeListDevices(conn, ptr::null(), names.as_mut_ptr(), n, 0), n);
            for (i, name) in names.iter().enumerate() {
                let dev = *devs.add(i);
                assert_eq!(CStr::from_ptr(virNodeDeviceGetName(dev)), CStr::from_ptr(*name));
                // The tree's first capability by the kind of device; a PCI
                // function may have "vpd" as well.
                let kind = match CStr::from_ptr(*name).to_str().unwrap() {
                    "computer" => "system",
                    n if n.starts_with("net_") => "net",
                    _ => "pci",
                };
                let mut caps = [ptr::null_mut::<c_char>(); 3];
                let k = virNodeDeviceListCaps(dev, caps.as_mut_ptr(), 3);
                assert!(k == 1 || (kind == "pci" && k == 2), "{kind}: {k} capabilities");
                assert_eq!(CStr::from_ptr(caps[0]).to_str(), Ok(kind));
                for cap in &caps[..k as usize] {
                    libc::free(cap.cast());
                }
                libc::free(name.cast());
                assert_eq!(virNodeDeviceRef(dev), 0);
                assert_eq!(virNodeDeviceFree(dev), 0);
                assert_eq!(virNodeDeviceFree(dev), 0);
            }
            libc::free(devs.cast());
            // Every device handle has gone: this is the last reference.
            assert_eq!(virConnectClose(conn), 0);
        }
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "a detach stamps its state record with the wall clock (clock_gettime REALTIME), which Miri's isolation refuses"
    )]
    fn a_detach_and_reattach_round_trip() {
        let driver = |dev: virNodeDevicePtr| unsafe {
            let xml = virNodeDeviceGetXMLDesc(dev, 0);
            assert!(!xml.is_null());
            let text = CStr::from_ptr(xml).to_string_lossy().into_owned();
            libc::free(xml.cast());
            text.split("<driver>")
                .nth(1)
                .and_then(|d| d.split("<name>").nth(1))
                .map(|d| d.split('<').next().unwrap().to_string())
        };
        unsafe {
            let conn = open();
            // No other test of this process moves 03:02.0 on the shared simulated host.
            let dev = virNodeDeviceLookupByName(conn, c"pci_0000_03_02_0".as_ptr());
            assert!(!dev.is_null());
            let before = driver(dev);
            assert_eq!(virNodeDeviceDetachFlags(dev, c"kvm".as_ptr(), 0), 0);
            assert_eq!(driver(dev).as_deref(), Some("pci-stub"));
            assert_eq!(virNodeDeviceReAttach(dev), 0);
            assert_eq!(driver(dev), before);
            assert_eq!(virNodeDeviceFree(dev), 0);
            assert_eq!(virConnectClose(conn), 0);
        }
    }
}
