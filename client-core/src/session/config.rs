//! What a torrent session is told: the torrent (a `.torrent` file's bytes or a magnet link),
//! where its bytes live, where to find peers, and the limits and timeouts of its connections.
//! Every field has a default ([`TorrentConfig::new`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use swarmd_proto::PeerId;

use crate::storage::Storage;
use crate::tracker::ClientConfig;
use crate::{Magnet, MagnetError};

/// The torrent to download or seed.
#[derive(Debug, Clone)]
pub enum TorrentSource {
    /// The bytes of a `.torrent` file. Its info dictionary is kept byte for byte, so the session
    /// can serve it to magnet peers (BEP 9).
    Torrent(Vec<u8>),
    /// A magnet link: the info dictionary is fetched from peers first (BEP 9 `ut_metadata`).
    Magnet(Magnet),
}

impl TorrentSource {
    /// What a command line names: a magnet link (`magnet:?...`), else the path of a `.torrent`
    /// file, read now.
    pub fn from_arg(arg: &str) -> Result<Self, SourceError> {
        if arg.starts_with("magnet:") {
            return Ok(Self::Magnet(Magnet::parse(arg)?));
        }
        std::fs::read(arg)
            .map(Self::Torrent)
            .map_err(|source| SourceError::Read {
                path: arg.into(),
                source,
            })
    }
}

/// Why [`TorrentSource::from_arg`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The magnet link does not parse.
    #[error(transparent)]
    Magnet(#[from] MagnetError),
    /// The `.torrent` file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Where the torrent's bytes live.
#[derive(Clone)]
pub enum StorageConfig {
    /// In the torrent's own files under this folder ([`FileStorage`](crate::storage::FileStorage):
    /// read-write, or read-only with [`TorrentConfig::seed_only`]).
    Directory(PathBuf),
    /// In memory, zero-filled at the start ([`MemoryStorage`](crate::storage::MemoryStorage)).
    Memory,
    /// A store the caller built; it must hold the torrent's total length.
    Custom(Arc<dyn Storage>),
}

impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Directory(p) => f.debug_tuple("Directory").field(p).finish(),
            Self::Memory => f.write_str("Memory"),
            Self::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// How many connections, requests and failures the session accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connected peers, inbound and outbound together.
    pub max_peers: usize,
    /// Most outbound connection attempts in flight at once.
    pub max_half_open: usize,
    /// Requests kept in flight to a peer at first; the depth then follows the peer's rate.
    pub initial_request_queue: usize,
    /// Most requests kept in flight to one peer (lowered to the peer's BEP 10 `reqq`).
    pub max_request_queue: usize,
    /// Most requests a peer may queue at us (our BEP 10 `reqq`); more are rejected.
    pub max_peer_requests: usize,
    /// A peer whose data failed the hash check this many times is banned.
    pub ban_after_failures: u32,
    /// BEP 6 allowed-fast pieces offered to each IPv4 peer that speaks the fast extension.
    pub allowed_fast: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_peers: 50,
            max_half_open: 8,
            initial_request_queue: 16,
            max_request_queue: 250,
            max_peer_requests: 500,
            ban_after_failures: 3,
            allowed_fast: 4,
        }
    }
}

/// Timers of the session and its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// An outbound TCP connect.
    pub connect: Duration,
    /// From connect to a complete handshake.
    pub handshake: Duration,
    /// A keep-alive is sent after this long without sending anything.
    pub keepalive: Duration,
    /// A peer that sent nothing (not even a keep-alive) for this long is dropped.
    pub idle: Duration,
    /// Requests in flight to a peer that sent no block for this long go to other peers.
    pub request: Duration,
    /// A metadata piece asked of a peer is asked of another after this long.
    pub metadata_request: Duration,
    /// Period of the choker ([`choke::ROUND`](crate::choke::ROUND), 10 s).
    pub choke_round: Duration,
    /// How long [`TorrentHandle::stop`](super::TorrentHandle::stop) waits for the `stopped`
    /// announce, and before it for an announce already in flight (which must not reach the
    /// tracker after `stopped`).
    pub stop_announce: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            handshake: Duration::from_secs(10),
            keepalive: Duration::from_secs(120),
            idle: Duration::from_secs(240),
            request: Duration::from_secs(30),
            metadata_request: Duration::from_secs(10),
            choke_round: crate::choke::ROUND,
            stop_announce: Duration::from_secs(5),
        }
    }
}

