//! libvirt's node-device XML for a PCI function (the subset a PCI device has).

use super::node::{NetInfo, PciExtras, SystemInfo};
use super::{DeviceInfo, Host};
use crate::address::PciAddress;
use crate::error::Result;
use std::fmt::Write;

/// A string from sysfs, DMI, VPD or pci.ids as XML text. Characters XML 1.0
/// cannot carry (control characters other than tab and line ends, U+FFFE,
/// U+FFFF) are left out, as libvirt's virBufferEscapeString leaves them out.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{fffe}' || c == '\u{ffff}' => {}
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

fn address_element(a: &PciAddress) -> String {
    format!(
        "<address domain='0x{:04x}' bus='0x{:02x}' slot='0x{:02x}' function='0x{:x}'/>",
        a.domain, a.bus, a.slot, a.function
    )
}

fn id_element(tag: &str, id: u16, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("<{tag} id='0x{id:04x}'>{}</{tag}>", escape(n)),
        None => format!("<{tag} id='0x{id:04x}'/>"),
    }
}

pub fn render(d: &DeviceInfo, extras: &PciExtras) -> String {
    let mut x = String::new();
    let a = &d.address;
    let _ = writeln!(x, "<device>");
    let _ = writeln!(x, "  <name>{}</name>", a.node_name());
    let _ = writeln!(x, "  <path>{}</path>", escape(&d.sysfs_path));
    let parent = d.parent.map(|p| p.node_name()).unwrap_or_else(|| "computer".into());
    let _ = writeln!(x, "  <parent>{parent}</parent>");
    if let Some(drv) = &d.driver {
        let _ = writeln!(x, "  <driver>\n    <name>{}</name>\n  </driver>", escape(drv));
    }
    let _ = writeln!(x, "  <capability type='pci'>");
    let _ = writeln!(x, "    <class>0x{:06x}</class>", d.class);
    let _ = writeln!(x, "    <domain>{}</domain>", a.domain);
    let _ = writeln!(x, "    <bus>{}</bus>", a.bus);
    let _ = writeln!(x, "    <slot>{}</slot>", a.slot);
    let _ = writeln!(x, "    <function>{}</function>", a.function);
    let _ = writeln!(x, "    {}", id_element("product", d.device, d.product_name.as_deref()));
    let _ = writeln!(x, "    {}", id_element("vendor", d.vendor, d.vendor_name.as_deref()));
    if let Some(pf) = &d.physfn {
        let _ = writeln!(x, "    <capability type='phys_function'>\n      {}\n    </capability>", address_element(pf));
    }
    if let Some(total) = d.sriov_totalvfs {
        let _ = writeln!(x, "    <capability type='virt_functions' maxCount='{total}'>");
        for vf in &d.virtfns {
            let _ = writeln!(x, "      {}", address_element(vf));
        }
        let _ = writeln!(x, "    </capability>");
    }
    // ---- libvirt's device tree (tree): bridge type, mdev types, then VPD
    // (virNodeDeviceCapPCIDefFormat's order, which nodedev.rng requires) ----
    if let Some(b) = extras.bridge {
        let _ = writeln!(x, "    <capability type='{}'/>", b.libvirt_name());
    }
    x.push_str(&super::mdev_xml::render_mdev_types(&d.mdev_types));
    if let Some(v) = &extras.vpd {
        render_vpd(&mut x, v);
    }
    if let Some(g) = d.iommu_group {
        let _ = writeln!(x, "    <iommuGroup number='{g}'>");
        for m in &d.group_members {
            let _ = writeln!(x, "      {}", address_element(m));
        }
        let _ = writeln!(x, "    </iommuGroup>");
    }
    if let Some(n) = d.numa_node {
        let _ = writeln!(x, "    <numa node='{n}'/>");
    }
    if let Some(p) = &extras.pcie {
        render_pcie(&mut x, p);
    }
    let _ = writeln!(x, "  </capability>");
    let _ = writeln!(x, "</device>");
    x
}

impl Host {
    /// libvirt's node-device XML of the device (virNodeDeviceGetXMLDesc).
    ///
    /// ```
    /// let host = nodedev::Host::open("test:///default")?;
    /// let xml = host.xml(&host.lookup("0000:03:01.0")?)?;
    /// assert!(xml.contains("<name>pci_0000_03_01_0</name>"), "{xml}");
    /// # Ok::<(), nodedev::Error>(())
    /// ```
    pub fn xml(&self, addr: &PciAddress) -> Result<String> {
        let info = self.device_info(addr)?;
        Ok(render(&info, &self.pci_extras(addr)))
    }

    #[doc(hidden)]
    /// `xml` of a device whose `placement_link` the caller has (a handle).
    pub fn xml_placed(&self, addr: &PciAddress, link: &str) -> Result<String> {
        Ok(render(&self.device_info_placed(addr, Some(link))?, &self.pci_extras(addr)))
    }
}

// ---- libvirt's device tree (tree): computer, net devices, pci-express, vpd ----

