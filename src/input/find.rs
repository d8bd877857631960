//! Finding the inputs: paths walked in sorted order, digests told by name.

use super::*;

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
pub fn find(paths: &[PathBuf]) -> (Vec<InputFile>, Vec<(PathBuf, InputError)>) {
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
                Ok(entry) if !entry.file_type().is_dir() => {
                    problems.push((entry.into_path(), InputError::NotRegularFile))
                }
                Ok(_) => {}
                Err(err) => {
                    let at = err
                        .path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| path.clone());
                    let message = err
                        .io_error()
                        .map_or_else(|| err.to_string(), ToString::to_string);
                    problems.push((at, InputError::Walk(message)));
                }
            }
        }
    }
    (files, problems)
}
