//! Recovery of operations a dead process left half done, seen from C.

use super::boundary::api;
use super::connect::{conn_arg, virConnectPtr};
use super::error::virErrorDomain;
use super::nodedev::no_memory;
use std::ffi::{c_char, c_int, c_uint};
use std::mem::size_of;

/// Finish or roll back every operation a process that died left half done
/// (a record in the state directory mid-detach or mid-reattach): each
/// device ends on its stub with a complete record, or on its original
/// driver without one. Corrupt records are moved aside (renamed
/// `ADDRESS.json.corrupt-TIME`) and reported. Opening a connection already
/// does this (without creating the state directory when nothing is pending);
/// this call reports what that did since the last call, and recovers anything
/// new. A read-only connection only reports.
///
/// `report`: NULL, or where to store a malloc'ed, NULL-terminated array of
/// malloc'ed lines ("0000:03:00.0: rolled back to e1000e"), one per record
/// handled; the caller frees each line and the array with free(). `flags`
/// must be 0.
///
/// Returns the number of records handled (0: nothing to do), or -1 on
/// error: VIR_ERR_INVALID_CONN, VIR_ERR_INVALID_ARG (non-zero flags),
/// VIR_ERR_SYSTEM_ERROR (the state directory), VIR_ERR_NO_MEMORY.
#[no_mangle]
pub unsafe extern "C" fn virNodeDeviceRecover(
    conn: virConnectPtr,
    report: *mut *mut *mut c_char,
    flags: c_uint,
) -> c_int {
    api("virNodeDeviceRecover", virErrorDomain::VIR_FROM_NODEDEV, -1, |call| {
        let c = conn_arg(call, conn)?;
        call.check_flags(flags, 0)?;
        let mut done = c.host.take_recovered();
        done.extend(c.host.recover()?);
        if !report.is_null() {
            let lines: Vec<String> = done.iter().map(|r| format!("{}: {}", r.address, r.outcome)).collect();
            let array = libc::calloc(lines.len() + 1, size_of::<*mut c_char>()) as *mut *mut c_char;
            if array.is_null() {
                return Err(no_memory(call));
            }
            for (i, line) in lines.iter().enumerate() {
                match call.dup(line) {
                    Ok(p) => *array.add(i) = p,
                    Err(e) => {
                        for j in 0..i {
                            libc::free((*array.add(j)).cast());
                        }
                        libc::free(array.cast());
                        return Err(e);
                    }
                }
            }
            *report = array;
        }
        Ok(c_int::try_from(done.len()).unwrap_or(c_int::MAX))
    })
}

exports!(virNodeDeviceRecover);
