//! The real kernel: files under a root directory (normally "/", so /sys).

use super::Sysfs;
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::Command;

pub struct HostSysfs {
    root: PathBuf,
    sys: PathBuf,
}

impl HostSysfs {
    /// `root` is the filesystem root whose `sys/` is used; "/" on a real host,
    /// a prepared tree in tests.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let sys = root.join("sys");
        HostSysfs { root, sys }
    }

    fn path(&self, rel: &str) -> io::Result<PathBuf> {
        // Never let a crafted name climb out of the sysfs root.
        if rel.starts_with('/') || rel.split('/').any(|c| c == "..") {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        Ok(self.sys.join(rel))
    }
}

impl Sysfs for HostSysfs {
    fn read(&self, path: &str) -> io::Result<String> {
        let bytes = fs::read(self.path(path)?)?;
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
        fs::read_dir(self.path(path)?)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect()
    }

    fn exists(&self, path: &str) -> bool {
        self.path(path).map(|p| fs::symlink_metadata(p).is_ok()).unwrap_or(false)
    }

    fn load_module(&self, module: &str) -> io::Result<()> {
        if self.root != PathBuf::from("/") {
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
