//! `nodedev list --format dra`: the inventory as Kubernetes ResourceSlices,
//! checked against the ResourceSlice schema of the Kubernetes API
//! (tests/data/k8s, see its README for where it comes from) and against the
//! rules of the API's field descriptions that a JSON Schema cannot say
//! (name forms, lengths, exactly one value per attribute), on the simulated
//! host, on a generated host of more than 128 devices, and read-only on
//! this machine.

#[path = "common/json_schema.rs"]
mod json_schema;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

/// Kubernetes v1.34.0, where resource.k8s.io/v1 became GA: what every v1
/// API server accepts. v1.37.0: the newest in the package.
const SCHEMAS: [(&str, &str); 2] = [
    ("v1.34.0", include_str!("data/k8s/resourceslice-v1.34.0.schema.json")),
    ("v1.37.0", include_str!("data/k8s/resourceslice-v1.37.0.schema.json")),
];

fn nodedev(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nodedev"))
        .args(args)
        .env_remove("NODEDEV_DEBUG")
        .env_remove("NODEDEV_URI")
        .output()
        .expect("run the nodedev binary")
}

fn ok(o: Output) -> String {
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "stdout:\n{out}\nstderr:\n{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn docs(out: &str) -> Vec<Value> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn schema_errors(doc: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    for (version, text) in SCHEMAS {
        let root: Value = serde_json::from_str(text).unwrap();
        let mut e = Vec::new();
        json_schema::schema_errors(&root, &root, doc, "", &mut e);
        errs.extend(e.into_iter().map(|e| format!("{version}: {e}")));
    }
    errs
}

fn is_dns_label(s: &str) -> bool {
    json_schema::pattern_matches("^[a-z0-9]{1}[-a-z0-9]{0,62}$", s) && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A C identifier of at most 32 characters (an attribute's name after its domain).
fn is_c_identifier(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
        && s.len() <= 32
}

/// The rules the API server applies that the schema states only in prose
/// (the field descriptions of ResourceSliceSpec, ResourcePool, Device and
/// DeviceAttribute, and the qualified-name rule of attribute names).
fn api_rule_errors(slice: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let mut err = |e: String| errs.push(e);
    let spec = &slice["spec"];
    let name = slice["metadata"]["name"].as_str().unwrap_or("");
    if !is_dns_subdomain(name) {
        err(format!("metadata.name {name:?} is not a DNS subdomain"));
    }
    let driver = spec["driver"].as_str().unwrap_or("");
    if !is_dns_subdomain(driver) || driver.len() > 63 {
        err(format!("spec.driver {driver:?} is not a DNS subdomain of at most 63 characters"));
    }
    let pool = spec["pool"]["name"].as_str().unwrap_or("");
    if pool.len() > 253 || !pool.split('/').all(is_dns_subdomain) {
        err(format!("spec.pool.name {pool:?} is not DNS subdomains separated by slashes"));
    }
    let placements = ["nodeName", "nodeSelector", "allNodes", "perDeviceNodeSelection"];
    let set = placements.iter().filter(|p| !spec[**p].is_null() && spec[**p] != Value::Bool(false)).count();
    if set != 1 {
        err(format!("{set} of {placements:?} are set, not exactly one"));
    }
    let devices = spec["devices"].as_array().cloned().unwrap_or_default();
    if devices.len() > 128 {
        err(format!("{} devices in one slice (at most 128)", devices.len()));
    }
    let mut names = BTreeSet::new();
    for d in &devices {
        let dn = d["name"].as_str().unwrap_or("");
        if !is_dns_label(dn) {
            err(format!("device name {dn:?} is not a DNS label"));
        }
        if !names.insert(dn.to_string()) {
            err(format!("device name {dn} twice"));
        }
        let attrs = d["attributes"].as_object().cloned().unwrap_or_default();
        let capacity = d["capacity"].as_object().map(|c| c.len()).unwrap_or(0);
        if attrs.len() + capacity > 32 {
            err(format!("{dn}: {} attributes and capacities (at most 32)", attrs.len() + capacity));
        }
        for (key, value) in &attrs {
            let (domain, id) = key.rsplit_once('/').unwrap_or(("", key));
            if !(domain.is_empty() || is_dns_subdomain(domain) && domain.len() <= 63) || !is_c_identifier(id) {
                err(format!("{dn}: attribute name {key:?} is not a qualified name"));
            }
            let fields = value.as_object().map(|o| o.len()).unwrap_or(0);
            if fields != 1 {
                err(format!("{dn}: attribute {key} has {fields} value fields, not exactly one"));
            }
            if value["string"].as_str().is_some_and(|s| s.len() > 64) {
                err(format!("{dn}: attribute {key} is longer than 64 characters"));
            }
        }
    }
    errs
}

fn assert_valid_slice(slice: &Value) {
    let mut errs = schema_errors(slice);
    errs.extend(api_rule_errors(slice));
    assert!(errs.is_empty(), "not a valid ResourceSlice:\n{}\n{slice}", errs.join("\n"));
}

/// device name -> attributes, over every slice.
fn devices_of(slices: &[Value]) -> Vec<(String, Value)> {
    slices
        .iter()
        .flat_map(|s| s["spec"]["devices"].as_array().unwrap().clone())
        .map(|d| (d["name"].as_str().unwrap().to_string(), d["attributes"].clone()))
        .collect()
}

fn attr<'a>(devices: &'a [(String, Value)], name: &str, key: &str) -> &'a Value {
    let (_, attrs) = devices.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no device {name}"));
    let a = &attrs[key];
    assert!(!a.is_null(), "{name} has no attribute {key}: {attrs}");
    a.as_object().unwrap().values().next().unwrap()
}

