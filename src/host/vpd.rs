//! PCI Vital Product Data (the `vpd` file), parsed as libvirt 9.x parses it
//! (src/util/virpcivpd.c), so the same card gives the same
//! `<capability type='vpd'>`: the identifier string, then the keyword fields
//! of the read-only section (VPD-R, which must end with its RV checksum) and
//! of the read-write section (VPD-W). Input is bounded to the 32 KiB the VPD
//! address space has; anything malformed gives None, never a panic.

/// The VPD address space: 15 address bits.
pub const MAX_LEN: usize = 0x8000;

/// Keyword fields of one section, by libvirt's element names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VpdFields {
    pub change_level: Option<String>,
    pub manufacture_id: Option<String>,
    pub part_number: Option<String>,
    pub serial_number: Option<String>,
    pub asset_tag: Option<String>,
    /// `Vx` fields: (x, value), in first-seen order.
    pub vendor: Vec<(char, String)>,
    /// `Yx` fields other than YA (read-write section only).
    pub system: Vec<(char, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vpd {
    pub name: Option<String>,
    pub readonly: Option<VpdFields>,
    pub readwrite: Option<VpdFields>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Binary,
    /// RV: the checksum (read-only section).
    Checksum,
    /// RW: the remaining read-write space.
    Space,
    Unknown,
}

fn upper_or_digit(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

/// How a keyword's value is stored, from the PCI specifications' table.
fn format_of(k: &[u8]) -> Format {
    if k.len() != 2 || !upper_or_digit(k[0]) || !upper_or_digit(k[1]) {
        return Format::Unknown;
    }
    match k {
        b"CP" => Format::Binary,
        b"EC" | b"MN" | b"PN" | b"SN" | b"YA" => Format::Text,
        b"RV" => Format::Checksum,
        b"RW" => Format::Space,
        [b'V' | b'Y', _] => Format::Text,
        _ => Format::Unknown,
    }
}

/// A text value libvirt's schema takes (nodedev.rng's vpdFieldValueFormat:
/// at most 255 of space to '_' and 'a' to 'z'). libvirt itself takes any
/// printable ASCII, and its documents then fail its own schema for a
/// '`{|}~' or an identifier over 255 bytes: here such a field is skipped,
/// as libvirt skips a non-printable one, and such an identifier makes the
/// VPD invalid.
fn printable(s: &str) -> bool {
    s.len() <= 255 && s.bytes().all(|b| (0x20..=0x5f).contains(&b) || b.is_ascii_lowercase())
}

/// A text value: up to the first NUL, surrounding whitespace removed.
fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).trim_matches(|c: char| c.is_ascii_whitespace()).to_string()
}

fn upsert(list: &mut Vec<(char, String)>, idx: char, value: String) {
    match list.iter_mut().find(|(i, _)| *i == idx) {
        Some(slot) => slot.1 = value,
        None => list.push((idx, value)),
    }
}

impl VpdFields {
    fn update(&mut self, readonly: bool, k: &[u8], value: String) {
        let idx = k[1] as char;
        if readonly {
            match k {
                b"EC" => self.change_level = Some(value),
                b"MN" => self.manufacture_id = Some(value),
                b"PN" => self.part_number = Some(value),
                b"SN" => self.serial_number = Some(value),
                [b'V', _] => upsert(&mut self.vendor, idx, value),
                _ => {} // CP, legacy and system keywords: not reported
            }
        } else {
            match k {
                b"YA" => self.asset_tag = Some(value),
                [b'V', _] => upsert(&mut self.vendor, idx, value),
                [b'Y', _] => upsert(&mut self.system, idx, value),
                _ => {}
            }
        }
    }
}

/// The bytes read so far, and the checksum of every byte read (libvirt
/// sums what it reads: skipped resources do not count).
struct Reader<'a> {
    data: &'a [u8],
    sum: u8,
}

