//! Connection handles: `virConnect`, an `Arc` of the opened host, handed to
//! C as a [`handle`](super::handle); virConnectRef adds a reference,
//! virConnectClose drops one. Every device handle also holds one, so a
//! connection lives until it is closed and all of its devices are freed.
//! Also the connection's close callback, fired when it goes, and the slot
//! for its node-device events (kept by a layer above, ended when it goes).
//! Above the call boundary and the handle helpers; below the device handles
//! and the calls.

use super::boundary::{api, Call, Raised};
use super::callback::{virFreeCallback, CallerData};
use super::handle::{self, Handle, Tag};
use super::last_error::{ConnErrors, ErrorTarget};
use super::virterror::{virErrorDomain, virErrorNumber};
use crate::host::Host;
use crate::uri;
use std::any::Any;
use std::ffi::{c_char, c_int, c_void, CString};
use std::ptr;
use std::sync::{Arc, Mutex, OnceLock};

const CONN_MAGIC: u64 = 0x6e6f_6465_636f_6e6e; // "nodeconn"
const DOMAIN: virErrorDomain = virErrorDomain::VIR_FROM_NONE;

/// A connection to a host (opaque). Thread-safe: one connection may be used
/// from several threads at once; operations on a host are serialised by the
/// library where they must be.
pub struct virConnect {
    magic: Tag,
    pub(crate) host: Host,
    uri: CString,
    read_only: bool,
    /// The error callback (virConnSetErrorFunc) and the last error raised
    /// on this connection (virConnGetLastError).
    pub(crate) errors: ConnErrors,
    /// The close callback (virConnectRegisterCloseCallback), fired on drop.
    pub(crate) close: Mutex<Option<CloseCallback>>,
    /// Node-device event callbacks and their feed (`node_device_events`),
    /// made at the first event call, closed on drop.
    pub(crate) events: OnceLock<Arc<dyn ConnAttachment>>,
}

/// Per-connection state of a layer above this one (node-device events: the
/// application's callbacks, a watch on its event loop) that must end when
/// the connection goes. The connection holds it without knowing its type:
/// it cannot import the modules that define it.
pub(crate) trait ConnAttachment: Send + Sync {
    /// The connection is going (its last reference released): let go of
    /// the application's callbacks (their freecb runs) and stop listening.
    fn close(&self);
    /// The state as its own type again, for the layer that made it.
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

/// Pointer to a connection, as returned by virConnectOpen.
pub type virConnectPtr = *mut virConnect;

impl virConnect {
    pub fn host(&self) -> &Host {
        &self.host
    }

    pub fn uri(&self) -> &str {
        self.uri.to_str().unwrap_or("")
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }
}

impl Handle for virConnect {
    const LIVE: u64 = CONN_MAGIC;
    const INVALID: virErrorNumber = virErrorNumber::VIR_ERR_INVALID_CONN;
    const ARG: &'static str = "connection pointer conn";
    const NOT_LIVE: &'static str = "not an open connection";

    unsafe fn tag_of(p: *const Self) -> *const Tag {
        ptr::addr_of!((*p).magic)
    }

