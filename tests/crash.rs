//! Crash at every step of every operation: the process "dies" (a panic at the
//! k-th kernel access, or at the n-th state-record write, drops all of the
//! library's memory), the kernel and the state store remain, a new host
//! recovers, and every device's driver and its record must agree, with the
//! original driver still known.

use nodedev::state::{StateStore, Step};
use nodedev::sysfs::sim::SimKernel;
use nodedev::sysfs::Sysfs;
use nodedev::{DetachOptions, Host, HostOptions, PciAddress, PrepareOptions, Stub};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Dies at the k-th call (read, write, link, list, exists or module load).
struct DiesAt {
    sim: Arc<SimKernel>,
    calls: AtomicUsize,
    die_at: usize,
}

impl DiesAt {
    fn tick(&self) {
        if self.calls.fetch_add(1, Ordering::SeqCst) == self.die_at {
            std::panic::panic_any(Crash);
        }
    }
}

struct Crash;

impl Sysfs for DiesAt {
    fn read(&self, p: &str) -> io::Result<String> {
        self.tick();
        self.sim.read(p)
    }
    fn write(&self, p: &str, v: &str) -> io::Result<()> {
        self.tick();
        self.sim.write(p, v)
    }
    fn read_link(&self, p: &str) -> io::Result<String> {
        self.tick();
        self.sim.read_link(p)
    }
    fn list_dir(&self, p: &str) -> io::Result<Vec<String>> {
        self.tick();
        self.sim.list_dir(p)
    }
    fn exists(&self, p: &str) -> bool {
        self.tick();
        self.sim.exists(p)
    }
    fn load_module(&self, m: &str) -> io::Result<()> {
        self.tick();
        self.sim.load_module(m)
    }
    fn matching_aliases(&self, m: &str) -> io::Result<Vec<nodedev::sysfs::modalias::ModuleAlias>> {
        self.tick();
        self.sim.matching_aliases(m)
    }
    fn vfio_aliases(&self) -> io::Result<Vec<nodedev::sysfs::modalias::ModuleAlias>> {
        self.tick();
        self.sim.vfio_aliases()
    }
    fn vfio_holders(&self, dev: &nodedev::sysfs::VfioDevice<'_>) -> io::Result<nodedev::sysfs::HolderScan> {
        self.tick();
        self.sim.vfio_holders(dev)
    }
    fn write_bounded(&self, p: &str, v: &str, limit: std::time::Duration) -> io::Result<()> {
        self.tick();
        self.sim.write_bounded(p, v, limit)
    }
    // Host use
    fn net_addresses(&self, i: &str) -> Vec<String> {
        self.tick();
        self.sim.net_addresses(i)
    }
    fn net_routes(&self, i: &str) -> Vec<String> {
        self.tick();
        self.sim.net_routes(i)
    }
    fn mounts(&self) -> Vec<(String, String)> {
        self.tick();
        self.sim.mounts()
    }
    fn swaps(&self) -> Vec<nodedev::sysfs::SwapArea> {
        self.tick();
        self.sim.swaps()
    }
    fn set_master(&self, i: &str, m: Option<&str>) -> io::Result<()> {
        self.tick();
        self.sim.set_master(i, m)
    }
    fn set_link_up(&self, i: &str, up: bool) -> io::Result<()> {
        self.tick();
        self.sim.set_link_up(i, up)
    }
    fn pci_names(&self, v: u16, d: u16) -> nodedev::sysfs::PciNames {
        self.sim.pci_names(v, d)
    }
    // libvirt's device tree
    fn read_bytes(&self, p: &str, l: usize) -> io::Result<Vec<u8>> {
        self.tick();
        self.sim.read_bytes(p, l)
    }
    fn net_features(&self, i: &str) -> io::Result<Vec<String>> {
        self.tick();
        self.sim.net_features(i)
    }
    // A listener changes nothing: no crash point.
    fn uevents(&self) -> io::Result<Box<dyn nodedev::sysfs::uevent::UeventSource>> {
        self.sim.uevents()
    }
}

const NIC1: &str = "0000:03:01.0";
const NIC2: &str = "0000:03:02.0";
const GPU: &str = "0000:01:00.0";
const AUDIO: &str = "0000:01:00.1";
const VF: &str = "0000:04:10.0";
const MANAGED: PrepareOptions = PrepareOptions { managed: true, force: false };

