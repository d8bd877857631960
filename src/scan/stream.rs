//! Large files, stdin and tar archives: read by one thread, cut into units the workers parse, handed to the ledger in order.

use super::*;

/// What a reader thread hands on, in input order.
pub(super) enum Piece {
    /// Whole records of the file at the path, and what the check of the
    /// file found (`scan --verify`).
    Unit(Unit, Arc<Path>, Option<Arc<FileCheck>>),
    /// One file read to its end.
    End(FileEnd),
    /// A small archive member, read whole: a worker decompresses and
    /// processes it, as it does a small file.
    Member(SmallMember),
}

/// A small archive member's stored bytes, and where they come from.
pub(super) struct SmallMember {
    pub(super) bytes: Vec<u8>,
    pub(super) path: PathBuf,
    /// Its number among the scan's files.
    pub(super) index: usize,
    /// Why reading it stopped early, when it did: its bytes until then are
    /// still read.
    pub(super) cut: Option<std::io::Error>,
}

/// What reading one file met, counted once its records are in.
pub(super) struct FileEnd {
    pub(super) path: PathBuf,
    /// Its size on disk, for progress (0 for an archive member).
    pub(super) disk_bytes: u64,
    /// The layout found; `None` for empty content.
    pub(super) container: Option<Container>,
    pub(super) problems: Vec<ReadProblem>,
    /// Why it was not read, when it was not.
    pub(super) not_read: Option<NotRead>,
    /// `scan --verify`: what the check of the file found.
    pub(super) integrity: Option<crate::integrity::Finding>,
}

pub(super) enum NotRead {
    /// An integrity digest, by its name.
    Digest,
    /// Content that is not read, and why.
    Refused(String),
}

/// One step of a stream, ready for the ledger in its turn.
pub(super) enum Step {
    Unit(UnitResult),
    End(FileEnd),
    /// A whole file's result (an archive member's).
    File(UnitResult),
}

/// Streams one large file, stdin, or a tar archive of any size: a reader
/// thread cuts blocks, the pool parses each as it comes, and a reorder
/// buffer hands the results to the ledger in input order.
pub(super) fn scan_large_file(
    pool: &rayon::ThreadPool,
    input: &InputFile,
    index: usize,
    options: &ScanOptions,
    ledger: &mut Ledger<'_>,
) {
    let limits = options.limits;
    match input::open(input) {
        Err(err) => {
            ledger.stats.files_skipped += 1;
            ledger.problem(ScanError {
                file: input.path.clone(),
                location: None,
                message: format!("cannot open: {err}"),
            });
        }
        Ok(Opened::Content(mut reader)) => {
            let path: Arc<Path> = Arc::from(input.path.as_path());
            let check = options
                .integrity
                .as_ref()
                .map(|coverage| Arc::new(FileCheck::of_large(coverage, input)));
            scan_stream(pool, &input.path, options, ledger, move |send, spare| {
                let file = FileRead {
                    index,
                    path,
                    disk_bytes: input.size,
                    check,
                };
                let _ = read_pieces(file, &mut *reader, limits, send, spare);
            });
        }
        Ok(Opened::Tar(content)) => {
            let first = ledger.found_files + ledger.members.len();
            let (members, damage) =
                scan_stream(pool, &input.path, options, ledger, move |send, spare| {
                    let integrity = options.integrity.as_deref();
                    read_archive_pieces(&input.path, first, content, limits, integrity, send, spare)
                })
                .unwrap_or_default();
            ledger.sink.progress(input.size);
            let empty = members.is_empty();
            ledger.members.extend(members);
            // An archive with no member read is skipped, as an empty file
            // is; its members are counted as files of their own.
            if empty {
                ledger.stats.files_skipped += 1;
            }
            let message = match damage {
                Some(damage) => damage,
                None if empty => "empty tar archive: no files".into(),
                None => return,
            };
            ledger.problem(ScanError {
                file: input.path.clone(),
                location: None,
                message,
            });
        }
    }
}

