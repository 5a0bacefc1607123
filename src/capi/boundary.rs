//! The one panic boundary every exported function runs in, and the small
//! conversions at the edge: C strings in, malloc'ed strings and string
//! arrays out (out of memory as VIR_ERR_NO_MEMORY), flags checks. Above the
//! error layers (`virterror`, `raised`, `last_error`) and `cmem`; below the
//! handles and connections, which it knows only as an [`ErrorTarget`].
//!
//! `api` is for every public call (it resets the thread's last error on
//! entry, as libvirt's public entry points do); `api_keep_error` is for the
//! virGetLastError family, which must not. Both catch a panic and turn it
//! into the failure value plus VIR_ERR_INTERNAL_ERROR, so no unwinding ever
//! crosses into C.

use super::cmem;
use super::last_error::{self, ErrorTarget};
pub use super::raised::Raised;
use super::virterror::{virErrorDomain, virErrorNumber};
use std::any::Any;
use std::ffi::{c_char, c_int, c_uint, CStr};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

/// What an exported function is doing: its name (for messages), the error
/// domain of its own argument errors, and the connection whose error
/// callback applies once a handle argument has been checked (set by the
/// handle checks; a reference, so the connection outlives the raising).
pub struct Call {
    pub func: &'static str,
    pub domain: virErrorDomain,
    pub conn: Option<Arc<dyn ErrorTarget>>,
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

    /// VIR_ERR_NO_MEMORY in this call's domain: the one out-of-memory error.
    pub fn no_memory(&self) -> Raised {
        Raised::new(virErrorNumber::VIR_ERR_NO_MEMORY, self.domain, format!("{}: out of memory", self.func))
    }

    /// A malloc'ed copy of `s` for the caller to free() (VIR_ERR_NO_MEMORY if malloc fails).
    pub fn dup(&self, s: &str) -> Result<*mut c_char, Raised> {
        let p = cmem::malloc_str(s);
        if p.is_null() {
            return Err(self.no_memory());
        }
        Ok(p)
    }

    /// A `names`/`maxnames` argument pair (a caller-owned array for at most
    /// `maxnames` malloc'ed strings): `names` not NULL, `maxnames` not negative.
    pub fn names_arg(&self, names: *mut *mut c_char, maxnames: c_int) -> Result<usize, Raised> {
        if names.is_null() {
            return Err(self.invalid_arg("names must not be NULL"));
        }
        usize::try_from(maxnames)
            .map_err(|_| self.invalid_arg(format_args!("maxnames must not be negative ({maxnames})")))
    }

    /// Store malloc'ed copies of `items` in the caller's array `names`, all or
    /// nothing (VIR_ERR_NO_MEMORY, nothing stored). Returns their number.
    ///
    /// # Safety
    /// `names` points to at least `items.len()` writable pointers.
    pub unsafe fn store_names<S: AsRef<str>>(&self, names: *mut *mut c_char, items: &[S]) -> Result<c_int, Raised> {
        let n = c_int::try_from(items.len()).map_err(|_| self.no_memory())?;
        if !cmem::fill_strings(names, items) {
            return Err(self.no_memory());
        }
        Ok(n)
    }

    /// A malloc'ed, NULL-terminated array of malloc'ed copies of `items`, for
    /// the caller to free (each string, then the array), all or nothing
    /// (VIR_ERR_NO_MEMORY, nothing left allocated).
    pub fn string_array<S: AsRef<str>>(&self, items: &[S]) -> Result<*mut *mut c_char, Raised> {
        cmem::string_array(items).ok_or_else(|| self.no_memory())
    }

    /// A zeroed, malloc'ed array of `n` elements and a terminating NULL, for
    /// the caller to free (VIR_ERR_NO_MEMORY when it cannot be had).
    pub fn terminated_array<T>(&self, n: usize) -> Result<*mut T, Raised> {
        let p = cmem::calloc_terminated::<T>(n);
        if p.is_null() {
            return Err(self.no_memory());
        }
        Ok(p)
    }
}

/// Kept where code has found it: see [`cmem::malloc_str`].
#[allow(unused_imports)]
pub(crate) use super::cmem::malloc_str;

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
            last_error::reset_last();
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
    let _ =
        panic::catch_unwind(AssertUnwindSafe(|| last_error::raise(call.conn.as_deref().map(|c| c.errors()), &raised)));
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

    fn last_error_code() -> c_int {
        last_error::current().map_or(0, |p| unsafe { (*p).code })
    }

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let r = api("virTest", virErrorDomain::VIR_FROM_NODEDEV, -1, |_| -> Result<c_int, Raised> { panic!("boom") });
        assert_eq!(r, -1);
        assert_eq!(last_error_code(), virErrorNumber::VIR_ERR_INTERNAL_ERROR as c_int);
        let last = last_error::current().expect("a last error");
        let msg = unsafe { CStr::from_ptr((*last).message) }.to_str().unwrap();
        assert!(msg.contains("virTest") && msg.contains("boom"), "{msg}");
        assert_eq!(api("virTest", virErrorDomain::VIR_FROM_NODEDEV, -1, |_| Ok(3)), 3);
        assert_eq!(last_error_code(), 0);
    }

    #[test]
    fn string_results_and_their_argument_checks() {
        let call = Call { func: "virX", domain: virErrorDomain::VIR_FROM_NODEDEV, conn: None };
        assert_eq!(
            call.no_memory(),
            Raised::new(virErrorNumber::VIR_ERR_NO_MEMORY, call.domain, "virX: out of memory".into())
        );
        let mut slots = [std::ptr::null_mut::<c_char>(); 2];
        assert_eq!(call.names_arg(slots.as_mut_ptr(), 2), Ok(2));
        assert_eq!(call.names_arg(std::ptr::null_mut(), 2).unwrap_err().message, "virX: names must not be NULL");
        assert_eq!(
            call.names_arg(slots.as_mut_ptr(), -1).unwrap_err().message,
            "virX: maxnames must not be negative (-1)"
        );
        assert_eq!(unsafe { call.store_names(slots.as_mut_ptr(), &["a", "b"]) }, Ok(2));
        let read = |p: *mut c_char| unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string();
        assert_eq!([read(slots[0]), read(slots[1])], ["a", "b"]);
        let array = call.string_array(&["x"]).unwrap();
        assert_eq!(read(unsafe { *array }), "x");
        assert!(unsafe { *array.add(1) }.is_null());
        let handles = call.terminated_array::<*mut u8>(3).unwrap();
        assert!((0..4).all(|i| unsafe { *handles.add(i) }.is_null()));
        let too_many = call.terminated_array::<*mut u8>(usize::MAX).unwrap_err();
        assert_eq!(too_many.code, virErrorNumber::VIR_ERR_NO_MEMORY as c_int);
        unsafe {
            slots.iter().for_each(|p| libc::free(p.cast()));
            libc::free((*array).cast());
            libc::free(array.cast());
            libc::free(handles.cast());
        }
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
