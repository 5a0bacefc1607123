//! Where a raised error goes: the calling thread's last error (a
//! thread-local `virError`), the connection's own last error, and the error
//! callbacks. Above the error vocabulary (`virterror`, `raised`), below the
//! call boundary that raises; it knows a connection only as an
//! [`ErrorTarget`], so it needs no connection type.
//!
//! Every public call except the virGetLastError family resets the calling
//! thread's last error on entry; a failing call sets it, then dispatches it:
//! to the connection's handler (virConnSetErrorFunc), else to the global
//! handler (virSetErrorFunc), else to the default handler, which prints
//! `nodedev: MESSAGE` on stderr only when the environment variable
//! `NODEDEV_DEBUG` is set (`crate::debug`; libvirt's always prints; a
//! library that writes to a daemon's stderr unasked is a nuisance).

use super::cmem::{dup_c, free_str, malloc_str};
use super::raised::Raised;
use super::virterror::{virError, virErrorFunc, virErrorLevel, virErrorPtr, EMPTY};
use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::Mutex;

/// A callback and its user data, as stored by virSetErrorFunc / virConnSetErrorFunc.
#[derive(Clone, Copy)]
pub(crate) struct Handler {
    func: unsafe extern "C" fn(*mut c_void, virErrorPtr),
    data: *mut c_void,
}

// SAFETY: `data` is only handed back to the caller's callback, on whichever
// thread raises an error; libvirt's callers vouch for that already.
unsafe impl Send for Handler {}

impl Handler {
    pub(crate) fn new(func: virErrorFunc, data: *mut c_void) -> Option<Handler> {
        func.map(|func| Handler { func, data })
    }
}

static GLOBAL_HANDLER: Mutex<Option<Handler>> = Mutex::new(None);

/// Set (or with None remove) the process-wide error callback.
pub(crate) fn set_global_handler(h: Option<Handler>) {
    *GLOBAL_HANDLER.lock().unwrap_or_else(|e| e.into_inner()) = h;
}

/// The thread's last error. Its strings are malloc'ed, so that a caller's
/// virResetError(virGetLastError()) (a libvirt idiom) frees them correctly.
struct Slot(UnsafeCell<virError>);

impl Drop for Slot {
    fn drop(&mut self) {
        unsafe { clear(self.0.get()) }
    }
}

thread_local! {
    static LAST: Slot = const { Slot(UnsafeCell::new(EMPTY)) };
}

/// The calling thread's slot; None while the thread is being torn down.
fn slot() -> Option<*mut virError> {
    LAST.try_with(|s| s.0.get()).ok()
}

/// Free the strings of `err` and make it empty (virResetError).
///
/// # Safety
/// `err` points to a `virError` whose strings are NULL or malloc'ed.
pub(crate) unsafe fn clear(err: *mut virError) {
    free_str((*err).message);
    free_str((*err).str1);
    free_str((*err).str2);
    free_str((*err).str3);
    err.write(EMPTY);
}

/// libvirt's virCopyError: `to` is overwritten without being read (callers
/// need not initialise it); an empty `from` gives an empty `to`. Returns the code.
///
/// # Safety
/// `from` is NULL or a valid `virError`; `to` is writable.
pub(crate) unsafe fn copy(from: *const virError, to: *mut virError) -> c_int {
    to.write(EMPTY);
    if from.is_null() || (*from).code == 0 {
        return 0;
    }
    let f = &*from;
    to.write(virError {
        code: f.code,
        domain: f.domain,
        message: dup_c(f.message),
        level: f.level,
        str1: dup_c(f.str1),
        str2: dup_c(f.str2),
        str3: dup_c(f.str3),
        int1: f.int1,
        int2: f.int2,
        ..EMPTY
    });
    f.code
}

/// The thread's last error, or None when there is none.
pub(crate) fn current() -> Option<*mut virError> {
    slot().filter(|p| unsafe { (**p).code } != 0)
}

/// Empty the calling thread's last error (every public entry point does this).
pub(crate) fn reset_last() {
    if let Some(p) = slot() {
        unsafe { clear(p) }
    }
}

/// A connection's own last error (libvirt's `conn->err`): a copy of the
/// last error any thread raised on that connection, kept until the next one
/// or virConnResetLastError (a successful call does not reset it). Its
/// address is stable for the connection's life, as virConnGetLastError
/// hands it out.
pub(crate) struct ConnLastError {
    lock: Mutex<()>,
    err: UnsafeCell<virError>,
}

// SAFETY: `err` is only written under `lock`; its strings are malloc'ed and
// owned by it.
unsafe impl Send for ConnLastError {}
unsafe impl Sync for ConnLastError {}

impl ConnLastError {
    pub(crate) const fn new() -> ConnLastError {
        ConnLastError { lock: Mutex::new(()), err: UnsafeCell::new(EMPTY) }
    }

    /// `f` on the error, under the lock.
    pub(crate) fn with<T>(&self, f: impl FnOnce(*mut virError) -> T) -> T {
        let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        f(self.err.get())
    }

    /// The error's stable address (virConnGetLastError hands it out).
    pub(crate) fn as_ptr(&self) -> *mut virError {
        self.err.get()
    }
}

impl Drop for ConnLastError {
    fn drop(&mut self) {
        unsafe { clear(self.err.get()) }
    }
}

