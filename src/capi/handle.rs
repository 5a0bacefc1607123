//! C handles (`virConnectPtr`, `virNodeDevicePtr`): one way to check a
//! handle argument, to add a reference (virXRef) and to release one
//! (virConnectClose, virNodeDeviceFree), for every kind of handle.
//!
//! A handle is an `Arc<T>` handed to C with `Arc::into_raw`; each reference
//! C holds is one strong count. Its first check is a [`Tag`]: a number
//! that only a live handle of kind `T` holds, overwritten ("poisoned") when
//! the handle is dropped.
//!
//! What the tag check can and cannot tell (the header says the same to C):
//! - NULL: always refused (the kind's "invalid handle" error).
//! - A pointer to a handle of another kind, or to memory that never was a
//!   handle: refused, unless that memory happens to hold this kind's number.
//! - A handle whose last reference was released: refused while its freed
//!   memory has not been handed out again, because the poison write is
//!   volatile and so kept by the optimiser even though free() follows it.
//!   Reading freed memory is itself undefined behaviour, which this check
//!   cannot make defined: it is a diagnostic for a caller's bug, not a
//!   guarantee. Once the allocator reuses the memory, the pointer reads
//!   whatever is there now: a new handle of the same kind at the same
//!   address is taken for it, and memory returned to the system faults.
//!   Tools that track freed memory (valgrind, AddressSanitizer) report the
//!   read.

use super::boundary::{Call, Raised};
use super::last_error::ErrorTarget;
use super::virterror::virErrorNumber;
use std::ffi::c_int;
use std::ptr;
use std::sync::Arc;

/// The number a handle's [`Tag`] holds once the handle is dropped ("freedhdl").
pub const POISON: u64 = u64::from_be_bytes(*b"freedhdl");

/// The first check of a handle: a number only a live handle of its kind holds.
#[repr(transparent)]
pub struct Tag(u64);

impl Tag {
    pub const fn new(live: u64) -> Tag {
        Tag(live)
    }

    /// Overwrite the number: the handle is dying. Volatile, so the write is
    /// made even though nothing in this program reads the memory before it
    /// is freed (a plain store there is a dead store the optimiser may drop,
    /// which would leave a freed handle looking live).
    pub fn poison(&mut self) {
        // SAFETY: `self.0` is a valid, aligned u64 we hold exclusively.
        unsafe { ptr::write_volatile(&mut self.0, POISON) }
    }

    /// The number at `p`, read as memory the compiler knows nothing about.
    ///
    /// # Safety
    /// `p` is readable (see the module's note on freed handles).
    unsafe fn read(p: *const Tag) -> u64 {
        ptr::read_volatile(p as *const u64)
    }
}

impl Drop for Tag {
    fn drop(&mut self) {
        self.poison();
    }
}

/// A kind of C handle.
pub trait Handle: Send + Sync + Sized + 'static {
    /// What this kind's [`Tag`] holds while a handle is live.
    const LIVE: u64;
    /// The error for a bad handle of this kind (VIR_ERR_INVALID_CONN, ...).
    const INVALID: virErrorNumber;
    /// The argument as messages name it: "connection pointer conn".
    const ARG: &'static str;
    /// What a non-NULL bad pointer is called: "not an open connection".
    const NOT_LIVE: &'static str;

    /// Where the tag of the handle at `p` lies (computed without reading it).
    ///
    /// # Safety
    /// `p` is not NULL.
    unsafe fn tag_of(p: *const Self) -> *const Tag;

    /// The connection whose error callback applies to calls on this handle.
    fn error_target(this: &Arc<Self>) -> Arc<dyn ErrorTarget>;
}

/// `p` as a live handle, without raising any error (for calls that must
/// not raise, such as the virGetLastError family).
///
/// # Safety
/// `p` is NULL or a pointer C got from this library (see the module's note).
pub unsafe fn peek<'a, T: Handle>(p: *const T) -> Option<&'a T> {
    if p.is_null() || Tag::read(T::tag_of(p)) != T::LIVE {
        None
    } else {
        Some(&*p)
    }
}

/// Check a handle argument: the kind's error when NULL or not a live handle.
/// Returns a new reference, and makes the handle's connection the one whose
/// error callback applies to the rest of the call.
///
/// # Safety
/// As for [`peek`].
pub unsafe fn arg<T: Handle>(call: &mut Call, p: *mut T) -> Result<Arc<T>, Raised> {
    if peek(p).is_none() {
        let what = if p.is_null() { "NULL" } else { T::NOT_LIVE };
        return Err(Raised::new(T::INVALID, call.domain, format!("{}: invalid {} ({what})", call.func, T::ARG)));
    }
    Arc::increment_strong_count(p as *const T);
    let handle = Arc::from_raw(p as *const T);
    call.conn = Some(T::error_target(&handle));
    Ok(handle)
}

