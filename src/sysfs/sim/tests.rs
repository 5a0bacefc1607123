//! The simulated kernel against the real kernel's rules, one rule per test.

use super::*;

const NIC: &str = "0000:03:01.0";
const NIC2: &str = "0000:03:02.0";
const EDU: &str = "0000:05:00.0";
const PF: &str = "0000:04:00.0";
const VF: &str = "0000:04:10.0";
const IGPU: &str = "0000:00:02.0";

fn errno<T: fmt::Debug>(r: io::Result<T>) -> i32 {
    r.expect_err("expected an error").raw_os_error().expect("an errno")
}

fn dev(addr: &str, attr: &str) -> String {
    format!("bus/pci/devices/{addr}/{attr}")
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn set_override(k: &SimKernel, addr: &str, driver: &str) {
    k.write(&dev(addr, "driver_override"), driver).unwrap();
}

#[test]
fn the_builtin_host_validates_and_has_its_layout() {
    let k = SimKernel::builtin();
    assert_eq!(k.list_dir("bus/pci/devices").unwrap().len(), 21);
    let drivers = sorted(k.list_dir("bus/pci/drivers").unwrap());
    assert_eq!(drivers.len(), 12);
    assert!(drivers.contains(&"pci-stub".to_string()) && !drivers.contains(&"vfio-pci".to_string()));
    for (addr, want) in [
        ("0000:00:00.0", None),
        ("0000:00:01.0", Some("pcieport")),
        ("0000:01:00.0", Some("nouveau")),
        (IGPU, Some("i915")),
        ("0000:02:00.0", None),
        (NIC, Some("e1000")),
        (PF, Some("igb")),
        ("0000:04:10.4", Some("igbvf")),
        (EDU, None),
        ("0000:06:00.0", Some("nvme")),
        ("0000:00:1f.3", Some("i801_smbus")),
    ] {
        assert_eq!(k.driver_of(addr).as_deref(), want, "{addr}");
    }
    assert!(k.module_loaded("pci-stub") && !k.module_loaded("vfio_pci") && !k.module_loaded("xen-pciback"));
    assert!(k.writes().is_empty());
    // Every device is what its own driver would probe again.
    let spec = HostSpec::from_json(builtin::HOST).unwrap();
    let k2 = SimKernel::from_spec(spec).unwrap();
    for a in k2.list_dir("bus/pci/devices").unwrap() {
        let before = k2.driver_of(&a);
        if let Some(d) = &before {
            k2.write(&format!("bus/pci/drivers/{d}/unbind"), &a).unwrap();
        }
        k2.write("bus/pci/drivers_probe", &a).unwrap();
        assert_eq!(k2.driver_of(&a), before, "{a}");
    }
}

#[test]
fn attributes_read_like_the_kernel_prints_them() {
    let k = SimKernel::builtin();
    assert_eq!(k.read(&dev(NIC, "vendor")).unwrap(), "0x8086\n");
    assert_eq!(k.read(&dev(NIC, "device")).unwrap(), "0x100e\n");
    assert_eq!(k.read(&dev(NIC, "subsystem_device")).unwrap(), "0x001e\n");
    assert_eq!(k.read(&dev(NIC, "class")).unwrap(), "0x020000\n");
    assert_eq!(k.read(&dev(NIC, "numa_node")).unwrap(), "0\n");
    assert_eq!(k.read(&dev(NIC, "driver_override")).unwrap(), "(null)\n");
    assert_eq!(k.read(&dev(PF, "reset_method")).unwrap(), "flr bus\n");
    assert_eq!(k.read(&dev(PF, "sriov_totalvfs")).unwrap(), "7\n");
    assert_eq!(k.read(&dev(PF, "sriov_numvfs")).unwrap(), "3\n");
    assert_eq!(k.read(&dev(IGPU, "boot_vga")).unwrap(), "1\n");
    assert_eq!(k.read(&dev("0000:01:00.0", "boot_vga")).unwrap(), "0\n");
    assert_eq!(k.read("bus/pci/drivers_autoprobe").unwrap(), "1\n");
    assert_eq!(k.read("class/net/eth0/operstate").unwrap(), "up\n");
    assert_eq!(k.read("class/net/eth1/operstate").unwrap(), "down\n");
    // Absent where the kernel has no such attribute.
    assert_eq!(errno(k.read(&dev(NIC, "boot_vga"))), libc::ENOENT);
    assert_eq!(errno(k.read(&dev(NIC, "reset_method"))), libc::ENOENT);
    assert_eq!(errno(k.read(&dev(NIC, "sriov_numvfs"))), libc::ENOENT);
    assert_eq!(errno(k.read(&dev("0000:09:00.0", "vendor"))), libc::ENOENT);
}

#[test]
fn file_kinds_give_the_kernels_errors() {
    let k = SimKernel::builtin();
    assert_eq!(errno(k.read(&dev(PF, "reset"))), libc::EACCES, "write-only");
    assert_eq!(errno(k.read("bus/pci/drivers/e1000/bind")), libc::EACCES);
    assert_eq!(errno(k.write(&dev(NIC, "vendor"), "0x1234")), libc::EACCES, "read-only");
    assert_eq!(errno(k.read(&dev(NIC, ""))), libc::EISDIR);
    assert_eq!(errno(k.write("bus/pci/drivers/e1000", "x")), libc::EISDIR);
    assert_eq!(errno(k.list_dir(&dev(NIC, "vendor"))), libc::ENOTDIR);
    assert_eq!(errno(k.read(&dev(NIC, "vendor/x"))), libc::ENOTDIR);
    assert_eq!(errno(k.write("bus/pci/nonesuch", "1")), libc::ENOENT);
    assert_eq!(errno(k.read_link(&dev(NIC, "vendor"))), libc::EINVAL);
    assert_eq!(errno(k.read("/bus/pci/drivers_autoprobe")), libc::EINVAL);
    assert_eq!(errno(k.read("bus/pci/devices/../drivers_autoprobe")), libc::EINVAL);
    assert!(k.exists("bus/pci/rescan") && !k.exists("bus/pci/../pci") && !k.exists("bus/pci/nonesuch"));
    assert!(k.writes().is_empty(), "failed writes are not logged");
}

#[test]
fn links_point_where_the_kernel_points_them() {
    let k = SimKernel::builtin();
    let nic_path = "devices/pci0000:00/0000:00:1c.0/0000:02:00.0/0000:03:01.0";
    assert_eq!(k.read_link(&format!("bus/pci/devices/{NIC}")).unwrap(), format!("../../../{nic_path}"));
    assert_eq!(k.read_link(&format!("bus/pci/devices/{IGPU}")).unwrap(), "../../../devices/pci0000:00/0000:00:02.0");
    assert_eq!(k.read_link(&dev(IGPU, "driver")).unwrap(), "../../../bus/pci/drivers/i915");
    assert_eq!(k.read_link(&dev(NIC, "driver")).unwrap(), "../../../../../bus/pci/drivers/e1000");
    assert_eq!(k.read_link(&dev(NIC, "iommu_group")).unwrap(), "../../../../../kernel/iommu_groups/5");
    assert_eq!(k.read_link(&dev(NIC, "subsystem")).unwrap(), "../../../../../bus/pci");
    assert_eq!(k.read_link(&dev(VF, "physfn")).unwrap(), "../0000:04:00.0");
    assert_eq!(k.read_link(&dev(PF, "virtfn1")).unwrap(), "../0000:04:10.2");
    assert_eq!(k.read_link(&format!("bus/pci/drivers/e1000/{NIC}")).unwrap(), format!("../../../../{nic_path}"));
    assert_eq!(k.read_link("bus/pci/drivers/i801_smbus/module").unwrap(), "../../../../module/i2c_i801");
    assert_eq!(k.read_link("class/net/eth1").unwrap(), format!("../../{nic_path}/net/eth1"));
    assert_eq!(
        k.read_link(&format!("kernel/iommu_groups/5/devices/{NIC}")).unwrap(),
        format!("../../../../{nic_path}")
    );
    // Following them lands on the same files.
    assert_eq!(k.read(&format!("{nic_path}/vendor")).unwrap(), "0x8086\n");
    assert_eq!(sorted(k.list_dir(&dev(NIC, "iommu_group/devices")).unwrap()).len(), 3);
    assert!(k.exists(&dev(NIC, "driver/unbind")) && k.exists(&dev(NIC, "driver/module")));
    assert_eq!(k.read(&dev(VF, "physfn/sriov_totalvfs")).unwrap(), "7\n");
    assert!(k.exists(&dev(EDU, "subsystem/drivers_probe")));
    assert!(!k.exists(&dev(EDU, "driver")) && !k.exists(&dev(EDU, "driver/unbind")));
}

#[test]
fn a_device_directory_lists_what_exists() {
    let k = SimKernel::builtin();
    let common = [
        "class",
        "config",
        "device",
        "driver_override",
        "numa_node",
        "remove",
        "subsystem",
        "subsystem_device",
        "subsystem_vendor",
        "uevent",
        "vendor",
        "iommu_group",
    ];
    let with = |extra: &[&str]| sorted(common.iter().chain(extra).map(|s| s.to_string()).collect());
    assert_eq!(sorted(k.list_dir(&dev(NIC, "")).unwrap()), with(&["driver", "net"]));
    assert_eq!(sorted(k.list_dir(&dev(EDU, "")).unwrap()), with(&["reset", "reset_method"]));
    assert_eq!(
        sorted(k.list_dir(&dev(IGPU, "")).unwrap()),
        with(&[
            "boot_vga",
            "driver",
            "graphics",
            "mdev_supported_types",
            "reset",
            "reset_method",
            "current_link_speed",
            "current_link_width",
            "max_link_speed",
            "max_link_width"
        ])
    );
    assert_eq!(sorted(k.list_dir(&dev(VF, "")).unwrap()), with(&["driver", "physfn", "reset", "reset_method"]));
    assert_eq!(
        sorted(k.list_dir(&dev(PF, "")).unwrap()),
        with(&[
            "driver",
            "net",
            "reset",
            "reset_method",
            "sriov_drivers_autoprobe",
            "sriov_numvfs",
            "sriov_totalvfs",
            "virtfn0",
            "virtfn1",
            "virtfn2",
            "current_link_speed",
            "current_link_width",
            "max_link_speed",
            "max_link_width",
            "vpd"
        ])
    );
    // A bridge also holds the functions behind it.
    assert_eq!(sorted(k.list_dir(&dev("0000:02:00.0", "")).unwrap()), with(&[NIC, NIC2]));
    assert_eq!(k.list_dir(&dev(NIC, "net")).unwrap(), ["eth1"]);
    assert_eq!(k.list_dir(&dev("0000:06:00.0", "block")).unwrap(), ["nvme0n1"]);
    assert_eq!(sorted(k.list_dir("class/net").unwrap()), ["br0", "eth0", "eth1", "eth2"]);
    assert_eq!(k.list_dir("devices").unwrap(), ["pci0000:00", "virtual"]);
}

#[test]
fn drivers_list_only_loaded_drivers_and_their_devices() {
    let k = SimKernel::builtin();
    assert!(!k.exists("bus/pci/drivers/vfio-pci"));
    assert_eq!(errno(k.list_dir("bus/pci/drivers/vfio-pci")), libc::ENOENT);
    assert_eq!(
        sorted(k.list_dir("bus/pci/drivers/e1000").unwrap()),
        ["0000:03:01.0", "0000:03:02.0", "bind", "module", "new_id", "remove_id", "unbind"]
    );
    assert_eq!(
        sorted(k.list_dir("bus/pci/drivers/pci-stub").unwrap()),
        ["bind", "module", "new_id", "remove_id", "unbind"]
    );
    assert_eq!(
        sorted(k.list_dir("bus/pci").unwrap()),
        ["devices", "drivers", "drivers_autoprobe", "drivers_probe", "rescan"]
    );
    assert_eq!(k.list_dir("module/i2c_i801/drivers").unwrap(), ["pci:i801_smbus"]);
    assert!(!k.exists("module/vfio_pci"));
}

#[test]
fn iommu_groups_list_their_members() {
    let k = SimKernel::builtin();
    let groups: Vec<u32> = k.list_dir("kernel/iommu_groups").unwrap().iter().map(|g| g.parse().unwrap()).collect();
    assert_eq!(sorted(groups.iter().map(u32::to_string).collect()).len(), 16);
    assert!((0..=15).all(|g| groups.contains(&g)));
    assert_eq!(sorted(k.list_dir("kernel/iommu_groups/5/devices").unwrap()), ["0000:02:00.0", NIC, NIC2]);
    assert_eq!(
        sorted(k.list_dir("kernel/iommu_groups/15/devices").unwrap()),
        ["0000:00:1f.0", "0000:00:1f.2", "0000:00:1f.3"]
    );
    assert_eq!(k.list_dir("kernel/iommu_groups/8/devices").unwrap(), [VF]);
    assert_eq!(errno(k.list_dir("kernel/iommu_groups/99")), libc::ENOENT);
}

#[test]
fn override_unbind_and_probe_move_a_device_to_a_loaded_stub() {
    let k = SimKernel::builtin();
    set_override(&k, NIC, "pci-stub");
    assert_eq!(k.read(&dev(NIC, "driver_override")).unwrap(), "pci-stub\n");
    assert_eq!(k.driver_of(NIC).as_deref(), Some("e1000"), "setting the override alone moves nothing");
    k.write("bus/pci/drivers/e1000/unbind", NIC).unwrap();
    assert_eq!(k.driver_of(NIC), None);
    k.write("bus/pci/drivers_probe", NIC).unwrap();
    assert_eq!(k.driver_of(NIC).as_deref(), Some("pci-stub"));
    assert_eq!(k.read_link(&dev(NIC, "driver")).unwrap(), "../../../../../bus/pci/drivers/pci-stub");
    assert_eq!(k.driver_of(NIC2).as_deref(), Some("e1000"), "the twin is untouched");
}

#[test]
fn probing_with_an_override_naming_an_unloaded_driver_leaves_the_device_unbound() {
    let k = SimKernel::builtin();
    set_override(&k, NIC, "vfio-pci");
    k.write("bus/pci/drivers/e1000/unbind", NIC).unwrap();
    k.write("bus/pci/drivers_probe", NIC).unwrap();
    assert_eq!(k.driver_of(NIC), None, "e1000 may not take it back either");
}

#[test]
fn clearing_the_override_and_probing_returns_the_device_to_its_best_driver() {
    let k = SimKernel::builtin();
    set_override(&k, NIC, "pci-stub\n");
    k.write("bus/pci/drivers/e1000/unbind", NIC).unwrap();
    k.write("bus/pci/drivers_probe", NIC).unwrap();
    k.write(&dev(NIC, "driver/unbind"), NIC).unwrap();
    // Zero bytes never reach the kernel's store method; a newline clears.
    k.write(&dev(NIC, "driver_override"), "").unwrap();
    assert_eq!(k.read(&dev(NIC, "driver_override")).unwrap(), "pci-stub\n");
    k.write(&dev(NIC, "driver_override"), "\n").unwrap();
    assert_eq!(k.read(&dev(NIC, "driver_override")).unwrap(), "(null)\n");
    k.write("bus/pci/drivers_probe", &format!("{NIC}\n")).unwrap();
    assert_eq!(k.driver_of(NIC).as_deref(), Some("e1000"));
    // A class match works the same way.
    k.write("bus/pci/drivers/nvme/unbind", "0000:06:00.0").unwrap();
    k.write("bus/pci/drivers_probe", "0000:06:00.0").unwrap();
    assert_eq!(k.driver_of("0000:06:00.0").as_deref(), Some("nvme"));
}

#[test]
fn drivers_probe_rules() {
    let k = SimKernel::builtin();
    assert_eq!(errno(k.write("bus/pci/drivers_probe", "0000:09:00.0")), libc::ENODEV);
    assert_eq!(errno(k.write("bus/pci/drivers_probe", "0000:3:01.0")), libc::ENODEV, "names compare as strings");
    k.write("bus/pci/drivers_probe", NIC).unwrap();
    assert_eq!(k.driver_of(NIC).as_deref(), Some("e1000"), "bound: nothing happens");
    k.write("bus/pci/drivers_probe", EDU).unwrap();
    assert_eq!(k.driver_of(EDU), None, "no driver matches: still success");
}

#[test]
fn bind_rules() {
    let k = SimKernel::builtin();
    assert_eq!(errno(k.write("bus/pci/drivers/e1000/bind", "0000:09:00.0")), libc::ENODEV, "no such device");
    assert_eq!(errno(k.write("bus/pci/drivers/e1000/bind", NIC)), libc::EBUSY, "already bound");
    assert_eq!(errno(k.write("bus/pci/drivers/pci-stub/bind", NIC)), libc::ENODEV, "no id matches");
    assert_eq!(errno(k.write("bus/pci/drivers/e1000/bind", EDU)), libc::ENODEV, "no id matches");

    k.write("bus/pci/drivers/e1000/unbind", NIC).unwrap();
    set_override(&k, NIC, "pci-stub");
    assert_eq!(errno(k.write("bus/pci/drivers/e1000/bind", NIC)), libc::ENODEV, "override names another driver");
    k.write("bus/pci/drivers/pci-stub/bind", NIC).unwrap();
    assert_eq!(k.driver_of(NIC).as_deref(), Some("pci-stub"), "override == driver binds without an id");

    k.write("bus/pci/drivers/pci-stub/unbind", NIC).unwrap();
    set_override(&k, NIC, "\n");
    k.write("bus/pci/drivers/e1000/bind", &format!("{NIC}\n")).unwrap();
    assert_eq!(k.driver_of(NIC).as_deref(), Some("e1000"), "an id match binds");
}

#[test]
fn unbind_rules() {
    let k = SimKernel::builtin();
    assert_eq!(errno(k.write("bus/pci/drivers/pci-stub/unbind", NIC)), libc::ENODEV, "bound to another driver");
    assert_eq!(errno(k.write("bus/pci/drivers/e1000/unbind", EDU)), libc::ENODEV);
    assert_eq!(errno(k.write("bus/pci/drivers/vfio-pci/unbind", NIC)), libc::ENOENT, "driver not loaded");
    k.write(&dev(NIC, "driver/unbind"), NIC).unwrap();
    assert_eq!(k.driver_of(NIC), None);
    assert_eq!(errno(k.write(&dev(NIC, "driver/unbind"), NIC)), libc::ENOENT, "no driver link any more");
    assert!(!k.list_dir("bus/pci/drivers/e1000").unwrap().contains(&NIC.to_string()));
}

#[test]
fn new_id_grabs_every_matching_unbound_device() {
    let k = SimKernel::builtin();
    k.write("bus/pci/drivers/e1000/unbind", NIC).unwrap();
    k.write("bus/pci/drivers/e1000/unbind", NIC2).unwrap();
    k.write("bus/pci/drivers/pci-stub/new_id", "8086 100e").unwrap();
    assert_eq!(k.driver_of(NIC).as_deref(), Some("pci-stub"));
    assert_eq!(k.driver_of(NIC2).as_deref(), Some("pci-stub"), "the bystander is grabbed too");
    assert_eq!(k.driver_of(EDU), None);
}

#[test]
fn new_id_spares_a_device_whose_override_names_another_driver() {
    let k = SimKernel::builtin();
    k.write("bus/pci/drivers/e1000/unbind", NIC).unwrap();
    set_override(&k, NIC2, "e1000");
    k.write("bus/pci/drivers/e1000/unbind", NIC2).unwrap();
    k.write("bus/pci/drivers/pci-stub/new_id", "0x8086 0x100e\n").unwrap();
    assert_eq!(k.driver_of(NIC).as_deref(), Some("pci-stub"));
    assert_eq!(k.driver_of(NIC2), None);
}

#[test]
fn new_id_refuses_malformed_and_known_ids() {
    let k = SimKernel::builtin();
    assert_eq!(errno(k.write("bus/pci/drivers/pci-stub/new_id", "8086")), libc::EINVAL);
    assert_eq!(errno(k.write("bus/pci/drivers/pci-stub/new_id", "8086:100e")), libc::EINVAL);
    assert_eq!(errno(k.write("bus/pci/drivers/pci-stub/new_id", "zz 100e")), libc::EINVAL);
    assert_eq!(errno(k.write("bus/pci/drivers/e1000/new_id", "8086 100e")), libc::EEXIST, "a static id");
    k.write("bus/pci/drivers/pci-stub/new_id", "1234 11e8 ffffffff ffffffff 0 0").unwrap();
    assert_eq!(k.driver_of(EDU).as_deref(), Some("pci-stub"), "extra fields are fine");
    assert_eq!(errno(k.write("bus/pci/drivers/pci-stub/new_id", "1234 11e8")), libc::EEXIST, "a dynamic id");
}

#[test]
fn remove_id_drops_the_id_but_not_the_devices() {
    let k = SimKernel::builtin();
    assert_eq!(errno(k.write("bus/pci/drivers/pci-stub/remove_id", "1234 11e8")), libc::ENODEV);
    assert_eq!(errno(k.write("bus/pci/drivers/pci-stub/remove_id", "1234")), libc::EINVAL);
    k.write("bus/pci/drivers/pci-stub/new_id", "1234 11e8").unwrap();
    assert_eq!(k.driver_of(EDU).as_deref(), Some("pci-stub"));
    k.write("bus/pci/drivers/pci-stub/remove_id", "1234 11e8\n").unwrap();
    assert_eq!(k.driver_of(EDU).as_deref(), Some("pci-stub"), "stays bound");
    k.write("bus/pci/drivers/pci-stub/unbind", EDU).unwrap();
    k.write("bus/pci/drivers_probe", EDU).unwrap();
    assert_eq!(k.driver_of(EDU), None, "the id is gone");
    assert_eq!(errno(k.write("bus/pci/drivers/pci-stub/remove_id", "1234 11e8")), libc::ENODEV);
}

#[test]
fn loading_a_module_registers_its_driver_and_probes() {
    let k = SimKernel::builtin();
    set_override(&k, EDU, "vfio-pci");
    k.load_module("vfio-pci").unwrap();
    assert!(k.module_loaded("vfio_pci") && k.exists("bus/pci/drivers/vfio-pci") && k.exists("module/vfio_pci"));
    assert_eq!(k.driver_of(EDU).as_deref(), Some("vfio-pci"), "registration probes unbound devices");
    k.load_module("vfio_pci").unwrap();
    k.load_module("e1000").unwrap();
    assert_eq!(errno(k.load_module("nonesuch")), libc::ENOENT);

    let k = SimKernel::from_json(
        r#"{"drivers": [{"name": "xen-pciback", "loaded": false, "available": false}],
            "devices": []}"#,
    )
    .unwrap();
    assert_eq!(errno(k.load_module("xen-pciback")), libc::ENOENT, "not built for this kernel");
}

