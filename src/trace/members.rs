//! Reading a record object with serde, faster than serde_json alone on CTS
//! traces, to the same result.
//!
//! Most of a CTS trace is text the audit never reads. `request`, `response`
//! and often `user` are JSON documents stored as JSON strings, with an
//! escaped quote every few bytes, and serde_json checks such a string one
//! escape at a time, through calls. This module walks the members of the
//! record's top-level object itself, and checks the strings of members the
//! target struct ignores without a call per escape ([`skip_string`]): a
//! short string eight bytes at a time, a long one 64 bytes at a time with
//! SSE2 bit masks, however many escapes it holds. Every value the struct
//! reads, and every value that is not a string, is still parsed by
//! serde_json.
//!
//! It is not a JSON parser. serde_json still parses every value the audit
//! reads, checks every value that is not a string, and decides every record
//! the walk does not accept. simd-json and sonic-rs were both slower than
//! serde_json on these records (docs/BENCHMARKS.md).
//!
//! The walk never decides that a record is invalid. Anything it does not
//! accept is handed whole to serde_json, whose verdict and message stand.
//! When it accepts a record, serde_json accepts it too, with the same
//! fields; tests/trace_members.rs checks this on generated and damaged
//! records.

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// Parses `text`, one JSON object, into `T`: by the member walk when it
/// can, else by serde_json.
pub(crate) fn from_str<'a, T: Deserialize<'a>>(text: &'a str) -> serde_json::Result<T> {
    T::deserialize(Object { text }).or_else(|NotHere| serde_json::from_str(text))
}

/// The walk's only error: "let serde_json decide".
#[derive(Debug)]
struct NotHere;

impl fmt::Display for NotHere {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to serde_json")
    }
}

impl std::error::Error for NotHere {}

impl de::Error for NotHere {
    fn custom<M: fmt::Display>(_: M) -> Self {
        NotHere
    }
}

/// The whole text, read as one object.
struct Object<'a> {
    text: &'a str,
}

impl<'de> de::Deserializer<'de> for Object<'de> {
    type Error = NotHere;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NotHere> {
        let bytes = self.text.as_bytes();
        let start = skip_whitespace(bytes, 0);
        if bytes.get(start) != Some(&b'{') {
            return Err(NotHere);
        }
        let mut members = Members {
            text: self.text,
            at: start + 1,
            first: true,
        };
        let value = visitor.visit_map(&mut members)?;
        // Only whitespace may follow the closing brace, as for serde_json.
        if skip_whitespace(bytes, members.at) != bytes.len() {
            return Err(NotHere);
        }
        Ok(value)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// The members of the object, one at a time.
struct Members<'a> {
    text: &'a str,
    /// Just after the `{`, or after the last value read.
    at: usize,
    first: bool,
}

impl<'de> MapAccess<'de> for Members<'de> {
    type Error = NotHere;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, NotHere> {
        let bytes = self.text.as_bytes();
        let mut at = skip_whitespace(bytes, self.at);
        match bytes.get(at) {
            Some(b'}') => {
                self.at = at + 1;
                return Ok(None);
            }
            Some(b',') if !self.first => at = skip_whitespace(bytes, at + 1),
            _ if self.first => {}
            _ => return Err(NotHere),
        }
        self.first = false;
        if bytes.get(at) != Some(&b'"') {
            return Err(NotHere);
        }
        // A key with an escape would need decoding: serde_json does that.
        let (end, escaped) = skip_string(bytes, at + 1).ok_or(NotHere)?;
        if escaped {
            return Err(NotHere);
        }
        let key = self.text.get(at + 1..end - 1).ok_or(NotHere)?;
        let colon = skip_whitespace(bytes, end);
        if bytes.get(colon) != Some(&b':') {
            return Err(NotHere);
        }
        self.at = skip_whitespace(bytes, colon + 1);
        seed.deserialize(de::value::BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, NotHere> {
        seed.deserialize(Value { members: self })
    }
}

/// One member's value: passed over here when the struct ignores it, else
/// delimited and handed to serde_json.
struct Value<'m, 'a> {
    members: &'m mut Members<'a>,
}

impl<'de> Value<'_, 'de> {
    /// Moves past the value, checking it, and returns its text.
    fn take(&mut self) -> Result<&'de str, NotHere> {
        let members = &mut *self.members;
        let bytes = members.text.as_bytes();
        let start = members.at;
        let end = if bytes.get(start) == Some(&b'"') {
            skip_string(bytes, start + 1).ok_or(NotHere)?.0
        } else {
            // Numbers, literals, objects and arrays: serde_json checks them
            // and says where they end.
            let rest = members.text.get(start..).ok_or(NotHere)?;
            let mut values = serde_json::Deserializer::from_str(rest).into_iter::<IgnoredAny>();
            match values.next() {
                Some(Ok(_)) => start + values.byte_offset(),
                _ => return Err(NotHere),
            }
        };
        members.at = end;
        members.text.get(start..end).ok_or(NotHere)
    }
}

