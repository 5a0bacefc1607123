//! What a function's configuration space says that libvirt shows: its
//! header type (`<capability type='pci-bridge'/>`) and, for PCI Express,
//! its link capability and status (`<pci-express>`), read as libvirt's
//! virpci.c reads them. A reader without root sees only the first 64 bytes
//! of `config`; the link then comes from the kernel's `max_link_*` and
//! `current_link_*` files (no port number there).

use super::{dev_path, Host};
use crate::address::PciAddress;

/// libvirt's names of the header types it shows (type 0, an endpoint, is not shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bridge {
    Pci,
    Cardbus,
}

impl Bridge {
    pub fn libvirt_name(self) -> &'static str {
        match self {
            Bridge::Pci => "pci-bridge",
            Bridge::Cardbus => "cardbus-bridge",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcieLink {
    /// Port number; only the configuration space has it.
    pub port: Option<u8>,
    /// GT/s as libvirt writes it ("2.5", "8"); None when unknown.
    pub speed: Option<&'static str>,
    pub width: u32,
}

/// A PCI Express function: its link (None for a root-complex integrated
/// endpoint or event collector, which have none: `<pci-express/>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcieInfo {
    pub link: Option<(PcieLink, PcieLink)>,
}

/// What one read of `config` tells (Host::config_facts).
pub(crate) struct ConfigFacts {
    pub bridge: Option<Bridge>,
    pub pcie: Option<PcieInfo>,
    /// False only when the capability list was read and has no VPD: the
    /// kernel then shows no `vpd` file, so there is nothing to open.
    pub may_have_vpd: bool,
}

const SPEEDS: [&str; 6] = ["2.5", "5", "8", "16", "32", "64"];

fn speed_name(code: u32) -> Option<&'static str> {
    SPEEDS.get((code as usize).checked_sub(1)?).copied()
}

/// The header type byte: bridges only.
pub fn bridge(config: &[u8]) -> Option<Bridge> {
    match config.get(0x0e)? & 0x7f {
        1 => Some(Bridge::Pci),
        2 => Some(Bridge::Cardbus),
        _ => None,
    }
}

/// Where capability `id` sits in the standard capability list, walked as
/// the kernel's pci_find_capability walks it: Some(None) when the function
/// does not have it, None when the list cannot be read (a `config` cut
/// short: a reader without root sees 64 bytes).
fn find_capability(c: &[u8], id: u8) -> Option<Option<usize>> {
    let byte = |at: usize| c.get(at).copied();
    if byte(0x06)? & 0x10 == 0 {
        return Some(None); // no capability list
    }
    // A CardBus bridge keeps its list pointer elsewhere.
    let start = if byte(0x0e)? & 0x7f == 2 { 0x14 } else { 0x34 };
    let mut at = usize::from(byte(start)? & 0xfc);
    // At most 48 capabilities fit in the 192 bytes after the header: a loop ends there.
    for _ in 0..48 {
        if at < 0x40 {
            return Some(None);
        }
        match byte(at)? {
            0xff => return Some(None),
            found if found == id => return Some(Some(at)),
            _ => at = usize::from(byte(at + 1)? & 0xfc),
        }
    }
    Some(None)
}

const CAP_VPD: u8 = 0x03;
const CAP_PCIE: u8 = 0x10;

/// Whether the function can have a `vpd` file: the kernel shows one only
/// for a function whose capability list has the VPD capability. None when
/// the list cannot be read (then only opening `vpd` tells).
pub fn may_have_vpd(c: &[u8]) -> Option<bool> {
    find_capability(c, CAP_VPD).map(|at| at.is_some())
}

/// What the configuration space tells about PCI Express: Some(None) for a
/// conventional PCI function, None when the capability list cannot be read
/// (a truncated `config`).
pub fn from_config(c: &[u8]) -> Option<Option<PcieInfo>> {
    let byte = |at: usize| c.get(at).copied();
    let word = |at: usize| Some(u16::from_le_bytes([byte(at)?, byte(at + 1)?]));
    let Some(at) = find_capability(c, CAP_PCIE)? else {
        return Some(None);
    };
    let kind = (word(at + 2)? >> 4) & 0xf;
    // Root-complex integrated endpoints (9) and event collectors (10) have no link.
    if kind == 9 || kind == 10 {
        return Some(Some(PcieInfo { link: None }));
    }
    let cap = u32::from(word(at + 0x0c)?) | (u32::from(word(at + 0x0e)?) << 16);
    let sta = u32::from(word(at + 0x12)?);
    let cap_link = PcieLink { port: Some((cap >> 24) as u8), speed: speed_name(cap & 0xf), width: (cap >> 4) & 0x3f };
    let sta_link = PcieLink { port: None, speed: speed_name(sta & 0xf), width: (sta >> 4) & 0x3f };
    Some(Some(PcieInfo { link: Some((cap_link, sta_link)) }))
}

