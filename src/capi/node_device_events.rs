//! Node-device events (virConnectNodeDeviceEventRegisterAny): callbacks
//! for LIFECYCLE (CREATED, DELETED) and UPDATE, fed by the kernel's
//! uevents (`crate::events`), dispatched on the thread that runs the
//! application's event loop, never on a thread of the library's own.
//!
//! Two ways to drive them, one source per connection:
//! - libvirt's: with an event loop registered (virEventRegisterDefaultImpl
//!   or virEventRegisterImpl), the first callback adds a watch on the
//!   connection's uevent listener to that loop; the loop's iteration reads
//!   and dispatches; the last callback gone, the watch and the listener go.
//! - nodedev's extension for a daemon with a poll/epoll loop of its own:
//!   virConnectNodeDeviceEventGetFD gives the listener's descriptor; when it
//!   polls readable the daemon calls virConnectNodeDeviceEventDispatch.
//!   Registrations then need no event loop.
//!
//! As in libvirt, a callback removed during a dispatch (by itself or
//! another) is not called again, and its freecb runs once the dispatch
//! that may still use its opaque is over. Unlike libvirt, a registration
//! does not hold a reference to the connection: when the connection goes
//! (its last reference released), its callbacks are removed and their
//! freecb called, so a daemon that closes without deregistering neither
//! leaks the connection nor gets events for it.
//!
//! The connection (a layer below, which cannot name this module) holds a
//! connection's `ConnEvents` as a `ConnAttachment`, made at the first
//! event call, and closes it when it goes.

use super::boundary::{api, Call, Raised};
use super::callback::{virFreeCallback, CallerData};
use super::connect::{conn_arg, virConnect, virConnectPtr, ConnAttachment};
use super::event_loop::{self, virEventHandleType};
use super::handle;
use super::nodedev::{dev_arg, event_device, virNodeDevice, virNodeDevicePtr};
use super::virterror::{virErrorDomain, virErrorNumber};
use crate::events::{DeviceEvent, EventKind, Watcher};
use std::any::Any;
use std::ffi::{c_int, c_uint, c_void};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

const DOMAIN: virErrorDomain = virErrorDomain::VIR_FROM_NODEDEV;

/// The event a callback is registered for (libvirt's values).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virNodeDeviceEventID {
    /// virConnectNodeDeviceEventLifecycleCallback: CREATED, DELETED.
    VIR_NODE_DEVICE_EVENT_ID_LIFECYCLE = 0,
    /// virConnectNodeDeviceEventGenericCallback: the device changed (its driver).
    VIR_NODE_DEVICE_EVENT_ID_UPDATE = 1,
}

/// libvirt's VIR_NODE_DEVICE_EVENT_ID_LAST (a sentinel its header shows
/// only with VIR_ENUM_SENTINELS): the first event id not known.
const EVENT_ID_LAST: c_int = 2;

/// The `event` argument of a lifecycle callback (libvirt's values).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum virNodeDeviceEventLifecycleType {
    /// The device appeared (a hot-plug, a VF created through sriov_numvfs).
    VIR_NODE_DEVICE_EVENT_CREATED = 0,
    /// The device went away (hot-unplug, removal, a VF removed).
    VIR_NODE_DEVICE_EVENT_DELETED = 1,
    /// A persistent definition was made: libvirt's mediated devices; never for PCI functions.
    VIR_NODE_DEVICE_EVENT_DEFINED = 2,
    /// A persistent definition was removed: as DEFINED.
    VIR_NODE_DEVICE_EVENT_UNDEFINED = 3,
}

/// The callback type of virConnectNodeDeviceEventRegisterAny; also the
/// UPDATE callback. Cast a lifecycle callback to it with
/// VIR_NODE_DEVICE_EVENT_CALLBACK(). `dev` is valid during the call only
/// (virNodeDeviceRef keeps it); for a DELETED device it only has a name
/// and parent.
pub type virConnectNodeDeviceEventGenericCallback =
    Option<unsafe extern "C" fn(conn: virConnectPtr, dev: virNodeDevicePtr, opaque: *mut c_void)>;

