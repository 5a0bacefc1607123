//! Host use followed through the stack, on the simulated kernel: addresses
//! on bridges, bonds, VLANs and macvlans above a NIC; swap partitions, swap
//! files and device-mapper holders of a disk; the framebuffer console. Each
//! is refused with its chain named, FORCE overrides, and reattach puts a
//! bridge or bond port back (or says why it cannot).

#[macro_use]
mod common;
use nodedev::state::StateStore;
use nodedev::sysfs::sim::SimKernel;
use nodedev::sysfs::Sysfs;
use nodedev::{DetachOptions, Error, Host, HostOptions, PciAddress, PrepareOptions, Stub};
use std::sync::Arc;

const HOST: &str = r#"{
  "drivers": [
    {"name": "pcieport", "ids": ["8086:a110"]},
    {"name": "e1000e", "ids": ["8086:10d3"]},
    {"name": "nvme", "classes": ["0x010802"]},
    {"name": "amdgpu", "ids": ["1002:67df"]},
    {"name": "vfio-pci", "module": "vfio_pci"}
  ],
  "devices": [
    {"address": "0000:03:00.0", "vendor": "0x8086", "device": "0x10d3", "class": "0x020000",
     "driver": "e1000e", "iommu_group": 1, "net": [{"name": "eth0", "up": true, "master": "br0"}]},
    {"address": "0000:03:01.0", "vendor": "0x8086", "device": "0x10d3", "class": "0x020000",
     "driver": "e1000e", "iommu_group": 2, "net": [{"name": "eth1", "up": true}]},
    {"address": "0000:03:02.0", "vendor": "0x8086", "device": "0x10d3", "class": "0x020000",
     "driver": "e1000e", "iommu_group": 3, "net": [{"name": "eth2", "up": true, "master": "bond0"}]},
    {"address": "0000:03:03.0", "vendor": "0x8086", "device": "0x10d3", "class": "0x020000",
     "driver": "e1000e", "iommu_group": 4, "net": [{"name": "eth3", "up": true, "master": "bond0"}]},
    {"address": "0000:03:04.0", "vendor": "0x8086", "device": "0x10d3", "class": "0x020000",
     "driver": "e1000e", "iommu_group": 5, "net": [{"name": "eth4", "up": true}]},
    {"address": "0000:03:05.0", "vendor": "0x8086", "device": "0x10d3", "class": "0x020000",
     "driver": "e1000e", "iommu_group": 6, "net": [{"name": "eth5", "up": true, "master": "br2"}]},
    {"address": "0000:03:06.0", "vendor": "0x8086", "device": "0x10d3", "class": "0x020000",
     "driver": "e1000e", "iommu_group": 7, "net": [{"name": "eth6", "up": false, "master": "br3"}]},

    {"address": "0000:05:00.0", "vendor": "0x144d", "device": "0xa808", "class": "0x010802",
     "driver": "nvme", "iommu_group": 10,
     "block": [{"name": "nvme0n1", "partitions": [{"name": "nvme0n1p1"}, {"name": "nvme0n1p2", "swap": true}]}]},
    {"address": "0000:05:01.0", "vendor": "0x144d", "device": "0xa808", "class": "0x010802",
     "driver": "nvme", "iommu_group": 11,
     "block": [{"name": "nvme1n1", "mounts": ["/data"], "swap_files": ["/data/swapfile"]}]},
    {"address": "0000:05:02.0", "vendor": "0x144d", "device": "0xa808", "class": "0x010802",
     "driver": "nvme", "iommu_group": 12,
     "block": [{"name": "nvme2n1", "partitions": [{"name": "nvme2n1p1"}]}]},
    {"address": "0000:05:03.0", "vendor": "0x144d", "device": "0xa808", "class": "0x010802",
     "driver": "nvme", "iommu_group": 13, "block": [{"name": "nvme3n1"}]},

    {"address": "0000:05:04.0", "vendor": "0x144d", "device": "0xa808", "class": "0x010802",
     "driver": "nvme", "iommu_group": 14, "block": [{"name": "nvme4c4n1"}]},

    {"address": "0000:01:00.0", "vendor": "0x1002", "device": "0x67df", "class": "0x030000",
     "driver": "amdgpu", "iommu_group": 20, "boot_vga": false, "framebuffer": "fb0"},
    {"address": "0000:02:00.0", "vendor": "0x1002", "device": "0x67df", "class": "0x030000",
     "driver": "amdgpu", "iommu_group": 21, "boot_vga": false, "framebuffer": "fb1"}
  ],
  "links": [
    {"name": "br0", "kind": "bridge", "up": true, "addresses": ["10.0.0.2/24"], "routes": ["default", "10.0.0.0/24"]},
    {"name": "eth1.100", "kind": "vlan", "lower": "eth1", "up": true, "addresses": ["10.1.0.2/24"]},
    {"name": "bond0", "kind": "bond", "up": true, "master": "br1"},
    {"name": "br1", "kind": "bridge", "up": true, "addresses": ["10.2.0.2/24", "2001:db8::2/64"], "routes": ["10.9.0.0/16"]},
    {"name": "mv0", "kind": "macvlan", "lower": "eth4", "up": true, "addresses": ["10.4.0.2/24"]},
    {"name": "br2", "kind": "bridge", "up": true},
    {"name": "br3", "kind": "bridge", "up": false, "addresses": ["10.3.0.2/24"]}
  ],
  "stacked": [
    {"name": "dm-0", "over": ["nvme2n1p1"], "mounts": ["/home"]},
    {"name": "dm-1", "over": ["nvme3n1"]},
    {"name": "nvme4n1", "over": ["nvme4c4n1"], "multipath": true, "swap": true}
  ],
  "fbcon": true
}"#;

