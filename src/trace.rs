//! The borrowed record model: one CTS trace, parsed without copying its text.
//!
//! CTS exports disagree about types, so several fields accept more than one
//! shape (see `docs/FORMATS.md`): `user` is an object, a JSON-encoded string or
//! null; `code` a number, a string or null; `time` and `record_time` epoch
//! milliseconds as a number or a string, or the console's
//! `"Nov 16, 2023 10:54:04 GMT+08:00"`. Unknown fields are ignored.
//!
//! ```
//! use cts_audit::trace::Trace;
//! let line = br#"{"trace_id":"eb0472a4-5944-11ef-acce-294fee19871b","trace_name":"payOrder",
//!   "service_type":"CBC","resource_type":"cloudresouce","time":"1723533697290","code":"200",
//!   "user":"{\"name\":\"alice\",\"domain\":{\"name\":\"acme\"}}","trace_rating":"normal"}"#;
//! let trace = Trace::from_slice(line).unwrap();
//! assert_eq!(trace.trace_name.as_deref(), Some("payOrder"));
//! assert_eq!(trace.time_ms(), Some(1_723_533_697_290));
//! assert_eq!(trace.code.and_then(|c| c.0), Some(200));
//! assert_eq!(trace.user().unwrap().name.as_deref(), Some("alice"));
//! ```

mod members;
mod salvage;

pub use salvage::{salvage, Salvaged, KEY_FIELDS};

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// A string field that borrows from the input unless it had escapes.
///
/// ```
/// use std::borrow::Cow;
/// let t = cts_audit::trace::Trace::from_str(r#"{"trace_name":"payOrder","resource_name":"caf\u00e9"}"#).unwrap();
/// assert!(matches!(t.trace_name, Some(Cow::Borrowed("payOrder")))); // no escapes: borrowed
/// assert!(matches!(t.resource_name, Some(Cow::Owned(_)))); // decoded: owned
/// ```
pub type Text<'a> = Option<Cow<'a, str>>;

/// Deserialises a [`Text`] field, borrowing when the string has no escapes.
/// (serde borrows a bare `Cow<str>` field, but always copies one inside an
/// `Option`.) Non-string values (a number, say) become `None`.
fn borrowed_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Text<'de>, D::Error> {
    struct TextVisitor;
    impl<'de> Visitor<'de> for TextVisitor {
        type Value = Text<'de>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
            Ok(Some(Cow::Owned(v)))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Text<'de>, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Text<'de>, E> {
            Ok(None)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text<'de>, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text<'de>, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text<'de>, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text<'de>, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Text<'de>, A::Error> {
            while map
                .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                .is_some()
            {}
            Ok(None)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Text<'de>, A::Error> {
            while seq.next_element::<de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    deserializer.deserialize_any(TextVisitor)
}

/// Declares a record struct: first the fields every record needs to be
/// counted and classified, and the markers of the objects that wrap traces,
/// then the struct's own fields. One list serves [`Trace`] and
/// [`TraceHead`], so the two cannot drift apart. (`#[serde(flatten)]` would
/// share them too, but it buffers every record, which costs more than it
/// saves.)
macro_rules! record_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident<$lt:lifetime> {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident: $type:ty,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default, Deserialize)]
        pub struct $name<$lt> {
            /// System-generated id, usually a v1 UUID.
            #[serde(borrow, default, deserialize_with = "borrowed_text")]
            pub trace_id: Text<$lt>,
            /// Operation name, e.g. `payOrder`.
            #[serde(borrow, default, deserialize_with = "borrowed_text")]
            pub trace_name: Text<$lt>,
            /// `normal`, `warning` or `incident`.
            #[serde(borrow, default, deserialize_with = "borrowed_text")]
            pub trace_rating: Text<$lt>,
            /// The legacy name of `trace_rating`.
            #[serde(borrow, default, deserialize_with = "borrowed_text")]
            pub trace_status: Text<$lt>,
            /// Service abbreviation: `CBC`, `ECS`, `CTS`, ...
            #[serde(borrow, default, deserialize_with = "borrowed_text")]
            pub service_type: Text<$lt>,
            /// Resource type, e.g. `cloudresouce`.
            #[serde(borrow, default, deserialize_with = "borrowed_text")]
            pub resource_type: Text<$lt>,
            /// HTTP status of the recorded call.
            #[serde(default)]
            pub code: Option<HttpCode>,
            /// When the operation happened.
            #[serde(default)]
            pub time: Option<Timestamp>,
            /// When CTS recorded it.
            #[serde(default)]
            pub record_time: Option<Timestamp>,
            /// Set when the object is a ListTraces page, not a trace.
            #[serde(borrow, default)]
            pub(crate) traces: Option<Vec<&$lt RawValue>>,
            /// Set when the object is a FunctionGraph CTS event, not a trace.
            #[serde(borrow, default)]
            pub(crate) cts: Option<&$lt RawValue>,
            /// Set when the object is an integrity digest, not a trace.
            #[serde(default)]
            pub(crate) digest_object: Option<de::IgnoredAny>,
            /// Set when the object is a page of bill records (Huawei
            /// `fee_records`, `monthly_records` or account change `records`,
            /// UCloud `Items`), not a trace: `--bills` reads those.
            #[serde(default, rename = "fee_records", alias = "monthly_records", alias = "records", alias = "Items")]
            pub(crate) bill_page: Option<de::IgnoredAny>,
            $($(#[$field_meta])* $field_vis $field: $type,)*
        }
    };
}

