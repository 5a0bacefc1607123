//! nodedev: the command-line face of the library.
//!
//!   nodedev [-c URI] COMMAND [ARGS] [; COMMAND [ARGS] ...]
//!
//! Several commands separated by ";" run on one connection, which is how the
//! in-memory simulated host (test:///default) shows a whole cycle.

use nodedev::{uri, Error, Host, Stub};
use std::process::ExitCode;

const USAGE: &str = "usage: nodedev [-c URI] COMMAND [ARGS] [; COMMAND [ARGS] ...]

commands:
  list                            every PCI device: driver, ids, class, IOMMU group
  show DEV                        libvirt's node-device XML of DEV
  detach DEV [--driver vfio|kvm|xen]
                                  move DEV to a stub driver (default vfio)
  reattach DEV [--driver NAME]    give DEV back to its original (or the named) host driver
  reset DEV                       reset DEV (it must be on a stub or on no driver)
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

/// DEV and an optional --driver NAME, in any order.
fn device_and_driver<'a>(cmd: &str, args: &'a [String]) -> Result<(&'a str, Option<&'a str>), Failure> {
    let mut dev = None;
    let mut driver = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--driver" {
            let v = it.next().ok_or_else(|| Failure::Usage(format!("{cmd}: --driver needs a value")))?;
            driver = Some(v.as_str());
        } else if let Some(v) = a.strip_prefix("--driver=") {
            driver = Some(v);
        } else if a.starts_with('-') {
            return Err(Failure::Usage(format!("{cmd}: unknown option {a}")));
        } else if dev.replace(a.as_str()).is_some() {
            return Err(Failure::Usage(format!("{cmd}: one device at a time")));
        }
    }
    let dev = dev.ok_or_else(|| Failure::Usage(format!("{cmd}: which device? (e.g. {cmd} 0000:03:00.0)")))?;
    Ok((dev, driver))
}

fn list(host: &Host) -> Result<(), Failure> {
    let records = host.state().list().unwrap_or_default();
    println!("{:<13} {:<17} {:<14} {:<10} {:<7} {:>5}  NOTE", "DEVICE", "NAME", "DRIVER", "ID", "CLASS", "GROUP");
    for addr in host.list()? {
        let d = host.device_info(&addr)?;
        let group = d.iommu_group.map(|g| g.to_string()).unwrap_or_else(|| "-".into());
        let note = match records.iter().find(|r| r.address == addr.to_string()) {
            Some(r) => format!(
                "detached by nodedev, original driver: {}",
                r.original_driver.as_deref().unwrap_or("none")
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
            let (dev, driver) = device_and_driver(name, args)?;
            let stub = Stub::from_name(driver)?;
            let addr = host.lookup(dev)?;
            host.detach(&addr, stub)?;
            println!("{addr} detached to {}", host.driver(&addr)?.as_deref().unwrap_or("no driver"));
            Ok(())
        }
        "reattach" => {
            let (dev, driver) = device_and_driver(name, args)?;
            let addr = host.lookup(dev)?;
            host.reattach(&addr, driver)?;
            println!("{addr} reattached to {}", host.driver(&addr)?.as_deref().unwrap_or("no driver"));
            Ok(())
        }
        "reset" if args.len() == 1 => {
            let addr = host.lookup(&args[0])?;
            host.reset(&addr)?;
            println!("{addr} reset");
            Ok(())
        }
        "recover" if args.is_empty() => {
            let done = host.recover()?;
            for r in &done {
                println!("{}: interrupted while {:?}: {}", r.address, r.step, r.outcome);
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
        "list" | "show" | "reset" | "drivers" | "dump-host" | "recover" => Err(Failure::Usage(format!("{name}: wrong arguments"))),
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
