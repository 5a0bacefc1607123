//! Every node-device XML document validates against libvirt's own
//! nodedev.rng (Debian's libvirt0, /usr/share/libvirt/schemas): every device
//! of test:///default (as root and as a user without root), after devices
//! moved to stubs, and of a host dumped from the QEMU suite's guest
//! (tests/data/guest-host.json, written by `nodedev dump-host` there).

#[macro_use]
mod common;
use nodedev::state::StateStore;
use nodedev::sysfs::sim::{HostSpec, SimKernel};
use nodedev::{Host, HostOptions, PciAddress, Stub};
use std::sync::Arc;

fn host(sim: SimKernel) -> Host {
    Host::new(Arc::new(sim), StateStore::memory(), HostOptions::default())
}

fn documents(h: &Host) -> Vec<(String, String)> {
    h.nodes().unwrap().iter().map(|n| (n.name(), h.node_xml(n).unwrap())).collect()
}

fn check(what: &str, docs: Vec<(String, String)>) {
    assert!(docs.iter().any(|(n, _)| n == "computer"), "{what}: no computer");
    if let Some(r) = common::validate_nodedev_xml(&docs) {
        r.unwrap_or_else(|e| panic!("{what}: {e}"));
        println!("{what}: {} documents validate", docs.len());
    }
}

#[test]
fn every_device_of_test_default_validates() {
    let docs = documents(&host(SimKernel::builtin()));
    assert_eq!(docs.len(), 25);
    check("test:///default", docs);
}

#[test]
fn every_device_validates_as_seen_without_root() {
    let mut spec =
        HostSpec::from_json(&serde_json::to_string(&host(SimKernel::builtin()).describe().unwrap()).unwrap()).unwrap();
    spec.unprivileged = true;
    check("test:///default without root", documents(&host(SimKernel::from_spec(spec).unwrap())));
}

#[test]
fn every_device_validates_before_and_after_detach() {
    let h = host(SimKernel::builtin());
    check("before detach", documents(&h));
    for (dev, stub) in [("0000:04:00.0", Stub::Vfio), ("0000:03:01.0", Stub::Kvm), ("0000:05:00.0", Stub::Vfio)] {
        let a = PciAddress::parse(dev).unwrap();
        let opts = nodedev::DetachOptions { force: true, ..Default::default() };
        h.detach_with(&a, stub, opts).unwrap();
    }
    let after = documents(&h);
    assert_eq!(after.iter().filter(|(n, _)| n.starts_with("net_")).count(), 1, "interfaces of detached functions go");
    assert!(after.iter().any(|(_, x)| x.contains("<name>vfio-pci</name>")));
    check("after detach", after);
}

#[test]
fn every_device_of_a_dumped_guest_host_validates() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/guest-host.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let h = host(SimKernel::from_json(&text).unwrap());
    let docs = documents(&h);
    assert!(docs.iter().any(|(n, _)| n.starts_with("net_")), "the guest's NICs have interfaces");
    assert!(docs.iter().any(|(_, x)| x.contains("<pci-express>")), "the guest is a q35 with PCIe root ports");
    check("dumped guest host", docs);
}

#[test]
fn every_device_of_a_hostile_host_validates() {
    // Names, DMI strings and VPD values with markup, control characters,
    // characters the schema's VPD pattern refuses, and interface names
    // with '.' and '-': every document still validates (tests/hostile_tree.rs
    // does the same through a sysfs tree on disk).
    let spec = host(SimKernel::builtin()).describe().unwrap();
    let mut v = serde_json::to_value(&spec).unwrap();
    v["dmi"]["product_name"] = "<b>&amp;\u{1}\u{1b}[0m'\"".into();
    v["dmi"]["bios_vendor"] = "\u{7f}\u{fffe}".into();
    for d in v["devices"].as_array_mut().unwrap() {
        d["vendor_name"] = "Vendor <&> \u{2}\u{1f}".into();
        d["product_name"] = "Product ]]> \u{b}\u{c} \u{fffd}".into();
        if d["address"] == "0000:04:00.0" {
            d["vpd"]["name"] = "card <&>".into();
            d["vpd"]["readonly"] = serde_json::json!([["SN", "{serial}"], ["PN", "a&b"], ["V1", "`x`"]]);
        }
        if d["address"] == "0000:03:02.0" {
            d["net"] = serde_json::json!([{"name": "enp3s2.10-x", "mac": "0a:1b:2c:3d:4e:5f"}]);
        }
    }
    let docs = documents(&host(SimKernel::from_json(&v.to_string()).unwrap()));
    assert!(
        docs.iter().any(|(n, _)| n == "net_enp3s2_10_x_0a_1b_2c_3d_4e_5f"),
        "{:?}",
        docs.iter().map(|d| &d.0).collect::<Vec<_>>()
    );
    let pf = &docs.iter().find(|(n, _)| n == "pci_0000_04_00_0").unwrap().1;
    assert!(pf.contains("<part_number>a&amp;b</part_number>") && !pf.contains("serial_number"), "{pf}");
    check("hostile host", docs);
}
