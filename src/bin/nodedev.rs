//! nodedev: the command-line face of the library.
//!
//!   nodedev [-c URI] COMMAND [ARGS] [; COMMAND [ARGS] ...]
//!
//! Several commands separated by ";" run on one connection, which is how the
//! in-memory simulated host (test:///default) shows a whole cycle. Every
//! command is parsed before the first one runs, so a typo at the end of a
//! chain is a usage error (exit 2) before anything has changed.

use nodedev::inventory::{self, Listed, Report};
use nodedev::stub::is_stub_driver;
use nodedev::{uri, DetachOptions, Error, Host, PrepareOptions, Stub, StubRequest};
use std::process::ExitCode;

const USAGE: &str = "usage: nodedev [-c URI] COMMAND [ARGS] [; COMMAND [ARGS] ...]

commands:
  list [--json]                   every PCI device, on stub drivers / on host drivers / no
                                  driver: driver, ids, class, IOMMU group, owner
  list --format text|json|dra [--node NAME] [--generation N]
                                  dra: the devices as Kubernetes resource.k8s.io/v1
                                  ResourceSlices of pool NAME (default: the host name),
                                  generation N (default 1; raise it on each update)
  show DEV [--json]               libvirt's node-device XML of DEV (also computer, net_*)
  detach DEV [--driver vfio|vfio:NAME|kvm|xen] [--group] [--force] [--persistent]
                                  move DEV to a stub driver (default vfio: its VFIO variant
                                  driver if modules.alias has one for it, else vfio-pci;
                                  vfio:NAME: that VFIO driver, e.g. vfio:mlx5_vfio_pci or
                                  vfio:vfio-pci; show DEV --json explains the choice); --group: every
                                  endpoint of its IOMMU group, all or nothing; --force: even
                                  if the host uses it (boot VGA, mounted disk, interface up);
                                  --persistent: keep it on the stub from boot on
  reattach DEV [--driver NAME] [--persistent]
                                  give DEV back to its original (or the named) host driver;
                                  --persistent: also drop its persistent definition
  reset DEV                       reset DEV (it must be on a stub or on no driver)
  group DEV [--json]              DEV's IOMMU group: members, drivers, owners, vfio viability
  prepare OWNER DEV... [--driver vfio|vfio:NAME|kvm|xen] [--managed] [--force] [--persistent]
                                  assign devices to a guest: --managed moves them to the stub
                                  (all or nothing) and resets them; otherwise only verifies
  release OWNER [DEV...]          end the assignment (no DEV: all of OWNER's devices); managed
                                  devices go back to their original drivers
  sriov PF COUNT [--driver vfio|vfio:NAME|kvm|xen|none] [--force] [--persistent]
                                  give the SR-IOV PF COUNT VFs, each on the stub (default
                                  vfio, each VF's best VFIO driver; none: no driver) from the
                                  start, no host VF driver ever binding them; 0 removes them
                                  (--force: even VFs assigned or detached from a host driver);
                                  --persistent: the PF gets them again at boot (0: forget it)
  apply [DEV]                     put every persistently defined device on its stub and give
                                  every persistent PF its VFs (boot); DEV: only DEV's
                                  definitions; without DEV, then every autostart mediated
                                  device
  mdev types [PARENT] [--json]    mediated-device parents and their types: name, device API,
                                  instances available
  mdev list [--json]              every mediated device, live or defined (mdevctl's files)
  mdev show MDEV                  libvirt's node-device XML of MDEV
  mdev create PARENT TYPE [--uuid UUID] [--attr NAME=VALUE]...
                                  create a (transient) mediated device; a random UUID without
                                  --uuid
  mdev remove MDEV                remove (stop) a live one; refused while a process holds it
  mdev define PARENT TYPE [--uuid UUID] [--attr NAME=VALUE]... [--auto]
                                  define a persistent one (not started); --auto: start at boot
  mdev start MDEV                 start a defined one
  mdev autostart MDEV [--disable] start it at boot (or not)
  mdev undefine MDEV              remove its definition (a live one stays, transient)
  udev DEV                        for the udev rule: DEV's driver_override as KEY=value lines
  recover [--json]                finish or roll back operations a dead process left half done,
                                  each as the policy and lockdown allow (opening a connection
                                  never does: until recover runs, a device with a half-done
                                  record is refused by every command); reports records that
                                  cannot be used (their devices stay protected) and records of
                                  devices that are gone
  recover --clear DEV             forget DEV's unusable record (or the record of a device that
                                  is gone), after checking DEV's driver and users by hand; the
                                  file is kept as ADDRESS.json.cleared-TIME
  drivers [--json]                one line per device: ADDRESS DRIVER (or none)
  dump-host                       this host as a test:///PATH.json description
  nodes                           the names of libvirt's node devices: computer, pci_*, and
                                  net_IFNAME_MAC for each interface of a PCI function
  watch [--json] [--count N] [--timeout SECONDS]
                                  print node-device events as they happen (the kernel's
                                  uevents: created, deleted, updated), one per line, until
                                  N events or SECONDS passed (default: until interrupted)

DEV is 0000:03:00.1 or pci_0000_03_00_1; MDEV a UUID or libvirt's
mdev_UUID_PARENT name (mdev_83b8f4f2_..._0000_00_02_0). URI: nodedev:///system (default),
test:///default (built-in simulated host), test:///PATH.json.
--json: one JSON document per command on one line (doc/nodedev-json.schema.json).
NODEDEV_DEBUG=1: trace every sysfs access and module load on stderr.
exit status: 0 success, 1 the operation failed, 2 usage error.";

/// Split the command words on ";" (a word of its own, or the end of one); a
/// single word is a whole script, as in `nodedev 'list; show DEV'`.
fn split_commands(words: &[String]) -> Vec<Vec<String>> {
    let joined: Vec<String> = if words.len() == 1 {
        words[0].replace(';', " ; ").split_whitespace().map(str::to_string).collect()
    } else {
        words
            .iter()
            .flat_map(|w| {
                if let Some(stripped) = w.strip_suffix(';').filter(|s| !s.is_empty()) {
                    vec![stripped.to_string(), ";".to_string()]
                } else {
                    vec![w.clone()]
                }
            })
            .collect()
    };
    joined.split(|w| w == ";").filter(|c| !c.is_empty()).map(|c| c.to_vec()).collect()
}

/// One parsed command of the chain.
enum Command {
    List { json: bool },
    // `list --format dra` (Kubernetes ResourceSlices, src/dra.rs).
    ListDra { node: Option<String>, generation: i64 },
    Show { dev: String, json: bool },
    Group { dev: String, json: bool },
    Drivers { json: bool },
    Recover { json: bool, clear: Option<String> },
    DumpHost,
    // libvirt's device tree (tree): every node device's name
    Nodes,
    Detach { dev: String, driver: Option<String>, group: bool, force: bool, persistent: bool },
    Reattach { dev: String, driver: Option<String>, persistent: bool },
    Apply { dev: Option<String> },
    Udev { dev: String },
    Reset { dev: String },
    Prepare { owner: String, devs: Vec<String>, driver: Option<String>, managed: bool, force: bool, persistent: bool },
    Release { owner: String, devs: Vec<String> },
    Sriov { pf: String, count: u16, driver: Option<String>, force: bool, persistent: bool },
    // ---- Events (issue 12, item 5)
    Watch { json: bool, count: Option<u64>, timeout: Option<std::time::Duration> },
    Mdev(MdevCommand),
}

// ---- Mediated devices: `nodedev mdev SUBCOMMAND`.

enum MdevCommand {
    Types { parent: Option<String>, json: bool },
    List { json: bool },
    Show { mdev: String },
    Create { parent: String, type_id: String, uuid: Option<String>, attrs: Vec<(String, String)> },
    Define { parent: String, type_id: String, uuid: Option<String>, attrs: Vec<(String, String)>, auto: bool },
    Remove { mdev: String },
    Start { mdev: String },
    Autostart { mdev: String, enable: bool },
    Undefine { mdev: String },
}

fn parse_mdev(args: &[String]) -> Result<MdevCommand, String> {
    let (sub, rest) = args
        .split_first()
        .ok_or("mdev: which? types, list, show, create, remove, define, start, autostart, undefine")?;
    let (mut pos, mut uuid, mut attrs, mut json, mut auto, mut disable) =
        (Vec::new(), None, Vec::new(), false, false, false);
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let (opt, inline) = match a.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value =
            |what: &str| inline.clone().or_else(|| it.next().cloned()).ok_or(format!("mdev {sub}: {opt} needs {what}"));
        let allowed = match sub.as_str() {
            "types" | "list" => &["--json"][..],
            "create" => &["--uuid", "--attr"][..],
            "define" => &["--uuid", "--attr", "--auto"][..],
            "autostart" => &["--disable"][..],
            _ => &[][..],
        };
        if !opt.starts_with("--") {
            pos.push(a.clone());
        } else if !allowed.contains(&opt) {
            return Err(format!("mdev {sub}: unknown option {a}"));
        } else if opt == "--uuid" {
            uuid = Some(value("a UUID")?);
        } else if opt == "--attr" {
            let v = value("NAME=VALUE")?;
            let (n, v) = v.split_once('=').ok_or(format!("mdev {sub}: --attr takes NAME=VALUE, not '{v}'"))?;
            attrs.push((n.to_string(), v.to_string()));
        } else if inline.is_some() {
            return Err(format!("mdev {sub}: {opt} takes no value"));
        } else {
            match opt {
                "--json" => json = true,
                "--auto" => auto = true,
                _ => disable = true,
            }
        }
    }
    let one = |pos: &mut Vec<String>| -> Result<String, String> {
        match pos.len() {
            1 => Ok(pos.remove(0)),
            _ => Err(format!("mdev {sub}: one mediated device (its UUID or mdev_UUID_PARENT name)")),
        }
    };
    let two = |pos: &mut Vec<String>| -> Result<(String, String), String> {
        match pos.len() {
            2 => Ok((pos.remove(0), pos.remove(0))),
            _ => Err(format!("mdev {sub}: PARENT TYPE (e.g. mdev {sub} 0000:00:02.0 i915-GVTg_V5_4)")),
        }
    };
    Ok(match sub.as_str() {
        "types" if pos.len() <= 1 => MdevCommand::Types { parent: pos.pop(), json },
        "types" => return Err("mdev types: at most one parent".into()),
        "list" if pos.is_empty() => MdevCommand::List { json },
        "list" => return Err("mdev list: takes no arguments".into()),
        "show" => MdevCommand::Show { mdev: one(&mut pos)? },
        "remove" => MdevCommand::Remove { mdev: one(&mut pos)? },
        "start" => MdevCommand::Start { mdev: one(&mut pos)? },
        "undefine" => MdevCommand::Undefine { mdev: one(&mut pos)? },
        "autostart" => MdevCommand::Autostart { mdev: one(&mut pos)?, enable: !disable },
        "create" => {
            let (parent, type_id) = two(&mut pos)?;
            MdevCommand::Create { parent, type_id, uuid, attrs }
        }
        "define" => {
            let (parent, type_id) = two(&mut pos)?;
            MdevCommand::Define { parent, type_id, uuid, attrs, auto }
        }
        other => return Err(format!("mdev: unknown subcommand '{other}'")),
    })
}

fn run_mdev(host: &Host, cmd: &MdevCommand) -> Result<(), Error> {
    let config = |parent: &str, type_id: &str, uuid: &Option<String>, attrs: &[(String, String)]| {
        Ok::<_, Error>(nodedev::MdevConfig {
            parent: host.lookup(parent)?,
            type_id: type_id.to_string(),
            uuid: uuid.clone(),
            attrs: attrs.to_vec(),
        })
    };
    match cmd {
        MdevCommand::Types { parent, json } => {
            let parents = match parent {
                Some(p) => vec![host.lookup(p)?],
                None => host.mdev_parents(),
            };
            let mut doc = Vec::new();
            for p in parents {
                let types = host.mdev_types(&p)?;
                if *json {
                    let t: Vec<serde_json::Value> = types
                        .iter()
                        .map(|t| {
                            serde_json::json!({"id": t.id, "name": t.name, "description": t.description,
                                "device_api": t.device_api, "available_instances": t.available_instances})
                        })
                        .collect();
                    doc.push(serde_json::json!({"address": p.to_string(), "name": p.node_name(), "types": t}));
                    continue;
                }
                println!("{p} ({}):", p.node_name());
                if types.is_empty() {
                    println!("  no mdev types (not a mediated-device parent now)");
                }
                for t in types {
                    println!(
                        "  {:<20} {:<12} {:<9} available {}",
                        t.id,
                        t.name.as_deref().unwrap_or("-"),
                        t.device_api,
                        t.available_instances
                    );
                }
            }
            if *json {
                // doc/nodedev-json.schema.json, $defs/mdev_types.
                println!("{}", serde_json::json!({"schema_version": 1, "command": "mdev types", "parents": doc}));
            }
            Ok(())
        }
        MdevCommand::List { json } => {
            let all = host.mdevs()?;
            if *json {
                let v: Vec<serde_json::Value> = all
                    .iter()
                    .map(|m| {
                        serde_json::json!({"name": m.id.node_name(), "uuid": m.id.uuid, "parent": m.id.parent.to_string(),
                            "type": m.type_id, "active": m.active, "persistent": m.persistent(),
                            "autostart": m.autostart(), "iommu_group": m.iommu_group})
                    })
                    .collect();
                // doc/nodedev-json.schema.json, $defs/mdev_list.
                println!("{}", serde_json::json!({"schema_version": 1, "command": "mdev list", "mdevs": v}));
                return Ok(());
            }
            for m in &all {
                let state = match (m.active, m.persistent(), m.autostart()) {
                    (true, false, _) => "active, transient",
                    (true, true, false) => "active, defined",
                    (true, true, true) => "active, defined, autostart",
                    (false, _, false) => "inactive, defined",
                    (false, _, true) => "inactive, defined, autostart",
                };
                let group = m.iommu_group.map(|g| format!(" group {g}")).unwrap_or_default();
                println!("{} {} {} ({state}){group}", m.id.uuid, m.id.parent, m.type_id);
            }
            Ok(())
        }
        MdevCommand::Show { mdev } => {
            print!("{}", host.mdev_xml(&host.mdev_lookup(mdev)?)?);
            Ok(())
        }
        MdevCommand::Create { parent, type_id, uuid, attrs } => {
            let id = host.mdev_create(&config(parent, type_id, uuid, attrs)?)?;
            println!("{} created on {} ({type_id}): {}", id.uuid, id.parent, id.node_name());
            Ok(())
        }
        MdevCommand::Define { parent, type_id, uuid, attrs, auto } => {
            let id = host.mdev_define(&config(parent, type_id, uuid, attrs)?, Some(*auto))?;
            println!(
                "{} defined on {} ({type_id}{}): {}",
                id.uuid,
                id.parent,
                if *auto { ", autostart" } else { "" },
                id.node_name()
            );
            Ok(())
        }
        MdevCommand::Remove { mdev } => {
            let id = host.mdev_lookup(mdev)?;
            host.mdev_destroy(&id)?;
            println!("{} removed from {}", id.uuid, id.parent);
            Ok(())
        }
        MdevCommand::Start { mdev } => {
            let id = host.mdev_lookup(mdev)?;
            host.mdev_start(&id)?;
            println!("{} started on {}", id.uuid, id.parent);
            Ok(())
        }
        MdevCommand::Autostart { mdev, enable } => {
            let id = host.mdev_lookup(mdev)?;
            host.mdev_set_autostart(&id, *enable)?;
            println!("{} {} at boot", id.uuid, if *enable { "starts" } else { "does not start" });
            Ok(())
        }
        MdevCommand::Undefine { mdev } => {
            let id = host.mdev_lookup(mdev)?;
            host.mdev_undefine(&id)?;
            println!("{} undefined", id.uuid);
            Ok(())
        }
    }
}

/// `watch [--json] [--count N] [--timeout SECONDS]`.
fn parse_watch(args: &[String]) -> Result<Command, String> {
    let (mut json, mut count, mut timeout) = (false, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (opt, inline) = match a.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned()).ok_or(format!("watch: {opt} needs a value"));
        match opt {
            "--json" if inline.is_none() => json = true,
            "--count" => {
                let v = value()?;
                count = Some(
                    v.parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(format!("watch: --count '{v}' is not a positive number"))?,
                );
            }
            "--timeout" => {
                let v = value()?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                    .ok_or(format!("watch: --timeout '{v}' is not a number of seconds"))?;
                timeout = Some(std::time::Duration::from_secs_f64(secs));
            }
            _ if opt.starts_with('-') => return Err(format!("watch: unknown option {a}")),
            _ => return Err("watch: takes no arguments".into()),
        }
    }
    Ok(Command::Watch { json, count, timeout })
}

