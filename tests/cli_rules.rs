//! Built-in and user rules, positive and negative, through the binary.
//! Windowed rules get their events from two files given out of time order.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;

const T0: i64 = 1_718_788_800_000; // 2024-06-19T09:20:00Z, a Wednesday

/// A CBC trace in the OBS shape (user as a JSON string).
fn trace(id: u32, name: &str, resource_type: &str, minutes: i64, user: Value) -> Value {
    json!({
        "trace_id": format!("{id:08x}-2e03-11ef-82de-cf140e2a70fb"), "trace_name": name, "resource_type": resource_type,
        "service_type": "CBC", "trace_rating": "normal", "trace_type": "ConsoleAction", "code": 200,
        "source_ip": "203.0.113.10", "time": T0 + minutes * 60_000, "user": user.to_string(),
    })
}

fn user(name: &str) -> Value {
    json!({"name": name, "id": format!("id-{name}"), "type": "User", "principal_is_root_user": "false", "domain": {"name": "acme"}})
}

fn failed(mut t: Value, code: &str, http: u16) -> Value {
    t["trace_rating"] = json!("warning");
    t["code"] = json!(http);
    t["response"] = json!(json!({"error_code": code, "error_msg": "failed"}).to_string());
    t
}

fn write_lines(dir: &Path, name: &str, traces: &[Value]) {
    let text: String = traces.iter().map(|t| format!("{t}\n")).collect();
    std::fs::write(dir.join(name), text).unwrap();
}

/// Scans the directory and returns each emitted record's rules by trace id.
fn rules_fired(dir: &Path, extra: &[&str]) -> HashMap<String, (String, Vec<String>, Vec<String>)> {
    let out = Command::cargo_bin("cts-audit")
        .unwrap()
        .args(["scan", "-q", "--all", "--format", "jsonl"])
        .args(extra)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let r: Value = serde_json::from_str(line).unwrap();
            let list = |k: &str| {
                r[k].as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            };
            (
                r["trace_id"].as_str().unwrap()[..8].to_owned(),
                (
                    r["severity"].as_str().unwrap().to_owned(),
                    list("rules"),
                    list("reasons"),
                ),
            )
        })
        .collect()
}

fn id(n: u32) -> String {
    format!("{n:08x}")
}

fn has(fired: &HashMap<String, (String, Vec<String>, Vec<String>)>, n: u32, rule: &str) -> bool {
    fired
        .get(&id(n))
        .unwrap_or_else(|| panic!("record {n} not emitted"))
        .1
        .iter()
        .any(|r| r == rule)
}

fn severity(fired: &HashMap<String, (String, Vec<String>, Vec<String>)>, n: u32) -> String {
    fired[&id(n)].0.clone()
}

#[test]
fn policy_and_failure_rules() {
    let dir = tempfile::tempdir().unwrap();
    write_lines(
        dir.path(),
        "t.jsonl",
        &[
            trace(1, "payOrder", "cloudresouce", 0, user("alice")),
            trace(2, "queryBalanceAlert", "balance", 1, user("alice")),
            failed(
                trace(3, "bindCard", "order", 2, user("alice")),
                "CBC.0151",
                403,
            ),
            trace(4, "bindCard", "order", 3, user("alice")),
            {
                let mut t = trace(5, "payOrder", "cloudresouce", 4, user("alice"));
                t["trace_rating"] = json!("incident");
                t
            },
            {
                let mut t = trace(6, "createServer", "ecs", 5, user("alice"));
                t["service_type"] = json!("ECS");
                t["trace_rating"] = json!("incident");
                t
            },
        ],
    );
    let fired = rules_fired(dir.path(), &[]);
    assert!(has(&fired, 1, "policy.payment"));
    assert_eq!(severity(&fired, 1), "medium");
    assert!(fired[&id(2)].1.is_empty(), "a read fires nothing");
    assert_eq!(severity(&fired, 2), "none");
    assert!(has(&fired, 3, "failed.sensitive"));
    let reason = fired[&id(3)]
        .2
        .iter()
        .find(|r| r.starts_with("failed bindCard"))
        .unwrap();
    assert!(
        reason.contains("alice")
            && reason.contains("CBC.0151 access denied")
            && reason.contains("HTTP 403"),
        "{reason}"
    );
    assert!(!has(&fired, 4, "failed.sensitive"));
    assert!(has(&fired, 5, "incident.billing"));
    assert_eq!(severity(&fired, 5), "high");
    assert!(
        fired[&id(6)].1.is_empty(),
        "an incident outside billing is not this tool's"
    );
}

