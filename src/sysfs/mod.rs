//! The one seam between operation logic and a kernel: the files of /sys.
//!
//! Every path is relative to the sysfs root (`bus/pci/devices/0000:03:00.0/driver`),
//! and every error is an `io::Error` carrying the errno the kernel would give,
//! so the real host and the simulated one fail the same way.

mod bounded;
mod ethtool;
pub mod holders;
pub mod host;
pub mod live;
pub mod modalias;
pub mod pciids;
pub mod sim;
pub mod trace;
pub mod uevent;

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
    // ---- VFIO variant drivers (issue 13, item 3) ----

    /// Every `alias vfio_pci:...` line of the running kernel's modules.alias
    /// (VFIO variant drivers' id tables, and vfio-pci's catch-all), in file
    /// order, pattern with its `vfio_pci:` prefix. Read once per process.
    /// Empty where no module could be loaded (a test tree).
    fn vfio_aliases(&self) -> io::Result<Vec<modalias::ModuleAlias>>;
    // ---- Names (issue 12, item 2): pci.ids on the real host.
    /// Human names of a vendor and of a device, each where the database
    /// knows it (`pci.ids`; the description on a simulated host).
    fn pci_names(&self, vendor: u16, device: u16) -> PciNames;
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

    // --- Host use (host/safety.rs): facts outside sysfs, and the link
    // changes that give a port back to its bridge or bond. A test tree
    // under another root has no such facts: empty answers, Unsupported. ---

    /// Addresses of an interface with their prefix length ("10.0.0.2/24",
    /// "2001:db8::2/64"), IPv6 link-local left out.
    fn net_addresses(&self, iface: &str) -> Vec<String>;
    /// Destinations of the routes through an interface: "default", or
    /// "NET/LEN"; IPv6 link-local, multicast and local routes left out.
    fn net_routes(&self, iface: &str) -> Vec<String>;
    /// Mounted filesystems: (MAJ:MIN of the block device, mount point), as
    /// /proc/self/mountinfo lists them.
    fn mounts(&self) -> Vec<(String, String)>;
    /// Active swap areas (/proc/swaps).
    fn swaps(&self) -> Vec<SwapArea>;
    /// Make `master` (a bridge or bond) the master of `iface`, or free it
    /// from its master with None, as `ip link set IF master M` does
    /// (RTM_NEWLINK with IFLA_MASTER).
    fn set_master(&self, iface: &str, master: Option<&str>) -> io::Result<()>;
    /// Set an interface administratively up or down (`ip link set IF up`).
    fn set_link_up(&self, iface: &str, up: bool) -> io::Result<()>;

    // ---- libvirt's device tree (issue 12 item 2, "tree"): binary
    // attributes (a function's `config` space and `vpd`) and interface
    // features that sysfs does not show. ----

    /// The first `limit` bytes (fewer at the file's end) of a binary
    /// attribute such as `config` or `vpd`. The kernel shows an unprivileged
    /// reader only the first 64 bytes of `config`, and `vpd` not at all.
    fn read_bytes(&self, path: &str, limit: usize) -> io::Result<Vec<u8>>;
    /// Offload features of an interface that ethtool reports to any user,
    /// by libvirt's names ("rx", "tx", "sg", "tso", "gso", "gro", "lro",
    /// "rxvlan", "txvlan", "ntuple", "rxhash"), in that order. Empty for an
    /// interface of a tree under another root (no such interface here).
    fn net_features(&self, iface: &str) -> io::Result<Vec<String>>;
    // ---- Events (issue 12, item 5): the kernel's uevents.

    /// A new listener on the kernel's uevents (netlink KOBJECT_UEVENT, the
    /// kernel's group): it receives every uevent sent from now on, for as
    /// long as it lives. A test tree under another root has no kernel to
    /// hear from: Unsupported.
    fn uevents(&self) -> io::Result<Box<dyn uevent::UeventSource>>;
}

/// Names of a PCI vendor and device, as lspci and libvirt show them. A
/// vendor may be known without the device (a model newer than the database).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PciNames {
    pub vendor: Option<String>,
    pub product: Option<String>,
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
    /// A device fd whose device the kernel does not name (before Linux 6.18
    /// its fdinfo has no `vfio-device-syspath`) in a process that does not
    /// hold this device's group: it may be this device's, so it counts for
    /// every VFIO device.
    UnnamedDevice,
}

impl HoldKind {
    pub fn describe(self, dev: &VfioDevice<'_>) -> String {
        match (self, dev.group, dev.cdev) {
            (HoldKind::Group, Some(g), _) => format!("/dev/vfio/{g}"),
            (HoldKind::Cdev, _, Some(c)) => format!("/dev/vfio/devices/{c}"),
            (HoldKind::Cdev, _, None) => "its VFIO cdev".to_string(),
            (HoldKind::Device, ..) => "a VFIO device fd".to_string(),
            (HoldKind::UnnamedDevice, ..) => {
                "a VFIO device fd that the kernel does not name: it may be this device".to_string()
            }
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

/// One active swap area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapArea {
    /// As /proc/swaps names it: "/dev/nvme0n1p2", "/swapfile".
    pub path: String,
    /// MAJ:MIN of the block device it is (a partition) or is on (a file).
    pub device: String,
    /// A swap file (on a mounted filesystem), not a device.
    pub file: bool,
}

/// Final component of a link target: `../../../bus/pci/drivers/e1000e` -> `e1000e`.
pub fn link_basename(target: &str) -> &str {
    target.trim_end_matches('/').rsplit('/').next().unwrap_or(target)
}
