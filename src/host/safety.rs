//! What would break if the host lost a device, followed through the stack:
//! its network interfaces and every bridge, bond, VLAN or macvlan above them
//! that carries an address or a route; its disks, their partitions and the
//! device-mapper/md devices holding them, when mounted or active swap; the
//! boot VGA and the framebuffer console. Detaching such a device is refused
//! unless forced, with the chain named ("0000:01:00.0 is eth0, a port of
//! bridge br0, which has 10.0.0.2/24 and the default route").
//!
//! A stacked block device counts as in use when it (or a device above it)
//! is mounted or is swap: open file descriptors of processes are not looked
//! at here.
//!
//! Detach also records which bridge or bond each interface was a port of;
//! reattach puts the interface back, or says why it cannot.

use super::{dev_path, Host, Recovered};
use crate::address::PciAddress;
use crate::error::{Error, Result};
use crate::state::PortMembership;
use crate::sysfs::{link_basename, SwapArea};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Upper devices are followed this deep (a bond in a bridge under a VLAN
/// is three); the kernel itself refuses stacks deeper than 8.
const MAX_DEPTH: usize = 8;

/// How long reattach waits for the driver to register the interfaces again.
const INTERFACE_WAIT: Duration = Duration::from_secs(5);

/// One way the host uses a device: the chain, and what would end it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostUse {
    /// "0000:01:00.0 is eth0, a port of bridge br0, which has 10.0.0.2/24".
    pub chain: String,
    /// The command that ends it ("ip link set eth0 nomaster").
    pub remedy: String,
}

/// "a", "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The network an address with prefix belongs to: 10.0.0.2/24 -> 10.0.0.0/24.
fn network_of(cidr: &str) -> Option<String> {
    let (ip, len) = cidr.split_once('/')?;
    let len: u32 = len.parse().ok()?;
    Some(match ip.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - len.min(32)).unwrap_or(0);
            format!("{}/{len}", std::net::Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - len.min(128)).unwrap_or(0);
            format!("{}/{len}", std::net::Ipv6Addr::from(u128::from(a) & mask))
        }
    })
}

impl Host {
    /// Names in /sys/class/KIND whose device sits below this PCI function
    /// (directly, as most NICs, or deeper: virtio1/block/vda, nvme/nvme0/nvme0n1).
    fn class_members(&self, kind: &str, addr: &PciAddress) -> Vec<String> {
        let below = format!("/{addr}/");
        let mut names: Vec<String> = self
            .sysfs
            .list_dir(&format!("class/{kind}"))
            .unwrap_or_default()
            .into_iter()
            .filter(|n| self.sysfs.read_link(&format!("class/{kind}/{n}")).is_ok_and(|t| t.contains(&below)))
            // A disk's partitions are followed from the disk.
            .filter(|n| !self.sysfs.exists(&format!("class/{kind}/{n}/partition")))
            .collect();
        names.sort();
        names
    }

    /// Reasons, one per use, that the host depends on this device now.
    pub fn host_uses(&self, addr: &PciAddress) -> Vec<String> {
        self.host_uses_detailed(addr).into_iter().map(|u| u.chain).collect()
    }

    /// Every use with the chain that leads to it and its remedy.
    pub(crate) fn host_uses_detailed(&self, addr: &PciAddress) -> Vec<HostUse> {
        let mut uses = Vec::new();
        if self.attr(addr, "boot_vga").as_deref() == Some("1") {
            uses.push(HostUse {
                chain: format!("{addr} is the boot VGA device (the console)"),
                remedy: "give the host another console".into(),
            });
        }
        uses.extend(self.fbcon_use(addr));
        for iface in self.class_members("net", addr) {
            let mut seen = Vec::new();
            self.net_uses(&iface, &format!("{addr} is {iface}"), None, 0, &mut seen, &mut uses);
        }
        let (mounts, swaps) = (self.sysfs.mounts(), self.sysfs.swaps());
        let facts = (&mounts[..], &swaps[..]);
        for block in self.class_members("block", addr) {
            let mut seen = Vec::new();
            // With NVMe multipath the function holds only hidden path
            // devices (nvme0c0n1); the disk the host uses is their head.
            let hidden = self.sysfs.read(&format!("class/block/{block}/hidden")).is_ok_and(|h| h.trim() == "1");
            if !hidden {
                self.block_uses(&block, &format!("{addr} is {block}"), ", which", 0, &mut seen, facts, &mut uses);
                continue;
            }
            for head in self.multipath_heads(&block) {
                let chain = format!("{addr} is {head} (through {block})");
                self.block_uses(&head, &chain, ", which", 0, &mut seen, facts, &mut uses);
            }
        }
        uses
    }

