//! The fuzz targets' bodies, shared by `cargo fuzz` (fuzz/fuzz_targets/*)
//! and the stable, bounded run in `cargo test` (tests/fuzz.rs). Each takes
//! arbitrary bytes and panics only on a real bug: a panic escaping a parser,
//! a C call reporting a caught panic (VIR_ERR_INTERNAL_ERROR saying it is a bug), or a path
//! outside the sysfs root.

#![allow(dead_code)]

use nodedev::capi::assign::{virNodeDevicePrepare, virNodeDeviceRelease};
use nodedev::capi::connect::{virConnectClose, virConnectOpen, virConnectOpenReadOnly};
use nodedev::capi::error::{virGetLastErrorCode, virGetLastErrorMessage, virResetLastError};
use nodedev::capi::nodedev::{
    virNodeDeviceDetachFlags, virNodeDeviceFree, virNodeDeviceGetXMLDesc, virNodeDeviceLookupByName,
    virNodeDeviceReAttachFlags, virNodeDeviceReset,
};
use nodedev::capi::virConnectPtr;
use nodedev::state::StateStore;
use nodedev::sysfs::host::HostSysfs;
use nodedev::sysfs::sim::SimKernel;
use nodedev::{Host, HostOptions, PciAddress, Policy, Stub};
use std::ffi::{c_char, c_uint, CString};
use std::path::Path;
use std::sync::{Arc, OnceLock};

const INTERNAL_ERROR: i32 = 1;

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// Device names: both spellings; what parses must print back the same.
pub fn pci_address(data: &[u8]) {
    let s = text(data);
    if let Ok(a) = PciAddress::parse(&s) {
        assert_eq!(PciAddress::parse(&a.to_string()).ok(), Some(a), "{s:?}");
        assert_eq!(PciAddress::parse(&a.node_name()).ok(), Some(a), "{s:?}");
    }
}

/// URIs: parsing never touches a file and never panics.
pub fn uri(data: &[u8]) {
    let s = text(data);
    if let Ok((target, params)) = nodedev::uri::parse(&s) {
        for p in [&params.root, &params.statedir, &params.policy].into_iter().flatten() {
            assert!(p.starts_with('/'), "{s:?}: relative path {p:?} accepted");
        }
        if params.root.is_some() {
            assert_eq!(target, nodedev::uri::Target::System, "{s:?}");
        }
    }
}

/// Policy files.
pub fn policy(data: &[u8]) {
    let _ = Policy::parse(&text(data), "fuzz");
}

/// State record files: whatever the bytes, parsing never panics, and a
/// record it accepts is valid and survives being written and read again.
pub fn state_record(data: &[u8]) {
    const ADDR: &str = "0000:03:01.0";
    if let Ok(r) = nodedev::state::parse_record_file(data, ADDR) {
        assert_eq!(r.address, ADDR);
        let again = nodedev::state::record_file_bytes(&r).expect("a valid record fits its slot");
        assert_eq!(nodedev::state::parse_record_file(&again, ADDR).as_ref(), Ok(&r));
    }
}

/// Host descriptions: a valid one yields a host whose every device lists,
/// describes and survives a detach/reattach attempt.
pub fn host_spec(data: &[u8]) {
    let Ok(sim) = SimKernel::from_json(&text(data)) else { return };
    let host = Host::new(Arc::new(sim), StateStore::memory(), HostOptions::default());
    let Ok(devices) = host.list() else { return };
    for d in devices.iter().take(16) {
        let _ = host.xml(d);
        let _ = host.group(d);
        let _ = host.host_uses(d);
        if host.detach(d, Stub::Kvm).is_ok() {
            let _ = host.reattach(d, None);
        }
    }
}

/// Paths handed to the real-sysfs backend stay under its root.
pub fn sysfs_path(data: &[u8]) {
    let root = Path::new("/nonexistent-nodedev-root");
    let s = text(data);
    if let Ok(p) = HostSysfs::new(root).resolve(&s) {
        assert!(p.starts_with(root.join("sys")), "{s:?} -> {}", p.display());
        assert!(!p.components().any(|c| c == std::path::Component::ParentDir), "{s:?}");
    }
}