record_struct! {
    /// One CTS trace. Only the fields an audit needs are read; `request` is
    /// skipped, and `user` and `response` are kept raw until asked for.
    ///
    /// ```
    /// use cts_audit::trace::Trace;
    /// let t = Trace::from_str(r#"{"trace_id":"t1","trace_type":"ConsoleAction","source_ip":"203.0.113.7",
    ///   "time":1718777931170,"request":{"ignored":true},"code":200}"#).unwrap();
    /// assert_eq!(t.trace_type.as_deref(), Some("ConsoleAction"));
    /// assert_eq!(t.code.and_then(|c| c.0), Some(200));
    /// ```
    pub struct Trace<'a> {
        /// `ConsoleAction`, `ApiCall`, `SystemAction`, `Others`, ...
        #[serde(borrow, default, deserialize_with = "borrowed_text")]
        pub trace_type: Text<'a>,
        /// Resource id.
        #[serde(borrow, default, deserialize_with = "borrowed_text")]
        pub resource_id: Text<'a>,
        /// Resource name.
        #[serde(borrow, default, deserialize_with = "borrowed_text")]
        pub resource_name: Text<'a>,
        /// Caller IP; empty or null for `SystemAction`.
        #[serde(borrow, default, deserialize_with = "borrowed_text")]
        pub source_ip: Text<'a>,
        /// Account id of the caller.
        #[serde(borrow, default, deserialize_with = "borrowed_text")]
        pub domain_id: Text<'a>,
        /// The caller: an object or a JSON-encoded string, parsed by [`Trace::user`].
        #[serde(borrow, default)]
        pub user: Option<&'a RawValue>,
        /// The service's response body, a JSON string or an object.
        #[serde(borrow, default)]
        pub response: Option<&'a RawValue>,
        /// The request body, a JSON string or an object: read only for the
        /// ids a billing action carries (`scan --bills`).
        #[serde(borrow, default)]
        pub request: Option<&'a RawValue>,
    }
}

