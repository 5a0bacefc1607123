//! The host description a simulated kernel starts from (`test:///PATH.json`).
//!
//! One JSON object; unknown keys anywhere are errors (they are typos).
//!
//! ```json
//! {
//!   "driver_override": true,
//!   "iommu": true,
//!   "drivers": [
//!     {"name": "pcieport", "ids": ["8086:a110"]},
//!     {"name": "e1000e", "module": "e1000e", "loaded": true, "available": true,
//!      "ids": ["8086:10d3"], "classes": []},
//!     {"name": "vfio-pci", "module": "vfio_pci", "loaded": false}
//!   ],
//!   "devices": [
//!     {"address": "0000:00:1c.0", "vendor": "0x8086", "device": "0xa110", "class": "0x060400",
//!      "driver": "pcieport", "iommu_group": 4},
//!     {"address": "0000:03:00.0", "vendor": "0x8086", "device": "0x10d3",
//!      "subsystem_vendor": "0x8086", "subsystem_device": "0xa01f", "class": "0x020000",
//!      "vendor_name": "Intel Corporation", "product_name": "82574L Gigabit Network Connection",
//!      "driver": "e1000e", "iommu_group": 14, "parent": "0000:00:1c.0", "numa_node": 0,
//!      "reset_method": ["flr", "bus"], "boot_vga": false, "physfn": null, "sriov_totalvfs": 0,
//!      "net": [{"name": "eth0", "up": true, "addresses": ["192.0.2.10/24"]}],
//!      "block": [{"name": "nvme0n1", "mounts": ["/"]}]}
//!   ]
//! }
//! ```
//!
//! Top level (all optional):
//! - `driver_override` (default true): the kernel has `devices/ADDR/driver_override`
//!   (Linux >= 3.16). false models an older kernel: only `new_id`/`remove_id`.
//! - `iommu` (default true): false removes `kernel/iommu_groups` and every
//!   `iommu_group` link; devices' `iommu_group` values are then ignored.
//! - `drivers`: PCI drivers in probe priority order (first match wins).
//! - `devices`: PCI functions, in any order.
//! - `vfio_holders`: processes holding devices through VFIO, as
//!   `{"pid": 4242, "comm": "qemu-system-x86", "device": "0000:04:10.0",
//!   "holds": "device", "hidden": false}`. `holds`: `group` (an fd on
//!   /dev/vfio/N: does not keep an unbind waiting), `cdev` or `device` (the
//!   device open: an unbind or remove of it waits until the process lets
//!   go, see `SimKernel::release_holder`). `hidden` (default false): the
//!   process is not in the process table (another pid namespace). The
//!   device must be on a VFIO driver.
//!
//! A driver:
//! - `name` (required): the driver name under `bus/pci/drivers/`.
//! - `module` (default: the name with '-' as '_'): what `load_module` loads it by;
//!   '-' and '_' are the same. Several drivers may share a module.
//! - `loaded` (default true): registered at start. `available` (default true):
//!   an unloaded driver's module can be loaded.
//! - `ids`: `"vvvv:dddd"` (lower-case hex, no 0x) the driver claims.
//! - `classes`: class prefixes it claims, `"0xCC"`, `"0xCCSS"` or `"0xCCSSPP"`
//!   (`"0x0604"` matches class 0x060400). Stub drivers have neither.
//! - `vfio_aliases`: for vfio-pci and its variant drivers, the
//!   `alias vfio_pci:...` patterns of modules.alias (id table entries marked
//!   PCI_DRIVER_OVERRIDE_DEVICE_VFIO), e.g.
//!   `"vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i*"`: what `vfio_aliases`
//!   answers, in driver then list order. Such entries never bind a device
//!   by themselves (the kernel needs a driver_override naming the driver).
//!
//! A device:
//! - `address` (required): `DDDD:BB:SS.F` as the kernel spells it (lower-case).
//! - `vendor`, `device` (required, `"0x8086"`), `class` (required, `"0x020000"`),
//!   `subsystem_vendor`, `subsystem_device` (default `"0x0000"`).
//! - `vendor_name`, `product_name`: what `pci_names` answers (like pci.ids).
//! - `driver`: a loaded driver bound at start; null/absent: unbound.
//! - `iommu_group`: group number; devices sharing one are one group.
//! - `parent`: the upstream bridge's address (a device of class 0x0604xx or
//!   0x0607xx); null/absent for a device on a root bus.
//! - `numa_node` (default -1), `reset_method` (default none: no `reset` file;
//!   names from flr, af_flr, pm, bus, cxl_bus, acpi, device_specific),
//!   `boot_vga` (default false; true only for class 0x0300xx, the only
//!   devices with a `boot_vga` file).
//! - `sriov_totalvfs` (default 0): > 0 makes the device an SR-IOV PF.
//! - `physfn`: for a VF, its PF. A VF has the same `parent` as its PF. The
//!   PF's `virtfnN` links and `sriov_numvfs` follow from its VFs (virtfn0 is
//!   the lowest address); VFs created later by writing `sriov_numvfs` copy the
//!   last listed VF and continue its address stride.
//! - `net`: network interfaces (`name`, `up` default false, `addresses` with
//!   their prefix like "10.0.0.2/24", `routes` like "default" or
//!   "10.1.0.0/16", `master`: a bridge or bond of `links`, `mac`, `speed`
//!   in Mb/s, `features`: ethtool's by libvirt's names); they appear as
//!   `devices/ADDR/net/NAME` and `class/net/NAME`.
//! - `block`: disks (`name`, `mounts`, `swap`: the disk itself is active
//!   swap, `swap_files`: paths of active swap files on its filesystem,
//!   `partitions`: the same fields, no deeper), as `devices/ADDR/block/NAME`
//!   and `class/block/NAME`.
//! - `framebuffer`: `"fb0"`: the driver registered this framebuffer
//!   (`class/graphics/fb0`).
//! - `pcie`: the function is PCI Express (`PcieSpec`: `integrated`, `port`,
//!   `max_speed`, `max_width`, `speed`, `width`): its `config` space has a
//!   PCIe capability and the `max_link_*`/`current_link_*` files exist.
//!   Every function has a 256-byte `config` (ids, class, header type 1 for a
//!   PCI bridge and 2 for a CardBus bridge).
//! - `vpd`: Vital Product Data (`VpdSpec`: `name`, `readonly`, `readwrite`
//!   as `["SN", "value"]` pairs), encoded into the `vpd` file.
//! - `mdev`: the device is a mediated-device parent while bound to
//!   `driver` (default: its `driver` here): `{"capacity": 8, "types":
//!   [{"id": "i915-GVTg_V5_4", "name": "GVTg_V5_4", "description": "...",
//!   "device_api": "vfio-pci", "cost": 2}]}`; each instance of a type takes
//!   `cost` (default 1) units of the `capacity` the types share (see
//!   `sim/mdev.rs` for the kernel's rules).
//!
//! A device's interfaces, disks and framebuffer exist while it is bound to a
//! host driver (not a stub). When it leaves that driver, its interfaces leave
//! their master, the VLANs and macvlans over them are deleted and their
//! addresses are gone, as in the kernel; they come back unconfigured.
//!
//! Also at the top level (optional):
//! - `links`: network devices that are no PCI function: `name`, `kind`
//!   (bridge, bond, team, vlan, macvlan, ipvlan), `lower` (vlan, macvlan,
//!   ipvlan: the interface they sit on), `master`, `up`, `addresses`, `routes`.
//! - `stacked`: device-mapper or md devices (`name` like "dm-0", `over`: the
//!   disks or partitions they hold, `mounts`, `swap`, `swap_files`), or with
//!   `multipath: true` an NVMe multipath head (`nvme0n1` over the hidden path
//!   device `nvme0c0n1` of the PCI function, as kernels with
//!   CONFIG_NVME_MULTIPATH show every NVMe namespace).
//! - `dmi`: the DMI strings of `devices/virtual/dmi/id` (`sys_vendor`,
//!   `product_name`, `product_version`, `product_serial`, `product_uuid`,
//!   `bios_vendor`, `bios_version`, `bios_date`); absent: no DMI.
//! - `unprivileged` (default false): files answer as to a user without root.
//! - `fbcon` (default false): the framebuffer console is bound
//!   (`class/vtconsole/vtcon1`); it draws on the lowest-numbered framebuffer.
//!
//! Addresses, routes, mounts and swap are not sysfs data; the simulated
//! kernel answers them through the `Sysfs` methods that read them on a real
//! host (`/proc`, getifaddrs).

