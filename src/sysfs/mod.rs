//! The one seam between operation logic and a kernel: the files of /sys.
//!
//! Every path is relative to the sysfs root (`bus/pci/devices/0000:03:00.0/driver`),
//! and every error is an `io::Error` carrying the errno the kernel would give,
//! so the real host and the simulated one fail the same way.

pub mod host;
pub mod modalias;
pub mod sim;
pub mod trace;

use std::io;

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
}

/// Final component of a link target: `../../../bus/pci/drivers/e1000e` -> `e1000e`.
pub fn link_basename(target: &str) -> &str {
    target.trim_end_matches('/').rsplit('/').next().unwrap_or(target)
}
