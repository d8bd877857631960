//! `cts-audit verify` over trails signed exactly as
//! ../shared/reference/digest-integrity.md describes (tests/common/trail.rs),
//! intact and tampered with in each way the reference names. Each case
//! drives the built binary and reads its JSON-lines findings.

#[path = "common/trail.rs"]
mod trail;

use assert_cmd::Command;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use trail::{gzip, sign_tree, Signer, Written};

const REGION: &str = "ap-southeast-1";
/// The first trace file of a test trail is delivered at 00:20 on 19 June.
fn first_delivery() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 19, 0, 20, 0).unwrap()
}

fn key_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(name)
}

/// A trace file's object key for `service` delivered at `time`.
fn trace_object(service: &str, time: DateTime<Utc>, n: usize) -> String {
    format!(
        "CloudTraces/{REGION}/{}/system/{service}/cts_CloudTrace_{REGION}_{}_{n:016x}.json.gz",
        time.format("%Y/%-m/%-d"),
        time.format("%Y-%m-%dT%H-%M-%SZ")
    )
}

/// A trace file as CTS writes it to OBS: a gzip'd JSON array.
fn trace_file(service: &str, time: DateTime<Utc>, n: usize) -> Vec<u8> {
    let (name, resource) = match service {
        "CBC" => ("payOrder", "order"),
        _ => ("createServer", "ecs"),
    };
    let records = json!([{
        "trace_id": format!("{n:08x}-2e03-11ef-82de-cf140e2a70fb"), "trace_name": name,
        "service_type": service, "resource_type": resource, "time": time.timestamp_millis(),
        "trace_rating": "normal", "trace_type": "ConsoleAction", "code": 200,
        "source_ip": "203.0.113.10", "tracker_name": "system",
        "user": "{\"name\":\"alice\",\"domain\":{\"name\":\"acme\",\"id\":\"7e0d\"}}",
    }]);
    gzip(records.to_string().as_bytes())
}

/// A trail of `hours` hours: each hour one CBC and one ECS trace file.
fn write_traces(root: &Path, hours: i64) {
    for h in 0..hours {
        for (i, service) in ["CBC", "ECS"].iter().enumerate() {
            let time = first_delivery() + Duration::hours(h);
            let n = (h * 2) as usize + i;
            let path = root.join(trace_object(service, time, n));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, trace_file(service, time, n)).unwrap();
        }
    }
}

/// A signed trail of six hours, with the newest digests' signatures in
/// `signatures.txt` beside it.
struct Trail {
    dir: tempfile::TempDir,
    digests: Vec<Written>,
}

impl Trail {
    fn new() -> Trail {
        Trail::with(&|_| true)
    }

    fn with(enabled: &dyn Fn(DateTime<Utc>) -> bool) -> Trail {
        let dir = tempfile::tempdir().unwrap();
        write_traces(&dir.path().join("download"), 6);
        let digests = sign_tree(&dir.path().join("download"), &Signer::test_key(), enabled);
        std::fs::write(
            dir.path().join("signatures.txt"),
            trail::newest_signatures(&digests),
        )
        .unwrap();
        Trail { dir, digests }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("download")
    }

    /// The digest of `service` for the hour that starts `h` hours in.
    fn digest(&self, service: &str, h: i64) -> &Written {
        let start = trail::digest_hour(first_delivery() + Duration::hours(h));
        self.digests
            .iter()
            .find(|w| w.start == start && w.object.contains(&format!("/Digest/{service}/")))
            .unwrap()
    }

    fn trace(&self, service: &str, h: i64) -> (String, PathBuf) {
        let i = usize::from(service != "CBC");
        let object = trace_object(
            service,
            first_delivery() + Duration::hours(h),
            h as usize * 2 + i,
        );
        let path = self.root().join(&object);
        (object, path)
    }

    /// Runs `verify --format jsonl` over `paths` with the test key and the
    /// signatures; returns (exit code, findings, stderr).
    fn verify(&self, extra: &[&str]) -> (i32, Vec<Value>, String) {
        self.verify_paths(&[self.root()], extra)
    }