use serde::{Deserialize, Serialize};
use serde_json::Value;

fn yes() -> bool {
    true
}

fn no_numa_node() -> i32 {
    -1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    #[serde(default = "yes")]
    pub driver_override: bool,
    #[serde(default = "yes")]
    pub iommu: bool,
    #[serde(default)]
    pub drivers: Vec<DriverSpec>,
    #[serde(default)]
    pub devices: Vec<DeviceSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vfio_holders: Vec<HolderSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacked: Vec<StackedSpec>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fbcon: bool,
    /// The machine's DMI/SMBIOS strings (`devices/virtual/dmi/id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dmi: Option<DmiSpec>,
    /// Files answer as to a user without root: `config` past its first 64
    /// bytes, `vpd` and the DMI serial numbers and UUID are not readable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unprivileged: bool,
}

/// DMI strings, each absent when the firmware gives none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DmiSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sys_vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bios_vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bios_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bios_date: Option<String>,
}

/// A PCI Express function's link, as its PCIe capability tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcieSpec {
    /// A root-complex integrated endpoint: PCI Express without a link.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub integrated: bool,
    /// Port number (Link Capabilities bits 31:24).
    #[serde(default)]
    pub port: u8,
    /// Link speeds in GT/s as libvirt writes them: "2.5", "5", "8", "16", "32", "64".
    #[serde(default)]
    pub max_speed: Option<String>,
    #[serde(default)]
    pub max_width: u8,
    #[serde(default)]
    pub speed: Option<String>,
    #[serde(default)]
    pub width: u8,
}

