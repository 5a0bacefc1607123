//! The virGetLastError family: libvirt's calls that read, copy, reset and
//! dispatch errors, and set error callbacks. The vocabulary (`virError`, the
//! error enums) lives in [`virterror`](super::virterror), the thread's and
//! the connections' last errors in [`last_error`](super::last_error); both
//! are re-exported here, where code has always found them. These calls run
//! in `api_keep_error`: unlike every other call they do not reset the
//! thread's last error.

use super::boundary::api_keep_error as keep;
use super::connect::{conn_from_ptr, virConnectPtr};
use super::last_error::{clear, copy, current, print_error, set_global_handler, Handler};
#[allow(unused_imports)] // kept where code has found them
pub(crate) use super::last_error::{reset_last, ConnLastError};
use super::virterror::EMPTY;
pub use super::virterror::{
    virDomain, virDomainPtr, virError, virErrorDomain, virErrorFunc, virErrorLevel, virErrorNumber, virErrorPtr,
    virNetwork, virNetworkPtr,
};
use std::ffi::{c_char, c_int, c_void};
use std::ptr;

/// Raise `r` on `conn` (kept where code has found it: see
/// [`last_error::raise`](super::last_error::raise), which takes the
/// connection's error state rather than the connection).
#[allow(dead_code)]
pub(crate) fn raise(conn: Option<&super::connect::virConnect>, r: &super::raised::Raised) {
    use super::last_error::ErrorTarget;
    super::last_error::raise(conn.map(|c| c.errors()), r)
}

/// The calling thread's last error.
///
/// Returns NULL when the last public call on this thread succeeded (every
/// call except this family resets the last error on entry). The error is
/// owned by the library: do not free it; it stays valid until the next
/// nodedev call on this thread. Copy it with virCopyLastError or
/// virSaveLastError to keep it. Threads never see each other's errors.
#[no_mangle]
pub extern "C" fn virGetLastError() -> virErrorPtr {
    keep("virGetLastError", ptr::null_mut(), |_| Ok(current().unwrap_or(ptr::null_mut())))
}

/// The code (`virErrorNumber`) of the calling thread's last error, or
/// VIR_ERR_OK (0) when there is none.
#[no_mangle]
pub extern "C" fn virGetLastErrorCode() -> c_int {
    keep("virGetLastErrorCode", 0, |_| Ok(current().map(|p| unsafe { (*p).code }).unwrap_or(0)))
}

/// The domain (`virErrorDomain`) of the calling thread's last error, or
/// VIR_FROM_NONE (0) when there is none.
#[no_mangle]
pub extern "C" fn virGetLastErrorDomain() -> c_int {
    keep("virGetLastErrorDomain", 0, |_| Ok(current().map(|p| unsafe { (*p).domain }).unwrap_or(0)))
}

/// The message of the calling thread's last error: "no error" when there is
/// none, "unknown error" when it has no message. Never NULL. Owned by the
/// library, valid until the next nodedev call on this thread: do not free it.
#[no_mangle]
pub extern "C" fn virGetLastErrorMessage() -> *const c_char {
    const NO_ERROR: &[u8] = b"no error\0";
    const UNKNOWN: &[u8] = b"unknown error\0";
    keep("virGetLastErrorMessage", NO_ERROR.as_ptr().cast(), |_| {
        Ok(match current() {
            None => NO_ERROR.as_ptr().cast(),
            Some(p) if unsafe { (*p).message.is_null() } => UNKNOWN.as_ptr().cast(),
            Some(p) => unsafe { (*p).message },
        })
    })
}

/// Empty the calling thread's last error (virGetLastError then returns NULL).
#[no_mangle]
pub extern "C" fn virResetLastError() {
    keep("virResetLastError", (), |_| {
        reset_last();
        Ok(())
    })
}

/// A copy of the calling thread's last error, allocated for the caller.
///
/// Returns a new `virError` (an empty one, code VIR_ERR_OK, when there is no
/// last error), or NULL when memory is exhausted. The caller frees it with
/// virFreeError(). The last error itself is left as it is.
#[no_mangle]
pub extern "C" fn virSaveLastError() -> virErrorPtr {
    keep("virSaveLastError", ptr::null_mut(), |_| unsafe {
        let to = libc::calloc(1, std::mem::size_of::<virError>()) as virErrorPtr;
        if !to.is_null() {
            copy(current().unwrap_or(ptr::null_mut()), to);
        }
        Ok(to)
    })
}

/// Copy the calling thread's last error into `to`, a `virError` owned by the
/// caller (its previous contents are overwritten without being freed or read).
///
/// Returns the copied error's code, 0 when there is no last error (`to` is
/// then emptied), or -1 when `to` is NULL. The strings copied into `to`
/// belong to the caller: release them with virResetError(to).
#[no_mangle]
pub unsafe extern "C" fn virCopyLastError(to: virErrorPtr) -> c_int {
    keep("virCopyLastError", -1, |_| {
        if to.is_null() {
            return Ok(-1);
        }
        Ok(copy(current().unwrap_or(ptr::null_mut()), to))
    })
}