#[test]
fn a_kernel_that_forbids_module_loading_says_eperm() {
    let k = SimKernel::builtin();
    k.set_module_loading_allowed(false);
    assert_eq!(errno(k.load_module("vfio-pci")), libc::EPERM);
    assert!(!k.module_loaded("vfio-pci") && !k.exists("bus/pci/drivers/vfio-pci"));
    k.load_module("pci_stub").unwrap();
    k.set_module_loading_allowed(true);
    k.load_module("vfio-pci").unwrap();
}

#[test]
fn vfio_pci_refuses_bridges_and_devices_without_a_group() {
    let k = SimKernel::builtin();
    k.load_module("vfio-pci").unwrap();
    set_override(&k, "0000:02:00.0", "vfio-pci");
    assert_eq!(errno(k.write("bus/pci/drivers/vfio-pci/bind", "0000:02:00.0")), libc::EINVAL);
    k.write("bus/pci/drivers_probe", "0000:02:00.0").unwrap();
    assert_eq!(k.driver_of("0000:02:00.0"), None, "a failed probe leaves it unbound");
}

#[test]
fn reset_counts_and_needs_a_method() {
    let k = SimKernel::builtin();
    k.write(&dev(VF, "reset"), "1").unwrap();
    k.write(&dev(VF, "reset"), "1\n").unwrap();
    assert_eq!(k.reset_count(VF), 2);
    assert_eq!(errno(k.write(&dev(VF, "reset"), "2")), libc::EINVAL);
    assert_eq!(errno(k.write(&dev(VF, "reset"), "yes")), libc::EINVAL);
    assert_eq!(k.reset_count(VF), 2);
    assert_eq!(errno(k.write(&dev(NIC, "reset"), "1")), libc::ENOENT, "no reset method, no reset file");
    assert_eq!(k.reset_count(NIC), 0);
    // Disabling every method leaves the file but the reset fails.
    k.write(&dev(VF, "reset_method"), "\n").unwrap();
    assert_eq!(k.read(&dev(VF, "reset_method")).unwrap(), "");
    assert_eq!(errno(k.write(&dev(VF, "reset"), "1")), libc::ENOTTY);
    assert_eq!(errno(k.write(&dev(VF, "reset_method"), "bus")), libc::EINVAL, "not supported by the VF");
    k.write(&dev(VF, "reset_method"), "default").unwrap();
    assert_eq!(k.read(&dev(VF, "reset_method")).unwrap(), "flr\n");
}

