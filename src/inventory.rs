//! The devices as data for programs: what the CLI's `--json` prints, one
//! JSON document per command, for fleet schedulers (Nova's PCI tracker, a
//! Kubernetes device plugin) and scripts.
//!
//! The format is described by `doc/nodedev-json.schema.json` and
//! `tests/cli.rs` checks the output against it. Stability: within one
//! `schema_version`, fields are only added (and the schema with them), never
//! removed, renamed or given another meaning; consumers ignore fields they
//! do not know. Anything else bumps `SCHEMA_VERSION`.
//!
//! Ids are lowercase hex without "0x" (`8086`, class `020000`), as
//! `lspci -n`, Nova's whitelist and the device plugins write them.

use crate::address::PciAddress;
use crate::error::Result;
use crate::host::{DeviceInfo, DeviceSummary, Group, GroupMember as HostMember, Host, Recovered};
use crate::state::{CorruptRecord, Record, Step};
use crate::stub::is_stub_driver;
use serde::Serialize;
use std::collections::btree_map::{BTreeMap, Entry};

pub const SCHEMA_VERSION: u32 = 1;

/// One PCI function, with what nodedev knows about it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Device {
    pub address: String,
    /// libvirt's node-device name, `pci_0000_03_00_0`.
    pub name: String,
    pub vendor_id: String,
    pub vendor_name: Option<String>,
    pub device_id: String,
    pub device_name: Option<String>,
    pub subsystem_vendor_id: Option<String>,
    pub subsystem_device_id: Option<String>,
    pub class: String,
    pub driver: Option<String>,
    /// The driver is a stub (vfio-pci, pci-stub, xen-pciback).
    pub stub: bool,
    pub iommu_group: Option<IommuGroup>,
    pub numa_node: Option<i32>,
    /// For an SR-IOV virtual function: its physical function.
    pub physical_function: Option<String>,
    /// For an SR-IOV physical function: the VFs enabled now.
    pub virtual_functions: Vec<String>,
    pub sriov_totalvfs: Option<u32>,
    /// Guest the device is assigned to (virNodeDevicePrepare).
    pub owner: Option<String>,
    /// With an owner: whether release gives the device back to its host driver.
    pub managed: Option<bool>,
    /// nodedev moved the device to its stub and will give it back.
    pub detached_by_nodedev: bool,
    /// When detached by nodedev: the driver it had before (null: none).
    pub original_driver: Option<String>,
    /// nodedev has a record of the device it cannot read: every operation
    /// on it is refused until a person checks it. Why, and what to do.
    pub unusable_record: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct IommuGroup {
    pub number: u32,
    /// Every function of the group, this one included, in address order.
    pub members: Vec<String>,
    /// /dev/vfio/N can be opened now: no endpoint is on a host driver.
    pub vfio_viable: bool,
}

/// A member of an IOMMU group, for `group`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct GroupMember {
    pub address: String,
    pub name: String,
    pub driver: Option<String>,
    pub stub: bool,
    /// A bridge: VFIO tolerates it whatever its driver.
    pub bridge: bool,
    /// An endpoint on a host driver: the group is not viable while it stays.
    pub blocks_vfio: bool,
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct GroupReport {
    pub number: u32,
    pub vfio_viable: bool,
    pub members: Vec<GroupMember>,
}

/// A device and its driver, for `drivers`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DriverEntry {
    pub address: String,
    pub name: String,
    pub driver: Option<String>,
    pub stub: bool,
}

/// What recovery did with one record, for `recover`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RecoveredEntry {
    /// The device's address.
    pub address: String,
    /// The step the record is at; null for a record that cannot be used.
    pub step: Option<Step>,
    pub outcome: String,
    /// Settled; false: the record is still there and needs attention.
    pub resolved: bool,
}

/// One command's output; `command` tells which.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "command", rename_all = "lowercase")]
pub enum Report {
    List {
        devices: Vec<Device>,
    },
    /// `vfio_driver`: what driver name "vfio" would give the device, and why.
    Show {
        device: Box<Device>,
        vfio_driver: Option<crate::host::VfioChoice>,
    },
    Group {
        address: String,
        group: Option<GroupReport>,
    },
    Drivers {
        devices: Vec<DriverEntry>,
    },
    Recover {
        recovered: Vec<RecoveredEntry>,
    },
    // ---- Events (issue 12, item 5): `watch --json`, one document per event.
    Watch {
        event: crate::events::DeviceEvent,
    },
}

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    #[serde(flatten)]
    report: &'a Report,
}

