//! The built-in rules, in one table: each rule's id, title, the severities
//! it fires at, what makes a record a candidate for it, and the function
//! that judges it. Listings (`cts-audit rules`), the scan's candidate test
//! and head pre-filter, and the rule titles in every output come from here,
//! so a new rule is added in one place.

use super::state::{slide, RuleState};
use super::{describe_span, off_hours, RuleSet};
use crate::catalog::{self, Category, Severity};
use crate::classify::{Classification, Kind};
use crate::verdict::Verdict;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// One built-in rule.
///
/// ```
/// use cts_audit::{catalog::Severity, rules::BUILTIN};
/// let rule = BUILTIN.iter().find(|r| r.id == "failed.repeated").unwrap();
/// assert_eq!(rule.severities(), (Severity::High, Severity::High));
/// // A policy rule fires at its catalog entries' severities.
/// let audit = BUILTIN.iter().find(|r| r.id == "policy.audit_trail").unwrap();
/// assert_eq!(audit.severities(), (Severity::Medium, Severity::Critical));
/// ```
#[derive(Debug)]
pub struct Builtin {
    /// Stable id.
    pub id: &'static str,
    /// What it means.
    pub title: &'static str,
    /// The severity it gives.
    pub fires: Fires,
    /// Whether a record can be a candidate for it ([`Facts`]).
    candidate: fn(&Facts) -> bool,
    judge: Judge,
}

/// The severity a built-in rule gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fires {
    /// Always this one.
    At(Severity),
    /// Its catalog entry's: the severities of the category's entries that
    /// are at least `low`.
    AsCatalog(Category),
}

/// How a rule judges a record: `None`, or the reason it fired. The
/// severity is the table's ([`Builtin::fires`]), never the judge's.
#[derive(Debug)]
enum Judge {
    /// The catalog's policy for one category.
    Policy(Category),
    /// Needs no other record: judged in parallel, as records are read.
    Alone(fn(&Context<'_, '_>) -> Option<String>),
    /// Needs the records before it in time order, in a window.
    Windowed(fn(&Context<'_, '_>, &mut RuleState) -> Option<String>),
}

/// What the built-in rules' candidate tests read: known from a record's
/// head as well as from its verdict, so the scan can tell from the head
/// alone which records need parsing whole.
///
/// ```
/// use cts_audit::rules::{Facts, RuleSet};
/// let facts = Facts { sensitive: true, ..Facts::default() };
/// assert!(RuleSet::builtin().may_be_candidate(&facts));
/// assert!(!RuleSet::builtin().may_be_candidate(&Facts::default()));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// Its catalog entry is at least `low`.
    pub sensitive: bool,
    /// Its catalog entry's category.
    pub category: Option<Category>,
    /// A Billing Center action (catalogued or a billing service).
    pub billing: bool,
    /// Rated `incident`, in any case.
    pub incident: bool,
    /// It gave a key field twice.
    pub malformed: bool,
    /// An earlier, different record had its trace id.
    pub conflict: bool,
    /// `scan --verify`: its file was modified, or no digest lists it.
    pub tampered: bool,
}

impl Facts {
    /// The facts of a record from its classification and rating, as the
    /// scan knows them from its head: the same as [`Facts::of`] its verdict.
    ///
    /// ```
    /// use cts_audit::{analyze::Analyzer, classify::classify, rules::Facts, trace::{TraceFields, TraceHead}};
    /// let json = r#"{"trace_name":"deleteTracker","service_type":"CTS","resource_type":"tracker","trace_rating":"INCIDENT"}"#;
    /// let head = TraceHead::from_str(json).unwrap();
    /// let from_head = Facts::of_class(&classify(&head), head.rating(), false);
    /// assert_eq!(from_head, Facts::of(&Analyzer::default().analyze_str(json).unwrap()));
    /// ```
    pub fn of_class(class: &Classification, rating: Option<&str>, malformed: bool) -> Facts {
        let entry = match class.kind {
            Kind::Catalogued(entry) => Some(entry),
            _ => None,
        };
        Facts {
            sensitive: entry.is_some_and(|e| e.severity >= Severity::Low),
            category: entry.map(|e| e.category),
            billing: class.is_billing(),
            incident: is_incident(rating),
            malformed,
            conflict: false,
            tampered: false,
        }
    }

