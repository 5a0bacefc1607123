//! Fault matrix: every operation against every injected kernel or disk
//! failure. After each one, no device is left without its driver unless a
//! record says where it came from; an error names the device; and after a
//! restart (new host, recovery) every device agrees with its record.

use nodedev::state::{StateStore, Step};
use nodedev::sysfs::sim::SimKernel;
use nodedev::sysfs::Sysfs;
use nodedev::{DetachOptions, Host, HostOptions, PciAddress, PrepareOptions, Stub};
use std::sync::Arc;

const VF: &str = "0000:04:10.0";
const EDU: &str = "0000:05:00.0";
const NIC1: &str = "0000:03:01.0";
const NIC2: &str = "0000:03:02.0";
const GPU: &str = "0000:01:00.0";
const AUDIO: &str = "0000:01:00.1";

fn a(s: &str) -> PciAddress {
    PciAddress::parse(s).unwrap()
}

type Step_ = fn(&Host) -> nodedev::Result<()>;

/// An operation: its devices, what to do first (without faults), what to test.
struct Op {
    name: &'static str,
    devices: &'static [&'static str],
    setup: Option<Step_>,
    run: Step_,
}

const MANAGED: PrepareOptions = PrepareOptions { managed: true, force: false };

fn ops() -> Vec<Op> {
    vec![
        Op { name: "detach-vfio", devices: &[VF], setup: None, run: |h| h.detach(&a(VF), Stub::Vfio) },
        Op { name: "detach-kvm", devices: &[VF], setup: None, run: |h| h.detach(&a(VF), Stub::Kvm) },
        Op { name: "detach-xen", devices: &[VF], setup: None, run: |h| h.detach(&a(VF), Stub::Xen) },
        Op { name: "detach-driverless", devices: &[EDU], setup: None, run: |h| h.detach(&a(EDU), Stub::Vfio) },
        Op {
            name: "reattach",
            devices: &[VF],
            setup: Some(|h| h.detach(&a(VF), Stub::Kvm)),
            run: |h| h.reattach(&a(VF), None),
        },
        Op {
            name: "reattach-named",
            devices: &[NIC1],
            setup: Some(|h| h.detach(&a(NIC1), Stub::Vfio)),
            run: |h| h.reattach(&a(NIC1), Some("e1000")),
        },
        Op {
            name: "group-detach",
            devices: &[NIC1, NIC2],
            setup: None,
            run: |h| h.detach_with(&a(NIC1), Stub::Vfio, DetachOptions { group: true, force: false }),
        },
        Op {
            name: "prepare-managed",
            devices: &[GPU, AUDIO],
            setup: None,
            run: |h| h.prepare("vm1", &[a(GPU), a(AUDIO)], Stub::Vfio, MANAGED),
        },
        Op {
            name: "release-managed",
            devices: &[GPU, AUDIO],
            setup: Some(|h| h.prepare("vm1", &[a(GPU), a(AUDIO)], Stub::Vfio, MANAGED)),
            run: |h| h.release("vm1", None).map(|_| ()),
        },
    ]
}

/// A fault, applied to the kernel and the store just before the operation;
/// `target` is the operation's last device (so earlier ones must be undone).
struct Fault {
    name: String,
    apply: Box<dyn Fn(&SimKernel, &StateStore, &str)>,
}

fn faults() -> Vec<Fault> {
    let mut v: Vec<Fault> = Vec::new();
    for (errno, label) in [(libc::EBUSY, "EBUSY"), (libc::ENODEV, "ENODEV")] {
        v.push(Fault {
            name: format!("unbind-{label}"),
            apply: Box::new(move |k, _, t| {
                if let Some(d) = k.driver_of(t) {
                    k.fail_writes(&format!("bus/pci/drivers/{d}/unbind"), Some(t), errno, 1);
                }
            }),
        });
    }
    v.push(Fault { name: "probe-binds-nothing".into(), apply: Box::new(|k, _, t| k.misprobe(t, None, 1)) });
    v.push(Fault {
        name: "probe-binds-wrong-driver".into(),
        apply: Box::new(|k, _, t| k.misprobe(t, Some("nvme"), 1)),
    });
    v.push(Fault {
        name: "probe-and-bind-fail".into(),
        apply: Box::new(|k, _, t| {
            k.misprobe(t, None, 4);
            for d in ["vfio-pci", "pci-stub", "xen-pciback", "igbvf", "e1000", "nouveau", "snd_hda_intel"] {
                k.fail_writes(&format!("bus/pci/drivers/{d}/bind"), Some(t), libc::EIO, 4);
            }
        }),
    });
    v.push(Fault { name: "module-load-fails".into(), apply: Box::new(|k, _, _| k.set_module_loading_allowed(false)) });
    for n in 1..=4 {
        v.push(Fault {
            name: format!("hot-removed-after-write-{n}"),
            apply: Box::new(move |k, _, t| k.remove_after_writes(t, n)),
        });
    }
    for (errno, label) in [(libc::EROFS, "read-only"), (libc::ENOSPC, "full")] {
        for after in 0..4 {
            v.push(Fault {
                name: format!("state-dir-{label}-after-{after}-writes"),
                apply: Box::new(move |_, s, _| s.fail_writes(errno, after, 100)),
            });
        }
    }
    v
}

fn present(k: &SimKernel, d: &str) -> bool {
    k.exists(&format!("bus/pci/devices/{d}"))
}

