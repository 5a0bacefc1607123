//! libvirt's device tree: the `computer` root, the PCI functions, and a
//! `net_IFNAME_MAC` device for each network interface of a PCI function,
//! named, parented and listed as libvirt 9.x's udev driver does
//! (src/node_device/node_device_udev.c).
//!
//! Nothing is read for a device until its XML or a capability filter asks:
//! a listing reads `class/net` once and, per interface, its link and address.
//! The methods serve the C API and the CLI; they are outside the documented
//! Rust API (`#[doc(hidden)]`) until that API takes the tree in.

use super::pcie::{Bridge, PcieInfo};
use super::vpd::{self, Vpd};
use super::{dev_path, Host};
use crate::address::PciAddress;
use crate::error::{Error, Result};
use std::sync::OnceLock;

/// One node device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// The root of the tree, "computer".
    Computer,
    Pci(PciAddress),
    Net(NetIface),
    /// A mediated device, live or defined (`mdev_UUID_PARENT`).
    Mdev(super::MdevId),
}

/// A network interface of a PCI function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetIface {
    /// libvirt's name: `net_` IFNAME `_` MAC, every character that is not a
    /// letter or digit made '_'.
    pub name: String,
    pub iface: String,
    /// MAC address as the kernel prints it (`address`); None when unreadable.
    pub mac: Option<String>,
    /// The PCI function closest above the interface (libvirt's parent).
    pub parent: PciAddress,
    /// `/sys/devices/.../net/IFNAME`.
    pub sysfs_path: String,
}

/// The capabilities a list filter or virNodeNumOfDevices may name, that
/// select something here (libvirt's virNodeDevCapType names).
pub const CAP_NAMES: [&str; 6] = ["system", "pci", "net", "vpd", "mdev_types", "mdev"];

/// `net_eth0_52_54_00_12_34_56`: libvirt's udevGenerateDeviceName, which
/// replaces every byte that is not an ASCII letter or digit (so each byte
/// of a UTF-8 character) by '_'.
pub fn net_node_name(iface: &str, mac: Option<&str>) -> String {
    let mut raw = format!("net_{iface}");
    if let Some(m) = mac {
        raw.push('_');
        raw.push_str(m);
    }
    raw.bytes().map(|b| if b.is_ascii_alphanumeric() { b as char } else { '_' }).collect()
}

/// The PCI function a lookup name means: libvirt's name exactly as libvirt
/// forms it (`pci_0000_03_00_1`) or the kernel's (`0000:03:00.1`). Another
/// spelling of the same address (upper-case hex, an 8-digit domain) is no
/// device's name, as in libvirt, which compares names.
pub fn pci_by_name(name: &str) -> Option<PciAddress> {
    PciAddress::parse(name).ok().filter(|a| a.node_name() == name || a.to_string() == name)
}

impl Node {
    pub fn name(&self) -> String {
        match self {
            Node::Computer => "computer".to_string(),
            Node::Pci(a) => a.node_name(),
            Node::Net(n) => n.name.clone(),
            Node::Mdev(id) => id.node_name(),
        }
    }

    pub fn mdev(&self) -> Option<&super::MdevId> {
        match self {
            Node::Mdev(id) => Some(id),
            _ => None,
        }
    }

    pub fn pci(&self) -> Option<&PciAddress> {
        match self {
            Node::Pci(a) => Some(a),
            _ => None,
        }
    }
}

/// The `<capability type='system'>` facts: DMI strings where readable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemInfo {
    pub product: Option<String>,
    pub hardware_vendor: Option<String>,
    pub hardware_version: Option<String>,
    pub hardware_serial: Option<String>,
    /// The host UUID: DMI's product_uuid, or (unreadable or not a UUID, as
    /// for a user without root) one made up once per process, as libvirtd
    /// makes one at start.
    pub uuid: String,
    pub firmware_vendor: Option<String>,
    pub firmware_version: Option<String>,
    pub firmware_release_date: Option<String>,
}