/// Free the strings of `err` (with free()) and set every field to zero /
/// NULL. `err` itself is not freed. NULL is ignored. Works on the thread's
/// last error too (virResetError(virGetLastError()) empties it).
#[no_mangle]
pub unsafe extern "C" fn virResetError(err: virErrorPtr) {
    keep("virResetError", (), |_| {
        if !err.is_null() {
            clear(err);
        }
        Ok(())
    })
}

/// Free an error returned by virSaveLastError(): its strings and the struct.
/// NULL is ignored. Never pass the thread's last error (virGetLastError) here.
#[no_mangle]
pub unsafe extern "C" fn virFreeError(err: virErrorPtr) {
    keep("virFreeError", (), |_| {
        if !err.is_null() {
            clear(err);
            libc::free(err.cast());
        }
        Ok(())
    })
}

/// The last error raised on `conn` by any thread (libvirt's per-connection
/// error): unlike the thread's last error, a later successful call does not
/// clear it; only the next error on `conn` or virConnResetLastError(conn)
/// does. Never NULL for a live connection (an empty error, code 0, when none
/// occurred, as libvirt); NULL when `conn` is NULL or not a live connection.
/// Owned by the connection: do not free it; another thread's error on the
/// same connection may overwrite it (copy it with virConnCopyLastError).
#[no_mangle]
pub unsafe extern "C" fn virConnGetLastError(conn: virConnectPtr) -> virErrorPtr {
    keep("virConnGetLastError", ptr::null_mut(), |_| {
        Ok(conn_from_ptr(conn).map_or(ptr::null_mut(), |c| c.errors.last.as_ptr()))
    })
}

/// Empty the last error of `conn` (see virConnGetLastError); the thread's
/// last error is not changed. Does nothing when `conn` is NULL.
#[no_mangle]
pub unsafe extern "C" fn virConnResetLastError(conn: virConnectPtr) {
    keep("virConnResetLastError", (), |_| {
        if let Some(c) = conn_from_ptr(conn) {
            c.errors.last.with(|e| clear(e));
        }
        Ok(())
    })
}

/// Copy the last error of `conn` (see virConnGetLastError) into `to`, owned
/// by the caller (overwritten without being read; release its strings with
/// virResetError). Returns the copied code (0: none), or -1 when `conn` or
/// `to` is NULL.
#[no_mangle]
pub unsafe extern "C" fn virConnCopyLastError(conn: virConnectPtr, to: virErrorPtr) -> c_int {
    keep("virConnCopyLastError", -1, |_| {
        if to.is_null() {
            return Ok(-1);
        }
        match conn_from_ptr(conn) {
            None => {
                to.write(EMPTY);
                Ok(-1)
            }
            Some(c) => Ok(c.errors.last.with(|e| copy(e, to))),
        }
    })
}

/// Set the process-wide error callback: `handler` is called with `userData`
/// for every error raised on any thread whose connection has no callback of
/// its own (virConnSetErrorFunc). A NULL `handler` restores the default,
/// which prints `nodedev: MESSAGE` on stderr only when the environment
/// variable NODEDEV_DEBUG is set, and is otherwise silent. This differs from
/// libvirt on purpose (virerror.c virDispatchError prints every error with
/// virDefaultErrorFunc when no callback is set; a library should not write
/// to a daemon's stderr): set NODEDEV_DEBUG for libvirt's behaviour.
#[no_mangle]
pub unsafe extern "C" fn virSetErrorFunc(userData: *mut c_void, handler: virErrorFunc) {
    keep("virSetErrorFunc", (), |_| {
        set_global_handler(Handler::new(handler, userData));
        Ok(())
    })
}

/// Set the error callback for errors raised by calls on `conn` and on its
/// devices; it takes priority over virSetErrorFunc's. A NULL `handler`
/// removes it (the process-wide callback applies again). Does nothing when
/// `conn` is NULL. Errors of virConnectOpen (no connection yet) go to the
/// process-wide callback.
#[no_mangle]
pub unsafe extern "C" fn virConnSetErrorFunc(conn: virConnectPtr, userData: *mut c_void, handler: virErrorFunc) {
    keep("virConnSetErrorFunc", (), |_| {
        if let Some(c) = conn_from_ptr(conn) {
            c.errors.set_handler(Handler::new(handler, userData));
        }
        Ok(())
    })
}

/// Print `err` as `nodedev: MESSAGE` on stderr (whatever NODEDEV_DEBUG
/// says). NULL or an empty error prints nothing. Usable as a callback body.
#[no_mangle]
pub unsafe extern "C" fn virDefaultErrorFunc(err: virErrorPtr) {
    keep("virDefaultErrorFunc", (), |_| {
        print_error(err);
        Ok(())
    })
}

exports!(
    virGetLastError,
    virGetLastErrorCode,
    virGetLastErrorDomain,
    virGetLastErrorMessage,
    virResetLastError,
    virSaveLastError,
    virCopyLastError,
    virResetError,
    virFreeError,
    virConnGetLastError,
    virConnResetLastError,
    virConnCopyLastError,
    virSetErrorFunc,
    virConnSetErrorFunc,
    virDefaultErrorFunc,
);
