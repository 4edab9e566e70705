//! Every torrent's private-mode state, sharded by a keyed hash of the info hash exactly as the
//! registry shards its swarms: 256 shards, each a mutex on its own cache line. An announce
//! locks one shard, briefly; announces for torrents in different shards never contend.
//!
//! A shard keeps two maps, and a hash is in at most one of them:
//! * `active`: the torrents with sessions or pending accounting (and removed torrents whose
//!   sessions have not ended yet), as full [`TorrentState`]s whose first session and first
//!   pending record sit inline, in a dense vector found through a map of positions or,
//!   usually, straight through a checked hint ([`Active`], [`Hints`]), so an announce of a
//!   torrent's first session costs the cache misses of its state, which the UDP tracker's
//!   prefetch pipeline starts early (any other session, one more: its torrent's vector);
//! * `idle`: listed torrents nobody announces with a key, as bare [`TorrentEntry`]s (56-byte
//!   buckets), so a catalogue of dead torrents stays small.
//!
//! A torrent moves to `active` at its first accounted announce, and back to `idle` at the
//! flush that finds it with nothing left.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher as _};
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{Mutex, MutexGuard};
use swarmd_proto::InfoHash;
use swarmd_swarm::prefetch::Published;
use swarmd_swarm::Prefetch;

use crate::hashing::InfoHashState;
use crate::model::Mode;
use crate::session::{Removed, Session};
use crate::small::Keyed as _;
use crate::torrent::{Taken, TorrentEntry, TorrentState};

/// Number of shards (a power of two).
const SHARDS: usize = 256;

/// One shard's state.
#[derive(Debug)]
pub(crate) struct Shard {
    pub(crate) active: Active,
    pub(crate) idle: HashMap<InfoHash, TorrentEntry, InfoHashState>,
    /// Sessions dropped since the last flush, whose rows the flush deletes.
    pub(crate) removed: Vec<Removed>,
    /// Where active torrents' states were last seen.
    pub(crate) hints: Hints,
}

/// An active torrent: its hash beside its state, so a hint can be checked where it points.
/// Cache-line aligned, so what a keep-alive of a torrent's first session reads (the hash, the
/// flags, the inline session) is exactly the slot's first two lines.
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct Slot {
    pub(crate) hash: InfoHash,
    pub(crate) state: TorrentState,
}

/// A shard's active torrents: their states in one dense vector of [`Slot`]s, found by hash
/// through a map of positions, or straight through a [`Hints`] position that the slot's hash
/// confirms. A confirmed hint skips the map, and with it the cache miss on the map's control
/// bytes that no prefetch could reach (the map does not say where a key's bytes are). A flush
/// that drops a state moves the last one into its place; positions held across that go stale,
/// which is why a hint is always checked.
#[derive(Debug)]
pub(crate) struct Active {
    positions: HashMap<InfoHash, u32, InfoHashState>,
    slots: Vec<Slot>,
}

/// A position as the map and the hints store it: a shard never holds anywhere near 2^32
/// active torrents (each is hundreds of bytes), so the fallback is never taken.
fn pos32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

impl Active {
    /// No active torrents; the position map hashes with `hasher`.
    pub(crate) fn new(hasher: InfoHashState) -> Self {
        Self {
            positions: HashMap::with_hasher(hasher),
            slots: Vec::new(),
        }
    }

    /// Number of active torrents.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether `info_hash` is active.
    #[cfg(test)]
    pub(crate) fn contains_key(&self, info_hash: &InfoHash) -> bool {
        self.positions.contains_key(info_hash)
    }

    /// The state of `info_hash`.
    pub(crate) fn get(&self, info_hash: &InfoHash) -> Option<&TorrentState> {
        let at = *self.positions.get(info_hash)? as usize;
        self.slots.get(at).map(|s| &s.state)
    }

    /// The state of `info_hash`, mutably.
    pub(crate) fn get_mut(&mut self, info_hash: &InfoHash) -> Option<&mut TorrentState> {
        self.find_mut(info_hash, None).map(|(_, t)| t)
    }

    /// The position and state of `info_hash`: at position `hint` if that slot holds it, else
    /// wherever the map says.
    #[inline]
    pub(crate) fn find_mut(
        &mut self,
        info_hash: &InfoHash,
        hint: Option<usize>,
    ) -> Option<(usize, &mut TorrentState)> {
        let at = match hint {
            Some(at) if self.slots.get(at).is_some_and(|s| s.hash == *info_hash) => at,
            _ => *self.positions.get(info_hash)? as usize,
        };
        self.slots.get_mut(at).map(|s| (at, &mut s.state))
    }