/// What a network interface shows in `<capability type='net'>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetInfo {
    pub iface: NetIface,
    /// operstate, when it is one libvirt knows.
    pub state: Option<String>,
    /// Mb/s, read only while the state is "up" (drivers report nonsense otherwise).
    pub speed: Option<u32>,
    pub features: Vec<String>,
    /// DEVTYPE=wlan: 802.11; otherwise 802.3.
    pub wireless: bool,
}

/// What the configuration space and `vpd` add to a PCI function's XML.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PciExtras {
    pub bridge: Option<Bridge>,
    pub pcie: Option<PcieInfo>,
    pub vpd: Option<Vpd>,
}

const OPERSTATES: [&str; 7] = ["unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up"];

/// A canonical 8-4-4-4-12 UUID, lower-case, not all one digit (libvirt's validity test).
fn uuid_of(s: &str) -> Option<String> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    if hex.bytes().all(|b| b == hex.as_bytes()[0]) {
        return None;
    }
    Some(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
}

/// A random UUID made once per process (version 4).
fn process_uuid() -> &'static str {
    static UUID: OnceLock<String> = OnceLock::new();
    UUID.get_or_init(|| {
        let mut b = [0u8; 16];
        // SAFETY: getrandom fills the buffer we pass.
        let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
        if n != b.len() as isize {
            // No entropy source: time and pid still differ between daemons.
            let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let mix = seed.as_nanos() ^ (u128::from(std::process::id()) << 64);
            b = mix.to_le_bytes();
        }
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        uuid_of(&h).unwrap_or_else(|| "6e6f6465-6465-4076-8000-000000000001".to_string())
    })
}

impl Host {
    /// A DMI string as udev gives it to libvirt: control characters
    /// removed, empty or unreadable as absent.
    pub(crate) fn dmi(&self, name: &str) -> Option<String> {
        let raw = self.sysfs.read(&format!("devices/virtual/dmi/id/{name}")).ok()?;
        let clean: String = raw.chars().filter(|c| !c.is_control()).collect();
        (!clean.is_empty()).then_some(clean)
    }

    #[doc(hidden)]
    pub fn system_info(&self) -> SystemInfo {
        SystemInfo {
            product: self.dmi("product_name"),
            hardware_vendor: self.dmi("sys_vendor"),
            hardware_version: self.dmi("product_version"),
            hardware_serial: self.dmi("product_serial"),
            uuid: self.dmi("product_uuid").as_deref().and_then(uuid_of).unwrap_or_else(|| process_uuid().to_string()),
            firmware_vendor: self.dmi("bios_vendor"),
            firmware_version: self.dmi("bios_version"),
            firmware_release_date: self.dmi("bios_date"),
        }
    }

    /// The interface behind `class/net/NAME`, when a PCI function has it.
    fn net_iface(&self, iface: &str) -> Option<NetIface> {
        let target = self.sysfs.read_link(&format!("class/net/{iface}")).ok()?;
        let rel = target.trim_start_matches("../").trim_start_matches("./");
        let comps: Vec<&str> = rel.split('/').collect();
        // .../FUNCTION[/virtio0]/net/IFNAME: the closest PCI function above.
        let (last, above) = comps.split_last()?;
        if *last != iface || above.last() != Some(&"net") {
            return None;
        }
        let parent = above.iter().rev().find_map(|c| PciAddress::parse(c).ok().filter(|_| c.contains(':')))?;
        let mac = self.sysfs.read(&format!("class/net/{iface}/address")).ok().map(|m| m.trim_end().to_string());
        let mac = mac.filter(|m| !m.is_empty());
        Some(NetIface {
            name: net_node_name(iface, mac.as_deref()),
            iface: iface.to_string(),
            mac,
            parent,
            sysfs_path: format!("/sys/{rel}"),
        })
    }

