//! What the integration tests share.

/// Whether a tool or file that `.ci/run` installs is here. Missing: a note
/// and a skip on a developer's machine, a failure under NODEDEV_CI=1 (CI),
/// where a skipped check would pass without having run.
#[allow(dead_code)] // not every test file checks tools
pub fn ci_installs(what: &str, present: bool) -> bool {
    if !present {
        assert!(std::env::var_os("NODEDEV_CI").is_none(), "{what} is missing: .ci/run installs it");
        eprintln!("note: {what} is not installed; this check is skipped");
    }
    present
}

/// In a test's `Sysfs` wrapper, the methods it passes on unchanged to
/// `self.FIELD` (a field name or `0`): `forward_sysfs!(sim; read, exists);`.
/// A new trait method is added here once, not to every wrapper.
#[macro_export]
macro_rules! forward_sysfs {
    ($f:tt; $($m:ident),* $(,)?) => { $( $crate::forward_sysfs!(@one $f $m); )* };
    (@one $f:tt read) => { fn read(&self, p: &str) -> std::io::Result<String> { self.$f.read(p) } };
    (@one $f:tt write) => { fn write(&self, p: &str, v: &str) -> std::io::Result<()> { self.$f.write(p, v) } };
    (@one $f:tt read_link) => { fn read_link(&self, p: &str) -> std::io::Result<String> { self.$f.read_link(p) } };
    (@one $f:tt list_dir) => { fn list_dir(&self, p: &str) -> std::io::Result<Vec<String>> { self.$f.list_dir(p) } };
    (@one $f:tt exists) => { fn exists(&self, p: &str) -> bool { self.$f.exists(p) } };
    (@one $f:tt load_module) => { fn load_module(&self, m: &str) -> std::io::Result<()> { self.$f.load_module(m) } };
    (@one $f:tt matching_aliases) => {
        fn matching_aliases(&self, m: &str) -> std::io::Result<Vec<nodedev::sysfs::modalias::ModuleAlias>> {
            self.$f.matching_aliases(m)
        }
    };
    (@one $f:tt vfio_aliases) => {
        fn vfio_aliases(&self) -> std::io::Result<Vec<nodedev::sysfs::modalias::ModuleAlias>> {
            self.$f.vfio_aliases()
        }
    };
    (@one $f:tt pci_names) => {
        fn pci_names(&self, v: u16, d: u16) -> nodedev::sysfs::PciNames { self.$f.pci_names(v, d) }
    };
    (@one $f:tt vfio_holders) => {
        fn vfio_holders(&self, dev: &nodedev::sysfs::VfioDevice<'_>) -> std::io::Result<nodedev::sysfs::HolderScan> {
            self.$f.vfio_holders(dev)
        }
    };
    (@one $f:tt write_bounded) => {
        fn write_bounded(&self, p: &str, v: &str, limit: std::time::Duration) -> std::io::Result<()> {
            self.$f.write_bounded(p, v, limit)
        }
    };
    (@one $f:tt net_addresses) => { fn net_addresses(&self, i: &str) -> Vec<String> { self.$f.net_addresses(i) } };
    (@one $f:tt net_routes) => { fn net_routes(&self, i: &str) -> Vec<String> { self.$f.net_routes(i) } };
    (@one $f:tt mounts) => { fn mounts(&self) -> Vec<(String, String)> { self.$f.mounts() } };
    (@one $f:tt swaps) => { fn swaps(&self) -> Vec<nodedev::sysfs::SwapArea> { self.$f.swaps() } };
    (@one $f:tt set_master) => {
        fn set_master(&self, i: &str, m: Option<&str>) -> std::io::Result<()> { self.$f.set_master(i, m) }
    };
    // libvirt's device tree (tree)
    (@one $f:tt read_bytes) => {
        fn read_bytes(&self, p: &str, l: usize) -> std::io::Result<Vec<u8>> { self.$f.read_bytes(p, l) }
    };
    (@one $f:tt net_features) => {
        fn net_features(&self, i: &str) -> std::io::Result<Vec<String>> { self.$f.net_features(i) }
    };
    (@one $f:tt set_link_up) => {
        fn set_link_up(&self, i: &str, up: bool) -> std::io::Result<()> { self.$f.set_link_up(i, up) }
    };
    (@one $f:tt uevents) => {
        fn uevents(&self) -> std::io::Result<Box<dyn nodedev::sysfs::uevent::UeventSource>> { self.$f.uevents() }
    };
}

// ---- libvirt's device tree (tree): nodedev.rng validation ----

/// libvirt's schema of node-device XML, as Debian's libvirt0 installs it.
pub const NODEDEV_RNG: &str = "/usr/share/libvirt/schemas/nodedev.rng";

/// Validate XML documents (name, text) against libvirt's nodedev.rng with
/// xmllint; Err lists what failed. None when xmllint or the schema is
/// missing outside CI (under NODEDEV_CI that fails: .ci/run installs both).
#[allow(dead_code)]
pub fn validate_nodedev_xml(docs: &[(String, String)]) -> Option<Result<(), String>> {
    let xmllint = std::process::Command::new("xmllint").arg("--version").output().is_ok();
    if !ci_installs("xmllint (libxml2-utils)", xmllint)
        || !ci_installs("libvirt's nodedev.rng (libvirt0)", std::path::Path::new(NODEDEV_RNG).exists())
    {
        return None;
    }
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "nodedev-rng-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<std::path::PathBuf> = docs
        .iter()
        .enumerate()
        .map(|(i, (name, xml))| {
            let f = dir.join(format!("{i:04}-{name}.xml"));
            std::fs::write(&f, xml).unwrap();
            f
        })
        .collect();
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--relaxng", NODEDEV_RNG])
        .args(&files)
        .output()
        .expect("xmllint runs");
    let _ = std::fs::remove_dir_all(&dir);
    let report = String::from_utf8_lossy(&out.stderr).into_owned();
    let valid = report.lines().filter(|l| l.ends_with(" validates")).count();
    Some(if out.status.success() && valid == docs.len() {
        Ok(())
    } else {
        Err(format!("{valid} of {} documents validate:\n{report}", docs.len()))
    })
}