    /// The position and state of `info_hash`, made by `make` if it is not active.
    pub(crate) fn get_or_insert_with(
        &mut self,
        info_hash: &InfoHash,
        make: impl FnOnce() -> TorrentState,
    ) -> (usize, &mut TorrentState) {
        let at = match self.positions.get(info_hash) {
            Some(&at) => at as usize,
            None => {
                let at = self.slots.len();
                self.positions.insert(*info_hash, pos32(at));
                self.slots.push(Slot {
                    hash: *info_hash,
                    state: make(),
                });
                at
            }
        };
        let slot = &mut self.slots[at];
        (at, &mut slot.state)
    }

    /// Keeps the states `keep` returns true for, visiting each once; a dropped one's place is
    /// taken by the last.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&InfoHash, &mut TorrentState) -> bool) {
        let mut i = 0;
        while let Some(Slot { hash, state }) = self.slots.get_mut(i) {
            if keep(hash, state) {
                i += 1;
                continue;
            }
            let gone = self.slots.swap_remove(i);
            self.positions.remove(&gone.hash);
            if let Some(moved) = self.slots.get(i) {
                self.positions.insert(moved.hash, pos32(i));
            }
        }
    }

    /// Every state with its hash, mutably.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&InfoHash, &mut TorrentState)> {
        self.slots.iter_mut().map(|s| (&s.hash, &mut s.state))
    }

    /// Gives memory back after a spike.
    fn shrink(&mut self) {
        shrink(&mut self.positions);
        let used = self.slots.len();
        if self.slots.capacity() > 64 && used.saturating_mul(4) < self.slots.capacity() {
            self.slots.shrink_to(used * 2);
        }
    }

    /// Starts loading the cache lines of the slot at position `at` that an announce reads, if
    /// there is one (a hint: it may hold another torrent by now; nothing is read): up to the
    /// pending records, which only announces that credit something touch.
    #[inline]
    fn prefetch(&self, at: usize) {
        /// Bytes from a slot's start to its pending records.
        const HOT: usize =
            std::mem::offset_of!(Slot, state) + std::mem::offset_of!(TorrentState, pending);
        if let Some(slot) = self.slots.get(at) {
            let start = std::ptr::from_ref(slot).addr();
            let end = start.wrapping_add(HOT);
            let mut line = start & !63;
            while line < end {
                swarmd_swarm::prefetch::prefetch(std::ptr::without_provenance::<u8>(line));
                line = line.wrapping_add(64);
            }
        }
    }
}

/// Where each active torrent's state was last seen: a table of [`Active`] positions by
/// info-hash bits, written at every accounted announce that found its torrent elsewhere. The
/// announce path tries the noted position first (see [`Active::find_mut`]), and the prefetch
/// pipeline loads the slot it names ahead of the request.
///
/// Two-way set associative: the low bits pick a pair of entries (in one cache line), and each
/// entry keeps 32 more bits as a tag, so a torrent finds its own entry, or none, rather than
/// a neighbour's, whose slot the prefetch would load for nothing; a new entry takes the
/// pair's first place and the one it displaces the second. A position still goes stale when
/// a flush moves states, and tags can collide; either way the slot's hash does not match and
/// the map is asked, so a hint never changes an answer. 8-byte entries, a power of two of
/// them at least four per active torrent when the table is made, and it is made again once
/// the shard has half as many active torrents as entries: 16 to 64 bytes per active torrent
/// (given back at a flush that finds the shard far emptier).
#[derive(Debug, Default)]
pub(crate) struct Hints {
    /// (tag, position + 1) pairs; position + 1 is 0 for none.
    slots: Vec<[u32; 2]>,
}

/// The tag of hash bits `bits`: bits the table's index does not use (up to 2^24 entries).
#[inline]
fn hint_tag(bits: u64) -> u32 {
    // Truncation is intended: 32 bits above the index's.
    (bits >> 24) as u32
}

impl Hints {
    /// The first entry of the pair of hash bits `bits`.
    #[inline]
    fn set(&self, bits: u64) -> Option<usize> {
        // Truncation is intended: the low bits pick the pair.
        (!self.slots.is_empty()).then(|| bits as usize & (self.slots.len() - 1) & !1)
    }

