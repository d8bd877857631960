//! `scan --format parquet`: the Parquet read back (polars) equals the JSONL
//! output field for field, for every record of the samples, costs included.

use assert_cmd::Command;
use polars::prelude::*;
use polars_io::prelude::{ParquetReader, SerReader};
use serde_json::{json, Value};

fn scan(args: &[&str]) -> std::process::Output {
    let out = Command::cargo_bin("cts-audit")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One Parquet cell as the JSONL writer would write it.
fn cell(value: AnyValue<'_>) -> Value {
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => json!(b),
        AnyValue::Int32(n) => json!(n),
        AnyValue::String(s) => json!(s),
        AnyValue::StringOwned(s) => json!(s.as_str()),
        AnyValue::Datetime(ms, TimeUnit::Milliseconds, _)
        | AnyValue::DatetimeOwned(ms, TimeUnit::Milliseconds, _) => {
            let time = chrono::DateTime::from_timestamp_millis(ms).unwrap();
            json!(time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        }
        AnyValue::List(series) => Value::Array(
            series
                .str()
                .unwrap()
                .iter()
                .map(|s| json!(s.unwrap()))
                .collect(),
        ),
        other => panic!("unexpected cell {other:?}"),
    }
}

#[test]
fn the_parquet_round_trips_to_the_jsonl_field_for_field() {
    let dir = std::env::temp_dir().join(format!("cts-audit-parquet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let parquet = dir.join("verdicts.parquet");
    let common = [
        "scan",
        "--all",
        "-q",
        "--bills",
        "samples/bills",
        "samples/",
    ];
    let jsonl = scan(&[&common[..], &["--format", "jsonl"]].concat());
    scan(
        &[
            &common[..],
            &["--format", "parquet", "-o", parquet.to_str().unwrap()],
        ]
        .concat(),
    );
    let expected: Vec<Value> = String::from_utf8(jsonl.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(expected.len() >= 20);
    let frame = ParquetReader::new(std::fs::File::open(&parquet).unwrap())
        .finish()
        .unwrap();
    assert_eq!(frame.height(), expected.len());
    // Typed where it matters.
    assert!(
        matches!(frame.column("time").unwrap().dtype(), DataType::Datetime(TimeUnit::Milliseconds, Some(tz)) if tz.as_str() == "UTC")
    );
    assert_eq!(frame.column("failed").unwrap().dtype(), &DataType::Boolean);
    assert_eq!(
        frame.column("rules").unwrap().dtype(),
        &DataType::List(Box::new(DataType::String))
    );
    let mut costs = 0;
    for (row, record) in expected.iter().enumerate() {
        let record = record.as_object().unwrap();
        for column in frame.columns() {
            let name = column.name().as_str();
            let got = cell(column.get(row).unwrap());
            let got = if name == "cost" && !got.is_null() {
                costs += 1;
                serde_json::from_str(got.as_str().unwrap()).unwrap()
            } else {
                got
            };
            // Absent in JSONL (integrity, cost) is null in Parquet.
            let want = record.get(name).cloned().unwrap_or(Value::Null);
            assert_eq!(got, want, "row {row}, column {name}");
        }
        for key in record.keys() {
            assert!(frame.column(key).is_ok(), "JSONL field {key} has no column");
        }
    }
    assert_eq!(costs, 4);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn parquet_needs_an_output_file() {
    let out = Command::cargo_bin("cts-audit")
        .unwrap()
        .args(["scan", "--format", "parquet", "samples/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format parquet needs -o FILE"));
}