/// Print events until `count` of them or `timeout`: sleeps in poll between
/// kernel events (no periodic wake-up).
fn watch(host: &Host, json: bool, count: Option<u64>, timeout: Option<std::time::Duration>) -> Result<(), Error> {
    let watcher = nodedev::events::Watcher::new(host.sysfs().clone())?;
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    let mut seen = 0u64;
    let mut reported = 0u64;
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return Ok(());
        }
        let events = watcher.wait(left)?;
        let overflows = watcher.overflows();
        if overflows > reported {
            reported = overflows;
            if json {
                let overflow = nodedev::inventory::WatchOverflow { overflows };
                println!("{}", Report::WatchOverflow { overflow }.to_json());
            } else {
                println!("overflow: kernel events were lost ({overflows} so far); the tree was read again");
            }
        }
        for ev in events {
            if json {
                println!("{}", Report::Watch { event: Box::new(ev) }.to_json());
            } else {
                let driver = ev.driver.as_deref().map(|d| format!(" {d}")).unwrap_or_default();
                let kind =
                    serde_json::to_value(ev.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                println!("{kind} {} {} {}{driver}", ev.name, ev.address, ev.action);
            }
            seen += 1;
            if count.is_some_and(|n| seen >= n) {
                return Ok(());
            }
        }
    }
}