impl Reader<'_> {
    fn take(&mut self, at: usize, n: usize) -> Option<&[u8]> {
        let bytes = self.data.get(at..at.checked_add(n)?)?;
        self.sum = bytes.iter().fold(self.sum, |s, b| s.wrapping_add(*b));
        Some(bytes)
    }

    /// The fields of a VPD-R or VPD-W section; false when malformed.
    fn fields(&mut self, start: usize, len: usize, readonly: bool, vpd: &mut Vpd) -> bool {
        let end = start + len;
        let mut at = start;
        let mut checksum = false;
        while at + 3 <= end {
            let Some(head) = self.take(at, 3) else { return false };
            let (key, flen) = ([head[0], head[1]], head[2] as usize);
            // The keyword as a C string: a NUL shortens it (and makes it unknown).
            let klen = key.iter().position(|&b| b == 0).unwrap_or(2);
            let key = &key[..klen];
            at += 3;
            let format = format_of(key);
            let to_read = match format {
                Format::Space if readonly => return false,
                Format::Checksum if !readonly => return false,
                Format::Checksum => 1,
                _ => flen,
            };
            if end < at + flen {
                return false;
            }
            let Some(value) = self.take(at, to_read).map(<[u8]>::to_vec) else { return false };
            at += flen;
            let value = match format {
                Format::Text => {
                    let v = text(&value);
                    if !printable(&v) {
                        continue;
                    }
                    v
                }
                Format::Checksum => {
                    if self.sum != 0 {
                        return false;
                    }
                    checksum = true;
                    break;
                }
                // The remaining read-write space ends the section.
                Format::Space => break,
                Format::Unknown => continue,
                Format::Binary => String::from_utf8_lossy(&value).into_owned(),
            };
            let section = if readonly { &mut vpd.readonly } else { &mut vpd.readwrite };
            section.get_or_insert_with(VpdFields::default).update(readonly, key, value);
        }
        let at_end = at >= end;
        if readonly {
            checksum && at_end
        } else {
            at_end
        }
    }
}

