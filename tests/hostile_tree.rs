//! Attack review of libvirt's device tree (issue 12 items 2-3): what a
//! local user who can shape what nodedev reads (a sysfs tree under root=,
//! DMI strings, interface names, VPD, config space, pci.ids) can make the
//! tree say. Every document stays well-formed XML that validates against
//! libvirt's nodedev.rng, nothing hangs or reads without bound, and names
//! that are not exactly a device's are VIR_ERR_NO_NODE_DEVICE as libvirt.

#[macro_use]
mod common;
use nodedev::sysfs::sim::SimKernel;
use nodedev::sysfs::Sysfs;
use nodedev::Host;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// The simulated kernel's tree at `rel`, written under `out` (binary files
/// the simulation keeps are copied as bytes).
fn materialize(sim: &SimKernel, rel: &str, out: &Path) {
    for name in sim.list_dir(rel).unwrap() {
        let path = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
        let dest = out.join(&path);
        if let Ok(target) = sim.read_link(&path) {
            symlink(target, &dest).unwrap();
        } else if sim.list_dir(&path).is_ok() {
            fs::create_dir_all(&dest).unwrap();
            materialize(sim, &path, out);
        } else {
            fs::write(&dest, sim.read_bytes(&path, 1 << 16).unwrap_or_default()).unwrap();
        }
    }
}

/// test:///default written out as a sysfs tree under a fresh directory.
fn tree(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tmp/hostile").join(test);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("sys")).unwrap();
    materialize(&SimKernel::builtin(), "", &dir.join("sys"));
    dir
}

fn open(dir: &Path) -> Host {
    let uri = format!("nodedev:///system?root={}&statedir={}/state", dir.display(), dir.display());
    nodedev::uri::open(Some(&uri), true).unwrap().0
}

fn documents(h: &Host) -> Vec<(String, String)> {
    h.nodes().unwrap().iter().map(|n| (n.name(), h.node_xml(n).unwrap())).collect()
}

/// Each document is well-formed (the XML 1.0 character set included) and
/// validates against libvirt's schema.
fn check(what: &str, docs: &[(String, String)]) {
    for (name, xml) in docs {
        let bad = xml.chars().find(
            |&c| !matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..),
        );
        assert!(bad.is_none(), "{what}: {name} has {bad:?}, not allowed in XML:\n{xml}");
    }
    let r = common::validate_nodedev_xml(docs).expect("xmllint and nodedev.rng are installed (CI installs them)");
    r.unwrap_or_else(|e| panic!("{what}: {e}"));
}

fn dev_dir(dir: &Path, addr: &str) -> PathBuf {
    fs::canonicalize(dir.join("sys/bus/pci/devices").join(addr)).unwrap()
}

/// A network interface `name` of the function at `addr`, with `address`.
fn add_iface(dir: &Path, addr: &str, name: &[u8], address: Option<&[u8]>) {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::OsStr::from_bytes(name);
    let d = dev_dir(dir, addr).join("net").join(name);
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("operstate"), "up\n").unwrap();
    fs::write(d.join("speed"), "10000\n").unwrap();
    if let Some(a) = address {
        fs::write(d.join("address"), a).unwrap();
    }
    let rel = d.strip_prefix(dir.join("sys")).unwrap();
    symlink(Path::new("../..").join(rel), dir.join("sys/class/net").join(name)).unwrap();
}

fn dmi(dir: &Path, file: &str, value: &[u8]) {
    fs::write(dir.join("sys/devices/virtual/dmi/id").join(file), value).unwrap();
}

