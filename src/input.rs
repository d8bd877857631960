//! Finding, opening and splitting exported trace files.
//!
//! The path a record takes: [`find`] walks the paths given, in sorted order;
//! [`open`] sniffs gzip by its magic bytes, and a tar archive by its header
//! (its members, read by [`each_tar_member`], take the same path as files);
//! [`Container::detect`] tells an
//! array, JSON lines and a single document apart by content; and
//! [`read_units`] cuts the stream into [`Unit`]s of whole records, in bounded
//! blocks, for the workers.

use memchr::memchr_iter;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// Size of one block of records handed to a worker.
///
/// ```
/// // A block holds thousands of ~1 KB traces: enough to share out, small enough to keep few in flight.
/// assert_eq!(cts_audit::input::BLOCK_BYTES, 4 << 20);
/// ```
pub const BLOCK_BYTES: usize = 4 << 20;

/// A single JSON document (API page, event, pretty-printed trace), or a
/// single record, is read whole; past this size it is refused rather than
/// exhausting memory.
///
/// ```
/// assert!(cts_audit::input::MAX_DOCUMENT_BYTES > cts_audit::input::BLOCK_BYTES);
/// ```
pub const MAX_DOCUMENT_BYTES: usize = 512 << 20;

/// Caps on what one input may make a scan read, so that no input, however
/// large or hostile, holds the scan forever or exhausts memory. Each cap is
/// reported when it is hit, naming the file.
///
/// ```
/// use cts_audit::input::{Limits, UnitReader};
/// let limits = Limits { max_file_bytes: 100, ..Limits::default() };
/// let text: String = (0..50).map(|i| format!("{{\"trace_id\":\"t{i}\"}}\n")).collect();
/// let mut units = UnitReader::new(0, text.as_bytes()).with_limits(limits);
/// let mut read = 0;
/// while let Some(unit) = units.next_unit(&mut Vec::new) {
///     read += unit.bytes.len();
/// }
/// assert!(read <= 100);
/// assert!(units.take_problems()[0].message.contains("over the cap"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes read from one file after decompression; the rest is skipped.
    pub max_file_bytes: u64,
    /// Bytes of one record, or of one JSON document or CSV table read whole.
    pub max_record_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 8 << 30,
            max_record_bytes: MAX_DOCUMENT_BYTES,
        }
    }
}

/// Content that does not start with `{` or `[` must show a line break (a
/// CSV header's end) within this many bytes to be read at all.
const MAX_HEADER_BYTES: usize = 1 << 20;

/// One input to read: a file found under the paths given, stdin (`-`), or a
/// pipe or device named on the command line (`<(zcat …)`, `/dev/stdin`).
///
/// ```
/// use cts_audit::input::find;
/// let dir = std::env::temp_dir().join(format!("cts-audit-input-{}", std::process::id()));
/// std::fs::create_dir_all(dir.join("Digest")).unwrap();
/// std::fs::write(dir.join("a.json"), "[]").unwrap();
/// std::fs::write(dir.join("Digest/x_CloudTrace-Digest_y.json"), "{}").unwrap();
/// let (files, problems) = find(&[dir.clone()]);
/// assert!(problems.is_empty());
/// let digests: Vec<bool> = files.iter().map(|f| f.is_digest).collect();
/// assert_eq!(digests, [true, false]); // sorted: Digest/ before a.json
/// # std::fs::remove_dir_all(dir).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct InputFile {
    /// The path as found; `-` for stdin.
    pub path: PathBuf,
    /// Size on disk (compressed), 0 for stdin.
    pub size: u64,
    /// The name marks it as an OBS integrity digest, not traces.
    pub is_digest: bool,
    /// Stdin, a pipe or a device: read as it comes, never whole, since its
    /// size is not known in advance.
    pub is_stream: bool,
}

impl InputFile {
    /// True for standard input.
    ///
    /// ```
    /// use cts_audit::input::InputFile;
    /// let stdin = InputFile { path: "-".into(), size: 0, is_digest: false, is_stream: true };
    /// assert!(stdin.is_stdin());
    /// ```
    pub fn is_stdin(&self) -> bool {
        self.path.as_os_str() == "-"
    }
}

/// Integrity digests are named `…_CloudTrace-Digest_…` and live under `Digest/`.
///
/// ```
/// use std::path::Path;
/// assert!(cts_audit::input::is_digest_name(Path::new("Digest/ap-southeast-1_CloudTrace-Digest_2024.json.gz")));
/// assert!(!cts_audit::input::is_digest_name(Path::new("CTS/trace_CloudTrace_ap-southeast-1_2024.json.gz")));
/// ```
pub fn is_digest_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.contains("CloudTrace-Digest"))
}

/// Walks `paths` (files, directories recursively, or `-`) in sorted order.
/// A pipe or device named itself is read as a stream; one met inside a
/// directory is not read (it may never end) and is reported, as are paths
/// that cannot be read, as `(path, message)`.
///
/// ```
/// let (files, problems) = cts_audit::input::find(&["samples".into()]);
/// assert!(problems.is_empty());
/// assert!(files.iter().all(|f| !f.path.as_os_str().is_empty() && !f.is_stream));
/// ```
pub fn find(paths: &[PathBuf]) -> (Vec<InputFile>, Vec<(PathBuf, String)>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let stream = |path: &Path| InputFile {
        path: path.to_path_buf(),
        size: 0,
        is_digest: false,
        is_stream: true,
    };
    for path in paths {
        if path.as_os_str() == "-" {
            files.push(stream(path));
            continue;
        }
        let named_stream = std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
        if named_stream {
            files.push(stream(path));
            continue;
        }
        for entry in walkdir::WalkDir::new(path)
            .follow_links(true)
            .sort_by_file_name()
        {
            match entry {
                Ok(entry) if entry.file_type().is_file() => {
                    let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                    let is_digest = is_digest_name(entry.path());
                    files.push(InputFile {
                        path: entry.into_path(),
                        size,
                        is_digest,
                        is_stream: false,
                    });
                }
                Ok(entry) if !entry.file_type().is_dir() => problems.push((
                    entry.into_path(),
                    "not a regular file (a pipe, socket or device inside a directory): not read"
                        .into(),
                )),
                Ok(_) => {}
                Err(err) => {
                    let at = err
                        .path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| path.clone());
                    let message = err
                        .io_error()
                        .map_or_else(|| err.to_string(), ToString::to_string);
                    problems.push((at, message));
                }
            }
        }
    }
    (files, problems)
}

