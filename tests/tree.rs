//! libvirt's device tree on the simulated kernel: the `computer` root with
//! its DMI strings, a `net_IFNAME_MAC` device per interface of a PCI
//! function, `pci-bridge`, `<pci-express>` links and VPD in a function's
//! XML, as a root and as an unprivileged reader sees them; and every
//! capability filter of virConnectListAllNodeDevices through the C API.

use nodedev::capi::connect::{virConnectClose, virConnectOpen};
use nodedev::capi::nodedev::*;
use nodedev::state::StateStore;
use nodedev::sysfs::sim::{HostSpec, SimKernel};
use nodedev::sysfs::Sysfs;
use nodedev::{Host, HostOptions, PciAddress, Stub};
use std::ffi::{CStr, CString};
use std::sync::Arc;

fn host_of(sim: SimKernel) -> (Host, Arc<SimKernel>) {
    let sim = Arc::new(sim);
    (Host::new(sim.clone(), StateStore::memory(), HostOptions::default()), sim)
}

fn builtin() -> (Host, Arc<SimKernel>) {
    host_of(SimKernel::builtin())
}

/// test:///default's description, changed by `edit`.
fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> (Host, Arc<SimKernel>) {
    let spec = HostSpec::from_json(&builtin_json()).unwrap();
    let mut v = serde_json::to_value(&spec).unwrap();
    edit(&mut v);
    host_of(SimKernel::from_json(&v.to_string()).unwrap())
}

fn builtin_json() -> String {
    // The built-in host as a description, from its own dump.
    let (h, _) = builtin();
    serde_json::to_string(&h.describe().unwrap()).unwrap()
}

fn a(s: &str) -> PciAddress {
    PciAddress::parse(s).unwrap()
}

const ETH0: &str = "net_eth0_52_54_00_04_00_00";

#[test]
fn computer_is_the_root_with_the_dmi_strings() {
    let (h, _) = builtin();
    let node = h.lookup_node("computer").unwrap();
    assert_eq!(h.node_parent(&node).unwrap(), None);
    assert_eq!(h.node_caps(&node).unwrap(), vec!["system"]);
    let xml = h.node_xml(&node).unwrap();
    for want in [
        "<name>computer</name>",
        "<product>Standard PC (Q35 + ICH9, 2009)</product>",
        "<vendor>QEMU</vendor>",
        "<version>pc-q35-8.2</version>",
        "<serial>NODEDEV-SIM-0001</serial>",
        "<uuid>6e6f6465-6465-4076-8000-000000000042</uuid>",
        "<vendor>SeaBIOS</vendor>",
        "<release_date>04/01/2014</release_date>",
    ] {
        assert!(xml.contains(want), "{want} missing:\n{xml}");
    }
    assert!(!xml.contains("<path>") && !xml.contains("<parent>"), "{xml}");
    assert_eq!(h.nodes().unwrap()[0], node, "computer comes first");
}

#[test]
fn unreadable_dmi_fields_are_left_out_and_the_uuid_made_up() {
    let (h, _) = edited(|v| v["unprivileged"] = true.into());
    let xml = h.node_xml(&h.lookup_node("computer").unwrap()).unwrap();
    assert!(xml.contains("<vendor>QEMU</vendor>") && !xml.contains("<serial>"), "{xml}");
    assert!(!xml.contains("6e6f6465-6465-4076-8000-000000000042"), "product_uuid is root's only:\n{xml}");
    let uuid = xml.split("<uuid>").nth(1).unwrap().split("</uuid>").next().unwrap();
    assert_eq!(uuid.len(), 36, "{uuid}");
    // The same for the life of the process, as libvirtd's.
    assert_eq!(h.node_xml(&h.lookup_node("computer").unwrap()).unwrap(), xml);

    let (h, _) = edited(|v| {
        v.as_object_mut().unwrap().remove("dmi");
    });
    let xml = h.node_xml(&h.lookup_node("computer").unwrap()).unwrap();
    assert!(xml.contains("<hardware>\n      <uuid>") && xml.contains("<firmware>\n    </firmware>"), "{xml}");
}

