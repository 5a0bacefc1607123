//! Who holds a device through VFIO, from /proc: every process's fd links.
//!
//! A holder has an fd whose link is `/dev/vfio/N` (the group), 
//! `/dev/vfio/devices/vfioX` (the cdev), or `anon_inode:[vfio-device]` (a
//! device fd from VFIO_GROUP_GET_DEVICE_FD). Since Linux 6.18 a device fd's
//! fdinfo names the device (`vfio-device-syspath: /sys/devices/.../ADDR`);
//! before, it does not, and a device fd counts when the same process also
//! holds the device's group.
//!
//! One readlink per fd, an fdinfo read only for VFIO device fds: cheap
//! enough to run before every change (BENCHMARKS.md has the figure).

use super::{HoldKind, Holder, HolderScan, VfioDevice};
use std::fs;
use std::io;
use std::path::Path;

/// The fdinfo line naming a VFIO device fd's device (Linux >= 6.18).
const SYSPATH_KEY: &str = "vfio-device-syspath:";
const DEVICE_FD_LINK: &str = "anon_inode:[vfio-device]";

/// What one fd says about the device.
enum Seen {
    Holds(HoldKind),
    /// A device fd whose fdinfo does not name its device (kernel < 6.18).
    UnnamedDeviceFd,
    Nothing,
}

fn classify(proc_root: &Path, pid: &str, fd: &str, link: &str, dev: &VfioDevice<'_>) -> Seen {
    if let Some(rest) = link.strip_prefix("/dev/vfio/") {
        if let Some(c) = rest.strip_prefix("devices/") {
            return if dev.cdev == Some(c) { Seen::Holds(HoldKind::Cdev) } else { Seen::Nothing };
        }
        return match dev.group {
            Some(g) if rest == g.to_string() => Seen::Holds(HoldKind::Group),
            _ => Seen::Nothing,
        };
    }
    if link != DEVICE_FD_LINK {
        return Seen::Nothing;
    }
    let info = fs::read_to_string(proc_root.join(pid).join("fdinfo").join(fd)).unwrap_or_default();
    match info.lines().find_map(|l| l.strip_prefix(SYSPATH_KEY)) {
        Some(path) if path.trim().rsplit('/').next() == Some(dev.address) => Seen::Holds(HoldKind::Device),
        Some(_) => Seen::Nothing,
        None => Seen::UnnamedDeviceFd,
    }
}

/// Scan every process under `proc_root` (normally /proc).
pub fn scan(proc_root: &Path, dev: &VfioDevice<'_>) -> io::Result<HolderScan> {
    let mut out = HolderScan::default();
    for entry in fs::read_dir(proc_root)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
        let fd_dir = proc_root.join(pid).join("fd");
        let fds = match fs::read_dir(&fd_dir) {
            Ok(f) => f,
            // Gone meanwhile (or a kernel thread's empty table): not a holder.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) => {
                out.uninspected += 1;
                continue;
            }
            Err(_) => continue,
        };
        let mut kinds: Vec<HoldKind> = Vec::new();
        let mut unnamed_device_fd = false;
        for fd in fds.flatten() {
            let fd_name = fd.file_name();
            let Some(fd_name) = fd_name.to_str() else { continue };
            let Ok(link) = fs::read_link(fd_dir.join(fd_name)) else { continue };
            let Some(link) = link.to_str() else { continue };
            match classify(proc_root, pid, fd_name, link, dev) {
                Seen::Holds(k) if !kinds.contains(&k) => kinds.push(k),
                Seen::UnnamedDeviceFd => unnamed_device_fd = true,
                _ => {}
            }
        }
        // Before 6.18 a device fd does not say whose it is: with the group
        // open in the same process it is taken for this device's.
        if unnamed_device_fd && kinds.contains(&HoldKind::Group) {
            kinds.push(HoldKind::Device);
        }
        if kinds.is_empty() {
            continue;
        }
        let comm = fs::read_to_string(proc_root.join(pid).join("comm")).map(|c| c.trim_end().to_string());
        let pid: u32 = pid.parse().unwrap_or(0);
        // The strongest hold names it: a device fd or cdev keeps an unbind waiting.
        kinds.sort_by_key(|k| match k {
            HoldKind::Device => 0,
            HoldKind::Cdev => 1,
            HoldKind::Group => 2,
        });
        out.holders.push(Holder { pid, comm: comm.unwrap_or_else(|_| "?".into()), kind: kinds[0] });
    }
    out.holders.sort_by_key(|h| h.pid);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fake /proc: pid -> (comm, [(fd, link, fdinfo)]).
    fn fake(tag: &str, procs: &[(&str, &str, &[(&str, &str, &str)])]) -> std::path::PathBuf {
        let root = std::env::temp_dir().join(format!("nodedev-holders-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for (pid, comm, fds) in procs {
            let p = root.join(pid);
            fs::create_dir_all(p.join("fd")).unwrap();
            fs::create_dir_all(p.join("fdinfo")).unwrap();
            fs::write(p.join("comm"), format!("{comm}\n")).unwrap();
            for (fd, link, info) in *fds {
                symlink(link, p.join("fd").join(fd)).unwrap();
                fs::write(p.join("fdinfo").join(fd), info).unwrap();
            }
        }
        fs::create_dir_all(root.join("self")).unwrap();
        root
    }

    const DEV: VfioDevice<'static> = VfioDevice { address: "0000:04:10.0", group: Some(12), cdev: Some("vfio0") };

    #[test]
    fn groups_cdevs_and_named_device_fds_are_holders() {
        let named = "pos: 0\nvfio-device-syspath: /sys/devices/pci0000:00/0000:00:1c.0/0000:04:10.0\n";
        let other = "pos: 0\nvfio-device-syspath: /sys/devices/pci0000:00/0000:00:1c.0/0000:04:10.2\n";
        let root = fake(
            "kinds",
            &[
                ("100", "qemu-system-x86", &[("3", "/dev/vfio/12", ""), ("4", "/dev/null", "")]),
                ("200", "dpdk", &[("5", "/dev/vfio/devices/vfio0", "")]),
                ("300", "cloud-hv", &[("7", DEVICE_FD_LINK, named)]),
                ("400", "other-guest", &[("7", DEVICE_FD_LINK, other), ("8", "/dev/vfio/13", "")]),
                ("500", "bash", &[("0", "/dev/pts/0", "")]),
            ],
        );
        let s = scan(&root, &DEV).unwrap();
        let got: Vec<(u32, &str, HoldKind)> = s.holders.iter().map(|h| (h.pid, h.comm.as_str(), h.kind)).collect();
        assert_eq!(
            got,
            vec![(100, "qemu-system-x86", HoldKind::Group), (200, "dpdk", HoldKind::Cdev), (300, "cloud-hv", HoldKind::Device)]
        );
        assert_eq!(s.uninspected, 0);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_unnamed_device_fd_counts_only_beside_the_group() {
        let root = fake(
            "old",
            &[
                ("100", "qemu", &[("3", "/dev/vfio/12", ""), ("9", DEVICE_FD_LINK, "pos: 0\n")]),
                ("200", "elsewhere", &[("9", DEVICE_FD_LINK, "pos: 0\n")]),
            ],
        );
        let s = scan(&root, &DEV).unwrap();
        assert_eq!(s.holders.len(), 1);
        assert_eq!((s.holders[0].pid, s.holders[0].kind), (100, HoldKind::Device));
        fs::remove_dir_all(&root).unwrap();
    }
}