/// What an input holds, as [`open`] finds it.
pub enum Opened {
    /// Content to read for traces, gunzipped when it was gzip.
    Content(Box<dyn Read + Send>),
    /// A tar archive, gunzipped when it was a `.tar.gz`: each member is an
    /// input of its own ([`each_tar_member`]).
    Tar(Box<dyn Read + Send>),
}

/// Opens an input, decompressing gzip (several members allowed) when the
/// content starts with its magic bytes, whatever the file is called, and
/// telling a tar archive (a `.tar.gz` of an OBS download, say) by its
/// header. Plain input is read straight into the caller's buffers, without a
/// second copy.
///
/// ```
/// use cts_audit::input::{open, InputFile, Opened};
/// use std::io::{Read, Write};
/// let path = std::env::temp_dir().join(format!("cts-audit-open-{}.json.gz", std::process::id()));
/// let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
/// gz.write_all(b"[{\"trace_name\":\"payOrder\"}]").unwrap();
/// std::fs::write(&path, gz.finish().unwrap()).unwrap();
/// let input = InputFile { path: path.clone(), size: 0, is_digest: false, is_stream: false };
/// let Ok(Opened::Content(mut content)) = open(&input) else { panic!("not content") };
/// let mut text = String::new();
/// content.read_to_string(&mut text).unwrap(); // gunzipped by its magic bytes
/// assert_eq!(text, "[{\"trace_name\":\"payOrder\"}]");
/// # std::fs::remove_file(path).unwrap();
/// ```
pub fn open(input: &InputFile) -> io::Result<Opened> {
    let content = if input.is_stdin() {
        decompress(io::stdin())?.boxed()
    } else {
        decompress(File::open(&input.path)?)?.boxed()
    };
    Ok(match sniff_tar(content) {
        (true, content) => Opened::Tar(Box::new(content)),
        (false, content) => Opened::Content(Box::new(content)),
    })
}

/// Where a tar header keeps its magic, `ustar`.
const TAR_MAGIC_AT: std::ops::Range<usize> = 257..262;

/// Whether `content` is a tar archive, and the content itself, whole.
fn sniff_tar<R: Read>(mut content: R) -> (bool, Sniffed<R>) {
    let mut head = Vec::with_capacity(TAR_MAGIC_AT.end);
    // A read error here (a gzip stream cut short) is met again, and reported
    // with its place, when the content is read on.
    let _ = (&mut content)
        .take(TAR_MAGIC_AT.end as u64)
        .read_to_end(&mut head);
    let is_tar = head.get(TAR_MAGIC_AT) == Some(b"ustar");
    (is_tar, io::Cursor::new(head).chain(content))
}

/// A regular file inside a tar archive.
pub struct TarMember<'r> {
    /// The archive's path joined with the member's (`bundle.tar.gz/CloudTraces/…`).
    pub path: PathBuf,
    /// Its size in the archive (compressed, when it is gzip).
    pub size: u64,
    /// Its bytes as stored ([`open_member`] reads them); or why it is not
    /// read (a link, a device).
    pub raw: Result<Box<dyn Read + 'r>, String>,
}

/// The content of a member's bytes, gunzipped when it is gzip; or why it is
/// not read (a tar inside the tar, another compression).
///
/// ```
/// use cts_audit::input::open_member;
/// use std::io::Read;
/// let mut text = String::new();
/// open_member(&b"[]"[..]).unwrap().read_to_string(&mut text).unwrap();
/// assert_eq!(text, "[]");
/// assert!(open_member(&b"BZh91AY&SY"[..]).err().unwrap().starts_with("bzip2-compressed"));
/// ```
pub fn open_member<'r, R: Read + 'r>(raw: R) -> Result<Box<dyn Read + 'r>, String> {
    match decompress(raw) {
        Ok(content) => match sniff_tar(content) {
            (true, _) => Err("a tar archive inside the archive, which is not read: \
                              extract it first (`tar xf FILE`)"
                .to_owned()),
            (false, content) => Ok(Box::new(content)),
        },
        Err(err) => Err(err.to_string()),
    }
}

/// Calls `visit` with each member of the tar archive `content` (read from
/// `archive`), in archive order; directories are passed over. Returns what
/// ended the walk early (a damaged or truncated archive), if anything: the
/// members before it were visited.
///
/// ```
/// use cts_audit::input::each_tar_member;
/// use std::io::Read;
/// let mut tar = tar::Builder::new(Vec::new());
/// let mut header = tar::Header::new_gnu();
/// header.set_size(2);
/// tar.append_data(&mut header, "CloudTraces/a.json", &b"[]"[..]).unwrap();
/// let bytes = tar.into_inner().unwrap();
/// let mut seen = Vec::new();
/// let problem = each_tar_member("bundle.tar".as_ref(), Box::new(std::io::Cursor::new(bytes)), &mut |member| {
///     let mut text = String::new();
///     member.raw.unwrap().read_to_string(&mut text).unwrap();
///     seen.push((member.path, text));
///     std::ops::ControlFlow::Continue(()) // Break(()) stops the walk
/// });
/// assert!(problem.is_none());
/// assert_eq!(seen, [("bundle.tar/CloudTraces/a.json".into(), "[]".to_owned())]);
/// ```
pub fn each_tar_member(
    archive: &Path,
    content: Box<dyn Read + Send>,
    visit: &mut dyn FnMut(TarMember<'_>) -> std::ops::ControlFlow<()>,
) -> Option<String> {
    let mut tar = tar::Archive::new(content);
    let entries = match tar.entries() {
        Ok(entries) => entries,
        Err(err) => return Some(format!("unreadable tar archive: {err}")),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => return Some(format!("damaged tar archive: {err}")),
        };
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        let path = member_path(archive, &entry.path_bytes());
        let size = entry.size();
        let raw = if kind.is_file() {
            Ok(Box::new(entry) as Box<dyn Read>)
        } else {
            Err(format!(
                "a {kind:?} member of the archive, not a regular file: not read"
            ))
        };
        if visit(TarMember { path, size, raw }).is_break() {
            break;
        }
    }
    None
}

