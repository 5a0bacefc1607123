//! Build script:
//! 1. Export control of the shared library: the version script
//!    src/capi/nodedev.syms and the soname libnodedev.so.0 (the per-symbol
//!    version comes from the `.symver` directives in src/capi/mod.rs).
//! 2. A filled, "uninstalled" copy of pkgconfig/nodedev.pc.in in OUT_DIR,
//!    pointing at this build's library directory and at include/, for the
//!    tests (and for trying the library without installing it).
//! 3. The C programs capi-tests/*.c compiled to object files with the cc
//!    crate against include/nodedev.h (-Wall -Wextra -Werror). They cannot be
//!    linked here: libnodedev.so does not exist before this crate is built.
//!    tests/capi.rs links them against the built library through pkg-config
//!    and runs them. A missing C compiler only warns, so that building the
//!    library itself never needs one; tests/capi.rs then fails and says why.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/capi/nodedev.syms");
    println!("cargo:rerun-if-changed=pkgconfig/nodedev.pc.in");
    println!("cargo:rerun-if-changed=include/nodedev.h");
    println!("cargo:rerun-if-changed=capi-tests");

    // Without the C ABI (feature `capi` off: a Rust-only user) there are no
    // symbols to version and no C programs to test.
    let capi = env::var_os("CARGO_FEATURE_CAPI").is_some();
    if capi && env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let syms = root.join("src/capi/nodedev.syms");
        println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={}", syms.display());
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnodedev.so.0");
    }

    uninstalled_pkg_config(&root, &out);
    if capi {
        compile_c_tests(&root, &out);
    }
}

/// OUT_DIR is TARGET/PROFILE/build/nodedev-HASH/out; the libraries land in TARGET/PROFILE.
fn library_dir(out: &Path) -> PathBuf {
    out.ancestors().nth(3).expect("OUT_DIR has the usual shape").to_path_buf()
}

fn uninstalled_pkg_config(root: &Path, out: &Path) {
    let template = fs::read_to_string(root.join("pkgconfig/nodedev.pc.in")).expect("pkgconfig/nodedev.pc.in");
    let libdir = library_dir(out);
    let filled = template
        .replace("@PREFIX@", &libdir.display().to_string())
        .replace("@LIBDIR@", &libdir.display().to_string())
        .replace("@INCLUDEDIR@", &root.join("include").display().to_string())
        .replace("@VERSION@", &env::var("CARGO_PKG_VERSION").unwrap());
    let dir = out.join("pkgconfig");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("nodedev.pc"), filled).unwrap();
    println!("cargo:rustc-env=NODEDEV_UNINSTALLED_PKG_CONFIG_PATH={}", dir.display());
    println!("cargo:rustc-env=NODEDEV_LIBRARY_DIR={}", libdir.display());
}

/// Writes OUT_DIR/capi-tests.list: one line per program, `NAME<TAB>OBJECT`,
/// or `NAME<TAB>!ERROR` when it did not compile.
fn compile_c_tests(root: &Path, out: &Path) {
    let dir = root.join("capi-tests");
    let mut sources: Vec<PathBuf> =
        fs::read_dir(&dir).map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
    sources.retain(|p| p.extension().is_some_and(|e| e == "c") && p.is_file());
    sources.sort();

    let mut list = String::new();
    for src in &sources {
        let name = src.file_stem().unwrap().to_string_lossy().to_string();
        let obj_dir = out.join("capi-tests").join(&name);
        fs::create_dir_all(&obj_dir).unwrap();
        let result = cc::Build::new()
            .file(src)
            .include(root.join("include"))
            .include(&dir)
            .out_dir(&obj_dir)
            .cargo_metadata(false)
            .warnings(true)
            .extra_warnings(true)
            .warnings_into_errors(true)
            .flag("-std=gnu11")
            .flag("-pthread")
            .try_compile_intermediates();
        match result {
            Ok(objects) if objects.len() == 1 => {
                let _ = writeln!(list, "{name}\t{}", objects[0].display());
            }
            Ok(objects) => {
                let _ = writeln!(list, "{name}\t!expected one object, got {objects:?}");
            }
            Err(e) => {
                let msg = e.to_string().replace(['\n', '\t'], " ");
                println!("cargo:warning=capi-tests/{name}.c did not compile ({msg}); tests/capi.rs will fail");
                let _ = writeln!(list, "{name}\t!{msg}");
            }
        }
    }
    let list_path = out.join("capi-tests.list");
    fs::write(&list_path, list).unwrap();
    println!("cargo:rustc-env=NODEDEV_CAPI_OBJS={}", list_path.display());
}