#[test]
fn every_fault_in_every_operation_ends_consistent() {
    let mut cases = 0;
    let mut failed_ops = 0;
    for op in ops() {
        for fault in faults() {
            let what = format!("{} / {}", op.name, fault.name);
            let sim = Arc::new(SimKernel::builtin());
            let store = StateStore::memory();
            let host = Host::new(sim.clone(), store.clone(), HostOptions::default());
            if let Some(setup) = op.setup {
                setup(&host).unwrap_or_else(|e| panic!("{what}: setup: {e}"));
            }
            // Where each device must end if the operation is undone.
            let originals: Vec<Option<String>> = op
                .devices
                .iter()
                .map(|d| match store.get(d).unwrap() {
                    Some(r) => r.original_driver,
                    None => sim.driver_of(d),
                })
                .collect();
            let target = op.devices[op.devices.len() - 1];
            (fault.apply)(&sim, &store, target);
            let result = (op.run)(&host);

            if let Err(e) = &result {
                failed_ops += 1;
                let msg = e.to_string();
                assert!(op.devices.iter().any(|d| msg.contains(d)), "{what}: the error names no device: {msg}");
            }
            // Right away: never driverless without a record that says so.
            for (d, orig) in op.devices.iter().zip(&originals) {
                if present(&sim, d) && sim.driver_of(d).is_none() && orig.is_some() {
                    assert!(
                        store.get(d).unwrap().is_some(),
                        "{what}: {d} left without a driver and without a record ({result:?})"
                    );
                }
            }

            // Restart: faults gone, a new host recovers.
            sim.clear_faults();
            sim.set_module_loading_allowed(true);
            store.fail_writes(0, 0, 0);
            let next = Host::new(sim.clone(), store.clone(), HostOptions::default());
            next.recover().unwrap_or_else(|e| panic!("{what}: recover: {e}"));
            for (d, orig) in op.devices.iter().zip(&originals) {
                if !present(&sim, d) {
                    continue;
                }
                let now = sim.driver_of(d);
                match store.get(d).unwrap() {
                    Some(r) => {
                        assert_eq!(
                            now.as_deref(),
                            Some(r.stub.as_str()),
                            "{what}: {d} disagrees with its record {r:?}"
                        );
                        assert_eq!(r.step, Step::Detached, "{what}: {d}");
                        assert_eq!(&r.original_driver, orig, "{what}: {d} lost its original driver");
                    }
                    None => assert_eq!(&now, orig, "{what}: {d} has no record but is not on its original driver"),
                }
            }
            cases += 1;
        }
    }
    println!("fault matrix: {cases} cases ({failed_ops} ended in an error), all consistent");
    assert_eq!(cases, ops().len() * faults().len());
}

/// The stub refuses `dev` (its probe binds nothing); with `restore_fails`,
/// putting it back on its original driver fails too (probe and bind).
fn stub_refuses(sim: &SimKernel, dev: &str, original: &str, restore_fails: bool) {
    if restore_fails {
        sim.misprobe(dev, None, 4);
        sim.fail_writes(&format!("bus/pci/drivers/{original}/bind"), Some(dev), libc::EIO, 4);
    } else {
        sim.misprobe(dev, None, 1);
    }
}

#[test]
fn managed_prepare_whose_restore_fails_does_not_claim_nothing_changed() {
    // One device: the stub refuses it and it cannot go back to igbvf.
    let sim = Arc::new(SimKernel::builtin());
    let host = Host::new(sim.clone(), StateStore::memory(), HostOptions::default());
    stub_refuses(&sim, VF, "igbvf", true);
    let m = host.prepare("vm1", &[a(VF)], Stub::Vfio, MANAGED).unwrap_err().to_string();
    assert!(!m.contains("nothing changed"), "{m}");
    for want in [VF, "igbvf", "bound to no driver", "nodedev recover"] {
        assert!(m.contains(want), "{want} missing: {m}");
    }
    assert_eq!(sim.driver_of(VF), None);
    assert_eq!(host.state().get(VF).unwrap().unwrap().original_driver.as_deref(), Some("igbvf"));

    // Two devices: the GPU moves and goes back, its audio function is left
    // driverless. The message says so and claims nothing of the whole.
    let sim = Arc::new(SimKernel::builtin());
    let host = Host::new(sim.clone(), StateStore::memory(), HostOptions::default());
    stub_refuses(&sim, AUDIO, "snd_hda_intel", true);
    let m = host.prepare("vm1", &[a(GPU), a(AUDIO)], Stub::Vfio, MANAGED).unwrap_err().to_string();
    assert!(!m.contains("nothing changed"), "{m}");
    for want in [AUDIO, "bound to no driver", "nodedev recover", &format!("{GPU} went back to nouveau")] {
        assert!(m.contains(want), "{want} missing: {m}");
    }
    assert_eq!(sim.driver_of(GPU).as_deref(), Some("nouveau"));
    assert_eq!(sim.driver_of(AUDIO), None);
}

#[test]
fn managed_prepare_the_stub_refuses_says_nothing_changed_once() {
    for devices in [&[VF][..], &[GPU, AUDIO][..]] {
        let sim = Arc::new(SimKernel::builtin());
        let host = Host::new(sim.clone(), StateStore::memory(), HostOptions::default());
        let before: Vec<Option<String>> = devices.iter().map(|d| sim.driver_of(d)).collect();
        let last = devices[devices.len() - 1];
        let original = before[before.len() - 1].clone().unwrap();
        stub_refuses(&sim, last, &original, false);
        let addrs: Vec<PciAddress> = devices.iter().map(|d| a(d)).collect();
        let m = host.prepare("vm1", &addrs, Stub::Vfio, MANAGED).unwrap_err().to_string();
        assert_eq!(m.matches("nothing changed").count(), 1, "{m}");
        assert!(m.contains(last) && m.contains(&format!("went back to {original}")), "{m}");
        assert_eq!(devices.iter().map(|d| sim.driver_of(d)).collect::<Vec<_>>(), before, "{m}");
        assert_eq!(host.state().list().unwrap(), [], "{m}");
    }
}
