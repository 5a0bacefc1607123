//! The C ABI as a consumer sees it: the shipped shared library, include/
//! and the pkg-config file.
//!
//! build.rs compiles capi-tests/*.c to object files (cc crate, -Werror)
//! and lists them in NODEDEV_CAPI_OBJS. Here each object is linked the way a
//! consumer links, `cc prog.o $(pkg-config --libs nodedev) -lpthread -ldl`,
//! with PKG_CONFIG_PATH at build.rs's "uninstalled" nodedev.pc (libdir =
//! target/PROFILE, where cargo puts libnodedev.so; includedir = include/),
//! then run with LD_LIBRARY_PATH there: each must exit 0 and print
//! "NAME: N passed, 0 failed". Programs named dlopen* are linked without
//! -lnodedev: they load the library themselves. The same programs then run
//! under valgrind (no errors, no definite leaks) when it is installed, and
//! one is linked statically against libnodedev.a with pkg-config --static.
//!
//! Export checks: only `vir*` symbols, exactly the list in src/capi/mod.rs,
//! each at version NODEDEV_0.1.0; soname libnodedev.so.0.

mod common;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::thread;

const PC_PATH: &str = env!("NODEDEV_UNINSTALLED_PKG_CONFIG_PATH");
const OBJ_LIST: &str = env!("NODEDEV_CAPI_OBJS");

/// Programs the suite must contain (more may be added freely).
const EXPECTED: &[&str] = &[
    "assign",
    "busy",
    "detach_reattach",
    "dlopen",
    "enumerate",
    "errors",
    "events",
    "lasterror",
    "lookup_xml",
    "recover",
    "reset",
    "threads",
];

fn lib_dir() -> PathBuf {
    let dir = PathBuf::from(env!("NODEDEV_LIBRARY_DIR"));
    let so = dir.join("libnodedev.so");
    assert!(
        so.exists(),
        "{} is missing: `cargo test` does not build the cdylib; run `cargo build --release` first (`make check` does)",
        so.display()
    );
    dir
}

/// The soname link a consumer's loader looks for (`make install` would create it).
fn ensure_soname_link(dir: &Path) {
    let link = dir.join("libnodedev.so.0");
    if std::fs::read_link(&link).is_err() {
        let _ = std::fs::remove_file(&link);
        match std::os::unix::fs::symlink("libnodedev.so", &link) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => panic!("cannot create {}: {e}", link.display()),
        }
    }
}

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".to_string())
}

fn tool_missing(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_err()
}

fn pkg_config(args: &[&str]) -> Vec<String> {
    assert!(!tool_missing("pkg-config"), "pkg-config is not installed (apt-get install pkg-config; see .ci/run)");
    let o = Command::new("pkg-config")
        .args(args)
        .arg("nodedev")
        .env("PKG_CONFIG_PATH", PC_PATH)
        .output()
        .expect("running pkg-config");
    assert!(
        o.status.success(),
        "pkg-config {args:?} nodedev failed (PKG_CONFIG_PATH={PC_PATH}): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().split_whitespace().map(str::to_string).collect()
}

fn describe(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Program {
    name: String,
    exe: PathBuf,
}

fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("capi");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn objects() -> Vec<(String, Result<PathBuf, String>)> {
    let list = std::fs::read_to_string(OBJ_LIST).unwrap_or_else(|e| panic!("reading {OBJ_LIST}: {e}"));
    list.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(name, obj)| {
            let obj = match obj.strip_prefix('!') {
                Some(err) => Err(err.to_string()),
                None => Ok(PathBuf::from(obj)),
            };
            (name.to_string(), obj)
        })
        .collect()
}

fn link(name: &str, obj: &Path, dir: &Path) -> PathBuf {
    let exe = out_dir().join(name);
    let mut cmd = Command::new(cc());
    cmd.arg(obj).arg("-o").arg(&exe).arg("-pthread");
    if !name.starts_with("dlopen") {
        cmd.args(pkg_config(&["--libs"]));
    }
    cmd.args(["-lpthread", "-ldl"]);
    let o = cmd.output().unwrap_or_else(|e| panic!("running {}: {e}", cc()));
    assert!(o.status.success(), "linking {name} against {} failed:\n{}", dir.display(), describe(&o));
    exe
}

/// Every C program, linked once per test process.
fn programs() -> &'static [Program] {
    static LINKED: OnceLock<Vec<Program>> = OnceLock::new();
    LINKED.get_or_init(|| {
        let dir = lib_dir();
        ensure_soname_link(&dir);
        let mut out = Vec::new();
        for (name, obj) in objects() {
            let obj = obj.unwrap_or_else(|e| panic!("capi-tests/{name}.c did not compile in build.rs: {e}"));
            let exe = link(&name, &obj, &dir);
            out.push(Program { name, exe });
        }
        out
    })
}

