//! Node device handles and calls. A `virNodeDevice` is an `Arc` holding its
//! connection, the PCI address and the two strings handed out by reference
//! (name and parent), created with `Arc::into_raw`; virNodeDeviceRef adds a
//! reference, virNodeDeviceFree drops one.
//!
//! Device names: lookups accept libvirt's `pci_0000_03_00_1` and the kernel's
//! `0000:03:00.1`; handles are always named the libvirt way. A handle is a
//! PCI function (capability "pci", and "mdev_types" for an mdev parent) or
//! a mediated device (`mdev_UUID_PARENT`, capability "mdev"; see
//! capi/mdev.rs), which the PCI-only calls refuse.

use super::boundary::{api, Call, Raised};
pub(crate) use super::connect::writable;
use super::connect::{conn_arg, virConnect, virConnectPtr};
use super::handle::{self, Handle, Tag};
use super::last_error::ErrorTarget;
pub(crate) use super::raised::with_unsupported_as;
use super::virterror::{virErrorDomain, virErrorNumber};
use crate::address::PciAddress;
use crate::host::DetachOptions;
use crate::stub::Stub;
use std::ffi::{c_char, c_int, c_uint, CString};
use std::ptr;
use std::sync::Arc;

const DEV_MAGIC: u64 = 0x6e6f_6465_6465_7669; // "nodedevi"
const DOMAIN: virErrorDomain = virErrorDomain::VIR_FROM_NODEDEV;