    /// The position last noted for hash bits `bits`, if any.
    #[inline]
    pub(crate) fn get(&self, bits: u64) -> Option<usize> {
        let set = self.set(bits)?;
        let tag = hint_tag(bits);
        let pair = self.slots.get(set..set + 2)?;
        let [_, at] = pair.iter().find(|[t, at]| *t == tag && *at != 0)?;
        (*at as usize).checked_sub(1)
    }

    /// Notes that the torrent with hash bits `bits` is at position `at`, with `active`
    /// torrents in the shard (the table grows to four times that when it falls below twice,
    /// dropping what it knew). True if the table moved (republish it:
    /// [`ShardCell::publish_hints`]).
    #[inline]
    pub(crate) fn note(&mut self, bits: u64, at: usize, active: usize) -> bool {
        let moved = self.slots.len() < active.saturating_mul(2);
        if moved {
            self.slots = vec![[0; 2]; (active * 4).next_power_of_two().max(64)];
        }
        let tag = hint_tag(bits);
        let entry = [tag, pos32(at).saturating_add(1)];
        if let Some(pair) = self
            .set(bits)
            .and_then(|set| self.slots.get_mut(set..set + 2))
        {
            match pair.iter().position(|[t, _]| *t == tag) {
                Some(way) => pair[way] = entry,
                None => {
                    pair[1] = pair[0];
                    pair[0] = entry;
                }
            }
        }
        moved
    }

    /// The entry array as (address, length - 1), or (0, 0) if there is none.
    pub(crate) fn span(&self) -> (usize, usize) {
        if self.slots.is_empty() {
            (0, 0)
        } else {
            (self.slots.as_ptr().addr(), self.slots.len() - 1)
        }
    }

    /// Entries in the table.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Entries holding a position.
    #[cfg(test)]
    pub(crate) fn noted(&self) -> usize {
        self.slots.iter().filter(|[_, at]| *at != 0).count()
    }

    /// Gives memory back once the shard has far fewer active torrents than entries.
    fn fit(&mut self, active: usize) {
        if self.slots.len() > 64 && active.saturating_mul(16) < self.slots.len() {
            self.slots = Vec::new();
        }
    }
}

impl Shard {
    /// The active state of `info_hash` (see [`activate`]).
    pub(crate) fn activate(&mut self, info_hash: &InfoHash, unlisted_id: i64) -> &mut TorrentState {
        activate(&mut self.active, &mut self.idle, info_hash, unlisted_id).1
    }

    /// Takes what the flush writes out of every active torrent of the shard (see
    /// [`TorrentState::take`]); torrents left with nothing go back to idle if listed, or are
    /// forgotten.
    pub(crate) fn take(&mut self, now: i64, timeout: u32, out: &mut Taken) {
        let timeout = i64::from(timeout);
        out.removed.append(&mut self.removed);
        let idle = &mut self.idle;
        self.active.retain(|h, t| {
            t.take(h, now, timeout, out);
            settle(idle, h, t)
        });
        self.active.shrink();
        self.hints.fit(self.active.len());
    }

    /// Drops the sessions `evict` selects (see [`TorrentState::evict`]); returns how many.
    pub(crate) fn evict(
        &mut self,
        evict: &mut impl FnMut(&Session) -> bool,
        out: &mut Vec<(InfoHash, Session)>,
    ) -> usize {
        let Shard {
            active,
            idle,
            removed,
            ..
        } = self;
        let mut n = 0;
        active.retain(|h, t| {
            n += t.evict(h, evict, removed, out);
            settle(idle, h, t)
        });
        n
    }
}

/// The position and active state of `info_hash`: made from its idle entry if it is listed,
/// or a fresh unlisted state with row id `unlisted_id` if it is not known at all.
pub(crate) fn activate<'a>(
    active: &'a mut Active,
    idle: &mut HashMap<InfoHash, TorrentEntry, InfoHashState>,
    info_hash: &InfoHash,
    unlisted_id: i64,
) -> (usize, &'a mut TorrentState) {
    active.get_or_insert_with(info_hash, || match idle.remove(info_hash) {
        Some(e) => TorrentState::listed(&e),
        None => TorrentState::unlisted(unlisted_id),
    })
}

/// Whether an active state stays active; one with nothing left goes to `idle` if listed.
fn settle(
    idle: &mut HashMap<InfoHash, TorrentEntry, InfoHashState>,
    h: &InfoHash,
    t: &TorrentState,
) -> bool {
    if !t.sessions.is_empty() || !t.pending.is_empty() {
        return true;
    }
    if let Some(e) = t.entry() {
        idle.insert(*h, e);
    }
    false
}