fn opt_element(x: &mut String, indent: &str, tag: &str, value: &Option<String>) {
    if let Some(v) = value {
        let _ = writeln!(x, "{indent}<{tag}>{}</{tag}>", escape(v));
    }
}

/// `<pci-express>`: the link's capability and status, or empty for a
/// function without a link.
fn render_pcie(x: &mut String, p: &super::pcie::PcieInfo) {
    let Some((cap, sta)) = &p.link else {
        let _ = writeln!(x, "    <pci-express/>");
        return;
    };
    let _ = writeln!(x, "    <pci-express>");
    for (validity, l) in [("cap", cap), ("sta", sta)] {
        let port = l.port.map(|p| format!(" port='{p}'")).unwrap_or_default();
        let speed = l.speed.map(|s| format!(" speed='{s}'")).unwrap_or_default();
        let _ = writeln!(x, "      <link validity='{validity}'{port}{speed} width='{}'/>", l.width);
    }
    let _ = writeln!(x, "    </pci-express>");
}

/// `<capability type='vpd'>`. Values are escaped (libvirt writes field
/// values as they are, which a '<' in a card's VPD would break).
fn render_vpd(x: &mut String, v: &super::vpd::Vpd) {
    let _ = writeln!(x, "    <capability type='vpd'>");
    let _ = writeln!(x, "      <name>{}</name>", escape(v.name.as_deref().unwrap_or("")));
    for (access, f) in [("readonly", &v.readonly), ("readwrite", &v.readwrite)] {
        let Some(f) = f else { continue };
        let _ = writeln!(x, "      <fields access='{access}'>");
        let i = "        ";
        if access == "readonly" {
            opt_element(x, i, "change_level", &f.change_level);
            opt_element(x, i, "manufacture_id", &f.manufacture_id);
            opt_element(x, i, "part_number", &f.part_number);
            opt_element(x, i, "serial_number", &f.serial_number);
        } else {
            opt_element(x, i, "asset_tag", &f.asset_tag);
        }
        for (idx, val) in &f.vendor {
            let _ = writeln!(x, "{i}<vendor_field index='{idx}'>{}</vendor_field>", escape(val));
        }
        for (idx, val) in &f.system {
            let _ = writeln!(x, "{i}<system_field index='{idx}'>{}</system_field>", escape(val));
        }
        let _ = writeln!(x, "      </fields>");
    }
    let _ = writeln!(x, "    </capability>");
}

/// The `computer` device: no path, no parent.
pub fn render_system(s: &SystemInfo) -> String {
    let mut x = String::new();
    let _ = writeln!(x, "<device>\n  <name>computer</name>\n  <capability type='system'>");
    opt_element(&mut x, "    ", "product", &s.product);
    let _ = writeln!(x, "    <hardware>");
    opt_element(&mut x, "      ", "vendor", &s.hardware_vendor);
    opt_element(&mut x, "      ", "version", &s.hardware_version);
    opt_element(&mut x, "      ", "serial", &s.hardware_serial);
    let _ = writeln!(x, "      <uuid>{}</uuid>\n    </hardware>\n    <firmware>", s.uuid);
    opt_element(&mut x, "      ", "vendor", &s.firmware_vendor);
    opt_element(&mut x, "      ", "version", &s.firmware_version);
    opt_element(&mut x, "      ", "release_date", &s.firmware_release_date);
    let _ = writeln!(x, "    </firmware>\n  </capability>\n</device>");
    x
}

/// `52:54:00:12:34:56`: what nodedev.rng's `mac` pattern accepts.
fn is_mac48(m: &str) -> bool {
    m.len() == 17
        && m.split(':').count() == 6
        && m.split(':').all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// A `net_IFNAME_MAC` device: parent its PCI function, no driver element
/// (an interface has none in the kernel's sense).
pub fn render_net(n: &NetInfo) -> String {
    let mut x = String::new();
    let i = &n.iface;
    let _ = writeln!(x, "<device>\n  <name>{}</name>", escape(&i.name));
    let _ = writeln!(x, "  <path>{}</path>", escape(&i.sysfs_path));
    let _ = writeln!(x, "  <parent>{}</parent>", i.parent.node_name());
    let _ = writeln!(x, "  <capability type='net'>\n    <interface>{}</interface>", escape(&i.iface));
    // Only an Ethernet-shaped address: the schema's `mac` takes six bytes,
    // so an InfiniBand interface's 20 (which libvirt copies) are left out.
    opt_element(&mut x, "    ", "address", &i.mac.clone().filter(|m| is_mac48(m)));
    if n.speed.is_some() || n.state.is_some() {
        let speed = n.speed.map(|s| format!(" speed='{s}'")).unwrap_or_default();
        let state = n.state.as_ref().map(|s| format!(" state='{s}'")).unwrap_or_default();
        let _ = writeln!(x, "    <link{speed}{state}/>");
    }
    for f in &n.features {
        let _ = writeln!(x, "    <feature name='{}'/>", escape(f));
    }
    let _ = writeln!(x, "    <capability type='{}'/>", if n.wireless { "80211" } else { "80203" });
    let _ = writeln!(x, "  </capability>\n</device>");
    x
}
