//! PCI addresses and their two spellings: the kernel's `0000:03:00.1` and
//! libvirt's node-device name `pci_0000_03_00_1`.

use crate::error::{Error, Result};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    /// PCI segment (domain), `0000` on most hosts.
    pub domain: u32,
    /// Bus number.
    pub bus: u8,
    /// Device (slot) number, 0 to 0x1f.
    pub slot: u8,
    /// Function number, 0 to 7.
    pub function: u8,
}

impl PciAddress {
    /// Parse either spelling. Strict: exact field widths, slot <= 0x1f, function <= 7.
    pub fn parse(name: &str) -> Result<PciAddress> {
        let bad = || {
            Error::InvalidArg(format!(
                "'{}' is not a PCI device name: expected DDDD:BB:SS.F (e.g. 0000:03:00.1) or pci_DDDD_BB_SS_F (e.g. pci_0000_03_00_1)",
                name.escape_debug()
            ))
        };
        let fields: Vec<&str> = if let Some(rest) = name.strip_prefix("pci_") {
            rest.split('_').collect()
        } else {
            let (head, func) = name.rsplit_once('.').ok_or_else(bad)?;
            let mut f: Vec<&str> = head.split(':').collect();
            f.push(func);
            f
        };
        if fields.len() != 4 {
            return Err(bad());
        }
        let hex = |s: &str, min: usize, max: usize| -> Option<u32> {
            if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u32::from_str_radix(s, 16).ok()
        };
        let domain = hex(fields[0], 4, 8).ok_or_else(bad)?;
        let bus = hex(fields[1], 2, 2).ok_or_else(bad)?;
        let slot = hex(fields[2], 2, 2).filter(|s| *s <= 0x1f).ok_or_else(bad)?;
        let function = hex(fields[3], 1, 1).filter(|f| *f <= 7).ok_or_else(bad)?;
        Ok(PciAddress { domain, bus: bus as u8, slot: slot as u8, function: function as u8 })
    }

    /// libvirt's node-device name.
    pub fn node_name(&self) -> String {
        format!("pci_{:04x}_{:02x}_{:02x}_{:x}", self.domain, self.bus, self.slot, self.function)
    }
}

/// The kernel's spelling, `0000:03:00.1`.
impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:02x}:{:02x}.{:x}", self.domain, self.bus, self.slot, self.function)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_parse_to_the_same_address() {
        let a = PciAddress::parse("0000:03:00.1").unwrap();
        let b = PciAddress::parse("pci_0000_03_00_1").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "0000:03:00.1");
        assert_eq!(a.node_name(), "pci_0000_03_00_1");
        let wide = PciAddress::parse("10000:e1:1f.7").unwrap();
        assert_eq!(wide.to_string(), "10000:e1:1f.7");
    }

    #[test]
    fn malformed_names_are_invalid_arguments() {
        for bad in [
            "",
            "pci_",
            "0000:03:00",
            "0000:03:00.8",
            "0000:03:20.0",
            "000:03:00.0",
            "0000:3:00.0",
            "0000:03:00.1x",
            "pci_0000_03_00",
            "pci_0000_03_00_1_2",
            "0000:03:00.1\n",
            "../../etc",
            "0000:0g:00.0",
            "pci_0000_03_00_1 ",
            "+000:03:00.0",
        ] {
            match PciAddress::parse(bad) {
                Err(Error::InvalidArg(m)) => assert!(m.contains("not a PCI device name"), "{m}"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }
}
