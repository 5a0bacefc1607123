//! nodedev: the command-line face of the library.
//!
//!   nodedev [-c URI] COMMAND [ARGS] [; COMMAND [ARGS] ...]
//!
//! Several commands separated by ";" run on one connection, which is how the
//! in-memory simulated host (test:///default) shows a whole cycle.

use nodedev::{uri, DetachOptions, Error, Host, PrepareOptions, Stub};
use std::process::ExitCode;

const USAGE: &str = "usage: nodedev [-c URI] COMMAND [ARGS] [; COMMAND [ARGS] ...]

commands:
  list                            every PCI device: driver, ids, class, IOMMU group
  show DEV                        libvirt's node-device XML of DEV
  detach DEV [--driver vfio|kvm|xen] [--group] [--force]
                                  move DEV to a stub driver (default vfio); --group: every
                                  endpoint of its IOMMU group, all or nothing; --force: even
                                  if the host uses it (boot VGA, mounted disk, interface up)
  reattach DEV [--driver NAME]    give DEV back to its original (or the named) host driver
  reset DEV                       reset DEV (it must be on a stub or on no driver)
  group DEV                       DEV's IOMMU group: members, drivers, owners, vfio viability
  prepare OWNER DEV... [--driver vfio|kvm|xen] [--managed] [--force]
                                  assign devices to a guest: --managed moves them to the stub
                                  (all or nothing) and resets them; otherwise only verifies
  release OWNER [DEV...]          end the assignment (no DEV: all of OWNER's devices); managed
                                  devices go back to their original drivers
  recover                         finish or roll back operations a dead process left half done
  drivers                         one line per device: ADDRESS DRIVER (or none)
  dump-host                       this host as a test:///PATH.json description

DEV is 0000:03:00.1 or pci_0000_03_00_1. URI: nodedev:///system (default),
test:///default (built-in simulated host), test:///PATH.json.
exit status: 0 success, 1 the operation failed, 2 usage error.";

enum Failure {
    Usage(String),
    Op(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Op(e)
    }
}

/// Split the command words on ";" (a word of its own, or inside one quoted word).
fn split_commands(words: &[String]) -> Vec<Vec<String>> {
    let joined: Vec<String> = if words.len() == 1 && words[0].contains(';') {
        words[0].replace(';', " ; ").split_whitespace().map(str::to_string).collect()
    } else {
        words.iter().flat_map(|w| {
            if let Some(stripped) = w.strip_suffix(';').filter(|s| !s.is_empty()) {
                vec![stripped.to_string(), ";".to_string()]
            } else {
                vec![w.clone()]
            }
        }).collect()
    };
    joined
        .split(|w| w == ";")
        .filter(|c| !c.is_empty())
        .map(|c| c.to_vec())
        .collect()
}

/// A command's words: positional arguments and the options it accepts.
#[derive(Default)]
struct Args<'a> {
    positional: Vec<&'a str>,
    driver: Option<&'a str>,
    group: bool,
    force: bool,
    managed: bool,
}

/// Parse `args`, accepting `--driver NAME` and the switches in `switches`.
fn parse_args<'a>(cmd: &str, args: &'a [String], switches: &[&str]) -> Result<Args<'a>, Failure> {
    let mut out = Args::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let a = a.as_str();
        match a {
            "--driver" => {
                let v = it.next().ok_or_else(|| Failure::Usage(format!("{cmd}: --driver needs a value")))?;
                out.driver = Some(v.as_str());
            }
            _ if a.starts_with("--driver=") => out.driver = Some(&a["--driver=".len()..]),
            "--group" | "--force" | "--managed" if switches.contains(&a) => match a {
                "--group" => out.group = true,
                "--force" => out.force = true,
                _ => out.managed = true,
            },
            _ if a.starts_with('-') => return Err(Failure::Usage(format!("{cmd}: unknown option {a}"))),
            _ => out.positional.push(a),
        }
    }
    Ok(out)
}

