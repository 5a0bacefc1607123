//! Connection handles: `virConnect`, an `Arc` of the opened host, handed to
//! C with `Arc::into_raw`; virConnectRef adds a reference, virConnectClose
//! drops one. Every device handle also holds one, so a connection lives until
//! it is closed and all of its devices are freed.

use super::boundary::{api, Call, Raised};
use super::close_callback::CloseCallback;
use super::error::{virErrorDomain, virErrorNumber, ConnLastError, Handler};
use super::node_device_events::ConnEvents;
use crate::host::Host;
use crate::uri;
use std::ffi::{c_char, c_int, CString};
use std::ptr;
use std::sync::{Arc, Mutex};

const CONN_MAGIC: u64 = 0x6e6f_6465_636f_6e6e; // "nodeconn"
const DOMAIN: virErrorDomain = virErrorDomain::VIR_FROM_NONE;

/// A connection to a host (opaque). Thread-safe: one connection may be used
/// from several threads at once; operations on a host are serialised by the
/// library where they must be.
pub struct virConnect {
    magic: u64,
    pub(crate) host: Host,
    uri: CString,
    read_only: bool,
    pub(crate) handler: Mutex<Option<Handler>>,
    /// The close callback (virConnectRegisterCloseCallback), fired on drop.
    pub(crate) close: Mutex<Option<CloseCallback>>,
    /// The last error raised on this connection (virConnGetLastError).
    pub(crate) last_error: ConnLastError,
    /// Node-device event callbacks and their feed (node_device_events.rs).
    pub(crate) events: Arc<ConnEvents>,
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

impl Drop for virConnect {
    fn drop(&mut self) {
        // Dead before the callback runs: calls it makes with `conn` fail
        // with VIR_ERR_INVALID_CONN instead of reviving the connection.
        self.magic = 0;
        // Event callbacks go first (their freecb), then the close callback.
        self.events.close();
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
/// `p` is NULL or a pointer returned by virConnectOpen and not yet closed.
pub(crate) unsafe fn conn_from_ptr<'a>(p: virConnectPtr) -> Option<&'a virConnect> {
    if p.is_null() || (*p).magic != CONN_MAGIC {
        None
    } else {
        Some(&*p)
    }
}

/// Check a connection argument: VIR_ERR_INVALID_CONN when NULL or not a live
/// connection. Returns a new reference and makes the connection's error
/// callback the one for this call.
///
/// # Safety
/// As for [`conn_from_ptr`].
pub(crate) unsafe fn conn_arg(call: &mut Call, p: virConnectPtr) -> Result<Arc<virConnect>, Raised> {
    if conn_from_ptr(p).is_none() {
        let what = if p.is_null() { "NULL" } else { "not an open connection" };
        return Err(Raised::new(
            virErrorNumber::VIR_ERR_INVALID_CONN,
            call.domain,
            format!("{}: invalid connection pointer conn ({what})", call.func),
        ));
    }
    Arc::increment_strong_count(p as *const virConnect);
    let conn = Arc::from_raw(p as *const virConnect);
    call.conn = Some(conn.clone());
    Ok(conn)
}

pub(crate) unsafe fn open(call: &mut Call, name: *const c_char, read_only: bool) -> Result<virConnectPtr, Raised> {
    // libvirt treats "" like NULL: the default URI.
    let name = call.opt_str("name", name)?.filter(|n| !n.is_empty());
    let (host, uri) = uri::open(name, read_only)?;
    let uri = CString::new(uri).map_err(|_| call.invalid_arg("name contains a NUL byte"))?;
    let conn = Arc::new_cyclic(|me| virConnect {
        magic: CONN_MAGIC,
        host,
        uri,
        read_only,
        handler: Mutex::new(None),
        close: Mutex::new(None),
        last_error: ConnLastError::new(),
        events: ConnEvents::new(me.clone()),
    });
    Ok(Arc::into_raw(conn) as virConnectPtr)
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
        drop(conn_arg(call, conn)?);
        call.conn = None;
        let handle = Arc::from_raw(conn as *const virConnect);
        let remaining = Arc::strong_count(&handle) - 1;
        drop(handle);
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
    api("virConnectRef", DOMAIN, -1, |call| {
        conn_arg(call, conn)?;
        Arc::increment_strong_count(conn as *const virConnect);
        Ok(0)
    })
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

exports!(virConnectOpen, virConnectOpenReadOnly, virConnectClose, virConnectRef, virConnectGetURI);
