//! Host policy: which devices nodedev may move, and whether it may move any.
//!
//! A policy file is plain text, one rule a line, `#` starts a comment:
//!
//! ```text
//! lockdown yes            # never change a driver binding (default: no)
//! deny 0000:00:1f.2       # this function, never
//! deny 8086:2922          # any function with this vendor:device id
//! deny class 0x01         # mass storage (base class; 0x0108 or 0x010802 narrow it)
//! allow 10de:*            # if any allow rule exists, only matching devices
//! ```
//!
//! Deny wins over allow. The lists guard taking devices from the host
//! (detach, reset, prepare); giving a device back (reattach, release) is
//! always allowed unless the host is locked down.
//!
//! Policies stack: a URI's `policy=FILE` is added to the host's
//! /etc/nodedev/policy.conf (`Policy::restrict`), never put in its place, so
//! a device must pass every layer and any layer can lock the host down.

use crate::address::PciAddress;
use crate::error::{Error, Result};

/// One allow/deny pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    Address(PciAddress),
    /// vendor, device (None: any device of the vendor).
    Id(u16, Option<u16>),
    /// Class code prefix: `value` compared on its top `digits` hex digits of 6.
    Class {
        value: u32,
        digits: u32,
    },
}

/// What policy needs to know about a device.
#[derive(Debug, Clone, Copy)]
pub struct Subject {
    pub address: PciAddress,
    pub vendor: u16,
    pub device: u16,
    pub class: u32,
}

impl Match {
    fn parse(words: &[&str]) -> std::result::Result<Match, String> {
        let hex = |s: &str| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok();
        match words {
            ["class", code] => {
                let digits = code.trim_start_matches("0x").len() as u32;
                match hex(code) {
                    Some(value) if matches!(digits, 2 | 4 | 6) => Ok(Match::Class { value, digits }),
                    _ => Err(format!("'{code}' is not a class code (0xCC, 0xCCSS or 0xCCSSPP)")),
                }
            }
            [one] if one.contains('.') => PciAddress::parse(one).map(Match::Address).map_err(|e| e.to_string()),
            [one] => {
                let (v, d) = one.split_once(':').ok_or_else(|| format!("'{one}' is not VVVV:DDDD or an address"))?;
                let id = |s: &str| (s.len() == 4).then(|| hex(s)).flatten().map(|n| n as u16);
                let vendor = id(v).ok_or_else(|| format!("'{v}' is not a 4-digit vendor id"))?;
                let device = match d {
                    "*" => None,
                    _ => Some(id(d).ok_or_else(|| format!("'{d}' is not a 4-digit device id or '*'"))?),
                };
                Ok(Match::Id(vendor, device))
            }
            _ => Err("expected an address, VVVV:DDDD, VVVV:* or 'class 0xCC..'".to_string()),
        }
    }

