//! The end of a scan: held candidates judged by the windowed rules in time order, and written.

use super::*;

/// A written batch: the output, and each record's severity and span in it
/// (`None` when filtered out).
pub(super) struct Written {
    pub(super) out: Emitted,
    pub(super) records: Vec<(Severity, Option<Span>)>,
}

/// The steps candidates go through at the end of a scan.
#[derive(Clone, Copy)]
pub(super) struct Judging<'s> {
    pub(super) options: &'s ScanOptions,
    pub(super) files: &'s [InputFile],
    /// Archive members, numbered after `files`.
    pub(super) members: &'s [PathBuf],
    /// `scan --bills`: each billing action's cost, by its number.
    pub(super) costs: &'s std::collections::HashMap<u64, crate::bills::join::Cost>,
}

impl<'s> Judging<'s> {
    /// The path of the file a candidate came from.
    pub(super) fn path(&self, packed: &Packed) -> &'s Path {
        let index = packed.file() as usize;
        match self.files.get(index) {
            Some(file) => &file.path,
            None => self
                .members
                .get(index - self.files.len())
                .map_or(Path::new("-"), PathBuf::as_path),
        }
    }

    /// The windowed rules, in order, for the candidates that must see them.
    pub(super) fn in_window(&self, batch: &mut [Packed], state: &mut RuleState) {
        let rules = &self.options.rules;
        if !self.costs.is_empty() {
            for packed in batch.iter_mut() {
                if let Some(cost) = self.costs.get(&packed.seq()) {
                    packed.set_cost(cost.clone());
                }
            }
        }
        for packed in batch.iter_mut().filter(|p| p.windowed()) {
            packed.rejudge(|verdict| rules.judge_in_window(verdict, state));
        }
    }

    /// Renders the judged candidates that pass the floor and the filters
    /// (and frees the batch on the worker).
    pub(super) fn write(&self, mut batch: Vec<Packed>) -> Written {
        let options = self.options;
        let mut out = Emitted::default();
        let records = batch
            .iter_mut()
            .map(|packed| {
                let (path, location) = (self.path(packed), packed.location());
                let mut verdict = packed.open();
                let severity = verdict.severity;
                let wanted = severity >= options.min_severity && options.filters.matches(&verdict);
                let span = wanted.then(|| {
                    verdict.source = location.source(path);
                    out.push(verdict, options)
                });
                (severity, span)
            })
            .collect();
        Written { out, records }
    }
}

impl Ledger<'_> {
    /// Judges the held candidates in time order (then input order) by the
    /// windowed rules, and emits the ones that reach the floor: a timeline.
    ///
    /// A merge thread reads the candidates back in order (from memory and
    /// any spilled runs) and hands them over in batches; this thread runs
    /// the windowed rules on each batch, in order; the workers write each
    /// batch as it is judged, and a reorder buffer hands the written
    /// batches back in order. None of them waits for another but to keep
    /// the batches in flight bounded.
    pub(super) fn judge(
        &mut self,
        pool: &rayon::ThreadPool,
        options: &ScanOptions,
        files: &[InputFile],
    ) {
        let members = std::mem::take(&mut self.members);
        /// Candidates per batch: small, so the workers start soon and the
        /// last batch ends soon after this thread's last.
        const BATCH: usize = 1024;
        let max_in_flight = pool.current_num_threads().max(1) * 4;
        if let Some(err) = self.held.finish() {
            self.spill_failed(err);
        }
        let mut costs = std::collections::HashMap::new();
        if let Some(basis) = &options.bills {
            let actions = std::mem::take(&mut self.actions);
            let mut joined = crate::bills::join::assign(&basis.records, &actions, basis.window_ms);
            costs = std::mem::take(&mut joined.costs);
            joined.stats.actions_not_joined = self.actions_not_joined;
            self.stats.cost = Some(joined);
        }
        let held = std::mem::replace(&mut self.held, Held::new(0));
        let total = held.count();
        if self.stopped {
            // The output is gone: what is held is read, but never written.
            self.stats.unwritten += total;
            return;
        }
        let mut judged = 0u64;
        let mut state = RuleState::default();
        let judging = Judging {
            options,
            files,
            members: &members,
            costs: &costs,
        };
        let merge_error = std::thread::scope(|threads| {
            let (batch_sender, batches) = mpsc::sync_channel::<Vec<Packed>>(2);
            let merger = threads.spawn(move || {
                let mut sorted = held.into_sorted();
                loop {
                    let batch: Vec<Packed> = sorted.by_ref().take(BATCH).collect();
                    // The receiver hangs up only when the judging ends early.
                    if batch.is_empty() || batch_sender.send(batch).is_err() {
                        return sorted.take_error();
                    }
                }
            });
            let (sender, receiver) = mpsc::channel::<(u64, Written)>();
            pool.in_place_scope(|workers| {
                let mut next_seq = 0u64;
                let mut written_batches = InOrder::new();
                let mut reading = true;
                while reading || written_batches.next < next_seq {
                    // Once the sink has stopped, no more batches are read;
                    // those in flight are counted as they come back.
                    reading &= !self.stopped;
                    if reading && next_seq - written_batches.next < max_in_flight as u64 {
                        let Ok(mut batch) = batches.recv() else {
                            reading = false;
                            continue;
                        };
                        judged += batch.len() as u64;
                        judging.in_window(&mut batch, &mut state);
                        let (sender, seq) = (sender.clone(), next_seq);
                        workers.spawn(move |_| {
                            let _ = sender.send((seq, judging.write(batch)));
                        });
                        next_seq += 1;
                        // Take what is written so far without waiting.
                        for (seq, written) in receiver.try_iter() {
                            written_batches.put(seq, written);
                        }
                    } else {
                        // Every task holds a sender clone until it sends.
                        let Ok((seq, written)) = receiver.recv() else {
                            break;
                        };
                        written_batches.put(seq, written);
                    }
                    while let Some(written) = written_batches.pop() {
                        self.emit(written);
                    }
                }
            });
            // A merge thread waiting to hand over a batch ends when the
            // batches are no longer received.
            drop(batches);
            merger
                .join()
                .unwrap_or_else(|_| Some(std::io::Error::other("the merge thread failed")))
        });
        if self.stopped {
            self.stats.unwritten += total - judged;
        } else if let Some(err) = merge_error {
            // Counted as filtered out so the counts still add up; the
            // error says how many were lost.
            let lost = total - judged;
            self.stats.filtered_out += lost;
            self.problem(ScanError {
                file: std::env::temp_dir(),
                location: None,
                message: format!(
                    "cannot read back rule candidates spilled to a temporary file \
                     ({err}): {lost} were not judged"
                ),
            });
        }
    }
}
