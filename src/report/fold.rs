//! What the report keeps of the verdicts as they arrive: counts, actors, the
//! timeline's buckets and the most severe records, each with a cap, so a
//! scan of any size folds into a bounded amount of memory.

use crate::catalog::{Category, Severity};
use crate::verdict::Verdict;
use hashbrown::HashMap;
use rust_decimal::Decimal;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// Actors kept one by one; those past it are folded into one row.
pub const MAX_ACTORS: usize = 5_000;
/// Distinct values a [`Tally`] of one actor keeps (source IPs, codes).
pub const MAX_TALLY_KEYS: usize = 32;
/// Distinct rules or operations counted by name; the rest are "other".
pub const MAX_NAMES: usize = 1_000;
/// Timeline buckets kept; past it, buckets are made twice as wide.
pub const MAX_BUCKETS: usize = 50_000;
/// Characters kept of one text read from a trace.
pub const MAX_TEXT_CHARS: usize = 300;
/// Reasons kept of one record.
const MAX_REASONS: usize = 8;

/// A text read from a trace, cut to [`MAX_TEXT_CHARS`] (marked `…`).
pub(crate) fn clip(text: &str) -> String {
    clip_to(text, MAX_TEXT_CHARS)
}

/// `text` cut to `chars` characters, marked `…` when cut.
pub(crate) fn clip_to(text: &str, chars: usize) -> String {
    let kept = prefix(text, chars);
    if kept.len() < text.len() {
        format!("{kept}…")
    } else {
        text.to_owned()
    }
}

/// The first `chars` characters of `text`.
fn prefix(text: &str, chars: usize) -> &str {
    // No more bytes than the cap: no more characters either.
    if text.len() <= chars {
        return text;
    }
    match text.char_indices().nth(chars) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// An amount with every decimal it has, and at least two: `-356.20`,
/// `0.00012345`.
pub(crate) fn money(amount: Decimal) -> String {
    let amount = amount.normalize();
    if amount.scale() < 2 {
        format!("{amount:.2}")
    } else {
        amount.to_string()
    }
}

/// An actor as kept: user and account, each cut to [`MAX_TEXT_CHARS`].
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct ActorKey {
    user: Option<String>,
    domain: Option<String>,
}

/// An actor as a verdict names it, to look up without allocating: it
/// hashes as the [`ActorKey`] it equals (derived `Hash` of the same
/// fields, `str` as `String`).
#[derive(Hash)]
struct ActorRef<'v> {
    user: Option<&'v str>,
    domain: Option<&'v str>,
}

impl hashbrown::Equivalent<ActorKey> for ActorRef<'_> {
    fn equivalent(&self, key: &ActorKey) -> bool {
        self.user == key.user.as_deref() && self.domain == key.domain.as_deref()
    }
}

/// Counts by name, keeping at most `cap` names; the rest are counted in
/// `other`. One mechanism for rules, operations, source IPs and codes.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    counts: HashMap<String, u64>,
    /// Counted past the cap.
    pub other: u64,
}

impl Tally {
    /// Counts one `name`, unless `cap` names are kept already.
    pub fn add(&mut self, name: &str, cap: usize) {
        if let Some(count) = self.counts.get_mut(name) {
            *count += 1;
        } else if self.counts.len() < cap {
            self.counts.insert(clip(name), 1);
        } else {
            self.other += 1;
        }
    }

    /// The names, most counted first (then by name), at most `n`.
    pub fn top(&self, n: usize) -> Vec<(&str, u64)> {
        let mut all: Vec<(&str, u64)> = self.counts.iter().map(|(k, &v)| (k.as_str(), v)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        all.truncate(n);
        all
    }

    /// How many names are kept.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Nothing counted.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.other == 0
    }
}