    /// The facts of a verdict.
    pub fn of(verdict: &Verdict<'_>) -> Facts {
        Facts {
            sensitive: verdict.entry.is_some_and(|e| e.severity >= Severity::Low),
            category: verdict.category,
            billing: verdict.billing,
            incident: is_incident(verdict.rating.as_deref()),
            malformed: verdict.malformed.is_some(),
            conflict: verdict.conflict,
            tampered: verdict.integrity.is_some_and(|i| i.is_problem()),
        }
    }
}

/// Rated `incident`, in any case: exports disagree on case (`INCIDENT`).
pub(crate) fn is_incident(rating: Option<&str>) -> bool {
    rating.is_some_and(|r| r.eq_ignore_ascii_case("incident"))
}

impl Builtin {
    /// The lowest and highest severity it fires at.
    pub fn severities(&self) -> (Severity, Severity) {
        match self.fires {
            Fires::At(severity) => (severity, severity),
            Fires::AsCatalog(category) => {
                let listed = catalog::entries()
                    .iter()
                    .filter(|e| e.category == category && e.severity >= Severity::Low)
                    .map(|e| e.severity);
                let low = listed.clone().min().unwrap_or(Severity::Low);
                (low, listed.max().unwrap_or(Severity::Low))
            }
        }
    }

    /// It may fire at `severity`.
    pub fn fires_at(&self, severity: Severity) -> bool {
        let (low, high) = self.severities();
        (low..=high).contains(&severity)
    }

    /// Could it fire on a record with these facts?
    pub fn is_candidate(&self, facts: &Facts) -> bool {
        (self.candidate)(facts)
    }

    /// It runs in the window phase: it needs records in time order.
    pub fn is_windowed(&self) -> bool {
        matches!(self.judge, Judge::Windowed(_))
    }

    /// Judges `event` when it needs no other record; `None` when it does
    /// not fire, or is windowed.
    pub(crate) fn judge_alone(&self, context: &Context<'_, '_>) -> Option<(Severity, String)> {
        let reason = match self.judge {
            Judge::Policy(category) => policy(category, context),
            Judge::Alone(judge) => judge(context),
            Judge::Windowed(_) => None,
        }?;
        Some((self.severity_for(context), reason))
    }

    /// The severity it gives this record: its own, or the catalog entry's.
    fn severity_for(&self, context: &Context<'_, '_>) -> Severity {
        match self.fires {
            Fires::At(severity) => severity,
            Fires::AsCatalog(_) => context.event.entry.map_or(Severity::None, |e| e.severity),
        }
    }

    /// Judges `event` in its window; `None` when it does not fire, or needs
    /// no window.
    pub(crate) fn judge_in_window(
        &self,
        context: &Context<'_, '_>,
        state: &mut RuleState,
    ) -> Option<(Severity, String)> {
        let reason = match self.judge {
            Judge::Windowed(judge) => judge(context, state),
            _ => None,
        }?;
        Some((self.severity_for(context), reason))
    }
}

/// What every rule reads of one record.
pub(crate) struct Context<'e, 'a> {
    pub event: &'e Verdict<'a>,
    pub facts: Facts,
    pub name: Cow<'a, str>,
    pub actor: Cow<'a, str>,
    pub rules: &'e RuleSet,
}

impl<'e, 'a> Context<'e, 'a> {
    pub(crate) fn new(event: &'e Verdict<'a>, rules: &'e RuleSet) -> Self {
        Context {
            event,
            facts: Facts::of(event),
            name: event.trace_name.clone().unwrap_or(Cow::Borrowed("-")),
            actor: actor_of(event),
            rules,
        }
    }
}

