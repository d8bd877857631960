//! Verdicts as Parquet, for engines past one machine (Spark, Trino,
//! DuckDB): a stable, typed schema, written in row groups as verdicts
//! stream, so a scan of any size is never held whole.
//!
//! Built behind the `summary` feature (polars).
//!
//! ```
//! use cts_audit::{analyze::Analyzer, parquet::VerdictParquet};
//! let verdict = Analyzer::default()
//!     .analyze_str(r#"{"trace_id":"t1","trace_name":"payOrder","service_type":"CBC","resource_type":"cloudresouce","time":1718777931170}"#)
//!     .unwrap();
//! let mut out = Vec::new();
//! let mut writer = VerdictParquet::new(&mut out).unwrap();
//! writer.push(&verdict).unwrap();
//! assert_eq!(writer.finish().unwrap(), 1);
//! assert!(out.starts_with(b"PAR1"));
//! ```

use crate::verdict::Verdict;
use polars::prelude::*;
use polars_io::parquet::write::{BatchedWriter, ParquetWriter};
use std::io::Write;

/// Verdicts per row group, written as it fills: a group's rows and their
/// columns are what the writer holds (about 25 MB at most).
pub const ROWS_PER_GROUP: usize = 16_384;

/// The text columns, in schema order after `time`.
const TEXT_COLUMNS: [&str; 18] = [
    "trace_id",
    "trace_name",
    "service_type",
    "resource_type",
    "resource_id",
    "resource_name",
    "user",
    "user_type",
    "domain",
    "source_ip",
    "trace_type",
    "rating",
    "error_code",
    "operation",
    "category",
    "severity",
    "source",
    "integrity",
];

/// The schema, in column order: `time` (UTC milliseconds), the text
/// columns, `root_user`, `failed`, `billing`, `catalogued` (booleans),
/// `code` (Int32), `rules` and `reasons` (lists of text), and `cost` (the
/// JSONL `cost` object as JSON text; `scan --bills`). docs/OUTPUT.md.
///
/// ```
/// let schema = cts_audit::parquet::schema();
/// assert_eq!(schema.get("rules").unwrap().to_string(), "list[str]");
/// ```
pub fn schema() -> Schema {
    let mut schema = Schema::default();
    schema.insert(
        "time".into(),
        DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)),
    );
    for name in TEXT_COLUMNS {
        schema.insert(name.into(), DataType::String);
    }
    for name in ["root_user", "failed", "billing", "catalogued"] {
        schema.insert(name.into(), DataType::Boolean);
    }
    schema.insert("code".into(), DataType::Int32);
    for name in ["rules", "reasons"] {
        schema.insert(name.into(), DataType::List(Box::new(DataType::String)));
    }
    schema.insert("cost".into(), DataType::String);
    schema
}

/// The columns of the row group being filled.
#[derive(Default)]
struct Columns {
    time: Vec<Option<i64>>,
    texts: [Vec<Option<String>>; TEXT_COLUMNS.len()],
    root_user: Vec<Option<bool>>,
    failed: Vec<bool>,
    billing: Vec<bool>,
    catalogued: Vec<bool>,
    code: Vec<Option<i32>>,
    rules: Vec<Vec<String>>,
    reasons: Vec<Vec<String>>,
    cost: Vec<Option<String>>,
}

impl Columns {
    fn len(&self) -> usize {
        self.time.len()
    }

    fn push(&mut self, v: &Verdict<'_>) {
        self.time.push(v.time_ms);
        for (column, name) in self.texts.iter_mut().zip(TEXT_COLUMNS) {
            column.push(v.output_field(name).map(|t| t.into_owned()));
        }
        self.root_user.push(v.root_user);
        self.failed.push(v.failed);
        self.billing.push(v.billing);
        self.catalogued.push(v.catalogued);
        self.code.push(v.code.map(i32::from));
        self.rules
            .push(v.rules.iter().map(|r| r.to_string()).collect());
        self.reasons.push(v.reasons.clone());
        self.cost.push(
            v.cost
                .as_deref()
                .and_then(|c| serde_json::to_string(c).ok()),
        );
    }

