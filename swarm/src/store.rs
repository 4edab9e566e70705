//! One shard's torrents: a [`Slab`] of 48-byte [`Record`]s found through an [`Index`] of 4-byte
//! buckets (record number and hash tag) that hashes and compares through the records' own keys,
//! so the info hash is stored once; beside it, a slab of the swarms too big for their records
//! ([`Bigs`]).
//!
//! A bucket costs 4 bytes, so even at the low loads of power-of-two growth (37-75%) the table
//! adds 5-11 bytes a torrent, against 80+ for a map holding whole swarms. At 2M IPv4 peers over
//! 1M torrents that makes about 58 bytes a torrent in all (record, bucket share, the unused
//! part of the last chunk): 28.8 bytes a peer of heap, about 30 resident, where a map of swarms
//! took 97 (115 resident). A lookup reads the bucket and then the record, which holds the key,
//! the scrape figures and, for most swarms, every peer: an announce to a small swarm touches
//! no other memory (a map of swarms also read the swarm's peer vector, a scrape of a big swarm
//! reads nothing else either). Records and big swarms never move while live, except when
//! [`Store::tidy`] compacts a slab after mass expiry.

use ahash::RandomState;
use swarmd_proto::InfoHash;

use crate::index::{Index, MAX_SLOTS};
use crate::record::{Bigs, Record};
use crate::slab::Slab;

/// The hash of an info hash, as the registry and every store compute it. The registry picks the
/// shard from bits 32 and up, which the store's index does not use (it takes the low bits for
/// the bucket and the top 8 for the tag), so one hash serves both.
#[inline]
pub(crate) fn hash_key(hasher: &RandomState, key: &InfoHash) -> u64 {
    hasher.hash_one(key)
}

/// A shard's records, their index and their big swarms.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Store {
    /// Record numbers by key hash; `None` while the store is empty.
    index: Option<Index>,
    /// Right after the index, so a lookup finds the index and the first record chunks on one
    /// cache line.
    records: Slab<Record>,
    bigs: Bigs,
}

impl Store {
    pub(crate) fn new() -> Self {
        Self {
            index: None,
            records: Slab::new(),
            bigs: Slab::new(),
        }
    }

    /// Torrents stored.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    #[inline]
    pub(crate) fn get(&self, i: u32) -> &Record {
        self.records.get(i)
    }

    /// Record `i` and the big swarms it may refer to.
    #[inline]
    pub(crate) fn get_mut(&mut self, i: u32) -> (&mut Record, &mut Bigs) {
        (self.records.get_mut(i), &mut self.bigs)
    }

    /// The big swarms, for reading beside a record.
    pub(crate) fn bigs(&self) -> &Bigs {
        &self.bigs
    }

    /// The number of the record keyed `key` (whose hash is `hash`).
    #[inline]
    pub(crate) fn find(&self, hash: u64, key: &InfoHash) -> Option<u32> {
        let index = self.index.as_ref()?;
        let records = &self.records;
        let b = index.find(hash, |i| records.try_get(i).is_some_and(|r| r.key() == key))?;
        // Record numbers stay below MAX_SLOTS (see `insert`).
        u32::try_from(index.slot(b)).ok()
    }

    /// Where the index's bucket array is, as (address, length - 1); (0, 0) without one.
    pub(crate) fn table_span(&self) -> (usize, usize) {
        self.index.as_ref().map_or((0, 0), Index::span)
    }

    /// Starts loading the record a lookup of `hash` most likely ends at. Reads the bucket, so
    /// it pays off once [`Store::prefetch_bucket`] has brought that in.
    #[inline]
    pub(crate) fn prefetch_record(&self, hash: u64) {
        if let Some(r) = self.index.as_ref().and_then(|index| index.home_guess(hash)) {
            if let Some(r) = self.records.try_get(r) {
                crate::prefetch::prefetch_value(r);
            }
        }
    }

    /// Adds an empty record for `key`, which must be absent; `None` if the store is full
    /// ([`MAX_SLOTS`] records).
    pub(crate) fn insert(&mut self, hasher: &RandomState, hash: u64, key: InfoHash) -> Option<u32> {
        let i = self.records.insert(Record::new(key), MAX_SLOTS)?;
        match self.index.as_mut() {
            Some(index) if index.fits(self.records.len()) => index.insert(hash, i as usize),
            _ => self.rebuild_index(hasher),
        }
        Some(i)
    }

    /// Rebuilds the index over the live records, sized for their number.
    fn rebuild_index(&mut self, hasher: &RandomState) {
        let mut index = Index::with_capacity(self.records.len());
        for i in self.records.numbers() {
            let record = self.records.get(i);
            if !record.is_vacant() {
                index.insert(hash_key(hasher, record.key()), i as usize);
            }
        }
        self.index = Some(index);
    }

    /// The bucket of record `i`, whose key hashes to `hash`.
    fn bucket(&self, i: u32, hash: u64) -> Option<usize> {
        let b = self.index.as_ref()?.find(hash, |s| s == i as usize);
        debug_assert!(b.is_some(), "record {i} missing from the index");
        b
    }

    /// Drops record `i` (whose key hashes to `hash`) and its big swarm, if any.
    pub(crate) fn remove(&mut self, hasher: &RandomState, i: u32, hash: u64) {
        if let Some(b) = self.bucket(i, hash) {
            let records = &self.records;
            if let Some(index) = self.index.as_mut() {
                index.remove(b, |s| {
                    records.try_get(s).map_or(0, |r| hash_key(hasher, r.key()))
                });
            }
        }
        let mut record = self.records.take(i);
        record.release(&mut self.bigs);
    }