/// The LIFECYCLE callback: `event` is a virNodeDeviceEventLifecycleType,
/// `detail` is 0 (no detail is defined for node devices).
pub type virConnectNodeDeviceEventLifecycleCallback = Option<
    unsafe extern "C" fn(conn: virConnectPtr, dev: virNodeDevicePtr, event: c_int, detail: c_int, opaque: *mut c_void),
>;

type GenericFn = unsafe extern "C" fn(virConnectPtr, virNodeDevicePtr, *mut c_void);
type LifecycleFn = unsafe extern "C" fn(virConnectPtr, virNodeDevicePtr, c_int, c_int, *mut c_void);

/// One registered callback. Its freecb runs (as `data` goes) when the last
/// holder lets go: the registry on deregistration, or a dispatch in
/// progress after it.
struct Registration {
    id: c_int,
    event_id: c_int,
    /// The device name it is filtered on (None: every device).
    key: Option<String>,
    cb: GenericFn,
    data: CallerData,
    active: AtomicBool,
}

/// How the events of a connection reach the application.
enum Feed {
    /// No listener.
    Idle,
    /// A watch on the registered event loop; the listener lives in the
    /// watch's opaque until the loop frees it.
    Loop { watch: c_int },
    /// The application polls the listener's descriptor (GetFD).
    Fd(Arc<Watcher>),
}

struct State {
    callbacks: Vec<Arc<Registration>>,
    next_id: c_int,
    feed: Feed,
}

/// A connection's event callbacks and their feed.
pub(crate) struct ConnEvents {
    conn: Weak<virConnect>,
    state: Mutex<State>,
    /// Overflows of this connection's listeners (virConnectNodeDeviceEventGetOverflows).
    overflows: std::sync::atomic::AtomicU64,
}

/// The opaque of a loop watch: what the watch callback needs, kept alive
/// (and the listener's descriptor open) until the loop calls the free function.
struct WatchData {
    events: Arc<ConnEvents>,
    watcher: Watcher,
}

