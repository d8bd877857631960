//! The trace ids seen so far, each with a fingerprint of its first
//! record's content, in at most 16 bytes each.
//!
//! A re-delivery is the same record again; a different record under an id
//! already seen is a conflict, and must not be dropped as a duplicate (a
//! benign `listBills` would hide a `deleteTracker` that reuses its id). So
//! each id keeps a 32-bit print of what its first record is
//! ([`record_print`]) beside it.
//!
//! A general-purpose hash set costs 28–29 bytes per 16-byte key here: a
//! control byte per bucket, and a power-of-two table that is between 7/16
//! and 7/8 full. This set keeps a 64-bit fingerprint of each key and the
//! 32-bit record print in 12-byte slots of open-addressed tables (linear
//! probing) that grow by a quarter at 7/8 full, so each table is between
//! 70 % and 87.5 % full: 13.7–17.1 bytes per id, and 15.4 on average once
//! the shards below spread their growth.
//!
//! What can go wrong is bounded by all 96 bits. A record is dropped as a
//! re-delivery only when its id fingerprint and its record print both
//! match: for records that are not the same, a chance of about n² / 2⁹⁷
//! among n unique traces, 6 × 10⁻¹² for a billion. Two different ids that
//! share only the 64-bit fingerprint (about n² / 2⁶⁵: 3 % for a billion)
//! make a false conflict, which is flagged and kept: nothing is lost. The
//! record print is keyed with a secret drawn at start, so a hostile trail
//! cannot be built to collide with it.
//!
//! A slot of 16 bytes (a 96-bit id fingerprint) made the 1 GB scan 5-10 %
//! slower on one core for no record kept or lost.

use crate::trace::TraceFields;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::OnceLock;

/// One id's fingerprint (the first two words; zeros mark an empty slot)
/// and its first record's print (the third).
type Slot = [u32; 3];

const EMPTY: Slot = [0; 3];

/// What an id's arrival means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The first record with this id.
    New,
    /// The same record again: a re-delivery, to drop.
    Repeat,
    /// A different record under an id already seen: keep it and flag it.
    Conflict,
}

/// The print of what a record is, for telling a re-delivery from a
/// conflict: its operation, service, resource type, rating and time (to the
/// second, the precision every export form keeps). Fields that differ
/// between export forms of one trace (the response, the user's form, the
/// code's type) are left out, so the same trace read from an OBS file and
/// an API page has one print. Keyed by a secret drawn once per process.
///
/// ```
/// use cts_audit::scan::record_print;
/// use cts_audit::trace::TraceHead;
/// let print = |json| record_print(&TraceHead::from_str(json).unwrap());
/// let list = r#"{"trace_id":"a","trace_name":"listBills","service_type":"CBC","time":1718777931170}"#;
/// let delete = r#"{"trace_id":"a","trace_name":"deleteTracker","service_type":"CTS","time":1718777931170}"#;
/// // The same trace from another form: time as console text, rating capitalised.
/// let again = r#"{"trace_id":"A","trace_name":"listBills","service_type":"CBC","time":"2024-06-19T06:18:51Z","trace_rating":null}"#;
/// assert_ne!(print(list), print(delete));
/// assert_eq!(print(list), print(again));
/// ```
pub fn record_print<'a>(fields: &impl TraceFields<'a>) -> u32 {
    static SECRET: OnceLock<foldhash::fast::RandomState> = OnceLock::new();
    let mut hasher = SECRET.get_or_init(Default::default).build_hasher();
    for text in [fields.name(), fields.service(), fields.resource_type()] {
        hasher.write(text.as_bytes());
        // A separator no text holds, so `ab|c` and `a|bc` differ.
        hasher.write_u8(0xff);
    }
    for byte in fields.rating().unwrap_or("").bytes() {
        hasher.write_u8(byte.to_ascii_lowercase());
    }
    hasher.write_u8(0xff);
    match fields.time_ms() {
        Some(ms) => hasher.write_i64(ms.div_euclid(1000)),
        None => hasher.write_u8(0),
    }
    (hasher.finish() >> 32) as u32
}