/// One actor: a user of an account.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// The user name (`None`: the record named no user).
    pub user: Option<String>,
    /// The account (domain).
    pub domain: Option<String>,
    /// `true` for the row that holds every actor past [`MAX_ACTORS`].
    pub overflow: bool,
    /// Reported records.
    pub records: u64,
    /// Of them, flagged (severity low or above).
    pub flagged: u64,
    /// Earliest record (epoch milliseconds).
    pub first_ms: Option<i64>,
    /// Latest record (epoch milliseconds).
    pub last_ms: Option<i64>,
    /// Flagged records by category.
    pub categories: BTreeMap<Category, u64>,
    /// Failed attempts.
    pub failures: u64,
    /// Their service error codes (or `HTTP nnn`).
    pub codes: Tally,
    /// Where they called from.
    pub source_ips: Tally,
    /// The highest severity of their records.
    pub highest: Severity,
    /// `scan --bills`: charges (positive) and refunds (negative) by currency.
    pub money: BTreeMap<String, Decimal>,
}

impl Actor {
    /// The actor as people read it: `user (account)`.
    pub fn name(&self) -> String {
        if self.overflow {
            return format!("(other actors, past the first {MAX_ACTORS})");
        }
        let user = self.user.as_deref().unwrap_or("(no user)");
        match &self.domain {
            Some(domain) if domain != user => format!("{user} ({domain})"),
            _ => user.to_owned(),
        }
    }

    fn add(&mut self, verdict: &Verdict<'_>, flagged: bool) {
        self.records += 1;
        self.flagged += u64::from(flagged);
        if let Some(time) = verdict.time_ms {
            crate::trace::widen_time_range(&mut self.first_ms, &mut self.last_ms, time);
        }
        if let (true, Some(category)) = (flagged, verdict.category) {
            *self.categories.entry(category).or_default() += 1;
        }
        if verdict.failed {
            self.failures += 1;
            match (&verdict.error_code, verdict.code) {
                (Some(code), _) => self.codes.add(code, MAX_TALLY_KEYS),
                (None, Some(http)) => self.codes.add(&format!("HTTP {http}"), MAX_TALLY_KEYS),
                (None, None) => self.codes.add("(no code)", MAX_TALLY_KEYS),
            }
        }
        if let Some(ip) = &verdict.source_ip {
            self.source_ips.add(ip, MAX_TALLY_KEYS);
        }
        self.highest = self.highest.max(verdict.severity);
        if let Some(cost) = verdict.cost.as_deref() {
            for (amount, currency) in cost.amounts() {
                self.add_money(currency, amount);
            }
        }
    }

    fn add_money(&mut self, currency: &str, amount: Decimal) {
        // Currencies are ISO codes (the bill reader checks them): few.
        if self.money.len() < MAX_TALLY_KEYS || self.money.contains_key(currency) {
            let sum = self.money.entry(clip(currency)).or_default();
            *sum = sum.checked_add(amount).unwrap_or(*sum);
        }
    }
}

/// One flagged record, as the report lists it.
#[derive(Debug, Clone)]
pub struct Listed {
    /// When (epoch milliseconds).
    pub time_ms: Option<i64>,
    /// Its severity.
    pub severity: Severity,
    /// The order it arrived in: ties keep input order.
    pub seq: u64,
    /// Who, as [`Actor::name`] gives it.
    pub actor: String,
    /// The catalog's operation, else the trace name.
    pub operation: String,
    /// The trace name.
    pub trace_name: Option<String>,
    /// The catalog category.
    pub category: Option<Category>,
    /// Resource type and name (or id).
    pub resource: Option<String>,
    /// The caller's IP.
    pub source_ip: Option<String>,
    /// The attempt failed.
    pub failed: bool,
    /// The error code decoded, or the HTTP status.
    pub outcome: Option<String>,
    /// Why the rules fired.
    pub reasons: Vec<String>,
    /// `scan --bills`: what it cost.
    pub cost: Option<String>,
    /// `scan --verify`: its file's integrity.
    pub integrity: Option<&'static str>,
    /// Where it was read.
    pub source: String,
}

impl Listed {
    /// Which of two records the list would rather drop: the less severe,
    /// then the later.
    fn rank(&self) -> (Reverse<Severity>, i64, u64) {
        (
            Reverse(self.severity),
            self.time_ms.unwrap_or(i64::MAX),
            self.seq,
        )
    }
}

