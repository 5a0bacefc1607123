//! The `nodedev` command as an admin or a script runs it, against the
//! simulated host: the grouped `list`, `--json` checked against
//! doc/nodedev-json.schema.json, exit codes, error messages (the library's,
//! word for word) and the NODEDEV_DEBUG trace.
//!
//! test:///default lives in the process, so each run of the binary starts
//! from the same host, and commands chained with ";" share one connection.

use nodedev::capi::connect::{virConnectClose, virConnectOpen};
use nodedev::capi::error::virGetLastErrorMessage;
use nodedev::capi::nodedev::{
    virNodeDeviceDetachFlags, virNodeDeviceFree, virNodeDeviceLookupByName, virNodeDeviceReAttachFlags,
    virNodeDeviceReset,
};
use nodedev::capi::{virConnect, virNodeDevice};
use nodedev::state::StateStore;
use nodedev::sysfs::sim::SimKernel;
use nodedev::{Host, HostOptions, PciAddress, Stub};
use serde_json::Value;
use std::ffi::{CStr, CString};
use std::process::{Command, Output};
use std::sync::Arc;

const SCHEMA: &str = include_str!("../doc/nodedev-json.schema.json");

fn nodedev_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nodedev"));
    cmd.args(args).env_remove("NODEDEV_DEBUG").env_remove("NODEDEV_URI");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run the nodedev binary")
}

/// Run a script (commands separated by ";") on test:///default.
fn script(s: &str) -> Output {
    nodedev_env(&["-c", "test:///default", s], &[])
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn ok(o: Output) -> Output {
    assert_eq!(o.status.code(), Some(0), "stdout:\n{}\nstderr:\n{}", stdout(&o), stderr(&o));
    o
}

/// The JSON documents of a run: the lines that start with '{'.
fn json_docs(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

// The JSON Schema checker, shared with tests/dra.rs.
#[path = "common/json_schema.rs"]
mod json_schema;
use json_schema::{pattern_matches, schema_errors};

fn schema() -> Value {
    serde_json::from_str(SCHEMA).expect("doc/nodedev-json.schema.json is JSON")
}

fn validate(doc: &Value) -> Vec<String> {
    let root = schema();
    let mut errs = Vec::new();
    schema_errors(&root, &root, doc, "", &mut errs);
    errs
}

fn assert_valid(doc: &Value) {
    let errs = validate(doc);
    assert!(errs.is_empty(), "output does not match the schema:\n{}\n{doc}", errs.join("\n"));
}

fn device<'a>(list: &'a Value, addr: &str) -> &'a Value {
    list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["address"] == addr)
        .unwrap_or_else(|| panic!("{addr} not listed"))
}

// ---- --json ----

// ---- VFIO variant drivers (issue 13, item 3): show --json explains the choice ----