impl ConnEvents {
    /// The events of `conn`, made at the first call that needs them.
    fn of(conn: &Arc<virConnect>) -> Arc<ConnEvents> {
        let attached = conn.events.get_or_init(|| -> Arc<dyn ConnAttachment> {
            Arc::new(ConnEvents {
                conn: Arc::downgrade(conn),
                state: Mutex::new(State { callbacks: Vec::new(), next_id: 0, feed: Feed::Idle }),
                overflows: std::sync::atomic::AtomicU64::new(0),
            })
        });
        // Only this module fills the slot, always with a ConnEvents.
        attached.clone().into_any().downcast().unwrap_or_else(|_| unreachable!("a connection's events are ConnEvents"))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Read what the kernel sent and call the matching callbacks, in order.
    /// Returns the number of events read.
    fn dispatch(&self, watcher: &Watcher) -> Result<usize, crate::Error> {
        let events = watcher.ready()?;
        self.overflows.fetch_add(watcher.new_overflows(), Ordering::SeqCst);
        // A strong reference for the dispatch: a callback may close the
        // application's last one; the connection then goes after it.
        let Some(conn) = self.conn.upgrade() else { return Ok(0) };
        for ev in &events {
            let snapshot: Vec<Arc<Registration>> = self.lock().callbacks.clone();
            for r in snapshot.iter().filter(|r| wants(r, ev)) {
                // Deregistered by an earlier callback of this dispatch.
                if !r.active.load(Ordering::SeqCst) {
                    continue;
                }
                deliver(&conn, r, ev);
            }
        }
        drop(conn);
        Ok(events.len())
    }
}

impl ConnAttachment for ConnEvents {
    /// The connection is going: forget every callback (their freecb runs,
    /// with no lock held) and stop listening.
    fn close(&self) {
        let (callbacks, feed) = {
            let mut s = self.lock();
            (std::mem::take(&mut s.callbacks), std::mem::replace(&mut s.feed, Feed::Idle))
        };
        for r in &callbacks {
            r.active.store(false, Ordering::SeqCst);
        }
        if let Feed::Loop { watch } = feed {
            // SAFETY: a watch this connection added.
            unsafe { event_loop::virEventRemoveHandle(watch) };
        }
        drop(callbacks);
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

fn wants(r: &Registration, ev: &DeviceEvent) -> bool {
    let id_matches = match ev.kind {
        EventKind::Created | EventKind::Deleted => {
            r.event_id == virNodeDeviceEventID::VIR_NODE_DEVICE_EVENT_ID_LIFECYCLE as c_int
        }
        EventKind::Updated => r.event_id == virNodeDeviceEventID::VIR_NODE_DEVICE_EVENT_ID_UPDATE as c_int,
    };
    id_matches && r.key.as_deref().is_none_or(|k| k == ev.name)
}

fn deliver(conn: &Arc<virConnect>, r: &Registration, ev: &DeviceEvent) {
    let Some(dev) = event_device(conn, ev) else { return };
    let dev = handle::into_raw(dev);
    let conn_ptr = Arc::as_ptr(conn) as virConnectPtr;
    // SAFETY: the callback was registered with the signature of its event
    // id (libvirt's contract, the cast done by VIR_NODE_DEVICE_EVENT_CALLBACK).
    unsafe {
        match ev.kind {
            EventKind::Updated => (r.cb)(conn_ptr, dev, r.data.ptr()),
            EventKind::Created | EventKind::Deleted => {
                let lifecycle: LifecycleFn = std::mem::transmute::<GenericFn, LifecycleFn>(r.cb);
                let event = if ev.kind == EventKind::Created {
                    virNodeDeviceEventLifecycleType::VIR_NODE_DEVICE_EVENT_CREATED
                } else {
                    virNodeDeviceEventLifecycleType::VIR_NODE_DEVICE_EVENT_DELETED
                };
                lifecycle(conn_ptr, dev, event as c_int, 0, r.data.ptr());
            }
        }
        // The library's reference; the callback took its own if it keeps the device.
        drop(Arc::from_raw(dev as *const virNodeDevice));
    }
}

/// The loop's watch callback: the listener has messages.
unsafe extern "C" fn on_ready(_watch: c_int, _fd: c_int, _events: c_int, opaque: *mut c_void) {
    let _ = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `opaque` is the WatchData of this watch, alive until `free_watch`.
        let data = unsafe { &*(opaque as *const WatchData) };
        if let Err(e) = data.events.dispatch(&data.watcher) {
            crate::debug::log(format_args!("node device events: {e}"));
        }
    }));
}

unsafe extern "C" fn free_watch(opaque: *mut c_void) {
    let _ = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: made by Box::into_raw in `start_feed`, freed once by the loop.
        drop(unsafe { Box::from_raw(opaque as *mut WatchData) });
    }));
}

fn no_loop(call: &Call) -> Raised {
    // libvirt's code and domain for this case (its event timer cannot be added).
    Raised::new(
        virErrorNumber::VIR_ERR_INTERNAL_ERROR,
        virErrorDomain::VIR_FROM_NONE,
        format!(
            "{}: could not initialize node device events: no event loop is registered (call virEventRegisterDefaultImpl or virEventRegisterImpl first, or poll virConnectNodeDeviceEventGetFD)",
            call.func
        ),
    )
}

/// With the state locked: make sure events are fed, for a new callback.
fn start_feed(call: &Call, conn: &virConnect, events: &Arc<ConnEvents>, s: &mut State) -> Result<(), Raised> {
    if !matches!(s.feed, Feed::Idle) {
        return Ok(());
    }
    if !event_loop::loop_registered() {
        return Err(no_loop(call));
    }
    let watcher = Watcher::new(conn.host.sysfs().clone()).map_err(|e| {
        let mut r = Raised::from(e);
        r.message = format!("{}: {}", call.func, r.message);
        r
    })?;
    let fd = watcher.fd();
    let data = Box::into_raw(Box::new(WatchData { events: events.clone(), watcher }));
    // SAFETY: `data` lives until the loop calls `free_watch`.
    let watch = unsafe {
        event_loop::virEventAddHandle(
            fd,
            virEventHandleType::VIR_EVENT_HANDLE_READABLE as c_int,
            Some(on_ready),
            data.cast(),
            Some(free_watch),
        )
    };
    if watch < 0 {
        // SAFETY: the loop refused it, so we still own `data`.
        drop(unsafe { Box::from_raw(data) });
        return Err(no_loop(call));
    }
    s.feed = Feed::Loop { watch };
    Ok(())
}

