//! Summaries of verdicts with polars: who did what, how often, how bad.
//!
//! Records are folded into groups as they come ([`Summary::add`]), so a
//! summary of any number of records takes memory for its distinct
//! (user, category, operation, severity) combinations only; polars then
//! groups those by the columns asked for ([`Summary::table`]).
//!
//! Built behind the default-on `summary` feature, so plugins that use the
//! lean core never compile polars.
//!
//! ```
//! use cts_audit::summary::{summarize, SummaryRecord};
//! let records = vec![
//!     SummaryRecord { user: Some("alice".into()), category: Some("payment".into()), trace_name: Some("payOrder".into()),
//!                     severity: "medium".into(), failed: false, time_ms: Some(1_718_777_931_170), money: vec![] },
//!     SummaryRecord { user: Some("alice".into()), category: Some("payment".into()), trace_name: Some("payOrder".into()),
//!                     severity: "high".into(), failed: true, time_ms: Some(1_718_777_991_170), money: vec![] },
//! ];
//! let table = summarize(&records, &["user", "category"]).unwrap();
//! assert_eq!(table.height(), 1);
//! assert_eq!(table.column("records").unwrap().u32().unwrap().get(0), Some(2));
//! ```

use crate::catalog::Severity;
use crate::verdict::Verdict;
use polars::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;

/// The columns a summary can group by.
///
/// ```
/// let error = cts_audit::summary::summarize(&[], &["colour"]).unwrap_err();
/// assert!(error.to_string().contains("cannot group by colour"));
/// ```
pub const GROUP_COLUMNS: &[&str] = &["user", "category", "trace_name", "severity"];

/// One record, as much as a summary needs of it. It reads from a JSONL
/// record of `cts-audit scan` (docs/OUTPUT.md), whose `time` is RFC 3339.
///
/// ```
/// use cts_audit::summary::SummaryRecord;
/// let line = r#"{"user":"alice","category":null,"trace_name":"listBills","severity":"info","failed":false,"time":"2024-06-19T06:18:51.170Z","rules":[]}"#;
/// let record: SummaryRecord = serde_json::from_str(line).unwrap();
/// assert_eq!(record.time_ms, Some(1_718_777_931_170));
/// ```
#[derive(Debug, Clone, Deserialize)]
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
    /// Epoch milliseconds (`time` in a JSONL record).
    #[serde(default, rename = "time", deserialize_with = "rfc3339_ms")]
    pub time_ms: Option<i64>,
    /// `scan --bills`: what the action cost, per currency (`cost` in a
    /// JSONL record); negative for money back.
    #[serde(default, rename = "cost", deserialize_with = "cost_amounts")]
    pub money: Vec<(String, Decimal)>,
}

impl SummaryRecord {
    /// What a summary reads of a verdict.
    ///
    /// ```
    /// use cts_audit::{analyze::Analyzer, summary::SummaryRecord};
    /// let verdict = Analyzer::default()
    ///     .analyze_str(r#"{"trace_name":"payOrder","service_type":"CBC","resource_type":"cloudresouce","time":1718777931170}"#)
    ///     .unwrap();
    /// let record = SummaryRecord::of(&verdict);
    /// assert_eq!((record.category.as_deref(), record.time_ms), (Some("payment"), Some(1_718_777_931_170)));
    /// ```
    pub fn of(verdict: &Verdict<'_>) -> SummaryRecord {
        SummaryRecord {
            user: verdict.user.as_deref().map(str::to_owned),
            category: verdict.category.map(|c| c.as_str().to_owned()),
            trace_name: verdict.trace_name.as_deref().map(str::to_owned),
            severity: verdict.severity.as_str().to_owned(),
            failed: verdict.failed,
            // As the JSON lines carry it: to the millisecond of its text.
            time_ms: verdict.time_ms,
            money: verdict.cost.as_deref().map_or_else(Vec::new, |cost| {
                cost.amounts().map(|(a, c)| (c.to_owned(), a)).collect()
            }),
        }
    }
}

/// An RFC 3339 time as epoch milliseconds; `None` when null or unreadable.
fn rfc3339_ms<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let text: Option<std::borrow::Cow<'de, str>> = Option::deserialize(deserializer)?;
    Ok(text
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.timestamp_millis()))
}