#[test]
fn show_json_explains_the_vfio_driver_choice_and_matches_the_schema() {
    let host = r#"{"drivers": [
        {"name": "mlx5_core", "ids": ["15b3:101e"]},
        {"name": "vfio-pci", "loaded": false, "vfio_aliases": ["vfio_pci:v*d*sv*sd*bc*sc*i*"]},
        {"name": "mlx5_vfio_pci", "loaded": false, "vfio_aliases": ["vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i*"]}],
      "devices": [
        {"address": "0000:01:00.0", "vendor": "0x15b3", "device": "0x101e", "class": "0x020000",
         "driver": "mlx5_core", "iommu_group": 1},
        {"address": "0000:02:00.0", "vendor": "0x1234", "device": "0x11e8", "class": "0x00ff00", "iommu_group": 2}]}"#;
    let file = std::env::temp_dir().join(format!("nodedev-cli-variant-{}.json", std::process::id()));
    std::fs::write(&file, host).unwrap();
    let uri = format!("test://{}", file.display());
    let out = ok(nodedev_env(&["-c", &uri, "show 0000:01:00.0 --json; show 0000:02:00.0 --json"], &[]));
    let docs = json_docs(&out);
    docs.iter().for_each(assert_valid);
    let v = &docs[0]["vfio_driver"];
    assert_eq!(v["modalias"], "pci:v000015B3d0000101Esv00000000sd00000000bc02sc00i00");
    assert_eq!(v["module"], "mlx5_vfio_pci");
    assert_eq!(v["explicit"], false);
    let cands: Vec<(&str, i64)> = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["module"].as_str().unwrap(), c["wildcards"].as_i64().unwrap()))
        .collect();
    assert_eq!(cands, [("vfio_pci", 7), ("mlx5_vfio_pci", 5)]);
    assert!(v["reason"].as_str().unwrap().contains("fewest wildcards (5)"), "{v}");
    let plain = &docs[1]["vfio_driver"];
    assert_eq!(plain["module"], "vfio_pci");
    assert!(plain["reason"].as_str().unwrap().contains("plain vfio-pci"), "{plain}");
    // A schema that did not describe the field would fail on it.
    let mut bad = docs[0].clone();
    bad["vfio_driver"]["candidates"][0]["extra"] = serde_json::json!(1);
    assert!(!validate(&bad).is_empty());
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn json_of_every_read_command_matches_the_schema_before_and_after_a_detach_and_a_prepare() {
    let out = ok(script(
        "list --json; drivers --json; recover --json; \
         detach 0000:03:01.0 --driver vfio; prepare vm1 0000:04:10.0 --managed; \
         list --json; show 0000:04:10.0 --json; group 0000:03:01.0 --json; group pci_0000_04_10_0 --json; \
         drivers --json; recover --json",
    ));
    let docs = json_docs(&out);
    let commands: Vec<&str> = docs.iter().map(|d| d["command"].as_str().unwrap()).collect();
    assert_eq!(commands, ["list", "drivers", "recover", "list", "show", "group", "group", "drivers", "recover"]);
    for d in &docs {
        assert_valid(d);
        assert_eq!(d["schema_version"], schema()["$defs"]["schema_version"]["const"]);
    }
    // The other lines are the plain reports of detach and prepare.
    let text = stdout(&out);
    let text: Vec<&str> = text.lines().filter(|l| !l.starts_with('{')).collect();
    // The NIC's group twin stays on e1000: the detach says so on the spot.
    assert_eq!(
        text,
        [
            "0000:03:01.0 detached to vfio-pci",
            "note: IOMMU group 5 is not usable by VFIO yet: 0000:03:02.0 is still bound to e1000; detach it too, or detach with --group (VIR_NODE_DEVICE_DETACH_GROUP)",
            "0000:04:10.0 prepared for vm1 on vfio-pci"
        ]
    );

    let (before, after) = (&docs[0], &docs[3]);
    let n = before["devices"].as_array().unwrap().len();
    assert_eq!(n, 21);
    assert_eq!(docs[1]["devices"].as_array().unwrap().len(), n);
    assert!(before["devices"].as_array().unwrap().iter().all(|d| d["stub"] == false && d["owner"].is_null()));

    // Facts a scheduler needs, as the simulated host describes them.
    let nic = device(before, "0000:03:01.0");
    assert_eq!(nic["name"], "pci_0000_03_01_0");
    assert_eq!((nic["vendor_id"].as_str(), nic["device_id"].as_str()), (Some("8086"), Some("100e")));
    assert_eq!(nic["vendor_name"], "Intel Corporation");
    assert_eq!(nic["device_name"], "82540EM Gigabit Ethernet Controller");
    assert_eq!(
        (nic["subsystem_vendor_id"].as_str(), nic["subsystem_device_id"].as_str()),
        (Some("8086"), Some("001e"))
    );
    assert_eq!(nic["class"], "020000");
    assert_eq!(nic["driver"], "e1000");
    assert_eq!(nic["numa_node"], 0);
    assert_eq!(nic["iommu_group"]["number"], 5);
    assert_eq!(nic["iommu_group"]["members"], serde_json::json!(["0000:02:00.0", "0000:03:01.0", "0000:03:02.0"]));
    assert_eq!(nic["iommu_group"]["vfio_viable"], false);
    let pf = device(before, "0000:04:00.0");
    assert_eq!(pf["virtual_functions"], serde_json::json!(["0000:04:10.0", "0000:04:10.2", "0000:04:10.4"]));
    assert_eq!(pf["sriov_totalvfs"], 7);
    assert!(pf["physical_function"].is_null());
    assert_eq!(device(before, "0000:04:10.2")["physical_function"], "0000:04:00.0");
    assert!(device(before, "0000:00:00.0")["driver"].is_null());

    // After: what moved, where from, and for whom.
    let nic = device(after, "0000:03:01.0");
    assert_eq!((nic["driver"].as_str(), nic["stub"].as_bool()), (Some("vfio-pci"), Some(true)));
    assert_eq!((nic["detached_by_nodedev"].as_bool(), nic["original_driver"].as_str()), (Some(true), Some("e1000")));
    assert!(nic["owner"].is_null() && nic["managed"].is_null());
    assert_eq!(nic["iommu_group"]["vfio_viable"], false, "0000:03:02.0 is still on e1000");
    let vf = device(after, "0000:04:10.0");
    assert_eq!(
        (vf["driver"].as_str(), vf["owner"].as_str(), vf["managed"].as_bool()),
        (Some("vfio-pci"), Some("vm1"), Some(true))
    );
    assert_eq!(vf["original_driver"], "igbvf");
    assert_eq!(vf["iommu_group"]["vfio_viable"], true);
    for (b, a) in before["devices"].as_array().unwrap().iter().zip(after["devices"].as_array().unwrap()) {
        if !["0000:03:01.0", "0000:04:10.0"].contains(&b["address"].as_str().unwrap()) {
            assert_eq!(a, b, "a device nobody touched changed");
        }
    }
    assert_eq!(&docs[4]["device"], vf, "show and list describe a device the same way");

    let group = &docs[5]["group"];
    assert_eq!((group["number"].as_u64(), group["vfio_viable"].as_bool()), (Some(5), Some(false)));
    let members: Vec<(&str, bool, bool, bool)> = group["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["address"].as_str().unwrap(),
                m["stub"].as_bool().unwrap(),
                m["bridge"].as_bool().unwrap(),
                m["blocks_vfio"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        members,
        [
            ("0000:02:00.0", false, true, false),
            ("0000:03:01.0", true, false, false),
            ("0000:03:02.0", false, false, true)
        ]
    );
    assert_eq!(docs[6]["address"], "0000:04:10.0");
    assert_eq!(docs[6]["group"]["members"][0]["owner"], "vm1");
    assert_eq!(docs[6]["group"]["vfio_viable"], true);

    let drivers = &docs[7]["devices"];
    let nic = drivers.as_array().unwrap().iter().find(|d| d["address"] == "0000:03:01.0").unwrap();
    assert_eq!((nic["driver"].as_str(), nic["stub"].as_bool()), (Some("vfio-pci"), Some(true)));
    assert_eq!(docs[8]["recovered"], serde_json::json!([]));
}

#[test]
fn the_schema_checker_rejects_what_the_schema_forbids() {
    let docs = json_docs(&ok(script("list --json; group 0000:03:01.0 --json; recover --json")));
    let (list, group) = (&docs[0], &docs[1]);
    assert_valid(list);
    type Mutation = (&'static str, Box<dyn Fn(&mut Value)>);
    let mutations: Vec<Mutation> = vec![
        ("missing field", Box::new(|d| drop(d["devices"][0].as_object_mut().unwrap().remove("vendor_id")))),
        ("id with 0x", Box::new(|d| d["devices"][0]["vendor_id"] = "0x8086".into())),
        ("undocumented field", Box::new(|d| d["devices"][0]["colour"] = "blue".into())),
        ("other schema_version", Box::new(|d| d["schema_version"] = 2.into())),
        ("unknown command", Box::new(|d| d["command"] = "lst".into())),
        ("numa node as a string", Box::new(|d| d["devices"][0]["numa_node"] = "0".into())),
        ("negative group number", Box::new(|d| d["devices"][0]["iommu_group"]["number"] = (-1).into())),
        ("address with a bad slot", Box::new(|d| d["devices"][0]["address"] = "0000:00:20.0".into())),
        (
            "member not an address",
            Box::new(|d| d["devices"][1]["iommu_group"]["members"][0] = "pci_0000_00_01_0".into()),
        ),
        ("stub as a string", Box::new(|d| d["devices"][0]["stub"] = "no".into())),
    ];
    for (what, mutate) in mutations {
        let mut bad = list.clone();
        mutate(&mut bad);
        assert!(!validate(&bad).is_empty(), "the checker accepted a list with {what}");
    }
    let mut bad = group.clone();
    bad["group"]["members"][0].as_object_mut().unwrap().remove("blocks_vfio");
    assert!(!validate(&bad).is_empty(), "the checker accepted a group member without blocks_vfio");
    let bad = serde_json::json!({"schema_version": 1, "command": "recover", "recovered": [{"address": "x", "step": "napping", "outcome": ""}]});
    assert!(!validate(&bad).is_empty(), "the checker accepted an unknown step");

    let address = schema()["$defs"]["address"]["pattern"].as_str().unwrap().to_string();
    for good in ["0000:03:01.0", "10000:e1:1f.7"] {
        assert!(pattern_matches(&address, good), "{good}");
    }
    for bad in ["0000:3:01.0", "0000:03:01.8", "0000:03:01.0 ", "000:03:01.0", "0000:03:01x0", "0000:03:01.00"] {
        assert!(!pattern_matches(&address, bad), "{bad}");
    }
}

// ---- the grouped list ----

#[test]
fn list_groups_devices_on_stub_drivers_on_host_drivers_and_on_no_driver() {
    let out = ok(script("list; detach 0000:03:01.0; prepare vm1 0000:04:10.0 --managed; list; list --json"));
    let text = stdout(&out);
    let header = "ADDRESS       DRIVER         ID         CLASS  GROUP  OWNER        DEVICE";
    let runs: Vec<&str> = text.split(&format!("{header}\n")).skip(1).collect();
    assert_eq!(runs.len(), 2, "two lists:\n{text}");

    // Section title -> its lines, in order.
    let sections = |run: &str| -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for line in run.lines().filter(|l| {
            !l.is_empty() && !l.starts_with('{') && !l.contains(" detached to ") && !l.contains(" prepared for ")
        }) {
            if line.starts_with("on ") || line.starts_with("no driver") {
                out.push((line.to_string(), Vec::new()));
            } else {
                out.last_mut().expect("a line before any section").1.push(line.to_string());
            }
        }
        out
    };
    let first = sections(runs[0]);
    let titles: Vec<&str> = first.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(titles, ["on stub drivers (0)", "on host drivers (18)", "no driver (3)"]);
    assert_eq!(first[0].1, ["(none)"]);
    assert_eq!(
        first[2].1[2],
        "0000:05:00.0  -              1234:11e8  00ff00    12  -            Technical Corp. QEMU edu device"
    );

    let second = sections(runs[1]);
    let titles: Vec<&str> = second.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(titles, ["on stub drivers (2)", "on host drivers (16)", "no driver (3)"]);
    assert_eq!(
        second[0].1,
        [
            "0000:03:01.0  vfio-pci       8086:100e  020000     5  -            Intel Corporation 82540EM Gigabit Ethernet Controller [detached from e1000]",
            "0000:04:10.0  vfio-pci       8086:10ca  020000     8  vm1          Intel Corporation 82576 Virtual Function [detached from igbvf, managed]",
        ]
    );

    // Every device is in exactly one section, the one its driver says, and
    // its line carries the same facts as the JSON.
    let json = &json_docs(&out)[0];
    for d in json["devices"].as_array().unwrap() {
        let addr = d["address"].as_str().unwrap();
        let holding: Vec<&(String, Vec<String>)> =
            second.iter().filter(|(_, lines)| lines.iter().any(|l| l.starts_with(addr))).collect();
        assert_eq!(holding.len(), 1, "{addr} is in {} sections", holding.len());
        let want = match (d["driver"].as_str(), d["stub"].as_bool().unwrap()) {
            (None, _) => "no driver",
            (Some(_), true) => "on stub drivers",
            (Some(_), false) => "on host drivers",
        };
        assert!(holding[0].0.starts_with(want), "{addr} listed under {}", holding[0].0);
        let line = holding[0].1.iter().find(|l| l.starts_with(addr)).unwrap();
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[1], d["driver"].as_str().unwrap_or("-"), "{line}");
        assert_eq!(cols[2], format!("{}:{}", d["vendor_id"].as_str().unwrap(), d["device_id"].as_str().unwrap()));
        assert_eq!(cols[3], d["class"]);
        assert_eq!(cols[4], d["iommu_group"]["number"].to_string());
        assert_eq!(cols[5], d["owner"].as_str().unwrap_or("-"));
        assert!(line.contains(d["device_name"].as_str().unwrap()), "{line}");
    }
}

