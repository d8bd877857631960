//! `cts-audit scan` over fixtures of every export form, and damaged ones.
//! Fixtures follow ../shared/reference/cts-trace-format.md (§2, §5).

use assert_cmd::Command;
use flate2::{write::GzEncoder, Compression};
use predicates::prelude::*;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

fn cts_audit() -> Command {
    Command::cargo_bin("cts-audit").unwrap()
}

/// A billing trace as CTS writes it to OBS: `user` a JSON string, `code` a number.
fn trace(id: &str, name: &str, resource_type: &str, time: i64) -> Value {
    json!({
        "code": 200, "event_type": "global", "project_id": "4008a952b3f44b5a919c9a48d90811f3",
        "record_time": time + 100, "resource_name": "-", "resource_type": resource_type, "service_type": "CBC",
        "source_ip": "203.0.113.10", "time": time, "trace_id": id, "trace_name": name, "trace_rating": "normal",
        "trace_type": "ConsoleAction", "tracker_name": "system",
        "user": "{\"name\":\"alice\",\"id\":\"5f2cd06722f24250976264ebe7753a08\",\"domain\":{\"name\":\"acme\",\"id\":\"25fe78d91e0448f6a37f35427c6a420b\"}}"
    })
}

fn uuid(n: u32) -> String {
    format!("{n:08x}-2e03-11ef-82de-cf140e2a70fb")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Runs a scan, returning (exit code, JSONL records, stats, stderr).
fn scan(args: &[&str], dir: &Path) -> (i32, Vec<Value>, Value, String) {
    let stats_path = dir.join("stats.json");
    let out = cts_audit()
        .args(["scan", "--format", "jsonl", "--stats"])
        .arg(&stats_path)
        .args(args)
        .output()
        .unwrap();
    let records = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stats = std::fs::read(&stats_path)
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(Value::Null);
    (
        out.status.code().unwrap(),
        records,
        stats,
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn n(stats: &Value, key: &str) -> u64 {
    stats[key]
        .as_u64()
        .unwrap_or_else(|| panic!("stats has no {key}: {stats}"))
}

/// The identities the issue promises.
fn assert_counts_add_up(stats: &Value) {
    assert_eq!(
        n(stats, "unique"),
        n(stats, "records") - n(stats, "duplicates"),
        "{stats}"
    );
    assert_eq!(
        n(stats, "unique"),
        n(stats, "billing") + n(stats, "audit_trail") + n(stats, "other_service"),
        "{stats}"
    );
    assert_eq!(
        n(stats, "billing") + n(stats, "audit_trail"),
        n(stats, "catalogued") + n(stats, "uncatalogued"),
        "{stats}"
    );
    assert_eq!(
        n(stats, "unique"),
        n(stats, "emitted") + n(stats, "filtered_out") + n(stats, "unwritten"),
        "{stats}"
    );
    assert_eq!(
        n(stats, "errors"),
        stats["error_list"].as_array().unwrap().len() as u64 + n(stats, "errors_unlisted")
    );
}

#[test]
fn every_container_form_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t0 = 1_718_777_931_170;
    // OBS transfer file: compact array, gzip, in the OBS tree.
    let obs = json!([
        trace(&uuid(1), "payOrder", "cloudresouce", t0),
        trace(&uuid(2), "queryBalanceAlert", "balance", t0)
    ]);
    write(d, "CloudTraces/ap-southeast-1/2024/06/19/system/CBC/cts_CloudTrace_ap-southeast-1_2024-06-19T06-25-00Z_47b9d51830deff47.json.gz", &gzip(obs.to_string().as_bytes()));
    // Pretty-printed array, not compressed, with a BOM and CRLF.
    let pretty = serde_json::to_string_pretty(&json!([trace(&uuid(3), "bindCard", "order", t0)]))
        .unwrap()
        .replace('\n', "\r\n");
    write(
        d,
        "pretty.json",
        &[b"\xEF\xBB\xBF".as_slice(), pretty.as_bytes()].concat(),
    );
    // ListTraces page with `response` as an object and `user` as an object.
    let mut failed = trace(&uuid(4), "refundApply", "balance", t0);
    failed["trace_rating"] = json!("warning");
    failed["code"] = json!("400");
    failed["user"] = json!({"name": "bob", "type": "ExternalUser", "domain": {"name": "acme"}});
    failed["response"] = json!({"error_code": "CBC.99005003", "error_msg": "insufficient balance"});
    write(
        d,
        "page.json",
        serde_json::to_string_pretty(
            &json!({"traces": [failed], "meta_data": {"count": 1, "marker": null}}),
        )
        .unwrap()
        .as_bytes(),
    );
    // LTS lines with a blank line; console times and string codes.
    let mut console = trace(&uuid(5), "unsubscribeResource", "subscription", 0);
    console["time"] = json!("Nov 16, 2023 10:54:04 GMT+08:00");
    console["record_time"] = json!("Nov 16, 2023 10:54:05 GMT+08:00");
    console["code"] = json!("200");
    let lines = format!(
        "{}\n\n{}\n",
        console,
        trace(&uuid(6), "createServer", "ecs", t0)
            .to_string()
            .replace("\"CBC\"", "\"ECS\"")
    );
    write(d, "lts.jsonl", lines.as_bytes());
    // FunctionGraph event with the legacy trace_status.
    let event = json!({"cts": {"time": t0, "user": {"name": "mallory"}, "request": {}, "response": {}, "code": 204, "service_type": "CTS",
        "resource_type": "tracker", "resource_name": "system", "trace_name": "deleteTracker", "trace_type": "ConsoleAction",
        "record_time": t0, "trace_id": uuid(7), "trace_status": "normal"}});
    write(d, "event.json", event.to_string().as_bytes());
    // A single pretty-printed trace object.
    write(
        d,
        "single.json",
        serde_json::to_string_pretty(&trace(&uuid(8), "setDefaultBindCard", "order", t0))
            .unwrap()
            .as_bytes(),
    );
    // A digest, by name, and one by content only.
    write(d, "CloudTraces/ap-southeast-1/2024/06/19/system/Digest/CBC/cts_CloudTrace-Digest_ap-southeast-1_2024-06-19T07-00-00Z.json.gz", &gzip(b"{\"digest_object\":\"x\"}"));
    write(d, "renamed-digest.json", b"{\n \"digest_start_time\": \"2017-03-28T01-09-17Z\",\n \"digest_object\": \"CloudTraces/x\"\n}");

    let (code, records, stats, stderr) = scan(&["--all", d.to_str().unwrap()], d);
    assert_eq!(code, 0, "{stderr}");
    assert_counts_add_up(&stats);
    assert_eq!(n(&stats, "records"), 8, "{stats}");
    assert_eq!(n(&stats, "errors"), 0, "{stats}");
    assert_eq!(n(&stats, "digests_skipped"), 2);
    assert_eq!(n(&stats, "other_service"), 1);
    let by_name = |name: &str| {
        records
            .iter()
            .find(|r| r["trace_name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(by_name("payOrder")["user"], "alice");
    assert_eq!(by_name("payOrder")["time"], "2024-06-19T06:18:51.170Z");
    assert_eq!(by_name("bindCard")["severity"], "high");
    let refund = by_name("refundApply");
    assert_eq!(
        (
            refund["error_code"].as_str(),
            refund["code"].as_u64(),
            refund["failed"].as_bool()
        ),
        (Some("CBC.99005003"), Some(400), Some(true))
    );
    assert_eq!(refund["user_type"], "ExternalUser");
    assert!(refund["source"]
        .as_str()
        .unwrap()
        .ends_with("page.json#1.1"));
    assert_eq!(
        by_name("unsubscribeResource")["time"],
        "2023-11-16T02:54:04.000Z"
    );
    assert!(by_name("unsubscribeResource")["source"]
        .as_str()
        .unwrap()
        .ends_with("lts.jsonl:1"));
    assert_eq!(by_name("deleteTracker")["severity"], "critical");
    assert_eq!(by_name("createServer")["billing"], false);
    assert_eq!(by_name("setDefaultBindCard")["category"], "payment_method");
}

#[test]
fn damaged_input_is_reported_and_the_rest_still_classified() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t0 = 1_718_777_931_170;
    // A truncated gzip: the whole records before the cut survive.
    let many: Vec<Value> = (0..400)
        .map(|i| {
            trace(
                &uuid(100 + i),
                "payOrder",
                "cloudresouce",
                t0 + i64::from(i),
            )
        })
        .collect();
    let packed = gzip(Value::Array(many).to_string().as_bytes());
    write(d, "a-truncated.json.gz", &packed[..packed.len() / 2]);
    // A broken line between good ones, and invalid UTF-8 inside a value.
    let good = |i: u32| trace(&uuid(i), "bindCard", "order", t0).to_string();
    let mut lines =
        format!("{}\n{{\"trace_id\": \"broken\", \n{}\n", good(1), good(2)).into_bytes();
    let mut bad_utf8 = good(3).into_bytes();
    let at = bad_utf8.windows(5).position(|w| w == b"alice").unwrap();
    bad_utf8[at] = 0xff;
    lines.extend_from_slice(&bad_utf8);
    lines.extend_from_slice(format!("\n{}\n", good(4)).as_bytes());
    write(d, "b-lines.jsonl", &lines);
    // An empty file.
    write(d, "c-empty.json", b"");

    let (code, records, stats, stderr) = scan(&["--all", d.to_str().unwrap()], d);
    assert_eq!(code, 0, "damaged input is not a usage error: {stderr}");
    assert_counts_add_up(&stats);
    let errors = stats["error_list"].as_array().unwrap();
    let has = |file: &str, location: Option<&str>, text: &str| {
        errors.iter().any(|e| {
            e["file"].as_str().unwrap().ends_with(file)
                && e["location"].as_str() == location
                && e["message"].as_str().unwrap().contains(text)
        })
    };
    assert!(
        has("b-lines.jsonl", Some("line 2"), "invalid trace"),
        "{errors:?}"
    );
    assert!(
        has("b-lines.jsonl", Some("line 4"), "invalid UTF-8"),
        "{errors:?}"
    );
    assert!(has("a-truncated.json.gz", None, "truncated"), "{errors:?}");
    assert!(has("c-empty.json", None, "empty"), "{errors:?}");
    assert!(stderr.contains("b-lines.jsonl: line 2:"), "{stderr}");
    // Good lines around the damage are all there, with their line numbers.
    let lines_out: Vec<&str> = records
        .iter()
        .filter_map(|r| r["source"].as_str())
        .filter(|s| s.contains("b-lines"))
        .collect();
    // The line with an invalid UTF-8 byte in one string is read salvaged.
    assert_eq!(lines_out.len(), 4, "{lines_out:?}");
    assert!(lines_out.iter().any(|s| s.ends_with(":5")));
    // Some whole records of the truncated gzip came through, classified.
    let truncated = records
        .iter()
        .filter(|r| r["source"].as_str().unwrap().contains("a-truncated"))
        .count();
    assert!(truncated > 0 && truncated < 400, "{truncated}");
    assert_eq!(n(&stats, "files_skipped"), 1);
    assert_eq!(n(&stats, "record_warnings"), 1, "{stats}");
    assert_eq!(
        n(&stats, "record_errors"),
        1 + u64::from(errors.iter().any(|e| {
            e["location"]
                .as_str()
                .is_some_and(|l| l.starts_with("record"))
        }))
    );
}

#[test]
fn duplicates_are_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = json!([
        trace(&uuid(1), "payOrder", "cloudresouce", 1),
        trace(&uuid(2), "bindCard", "order", 2)
    ]);
    let second = json!([
        trace(&uuid(2), "bindCard", "order", 2),
        trace(&uuid(3), "unBindCard", "order", 3)
    ]);
    write(d, "1.json", first.to_string().as_bytes());
    write(d, "2.json.gz", &gzip(second.to_string().as_bytes()));
    let (_, records, stats, _) = scan(&[d.to_str().unwrap()], d);
    assert_eq!(
        (
            n(&stats, "records"),
            n(&stats, "duplicates"),
            n(&stats, "unique")
        ),
        (4, 1, 3)
    );
    assert_eq!(records.len(), 3);
    assert_counts_add_up(&stats);
}

#[test]
fn filters_severity_and_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t0 = 1_718_777_931_170; // 2024-06-19
    let mut root = trace(&uuid(2), "accountTopUp", "balance", t0 + 86_400_000);
    root["user"] = json!({"name": "root-admin", "id": "u-root"});
    let all = json!([
        trace(&uuid(1), "payOrder", "cloudresouce", t0),
        root,
        trace(&uuid(3), "queryBalanceAlert", "balance", t0)
    ]);
    write(d, "t.json", all.to_string().as_bytes());
    let path = d.to_str().unwrap();

    let (_, records, stats, _) = scan(&[path], d);
    assert_eq!(records.len(), 2, "the read is not flagged by default");
    assert_eq!(n(&stats, "filtered_out"), 1);
    let (_, records, _, _) = scan(&["--since", "2024-06-20", path], d);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["trace_name"], "accountTopUp");
    let (_, records, _, _) = scan(&["--user", "ROOT-ADMIN", path], d);
    assert_eq!(records.len(), 1);
    let (_, records, _, _) = scan(&["--all", "--trace-name", "queryBalanceAlert", path], d);
    assert_eq!(records.len(), 1);
    let (_, records, _, _) = scan(&["--min-severity", "high", path], d);
    assert!(records.is_empty());

    let (code, _, _, _) = scan(&["--fail-on", "medium", path], d);
    assert_eq!(code, 1);
    let (code, _, _, _) = scan(&["--fail-on", "high", path], d);
    assert_eq!(code, 0);
    cts_audit()
        .args(["scan", "--since", "last tuesday", path])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--since"));
    cts_audit()
        .args(["scan", "--min-severity", "severe", path])
        .assert()
        .code(2);
    cts_audit()
        .args(["scan", "--stats", "/nonexistent/dir/stats.json", path])
        .assert()
        .code(2)
        .stdout("");
    cts_audit()
        .args(["scan", "/no/such/dir"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no input could be read"));
}

#[test]
fn stdin_and_every_output_format() {
    let lines = format!(
        "{}\n{}\n",
        trace(&uuid(1), "payOrder", "cloudresouce", 1_718_777_931_170),
        trace(
            &uuid(2),
            "deleteResource",
            "cloudresouce",
            1_718_777_931_171
        )
    );
    let out = cts_audit()
        .args(["scan", "-q", "--format", "json", "-"])
        .write_stdin(lines.clone())
        .output()
        .unwrap();
    assert!(out.status.success());
    let array: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(array.len(), 2);
    assert!(array[0]["source"].as_str().unwrap().starts_with("-:1"));

    let out = cts_audit()
        .args(["scan", "-q", "--format", "csv", "-"])
        .write_stdin(lines.clone())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        cts_audit::verdict::CSV_HEADER
    );
    assert_eq!(reader.records().count(), 2);

    cts_audit()
        .args(["scan", "-"])
        .write_stdin(lines)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("deleteResource").and(predicate::str::contains("2 records")),
        )
        .stderr(predicate::str::contains("2 records"));
}

#[test]
fn thread_count_does_not_change_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for f in 0..20u32 {
        let traces: Vec<Value> = (0..30)
            .map(|i| {
                trace(
                    &uuid(f * 100 + i % 25),
                    "payOrder",
                    "cloudresouce",
                    i64::from(f * 100 + i),
                )
            })
            .collect();
        write(
            d,
            &format!("f{f:02}.json"),
            Value::Array(traces).to_string().as_bytes(),
        );
    }
    let run = |threads: &str| {
        cts_audit()
            .args(["scan", "-q", "--format", "jsonl", "-j", threads])
            .arg(d)
            .output()
            .unwrap()
            .stdout
    };
    assert_eq!(run("1"), run("2"));
    assert_eq!(run("1"), run("4"));
}

