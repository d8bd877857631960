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

pub use container::{csv_column, csv_delimiter, strip_bom, Container};
pub use find::{find, is_digest_name, InputFile};
pub use open::{
    decompress, each_tar_member, member_path, open, open_member, Decompressed, Opened, Sniffed,
    TarMember,
};
pub use units::{read_units, read_units_into, Layout, Location, ReadProblem, Unit, UnitReader};

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
