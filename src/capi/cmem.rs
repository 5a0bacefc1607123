//! Memory handed to C: malloc'ed strings and arrays that the caller releases
//! with free(). A leaf of `capi/` (no other module of it): every function
//! here reports a failed allocation by a NULL / `None`, never by a panic or
//! an abort, and an array is built all or nothing, so a caller never gets a
//! half-filled array or leaks the strings stored before the failure. Turning
//! that NULL into VIR_ERR_NO_MEMORY is the call boundary's job
//! (`Call::no_memory` and the `Call` wrappers around these functions).

use std::ffi::c_char;
use std::mem::size_of;
use std::ptr;

/// malloc'ed, NUL-terminated copy of `s` (an interior NUL ends the string
/// early, as C would read it); NULL when malloc fails.
pub(crate) fn malloc_str(s: &str) -> *mut c_char {
    let bytes = s.as_bytes();
    let len = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    // SAFETY: `p` has room for `len` bytes and the NUL.
    unsafe {
        let p = libc::malloc(len + 1) as *mut u8;
        if !p.is_null() {
            ptr::copy_nonoverlapping(bytes.as_ptr(), p, len);
            *p.add(len) = 0;
        }
        p.cast()
    }
}

/// malloc'ed copy of a C string; NULL stays NULL, and so does a failed malloc.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string.
pub(crate) unsafe fn dup_c(p: *const c_char) -> *mut c_char {
    if p.is_null() {
        return ptr::null_mut();
    }
    // strdup, written out: the same result, and Miri can follow it.
    let bytes = std::ffi::CStr::from_ptr(p).to_bytes_with_nul();
    let q = libc::malloc(bytes.len()) as *mut u8;
    if !q.is_null() {
        ptr::copy_nonoverlapping(bytes.as_ptr(), q, bytes.len());
    }
    q.cast()
}

/// free() a string from this module (NULL is ignored).
///
/// # Safety
/// `p` is NULL or was allocated with malloc and is not used again.
pub(crate) unsafe fn free_str(p: *mut c_char) {
    if !p.is_null() {
        libc::free(p.cast());
    }
}

/// A zeroed malloc'ed array of `n` elements plus one more, the terminating
/// NULL (all-zero) slot; NULL when calloc fails or `n + 1` elements do not fit.
pub(crate) fn calloc_terminated<T>(n: usize) -> *mut T {
    match n.checked_add(1) {
        // SAFETY: calloc checks the multiplication itself.
        Some(slots) => unsafe { libc::calloc(slots, size_of::<T>().max(1)) as *mut T },
        None => ptr::null_mut(),
    }
}

/// Store malloc'ed copies of `items` in `dst[0..items.len()]`, all or
/// nothing: when an allocation fails, the copies already stored are freed,
/// their slots set back to NULL, and false returned.
///
/// # Safety
/// `dst` points to at least `items.len()` writable pointers.
pub(crate) unsafe fn fill_strings<S: AsRef<str>>(dst: *mut *mut c_char, items: &[S]) -> bool {
    fill_strings_with(dst, items, malloc_str)
}

/// [`fill_strings`] with the allocation given (tests make it fail).
unsafe fn fill_strings_with<S: AsRef<str>>(
    dst: *mut *mut c_char,
    items: &[S],
    mut alloc: impl FnMut(&str) -> *mut c_char,
) -> bool {
    for (i, item) in items.iter().enumerate() {
        let p = alloc(item.as_ref());
        if p.is_null() {
            for j in 0..i {
                free_str(*dst.add(j));
                *dst.add(j) = ptr::null_mut();
            }
            return false;
        }
        *dst.add(i) = p;
    }
    true
}

/// A malloc'ed, NULL-terminated array of malloc'ed copies of `items`, all or
/// nothing (None when any allocation fails; nothing is left allocated). The
/// caller frees each string and the array with free().
pub(crate) fn string_array<S: AsRef<str>>(items: &[S]) -> Option<*mut *mut c_char> {
    string_array_with(items, malloc_str)
}

