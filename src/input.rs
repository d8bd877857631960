//! Finding, opening and splitting exported trace files.
//!
//! The path a record takes: [`find`] walks the paths given, in sorted order;
//! [`open`] sniffs gzip by its magic bytes, and a tar archive by its header
//! (its members, read by [`each_tar_member`], take the same path as files);
//! [`Container::detect`] tells an
//! array, JSON lines and a single document apart by content; and
//! [`read_units`] cuts the stream into [`Unit`]s of whole records, in bounded
//! blocks, for the workers.

mod container;
mod find;
mod open;
mod units;

pub use container::Container;
// Helpers of the record walk (`records`); public for their doctests only.
#[doc(hidden)]
pub use container::{csv_column, csv_delimiter, strip_bom};
pub use find::{find, is_digest_name, InputFile};
pub(crate) use open::TAR_MAGIC_AT;
pub use open::{
    decompress, each_tar_member, member_path, open, open_member, Decompressed, Opened, Sniffed,
    TarMember,
};
// The scan's buffer reuse; public for its doctest only.
#[doc(hidden)]
pub use units::read_units_into;
pub use units::{read_units, Layout, Location, ReadProblem, Unit, UnitReader};

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
/// assert!(units.take_problems()[0].error.to_string().contains("over the cap"));
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

/// What went wrong reading an input. Each is reported against its file
/// (and record, when there is one), and the scan goes on.
///
/// ```
/// use cts_audit::input::{open_member, InputError};
/// let err = open_member(&b"BZh91AY&SY"[..]).err().unwrap();
/// assert!(matches!(err, InputError::Compression(_)));
/// assert!(err.to_string().starts_with("bzip2-compressed"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// A path in a folder that is not a regular file.
    #[error("not a regular file (a pipe, socket or device inside a directory): not read")]
    NotRegularFile,
    /// A folder could not be walked.
    #[error("{0}")]
    Walk(String),
    /// A compression this tool does not read, or content that is not what
    /// its magic bytes say.
    #[error("{0}")]
    Compression(String),
    /// A tar archive inside an archive.
    #[error(
        "a tar archive inside the archive, which is not read: extract it first (`tar xf FILE`)"
    )]
    TarInTar,
    /// An archive whose first header cannot be read.
    #[error("unreadable tar archive: {0}")]
    UnreadableTar(String),
    /// An archive damaged after its first member: the members before are read.
    #[error("damaged tar archive: {0}")]
    DamagedTar(String),
    /// A link, a device or another member that holds no bytes of its own.
    #[error("a {0} member of the archive, not a regular file: not read")]
    NotRegularMember(String),
    /// The input ends inside a compressed stream.
    #[error("truncated input (gzip stream ends early) after {at} bytes")]
    Truncated {
        /// Bytes read before the end.
        at: u64,
    },
    /// Compressed data that does not decompress.
    #[error("corrupt compressed data after {at} bytes: {detail}")]
    Corrupt {
        /// Bytes read before the damage.
        at: u64,
        /// What the decompressor said.
        detail: String,
    },
    /// Any other read error.
    #[error("read error after {at} bytes: {detail}")]
    Read {
        /// Bytes read before the error.
        at: u64,
        /// What the system said.
        detail: String,
    },
    /// Content with NUL bytes: not text.
    #[error("binary content ({nuls} NUL bytes in the first {looked} bytes), not an export of traces: not read")]
    Binary {
        /// NUL bytes seen.
        nuls: usize,
        /// Bytes looked at.
        looked: usize,
    },
    /// Text that is not JSON and has no line break within the cap.
    #[error("no line break in the first {0}: not a recognised export (JSON, JSON lines or a CSV table of traces); not read")]
    Unrecognised(String),
    /// One record (or one document or CSV table read whole) over
    /// [`Limits::max_record_bytes`].
    #[error("{what} over {cap}; the rest of the file is skipped")]
    RecordOverCap {
        /// `a single record`, or `a single JSON document or CSV table`.
        what: &'static str,
        /// The cap, described.
        cap: String,
    },
    /// A file over [`Limits::max_file_bytes`].
    #[error("the file is over the cap of {0} (decompressed); the rest of it is not read")]
    FileOverCap(String),
    /// A JSON array followed by more content: the rest is read as lines.
    #[error("a JSON array is followed by other content at byte {at} (line {line}): the rest is read as JSON lines")]
    ArrayFollowed {
        /// Where the other content starts.
        at: u64,
        /// Its line.
        line: u64,
    },
    /// The last element of an array, cut off.
    #[error("truncated array element at end of input")]
    TruncatedElement,
    /// An array with no closing bracket.
    #[error("the JSON array is not closed (truncated file?)")]
    ArrayNotClosed,
}