/// Register `cb` for event `eventID` (virNodeDeviceEventID) of device `dev`
/// (NULL: of every device) on `conn`. Cast `cb` with
/// VIR_NODE_DEVICE_EVENT_CALLBACK(); a LIFECYCLE callback has the
/// virConnectNodeDeviceEventLifecycleCallback signature. Callbacks run on
/// the thread running the registered event loop (virEventRunDefaultImpl),
/// or in virConnectNodeDeviceEventDispatch. `opaque` is passed to `cb`;
/// `freecb` (may be NULL) is called with it when the callback is
/// deregistered or the connection goes (its last reference released).
///
/// Requires an event loop registered with virEventRegisterDefaultImpl or
/// virEventRegisterImpl, or virConnectNodeDeviceEventGetFD called on `conn`
/// before. Events come from the kernel's uevents: CREATED when a PCI
/// function appears (a VF created through sriov_numvfs, a hot-plug),
/// DELETED when it goes, UPDATE when it is bound to or unbound from a
/// driver (by nodedev or by any other tool) or the kernel reports another
/// change. A PCI function's network interface (`net_IFNAME_MAC`, parent
/// the function) is CREATED when its driver registers it (a bind, a VF
/// taken by igbvf), DELETED when the driver lets go of it (before the
/// function's UPDATE), and a rename is the old name DELETED then the new
/// one CREATED, as libvirt's udev driver reports them; a DELETED device's
/// XML cannot be read any more. If the application reads too slowly and
/// the kernel drops events, the tree is read again and the differences
/// are delivered as events (see virConnectNodeDeviceEventGetOverflows).
///
/// Returns the callback id (>= 0, for virConnectNodeDeviceEventDeregisterAny),
/// or -1 on error: VIR_ERR_INVALID_CONN; VIR_ERR_INVALID_NODE_DEVICE (`dev`
/// not a live handle); VIR_ERR_INVALID_ARG (`dev` of another connection,
/// `cb` NULL, `eventID` negative or >= VIR_NODE_DEVICE_EVENT_ID_LAST; domain
/// VIR_FROM_NONE: this `cb` is already registered for this event and device);
/// VIR_ERR_INTERNAL_ERROR (domain VIR_FROM_NONE: no event loop registered);
/// VIR_ERR_OPERATION_UNSUPPORTED (a test tree under `root=`: no kernel events).
#[no_mangle]
pub unsafe extern "C" fn virConnectNodeDeviceEventRegisterAny(
    conn: virConnectPtr,
    dev: virNodeDevicePtr,
    eventID: c_int,
    cb: virConnectNodeDeviceEventGenericCallback,
    opaque: *mut c_void,
    freecb: virFreeCallback,
) -> c_int {
    api("virConnectNodeDeviceEventRegisterAny", DOMAIN, -1, |call| {
        let c = conn_arg(call, conn)?;
        let key = if dev.is_null() {
            None
        } else {
            let d = dev_arg(call, dev)?;
            call.conn = Some(c.clone());
            if !Arc::ptr_eq(&d.conn, &c) {
                return Err(call.invalid_arg(format_args!(
                    "node device '{}' in {} must match connection",
                    d.name(),
                    call.func
                )));
            }
            Some(d.name().to_string())
        };
        let Some(cb) = cb else { return Err(call.invalid_arg("cb must not be NULL")) };
        if eventID < 0 {
            return Err(call.invalid_arg(format_args!("eventID must be non-negative (got {eventID})")));
        }
        let last = EVENT_ID_LAST;
        if eventID >= last {
            return Err(call.invalid_arg(format_args!("eventID in {} must be less than {last}", call.func)));
        }
        let events = ConnEvents::of(&c);
        let mut s = events.lock();
        let duplicate =
            s.callbacks.iter().any(|r| r.event_id == eventID && r.key == key && r.cb as usize == cb as usize);
        if duplicate {
            return Err(Raised::new(
                virErrorNumber::VIR_ERR_INVALID_ARG,
                virErrorDomain::VIR_FROM_NONE,
                format!("{}: event callback already tracked", call.func),
            ));
        }
        start_feed(call, &c, &events, &mut s)?;
        let id = s.next_id;
        s.next_id = s.next_id.checked_add(1).unwrap_or(0);
        s.callbacks.push(Arc::new(Registration {
            id,
            event_id: eventID,
            key,
            cb,
            data: CallerData::new(opaque, freecb),
            active: AtomicBool::new(true),
        }));
        Ok(id)
    })
}