/// Who acted: the user name, else the user id, else `-`; borrowed from the
/// input when the verdict borrows it.
pub(crate) fn actor_of<'a>(event: &Verdict<'a>) -> Cow<'a, str> {
    event
        .user
        .clone()
        .or_else(|| event.user_id.clone())
        .unwrap_or(Cow::Borrowed("-"))
}

const fn policy_rule(id: &'static str, title: &'static str, category: Category) -> Builtin {
    Builtin {
        id,
        title,
        fires: Fires::AsCatalog(category),
        candidate: |f| f.sensitive,
        judge: Judge::Policy(category),
    }
}

/// Every built-in rule. Rules fire in this order, so reasons are listed in
/// it.
pub const BUILTIN: &[Builtin] = &[
    policy_rule(
        "policy.payment_method",
        "Payment method added, changed or removed",
        Category::PaymentMethod,
    ),
    policy_rule("policy.payment", "Payment made", Category::Payment),
    policy_rule(
        "policy.funds",
        "Funds topped up, withdrawn or moved between accounts",
        Category::Funds,
    ),
    policy_rule(
        "policy.destruction",
        "Paid resource unsubscribed, released, frozen or deleted",
        Category::Destruction,
    ),
    policy_rule(
        "policy.renewal",
        "Renewal, billing mode or deduction date changed",
        Category::Renewal,
    ),
    policy_rule(
        "policy.financial_settings",
        "Balance alert, deduction or budget setting changed",
        Category::FinancialSettings,
    ),
    policy_rule(
        "policy.export",
        "Financial data exported or downloaded",
        Category::Export,
    ),
    policy_rule(
        "policy.order",
        "Order created, changed or cancelled",
        Category::Order,
    ),
    policy_rule(
        "policy.invoice",
        "Invoice or invoice template changed",
        Category::Invoice,
    ),
    policy_rule(
        "policy.account",
        "Account, member account or identity changed",
        Category::Account,
    ),
    policy_rule(
        "policy.audit_trail",
        "CTS tracker or notification changed",
        Category::AuditTrail,
    ),
    Builtin {
        id: "failed.sensitive",
        title: "A sensitive operation failed",
        fires: Fires::At(Severity::Medium),
        candidate: |f| f.sensitive,
        judge: Judge::Alone(failed_sensitive),
    },
    Builtin {
        id: "failed.repeated",
        title: "Repeated failed sensitive attempts by one actor",
        fires: Fires::At(Severity::High),
        candidate: |f| f.sensitive,
        judge: Judge::Windowed(failed_repeated),
    },
    Builtin {
        id: "incident.billing",
        title: "A billing operation rated incident",
        fires: Fires::At(Severity::High),
        candidate: |f| f.billing && f.incident,
        judge: Judge::Alone(incident_billing),
    },
    Builtin {
        id: "export.burst",
        title: "Many exports of financial data by one actor",
        fires: Fires::At(Severity::High),
        candidate: |f| f.sensitive && f.category == Some(Category::Export),
        judge: Judge::Windowed(export_burst),
    },
    Builtin {
        id: "source.first_seen",
        title: "Sensitive operation from a source IP new for the actor",
        fires: Fires::At(Severity::Medium),
        candidate: |f| f.sensitive,
        judge: Judge::Windowed(source_first_seen),
    },
    Builtin {
        id: "actor.root_money",
        title: "The root account paid or changed payment methods",
        fires: Fires::At(Severity::High),
        candidate: |f| {
            f.sensitive
                && matches!(
                    f.category,
                    Some(Category::Payment | Category::PaymentMethod)
                )
        },
        judge: Judge::Alone(root_money),
    },
    Builtin {
        id: "actor.federated_finance",
        title: "A federated or agency identity changed payment or deduction settings",
        fires: Fires::At(Severity::High),
        candidate: |f| f.sensitive,
        judge: Judge::Alone(federated_finance),
    },
    Builtin {
        id: "audit.tamper",
        title: "The audit trail was deleted, stopped or silenced",
        fires: Fires::At(Severity::High),
        candidate: |f| f.sensitive,
        judge: Judge::Alone(tamper),
    },
    Builtin {
        id: "audit.malformed",
        title: "A record gives a key field twice: it may have been edited",
        fires: Fires::At(Severity::Medium),
        candidate: |f| f.malformed,
        judge: Judge::Alone(malformed),
    },
    Builtin {
        id: "audit.conflict",
        title: "A different record reuses a trace id already seen: both are kept",
        fires: Fires::At(Severity::High),
        candidate: |f| f.conflict,
        judge: Judge::Alone(conflict),
    },
    Builtin {
        id: "audit.integrity",
        title: "The record's file was modified, or no digest lists it (scan --verify)",
        fires: Fires::At(Severity::High),
        candidate: |f| f.tampered,
        judge: Judge::Alone(integrity),
    },
    Builtin {
        id: "cost.large",
        title: "A billing action charged or refunded at least --cost-threshold (scan --bills)",
        fires: Fires::At(Severity::High),
        candidate: |f| f.sensitive,
        judge: Judge::Windowed(cost_large),
    },
    Builtin {
        id: "offhours",
        title: "Sensitive operation outside business hours (opt-in)",
        fires: Fires::At(Severity::Low),
        candidate: |f| f.sensitive,
        judge: Judge::Alone(offhours),
    },
];