/// A host device (opaque): a PCI function or a mediated device. Thread-safe. Holds a
/// reference to its connection.
pub struct virNodeDevice {
    magic: Tag,
    pub(crate) conn: Arc<virConnect>,
    /// The PCI function, or for a mediated device its parent.
    pub(crate) addr: PciAddress,
    /// A mediated device (see capi/mdev.rs); None: the PCI function `addr`.
    pub(crate) mdev: Option<crate::host::MdevId>,
    name: CString,
    parent: CString,
    /// The `bus/pci/devices/ADDR` link's target, read when the handle was
    /// made: the XML's path and parent come from it without another readlink.
    placement: String,
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
/// select devices having any of the given capabilities (none: every device);
/// nodedev's devices are PCI functions and mediated devices, so only
/// VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV, _CAP_MDEV_TYPES and _CAP_MDEV
/// select any. PCI functions and live mediated devices are active, defined
/// ones not started are inactive.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virConnectListAllNodeDeviceFlags {
    /// System capability: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_SYSTEM = 1,
    /// PCI device: matches every PCI function.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV = 1 << 1,
    /// USB device: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_USB_DEV = 1 << 2,
    /// USB interface: matches no nodedev device.
    VIR_CONNECT_LIST_NODE_DEVICES_CAP_USB_INTERFACE = 1 << 3,
    /// Network interface: matches no nodedev device.
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
    /// Device with VPD: matches no nodedev device.
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

fn new_device(call: &Call, conn: &Arc<virConnect>, addr: PciAddress) -> Result<Arc<virNodeDevice>, Raised> {
    let placement = conn.host.placement_link(&addr)?;
    let parent = crate::host::parent_name_of(&addr, &placement);
    let cstring = |s: String| CString::new(s).map_err(|_| call.invalid_arg("device name contains a NUL byte"));
    Ok(Arc::new(virNodeDevice {
        magic: Tag::new(DEV_MAGIC),
        conn: conn.clone(),
        addr,
        mdev: None,
        name: cstring(addr.node_name())?,
        parent: cstring(parent)?,
        placement,
    }))
}

/// A handle for a mediated device (live or defined).
pub(crate) fn new_mdev_device(
    call: &Call,
    conn: &Arc<virConnect>,
    id: crate::host::MdevId,
) -> Result<Arc<virNodeDevice>, Raised> {
    let cstring = |s: String| CString::new(s).map_err(|_| call.invalid_arg("device name contains a NUL byte"));
    Ok(Arc::new(virNodeDevice {
        magic: Tag::new(DEV_MAGIC),
        conn: conn.clone(),
        addr: id.parent,
        name: cstring(id.node_name())?,
        parent: cstring(id.parent.node_name())?,
        mdev: Some(id),
        // No PCI placement: an mdev's XML is made from its own sysfs entry.
        placement: String::new(),
    }))
}

/// Refuse a PCI-only call on a mediated device's handle, as libvirt does
/// for a device without a PCI capability: VIR_ERR_INVALID_ARG.
pub(crate) fn pci_only(call: &Call, d: &virNodeDevice) -> Result<(), Raised> {
    match &d.mdev {
        Some(id) => Err(call.invalid_arg(format_args!("device {} is not a PCI device", id.node_name()))),
        None => Ok(()),
    }
}

/// Names of the devices having capability `cap` (None: any), PCI
/// functions in address order then mediated devices (live and defined, as
/// libvirt counts them).
fn devices_with_cap(conn: &virConnect, cap: Option<&str>) -> Result<Vec<String>, Raised> {
    let host = &conn.host;
    let pci = || -> Result<Vec<String>, Raised> { Ok(host.list()?.iter().map(PciAddress::node_name).collect()) };
    let mdevs = || -> Result<Vec<String>, Raised> { Ok(host.mdevs()?.iter().map(|m| m.id.node_name()).collect()) };
    match cap {
        None => Ok([pci()?, mdevs()?].concat()),
        Some("pci") => pci(),
        Some("mdev") => mdevs(),
        Some("mdev_types") => Ok(host.mdev_parents().iter().map(PciAddress::node_name).collect()),
        Some(_) => Ok(Vec::new()),
    }
}

/// VIR_ERR_NO_MEMORY for `call` (kept where code has found it: see [`Call::no_memory`]).
#[allow(dead_code)]
pub(crate) fn no_memory(call: &Call) -> Raised {
    call.no_memory()
}

/// All devices of `conn` matching `flags`, as new handles.
///
/// `flags`: 0 (every device), or capability bits of
/// `virConnectListAllNodeDeviceFlags` (devices having any of them; only
/// _CAP_PCI_DEV, _CAP_MDEV_TYPES and _CAP_MDEV match anything here), possibly
/// with VIR_CONNECT_LIST_NODE_DEVICES_ACTIVE (PCI functions and live mediated
/// devices) and/or VIR_CONNECT_LIST_NODE_DEVICES_INACTIVE (mediated devices
/// defined but not live). PCI functions come first, in address order, then
/// mediated devices. Bits outside libvirt's defined set: VIR_ERR_INVALID_ARG.
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
        let cap = |f: F| caps & bit(f) != 0;
        let state_ok =
            |active: bool| states == 0 || (states & ACTIVE != 0 && active) || (states & INACTIVE != 0 && !active);
        let mut addrs = Vec::new();
        if state_ok(true) {
            let all_pci = caps == 0 || cap(F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV);
            if all_pci {
                addrs = c.host.list()?;
            } else if cap(F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV_TYPES) {
                addrs = c.host.mdev_parents();
            }
        }
        let mut mdevs = Vec::new();
        if caps == 0 || cap(F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV) {
            mdevs = c.host.mdevs()?.into_iter().filter(|m| state_ok(m.active)).map(|m| m.id).collect();
        }
        let count = c_int::try_from(addrs.len() + mdevs.len()).map_err(|_| call.no_memory())?;
        if devices.is_null() {
            return Ok(count);
        }
        let mut handles = addrs.into_iter().map(|a| new_device(call, &c, a)).collect::<Result<Vec<_>, _>>()?;
        for id in mdevs {
            handles.push(new_mdev_device(call, &c, id)?);
        }
        // The array first: once it exists, filling it cannot fail.
        let array = call.terminated_array::<virNodeDevicePtr>(handles.len())?;
        for (i, h) in handles.into_iter().enumerate() {
            *array.add(i) = handle::into_raw(h);
        }
        *devices = array;
        Ok(count)
    })
}

/// The number of devices having capability `cap` ("pci", or NULL for any;
/// any other capability name gives 0).
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

