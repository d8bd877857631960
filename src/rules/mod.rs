//! Rules: judging each record in context, with reasons.
//!
//! The catalog's default severity is where judgment starts. Every rule has a
//! stable id and a severity, and says why it fired, naming its evidence. A
//! record's severity is the highest of the rules that fired on it.
//!
//! Windowed and stateful rules (repeated failures, export bursts, first-seen
//! sources, user thresholds) need time order across files. The scan keeps
//! every *candidate* record (one a rule could fire on: a sensitive
//! operation, a failed billing call, an incident, a user rule's match) and,
//! once every file is read, sorts them by time (ties by input order) and runs
//! the rules over them in that order. Memory grows with candidates, not with
//! the input. See [`RuleSet::apply`].
//!
//! ```
//! use cts_audit::rules::RuleSet;
//! let rules = RuleSet::builtin();
//! assert!(rules.infos().iter().any(|r| r.id == "failed.repeated"));
//! ```

use crate::catalog::Severity;
use crate::verdict::{condition_fields, is_condition_field, Verdict};
use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

mod builtin;
mod condition;
mod file;
mod state;

pub(crate) use builtin::actor_of;
use builtin::Context;
pub use builtin::{builtin, Builtin, Facts, Fires, BUILTIN};
use condition::*;
pub use file::RuleFileError;
use file::*;
use state::slide;
pub use state::RuleState;

/// Largest compiled size allowed for a user rule's regex.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A rule as listed by `cts-audit rules`.
///
/// ```
/// let rules = cts_audit::rules::RuleSet::builtin();
/// let info = rules.infos().into_iter().find(|r| r.id == "failed.repeated").unwrap();
/// assert_eq!(info.origin, "built-in");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleInfo {
    /// Stable id.
    pub id: String,
    /// The lowest severity it fires at: below `severity` only for a rule
    /// that fires at its catalog entry's severity.
    pub lowest: Severity,
    /// The highest severity it fires at.
    pub severity: Severity,
    /// What it means.
    pub title: String,
    /// `built-in`, or the file it came from.
    pub origin: String,
}

/// Business hours for the opt-in off-hours rule.
///
/// ```
/// use cts_audit::rules::{BusinessHours, RuleSet};
/// let mut rules = RuleSet::builtin();
/// rules.settings.business_hours = Some(BusinessHours { start_hour: 9, end_hour: 18, utc_offset_minutes: 8 * 60, weekends_off: true });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusinessHours {
    /// First business hour (0-23).
    pub start_hour: u32,
    /// Hour business ends (1-24), exclusive.
    pub end_hour: u32,
    /// Offset of the business time zone from UTC, in minutes.
    pub utc_offset_minutes: i32,
    /// Saturdays and Sundays are outside business hours.
    pub weekends_off: bool,
}

/// Thresholds and windows of the built-in rules.
///
/// ```
/// let mut rules = cts_audit::rules::RuleSet::builtin();
/// rules.settings.failure_threshold = 3; // fire on the third failure in the window
/// ```
#[derive(Debug, Clone)]
pub struct Settings {
    /// Failures by one actor that make `failed.repeated` fire.
    pub failure_threshold: u32,
    /// The window `failure_threshold` is counted in.
    pub failure_window_ms: i64,
    /// How much one CBC.0151 (access denied) counts: it is probing.
    pub probe_weight: u32,
    /// Exports by one actor that make `export.burst` fire.
    pub export_threshold: u32,
    /// The window `export_threshold` is counted in.
    pub export_window_ms: i64,
    /// Business hours; `None` turns the off-hours rule off.
    pub business_hours: Option<BusinessHours>,
    /// `cost.large`: the amounts a billing action's charge or refund must
    /// reach; none turns the rule off.
    pub cost_thresholds: Vec<CostThreshold>,
}

/// An amount `cost.large` fires at, in one currency or in any.
///
/// ```
/// use cts_audit::rules::CostThreshold;
/// let t: CostThreshold = "10000:CNY".parse().unwrap();
/// assert_eq!((t.amount.to_string(), t.currency.as_deref()), ("10000".to_owned(), Some("CNY")));
/// assert!("ten".parse::<CostThreshold>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostThreshold {
    /// The amount (charges and refunds alike, by absolute value).
    pub amount: rust_decimal::Decimal,
    /// The currency it is in; `None` for every currency.
    pub currency: Option<String>,
}