/// The built-in rule with this id.
///
/// ```
/// assert!(cts_audit::rules::builtin("audit.tamper").is_some());
/// assert!(cts_audit::rules::builtin("no.such").is_none());
/// ```
pub fn builtin(id: &str) -> Option<&'static Builtin> {
    BUILTIN.iter().find(|r| r.id == id)
}

/// Trace names that stop, delete or silence the audit trail.
const TAMPER: &[&str] = &[
    "deleteTracker",
    "updateTracker",
    "deleteNotification",
    "updateNotificationStatus",
];

/// Trace names that change when or how money is deducted.
const DEDUCTION: &[&str] = &[
    "updateCustomerDeductConfig",
    "setRenewalDeductionDate",
    "setResourcesRenewConfig",
];

fn policy(category: Category, c: &Context<'_, '_>) -> Option<String> {
    let entry = c.event.entry.filter(|e| e.category == category)?;
    (entry.severity >= Severity::Low).then(|| {
        format!(
            "{}: {} ({}, {})",
            c.name, entry.operation, entry.category, entry.severity
        )
    })
}

fn failed_sensitive(c: &Context<'_, '_>) -> Option<String> {
    (c.facts.sensitive && c.event.failed).then(|| {
        format!(
            "failed {} by {}{}",
            c.name,
            c.actor,
            failure_detail(c.event)
        )
    })
}

fn incident_billing(c: &Context<'_, '_>) -> Option<String> {
    (c.facts.billing && c.facts.incident).then(|| {
        format!(
            "{} by {} rated incident{}",
            c.name,
            c.actor,
            failure_detail(c.event)
        )
    })
}

fn root_money(c: &Context<'_, '_>) -> Option<String> {
    let money = matches!(
        c.event.category,
        Some(Category::Payment | Category::PaymentMethod)
    );
    (c.event.root_user == Some(true) && money)
        .then(|| format!("{} by the root account {}", c.name, c.actor))
}

fn federated_finance(c: &Context<'_, '_>) -> Option<String> {
    let kind = c
        .event
        .user_type
        .as_deref()
        .filter(|t| matches!(*t, "ExternalUser" | "AssumedAgency"))?;
    let finance =
        c.event.category == Some(Category::PaymentMethod) || DEDUCTION.contains(&c.name.as_ref());
    finance.then(|| format!("{} by {kind} identity {}", c.name, c.actor))
}

fn tamper(c: &Context<'_, '_>) -> Option<String> {
    let by_cts = c
        .event
        .service_type
        .as_deref()
        .is_none_or(|s| s.eq_ignore_ascii_case("CTS"));
    (TAMPER.contains(&c.name.as_ref()) && by_cts).then(|| {
        let resource = c
            .event
            .resource_name
            .as_deref()
            .or(c.event.resource_id.as_deref())
            .map_or(String::new(), |r| format!(" {r}"));
        format!(
            "{}{resource} by {}: the audit trail loses coverage",
            c.name, c.actor
        )
    })
}