// ---- exit codes and errors ----

#[test]
fn exit_codes_are_0_on_success_1_when_an_operation_fails_and_2_on_usage_errors() {
    let code = |args: &[&str]| nodedev_env(args, &[]).status.code();
    let d = "test:///default";
    assert_eq!(code(&["-c", d, "list"]), Some(0));
    assert_eq!(code(&["-c", d, "list", ";", "drivers", "--json"]), Some(0));
    assert_eq!(code(&["--help"]), Some(0));
    for usage in [
        &["-c", d][..],
        &["-c"],
        &[],
        &["-c", d, "frobnicate"],
        &["-c", d, "show"],
        &["-c", d, "list", "extra"],
        &["-c", d, "list", "--jsn"],
        &["-c", d, "list", "--json=yes"],
        &["-c", d, "detach"],
        &["-c", d, "detach", "0000:03:01.0", "0000:03:02.0"],
        &["-c", d, "detach", "0000:03:01.0", "--driver"],
        &["-c", d, "detach", "0000:03:01.0", "--managed"],
        &["-c", d, "prepare", "vm1"],
        &["-c", d, "release"],
        &["-c", d, "dump-host", "--json"],
    ] {
        let o = nodedev_env(usage, &[]);
        assert_eq!(o.status.code(), Some(2), "{usage:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("usage: nodedev"), "{usage:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{usage:?} printed {}", stdout(&o));
    }
    for failing in [
        "show 0000:09:00.0",
        "show 0000:9:00.0 --json",
        "detach 0000:00:02.0",
        "detach 0000:03:01.0 --driver vfio-pci",
        "reattach 0000:03:02.0 --driver dccp",
        "reset 0000:03:02.0",
        "release vm1 0000:03:02.0",
    ] {
        let o = script(failing);
        assert_eq!(o.status.code(), Some(1), "{failing}: {}", stderr(&o));
        assert!(stderr(&o).starts_with("nodedev: error: "), "{failing}: {}", stderr(&o));
    }
    assert_eq!(code(&["-c", "test:///no/such/host.json", "list"]), Some(1));

    // A chain stops at the first failure; what ran before it stays done.
    let o = script("detach 0000:04:10.0; show 0000:09:00.0 --json; list --json");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "0000:04:10.0 detached to vfio-pci\n");
    // A usage error anywhere in a chain: nothing runs at all.
    let o = script("detach 0000:03:01.0; list --jsno");
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty(), "{}", stdout(&o));
    assert!(stderr(&o).starts_with("nodedev: list: unknown option --jsno\n"), "{}", stderr(&o));
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// The C API's last error message after `f` (which must fail) on this
/// process's own test:///default, untouched by the other tests here; `f`
/// gets the connection and, when `dev` is given, that device.
fn c_api_message(dev: Option<&str>, f: impl FnOnce(*mut virConnect, *mut virNodeDevice) -> bool) -> String {
    unsafe {
        let conn = virConnectOpen(cstr("test:///default").as_ptr());
        assert!(!conn.is_null());
        let d = dev.map_or(std::ptr::null_mut(), |n| virNodeDeviceLookupByName(conn, cstr(n).as_ptr()));
        assert!(dev.is_none() || !d.is_null());
        assert!(f(conn, d), "the call was expected to fail");
        // Read before any other call: every call resets the last error.
        let msg = CStr::from_ptr(virGetLastErrorMessage()).to_string_lossy().into_owned();
        if !d.is_null() {
            virNodeDeviceFree(d);
        }
        virConnectClose(conn);
        msg
    }
}

#[test]
fn errors_on_stderr_are_the_library_messages_word_for_word() {
    // (command, the C API's message, the context the C layer puts before
    // the library's message: the function and argument a C caller got wrong).
    let cases: Vec<(&str, String, &str)> = vec![
        // The boot VGA: a safety refusal.
        (
            "detach 0000:00:02.0",
            c_api_message(Some("pci_0000_00_02_0"), |_, d| unsafe {
                virNodeDeviceDetachFlags(d, cstr("vfio").as_ptr(), 0) == -1
            }),
            "",
        ),
        // A kernel module name where an abstract driver name belongs.
        (
            "detach 0000:03:01.0 --driver vfio-pci",
            c_api_message(Some("pci_0000_03_01_0"), |_, d| unsafe {
                virNodeDeviceDetachFlags(d, cstr("vfio-pci").as_ptr(), 0) == -1
            }),
            "virNodeDeviceDetachFlags: driverName: ",
        ),
        (
            "reattach 0000:03:02.0 --driver dccp",
            c_api_message(Some("pci_0000_03_02_0"), |_, d| unsafe {
                virNodeDeviceReAttachFlags(d, cstr("dccp").as_ptr(), 0) == -1
            }),
            "",
        ),
        (
            "reset 0000:03:02.0",
            c_api_message(Some("pci_0000_03_02_0"), |_, d| unsafe { virNodeDeviceReset(d) == -1 }),
            "",
        ),
        (
            "show pci_0000_09_00_0",
            c_api_message(None, |conn, _| unsafe {
                virNodeDeviceLookupByName(conn, cstr("pci_0000_09_00_0").as_ptr()).is_null()
            }),
            "",
        ),
    ];
    for (cmd, c_message, c_context) in cases {
        let message = c_message.strip_prefix(c_context).unwrap_or_else(|| panic!("{cmd}: C message {c_message:?}"));
        let o = script(cmd);
        assert_eq!(o.status.code(), Some(1), "{cmd}");
        assert_eq!(stderr(&o), format!("nodedev: error: {message}\n"), "{cmd}");
    }
    // A URI that cannot be opened.
    let message = unsafe {
        assert!(virConnectOpen(cstr("test:///no/such/host.json").as_ptr()).is_null());
        CStr::from_ptr(virGetLastErrorMessage()).to_string_lossy().into_owned()
    };
    let o = nodedev_env(&["-c", "test:///no/such/host.json", "list"], &[]);
    assert_eq!(stderr(&o), format!("nodedev: error: {message}\n"));
}

// ---- NODEDEV_DEBUG ----

/// The `sysfs write` lines of a trace, as they are printed.
fn traced_writes(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with("nodedev: sysfs write ") && !l.contains("\" failed: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn nodedev_debug_traces_every_write_of_a_detach_and_reattach_in_order() {
    let run = "detach 0000:03:01.0 --driver vfio; reattach 0000:03:01.0";
    let quiet = ok(script(run));
    let traced = ok(nodedev_env(&["-c", "test:///default", run], &[("NODEDEV_DEBUG", "1")]));
    assert!(quiet.stderr.is_empty(), "stderr without NODEDEV_DEBUG: {}", stderr(&quiet));
    assert_eq!(stdout(&traced), stdout(&quiet), "the trace goes to stderr only");
    let log = stderr(&traced);
    assert!(log.lines().all(|l| l.starts_with("nodedev: ")), "{log}");

    let dev = "bus/pci/devices/0000:03:01.0";
    let expected = [
        format!("nodedev: sysfs write {dev}/driver_override \"vfio-pci\""),
        "nodedev: sysfs write bus/pci/drivers/e1000/unbind \"0000:03:01.0\"".to_string(),
        "nodedev: sysfs write bus/pci/drivers_probe \"0000:03:01.0\"".to_string(),
        format!("nodedev: sysfs write {dev}/driver_override \"\\n\""),
        "nodedev: sysfs write bus/pci/drivers/vfio-pci/unbind \"0000:03:01.0\"".to_string(),
        "nodedev: sysfs write bus/pci/drivers_probe \"0000:03:01.0\"".to_string(),
    ];
    assert_eq!(traced_writes(&log), expected, "{log}");

    // Exactly what the simulated kernel received from the same operations.
    let sim = Arc::new(SimKernel::builtin());
    let host = Host::new(sim.clone(), StateStore::memory(), HostOptions::default());
    let addr = PciAddress::parse("0000:03:01.0").unwrap();
    host.detach(&addr, Stub::Vfio).unwrap();
    host.reattach(&addr, None).unwrap();
    let received: Vec<String> =
        sim.writes().iter().map(|(p, v)| format!("nodedev: sysfs write {p} \"{}\"", v.escape_debug())).collect();
    assert_eq!(traced_writes(&log), received);

    // The module load comes before the first write, and each move is
    // verified by reading the driver link after the probe.
    let lines: Vec<&str> = log.lines().collect();
    let at = |line: &str| lines.iter().position(|l| *l == line).unwrap_or_else(|| panic!("no line {line}\n{log}"));
    assert!(at("nodedev: modprobe vfio-pci") < at(&expected[0]));
    let probe = at(&expected[2]);
    assert!(
        lines[probe + 1].starts_with(&format!("nodedev: sysfs readlink {dev}/driver -> "))
            && lines[probe + 1].ends_with("/vfio-pci"),
        "{}",
        lines[probe + 1]
    );
    // Reads, listings and existence checks are traced too, with their answers.
    for kind in
        [format!("sysfs read {dev}/"), "sysfs list kernel/iommu_groups/".to_string(), format!("sysfs exists {dev}/")]
    {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("nodedev: {kind}")) && l.contains(" -> ")),
            "no {kind}...\n{log}"
        );
    }
}