impl PartialEq for Listed {
    fn eq(&self, other: &Self) -> bool {
        self.rank() == other.rank()
    }
}
impl Eq for Listed {}
impl PartialOrd for Listed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Listed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

/// A timeline bucket: its start, the actor, the severity, whether the
/// attempts failed.
pub(crate) type BucketKey = (i64, usize, Severity, bool);

/// Flagged records counted in time buckets, per actor: a bucket starts a
/// minute wide and doubles whenever there are too many.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Milliseconds a bucket spans.
    pub width_ms: i64,
    pub(crate) buckets: HashMap<BucketKey, u64>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            width_ms: 60_000,
            buckets: HashMap::new(),
        }
    }
}

impl Timeline {
    fn add(&mut self, time_ms: i64, actor: usize, severity: Severity, failed: bool) {
        let start = time_ms.div_euclid(self.width_ms) * self.width_ms;
        *self
            .buckets
            .entry((start, actor, severity, failed))
            .or_default() += 1;
        while self.buckets.len() > MAX_BUCKETS {
            self.widen();
        }
    }

    /// How many buckets are kept.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// No bucket.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The records counted in every bucket.
    pub fn total(&self) -> u64 {
        self.buckets.values().sum()
    }

    /// Buckets twice as wide: at most half as many.
    fn widen(&mut self) {
        self.width_ms = self.width_ms.saturating_mul(2);
        let width = self.width_ms;
        let old = std::mem::take(&mut self.buckets);
        for ((start, actor, severity, failed), count) in old {
            let start = start.div_euclid(width) * width;
            *self
                .buckets
                .entry((start, actor, severity, failed))
                .or_default() += count;
        }
    }
}

/// Everything the report shows of the verdicts, folded as they arrive.
#[derive(Debug, Clone)]
pub struct Fold {
    /// Records listed at most.
    pub max_listed: usize,
    /// Reported records (every verdict added).
    pub records: u64,
    /// Of them, flagged: severity low or above.
    pub flagged: u64,
    /// Reported records by severity, indexed by `Severity as usize`.
    pub by_severity: [u64; Severity::ALL.len()],
    /// Flagged records by rule id.
    pub rules: Tally,
    /// Flagged records by operation.
    pub operations: Tally,
    /// The actors, in order of first sight (the overflow row last).
    pub actors: Vec<Actor>,
    actor_index: HashMap<ActorKey, usize>,
    /// Flagged records over time.
    pub timeline: Timeline,
    /// The most severe flagged records: a heap whose top is the one to drop.
    listed: BinaryHeap<Listed>,
    /// Flagged records not listed.
    pub left_out: u64,
}

impl Fold {
    /// An empty fold that lists at most `max_listed` records.
    pub fn new(max_listed: usize) -> Fold {
        Fold {
            max_listed,
            records: 0,
            flagged: 0,
            by_severity: [0; Severity::ALL.len()],
            rules: Tally::default(),
            operations: Tally::default(),
            actors: Vec::new(),
            actor_index: HashMap::new(),
            timeline: Timeline::default(),
            listed: BinaryHeap::new(),
            left_out: 0,
        }
    }

    /// Folds in one reported verdict.
    pub fn add(&mut self, verdict: &Verdict<'_>) {
        let flagged = verdict.severity >= Severity::Low;
        self.records += 1;
        self.flagged += u64::from(flagged);
        self.by_severity[verdict.severity as usize] += 1;
        let actor = self.actor(verdict);
        if let Some(entry) = self.actors.get_mut(actor) {
            entry.add(verdict, flagged);
        }
        if !flagged {
            return;
        }
        for rule in &verdict.rules {
            self.rules.add(rule, MAX_NAMES);
        }
        let operation = operation(verdict);
        self.operations.add(&operation, MAX_NAMES);
        if let Some(time) = verdict.time_ms {
            self.timeline
                .add(time, actor, verdict.severity, verdict.failed);
        }
        self.list(verdict, actor, operation);
    }