#[test]
fn shipped_samples_show_the_flagged_billing_actions() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let dir = tempfile::tempdir().unwrap();
    let (code, records, stats, _) = scan(&[samples.to_str().unwrap()], dir.path());
    assert_eq!(code, 0);
    assert_counts_add_up(&stats);
    assert_eq!(n(&stats, "errors"), 0);
    assert_eq!(n(&stats, "duplicates"), 1);
    assert_eq!(
        n(&stats, "digests_skipped"),
        3,
        "the signed samples' digests"
    );
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["trace_name"].as_str().unwrap())
        .collect();
    for expected in [
        "payOrder",
        "unsubscribeResource",
        "bindCard",
        "deleteTracker",
        "refundApply",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} not flagged in {names:?}"
        );
    }
    assert!(!names.contains(&"queryMonthlyConsumeBill"));
}

#[test]
fn summary_groups_the_flagged_records_with_polars() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("summary.csv");
    let out = cts_audit()
        .args([
            "scan",
            "-q",
            "--format",
            "summary",
            "--summary-by",
            "user",
            "--summary-out",
        ])
        .arg(&csv_path)
        .arg(&samples)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().nth(1).unwrap().starts_with(" mallory"),
        "the worst group first:\n{text}"
    );
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "user",
            "records",
            "failed",
            "operations",
            "first_utc",
            "last_utc",
            "worst"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let dev_bot = rows.iter().find(|r| &r[0] == "dev-bot").unwrap();
    assert_eq!((&dev_bot[1], &dev_bot[2], &dev_bot[6]), ("3", "3", "high"));
    let total: u32 = rows.iter().map(|r| r[1].parse::<u32>().unwrap()).sum();
    assert_eq!(total, 15, "every flagged sample record is in one group");
    cts_audit()
        .args(["scan", "--format", "summary", "--summary-by", "colour"])
        .arg(&samples)
        .assert()
        .code(2);
}