/// `8.0 GT/s PCIe` -> "8"; `Unknown` -> None.
fn speed_from_text(s: &str) -> Option<&'static str> {
    let gt = s.split_whitespace().next()?;
    let v: f64 = gt.parse().ok()?;
    SPEEDS.iter().copied().find(|n| n.parse::<f64>().is_ok_and(|x| x == v))
}

impl Host {
    /// The function's bridge type, PCI Express link and whether it may
    /// have VPD: one read of `config`; a reader without root reads the
    /// link files too.
    pub(crate) fn config_facts(&self, addr: &PciAddress) -> ConfigFacts {
        let config = self.sysfs.read_bytes(&dev_path(addr, "config"), 256).unwrap_or_default();
        let pcie = match from_config(&config) {
            Some(known) => known,
            None => self.pcie_from_link_files(addr),
        };
        ConfigFacts { bridge: bridge(&config), pcie, may_have_vpd: may_have_vpd(&config).unwrap_or(true) }
    }

    /// The link as the kernel's files show it: the files exist for PCI
    /// Express functions only; unknown speeds and no width mean no link.
    fn pcie_from_link_files(&self, addr: &PciAddress) -> Option<PcieInfo> {
        let max_speed = self.attr(addr, "max_link_speed")?;
        let width = |name: &str| self.attr(addr, name).and_then(|w| w.parse::<u32>().ok()).unwrap_or(0);
        let (cap_speed, cap_width) = (speed_from_text(&max_speed), width("max_link_width"));
        let sta_speed = self.attr(addr, "current_link_speed").as_deref().and_then(speed_from_text);
        if cap_speed.is_none() && cap_width == 0 {
            return Some(PcieInfo { link: None });
        }
        let sta_width = width("current_link_width");
        Some(PcieInfo {
            link: Some((
                PcieLink { port: None, speed: cap_speed, width: cap_width },
                PcieLink { port: None, speed: sta_speed, width: sta_width },
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_speeds_from_the_kernel_files() {
        assert_eq!(speed_from_text("8.0 GT/s PCIe"), Some("8"));
        assert_eq!(speed_from_text("2.5 GT/s PCIe"), Some("2.5"));
        assert_eq!(speed_from_text("16.0 GT/s PCIe"), Some("16"));
        assert_eq!(speed_from_text("Unknown"), None);
    }

    #[test]
    fn a_capability_list_that_loops_or_is_cut_ends() {
        let mut c = vec![0u8; 256];
        c[6] = 0x10;
        c[0x34] = 0x40;
        c[0x40] = 0x05; // MSI
        c[0x41] = 0x40; // points at itself
        assert_eq!(from_config(&c), Some(None));
        assert_eq!(from_config(&c[..64]), None, "a reader without root cannot tell");
        assert_eq!(from_config(&[]), None);
    }

    /// The kernel shows `vpd` only for a function whose capability list has
    /// the VPD capability; a reader without root cannot tell.
    #[test]
    fn vpd_is_possible_only_with_the_vpd_capability() {
        let mut c = vec![0u8; 256];
        assert_eq!(may_have_vpd(&c), Some(false), "no capability list");
        c[6] = 0x10;
        c[0x34] = 0x40;
        c[0x40] = 0x10; // PCI Express
        c[0x41] = 0x80;
        c[0x80] = 0x05; // MSI, last
        assert_eq!(may_have_vpd(&c), Some(false));
        c[0x81] = 0x90;
        c[0x90] = 0x03; // VPD, last
        assert_eq!(may_have_vpd(&c), Some(true));
        assert_eq!(may_have_vpd(&c[..64]), None, "a reader without root cannot tell");
        assert_eq!(may_have_vpd(&c[..0x85]), None, "cut in the middle of the list");
        // A CardBus bridge's list starts at 0x14.
        c[0x0e] = 2;
        c[0x34] = 0;
        assert_eq!(may_have_vpd(&c), Some(false));
        c[0x14] = 0x90;
        assert_eq!(may_have_vpd(&c), Some(true));
    }
}
