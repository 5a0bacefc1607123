//! Who holds a device through VFIO, from /proc: every process's fds.
//!
//! A holder has an fd on the device's group node (`/dev/vfio/N`, or
//! `/dev/vfio/noiommu-N` in no-IOMMU mode), on its cdev
//! (`/dev/vfio/devices/vfioX`), or a device fd (`anon_inode:[vfio-device]`,
//! from VFIO_GROUP_GET_DEVICE_FD). Nodes are matched by device number
//! (stat of the fd against the numbers in /sys/class/vfio and
//! /sys/class/vfio-dev), so a node unlinked since ("... (deleted)") or made
//! at another path counts too; the link text is the fallback when the
//! numbers cannot be read. Since Linux 6.18 a device fd's fdinfo names the
//! device (`vfio-device-syspath: /sys/devices/.../ADDR`); before, it does
//! not: beside the device's group in the same process it is taken for this
//! device's, and alone it is reported as possibly this device's
//! (`HoldKind::UnnamedDevice`), for every device asked about.
//!
//! A process whose main thread exited shows an empty /proc/PID/fd; its fds
//! are then read from /proc/PID/task/TID/fd.
//!
//! One readlink and one stat per fd, an fdinfo read only for VFIO device
//! fds: cheap enough to run before every change (BENCHMARKS.md has the figure).

use super::{HoldKind, Holder, HolderScan, VfioDevice};
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

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

/// Device numbers of the device's VFIO nodes, as the kernel registered them.
#[derive(Debug, Default, Clone, Copy)]
pub struct NodeNumbers {
    pub group: Option<libc::dev_t>,
    pub cdev: Option<libc::dev_t>,
}

fn dev_number(path: &Path) -> Option<libc::dev_t> {
    let text = fs::read_to_string(path).ok()?;
    let (major, minor) = text.trim().split_once(':')?;
    Some(libc::makedev(major.parse().ok()?, minor.parse().ok()?))
}

impl NodeNumbers {
    /// From a sysfs tree (normally /sys): class/vfio/{N,noiommu-N}/dev and class/vfio-dev/X/dev.
    pub fn read(sys_root: &Path, dev: &VfioDevice<'_>) -> NodeNumbers {
        let group = dev.group.and_then(|g| {
            dev_number(&sys_root.join(format!("class/vfio/{g}/dev")))
                .or_else(|| dev_number(&sys_root.join(format!("class/vfio/noiommu-{g}/dev"))))
        });
        let cdev = dev.cdev.and_then(|c| dev_number(&sys_root.join(format!("class/vfio-dev/{c}/dev"))));
        NodeNumbers { group, cdev }
    }
}

/// The fd's node by device number: Some when that decides it.
fn by_number(fd_path: &Path, nodes: &NodeNumbers) -> Option<Seen> {
    let m = fs::metadata(fd_path).ok()?;
    if !m.file_type().is_char_device() {
        return None;
    }
    let rdev = m.rdev() as libc::dev_t;
    if nodes.group == Some(rdev) {
        return Some(Seen::Holds(HoldKind::Group));
    }
    if nodes.cdev == Some(rdev) {
        return Some(Seen::Holds(HoldKind::Cdev));
    }
    // Another node of the same driver (another group or cdev): not this device's.
    let major = libc::major(rdev);
    [nodes.group, nodes.cdev].iter().flatten().any(|n| libc::major(*n) == major).then_some(Seen::Nothing)
}

fn classify(fd_path: &Path, fdinfo_path: &Path, link: &str, dev: &VfioDevice<'_>, nodes: &NodeNumbers) -> Seen {
    if let Some(seen) = by_number(fd_path, nodes) {
        return seen;
    }
    // The link text, when the numbers cannot tell.
    let path = link.strip_suffix(" (deleted)").unwrap_or(link);
    if let Some(rest) = path.strip_prefix("/dev/vfio/") {
        if let Some(c) = rest.strip_prefix("devices/") {
            return if dev.cdev == Some(c) { Seen::Holds(HoldKind::Cdev) } else { Seen::Nothing };
        }
        let rest = rest.strip_prefix("noiommu-").unwrap_or(rest);
        return match dev.group {
            Some(g) if rest == g.to_string() => Seen::Holds(HoldKind::Group),
            _ => Seen::Nothing,
        };
    }
    if link != DEVICE_FD_LINK {
        return Seen::Nothing;
    }
    let info = fs::read_to_string(fdinfo_path).unwrap_or_default();
    match info.lines().find_map(|l| l.strip_prefix(SYSPATH_KEY)) {
        Some(path) if path.trim().rsplit('/').next() == Some(dev.address) => Seen::Holds(HoldKind::Device),
        Some(_) => Seen::Nothing,
        None => Seen::UnnamedDeviceFd,
    }
}

