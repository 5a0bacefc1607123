//! The freed-handle check (issue 14): a handle's tag is overwritten when the
//! handle goes, and the optimiser keeps that write even though free()
//! follows it. A global allocator looks at every block as it is freed and
//! counts those that still hold a live handle's tag; it also keeps freed
//! blocks allocated (a quarantine), so that passing a freed handle back to
//! the library reads memory that is still ours and the test is defined.

use nodedev::capi::connect::{virConnectClose, virConnectGetURI, virConnectOpen};
use nodedev::capi::error::{virGetLastErrorCode, virGetLastErrorMessage};
use nodedev::capi::handle::Handle;
use nodedev::capi::nodedev::{virConnectListAllNodeDevices, virNodeDeviceFree, virNodeDeviceGetName};
use nodedev::capi::{virConnect, virNodeDevice, virNodeDevicePtr};
use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::CStr;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Inspecting;

/// Freed blocks that still held a live connection's or device's tag.
static LIVE_TAGS_FREED: AtomicUsize = AtomicUsize::new(0);
/// While set, freed blocks are kept (never given back to the system allocator).
static QUARANTINE: AtomicBool = AtomicBool::new(false);

unsafe impl GlobalAlloc for Inspecting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if layout.align() >= 8 {
            let words = p as *const u64;
            for i in 0..layout.size() / 8 {
                let w = words.add(i).read();
                if w == <virConnect as Handle>::LIVE || w == <virNodeDevice as Handle>::LIVE {
                    LIVE_TAGS_FREED.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        if !QUARANTINE.load(Ordering::SeqCst) {
            System.dealloc(p, layout);
        }
    }
}

#[global_allocator]
static ALLOC: Inspecting = Inspecting;

fn last_message() -> String {
    unsafe { CStr::from_ptr(virGetLastErrorMessage()) }.to_string_lossy().into_owned()
}

#[test]
fn freed_handles_are_poisoned_before_free_and_then_refused() {
    QUARANTINE.store(true, Ordering::SeqCst);

    // The inspector itself sees a live tag in a freed block.
    drop(Box::new([0u64, <virConnect as Handle>::LIVE]));
    assert_eq!(LIVE_TAGS_FREED.swap(0, Ordering::SeqCst), 1, "the allocator's check works");

    unsafe {
        let conn = virConnectOpen(c"test:///default".as_ptr());
        assert!(!conn.is_null(), "{}", last_message());
        let mut devs: *mut virNodeDevicePtr = ptr::null_mut();
        let n = virConnectListAllNodeDevices(conn, &mut devs, 0);
        assert!(n > 0, "{}", last_message());
        let dev = *devs;
        for i in 1..n as usize {
            assert_eq!(virNodeDeviceFree(*devs.add(i)), 0);
        }
        libc::free(devs.cast());

        assert_eq!(virNodeDeviceFree(dev), 0);
        assert_eq!(LIVE_TAGS_FREED.load(Ordering::SeqCst), 0, "a device handle was freed with its live tag");
        assert!(virNodeDeviceGetName(dev).is_null(), "a freed device handle is refused");
        assert_eq!(virGetLastErrorCode(), 52, "VIR_ERR_INVALID_NODE_DEVICE: {}", last_message());
        assert!(last_message().contains("not a live device handle"), "{}", last_message());

        assert_eq!(virConnectClose(conn), 0, "the last reference: {}", last_message());
        assert_eq!(LIVE_TAGS_FREED.load(Ordering::SeqCst), 0, "a connection was freed with its live tag");
        assert!(virConnectGetURI(conn).is_null(), "a closed connection is refused");
        assert_eq!(virGetLastErrorCode(), 6, "VIR_ERR_INVALID_CONN: {}", last_message());
        assert!(last_message().contains("not an open connection"), "{}", last_message());
    }
}
