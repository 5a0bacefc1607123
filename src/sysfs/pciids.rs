//! Vendor and device names from the PCI ID database (`pci.ids`), as lspci
//! and libvirt show them.
//!
//! The file is 1.3 MB and a process usually asks for a handful of ids, so
//! nothing is parsed up front: the file is mapped (no read of the whole),
//! a vendor is found by binary search over its lines (the database lists
//! vendors, and each vendor's devices, in ascending order), and its
//! devices are scanned from there. Each answer is remembered, so a listing
//! of 10,000 functions of a few models looks each model up once. A file out
//! of order still answers: a vendor the search misses is looked for line
//! by line (once, then remembered).
//!
//! The mapping is private and read-only. Package managers replace the file
//! by renaming a new one over it, which leaves the mapped (old) file whole.

use super::PciNames;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where distributions install the database, relative to the filesystem
/// root: Debian's `pci.ids` package, then hwdata's (Fedora, Arch, Debian's
/// hwdata).
pub const LOCATIONS: [&str; 2] = ["usr/share/misc/pci.ids", "usr/share/hwdata/pci.ids"];

/// The first database that exists under `root`.
pub fn locate(root: &Path) -> Option<PathBuf> {
    LOCATIONS.iter().map(|rel| root.join(rel)).find(|p| p.is_file())
}

/// The largest file taken as a database: the real one is under 2 MB. A
/// bigger file (a sparse one, a device node's contents) would make every
/// lookup scan it and fill the page cache: it is ignored, names stay empty.
pub const MAX_LEN: u64 = 64 << 20;

