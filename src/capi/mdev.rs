//! Mediated devices through libvirt's device lifecycle calls:
//! virNodeDeviceCreateXML, virNodeDeviceDefineXML, virNodeDeviceCreate,
//! virNodeDeviceDestroy, virNodeDeviceUndefine, virNodeDeviceIsActive,
//! virNodeDeviceIsPersistent (autostart: capi/persistent.rs). Checks run in
//! libvirt's order (libvirt-nodedev.c, then node_device_driver.c): the
//! handle or connection, a read-only connection, the arguments, flags, then
//! the device's state.

use super::boundary::{api, Call, Raised};
use super::connect::{conn_arg, virConnect, virConnectPtr};
use super::nodedev::{dev_arg, new_device, virNodeDevice, virNodeDevicePtr, writable};
use super::virterror::{virErrorDomain, virErrorNumber};
use crate::host::{parse_mdev_xml, MdevConfig, MdevXmlProblem, Node};
use crate::Error;
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

/// The mdev a caller's XML asks for, with libvirt's error classes in
/// libvirt's order (node_device_conf.c virNodeDeviceDefParse, then the node
/// device driver's parser callbacks, node_device_driver.c
/// nodeDeviceDefPostParse / nodeDeviceDefValidateMdev):
/// not well-formed: VIR_ERR_XML_DETAIL; another root element:
/// VIR_ERR_XML_ERROR (domain VIR_FROM_XML, virxml.c); no type, an
/// incomplete attribute, no parent, a parent that is no device:
/// VIR_ERR_CONFIG_UNSUPPORTED; a bad UUID: VIR_ERR_INTERNAL_ERROR; a parent
/// device without an address (computer, an interface, an mdev):
/// VIR_ERR_PARSE_FAILED.
unsafe fn config_arg(call: &Call, c: &virConnect, xml: *const c_char) -> Result<MdevConfig, Raised> {
    let text = call.req_str("xmlDesc", xml)?;
    let raise = |code, domain, m: String| Err(Raised::new(code, domain, format!("{}: {m}", call.func)));
    let cfg = match parse_mdev_xml(text) {
        Ok(Ok(cfg)) => cfg,
        Ok(Err(parent)) if parent.is_empty() => {
            return raise(
                virErrorNumber::VIR_ERR_CONFIG_UNSUPPORTED,
                call.domain,
                "missing parent device: add <parent>pci_DDDD_BB_SS_F</parent>".into(),
            )
        }
        Ok(Err(parent)) => {
            // node_device_driver.c nodeDeviceDefValidateMdev: a known device
            // without an address cannot be a parent; an unknown one is invalid.
            return match c.host.lookup_node(&parent) {
                Ok(_) => raise(
                    virErrorNumber::VIR_ERR_PARSE_FAILED,
                    call.domain,
                    format!("Unable to find address for parent device '{parent}': a mediated device's parent is a PCI device"),
                ),
                Err(_) => raise(
                    virErrorNumber::VIR_ERR_CONFIG_UNSUPPORTED,
                    call.domain,
                    format!("invalid parent device '{parent}': no such device ('nodedev list' shows them)"),
                ),
            };
        }
        Err(MdevXmlProblem::Malformed(m)) => return raise(virErrorNumber::VIR_ERR_XML_DETAIL, call.domain, m),
        Err(MdevXmlProblem::Xml(m)) => {
            return raise(virErrorNumber::VIR_ERR_XML_ERROR, virErrorDomain::VIR_FROM_XML, m)
        }
        Err(MdevXmlProblem::Unsupported(m)) => {
            return raise(virErrorNumber::VIR_ERR_CONFIG_UNSUPPORTED, call.domain, m)
        }
    };
    if let Some(u) = &cfg.uuid {
        if crate::mdevctl::canonical_uuid(u).is_none() {
            // node_device_conf.c virNodeDevCapMdevParseXML.
            return raise(
                virErrorNumber::VIR_ERR_INTERNAL_ERROR,
                call.domain,
                format!("Invalid uuid '{u}' for new mdev device (like 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001)"),
            );
        }
    }
    if c.host.require(&cfg.parent).is_err() {
        return raise(
            virErrorNumber::VIR_ERR_CONFIG_UNSUPPORTED,
            call.domain,
            format!("invalid parent device '{}': no such device ('nodedev list' shows them)", cfg.parent.node_name()),
        );
    }
    Ok(cfg)
}

