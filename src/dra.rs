//! `nodedev list --format dra`: the inventory as Kubernetes Dynamic Resource
//! Allocation ResourceSlices (`resource.k8s.io/v1`), so that a DRA driver or
//! an administrator can publish this node's PCI functions for the scheduler.
//!
//! One slice holds at most 128 devices (the API's limit); a host with more
//! gets several slices of one pool, one JSON document per line, each saying
//! how many the pool has. Bridges are left out: VFIO tolerates them in a
//! group and nodedev never detaches them, so they are nothing to allocate.
//!
//! Every attribute is present on every device (an empty string, -1 or false
//! where there is nothing to say), because a CEL selector that reads an
//! attribute a device lacks aborts the allocation. The output is checked
//! against the ResourceSlice schema of the Kubernetes API in tests/dra.rs.

use crate::error::{Error, Result};
use crate::host::Host;
use crate::inventory::{self, Device};
use serde_json::{json, Map, Value};

/// The DRA driver name of the slices, and the domain of nodedev's own
/// attributes (`nodedev.io/driver`, ...).
pub const DOMAIN: &str = "nodedev.io";

/// The standard attributes' domain (k8s.io/dynamic-resource-allocation/deviceattribute).
pub const STANDARD_DOMAIN: &str = "resource.kubernetes.io";

/// ResourceSliceSpec.devices holds at most this many.
pub const MAX_DEVICES_PER_SLICE: usize = 128;

/// A DeviceAttribute's string holds at most this many bytes.
const MAX_STRING: usize = 64;

/// A DNS label (RFC 1123): what a device name must be.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A DNS subdomain (RFC 1123): what a node, pool and object name must be.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// The device's name in its pool: its address as a DNS label, `pci-0000-03-00-0`.
pub fn device_name(address: &str) -> String {
    format!("pci-{}", address.replace([':', '.'], "-"))
}

/// The PCIe root complex of a device from its canonical sysfs path
/// (`../../../devices/pci0000:00/0000:00:1c.0/0000:03:00.0` -> `pci0000:00`),
/// the standard attribute's `pci<domain>:<bus>` form.
pub fn pcie_root(canonical: &str) -> Option<String> {
    canonical.split('/').find(|c| c.starts_with("pci") && c.len() > 3 && c[3..].contains(':')).map(str::to_string)
}

/// A string attribute's value; a longer one (an owner name can be 256
/// bytes) is cut at a character boundary and ends in "...".
fn string(v: &str) -> Value {
    if v.len() <= MAX_STRING {
        return json!({ "string": v });
    }
    let mut end = MAX_STRING - 3;
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    json!({ "string": format!("{}...", &v[..end]) })
}

fn attributes(host: &Host, d: &Device) -> Map<String, Value> {
    let canonical = host.sysfs().read_link(&format!("bus/pci/devices/{}", d.address)).unwrap_or_default();
    let role = if d.physical_function.is_some() {
        "vf"
    } else if d.sriov_totalvfs.is_some() {
        "pf"
    } else {
        "none"
    };
    let group = d.iommu_group.as_ref();
    let own = |name: &str| format!("{DOMAIN}/{name}");
    let mut a = Map::new();
    a.insert(format!("{STANDARD_DOMAIN}/pciBusID"), string(&d.address));
    if let Some(root) = pcie_root(&canonical) {
        a.insert(format!("{STANDARD_DOMAIN}/pcieRoot"), string(&root));
    }
    a.insert(own("numaNode"), json!({ "int": d.numa_node.unwrap_or(-1) }));
    a.insert(own("vendor"), string(&d.vendor_id));
    a.insert(own("device"), string(&d.device_id));
    a.insert(own("subsystemVendor"), string(d.subsystem_vendor_id.as_deref().unwrap_or("")));
    a.insert(own("subsystemDevice"), string(d.subsystem_device_id.as_deref().unwrap_or("")));
    a.insert(own("class"), string(&d.class));
    a.insert(own("driver"), string(d.driver.as_deref().unwrap_or("")));
    a.insert(own("stub"), json!({ "bool": d.stub }));
    a.insert(own("detached"), json!({ "bool": d.detached_by_nodedev }));
    a.insert(own("originalDriver"), string(d.original_driver.as_deref().unwrap_or("")));
    a.insert(own("iommuGroup"), json!({ "int": group.map(|g| i64::from(g.number)).unwrap_or(-1) }));
    a.insert(own("iommuGroupViable"), json!({ "bool": group.is_some_and(|g| g.vfio_viable) }));
    a.insert(own("iommuGroupSize"), json!({ "int": group.map(|g| g.members.len()).unwrap_or(0) }));
    a.insert(own("sriovRole"), string(role));
    a.insert(own("physicalFunction"), string(d.physical_function.as_deref().unwrap_or("")));
    a.insert(own("totalVFs"), json!({ "int": d.sriov_totalvfs.unwrap_or(0) }));
    a.insert(own("numVFs"), json!({ "int": d.virtual_functions.len() }));
    a.insert(own("owner"), string(d.owner.as_deref().unwrap_or("")));
    a.insert(own("managed"), json!({ "bool": d.managed.unwrap_or(false) }));
    a
}