    fn error_target(this: &Arc<Self>) -> Arc<dyn ErrorTarget> {
        this.clone()
    }
}

impl ErrorTarget for virConnect {
    fn errors(&self) -> &ConnErrors {
        &self.errors
    }
}

/// libvirt's read-only check (virCheckReadOnlyGoto), made right after the
/// handle check and before any other argument: VIR_ERR_OPERATION_DENIED.
pub(crate) fn writable(call: &Call, conn: &virConnect) -> Result<(), Raised> {
    if conn.is_read_only() {
        return Err(Raised::new(
            virErrorNumber::VIR_ERR_OPERATION_DENIED,
            call.domain,
            format!(
                "{}: read only access prevents this operation: the connection is read-only; open it with virConnectOpen to change devices",
                call.func
            ),
        ));
    }
    Ok(())
}

impl Drop for virConnect {
    fn drop(&mut self) {
        // Dead before the callback runs: calls it makes with `conn` fail
        // with VIR_ERR_INVALID_CONN instead of reviving the connection.
        self.magic.poison();
        // Event callbacks go first (their freecb), then the close callback.
        if let Some(events) = self.events.get() {
            events.close();
        }
        let close = self.close.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(cb) = close {
            cb.fire(self as *mut virConnect);
        }
    }
}

#[allow(dead_code)]
fn assert_thread_safe() {
    fn is<T: Send + Sync>() {}
    is::<virConnect>();
}

/// `p` as a live connection, without raising any error (for the error family).
///
/// # Safety
/// `p` is NULL or a pointer returned by virConnectOpen (see [`handle`] on
/// what the check can tell of a closed one).
pub(crate) unsafe fn conn_from_ptr<'a>(p: virConnectPtr) -> Option<&'a virConnect> {
    handle::peek(p)
}

/// Check a connection argument: VIR_ERR_INVALID_CONN when NULL or not a live
/// connection. Returns a new reference and makes the connection's error
/// callback the one for this call.
///
/// # Safety
/// As for [`conn_from_ptr`].
pub(crate) unsafe fn conn_arg(call: &mut Call, p: virConnectPtr) -> Result<Arc<virConnect>, Raised> {
    handle::arg(call, p)
}

pub(crate) unsafe fn open(call: &mut Call, name: *const c_char, read_only: bool) -> Result<virConnectPtr, Raised> {
    // libvirt treats "" like NULL: the default URI.
    let name = call.opt_str("name", name)?.filter(|n| !n.is_empty());
    let (host, uri) = uri::open(name, read_only)?;
    let uri = CString::new(uri).map_err(|_| call.invalid_arg("name contains a NUL byte"))?;
    let conn = virConnect {
        magic: Tag::new(CONN_MAGIC),
        host,
        uri,
        read_only,
        errors: ConnErrors::new(),
        close: Mutex::new(None),
        events: OnceLock::new(),
    };
    Ok(handle::into_raw(Arc::new(conn)))
}

/// Open a connection to a host, able to detach, reattach and reset devices.
///
/// `name` is the URI: NULL or "" or "nodedev:///system" (this machine; also
/// accepted: "qemu:///system"), "test:///default" (the built-in simulated
/// host, one per process, shared by all its connections), or
/// "test:///ABSOLUTE/PATH.json" (a simulated host described in a file); the
/// URI may end with parameters `?root=DIR&statedir=DIR&modprobe=0`. `name`
/// is only read during the call.
///
/// Returns a new connection, which the caller releases with
/// virConnectClose(), or NULL on error: VIR_ERR_NO_CONNECT (domain
/// VIR_FROM_NONE) when the URI cannot be opened, VIR_ERR_INVALID_ARG when
/// `name` is not UTF-8.
#[no_mangle]
pub unsafe extern "C" fn virConnectOpen(name: *const c_char) -> virConnectPtr {
    api("virConnectOpen", DOMAIN, ptr::null_mut(), |call| open(call, name, false))
}

/// Open a read-only connection: like virConnectOpen(), but detach, reattach
/// and reset then fail with VIR_ERR_OPERATION_DENIED. Listing, lookup and XML
/// work. Released with virConnectClose(); NULL on error as for virConnectOpen.
#[no_mangle]
pub unsafe extern "C" fn virConnectOpenReadOnly(name: *const c_char) -> virConnectPtr {
    api("virConnectOpenReadOnly", DOMAIN, ptr::null_mut(), |call| open(call, name, true))
}

/// Release one reference to `conn` (from virConnectOpen* or virConnectRef).
///
/// Returns the number of references that remain (each device handle of the
/// connection holds one; 0: the connection is gone and `conn` must not be
/// used again), or -1 with VIR_ERR_INVALID_CONN when `conn` is NULL or not a
/// live connection.
#[no_mangle]
pub unsafe extern "C" fn virConnectClose(conn: virConnectPtr) -> c_int {
    api("virConnectClose", DOMAIN, -1, |call| {
        let remaining = handle::release(call, conn)?;
        Ok(c_int::try_from(remaining).unwrap_or(c_int::MAX))
    })
}

/// Add a reference to `conn`, released by one more virConnectClose() (for
/// handing the connection to another owner, e.g. another thread).
///
/// Returns 0, or -1 with VIR_ERR_INVALID_CONN when `conn` is NULL or not a
/// live connection.
#[no_mangle]
pub unsafe extern "C" fn virConnectRef(conn: virConnectPtr) -> c_int {
    api("virConnectRef", DOMAIN, -1, |call| handle::add_ref(call, conn))
}

/// The URI `conn` was opened with ("nodedev:///system" when it was opened
/// with NULL).
///
/// Returns a string the caller frees with free(), or NULL on error:
/// VIR_ERR_INVALID_CONN (NULL or dead `conn`), VIR_ERR_NO_MEMORY.
#[no_mangle]
pub unsafe extern "C" fn virConnectGetURI(conn: virConnectPtr) -> *mut c_char {
    api("virConnectGetURI", DOMAIN, ptr::null_mut(), |call| {
        let c = conn_arg(call, conn)?;
        call.dup(c.uri())
    })
}

/// Why a connection was closed (libvirt's values).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virConnectCloseReason {
    /// Miscellaneous I/O error: never for nodedev's local connections.
    VIR_CONNECT_CLOSE_REASON_ERROR = 0,
    /// End of file from the server: never for nodedev's local connections.
    VIR_CONNECT_CLOSE_REASON_EOF = 1,
    /// Keepalive timeout: never for nodedev's local connections.
    VIR_CONNECT_CLOSE_REASON_KEEPALIVE = 2,
    /// The client closed the connection: the reason nodedev always gives.
    VIR_CONNECT_CLOSE_REASON_CLIENT = 3,
}

