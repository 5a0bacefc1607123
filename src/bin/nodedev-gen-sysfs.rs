//! nodedev-gen-sysfs: write a sysfs-shaped tree of N PCI functions, for
//! benchmarks (bench/run.sh) and tests that read a large host.
//!
//!   nodedev-gen-sysfs N OUTDIR
//!
//! The host is described (OUTDIR/host.json, the test:///PATH.json format)
//! and the simulated kernel's own file tree is written out under OUTDIR/sys,
//! so what nodedev reads there is what it reads from the simulation; the
//! files real tools also need and the simulation does not model (config
//! space, resource, irq, modalias, ...) are added with plausible contents.
//!
//! The mix, repeated until N functions exist, each behind its own root port
//! (pcieport, one group each): a GPU with its audio function (one group); a
//! conventional PCI bridge with two NICs sharing its group, or an NVMe
//! drive; then two SR-IOV NICs with two PFs (i40e) and up to 63 VFs each
//! (iavf, one in eight already on vfio-pci, a group each).

use nodedev::sysfs::sim::{DeviceSpec, DriverSpec, HostSpec, SimKernel};
use nodedev::sysfs::Sysfs;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::ExitCode;

fn device(
    address: String,
    vendor: u16,
    device: u16,
    class: u32,
    driver: Option<&str>,
    group: u32,
    parent: Option<String>,
) -> DeviceSpec {
    DeviceSpec {
        address,
        vendor: format!("0x{vendor:04x}"),
        device: format!("0x{device:04x}"),
        subsystem_vendor: Some(format!("0x{vendor:04x}")),
        subsystem_device: Some("0x0000".into()),
        class: format!("0x{class:06x}"),
        vendor_name: None,
        product_name: None,
        driver: driver.map(str::to_string),
        iommu_group: Some(group),
        parent,
        numa_node: 0,
        reset_method: vec!["flr".into()],
        boot_vga: None,
        physfn: None,
        sriov_totalvfs: 0,
        net: Vec::new(),
        block: Vec::new(),
        framebuffer: None,
        mdev: None,
        pcie: None,
        vpd: None,
    }
}

fn drivers() -> Vec<DriverSpec> {
    let d = |name: &str, ids: &[&str], classes: &[&str]| DriverSpec {
        name: name.into(),
        module: None,
        loaded: true,
        available: true,
        ids: ids.iter().map(|s| s.to_string()).collect(),
        classes: classes.iter().map(|s| s.to_string()).collect(),
        vfio_aliases: Vec::new(),
    };
    vec![
        d("pcieport", &["8086:a110", "8086:244e"], &[]),
        d("i40e", &["8086:1572"], &[]),
        d("iavf", &["8086:154c"], &[]),
        d("nouveau", &["10de:1b81"], &[]),
        d("snd_hda_intel", &["10de:10f0"], &[]),
        d("nvme", &[], &["0x010802"]),
        d("e1000", &["8086:100e"], &[]),
        d("vfio-pci", &[], &[]),
        d("pci-stub", &[], &[]),
    ]
}

/// A host with (about) `n` functions.
fn host(n: usize) -> HostSpec {
    let mut devs = vec![device("0000:00:00.0".into(), 0x8086, 0x29c0, 0x060000, None, 0, None)];
    let mut group = 1;
    let mut bus = 1u32;
    let mut kind = 0;
    let addr = |bus: u32, slot: u32, func: u32| format!("0000:{bus:02x}:{slot:02x}.{func:x}");
    'ports: for slot in 1..32u32 {
        for func in 0..8u32 {
            if devs.len() >= n || bus > 0xfe {
                break 'ports;
            }
            let port = addr(0, slot, func);
            devs.push(device(port.clone(), 0x8086, 0xa110, 0x060400, Some("pcieport"), group, None));
            group += 1;
            let left = n - devs.len();
            match kind % 4 {
                // SR-IOV NIC: two PFs, VFs behind them on the same bus.
                2 | 3 => {
                    let vfs_each = ((left.saturating_sub(2)) / 2).min(63) as u32;
                    let mut pfs = Vec::new();
                    for pf in 0..2u32.min(left as u32) {
                        let mut d =
                            device(addr(bus, 0, pf), 0x8086, 0x1572, 0x020000, Some("i40e"), group, Some(port.clone()));
                        d.sriov_totalvfs = 64;
                        group += 1;
                        pfs.push(d.address.clone());
                        devs.push(d);
                    }
                    for (p, pf) in pfs.iter().enumerate() {
                        for v in 0..vfs_each {
                            // VF routing ids: PF + offset 16 + stride 1, in 64-function blocks.
                            let rid = 16 + p as u32 * 64 + v;
                            let driver = if v % 8 == 7 { "vfio-pci" } else { "iavf" };
                            let mut d = device(
                                addr(bus, rid >> 3, rid & 7),
                                0x8086,
                                0x154c,
                                0x020000,
                                Some(driver),
                                group,
                                Some(port.clone()),
                            );
                            d.physfn = Some(pf.clone());
                            group += 1;
                            devs.push(d);
                        }
                    }
                }
                // GPU with its audio function: one group.
                0 => {
                    devs.push(device(
                        addr(bus, 0, 0),
                        0x10de,
                        0x1b81,
                        0x030000,
                        Some("nouveau"),
                        group,
                        Some(port.clone()),
                    ));
                    if left > 1 {
                        devs.push(device(
                            addr(bus, 0, 1),
                            0x10de,
                            0x10f0,
                            0x040300,
                            Some("snd_hda_intel"),
                            group,
                            Some(port.clone()),
                        ));
                    }
                    group += 1;
                }
                // NVMe, or a conventional bridge with two NICs sharing its group.
                _ if kind % 8 == 5 => {
                    devs.push(device(
                        addr(bus, 0, 0),
                        0x144d,
                        0xa808,
                        0x010802,
                        Some("nvme"),
                        group,
                        Some(port.clone()),
                    ));
                    group += 1;
                }
                _ => {
                    let bridge = addr(bus, 0, 0);
                    devs.push(device(bridge.clone(), 0x8086, 0x244e, 0x060400, None, group, Some(port.clone())));
                    bus += 1;
                    for s in 1..3u32 {
                        if devs.len() < n {
                            devs.push(device(
                                addr(bus, s, 0),
                                0x8086,
                                0x100e,
                                0x020000,
                                Some("e1000"),
                                group,
                                Some(bridge.clone()),
                            ));
                        }
                    }
                    group += 1;
                }
            }
            bus += 1;
            kind += 1;
        }
    }
    // Every reference (parent, physfn) points backwards, so cutting the tail is safe.
    devs.truncate(n);
    HostSpec { driver_override: true, iommu: true, drivers: drivers(), devices: devs, ..HostSpec::default() }
}

