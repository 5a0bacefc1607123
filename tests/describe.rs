//! A host written down as a description and loaded again is the same host,
//! and behaves the same under the same operations (the basis of the
//! real-kernel suite's differential check).

use nodedev::state::StateStore;
use nodedev::sysfs::sim::SimKernel;
use nodedev::{Host, HostOptions, Stub};
use std::sync::Arc;

fn host(sim: Arc<SimKernel>) -> Host {
    Host::new(sim, StateStore::memory(), HostOptions::default())
}

#[test]
fn a_described_host_reloads_identically_and_behaves_the_same() {
    let original = host(Arc::new(SimKernel::builtin()));
    let spec = original.describe().unwrap();
    let json = serde_json::to_string_pretty(&spec).unwrap();
    let copy = host(Arc::new(SimKernel::from_json(&json).unwrap()));
    let devices = original.list().unwrap();
    assert_eq!(devices, copy.list().unwrap());
    for a in &devices {
        assert_eq!(original.device_info(a).unwrap(), copy.device_info(a).unwrap(), "{a}");
    }
    let steps: [(&str, Option<Stub>); 8] = [
        ("0000:03:01.0", Some(Stub::Vfio)),
        ("0000:04:10.2", Some(Stub::Kvm)),
        ("0000:05:00.0", Some(Stub::Vfio)),
        ("0000:03:01.0", None),
        ("0000:01:00.1", Some(Stub::Kvm)),
        ("0000:05:00.0", None),
        ("0000:04:10.2", None),
        ("0000:01:00.1", None),
    ];
    for (dev, op) in steps {
        for h in [&original, &copy] {
            let a = h.lookup(dev).unwrap();
            match op {
                Some(stub) => h.detach(&a, stub).unwrap(),
                None => h.reattach(&a, None).unwrap(),
            }
        }
        for a in &devices {
            assert_eq!(original.driver(a).unwrap(), copy.driver(a).unwrap(), "{a} after {dev} {op:?}");
        }
    }
    // xen-pciback is loadable only under Xen: the description says so.
    let xen = spec.drivers.iter().find(|d| d.name == "xen-pciback").unwrap();
    assert!(!xen.loaded && !xen.available);
}