/// A read-only mapping of a whole file.
struct Mapping {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the mapping is read-only and lives until Drop; sharing reads of
// immutable memory between threads is sound.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Mapping {
    fn open(path: &Path) -> io::Result<Mapping> {
        use std::os::fd::AsRawFd;
        let file = fs::File::open(path)?;
        let len = file.metadata()?.len();
        if len > MAX_LEN {
            return Err(io::Error::from_raw_os_error(libc::EFBIG));
        }
        let len = len as usize;
        if len == 0 {
            return Ok(Mapping { ptr: std::ptr::null(), len: 0 });
        }
        // SAFETY: a private read-only mapping of an open file of `len` bytes;
        // the fd may be closed afterwards (the mapping keeps the file).
        let ptr =
            unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { ptr: ptr as *const u8, len })
    }

    fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` maps `len` readable bytes until Drop.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmapping exactly what `open` mapped.
            unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
        }
    }
}

/// An open `pci.ids`, answering name questions.
pub struct PciIds {
    map: Mapping,
    /// Answers given so far, by `vendor << 16 | device`.
    names: Mutex<HashMap<u32, PciNames>>,
}

impl PciIds {
    pub fn open(path: &Path) -> io::Result<PciIds> {
        Ok(PciIds { map: Mapping::open(path)?, names: Mutex::new(HashMap::new()) })
    }

    /// The vendor's name and the device's, each where the database has it.
    pub fn names(&self, vendor: u16, device: u16) -> PciNames {
        let key = (vendor as u32) << 16 | device as u32;
        let mut memo = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = memo.get(&key) {
            return n.clone();
        }
        let n = lookup(self.map.bytes(), vendor, device);
        memo.insert(key, n.clone());
        n
    }
}

/// `vendor`/`device` names in the text of a `pci.ids`.
pub fn lookup(data: &[u8], vendor: u16, device: u16) -> PciNames {
    let Some(line) = find_vendor(data, vendor).or_else(|| scan_vendor(data, vendor)) else {
        return PciNames::default();
    };
    let vendor_name = entry(line_at(data, line), 0).map(|(_, n)| n);
    PciNames { vendor: vendor_name, product: find_device(data, line_end(data, line), device) }
}

/// The line starting at `start`, without its newline.
fn line_at(data: &[u8], start: usize) -> &[u8] {
    let end = memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
    &data[start..end]
}

/// Start of the line holding byte `p`.
fn line_start(data: &[u8], p: usize) -> usize {
    memrchr(b'\n', &data[..p]).map_or(0, |i| i + 1)
}

/// Start of the line after the one holding byte `p`.
fn line_end(data: &[u8], p: usize) -> usize {
    memchr(b'\n', &data[p..]).map_or(data.len(), |i| p + i + 1)
}

/// An id line at `depth` tabs: `\t\tXXXX  Name` -> (0xXXXX, "Name").
fn entry(line: &[u8], depth: usize) -> Option<(u16, String)> {
    let rest = line.strip_prefix(&b"\t\t"[..depth])?;
    let hex = rest.get(..4)?;
    if !hex.iter().all(u8::is_ascii_hexdigit) || rest.get(4) != Some(&b' ') {
        return None;
    }
    let id = u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
    // Control characters (an escape sequence in a tampered file) are left
    // out: names reach terminals (`nodedev list`) and XML.
    let name: String = String::from_utf8_lossy(&rest[4..]).chars().filter(|c| !c.is_control()).collect();
    Some((id, name.trim().to_string()))
}

/// The vendor line's id, without building its name.
fn vendor_id(line: &[u8]) -> Option<u16> {
    let hex = line.get(..4)?;
    if !hex.iter().all(u8::is_ascii_hexdigit) || line.get(4) != Some(&b' ') {
        return None;
    }
    u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

/// Binary search for the vendor's line among the lines at column 0. Lines
/// in between (devices, subsystems, comments, the class list) are skipped
/// by looking back from the middle to the nearest vendor line.
fn find_vendor(data: &[u8], vendor: u16) -> Option<usize> {
    let (mut lo, mut hi) = (0, data.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        // The last vendor line that starts in [lo, mid].
        let mut s = line_start(data, mid);
        let found = loop {
            if s < lo {
                break None;
            }
            if let Some(id) = vendor_id(line_at(data, s)) {
                break Some((s, id));
            }
            if s == 0 || s == lo {
                break None;
            }
            s = line_start(data, s - 1);
        };
        match found {
            Some((s, id)) if id == vendor => return Some(s),
            Some((s, id)) if id > vendor => hi = s,
            // Below the vendor, or no vendor line: nothing up to mid's line.
            _ => lo = line_end(data, mid),
        }
    }
    None
}

/// The vendor's line, line by line: for a file whose vendors are out of order.
fn scan_vendor(data: &[u8], vendor: u16) -> Option<usize> {
    let mut s = 0;
    while s < data.len() {
        if vendor_id(line_at(data, s)) == Some(vendor) {
            return Some(s);
        }
        s = line_end(data, s);
    }
    None
}

/// The device's name in the vendor section starting at `start` (the line
/// after the vendor's), which ends at the next line that is not indented.
fn find_device(data: &[u8], start: usize, device: u16) -> Option<String> {
    let mut s = start;
    while s < data.len() {
        let line = line_at(data, s);
        match line.first() {
            Some(b'\t') => {
                if line.get(1) != Some(&b'\t') {
                    if let Some((id, name)) = entry(line, 1).filter(|(id, _)| *id == device) {
                        debug_assert_eq!(id, device);
                        return Some(name);
                    }
                }
            }
            Some(b'#') | None => {}
            Some(_) => return None, // the next vendor (or the class list)
        }
        s = line_end(data, s);
    }
    None
}

fn memchr(b: u8, hay: &[u8]) -> Option<usize> {
    // SAFETY: searching `hay.len()` bytes of a live slice.
    let p = unsafe { libc::memchr(hay.as_ptr().cast(), b as libc::c_int, hay.len()) };
    (!p.is_null()).then(|| p as usize - hay.as_ptr() as usize)
}

fn memrchr(b: u8, hay: &[u8]) -> Option<usize> {
    // SAFETY: as memchr.
    let p = unsafe { libc::memrchr(hay.as_ptr().cast(), b as libc::c_int, hay.len()) };
    (!p.is_null()).then(|| p as usize - hay.as_ptr() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# comment line
#\tindented comment
0001  SafeNet (wrong ID)
0010  Allied Telesis, Inc (Wrong ID)
# This is a relabelled RTL-8139
\t8139  AT-2500TX V3 Ethernet
8086  Intel Corporation
\t0007  82379AB
\t10d3  82574L Gigabit Network Connection
\t\t8086 0001  Gigabit CT Desktop Adapter
\t\t8086 a01f  Gigabit CT Desktop Adapter
# a comment inside a section
\t10d4  Amber Network Device
\t1521  I350 Gigabit Network Connection  \r
8088  Beijing Wangxun Technology Co., Ltd.
\t1001  Ethernet Controller RP1000 for 10GbE SFP+
ffff  Illegal Vendor ID

# List of known device classes
C 00  Unclassified device [0000]
\t00  Non-VGA unclassified device
C 02  Network controller
\t00  Ethernet controller
";

    fn names(data: &str, v: u16, d: u16) -> (Option<String>, Option<String>) {
        let n = lookup(data.as_bytes(), v, d);
        (n.vendor, n.product)
    }

    fn s(x: &str) -> Option<String> {
        Some(x.to_string())
    }

    #[test]
    fn vendor_and_device_names_as_lspci_shows_them() {
        assert_eq!(names(SAMPLE, 0x8086, 0x10d3), (s("Intel Corporation"), s("82574L Gigabit Network Connection")));
        assert_eq!(names(SAMPLE, 0x8086, 0x0007), (s("Intel Corporation"), s("82379AB")));
        assert_eq!(names(SAMPLE, 0x8086, 0x10d4), (s("Intel Corporation"), s("Amber Network Device")));
        // Trailing blanks and a CR are not part of a name.
        assert_eq!(names(SAMPLE, 0x8086, 0x1521), (s("Intel Corporation"), s("I350 Gigabit Network Connection")));
        assert_eq!(names(SAMPLE, 0x0010, 0x8139), (s("Allied Telesis, Inc (Wrong ID)"), s("AT-2500TX V3 Ethernet")));
        assert_eq!(names(SAMPLE, 0x0001, 0x0000), (s("SafeNet (wrong ID)"), None));
        assert_eq!(names(SAMPLE, 0xffff, 0xffff), (s("Illegal Vendor ID"), None));
    }

    #[test]
    fn a_known_vendor_with_an_unknown_device_has_the_vendor_name_only() {
        // libvirt shows <vendor id='0x8086'>Intel Corporation</vendor> and a bare <product id=.../>.
        assert_eq!(names(SAMPLE, 0x8086, 0x0001), (s("Intel Corporation"), None));
        // A subsystem line's first id is no device of the vendor.
        assert_eq!(names(SAMPLE, 0x8086, 0xa01f), (s("Intel Corporation"), None));
        // The next vendor's devices are not this vendor's.
        assert_eq!(names(SAMPLE, 0x8086, 0x1001), (s("Intel Corporation"), None));
    }

    #[test]
    fn unknown_vendors_and_degenerate_files_have_no_names() {
        assert_eq!(names(SAMPLE, 0x8087, 0x10d3), (None, None));
        assert_eq!(names(SAMPLE, 0x0000, 0x0000), (None, None));
        assert_eq!(names(SAMPLE, 0x00ff, 0x0000), (None, None));
        assert_eq!(names("", 0x8086, 0x10d3), (None, None));
        assert_eq!(names("8086  Intel", 0x8086, 0x10d3), (s("Intel"), None));
        assert_eq!(names("\n\n\n", 0x8086, 0x10d3), (None, None));
        // Class lines ("C 02") are no vendor, whatever their digits.
        assert_eq!(names(SAMPLE, 0x0002, 0x0000), (None, None));
    }

    #[test]
    fn every_vendor_and_device_of_the_sample_is_found_by_the_search() {
        for v in 0..=0xffffu32 {
            let v = v as u16;
            let expect = naive(SAMPLE, v, 0x10d3);
            assert_eq!(names(SAMPLE, v, 0x10d3), expect, "vendor {v:04x}");
        }
    }

    #[test]
    fn vendors_out_of_order_are_still_found() {
        let shuffled = "8088  Wangxun\n\t1001  RP1000\n8086  Intel Corporation\n\t10d3  82574L\n0001  SafeNet\n";
        assert_eq!(names(shuffled, 0x8086, 0x10d3), (s("Intel Corporation"), s("82574L")));
        assert_eq!(names(shuffled, 0x0001, 0x10d3), (s("SafeNet"), None));
        assert_eq!(names(shuffled, 0x8088, 0x1001), (s("Wangxun"), s("RP1000")));
    }

    /// A plain reading of the format: what the search must agree with.
    pub(super) fn naive(text: &str, vendor: u16, device: u16) -> (Option<String>, Option<String>) {
        let mut in_vendor = false;
        let (mut v, mut d) = (None, None);
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if !line.starts_with('\t') {
                if in_vendor {
                    break;
                }
                if let Some((id, name)) = line.split_once("  ") {
                    if u16::from_str_radix(id, 16).ok() == Some(vendor) && id.len() == 4 {
                        in_vendor = true;
                        v = Some(name.trim().to_string());
                    }
                }
            } else if in_vendor && !line.starts_with("\t\t") && d.is_none() {
                if let Some((id, name)) = line[1..].split_once("  ") {
                    if u16::from_str_radix(id, 16).ok() == Some(device) {
                        d = Some(name.trim().to_string());
                    }
                }
            }
        }
        (v, d)
    }

    /// The installed database (when there is one): every vendor and device
    /// it lists is found, with the name a plain reading of the whole file
    /// gives (the first line of an id wins, as in lspci).
    #[test]
    fn the_installed_database_answers_every_id_it_lists() {
        let Some(path) = locate(Path::new("/")) else {
            // CI installs it (.ci/run): there a missing file is a failure.
            assert!(std::env::var_os("NODEDEV_CI").is_none(), "pci.ids is missing: .ci/run installs it");
            eprintln!("note: no pci.ids installed; the sample checks stand alone");
            return;
        };
        let text = fs::read_to_string(&path).unwrap();
        let (mut vendors, mut devices) = (HashMap::new(), HashMap::new());
        let mut vendor = None;
        for line in text.lines() {
            if line.starts_with('#') || line.starts_with("\t\t") {
                continue;
            }
            if let Some((id, name)) = line.split_once("  ").filter(|(id, _)| id.len() == 4) {
                match u16::from_str_radix(id, 16) {
                    Ok(v) => {
                        vendor = Some(v);
                        vendors.entry(v).or_insert_with(|| name.trim().to_string());
                    }
                    Err(_) => vendor = None,
                }
            } else if let (Some(v), Some((id, name))) =
                (vendor, line.strip_prefix('\t').and_then(|l| l.split_once("  ")))
            {
                if let Ok(d) = u16::from_str_radix(id, 16) {
                    devices.entry((v, d)).or_insert_with(|| name.trim().to_string());
                }
            } else if !line.starts_with('\t') && !line.trim().is_empty() {
                vendor = None; // the class list
            }
        }
        let ids = PciIds::open(&path).unwrap();
        for (&v, name) in &vendors {
            let n = ids.names(v, 0xfffe);
            assert_eq!(n.vendor.as_ref(), Some(name), "vendor {v:04x}");
        }
        for (&(v, d), name) in &devices {
            let n = ids.names(v, d);
            assert_eq!(n.product.as_ref(), Some(name), "{v:04x}:{d:04x}");
            assert_eq!(n.vendor.as_ref(), vendors.get(&v), "{v:04x}:{d:04x}");
        }
        assert!(devices.len() > 1000, "only {} devices in {}", devices.len(), path.display());
    }

    #[test]
    fn control_characters_in_a_name_are_left_out() {
        let data = b"8086  Intel\x1b[2J Corp\x07\n\t10c9  82576\x00 Gigabit\r\n";
        let n = lookup(data, 0x8086, 0x10c9);
        assert_eq!(n.vendor.as_deref(), Some("Intel[2J Corp"));
        assert_eq!(n.product.as_deref(), Some("82576 Gigabit"));
    }
}
