//! Data a caller hands over with a callback (`opaque`) and the function
//! that frees it (libvirt's virFreeCallback): called exactly once, when the
//! library lets go of the data. A leaf of `capi/`.

use std::ffi::c_void;

/// Frees a callback's opaque data (libvirt's virFreeCallback).
pub type virFreeCallback = Option<unsafe extern "C" fn(opaque: *mut c_void)>;

/// A caller's `opaque` pointer and its `freecb`, which runs when this is
/// dropped.
pub(crate) struct CallerData {
    opaque: *mut c_void,
    free: virFreeCallback,
}

// SAFETY: the library only hands `opaque` back to the caller's functions;
// the caller vouches for it being usable from any thread, as libvirt
// requires of callback data.
unsafe impl Send for CallerData {}
unsafe impl Sync for CallerData {}

impl CallerData {
    pub(crate) fn new(opaque: *mut c_void, free: virFreeCallback) -> CallerData {
        CallerData { opaque, free }
    }

    pub(crate) fn ptr(&self) -> *mut c_void {
        self.opaque
    }
}

impl Drop for CallerData {
    fn drop(&mut self) {
        if let Some(free) = self.free {
            // SAFETY: the caller gave `free` for this `opaque`.
            unsafe { free(self.opaque) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// How often `count_free` ran, with which data (the counter itself).
    static FREED: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn count_free(opaque: *mut c_void) {
        (*(opaque as *const AtomicUsize)).fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn the_free_function_runs_once_when_the_data_is_let_go() {
        let data = &FREED as *const AtomicUsize as *mut c_void;
        let d = CallerData::new(data, Some(count_free));
        assert_eq!(d.ptr(), data);
        assert_eq!(FREED.load(Ordering::SeqCst), 0);
        drop(d);
        assert_eq!(FREED.load(Ordering::SeqCst), 1);
        drop(CallerData::new(data, None));
        assert_eq!(FREED.load(Ordering::SeqCst), 1);
    }
}
