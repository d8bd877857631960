//! The trace ids seen so far, in at most 16 bytes each.
//!
//! A general-purpose hash set costs 28–29 bytes per 16-byte key here: a
//! control byte per bucket, and a power-of-two table that is between 7/16
//! and 7/8 full. This set keeps a 96-bit fingerprint of each key in 12-byte
//! slots of open-addressed tables (linear probing) that grow by a quarter
//! at 7/8 full, so each table is between 70 % and 87.5 % full: 13.7–17.1
//! bytes per key, and 15.4 on average once the shards below spread their
//! growth.
//!
//! Ninety-six bits is exact in practice: the chance that any two of
//! n distinct ids share a fingerprint is about n² / 2⁹⁷, which is 6 × 10⁻¹²
//! for a billion unique traces.

/// One fingerprint; all zeros marks an empty slot.
type Slot = [u32; 3];

const EMPTY: Slot = [0; 3];

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

/// A set of 128-bit keys kept as 96-bit fingerprints, for deduplication:
/// the scan's memory of trace ids, under 16 bytes each.
///
/// ```
/// use cts_audit::scan::{dedup_key, SeenIds};
/// let mut seen = SeenIds::default();
/// assert!(seen.insert(dedup_key("cbdd4480-2e03-11ef-82de-cf140e2a70fb")));
/// assert!(!seen.insert(dedup_key("cbdd4480-2e03-11ef-82de-cf140e2a70fb")));
/// let mut new = Vec::new();
/// seen.insert_each(&[dedup_key("a"), dedup_key("b"), dedup_key("a")], &mut new);
/// assert_eq!(new, [true, true, false]);
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
    /// True when `key` is new.
    ///
    /// ```
    /// let mut seen = cts_audit::scan::SeenIds::default();
    /// assert!(seen.insert(42) && !seen.insert(42));
    /// ```
    pub fn insert(&mut self, key: u128) -> bool {
        let (shard, print) = self.place(key);
        self.shards[shard].insert(print)
    }

    /// Inserts `keys` in order and appends to `new` whether each was new:
    /// the same as [`SeenIds::insert`] on each, but a group's table reads
    /// are started together, so their cache misses overlap instead of
    /// coming one after another.
    ///
    /// ```
    /// let mut seen = cts_audit::scan::SeenIds::default();
    /// let mut new = Vec::new();
    /// seen.insert_each(&[1, 2, 1], &mut new);
    /// assert_eq!(new, [true, true, false]);
    /// ```
    pub fn insert_each(&mut self, keys: &[u128], new: &mut Vec<bool>) {
        /// About as many misses as a core keeps in flight.
        const GROUP: usize = 16;
        let mut placed = [(0usize, EMPTY); GROUP];
        for group in keys.chunks(GROUP) {
            let mut touched = 0u32;
            for (key, place) in group.iter().zip(&mut placed) {
                *place = self.place(*key);
                let shard = &self.shards[place.0];
                if let Some(slot) = shard.slots.get(home(&place.1, shard.slots.len())) {
                    touched ^= slot[0];
                }
            }
            // Keeps the reads: their only purpose is to fetch the lines.
            std::hint::black_box(touched);
            for (shard, print) in &placed[..group.len()] {
                new.push(self.shards[*shard].insert(*print));
            }
        }
    }

    /// The shard and fingerprint of a key.
    fn place(&self, key: u128) -> (usize, Slot) {
        let (high, low) = mix(key);
        // The shard is picked by `high`'s top bits and the home slot by
        // `low`, so the 96 bits kept hold all of `low`: a table can regrow
        // from its own slots.
        let mut print = [low as u32, (low >> 32) as u32, high as u32];
        if print == EMPTY {
            print = [1, 0, 0];
        }
        ((high >> (64 - SHARD_BITS)) as usize, print)
    }

    /// How many ids were seen.
    ///
    /// ```
    /// let mut seen = cts_audit::scan::SeenIds::default();
    /// seen.insert(1);
    /// seen.insert(1);
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
    ///     seen.insert(key);
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
    fn insert(&mut self, print: Slot) -> bool {
        if (self.len + 1) * MAX_LOAD_DEN > self.slots.len() * MAX_LOAD_NUM {
            self.grow();
        }
        let at = probe(&self.slots, &print);
        if self.slots[at] == print {
            return false;
        }
        self.slots[at] = print;
        self.len += 1;
        true
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
        for print in old.into_iter().filter(|p| *p != EMPTY) {
            let at = probe(&self.slots, &print);
            self.slots[at] = print;
        }
    }
}

/// The slot that holds `print`, or the empty slot where it belongs: linear
/// probing from its home. Never endless: a table always has an empty slot
/// (its load stays under 1).
fn probe(slots: &[Slot], print: &Slot) -> usize {
    let mut at = home(print, slots.len());
    while slots[at] != *print && slots[at] != EMPTY {
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
            assert!(seen.insert(key));
            assert!(!seen.insert(key));
        }
        // Still there after every table has grown many times.
        assert!(keys.iter().all(|&key| !seen.insert(key)));
        assert_eq!(seen.len(), 200_000);
        // In groups, the same answers in the same order.
        let mut grouped = SeenIds::default();
        let mut new = Vec::new();
        let twice: Vec<u128> = keys.iter().flat_map(|&k| [k, k]).collect();
        grouped.insert_each(&twice[..100_001], &mut new);
        grouped.insert_each(&twice[100_001..], &mut new);
        assert_eq!(new.len(), 400_000);
        assert!(new.iter().enumerate().all(|(i, &n)| n == (i % 2 == 0)));
        // Keys that differ in one bit anywhere are told apart.
        let mut seen = SeenIds::default();
        for bit in 0..128 {
            assert!(seen.insert(1u128 << bit), "bit {bit}");
        }
        assert!(seen.insert(0));
        assert!(!seen.insert(0));
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
            assert!(seen.insert(key));
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
                seen.insert(next());
            }
            per_key.push(seen.bytes() as f64 / n as f64);
            n += n / 20;
        }
        let worst = per_key.iter().cloned().fold(0.0, f64::max);
        let mean = per_key.iter().sum::<f64>() / per_key.len() as f64;
        eprintln!("bytes per key: worst {worst:.2}, mean {mean:.2}");
        assert!(worst <= 16.0, "{per_key:?}");
    }
}
