//! Persistent assignments seen from C: libvirt's autostart calls.

use super::boundary::api;
use super::nodedev::{dev_arg, virNodeDevicePtr, writable};
use super::virterror::virErrorDomain;
use std::ffi::c_int;

/// For a mediated device (libvirt's meaning): whether its definition
/// (mdevctl's file, `"start": "auto"`) is started at boot (`nodedev
/// apply`); a transient mdev is refused with VIR_ERR_OPERATION_INVALID, as
/// libvirt does (define it first).
///
/// For a PCI device, "autostart" is nodedev's persistent assignment: the
/// device is put on its stub at boot, before its host driver can bind it
/// (nodedev's udev rule and `nodedev apply`).
///
/// `autostart` non-zero: make the device's current stub binding persistent
/// (it must be on a stub, detached by nodedev, so that its original driver
/// is known; same as VIR_NODE_DEVICE_PERSISTENT at detach); 0: remove the
/// definition (the device itself is not changed; removing none is not an
/// error).
///
/// Returns 0, or -1 on error: VIR_ERR_INVALID_NODE_DEVICE,
/// VIR_ERR_OPERATION_DENIED (read-only connection, checked right after the
/// handle as libvirt does; lockdown, the authorization callback),
/// VIR_ERR_OPERATION_INVALID (not on a stub),
/// VIR_ERR_OPERATION_UNSUPPORTED (the connection keeps no definitions: only
/// nodedev:///system, or a URI with confdir=), VIR_ERR_SYSTEM_ERROR.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceSetAutostart(dev: virNodeDevicePtr, autostart: c_int) -> c_int {
    api("virNodeDeviceSetAutostart", virErrorDomain::VIR_FROM_NODEDEV, -1, |call| {
        let d = dev_arg(call, dev)?;
        // libvirt-nodedev.c: read-only is refused right after the handle check.
        writable(call, &d.conn)?;
        if let Some(id) = d.node.mdev() {
            // node_device_driver.c: the authorization check, then a
            // transient device has no autostart (VIR_ERR_OPERATION_INVALID).
            d.conn.host.mdev_set_autostart(id, autostart != 0)?;
            return Ok(0);
        }
        if autostart != 0 {
            d.conn.host.define(&d.pci(call)?)?;
        } else {
            d.conn.host.undefine(&d.pci(call)?)?;
        }
        Ok(0)
    })
}

/// Whether a mediated device starts at boot, or a PCI device has a persistent assignment (see
/// virNodeDeviceSetAutostart): `*autostart` is set to 1 or 0. `autostart`
/// must not be NULL.
///
/// Returns 0, or -1 on error: VIR_ERR_INVALID_NODE_DEVICE,
/// VIR_ERR_INVALID_ARG (NULL `autostart`), VIR_ERR_OPERATION_UNSUPPORTED
/// (the connection keeps no definitions), VIR_ERR_SYSTEM_ERROR (an
/// unusable definition file).
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceGetAutostart(dev: virNodeDevicePtr, autostart: *mut c_int) -> c_int {
    api("virNodeDeviceGetAutostart", virErrorDomain::VIR_FROM_NODEDEV, -1, |call| {
        let d = dev_arg(call, dev)?;
        if autostart.is_null() {
            return Err(call.invalid_arg("autostart must not be NULL"));
        }
        *autostart = c_int::from(match d.node.mdev() {
            Some(id) => d.conn.host.mdev(id)?.autostart(),
            None => d.conn.host.is_persistent(&d.pci(call)?)?,
        });
        Ok(0)
    })
}

exports!(virNodeDeviceSetAutostart, virNodeDeviceGetAutostart);
