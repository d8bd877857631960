//! The catalog as compiled by build.rs, checked against catalog/ and the seeds.

use cts_audit::catalog::{self, Category, Severity};
use std::collections::HashSet;
use std::path::Path;

/// Rows read straight from catalog/*.csv, independent of build.rs.
fn csv_rows() -> Vec<csv::StringRecord> {
    let mut files: Vec<_> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
            .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            csv::Reader::from_path(f)
                .unwrap()
                .into_records()
                .map(|r| r.unwrap())
        })
        .collect()
}

#[test]
fn every_row_round_trips_through_the_map() {
    let rows = csv_rows();
    assert_eq!(rows.len(), catalog::entries().len());
    for row in &rows {
        let (name, resource_type, operation) = (&row[0], &row[1], &row[2]);
        let found = catalog::lookup(name)
            .iter()
            .find(|e| e.resource_type == resource_type && e.operation == operation);
        let entry = found
            .unwrap_or_else(|| panic!("{name}/{resource_type}/{operation} missing from the map"));
        assert_eq!(entry.category.as_str(), &row[3]);
        assert_eq!(entry.severity.as_str(), &row[4]);
        assert_eq!(entry.activity.as_str(), &row[6]);
        assert_eq!(entry.source, &row[7]);
        assert_eq!(catalog::by_id(entry.id), Some(entry));
        assert_eq!(
            catalog::lookup_for(name, resource_type).map(|e| e.trace_name),
            Some(name)
        );
    }
}

#[test]
fn no_duplicate_rows() {
    let mut seen = HashSet::new();
    for entry in catalog::entries() {
        assert!(
            seen.insert((entry.trace_name, entry.resource_type, entry.operation)),
            "duplicate {entry:?}"
        );
    }
}

#[test]
fn names_with_several_entries_keep_them_all() {
    let unsubscribe = catalog::lookup("unsubscribeResource");
    let types: Vec<_> = unsubscribe.iter().map(|e| e.resource_type).collect();
    assert_eq!(types, ["cloudresouce", "subscription"]);
    assert_eq!(
        catalog::lookup_for("unsubscribeResource", "subscription")
            .unwrap()
            .operation,
        "Unsubscribing from resources"
    );
    assert_eq!(
        catalog::lookup_for("unsubscribeResource", "cloudresouce")
            .unwrap()
            .operation,
        "Unsubscription"
    );

    let bank: Vec<_> = catalog::lookup("queryCustomerBankSubAccount")
        .iter()
        .map(|e| e.operation)
        .collect();
    assert_eq!(
        bank,
        ["Querying bank sub-accounts", "Querying the top-up account"]
    );
}

#[test]
fn misses_are_empty() {
    assert!(catalog::lookup("").is_empty());
    assert!(
        catalog::lookup("payorder").is_empty(),
        "lookups are case-sensitive, as trace names are"
    );
    assert!(catalog::lookup_for("payOrder", "bill").is_none());
}

#[test]
fn documented_typos_are_kept() {
    assert!(!catalog::lookup("queryHCDPGuranteedDetail").is_empty());
    assert!(!catalog::lookup("exportResDeatilLatelyBill").is_empty());
    assert!(catalog::lookup_for("payOrder", "cloudresouce").is_some());
}

#[test]
fn severity_policy_holds() {
    for entry in catalog::entries() {
        let floor = match entry.category {
            Category::Read => {
                assert!(
                    entry.severity <= Severity::Info,
                    "a read is flagged: {entry:?}"
                );
                continue;
            }
            Category::Export => Severity::Low,
            Category::PaymentMethod
            | Category::Payment
            | Category::Funds
            | Category::Destruction => Severity::Medium,
            _ => continue,
        };
        assert!(
            entry.severity >= floor,
            "{} is below {floor}",
            entry.trace_name
        );
    }
    for name in [
        "freezeResource",
        "cancelAutoRenew",
        "changeBalanceAlert",
        "updateCustomerDeductConfig",
        "setRenewalDeductionDate",
        "unsubscribeResources",
    ] {
        assert!(
            catalog::lookup(name)
                .iter()
                .all(|e| e.severity >= Severity::Medium),
            "{name}"
        );
    }
    assert_eq!(
        catalog::lookup("deleteTracker")[0].severity,
        Severity::Critical
    );
}

/// Reads a seed table's rows as (trace name, resource type, operation).
fn seed_rows() -> Option<Vec<(String, String, String, &'static str)>> {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seeds");
    let table = std::fs::read_to_string(seeds.join("000_ac01543e3d189405.txt")).ok()?;
    let lines: Vec<&str> = table.lines().map(str::trim).collect();
    let start = lines.iter().position(|l| *l == "Trace Name")? + 1;
    let body: Vec<&str> = lines[start..]
        .iter()
        .copied()
        .filter(|l| !l.is_empty())
        .collect();
    let mut rows: Vec<_> = body
        .chunks(3)
        .map(|c| {
            (
                c[2].to_owned(),
                c[1].to_owned(),
                c[0].to_owned(),
                "000_ac01543e3d189405.txt",
            )
        })
        .collect();

    let guide = std::fs::read_to_string(seeds.join("003_c3577146ff0bddf1.txt")).ok()?;
    let section = &guide[guide.find("**Table 10-1**")?..guide.find("## 10.2")?];
    rows.extend(section.lines().filter_map(|line| {
        let cells: Vec<&str> = line.split('\t').map(str::trim).collect();
        (cells.len() == 3 && cells[0] != "Operation").then(|| {
            (
                cells[2].to_owned(),
                cells[1].to_owned(),
                cells[0].to_owned(),
                "003_c3577146ff0bddf1.txt",
            )
        })
    }));
    Some(rows)
}

#[test]
fn all_186_seed_rows_are_present() {
    let Some(rows) = seed_rows() else {
        eprintln!("../shared/seeds not beside the repo; skipping the seed comparison");
        return;
    };
    assert_eq!(rows.len(), 186);
    for (name, resource_type, operation, seed) in &rows {
        let entry = catalog::lookup(name)
            .iter()
            .find(|e| e.resource_type == resource_type && e.operation == operation);
        let entry =
            entry.unwrap_or_else(|| panic!("seed row {name}/{resource_type}/{operation} missing"));
        assert!(
            entry.source.starts_with(seed),
            "{name}: source {} should name {seed}",
            entry.source
        );
    }
}
