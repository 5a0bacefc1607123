//! IOMMU groups: which functions share one, and whether VFIO can use it.
//!
//! The kernel lets a group be opened through /dev/vfio/N only when every
//! function in it is bound to vfio-pci, to pci-stub, to no driver, or is a bridge
//! (pcieport / PCI-to-PCI bridges are tolerated). nodedev asks exactly that
//! before it assigns a device, and names the functions in the way.

use super::{dev_path, Host};
use crate::address::PciAddress;
use crate::error::{Error, Result};
use crate::sysfs::link_basename;

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupMember {
    pub address: PciAddress,
    pub driver: Option<String>,
    /// A bridge: VFIO tolerates it whatever its driver; never detached.
    pub bridge: bool,
}

impl GroupMember {
    /// A member, with VFIO's idea of a bridge: a PCI bridge class, or pcieport.
    pub fn new(address: PciAddress, driver: Option<String>, class: Option<u32>) -> GroupMember {
        let bridge = driver.as_deref() == Some("pcieport") || class.is_some_and(is_bridge_class);
        GroupMember { address, driver, bridge }
    }

    /// An endpoint on a driver that keeps the group from VFIO use: any
    /// driver but vfio-pci (or a variant) and pci-stub, which manage no DMA of their own
    /// (the kernel's `driver_managed_dma`; before 5.19 its allow-list).
    pub fn blocks_vfio(&self) -> bool {
        !self.bridge && self.driver.as_deref().is_some_and(|d| !crate::stub::is_vfio_driver(d) && d != "pci-stub")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Group {
    pub number: u32,
    /// Every function of the group, in address order.
    pub members: Vec<GroupMember>,
}

impl Group {
    pub fn endpoints(&self) -> impl Iterator<Item = &GroupMember> {
        self.members.iter().filter(|m| !m.bridge)
    }

    /// Endpoints, other than those in `except`, that keep the group from VFIO use.
    pub fn blockers(&self, except: &[PciAddress]) -> Vec<&GroupMember> {
        self.members.iter().filter(|m| m.blocks_vfio() && !except.contains(&m.address)).collect()
    }

    pub fn viable(&self) -> bool {
        self.blockers(&[]).is_empty()
    }

    /// Why `addr` cannot be used with VFIO while `blockers` keep their drivers.
    pub fn not_viable_error(&self, addr: &PciAddress, blockers: &[&GroupMember]) -> Error {
        let list: Vec<String> = blockers
            .iter()
            .map(|m| format!("{}, still bound to {}", m.address, m.driver.as_deref().unwrap_or("-")))
            .collect();
        Error::OperationInvalid(format!(
            "{addr} shares IOMMU group {} with {}: detach the group (flag VIR_NODE_DEVICE_DETACH_GROUP, CLI 'detach --group') or unbind {} first",
            self.number,
            list.join("; "),
            if blockers.len() == 1 { "it" } else { "them" }
        ))
    }
}

/// Class codes of bridges VFIO tolerates in a group: PCI-to-PCI, CardBus, semi-transparent.
fn is_bridge_class(class: u32) -> bool {
    matches!(class >> 8, 0x0604 | 0x0607 | 0x0609)
}

impl Host {
    /// Whether the kernel runs with an IOMMU (any group exists).
    pub fn iommu_enabled(&self) -> bool {
        self.sysfs.list_dir("kernel/iommu_groups").is_ok_and(|g| !g.is_empty())
    }

    pub(crate) fn group_number(&self, addr: &PciAddress) -> Option<u32> {
        let target = self.sysfs.read_link(&dev_path(addr, "iommu_group")).ok()?;
        link_basename(&target).parse().ok()
    }

    /// The device's IOMMU group number and members (itself included, in
    /// address order); None without an IOMMU.
    pub(crate) fn group_addresses(&self, addr: &PciAddress) -> Result<Option<(u32, Vec<PciAddress>)>> {
        self.require(addr)?;
        let Some(number) = self.group_number(addr) else { return Ok(None) };
        let mut addrs = self.group_members(number);
        if !addrs.contains(addr) {
            addrs.push(*addr);
            addrs.sort();
        }
        Ok(Some((number, addrs)))
    }

    /// The functions the kernel lists in IOMMU group `number`, in address order.
    pub(crate) fn group_members(&self, number: u32) -> Vec<PciAddress> {
        let mut addrs: Vec<PciAddress> = self
            .sysfs
            .list_dir(&format!("kernel/iommu_groups/{number}/devices"))
            .unwrap_or_default()
            .iter()
            .filter_map(|n| PciAddress::parse(n).ok())
            .collect();
        addrs.sort();
        addrs
    }

    /// The device's IOMMU group with each member's driver; None without an
    /// IOMMU. [`Group::viable`] says whether VFIO can use it now.
    pub fn group(&self, addr: &PciAddress) -> Result<Option<Group>> {
        let Some((number, addrs)) = self.group_addresses(addr)? else { return Ok(None) };
        let mut members = Vec::with_capacity(addrs.len());
        for a in addrs {
            let ids = self.ids(&a)?;
            members.push(GroupMember::new(a, ids.driver, Some(ids.class)));
        }
        Ok(Some(Group { number, members }))
    }

    /// What still keeps the device's group from VFIO after it went to
    /// vfio-pci, for a person ("IOMMU group 5 is not usable by VFIO yet:
    /// ..."); None when the group is usable (or the device has none).
    pub fn group_unusable_note(&self, addr: &PciAddress) -> Result<Option<String>> {
        let Some(g) = self.group(addr)? else { return Ok(None) };
        let blockers = g.blockers(&[]);
        if blockers.is_empty() {
            return Ok(None);
        }
        let list: Vec<String> = blockers
            .iter()
            .map(|m| format!("{} is still bound to {}", m.address, m.driver.as_deref().unwrap_or("-")))
            .collect();
        Ok(Some(format!(
            "IOMMU group {} is not usable by VFIO yet: {}; detach {} too, or detach with --group (VIR_NODE_DEVICE_DETACH_GROUP)",
            g.number,
            list.join(", "),
            if blockers.len() == 1 { "it" } else { "them" }
        )))
    }

    /// The error for "vfio" on a device without a group.
    pub(crate) fn no_iommu_error(&self, addr: &PciAddress) -> Error {
        let why = if self.iommu_enabled() {
            format!("{addr} has no IOMMU group")
        } else {
            format!("{addr} has no IOMMU group: this kernel runs without an IOMMU (/sys/kernel/iommu_groups is empty)")
        };
        Error::Unsupported(format!(
            "{why}, so vfio cannot use it: enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line, and VT-d/AMD-Vi in the firmware), or use driver name \"kvm\""
        ))
    }
}
