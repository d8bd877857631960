//! Summaries of verdicts with polars: who did what, how often, how bad.
//!
//! Built behind the default-on `summary` feature, so plugins that use the
//! lean core never compile polars.
//!
//! ```
//! use cts_audit::summary::{summarize, SummaryRecord};
//! let records = vec![
//!     SummaryRecord { user: Some("alice".into()), category: Some("payment".into()), trace_name: Some("payOrder".into()),
//!                     severity: "medium".into(), failed: false, time_ms: Some(1_718_777_931_170) },
//!     SummaryRecord { user: Some("alice".into()), category: Some("payment".into()), trace_name: Some("payOrder".into()),
//!                     severity: "high".into(), failed: true, time_ms: Some(1_718_777_991_170) },
//! ];
//! let table = summarize(&records, &["user", "category"]).unwrap();
//! assert_eq!(table.height(), 1);
//! assert_eq!(table.column("records").unwrap().u32().unwrap().get(0), Some(2));
//! ```

use crate::catalog::Severity;
use polars::prelude::*;

/// The columns a summary can group by.
pub const GROUP_COLUMNS: &[&str] = &["user", "category", "trace_name", "severity"];

/// One record, as much as a summary needs of it (the JSONL record's fields).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SummaryRecord {
    /// Who acted.
    pub user: Option<String>,
    /// Catalog category.
    pub category: Option<String>,
    /// Operation name.
    pub trace_name: Option<String>,
    /// Severity name.
    pub severity: String,
    /// The attempt failed.
    pub failed: bool,
    /// Epoch milliseconds.
    #[serde(default)]
    pub time_ms: Option<i64>,
}

fn severity_rank(name: &str) -> u32 {
    Severity::parse(name).map_or(0, |s| s as u32)
}

/// The severity name of a rank column, as an expression.
fn severity_name(rank: Expr) -> Expr {
    Severity::ALL
        .iter()
        .fold(lit("none"), |otherwise, severity| {
            when(rank.clone().eq(lit(*severity as u32)))
                .then(lit(severity.as_str()))
                .otherwise(otherwise)
        })
}

/// Groups `records` by `by` (any of [`GROUP_COLUMNS`]) and counts records,
/// failures and distinct operations, with the highest severity and the first
/// and last time; the worst groups first.
pub fn summarize(records: &[SummaryRecord], by: &[&str]) -> PolarsResult<DataFrame> {
    if let Some(bad) = by.iter().find(|c| !GROUP_COLUMNS.contains(c)) {
        polars_bail!(ColumnNotFound: "cannot group by {bad}; use {}", GROUP_COLUMNS.join(", "));
    }
    let text = |f: fn(&SummaryRecord) -> Option<&str>| records.iter().map(f).collect::<Vec<_>>();
    let frame = df!(
        "user" => text(|r| r.user.as_deref()),
        "category" => text(|r| r.category.as_deref()),
        "trace_name" => text(|r| r.trace_name.as_deref()),
        "severity" => records.iter().map(|r| r.severity.as_str()).collect::<Vec<_>>(),
        "severity_rank" => records.iter().map(|r| severity_rank(&r.severity)).collect::<Vec<_>>(),
        "failed" => records.iter().map(|r| u32::from(r.failed)).collect::<Vec<_>>(),
        "time_ms" => records.iter().map(|r| r.time_ms).collect::<Vec<_>>(),
    )?;
    let keys: Vec<Expr> = by.iter().map(|c| col(*c)).collect();
    let mut sort_by: Vec<Expr> = vec![col("worst_rank"), col("records")];
    sort_by.extend(keys.iter().cloned());
    let descending: Vec<bool> = sort_by.iter().enumerate().map(|(i, _)| i < 2).collect();
    let datetime = DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC));
    frame
        .lazy()
        .group_by(keys)
        .agg([
            len().alias("records"),
            col("failed").sum().alias("failed"),
            col("trace_name").n_unique().alias("operations"),
            col("severity_rank").max().alias("worst_rank"),
            col("time_ms")
                .min()
                .cast(datetime.clone())
                .alias("first_utc"),
            col("time_ms").max().cast(datetime).alias("last_utc"),
        ])
        .sort_by_exprs(
            sort_by,
            SortMultipleOptions::default()
                .with_order_descending_multi(descending)
                .with_nulls_last(true),
        )
        .with_column(severity_name(col("worst_rank")).alias("worst"))
        .drop(cols(["worst_rank"]))
        .collect()
}
