//! A host written down as a simulated-host description (`test:///PATH.json`),
//! so the same operations can run on the real kernel and on its simulation
//! and be compared (the real-kernel suite's differential check).
//!
//! What sysfs cannot tell is guessed: a driver's id table is the ids of the
//! devices bound to it now, and xen-pciback is loadable only under Xen.

use super::Host;
use crate::error::Result;
use crate::stub::{Stub, STUB_DRIVERS};
use crate::sysfs::sim::{DeviceSpec, DmiSpec, DriverSpec, HostSpec, NetSpec, PcieSpec, VpdSpec};
use crate::sysfs::sim::{MdevParentSpec, MdevTypeSpec};

/// An mdev parent as the simulation models it: one pool the types share,
/// sized so each type has the instances it shows now (the least common
/// multiple of them; a type with none left gets the whole pool as its cost,
/// so one instance, the nearest the model comes). Live mdevs are not
/// described: their share counts as free.
fn mdev_parent_spec(types: &[super::MdevType]) -> Option<MdevParentSpec> {
    if types.is_empty() {
        return None;
    }
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let lcm = types
        .iter()
        .map(|t| u64::from(t.available_instances.max(1)))
        .fold(1u64, |l, a| (l / gcd(l, a) * a).min(1 << 20));
    let capacity = lcm as u32;
    Some(MdevParentSpec {
        driver: None,
        capacity,
        types: types
            .iter()
            .map(|t| MdevTypeSpec {
                id: t.id.clone(),
                name: t.name.clone().unwrap_or_default(),
                description: t.description.clone().unwrap_or_default(),
                device_api: t.device_api.clone(),
                cost: (capacity / t.available_instances.max(1)).max(1),
            })
            .collect(),
    })
}

