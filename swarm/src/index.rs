//! A compact open-addressing index (key hash -> slot) over keys stored elsewhere: the peer index
//! of the larger swarms (address -> position in the peer vector) and each shard's torrent table
//! (info hash -> record number in its [`Store`](crate::store::Store)).
//!
//! A bucket is one `u32`: the slot number + 1 in the low 24 bits (0 meaning empty) and an 8-bit
//! tag from the hash's high bits, so a lookup rarely touches a key that is not the one sought.
//! The keys live with their owners (the peer vector, the records), so the index costs 4 bytes a
//! bucket (5-11 bytes an entry) instead of a general-purpose map's 16+, and a lookup reads one
//! bucket line before the owner's. Linear probing, load factor at most 3/4, backward-shift
//! deletion (no tombstones). Callers pass the hash and an equality test on slots, so the same
//! table serves every kind of key. It is rebuilt, never resized in place, when it grows or
//! shrinks.

/// Fewest buckets an index ever has.
const MIN_BUCKETS: usize = 64;
/// Bits of a bucket holding the slot number + 1.
const SLOT_BITS: u32 = 24;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
/// Most slots an index can address (slots `0..MAX_SLOTS`).
pub(crate) const MAX_SLOTS: usize = SLOT_MASK as usize;

/// The slot table. Its length is a power of two, at least [`MIN_BUCKETS`].
#[derive(Debug, Clone)]
pub(crate) struct Index {
    buckets: Box<[u32]>,
}

impl Index {
    /// Builds an index over slots `0..n`, given each slot's hash in slot order.
    pub(crate) fn build(hashes: impl ExactSizeIterator<Item = u64>) -> Self {
        let mut index = Self::with_capacity(hashes.len());
        for (slot, hash) in hashes.enumerate() {
            index.insert(hash, slot);
        }
        index
    }

    /// An empty index sized for `n` entries (to be [`insert`](Index::insert)ed).
    pub(crate) fn with_capacity(n: usize) -> Self {
        // Load at most 2/3 right after a build, so growth is amortised.
        let want = n.saturating_add(n / 2).saturating_add(1);
        let len = want
            .checked_next_power_of_two()
            .unwrap_or(1 << (usize::BITS - 1));
        Self {
            buckets: vec![0; len.max(MIN_BUCKETS)].into_boxed_slice(),
        }
    }

    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    /// Number of buckets.
    #[cfg(test)]
    pub(crate) fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// True if the index can hold `n` entries within its load factor (3/4).
    pub(crate) fn fits(&self, n: usize) -> bool {
        n.saturating_mul(4) <= self.buckets.len().saturating_mul(3)
    }

    /// True if `n` entries leave the index so sparse that it should be rebuilt smaller.
    pub(crate) fn too_sparse(&self, n: usize) -> bool {
        self.buckets.len() > MIN_BUCKETS && n.saturating_mul(8) < self.buckets.len()
    }

