//! Guest assignment calls (nodedev extensions in libvirt's style): prepare
//! devices for an owner, release them, and the authorization callback a
//! daemon registers to decide who may change what.

use super::boundary::{api, Call, Raised};
pub use super::callback::virFreeCallback;
use super::callback::CallerData;
use super::connect::{conn_arg, virConnect, virConnectPtr};
use super::nodedev::{
    dev_arg, nflag, stub_arg, virNodeDeviceNodedevFlags, virNodeDevicePtr, with_unsupported_as, writable,
};
use super::virterror::{virErrorDomain, virErrorNumber};
use crate::address::PciAddress;
use crate::host::{AuthRequest, Operation, PrepareOptions};
use std::ffi::{c_char, c_int, c_uint, c_void, CString};
use std::ptr;
use std::sync::Arc;

const DOMAIN: virErrorDomain = virErrorDomain::VIR_FROM_NODEDEV;

/// The devices of a `devs`/`ndevs` argument pair, checked to be live
/// handles of `conn`.
unsafe fn devices_arg(
    call: &mut Call,
    conn: &Arc<virConnect>,
    devs: *mut virNodeDevicePtr,
    ndevs: c_uint,
) -> Result<Vec<PciAddress>, Raised> {
    if devs.is_null() {
        return Err(call.invalid_arg("devs must not be NULL"));
    }
    let mut out = Vec::with_capacity(ndevs as usize);
    for i in 0..ndevs as usize {
        let d = dev_arg(call, *devs.add(i))
            .map_err(|_| call.invalid_arg(format_args!("devs[{i}] is not a live device handle")))?;
        if !Arc::ptr_eq(&d.conn, conn) {
            return Err(call.invalid_arg(format_args!("devs[{i}] ({}) belongs to another connection", d.node.name())));
        }
        out.push(d.pci(call)?);
    }
    call.conn = Some(conn.clone());
    Ok(out)
}

/// Prepare devices for a guest: nodedev's counterpart of what libvirt does
/// for a domain's `<hostdev>`s when it starts.
///
/// `owner` names the guest (1 to 256 printable characters); a device
/// prepared for one owner cannot be prepared for another, given back to the
/// host, or reset until its owner releases it, and no device of its IOMMU
/// group can be prepared for another owner. The owner is kept in the state
/// directory, so other processes see it.
///
/// `devs` is an array of `ndevs` (at least 1) device handles of `conn`, only
/// read during the call (the handles stay the caller's). `driverName` is the
/// stub, as for virNodeDeviceDetachFlags (NULL: "vfio").
///
/// `flags`: VIR_NODE_DEVICE_PREPARE_MANAGED moves the devices to the stub as
/// one transaction (any failure puts back every device this call moved) and
/// resets them; without it no driver is changed and each device must already
/// be on the stub. With "vfio", every other endpoint of each device's IOMMU
/// group must be on vfio-pci, pci-stub or no driver (for managed devices, the
/// devices in `devs` count as moved). VIR_NODE_DEVICE_FORCE: as for detach.
/// Preparing a device again for the same owner succeeds.
///
/// A read-only connection is refused (VIR_ERR_OPERATION_DENIED) before any
/// other argument is looked at, as libvirt's calls that change things do.
///
/// Returns 0, or -1 on error (nothing changed): VIR_ERR_INVALID_CONN,
/// VIR_ERR_INVALID_ARG (NULL or malformed `owner`, `devs` NULL or holding a
/// bad handle or one of another connection, `ndevs` 0, unknown `driverName`
/// or flags), VIR_ERR_OPERATION_DENIED (read-only connection, locked-down
/// host for managed devices, policy rules, the authorization callback),
/// VIR_ERR_OPERATION_INVALID (owned by another guest, IOMMU group not
/// usable, unmanaged device not on its stub, the host uses the device),
/// VIR_ERR_ARGUMENT_UNSUPPORTED (no IOMMU for "vfio", as libvirt's detach),
/// VIR_ERR_OPERATION_FAILED (the kernel refused; everything was put back),
/// VIR_ERR_SYSTEM_ERROR (state records).
#[no_mangle]
pub unsafe extern "C" fn virNodeDevicePrepare(
    conn: virConnectPtr,
    owner: *const c_char,
    devs: *mut virNodeDevicePtr,
    ndevs: c_uint,
    driverName: *const c_char,
    flags: c_uint,
) -> c_int {
    use virNodeDeviceNodedevFlags::*;
    api("virNodeDevicePrepare", DOMAIN, -1, |call| {
        let c = conn_arg(call, conn)?;
        writable(call, &c)?;
        let managed = nflag(VIR_NODE_DEVICE_PREPARE_MANAGED);
        let force = nflag(VIR_NODE_DEVICE_FORCE);
        let persistent = nflag(virNodeDeviceNodedevFlags::VIR_NODE_DEVICE_PERSISTENT);
        call.check_flags(flags, managed | force | persistent)?;
        let owner = call.req_str("owner", owner)?;
        if ndevs == 0 {
            return Err(call.invalid_arg("ndevs must be at least 1"));
        }
        let addrs = devices_arg(call, &c, devs, ndevs)?;
        let stub = stub_arg(call, driverName)?;
        let opts = PrepareOptions { managed: flags & managed != 0, force: flags & force != 0 };
        if flags & persistent != 0 {
            c.host.check_definable()?; // before anything moves
        }
        c.host
            .prepare_request(owner, &addrs, &stub, opts)
            .map_err(|e| with_unsupported_as(e, virErrorNumber::VIR_ERR_ARGUMENT_UNSUPPORTED))?;
        if flags & persistent != 0 {
            addrs.iter().try_for_each(|a| c.host.define(a))?;
        }
        Ok(0)
    })
}