/// A close callback: `conn` is the connection being closed, `reason` one of
/// virConnectCloseReason, `opaque` the data given at registration.
pub type virConnectCloseFunc = Option<unsafe extern "C" fn(conn: virConnectPtr, reason: c_int, opaque: *mut c_void)>;

type CloseFn = unsafe extern "C" fn(virConnectPtr, c_int, *mut c_void);

/// The registered close callback of a connection (virConnectRegisterCloseCallback).
pub(crate) struct CloseCallback {
    pub(crate) func: CloseFn,
    data: CallerData,
}

impl CloseCallback {
    pub(crate) fn new(func: CloseFn, opaque: *mut c_void, free: virFreeCallback) -> CloseCallback {
        CloseCallback { func, data: CallerData::new(opaque, free) }
    }

    /// Call the callback for connection `conn`, then its `freecb`.
    pub(crate) fn fire(self, conn: virConnectPtr) {
        // SAFETY: the caller registered `func` for this data.
        unsafe {
            (self.func)(conn, virConnectCloseReason::VIR_CONNECT_CLOSE_REASON_CLIENT as c_int, self.data.ptr());
        }
        // `freecb` runs as `self.data` goes.
    }
}

exports!(virConnectOpen, virConnectOpenReadOnly, virConnectClose, virConnectRef, virConnectGetURI);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capi::last_error;

    #[test]
    fn references_keep_a_connection_until_the_last_close() {
        unsafe {
            let conn = virConnectOpen(c"test:///default".as_ptr());
            assert!(!conn.is_null());
            assert_eq!(virConnectRef(conn), 0);
            assert_eq!(virConnectClose(conn), 1);
            let uri = virConnectGetURI(conn);
            assert_eq!(std::ffi::CStr::from_ptr(uri).to_str(), Ok("test:///default"));
            libc::free(uri.cast());
            assert_eq!(virConnectClose(conn), 0);
            assert_eq!(virConnectClose(ptr::null_mut()), -1);
            let err = last_error::current().expect("an error for a NULL connection");
            assert_eq!((*err).code, virErrorNumber::VIR_ERR_INVALID_CONN as c_int);
        }
    }
}
