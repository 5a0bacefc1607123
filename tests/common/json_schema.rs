//! A checker for the part of JSON Schema (draft 2020-12) that nodedev's
//! schemas use: doc/nodedev-json.schema.json (tests/cli.rs) and the
//! Kubernetes ResourceSlice schema of tests/data/k8s (tests/dra.rs). A
//! keyword it does not know fails the test instead of passing unchecked.
#![allow(dead_code)] // each test file uses its part

use serde_json::Value;

/// `pattern`, for the expressions the schema uses: anchored (^...$)
/// sequences of literals, `\.` and classes like `[0-9a-f]`, each optionally
/// repeated `{n}` or `{n,m}`. Anything else fails the test.
pub fn pattern_matches(pattern: &str, s: &str) -> bool {
    struct Atom {
        ranges: Vec<(char, char)>,
        min: usize,
        max: usize,
    }
    let body = pattern.strip_prefix('^').and_then(|p| p.strip_suffix('$')).expect("patterns are anchored");
    let mut atoms = Vec::new();
    let mut it = body.chars().peekable();
    while let Some(c) = it.next() {
        let ranges = match c {
            '[' => {
                let mut r = Vec::new();
                loop {
                    match it.next().expect("unclosed [") {
                        ']' => break,
                        a if it.peek() == Some(&'-') => {
                            it.next();
                            r.push((a, it.next().expect("range end")));
                        }
                        a => r.push((a, a)),
                    }
                }
                r
            }
            '\\' => match it.next() {
                Some(e) if e.is_ascii_punctuation() => vec![(e, e)],
                other => panic!("unsupported escape \\{other:?} in {pattern}"),
            },
            '.' | '*' | '+' | '?' | '(' | ')' | '|' | '{' | '}' | '^' | '$' => {
                panic!("'{c}' in {pattern} is beyond this checker")
            }
            c => vec![(c, c)],
        };
        let (mut min, mut max) = (1, 1);
        if it.peek() == Some(&'{') {
            it.next();
            let count: String = it.by_ref().take_while(|c| *c != '}').collect();
            let (lo, hi) = count.split_once(',').unwrap_or((&count, &count));
            (min, max) = (lo.parse().unwrap(), hi.parse().unwrap());
        }
        atoms.push(Atom { ranges, min, max });
    }
    fn matches(atoms: &[Atom], s: &[char]) -> bool {
        let Some((a, rest)) = atoms.split_first() else { return s.is_empty() };
        let run = s.iter().take(a.max).take_while(|c| a.ranges.iter().any(|(lo, hi)| (lo..=hi).contains(c))).count();
        (a.min..=run).rev().any(|n| matches(rest, &s[n..]))
    }
    matches(&atoms, &s.chars().collect::<Vec<_>>())
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        _ => panic!("unknown type {t}"),
    }
}

/// Errors of `v` against `schema` (draft 2020-12 semantics for the keywords
/// below). A keyword this checker does not know fails the test, so the
/// schema cannot grow a rule that is silently not checked.
pub fn schema_errors(root: &Value, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    let rules = schema.as_object().unwrap_or_else(|| panic!("schema at {at} is not an object"));
    for (key, rule) in rules {
        match key.as_str() {
            "$schema" | "$id" | "title" | "description" | "$defs" | "default" => {}
            // Kubernetes' annotations for merges and list semantics: nothing to validate.
            k if k.starts_with("x-kubernetes-") => {}
            "format" => match rule.as_str().unwrap() {
                "int32" if v.as_i64().is_some_and(|x| i32::try_from(x).is_err()) => {
                    out.push(format!("{at}: {v} is not an int32"))
                }
                "int64" if v.is_u64() && v.as_i64().is_none() => out.push(format!("{at}: {v} is not an int64")),
                // Annotations only in draft 2020-12 (Time's date-time, FieldsV1's byte...).
                _ => {}
            },
            "$ref" => {
                let name = rule.as_str().and_then(|r| r.strip_prefix("#/$defs/")).expect("local $ref");
                let target = root["$defs"].get(name).unwrap_or_else(|| panic!("no $defs/{name}"));
                schema_errors(root, target, v, at, out);
            }
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap()).collect(),
                    _ => panic!("bad type at {at}"),
                };
                if !types.iter().any(|t| has_type(v, t)) {
                    out.push(format!("{at}: {v} is not of type {types:?}"));
                }
            }
            "const" if v != rule => out.push(format!("{at}: {v} is not {rule}")),
            "enum" if !rule.as_array().unwrap().contains(v) => out.push(format!("{at}: {v} is not one of {rule}")),
            "const" | "enum" => {}
            "required" => {
                if let Some(obj) = v.as_object() {
                    for name in rule.as_array().unwrap().iter().map(|n| n.as_str().unwrap()) {
                        if !obj.contains_key(name) {
                            out.push(format!("{at}: missing {name}"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(obj) = v.as_object() {
                    for (name, sub) in rule.as_object().unwrap() {
                        if let Some(x) = obj.get(name) {
                            schema_errors(root, sub, x, &format!("{at}/{name}"), out);
                        }
                    }
                }
            }
            "additionalProperties" => {
                let known = rules.get("properties").and_then(Value::as_object);
                for (name, x) in v.as_object().into_iter().flatten() {
                    if known.is_some_and(|k| k.contains_key(name)) {
                        continue;
                    }
                    match rule {
                        Value::Bool(false) => out.push(format!("{at}: unexpected property {name}")),
                        Value::Object(_) => schema_errors(root, rule, x, &format!("{at}/{name}"), out),
                        _ => panic!("additionalProperties at {at}: false or a schema"),
                    }
                }
            }
            "items" => {
                for (i, x) in v.as_array().into_iter().flatten().enumerate() {
                    schema_errors(root, rule, x, &format!("{at}[{i}]"), out);
                }
            }
            "minimum" => {
                if let (Some(x), Some(min)) = (v.as_f64(), rule.as_f64()) {
                    if x < min {
                        out.push(format!("{at}: {x} < {min}"));
                    }
                }
            }
            "pattern" => {
                if let Some(s) = v.as_str() {
                    if !pattern_matches(rule.as_str().unwrap(), s) {
                        out.push(format!("{at}: {s:?} does not match {rule}"));
                    }
                }
            }
            "oneOf" => {
                let results: Vec<Vec<String>> = rule
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|alt| {
                        let mut e = Vec::new();
                        schema_errors(root, alt, v, at, &mut e);
                        e
                    })
                    .collect();
                let passing = results.iter().filter(|e| e.is_empty()).count();
                if passing != 1 {
                    let why: Vec<String> = results.into_iter().flatten().collect();
                    out.push(format!("{at}: {passing} alternatives of oneOf match, not 1 ({})", why.join("; ")));
                }
            }
            other => panic!("schema keyword {other} (at {at}) is not supported by this checker"),
        }
    }
}
