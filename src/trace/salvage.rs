//! Reading what can be read of a damaged record.
//!
//! serde_json rejects a whole record for damage in any one value: a key
//! given twice, a raw control character or an invalid UTF-8 byte inside a
//! string, a lone surrogate escape, a number out of range (`1e999999`,
//! 5,000 digits) or `NaN`. A hostile trail can use that to hide a
//! sensitive record behind damage in a field nobody reads. [`salvage`]
//! walks the record's top-level members itself, tolerating such damage,
//! and rewrites it as valid JSON: each key once (the last value, as most
//! JSON readers take it), a damaged string repaired where it can be (its
//! control characters escaped, lone surrogates and invalid bytes replaced
//! by U+FFFD), any other damaged value null. Every repair is named in a
//! warning. A record that is not a well-delimited object (cut short,
//! garbage) is not salvaged: it stays a record error.

use std::borrow::Cow;

/// The fields that decide what a record is. A repair to one of these is
/// itself suspicious, and a key given twice fires `audit.malformed`.
pub const KEY_FIELDS: &[&str] = &[
    "trace_id",
    "trace_name",
    "service_type",
    "resource_type",
    "time",
    "user",
    "trace_rating",
];

/// A damaged record, made readable.
///
/// ```
/// use cts_audit::trace::{salvage, Trace, TraceFields};
/// let damaged = br#"{"trace_name":"listBills","trace_name":"deleteTracker","service_type":"CTS","code":1e999999}"#;
/// assert!(Trace::from_slice(damaged).is_err());
/// let salvaged = salvage(damaged).unwrap();
/// let trace = Trace::from_str(&salvaged.text).unwrap();
/// assert_eq!(trace.name(), "deleteTracker"); // the last value
/// assert_eq!(salvaged.duplicate_keys, ["trace_name"]);
/// assert_eq!(salvaged.warnings.len(), 2); // the duplicate, and the code read as null
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Salvaged {
    /// The record as valid JSON: each key once, damaged values repaired or null.
    pub text: String,
    /// One message per repair, naming the field.
    pub warnings: Vec<String>,
    /// [`KEY_FIELDS`] given more than once.
    pub duplicate_keys: Vec<String>,
}

/// Salvages one record's bytes; `None` when they are not one whole object.
pub fn salvage(bytes: &[u8]) -> Option<Salvaged> {
    let lossy = String::from_utf8_lossy(bytes);
    let had_bad_utf8 = matches!(lossy, Cow::Owned(_));
    let members = members(&lossy)?;
    let mut warnings = Vec::new();
    let mut duplicate_keys = Vec::new();
    // The last value of each key, in the order keys first came.
    let mut order: Vec<(String, &str, usize)> = Vec::new();
    for (key, value) in members {
        match order.iter_mut().find(|(k, ..)| *k == key) {
            Some(slot) => {
                slot.1 = value;
                slot.2 += 1;
            }
            None => order.push((key, value, 1)),
        }
    }
    let mut text = String::with_capacity(lossy.len());
    text.push('{');
    for (i, (key, value, count)) in order.iter().enumerate() {
        let is_key_field = KEY_FIELDS.contains(&key.as_str());
        if *count > 1 {
            warnings.push(format!(
                "`{key}` is given {count} times; the last value is read"
            ));
            if is_key_field {
                duplicate_keys.push(key.clone());
            }
        }
        let repaired = repair(value, had_bad_utf8);
        let value: Cow<'_, str> = match repaired {
            Repair::Whole => Cow::Borrowed(value),
            Repair::Repaired(fixed, why) => {
                warnings.push(format!("`{key}` {why}; read repaired"));
                Cow::Owned(fixed)
            }
            Repair::Null(why) => {
                warnings.push(format!("`{key}` {why}; read as null"));
                Cow::Borrowed("null")
            }
        };
        if i > 0 {
            text.push(',');
        }
        // Keys are re-encoded: one with damage of its own comes out valid.
        text.push_str(&serde_json::Value::String(key.clone()).to_string());
        text.push(':');
        text.push_str(&value);
    }
    text.push('}');
    Some(Salvaged {
        text,
        warnings,
        duplicate_keys,
    })
}

