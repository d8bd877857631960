//! Reading a download for `verify`: every file hashed as stored, in one
//! pass, digests told by name or content and kept whole.

use super::*;
use crate::input::{self, InputFile, Opened};
use rayon::prelude::*;
use std::fs::File;
use std::io::{self, Read};

/// Raw bytes read first from each file: enough to tell a tar archive and a
/// digest by content, and the first block of the hash.
const HEAD_BYTES: usize = 64 << 10;
/// Content looked at to tell a digest from traces.
const SNIFF_CONTENT_BYTES: usize = 4 << 10;

/// One input, as [`read_inputs`] found it.
#[derive(Debug)]
pub struct Hashed {
    /// Where it was found (a tar member's path goes through its archive).
    pub path: PathBuf,
    /// Its object key ([`object_key`]), or its path outside `CloudTraces/`.
    pub object: String,
    /// Its bytes as stored.
    pub size: u64,
    /// What it is.
    pub stored: Stored,
}

/// What an input holds.
#[derive(Debug)]
pub enum Stored {
    /// A digest, with the MD5 of its file, and its content or why it could
    /// not be read.
    Digest {
        /// The lowercase hex MD5 of its bytes as stored.
        md5: String,
        /// What it says.
        digest: Result<Box<Digest>, DigestError>,
    },
    /// Any other file (trace files, by their place).
    Trace {
        /// The lowercase hex MD5 of its bytes as stored.
        md5: String,
    },
    /// It could not be read.
    Unreadable(String),
}

/// Walks `paths` (folders recursively, tar and `.tar.gz` archives, `-` for
/// a tar on stdin), hashing every file in parallel, in a stable order.
///
/// ```
/// use cts_audit::integrity::{read_inputs, Stored};
/// let found = read_inputs(&["samples/CloudTraces".into()]);
/// assert!(found.iter().any(|h| matches!(h.stored, Stored::Digest { .. })));
/// assert!(found.iter().all(|h| h.object.starts_with("CloudTraces/")));
/// ```
pub fn read_inputs(paths: &[PathBuf]) -> Vec<Hashed> {
    let (files, problems) = input::find(paths);
    let mut found: Vec<Hashed> = problems
        .into_iter()
        .map(|(path, err)| unreadable(path, err.to_string()))
        .collect();
    let read: Vec<Vec<Hashed>> = files.par_iter().map(read_file).collect();
    found.extend(read.into_iter().flatten());
    found
}

fn unreadable(path: PathBuf, why: String) -> Hashed {
    Hashed {
        object: object_of(&path),
        path,
        size: 0,
        stored: Stored::Unreadable(why),
    }
}

fn object_of(path: &Path) -> String {
    object_key(path).unwrap_or_else(|| path.display().to_string())
}

fn read_file(file: &InputFile) -> Vec<Hashed> {
    if file.is_stream {
        return read_archive(
            file,
            "a single stream on stdin has no object key: pipe a tar archive",
            false,
        );
    }
    let mut raw = match File::open(&file.path) {
        Ok(raw) => raw,
        Err(err) => return vec![unreadable(file.path.clone(), err.to_string())],
    };
    let mut head = Vec::with_capacity(HEAD_BYTES);
    if let Err(err) = (&mut raw).take(HEAD_BYTES as u64).read_to_end(&mut head) {
        return vec![unreadable(file.path.clone(), err.to_string())];
    }
    let content = content_head(&head);
    if content.get(input::TAR_MAGIC_AT) == Some(b"ustar") {
        return read_archive(file, "not a tar archive after all", false);
    }
    vec![hash_rest(
        file.path.clone(),
        head,
        &content,
        raw,
        file.is_digest,
    )]
}

