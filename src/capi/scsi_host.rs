//! virNodeDeviceLookupSCSIHostByWWN: libvirt's lookup of a Fibre Channel
//! SCSI host by its port and node names. nodedev's tree has no SCSI hosts
//! (it manages PCI functions, their interfaces and mediated devices), so
//! every lookup that passes libvirt's argument checks finds nothing, and
//! answers as libvirt does when no fc_host matches.

use super::boundary::{api, Raised};
use super::connect::{conn_arg, virConnectPtr};
use super::nodedev::virNodeDevicePtr;
use super::virterror::{virErrorDomain, virErrorNumber};
use std::ffi::{c_char, c_uint};
use std::ptr;

/// Look up the SCSI host whose Fibre Channel WWNN and WWPN are `wwnn` and
/// `wwpn` (only read during the call). `flags` must be 0.
///
/// nodedev knows no SCSI hosts: the call always returns NULL. Checks and
/// errors in libvirt's order (libvirt-nodedev.c
/// virNodeDeviceLookupSCSIHostByWWN, node_device_driver.c
/// nodeDeviceLookupSCSIHostByWWN): VIR_ERR_INVALID_CONN, VIR_ERR_INVALID_ARG
/// (`wwnn` NULL, then `wwpn` NULL, then unknown flags), and for no match
/// libvirt's generic VIR_ERR_INTERNAL_ERROR in domain VIR_FROM_NONE (its
/// driver finds nothing without reporting why; virDispatchError fills in
/// the generic error).
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceLookupSCSIHostByWWN(
    conn: virConnectPtr,
    wwnn: *const c_char,
    wwpn: *const c_char,
    flags: c_uint,
) -> virNodeDevicePtr {
    api("virNodeDeviceLookupSCSIHostByWWN", virErrorDomain::VIR_FROM_NODEDEV, ptr::null_mut(), |call| {
        conn_arg(call, conn)?;
        if wwnn.is_null() {
            return Err(call.invalid_arg("wwnn must not be NULL"));
        }
        if wwpn.is_null() {
            return Err(call.invalid_arg("wwpn must not be NULL"));
        }
        call.check_flags(flags, 0)?;
        Err(Raised::new(
            virErrorNumber::VIR_ERR_INTERNAL_ERROR,
            virErrorDomain::VIR_FROM_NONE,
            "An error occurred, but the cause is unknown (virNodeDeviceLookupSCSIHostByWWN: nodedev has no SCSI hosts, so no fc_host matches)".to_string(),
        ))
    })
}

exports!(virNodeDeviceLookupSCSIHostByWWN);