/// What libvirt reports when mdevctl fails (node_device_driver.c
/// virMdevctlCreate / Define / Start / Stop / Undefine: a non-zero exit is
/// VIR_ERR_INTERNAL_ERROR, whatever the reason: an unknown type, no instance
/// left, a UUID taken, the device in use). nodedev's message says which.
/// Other classes (no such device, denied, no definitions kept, a time-out,
/// a system error) keep their codes.
fn mdevctl_failure(e: Error) -> Raised {
    let internal = matches!(e, Error::OperationFailed(_) | Error::OperationInvalid(_) | Error::InvalidArg(_));
    let mut r = Raised::from(e);
    if internal {
        r.code = virErrorNumber::VIR_ERR_INTERNAL_ERROR as c_int;
    }
    r
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
/// Checks run in libvirt's order (libvirt-nodedev.c virNodeDeviceCreateXML,
/// node_device_driver.c nodeDeviceCreateXML): the connection, read-only,
/// `xmlDesc`, flags, the document, the parent, then the creation.
///
/// Returns a new handle (virNodeDeviceFree), or NULL on error:
/// VIR_ERR_INVALID_CONN, VIR_ERR_OPERATION_DENIED (read-only connection,
/// lockdown, the authorization callback), VIR_ERR_INVALID_ARG (`xmlDesc`
/// NULL, unknown flags), VIR_ERR_XML_DETAIL (not well-formed),
/// VIR_ERR_XML_ERROR (domain VIR_FROM_XML: the root is not `<device>`),
/// VIR_ERR_CONFIG_UNSUPPORTED (a device other than an mdev; no type; an
/// `<attr>` without name or value; no parent; no such parent),
/// VIR_ERR_PARSE_FAILED (the parent is a device without an address, such as
/// `computer`), VIR_ERR_INTERNAL_ERROR (a bad UUID; the creation failed, as
/// libvirt reports a failing mdevctl: the parent offers no such type or none
/// is left, the UUID is live already, a bad attribute, the kernel refused;
/// the message says which).
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceCreateXML(
    conn: virConnectPtr,
    xmlDesc: *const c_char,
    flags: c_uint,
) -> virNodeDevicePtr {
    api("virNodeDeviceCreateXML", DOMAIN, ptr::null_mut(), |call| {
        let c = conn_arg(call, conn)?;
        writable(call, &c)?;
        call.req_str("xmlDesc", xmlDesc)?;
        // node_device_driver.c nodeDeviceCreateXML: flags before the document.
        call.check_flags(flags, virNodeDeviceCreateXMLFlags::VIR_NODE_DEVICE_CREATE_XML_VALIDATE as c_uint)?;
        let cfg = config_arg(call, &c, xmlDesc)?;
        let id = c.host.mdev_create(&cfg).map_err(mdevctl_failure)?;
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
        call.req_str("xmlDesc", xmlDesc)?;
        // node_device_driver.c nodeDeviceDefineXML: flags before the document.
        call.check_flags(flags, virNodeDeviceDefineXMLFlags::VIR_NODE_DEVICE_DEFINE_XML_VALIDATE as c_uint)?;
        let cfg = config_arg(call, &c, xmlDesc)?;
        let id = c.host.mdev_define(&cfg, None).map_err(mdevctl_failure)?;
        Ok(Arc::into_raw(new_device(call, &c, Node::Mdev(id))?) as virNodeDevicePtr)
    })
}

/// Start a defined, inactive mediated device. `flags` must be 0.
///
/// Returns 0, or -1 on error (libvirt's order, node_device_driver.c
/// nodeDeviceCreate): VIR_ERR_INVALID_NODE_DEVICE,
/// VIR_ERR_OPERATION_DENIED, VIR_ERR_INVALID_ARG (flags),
/// VIR_ERR_NO_NODE_DEVICE (no longer defined), VIR_ERR_OPERATION_INVALID
/// (already active; a PCI device is always active),
/// VIR_ERR_INTERNAL_ERROR (the parent cannot create it now, as libvirt
/// reports a failing mdevctl).
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
        if d.conn.host.mdev(id)?.active {
            return Err(Raised::new(
                virErrorNumber::VIR_ERR_OPERATION_INVALID,
                call.domain,
                format!("{}: device {} is already active", call.func, id.node_name()),
            ));
        }
        d.conn.host.mdev_start(id).map_err(mdevctl_failure)?;
        Ok(0)
    })
}

