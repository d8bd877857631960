//! The hostile corpus (issue: hardening): input written to hang the tool,
//! grow its memory, hide a sensitive record behind damage, or reach a
//! terminal or spreadsheet raw. Every case drives the built binary with a
//! timeout, checks the counts add up, and finds the planted record.
//! Fixtures follow ../shared/reference/cts-trace-format.md.

use assert_cmd::Command;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const T0: i64 = 1_718_777_931_170;

fn cts_audit() -> Command {
    let mut command = Command::cargo_bin("cts-audit").unwrap();
    // No case may take long: a hang fails the test instead of the run.
    command.timeout(Duration::from_secs(60));
    command
}

/// A CTS trace as LTS writes it.
fn trace(id: &str, name: &str, service: &str, resource_type: &str) -> Value {
    json!({
        "trace_id": id, "trace_name": name, "service_type": service, "resource_type": resource_type,
        "time": T0, "trace_rating": "normal", "trace_type": "ConsoleAction", "code": 200,
        "source_ip": "203.0.113.10", "user": {"name": "alice", "domain": {"name": "acme"}},
    })
}

fn uuid(n: u32) -> String {
    format!("{n:08x}-2e03-11ef-82de-cf140e2a70fb")
}

/// Scans `path` with `args`; returns (exit code, JSONL records, stats, stderr).
fn scan(dir: &Path, args: &[&str]) -> (i32, Vec<Value>, Value, String) {
    let stats = dir.join("stats.json");
    let out = cts_audit()
        .args(["scan", "--format", "jsonl", "--stats"])
        .arg(&stats)
        .args(args)
        .output()
        .unwrap();
    let records = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stats: Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_counts_add_up(&stats);
    (
        out.status.code().unwrap(),
        records,
        stats,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn n(stats: &Value, key: &str) -> u64 {
    stats[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in {stats}"))
}

fn assert_counts_add_up(stats: &Value) {
    assert_eq!(
        n(stats, "unique"),
        n(stats, "records") - n(stats, "duplicates")
    );
    assert_eq!(
        n(stats, "unique"),
        n(stats, "billing") + n(stats, "audit_trail") + n(stats, "other_service")
    );
    assert_eq!(
        n(stats, "unique"),
        n(stats, "emitted") + n(stats, "filtered_out") + n(stats, "unwritten")
    );
    assert_eq!(
        n(stats, "errors"),
        stats["error_list"].as_array().unwrap().len() as u64 + n(stats, "errors_unlisted")
    );
}

fn names(records: &[Value]) -> Vec<&str> {
    records
        .iter()
        .filter_map(|r| r["trace_name"].as_str())
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn zeros_and_unbroken_lines_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 256 MiB of zeros, gzipped: once read whole before it was refused.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let block = vec![0u8; 1 << 20];
    for _ in 0..256 {
        encoder.write_all(&block).unwrap();
    }
    std::fs::write(d.join("zeros.json.gz"), encoder.finish().unwrap()).unwrap();
    // 8 MB of one unbroken non-JSON line: sniffing must not rescan it.
    std::fs::write(d.join("noise.txt"), vec![b'x'; 8 << 20]).unwrap();
    // A real first line of 20 MB (one JSON record) still reads.
    let mut big = trace(&uuid(1), "deleteTracker", "CTS", "tracker");
    big["request"] = json!("y".repeat(20 << 20));
    std::fs::write(d.join("big.jsonl"), format!("{big}\n")).unwrap();
    let started = Instant::now();
    let (code, records, stats, stderr) = scan(d, &["-q", d.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(names(&records), ["deleteTracker"]);
    assert_eq!(n(&stats, "files_skipped"), 2, "{stats}");
    let text = stats["error_list"].to_string();
    assert!(text.contains("binary content"), "{text}");
    assert!(text.contains("no line break in the first 1 MiB"), "{text}");
}

#[test]
fn a_zero_filled_member_does_not_hide_the_members_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes).unwrap();
    };
    add("CloudTraces/zeros.json", &vec![0u8; 4 << 20]);
    let planted = trace(&uuid(2), "unBindCard", "CBC", "order");
    add("CloudTraces/after.json", format!("[{planted}]").as_bytes());
    std::fs::write(
        dir.path().join("bundle.tar.gz"),
        gzip(&tar.into_inner().unwrap()),
    )
    .unwrap();
    let (code, records, _, stderr) = scan(dir.path(), &["-q", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(names(&records), ["unBindCard"]);
    assert!(records[0]["source"]
        .as_str()
        .unwrap()
        .contains("bundle.tar.gz/CloudTraces/after.json"));
}

#[test]
fn a_member_with_an_absolute_name_is_named_inside_its_archive() {
    let dir = tempfile::tempdir().unwrap();
    let planted = trace(&uuid(3), "deleteTracker", "CTS", "tracker");
    let body = format!("[{planted}]");
    let mut header = tar::Header::new_gnu();
    header.set_size(body.len() as u64);
    header.set_mode(0o644);
    // `append_data` refuses absolute names; the raw header does not.
    header.as_gnu_mut().unwrap().name[..15].copy_from_slice(b"/tmp/evil.json\0");
    header.set_cksum();
    let mut tar = tar::Builder::new(Vec::new());
    tar.append(&header, body.as_bytes()).unwrap();
    std::fs::write(dir.path().join("a.tar"), tar.into_inner().unwrap()).unwrap();
    let (_, records, _, _) = scan(dir.path(), &["-q", dir.path().to_str().unwrap()]);
    let source = records[0]["source"].as_str().unwrap();
    assert!(source.contains("a.tar/tmp/evil.json"), "{source}");
}

/// Many JSON lines, every one emitted by `--all`.
fn many_lines(dir: &Path, count: u32) -> std::path::PathBuf {
    let mut text = String::new();
    for i in 0..count {
        let name = if i % 2 == 0 {
            "deleteTracker"
        } else {
            "listBills"
        };
        let mut record = trace(&uuid(10_000 + i), name, "CBC", "bill");
        if name == "deleteTracker" {
            record["service_type"] = json!("CTS");
            record["resource_type"] = json!("tracker");
        }
        text.push_str(&record.to_string());
        text.push('\n');
    }
    let path = dir.join("big.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_closed_pipe_stops_the_scan_keeps_fail_on_and_writes_the_stats() {
    let dir = tempfile::tempdir().unwrap();
    let input = many_lines(dir.path(), 200_000);
    let stats = dir.path().join("stats.json");
    for format in ["jsonl", "table"] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("cts-audit"))
            .args([
                "scan",
                "-q",
                "--fail-on",
                "high",
                "--format",
                format,
                "--stats",
            ])
            .arg(&stats)
            .arg(&input)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let mut first = [0u8; 64];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut first)
            .unwrap();
        drop(child.stdout.take()); // as `| head -c 64` does
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        child.stderr.unwrap().read_to_string(&mut stderr).unwrap();
        assert!(started.elapsed() < Duration::from_secs(30), "{format}");
        assert_eq!(status.code(), Some(1), "{format}: {stderr}");
        assert!(!stderr.contains("error"), "{format}: {stderr}");
        let stats: Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
        assert_counts_add_up(&stats);
        assert_eq!(stats["stopped"], true, "{format}");
    }
}

#[test]
fn a_full_disk_is_an_error_and_ends_the_scan() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = many_lines(dir.path(), 100_000);
    for format in ["jsonl", "table"] {
        let started = Instant::now();
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("cts-audit"))
            .args(["scan", "-q", "--all", "--format", format])
            .arg(&input)
            .stdout(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .unwrap(),
            )
            .output()
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(30), "{format}");
        assert_eq!(out.status.code(), Some(2), "{format}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("writing to stdout"));
    }
}