impl<'a> Trace<'a> {
    /// Parses one trace object from bytes (checked for UTF-8 as it goes).
    ///
    /// ```
    /// use cts_audit::trace::Trace;
    /// assert!(Trace::from_slice(b"{\"trace_name\":\"payOrder\"}").is_ok());
    /// assert!(Trace::from_slice(b"{\"trace_name\":\"pay\xffOrder\"}").is_err()); // not UTF-8
    /// ```
    pub fn from_slice(bytes: &'a [u8]) -> serde_json::Result<Trace<'a>> {
        serde_json::from_slice(bytes)
    }

    /// Parses one trace object from text already known to be UTF-8.
    ///
    /// ```
    /// let t = cts_audit::trace::Trace::from_str(r#"{"trace_name":"payOrder","extra":{"ignored":true}}"#).unwrap();
    /// assert_eq!(t.trace_name.as_deref(), Some("payOrder"));
    /// ```
    #[allow(clippy::should_implement_trait)] // FromStr cannot borrow from its input
    pub fn from_str(text: &'a str) -> serde_json::Result<Trace<'a>> {
        members::from_str(text)
    }

    /// `time` in epoch milliseconds, falling back to `record_time` when
    /// `time` is absent, null or unreadable.
    ///
    /// ```
    /// use cts_audit::trace::Trace;
    /// let console = Trace::from_str(r#"{"time":"Nov 16, 2023 10:54:04 GMT+08:00"}"#).unwrap();
    /// assert_eq!(console.time_ms(), Some(1_700_103_244_000));
    /// let fallback = Trace::from_str(r#"{"time":null,"record_time":"1718777931170"}"#).unwrap();
    /// assert_eq!(fallback.time_ms(), Some(1_718_777_931_170));
    /// ```
    pub fn time_ms(&self) -> Option<i64> {
        first_time(self.time, self.record_time)
    }

    /// The first of `time` and `record_time` that is present but not a time
    /// [`Timestamp::parse_text`] reads, if any.
    ///
    /// ```
    /// use cts_audit::trace::Trace;
    /// let t = Trace::from_str(r#"{"time":"yesterday","record_time":1718777931170}"#).unwrap();
    /// assert_eq!(t.unreadable_time(), Some("time"));
    /// assert_eq!(t.time_ms(), Some(1718777931170));
    /// assert_eq!(Trace::from_str(r#"{"time":null}"#).unwrap().unreadable_time(), None);
    /// ```
    pub fn unreadable_time(&self) -> Option<&'static str> {
        unreadable_time(self.time, self.record_time)
    }

    /// The rating, from `trace_rating` or the legacy `trace_status`.
    ///
    /// ```
    /// use cts_audit::trace::Trace;
    /// assert_eq!(Trace::from_str(r#"{"trace_status":"warning"}"#).unwrap().rating(), Some("warning"));
    /// assert_eq!(Trace::from_str(r#"{"trace_rating":""}"#).unwrap().rating(), None);
    /// ```
    pub fn rating(&self) -> Option<&str> {
        self.trace_rating
            .as_deref()
            .or(self.trace_status.as_deref())
            .filter(|r| !r.is_empty())
    }

    /// The caller, parsed from an object or a JSON-encoded string. `None` when
    /// absent, null, or unparsable.
    ///
    /// ```
    /// use cts_audit::trace::Trace;
    /// let t = Trace::from_str(r#"{"user":{"name":"alice","type":"User","domain":{"name":"acme"}}}"#).unwrap();
    /// let user = t.user().unwrap();
    /// assert_eq!(user.user_type.as_deref(), Some("User"));
    /// assert_eq!(user.domain.unwrap().name.as_deref(), Some("acme"));
    /// assert!(Trace::from_str(r#"{"user":"{not json"}"#).unwrap().user().is_none());
    /// ```
    pub fn user(&self) -> Option<User<'a>> {
        let raw = self.user?.get();
        let raw: &'a str = raw;
        if raw.starts_with('"') {
            let decoded: Cow<'a, str> = serde_json::from_str(raw).ok()?;
            let user: User<'_> = serde_json::from_str(&decoded).ok()?;
            Some(user.into_owned())
        } else if raw.starts_with('{') {
            serde_json::from_str(raw).ok()
        } else {
            None
        }
    }

    /// [`Trace::user`], with what was wrong when a `user` is present but
    /// could not be read as it is: a damaged one (a key given twice, a lone
    /// surrogate) is read salvaged ([`salvage`]), anything else is no user.
    ///
    /// ```
    /// use cts_audit::trace::Trace;
    /// let trace = Trace::from_str(r#"{"user":{"name":"mallory","name":"alice"}}"#).unwrap();
    /// assert!(trace.user().is_none()); // serde_json refuses the repeated name
    /// let (user, problem) = trace.user_checked();
    /// assert_eq!(user.unwrap().display_name(), Some("alice"));
    /// assert!(problem.unwrap().contains("given 2 times"));
    /// ```
    pub fn user_checked(&self) -> (Option<User<'a>>, Option<String>) {
        if let Some(user) = self.user() {
            return (Some(user), None);
        }
        let Some(raw) = self.user.map(RawValue::get).filter(|r| *r != "null") else {
            return (None, None);
        };
        let object: Option<Cow<'_, str>> = if raw.starts_with('"') {
            serde_json::from_str::<Cow<'_, str>>(raw).ok()
        } else {
            Some(Cow::Borrowed(raw))
        };
        let salvaged = object.as_deref().and_then(|text| salvage(text.as_bytes()));
        let user = salvaged.as_ref().and_then(|s| {
            serde_json::from_str::<User<'_>>(&s.text)
                .ok()
                .map(User::into_owned)
        });
        match (user, salvaged) {
            (Some(user), Some(salvaged)) => (
                Some(user),
                Some(format!(
                    "was damaged and is read salvaged: {}",
                    salvaged.warnings.join("; ")
                )),
            ),
            _ => (
                None,
                Some("is not a user object: read as no user".to_owned()),
            ),
        }
    }

    /// The response body as text: a JSON string is decoded, an object is
    /// returned as written.
    ///
    /// ```
    /// use cts_audit::trace::Trace;
    /// let encoded = Trace::from_str(r#"{"response":"{\"error_code\":\"CBC.0151\"}"}"#).unwrap();
    /// assert_eq!(encoded.response_text().as_deref(), Some(r#"{"error_code":"CBC.0151"}"#));
    /// let object = Trace::from_str(r#"{"response":{"status":"SUCCESS"}}"#).unwrap();
    /// assert_eq!(object.response_text().as_deref(), Some(r#"{"status":"SUCCESS"}"#));
    /// ```
    pub fn response_text(&self) -> Option<Cow<'a, str>> {
        let raw: &'a str = self.response?.get();
        if raw.starts_with('"') {
            serde_json::from_str(raw).ok()
        } else if raw == "null" {
            None
        } else {
            Some(Cow::Borrowed(raw))
        }
    }
}