/// What a connection holds of the error machinery: its callback
/// (virConnSetErrorFunc) and its own last error.
pub struct ConnErrors {
    pub(crate) handler: Mutex<Option<Handler>>,
    pub(crate) last: ConnLastError,
}

impl ConnErrors {
    pub(crate) const fn new() -> ConnErrors {
        ConnErrors { handler: Mutex::new(None), last: ConnLastError::new() }
    }

    pub(crate) fn set_handler(&self, h: Option<Handler>) {
        *self.handler.lock().unwrap_or_else(|e| e.into_inner()) = h;
    }

    fn handler(&self) -> Option<Handler> {
        *self.handler.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Something an error can be raised on: a connection (directly, or through
/// one of its devices). The boundary holds the target of a call as this
/// trait, so that it sits below the connection type.
pub trait ErrorTarget: Send + Sync {
    fn errors(&self) -> &ConnErrors;
}

/// Make `r` the calling thread's last error (and the target connection's,
/// as libvirt's virDispatchError copies it), then hand it to the
/// connection's handler, else the global one, else the default one.
pub(crate) fn raise(target: Option<&ConnErrors>, r: &Raised) {
    let Some(p) = slot() else { return };
    let text = r.message.replace('\0', "\\0");
    let msg = malloc_str(&text);
    unsafe {
        clear(p);
        p.write(virError {
            code: r.code,
            domain: r.domain,
            message: msg,
            level: virErrorLevel::VIR_ERR_ERROR,
            str1: dup_c(msg),
            int1: -1,
            int2: -1,
            ..EMPTY
        });
    }
    if let Some(c) = target {
        c.last.with(|to| unsafe {
            clear(to);
            copy(p, to);
        });
    }
    let handler =
        target.and_then(ConnErrors::handler).or_else(|| *GLOBAL_HANDLER.lock().unwrap_or_else(|e| e.into_inner()));
    match handler {
        Some(h) => unsafe { (h.func)(h.data, p) },
        None => {
            if crate::debug::enabled() {
                print_error(p);
            }
        }
    }
}

/// The default handler's output: `nodedev: MESSAGE` on stderr (nothing for
/// NULL or an empty error).
pub(crate) fn print_error(err: *const virError) {
    use std::io::Write;
    if err.is_null() || unsafe { (*err).code } == 0 {
        return;
    }
    let msg: *const c_char = unsafe { (*err).message };
    let text = if msg.is_null() { "unknown error".into() } else { unsafe { CStr::from_ptr(msg) }.to_string_lossy() };
    let _ = writeln!(std::io::stderr(), "nodedev: {text}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capi::virterror::{virErrorDomain, virErrorNumber};
    use std::ptr;

    fn raised(msg: &str) -> Raised {
        Raised::new(virErrorNumber::VIR_ERR_INVALID_ARG, virErrorDomain::VIR_FROM_NODEDEV, msg.to_string())
    }

    #[test]
    fn a_raised_error_becomes_the_threads_and_the_connections_last_error() {
        let conn = ConnErrors::new();
        raise(Some(&conn), &raised("first"));
        let p = current().expect("the thread has a last error");
        let msg = |e: *const virError| unsafe { CStr::from_ptr((*e).message) }.to_str().unwrap().to_string();
        assert_eq!(unsafe { (*p).code }, 8);
        assert_eq!(msg(p), "first");
        assert_eq!(msg(conn.last.as_ptr()), "first");
        // A NUL in a message cannot reach C unseen.
        raise(None, &raised("a\0b"));
        assert_eq!(msg(current().unwrap()), "a\\0b");
        assert_eq!(msg(conn.last.as_ptr()), "first", "an error without a connection leaves the connection's");
        reset_last();
        assert!(current().is_none());
    }

    #[test]
    fn a_copy_owns_its_strings_and_an_empty_error_copies_as_empty() {
        raise(None, &raised("kept"));
        let mut to = EMPTY;
        assert_eq!(unsafe { copy(current().unwrap(), &mut to) }, 8);
        reset_last();
        assert_eq!(unsafe { CStr::from_ptr(to.message) }.to_str().unwrap(), "kept");
        unsafe { clear(&mut to) };
        assert!(to.message.is_null() && to.str1.is_null());
        assert_eq!(unsafe { copy(ptr::null(), &mut to) }, 0);
        assert_eq!(to.code, 0);
    }

    #[test]
    fn the_connections_callback_comes_before_the_global_one() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static CONN_CALLS: AtomicUsize = AtomicUsize::new(0);
        unsafe extern "C" fn on_conn(data: *mut c_void, err: virErrorPtr) {
            assert_eq!((*err).code, 8);
            (*(data as *const AtomicUsize)).fetch_add(1, Ordering::SeqCst);
        }
        let conn = ConnErrors::new();
        conn.set_handler(Handler::new(Some(on_conn), &CONN_CALLS as *const AtomicUsize as *mut c_void));
        raise(Some(&conn), &raised("to the connection's callback"));
        assert_eq!(CONN_CALLS.load(Ordering::SeqCst), 1);
        conn.set_handler(None);
        raise(Some(&conn), &raised("to the default handler"));
        assert_eq!(CONN_CALLS.load(Ordering::SeqCst), 1);
        reset_last();
    }
}