#[test]
fn a_million_bad_lines_keep_memory_and_stats_flat() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = "x\n".repeat(300_000);
    text.push_str(&trace(&uuid(4), "deleteTracker", "CTS", "tracker").to_string());
    text.push('\n');
    std::fs::write(dir.path().join("bad.jsonl"), text).unwrap();
    let (code, records, stats, stderr) = scan(
        dir.path(),
        &[dir.path().join("bad.jsonl").to_str().unwrap()],
    );
    assert_eq!(code, 0);
    assert_eq!(names(&records), ["deleteTracker"]);
    assert_eq!(n(&stats, "record_errors"), 300_000);
    assert_eq!(stats["error_list"].as_array().unwrap().len(), 1_000);
    assert_eq!(n(&stats, "errors_unlisted"), 299_000);
    let by_kind = &stats["unlisted_errors"];
    assert_eq!(by_kind.as_object().unwrap().len(), 1, "{by_kind}");
    assert!(stderr.lines().count() < 30, "{stderr}");
    assert!(
        std::fs::metadata(dir.path().join("stats.json"))
            .unwrap()
            .len()
            < 1 << 20
    );
}

#[test]
fn absurd_thread_counts_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let input = many_lines(dir.path(), 10);
    let out = cts_audit()
        .args(["scan", "-q", "-j", "100000"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("-j 100000"));
}