    /// Every live record.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Record> + '_ {
        self.records
            .numbers()
            .map(|i| self.records.get(i))
            .filter(|r| !r.is_vacant())
    }

    /// Numbers of the records (for a pass that may remove records as it goes: removal never
    /// moves a record).
    pub(crate) fn numbers(&self) -> std::ops::Range<u32> {
        self.records.numbers()
    }

    /// Record `i` unless it is vacant, with the big swarms.
    pub(crate) fn live_mut(&mut self, i: u32) -> Option<(&mut Record, &mut Bigs)> {
        let record = self.records.get_mut(i);
        (!record.is_vacant()).then_some((record, &mut self.bigs))
    }

    /// Gives memory back after removals: compacts a slab once over a quarter of it is vacant,
    /// and rebuilds a sparse index smaller (drops it if the store is empty).
    pub(crate) fn tidy(&mut self, hasher: &RandomState) {
        if self.records.sparse() {
            let index = &mut self.index;
            self.records.compact(
                |r| !r.is_vacant(),
                |from, to, record| {
                    let hash = hash_key(hasher, record.key());
                    if let Some(index) = index.as_mut() {
                        match index.find(hash, |s| s == from as usize) {
                            Some(b) => index.set(b, to as usize),
                            None => debug_assert!(false, "record {from} missing from the index"),
                        }
                    }
                },
            );
        }
        if self.bigs.sparse() {
            // Renumber the big swarms, then the records that refer to them.
            let mut renumbered = Vec::new();
            self.bigs
                .compact(Option::is_some, |from, to, _| renumbered.push((from, to)));
            renumbered.sort_unstable();
            for i in self.records.numbers() {
                let record = self.records.get_mut(i);
                let moved = record
                    .big_slot()
                    .and_then(|s| renumbered.binary_search_by_key(&s, |m| m.0).ok());
                if let Some(m) = moved {
                    record.set_big_slot(renumbered[m].1);
                }
            }
        }
        if self.records.len() == 0 {
            self.index = None;
        } else if self
            .index
            .as_ref()
            .is_some_and(|i| i.too_sparse(self.records.len()))
        {
            self.rebuild_index(hasher);
        }
    }

    /// Checks that the index, the records and the big swarms agree (tests): every live record
    /// is found by its key under its number and the index holds nothing else, the slabs' free
    /// lists hold exactly their vacant numbers, and every big swarm belongs to one record.
    #[cfg(test)]
    pub(crate) fn check(&self, hasher: &RandomState) {
        let mut live = 0;
        let mut owned = vec![false; self.bigs.slots()];
        for record in self.iter() {
            live += 1;
            let key = record.key();
            let i = self
                .find(hash_key(hasher, key), key)
                .expect("record indexed");
            assert_eq!(self.records.get(i).key(), key);
            if let Some(s) = record.big_slot() {
                assert!(!std::mem::replace(&mut owned[s as usize], true), "shared");
            }
        }
        assert_eq!(live, self.len(), "live records");
        let indexed = self.index.as_ref().map_or(0, |i| i.occupied());
        assert_eq!(indexed, self.len(), "index entries");
        if let Some(index) = &self.index {
            assert!(index.fits(self.len()));
        }
        self.records.check(|r| !r.is_vacant());
        self.bigs.check(Option::is_some);
        assert_eq!(
            owned.iter().filter(|&&o| o).count(),
            self.bigs.len(),
            "stray big swarms"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slab::CHUNK;

    fn key(n: u32) -> InfoHash {
        let mut k = [7; 20];
        k[..4].copy_from_slice(&n.to_le_bytes());
        InfoHash(k)
    }

    #[test]
    fn insert_find_remove_reuse_and_compact() {
        let hasher = RandomState::new();
        let mut store = Store::new();
        let h = |n| hash_key(&hasher, &key(n));
        let mut numbers = Vec::new();
        for n in 0..1000 {
            assert_eq!(store.find(h(n), &key(n)), None);
            numbers.push(store.insert(&hasher, h(n), key(n)).expect("room"));
        }
        store.check(&hasher);
        assert_eq!(store.len(), 1000);
        assert_eq!(store.records.slots(), 1000usize.div_ceil(CHUNK) * CHUNK);
        for n in 0..1000 {
            assert_eq!(store.find(h(n), &key(n)), Some(numbers[n as usize]));
        }
        // Vacant records are reused before the slab grows.
        store.remove(&hasher, numbers[10], h(10));
        assert_eq!(store.insert(&hasher, h(5000), key(5000)), Some(numbers[10]));
        store.remove(&hasher, numbers[10], h(5000));
        // Mass removal, then a tidy: the survivors move down and stay findable.
        for n in (0..1000).filter(|n| n % 10 != 0 && *n != 10) {
            store.remove(&hasher, numbers[n as usize], h(n));
        }
        store.check(&hasher);
        store.tidy(&hasher);
        store.check(&hasher);
        assert_eq!(store.len(), 99);
        assert_eq!(store.records.slots(), 99usize.div_ceil(CHUNK) * CHUNK);
        for n in (0..1000).filter(|n| n % 10 == 0 && *n != 10) {
            assert!(store.find(h(n), &key(n)).is_some(), "lost {n}");
        }
        assert!(store.index.as_ref().is_some_and(|i| i.buckets() <= 256));
        // Emptied entirely, it keeps nothing.
        for n in (0..1000).filter(|n| n % 10 == 0 && *n != 10) {
            let i = store.find(h(n), &key(n)).expect("present");
            store.remove(&hasher, i, h(n));
        }
        store.tidy(&hasher);
        store.check(&hasher);
        assert_eq!(store.records.slots(), 0);
        assert!(store.index.is_none());
    }
}