    fn matches(&self, s: &Subject) -> bool {
        match *self {
            Match::Address(a) => a == s.address,
            Match::Id(v, d) => v == s.vendor && d.is_none_or(|d| d == s.device),
            Match::Class { value, digits } => (s.class & 0xff_ffff) >> (4 * (6 - digits)) == value,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Never change a driver binding or write to a device.
    pub locked_down: bool,
    /// What locked it down, for messages.
    pub locked_by: String,
    pub allow: Vec<Match>,
    pub deny: Vec<Match>,
    /// Where the rules came from, for messages.
    pub source: String,
    /// Stricter policies added on top (a URI's `policy=`): each must agree.
    pub added: Vec<Policy>,
}

impl Policy {
    pub fn parse(text: &str, source: &str) -> Result<Policy> {
        let mut p = Policy { source: source.to_string(), ..Policy::default() };
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("");
            let words: Vec<&str> = line.split_whitespace().collect();
            let bad = |why: String| Error::InvalidArg(format!("policy {source} line {}: {why}", n + 1));
            match words.as_slice() {
                [] => {}
                ["lockdown", v] => {
                    p.locked_down = match *v {
                        "yes" | "1" | "true" => {
                            p.locked_by = format!("'lockdown yes' in {source}");
                            true
                        }
                        "no" | "0" | "false" => false,
                        _ => return Err(bad(format!("lockdown takes yes or no, not '{v}'"))),
                    }
                }
                ["allow", rest @ ..] => p.allow.push(Match::parse(rest).map_err(bad)?),
                ["deny", rest @ ..] => p.deny.push(Match::parse(rest).map_err(bad)?),
                [k, ..] => return Err(bad(format!("unknown rule '{k}' (lockdown, allow, deny)"))),
            }
        }
        Ok(p)
    }

    pub fn load(path: &str) -> Result<Policy> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::InvalidArg(format!("cannot read policy file {path}: {e}")))?;
        Policy::parse(&text, path)
    }

    /// Add `stricter`'s rules: from now on a device must pass both.
    pub fn restrict(&mut self, stricter: Policy) {
        self.added.push(stricter);
    }

    /// This policy and every policy added to it.
    fn layers(&self) -> Vec<&Policy> {
        let mut out = vec![self];
        for a in &self.added {
            out.extend(a.layers());
        }
        out
    }

    /// Whether any layer has allow or deny rules (else no device facts are needed).
    pub fn has_device_rules(&self) -> bool {
        self.layers().iter().any(|l| !l.allow.is_empty() || !l.deny.is_empty())
    }

    /// Whether any layer locks the host down.
    pub fn is_locked_down(&self) -> bool {
        self.layers().iter().any(|l| l.locked_down)
    }

    /// Whether `what` (e.g. "detach") may take this device from the host:
    /// every layer must allow it.
    pub fn check_take(&self, what: &str, s: &Subject) -> Result<()> {
        self.layers().into_iter().try_for_each(|l| l.check_take_here(what, s))
    }

    fn check_take_here(&self, what: &str, s: &Subject) -> Result<()> {
        let from = if self.source.is_empty() { String::new() } else { format!(" in {}", self.source) };
        if self.deny.iter().any(|m| m.matches(s)) {
            return Err(Error::Denied(format!(
                "cannot {what} {}: a deny rule{from} matches it ({:04x}:{:04x}, class 0x{:06x}); remove the rule to allow it",
                s.address, s.vendor, s.device, s.class
            )));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|m| m.matches(s)) {
            return Err(Error::Denied(format!(
                "cannot {what} {}: no allow rule{from} matches it ({:04x}:{:04x}, class 0x{:06x}); add one to allow it",
                s.address, s.vendor, s.device, s.class
            )));
        }
        Ok(())
    }

    /// Refusal for any driver change under lockdown.
    pub fn check_unlocked(&self, what: &str, addr: &PciAddress) -> Result<()> {
        if let Some(l) = self.layers().into_iter().find(|l| l.locked_down) {
            return Err(Error::Denied(format!(
                "cannot {what} {addr}: the host is locked down ({}), so nodedev changes no driver binding; verify-only calls (list, XML, group, unmanaged prepare) still work",
                l.locked_by
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(addr: &str, vendor: u16, device: u16, class: u32) -> Subject {
        Subject { address: PciAddress::parse(addr).unwrap(), vendor, device, class }
    }

    #[test]
    fn rules_parse_and_match_by_address_id_and_class() {
        let p = Policy::parse(
            "# comment\nlockdown no\ndeny 0000:00:1f.2\ndeny 8086:2930 # smbus\ndeny class 0x01\nallow 10de:*\nallow class 0x0200\n",
            "test.conf",
        )
        .unwrap();
        assert!(!p.locked_down);
        let gpu = subject("0000:01:00.0", 0x10de, 0x1b81, 0x030000);
        let nic = subject("0000:03:00.0", 0x8086, 0x10d3, 0x020000);
        let disk = subject("0000:06:00.0", 0x144d, 0xa808, 0x010802);
        let ahci = subject("0000:00:1f.2", 0x8086, 0x2922, 0x010601);
        let smbus = subject("0000:00:1f.3", 0x8086, 0x2930, 0x0c0500);
        let audio = subject("0000:01:00.1", 0x1002, 0xaaf0, 0x040300);
        assert!(p.check_take("detach", &gpu).is_ok());
        assert!(p.check_take("detach", &nic).is_ok());
        for s in [disk, ahci, smbus] {
            let e = p.check_take("detach", &s).unwrap_err();
            assert!(
                matches!(&e, Error::Denied(m) if m.contains("deny rule in test.conf") && m.contains(&s.address.to_string())),
                "{e}"
            );
        }
        let e = p.check_take("detach", &audio).unwrap_err();
        assert!(e.to_string().contains("no allow rule"), "{e}");
    }

    #[test]
    fn bad_rules_are_refused_with_their_line() {
        for (text, line) in [
            ("lockdown maybe", 1),
            ("\nallow 8086", 2),
            ("deny class 0x123", 1),
            ("deny 0000:00:1f.9", 1),
            ("permit 8086:*", 1),
            ("allow 808:1234", 1),
        ] {
            let e = Policy::parse(text, "p.conf").unwrap_err();
            assert!(e.to_string().contains(&format!("p.conf line {line}")), "{text}: {e}");
        }
    }

    #[test]
    fn an_added_policy_only_restricts() {
        let mut host = Policy::parse("deny 8086:2930\nallow 8086:*\nallow 10de:*", "/etc/nodedev/policy.conf").unwrap();
        // The URI's file tries to allow everything and lift the deny: it cannot.
        host.restrict(Policy::parse("allow 8086:*\nallow 144d:*\nlockdown no", "uri.conf").unwrap());
        let smbus = subject("0000:00:1f.3", 0x8086, 0x2930, 0x0c0500);
        let disk = subject("0000:06:00.0", 0x144d, 0xa808, 0x010802);
        let gpu = subject("0000:01:00.0", 0x10de, 0x1b81, 0x030000);
        let nic = subject("0000:03:00.0", 0x8086, 0x10d3, 0x020000);
        assert!(host.check_take("detach", &smbus).unwrap_err().to_string().contains("/etc/nodedev/policy.conf"));
        assert!(host
            .check_take("detach", &disk)
            .unwrap_err()
            .to_string()
            .contains("no allow rule in /etc/nodedev/policy.conf"));
        // Allowed by the host but not by the added layer.
        assert!(host.check_take("detach", &gpu).unwrap_err().to_string().contains("no allow rule in uri.conf"));
        assert!(host.check_take("detach", &nic).is_ok());
        assert!(host.has_device_rules() && !host.is_locked_down());
        // Either layer can lock the host down; "lockdown no" lifts nothing.
        let mut locked = Policy::parse("lockdown yes", "/etc/nodedev/policy.conf").unwrap();
        locked.restrict(Policy::parse("lockdown no", "uri.conf").unwrap());
        assert!(locked.is_locked_down());
        let e = locked.check_unlocked("detach", &nic.address).unwrap_err();
        assert!(e.to_string().contains("'lockdown yes' in /etc/nodedev/policy.conf"), "{e}");
        let mut open = Policy::default();
        open.restrict(Policy::parse("lockdown yes", "uri.conf").unwrap());
        assert!(open.check_unlocked("detach", &nic.address).is_err());
    }

    #[test]
    fn lockdown_refuses_and_names_the_source() {
        let p = Policy::parse("lockdown yes", "/etc/nodedev/policy.conf").unwrap();
        let e = p.check_unlocked("detach", &PciAddress::parse("0000:03:00.0").unwrap()).unwrap_err();
        assert!(matches!(&e, Error::Denied(m) if m.contains("locked down") && m.contains("/etc/nodedev/policy.conf")));
        assert!(Policy::default().check_unlocked("detach", &PciAddress::parse("0000:03:00.0").unwrap()).is_ok());
    }
}