record_struct! {
    /// The few fields every record needs for counting and classification, and
    /// the markers of wrappers: parsing only these is cheaper than a full
    /// [`Trace`], and most records need no more.
    ///
    /// ```
    /// use cts_audit::trace::{TraceFields, TraceHead};
    /// let head = TraceHead::from_str(r#"{"trace_id":"t1","trace_name":"updatePort","service_type":"VPC","user":{"name":"x"}}"#).unwrap();
    /// assert_eq!((head.trace_id(), head.service()), (Some("t1"), "VPC"));
    /// ```
    pub struct TraceHead<'a> {}
}

impl<'a> TraceHead<'a> {
    /// Parses the head of one trace object.
    ///
    /// ```
    /// use cts_audit::trace::{TraceFields, TraceHead};
    /// let head = TraceHead::from_str(r#"{"trace_id":"t1","trace_name":"payOrder","service_type":"CBC",
    ///   "code":"200","request":"{\"a very\":\"long body\"}"}"#).unwrap();
    /// assert_eq!((head.name(), head.service(), head.http_code()), ("payOrder", "CBC", Some(200)));
    /// ```
    #[allow(clippy::should_implement_trait)] // FromStr cannot borrow from its input
    pub fn from_str(text: &'a str) -> serde_json::Result<TraceHead<'a>> {
        members::from_str(text)
    }

    /// As [`Trace::time_ms`].
    ///
    /// ```
    /// let head = cts_audit::trace::TraceHead::from_str(r#"{"record_time":1718777931170}"#).unwrap();
    /// assert_eq!(head.time_ms(), Some(1_718_777_931_170));
    /// ```
    pub fn time_ms(&self) -> Option<i64> {
        first_time(self.time, self.record_time)
    }

    /// As [`Trace::unreadable_time`].
    ///
    /// ```
    /// let head = cts_audit::trace::TraceHead::from_str(r#"{"time":true}"#).unwrap();
    /// assert_eq!(head.unreadable_time(), Some("time"));
    /// ```
    pub fn unreadable_time(&self) -> Option<&'static str> {
        unreadable_time(self.time, self.record_time)
    }
}

/// What classification and the record walker read, from a full [`Trace`]
/// or a [`TraceHead`].
///
/// ```
/// use cts_audit::trace::{Trace, TraceFields, TraceHead};
/// fn describe<'a>(record: &impl TraceFields<'a>) -> String {
///     format!("{}/{} by {:?}", record.service(), record.name(), record.rating())
/// }
/// let text = r#"{"trace_name":"payOrder","service_type":"CBC","trace_status":"normal"}"#;
/// assert_eq!(describe(&TraceHead::from_str(text).unwrap()), describe(&Trace::from_str(text).unwrap()));
/// ```
pub trait TraceFields<'a> {
    /// `trace_id`.
    fn trace_id(&self) -> Option<&str>;
    /// `trace_name`, or empty.
    fn name(&self) -> &str;
    /// `resource_type`, or empty.
    fn resource_type(&self) -> &str;
    /// `service_type`, or empty.
    fn service(&self) -> &str;
    /// `trace_rating`, else the legacy `trace_status`.
    fn rating(&self) -> Option<&str>;
    /// The HTTP status.
    fn http_code(&self) -> Option<u16>;
    /// When the operation happened, in epoch milliseconds: `time`, else
    /// `record_time`.
    fn time_ms(&self) -> Option<i64>;
    /// The response body as text, when this view has it.
    fn response_text(&self) -> Option<Cow<'a, str>>;
    /// The traces of a ListTraces page.
    fn page(&self) -> Option<&[&'a RawValue]>;
    /// The trace inside a FunctionGraph CTS event.
    fn event(&self) -> Option<&'a RawValue>;
    /// An integrity digest, not a trace.
    fn is_digest(&self) -> bool;
    /// A page of bill records, not a trace.
    fn is_bill_page(&self) -> bool;
}