/// Release devices prepared for `owner` after the guest stopped: each
/// device that virNodeDevicePrepare moved (managed) is reset when possible
/// and given back to the driver it had before; the others stay on their stub
/// and only lose their owner.
///
/// `devs`/`ndevs`: the devices (handles of `conn`, only read during the
/// call), or NULL and 0 for every device `owner` holds. Every device is
/// attempted even if one fails; a device that cannot go back stays on its
/// stub, detached and no longer owned. `flags` must be 0.
///
/// Returns the number of devices released, or -1 on error:
/// VIR_ERR_INVALID_CONN, VIR_ERR_INVALID_ARG (NULL or malformed `owner`,
/// `devs` NULL with `ndevs` > 0 or holding a bad handle, non-zero flags),
/// VIR_ERR_OPERATION_INVALID (a device not assigned to `owner`: nothing
/// changed), VIR_ERR_OPERATION_DENIED (read-only connection, locked-down host
/// for managed devices, the authorization callback: nothing changed),
/// VIR_ERR_OPERATION_FAILED (some devices could not go back; the message
/// names them), VIR_ERR_SYSTEM_ERROR.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceRelease(
    conn: virConnectPtr,
    owner: *const c_char,
    devs: *mut virNodeDevicePtr,
    ndevs: c_uint,
    flags: c_uint,
) -> c_int {
    api("virNodeDeviceRelease", DOMAIN, -1, |call| {
        let c = conn_arg(call, conn)?;
        writable(call, &c)?;
        call.check_flags(flags, 0)?;
        let owner = call.req_str("owner", owner)?;
        let addrs = if devs.is_null() && ndevs == 0 { None } else { Some(devices_arg(call, &c, devs, ndevs)?) };
        let n = c.host.release(owner, addrs.as_deref())?;
        Ok(c_int::try_from(n).unwrap_or(c_int::MAX))
    })
}

