//! Reading and validating catalog CSV text.
//!
//! Shared by `build.rs` (through `#[path]`) and the library's tests, so the
//! rules a row must follow are written once. Depends on `csv` and the sibling
//! `vocab` module only.

use super::vocab::{Activity, Category, Scope, Severity};

/// The header every catalog file starts with.
pub const COLUMNS: [&str; 8] = [
    "trace_name",
    "resource_type",
    "operation",
    "category",
    "severity",
    "scope",
    "activity",
    "source",
];

/// One validated catalog row.
#[derive(Debug)]
pub struct Row {
    pub trace_name: String,
    pub resource_type: String,
    pub operation: String,
    pub category: Category,
    pub severity: Severity,
    pub scope: Scope,
    pub activity: Activity,
    pub source: String,
}

/// A row that breaks the rules, with its 1-based line number.
#[derive(Debug)]
pub struct RowError {
    pub line: u64,
    pub reason: String,
}

/// Trace names follow CTS's documented alphabet: a letter, then letters,
/// digits, `-`, `.` or `_`, 64 characters at most.
pub fn valid_trace_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

fn known<T: Copy>(all: &[T], as_str: fn(T) -> &'static str) -> String {
    all.iter()
        .map(|v| as_str(*v))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses one catalog file's text; stops at the first bad row.
pub fn parse(text: &str) -> Result<Vec<Row>, RowError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let header = reader.headers().map_err(|err| RowError {
        line: 1,
        reason: format!("unreadable header: {err}"),
    })?;
    if !header.iter().eq(COLUMNS.iter().copied()) {
        return Err(RowError {
            line: 1,
            reason: format!("the header must be {}", COLUMNS.join(",")),
        });
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|err| RowError {
            line: err.position().map_or(0, |p| p.line()),
            reason: format!("malformed row: {err}"),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let bad = |reason: String| RowError { line, reason };
        let field = |i: usize| record.get(i).unwrap_or("").trim();
        if let Some(i) = (0..COLUMNS.len()).find(|&i| field(i).is_empty()) {
            return Err(bad(format!("empty {}", COLUMNS[i])));
        }
        if !valid_trace_name(field(0)) {
            return Err(bad(format!("invalid trace name {:?}", field(0))));
        }
        let category = Category::parse(field(3)).ok_or_else(|| {
            bad(format!(
                "unknown category {:?} (expected one of: {})",
                field(3),
                known(Category::ALL, Category::as_str)
            ))
        })?;
        let severity = Severity::parse(field(4)).ok_or_else(|| {
            bad(format!(
                "unknown severity {:?} (expected one of: {})",
                field(4),
                known(Severity::ALL, Severity::as_str)
            ))
        })?;
        let scope = Scope::parse(field(5)).ok_or_else(|| {
            bad(format!(
                "unknown scope {:?} (expected one of: {})",
                field(5),
                known(Scope::ALL, Scope::as_str)
            ))
        })?;
        let activity = Activity::parse(field(6)).ok_or_else(|| {
            bad(format!(
                "unknown activity {:?} (expected one of: {})",
                field(6),
                known(Activity::ALL, Activity::as_str)
            ))
        })?;
        if category == Category::Read && severity > Severity::Info {
            return Err(bad(
                "a read is never flagged: its severity must be none or info".into(),
            ));
        }
        rows.push(Row {
            trace_name: field(0).to_owned(),
            resource_type: field(1).to_owned(),
            operation: field(2).to_owned(),
            category,
            severity,
            scope,
            activity,
            source: field(7).to_owned(),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "trace_name,resource_type,operation,category,severity,scope,activity,source\n";

    fn error_of(body: &str) -> RowError {
        parse(&format!("{HEADER}{body}")).expect_err("the row is malformed")
    }

    #[test]
    fn good_rows_parse() {
        let rows = parse(&format!(
            "{HEADER}payOrder,cloudresouce,Payment,payment,medium,billing,create,000.txt\n"
        ))
        .unwrap();
        assert_eq!(rows[0].category, Category::Payment);
        assert_eq!(rows[0].severity, Severity::Medium);
    }

    #[test]
    fn malformed_rows_name_their_line_and_reason() {
        let ok = "payOrder,cloudresouce,Payment,payment,medium,billing,create,src\n";
        let e = error_of(&format!(
            "{ok}bindCard,order,Adding a card,payment_method,severe,billing,create,src\n"
        ));
        assert_eq!(e.line, 3);
        assert!(
            e.reason.contains("unknown severity \"severe\""),
            "{}",
            e.reason
        );

        let e = error_of("bindCard,order,Adding a card,cards,high,billing,create,src\n");
        assert!(e.reason.contains("unknown category"), "{}", e.reason);
        let e = error_of("bindCard,order,Adding a card,payment_method,high\n");
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("malformed row"), "{}", e.reason);
        let e = error_of("9card,order,x,payment_method,high,billing,create,src\n");
        assert!(e.reason.contains("invalid trace name"), "{}", e.reason);
        let e = error_of("queryBill,bill,x,read,high,billing,create,src\n");
        assert!(e.reason.contains("never flagged"), "{}", e.reason);
        let e = error_of("queryBill,,x,read,none,billing,create,src\n");
        assert!(e.reason.contains("empty resource_type"), "{}", e.reason);
        assert_eq!(parse("name,type\n").unwrap_err().line, 1);
    }
}