const BRIDGED: &str = "0000:03:00.0"; // eth0 in br0, which has the address
const VLAN: &str = "0000:03:01.0"; // eth1 under eth1.100, which has the address
const BONDED: &str = "0000:03:02.0"; // eth2 in bond0, in br1, which has the address
const BONDED2: &str = "0000:03:03.0";
const MACVLAN: &str = "0000:03:04.0"; // eth4 under mv0
const QUIET_PORT: &str = "0000:03:05.0"; // eth5 in br2: no address anywhere
const DOWN_BRIDGE: &str = "0000:03:06.0"; // eth6 in br3: br3 has an address but is down
const SWAP_PART: &str = "0000:05:00.0";
const SWAP_FILE: &str = "0000:05:01.0";
const DM_MOUNTED: &str = "0000:05:02.0";
const DM_IDLE: &str = "0000:05:03.0";
const MULTIPATH: &str = "0000:05:04.0"; // the hidden path nvme4c4n1 of head nvme4n1, which is swap
const FBCON_GPU: &str = "0000:01:00.0";
const OTHER_GPU: &str = "0000:02:00.0";

fn a(s: &str) -> PciAddress {
    PciAddress::parse(s).unwrap()
}

fn setup() -> (Arc<SimKernel>, Host) {
    let sim = Arc::new(SimKernel::from_json(HOST).unwrap());
    let host = Host::new(sim.clone(), StateStore::memory(), HostOptions::default());
    (sim, host)
}

const FORCE: DetachOptions = DetachOptions { group: false, force: true };

/// Detach is refused with every `want` in the message, changing nothing;
/// managed prepare is refused the same way; FORCE then detaches.
fn refused_then_forced(sim: &SimKernel, host: &Host, dev: &str, want: &[&str]) {
    let before = sim.driver_of(dev);
    let err = host.detach(&a(dev), Stub::Vfio).unwrap_err();
    let msg = match &err {
        Error::OperationInvalid(m) => m.clone(),
        other => panic!("{dev}: {other:?}"),
    };
    for w in want {
        assert!(msg.contains(w), "{dev}: wanted {w:?} in: {msg}");
    }
    assert!(msg.contains("VIR_NODE_DEVICE_FORCE"), "{msg}");
    assert_eq!(sim.driver_of(dev), before, "a refusal changes nothing");
    assert!(host.state().get(dev).unwrap().is_none(), "no record");
    let err = host.prepare("vm1", &[a(dev)], Stub::Vfio, PrepareOptions { managed: true, force: false }).unwrap_err();
    assert!(err.to_string().contains(want[0]), "{err}");
    host.detach_with(&a(dev), Stub::Vfio, FORCE).unwrap();
    assert_eq!(sim.driver_of(dev).as_deref(), Some("vfio-pci"));
}

#[test]
fn a_bridge_port_is_refused_when_the_bridge_has_the_address_and_default_route() {
    let (sim, host) = setup();
    refused_then_forced(
        &sim,
        &host,
        BRIDGED,
        &[
            "0000:03:00.0 is eth0, a port of bridge br0, which has 10.0.0.2/24 and the default route",
            "ip link set eth0 nomaster",
        ],
    );
    // The port's own connected subnet route is not named twice.
    assert!(!host.host_uses(&a(BRIDGED)).iter().any(|u| u.contains("a route to 10.0.0.0/24")));
}

