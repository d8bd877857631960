//! Classifying one trace against the catalog.
//!
//! ```
//! use cts_audit::{classify::{classify, Kind}, trace::Trace};
//! let t = Trace::from_slice(br#"{"trace_name":"bindCard","service_type":"CBC","resource_type":"order",
//!     "trace_rating":"warning","code":403,"response":"{\"error_code\":\"CBC.0151\",\"error_msg\":\"denied\"}"}"#).unwrap();
//! let c = classify(&t);
//! assert!(matches!(c.kind, Kind::Catalogued(e) if e.trace_name == "bindCard"));
//! assert!(c.failed);
//! assert_eq!(c.error_code.as_deref(), Some("CBC.0151"));
//! ```

use crate::catalog::{self, Entry, Scope, Severity};
use crate::trace::TraceFields;
use regex::Regex;
use std::sync::LazyLock;

/// CTS `service_type` values that mean Billing Center. The documentation
/// does not name one for certain, so both seen spellings are accepted.
///
/// ```
/// assert!(cts_audit::classify::BILLING_SERVICES.contains(&"CBC"));
/// ```
pub const BILLING_SERVICES: &[&str] = &["CBC", "BSS"];

/// What a trace is, as far as a billing audit is concerned.
///
/// ```
/// use cts_audit::{classify::{classify, Kind}, trace::TraceHead};
/// let kind = |json| classify(&TraceHead::from_str(json).unwrap()).kind;
/// assert!(matches!(kind(r#"{"trace_name":"payOrder","service_type":"CBC","resource_type":"cloudresouce"}"#), Kind::Catalogued(_)));
/// assert_eq!(kind(r#"{"trace_name":"someNewCall","service_type":"BSS"}"#), Kind::UncataloguedBilling);
/// assert_eq!(kind(r#"{"trace_name":"createServer","service_type":"ECS","resource_type":"ecs"}"#), Kind::OtherService);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A catalogued operation.
    Catalogued(&'static Entry),
    /// A billing service's operation that the catalog does not name.
    UncataloguedBilling,
    /// Any other service's operation.
    OtherService,
}

/// The classification of one trace.
///
/// ```
/// use cts_audit::{catalog::Severity, classify::classify, trace::Trace};
/// let trace = Trace::from_str(r#"{"trace_name":"someNewCall","service_type":"CBC","code":500}"#).unwrap();
/// let class = classify(&trace);
/// assert_eq!(class.severity, Severity::Info); // billing, but not in the catalog
/// assert!(class.failed && class.error_code.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// Catalogued, uncatalogued billing, or another service.
    pub kind: Kind,
    /// The catalog's default severity (`info` for uncatalogued billing,
    /// `none` for other services).
    pub severity: Severity,
    /// The attempt failed: rated `warning` or `incident`, an HTTP status of
    /// 400 or more, or an error code in the response.
    pub failed: bool,
    /// The service error code found in the response of a failed attempt.
    pub error_code: Option<String>,
}

impl Classification {
    /// A Billing Center action: a billing-scope catalog entry, or an
    /// uncatalogued call of a billing service. CTS's own tracker operations
    /// (scope `audit`) are catalogued and judged, but are not billing.
    ///
    /// ```
    /// use cts_audit::{classify::classify, trace::TraceHead};
    /// let bill = TraceHead::from_str(r#"{"trace_name":"x","resource_type":"bill"}"#).unwrap();
    /// assert!(classify(&bill).is_billing()); // a billing resource type, any service
    /// let port = TraceHead::from_str(r#"{"trace_name":"updatePort","service_type":"VPC"}"#).unwrap();
    /// assert!(!classify(&port).is_billing());
    /// ```
    pub fn is_billing(&self) -> bool {
        match self.kind {
            Kind::Catalogued(entry) => entry.scope == Scope::Billing,
            Kind::UncataloguedBilling => true,
            Kind::OtherService => false,
        }
    }

    /// The catalog entry, when there is one.
    ///
    /// ```
    /// use cts_audit::{classify::classify, trace::TraceHead};
    /// let head = TraceHead::from_str(r#"{"trace_name":"payOrder","service_type":"CBC","resource_type":"cloudresouce"}"#).unwrap();
    /// assert_eq!(classify(&head).entry().unwrap().operation, "Payment");
    /// ```
    pub fn entry(&self) -> Option<&'static Entry> {
        match self.kind {
            Kind::Catalogued(entry) => Some(entry),
            _ => None,
        }
    }
}

fn is_billing_service(service: &str) -> bool {
    BILLING_SERVICES
        .iter()
        .any(|s| s.eq_ignore_ascii_case(service))
}

fn scope_matches(scope: Scope, service: &str) -> bool {
    match scope {
        Scope::Billing => is_billing_service(service),
        Scope::Audit => service.eq_ignore_ascii_case("CTS"),
    }
}

/// Picks the catalog entry for a trace: the one documented under its
/// resource type, else the first of its name when the service belongs to the
/// entry's family. A name that another service happens to share (`payment`,
/// `sendMessage`) does not match.
///
/// ```
/// use cts_audit::classify::catalog_entry;
/// assert_eq!(catalog_entry("payment", "order", "CBC").unwrap().operation, "Making a payment");
/// // Under another resource type, the name still counts for a billing service…
/// assert!(catalog_entry("payment", "", "CBC").is_some());
/// // …but not for a service that happens to use the same name.
/// assert!(catalog_entry("payment", "", "DCS").is_none());
/// ```
pub fn catalog_entry(
    trace_name: &str,
    resource_type: &str,
    service: &str,
) -> Option<&'static Entry> {
    let entries = catalog::lookup(trace_name);
    entries
        .iter()
        .find(|e| e.resource_type == resource_type)
        .or_else(|| entries.first().filter(|e| scope_matches(e.scope, service)))
}