#[test]
fn hostile_strings_give_well_formed_documents_that_validate() {
    let dir = tree("strings");
    // DMI strings with markup, control bytes and invalid UTF-8.
    dmi(&dir, "product_name", b"<x>&'\"\x01\x1b[31m\xff\xfe\n");
    dmi(&dir, "sys_vendor", b"\x7f\x08");
    dmi(&dir, "bios_version", &[b'A'; 4096]);
    dmi(&dir, "product_uuid", b"<uuid/>\n");
    // pci.ids names the same way.
    let ids = dir.join("usr/share/misc");
    fs::create_dir_all(&ids).unwrap();
    fs::write(
        ids.join("pci.ids"),
        b"8086  Intel <&> \x01\x02 \xff Corp\n\t10c9  82576 \x0b\x0c\"'\n1af4  Red\x1fHat\n\t1000  virtio\x00net\n"
            .as_slice(),
    )
    .unwrap();
    // Interfaces: control bytes and UTF-8 in names, no address, a zero
    // address, InfiniBand's 20 bytes, markup in the address file.
    add_iface(&dir, "0000:03:02.0", b"e\x01t<h>&", Some(b"52:54:00:aa:bb:01\n"));
    add_iface(&dir, "0000:03:02.0", "n\u{e9}t-0.1".as_bytes(), Some(b"\n"));
    add_iface(&dir, "0000:03:02.0", b"zero", Some(b"00:00:00:00:00:00\n"));
    add_iface(&dir, "0000:03:02.0", b"ib0", Some(b"80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0a:0b:0c\n"));
    add_iface(&dir, "0000:03:02.0", b"mac", Some(b"<a href='x'>\xff\n"));
    let h = open(&dir);
    let docs = documents(&h);
    let names: Vec<&str> = docs.iter().map(|(n, _)| n.as_str()).collect();
    for want in ["net_e_t_h___52_54_00_aa_bb_01", "net_n__t_0_1", "net_zero_00_00_00_00_00_00"] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    check("hostile strings", &docs);
    let xml = |name: &str| docs.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let computer = xml("computer");
    assert!(computer.contains("<product>&lt;x&gt;&amp;&apos;&quot;[31m\u{fffd}\u{fffd}</product>"), "{computer}");
    let pf = xml("pci_0000_04_00_0");
    assert!(pf.contains("<vendor id='0x8086'>Intel &lt;&amp;&gt;  \u{fffd} Corp</vendor>"), "{pf}");
    let odd = xml("net_e_t_h___52_54_00_aa_bb_01");
    assert!(
        odd.contains("<interface>et&lt;h&gt;&amp;</interface>") && odd.contains("/net/et&lt;h&gt;&amp;</path>"),
        "{odd}"
    );
    let ib = xml("net_ib0_80_00_02_08_fe_80_00_00_00_00_00_00_00_02_c9_03_00_0a_0b_0c");
    assert!(!ib.contains("<address>"), "20 bytes are no `mac`:\n{ib}");
    assert!(xml("net_zero_00_00_00_00_00_00").contains("<address>00:00:00:00:00:00</address>"));
    assert!(!xml("net_n__t_0_1").contains("<address>"));
}

#[test]
fn hostile_vpd_gives_documents_that_validate() {
    fn field(k: &str, v: &[u8]) -> Vec<u8> {
        let mut b = k.as_bytes().to_vec();
        b.push(v.len() as u8);
        b.extend_from_slice(v);
        b
    }
    // An identifier of 300 characters, values with characters the
    // schema's VPD pattern does not take ('{', '|', '}', '~', '`').
    let name = vec![b'N'; 300];
    let mut out = vec![0x82];
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&name);
    let mut body: Vec<u8> = [field("SN", b"{|}~`"), field("PN", b"a<b&c"), field("V0", &[b'v'; 255])].concat();
    body.extend_from_slice(b"RV\x01");
    out.push(0x90);
    out.extend_from_slice(&((body.len() + 1) as u16).to_le_bytes());
    out.extend_from_slice(&body);
    let sum = out.iter().fold(0u8, |s, b| s.wrapping_add(*b));
    out.push(0u8.wrapping_sub(sum));
    out.push(0x78);

    let dir = tree("vpd");
    fs::write(dev_dir(&dir, "0000:04:10.0").join("vpd"), &out).unwrap();
    // The same fields under a short identifier.
    let mut short = vec![0x82, 1, 0, b'N'];
    short.extend_from_slice(&out[3 + 300..]);
    let sum = short[..short.len() - 2].iter().fold(0u8, |s, b| s.wrapping_add(*b));
    let rv = short.len() - 2;
    short[rv] = 0u8.wrapping_sub(sum);
    fs::write(dev_dir(&dir, "0000:04:00.0").join("vpd"), &short).unwrap();
    let h = open(&dir);
    let docs = documents(&h);
    check("hostile vpd", &docs);
    let xml = |name: &str| docs.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert!(!xml("pci_0000_04_10_0").contains("type='vpd'"), "an identifier over 255 bytes");
    let pf = xml("pci_0000_04_00_0");
    assert!(
        pf.contains("<part_number>a&lt;b&amp;c</part_number>")
            && !pf.contains("serial_number")
            && pf.contains(&format!("<vendor_field index='0'>{}</vendor_field>", "v".repeat(255))),
        "{pf}"
    );
}

