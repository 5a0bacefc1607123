//! What a PCI function is, read from its sysfs directory.

use super::{dev_path, Host};
use crate::address::PciAddress;
use crate::error::Result;
use crate::sysfs::link_basename;

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceInfo {
    pub address: PciAddress,
    /// Canonical sysfs path, e.g. /sys/devices/pci0000:00/0000:00:1c.0/0000:03:00.0
    pub sysfs_path: String,
    /// Upstream bridge; None for a device on a root bus.
    pub parent: Option<PciAddress>,
    pub driver: Option<String>,
    pub vendor: u16,
    pub device: u16,
    pub subsystem_vendor: Option<u16>,
    pub subsystem_device: Option<u16>,
    pub class: u32,
    pub vendor_name: Option<String>,
    pub product_name: Option<String>,
    pub iommu_group: Option<u32>,
    /// Every member of the IOMMU group, this device included, in address order.
    pub group_members: Vec<PciAddress>,
    pub numa_node: Option<i32>,
    pub physfn: Option<PciAddress>,
    pub virtfns: Vec<PciAddress>,
    pub sriov_totalvfs: Option<u32>,
    /// The mediated-device types it offers as an mdev parent (empty: none).
    pub mdev_types: Vec<super::MdevType>,
}

/// The part of a device that `nodedev list` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceSummary {
    pub address: PciAddress,
    pub driver: Option<String>,
    pub vendor: u16,
    pub device: u16,
    pub class: u32,
    pub vendor_name: Option<String>,
    pub product_name: Option<String>,
    pub iommu_group: Option<u32>,
}