/// The members of a tar archive, each hashed as a file of its own (only
/// those named as digests when `digests_only`).
fn read_archive(file: &InputFile, not_tar: &str, digests_only: bool) -> Vec<Hashed> {
    let content = match input::open(file) {
        Ok(Opened::Tar(content)) => content,
        Ok(Opened::Content(_)) => return vec![unreadable(file.path.clone(), not_tar.to_owned())],
        Err(err) => return vec![unreadable(file.path.clone(), err.to_string())],
    };
    let mut found = Vec::new();
    let problem = input::each_tar_member(&file.path, content, &mut |member| {
        if digests_only && !input::is_digest_name(&member.path) {
            return std::ops::ControlFlow::Continue(());
        }
        let hashed = match member.raw {
            Err(err) => unreadable(member.path, err.to_string()),
            Ok(mut raw) => {
                let mut head = Vec::with_capacity(HEAD_BYTES.min(member.size as usize));
                match (&mut raw).take(HEAD_BYTES as u64).read_to_end(&mut head) {
                    Err(err) => unreadable(member.path, err.to_string()),
                    Ok(_) => {
                        let content = content_head(&head);
                        let named_digest = input::is_digest_name(&member.path);
                        hash_rest(member.path, head, &content, raw, named_digest)
                    }
                }
            }
        };
        found.push(hashed);
        std::ops::ControlFlow::Continue(())
    });
    if let Some(problem) = problem {
        found.push(unreadable(file.path.clone(), problem.to_string()));
    }
    found
}

/// The first content bytes of `head`, gunzipped when it is gzip (as far as
/// `head` goes: a cut-off stream gives what it has): enough for a tar
/// header, and, when the content is a JSON object (a digest, or a single
/// trace), enough to find a digest's keys. A trace file is an array, and
/// its content is not inflated further than its first bytes.
fn content_head(head: &[u8]) -> Vec<u8> {
    let tar_header = 512.max(input::TAR_MAGIC_AT.end);
    if !head.starts_with(&[0x1f, 0x8b]) {
        let want = if starts_object(head) {
            SNIFF_CONTENT_BYTES
        } else {
            tar_header
        };
        return head[..head.len().min(want)].to_vec();
    }
    let mut content = Vec::with_capacity(SNIFF_CONTENT_BYTES);
    let mut gz = flate2::read::MultiGzDecoder::new(head);
    let mut block = [0u8; 512];
    let mut want = tar_header;
    while content.len() < want {
        match gz.read(&mut block[..(want - content.len()).min(512)]) {
            Ok(0) | Err(_) => break,
            Ok(n) => content.extend_from_slice(&block[..n]),
        }
        if content.len() >= tar_header && want == tar_header && starts_object(&content) {
            want = SNIFF_CONTENT_BYTES;
        }
    }
    content
}

/// Whether content (its first bytes) is a digest: a JSON object with a
/// digest's keys, where a trace file is an array or a trace.
///
/// ```
/// use cts_audit::integrity::looks_like_digest;
/// assert!(looks_like_digest(br#" {"project_id":"p","digest_start_time":"2024-06-19T05-09-17Z""#));
/// assert!(!looks_like_digest(br#"[{"trace_name":"payOrder","digest_object":"x"}]"#));
/// ```
pub fn looks_like_digest(content: &[u8]) -> bool {
    let text = crate::input::strip_bom(content);
    starts_object(text)
        && (memchr::memmem::find(text, b"\"digest_start_time\"").is_some()
            || memchr::memmem::find(text, b"\"digest_object\"").is_some())
}

/// Whether content is a JSON object (a digest, or a single trace), not an
/// array (a trace file): its first byte past a BOM and white space is `{`.
fn starts_object(content: &[u8]) -> bool {
    crate::input::strip_bom(content)
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        == Some(&b'{')
}