#[test]
fn nodedev_debug_traces_failed_writes_and_changes_nothing_else() {
    let debug = [("NODEDEV_DEBUG", "1")];
    let d = ["-c", "test:///default"];
    // Same answers with the trace on: names, safety checks (an interface
    // with an address, the root filesystem's disk), errors.
    for cmd in
        ["list --json; list; group 0000:01:00.0", "detach 0000:04:00.0", "detach 0000:06:00.0", "detach 0000:00:02.0"]
    {
        let (quiet, traced) = (script(cmd), nodedev_env(&[d[0], d[1], cmd], &debug));
        assert_eq!(traced.status.code(), quiet.status.code(), "{cmd}");
        assert_eq!(stdout(&traced), stdout(&quiet), "{cmd}");
        let errors = |o: &Output| {
            stderr(o).lines().filter(|l| l.starts_with("nodedev: error: ")).map(str::to_string).collect::<Vec<_>>()
        };
        assert_eq!(errors(&traced), errors(&quiet), "{cmd}");
        assert_eq!(errors(&quiet).len(), stderr(&quiet).lines().count(), "{cmd}");
    }
    // A write the kernel refuses: printed before, and its failure after.
    let o = nodedev_env(&[d[0], d[1], "detach 0000:01:00.0 --driver kvm; reset 0000:01:00.0"], &debug);
    assert_eq!(o.status.code(), Some(1));
    let log = stderr(&o);
    let write = "nodedev: sysfs write bus/pci/devices/0000:01:00.0/reset \"1\"";
    let lines: Vec<&str> = log.lines().collect();
    let i = lines.iter().position(|l| *l == write).unwrap_or_else(|| panic!("{log}"));
    assert!(lines[i + 1].starts_with(&format!("{write} failed: ")), "{}", lines[i + 1]);
}