    /// Every network interface of a PCI function, by parent then name.
    #[doc(hidden)]
    pub fn net_interfaces(&self) -> Vec<NetIface> {
        let mut out: Vec<NetIface> =
            self.sysfs.list_dir("class/net").unwrap_or_default().iter().filter_map(|i| self.net_iface(i)).collect();
        out.sort_by(|a, b| (a.parent, &a.iface).cmp(&(b.parent, &b.iface)));
        // Two interfaces whose names differ only where libvirt writes '_'
        // ("a.1", "a-1") and that share a MAC have one name: list it once
        // (libvirt keeps one device per name), the first in order.
        let mut seen = std::collections::HashSet::new();
        out.retain(|n| seen.insert(n.name.clone()));
        out
    }

    /// Every node device: computer, the PCI functions in address order, the
    /// interfaces of PCI functions, the mediated devices (live and defined).
    #[doc(hidden)]
    pub fn nodes(&self) -> Result<Vec<Node>> {
        let mut out = vec![Node::Computer];
        out.extend(self.list()?.into_iter().map(Node::Pci));
        out.extend(self.net_interfaces().into_iter().map(Node::Net));
        out.extend(self.mdevs()?.into_iter().map(|m| Node::Mdev(m.id)));
        Ok(out)
    }

    /// Node devices having capability `cap` (libvirt's virNodeDeviceObjHasCap):
    /// "vpd" reads the VPD of every function that has a `vpd` file.
    #[doc(hidden)]
    pub fn nodes_with_cap(&self, cap: &str) -> Result<Vec<Node>> {
        Ok(match cap {
            "system" => vec![Node::Computer],
            "pci" => self.list()?.into_iter().map(Node::Pci).collect(),
            "net" => self.net_interfaces().into_iter().map(Node::Net).collect(),
            "vpd" => self.list()?.into_iter().filter(|a| self.vpd(a).is_some()).map(Node::Pci).collect(),
            "mdev_types" => self.mdev_parents().into_iter().map(Node::Pci).collect(),
            "mdev" => self.mdevs()?.into_iter().map(|m| Node::Mdev(m.id)).collect(),
            _ => Vec::new(),
        })
    }

    /// A node device by libvirt's name (PCI functions also by the kernel's).
    #[doc(hidden)]
    pub fn lookup_node(&self, name: &str) -> Result<Node> {
        if name == "computer" {
            return Ok(Node::Computer);
        }
        if let Some(addr) = pci_by_name(name) {
            // The same message as the C API's lookup (the handle's readlink).
            self.require(&addr)?;
            return Ok(Node::Pci(addr));
        }
        if let Some(id) = super::MdevId::from_node_name(name).filter(|id| id.node_name() == name) {
            self.mdev(&id)?;
            return Ok(Node::Mdev(id));
        }
        if name.starts_with("net_") {
            if let Some(n) = self.net_interfaces().into_iter().find(|n| n.name == name) {
                return Ok(Node::Net(n));
            }
        }
        // libvirt's words first: clients match them.
        Err(Error::NoDevice(format!(
            "no node device with matching name '{name}' on this host: 'nodedev nodes' lists them (computer, pci_*, net_*, mdev_*)"
        )))
    }

    /// Whether the device is still there (an interface: same name, so same MAC).
    #[doc(hidden)]
    pub fn require_node(&self, node: &Node) -> Result<()> {
        match node {
            Node::Computer => Ok(()),
            Node::Pci(a) => self.require(a),
            Node::Net(n) => match self.net_iface(&n.iface) {
                Some(now) if now.name == n.name => Ok(()),
                _ => Err(Error::NoDevice(format!(
                    "the network interface {} ({}) is gone: its driver let go of it, or it was renamed",
                    n.iface, n.name
                ))),
            },
            Node::Mdev(id) => self.mdev(id).map(|_| ()),
        }
    }

    /// libvirt's parent name; None for computer.
    #[doc(hidden)]
    pub fn node_parent(&self, node: &Node) -> Result<Option<String>> {
        Ok(match node {
            Node::Computer => None,
            Node::Pci(a) => Some(self.parent_name(a)?),
            Node::Net(n) => Some(n.parent.node_name()),
            Node::Mdev(id) => Some(id.parent.node_name()),
        })
    }

