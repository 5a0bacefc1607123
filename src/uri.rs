//! Connection URIs: which host a connection talks to and where its records live.
//!
//! - `nodedev:///system` (or NULL, or libvirt's `qemu:///system`): this
//!   machine's /sys, records in /run/nodedev.
//! - `test:///default`: the built-in simulated host, one per process, shared
//!   by every connection to it (like libvirt's test driver), records in memory.
//! - `test:///ABSOLUTE/PATH.json`: a simulated host described in a file, new
//!   for each connection.
//!
//! Parameters (after `?`, `&`-separated): `root=DIR` (nodedev:///system only:
//! read the sysfs tree under DIR/sys instead of /sys, for tests),
//! `statedir=DIR` (keep records in DIR; refused for the live /sys, whose
//! records are every caller's), `confdir=DIR` (persistent
//! definitions in DIR instead of /etc/nodedev/persistent, and mediated-device
//! definitions in DIR/mdevctl.d instead of /etc/mdevctl.d; the only place a
//! test host keeps any), `modprobe=0` (never load modules),
//! `policy=FILE` (more policy rules, `policy.rs`), `lockdown=1` (no driver
//! changes, whatever the policy files say), `timeout=SECONDS` (how long a call
//! waits for a sysfs write the kernel holds up, e.g. an unbind of a device a
//! process holds through VFIO; default 10, decimals allowed, 1 to 3600;
//! the host-lock wait is 3 times that, at least 30 s).
//!
//! The live host's policy cannot be stepped around: whenever the sysfs tree
//! is the running kernel's (no `root=`, or a `root=` that resolves to `/`),
//! /etc/nodedev/policy.conf applies when it exists, and `policy=FILE` only
//! adds restrictions to it. Only a test tree (`root=` another directory) or
//! a simulated host goes without it.

use crate::error::{Error, Result};
use crate::host::{Host, HostOptions};
use crate::mdevctl::{MdevDefinitions, SYSTEM_MDEVCTL_DIR};
use crate::persist::{Definitions, SYSTEM_DEFINITIONS_DIR};
use crate::policy::Policy;
use crate::state::StateStore;
use crate::sysfs::host::{is_live_root, HostSysfs};
use crate::sysfs::sim::SimKernel;
use crate::sysfs::trace::Traced;
use crate::sysfs::Sysfs;
use std::sync::{Arc, OnceLock};

pub const DEFAULT_URI: &str = "nodedev:///system";
pub const SYSTEM_STATE_DIR: &str = "/run/nodedev";
pub const SYSTEM_POLICY_FILE: &str = "/etc/nodedev/policy.conf";

/// The parameters of a URI (see the module comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub root: Option<String>,
    pub statedir: Option<String>,
    pub modprobe: bool,
    pub policy: Option<String>,
    pub lockdown: bool,
    pub confdir: Option<String>,
    /// `timeout=SECONDS`: None for the default (`host::DEFAULT_WRITE_TIMEOUT`).
    pub timeout: Option<std::time::Duration>,
}

/// Which host a URI names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// This machine's /sys (or the tree under `root=`).
    System,
    /// The built-in simulated host of this process.
    TestDefault,
    /// A simulated host described in this file.
    TestFile(String),
}

/// A URI taken apart and checked, without touching any file.
pub fn parse(uri: &str) -> Result<(Target, Params)> {
    let (base, query) = match uri.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (uri, None),
    };
    let params = parse_params(uri, query)?;
    let target = match base {
        "nodedev:///system" | "qemu:///system" => Target::System,
        "test:///default" => Target::TestDefault,
        _ => match base.strip_prefix("test://").filter(|p| p.starts_with('/')) {
            Some(path) => Target::TestFile(path.to_string()),
            None => return Err(bad_uri(uri, "unknown URI")),
        },
    };
    if params.root.is_some() && target != Target::System {
        return Err(bad_uri(uri, "root= applies to nodedev:///system only"));
    }
    Ok((target, params))
}

fn bad_uri(uri: &str, why: &str) -> Error {
    Error::NoConnect(format!(
        "cannot open '{}': {why}; accepted URIs are nodedev:///system, test:///default and test:///PATH.json, with optional parameters root=, statedir=, confdir=, modprobe=0, policy=, lockdown=1, timeout=SECONDS",
        uri.escape_debug()
    ))
}

