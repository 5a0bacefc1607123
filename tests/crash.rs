//! Crash at every step of every operation: the process "dies" (a panic at the
//! k-th kernel access drops all of the library's memory), the kernel and the
//! state store remain, a new host recovers, and the device's driver and its
//! record must agree with the original driver still known.

use nodedev::state::{StateStore, Step};
use nodedev::sysfs::sim::SimKernel;
use nodedev::sysfs::Sysfs;
use nodedev::{Host, HostOptions, PciAddress, Stub};
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
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Detach(Stub),
    Reattach(Stub),
}

/// Run `op` on `dev`, dying at call k. Returns false once k is past the end
/// of the operation (it completed without dying).
fn crash_once(dev: &str, op: Op, k: usize) -> bool {
    let sim = Arc::new(SimKernel::builtin());
    let store = StateStore::memory();
    let addr = PciAddress::parse(dev).unwrap();
    let original = sim.driver_of(dev);
    if let Op::Reattach(stub) = op {
        Host::new(sim.clone(), store.clone(), HostOptions::default()).detach(&addr, stub).unwrap();
    }
    let dying = Arc::new(DiesAt { sim: sim.clone(), calls: AtomicUsize::new(0), die_at: k });
    let host = Host::new(dying.clone(), store.clone(), HostOptions::default());
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = catch_unwind(AssertUnwindSafe(|| match op {
        Op::Detach(stub) => host.detach(&addr, stub),
        Op::Reattach(_) => host.reattach(&addr, None),
    }));
    std::panic::set_hook(hook);
    let crashed = outcome.is_err();
    if let Ok(result) = outcome {
        result.unwrap_or_else(|e| panic!("{op:?} {dev} failed without a crash: {e}"));
    }
    drop(host);

    // The next process.
    let next = Host::new(sim.clone(), store.clone(), HostOptions::default());
    let report = next.recover().unwrap();
    let now = sim.driver_of(dev);
    match store.get(dev).unwrap() {
        Some(rec) => {
            assert_eq!(rec.step, Step::Detached, "{op:?} {dev} crash at {k}: {report:?}");
            assert_eq!(now.as_deref(), Some(rec.stub.as_str()), "{op:?} {dev} crash at {k}");
            assert_eq!(rec.original_driver, original, "{op:?} {dev} crash at {k}: original lost");
        }
        None => assert_eq!(now, original, "{op:?} {dev} crash at {k}: {report:?}"),
    }
    let ov = sim.read(&format!("bus/pci/devices/{dev}/driver_override")).unwrap();
    if store.get(dev).unwrap().is_none() {
        assert_eq!(ov.trim(), "(null)", "{op:?} {dev} crash at {k}: override left behind");
    }
    // And the device still works both ways afterwards.
    let stub = match op {
        Op::Detach(s) | Op::Reattach(s) => s,
    };
    next.detach(&addr, stub).unwrap();
    next.reattach(&addr, None).unwrap();
    assert_eq!(sim.driver_of(dev), original, "{op:?} {dev} crash at {k}: not reusable");
    crashed
}

#[test]
fn a_crash_at_any_step_loses_nothing() {
    let mut points = 0;
    for dev in ["0000:03:01.0", "0000:05:00.0", "0000:04:10.2"] {
        for stub in [Stub::Vfio, Stub::Kvm, Stub::Xen] {
            for op in [Op::Detach(stub), Op::Reattach(stub)] {
                let mut k = 0;
                while crash_once(dev, op, k) {
                    k += 1;
                    points += 1;
                }
                assert!(k > 3, "{op:?} {dev}: only {k} crash points");
            }
        }
    }
    println!("crash points covered: {points}");
}
