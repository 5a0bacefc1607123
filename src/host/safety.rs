//! What would break if the host lost a device: the boot VGA (the console), a
//! disk with mounted filesystems, a network interface that is up and
//! configured. Detaching such a device is refused unless forced.

use super::Host;
use crate::address::PciAddress;
use crate::error::{Error, Result};

impl Host {
    /// Names in /sys/class/KIND whose device sits below this PCI function
    /// (directly, as most NICs, or deeper: virtio1/block/vda, nvme/nvme0/nvme0n1).
    fn class_members(&self, kind: &str, addr: &PciAddress) -> Vec<String> {
        let below = format!("/{addr}/");
        self.sysfs
            .list_dir(&format!("class/{kind}"))
            .unwrap_or_default()
            .into_iter()
            .filter(|n| self.sysfs.read_link(&format!("class/{kind}/{n}")).is_ok_and(|t| t.contains(&below)))
            // A disk's mounts include its partitions'; list the disk once.
            .filter(|n| !self.sysfs.exists(&format!("class/{kind}/{n}/partition")))
            .collect()
    }

    /// Reasons, one per use, that the host depends on this device now.
    pub fn host_uses(&self, addr: &PciAddress) -> Vec<String> {
        let mut uses = Vec::new();
        if self.attr(addr, "boot_vga").as_deref() == Some("1") {
            uses.push("it is the boot VGA device (the console)".to_string());
        }
        for iface in self.class_members("net", addr) {
            let up = self.sysfs.read(&format!("class/net/{iface}/operstate")).is_ok_and(|s| s.trim() == "up");
            let addresses = self.sysfs.net_addresses(&iface);
            if up && !addresses.is_empty() {
                uses.push(format!("its network interface {iface} is up with {}", addresses.join(", ")));
            }
        }
        for block in self.class_members("block", addr) {
            let mounts = self.sysfs.block_mounts(&block);
            if !mounts.is_empty() {
                uses.push(format!("its disk {block} is mounted on {}", mounts.join(", ")));
            }
        }
        uses
    }

    /// Refuse to take a device the host depends on, unless `force`.
    pub(crate) fn check_safe(&self, what: &str, addr: &PciAddress, force: bool) -> Result<()> {
        let uses = self.host_uses(addr);
        if force || uses.is_empty() {
            return Ok(());
        }
        Err(Error::OperationInvalid(format!(
            "refusing to {what} {addr}: {}; the host would lose it. Stop using it first, or pass VIR_NODE_DEVICE_FORCE (CLI --force) if you are sure",
            uses.join("; ")
        )))
    }
}
