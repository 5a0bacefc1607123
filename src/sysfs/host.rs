//! The real kernel: files under a root directory (normally "/", so /sys).

use super::live as hostuse;
use super::modalias::{self, ModuleAlias};
use super::pciids::{self, PciIds};
use super::{HolderScan, PciNames, SwapArea, Sysfs, VfioDevice};
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

pub struct HostSysfs {
    root: PathBuf,
    sys: PathBuf,
    live: bool,
    /// The root's pci.ids, opened at the first name asked (None: there is none).
    pci_ids: OnceLock<Option<PciIds>>,
}

/// Whether `root/sys` is the running kernel's sysfs, however it is reached:
/// `root` resolving to `/`, a `sys` that is a link to /sys or a bind mount
/// of it (same device and inode), or any mount of sysfs (its magic number:
/// every sysfs mount shows this kernel's devices). A test tree is a plain
/// directory and none of these.
pub fn is_live_root(root: &std::path::Path) -> bool {
    if fs::canonicalize(root).is_ok_and(|p| p == std::path::Path::new("/")) {
        return true;
    }
    let sys = root.join("sys");
    let same_as_sys = |a: &fs::Metadata, b: &fs::Metadata| {
        use std::os::unix::fs::MetadataExt;
        a.dev() == b.dev() && a.ino() == b.ino()
    };
    if let (Ok(a), Ok(b)) = (fs::metadata(&sys), fs::metadata("/sys")) {
        if same_as_sys(&a, &b) {
            return true;
        }
    }
    const SYSFS_MAGIC: i64 = 0x6265_6572;
    let Ok(path) = std::ffi::CString::new(sys.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: statfs fills the struct we pass for a NUL-terminated path.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(path.as_ptr(), &mut st) == 0 && st.f_type as i64 == SYSFS_MAGIC
    }
}

impl HostSysfs {
    /// `root` is the filesystem root whose `sys/` is used; "/" on a real host,
    /// a prepared tree in tests.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        // `//`, `/.` or a link to / are the live system too.
        let root = fs::canonicalize(&root).unwrap_or(root);
        let sys = root.join("sys");
        let live = is_live_root(&root);
        HostSysfs { root, sys, live, pci_ids: OnceLock::new() }
    }

    /// The file a sysfs-relative path names: always inside the sysfs root.
    pub fn resolve(&self, rel: &str) -> io::Result<PathBuf> {
        self.path(rel)
    }

    fn path(&self, rel: &str) -> io::Result<PathBuf> {
        // Never let a crafted name climb out of the sysfs root.
        if rel.starts_with('/') || rel.contains('\0') || rel.split('/').any(|c| c == "..") {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        Ok(self.sys.join(rel))
    }
}

impl HostSysfs {
    /// Whether this is the running kernel's /sys (not a test tree), so that
    /// facts outside sysfs (addresses, mounts) belong to it.
    pub fn is_live(&self) -> bool {
        self.live
    }

    fn live_only(&self) -> io::Result<()> {
        if self.is_live() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("cannot change network links for a sysfs tree under {}", self.root.display()),
            ))
        }
    }
}

type Parsed = Result<Vec<ModuleAlias>, (io::ErrorKind, String)>;

/// The running kernel's modules.alias, read and given to `parse`.
fn read_kernel_aliases(parse: impl Fn(&str) -> Vec<ModuleAlias>) -> Parsed {
    // SAFETY: uname fills the struct we pass; its fields are NUL-terminated.
    let release = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            let e = io::Error::last_os_error();
            return Err((e.kind(), format!("uname: {e}")));
        }
        std::ffi::CStr::from_ptr(u.release.as_ptr()).to_string_lossy().into_owned()
    };
    let path = format!("/lib/modules/{release}/modules.alias");
    fs::read_to_string(&path).map(|t| parse(&t)).map_err(|e| (e.kind(), format!("{path}: {e}")))
}

fn parsed(p: &Parsed) -> io::Result<&[ModuleAlias]> {
    p.as_deref().map_err(|(kind, msg)| io::Error::new(*kind, msg.clone()))
}

/// The running kernel's modules.alias, read and parsed once per process
/// (it has tens of thousands of lines).
fn kernel_aliases() -> io::Result<&'static [ModuleAlias]> {
    static ALIASES: OnceLock<Parsed> = OnceLock::new();
    parsed(ALIASES.get_or_init(|| read_kernel_aliases(modalias::parse)))
}

/// Its `vfio_pci:` lines only, read once per process apart from the rest:
/// a detach needs these few, not the whole file parsed.
fn kernel_vfio_aliases() -> io::Result<&'static [ModuleAlias]> {
    static VFIO: OnceLock<Parsed> = OnceLock::new();
    parsed(VFIO.get_or_init(|| read_kernel_aliases(|t| modalias::parse_prefixed(t, modalias::VFIO_PREFIX))))
}

