//! Mediated devices through libvirt's device lifecycle calls:
//! virNodeDeviceCreateXML, virNodeDeviceDefineXML, virNodeDeviceCreate,
//! virNodeDeviceDestroy, virNodeDeviceUndefine, virNodeDeviceIsActive,
//! virNodeDeviceIsPersistent (autostart: capi/persistent.rs). Checks run in
//! libvirt's order (libvirt-nodedev.c, then node_device_driver.c): the
//! handle or connection, a read-only connection, the arguments, flags, then
//! the device's state.

use super::boundary::{api, Call, Raised};
use super::connect::{conn_arg, virConnectPtr};
use super::nodedev::{dev_arg, new_device, virNodeDevice, virNodeDevicePtr, writable};
use super::virterror::{virErrorDomain, virErrorNumber};
use crate::host::{parse_mdev_xml, MdevConfig, MdevXmlProblem, Node};
use std::ffi::{c_char, c_int, c_uint};
use std::ptr;
use std::sync::Arc;

const DOMAIN: virErrorDomain = virErrorDomain::VIR_FROM_NODEDEV;

/// Flags of virNodeDeviceCreateXML, libvirt's values.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virNodeDeviceCreateXMLFlags {
    /// Validate the XML document against the schema (nodedev always checks
    /// the elements it reads).
    VIR_NODE_DEVICE_CREATE_XML_VALIDATE = 1,
}

/// Flags of virNodeDeviceDefineXML, libvirt's values.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virNodeDeviceDefineXMLFlags {
    /// As VIR_NODE_DEVICE_CREATE_XML_VALIDATE.
    VIR_NODE_DEVICE_DEFINE_XML_VALIDATE = 1,
}

/// The mdev a caller's XML asks for, with libvirt's error classes. As
/// libvirt: a NULL document, then the flags, then the document.
unsafe fn config_arg(call: &Call, xml: *const c_char, flags: c_uint, known: c_uint) -> Result<MdevConfig, Raised> {
    let text = call.req_str("xmlDesc", xml)?;
    call.check_flags(flags, known)?;
    match parse_mdev_xml(text) {
        Ok(Ok(cfg)) => Ok(cfg),
        Ok(Err(parent)) => Err(Raised::new(
            virErrorNumber::VIR_ERR_NO_NODE_DEVICE,
            call.domain,
            format!("{}: could not find parent device '{parent}': a mediated device's parent is a PCI device (pci_DDDD_BB_SS_F)", call.func),
        )),
        Err(MdevXmlProblem::Xml(m)) => {
            Err(Raised::new(virErrorNumber::VIR_ERR_XML_ERROR, call.domain, format!("{}: {m}", call.func)))
        }
        Err(MdevXmlProblem::Unsupported(m)) => {
            Err(Raised::new(virErrorNumber::VIR_ERR_CONFIG_UNSUPPORTED, call.domain, format!("{}: {m}", call.func)))
        }
    }
}

/// libvirt's answer for a lifecycle call on a device that is no mdev.
fn unsupported_type(call: &Call, d: &virNodeDevice) -> Raised {
    Raised::new(
        virErrorNumber::VIR_ERR_CONFIG_UNSUPPORTED,
        call.domain,
        format!(
            "{}: unsupported device type: {} is not a mediated device; only mediated devices are created, destroyed and defined",
            call.func,
            d.node.name()
        ),
    )
}

