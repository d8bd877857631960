//! OCSF and ECS shapes of a [`Verdict`], for SIEMs to ingest without a
//! hand-written mapping. Field mappings are documented in docs/SIEM.md and
//! follow `../shared/reference/peers-and-schemas.md` §4.4.
//!
//! ```
//! use cts_audit::analyze::Analyzer;
//! let record = br#"{"trace_id":"t-1","trace_name":"payOrder","service_type":"CBC",
//!   "resource_type":"cloudresouce","time":1718777931170,"user":{"name":"alice"},"source_ip":"203.0.113.10"}"#;
//! let verdict = Analyzer::default().analyze(record).unwrap();
//! let ocsf = cts_audit::siem::ocsf(&verdict);
//! assert_eq!(ocsf["class_uid"], 6003);
//! assert_eq!(ocsf["type_uid"], 600301); // payOrder creates a payment
//! let ecs = cts_audit::siem::ecs(&verdict, None, &cts_audit::rules::RuleSet::builtin());
//! assert_eq!(ecs["event"]["kind"], "alert");
//! assert_eq!(ecs["event"]["action"], "payOrder");
//! ```

use crate::catalog::{self, Activity, Category, Severity};
use crate::rules::RuleSet;
use crate::verdict::Verdict;
use serde_json::{json, Map, Value};

/// The OCSF schema version the output conforms to.
///
/// ```
/// assert!(cts_audit::siem::OCSF_VERSION.starts_with("1."));
/// ```
pub const OCSF_VERSION: &str = "1.3.0";
/// The ECS version the output conforms to.
///
/// ```
/// assert!(cts_audit::siem::ECS_VERSION.starts_with("8."));
/// ```
pub const ECS_VERSION: &str = "8.11.0";
/// `cloud.provider` in both schemas.
///
/// ```
/// assert_eq!(cts_audit::siem::PROVIDER, "huaweicloud");
/// ```
pub const PROVIDER: &str = "huaweicloud";