/// Stop (remove from the kernel) a live mediated device; a defined one
/// stays defined. Refused while a process holds the mdev's IOMMU group
/// through VFIO (a guest uses it): VIR_ERR_INTERNAL_ERROR naming the
/// processes, as libvirt's "device in use".
///
/// Returns 0, or -1 on error (libvirt's order, node_device_driver.c
/// nodeDeviceDestroy): VIR_ERR_INVALID_NODE_DEVICE,
/// VIR_ERR_OPERATION_DENIED, VIR_ERR_NO_NODE_DEVICE,
/// VIR_ERR_CONFIG_UNSUPPORTED (a PCI device, as libvirt for any device it
/// cannot destroy), VIR_ERR_OPERATION_INVALID (not active),
/// VIR_ERR_INTERNAL_ERROR (in use; the kernel refused),
/// VIR_ERR_OPERATION_TIMEOUT (nodedev's bound on the removal; libvirt
/// would wait).
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceDestroy(dev: virNodeDevicePtr) -> c_int {
    api("virNodeDeviceDestroy", DOMAIN, -1, |call| {
        let d = dev_arg(call, dev)?;
        writable(call, &d.conn)?;
        let Some(id) = d.node.mdev() else {
            d.conn.host.require_node(&d.node)?;
            return Err(unsupported_type(call, &d));
        };
        if !d.conn.host.mdev(id)?.active {
            return Err(Raised::new(
                virErrorNumber::VIR_ERR_OPERATION_INVALID,
                call.domain,
                format!("{}: device '{}' is not active (defined only): nothing to stop", call.func, id.node_name()),
            ));
        }
        d.conn.host.mdev_destroy(id).map_err(mdevctl_failure)?;
        Ok(0)
    })
}

/// Remove a mediated device's definition (mdevctl's file); a live device
/// stays live, now transient. `flags` must be 0.
///
/// Returns 0, or -1 on error (libvirt's order, node_device_driver.c
/// nodeDeviceUndefine): VIR_ERR_INVALID_NODE_DEVICE,
/// VIR_ERR_OPERATION_DENIED, VIR_ERR_INVALID_ARG (flags),
/// VIR_ERR_NO_NODE_DEVICE, VIR_ERR_OPERATION_INVALID (not defined: a
/// transient mdev, `computer`, an interface, a PCI device without a
/// persistent assignment), VIR_ERR_CONFIG_UNSUPPORTED (a PCI device with a
/// persistent assignment: it is removed with virNodeDeviceSetAutostart(dev,
/// 0)), VIR_ERR_INTERNAL_ERROR (removing the definition failed),
/// VIR_ERR_SYSTEM_ERROR.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceUndefine(dev: virNodeDevicePtr, flags: c_uint) -> c_int {
    api("virNodeDeviceUndefine", DOMAIN, -1, |call| {
        let d = dev_arg(call, dev)?;
        writable(call, &d.conn)?;
        call.check_flags(flags, 0)?;
        d.conn.host.require_node(&d.node)?;
        if !persistent(&d.conn, &d.node)? {
            return Err(Raised::new(
                virErrorNumber::VIR_ERR_OPERATION_INVALID,
                call.domain,
                format!("{}: node device '{}' is not defined", call.func, d.node.name()),
            ));
        }
        let Some(id) = d.node.mdev() else {
            return Err(unsupported_type(call, &d));
        };
        d.conn.host.mdev_undefine(id).map_err(mdevctl_failure)?;
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
        d.conn.host.require_node(&d.node)?;
        Ok(c_int::from(persistent(&d.conn, &d.node)?))
    })
}

/// Whether a device has a persistent definition: an mdev in mdevctl's
/// files, a PCI function with a persistent assignment (none where the
/// connection keeps no definitions); `computer` and interfaces never.
pub(crate) fn persistent(c: &virConnect, node: &Node) -> Result<bool, Raised> {
    match node {
        Node::Mdev(id) => Ok(c.host.mdev(id)?.persistent()),
        Node::Pci(a) => match c.host.is_persistent(a) {
            Ok(p) => Ok(p),
            Err(Error::Unsupported(_)) => Ok(false),
            Err(e) => Err(e.into()),
        },
        _ => Ok(false),
    }
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