fn parse_params(uri: &str, query: Option<&str>) -> Result<Params> {
    let mut p = Params {
        root: None,
        statedir: None,
        modprobe: true,
        policy: None,
        lockdown: false,
        confdir: None,
        timeout: None,
    };
    let flag = |k: &str, v: &str| match v {
        "1" => Ok(true),
        "0" => Ok(false),
        _ => Err(bad_uri(uri, &format!("{k} must be 0 or 1"))),
    };
    for pair in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| bad_uri(uri, &format!("parameter '{pair}' has no value")))?;
        if v.is_empty() || v.contains('\0') {
            return Err(bad_uri(uri, &format!("parameter '{k}' is empty")));
        }
        match k {
            "root" | "statedir" | "policy" | "confdir" if !v.starts_with('/') => {
                return Err(bad_uri(uri, &format!("parameter '{k}' must be an absolute path")))
            }
            "root" => p.root = Some(v.to_string()),
            "statedir" => p.statedir = Some(v.to_string()),
            "confdir" => p.confdir = Some(v.to_string()),
            "policy" => p.policy = Some(v.to_string()),
            "modprobe" => p.modprobe = flag(k, v)?,
            "lockdown" => p.lockdown = flag(k, v)?,
            "timeout" => {
                // Under 1 s, writes the kernel finishes at once time out when
                // the caller is not scheduled in time (a loaded host).
                let secs = v.parse::<f64>().ok().filter(|s| (1.0..=3600.0).contains(s)).ok_or_else(|| {
                    bad_uri(uri, "timeout must be a number of seconds from 1 to 3600 (below 1 s, writes the kernel finishes at once can time out on a loaded host)")
                })?;
                p.timeout = Some(std::time::Duration::from_secs_f64(secs));
            }
            _ => return Err(bad_uri(uri, &format!("unknown parameter '{k}'"))),
        }
    }
    Ok(p)
}

/// The built-in simulated host and its records, shared by the whole process.
fn default_sim() -> (Arc<SimKernel>, StateStore) {
    static DEFAULT: OnceLock<(Arc<SimKernel>, StateStore)> = OnceLock::new();
    DEFAULT.get_or_init(|| (Arc::new(SimKernel::builtin()), StateStore::memory())).clone()
}

/// The simulated kernel behind test:///default, for tests that act as the
/// kernel itself (a small uevent buffer, a rename).
#[doc(hidden)]
pub fn test_default_kernel() -> Arc<SimKernel> {
    default_sim().0
}

/// Whether a System target's sysfs is the running kernel's: no `root=`, or
/// one whose `sys` is it however reached (see `is_live_root`).
fn is_live(params: &Params) -> bool {
    match &params.root {
        None => true,
        Some(root) => is_live_root(std::path::Path::new(root)),
    }
}

/// The host policy file, if there is one. Only "no such file" (and not a
/// dangling link) means none: a file that cannot be read, or a link to a
/// volume not mounted yet, refuses the connection rather than dropping the
/// host's lockdown.
fn host_policy(uri: &str, file: &str) -> Result<Option<Policy>> {
    match std::fs::symlink_metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(bad_uri(
            uri,
            &format!("cannot tell whether the host policy {file} exists ({e}); refusing to go without it"),
        )),
        Ok(_) => Policy::load(file).map(Some).map_err(|e| {
            bad_uri(
                uri,
                &format!("{e}; the host policy must be readable (a link to a volume not mounted yet is refused)"),
            )
        }),
    }
}

/// Records of the live host are the host's: `statedir=` elsewhere would hide
/// its owners and protected devices from this connection.
fn check_live_statedir(uri: &str, params: &Params) -> Result<()> {
    let Some(dir) = &params.statedir else { return Ok(()) };
    let resolved = std::fs::canonicalize(dir).unwrap_or_else(|_| std::path::PathBuf::from(dir));
    if resolved == std::path::Path::new(SYSTEM_STATE_DIR) {
        return Ok(());
    }
    Err(bad_uri(
        uri,
        &format!("statedir={dir} is refused for this machine's /sys: its records (original drivers, owners, protected devices) live in {SYSTEM_STATE_DIR} for every caller; statedir= is for test trees (root=) and simulated hosts"),
    ))
}