impl Report {
    /// The document on one line (JSON Lines: one per command of a chain).
    pub fn to_json(&self) -> String {
        let doc = Document { schema_version: SCHEMA_VERSION, report: self };
        serde_json::to_string(&doc).expect("inventory types always serialize")
    }
}

/// What the records say of each device, by address, and which devices have
/// a record that cannot be read (shown, not taken for "no record").
struct Records(BTreeMap<String, Record>, BTreeMap<String, CorruptRecord>);

impl Records {
    fn read(host: &Host) -> Result<Records> {
        let (records, corrupt) = host.state().list_checked()?;
        Ok(Records(
            records.into_iter().map(|r| (r.address.clone(), r)).collect(),
            corrupt.into_iter().map(|c| (c.address.clone(), c)).collect(),
        ))
    }

    fn unusable(&self, addr: &PciAddress) -> Option<String> {
        self.1.get(&addr.to_string()).map(|c| format!("{}: {}", c.why, c.how_to_clear()))
    }

    fn owner(&self, addr: &PciAddress) -> Option<String> {
        self.0.get(&addr.to_string()).and_then(|r| r.owner.clone())
    }
}

fn hex4(v: u16) -> String {
    format!("{v:04x}")
}

/// Groups already read, so that listing reads each group once.
type GroupCache = BTreeMap<u32, Option<Group>>;

fn device_entry(host: &Host, d: DeviceInfo, records: &Records, groups: &mut GroupCache) -> Result<Device> {
    let addr = d.address;
    let iommu_group = match d.iommu_group {
        Some(n) => {
            let group = match groups.entry(n) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(host.group(&addr)?),
            };
            group.as_ref().map(|g| IommuGroup {
                number: g.number,
                members: g.members.iter().map(|m| m.address.to_string()).collect(),
                vfio_viable: g.viable(),
            })
        }
        None => None,
    };
    let record = records.0.get(&addr.to_string());
    let moved = record.filter(|r| !r.ownership_only);
    let owner = record.and_then(|r| r.owner.clone());
    Ok(Device {
        address: addr.to_string(),
        name: addr.node_name(),
        vendor_id: hex4(d.vendor),
        vendor_name: d.vendor_name,
        device_id: hex4(d.device),
        device_name: d.product_name,
        subsystem_vendor_id: d.subsystem_vendor.map(hex4),
        subsystem_device_id: d.subsystem_device.map(hex4),
        class: format!("{:06x}", d.class),
        stub: d.driver.as_deref().is_some_and(is_stub_driver),
        driver: d.driver,
        iommu_group,
        numa_node: d.numa_node,
        physical_function: d.physfn.map(|p| p.to_string()),
        virtual_functions: d.virtfns.iter().map(|v| v.to_string()).collect(),
        sriov_totalvfs: d.sriov_totalvfs,
        managed: record.filter(|r| r.owner.is_some()).map(|r| r.managed),
        owner,
        detached_by_nodedev: moved.is_some(),
        original_driver: moved.and_then(|r| r.original_driver.clone()),
        unusable_record: records.unusable(&addr),
    })
}

/// A device as the text `list` shows it: its summary and nodedev's record.
#[doc(hidden)]
pub struct Listed {
    pub summary: DeviceSummary,
    pub record: Option<Record>,
    /// Its record exists but cannot be read (see `Device::unusable_record`).
    pub unusable_record: Option<String>,
}

/// Every PCI function with only what the text `list` shows: a few syscalls
/// per device (uevent, iommu_group) instead of the whole inventory.
#[doc(hidden)]
pub fn listing(host: &Host) -> Result<Vec<Listed>> {
    let mut records = Records::read(host)?;
    host.list()?
        .iter()
        .map(|a| {
            let unusable_record = records.unusable(a);
            Ok(Listed { summary: host.summary(a)?, record: records.0.remove(&a.to_string()), unusable_record })
        })
        .collect()
}