fn conn() -> virConnectPtr {
    static CONN: OnceLock<usize> = OnceLock::new();
    *CONN.get_or_init(|| {
        let uri = CString::new("test:///default").unwrap();
        // SAFETY: a valid C string; the connection lives for the process.
        let c = unsafe { virConnectOpen(uri.as_ptr()) };
        assert!(!c.is_null());
        c as usize
    }) as virConnectPtr
}

/// A C call's outcome: success, or an error that is not a caught panic.
fn no_panic(rc: i32, call: &str, input: &[u8]) {
    if rc < 0 {
        // INTERNAL_ERROR alone is also libvirt's answer for a reset without
        // a method; a caught panic says it is a bug in nodedev.
        let code = virGetLastErrorCode();
        let message = unsafe { std::ffi::CStr::from_ptr(virGetLastErrorMessage()) }.to_string_lossy();
        assert!(
            !(code == INTERNAL_ERROR && message.contains("a bug in nodedev")),
            "{call} panicked inside on {input:?}: {message}"
        );
    }
}

/// The C API with hostile names, driver names, owners, flags and URIs.
/// Input: fields separated by NUL bytes: name, driver, owner, uri; the
/// first 4 bytes of the rest are flags.
pub fn capi(data: &[u8]) {
    let mut parts = data.split(|b| *b == 0);
    let mut field = || CString::new(parts.next().unwrap_or(b"").to_vec()).unwrap();
    let (name, driver, owner, uri) = (field(), field(), field(), field());
    let rest: Vec<u8> = data.iter().rev().take(4).copied().collect();
    let flags = rest.iter().fold(0u32, |f, b| (f << 8) | u32::from(*b)) as c_uint;
    let c = conn();
    let opt = |s: &CString| if s.as_bytes().first() == Some(&b'-') { std::ptr::null() } else { s.as_ptr() };
    // SAFETY: every pointer is a valid C string or NULL, handles come from the library.
    unsafe {
        virResetLastError();
        // Only simulated hosts and read-only opens: fuzzing never reaches the real /sys for writing.
        if uri.as_bytes().starts_with(b"test:") {
            let other = virConnectOpenReadOnly(uri.as_ptr());
            if !other.is_null() {
                virConnectClose(other);
            } else {
                no_panic(-1, "virConnectOpenReadOnly", data);
            }
        }
        let dev = virNodeDeviceLookupByName(c, name.as_ptr());
        if dev.is_null() {
            no_panic(-1, "virNodeDeviceLookupByName", data);
            return;
        }
        let xml = virNodeDeviceGetXMLDesc(dev, flags);
        if xml.is_null() {
            no_panic(-1, "virNodeDeviceGetXMLDesc", data);
        } else {
            libc::free(xml.cast());
        }
        let d: *const c_char = opt(&driver);
        no_panic(virNodeDeviceDetachFlags(dev, d, flags), "virNodeDeviceDetachFlags", data);
        no_panic(virNodeDeviceReset(dev), "virNodeDeviceReset", data);
        let mut devs = [dev];
        no_panic(virNodeDevicePrepare(c, opt(&owner), devs.as_mut_ptr(), 1, d, flags), "virNodeDevicePrepare", data);
        no_panic(virNodeDeviceRelease(c, opt(&owner), devs.as_mut_ptr(), 1, flags), "virNodeDeviceRelease", data);
        no_panic(virNodeDeviceReAttachFlags(dev, opt(&driver), flags), "virNodeDeviceReAttachFlags", data);
        // Leave the shared host as found for the next input.
        if virNodeDeviceReAttachFlags(dev, std::ptr::null(), 0) < 0 {
            no_panic(-1, "virNodeDeviceReAttachFlags", data);
        }
        virNodeDeviceFree(dev);
    }
}