/// `archive/member`: a member's name under its archive's path, whatever it
/// says. An absolute name (`/etc/x`) or one that climbs (`../x`) keeps
/// only its plain parts, so every member is named inside its archive.
///
/// ```
/// use cts_audit::input::member_path;
/// use std::path::Path;
/// assert_eq!(member_path(Path::new("b.tar"), b"/CloudTraces/a.json"), Path::new("b.tar/CloudTraces/a.json"));
/// assert_eq!(member_path(Path::new("b.tar"), b"../../x.json"), Path::new("b.tar/x.json"));
/// ```
pub fn member_path(archive: &Path, name: &[u8]) -> PathBuf {
    let name = String::from_utf8_lossy(name);
    let mut path = archive.to_path_buf();
    for part in Path::new(name.as_ref()).components() {
        if let std::path::Component::Normal(part) = part {
            path.push(part);
        }
    }
    path
}

/// The sniffed first bytes put back in front of the rest of the reader.
///
/// ```
/// use cts_audit::input::{decompress, Decompressed};
/// use std::io::Read;
/// let Decompressed::Plain(mut sniffed) = decompress(&b"[1]"[..]).unwrap() else { panic!() };
/// let mut text = String::new();
/// sniffed.read_to_string(&mut text).unwrap(); // the sniffed bytes are read again
/// assert_eq!(text, "[1]");
/// ```
pub type Sniffed<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// A reader's content, gunzipped when it is gzip.
///
/// ```
/// use cts_audit::input::{decompress, Decompressed};
/// let gzip = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]; // an empty gzip member
/// assert!(matches!(decompress(&gzip[..]).unwrap(), Decompressed::Gzip(_)));
/// assert!(matches!(decompress(&b"{}"[..]).unwrap(), Decompressed::Plain(_)));
/// ```
pub enum Decompressed<R> {
    /// Not gzip: the bytes as they are.
    Plain(Sniffed<R>),
    /// gzip, one or more members.
    Gzip(Box<flate2::bufread::MultiGzDecoder<BufReader<Sniffed<R>>>>),
}

impl<R: Read + Send + 'static> Decompressed<R> {
    /// The reader inside, boxed. Reading through the box reaches the inner
    /// reader's own `read_buf`, so reads into a buffer's spare capacity are
    /// not preceded by zeroing it, as they are through [`Decompressed`]'s
    /// `read`.
    ///
    /// ```
    /// use std::io::Read;
    /// let mut reader = cts_audit::input::decompress(std::io::Cursor::new(b"{}".to_vec())).unwrap().boxed();
    /// let mut text = String::new();
    /// reader.read_to_string(&mut text).unwrap();
    /// assert_eq!(text, "{}");
    /// ```
    pub fn boxed(self) -> Box<dyn Read + Send> {
        match self {
            Decompressed::Plain(reader) => Box::new(reader),
            Decompressed::Gzip(reader) => reader,
        }
    }
}

impl<R: Read> Read for Decompressed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decompressed::Plain(reader) => reader.read(buf),
            Decompressed::Gzip(reader) => reader.read(buf),
        }
    }
}

/// Sniffs gzip's magic bytes at the start of `raw` and decodes it if so.
/// Other compressed or archive formats (bzip2, xz, zstd, zip, 7-Zip) and
/// UTF-16 text are refused with an error that says how to unpack them.
///
/// ```
/// use std::io::Read;
/// let mut text = String::new();
/// cts_audit::input::decompress(&b"[]"[..]).unwrap().read_to_string(&mut text).unwrap();
/// assert_eq!(text, "[]");
/// let refused = cts_audit::input::decompress(&b"BZh91AY&SY"[..]).err().unwrap();
/// assert!(refused.to_string().starts_with("bzip2-compressed"));
/// ```
pub fn decompress<R: Read>(mut raw: R) -> io::Result<Decompressed<R>> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    while head.len() < SNIFF_BYTES {
        let mut bytes = [0u8; SNIFF_BYTES];
        match raw.read(&mut bytes[..SNIFF_BYTES - head.len()]) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&bytes[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    if let Some((_, what, todo, tool)) = REFUSED.iter().find(|(magic, ..)| head.starts_with(magic))
    {
        // Read as text, it would be a warning for every "line" of noise.
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what}, which is not read: {todo} first (`{tool} FILE | cts-audit scan -`)"),
        ));
    }
    let is_gzip = head.starts_with(&[0x1f, 0x8b]);
    let whole = io::Cursor::new(head).chain(raw);
    if is_gzip {
        Ok(Decompressed::Gzip(Box::new(
            flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(256 << 10, whole)),
        )))
    } else {
        Ok(Decompressed::Plain(whole))
    }
}

/// Enough bytes to tell every refused content below by its first bytes.
const SNIFF_BYTES: usize = 6;

/// Content that is refused, by its first bytes: other compressions and
/// archives, and UTF-16 text (a console export saved by a spreadsheet),
/// each with the tool that turns it into what is read. No JSON or CSV
/// export in UTF-8 starts with these bytes.
const REFUSED: &[(&[u8], &str, &str, &str)] = &[
    (b"BZh", "bzip2-compressed content", "decompress it", "bzcat"),
    (
        &[0xfd, b'7', b'z', b'X', b'Z', 0x00],
        "xz-compressed content",
        "decompress it",
        "xzcat",
    ),
    (
        &[0x28, 0xb5, 0x2f, 0xfd],
        "zstd-compressed content",
        "decompress it",
        "zstdcat",
    ),
    (b"PK\x03\x04", "a zip archive", "extract it", "unzip -p"),
    (
        &[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c],
        "a 7-Zip archive",
        "extract it",
        "7z x -so",
    ),
    (
        &[0xff, 0xfe],
        "UTF-16 text",
        "convert it to UTF-8",
        "iconv -f UTF-16 -t UTF-8",
    ),
    (
        &[0xfe, 0xff],
        "UTF-16 text",
        "convert it to UTF-8",
        "iconv -f UTF-16 -t UTF-8",
    ),
];

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

/// Where a record is, for messages and the `source` field.
///
/// ```
/// use cts_audit::input::Location;
/// use std::path::Path;
/// assert_eq!(Location::Line(7).source(Path::new("lts.jsonl")), "lts.jsonl:7");
/// assert_eq!(Location::Nested(3, 2).describe(), "record 3, trace 2");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Location {
    /// A line of JSON lines (1-based).
    Line(u64),
    /// An element of an array, or a value of a document (1-based).
    Record(u64),
    /// The M-th trace of the page or array at record N.
    Nested(u64, u64),
    /// The M-th trace of the page or array on line N of JSON lines.
    NestedInLine(u64, u64),
}