    /// The rows so far as one frame, leaving the columns empty.
    fn take_frame(&mut self) -> PolarsResult<DataFrame> {
        let taken = std::mem::take(self);
        let height = taken.len();
        let list = |name: &str, rows: Vec<Vec<String>>| -> Column {
            let values = rows.iter().map(Vec::len).sum();
            let mut builder = ListStringChunkedBuilder::new(name.into(), rows.len(), values);
            for row in &rows {
                builder.append_values_iter(row.iter().map(String::as_str));
            }
            builder.finish().into_series().into_column()
        };
        let mut columns = vec![Int64Chunked::new("time".into(), &taken.time)
            .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
            .into_series()
            .into_column()];
        for (name, values) in TEXT_COLUMNS.iter().zip(taken.texts) {
            columns.push(Column::new((*name).into(), values));
        }
        columns.push(Column::new("root_user".into(), taken.root_user));
        columns.push(Column::new("failed".into(), taken.failed));
        columns.push(Column::new("billing".into(), taken.billing));
        columns.push(Column::new("catalogued".into(), taken.catalogued));
        columns.push(Column::new("code".into(), taken.code));
        columns.push(list("rules", taken.rules));
        columns.push(list("reasons", taken.reasons));
        columns.push(Column::new("cost".into(), taken.cost));
        DataFrame::new(height, columns)
    }
}

/// Writes verdicts to Parquet as they come, a row group every
/// [`ROWS_PER_GROUP`].
pub struct VerdictParquet<W: Write> {
    writer: BatchedWriter<W>,
    columns: Columns,
    rows: u64,
}

impl<W: Write> VerdictParquet<W> {
    /// Starts a Parquet file with [`schema`].
    pub fn new(out: W) -> PolarsResult<Self> {
        Ok(VerdictParquet {
            // Snappy: what Spark, Trino and DuckDB read by default, and
            // pure Rust at full speed (the zstd C code is built at opt-level
            // 0 here, for the first build's sake: Cargo.toml).
            writer: ParquetWriter::new(out)
                .with_compression(ParquetCompression::Snappy)
                .batched(&schema())?,
            columns: Columns::default(),
            rows: 0,
        })
    }

    /// Adds one verdict; writes a row group when one is full.
    pub fn push(&mut self, verdict: &Verdict<'_>) -> PolarsResult<()> {
        self.columns.push(verdict);
        self.rows += 1;
        if self.columns.len() >= ROWS_PER_GROUP {
            let frame = self.columns.take_frame()?;
            self.writer.write_batch(&frame)?;
        }
        Ok(())
    }

    /// Writes the last row group and the footer; the number of rows.
    pub fn finish(mut self) -> PolarsResult<u64> {
        if self.columns.len() > 0 || self.rows == 0 {
            let frame = self.columns.take_frame()?;
            self.writer.write_batch(&frame)?;
        }
        self.writer.finish()?;
        Ok(self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Analyzer;
    use polars_io::prelude::{ParquetReader, SerReader};

    #[test]
    fn row_groups_are_written_as_verdicts_stream() {
        let verdict = Analyzer::default()
            .analyze_str(r#"{"trace_id":"t1","trace_name":"bindCard","service_type":"CBC","resource_type":"order","time":1718777931170}"#)
            .unwrap();
        let mut out = Vec::new();
        let mut writer = VerdictParquet::new(&mut out).unwrap();
        let rows = 2 * ROWS_PER_GROUP + 5;
        for _ in 0..rows {
            writer.push(&verdict).unwrap();
        }
        // Two full groups are out before the last one is pushed.
        assert_eq!(writer.columns.len(), 5);
        assert_eq!(writer.finish().unwrap(), rows as u64);
        let mut reader = ParquetReader::new(std::io::Cursor::new(out));
        assert_eq!(reader.get_metadata().unwrap().row_groups.len(), 3);
        let frame = reader.finish().unwrap();
        assert_eq!(frame.height(), rows);
        assert_eq!(frame.schema().as_ref(), &schema());
    }

    #[test]
    fn an_empty_scan_is_a_valid_file_with_the_schema() {
        let mut out = Vec::new();
        assert_eq!(VerdictParquet::new(&mut out).unwrap().finish().unwrap(), 0);
        let frame = ParquetReader::new(std::io::Cursor::new(out))
            .finish()
            .unwrap();
        assert_eq!((frame.height(), frame.schema().as_ref()), (0, &schema()));
    }
}