fn a(s: &str) -> PciAddress {
    PciAddress::parse(s).unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Detach(&'static str, Stub),
    Reattach(&'static str, Stub),
    GroupDetach,
    Prepare,
    Release,
    Reset,
}

impl Op {
    fn devices(self) -> Vec<&'static str> {
        match self {
            Op::Detach(d, _) | Op::Reattach(d, _) => vec![d],
            Op::GroupDetach => vec![NIC1, NIC2],
            Op::Prepare | Op::Release => vec![GPU, AUDIO],
            Op::Reset => vec![VF],
        }
    }

    fn setup(self, h: &Host) {
        match self {
            Op::Reattach(d, stub) => h.detach(&a(d), stub).unwrap(),
            Op::Release => h.prepare("vm1", &[a(GPU), a(AUDIO)], Stub::Vfio, MANAGED).unwrap(),
            Op::Reset => h.detach(&a(VF), Stub::Vfio).unwrap(),
            _ => {}
        }
    }

    fn run(self, h: &Host) -> nodedev::Result<()> {
        match self {
            Op::Detach(d, stub) => h.detach(&a(d), stub),
            Op::Reattach(d, _) => h.reattach(&a(d), None),
            Op::GroupDetach => h.detach_with(&a(NIC1), Stub::Vfio, DetachOptions { group: true, force: false }),
            Op::Prepare => h.prepare("vm1", &[a(GPU), a(AUDIO)], Stub::Vfio, MANAGED),
            Op::Release => h.release("vm1", None).map(|_| ()),
            Op::Reset => h.reset(&a(VF)),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum CrashAt {
    /// The k-th kernel access.
    Kernel(usize),
    /// The n-th state-record write or removal.
    Record(u32),
}

/// Run `op`, dying where `at` says. Returns false once that point is past
/// the end of the operation (it completed without dying).
fn crash_once(op: Op, at: CrashAt) -> bool {
    run_case(op, at, None).0
}

/// Silences the panic hook around a simulated death; one at a time, since
/// the hook is the whole process's.
fn dying<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    outcome
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Run `op` dying at `at`; then, when `in_recovery` says where, a recovery
/// that dies there too; then a recovery that completes, and the checks.
/// Returns (the operation died, the first recovery died).
fn run_case(op: Op, at: CrashAt, in_recovery: Option<CrashAt>) -> (bool, bool) {
    let what = format!("{op:?} crash at {at:?}, in recovery at {in_recovery:?}");
    let sim = Arc::new(SimKernel::builtin());
    let store = StateStore::memory();
    let devices = op.devices();
    // Originals are taken before setup: setup is part of what must survive.
    let originals: Vec<Option<String>> = devices.iter().map(|d| sim.driver_of(d)).collect();
    op.setup(&Host::new(sim.clone(), store.clone(), HostOptions::default()));

    let die_at = if let CrashAt::Kernel(k) = at { k } else { usize::MAX };
    let dying = Arc::new(DiesAt { sim: sim.clone(), calls: AtomicUsize::new(0), die_at });
    if let CrashAt::Record(n) = at {
        store.die_at_write(n);
    }
    let host = Host::new(dying.clone(), store.clone(), HostOptions::default());
    let outcome = self::dying(|| op.run(&host));
    store.fail_writes(0, 0, 0);
    let crashed = outcome.is_err();
    if let Ok(result) = outcome {
        result.unwrap_or_else(|e| panic!("{what}: failed without a crash: {e}"));
    }
    drop(host);

    // A recovery that dies too.
    let mut recovery_crashed = false;
    if let Some(rat) = in_recovery {
        let die_at = if let CrashAt::Kernel(k) = rat { k } else { usize::MAX };
        let killer = Arc::new(DiesAt { sim: sim.clone(), calls: AtomicUsize::new(0), die_at });
        if let CrashAt::Record(n) = rat {
            store.die_at_write(n);
        }
        let h = Host::new(killer, store.clone(), HostOptions::default());
        let outcome = self::dying(|| h.recover());
        store.fail_writes(0, 0, 0);
        recovery_crashed = outcome.is_err();
        if let Ok(r) = outcome {
            r.unwrap_or_else(|e| panic!("{what}: recovery failed without a crash: {e}"));
        }
    }

    // The next process.
    let next = Host::new(sim.clone(), store.clone(), HostOptions::default());
    let report = next.recover().unwrap();
    for (d, orig) in devices.iter().zip(&originals) {
        let now = sim.driver_of(d);
        match store.get(d).unwrap() {
            Some(rec) => {
                assert_eq!(rec.step, Step::Detached, "{what}: {d}: {report:?}");
                assert_eq!(now.as_deref(), Some(rec.stub.as_str()), "{what}: {d}");
                assert_eq!(&rec.original_driver, orig, "{what}: {d}: original lost");
            }
            None => {
                assert_eq!(&now, orig, "{what}: {d}: {report:?}");
                let ov = sim.read(&format!("bus/pci/devices/{d}/driver_override")).unwrap();
                assert_eq!(ov.trim(), "(null)", "{what}: {d}: override left behind");
            }
        }
    }
    // Everything can still be given back and used again.
    next.release("vm1", None).unwrap();
    for d in &devices {
        if store.get(d).unwrap().is_some() {
            next.reattach(&a(d), None).unwrap_or_else(|e| panic!("{what}: reattach {d}: {e}"));
        }
    }
    op.setup(&next);
    op.run(&next).unwrap_or_else(|e| panic!("{what}: not reusable: {e}"));
    (crashed, recovery_crashed)
}

/// Every crash point of `op`, of both kinds; returns how many.
fn every_point(op: Op) -> usize {
    let mut points = 0;
    let mut k = 0;
    while crash_once(op, CrashAt::Kernel(k)) {
        k += 1;
    }
    assert!(k >= 3, "{op:?}: only {k} kernel crash points");
    points += k;
    let mut n = 0;
    while crash_once(op, CrashAt::Record(n)) {
        n += 1;
    }
    points + n as usize
}

#[test]
fn a_crash_at_any_step_loses_nothing() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut ops = Vec::new();
    for dev in [NIC1, "0000:05:00.0", "0000:04:10.2"] {
        for stub in [Stub::Vfio, Stub::Kvm, Stub::Xen] {
            ops.push(Op::Detach(dev, stub));
            ops.push(Op::Reattach(dev, stub));
        }
    }
    ops.extend([Op::GroupDetach, Op::Prepare, Op::Release, Op::Reset]);
    let mut total = 0;
    for op in ops {
        let n = every_point(op);
        println!("{op:?}: {n} crash points");
        total += n;
    }
    println!("crash points covered: {total}");
}

/// Every point where `op` can die, and for each, every point where the
/// recovery after it can die (kernel access or record write): the recovery
/// after that still ends with every device consistent.
#[test]
fn a_crash_during_recovery_loses_nothing() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut total = 0;
    for op in [Op::Detach(NIC1, Stub::Vfio), Op::Reattach(NIC1, Stub::Vfio), Op::GroupDetach, Op::Prepare, Op::Release]
    {
        let mut op_points = Vec::new();
        for k in 0.. {
            if !crash_once(op, CrashAt::Kernel(k)) {
                break;
            }
            op_points.push(CrashAt::Kernel(k));
        }
        for n in 0.. {
            if !crash_once(op, CrashAt::Record(n)) {
                break;
            }
            op_points.push(CrashAt::Record(n));
        }
        let mut with_work = 0;
        for at in op_points {
            let mut points = 0;
            for kind in [CrashAt::Kernel as fn(usize) -> CrashAt, |n| CrashAt::Record(n as u32)] {
                for j in 0.. {
                    if !run_case(op, at, Some(kind(j))).1 {
                        break;
                    }
                    points += 1;
                }
            }
            with_work += usize::from(points > 0);
            total += points;
        }
        println!("{op:?}: {with_work} crash points leave work for recovery");
        assert!(with_work > 0, "{op:?}: no crash left recovery anything to do");
    }
    println!("crash points inside recovery covered: {total}");
}

// --- SR-IOV provisioning: the PF's sriov_drivers_autoprobe (issue 13 item 2) ---

const PF: &str = "0000:04:00.0"; // igb, autoprobe 1, three igbvf VFs at start

fn pf_autoprobe(sim: &SimKernel) -> String {
    sim.read(&format!("bus/pci/devices/{PF}/sriov_drivers_autoprobe")).unwrap().trim().to_string()
}

/// Provision 4 VFs on vfio-pci dying at `at`. Returns the kernel, the store
/// and whether it died.
fn provision_dying(at: CrashAt) -> (Arc<SimKernel>, StateStore, bool) {
    let sim = Arc::new(SimKernel::builtin());
    let store = StateStore::memory();
    let die_at = if let CrashAt::Kernel(k) = at { k } else { usize::MAX };
    if let CrashAt::Record(n) = at {
        store.die_at_write(n);
    }
    let host = Host::new(
        Arc::new(DiesAt { sim: sim.clone(), calls: AtomicUsize::new(0), die_at }),
        store.clone(),
        HostOptions::default(),
    );
    let outcome = dying(|| host.set_vf_count(&a(PF), 4, Some(Stub::Vfio), false));
    store.fail_writes(0, 0, 0);
    if let Ok(r) = &outcome {
        r.as_ref().unwrap_or_else(|e| panic!("{at:?}: failed without a crash: {e}"));
    }
    (sim, store, outcome.is_err())
}

/// Every crash point of a provisioning: with each, kernel access or record write.
fn provisioning_points() -> Vec<CrashAt> {
    let mut points = Vec::new();
    for k in 0.. {
        if !provision_dying(CrashAt::Kernel(k)).2 {
            break;
        }
        points.push(CrashAt::Kernel(k));
    }
    for n in 0.. {
        if !provision_dying(CrashAt::Record(n)).2 {
            break;
        }
        points.push(CrashAt::Record(n));
    }
    points
}

/// Was a bug, fixed: a provisioning killed between turning the PF's
/// autoprobe off and putting it back left it off, recorded nowhere, and
/// recover did not know. Now recover puts it back and nothing is left.
#[test]
fn recover_puts_back_the_autoprobe_of_a_killed_provisioning() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let points = provisioning_points();
    let mut left_off = 0;
    for at in &points {
        let (sim, store, _) = provision_dying(*at);
        left_off += usize::from(pf_autoprobe(&sim) == "0");
        let next = Host::new(sim.clone(), store.clone(), HostOptions::default());
        let report = next.recover().unwrap();
        assert_eq!(pf_autoprobe(&sim), "1", "{at:?}: {report:?}");
        assert!(store.saved_autoprobes().unwrap().is_empty(), "{at:?}: {report:?}");
        assert!(report.iter().all(|r| r.resolved), "{at:?}: {report:?}");
        // What stays is a VF provisioned completely.
        for rec in store.list().unwrap() {
            assert_eq!(rec.step, Step::Detached, "{at:?}: {rec:?}");
            assert_eq!(sim.driver_of(&rec.address).as_deref(), Some("vfio-pci"), "{at:?}: {rec:?}");
        }
    }
    println!("{} crash points, {left_off} left autoprobe off", points.len());
    assert!(left_off >= 5, "only {left_off} crash points left autoprobe off");
}

/// Was a bug, fixed: the provisioning after a killed one read the "0" it
/// had left as the PF's own autoprobe and kept it off for good.
#[test]
fn a_provisioning_after_a_killed_one_puts_back_the_original_autoprobe() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut checked = 0;
    for at in provisioning_points() {
        let (sim, store, _) = provision_dying(at);
        if pf_autoprobe(&sim) != "0" {
            continue;
        }
        checked += 1;
        let next = Host::new(sim.clone(), store.clone(), HostOptions::default());
        // No recover in between: provisioning alone takes the saved value.
        next.set_vf_count(&a(PF), 2, Some(Stub::Kvm), false).unwrap_or_else(|e| panic!("{at:?}: {e}"));
        assert_eq!(pf_autoprobe(&sim), "1", "{at:?}");
        assert!(store.saved_autoprobes().unwrap().is_empty(), "{at:?}");
    }
    assert!(checked >= 5, "only {checked} crash points left autoprobe off");
}