/// Gives memory back after a spike.
fn shrink<V>(map: &mut HashMap<InfoHash, V, InfoHashState>) {
    let used = map.len();
    if map.capacity() > 64 && used.saturating_mul(4) < map.capacity() {
        map.shrink_to(used * 2);
    }
}

/// A shard on its own cache line(s), so neighbouring locks do not false-share, with the
/// address of its hint table published beside the lock.
#[repr(align(64))]
#[derive(Debug)]
pub(crate) struct ShardCell {
    shard: Mutex<Shard>,
    /// The shard's [`Hints`] slot array, republished whenever it moves, and read without the
    /// lock by the prefetch's first step, which only prefetches the slot.
    hint_table: Published,
}

impl ShardCell {
    /// Locks the shard.
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, Shard> {
        self.shard.lock()
    }

    /// Records where `hints`' slots now are (call with the shard locked, `hints` its own).
    pub(crate) fn publish_hints(&self, hints: &Hints) {
        self.hint_table.publish(hints.span());
    }

    /// The hint table as last published.
    #[cfg(test)]
    pub(crate) fn published_hints(&self) -> (usize, usize) {
        self.hint_table.get()
    }
}

/// Every shard, and the count of listed torrents.
#[derive(Debug)]
pub(crate) struct Torrents {
    shards: Box<[ShardCell]>,
    /// Keyed hash choosing a torrent's shard (not the maps' key, so a shard's keys do not share
    /// hash bits).
    hasher: InfoHashState,
    /// Listed torrents; changed only with the view write-locked (admin operations).
    listed: AtomicUsize,
}

impl Torrents {
    /// Empty shards.
    pub(crate) fn new() -> Self {
        let map_hasher = InfoHashState::new();
        Self {
            shards: (0..SHARDS)
                .map(|_| ShardCell {
                    shard: Mutex::new(Shard {
                        active: Active::new(map_hasher),
                        idle: HashMap::with_hasher(map_hasher),
                        removed: Vec::new(),
                        hints: Hints::default(),
                    }),
                    hint_table: Published::default(),
                })
                .collect(),
            hasher: InfoHashState::new(),
            listed: AtomicUsize::new(0),
        }
    }

    /// The shard holding `info_hash`.
    #[inline]
    pub(crate) fn shard(&self, info_hash: &InfoHash) -> &ShardCell {
        self.locate(info_hash).1
    }

    /// The shard holding `info_hash`, and the hash bits its [`Hints`] use.
    #[inline]
    pub(crate) fn locate(&self, info_hash: &InfoHash) -> (u64, &ShardCell) {
        // The bytes straight into the hasher: `hash_one` would go through the generic (and
        // out-of-line) `Hash` of arrays, which is a tenth of a keep-alive's time.
        let mut hasher = self.hasher.build_hasher();
        hasher.write(&info_hash.0);
        let h = hasher.finish();
        // Truncation is intended: the low bits pick the shard (the maps' hasher has other keys).
        let i = h as usize & (SHARDS - 1);
        (h >> SHARDS.trailing_zeros(), &self.shards[i])
    }

    /// Starts loading what an announce of `info_hash` reads (see
    /// [`AccessPolicy::prefetch`](swarmd_swarm::access::AccessPolicy::prefetch)): at the first
    /// step the shard's lock and, without the lock, the torrent's hint entry (through the
    /// published table address beside the lock); at the second, under the lock if it is free,
    /// the slot the entry names.
    pub(crate) fn prefetch(&self, info_hash: &InfoHash, step: Prefetch) {
        let (bits, cell) = self.locate(info_hash);
        match step {
            Prefetch::Bucket => {
                swarmd_swarm::prefetch::prefetch(std::ptr::from_ref(&cell.shard));
                cell.hint_table.prefetch::<[u32; 2]>(bits);
            }
            Prefetch::Record => {
                if let Some(shard) = cell.shard.try_lock() {
                    if let Some(at) = shard.hints.get(bits) {
                        shard.active.prefetch(at);
                    }
                }
            }
        }
    }