/// The amounts of a JSONL record's `cost` object: `amount` in `currency`,
/// and each of `other_currencies`.
fn cost_amounts<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(String, Decimal)>, D::Error> {
    #[derive(Deserialize)]
    struct Amount {
        amount: String,
        currency: Option<String>,
    }
    #[derive(Deserialize)]
    struct Cost {
        amount: String,
        currency: Option<String>,
        #[serde(default)]
        other_currencies: Vec<Amount>,
    }
    let Some(cost) = Option::<Cost>::deserialize(deserializer)? else {
        return Ok(Vec::new());
    };
    let first = Amount {
        amount: cost.amount,
        currency: cost.currency,
    };
    std::iter::once(first)
        .chain(cost.other_currencies)
        .filter_map(|a| Some((a.currency?, a.amount)))
        .map(|(currency, amount)| {
            crate::bills::parse_money(&amount)
                .map(|a| (currency, a))
                .map_err(serde::de::Error::custom)
        })
        .collect()
}

/// The records of one (user, category, operation, severity) combination.
#[derive(Debug, Clone)]
struct Group {
    user: Option<String>,
    category: Option<String>,
    trace_name: Option<String>,
    severity: String,
    records: u32,
    failed: u32,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
    /// Per currency: charges (positive) and refunds (negative).
    money: BTreeMap<String, (Decimal, Decimal)>,
}

/// Records folded into groups as they come; [`Summary::table`] groups them
/// further by any of [`GROUP_COLUMNS`].
///
/// ```
/// use cts_audit::summary::{Summary, SummaryRecord};
/// let mut summary = Summary::default();
/// for line in [
///     r#"{"user":"alice","category":"payment","trace_name":"payOrder","severity":"medium","failed":false,"time":"2024-06-19T06:18:51.170Z"}"#,
///     r#"{"user":"bob","category":"payment","trace_name":"payOrder","severity":"high","failed":true,"time":"2024-06-19T07:00:00.000Z"}"#,
/// ] {
///     summary.add(&serde_json::from_str::<SummaryRecord>(line).unwrap());
/// }
/// let table = summary.table(&["category"]).unwrap();
/// assert_eq!(summary.records(), 2);
/// assert_eq!(table.column("records").unwrap().u32().unwrap().get(0), Some(2));
/// assert_eq!(table.column("worst").unwrap().str().unwrap().get(0), Some("high"));
/// ```
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Groups by their four fields, in one string (see [`Summary::add`]).
    groups: HashMap<String, Group>,
    /// The key being built, kept to reuse its allocation.
    key: String,
    records: u64,
}

impl Summary {
    /// Counts one record in its group.
    ///
    /// ```
    /// use cts_audit::summary::{Summary, SummaryRecord};
    /// let record = SummaryRecord { user: None, category: None, trace_name: Some("payOrder".into()),
    ///     severity: "medium".into(), failed: true, time_ms: None, money: vec![] };
    /// let mut summary = Summary::default();
    /// summary.add(&record);
    /// summary.add(&record);
    /// let table = summary.table(&["trace_name"]).unwrap();
    /// assert_eq!(table.column("failed").unwrap().u32().unwrap().get(0), Some(2));
    /// ```
    pub fn add(&mut self, record: &SummaryRecord) {
        self.records += 1;
        // An unambiguous key: each field is `-` when absent, else its length,
        // `:` and its text; the severity ends it.
        self.key.clear();
        for field in [&record.user, &record.category, &record.trace_name] {
            match field {
                None => self.key.push('-'),
                Some(text) => {
                    // Writing into a String cannot fail.
                    let _ = write!(self.key, "{}:{text}", text.len());
                }
            }
        }
        self.key.push_str(&record.severity);
        let group = match self.groups.get_mut(self.key.as_str()) {
            Some(group) => group,
            None => self.groups.entry(self.key.clone()).or_insert(Group {
                user: record.user.clone(),
                category: record.category.clone(),
                trace_name: record.trace_name.clone(),
                severity: record.severity.clone(),
                records: 0,
                failed: 0,
                first_ms: None,
                last_ms: None,
                money: BTreeMap::new(),
            }),
        };
        group.records = group.records.saturating_add(1);
        group.failed = group.failed.saturating_add(u32::from(record.failed));
        for (currency, amount) in &record.money {
            let (spend, refund) = group.money.entry(currency.clone()).or_default();
            if amount.is_sign_negative() {
                *refund += *amount;
            } else {
                *spend += *amount;
            }
        }
        if let Some(time) = record.time_ms {
            crate::trace::widen_time_range(&mut group.first_ms, &mut group.last_ms, time);
        }
    }