    /// The index of the verdict's actor, made on first sight; past
    /// [`MAX_ACTORS`], the overflow row's.
    fn actor(&mut self, verdict: &Verdict<'_>) -> usize {
        let seen = ActorRef {
            user: verdict.user.as_deref().map(|t| prefix(t, MAX_TEXT_CHARS)),
            domain: verdict.domain.as_deref().map(|t| prefix(t, MAX_TEXT_CHARS)),
        };
        if let Some(&at) = self.actor_index.get(&seen) {
            return at;
        }
        if self.actors.len() < MAX_ACTORS {
            let key = ActorKey {
                user: seen.user.map(str::to_owned),
                domain: seen.domain.map(str::to_owned),
            };
            self.actors.push(Actor {
                user: key.user.clone(),
                domain: key.domain.clone(),
                ..Actor::default()
            });
            self.actor_index.insert(key, self.actors.len() - 1);
            return self.actors.len() - 1;
        }
        if self.actors.len() == MAX_ACTORS {
            self.actors.push(Actor {
                overflow: true,
                ..Actor::default()
            });
        }
        MAX_ACTORS
    }

    fn list(&mut self, verdict: &Verdict<'_>, actor: usize, operation: String) {
        let seq = self.flagged;
        let severity = verdict.severity;
        let time_ms = verdict.time_ms;
        if self.listed.len() >= self.max_listed {
            // Cheaper than building the record to drop it at once.
            let worst = self.listed.peek().map(Listed::rank);
            let rank = (Reverse(severity), time_ms.unwrap_or(i64::MAX), seq);
            if worst.is_none_or(|worst| rank >= worst) {
                self.left_out += 1;
                return;
            }
        }
        let outcome = verdict
            .failed
            .then(|| match (&verdict.error_code, verdict.code) {
                (Some(code), _) => match crate::catalog::error_code(code) {
                    Some(known) => format!("{} ({})", clip(code), known.meaning),
                    None => clip(code),
                },
                (None, Some(http)) => format!("HTTP {http}"),
                (None, None) => "failed".to_owned(),
            });
        let resource = match (
            &verdict.resource_type,
            &verdict.resource_name,
            &verdict.resource_id,
        ) {
            (kind, Some(name), _) | (kind, None, Some(name)) => Some(match kind {
                Some(kind) => format!("{} {}", clip(kind), clip(name)),
                None => clip(name),
            }),
            (kind, None, None) => kind.as_deref().map(clip),
        };
        self.listed.push(Listed {
            time_ms,
            severity,
            seq,
            // Past the cap, the record still names its own user.
            actor: match self.actors.get(actor) {
                Some(kept) if !kept.overflow => kept.name(),
                _ => clip(verdict.user.as_deref().unwrap_or("(no user)")),
            },
            operation,
            trace_name: verdict.trace_name.as_deref().map(clip),
            category: verdict.category,
            resource,
            source_ip: verdict.source_ip.as_deref().map(clip),
            failed: verdict.failed,
            outcome,
            reasons: verdict
                .reasons
                .iter()
                .take(MAX_REASONS)
                .map(|r| clip(r))
                .collect(),
            cost: verdict.cost.as_deref().map(|cost| {
                let amounts: Vec<String> = cost
                    .amounts()
                    .map(|(amount, currency)| format!("{} {}", money(amount), clip(currency)))
                    .collect();
                if amounts.is_empty() {
                    "no charge found".to_owned()
                } else {
                    amounts.join("; ")
                }
            }),
            integrity: verdict.integrity.map(|i| i.name()),
            source: clip(&verdict.source),
        });
        if self.listed.len() > self.max_listed {
            self.listed.pop();
            self.left_out += 1;
        }
    }

    /// The listed records, most severe first, then by time.
    pub fn listed(&self) -> Vec<&Listed> {
        let mut listed: Vec<&Listed> = self.listed.iter().collect();
        listed.sort();
        listed
    }
}

/// The operation a verdict names: the catalog's text, else the trace name.
fn operation(verdict: &Verdict<'_>) -> String {
    match (&verdict.operation, &verdict.trace_name) {
        (Some(operation), _) => clip(operation),
        (None, Some(name)) => clip(name),
        (None, None) => "(unnamed)".to_owned(),
    }
}
