//! Which kernel modules claim a device: the `alias PATTERN MODULE` lines of
//! modules.alias (depmod writes one per id a module's table lists), matched
//! against the device's MODALIAS with fnmatch(3)'s rules, as modprobe does.

/// One line of modules.alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleAlias {
    /// e.g. `pci:v00008086d000010D3sv*sd*bc*sc*i*`
    pub pattern: String,
    /// Module name with '-' spelled '_' (as depmod writes it).
    pub module: String,
}

/// The aliases of a modules.alias text; other lines (comments, softdeps) are skipped.
pub fn parse(text: &str) -> Vec<ModuleAlias> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            match (w.next(), w.next(), w.next(), w.next()) {
                (Some("alias"), Some(pattern), Some(module), None) => {
                    Some(ModuleAlias { pattern: pattern.to_string(), module: normalize(module) })
                }
                _ => None,
            }
        })
        .collect()
}

/// The aliases of a modules.alias text whose pattern starts with `prefix`
/// (`vfio_pci:`), without parsing the other lines: a few of tens of thousands.
pub fn parse_prefixed(text: &str, prefix: &str) -> Vec<ModuleAlias> {
    let start = format!("alias {prefix}");
    text.lines().filter(|l| l.starts_with(&start)).flat_map(parse).collect()
}

/// Module names compare with '-' and '_' as the same character.
pub fn normalize(module: &str) -> String {
    module.replace('-', "_")
}

/// fnmatch(3) without flags: `*`, `?` and `[...]` (with `!`/`^` and ranges).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    // Iterative matching with one backtrack point for the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class_match(p, pi, t[ti]) {
                        if matched {
                            pi = next;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == b'[' {
                        // An unclosed '[' is a literal.
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                c if c == t[ti] => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// A bracket expression at `p[start]`: Some((matches c, index after `]`)),
/// None when it never closes.
fn class_match(p: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            matched |= (p[i]..=p[i + 2]).contains(&c);
            i += 3;
        } else {
            matched |= p[i] == c;
            i += 1;
        }
    }
    None
}

/// Modules whose aliases match `modalias`, each once, in file order.
pub fn modules_matching(aliases: &[ModuleAlias], modalias: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in aliases.iter().filter(|a| glob_match(&a.pattern, modalias)) {
        if !out.contains(&a.module) {
            out.push(a.module.clone());
        }
    }
    out
}

/// The alias depmod writes for a PCI id table entry (file2alias's do_pci_entry):
/// vendor and device (None: PCI_ANY_ID), and a class with its mask.
pub fn pci_alias(vendor: Option<u16>, device: Option<u16>, class: u32, class_mask: u32) -> String {
    let id = |v: Option<u16>| v.map_or("*".to_string(), |v| format!("{v:08X}"));
    let byte = |shift: u32| {
        if (class_mask >> shift) & 0xff == 0xff {
            format!("{:02X}", (class >> shift) & 0xff)
        } else {
            "*".to_string()
        }
    };
    let mut alias = format!("pci:v{}d{}sv*sd*bc{}sc{}i{}", id(vendor), id(device), byte(16), byte(8), byte(0));
    // Room for fields a later kernel may add, as depmod does.
    if !alias.ends_with('*') {
        alias.push('*');
    }
    alias
}

/// The prefix of the aliases depmod writes for VFIO variant drivers' id
/// tables (entries marked PCI_DRIVER_OVERRIDE_DEVICE_VFIO: they bind only
/// through driver_override, never by a plain probe).
pub const VFIO_PREFIX: &str = "vfio_pci:";

/// The seven fields of a PCI modalias after its prefix (`v`, `d`, `sv`,
/// `sd`, `bc`, `sc`, `i`), split as libvirt's virPCIDeviceAliasInfoNew does:
/// each field runs up to the first occurrence of the next field's name, the
/// last up to white space. None when a name is missing.
pub fn pci_fields(text: &str) -> Option<[&str; 7]> {
    const NAMES: [&str; 7] = ["v", "d", "sv", "sd", "bc", "sc", "i"];
    let mut out = [""; 7];
    let mut rest = text;
    for (i, name) in NAMES.iter().enumerate() {
        rest = rest.strip_prefix(name)?;
        let end = match NAMES.get(i + 1) {
            Some(next) => rest.find(next)?,
            None => rest.find(char::is_whitespace).unwrap_or(rest.len()),
        };
        out[i] = &rest[..end];
        rest = &rest[end..];
    }
    Some(out)
}