#[test]
fn the_simulated_hosts_devices_are_a_valid_resourceslice_with_nodedevs_state() {
    // One NIC of the bridge group detached (its group not viable yet), one VF
    // prepared for a guest, then the inventory.
    let out = ok(nodedev(&[
        "-c",
        "test:///default",
        "detach 0000:03:01.0; prepare vm-a 0000:04:10.0 --managed; list --format dra --node worker-1; list --json",
    ]));
    let all = docs(&out);
    let (slices, listing) = all.split_at(all.len() - 1);
    assert_eq!(slices.len(), 1, "{out}");
    let slice = &slices[0];
    assert_valid_slice(slice);
    assert_eq!(slice["apiVersion"], "resource.k8s.io/v1");
    assert_eq!(slice["kind"], "ResourceSlice");
    assert_eq!(slice["spec"]["nodeName"], "worker-1");
    assert_eq!(slice["spec"]["driver"], "nodedev.io");
    assert_eq!(
        slice["spec"]["pool"],
        serde_json::json!({"name": "worker-1", "generation": 1, "resourceSliceCount": 1})
    );

    // Every function but the bridges, each once.
    let devices = devices_of(slices);
    let endpoints: Vec<String> = listing[0]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| !["0604", "0607", "0609"].contains(&&d["class"].as_str().unwrap()[..4]))
        .map(|d| format!("pci-{}", d["address"].as_str().unwrap().replace([':', '.'], "-")))
        .collect();
    let names: Vec<String> = devices.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names, endpoints);
    assert!(!names.contains(&"pci-0000-02-00-0".to_string()), "the PCI bridge is no device to allocate");

    // Standard attributes.
    assert_eq!(attr(&devices, "pci-0000-03-01-0", "resource.kubernetes.io/pciBusID"), "0000:03:01.0");
    assert_eq!(attr(&devices, "pci-0000-03-01-0", "resource.kubernetes.io/pcieRoot"), "pci0000:00");
    // nodedev's: the detached NIC, its group not usable while its partner stays on e1000.
    let nic = |k: &str| attr(&devices, "pci-0000-03-01-0", &format!("nodedev.io/{k}")).clone();
    assert_eq!(nic("driver"), "vfio-pci");
    assert_eq!(nic("originalDriver"), "e1000");
    assert_eq!(nic("detached"), true);
    assert_eq!(nic("stub"), true);
    assert_eq!(nic("iommuGroupViable"), false);
    assert_eq!(nic("vendor"), "8086");
    assert_eq!(nic("device"), "100e");
    assert_eq!(nic("class"), "020000");
    assert_eq!(nic("owner"), "");
    assert_eq!(attr(&devices, "pci-0000-03-02-0", "nodedev.io/driver"), "e1000");
    assert_eq!(*attr(&devices, "pci-0000-03-02-0", "nodedev.io/iommuGroup"), nic("iommuGroup"));
    // The prepared VF: owner, managed, its PF.
    let vf = |k: &str| attr(&devices, "pci-0000-04-10-0", &format!("nodedev.io/{k}")).clone();
    assert_eq!(vf("owner"), "vm-a");
    assert_eq!(vf("managed"), true);
    assert_eq!(vf("sriovRole"), "vf");
    assert_eq!(vf("physicalFunction"), "0000:04:00.0");
    assert_eq!(vf("iommuGroupViable"), true);
    let pf = |k: &str| attr(&devices, "pci-0000-04-00-0", &format!("nodedev.io/{k}")).clone();
    assert_eq!(pf("sriovRole"), "pf");
    assert_eq!(pf("numVFs"), 3);
    assert!(pf("totalVFs").as_i64().unwrap() >= 3);
    // The NUMA node and the other facts are there for every device, so a CEL
    // selector never reads an attribute a device lacks.
    let keys = |a: &Value| a.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    for (name, attrs) in &devices {
        assert_eq!(keys(attrs), keys(&devices[0].1), "{name}");
    }
    assert!(attr(&devices, "pci-0000-04-10-0", "nodedev.io/numaNode").is_i64());
}

