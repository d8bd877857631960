//! `cts-audit catalog`, driven through the built binary.

use assert_cmd::Command;
use predicates::prelude::*;

fn cts_audit() -> Command {
    Command::cargo_bin("cts-audit").unwrap()
}

#[test]
fn json_lists_every_entry_with_its_fields() {
    let out = cts_audit()
        .args(["catalog", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(entries.len(), cts_audit::catalog::entries().len());
    assert!(entries.len() >= 186);
    let pay = entries
        .iter()
        .find(|e| e["trace_name"] == "payOrder")
        .unwrap();
    assert_eq!(pay["operation"], "Payment");
    assert_eq!(pay["resource_type"], "cloudresouce");
    assert_eq!(pay["category"], "payment");
    assert_eq!(pay["severity"], "medium");
    assert_eq!(pay["source"], "000_ac01543e3d189405.txt");
}

#[test]
fn a_text_filter_narrows_the_list() {
    let out = cts_audit()
        .args(["catalog", "export", "--format", "csv"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert!(rows.len() >= 50);
    assert!(rows.len() < cts_audit::catalog::entries().len());
    assert!(rows
        .iter()
        .all(|r| r.iter().any(|f| f.to_ascii_lowercase().contains("export"))));
}

#[test]
fn one_name_shows_all_its_entries() {
    cts_audit()
        .args(["catalog", "--name", "unsubscribeResource"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("cloudresouce")
                .and(predicate::str::contains("subscription"))
                .and(predicate::str::contains("2 entries")),
        );
}

#[test]
fn an_unknown_name_suggests_close_matches_and_fails() {
    cts_audit()
        .args(["catalog", "--name", "payorder"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            predicate::str::contains("no catalog entry is named \"payorder\"")
                .and(predicate::str::contains("payOrder")),
        );
}

#[test]
fn a_bad_format_is_a_usage_error() {
    cts_audit()
        .args(["catalog", "--format", "xml"])
        .assert()
        .code(2);
}