#[test]
fn hot_remove_takes_the_subtree_and_rescan_brings_it_back_unbound_then_probed() {
    let k = SimKernel::builtin();
    set_override(&k, NIC, "pci-stub");
    k.write(&dev("0000:02:00.0", "remove"), "1").unwrap();
    for gone in ["0000:02:00.0", NIC, NIC2] {
        assert!(!k.exists(&format!("bus/pci/devices/{gone}")), "{gone}");
        assert_eq!(k.driver_of(gone), None);
    }
    assert!(!k.exists("kernel/iommu_groups/5"));
    assert_eq!(sorted(k.list_dir("class/net").unwrap()), ["br0", "eth0"]);
    assert_eq!(
        sorted(k.list_dir("bus/pci/drivers/e1000").unwrap()),
        ["bind", "module", "new_id", "remove_id", "unbind"]
    );
    assert_eq!(k.list_dir("bus/pci/devices").unwrap().len(), 18);

    k.write("bus/pci/rescan", "1").unwrap();
    assert_eq!(k.list_dir("bus/pci/devices").unwrap().len(), 21);
    assert_eq!(k.driver_of(NIC).as_deref(), Some("e1000"), "a new pci_dev has no override");
    assert_eq!(k.read(&dev(NIC, "driver_override")).unwrap(), "(null)\n");
    assert_eq!(k.driver_of("0000:02:00.0"), None);
    assert!(k.exists("kernel/iommu_groups/5/devices/0000:03:02.0"));
    assert_eq!(errno(k.write(&dev(NIC, "remove"), "x")), libc::EINVAL);
}