fn run(p: &Program, wrapper: &[&str], env: &[(&str, &str)]) -> Output {
    let (prog, args): (&str, Vec<String>) = match wrapper.split_first() {
        Some((w, rest)) => (w, rest.iter().map(|s| s.to_string()).chain([p.exe.display().to_string()]).collect()),
        None => (p.exe.to_str().unwrap(), Vec::new()),
    };
    let mut cmd = Command::new(prog);
    cmd.args(&args).env("LD_LIBRARY_PATH", lib_dir()).env_remove("NODEDEV_DEBUG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap_or_else(|e| panic!("running {}: {e}", p.exe.display()))
}

/// Run every program in parallel; returns the failures, and every summary line.
fn run_all(
    wrapper: &[&str],
    env: &[(&str, &str)],
    check: fn(&Program, &Output) -> Result<(), String>,
) -> (Vec<String>, Vec<String>) {
    let progs = programs();
    let outputs: Vec<(&Program, Output)> = thread::scope(|s| {
        let handles: Vec<_> = progs.iter().map(|p| s.spawn(move || (p, run(p, wrapper, env)))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failures = outputs
        .iter()
        .filter_map(|(p, o)| check(p, o).err().map(|e| format!("{}: {e}\n{}", p.name, describe(o))))
        .collect();
    let summaries = outputs
        .iter()
        .map(|(_, o)| String::from_utf8_lossy(&o.stdout).lines().last().unwrap_or("").to_string())
        .collect();
    (failures, summaries)
}

fn summary_ok(p: &Program, o: &Output) -> Result<(), String> {
    let stdout = String::from_utf8_lossy(&o.stdout);
    let last = stdout.lines().last().unwrap_or("");
    let counts = last.strip_prefix(&format!("{}: ", p.name)).and_then(|rest| rest.split_once(" passed, ")).and_then(
        |(passed, failed)| Some((passed.parse::<u32>().ok()?, failed.strip_suffix(" failed")?.parse::<u32>().ok()?)),
    );
    match counts {
        Some((passed, 0)) if passed > 0 && o.status.success() => Ok(()),
        Some((passed, failed)) => Err(format!("{passed} passed, {failed} failed")),
        None => Err(format!("no summary line (last line: {last:?})")),
    }
}

#[test]
fn c_suite_is_complete() {
    let names: BTreeSet<String> = objects().into_iter().map(|(n, _)| n).collect();
    for want in EXPECTED {
        assert!(names.contains(*want), "capi-tests/{want}.c is missing from the build ({names:?})");
    }
}

#[test]
fn c_programs_pass() {
    let (failures, summaries) = run_all(&[], &[], summary_ok);
    eprintln!("{}", summaries.join("\n"));
    assert!(failures.is_empty(), "C programs failed:\n{}", failures.join("\n\n"));
}

#[test]
fn default_error_handler_prints_only_with_nodedev_debug() {
    let errors = programs().iter().find(|p| p.name == "errors").expect("errors program");
    let quiet = run(errors, &[], &[]);
    assert!(summary_ok(errors, &quiet).is_ok(), "{}", describe(&quiet));
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(!stderr.contains("nodedev: "), "errors printed without NODEDEV_DEBUG:\n{stderr}");
    let loud = run(errors, &[], &[("NODEDEV_DEBUG", "1")]);
    assert!(summary_ok(errors, &loud).is_ok(), "{}", describe(&loud));
    let stderr = String::from_utf8_lossy(&loud.stderr);
    assert!(
        stderr.lines().filter(|l| l.starts_with("nodedev: ")).count() > 20,
        "NODEDEV_DEBUG=1 should print every error:\n{stderr}"
    );
    assert!(stderr.contains("nodedev: virConnectClose: invalid connection pointer conn (NULL)"), "{stderr}");
}

#[test]
fn c_programs_are_clean_under_valgrind() {
    if !common::ci_installs("valgrind", !tool_missing("valgrind")) {
        return;
    }
    let wrapper = [
        "valgrind",
        "--quiet",
        "--error-exitcode=99",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite",
        "--show-leak-kinds=definite",
    ];
    // valgrind runs threads one at a time: fewer rounds for the threads program.
    let (failures, summaries) = run_all(&wrapper, &[("NODEDEV_TEST_ROUNDS", "20")], summary_ok);
    eprintln!("under valgrind:\n{}", summaries.join("\n"));
    assert!(failures.is_empty(), "C programs under valgrind:\n{}", failures.join("\n\n"));
}

#[test]
fn static_library_links_with_pkg_config_static() {
    let dir = lib_dir();
    let archive = dir.join("libnodedev.a");
    assert!(archive.exists(), "{} is missing", archive.display());
    let obj = objects().into_iter().find(|(n, _)| n == "enumerate").and_then(|(_, o)| o.ok()).expect("enumerate.o");
    let exe = out_dir().join("enumerate-static");
    let libs: Vec<String> = pkg_config(&["--static", "--libs"])
        .into_iter()
        .map(|a| if a == "-lnodedev" { archive.display().to_string() } else { a })
        .collect();
    let o = Command::new(cc()).arg(&obj).arg("-o").arg(&exe).args(&libs).output().unwrap();
    assert!(o.status.success(), "static link failed:\n{}", describe(&o));
    let needed = Command::new("readelf").arg("-d").arg(&exe).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&needed.stdout).contains("libnodedev"),
        "statically linked program needs libnodedev.so"
    );
    let run = Command::new(&exe).env_remove("LD_LIBRARY_PATH").output().unwrap();
    let p = Program { name: "enumerate".into(), exe };
    assert!(summary_ok(&p, &run).is_ok(), "{}", describe(&run));
}

#[test]
fn pkg_config_file_is_usable() {
    let dir = lib_dir();
    assert_eq!(pkg_config(&["--modversion"]), [env!("CARGO_PKG_VERSION")]);
    let cflags = pkg_config(&["--cflags"]);
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    assert_eq!(cflags, [format!("-I{}", include.display())]);
    let libs = pkg_config(&["--libs"]);
    assert_eq!(libs, [format!("-L{}", dir.display()), "-lnodedev".to_string()]);
    let private = pkg_config(&["--static", "--libs"]);
    assert!(private.contains(&"-lpthread".to_string()) && private.contains(&"-ldl".to_string()), "{private:?}");
    let template =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("pkgconfig/nodedev.pc.in")).unwrap();
    for placeholder in ["@PREFIX@", "@LIBDIR@", "@INCLUDEDIR@", "@VERSION@"] {
        assert!(template.contains(placeholder), "nodedev.pc.in lacks {placeholder}");
    }
    let v =
        Command::new("pkg-config").args(["--validate", "nodedev"]).env("PKG_CONFIG_PATH", PC_PATH).output().unwrap();
    assert!(v.status.success(), "pkg-config --validate:\n{}", describe(&v));
}

#[test]
fn only_versioned_vir_symbols_are_exported() {
    let so = lib_dir().join("libnodedev.so");
    let o = Command::new("nm")
        .args(["-D", "--defined-only", "--with-symbol-versions"])
        .arg(&so)
        .output()
        .expect("nm (binutils)");
    assert!(o.status.success(), "{}", describe(&o));
    let data: BTreeSet<&str> = nodedev::capi::exported_data().into_iter().collect();
    let mut exported = BTreeSet::new();
    let mut bad = Vec::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (kind, sym) = match fields.as_slice() {
            [_, kind, sym] => (*kind, *sym),
            [kind, sym] => (*kind, *sym),
            _ => {
                bad.push(format!("unexpected nm line: {line}"));
                continue;
            }
        };
        if kind == "A" && sym.trim_end_matches('@') == nodedev::capi::SYMBOL_VERSION {
            continue; // the version definition itself
        }
        match sym.split_once("@@") {
            Some((name, version))
                if name.starts_with("vir")
                    && version == nodedev::capi::SYMBOL_VERSION
                    && (if data.contains(name) { kind == "D" } else { kind == "T" }) =>
            {
                exported.insert(name.to_string());
            }
            _ => bad.push(format!("not a versioned vir* function or listed variable: {line}")),
        }
    }
    assert!(bad.is_empty(), "{}:\n{}", so.display(), bad.join("\n"));
    let expected: BTreeSet<String> = nodedev::capi::exported().into_iter().map(|s| s.to_string()).collect();
    assert_eq!(exported, expected, "exported symbols vs src/capi/mod.rs's list");

    // objdump agrees (version column of the dynamic symbol table).
    let o = Command::new("objdump").arg("-T").arg(&so).output().expect("objdump (binutils)");
    let table = String::from_utf8_lossy(&o.stdout);
    for name in nodedev::capi::exported() {
        assert!(
            table.lines().any(|l| l.ends_with(&format!(" {name}"))
                && l.contains(nodedev::capi::SYMBOL_VERSION)
                && l.contains(if data.contains(name) { ".data" } else { ".text" })),
            "objdump -T shows no {} {name}",
            nodedev::capi::SYMBOL_VERSION
        );
    }
}

#[test]
fn soname_is_libnodedev_so_0() {
    let so = lib_dir().join("libnodedev.so");
    let o = Command::new("readelf").arg("-d").arg(&so).output().expect("readelf (binutils)");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Library soname: [libnodedev.so.0]"), "readelf -d {}:\n{text}", so.display());
}