#[test]
fn the_checks_reject_what_a_resourceslice_forbids() {
    let out = ok(nodedev(&["-c", "test:///default", "list", "--format", "dra", "--node", "n1"]));
    let good = docs(&out).remove(0);
    assert_valid_slice(&good);
    let bad: Vec<(&str, Box<dyn Fn(&mut Value)>)> = vec![
        ("an unknown device field", Box::new(|s| s["spec"]["devices"][0]["model"] = "x".into())),
        ("no driver", Box::new(|s| drop(s["spec"].as_object_mut().unwrap().remove("driver")))),
        (
            "a pool without generation",
            Box::new(|s| drop(s["spec"]["pool"].as_object_mut().unwrap().remove("generation"))),
        ),
        (
            "a string as int",
            Box::new(|s| {
                s["spec"]["devices"][0]["attributes"]["nodedev.io/iommuGroup"] = serde_json::json!({"int": "3"})
            }),
        ),
        (
            "an unknown value type",
            Box::new(|s| s["spec"]["devices"][0]["attributes"]["nodedev.io/driver"] = serde_json::json!({"text": "x"})),
        ),
        ("another kind", Box::new(|s| s["kind"] = "ResourceClaim".into())),
        (
            "two values",
            Box::new(|s| {
                s["spec"]["devices"][0]["attributes"]["nodedev.io/driver"] =
                    serde_json::json!({"string": "x", "bool": true})
            }),
        ),
        (
            "a long string",
            Box::new(|s| {
                s["spec"]["devices"][0]["attributes"]["nodedev.io/owner"] =
                    serde_json::json!({"string": "x".repeat(65)})
            }),
        ),
        ("an address as name", Box::new(|s| s["spec"]["devices"][0]["name"] = "0000:00:00.0".into())),
        (
            "a duplicate name",
            Box::new(|s| {
                let n = s["spec"]["devices"][0]["name"].clone();
                s["spec"]["devices"][1]["name"] = n;
            }),
        ),
        (
            "a bad attribute name",
            Box::new(|s| {
                s["spec"]["devices"][0]["attributes"]["nodedev.io/pci-bus"] = serde_json::json!({"bool": true})
            }),
        ),
        ("no placement", Box::new(|s| drop(s["spec"].as_object_mut().unwrap().remove("nodeName")))),
    ];
    for (what, change) in bad {
        let mut s = good.clone();
        change(&mut s);
        let mut errs = schema_errors(&s);
        errs.extend(api_rule_errors(&s));
        assert!(!errs.is_empty(), "{what} passed the checks");
    }
}