/// Tables grow when a new key would fill them past this fraction…
const MAX_LOAD_NUM: usize = 7;
const MAX_LOAD_DEN: usize = 8;
/// …to this many times their size (5/4).
const GROWTH_NUM: usize = 5;
const GROWTH_DEN: usize = 4;
/// The first table's size, before the offsets below.
const MIN_SLOTS: usize = 64;

/// Keys are spread evenly over the shards by their top bits, and each
/// shard's sizes are offset from the next one's by a fraction of a growth
/// step (shard i holds 64 × 1.25^(i/SHARDS) slots at first): they fill and
/// grow at different moments, so their mean load stays even instead of
/// swinging between 70 % and 87.5 % together, and no one regrowth copies
/// much at once.
const SHARDS: usize = 32;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();

/// A set of 128-bit keys kept as 64-bit fingerprints, each with the print
/// of its first record, for deduplication: the scan's memory of trace ids,
/// under 16 bytes each.
///
/// ```
/// use cts_audit::scan::{dedup_key, Seen, SeenIds};
/// let mut seen = SeenIds::default();
/// let id = dedup_key("cbdd4480-2e03-11ef-82de-cf140e2a70fb");
/// assert_eq!(seen.insert(id, 7), Seen::New);
/// assert_eq!(seen.insert(id, 7), Seen::Repeat);
/// assert_eq!(seen.insert(id, 8), Seen::Conflict);
/// let mut found = Vec::new();
/// seen.insert_each(&[(dedup_key("a"), 1), (dedup_key("b"), 1), (dedup_key("a"), 1)], &mut found);
/// assert_eq!(found, [Seen::New, Seen::New, Seen::Repeat]);
/// assert_eq!(seen.len(), 3);
/// ```
#[derive(Debug, Clone)]
pub struct SeenIds {
    shards: [Shard; SHARDS],
}

#[derive(Debug, Clone)]
struct Shard {
    /// The table; its length is its capacity. Empty until the first key.
    slots: Vec<Slot>,
    len: usize,
    /// The table's size when the first key comes.
    first_capacity: usize,
}

impl Default for SeenIds {
    fn default() -> Self {
        let growth = GROWTH_NUM as f64 / GROWTH_DEN as f64;
        SeenIds {
            shards: std::array::from_fn(|i| Shard {
                slots: Vec::new(),
                len: 0,
                first_capacity: (MIN_SLOTS as f64 * growth.powf(i as f64 / SHARDS as f64)) as usize,
            }),
        }
    }
}

impl SeenIds {
    /// Whether `key` is new, and if not, whether `record` (a
    /// [`record_print`]) is the print its first record had. An id keeps its
    /// first record's print: a later conflict does not replace it.
    ///
    /// ```
    /// use cts_audit::scan::{Seen, SeenIds};
    /// let mut seen = SeenIds::default();
    /// assert_eq!(seen.insert(42, 1), Seen::New);
    /// assert_eq!(seen.insert(42, 2), Seen::Conflict);
    /// assert_eq!(seen.insert(42, 1), Seen::Repeat);
    /// ```
    pub fn insert(&mut self, key: u128, record: u32) -> Seen {
        let (shard, print) = self.place(key, record);
        self.shards[shard].insert(print)
    }

    /// Inserts `keys` (each with its record's print) in order and appends
    /// to `found` what each was: the same as [`SeenIds::insert`] on each,
    /// but a group's table reads are started together, so their cache
    /// misses overlap instead of coming one after another.
    ///
    /// ```
    /// use cts_audit::scan::{Seen, SeenIds};
    /// let mut seen = SeenIds::default();
    /// let mut found = Vec::new();
    /// seen.insert_each(&[(1, 0), (2, 0), (1, 0), (1, 5)], &mut found);
    /// assert_eq!(found, [Seen::New, Seen::New, Seen::Repeat, Seen::Conflict]);
    /// ```
    pub fn insert_each(&mut self, keys: &[(u128, u32)], found: &mut Vec<Seen>) {
        /// About as many misses as a core keeps in flight.
        const GROUP: usize = 16;
        let mut placed = [(0usize, EMPTY); GROUP];
        for group in keys.chunks(GROUP) {
            let mut touched = 0u32;
            for (&(key, record), place) in group.iter().zip(&mut placed) {
                *place = self.place(key, record);
                let shard = &self.shards[place.0];
                if let Some(slot) = shard.slots.get(home(&place.1, shard.slots.len())) {
                    touched ^= slot[0];
                }
            }
            // Keeps the reads: their only purpose is to fetch the lines.
            std::hint::black_box(touched);
            for (shard, print) in &placed[..group.len()] {
                found.push(self.shards[*shard].insert(*print));
            }
        }
    }