/// Hashes a file whose first bytes are `head` and the rest `rest`; keeps a
/// digest (by name or content) whole to read it.
fn hash_rest(
    path: PathBuf,
    head: Vec<u8>,
    content: &[u8],
    mut rest: impl Read,
    named_digest: bool,
) -> Hashed {
    let object = object_of(&path);
    if named_digest || looks_like_digest(content) {
        let mut stored = head;
        let room = (MAX_DIGEST_BYTES + 1).saturating_sub(stored.len() as u64);
        if let Err(err) = (&mut rest).take(room).read_to_end(&mut stored) {
            return unreadable(path, err.to_string());
        }
        if stored.len() as u64 <= MAX_DIGEST_BYTES {
            let md5 = md5_hex(&stored);
            let size = stored.len() as u64;
            let digest = Digest::read(&stored).map(Box::new);
            let stored = match digest {
                Err(_) if !named_digest => Stored::Trace { md5 },
                digest => Stored::Digest { md5, digest },
            };
            return Hashed {
                path,
                object,
                size,
                stored,
            };
        }
        // Too big for a digest: hashed on as any file.
        return hash_stream(path, object, stored, rest, named_digest);
    }
    hash_stream(path, object, head, rest, false)
}

/// Feeds the rest of `reader` to `md5` in large blocks (`io::copy`'s 8 KiB
/// would make a system call for every 8 KiB); returns the bytes read.
pub(crate) fn hash_into(md5: &mut Md5, reader: &mut impl Read) -> io::Result<u64> {
    let mut block = vec![0u8; 256 << 10];
    let mut total = 0;
    loop {
        match reader.read(&mut block) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                md5.update(&block[..n]);
                total += n as u64;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

fn hash_stream(
    path: PathBuf,
    object: String,
    head: Vec<u8>,
    mut rest: impl Read,
    named_digest: bool,
) -> Hashed {
    let mut md5 = Md5::new();
    md5.update(&head);
    let size = match hash_into(&mut md5, &mut rest) {
        Ok(n) => n + head.len() as u64,
        Err(err) => return unreadable(path, err.to_string()),
    };
    let md5 = hex::encode(md5.finalize());
    let stored = if named_digest {
        Stored::Digest {
            md5,
            digest: Err(DigestError::TooLarge),
        }
    } else {
        Stored::Trace { md5 }
    };
    Hashed {
        path,
        object,
        size,
        stored,
    }
}

/// The digests among `paths` for `scan --verify`, read before the scan so
/// each trace file is judged as it is read: digest files by name, and the
/// digest members of archives named `.tar`, `.tar.gz` or `.tgz` (such an
/// archive is read twice: once here for its digests, once by the scan).
/// Digests named otherwise are found by content only by `verify`.
///
/// ```
/// use cts_audit::integrity::{read_digests, PublicKey};
/// let digests = read_digests(&["samples".into()], PublicKey::cts());
/// assert_eq!(digests.len(), 3);
/// ```
pub fn read_digests(paths: &[PathBuf], key: PublicKey) -> Digests {
    let (files, _) = input::find(paths);
    let is_archive_name = |path: &Path| {
        let name = path.to_string_lossy().to_ascii_lowercase();
        [".tar", ".tar.gz", ".tgz"]
            .iter()
            .any(|e| name.ends_with(e))
    };
    let chosen: Vec<&InputFile> = files
        .iter()
        .filter(|f| !f.is_stream && (f.is_digest || is_archive_name(&f.path)))
        .collect();
    let read: Vec<Vec<Hashed>> = chosen
        .par_iter()
        .map(|file| {
            if file.is_digest {
                read_file(file)
            } else {
                read_archive(file, "not a tar archive", true)
            }
        })
        .collect();
    let mut digests = Digests::new(key);
    for hashed in read.into_iter().flatten() {
        match hashed.stored {
            Stored::Digest { md5, digest } => match digest {
                Ok(digest) => digests.add_read(hashed.object, md5, *digest),
                Err(err) => digests.add_damaged(hashed.object, md5, &err.to_string()),
            },
            Stored::Unreadable(why)
                if hashed.path.to_string_lossy().contains("CloudTrace-Digest") =>
            {
                digests.add_damaged(hashed.object, String::new(), &why)
            }
            _ => {}
        }
    }
    digests
}
