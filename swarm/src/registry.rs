//! The registry: every swarm, sharded by a keyed hash of the info hash, one mutex per shard,
//! held for exactly one swarm operation at a time. Each shard keeps its torrents in a
//! [`Store`]: compact records (most swarms entirely inline) found through a table of record
//! numbers.

#[cfg(test)]
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use ahash::RandomState;
use parking_lot::Mutex;
use swarmd_proto::{Event, InfoHash};

pub use crate::api::{
    Announce, AnnounceError, AnnounceOutcome, RegistryConfig, RegistryCounts, SelectedPeers,
    SwarmStats, SweepStats,
};
use crate::clock::Secs;
use crate::peers::{Ctx, PeerUpdate, Role};
use crate::prefetch::Published;
use crate::store::{hash_key, Store};
use crate::swarm::{PeerAddr, RoleCounts};

/// Largest swarm the registry ever keeps, whatever the configuration says (2^24 - 1: index slots
/// have 24 bits).
const PEER_CAP: usize = crate::index::MAX_SLOTS;
/// Most shards a registry has, whatever the configuration says.
const MAX_SHARDS: usize = 1 << 20;
/// Before taking the lock, reserve room for at most this many selected peers; more (rare, the
/// caller caps `numwant`) grows the buffer under the lock once and is then reused.
const PRERESERVE_PEERS: usize = 256;

/// One shard: its swarms and its peer counters, maintained under its lock. The store comes
/// first, so the lock word, the index and the first record chunks share a cache line.
#[repr(C)]
pub(crate) struct ShardState {
    torrents: Store,
    counts: RoleCounts,
}

impl ShardState {
    fn account(&mut self, before: RoleCounts, after: RoleCounts) {
        for ((c, b), a) in self.counts.iter_mut().zip(before).zip(after) {
            *c = c.wrapping_sub(b).wrapping_add(a);
        }
    }
}

/// A shard on its own cache line(s), so neighbouring locks do not false-share. The published
/// table place comes first (`repr(C)`), so what the prefetch reads (it, then the lock word)
/// and what a lookup reads first (the lock, the store's index) share one line.
#[repr(C, align(64))]
struct Shard {
    /// The torrent table's bucket array (`u32` slots), republished after every change that
    /// may move it, and read without the lock by [`Registry::prefetch`].
    table: Published,
    state: Mutex<ShardState>,
}

impl Shard {
    /// Records where `store`'s bucket array now is (call with the shard locked).
    fn publish(&self, store: &Store) {
        self.table.publish(store.table_span());
    }

    /// Starts loading the bucket `hash` starts at, as last published (the index's own lookups
    /// take its low bits too).
    #[inline]
    fn prefetch_bucket(&self, hash: u64) {
        self.table.prefetch::<u32>(hash);
    }
}

/// The shared in-memory swarm registry. `Send + Sync`; every method takes `&self`.
pub struct Registry {
    config: RegistryConfig,
    shards: Box<[Shard]>,
    /// `shards.len() - 1` (a power of two minus one).
    mask: usize,
    /// Keyed hash of info hashes: bits 32 and up choose the shard, the rest serve its table
    /// (see [`hash_key`]).
    hasher: RandomState,
    /// Keyed hash of peer addresses for the big-swarm indexes.
    peer_hasher: RandomState,
    /// Torrents tracked: touched only when a swarm is created or dropped, for `max_torrents`.
    torrents: AtomicUsize,
    /// Next shard [`Registry::sweep`] visits.
    sweep_cursor: AtomicUsize,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("config", &self.config)
            .field("torrents", &self.torrents.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Which step of a lookup [`Registry::prefetch`] starts loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefetch {
    /// The torrent table's bucket: the first miss of a lookup.
    Bucket,
    /// The torrent's record, found through its bucket: the second miss. Pays off when the
    /// bucket was prefetched a little earlier.
    Record,
}

impl Registry {
    /// An empty registry. `config.shards` is rounded up to a power of two within 1..=2^20.
    pub fn new(mut config: RegistryConfig) -> Self {
        let shards = config.shards.clamp(1, MAX_SHARDS).next_power_of_two();
        config.shards = shards;
        let shards: Box<[Shard]> = (0..shards)
            .map(|_| Shard {
                table: Published::default(),
                state: Mutex::new(ShardState {
                    torrents: Store::new(),
                    counts: [0; 4],
                }),
            })
            .collect();
        Self {
            mask: shards.len() - 1,
            shards,
            config,
            hasher: RandomState::new(),
            peer_hasher: RandomState::new(),
            torrents: AtomicUsize::new(0),
            sweep_cursor: AtomicUsize::new(0),
        }
    }

    /// The configuration in force (with `shards` rounded).
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            hasher: &self.peer_hasher,
            store_ids: self.config.store_peer_ids,
        }
    }