/// The names (libvirt form, `pci_0000_03_00_1`) of the devices having
/// capability `cap` ("pci", or NULL for any; other names: none), in address
/// order, at most `maxnames` of them.
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
        let items: Vec<String> = devices_with_cap(&c, cap)?.into_iter().take(max).collect();
        call.store_names(names, &items)
    })
}

/// Look up a device by name: libvirt's `pci_0000_03_00_1` or the kernel's
/// `0000:03:00.1` (either way the handle's name is libvirt's form). `name`
/// is only read during the call.
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
        if let Some(id) = crate::host::MdevId::from_node_name(&name) {
            c.host.mdev(&id)?;
            return Ok(handle::into_raw(new_mdev_device(call, &c, id)?));
        }
        // libvirt: whatever its shape, a name that is no device is
        // VIR_ERR_NO_NODE_DEVICE (clients test for it to mean "not there").
        // The handle's readlink (new_device) checks that the device exists.
        let addr = crate::address::PciAddress::parse(&name).map_err(|e| match e {
            crate::Error::InvalidArg(m) => Raised::new(
                virErrorNumber::VIR_ERR_NO_NODE_DEVICE,
                call.domain,
                format!("no node device with matching name '{name}': {m}"),
            ),
            e => Raised::from(e),
        })?;
        Ok(handle::into_raw(new_device(call, &c, addr)?))
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
/// (`pci_0000_00_1c_0`), or "computer" for a device on a root bus.
///
/// The string belongs to the handle: do not free it; it stays valid until
/// the handle's last reference is released. NULL on error:
/// VIR_ERR_INVALID_NODE_DEVICE.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceGetParent(dev: virNodeDevicePtr) -> *const c_char {
    api("virNodeDeviceGetParent", DOMAIN, ptr::null(), |call| {
        dev_arg(call, dev)?;
        Ok((*dev).parent.as_ptr())
    })
}

/// The device's description in libvirt's node-device XML: name, sysfs path,
/// parent, the driver bound now (element absent when none), and
/// `<capability type='pci'>` with class, address, ids, SR-IOV functions,
/// `<iommuGroup>` and NUMA node.
///
/// `flags` must be 0. Returns a string the caller frees with free(), or NULL
/// on error: VIR_ERR_INVALID_NODE_DEVICE, VIR_ERR_INVALID_ARG (non-zero
/// flags), VIR_ERR_NO_NODE_DEVICE (the device has gone), VIR_ERR_NO_MEMORY.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceGetXMLDesc(dev: virNodeDevicePtr, flags: c_uint) -> *mut c_char {
    api("virNodeDeviceGetXMLDesc", DOMAIN, ptr::null_mut(), |call| {
        let d = dev_arg(call, dev)?;
        call.check_flags(flags, 0)?;
        let xml = match &d.mdev {
            Some(id) => d.conn.host.mdev_xml(id)?,
            None => d.conn.host.xml_placed(&d.addr, &d.placement)?,
        };
        call.dup(&xml)
    })
}

/// The number of capabilities of the device: 1 ("pci"), or -1 with
/// VIR_ERR_INVALID_NODE_DEVICE, VIR_ERR_NO_NODE_DEVICE (the device has gone).
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceNumOfCaps(dev: virNodeDevicePtr) -> c_int {
    api("virNodeDeviceNumOfCaps", DOMAIN, -1, |call| {
        let d = dev_arg(call, dev)?;
        Ok(device_caps(&d)?.len() as c_int)
    })
}

/// The device's capability names ("pci"), at most `maxnames` of them.
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
        let caps: Vec<String> = device_caps(&d)?.into_iter().take(max).collect();
        call.store_names(names, &caps)
    })
}

