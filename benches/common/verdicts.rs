//! Verdicts the benches share: sensitive billing operations as the rules
//! and the report see them.

use cts_audit::classify::classify;
use cts_audit::trace::Trace;
use cts_audit::verdict::Verdict;

/// Sensitive billing operations by 40 actors from 12 addresses, a minute
/// apart on average, one in five failed (a third of those CBC.0151).
pub fn sensitive(count: usize) -> Vec<Verdict<'static>> {
    let names = [
        "payOrder",
        "bindCard",
        "unsubscribeResource",
        "exportBill",
        "setAutoRenew",
    ];
    (0..count)
        .map(|i| {
            let failed = i % 5 == 0;
            let (code, response) = match (failed, i % 3) {
                (false, _) => (200, r#"{\"status\":\"SUCCESS\"}"#),
                (true, 0) => (403, r#"{\"error_code\":\"CBC.0151\",\"error_msg\":\"Access denied.\"}"#),
                (true, _) => (400, r#"{\"error_code\":\"CBC.0100\",\"error_msg\":\"Invalid parameter.\"}"#),
            };
            let text = format!(
                r#"{{"trace_id":"{i:08x}-2e03-11ef-82de-cf140e2a70fb","trace_name":"{}","service_type":"CBC","resource_type":"order","trace_rating":"{}","trace_type":"ConsoleAction","time":{},"code":{code},"source_ip":"10.0.{}.{}","user":{{"name":"user{}","id":"u{}","type":"User","domain":{{"name":"acme","id":"d1"}}}},"response":"{response}"}}"#,
                names[i % names.len()],
                if failed { "warning" } else { "normal" },
                1_718_777_931_170u64 + i as u64 * 60_000,
                i % 3,
                (i * 7) % 4,
                i % 40,
                i % 40,
            );
            let trace = Trace::from_str(&text).expect("generated traces are valid");
            Verdict::new(&trace, trace.user(), &classify(&trace), String::new()).into_owned()
        })
        .collect()
}
