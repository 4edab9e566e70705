//! The download/seed engine: one torrent, its peers, and everything between its storage and
//! the network.
//!
//! [`Torrent::start`] takes a [`TorrentConfig`] (a `.torrent`'s bytes or a magnet link, where
//! the bytes live, peer sources, limits) and returns a [`TorrentHandle`] at once; the work runs
//! on the tokio runtime:
//!
//! - **metadata**: a magnet link first fetches the info dictionary from peers (BEP 9
//!   `ut_metadata`), checks its SHA-1 against the info hash and builds the metainfo; every
//!   session serves its metadata to others;
//! - **resume**: the storage is rechecked on every core before any peer is dialed; verified
//!   pieces count as held, only the rest is fetched;
//! - **peers**: inbound on one listener, outbound dials with a timeout, within `max_peers` and
//!   `max_half_open`; peers come from trackers (HTTP/UDP, BEP 12 tiers), the DHT, the caller,
//!   and inbound connections (`swarm` keeps them with retry backoff and bans);
//! - **wire** (`peer`): BEP 3 with BEP 6 fast extension and BEP 10 extension handshake, length
//!   limits from [`Limits::for_pieces`](swarmd_proto::wire::Limits::for_pieces), request
//!   pipelining whose depth follows the peer's rate (16 to 250, or the peer's `reqq`),
//!   keep-alives, idle / handshake / request timeouts, endgame cancels, uploads read off the
//!   runtime and served only to unchoked peers (or allowed-fast pieces), rejects under BEP 6;
//! - **pieces** (`pieces`): blocks are assembled per piece, verified and written by the
//!   [`Verifier`](crate::storage::Verifier) (corrupt data never reaches storage), and senders
//!   of bad data are found and banned after repeated failures;
//! - **choking** (`tick`): [`rechoke`](crate::choke::rechoke) every 10 s with a round counter
//!   and a seeded RNG, leecher or seed role, anti-snubbing, fed by rolling rates; a free upload
//!   slot is given at once to a newly interested peer;
//! - **announces** (`announce`): `started`, regular re-announces, `completed`, `stopped`, with
//!   real uploaded / downloaded / left.
//!
//! [`TorrentHandle::stats`] gives a [`Stats`] snapshot (with [`Stats::progress`] for a progress
//! bar: percent, rates, peers, ETA); [`TorrentHandle::stop`] announces `stopped` and syncs
//! the storage.

mod activate;
mod announce;
mod config;
mod connect;
mod metadata;
mod peer;
mod pieces;
mod shared;
mod stats;
mod swarm;
mod tick;

use std::net::SocketAddr;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::SeedableRng;
use swarmd_proto::{InfoHash, PeerId};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::{
    AnnounceConfig, ConnectionLimits, SourceError, StorageConfig, Timeouts, TorrentConfig,
    TorrentSource,
};
pub use stats::{PeerInfo, Progress, RateMeter, Stats, TorrentState, RATE_WINDOW};

use crate::storage::{Storage, StorageError};
use crate::{Metainfo, MetainfoError};
use metadata::{Meta, MetaFetch};
use shared::{ChokeMemory, Shared, State, Totals};