/// Whether VFIO treats the function as a bridge (PCI-to-PCI, CardBus,
/// RACEway class): never allocated.
fn is_bridge(d: &Device) -> bool {
    matches!(d.class.get(..4), Some("0604" | "0607" | "0609")) || d.driver.as_deref() == Some("pcieport")
}

/// This node's name as Kubernetes knows it by default: the host name, in
/// lower case.
pub fn default_node_name() -> Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Err(Error::System(format!("gethostname failed: {}", std::io::Error::last_os_error())));
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).to_lowercase())
}

/// What `list --format dra` prints: the slices, and for the operator (on
/// stderr) why a device is not in them.
pub struct Slices {
    pub slices: Vec<Value>,
    /// One line per device left out.
    pub withheld: Vec<String>,
}

/// The name of slice `index` of `node`'s pool: `<node>-nodedev-<i>`. Slice
/// names are cluster-wide, so a node name too long for that is cut and
/// followed by a hash of the whole name: two nodes never share a name.
pub fn slice_name(node: &str, index: usize) -> String {
    let suffix = format!("-nodedev-{index}");
    if node.len() + suffix.len() <= 253 {
        return format!("{node}{suffix}");
    }
    // FNV-1a (64 bits): stable across releases and platforms.
    let hash = node.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let tail = format!("-{hash:016x}{suffix}");
    let mut base = node[..253 - tail.len()].trim_end_matches(['-', '.']).to_string();
    if base.is_empty() {
        base = "node".to_string();
    }
    format!("{base}{tail}")
}

/// The host's devices as ResourceSlices of the pool `node`, one per 128
/// devices, in address order, with the pool's `generation` (which a
/// publisher raises whenever it updates the pool). A device whose record cannot be used is left
/// out: nodedev refuses to move or assign it until an administrator clears
/// the record, so it must not be offered to the scheduler as a free device.
pub fn resource_slices(host: &Host, node: &str, generation: i64) -> Result<Slices> {
    if !is_dns_subdomain(node) {
        return Err(Error::InvalidArg(format!(
            "'{}' is not a Kubernetes node name (lower-case letters, digits, '-' and '.', at most 253): name the node with --node NAME",
            node.escape_debug()
        )));
    }
    let (_, corrupt) = host.state().list_checked()?;
    let withheld: Vec<String> = corrupt
        .iter()
        .map(|c| {
            format!(
                "{}: left out of the ResourceSlice: its record {} cannot be used ({}), so nodedev will not move or assign it; {}",
                c.address,
                c.file.display(),
                c.why,
                c.how_to_clear()
            )
        })
        .collect();
    let devices: Vec<Device> = inventory::devices(host)?
        .into_iter()
        .filter(|d| !is_bridge(d) && !corrupt.iter().any(|c| c.address == d.address))
        .collect();
    let chunks: Vec<&[Device]> = devices.chunks(MAX_DEVICES_PER_SLICE).collect();
    let count = chunks.len().max(1);
    let mut slices = Vec::with_capacity(count);
    for i in 0..count {
        let chunk = chunks.get(i).copied().unwrap_or(&[]);
        let devices: Vec<Value> = chunk
            .iter()
            .map(|d| json!({ "name": device_name(&d.address), "attributes": attributes(host, d) }))
            .collect();
        slices.push(json!({
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceSlice",
            "metadata": { "name": slice_name(node, i) },
            "spec": {
                "driver": DOMAIN,
                "nodeName": node,
                "pool": { "name": node, "generation": generation, "resourceSliceCount": count },
                "devices": devices,
            }
        }));
    }
    Ok(Slices { slices, withheld })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_roots() {
        assert_eq!(device_name("0000:03:00.0"), "pci-0000-03-00-0");
        assert!(is_dns_label(&device_name("10000:ff:1f.7")));
        assert_eq!(pcie_root("../../../devices/pci0000:00/0000:00:1c.0/0000:03:00.0").as_deref(), Some("pci0000:00"));
        assert_eq!(pcie_root("../../../devices/pci10000:80/10000:80:01.0").as_deref(), Some("pci10000:80"));
        assert_eq!(pcie_root(""), None);
        assert!(!is_dns_label("Pci-0") && !is_dns_label("-a") && !is_dns_label(""));
        assert!(is_dns_subdomain("worker-1.example.com") && !is_dns_subdomain("worker_1"));
        assert_eq!(slice_name("worker-1", 2), "worker-1-nodedev-2");
        let long = format!("{}b", "a.".repeat(125));
        assert!(is_dns_subdomain(&long) && is_dns_subdomain(&slice_name(&long, 3)), "{}", slice_name(&long, 3));
        assert_ne!(slice_name(&long, 0), slice_name(&format!("{}c", "a.".repeat(125)), 0));
        let long = "é".repeat(100);
        let cut = string(&long)["string"].as_str().unwrap().to_string();
        assert!(cut.len() <= MAX_STRING && cut.ends_with("..."), "{cut}");
    }
}
