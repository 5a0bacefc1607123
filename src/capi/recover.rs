//! Recovery of operations a dead process left half done, seen from C.

use super::boundary::api;
use super::connect::{conn_arg, virConnectPtr};
use super::virterror::virErrorDomain;
use std::ffi::{c_char, c_int, c_uint};

/// Finish or roll back every operation a process that died left half done
/// (a record in the state directory mid-detach or mid-reattach): each
/// device ends on its stub with a complete record, or on its original
/// driver without one.
///
/// Opening a connection never does this: it changes no driver, creates no
/// state directory, and leaves every pending record for this call. Until
/// then, every operation on a device with a half-done record fails with
/// VIR_ERR_OPERATION_INVALID saying to call this first. So a daemon opens
/// the connection, registers its callback (virConnectSetNodeDeviceAuthCallback),
/// then calls this. Each recovery obeys the rules of any other change:
/// - a read-only connection, or a locked-down one (`lockdown=1`, policy
///   `lockdown yes`), only reports what is pending;
/// - finishing a detach (the device stays on its stub) also needs the
///   policy's allow/deny lists to let the device be taken from the host;
///   giving a device back needs only an unlocked, read-write connection;
/// - the authorization callback is asked for each device with
///   VIR_NODE_DEVICE_OP_RECOVER (and the record's owner, if any).
///
/// A refused recovery leaves the record and the device as they are; its
/// report line says why. A record that cannot be used (damaged, a symlink,
/// wrong owner or mode, invalid fields) is never dropped: it stays in place,
/// its device is protected (every operation on it is refused), and it is
/// reported by every call until an administrator checks the device by hand
/// and clears it (`nodedev recover --clear ADDRESS`, or deletes the file). A
/// record whose device is gone (hot-unplugged) is kept, and reported once
/// per connection.
///
/// `report`: NULL, or where to store a malloc'ed, NULL-terminated array of
/// malloc'ed lines ("0000:03:00.0: rolled back to e1000e"), one per record
/// reported; the caller frees each line and the array with free(). `flags`
/// must be 0.
///
/// Returns the number of records reported (0: nothing pending, nothing
/// unusable), or -1 on error: VIR_ERR_INVALID_CONN, VIR_ERR_INVALID_ARG
/// (non-zero flags), VIR_ERR_SYSTEM_ERROR (the state directory),
/// VIR_ERR_NO_MEMORY.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceRecover(
    conn: virConnectPtr,
    report: *mut *mut *mut c_char,
    flags: c_uint,
) -> c_int {
    api("virNodeDeviceRecover", virErrorDomain::VIR_FROM_NODEDEV, -1, |call| {
        let c = conn_arg(call, conn)?;
        call.check_flags(flags, 0)?;
        let done = c.host.recover()?;
        if !report.is_null() {
            let lines: Vec<String> = done.iter().map(|r| format!("{}: {}", r.address, r.outcome)).collect();
            *report = call.string_array(&lines)?;
        }
        Ok(c_int::try_from(done.len()).unwrap_or(c_int::MAX))
    })
}

exports!(virNodeDeviceRecover);
