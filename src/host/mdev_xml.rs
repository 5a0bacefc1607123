//! libvirt's node-device XML for mediated devices: the document of an mdev,
//! the `<capability type='mdev_types'>` of a parent, and the reading of
//! the XML a caller gives virNodeDeviceCreateXML / virNodeDeviceDefineXML:
//!
//! ```xml
//! <device>
//!   <parent>pci_0000_00_02_0</parent>
//!   <capability type='mdev'>
//!     <type id='i915-GVTg_V5_4'/>
//!     <uuid>83b8f4f2-509f-382f-3c1e-e6bfe0fa1001</uuid>   (optional)
//!     <attr name='NAME' value='VALUE'/>                   (any number, in order)
//!   </capability>
//! </device>
//! ```
//!
//! The reader takes the XML subset such documents use (elements,
//! attributes, text, the five entities and character references, comments,
//! an XML declaration); a DOCTYPE is refused (no entity expansion), and so
//! are documents over 64 KiB or nested deeper than 16.

use super::mdev::{MdevConfig, MdevInfo, MdevType};
use crate::address::PciAddress;
use std::fmt::Write;

/// Why a document is not an mdev to create, in libvirt's classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MdevXmlProblem {
    /// Not well-formed XML (libvirt's parser: VIR_ERR_XML_DETAIL).
    Malformed(String),
    /// Well-formed, but not a `<device>` document (VIR_ERR_XML_ERROR).
    Xml(String),
    /// A device nodedev cannot create, or an mdev capability without its
    /// type or with an incomplete attribute (VIR_ERR_CONFIG_UNSUPPORTED).
    Unsupported(String),
}

const MAX_DOC: usize = 64 * 1024;
const MAX_DEPTH: usize = 16;

#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
    text: String,
}

impl Node {
    fn attr(&self, n: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str())
    }

    fn child(&self, n: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == n)
    }
}

struct Reader<'a> {
    s: &'a str,
    at: usize,
}

fn bad(msg: impl Into<String>) -> MdevXmlProblem {
    MdevXmlProblem::Xml(msg.into())
}

impl Reader<'_> {
    fn rest(&self) -> &str {
        &self.s[self.at..]
    }

    fn skip_ws(&mut self) {
        let n = self.rest().len() - self.rest().trim_start().len();
        self.at += n;
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.rest().starts_with(p) {
            self.at += p.len();
            true
        } else {
            false
        }
    }

    fn skip_past(&mut self, end: &str, what: &str) -> Result<(), MdevXmlProblem> {
        let i = self.rest().find(end).ok_or_else(|| bad(format!("unterminated {what}")))?;
        self.at += i + end.len();
        Ok(())
    }

    /// Comments, processing instructions and white space between elements.
    fn skip_misc(&mut self) -> Result<(), MdevXmlProblem> {
        loop {
            self.skip_ws();
            if self.eat("<!--") {
                self.skip_past("-->", "comment")?;
            } else if self.eat("<?") {
                self.skip_past("?>", "processing instruction")?;
            } else if self.rest().starts_with("<!") {
                return Err(bad("DOCTYPE and other declarations are not accepted"));
            } else {
                return Ok(());
            }
        }
    }

    fn name(&mut self) -> Result<String, MdevXmlProblem> {
        let n =
            self.rest().find(|c: char| !(c.is_ascii_alphanumeric() || "_-.:".contains(c))).unwrap_or(self.rest().len());
        if n == 0 {
            return Err(bad(format!("a name was expected at byte {}", self.at)));
        }
        let name = self.rest()[..n].to_string();
        self.at += n;
        Ok(name)
    }

    fn element(&mut self, depth: usize) -> Result<Node, MdevXmlProblem> {
        if depth > MAX_DEPTH {
            return Err(bad("elements nested too deep"));
        }
        if !self.eat("<") {
            return Err(bad(format!("an element was expected at byte {}", self.at)));
        }
        let mut node = Node { name: self.name()?, ..Node::default() };
        loop {
            self.skip_ws();
            if self.eat("/>") {
                return Ok(node);
            }
            if self.eat(">") {
                break;
            }
            let k = self.name()?;
            self.skip_ws();
            if !self.eat("=") {
                return Err(bad(format!("attribute {k} of <{}> has no value", node.name)));
            }
            self.skip_ws();
            let q = match self.rest().chars().next() {
                Some(q @ ('\'' | '"')) => q,
                _ => return Err(bad(format!("attribute {k} of <{}> is not quoted", node.name))),
            };
            self.at += 1;
            let end = self.rest().find(q).ok_or_else(|| bad(format!("attribute {k} is not terminated")))?;
            let raw = &self.rest()[..end];
            if raw.contains('<') {
                return Err(bad(format!("'<' in attribute {k}")));
            }
            let v = unescape(raw)?;
            self.at += end + 1;
            if node.attrs.iter().any(|(o, _)| *o == k) {
                return Err(bad(format!("attribute {k} of <{}> is given twice", node.name)));
            }
            node.attrs.push((k, v));
        }
        loop {
            let text_end = self.rest().find('<').ok_or_else(|| bad(format!("<{}> is not closed", node.name)))?;
            node.text.push_str(&unescape(&self.rest()[..text_end])?);
            self.at += text_end;
            if self.eat("<!--") {
                self.skip_past("-->", "comment")?;
            } else if self.eat("</") {
                let end = self.name()?;
                self.skip_ws();
                if end != node.name || !self.eat(">") {
                    return Err(bad(format!("<{}> is closed by </{end}>", node.name)));
                }
                return Ok(node);
            } else if self.rest().starts_with("<!") || self.rest().starts_with("<?") {
                return Err(bad("CDATA, declarations and processing instructions are not accepted inside elements"));
            } else {
                node.children.push(self.element(depth + 1)?);
            }
        }
    }
}