impl Location {
    /// `line 7`, `record 3`, `record 1, trace 2`, `line 4, trace 2`.
    ///
    /// ```
    /// use cts_audit::input::Location;
    /// assert_eq!(Location::Record(3).describe(), "record 3");
    /// assert_eq!(Location::NestedInLine(4, 2).describe(), "line 4, trace 2");
    /// ```
    pub fn describe(self) -> String {
        match self {
            Location::Line(n) => format!("line {n}"),
            Location::Record(n) => format!("record {n}"),
            Location::Nested(n, m) => format!("record {n}, trace {m}"),
            Location::NestedInLine(n, m) => format!("line {n}, trace {m}"),
        }
    }

    /// `FILE:LINE`, `FILE#N`, `FILE#N.M` or `FILE:LINE#M`.
    ///
    /// ```
    /// use cts_audit::input::Location;
    /// assert_eq!(Location::Nested(1, 2).source(std::path::Path::new("page.json")), "page.json#1.2");
    /// ```
    pub fn source(self, file: &Path) -> String {
        match self {
            Location::Line(n) => format!("{}:{n}", file.display()),
            Location::Record(n) => format!("{}#{n}", file.display()),
            Location::Nested(n, m) => format!("{}#{n}.{m}", file.display()),
            Location::NestedInLine(n, m) => format!("{}:{n}#{m}", file.display()),
        }
    }

    pub(crate) fn nested(self, inner: u64) -> Location {
        match self {
            Location::Record(n) | Location::Nested(n, _) => Location::Nested(n, inner),
            Location::Line(n) | Location::NestedInLine(n, _) => Location::NestedInLine(n, inner),
        }
    }
}

/// A block of whole records from one file, ready for a worker.
///
/// ```
/// use cts_audit::input::{read_units, Layout};
/// let text = b"{\"trace_id\":\"a\"}\n{\"trace_id\":\"b\"}\n";
/// let mut units = Vec::new();
/// read_units(3, &mut &text[..], &mut |unit| units.push(unit));
/// assert_eq!(units[0].file, 3);
/// assert!(matches!(units[0].layout, Layout::Lines { first_line: 1 }));
/// ```
#[derive(Debug)]
pub struct Unit {
    /// Index of the file in the scan's file list.
    pub file: usize,
    /// How to find the records in `bytes`.
    pub layout: Layout,
    /// The bytes of whole records.
    pub bytes: Vec<u8>,
}

/// Where the records of a [`Unit`] are.
///
/// ```
/// use cts_audit::input::{read_units, Layout};
/// let text = br#"[{"trace_id":"a"}, {"trace_id":"b"}]"#;
/// let mut units = Vec::new();
/// read_units(0, &mut &text[..], &mut |unit| units.push(unit));
/// let Layout::Elements { first_index, ranges } = &units[0].layout else { panic!() };
/// assert_eq!(*first_index, 1);
/// let (start, end) = ranges[1];
/// assert_eq!(&units[0].bytes[start as usize..end as usize], br#"{"trace_id":"b"}"#);
/// ```
#[derive(Debug)]
pub enum Layout {
    /// One record per line; the first line of `bytes` is this (1-based) line.
    Lines {
        /// Line number of the unit's first line.
        first_line: u64,
    },
    /// Array elements at these byte ranges; the first is element `first_index` (1-based).
    Elements {
        /// Number of the unit's first element.
        first_index: u64,
        /// Byte ranges of the elements within `bytes`.
        ranges: Vec<(u32, u32)>,
    },
    /// One or more whole JSON values.
    Document,
    /// A CSV table with its header line (see [`Container::Csv`]).
    Csv,
}

/// Something wrong with a file as a whole, or with the bytes at its end.
///
/// ```
/// use cts_audit::input::{decompress, read_units};
/// use std::io::Write;
/// let lines: String = (0..2000).map(|i| format!("{{\"trace_id\":\"t{i}\"}}\n")).collect();
/// let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
/// gz.write_all(lines.as_bytes()).unwrap();
/// let packed = gz.finish().unwrap();
/// let cut = std::io::Cursor::new(packed[..packed.len() / 2].to_vec());
/// let mut bytes = 0;
/// let (_, problems) = read_units(0, &mut decompress(cut).unwrap().boxed(), &mut |unit| bytes += unit.bytes.len());
/// assert!(bytes > 0); // the whole records before the cut are read
/// assert!(problems[0].message.contains("truncated"), "{}", problems[0].message);
/// ```
#[derive(Debug)]
pub struct ReadProblem {
    /// The record or line it concerns, when known.
    pub location: Option<Location>,
    /// What went wrong.
    pub message: String,
}

/// Reads `reader` to the end, handing whole-record [`Unit`]s of about
/// [`BLOCK_BYTES`] to `emit`. Returns the problems met: a read error (a
/// truncated gzip, say) ends the file, but the records before it are emitted.
/// Returns `Ok(None)` container when the content was empty.
///
/// ```
/// use cts_audit::input::{read_units, Container};
/// // A pretty-printed ListTraces page is one document; on one line it would
/// // be JSON lines, and read the same.
/// let text = b"{\n  \"traces\": [{\"trace_id\": \"a\"}],\n  \"meta_data\": {\"count\": 1}\n}\n";
/// let mut units = Vec::new();
/// let (container, problems) = read_units(0, &mut &text[..], &mut |unit| units.push(unit));
/// assert_eq!(container, Some(Container::Document));
/// assert!(problems.is_empty() && units.len() == 1);
/// ```
pub fn read_units(
    file: usize,
    reader: &mut dyn Read,
    emit: &mut dyn FnMut(Unit),
) -> (Option<Container>, Vec<ReadProblem>) {
    read_units_into(file, reader, emit, &mut || {
        Vec::with_capacity(BLOCK_BYTES + (64 << 10))
    })
}

/// [`read_units`], taking each new block buffer from `spare`, so a caller
/// can hand back the buffers of processed units instead of allocating.
///
/// ```
/// use cts_audit::input::read_units_into;
/// let mut spares = vec![Vec::with_capacity(1 << 10)]; // buffers handed back by a caller
/// read_units_into(0, &mut &b"{}\n"[..], &mut |unit| assert_eq!(unit.bytes, b"{}\n"), &mut || {
///     spares.pop().unwrap_or_default()
/// });
/// assert!(spares.is_empty());
/// ```
pub fn read_units_into(
    file: usize,
    reader: &mut dyn Read,
    emit: &mut dyn FnMut(Unit),
    spare: &mut dyn FnMut() -> Vec<u8>,
) -> (Option<Container>, Vec<ReadProblem>) {
    let mut units = UnitReader::new(file, reader);
    while let Some(unit) = units.next_unit(spare) {
        emit(unit);
    }
    (units.container, units.problems)
}