/// OCSF `severity_id`: 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical.
///
/// ```
/// use cts_audit::{catalog::Severity, siem::ocsf_severity_id};
/// assert_eq!((ocsf_severity_id(Severity::None), ocsf_severity_id(Severity::Critical)), (1, 5));
/// ```
pub fn ocsf_severity_id(severity: Severity) -> u8 {
    match severity {
        Severity::None | Severity::Info => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

fn ocsf_severity_name(id: u8) -> &'static str {
    [
        "Unknown",
        "Informational",
        "Low",
        "Medium",
        "High",
        "Critical",
    ][usize::from(id.min(5))]
}

/// ECS `event.severity` and `event.risk_score`, on Elastic's rule scale.
///
/// ```
/// use cts_audit::{catalog::Severity, siem::ecs_severity};
/// assert_eq!(ecs_severity(Severity::Critical), 99);
/// ```
pub fn ecs_severity(severity: Severity) -> u8 {
    match severity {
        Severity::None => 0,
        Severity::Info => 1,
        Severity::Low => 21,
        Severity::Medium => 47,
        Severity::High => 73,
        Severity::Critical => 99,
    }
}

/// OCSF `activity_id` from the catalog: 1 Create, 2 Read, 3 Update,
/// 4 Delete; 0 Unknown for an operation the catalog does not name.
///
/// ```
/// use cts_audit::{analyze::Analyzer, siem::activity_id};
/// let delete = Analyzer::default()
///     .analyze_str(r#"{"trace_name":"deleteResource","service_type":"CBC","resource_type":"cloudresouce"}"#)
///     .unwrap();
/// assert_eq!(activity_id(&delete), 4);
/// ```
pub fn activity_id(verdict: &Verdict<'_>) -> u8 {
    match verdict.entry.map(|e| e.activity) {
        Some(Activity::Create) => 1,
        Some(Activity::Read) => 2,
        Some(Activity::Update) => 3,
        Some(Activity::Delete) => 4,
        None => 0,
    }
}

/// Inserts `value` under `key` unless it is null.
fn put(map: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    let value = value.into();
    if !value.is_null() {
        map.insert(key.to_owned(), value);
    }
}

fn status_id(verdict: &Verdict<'_>) -> u8 {
    match (verdict.failed, verdict.rating.as_deref()) {
        (true, _) => 2,
        (false, Some("normal")) => 1,
        (false, Some(_)) => 2,
        (false, None) => 0,
    }
}

/// The verdict as an OCSF API Activity (class 6003) event.
///
/// ```
/// use cts_audit::{analyze::Analyzer, siem::ocsf};
/// let verdict = Analyzer::default()
///     .analyze_str(r#"{"trace_name":"deleteResource","service_type":"CBC","resource_type":"cloudresouce","time":1718777931170}"#)
///     .unwrap();
/// let event = ocsf(&verdict);
/// assert_eq!(event["class_uid"], 6003);
/// assert_eq!(event["time"], 1718777931170i64);
/// ```
pub fn ocsf(verdict: &Verdict<'_>) -> Value {
    let activity = activity_id(verdict);
    let activity_name = ["Unknown", "Create", "Read", "Update", "Delete"][usize::from(activity)];
    let severity_id = ocsf_severity_id(verdict.severity);
    let mut event = Map::new();
    put(&mut event, "activity_id", activity);
    put(&mut event, "activity_name", activity_name);
    put(&mut event, "category_uid", 6);
    put(&mut event, "category_name", "Application Activity");
    put(&mut event, "class_uid", 6003);
    put(&mut event, "class_name", "API Activity");
    put(&mut event, "type_uid", 600_300 + u32::from(activity));
    put(
        &mut event,
        "type_name",
        format!("API Activity: {activity_name}"),
    );
    put(&mut event, "severity_id", severity_id);
    put(&mut event, "severity", ocsf_severity_name(severity_id));
    put(&mut event, "time", verdict.time_ms.unwrap_or(0));
    let status = status_id(verdict);
    put(&mut event, "status_id", status);
    put(
        &mut event,
        "status",
        ["Unknown", "Success", "Failure"][usize::from(status)],
    );
    put(
        &mut event,
        "status_code",
        verdict
            .error_code
            .as_deref()
            .map(str::to_owned)
            .or(verdict.code.map(|c| c.to_string())),
    );
    put(
        &mut event,
        "status_detail",
        verdict
            .error_code
            .as_deref()
            .and_then(catalog::error_code)
            .map(|c| c.meaning),
    );
    put(
        &mut event,
        "message",
        verdict
            .reasons
            .first()
            .cloned()
            .or(verdict.operation.map(str::to_owned)),
    );

    let mut metadata = Map::new();
    put(&mut metadata, "version", OCSF_VERSION);
    put(
        &mut metadata,
        "product",
        json!({"name": "Cloud Trace Service", "vendor_name": "Huawei Cloud"}),
    );
    put(&mut metadata, "uid", verdict.trace_id.as_deref());
    put(&mut metadata, "event_code", verdict.trace_type.as_deref());
    put(&mut metadata, "log_name", "cts");
    put(&mut metadata, "original_time", verdict.time.as_deref());
    put(&mut event, "metadata", metadata);

    let mut user = Map::new();
    put(&mut user, "name", verdict.user.as_deref());
    put(&mut user, "uid", verdict.user_id.as_deref());
    put(&mut user, "type", verdict.user_type.as_deref());
    if let Some(domain) = verdict.domain.as_deref() {
        put(&mut user, "account", json!({"name": domain}));
    }
    let actor = if user.is_empty() {
        json!({"app_name": verdict.service_type.as_deref().unwrap_or("unknown")})
    } else {
        json!({"user": user})
    };
    put(&mut event, "actor", actor);

    let mut api = Map::new();
    put(
        &mut api,
        "operation",
        verdict.trace_name.as_deref().unwrap_or("unknown"),
    );
    if let Some(service) = verdict.service_type.as_deref() {
        put(&mut api, "service", json!({"name": service}));
    }
    if let Some(code) = &verdict.error_code {
        put(&mut api, "response", json!({"error": code}));
    }
    put(&mut event, "api", api);
    let endpoint = match verdict.source_ip.as_deref() {
        Some(ip) => json!({"ip": ip}),
        None => json!({"svc_name": verdict.trace_type.as_deref().unwrap_or("unknown")}),
    };
    put(&mut event, "src_endpoint", endpoint);
    put(&mut event, "cloud", json!({"provider": PROVIDER}));
    let mut resource = Map::new();
    put(&mut resource, "type", verdict.resource_type.as_deref());
    put(&mut resource, "uid", verdict.resource_id.as_deref());
    put(&mut resource, "name", verdict.resource_name.as_deref());
    if !resource.is_empty() {
        put(&mut event, "resources", json!([resource]));
    }
    if let Some(code) = verdict.code {
        put(&mut event, "http_response", json!({"code": code}));
    }
    put(
        &mut event,
        "unmapped",
        json!({"cts_audit": extension(verdict)}),
    );
    Value::Object(event)
}

/// What only cts-audit knows: rules, reasons, catalog fields, source, and
/// (`scan --verify`) the integrity of the record's file, and (`scan
/// --bills`) the action's cost.
fn extension(verdict: &Verdict<'_>) -> Value {
    let mut extension = json!({
        "severity": verdict.severity,
        "rules": verdict.rules,
        "reasons": verdict.reasons,
        "category": verdict.category,
        "operation": verdict.operation,
        "billing": verdict.billing,
        "catalogued": verdict.catalogued,
        "source": verdict.source,
    });
    if let (Some(integrity), Value::Object(fields)) = (verdict.integrity, &mut extension) {
        fields.insert("integrity".into(), integrity.name().into());
    }
    // `scan --bills`: the cost object as in JSONL (docs/COST.md).
    if let (Some(cost), Value::Object(fields)) = (&verdict.cost, &mut extension) {
        fields.insert("cost".into(), json!(cost));
    }
    extension
}

/// The verdict as an Elastic Common Schema document; `original` is kept as
/// `event.original` when given. `rules` names the rules that fired
/// (`rule.name`): the ones the verdict was judged by.
///
/// ```
/// use cts_audit::{analyze::Analyzer, rules::RuleSet, siem::ecs};
/// let line = r#"{"trace_name":"deleteResource","service_type":"CBC","resource_type":"cloudresouce"}"#;
/// let verdict = Analyzer::default().analyze_str(line).unwrap();
/// let document = ecs(&verdict, Some(line), &RuleSet::builtin());
/// assert_eq!(document["event"]["original"], line);
/// assert_eq!(document["cloud"]["provider"], "huaweicloud");
/// ```
pub fn ecs(verdict: &Verdict<'_>, original: Option<&str>, rules: &RuleSet) -> Value {
    let flagged = verdict.severity >= Severity::Low;
    let activity = verdict.entry.map(|e| e.activity);
    let mut types = vec![match activity {
        Some(Activity::Create) => "creation",
        Some(Activity::Read) => "access",
        Some(Activity::Update) => "change",
        Some(Activity::Delete) => "deletion",
        None => "info",
    }];
    if verdict.failed
        && (verdict.code == Some(403) || verdict.error_code.as_deref() == Some("CBC.0151"))
    {
        types.push("denied");
    }
    let mut categories = vec!["api"];
    match verdict.category {
        Some(Category::FinancialSettings | Category::Renewal | Category::AuditTrail) => {
            categories.push("configuration")
        }
        Some(Category::Account) => categories.push("iam"),
        _ => {}
    }
    let outcome = match status_id(verdict) {
        1 => "success",
        2 => "failure",
        _ => "unknown",
    };
    let mut event = Map::new();
    put(&mut event, "kind", if flagged { "alert" } else { "event" });
    put(&mut event, "category", categories);
    put(&mut event, "type", types);
    put(&mut event, "action", verdict.trace_name.as_deref());
    put(&mut event, "outcome", outcome);
    put(&mut event, "severity", ecs_severity(verdict.severity));
    if flagged {
        put(&mut event, "risk_score", ecs_severity(verdict.severity));
        put(&mut event, "reason", verdict.reasons.join("; "));
    }
    put(&mut event, "id", verdict.trace_id.as_deref());
    put(&mut event, "provider", verdict.service_type.as_deref());
    put(&mut event, "module", PROVIDER);
    put(&mut event, "dataset", "huaweicloud.cts");
    put(&mut event, "original", original);

    let mut doc = Map::new();
    put(
        &mut doc,
        "@timestamp",
        verdict
            .time
            .as_deref()
            .unwrap_or("1970-01-01T00:00:00.000Z"),
    );
    put(&mut doc, "ecs", json!({"version": ECS_VERSION}));
    put(&mut doc, "event", event);
    if !verdict.rules.is_empty() {
        // A rule's title, built-in or from a rules file; its id if unknown.
        let names: Vec<&str> = verdict
            .rules
            .iter()
            .map(|id| rules.title(id).unwrap_or(id))
            .collect();
        put(
            &mut doc,
            "rule",
            json!({"id": verdict.rules, "name": names}),
        );
    }
    let mut user = Map::new();
    put(&mut user, "name", verdict.user.as_deref());
    put(&mut user, "id", verdict.user_id.as_deref());
    put(&mut user, "domain", verdict.domain.as_deref());
    if !user.is_empty() {
        put(&mut doc, "user", user);
    }
    if let Some(ip) = verdict.source_ip.as_deref() {
        put(&mut doc, "source", json!({"ip": ip}));
    }
    let mut cloud = Map::new();
    put(&mut cloud, "provider", PROVIDER);
    if let Some(service) = verdict.service_type.as_deref() {
        put(&mut cloud, "service", json!({"name": service}));
    }
    if let Some(domain) = verdict.domain.as_deref() {
        put(&mut cloud, "account", json!({"name": domain}));
    }
    put(&mut doc, "cloud", cloud);
    let mut related = Map::new();
    if let Some(ip) = verdict.source_ip.as_deref() {
        put(&mut related, "ip", json!([ip]));
    }
    if let Some(user) = verdict.user.as_deref() {
        put(&mut related, "user", json!([user]));
    }
    if !related.is_empty() {
        put(&mut doc, "related", related);
    }
    if let Some(code) = verdict.code {
        put(&mut doc, "http", json!({"response": {"status_code": code}}));
    }
    if let Some(code) = &verdict.error_code {
        let mut error = Map::new();
        put(&mut error, "code", &**code);
        put(
            &mut error,
            "message",
            catalog::error_code(code).map(|c| c.meaning),
        );
        put(&mut doc, "error", error);
    }
    let mut resource = Map::new();
    put(&mut resource, "type", verdict.resource_type.as_deref());
    put(&mut resource, "id", verdict.resource_id.as_deref());
    put(&mut resource, "name", verdict.resource_name.as_deref());
    put(
        &mut doc,
        "huaweicloud",
        json!({"cts": {
            "trace_type": verdict.trace_type,
            "rating": verdict.rating,
            "resource": resource,
            "audit": extension(verdict),
        }}),
    );
    Value::Object(doc)
}
