//! The Rust API and the C ABI (and the CLI) are one library over one set of
//! records and locks: what a Rust VMM does through `nodedev::Host` a C
//! daemon sees through libvirt's calls and the CLI sees in another process,
//! and the other way round.
//!
//! The C functions are declared here as a C caller declares them (by their
//! exported names), not through the crate's capi module paths.

use nodedev::{DetachOptions, Error, Host, PrepareOptions, Stub};
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::path::PathBuf;
use std::process::{Command, Output};

#[allow(non_camel_case_types)]
type virConnectPtr = *mut c_void;
#[allow(non_camel_case_types)]
type virNodeDevicePtr = *mut c_void;

const VIR_NODE_DEVICE_PREPARE_MANAGED: c_uint = 1 << 18;

extern "C" {
    fn virConnectOpen(name: *const c_char) -> virConnectPtr;
    fn virConnectClose(conn: virConnectPtr) -> c_int;
    fn virNodeDeviceLookupByName(conn: virConnectPtr, name: *const c_char) -> virNodeDevicePtr;
    fn virNodeDeviceFree(dev: virNodeDevicePtr) -> c_int;
    fn virNodeDeviceGetXMLDesc(dev: virNodeDevicePtr, flags: c_uint) -> *mut c_char;
    fn virNodeDeviceDetachFlags(dev: virNodeDevicePtr, driver: *const c_char, flags: c_uint) -> c_int;
    fn virNodeDeviceReAttach(dev: virNodeDevicePtr) -> c_int;
    fn virNodeDevicePrepare(
        conn: virConnectPtr,
        owner: *const c_char,
        devs: *mut virNodeDevicePtr,
        ndevs: c_uint,
        driver: *const c_char,
        flags: c_uint,
    ) -> c_int;
    fn virNodeDeviceRelease(
        conn: virConnectPtr,
        owner: *const c_char,
        devs: *mut virNodeDevicePtr,
        ndevs: c_uint,
        flags: c_uint,
    ) -> c_int;
    fn virGetLastErrorMessage() -> *const c_char;
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// A C connection and device handles, closed and freed on drop.
struct C {
    conn: virConnectPtr,
    devs: Vec<virNodeDevicePtr>,
}

impl C {
    fn open(uri: &str) -> C {
        let conn = unsafe { virConnectOpen(cstr(uri).as_ptr()) };
        assert!(!conn.is_null(), "virConnectOpen({uri}): {}", last_error());
        C { conn, devs: Vec::new() }
    }

    fn dev(&mut self, name: &str) -> virNodeDevicePtr {
        let d = unsafe { virNodeDeviceLookupByName(self.conn, cstr(name).as_ptr()) };
        assert!(!d.is_null(), "lookup {name}: {}", last_error());
        self.devs.push(d);
        d
    }

    fn xml(&mut self, name: &str) -> String {
        let d = self.dev(name);
        unsafe {
            let p = virNodeDeviceGetXMLDesc(d, 0);
            assert!(!p.is_null(), "{}", last_error());
            let s = CStr::from_ptr(p).to_string_lossy().into_owned();
            libc::free(p.cast());
            s
        }
    }
}

impl Drop for C {
    fn drop(&mut self) {
        unsafe {
            for d in self.devs.drain(..) {
                virNodeDeviceFree(d);
            }
            virConnectClose(self.conn);
        }
    }
}

fn last_error() -> String {
    let p = unsafe { virGetLastErrorMessage() };
    if p.is_null() {
        String::new()
    } else {
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

fn driver_in(xml: &str) -> Option<String> {
    let start = xml.find("<driver>")?;
    let inner = &xml[start..xml[start..].find("</driver>")? + start];
    let name = inner.split("<name>").nth(1)?.split("</name>").next()?;
    Some(name.to_string())
}

/// test:///default is one simulated host per process: the Rust API and the
/// C ABI of this test share it, as a Rust VMM and a C daemon share a real one.
#[test]
fn a_rust_api_change_is_seen_by_the_c_abi_and_a_c_change_by_the_rust_api() {
    let host = Host::open("test:///default").unwrap();
    let mut c = C::open("test:///default");

    // Rust prepares a VF for its guest: C sees it on vfio-pci, and can
    // neither take it for another guest nor give it back to the host.
    let vf = host.lookup("0000:04:10.0").unwrap();
    host.prepare("rust-vm", &[vf], Stub::Vfio, PrepareOptions { managed: true, force: false }).unwrap();
    assert_eq!(driver_in(&c.xml("pci_0000_04_10_0")).as_deref(), Some("vfio-pci"));
    let mut d = c.dev("pci_0000_04_10_0");
    let rc = unsafe { virNodeDevicePrepare(c.conn, cstr("c-vm").as_ptr(), &mut d, 1, cstr("vfio").as_ptr(), 0) };
    assert_eq!(rc, -1);
    assert!(last_error().contains("rust-vm"), "{}", last_error());
    assert_eq!(unsafe { virNodeDeviceReAttach(d) }, -1);
    assert!(last_error().contains("rust-vm"), "{}", last_error());
    // C releases the Rust guest's device (by owner, as a daemon cleaning up
    // after a VMM would): Rust sees it back on its original driver.
    assert_eq!(unsafe { virNodeDeviceRelease(c.conn, cstr("rust-vm").as_ptr(), std::ptr::null_mut(), 0, 0) }, 1);
    assert_eq!(host.driver(&vf).unwrap().as_deref(), Some("igbvf"));
    assert!(host.assignments().unwrap().is_empty());

    // C detaches a device to pci-stub: Rust sees the driver and the record
    // C wrote (original driver), and Rust's reattach puts it back from it.
    let vf2 = host.lookup("pci_0000_04_10_2").unwrap();
    let d2 = c.dev("pci_0000_04_10_2");
    assert_eq!(unsafe { virNodeDeviceDetachFlags(d2, cstr("kvm").as_ptr(), 0) }, 0, "{}", last_error());
    assert_eq!(host.driver(&vf2).unwrap().as_deref(), Some("pci-stub"));
    let listed = nodedev::inventory::device(&host, &vf2).unwrap();
    assert!(listed.detached_by_nodedev);
    assert_eq!(listed.original_driver.as_deref(), Some("igbvf"));
    host.reattach(&vf2, None).unwrap();
    assert_eq!(driver_in(&c.xml("pci_0000_04_10_2")).as_deref(), Some("igbvf"));

    // C prepares for its guest: Rust's prepare and group detach are refused,
    // naming the C guest; after C's release, Rust may.
    let mut d4 = c.dev("pci_0000_04_10_4");
    let flags = VIR_NODE_DEVICE_PREPARE_MANAGED;
    let rc = unsafe { virNodeDevicePrepare(c.conn, cstr("c-vm").as_ptr(), &mut d4, 1, cstr("vfio").as_ptr(), flags) };
    assert_eq!(rc, 0, "{}", last_error());
    let vf4 = host.lookup("0000:04:10.4").unwrap();
    assert_eq!(host.assignments().unwrap(), vec![(vf4.to_string(), "c-vm".to_string())]);
    let managed = PrepareOptions { managed: true, force: false };
    let err = host.prepare("rust-vm", &[vf4], Stub::Vfio, managed).unwrap_err();
    assert!(matches!(err, Error::OperationInvalid(_)) && err.to_string().contains("c-vm"), "{err}");
    let err = host.detach_with(&vf4, Stub::Kvm, DetachOptions::default()).unwrap_err();
    assert!(err.to_string().contains("c-vm"), "{err}");
    assert_eq!(unsafe { virNodeDeviceRelease(c.conn, cstr("c-vm").as_ptr(), &mut d4, 1, 0) }, 1);
    host.prepare("rust-vm", &[vf4], Stub::Vfio, managed).unwrap();
    assert_eq!(host.release("rust-vm", None).unwrap(), 1);
    assert_eq!(host.driver(&vf4).unwrap().as_deref(), Some("igbvf"));
}

fn nodedev(uri: &str, script: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nodedev"))
        .args(["-c", uri, script])
        .env_remove("NODEDEV_DEBUG")
        .env_remove("NODEDEV_URI")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Two processes on one host description and one record directory: the
/// test (the Rust API, a VMM) and the CLI. Each process simulates its own
/// kernel, so the devices start on vfio-pci in the description and both
/// sides assign them unmanaged: what they share is what a real host shares,
/// the records and the lock in the state directory.
#[test]
fn a_rust_vmm_and_the_cli_in_other_processes_see_each_others_assignments() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tmp/rustapi-shared");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A host whose three VFs are on vfio-pci from the start.
    let o = nodedev("test:///default", "detach 0000:04:10.0; detach 0000:04:10.2; detach 0000:04:10.4; dump-host");
    assert!(o.status.success(), "{}", text(&o));
    let json = String::from_utf8_lossy(&o.stdout);
    let description = &json[json.find('{').expect("a host description")..];
    std::fs::write(dir.join("host.json"), description).unwrap();
    let uri = format!("test://{}/host.json?statedir={}/state", dir.display(), dir.display());

    let host = Host::open(&uri).unwrap();
    let (a, b) = (host.lookup("0000:04:10.0").unwrap(), host.lookup("0000:04:10.2").unwrap());
    let unmanaged = PrepareOptions::default();
    host.prepare("rust-vm", &[a], Stub::Vfio, unmanaged).unwrap();

    // The CLI process sees the Rust guest's device and cannot take it.
    let o = nodedev(&uri, "list --json");
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let owner_of = |list: &serde_json::Value, addr: &str| {
        list["devices"].as_array().unwrap().iter().find(|d| d["address"] == addr).unwrap()["owner"].clone()
    };
    assert_eq!(owner_of(&list, "0000:04:10.0"), "rust-vm");
    let o = nodedev(&uri, "prepare c-vm 0000:04:10.0");
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("rust-vm"), "{}", text(&o));

    // The CLI assigns another device: the Rust API sees it and cannot take it.
    let o = nodedev(&uri, "prepare c-vm 0000:04:10.2");
    assert!(o.status.success(), "{}", text(&o));
    let mut seen = host.assignments().unwrap();
    seen.sort();
    assert_eq!(seen, vec![(a.to_string(), "rust-vm".to_string()), (b.to_string(), "c-vm".to_string())]);
    let err = host.prepare("rust-vm", &[b], Stub::Vfio, unmanaged).unwrap_err();
    assert!(err.to_string().contains("c-vm"), "{err}");
    assert_eq!(nodedev::inventory::device(&host, &b).unwrap().owner.as_deref(), Some("c-vm"));

    // Each releases its own; nothing is left.
    assert_eq!(host.release("rust-vm", None).unwrap(), 1);
    let o = nodedev(&uri, "release c-vm");
    assert!(o.status.success(), "{}", text(&o));
    assert!(host.assignments().unwrap().is_empty());
    let o = nodedev(&uri, "list --json");
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(list["devices"].as_array().unwrap().iter().all(|d| d["owner"].is_null()));
}

/// What a VMM keeps in its own types: a `Host` shared between threads.
#[test]
fn a_host_is_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Host>();
    send_sync::<Error>();
    let host = std::sync::Arc::new(Host::open("test:///default").unwrap());
    let threads: Vec<_> = ["0000:03:01.0", "0000:06:00.0"]
        .into_iter()
        .map(|name| {
            let host = host.clone();
            std::thread::spawn(move || host.xml(&host.lookup(name).unwrap()).unwrap())
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap().contains("<device>"));
    }
}

/// What `recover` reports is all in the documented API: how far the
/// interrupted operation got is a type a VMM can name and match, not one
/// from a hidden module that may change in any release.
#[test]
fn what_recover_reports_is_in_the_documented_api() {
    fn step_of(r: &nodedev::Recovered) -> Option<nodedev::Step> {
        r.step
    }
    // A record that cannot be used is reported with no step, a usable one with its step.
    let uri = shared_host("rustapi-recover-step");
    let host = Host::open(&uri).unwrap();
    let vf = host.lookup("0000:04:10.0").unwrap();
    host.prepare("vm-a", &[vf], Stub::Vfio, PrepareOptions::default()).unwrap();
    let state = PathBuf::from(uri.split("statedir=").nth(1).unwrap());
    std::fs::write(state.join("0000:04:10.0.json"), "{not json").unwrap();
    let reported = host.recover().unwrap();
    assert!(reported.iter().any(|r| r.address == "0000:04:10.0" && r.step.is_none()), "{reported:?}");
    for r in reported {
        match step_of(&r) {
            Some(nodedev::Step::Detaching | nodedev::Step::Detached | nodedev::Step::Reattaching) | None => {}
            Some(_) => {}
        }
    }
}

/// A host description whose three VFs start on vfio-pci, and a record
/// directory, in `target/tmp/NAME`: the URI of a host that several
/// processes (and several `Host`s of one process) share through its records.
fn shared_host(name: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tmp").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let o = nodedev("test:///default", "detach 0000:04:10.0; detach 0000:04:10.2; detach 0000:04:10.4; dump-host");
    assert!(o.status.success(), "{}", text(&o));
    let json = String::from_utf8_lossy(&o.stdout);
    std::fs::write(dir.join("host.json"), &json[json.find('{').unwrap()..]).unwrap();
    format!("test://{}/host.json?statedir={}/state", dir.display(), dir.display())
}

/// Rust threads (one `Host` each, as VMM workers would) and CLI processes
/// race to assign one device to different guests: exactly one wins, and the
/// record names that one.
#[test]
fn rust_threads_and_other_processes_racing_for_one_device_never_both_win() {
    let uri = shared_host("rustapi-race");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4 + 3));
    let rust: Vec<_> = (0..4)
        .map(|i| {
            let (uri, barrier) = (uri.clone(), barrier.clone());
            std::thread::spawn(move || {
                let host = Host::open(&uri).unwrap();
                let vf = host.lookup("0000:04:10.0").unwrap();
                barrier.wait();
                host.prepare(&format!("rust-{i}"), &[vf], Stub::Vfio, PrepareOptions::default()).is_ok()
            })
        })
        .collect();
    let cli: Vec<_> = (0..3)
        .map(|i| {
            let (uri, barrier) = (uri.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                nodedev(&uri, &format!("prepare c-{i} 0000:04:10.0")).status.success()
            })
        })
        .collect();
    let rust_wins: Vec<usize> =
        rust.into_iter().enumerate().map(|(i, t)| (i, t.join().unwrap())).filter(|(_, w)| *w).map(|(i, _)| i).collect();
    let cli_wins: Vec<usize> =
        cli.into_iter().enumerate().map(|(i, t)| (i, t.join().unwrap())).filter(|(_, w)| *w).map(|(i, _)| i).collect();
    assert_eq!(rust_wins.len() + cli_wins.len(), 1, "rust {rust_wins:?}, cli {cli_wins:?}");
    let winner = match (rust_wins.first(), cli_wins.first()) {
        (Some(i), _) => format!("rust-{i}"),
        (_, Some(i)) => format!("c-{i}"),
        _ => unreachable!(),
    };
    let host = Host::open(&uri).unwrap();
    assert_eq!(host.assignments().unwrap(), vec![("0000:04:10.0".to_string(), winner.clone())]);
    assert_eq!(host.release(&winner, None).unwrap(), 1);
}

