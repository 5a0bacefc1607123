//! libvirt's node-device XML for a PCI function (the subset a PCI device has).

use super::{DeviceInfo, Host};
use crate::address::PciAddress;
use crate::error::Result;
use std::fmt::Write;

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
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

pub fn render(d: &DeviceInfo) -> String {
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
    x.push_str(&super::mdev_xml::render_mdev_types(&d.mdev_types));
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
        Ok(render(&self.device_info(addr)?))
    }

    #[doc(hidden)]
    /// `xml` of a device whose `placement_link` the caller has (a handle).
    pub fn xml_placed(&self, addr: &PciAddress, link: &str) -> Result<String> {
        Ok(render(&self.device_info_placed(addr, Some(link))?))
    }
}
