//! Which VFIO driver a device gets for driver name "vfio": its VFIO variant
//! driver when the kernel has one for it, else vfio-pci, chosen as libvirt
//! 10 does (virPCIDeviceFindBestVFIOVariant): the device's modalias is
//! compared field by field with every `alias vfio_pci:...` line of
//! modules.alias (a field matches when it is `*` or equal), and the
//! matching line with the fewest `*` wins, the first one on a tie. A caller
//! may name the driver instead ("vfio:mlx5_vfio_pci"); the name must be a
//! VFIO driver whose modules.alias entries match the device.

use super::Host;
use crate::address::PciAddress;
use crate::error::{Error, Result};
use crate::sysfs::modalias::{normalize, vfio_wildcards};
use serde::Serialize;

/// vfio-pci's module, as modules.alias names it.
const PLAIN: &str = "vfio_pci";

/// A `vfio_pci:` alias that matches the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VfioCandidate {
    /// The module (`mlx5_vfio_pci`; `vfio_pci` is plain vfio-pci).
    pub module: String,
    /// The modules.alias pattern (`vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i*`).
    pub alias: String,
    /// How many of its seven fields are `*`: fewer is more specific.
    pub wildcards: u32,
}

/// The VFIO driver for one device, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VfioChoice {
    /// The device's modalias (`pci:v...`).
    pub modalias: String,
    /// Every matching `vfio_pci:` alias, in modules.alias order.
    pub candidates: Vec<VfioCandidate>,
    /// The module chosen: `vfio_pci` for plain vfio-pci, else a variant driver's.
    pub module: String,
    /// Named by the caller ("vfio:NAME") rather than chosen.
    pub explicit: bool,
    /// Why, in one sentence.
    pub reason: String,
}

impl VfioChoice {
    /// Plain vfio-pci, not a variant.
    pub fn is_plain(&self) -> bool {
        self.module == PLAIN
    }
}

fn list(candidates: &[VfioCandidate]) -> String {
    if candidates.is_empty() {
        return "none (plain vfio-pci)".to_string();
    }
    let named: Vec<String> =
        candidates.iter().map(|c| format!("{} ({} wildcards, {})", c.module, c.wildcards, c.alias)).collect();
    named.join(", ")
}

impl Host {
    /// The modules.alias `vfio_pci:` lines that match the device, with the device's modalias.
    fn vfio_candidates(&self, addr: &PciAddress) -> Result<(String, Vec<VfioCandidate>)> {
        let modalias = self.modalias(addr)?;
        let aliases = self.sysfs.vfio_aliases().map_err(|e| {
            Error::OperationFailed(format!(
                "cannot tell which VFIO driver fits {addr}: reading modules.alias failed: {e}; name one explicitly (driver name \"vfio:vfio-pci\")"
            ))
        })?;
        let candidates = aliases
            .into_iter()
            .filter_map(|a| {
                let wildcards = vfio_wildcards(&modalias, &a.pattern)?;
                Some(VfioCandidate { module: normalize(&a.module), alias: a.pattern, wildcards })
            })
            .collect();
        Ok((modalias, candidates))
    }

    /// The VFIO driver for the device: `requested` (a "vfio:NAME" name,
    /// checked), else libvirt 10's choice. Nothing is loaded or changed.
    pub fn vfio_choice(&self, addr: &PciAddress, requested: Option<&str>) -> Result<VfioChoice> {
        // Plain vfio-pci named: nothing to choose or check, modules.alias is not read.
        if let Some(name) = requested.filter(|n| normalize(n) == PLAIN) {
            let reason = format!("named by the caller (vfio:{name})");
            let modalias = self.modalias(addr)?;
            return Ok(VfioChoice { modalias, candidates: Vec::new(), module: PLAIN.into(), explicit: true, reason });
        }
        let (modalias, candidates) = self.vfio_candidates(addr)?;
        if let Some(name) = requested {
            let module = normalize(name);
            let reason = format!("named by the caller (vfio:{name})");
            if !self.is_vfio_module(&module) {
                return Err(Error::InvalidArg(format!(
                    "'vfio:{name}' names no VFIO driver: no 'alias vfio_pci:...' line of this kernel's modules.alias belongs to a module {module}. VFIO drivers for {addr} ({modalias}): {}; name one of them, or \"vfio\" to let nodedev choose",
                    list(&candidates)
                )));
            }
            if !candidates.iter().any(|c| c.module == module) {
                return Err(Error::InvalidArg(format!(
                    "'vfio:{name}' is a VFIO variant driver for other devices: none of its modules.alias entries matches {addr} ({modalias}). VFIO drivers for {addr}: {}; name one of them, or \"vfio\" to let nodedev choose",
                    list(&candidates)
                )));
            }
            return Ok(VfioChoice { modalias, candidates, module, explicit: true, reason });
        }
        // The fewest wildcards; strictly fewer replaces, so the first wins a tie.
        let mut best: Option<&VfioCandidate> = None;
        for c in &candidates {
            if best.is_none_or(|b| c.wildcards < b.wildcards) {
                best = Some(c);
            }
        }
        let (module, reason) = match best {
            None => (
                PLAIN.to_string(),
                format!("no 'alias vfio_pci:' line of modules.alias matches {modalias}: plain vfio-pci"),
            ),
            Some(b) => {
                let tied = candidates.iter().filter(|c| c.wildcards == b.wildcards).count();
                let tie = if tied > 1 { format!(", the first of {tied} with as many") } else { String::new() };
                let what = if b.module == PLAIN { "plain vfio-pci: its own entry" } else { "the variant driver" };
                (
                    b.module.clone(),
                    format!("{what} {} matches with the fewest wildcards ({}{tie})", b.alias, b.wildcards),
                )
            }
        };
        Ok(VfioChoice { modalias, candidates, module, explicit: false, reason })
    }