/// Hands each `deserialize_*` call to serde_json, on the value's own text.
macro_rules! parse_with_serde_json {
    ($($method:ident($($arg:ident: $type:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(mut self, $($arg: $type,)* visitor: V) -> Result<V::Value, NotHere> {
                let text = self.take()?;
                let mut parser = serde_json::Deserializer::from_str(text);
                de::Deserializer::$method(&mut parser, $($arg,)* visitor).map_err(|_| NotHere)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Value<'_, 'de> {
    type Error = NotHere;

    fn deserialize_ignored_any<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, NotHere> {
        self.take()?;
        visitor.visit_unit()
    }

    parse_with_serde_json! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
    }
}

/// The first byte at or after `at` that is not JSON whitespace.
fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(at) {
        at += 1;
    }
    at
}

/// Checks the JSON string whose text starts at `at`, just after its opening
/// quote. Returns the index just past its closing quote, and whether it
/// holds an escape; `None` when it is unterminated or invalid (a control
/// character, a bad escape).
///
/// Keys and most values end within a couple of words, tested eight bytes
/// at a time ([`skip_string_words`]); a longer string, or one with an
/// escape, goes on 64 bytes at a time on x86-64 ([`skip_string_blocks`]).
#[inline]
fn skip_string(bytes: &[u8], at: usize) -> Option<(usize, bool)> {
    /// Words tested before a string counts as long.
    const SHORT_WORDS: usize = 2;
    match skip_string_words(bytes, at, SHORT_WORDS) {
        Scanned::End(end, escaped) => Some((end, escaped)),
        Scanned::Invalid => None,
        #[cfg(target_arch = "x86_64")]
        Scanned::Further(at, escaped) => skip_string_blocks(bytes, at, escaped),
        #[cfg(not(target_arch = "x86_64"))]
        Scanned::Further(at, escaped) => match skip_string_words(bytes, at, usize::MAX) {
            Scanned::End(end, more) => Some((end, escaped || more)),
            _ => None,
        },
    }
}

/// Where [`skip_string_words`] stopped.
enum Scanned {
    /// Just past the closing quote, and whether an escape came before.
    End(usize, bool),
    /// Unterminated, or a control character or a bad escape.
    Invalid,
    /// Not done after the words it was given, or at the first escape when
    /// it was given a limit: where to go on (never inside an escape), and
    /// whether an escape came before.
    Further(usize, bool),
}

/// Tests up to `words` times eight bytes for a quote, a backslash or a
/// control character (serde_json's test), and handles the first one found.
/// With a limit, the first escape hands the string over
/// ([`Scanned::Further`]); with `usize::MAX` (no blocks on this CPU, and
/// the reference the tests hold the blocks to) each escape is handled here,
/// in the loop, with no call per escape.
#[inline(always)]
fn skip_string_words(bytes: &[u8], mut at: usize, words: usize) -> Scanned {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut escaped = false;
    let mut tested = 0;
    loop {
        if tested == words {
            return Scanned::Further(at, escaped);
        }
        tested += 1;
        let Some(eight) = bytes.get(at..at + 8) else {
            // The last few bytes, one at a time.
            loop {
                match bytes.get(at) {
                    Some(b'"') => return Scanned::End(at + 1, escaped),
                    Some(b'\\') => match skip_escape(bytes, at) {
                        Some(next) => (at, escaped) = (next, true),
                        None => return Scanned::Invalid,
                    },
                    Some(0..=0x1f) | None => return Scanned::Invalid,
                    Some(_) => at += 1,
                }
            }
        };
        let mut word = [0; 8];
        word.copy_from_slice(eight);
        let word = u64::from_le_bytes(word);
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        // The lowest flagged byte is exact; higher ones may be false alarms,
        // and are looked at again from the next position.
        let special = ((word.wrapping_sub(ONES * 0x20) & !word)
            | (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash))
            & HIGH;
        if special == 0 {
            at += 8;
            continue;
        }
        at += (special.trailing_zeros() / 8) as usize;
        match bytes[at] {
            b'"' => return Scanned::End(at + 1, escaped),
            // An escape: the string is most likely a JSON document, dense
            // in them, and long.
            b'\\' if words != usize::MAX => return Scanned::Further(at, escaped),
            b'\\' => match skip_escape(bytes, at) {
                Some(next) => (at, escaped) = (next, true),
                None => return Scanned::Invalid,
            },
            _ => return Scanned::Invalid,
        }
    }
}

/// [`skip_string`] 64 bytes at a time, from `at` (not inside an escape).
///
/// Each block gives bit masks of its quotes, backslashes and control
/// characters (SSE2, which every x86-64 CPU has); the escaped characters
/// follow from the backslashes with carries, as simdjson finds them, so a
/// string costs the same however many escapes it holds. The first quote not
/// escaped ends the string.
#[cfg(target_arch = "x86_64")]
fn skip_string_blocks(bytes: &[u8], mut at: usize, mut escaped: bool) -> Option<(usize, bool)> {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, load_unaligned_m128i, m128i, min_u8_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    const EVEN_BITS: u64 = 0x5555_5555_5555_5555;
    let (quote, backslash, control_max) = (
        set_splat_i8_m128i(b'"' as i8),
        set_splat_i8_m128i(b'\\' as i8),
        set_splat_i8_m128i(0x1f),
    );
    // 1 when the first byte of the next block is escaped.
    let mut carry = 0u64;
    loop {
        let rest = bytes.get(at..)?;
        // The last partial block is copied out, padded with spaces: no quote
        // is found past the text, so the string is then unterminated.
        let padded;
        let block: &[u8; 64] = match rest.first_chunk() {
            Some(full) => full,
            None if rest.is_empty() => return None,
            None => {
                let mut block = [b' '; 64];
                block[..rest.len()].copy_from_slice(rest);
                padded = block;
                &padded
            }
        };
        let lanes: [m128i; 4] = std::array::from_fn(|i| {
            let mut lane = [0; 16];
            lane.copy_from_slice(&block[16 * i..16 * (i + 1)]);
            load_unaligned_m128i(&lane)
        });
        let mask = |test: &dyn Fn(m128i) -> m128i| -> u64 {
            lanes.iter().enumerate().fold(0, |mask, (i, lane)| {
                // The movemask of 16 bytes is 16 bits, in the low half.
                mask | (u64::from(move_mask_i8_m128i(test(*lane)) as u16) << (16 * i))
            })
        };
        let quotes = mask(&|v| cmp_eq_mask_i8_m128i(v, quote));
        let backslashes = mask(&|v| cmp_eq_mask_i8_m128i(v, backslash));
        // x <= 0x1f, unsigned: min(x, 0x1f) == x.
        let controls = mask(&|v| cmp_eq_mask_i8_m128i(min_u8_m128i(v, control_max), v));

        // The characters that backslashes escape (simdjson's
        // find_escaped_branchless): runs of backslashes pair up, and an odd
        // one out escapes the byte after it.
        let backslashes_here = backslashes & !carry;
        let follows_escape = (backslashes_here << 1) | carry;
        let odd_starts = backslashes_here & !EVEN_BITS & !follows_escape;
        let (even_starts, overflow) = odd_starts.overflowing_add(backslashes_here);
        let escaped_bytes = (EVEN_BITS ^ (even_starts << 1)) & follows_escape;
        carry = u64::from(overflow);

        let closing = quotes & !escaped_bytes;
        // The string's bytes in this block: up to the closing quote, if here.
        let inside = match closing {
            0 => u64::MAX,
            _ => (1u64 << closing.trailing_zeros()) - 1,
        };
        if controls & inside != 0 {
            return None;
        }
        // Escaped quotes and backslashes are the common escapes; any other
        // escaped byte is checked one by one (`/`, `n`, `u` and its digits…).
        let mut others = escaped_bytes & inside & !quotes & !backslashes;
        while others != 0 {
            let escape_at = (at + others.trailing_zeros() as usize).checked_sub(1)?;
            skip_escape(bytes, escape_at)?;
            others &= others - 1;
        }
        escaped |= backslashes & inside != 0;
        if closing != 0 {
            return Some((at + closing.trailing_zeros() as usize + 1, escaped));
        }
        at += 64;
    }
}

/// Past the escape whose backslash is at `at`, when it is a valid one.
#[inline(always)]
fn skip_escape(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at + 1)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(at + 2),
        b'u' => bytes
            .get(at + 2..at + 6)?
            .iter()
            .all(u8::is_ascii_hexdigit)
            .then_some(at + 6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Where serde_json ends the string that starts `text`, if it accepts it.
    fn serde_json_end(text: &str) -> Option<usize> {
        let mut values = serde_json::Deserializer::from_str(text).into_iter::<IgnoredAny>();
        match values.next() {
            Some(Ok(_)) => Some(values.byte_offset()),
            _ => None,
        }
    }

    /// Strings dense in what matters to the blocks: quotes, runs of
    /// backslashes, escapes of every kind, control characters, non-ASCII.
    fn string_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => "[a-z0-9 {}:,]{1,12}",
            3 => Just("\\\"".to_owned()),
            2 => "\\\\{1,5}",
            1 => Just("\\n".to_owned()),
            1 => Just("\\/".to_owned()),
            1 => "\\\\u[0-9a-fA-F]{4}",
            1 => "\\\\u[0-9a-gA-G]{0,4}",
            1 => Just("\\x".to_owned()),
            1 => Just("\t".to_owned()),
            1 => Just("\"".to_owned()),
            1 => Just("caf\u{e9}\u{1F600}".to_owned()),
        ];
        prop::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_000))]

        /// The 64-byte blocks end and refuse strings exactly as the word
        /// loop does, and as serde_json does, at any offset and length.
        #[test]
        fn long_strings_end_where_the_word_loop_and_serde_json_end_them(
            lead in "[ a]{0,70}",
            body in string_text(),
            closed in any::<bool>(),
        ) {
            let text = format!("{lead}\"{body}{}", if closed { "\"" } else { "" });
            let bytes = text.as_bytes();
            let at = lead.len() + 1;
            let by_words = match skip_string_words(bytes, at, usize::MAX) {
                Scanned::End(end, escaped) => Some((end, escaped)),
                _ => None,
            };
            prop_assert_eq!(skip_string(bytes, at), by_words);
            prop_assert_eq!(
                skip_string(bytes, at).map(|(end, _)| end),
                serde_json_end(&text[lead.len()..]).map(|end| end + lead.len())
            );
        }
    }

    #[test]
    fn strings_end_at_their_closing_quote_and_bad_ones_are_refused() {
        let end = |text: &str| skip_string(text.as_bytes(), 1);
        assert_eq!(end(r#""abc""#), Some((5, false)));
        let long = r#""a long string, past eight bytes""#;
        assert_eq!(end(long), Some((long.len(), false)));
        assert_eq!(end(r#""{\"a\":\"b\"}", 1"#), Some((15, true)));
        assert_eq!(end(r#""\\""#), Some((4, true)));
        assert_eq!(end(r#""\u00e9 and \uD83D\uDE00""#), Some((25, true)));
        assert_eq!(end(r#""\x""#), None);
        assert_eq!(end(r#""\u12G4""#), None);
        assert_eq!(end("\"tab\there\""), None);
        assert_eq!(end(r#""unterminated"#), None);
        assert_eq!(end(r#""ends in a backslash\"#), None);
        assert_eq!(
            end("\"caf\u{e9} \u{1F600}\""),
            Some(("\"caf\u{e9} \u{1F600}\"".len(), false))
        );
    }
}