/// A command's words: positional arguments and the options it accepts.
#[derive(Default)]
struct Args {
    positional: Vec<String>,
    driver: Option<String>,
    clear: Option<String>,
    group: bool,
    force: bool,
    managed: bool,
    json: bool,
    persistent: bool,
    // `list --format F --node NAME`
    format: Option<String>,
    node: Option<String>,
    generation: Option<String>,
}

/// Parse `args`, accepting the options in `accepted` (`--driver` takes a value).
fn parse_args(cmd: &str, args: &[String], accepted: &[&str]) -> Result<Args, String> {
    let mut out = Args::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (opt, inline) = match a.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v)),
            _ => (a.as_str(), None),
        };
        if !opt.starts_with('-') {
            out.positional.push(a.clone());
            continue;
        }
        if !accepted.contains(&opt) {
            return Err(format!("{cmd}: unknown option {a}"));
        }
        match opt {
            "--driver" => {
                let v = inline.map(str::to_string).or_else(|| it.next().cloned());
                out.driver = Some(v.ok_or_else(|| format!("{cmd}: --driver needs a value"))?);
            }
            "--format" | "--node" | "--generation" => {
                let v = inline.map(str::to_string).or_else(|| it.next().cloned());
                let v = v.ok_or_else(|| format!("{cmd}: {opt} needs a value"))?;
                match opt {
                    "--format" => out.format = Some(v),
                    "--node" => out.node = Some(v),
                    _ => out.generation = Some(v),
                }
            }
            "--clear" => {
                let v = inline.map(str::to_string).or_else(|| it.next().cloned());
                out.clear =
                    Some(v.ok_or_else(|| format!("{cmd}: --clear needs a device (e.g. --clear 0000:03:00.0)"))?);
            }
            _ if inline.is_some() => return Err(format!("{cmd}: {opt} takes no value")),
            "--group" => out.group = true,
            "--force" => out.force = true,
            "--managed" => out.managed = true,
            "--persistent" => out.persistent = true,
            _ => out.json = true,
        }
    }
    Ok(out)
}

