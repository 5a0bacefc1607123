//! libvirt's event loop API (libvirt-event.h): the registered loop
//! implementation every event source of the library goes through, and
//! libvirt's default implementation, run by the application with
//! virEventRunDefaultImpl.
//!
//! Semantics as libvirt's: watch and timer ids count from 1; a timeout of
//! -1 is disabled, 0 fires on every iteration, N > 0 every N ms; handle
//! events 0 disables a watch; removal (also from inside a callback) stops
//! dispatch at once and calls the free function later, from the loop, once
//! nothing of the iteration uses the opaque pointer any more; the first
//! registered implementation stays (later registrations are ignored).
//!
//! The default loop sleeps in poll(2) until one of its file descriptors is
//! ready or its nearest timer is due: no wake-ups while nothing happens. A
//! change from another thread (a handle added, a timer updated) wakes it
//! through an eventfd, so the next poll sees it.

use super::boundary::{api, api_keep_error, Raised};
use super::callback::virFreeCallback;
use super::virterror::{virErrorDomain, virErrorNumber};
use std::ffi::{c_int, c_void};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What a watch waits for and what it got (libvirt's values).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virEventHandleType {
    /// Data to read (POLLIN).
    VIR_EVENT_HANDLE_READABLE = 1,
    /// Room to write (POLLOUT).
    VIR_EVENT_HANDLE_WRITABLE = 2,
    /// An error condition (POLLERR, POLLNVAL): reported, never asked for.
    VIR_EVENT_HANDLE_ERROR = 4,
    /// The peer hung up (POLLHUP): reported, never asked for.
    VIR_EVENT_HANDLE_HANGUP = 8,
}

const READABLE: c_int = virEventHandleType::VIR_EVENT_HANDLE_READABLE as c_int;
const WRITABLE: c_int = virEventHandleType::VIR_EVENT_HANDLE_WRITABLE as c_int;
const ERROR: c_int = virEventHandleType::VIR_EVENT_HANDLE_ERROR as c_int;
const HANGUP: c_int = virEventHandleType::VIR_EVENT_HANDLE_HANGUP as c_int;

/// Called when file descriptor `fd` of watch `watch` has `events` (virEventHandleType bits).
pub type virEventHandleCallback =
    Option<unsafe extern "C" fn(watch: c_int, fd: c_int, events: c_int, opaque: *mut c_void)>;
/// An implementation's "add a watch": returns the watch id (> 0) or -1.
pub type virEventAddHandleFunc = Option<
    unsafe extern "C" fn(
        fd: c_int,
        event: c_int,
        cb: virEventHandleCallback,
        opaque: *mut c_void,
        ff: virFreeCallback,
    ) -> c_int,
>;
/// An implementation's "change the events of a watch".
pub type virEventUpdateHandleFunc = Option<unsafe extern "C" fn(watch: c_int, event: c_int)>;
/// An implementation's "remove a watch": 0, or -1 when there is no such watch.
pub type virEventRemoveHandleFunc = Option<unsafe extern "C" fn(watch: c_int) -> c_int>;
/// Called when timer `timer` is due.
pub type virEventTimeoutCallback = Option<unsafe extern "C" fn(timer: c_int, opaque: *mut c_void)>;
/// An implementation's "add a timer": returns the timer id (> 0) or -1.
pub type virEventAddTimeoutFunc = Option<
    unsafe extern "C" fn(
        timeout: c_int,
        cb: virEventTimeoutCallback,
        opaque: *mut c_void,
        ff: virFreeCallback,
    ) -> c_int,
>;
/// An implementation's "change the period of a timer".
pub type virEventUpdateTimeoutFunc = Option<unsafe extern "C" fn(timer: c_int, timeout: c_int)>;
/// An implementation's "remove a timer": 0, or -1 when there is no such timer.
pub type virEventRemoveTimeoutFunc = Option<unsafe extern "C" fn(timer: c_int) -> c_int>;

/// The registered implementation.
#[derive(Clone, Copy)]
struct Impl {
    add_handle: virEventAddHandleFunc,
    update_handle: virEventUpdateHandleFunc,
    remove_handle: virEventRemoveHandleFunc,
    add_timeout: virEventAddTimeoutFunc,
    update_timeout: virEventUpdateTimeoutFunc,
    remove_timeout: virEventRemoveTimeoutFunc,
}