/// Vital Product Data (a card's `vpd` file) and configuration space: the
/// parsers never panic, and what they accept is what libvirt's format and
/// nodedev.rng can carry (printable text of at most 255 bytes, known link
/// speeds and widths).
pub fn vpd(data: &[u8]) {
    if let Some(v) = nodedev::host::parse_vpd(data) {
        let ok = |s: &str| s.len() <= 255 && s.bytes().all(|b| (0x20..0x7f).contains(&b));
        assert!(v.name.as_deref().is_none_or(ok), "{data:?}");
        for f in [&v.readonly, &v.readwrite].into_iter().flatten() {
            let named = [&f.change_level, &f.manufacture_id, &f.part_number, &f.serial_number, &f.asset_tag];
            for s in named.into_iter().flatten() {
                assert!(ok(s), "{data:?}: {s:?}");
            }
            for (i, s) in f.vendor.iter().chain(&f.system) {
                assert!(i.is_ascii_uppercase() || i.is_ascii_digit(), "{data:?}: index {i:?}");
                assert!(ok(s), "{data:?}: {s:?}");
            }
            assert!(f.system.iter().all(|(i, _)| *i != 'A'), "YA is the asset tag");
        }
    }
    if let Some(Some(p)) = nodedev::host::pcie_from_config(data) {
        if let Some((cap, sta)) = p.link {
            assert!(cap.width < 64 && sta.width < 64 && sta.port.is_none(), "{data:?}");
        }
    }
}

/// A kernel uevent message (netlink KOBJECT_UEVENT): the parser never
/// panics and round-trips what it accepts; what a watcher of the simulated
/// host makes of it is a PCI function's or an interface's event, named as
/// libvirt names them, whatever the message says.
pub fn uevent(data: &[u8]) {
    use nodedev::sysfs::uevent::Uevent;
    static WATCHER: std::sync::OnceLock<nodedev::events::Watcher> = std::sync::OnceLock::new();
    if let Some(u) = Uevent::parse(data) {
        assert_eq!(Uevent::parse(&u.to_bytes()).as_ref(), Some(&u), "{data:?}");
        if let Some(ev) = nodedev::events::DeviceEvent::from_uevent(&u) {
            assert_eq!(PciAddress::parse(&ev.address).ok().map(|a| a.node_name()), Some(ev.name.clone()));
        }
    }
    let w = WATCHER.get_or_init(|| {
        let sim = std::sync::Arc::new(nodedev::sysfs::sim::SimKernel::builtin());
        nodedev::events::Watcher::new(sim).expect("a watcher of the simulated host")
    });
    for ev in w.take_message(data) {
        match ev.subsystem.as_str() {
            "pci" => assert!(ev.name.starts_with("pci_") && ev.net.is_none(), "{data:?}: {ev:?}"),
            "net" => {
                let n = ev.net.as_ref().expect("an interface event has its interface");
                assert!(ev.name.starts_with("net_") && ev.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
                assert_eq!(ev.parent, n.parent.node_name());
            }
            other => panic!("{data:?}: subsystem {other}"),
        }
    }
}

/// Every target, by name (the names of fuzz/fuzz_targets/*.rs and fuzz/corpus/*).
/// libvirt's mediated-device XML (virNodeDeviceCreateXML/DefineXML): never
/// a panic; what is accepted names a PCI parent that prints back the same.
pub fn mdev_xml(data: &[u8]) {
    if let Ok(Ok(cfg)) = nodedev::host::parse_mdev_xml(&text(data)) {
        assert_eq!(PciAddress::parse(&cfg.parent.to_string()).ok(), Some(cfg.parent));
        assert!(cfg.uuid.as_deref().is_none_or(|u| u.trim() == u), "{cfg:?}: the UUID is trimmed");
    }
}

pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("pci_address", pci_address),
    ("uri", uri),
    ("policy", policy),
    ("host_spec", host_spec),
    ("sysfs_path", sysfs_path),
    ("capi", capi),
    ("state_record", state_record),
    ("mdev_xml", mdev_xml),
    ("vpd", vpd),
    ("uevent", uevent),
];