/// A read-only host refuses every change, each with Error::Denied, and
/// changes nothing.
#[test]
fn a_read_only_host_refuses_every_change() {
    let uri = shared_host("rustapi-read-only");
    let ro = Host::open_read_only(&uri).unwrap();
    let rw = Host::open(&uri).unwrap();
    let (nic, vf, pf) =
        (ro.lookup("0000:03:01.0").unwrap(), ro.lookup("0000:04:10.2").unwrap(), ro.lookup("0000:04:00.0").unwrap());
    rw.prepare("vm-a", &[vf], Stub::Vfio, PrepareOptions::default()).unwrap();
    let managed = PrepareOptions { managed: true, force: false };
    let attempts: Vec<(&str, nodedev::Result<()>)> = vec![
        ("detach", ro.detach(&nic, Stub::Vfio)),
        ("detach group", ro.detach_with(&nic, Stub::Vfio, DetachOptions { group: true, ..Default::default() })),
        ("reattach", ro.reattach(&vf, None)),
        ("reset", ro.reset(&nic)),
        ("prepare managed", ro.prepare("vm-b", &[nic], Stub::Vfio, managed)),
        (
            "prepare unmanaged",
            ro.prepare("vm-b", &[ro.lookup("0000:04:10.4").unwrap()], Stub::Vfio, PrepareOptions::default()),
        ),
        ("release", ro.release("vm-a", None).map(drop)),
        ("set_vf_count", ro.set_vf_count(&pf, 1, None, true).map(drop)),
        ("clear_record", ro.clear_record(&vf).map(drop)),
    ];
    for (what, r) in attempts {
        assert!(matches!(r, Err(Error::Denied(_))), "{what}: {r:?}");
    }
    assert_eq!(ro.assignments().unwrap(), vec![(vf.to_string(), "vm-a".to_string())]);
    assert_eq!(rw.release("vm-a", None).unwrap(), 1);
}