/// Create a transient mediated device from libvirt's XML (`<device>` with
/// `<parent>` naming a PCI mdev parent and `<capability type='mdev'>` with
/// `<type id='...'/>`, optional `<uuid>` (a new random UUID without) and
/// `<attr name= value=/>` in order). `xmlDesc` is only read during the call.
///
/// `flags`: 0 or VIR_NODE_DEVICE_CREATE_XML_VALIDATE.
///
/// Returns a new handle (virNodeDeviceFree), or NULL on error:
/// VIR_ERR_INVALID_CONN, VIR_ERR_OPERATION_DENIED (read-only connection,
/// lockdown), VIR_ERR_INVALID_ARG (`xmlDesc` NULL, unknown flags, a bad
/// UUID, type or attribute name), VIR_ERR_XML_ERROR (not well-formed, no
/// parent, no type), VIR_ERR_CONFIG_UNSUPPORTED (a device other than an
/// mdev), VIR_ERR_NO_NODE_DEVICE (no such parent), VIR_ERR_OPERATION_INVALID
/// (the UUID is live already), VIR_ERR_OPERATION_FAILED (the parent offers
/// no such type or none is left; the kernel refused).
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceCreateXML(
    conn: virConnectPtr,
    xmlDesc: *const c_char,
    flags: c_uint,
) -> virNodeDevicePtr {
    api("virNodeDeviceCreateXML", DOMAIN, ptr::null_mut(), |call| {
        let c = conn_arg(call, conn)?;
        writable(call, &c)?;
        let cfg = config_arg(call, xmlDesc, flags, virNodeDeviceCreateXMLFlags::VIR_NODE_DEVICE_CREATE_XML_VALIDATE as c_uint)?;
        let id = c.host.mdev_create(&cfg)?;
        Ok(Arc::into_raw(new_device(call, &c, Node::Mdev(id))?) as virNodeDevicePtr)
    })
}

/// Define a persistent mediated device from libvirt's XML (as for
/// virNodeDeviceCreateXML), written as mdevctl's definition file; the
/// device is not started. A definition of the same UUID and parent is
/// replaced (its autostart kept).
///
/// `flags`: 0 or VIR_NODE_DEVICE_DEFINE_XML_VALIDATE.
///
/// Returns a new handle, or NULL on error: as virNodeDeviceCreateXML, and
/// VIR_ERR_OPERATION_UNSUPPORTED (the connection keeps no definitions:
/// nodedev:///system, or a URI with confdir=), VIR_ERR_SYSTEM_ERROR.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceDefineXML(
    conn: virConnectPtr,
    xmlDesc: *const c_char,
    flags: c_uint,
) -> virNodeDevicePtr {
    api("virNodeDeviceDefineXML", DOMAIN, ptr::null_mut(), |call| {
        let c = conn_arg(call, conn)?;
        writable(call, &c)?;
        let cfg = config_arg(call, xmlDesc, flags, virNodeDeviceDefineXMLFlags::VIR_NODE_DEVICE_DEFINE_XML_VALIDATE as c_uint)?;
        c.host.require(&cfg.parent)?;
        let id = c.host.mdev_define(&cfg, None)?;
        Ok(Arc::into_raw(new_device(call, &c, Node::Mdev(id))?) as virNodeDevicePtr)
    })
}

/// Start a defined, inactive mediated device. `flags` must be 0.
///
/// Returns 0, or -1 on error: VIR_ERR_INVALID_NODE_DEVICE,
/// VIR_ERR_OPERATION_DENIED, VIR_ERR_INVALID_ARG (flags),
/// VIR_ERR_NO_NODE_DEVICE (no longer defined), VIR_ERR_OPERATION_INVALID
/// (already active; a PCI device is always active),
/// VIR_ERR_OPERATION_FAILED (the parent cannot create it now).
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceCreate(dev: virNodeDevicePtr, flags: c_uint) -> c_int {
    api("virNodeDeviceCreate", DOMAIN, -1, |call| {
        let d = dev_arg(call, dev)?;
        writable(call, &d.conn)?;
        call.check_flags(flags, 0)?;
        let Some(id) = d.node.mdev() else {
            d.conn.host.require_node(&d.node)?;
            return Err(Raised::new(
                virErrorNumber::VIR_ERR_OPERATION_INVALID,
                call.domain,
                format!("{}: device {} is already active", call.func, d.node.name()),
            ));
        };
        d.conn.host.mdev_start(id)?;
        Ok(0)
    })
}