#[test]
fn a_nic_carrying_a_vlan_with_an_address_is_refused_and_the_vlan_goes_with_it() {
    let (sim, host) = setup();
    refused_then_forced(
        &sim,
        &host,
        VLAN,
        &["0000:03:01.0 is eth1, carrying VLAN eth1.100, which has 10.1.0.2/24", "ip link delete eth1.100"],
    );
    // The kernel deletes a VLAN whose lower device is unregistered.
    assert!(!sim.exists("class/net/eth1.100") && !sim.exists("class/net/eth1"));
    host.reattach(&a(VLAN), None).unwrap();
    assert!(sim.exists("class/net/eth1") && !sim.exists("class/net/eth1.100"));
}

#[test]
fn a_bond_port_inside_a_bridge_is_refused_naming_both() {
    let (sim, host) = setup();
    refused_then_forced(
        &sim,
        &host,
        BONDED,
        &["0000:03:02.0 is eth2, a port of bond bond0, a port of bridge br1, which has 10.2.0.2/24, 2001:db8::2/64 and a route to 10.9.0.0/16"],
    );
}

#[test]
fn a_macvlan_with_an_address_is_a_use() {
    let (sim, host) = setup();
    refused_then_forced(&sim, &host, MACVLAN, &["0000:03:04.0 is eth4, carrying macvlan mv0, which has 10.4.0.2/24"]);
}

#[test]
fn ports_of_bridges_without_addresses_or_down_are_not_uses() {
    let (sim, host) = setup();
    assert_eq!(host.host_uses(&a(QUIET_PORT)), Vec::<String>::new());
    assert_eq!(host.host_uses(&a(DOWN_BRIDGE)), Vec::<String>::new());
    host.detach(&a(QUIET_PORT), Stub::Vfio).unwrap();
    assert_eq!(sim.driver_of(QUIET_PORT).as_deref(), Some("vfio-pci"));
}

#[test]
fn an_active_swap_partition_is_refused_until_swapoff() {
    let (sim, host) = setup();
    let err = host.detach(&a(SWAP_PART), Stub::Vfio).unwrap_err();
    assert!(
        err.to_string().contains("0000:05:00.0 is nvme0n1, whose partition nvme0n1p2 is active swap")
            && err.to_string().contains("swapoff /dev/nvme0n1p2"),
        "{err}"
    );
    sim.swapoff("/dev/nvme0n1p2").unwrap();
    host.detach(&a(SWAP_PART), Stub::Vfio).unwrap();
    assert!(!sim.exists("class/block/nvme0n1"), "the disk left with its driver");
    host.reattach(&a(SWAP_PART), None).unwrap();
    assert_eq!(sim.read("class/block/nvme0n1p2/partition").unwrap(), "2\n");
}

#[test]
fn a_swap_file_on_a_mounted_filesystem_is_named_with_the_mount() {
    let (sim, host) = setup();
    refused_then_forced(
        &sim,
        &host,
        SWAP_FILE,
        &[
            "0000:05:01.0 is nvme1n1, which holds the active swap file /data/swapfile",
            "nvme1n1, which is mounted on /data",
        ],
    );
}

#[test]
fn swap_on_an_nvme_multipath_head_is_found_through_its_hidden_path() {
    let (sim, host) = setup();
    assert_eq!(sim.read("class/block/nvme4c4n1/hidden").unwrap(), "1\n");
    assert!(sim.read_link("class/block/nvme4n1").unwrap().contains("virtual/nvme-subsystem"));
    refused_then_forced(
        &sim,
        &host,
        MULTIPATH,
        &["0000:05:04.0 is nvme4n1 (through nvme4c4n1), which is active swap", "swapoff /dev/nvme4n1"],
    );
}

#[test]
fn a_mounted_device_mapper_holder_is_refused_an_idle_one_is_not() {
    let (sim, host) = setup();
    refused_then_forced(
        &sim,
        &host,
        DM_MOUNTED,
        &[
            "0000:05:02.0 is nvme2n1, whose partition nvme2n1p1 is held by dm-0, which is mounted on /home",
            "umount /home",
        ],
    );
    assert_eq!(sim.list_dir("class/block/dm-1/slaves").unwrap(), ["nvme3n1"]);
    assert_eq!(host.host_uses(&a(DM_IDLE)), Vec::<String>::new());
    host.detach(&a(DM_IDLE), Stub::Vfio).unwrap();
}