#[test]
fn a_record_longer_than_a_block_is_read_whole() {
    // Blocks are 4 MiB; a 5 MB request string puts one line across blocks.
    let dir = tempfile::tempdir().unwrap();
    let mut big = trace(&uuid(2), "bindCard", "order", 1_718_777_931_171);
    big["request"] = json!("x".repeat(5 << 20));
    let lines = format!(
        "{}\n{}\n{}\n",
        trace(&uuid(1), "payOrder", "cloudresouce", 1_718_777_931_170),
        big,
        trace(&uuid(3), "unBindCard", "order", 1_718_777_931_172)
    );
    write(dir.path(), "big.jsonl", lines.as_bytes());
    let array = json!([
        trace(&uuid(4), "payOrder", "cloudresouce", 1_718_777_931_173),
        big.clone()
    ]);
    let mut big_element = big;
    big_element["trace_id"] = json!(uuid(5));
    let array = json!([
        array[0].clone(),
        big_element,
        trace(&uuid(6), "unBindCard", "order", 1_718_777_931_174)
    ]);
    write(dir.path(), "big.json", array.to_string().as_bytes());
    let (code, records, stats, stderr) = scan(&[dir.path().to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        (n(&stats, "records"), n(&stats, "errors")),
        (6, 0),
        "{stats}"
    );
    assert_eq!(records.len(), 6);
}

#[test]
fn candidates_spilled_to_disk_give_the_same_timeline() {
    // Files in reverse time order, with a burst of exports (a windowed rule)
    // and payments: every record is a rule candidate.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = 1_718_000_000_000i64;
    for f in 0..6u32 {
        let traces: Vec<Value> = (0..40u32)
            .map(|i| {
                let (name, resource_type) = if i % 2 == 0 {
                    ("proxyExportNvlMonthlyBill", "bill")
                } else {
                    ("payOrder", "cloudresouce")
                };
                let time = base + i64::from((5 - f) * 1000 + i * 7);
                trace(&uuid(f * 100 + i), name, resource_type, time)
            })
            .collect();
        write(
            d,
            &format!("f{f}.json"),
            Value::Array(traces).to_string().as_bytes(),
        );
    }
    let in_memory = scan(&["-q", d.to_str().unwrap()], d);
    // A budget of 0 MiB spills a sorted run for every candidate.
    let spilled = scan(&["-q", "--held-memory", "0", d.to_str().unwrap()], d);
    assert_eq!(in_memory.0, 0);
    assert_eq!(spilled.0, 0, "{}", spilled.3);
    assert_eq!(in_memory.1.len(), 240);
    assert_eq!(spilled.1, in_memory.1);
    assert_counts_add_up(&spilled.2);
    assert_eq!(n(&spilled.2, "emitted"), 240);
    let times: Vec<&str> = spilled
        .1
        .iter()
        .map(|r| r["time"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "a timeline");
    assert!(spilled.1.iter().any(|r| r["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|id| id == "export.burst")));

    // No temporary directory to spill to: said once, and nothing lost.
    let out = cts_audit()
        .env("TMPDIR", d.join("no-such-dir"))
        .args(["scan", "-q", "--format", "jsonl", "--held-memory", "0"])
        .arg(d)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr.matches("cannot spill rule candidates").count(),
        1,
        "{stderr}"
    );
    let kept: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(kept, in_memory.1);
}

#[test]
fn an_unreadable_time_is_reported_and_the_record_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t0 = 1_718_777_931_170i64;
    let mut falls_back = trace(&uuid(1), "bindCard", "order", t0);
    falls_back["time"] = json!("yesterday");
    let mut no_time = trace(&uuid(2), "bindCard", "order", t0);
    no_time["time"] = json!("-");
    no_time.as_object_mut().unwrap().remove("record_time");
    let fine = trace(&uuid(3), "bindCard", "order", t0);
    write(
        d,
        "times.jsonl",
        format!("{falls_back}\n{no_time}\n{fine}\n").as_bytes(),
    );
    let (code, records, stats, stderr) = scan(&[d.to_str().unwrap()], d);
    assert_eq!(code, 0, "{stderr}");
    assert_counts_add_up(&stats);
    assert_eq!(records.len(), 3, "every record is kept");
    assert_eq!(n(&stats, "record_errors"), 0);
    assert_eq!(n(&stats, "errors"), 2);
    assert!(
        stderr.contains("times.jsonl: line 1: `time` is not a time"),
        "{stderr}"
    );
    assert!(stderr.contains("line 2: `time` is not a time"), "{stderr}");
    assert!(stderr.contains("without a time"), "{stderr}");
    let time_of = |id: u32| {
        records
            .iter()
            .find(|r| r["trace_id"] == uuid(id).as_str())
            .map(|r| r["time"].clone())
            .unwrap()
    };
    // record_time stands in when time cannot be read.
    assert_eq!(time_of(1), json!("2024-06-19T06:18:51.270Z"));
    assert_eq!(time_of(2), Value::Null);
    assert_eq!(time_of(3), json!("2024-06-19T06:18:51.170Z"));
}

#[test]
fn console_csv_exports_are_read_by_their_header() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The console's trace-list columns (reference §2.1), with a BOM, CRLF,
    // the console's time format (quoted: it holds a comma), a quoted cell
    // with a line break, a row of the wrong length, and invalid UTF-8.
    let mut csv = b"\xEF\xBB\xBFTrace Name,Resource Type,Trace Source,Resource ID,Resource Name,Trace Status,Operator,Operation Time\r\n".to_vec();
    csv.extend_from_slice(b"unsubscribeResource,cloudresouce,CBC,8b2c9e3e-5d1f-4a8e-9c11-0f4b7a1d2e33,ecs-prod-01,Normal,alice,\"Nov 16, 2023 10:54:04 GMT+08:00\"\r\n");
    csv.extend_from_slice(b"bindCard,order,CBC,-,\"card\r\nending 4242\",Warning,alice,\"Nov 16, 2023 10:58:41 GMT+08:00\"\r\n");
    csv.extend_from_slice(b"payOrder,cloudresouce,CBC,-,-,Normal\r\n");
    csv.extend_from_slice(b"deleteResource,cloudresouce,CBC,-,r\xff,Normal,bob,\"Nov 16, 2023 11:00:00 GMT+08:00\"\r\n");
    csv.extend_from_slice(b"\r\n");
    csv.extend_from_slice(
        b"createVolume,evs,EVS,2f6d3c1a,data-disk,Normal,carol,1700103909000\r\n",
    );
    write(d, "export.csv", &csv);

    let (code, records, stats, stderr) = scan(&["--all", d.to_str().unwrap()], d);
    assert_eq!(code, 0, "{stderr}");
    assert_counts_add_up(&stats);
    assert_eq!(n(&stats, "records"), 3, "{stats}");
    assert_eq!(n(&stats, "record_errors"), 2, "{stats}");
    let errors = stats["error_list"].as_array().unwrap();
    let error_at = |line: &str, text: &str| {
        errors
            .iter()
            .any(|e| e["location"] == line && e["message"].as_str().unwrap().contains(text))
    };
    assert!(
        error_at("line 5", "6 cells under a header of 8"),
        "{errors:?}"
    );
    assert!(error_at("line 6", "invalid UTF-8"), "{errors:?}");
    assert!(stderr.contains("export.csv: line 5:"), "{stderr}");

    let by_name = |name: &str| {
        records
            .iter()
            .find(|r| r["trace_name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {records:?}"))
    };
    let unsubscribe = by_name("unsubscribeResource");
    assert_eq!(unsubscribe["time"], "2023-11-16T02:54:04.000Z");
    assert_eq!(unsubscribe["user"], "alice");
    assert_eq!(unsubscribe["service_type"], "CBC");
    assert_eq!(unsubscribe["category"], "destruction");
    assert_eq!(unsubscribe["severity"], "high");
    assert!(unsubscribe["source"]
        .as_str()
        .unwrap()
        .ends_with("export.csv:2"));
    // A failed sensitive action: the status column is the rating.
    let bind = by_name("bindCard");
    assert_eq!(bind["rating"], "warning");
    assert_eq!(bind["failed"], true);
    assert_eq!(bind["resource_name"], "card\r\nending 4242");
    assert!(bind["source"].as_str().unwrap().ends_with("export.csv:3"));
    // Epoch milliseconds work too; another service is counted as such.
    let volume = by_name("createVolume");
    assert_eq!(volume["time"], "2023-11-16T03:05:09.000Z");
    assert_eq!(volume["billing"], false);
    assert!(volume["source"].as_str().unwrap().ends_with("export.csv:8"));
    assert_eq!(n(&stats, "other_service"), 1);
}

#[test]
fn its_own_csv_output_reads_back_to_the_same_verdicts() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = cts_audit()
        .args(["scan", "-q", "--all", "--format", "csv"])
        .arg(&samples)
        .output()
        .unwrap();
    assert!(out.status.success());
    write(d, "csv/verdicts.csv", &out.stdout);

    let (_, original, _, _) = scan(&["--all", samples.to_str().unwrap()], d);
    let csv_dir = d.join("csv");
    let (code, reread, stats, stderr) = scan(&["--all", csv_dir.to_str().unwrap()], d);
    assert_eq!(code, 0, "{stderr}");
    assert_counts_add_up(&stats);
    assert_eq!(n(&stats, "errors"), 0, "{stats}");
    assert_eq!(reread.len(), original.len());
    for (row, (before, after)) in original.iter().zip(&reread).enumerate() {
        // Everything but where the record was read from survives the trip,
        // the user's type, domain and root flag and the CBC.* code included.
        let mut before = before.clone();
        let mut after = after.clone();
        before.as_object_mut().unwrap().remove("source");
        assert!(after
            .as_object_mut()
            .unwrap()
            .remove("source")
            .unwrap()
            .as_str()
            .unwrap()
            .ends_with(&format!("verdicts.csv:{}", row + 2)));
        assert_eq!(after, before, "row {}", row + 2);
    }
    assert!(original.iter().any(|r| r["error_code"].is_string()));
    assert!(original.iter().any(|r| r["domain"].is_string()));
}

#[test]
fn pipes_named_on_the_command_line_are_streamed_and_pipes_in_directories_reported() {
    // `cts-audit scan <(zcat export.gz)` names a pipe such as /dev/fd/63;
    // /dev/stdin fed by a pipe is the same case.
    let lines: String = (0..3)
        .map(|i| {
            format!(
                "{}\n",
                trace(
                    &uuid(i),
                    "payOrder",
                    "cloudresouce",
                    1_718_779_931_170 + i64::from(i)
                )
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let stats_path = dir.path().join("stats.json");
    let out = cts_audit()
        .args(["scan", "--format", "jsonl", "--stats"])
        .arg(&stats_path)
        .arg("/dev/stdin")
        .write_stdin(gzip(lines.as_bytes()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let records: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 3);
    assert_eq!(records[2]["source"], "/dev/stdin:3");
    let stats: Value = serde_json::from_slice(&std::fs::read(&stats_path).unwrap()).unwrap();
    assert_eq!((n(&stats, "files"), n(&stats, "records")), (1, 3));

    // A pipe inside a scanned directory may never end: it is reported and
    // skipped, and the files beside it are read.
    let exports = dir.path().join("exports");
    write(&exports, "a.jsonl", lines.as_bytes());
    let made = std::process::Command::new("mkfifo")
        .arg(exports.join("live.pipe"))
        .status()
        .unwrap();
    assert!(made.success());
    let (code, records, stats, stderr) = scan(&[exports.to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(records.len(), 3);
    assert_eq!((n(&stats, "files"), n(&stats, "files_skipped")), (1, 1));
    assert!(stderr.contains("live.pipe: not a regular file"), "{stderr}");
    assert_counts_add_up(&stats);
}

#[test]
fn other_compressions_and_utf16_are_refused_once_per_file_with_the_way_to_unpack_them() {
    let dir = tempfile::tempdir().unwrap();
    let line = format!(
        "{}\n",
        trace(&uuid(1), "payOrder", "cloudresouce", 1_718_779_931_170)
    );
    write(dir.path(), "exports/a.jsonl", line.as_bytes());
    // The first bytes of a bzip2 stream, a zip archive and a zstd frame:
    // read as text, each would be a warning per "line" of noise.
    write(
        dir.path(),
        "exports/b.jsonl.bz2",
        b"BZh91AY&SY\x8f\x1a\x02\x00\n\xff\xfe\n\x00",
    );
    write(
        dir.path(),
        "exports/c.zip",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00\n{\"trace_id\"\n",
    );
    write(
        dir.path(),
        "exports/d.jsonl.zst",
        b"\x28\xb5\x2f\xfd\x04\x58\n\n\x01",
    );
    // A console export saved by a spreadsheet as "Unicode text".
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(
            "Trace Name,Trace Source\r\npayOrder,CBC\r\n"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    write(dir.path(), "exports/g.csv", &utf16);
    let exports = dir.path().join("exports");
    let (code, records, stats, stderr) = scan(&[exports.to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(records.len(), 1);
    assert_eq!((n(&stats, "files"), n(&stats, "files_skipped")), (1, 4));
    assert_eq!((n(&stats, "records"), n(&stats, "errors")), (1, 4));
    assert!(
        stderr.contains(
            "g.csv: cannot open: UTF-16 text, which is not read: convert it to UTF-8 first"
        ),
        "{stderr}"
    );
    for (file, how) in [
        ("b.jsonl.bz2", "bzcat"),
        ("c.zip", "unzip -p"),
        ("d.jsonl.zst", "zstdcat"),
    ] {
        assert!(
            stderr.contains(&format!("{file}: cannot open:")),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("`{how} FILE | cts-audit scan -`")),
            "{stderr}"
        );
    }
    assert_counts_add_up(&stats);

    // Alone on stdin, nothing could be read: exit status 2.
    cts_audit()
        .args(["scan", "-q", "-"])
        .write_stdin(&b"BZh91AY&SY\x8f\x1a"[..])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bzip2-compressed content"));
}

#[test]
fn joined_transfer_files_array_lines_and_deep_nesting() {
    let dir = tempfile::tempdir().unwrap();
    let t = |i: u32| {
        trace(
            &uuid(i),
            "payOrder",
            "cloudresouce",
            1_718_779_931_170 + i64::from(i),
        )
    };
    // `zcat */*.json.gz > all.json`: OBS transfer files end without a
    // newline, so the arrays touch; numbering goes on across them.
    let joined = format!(
        "{}{}\n",
        serde_json::to_string(&[t(1), t(2)]).unwrap(),
        serde_json::to_string(&[t(3)]).unwrap()
    );
    write(dir.path(), "all.json", joined.as_bytes());
    // JSON lines where one line is a whole compact transfer file.
    let lines = format!(
        "{}\n{}\n",
        t(4),
        serde_json::to_string(&[t(5), t(6)]).unwrap()
    );
    write(dir.path(), "lines.jsonl", lines.as_bytes());
    // Events inside events, 100 000 deep: reported, not a crash.
    let deep = format!(
        "{}{}{}\n{}\n",
        "{\"cts\":".repeat(100_000),
        t(7),
        "}".repeat(100_000),
        t(8)
    );
    write(dir.path(), "deep.jsonl", deep.as_bytes());

    let (code, records, stats, stderr) = scan(&["--all", dir.path().to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let sources: Vec<&str> = records
        .iter()
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    let name = |file: &str, at: &str| format!("{}{at}", dir.path().join(file).display());
    for expected in [
        name("all.json", "#1"),
        name("all.json", "#2"),
        name("all.json", "#3"),
        name("lines.jsonl", ":1"),
        name("lines.jsonl", ":2#1"),
        name("lines.jsonl", ":2#2"),
        name("deep.jsonl", ":2"),
    ] {
        assert!(
            sources.contains(&expected.as_str()),
            "{expected} not in {sources:?}"
        );
    }
    assert_eq!(n(&stats, "records"), 7);
    assert_eq!(n(&stats, "record_errors"), 1);
    assert!(
        stderr.contains("deep.jsonl: line 1: traces nested more than 8 deep"),
        "{stderr}"
    );
    assert_counts_add_up(&stats);
}

#[test]
fn semicolon_and_tab_separated_exports_read_as_the_comma_one() {
    // The console's export re-saved by a spreadsheet in a European locale
    // (semicolons) or as text (tabs): the same rows, the same verdicts.
    let rows = [
        vec![
            "Trace Name",
            "Resource Type",
            "Trace Source",
            "Resource Name",
            "Trace Status",
            "Operator",
            "Operation Time",
        ],
        vec![
            "unsubscribeResource",
            "cloudresouce",
            "CBC",
            "ecs; prod",
            "Normal",
            "alice",
            "Nov 16, 2023 10:54:04 GMT+08:00",
        ],
        vec![
            "bindCard",
            "order",
            "CBC",
            "card\tending 4242",
            "Warning",
            "alice",
            "Nov 16, 2023 10:58:41 GMT+08:00",
        ],
        vec![
            "createVolume",
            "evs",
            "EVS",
            "data-disk",
            "Normal",
            "carol",
            "1700103909000",
        ],
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut verdicts = Vec::new();
    for (name, delimiter) in [
        ("comma.csv", b','),
        ("semicolon.csv", b';'),
        ("tab.tsv", b'\t'),
    ] {
        let mut text = Vec::new();
        let mut writer = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .from_writer(&mut text);
        for row in &rows {
            writer.write_record(row).unwrap();
        }
        drop(writer);
        let path = dir.path().join(name);
        std::fs::write(&path, &text).unwrap();
        let (code, mut records, stats, stderr) =
            scan(&["--all", path.to_str().unwrap()], dir.path());
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(
            (n(&stats, "records"), n(&stats, "errors")),
            (3, 0),
            "{name}: {stats}"
        );
        for record in &mut records {
            record.as_object_mut().unwrap().remove("source");
        }
        verdicts.push(records);
    }
    let named = |name: &str| {
        verdicts[0]
            .iter()
            .find(|r| r["trace_name"] == name)
            .unwrap()
    };
    assert_eq!(named("unsubscribeResource")["resource_name"], "ecs; prod");
    assert_eq!(named("bindCard")["resource_name"], "card\tending 4242");
    assert_eq!(named("bindCard")["rating"], "warning");
    assert_eq!(verdicts[0], verdicts[1]);
    assert_eq!(verdicts[0], verdicts[2]);
}

#[test]
fn a_table_longer_than_its_held_rows_streams_one_line_per_record() {
    // More flagged records than the table lays out at once (10 000): the
    // rest stream in the same columns, one line each, none lost.
    let dir = tempfile::tempdir().unwrap();
    let mut lines = String::new();
    for i in 0..12_000u32 {
        let mut record = trace(
            &uuid(i),
            "payOrder",
            "cloudresouce",
            1_718_779_931_170 + i64::from(i),
        );
        // A line break in a cell must not break a streamed row.
        record["user"] = format!("{{\"name\":\"alice\\nline {i}\"}}").into();
        lines.push_str(&format!("{record}\n"));
    }
    write(dir.path(), "many.jsonl", lines.as_bytes());
    let out = cts_audit()
        .args(["scan", "-q"])
        .arg(dir.path().join("many.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 12_000 + 2, "{}", &text[..500]);
    assert!(rows[0].starts_with(" TIME "));
    assert_eq!(rows.last(), Some(&"12000 records"));
    assert!(rows[1..=12_000]
        .iter()
        .all(|row| row.contains(" payOrder ") && row.contains("many.jsonl:")));
    assert!(
        rows[12_000].contains("alice\\nline 11999"),
        "{}",
        rows[12_000]
    );
    // The streamed rows keep the held rows' columns.
    let severity_at = |row: &str| row.find(" medium ");
    assert_eq!(severity_at(rows[1]), severity_at(rows[12_000]));
}

#[test]
fn emitting_every_record_judges_each_as_the_flagged_scan_does() {
    // `--all` parses each record whole at once; the flagged scan parses
    // heads first. Over billing and other records, wrappers, duplicates,
    // an unreadable time and damage, the two must agree record for record.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t0 = 1_718_777_931_170;
    let mut other = trace(&uuid(9), "updatePort", "port", t0);
    other["service_type"] = json!("VPC");
    let mut failed = trace(&uuid(3), "payOrder", "cloudresouce", t0 + 3);
    failed["trace_rating"] = json!("warning");
    failed["code"] = json!("403");
    failed["response"] = json!("{\"error_code\":\"CBC.0150\",\"error_msg\":\"denied\"}");
    let mut late = trace(&uuid(4), "renewResource", "cloudresouce", t0 + 4);
    late["time"] = json!("yesterday");
    let page = json!({"traces": [trace(&uuid(5), "bindCard", "order", t0 + 5), other.clone()],
                      "meta_data": {"count": 2}});
    let lines = [
        trace(&uuid(1), "unsubscribeResource", "cloudresouce", t0 + 1).to_string(),
        other.to_string(),
        "{\"trace_id\": \"broken\", ".to_string(),
        failed.to_string(),
        late.to_string(),
        page.to_string(),
        json!({"cts": trace(&uuid(6), "deleteResource", "cloudresouce", t0 + 6)}).to_string(),
        trace(&uuid(1), "unsubscribeResource", "cloudresouce", t0 + 1).to_string(),
        json!({"trace_id": uuid(7), "trace_name": "listBills", "service_type": "BSS"}).to_string(),
    ];
    write(d, "mixed.jsonl", lines.join("\n").as_bytes());
    let path = d.join("mixed.jsonl");
    let path = path.to_str().unwrap();

    let (_, every, every_stats, _) = scan(&["--all", path], d);
    let (_, flagged, flagged_stats, _) = scan(&["--min-severity", "info", path], d);
    assert_counts_add_up(&every_stats);
    for key in [
        "records",
        "record_errors",
        "errors",
        "duplicates",
        "unique",
        "billing",
        "catalogued",
        "uncatalogued",
        "other_service",
        "failed",
    ] {
        assert_eq!(every_stats[key], flagged_stats[key], "{key}");
    }
    assert_eq!(every_stats["error_list"], flagged_stats["error_list"]);
    assert_eq!(every_stats["by_severity"], flagged_stats["by_severity"]);
    assert_eq!(n(&every_stats, "emitted"), n(&every_stats, "unique"));
    assert!(!flagged.is_empty() && flagged.len() < every.len());
    for record in &flagged {
        assert!(
            every.contains(record),
            "{record} is not in the --all output"
        );
    }
}

/// Appends a regular file to a tar being built.
fn tar_file(tar: &mut tar::Builder<Vec<u8>>, path: &str, bytes: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, bytes).unwrap();
}

#[test]
fn tar_archives_are_read_member_by_member_like_the_folder_they_hold() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t0 = 1_718_777_931_170;
    // An OBS download as a colleague would send it: the tree in a .tar.gz.
    let obs = "CloudTraces/ap-southeast-1/2024/06/19/system/CBC";
    let transfer = json!([
        trace(&uuid(1), "bindCard", "order", t0),
        trace(&uuid(2), "queryBalanceAlert", "balance", t0 + 1),
    ]);
    let lines = format!(
        "{}\n{{\"trace_id\": \"cut\n{}\n",
        trace(&uuid(3), "deleteResource", "cloudresouce", t0 + 3),
        trace(&uuid(4), "payOrder", "cloudresouce", t0 + 4),
    );
    let mut nested = tar::Builder::new(Vec::new());
    tar_file(&mut nested, "inner.json", b"[]");
    let mut tar = tar::Builder::new(Vec::new());
    let mut folder = tar::Header::new_gnu();
    folder.set_entry_type(tar::EntryType::Directory);
    folder.set_size(0);
    tar.append_data(&mut folder, "CloudTraces/", &b""[..])
        .unwrap();
    let transfer_name =
        format!("{obs}/x_CloudTrace_ap-southeast-1_2024-06-19T06-18-51Z_21d36ced8a0ba5d1.json.gz");
    tar_file(
        &mut tar,
        &transfer_name,
        &gzip(transfer.to_string().as_bytes()),
    );
    tar_file(
        &mut tar,
        "CloudTraces/Digest/ap-southeast-1/x_CloudTrace-Digest_ap-southeast-1_2024-06-19T06-18-51Z.json.gz",
        &gzip(b"{\"digest_object\":{}}"),
    );
    tar_file(&mut tar, "lts/lines.jsonl", lines.as_bytes());
    tar_file(&mut tar, "old/backup.tar", &nested.into_inner().unwrap());
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    tar.append_link(&mut link, "latest.jsonl", "lts/lines.jsonl")
        .unwrap();
    let bundle = tar.into_inner().unwrap();
    write(d, "in/bundle.tar.gz", &gzip(&bundle));
    let folder = d.join("in").to_str().unwrap().to_owned();

    let (code, records, stats, stderr) = scan(&["--all", &folder], d);
    assert_eq!(code, 0, "{stderr}");
    assert_counts_add_up(&stats);
    let archive = d.join("in/bundle.tar.gz");
    let archive = archive.to_str().unwrap();
    // Each member is a file of its own, named inside the archive.
    assert_eq!(n(&stats, "files"), 2, "{stats}");
    assert_eq!(n(&stats, "digests_skipped"), 1);
    assert_eq!(n(&stats, "files_skipped"), 2, "the nested tar and the link");
    assert_eq!((n(&stats, "records"), n(&stats, "record_errors")), (4, 1));
    assert!(
        stderr.contains(&format!("{archive}/lts/lines.jsonl: line 2: invalid trace")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{archive}/old/backup.tar: a tar archive inside the archive"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{archive}/latest.jsonl: a Symlink member")),
        "{stderr}"
    );
    let source = |id: u32| {
        records
            .iter()
            .find(|r| r["trace_id"] == uuid(id).as_str())
            .map(|r| r["source"].as_str().unwrap().to_owned())
    };
    // Held candidates (bindCard, deleteResource) and streamed records alike.
    assert_eq!(source(1), Some(format!("{archive}/{transfer_name}#1")));
    assert_eq!(source(2), Some(format!("{archive}/{transfer_name}#2")));
    assert_eq!(source(3), Some(format!("{archive}/lts/lines.jsonl:1")));
    assert_eq!(source(4), Some(format!("{archive}/lts/lines.jsonl:3")));

    // The same verdicts as the extracted folder, but for where they came from.
    let extracted = d.join("extracted");
    tar::Archive::new(&bundle[..]).unpack(&extracted).unwrap();
    let (_, from_folder, folder_stats, _) = scan(&["--all", extracted.to_str().unwrap()], d);
    let without_source = |records: &[Value]| {
        records
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r["source"] = Value::Null;
                r
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(without_source(&records), without_source(&from_folder));
    // (The folder's link is followed to a file read twice, so only the
    // unique records compare.)
    for key in ["unique", "emitted", "digests_skipped"] {
        assert_eq!(stats[key], folder_stats[key], "{key}");
    }

    // A plain tar on stdin reads the same; a cut one keeps what came before the cut.
    let out = cts_audit()
        .args(["scan", "-q", "--all", "--format", "jsonl", "-"])
        .write_stdin(bundle.clone())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4);
    let cut = &bundle[..bundle.len() / 2];
    write(d, "cut/half.tar", cut);
    let (code, records, stats, stderr) = scan(&["--all", d.join("cut").to_str().unwrap()], d);
    assert_eq!(code, 0, "{stderr}");
    assert_counts_add_up(&stats);
    assert!(
        (2..4).contains(&records.len()),
        "the records before the cut: {records:?}"
    );
    assert!(
        stderr.contains("half.tar: damaged tar archive: unexpected EOF"),
        "{stderr}"
    );
}

#[test]
fn a_large_tar_member_is_streamed_in_blocks_like_a_large_file() {
    // Past 2 MiB a member is not read whole but cut into blocks as it comes.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t0 = 1_718_777_931_170;
    let count = 6000u32;
    let lines: String = (0..count)
        .map(|i| {
            let name = if i % 2 == 0 { "payOrder" } else { "listBills" };
            format!(
                "{}\n",
                trace(&uuid(10_000 + i), name, "cloudresouce", t0 + i64::from(i))
            )
        })
        .collect();
    assert!(lines.len() > 2 << 20);
    let mut tar = tar::Builder::new(Vec::new());
    tar_file(&mut tar, "lts/big.jsonl", lines.as_bytes());
    tar_file(
        &mut tar,
        "lts/after.jsonl",
        format!("{}\n", trace(&uuid(1), "bindCard", "order", t0)).as_bytes(),
    );
    write(d, "in/big.tar.gz", &gzip(&tar.into_inner().unwrap()));
    let (code, records, stats, stderr) = scan(&["--all", d.join("in").to_str().unwrap()], d);
    assert_eq!(code, 0, "{stderr}");
    assert_counts_add_up(&stats);
    assert_eq!(
        (n(&stats, "files"), n(&stats, "records")),
        (2, u64::from(count) + 1)
    );
    let archive = d.join("in/big.tar.gz");
    let last = records
        .iter()
        .find(|r| r["trace_id"] == uuid(10_000 + count - 1).as_str())
        .unwrap();
    assert_eq!(
        last["source"].as_str().unwrap(),
        format!("{}/lts/big.jsonl:{count}", archive.display())
    );
    let after = records
        .iter()
        .find(|r| r["trace_id"] == uuid(1).as_str())
        .unwrap();
    assert_eq!(
        after["source"].as_str().unwrap(),
        format!("{}/lts/after.jsonl:1", archive.display())
    );

    // A .tar.gz cut short inside a small member: the member is named, its
    // records before the cut are read, and the archive's damage is reported.
    let half: String = lines.lines().take(2000).map(|l| format!("{l}\n")).collect();
    let mut tar = tar::Builder::new(Vec::new());
    tar_file(&mut tar, "lts/half.jsonl", half.as_bytes());
    let packed = gzip(&tar.into_inner().unwrap());
    write(d, "cut/cut.tar.gz", &packed[..packed.len() / 2]);
    let (code, records, stats, stderr) = scan(&["--all", d.join("cut").to_str().unwrap()], d);
    assert_eq!(code, 0, "{stderr}");
    assert_counts_add_up(&stats);
    assert!(
        !records.is_empty() && records.len() < 2000,
        "{}",
        records.len()
    );
    assert!(
        stderr.contains("cut.tar.gz/lts/half.jsonl: cut short inside the archive"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cut.tar.gz: damaged tar archive"),
        "{stderr}"
    );
}