#[test]
fn every_interface_of_a_pci_function_is_a_net_device() {
    let (h, _) = builtin();
    let nets: Vec<String> = h.nodes_with_cap("net").unwrap().iter().map(|n| n.name()).collect();
    // br0 is no PCI function's: libvirt parents it to computer; it is not listed here.
    assert_eq!(nets, vec!["net_eth1_52_54_00_03_01_00", "net_eth2_52_54_00_03_02_00", ETH0]);
    let eth0 = h.lookup_node(ETH0).unwrap();
    assert_eq!(h.node_parent(&eth0).unwrap().as_deref(), Some("pci_0000_04_00_0"));
    assert_eq!(h.node_caps(&eth0).unwrap(), vec!["net"]);
    let xml = h.node_xml(&eth0).unwrap();
    let want = "  <capability type='net'>
    <interface>eth0</interface>
    <address>52:54:00:04:00:00</address>
    <link speed='1000' state='up'/>
    <feature name='rx'/>
    <feature name='tx'/>
    <feature name='sg'/>
    <feature name='tso'/>
    <feature name='gso'/>
    <feature name='gro'/>
    <feature name='rxvlan'/>
    <feature name='txvlan'/>
    <feature name='rxhash'/>
    <capability type='80203'/>
  </capability>";
    assert!(xml.contains(want), "{xml}");
    assert!(xml.contains("<path>/sys/devices/pci0000:00/0000:00:1d.0/0000:04:00.0/net/eth0</path>"), "{xml}");
    // A link that is down: its state, no speed (libvirt does not trust it then).
    let xml = h.node_xml(&h.lookup_node("net_eth1_52_54_00_03_01_00").unwrap()).unwrap();
    assert!(xml.contains("<link state='down'/>") && xml.contains("<feature name='sg'/>"), "{xml}");
}

#[test]
fn a_net_device_goes_with_its_interface_and_comes_back() {
    let (h, sim) = builtin();
    let name = "net_eth1_52_54_00_03_01_00";
    let eth1 = h.lookup_node(name).unwrap();
    h.detach(&a("0000:03:01.0"), Stub::Kvm).unwrap();
    assert!(sim.read("class/net/eth1/address").is_err(), "the stub has no interface");
    let e = h.lookup_node(name).unwrap_err();
    assert!(matches!(e, nodedev::Error::NoDevice(_)), "{e}");
    assert!(matches!(h.node_xml(&eth1), Err(nodedev::Error::NoDevice(_))));
    assert_eq!(h.nodes_with_cap("net").unwrap().len(), 2);
    h.reattach(&a("0000:03:01.0"), None).unwrap();
    assert_eq!(h.lookup_node(name).unwrap(), eth1);
}

#[test]
fn names_are_formed_as_libvirt_forms_them() {
    let (h, _) = edited(|v| {
        let dev = v["devices"].as_array_mut().unwrap().iter_mut().find(|d| d["address"] == "0000:03:02.0").unwrap();
        dev["net"] = serde_json::json!([{"name": "enp3s2.10", "mac": "0a:1b:2c:3d:4e:5f"}]);
    });
    let n = h.lookup_node("net_enp3s2_10_0a_1b_2c_3d_4e_5f").unwrap();
    assert_eq!(h.node_parent(&n).unwrap().as_deref(), Some("pci_0000_03_02_0"));
    for bad in ["net_enp3s2.10_0a_1b_2c_3d_4e_5f", "net_enp3s2_10", "net_", "computer ", "pci_0000_03_02_0_"] {
        assert!(matches!(h.lookup_node(bad), Err(nodedev::Error::NoDevice(_))), "{bad}");
    }
}