    fn verify_paths(&self, paths: &[PathBuf], extra: &[&str]) -> (i32, Vec<Value>, String) {
        let mut command = Command::cargo_bin("cts-audit").unwrap();
        command
            .timeout(std::time::Duration::from_secs(60))
            .args(["verify", "--format", "jsonl"]);
        if !extra.contains(&"--public-key") {
            command
                .arg("--public-key")
                .arg(key_path("test-public-key.pem"));
        }
        command
            .arg("--signatures")
            .arg(self.dir.path().join("signatures.txt"))
            .args(extra)
            .args(paths);
        let out = command.output().unwrap();
        let findings = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (
            out.status.code().unwrap(),
            findings,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn with_check<'f>(findings: &'f [Value], check: &str) -> Vec<&'f Value> {
    findings.iter().filter(|f| f["check"] == check).collect()
}

fn problems(findings: &[Value]) -> Vec<(String, String)> {
    findings
        .iter()
        .filter(|f| f["ok"] == false)
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_owned(),
                f["object"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn an_intact_trail_verifies_whole() {
    let trail = Trail::new();
    let (code, findings, stderr) = trail.verify(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(problems(&findings).is_empty(), "{:?}", problems(&findings));
    assert_eq!(with_check(&findings, "trace_file_ok").len(), 12);
    assert_eq!(
        with_check(&findings, "digest_ok").len(),
        12,
        "two folders, six hours"
    );
    assert_eq!(with_check(&findings, "chain_start").len(), 2);
    // Every finding has the documented fields.
    for f in &findings {
        for field in ["check", "ok", "object", "digest", "time_range", "message"] {
            assert!(f.get(field).is_some(), "{field} missing in {f}");
        }
    }
    let ok = with_check(&findings, "trace_file_ok")[0];
    assert!(ok["digest"].as_str().unwrap().contains("/Digest/"));
    assert!(ok["time_range"]["start"]
        .as_str()
        .unwrap()
        .ends_with(":09:17Z"));
    assert!(stderr.contains("12 verified"), "{stderr}");
    assert!(
        stderr.contains("nothing points to tampering or loss"),
        "{stderr}"
    );
}

#[test]
fn a_modified_trace_file_is_named_with_its_digest() {
    let trail = Trail::new();
    let (object, path) = trail.trace("CBC", 2);
    // The payment is rewritten as a harmless query, and the file re-gzipped.
    let text = String::from_utf8(read_gz(&path))
        .unwrap()
        .replace("payOrder", "queryOrder");
    std::fs::write(&path, gzip(text.as_bytes())).unwrap();
    let (code, findings, _) = trail.verify(&[]);
    assert_eq!(code, 1);
    assert_eq!(
        problems(&findings),
        [("trace_file_modified".to_owned(), object)]
    );
    let modified = with_check(&findings, "trace_file_modified")[0];
    assert_eq!(modified["digest"], trail.digest("CBC", 2).object.as_str());
    assert!(modified["message"]
        .as_str()
        .unwrap()
        .contains("but the digest lists"));
}

#[test]
fn a_deleted_trace_file_is_missing() {
    let trail = Trail::new();
    let (object, path) = trail.trace("ECS", 4);
    std::fs::remove_file(path).unwrap();
    let (code, findings, _) = trail.verify(&[]);
    assert_eq!(code, 1);
    assert_eq!(
        problems(&findings),
        [("trace_file_missing".to_owned(), object)]
    );
}

#[test]
fn an_inserted_trace_file_is_unlisted_by_the_digest_of_its_hour() {
    let trail = Trail::new();
    let time = first_delivery() + Duration::hours(3) + Duration::minutes(10);
    let object = trace_object("CBC", time, 99);
    let path = trail.root().join(&object);
    std::fs::write(&path, trace_file("CBC", time, 99)).unwrap();
    let (code, findings, _) = trail.verify(&[]);
    assert_eq!(code, 1);
    assert_eq!(
        problems(&findings),
        [("trace_file_unlisted".to_owned(), object)]
    );
    let unlisted = with_check(&findings, "trace_file_unlisted")[0];
    assert_eq!(unlisted["digest"], trail.digest("CBC", 3).object.as_str());
}

#[test]
fn a_modified_digest_fails_its_hash_link_and_its_signature() {
    let trail = Trail::new();
    let digest = trail.digest("CBC", 2).clone();
    // The attacker drops the trace file from the digest, to delete it unseen.
    let mut json: Value = serde_json::from_slice(&read_gz(&digest.path)).unwrap();
    json["log_files"] = json!([]);
    std::fs::write(&digest.path, gzip(json.to_string().as_bytes())).unwrap();
    std::fs::remove_file(trail.trace("CBC", 2).1).unwrap();
    let (code, findings, _) = trail.verify(&[]);
    assert_eq!(code, 1);
    let mut found = problems(&findings);
    found.sort();
    assert_eq!(
        found,
        [
            ("digest_hash_mismatch".to_owned(), digest.object.clone()),
            ("digest_signature_invalid".to_owned(), digest.object.clone()),
        ]
    );
    assert_eq!(
        with_check(&findings, "digest_hash_mismatch")[0]["digest"],
        trail.digest("CBC", 3).object.as_str(),
        "the next digest recorded the hash"
    );
}

#[test]
fn a_deleted_digest_is_missing_and_its_hour_unlisted() {
    let trail = Trail::new();
    let deleted = trail.digest("ECS", 2).clone();
    std::fs::remove_file(&deleted.path).unwrap();
    let (code, findings, _) = trail.verify(&[]);
    assert_eq!(code, 1);
    let (trace, _) = trail.trace("ECS", 2);
    let mut found = problems(&findings);
    found.sort();
    assert_eq!(
        found,
        [
            ("digest_missing".to_owned(), deleted.object.clone()),
            ("trace_file_unlisted".to_owned(), trace),
        ]
    );
    let missing = with_check(&findings, "digest_missing")[0];
    assert_eq!(missing["digest"], trail.digest("ECS", 3).object.as_str());
    assert!(
        with_check(&findings, "hours_uncovered").is_empty(),
        "one digest, one problem"
    );
}

#[test]
fn two_consecutive_deleted_digests_are_two_problems() {
    // CloudTrail's validator once missed this (aws-cli issue 7054).
    let trail = Trail::new();
    for h in [2, 3] {
        std::fs::remove_file(&trail.digest("CBC", h).path).unwrap();
    }
    let (code, findings, _) = trail.verify(&[]);
    assert_eq!(code, 1);
    let missing = with_check(&findings, "digest_missing");
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["object"], trail.digest("CBC", 3).object.as_str());
    let uncovered = with_check(&findings, "hours_uncovered");
    assert_eq!(uncovered.len(), 1, "the hour no digest names");
    assert_eq!(uncovered[0]["ok"], false);
    let hour = trail.digest("CBC", 2).start;
    assert_eq!(
        uncovered[0]["time_range"]["start"],
        hour.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    );
    assert_eq!(
        uncovered[0]["time_range"]["end"],
        (hour + Duration::hours(1))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    );
    // Both hours' trace files are vouched for by nothing, and say so.
    assert_eq!(with_check(&findings, "trace_file_unlisted").len(), 2);
}

#[test]
fn a_moved_digest_is_reported_and_found_by_content() {
    let trail = Trail::new();
    let digest = trail.digest("CBC", 1).clone();
    // Renamed out of its Digest/ name: found by its content all the same.
    let moved = digest.path.with_file_name("renamed.json.gz");
    std::fs::rename(&digest.path, &moved).unwrap();
    let (code, findings, _) = trail.verify(&[]);
    assert_eq!(code, 1);
    let found = problems(&findings);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "digest_moved");
    assert!(found[0].1.ends_with("/Digest/CBC/renamed.json.gz"));
    assert!(
        with_check(&findings, "digest_missing").is_empty(),
        "the chain still links"
    );
}

#[test]
fn a_restarted_chain_is_information_and_its_gap_unverified() {
    let off = |h: i64| trail::digest_hour(first_delivery() + Duration::hours(h));
    let trail = Trail::with(&|hour| hour != off(2) && hour != off(3));
    let (code, findings, stderr) = trail.verify(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(problems(&findings).is_empty(), "{:?}", problems(&findings));
    assert_eq!(with_check(&findings, "chain_end").len(), 2);
    assert_eq!(with_check(&findings, "chain_start").len(), 4);
    for f in with_check(&findings, "chain_end")
        .iter()
        .chain(&with_check(&findings, "chain_start"))
    {
        assert_eq!(f["ok"], Value::Null);
    }
    let unverified = with_check(&findings, "trace_file_unverified");
    assert_eq!(unverified.len(), 4, "two hours of two folders");
    assert!(unverified[0]["message"]
        .as_str()
        .unwrap()
        .contains("verification was off"));
}

#[test]
fn a_wrong_key_fails_every_signature() {
    let trail = Trail::new();
    let (code, findings, _) = trail.verify(&[
        "--public-key",
        key_path("other-public-key.pem").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert_eq!(with_check(&findings, "digest_signature_invalid").len(), 12);
    assert!(with_check(&findings, "digest_ok").is_empty());
    // The files still match what the digests list.
    assert_eq!(with_check(&findings, "trace_file_ok").len(), 12);
}

#[test]
fn the_newest_digest_without_its_signature_is_unknown_not_failed() {
    let trail = Trail::new();
    std::fs::write(trail.dir.path().join("signatures.txt"), "").unwrap();
    let (code, findings, _) = trail.verify(&[]);
    assert_eq!(code, 0);
    let unknown = with_check(&findings, "digest_signature_unknown");
    assert_eq!(unknown.len(), 2);
    assert!(unknown.iter().all(|f| f["ok"] == Value::Null));
    assert_eq!(with_check(&findings, "digest_ok").len(), 10);
    // Given on the command line instead, it verifies.
    let newest = trail.digest("CBC", 5);
    let given = format!("obs://acme-cts/{}={}", newest.object, newest.signature);
    let (_, findings, _) = trail.verify(&["--signature", &given]);
    assert_eq!(with_check(&findings, "digest_signature_unknown").len(), 1);
    // A wrong one given fails.
    let wrong = format!("{}={}", newest.object, "ab".repeat(256));
    let (code, findings, _) = trail.verify(&["--signature", &wrong]);
    assert_eq!(code, 1);
    assert_eq!(with_check(&findings, "digest_signature_invalid").len(), 1);
}

#[test]
fn a_tar_of_the_tree_verifies_like_the_tree() {
    let trail = Trail::new();
    for (name, gz) in [("download.tar", false), ("download.tar.gz", true)] {
        let path = trail.dir.path().join(name);
        let mut builder = tar::Builder::new(Vec::new());
        builder.append_dir_all("my-bucket", trail.root()).unwrap();
        let bytes = builder.into_inner().unwrap();
        std::fs::write(&path, if gz { gzip(&bytes) } else { bytes }).unwrap();
        let (code, findings, stderr) = trail.verify_paths(&[path], &[]);
        assert_eq!(code, 0, "{name}: {stderr}");
        assert_eq!(with_check(&findings, "trace_file_ok").len(), 12, "{name}");
        assert_eq!(with_check(&findings, "digest_ok").len(), 12, "{name}");
    }
}

#[test]
fn damaged_digests_are_reported_and_the_other_checks_go_on() {
    let trail = Trail::new();
    let cut = trail.digest("ECS", 1).clone();
    let bytes = std::fs::read(&cut.path).unwrap();
    std::fs::write(&cut.path, &bytes[..bytes.len() / 2]).unwrap();
    let missing_fields = trail.digest("CBC", 4).clone();
    std::fs::write(
        &missing_fields.path,
        gzip(br#"{"digest_object":"x","project_id":"p"}"#),
    )
    .unwrap();
    let (code, findings, _) = trail.verify(&[]);
    assert_eq!(code, 1);
    let unreadable = with_check(&findings, "unreadable");
    assert_eq!(unreadable.len(), 2);
    assert!(unreadable
        .iter()
        .any(|f| f["object"] == cut.object.as_str()));
    assert!(unreadable
        .iter()
        .any(|f| f["object"] == missing_fields.object.as_str()
            && f["message"].as_str().unwrap().contains("missing field")));
    // The next digests still check their links against the damaged bytes.
    let mismatched: Vec<&str> = with_check(&findings, "digest_hash_mismatch")
        .iter()
        .map(|f| f["object"].as_str().unwrap())
        .collect();
    assert_eq!(mismatched.len(), 2);
    // And the rest verifies.
    assert_eq!(with_check(&findings, "trace_file_ok").len(), 10);
    assert_eq!(with_check(&findings, "digest_missing").len(), 0);
}

#[test]
fn usage_errors_and_nothing_read_exit_2() {
    let trail = Trail::new();
    let bad_key = trail.dir.path().join("bad.pem");
    std::fs::write(&bad_key, "not a key").unwrap();
    let (code, _, stderr) = trail.verify(&["--public-key", bad_key.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not an RSA public key"), "{stderr}");
    let (code, _, _) = trail.verify(&["--signature", "no-equals-sign"]);
    assert_eq!(code, 2);
    let empty = trail.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, findings, _) = trail.verify_paths(&[empty], &[]);
    assert_eq!(code, 2);
    assert!(findings.is_empty());
}

#[test]
fn json_table_and_stats_outputs_agree() {
    let trail = Trail::new();
    std::fs::remove_file(trail.trace("CBC", 1).1).unwrap();
    let stats = trail.dir.path().join("stats.json");
    let out = Command::cargo_bin("cts-audit")
        .unwrap()
        .args(["verify", "--format", "json", "--public-key"])
        .arg(key_path("test-public-key.pem"))
        .arg("--stats")
        .arg(&stats)
        .arg(trail.root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let findings: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(with_check(&findings, "trace_file_missing").len(), 1);
    let stats: Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_eq!(stats["missing"], 1);
    assert_eq!(stats["verified"], 11);
    assert_eq!(stats["digests"], 12);
    assert_eq!(stats["signatures_unknown"], 2);
    assert_eq!(stats["problems"], 1);
    let table = Command::cargo_bin("cts-audit")
        .unwrap()
        .args(["verify", "--problems-only", "--public-key"])
        .arg(key_path("test-public-key.pem"))
        .arg(trail.root())
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.starts_with(" CHECK"), "{text}");
    let missing = text
        .lines()
        .find(|l| l.contains("trace_file_missing"))
        .unwrap();
    assert_eq!(missing.split_whitespace().nth(1), Some("FAIL"), "{text}");
    assert!(
        !text.contains("trace_file_ok"),
        "--problems-only hides passing findings"
    );
}

#[test]
fn hostile_names_reach_the_terminal_escaped() {
    let trail = Trail::new();
    let name =
        "CloudTraces/ap-southeast-1/2024/6/19/system/CBC/evil\x1b[2J_2024-06-19T02-20-00Z.json.gz";
    let path = trail.root().join(name);
    std::fs::write(&path, trace_file("CBC", first_delivery(), 7)).unwrap();
    let out = Command::cargo_bin("cts-audit")
        .unwrap()
        .args(["verify", "--public-key"])
        .arg(key_path("test-public-key.pem"))
        .arg(trail.root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "an inserted file");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'), "a raw escape reached the terminal");
    assert!(text.contains("evil"), "{text}");
}

#[test]
fn the_reference_sample_digest_parses() {
    // ../shared/reference/cts-trace-format.md §5.7 (OTC-DOCS digest_files.rst).
    let sample = r#"{
 "project_id": "3cfb09080bd944d0b4cdd72ef2685712",
 "digest_start_time": "2017-03-28T01-09-17Z",
 "digest_end_time": "2017-03-28T02-09-17Z",
 "digest_bucket": "bucket",
 "digest_object": "CloudTraces/eu-de-01/2017/3/28/Digest/EVS/mylog_CloudTrace-Digest_eu-de-01/_2017-03-28T02-09-17Z.json.gz",
 "digest_signature_algorithm": "SHA256withRSA",
 "digest_end": false,
 "previous_digest_bucket": "bucket",
 "previous_digest_object": "CloudTraces/eu-de-01/2017/3/28/Digest/EVS/mylog_CloudTrace-Digest_eu-de-01/_2017-03-28T01-09-17Z.json.gz",
 "previous_digest_hash_value": "5e08875de01b894eda5d1399d7b049fe",
 "previous_digest_hash_algorithm": "MD5",
 "previous_digest_signature": "7af7cbef4f3c",
 "previous_digest_end": false,
 "log_files": [{
  "bucket": "bucket",
  "object": "CloudTraces/eu-de-01/2017/3/28/ECS/mylog_CloudTrace_eu-de-01/_2017-03-28T02-09-17Z_0faa86bc40071242.json.gz",
  "log_hash_value": "633a8256ae7996e21430c3a0e9897828",
  "log_hash_algorithm": "MD5"
 }]
}"#;
    let digest = cts_audit::integrity::Digest::parse(sample.as_bytes()).unwrap();
    assert_eq!(digest.end_time_text, "2017-03-28T02-09-17Z");
    assert_eq!(digest.end - digest.start, Duration::hours(1));
    let previous = digest.previous.as_ref().unwrap();
    assert_eq!(previous.hash, "5e08875de01b894eda5d1399d7b049fe");
    assert_eq!(digest.log_files[0].hash, "633a8256ae7996e21430c3a0e9897828");
    assert_eq!(
        digest.signed_message("00ff"),
        format!("2017-03-28T02-09-17Z{}00ff7af7cbef4f3c", digest.object)
    );
    // Its odd layout (a folder named like the file) still pairs trace and digest folders.
    let stream = |o: &str| cts_audit::integrity::stream_key(o).unwrap();
    assert_eq!(
        stream(&digest.object),
        "eu-de-01/EVS/mylog_CloudTrace_eu-de-01"
    );
    assert_eq!(
        stream(&digest.log_files[0].object),
        "eu-de-01/ECS/mylog_CloudTrace_eu-de-01"
    );
}

#[test]
fn the_signed_samples_verify() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::cargo_bin("cts-audit")
        .unwrap()
        .current_dir(root)
        .args([
            "verify",
            "samples/CloudTraces",
            "--format",
            "jsonl",
            "--public-key",
        ])
        .arg("tests/keys/test-public-key.pem")
        .args(["--signatures", "tests/keys/samples-signatures.txt"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(with_check(&findings, "trace_file_ok").len(), 4);
    assert_eq!(with_check(&findings, "digest_ok").len(), 3);
}

fn read_gz(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Runs `scan --verify --all` over `paths` with the test key and the
/// trail's signatures in `format`; returns (exit code, stdout, stats).
fn scan_verify(trail: &Trail, paths: &[PathBuf], format: &str) -> (i32, String, Value) {
    let stats = trail.dir.path().join("scan-stats.json");
    let out = Command::cargo_bin("cts-audit")
        .unwrap()
        .timeout(std::time::Duration::from_secs(60))
        .args([
            "scan",
            "--verify",
            "--all",
            "--format",
            format,
            "--public-key",
        ])
        .arg(key_path("test-public-key.pem"))
        .arg("--signatures")
        .arg(trail.dir.path().join("signatures.txt"))
        .arg("--stats")
        .arg(&stats)
        .args(paths)
        .output()
        .unwrap();
    let stats = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        stats,
    )
}

#[test]
fn scan_verify_marks_every_record_and_flags_tampered_files() {
    let trail = Trail::new();
    let (modified, path) = trail.trace("CBC", 2);
    let text = String::from_utf8(read_gz(&path))
        .unwrap()
        .replace("payOrder", "queryOrder");
    std::fs::write(&path, gzip(text.as_bytes())).unwrap();
    let time = first_delivery() + Duration::hours(4) + Duration::minutes(5);
    let inserted = trace_object("CBC", time, 77);
    std::fs::write(trail.root().join(&inserted), trace_file("CBC", time, 77)).unwrap();

    let (code, out, stats) = scan_verify(&trail, &[trail.root()], "jsonl");
    assert_eq!(code, 0);
    let records: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        records.len(),
        13,
        "12 trace files and one inserted, a record each"
    );
    let of = |object: &str| {
        records
            .iter()
            .find(|r| r["source"].as_str().unwrap().contains(object))
            .unwrap()
    };
    let m = of(&modified);
    assert_eq!(m["integrity"], "modified");
    assert_eq!(m["severity"], "high");
    let reason = m["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r.as_str().unwrap().contains("integrity"))
        .unwrap();
    assert!(
        reason.as_str().unwrap().contains("trace_file_modified"),
        "{reason}"
    );
    assert!(
        reason.as_str().unwrap().contains(&modified),
        "names the file: {reason}"
    );
    let i = of(&inserted);
    assert_eq!(i["integrity"], "unlisted");
    assert!(i["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "audit.integrity"));
    let verified = records
        .iter()
        .filter(|r| r["integrity"] == "verified")
        .count();
    assert_eq!(verified, 11);
    assert!(records
        .iter()
        .filter(|r| r["integrity"] == "verified")
        .all(|r| !r["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "audit.integrity")));
    let counts = &stats["integrity"]["counts"];
    assert_eq!(
        (
            counts["verified"].as_u64(),
            counts["modified"].as_u64(),
            counts["unlisted"].as_u64()
        ),
        (Some(11), Some(1), Some(1))
    );
    assert_eq!(counts["digests"], 12);
    assert_eq!(stats["integrity"]["problems"].as_array().unwrap().len(), 2);

    // Every output form carries it.
    let (_, csv, _) = scan_verify(&trail, &[trail.root()], "csv");
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .ends_with(",source,cost,integrity"));
    let modified_row = csv.lines().find(|l| l.contains(&modified)).unwrap();
    assert_eq!(
        modified_row.rsplit(',').next(),
        Some("modified"),
        "{modified_row}"
    );
    let (_, ocsf, _) = scan_verify(&trail, &[trail.root()], "ocsf");
    let first: Value = serde_json::from_str(ocsf.lines().next().unwrap()).unwrap();
    assert!(
        first["unmapped"]["cts_audit"]["integrity"].is_string(),
        "{first}"
    );
    let (_, ecs, _) = scan_verify(&trail, &[trail.root()], "ecs");
    assert!(ecs.lines().all(|l| l.contains("\"integrity\":\"")), "{ecs}");
}

#[test]
fn scan_verify_reads_a_tar_and_large_files_and_plain_scan_says_nothing() {
    let trail = Trail::new();
    // A file over the small-file size, plain JSON: hashed in a read of its own.
    let time = first_delivery() + Duration::minutes(30);
    let big = trace_object("ECS", time, 500).replace(".json.gz", ".json");
    let record = String::from_utf8(read_gz(&trail.trace("ECS", 0).1)).unwrap();
    let record = record.trim().trim_start_matches('[').trim_end_matches(']');
    let many: Vec<String> = (0..9000)
        .map(|n| record.replace("00000001-2e03", &format!("{n:08x}-3e03")))
        .collect();
    std::fs::write(trail.root().join(&big), format!("[{}]", many.join(","))).unwrap();
    assert!(std::fs::metadata(trail.root().join(&big)).unwrap().len() > 2 << 20);
    // Signed again, with it listed.
    for digest in &trail.digests {
        std::fs::remove_file(&digest.path).unwrap();
    }
    let digests = sign_tree(&trail.root(), &Signer::test_key(), &|_| true);
    std::fs::write(
        trail.dir.path().join("signatures.txt"),
        trail::newest_signatures(&digests),
    )
    .unwrap();

    let (_, out, stats) = scan_verify(&trail, &[trail.root()], "jsonl");
    let from_big = out.lines().filter(|l| l.contains(&big)).count();
    assert_eq!(from_big, 9000);
    assert!(out
        .lines()
        .filter(|l| l.contains(&big))
        .all(|l| l.contains("\"integrity\":\"verified\"")));
    assert_eq!(stats["integrity"]["counts"]["verified"], 13);

    let tar_path = trail.dir.path().join("download.tar.gz");
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir_all("bucket", trail.root()).unwrap();
    std::fs::write(&tar_path, gzip(&builder.into_inner().unwrap())).unwrap();
    let (_, out, stats) = scan_verify(&trail, &[tar_path], "jsonl");
    // The big member is past the small-member size: read, not hashed.
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("\"integrity\":\"verified\""))
            .count(),
        12
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("\"integrity\":\"unverified\""))
            .count(),
        9000
    );
    assert_eq!(stats["integrity"]["counts"]["verified"], 12);

    let plain = Command::cargo_bin("cts-audit")
        .unwrap()
        .args(["scan", "--all", "--format", "jsonl"])
        .arg(trail.root())
        .output()
        .unwrap();
    let text = String::from_utf8(plain.stdout).unwrap();
    assert!(!text.is_empty() && !text.contains("\"integrity\""));
}

#[test]
fn scan_verify_leaves_files_outside_cloudtraces_unverified() {
    let trail = Trail::new();
    let lts = trail.dir.path().join("lts.jsonl");
    let line = String::from_utf8(read_gz(&trail.trace("CBC", 1).1)).unwrap();
    let line = line
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .replace("00000002-2e03", "0000aaaa-2e03");
    std::fs::write(&lts, format!("{line}\n")).unwrap();
    let (code, out, stats) = scan_verify(&trail, &[trail.root(), lts.clone()], "jsonl");
    assert_eq!(code, 0);
    let from_lts: Vec<&str> = out.lines().filter(|l| l.contains("lts.jsonl")).collect();
    assert_eq!(from_lts.len(), 1);
    assert!(
        from_lts[0].contains("\"integrity\":\"unverified\""),
        "{}",
        from_lts[0]
    );
    assert!(!from_lts[0].contains("audit.integrity"));
    assert_eq!(stats["integrity"]["counts"]["verified"], 12);
    assert_eq!(stats["integrity"]["counts"]["unverified"], 1);
    assert_eq!(stats["integrity"]["problems"].as_array().unwrap().len(), 0);
}
