//! The one seam between operation logic and a kernel: the files of /sys.
//!
//! Every path is relative to the sysfs root (`bus/pci/devices/0000:03:00.0/driver`),
//! and every error is an `io::Error` carrying the errno the kernel would give,
//! so the real host and the simulated one fail the same way.

mod bounded;
pub mod holders;
pub mod host;
pub mod modalias;
pub mod sim;
pub mod trace;

use std::io;
use std::time::Duration;

/// A new method needs forwarding in `trace.rs` too, or the debug trace
/// would hide it (a default would answer instead of the kernel).
pub trait Sysfs: Send + Sync {
    /// Contents of an attribute file, as the kernel returns it (usually with a trailing newline).
    fn read(&self, path: &str) -> io::Result<String>;
    /// Write to an attribute file in one `write(2)`, as `echo -n value > path` would.
    fn write(&self, path: &str, value: &str) -> io::Result<()>;
    /// Target of a symbolic link, as `readlink(2)` gives it (often relative).
    fn read_link(&self, path: &str) -> io::Result<String>;
    /// Names in a directory (no "." or ".."), in no particular order.
    fn list_dir(&self, path: &str) -> io::Result<Vec<String>>;
    /// Whether a file, directory or link exists at `path`.
    fn exists(&self, path: &str) -> bool;
    /// Load a kernel module (`modprobe NAME`); module names may use '-' or '_'.
    fn load_module(&self, module: &str) -> io::Result<()>;
    /// The modules.alias entries of the running kernel's modules that match
    /// `modalias` (`pci:v...`), in file order: what modprobe of that alias
    /// would consider. Empty where no module could be loaded (a test tree).
    fn matching_aliases(&self, modalias: &str) -> io::Result<Vec<modalias::ModuleAlias>>;
    /// Human names of a vendor and a device (`pci.ids`), where the backend knows them.
    fn pci_names(&self, _vendor: u16, _device: u16) -> Option<(String, String)> {
        None
    }
    /// IP addresses (not IPv6 link-local) and routes using a network
    /// interface, as text. Not sysfs data: for the safety checks.
    fn net_addresses(&self, _iface: &str) -> Vec<String> {
        Vec::new()
    }
    /// Mount points of a block device, its partitions and the devices
    /// stacked on it (LVM, RAID). Not sysfs data: for the safety checks.
    fn block_mounts(&self, _block: &str) -> Vec<String> {
        Vec::new()
    }

    // ---- Busy devices (issue 11, item 2): who holds a device through VFIO,
    // and writes that the kernel may keep waiting on such a holder.

    /// Processes holding the device through VFIO: an fd on its group's
    /// /dev/vfio/N, on its cdev /dev/vfio/devices/vfioX, or a device fd.
    /// Processes that vanish meanwhile are skipped; those whose fds cannot be
    /// read are counted in `uninspected`, never taken for "no holder".
    fn vfio_holders(&self, dev: &VfioDevice<'_>) -> io::Result<HolderScan>;
    /// `write`, but giving up after `limit` with `io::ErrorKind::TimedOut`
    /// when the kernel has not returned. The write itself goes on (the kernel
    /// cannot be interrupted there) and completes when the kernel lets it;
    /// it holds nothing of the caller's (no lock, no fd but the file's).
    fn write_bounded(&self, path: &str, value: &str, limit: Duration) -> io::Result<()>;
}

/// The VFIO files that stand for one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VfioDevice<'a> {
    /// `0000:04:10.0`
    pub address: &'a str,
    /// IOMMU group: /dev/vfio/N.
    pub group: Option<u32>,
    /// Character device name (`vfio3`): /dev/vfio/devices/vfio3 (kernel >= 6.6 with the cdev interface).
    pub cdev: Option<&'a str>,
}

/// How a process holds a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldKind {
    /// An fd on the group's /dev/vfio/N.
    Group,
    /// An fd on the device's /dev/vfio/devices/vfioX.
    Cdev,
    /// A device fd from VFIO_GROUP_GET_DEVICE_FD (`anon_inode:[vfio-device]`).
    Device,
}

impl HoldKind {
    pub fn describe(self, dev: &VfioDevice<'_>) -> String {
        match (self, dev.group, dev.cdev) {
            (HoldKind::Group, Some(g), _) => format!("/dev/vfio/{g}"),
            (HoldKind::Cdev, _, Some(c)) => format!("/dev/vfio/devices/{c}"),
            (HoldKind::Cdev, _, None) => "its VFIO cdev".to_string(),
            (HoldKind::Device, ..) => "a VFIO device fd".to_string(),
            (HoldKind::Group, None, _) => "its VFIO group".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// The process's command name (/proc/PID/comm).
    pub comm: String,
    pub kind: HoldKind,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HolderScan {
    pub holders: Vec<Holder>,
    /// Processes whose fds could not be read (another user's, without root).
    pub uninspected: usize,
}

/// Final component of a link target: `../../../bus/pci/drivers/e1000e` -> `e1000e`.
pub fn link_basename(target: &str) -> &str {
    target.trim_end_matches('/').rsplit('/').next().unwrap_or(target)
}
