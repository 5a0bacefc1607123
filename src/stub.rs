//! Stub drivers, named the way libvirt's `<hostdev><driver name='x'/>` names
//! them. Callers never pass a kernel module name; we map.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stub {
    Vfio,
    Kvm,
    Xen,
}

pub const ACCEPTED_NAMES: &str = "\"vfio\" (vfio-pci, or the device's VFIO variant driver), \"vfio:NAME\" (that VFIO driver, e.g. \"vfio:mlx5_vfio_pci\" or \"vfio:vfio-pci\"), \"kvm\" (pci-stub), \"xen\" (xen-pciback)";

/// Every kernel driver name that is a stub, whichever stub it belongs to.
pub const STUB_DRIVERS: [&str; 4] = ["vfio-pci", "pci-stub", "xen-pciback", "pciback"];

/// A stub as a caller asks for it: the stub, and for vfio the VFIO driver
/// named explicitly ("vfio:mlx5_vfio_pci"); without one, "vfio" picks the
/// device's best VFIO variant driver as libvirt 10 does (`host/variant.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StubRequest {
    pub stub: Stub,
    /// A module or driver name (`mlx5_vfio_pci`, `vfio-pci`), only with `Stub::Vfio`.
    pub vfio_driver: Option<String>,
}

impl From<Stub> for StubRequest {
    fn from(stub: Stub) -> StubRequest {
        StubRequest { stub, vfio_driver: None }
    }
}

impl StubRequest {
    /// A caller's driver name: "vfio", "vfio:NAME", "kvm", "xen"; None: vfio.
    pub fn parse(name: Option<&str>) -> Result<StubRequest> {
        let Some(variant) = name.and_then(|n| n.strip_prefix("vfio:")) else {
            return Stub::from_name(name).map(StubRequest::from);
        };
        let ok = !variant.is_empty()
            && variant.len() <= 64
            && variant.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(Error::InvalidArg(format!(
                "'{}' names no VFIO driver: after \"vfio:\" comes a kernel module name such as mlx5_vfio_pci or vfio-pci (letters, digits, '-' and '_')",
                name.unwrap_or_default().escape_debug()
            )));
        }
        Ok(StubRequest { stub: Stub::Vfio, vfio_driver: Some(variant.to_string()) })
    }

    /// `parse`, where "none" means no driver at all (new SR-IOV VFs).
    pub fn parse_or_none(name: Option<&str>) -> Result<Option<StubRequest>> {
        match name {
            Some("none") => Ok(None),
            _ => StubRequest::parse(name).map(Some).map_err(|e| e.context_after("or \"none\" for no driver")),
        }
    }

    /// The name as a caller writes it ("vfio", "vfio:mlx5_vfio_pci").
    pub fn name(&self) -> String {
        match &self.vfio_driver {
            Some(v) => format!("vfio:{v}"),
            None => self.stub.name().to_string(),
        }
    }
}

impl Stub {
    /// The abstract name given by a caller; None means the default, vfio.
    pub fn from_name(name: Option<&str>) -> Result<Stub> {
        match name {
            None | Some("vfio") => Ok(Stub::Vfio),
            Some("kvm") => Ok(Stub::Kvm),
            Some("xen") => Ok(Stub::Xen),
            Some(other) => Err(Error::InvalidArg(format!(
                "unknown driver name '{}': accepted names are {ACCEPTED_NAMES}",
                other.escape_debug()
            ))),
        }
    }

    /// `from_name`, where "none" means no driver at all (new SR-IOV VFs).
    pub fn from_name_or_none(name: Option<&str>) -> Result<Option<Stub>> {
        match name {
            Some("none") => Ok(None),
            _ => Stub::from_name(name).map(Some).map_err(|e| e.context_after("or \"none\" for no driver")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Stub::Vfio => "vfio",
            Stub::Kvm => "kvm",
            Stub::Xen => "xen",
        }
    }

    /// Kernel driver names, preferred first (xen-pciback was "pciback" on old kernels).
    pub fn kernel_drivers(self) -> &'static [&'static str] {
        match self {
            Stub::Vfio => &["vfio-pci"],
            Stub::Kvm => &["pci-stub"],
            Stub::Xen => &["xen-pciback", "pciback"],
        }
    }