/// Implements [`TraceFields`] for a struct with the common field names.
macro_rules! trace_fields {
    ($type:ident, |$this:ident| $response:expr) => {
        impl<'a> TraceFields<'a> for $type<'a> {
            fn trace_id(&self) -> Option<&str> {
                self.trace_id.as_deref()
            }
            fn name(&self) -> &str {
                self.trace_name.as_deref().unwrap_or("")
            }
            fn resource_type(&self) -> &str {
                self.resource_type.as_deref().unwrap_or("")
            }
            fn service(&self) -> &str {
                self.service_type.as_deref().unwrap_or("")
            }
            fn rating(&self) -> Option<&str> {
                self.trace_rating
                    .as_deref()
                    .or(self.trace_status.as_deref())
                    .filter(|r| !r.is_empty())
            }
            fn http_code(&self) -> Option<u16> {
                self.code.and_then(|c| c.0)
            }
            fn time_ms(&self) -> Option<i64> {
                first_time(self.time, self.record_time)
            }
            fn response_text(&self) -> Option<Cow<'a, str>> {
                let $this = self;
                $response
            }
            fn page(&self) -> Option<&[&'a RawValue]> {
                self.traces.as_deref()
            }
            fn event(&self) -> Option<&'a RawValue> {
                self.cts
            }
            fn is_digest(&self) -> bool {
                self.digest_object.is_some()
            }
            fn is_bill_page(&self) -> bool {
                self.bill_page.is_some()
            }
        }
    };
}
trace_fields!(Trace, |trace| Trace::response_text(trace));
trace_fields!(TraceHead, |_head| None);

/// The caller of an operation (CTS `UserInfo`).
///
/// ```
/// use cts_audit::trace::Trace;
/// // CTS often writes the user as a JSON document inside a string.
/// let t = Trace::from_str(r#"{"user":"{\"name\":\"acme/ops-agency\",\"type\":\"AssumedAgency\",\"principal_is_root_user\":\"false\"}"}"#).unwrap();
/// let user = t.user().unwrap();
/// assert_eq!(user.display_name(), Some("acme/ops-agency"));
/// assert_eq!(user.principal_is_root_user.map(|f| f.0), Some(false));
/// ```
#[derive(Debug, Default, Deserialize, Clone)]
pub struct User<'a> {
    /// User name (`<domain>/<agency>` for agencies).
    #[serde(borrow, default, deserialize_with = "borrowed_text")]
    pub name: Text<'a>,
    /// Newer exports repeat the name here.
    #[serde(borrow, default, deserialize_with = "borrowed_text")]
    pub user_name: Text<'a>,
    /// User id.
    #[serde(borrow, default, deserialize_with = "borrowed_text")]
    pub id: Text<'a>,
    /// `User`, `AssumedAgency` or `ExternalUser`.
    #[serde(borrow, default, rename = "type", deserialize_with = "borrowed_text")]
    pub user_type: Text<'a>,
    /// The account.
    #[serde(borrow, default)]
    pub domain: Option<Domain<'a>>,
    /// `"true"` when the root (domain) account acted; a string or a boolean.
    #[serde(default)]
    pub principal_is_root_user: Option<Flag>,
    /// Access key used.
    #[serde(borrow, default, deserialize_with = "borrowed_text")]
    pub access_key_id: Text<'a>,
}

/// The account (domain) of a user.
///
/// ```
/// use cts_audit::trace::Trace;
/// let t = Trace::from_str(r#"{"user":{"domain":{"name":"acme","id":"25fe78d9"}}}"#).unwrap();
/// assert_eq!(t.user().unwrap().domain.unwrap().id.as_deref(), Some("25fe78d9"));
/// ```
#[derive(Debug, Default, Deserialize, Clone)]
pub struct Domain<'a> {
    /// Account name.
    #[serde(borrow, default, deserialize_with = "borrowed_text")]
    pub name: Text<'a>,
    /// Account id.
    #[serde(borrow, default, deserialize_with = "borrowed_text")]
    pub id: Text<'a>,
}