#[test]
fn the_framebuffer_console_gpu_is_refused_until_fbcon_is_unbound() {
    let (sim, host) = setup();
    let err = host.detach(&a(FBCON_GPU), Stub::Vfio).unwrap_err();
    assert!(
        err.to_string().contains("0000:01:00.0 is fb0, where the framebuffer console (fbcon) draws")
            && err.to_string().contains("echo 0 > /sys/class/vtconsole/vtcon1/bind"),
        "{err}"
    );
    // fbcon draws on the first framebuffer only.
    assert_eq!(host.host_uses(&a(OTHER_GPU)), Vec::<String>::new());
    sim.write("class/vtconsole/vtcon1/bind", "0").unwrap();
    assert_eq!(sim.read("class/vtconsole/vtcon0/bind").unwrap(), "1\n");
    host.detach(&a(FBCON_GPU), Stub::Vfio).unwrap();
}

#[test]
fn reattach_after_a_forced_detach_puts_a_bridge_port_back() {
    let (sim, host) = setup();
    assert_eq!(sim.list_dir("class/net/br0/brif").unwrap(), ["eth0"]);
    host.detach_with(&a(BRIDGED), Stub::Vfio, FORCE).unwrap();
    let rec = host.state().get(BRIDGED).unwrap().unwrap();
    assert_eq!(
        (rec.ports[0].interface.as_str(), rec.ports[0].master.as_str(), rec.ports[0].kind.as_str()),
        ("eth0", "br0", "bridge")
    );
    // As in the kernel: the port left the bridge with its driver.
    assert_eq!(sim.list_dir("class/net/br0/brif").unwrap(), Vec::<String>::new());
    host.reattach(&a(BRIDGED), None).unwrap();
    assert_eq!(sim.list_dir("class/net/br0/brif").unwrap(), ["eth0"]);
    assert!(sim.read_link("class/net/eth0/master").unwrap().ends_with("/br0"));
    assert_eq!(sim.read("class/net/eth0/operstate").unwrap(), "up\n", "it was up before");
    assert!(host.take_notes(&a(BRIDGED)).is_empty());
    assert!(host.state().get(BRIDGED).unwrap().is_none());
    // And it is a use again, so a second detach is refused.
    assert!(host.detach(&a(BRIDGED), Stub::Vfio).is_err());
}

#[test]
fn reattach_puts_a_bond_port_back_and_release_does_too() {
    let (sim, host) = setup();
    assert_eq!(sim.read("class/net/bond0/bonding/slaves").unwrap(), "eth2 eth3\n");
    host.detach_with(&a(BONDED), Stub::Vfio, FORCE).unwrap();
    assert_eq!(sim.read("class/net/bond0/bonding/slaves").unwrap(), "eth3\n");
    host.reattach(&a(BONDED), None).unwrap();
    assert_eq!(sim.read("class/net/bond0/bonding/slaves").unwrap(), "eth2 eth3\n");
    // Managed prepare and release go the same way.
    host.prepare("vm1", &[a(BONDED2)], Stub::Vfio, PrepareOptions { managed: true, force: true }).unwrap();
    assert_eq!(sim.read("class/net/bond0/bonding/slaves").unwrap(), "eth2\n");
    host.release("vm1", None).unwrap();
    assert_eq!(sim.read("class/net/bond0/bonding/slaves").unwrap(), "eth2 eth3\n");
    // A bond takes only a port that is down, and brings it up.
    assert_eq!(sim.set_master("eth4", Some("bond0")).unwrap_err().raw_os_error(), Some(libc::EPERM));
    sim.set_link_up("eth4", false).unwrap();
    sim.write("class/net/bond0/bonding/slaves", "+eth4").unwrap();
    assert_eq!(sim.read("class/net/eth4/operstate").unwrap(), "up\n");
    sim.write("class/net/bond0/bonding/slaves", "-eth4").unwrap();
    assert_eq!(sim.read("class/net/bond0/bonding/slaves").unwrap(), "eth2 eth3\n");
}

