//! Compiles catalog/*.csv into a phf map from trace name to catalog entries.
//!
//! A malformed row stops the build with `catalog/FILE:LINE: reason`.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[allow(dead_code)]
#[path = "src/catalog/vocab.rs"]
mod vocab;

#[allow(dead_code)]
#[path = "src/catalog/source.rs"]
mod source;

fn fail(file: &Path, line: u64, reason: &str) -> ! {
    eprintln!("error: {}:{}: {}", file.display(), line, reason);
    std::process::exit(1);
}

fn entry_literal(id: usize, row: &source::Row) -> String {
    format!(
        "Entry {{ id: {id}, trace_name: {:?}, resource_type: {:?}, operation: {:?}, category: Category::{:?}, severity: Severity::{:?}, scope: Scope::{:?}, activity: Activity::{:?}, source: {:?} }}",
        row.trace_name, row.resource_type, row.operation, row.category, row.severity, row.scope, row.activity, row.source
    )
}

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dir = manifest.join("catalog");
    println!("cargo::rerun-if-changed=catalog");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
            .collect(),
        Err(err) => fail(
            &dir,
            0,
            &format!("cannot read the catalog directory: {err}"),
        ),
    };
    files.sort();

    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    for file in &files {
        println!("cargo::rerun-if-changed={}", file.display());
        let shown = file.strip_prefix(&manifest).unwrap_or(file);
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|err| fail(shown, 0, &format!("cannot read: {err}")));
        let parsed = source::parse(&text).unwrap_or_else(|err| fail(shown, err.line, &err.reason));
        for (i, row) in parsed.into_iter().enumerate() {
            if !seen.insert((
                row.trace_name.clone(),
                row.resource_type.clone(),
                row.operation.clone(),
            )) {
                fail(
                    shown,
                    i as u64 + 2,
                    &format!(
                        "duplicate row ({}, {}, {})",
                        row.trace_name, row.resource_type, row.operation
                    ),
                );
            }
            rows.push(row);
        }
    }
    if rows.len() > usize::from(u16::MAX) {
        fail(&dir, 0, "more entries than an entry id (u16) can number");
    }

    // Entries of one name keep catalog order, so lookups are deterministic.
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (id, row) in rows.iter().enumerate() {
        by_name.entry(&row.trace_name).or_default().push(id);
    }

    let mut code = String::new();
    writeln!(
        code,
        "/// Every catalog entry, in catalog order (files sorted by name, rows in file order)."
    )
    .unwrap();
    writeln!(
        code,
        "pub(crate) static ENTRIES: [Entry; {}] = [",
        rows.len()
    )
    .unwrap();
    for (id, row) in rows.iter().enumerate() {
        writeln!(code, "    {},", entry_literal(id, row)).unwrap();
    }
    writeln!(code, "];\n").unwrap();

    let mut map = phf_codegen::Map::new();
    for (name, ids) in &by_name {
        let slice: Vec<String> = ids.iter().map(|&id| entry_literal(id, &rows[id])).collect();
        map.entry(*name, &format!("&[{}]", slice.join(", ")));
    }
    writeln!(code, "/// Trace name to its entries.").unwrap();
    writeln!(
        code,
        "pub(crate) static BY_NAME: phf::Map<&'static str, &'static [Entry]> = {};",
        map.build()
    )
    .unwrap();

    let mut resource_types = phf_codegen::Set::new();
    let billing_types: std::collections::BTreeSet<&str> = rows
        .iter()
        .filter(|r| r.scope == vocab::Scope::Billing)
        .map(|r| r.resource_type.as_str())
        .collect();
    for resource_type in billing_types {
        resource_types.entry(resource_type);
    }
    writeln!(
        code,
        "/// Resource types documented for billing-scope entries."
    )
    .unwrap();
    writeln!(
        code,
        "pub(crate) static BILLING_RESOURCE_TYPES: phf::Set<&'static str> = {};",
        resource_types.build()
    )
    .unwrap();

    write_error_codes(&manifest, &mut code);

    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("catalog.rs");
    if let Err(err) = std::fs::write(&out, code) {
        fail(&out, 0, &format!("cannot write generated code: {err}"));
    }
}

/// Compiles catalog/errors/*.csv (`code,http,meaning,source`) into a phf map.
fn write_error_codes(manifest: &Path, code: &mut String) {
    let dir = manifest.join("catalog/errors");
    println!("cargo::rerun-if-changed=catalog/errors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "csv"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut map = phf_codegen::Map::new();
    let mut seen = HashSet::new();
    for file in &files {
        let shown = file.strip_prefix(manifest).unwrap_or(file);
        let mut reader = csv::Reader::from_path(file)
            .unwrap_or_else(|err| fail(shown, 0, &format!("cannot read: {err}")));
        for record in reader.records() {
            let record = record.unwrap_or_else(|err| {
                fail(
                    shown,
                    err.position().map_or(0, |p| p.line()),
                    &format!("malformed row: {err}"),
                )
            });
            let line = record.position().map_or(0, |p| p.line());
            let (Some(name), Some(http), Some(meaning)) =
                (record.get(0), record.get(1), record.get(2))
            else {
                fail(shown, line, "expected code,http,meaning,source");
            };
            let http: u16 = http.parse().unwrap_or_else(|_| {
                fail(
                    shown,
                    line,
                    &format!("HTTP status {http:?} is not a number"),
                )
            });
            if !seen.insert(name.to_owned()) {
                fail(shown, line, &format!("duplicate error code {name}"));
            }
            map.entry(
                name.to_owned(),
                &format!("ErrorCode {{ code: {name:?}, http: {http}, meaning: {meaning:?} }}"),
            );
        }
    }
    writeln!(code, "/// Documented service error codes (CBC.*).").unwrap();
    writeln!(
        code,
        "pub(crate) static ERROR_CODES: phf::Map<&'static str, ErrorCode> = {};",
        map.build()
    )
    .unwrap();
}
