//! What a PCI function is, read from its sysfs directory.

use super::{dev_path, Host};
use crate::address::PciAddress;
use crate::error::Result;
use crate::sysfs::link_basename;

#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Methods the kernel lists in reset_method; empty when it has none (or an old kernel).
    pub reset_methods: Vec<String>,
    pub can_reset: bool,
}

fn hex_u32(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

impl Host {
    pub fn device_info(&self, addr: &PciAddress) -> Result<DeviceInfo> {
        let driver = self.driver(addr)?; // also answers "no such device"
        let sysfs = self.sysfs.as_ref();
        let hex = |name: &str| self.attr(addr, name).as_deref().and_then(hex_u32);
        let link = |name: &str| sysfs.read_link(&dev_path(addr, name)).ok();

        let canonical = link("").unwrap_or_default();
        let rel = canonical.trim_start_matches("../").trim_start_matches("./");
        let sysfs_path = if rel.is_empty() { format!("/sys/bus/pci/devices/{addr}") } else { format!("/sys/{rel}") };
        // The parent is the path component before ours, when it is a PCI function.
        let parent = rel.rsplit('/').nth(1).and_then(|c| PciAddress::parse(c).ok());

        let iommu_group = link("iommu_group").and_then(|t| link_basename(&t).parse().ok());
        let group_members = match iommu_group {
            Some(g) => {
                let mut m: Vec<PciAddress> = sysfs
                    .list_dir(&format!("kernel/iommu_groups/{g}/devices"))
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|n| PciAddress::parse(n).ok())
                    .collect();
                m.sort();
                m
            }
            None => Vec::new(),
        };

        let entries = sysfs.list_dir(&dev_path(addr, "")).unwrap_or_default();
        let mut virtfns: Vec<(u32, PciAddress)> = entries
            .iter()
            .filter_map(|e| {
                let n: u32 = e.strip_prefix("virtfn")?.parse().ok()?;
                let a = PciAddress::parse(link_basename(&link(e)?)).ok()?;
                Some((n, a))
            })
            .collect();
        virtfns.sort();

        let vendor = hex("vendor").unwrap_or(0) as u16;
        let device = hex("device").unwrap_or(0) as u16;
        let (vendor_name, product_name) = match sysfs.pci_names(vendor, device) {
            Some((v, p)) => (Some(v), Some(p)),
            None => (None, None),
        };
        Ok(DeviceInfo {
            address: *addr,
            sysfs_path,
            parent,
            driver,
            vendor,
            device,
            subsystem_vendor: hex("subsystem_vendor").map(|v| v as u16),
            subsystem_device: hex("subsystem_device").map(|v| v as u16),
            class: hex("class").unwrap_or(0),
            vendor_name,
            product_name,
            iommu_group,
            group_members,
            numa_node: self.attr(addr, "numa_node").and_then(|s| s.parse().ok()).filter(|n: &i32| *n >= 0),
            physfn: link("physfn").and_then(|t| PciAddress::parse(link_basename(&t)).ok()),
            virtfns: virtfns.into_iter().map(|(_, a)| a).collect(),
            sriov_totalvfs: self.attr(addr, "sriov_totalvfs").and_then(|s| s.parse().ok()).filter(|n| *n > 0),
            reset_methods: self
                .attr(addr, "reset_method")
                .map(|s| s.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            can_reset: entries.iter().any(|e| e == "reset"),
        })
    }

    /// libvirt's name for the parent: the upstream bridge, or "computer".
    pub fn parent_name(&self, addr: &PciAddress) -> Result<String> {
        Ok(self.device_info(addr)?.parent.map(|p| p.node_name()).unwrap_or_else(|| "computer".to_string()))
    }
}