    /// The hash of `info_hash` and its shard.
    pub(crate) fn shard(&self, info_hash: &InfoHash) -> (u64, &Mutex<ShardState>) {
        let hash = hash_key(&self.hasher, info_hash);
        (hash, &self.shards[shard_of(hash, self.mask)].state)
    }

    fn reserve_torrent(&self) -> bool {
        let max = self.config.max_torrents;
        self.torrents
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    fn release_torrents(&self, n: usize) {
        if n > 0 {
            self.torrents.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Records an announce and writes up to `req.numwant` peers for it into `out` (cleared
    /// first): a random sample of the requester's address family, never the requester itself,
    /// only downloading leechers if the requester is a seeder or partial seed (`event=paused`
    /// with `left > 0`). `event=stopped` removes the peer and selects nobody.
    pub fn announce(
        &self,
        req: &Announce,
        now: Secs,
        out: &mut SelectedPeers,
    ) -> Result<AnnounceOutcome, AnnounceError> {
        out.clear();
        let addr = PeerAddr::from(req.addr);
        out.entry_len = addr.entry_len();
        if req.event == Event::Stopped {
            return Ok(self.stop(&req.info_hash, &addr));
        }
        let numwant = req.numwant.min(PEER_CAP);
        if numwant > 0 {
            let n = numwant.min(PRERESERVE_PEERS);
            out.compact.reserve(n * addr.entry_len());
            if self.config.store_peer_ids {
                out.peer_ids.reserve(n * 20);
            }
        }
        let role = if req.left == 0 {
            Role::Seeder
        } else if req.event == Event::Paused {
            Role::Partial
        } else {
            Role::Leecher
        };
        let upd = PeerUpdate {
            role,
            completed: req.event == Event::Completed,
            now,
            peer_id: &req.peer_id.0,
        };
        let max_peers = self.config.max_peers_per_torrent.min(PEER_CAP);

        let ctx = self.ctx();
        let (hash, shard) = self.shard(&req.info_hash);
        let mut guard = shard.lock();
        let shard = &mut *guard;
        let i = match shard.torrents.find(hash, &req.info_hash) {
            Some(i) => i,
            None => {
                if !self.reserve_torrent() {
                    return Err(AnnounceError::TorrentLimit);
                }
                let Some(i) = shard.torrents.insert(&self.hasher, hash, req.info_hash) else {
                    self.release_torrents(1);
                    return Err(AnnounceError::TorrentLimit);
                };
                self.publish(hash, &shard.torrents);
                i
            }
        };
        let (swarm, bigs) = shard.torrents.get_mut(i);
        let can_insert = swarm.len() < max_peers;
        let (stored, before, after) =
            swarm.announce(bigs, ctx, &addr, &upd, can_insert, numwant, out);
        let stats = swarm.stats();
        if swarm.is_empty() {
            // Only when nobody may be stored (max_peers_per_torrent = 0).
            shard.torrents.remove(&self.hasher, i, hash);
            self.publish(hash, &shard.torrents);
            self.release_torrents(1);
        }
        shard.account(before, after);
        drop(guard);
        Ok(AnnounceOutcome {
            stats,
            peers: out.len(),
            stored,
        })
    }

    /// `event=stopped`: removes the peer (dropping its swarm if left empty); never creates a
    /// swarm.
    fn stop(&self, info_hash: &InfoHash, addr: &PeerAddr) -> AnnounceOutcome {
        let (hash, shard) = self.shard(info_hash);
        let mut guard = shard.lock();
        let shard = &mut *guard;
        let Some(i) = shard.torrents.find(hash, info_hash) else {
            return AnnounceOutcome {
                stats: SwarmStats::default(),
                peers: 0,
                stored: false,
            };
        };
        let (swarm, bigs) = shard.torrents.get_mut(i);
        let (_, before, after) = swarm.remove(bigs, self.ctx(), addr);
        let stats = swarm.stats();
        if swarm.is_empty() {
            shard.torrents.remove(&self.hasher, i, hash);
            self.publish(hash, &shard.torrents);
            self.release_torrents(1);
        }
        shard.account(before, after);
        AnnounceOutcome {
            stats,
            peers: 0,
            stored: false,
        }
    }

    /// The figures of one torrent, or `None` if it is not tracked.
    pub fn scrape(&self, info_hash: &InfoHash) -> Option<SwarmStats> {
        let (hash, shard) = self.shard(info_hash);
        let state = shard.lock();
        let i = state.torrents.find(hash, info_hash)?;
        Some(state.torrents.get(i).stats())
    }

    /// Starts loading, without waiting, what an announce or scrape of `info_hash` reads first,
    /// for callers that know their next requests (a batch of datagrams): issue
    /// [`Prefetch::Bucket`] for a request two ahead and [`Prefetch::Record`] for the next one,
    /// and their cache misses overlap the work on the current request. A hint: it changes
    /// nothing, and skips a shard another thread holds rather than wait for it.
    pub fn prefetch(&self, info_hash: &InfoHash, step: Prefetch) {
        let hash = hash_key(&self.hasher, info_hash);
        let shard = &self.shards[shard_of(hash, self.mask)];
        match step {
            // Lock-free: the bucket's address comes from the shard's published table.
            Prefetch::Bucket => shard.prefetch_bucket(hash),
            Prefetch::Record => {
                if let Some(state) = shard.state.try_lock() {
                    state.torrents.prefetch_record(hash);
                }
            }
        }
    }

    /// Republishes the torrent table of `hash`'s shard (see [`Shard::table`]) after a change
    /// to `store`, which that shard's lock guards.
    fn publish(&self, hash: u64, store: &Store) {
        self.shards[shard_of(hash, self.mask)].publish(store);
    }

    /// Samples up to `numwant` peers of one address family (6-byte entries, or 18-byte ones if
    /// `ipv6`) into `out` without announcing anyone: what a DHT `get_peers` answers. Seeders and
    /// leechers alike. Returns the swarm's counts, or `None` (and `out` empty) if it is unknown.
    pub fn sample(
        &self,
        info_hash: &InfoHash,
        ipv6: bool,
        numwant: usize,
        out: &mut SelectedPeers,
    ) -> Option<SwarmStats> {
        out.clear();
        out.entry_len = if ipv6 {
            swarmd_proto::COMPACT_V6_LEN
        } else {
            swarmd_proto::COMPACT_V4_LEN
        };
        let (hash, shard) = self.shard(info_hash);
        let guard = shard.lock();
        let swarm = guard.torrents.get(guard.torrents.find(hash, info_hash)?);
        swarm.sample(guard.torrents.bigs(), ipv6, numwant.min(PEER_CAP), out);
        Some(swarm.stats())
    }

    /// Clears `out` and fills it with up to `limit` tracked torrents and their figures, shard by
    /// shard, each shard locked only while it is copied.
    pub fn full_scrape(&self, limit: usize, out: &mut Vec<(InfoHash, SwarmStats)>) {
        out.clear();
        for shard in self.shards.iter() {
            let remaining = limit.saturating_sub(out.len());
            if remaining == 0 {
                break;
            }
            let state = shard.state.lock();
            out.reserve(state.torrents.len().min(remaining));
            out.extend(
                state
                    .torrents
                    .iter()
                    .take(remaining)
                    .map(|swarm| (*swarm.key(), swarm.stats())),
            );
        }
    }

    /// One incremental expiry step: visits the next `max_shards` shards (round robin over
    /// calls), removes their peers last seen more than `peer_timeout` seconds before `now`, and
    /// drops swarms left empty. Each shard is locked only while it is swept.
    pub fn sweep(&self, now: Secs, max_shards: usize) -> SweepStats {
        let visit = max_shards.min(self.shards.len());
        let mut stats = SweepStats {
            shards_visited: visit,
            ..SweepStats::default()
        };
        if visit == 0 {
            return stats;
        }
        // Peers with last_seen + timeout < now, i.e. last_seen < now - timeout.
        let Some(cutoff) = now.checked_sub(self.config.peer_timeout) else {
            return stats;
        };
        let ctx = self.ctx();
        // Wrapping is harmless: the shard count divides 2^usize::BITS.
        let start = self.sweep_cursor.fetch_add(visit, Ordering::Relaxed);
        for k in 0..visit {
            let shard = &self.shards[start.wrapping_add(k) & self.mask];
            let mut guard = shard.state.lock();
            let state = &mut *guard;
            let mut delta = ([0u64; 4], [0u64; 4]);
            let mut dropped = 0;
            for i in state.torrents.numbers() {
                let Some((swarm, bigs)) = state.torrents.live_mut(i) else {
                    continue;
                };
                let (removed, before, after) = swarm.expire(bigs, ctx, cutoff);
                if removed == 0 {
                    continue;
                }
                stats.peers_removed += removed;
                for r in 0..4 {
                    delta.0[r] += before[r];
                    delta.1[r] += after[r];
                }
                if swarm.is_empty() {
                    let hash = hash_key(&self.hasher, swarm.key());
                    state.torrents.remove(&self.hasher, i, hash);
                    dropped += 1;
                }
            }
            state.account(delta.0, delta.1);
            state.torrents.tidy(&self.hasher);
            shard.publish(&state.torrents);
            drop(guard);
            stats.torrents_removed += dropped;
            self.release_torrents(dropped);
        }
        stats
    }

    /// Forgets one torrent and all its peers at once (an operator removed it from the allow list,
    /// or made it private). Returns true if it was tracked.
    pub fn remove(&self, info_hash: &InfoHash) -> bool {
        let (hash, shard) = self.shard(info_hash);
        let mut guard = shard.lock();
        let state = &mut *guard;
        let Some(i) = state.torrents.find(hash, info_hash) else {
            return false;
        };
        let counts = state.torrents.get(i).role_counts(state.torrents.bigs());
        state.torrents.remove(&self.hasher, i, hash);
        self.publish(hash, &state.torrents);
        state.account(counts, [0; 4]);
        drop(guard);
        self.release_torrents(1);
        true
    }

    /// Registry-wide totals: the shards' counters summed, each shard locked briefly.
    pub fn counts(&self) -> RegistryCounts {
        let mut total = RegistryCounts::default();
        for shard in self.shards.iter() {
            let state = shard.state.lock();
            total.torrents += state.torrents.len() as u64;
            total.seeders_v4 += state.counts[0];
            total.leechers_v4 += state.counts[1];
            total.seeders_v6 += state.counts[2];
            total.leechers_v6 += state.counts[3];
        }
        total
    }

    /// Checks every invariant of every shard; panics on the first violation (tests).
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        let ctx = self.ctx();
        let mut torrents = 0;
        for (i, shard) in self.shards.iter().enumerate() {
            let state = shard.state.lock();
            state.torrents.check(&self.hasher);
            let mut counts = [0u64; 4];
            for swarm in state.torrents.iter() {
                let hash = hash_key(&self.hasher, swarm.key());
                assert_eq!(shard_of(hash, self.mask), i);
                assert!(!swarm.is_empty(), "empty swarm kept");
                assert!(swarm.len() <= self.config.max_peers_per_torrent);
                swarm.check(state.torrents.bigs(), ctx);
                for (c, n) in counts
                    .iter_mut()
                    .zip(swarm.role_counts(state.torrents.bigs()))
                {
                    *c += n;
                }
            }
            assert_eq!(counts, state.counts, "shard counters drifted");
            torrents += state.torrents.len();
        }
        assert_eq!(torrents, self.torrents.load(Ordering::Relaxed));
    }

    /// Role, completed flag and stored id of a peer (tests).
    #[cfg(test)]
    pub(crate) fn describe(
        &self,
        info_hash: &InfoHash,
        addr: SocketAddr,
    ) -> Option<(Role, bool, Option<[u8; 20]>)> {
        let (hash, shard) = self.shard(info_hash);
        let state = shard.lock();
        let i = state.torrents.find(hash, info_hash)?;
        state
            .torrents
            .get(i)
            .describe(state.torrents.bigs(), self.ctx(), &PeerAddr::from(addr))
    }
}

/// The shard of an info hash's hash: bits 32 to 51, which the shard's table does not use.
fn shard_of(hash: u64, mask: usize) -> usize {
    // Truncation is intended: the mask keeps at most 20 bits.
    (hash >> 32) as usize & mask
}

#[cfg(test)]
mod layout {
    use super::*;

    /// What the prefetch reads (the published table place) and the lock word share a line.
    #[test]
    fn a_shard_starts_with_its_published_table_and_lock() {
        let r = Registry::new(RegistryConfig::default());
        for shard in r.shards.iter() {
            let start = std::ptr::from_ref(shard).addr();
            let lock = std::ptr::from_ref(&shard.state).addr();
            assert_eq!(start % 64, 0);
            assert_eq!(std::ptr::from_ref(&shard.table).addr(), start);
            assert!(lock < start + 64, "the lock word is in the first line");
        }
    }
}