    /// The shard and slot content of a key and its record's print.
    fn place(&self, key: u128, record: u32) -> (usize, Slot) {
        let (high, low) = mix(key);
        // The shard is picked by `high`'s top bits and the home slot by
        // `low`, so the bits kept hold all of `low`: a table can regrow
        // from its own slots.
        let mut print = [low as u32, (low >> 32) as u32, record];
        if is_empty(&print) {
            print[0] = 1;
        }
        ((high >> (64 - SHARD_BITS)) as usize, print)
    }

    /// How many ids were seen.
    ///
    /// ```
    /// let mut seen = cts_audit::scan::SeenIds::default();
    /// seen.insert(1, 0);
    /// seen.insert(1, 0);
    /// assert_eq!(seen.len(), 1);
    /// ```
    pub fn len(&self) -> u64 {
        self.shards.iter().map(|s| s.len as u64).sum()
    }

    /// True before the first id.
    ///
    /// ```
    /// assert!(cts_audit::scan::SeenIds::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The memory the set holds: its tables and their headers.
    ///
    /// ```
    /// let mut seen = cts_audit::scan::SeenIds::default();
    /// for key in 0..100_000u128 {
    ///     seen.insert(key, 0);
    /// }
    /// assert!(seen.bytes() < 16 * 100_000 + 4096); // under 16 bytes an id
    /// ```
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .shards
                .iter()
                .map(|s| s.slots.capacity() * std::mem::size_of::<Slot>())
                .sum::<usize>()
    }
}

impl Shard {
    fn insert(&mut self, print: Slot) -> Seen {
        if (self.len + 1) * MAX_LOAD_DEN > self.slots.len() * MAX_LOAD_NUM {
            self.grow();
        }
        let at = probe(&self.slots, &print);
        let slot = &mut self.slots[at];
        if is_empty(slot) {
            *slot = print;
            self.len += 1;
            Seen::New
        } else if slot[2] == print[2] {
            Seen::Repeat
        } else {
            Seen::Conflict
        }
    }

    fn grow(&mut self) {
        let capacity = (self.slots.len() * GROWTH_NUM / GROWTH_DEN).max(self.first_capacity);
        // Written out now, not allocated zeroed: a zeroed allocation maps
        // the shared zero page, and the first write to each page of it then
        // costs a second fault and a TLB flush on every core the scan runs on.
        let mut slots = Vec::with_capacity(capacity);
        slots.resize(capacity, EMPTY);
        let old = std::mem::replace(&mut self.slots, slots);
        // Fingerprints are distinct, so each probe ends at an empty slot.
        for print in old.into_iter().filter(|p| !is_empty(p)) {
            let at = probe(&self.slots, &print);
            self.slots[at] = print;
        }
    }
}

/// An empty slot: no id fingerprint (the record print may be anything).
fn is_empty(slot: &Slot) -> bool {
    slot[..2] == EMPTY[..2]
}

/// The slot that holds the id of `print`, or the empty slot where it
/// belongs: linear probing from its home. Never endless: a table always
/// has an empty slot (its load stays under 1).
fn probe(slots: &[Slot], print: &Slot) -> usize {
    let mut at = home(print, slots.len());
    while slots[at][..2] != print[..2] && !is_empty(&slots[at]) {
        at += 1;
        if at == slots.len() {
            at = 0;
        }
    }
    at
}