/// Parse VPD; None when libvirt would find it invalid (no VPD-R, no end
/// tag, a bad checksum, a field past its section, a bad identifier string).
pub fn parse(data: &[u8]) -> Option<Vpd> {
    let data = &data[..data.len().min(MAX_LEN)];
    let mut r = Reader { data, sum: 0 };
    let mut vpd = Vpd::default();
    let (mut at, mut has_readonly, mut ended) = (0usize, false, false);
    while at < MAX_LEN {
        let mut tag = r.take(at, 1)?[0];
        let len;
        if tag & 0x80 != 0 {
            if at > MAX_LEN - 3 {
                break;
            }
            let l = r.take(at + 1, 2)?;
            len = usize::from(u16::from_le_bytes([l[0], l[1]]));
            at += 3;
        } else {
            len = usize::from(tag & 7);
            tag >>= 3;
            at += 1;
        }
        if tag == 0x0f {
            ended = true;
            break;
        }
        if len > MAX_LEN - at {
            break;
        }
        let well_formed = match tag {
            0x82 => {
                let name = text(r.take(at, len)?);
                if !printable(&name) {
                    return None;
                }
                vpd.name = Some(name);
                true
            }
            0x90 => {
                has_readonly = true;
                r.fields(at, len, true, &mut vpd)
            }
            0x91 => r.fields(at, len, false, &mut vpd),
            _ => {
                // Unknown resources are skipped by their length, unread.
                at += len;
                continue;
            }
        };
        if !well_formed {
            return None;
        }
        at += len;
    }
    (has_readonly && ended).then_some(vpd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(k: &str, v: &str) -> Vec<u8> {
        let mut b = k.as_bytes().to_vec();
        b.push(v.len() as u8);
        b.extend_from_slice(v.as_bytes());
        b
    }

    /// Identifier, VPD-R with the given fields and a correct RV, optional VPD-W, end.
    fn card(name: &str, ro: &[(&str, &str)], rw: Option<&[(&str, &str)]>) -> Vec<u8> {
        let mut out = vec![0x82];
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        let mut body: Vec<u8> = ro.iter().flat_map(|(k, v)| field(k, v)).collect();
        body.extend_from_slice(b"RV\x01");
        out.push(0x90);
        out.extend_from_slice(&((body.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(&body);
        let sum = out.iter().fold(0u8, |s, b| s.wrapping_add(*b));
        out.push(0u8.wrapping_sub(sum));
        if let Some(rw) = rw {
            let mut body: Vec<u8> = rw.iter().flat_map(|(k, v)| field(k, v)).collect();
            body.extend_from_slice(b"RW\x02\0\0");
            out.push(0x91);
            out.extend_from_slice(&(body.len() as u16).to_le_bytes());
            out.extend_from_slice(&body);
        }
        out.push(0x78);
        out
    }

    #[test]
    fn a_card_with_both_sections() {
        let data = card(
            " ConnectX-6 Dx ",
            &[("PN", "MCX623106AN"), ("EC", "A6"), ("SN", "MT2113X00001"), ("V0", "PCIeGen4 x16"), ("V0", "x8")],
            Some(&[("YA", "rack 4"), ("V1", "fw"), ("Y1", "sys")]),
        );
        let v = parse(&data).unwrap();
        assert_eq!(v.name.as_deref(), Some("ConnectX-6 Dx"));
        let ro = v.readonly.unwrap();
        assert_eq!(ro.part_number.as_deref(), Some("MCX623106AN"));
        assert_eq!(ro.change_level.as_deref(), Some("A6"));
        assert_eq!(ro.serial_number.as_deref(), Some("MT2113X00001"));
        assert_eq!(ro.vendor, vec![('0', "x8".to_string())], "a repeated keyword replaces the value in place");
        let rw = v.readwrite.unwrap();
        assert_eq!(rw.asset_tag.as_deref(), Some("rack 4"));
        assert_eq!(rw.vendor, vec![('1', "fw".to_string())]);
        assert_eq!(rw.system, vec![('1', "sys".to_string())]);
    }

    #[test]
    fn malformed_data_is_refused_as_libvirt_refuses_it() {
        let good = card("X", &[("SN", "1")], None);
        assert!(parse(&good).is_some());
        // A bad checksum.
        let mut bad = good.clone();
        let rv = bad.len() - 2;
        bad[rv] ^= 1;
        assert!(parse(&bad).is_none());
        // No end tag.
        assert!(parse(&good[..good.len() - 1]).is_none());
        // No VPD-R at all.
        assert!(parse(&[0x82, 1, 0, b'X', 0x78]).is_none());
        // A non-printable identifier.
        assert!(parse(&card("a\x01b", &[], None)).is_none());
        // Empty input and a lone large tag.
        assert!(parse(&[]).is_none());
        assert!(parse(&[0x90]).is_none());
        // RW in the read-only section.
        let mut body = field("RW", "");
        body.extend_from_slice(b"RV\x01\0");
        let mut d = vec![0x90, body.len() as u8, 0];
        d.extend_from_slice(&body);
        d.push(0x78);
        assert!(parse(&d).is_none());
    }

    #[test]
    fn bad_text_fields_are_skipped_and_unknown_keywords_ignored() {
        let data = card("X", &[("SN", "ok"), ("PN", "bad\x07"), ("ZZ", "??"), ("CP", "\x01\x02")], None);
        let ro = parse(&data).unwrap().readonly.unwrap();
        assert_eq!((ro.serial_number.as_deref(), ro.part_number.as_deref()), (Some("ok"), None));
    }

    #[test]
    fn only_rv_gives_no_readonly_fields() {
        let v = parse(&card("X", &[], None)).unwrap();
        assert_eq!((v.readonly, v.readwrite), (None, None));
    }

    #[test]
    fn input_past_the_address_space_is_ignored() {
        let mut data = card("X", &[("SN", "1")], None);
        data.resize(MAX_LEN * 2, 0xff);
        assert!(parse(&data).is_some());
    }
}