/// Pulls [`Unit`]s of whole records from a reader, one at a time.
///
/// ```
/// use cts_audit::input::UnitReader;
/// let text = b"{\"trace_id\":\"a\"}\n{\"trace_id\":\"b\"}\n";
/// let mut units = UnitReader::new(0, &text[..]);
/// let unit = units.next_unit(&mut Vec::new).unwrap();
/// assert_eq!(unit.bytes, text);
/// assert!(units.next_unit(&mut Vec::new).is_none());
/// assert!(units.take_problems().is_empty());
/// ```
pub struct UnitReader<R> {
    file: usize,
    reader: R,
    buf: Vec<u8>,
    eof: bool,
    started: bool,
    done: bool,
    cutter: Option<Cutter>,
    container: Option<Container>,
    problems: Vec<ReadProblem>,
    consumed: u64,
    block_bytes: usize,
    limits: Limits,
    /// The content was refused as unrecognised.
    refused: bool,
    /// Line breaks in blank lines dropped before the first record, so
    /// that lines keep their numbers.
    blank_lines: u64,
}

impl<R: Read> UnitReader<R> {
    /// Cuts units of about `bytes` instead of [`BLOCK_BYTES`] (tests use
    /// small blocks to put records across block boundaries).
    ///
    /// ```
    /// use cts_audit::input::UnitReader;
    /// let text: String = (0..10_000).map(|i| format!("{{\"trace_id\":\"t{i}\"}}\n")).collect();
    /// let mut units = UnitReader::new(0, text.as_bytes()).with_block_bytes(1000);
    /// let mut count = 0;
    /// while let Some(unit) = units.next_unit(&mut Vec::new) {
    ///     assert!(unit.bytes.ends_with(b"}\n")); // a block never splits a record
    ///     count += 1;
    /// }
    /// assert!(count > 1); // (the first read, to detect the layout, takes 64 KiB)
    /// ```
    pub fn with_block_bytes(mut self, bytes: usize) -> Self {
        self.block_bytes = bytes.max(1);
        self
    }

    /// Reads `reader`, numbering its units as file `file`.
    ///
    /// ```
    /// let units = cts_audit::input::UnitReader::new(7, &b""[..]);
    /// assert!(units.container().is_none()); // nothing read yet
    /// ```
    pub fn new(file: usize, reader: R) -> UnitReader<R> {
        UnitReader {
            file,
            reader,
            buf: Vec::new(),
            eof: false,
            started: false,
            done: false,
            cutter: None,
            container: None,
            problems: Vec::new(),
            consumed: 0,
            block_bytes: BLOCK_BYTES,
            limits: Limits::default(),
            refused: false,
            blank_lines: 0,
        }
    }

    /// Reads under `limits` instead of the defaults.
    ///
    /// ```
    /// use cts_audit::input::{Limits, UnitReader};
    /// let limits = Limits { max_record_bytes: 1 << 10, ..Limits::default() };
    /// let line = format!("{{\"request\":\"{}\"}}\n", "x".repeat(4 << 10));
    /// let mut units = UnitReader::new(0, line.as_bytes()).with_limits(limits);
    /// assert!(units.next_unit(&mut Vec::new).is_none());
    /// assert!(units.take_problems()[0].message.contains("over 1 KiB"));
    /// ```
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The layout detected, once the first unit was asked for; `None` for
    /// empty input.
    ///
    /// ```
    /// use cts_audit::input::{Container, UnitReader};
    /// let mut units = UnitReader::new(0, &b"[{\"trace_id\":\"a\"}]"[..]);
    /// units.next_unit(&mut Vec::new);
    /// assert_eq!(units.container(), Some(Container::Array));
    /// ```
    pub fn container(&self) -> Option<Container> {
        self.container
    }

    /// Problems met so far: read errors, a truncated last record.
    ///
    /// ```
    /// use cts_audit::input::UnitReader;
    /// let mut units = UnitReader::new(0, &b"[{\"trace_id\":\"a\"}, {\"trace_id\":"[..]);
    /// while units.next_unit(&mut Vec::new).is_some() {}
    /// let problems = units.take_problems();
    /// assert_eq!(problems[0].location.as_deref(), Some("record 2"));
    /// assert!(units.take_problems().is_empty()); // taken once
    /// ```
    pub fn take_problems(&mut self) -> Vec<ReadProblem> {
        std::mem::take(&mut self.problems)
    }

    fn read_problem(&mut self, err: &io::Error) {
        let at = self.consumed + self.buf.len() as u64;
        self.problems.push(ReadProblem {
            location: None,
            message: read_error(err, at),
        });
        self.eof = true;
    }