impl std::str::FromStr for CostThreshold {
    type Err = String;
    /// `AMOUNT` or `AMOUNT:CURRENCY`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (amount, currency) = match text.split_once(':') {
            Some((amount, currency)) => (amount, Some(currency.trim().to_ascii_uppercase())),
            None => (text, None),
        };
        let amount = crate::bills::parse_money(amount)
            .map_err(|e| format!("{text:?} is not AMOUNT or AMOUNT:CURRENCY ({e})"))?;
        if amount.is_sign_negative() {
            return Err(format!("{text:?}: the amount must not be negative"));
        }
        if currency
            .as_deref()
            .is_some_and(|c| c.len() != 3 || !c.bytes().all(|b| b.is_ascii_alphabetic()))
        {
            return Err(format!(
                "{text:?}: the currency must be a three-letter code"
            ));
        }
        Ok(CostThreshold { amount, currency })
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            failure_threshold: 5,
            failure_window_ms: 10 * 60_000,
            probe_weight: 2,
            export_threshold: 10,
            export_window_ms: 60 * 60_000,
            business_hours: None,
            cost_thresholds: Vec::new(),
        }
    }
}

/// Parses a span such as `30s`, `10m`, `12h`, `7d`, `2w` into milliseconds.
///
/// ```
/// assert_eq!(cts_audit::rules::parse_span("10m"), Some(600_000));
/// assert_eq!(cts_audit::rules::parse_span("10 minutes"), None);
/// ```
pub fn parse_span(text: &str) -> Option<i64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let seconds: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    number.parse::<i64>().ok()?.checked_mul(seconds * 1_000)
}

fn describe_span(ms: i64) -> String {
    match ms {
        ms if ms % 3_600_000 == 0 => format!("{} h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{} min", ms / 60_000),
        ms => format!("{} s", ms / 1_000),
    }
}

/// Everything the rules need: built-ins, settings, user rules, exclusions,
/// the allow-list and the first-seen baseline. Built once; `Send + Sync`.
///
/// ```
/// use cts_audit::{analyze::Analyzer, rules::RuleSet};
/// let mut rules = RuleSet::builtin();
/// rules
///     .load_str(r#"
/// [[rule]]
/// id = "acme.night_shift"
/// title = "A payment by the night-shift account"
/// severity = "high"
/// when = { field = "user", equals = "night-ops" }
/// "#, "acme.toml".as_ref())
///     .unwrap();
/// let verdict = Analyzer::new(rules)
///     .analyze_str(r#"{"trace_name":"payOrder","service_type":"CBC","user":{"name":"night-ops"}}"#)
///     .unwrap();
/// assert!(verdict.rules.iter().any(|r| r == "acme.night_shift"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// Thresholds, windows and business hours.
    pub settings: Settings,
    user_rules: Vec<UserRule>,
    excluded: HashSet<String>,
    allowed_users: HashSet<String>,
    allowed_ips: HashSet<String>,
    baseline: HashMap<String, BTreeSet<String>>,
}

impl RuleSet {
    /// The built-in rules with default settings.
    ///
    /// ```
    /// assert!(!cts_audit::rules::RuleSet::builtin().has_user_rules());
    /// ```
    pub fn builtin() -> RuleSet {
        RuleSet::default()
    }

    /// Loads a TOML rules file: `[[rule]]` tables and an `[allow]` table.
    /// Errors name the file, the line and the reason.
    ///
    /// ```
    /// let err = cts_audit::rules::RuleSet::builtin().load_file("no/such/rules.toml".as_ref()).unwrap_err();
    /// assert!(err.to_string().starts_with("no/such/rules.toml: cannot read"));
    /// ```
    pub fn load_file(&mut self, path: &Path) -> Result<(), RuleFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| RuleFileError {
            file: path.to_path_buf(),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        self.load_str(&text, path)
    }