/// Exactly one device among the positional arguments.
fn one_device<'a>(cmd: &str, a: &Args<'a>) -> Result<&'a str, Failure> {
    match a.positional.as_slice() {
        [dev] => Ok(dev),
        [] => Err(Failure::Usage(format!("{cmd}: which device? (e.g. {cmd} 0000:03:00.0)"))),
        _ => Err(Failure::Usage(format!("{cmd}: one device at a time"))),
    }
}

fn group(host: &Host, dev: &str) -> Result<(), Failure> {
    let addr = host.lookup(dev)?;
    let Some(g) = host.group(&addr)? else {
        println!("{addr} has no IOMMU group: this kernel runs without an IOMMU, so vfio cannot be used");
        return Ok(());
    };
    let owners = host.assignments()?;
    println!("IOMMU group {} ({} functions)", g.number, g.members.len());
    for m in &g.members {
        let owner = owners.iter().find(|(a, _)| *a == m.address.to_string()).map(|(_, o)| format!(", assigned to {o}"));
        let kind = if m.bridge { "bridge, tolerated by vfio" } else if m.blocks_vfio() { "endpoint on a host driver" } else { "endpoint, isolated" };
        println!("  {} {:<14} {kind}{}", m.address, m.driver.as_deref().unwrap_or("-"), owner.unwrap_or_default());
    }
    let blockers = g.blockers(&[]);
    if blockers.is_empty() {
        println!("viable for vfio: yes");
    } else {
        let names: Vec<String> = blockers.iter().map(|m| m.address.to_string()).collect();
        println!("viable for vfio: no, {} still on host drivers (detach --group {addr})", names.join(", "));
    }
    Ok(())
}

fn list(host: &Host) -> Result<(), Failure> {
    let records = host.state().list().unwrap_or_default();
    println!("{:<13} {:<17} {:<14} {:<10} {:<7} {:>5}  NOTE", "DEVICE", "NAME", "DRIVER", "ID", "CLASS", "GROUP");
    for addr in host.list()? {
        let d = host.device_info(&addr)?;
        let group = d.iommu_group.map(|g| g.to_string()).unwrap_or_else(|| "-".into());
        let note = match records.iter().find(|r| r.address == addr.to_string()) {
            Some(r) if r.ownership_only => format!("assigned to {}", r.owner.as_deref().unwrap_or("-")),
            Some(r) => format!(
                "detached by nodedev, original driver: {}{}",
                r.original_driver.as_deref().unwrap_or("none"),
                r.owner.as_deref().map(|o| format!(", assigned to {o}")).unwrap_or_default()
            ),
            None => String::new(),
        };
        println!(
            "{:<13} {:<17} {:<14} {:04x}:{:04x}  {:06x} {:>5}  {}",
            addr.to_string(),
            addr.node_name(),
            d.driver.as_deref().unwrap_or("-"),
            d.vendor,
            d.device,
            d.class,
            group,
            note
        );
    }
    Ok(())
}