    /// The NVMe multipath head of a hidden path device: the head whose
    /// `multipath/` links to it (Linux 6.15+), else by the kernel's naming
    /// (path nvme{S}c{C}n{N} of head nvme{S}n{N}, nvme_set_disk_name).
    fn multipath_heads(&self, path: &str) -> Vec<String> {
        let mut heads: Vec<String> = self
            .sysfs
            .list_dir("class/block")
            .unwrap_or_default()
            .into_iter()
            .filter(|h| self.sysfs.exists(&format!("class/block/{h}/multipath/{path}")))
            .collect();
        if heads.is_empty() {
            let named = path.strip_prefix("nvme").and_then(|r| {
                let (subsys, rest) = r.split_once('c')?;
                let (_, ns) = rest.split_once('n')?;
                Some(format!("nvme{subsys}n{ns}"))
            });
            heads.extend(named.filter(|h| self.sysfs.exists(&format!("class/block/{h}"))));
        }
        heads.sort();
        heads
    }

    /// Administratively up (IFF_UP in `flags`); unreadable counts as up.
    fn link_up(&self, iface: &str) -> bool {
        match self.sysfs.read(&format!("class/net/{iface}/flags")) {
            Ok(f) => u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).map_or(true, |v| v & 1 != 0),
            Err(_) => true,
        }
    }

    /// "bridge", "bond", "VLAN", "macvlan", "ipvlan", or "upper device".
    fn link_kind(&self, iface: &str) -> &'static str {
        let uevent = self.sysfs.read(&format!("class/net/{iface}/uevent")).unwrap_or_default();
        let devtype = uevent.lines().find_map(|l| l.strip_prefix("DEVTYPE=")).unwrap_or_default();
        match devtype {
            "bridge" => "bridge",
            "bond" => "bond",
            "vlan" => "VLAN",
            "macvlan" | "macvtap" => "macvlan",
            "ipvlan" | "ipvtap" => "ipvlan",
            _ if self.sysfs.exists(&format!("class/net/{iface}/bonding")) => "bond",
            _ if self.sysfs.exists(&format!("class/net/{iface}/bridge")) => "bridge",
            _ => "upper device",
        }
    }

    fn master_of(&self, iface: &str) -> Option<String> {
        self.sysfs.read_link(&format!("class/net/{iface}/master")).ok().map(|t| link_basename(&t).to_string())
    }

    /// Devices directly above an interface: its master and its `upper_*` links.
    fn uppers(&self, iface: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .sysfs
            .list_dir(&format!("class/net/{iface}"))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| n.strip_prefix("upper_").map(str::to_string))
            .chain(self.master_of(iface))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// "10.0.0.2/24 and the default route": addresses, and routes other
    /// than the subnets of those addresses (the kernel adds those itself).
    fn net_config(&self, iface: &str) -> Option<String> {
        let addresses = self.sysfs.net_addresses(iface);
        let subnets: Vec<String> = addresses.iter().filter_map(|a| network_of(a)).collect();
        let routes = self.sysfs.net_routes(iface).into_iter().filter(|r| !subnets.contains(r)).map(|r| {
            if r == "default" {
                "the default route".to_string()
            } else {
                format!("a route to {r}")
            }
        });
        let mut all: Vec<String> = addresses.to_vec();
        for r in routes {
            // IPv4 and IPv6 defaults are both "the default route".
            if !all.contains(&r) {
                all.push(r);
            }
        }
        (!all.is_empty()).then(|| and_list(&all))
    }

    /// Follow an interface up through its masters and upper devices.
    fn net_uses(
        &self,
        iface: &str,
        chain: &str,
        remedy: Option<&str>,
        depth: usize,
        seen: &mut Vec<String>,
        out: &mut Vec<HostUse>,
    ) {
        if depth > MAX_DEPTH || seen.iter().any(|s| s == iface) {
            return;
        }
        seen.push(iface.to_string());
        if self.link_up(iface) {
            if let Some(config) = self.net_config(iface) {
                let remedy = remedy.map_or_else(|| format!("ip address flush dev {iface}"), str::to_string);
                out.push(HostUse { chain: format!("{chain}, which has {config}"), remedy });
            }
        }
        let master = self.master_of(iface);
        for upper in self.uppers(iface) {
            let kind = self.link_kind(&upper);
            let (step, first) = if master.as_deref() == Some(upper.as_str()) {
                (format!("a port of {kind} {upper}"), format!("ip link set {iface} nomaster"))
            } else {
                (format!("carrying {kind} {upper}"), format!("ip link delete {upper}"))
            };
            let remedy = remedy.map_or(first, str::to_string);
            self.net_uses(&upper, &format!("{chain}, {step}"), Some(&remedy), depth + 1, seen, out);
        }
    }

    /// Follow a block device through its partitions and holders.
    /// `join` continues the chain: ", which" after a device, "" after
    /// "whose partition X".
    #[allow(clippy::too_many_arguments)]
    fn block_uses(
        &self,
        block: &str,
        chain: &str,
        join: &str,
        depth: usize,
        seen: &mut Vec<String>,
        facts: (&[(String, String)], &[SwapArea]),
        out: &mut Vec<HostUse>,
    ) {
        if depth > MAX_DEPTH || seen.iter().any(|s| s == block) {
            return;
        }
        seen.push(block.to_string());
        let (mounts, swaps) = facts;
        let base = format!("class/block/{block}");
        if let Ok(number) = self.sysfs.read(&format!("{base}/dev")) {
            let number = number.trim();
            let on: Vec<String> = mounts.iter().filter(|(n, _)| n == number).map(|(_, m)| m.clone()).collect();
            if !on.is_empty() {
                out.push(HostUse {
                    chain: format!("{chain}{join} is mounted on {}", on.join(", ")),
                    remedy: format!("umount {}", on.join(" ")),
                });
            }
            for s in swaps.iter().filter(|s| s.device == number) {
                let (what, remedy) = if s.file {
                    (format!("holds the active swap file {}", s.path), format!("swapoff {}", s.path))
                } else {
                    ("is active swap".to_string(), format!("swapoff {}", s.path))
                };
                out.push(HostUse { chain: format!("{chain}{join} {what}"), remedy });
            }
        }
        let mut partitions: Vec<String> = self
            .sysfs
            .list_dir(&base)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| self.sysfs.exists(&format!("{base}/{p}/partition")))
            .collect();
        partitions.sort();
        for p in partitions {
            self.block_uses(&p, &format!("{chain}, whose partition {p}"), "", depth + 1, seen, facts, out);
        }
        let mut holders = self.sysfs.list_dir(&format!("{base}/holders")).unwrap_or_default();
        holders.sort();
        for h in holders {
            let named = match self.sysfs.read(&format!("class/block/{h}/dm/name")) {
                Ok(n) if !n.trim().is_empty() => format!("{h} ({})", n.trim()),
                _ => h.clone(),
            };
            self.block_uses(&h, &format!("{chain}{join} is held by {named}"), ", which", depth + 1, seen, facts, out);
        }
    }

    /// The framebuffer console draws on the first framebuffer (fbcon maps
    /// every console to it unless booted with fbcon=map:); it is a use
    /// while a vtconsole "frame buffer device" is bound.
    fn fbcon_use(&self, addr: &PciAddress) -> Option<HostUse> {
        let mut vts = self.sysfs.list_dir("class/vtconsole").unwrap_or_default();
        vts.sort();
        let vt = vts.into_iter().find(|v| {
            self.sysfs.read(&format!("class/vtconsole/{v}/name")).is_ok_and(|n| n.contains("frame buffer"))
                && self.sysfs.read(&format!("class/vtconsole/{v}/bind")).is_ok_and(|b| b.trim() == "1")
        })?;
        let mut fbs: Vec<(u32, String)> = self
            .sysfs
            .list_dir("class/graphics")
            .unwrap_or_default()
            .into_iter()
            .filter_map(|f| Some((f.strip_prefix("fb")?.parse().ok()?, f)))
            .collect();
        fbs.sort();
        let (_, first) = fbs.into_iter().next()?;
        let owner = self.sysfs.read_link(&format!("class/graphics/{first}/device")).ok()?;
        (link_basename(&owner) == addr.to_string()).then(|| HostUse {
            chain: format!("{addr} is {first}, where the framebuffer console (fbcon) draws"),
            remedy: format!("echo 0 > /sys/class/vtconsole/{vt}/bind"),
        })
    }

    /// Refuse to take a device the host depends on, unless `force`.
    pub(crate) fn check_safe(&self, what: &str, addr: &PciAddress, force: bool) -> Result<()> {
        if force {
            return Ok(());
        }
        let uses = self.host_uses_detailed(addr);
        if uses.is_empty() {
            return Ok(());
        }
        let chains: Vec<String> = uses.iter().map(|u| u.chain.clone()).collect();
        let mut remedies: Vec<String> = uses.iter().map(|u| u.remedy.clone()).collect();
        remedies.dedup();
        Err(Error::OperationInvalid(format!(
            "refusing to {what} {addr}: the host uses it: {}. Free it first ({}), or pass VIR_NODE_DEVICE_FORCE (CLI --force) if the host can lose it",
            chains.join("; "),
            remedies.join("; ")
        )))
    }

    /// Bridges and bonds the device's interfaces are ports of now.
    pub(crate) fn port_memberships(&self, addr: &PciAddress) -> Vec<PortMembership> {
        self.class_members("net", addr)
            .into_iter()
            .filter_map(|iface| {
                let master = self.master_of(&iface)?;
                let kind = match self.link_kind(&master) {
                    "bridge" => "bridge",
                    "bond" => "bond",
                    _ => return None,
                };
                let up = self.link_up(&iface);
                Some(PortMembership { interface: iface, master, kind: kind.to_string(), up })
            })
            .collect()
    }

    /// After reattach: put the device's interfaces back into the bridges and
    /// bonds they were ports of. The driver may name an interface anew; the
    /// recorded name is used when it is there, else the interfaces are taken
    /// in order. Returns a sentence per port that could not be restored.
    pub(crate) fn rejoin_ports(&self, addr: &PciAddress, ports: &[PortMembership]) -> Vec<String> {
        if ports.is_empty() {
            return Vec::new();
        }
        let start = Instant::now();
        let mut now: Vec<String> = Vec::new();
        loop {
            now = self.sysfs.list_dir(&dev_path(addr, "net")).unwrap_or(now);
            now.sort();
            if now.len() >= ports.len() || start.elapsed() >= INTERFACE_WAIT {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut unused: Vec<String> =
            now.iter().filter(|n| !ports.iter().any(|p| p.interface == **n)).cloned().collect();
        let mut failures = Vec::new();
        for p in ports {
            let iface = if now.contains(&p.interface) {
                p.interface.clone()
            } else if !unused.is_empty() {
                unused.remove(0)
            } else {
                failures.push(format!(
                    "{} was a port of {} {}, but {addr} has no network interface {:.0?} after reattach; add it by hand (ip link set IF master {})",
                    p.interface, p.kind, p.master, INTERFACE_WAIT, p.master
                ));
                continue;
            };
            let result = if !self.sysfs.exists(&format!("class/net/{}", p.master)) {
                Err(format!("{} {} no longer exists", p.kind, p.master))
            } else {
                // A bond takes only a port that is down (something may have
                // brought the new interface up already); it brings it up itself.
                let down_first = if p.kind == "bond" && self.link_up(&iface) {
                    self.sysfs.set_link_up(&iface, false).map_err(|e| format!("setting {iface} down failed: {e}"))
                } else {
                    Ok(())
                };
                down_first
                    .and_then(|()| {
                        self.sysfs.set_master(&iface, Some(&p.master)).map_err(|e| format!("the kernel refused: {e}"))
                    })
                    .and_then(|()| {
                        // A bond brings its ports up itself; a bridge port comes back down.
                        if p.up && !self.link_up(&iface) {
                            self.sysfs.set_link_up(&iface, true).map_err(|e| format!("setting {iface} up failed: {e}"))
                        } else {
                            Ok(())
                        }
                    })
            };
            if let Err(why) = result {
                failures.push(format!(
                    "{iface} (was {}) could not rejoin {} {}: {why}; add it by hand (ip link set {iface} master {})",
                    p.interface, p.kind, p.master, p.master
                ));
            }
        }
        failures
    }

    /// A sentence about a finished operation that the caller should see:
    /// kept with the recovery report (virNodeDeviceRecover, `nodedev
    /// recover`), taken by the CLI right after the command, and logged with
    /// NODEDEV_DEBUG. A successful call never leaves it as an error.
    pub(crate) fn note(&self, addr: &PciAddress, text: String) {
        if crate::debug::enabled() {
            crate::debug::log(format_args!("note: {addr}: {text}"));
        }
        self.notes.lock().unwrap_or_else(|p| p.into_inner()).push(Recovered {
            address: addr.to_string(),
            step: None,
            outcome: text,
            resolved: true,
        });
    }

    /// The notes about this device since the last call, taken out of the report.
    #[doc(hidden)]
    pub fn take_notes(&self, addr: &PciAddress) -> Vec<String> {
        let mut all = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        let (mine, rest): (Vec<Recovered>, Vec<Recovered>) = all.drain(..).partition(|r| r.address == addr.to_string());
        *all = rest;
        mine.into_iter().map(|r| r.outcome).collect()
    }

    /// Every note not taken yet (for `recover`'s report).
    pub(crate) fn take_all_notes(&self) -> Vec<Recovered> {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_and_lists() {
        assert_eq!(network_of("10.0.0.2/24").as_deref(), Some("10.0.0.0/24"));
        assert_eq!(network_of("192.0.2.10/32").as_deref(), Some("192.0.2.10/32"));
        assert_eq!(network_of("2001:db8::2/64").as_deref(), Some("2001:db8::/64"));
        assert_eq!(network_of("10.0.0.2/0").as_deref(), Some("0.0.0.0/0"));
        assert_eq!(network_of("nonsense"), None);
        assert_eq!(and_list(&["a".into()]), "a");
        assert_eq!(and_list(&["a".into(), "b".into(), "c".into()]), "a, b and c");
    }
}