/// Vital Product Data: the identifier string and the keyword fields of the
/// read-only (VPD-R) and read-write (VPD-W) sections, in order, as
/// `["PN", "value"]` pairs. The simulated kernel encodes them with the
/// checksum a card carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpdSpec {
    pub name: String,
    #[serde(default)]
    pub readonly: Vec<(String, String)>,
    #[serde(default)]
    pub readwrite: Vec<(String, String)>,
}

/// A process holding a device through VFIO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolderSpec {
    pub pid: u32,
    pub comm: String,
    pub device: String,
    pub holds: crate::sysfs::HoldKind,
    #[serde(default)]
    pub hidden: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriverSpec {
    pub name: String,
    #[serde(default)]
    pub module: Option<String>,
    #[serde(default = "yes")]
    pub loaded: bool,
    #[serde(default = "yes")]
    pub available: bool,
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub classes: Vec<String>,
    /// The `alias vfio_pci:...` lines depmod writes for the driver's module
    /// (a VFIO variant driver's id table, vfio-pci's catch-all), as modules.alias spells them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vfio_aliases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    pub address: String,
    pub vendor: String,
    pub device: String,
    #[serde(default)]
    pub subsystem_vendor: Option<String>,
    #[serde(default)]
    pub subsystem_device: Option<String>,
    pub class: String,
    #[serde(default)]
    pub vendor_name: Option<String>,
    #[serde(default)]
    pub product_name: Option<String>,
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub iommu_group: Option<u32>,
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default = "no_numa_node")]
    pub numa_node: i32,
    #[serde(default)]
    pub reset_method: Vec<String>,
    #[serde(default)]
    pub boot_vga: Option<bool>,
    #[serde(default)]
    pub physfn: Option<String>,
    #[serde(default)]
    pub sriov_totalvfs: u16,
    #[serde(default)]
    pub net: Vec<NetSpec>,
    #[serde(default)]
    pub block: Vec<BlockSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framebuffer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie: Option<PcieSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpd: Option<VpdSpec>,
    /// The device can be a mediated-device parent (`mdev_supported_types`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mdev: Option<MdevParentSpec>,
}

/// A mediated-device parent: its driver registers it with the mdev core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MdevParentSpec {
    /// The registering driver (default: the device's driver in the description).
    #[serde(default)]
    pub driver: Option<String>,
    /// Units of the resource pool the types share.
    pub capacity: u32,
    pub types: Vec<MdevTypeSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MdevTypeSpec {
    /// Directory name under `mdev_supported_types` (`i915-GVTg_V5_4`).
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "vfio_pci_api")]
    pub device_api: String,
    /// Pool units one instance takes (default 1).
    #[serde(default = "one")]
    pub cost: u32,
}