impl Host {
    /// This host as a simulated-host description (`nodedev dump-host`).
    #[doc(hidden)]
    pub fn describe(&self) -> Result<HostSpec> {
        let mut devices = Vec::new();
        let mut drivers: Vec<DriverSpec> = Vec::new();
        for name in self.sysfs.list_dir("bus/pci/drivers").unwrap_or_default() {
            drivers.push(DriverSpec {
                module: None,
                loaded: true,
                available: true,
                ids: Vec::new(),
                classes: Vec::new(),
                vfio_aliases: Vec::new(),
                name,
            });
        }
        let mut driver_override = false;
        for addr in self.list()? {
            let d = self.device_info(&addr)?;
            let mdev = mdev_parent_spec(&d.mdev_types);
            driver_override |= self.sysfs.exists(&super::dev_path(&addr, "driver_override"));
            let id = format!("{:04x}:{:04x}", d.vendor, d.device);
            if let Some(drv) = drivers.iter_mut().find(|x| Some(&x.name) == d.driver.as_ref()) {
                if !STUB_DRIVERS.contains(&drv.name.as_str()) && !drv.ids.contains(&id) {
                    drv.ids.push(id);
                }
            }
            let net = self
                .sysfs
                .list_dir(&super::dev_path(&addr, "net"))
                .unwrap_or_default()
                .into_iter()
                .map(|name| NetSpec {
                    // Ethernet's six bytes only: the description takes no other kind.
                    mac: self
                        .sysfs
                        .read(&format!("class/net/{name}/address"))
                        .ok()
                        .map(|m| m.trim_end().to_string())
                        .filter(|m| m.len() == 17 && m.split(':').count() == 6),
                    features: self.sysfs.net_features(&name).unwrap_or_default(),
                    name,
                    ..NetSpec::default()
                })
                .collect();
            let extras = self.pci_extras(&addr);
            devices.push(DeviceSpec {
                address: addr.to_string(),
                vendor: format!("0x{:04x}", d.vendor),
                device: format!("0x{:04x}", d.device),
                subsystem_vendor: d.subsystem_vendor.map(|v| format!("0x{v:04x}")),
                subsystem_device: d.subsystem_device.map(|v| format!("0x{v:04x}")),
                class: format!("0x{:06x}", d.class),
                vendor_name: d.vendor_name,
                product_name: d.product_name,
                driver: d.driver,
                iommu_group: d.iommu_group,
                parent: d.parent.map(|p| p.to_string()),
                numa_node: d.numa_node.unwrap_or(-1),
                reset_method: self
                    .attr(&addr, "reset_method")
                    .map(|s| s.split_whitespace().map(str::to_string).collect())
                    .unwrap_or_default(),
                boot_vga: self.attr(&addr, "boot_vga").map(|v| v == "1"),
                physfn: d.physfn.map(|p| p.to_string()),
                sriov_totalvfs: d.sriov_totalvfs.unwrap_or(0) as u16,
                net,
                block: Vec::new(),
                framebuffer: None,
                mdev,
                pcie: extras.pcie.map(pcie_spec),
                vpd: extras.vpd.map(vpd_spec),
            });
        }
        // Stub drivers come last in probe order: they match only by override.
        drivers.sort_by_key(|d| STUB_DRIVERS.contains(&d.name.as_str()));
        let under_xen = self.sysfs.read("hypervisor/type").is_ok_and(|t| t.trim() == "xen");
        for stub in [Stub::Vfio, Stub::Kvm, Stub::Xen] {
            let name = stub.kernel_drivers()[0];
            if !drivers.iter().any(|d| stub.kernel_drivers().contains(&d.name.as_str())) {
                drivers.push(DriverSpec {
                    name: name.to_string(),
                    module: Some(stub.module().replace('-', "_")),
                    loaded: false,
                    available: stub != Stub::Xen || under_xen,
                    ids: Vec::new(),
                    classes: Vec::new(),
                    vfio_aliases: Vec::new(),
                });
            }
        }
        // modules.alias's vfio_pci: lines, with their modules: a variant
        // driver not loaded here is described unloaded, named as its module.
        for alias in self.sysfs.vfio_aliases().unwrap_or_default() {
            let module_of = |d: &DriverSpec| d.module.clone().unwrap_or_else(|| d.name.replace('-', "_"));
            let i = match drivers.iter().position(|d| module_of(d) == alias.module) {
                Some(i) => i,
                None => {
                    drivers.push(DriverSpec {
                        name: alias.module.clone(),
                        module: None,
                        loaded: false,
                        available: true,
                        ids: Vec::new(),
                        classes: Vec::new(),
                        vfio_aliases: Vec::new(),
                    });
                    drivers.len() - 1
                }
            };
            drivers[i].vfio_aliases.push(alias.pattern);
        }
        let iommu = self.sysfs.list_dir("kernel/iommu_groups").map(|g| !g.is_empty()).unwrap_or(false);
        let dmi = DmiSpec {
            sys_vendor: self.dmi("sys_vendor"),
            product_name: self.dmi("product_name"),
            product_version: self.dmi("product_version"),
            product_serial: self.dmi("product_serial"),
            product_uuid: self.dmi("product_uuid"),
            bios_vendor: self.dmi("bios_vendor"),
            bios_version: self.dmi("bios_version"),
            bios_date: self.dmi("bios_date"),
        };
        let dmi = (dmi != DmiSpec::default()).then_some(dmi);
        Ok(HostSpec { driver_override, iommu, drivers, devices, dmi, ..HostSpec::default() })
    }
}

// ---- libvirt's device tree (tree): what the XML shows, written back down ----

fn pcie_spec(p: crate::host::PcieInfo) -> PcieSpec {
    match p.link {
        None => PcieSpec { integrated: true, ..PcieSpec::default() },
        Some((cap, sta)) => PcieSpec {
            integrated: false,
            port: cap.port.unwrap_or(0),
            max_speed: cap.speed.map(str::to_string),
            max_width: cap.width.min(32) as u8,
            speed: sta.speed.map(str::to_string),
            width: sta.width.min(cap.width).min(32) as u8,
        },
    }
}

fn vpd_spec(v: crate::host::Vpd) -> VpdSpec {
    let pairs = |f: Option<crate::host::VpdFields>, readonly: bool| {
        let Some(f) = f else { return Vec::new() };
        let mut out: Vec<(String, String)> = Vec::new();
        let named = if readonly {
            vec![("EC", f.change_level), ("MN", f.manufacture_id), ("PN", f.part_number), ("SN", f.serial_number)]
        } else {
            vec![("YA", f.asset_tag)]
        };
        out.extend(named.into_iter().filter_map(|(k, v)| Some((k.to_string(), v?))));
        out.extend(f.vendor.into_iter().map(|(i, v)| (format!("V{i}"), v)));
        out.extend(f.system.into_iter().map(|(i, v)| (format!("Y{i}"), v)));
        out
    };
    VpdSpec {
        name: v.name.unwrap_or_default(),
        readonly: pairs(v.readonly, true),
        readwrite: pairs(v.readwrite, false),
    }
}