/// The most an attribute read returns: the kernel's text attributes are a
/// page at most. A bigger file (a tree under root= whose attribute links to
/// /dev/zero or is huge) is refused with EFBIG rather than read whole.
const MAX_ATTRIBUTE: usize = 1 << 20;

/// Open an attribute to read: O_NONBLOCK so that a FIFO (a test tree's, or
/// a crafted one) opens without waiting for a writer and reads empty, and
/// O_NOCTTY so that a terminal never becomes the controlling one.
fn open_attribute(path: &std::path::Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path)
}

/// An attribute's bytes in as few syscalls as possible (open, read, close):
/// enumeration reads a few files per device, so `fs::read`'s extra statx and
/// final empty read would be a third of the cost. A sysfs attribute (at most
/// a page) comes back whole from one read, and a regular file reads short only
/// at its end, so a read that does not fill the buffer is the last one.
fn read_attribute(mut file: fs::File) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = vec![0u8; 4096];
    let mut len = 0;
    loop {
        match file.read(&mut out[len..]) {
            Ok(n) => {
                len += n;
                if len < out.len() {
                    out.truncate(len);
                    return Ok(out);
                }
                if out.len() >= MAX_ATTRIBUTE {
                    return Err(io::Error::from_raw_os_error(libc::EFBIG));
                }
                out.resize(out.len() * 2, 0);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A directory's names (no "." or "..") in open, getdents64 until it
/// returns nothing, close: `fs::read_dir` (glibc's opendir) adds an fstat,
/// a fifth of the cost of listing a small directory such as an IOMMU
/// group's, which the XML of every device lists.
fn list_directory(path: &std::path::Path) -> io::Result<Vec<String>> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    let c =
        std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a NUL-terminated path; the fd is owned (closed) by `dir`.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let dir = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut names = Vec::new();
    // u64 elements: linux_dirent64 records are 8-byte aligned.
    let mut buf = vec![0u64; 4096];
    loop {
        // SAFETY: getdents64 writes at most the buffer's size into it.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len() * std::mem::size_of::<u64>(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(names);
        }
        // SAFETY: the kernel filled `n` bytes of the buffer.
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize) };
        let mut off = 0;
        // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        while off + 19 <= bytes.len() {
            let reclen = u16::from_ne_bytes([bytes[off + 16], bytes[off + 17]]) as usize;
            if reclen == 0 || off + reclen > bytes.len() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "getdents64 returned a malformed record"));
            }
            let name = &bytes[off + 19..off + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if name != b"." && name != b".." {
                names.push(String::from_utf8_lossy(name).into_owned());
            }
            off += reclen;
        }
    }
}

