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
    (@one $f:tt set_link_up) => {
        fn set_link_up(&self, i: &str, up: bool) -> std::io::Result<()> { self.$f.set_link_up(i, up) }
    };
}