    /// The device's capability names, as virNodeDeviceListCaps gives them.
    #[doc(hidden)]
    pub fn node_caps(&self, node: &Node) -> Result<Vec<&'static str>> {
        self.require_node(node)?;
        Ok(match node {
            Node::Computer => vec!["system"],
            Node::Net(_) => vec!["net"],
            Node::Mdev(_) => vec!["mdev"],
            Node::Pci(a) => {
                // libvirt's order (virNodeDeviceCapsListExport): mdev types, then VPD.
                let mut caps = vec!["pci"];
                if self.sysfs.exists(&dev_path(a, "mdev_supported_types")) {
                    caps.push("mdev_types");
                }
                if self.vpd(a).is_some() {
                    caps.push("vpd");
                }
                caps
            }
        })
    }

    /// The function's VPD, when it has a `vpd` file that parses.
    #[doc(hidden)]
    pub fn vpd(&self, addr: &PciAddress) -> Option<Vpd> {
        let data = self.sysfs.read_bytes(&dev_path(addr, "vpd"), vpd::MAX_LEN).ok()?;
        vpd::parse(&data)
    }

    /// Bridge type, PCI Express link and VPD of a function.
    #[doc(hidden)]
    pub fn pci_extras(&self, addr: &PciAddress) -> PciExtras {
        let (bridge, pcie) = self.config_facts(addr);
        PciExtras { bridge, pcie, vpd: self.vpd(addr) }
    }

    #[doc(hidden)]
    pub fn net_info(&self, n: &NetIface) -> Result<NetInfo> {
        self.require_node(&Node::Net(n.clone()))?;
        let file = |f: &str| self.sysfs.read(&format!("class/net/{}/{f}", n.iface));
        let state =
            file("operstate").ok().map(|s| s.trim_end().to_string()).filter(|s| OPERSTATES.contains(&s.as_str()));
        // The kernel prints -1 for an unknown speed; libvirt reads it as 4294967295.
        let speed = if state.as_deref() == Some("up") {
            file("speed").ok().and_then(|s| {
                let t = s.trim_end();
                t.parse::<u32>().ok().or_else(|| t.parse::<i64>().ok().filter(|v| *v == -1).map(|_| u32::MAX))
            })
        } else {
            None
        };
        let wireless = file("uevent").is_ok_and(|u| u.lines().any(|l| l == "DEVTYPE=wlan"));
        Ok(NetInfo {
            iface: n.clone(),
            state,
            speed: speed.filter(|s| *s != 0),
            features: self.sysfs.net_features(&n.iface).unwrap_or_default(),
            wireless,
        })
    }

    /// A node device's XML, libvirt's format.
    #[doc(hidden)]
    pub fn node_xml(&self, node: &Node) -> Result<String> {
        match node {
            Node::Computer => Ok(super::xml::render_system(&self.system_info())),
            Node::Pci(a) => self.xml(a),
            Node::Net(n) => Ok(super::xml::render_net(&self.net_info(n)?)),
            Node::Mdev(id) => self.mdev_xml(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_names_as_libvirt_forms_them() {
        assert_eq!(net_node_name("eth0", Some("52:54:00:12:34:56")), "net_eth0_52_54_00_12_34_56");
        assert_eq!(net_node_name("enp0s31f6.100", Some("aa:bb:cc:dd:ee:ff")), "net_enp0s31f6_100_aa_bb_cc_dd_ee_ff");
        assert_eq!(net_node_name("wl-x", None), "net_wl_x");
        assert_eq!(net_node_name("n\u{e9}t", None), "net_n__t", "one '_' per byte, as libvirt");
    }

    #[test]
    fn uuids_as_libvirt_accepts_them() {
        assert_eq!(
            uuid_of("4C4C4544-0042-3510-8052-B2C04F564433").as_deref(),
            Some("4c4c4544-0042-3510-8052-b2c04f564433")
        );
        assert_eq!(uuid_of("00000000-0000-0000-0000-000000000000"), None);
        assert_eq!(uuid_of("not a uuid"), None);
        assert!(uuid_of(process_uuid()).is_some());
    }
}