fn hex_u32(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

/// The canonical sysfs path (from the `bus/pci/devices/ADDR` link's target)
/// and the upstream bridge: the path component before ours, when it is a
/// PCI function.
fn placement(addr: &PciAddress, canonical: &str) -> (String, Option<PciAddress>) {
    let rel = canonical.trim_start_matches("../").trim_start_matches("./");
    let sysfs_path = if rel.is_empty() { format!("/sys/bus/pci/devices/{addr}") } else { format!("/sys/{rel}") };
    (sysfs_path, rel.rsplit('/').nth(1).and_then(|c| PciAddress::parse(c).ok()))
}

#[doc(hidden)]
/// libvirt's name for the parent of the device whose link target is `link`.
pub fn parent_name_of(addr: &PciAddress, link: &str) -> String {
    placement(addr, link).1.map(|p| p.node_name()).unwrap_or_else(|| "computer".to_string())
}

/// Who drives a device and what it is.
pub(crate) struct Ids {
    pub driver: Option<String>,
    pub vendor: u16,
    pub device: u16,
    pub subsystem: Option<(u16, u16)>,
    pub class: u32,
}

impl Ids {
    /// The kernel's PCI uevent: `DRIVER=e1000e` (only when bound),
    /// `PCI_CLASS=20000`, `PCI_ID=8086:10D3`, `PCI_SUBSYS_ID=8086:0000`.
    fn from_uevent(text: &str) -> Option<Ids> {
        let (mut driver, mut class, mut id, mut subsystem) = (None, None, None, None);
        let pair = |v: &str| {
            let (a, b) = v.split_once(':')?;
            Some((u16::from_str_radix(a, 16).ok()?, u16::from_str_radix(b, 16).ok()?))
        };
        for line in text.lines() {
            match line.split_once('=') {
                Some(("DRIVER", v)) => driver = Some(v.to_string()),
                Some(("PCI_CLASS", v)) => class = hex_u32(v),
                Some(("PCI_ID", v)) => id = pair(v),
                Some(("PCI_SUBSYS_ID", v)) => subsystem = pair(v),
                _ => {}
            }
        }
        let (vendor, device) = id?;
        Some(Ids { driver, vendor, device, subsystem, class: class? })
    }
}

impl Host {
    /// What the device is: ids, class, driver, IOMMU group, NUMA node, SR-IOV
    /// relations, reset methods (what [`Host::xml`] renders).
    ///
    /// ```
    /// let host = nodedev::Host::open("test:///default")?;
    /// let pf = host.device_info(&host.lookup("0000:04:00.0")?)?;
    /// assert_eq!((pf.vendor, pf.device), (0x8086, 0x10c9));
    /// assert_eq!(pf.virtfns.len(), 3);
    /// # Ok::<(), nodedev::Error>(())
    /// ```
    pub fn device_info(&self, addr: &PciAddress) -> Result<DeviceInfo> {
        self.device_info_placed(addr, None)
    }

    #[doc(hidden)]
    /// `device_info` reading only what it shows, with the fewest syscalls:
    /// `uevent`, the `iommu_group` link and the group's listing, `numa_node`,
    /// and one probe each for `physfn`, `sriov_totalvfs` and
    /// `mdev_supported_types` (absent on most
    /// functions; an absent file costs one failed lookup, where listing the
    /// device's directory would cost four calls). `link`: the
    /// `bus/pci/devices/ADDR` link's target when the caller read it already
    /// (a device handle keeps it), else it is read here.
    pub fn device_info_placed(&self, addr: &PciAddress, link: Option<&str>) -> Result<DeviceInfo> {
        let ids = self.ids(addr)?; // also answers "no such device"
        let sysfs = self.sysfs.as_ref();
        let read_link = |name: &str| sysfs.read_link(&dev_path(addr, name)).ok();
        let address_of = |name: &str| read_link(name).and_then(|t| PciAddress::parse(link_basename(&t)).ok());

        let canonical = match link {
            Some(l) => l.to_string(),
            None => read_link("").unwrap_or_default(),
        };
        let (sysfs_path, parent) = placement(addr, &canonical);

        let iommu_group = self.group_number(addr);
        let group_members = iommu_group.map(|g| self.group_members(g)).unwrap_or_default();

        let sriov_totalvfs = self.attr(addr, "sriov_totalvfs").and_then(|s| s.parse().ok()).filter(|n| *n > 0);
        // A PF's VFs are virtfn0..virtfnN-1 for its sriov_numvfs = N.
        let virtfns = match sriov_totalvfs {
            Some(_) => {
                let numvfs: u32 = self.attr(addr, "sriov_numvfs").and_then(|s| s.parse().ok()).unwrap_or(0);
                (0..numvfs).filter_map(|i| address_of(&format!("virtfn{i}"))).collect()
            }
            None => Vec::new(),
        };

        let names = sysfs.pci_names(ids.vendor, ids.device);
        Ok(DeviceInfo {
            address: *addr,
            sysfs_path,
            parent,
            driver: ids.driver,
            vendor: ids.vendor,
            device: ids.device,
            subsystem_vendor: ids.subsystem.map(|s| s.0),
            subsystem_device: ids.subsystem.map(|s| s.1),
            class: ids.class,
            vendor_name: names.vendor,
            product_name: names.product,
            iommu_group,
            group_members,
            numa_node: self.attr(addr, "numa_node").and_then(|s| s.parse().ok()).filter(|n: &i32| *n >= 0),
            physfn: address_of("physfn"),
            virtfns,
            sriov_totalvfs,
            mdev_types: self.mdev_types_if_parent(addr)?,
        })
    }

    /// What `nodedev list` shows of a device, read with as few syscalls as
    /// the kernel allows: its `uevent` and its `iommu_group` link.
    pub fn summary(&self, addr: &PciAddress) -> Result<DeviceSummary> {
        let ids = self.ids(addr)?;
        let names = self.sysfs.pci_names(ids.vendor, ids.device);
        Ok(DeviceSummary {
            address: *addr,
            driver: ids.driver,
            vendor: ids.vendor,
            device: ids.device,
            class: ids.class,
            vendor_name: names.vendor,
            product_name: names.product,
            iommu_group: self.group_number(addr),
        })
    }

    /// Driver and ids from `uevent` (one read instead of six files), or from
    /// the separate attributes where a tree has no `uevent`.
    pub(crate) fn ids(&self, addr: &PciAddress) -> Result<Ids> {
        if let Some(ids) = self.sysfs.read(&dev_path(addr, "uevent")).ok().as_deref().and_then(Ids::from_uevent) {
            return Ok(ids);
        }
        let driver = self.driver(addr)?;
        let hex = |name: &str| self.attr(addr, name).as_deref().and_then(hex_u32);
        let subsystem = hex("subsystem_vendor").zip(hex("subsystem_device"));
        Ok(Ids {
            driver,
            vendor: hex("vendor").unwrap_or(0) as u16,
            device: hex("device").unwrap_or(0) as u16,
            subsystem: subsystem.map(|(v, d)| (v as u16, d as u16)),
            class: hex("class").unwrap_or(0),
        })
    }

    /// libvirt's name for the parent: the upstream bridge, or "computer".
    /// One readlink: handles are made for every device a listing returns.
    pub fn parent_name(&self, addr: &PciAddress) -> Result<String> {
        Ok(parent_name_of(addr, &self.placement_link(addr)?))
    }

    #[doc(hidden)]
    /// The `bus/pci/devices/ADDR` link's target, which places the device in
    /// the tree (path and parent); a handle reads it once, when made.
    pub fn placement_link(&self, addr: &PciAddress) -> Result<String> {
        let canonical = self.sysfs.read_link(&dev_path(addr, "")).unwrap_or_default();
        if canonical.is_empty() {
            self.require(addr)?;
        }
        Ok(canonical)
    }
}