#[test]
fn a_rescan_binds_even_with_the_bus_autoprobe_off() {
    // pci_bus_add_device attaches drivers itself (checked on a 6.1 guest);
    // drivers_autoprobe only holds back devices added in other ways and
    // newly registered drivers.
    let k = SimKernel::builtin();
    k.write(&dev(NIC, "remove"), "1").unwrap();
    k.write("bus/pci/drivers_autoprobe", "0").unwrap();
    k.write("bus/pci/rescan", "1").unwrap();
    assert_eq!(k.driver_of(NIC).as_deref(), Some("e1000"));
}

#[test]
fn a_removed_pf_takes_its_vfs_and_comes_back_with_sriov_off() {
    let k = SimKernel::builtin();
    k.write(&dev(PF, "remove"), "1").unwrap();
    assert!(!k.exists(&format!("bus/pci/devices/{VF}")));
    assert!(!k.exists("kernel/iommu_groups/8"));
    k.write("bus/pci/rescan", "1").unwrap();
    assert_eq!(k.driver_of(PF).as_deref(), Some("igb"));
    assert_eq!(k.read(&dev(PF, "sriov_numvfs")).unwrap(), "0\n");
    assert!(!k.exists(&format!("bus/pci/devices/{VF}")), "a bus scan does not find VFs");
    k.write(&dev(PF, "sriov_numvfs"), "3").unwrap();
    assert_eq!(k.driver_of(VF).as_deref(), Some("igbvf"));
    assert_eq!(k.read_link(&dev(VF, "iommu_group")).unwrap(), "../../../../kernel/iommu_groups/8");
}

