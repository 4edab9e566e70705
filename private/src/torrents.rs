//! Every torrent's private-mode state, sharded by a keyed hash of the info hash exactly as the
//! registry shards its swarms: 256 shards, each a mutex on its own cache line. An announce
//! locks one shard, briefly; announces for torrents in different shards never contend.
//!
//! A shard keeps two maps, and a hash is in at most one of them:
//! * `active`: the torrents with sessions or pending accounting (and removed torrents whose
//!   sessions have not ended yet), as full [`TorrentState`]s whose first session and first
//!   pending record sit inline in the map's bucket, so an announce of a torrent's first
//!   session costs one cache miss (any other session, one more: its torrent's vector);
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
    pub(crate) active: HashMap<InfoHash, TorrentState, InfoHashState>,
    pub(crate) idle: HashMap<InfoHash, TorrentEntry, InfoHashState>,
    /// Sessions dropped since the last flush, whose rows the flush deletes.
    pub(crate) removed: Vec<Removed>,
    /// Where active torrents' states were last seen, for prefetching.
    pub(crate) hints: Hints,
}

/// Where each active torrent's state was last seen in memory, for prefetching only: a
/// direct-mapped table of addresses by info-hash bits, written at every accounted announce.
/// An address goes stale when the map grows or the torrent goes idle; a stale one costs a
/// wasted prefetch, never a wrong answer, because nothing ever reads through it. One 8-byte
/// slot per power of two at least twice the shard's active torrents: 16 to 32 bytes per active
/// torrent (given back at a flush that finds the shard far emptier).
#[derive(Debug, Default)]
pub(crate) struct Hints {
    slots: Vec<usize>,
}

/// What a hint fetches ahead is the torrent's whole (key, state) map bucket, with its inline
/// first session and pending record, wherever the map put the key (before the state, as it
/// does today, or after it): from this many bytes before the noted state's address...
const HINT_BEFORE: usize = size_of::<InfoHash>().next_multiple_of(align_of::<TorrentState>());
/// ...to this many after it.
const HINT_AFTER: usize = size_of::<(InfoHash, TorrentState)>();

impl Hints {
    /// The slot of hash bits `bits`.
    #[inline]
    fn index(&self, bits: u64) -> Option<usize> {
        // Truncation is intended: the low bits pick the slot.
        (!self.slots.is_empty()).then(|| bits as usize & (self.slots.len() - 1))
    }

    /// Notes that the state of the torrent with hash bits `bits` is at `addr`, with `active`
    /// torrents in the shard (the table grows to twice that, dropping what it knew). True if
    /// the table moved (republish it: [`ShardCell::publish_hints`]).
    #[inline]
    pub(crate) fn note(&mut self, bits: u64, addr: usize, active: usize) -> bool {
        let moved = self.slots.len() < active;
        if moved {
            self.slots = vec![0; (active * 2).next_power_of_two().max(64)];
        }
        if let Some(i) = self.index(bits) {
            self.slots[i] = addr;
        }
        moved
    }

    /// The slot array as (address, length - 1), or (0, 0) if there is none.
    pub(crate) fn span(&self) -> (usize, usize) {
        if self.slots.is_empty() {
            (0, 0)
        } else {
            (self.slots.as_ptr().addr(), self.slots.len() - 1)
        }
    }

    /// Starts loading the state last noted for `bits`, if any: every cache line of its
    /// bucket, whatever the bucket's offset within a line (buckets are not line-sized, and a
    /// key in an unfetched line was most of an announce's stall on this map).
    #[inline]
    pub(crate) fn prefetch(&self, bits: u64) {
        if let Some(&addr) = self.index(bits).and_then(|i| self.slots.get(i)) {
            if addr != 0 {
                let end = addr.wrapping_add(HINT_AFTER);
                let mut line = addr.wrapping_sub(HINT_BEFORE) & !63;
                while line < end {
                    swarmd_swarm::prefetch::prefetch(std::ptr::without_provenance::<u8>(line));
                    line = line.wrapping_add(64);
                }
            }
        }
    }

    /// Slots in the table.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Slots holding an address.
    #[cfg(test)]
    pub(crate) fn noted(&self) -> usize {
        self.slots.iter().filter(|&&a| a != 0).count()
    }

    /// Gives memory back once the shard has far fewer active torrents than slots.
    fn fit(&mut self, active: usize) {
        if self.slots.len() > 64 && active.saturating_mul(8) < self.slots.len() {
            self.slots = Vec::new();
        }
    }
}

impl Shard {
    /// The active state of `info_hash` (see [`activate`]).
    pub(crate) fn activate(&mut self, info_hash: &InfoHash, unlisted_id: i64) -> &mut TorrentState {
        activate(&mut self.active, &mut self.idle, info_hash, unlisted_id)
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
        shrink(&mut self.active);
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

/// The active state of `info_hash`: made from its idle entry if it is listed, or a fresh
/// unlisted state with row id `unlisted_id` if it is not known at all.
pub(crate) fn activate<'a>(
    active: &'a mut HashMap<InfoHash, TorrentState, InfoHashState>,
    idle: &mut HashMap<InfoHash, TorrentEntry, InfoHashState>,
    info_hash: &InfoHash,
    unlisted_id: i64,
) -> &'a mut TorrentState {
    active
        .entry(*info_hash)
        .or_insert_with(|| match idle.remove(info_hash) {
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
                        active: HashMap::with_hasher(map_hasher),
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
    /// step the shard's lock and, without the lock, the torrent's hint slot (through the
    /// published table address beside the lock); at the second, under the lock if it is free,
    /// the torrent's state the slot points at.
    pub(crate) fn prefetch(&self, info_hash: &InfoHash, step: Prefetch) {
        let (bits, cell) = self.locate(info_hash);
        match step {
            Prefetch::Bucket => {
                swarmd_swarm::prefetch::prefetch(std::ptr::from_ref(&cell.shard));
                cell.hint_table.prefetch::<usize>(bits);
            }
            Prefetch::Record => {
                if let Some(shard) = cell.shard.try_lock() {
                    shard.hints.prefetch(bits);
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
