//! Walking the records of a [`Unit`]: one per line, per array element, or
//! per JSON value of a document, with ListTraces pages and FunctionGraph
//! events unwrapped wherever they appear. The scan and the stream API both
//! walk records this way.

use crate::input::{Layout, Unit};
use crate::trace::Trace;
use serde_json::value::RawValue;
use std::path::Path;

/// Where a record is, for messages and the `source` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// A line of JSON lines (1-based).
    Line(u64),
    /// An element of an array, or a value of a document (1-based).
    Record(u64),
    /// The M-th trace of the page at record (or line) N.
    Nested(u64, u64),
}

impl Location {
    /// `line 7`, `record 3`, `record 1, trace 2`.
    pub fn describe(self) -> String {
        match self {
            Location::Line(n) => format!("line {n}"),
            Location::Record(n) => format!("record {n}"),
            Location::Nested(n, m) => format!("record {n}, trace {m}"),
        }
    }

    /// `FILE:LINE`, `FILE#N` or `FILE#N.M`.
    pub fn source(self, file: &Path) -> String {
        match self {
            Location::Line(n) => format!("{}:{n}", file.display()),
            Location::Record(n) => format!("{}#{n}", file.display()),
            Location::Nested(n, m) => format!("{}#{n}.{m}", file.display()),
        }
    }

    fn nested(self, inner: u64) -> Location {
        match self {
            Location::Line(n) | Location::Record(n) | Location::Nested(n, _) => {
                Location::Nested(n, inner)
            }
        }
    }
}

/// What a walk over records reports.
pub trait Visitor {
    /// A parsed trace.
    fn trace(&mut self, trace: &Trace<'_>, location: Location);
    /// A record that could not be read.
    fn problem(&mut self, location: Location, message: String);
    /// An integrity digest, recognised by content.
    fn digest(&mut self) {}
}

/// Walks every record of `unit`.
pub fn visit_unit(unit: &Unit, visitor: &mut impl Visitor) {
    // One UTF-8 check for the whole block is far cheaper than one per
    // string; only a block that fails is checked record by record.
    let text = std::str::from_utf8(&unit.bytes).ok();
    match &unit.layout {
        Layout::Lines { first_line } => {
            let mut start = 0;
            let ends =
                memchr::memchr_iter(b'\n', &unit.bytes).chain(std::iter::once(unit.bytes.len()));
            for (line_no, end) in (*first_line..).zip(ends) {
                if !unit.bytes[start..end].trim_ascii().is_empty() {
                    visit_slice(
                        &unit.bytes,
                        text,
                        start..end,
                        Location::Line(line_no),
                        visitor,
                    );
                }
                start = end + 1;
            }
        }
        Layout::Elements {
            first_index,
            ranges,
        } => {
            for (k, &(start, end)) in ranges.iter().enumerate() {
                visit_slice(
                    &unit.bytes,
                    text,
                    start as usize..end as usize,
                    Location::Record(first_index + k as u64),
                    visitor,
                );
            }
        }
        Layout::Document => {
            let mut values =
                serde_json::Deserializer::from_slice(&unit.bytes).into_iter::<&RawValue>();
            let mut index = 1;
            loop {
                match values.next() {
                    Some(Ok(raw)) => visit_value(raw.get(), Location::Record(index), visitor),
                    Some(Err(err)) => {
                        visitor.problem(Location::Record(index), format!("invalid JSON: {err}"));
                        break;
                    }
                    None => break,
                }
                index += 1;
            }
        }
    }
}

/// One record's bytes, cut at ASCII delimiters from a unit whose text is
/// `text` when the unit is valid UTF-8.
fn visit_slice(
    bytes: &[u8],
    text: Option<&str>,
    range: std::ops::Range<usize>,
    location: Location,
    visitor: &mut impl Visitor,
) {
    let record = match text {
        Some(text) => text.get(range.clone()),
        None => match std::str::from_utf8(&bytes[range.clone()]) {
            Ok(record) => Some(record),
            Err(err) => {
                let at = err.valid_up_to();
                return visitor.problem(
                    location,
                    format!("invalid UTF-8 at byte {at} of the record"),
                );
            }
        },
    };
    match record {
        Some(record) => visit_value(record.trim_ascii(), location, visitor),
        None => visitor.problem(location, "record not cut at a character boundary".into()),
    }
}

/// One JSON value: a trace, or a page or event that wraps traces.
pub fn visit_value(text: &str, location: Location, visitor: &mut impl Visitor) {
    let trace = match Trace::from_str(text) {
        Ok(trace) => trace,
        Err(err) => return visitor.problem(location, format!("invalid trace: {err}")),
    };
    if let Some(traces) = &trace.traces {
        for (k, raw) in traces.iter().enumerate() {
            visit_value(raw.get(), location.nested(k as u64 + 1), visitor);
        }
    } else if let Some(inner) = trace.cts {
        visit_value(inner.get(), location, visitor);
    } else if trace.digest_object.is_some() {
        visitor.digest();
    } else {
        visitor.trace(&trace, location);
    }
}