/// Classifies one trace, from a full [`crate::trace::Trace`] or just its [`crate::trace::TraceHead`]
/// (which has no response, so no error code).
///
/// ```
/// use cts_audit::{classify::classify, trace::{Trace, TraceHead}};
/// let text = r#"{"trace_name":"bindCard","service_type":"CBC","resource_type":"order","code":403,
///   "response":"{\"error_code\":\"CBC.0151\"}"}"#;
/// // The head is enough to count and classify; the error code needs the response.
/// let (head, whole) = (classify(&TraceHead::from_str(text).unwrap()), classify(&Trace::from_str(text).unwrap()));
/// assert_eq!((head.kind, head.failed), (whole.kind, whole.failed));
/// assert_eq!((head.error_code, whole.error_code.as_deref()), (None, Some("CBC.0151")));
/// ```
pub fn classify<'a>(trace: &impl TraceFields<'a>) -> Classification {
    let (name, resource_type, service) = (trace.name(), trace.resource_type(), trace.service());
    let (kind, severity) = match catalog_entry(name, resource_type, service) {
        Some(entry) => (Kind::Catalogued(entry), entry.severity),
        None if is_billing_service(service) || catalog::is_billing_resource_type(resource_type) => {
            (Kind::UncataloguedBilling, Severity::Info)
        }
        None => (Kind::OtherService, Severity::None),
    };
    let rated_failure = matches!(trace.rating(), Some(r) if r.eq_ignore_ascii_case("warning") || r.eq_ignore_ascii_case("incident"));
    let http_failure = trace.http_code().is_some_and(|c| c >= 400);
    // Read the response only for failures: it is the largest field.
    let error_code = if rated_failure || http_failure {
        trace.response_text().as_deref().and_then(find_error_code)
    } else {
        None
    };
    Classification {
        kind,
        severity,
        failed: rated_failure || http_failure,
        error_code,
    }
}

/// Finds the service error code in a response body: a `CBC.*` code first,
/// else the first `SERVICE.digits` code (`VPC.0514`, `CTS.0001`).
///
/// ```
/// use cts_audit::classify::find_error_code;
/// assert_eq!(find_error_code(r#"{"error_code":"CBC.99005003","error_msg":"x"}"#).as_deref(), Some("CBC.99005003"));
/// assert_eq!(find_error_code(r#"{"code":"VPC.0514","message":"Update port fail."}"#).as_deref(), Some("VPC.0514"));
/// assert_eq!(find_error_code(r#"{"status":"SUCCESS"}"#), None);
/// ```
pub fn find_error_code(response: &str) -> Option<String> {
    static CODE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b[A-Z][A-Za-z0-9]{1,15}\.[0-9]{3,10}\b").expect("a valid constant pattern")
    });
    let mut first = None;
    for found in CODE.find_iter(response) {
        let code = found.as_str();
        if code == "CBC.0000" {
            continue; // documented as success
        }
        if code.starts_with("CBC.") {
            return Some(code.to_owned());
        }
        first.get_or_insert(code);
    }
    first.map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Trace;

    fn classify_json(json: &str) -> Classification {
        classify(&Trace::from_slice(json.as_bytes()).unwrap())
    }

    #[test]
    fn resource_type_picks_the_entry() {
        let c = classify_json(
            r#"{"trace_name":"unsubscribeResource","resource_type":"subscription","service_type":"CBC"}"#,
        );
        assert_eq!(c.entry().unwrap().operation, "Unsubscribing from resources");
    }

    #[test]
    fn a_shared_name_in_another_service_is_not_billing() {
        let c = classify_json(
            r#"{"trace_name":"sendMessage","resource_type":"topic","service_type":"SMN"}"#,
        );
        assert_eq!(c.kind, Kind::OtherService);
        let c = classify_json(
            r#"{"trace_name":"deleteTracker","resource_type":"tracker","service_type":"CTS"}"#,
        );
        assert_eq!(c.severity, Severity::Critical);
    }

    #[test]
    fn unknown_billing_operations_are_kept() {
        let c = classify_json(
            r#"{"trace_name":"frobnicateBill","resource_type":"x","service_type":"BSS"}"#,
        );
        assert_eq!(c.kind, Kind::UncataloguedBilling);
        let c = classify_json(
            r#"{"trace_name":"frobnicateBill","resource_type":"balance","service_type":"XYZ"}"#,
        );
        assert_eq!(c.kind, Kind::UncataloguedBilling);
        assert!(
            classify_json(
                r#"{"trace_name":"createServer","resource_type":"ecs","service_type":"ECS"}"#
            )
            .kind
                == Kind::OtherService
        );
    }

    #[test]
    fn failures_are_read_from_rating_code_and_response() {
        let c = classify_json(
            r#"{"trace_name":"deleteEip","trace_rating":"warning","code":200,"response":{"code":"VPC.0514","message":"Update port fail."}}"#,
        );
        assert!(c.failed);
        assert_eq!(c.error_code.as_deref(), Some("VPC.0514"));
        let c = classify_json(
            r#"{"trace_name":"payOrder","trace_rating":"normal","code":"200","response":"{\"error_code\":\"CBC.0151\"}"}"#,
        );
        assert!(!c.failed, "a normal 200 is not read for codes");
        let c = classify_json(r#"{"trace_name":"payOrder","code":"400"}"#);
        assert!(c.failed && c.error_code.is_none());
    }
}