fn unescape(s: &str) -> Result<String, MdevXmlProblem> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(';').ok_or_else(|| bad("an entity reference has no ';'"))?;
        let ent = &rest[i + 1..i + end];
        let c = match ent {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "apos" => '\'',
            "quot" => '"',
            _ => {
                let n = if let Some(h) = ent.strip_prefix("#x") {
                    u32::from_str_radix(h, 16).ok()
                } else if let Some(d) = ent.strip_prefix('#') {
                    d.parse().ok()
                } else {
                    None
                };
                n.and_then(char::from_u32)
                    .filter(|c| *c != '\0')
                    .ok_or_else(|| bad(format!("unknown entity &{ent};")))?
            }
        };
        out.push(c);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn parse_document(text: &str) -> Result<Node, MdevXmlProblem> {
    if text.len() > MAX_DOC {
        return Err(bad(format!("the document is {} bytes, more than a device description can be", text.len())));
    }
    let mut r = Reader { s: text, at: 0 };
    r.skip_misc()?;
    let root = r.element(0)?;
    r.skip_misc()?;
    if !r.rest().is_empty() {
        return Err(bad("content after the root element"));
    }
    Ok(root)
}

/// The parent named in `<parent>`: libvirt's `pci_0000_00_02_0` or the
/// kernel's address.
fn parent_address(name: &str) -> Option<PciAddress> {
    PciAddress::parse(name.trim()).ok()
}

