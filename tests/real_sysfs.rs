//! Read-only run against this machine's real /sys: list and XML of every PCI
//! device. A guard wrapper makes any write (or module load) fail the test
//! before it reaches the kernel.

#[macro_use]
mod common;
use nodedev::state::StateStore;
use nodedev::sysfs::host::HostSysfs;
use nodedev::sysfs::Sysfs;
use nodedev::{Host, HostOptions, PciAddress};
use std::io;
use std::sync::Arc;

struct NoWrites(HostSysfs, Uevent);

/// Whether the wrapper shows the devices' `uevent` files; hidden, devices
/// are read from their separate attribute files.
#[derive(PartialEq)]
enum Uevent {
    Shown,
    Hidden,
}

fn real(uevent: Uevent) -> Arc<NoWrites> {
    Arc::new(NoWrites(HostSysfs::new("/"), uevent))
}

impl Sysfs for NoWrites {
    fn read(&self, p: &str) -> io::Result<String> {
        if self.1 == Uevent::Hidden && p.ends_with("/uevent") {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        self.0.read(p)
    }
    fn write(&self, p: &str, _v: &str) -> io::Result<()> {
        panic!("test tried to write the real /sys/{p}");
    }
    fn load_module(&self, m: &str) -> io::Result<()> {
        panic!("test tried to load module {m}");
    }
    fn set_master(&self, i: &str, _m: Option<&str>) -> io::Result<()> {
        panic!("test tried to change the real interface {i}");
    }
    fn set_link_up(&self, i: &str, _up: bool) -> io::Result<()> {
        panic!("test tried to change the real interface {i}");
    }
    fn write_bounded(&self, p: &str, _v: &str, _l: std::time::Duration) -> io::Result<()> {
        panic!("test tried to write the real /sys/{p}");
    }
    forward_sysfs!(0; read_bytes, net_features, read_link, list_dir, exists, matching_aliases, vfio_aliases, net_addresses, net_routes, mounts, swaps, vfio_holders, pci_names, uevents);
}

/// The PCI function under the disk mounted on "/", found the kernel's way:
/// root's MAJ:MIN from mountinfo, then /sys/dev/block/MAJ:MIN's real path.
fn pci_device_under_root_fs() -> Option<PciAddress> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let majmin = info.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).find(|f| f.len() > 4 && f[4] == "/")?
        [2]
    .to_string();
    let path = std::fs::canonicalize(format!("/sys/dev/block/{majmin}")).ok()?;
    // The last PCI address in the path is the function closest to the disk.
    path.iter().rev().find_map(|c| PciAddress::parse(&c.to_string_lossy()).ok())
}

#[test]
fn the_device_holding_the_root_filesystem_is_refused_without_force() {
    let Some(addr) = pci_device_under_root_fs() else {
        println!("\"/\" is not on a PCI disk here (container or virtual root): nothing to check");
        return;
    };
    let host = Host::new(real(Uevent::Shown), StateStore::memory(), HostOptions::default());
    let uses = host.host_uses(&addr);
    assert!(uses.iter().any(|u| u.contains("mounted on /")), "{addr}: {uses:?}");
    // The refusal happens before anything is written (NoWrites would panic).
    let err = host.detach(&addr, nodedev::Stub::Kvm).unwrap_err();
    assert!(err.to_string().contains("mounted on /") && err.to_string().contains("FORCE"), "{err}");
    println!("{addr} holds / and is refused: {err}");
}

