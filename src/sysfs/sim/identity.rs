//! What the hardware tells about itself: a function's configuration space
//! (ids, class, header type, the PCI Express capability), its PCIe link
//! files, its Vital Product Data, and the machine's DMI strings.
//!
//! Kernel rules kept here: `config` shows a reader without root only its
//! first 64 bytes (the standard header), `vpd` and the DMI serial numbers and
//! UUID are root's only (EACCES), and an interface's `speed` cannot be read
//! while it is down (EINVAL).

use super::spec::{PcieSpec, VpdSpec};
use super::tree::File;
use super::{err, Dev, Kernel};
use std::io;

/// `devices/virtual/dmi/id` attributes, as a listing gives them.
pub(super) const DMI_ATTRS: [&str; 8] = [
    "bios_date",
    "bios_vendor",
    "bios_version",
    "product_name",
    "product_serial",
    "product_uuid",
    "product_version",
    "sys_vendor",
];

/// Where the PCI Express capability sits in a simulated config space.
const PCIE_CAP: usize = 0x40;
/// Where the VPD capability sits (after the 60 bytes of PCI Express).
const VPD_CAP: usize = 0x80;

/// libvirt's speed names and the Link Capabilities/Status encoding (1 = 2.5 GT/s).
const SPEEDS: [&str; 6] = ["2.5", "5", "8", "16", "32", "64"];

pub(super) fn speed_code(name: &str) -> Option<u8> {
    SPEEDS.iter().position(|s| *s == name).map(|i| i as u8 + 1)
}

/// The kernel's text for a link speed file (`8.0 GT/s PCIe`).
fn speed_text(name: Option<&str>) -> String {
    match name {
        Some(s) if speed_code(s).is_some() => {
            let gt = if s.contains('.') { s.to_string() } else { format!("{s}.0") };
            format!("{gt} GT/s PCIe")
        }
        _ => "Unknown".to_string(),
    }
}

/// The 256 bytes of a function's configuration space.
pub(super) fn config_space(dev: &Dev) -> Vec<u8> {
    let mut c = vec![0u8; 256];
    c[0..2].copy_from_slice(&dev.vendor.to_le_bytes());
    c[2..4].copy_from_slice(&dev.device.to_le_bytes());
    c[9] = dev.class as u8;
    c[10] = (dev.class >> 8) as u8;
    c[11] = (dev.class >> 16) as u8;
    c[0x0e] = match dev.class >> 8 {
        0x0604 => 1,
        0x0607 => 2,
        _ => 0,
    };
    if c[0x0e] == 0 {
        c[0x2c..0x2e].copy_from_slice(&dev.subsystem_vendor.to_le_bytes());
        c[0x2e..0x30].copy_from_slice(&dev.subsystem_device.to_le_bytes());
    }
    // The capability list starts at 0x34 (0x14 in a CardBus bridge's header).
    let list = if c[0x0e] == 2 { 0x14 } else { 0x34 };
    // The kernel shows `vpd` only for a function with the VPD capability:
    // a function with VPD has it, after the PCI Express capability if any.
    if dev.vpd.is_some() {
        c[6] |= 0x10; // status: capabilities list
        c[list] = VPD_CAP as u8;
        c[VPD_CAP] = 0x03; // VPD capability, last in the list
    }
    if let Some(p) = &dev.pcie {
        c[6] |= 0x10; // status: capabilities list
        c[PCIE_CAP] = 0x10; // PCI Express capability
        c[PCIE_CAP + 1] = c[list]; // followed by VPD, or last
        c[list] = PCIE_CAP as u8;
        let kind: u16 = if p.integrated {
            9
        } else if dev.class >> 8 == 0x0604 && dev.parent.is_none() {
            4 // a root port
        } else {
            0 // an endpoint
        };
        c[PCIE_CAP + 2..PCIE_CAP + 4].copy_from_slice(&(2 | (kind << 4)).to_le_bytes());
        if !p.integrated {
            let cap = u32::from(p.max_speed.as_deref().and_then(speed_code).unwrap_or(0))
                | (u32::from(p.max_width) << 4)
                | (u32::from(p.port) << 24);
            c[PCIE_CAP + 0x0c..PCIE_CAP + 0x10].copy_from_slice(&cap.to_le_bytes());
            let sta = u16::from(p.speed.as_deref().and_then(speed_code).unwrap_or(0)) | (u16::from(p.width) << 4);
            c[PCIE_CAP + 0x12..PCIE_CAP + 0x14].copy_from_slice(&sta.to_le_bytes());
        }
    }
    c
}

