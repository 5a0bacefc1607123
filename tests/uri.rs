//! Connection URIs.

use nodedev::uri::open;
use nodedev::{Error, Stub};

#[test]
fn the_default_simulated_host_is_shared_by_connections() {
    let (one, _) = open(Some("test:///default"), false).unwrap();
    let (two, _) = open(Some("test:///default"), false).unwrap();
    let nic = one.lookup("0000:03:02.0").unwrap();
    one.detach(&nic, Stub::Kvm).unwrap();
    assert_eq!(two.driver(&nic).unwrap().as_deref(), Some("pci-stub"));
    two.reattach(&nic, None).unwrap();
    assert_eq!(one.driver(&nic).unwrap().as_deref(), Some("e1000"));
}

#[test]
fn a_host_file_is_loaded() {
    let path = std::env::temp_dir().join(format!("nodedev-uri-{}.json", std::process::id()));
    std::fs::write(
        &path,
        r#"{"drivers": [{"name": "e1000e", "module": "e1000e", "loaded": true, "ids": ["8086:10d3"]},
                        {"name": "vfio-pci", "module": "vfio_pci", "loaded": true}],
            "devices": [{"address": "0000:03:00.0", "vendor": "0x8086", "device": "0x10d3",
                         "class": "0x020000", "driver": "e1000e", "iommu_group": 14}]}"#,
    )
    .unwrap();
    let (host, _) = open(Some(&format!("test://{}", path.display())), false).unwrap();
    let dev = host.lookup("pci_0000_03_00_0").unwrap();
    host.detach(&dev, Stub::Vfio).unwrap();
    assert_eq!(host.driver(&dev).unwrap().as_deref(), Some("vfio-pci"));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn bad_uris_are_refused_with_the_accepted_forms() {
    for bad in [
        "http://example/",
        "test:///nonexistent/host.json",
        "test://relative.json",
        "nodedev:///system?root=relative",
        "nodedev:///system?colour=blue",
        "nodedev:///system?modprobe=maybe",
        "test:///default?root=/tmp",
        "",
    ] {
        match open(Some(bad), false) {
            Err(Error::NoConnect(m)) => {
                assert!(m.contains("nodedev:///system") && m.contains("test:///default"), "{m}")
            }
            Err(other) => panic!("{bad}: {other:?}"),
            Ok(_) => panic!("{bad} opened"),
        }
    }
    let path = std::env::temp_dir().join(format!("nodedev-bad-{}.json", std::process::id()));
    std::fs::write(&path, "{\"devices\": [{\"address\": 7}]}").unwrap();
    match open(Some(&format!("test://{}", path.display())), false) {
        Err(Error::NoConnect(m)) => assert!(m.contains("invalid"), "{m}"),
        other => panic!("{:?}", other.err()),
    }
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_tree_under_another_root_is_read_and_records_go_to_statedir() {
    // A tiny sysfs-shaped tree: one device, bound to nothing.
    let root = std::env::temp_dir().join(format!("nodedev-root-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dev = root.join("sys/devices/pci0000:00/0000:00:05.0");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::write(dev.join("vendor"), "0x1234\n").unwrap();
    std::fs::write(dev.join("device"), "0x11e8\n").unwrap();
    std::fs::write(dev.join("class"), "0x00ff00\n").unwrap();
    std::fs::create_dir_all(root.join("sys/bus/pci/devices")).unwrap();
    std::os::unix::fs::symlink(
        "../../../devices/pci0000:00/0000:00:05.0",
        root.join("sys/bus/pci/devices/0000:00:05.0"),
    )
    .unwrap();
    let uri = format!("nodedev:///system?root={}&statedir={}/state&modprobe=0", root.display(), root.display());
    let (host, _) = open(Some(&uri), false).unwrap();
    let addr = host.lookup("0000:00:05.0").unwrap();
    let xml = host.xml(&addr).unwrap();
    assert!(xml.contains("<path>/sys/devices/pci0000:00/0000:00:05.0</path>"), "{xml}");
    assert!(xml.contains("<product id='0x11e8'/>"), "{xml}");
    assert_eq!(host.state().location(), format!("{}/state", root.display()));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn policy_and_lockdown_come_from_the_uri() {
    let path = std::env::temp_dir().join(format!("nodedev-policy-{}.conf", std::process::id()));
    std::fs::write(&path, "# test policy\ndeny 8086:10ca\n").unwrap();
    let uri = format!("test:///default?policy={}", path.display());
    let (host, _) = open(Some(&uri), false).unwrap();
    let vf = host.lookup("0000:04:10.4").unwrap();
    let err = host.detach(&vf, Stub::Vfio).unwrap_err();
    assert!(matches!(&err, Error::Denied(m) if m.contains(&path.display().to_string())), "{err}");

    let (locked, _) = open(Some("test:///default?lockdown=1"), false).unwrap();
    let nic = locked.lookup("0000:03:02.0").unwrap();
    let err = locked.detach(&nic, Stub::Kvm).unwrap_err();
    assert!(matches!(&err, Error::Denied(m) if m.contains("locked down") && m.contains("lockdown=1")), "{err}");
    assert_eq!(locked.driver(&nic).unwrap().as_deref(), Some("e1000"));

    // A policy file with a mistake is refused at open, with its line.
    std::fs::write(&path, "deny 8086\n").unwrap();
    let err = open(Some(&uri), false).err().expect("a bad policy must not open");
    assert!(matches!(&err, Error::NoConnect(m) if m.contains("line 1")), "{err}");
    for bad in ["test:///default?lockdown=yes", "test:///default?policy=relative.conf"] {
        assert!(matches!(open(Some(bad), false), Err(Error::NoConnect(_))), "{bad}");
    }
    std::fs::remove_file(&path).unwrap();
}

/// The live host's policy applies to every URI whose sysfs is the running
/// kernel's, however `root=` spells it, and `policy=` only adds to it. Only
/// read-only connections are opened and nothing is changed: the checks read
/// the connection's policy.
#[test]
fn the_host_policy_cannot_be_stepped_around() {
    use nodedev::uri::open_with_host_policy;
    let dir = std::env::temp_dir().join(format!("nodedev-uri-policy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tree/sys")).unwrap();
    let host_policy = dir.join("host.conf");
    std::fs::write(&host_policy, "lockdown yes\ndeny 8086:2930\n").unwrap();
    let lenient = dir.join("lenient.conf");
    std::fs::write(&lenient, "lockdown no\nallow 8086:*\n").unwrap();
    let strict = dir.join("strict.conf");
    std::fs::write(&strict, "lockdown yes\n").unwrap();
    std::os::unix::fs::symlink("/", dir.join("slash")).unwrap();
    let state = dir.join("state");
    // A "test tree" whose sys is this kernel's.
    std::fs::create_dir_all(dir.join("sys-link-root")).unwrap();
    std::os::unix::fs::symlink("/sys", dir.join("sys-link-root/sys")).unwrap();
    let host_policy = host_policy.to_str().unwrap();
    let policy_of = |uri: &str| {
        let (host, _) = open_with_host_policy(Some(uri), true, host_policy).unwrap();
        host.options().policy.clone()
    };
    let s = state.display();
    // Every way to reach this kernel's /sys: no root, spellings of /, a link
    // to /, and a tree whose sys is a link to /sys.
    let roots = [
        String::new(),
        "&root=/".to_string(),
        "&root=//".to_string(),
        "&root=/./".to_string(),
        format!("&root={}", dir.join("slash").display()),
        format!("&root={}", dir.join("sys-link-root").display()),
    ];
    for root in &roots {
        for extra in [String::new(), format!("&policy={}", lenient.display())] {
            let uri = format!("nodedev:///system?modprobe=0{root}{extra}");
            let p = policy_of(&uri);
            assert!(p.is_locked_down(), "{uri}: the host's lockdown was stepped around");
            let e = p.check_unlocked("detach", &nodedev::PciAddress::parse("0000:00:1f.3").unwrap()).unwrap_err();
            assert!(e.to_string().contains(host_policy), "{uri}: {e}");
            assert!(p.has_device_rules(), "{uri}: the host's deny rule was dropped");
        }
    }
    // The live host's records cannot be moved aside.
    let err = open_with_host_policy(Some(&format!("nodedev:///system?statedir={s}")), true, host_policy).err().unwrap();
    assert!(err.to_string().contains("statedir=") && err.to_string().contains("/run/nodedev"), "{err}");
    let err = open_with_host_policy(
        Some(&format!("nodedev:///system?statedir={s}&root={}", dir.join("sys-link-root").display())),
        true,
        host_policy,
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("statedir="), "{err}");
    // A host policy that is there but cannot be read refuses the connection.
    std::os::unix::fs::symlink(dir.join("not-mounted-yet/policy.conf"), dir.join("dangling.conf")).unwrap();
    let err = open_with_host_policy(Some("nodedev:///system"), true, dir.join("dangling.conf").to_str().unwrap())
        .err()
        .unwrap();
    assert!(err.to_string().contains("host policy"), "{err}");
    // A test tree goes without the host's policy; its own file still applies.
    let tree = format!("nodedev:///system?statedir={s}&root={}", dir.join("tree").display());
    assert!(!policy_of(&tree).is_locked_down());
    assert!(policy_of(&format!("{tree}&policy={}", strict.display())).is_locked_down());
    assert!(policy_of(&format!("{tree}&lockdown=1")).is_locked_down());
    std::fs::remove_dir_all(&dir).unwrap();
}
