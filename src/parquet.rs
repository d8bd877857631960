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
//! let path = std::env::temp_dir().join(format!("cts-audit-doc-{}.parquet", std::process::id()));
//! let mut writer = VerdictParquet::new(std::fs::File::create(&path).unwrap()).unwrap();
//! writer.push(&verdict).unwrap();
//! assert_eq!(writer.finish().unwrap(), 1);
//! assert!(std::fs::read(&path).unwrap().starts_with(b"PAR1"));
//! # std::fs::remove_file(path).unwrap();
//! ```

use crate::verdict::Verdict;
use polars::prelude::*;
use polars_io::parquet::write::{BatchedWriter, ParquetWriter};
use std::io::Write;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

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
/// [`ROWS_PER_GROUP`]. The columns are filled where the verdicts arrive;
/// each full group is encoded and written on a thread of its own, so the
/// scan goes on meanwhile. At most one group waits for that thread: memory
/// stays at about three groups.
pub struct VerdictParquet {
    columns: Columns,
    rows: u64,
    /// Full groups, to the encoder; `None` once it has stopped.
    groups: Option<SyncSender<Columns>>,
    encoder: Option<JoinHandle<PolarsResult<()>>>,
}

impl VerdictParquet {
    /// Starts a Parquet file with [`schema`], written to `out` by the
    /// encoder thread.
    pub fn new<W: Write + Send + 'static>(out: W) -> PolarsResult<Self> {
        // Snappy: what Spark, Trino and DuckDB read by default, and pure
        // Rust at full speed (the zstd C code is built at opt-level 0 here,
        // for the first build's sake: Cargo.toml).
        let writer = ParquetWriter::new(out)
            .with_compression(ParquetCompression::Snappy)
            .batched(&schema())?;
        let (groups, received) = sync_channel::<Columns>(1);
        let encoder = std::thread::Builder::new()
            .name("parquet".into())
            .spawn(move || encode(writer, received))
            .map_err(|err| PolarsError::ComputeError(format!("no encoder thread: {err}").into()))?;
        Ok(VerdictParquet {
            columns: Columns::default(),
            rows: 0,
            groups: Some(groups),
            encoder: Some(encoder),
        })
    }

    /// Adds one verdict; hands a row group to the encoder when one is full.
    /// An error the encoder met is returned here, at the next full group.
    pub fn push(&mut self, verdict: &Verdict<'_>) -> PolarsResult<()> {
        self.columns.push(verdict);
        self.rows += 1;
        if self.columns.len() >= ROWS_PER_GROUP {
            let group = std::mem::take(&mut self.columns);
            let sent = self.groups.as_ref().is_some_and(|g| g.send(group).is_ok());
            if !sent {
                // The encoder stopped: its error says why.
                self.groups = None;
                return self.join();
            }
        }
        Ok(())
    }

    /// Writes the last row group and the footer; the number of rows.
    pub fn finish(mut self) -> PolarsResult<u64> {
        if let Some(groups) = self.groups.take() {
            // An empty file still has one (empty) group, with the schema.
            if self.columns.len() > 0 || self.rows == 0 {
                // A closed channel means the encoder stopped: join says why.
                let _ = groups.send(std::mem::take(&mut self.columns));
            }
        }
        self.join()?;
        Ok(self.rows)
    }

    /// Waits for the encoder (its channel closed) and gives its result.
    fn join(&mut self) -> PolarsResult<()> {
        self.groups = None;
        match self.encoder.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(PolarsError::ComputeError(
                "the Parquet encoder thread panicked".into(),
            )),
            None => Err(PolarsError::ComputeError(
                "the Parquet file was already finished".into(),
            )),
        }
    }
}

/// The encoder thread: each group as a frame, written as a row group; the
/// footer once the groups stop coming.
fn encode<W: Write>(
    mut writer: BatchedWriter<W>,
    groups: std::sync::mpsc::Receiver<Columns>,
) -> PolarsResult<()> {
    for mut group in groups {
        let frame = group.take_frame()?;
        writer.write_batch(&frame)?;
    }
    writer.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Analyzer;
    use polars_io::prelude::{ParquetReader, SerReader};

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("cts-audit-parquet-{name}-{}", std::process::id()))
    }

    /// A writer that fails: the error reaches the caller, nothing hangs.
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_output_that_fails_is_an_error_not_a_hang() {
        let verdict = Analyzer::default()
            .analyze_str(r#"{"trace_id":"t1","trace_name":"bindCard","service_type":"CBC","time":1718777931170}"#)
            .unwrap();
        let failed = match VerdictParquet::new(Full) {
            Err(err) => Some(err),
            Ok(mut writer) => (0..4 * ROWS_PER_GROUP)
                .find_map(|_| writer.push(&verdict).err())
                .or_else(|| writer.finish().err()),
        };
        let message = failed.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("disk full"), "{message}");
    }

    #[test]
    fn row_groups_are_written_as_verdicts_stream() {
        let verdict = Analyzer::default()
            .analyze_str(r#"{"trace_id":"t1","trace_name":"bindCard","service_type":"CBC","resource_type":"order","time":1718777931170}"#)
            .unwrap();
        let path = temp("groups");
        let mut writer = VerdictParquet::new(std::fs::File::create(&path).unwrap()).unwrap();
        let rows = 2 * ROWS_PER_GROUP + 5;
        for _ in 0..rows {
            writer.push(&verdict).unwrap();
        }
        // Two full groups are out before the last one is pushed.
        assert_eq!(writer.columns.len(), 5);
        assert_eq!(writer.finish().unwrap(), rows as u64);
        let out = std::fs::read(&path).unwrap();
        std::fs::remove_file(path).unwrap();
        let mut reader = ParquetReader::new(std::io::Cursor::new(out));
        assert_eq!(reader.get_metadata().unwrap().row_groups.len(), 3);
        let frame = reader.finish().unwrap();
        assert_eq!(frame.height(), rows);
        assert_eq!(frame.schema().as_ref(), &schema());
    }

    #[test]
    fn an_empty_scan_is_a_valid_file_with_the_schema() {
        let path = temp("empty");
        let writer = VerdictParquet::new(std::fs::File::create(&path).unwrap()).unwrap();
        assert_eq!(writer.finish().unwrap(), 0);
        let out = std::fs::read(&path).unwrap();
        std::fs::remove_file(path).unwrap();
        let frame = ParquetReader::new(std::io::Cursor::new(out))
            .finish()
            .unwrap();
        assert_eq!((frame.height(), frame.schema().as_ref()), (0, &schema()));
    }
}