enum Repair {
    /// Valid as it is.
    Whole,
    /// Valid once repaired, and how.
    Repaired(String, &'static str),
    /// Beyond repair, and why.
    Null(String),
}

/// Parsed as a value, not skipped: skipping passes numbers out of range.
fn valid(value: &str) -> Result<(), serde_json::Error> {
    serde_json::from_str::<serde_json::Value>(value).map(|_| ())
}

fn repair(value: &str, had_bad_utf8: bool) -> Repair {
    let replaced = had_bad_utf8 && value.contains('\u{fffd}');
    match valid(value) {
        Ok(()) if replaced => {
            return Repair::Repaired(value.to_owned(), "had invalid UTF-8, replaced by U+FFFD")
        }
        Ok(()) => return Repair::Whole,
        Err(_) if value.starts_with('"') => {
            let fixed = repair_string(value);
            if valid(&fixed).is_ok() {
                return Repair::Repaired(
                    fixed,
                    "held raw control characters, lone surrogates or invalid UTF-8",
                );
            }
        }
        Err(_) => {}
    }
    let err = valid(value)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    // The error, not the value: the value may be megabytes.
    let err = err.split(" at line").next().unwrap_or(&err).to_owned();
    Repair::Null(format!("is not valid JSON ({err})"))
}

/// A string value with raw control characters escaped and lone surrogate
/// escapes replaced by `\ufffd`.
fn repair_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    let mut chars = value.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => {
                let rest = &value[at..];
                if let Some(unit) = surrogate_at(rest) {
                    let paired = (0xd800..0xdc00).contains(&unit)
                        && surrogate_at(&rest[6..])
                            .is_some_and(|low| (0xdc00..0xe000).contains(&low));
                    if paired {
                        out.push_str(&rest[..12]);
                        for _ in 0..11 {
                            chars.next();
                        }
                    } else {
                        out.push_str("\\ufffd");
                        for _ in 0..5 {
                            chars.next();
                        }
                    }
                } else {
                    out.push('\\');
                    if let Some((_, next)) = chars.next() {
                        out.push(next);
                    }
                }
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The code unit of a `\uXXXX` escape at the start of `text` when it is a
/// surrogate.
fn surrogate_at(text: &str) -> Option<u32> {
    let hex = text.strip_prefix("\\u")?.get(..4)?;
    let unit = u32::from_str_radix(hex, 16).ok()?;
    (0xd800..0xe000).contains(&unit).then_some(unit)
}

/// The top-level members of an object, as (key, raw value), tolerating
/// damage inside values; `None` when the text is not one whole object.
fn members(text: &str) -> Option<Vec<(String, &str)>> {
    let bytes = text.as_bytes();
    let mut at = skip_ws(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_ws(bytes, at + 1);
    let mut members = Vec::new();
    if bytes.get(at) == Some(&b'}') {
        return (skip_ws(bytes, at + 1) == bytes.len()).then_some(members);
    }
    loop {
        if bytes.get(at) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(bytes, at)?;
        let raw_key = &text[at..key_end];
        let key = serde_json::from_str::<String>(raw_key)
            .unwrap_or_else(|_| raw_key.trim_matches('"').to_owned());
        at = skip_ws(bytes, key_end);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        at = skip_ws(bytes, at + 1);
        let value_end = value_end(bytes, at)?;
        members.push((key, text[at..value_end].trim_end()));
        at = skip_ws(bytes, value_end);
        match bytes.get(at) {
            Some(b',') => at = skip_ws(bytes, at + 1),
            Some(b'}') => {
                return (skip_ws(bytes, at + 1) == bytes.len()).then_some(members);
            }
            _ => return None,
        }
    }
}

fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    at
}

/// Just past the closing quote of the string opening at `at`.
fn string_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Just past the value starting at `at`: a string, a nested object or
/// array (strings inside respected), or a scalar up to `,` or `}`.
fn value_end(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at)? {
        b'"' => string_end(bytes, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            while i < bytes.len() {
                match bytes[i] {
                    b'"' => {
                        i = string_end(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let end = bytes[at..]
                .iter()
                .position(|b| matches!(b, b',' | b'}'))
                .map_or(bytes.len(), |n| at + n);
            (end > at).then_some(end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Trace, TraceFields};

    fn read(bytes: &[u8]) -> (String, Salvaged) {
        let salvaged = salvage(bytes).expect("salvaged");
        let trace = Trace::from_str(&salvaged.text).expect("valid after salvage");
        (trace.name().to_owned(), salvaged)
    }

    #[test]
    fn each_kind_of_damage_leaves_the_key_fields_readable() {
        let cases: &[&[u8]] = &[
            br#"{"trace_name":"deleteTracker","request":"a\u0000b","code":1e999999}"#,
            b"{\"trace_name\":\"deleteTracker\",\"request\":\"raw \x00 nul\"}",
            b"{\"trace_name\":\"deleteTracker\",\"message\":\"bad \xff byte\"}",
            br#"{"trace_name":"deleteTracker","message":"\ud800 alone","code":NaN}"#,
            br#"{"trace_name":"deleteTracker","time":[],"code":{}}"#,
        ];
        for case in cases {
            let (name, _) = read(case);
            assert_eq!(name, "deleteTracker", "{}", String::from_utf8_lossy(case));
        }
        let long = format!(
            r#"{{"trace_name":"deleteTracker","code":{}}}"#,
            "9".repeat(5000)
        );
        let (name, salvaged) = read(long.as_bytes());
        assert_eq!(name, "deleteTracker");
        assert!(salvaged.warnings[0].len() < 200, "{:?}", salvaged.warnings);
    }

    #[test]
    fn a_repeated_key_field_is_read_last_and_named() {
        let (name, salvaged) =
            read(br#"{"trace_id":"a","trace_name":"listBills","request":"x","trace_name":"deleteTracker"}"#);
        assert_eq!(name, "deleteTracker");
        assert_eq!(salvaged.duplicate_keys, ["trace_name"]);
        let (_, salvaged) = read(br#"{"trace_name":"x","request":"1","request":"2"}"#);
        assert!(salvaged.duplicate_keys.is_empty());
        assert_eq!(salvaged.warnings.len(), 1);
    }

    #[test]
    fn what_is_not_one_object_is_not_salvaged() {
        for text in [
            &b"{\"trace_name\":\"x\""[..],
            b"[1,2]",
            b"not json",
            b"{\"a\":1} {",
        ] {
            assert!(salvage(text).is_none(), "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn strings_are_repaired_not_dropped() {
        let fixed = repair_string("\"a\u{1}b\\ud800c\\ud83d\\ude00\"");
        assert_eq!(fixed, "\"a\\u0001b\\ufffdc\\ud83d\\ude00\"");
        assert_eq!(
            serde_json::from_str::<String>(&fixed).unwrap(),
            "a\u{1}b\u{fffd}c😀"
        );
    }
}