#[test]
fn a_host_of_more_than_128_devices_is_one_pool_of_several_slices() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tmp/dra-generated");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let g = Command::new(env!("CARGO_BIN_EXE_nodedev-gen-sysfs")).arg("300").arg(&dir).output().unwrap();
    assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
    let uri = format!("test://{}/host.json", dir.display());
    let slices = docs(&ok(nodedev(&["-c", &uri, "list", "--format", "dra", "--node", "big-node.example"])));
    let listing = docs(&ok(nodedev(&["-c", &uri, "list", "--json"])));
    let endpoints = listing[0]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| !["0604", "0607", "0609"].contains(&&d["class"].as_str().unwrap()[..4]))
        .count();
    assert!(endpoints > 256, "{endpoints} endpoints");
    assert_eq!(slices.len(), endpoints.div_ceil(128));
    let mut names = BTreeSet::new();
    for (i, s) in slices.iter().enumerate() {
        assert_valid_slice(s);
        assert_eq!(s["metadata"]["name"], format!("big-node.example-nodedev-{i}"));
        assert_eq!(s["spec"]["pool"]["resourceSliceCount"], slices.len());
        assert_eq!(s["spec"]["pool"]["name"], "big-node.example");
        for d in s["spec"]["devices"].as_array().unwrap() {
            assert!(names.insert(d["name"].as_str().unwrap().to_string()), "{} twice in the pool", d["name"]);
        }
    }
    assert_eq!(names.len(), endpoints);
}

#[test]
fn node_names_and_formats_are_checked() {
    let o = nodedev(&["-c", "test:///default", "list", "--format", "dra", "--node", "Worker_1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--node"), "{}", String::from_utf8_lossy(&o.stderr));
    for args in [
        &["list", "--format", "yaml"][..],
        &["list", "--format", "dra", "--json"],
        &["list", "--node", "n1"],
        &["list", "--format"],
    ] {
        let mut all = vec!["-c", "test:///default"];
        all.extend_from_slice(args);
        assert_eq!(nodedev(&all).status.code(), Some(2), "{args:?}");
    }
    // --format json is --json; --format text the table.
    let json = ok(nodedev(&["-c", "test:///default", "list", "--format", "json"]));
    assert_eq!(json, ok(nodedev(&["-c", "test:///default", "list", "--json"])));
    let text = ok(nodedev(&["-c", "test:///default", "list", "--format", "text"]));
    assert_eq!(text, ok(nodedev(&["-c", "test:///default", "list"])));
}

/// This machine, read only: its real devices validate too.
#[test]
fn this_machines_devices_are_a_valid_resourceslice() {
    if !std::path::Path::new("/sys/bus/pci/devices").exists() {
        eprintln!("note: no PCI bus here");
        return;
    }
    let slices = docs(&ok(nodedev(&["-c", "nodedev:///system", "list", "--format", "dra", "--node", "this-host"])));
    assert!(!slices.is_empty());
    let listed = devices_of(&slices);
    for s in &slices {
        assert_valid_slice(s);
    }
    for (name, _) in &listed {
        let bus_id = attr(&listed, name, "resource.kubernetes.io/pciBusID").as_str().unwrap().to_string();
        assert_eq!(*name, format!("pci-{}", bus_id.replace([':', '.'], "-")));
        assert!(std::path::Path::new("/sys/bus/pci/devices").join(&bus_id).exists(), "{bus_id}");
        let root = attr(&listed, name, "resource.kubernetes.io/pcieRoot").as_str().unwrap().to_string();
        let real = std::fs::canonicalize(format!("/sys/bus/pci/devices/{bus_id}")).unwrap();
        assert!(real.to_string_lossy().contains(&format!("/{root}/")), "{bus_id}: {root} not in {}", real.display());
    }
}