/// An authorization callback that panics unwinds to the caller of the
/// Rust API (never into C) before anything changed: no lock is left held,
/// no record written, and the host serves the next call. One that calls
/// back into the library does not deadlock.
#[test]
fn a_panicking_or_reentrant_authorizer_leaves_the_host_usable() {
    let uri = shared_host("rustapi-authorizer");
    let host = std::sync::Arc::new(Host::open(&uri).unwrap());
    let vf = host.lookup("0000:04:10.0").unwrap();
    host.set_authorizer(Some(std::sync::Arc::new(|_: &nodedev::AuthRequest<'_>| panic!("policy bug"))));
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        host.prepare("vm-a", &[vf], Stub::Vfio, PrepareOptions::default())
    }));
    assert!(unwound.is_err(), "the panic reaches the Rust caller");
    assert!(host.assignments().unwrap().is_empty());
    // Another process takes the host lock at once.
    let o = nodedev(&uri, "prepare c-vm 0000:04:10.0; release c-vm");
    assert!(o.status.success(), "{}", text(&o));

    let weak = std::sync::Arc::downgrade(&host);
    host.set_authorizer(Some(std::sync::Arc::new(move |req: &nodedev::AuthRequest<'_>| {
        let h = weak.upgrade().expect("the host");
        // Reads through the same Host, from inside the callback.
        h.driver(req.address).is_ok() && h.assignments().is_ok() && h.xml(req.address).is_ok()
    })));
    let start = std::time::Instant::now();
    host.prepare("vm-a", &[vf], Stub::Vfio, PrepareOptions::default()).unwrap();
    assert_eq!(host.release("vm-a", None).unwrap(), 1);
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "{:?}", start.elapsed());
}