#[test]
fn every_real_pci_device_lists_and_describes() {
    let host = Host::new(
        real(Uevent::Shown),
        StateStore::memory(),
        HostOptions { read_only: true, allow_modprobe: false, ..HostOptions::default() },
    );
    let listed = host.list().expect("listing /sys/bus/pci/devices");
    let on_disk: Vec<PciAddress> = match std::fs::read_dir("/sys/bus/pci/devices") {
        Ok(d) => d.map(|e| PciAddress::parse(&e.unwrap().file_name().to_string_lossy()).unwrap()).collect(),
        Err(_) => {
            println!("this machine has no /sys/bus/pci: nothing to read");
            return;
        }
    };
    assert_eq!(listed.len(), on_disk.len());
    for addr in &listed {
        let xml = host.xml(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
        assert!(xml.contains(&format!("<name>{}</name>", addr.node_name())), "{xml}");
        // What we report is what the kernel says.
        let vendor = std::fs::read_to_string(format!("/sys/bus/pci/devices/{addr}/vendor")).unwrap();
        assert!(xml.contains(&format!("<vendor id='{}'", vendor.trim())), "{xml}");
        let driver = std::fs::read_link(format!("/sys/bus/pci/devices/{addr}/driver")).ok();
        match driver {
            Some(d) => {
                let name = d.file_name().unwrap().to_string_lossy().into_owned();
                assert_eq!(host.driver(addr).unwrap().as_deref(), Some(name.as_str()));
                assert!(xml.contains(&format!("<name>{name}</name>")), "{xml}");
            }
            None => assert!(!xml.contains("<driver>"), "{xml}"),
        }
        let path = std::fs::canonicalize(format!("/sys/bus/pci/devices/{addr}")).unwrap();
        assert!(xml.contains(&format!("<path>{}</path>", path.display())), "{xml}");
    }
    println!("described {} real PCI devices read-only", listed.len());
}

#[test]
fn the_system_uri_opened_read_only_refuses_changes() {
    let (host, uri) = nodedev::uri::open(Some("nodedev:///system?modprobe=0"), true).unwrap();
    assert_eq!(uri, "nodedev:///system?modprobe=0");
    if let Some(addr) = host.list().unwrap().first() {
        assert!(matches!(host.detach(addr, nodedev::Stub::Vfio), Err(nodedev::Error::Denied(_))));
        assert!(matches!(host.reset(addr), Err(nodedev::Error::Denied(_))));
    }
}

#[test]
fn this_machine_described_loads_as_a_simulated_host_with_the_same_drivers() {
    let real = Host::new(
        real(Uevent::Shown),
        StateStore::memory(),
        HostOptions { read_only: true, allow_modprobe: false, ..HostOptions::default() },
    );
    let spec = real.describe().unwrap();
    let sim = nodedev::sysfs::sim::SimKernel::from_spec(spec).unwrap_or_else(|e| panic!("{e}"));
    let copy = Host::new(Arc::new(sim), StateStore::memory(), HostOptions::default());
    let devices = real.list().unwrap();
    assert_eq!(devices, copy.list().unwrap());
    for a in &devices {
        assert_eq!(real.driver(a).unwrap(), copy.driver(a).unwrap(), "{a}");
        assert_eq!(real.device_info(a).unwrap().iommu_group, copy.device_info(a).unwrap().iommu_group, "{a}");
    }
}

#[test]
fn the_real_uevent_says_what_the_separate_attributes_say() {
    let read_only = || HostOptions { read_only: true, allow_modprobe: false, ..HostOptions::default() };
    let fast = Host::new(real(Uevent::Shown), StateStore::memory(), read_only());
    let slow = Host::new(real(Uevent::Hidden), StateStore::memory(), read_only());
    let devices = fast.list().unwrap();
    for a in &devices {
        let info = fast.device_info(a).unwrap();
        assert_eq!(info, slow.device_info(a).unwrap(), "{a}");
        let s = fast.summary(a).unwrap();
        assert_eq!(
            (s.driver, s.vendor, s.device, s.class, s.iommu_group),
            (info.driver, info.vendor, info.device, info.class, info.iommu_group),
            "{a}"
        );
    }
    println!("{} real devices: uevent and attribute files agree", devices.len());
}

/// The interface /proc/net/route sends the default route through.
fn default_route_interface() -> Option<String> {
    let text = std::fs::read_to_string("/proc/net/route").ok()?;
    text.lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 7 && f[1] == "00000000" && f[7] == "00000000")
        .map(|f| f[0].to_string())
}