fn vfio_pci_api() -> String {
    "vfio-pci".to_string()
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSpec {
    pub name: String,
    #[serde(default)]
    pub up: bool,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    /// MAC address (`address`); default 52:54:00 then the function's bus,
    /// slot and function and the interface's index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Link speed in Mb/s while up (`speed`); default 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<u32>,
    /// ethtool offload features by libvirt's names (`rx`, `tso`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockSpec {
    pub name: String,
    #[serde(default)]
    pub mounts: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub swap: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub swap_files: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<BlockSpec>,
}

/// A network device that is no PCI function (bridge, bond, VLAN, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub lower: Option<String>,
    #[serde(default)]
    pub master: Option<String>,
    #[serde(default)]
    pub up: bool,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub routes: Vec<String>,
}

/// A device-mapper or md device over disks or partitions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackedSpec {
    pub name: String,
    pub over: Vec<String>,
    /// An NVMe multipath head: `over` are its hidden path devices
    /// (`nvme0c0n1`), linked from its `multipath/`, not from `holders/`.
    #[serde(default)]
    pub multipath: bool,
    #[serde(default)]
    pub mounts: Vec<String>,
    #[serde(default)]
    pub swap: bool,
    #[serde(default)]
    pub swap_files: Vec<String>,
}

impl Default for HostSpec {
    fn default() -> Self {
        HostSpec {
            driver_override: true,
            iommu: true,
            drivers: Vec::new(),
            devices: Vec::new(),
            vfio_holders: Vec::new(),
            links: Vec::new(),
            stacked: Vec::new(),
            fbcon: false,
            dmi: None,
            unprivileged: false,
        }
    }
}

impl HostSpec {
    /// Parse a description. A wrong or missing field is reported with the
    /// list entry it is in (`devices[3] (0000:03:01.0): missing field ...`).
    pub fn from_json(text: &str) -> Result<HostSpec, String> {
        match serde_json::from_str::<HostSpec>(text) {
            Ok(spec) => Ok(spec),
            Err(e) if e.is_data() => Err(locate(text, &e)),
            Err(e) => Err(format!("not valid JSON: {e}")),
        }
    }
}

/// serde_json names the line but not the entry; find the entry by
/// deserializing each list element on its own.
fn locate(text: &str, err: &serde_json::Error) -> String {
    let at = format!("line {} column {}", err.line(), err.column());
    let Ok(Value::Object(top)) = serde_json::from_str::<Value>(text) else {
        return format!("{err}");
    };
    let label = |v: &Value, key: &str| match v.get(key).and_then(Value::as_str) {
        Some(s) => format!(" ({s})"),
        None => String::new(),
    };
    if let Some(Value::Array(items)) = top.get("drivers") {
        for (i, item) in items.iter().enumerate() {
            if let Err(e) = DriverSpec::deserialize(item) {
                return format!("drivers[{i}]{}: {e} (at {at})", label(item, "name"));
            }
        }
    }
    if let Some(Value::Array(items)) = top.get("devices") {
        for (i, item) in items.iter().enumerate() {
            let Err(e) = DeviceSpec::deserialize(item) else { continue };
            let mut place = format!("devices[{i}]{}", label(item, "address"));
            for (key, name) in [("net", "name"), ("block", "name")] {
                if let Some(Value::Array(subs)) = item.get(key) {
                    let bad = subs.iter().enumerate().find_map(|(j, s)| {
                        let failed = match key {
                            "net" => NetSpec::deserialize(s).is_err(),
                            _ => BlockSpec::deserialize(s).is_err(),
                        };
                        failed.then(|| format!(".{key}[{j}]{}", label(s, name)))
                    });
                    if let Some(sub) = bad {
                        place.push_str(&sub);
                    }
                }
            }
            return format!("{place}: {e} (at {at})");
        }
    }
    format!("{err}")
}