    /// Whether modules.alias has `vfio_pci:` lines of this module (vfio-pci always counts).
    fn is_vfio_module(&self, module: &str) -> bool {
        let module = normalize(module);
        module == PLAIN || self.sysfs.vfio_aliases().unwrap_or_default().iter().any(|a| normalize(&a.module) == module)
    }

    /// A "vfio:NAME" checked before there is a device to match it against
    /// (VFs still to be created).
    pub(crate) fn check_vfio_name(&self, name: &str) -> Result<()> {
        if self.is_vfio_module(name) {
            return Ok(());
        }
        let mut known: Vec<String> =
            self.sysfs.vfio_aliases().unwrap_or_default().into_iter().map(|a| normalize(&a.module)).collect();
        known.dedup();
        Err(Error::InvalidArg(format!(
            "'vfio:{name}' names no VFIO driver: no 'alias vfio_pci:...' line of this kernel's modules.alias belongs to a module {}; VFIO drivers this kernel has: {}",
            normalize(name),
            if known.is_empty() { "vfio-pci only".to_string() } else { known.join(", ") }
        )))
    }

    /// The loaded PCI driver a module provides: a driver of the module's
    /// name (either spelling), else the one /sys/module/M/drivers lists.
    pub(crate) fn module_driver(&self, module: &str) -> Option<String> {
        let module = normalize(module);
        let dashed = module.replace('_', "-");
        if let Some(d) = [&module, &dashed].into_iter().find(|d| self.sysfs.exists(&format!("bus/pci/drivers/{d}"))) {
            return Some(d.clone());
        }
        let entries = self.sysfs.list_dir(&format!("module/{module}/drivers")).ok()?;
        entries
            .iter()
            .filter_map(|e| e.strip_prefix("pci:"))
            .find(|d| self.sysfs.exists(&format!("bus/pci/drivers/{d}")))
            .map(str::to_string)
    }

    /// A variant driver's kernel driver, its module loaded when allowed.
    pub(crate) fn variant_driver(&self, addr: &PciAddress, choice: &VfioChoice) -> Result<String> {
        if let Some(d) = self.module_driver(&choice.module) {
            return Ok(d);
        }
        let m = &choice.module;
        if !self.options.allow_modprobe {
            let why = if choice.explicit { "named".to_string() } else { format!("chosen: {}", choice.reason) };
            return Err(Error::OperationFailed(format!(
                "cannot detach {addr} to VFIO variant driver {m} ({why}): it is not loaded and this connection may not load modules; run 'modprobe {m}' as root first, or ask for plain vfio-pci with driver name \"vfio:vfio-pci\""
            )));
        }
        // Loading a module is shared by every group: one caller at a time
        // (the host step), and the others find it loaded.
        let _step = self.state.host_step()?;
        if let Some(d) = self.module_driver(m) {
            return Ok(d);
        }
        self.sysfs.load_module(m).map_err(|e| {
            Error::OperationFailed(format!(
                "cannot detach {addr} to VFIO variant driver {m}: loading module {m} failed: {e}"
            ))
        })?;
        self.module_driver(m).ok_or_else(|| {
            Error::OperationFailed(format!(
                "cannot detach {addr} to VFIO variant driver {m}: module {m} loaded but registered no PCI driver"
            ))
        })
    }
}
