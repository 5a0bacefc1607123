//! libvirt's default event loop (libvirt-event.h) and node-device events
//! driven by it, on the simulated kernel. One test function: the loop is
//! one per process and its ids are process-wide.

use nodedev::capi::connect::{virConnectClose, virConnectOpen, virConnectPtr};
use nodedev::capi::error::virGetLastErrorCode;
use nodedev::capi::event_loop::*;
use nodedev::capi::node_device_events::*;
use nodedev::capi::nodedev::{virNodeDeviceGetName, virNodeDevicePtr};
use std::ffi::{c_int, c_void, CStr, CString};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const NIC: &str = "0000:03:01.0";
const PF: &str = "0000:04:00.0";

#[derive(Default)]
struct Log {
    lines: Vec<String>,
}

static LOG: Mutex<Log> = Mutex::new(Log { lines: Vec::new() });

fn log(s: String) {
    LOG.lock().unwrap().lines.push(s);
}

fn take() -> Vec<String> {
    std::mem::take(&mut LOG.lock().unwrap().lines)
}

unsafe extern "C" fn on_fd(watch: c_int, fd: c_int, events: c_int, _o: *mut c_void) {
    let mut b = [0u8; 64];
    libc::read(fd, b.as_mut_ptr().cast(), b.len());
    log(format!("fd watch={watch} events={events}"));
}

unsafe extern "C" fn on_fd_remove_self(watch: c_int, _fd: c_int, _events: c_int, _o: *mut c_void) {
    log(format!("fd-self watch={watch}"));
    assert_eq!(virEventRemoveHandle(watch), 0);
    assert_eq!(virEventRemoveHandle(watch), -1, "removed once");
}

unsafe extern "C" fn on_timer(timer: c_int, _o: *mut c_void) {
    log(format!("timer {timer}"));
}

unsafe extern "C" fn on_timer_remove_self(timer: c_int, _o: *mut c_void) {
    log(format!("timer-self {timer}"));
    assert_eq!(virEventRemoveTimeout(timer), 0);
}

unsafe extern "C" fn freed(o: *mut c_void) {
    log(format!("free {}", o as usize));
}

unsafe extern "C" fn dummy_add(
    _: c_int,
    _: c_int,
    _: virEventHandleCallback,
    _: *mut c_void,
    _: nodedev::capi::virFreeCallback,
) -> c_int {
    -7
}

fn run() {
    assert_eq!(unsafe { virEventRunDefaultImpl() }, 0);
}

fn pipe() -> (c_int, c_int) {
    let mut p = [0; 2];
    assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    (p[0], p[1])
}

/// Thread of each node-device callback, and what it got.
static EVENTS: Mutex<Vec<(std::thread::ThreadId, String, c_int)>> = Mutex::new(Vec::new());

unsafe extern "C" fn on_lifecycle(_c: virConnectPtr, dev: virNodeDevicePtr, event: c_int, _d: c_int, _o: *mut c_void) {
    let name = CStr::from_ptr(virNodeDeviceGetName(dev)).to_string_lossy().into_owned();
    EVENTS.lock().unwrap().push((std::thread::current().id(), name, event));
}

unsafe extern "C" fn on_update(_c: virConnectPtr, dev: virNodeDevicePtr, _o: *mut c_void) {
    let name = CStr::from_ptr(virNodeDeviceGetName(dev)).to_string_lossy().into_owned();
    EVENTS.lock().unwrap().push((std::thread::current().id(), name, -1));
}

fn foreign_write(path: &str, value: &str) {
    let (host, _) = nodedev::uri::open(Some("test:///default"), false).unwrap();
    host.sysfs().write(path, value).unwrap();
}