/// The file [`read_pieces`] reads.
pub(super) struct FileRead {
    /// Its number among the scan's files.
    pub(super) index: usize,
    pub(super) path: Arc<Path>,
    /// Its size on disk, for progress (0 for an archive member).
    pub(super) disk_bytes: u64,
    /// `scan --verify`: what the check of the file found.
    pub(super) check: Option<Arc<FileCheck>>,
}

/// Cuts one file's content into pieces: its units, then its end.
pub(super) fn read_pieces(
    file: FileRead,
    reader: &mut dyn std::io::Read,
    limits: input::Limits,
    send: &mut dyn FnMut(Piece) -> ControlFlow<()>,
    spare: &mut dyn FnMut() -> Vec<u8>,
) -> ControlFlow<()> {
    let FileRead {
        index,
        path,
        disk_bytes,
        check,
    } = file;
    let mut units = UnitReader::new(index, reader).with_limits(limits);
    while let Some(unit) = units.next_unit(spare) {
        send(Piece::Unit(unit, Arc::clone(&path), check.clone()))?;
    }
    let mut problems = units.take_problems();
    let not_read = if units.refused() {
        let why = problems
            .pop()
            .map_or_else(String::new, |p| p.error.to_string());
        Some(NotRead::Refused(why))
    } else {
        None
    };
    send(Piece::End(FileEnd {
        path: path.to_path_buf(),
        disk_bytes,
        container: units.container(),
        problems,
        not_read,
        integrity: check.map(|c| c.finding.clone()),
    }))
}

/// Cuts each member of a tar archive into pieces, numbering the members
/// from `first`. Returns their paths, and what ended the archive early.
pub(super) fn read_archive_pieces(
    archive: &Path,
    first: usize,
    content: Box<dyn std::io::Read + Send>,
    limits: input::Limits,
    integrity: Option<&crate::integrity::Coverage>,
    send: &mut dyn FnMut(Piece) -> ControlFlow<()>,
    spare: &mut dyn FnMut() -> Vec<u8>,
) -> (Vec<PathBuf>, Option<String>) {
    let mut members = Vec::new();
    let damage = input::each_tar_member(archive, content, &mut |member| {
        let index = first + members.len();
        members.push(member.path.clone());
        let not_read = |why| {
            Piece::End(FileEnd {
                path: member.path.clone(),
                disk_bytes: 0,
                container: None,
                problems: Vec::new(),
                not_read: Some(why),
                integrity: None,
            })
        };
        if input::is_digest_name(&member.path) {
            return send(not_read(NotRead::Digest));
        }
        let raw = match member.raw {
            Ok(raw) => raw,
            Err(why) => return send(not_read(NotRead::Refused(why.to_string()))),
        };
        if member.size <= SMALL_FILE_BYTES {
            // Small members (an OBS download's transfer files) are read
            // whole and decompressed by the workers, side by side.
            use std::io::Read;
            let mut bytes = Vec::with_capacity(member.size as usize);
            let cut = raw.take(SMALL_FILE_BYTES).read_to_end(&mut bytes).err();
            return send(Piece::Member(SmallMember {
                bytes,
                path: member.path,
                index,
                cut,
            }));
        }
        match input::open_member(raw) {
            Ok(mut content) => read_pieces(
                FileRead {
                    index,
                    path: Arc::from(member.path.as_path()),
                    disk_bytes: 0,
                    check: integrity.map(|coverage| {
                        Arc::new(FileCheck::new(
                            coverage,
                            &member.path,
                            Err("larger than 2 MB inside an archive: not hashed in the same pass (`cts-audit verify` checks it)"),
                        ))
                    }),
                },
                &mut content,
                limits,
                send,
                spare,
            ),
            Err(why) => send(not_read(NotRead::Refused(why.to_string()))),
        }
    });
    (members, damage.map(|e| e.to_string()))
}