/// Why a torrent could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The `.torrent` (or the fetched info dictionary) is invalid.
    #[error(transparent)]
    Metainfo(#[from] MetainfoError),
    /// The metadata is unusable.
    #[error("bad metadata: {0}")]
    BadMetadata(&'static str),
    /// Opening, rechecking or writing the storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The torrent was stopped before the awaited condition.
    #[error("torrent stopped")]
    Stopped,
    /// A seed-only torrent lacks pieces it will never download.
    #[error("seed-only torrent is incomplete")]
    Incomplete,
    /// The torrent stopped on an error.
    #[error("torrent failed: {0}")]
    Failed(String),
}

/// Starts torrents.
#[derive(Debug, Clone, Copy)]
pub struct Torrent;

impl Torrent {
    /// Starts a torrent: parses the source, binds the listener, and spawns the session's tasks
    /// (recheck, then peers and announces). Must run inside a tokio runtime.
    pub async fn start(config: TorrentConfig) -> Result<TorrentHandle, SessionError> {
        let (meta, info_hash, source_trackers) = match &config.source {
            TorrentSource::Torrent(bytes) => {
                let meta = Meta::from_torrent(bytes)?;
                let (hash, trackers) = (meta.metainfo.info_hash(), meta.metainfo.trackers());
                let trackers = trackers.to_vec();
                (Some(Arc::new(meta)), hash, trackers)
            }
            TorrentSource::Magnet(m) => (None, m.info_hash, vec![m.trackers.clone()]),
        };
        let trackers: Vec<Vec<String>> = config
            .announce
            .trackers
            .clone()
            .unwrap_or(source_trackers)
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect();
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| SessionError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let listen = listener
            .local_addr()
            .map_err(|source| SessionError::Listen {
                addr: config.listen,
                source,
            })?;
        let peer_id = config
            .peer_id
            .unwrap_or_else(crate::tracker::random_peer_id);
        let rng = StdRng::seed_from_u64(config.rng_seed.unwrap_or_else(rand::random));
        let state = State {
            state: if meta.is_some() {
                TorrentState::Checking
            } else {
                TorrentState::FetchingMetadata
            },
            meta: meta.clone(),
            data: None,
            fetch: MetaFetch::default(),
            peers: Default::default(),
            next_key: 0,
            swarm: Default::default(),
            rng,
            choke: ChokeMemory::default(),
            totals: Totals::default(),
            recheck: None,
            closes: Default::default(),
        };
        let initial = config.announce.peers.clone();
        let shared = Arc::new(Shared::new(info_hash, peer_id, config, listen, state));
        announce::add_peers(&shared, &mut shared.lock(), &initial);
        let s = Arc::clone(&shared);
        shared.tasks.spawn(run(s, listener, meta, trackers));
        Ok(TorrentHandle { shared })
    }
}

/// Brings the torrent up: data first when the metadata is known, then the long-running tasks.
async fn run(
    shared: Arc<Shared>,
    listener: TcpListener,
    meta: Option<Arc<Meta>>,
    trackers: Vec<Vec<String>>,
) {
    if let Some(meta) = meta {
        let activated = tokio::select! {
            r = activate::activate(&shared, meta) => r,
            () = shared.shutdown_signal() => return,
        };
        if let Err(e) = activated {
            activate::fail(&shared, &e);
            return;
        }
    }
    let s = Arc::clone(&shared);
    shared.tasks.spawn(connect::accept_loop(s, listener));
    shared.tasks.spawn(tick::tick_loop(Arc::clone(&shared)));
    if !trackers.is_empty() {
        let s = Arc::clone(&shared);
        shared.tasks.spawn(announce::tracker_loop(s, trackers));
    }
    let nodes = shared.config.announce.dht_nodes.clone();
    if !nodes.is_empty() {
        let s = Arc::clone(&shared);
        shared.tasks.spawn(announce::dht_loop(s, nodes));
    }
}

/// A running torrent. Dropping it shuts the torrent down in the background (the trackers
/// still get `stopped`); [`TorrentHandle::stop`] does the same and waits for it.
pub struct TorrentHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TorrentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorrentHandle")
            .field("info_hash", &self.shared.info_hash)
            .field("listen", &self.shared.listen)
            .finish_non_exhaustive()
    }
}

impl Drop for TorrentHandle {
    fn drop(&mut self) {
        self.shared.shut_down();
    }
}