#[test]
fn bridges_pcie_links_and_vpd_in_a_functions_xml() {
    let (h, _) = builtin();
    let xml = |s: &str| h.xml(&a(s)).unwrap();
    let root_port = xml("0000:00:1d.0");
    assert!(root_port.contains("<capability type='pci-bridge'/>"), "{root_port}");
    assert!(
        root_port.contains(
            "    <pci-express>\n      <link validity='cap' port='9' speed='5' width='4'/>\n      <link validity='sta' speed='5' width='4'/>\n    </pci-express>\n"
        ),
        "{root_port}"
    );
    assert!(xml("0000:02:00.0").contains("<capability type='pci-bridge'/>"), "a conventional PCI bridge too");
    let gpu = xml("0000:01:00.0");
    assert!(gpu.contains("<link validity='sta' speed='2.5' width='16'/>") && !gpu.contains("bridge"), "{gpu}");
    assert!(xml("0000:00:02.0").contains("    <pci-express/>\n"), "an integrated endpoint has no link");
    assert!(!xml("0000:03:01.0").contains("pci-express"), "a conventional PCI function");
    let pf = xml("0000:04:00.0");
    let want = "    <capability type='vpd'>
      <name>Intel 82576 Gigabit Dual Port Server Adapter</name>
      <fields access='readonly'>
        <change_level>E43709-004</change_level>
        <part_number>E43709-004</part_number>
        <serial_number>A0B1C2D3E4F5</serial_number>
        <vendor_field index='0'>FW 1.5.1</vendor_field>
      </fields>
      <fields access='readwrite'>
        <asset_tag>rack-7 slot-2</asset_tag>
        <vendor_field index='1'>spare</vendor_field>
        <system_field index='1'>ok</system_field>
      </fields>
    </capability>
    <iommuGroup";
    assert!(pf.contains(want), "{pf}");
    assert_eq!(h.node_caps(&h.lookup_node("pci_0000_04_00_0").unwrap()).unwrap(), vec!["pci", "vpd"]);
}

#[test]
fn without_root_the_link_comes_from_the_kernels_files_and_vpd_is_hidden() {
    let (h, sim) = edited(|v| v["unprivileged"] = true.into());
    assert_eq!(sim.read_bytes("bus/pci/devices/0000:00:1d.0/config", 4096).unwrap().len(), 64);
    assert!(sim.read_bytes("bus/pci/devices/0000:04:00.0/vpd", 4096).is_err());
    let root_port = h.xml(&a("0000:00:1d.0")).unwrap();
    // No port number outside the configuration space; the bridge type is in its header.
    assert!(
        root_port.contains("<link validity='cap' speed='5' width='4'/>")
            && root_port.contains("<capability type='pci-bridge'/>"),
        "{root_port}"
    );
    assert!(h.xml(&a("0000:00:02.0")).unwrap().contains("<pci-express/>"));
    let pf = h.xml(&a("0000:04:00.0")).unwrap();
    assert!(!pf.contains("vpd") && pf.contains("<pci-express>"), "{pf}");
    assert!(h.nodes_with_cap("vpd").unwrap().is_empty());
}

#[test]
fn a_dumped_host_keeps_the_tree() {
    let (h, _) = builtin();
    let copy = host_of(SimKernel::from_spec(h.describe().unwrap()).unwrap()).0;
    let names = |h: &Host| h.nodes().unwrap().iter().map(|n| n.name()).collect::<Vec<_>>();
    assert_eq!(names(&copy), names(&h));
    // A dump keeps interfaces down (what the host does with them is not
    // copied): their `<link>` line differs, nothing else.
    let without_link = |x: String| x.lines().filter(|l| !l.contains("<link ")).collect::<Vec<_>>().join("\n");
    for n in h.nodes().unwrap() {
        let (a, b) = (copy.node_xml(&n).unwrap(), h.node_xml(&n).unwrap());
        assert_eq!(without_link(a), without_link(b), "{}", n.name());
    }
}

// ---- virConnectListAllNodeDevices: one test per capability filter ----

