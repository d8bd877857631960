//! The state windowed and first-seen rules keep between records.

use std::collections::{BTreeSet, HashMap, VecDeque};

/// The state of windowed and first-seen rules while records are fed in
/// time order. Owned by the caller; grows with the actors and the events
/// inside the windows.
///
/// ```
/// use cts_audit::{classify::classify, verdict::Verdict, rules::{RuleSet, RuleState}, trace::Trace};
/// let rules = RuleSet::builtin();
/// let mut state = RuleState::default(); // one per stream, fed in time order
/// for minute in 0..5i64 {
///     let json = format!(r#"{{"trace_name":"payOrder","service_type":"CBC","code":403,"time":{},"user":{{"name":"mallory"}}}}"#,
///         1_718_777_931_170 + minute * 60_000);
///     let trace = Trace::from_str(&json).unwrap();
///     let mut verdict = Verdict::new(&trace, trace.user(), &classify(&trace), String::new());
///     rules.judge(&mut verdict, &mut state);
///     if minute == 4 {
///         assert!(verdict.rules.iter().any(|r| r == "failed.repeated"));
///     }
/// }
/// ```
#[derive(Debug, Default, Clone)]
pub struct RuleState {
    // By actor. hashbrown's `entry_ref` looks an actor up by `&str` and
    // copies it only the first time: this runs once per candidate, in order.
    pub(crate) failures: hashbrown::HashMap<String, VecDeque<(i64, u32, String, bool)>>,
    pub(crate) exports: hashbrown::HashMap<String, VecDeque<i64>>,
    /// Known source IPs by actor, sorted: a reason names the first few.
    pub(crate) sources: hashbrown::HashMap<String, BTreeSet<String>>,
    pub(crate) user: HashMap<(String, Vec<String>), VecDeque<i64>>,
}

/// Adds `time` to a window of times and drops those `window_ms` or more before it.
pub(crate) fn slide(window: &mut VecDeque<i64>, time: i64, window_ms: i64) {
    window.push_back(time);
    while window.front().is_some_and(|t| *t <= time - window_ms) {
        window.pop_front();
    }
}