#[test]
fn a_port_that_cannot_rejoin_is_reported_and_reattach_still_succeeds() {
    let (sim, host) = setup();
    host.detach(&a(QUIET_PORT), Stub::Vfio).unwrap();
    sim.delete_link("br2").unwrap();
    host.reattach(&a(QUIET_PORT), None).unwrap();
    assert_eq!(sim.driver_of(QUIET_PORT).as_deref(), Some("e1000e"));
    // Seen in the recovery report (virNodeDeviceRecover, nodedev recover) until taken...
    let report = host.recover().unwrap();
    assert_eq!(report.len(), 1, "{report:?}");
    assert!(report[0].resolved && report[0].step.is_none());
    assert_eq!(report[0].address, QUIET_PORT);
    assert!(
        report[0].outcome.contains("eth5 (was eth5) could not rejoin bridge br2: bridge br2 no longer exists"),
        "{report:?}"
    );
    assert!(report[0].outcome.contains("ip link set eth5 master br2"), "{report:?}");
    // ... and the CLI takes the device's notes right after the command.
    host.detach(&a(QUIET_PORT), Stub::Vfio).unwrap();
    host.reattach(&a(QUIET_PORT), None).unwrap();
    assert!(host.take_notes(&a(QUIET_PORT)).is_empty(), "nothing recorded: eth5 was no port any more");
}

#[test]
fn a_master_gone_is_reported_and_the_kernel_rules_for_masters_hold() {
    let (sim, host) = setup();
    host.detach_with(&a(BONDED), Stub::Vfio, FORCE).unwrap();
    sim.delete_link("bond0").unwrap();
    assert!(!sim.exists("class/net/bond0") && sim.list_dir("class/net/br1/brif").unwrap().is_empty());
    host.reattach(&a(BONDED), None).unwrap();
    let notes = host.take_notes(&a(BONDED));
    assert!(
        notes.len() == 1 && notes[0].contains("could not rejoin bond bond0: bond bond0 no longer exists"),
        "{notes:?}"
    );
    // What the kernel refuses: a master that is no bridge or bond, an up
    // port for a bond (which then brings it up itself), a loop.
    assert_eq!(sim.set_master("eth2", Some("eth1.100")).unwrap_err().raw_os_error(), Some(libc::EOPNOTSUPP));
    assert_eq!(sim.set_master("eth4", Some("nonesuch")).unwrap_err().raw_os_error(), Some(libc::ENODEV));
    sim.set_master("eth2", Some("br2")).unwrap();
    assert_eq!(sim.set_master("br2", Some("br2")).unwrap_err().raw_os_error(), Some(libc::EBUSY));
    assert_eq!(sim.list_dir("class/net/br2/brif").unwrap(), ["eth2", "eth5"]);
    assert!(sim.read_link("class/net/eth2/brport/bridge").unwrap().ends_with("virtual/net/br2"));
    assert_eq!(sim.read("class/net/br2/uevent").unwrap(), "DEVTYPE=bridge\nINTERFACE=br2\n");
    assert!(sim.exists("class/net/eth2/upper_br2") && sim.exists("class/net/br2/lower_eth2"));
    assert!(sim.exists("class/net/eth1/upper_eth1.100") && sim.exists("class/net/eth1.100/lower_eth1"));
}

#[test]
fn cycles_in_upper_links_end() {
    // Two bridges each the master of the other: no real kernel allows it,
    // but a walk must still end.
    let sim = Arc::new(
        SimKernel::from_json(
            r#"{"drivers": [{"name": "e1000e", "ids": ["8086:10d3"]}],
                "devices": [{"address": "0000:03:00.0", "vendor": "0x8086", "device": "0x10d3", "class": "0x020000",
                             "driver": "e1000e", "net": [{"name": "eth0", "up": true, "master": "brA"}]}],
                "links": [{"name": "brA", "kind": "bridge", "up": true, "master": "brB"},
                          {"name": "brB", "kind": "bridge", "up": true, "master": "brA", "addresses": ["10.0.0.1/8"]}]}"#,
        )
        .unwrap(),
    );
    let host = Host::new(sim.clone(), StateStore::memory(), HostOptions::default());
    let uses = host.host_uses(&a("0000:03:00.0"));
    assert_eq!(uses, ["0000:03:00.0 is eth0, a port of bridge brA, a port of bridge brB, which has 10.0.0.1/8"]);
}

#[test]
fn an_old_record_without_ports_still_parses() {
    let old = r#"{"address": "0000:03:00.0", "original_driver": "e1000e", "stub": "vfio-pci", "owner": null,
                  "managed": false, "step": "detached", "updated": 1}"#;
    let rec: nodedev::state::Record = serde_json::from_str(old).unwrap();
    assert!(rec.ports.is_empty());
    // And a record without ports is written as before.
    assert!(!serde_json::to_string(&rec).unwrap().contains("ports"));
}