static IMPL: Mutex<Option<Impl>> = Mutex::new(None);

fn registered() -> Option<Impl> {
    *IMPL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether an event loop implementation is registered (the default one or the application's).
pub(crate) fn loop_registered() -> bool {
    registered().is_some()
}

/// Register the application's own event loop: the library then adds and
/// removes its watches and timers through these functions. The first
/// registration (this or virEventRegisterDefaultImpl) stays for the life of
/// the process; later ones are ignored, as libvirt does. Must be called
/// before any connection registers event callbacks.
#[no_mangle]
pub unsafe extern "C" fn virEventRegisterImpl(
    addHandle: virEventAddHandleFunc,
    updateHandle: virEventUpdateHandleFunc,
    removeHandle: virEventRemoveHandleFunc,
    addTimeout: virEventAddTimeoutFunc,
    updateTimeout: virEventUpdateTimeoutFunc,
    removeTimeout: virEventRemoveTimeoutFunc,
) {
    api_keep_error("virEventRegisterImpl", (), |_| {
        let mut slot = IMPL.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(Impl {
                add_handle: addHandle,
                update_handle: updateHandle,
                remove_handle: removeHandle,
                add_timeout: addTimeout,
                update_timeout: updateTimeout,
                remove_timeout: removeTimeout,
            });
        } else {
            crate::debug::log(format_args!(
                "virEventRegisterImpl: ignoring attempt to replace the registered event loop"
            ));
        }
        Ok(())
    })
}

/// Watch `fd` for `events` (virEventHandleType bits; 0: not yet) through
/// the registered loop; `cb` is called from the loop with `opaque`; `ff`
/// (may be NULL) frees `opaque` once the watch is removed.
///
/// Returns the watch id (> 0), or -1 when no loop is registered or the
/// loop refuses it (no error is set, as in libvirt).
#[no_mangle]
pub unsafe extern "C" fn virEventAddHandle(
    fd: c_int,
    events: c_int,
    cb: virEventHandleCallback,
    opaque: *mut c_void,
    ff: virFreeCallback,
) -> c_int {
    api_keep_error("virEventAddHandle", -1, |_| {
        Ok(match registered().and_then(|i| i.add_handle) {
            Some(f) => f(fd, events, cb, opaque, ff),
            None => -1,
        })
    })
}

/// Change the events watch `watch` waits for (0: none, until changed again).
/// Does nothing without a registered loop or for an unknown watch.
#[no_mangle]
pub unsafe extern "C" fn virEventUpdateHandle(watch: c_int, events: c_int) {
    api_keep_error("virEventUpdateHandle", (), |_| {
        if let Some(f) = registered().and_then(|i| i.update_handle) {
            f(watch, events);
        }
        Ok(())
    })
}

/// Remove watch `watch`: its callback is not called any more (even later
/// in the current iteration); its `ff` is called from the loop afterwards.
///
/// Returns 0, or -1 for an unknown watch or without a registered loop.
#[no_mangle]
pub unsafe extern "C" fn virEventRemoveHandle(watch: c_int) -> c_int {
    api_keep_error("virEventRemoveHandle", -1, |_| {
        Ok(match registered().and_then(|i| i.remove_handle) {
            Some(f) => f(watch),
            None => -1,
        })
    })
}

/// Add a timer firing every `frequency` ms (0: on every loop iteration;
/// -1: disabled until updated); `cb` is called from the loop with `opaque`;
/// `ff` (may be NULL) frees `opaque` once the timer is removed.
///
/// Returns the timer id (> 0), or -1 without a registered loop.
#[no_mangle]
pub unsafe extern "C" fn virEventAddTimeout(
    frequency: c_int,
    cb: virEventTimeoutCallback,
    opaque: *mut c_void,
    ff: virFreeCallback,
) -> c_int {
    api_keep_error("virEventAddTimeout", -1, |_| {
        Ok(match registered().and_then(|i| i.add_timeout) {
            Some(f) => f(frequency, cb, opaque, ff),
            None => -1,
        })
    })
}

/// Change timer `timer`'s period (ms; 0: every iteration; -1: disabled);
/// the next firing is `frequency` ms from now.
#[no_mangle]
pub unsafe extern "C" fn virEventUpdateTimeout(timer: c_int, frequency: c_int) {
    api_keep_error("virEventUpdateTimeout", (), |_| {
        if let Some(f) = registered().and_then(|i| i.update_timeout) {
            f(timer, frequency);
        }
        Ok(())
    })
}

/// Remove timer `timer` (as virEventRemoveHandle for watches).
///
/// Returns 0, or -1 for an unknown timer or without a registered loop.
#[no_mangle]
pub unsafe extern "C" fn virEventRemoveTimeout(timer: c_int) -> c_int {
    api_keep_error("virEventRemoveTimeout", -1, |_| {
        Ok(match registered().and_then(|i| i.remove_timeout) {
            Some(f) => f(timer),
            None => -1,
        })
    })
}

// ---- The default implementation ----

type HandleFn = unsafe extern "C" fn(c_int, c_int, c_int, *mut c_void);
type TimerFn = unsafe extern "C" fn(c_int, *mut c_void);

struct Watch {
    id: c_int,
    fd: c_int,
    events: c_int,
    cb: HandleFn,
    opaque: usize,
    ff: virFreeCallback,
    removed: bool,
}

struct Timer {
    id: c_int,
    /// ms; -1 disabled.
    frequency: c_int,
    due: Instant,
    cb: TimerFn,
    opaque: usize,
    ff: virFreeCallback,
    removed: bool,
}

struct Loop {
    watches: Vec<Watch>,
    timers: Vec<Timer>,
    next_watch: c_int,
    next_timer: c_int,
    /// Written to wake a poll in progress; read back by the loop.
    wake: Option<OwnedFd>,
    /// A thread sleeps in poll with the sets taken under this lock: a
    /// change must wake it. Otherwise the next iteration sees the change
    /// anyway, and waking would only cost an empty iteration.
    polling: bool,
}

static LOOP: Mutex<Loop> = Mutex::new(Loop {
    watches: Vec::new(),
    timers: Vec::new(),
    next_watch: 1,
    next_timer: 1,
    wake: None,
    polling: false,
});
static DEFAULT_REGISTERED: AtomicBool = AtomicBool::new(false);

fn lock() -> MutexGuard<'static, Loop> {
    LOOP.lock().unwrap_or_else(|p| p.into_inner())
}