impl TorrentHandle {
    /// The torrent's info hash.
    pub fn info_hash(&self) -> InfoHash {
        self.shared.info_hash
    }

    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        self.shared.peer_id
    }

    /// The address we listen on (with the port chosen when `listen` had port 0).
    pub fn listen_addr(&self) -> SocketAddr {
        self.shared.listen
    }

    /// A snapshot of the torrent.
    pub fn stats(&self) -> Stats {
        let st = self.shared.lock();
        let (total_bytes, name) = match &st.meta {
            Some(m) => (
                Some(m.layout.total_length()),
                Some(m.metainfo.name().to_owned()),
            ),
            None => (None, None),
        };
        let (have_bytes, pieces_have) = st
            .data
            .as_ref()
            .map_or((0, 0), |d| (d.have_bytes, d.picker.have_count()));
        let n = st.piece_count();
        Stats {
            state: st.state.clone(),
            info_hash: self.shared.info_hash,
            name,
            listen_addr: self.shared.listen,
            total_bytes,
            have_bytes,
            pieces_total: n,
            pieces_have,
            downloaded: st.totals.downloaded,
            uploaded: st.totals.uploaded,
            wasted: st.totals.wasted,
            download_rate: st.totals.down.rate(),
            upload_rate: st.totals.up.rate(),
            peers: st.peers.len(),
            seeds: st.peers.values().filter(|e| e.pieces.is_seed(n)).count(),
            half_open: st.swarm.half_open,
            known_peers: st.swarm.known(),
            hash_failures: st.totals.hash_failures,
            banned: st.swarm.banned().count(),
            recheck: st.recheck,
            announces: st.totals.announces,
            last_announce_error: st.totals.announce_error.clone(),
        }
    }

    /// A snapshot of every connected peer.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let st = self.shared.lock();
        let n = st.piece_count();
        st.peers
            .values()
            .map(|e| PeerInfo {
                addr: e.addr,
                peer_id: e.peer_id,
                outbound: e.outbound,
                client: e.client.clone(),
                downloaded: e.downloaded,
                uploaded: e.uploaded,
                download_rate: e.down.rate(),
                upload_rate: e.up.rate(),
                am_choking: e.am_choking,
                am_interested: e.am_interested,
                peer_choking: e.peer_choking,
                peer_interested: e.peer_interested,
                pieces: e.pieces.count(n),
                is_seed: e.pieces.is_seed(n),
            })
            .collect()
    }

    /// The addresses banned for sending corrupt data.
    pub fn banned(&self) -> Vec<SocketAddr> {
        self.shared.lock().swarm.banned().copied().collect()
    }

    /// The last connections that ended (up to 32), with the reason, oldest first.
    pub fn recent_closes(&self) -> Vec<(SocketAddr, String)> {
        self.shared.lock().closes.iter().cloned().collect()
    }

    /// The metainfo, once known (for a magnet link: after the metadata exchange).
    pub fn metainfo(&self) -> Option<Metainfo> {
        self.shared.lock().meta.as_ref().map(|m| m.metainfo.clone())
    }

    /// The bencoded info dictionary, byte for byte, once known (`d4:info` + it + `e` is a
    /// valid `.torrent`).
    pub fn info_dict(&self) -> Option<Vec<u8>> {
        self.shared.lock().meta.as_ref().map(|m| m.info.clone())
    }

    /// The storage, once opened.
    pub fn storage(&self) -> Option<Arc<dyn Storage>> {
        self.shared
            .lock()
            .data
            .as_ref()
            .map(|d| Arc::clone(&d.storage))
    }

    /// Adds peer addresses to connect to.
    pub fn add_peers(&self, peers: impl IntoIterator<Item = SocketAddr>) {
        let peers: Vec<SocketAddr> = peers.into_iter().collect();
        announce::add_peers(&self.shared, &mut self.shared.lock(), &peers);
    }

    /// The torrent's state, to watch for changes.
    pub fn subscribe(&self) -> watch::Receiver<TorrentState> {
        self.shared.phase.subscribe()
    }

    /// Waits until every piece is held. Fails if the torrent stops first, or is seed-only and
    /// incomplete.
    pub async fn wait_complete(&self) -> Result<(), SessionError> {
        let mut rx = self.subscribe();
        loop {
            let state = rx.borrow_and_update().clone();
            match state {
                TorrentState::Seeding if self.shared.lock().is_complete() => return Ok(()),
                TorrentState::Seeding => return Err(SessionError::Incomplete),
                TorrentState::Stopped => return Err(SessionError::Stopped),
                TorrentState::Failed(e) => return Err(SessionError::Failed(e)),
                _ => {}
            }
            if rx.changed().await.is_err() {
                return Err(SessionError::Stopped);
            }
        }
    }

    /// Stops the torrent: closes every connection, lets an announce in flight finish, announces
    /// `stopped` (each within [`Timeouts::stop_announce`]), waits for in-flight piece writes,
    /// syncs the storage, and returns the final figures.
    pub async fn stop(self) -> Result<Stats, SessionError> {
        self.shared.shut_down();
        self.shared.tasks.wait().await;
        let storage = self.storage();
        if let Some(storage) = storage {
            tokio::task::spawn_blocking(move || storage.sync())
                .await
                .map_err(|_| SessionError::Failed("sync task died".into()))??;
        }
        {
            let mut st = self.shared.lock();
            if !matches!(st.state, TorrentState::Failed(_)) {
                self.shared.set_state(&mut st, TorrentState::Stopped);
            }
        }
        Ok(self.stats())
    }
}
