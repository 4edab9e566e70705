//! The registry: every swarm, sharded by a keyed hash of the info hash, one mutex per shard,
//! held for exactly one swarm operation at a time.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
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
use crate::swarm::{PeerAddr, RoleCounts, Swarm};

/// Largest swarm the registry ever keeps, whatever the configuration says (2^24 - 1: index slots
/// have 24 bits).
const PEER_CAP: usize = crate::index::MAX_SLOTS;
/// Most shards a registry has, whatever the configuration says.
const MAX_SHARDS: usize = 1 << 20;
/// Before taking the lock, reserve room for at most this many selected peers; more (rare, the
/// caller caps `numwant`) grows the buffer under the lock once and is then reused.
const PRERESERVE_PEERS: usize = 256;

/// One shard: its swarms and its peer counters, maintained under its lock.
struct ShardState {
    torrents: HashMap<InfoHash, Swarm, RandomState>,
    counts: RoleCounts,
}

impl ShardState {
    fn account(&mut self, before: RoleCounts, after: RoleCounts) {
        for ((c, b), a) in self.counts.iter_mut().zip(before).zip(after) {
            *c = c.wrapping_sub(b).wrapping_add(a);
        }
    }
}

/// A shard on its own cache line(s), so neighbouring locks do not false-share.
#[repr(align(64))]
struct Shard(Mutex<ShardState>);

/// The shared in-memory swarm registry. `Send + Sync`; every method takes `&self`.
pub struct Registry {
    config: RegistryConfig,
    shards: Box<[Shard]>,
    /// `shards.len() - 1` (a power of two minus one).
    mask: usize,
    /// Keyed hash choosing a torrent's shard.
    shard_hasher: RandomState,
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

impl Registry {
    /// An empty registry. `config.shards` is rounded up to a power of two within 1..=2^20.
    pub fn new(mut config: RegistryConfig) -> Self {
        let shards = config.shards.clamp(1, MAX_SHARDS).next_power_of_two();
        config.shards = shards;
        // Separate keys for shard choice and the per-shard maps, so a shard's keys do not
        // share hash bits.
        let map_hasher = RandomState::new();
        let shards: Box<[Shard]> = (0..shards)
            .map(|_| {
                Shard(Mutex::new(ShardState {
                    torrents: HashMap::with_hasher(map_hasher.clone()),
                    counts: [0; 4],
                }))
            })
            .collect();
        Self {
            mask: shards.len() - 1,
            shards,
            config,
            shard_hasher: RandomState::new(),
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

    fn shard(&self, info_hash: &InfoHash) -> &Mutex<ShardState> {
        // Truncation is intended: the low bits pick the shard.
        let i = self.shard_hasher.hash_one(info_hash) as usize & self.mask;
        &self.shards[i].0
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
        let mut guard = self.shard(&req.info_hash).lock();
        let shard = &mut *guard;
        let swarm = match shard.torrents.entry(req.info_hash) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                if !self.reserve_torrent() {
                    return Err(AnnounceError::TorrentLimit);
                }
                e.insert(Swarm::default())
            }
        };
        let before = swarm.role_counts();
        let can_insert = swarm.len() < max_peers;
        let stored = swarm.announce(ctx, &addr, &upd, can_insert, numwant, out);
        let after = swarm.role_counts();
        let stats = swarm.stats();
        if swarm.is_empty() {
            // Only when nobody may be stored (max_peers_per_torrent = 0).
            shard.torrents.remove(&req.info_hash);
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
        let mut guard = self.shard(info_hash).lock();
        let shard = &mut *guard;
        let Some(swarm) = shard.torrents.get_mut(info_hash) else {
            return AnnounceOutcome {
                stats: SwarmStats::default(),
                peers: 0,
                stored: false,
            };
        };
        let before = swarm.role_counts();
        swarm.remove(self.ctx(), addr);
        let after = swarm.role_counts();
        let stats = swarm.stats();
        if swarm.is_empty() {
            shard.torrents.remove(info_hash);
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
        self.shard(info_hash)
            .lock()
            .torrents
            .get(info_hash)
            .map(Swarm::stats)
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
        let guard = self.shard(info_hash).lock();
        let swarm = guard.torrents.get(info_hash)?;
        swarm.sample(ipv6, numwant.min(PEER_CAP), out);
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
            let state = shard.0.lock();
            out.reserve(state.torrents.len().min(remaining));
            out.extend(
                state
                    .torrents
                    .iter()
                    .take(remaining)
                    .map(|(ih, swarm)| (*ih, swarm.stats())),
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
            let mut guard = shard.0.lock();
            let state = &mut *guard;
            let mut delta = ([0u64; 4], [0u64; 4]);
            let mut dropped = 0;
            state.torrents.retain(|_, swarm| {
                let before = swarm.role_counts();
                let removed = swarm.expire(ctx, cutoff);
                if removed == 0 {
                    return true;
                }
                stats.peers_removed += removed;
                let after = swarm.role_counts();
                for i in 0..4 {
                    delta.0[i] += before[i];
                    delta.1[i] += after[i];
                }
                let keep = !swarm.is_empty();
                dropped += usize::from(!keep);
                keep
            });
            state.account(delta.0, delta.1);
            let (len, cap) = (state.torrents.len(), state.torrents.capacity());
            if cap > 64 && len.saturating_mul(4) < cap {
                state.torrents.shrink_to(len * 2);
            }
            drop(guard);
            stats.torrents_removed += dropped;
            self.release_torrents(dropped);
        }
        stats
    }

    /// Forgets one torrent and all its peers at once (an operator removed it from the allow list,
    /// or made it private). Returns true if it was tracked.
    pub fn remove(&self, info_hash: &InfoHash) -> bool {
        let mut guard = self.shard(info_hash).lock();
        let state = &mut *guard;
        let Some(swarm) = state.torrents.remove(info_hash) else {
            return false;
        };
        state.account(swarm.role_counts(), [0; 4]);
        drop(guard);
        self.release_torrents(1);
        true
    }

    /// Registry-wide totals: the shards' counters summed, each shard locked briefly.
    pub fn counts(&self) -> RegistryCounts {
        let mut total = RegistryCounts::default();
        for shard in self.shards.iter() {
            let state = shard.0.lock();
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
            let state = shard.0.lock();
            let mut counts = [0u64; 4];
            for (ih, swarm) in &state.torrents {
                assert_eq!(self.shard_hasher.hash_one(ih) as usize & self.mask, i);
                assert!(!swarm.is_empty(), "empty swarm kept");
                assert!(swarm.len() <= self.config.max_peers_per_torrent);
                swarm.check(ctx);
                for (c, n) in counts.iter_mut().zip(swarm.role_counts()) {
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
        let state = self.shard(info_hash).lock();
        state
            .torrents
            .get(info_hash)?
            .describe(self.ctx(), &PeerAddr::from(addr))
    }
}
