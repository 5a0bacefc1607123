//! Node-device events without any event loop registered in this process
//! (a loop, once registered, stays for the process: the loop-driven tests
//! live in tests/events_loop.rs): libvirt's argument errors and its error
//! when no loop exists, and nodedev's descriptor + dispatch extension, on
//! the simulated kernel, with changes made by nodedev and by a "foreign"
//! tool writing the sysfs files itself.

use nodedev::capi::connect::{virConnectClose, virConnectOpen, virConnectPtr};
use nodedev::capi::error::{virGetLastError, virGetLastErrorCode};
use nodedev::capi::node_device_events::*;
use nodedev::capi::nodedev::{
    virNodeDeviceFree, virNodeDeviceGetName, virNodeDeviceGetParent, virNodeDeviceGetXMLDesc,
    virNodeDeviceLookupByName, virNodeDevicePtr,
};
use nodedev::capi::sriov::virNodeDeviceSetVFs;
use std::ffi::{c_int, c_void, CStr, CString};
use std::sync::Mutex;

const NIC: &str = "0000:03:01.0"; // e1000
const PF: &str = "0000:04:00.0"; // igb, 3 VFs at start, 7 at most

const INVALID_CONN: c_int = 6;
const INVALID_ARG: c_int = 8;
const INTERNAL_ERROR: c_int = 1;
const OPERATION_INVALID: c_int = 55;
const FROM_NONE: c_int = 0;
const FROM_NODEDEV: c_int = 22;

/// test:///default is one simulated host per process: one test at a time changes it.
static SIM: Mutex<()> = Mutex::new(());

fn open() -> virConnectPtr {
    let uri = CString::new("test:///default").unwrap();
    let c = unsafe { virConnectOpen(uri.as_ptr()) };
    assert!(!c.is_null());
    c
}

fn last_error() -> (c_int, c_int, String) {
    let e = virGetLastError();
    assert!(!e.is_null(), "no error set");
    unsafe { ((*e).code, (*e).domain, CStr::from_ptr((*e).message).to_string_lossy().into_owned()) }
}

/// A "foreign" tool: writes the files of the same simulated kernel itself.
fn foreign_write(path: &str, value: &str) {
    let (host, _) = nodedev::uri::open(Some("test:///default"), false).unwrap();
    host.sysfs().write(path, value).unwrap();
}

#[derive(Debug, Default)]
struct Seen {
    /// (callback, device name, parent, event)
    events: Vec<(&'static str, String, String, c_int)>,
    freed: Vec<&'static str>,
}

static SEEN: Mutex<Option<Seen>> = Mutex::new(None);

fn record(which: &'static str, dev: virNodeDevicePtr, event: c_int) {
    let name = unsafe { CStr::from_ptr(virNodeDeviceGetName(dev)) }.to_string_lossy().into_owned();
    let parent = unsafe { CStr::from_ptr(virNodeDeviceGetParent(dev)) }.to_string_lossy().into_owned();
    SEEN.lock().unwrap().get_or_insert_with(Seen::default).events.push((which, name, parent, event));
}

fn take() -> Seen {
    SEEN.lock().unwrap().take().unwrap_or_default()
}

unsafe extern "C" fn on_lifecycle(
    _c: virConnectPtr,
    dev: virNodeDevicePtr,
    event: c_int,
    detail: c_int,
    _o: *mut c_void,
) {
    assert_eq!(detail, 0);
    record("lifecycle", dev, event);
}

unsafe extern "C" fn on_update(_c: virConnectPtr, dev: virNodeDevicePtr, _o: *mut c_void) {
    record("update", dev, -1);
}

/// The XML of the device handle the NIC's filtered callback got last.
static NIC_XML: Mutex<Option<String>> = Mutex::new(None);

fn xml_of(dev: virNodeDevicePtr) -> String {
    let p = unsafe { virNodeDeviceGetXMLDesc(dev, 0) };
    if p.is_null() {
        return format!("no XML: {:?}", last_error());
    }
    let xml = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    unsafe { libc::free(p.cast()) };
    xml
}

unsafe extern "C" fn on_update_nic(_c: virConnectPtr, dev: virNodeDevicePtr, _o: *mut c_void) {
    record("update-nic", dev, -1);
    *NIC_XML.lock().unwrap() = Some(xml_of(dev));
}

unsafe extern "C" fn free_opaque(o: *mut c_void) {
    let which = CStr::from_ptr(o as *const std::ffi::c_char).to_str().unwrap();
    let which: &'static str = Box::leak(which.to_string().into_boxed_str());
    SEEN.lock().unwrap().get_or_insert_with(Seen::default).freed.push(which);
}

fn lifecycle() -> virConnectNodeDeviceEventGenericCallback {
    // VIR_NODE_DEVICE_EVENT_CALLBACK(): the lifecycle signature cast to the generic one.
    Some(unsafe {
        std::mem::transmute::<
            unsafe extern "C" fn(virConnectPtr, virNodeDevicePtr, c_int, c_int, *mut c_void),
            unsafe extern "C" fn(virConnectPtr, virNodeDevicePtr, *mut c_void),
        >(on_lifecycle)
    })
}

const LIFECYCLE: c_int = virNodeDeviceEventID::VIR_NODE_DEVICE_EVENT_ID_LIFECYCLE as c_int;
const UPDATE: c_int = virNodeDeviceEventID::VIR_NODE_DEVICE_EVENT_ID_UPDATE as c_int;
const CREATED: c_int = virNodeDeviceEventLifecycleType::VIR_NODE_DEVICE_EVENT_CREATED as c_int;
const DELETED: c_int = virNodeDeviceEventLifecycleType::VIR_NODE_DEVICE_EVENT_DELETED as c_int;

fn readable(fd: c_int, ms: c_int) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    unsafe { libc::poll(&mut p, 1, ms) == 1 }
}