/// virXRef: one more reference to the handle, released by one more release.
///
/// # Safety
/// As for [`peek`].
pub unsafe fn add_ref<T: Handle>(call: &mut Call, p: *mut T) -> Result<c_int, Raised> {
    arg(call, p)?;
    Arc::increment_strong_count(p as *const T);
    Ok(0)
}

/// virXFree / virConnectClose: release one reference C holds. Returns how
/// many remain (0: the handle is gone and `p` must not be used again).
///
/// # Safety
/// As for [`peek`]; the caller gives up one reference.
pub unsafe fn release<T: Handle>(call: &mut Call, p: *mut T) -> Result<usize, Raised> {
    drop(arg(call, p)?);
    // The handle (and with a device, its connection) may go with this
    // reference: the call must hold none of its own.
    call.conn = None;
    let handle = Arc::from_raw(p as *const T);
    let remaining = Arc::strong_count(&handle) - 1;
    drop(handle);
    Ok(remaining)
}

/// A new handle for C, holding one reference.
pub fn into_raw<T: Handle>(handle: Arc<T>) -> *mut T {
    Arc::into_raw(handle) as *mut T
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capi::last_error::{self, ConnErrors};
    use crate::capi::virterror::virErrorDomain;
    use std::mem::MaybeUninit;

    struct Thing {
        tag: Tag,
        errors: Arc<Errors>,
    }

    struct Errors(ConnErrors);

    impl ErrorTarget for Errors {
        fn errors(&self) -> &ConnErrors {
            &self.0
        }
    }

    impl Handle for Thing {
        const LIVE: u64 = u64::from_be_bytes(*b"testthng");
        const INVALID: virErrorNumber = virErrorNumber::VIR_ERR_INVALID_ARG;
        const ARG: &'static str = "thing pointer t";
        const NOT_LIVE: &'static str = "not a live thing";
        unsafe fn tag_of(p: *const Self) -> *const Tag {
            ptr::addr_of!((*p).tag)
        }
        fn error_target(this: &Arc<Self>) -> Arc<dyn ErrorTarget> {
            this.errors.clone()
        }
    }

    fn thing() -> Arc<Thing> {
        Arc::new(Thing { tag: Tag::new(Thing::LIVE), errors: Arc::new(Errors(ConnErrors::new())) })
    }

    fn call() -> Call {
        Call { func: "virThing", domain: virErrorDomain::VIR_FROM_NODEDEV, conn: None }
    }

    #[test]
    fn references_are_counted_and_the_last_release_frees() {
        let p = into_raw(thing());
        let mut c = call();
        unsafe {
            assert_eq!(add_ref(&mut c, p), Ok(0));
            assert!(c.conn.is_some(), "the handle's connection takes the call's errors");
            assert_eq!(release(&mut c, p), Ok(1));
            assert!(c.conn.is_none());
            assert!(peek(p).is_some());
            assert_eq!(release(&mut c, p), Ok(0));
        }
        // Under Miri, a leaked or doubly freed handle fails the run here.
    }

    #[test]
    fn null_and_foreign_pointers_are_refused_with_the_kinds_error() {
        let mut c = call();
        let e = unsafe { arg::<Thing>(&mut c, ptr::null_mut()) }.map(drop).unwrap_err();
        assert_eq!(e.code, virErrorNumber::VIR_ERR_INVALID_ARG as c_int);
        assert_eq!(e.message, "virThing: invalid thing pointer t (NULL)");
        // Memory that is no handle of this kind (here: one with another tag).
        let other = Arc::new(Thing { tag: Tag::new(1), errors: Arc::new(Errors(ConnErrors::new())) });
        let p = Arc::as_ptr(&other) as *mut Thing;
        let e = unsafe { arg::<Thing>(&mut c, p) }.map(drop).unwrap_err();
        assert_eq!(e.message, "virThing: invalid thing pointer t (not a live thing)");
        assert_eq!(Arc::strong_count(&other), 1, "a refused handle gains no reference");
        last_error::reset_last();
    }

    #[test]
    fn dropping_a_handle_poisons_its_tag() {
        // Dropped in place, in memory this test still owns, so reading the
        // tag afterwards is defined (also under Miri).
        let mut slot =
            MaybeUninit::new(Thing { tag: Tag::new(Thing::LIVE), errors: Arc::new(Errors(ConnErrors::new())) });
        let p = slot.as_mut_ptr();
        unsafe {
            assert!(peek(p).is_some());
            ptr::drop_in_place(p);
            assert_eq!(Tag::read(Thing::tag_of(p)), POISON);
            assert!(peek(p).is_none(), "a dropped handle is not live");
        }
    }
}