/// The policy of a connection: for the live host the host's file (when it
/// exists) with the URI's file added on top; elsewhere the URI's file alone.
fn policy_for(uri: &str, target: &Target, params: &Params, host_policy_file: &str) -> Result<Policy> {
    let load = |file: &str| Policy::load(file).map_err(|e| bad_uri(uri, &e.to_string()));
    let live = *target == Target::System && is_live(params);
    let mut policy = match live {
        true => host_policy(uri, host_policy_file)?.unwrap_or_default(),
        false => Policy::default(),
    };
    if let Some(file) = &params.policy {
        if live {
            policy.restrict(load(file)?);
        } else {
            policy = load(file)?;
        }
    }
    if params.lockdown {
        policy.restrict(Policy {
            locked_down: true,
            locked_by: "URI parameter lockdown=1".to_string(),
            ..Policy::default()
        });
    }
    Ok(policy)
}

/// Open a host for a URI (None: the default, this machine).
pub fn open(uri: Option<&str>, read_only: bool) -> Result<(Host, String)> {
    open_with_host_policy(uri, read_only, SYSTEM_POLICY_FILE)
}

/// `open`, with the live host's policy file elsewhere than
/// /etc/nodedev/policy.conf: for tests of the policy rules only.
#[doc(hidden)]
pub fn open_with_host_policy(uri: Option<&str>, read_only: bool, host_policy_file: &str) -> Result<(Host, String)> {
    let uri = uri.unwrap_or(DEFAULT_URI);
    let (target, params) = parse(uri)?;
    if target == Target::System && is_live(&params) {
        check_live_statedir(uri, &params)?;
    }
    let policy = policy_for(uri, &target, &params, host_policy_file)?;
    // Persistent definitions: the host's own for the live /sys, else only where asked.
    let definitions = match &params.confdir {
        Some(dir) => Some(Definitions::new(dir)),
        None if target == Target::System && is_live(&params) => Some(Definitions::new(SYSTEM_DEFINITIONS_DIR)),
        None => None,
    };
    // Mediated devices: mdevctl's directory on the live host, DIR/mdevctl.d with confdir=DIR.
    let mdev_definitions = match &params.confdir {
        Some(dir) => Some(MdevDefinitions::new(std::path::Path::new(dir).join("mdevctl.d"))),
        None if target == Target::System && is_live(&params) => Some(MdevDefinitions::new(SYSTEM_MDEVCTL_DIR)),
        None => None,
    };
    let options = HostOptions {
        read_only,
        allow_modprobe: params.modprobe,
        policy,
        definitions,
        mdev_definitions,
        write_timeout: params.timeout.unwrap_or(crate::host::DEFAULT_WRITE_TIMEOUT),
        lock_wait: crate::host::lock_wait_for(params.timeout.unwrap_or(crate::host::DEFAULT_WRITE_TIMEOUT)),
    };
    let store_or = |default: StateStore| params.statedir.as_ref().map(StateStore::dir).unwrap_or(default);

    let (sysfs, state): (Arc<dyn Sysfs>, StateStore) = match target {
        Target::System => {
            let root = params.root.clone().unwrap_or_else(|| "/".to_string());
            (Arc::new(HostSysfs::new(root)), store_or(StateStore::dir(SYSTEM_STATE_DIR)))
        }
        Target::TestDefault => {
            let (sim, store) = default_sim();
            (sim, store_or(store))
        }
        Target::TestFile(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| bad_uri(uri, &format!("cannot read host description {path}: {e}")))?;
            let sim = SimKernel::from_json(&text)
                .map_err(|e| bad_uri(uri, &format!("host description {path} is invalid: {e}")))?;
            (Arc::new(sim), store_or(StateStore::memory()))
        }
    };
    // NODEDEV_DEBUG: trace every sysfs access of this connection.
    let sysfs: Arc<dyn Sysfs> = if crate::debug::enabled() { Arc::new(Traced(sysfs)) } else { sysfs };
    // Opening changes nothing, not even after a crash: recovery obeys the
    // connection, the policy and the authorization callback (registered
    // after open), so it happens in `Host::recover` (virNodeDeviceRecover,
    // 'nodedev recover'). Until then a device with a half-done record is
    // refused by every operation.
    Ok((Host::new(sysfs, state, options), uri.to_string()))
}