/// The PCI function under an interface, found down through its lower
/// devices (a bridge's ports, a VLAN's link), by the kernel's own links.
fn pci_function_under(iface: &str, depth: usize) -> Option<PciAddress> {
    let dir = format!("/sys/class/net/{iface}");
    if let Ok(path) = std::fs::canonicalize(format!("{dir}/device")) {
        if let Some(a) = path.iter().filter_map(|c| PciAddress::parse(&c.to_string_lossy()).ok()).next_back() {
            return Some(a);
        }
    }
    if depth == 0 {
        return None;
    }
    std::fs::read_dir(&dir).ok()?.flatten().find_map(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        pci_function_under(name.strip_prefix("lower_")?, depth - 1)
    })
}

#[test]
fn the_nic_carrying_the_default_route_is_refused_naming_the_chain() {
    let Some(iface) = default_route_interface() else {
        println!("no IPv4 default route here: nothing to check");
        return;
    };
    let Some(addr) = pci_function_under(&iface, 4) else {
        println!("{iface} (the default route) is not over a PCI function here: nothing to check");
        return;
    };
    let host = Host::new(real(Uevent::Shown), StateStore::memory(), HostOptions::default());
    let uses = host.host_uses(&addr);
    assert!(uses.iter().any(|u| u.contains(&iface) && u.contains("the default route")), "{addr}: {uses:?}");
    // Read-only: NoWrites panics on any write or link change.
    let err = host.detach(&addr, nodedev::Stub::Kvm).unwrap_err();
    assert!(err.to_string().contains("the default route") && err.to_string().contains("FORCE"), "{err}");
    println!("{addr} carries the default route through {iface} and is refused: {err}");
}

#[test]
fn facts_outside_sysfs_are_read_from_this_machine() {
    let live = HostSysfs::new("/");
    // Every mount is listed with its device number; "/" is one of them.
    let mounts = live.mounts();
    assert!(mounts.iter().any(|(_, m)| m == "/"), "{mounts:?}");
    assert!(mounts
        .iter()
        .all(|(n, _)| n.split_once(':').is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())));
    // Swap areas: as many as /proc/swaps lists (each still there to stat).
    let listed = std::fs::read_to_string("/proc/swaps").unwrap().lines().count().saturating_sub(1);
    let swaps = live.swaps();
    assert!(swaps.len() <= listed, "{swaps:?}");
    assert!(swaps.iter().all(|s| s.device.contains(':') && s.path.starts_with('/')), "{swaps:?}");
    println!("{} mounts, {} of {listed} swap areas", mounts.len(), swaps.len());
    // Addresses carry their prefix; the default route's interface names it.
    for iface in std::fs::read_dir("/sys/class/net").unwrap().flatten() {
        let name = iface.file_name().to_string_lossy().into_owned();
        for a in live.net_addresses(&name) {
            let (ip, len) = a.split_once('/').unwrap_or_else(|| panic!("{name}: {a} has no prefix"));
            let len: u32 = len.parse().unwrap();
            match ip.parse::<std::net::IpAddr>().unwrap() {
                std::net::IpAddr::V4(_) => assert!(len <= 32, "{a}"),
                std::net::IpAddr::V6(v6) => assert!(len <= 128 && v6.segments()[0] & 0xffc0 != 0xfe80, "{a}"),
            }
        }
        println!("{name}: {:?} routes {:?}", live.net_addresses(&name), live.net_routes(&name));
    }
    if let Some(iface) = default_route_interface() {
        assert!(live.net_routes(&iface).contains(&"default".to_string()));
    }
    // A test tree under another root has none of these facts.
    let tree = HostSysfs::new("/nonexistent-root");
    assert!(tree.mounts().is_empty() && tree.swaps().is_empty() && tree.net_routes("lo").is_empty());
    assert_eq!(tree.set_master("lo", None).unwrap_err().kind(), io::ErrorKind::Unsupported);
}