#[test]
fn repeated_failures_across_files_out_of_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let bot = user("dev-bot");
    // Later events in the file that sorts first.
    write_lines(
        dir.path(),
        "a.jsonl",
        &[failed(
            trace(13, "bindCard", "order", 6, bot.clone()),
            "CBC.0151",
            403,
        )],
    );
    write_lines(
        dir.path(),
        "b.jsonl",
        &[
            failed(
                trace(11, "bindCard", "order", 2, bot.clone()),
                "CBC.0151",
                403,
            ),
            failed(
                trace(12, "payOrder", "cloudresouce", 4, bot.clone()),
                "CBC.0151",
                403,
            ),
            // Another actor's failures never add up with dev-bot's.
            failed(
                trace(21, "bindCard", "order", 3, user("eve")),
                "CBC.0100",
                400,
            ),
            failed(
                trace(22, "bindCard", "order", 5, user("eve")),
                "CBC.0100",
                400,
            ),
        ],
    );
    let fired = rules_fired(dir.path(), &[]);
    assert!(!has(&fired, 11, "failed.repeated") && !has(&fired, 12, "failed.repeated"));
    assert!(
        has(&fired, 13, "failed.repeated"),
        "the third access-denied in time order crosses 5 (each weighs 2)"
    );
    let reason = fired[&id(13)]
        .2
        .iter()
        .find(|r| r.contains("failed sensitive attempts"))
        .unwrap();
    assert!(
        reason.starts_with("3rd failed sensitive attempts by dev-bot in 10 min"),
        "{reason}"
    );
    assert!(
        reason.contains("bindCard ×2") && reason.contains("CBC.0151 access denied ×3"),
        "{reason}"
    );
    assert!(!has(&fired, 22, "failed.repeated"));
    // A tighter window splits them apart; a lower threshold catches eve.
    let fired = rules_fired(dir.path(), &["--failure-window", "3m"]);
    assert!(!has(&fired, 13, "failed.repeated"));
    let fired = rules_fired(dir.path(), &["--failure-threshold", "2"]);
    assert!(has(&fired, 22, "failed.repeated"));
}

#[test]
fn export_bursts_and_exclusion() {
    let dir = tempfile::tempdir().unwrap();
    let exports = |from: u32, minutes: &[i64], who: &str| -> Vec<Value> {
        minutes
            .iter()
            .enumerate()
            .map(|(i, m)| {
                trace(
                    from + i as u32,
                    "exportNvlMonthlyBill",
                    "billDetail",
                    *m,
                    user(who),
                )
            })
            .collect()
    };
    write_lines(
        dir.path(),
        "late.jsonl",
        &exports(110, &[50, 55, 59, 200], "alice"),
    );
    write_lines(
        dir.path(),
        "early.jsonl",
        &[
            exports(100, &[0, 5, 10, 15, 20, 25, 30], "alice"),
            exports(300, &[0, 1, 2], "bob"),
        ]
        .concat(),
    );
    let fired = rules_fired(dir.path(), &[]);
    assert!(!has(&fired, 111, "export.burst"), "9 exports in the hour");
    assert!(has(&fired, 112, "export.burst"), "the 10th within the hour");
    assert!(fired[&id(112)]
        .2
        .iter()
        .any(|r| r.starts_with("10 exports of financial data by alice within 1 h")));
    assert!(
        !has(&fired, 113, "export.burst"),
        "hours later the window is empty again"
    );
    assert!(!has(&fired, 302, "export.burst"));
    let fired = rules_fired(
        dir.path(),
        &["--export-threshold", "3", "--export-window", "10m"],
    );
    assert!(has(&fired, 302, "export.burst"));
    let fired = rules_fired(
        dir.path(),
        &[
            "--exclude-rule",
            "policy.export",
            "--exclude-rule",
            "export.burst",
        ],
    );
    assert!(fired[&id(112)].1.is_empty());
    Command::cargo_bin("cts-audit")
        .unwrap()
        .args(["scan", "--exclude-rule", "no.such.rule"])
        .arg(dir.path())
        .assert()
        .code(2);
}

#[test]
fn first_seen_source_with_and_without_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let mut from_new_ip = trace(2, "payOrder", "cloudresouce", 10, user("alice"));
    from_new_ip["source_ip"] = json!("198.51.100.66");
    write_lines(
        dir.path(),
        "b.jsonl",
        &[trace(1, "payOrder", "cloudresouce", 0, user("alice"))],
    );
    write_lines(dir.path(), "a.jsonl", &[from_new_ip.clone()]);
    let fired = rules_fired(dir.path(), &[]);
    assert!(
        !has(&fired, 1, "source.first_seen"),
        "an actor's first record has nothing to compare with"
    );
    assert!(has(&fired, 2, "source.first_seen"));
    assert!(fired[&id(2)]
        .2
        .iter()
        .any(|r| r.contains("from 198.51.100.66") && r.contains("known: 203.0.113.10")));

    let baseline = tempfile::tempdir().unwrap();
    let mut old = trace(90, "queryBalanceAlert", "balance", -10_000, user("alice"));
    old["source_ip"] = json!("198.51.100.66");
    write_lines(baseline.path(), "old.jsonl", &[old]);
    let fired = rules_fired(
        dir.path(),
        &["--baseline", baseline.path().to_str().unwrap()],
    );
    assert!(
        !has(&fired, 2, "source.first_seen"),
        "the baseline knows this source"
    );
    assert!(has(&fired, 1, "source.first_seen"), "and not the other one");
}