    /// The bucket holding the slot that `is_match` accepts, probing from `hash`.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut is_match: impl FnMut(usize) -> bool) -> Option<usize> {
        let mask = self.mask();
        let tag = tag(hash);
        // Truncation is intended: the low bits of the hash pick the home bucket.
        let mut b = hash as usize & mask;
        // The load factor guarantees an empty bucket; the bound only makes that obvious.
        for _ in 0..self.buckets.len() {
            let e = self.buckets[b];
            if e == 0 {
                return None;
            }
            if e & !SLOT_MASK == tag && is_match(entry_slot(e)) {
                return Some(b);
            }
            b = (b + 1) & mask;
        }
        None
    }

    /// The bucket array as (address, length - 1): where the home bucket of a hash `h` is,
    /// at `address + (h & mask) * 4`, for prefetching without a reference to the index.
    pub(crate) fn span(&self) -> (usize, usize) {
        (self.buckets.as_ptr().addr(), self.mask())
    }

    /// The slot in the home bucket of `hash` if that bucket's tag matches: where a lookup most
    /// likely ends, without probing further (a guess, for prefetching).
    #[inline]
    pub(crate) fn home_guess(&self, hash: u64) -> Option<usize> {
        // Truncation is intended, as in `find`.
        let e = self.buckets[hash as usize & self.mask()];
        (e != 0 && e & !SLOT_MASK == tag(hash)).then(|| entry_slot(e))
    }

    /// The slot stored in bucket `b` (which must be occupied).
    #[inline]
    pub(crate) fn slot(&self, b: usize) -> usize {
        entry_slot(self.buckets[b])
    }

    /// Points bucket `b` (which keeps its tag: it is the same peer's entry) at `slot`.
    pub(crate) fn set(&mut self, b: usize, slot: usize) {
        self.buckets[b] = (self.buckets[b] & !SLOT_MASK) | slot_value(slot);
    }

    /// Adds `slot` under `hash`. The caller ensures it is absent and that the index [`fits`].
    ///
    /// [`fits`]: Index::fits
    pub(crate) fn insert(&mut self, hash: u64, slot: usize) {
        let mask = self.mask();
        let mut b = hash as usize & mask;
        for _ in 0..self.buckets.len() {
            if self.buckets[b] == 0 {
                self.buckets[b] = tag(hash) | slot_value(slot);
                return;
            }
            b = (b + 1) & mask;
        }
    }

    /// Empties bucket `b`, shifting back the entries after it that probed past it.
    /// `hash_of(slot)` gives the hash of the entry stored for `slot`.
    pub(crate) fn remove(&mut self, b: usize, hash_of: impl Fn(usize) -> u64) {
        let mask = self.mask();
        let mut hole = b & mask;
        let mut j = hole;
        for _ in 0..self.buckets.len() {
            j = (j + 1) & mask;
            let e = self.buckets[j];
            if e == 0 {
                break;
            }
            let home = hash_of(entry_slot(e)) as usize & mask;
            // The entry at j may fill the hole unless its home lies cyclically in (hole, j].
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                self.buckets[hole] = e;
                hole = j;
            }
        }
        self.buckets[hole] = 0;
    }

    /// Number of occupied buckets (for consistency checks in tests).
    #[cfg(test)]
    pub(crate) fn occupied(&self) -> usize {
        self.buckets.iter().filter(|&&s| s != 0).count()
    }
}

/// Stored form of a slot: slot + 1, so 0 can mean empty. Slots stay below [`MAX_SLOTS`]: the
/// registry caps swarms there.
fn slot_value(slot: usize) -> u32 {
    u32::try_from(slot.saturating_add(1).min(MAX_SLOTS)).unwrap_or(SLOT_MASK)
}

fn entry_slot(e: u32) -> usize {
    ((e & SLOT_MASK) as usize).wrapping_sub(1)
}

/// The tag of a hash, in bucket position: its top 8 bits (the low bits choose the bucket).
fn tag(hash: u64) -> u32 {
    ((hash >> 56) as u32) << SLOT_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deliberately bad hash (many collisions, few distinct tags) to exercise probing and
    /// backward shifts.
    fn h(key: u32) -> u64 {
        u64::from(key % 37) | (u64::from(key % 3) << 56)
    }

    #[test]
    fn insert_find_remove_with_collisions() {
        let mut keys: Vec<u32> = (0..500).map(|i| i * 7 + 3).collect();
        let mut index = Index::build(keys.iter().map(|&k| h(k)));
        assert!(index.fits(keys.len()));
        for (slot, &k) in keys.iter().enumerate() {
            let b = index.find(h(k), |s| keys[s] == k).expect("present");
            assert_eq!(index.slot(b), slot);
        }
        // Remove every third key, swap-remove style, keeping the index in sync.
        let mut i = 0;
        while i < keys.len() {
            if keys[i] % 3 == 0 {
                let last = keys.len() - 1;
                let bl = index
                    .find(h(keys[last]), |s| s == last)
                    .expect("last present");
                if i != last {
                    let bi = index.find(h(keys[i]), |s| s == i).expect("i present");
                    index.set(bi, last);
                    index.set(bl, i);
                    keys.swap(i, last);
                }
                let b = index
                    .find(h(keys[last]), |s| s == last)
                    .expect("moved present");
                let snapshot = keys.clone();
                index.remove(b, |s| h(snapshot[s]));
                keys.pop();
            } else {
                i += 1;
            }
        }
        assert_eq!(index.occupied(), keys.len());
        for (slot, &k) in keys.iter().enumerate() {
            let b = index.find(h(k), |s| keys[s] == k).expect("still present");
            assert_eq!(index.slot(b), slot);
        }
        assert!(index.find(h(6), |s| keys[s] == 6).is_none());
    }

    #[test]
    fn sizing() {
        let index = Index::build(std::iter::empty());
        assert_eq!(index.buckets(), MIN_BUCKETS);
        assert!(index.fits(48));
        assert!(!index.fits(49));
        let big =
            Index::build((0..1000u32).map(|k| u64::from(k).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        assert_eq!(big.buckets(), 2048);
        assert!(big.too_sparse(200));
        assert!(!big.too_sparse(300));
    }
}