// ---- watch (issue 12, item 5) ----

#[test]
fn watch_json_documents_of_every_kind_of_event_match_the_schema() {
    use nodedev::events::Watcher;
    use nodedev::inventory::Report;
    use nodedev::sysfs::Sysfs;
    let sim = nodedev::sysfs::sim::SimKernel::builtin();
    let w = Watcher::new(&sim).unwrap();
    sim.write("bus/pci/devices/0000:03:01.0/driver/unbind", "0000:03:01.0").unwrap();
    sim.write("bus/pci/drivers_probe", "0000:03:01.0").unwrap();
    sim.write("bus/pci/devices/0000:04:00.0/sriov_numvfs", "0").unwrap();
    sim.write("bus/pci/devices/0000:04:00.0/sriov_numvfs", "2").unwrap();
    let events = w.ready().unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for ev in events {
        let doc: Value = serde_json::from_str(&Report::Watch { event: ev }.to_json()).unwrap();
        assert_valid(&doc);
        assert_eq!(doc["command"], "watch");
        kinds.insert((
            doc["event"]["event"].as_str().unwrap().to_string(),
            doc["event"]["action"].as_str().unwrap().to_string(),
        ));
    }
    let want: Vec<(String, String)> =
        [("created", "add"), ("deleted", "remove"), ("updated", "bind"), ("updated", "unbind")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), want);
    // What the schema refuses.
    let bad: Value = serde_json::json!({"schema_version": 1, "command": "watch", "event": {"event": "changed", "device": "pci_0000_03_01_0", "address": "0000:03:01.0", "parent": "computer", "action": "bind", "driver": null, "seqnum": 1}});
    assert!(!validate(&bad).is_empty());
}