/// The device's capability names: "pci" (and "mdev_types" for an mdev
/// parent), or "mdev".
fn device_caps(d: &virNodeDevice) -> Result<Vec<String>, Raised> {
    if let Some(id) = &d.mdev {
        d.conn.host.mdev(id)?;
        return Ok(vec!["mdev".into()]);
    }
    d.conn.host.require(&d.addr)?;
    let mut caps = vec!["pci".to_string()];
    if d.conn.host.sysfs().exists(&format!("bus/pci/devices/{}/mdev_supported_types", d.addr)) {
        caps.push("mdev_types".into());
    }
    Ok(caps)
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
pub(crate) unsafe fn stub_arg(call: &Call, driver: *const c_char) -> Result<Stub, Raised> {
    let driver = call.opt_str("driverName", driver)?;
    Ok(Stub::from_name(driver).map_err(|e| e.context(format_args!("{}: driverName", call.func)))?)
}

fn detach(call: &mut Call, dev: virNodeDevicePtr, driver: *const c_char, flags: c_uint) -> Result<c_int, Raised> {
    use virNodeDeviceNodedevFlags::*;
    // libvirt's order: handle, read-only, flags, the device, the driver name.
    let d = unsafe { dev_arg(call, dev)? };
    writable(call, &d.conn)?;
    pci_only(call, &d)?;
    call.check_flags(
        flags,
        nflag(VIR_NODE_DEVICE_DETACH_GROUP) | nflag(VIR_NODE_DEVICE_FORCE) | nflag(VIR_NODE_DEVICE_PERSISTENT),
    )?;
    d.conn.host.require(&d.addr)?;
    let stub = unsafe { stub_arg(call, driver)? };
    let opts = DetachOptions {
        group: flags & nflag(VIR_NODE_DEVICE_DETACH_GROUP) != 0,
        force: flags & nflag(VIR_NODE_DEVICE_FORCE) != 0,
    };
    let host = &d.conn.host;
    // No IOMMU for vfio: libvirt says VIR_ERR_ARGUMENT_UNSUPPORTED.
    host.detach_with(&d.addr, stub, opts)
        .map_err(|e| with_unsupported_as(e, virErrorNumber::VIR_ERR_ARGUMENT_UNSUPPORTED))?;
    if flags & nflag(VIR_NODE_DEVICE_PERSISTENT) != 0 {
        let moved = if opts.group { host.group_endpoints(&d.addr, stub)? } else { vec![d.addr] };
        moved.iter().try_for_each(|m| host.define(m))?;
    }
    Ok(0)
}

fn reattach(call: &mut Call, dev: virNodeDevicePtr, driver: *const c_char, flags: c_uint) -> Result<c_int, Raised> {
    let d = unsafe { dev_arg(call, dev)? };
    writable(call, &d.conn)?;
    pci_only(call, &d)?;
    call.check_flags(flags, nflag(virNodeDeviceNodedevFlags::VIR_NODE_DEVICE_PERSISTENT))?;
    d.conn.host.require(&d.addr)?;
    let driver = unsafe { call.opt_str("driverName", driver)? };
    if flags != 0 {
        d.conn.host.undefine(&d.addr)?;
    }
    d.conn.host.reattach(&d.addr, driver)?;
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
/// `driverName` is libvirt's abstract name: NULL or "vfio" (vfio-pci), "kvm"
/// (pci-stub), "xen" (xen-pciback); kernel module names such as "vfio-pci"
/// are refused. The stub's module is loaded when needed (unless the URI
/// says modprobe=0). The original driver (or none) is recorded for
/// reattach. A device already on that stub is left as it is (success).
/// `driverName` is only read during the call.
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
        pci_only(call, &d)?;
        d.conn.host.require(&d.addr)?;
        // No reset method: libvirt's virPCIDeviceReset says VIR_ERR_INTERNAL_ERROR.
        d.conn.host.reset(&d.addr).map_err(|e| with_unsupported_as(e, virErrorNumber::VIR_ERR_INTERNAL_ERROR))?;
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
                // "pci", and "mdev_types" for an mdev parent (the iGPU).
                let mut caps = [ptr::null_mut::<c_char>(); 3];
                let ncaps = virNodeDeviceListCaps(dev, caps.as_mut_ptr(), 3);
                let parent = (*dev).addr.to_string() == "0000:00:02.0";
                assert_eq!(ncaps, if parent { 2 } else { 1 });
                assert_eq!(CStr::from_ptr(caps[0]).to_str(), Ok("pci"));
                if parent {
                    assert_eq!(CStr::from_ptr(caps[1]).to_str(), Ok("mdev_types"));
                }
                for c in &caps[..ncaps as usize] {
                    libc::free(c.cast());
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