#[test]
fn registering_checks_arguments_in_libvirts_order_and_needs_an_event_loop() {
    let _g = SIM.lock().unwrap_or_else(|p| p.into_inner());
    let c = open();
    let other = open();
    let name = CString::new(NIC).unwrap();
    let dev_other = unsafe { virNodeDeviceLookupByName(other, name.as_ptr()) };
    unsafe {
        let r = virConnectNodeDeviceEventRegisterAny(
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            UPDATE,
            Some(on_update),
            std::ptr::null_mut(),
            None,
        );
        assert_eq!((r, virGetLastErrorCode()), (-1, INVALID_CONN));
        // A device of another connection, before cb and eventID are looked at.
        let r = virConnectNodeDeviceEventRegisterAny(c, dev_other, -5, None, std::ptr::null_mut(), None);
        let (code, dom, msg) = last_error();
        assert_eq!((r, code, dom), (-1, INVALID_ARG, FROM_NODEDEV), "{msg}");
        assert!(msg.contains("must match connection"), "{msg}");
        let r = virConnectNodeDeviceEventRegisterAny(c, std::ptr::null_mut(), -1, None, std::ptr::null_mut(), None);
        let (code, _, msg) = last_error();
        assert_eq!((r, code), (-1, INVALID_ARG));
        assert!(msg.contains("cb"), "NULL cb is checked before eventID: {msg}");
        for bad in [-1, 2, 100] {
            let r = virConnectNodeDeviceEventRegisterAny(
                c,
                std::ptr::null_mut(),
                bad,
                Some(on_update),
                std::ptr::null_mut(),
                None,
            );
            assert_eq!((r, last_error().0, last_error().1), (-1, INVALID_ARG, FROM_NODEDEV), "eventID {bad}");
        }
        // No event loop registered in this process, no descriptor taken:
        // libvirt's error (its event timer cannot be added), freecb not called.
        let tag = CString::new("never").unwrap();
        let r = virConnectNodeDeviceEventRegisterAny(
            c,
            std::ptr::null_mut(),
            UPDATE,
            Some(on_update),
            tag.as_ptr() as *mut c_void,
            Some(free_opaque),
        );
        let (code, dom, msg) = last_error();
        assert_eq!((r, code, dom), (-1, INTERNAL_ERROR, FROM_NONE), "{msg}");
        assert!(msg.contains("virEventRegisterDefaultImpl"), "{msg}");
        assert!(take().freed.is_empty());
        // Deregistering: negative id (libvirt's argument check), unknown id.
        assert_eq!(virConnectNodeDeviceEventDeregisterAny(c, -1), -1);
        assert_eq!((last_error().0, last_error().1), (INVALID_ARG, FROM_NODEDEV));
        assert_eq!(virConnectNodeDeviceEventDeregisterAny(c, 7), -1);
        let (code, dom, msg) = last_error();
        assert_eq!((code, dom), (INVALID_ARG, FROM_NONE));
        assert!(msg.contains("could not find event callback 7"), "{msg}");
        assert_eq!(virConnectNodeDeviceEventDeregisterAny(std::ptr::null_mut(), 0), -1);
        assert_eq!(virGetLastErrorCode(), INVALID_CONN);
        // The extension's own errors.
        assert_eq!(virConnectNodeDeviceEventDispatch(c, 0), -1);
        assert_eq!(last_error().0, OPERATION_INVALID);
        assert_eq!(virConnectNodeDeviceEventGetFD(c, 1), -1);
        assert_eq!(last_error().0, INVALID_ARG);
        assert_eq!(virConnectNodeDeviceEventGetFD(std::ptr::null_mut(), 0), -1);
        assert_eq!(virGetLastErrorCode(), INVALID_CONN);
        virNodeDeviceFree(dev_other);
        virConnectClose(other);
        virConnectClose(c);
    }
}