#[test]
fn sriov_numvfs_rules() {
    let k = SimKernel::builtin();
    assert_eq!(errno(k.write(&dev(PF, "sriov_numvfs"), "8")), libc::ERANGE);
    assert_eq!(errno(k.write(&dev(PF, "sriov_numvfs"), "5")), libc::EBUSY, "only from 0");
    k.write(&dev(PF, "sriov_numvfs"), "3").unwrap();
    k.write(&dev(PF, "sriov_numvfs"), "0").unwrap();
    assert!(!k.list_dir(&dev(PF, "")).unwrap().iter().any(|n| n.starts_with("virtfn")));
    assert!(!k.exists(&format!("bus/pci/devices/{VF}")));
    k.write(&dev(PF, "sriov_numvfs"), "5").unwrap();
    // The described VFs first, then more at the same stride.
    assert_eq!(k.read_link(&dev(PF, "virtfn3")).unwrap(), "../0000:04:10.6");
    assert_eq!(k.read_link(&dev(PF, "virtfn4")).unwrap(), "../0000:04:11.0");
    assert_eq!(k.driver_of("0000:04:11.0").as_deref(), Some("igbvf"));
    assert_eq!(k.read(&dev("0000:04:11.0", "device")).unwrap(), "0x10ca\n");
    let groups = k.list_dir("kernel/iommu_groups").unwrap();
    assert!(groups.contains(&"16".to_string()) && groups.contains(&"17".to_string()), "{groups:?}");
    k.write(&dev(PF, "sriov_numvfs"), "0").unwrap();
    assert!(!k.exists("bus/pci/devices/0000:04:11.0"));
    // Without a PF driver there is no one to ask.
    k.write("bus/pci/drivers/igb/unbind", PF).unwrap();
    assert_eq!(errno(k.write(&dev(PF, "sriov_numvfs"), "2")), libc::ENOENT);
}

