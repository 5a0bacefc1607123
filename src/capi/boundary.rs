//! The one panic boundary every exported function runs in, and the small
//! conversions at the edge: C strings in, malloc'ed strings out, flags checks.
//!
//! `api` is for every public call (it resets the thread's last error on
//! entry, as libvirt's public entry points do); `api_keep_error` is for the
//! virGetLastError family, which must not. Both catch a panic and turn it
//! into the failure value plus VIR_ERR_INTERNAL_ERROR, so no unwinding ever
//! crosses into C.

use super::connect::virConnect;
use super::error::{self, virErrorDomain, virErrorNumber};
use std::any::Any;
use std::ffi::{c_char, c_int, c_uint, CStr};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

/// An error on its way to the caller: libvirt's code and domain, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    pub code: c_int,
    pub domain: c_int,
    pub message: String,
}

impl Raised {
    pub fn new(code: virErrorNumber, domain: virErrorDomain, message: String) -> Raised {
        Raised { code: code as c_int, domain: domain as c_int, message }
    }
}

impl From<crate::Error> for Raised {
    fn from(e: crate::Error) -> Raised {
        Raised { code: e.code(), domain: e.domain(), message: e.message() }
    }
}

/// What an exported function is doing: its name (for messages), the error
/// domain of its own argument errors, and the connection whose error
/// callback applies once a handle argument has been checked.
pub struct Call {
    pub func: &'static str,
    pub domain: virErrorDomain,
    pub conn: Option<Arc<virConnect>>,
}

impl Call {
    /// VIR_ERR_INVALID_ARG in this call's domain, the message prefixed with the function name.
    pub fn invalid_arg(&self, what: impl std::fmt::Display) -> Raised {
        Raised::new(virErrorNumber::VIR_ERR_INVALID_ARG, self.domain, format!("{}: {what}", self.func))
    }

    /// Refuse any bit of `flags` outside `allowed`.
    pub fn check_flags(&self, flags: c_uint, allowed: c_uint) -> Result<(), Raised> {
        let unknown = flags & !allowed;
        if unknown != 0 {
            return Err(self.invalid_arg(format_args!("unsupported flags (0x{unknown:x})")));
        }
        Ok(())
    }

    /// A C string argument that may be NULL.
    ///
    /// # Safety
    /// `p` is NULL or a NUL-terminated string that outlives the call.
    pub unsafe fn opt_str<'a>(&self, arg: &str, p: *const c_char) -> Result<Option<&'a str>, Raised> {
        if p.is_null() {
            return Ok(None);
        }
        CStr::from_ptr(p).to_str().map(Some).map_err(|_| self.invalid_arg(format_args!("{arg} is not valid UTF-8")))
    }

    /// A C string argument that must not be NULL.
    ///
    /// # Safety
    /// As for [`Call::opt_str`].
    pub unsafe fn req_str<'a>(&self, arg: &str, p: *const c_char) -> Result<&'a str, Raised> {
        self.opt_str(arg, p)?.ok_or_else(|| self.invalid_arg(format_args!("{arg} must not be NULL")))
    }

    /// A malloc'ed copy of `s` for the caller to free() (VIR_ERR_NO_MEMORY if malloc fails).
    pub fn dup(&self, s: &str) -> Result<*mut c_char, Raised> {
        let p = malloc_str(s);
        if p.is_null() {
            return Err(Raised::new(
                virErrorNumber::VIR_ERR_NO_MEMORY,
                self.domain,
                format!("{}: out of memory", self.func),
            ));
        }
        Ok(p)
    }
}

/// malloc'ed, NUL-terminated copy of `s` (an interior NUL ends the string
/// early, as C would read it); NULL when malloc fails.
pub(crate) fn malloc_str(s: &str) -> *mut c_char {
    let bytes = s.as_bytes();
    let len = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    unsafe {
        let p = libc::malloc(len + 1) as *mut u8;
        if !p.is_null() {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, len);
            *p.add(len) = 0;
        }
        p.cast()
    }
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

fn run<T>(
    func: &'static str,
    domain: virErrorDomain,
    fail: T,
    reset: bool,
    body: impl FnOnce(&mut Call) -> Result<T, Raised>,
) -> T {
    let mut call = Call { func, domain, conn: None };
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        if reset {
            error::reset_last();
        }
        body(&mut call)
    }));
    let raised = match outcome {
        Ok(Ok(value)) => return value,
        Ok(Err(raised)) => raised,
        Err(payload) => {
            let text = panic_text(payload.as_ref());
            // A payload whose drop panics must not escape either.
            let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
            Raised::new(
                virErrorNumber::VIR_ERR_INTERNAL_ERROR,
                domain,
                format!("{func}: internal error: {text} (a bug in nodedev; please report it)"),
            )
        }
    };
    let _ = panic::catch_unwind(AssertUnwindSafe(|| error::raise(call.conn.as_deref(), &raised)));
    let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(call)));
    fail
}

/// Run the body of public function `func`: reset the thread's last error,
/// run `body`; on `Err` or a panic set the last error, dispatch it to the
/// error callbacks and return `fail`.
pub fn api<T>(
    func: &'static str,
    domain: virErrorDomain,
    fail: T,
    body: impl FnOnce(&mut Call) -> Result<T, Raised>,
) -> T {
    run(func, domain, fail, true, body)
}

/// Like [`api`], without resetting the last error: for the virGetLastError family.
pub fn api_keep_error<T>(func: &'static str, fail: T, body: impl FnOnce(&mut Call) -> Result<T, Raised>) -> T {
    run(func, virErrorDomain::VIR_FROM_NONE, fail, false, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let r = api("virTest", virErrorDomain::VIR_FROM_NODEDEV, -1, |_| -> Result<c_int, Raised> { panic!("boom") });
        assert_eq!(r, -1);
        assert_eq!(super::super::error::virGetLastErrorCode(), virErrorNumber::VIR_ERR_INTERNAL_ERROR as c_int);
        let msg = unsafe { CStr::from_ptr(super::super::error::virGetLastErrorMessage()) }.to_str().unwrap();
        assert!(msg.contains("virTest") && msg.contains("boom"), "{msg}");
        assert_eq!(api("virTest", virErrorDomain::VIR_FROM_NODEDEV, -1, |_| Ok(3)), 3);
        assert_eq!(super::super::error::virGetLastErrorCode(), 0);
    }

    #[test]
    fn flags_outside_the_allowed_set_are_named() {
        let call = Call { func: "virX", domain: virErrorDomain::VIR_FROM_NODEDEV, conn: None };
        assert!(call.check_flags(2, 3).is_ok());
        let e = call.check_flags(6, 3).unwrap_err();
        assert_eq!(e.message, "virX: unsupported flags (0x4)");
        assert_eq!(e.code, 8);
    }
}