fn malformed(c: &Context<'_, '_>) -> Option<String> {
    let keys = c.event.malformed.as_deref()?;
    let reason = format!(
        "{} by {}: the record gives {keys} more than once (the last value is read); \
         a record with two answers to what it is may have been edited",
        c.name, c.actor
    );
    Some(reason)
}

fn conflict(c: &Context<'_, '_>) -> Option<String> {
    c.event.conflict.then(|| {
        let id = c.event.trace_id.as_deref().unwrap_or("-");
        format!(
            "{} by {}: trace_id {id} was first seen on a different record \
             (another operation, resource type, rating or time); a re-delivery repeats \
             its record, so this one is kept, not dropped as a duplicate",
            c.name, c.actor
        )
    })
}

fn integrity(c: &Context<'_, '_>) -> Option<String> {
    let state = c.event.integrity.filter(|i| i.is_problem())?;
    let note = c.event.integrity_note.as_deref().unwrap_or("");
    Some(format!(
        "{} by {}: read from a file the integrity check found {}: {note}",
        c.name,
        c.actor,
        state.name()
    ))
}

fn offhours(c: &Context<'_, '_>) -> Option<String> {
    let hours = c.rules.settings.business_hours?;
    let when = off_hours(c.event.time_ms?, hours)?;
    c.facts.sensitive.then(|| {
        format!(
            "{} by {} at {when}, outside business hours {:02}-{:02}",
            c.name, c.actor, hours.start_hour, hours.end_hour
        )
    })
}

fn failed_repeated(c: &Context<'_, '_>, state: &mut RuleState) -> Option<String> {
    let time = c.event.time_ms?;
    if !(c.facts.sensitive && c.event.failed) {
        return None;
    }
    let s = &c.rules.settings;
    let probe = c.event.error_code.as_deref() == Some("CBC.0151");
    let window = state.failures.entry_ref(c.actor.as_ref()).or_default();
    window.push_back((
        time,
        if probe { s.probe_weight } else { 1 },
        c.name.clone().into_owned(),
        probe,
    ));
    while window
        .front()
        .is_some_and(|(t, ..)| *t <= time - s.failure_window_ms)
    {
        window.pop_front();
    }
    let weight: u32 = window.iter().map(|(_, w, ..)| w).sum();
    if weight < s.failure_threshold {
        return None;
    }
    let mut names: BTreeMap<&str, u32> = BTreeMap::new();
    for (_, _, n, _) in window.iter() {
        *names.entry(n).or_default() += 1;
    }
    let listed: Vec<String> = names.iter().map(|(n, c)| format!("{n} ×{c}")).collect();
    let probes = window.iter().filter(|(.., p)| *p).count();
    let probing = if probes > 0 {
        format!(", CBC.0151 access denied ×{probes} (probing)")
    } else {
        String::new()
    };
    let reason = format!(
        "{} failed sensitive attempts by {} in {} ({}){probing}",
        ordinal(window.len()),
        c.actor,
        describe_span(s.failure_window_ms),
        listed.join(", ")
    );
    Some(reason)
}

fn export_burst(c: &Context<'_, '_>, state: &mut RuleState) -> Option<String> {
    let time = c.event.time_ms?;
    if c.event.category != Some(Category::Export) {
        return None;
    }
    let s = &c.rules.settings;
    let window = state.exports.entry_ref(c.actor.as_ref()).or_default();
    slide(window, time, s.export_window_ms);
    (window.len() as u32 >= s.export_threshold).then(|| {
        format!(
            "{} exports of financial data by {} within {}: possible exfiltration",
            window.len(),
            c.actor,
            describe_span(s.export_window_ms)
        )
    })
}