/// Runs `read` on a reader thread and the units it cuts on the pool,
/// handing results and file ends to the ledger in input order. Returns what
/// `read` returns; `None`, reported against `input`, when the reader thread
/// failed.
pub(super) fn scan_stream<T: Send>(
    pool: &rayon::ThreadPool,
    input: &Path,
    options: &ScanOptions,
    ledger: &mut Ledger<'_>,
    read: impl FnOnce(&mut dyn FnMut(Piece) -> ControlFlow<()>, &mut dyn FnMut() -> Vec<u8>) -> T + Send,
) -> Option<T> {
    // Units in flight at once: enough to keep every worker busy while the
    // ledger catches up, few enough to bound memory (each is ~BLOCK_BYTES).
    let max_in_flight = pool.current_num_threads().max(1) * 2;
    let (sender, receiver) = mpsc::sync_channel::<Piece>(max_in_flight);
    // Records and digests of the file being read, since its last end.
    let mut any_records = false;
    let mut digests = 0;
    std::thread::scope(|scope| {
        // Processed units' buffers go back to the reader: no page faults
        // and no regrowth for each new block.
        let (recycle, recycled) = mpsc::channel::<Vec<u8>>();
        let reader_thread = scope.spawn(move || {
            let mut spare = || {
                recycled
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(input::BLOCK_BYTES + (64 << 10)))
            };
            read(
                &mut |piece| match sender.send(piece) {
                    Ok(()) => ControlFlow::Continue(()),
                    // The receiver hangs up when the sink stopped the scan.
                    Err(_) => ControlFlow::Break(()),
                },
                &mut spare,
            )
        });
        // Workers take units as they come; a small reorder buffer hands the
        // results to the ledger in input order while the next units parse.
        let (result_sender, results) = mpsc::channel::<(u64, Step)>();
        pool.in_place_scope(|workers| {
            let mut next_seq = 0u64;
            let mut steps = InOrder::new();
            // Only units count against the limit: a file's end holds no data.
            let mut units_in_flight = 0;
            let mut reader_done = false;
            loop {
                // Once the sink has stopped, no more pieces are taken; the
                // units in flight are still counted as they come back.
                while !reader_done && !ledger.stopped && units_in_flight < max_in_flight {
                    let piece = if next_seq == steps.next {
                        receiver.recv().ok()
                    } else {
                        match receiver.try_recv() {
                            Ok(piece) => Some(piece),
                            Err(mpsc::TryRecvError::Empty) => break,
                            Err(mpsc::TryRecvError::Disconnected) => None,
                        }
                    };
                    match piece {
                        None => reader_done = true,
                        Some(Piece::End(end)) => steps.put(next_seq, Step::End(end)),
                        Some(Piece::Unit(unit, path, check)) => {
                            units_in_flight += 1;
                            let result_sender = result_sender.clone();
                            let seq = next_seq;
                            workers.spawn(move |_| {
                                let result = process_unit(unit, &path, options, check.as_deref());
                                let _ = result_sender.send((seq, Step::Unit(result)));
                            });
                        }
                        Some(Piece::Member(member)) => {
                            units_in_flight += 1;
                            let result_sender = result_sender.clone();
                            let seq = next_seq;
                            workers.spawn(move |_| {
                                let result = process_member(&member, options);
                                let _ = result_sender.send((seq, Step::File(result)));
                            });
                        }
                    }
                    if reader_done {
                        break;
                    }
                    next_seq += 1;
                }
                while let Some(step) = steps.pop() {
                    match step {
                        Step::Unit(result) => {
                            units_in_flight -= 1;
                            any_records |= !result.outcomes.is_empty() || result.record_errors > 0;
                            digests += result.digests + result.bill_pages;
                            let _ = recycle.send(ledger.take(result));
                        }
                        Step::End(end) => {
                            ledger.end_file(end, any_records, digests);
                            (any_records, digests) = (false, 0);
                        }
                        Step::File(result) => {
                            units_in_flight -= 1;
                            ledger.take_file(result);
                        }
                    }
                }
                if steps.next == next_seq {
                    if reader_done || ledger.stopped {
                        break;
                    }
                    continue;
                }
                let Ok((seq, step)) = results.recv() else {
                    break;
                };
                steps.put(seq, step);
            }
        });
        // A reader waiting to hand over a piece ends when pieces are no
        // longer received.
        drop(receiver);
        match reader_thread.join() {
            Ok(value) => Some(value),
            Err(_) => {
                ledger.problem(ScanError {
                    file: input.to_path_buf(),
                    location: None,
                    message: "the reader thread failed; the rest of this input is not read".into(),
                });
                None
            }
        }
    })
}