/// `"0x8086"` -> 0x8086: "0x" then 1 to `digits` hex digits.
pub(super) fn hex_field(value: &str, digits: usize) -> Option<u32> {
    let h = value.strip_prefix("0x")?;
    if h.is_empty() || h.len() > digits || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(h, 16).ok()
}

/// `"8086:10d3"` -> (0x8086, 0x10d3); exactly the spelling of modules.alias.
pub(super) fn id_pair(value: &str) -> Option<(u16, u16)> {
    let (v, d) = value.split_once(':')?;
    let ok = |s: &str| s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !ok(v) || !ok(d) {
        return None;
    }
    Some((u16::from_str_radix(v, 16).ok()?, u16::from_str_radix(d, 16).ok()?))
}

/// `"0x0604"` -> (0x060400, 0xffff00): a class prefix as value and mask.
pub(super) fn class_prefix(value: &str) -> Option<(u32, u32)> {
    let h = value.strip_prefix("0x")?;
    if !matches!(h.len(), 2 | 4 | 6) || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let shift = 4 * (6 - h.len() as u32);
    let v = u32::from_str_radix(h, 16).ok()?;
    Some((v << shift, (0xffffff >> shift) << shift))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_is_a_valid_host() {
        let doc: String = include_str!("spec.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```json"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        let spec = HostSpec::from_json(&doc).unwrap();
        assert_eq!(spec.devices.len(), 2);
        crate::sysfs::sim::SimKernel::from_spec(spec).unwrap();
    }

    #[test]
    fn defaults_fill_optional_fields() {
        let s = HostSpec::from_json(
            r#"{"drivers": [{"name": "vfio-pci"}],
                "devices": [{"address": "0000:00:02.0", "vendor": "0x8086", "device": "0x5912", "class": "0x030000"}]}"#,
        )
        .unwrap();
        assert!(s.driver_override && s.iommu);
        let d = &s.drivers[0];
        assert!(d.loaded && d.available && d.module.is_none() && d.ids.is_empty());
        let dev = &s.devices[0];
        assert_eq!((dev.numa_node, dev.sriov_totalvfs, dev.driver.as_deref()), (-1, 0, None));
    }

    #[test]
    fn errors_name_the_entry_and_the_field() {
        let e = HostSpec::from_json(
            r#"{"devices": [{"address": "0000:00:02.0", "vendor": "0x8086", "device": "0x5912", "class": "0x030000"},
                            {"address": "0000:00:03.0", "vendor": "0x8086", "class": "0x030000"}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("devices[1] (0000:00:03.0)") && e.contains("missing field `device`"), "{e}");

        let e = HostSpec::from_json(r#"{"drivers": [{"name": "x", "loadded": true}]}"#).unwrap_err();
        assert!(e.contains("drivers[0] (x)") && e.contains("unknown field `loadded`"), "{e}");

        let e = HostSpec::from_json(
            r#"{"devices": [{"address": "0000:00:02.0", "vendor": "0x8086", "device": "0x5912", "class": "0x030000",
                             "net": [{"name": "eth0", "up": "yes"}]}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("devices[0] (0000:00:02.0).net[0] (eth0)") && e.contains("invalid type"), "{e}");

        let e = HostSpec::from_json(r#"{"iomu": false}"#).unwrap_err();
        assert!(e.contains("unknown field `iomu`"), "{e}");
        let e = HostSpec::from_json(r#"{"devices": [}"#).unwrap_err();
        assert!(e.starts_with("not valid JSON") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn field_spellings() {
        assert_eq!(hex_field("0x8086", 4), Some(0x8086));
        assert_eq!(hex_field("8086", 4), None);
        assert_eq!(hex_field("0x18086", 4), None);
        assert_eq!(id_pair("8086:10d3"), Some((0x8086, 0x10d3)));
        assert_eq!(id_pair("8086:10D3"), None);
        assert_eq!(id_pair("0x8086:10d3"), None);
        assert_eq!(class_prefix("0x0604"), Some((0x060400, 0xffff00)));
        assert_eq!(class_prefix("0x010802"), Some((0x010802, 0xffffff)));
        assert_eq!(class_prefix("0x01"), Some((0x010000, 0xff0000)));
        assert_eq!(class_prefix("0x010"), None);
    }
}