impl Loop {
    fn wake(&self) {
        if !self.polling {
            return;
        }
        if let Some(fd) = &self.wake {
            let one: u64 = 1;
            // SAFETY: an 8-byte write to our non-blocking eventfd.
            unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    /// Take out what was removed: their (ff, opaque), to be called with the lock released.
    fn purge(&mut self) -> Vec<(virFreeCallback, usize)> {
        let mut frees = Vec::new();
        self.watches.retain(|w| {
            if w.removed {
                frees.push((w.ff, w.opaque));
            }
            !w.removed
        });
        self.timers.retain(|t| {
            if t.removed {
                frees.push((t.ff, t.opaque));
            }
            !t.removed
        });
        frees
    }
}

fn call_frees(frees: Vec<(virFreeCallback, usize)>) {
    for (ff, opaque) in frees {
        if let Some(f) = ff {
            // SAFETY: the application registered `f` for `opaque`.
            unsafe { f(opaque as *mut c_void) };
        }
    }
}

fn after(ms: c_int) -> Instant {
    Instant::now() + Duration::from_millis(ms.max(0) as u64)
}

unsafe extern "C" fn default_add_handle(
    fd: c_int,
    events: c_int,
    cb: virEventHandleCallback,
    opaque: *mut c_void,
    ff: virFreeCallback,
) -> c_int {
    let Some(cb) = cb else { return -1 };
    let mut l = lock();
    let id = l.next_watch;
    l.next_watch = l.next_watch.checked_add(1).unwrap_or(1);
    l.watches.push(Watch { id, fd, events, cb, opaque: opaque as usize, ff, removed: false });
    l.wake();
    id
}

unsafe extern "C" fn default_update_handle(watch: c_int, events: c_int) {
    let mut l = lock();
    if let Some(w) = l.watches.iter_mut().find(|w| w.id == watch && !w.removed) {
        w.events = events;
        l.wake();
    }
}

unsafe extern "C" fn default_remove_handle(watch: c_int) -> c_int {
    let mut l = lock();
    match l.watches.iter_mut().find(|w| w.id == watch && !w.removed) {
        Some(w) => {
            w.removed = true;
            l.wake();
            0
        }
        None => -1,
    }
}

unsafe extern "C" fn default_add_timeout(
    frequency: c_int,
    cb: virEventTimeoutCallback,
    opaque: *mut c_void,
    ff: virFreeCallback,
) -> c_int {
    let Some(cb) = cb else { return -1 };
    let mut l = lock();
    let id = l.next_timer;
    l.next_timer = l.next_timer.checked_add(1).unwrap_or(1);
    l.timers.push(Timer { id, frequency, due: after(frequency), cb, opaque: opaque as usize, ff, removed: false });
    l.wake();
    id
}

unsafe extern "C" fn default_update_timeout(timer: c_int, frequency: c_int) {
    let mut l = lock();
    if let Some(t) = l.timers.iter_mut().find(|t| t.id == timer && !t.removed) {
        t.frequency = frequency;
        t.due = after(frequency);
        l.wake();
    }
}

unsafe extern "C" fn default_remove_timeout(timer: c_int) -> c_int {
    let mut l = lock();
    match l.timers.iter_mut().find(|t| t.id == timer && !t.removed) {
        Some(t) => {
            t.removed = true;
            l.wake();
            0
        }
        None => -1,
    }
}

fn poll_events(events: c_int) -> libc::c_short {
    let mut p = 0;
    if events & READABLE != 0 {
        p |= libc::POLLIN;
    }
    if events & WRITABLE != 0 {
        p |= libc::POLLOUT;
    }
    p
}

fn vir_events(revents: libc::c_short) -> c_int {
    let mut e = 0;
    if revents & libc::POLLIN != 0 {
        e |= READABLE;
    }
    if revents & libc::POLLOUT != 0 {
        e |= WRITABLE;
    }
    if revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
        e |= ERROR;
    }
    if revents & libc::POLLHUP != 0 {
        e |= HANGUP;
    }
    e
}

/// One iteration: sleep until a watch is ready or a timer is due, then
/// dispatch them, each callback run with no lock held.
fn run_once() -> Result<(), Raised> {
    let (mut pfds, ids, timeout, frees) = {
        let mut l = lock();
        let frees = l.purge();
        let wake = l.wake.as_ref().map_or(-1, |f| f.as_raw_fd());
        let mut pfds = vec![libc::pollfd { fd: wake, events: libc::POLLIN, revents: 0 }];
        let mut ids = vec![0];
        for w in l.watches.iter().filter(|w| w.events & (READABLE | WRITABLE) != 0) {
            pfds.push(libc::pollfd { fd: w.fd, events: poll_events(w.events), revents: 0 });
            ids.push(w.id);
        }
        let now = Instant::now();
        let nearest = l.timers.iter().filter(|t| t.frequency >= 0).map(|t| t.due).min();
        // Rounded up: waking before the due time would only spin.
        let timeout = nearest.map_or(-1, |due| {
            let left = due.saturating_duration_since(now);
            left.as_micros().div_ceil(1000).min(c_int::MAX as u128) as c_int
        });
        l.polling = true;
        (pfds, ids, timeout, frees)
    };
    // Free functions may change the sets (add, remove): they run before
    // poll, and `polling` makes those changes wake it.
    call_frees(frees);
    // SAFETY: pfds is a valid array of pollfd of this length.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout) };
    lock().polling = false;
    if n < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(Raised::new(
                virErrorNumber::VIR_ERR_SYSTEM_ERROR,
                virErrorDomain::VIR_FROM_EVENT,
                format!("virEventRunDefaultImpl: poll failed: {e}"),
            ));
        }
        return Ok(());
    }
    if pfds[0].revents != 0 {
        let mut v: u64 = 0;
        // SAFETY: an 8-byte read from our non-blocking eventfd.
        unsafe { libc::read(pfds[0].fd, (&mut v as *mut u64).cast(), 8) };
    }
    // Timers due now, each re-armed before any callback runs.
    let now = Instant::now();
    let due: Vec<c_int> = {
        let mut l = lock();
        let mut due = Vec::new();
        for t in l.timers.iter_mut().filter(|t| !t.removed && t.frequency >= 0 && t.due <= now) {
            t.due = now + Duration::from_millis(t.frequency as u64);
            due.push(t.id);
        }
        due
    };
    for id in due {
        // Another callback of this iteration may have removed or disabled it.
        let found =
            lock().timers.iter().find(|t| t.id == id && !t.removed && t.frequency >= 0).map(|t| (t.cb, t.opaque));
        if let Some((cb, opaque)) = found {
            // SAFETY: the application registered `cb` for `opaque`.
            unsafe { cb(id, opaque as *mut c_void) };
        }
    }
    for (p, id) in pfds.iter().zip(ids).skip(1) {
        if p.revents == 0 {
            continue;
        }
        let found =
            lock().watches.iter().find(|w| w.id == id && !w.removed && w.events != 0).map(|w| (w.cb, w.fd, w.opaque));
        if let Some((cb, fd, opaque)) = found {
            // SAFETY: as above.
            unsafe { cb(id, fd, vir_events(p.revents), opaque as *mut c_void) };
        }
    }
    let frees = lock().purge();
    call_frees(frees);
    Ok(())
}

