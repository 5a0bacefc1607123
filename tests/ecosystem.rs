//! nodedev as C programmers and packagers meet it: `make install` (with
//! PREFIX, LIBDIR and DESTDIR), an out-of-tree consumer built with
//! pkg-config alone, code written for libvirt's headers linked with
//! -lnodedev, and coexistence with the real libvirt.so.0 in one process.
//!
//! Needs `make install` to find the built libraries: `make check-host` (the
//! README's test command) builds them before `cargo test`. Tools the CI
//! installs (libvirt-dev, libvirt0) are required when NODEDEV_CI is set.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(tag: &str) -> PathBuf {
    let d = root().join("target/tmp/ecosystem").join(tag);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `make install` into a fresh prefix under target/tmp.
fn install(tag: &str, extra: &[&str]) -> PathBuf {
    let dir = scratch(tag);
    let prefix = dir.join("prefix");
    let mut make = Command::new("make");
    make.arg("-C").arg(root()).arg("install").arg(format!("PREFIX={}", prefix.display()));
    make.args(extra);
    run(&mut make);
    prefix
}

fn pkg_config(prefix: &Path, args: &[&str]) -> Vec<String> {
    let out = run(Command::new("pkg-config")
        .args(args)
        .arg("nodedev")
        .env("PKG_CONFIG_LIBDIR", prefix.join("lib/pkgconfig"))
        .env_remove("PKG_CONFIG_PATH"));
    text(&out).split_whitespace().map(str::to_string).collect()
}

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

fn needed(binary: &Path) -> Vec<String> {
    let out = run(Command::new("readelf").arg("-d").arg(binary));
    text(&out)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1).map(|s| s.trim_end_matches(']').to_string()))
        .collect()
}

mod common;
use common::ci_installs as available;

#[test]
fn install_lays_out_the_files_and_a_pkg_config_consumer_builds_and_runs() {
    let prefix = install("consumer", &[]);
    let version = env!("CARGO_PKG_VERSION");
    let lib = prefix.join("lib");
    let real = lib.join(format!("libnodedev.so.{version}"));
    assert!(real.is_file() && !real.is_symlink(), "{} is not a real file", real.display());
    assert_eq!(
        std::fs::read_link(lib.join("libnodedev.so.0")).unwrap(),
        PathBuf::from(format!("libnodedev.so.{version}"))
    );
    assert_eq!(std::fs::read_link(lib.join("libnodedev.so")).unwrap(), PathBuf::from("libnodedev.so.0"));
    for f in [
        "lib/libnodedev.a",
        "include/nodedev/nodedev.h",
        "lib/pkgconfig/nodedev.pc",
        "bin/nodedev",
        "share/man/man1/nodedev.1",
        "share/nodedev/nodedev-json.schema.json",
    ] {
        assert!(prefix.join(f).is_file(), "{f} not installed");
    }

    let cflags = pkg_config(&prefix, &["--cflags"]);
    let libs = pkg_config(&prefix, &["--libs"]);
    assert_eq!(cflags, [format!("-I{}", prefix.join("include/nodedev").display())]);
    assert_eq!(libs, [format!("-L{}", lib.display()), "-lnodedev".to_string()]);
    assert_eq!(pkg_config(&prefix, &["--modversion"]), [version]);

    // Out of tree: only what pkg-config says.
    let exe = prefix.parent().unwrap().join("consumer");
    run(Command::new(cc())
        .arg(root().join("capi-tests/external/consumer.c"))
        .args(["-Wall", "-Wextra", "-Werror"])
        .args(&cflags)
        .arg("-o")
        .arg(&exe)
        .args(&libs));
    assert_eq!(needed(&exe), ["libnodedev.so.0", "libc.so.6"]);
    let ldd = text(&run(Command::new("ldd").arg(&exe).env("LD_LIBRARY_PATH", &lib)));
    assert!(ldd.contains(&format!("libnodedev.so.0 => {}", lib.join("libnodedev.so.0").display())), "{ldd}");
    let out = run(Command::new(&exe).env("LD_LIBRARY_PATH", &lib));
    // test:///default: computer, 21 PCI functions, 3 interfaces.
    assert_eq!(text(&out).trim(), "devices 25");

    // The installed CLI and its man page.
    let out = run(Command::new(prefix.join("bin/nodedev")).args(["-c", "test:///default", "drivers"]));
    assert_eq!(text(&out).lines().count(), 21);
    let man = std::fs::read_to_string(prefix.join("share/man/man1/nodedev.1")).unwrap();
    for cmd in ["list", "show", "detach", "reattach", "reset", "group", "prepare", "release", "recover"] {
        assert!(
            man.contains(&format!(".B {cmd}"))
                || man.contains(&format!(".BI {cmd} "))
                || man.contains(&format!(".BI \" {cmd}")),
            "man page lacks {cmd}"
        );
    }
}