/// Stop (remove from the kernel) a live mediated device; a defined one
/// stays defined. Refused while a process holds the mdev's IOMMU group
/// through VFIO (a guest uses it): VIR_ERR_OPERATION_INVALID naming the
/// processes.
///
/// Returns 0, or -1 on error: VIR_ERR_INVALID_NODE_DEVICE,
/// VIR_ERR_OPERATION_DENIED, VIR_ERR_NO_NODE_DEVICE,
/// VIR_ERR_OPERATION_INVALID (not active; in use),
/// VIR_ERR_CONFIG_UNSUPPORTED (a PCI device, as libvirt for any device it
/// cannot destroy), VIR_ERR_OPERATION_TIMEOUT, VIR_ERR_OPERATION_FAILED.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceDestroy(dev: virNodeDevicePtr) -> c_int {
    api("virNodeDeviceDestroy", DOMAIN, -1, |call| {
        let d = dev_arg(call, dev)?;
        writable(call, &d.conn)?;
        let Some(id) = d.node.mdev() else {
            d.conn.host.require_node(&d.node)?;
            return Err(unsupported_type(call, &d));
        };
        d.conn.host.mdev_destroy(id)?;
        Ok(0)
    })
}

/// Remove a mediated device's definition (mdevctl's file); a live device
/// stays live, now transient. `flags` must be 0.
///
/// Returns 0, or -1 on error: VIR_ERR_INVALID_NODE_DEVICE,
/// VIR_ERR_OPERATION_DENIED, VIR_ERR_INVALID_ARG (flags),
/// VIR_ERR_NO_NODE_DEVICE, VIR_ERR_OPERATION_INVALID (not defined),
/// VIR_ERR_CONFIG_UNSUPPORTED (a PCI device: its persistent assignment is
/// removed with virNodeDeviceSetAutostart(dev, 0)),
/// VIR_ERR_OPERATION_UNSUPPORTED (no definitions on this connection),
/// VIR_ERR_SYSTEM_ERROR.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceUndefine(dev: virNodeDevicePtr, flags: c_uint) -> c_int {
    api("virNodeDeviceUndefine", DOMAIN, -1, |call| {
        let d = dev_arg(call, dev)?;
        writable(call, &d.conn)?;
        call.check_flags(flags, 0)?;
        let Some(id) = d.node.mdev() else {
            d.conn.host.require_node(&d.node)?;
            return Err(unsupported_type(call, &d));
        };
        d.conn.host.mdev_undefine(id)?;
        Ok(0)
    })
}

/// 1 when the device is active (a PCI function present; a mediated device
/// live in the kernel), 0 when not (a defined mdev not started), -1 on
/// error: VIR_ERR_INVALID_NODE_DEVICE, VIR_ERR_NO_NODE_DEVICE.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceIsActive(dev: virNodeDevicePtr) -> c_int {
    api("virNodeDeviceIsActive", DOMAIN, -1, |call| {
        let d = dev_arg(call, dev)?;
        match d.node.mdev() {
            Some(id) => Ok(c_int::from(d.conn.host.mdev(id)?.active)),
            None => {
                d.conn.host.require_node(&d.node)?;
                Ok(1)
            }
        }
    })
}

/// 1 when the device has a persistent definition (a mediated device
/// defined in mdevctl's files; a PCI function with a persistent assignment,
/// see virNodeDeviceSetAutostart, where the connection keeps definitions),
/// else 0; -1 on error: VIR_ERR_INVALID_NODE_DEVICE, VIR_ERR_NO_NODE_DEVICE,
/// VIR_ERR_SYSTEM_ERROR (an unusable definition file).
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceIsPersistent(dev: virNodeDevicePtr) -> c_int {
    api("virNodeDeviceIsPersistent", DOMAIN, -1, |call| {
        let d = dev_arg(call, dev)?;
        match &d.node {
            Node::Mdev(id) => Ok(c_int::from(d.conn.host.mdev(id)?.persistent())),
            Node::Pci(a) => {
                d.conn.host.require(a)?;
                match d.conn.host.is_persistent(a) {
                    Ok(p) => Ok(c_int::from(p)),
                    Err(crate::Error::Unsupported(_)) => Ok(0),
                    Err(e) => Err(e.into()),
                }
            }
            other => {
                d.conn.host.require_node(other)?;
                Ok(0)
            }
        }
    })
}

exports!(
    virNodeDeviceCreateXML,
    virNodeDeviceDefineXML,
    virNodeDeviceCreate,
    virNodeDeviceDestroy,
    virNodeDeviceUndefine,
    virNodeDeviceIsActive,
    virNodeDeviceIsPersistent,
);
