//! Opening an input: gzip by its magic bytes, other compressions refused by theirs, tar archives by their header, and their members one by one.

use super::*;

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
pub(crate) const TAR_MAGIC_AT: std::ops::Range<usize> = 257..262;

/// Whether `content` is a tar archive, and the content itself, whole.
pub(super) fn sniff_tar<R: Read>(mut content: R) -> (bool, Sniffed<R>) {
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
    pub raw: Result<Box<dyn Read + 'r>, InputError>,
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
/// assert!(open_member(&b"BZh91AY&SY"[..]).err().unwrap().to_string().starts_with("bzip2-compressed"));
/// ```
pub fn open_member<'r, R: Read + 'r>(raw: R) -> Result<Box<dyn Read + 'r>, InputError> {
    match decompress(raw) {
        Ok(content) => match sniff_tar(content) {
            (true, _) => Err(InputError::TarInTar),
            (false, content) => Ok(Box::new(content)),
        },
        Err(err) => Err(InputError::Compression(err.to_string())),
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
) -> Option<InputError> {
    let mut tar = tar::Archive::new(content);
    let entries = match tar.entries() {
        Ok(entries) => entries,
        Err(err) => return Some(InputError::UnreadableTar(err.to_string())),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => return Some(InputError::DamagedTar(err.to_string())),
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
            Err(InputError::NotRegularMember(format!("{kind:?}")))
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
pub(super) const SNIFF_BYTES: usize = 6;

/// Content that is refused, by its first bytes: other compressions and
/// archives, and UTF-16 text (a console export saved by a spreadsheet),
/// each with the tool that turns it into what is read. No JSON or CSV
/// export in UTF-8 starts with these bytes.
pub(super) const REFUSED: &[(&[u8], &str, &str, &str)] = &[
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