/// A `max_link_*`/`current_link_*` file of a PCIe function.
pub(super) fn link_file(p: &PcieSpec, name: &str) -> String {
    let none = p.integrated;
    match name {
        "max_link_speed" => speed_text(p.max_speed.as_deref().filter(|_| !none)),
        "current_link_speed" => speed_text(p.speed.as_deref().filter(|_| !none)),
        "max_link_width" => (if none { 0 } else { p.max_width }).to_string(),
        _ => (if none { 0 } else { p.width }).to_string(),
    }
}

/// Encode VPD as a card stores it: the identifier string, VPD-R with its
/// RV checksum, VPD-W with its RW filler, the end tag. Err on what cannot be
/// encoded (a keyword not of two characters, a value over 255 bytes).
pub(super) fn encode_vpd(v: &VpdSpec) -> Result<Vec<u8>, String> {
    let large = |out: &mut Vec<u8>, tag: u8, body: &[u8]| -> Result<(), String> {
        let len = u16::try_from(body.len()).map_err(|_| "vpd: a section is over 64 KiB".to_string())?;
        out.push(tag);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
        Ok(())
    };
    let fields = |list: &[(String, String)]| -> Result<Vec<u8>, String> {
        let mut b = Vec::new();
        for (k, val) in list {
            if k.len() != 2 || !k.is_ascii() || val.len() > 255 {
                return Err(format!(
                    "vpd: field '{}' needs a two-character keyword and at most 255 bytes",
                    k.escape_debug()
                ));
            }
            b.extend_from_slice(k.as_bytes());
            b.push(val.len() as u8);
            b.extend_from_slice(val.as_bytes());
        }
        Ok(b)
    };
    let mut out = Vec::new();
    large(&mut out, 0x82, v.name.as_bytes())?;
    // VPD-R: the fields, then RV whose first byte makes the sum of every
    // byte so far zero.
    let mut ro = fields(&v.readonly)?;
    ro.extend_from_slice(b"RV\x01");
    let ro_len = ro.len() + 1;
    let mut so_far: Vec<u8> = out.clone();
    so_far.push(0x90);
    so_far.extend_from_slice(&(ro_len as u16).to_le_bytes());
    so_far.extend_from_slice(&ro);
    let sum = so_far.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    ro.push(0u8.wrapping_sub(sum));
    debug_assert_eq!(ro.len(), ro_len);
    large(&mut out, 0x90, &ro)?;
    if !v.readwrite.is_empty() {
        let mut rw = fields(&v.readwrite)?;
        rw.extend_from_slice(b"RW\x04\0\0\0\0");
        large(&mut out, 0x91, &rw)?;
    }
    out.push(0x78);
    Ok(out)
}

impl Kernel {
    /// Why reading `file` fails, if it does, before its contents are shown.
    pub(super) fn read_error(&self, file: File) -> Option<i32> {
        match file {
            File::Dmi("product_serial" | "product_uuid") | File::Dev(_, "vpd") if self.unprivileged => {
                Some(libc::EACCES)
            }
            File::Dmi(name) if self.dmi_value(name).is_none() => Some(libc::ENOENT),
            File::Net(i, "speed") if !self.uses.nets[i].up => Some(libc::EINVAL),
            _ => None,
        }
    }

    pub(super) fn dmi_value(&self, name: &str) -> Option<&str> {
        let d = self.dmi.as_ref()?;
        match name {
            "sys_vendor" => &d.sys_vendor,
            "product_name" => &d.product_name,
            "product_version" => &d.product_version,
            "product_serial" => &d.product_serial,
            "product_uuid" => &d.product_uuid,
            "bios_vendor" => &d.bios_vendor,
            "bios_version" => &d.bios_version,
            "bios_date" => &d.bios_date,
            _ => &None,
        }
        .as_deref()
    }

    /// A binary attribute's bytes as the kernel's read gives them.
    pub(super) fn bytes(&self, file: File) -> io::Result<Vec<u8>> {
        if let Some(e) = self.read_error(file) {
            return Err(err(e));
        }
        Ok(match file {
            File::Dev(a, "config") => {
                let mut c = config_space(self.dev(a));
                if self.unprivileged {
                    c.truncate(64);
                }
                c
            }
            File::Dev(a, "vpd") => self.dev(a).vpd.clone().unwrap_or_default(),
            f => self.show(f).into_bytes(),
        })
    }
}