#[test]
fn staged_install_honours_destdir_and_libdir_and_uninstall_removes_it() {
    let dir = scratch("staged");
    let stage = dir.join("stage");
    let vars = [
        format!("DESTDIR={}", stage.display()),
        "PREFIX=/usr".to_string(),
        "LIBDIR=/usr/lib/x86_64-linux-gnu".to_string(),
    ];
    run(Command::new("make").arg("-C").arg(root()).arg("install").args(&vars));
    let pc = std::fs::read_to_string(stage.join("usr/lib/x86_64-linux-gnu/pkgconfig/nodedev.pc")).unwrap();
    assert!(pc.contains("prefix=/usr\n") && pc.contains("libdir=/usr/lib/x86_64-linux-gnu\n"), "{pc}");
    assert!(pc.contains("includedir=/usr/include/nodedev\n") && !pc.contains('@'), "{pc}");
    assert!(!pc.contains(&stage.display().to_string()), "DESTDIR leaked into the .pc file");
    assert!(stage.join("usr/lib/x86_64-linux-gnu/libnodedev.so.0").is_symlink());
    assert!(stage.join("usr/bin/nodedev").is_file());

    run(Command::new("make").arg("-C").arg(root()).arg("uninstall").args(&vars));
    let left: Vec<String> = walk(&stage).into_iter().map(|p| p.display().to_string()).collect();
    assert!(left.is_empty(), "left after uninstall: {left:?}");
}

/// Files and links (not directories) under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn code_written_for_libvirts_headers_links_with_nodedev_and_runs() {
    if !available("libvirt-dev (/usr/include/libvirt)", Path::new("/usr/include/libvirt/libvirt.h").exists()) {
        return;
    }
    let prefix = install("libvirt-headers", &[]);
    let lib = prefix.join("lib");
    let exe = prefix.parent().unwrap().join("libvirt_headers");
    // No -I for our header: only libvirt's own, from /usr/include.
    run(Command::new(cc())
        .arg(root().join("capi-tests/external/libvirt_headers.c"))
        .args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-Wno-deprecated-declarations"])
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib.display()))
        .arg("-lnodedev"));
    let libs = needed(&exe);
    assert!(
        libs.contains(&"libnodedev.so.0".to_string()) && !libs.iter().any(|l| l.starts_with("libvirt")),
        "{libs:?}"
    );
    let out = run(Command::new(&exe).env("LD_LIBRARY_PATH", &lib));
    let summary = text(&out);
    assert!(summary.contains(" 0 failed"), "{summary}");
    println!("{}", summary.trim());
}

#[test]
fn with_libvirt_so_loaded_in_either_order_calls_reach_nodedev() {
    let libvirt_present =
        Command::new("sh").args(["-c", "ldconfig -p | grep -q 'libvirt.so.0 '"]).status().is_ok_and(|s| s.success());
    if !available("libvirt0 (libvirt.so.0)", libvirt_present) {
        return;
    }
    let prefix = install("coexist", &[]);
    let lib = prefix.join("lib");
    let exe = prefix.parent().unwrap().join("coexist");
    run(Command::new(cc())
        .arg(root().join("capi-tests/external/coexist.c"))
        .args(["-Wall", "-Wextra", "-Werror"])
        .arg(format!("-I{}", prefix.join("include/nodedev").display()))
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib.display()))
        .args(["-lnodedev", "-ldl"]));
    // libvirt first in the search order (preloaded before us).
    let out = run(Command::new(&exe).env("LD_LIBRARY_PATH", &lib).env("LD_PRELOAD", "libvirt.so.0"));
    assert!(text(&out).contains("0 failed"), "{}", text(&out));
    // libvirt loaded later, its symbols made global.
    let out = run(Command::new(&exe).arg("dlopen").env("LD_LIBRARY_PATH", &lib));
    assert!(text(&out).contains("0 failed"), "{}", text(&out));
}

#[test]
fn the_readme_documents_every_exported_function() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let missing: Vec<&str> = nodedev::capi::exported()
        .into_iter()
        .filter(|f| !readme.contains(&format!("`{f}`")) && !readme.contains(&format!("`{f}(")))
        .collect();
    assert!(missing.is_empty(), "README's API table lacks {missing:?}");
}