impl User<'_> {
    /// The best name for the caller: `name`, else `user_name`.
    ///
    /// ```
    /// use cts_audit::trace::User;
    /// let user = User { user_name: Some("alice".into()), ..User::default() };
    /// assert_eq!(user.display_name(), Some("alice"));
    /// ```
    pub fn display_name(&self) -> Option<&str> {
        self.name
            .as_deref()
            .or(self.user_name.as_deref())
            .filter(|n| !n.is_empty())
    }

    /// Detaches the user from the text it was parsed from.
    ///
    /// ```
    /// use cts_audit::trace::{Trace, User};
    /// let user: User<'static> = {
    ///     let text = String::from(r#"{"user":{"name":"alice"}}"#);
    ///     Trace::from_str(&text).unwrap().user().unwrap().into_owned()
    /// };
    /// assert_eq!(user.display_name(), Some("alice"));
    /// ```
    pub fn into_owned(self) -> User<'static> {
        fn own(text: Text<'_>) -> Text<'static> {
            text.map(|t| Cow::Owned(t.into_owned()))
        }
        User {
            name: own(self.name),
            user_name: own(self.user_name),
            id: own(self.id),
            user_type: own(self.user_type),
            domain: self.domain.map(|d| Domain {
                name: own(d.name),
                id: own(d.id),
            }),
            principal_is_root_user: self.principal_is_root_user,
            access_key_id: own(self.access_key_id),
        }
    }
}

/// A boolean written as `true` or as the string `"true"`.
///
/// ```
/// use cts_audit::trace::Trace;
/// for text in [r#"{"user":{"principal_is_root_user":"true"}}"#, r#"{"user":{"principal_is_root_user":true}}"#] {
///     let flag = Trace::from_str(text).unwrap().user().unwrap().principal_is_root_user;
///     assert_eq!(flag.map(|f| f.0), Some(true));
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlagVisitor;
        impl Visitor<'_> for FlagVisitor {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean or \"true\"/\"false\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
                Ok(Flag(v.eq_ignore_ascii_case("true")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Flag, E> {
                Ok(Flag(false))
            }
        }
        deserializer.deserialize_any(FlagVisitor)
    }
}

/// An HTTP status written as a number or a string: the status, and what
/// was wrong with the value when it could not be read as one (a negative,
/// fractional or huge number, a word, an object), which the scan reports.
/// A fractional status is read as its whole part (403.5 is a 403).
///
/// ```
/// use cts_audit::trace::Trace;
/// let code = |text| Trace::from_str(text).unwrap().code.unwrap();
/// assert_eq!(code(r#"{"code":403}"#).0, Some(403));
/// assert_eq!(code(r#"{"code":" 200 "}"#).0, Some(200));
/// assert_eq!(code(r#"{"code":"4e2"}"#).0, Some(400));
/// assert_eq!(code(r#"{"code":""}"#), cts_audit::trace::HttpCode(None, None)); // empty: no status
/// let negative = code(r#"{"code":-400}"#);
/// assert_eq!((negative.0, negative.1), (None, Some("a negative number")));
/// assert_eq!(code(r#"{"code":403.5}"#).0, Some(403)); // read, with a note
/// assert!(code(r#"{"code":403.5}"#).1.is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpCode(pub Option<u16>, pub Option<&'static str>);

impl HttpCode {
    fn read(value: f64) -> HttpCode {
        match value {
            v if !v.is_finite() => HttpCode(None, Some("not a finite number")),
            v if v < 0.0 => HttpCode(None, Some("a negative number")),
            v if v > f64::from(u16::MAX) => HttpCode(None, Some("too large for an HTTP status")),
            v if v.fract() != 0.0 => HttpCode(
                Some(v as u16),
                Some("not a whole number; read as its whole part"),
            ),
            v => HttpCode(Some(v as u16), None),
        }
    }

    fn damaged(why: &'static str) -> HttpCode {
        HttpCode(None, Some(why))
    }
}

