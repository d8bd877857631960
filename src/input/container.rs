//! Telling the containers apart by content (a JSON array, JSON lines, one document, a CSV table), and reading a CSV header.

/// How the records of a file are laid out.
///
/// ```
/// use cts_audit::input::Container;
/// assert_eq!(Container::detect(b"{\"trace_id\":\"a\"}\n{\"trace_id\":\"b\"}\n"), Some(Container::Lines));
/// assert_eq!(Container::detect(b"{\n  \"cts\": {}\n}\n"), Some(Container::Document));
/// assert_eq!(Container::detect(b"Trace Name,Resource Type\n"), Some(Container::Csv));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// A JSON array of traces (OBS transfer files), compact or pretty.
    Array,
    /// One JSON value per line (LTS).
    Lines,
    /// One or more whole JSON values: an API page, a FunctionGraph event, a
    /// single (possibly pretty-printed) trace.
    Document,
    /// A CSV table whose header names trace fields: the console's trace-list
    /// export (at most 5,000 rows), or a spreadsheet of traces. See
    /// [`csv_column`].
    Csv,
}

impl Container {
    /// Detects the layout from the first bytes of the content (after a BOM
    /// and white space). `None` when there is nothing but white space.
    ///
    /// ```
    /// use cts_audit::input::Container;
    /// assert_eq!(Container::detect(b"\xEF\xBB\xBF [{\"trace_id\":\"a\"}]"), Some(Container::Array));
    /// assert_eq!(Container::detect(b"{\"a\":1}\r\n{\"a\":2}\n"), Some(Container::Lines));
    /// assert_eq!(Container::detect(b"{\n  \"traces\": []\n}"), Some(Container::Document));
    /// assert_eq!(Container::detect(b"Trace Name,Resource Type,Operator\r\n"), Some(Container::Csv));
    /// assert_eq!(Container::detect(b"  \n"), None);
    /// ```
    pub fn detect(head: &[u8]) -> Option<Container> {
        let text = strip_bom(head);
        let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
        let text = &text[start..];
        match text[0] {
            b'[' => Some(Container::Array),
            b'{' => {
                let first_line = &text[..memchr::memchr(b'\n', text).unwrap_or(text.len())];
                if first_line.trim_ascii_end().ends_with(b"}") {
                    Some(Container::Lines)
                } else {
                    Some(Container::Document)
                }
            }
            _ if memchr::memchr(b'\n', text)
                .is_some_and(|end| csv_delimiter(&text[..end]).is_some()) =>
            {
                Some(Container::Csv)
            }
            // Anything else is not JSON we know; let the line reader report it.
            _ => Some(Container::Lines),
        }
    }
}

/// The trace field a CSV column holds, by its header: a field's own name
/// (`trace_name`) or the console's label (`Trace Name`), in any case, with
/// spaces, `_` or `-` between words. The console's trace list shows Trace
/// Name, Resource Type, Trace Source, Resource ID, Resource Name, Trace
/// Status, Operator and Operation Time (reference §2.1); its CSV columns are
/// not documented, so columns are matched by name, never by position.
///
/// A field inside an object is a dotted path: the columns of this tool's own
/// `--format csv` that are not trace fields (`user_type`, `domain`,
/// `root_user`, `error_code`) go back where the trace keeps them, so that
/// output read back gives the same verdicts.
///
/// ```
/// use cts_audit::input::csv_column;
/// assert_eq!(csv_column("Trace Source"), Some("service_type"));
/// assert_eq!(csv_column(" operation_time "), Some("time"));
/// assert_eq!(csv_column("domain"), Some("user.domain.name"));
/// assert_eq!(csv_column("Region"), None);
/// ```
pub fn csv_column(header: &str) -> Option<&'static str> {
    let key: String = header
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Some(match key.as_str() {
        "traceid" => "trace_id",
        "tracename" => "trace_name",
        "tracesource" | "servicetype" | "service" => "service_type",
        "resourcetype" => "resource_type",
        "resourceid" => "resource_id",
        "resourcename" => "resource_name",
        "tracestatus" | "tracerating" | "rating" | "status" => "trace_rating",
        "tracetype" => "trace_type",
        "operator" | "user" | "username" => "user",
        "usertype" => "user.type",
        "domain" | "domainname" | "account" => "user.domain.name",
        "rootuser" => "user.principal_is_root_user",
        "errorcode" => "response.error_code",
        "operationtime" | "time" => "time",
        "recordtime" => "record_time",
        "sourceip" => "source_ip",
        "code" | "httpcode" => "code",
        "request" => "request",
        "response" => "response",
        "message" => "message",
        "eventtype" => "event_type",
        "domainid" => "domain_id",
        "projectid" => "project_id",
        "trackername" => "tracker_name",
        "requestid" => "request_id",
        "apiversion" => "api_version",
        _ => return None,
    })
}

/// The delimiter under which `header` (a table's first line) names trace
/// fields ([`csv_column`]): `Trace Name` and at least one more. Commas
/// first; a spreadsheet set to a European locale writes semicolons, and a
/// "text" export tabs.
///
/// ```
/// use cts_audit::input::csv_delimiter;
/// assert_eq!(csv_delimiter(b"Trace Name,Trace Source"), Some(b','));
/// assert_eq!(csv_delimiter(b"Trace Name;Resource Type;Operator"), Some(b';'));
/// assert_eq!(csv_delimiter(b"Trace Name\tTrace Status"), Some(b'\t'));
/// assert_eq!(csv_delimiter(b"name,age"), None);
/// ```
pub fn csv_delimiter(header: &[u8]) -> Option<u8> {
    [b',', b';', b'\t'].into_iter().find(|&delimiter| {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .delimiter(delimiter)
            .from_reader(header);
        let Some(Ok(cells)) = reader.byte_records().next() else {
            return false;
        };
        let fields: Vec<_> = cells
            .iter()
            .filter_map(|cell| std::str::from_utf8(cell).ok().and_then(csv_column))
            .collect();
        fields.contains(&"trace_name") && fields.len() >= 2
    })
}

/// Drops a UTF-8 byte-order mark.
///
/// ```
/// assert_eq!(cts_audit::input::strip_bom(b"\xEF\xBB\xBF[]"), b"[]");
/// assert_eq!(cts_audit::input::strip_bom(b"[]"), b"[]");
/// ```
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}