/// What an operation is about to do, as the authorization callback is told.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virNodeDeviceOperation {
    /// Move the device from its host driver to a stub.
    VIR_NODE_DEVICE_OP_DETACH = 1,
    /// Give the device back to a host driver.
    VIR_NODE_DEVICE_OP_REATTACH = 2,
    /// Reset the device.
    VIR_NODE_DEVICE_OP_RESET = 3,
    /// Prepare the device for an owner (virNodeDevicePrepare).
    VIR_NODE_DEVICE_OP_PREPARE = 4,
    /// Release the device from its owner (virNodeDeviceRelease).
    VIR_NODE_DEVICE_OP_RELEASE = 5,
    /// virNodeDeviceRecover finishing or rolling back what a dead process
    /// left half done on the device (owner: the record's owner, if any).
    VIR_NODE_DEVICE_OP_RECOVER = 6,
    /// Create or remove the VFs of this SR-IOV physical function
    /// (virNodeDeviceSetVFs); `driver` is the stub they get, or NULL.
    VIR_NODE_DEVICE_OP_PROVISION = 7,
    // ---- Mediated devices (issue 13 item 4). For these `device` is the
    // mdev's name (`mdev_UUID_PARENT`, the parent in it), `owner` is NULL,
    // and `driver` is the mdev type for create and define (what the parent
    // is to serve), NULL otherwise.
    /// Create a mediated device: virNodeDeviceCreateXML, virNodeDeviceCreate
    /// of a defined one, and `nodedev apply` starting an autostart one.
    VIR_NODE_DEVICE_OP_MDEV_CREATE = 8,
    /// Remove a live mediated device (virNodeDeviceDestroy).
    VIR_NODE_DEVICE_OP_MDEV_DESTROY = 9,
    /// Write or replace a mediated device's definition (virNodeDeviceDefineXML).
    VIR_NODE_DEVICE_OP_MDEV_DEFINE = 10,
    /// Remove a mediated device's definition (virNodeDeviceUndefine).
    VIR_NODE_DEVICE_OP_MDEV_UNDEFINE = 11,
    /// Turn a defined mediated device's autostart on or off
    /// (virNodeDeviceSetAutostart); `driver` is its defined type.
    VIR_NODE_DEVICE_OP_MDEV_AUTOSTART = 12,
}

/// The authorization callback: asked before every change to every device,
/// on the calling thread, while the library holds none of its locks (it may
/// call nodedev functions, but not change devices of the same connection
/// from inside the callback). `conn` is the connection; `device` the device's
/// name (`pci_0000_03_00_1`); `owner` the guest (NULL for detach, reattach
/// and reset; for recover, the owner in the device's record, if any);
/// `driver` the kernel driver the device is to be bound to: the stub's
/// ("vfio-pci") for detach and managed prepare, the host driver for
/// reattach and managed release (the named one, else the recorded original),
/// NULL when the kernel chooses or no driver is bound (reset, unmanaged
/// prepare and release); for recover, the stub when it finishes a detach,
/// the original driver when it gives the device back, NULL when it only
/// drops a record. For the mediated-device operations
/// (VIR_NODE_DEVICE_OP_MDEV_*), `device` is the mdev's name
/// (`mdev_UUID_0000_00_02_0`, whose parent is in it), `owner` NULL, and
/// `driver` the mdev type (`i915-GVTg_V5_4`) for create, define and
/// autostart, NULL for destroy and undefine. Strings are valid during the call only. Returns 1
/// to allow, 0 (or anything else) to deny; a denied operation fails with
/// VIR_ERR_OPERATION_DENIED and changes nothing.
pub type virNodeDeviceAuthCallback = Option<
    unsafe extern "C" fn(
        conn: virConnectPtr,
        operation: virNodeDeviceOperation,
        device: *const c_char,
        owner: *const c_char,
        driver: *const c_char,
        opaque: *mut c_void,
    ) -> c_int,
>;

/// A registered callback; frees its data when the last reference goes.
struct AuthCallback {
    func: unsafe extern "C" fn(
        virConnectPtr,
        virNodeDeviceOperation,
        *const c_char,
        *const c_char,
        *const c_char,
        *mut c_void,
    ) -> c_int,
    conn: usize,
    data: CallerData,
}