#[test]
fn without_an_iommu_there_are_no_groups() {
    let k = SimKernel::from_json(
        r#"{"iommu": false,
            "drivers": [{"name": "e1000e", "ids": ["8086:10d3"]}, {"name": "vfio-pci", "module": "vfio_pci"}],
            "devices": [{"address": "0000:03:00.0", "vendor": "0x8086", "device": "0x10d3",
                         "class": "0x020000", "driver": "e1000e", "iommu_group": 3}]}"#,
    )
    .unwrap();
    assert_eq!(errno(k.list_dir("kernel/iommu_groups")), libc::ENOENT);
    assert!(!k.exists("bus/pci/devices/0000:03:00.0/iommu_group"));
    assert!(!k.list_dir("bus/pci/devices/0000:03:00.0").unwrap().contains(&"iommu_group".to_string()));
    k.write("bus/pci/drivers/e1000e/unbind", "0000:03:00.0").unwrap();
    set_override(&k, "0000:03:00.0", "vfio-pci");
    assert_eq!(errno(k.write("bus/pci/drivers/vfio-pci/bind", "0000:03:00.0")), libc::EINVAL);
}

#[test]
fn an_old_kernel_has_no_driver_override() {
    let k = SimKernel::from_json(
        r#"{"driver_override": false,
            "drivers": [{"name": "e1000", "ids": ["8086:100e"]}],
            "devices": [{"address": "0000:03:01.0", "vendor": "0x8086", "device": "0x100e", "class": "0x020000"}]}"#,
    )
    .unwrap();
    assert!(!k.exists(&dev(NIC, "driver_override")));
    assert_eq!(errno(k.write(&dev(NIC, "driver_override"), "pci-stub")), libc::ENOENT);
    assert_eq!(k.read(&dev(NIC, "subsystem_vendor")).unwrap(), "0x0000\n", "default subsystem ids");
    assert_eq!(k.read(&dev(NIC, "numa_node")).unwrap(), "-1\n");
    assert_eq!(k.driver_of(NIC), None);
}