/// Setting autoprobe back obeys recovery's rules: not on a read-only
/// connection, not against the authorization callback; the saved value stays.
#[test]
fn recover_sets_autoprobe_back_only_where_recovery_may() {
    let sim = Arc::new(SimKernel::builtin());
    let store = StateStore::memory();
    sim.write(&format!("bus/pci/devices/{PF}/sriov_drivers_autoprobe"), "0").unwrap();
    store.save_autoprobe(PF, "1").unwrap();
    let ro = Host::new(sim.clone(), store.clone(), HostOptions { read_only: true, ..HostOptions::default() });
    let report = ro.recover().unwrap();
    assert!(report.iter().any(|r| r.address == PF && !r.resolved), "{report:?}");
    let h = Host::new(sim.clone(), store.clone(), HostOptions::default());
    h.set_authorizer(Some(Arc::new(|r: &nodedev::AuthRequest<'_>| r.operation != nodedev::Operation::Recover)));
    let report = h.recover().unwrap();
    assert!(report.iter().any(|r| r.address == PF && !r.resolved && r.outcome.contains("pending")), "{report:?}");
    assert_eq!(pf_autoprobe(&sim), "0");
    assert_eq!(store.saved_autoprobes().unwrap().len(), 1);
    h.set_authorizer(None);
    let report = h.recover().unwrap();
    assert!(report.iter().any(|r| r.address == PF && r.resolved), "{report:?}");
    assert_eq!(pf_autoprobe(&sim), "1");
    assert!(store.saved_autoprobes().unwrap().is_empty());
}