#[test]
fn hostile_config_spaces_end_and_validate() {
    let dir = tree("config");
    let mut looped = vec![0u8; 256];
    looped[6] = 0x10;
    looped[0x34] = 0x40;
    looped[0x40] = 0x01;
    looped[0x41] = 0x40;
    // A PCI Express capability cut by the end of the 256 bytes.
    let mut cut = vec![0u8; 256];
    cut[6] = 0x10;
    cut[0x34] = 0xf8;
    cut[0xf8] = 0x10;
    // Link speed codes past what libvirt knows, width 63.
    let mut odd = vec![0u8; 256];
    odd[6] = 0x10;
    odd[0x34] = 0x40;
    odd[0x40] = 0x10;
    odd[0x4c] = 0xff;
    odd[0x4d] = 0xff;
    odd[0x52] = 0xff;
    odd[0x53] = 0xff;
    for (addr, config) in
        [("0000:03:01.0", looped), ("0000:03:02.0", cut), ("0000:04:00.0", odd), ("0000:01:00.0", vec![0x86, 0x80])]
    {
        fs::write(dev_dir(&dir, addr).join("config"), config).unwrap();
    }
    let h = open(&dir);
    check("hostile config spaces", &documents(&h));
}

#[test]
fn names_that_are_not_exactly_a_devices_are_no_node_device() {
    use nodedev::capi::connect::{virConnectClose, virConnectOpen};
    use nodedev::capi::error::virGetLastErrorCode;
    use nodedev::capi::nodedev::{virNodeDeviceFree, virNodeDeviceLookupByName};
    let h = open(&tree("lookups"));
    let pf = h.lookup_node("pci_0000_04_00_0").unwrap();
    assert_eq!(h.lookup_node("0000:04:00.0").unwrap(), pf, "the kernel's name too");
    let bad = [
        "Computer",
        "COMPUTER",
        "computer\n",
        "computer\0x",
        "computerx",
        "PCI_0000_04_00_0",
        "pci_0000_00_1F_0",
        "0000:00:1F.0",
        "pci_00000000_04_00_0",
        "pci_0000_04_00_0 ",
        "0000:04:00.0\n",
        "00000000:04:00.0",
        "NET_eth0_52_54_00_04_00_00",
        "net_ETH0_52_54_00_04_00_00",
        "net_eth0_52_54_00_04_00_00_",
        "net_eth0_52:54:00:04:00:00",
        "net_eth0",
        "",
    ];
    for name in bad {
        let e = h.lookup_node(name).map(|n| n.name());
        assert!(matches!(e, Err(nodedev::Error::NoDevice(_))), "{name:?}: {e:?}");
    }
    // Through the C API: VIR_ERR_NO_NODE_DEVICE (libvirt compares names).
    let uri = std::ffi::CString::new("test:///default").unwrap();
    unsafe {
        let conn = virConnectOpen(uri.as_ptr());
        assert!(!conn.is_null());
        for name in ["pci_0000_0A_00_0", "pci_0000_00_1F_0", "pci_00000000_00_1f_0", "0000:00:1F.0", "Computer"] {
            let c = std::ffi::CString::new(name).unwrap();
            let d = virNodeDeviceLookupByName(conn, c.as_ptr());
            if !d.is_null() {
                virNodeDeviceFree(d);
            }
            assert!(d.is_null(), "{name} found");
            assert_eq!(virGetLastErrorCode(), 53 /* VIR_ERR_NO_NODE_DEVICE */, "{name}");
        }
        virConnectClose(conn);
    }
}

#[test]
fn interfaces_that_libvirt_names_alike_are_listed_once() {
    let dir = tree("alike");
    add_iface(&dir, "0000:03:02.0", b"a.1", Some(b"52:54:00:aa:bb:02\n"));
    add_iface(&dir, "0000:03:02.0", b"a-1", Some(b"52:54:00:aa:bb:02\n"));
    let h = open(&dir);
    let names: Vec<String> = h.nodes().unwrap().iter().map(|n| n.name()).collect();
    assert_eq!(names.iter().filter(|n| *n == "net_a_1_52_54_00_aa_bb_02").count(), 1, "{names:?}");
    let n = h.lookup_node("net_a_1_52_54_00_aa_bb_02").unwrap();
    assert!(h.node_xml(&n).unwrap().contains("<interface>a-1</interface>"), "the first in order");
}

#[test]
fn a_database_too_big_to_be_pci_ids_is_ignored() {
    let dir = tree("huge-ids");
    let ids = dir.join("usr/share/misc");
    fs::create_dir_all(&ids).unwrap();
    let f = fs::File::create(ids.join("pci.ids")).unwrap();
    use std::io::Write;
    (&f).write_all(b"8086  Intel Corporation\n").unwrap();
    // Sparse: no disk used, but every lookup would scan 256 MiB of it.
    f.set_len(256 << 20).unwrap();
    let h = open(&dir);
    let t = std::time::Instant::now();
    let xml = h.xml(&nodedev::PciAddress::parse("0000:04:00.0").unwrap()).unwrap();
    assert!(xml.contains("<vendor id='0x8086'/>"), "{xml}");
    println!("a 256 MiB pci.ids: XML in {:?}", t.elapsed());
    // One of the real size still names.
    f.set_len(24).unwrap();
    let h = open(&dir);
    let xml = h.xml(&nodedev::PciAddress::parse("0000:04:00.0").unwrap()).unwrap();
    assert!(xml.contains("<vendor id='0x8086'>Intel Corporation</vendor>"), "{xml}");
}