/// Deregister callback `callbackID` (from virConnectNodeDeviceEventRegisterAny).
/// It is not called any more once this returns (also when a dispatch is in
/// progress); its freecb runs now, or right after the dispatch in progress.
/// The last callback gone, a connection fed by the event loop stops
/// listening to the kernel (its watch is removed).
///
/// Returns 0, or -1 on error: VIR_ERR_INVALID_CONN; VIR_ERR_INVALID_ARG
/// (`callbackID` negative; domain VIR_FROM_NONE: no such callback).
#[no_mangle]
pub unsafe extern "C" fn virConnectNodeDeviceEventDeregisterAny(conn: virConnectPtr, callbackID: c_int) -> c_int {
    api("virConnectNodeDeviceEventDeregisterAny", DOMAIN, -1, |call| {
        let c = conn_arg(call, conn)?;
        if callbackID < 0 {
            return Err(call.invalid_arg(format_args!("callbackID must be non-negative (got {callbackID})")));
        }
        let (removed, stop) = {
            let events = ConnEvents::of(&c);
            let mut s = events.lock();
            let Some(pos) = s.callbacks.iter().position(|r| r.id == callbackID) else {
                return Err(Raised::new(
                    virErrorNumber::VIR_ERR_INVALID_ARG,
                    virErrorDomain::VIR_FROM_NONE,
                    format!("{}: could not find event callback {callbackID} for deletion", call.func),
                ));
            };
            let removed = s.callbacks.remove(pos);
            removed.active.store(false, Ordering::SeqCst);
            let stop = match s.feed {
                Feed::Loop { watch } if s.callbacks.is_empty() => {
                    s.feed = Feed::Idle;
                    Some(watch)
                }
                _ => None,
            };
            (removed, stop)
        };
        if let Some(watch) = stop {
            event_loop::virEventRemoveHandle(watch);
        }
        // freecb now, unless a dispatch still holds it (then after it).
        drop(removed);
        Ok(0)
    })
}

/// nodedev's extension for a daemon with its own poll/epoll loop: the file
/// descriptor of `conn`'s kernel event listener. It polls readable (POLLIN /
/// EPOLLIN) when events wait; then call virConnectNodeDeviceEventDispatch
/// on the loop's thread. The descriptor belongs to the connection: do not
/// read, close or change it; it stays valid until the connection goes.
/// Listening starts with the first call (events before it are not seen);
/// from then on the connection's callbacks are dispatched only by
/// virConnectNodeDeviceEventDispatch (a watch an event loop had is removed),
/// and registering them needs no event loop. `flags`: 0.
///
/// Returns the descriptor (>= 0), or -1 on error: VIR_ERR_INVALID_CONN,
/// VIR_ERR_INVALID_ARG (unknown flags), VIR_ERR_OPERATION_UNSUPPORTED (a test
/// tree under `root=`: no kernel events), VIR_ERR_SYSTEM_ERROR (no netlink socket).
#[no_mangle]
pub unsafe extern "C" fn virConnectNodeDeviceEventGetFD(conn: virConnectPtr, flags: c_uint) -> c_int {
    api("virConnectNodeDeviceEventGetFD", DOMAIN, -1, |call| {
        let c = conn_arg(call, conn)?;
        call.check_flags(flags, 0)?;
        let (fd, stop) = {
            let events = ConnEvents::of(&c);
            let mut s = events.lock();
            if let Feed::Fd(w) = &s.feed {
                return Ok(w.fd());
            }
            let watcher = Arc::new(Watcher::new(c.host.sysfs().clone())?);
            let fd = watcher.fd();
            let stop = match std::mem::replace(&mut s.feed, Feed::Fd(watcher)) {
                Feed::Loop { watch } => Some(watch),
                _ => None,
            };
            (fd, stop)
        };
        if let Some(watch) = stop {
            event_loop::virEventRemoveHandle(watch);
        }
        Ok(fd)
    })
}