fn string_array_with<S: AsRef<str>>(items: &[S], alloc: impl FnMut(&str) -> *mut c_char) -> Option<*mut *mut c_char> {
    let array = calloc_terminated::<*mut c_char>(items.len());
    if array.is_null() {
        return None;
    }
    // SAFETY: `array` has items.len() + 1 slots.
    unsafe {
        if !fill_strings_with(array, items, alloc) {
            libc::free(array.cast());
            return None;
        }
    }
    Some(array)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    /// Frees a NULL-terminated array of strings and returns its contents.
    unsafe fn take_array(array: *mut *mut c_char) -> Vec<String> {
        let mut out = Vec::new();
        let mut i = 0;
        while !(*array.add(i)).is_null() {
            out.push(CStr::from_ptr(*array.add(i)).to_str().unwrap().to_string());
            free_str(*array.add(i));
            i += 1;
        }
        libc::free(array.cast());
        out
    }

    /// An allocator that fails from its `fail_at`-th call on.
    fn failing_at(fail_at: usize) -> impl FnMut(&str) -> *mut c_char {
        let mut calls = 0;
        move |s| {
            calls += 1;
            if calls >= fail_at {
                ptr::null_mut()
            } else {
                malloc_str(s)
            }
        }
    }

    #[test]
    fn a_string_is_copied_up_to_its_first_nul() {
        let p = malloc_str("ab\0cd");
        assert_eq!(unsafe { CStr::from_ptr(p) }.to_bytes(), b"ab");
        let q = unsafe { dup_c(p) };
        assert_ne!(p, q);
        assert_eq!(unsafe { CStr::from_ptr(q) }.to_bytes(), b"ab");
        unsafe {
            free_str(p);
            free_str(q);
            free_str(ptr::null_mut());
            assert!(dup_c(ptr::null()).is_null());
        }
    }

    #[test]
    fn a_string_array_is_null_terminated_and_complete() {
        let array = string_array(&["one", "two", "three"]).unwrap();
        assert_eq!(unsafe { take_array(array) }, ["one", "two", "three"]);
        let empty = string_array::<&str>(&[]).unwrap();
        assert!(unsafe { take_array(empty) }.is_empty());
    }

    // Under Miri, a string left allocated here fails the run as a leak: the
    // all-or-nothing promise is checked by the interpreter, not only by eye.
    #[test]
    fn an_array_whose_allocation_fails_midway_leaves_nothing_allocated() {
        for fail_at in 1..=3 {
            assert!(string_array_with(&["a", "b", "c"], failing_at(fail_at)).is_none(), "fail at {fail_at}");
        }
    }

    #[test]
    fn filling_a_callers_array_is_all_or_nothing() {
        let mut slots = [ptr::null_mut::<c_char>(); 3];
        let ok = unsafe { fill_strings_with(slots.as_mut_ptr(), &["x", "y", "z"], failing_at(3)) };
        assert!(!ok);
        assert!(slots.iter().all(|p| p.is_null()), "the stored copies are freed and their slots cleared");
        assert!(unsafe { fill_strings(slots.as_mut_ptr(), &["x", "y"]) });
        let got: Vec<String> =
            slots[..2].iter().map(|p| unsafe { CStr::from_ptr(*p) }.to_str().unwrap().to_string()).collect();
        assert_eq!(got, ["x", "y"]);
        assert!(slots[2].is_null());
        slots.iter().for_each(|p| unsafe { free_str(*p) });
    }

    #[test]
    fn an_impossible_array_size_is_a_null_not_a_panic() {
        // (A huge size that only calloc refuses is no test here: the
        // optimiser may assume an allocation whose pointer is only compared
        // with NULL succeeds, and drop the call.)
        assert!(calloc_terminated::<*mut c_char>(usize::MAX).is_null());
    }
}