impl Sysfs for HostSysfs {
    fn read(&self, path: &str) -> io::Result<String> {
        let bytes = read_attribute(open_attribute(&self.path(path)?)?)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn write(&self, path: &str, value: &str) -> io::Result<()> {
        // sysfs attributes take one write; no create, no truncate.
        let mut f = fs::OpenOptions::new().write(true).open(self.path(path)?)?;
        f.write_all(value.as_bytes())?;
        #[cfg(feature = "crash-hooks")]
        crash_hook::after_write(path);
        Ok(())
    }

    fn read_link(&self, path: &str) -> io::Result<String> {
        Ok(fs::read_link(self.path(path)?)?.to_string_lossy().into_owned())
    }

    fn list_dir(&self, path: &str) -> io::Result<Vec<String>> {
        list_directory(&self.path(path)?)
    }

    fn exists(&self, path: &str) -> bool {
        self.path(path).map(|p| fs::symlink_metadata(p).is_ok()).unwrap_or(false)
    }

    // --- Names (issue 12): the pci.ids of this root, as lspci reads it ---
    fn pci_names(&self, vendor: u16, device: u16) -> PciNames {
        let ids = self.pci_ids.get_or_init(|| pciids::locate(&self.root).and_then(|p| PciIds::open(&p).ok()));
        ids.as_ref().map(|ids| ids.names(vendor, device)).unwrap_or_default()
    }

    // --- Host use (facts from /proc and getifaddrs; see live.rs) ---
    fn net_addresses(&self, iface: &str) -> Vec<String> {
        if !self.is_live() {
            return Vec::new();
        }
        hostuse::addresses_of(iface)
    }

    fn net_routes(&self, iface: &str) -> Vec<String> {
        if !self.is_live() {
            return Vec::new();
        }
        let v4 = fs::read_to_string("/proc/net/route").unwrap_or_default();
        let v6 = fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
        let mut out = hostuse::ipv4_routes(&v4, iface);
        out.extend(hostuse::ipv6_routes(&v6, iface));
        out
    }

    fn matching_aliases(&self, modalias: &str) -> io::Result<Vec<ModuleAlias>> {
        if !self.is_live() {
            return Ok(Vec::new()); // no module can be loaded for a tree under another root
        }
        Ok(kernel_aliases()?.iter().filter(|a| modalias::glob_match(&a.pattern, modalias)).cloned().collect())
    }

    fn vfio_aliases(&self) -> io::Result<Vec<ModuleAlias>> {
        if !self.is_live() {
            return Ok(Vec::new()); // no module can be loaded for a tree under another root
        }
        Ok(kernel_vfio_aliases()?.to_vec())
    }

    fn vfio_holders(&self, dev: &VfioDevice<'_>) -> io::Result<HolderScan> {
        // A test tree's groups are not this kernel's: nobody can hold them.
        if !self.is_live() {
            return Ok(HolderScan::default());
        }
        super::holders::scan(std::path::Path::new("/proc"), dev)
    }

    fn write_bounded(&self, path: &str, value: &str, limit: Duration) -> io::Result<()> {
        let f = fs::OpenOptions::new().write(true).open(self.path(path)?)?;
        super::bounded::write(&f, value.as_bytes(), limit)?;
        #[cfg(feature = "crash-hooks")]
        crash_hook::after_write(path);
        Ok(())
    }

    fn mounts(&self) -> Vec<(String, String)> {
        if !self.is_live() {
            return Vec::new();
        }
        hostuse::mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
    }

    fn swaps(&self) -> Vec<SwapArea> {
        if !self.is_live() {
            return Vec::new();
        }
        hostuse::proc_swaps(&fs::read_to_string("/proc/swaps").unwrap_or_default())
            .into_iter()
            .filter_map(|(path, file)| Some(SwapArea { device: hostuse::device_number(&path, file)?, path, file }))
            .collect()
    }

    fn set_master(&self, iface: &str, master: Option<&str>) -> io::Result<()> {
        self.live_only()?;
        hostuse::set_master(iface, master)
    }

    fn set_link_up(&self, iface: &str, up: bool) -> io::Result<()> {
        self.live_only()?;
        hostuse::set_link_up(iface, up)
    }

    // ---- libvirt's device tree (tree) ----
    fn read_bytes(&self, path: &str, limit: usize) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let mut out = Vec::with_capacity(limit.min(4096));
        fs::File::open(self.path(path)?)?.take(limit as u64).read_to_end(&mut out)?;
        Ok(out)
    }

    fn net_features(&self, iface: &str) -> io::Result<Vec<String>> {
        if !self.is_live() {
            return Ok(Vec::new()); // a tree's interfaces are not this kernel's
        }
        super::ethtool::features(iface)
    }

    // ---- Events: the kernel's uevents, only for the live kernel's sysfs.
    fn uevents(&self) -> io::Result<Box<dyn super::uevent::UeventSource>> {
        if !self.is_live() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "no kernel events for the sysfs tree under {}: only the running kernel's /sys sends them",
                    self.root.display()
                ),
            ));
        }
        Ok(Box::new(super::uevent::NetlinkUevents::open()?))
    }

    fn load_module(&self, module: &str) -> io::Result<()> {
        if !self.is_live() {
            // modprobe acts on the running kernel, not on a tree under another root.
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("cannot load modules for a sysfs tree under {}", self.root.display()),
            ));
        }
        let status = Command::new("modprobe").arg("-q").arg(module).status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!("modprobe {module} exited with {status}")))
        }
    }
}

/// Test-only (cargo feature `crash-hooks`, off by default): with
/// NODEDEV_PAUSE_AFTER_WRITE=N the process stops after its N-th sysfs write,
/// creates the file NODEDEV_PAUSE_MARKER (if set) and waits there forever,
/// so the real-kernel suite can SIGKILL it between two steps.
#[cfg(feature = "crash-hooks")]
mod crash_hook {
    use std::sync::atomic::{AtomicUsize, Ordering};

    static WRITES: AtomicUsize = AtomicUsize::new(0);

    pub fn after_write(path: &str) {
        let Some(n) = std::env::var("NODEDEV_PAUSE_AFTER_WRITE").ok().and_then(|v| v.parse::<usize>().ok()) else {
            return;
        };
        if WRITES.fetch_add(1, Ordering::SeqCst) + 1 == n {
            eprintln!("nodedev: paused after write {n} (/sys/{path})");
            if let Ok(marker) = std::env::var("NODEDEV_PAUSE_MARKER") {
                let _ = std::fs::write(marker, path);
            }
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    }
}