/// Every PCI function of the host, in address order, with what the
/// records of every caller on this host say of it (owner, original driver).
///
/// ```
/// use nodedev::{Host, PrepareOptions, Stub};
///
/// let host = Host::open("test:///default")?;
/// let vf = host.lookup("0000:04:10.0")?;
/// host.prepare("vm-1", &[vf], Stub::Vfio, PrepareOptions { managed: true, force: false })?;
/// let all = nodedev::inventory::devices(&host)?;
/// let d = all.iter().find(|d| d.address == "0000:04:10.0").unwrap();
/// assert_eq!(d.owner.as_deref(), Some("vm-1"));
/// assert_eq!(d.original_driver.as_deref(), Some("igbvf"));
/// assert_eq!(d.physical_function.as_deref(), Some("0000:04:00.0"));
/// host.release("vm-1", None)?;
/// # Ok::<(), nodedev::Error>(())
/// ```
pub fn devices(host: &Host) -> Result<Vec<Device>> {
    let records = Records::read(host)?;
    let infos = host.list()?.iter().map(|a| host.device_info(a)).collect::<Result<Vec<_>>>()?;
    // Groups whose members were all just read are built from that, not read again.
    let by_address: BTreeMap<PciAddress, &DeviceInfo> = infos.iter().map(|d| (d.address, d)).collect();
    let mut groups = GroupCache::new();
    for d in &infos {
        let Some(n) = d.iommu_group.filter(|n| !groups.contains_key(n)) else { continue };
        let members: Option<Vec<HostMember>> = d
            .group_members
            .iter()
            .map(|m| by_address.get(m).map(|i| HostMember::new(*m, i.driver.clone(), Some(i.class))))
            .collect();
        if let Some(members) = members {
            groups.insert(n, Some(Group { number: n, members }));
        }
    }
    infos.into_iter().map(|d| device_entry(host, d, &records, &mut groups)).collect()
}

/// One device, as [`devices`] lists it.
pub fn device(host: &Host, addr: &PciAddress) -> Result<Device> {
    device_entry(host, host.device_info(addr)?, &Records::read(host)?, &mut GroupCache::new())
}

/// The device's IOMMU group; None without an IOMMU.
pub fn group(host: &Host, addr: &PciAddress) -> Result<Option<GroupReport>> {
    let records = Records::read(host)?;
    Ok(host.group(addr)?.map(|g| GroupReport {
        number: g.number,
        vfio_viable: g.viable(),
        members: g
            .members
            .iter()
            .map(|m| GroupMember {
                address: m.address.to_string(),
                name: m.address.node_name(),
                stub: m.driver.as_deref().is_some_and(is_stub_driver),
                driver: m.driver.clone(),
                bridge: m.bridge,
                blocks_vfio: m.blocks_vfio(),
                owner: records.owner(&m.address),
            })
            .collect(),
    }))
}

/// Every device and its driver, for `nodedev drivers --json`.
pub fn drivers(host: &Host) -> Result<Vec<DriverEntry>> {
    host.list()?
        .into_iter()
        .map(|a| {
            let driver = host.driver(&a)?;
            Ok(DriverEntry {
                address: a.to_string(),
                name: a.node_name(),
                stub: driver.as_deref().is_some_and(is_stub_driver),
                driver,
            })
        })
        .collect()
}

/// What [`Host::recover`] did, for `nodedev recover --json`.
pub fn recovered(done: &[Recovered]) -> Vec<RecoveredEntry> {
    done.iter()
        .map(|r| RecoveredEntry {
            address: r.address.clone(),
            step: r.step,
            outcome: r.outcome.clone(),
            resolved: r.resolved,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateStore;
    use crate::sysfs::sim::SimKernel;
    use crate::{HostOptions, Stub};
    use std::sync::Arc;

    #[test]
    fn the_whole_listing_sees_each_group_as_reading_it_alone_does() {
        let host = Host::new(Arc::new(SimKernel::builtin()), StateStore::memory(), HostOptions::default());
        // One NIC of the bridge group on a stub, the other still on e1000: not viable.
        host.detach(&PciAddress::parse("0000:03:01.0").unwrap(), Stub::Vfio).unwrap();
        let all = devices(&host).unwrap();
        let mut viable = (0, 0);
        for d in &all {
            let alone = device(&host, &PciAddress::parse(&d.address).unwrap()).unwrap();
            let (a, b) = (serde_json::to_string(d).unwrap(), serde_json::to_string(&alone).unwrap());
            assert_eq!(a, b);
            match &d.iommu_group {
                Some(g) if g.vfio_viable => viable.0 += 1,
                Some(_) => viable.1 += 1,
                None => {}
            }
        }
        assert!(viable.0 > 0 && viable.1 > 0, "both kinds of group: {viable:?}");
    }
}
