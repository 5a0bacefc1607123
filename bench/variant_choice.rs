//! What choosing the VFIO driver costs (issue 13, item 3), read-only:
//! - the first call of a process: reading and parsing a whole modules.alias
//!   (what `HostSysfs` does once per process), and keeping its `vfio_pci:`
//!   lines;
//! - every detach after that: a detach-and-reattach cycle on the simulated
//!   kernel with driver name "vfio" (the choice: the device's modalias
//!   against every `vfio_pci:` line) against "vfio:vfio-pci" (named: no
//!   choice, modules.alias not consulted), side by side.
//!
//!   cargo run --release --example variant_choice [MODULES_ALIAS] [ROUNDS]
//!
//! MODULES_ALIAS defaults to the real-kernel suite's cached Debian kernel
//! (target/vm-cache/kernel/lib/modules/*/modules.alias). Prints medians;
//! BENCHMARKS.md quotes them.

use nodedev::state::StateStore;
use nodedev::sysfs::modalias::{self, ModuleAlias};
use nodedev::sysfs::sim::{HostSpec, SimKernel};
use nodedev::{Host, HostOptions, PciAddress, StubRequest};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(rounds: usize, mut f: impl FnMut()) -> Duration {
    f();
    median(
        (0..rounds)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn default_alias_file() -> String {
    let dir = "target/vm-cache/kernel/lib/modules";
    let kver = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}; give a modules.alias path (or run capi-tests/vm/run.sh once)"))
        .flatten()
        .next()
        .expect("a kernel in the VM cache")
        .file_name();
    format!("{dir}/{}/modules.alias", kver.to_string_lossy())
}

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(default_alias_file);
    let rounds: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(2000);

    // First call of a process: read the file, keep the vfio_pci: lines (as
    // HostSysfs does); against parsing every line (what a reattach to a named
    // host driver needs, once per process too).
    let first = time(rounds.min(200), || {
        let text = std::fs::read_to_string(&path).unwrap();
        std::hint::black_box(modalias::parse_prefixed(&text, modalias::VFIO_PREFIX));
    });
    let whole = time(rounds.min(200), || {
        let text = std::fs::read_to_string(&path).unwrap();
        std::hint::black_box(modalias::parse(&text));
    });
    let text = std::fs::read_to_string(&path).unwrap();
    let all: Vec<ModuleAlias> = modalias::parse(&text);
    let vfio: Vec<String> =
        modalias::parse_prefixed(&text, modalias::VFIO_PREFIX).into_iter().map(|a| a.pattern).collect();
    println!("{path}: {} aliases, {} vfio_pci: lines", all.len(), vfio.len());
    println!("first call (read + keep the vfio_pci: lines, once per process): {first:?}");
    println!("(read + parse every line, for comparison: {whole:?})");

    per_detach(&format!("{} vfio_pci: line(s) of {path}", vfio.len()), vfio.clone(), rounds);
    // A kernel with many variant drivers (6.12 has about 20 lines): 64, none for this device.
    let mut many = vfio;
    many.extend((0..63).map(|i| format!("vfio_pci:v000015B3d{:08X}sv*sd*bc*sc*i*", 0x1000 + i)));
    per_detach("64 vfio_pci: lines (63 variants for other devices)", many, rounds);
}

/// Every detach: the built-in host with these vfio_pci: lines for vfio-pci.
fn per_detach(what: &str, vfio: Vec<String>, rounds: usize) {
    println!("-- {what}");
    let mut spec = builtin_spec();
    for d in spec.drivers.iter_mut().filter(|d| d.name == "vfio-pci") {
        d.vfio_aliases = vfio.clone();
        d.loaded = true;
    }
    let sim = Arc::new(SimKernel::from_spec(spec).unwrap());
    let host = Host::new(sim, StateStore::memory(), HostOptions::default());
    let nic = PciAddress::parse("0000:03:01.0").unwrap();
    let choice = host.vfio_choice(&nic, None).unwrap();
    println!("the NIC's choice: {} ({} candidates)", choice.module, choice.candidates.len());
    let choose = time(rounds, || {
        std::hint::black_box(host.vfio_choice(&nic, None).unwrap());
    });
    let cycle = |req: StubRequest| {
        time(rounds, || {
            host.detach_request(&nic, &req, nodedev::DetachOptions::default()).unwrap();
            host.reattach(&nic, None).unwrap();
        })
    };
    let auto = cycle(StubRequest::parse(Some("vfio")).unwrap());
    let named = cycle(StubRequest::parse(Some("vfio:vfio-pci")).unwrap());
    println!("one choice: {choose:?}");
    println!("detach + reattach, \"vfio\" (chosen): {auto:?}");
    println!("detach + reattach, \"vfio:vfio-pci\" (named): {named:?}");
    println!("ratio chosen / named: {:.3}", auto.as_secs_f64() / named.as_secs_f64());
}

/// test:///default as a description (the simulated kernel's own host).
fn builtin_spec() -> HostSpec {
    let host = Host::new(Arc::new(SimKernel::builtin()), StateStore::memory(), HostOptions::default());
    host.describe().unwrap()
}
