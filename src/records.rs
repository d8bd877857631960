//! Walking the records of a [`Unit`]: one per line, per array element, per
//! JSON value of a document, or per row of a CSV table, with ListTraces
//! pages, FunctionGraph events and arrays of traces unwrapped wherever they
//! appear (at most [`MAX_NESTING`] deep). The scan and the stream API both
//! walk records this way.

use crate::input::{csv_column, csv_delimiter, Layout, Unit};
use crate::trace::{Trace, TraceFields, TraceHead};
use serde_json::value::RawValue;

// Where a record is: defined with the cutting of units (`input`), named
// here too, where every visitor meets it.
pub use crate::input::Location;

/// What a walk over records reports.
///
/// ```
/// use cts_audit::records::{visit_value, Location, Visitor};
/// use cts_audit::trace::{Trace, TraceFields};
/// #[derive(Default)]
/// struct Names(Vec<String>);
/// impl Visitor for Names {
///     const FULL: bool = true;
///     fn trace(&mut self, trace: &Trace<'_>, _: &str, _: Location) {
///         self.0.push(trace.name().to_owned());
///     }
///     fn problem(&mut self, location: Location, message: String) {
///         self.0.push(format!("{}: {message}", location.describe()));
///     }
/// }
/// let mut names = Names::default();
/// visit_value(r#"{"cts":{"trace_name":"payOrder"}}"#, Location::Record(1), &mut names);
/// assert_eq!(names.0, ["payOrder"]);
/// ```
pub trait Visitor {
    /// True when every record should be parsed whole and given to
    /// [`Visitor::trace`]; false to get only its [`TraceHead`] and text in
    /// [`Visitor::head`], and parse the rest when needed.
    const FULL: bool;
    /// A parsed trace and its text (when `FULL`).
    fn trace(&mut self, _trace: &Trace<'_>, _text: &str, _location: Location) {}
    /// The head of a trace and its text (when not `FULL`).
    fn head(&mut self, _head: &TraceHead<'_>, _text: &str, _location: Location) {}
    /// A record that could not be read.
    fn problem(&mut self, location: Location, message: String);
    /// An integrity digest, recognised by content.
    fn digest(&mut self) {}

    /// A page of bill records was found instead of traces.
    fn bill_page(&mut self) {}
    /// The record at `location` was damaged and is read salvaged
    /// ([`crate::trace::salvage`]): each repair, and the key fields given
    /// twice. Called just before the record's trace or head.
    fn repaired(&mut self, _location: Location, _warnings: &[String], _duplicate_keys: &[String]) {}
}

/// Walks every record of `unit`.
///
/// ```
/// use cts_audit::input::read_units;
/// use cts_audit::records::{visit_unit, Location, Visitor};
/// use cts_audit::trace::TraceHead;
/// #[derive(Default)]
/// struct Count { heads: u32, problems: Vec<String> }
/// impl Visitor for Count {
///     const FULL: bool = false; // heads only: the cheapest walk
///     fn head(&mut self, _: &TraceHead<'_>, _: &str, _: Location) { self.heads += 1; }
///     fn problem(&mut self, location: Location, _: String) { self.problems.push(location.describe()); }
/// }
/// let text = b"{\"trace_id\":\"a\"}\n{broken\n{\"trace_id\":\"b\"}\n";
/// let mut count = Count::default();
/// read_units(0, &mut &text[..], &mut |unit| visit_unit(&unit, &mut count));
/// assert_eq!((count.heads, count.problems), (2, vec!["line 2".to_owned()]));
/// ```
pub fn visit_unit<V: Visitor>(unit: &Unit, visitor: &mut V) {
    // One UTF-8 check for the whole block is far cheaper than one per
    // string; only a block that fails is checked record by record.
    let text = simdutf8::basic::from_utf8(&unit.bytes).ok();
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
        Layout::Csv => visit_csv(&unit.bytes, visitor),
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

/// The rows of a CSV table of traces. Each row becomes a trace object with
/// the fields its header names ([`csv_column`]) and then goes the way of
/// every other record, reported by its line in the file.
fn visit_csv<V: Visitor>(bytes: &[u8], visitor: &mut V) {
    let header = &bytes[..memchr::memchr(b'\n', bytes).unwrap_or(bytes.len())];
    let delimiter = csv_delimiter(header).unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(bytes);
    let columns: Vec<Option<&'static str>> = match reader.byte_headers() {
        Ok(headers) => headers
            .iter()
            .map(|h| std::str::from_utf8(h).ok().and_then(csv_column))
            .collect(),
        Err(err) => {
            return visitor.problem(Location::Line(1), format!("unreadable CSV header: {err}"))
        }
    };
    // The line a row starts on, from its byte offset: the reader's own line
    // count skips blank lines and counts a CRLF twice. Rows come in order,
    // so only the bytes since the last row are counted.
    let (mut counted_to, mut lines_before) = (0, 0);
    let mut line_at = |position: Option<&csv::Position>| {
        let start = position
            .map_or(0, |p| p.byte() as usize)
            .clamp(counted_to, bytes.len());
        lines_before += memchr::memchr_iter(b'\n', &bytes[counted_to..start]).count();
        counted_to = start;
        let blank = bytes[start..]
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .filter(|&&b| b == b'\n')
            .count();
        1 + (lines_before + blank) as u64
    };
    let mut row = csv::ByteRecord::new();
    loop {
        let start = reader.position().byte() as usize;
        match reader.read_byte_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {
                let line = line_at(row.position());
                match csv_trace(&columns, &row) {
                    Ok(text) => visit_value(&text, Location::Line(line), visitor),
                    Err(message) => visitor.problem(Location::Line(line), message),
                }
            }
            Err(err) => {
                let line = line_at(err.position());
                // A row of the wrong length over several lines: an
                // unbalanced quote may have swallowed the rows after it.
                let end = reader.position().byte() as usize;
                let unequal = matches!(err.kind(), csv::ErrorKind::UnequalLengths { .. });
                if unequal && resync_quote(bytes, start..end, line, &columns, delimiter, visitor) {
                    continue;
                }
                let message = match err.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("a CSV row of {len} cells under a header of {expected_len}"),
                    _ => format!("unreadable CSV: {err}"),
                };
                visitor.problem(Location::Line(line), message);
                // Only a row of the wrong length lets the reader go on.
                if !matches!(err.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                    break;
                }
            }
        }
    }
}