impl AuthCallback {
    fn ask(&self, req: &AuthRequest<'_>) -> bool {
        let op = match req.operation {
            Operation::Detach => virNodeDeviceOperation::VIR_NODE_DEVICE_OP_DETACH,
            Operation::Reattach => virNodeDeviceOperation::VIR_NODE_DEVICE_OP_REATTACH,
            Operation::Reset => virNodeDeviceOperation::VIR_NODE_DEVICE_OP_RESET,
            Operation::Prepare => virNodeDeviceOperation::VIR_NODE_DEVICE_OP_PREPARE,
            Operation::Release => virNodeDeviceOperation::VIR_NODE_DEVICE_OP_RELEASE,
            Operation::Provision => virNodeDeviceOperation::VIR_NODE_DEVICE_OP_PROVISION,
            Operation::Recover => virNodeDeviceOperation::VIR_NODE_DEVICE_OP_RECOVER,
            Operation::MdevCreate => virNodeDeviceOperation::VIR_NODE_DEVICE_OP_MDEV_CREATE,
            Operation::MdevDestroy => virNodeDeviceOperation::VIR_NODE_DEVICE_OP_MDEV_DESTROY,
            Operation::MdevDefine => virNodeDeviceOperation::VIR_NODE_DEVICE_OP_MDEV_DEFINE,
            Operation::MdevUndefine => virNodeDeviceOperation::VIR_NODE_DEVICE_OP_MDEV_UNDEFINE,
            Operation::MdevAutostart => virNodeDeviceOperation::VIR_NODE_DEVICE_OP_MDEV_AUTOSTART,
        };
        // A mediated device is named as libvirt names it; its type goes in `driver`.
        let name = req.mdev.map_or_else(|| req.address.node_name(), |m| m.node_name());
        let driver = req.mdev_type.or(req.driver);
        let Ok(name) = CString::new(name) else { return false };
        // A string with a NUL byte cannot be told to C faithfully: deny.
        let (Ok(owner), Ok(driver)) = (req.owner.map(CString::new).transpose(), driver.map(CString::new).transpose())
        else {
            return false;
        };
        let ptr_of = |s: &Option<CString>| s.as_ref().map_or(ptr::null(), |s| s.as_ptr());
        // SAFETY: the connection outlives its host and so this callback.
        let answer = unsafe {
            (self.func)(self.conn as virConnectPtr, op, name.as_ptr(), ptr_of(&owner), ptr_of(&driver), self.data.ptr())
        };
        answer == 1
    }
}

/// Register the authorization callback of `conn`, replacing any earlier one
/// (whose own `freecb` is then called with its `opaque`), or remove it with
/// a NULL `cb` (`opaque` and `freecb` are then ignored). `freecb` (may be
/// NULL) is called with `opaque` once the callback is replaced or removed,
/// or the connection closes, and no call is using it any more; until then
/// `opaque` must stay valid.
///
/// Returns 0, or -1 on error: VIR_ERR_INVALID_CONN (NULL or dead `conn`).
#[no_mangle]
pub unsafe extern "C" fn virConnectSetNodeDeviceAuthCallback(
    conn: virConnectPtr,
    cb: virNodeDeviceAuthCallback,
    opaque: *mut c_void,
    freecb: virFreeCallback,
) -> c_int {
    api("virConnectSetNodeDeviceAuthCallback", virErrorDomain::VIR_FROM_NONE, -1, |call| {
        let c = conn_arg(call, conn)?;
        let auth = cb.map(|func| {
            let cb = AuthCallback { func, conn: conn as usize, data: CallerData::new(opaque, freecb) };
            Arc::new(move |req: &AuthRequest<'_>| cb.ask(req)) as crate::host::Authorizer
        });
        c.host.set_authorizer(auth);
        Ok(0)
    })
}

exports!(virNodeDevicePrepare, virNodeDeviceRelease, virConnectSetNodeDeviceAuthCallback);