/// The simulated kernel, with what a live host adds: something (a network
/// manager) brings every interface up as soon as the driver registers it,
/// and optionally the kernel refuses every master change.
struct Busy {
    sim: Arc<SimKernel>,
    refuse_master: bool,
    /// The driver registers no interface (a firmware that failed to load).
    no_interfaces: bool,
}

impl Busy {
    fn bring_up(&self) {
        for iface in self.sim.list_dir("class/net").unwrap_or_default() {
            if iface.starts_with("eth") {
                let _ = self.sim.set_link_up(&iface, true);
            }
        }
    }
}

impl Sysfs for Busy {
    fn write(&self, p: &str, v: &str) -> std::io::Result<()> {
        self.sim.write(p, v)?;
        self.bring_up();
        Ok(())
    }
    fn write_bounded(&self, p: &str, v: &str, limit: std::time::Duration) -> std::io::Result<()> {
        self.sim.write_bounded(p, v, limit)?;
        self.bring_up();
        Ok(())
    }
    fn list_dir(&self, p: &str) -> std::io::Result<Vec<String>> {
        if self.no_interfaces && p.ends_with("/net") {
            return Err(std::io::Error::from_raw_os_error(libc::ENOENT));
        }
        self.sim.list_dir(p)
    }
    fn set_master(&self, i: &str, m: Option<&str>) -> std::io::Result<()> {
        if self.refuse_master {
            return Err(std::io::Error::from_raw_os_error(libc::EBUSY));
        }
        self.sim.set_master(i, m)
    }
    forward_sysfs!(sim; read_bytes, net_features, read, vfio_holders, read_link, exists, load_module, matching_aliases, vfio_aliases, net_addresses, net_routes, mounts, swaps, set_link_up, pci_names, uevents);
}

#[test]
fn a_bond_port_already_up_is_taken_down_to_rejoin_and_a_kernel_refusal_is_reported() {
    let sim = Arc::new(SimKernel::from_json(HOST).unwrap());
    let host = Host::new(
        Arc::new(Busy { sim: sim.clone(), refuse_master: false, no_interfaces: false }),
        StateStore::memory(),
        HostOptions::default(),
    );
    host.detach_with(&a(BONDED), Stub::Vfio, FORCE).unwrap();
    host.reattach(&a(BONDED), None).unwrap();
    assert!(host.take_notes(&a(BONDED)).is_empty());
    assert_eq!(sim.read("class/net/bond0/bonding/slaves").unwrap(), "eth2 eth3\n");

    let host = Host::new(
        Arc::new(Busy { sim: sim.clone(), refuse_master: true, no_interfaces: false }),
        StateStore::memory(),
        HostOptions::default(),
    );
    host.detach_with(&a(BRIDGED), Stub::Vfio, FORCE).unwrap();
    host.reattach(&a(BRIDGED), None).unwrap();
    assert_eq!(sim.driver_of(BRIDGED).as_deref(), Some("e1000e"));
    let notes = host.take_notes(&a(BRIDGED));
    assert!(
        notes.len() == 1
            && notes[0]
                .contains("eth0 (was eth0) could not rejoin bridge br0: the kernel refused: Device or resource busy"),
        "{notes:?}"
    );
}

#[test]
fn no_interface_after_reattach_is_reported_within_a_bound() {
    let sim = Arc::new(SimKernel::from_json(HOST).unwrap());
    let host = Host::new(sim.clone(), StateStore::memory(), HostOptions::default());
    host.detach_with(&a(BRIDGED), Stub::Vfio, FORCE).unwrap();
    // The same state seen through a kernel whose driver registers nothing.
    let blind = Host::new(
        Arc::new(Busy { sim: sim.clone(), refuse_master: false, no_interfaces: true }),
        host.state().clone(),
        HostOptions::default(),
    );
    let start = std::time::Instant::now();
    blind.reattach(&a(BRIDGED), None).unwrap();
    let waited = start.elapsed();
    assert!(waited >= std::time::Duration::from_secs(4) && waited < std::time::Duration::from_secs(8), "{waited:?}");
    let notes = blind.take_notes(&a(BRIDGED));
    assert!(
        notes.len() == 1
            && notes[0].contains("eth0 was a port of bridge br0, but 0000:03:00.0 has no network interface"),
        "{notes:?}"
    );
    assert_eq!(sim.driver_of(BRIDGED).as_deref(), Some("e1000e"));
}