/// A row of the wrong length that runs over several lines because a quote
/// in its first line never closed where it should have, swallowing the
/// rows after it: when every later line of `range` is a whole row on its
/// own (as many cells as the header), the quote is taken as damage. The first line is read with
/// its quotes taken literally when that gives a whole row (with a
/// warning), else it is a record error; the later lines are read as the
/// rows they are. False when the row is not such damage (a cell that
/// really holds a line break), and nothing was visited.
fn resync_quote<V: Visitor>(
    bytes: &[u8],
    range: std::ops::Range<usize>,
    first_line: u64,
    columns: &[Option<&'static str>],
    delimiter: u8,
    visitor: &mut V,
) -> bool {
    let Some(span) = bytes.get(range) else {
        return false;
    };
    // The reader's position can sit before the line break that ended the
    // last row; the row itself starts after the breaks.
    let breaks = span
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    let span = &span[breaks..];
    let span = span.strip_suffix(b"\n").unwrap_or(span);
    let mut lines = span
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let Some(first) = lines.next() else {
        return false;
    };
    let rest: Vec<&[u8]> = lines.collect();
    if rest.is_empty() {
        return false;
    }
    let whole_row = |line: &[u8], quoting: bool| -> Option<csv::ByteRecord> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .quoting(quoting)
            .from_reader(line);
        let mut row = csv::ByteRecord::new();
        match reader.read_byte_record(&mut row) {
            Ok(true) if row.len() == columns.len() => {
                // One row only: nothing after it.
                let mut next = csv::ByteRecord::new();
                matches!(reader.read_byte_record(&mut next), Ok(false)).then_some(row)
            }
            _ => None,
        }
    };
    let rows: Option<Vec<csv::ByteRecord>> = rest
        .iter()
        .filter(|line| !line.trim_ascii().is_empty())
        .map(|line| whole_row(line, true))
        .collect();
    let Some(rows) = rows.filter(|rows| !rows.is_empty()) else {
        return false;
    };
    let location = Location::Line(first_line);
    match whole_row(first, false).map(|row| csv_trace(columns, &row)) {
        Some(Ok(text)) => {
            visitor.repaired(
                location,
                &[
                    "an unbalanced quote: the row is read with its quotes taken literally, \
                   and the lines after it as rows of their own"
                        .to_owned(),
                ],
                &[],
            );
            visit_value(&text, location, visitor);
        }
        _ => visitor.problem(
            location,
            "an unbalanced quote: this row cannot be read; the lines after it are read as rows \
             of their own"
                .into(),
        ),
    }
    let mut rows = rows.into_iter();
    for (k, line) in rest.iter().enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        let location = Location::Line(first_line + 1 + k as u64);
        match rows.next().map(|row| csv_trace(columns, &row)) {
            Some(Ok(text)) => visit_value(&text, location, visitor),
            Some(Err(message)) => visitor.problem(location, message),
            None => {}
        }
    }
    true
}