/// The cost the bills show for a billing action, when one of its
/// currencies' amounts reaches that currency's threshold (charge or refund
/// alike). Windowed only because costs are known once every file is read.
fn cost_large(c: &Context<'_, '_>, _: &mut RuleState) -> Option<String> {
    let cost = c.event.cost.as_deref()?;
    let thresholds = &c.rules.settings.cost_thresholds;
    let (amount, currency) = cost.amounts().find(|(amount, currency)| {
        thresholds.iter().any(|t| {
            t.currency
                .as_deref()
                .is_none_or(|c| c.eq_ignore_ascii_case(currency))
                && amount.abs() >= t.amount
        })
    })?;
    let action = cost.action.map_or("the action".to_owned(), |a| a.words());
    let verb = if amount.is_sign_negative() {
        "refunded"
    } else {
        "charged"
    };
    Some(format!(
        "{action} {verb} {} {currency} ({} charge{}, matched by {})",
        crate::bills::join::grouped(amount.abs()),
        cost.charges,
        if cost.charges == 1 { "" } else { "s" },
        cost.matched.unwrap_or("-")
    ))
}

fn source_first_seen(c: &Context<'_, '_>, state: &mut RuleState) -> Option<String> {
    c.event.time_ms?;
    let ip = c.event.source_ip.as_deref()?;
    let seen = state
        .sources
        .entry_ref(c.actor.as_ref())
        .or_insert_with(|| {
            c.rules
                .baseline
                .get(c.actor.as_ref())
                .cloned()
                .unwrap_or_default()
        });
    let new = !seen.contains(ip);
    let fired = (c.facts.sensitive && new && !seen.is_empty()).then(|| {
        let known: Vec<&str> = seen.iter().take(3).map(String::as_str).collect();
        format!(
            "{} by {} from {ip}, first seen for this actor (known: {})",
            c.name,
            c.actor,
            known.join(", ")
        )
    });
    // An actor's history is its sensitive records (README), whatever else
    // is judged in the window.
    if new && c.facts.sensitive {
        seen.insert(ip.to_owned());
    }
    fired
}