/// The home slot of a fingerprint: its low 64 bits scaled to the table
/// (multiply-shift, so the table need not be a power of two).
fn home(print: &Slot, capacity: usize) -> usize {
    let low = u64::from(print[0]) | (u64::from(print[1]) << 32);
    ((u128::from(low) * capacity as u128) >> 64) as usize
}

/// Mixes all 128 bits of a key into two uniform halves. A Feistel network
/// is a bijection, so distinct keys stay distinct before the fingerprint
/// drops 32 bits; after three rounds each half has been through the
/// finalizer with every input bit. Mixing matters because a UUIDv1's high
/// bits follow the clock and its low bits name the host.
fn mix(key: u128) -> (u64, u64) {
    const ROUND_KEYS: [u64; 3] = [
        0x9e37_79b9_7f4a_7c15,
        0xbf58_476d_1ce4_e5b9,
        0x94d0_49bb_1331_11eb,
    ];
    let (mut left, mut right) = ((key >> 64) as u64, key as u64);
    for round_key in ROUND_KEYS {
        (left, right) = (right, left ^ fmix64(right ^ round_key));
    }
    (left, right)
}

/// MurmurHash3's 64-bit finalizer: every input bit moves every output bit.
fn fmix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The dedup key: a UUID's 128 bits, or a 128-bit hash of any other id.
///
/// ```
/// use cts_audit::scan::dedup_key;
/// assert_eq!(dedup_key("cbdd4480-2e03-11ef-82de-cf140e2a70fb"), 0xcbdd44802e0311ef82decf140e2a70fb);
/// assert_ne!(dedup_key("trace-1"), dedup_key("trace-2"));
/// ```
pub fn dedup_key(trace_id: &str) -> u128 {
    if let Some(uuid) = uuid_bits(trace_id.as_bytes()) {
        return uuid;
    }
    let mut first = std::hash::DefaultHasher::new();
    (0u8, trace_id).hash(&mut first);
    let mut second = std::hash::DefaultHasher::new();
    (1u8, trace_id).hash(&mut second);
    (u128::from(first.finish()) << 64) | u128::from(second.finish())
}

/// Hex digit values, `INVALID` for anything else: a table, because the
/// digits of random ids defeat a branchy parse.
const HEX: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

const INVALID: u8 = 0xff;

