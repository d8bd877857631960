//! The writers of verdicts ([`crate::verdict::Verdict`]): JSON lines, CSV,
//! OCSF and ECS, and the escaping every human-facing output needs.
//!
//! Field meanings are documented in `docs/OUTPUT.md`. The HTML report
//! ([`html`], feature `html`) folds verdicts into one page.

#[cfg(feature = "html")]
pub mod fold;
#[cfg(feature = "html")]
pub mod html;

use crate::rules::RuleSet;
use crate::verdict::{Verdict, CSV_HEADER};
use std::borrow::Cow;
use std::io::Write;

/// How emitted records are written.
///
/// ```
/// use cts_audit::{analyze::Analyzer, report::{render, Format}, rules::RuleSet};
/// let verdict = Analyzer::default().analyze_str(r#"{"trace_name":"payOrder","service_type":"CBC"}"#).unwrap();
/// for format in [Format::Jsonl, Format::Csv, Format::Ocsf, Format::Ecs] {
///     let mut out = Vec::new();
///     render(&verdict, format, &RuleSet::builtin(), &mut out);
///     assert!(out.ends_with(b"\n"), "one line per record in {format:?}");
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// CSV rows (see [`CSV_HEADER`]); lists are joined with `; `.
    Csv,
    /// One OCSF API Activity (class 6003) object per line; see docs/SIEM.md.
    Ocsf,
    /// One Elastic Common Schema object per line; see docs/SIEM.md.
    Ecs,
    /// Not written: the scan hands each verdict itself to its sink
    /// ([`crate::scan::Record::Verdict`]), for a sink that reads fields
    /// (a table, a summary) rather than bytes. [`render`] writes nothing.
    Verdicts,
}

/// Appends one verdict to `out` in `format` (a line for JSONL, a row for CSV).
///
/// ```
/// use cts_audit::{analyze::Analyzer, report::{render, Format}, rules::RuleSet};
/// let verdict = Analyzer::default()
///     .analyze_str(r#"{"trace_id":"t1","trace_name":"deleteResource","service_type":"CBC","resource_type":"cloudresouce"}"#)
///     .unwrap();
/// let mut out = Vec::new();
/// render(&verdict, Format::Jsonl, &RuleSet::builtin(), &mut out);
/// let record: serde_json::Value = serde_json::from_slice(&out).unwrap();
/// assert_eq!((record["trace_id"].as_str(), record["severity"].as_str()), (Some("t1"), Some("high")));
/// ```
pub fn render(verdict: &Verdict<'_>, format: Format, rules: &RuleSet, out: &mut Vec<u8>) {
    match format {
        Format::Ocsf | Format::Ecs => {
            let value = if format == Format::Ocsf {
                crate::siem::ocsf(verdict)
            } else {
                crate::siem::ecs(verdict, None, rules)
            };
            // Serialising a Value into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, &value);
            out.push(b'\n');
        }
        Format::Jsonl => {
            // Serialising plain strings and numbers into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, verdict);
            out.push(b'\n');
        }
        Format::Verdicts => {}
        Format::Csv => {
            // One column per output field.
            let row = CSV_HEADER
                .iter()
                .map(|name| verdict.output_field(name).unwrap_or_default());
            // A small buffer: the default 8 KiB would be zeroed per row.
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .buffer_capacity(512)
                .from_writer(&mut *out);
            let _ = writer.write_record(row.map(|cell| escape_cell(&cell).into_owned()));
            let _ = writer.flush();
        }
    }
}

/// Text for a terminal: control characters (C0, DEL, C1) and the
/// invisible bidirectional overrides shown as visible escapes (`\n`, `\r`,
/// `\t`, `\x1b`, `\u{202e}`), so that no field read from a trace can move
/// the cursor, recolour the screen, forge a line or reorder what is shown.
///
/// ```
/// use cts_audit::report::escape_control;
/// assert_eq!(escape_control("alice\nFAKE ROW critical"), "alice\\nFAKE ROW critical");
/// assert_eq!(escape_control("\u{1b}[31mred"), "\\x1b[31mred");
/// assert_eq!(escape_control("payOrder"), "payOrder"); // borrowed, unchanged
/// ```
pub fn escape_control(text: &str) -> Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !text.contains(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && unsafe_char(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A spreadsheet cell holds at most this many characters (Excel's limit).
pub const MAX_CELL_CHARS: usize = 32_767;

/// A cell safe to open in a spreadsheet: one that starts with `=`, `+`,
/// `-`, `@`, a tab or a carriage return would be read as a formula, so it
/// gets a leading `'`, as OWASP advises (and so does one that starts with
/// `'` and then one of those, so that [`unescape_cell`] gives it back
/// exactly). Cut to [`MAX_CELL_CHARS`].
///
/// ```
/// use cts_audit::report::{escape_cell, unescape_cell};
/// assert_eq!(escape_cell("=HYPERLINK(\"http://x\")"), "'=HYPERLINK(\"http://x\")");
/// assert_eq!(escape_cell("alice"), "alice");
/// for cell in ["=1+1", "'=1+1", "-", "plain", "'quoted"] {
///     assert_eq!(unescape_cell(&escape_cell(cell)), cell);
/// }
/// ```
pub fn escape_cell(cell: &str) -> Cow<'_, str> {
    let formula = |text: &str| text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let prefixed = formula(cell) || cell.strip_prefix('\'').is_some_and(formula);
    let cut = cell
        .char_indices()
        .nth(MAX_CELL_CHARS - usize::from(prefixed))
        .map(|(at, _)| at);
    if !prefixed && cut.is_none() {
        return Cow::Borrowed(cell);
    }
    let kept = &cell[..cut.unwrap_or(cell.len())];
    Cow::Owned(if prefixed {
        format!("'{kept}")
    } else {
        kept.to_owned()
    })
}

/// The cell [`escape_cell`] was given (but for a cut): one leading `'`
/// before a formula character is dropped.
///
/// ```
/// assert_eq!(cts_audit::report::unescape_cell("'@SUM(A1)"), "@SUM(A1)");
/// assert_eq!(cts_audit::report::unescape_cell("'plain"), "'plain");
/// ```
pub fn unescape_cell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) => {
            if rest.starts_with('\'') && !rest[1..].starts_with(['=', '+', '-', '@', '\t', '\r']) {
                cell
            } else {
                rest
            }
        }
        _ => cell,
    }
}

/// Writes the CSV header row.
///
/// ```
/// let mut out = Vec::new();
/// cts_audit::report::write_csv_header(&mut out).unwrap();
/// assert!(out.starts_with(b"trace_id,time,trace_name,"));
/// ```
pub fn write_csv_header(out: &mut impl Write) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer
        .write_record(CSV_HEADER)
        .map_err(std::io::Error::other)?;
    writer.flush()
}