/// Register libvirt's default event loop implementation (unless a loop is
/// registered already: then that one stays and this does nothing more).
/// The application then runs it with virEventRunDefaultImpl, usually in a
/// thread of its own, in an endless loop.
///
/// Returns 0, or -1 on error (VIR_ERR_SYSTEM_ERROR: no eventfd).
#[no_mangle]
pub unsafe extern "C" fn virEventRegisterDefaultImpl() -> c_int {
    api("virEventRegisterDefaultImpl", virErrorDomain::VIR_FROM_EVENT, -1, |_| {
        {
            let mut l = lock();
            if l.wake.is_none() {
                // SAFETY: eventfd returns a new descriptor we then own.
                let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
                if fd < 0 {
                    return Err(Raised::new(
                        virErrorNumber::VIR_ERR_SYSTEM_ERROR,
                        virErrorDomain::VIR_FROM_EVENT,
                        format!(
                            "virEventRegisterDefaultImpl: cannot create an eventfd: {}",
                            std::io::Error::last_os_error()
                        ),
                    ));
                }
                // SAFETY: fd is a fresh, valid descriptor.
                l.wake = Some(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        DEFAULT_REGISTERED.store(true, Ordering::SeqCst);
        virEventRegisterImpl(
            Some(default_add_handle),
            Some(default_update_handle),
            Some(default_remove_handle),
            Some(default_add_timeout),
            Some(default_update_timeout),
            Some(default_remove_timeout),
        );
        Ok(0)
    })
}

/// Run one iteration of the default event loop: wait (without waking up
/// while nothing happens) until a watch is ready or a timer is due, and
/// call their callbacks on this thread.
///
/// Returns 0, or -1 on error: VIR_ERR_INTERNAL_ERROR when
/// virEventRegisterDefaultImpl was not called (a deliberate difference:
/// libvirt's loop would block for ever with nothing registered; call
/// virEventRegisterDefaultImpl first for libvirt's behaviour),
/// VIR_ERR_SYSTEM_ERROR when poll fails.
#[no_mangle]
pub unsafe extern "C" fn virEventRunDefaultImpl() -> c_int {
    api("virEventRunDefaultImpl", virErrorDomain::VIR_FROM_EVENT, -1, |call| {
        if !DEFAULT_REGISTERED.load(Ordering::SeqCst) {
            return Err(Raised::new(
                virErrorNumber::VIR_ERR_INTERNAL_ERROR,
                call.domain,
                format!(
                    "{}: the default event loop is not registered: call virEventRegisterDefaultImpl first",
                    call.func
                ),
            ));
        }
        run_once()?;
        Ok(0)
    })
}

exports!(
    virEventRegisterImpl,
    virEventRegisterDefaultImpl,
    virEventRunDefaultImpl,
    virEventAddHandle,
    virEventUpdateHandle,
    virEventRemoveHandle,
    virEventAddTimeout,
    virEventUpdateTimeout,
    virEventRemoveTimeout
);