#[test]
fn damage_in_one_field_does_not_hide_a_sensitive_record() {
    let dir = tempfile::tempdir().unwrap();
    let base = trace(&uuid(5), "deleteTracker", "CTS", "tracker").to_string();
    // The record without its closing brace, to append members to.
    let strip = |text: &str| text[..text.len() - 1].to_owned();
    let mut lines: Vec<Vec<u8>> = vec![
        // A key given twice: the benign value first.
        format!(
            r#"{{"trace_name":"listBills",{}}}"#,
            &base[1..base.len() - 1]
        )
        .into_bytes(),
        format!(
            r#"{},"code":1e999999}}"#,
            strip(&base).replace(r#""code":200,"#, "")
        )
        .into_bytes(),
        format!(r#"{},"message":NaN}}"#, strip(&base)).into_bytes(),
        format!(r#"{},"message":{}}}"#, strip(&base), "9".repeat(5000)).into_bytes(),
        base.replace(&format!(r#""time":{T0}"#), r#""time":true"#)
            .into_bytes(),
        base.replace(&format!(r#""time":{T0}"#), r#""time":[]"#)
            .into_bytes(),
        base.replace(&format!(r#""time":{T0}"#), r#""time":{}"#)
            .into_bytes(),
        format!(r#"{},"request":"a\ud800b"}}"#, strip(&base)).into_bytes(),
    ];
    let mut raw_nul = strip(&base).into_bytes();
    raw_nul.extend_from_slice(b",\"request\":\"nul \x00 here\"}");
    lines.push(raw_nul);
    let mut bad_utf8 = strip(&base).into_bytes();
    bad_utf8.extend_from_slice(b",\"request\":\"bad \xff byte\"}");
    lines.push(bad_utf8);
    let count = lines.len();
    // Each line its own trace: one id shared would make them conflicts.
    let ids: Vec<Vec<u8>> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let own = uuid(100 + i as u32);
            let mut line = line.clone();
            let at = line
                .windows(36)
                .position(|w| w == uuid(5).as_bytes())
                .unwrap();
            line[at..at + 36].copy_from_slice(own.as_bytes());
            line
        })
        .collect();
    let text: Vec<u8> = ids.join(&b'\n');
    std::fs::write(dir.path().join("damaged.jsonl"), text).unwrap();
    let (code, records, stats, stderr) = scan(
        dir.path(),
        &["-q", dir.path().join("damaged.jsonl").to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(n(&stats, "record_errors"), 0, "{stats}");
    assert_eq!(n(&stats, "records"), count as u64);
    // Each repair is warned; 5,000 digits and a lone surrogate in a field
    // no rule reads are no damage to serde_json's walk at all.
    assert!(n(&stats, "record_warnings") >= count as u64 - 2, "{stats}");
    // Every record is the deleteTracker; the first is flagged as edited
    // because it named itself twice.
    assert_eq!(names(&records), vec!["deleteTracker"; count], "{stats}");
    let first = records
        .iter()
        .find(|r| r["source"].as_str().unwrap().ends_with(":1"))
        .unwrap();
    let rules = first["rules"].to_string();
    assert!(
        rules.contains("audit.malformed") && rules.contains("audit.tamper"),
        "{rules}"
    );
}

#[test]
fn odd_codes_times_and_ratings_are_read_or_warned() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    for (i, code) in [
        json!(-400),
        json!(403.5),
        json!("4e2"),
        json!(18446744073709551616u128 as f64),
    ]
    .into_iter()
    .enumerate()
    {
        let mut record = trace(&uuid(20 + i as u32), "bindCard", "CBC", "order");
        record["code"] = code;
        lines.push(record.to_string());
    }
    for (i, time) in [json!(1e20), json!(253402300800000i64)]
        .into_iter()
        .enumerate()
    {
        let mut record = trace(&uuid(30 + i as u32), "payOrder", "CBC", "cloudresouce");
        record["time"] = time;
        lines.push(record.to_string());
    }
    let mut incident = trace(&uuid(40), "someNewCall", "CBC", "order");
    incident["trace_rating"] = json!("INCIDENT");
    lines.push(incident.to_string());
    std::fs::write(dir.path().join("odd.jsonl"), lines.join("\n")).unwrap();
    let (_, records, stats, _) = scan(dir.path(), &["-q", "--all", dir.path().to_str().unwrap()]);
    let by_id = |n: u32| records.iter().find(|r| r["trace_id"] == uuid(n)).unwrap();
    assert_eq!(by_id(20)["code"], Value::Null);
    assert_eq!(
        (by_id(21)["code"].as_u64(), &by_id(21)["failed"]),
        (Some(403), &json!(true))
    );
    assert_eq!(by_id(22)["code"].as_u64(), Some(400));
    assert_eq!(by_id(30)["time"], Value::Null);
    assert_eq!(by_id(31)["time"], Value::Null);
    assert!(by_id(40)["rules"].to_string().contains("incident.billing"));
    let warnings = stats["error_list"].to_string();
    for expected in [
        "`code` is a negative number",
        "`code` is not a whole number",
        "too large",
        "`time` is not a time",
    ] {
        assert!(warnings.contains(expected), "{expected} not in {warnings}");
    }
}

#[test]
fn an_array_first_line_does_not_swallow_the_lines_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let first = json!([trace(&uuid(50), "listBills", "CBC", "bill")]);
    let text = format!(
        "{first}\n{}\n{}\n",
        trace(&uuid(51), "unBindCard", "CBC", "order"),
        trace(&uuid(52), "deleteTracker", "CTS", "tracker")
    );
    std::fs::write(dir.path().join("lts.jsonl"), text).unwrap();
    let (_, records, stats, _) = scan(dir.path(), &["-q", dir.path().to_str().unwrap()]);
    let mut found = names(&records);
    found.sort();
    assert_eq!(found, ["deleteTracker", "unBindCard"], "{stats}");
    assert_eq!(n(&stats, "records"), 3);
    let sources: Vec<&str> = records
        .iter()
        .filter_map(|r| r["source"].as_str())
        .collect();
    assert!(
        sources.iter().any(|s| s.ends_with("lts.jsonl:3")),
        "{sources:?}"
    );
}

#[test]
fn time_bounds_keep_the_records_they_cannot_place() {
    let dir = tempfile::tempdir().unwrap();
    let mut untimed = trace(&uuid(60), "deleteTracker", "CTS", "tracker");
    untimed["time"] = json!("yesterday");
    let mut missing = trace(&uuid(61), "unBindCard", "CBC", "order");
    missing.as_object_mut().unwrap().remove("time");
    let old = trace(&uuid(62), "bindCard", "CBC", "order");
    std::fs::write(
        dir.path().join("t.jsonl"),
        format!("{untimed}\n{missing}\n{old}\n"),
    )
    .unwrap();
    let (_, records, stats, _) = scan(
        dir.path(),
        &["-q", "--since", "2025-01-01", dir.path().to_str().unwrap()],
    );
    let mut found = names(&records);
    found.sort();
    assert_eq!(found, ["deleteTracker", "unBindCard"]);
    assert_eq!(n(&stats, "untimed_kept"), 2);
}

#[test]
fn terminal_output_shows_control_characters_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let mut record = trace(&uuid(70), "unBindCard", "CBC", "order");
    record["user"] = json!({"name": "eve\nFAKE ROW critical deleteTracker\u{1b}[2J\r"});
    std::fs::write(
        dir.path().join("inject\u{1b}[31m.jsonl"),
        format!("{record}\n{{broken\n"),
    )
    .unwrap();
    for format in ["table", "summary"] {
        let out = cts_audit()
            .args(["scan", "--format", format])
            .arg(dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        for text in [&stdout, &stderr] {
            assert!(
                !text.contains('\u{1b}') && !text.contains('\r'),
                "{format}: {text:?}"
            );
        }
        assert!(
            !stdout
                .lines()
                .any(|l| l.trim_start().starts_with("FAKE ROW")),
            "{stdout}"
        );
        if format == "table" {
            assert!(stdout.contains("eve\\nFAKE ROW"), "{stdout}");
            assert!(stderr.contains("inject\\x1b[31m.jsonl"), "{stderr}");
        }
    }
}

#[test]
fn csv_cells_cannot_run_as_formulas_and_still_scan_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut record = trace(&uuid(80), "unBindCard", "CBC", "order");
    record["user"] = json!({"name": "=HYPERLINK(\"http://evil\",\"x\")"});
    record["resource_name"] = json!("@SUM(1+1)");
    std::fs::write(dir.path().join("t.jsonl"), format!("{record}\n")).unwrap();
    let out = cts_audit()
        .args(["scan", "-q", "--format", "csv"])
        .arg(dir.path().join("t.jsonl"))
        .output()
        .unwrap();
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(
        csv.contains("'=HYPERLINK") && csv.contains("'@SUM"),
        "{csv}"
    );
    let back = dir.path().join("back");
    std::fs::create_dir(&back).unwrap();
    std::fs::write(back.join("verdicts.csv"), &csv).unwrap();
    let (_, records, _, _) = scan(&back, &["-q", back.to_str().unwrap()]);
    assert_eq!(records[0]["user"], "=HYPERLINK(\"http://evil\",\"x\")");
}

#[test]
fn a_huge_value_in_a_warning_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let line = format!("{{\"trace_name\": [\"{}\"\n", "z".repeat(5 << 20));
    std::fs::write(dir.path().join("t.jsonl"), line).unwrap();
    let out = cts_audit()
        .args(["scan", "-q"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.stderr.len() < 4096,
        "{} bytes of stderr",
        out.stderr.len()
    );
}

#[test]
fn one_record_gets_one_severity_whatever_rules_are_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let mut failed = trace(&uuid(90), "someNewCall", "CBC", "order");
    failed["code"] = json!(500);
    let plain = trace(&uuid(91), "someOtherCall", "CBC", "order");
    std::fs::write(dir.path().join("t.jsonl"), format!("{failed}\n{plain}\n")).unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nid = \"acme.never\"\ntitle = \"never fires\"\nseverity = \"high\"\n\
         when = { field = \"user\", exists = true }\nthreshold = { count = 1000, window = \"1h\" }\n",
    )
    .unwrap();
    let input = dir.path().join("t.jsonl");
    let (_, without, _, _) = scan(
        dir.path(),
        &["-q", "--min-severity", "info", input.to_str().unwrap()],
    );
    let (_, with, _, _) = scan(
        dir.path(),
        &[
            "-q",
            "--min-severity",
            "info",
            "--rules",
            rules.to_str().unwrap(),
            input.to_str().unwrap(),
        ],
    );
    let by_id = |mut records: Vec<Value>| {
        records.sort_by_key(|r| r["trace_id"].as_str().map(str::to_owned));
        records
    };
    assert_eq!(without.len(), 2);
    assert_eq!(by_id(without), by_id(with));
}

#[test]
fn an_empty_rule_window_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nid = \"acme.zero\"\ntitle = \"zero\"\nseverity = \"high\"\n\
         when = { field = \"user\", exists = true }\nthreshold = { count = 1, window = \"0s\" }\n",
    )
    .unwrap();
    let out = cts_audit()
        .args(["rules", "--check"])
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("window \"0s\" is empty"));
}

#[test]
fn a_reused_trace_id_hides_no_record_and_a_redelivery_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let id = uuid(60);
    // An OBS transfer file: a benign query, then the same id on a deletion
    // of the audit trail, in a JSON-lines export.
    let obs = json!([trace(&id, "listBills", "CBC", "bill")]);
    std::fs::write(
        input.join("a_CloudTrace.json.gz"),
        gzip(obs.to_string().as_bytes()),
    )
    .unwrap();
    let mut again = trace(&id.to_uppercase(), "listBills", "CBC", "bill");
    // The same trace from the API: the id in upper case, code as text.
    again["code"] = json!("200");
    let damaged = trace(&id, "unBindCard", "CBC", "order")
        .to_string()
        .replace("203.0.113.10", "203.0.113.10\u{1}");
    let text = format!(
        "{}\n{again}\n{damaged}\n",
        trace(&id, "deleteTracker", "CTS", "tracker")
    );
    std::fs::write(input.join("b_lts.jsonl"), text).unwrap();
    for args in [
        vec!["-q", input.to_str().unwrap()],
        vec!["-q", "--all", input.to_str().unwrap()],
    ] {
        let (_, records, stats, _) = scan(dir.path(), &args);
        assert_eq!(n(&stats, "records"), 4, "{stats}");
        assert_eq!(n(&stats, "duplicates"), 1, "{stats}");
        assert_eq!(n(&stats, "conflicts"), 2, "{stats}");
        for name in ["deleteTracker", "unBindCard"] {
            let record = records
                .iter()
                .find(|r| r["trace_name"] == name)
                .unwrap_or_else(|| panic!("{name} hidden: {stats}"));
            let rules = record["rules"].as_array().unwrap();
            assert!(rules.contains(&json!("audit.conflict")), "{record}");
            assert!(
                ["high", "critical"].contains(&record["severity"].as_str().unwrap()),
                "{record}"
            );
        }
    }
    // The same through stdin, the stream path.
    let stream = format!(
        "{}\n{}\n",
        trace(&id, "listBills", "CBC", "bill"),
        trace(&id, "deleteTracker", "CTS", "tracker")
    );
    let out = cts_audit()
        .args(["scan", "-q", "--format", "jsonl", "-"])
        .write_stdin(stream)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("deleteTracker") && text.contains("audit.conflict"),
        "{text}"
    );
}

