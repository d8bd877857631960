//! Cutting content into units of whole records, in bounded blocks, linearly and under caps; and where a record is ([`Location`]).

use super::*;

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
/// assert!(problems[0].error.to_string().contains("truncated"), "{}", problems[0].error);
/// ```
#[derive(Debug)]
pub struct ReadProblem {
    /// The record or line it concerns, when known.
    pub location: Option<Location>,
    /// What went wrong.
    pub error: InputError,
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
    /// assert!(units.take_problems()[0].error.to_string().contains("over 1 KiB"));
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
    /// use cts_audit::input::{Location, UnitReader};
    /// let mut units = UnitReader::new(0, &b"[{\"trace_id\":\"a\"}, {\"trace_id\":"[..]);
    /// while units.next_unit(&mut Vec::new).is_some() {}
    /// let problems = units.take_problems();
    /// assert_eq!(problems[0].location, Some(Location::Record(2)));
    /// assert!(units.take_problems().is_empty()); // taken once
    /// ```
    pub fn take_problems(&mut self) -> Vec<ReadProblem> {
        std::mem::take(&mut self.problems)
    }

    pub(super) fn read_problem(&mut self, err: &io::Error) {
        let at = self.consumed + self.buf.len() as u64;
        self.problems.push(ReadProblem {
            location: None,
            error: read_error(err, at),
        });
        self.eof = true;
    }

    /// Fills until the container can be told, or the input ends. Each byte
    /// is looked at once, however long the first line: blank lines before
    /// the first record are dropped as they come (their line breaks
    /// counted), binary content is refused at its first NUL byte, and
    /// content that is neither JSON nor a CSV header within its caps is
    /// refused as unrecognised.
    pub(super) fn start(&mut self, spare: &mut dyn FnMut() -> Vec<u8>) {
        self.started = true;
        self.buf = spare();
        // Where the first record starts, once found; how far the search
        // for it, and then for the end of its line, has gone.
        let mut content: Option<usize> = None;
        let mut searched = 0;
        let container = loop {
            let before = self.buf.len();
            self.fill_capped(64 << 10);
            // Binary content (zeros, an image) is no export of traces: it
            // starts with a NUL, or its first block is thick with them. A
            // stray NUL inside a record is that record's damage, read
            // salvaged.
            let nuls = memchr::memchr_iter(0, &self.buf[before..]).count();
            let starts_with_nul = content.is_none()
                && self.buf[before..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&0);
            if starts_with_nul || (before == 0 && nuls * 8 > self.buf.len()) {
                return self.refuse(InputError::Binary {
                    nuls,
                    looked: self.buf.len() - before,
                });
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
                return self.refuse(InputError::Unrecognised(describe_bytes(cap as u64)));
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
    pub(super) fn refuse(&mut self, why: InputError) {
        self.problems.push(ReadProblem {
            location: None,
            error: why,
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
                self.fill_capped(want);
                if self.buf.len() > self.limits.max_record_bytes {
                    let what = if document {
                        "a single JSON document or CSV table"
                    } else {
                        "a single record"
                    };
                    self.problems.push(ReadProblem {
                        location: None,
                        error: InputError::RecordOverCap {
                            what,
                            cap: describe_bytes(self.limits.max_record_bytes as u64),
                        },
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
    pub(super) fn cap_reached(&mut self) {
        self.problems.push(ReadProblem {
            location: None,
            error: InputError::FileOverCap(describe_bytes(self.limits.max_file_bytes)),
        });
    }

    /// Reads up to `want` more bytes, and no further than the file cap:
    /// the end of the input, the cap and a read error each end the file.
    pub(super) fn fill_capped(&mut self, want: usize) {
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
    }

    /// True when the reader has nothing more to give (asked at the cap).
    pub(super) fn at_end(&mut self) -> bool {
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
pub(super) fn describe_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// Reads up to `want` more bytes into `buf`; returns how many were read.
pub(super) fn fill(reader: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> io::Result<usize> {
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

pub(super) fn read_error(err: &io::Error, at: u64) -> InputError {
    match err.kind() {
        io::ErrorKind::UnexpectedEof => InputError::Truncated { at },
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => InputError::Corrupt {
            at,
            detail: err.to_string(),
        },
        _ => InputError::Read {
            at,
            detail: err.to_string(),
        },
    }
}

/// Cuts a growing buffer at the last whole record.
pub(super) enum Cutter {
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
    pub(super) fn stopped(&self) -> bool {
        matches!(self, Cutter::Array(scanner) if scanner.stopped)
    }

    /// Splits `buf` into a unit of whole records and the remainder. At end of
    /// input, a trailing partial record is reported as a problem.
    pub(super) fn cut(
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
                        error: InputError::ArrayFollowed { at, line },
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
                            error: InputError::TruncatedElement,
                        });
                    } else {
                        problems.push(ReadProblem {
                            location: None,
                            error: InputError::ArrayNotClosed,
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
pub(super) fn elements_unit(
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
pub(super) fn split_into(
    buf: &mut Vec<u8>,
    end: usize,
    spare: &mut dyn FnMut() -> Vec<u8>,
) -> Vec<u8> {
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
pub(super) struct ArrayScanner {
    /// Inside an array (its `[` seen, its `]` not yet).
    pub(super) opened: bool,
    pub(super) depth: u32,
    pub(super) in_string: bool,
    pub(super) escaped: bool,
    /// Start of the element being read, if any, relative to the buffer.
    pub(super) element_start: Option<usize>,
    /// Where scanning resumes, relative to the buffer.
    pub(super) position: usize,
    /// 1-based number of the next element.
    pub(super) next_index: u64,
    /// Bytes consumed before the buffer, for messages.
    pub(super) consumed: u64,
    /// Where bytes that are neither white space nor a new array were met
    /// after an array, in the file; set until reported.
    pub(super) garbage: Option<u64>,
    /// Nothing more is read after the garbage.
    pub(super) stopped: bool,
    /// Line breaks in the bytes before the buffer, to number lines when
    /// the rest of the file is read as JSON lines.
    pub(super) newlines: u64,
}

impl ArrayScanner {
    /// Scans from the saved position; returns the complete elements found
    /// and the offset just after the last one (where the remainder starts).
    pub(super) fn scan(&mut self, buf: &[u8]) -> (Vec<(u32, u32)>, usize) {
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

    pub(super) fn close_element(&mut self, end: usize, ranges: &mut Vec<(u32, u32)>) {
        if let Some(start) = self.element_start.take() {
            ranges.push((start as u32, end as u32));
            self.next_index += 1;
        }
    }

    /// After a cut at `end`, offsets become relative to the remainder.
    pub(super) fn rebase(&mut self, end: usize) {
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
            problems[0]
                .error
                .to_string()
                .contains("at byte 10 (line 2)"),
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