    /// [`RuleSet::load_file`] on text already read; `origin` names it in errors.
    ///
    /// ```
    /// let mut rules = cts_audit::rules::RuleSet::builtin();
    /// rules.load_str("[allow]\nusers = [\"billing-robot\"]\n", "allow.toml".as_ref()).unwrap();
    /// ```
    pub fn load_str(&mut self, text: &str, origin: &Path) -> Result<(), RuleFileError> {
        let error = |line: Option<usize>, message: String| RuleFileError {
            file: origin.to_path_buf(),
            line,
            message,
        };
        let file: RulesFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|span| line_of(text, span.start));
            error(line, e.message().to_owned())
        })?;
        let mut rules = Vec::new();
        for spanned in file.rule {
            let line = Some(line_of(text, spanned.span().start));
            let entry = spanned.into_inner();
            let id = entry.id.trim().to_owned();
            if id.is_empty() || id.contains(char::is_whitespace) {
                return Err(error(line, format!("rule id {id:?} must be one word")));
            }
            if builtin(&id).is_some()
                || self
                    .user_rules
                    .iter()
                    .chain(&rules)
                    .any(|r: &UserRule| r.id == id)
            {
                return Err(error(line, format!("rule id {id:?} is already defined")));
            }
            let severity = Severity::parse(&entry.severity)
                .ok_or_else(|| error(line, format!("rule {id}: unknown severity {:?} (none, info, low, medium, high, critical)", entry.severity)))?;
            let when = entry
                .when
                .compile()
                .map_err(|m| error(line, format!("rule {id}: {m}")))?;
            let threshold = match entry.threshold {
                Some(t) => {
                    let window_ms = parse_span(&t.window).ok_or_else(|| {
                        error(
                            line,
                            format!(
                                "rule {id}: window {:?} is not a span like 10m or 1h",
                                t.window
                            ),
                        )
                    })?;
                    if window_ms <= 0 {
                        return Err(error(
                            line,
                            format!(
                                "rule {id}: window {:?} is empty: give a span of at least 1s",
                                t.window
                            ),
                        ));
                    }
                    if t.count == 0 {
                        return Err(error(
                            line,
                            format!("rule {id}: threshold count must be at least 1"),
                        ));
                    }
                    if let Some(bad) = t.group_by.iter().find(|f| !is_condition_field(f)) {
                        return Err(error(
                            line,
                            format!("rule {id}: unknown group_by field {bad:?}"),
                        ));
                    }
                    Some(Threshold {
                        count: t.count,
                        window_ms,
                        group_by: t.group_by,
                    })
                }
                None => None,
            };
            rules.push(UserRule {
                id,
                title: entry.title,
                severity,
                when,
                threshold,
                origin: origin.display().to_string(),
            });
        }
        self.user_rules.extend(rules);
        if let Some(allow) = file.allow {
            self.allowed_users.extend(allow.users);
            self.allowed_ips.extend(allow.source_ips);
        }
        Ok(())
    }

    /// True when a rules file added rules.
    ///
    /// ```
    /// let mut rules = cts_audit::rules::RuleSet::builtin();
    /// rules.load_str("[[rule]]\nid = \"a.b\"\ntitle = \"t\"\nseverity = \"low\"\nwhen = { field = \"user\", exists = true }\n", "a.toml".as_ref()).unwrap();
    /// assert!(rules.has_user_rules());
    /// ```
    pub fn has_user_rules(&self) -> bool {
        !self.user_rules.is_empty()
    }

    /// Turns a rule off. Returns false when no rule has that id.
    ///
    /// ```
    /// let mut rules = cts_audit::rules::RuleSet::builtin();
    /// assert!(rules.exclude("failed.repeated"));
    /// assert!(!rules.exclude("no.such.rule"));
    /// assert!(!rules.infos().iter().any(|r| r.id == "failed.repeated"));
    /// ```
    pub fn exclude(&mut self, id: &str) -> bool {
        let known = builtin(id).is_some() || self.user_rules.iter().any(|r| r.id == id);
        if known {
            self.excluded.insert(id.to_owned());
        }
        known
    }

    /// Adds known (actor, source IP) pairs for `source.first_seen`.
    ///
    /// ```
    /// let mut rules = cts_audit::rules::RuleSet::builtin();
    /// rules.add_baseline("alice", "203.0.113.7"); // alice from there is not new
    /// ```
    pub fn add_baseline(&mut self, actor: &str, source_ip: &str) {
        self.baseline
            .entry(actor.to_owned())
            .or_default()
            .insert(source_ip.to_owned());
    }

    /// Every rule, built-in then loaded, with its severity.
    ///
    /// ```
    /// let infos = cts_audit::rules::RuleSet::builtin().infos();
    /// assert!(infos.iter().all(|r| r.origin == "built-in"));
    /// ```
    pub fn infos(&self) -> Vec<RuleInfo> {
        let builtin = BUILTIN.iter().map(|rule| {
            let (lowest, severity) = rule.severities();
            RuleInfo {
                id: rule.id.to_owned(),
                lowest,
                severity,
                title: rule.title.to_owned(),
                origin: "built-in".into(),
            }
        });
        let loaded = self.user_rules.iter().map(|r| RuleInfo {
            id: r.id.clone(),
            lowest: r.severity,
            severity: r.severity,
            title: r.title.clone(),
            origin: r.origin.clone(),
        });
        builtin
            .chain(loaded)
            .filter(|r| !self.excluded.contains(&r.id))
            .collect()
    }

    fn on(&self, id: &str) -> bool {
        // Asked for every rule of every candidate: most rule sets exclude none.
        self.excluded.is_empty() || !self.excluded.contains(id)
    }

    /// Could a rule fire on this record? Only candidates are kept for
    /// [`RuleSet::apply`]; the rest keep their catalog severity.
    ///
    /// ```
    /// use cts_audit::{classify::classify, verdict::Verdict, rules::RuleSet, trace::Trace};
    /// let rules = RuleSet::builtin();
    /// let verdict_of = |json| {
    ///     let trace = Trace::from_str(json).unwrap();
    ///     Verdict::new(&trace, None, &classify(&trace), String::new()).into_owned()
    /// };
    /// assert!(rules.is_candidate(&verdict_of(r#"{"trace_name":"bindCard","service_type":"CBC","resource_type":"order"}"#)));
    /// assert!(!rules.is_candidate(&verdict_of(r#"{"trace_name":"updatePort","service_type":"VPC"}"#)));
    /// ```
    pub fn is_candidate(&self, verdict: &Verdict<'_>) -> bool {
        self.may_be_candidate(&Facts::of(verdict))
            || self.user_rules.iter().any(|r| r.when.matches(verdict))
    }

    /// Could a built-in rule fire on a record with these facts? What the
    /// scan asks of a record's head, before parsing it whole.
    pub fn may_be_candidate(&self, facts: &Facts) -> bool {
        BUILTIN.iter().any(|rule| rule.is_candidate(facts))
    }

    /// The title of a rule, built-in or loaded.
    ///
    /// ```
    /// let rules = cts_audit::rules::RuleSet::builtin();
    /// assert_eq!(rules.title("audit.tamper"), Some("The audit trail was deleted, stopped or silenced"));
    /// ```
    pub fn title(&self, id: &str) -> Option<&str> {
        builtin(id).map(|r| r.title).or_else(|| {
            self.user_rules
                .iter()
                .find(|r| r.id == id)
                .map(|r| r.title.as_str())
        })
    }

    fn allowed(&self, verdict: &Verdict<'_>) -> Option<String> {
        if let Some(user) = verdict
            .user
            .as_deref()
            .filter(|u| self.allowed_users.contains(*u))
        {
            return Some(format!("user {user}"));
        }
        verdict
            .source_ip
            .as_deref()
            .filter(|ip| self.allowed_ips.contains(*ip))
            .map(|ip| format!("source IP {ip}"))
    }

    /// Runs every rule over the candidates, in time order (ties keep the
    /// given order), and sets each one's severity, rules and reasons.
    ///
    /// ```
    /// use cts_audit::{classify::classify, verdict::Verdict, rules::RuleSet, trace::Trace};
    /// // Five refused card bindings by one user within minutes, given out of order.
    /// let mut events: Vec<Verdict<'static>> = (0..5i64)
    ///     .rev()
    ///     .map(|i| {
    ///         let json = format!(r#"{{"trace_name":"bindCard","service_type":"CBC","resource_type":"order","code":403,
    ///           "time":{},"user":{{"name":"mallory"}}}}"#, 1_718_777_931_170 + i * 60_000);
    ///         let trace = Trace::from_str(&json).unwrap();
    ///         Verdict::new(&trace, trace.user(), &classify(&trace), String::new()).into_owned()
    ///     })
    ///     .collect();
    /// RuleSet::builtin().apply(&mut events);
    /// assert!(events.iter().any(|v| v.rules.iter().any(|r| r == "failed.repeated")));
    /// ```
    pub fn apply(&self, events: &mut [Verdict<'static>]) {
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by_key(|&i| (events[i].time_ms.unwrap_or(i64::MIN), i));
        let mut state = RuleState::default();
        for i in order {
            self.judge(&mut events[i], &mut state);
        }
    }

    /// Runs every rule over one record. Windowed rules count it in `state`,
    /// which the caller owns and feeds records in time order: a plugin keeps
    /// one across batches.
    ///
    /// ```
    /// use cts_audit::{classify::classify, verdict::Verdict, rules::{RuleSet, RuleState}, trace::Trace};
    /// let rules = RuleSet::builtin();
    /// let trace = Trace::from_str(r#"{"trace_name":"deleteResource","service_type":"CBC","resource_type":"cloudresouce"}"#).unwrap();
    /// let mut verdict = Verdict::new(&trace, None, &classify(&trace), String::new());
    /// rules.judge(&mut verdict, &mut RuleState::default());
    /// assert_eq!(verdict.severity.as_str(), "high");
    /// assert!(!verdict.reasons.is_empty());
    /// ```
    pub fn judge(&self, event: &mut Verdict<'_>, state: &mut RuleState) {
        if self.judge_alone(event) {
            self.judge_in_window(event, state);
        }
    }

    /// The part of [`RuleSet::judge`] that needs no other record, so records
    /// can go through it in parallel; false when the record is allow-listed
    /// and [`RuleSet::judge_in_window`] must not see it.
    pub(crate) fn judge_alone(&self, event: &mut Verdict<'_>) -> bool {
        event.severity = base_severity(event);
        if let Some(who) = self.allowed(event) {
            event.reasons.push(format!("allow-listed: {who}"));
            return false;
        }
        self.stateless(event);
        true
    }

    /// The windowed rules: records must come in time order.
    pub(crate) fn judge_in_window(&self, event: &mut Verdict<'_>, state: &mut RuleState) {
        self.windowed(event, state);
    }

    fn stateless(&self, event: &mut Verdict<'_>) {
        let fired: Vec<(&'static str, Severity, String)> = {
            let context = Context::new(event, self);
            BUILTIN
                .iter()
                .filter(|rule| self.on(rule.id))
                .filter_map(|rule| {
                    let (severity, reason) = rule.judge_alone(&context)?;
                    Some((rule.id, severity, reason))
                })
                .collect()
        };
        for (id, severity, reason) in fired {
            event.fire(id, severity, reason);
        }
        let name = event.trace_name.clone().unwrap_or(Cow::Borrowed("-"));
        let actor = actor_of(event);
        for rule in self
            .user_rules
            .iter()
            .filter(|r| r.threshold.is_none() && self.on(&r.id))
        {
            if rule.when.matches(event) {
                event.fire(
                    Cow::Owned(rule.id.clone()),
                    rule.severity,
                    format!("{}: {name} by {actor}", rule.title),
                );
            }
        }
    }

    fn windowed(&self, event: &mut Verdict<'_>, state: &mut RuleState) {
        let Some(time) = event.time_ms else { return };
        let fired: Vec<(&'static str, Severity, String)> = {
            let context = Context::new(event, self);
            BUILTIN
                .iter()
                .filter(|rule| rule.is_windowed() && self.on(rule.id))
                .filter_map(|rule| {
                    let (severity, reason) = rule.judge_in_window(&context, state)?;
                    Some((rule.id, severity, reason))
                })
                .collect()
        };
        for (id, severity, reason) in fired {
            event.fire(id, severity, reason);
        }
        for rule in self.user_rules.iter().filter(|r| self.on(&r.id)) {
            let Some(threshold) = &rule.threshold else {
                continue;
            };
            if !rule.when.matches(event) {
                continue;
            }
            let group: Vec<String> = threshold
                .group_by
                .iter()
                .map(|f| {
                    event
                        .field(f)
                        .map(|v| v.into_owned())
                        .unwrap_or_else(|| "-".into())
                })
                .collect();
            let window = state
                .user
                .entry((rule.id.clone(), group.clone()))
                .or_default();
            slide(window, time, threshold.window_ms);
            if window.len() as u32 >= threshold.count {
                let by = if group.is_empty() {
                    String::new()
                } else {
                    format!(" by {}", group.join("/"))
                };
                event.fire(
                    Cow::Owned(rule.id.clone()),
                    rule.severity,
                    format!(
                        "{}: {} matches{by} within {}",
                        rule.title,
                        window.len(),
                        describe_span(threshold.window_ms)
                    ),
                );
            }
        }
    }
}

/// The severity a record has before any rule fires: its catalog entry's,
/// up to `info` (rules raise it past that), `info` for uncatalogued billing,
/// `none` for the rest. The same whether or not the record is a candidate,
/// so one record gets one severity whatever rules are loaded.
pub(crate) fn base_severity(verdict: &Verdict<'_>) -> Severity {
    match verdict.entry {
        Some(entry) => entry.severity.min(Severity::Info),
        None if verdict.billing => Severity::Info,
        None => Severity::None,
    }
}

fn off_hours(ms: i64, hours: BusinessHours) -> Option<String> {
    use chrono::{Datelike, Timelike};
    let offset = chrono::FixedOffset::east_opt(hours.utc_offset_minutes * 60)?;
    let local = chrono::DateTime::from_timestamp_millis(ms)?.with_timezone(&offset);
    let weekend = matches!(local.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun);
    let hour = local.hour();
    let outside =
        (hours.weekends_off && weekend) || hour < hours.start_hour || hour >= hours.end_hour;
    outside.then(|| local.format("%a %H:%M %:z").to_string())
}