/// The strongest of one process's holds names it: a device fd or cdev keeps
/// an unbind waiting. A device fd the kernel does not name, beside the
/// device's group, is taken for this device's. `kinds` is not empty.
pub(crate) fn strongest(mut kinds: Vec<HoldKind>) -> HoldKind {
    if kinds.contains(&HoldKind::UnnamedDevice) && kinds.contains(&HoldKind::Group) {
        kinds.push(HoldKind::Device);
    }
    kinds.sort_by_key(|k| match k {
        HoldKind::Device => 0,
        HoldKind::Cdev => 1,
        HoldKind::UnnamedDevice => 2,
        HoldKind::Group => 3,
    });
    kinds[0]
}

/// The fd directories to read for a process: its own, or, when that is
/// empty (its main thread exited), each thread's. (fd dir, fdinfo dir).
fn fd_dirs(proc_dir: &Path) -> io::Result<Vec<(PathBuf, PathBuf)>> {
    let own = (proc_dir.join("fd"), proc_dir.join("fdinfo"));
    match fs::read_dir(&own.0) {
        Ok(d) => {
            if d.into_iter().next().is_some() {
                return Ok(vec![own]);
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let Ok(tasks) = fs::read_dir(proc_dir.join("task")) else { return Ok(Vec::new()) };
    Ok(tasks.flatten().map(|t| (t.path().join("fd"), t.path().join("fdinfo"))).collect())
}

/// Scan every process under `proc_root` (normally /proc), with the device's
/// node numbers from the running kernel's /sys.
pub fn scan(proc_root: &Path, dev: &VfioDevice<'_>) -> io::Result<HolderScan> {
    scan_with(proc_root, dev, &NodeNumbers::read(Path::new("/sys"), dev))
}

/// `scan` with the node numbers given.
pub fn scan_with(proc_root: &Path, dev: &VfioDevice<'_>, nodes: &NodeNumbers) -> io::Result<HolderScan> {
    let mut out = HolderScan::default();
    for entry in fs::read_dir(proc_root)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
        let dirs = match fd_dirs(&proc_root.join(pid)) {
            Ok(d) => d,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) => {
                out.uninspected += 1;
                continue;
            }
            // Gone meanwhile: not a holder.
            Err(_) => continue,
        };
        let mut kinds: Vec<HoldKind> = Vec::new();
        for (fd_dir, fdinfo_dir) in &dirs {
            let Ok(fds) = fs::read_dir(fd_dir) else { continue };
            for fd in fds.flatten() {
                let fd_name = fd.file_name();
                let Some(fd_name) = fd_name.to_str() else { continue };
                let fd_path = fd_dir.join(fd_name);
                let Ok(link) = fs::read_link(&fd_path) else { continue };
                let Some(link) = link.to_str() else { continue };
                let kind = match classify(&fd_path, &fdinfo_dir.join(fd_name), link, dev, nodes) {
                    Seen::Holds(k) => k,
                    Seen::UnnamedDeviceFd => HoldKind::UnnamedDevice,
                    Seen::Nothing => continue,
                };
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
        }
        if kinds.is_empty() {
            continue;
        }
        let comm = fs::read_to_string(proc_root.join(pid).join("comm")).map(|c| c.trim_end().to_string());
        let pid: u32 = pid.parse().unwrap_or(0);
        out.holders.push(Holder { pid, comm: comm.unwrap_or_else(|_| "?".into()), kind: strongest(kinds) });
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
            vec![
                (100, "qemu-system-x86", HoldKind::Group),
                (200, "dpdk", HoldKind::Cdev),
                (300, "cloud-hv", HoldKind::Device)
            ]
        );
        assert_eq!(s.uninspected, 0);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_unnamed_device_fd_is_this_device_beside_the_group_and_maybe_alone() {
        let root = fake(
            "old",
            &[
                ("100", "qemu", &[("3", "/dev/vfio/12", ""), ("9", DEVICE_FD_LINK, "pos: 0\n")]),
                ("200", "elsewhere", &[("9", DEVICE_FD_LINK, "pos: 0\n")]),
                ("300", "other-group", &[("3", "/dev/vfio/13", ""), ("9", DEVICE_FD_LINK, "pos: 0\n")]),
            ],
        );
        let s = scan(&root, &DEV).unwrap();
        let got: Vec<(u32, HoldKind)> = s.holders.iter().map(|h| (h.pid, h.kind)).collect();
        assert_eq!(got, vec![(100, HoldKind::Device), (200, HoldKind::UnnamedDevice), (300, HoldKind::UnnamedDevice)]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn nodes_are_matched_by_device_number_wherever_they_are() {
        // Character devices cannot be made here: /dev/null (1:3) and
        // /dev/zero (1:5) stand for the group's and another group's node.
        let root =
            fake("rdev", &[("100", "renamed", &[("3", "/dev/null", "")]), ("200", "other", &[("3", "/dev/zero", "")])]);
        let nodes = NodeNumbers { group: Some(libc::makedev(1, 3)), cdev: None };
        let s = scan_with(&root, &DEV, &nodes).unwrap();
        let got: Vec<(u32, HoldKind)> = s.holders.iter().map(|h| (h.pid, h.kind)).collect();
        assert_eq!(got, vec![(100, HoldKind::Group)]);
        fs::remove_dir_all(&root).unwrap();
    }
}