fn run(host: &Host, cmd: &[String]) -> Result<(), Failure> {
    let (name, args) = cmd.split_first().ok_or_else(|| Failure::Usage("no command".into()))?;
    match name.as_str() {
        "list" if args.is_empty() => list(host),
        "show" if args.len() == 1 => {
            print!("{}", host.xml(&host.lookup(&args[0])?)?);
            Ok(())
        }
        "detach" => {
            let a = parse_args(name, args, &["--group", "--force"])?;
            let addr = host.lookup(one_device(name, &a)?)?;
            let stub = Stub::from_name(a.driver)?;
            host.detach_with(&addr, stub, DetachOptions { group: a.group, force: a.force })?;
            let moved = if a.group { host.group_endpoints(&addr, stub)? } else { vec![addr] };
            for m in moved {
                println!("{m} detached to {}", host.driver(&m)?.as_deref().unwrap_or("no driver"));
            }
            Ok(())
        }
        "reattach" => {
            let a = parse_args(name, args, &[])?;
            let addr = host.lookup(one_device(name, &a)?)?;
            host.reattach(&addr, a.driver)?;
            println!("{addr} reattached to {}", host.driver(&addr)?.as_deref().unwrap_or("no driver"));
            Ok(())
        }
        "group" if args.len() == 1 => group(host, &args[0]),
        "prepare" => {
            let a = parse_args(name, args, &["--managed", "--force"])?;
            let Some((owner, devs)) = a.positional.split_first().filter(|(_, d)| !d.is_empty()) else {
                return Err(Failure::Usage("prepare: OWNER DEV... (e.g. prepare vm1 0000:01:00.0 0000:01:00.1)".into()));
            };
            let addrs = devs.iter().map(|d| host.lookup(d)).collect::<Result<Vec<_>, _>>()?;
            let stub = Stub::from_name(a.driver)?;
            host.prepare(owner, &addrs, stub, PrepareOptions { managed: a.managed, force: a.force })?;
            for d in &addrs {
                println!("{d} prepared for {owner} on {}", host.driver(d)?.as_deref().unwrap_or("no driver"));
            }
            Ok(())
        }
        "release" => {
            let a = parse_args(name, args, &[])?;
            let Some((owner, devs)) = a.positional.split_first() else {
                return Err(Failure::Usage("release: OWNER [DEV...] (no DEV: all of OWNER's devices)".into()));
            };
            let addrs = devs.iter().map(|d| host.lookup(d)).collect::<Result<Vec<_>, _>>()?;
            let n = host.release(owner, (!addrs.is_empty()).then_some(addrs.as_slice()))?;
            println!("{n} device(s) released from {owner}");
            Ok(())
        }
        "reset" if args.len() == 1 => {
            let addr = host.lookup(&args[0])?;
            host.reset(&addr)?;
            println!("{addr} reset");
            Ok(())
        }
        "recover" if args.is_empty() => {
            let mut done = host.take_recovered();
            done.extend(host.recover()?);
            for r in &done {
                match r.step {
                    Some(step) => println!("{}: interrupted while {step:?}: {}", r.address, r.outcome),
                    None => println!("{}: {}", r.address, r.outcome),
                }
            }
            println!("{} interrupted operation(s) recovered", done.len());
            Ok(())
        }
        "drivers" if args.is_empty() => {
            for addr in host.list()? {
                println!("{addr} {}", host.driver(&addr)?.as_deref().unwrap_or("none"));
            }
            Ok(())
        }
        "dump-host" if args.is_empty() => {
            let spec = host.describe()?;
            println!("{}", serde_json::to_string_pretty(&spec).map_err(|e| Error::Internal(e.to_string()))?);
            Ok(())
        }
        "list" | "show" | "reset" | "drivers" | "dump-host" | "recover" | "group" => Err(Failure::Usage(format!("{name}: wrong arguments"))),
        other => Err(Failure::Usage(format!("unknown command '{other}'"))),
    }
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`nodedev list | head`), like other tools.
    // SAFETY: restoring the default disposition of one signal at start-up.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut uri_arg = std::env::var("NODEDEV_URI").ok();
    match args.first().map(String::as_str) {
        Some("-c") | Some("--connect") => {
            if args.len() < 2 {
                eprintln!("nodedev: -c needs a URI\n{USAGE}");
                return ExitCode::from(2);
            }
            uri_arg = Some(args[1].clone());
            args.drain(..2);
        }
        Some("-h") | Some("--help") | None => {
            println!("{USAGE}");
            return if args.is_empty() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
        _ => {}
    }
    let commands = split_commands(&args);
    if commands.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let host = match uri::open(uri_arg.as_deref(), false) {
        Ok((h, _)) => h,
        Err(e) => {
            eprintln!("nodedev: error: {e}");
            return ExitCode::from(1);
        }
    };
    for cmd in &commands {
        match run(&host, cmd) {
            Ok(()) => {}
            Err(Failure::Usage(m)) => {
                eprintln!("nodedev: {m}\n{USAGE}");
                return ExitCode::from(2);
            }
            Err(Failure::Op(e)) => {
                eprintln!("nodedev: error: {e}");
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}
