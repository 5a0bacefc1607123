//! Persistent assignments seen from C: libvirt's autostart calls.

use super::boundary::{api, Raised};
use super::nodedev::{dev_arg, virNodeDevicePtr, writable};
use super::virterror::virErrorDomain;
use super::virterror::virErrorNumber;
use crate::host::Node;
use std::ffi::c_int;

/// For a mediated device (libvirt's meaning): whether its definition
/// (mdevctl's file, `"start": "auto"`) is started at boot (`nodedev
/// apply`); a transient mdev is refused with VIR_ERR_OPERATION_INVALID, as
/// libvirt does (node_device_driver.c nodeDeviceSetAutostart: define it
/// first).
///
/// For a PCI device (nodedev's extension: libvirt refuses every device but
/// an mdev with VIR_ERR_OPERATION_UNSUPPORTED, as nodedev does for
/// `computer` and interfaces), "autostart" is nodedev's persistent assignment: the
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
/// VIR_ERR_NO_NODE_DEVICE (gone), VIR_ERR_OPERATION_INVALID (a transient
/// mdev; an mdev redefined with another type while the callback was asked;
/// a PCI device not on a stub), VIR_ERR_INTERNAL_ERROR (changing an
/// mdev's definition failed),
/// VIR_ERR_OPERATION_UNSUPPORTED (`computer`, an interface; the connection
/// keeps no definitions: only nodedev:///system, or a URI with confdir=),
/// VIR_ERR_SYSTEM_ERROR.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceSetAutostart(dev: virNodeDevicePtr, autostart: c_int) -> c_int {
    api("virNodeDeviceSetAutostart", virErrorDomain::VIR_FROM_NODEDEV, -1, |call| {
        let d = dev_arg(call, dev)?;
        // libvirt-nodedev.c: read-only is refused right after the handle check.
        writable(call, &d.conn)?;
        // node_device_driver.c nodeDeviceSetAutostart: the device must still be there.
        d.conn.host.require_node(&d.node)?;
        if let Some(id) = d.node.mdev() {
            if !d.conn.host.mdev(id)?.persistent() {
                // node_device_driver.c: a transient device has no autostart.
                return Err(Raised::new(
                    virErrorNumber::VIR_ERR_OPERATION_INVALID,
                    call.domain,
                    format!(
                        "{}: cannot set autostart for transient device {}: define it first",
                        call.func,
                        id.node_name()
                    ),
                ));
            }
            d.conn.host.mdev_set_autostart(id, autostart != 0).map_err(|e| {
                let mut r = Raised::from(e);
                if r.code == virErrorNumber::VIR_ERR_OPERATION_FAILED as c_int {
                    r.code = virErrorNumber::VIR_ERR_INTERNAL_ERROR as c_int;
                }
                r
            })?;
            return Ok(0);
        }
        if d.node.pci().is_none() {
            return Err(Raised::new(
                virErrorNumber::VIR_ERR_OPERATION_UNSUPPORTED,
                call.domain,
                format!(
                    "{}: unsupported device type: {} has no autostart (mediated devices and PCI devices have)",
                    call.func,
                    d.node.name()
                ),
            ));
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
/// virNodeDeviceSetAutostart): `*autostart` is set to 1 or 0 (0 for
/// `computer`, interfaces, and PCI devices where the connection keeps no
/// definitions, as libvirt answers for any device without autostart).
/// `autostart` must not be NULL (libvirt does not check it and crashes;
/// nodedev refuses it with VIR_ERR_INVALID_ARG, `*autostart` untouched on
/// any error).
///
/// Returns 0, or -1 on error: VIR_ERR_INVALID_NODE_DEVICE,
/// VIR_ERR_INVALID_ARG (NULL `autostart`), VIR_ERR_NO_NODE_DEVICE (gone),
/// VIR_ERR_SYSTEM_ERROR (an unusable definition file).
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceGetAutostart(dev: virNodeDevicePtr, autostart: *mut c_int) -> c_int {
    api("virNodeDeviceGetAutostart", virErrorDomain::VIR_FROM_NODEDEV, -1, |call| {
        let d = dev_arg(call, dev)?;
        if autostart.is_null() {
            return Err(call.invalid_arg("autostart must not be NULL"));
        }
        d.conn.host.require_node(&d.node)?;
        let on = match &d.node {
            Node::Mdev(id) => d.conn.host.mdev(id)?.autostart(),
            Node::Pci(_) => super::mdev::persistent(&d.conn, &d.node)?,
            _ => false,
        };
        *autostart = c_int::from(on);
        Ok(0)
    })
}

exports!(virNodeDeviceSetAutostart, virNodeDeviceGetAutostart);
