//! The registry's public request, reply and configuration types.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use swarmd_proto::{Event, InfoHash, PeerId, COMPACT_V4_LEN, COMPACT_V6_LEN};

use crate::clock::Secs;
#[cfg(doc)]
use crate::Registry;

/// Registry settings.
///
/// # Limits
///
/// * `max_torrents`: an announce that would start tracking a new torrent while this many are
///   tracked fails with [`AnnounceError::TorrentLimit`]. Announces to tracked torrents, and
///   `event=stopped` for unknown ones (answered with zero stats), are unaffected. A shard holds
///   at most 16,777,215 torrents (2^24 - 1, its record numbers' width); beyond that, reachable
///   only with very few shards, a new torrent fails the same way.
/// * `max_peers_per_torrent` (over both address families): a *new* peer announcing to a swarm
///   that holds this many is served (it gets stats and peers) but not stored
///   ([`AnnounceOutcome::stored`] is false); peers already stored keep updating. Values above
///   16,777,215 (2^24 - 1) are treated as that.
/// * `peer_timeout`: a peer that has not announced for more than this many seconds is removed
///   by the next [`Registry::sweep`] visiting its shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Number of shards (independent locks), rounded up to a power of two, at least 1 and at
    /// most 2^20. Default 1024.
    pub shards: usize,
    /// Most torrents tracked at once. Default 5,000,000.
    pub max_torrents: usize,
    /// Most peers stored per torrent, both address families together. Default 100,000.
    pub max_peers_per_torrent: usize,
    /// Seconds after its last announce at which a peer expires. Default 2700 (45 minutes).
    pub peer_timeout: Secs,
    /// Keep each peer's 20-byte id (for `compact=0` replies). Costs 20+ bytes a peer.
    /// Default false.
    pub store_peer_ids: bool,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            shards: 1024,
            max_torrents: 5_000_000,
            max_peers_per_torrent: 100_000,
            peer_timeout: 2700,
            store_peer_ids: false,
        }
    }
}

/// One announce, whatever protocol it came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announce {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The peer's self-chosen id (kept only if [`RegistryConfig::store_peer_ids`]).
    pub peer_id: PeerId,
    /// The peer's address: its identity within the swarm. IPv4-mapped IPv6 addresses are
    /// treated as IPv4.
    pub addr: SocketAddr,
    /// The announce event.
    pub event: Event,
    /// Bytes left to download; 0 makes the peer a seeder.
    pub left: u64,
    /// How many peers to return, already defaulted and capped by the caller; 0 for none.
    pub numwant: usize,
}

/// The peers selected for a requester, in compact form. Owned by the caller and reused across
/// requests: once its buffers have grown, announces allocate nothing.
#[derive(Debug, Clone, Default)]
pub struct SelectedPeers {
    /// Compact peers of the requester's address family: 6 bytes each (IPv4 address then port,
    /// big endian, BEP 23) or 18 bytes each (IPv6, BEP 7).
    pub compact: Vec<u8>,
    /// The selected peers' ids, 20 bytes each, in the same order; empty unless the registry
    /// keeps peer ids.
    pub peer_ids: Vec<u8>,
    /// Bytes per entry of `compact` (6 or 18) as of the last announce; 0 before any.
    pub(crate) entry_len: usize,
}

impl SelectedPeers {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of selected peers.
    pub fn len(&self) -> usize {
        self.compact.len().checked_div(self.entry_len).unwrap_or(0)
    }

    /// True if no peer was selected.
    pub fn is_empty(&self) -> bool {
        self.compact.is_empty()
    }

    /// Bytes per compact entry: 6 if the last announce was over IPv4 (including IPv4-mapped
    /// IPv6 addresses: reply in `peers`), 18 if over IPv6 (reply in `peers6`), 0 before any.
    pub fn entry_len(&self) -> usize {
        self.entry_len
    }

    /// True if the selected peers are IPv6 peers (18-byte entries).
    pub fn is_ipv6(&self) -> bool {
        self.entry_len == COMPACT_V6_LEN
    }

    /// The selected peers as socket addresses (for non-compact replies).
    pub fn addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        let n = if self.entry_len == 0 {
            usize::MAX
        } else {
            self.entry_len
        };
        self.compact.chunks_exact(n).filter_map(|c| match c.len() {
            COMPACT_V4_LEN => {
                let ip = Ipv4Addr::new(c[0], c[1], c[2], c[3]);
                Some(SocketAddr::from((ip, u16::from_be_bytes([c[4], c[5]]))))
            }
            COMPACT_V6_LEN => {
                let ip: [u8; 16] = c[..16].try_into().ok()?;
                Some(SocketAddr::from((
                    Ipv6Addr::from(ip),
                    u16::from_be_bytes([c[16], c[17]]),
                )))
            }
            _ => None,
        })
    }

    pub(crate) fn clear(&mut self) {
        self.compact.clear();
        self.peer_ids.clear();
    }
}

/// A swarm's scrape figures, over both address families.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwarmStats {
    /// Seeders (left = 0).
    pub complete: u32,
    /// Everyone else: downloading leechers and BEP 21 partial seeds.
    pub incomplete: u32,
    /// Completions: `event=completed` announces, counted once per stored peer.
    pub downloaded: u32,
    /// Downloading leechers, partial seeds excluded (the BEP 21 scrape key `downloaders`).
    pub downloaders: u32,
}

/// What an announce did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceOutcome {
    /// The swarm's figures after this announce.
    pub stats: SwarmStats,
    /// Number of peers written to the [`SelectedPeers`].
    pub peers: usize,
    /// True if the requester is stored in the swarm after the announce: false for
    /// `event=stopped`, and for a new peer refused by `max_peers_per_torrent`.
    pub stored: bool,
}

/// Why an announce was refused.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum AnnounceError {
    /// The announce would start a new torrent while `max_torrents` are tracked.
    #[error("tracker is full: it tracks the maximum number of torrents")]
    TorrentLimit,
}

/// What one [`Registry::sweep`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Shards visited.
    pub shards_visited: usize,
    /// Expired peers removed.
    pub peers_removed: usize,
    /// Swarms dropped because they became empty.
    pub torrents_removed: usize,
}

/// Registry-wide totals, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegistryCounts {
    /// Torrents tracked.
    pub torrents: u64,
    /// IPv4 seeders.
    pub seeders_v4: u64,
    /// IPv4 leechers, partial seeds included.
    pub leechers_v4: u64,
    /// IPv6 seeders.
    pub seeders_v6: u64,
    /// IPv6 leechers, partial seeds included.
    pub leechers_v6: u64,
}