/// Where peers come from and how often to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceConfig {
    /// Tracker tiers (BEP 12). `None`: those of the `.torrent` or the magnet link's `tr`.
    pub trackers: Option<Vec<Vec<String>>>,
    /// Mainline DHT nodes to look the torrent up through and announce to (none: no DHT).
    /// Never used for a private torrent (BEP 27).
    pub dht_nodes: Vec<SocketAddr>,
    /// Peers to connect to from the start (more with
    /// [`TorrentHandle::add_peers`](super::TorrentHandle::add_peers)).
    pub peers: Vec<SocketAddr>,
    /// Shortest wait between regular tracker announces, whatever the tracker's `interval`.
    pub min_interval: Duration,
    /// Wait before retrying a tracker announce that failed (doubles up to `max_retry`).
    pub retry: Duration,
    /// Longest wait between retries of a failing tracker or DHT lookup.
    pub max_retry: Duration,
    /// Period of DHT lookups once peers are connected (until then they retry from `retry`).
    pub dht_interval: Duration,
    /// `numwant` sent to trackers.
    pub numwant: u32,
    /// Settings of the tracker client (timeouts, UDP retransmits).
    pub client: ClientConfig,
}

impl Default for AnnounceConfig {
    fn default() -> Self {
        Self {
            trackers: None,
            dht_nodes: Vec::new(),
            peers: Vec::new(),
            min_interval: Duration::from_secs(30),
            retry: Duration::from_secs(2),
            max_retry: Duration::from_secs(300),
            dht_interval: Duration::from_secs(900),
            numwant: 50,
            client: ClientConfig {
                http_timeout: Duration::from_secs(15),
                udp_base_timeout: Duration::from_secs(3),
                udp_max_retries: 2,
                udp_connection_ttl: Duration::from_secs(60),
            },
        }
    }
}

/// Everything [`Torrent::start`](super::Torrent::start) needs.
#[derive(Debug, Clone)]
pub struct TorrentConfig {
    /// The torrent.
    pub source: TorrentSource,
    /// Where its bytes live.
    pub storage: StorageConfig,
    /// The TCP address to listen on for peers (port 0: any free port).
    pub listen: SocketAddr,
    /// Our peer id; a random `-SW0100-` id when `None`.
    pub peer_id: Option<PeerId>,
    /// Peer sources.
    pub announce: AnnounceConfig,
    /// Connection limits.
    pub limits: ConnectionLimits,
    /// Timers.
    pub timeouts: Timeouts,
    /// Upload only: never request a block (a seed, or a partial seed sharing what it has).
    /// Directory storage is then opened read-only.
    pub seed_only: bool,
    /// Seed of the session's random choices (choker, picker); random when `None`.
    pub rng_seed: Option<u64>,
}

impl TorrentConfig {
    /// A configuration with every default: listen on `0.0.0.0:0`, trackers from the source,
    /// no DHT, no explicit peers.
    pub fn new(source: TorrentSource, storage: StorageConfig) -> Self {
        Self {
            source,
            storage,
            listen: SocketAddr::from(([0, 0, 0, 0], 0)),
            peer_id: None,
            announce: AnnounceConfig::default(),
            limits: ConnectionLimits::default(),
            timeouts: Timeouts::default(),
            seed_only: false,
            rng_seed: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_from_a_command_line_argument() {
        let hex = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
        let m = TorrentSource::from_arg(&format!("magnet:?xt=urn:btih:{hex}")).unwrap();
        assert!(matches!(m, TorrentSource::Magnet(m) if m.info_hash.to_string() == hex));
        assert!(matches!(
            TorrentSource::from_arg("magnet:?dn=x"),
            Err(SourceError::Magnet(_))
        ));
        let err = TorrentSource::from_arg("/nonexistent/x.torrent").unwrap_err();
        assert!(err.to_string().starts_with("/nonexistent/x.torrent: "));
    }
}
