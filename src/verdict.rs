//! The flat, stable output record ([`Verdict`]), its fields listed once.
//!
//! Every list of the verdict's fields comes from the one `verdict!`
//! invocation below: the struct, the CSV columns ([`CSV_HEADER`]), the
//! fields rules and filters test ([`Verdict::field`],
//! [`condition_fields`]), [`Verdict::into_owned`], and the text fields a
//! held rules candidate packs ([`Verdict::take_texts`]). A new field is
//! added in one place, with a `Field` impl for its type if it is new.
//! Field meanings are documented in `docs/OUTPUT.md`.

use crate::bills::join::Cost;
use crate::catalog::{Category, Entry, Severity};
use crate::classify::{Classification, Kind};
use crate::integrity::Integrity;
use crate::trace::{Trace, User};
use serde::Serialize;
use std::borrow::Cow;
use std::sync::Arc;

/// What every field type of a [`Verdict`] can do: read as text (rule
/// conditions, filters, CSV cells), detach from the input it borrows, and,
/// for text fields, be packed apart.
pub(crate) trait Field<'a> {
    /// The type once detached from the input.
    type Owned;
    /// A text field: packed apart when a candidate is held.
    const IS_TEXT: bool = false;
    /// Detaches it from the input.
    fn detach(self) -> Self::Owned;
    /// As text; `None` when absent.
    fn text(&self) -> Option<Cow<'_, str>>;
    /// A text field's value, taken out (`None` for other fields).
    fn take_text(&mut self) -> Option<Option<Cow<'a, str>>> {
        None
    }
    /// Puts back what [`Field::take_text`] took.
    fn put_text(&mut self, _text: Option<Cow<'a, str>>) {}
}

impl<'a> Field<'a> for Option<Cow<'a, str>> {
    type Owned = Option<Cow<'static, str>>;
    const IS_TEXT: bool = true;
    fn detach(self) -> Self::Owned {
        self.map(|t| Cow::Owned(t.into_owned()))
    }
    fn text(&self) -> Option<Cow<'_, str>> {
        self.as_deref().map(Cow::Borrowed)
    }
    fn take_text(&mut self) -> Option<Option<Cow<'a, str>>> {
        Some(self.take())
    }
    fn put_text(&mut self, text: Option<Cow<'a, str>>) {
        *self = text;
    }
}

/// `true` or `false`.
fn flag(value: bool) -> Cow<'static, str> {
    Cow::Borrowed(if value { "true" } else { "false" })
}