#[test]
fn a_test_tree_under_another_root_has_no_events() {
    let dir = std::env::temp_dir().join(format!("nodedev-events-fd-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sys/bus/pci/devices")).unwrap();
    let uri =
        CString::new(format!("nodedev:///system?root={}&statedir={}/state", dir.display(), dir.display())).unwrap();
    unsafe {
        let c = virConnectOpen(uri.as_ptr());
        assert!(!c.is_null(), "{:?}", last_error());
        assert_eq!(virConnectNodeDeviceEventGetFD(c, 0), -1);
        let (code, _, msg) = last_error();
        assert_eq!(code, 84, "{msg}"); // VIR_ERR_OPERATION_UNSUPPORTED
        assert!(msg.contains("no kernel events"), "{msg}");
        virConnectClose(c);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_descriptor_wakes_only_for_kernel_events_and_dispatch_calls_the_callbacks() {
    let _g = SIM.lock().unwrap_or_else(|p| p.into_inner());
    take();
    let c = open();
    let nic_name = CString::new(NIC).unwrap();
    let pf_name = CString::new(PF).unwrap();
    unsafe {
        let fd = virConnectNodeDeviceEventGetFD(c, 0);
        assert!(fd >= 0, "{:?}", last_error());
        assert_eq!(virConnectNodeDeviceEventGetFD(c, 0), fd, "one listener per connection");
        // Registering needs no loop once the descriptor is taken.
        let t_life = CString::new("lifecycle").unwrap();
        let t_upd = CString::new("update").unwrap();
        let t_nic = CString::new("update-nic").unwrap();
        let life = virConnectNodeDeviceEventRegisterAny(
            c,
            std::ptr::null_mut(),
            LIFECYCLE,
            lifecycle(),
            t_life.as_ptr() as *mut c_void,
            Some(free_opaque),
        );
        let upd = virConnectNodeDeviceEventRegisterAny(
            c,
            std::ptr::null_mut(),
            UPDATE,
            Some(on_update),
            t_upd.as_ptr() as *mut c_void,
            Some(free_opaque),
        );
        let nic = virNodeDeviceLookupByName(c, nic_name.as_ptr());
        let filtered = virConnectNodeDeviceEventRegisterAny(
            c,
            nic,
            UPDATE,
            Some(on_update_nic),
            t_nic.as_ptr() as *mut c_void,
            Some(free_opaque),
        );
        assert_eq!((life, upd, filtered), (0, 1, 2), "libvirt's ids count from 0 per connection");
        // The same callback for the same event and device again.
        assert_eq!(
            virConnectNodeDeviceEventRegisterAny(
                c,
                std::ptr::null_mut(),
                UPDATE,
                Some(on_update),
                std::ptr::null_mut(),
                None
            ),
            -1
        );
        let (code, dom, msg) = last_error();
        assert_eq!((code, dom), (INVALID_ARG, FROM_NONE));
        assert!(msg.contains("already tracked"), "{msg}");

        // Idle: nothing to read, nothing dispatched.
        assert!(!readable(fd, 50));
        assert_eq!(virConnectNodeDeviceEventDispatch(c, 0), 0);

        // A foreign tool unbinds the NIC with a write of its own: one UPDATE,
        // for the catch-all and the NIC's filtered callback.
        foreign_write(&format!("bus/pci/devices/{NIC}/driver/unbind"), NIC);
        assert!(readable(fd, 1000));
        // Two uevents: its interface's remove (a LIFECYCLE nobody here
        // registered for), then the function's unbind.
        assert_eq!(virConnectNodeDeviceEventDispatch(c, 0), 2);
        assert!(!readable(fd, 0), "drained");
        let seen = take();
        let names: Vec<(&str, &str, &str)> =
            seen.events.iter().map(|(w, n, p, _)| (*w, n.as_str(), p.as_str())).collect();
        // The parent as a lookup names it (from the uevent's DEVPATH).
        let parent = CStr::from_ptr(virNodeDeviceGetParent(nic)).to_str().unwrap();
        // Its interface first: DELETED (unregister_netdev in the driver's remove).
        assert_eq!(
            names,
            [
                ("lifecycle", "net_eth1_52_54_00_03_01_00", "pci_0000_03_01_0"),
                ("update", "pci_0000_03_01_0", parent),
                ("update-nic", "pci_0000_03_01_0", parent)
            ]
        );
        assert_eq!(seen.events[0].3, DELETED);
        // The event's handle is placed from the uevent's DEVPATH: its XML
        // (path, parent) is the XML of a handle looked up by name.
        let event_xml = NIC_XML.lock().unwrap().take().expect("the NIC's callback ran");
        assert_eq!(event_xml, xml_of(nic));
        assert!(event_xml.contains(&format!("/{NIC}</path>")), "{event_xml}");
        foreign_write("bus/pci/drivers_probe", NIC);
        assert_eq!(virConnectNodeDeviceEventDispatch(c, 0), 2);
        let seen = take();
        assert_eq!(seen.events.len(), 3);
        assert_eq!((seen.events[0].1.as_str(), seen.events[0].3), ("net_eth1_52_54_00_03_01_00", CREATED));

        // VFs through nodedev's own call on another connection: DELETED per
        // VF removed, CREATED per VF made; the NIC's filter sees none.
        let other = open();
        let pf = virNodeDeviceLookupByName(other, pf_name.as_ptr());
        assert_eq!(virNodeDeviceSetVFs(pf, 0, std::ptr::null(), 0), 0, "{:?}", last_error());
        assert!(readable(fd, 1000));
        assert!(virConnectNodeDeviceEventDispatch(c, 0) >= 3);
        let seen = take();
        let deleted: Vec<&str> =
            seen.events.iter().filter(|e| e.0 == "lifecycle" && e.3 == DELETED).map(|e| e.1.as_str()).collect();
        assert_eq!(deleted, ["pci_0000_04_10_0", "pci_0000_04_10_2", "pci_0000_04_10_4"], "{seen:?}");
        assert!(seen.events.iter().all(|e| e.0 != "update-nic"));
        let vfio = CString::new("vfio").unwrap();
        assert_eq!(virNodeDeviceSetVFs(pf, 5, vfio.as_ptr(), 0), 5, "{:?}", last_error());
        virConnectNodeDeviceEventDispatch(c, 0);
        let seen = take();
        let created: Vec<&str> =
            seen.events.iter().filter(|e| e.0 == "lifecycle" && e.3 == CREATED).map(|e| e.1.as_str()).collect();
        assert_eq!(created.len(), 5, "{seen:?}");
        // Each VF is bound to vfio-pci once made: UPDATEs after its CREATED.
        assert!(seen.events.iter().filter(|e| e.0 == "update").count() >= 5, "{seen:?}");
        // A foreign shell-style write removes them: DELETED for each.
        foreign_write(&format!("bus/pci/devices/{PF}/sriov_numvfs"), "0");
        virConnectNodeDeviceEventDispatch(c, 0);
        assert_eq!(take().events.iter().filter(|e| e.3 == DELETED).count(), 5);
        foreign_write(&format!("bus/pci/devices/{PF}/sriov_numvfs"), "3");
        virConnectNodeDeviceEventDispatch(c, 0);
        take();

        // Deregistering calls freecb at once; the others stay.
        assert_eq!(virConnectNodeDeviceEventDeregisterAny(c, upd), 0);
        assert_eq!(take().freed, ["update"]);
        assert_eq!(virConnectNodeDeviceEventDeregisterAny(c, upd), -1);
        foreign_write(&format!("bus/pci/devices/{NIC}/driver/unbind"), NIC);
        virConnectNodeDeviceEventDispatch(c, 0);
        let seen = take();
        assert_eq!(seen.events.iter().map(|e| e.0).collect::<Vec<_>>(), ["lifecycle", "update-nic"]);
        foreign_write("bus/pci/drivers_probe", NIC);
        virConnectNodeDeviceEventDispatch(c, 0);
        take();

        // The connection goes (its last reference, the device handles
        // included): the remaining callbacks' freecb runs.
        virNodeDeviceFree(nic);
        virNodeDeviceFree(pf);
        virConnectClose(other);
        assert_eq!(virConnectClose(c), 0);
        let mut freed = take().freed;
        freed.sort();
        assert_eq!(freed, ["lifecycle", "update-nic"]);
    }
}

/// A callback that deregisters itself: not called again, even for the
/// next events of the same dispatch, and its freecb runs after it returned.
static SELF_ID: Mutex<(c_int, usize, bool)> = Mutex::new((-1, 0, false));

unsafe extern "C" fn once(conn: virConnectPtr, _dev: virNodeDevicePtr, _o: *mut c_void) {
    let id = {
        let mut s = SELF_ID.lock().unwrap();
        s.1 += 1;
        assert!(!s.2, "freecb ran before the callback returned");
        s.0
    };
    assert_eq!(virConnectNodeDeviceEventDeregisterAny(conn, id), 0);
    assert!(!SELF_ID.lock().unwrap().2, "freecb ran inside the dispatch");
}

unsafe extern "C" fn once_freed(_o: *mut c_void) {
    SELF_ID.lock().unwrap().2 = true;
}

#[test]
fn a_callback_may_deregister_itself_during_a_dispatch() {
    let _g = SIM.lock().unwrap_or_else(|p| p.into_inner());
    let c = open();
    unsafe {
        assert!(virConnectNodeDeviceEventGetFD(c, 0) >= 0);
        let id = virConnectNodeDeviceEventRegisterAny(
            c,
            std::ptr::null_mut(),
            UPDATE,
            Some(once),
            std::ptr::null_mut(),
            Some(once_freed),
        );
        SELF_ID.lock().unwrap().0 = id;
        // Two UPDATEs in one dispatch (and the interface's DELETED and CREATED).
        foreign_write(&format!("bus/pci/devices/{NIC}/driver/unbind"), NIC);
        foreign_write("bus/pci/drivers_probe", NIC);
        assert_eq!(virConnectNodeDeviceEventDispatch(c, 0), 4);
        let s = *SELF_ID.lock().unwrap();
        assert_eq!((s.1, s.2), (1, true), "called once, freed after");
        virConnectClose(c);
    }
}

// ---- Network interfaces and overflows (events2) ----

static NET_SEEN: Mutex<Vec<(String, c_int, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn on_net(_c: virConnectPtr, dev: virNodeDevicePtr, event: c_int, _d: c_int, _o: *mut c_void) {
    let name = CStr::from_ptr(virNodeDeviceGetName(dev)).to_string_lossy().into_owned();
    // The XML of a CREATED interface is readable in the callback; a DELETED one is gone.
    let xml = if event == CREATED { xml_of(dev) } else { String::new() };
    NET_SEEN.lock().unwrap().push((name, event, xml));
}

fn net_lifecycle() -> virConnectNodeDeviceEventGenericCallback {
    Some(unsafe {
        std::mem::transmute::<
            unsafe extern "C" fn(virConnectPtr, virNodeDevicePtr, c_int, c_int, *mut c_void),
            unsafe extern "C" fn(virConnectPtr, virNodeDevicePtr, *mut c_void),
        >(on_net)
    })
}

#[test]
fn interfaces_come_and_go_as_lifecycle_events_and_an_overflow_is_counted_and_set_right() {
    let _g = SIM.lock().unwrap_or_else(|p| p.into_inner());
    let kernel = nodedev::uri::test_default_kernel();
    let net = "net_eth1_52_54_00_03_01_00";
    let c = open();
    unsafe {
        let fd = virConnectNodeDeviceEventGetFD(c, 0);
        assert!(fd >= 0);
        assert_eq!(virConnectNodeDeviceEventGetOverflows(c, 0), 0);
        assert_eq!(virConnectNodeDeviceEventGetOverflows(c, 1), -1);
        assert_eq!(last_error().0, INVALID_ARG);
        assert_eq!(virConnectNodeDeviceEventGetOverflows(std::ptr::null_mut(), 0), -1);
        assert_eq!(last_error().0, INVALID_CONN);
        let id = virConnectNodeDeviceEventRegisterAny(
            c,
            std::ptr::null_mut(),
            LIFECYCLE,
            net_lifecycle(),
            std::ptr::null_mut(),
            None,
        );
        assert!(id >= 0);
        NET_SEEN.lock().unwrap().clear();
        foreign_write(&format!("bus/pci/devices/{NIC}/driver/unbind"), NIC);
        foreign_write("bus/pci/drivers_probe", NIC);
        assert!(readable(fd, 1000));
        virConnectNodeDeviceEventDispatch(c, 0);
        let seen = std::mem::take(&mut *NET_SEEN.lock().unwrap());
        assert_eq!(seen.iter().map(|(n, e, _)| (n.as_str(), *e)).collect::<Vec<_>>(), [(net, DELETED), (net, CREATED)]);
        assert!(seen[1].2.contains("<interface>eth1</interface>"), "{}", seen[1].2);
        assert!(seen[1].2.contains("<parent>pci_0000_03_01_0</parent>"), "{}", seen[1].2);

        // ip link set dev eth1 name lan0: the old name DELETED, the new CREATED.
        kernel.rename_link("eth1", "lan0").unwrap();
        virConnectNodeDeviceEventDispatch(c, 0);
        let seen = std::mem::take(&mut *NET_SEEN.lock().unwrap());
        assert_eq!(
            seen.iter().map(|(n, e, _)| (n.as_str(), *e)).collect::<Vec<_>>(),
            [(net, DELETED), ("net_lan0_52_54_00_03_01_00", CREATED)]
        );
        kernel.rename_link("lan0", "eth1").unwrap();
        virConnectNodeDeviceEventDispatch(c, 0);
        NET_SEEN.lock().unwrap().clear();
        virConnectClose(c);

        // A listener with room for 2 messages, 4 sent: an overflow, and the
        // callbacks still learn that the interface went.
        kernel.set_uevent_buffer(2);
        let c = open();
        let fd = virConnectNodeDeviceEventGetFD(c, 0);
        kernel.set_uevent_buffer(4096);
        let id = virConnectNodeDeviceEventRegisterAny(
            c,
            std::ptr::null_mut(),
            LIFECYCLE,
            net_lifecycle(),
            std::ptr::null_mut(),
            None,
        );
        assert!(id >= 0);
        foreign_write(&format!("bus/pci/devices/{NIC}/driver/unbind"), "0000:03:01.0");
        foreign_write("bus/pci/devices/0000:03:02.0/driver/unbind", "0000:03:02.0");
        assert!(readable(fd, 1000));
        virConnectNodeDeviceEventDispatch(c, 0);
        assert_eq!(virConnectNodeDeviceEventGetOverflows(c, 0), 1);
        let seen = std::mem::take(&mut *NET_SEEN.lock().unwrap());
        let deleted: Vec<&str> = seen.iter().filter(|(_, e, _)| *e == DELETED).map(|(n, _, _)| n.as_str()).collect();
        assert!(deleted.contains(&net), "{seen:?}");
        assert!(deleted.iter().any(|n| n.starts_with("net_eth2_")), "{seen:?}");
        foreign_write("bus/pci/drivers_probe", NIC);
        foreign_write("bus/pci/drivers_probe", "0000:03:02.0");
        virConnectNodeDeviceEventDispatch(c, 0);
        assert_eq!(NET_SEEN.lock().unwrap().len(), 2);
        NET_SEEN.lock().unwrap().clear();
        virConnectClose(c);
    }
}