#[test]
fn off_hours_is_opt_in() {
    let dir = tempfile::tempdir().unwrap();
    // T0 is 17:20 at +08:00 on a Wednesday; +60 min is 18:20; +4 days is Sunday.
    write_lines(
        dir.path(),
        "t.jsonl",
        &[
            trace(1, "payOrder", "cloudresouce", 0, user("alice")),
            trace(2, "payOrder", "cloudresouce", 60, user("alice")),
            trace(3, "payOrder", "cloudresouce", 4 * 1440, user("alice")),
        ],
    );
    let fired = rules_fired(dir.path(), &[]);
    assert!(!has(&fired, 2, "offhours"));
    let fired = rules_fired(dir.path(), &["--business-hours", "09-18", "--tz", "+08:00"]);
    assert!(
        !has(&fired, 1, "offhours") && has(&fired, 2, "offhours") && !has(&fired, 3, "offhours")
    );
    assert!(fired[&id(2)]
        .2
        .iter()
        .any(|r| r.contains("Wed 18:20 +08:00")));
    let fired = rules_fired(
        dir.path(),
        &[
            "--business-hours",
            "09-18",
            "--tz",
            "+08:00",
            "--weekends-off",
        ],
    );
    assert!(has(&fired, 3, "offhours"));
    Command::cargo_bin("cts-audit")
        .unwrap()
        .args(["scan", "--business-hours", "18-09"])
        .arg(dir.path())
        .assert()
        .code(2);
}

#[test]
fn who_acted_and_audit_tamper() {
    let dir = tempfile::tempdir().unwrap();
    let mut root = user("acme");
    root["principal_is_root_user"] = json!("true");
    let mut federated = user("idp1/carol");
    federated["type"] = json!("ExternalUser");
    let mut agency = user("acme/ops");
    agency["type"] = json!("AssumedAgency");
    let cts = |n: u32, name: &str, rt: &str| {
        let mut t = trace(n, name, rt, 30, user("mallory"));
        t["service_type"] = json!("CTS");
        t
    };
    write_lines(
        dir.path(),
        "t.jsonl",
        &[
            trace(1, "payOrder", "cloudresouce", 0, root.clone()),
            trace(2, "payOrder", "cloudresouce", 1, user("alice")),
            trace(3, "bindCard", "order", 2, federated),
            trace(4, "updateCustomerDeductConfig", "balance", 3, agency),
            trace(5, "bindCard", "order", 4, user("alice")),
            cts(6, "deleteTracker", "tracker"),
            cts(7, "updateNotificationStatus", "notification"),
            cts(8, "createTracker", "tracker"),
        ],
    );
    let fired = rules_fired(dir.path(), &[]);
    assert!(has(&fired, 1, "actor.root_money") && !has(&fired, 2, "actor.root_money"));
    assert!(has(&fired, 3, "actor.federated_finance") && has(&fired, 4, "actor.federated_finance"));
    assert!(!has(&fired, 5, "actor.federated_finance"));
    assert!(
        has(&fired, 6, "audit.tamper")
            && has(&fired, 7, "audit.tamper")
            && !has(&fired, 8, "audit.tamper")
    );
    assert_eq!(severity(&fired, 6), "critical");
}

#[test]
fn user_rules_regex_threshold_and_allow_list() {
    let dir = tempfile::tempdir().unwrap();
    let contractor = user("contractor-joe");
    let mut from_api = trace(2, "payOrder", "cloudresouce", 1, user("alice"));
    from_api["trace_type"] = json!("ApiCall");
    write_lines(
        dir.path(),
        "t.jsonl",
        &[
            trace(1, "exportNvlMonthlyBill", "billDetail", 0, contractor),
            from_api,
            trace(3, "exportNvlMonthlyBill", "billDetail", 2, user("alice")),
            failed(
                trace(4, "queryBalanceAlert", "balance", 3, user("zed")),
                "CBC.0151",
                403,
            ),
            failed(
                trace(5, "queryBalanceAlert", "balance", 4, user("zed")),
                "CBC.0151",
                403,
            ),
            failed(
                trace(6, "queryBalanceAlert", "balance", 5, user("zed")),
                "CBC.0151",
                403,
            ),
            trace(7, "bindCard", "order", 6, user("billing-sync-bot")),
        ],
    );
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rules.toml");
    let fired = rules_fired(dir.path(), &["--rules", example.to_str().unwrap()]);
    assert!(has(&fired, 1, "acme.contractor-export") && !has(&fired, 3, "acme.contractor-export"));
    assert_eq!(severity(&fired, 1), "high");
    assert!(has(&fired, 2, "acme.payment-from-api"));
    assert!(
        !has(&fired, 5, "acme.denied-burst") && has(&fired, 6, "acme.denied-burst"),
        "the third match within 15 min, by one user"
    );
    assert!(
        fired[&id(6)].1.len() == 1,
        "a failed read is only caught by the user rule"
    );
    assert!(
        fired[&id(7)].1.is_empty(),
        "allow-listed automation is exempt"
    );
    assert!(fired[&id(7)]
        .2
        .iter()
        .any(|r| r == "allow-listed: user billing-sync-bot"));

    Command::cargo_bin("cts-audit")
        .unwrap()
        .args(["rules", "--rules", example.to_str().unwrap()])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("acme.denied-burst")
                .and(predicate::str::contains("failed.repeated")),
        );
}