/// Fields that own their value: detached as they are.
macro_rules! owned_field {
    ($type:ty, |$value:ident| $text:expr) => {
        impl<'a> Field<'a> for $type {
            type Owned = $type;
            fn detach(self) -> Self::Owned {
                self
            }
            fn text(&self) -> Option<Cow<'_, str>> {
                let $value = self;
                $text
            }
        }
    };
}
owned_field!(bool, |v| Some(flag(*v)));
owned_field!(Option<bool>, |v| v.map(flag));
owned_field!(Option<u16>, |v| v.map(|c| Cow::Owned(c.to_string())));
owned_field!(Option<i64>, |v| v.map(|n| Cow::Owned(n.to_string())));
owned_field!(Option<&'static str>, |v| v.map(Cow::Borrowed));
owned_field!(Option<Category>, |v| v.map(|c| Cow::Borrowed(c.as_str())));
owned_field!(Severity, |v| Some(Cow::Borrowed(v.as_str())));
owned_field!(Vec<Cow<'static, str>>, |v| Some(Cow::Owned(v.join("; "))));
owned_field!(Vec<String>, |v| Some(Cow::Owned(v.join("; "))));
owned_field!(String, |v| Some(Cow::Borrowed(v.as_str())));
owned_field!(Option<String>, |v| v.as_deref().map(Cow::Borrowed));
owned_field!(Option<Integrity>, |v| v.map(|i| Cow::Borrowed(i.name())));
owned_field!(Option<Arc<str>>, |v| v.as_deref().map(Cow::Borrowed));
owned_field!(Option<Box<Cost>>, |v| v
    .as_ref()
    .map(|c| Cow::Owned(c.display())));
owned_field!(Option<&'static Entry>, |v| v
    .map(|e| Cow::Borrowed(e.operation)));

/// Declares [`Verdict`] and every list of its fields. `output` fields are
/// written, in this order; `internal` ones are for rules and filters only.
macro_rules! verdict {
    (
        $(#[$meta:meta])*
        struct Verdict<$lt:lifetime>;
        output { $( $(#[$out_meta:meta])* $out:ident: $out_type:ty, )* }
        internal { $( $(#[$in_meta:meta])* $int:ident: $in_type:ty, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, Serialize)]
        pub struct Verdict<$lt> {
            $( $(#[$out_meta])* pub $out: $out_type, )*
            $( $(#[$in_meta])* #[serde(skip)] pub $int: $in_type, )*
        }

        /// The CSV columns, in order: the output fields.
        ///
        /// ```
        /// use cts_audit::verdict::CSV_HEADER;
        /// assert_eq!((CSV_HEADER[0], CSV_HEADER[CSV_HEADER.len() - 1]), ("trace_id", "integrity"));
        /// ```
        pub const CSV_HEADER: &[&str] = &[$(stringify!($out)),*];

        /// How many text fields a verdict has ([`Verdict::take_texts`]).
        pub const TEXT_FIELDS: usize = count_texts();

        /// Counts the text fields; a function, so that the field types'
        /// lifetime is declared.
        #[allow(clippy::extra_unused_lifetimes)]
        const fn count_texts<$lt>() -> usize {
            0 $(+ <$out_type as Field<$lt>>::IS_TEXT as usize)* $(+ <$in_type as Field<$lt>>::IS_TEXT as usize)*
        }

        impl<$lt> Verdict<$lt> {
            /// Detaches the verdict from the input it borrows.
            ///
            /// ```
            /// use cts_audit::analyze::Analyzer;
            /// let owned = {
            ///     let text = String::from(r#"{"trace_name":"payOrder","service_type":"CBC"}"#);
            ///     Analyzer::default().analyze_str(&text).unwrap().into_owned()
            /// }; // outlives the text it was read from
            /// assert_eq!(owned.trace_name.as_deref(), Some("payOrder"));
            /// ```
            pub fn into_owned(self) -> Verdict<'static> {
                Verdict {
                    $( $out: Field::detach(self.$out), )*
                    $( $int: Field::detach(self.$int), )*
                }
            }

            /// An output field (a [`CSV_HEADER`] column) by name, as text.
            ///
            /// ```
            /// use cts_audit::analyze::Analyzer;
            /// let verdict = Analyzer::default().analyze_str(r#"{"trace_name":"payOrder"}"#).unwrap();
            /// assert_eq!(verdict.output_field("trace_name").as_deref(), Some("payOrder"));
            /// assert_eq!(verdict.output_field("user_id"), None); // not written
            /// ```
            pub fn output_field(&self, name: &str) -> Option<Cow<'_, str>> {
                match name {
                    $( stringify!($out) => Field::text(&self.$out), )*
                    _ => None,
                }
            }

            /// Takes out the text fields, in declaration order, leaving
            /// `None`: a held candidate packs them into one allocation.
            ///
            /// ```
            /// use cts_audit::analyze::Analyzer;
            /// let mut verdict = Analyzer::default()
            ///     .analyze_str(r#"{"trace_id":"t1","trace_name":"payOrder","service_type":"CBC"}"#)
            ///     .unwrap();
            /// let texts = verdict.take_texts();
            /// assert_eq!(texts[0].as_deref(), Some("t1"));
            /// assert!(verdict.trace_id.is_none());
            /// verdict.put_texts(texts);
            /// assert_eq!(verdict.trace_name.as_deref(), Some("payOrder"));
            /// ```
            pub fn take_texts(&mut self) -> [Option<Cow<$lt, str>>; TEXT_FIELDS] {
                let mut texts: [Option<Cow<$lt, str>>; TEXT_FIELDS] = Default::default();
                let mut slots = texts.iter_mut();
                $( if let Some(text) = Field::take_text(&mut self.$out) {
                    if let Some(slot) = slots.next() { *slot = text; }
                } )*
                $( if let Some(text) = Field::take_text(&mut self.$int) {
                    if let Some(slot) = slots.next() { *slot = text; }
                } )*
                texts
            }

            /// Puts back what [`Verdict::take_texts`] took.
            /// Takes them in that order from any iterator (an array, or
            /// texts read from a packed form one at a time).
            pub fn put_texts(&mut self, texts: impl IntoIterator<Item = Option<Cow<$lt, str>>>) {
                let mut texts = texts.into_iter();
                $( if <$out_type as Field<$lt>>::IS_TEXT { Field::put_text(&mut self.$out, texts.next().flatten()); } )*
                $( if <$in_type as Field<$lt>>::IS_TEXT { Field::put_text(&mut self.$int, texts.next().flatten()); } )*
            }
        }
    };
}

verdict! {
/// One classified trace, flat and ready to serialise. Borrows from the
/// input where it can; [`Verdict::into_owned`] detaches it.
///
/// ```
/// use cts_audit::analyze::Analyzer;
/// let verdict = Analyzer::default()
///     .analyze_str(r#"{"trace_id":"t1","trace_name":"payOrder","service_type":"CBC","resource_type":"cloudresouce",
///       "time":1718777931170,"user":{"name":"alice","domain":{"name":"acme"}},"source_ip":"203.0.113.7"}"#)
///     .unwrap();
/// assert_eq!(verdict.time.as_deref(), Some("2024-06-19T06:18:51.170Z"));
/// assert_eq!((verdict.user.as_deref(), verdict.domain.as_deref()), (Some("alice"), Some("acme")));
/// assert_eq!(verdict.category.map(|c| c.as_str()), Some("payment"));
/// ```
struct Verdict<'a>;
    output {
        /// CTS trace id.
        trace_id: Option<Cow<'a, str>>,
        /// When the operation happened, RFC 3339 UTC with milliseconds.
        time: Option<Cow<'a, str>>,
        /// Operation name.
        trace_name: Option<Cow<'a, str>>,
        /// Service abbreviation.
        service_type: Option<Cow<'a, str>>,
        /// Resource type.
        resource_type: Option<Cow<'a, str>>,
        /// Resource id.
        resource_id: Option<Cow<'a, str>>,
        /// Resource name.
        resource_name: Option<Cow<'a, str>>,
        /// Who acted: the user name.
        user: Option<Cow<'a, str>>,
        /// `User`, `AssumedAgency`, `ExternalUser`.
        user_type: Option<Cow<'a, str>>,
        /// The account (domain) name.
        domain: Option<Cow<'a, str>>,
        /// The root (domain) account itself acted (`principal_is_root_user`).
        root_user: Option<bool>,
        /// Caller IP.
        source_ip: Option<Cow<'a, str>>,
        /// `ConsoleAction`, `ApiCall`, `SystemAction`, ...
        trace_type: Option<Cow<'a, str>>,
        /// `normal`, `warning` or `incident`.
        rating: Option<Cow<'a, str>>,
        /// HTTP status.
        code: Option<u16>,
        /// Service error code of a failed attempt, e.g. `CBC.0151`.
        error_code: Option<Cow<'a, str>>,
        /// The attempt failed.
        failed: bool,
        /// In scope for a billing audit (catalogued, or a billing service).
        billing: bool,
        /// Named by the catalog.
        catalogued: bool,
        /// The catalog's operation text.
        operation: Option<&'static str>,
        /// The catalog category.
        category: Option<Category>,
        /// The severity: the highest of the rules that fired.
        severity: Severity,
        /// Ids of the rules that fired.
        rules: Vec<Cow<'static, str>>,
        /// Why each rule fired, naming its evidence.
        reasons: Vec<String>,
        /// Where the record was read: `FILE:LINE` for JSON lines, `FILE#N` for
        /// the N-th record of an array or document (`FILE#N.M` for the M-th trace
        /// of an API page).
        source: String,
        /// `scan --bills` only, on billing actions: what the bills show the
        /// action cost or refunded.
        #[serde(skip_serializing_if = "Option::is_none")]
        cost: Option<Box<Cost>>,
        /// `scan --verify` only: `verified`, `modified`, `unlisted` or
        /// `unverified`, from the integrity check of the record's file.
        #[serde(skip_serializing_if = "Option::is_none")]
        integrity: Option<Integrity>,
    }
    internal {
        /// `time` as epoch milliseconds, for rules and filters.
        time_ms: Option<i64>,
        /// The catalog entry, when there is one.
        entry: Option<&'static Entry>,
        /// The user id, for filters.
        user_id: Option<Cow<'a, str>>,
        /// Key fields the record gave more than once (it was read salvaged,
        /// the last value of each): `audit.malformed` fires on it.
        malformed: Option<String>,
        /// Set when another record came first under this record's `trace_id`
        /// (a different operation, resource type, rating or time): it is kept,
        /// and `audit.conflict` fires on it.
        conflict: bool,
        /// `scan --verify`: the check its file failed, naming the file, when
        /// it was modified or unlisted; `audit.integrity` gives it as reason.
        integrity_note: Option<Arc<str>>,
        /// `scan --bills`: the billing action it is and the ids it carries
        /// ([`crate::bills::join::BillAction`]), for the join.
        bill_action: Option<String>,
    }
}

/// A verdict's text fields ([`Verdict::take_texts`]) end to end in one
/// allocation: a held rules candidate keeps its texts so, and so does an
/// emitted verdict on its way to the sink, rather than one allocation a
/// field.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct PackedTexts {
    /// The texts end to end.
    text: Box<str>,
    /// Where each text ends in `text`; [`PackedTexts::ABSENT`] for none.
    ends: [u32; TEXT_FIELDS],
}

impl PackedTexts {
    const ABSENT: u32 = u32::MAX;

    /// Packs the texts [`Verdict::take_texts`] took.
    pub(crate) fn pack(texts: &[Option<Cow<'_, str>>; TEXT_FIELDS]) -> PackedTexts {
        let total = texts.iter().flatten().map(|t| t.len()).sum();
        let mut text = String::with_capacity(total);
        let mut ends = [Self::ABSENT; TEXT_FIELDS];
        for (end, value) in ends.iter_mut().zip(texts) {
            if let Some(value) = value {
                text.push_str(value);
                // Records are cut from blocks far under 4 GiB.
                *end = u32::try_from(text.len()).unwrap_or(Self::ABSENT);
            }
        }
        PackedTexts {
            text: text.into_boxed_str(),
            ends,
        }
    }

    /// The texts again, borrowed, in order, for [`Verdict::put_texts`].
    pub(crate) fn unpack(&self) -> impl Iterator<Item = Option<Cow<'_, str>>> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            (end != Self::ABSENT).then(|| {
                let value = self.text.get(start..end as usize).unwrap_or_default();
                start = end as usize;
                Cow::Borrowed(value)
            })
        })
    }

    /// Bytes of text held.
    pub(crate) fn len(&self) -> usize {
        self.text.len()
    }
}

fn text<'a>(value: &Option<Cow<'a, str>>) -> Option<Cow<'a, str>> {
    value.as_ref().filter(|t| !t.is_empty()).cloned()
}

impl<'a> Verdict<'a> {
    /// Builds the verdict of a trace from its classification, before any
    /// rule has fired (severity `none`).
    ///
    /// ```
    /// use cts_audit::{catalog::Severity, classify::classify, verdict::Verdict, trace::Trace};
    /// let trace = Trace::from_str(r#"{"trace_name":"payOrder","service_type":"CBC","resource_type":"cloudresouce"}"#).unwrap();
    /// let verdict = Verdict::new(&trace, trace.user(), &classify(&trace), "exports/a.json#1".into());
    /// assert_eq!(verdict.severity, Severity::None); // no rule has judged it yet
    /// assert!(verdict.catalogued && verdict.billing);
    /// ```
    pub fn new(
        trace: &Trace<'a>,
        user: Option<User<'a>>,
        class: &Classification,
        source: String,
    ) -> Verdict<'a> {
        let entry = class.entry();
        let (user_name, user_type, domain, root_user, user_id) = match user {
            Some(user) => {
                let name = user
                    .name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .or(user.user_name.clone());
                (
                    text(&name),
                    text(&user.user_type),
                    user.domain.as_ref().and_then(|d| text(&d.name)),
                    user.principal_is_root_user.map(|f| f.0),
                    text(&user.id),
                )
            }
            None => (None, None, None, None, None),
        };
        let time_ms = trace.time_ms();
        Verdict {
            trace_id: text(&trace.trace_id),
            time: time_ms.and_then(rfc3339).map(Cow::Owned),
            trace_name: text(&trace.trace_name),
            service_type: text(&trace.service_type),
            resource_type: text(&trace.resource_type),
            resource_id: text(&trace.resource_id),
            resource_name: text(&trace.resource_name),
            user: user_name,
            user_type,
            domain,
            root_user,
            source_ip: text(&trace.source_ip),
            trace_type: text(&trace.trace_type),
            rating: trace.rating().map(|r| Cow::Owned(r.to_owned())),
            code: trace.code.and_then(|c| c.0),
            error_code: class.error_code.clone().map(Cow::Owned),
            failed: class.failed,
            billing: class.is_billing(),
            catalogued: matches!(class.kind, Kind::Catalogued(_)),
            operation: entry.map(|e| e.operation),
            category: entry.map(|e| e.category),
            source,
            time_ms,
            entry,
            user_id,
            // Not judged yet: severity `none`, no rules.
            ..Verdict::default()
        }
    }

    /// Records that a rule fired: raises the severity to the rule's and
    /// keeps its id and reason.
    ///
    /// ```
    /// use cts_audit::{catalog::Severity, classify::classify, verdict::Verdict, trace::Trace};
    /// let trace = Trace::from_str(r#"{"trace_name":"payOrder","service_type":"CBC"}"#).unwrap();
    /// let mut verdict = Verdict::new(&trace, None, &classify(&trace), String::new());
    /// verdict.fire("acme.watch", Severity::High, "paid from the watch list".into());
    /// verdict.fire("acme.watch", Severity::High, "again".into()); // once per rule
    /// assert_eq!((verdict.severity, verdict.rules.len()), (Severity::High, 1));
    /// ```
    pub fn fire(
        &mut self,
        rule_id: impl Into<Cow<'static, str>>,
        severity: Severity,
        reason: String,
    ) {
        let rule_id = rule_id.into();
        if self.rules.contains(&rule_id) {
            return;
        }
        self.severity = self.severity.max(severity);
        self.rules.push(rule_id);
        self.reasons.push(reason);
    }

    /// A field by its name, as text, for rule conditions and filters: the
    /// output fields, `user_id`, and the catalog entry's `catalog_severity`.
    ///
    /// ```
    /// use cts_audit::analyze::Analyzer;
    /// let verdict = Analyzer::default()
    ///     .analyze_str(r#"{"trace_name":"payOrder","service_type":"CBC","code":"403"}"#)
    ///     .unwrap();
    /// assert_eq!(verdict.field("code").as_deref(), Some("403"));
    /// assert_eq!(verdict.field("failed").as_deref(), Some("true"));
    /// assert_eq!(verdict.field("colour"), None);
    /// ```
    pub fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        match name {
            "user_id" => self.user_id.text(),
            "catalog_severity" => self.entry.map(|e| Cow::Borrowed(e.severity.as_str())),
            _ => self.output_field(name),
        }
    }
}

/// Formats epoch milliseconds as RFC 3339 UTC, e.g. `2024-06-19T06:18:51.170Z`.
///
/// ```
/// assert_eq!(cts_audit::verdict::rfc3339(1718777931170).unwrap(), "2024-06-19T06:18:51.170Z");
/// ```
pub fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Output columns that are the verdict's own judgment, not facts of the
/// record: rule conditions cannot test them.
const JUDGMENT: &[&str] = &["severity", "rules", "reasons", "source"];

/// Fields rule conditions can test: the record's columns of [`CSV_HEADER`],
/// plus `user_id` and the entry's `catalog_severity`.
///
/// ```
/// assert!(cts_audit::verdict::is_condition_field("trace_name"));
/// assert!(!cts_audit::verdict::is_condition_field("severity"));
/// ```
pub fn is_condition_field(name: &str) -> bool {
    condition_fields().any(|f| f == name)
}

/// Every field [`is_condition_field`] accepts, in output order.
///
/// ```
/// let fields: Vec<&str> = cts_audit::verdict::condition_fields().collect();
/// assert!(fields.contains(&"user_id") && !fields.contains(&"rules"));
/// ```
pub fn condition_fields() -> impl Iterator<Item = &'static str> {
    CSV_HEADER
        .iter()
        .copied()
        .filter(|f| !JUDGMENT.contains(f))
        .chain(["user_id", "catalog_severity"])
}