/// Exactly `n` positional arguments (the devices of `show DEV`, `group DEV`...).
fn exactly(cmd: &str, a: Args, n: usize) -> Result<Args, String> {
    match a.positional.len() {
        k if k == n => Ok(a),
        0 => Err(format!("{cmd}: which device? (e.g. {cmd} 0000:03:00.0)")),
        _ if n == 1 => Err(format!("{cmd}: one device at a time")),
        _ => Err(format!("{cmd}: takes no arguments")),
    }
}

fn parse_command(words: &[String]) -> Result<Command, String> {
    let (name, args) = words.split_first().ok_or("no command")?;
    let cmd = name.as_str();
    let opts = |accepted: &[&str]| parse_args(cmd, args, accepted);
    let read = |n: usize| opts(&["--json"]).and_then(|a| exactly(cmd, a, n));
    let first = |a: &mut Args| a.positional.remove(0);
    Ok(match cmd {
        "list" => {
            let a = exactly(cmd, opts(&["--json", "--format", "--node", "--generation"])?, 0)?;
            let format = a.format.as_deref().unwrap_or(if a.json { "json" } else { "text" });
            if a.json && format != "json" {
                return Err(format!("list: --json and --format {format} contradict each other"));
            }
            if (a.node.is_some() || a.generation.is_some()) && format != "dra" {
                return Err("list: --node and --generation apply to --format dra".to_string());
            }
            let generation = match a.generation.as_deref() {
                None => 1,
                Some(g) => g.parse::<i64>().ok().filter(|g| *g >= 0).ok_or_else(|| {
                    format!("list: --generation must be a whole number from 0 to {} (the pool's generation)", i64::MAX)
                })?,
            };
            match format {
                "text" => Command::List { json: false },
                "json" => Command::List { json: true },
                "dra" => Command::ListDra { node: a.node, generation },
                f => return Err(format!("list: unknown --format '{f}' (text, json or dra)")),
            }
        }
        "drivers" => Command::Drivers { json: read(0)?.json },
        "recover" => {
            let a = exactly(cmd, opts(&["--json", "--clear"])?, 0)?;
            Command::Recover { json: a.json, clear: a.clear }
        }
        "show" => {
            let mut a = read(1)?;
            Command::Show { dev: first(&mut a), json: a.json }
        }
        "group" => {
            let mut a = read(1)?;
            Command::Group { dev: first(&mut a), json: a.json }
        }
        "nodes" => {
            exactly(cmd, opts(&[])?, 0)?;
            Command::Nodes
        }
        "dump-host" => {
            exactly(cmd, opts(&[])?, 0)?;
            Command::DumpHost
        }
        "detach" => {
            let mut a = exactly(cmd, opts(&["--driver", "--group", "--force", "--persistent"])?, 1)?;
            Command::Detach {
                dev: first(&mut a),
                driver: a.driver,
                group: a.group,
                force: a.force,
                persistent: a.persistent,
            }
        }
        "reattach" => {
            let mut a = exactly(cmd, opts(&["--driver", "--persistent"])?, 1)?;
            Command::Reattach { dev: first(&mut a), driver: a.driver, persistent: a.persistent }
        }
        "apply" => {
            let mut a = opts(&[])?;
            if a.positional.len() > 1 {
                return Err("apply: at most one device (e.g. apply 0000:04:00.0)".into());
            }
            Command::Apply { dev: a.positional.pop() }
        }
        "udev" => Command::Udev { dev: first(&mut exactly(cmd, opts(&[])?, 1)?) },
        "reset" => Command::Reset { dev: first(&mut exactly(cmd, opts(&[])?, 1)?) },
        "prepare" => {
            let mut a = opts(&["--driver", "--managed", "--force", "--persistent"])?;
            if a.positional.len() < 2 {
                return Err("prepare: OWNER DEV... (e.g. prepare vm1 0000:01:00.0 0000:01:00.1)".into());
            }
            let owner = first(&mut a);
            Command::Prepare {
                owner,
                devs: a.positional,
                driver: a.driver,
                managed: a.managed,
                force: a.force,
                persistent: a.persistent,
            }
        }
        "release" => {
            let mut a = opts(&[])?;
            if a.positional.is_empty() {
                return Err("release: OWNER [DEV...] (no DEV: all of OWNER's devices)".into());
            }
            Command::Release { owner: first(&mut a), devs: a.positional }
        }
        "sriov" => {
            let mut a = opts(&["--driver", "--force", "--persistent"])?;
            if a.positional.len() != 2 {
                return Err("sriov: PF COUNT (e.g. sriov 0000:04:00.0 4)".into());
            }
            let pf = first(&mut a);
            let count =
                a.positional[0].parse().map_err(|_| format!("sriov: '{}' is not a VF count", a.positional[0]))?;
            Command::Sriov { pf, count, driver: a.driver, force: a.force, persistent: a.persistent }
        }
        "mdev" => Command::Mdev(parse_mdev(args)?),
        "watch" => parse_watch(args)?,
        other => return Err(format!("unknown command '{other}'")),
    })
}