fn failure_detail(event: &Verdict<'_>) -> String {
    let mut detail = String::new();
    if let Some(code) = &event.error_code {
        detail.push_str(", ");
        detail.push_str(code);
        if let Some(known) = catalog::error_code(code) {
            detail.push(' ');
            detail.push_str(known.meaning);
        }
    }
    if let Some(http) = event.code.filter(|c| *c >= 400) {
        detail.push_str(&format!(" (HTTP {http})"));
    }
    detail
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;
    use crate::trace::Trace;

    /// One trace of every catalog entry in every variant a rule reads:
    /// failed with a denial, rated incident, by the root account or a
    /// federated identity, at night, from a new address; plus uncatalogued
    /// billing calls. Times step a minute apart, in order.
    fn corpus() -> Vec<String> {
        let mut traces = Vec::new();
        let variants = [
            r#""code":200,"source_ip":"203.0.113.1","user":{"name":"alice","type":"User"}"#,
            r#""code":403,"response":"{\"error_code\":\"CBC.0151\"}","source_ip":"203.0.113.2","user":{"name":"alice","type":"User"}"#,
            r#""trace_rating":"INCIDENT","user":{"name":"bob","type":"User","principal_is_root_user":"true"}"#,
            r#""code":200,"source_ip":"198.51.100.9","user":{"name":"idp/carol","type":"ExternalUser"}"#,
        ];
        let mut minute = 0i64;
        let entries = catalog::entries()
            .iter()
            .map(|e| (e.trace_name, e.resource_type, "CBC"))
            .chain([
                ("queryCustomerBill", "bill", "CBC"),
                ("deleteTracker", "tracker", "CTS"),
            ]);
        for (name, resource_type, service) in entries {
            for variant in variants {
                // Day and night, in turn.
                let time = 1_718_777_931_170 + minute * 60_000 + (minute % 2) * 12 * 3_600_000;
                minute += 1;
                traces.push(format!(
                    r#"{{"trace_id":"t{minute}","trace_name":"{name}","resource_type":"{resource_type}","service_type":"{service}","time":{time},{variant}}}"#
                ));
            }
        }
        traces
    }

    #[test]
    fn no_rule_fires_outside_its_listed_severities_or_on_a_non_candidate() {
        let mut rules = RuleSet::builtin();
        rules.settings.failure_threshold = 2;
        rules.settings.export_threshold = 2;
        rules.settings.cost_thresholds = vec!["10000".parse().unwrap()];
        rules.settings.business_hours = Some(super::super::BusinessHours {
            start_hour: 9,
            end_hour: 18,
            utc_offset_minutes: 8 * 60,
            weekends_off: true,
        });
        let mut state = RuleState::default();
        let mut fired_once: BTreeMap<&str, u32> = BTreeMap::new();
        for (k, text) in corpus().iter().enumerate() {
            let trace = Trace::from_str(text).unwrap();
            let mut verdict = Verdict::new(&trace, trace.user(), &classify(&trace), String::new());
            verdict.malformed = (k % 7 == 0).then(|| "trace_name".to_owned());
            verdict.conflict = k % 11 == 0;
            if k % 13 == 0 {
                verdict.integrity = Some(crate::integrity::Integrity::Modified);
                verdict.integrity_note = Some("trace_file_modified CloudTraces/x.json.gz".into());
            } else if k % 17 == 0 {
                verdict.integrity = Some(crate::integrity::Integrity::Verified);
            }
            if let Some(action) = trace
                .trace_name
                .as_deref()
                .and_then(crate::bills::join::Action::of)
            {
                verdict.cost = Some(Box::new(crate::bills::join::Cost {
                    amount: rust_decimal::Decimal::new(-1_234_000, 2),
                    currency: Some("CNY".into()),
                    charges: 1,
                    matched: Some("resource"),
                    bill_ids: vec!["b-1".into()],
                    other_currencies: Vec::new(),
                    action: Some(action),
                }));
            }
            let context = Context::new(&verdict, &rules);
            for rule in BUILTIN {
                let fired = match rule.is_windowed() {
                    false => rule.judge_alone(&context),
                    true => rule.judge_in_window(&context, &mut state),
                };
                if let Some((severity, reason)) = fired {
                    assert!(
                        rule.fires_at(severity),
                        "{} fired at {severity}, listed as {:?}: {reason}",
                        rule.id,
                        rule.severities()
                    );
                    assert!(
                        rule.is_candidate(&context.facts),
                        "{} fired on a record its candidate test refuses: {text}",
                        rule.id
                    );
                    *fired_once.entry(rule.id).or_default() += 1;
                }
            }
        }
        // The corpus reaches every rule, so the test has teeth.
        let silent: Vec<&str> = BUILTIN
            .iter()
            .map(|r| r.id)
            .filter(|id| !fired_once.contains_key(id))
            .collect();
        assert!(silent.is_empty(), "never fired: {silent:?}");
    }

    #[test]
    fn every_policy_rule_lists_the_severities_of_its_entries() {
        for rule in BUILTIN {
            if let Fires::AsCatalog(category) = rule.fires {
                let (low, high) = rule.severities();
                for entry in catalog::entries().iter().filter(|e| e.category == category) {
                    if entry.severity >= Severity::Low {
                        assert!(
                            (low..=high).contains(&entry.severity),
                            "{}",
                            entry.trace_name
                        );
                    }
                }
                assert!(low >= Severity::Low, "{}", rule.id);
            }
        }
        // The drift this table fixed: deleteTracker is critical.
        let audit = builtin("policy.audit_trail").unwrap();
        assert!(audit.fires_at(Severity::Critical));
        let funds = builtin("policy.funds").unwrap();
        assert!(funds.fires_at(Severity::High));
    }

    #[test]
    fn ids_are_unique_and_the_head_facts_match_the_verdict_facts() {
        let mut ids: Vec<&str> = BUILTIN.iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), BUILTIN.len());
        for text in corpus() {
            let trace = Trace::from_str(&text).unwrap();
            let class = classify(&trace);
            let verdict = Verdict::new(&trace, trace.user(), &class, String::new());
            assert_eq!(
                Facts::of_class(&class, crate::trace::TraceFields::rating(&trace), false),
                Facts::of(&verdict),
                "{text}"
            );
        }
    }
}
