//! The reads per device of a listing (not timed): what a libvirt-style
//! daemon does at start (every device's handle and XML, as
//! virConnectListAllNodeDevices + virNodeDeviceGetXMLDesc do it) and what
//! `nodedev list` does, counted through a wrapper of the Sysfs seam on a
//! generated host of the benchmark's mix, on the real backend (a tree) and
//! on the simulated kernel. Each call is weighed by the syscalls the real
//! backend makes for it, so that a change that reads more per device fails
//! here instead of silently slowing the benchmark (BENCHMARKS.md).

mod common;

use nodedev::address::PciAddress;
use nodedev::host::{Host, HostOptions};
use nodedev::state::StateStore;
use nodedev::sysfs::host::HostSysfs;
use nodedev::sysfs::sim::SimKernel;
use nodedev::sysfs::{PciNames, Sysfs};
use std::io;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// Syscalls of the real backend (src/sysfs/host.rs) per call: a read is
/// open, read, close; a listing open, getdents64 twice, close; a readlink
/// or an existence check one call; any of them failing on an absent file
/// one call (the failed lookup).
struct Counting<S> {
    inner: S,
    syscalls: AtomicUsize,
    names: AtomicUsize,
}

impl<S> Counting<S> {
    fn new(inner: S) -> Self {
        Counting { inner, syscalls: AtomicUsize::new(0), names: AtomicUsize::new(0) }
    }
    fn count<T>(&self, r: io::Result<T>, found: usize) -> io::Result<T> {
        self.syscalls.fetch_add(if r.is_ok() { found } else { 1 }, Relaxed);
        r
    }
    fn take(&self) -> usize {
        self.syscalls.swap(0, Relaxed)
    }
}

impl<S: Sysfs> Sysfs for Counting<S> {
    fn read(&self, p: &str) -> io::Result<String> {
        self.count(self.inner.read(p), 3)
    }
    fn read_link(&self, p: &str) -> io::Result<String> {
        self.count(self.inner.read_link(p), 1)
    }
    fn list_dir(&self, p: &str) -> io::Result<Vec<String>> {
        self.count(self.inner.list_dir(p), 4)
    }
    fn exists(&self, p: &str) -> bool {
        self.syscalls.fetch_add(1, Relaxed);
        self.inner.exists(p)
    }
    fn pci_names(&self, v: u16, d: u16) -> PciNames {
        self.names.fetch_add(1, Relaxed);
        self.inner.pci_names(v, d)
    }
    // libvirt's device tree: `config` (and `vpd`) read whole like an attribute.
    fn read_bytes(&self, p: &str, l: usize) -> io::Result<Vec<u8>> {
        self.count(self.inner.read_bytes(p, l), 3)
    }
    forward_sysfs!(inner; net_features, write, load_module, matching_aliases, vfio_aliases, net_addresses, net_routes, mounts, swaps,
        set_master, set_link_up, vfio_holders, write_bounded, uevents);
}

/// Per-device budgets, in syscalls of the real backend.
/// Handle + XML: the placement readlink (handle), uevent (3), the
/// iommu_group link (1) and the group's listing (4), numa_node (3), a
/// failed lookup each of physfn, sriov_totalvfs and mdev_supported_types
/// (3; the last tells an mdev parent, whose XML lists its types); libvirt's
/// tree adds `config` (3: bridge type, PCIe link, and whether the function
/// has the VPD capability, without which the kernel shows no `vpd` file:
/// no failed open of `vpd` for the functions without).
const HANDLE_AND_XML: usize = 18;
/// A PF's XML also reads sriov_totalvfs (2 more) and sriov_numvfs (3),
/// plus one readlink per VF.
const PF_EXTRA: usize = 5;
/// `nodedev list`: uevent and the iommu_group link.
const LIST_LINE: usize = 4;

fn generated(n: usize) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("target/tmp/budget-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nodedev-gen-sysfs")).arg(n.to_string()).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

fn host<S: Sysfs + 'static>(sysfs: &Arc<Counting<S>>) -> Host {
    let options = HostOptions { read_only: true, allow_modprobe: false, ..HostOptions::default() };
    Host::new(sysfs.clone(), StateStore::memory(), options)
}

/// Every device's handle and XML, as the C API makes them, with each
/// device's cost checked against its budget.
fn check_handles_and_xml<S: Sysfs + 'static>(what: &str, sysfs: Arc<Counting<S>>) {
    let host = host(&sysfs);
    let devices: Vec<PciAddress> = host.list().unwrap();
    sysfs.take();
    let (mut total, mut budget, mut pfs) = (0, 0, 0);
    for d in &devices {
        let link = host.placement_link(d).unwrap();
        let xml = host.xml_placed(d, &link).unwrap();
        let spent = sysfs.take();
        let allowed = match xml.split_once("type='virt_functions'") {
            Some((_, vfs)) => {
                pfs += 1;
                let vfs = vfs.split("</capability>").next().unwrap_or_default().matches("<address").count();
                HANDLE_AND_XML + PF_EXTRA + vfs
            }
            None => HANDLE_AND_XML,
        };
        assert!(
            spent <= allowed,
            "{what}: {d} took {spent} syscalls for its handle and XML (budget {allowed}):\n{xml}"
        );
        total += spent;
        budget += allowed;
    }
    // The same XML as the full read (device_info): nothing was left out.
    for d in devices.iter().step_by(7) {
        assert_eq!(host.xml(d).unwrap(), host.xml_placed(d, &host.placement_link(d).unwrap()).unwrap(), "{d}");
    }
    assert!(pfs > 0, "{what}: the mix has no PF");
    println!(
        "{what}: {} devices, {:.2} syscalls per device for handle + XML (budget {:.2})",
        devices.len(),
        total as f64 / devices.len() as f64,
        budget as f64 / devices.len() as f64
    );
}

fn check_listing<S: Sysfs + 'static>(what: &str, sysfs: Arc<Counting<S>>) {
    let host = host(&sysfs);
    let n = host.list().unwrap().len();
    sysfs.take();
    nodedev::inventory::listing(&host).unwrap();
    let spent = sysfs.take();
    // The directory listing of bus/pci/devices once, then the lines.
    assert!(spent <= 4 + LIST_LINE * n, "{what}: `nodedev list` took {spent} syscalls for {n} devices");
    // Names: asked once per device; the backend remembers them (pciids.rs).
    assert_eq!(sysfs.names.load(Relaxed), n, "{what}: names asked per device");
}

#[test]
fn a_listing_with_every_xml_stays_within_its_syscall_budget_per_device() {
    let dir = generated(300);
    let tree = || Arc::new(Counting::new(HostSysfs::new(&dir)));
    let sim = || {
        let text = std::fs::read_to_string(dir.join("host.json")).unwrap();
        Arc::new(Counting::new(SimKernel::from_json(&text).unwrap()))
    };
    check_handles_and_xml("generated tree", tree());
    check_handles_and_xml("simulated kernel", sim());
    check_listing("generated tree", tree());
    check_listing("simulated kernel", sim());
}