    /// Fills until the container can be told, or the input ends. Each byte
    /// is looked at once, however long the first line: blank lines before
    /// the first record are dropped as they come (their line breaks
    /// counted), binary content is refused at its first NUL byte, and
    /// content that is neither JSON nor a CSV header within its caps is
    /// refused as unrecognised.
    fn start(&mut self, spare: &mut dyn FnMut() -> Vec<u8>) {
        self.started = true;
        self.buf = spare();
        // Where the first record starts, once found; how far the search
        // for it, and then for the end of its line, has gone.
        let mut content: Option<usize> = None;
        let mut searched = 0;
        let container = loop {
            let before = self.buf.len();
            let left = self
                .limits
                .max_file_bytes
                .saturating_sub(self.consumed + before as u64);
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(64 << 10);
            match fill(&mut self.reader, &mut self.buf, want) {
                Ok(0) if want == 0 && !self.at_end() => {
                    self.cap_reached();
                    self.eof = true;
                }
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(err) => self.read_problem(&err),
            }
            // Binary content (zeros, an image) is no export of traces: it
            // starts with a NUL, or its first block is thick with them. A
            // stray NUL inside a record is that record's damage, read
            // salvaged.
            let nuls = memchr::memchr_iter(0, &self.buf[before..]).count();
            let starts_with_nul = content.is_none()
                && self.buf[before..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&0);
            if starts_with_nul || (before == 0 && nuls * 8 > self.buf.len()) {
                return self.refuse(format!(
                    "binary content ({nuls} NUL bytes in the first {} bytes), not an export of traces: not read",
                    self.buf.len() - before
                ));
            }
            let bom = if self.buf.starts_with(b"\xEF\xBB\xBF") {
                3
            } else {
                0
            };
            if content.is_none() {
                let from = searched.max(bom);
                match self.buf[from..]
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                {
                    Some(at) => content = Some(from + at),
                    None if self.eof => break None,
                    None => {
                        // Only blank lines so far: drop them, keep their count.
                        self.blank_lines += memchr_iter(b'\n', &self.buf[bom..]).count() as u64;
                        self.consumed += self.buf.len() as u64;
                        self.buf.clear();
                        searched = 0;
                        continue;
                    }
                }
                searched = content.unwrap_or(0);
            }
            let start = content.unwrap_or(0);
            let detected = Container::detect(&self.buf[start..]);
            let line_end = memchr::memchr(b'\n', &self.buf[searched..]).map(|at| searched + at);
            searched = self.buf.len();
            let undecided = matches!(detected, Some(Container::Lines | Container::Document))
                && line_end.is_none();
            if self.eof || !undecided {
                break detected;
            }
            let json = matches!(self.buf[start], b'{' | b'[');
            let cap = if json {
                self.limits.max_record_bytes
            } else {
                MAX_HEADER_BYTES
            };
            if self.buf.len() - start > cap {
                return self.refuse(format!(
                    "no line break in the first {}: not a recognised export \
                     (JSON, JSON lines or a CSV table of traces); not read",
                    describe_bytes(cap as u64)
                ));
            }
        };
        self.container = container;
        let Some(container) = container else {
            self.done = true;
            return;
        };
        let start = content.unwrap_or(0);
        // Blank lines before the first record are dropped with the BOM.
        self.blank_lines += memchr_iter(b'\n', &self.buf[..start]).count() as u64;
        self.consumed += start as u64;
        self.buf.drain(..start);
        self.cutter = Some(match container {
            Container::Lines => Cutter::Lines {
                next_line: 1 + self.blank_lines,
            },
            Container::Array => Cutter::Array(ArrayScanner {
                next_index: 1,
                ..ArrayScanner::default()
            }),
            Container::Document => Cutter::Document { csv: false },
            // A CSV cell may hold a line break: the table is read whole.
            Container::Csv => Cutter::Document { csv: true },
        });
    }

    /// Stops reading: the content is not read, for `why`.
    fn refuse(&mut self, why: String) {
        self.problems.push(ReadProblem {
            location: None,
            message: why,
        });
        self.refused = true;
        self.done = true;
    }

    /// True when the content was refused as unrecognised ([`UnitReader::next_unit`]
    /// returned `None` before any unit), with the reason among the problems.
    ///
    /// ```
    /// use cts_audit::input::UnitReader;
    /// let mut units = UnitReader::new(0, &b"\0\0\0\0"[..]);
    /// assert!(units.next_unit(&mut Vec::new).is_none());
    /// assert!(units.refused());
    /// ```
    pub fn refused(&self) -> bool {
        self.refused
    }

    /// The next unit of whole records, taking new block buffers from
    /// `spare`; `None` at the end of the input.
    ///
    /// ```
    /// use cts_audit::input::UnitReader;
    /// let mut units = UnitReader::new(0, &b"{\"trace_id\":\"a\"}\n"[..]);
    /// let unit = units.next_unit(&mut || Vec::with_capacity(1 << 20)).unwrap();
    /// assert_eq!(unit.bytes, b"{\"trace_id\":\"a\"}\n");
    /// assert!(units.next_unit(&mut Vec::new).is_none());
    /// ```
    pub fn next_unit(&mut self, spare: &mut dyn FnMut() -> Vec<u8>) -> Option<Unit> {
        if !self.started {
            self.start(spare);
        }
        // Set when the buffer holds no whole record yet: one record is
        // longer than a block, so read on past the block size.
        let mut starved = false;
        while !self.done {
            let document = matches!(self.cutter, Some(Cutter::Document { .. }));
            if !self.eof && (self.buf.len() < self.block_bytes || document || starved) {
                let want = if document || starved {
                    self.block_bytes.max(1 << 20)
                } else {
                    self.block_bytes - self.buf.len().min(self.block_bytes) + 1
                };
                // Never past the cap on the file: a block ends at it.
                let left = self
                    .limits
                    .max_file_bytes
                    .saturating_sub(self.consumed + self.buf.len() as u64);
                let want = want.min(usize::try_from(left).unwrap_or(usize::MAX));
                match fill(&mut self.reader, &mut self.buf, want) {
                    Ok(0) if want == 0 && !self.at_end() => {
                        self.cap_reached();
                        self.eof = true;
                    }
                    Ok(0) => self.eof = true,
                    Ok(_) => {}
                    Err(err) => self.read_problem(&err),
                }
                if self.buf.len() > self.limits.max_record_bytes {
                    let what = if document {
                        "a single JSON document or CSV table"
                    } else {
                        "a single record"
                    };
                    self.problems.push(ReadProblem {
                        location: None,
                        message: format!(
                            "{what} over {}; the rest of the file is skipped",
                            describe_bytes(self.limits.max_record_bytes as u64)
                        ),
                    });
                    self.done = true;
                    return None;
                }
                if !self.eof && (self.buf.len() < self.block_bytes || document) {
                    continue;
                }
            }
            let cutter = self.cutter.as_mut()?;
            let (unit, rest) = cutter.cut(
                self.file,
                &mut self.buf,
                self.eof,
                &mut self.problems,
                spare,
            );
            self.buf = rest;
            // At the end of input every cutter takes the whole buffer, but
            // for an array followed by other content, read on as lines.
            self.done = (self.eof && self.buf.is_empty()) || cutter.stopped();
            match unit {
                Some(unit) => {
                    self.consumed += unit.bytes.len() as u64;
                    return Some(unit);
                }
                None => starved = true,
            }
        }
        None
    }
}

impl<R: Read> UnitReader<R> {
    /// Reports that the file is over [`Limits::max_file_bytes`].
    fn cap_reached(&mut self) {
        self.problems.push(ReadProblem {
            location: None,
            message: format!(
                "the file is over the cap of {} (decompressed); the rest of it is not read",
                describe_bytes(self.limits.max_file_bytes)
            ),
        });
    }