/// The names a filter lists (and the count it gives without an array).
fn listed(flags: u32) -> Vec<String> {
    let uri = CString::new("test:///default").unwrap();
    unsafe {
        let conn = virConnectOpen(uri.as_ptr());
        assert!(!conn.is_null());
        let count = virConnectListAllNodeDevices(conn, std::ptr::null_mut(), flags);
        let mut devs: *mut virNodeDevicePtr = std::ptr::null_mut();
        let n = virConnectListAllNodeDevices(conn, &mut devs, flags);
        assert!(n >= 0 && n == count, "flags {flags:#x}: {n} vs {count}");
        let mut names = Vec::new();
        for i in 0..n as usize {
            let d = *devs.add(i);
            names.push(CStr::from_ptr(virNodeDeviceGetName(d)).to_string_lossy().into_owned());
            virNodeDeviceFree(d);
        }
        assert!((*devs.add(n as usize)).is_null(), "the array ends with NULL");
        libc::free(devs.cast());
        virConnectClose(conn);
        names
    }
}

fn flag(f: virConnectListAllNodeDeviceFlags) -> u32 {
    f as i32 as u32
}

use virConnectListAllNodeDeviceFlags as F;

#[test]
fn cap_system_lists_computer() {
    assert_eq!(listed(flag(F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_SYSTEM)), vec!["computer"]);
}

#[test]
fn cap_pci_dev_lists_every_function() {
    let names = listed(flag(F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV));
    assert_eq!(names.len(), 21);
    assert!(names.iter().all(|n| n.starts_with("pci_")) && names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
}

#[test]
fn cap_net_lists_the_interfaces_of_pci_functions() {
    assert_eq!(
        listed(flag(F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET)),
        vec!["net_eth1_52_54_00_03_01_00", "net_eth2_52_54_00_03_02_00", ETH0]
    );
}

#[test]
fn cap_vpd_lists_the_functions_with_vpd() {
    assert_eq!(listed(flag(F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_VPD)), vec!["pci_0000_04_00_0"]);
}

#[test]
fn capabilities_combine_as_any_of_them() {
    let both =
        listed(flag(F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_SYSTEM) | flag(F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET));
    assert_eq!(both.len(), 4);
    assert_eq!(both[0], "computer");
    let overlapping =
        listed(flag(F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV) | flag(F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_VPD));
    assert_eq!(overlapping.len(), 21, "a device having both is listed once");
    let all = listed(0);
    assert_eq!(all.len(), 25);
    assert_eq!(listed(flag(F::VIR_CONNECT_LIST_NODE_DEVICES_ACTIVE)), all);
    assert!(listed(flag(F::VIR_CONNECT_LIST_NODE_DEVICES_INACTIVE)).is_empty());
}

#[test]
fn capabilities_no_device_has_here_list_none() {
    for f in [
        F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_USB_DEV,
        F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_USB_INTERFACE,
        F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_SCSI_HOST,
        F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_SCSI_TARGET,
        F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_SCSI,
        F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_STORAGE,
        F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_FC_HOST,
        F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_VPORTS,
        F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_SCSI_GENERIC,
        F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_DRM,
        F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_CCW_DEV,
        F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_CSS_DEV,
        F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_VDPA,
        F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_AP_CARD,
        F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_AP_QUEUE,
        F::VIR_CONNECT_LIST_NODE_DEVICES_CAP_AP_MATRIX,
    ] {
        assert!(listed(flag(f)).is_empty(), "{f:?}");
    }
}

#[test]
fn num_of_devices_and_list_devices_by_capability_name() {
    let uri = CString::new("test:///default").unwrap();
    unsafe {
        let conn = virConnectOpen(uri.as_ptr());
        let count = |cap: &str| {
            let c = CString::new(cap).unwrap();
            virNodeNumOfDevices(conn, c.as_ptr(), 0)
        };
        assert_eq!((count("system"), count("pci"), count("net"), count("vpd"), count("usb")), (1, 21, 3, 1, 0));
        assert_eq!(virNodeNumOfDevices(conn, std::ptr::null(), 0), 25);
        let mut names = [std::ptr::null_mut::<libc::c_char>(); 4];
        let cap = CString::new("net").unwrap();
        assert_eq!(virNodeListDevices(conn, cap.as_ptr(), names.as_mut_ptr(), 4, 0), 3);
        assert_eq!(CStr::from_ptr(names[2]).to_str().unwrap(), ETH0);
        for n in names.iter().take(3) {
            libc::free(n.cast());
        }
        virConnectClose(conn);
    }
}
