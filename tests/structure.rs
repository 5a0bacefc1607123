//! The shape of the code, checked from its text so that it stays as designed:
//! - `src/capi/` is a stack (issue 14): each module imports only modules of
//!   its own layer or below (`nodedev::capi::LAYERS`), and no import loop
//!   exists among its modules;
//! - the `Sysfs` trait has no default method, so no backend silently answers
//!   "nothing" to a question another backend answers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The text of a module without its `#[cfg(test)] mod tests` and with line
/// comments removed (doc comments name modules without importing them).
fn code_of(src: &str) -> String {
    let end = src.find("#[cfg(test)]\nmod tests").unwrap_or(src.len());
    src[..end].lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

fn ident_at(s: &str) -> &str {
    let n = s.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
    &s[..n]
}

/// The `capi` modules a module's code names: `super::NAME`,
/// `crate::capi::NAME`, and each first name of a group `super::{a, b::c}`.
fn imports(src: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let code = code_of(src);
    let mut out = BTreeSet::new();
    for prefix in ["super::", "crate::capi::"] {
        let mut rest = code.as_str();
        while let Some(i) = rest.find(prefix) {
            rest = &rest[i + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let close = group.find('}').unwrap_or(group.len());
                for item in group[..close].split(',') {
                    out.insert(ident_at(item.trim()).to_string());
                }
            } else {
                out.insert(ident_at(rest).to_string());
            }
        }
    }
    out.retain(|m| modules.contains(m));
    out
}

/// Every breach of the stack in `sources` (module name -> text): an import of
/// a higher layer, or a loop. Empty when the modules form a stack.
fn breaches(sources: &BTreeMap<String, String>, layers: &[&[&str]]) -> Vec<String> {
    let names: BTreeSet<String> = sources.keys().cloned().collect();
    let layer = |m: &str| layers.iter().position(|l| l.contains(&m)).unwrap_or(layers.len());
    let graph: BTreeMap<&str, BTreeSet<String>> =
        sources.iter().map(|(m, src)| (m.as_str(), imports(src, &names))).collect();
    let mut out = Vec::new();
    for (m, deps) in &graph {
        for d in deps {
            if d == m {
                continue;
            }
            if layer(d) > layer(m) {
                out.push(format!("{m} (layer {}) imports {d}, a higher layer ({})", layer(m), layer(d)));
            }
        }
    }
    // Loops: a depth-first walk that meets a module still on its path.
    fn walk<'a>(
        m: &'a str,
        graph: &'a BTreeMap<&'a str, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        out: &mut Vec<String>,
    ) {
        if let Some(i) = path.iter().position(|p| *p == m) {
            out.push(format!("import loop: {} -> {m}", path[i..].join(" -> ")));
            return;
        }
        if !done.insert(m) {
            return;
        }
        path.push(m);
        for d in graph.get(m).into_iter().flatten() {
            if d != m {
                walk(d.as_str(), graph, path, done, out);
            }
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        walk(m, &graph, &mut Vec::new(), &mut done, &mut out);
    }
    out
}

fn capi_sources() -> BTreeMap<String, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/capi");
    let mut out = BTreeMap::new();
    for e in fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rs") && p.file_stem().unwrap() != "mod" {
            let name = p.file_stem().unwrap().to_str().unwrap().to_string();
            out.insert(name, fs::read_to_string(&p).unwrap());
        }
    }
    out
}

#[test]
fn capi_is_a_stack_without_import_loops() {
    let sources = capi_sources();
    for layer in nodedev::capi::LAYERS {
        for m in *layer {
            assert!(sources.contains_key(*m), "capi::LAYERS names {m}, which is no file of src/capi");
        }
    }
    let found = breaches(&sources, nodedev::capi::LAYERS);
    assert!(found.is_empty(), "src/capi is not a stack:\n{}", found.join("\n"));
    // The bottom layer imports nothing of capi at all.
    let names: BTreeSet<String> = sources.keys().cloned().collect();
    for m in nodedev::capi::LAYERS[0] {
        let deps = imports(&sources[*m], &names);
        assert!(deps.is_empty(), "{m} is a leaf but imports {deps:?}");
    }
}

#[test]
fn the_stack_check_sees_loops_and_upward_imports() {
    let src = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(m, s)| (m.to_string(), s.to_string())).collect()
    };
    let layers: &[&[&str]] = &[&["low"], &["mid"]];
    // A loop between two top-layer modules, one through a grouped import.
    let looped = src(&[
        ("low", "use std::ffi::c_int;\n"),
        ("mid", "use super::low::X;\n"),
        ("a", "use super::{b, mid::Y};\n"),
        ("b", "fn f() { super::a::g() }\n"),
    ]);
    let found = breaches(&looped, layers);
    assert!(found.iter().any(|f| f.contains("import loop") && f.contains('a') && f.contains('b')), "{found:?}");
    // An import of a higher layer, spelled through crate::capi.
    let upward = src(&[("low", "use crate::capi::mid::Y;\n"), ("mid", "")]);
    assert_eq!(breaches(&upward, layers), ["low (layer 0) imports mid, a higher layer (1)"]);
    // Comments and tests do not count.
    let quiet = src(&[
        ("low", "// see super::mid\n#[cfg(test)]\nmod tests {\n    use crate::capi::mid::Y;\n}\n"),
        ("mid", "use super::low::X;\n"),
    ]);
    assert!(breaches(&quiet, layers).is_empty());
}

/// The trait's methods that have a body (a default).
fn default_methods(src: &str, trait_head: &str) -> Vec<String> {
    let code = code_of(src);
    let start = code.find(trait_head).unwrap_or_else(|| panic!("no `{trait_head}`")) + trait_head.len();
    let body_start = start + code[start..].find('{').unwrap() + 1;
    // The trait body: up to the brace that closes it.
    let mut depth = 1;
    let mut end = body_start;
    for (i, c) in code[body_start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            end = body_start + i;
            break;
        }
    }
    let body = &code[body_start..end];
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find("fn ") {
        rest = &rest[i + 3..];
        let name = ident_at(rest).to_string();
        let semi = rest.find(';').unwrap_or(usize::MAX);
        let brace = rest.find('{').unwrap_or(usize::MAX);
        if brace < semi {
            out.push(name);
        }
    }
    out
}

#[test]
fn the_sysfs_trait_has_no_default_method() {
    let src = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sysfs/mod.rs")).unwrap();
    let defaults = default_methods(&src, "pub trait Sysfs");
    assert!(
        defaults.is_empty(),
        "Sysfs methods with a default body: {defaults:?}: every backend (host.rs, sim, trace.rs and the \
         test wrappers) must answer them itself"
    );
    // The check sees a default when there is one.
    let with_default =
        "pub trait Sysfs: Send {\n    fn a(&self) -> u8;\n    fn b(&self) -> Option<u8> {\n        None\n    }\n}\n";
    assert_eq!(default_methods(with_default, "pub trait Sysfs"), ["b"]);
}