#[test]
fn broken_rules_files_fail_fast_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    let check = |text: &str| {
        std::fs::write(&broken, text).unwrap();
        let out = Command::cargo_bin("cts-audit")
            .unwrap()
            .args(["rules", "--check"])
            .arg(&broken)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8(out.stderr).unwrap()
    };
    let good = "[[rule]]\nid = \"a.ok\"\ntitle = \"ok\"\nseverity = \"low\"\nwhen = { field = \"user\", equals = \"x\" }\n\n";
    let message = check(&format!("{good}[[rule]]\nid = \"a.bad\"\ntitle = \"bad\"\nseverity = \"high\"\nwhen = {{ field = \"user\", regex = \"(unclosed\" }}\n"));
    assert!(
        message.contains("broken.toml:7: rule a.bad: invalid regex \"(unclosed\""),
        "{message}"
    );
    let message = check("[[rule]]\nid = \"a.b\"\ntitle = \"t\"\nseverity = \"severe\"\nwhen = { field = \"user\", exists = true }\n");
    assert!(
        message.contains("broken.toml:1: rule a.b: unknown severity \"severe\""),
        "{message}"
    );
    let message = check("[[rule]]\nid = \"a.b\"\ntitle = \"t\"\nseverity = \"low\"\nwhen = { field = \"colour\", equals = \"red\" }\n");
    assert!(message.contains("unknown field \"colour\""), "{message}");
    let message = check(
        "[[rule]]\nid = \"a.b\"\ntitle = \"t\"\nseverity = \"low\"\nwhen = { field = \"user\" }\n",
    );
    assert!(message.contains("a condition is either"), "{message}");
    let message = check("[[rule]]\nid = \"a.b\"\ntitle = \"t\"\nseverity = \"low\"\nwhen = { field = \"user\", equals = \"x\" }\nthreshold = { count = 2, window = \"ten minutes\" }\n");
    assert!(message.contains("window \"ten minutes\""), "{message}");
    let message = check("[[rule]]\nid = \"a.b\"\ntitle = \"t\"\nseverity = \"low\"\nwhen = { field = \"user\", equals = \"x\" }\nsevirity = \"low\"\n");
    assert!(
        message.contains("broken.toml:") && message.contains("sevirity"),
        "{message}"
    );
    let message = check("[[rule]]\nid = \"failed.repeated\"\ntitle = \"t\"\nseverity = \"low\"\nwhen = { field = \"user\", equals = \"x\" }\n");
    assert!(message.contains("already defined"), "{message}");
    // scan refuses a broken file before reading anything.
    Command::cargo_bin("cts-audit")
        .unwrap()
        .args(["scan", "--rules"])
        .arg(&broken)
        .arg(dir.path())
        .assert()
        .code(2)
        .stdout("");
}

/// The README's table of rules and `cts-audit rules` come from the same
/// facts: every built-in rule is in the table, at the severities it fires.
#[test]
fn the_readme_lists_every_built_in_rule_at_its_severities() {
    let out = Command::cargo_bin("cts-audit")
        .unwrap()
        .args(["rules", "--format", "json"])
        .output()
        .unwrap();
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let rows: HashMap<String, String> = readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let id = cells.get(1)?.trim_matches('`').to_owned();
            let severity = cells
                .get(2)?
                .trim_start_matches("catalog (")
                .trim_end_matches(')');
            Some((id, severity.replace('–', "-")))
        })
        .collect();
    for rule in listed {
        let id = rule["id"].as_str().unwrap();
        let (lowest, highest) = (
            rule["lowest"].as_str().unwrap(),
            rule["severity"].as_str().unwrap(),
        );
        let expected = if lowest == highest {
            highest.to_owned()
        } else {
            format!("{lowest}-{highest}")
        };
        assert_eq!(rows.get(id), Some(&expected), "README row of {id}");
    }
}