    /// Every shard, in a fixed order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &ShardCell> {
        self.shards.iter()
    }

    /// Number of listed torrents.
    pub(crate) fn listed(&self) -> usize {
        self.listed.load(Ordering::Relaxed)
    }

    /// Whether `info_hash` is listed and private in `mode`.
    pub(crate) fn is_private(&self, info_hash: &InfoHash, mode: Mode) -> bool {
        let shard = self.shard(info_hash).lock();
        match shard.active.get(info_hash) {
            Some(t) => t.private_in(mode),
            None => shard
                .idle
                .get(info_hash)
                .is_some_and(|e| e.private_in(mode)),
        }
    }

    /// Lists `info_hash` with `entry`'s options (or updates them). Call with the view
    /// write-locked.
    pub(crate) fn allow(&self, info_hash: &InfoHash, entry: &TorrentEntry) {
        let mut shard = self.shard(info_hash).lock();
        let Shard {
            active,
            idle,
            removed,
            ..
        } = &mut *shard;
        let was_listed = match active.get_mut(info_hash) {
            Some(t) => {
                let was = t.listed;
                t.set_entry(info_hash, entry, removed);
                was
            }
            None => idle.insert(*info_hash, *entry).is_some(),
        };
        if !was_listed {
            self.listed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Unlists `info_hash`: its sessions stay until they end, but announces to it are
    /// refused. True if it was listed. Call with the view write-locked.
    pub(crate) fn unlist(&self, info_hash: &InfoHash) -> bool {
        let mut shard = self.shard(info_hash).lock();
        let was_listed = match shard.active.get_mut(info_hash) {
            Some(t) => std::mem::replace(&mut t.listed, false),
            None => shard.idle.remove(info_hash).is_some(),
        };
        if was_listed {
            self.listed.fetch_sub(1, Ordering::Relaxed);
        }
        was_listed
    }

    /// Makes the listed torrents exactly `fresh` (a reload): returns the hashes that were
    /// listed and are no longer, or that are now private in `mode` and were not. Call with the
    /// view write-locked.
    pub(crate) fn replace_listed(
        &self,
        fresh_rows: Vec<(InfoHash, TorrentEntry)>,
        mode: Mode,
    ) -> Vec<InfoHash> {
        let mut fresh: HashMap<InfoHash, TorrentEntry, InfoHashState> =
            HashMap::with_capacity_and_hasher(fresh_rows.len(), InfoHashState::new());
        fresh.extend(fresh_rows);
        self.listed.store(fresh.len(), Ordering::Relaxed);
        let mut purge = Vec::new();
        for shard in self.iter() {
            let mut shard = shard.lock();
            let Shard {
                active,
                idle,
                removed,
                ..
            } = &mut *shard;
            for (h, t) in active.iter_mut() {
                let was = t.private_in(mode);
                match fresh.remove(h) {
                    Some(e) => {
                        t.set_entry(h, &e, removed);
                        if t.private_in(mode) && !was {
                            purge.push(*h);
                        }
                    }
                    None if t.listed => {
                        t.listed = false;
                        purge.push(*h);
                    }
                    None => {}
                }
            }
            idle.retain(|h, e| {
                let was = e.private_in(mode);
                match fresh.remove(h) {
                    Some(new) => {
                        *e = new;
                        if e.private_in(mode) && !was {
                            purge.push(*h);
                        }
                        true
                    }
                    None => {
                        purge.push(*h);
                        false
                    }
                }
            });
        }
        for (h, e) in fresh {
            if e.private_in(mode) {
                purge.push(h);
            }
            self.shard(&h).lock().idle.insert(h, e);
        }
        purge
    }

    /// Adds a session loaded from the database to the torrent with row id `torrent_id`,
    /// keeping an unlisted state for it if the torrent is not listed.
    pub(crate) fn insert_loaded(&self, info_hash: &InfoHash, torrent_id: i64, session: Session) {
        let mut shard = self.shard(info_hash).lock();
        let t = shard.activate(info_hash, torrent_id);
        if !t.sessions.contains(session.key()) {
            t.sessions.push(session);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// A state told apart by its row id.
    fn state(id: i64) -> TorrentState {
        TorrentState::unlisted(id)
    }

    fn hash(n: u8) -> InfoHash {
        InfoHash([n; 20])
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Activate hash n (with row id n if new).
        Insert(u8),
        /// Drop every hash whose byte is in the set (bit n % 64).
        Retain(u64),
        /// Look up hash n, trying position p first.
        Find(u8, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..40).prop_map(Op::Insert),
            1 => any::<u64>().prop_map(Op::Retain),
            4 => (0u8..48, 0usize..48).prop_map(|(n, p)| Op::Find(n, p)),
        ]
    }

    proptest! {
        /// Whatever position is hinted (right, stale, another torrent's, out of range), the
        /// active set answers as a map would, and every position it reports holds its torrent.
        #[test]
        fn active_behaves_as_a_map_whatever_the_hints(ops in proptest::collection::vec(op(), 0..300)) {
            let mut active = Active::new(InfoHashState::new());
            let mut model: BTreeMap<u8, i64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(n) => {
                        let (at, t) = active.get_or_insert_with(&hash(n), || state(n.into()));
                        prop_assert_eq!(t.id, i64::from(n));
                        model.entry(n).or_insert(n.into());
                        prop_assert_eq!(active.find_mut(&hash(n), Some(at)).map(|(a, _)| a), Some(at));
                    }
                    Op::Retain(drop) => {
                        let mut seen = 0;
                        active.retain(|h, t| {
                            seen += 1;
                            assert_eq!(t.id, i64::from(h.0[0]), "each state with its own hash");
                            drop & (1 << (h.0[0] % 64)) == 0
                        });
                        prop_assert_eq!(seen, model.len(), "every state visited once");
                        model.retain(|n, _| drop & (1 << (n % 64)) == 0);
                    }
                    Op::Find(n, p) => {
                        let found = active.find_mut(&hash(n), Some(p)).map(|(at, t)| (at, t.id));
                        prop_assert_eq!(found.map(|(_, id)| id), model.get(&n).copied());
                        if let Some((at, _)) = found {
                            prop_assert_eq!(active.find_mut(&hash(n), None).map(|(a, _)| a), Some(at));
                        }
                        // Out-of-range and stale hints are only hints.
                        active.prefetch(p);
                    }
                }
                prop_assert_eq!(active.len(), model.len());
                for (&n, &id) in &model {
                    prop_assert_eq!(active.get(&hash(n)).map(|t| t.id), Some(id));
                }
            }
            active.shrink();
            let ids: BTreeMap<u8, i64> = active.iter_mut().map(|(h, t)| (h.0[0], t.id)).collect();
            prop_assert_eq!(ids, model);
        }
    }

    /// The hash, the flags and the inline first session (first in its map, `repr(C)`) fill
    /// the slot's first two cache lines and no more.
    #[test]
    fn a_keep_alive_of_a_first_session_reads_two_lines() {
        use std::mem::offset_of;
        let first_session_end = offset_of!(Slot, state)
            + offset_of!(TorrentState, sessions)
            + size_of::<Option<Session>>();
        assert!(first_session_end <= 128, "{first_session_end}");
        assert_eq!(align_of::<Slot>(), 64);
    }

    #[test]
    fn hints_note_positions_two_ways_and_grow_with_the_shard() {
        // Three torrents' bits with the same pair (low bits 5) and different tags.
        let [a, b, c] = [0xA1 << 32 | 5, 0xB2 << 32 | 5, 0xC3 << 32 | 5];
        let mut hints = Hints::default();
        assert_eq!(hints.get(a), None, "no table yet");
        assert_eq!(hints.span(), (0, 0));
        assert!(hints.note(a, 0, 1), "the first note makes the table");
        assert_eq!(hints.len(), 64);
        assert_eq!(hints.get(a), Some(0));
        assert_eq!(
            hints.get(b),
            None,
            "a neighbour's hint is not taken for one's own"
        );
        assert!(!hints.note(b, 7, 32));
        assert_eq!(
            (hints.get(a), hints.get(b)),
            (Some(0), Some(7)),
            "both ways held"
        );
        assert!(!hints.note(a, 2, 32));
        assert_eq!(
            (hints.get(a), hints.get(b)),
            (Some(2), Some(7)),
            "updated in place"
        );
        // A third takes the first way, and what was there the second, dropping its entry.
        assert!(!hints.note(c, 9, 32));
        assert_eq!(
            (hints.get(a), hints.get(b), hints.get(c)),
            (None, Some(7), Some(9))
        );
        assert_eq!(hints.noted(), 2);
        // Past half full it grows to four times the shard, forgetting what it knew.
        assert!(hints.note(a, 3, 33));
        assert_eq!(hints.len(), 256);
        assert_eq!((hints.get(a), hints.get(b)), (Some(3), None));
        // A flush that leaves the shard far emptier gives it back.
        hints.fit(16);
        assert_eq!(hints.len(), 256);
        hints.fit(15);
        assert_eq!((hints.len(), hints.span()), (0, (0, 0)));
    }
}