#[test]
fn the_write_log_holds_successful_writes_in_order() {
    let k = SimKernel::builtin();
    set_override(&k, NIC, "pci-stub");
    let _ = k.write("bus/pci/drivers/pci-stub/unbind", NIC);
    k.write("bus/pci/drivers/e1000/unbind", NIC).unwrap();
    k.write("bus/pci/drivers_probe", NIC).unwrap();
    let want: Vec<(String, String)> = [
        (dev(NIC, "driver_override"), "pci-stub"),
        ("bus/pci/drivers/e1000/unbind".into(), NIC),
        ("bus/pci/drivers_probe".into(), NIC),
    ]
    .into_iter()
    .map(|(p, v)| (p, v.to_string()))
    .collect();
    assert_eq!(k.writes(), want);
}

#[test]
fn pci_names_come_from_the_description() {
    let k = SimKernel::builtin();
    let names = |v, d| {
        let n = k.pci_names(v, d);
        (n.vendor, n.product)
    };
    assert_eq!(
        names(0x8086, 0x100e),
        (Some("Intel Corporation".to_string()), Some("82540EM Gigabit Ethernet Controller".to_string()))
    );
    // A known vendor's unknown model: the vendor's name alone, as pci.ids answers.
    assert_eq!(names(0x8086, 0xffff), (Some("Intel Corporation".to_string()), None));
    assert_eq!(names(0xfffe, 0x100e), (None, None));
}