/// Names on this machine (issue 12): nodedev's vendor and product names are
/// lspci's, both read from the installed pci.ids; where lspci has no name
/// ("Device [0d57]") nodedev has none either.
#[test]
fn names_on_this_host_are_lspcis() {
    let Ok(out) = std::process::Command::new("lspci").args(["-vmm", "-nn", "-D"]).output() else {
        common::ci_installs("lspci (pciutils)", false);
        return;
    };
    if !common::ci_installs("pci.ids", nodedev::sysfs::pciids::locate(std::path::Path::new("/")).is_some()) {
        return;
    }
    let host = Host::new(
        real(Uevent::Shown),
        StateStore::memory(),
        HostOptions { read_only: true, allow_modprobe: false, ..HostOptions::default() },
    );
    // lspci's "Vendor:\tIntel Corporation [8086]", without the id; its
    // placeholder ("Vendor"/"Device") where pci.ids has no name.
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut named = 0;
    for record in text.split("\n\n").filter(|r| !r.trim().is_empty()) {
        let field = |name: &str| {
            record.lines().find_map(|l| l.strip_prefix(&format!("{name}:\t"))).map(|v| {
                let v = v.rsplit_once(" [").map_or(v, |(n, _)| n);
                (v != name).then(|| v.to_string())
            })
        };
        let addr = PciAddress::parse(&field("Slot").flatten().unwrap()).unwrap();
        let s = host.summary(&addr).unwrap();
        assert_eq!(s.vendor_name, field("Vendor").flatten(), "{addr} vendor");
        assert_eq!(s.product_name, field("Device").flatten(), "{addr} product");
        let xml = host.xml(&addr).unwrap();
        if let Some(v) = &s.vendor_name {
            assert!(xml.contains(&format!("<vendor id='0x{:04x}'>", s.vendor)), "{xml}");
            let escaped = v
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('\'', "&apos;")
                .replace('"', "&quot;");
            assert!(xml.contains(&format!(">{escaped}</vendor>")), "{xml}");
            named += 1;
        }
    }
    println!("{named} real devices named as lspci names them");
}

// ---- libvirt's device tree (tree), read-only on this machine ----

/// computer and a net device per interface of a PCI function appear, as
/// /sys/class/net tells them, and every node's XML validates against
/// libvirt's nodedev.rng.
#[test]
fn this_hosts_tree_has_computer_and_its_interfaces() {
    let host = Host::new(real(Uevent::Shown), StateStore::memory(), HostOptions::default());
    let nodes = host.nodes().unwrap();
    assert_eq!(nodes[0].name(), "computer");
    // Interfaces of PCI functions, found the kernel's way: the real path of class/net/IF.
    let mut want = Vec::new();
    for e in std::fs::read_dir("/sys/class/net").unwrap() {
        let iface = e.unwrap().file_name().to_string_lossy().into_owned();
        let path = std::fs::canonicalize(format!("/sys/class/net/{iface}")).unwrap();
        if path.iter().any(|c| PciAddress::parse(&c.to_string_lossy()).is_ok() && c.to_string_lossy().contains(':')) {
            let mac = std::fs::read_to_string(format!("/sys/class/net/{iface}/address")).unwrap_or_default();
            want.push(nodedev::host::net_node_name(&iface, Some(mac.trim()).filter(|m| !m.is_empty())));
        }
    }
    want.sort();
    let mut got: Vec<String> = nodes.iter().map(|n| n.name()).filter(|n| n.starts_with("net_")).collect();
    got.sort();
    assert_eq!(got, want);
    println!("{} nodes here: computer, {} PCI functions, interfaces {got:?}", nodes.len(), host.list().unwrap().len());
    let docs: Vec<(String, String)> = nodes.iter().map(|n| (n.name(), host.node_xml(n).unwrap())).collect();
    if let Some(r) = common::validate_nodedev_xml(&docs) {
        r.unwrap();
    }
}