    /// True when the reader has nothing more to give (asked at the cap).
    fn at_end(&mut self) -> bool {
        let mut byte = [0u8; 1];
        loop {
            match self.reader.read(&mut byte) {
                Ok(0) => return true,
                Ok(_) => return false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
    }
}

/// `512 MiB`, `8 GiB`, `1 KiB`, `100 bytes`.
fn describe_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// Reads up to `want` more bytes into `buf`; returns how many were read.
fn fill(reader: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> io::Result<usize> {
    let start = buf.len();
    let mut total = 0;
    while total < want {
        match reader.by_ref().take((want - total) as u64).read_to_end(buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    debug_assert_eq!(buf.len() - start, total);
    Ok(total)
}

fn read_error(err: &io::Error, at: u64) -> String {
    match err.kind() {
        io::ErrorKind::UnexpectedEof => {
            format!("truncated input (gzip stream ends early) after {at} bytes")
        }
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
            format!("corrupt compressed data after {at} bytes: {err}")
        }
        _ => format!("read error after {at} bytes: {err}"),
    }
}

/// Cuts a growing buffer at the last whole record.
enum Cutter {
    Lines {
        next_line: u64,
    },
    Array(ArrayScanner),
    /// The whole input as one unit: JSON documents, or a CSV table.
    Document {
        csv: bool,
    },
}

impl Cutter {
    /// True once the input can be read no further (bytes after an array
    /// that are not another array).
    fn stopped(&self) -> bool {
        matches!(self, Cutter::Array(scanner) if scanner.stopped)
    }

    /// Splits `buf` into a unit of whole records and the remainder. At end of
    /// input, a trailing partial record is reported as a problem.
    fn cut(
        &mut self,
        file: usize,
        buf: &mut Vec<u8>,
        eof: bool,
        problems: &mut Vec<ReadProblem>,
        spare: &mut dyn FnMut() -> Vec<u8>,
    ) -> (Option<Unit>, Vec<u8>) {
        match self {
            Cutter::Lines { next_line } => {
                let end = if eof {
                    buf.len()
                } else {
                    memchr::memrchr(b'\n', buf).map_or(0, |i| i + 1)
                };
                if end == 0 && !eof {
                    // No whole line yet: keep the buffer as it is and read on.
                    return (None, std::mem::take(buf));
                }
                let rest = split_into(buf, end, spare);
                let first_line = *next_line;
                *next_line += memchr_iter(b'\n', buf).count() as u64;
                let unit = (!buf.is_empty()).then(|| Unit {
                    file,
                    layout: Layout::Lines { first_line },
                    bytes: std::mem::take(buf),
                });
                (unit, rest)
            }
            Cutter::Array(scanner) => {
                let first_index = scanner.next_index;
                let (ranges, end) = scanner.scan(buf);
                // Bytes that are neither an element nor another array (an
                // LTS file whose first line was an array) are read on from
                // there as JSON lines, numbered as the file's lines.
                if let Some(at) = scanner.garbage.take() {
                    let lines_before =
                        scanner.newlines + memchr_iter(b'\n', &buf[..end]).count() as u64;
                    let at_in_buf = usize::try_from(at - scanner.consumed).unwrap_or(end);
                    let line = lines_before
                        + memchr_iter(b'\n', &buf[end..at_in_buf.clamp(end, buf.len())]).count()
                            as u64
                        + 1;
                    // Not at a record: nothing is lost.
                    problems.push(ReadProblem {
                        location: None,
                        message: format!(
                            "a JSON array is followed by other content at byte {at} (line {line}): \
                             the rest is read as JSON lines"
                        ),
                    });
                    let rest = split_into(buf, end, spare);
                    let unit = elements_unit(file, first_index, ranges, buf);
                    *self = Cutter::Lines {
                        next_line: lines_before + 1,
                    };
                    return (unit, rest);
                }
                if ranges.is_empty() && !eof {
                    // No whole element yet: the scanner's offsets still
                    // point into this buffer, so keep it and read on.
                    return (None, std::mem::take(buf));
                }
                if eof && scanner.opened {
                    let trailing = &buf[end..];
                    if trailing
                        .iter()
                        .any(|b| !b.is_ascii_whitespace() && *b != b',')
                    {
                        problems.push(ReadProblem {
                            location: Some(Location::Record(scanner.next_index)),
                            message: "truncated array element at end of input".into(),
                        });
                    } else {
                        problems.push(ReadProblem {
                            location: None,
                            message: "the JSON array is not closed (truncated file?)".into(),
                        });
                    }
                }
                let rest = if eof {
                    Vec::new()
                } else {
                    split_into(buf, end, spare)
                };
                scanner.newlines += memchr_iter(b'\n', &buf[..end]).count() as u64;
                scanner.rebase(end);
                let unit = elements_unit(file, first_index, ranges, buf);
                (unit, rest)
            }
            Cutter::Document { csv } => {
                let unit = (!buf.is_empty()).then(|| Unit {
                    file,
                    layout: if *csv { Layout::Csv } else { Layout::Document },
                    bytes: std::mem::take(buf),
                });
                (unit, Vec::new())
            }
        }
    }
}

/// The unit of array elements at `ranges` of `buf`, taking its bytes;
/// `None` when no element was whole.
fn elements_unit(
    file: usize,
    first_index: u64,
    ranges: Vec<(u32, u32)>,
    buf: &mut Vec<u8>,
) -> Option<Unit> {
    (!ranges.is_empty()).then(|| Unit {
        file,
        layout: Layout::Elements {
            first_index,
            ranges,
        },
        bytes: std::mem::take(buf),
    })
}

/// Moves `buf[end..]` into a spare buffer (keeping `buf` for the unit), so
/// the next block grows in a buffer that already has its full capacity.
fn split_into(buf: &mut Vec<u8>, end: usize, spare: &mut dyn FnMut() -> Vec<u8>) -> Vec<u8> {
    let mut rest = spare();
    rest.clear();
    rest.extend_from_slice(&buf[end..]);
    buf.truncate(end);
    rest
}

/// Finds the top-level elements of a JSON array in a stream of bytes,
/// tracking strings, escapes and nesting depth. Arrays may follow one
/// another (`zcat *.json.gz > all.json`), and their elements are numbered on
/// across them. It does not validate: each element is parsed (and its
/// errors reported) on its own.
#[derive(Default, Debug)]
struct ArrayScanner {
    /// Inside an array (its `[` seen, its `]` not yet).
    opened: bool,
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// Start of the element being read, if any, relative to the buffer.
    element_start: Option<usize>,
    /// Where scanning resumes, relative to the buffer.
    position: usize,
    /// 1-based number of the next element.
    next_index: u64,
    /// Bytes consumed before the buffer, for messages.
    consumed: u64,
    /// Where bytes that are neither white space nor a new array were met
    /// after an array, in the file; set until reported.
    garbage: Option<u64>,
    /// Nothing more is read after the garbage.
    stopped: bool,
    /// Line breaks in the bytes before the buffer, to number lines when
    /// the rest of the file is read as JSON lines.
    newlines: u64,
}

impl ArrayScanner {
    /// Scans from the saved position; returns the complete elements found
    /// and the offset just after the last one (where the remainder starts).
    fn scan(&mut self, buf: &[u8]) -> (Vec<(u32, u32)>, usize) {
        let mut ranges = Vec::new();
        let mut last_end = self.element_start.unwrap_or(self.position);
        let mut i = self.position;
        while i < buf.len() && !self.stopped && self.garbage.is_none() {
            let b = buf[i];
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                } else if let Some(next) = memchr::memchr2(b'"', b'\\', &buf[i..]) {
                    // Skip the plain run of the string in one step.
                    i += next;
                    continue;
                } else {
                    i = buf.len();
                    continue;
                }
                i += 1;
                continue;
            }
            if !self.opened {
                // Between arrays: white space, or the next array.
                match b {
                    b'[' => {
                        self.opened = true;
                        last_end = i + 1;
                    }
                    b if b.is_ascii_whitespace() => {}
                    _ => {
                        self.garbage = Some(self.consumed + i as u64);
                        break;
                    }
                }
                i += 1;
                continue;
            }
            match b {
                b'"' => {
                    self.in_string = true;
                    self.element_start.get_or_insert(i);
                }
                b'{' | b'[' => {
                    self.depth += 1;
                    self.element_start.get_or_insert(i);
                }
                b'}' | b']' if self.depth > 0 => {
                    self.depth -= 1;
                }
                b']' => {
                    self.close_element(i, &mut ranges);
                    self.opened = false;
                    last_end = i + 1;
                }
                b',' if self.depth == 0 => {
                    self.close_element(i, &mut ranges);
                    last_end = i + 1;
                }
                b if b.is_ascii_whitespace() => {}
                _ => {
                    self.element_start.get_or_insert(i);
                }
            }
            i += 1;
        }
        self.position = i;
        (ranges, last_end)
    }

    fn close_element(&mut self, end: usize, ranges: &mut Vec<(u32, u32)>) {
        if let Some(start) = self.element_start.take() {
            ranges.push((start as u32, end as u32));
            self.next_index += 1;
        }
    }

    /// After a cut at `end`, offsets become relative to the remainder.
    fn rebase(&mut self, end: usize) {
        self.consumed += end as u64;
        self.position -= end;
        if let Some(start) = self.element_start.as_mut() {
            *start -= end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(text: &[u8]) -> (Vec<Unit>, Vec<ReadProblem>) {
        let mut units = Vec::new();
        let (_, problems) = read_units(0, &mut &text[..], &mut |u| units.push(u));
        (units, problems)
    }

    fn elements(unit: &Unit) -> Vec<&str> {
        match &unit.layout {
            Layout::Elements { ranges, .. } => ranges
                .iter()
                .map(|&(s, e)| {
                    std::str::from_utf8(&unit.bytes[s as usize..e as usize])
                        .unwrap()
                        .trim()
                })
                .collect(),
            other => panic!("not elements: {other:?}"),
        }
    }

    #[test]
    fn array_elements_are_found_through_strings_and_nesting() {
        let (units, problems) = units(br#" [ {"a":"x,]}\"{"}, {"b":[1,{"c":2}]} ,{"d":null}] "#);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            elements(&units[0]),
            [
                r#"{"a":"x,]}\"{"}"#,
                r#"{"b":[1,{"c":2}]}"#,
                r#"{"d":null}"#
            ]
        );
    }

    #[test]
    fn a_truncated_array_keeps_its_whole_elements() {
        let (units, problems) = units(br#"[{"a":1},{"b":2},{"c":"#);
        assert_eq!(elements(&units[0]), [r#"{"a":1}"#, r#"{"b":2}"#]);
        assert_eq!(problems[0].location, Some(Location::Record(3)));
    }

    #[test]
    fn arrays_that_follow_one_another_are_all_read() {
        // `zcat *.json.gz > all.json`: transfer files end without a newline.
        let (joined, problems) = units(b"[{\"a\":1},{\"b\":2}][{\"c\":3}]\n[ {\"d\":4} ]\n");
        assert!(problems.is_empty(), "{problems:?}");
        let all: Vec<&str> = joined.iter().flat_map(elements).collect();
        assert_eq!(
            all,
            [r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#, r#"{"d":4}"#]
        );

        // Anything else after an array is read on as JSON lines, once
        // reported: a first line that is an array hides nothing after it.
        let (junk_units, problems) = units(b"[{\"a\":1}]\n{\"b\":2}\n[{\"c\":3}]\ntrailing junk\n");
        assert_eq!(junk_units.len(), 2);
        assert_eq!(elements(&junk_units[0]), [r#"{"a":1}"#]);
        // The rest starts at the end of line 1.
        assert!(matches!(
            junk_units[1].layout,
            Layout::Lines { first_line: 1 }
        ));
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].message.contains("at byte 10 (line 2)"),
            "{problems:?}"
        );

        // A second array cut short keeps its whole elements.
        let (cut_units, problems) = units(b"[{\"a\":1}]\n[{\"b\":2},{\"c\"");
        let all: Vec<&str> = cut_units.iter().flat_map(elements).collect();
        assert_eq!(all, [r#"{"a":1}"#, r#"{"b":2}"#]);
        assert_eq!(problems[0].location, Some(Location::Record(3)));
    }

    #[test]
    fn lines_keep_their_numbers() {
        let (units, problems) = units(b"\xEF\xBB\xBF{\"a\":1}\r\n\r\n{\"a\":2}\n");
        assert!(problems.is_empty());
        assert!(matches!(units[0].layout, Layout::Lines { first_line: 1 }));
        assert_eq!(units[0].bytes, b"{\"a\":1}\r\n\r\n{\"a\":2}\n");
    }

    #[test]
    fn empty_input_has_no_container() {
        let mut none = Vec::new();
        let (container, problems) = read_units(0, &mut &b" \n "[..], &mut |u| none.push(u));
        assert_eq!(container, None);
        assert!(problems.is_empty() && none.is_empty());
    }
}
