//! The debug trace: a `Sysfs` that prints every access of the one it wraps,
//! one line each on stderr, so an admin sees exactly what was read and
//! written. `uri::open` wraps every connection's kernel, real or simulated,
//! when NODEDEV_DEBUG is on (`crate::debug`); otherwise nothing is wrapped
//! and nothing is paid.
//!
//! Writes and module loads are printed before they happen (an unbind can
//! hang in a driver: the last line then names it), with a second line if
//! they fail; reads are printed after, with what they returned.

use super::{HolderScan, SwapArea, Sysfs, VfioDevice};
use crate::debug::log;
use std::io;
use std::sync::Arc;

pub struct Traced(pub Arc<dyn Sysfs>);

/// A value as a quoted, escaped string, cut short when long (`config`, `resource`).
fn quoted(s: &str) -> String {
    const MAX: usize = 120;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("\"{}\"...", s[..cut].escape_debug()),
        None => format!("\"{}\"", s.escape_debug()),
    }
}

fn outcome<T>(r: &io::Result<T>, ok: impl FnOnce(&T) -> String) -> String {
    match r {
        Ok(v) => ok(v),
        Err(e) => format!("error: {e}"),
    }
}

impl Sysfs for Traced {
    fn read(&self, path: &str) -> io::Result<String> {
        let r = self.0.read(path);
        log(format_args!("sysfs read {path} -> {}", outcome(&r, |v| quoted(v))));
        r
    }

    fn write(&self, path: &str, value: &str) -> io::Result<()> {
        log(format_args!("sysfs write {path} {}", quoted(value)));
        let r = self.0.write(path, value);
        if let Err(e) = &r {
            log(format_args!("sysfs write {path} {} failed: {e}", quoted(value)));
        }
        r
    }

    fn read_link(&self, path: &str) -> io::Result<String> {
        let r = self.0.read_link(path);
        log(format_args!("sysfs readlink {path} -> {}", outcome(&r, |t| t.clone())));
        r
    }

    fn list_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let r = self.0.list_dir(path);
        log(format_args!("sysfs list {path} -> {}", outcome(&r, |v| format!("{} entries", v.len()))));
        r
    }

    fn exists(&self, path: &str) -> bool {
        let r = self.0.exists(path);
        log(format_args!("sysfs exists {path} -> {}", if r { "yes" } else { "no" }));
        r
    }

    fn load_module(&self, module: &str) -> io::Result<()> {
        log(format_args!("modprobe {module}"));
        let r = self.0.load_module(module);
        if let Err(e) = &r {
            log(format_args!("modprobe {module} failed: {e}"));
        }
        r
    }

    fn matching_aliases(&self, modalias: &str) -> io::Result<Vec<super::modalias::ModuleAlias>> {
        let r = self.0.matching_aliases(modalias);
        log(format_args!("modules.alias {modalias} -> {}", outcome(&r, |v| format!("{} entries", v.len()))));
        r
    }

    fn vfio_aliases(&self) -> io::Result<Vec<super::modalias::ModuleAlias>> {
        let r = self.0.vfio_aliases();
        log(format_args!("modules.alias vfio_pci: -> {}", outcome(&r, |v| format!("{} entries", v.len()))));
        r
    }

    // Not sysfs: passed through untraced, but passed through, so that the
    // names and the safety checks are the same with the trace on.
    fn pci_names(&self, vendor: u16, device: u16) -> super::PciNames {
        self.0.pci_names(vendor, device)
    }

    // --- Host use ---
    fn net_addresses(&self, iface: &str) -> Vec<String> {
        self.0.net_addresses(iface)
    }

    fn net_routes(&self, iface: &str) -> Vec<String> {
        self.0.net_routes(iface)
    }

    fn mounts(&self) -> Vec<(String, String)> {
        self.0.mounts()
    }

    fn swaps(&self) -> Vec<SwapArea> {
        self.0.swaps()
    }

    // Changes: traced like writes, before they happen.
    fn set_master(&self, iface: &str, master: Option<&str>) -> io::Result<()> {
        log(format_args!("netlink set {iface} master {}", master.unwrap_or("none")));
        let r = self.0.set_master(iface, master);
        if let Err(e) = &r {
            log(format_args!("netlink set {iface} master {} failed: {e}", master.unwrap_or("none")));
        }
        r
    }

    fn set_link_up(&self, iface: &str, up: bool) -> io::Result<()> {
        let state = if up { "up" } else { "down" };
        log(format_args!("netlink set {iface} {state}"));
        let r = self.0.set_link_up(iface, up);
        if let Err(e) = &r {
            log(format_args!("netlink set {iface} {state} failed: {e}"));
        }
        r
    }

    // Busy devices.
    fn vfio_holders(&self, dev: &VfioDevice<'_>) -> io::Result<HolderScan> {
        let r = self.0.vfio_holders(dev);
        log(format_args!(
            "vfio holders of {} -> {}",
            dev.address,
            outcome(&r, |s| format!("{} holders, {} processes not inspected", s.holders.len(), s.uninspected))
        ));
        r
    }

    fn write_bounded(&self, path: &str, value: &str, limit: std::time::Duration) -> io::Result<()> {
        // The same lines as `write`: how a write is waited for is not the kernel's business.
        log(format_args!("sysfs write {path} {}", quoted(value)));
        let r = self.0.write_bounded(path, value, limit);
        if let Err(e) = &r {
            log(format_args!("sysfs write {path} {} failed: {e}", quoted(value)));
        }
        r
    }

    // ---- libvirt's device tree (tree) ----
    fn read_bytes(&self, path: &str, limit: usize) -> io::Result<Vec<u8>> {
        let r = self.0.read_bytes(path, limit);
        log(format_args!("sysfs read {path} (binary) -> {}", outcome(&r, |v| format!("{} bytes", v.len()))));
        r
    }

    fn net_features(&self, iface: &str) -> io::Result<Vec<String>> {
        let r = self.0.net_features(iface);
        log(format_args!("ethtool features {iface} -> {}", outcome(&r, |v| v.join(" "))));
        r
    }

    // ---- Events: the listener is traced once, its messages are not (the
    // watch prints them).
    fn uevents(&self) -> io::Result<Box<dyn super::uevent::UeventSource>> {
        let r = self.0.uevents();
        log(format_args!("uevent listener -> {}", outcome(&r, |s| format!("fd {}", s.fd()))));
        r
    }
}