fn group(host: &Host, dev: &str, json: bool) -> Result<(), Error> {
    let addr = host.lookup(dev)?;
    if json {
        let group = inventory::group(host, &addr)?;
        println!("{}", Report::Group { address: addr.to_string(), group }.to_json());
        return Ok(());
    }
    let Some(g) = host.group(&addr)? else {
        println!("{addr} has no IOMMU group: this kernel runs without an IOMMU, so vfio cannot be used");
        return Ok(());
    };
    let owners = host.assignments()?;
    println!("IOMMU group {} ({} functions)", g.number, g.members.len());
    for m in &g.members {
        let owner = owners.iter().find(|(a, _)| *a == m.address.to_string()).map(|(_, o)| format!(", assigned to {o}"));
        let kind = if m.bridge {
            "bridge, tolerated by vfio"
        } else if m.blocks_vfio() {
            "endpoint on a host driver"
        } else {
            "endpoint, isolated"
        };
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

/// Every device, in the three places an admin asks about: on a stub (ready
/// for guests), on a host driver (the host uses it), on no driver.
fn list(host: &Host, json: bool) -> Result<(), Error> {
    if json {
        println!("{}", Report::List { devices: inventory::devices(host)? }.to_json());
        return Ok(());
    }
    let devices = inventory::listing(host)?;
    let stub = |d: &Listed| d.summary.driver.as_deref().is_some_and(is_stub_driver);
    let sections: [(&str, &dyn Fn(&Listed) -> bool); 3] = [
        ("on stub drivers", &|d| stub(d)),
        ("on host drivers", &|d| d.summary.driver.is_some() && !stub(d)),
        ("no driver", &|d| d.summary.driver.is_none()),
    ];
    let mut out = String::new();
    out += &format!(
        "{:<12}  {:<14} {:<9}  {:<6} {:>5}  {:<12} DEVICE\n",
        "ADDRESS", "DRIVER", "ID", "CLASS", "GROUP", "OWNER"
    );
    for (title, belongs) in sections {
        let members: Vec<&Listed> = devices.iter().filter(|d| belongs(d)).collect();
        out += &format!("\n{title} ({})\n", members.len());
        if members.is_empty() {
            out += "(none)\n";
        }
        for d in members {
            out += &list_line(d);
            out.push('\n');
        }
    }
    // One write for the whole listing: thousands of lines are common.
    print!("{out}");
    Ok(())
}

/// One device of `list`: the columns, then names and what nodedev recorded.
fn list_line(d: &Listed) -> String {
    let s = &d.summary;
    let names = match (&s.vendor_name, &s.product_name) {
        (Some(v), Some(p)) => format!("{v} {p}"),
        (Some(v), None) => v.clone(),
        _ => "-".to_string(),
    };
    let mut notes = Vec::new();
    if let Some(r) = d.record.as_ref().filter(|r| !r.ownership_only) {
        notes.push(format!("detached from {}", r.original_driver.as_deref().unwrap_or("no driver")));
    }
    if d.record.as_ref().is_some_and(|r| r.owner.is_some() && r.managed) {
        notes.push("managed".to_string());
    }
    if d.unusable_record.is_some() {
        // The whole reason is in `list --json` and in every refusal.
        notes.push(format!(
            "record unusable, every operation refused: check it, then 'nodedev recover --clear {}'",
            s.address
        ));
    }
    let notes = if notes.is_empty() { String::new() } else { format!(" [{}]", notes.join(", ")) };
    format!(
        "{:<12}  {:<14} {:04x}:{:04x}  {:06x} {:>5}  {:<12} {names}{notes}",
        s.address.to_string(),
        s.driver.as_deref().unwrap_or("-"),
        s.vendor,
        s.device,
        s.class,
        s.iommu_group.map(|g| g.to_string()).unwrap_or_else(|| "-".into()),
        d.record.as_ref().and_then(|r| r.owner.as_deref()).unwrap_or(if d.unusable_record.is_some() {
            "?"
        } else {
            "-"
        }),
    )
}

fn run(host: &Host, cmd: &Command) -> Result<(), Error> {
    let lookup_all = |devs: &[String]| devs.iter().map(|d| host.lookup(d)).collect::<Result<Vec<_>, _>>();
    match cmd {
        Command::List { json } => list(host, *json),
        Command::ListDra { node, generation } => {
            let node = match node {
                Some(n) => n.clone(),
                None => nodedev::dra::default_node_name()?,
            };
            let out = nodedev::dra::resource_slices(host, &node, *generation)?;
            for line in &out.withheld {
                eprintln!("nodedev: {line}");
            }
            for slice in out.slices {
                println!("{slice}");
            }
            Ok(())
        }
        Command::Show { dev, json } => {
            if *json {
                let addr = host.lookup(dev)?;
                let device = Box::new(inventory::device(host, &addr)?);
                // A choice that cannot be made (modules.alias unreadable) is null, not an error.
                let vfio_driver = host.vfio_choice(&addr, None).ok();
                println!("{}", Report::Show { device, vfio_driver }.to_json());
            } else {
                print!("{}", host.node_xml(&host.lookup_node(dev)?)?);
            }
            Ok(())
        }
        Command::Nodes => {
            for n in host.nodes()? {
                println!("{}", n.name());
            }
            Ok(())
        }
        Command::Group { dev, json } => group(host, dev, *json),
        Command::Drivers { json } => {
            let devices = inventory::drivers(host)?;
            if *json {
                println!("{}", Report::Drivers { devices }.to_json());
            } else {
                for d in devices {
                    println!("{} {}", d.address, d.driver.as_deref().unwrap_or("none"));
                }
            }
            Ok(())
        }
        Command::Recover { json: _, clear: Some(dev) } => {
            let addr = nodedev::PciAddress::parse(dev)?;
            println!("{addr}: {}", host.clear_record(&addr)?);
            Ok(())
        }
        Command::Recover { json, clear: None } => {
            let done = host.recover()?;
            if *json {
                println!("{}", Report::Recover { recovered: inventory::recovered(&done) }.to_json());
                return Ok(());
            }
            for r in &done {
                match r.step {
                    Some(step) => println!("{}: record at step {step:?}: {}", r.address, r.outcome),
                    None => println!("{}: {}", r.address, r.outcome),
                }
            }
            let open = done.iter().filter(|r| !r.resolved).count();
            println!("{} record(s) reported, {} settled, {open} still need attention", done.len(), done.len() - open);
            if open > 0 {
                return Err(Error::OperationInvalid(format!(
                    "{open} record(s) still need attention: see above (a refusal says what would allow it; an unusable record needs 'recover --clear' after a check by hand)"
                )));
            }
            Ok(())
        }
        Command::DumpHost => {
            let spec = host.describe()?;
            println!("{}", serde_json::to_string_pretty(&spec).map_err(|e| Error::Internal(e.to_string()))?);
            Ok(())
        }
        Command::Detach { dev, driver, group, force, persistent } => {
            let addr = host.lookup(dev)?;
            let req = StubRequest::parse(driver.as_deref())?;
            let stub = req.stub;
            if *persistent {
                host.check_definable()?; // before anything moves
            }
            host.detach_request(&addr, &req, DetachOptions { group: *group, force: *force })?;
            let moved = if *group { host.group_endpoints(&addr, stub)? } else { vec![addr] };
            for m in moved {
                println!("{m} detached to {}", host.driver(&m)?.as_deref().unwrap_or("no driver"));
                if *persistent {
                    host.define(&m)?;
                    println!("{m} stays on it from boot on (persistent)");
                }
            }
            // Say on the spot when the group still cannot be used by a guest.
            if stub == Stub::Vfio {
                if let Some(note) = host.group_unusable_note(&addr)? {
                    println!("note: {note}");
                }
            }
            Ok(())
        }
        Command::Reattach { dev, driver, persistent } => {
            let addr = host.lookup(dev)?;
            // The definition goes first: a reattach that works must not come
            // back at the next boot.
            if *persistent && host.undefine(&addr)? {
                println!("{addr}: persistent definition removed");
            }
            host.reattach(&addr, driver.as_deref())?;
            println!("{addr} reattached to {}", host.driver(&addr)?.as_deref().unwrap_or("no driver"));
            // What reattach could not put back (a bridge port): not an error.
            for note in host.take_notes(&addr) {
                eprintln!("nodedev: warning: {addr}: {note}");
            }
            Ok(())
        }
        Command::Mdev(m) => run_mdev(host, m),
        Command::Apply { dev } => {
            // PCI definitions (none kept: only the mediated devices), then mdevs.
            let mut applied = match dev {
                Some(d) => host.apply_device(&nodedev::PciAddress::parse(d)?)?,
                None => match host.apply() {
                    Err(Error::Unsupported(_)) if host.options().mdev_definitions.is_some() => Vec::new(),
                    other => other?,
                },
            };
            if dev.is_none() {
                // The PCI definitions above may have moved devices already:
                // an unreadable mdev directory is reported with them (and
                // fails the run), not in their place.
                match host.apply_mdevs() {
                    Ok(m) => applied.extend(m),
                    Err(e) => applied.push(nodedev::host::Applied {
                        address: "-".into(),
                        outcome: format!("mdev definitions not applied: {e}"),
                        done: false,
                        waiting: false,
                    }),
                }
            }
            for a in &applied {
                println!("{}: {}", a.address, a.outcome);
            }
            // Exit status: 0 when every definition is applied or waits for
            // its device or its PF driver (normal at boot); 1 when one failed.
            let failed = applied.iter().filter(|a| a.failed()).count();
            println!(
                "{} definition(s), {} applied, {} waiting, {failed} not applied",
                applied.len(),
                applied.iter().filter(|a| a.done).count(),
                applied.iter().filter(|a| a.waiting).count()
            );
            if failed > 0 {
                return Err(Error::OperationFailed(format!("{failed} definition(s) could not be applied (see above)")));
            }
            Ok(())
        }
        Command::Udev { dev } => {
            // IMPORT{program} output: KEY=value lines, nothing when undefined.
            let addr = host.lookup(dev)?;
            if let Some((driver, module)) = host.udev_override(&addr)? {
                println!("NODEDEV_DRIVER_OVERRIDE={driver}");
                println!("NODEDEV_MODULE={module}");
            }
            Ok(())
        }
        Command::Reset { dev } => {
            let addr = host.lookup(dev)?;
            host.reset(&addr)?;
            println!("{addr} reset");
            Ok(())
        }
        Command::Prepare { owner, devs, driver, managed, force, persistent } => {
            let addrs = lookup_all(devs)?;
            let req = StubRequest::parse(driver.as_deref())?;
            if *persistent {
                host.check_definable()?; // before anything moves
            }
            host.prepare_request(owner, &addrs, &req, PrepareOptions { managed: *managed, force: *force })?;
            for d in &addrs {
                println!("{d} prepared for {owner} on {}", host.driver(d)?.as_deref().unwrap_or("no driver"));
                if *persistent {
                    host.define(d)?;
                    println!("{d} stays on it from boot on (persistent)");
                }
            }
            Ok(())
        }
        Command::Release { owner, devs } => {
            let addrs = lookup_all(devs)?;
            let n = host.release(owner, (!addrs.is_empty()).then_some(addrs.as_slice()))?;
            println!("{n} device(s) released from {owner}");
            for addr in &addrs {
                for note in host.take_notes(addr) {
                    eprintln!("nodedev: warning: {addr}: {note}");
                }
            }
            Ok(())
        }
        Command::Watch { json, count, timeout } => watch(host, *json, *count, *timeout),
        Command::Sriov { pf, count, driver, force, persistent } => {
            let addr = host.lookup(pf)?;
            let req = StubRequest::parse_or_none(driver.as_deref())?;
            if *persistent {
                host.check_definable()?; // before any VF is made or removed
            }
            let vfs = host.provision_vfs(&addr, *count, req.as_ref(), *force)?;
            println!("{addr} has {} VF(s)", vfs.len());
            for vf in vfs {
                println!("{vf} on {}", host.driver(&vf)?.as_deref().unwrap_or("no driver"));
            }
            if *persistent {
                host.define_vfs(&addr, *count, req.as_ref())?;
                match count {
                    0 => println!("{addr}: no VFs at boot (persistent VF count removed)"),
                    n => println!("{addr} gets {n} VF(s) again at boot (persistent)"),
                }
            }
            Ok(())
        }
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
        Some("-h") | Some("--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let commands = match split_commands(&args).iter().map(|c| parse_command(c)).collect::<Result<Vec<_>, _>>() {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
        Err(m) => {
            eprintln!("nodedev: {m}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let host = match uri::open(uri_arg.as_deref(), false) {
        Ok((h, _)) => h,
        Err(e) => {
            eprintln!("nodedev: error: {e}");
            return ExitCode::from(1);
        }
    };
    for cmd in &commands {
        if let Err(e) = run(&host, cmd) {
            // The library's message as it is (virGetLastErrorMessage gives the same).
            eprintln!("nodedev: error: {e}");
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