/// Read the XML given to virNodeDeviceCreateXML / DefineXML, in the order
/// libvirt's parser finds problems (node_device_conf.c: the document, the
/// capabilities, then the parent). The parent's name is returned as given
/// when it is no PCI device name ("" when there is none): the caller decides
/// between "no such device" and "not a parent".
pub fn parse_mdev_xml(text: &str) -> Result<Result<MdevConfig, String>, MdevXmlProblem> {
    let root = parse_document(text).map_err(|e| match e {
        MdevXmlProblem::Xml(m) => MdevXmlProblem::Malformed(m),
        other => other,
    })?;
    if root.name != "device" {
        return Err(bad(format!("expecting root element of 'device', not '{}'", root.name)));
    }
    let caps: Vec<&Node> = root.children.iter().filter(|c| c.name == "capability").collect();
    let Some(cap) = caps.first() else {
        return Err(bad("no device capability: a mediated device has <capability type='mdev'>"));
    };
    let kind = cap.attr("type").ok_or_else(|| bad("<capability> has no type attribute"))?;
    if kind != "mdev" || caps.len() > 1 {
        return Err(MdevXmlProblem::Unsupported(format!(
            "unsupported device type '{kind}': nodedev creates and defines mediated devices (<capability type='mdev'>) only"
        )));
    }
    let type_id = cap
        .child("type")
        .and_then(|t| t.attr("id"))
        .ok_or_else(|| {
            MdevXmlProblem::Unsupported("missing type id attribute: add <type id='...'/> to the mdev capability".into())
        })?
        .to_string();
    let uuid = cap.child("uuid").map(|u| libvirt_uuid(&u.text).unwrap_or_else(|| u.text.trim().to_string()));
    let mut attrs = Vec::new();
    for a in cap.children.iter().filter(|c| c.name == "attr") {
        let (Some(n), Some(v)) = (a.attr("name"), a.attr("value")) else {
            return Err(MdevXmlProblem::Unsupported("mdev attribute missing name or value".into()));
        };
        attrs.push((n.to_string(), v.to_string()));
    }
    let parent = root.child("parent").map(|p| p.text.trim().to_string()).unwrap_or_default();
    Ok(match parent_address(&parent) {
        Some(parent) => Ok(MdevConfig { parent, type_id, uuid, attrs }),
        None => Err(parent),
    })
}