/// nodedev's extension: read the events waiting on `conn`'s listener (see
/// virConnectNodeDeviceEventGetFD) and call the registered callbacks, on
/// this thread, in the kernel's order. Never blocks. `flags`: 0.
///
/// Returns the number of events read (0: none was waiting), or -1 on error:
/// VIR_ERR_INVALID_CONN, VIR_ERR_INVALID_ARG (unknown flags),
/// VIR_ERR_OPERATION_INVALID (virConnectNodeDeviceEventGetFD was not called
/// on `conn`), VIR_ERR_SYSTEM_ERROR (reading the listener failed).
#[no_mangle]
pub unsafe extern "C" fn virConnectNodeDeviceEventDispatch(conn: virConnectPtr, flags: c_uint) -> c_int {
    api("virConnectNodeDeviceEventDispatch", DOMAIN, -1, |call| {
        let c = conn_arg(call, conn)?;
        call.check_flags(flags, 0)?;
        let events = ConnEvents::of(&c);
        let watcher = match &events.lock().feed {
            Feed::Fd(w) => w.clone(),
            _ => {
                return Err(Raised::new(
                    virErrorNumber::VIR_ERR_OPERATION_INVALID,
                    DOMAIN,
                    format!(
                        "{}: no event descriptor on this connection: call virConnectNodeDeviceEventGetFD first",
                        call.func
                    ),
                ))
            }
        };
        drop(c);
        call.conn = None;
        let n = events.dispatch(&watcher)?;
        Ok(c_int::try_from(n).unwrap_or(c_int::MAX))
    })
}

/// nodedev's extension: how many times `conn`'s kernel event listener
/// overflowed since the connection first listened. An overflow means the
/// kernel dropped uevents the application did not read in time (ENOBUFS
/// on its netlink socket); the library then reads the device tree again
/// and delivers the differences to the callbacks as ordinary events
/// (DELETED, CREATED, then UPDATE), so callbacks see the tree as it is.
/// A daemon that keeps more state than the events tell (an XML it
/// cached) should read it again when this count grows. libvirt's udev
/// driver instead stops receiving events after such an error. `flags`: 0.
///
/// Returns the count (>= 0, INT_MAX at most), or -1 on error:
/// VIR_ERR_INVALID_CONN, VIR_ERR_INVALID_ARG (unknown flags).
#[no_mangle]
pub unsafe extern "C" fn virConnectNodeDeviceEventGetOverflows(conn: virConnectPtr, flags: c_uint) -> c_int {
    api("virConnectNodeDeviceEventGetOverflows", DOMAIN, -1, |call| {
        let c = conn_arg(call, conn)?;
        call.check_flags(flags, 0)?;
        let n = ConnEvents::of(&c).overflows.load(Ordering::SeqCst);
        Ok(c_int::try_from(n).unwrap_or(c_int::MAX))
    })
}

exports!(
    virConnectNodeDeviceEventRegisterAny,
    virConnectNodeDeviceEventDeregisterAny,
    virConnectNodeDeviceEventGetFD,
    virConnectNodeDeviceEventDispatch,
    virConnectNodeDeviceEventGetOverflows
);
