//! Close callbacks (virConnectRegisterCloseCallback): one per connection,
//! called when the connection goes away, i.e. when its last reference is
//! released (virConnectClose, or virNodeDeviceFree of the last device
//! handle), with reason VIR_CONNECT_CLOSE_REASON_CLIENT. A local connection
//! has no server that could drop it, so no other reason ever occurs.

use super::boundary::{api, Raised};
pub use super::callback::virFreeCallback;
use super::connect::{conn_arg, virConnectPtr, CloseCallback};
pub use super::connect::{virConnectCloseFunc, virConnectCloseReason};
use super::virterror::{virErrorDomain, virErrorNumber};
use std::ffi::{c_int, c_void};

/// libvirt reports the state errors of close callbacks from its remote
/// driver (every local connection to libvirtd or virtnodedevd goes through
/// it), so with the remote driver's domain.
fn state_error(func: &str, what: &str) -> Raised {
    Raised::new(virErrorNumber::VIR_ERR_OPERATION_INVALID, virErrorDomain::VIR_FROM_REMOTE, format!("{func}: {what}"))
}

/// Register `cb`, called once when `conn` closes (its last reference is
/// released) with reason VIR_CONNECT_CLOSE_REASON_CLIENT. `conn` is passed to
/// the callback for identification only: the connection is being destroyed,
/// and any call made with it fails with VIR_ERR_INVALID_CONN. `freecb` (may be
/// NULL) is then called with `opaque`; until then `opaque` must stay valid.
/// The callback runs on the thread that released the last reference.
///
/// Returns 0, or -1 on error: VIR_ERR_INVALID_CONN (NULL or dead `conn`),
/// VIR_ERR_INVALID_ARG (`cb` NULL), VIR_ERR_OPERATION_INVALID (domain
/// VIR_FROM_REMOTE, as libvirt's remote driver: a callback is already
/// registered; unregister it first).
#[no_mangle]
pub unsafe extern "C" fn virConnectRegisterCloseCallback(
    conn: virConnectPtr,
    cb: virConnectCloseFunc,
    opaque: *mut c_void,
    freecb: virFreeCallback,
) -> c_int {
    api("virConnectRegisterCloseCallback", virErrorDomain::VIR_FROM_NONE, -1, |call| {
        let c = conn_arg(call, conn)?;
        let Some(func) = cb else {
            return Err(call.invalid_arg("cb must not be NULL"));
        };
        let mut slot = c.close.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return Err(state_error(call.func, "a close callback is already registered"));
        }
        *slot = Some(CloseCallback::new(func, opaque, freecb));
        Ok(0)
    })
}

/// Unregister the close callback `cb` of `conn`; its `freecb` is called
/// with its `opaque` before this returns.
///
/// Returns 0, or -1 on error: VIR_ERR_INVALID_CONN, VIR_ERR_INVALID_ARG
/// (`cb` NULL), VIR_ERR_OPERATION_INVALID (domain VIR_FROM_REMOTE, as
/// libvirt's remote driver: `cb` is not the registered callback, or none is
/// registered).
#[no_mangle]
pub unsafe extern "C" fn virConnectUnregisterCloseCallback(conn: virConnectPtr, cb: virConnectCloseFunc) -> c_int {
    api("virConnectUnregisterCloseCallback", virErrorDomain::VIR_FROM_NONE, -1, |call| {
        let c = conn_arg(call, conn)?;
        let Some(func) = cb else {
            return Err(call.invalid_arg("cb must not be NULL"));
        };
        let taken = {
            let mut slot = c.close.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_ref() {
                Some(registered) if registered.func as usize == func as usize => slot.take(),
                _ => None,
            }
        };
        match taken {
            Some(registered) => {
                drop(registered); // its freecb runs now, without the callback
                Ok(0)
            }
            None => Err(state_error(call.func, "a different callback was requested (this one is not registered)")),
        }
    })
}

exports!(virConnectRegisterCloseCallback, virConnectUnregisterCloseCallback);