    /// How many records were added.
    ///
    /// ```
    /// assert_eq!(cts_audit::summary::Summary::default().records(), 0);
    /// ```
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Groups the records by `by` (any of [`GROUP_COLUMNS`]) and counts
    /// records, failures and distinct operations, with the highest severity
    /// and the first and last time; the worst groups first.
    ///
    /// ```
    /// let table = cts_audit::summary::Summary::default().table(&["user", "severity"]).unwrap();
    /// assert_eq!(table.height(), 0);
    /// assert_eq!(table.get_column_names()[..3], ["user", "severity", "records"]);
    /// ```
    pub fn table(&self, by: &[&str]) -> PolarsResult<DataFrame> {
        if let Some(bad) = by.iter().find(|c| !GROUP_COLUMNS.contains(c)) {
            polars_bail!(ColumnNotFound: "cannot group by {bad}; use {}", GROUP_COLUMNS.join(", "));
        }
        let groups: Vec<&Group> = self.groups.values().collect();
        let text = |f: fn(&Group) -> Option<&str>| groups.iter().map(|g| f(g)).collect::<Vec<_>>();
        let mut frame = df!(
            "user" => text(|g| g.user.as_deref()),
            "category" => text(|g| g.category.as_deref()),
            "trace_name" => text(|g| g.trace_name.as_deref()),
            "severity" => groups.iter().map(|g| g.severity.as_str()).collect::<Vec<_>>(),
            "severity_rank" => groups.iter().map(|g| severity_rank(&g.severity)).collect::<Vec<_>>(),
            "records" => groups.iter().map(|g| g.records).collect::<Vec<_>>(),
            "failed" => groups.iter().map(|g| g.failed).collect::<Vec<_>>(),
            "first_ms" => groups.iter().map(|g| g.first_ms).collect::<Vec<_>>(),
            "last_ms" => groups.iter().map(|g| g.last_ms).collect::<Vec<_>>(),
        )?;
        // `scan --bills`: spend and refunds per currency, exact decimals
        // (never added across currencies).
        let currencies: BTreeSet<&str> = groups
            .iter()
            .flat_map(|g| g.money.keys().map(String::as_str))
            .collect();
        let scale = groups
            .iter()
            .flat_map(|g| g.money.values())
            .flat_map(|(s, r)| [s.scale(), r.scale()])
            .max()
            .unwrap_or(0)
            .max(2);
        let mut money_columns = Vec::new();
        for currency in &currencies {
            for (name, pick) in [
                (format!("spend_{currency}"), 0usize),
                (format!("refund_{currency}"), 1),
            ] {
                let mantissas: Vec<i128> = groups
                    .iter()
                    .map(|g| {
                        let (spend, refund) = g.money.get(*currency).copied().unwrap_or_default();
                        let mut amount = if pick == 0 { spend } else { refund };
                        amount.rescale(scale);
                        amount.mantissa()
                    })
                    .collect();
                let column = Int128Chunked::from_vec(name.as_str().into(), mantissas)
                    .into_decimal(38, scale as usize)?
                    .into_series()
                    .into_column();
                frame.with_column(column)?;
                money_columns.push(name);
            }
        }
        let keys: Vec<Expr> = by.iter().map(|c| col(*c)).collect();
        let mut sort_by: Vec<Expr> = vec![col("worst_rank"), col("records")];
        sort_by.extend(keys.iter().cloned());
        let descending: Vec<bool> = sort_by.iter().enumerate().map(|(i, _)| i < 2).collect();
        let datetime = DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC));
        frame
            .lazy()
            .group_by(keys)
            .agg(
                [
                    col("records").sum().cast(DataType::UInt32).alias("records"),
                    col("failed").sum().cast(DataType::UInt32).alias("failed"),
                    // Each operation is in at least one combination, so counting
                    // distinct names over combinations counts them over records.
                    col("trace_name").n_unique().alias("operations"),
                    col("severity_rank").max().alias("worst_rank"),
                    col("first_ms")
                        .min()
                        .cast(datetime.clone())
                        .alias("first_utc"),
                    col("last_ms").max().cast(datetime).alias("last_utc"),
                ]
                .into_iter()
                .chain(money_columns.iter().map(|c| col(c.as_str()).sum()))
                .collect::<Vec<_>>(),
            )
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

/// [`Summary::table`] of `records`.
///
/// ```
/// use cts_audit::summary::{summarize, SummaryRecord};
/// let record = |user: &str, severity: &str| SummaryRecord { user: Some(user.into()), category: None,
///     trace_name: Some("deleteResource".into()), severity: severity.into(), failed: false, time_ms: None, money: vec![] };
/// let table = summarize(&[record("bob", "low"), record("alice", "high"), record("bob", "low")], &["user"]).unwrap();
/// // The worst group first, then the busiest.
/// assert_eq!(table.column("user").unwrap().str().unwrap().get(0), Some("alice"));
/// ```
pub fn summarize(records: &[SummaryRecord], by: &[&str]) -> PolarsResult<DataFrame> {
    let mut summary = Summary::default();
    for record in records {
        summary.add(record);
    }
    summary.table(by)
}