/// The 128 bits of a UUID written `8-4-4-4-12`.
fn uuid_bits(text: &[u8]) -> Option<u128> {
    /// Where the hex digits of each half are: fixed, so the loops unroll.
    const HIGH: [usize; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17];
    const LOW: [usize; 16] = [
        19, 20, 21, 22, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35,
    ];
    let text: &[u8; 36] = text.try_into().ok()?;
    if text[8] != b'-' || text[13] != b'-' || text[18] != b'-' || text[23] != b'-' {
        return None;
    }
    let mut invalid = 0u8;
    let mut half = |positions: [usize; 16]| {
        positions.iter().fold(0u64, |value, &i| {
            let digit = HEX[usize::from(text[i])];
            invalid |= digit;
            (value << 4) | u64::from(digit & 0x0f)
        })
    };
    let (high, low) = (half(HIGH), half(LOW));
    (invalid & 0xf0 == 0).then_some((u128::from(high) << 64) | u128::from(low))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift: keys as random as UUIDv4s' bits.
    fn random_keys(mut state: u64) -> impl FnMut() -> u128 {
        move || {
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            (u128::from(next()) << 64) | u128::from(next())
        }
    }

    #[test]
    fn every_key_is_new_once_and_then_seen() {
        let mut seen = SeenIds::default();
        let mut next = random_keys(0x9e37_79b9_7f4a_7c15);
        let keys: Vec<u128> = (0..200_000).map(|_| next()).collect();
        for &key in &keys {
            let record = key as u32;
            assert_eq!(seen.insert(key, record), Seen::New);
            assert_eq!(seen.insert(key, record), Seen::Repeat);
            assert_eq!(seen.insert(key, !record), Seen::Conflict);
        }
        // Still there, each with its first record's print, after every
        // table has grown many times.
        assert!(keys
            .iter()
            .all(|&key| seen.insert(key, key as u32) == Seen::Repeat));
        assert!(keys
            .iter()
            .all(|&key| seen.insert(key, !(key as u32)) == Seen::Conflict));
        assert_eq!(seen.len(), 200_000);
        // In groups, the same answers in the same order.
        let mut grouped = SeenIds::default();
        let mut found = Vec::new();
        let twice: Vec<(u128, u32)> = keys.iter().flat_map(|&k| [(k, 0), (k, 0)]).collect();
        grouped.insert_each(&twice[..100_001], &mut found);
        grouped.insert_each(&twice[100_001..], &mut found);
        assert_eq!(found.len(), 400_000);
        assert!(found
            .iter()
            .enumerate()
            .all(|(i, &f)| f == if i % 2 == 0 { Seen::New } else { Seen::Repeat }));
        // Keys that differ in one bit anywhere are told apart.
        let mut seen = SeenIds::default();
        for bit in 0..128 {
            assert_eq!(seen.insert(1u128 << bit, 0), Seen::New, "bit {bit}");
        }
        assert_eq!(seen.insert(0, 0), Seen::New);
        assert_eq!(seen.insert(0, 0), Seen::Repeat);
    }

    #[test]
    fn clock_ordered_uuids_from_one_host_spread_evenly() {
        // UUIDv1: time_low-time_mid-version|time_hi-clock_seq-node. The low
        // 64 bits are the same for every id a host makes.
        let mut seen = SeenIds::default();
        let node_and_clock = 0x82de_cf14_0e2a_70fb_u128;
        for tick in 0..300_000u128 {
            let time_low = (0xcbdd_4480 + tick * 10) & 0xffff_ffff;
            let key = (time_low << 96) | (0x2e03_11ef_u128 << 64) | node_and_clock;
            assert_eq!(seen.insert(key, 0), Seen::New);
        }
        let lens: Vec<usize> = seen.shards.iter().map(|s| s.len).collect();
        let (min, max) = (lens.iter().min(), lens.iter().max());
        // Even shares; a skewed mix would starve some shards.
        assert!(
            *max.unwrap_or(&0) < *min.unwrap_or(&0) * 11 / 10,
            "shard sizes {lens:?}"
        );
        assert!(seen.bytes() as f64 / 300_000.0 <= 16.0);
    }

    #[test]
    fn the_set_stays_at_16_bytes_or_less_per_key() {
        let mut seen = SeenIds::default();
        let mut next = random_keys(0x2545_f491_4f6c_dd1d);
        let mut per_key = Vec::new();
        // Every size from 100 k to 2 M keys, in steps of 5 %.
        let mut n = 100_000u64;
        while n <= 2_000_000 {
            while seen.len() < n {
                seen.insert(next(), 0);
            }
            per_key.push(seen.bytes() as f64 / n as f64);
            n += n / 20;
        }
        let worst = per_key.iter().cloned().fold(0.0, f64::max);
        let mean = per_key.iter().sum::<f64>() / per_key.len() as f64;
        eprintln!("bytes per key: worst {worst:.2}, mean {mean:.2}");
        assert!(worst <= 16.0, "{per_key:?}");
    }

    #[test]
    fn uuid_keys_are_exact_and_others_hashed() {
        assert_eq!(
            uuid_bits(b"CBDD4480-2E03-11EF-82DE-CF140E2A70FB"),
            Some(0xcbdd44802e0311ef82decf140e2a70fb)
        );
        assert_eq!(uuid_bits(b"cbdd4480-2e03-11ef-82de-cf140e2a70fg"), None);
        assert_eq!(uuid_bits(b"cbdd4480x2e03-11ef-82de-cf140e2a70fb"), None);
        assert_eq!(
            dedup_key("cbdd4480-2e03-11ef-82de-cf140e2a70fb"),
            0xcbdd44802e0311ef82decf140e2a70fb
        );
        assert_ne!(
            dedup_key("cccccccccccccccccccc"),
            dedup_key("cccccccccccccccccccd")
        );
        assert_eq!(dedup_key("abc"), dedup_key("abc"));
    }
}