#[test]
fn an_unbalanced_quote_in_a_csv_swallows_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = b"\xEF\xBB\xBFTrace Name,Resource Type,Trace Source,Resource ID,Resource Name,Trace Status,Operator,Operation Time\r\n".to_vec();
    // The quote before `oops` never closes where it should: a plain reader
    // reads the next rows into that cell, up to the next quote.
    csv.extend_from_slice(b"listBills,bill,CBC,-,\"oops,Normal,alice,2023-11-16T02:54:04Z\r\n");
    csv.extend_from_slice(b"bindCard,order,CBC,-,-,Warning,alice,2023-11-16T02:58:41Z\r\n");
    csv.extend_from_slice(
        b"deleteTracker,tracker,CTS,-,system,Normal,mallory,2023-11-16T02:59:00Z\r\n",
    );
    csv.extend_from_slice(b"payOrder,cloudresouce,CBC,-,-,Normal,alice,2023-11-16T03:00:00Z\r\n");
    csv.extend_from_slice(
        b"unBindCard,order,CBC,-,-,Normal,bob,\"Nov 16, 2023 11:01:00 GMT+08:00\"\r\n",
    );
    // A cell that really holds a line break stays one cell.
    csv.extend_from_slice(b"setCard,order,CBC,-,\"card\r\nending 4242\",Normal,bob,\"Nov 16, 2023 11:02:00 GMT+08:00\"\r\n");
    let path = dir.path().join("console.csv");
    std::fs::write(&path, csv).unwrap();
    let (_, records, stats, stderr) = scan(dir.path(), &["-q", "--all", path.to_str().unwrap()]);
    let mut found = names(&records);
    found.sort();
    assert_eq!(
        found,
        [
            "bindCard",
            "deleteTracker",
            "listBills",
            "payOrder",
            "setCard",
            "unBindCard"
        ],
        "{stats}"
    );
    let delete = records
        .iter()
        .find(|r| r["trace_name"] == "deleteTracker")
        .unwrap();
    assert!(
        delete["source"]
            .as_str()
            .unwrap()
            .ends_with("console.csv:4"),
        "{delete}"
    );
    assert_eq!(delete["time"], "2023-11-16T02:59:00.000Z");
    assert_eq!(n(&stats, "record_errors"), 0, "{stats}");
    assert!(
        stderr.contains("line 2") && stderr.contains("unbalanced quote"),
        "{stderr}"
    );
    let card = records
        .iter()
        .find(|r| r["trace_name"] == "setCard")
        .unwrap();
    assert_eq!(card["resource_name"], "card\r\nending 4242");
}

