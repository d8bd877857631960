//! The summary folds records into groups as they come; grouping the
//! records themselves with polars must give the same table.

#![cfg(feature = "summary")]

use cts_audit::summary::{Summary, SummaryRecord, GROUP_COLUMNS};
use polars::prelude::*;
use proptest::prelude::*;

/// The summary computed the direct way: one row per record, grouped.
fn grouped_per_record(records: &[SummaryRecord], by: &[&str]) -> DataFrame {
    let rank = |s: &str| cts_audit::catalog::Severity::parse(s).map_or(0, |s| s as u32);
    let frame = df!(
        "user" => records.iter().map(|r| r.user.as_deref()).collect::<Vec<_>>(),
        "category" => records.iter().map(|r| r.category.as_deref()).collect::<Vec<_>>(),
        "trace_name" => records.iter().map(|r| r.trace_name.as_deref()).collect::<Vec<_>>(),
        "severity" => records.iter().map(|r| r.severity.as_str()).collect::<Vec<_>>(),
        "rank" => records.iter().map(|r| rank(&r.severity)).collect::<Vec<_>>(),
        "failed" => records.iter().map(|r| u32::from(r.failed)).collect::<Vec<_>>(),
        "time_ms" => records.iter().map(|r| r.time_ms).collect::<Vec<_>>(),
    )
    .unwrap();
    let datetime = DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC));
    frame
        .lazy()
        .group_by(by.iter().map(|c| col(*c)).collect::<Vec<_>>())
        .agg([
            len().alias("records"),
            col("failed").sum().alias("failed"),
            col("trace_name").n_unique().alias("operations"),
            col("rank").max().alias("rank"),
            col("time_ms")
                .min()
                .cast(datetime.clone())
                .alias("first_utc"),
            col("time_ms").max().cast(datetime).alias("last_utc"),
        ])
        .collect()
        .unwrap()
}

/// Each row of a frame as text, sorted, for a comparison that ignores order
/// and the way the worst severity is spelled.
fn rows(frame: &DataFrame, columns: &[&str]) -> Vec<String> {
    let mut rows: Vec<String> = (0..frame.height())
        .map(|i| {
            columns
                .iter()
                .map(|c| format!("{}", frame.column(c).unwrap().get(i).unwrap()))
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect();
    rows.sort();
    rows
}

fn record() -> impl Strategy<Value = SummaryRecord> {
    // Few distinct values, so groups fill; names that could confuse a key
    // made by joining fields.
    let text = prop::option::of(prop::sample::select(vec![
        "alice", "bob", "-", "3:abc", "", "\0", "a:b",
    ]));
    let severity = prop::sample::select(vec!["none", "info", "low", "medium", "high", "critical"]);
    let time = prop::option::of(1_700_000_000_000i64..1_700_000_100_000);
    (
        text.clone(),
        text.clone(),
        text,
        severity,
        any::<bool>(),
        time,
    )
        .prop_map(
            |(user, category, trace_name, severity, failed, time_ms)| SummaryRecord {
                user: user.map(str::to_owned),
                category: category.map(str::to_owned),
                trace_name: trace_name.map(str::to_owned),
                severity: severity.to_owned(),
                failed,
                time_ms,
                money: Vec::new(),
            },
        )
}

proptest! {
    #[test]
    fn folded_groups_match_grouping_every_record(
        records in prop::collection::vec(record(), 0..200),
        by_mask in 1usize..16,
    ) {
        let by: Vec<&str> = GROUP_COLUMNS
            .iter()
            .enumerate()
            .filter(|(i, _)| by_mask & (1 << i) != 0)
            .map(|(_, c)| *c)
            .collect();
        let mut summary = Summary::default();
        for record in &records {
            summary.add(record);
        }
        prop_assert_eq!(summary.records(), records.len() as u64);
        let folded = summary.table(&by).unwrap();
        let direct = grouped_per_record(&records, &by);
        let mut columns = by.clone();
        columns.extend(["records", "failed", "operations", "first_utc", "last_utc"]);
        prop_assert_eq!(rows(&folded, &columns), rows(&direct, &columns));
        // The worst severity, by its name.
        let worst: Vec<String> = rows(&folded, &[by.as_slice(), &["worst"]].concat());
        let names = ["none", "info", "low", "medium", "high", "critical"];
        let direct_worst: Vec<String> = {
            let mut out: Vec<String> = (0..direct.height())
                .map(|i| {
                    let mut cells: Vec<String> = by
                        .iter()
                        .map(|c| format!("{}", direct.column(c).unwrap().get(i).unwrap()))
                        .collect();
                    let rank = direct.column("rank").unwrap().u32().unwrap().get(i).unwrap();
                    let name = names
                        .iter()
                        .find(|n| cts_audit::catalog::Severity::parse(n).map_or(0, |s| s as u32) == rank)
                        .unwrap();
                    cells.push(format!("\"{name}\""));
                    cells.join(" | ")
                })
                .collect();
            out.sort();
            out
        };
        prop_assert_eq!(worst, direct_worst);
    }
}