/// A record nodedev cannot read protects its device (prepare and detach are
/// refused until an administrator clears it): the slice must not offer that
/// device to the scheduler as a free one, and the operator is told why.
#[test]
fn a_device_whose_record_is_corrupt_is_not_offered_as_free() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tmp/dra-corrupt");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("state")).unwrap();
    // A host whose VF is on vfio-pci from the start (each process simulates its own kernel).
    let o = ok(nodedev(&["-c", "test:///default", "detach 0000:04:10.0; dump-host"]));
    std::fs::write(dir.join("host.json"), &o[o.find('{').unwrap()..]).unwrap();
    let uri = format!("test://{}/host.json?statedir={}/state", dir.display(), dir.display());
    // A guest's VF whose record was then damaged (a disk error, a bad edit).
    ok(nodedev(&["-c", &uri, "prepare vm-a 0000:04:10.0"]));
    std::fs::write(dir.join("state/0000:04:10.0.json"), "{not json").unwrap();
    let refused = nodedev(&["-c", &uri, "prepare vm-b 0000:04:10.0"]);
    assert_eq!(refused.status.code(), Some(1), "the device is protected");

    let o = nodedev(&["-c", &uri, "list", "--format", "dra", "--node", "n1"]);
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    let slices = docs(&ok(o));
    for s in &slices {
        assert_valid_slice(s);
    }
    let devices = devices_of(&slices);
    assert!(
        devices.iter().all(|(n, _)| n != "pci-0000-04-10-0"),
        "a device with a corrupt record is offered: {:?}",
        devices.iter().find(|(n, _)| n == "pci-0000-04-10-0")
    );
    assert!(devices.iter().any(|(n, _)| n == "pci-0000-04-10-2"), "the other VFs are offered");
    assert!(stderr.contains("0000:04:10.0") && stderr.contains("recover --clear"), "{stderr}");
}

/// ResourceSlices are cluster-wide objects: two nodes must never publish
/// slices of one name. A node name too long for "<node>-nodedev-<i>" is
/// cut, and two long names that differ only at their end stay apart.
#[test]
fn long_node_names_give_distinct_slice_names() {
    let stem = format!("{a}.{a}.{a}.{b}", a = "a".repeat(63), b = "a".repeat(58));
    let mut names = Vec::new();
    for node in [format!("{stem}-x1"), format!("{stem}-x2")] {
        assert_eq!(node.len(), 253);
        let slices = docs(&ok(nodedev(&["-c", "test:///default", "list", "--format", "dra", "--node", &node])));
        assert_valid_slice(&slices[0]);
        assert_eq!(slices[0]["spec"]["nodeName"], node.as_str());
        names.push(slices[0]["metadata"]["name"].as_str().unwrap().to_string());
    }
    assert_ne!(names[0], names[1], "two nodes publish one slice name");
}

/// A publisher that updates the pool must raise its generation (the
/// scheduler ignores slices of an older one, such as a slice left over
/// when the pool shrank): `--generation N` sets it.
#[test]
fn the_pool_generation_is_the_operators() {
    let slices =
        docs(&ok(nodedev(&["-c", "test:///default", "list", "--format", "dra", "--node", "n1", "--generation", "7"])));
    assert_valid_slice(&slices[0]);
    assert_eq!(slices[0]["spec"]["pool"]["generation"], 7);
    for bad in ["-1", "x", "", "9223372036854775808"] {
        let o = nodedev(&["-c", "test:///default", "list", "--format", "dra", "--generation", bad]);
        assert_eq!(o.status.code(), Some(2), "--generation {bad:?}");
    }
    let o = nodedev(&["-c", "test:///default", "list", "--json", "--generation", "2"]);
    assert_eq!(o.status.code(), Some(2), "--generation applies to --format dra");
}