impl<'de> Deserialize<'de> for HttpCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CodeVisitor;
        impl<'de> Visitor<'de> for CodeVisitor {
            type Value = HttpCode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an HTTP status as a number or a string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HttpCode, E> {
                Ok(match u16::try_from(v) {
                    Ok(code) => HttpCode(Some(code), None),
                    Err(_) => HttpCode::damaged("too large for an HTTP status"),
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HttpCode, E> {
                Ok(match u16::try_from(v) {
                    Ok(code) => HttpCode(Some(code), None),
                    Err(_) if v < 0 => HttpCode::damaged("a negative number"),
                    Err(_) => HttpCode::damaged("too large for an HTTP status"),
                })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<HttpCode, E> {
                Ok(HttpCode::read(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HttpCode, E> {
                let v = v.trim();
                if v.is_empty() {
                    return Ok(HttpCode(None, None));
                }
                if let Ok(code) = v.parse::<u16>() {
                    return Ok(HttpCode(Some(code), None));
                }
                Ok(match v.parse::<f64>() {
                    Ok(number) => HttpCode::read(number),
                    Err(_) => HttpCode::damaged("not a number"),
                })
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<HttpCode, E> {
                Ok(HttpCode::damaged("a boolean"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<HttpCode, E> {
                Ok(HttpCode(None, None))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<HttpCode, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(HttpCode::damaged("an object"))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<HttpCode, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(HttpCode::damaged("an array"))
            }
        }
        deserializer.deserialize_any(CodeVisitor)
    }
}

fn first_time(time: Option<Timestamp>, record_time: Option<Timestamp>) -> Option<i64> {
    time.and_then(|t| t.0).or(record_time.and_then(|t| t.0))
}

fn unreadable_time(
    time: Option<Timestamp>,
    record_time: Option<Timestamp>,
) -> Option<&'static str> {
    [("time", time), ("record_time", record_time)]
        .into_iter()
        .find(|(_, value)| matches!(value, Some(Timestamp(None))))
        .map(|(name, _)| name)
}

/// A time in epoch milliseconds, from any of the shapes CTS exports use;
/// `None` inside when the text is not a time we can read.
///
/// ```
/// use cts_audit::trace::{Timestamp, Trace};
/// let t = Trace::from_str(r#"{"time":"yesterday","record_time":1718777931170}"#).unwrap();
/// assert_eq!(t.time, Some(Timestamp(None))); // present, but not a time
/// assert_eq!(t.record_time, Some(Timestamp(Some(1_718_777_931_170))));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub Option<i64>);

/// Epoch times read from numbers: 2000-01-01 to 2100-01-01 UTC. CTS began
/// long after the first; a number outside is damage, not a time.
pub const PLAUSIBLE_MS: std::ops::Range<i64> = 946_684_800_000..4_102_444_800_000;

impl Timestamp {
    /// Reads epoch digits (seconds, milliseconds, microseconds or nanoseconds,
    /// told apart by magnitude), the console's text forms
    /// `"Nov 16, 2023 10:54:04 GMT+08:00"` and `"12/01/2016 11:07:28 GMT+08:00"`,
    /// or RFC 3339 (spreadsheets of traces, and this tool's own CSV output).
    ///
    /// ```
    /// use cts_audit::trace::Timestamp;
    /// assert_eq!(Timestamp::parse_text("1718777931170"), Some(1_718_777_931_170));
    /// assert_eq!(Timestamp::parse_text("Nov 16, 2023 10:54:04 GMT+08:00"), Some(1_700_103_244_000));
    /// assert_eq!(Timestamp::parse_text("12/01/2016 11:07:28 GMT+08:00"), Some(1_480_561_648_000));
    /// assert_eq!(Timestamp::parse_text("2023-11-16T02:54:04.000Z"), Some(1_700_103_244_000));
    /// assert_eq!(Timestamp::parse_text("yesterday"), None);
    /// ```
    pub fn parse_text(text: &str) -> Option<i64> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text.parse::<i64>().ok().and_then(Self::normalise_epoch);
        }
        if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
            return Some(time.timestamp_millis());
        }
        let (local, offset) = text.rsplit_once(" GMT")?;
        let offset = if offset.is_empty() { "+00:00" } else { offset };
        let joined = format!("{local} {offset}");
        ["%b %d, %Y %H:%M:%S %:z", "%m/%d/%Y %H:%M:%S %:z"]
            .iter()
            .find_map(|format| chrono::DateTime::parse_from_str(&joined, format).ok())
            .map(|t| t.timestamp_millis())
    }

    /// Epoch numbers come in seconds, ms, µs or ns; bring them to ms. A
    /// number that is no time in [`PLAUSIBLE_MS`] in the unit its magnitude
    /// suggests is not read as one (it is reported): 1e20 is no time, and
    /// 253402300800000 is neither the year 10000 in ms nor 1978 in µs.
    fn normalise_epoch(value: i64) -> Option<i64> {
        let ms = match value {
            v if v >= 100_000_000_000_000_000 => v / 1_000_000,
            v if v >= 100_000_000_000_000 => v / 1_000,
            v if v < 100_000_000_000 => v.checked_mul(1_000)?,
            v => v,
        };
        PLAUSIBLE_MS.contains(&ms).then_some(ms)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimeVisitor;
        impl<'de> Visitor<'de> for TimeVisitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("epoch milliseconds or a console time string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                Ok(Timestamp(
                    i64::try_from(v).ok().and_then(Timestamp::normalise_epoch),
                ))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(Timestamp::normalise_epoch(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                // Past i64 a cast would saturate, to a time in 2262.
                let whole = v.is_finite() && v.abs() < 9.0e18;
                Ok(Timestamp(
                    whole
                        .then_some(v as i64)
                        .and_then(Timestamp::normalise_epoch),
                ))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Timestamp, E> {
                Ok(Timestamp(None))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Timestamp, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Timestamp(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Timestamp, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Timestamp(None))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Ok(Timestamp(Timestamp::parse_text(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Timestamp, E> {
                Ok(Timestamp(None))
            }
        }
        deserializer.deserialize_any(TimeVisitor)
    }
}

/// Widens the range `first..=last` to take in `time`: the time a scan, an
/// actor or a summary group covers.
///
/// ```
/// let (mut first, mut last) = (None, None);
/// for time in [30, 10, 20] {
///     cts_audit::trace::widen_time_range(&mut first, &mut last, time);
/// }
/// assert_eq!((first, last), (Some(10), Some(30)));
/// ```
pub fn widen_time_range(first: &mut Option<i64>, last: &mut Option<i64>, time: i64) {
    *first = Some(first.map_or(time, |t| t.min(time)));
    *last = Some(last.map_or(time, |t| t.max(time)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_comes_as_object_string_or_null() {
        let object = br#"{"user":{"name":"IAMUserA","type":"User","principal_is_root_user":"true","domain":{"name":"IAMDomainB","id":"7e0d"}}}"#;
        let user = Trace::from_slice(object).unwrap().user().unwrap();
        assert_eq!(user.display_name(), Some("IAMUserA"));
        assert_eq!(user.principal_is_root_user, Some(Flag(true)));
        assert_eq!(user.domain.unwrap().name.as_deref(), Some("IAMDomainB"));

        let string = br#"{"user":"{\"name\":\"bob\",\"id\":\"5f2c\",\"domain\":{\"name\":\"acme\",\"id\":\"25fe\"}}"}"#;
        assert_eq!(
            Trace::from_slice(string)
                .unwrap()
                .user()
                .unwrap()
                .display_name(),
            Some("bob")
        );
        assert!(Trace::from_slice(br#"{"user":null}"#)
            .unwrap()
            .user()
            .is_none());
        assert!(Trace::from_slice(br#"{"user":"not json"}"#)
            .unwrap()
            .user()
            .is_none());
    }

    #[test]
    fn text_borrows_unless_escaped_and_tolerates_other_types() {
        let t = Trace::from_slice(br#"{"trace_name":"payOrder","resource_name":"a\"b","resource_id":42,"source_ip":{"v4":"x"}}"#).unwrap();
        assert!(matches!(t.trace_name, Some(Cow::Borrowed("payOrder"))));
        assert!(matches!(t.resource_name.as_deref(), Some("a\"b")));
        assert_eq!(t.resource_id.as_deref(), Some("42"));
        assert_eq!(t.source_ip, None);
    }

    #[test]
    fn code_and_times_accept_every_shape() {
        let t = Trace::from_slice(br#"{"code":"403","time":1718777931170,"record_time":"Nov 25, 2022 15:35:44 GMT+08:00"}"#).unwrap();
        assert_eq!(t.code, Some(HttpCode(Some(403), None)));
        assert_eq!(t.time_ms(), Some(1_718_777_931_170));
        assert_eq!(t.record_time, Some(Timestamp(Some(1_669_361_744_000))));
        let t =
            Trace::from_slice(br#"{"code":null,"time":null,"record_time":"1660223647458765184"}"#)
                .unwrap();
        assert_eq!(t.code.and_then(|c| c.0), None);
        assert_eq!(t.time_ms(), Some(1_660_223_647_458));
    }

    #[test]
    fn legacy_status_and_response_shapes() {
        let t = Trace::from_slice(br#"{"trace_status":"warning","response":{"code":"VPC.0514","message":"Update port fail."}}"#).unwrap();
        assert_eq!(t.rating(), Some("warning"));
        assert!(t.response_text().unwrap().contains("VPC.0514"));
        let t = Trace::from_slice(br#"{"response":"{\"error_code\":\"CBC.0151\"}"}"#).unwrap();
        assert_eq!(t.response_text().unwrap(), r#"{"error_code":"CBC.0151"}"#);
    }
}