/// One CSV row as the JSON text of a trace. Empty cells are left out; an
/// `Operator` that is not a JSON object is the user's name; a dotted column
/// ([`csv_column`]) fills a field inside an object. A field given twice
/// keeps the first value.
fn csv_trace(columns: &[Option<&'static str>], row: &csv::ByteRecord) -> Result<String, String> {
    use serde_json::{Map, Value};
    let mut trace = Map::new();
    for (column, cell) in columns.iter().zip(row) {
        let Some(field) = column else { continue };
        let Ok(cell) = std::str::from_utf8(cell) else {
            return Err(format!("invalid UTF-8 in the {field} column"));
        };
        // This tool's own CSV guards formula-like cells with a `'`.
        let cell = crate::report::unescape_cell(cell.trim());
        if cell.is_empty() {
            continue;
        }
        match *field {
            "user" => match serde_json::from_str::<Map<String, Value>>(cell) {
                Ok(user) => {
                    for (key, value) in user {
                        set_path(&mut trace, &["user", &key], value);
                    }
                }
                Err(_) => set_path(&mut trace, &["user", "name"], cell.into()),
            },
            "trace_rating" => set_path(&mut trace, &[field], cell.to_ascii_lowercase().into()),
            _ => set_path(
                &mut trace,
                &field.split('.').collect::<Vec<_>>(),
                cell.into(),
            ),
        }
    }
    Ok(Value::Object(trace).to_string())
}

/// Sets the field at `path` in `object`, making the objects on the way. A
/// field that already holds a value keeps it, and a path through a value
/// that is not an object stops there.
fn set_path(
    object: &mut serde_json::Map<String, serde_json::Value>,
    path: &[&str],
    value: serde_json::Value,
) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut object = object;
    for parent in parents {
        let next = object
            .entry(*parent)
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        match next {
            serde_json::Value::Object(inner) => object = inner,
            _ => return,
        }
    }
    object.entry(*last).or_insert(value);
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
                let message = format!("invalid UTF-8 at byte {at} of the record");
                return visit_salvaged(&bytes[range], location, 0, visitor, message);
            }
        },
    };
    match record {
        Some(record) => visit_value(record.trim_ascii(), location, visitor),
        None => visitor.problem(location, "record not cut at a character boundary".into()),
    }
}

/// Pages, events and arrays nest at most this deep (an LTS line holding an
/// event holding a trace is two); deeper is damage, and walking it would
/// exhaust the stack.
///
/// ```
/// use cts_audit::records::{visit_value, Location, Visitor, MAX_NESTING};
/// struct Problems(Vec<String>);
/// impl Visitor for Problems {
///     const FULL: bool = false;
///     fn problem(&mut self, _: Location, message: String) { self.0.push(message); }
/// }
/// let deep = format!("{}{{}}{}", "[".repeat(MAX_NESTING as usize + 2), "]".repeat(MAX_NESTING as usize + 2));
/// let mut problems = Problems(Vec::new());
/// visit_value(&deep, Location::Line(1), &mut problems);
/// assert!(problems.0[0].contains("nested more than 8 deep"));
/// ```
pub const MAX_NESTING: u32 = 8;

