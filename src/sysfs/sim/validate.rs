//! From a host description to a kernel, refusing descriptions no real
//! machine could have. Every error names the entry and the field.

use super::spec::{class_prefix, hex_field, id_pair, HostSpec};
use super::{Addr, Dev, Drv, Kernel};
use std::collections::BTreeMap;

/// What the kernel can list in reset_method.
const RESET_METHODS: [&str; 7] = ["device_specific", "acpi", "flr", "af_flr", "pm", "bus", "cxl_bus"];

/// Driver and module names: what may appear as one sysfs path component.
fn good_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

pub(super) fn build_kernel(spec: HostSpec) -> Result<Kernel, String> {
    let mut drivers: Vec<Drv> = Vec::new();
    for (i, d) in spec.drivers.iter().enumerate() {
        let at = format!("drivers[{i}] ({})", d.name);
        if !good_name(&d.name) {
            return Err(format!(
                "{at}.name: '{}' is not a driver name (letters, digits, '-', '_', '.')",
                d.name.escape_debug()
            ));
        }
        if drivers.iter().any(|o| o.name == d.name) {
            return Err(format!("{at}.name: driver '{}' is listed twice", d.name));
        }
        let module = d.module.clone().unwrap_or_else(|| d.name.clone()).replace('-', "_");
        if !good_name(&module) {
            return Err(format!("{at}.module: '{}' is not a module name", module.escape_debug()));
        }
        let ids = d
            .ids
            .iter()
            .map(|s| {
                id_pair(s).ok_or_else(|| {
                    format!("{at}.ids: '{}' is not an id like \"8086:10d3\" (lower-case hex, no 0x)", s.escape_debug())
                })
            })
            .collect::<Result<_, _>>()?;
        let classes = d
            .classes
            .iter()
            .map(|s| {
                class_prefix(s).ok_or_else(|| {
                    format!(
                        "{at}.classes: '{}' is not a class prefix like \"0x0604\" or \"0x010802\"",
                        s.escape_debug()
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        let alias_ok = |a: &str| {
            a.strip_prefix(crate::sysfs::modalias::VFIO_PREFIX).and_then(crate::sysfs::modalias::pci_fields).is_some()
        };
        if let Some(bad) = d.vfio_aliases.iter().find(|a| !alias_ok(a)) {
            return Err(format!(
                "{at}.vfio_aliases: '{}' is not a modules.alias pattern like \"vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i*\"",
                bad.escape_debug()
            ));
        }
        drivers.push(Drv {
            vfio_aliases: d.vfio_aliases.clone(),
            name: d.name.clone(),
            module,
            loaded: d.loaded,
            available: d.available || d.loaded,
            ids,
            classes,
            dynids: Vec::new(),
        });
    }

    let mut devs: BTreeMap<Addr, Dev> = BTreeMap::new();
    let mut places: BTreeMap<Addr, String> = BTreeMap::new();
    for (i, d) in spec.devices.iter().enumerate() {
        let at = format!("devices[{i}] ({})", d.address);
        let addr = Addr::parse(&d.address).ok_or_else(|| {
            format!(
                "devices[{i}].address: '{}' is not a PCI address like \"0000:03:00.0\" (lower-case hex)",
                d.address.escape_debug()
            )
        })?;
        if devs.contains_key(&addr) {
            return Err(format!("{at}.address: {addr} is listed twice"));
        }
        let hex = |field: &str, value: &str, digits: usize| {
            hex_field(value, digits).ok_or_else(|| {
                let like = if digits == 4 { "0x8086" } else { "0x020000" };
                format!(
                    "{at}.{field}: '{}' is not a hex number of up to {digits} digits like \"{like}\"",
                    value.escape_debug()
                )
            })
        };
        let opt_hex = |field: &str, value: &Option<String>| value.as_deref().map_or(Ok(0), |v| hex(field, v, 4));
        let class = hex("class", &d.class, 6)?;
        let addr_field = |field: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| {
                    Addr::parse(v).ok_or_else(|| {
                        format!("{at}.{field}: '{}' is not a PCI address like \"0000:00:1c.0\"", v.escape_debug())
                    })
                })
                .transpose()
        };
        let driver = match &d.driver {
            None => None,
            Some(name) => Some(drivers.iter().position(|x| x.loaded && x.name == *name).ok_or_else(|| {
                let loaded: Vec<&str> = drivers.iter().filter(|x| x.loaded).map(|x| x.name.as_str()).collect();
                format!("{at}.driver: '{}' is not a loaded driver (loaded: {})", name.escape_debug(), loaded.join(", "))
            })?),
        };
        if d.numa_node < -1 {
            return Err(format!("{at}.numa_node: {} is not a node (-1 for none)", d.numa_node));
        }
        for (j, m) in d.reset_method.iter().enumerate() {
            if !RESET_METHODS.contains(&m.as_str()) {
                return Err(format!(
                    "{at}.reset_method: '{}' is not a reset method ({})",
                    m.escape_debug(),
                    RESET_METHODS.join(", ")
                ));
            }
            if d.reset_method[..j].contains(m) {
                return Err(format!("{at}.reset_method: '{m}' is listed twice"));
            }
        }
        if d.boot_vga == Some(true) && class >> 8 != 0x0300 {
            return Err(format!("{at}.boot_vga: only VGA devices (class 0x0300xx) can be the boot VGA"));
        }
        let reset_supported = d.reset_method.clone();
        if let Some(p) = &d.pcie {
            for s in [&p.max_speed, &p.speed].into_iter().flatten() {
                if super::identity::speed_code(s).is_none() {
                    return Err(format!("{at}.pcie: speed '{}' is not one of 2.5, 5, 8, 16, 32, 64", s.escape_debug()));
                }
            }
            if p.max_width > 32 || p.width > p.max_width {
                return Err(format!("{at}.pcie: widths {} of {} are not a PCIe link's", p.width, p.max_width));
            }
        }
        let vpd = match &d.vpd {
            Some(v) => Some(super::identity::encode_vpd(v).map_err(|e| format!("{at}.{e}"))?),
            None => None,
        };
        devs.insert(
            addr,
            Dev {
                addr,
                vendor: hex("vendor", &d.vendor, 4)? as u16,
                device: hex("device", &d.device, 4)? as u16,
                subsystem_vendor: opt_hex("subsystem_vendor", &d.subsystem_vendor)? as u16,
                subsystem_device: opt_hex("subsystem_device", &d.subsystem_device)? as u16,
                class,
                vendor_name: d.vendor_name.clone(),
                product_name: d.product_name.clone(),
                parent: addr_field("parent", &d.parent)?,
                group: d.iommu_group.filter(|_| spec.iommu),
                numa_node: d.numa_node,
                reset_methods: reset_supported.clone(),
                reset_supported,
                boot_vga: d.boot_vga.unwrap_or(false),
                physfn: addr_field("physfn", &d.physfn)?,
                totalvfs: d.sriov_totalvfs,
                created: false,
                present: true,
                driver,
                driver_override: None,
                numvfs: 0,
                sriov_autoprobe: true,
                resets: 0,
                locked: false,
                pcie: d.pcie.clone(),
                vpd,
            },
        );
        places.insert(addr, at);
    }

    // Relations between devices, now that all are known.
    for (a, dev) in &devs {
        let at = &places[a];
        if let Some(p) = dev.parent {
            let parent = devs.get(&p).ok_or_else(|| format!("{at}.parent: {p} is not a listed device"))?;
            if !parent.is_bridge() {
                return Err(format!(
                    "{at}.parent: {p} is not a bridge (class 0x0604xx or 0x0607xx) but 0x{:06x}",
                    parent.class
                ));
            }
            let mut seen = vec![*a];
            let mut up = Some(p);
            while let Some(u) = up {
                if seen.contains(&u) {
                    return Err(format!("{at}.parent: the parents of {a} form a loop"));
                }
                seen.push(u);
                up = devs[&u].parent;
            }
        }
        if let Some(pf) = dev.physfn {
            let p = devs.get(&pf).ok_or_else(|| format!("{at}.physfn: {pf} is not a listed device"))?;
            if p.totalvfs == 0 {
                return Err(format!("{at}.physfn: {pf} is not an SR-IOV PF (its sriov_totalvfs is 0)"));
            }
            if dev.totalvfs > 0 {
                return Err(format!("{at}.sriov_totalvfs: a VF cannot be a PF itself"));
            }
            if dev.parent != p.parent {
                return Err(format!(
                    "{at}.parent: a VF sits beside its PF, under {}",
                    p.parent.map_or("the root bus".into(), |x| x.to_string())
                ));
            }
        }
        if dev.totalvfs > 0 {
            let vfs = devs.values().filter(|v| v.physfn == Some(*a)).count();
            if vfs > usize::from(dev.totalvfs) {
                return Err(format!("{at}.sriov_totalvfs: {} but {vfs} VFs name it as physfn", dev.totalvfs));
            }
        }
    }
    for pf in devs.values().filter(|d| d.totalvfs > 0).map(|d| d.addr).collect::<Vec<_>>() {
        let vfs = devs.values().filter(|v| v.physfn == Some(pf)).count();
        devs.get_mut(&pf).expect("listed").numvfs = vfs as u16;
    }

    let uses = super::hostuse::build(&spec, &devs)?;
    let mut kernel = Kernel {
        has_driver_override: spec.driver_override,
        iommu: spec.iommu,
        autoprobe: true,
        modules_allowed: true,
        drivers,
        devs,
        writes: Vec::new(),
        binds: Vec::new(),
        faults: Vec::new(),
        roots: Default::default(),
        misprobes: Vec::new(),
        removals: Vec::new(),
        holders: Vec::new(),
        uninspectable: 0,
        uses,
        mdev_parents: Default::default(),
        mdevs: Vec::new(),
        dmi: spec.dmi.clone(),
        unprivileged: spec.unprivileged,
        listeners: Vec::new(),
        seqnum: 0,
        uevent_buffer: super::uevent::QUEUE_LIMIT,
    };
    kernel.mdev_parents = mdev_parents(&spec, &kernel)?;
    kernel.roots = kernel.devs.values().filter(|d| !d.created).map(|d| kernel.root_of(d.addr)).collect();
    for (i, h) in spec.vfio_holders.iter().enumerate() {
        let at = format!("vfio_holders[{i}] (pid {})", h.pid);
        let a = Addr::parse(&h.device)
            .filter(|a| kernel.devs.contains_key(a))
            .ok_or_else(|| format!("{at}.device: '{}' is not a device of this host", h.device.escape_debug()))?;
        let dev = kernel.dev(a);
        if !dev.driver.is_some_and(|d| super::is_vfio_driver(&kernel.drivers[d].name)) || dev.group.is_none() {
            return Err(format!("{at}.device: {a} is not on a VFIO driver with an IOMMU group, so it cannot be held"));
        }
        if h.comm.is_empty() || h.comm.len() > 15 {
            return Err(format!("{at}.comm: 1 to 15 characters, as the kernel keeps a command name"));
        }
        kernel.holders.push(super::SimHolder {
            pid: h.pid,
            comm: h.comm.clone(),
            addr: a,
            kind: h.holds,
            hidden: h.hidden,
            mdev: None,
        });
    }
    Ok(kernel)
}

/// The mdev parents of the description: `devices[i].mdev`.
fn mdev_parents(spec: &HostSpec, kernel: &Kernel) -> Result<BTreeMap<Addr, super::mdev::MdevParent>, String> {
    let mut out = BTreeMap::new();
    for (i, d) in spec.devices.iter().enumerate() {
        let Some(m) = &d.mdev else { continue };
        let at = format!("devices[{i}] ({}).mdev", d.address);
        let addr = Addr::parse(&d.address).expect("checked above");
        let driver = m.driver.clone().or_else(|| d.driver.clone()).ok_or_else(|| {
            format!("{at}.driver: the device has no driver, so name the one that registers it with the mdev core")
        })?;
        if !kernel.drivers.iter().any(|x| x.name == driver) {
            return Err(format!("{at}.driver: '{}' is not a listed driver", driver.escape_debug()));
        }
        if m.types.is_empty() {
            return Err(format!("{at}.types: a parent offers at least one type"));
        }
        let mut types: Vec<super::mdev::MdevType> = Vec::new();
        for (j, t) in m.types.iter().enumerate() {
            let tat = format!("{at}.types[{j}]");
            if !good_name(&t.id) || t.id.len() > 64 {
                return Err(format!("{tat}.id: '{}' is not a type directory name", t.id.escape_debug()));
            }
            if types.iter().any(|o| o.id == t.id) {
                return Err(format!("{tat}.id: '{}' is listed twice", t.id));
            }
            if t.cost == 0 || t.cost > m.capacity {
                return Err(format!("{tat}.cost: 1 to the parent's capacity ({})", m.capacity));
            }
            let text_ok = |s: &str| !s.contains('\n') && s.len() <= 256;
            if !text_ok(&t.name) || !text_ok(&t.device_api) || t.description.len() > 4096 {
                return Err(format!("{tat}: name and device_api are one line, description at most 4096 bytes"));
            }
            types.push(super::mdev::MdevType {
                id: t.id.clone(),
                name: t.name.clone(),
                description: t.description.clone(),
                device_api: t.device_api.clone(),
                cost: t.cost,
            });
        }
        out.insert(addr, super::mdev::MdevParent { driver, capacity: m.capacity, types });
    }
    Ok(out)
}