/// libvirt 10's VFIO variant match: every field of the alias is `*` or
/// equal to the device's. Some(number of `*` fields) when it matches.
/// `device` is the device's modalias (`pci:v...`), `alias` a modules.alias
/// pattern (`vfio_pci:v...`).
pub fn vfio_wildcards(device: &str, alias: &str) -> Option<u32> {
    let dev = pci_fields(device.strip_prefix("pci:")?)?;
    let pat = pci_fields(alias.strip_prefix(VFIO_PREFIX)?)?;
    let mut wildcards = 0;
    for (d, p) in dev.iter().zip(pat.iter()) {
        if *p == "*" {
            wildcards += 1;
        } else if d != p {
            return None;
        }
    }
    Some(wildcards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_fnmatch_does() {
        assert!(glob_match(
            "pci:v00008086d000010D3sv*sd*bc*sc*i*",
            "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00"
        ));
        assert!(!glob_match(
            "pci:v00008086d000010D3sv*sd*bc*sc*i*",
            "pci:v00008086d000010D4sv00008086sd0000A01Fbc02sc00i00"
        ));
        assert!(glob_match("pci:v*d*sv*sd*bc0Csc03i30*", "pci:v00008086d00002934sv00001AF4sd00001100bc0Csc03i30"));
        assert!(glob_match("a?c", "abc") && !glob_match("a?c", "ac"));
        assert!(glob_match("x[0-9]y", "x5y") && !glob_match("x[!0-9]y", "x5y") && glob_match("x[!0-9]y", "xay"));
        assert!(glob_match("*", "") && glob_match("a*", "a") && !glob_match("a*b", "a"));
        assert!(glob_match("a[b", "a[b"), "an unclosed bracket is literal");
        assert!(glob_match("*a*a*a", "aaaa") && !glob_match("*a*a*b", "aaaa"));
    }

    #[test]
    fn modules_alias_parses_and_matches_each_module_once() {
        let text = "# Aliases extracted from modules themselves.\nalias pci:v00008086d000010D3sv*sd*bc*sc*i* e1000e\nalias pci:v00008086d*sv*sd*bc02sc00i* e1000e\nalias pci:v*d*sv*sd*bc0Csc03i30* xhci-pci\nalias fs-ext4 ext4\nsoftdep e1000e pre: crc32\nalias broken\n";
        let a = parse(text);
        assert_eq!(a.len(), 4);
        assert_eq!(a[2].module, "xhci_pci");
        let modalias = "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00";
        assert_eq!(modules_matching(&a, modalias), vec!["e1000e".to_string()]);
        assert!(modules_matching(&a, "pci:v00001234d000011E8sv00001AF4sd00001100bcFFsc00i00").is_empty());
        let text = format!("{text}alias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci\nalias vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i* mlx5-vfio-pci\n");
        let vfio = parse_prefixed(&text, VFIO_PREFIX);
        assert_eq!(vfio.iter().map(|a| a.module.as_str()).collect::<Vec<_>>(), ["vfio_pci", "mlx5_vfio_pci"]);
        assert_eq!(vfio, parse(&text).into_iter().filter(|a| a.pattern.starts_with(VFIO_PREFIX)).collect::<Vec<_>>());
    }

    #[test]
    fn pci_aliases_follow_the_id_table() {
        assert_eq!(pci_alias(Some(0x8086), Some(0x10d3), 0, 0), "pci:v00008086d000010D3sv*sd*bc*sc*i*");
        assert_eq!(pci_alias(None, None, 0x0c0330, 0xffffff), "pci:v*d*sv*sd*bc0Csc03i30*");
        assert_eq!(pci_alias(None, None, 0x060400, 0xffff00), "pci:v*d*sv*sd*bc06sc04i*");
    }

    #[test]
    fn vfio_aliases_match_field_by_field_counting_wildcards() {
        let nic = "pci:v000015B3d0000101Esv000015B3sd00000001bc02sc00i00";
        assert_eq!(vfio_wildcards(nic, "vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i*"), Some(5));
        assert_eq!(vfio_wildcards(nic, "vfio_pci:v000015B3d0000101Esv000015B3sd*bc*sc*i*"), Some(4));
        assert_eq!(vfio_wildcards(nic, "vfio_pci:v*d*sv*sd*bc*sc*i*"), Some(7));
        assert_eq!(vfio_wildcards(nic, "vfio_pci:v000015B3d0000101Fsv*sd*bc*sc*i*"), None);
        // Fields are compared whole, not as globs (libvirt's rule): "0*" is no wildcard.
        assert_eq!(vfio_wildcards(nic, "vfio_pci:v000015B3d0000101Esv*sd*bc02sc00i0*"), None);
        // Only vfio_pci: aliases of well-formed device modaliases.
        assert_eq!(vfio_wildcards(nic, "pci:v*d*sv*sd*bc*sc*i*"), None);
        assert_eq!(vfio_wildcards("pci:v000015B3", "vfio_pci:v*d*sv*sd*bc*sc*i*"), None);
        assert_eq!(
            pci_fields("v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00\n"),
            Some(["00008086", "000010D3", "00008086", "0000A01F", "02", "00", "00"])
        );
    }
}