#[test]
fn inconsistent_descriptions_are_refused_with_the_place() {
    let host = |devices: &str| {
        format!(
            r#"{{"drivers": [{{"name": "e1000", "ids": ["8086:100e"]}}, {{"name": "vfio-pci", "loaded": false}}],
                "devices": [{{"address": "0000:00:1c.0", "vendor": "0x8086", "device": "0xa110", "class": "0x060400"}},
                            {{"address": "0000:04:00.0", "vendor": "0x8086", "device": "0x10c9", "class": "0x020000",
                              "sriov_totalvfs": 1, "parent": "0000:00:1c.0"}},
                            {devices}]}}"#
        )
    };
    let bad = |devices: &str, want: &[&str]| {
        let e = SimKernel::from_json(&host(devices)).err().unwrap_or_else(|| panic!("accepted {devices}"));
        assert!(want.iter().all(|w| e.contains(w)), "{e}");
    };
    let nic = |extra: &str| {
        format!(r#"{{"address": "0000:03:00.0", "vendor": "0x8086", "device": "0x100e", "class": "0x020000"{extra}}}"#)
    };
    assert!(SimKernel::from_json(&host(&nic(""))).is_ok());
    bad(&nic(r#", "driver": "e1001""#), &["devices[2] (0000:03:00.0).driver", "e1001", "not a loaded driver"]);
    bad(&nic(r#", "driver": "vfio-pci""#), &["devices[2]", "not a loaded driver"]);
    bad(&nic(r#", "parent": "0000:00:1d.0""#), &["devices[2] (0000:03:00.0).parent", "0000:00:1d.0"]);
    bad(&nic(r#", "parent": "0000:04:00.0""#), &[".parent", "not a bridge"]);
    bad(&nic(r#", "physfn": "0000:00:1c.0""#), &[".physfn", "not an SR-IOV PF"]);
    bad(&nic(r#", "physfn": "0000:04:00.0""#), &[".parent", "beside its PF"]);
    bad(&nic(r#", "vendor": "8086""#), &["duplicate field"]);
    bad(&nic(r#", "subsystem_vendor": "8086""#), &["devices[2] (0000:03:00.0).subsystem_vendor", "0x8086"]);
    bad(&nic(r#", "reset_method": ["flr", "warm"]"#), &[".reset_method", "warm"]);
    bad(&nic(r#", "boot_vga": true"#), &[".boot_vga", "VGA"]);
    bad(&nic("").replace("0000:03:00.0", "0000:04:00.0"), &["devices[2] (0000:04:00.0).address", "twice"]);
    bad(&nic("").replace("0000:03:00.0", "0:3:0.0"), &["devices[2].address", "0:3:0.0"]);
    let vf = |a: &str| {
        format!(
            r#"{{"address": "{a}", "vendor": "0x8086", "device": "0x10ca", "class": "0x020000", "physfn": "0000:04:00.0", "parent": "0000:00:1c.0"}}"#
        )
    };
    assert!(SimKernel::from_json(&host(&vf("0000:04:10.0"))).is_ok());
    bad(&format!("{}, {}", vf("0000:04:10.0"), vf("0000:04:10.2")), &["sriov_totalvfs", "2 VFs"]);

    let e = SimKernel::from_json(r#"{"drivers": [{"name": "e1000", "ids": ["8086:100E"]}]}"#).err().unwrap();
    assert!(e.contains("drivers[0] (e1000).ids") && e.contains("8086:100E"), "{e}");
    let e = SimKernel::from_json(r#"{"drivers": [{"name": "nvme", "classes": ["0x01080"]}]}"#).err().unwrap();
    assert!(e.contains("drivers[0] (nvme).classes"), "{e}");
    let e = SimKernel::from_json(r#"{"drivers": [{"name": "a"}, {"name": "a"}]}"#).err().unwrap();
    assert!(e.contains("drivers[1] (a).name") && e.contains("twice"), "{e}");
    let e = SimKernel::from_json(r#"{"devices": [{"address": "0000:00:01.0", "vendor": "0x8086"}]}"#).err().unwrap();
    assert!(e.contains("devices[0] (0000:00:01.0)") && e.contains("missing field `device`"), "{e}");
}

#[test]
fn a_parent_loop_is_refused() {
    let e = SimKernel::from_json(
        r#"{"devices": [
            {"address": "0000:01:00.0", "vendor": "0x8086", "device": "0x244e", "class": "0x060400", "parent": "0000:02:00.0"},
            {"address": "0000:02:00.0", "vendor": "0x8086", "device": "0x244e", "class": "0x060400", "parent": "0000:01:00.0"}]}"#,
    )
    .err()
    .unwrap();
    assert!(e.contains("loop"), "{e}");
}

#[test]
fn the_kernel_is_shareable_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<SimKernel>();
    let k = std::sync::Arc::new(SimKernel::builtin());
    let handles: Vec<_> = [NIC, NIC2]
        .into_iter()
        .map(|a| {
            let k = k.clone();
            std::thread::spawn(move || k.write("bus/pci/drivers/e1000/unbind", a).unwrap())
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(k.writes().len(), 2);
}

#[test]
fn injected_faults_fail_matching_writes_only_as_often_as_asked() {
    let k = SimKernel::builtin();
    let unbind = "bus/pci/drivers/e1000/unbind";
    k.fail_writes(unbind, Some(NIC), libc::EBUSY, 1);
    k.write(unbind, NIC2).expect("another value is not matched");
    assert_eq!(errno(k.write(unbind, &format!("{NIC}\n"))), libc::EBUSY);
    assert_eq!(k.driver_of(NIC).as_deref(), Some("e1000"), "a failed write changes nothing");
    assert!(!k.writes().iter().any(|(_, v)| v.trim() == NIC), "a failed write is not recorded");
    k.write(unbind, NIC).expect("the fault was used up");
    assert_eq!(k.driver_of(NIC), None);
}

#[test]
fn a_bus_reset_is_refused_while_another_function_shares_the_bus() {
    let k = SimKernel::builtin();
    let gpu = "0000:01:00.0"; // reset_method "bus"; its audio function 01:00.1 shares bus 01
    k.write("bus/pci/drivers/nouveau/unbind", gpu).unwrap();
    assert_eq!(errno(k.write(&dev(gpu, "reset"), "1")), libc::ENOTTY);
    assert_eq!(k.reset_count(gpu), 0);
    k.write(&dev("0000:01:00.1", "remove"), "1").unwrap();
    k.write(&dev(gpu, "reset"), "1").expect("alone on its bus, the bus reset works");
    assert_eq!(k.reset_count(gpu), 1);
}