#[test]
fn an_mdev_parent_with_vpd_validates() {
    // A GPU offering mdev types that carries VPD too: libvirt writes the
    // types before the VPD, and the schema takes no other order.
    let dir = tree("mdev-vpd");
    let pf = dev_dir(&dir, "0000:04:00.0").join("vpd");
    fs::copy(&pf, dev_dir(&dir, "0000:00:02.0").join("vpd")).unwrap();
    let h = open(&dir);
    let docs = documents(&h);
    let gpu = &docs.iter().find(|(n, _)| n == "pci_0000_00_02_0").unwrap().1;
    let (types, vpd) = (gpu.find("type='mdev_types'").unwrap(), gpu.find("type='vpd'").unwrap());
    assert!(types < vpd, "{gpu}");
    let node = h.lookup_node("pci_0000_00_02_0").unwrap();
    assert_eq!(h.node_caps(&node).unwrap(), vec!["pci", "mdev_types", "vpd"], "virNodeDeviceListCaps's order");
    check("mdev parent with vpd", &docs);
}

#[test]
fn a_function_is_listed_once_whatever_else_its_directory_holds() {
    let dir = tree("spellings");
    let devices = dir.join("sys/bus/pci/devices");
    let target = fs::read_link(devices.join("0000:04:00.0")).unwrap();
    for other in ["pci_0000_04_00_0", "0000:04:00.0.bak", "00000000:04:00.0"] {
        symlink(&target, devices.join(other)).unwrap();
    }
    let h = open(&dir);
    let names: Vec<String> = h.nodes().unwrap().iter().map(|n| n.name()).collect();
    assert_eq!(names.iter().filter(|n| *n == "pci_0000_04_00_0").count(), 1, "{names:?}");
}

#[test]
fn an_attribute_bigger_than_the_kernel_writes_is_not_read_whole() {
    let dir = tree("big-attribute");
    dmi(&dir, "product_name", &vec![b'P'; 2 << 20]);
    dmi(&dir, "sys_vendor", b"QEMU\n");
    let h = open(&dir);
    let xml = h.node_xml(&h.lookup_node("computer").unwrap()).unwrap();
    assert!(!xml.contains("<product>") && xml.contains("<vendor>QEMU</vendor>"), "{} bytes", xml.len());
}

#[test]
fn a_listing_does_not_fail_for_a_device_removed_meanwhile() {
    use nodedev::capi::connect::{virConnectClose, virConnectOpenReadOnly};
    use nodedev::capi::nodedev::{virConnectListAllNodeDevices, virNodeDeviceFree, virNodeDevicePtr};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = tree("removed-meanwhile");
    let link = dir.join("sys/bus/pci/devices/0000:04:10.4");
    let target = fs::read_link(&link).unwrap();
    // Another tool removes and re-creates a VF over and over.
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (stop, link) = (stop.clone(), link.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = fs::remove_file(&link);
                std::thread::yield_now();
                let _ = symlink(&target, &link);
                std::thread::yield_now();
            }
        })
    };
    let uri = format!("nodedev:///system?root={}&statedir={}/state", dir.display(), dir.display());
    let uri = std::ffi::CString::new(uri).unwrap();
    let (mut failures, mut sizes) = (Vec::new(), std::collections::BTreeSet::new());
    unsafe {
        let conn = virConnectOpenReadOnly(uri.as_ptr());
        assert!(!conn.is_null());
        for _ in 0..400 {
            let mut devs: *mut virNodeDevicePtr = std::ptr::null_mut();
            let n = virConnectListAllNodeDevices(conn, &mut devs, 0);
            if n < 0 {
                failures.push(
                    std::ffi::CStr::from_ptr(nodedev::capi::error::virGetLastErrorMessage())
                        .to_string_lossy()
                        .into_owned(),
                );
                continue;
            }
            sizes.insert(n);
            for i in 0..n as usize {
                virNodeDeviceFree(*devs.add(i));
            }
            libc::free(devs.cast());
        }
        virConnectClose(conn);
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    assert!(failures.is_empty(), "{} of 400 listings failed: {:?}", failures.len(), failures.first());
    assert!(sizes.iter().all(|n| (24..=25).contains(n)), "{sizes:?}");
}
