//! libvirt conformance: capi-tests/external/libvirt_conformance.c, written
//! from libvirt's sources (each check cites the libvirt file and function
//! that gives its expected answer), compiled against Debian's libvirt-dev
//! headers only (no -I for nodedev's header), linked with -lnodedev and run
//! on test:///default. Every check must pass. libvirt-dev is required when
//! NODEDEV_CI is set (CI installs it); elsewhere a missing libvirt-dev is a
//! note.

mod common;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// target/PROFILE, where cargo puts libnodedev.so, with the soname link a
/// consumer's loader looks for.
fn lib_dir() -> PathBuf {
    let dir = PathBuf::from(env!("NODEDEV_LIBRARY_DIR"));
    assert!(
        dir.join("libnodedev.so").exists(),
        "{} has no libnodedev.so: run `cargo build --release` first (`make check` does)",
        dir.display()
    );
    let link = dir.join("libnodedev.so.0");
    if std::fs::read_link(&link).is_err() {
        let _ = std::fs::remove_file(&link);
        match std::os::unix::fs::symlink("libnodedev.so", &link) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => panic!("cannot create {}: {e}", link.display()),
            _ => {}
        }
    }
    dir
}

#[test]
fn a_program_written_for_libvirt_gets_libvirts_answers() {
    if !common::ci_installs("libvirt-dev (/usr/include/libvirt)", Path::new("/usr/include/libvirt/libvirt.h").exists())
    {
        return;
    }
    let lib = lib_dir();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("conformance");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("libvirt_conformance");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let o = Command::new(&cc)
        .arg(root().join("capi-tests/external/libvirt_conformance.c"))
        .args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-Wno-deprecated-declarations", "-o"])
        .arg(&exe)
        .arg(format!("-L{}", lib.display()))
        .arg("-lnodedev")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
    assert!(o.status.success(), "compiling the conformance program failed:\n{}", String::from_utf8_lossy(&o.stderr));
    // Linked against nodedev alone: no libvirt library behind the answers.
    let needed = Command::new("readelf").arg("-d").arg(&exe).output().expect("readelf (binutils)");
    let needed = String::from_utf8_lossy(&needed.stdout);
    assert!(needed.contains("[libnodedev.so.0]") && !needed.contains("[libvirt"), "{needed}");
    let o = Command::new(&exe).env("LD_LIBRARY_PATH", &lib).env_remove("NODEDEV_DEBUG").output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let count: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("libvirt conformance checks: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count printed:\n{stdout}{stderr}"));
    assert!(o.status.success() && stdout.contains(" 0 failed"), "libvirt conformance failed:\n{stdout}{stderr}");
    assert!(count >= 229, "only {count} conformance checks ran:\n{stdout}");
    println!("{}", stdout.trim());
}
