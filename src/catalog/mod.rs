//! The catalog: what each documented CTS trace name means to a billing auditor.
//!
//! The data lives in `catalog/*.csv`; `build.rs` compiles it into a perfect
//! hash map, so every lookup here is O(1) and allocates nothing.
//!
//! ```
//! use cts_audit::catalog::{self, Category, Severity};
//!
//! let entry = catalog::lookup_for("payOrder", "cloudresouce").unwrap();
//! assert_eq!(entry.category, Category::Payment);
//! assert!(entry.severity >= Severity::Medium);
//!
//! // One name, two documented resource types: both entries are kept.
//! assert_eq!(catalog::lookup("unsubscribeResource").len(), 2);
//! assert!(catalog::lookup("noSuchTrace").is_empty());
//! ```

// Row validation shared with build.rs; compiled here only for its tests.
#[cfg(test)]
#[allow(dead_code)]
mod source;
mod vocab;

pub use vocab::{Activity, Category, Scope, Severity};

/// One documented operation: a row of `catalog/*.csv`.
///
/// ```
/// use cts_audit::catalog::{lookup_for, Activity, Scope};
/// let entry = lookup_for("deleteResource", "cloudresouce").unwrap();
/// assert_eq!((entry.scope, entry.activity), (Scope::Billing, Activity::Delete));
/// assert!(entry.source.starts_with("000_")); // the seed document it comes from
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    /// Position in [`entries`]; stable for one build of the crate.
    pub id: u16,
    /// The CTS `trace_name`, exactly as documented (typos included).
    pub trace_name: &'static str,
    /// The CTS `resource_type` the documentation gives for it.
    pub resource_type: &'static str,
    /// The documented operation text.
    pub operation: &'static str,
    /// What kind of action it is.
    pub category: Category,
    /// The default severity, before any rule weighs the context.
    pub severity: Severity,
    /// Billing services, or CTS's own audit-trail operations.
    pub scope: Scope,
    /// Create, read, update or delete (OCSF `activity_id`).
    pub activity: Activity,
    /// Where the row comes from: a seed document's file name or a public URL.
    pub source: &'static str,
}

/// A documented service error code, e.g. `CBC.0151`.
///
/// ```
/// let code = cts_audit::catalog::error_code("CBC.0151").unwrap();
/// assert_eq!(code.code, "CBC.0151");
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct ErrorCode {
    /// The code as it appears in a response, e.g. `CBC.99005003`.
    pub code: &'static str,
    /// The HTTP status documented with it.
    pub http: u16,
    /// What it means.
    pub meaning: &'static str,
}

/// The documented meaning of a service error code.
///
/// ```
/// let denied = cts_audit::catalog::error_code("CBC.0151").unwrap();
/// assert_eq!((denied.http, denied.meaning), (403, "access denied"));
/// assert!(cts_audit::catalog::error_code("CBC.1").is_none());
/// ```
pub fn error_code(code: &str) -> Option<&'static ErrorCode> {
    ERROR_CODES.get(code)
}

include!(concat!(env!("OUT_DIR"), "/catalog.rs"));

/// Every entry documented under `trace_name`, in catalog order; empty when
/// the name is unknown.
///
/// ```
/// let entries = cts_audit::catalog::lookup("queryCustomerBankSubAccount");
/// assert_eq!(entries.len(), 2); // one name, two documented operations
/// ```
pub fn lookup(trace_name: &str) -> &'static [Entry] {
    BY_NAME.get(trace_name).copied().unwrap_or(&[])
}

/// The entry for `trace_name` documented under `resource_type`, if any. When
/// one name has several operations under the same resource type, the first in
/// catalog order is returned.
///
/// ```
/// use cts_audit::catalog::lookup_for;
/// let entry = lookup_for("unsubscribeResource", "subscription").unwrap();
/// assert_eq!(entry.operation, "Unsubscribing from resources");
/// assert!(lookup_for("unsubscribeResource", "ecs").is_none());
/// ```
pub fn lookup_for(trace_name: &str, resource_type: &str) -> Option<&'static Entry> {
    lookup(trace_name)
        .iter()
        .find(|entry| entry.resource_type == resource_type)
}

/// True when some billing-scope entry is documented under `resource_type`
/// (`bill`, `balance`, `cloudresouce`, ...).
///
/// ```
/// assert!(cts_audit::catalog::is_billing_resource_type("cloudresouce"));
/// assert!(!cts_audit::catalog::is_billing_resource_type("ecs"));
/// ```
pub fn is_billing_resource_type(resource_type: &str) -> bool {
    BILLING_RESOURCE_TYPES.contains(resource_type)
}

/// Every entry, in catalog order (files sorted by name, rows in file order).
///
/// ```
/// assert!(cts_audit::catalog::entries().len() >= 186);
/// ```
pub fn entries() -> &'static [Entry] {
    &ENTRIES
}

/// The entry with the given [`Entry::id`].
///
/// ```
/// let first = &cts_audit::catalog::entries()[0];
/// assert_eq!(cts_audit::catalog::by_id(first.id), Some(first));
/// ```
pub fn by_id(id: u16) -> Option<&'static Entry> {
    ENTRIES.get(usize::from(id))
}

impl serde::Serialize for Entry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Entry", 8)?;
        s.serialize_field("trace_name", self.trace_name)?;
        s.serialize_field("operation", self.operation)?;
        s.serialize_field("resource_type", self.resource_type)?;
        s.serialize_field("category", self.category.as_str())?;
        s.serialize_field("severity", self.severity.as_str())?;
        s.serialize_field("scope", self.scope.as_str())?;
        s.serialize_field("activity", self.activity.as_str())?;
        s.serialize_field("source", self.source)?;
        s.end()
    }
}

macro_rules! serialize_as_str {
    ($($name:ty),+) => {$(
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}
serialize_as_str!(Activity, Category, Severity, Scope);