/// A UUID as libvirt's XML takes it (virUUIDParse's rules): white space
/// around it, 32 hex digits in pairs, '-' or ' ' allowed between pairs;
/// returned as the kernel spells it. None for anything else.
fn libvirt_uuid(text: &str) -> Option<String> {
    let mut hex = String::with_capacity(32);
    let mut chars = text.trim_start().chars().peekable();
    while hex.len() < 32 {
        match chars.next()? {
            '-' | ' ' => continue,
            hi if hi.is_ascii_hexdigit() => {
                let lo = chars.next().filter(char::is_ascii_hexdigit)?;
                hex.push(hi.to_ascii_lowercase());
                hex.push(lo.to_ascii_lowercase());
            }
            _ => return None,
        }
    }
    if !chars.all(|c| c.is_ascii_whitespace()) {
        return None;
    }
    Some(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&apos;").replace('"', "&quot;")
}

/// An mdev's document, as libvirt writes it.
pub fn render_mdev(m: &MdevInfo) -> String {
    let mut x = String::new();
    let _ = writeln!(x, "<device>");
    let _ = writeln!(x, "  <name>{}</name>", m.id.node_name());
    if let Some(p) = &m.sysfs_path {
        let _ = writeln!(x, "  <path>{}</path>", escape(p));
    }
    let _ = writeln!(x, "  <parent>{}</parent>", m.id.parent.node_name());
    if let Some(d) = &m.driver {
        let _ = writeln!(x, "  <driver>\n    <name>{}</name>\n  </driver>", escape(d));
    }
    let _ = writeln!(x, "  <capability type='mdev'>");
    let _ = writeln!(x, "    <type id='{}'/>", escape(&m.type_id));
    let _ = writeln!(x, "    <uuid>{}</uuid>", m.id.uuid);
    let _ = writeln!(x, "    <parent_addr>{}</parent_addr>", m.id.parent);
    if let Some(g) = m.iommu_group {
        let _ = writeln!(x, "    <iommuGroup number='{g}'/>");
    }
    for (n, v) in m.definition.iter().flat_map(|d| d.attrs.iter()) {
        let _ = writeln!(x, "    <attr name='{}' value='{}'/>", escape(n), escape(v));
    }
    let _ = writeln!(x, "  </capability>");
    let _ = writeln!(x, "</device>");
    x
}

/// A parent's `<capability type='mdev_types'>`, indented for inside `<capability type='pci'>`.
pub fn render_mdev_types(types: &[MdevType]) -> String {
    if types.is_empty() {
        return String::new();
    }
    let mut x = String::new();
    let _ = writeln!(x, "    <capability type='mdev_types'>");
    for t in types {
        let _ = writeln!(x, "      <type id='{}'>", escape(&t.id));
        if let Some(n) = &t.name {
            let _ = writeln!(x, "        <name>{}</name>", escape(n));
        }
        let _ = writeln!(x, "        <deviceAPI>{}</deviceAPI>", escape(&t.device_api));
        let _ = writeln!(x, "        <availableInstances>{}</availableInstances>", t.available_instances);
        let _ = writeln!(x, "      </type>");
    }
    let _ = writeln!(x, "    </capability>");
    x
}

impl super::Host {
    pub fn mdev_xml(&self, id: &super::MdevId) -> crate::Result<String> {
        Ok(render_mdev(&self.mdev(id)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_create_document_is_read_with_its_attributes_in_order() {
        let doc = "<?xml version='1.0'?>\n<!-- made by hand -->\n<device>\n  <name>ignored</name>\n  <parent>pci_0000_00_02_0</parent>\n  <capability type=\"mdev\">\n    <type id='i915-GVTg_V5_4'/>\n    <uuid> 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 </uuid>\n    <attr name='b' value='x &amp; &#x79;'/>\n    <attr name='a' value='2'/>\n  </capability>\n</device>\n";
        let cfg = parse_mdev_xml(doc).unwrap().unwrap();
        assert_eq!(cfg.parent.to_string(), "0000:00:02.0");
        assert_eq!(cfg.type_id, "i915-GVTg_V5_4");
        assert_eq!(cfg.uuid.as_deref(), Some("83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"));
        assert_eq!(cfg.attrs, vec![("b".into(), "x & y".into()), ("a".into(), "2".into())]);
    }

    #[test]
    fn bad_documents_get_libvirts_classes_in_libvirts_order() {
        // node_device_conf.c virNodeDeviceDefParse: virXMLParse (not
        // well-formed: XML_DETAIL; another root: XML_ERROR), the capability
        // (virNodeDevCapMdevParseXML: CONFIG_UNSUPPORTED), then the parent
        // (the driver's validate callback, left to the caller).
        let malformed = |d: &str| matches!(parse_mdev_xml(d), Err(MdevXmlProblem::Malformed(_)));
        let unsupported = |d: &str| matches!(parse_mdev_xml(d), Err(MdevXmlProblem::Unsupported(_)));
        assert!(malformed(""));
        assert!(malformed("<device>"));
        assert!(malformed("<device></devices>"));
        assert!(malformed("<!DOCTYPE x [<!ENTITY a 'b'>]><device/>"));
        assert!(malformed(&format!("<device>{}</device>", "<a>".repeat(20) + &"</a>".repeat(20))));
        assert!(matches!(parse_mdev_xml("<domain/>"), Err(MdevXmlProblem::Xml(_))));
        assert!(unsupported("<device><parent>p</parent><capability type='mdev'/></device>"), "no type");
        assert!(unsupported("<device><capability type='mdev'/></device>"), "no type before no parent");
        assert!(unsupported(
            "<device><parent>p</parent><capability type='mdev'><type id='t'/><attr name='a'/></capability></device>"
        ));
        assert!(unsupported("<device><parent>x</parent><capability type='scsi_host'/></device>"));
        // No parent, or one that is no PCI name: the caller's to judge.
        let r = parse_mdev_xml("<device><capability type='mdev'><type id='t'/></capability></device>");
        assert_eq!(r.unwrap(), Err(String::new()));
        let r = parse_mdev_xml(
            "<device><parent>usb_1</parent><capability type='mdev'><type id='t'/></capability></device>",
        );
        assert_eq!(r.unwrap(), Err("usb_1".to_string()));
    }
}
