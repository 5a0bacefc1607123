//! What a Rust VMM does for passthrough, with nothing but the Rust API (no
//! CLI, no sysfs writes of its own): the real-kernel suite runs it next to
//! the `nodedev` CLI to show that both see each other's assignments
//! (capi-tests/vm/suite-rustapi.sh).
//!
//!   vmm_passthrough [-c URI] prepare OWNER DEV...   managed, to vfio-pci
//!   vmm_passthrough [-c URI] release OWNER
//!   vmm_passthrough [-c URI] owner DEV              the owner, or "-"
//!   vmm_passthrough [-c URI] detach DEV DRIVER      vfio, kvm or xen
//!   vmm_passthrough [-c URI] reattach DEV

use nodedev::{Host, PciAddress, PrepareOptions, Stub};
use std::process::ExitCode;

fn run(args: &[String]) -> nodedev::Result<()> {
    let (uri, args) = match args {
        [c, uri, rest @ ..] if c == "-c" => (uri.as_str(), rest),
        _ => ("nodedev:///system", args),
    };
    let host = Host::open(uri)?;
    let lookup = |names: &[String]| names.iter().map(|n| host.lookup(n)).collect::<nodedev::Result<Vec<PciAddress>>>();
    match args {
        [cmd, owner, devs @ ..] if cmd == "prepare" && !devs.is_empty() => {
            let managed = PrepareOptions { managed: true, force: false };
            host.prepare(owner, &lookup(devs)?, Stub::Vfio, managed)
        }
        [cmd, owner] if cmd == "release" => host.release(owner, None).map(|n| println!("released {n}")),
        [cmd, dev] if cmd == "owner" => {
            let addr = host.lookup(dev)?.to_string();
            let owner = host.assignments()?.into_iter().find(|(a, _)| *a == addr).map(|(_, o)| o);
            println!("{}", owner.as_deref().unwrap_or("-"));
            Ok(())
        }
        [cmd, dev, driver] if cmd == "detach" => host.detach(&host.lookup(dev)?, driver.parse()?),
        [cmd, dev] if cmd == "reattach" => host.reattach(&host.lookup(dev)?, None),
        _ => Err(nodedev::Error::InvalidArg("usage: see examples/vmm_passthrough.rs".to_string())),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmm_passthrough: {e}");
            ExitCode::FAILURE
        }
    }
}
