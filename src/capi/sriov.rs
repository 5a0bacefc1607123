//! SR-IOV provisioning seen from C: VFs created straight onto a stub.

use super::boundary::api;
use super::nodedev::{dev_arg, nflag, virNodeDeviceNodedevFlags, virNodeDevicePtr, writable};
use super::virterror::virErrorDomain;
use crate::stub::StubRequest;
use std::ffi::{c_char, c_int, c_uint};

/// nodedev extension: give the SR-IOV physical function `dev` exactly
/// `nvfs` virtual functions, each bound to a stub from the moment it
/// appears, so that no host VF driver ever binds it (the PF's
/// `sriov_drivers_autoprobe` is turned off while the VFs are created and put
/// back after), with a record per VF; `nvfs` 0 removes them. All or nothing:
/// on any failure the VFs are removed again.
///
/// `driverName`: NULL or "vfio" (each VF's best VFIO driver: its VFIO
/// variant driver when modules.alias has one for it, else vfio-pci; see
/// virNodeDeviceDetachFlags), "vfio:NAME" (that VFIO driver for every VF,
/// e.g. "vfio:mlx5_vfio_pci"; a name that is no VFIO driver of this kernel
/// is VIR_ERR_INVALID_ARG before anything changes), "kvm" (pci-stub), "xen"
/// (xen-pciback), or "none" (the VFs stay without a driver); only read
/// during the call.
///
/// `flags`: VIR_NODE_DEVICE_FORCE (below) and VIR_NODE_DEVICE_PERSISTENT:
/// after the VFs are made, also store the count and `driverName` in the
/// definitions directory (/etc/nodedev/persistent/PF.vfs.json on
/// nodedev:///system), so that `nodedev apply` and nodedev's udev rule (when
/// the PF's driver binds) make them again at boot; `nvfs` 0 with it removes
/// that definition. A PF that already has `nvfs` VFs, all on that driver,
/// is left as it is (success); with another number of VFs they are removed
/// first. Removing VFs is refused while one is assigned to a guest or was
/// detached from a host driver (its record expects it back), unless `flags`
/// has VIR_NODE_DEVICE_FORCE; records of removed VFs are dropped. The
/// authorization callback is asked with VIR_NODE_DEVICE_OP_PROVISION, the
/// PF, and the stub's kernel driver (NULL for "none").
///
/// A read-only connection is refused (VIR_ERR_OPERATION_DENIED) right after
/// the handle check, before the other arguments, as libvirt's changing calls.
///
/// Returns the number of VFs the PF has now, or -1 on error:
/// VIR_ERR_INVALID_NODE_DEVICE, VIR_ERR_INVALID_ARG (unknown `driverName`,
/// `nvfs` above the PF's sriov_totalvfs, unknown flags),
/// VIR_ERR_OPERATION_UNSUPPORTED (not an SR-IOV PF; VIR_NODE_DEVICE_PERSISTENT
/// on a connection that keeps no definitions),
/// VIR_ERR_OPERATION_DENIED (read-only connection, lockdown, policy, the
/// authorization callback), VIR_ERR_OPERATION_INVALID (VFs in use; VFs on
/// another driver), VIR_ERR_OPERATION_FAILED (the kernel refused),
/// VIR_ERR_NO_NODE_DEVICE, VIR_ERR_SYSTEM_ERROR (state records).
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceSetVFs(
    dev: virNodeDevicePtr,
    nvfs: c_uint,
    driverName: *const c_char,
    flags: c_uint,
) -> c_int {
    api("virNodeDeviceSetVFs", virErrorDomain::VIR_FROM_NODEDEV, -1, |call| {
        let d = dev_arg(call, dev)?;
        writable(call, &d.conn)?;
        let force = nflag(virNodeDeviceNodedevFlags::VIR_NODE_DEVICE_FORCE);
        let persistent = nflag(virNodeDeviceNodedevFlags::VIR_NODE_DEVICE_PERSISTENT);
        call.check_flags(flags, force | persistent)?;
        let driver = call.opt_str("driverName", driverName)?;
        let stub =
            StubRequest::parse_or_none(driver).map_err(|e| e.context(format_args!("{}: driverName", call.func)))?;
        let count = u16::try_from(nvfs).map_err(|_| call.invalid_arg(format!("nvfs {nvfs} is not a VF count")))?;
        let host = &d.conn.host;
        let addr = d.pci(call)?;
        if flags & persistent != 0 {
            host.check_definable()?; // before any VF is made or removed
        }
        let vfs = host.provision_vfs(&addr, count, stub.as_ref(), flags & force != 0)?;
        if flags & persistent != 0 {
            host.define_vfs(&addr, count, stub.as_ref())?;
        }
        Ok(c_int::try_from(vfs.len()).unwrap_or(c_int::MAX))
    })
}

exports!(virNodeDeviceSetVFs);
