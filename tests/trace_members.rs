//! `Trace::from_str` and `TraceHead::from_str` walk a record's members
//! themselves and leave the rest to serde_json (src/trace/members.rs). On
//! any text, whole or damaged, they must give what serde_json alone gives:
//! the same fields, or the same error.

mod common;

use common::damage;
use cts_audit::trace::{Trace, TraceHead};
use proptest::prelude::*;

/// Each result as text: the fields' Debug form, or the error's message.
fn both_ways(text: &str) -> [(String, String); 2] {
    let show = |r: Result<String, serde_json::Error>| r.unwrap_or_else(|e| format!("error: {e}"));
    [
        (
            show(TraceHead::from_str(text).map(|t| format!("{t:?}"))),
            show(serde_json::from_str::<TraceHead>(text).map(|t| format!("{t:?}"))),
        ),
        (
            show(Trace::from_str(text).map(|t| format!("{t:?}"))),
            show(serde_json::from_str::<Trace>(text).map(|t| format!("{t:?}"))),
        ),
    ]
}

fn assert_same(text: &str) -> Result<(), TestCaseError> {
    for (walked, serde_json) in both_ways(text) {
        prop_assert_eq!(walked, serde_json, "on {:?}", text);
    }
    Ok(())
}

/// Member names: the head's and the trace's fields, the wrappers' markers,
/// names no struct reads, and names that only look like fields.
const KEYS: &[&str] = &[
    "trace_id",
    "trace_name",
    "trace_rating",
    "trace_status",
    "service_type",
    "resource_type",
    "code",
    "traces",
    "cts",
    "digest_object",
    "trace_type",
    "resource_id",
    "resource_name",
    "source_ip",
    "domain_id",
    "time",
    "record_time",
    "user",
    "response",
    "request",
    "api_version",
    "message",
    "",
    "trace\\u005fid",
    "Trace_ID",
    "tr\\\"ace",
];

/// Values of every shape CTS writes.
const VALUES: &[&str] = &[
    r#""eb0472a4-5944-11ef-acce-294fee19871b""#,
    r#""payOrder""#,
    r#""CBC""#,
    r#""""#,
    r#""caf\u00e9 \uD83D\uDE00""#,
    r#""{\"server\":{\"extendparam\":{\"chargingMode\":\"0\"},\"name\":\"ecs-prod\"}}""#,
    r#""{\"name\":\"alice\",\"domain\":{\"name\":\"acme\"}}""#,
    r#""line\nbreak\ttab\\slash\/solidus\b\f\r""#,
    r#""\ud800 lone surrogate""#,
    r#""a string longer than eight bytes, with an escape at the end\"""#,
    "200",
    "-0",
    "1.5e3",
    "1e999",
    "18446744073709551616",
    "1718777931170",
    r#""1718777931170""#,
    r#""Nov 16, 2023 10:54:04 GMT+08:00""#,
    "null",
    "true",
    "false",
    r#"{"name":"alice","type":"User","domain":{"name":"acme","id":"x"},"principal_is_root_user":"false"}"#,
    r#"{"error_code":"CBC.0151","nested":[1,[2,[3]],{"k":"v\"q"}]}"#,
    r#"[{"trace_id":"a"},{"trace_id":"b","service_type":"CBC"}]"#,
    r#"{"trace_id":"inner","trace_name":"bindCard"}"#,
    "[]",
    "{}",
];

/// Values that are not JSON, each a little off.
const BROKEN: &[&str] = &[
    r#""a \x escape""#,
    r#""\u12G4""#,
    "\"raw\ttab\"",
    "\"unterminated",
    r#""ends in a backslash\"#,
    "01",
    "-",
    "fals",
    "nul",
    "[1,]",
    r#"{"a":}"#,
    r#"{"a" 1}"#,
    "{",
    "]",
    "123abc",
    "1.",
    "NaN",
];

const SPACE: &[&str] = &["", " ", "\n", "\r\n", "\t", "  \t "];

/// One record: members from the pools, with whitespace anywhere JSON
/// allows it, a trailing comma or text after the object now and then.
fn record() -> impl Strategy<Value = String> {
    // Mostly sound values, so that most records are read; a broken one now
    // and then, so that the walk must leave it to serde_json.
    let value = prop_oneof![
        12 => prop::sample::select(VALUES),
        1 => prop::sample::select(BROKEN),
    ];
    let member = (
        prop::sample::select(KEYS),
        value,
        prop::sample::select(SPACE),
        prop::sample::select(SPACE),
        prop::sample::select(SPACE),
    );
    (
        prop::collection::vec(member, 0..12),
        prop::sample::select(SPACE),
        prop::sample::select(vec!["", "", "", "", "", "", ",", "x", " {}", "\u{feff}"]),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(members, end_space, tail, trailing_comma)| {
            let mut text = String::from("{");
            for (i, (key, value, s1, s2, s3)) in members.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&format!("{s1}\"{key}\"{s2}:{s3}{value}"));
            }
            if trailing_comma && !members.is_empty() {
                text.push(',');
            }
            text.push_str(end_space);
            text.push('}');
            text.push_str(tail);
            text
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn generated_records_read_as_serde_json_reads_them(text in record()) {
        assert_same(&text)?;
    }

    #[test]
    fn damaged_records_read_as_serde_json_reads_them(
        text in record(),
        edits in prop::collection::vec((any::<usize>(), any::<char>(), 0u8..4), 1..4),
    ) {
        // Characters replaced, dropped, inserted, or the text cut short.
        let mut chars: Vec<char> = text.chars().collect();
        damage(&mut chars, &edits);
        assert_same(&chars.into_iter().collect::<String>())?;
    }
}

#[test]
fn the_shipped_samples_and_deep_values_read_as_serde_json_reads_them() {
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let lts = std::fs::read_to_string(samples.join("lts-system-trace.jsonl")).unwrap();
    for line in lts.lines() {
        for (walked, serde_json) in both_ways(line) {
            assert_eq!(walked, serde_json);
            assert!(!walked.starts_with("error"), "{walked}");
        }
    }
    let page = std::fs::read_to_string(samples.join("list-traces-page.json")).unwrap();
    for (walked, serde_json) in both_ways(&page) {
        assert_eq!(walked, serde_json);
    }
    // Nesting near serde_json's limit, in a value read and in one skipped.
    for depth in [100, 126, 127, 128, 200] {
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        for key in ["request", "user", "trace_id", "traces"] {
            let text = format!(r#"{{"trace_name":"payOrder","{key}":{deep}}}"#);
            for (walked, serde_json) in both_ways(&text) {
                assert_eq!(walked, serde_json, "{key} at depth {depth}");
            }
        }
    }
}