/// A file read whole and the same bytes streamed from stdin are counted
/// the same way: one test of emptiness, one wording.
#[test]
fn a_file_and_a_stream_of_the_same_bytes_are_counted_alike() {
    let dir = tempfile::tempdir().unwrap();
    let line = trace(&uuid(70), "bindCard", "CBC", "order").to_string();
    let truncated_gzip = {
        let whole = gzip(format!("{line}\n{line}\n").as_bytes());
        whole[..whole.len() / 2].to_vec()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("blank lines", b"\n\n  \n".to_vec()),
        ("one record", format!("{line}\n").into_bytes()),
        ("a truncated gzip", truncated_gzip),
        ("an unclosed array", format!("[{line},").into_bytes()),
    ];
    let stats_of = |args: &[&str], stdin: Option<Vec<u8>>| {
        let stats = dir.path().join("stats.json");
        let mut command = cts_audit();
        command
            .args(["scan", "-q", "--all", "--format", "jsonl", "--stats"])
            .arg(&stats)
            .args(args);
        if let Some(bytes) = stdin {
            command.write_stdin(bytes);
        }
        command.output().unwrap();
        let stats: Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
        assert_counts_add_up(&stats);
        let messages: Vec<String> = stats["error_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_owned())
            .collect();
        (
            [
                n(&stats, "files"),
                n(&stats, "files_skipped"),
                n(&stats, "records"),
                n(&stats, "record_errors"),
                n(&stats, "errors"),
            ],
            messages,
        )
    };
    for (name, bytes) in cases {
        let file = dir.path().join("input.bin");
        std::fs::write(&file, &bytes).unwrap();
        let as_file = stats_of(&[file.to_str().unwrap()], None);
        let as_stream = stats_of(&["-"], Some(bytes));
        assert_eq!(as_file, as_stream, "{name}");
    }
}