/// One JSON value: a trace, a page or event that wraps traces, or an array
/// of any of these (one compact OBS transfer file per line, say).
///
/// ```
/// use cts_audit::records::{visit_value, Location, Visitor};
/// use cts_audit::trace::TraceHead;
/// struct Locations(Vec<Location>);
/// impl Visitor for Locations {
///     const FULL: bool = false;
///     fn head(&mut self, _: &TraceHead<'_>, _: &str, location: Location) { self.0.push(location); }
///     fn problem(&mut self, _: Location, _: String) {}
/// }
/// let mut seen = Locations(Vec::new());
/// // One line of an LTS export holding a whole OBS transfer file: an array.
/// visit_value(r#"[{"trace_id":"a"},{"trace_id":"b"}]"#, Location::Line(4), &mut seen);
/// assert_eq!(seen.0, [Location::NestedInLine(4, 1), Location::NestedInLine(4, 2)]);
/// ```
pub fn visit_value<V: Visitor>(text: &str, location: Location, visitor: &mut V) {
    visit_nested(text, location, 0, visitor);
}

fn visit_nested<V: Visitor>(text: &str, location: Location, depth: u32, visitor: &mut V) {
    if depth > MAX_NESTING {
        return visitor.problem(
            location,
            format!("traces nested more than {MAX_NESTING} deep in pages, events or arrays"),
        );
    }
    if text.starts_with('[') {
        match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(values) => {
                for (k, raw) in values.iter().enumerate() {
                    visit_nested(raw.get(), location.nested(k as u64 + 1), depth + 1, visitor);
                }
            }
            Err(err) => visitor.problem(location, format!("invalid JSON array: {err}")),
        }
    } else if V::FULL {
        match Trace::from_str(text) {
            Ok(trace) => {
                if unwrap(&trace, location, depth, visitor) {
                    visitor.trace(&trace, text, location);
                }
            }
            Err(err) => visit_salvaged(
                text.as_bytes(),
                location,
                depth,
                visitor,
                format!("invalid trace: {err}"),
            ),
        }
    } else {
        match TraceHead::from_str(text) {
            Ok(head) => {
                if unwrap(&head, location, depth, visitor) {
                    visitor.head(&head, text, location);
                }
            }
            Err(err) => visit_salvaged(
                text.as_bytes(),
                location,
                depth,
                visitor,
                format!("invalid trace: {err}"),
            ),
        }
    }
}

/// A record serde_json refused: read salvaged when it is one whole object
/// ([`crate::trace::salvage`]), so that damage in one field cannot hide
/// it; else a record error with `message`.
fn visit_salvaged<V: Visitor>(
    bytes: &[u8],
    location: Location,
    depth: u32,
    visitor: &mut V,
    message: String,
) {
    let Some(salvaged) = crate::trace::salvage(bytes) else {
        return visitor.problem(location, message);
    };
    // A repaired record that still does not read (a page whose `traces`
    // is no array, say) stays a record error.
    let readable = if V::FULL {
        Trace::from_str(&salvaged.text).is_ok()
    } else {
        TraceHead::from_str(&salvaged.text).is_ok()
    };
    if !readable || salvaged.warnings.is_empty() {
        return visitor.problem(location, message);
    }
    visitor.repaired(location, &salvaged.warnings, &salvaged.duplicate_keys);
    visit_nested(&salvaged.text, location, depth, visitor);
}

/// Walks the traces a page or event wraps; true when `value` is a trace itself.
fn unwrap<'a, V: Visitor>(
    value: &impl TraceFields<'a>,
    location: Location,
    depth: u32,
    visitor: &mut V,
) -> bool {
    if let Some(traces) = value.page() {
        for (k, raw) in traces.iter().enumerate() {
            visit_nested(raw.get(), location.nested(k as u64 + 1), depth + 1, visitor);
        }
        false
    } else if let Some(inner) = value.event() {
        visit_nested(inner.get(), location, depth + 1, visitor);
        false
    } else if value.is_digest() {
        visitor.digest();
        false
    } else if value.is_bill_page() {
        visitor.bill_page();
        false
    } else {
        true
    }
}