/// Write the simulated kernel's tree at `rel` (a directory) into `out`.
fn materialize(sim: &SimKernel, rel: &str, out: &Path) -> io::Result<usize> {
    let mut count = 0;
    for name in sim.list_dir(rel)? {
        let path = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
        let dest = out.join(&path);
        if let Ok(target) = sim.read_link(&path) {
            symlink(target, &dest)?;
        } else if sim.list_dir(&path).is_ok() {
            fs::create_dir_all(&dest)?;
            count += materialize(sim, &path, out)?;
        } else {
            match sim.read(&path) {
                Ok(text) => fs::write(&dest, text)?,
                Err(_) => {
                    // Write-only attributes (bind, unbind, ...).
                    fs::write(&dest, "")?;
                    fs::set_permissions(&dest, fs::Permissions::from_mode(0o200))?;
                }
            }
        }
        count += 1;
    }
    Ok(count)
}

/// The files real tools read that the simulation does not model.
fn add_hardware_files(sim: &SimKernel, sys: &Path, spec: &HostSpec) -> io::Result<()> {
    for d in &spec.devices {
        let canonical = sim.read_link(&format!("bus/pci/devices/{}", d.address))?;
        let dir = sys.join("bus/pci/devices").join(&canonical);
        let hex = |s: &str| u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or(0);
        let (vendor, device, class) = (hex(&d.vendor), hex(&d.device), hex(&d.class));
        let bridge = class >> 8 == 0x0604;
        let mut config = [0u8; 256];
        config[0..2].copy_from_slice(&(vendor as u16).to_le_bytes());
        config[2..4].copy_from_slice(&(device as u16).to_le_bytes());
        config[4] = 0x07; // command: I/O, memory, bus master
        config[6] = 0x10; // status: capability list
        config[9..12].copy_from_slice(&class.to_le_bytes()[0..3]);
        config[0x0e] = if bridge { 0x01 } else { 0x00 };
        if !bridge {
            config[0x2c..0x2e].copy_from_slice(&(vendor as u16).to_le_bytes());
        }
        fs::write(dir.join("config"), config)?;
        fs::write(dir.join("irq"), "0\n")?;
        fs::write(dir.join("resource"), "0x0000000000000000 0x0000000000000000 0x0000000000000000\n".repeat(13))?;
        fs::write(
            dir.join("modalias"),
            format!(
                "pci:v{vendor:08X}d{device:08X}sv{vendor:08X}sd00000000bc{:02X}sc{:02X}i{:02X}\n",
                class >> 16,
                (class >> 8) & 0xff,
                class & 0xff
            ),
        )?;
        fs::write(dir.join("enable"), "1\n")?;
        fs::write(dir.join("local_cpulist"), "0-1\n")?;
        fs::write(dir.join("revision"), "0x01\n")?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(n), Some(out)) = (args.first().and_then(|n| n.parse::<usize>().ok()), args.get(1)) else {
        eprintln!("usage: nodedev-gen-sysfs N OUTDIR");
        return ExitCode::from(2);
    };
    let out = Path::new(out);
    let run = || -> Result<(usize, usize), String> {
        let spec = host(n);
        let functions = spec.devices.len();
        let sim = SimKernel::from_spec(spec.clone())?;
        let sys = out.join("sys");
        if sys.exists() {
            fs::remove_dir_all(&sys).map_err(|e| e.to_string())?;
        }
        fs::create_dir_all(&sys).map_err(|e| e.to_string())?;
        let files = materialize(&sim, "", &sys).map_err(|e| e.to_string())?;
        add_hardware_files(&sim, &sys, &spec).map_err(|e| e.to_string())?;
        let json = serde_json::to_string_pretty(&spec).map_err(|e| e.to_string())?;
        fs::File::create(out.join("host.json"))
            .and_then(|mut f| f.write_all(json.as_bytes()))
            .map_err(|e| e.to_string())?;
        Ok((functions, files))
    };
    match run() {
        Ok((functions, files)) => {
            println!("{functions} PCI functions, {files} sysfs entries under {}", out.join("sys").display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nodedev-gen-sysfs: {e}");
            ExitCode::from(1)
        }
    }
}
