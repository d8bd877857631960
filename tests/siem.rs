//! OCSF and ECS output on the shipped samples, checked against the required
//! fields each schema declares (tests/schemas/), and the example plugin
//! driven end to end.

use assert_cmd::Command;
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(root().join("tests/schemas").join(name)).unwrap())
        .unwrap()
}

fn scan_samples(format: &str) -> Vec<Value> {
    let out = Command::cargo_bin("cts-audit")
        .unwrap()
        .args(["scan", "-q", "--all", "--format", format])
        .arg(root().join("samples"))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Follows a dotted path, treating a literal key with dots (`@timestamp`) too.
fn get<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

fn has_type(value: &Value, kind: &str) -> bool {
    match kind {
        "integer" => value.is_i64() || value.is_u64(),
        "string" | "keyword" => value.is_string(),
        "object" => value.is_object(),
        "date" => value
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        other => panic!("unknown type {other} in the schema manifest"),
    }
}

#[test]
fn ocsf_has_every_required_field_correctly_typed() {
    let schema = schema("ocsf-api-activity.json");
    let events = scan_samples("ocsf");
    assert!(events.len() >= 15, "every sample record");
    for event in &events {
        for (field, kind) in schema["event"].as_object().unwrap() {
            let value = event
                .get(field)
                .unwrap_or_else(|| panic!("missing {field} in {event}"));
            assert!(
                has_type(value, kind.as_str().unwrap()),
                "{field} should be {kind}: {event}"
            );
        }
        for (object, fields) in schema["objects"].as_object().unwrap() {
            let inner = get(event, object).unwrap_or_else(|| panic!("missing {object}"));
            for (field, kind) in fields.as_object().unwrap() {
                let value = inner
                    .get(field)
                    .unwrap_or_else(|| panic!("missing {object}.{field} in {event}"));
                assert!(
                    has_type(value, kind.as_str().unwrap()),
                    "{object}.{field} should be {kind}"
                );
            }
        }
        for (field, allowed) in schema["enums"].as_object().unwrap() {
            if let Some(value) = event.get(field) {
                assert!(
                    allowed.as_array().unwrap().contains(value),
                    "{field} = {value}"
                );
            }
        }
        assert_eq!(event["class_uid"], 6003);
        assert_eq!(event["category_uid"], 6);
        assert_eq!(
            event["type_uid"].as_u64().unwrap(),
            600_300 + event["activity_id"].as_u64().unwrap()
        );
        assert_eq!(event["cloud"]["provider"], "huaweicloud");
    }
    let by_name = |name: &str| {
        events
            .iter()
            .find(|e| e["api"]["operation"] == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    assert_eq!(by_name("deleteTracker")["severity_id"], 5);
    assert_eq!(by_name("deleteTracker")["activity_id"], 4);
    assert_eq!(by_name("payOrder")["activity_id"], 1);
    assert_eq!(by_name("queryMonthlyConsumeBill")["activity_id"], 2);
    assert_eq!(by_name("queryMonthlyConsumeBill")["severity_id"], 1);
    let refund = by_name("refundApply");
    assert_eq!(
        (refund["status_id"].as_u64(), refund["status_code"].as_str()),
        (Some(2), Some("CBC.99005003"))
    );
    assert_eq!(refund["status_detail"], "insufficient balance");
    assert_eq!(by_name("createServer")["status_id"], 1);
}

#[test]
fn ecs_has_the_required_fields_and_allowed_values() {
    let schema = schema("ecs.json");
    let docs = scan_samples("ecs");
    assert!(docs.len() >= 15);
    for doc in &docs {
        let timestamp = doc.get("@timestamp").unwrap();
        assert!(has_type(timestamp, "date"), "{doc}");
        assert!(has_type(get(doc, "ecs.version").unwrap(), "keyword"));
        for (field, allowed) in schema["allowed"].as_object().unwrap() {
            let value = get(doc, field).unwrap_or_else(|| panic!("missing {field}"));
            let values = value
                .as_array()
                .cloned()
                .unwrap_or_else(|| vec![value.clone()]);
            for v in values {
                assert!(
                    allowed.as_array().unwrap().contains(&v),
                    "{field} = {v} not allowed"
                );
            }
        }
        assert!(get(doc, "event.action").is_some_and(Value::is_string));
        assert!(get(doc, "event.severity").is_some_and(Value::is_u64));
        assert_eq!(get(doc, "cloud.provider").unwrap(), "huaweicloud");
        if doc["event"]["kind"] == "alert" {
            assert!(get(doc, "rule.id").is_some_and(Value::is_array), "{doc}");
            assert!(get(doc, "rule.name").is_some_and(Value::is_array), "{doc}");
        }
        if let Some(ip) = get(doc, "source.ip") {
            assert!(get(doc, "related.ip")
                .unwrap()
                .as_array()
                .unwrap()
                .contains(ip));
        }
    }
    let by_action = |name: &str| {
        docs.iter()
            .find(|d| d["event"]["action"] == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    // The refused card binding of the ListTraces sample (the console export
    // has another bindCard, by alice).
    let card = docs
        .iter()
        .find(|d| d["event"]["action"] == "bindCard" && d["user"]["name"] == "dev-bot")
        .unwrap();
    assert_eq!(card["event"]["kind"], "alert");
    assert_eq!(card["event"]["outcome"], "failure");
    assert!(card["event"]["type"]
        .as_array()
        .unwrap()
        .contains(&Value::from("denied")));
    assert_eq!(card["user"]["name"], "dev-bot");
    assert_eq!(
        by_action("queryMonthlyConsumeBill")["event"]["kind"],
        "event"
    );
    assert_eq!(by_action("deleteTracker")["event"]["severity"], 99);
}

fn plugin() -> PathBuf {
    // `cargo test` builds examples into target/<profile>/examples.
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let path = deps
        .parent()
        .unwrap()
        .join("examples")
        .join(format!("siem_plugin{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        // `cargo test --test siem` alone does not build examples.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--example", "siem_plugin"])
            .current_dir(root())
            .status()
            .unwrap();
        assert!(
            status.success() && path.exists(),
            "{} not built",
            path.display()
        );
    }
    path
}

#[test]
fn the_siem_plugin_enriches_every_line_as_ecs() {
    let lines = std::fs::read_to_string(root().join("samples/lts-system-trace.jsonl")).unwrap();
    let first = lines.lines().next().unwrap().to_owned();
    let input = format!("{lines}\nnot json at all\n{first}\n");
    let mut child = std::process::Command::new(plugin())
        .args([
            "--rules",
            root().join("examples/rules.toml").to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let docs: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        docs.len(),
        4,
        "three traces and one error event; the duplicate is dropped"
    );
    assert_eq!(docs[0]["event"]["action"], "setDefaultBindCard");
    assert_eq!(docs[0]["event"]["kind"], "alert");
    assert!(docs[0]["rule"]["id"]
        .as_array()
        .unwrap()
        .contains(&Value::from("actor.federated_finance")));
    assert_eq!(docs[0]["event"]["original"], Value::from(first.as_str()));
    assert_eq!(docs[1]["error"]["code"], "CBC.99005003");
    assert_eq!(docs[2]["event"]["kind"], "event");
    assert_eq!(docs[3]["event"]["kind"], "pipeline_error");
    assert_eq!(docs[3]["event"]["original"], "not json at all");
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("1 duplicate deliveries dropped"));
}

/// ECS `rule.name` holds each rule's title, a user rule's from its file.
#[test]
fn ecs_names_user_rules_by_their_title() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("acme.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nid = \"acme.night_ops\"\ntitle = \"A payment by the night-shift account\"\nseverity = \"high\"\nwhen = { field = \"user\", equals = \"night-ops\" }\n",
    )
    .unwrap();
    let line = r#"{"trace_id":"cbdd4480-2e03-11ef-82de-cf140e2a70fb","trace_name":"payOrder","service_type":"CBC","resource_type":"cloudresouce","time":1718777931170,"code":200,"user":{"name":"night-ops"}}"#;
    let out = Command::cargo_bin("cts-audit")
        .unwrap()
        .args(["scan", "-q", "--format", "ecs", "--rules"])
        .arg(&rules)
        .arg("-")
        .write_stdin(format!("{line}\n"))
        .output()
        .unwrap();
    let document: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids = document["rule"]["id"].as_array().unwrap();
    let names = document["rule"]["name"].as_array().unwrap();
    let at = ids.iter().position(|id| id == "acme.night_ops").unwrap();
    assert_eq!(names[at], "A payment by the night-shift account");
    let policy = ids.iter().position(|id| id == "policy.payment").unwrap();
    assert_eq!(names[policy], "Payment made");
}