#[test]
fn watch_waits_quietly_until_its_timeout_and_refuses_bad_options_and_test_trees() {
    let t = std::time::Instant::now();
    let o = ok(nodedev_env(&["-c", "test:///default", "watch", "--json", "--timeout", "0.3"], &[]));
    assert!(t.elapsed() >= std::time::Duration::from_millis(300));
    assert_eq!(stdout(&o), "", "no event happened");
    for bad in
        [&["watch", "--count", "0"][..], &["watch", "--timeout", "soon"], &["watch", "now"], &["watch", "--jsonx"]]
    {
        let mut args = vec!["-c", "test:///default"];
        args.extend_from_slice(bad);
        assert_eq!(nodedev_env(&args, &[]).status.code(), Some(2), "{bad:?}");
    }
    let dir = std::env::temp_dir().join(format!("nodedev-cli-watch-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sys/bus/pci/devices")).unwrap();
    let uri = format!("nodedev:///system?root={}&statedir={}/state", dir.display(), dir.display());
    let o = nodedev_env(&["-c", &uri, "watch", "--timeout", "1"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no kernel events"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A record nodedev cannot read protects its device: `list` must not show
/// the device as free (no owner, not detached), but say that its record is
/// unusable and how to clear it; `list --json` says why.
#[test]
fn list_shows_a_device_whose_record_is_unusable_as_such() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tmp/cli-corrupt");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let o = ok(script("detach 0000:04:10.0; dump-host"));
    let o = stdout(&o);
    std::fs::write(dir.join("host.json"), &o[o.find('{').unwrap()..]).unwrap();
    let uri = format!("test://{}/host.json?statedir={}/state", dir.display(), dir.display());
    ok(nodedev_env(&["-c", &uri, "prepare vm-a 0000:04:10.0"], &[]));
    std::fs::write(dir.join("state/0000:04:10.0.json"), "{not json").unwrap();

    let text = stdout(&ok(nodedev_env(&["-c", &uri, "list"], &[])));
    let line = text.lines().find(|l| l.starts_with("0000:04:10.0")).unwrap();
    assert!(line.contains("record unusable") && line.contains("recover --clear 0000:04:10.0"), "{line}");
    assert!(!line.contains(" - "), "the owner is unknown, not none: {line}");
    let other = text.lines().find(|l| l.starts_with("0000:04:10.2")).unwrap();
    assert!(!other.contains("record unusable"), "{other}");

    let doc = &json_docs(&ok(nodedev_env(&["-c", &uri, "list", "--json"], &[])))[0];
    assert_valid(doc);
    let why = device(doc, "0000:04:10.0")["unusable_record"].as_str().unwrap_or_default().to_string();
    assert!(why.contains("recover --clear 0000:04:10.0"), "{why}");
    assert_eq!(device(doc, "0000:04:10.2")["unusable_record"], Value::Null);
}