    /// The module that provides the preferred driver.
    pub fn module(self) -> &'static str {
        match self {
            Stub::Vfio => "vfio-pci",
            Stub::Kvm => "pci-stub",
            Stub::Xen => "xen-pciback",
        }
    }

    /// Which stub a kernel driver name belongs to, if any (a VFIO variant is vfio).
    pub fn of_driver(driver: &str) -> Option<Stub> {
        if is_vfio_driver(driver) {
            return Some(Stub::Vfio);
        }
        [Stub::Kvm, Stub::Xen].into_iter().find(|s| s.kernel_drivers().contains(&driver))
    }
}

/// libvirt's driver names: `"vfio"`, `"kvm"`, `"xen"` (kernel module names
/// such as `"vfio-pci"` are refused, with the accepted names).
impl std::str::FromStr for StubRequest {
    type Err = Error;

    fn from_str(name: &str) -> Result<StubRequest> {
        StubRequest::parse(Some(name))
    }
}

impl std::str::FromStr for Stub {
    type Err = Error;

    fn from_str(name: &str) -> Result<Stub> {
        Stub::from_name(Some(name))
    }
}

impl std::fmt::Display for Stub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Any stub's kernel driver, a VFIO variant driver (`mlx5_vfio_pci`) included.
pub fn is_stub_driver(driver: &str) -> bool {
    STUB_DRIVERS.contains(&driver) || is_vfio_driver(driver)
}

/// vfio-pci or one of its variant drivers (`mlx5_vfio_pci`,
/// `nvgrace-gpu-vfio-pci`): VFIO manages the device's DMA either way.
pub fn is_vfio_driver(name: &str) -> bool {
    name == "vfio-pci" || name.ends_with("vfio_pci") || name.ends_with("vfio-pci")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abstract_names_map_to_kernel_drivers() {
        assert_eq!(Stub::from_name(None).unwrap().kernel_drivers(), ["vfio-pci"]);
        assert_eq!(Stub::from_name(Some("kvm")).unwrap().kernel_drivers(), ["pci-stub"]);
        assert_eq!(Stub::from_name(Some("xen")).unwrap().kernel_drivers()[0], "xen-pciback");
        assert_eq!(Stub::of_driver("pciback"), Some(Stub::Xen));
        assert_eq!(Stub::of_driver("e1000e"), None);
        // VFIO variant drivers are vfio, and stubs.
        assert_eq!(Stub::of_driver("mlx5_vfio_pci"), Some(Stub::Vfio));
        assert!(is_stub_driver("nvgrace-gpu-vfio-pci") && !is_stub_driver("vfio_iommu_type1"));
    }

    #[test]
    fn explicit_vfio_drivers_are_parsed() {
        let r = StubRequest::parse(Some("vfio:mlx5_vfio_pci")).unwrap();
        assert_eq!(
            (r.stub, r.vfio_driver.as_deref(), r.name()),
            (Stub::Vfio, Some("mlx5_vfio_pci"), "vfio:mlx5_vfio_pci".into())
        );
        assert_eq!(StubRequest::parse(None).unwrap(), StubRequest::from(Stub::Vfio));
        assert_eq!(StubRequest::parse(Some("kvm")).unwrap().name(), "kvm");
        assert_eq!(StubRequest::parse_or_none(Some("none")).unwrap(), None);
        for bad in ["vfio:", "vfio:../x", "vfio:a b", "kvm:pci-stub"] {
            assert!(matches!(StubRequest::parse(Some(bad)), Err(Error::InvalidArg(_))), "{bad}");
        }
    }

    #[test]
    fn kernel_module_names_are_refused() {
        for name in ["vfio-pci", "pci-stub", "VFIO", "", "xen-pciback"] {
            let err = Stub::from_name(Some(name)).unwrap_err();
            assert!(matches!(&err, Error::InvalidArg(m) if m.contains("\"vfio\"") && m.contains("\"kvm\"")), "{err:?}");
        }
    }
}