/// Run the loop until `done` holds or `limit` passes (a 50 ms timer keeps it from sleeping for ever).
fn run_until(limit: Duration, done: impl Fn() -> bool) {
    let t = unsafe { virEventAddTimeout(50, Some(on_timer), std::ptr::null_mut(), None) };
    let start = Instant::now();
    while !done() && start.elapsed() < limit {
        run();
    }
    unsafe { virEventRemoveTimeout(t) };
    run_quiet();
}

/// One iteration that ends at once (a 0 ms timer), so the loop purges what
/// was removed before (free functions run from the loop); the log dropped.
fn run_quiet() {
    let t = unsafe { virEventAddTimeout(0, Some(on_timer), std::ptr::null_mut(), None) };
    run();
    unsafe { virEventRemoveTimeout(t) };
    take();
}

#[test]
fn the_default_loop_and_node_device_events_on_it() {
    unsafe {
        // Nothing registered yet.
        assert_eq!(virEventAddHandle(0, 1, Some(on_fd), std::ptr::null_mut(), None), -1);
        assert_eq!(virEventAddTimeout(10, Some(on_timer), std::ptr::null_mut(), None), -1);
        assert_eq!(virEventRemoveHandle(1), -1);
        assert_eq!(virEventRunDefaultImpl(), -1);
        assert_eq!(virGetLastErrorCode(), 1);

        assert_eq!(virEventRegisterDefaultImpl(), 0);
        // Another implementation registered later is ignored, as in libvirt.
        virEventRegisterImpl(Some(dummy_add), None, None, None, None, None);

        // Watches: ids from 1; a readable pipe dispatches with READABLE.
        let (r, w) = pipe();
        let watch = virEventAddHandle(r, 1, Some(on_fd), 11 as *mut c_void, Some(freed));
        assert_eq!(watch, 1);
        libc::write(w, b"x".as_ptr().cast(), 1);
        run();
        assert_eq!(take(), [format!("fd watch={watch} events=1")]);
        // Events 0: disabled (a timer makes the iteration end).
        virEventUpdateHandle(watch, 0);
        libc::write(w, b"x".as_ptr().cast(), 1);
        let t = virEventAddTimeout(20, Some(on_timer), 21 as *mut c_void, Some(freed));
        assert_eq!(t, 1, "timer ids count from 1 too");
        run();
        assert_eq!(take(), [format!("timer {t}")]);
        virEventUpdateHandle(watch, 1);
        run();
        assert_eq!(take(), [format!("fd watch={watch} events=1")]);
        // Timer -1: disabled; 0: every iteration.
        virEventUpdateTimeout(t, -1);
        let t0 = virEventAddTimeout(0, Some(on_timer), std::ptr::null_mut(), None);
        run();
        run();
        assert_eq!(take(), [format!("timer {t0}"), format!("timer {t0}")]);
        assert_eq!(virEventRemoveTimeout(t0), 0);
        assert_eq!(virEventRemoveTimeout(t0), -1);
        // A hang-up is reported though never asked for.
        libc::close(w);
        run();
        let got = take();
        assert!(
            got.iter().any(|l| l.starts_with(&format!("fd watch={watch} events=")) && {
                let e: c_int = l.rsplit('=').next().unwrap().parse().unwrap();
                e & 8 != 0
            }),
            "{got:?}"
        );
        // Removal: the free function runs from the loop, after.
        assert_eq!(virEventRemoveHandle(watch), 0);
        assert_eq!(virEventRemoveTimeout(t), 0);
        assert!(take().is_empty(), "ff not called inside Remove");
        run_quiet_keep(&["free 11", "free 21"]);
        libc::close(r);

        // Removal from inside the callback.
        let (r, w) = pipe();
        let ws = virEventAddHandle(r, 1, Some(on_fd_remove_self), 12 as *mut c_void, Some(freed));
        libc::write(w, b"x".as_ptr().cast(), 1);
        run();
        let got = take();
        assert_eq!(got, [format!("fd-self watch={ws}"), "free 12".to_string()]);
        let ts = virEventAddTimeout(0, Some(on_timer_remove_self), 13 as *mut c_void, Some(freed));
        run();
        assert_eq!(take(), [format!("timer-self {ts}"), "free 13".to_string()]);
        libc::close(r);
        libc::close(w);

        // A periodic timer's period is honoured, and the loop sleeps meanwhile.
        let tp = virEventAddTimeout(100, Some(on_timer), std::ptr::null_mut(), None);
        let start = Instant::now();
        run();
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(95) && took < Duration::from_millis(1000), "{took:?}");
        assert_eq!(take(), [format!("timer {tp}")]);
        virEventRemoveTimeout(tp);
        run_quiet();

        // A watch added from another thread wakes the sleeping loop.
        let (r, w) = pipe();
        let adder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let id = virEventAddHandle(r, 1, Some(on_fd), std::ptr::null_mut(), None);
            libc::write(w, b"x".as_ptr().cast(), 1);
            id
        });
        let guard = virEventAddTimeout(5000, Some(on_timer), std::ptr::null_mut(), None);
        let start = Instant::now();
        while !LOG.lock().unwrap().lines.iter().any(|l| l.starts_with("fd ")) {
            run();
        }
        assert!(start.elapsed() < Duration::from_millis(2000));
        let id = adder.join().unwrap();
        virEventRemoveHandle(id);
        virEventRemoveTimeout(guard);
        run_quiet();
        libc::close(r);
        libc::close(w);

        // ---- Node-device events through the loop.
        let uri = CString::new("test:///default").unwrap();
        let c = virConnectOpen(uri.as_ptr());
        let lifecycle: virConnectNodeDeviceEventGenericCallback = Some(std::mem::transmute::<
            unsafe extern "C" fn(virConnectPtr, virNodeDevicePtr, c_int, c_int, *mut c_void),
            unsafe extern "C" fn(virConnectPtr, virNodeDevicePtr, *mut c_void),
        >(on_lifecycle));
        let l =
            virConnectNodeDeviceEventRegisterAny(c, std::ptr::null_mut(), 0, lifecycle, 31 as *mut c_void, Some(freed));
        let u = virConnectNodeDeviceEventRegisterAny(
            c,
            std::ptr::null_mut(),
            1,
            Some(on_update),
            32 as *mut c_void,
            Some(freed),
        );
        assert_eq!((l, u), (0, 1));
        // Idle: with callbacks registered and no kernel event, an iteration
        // ends only by the guard timer, with nothing dispatched.
        let guard = virEventAddTimeout(150, Some(on_timer), std::ptr::null_mut(), None);
        let start = Instant::now();
        run();
        assert!(start.elapsed() >= Duration::from_millis(140));
        assert_eq!(take(), [format!("timer {guard}")]);
        assert!(EVENTS.lock().unwrap().is_empty());
        virEventRemoveTimeout(guard);

        // A foreign unbind, from another thread: an UPDATE, delivered on the
        // loop's thread (this one), never on the writer's.
        let writer = std::thread::spawn(|| {
            foreign_write(&format!("bus/pci/devices/{NIC}/driver/unbind"), NIC);
            std::thread::current().id()
        });
        let writer_id = writer.join().unwrap();
        run_until(Duration::from_secs(5), || !EVENTS.lock().unwrap().is_empty());
        let got = std::mem::take(&mut *EVENTS.lock().unwrap());
        // Its interface goes first (DELETED), then the function's UPDATE.
        assert_eq!(
            got.iter().map(|e| (e.1.as_str(), e.2)).collect::<Vec<_>>(),
            [("net_eth1_52_54_00_03_01_00", 1), ("pci_0000_03_01_0", -1)]
        );
        assert!(got.iter().all(|e| e.0 == std::thread::current().id() && e.0 != writer_id));
        foreign_write("bus/pci/drivers_probe", NIC);
        run_until(Duration::from_secs(5), || !EVENTS.lock().unwrap().is_empty());
        EVENTS.lock().unwrap().clear();

        // sriov_numvfs: DELETED per VF gone, CREATED per VF made.
        foreign_write(&format!("bus/pci/devices/{PF}/sriov_numvfs"), "0");
        run_until(Duration::from_secs(5), || EVENTS.lock().unwrap().iter().filter(|e| e.2 == 1).count() == 3);
        foreign_write(&format!("bus/pci/devices/{PF}/sriov_numvfs"), "4");
        run_until(Duration::from_secs(5), || EVENTS.lock().unwrap().iter().filter(|e| e.2 == 0).count() == 4);
        let got = std::mem::take(&mut *EVENTS.lock().unwrap());
        assert_eq!(got.iter().filter(|e| e.2 == 1).count(), 3);
        assert_eq!(got.iter().filter(|e| e.2 == 0).count(), 4);
        foreign_write(&format!("bus/pci/devices/{PF}/sriov_numvfs"), "0");
        foreign_write(&format!("bus/pci/devices/{PF}/sriov_numvfs"), "3");
        run_until(Duration::from_secs(5), || EVENTS.lock().unwrap().iter().filter(|e| e.2 == 0).count() == 3);
        EVENTS.lock().unwrap().clear();

        // Deregistering both: freecb each; the listener's watch goes from
        // the loop (its free function closes the listener).
        assert_eq!(virConnectNodeDeviceEventDeregisterAny(c, l), 0);
        assert_eq!(virConnectNodeDeviceEventDeregisterAny(c, u), 0);
        assert_eq!(take(), ["free 31", "free 32"]);
        foreign_write(&format!("bus/pci/devices/{NIC}/driver/unbind"), NIC);
        foreign_write("bus/pci/drivers_probe", NIC);
        run_quiet();
        assert!(EVENTS.lock().unwrap().is_empty(), "no callback after deregistration");
        // Registered again, then the connection closed: freecb runs.
        let u = virConnectNodeDeviceEventRegisterAny(
            c,
            std::ptr::null_mut(),
            1,
            Some(on_update),
            33 as *mut c_void,
            Some(freed),
        );
        assert_eq!(u, 2, "ids are not reused");
        assert_eq!(virConnectClose(c), 0);
        assert_eq!(take(), ["free 33"]);
        run_quiet();

        // A watch for HANGUP alone is polled, as libvirt's loop polls any
        // watch whose events are not 0: the writer's close reaches it.
        let (r, w) = pipe();
        let h = virEventAddHandle(
            r,
            virEventHandleType::VIR_EVENT_HANDLE_HANGUP as c_int,
            Some(on_hup),
            std::ptr::null_mut(),
            None,
        );
        assert!(h > 0);
        libc::close(w);
        run_until(Duration::from_secs(2), || HUP.load(std::sync::atomic::Ordering::SeqCst) != 0);
        assert_eq!(
            HUP.load(std::sync::atomic::Ordering::SeqCst) & virEventHandleType::VIR_EVENT_HANDLE_HANGUP as c_int,
            virEventHandleType::VIR_EVENT_HANDLE_HANGUP as c_int
        );
        assert_eq!(virEventRemoveHandle(h), 0);
        run_quiet();
        libc::close(r);
    }
}

static HUP: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

unsafe extern "C" fn on_hup(_watch: c_int, _fd: c_int, events: c_int, _o: *mut c_void) {
    HUP.fetch_or(events, std::sync::atomic::Ordering::SeqCst);
}

/// Run the loop until the free functions ran; `want` must be exactly what was logged.
fn run_quiet_keep(want: &[&str]) {
    let t = unsafe { virEventAddTimeout(0, Some(on_timer), std::ptr::null_mut(), None) };
    run();
    unsafe { virEventRemoveTimeout(t) };
    let mut got: Vec<String> = take().into_iter().filter(|l| l.starts_with("free")).collect();
    got.sort();
    assert_eq!(got, want);
}
