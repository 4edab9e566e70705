//! What a running torrent reports: its state, piece counts, payload totals and rolling rates
//! ([`Stats`]), a progress-bar view of them ([`Progress`]), per-peer figures ([`PeerInfo`]),
//! and the rolling-window [`RateMeter`] behind every rate.

use std::net::SocketAddr;
use std::time::Duration;

use swarmd_proto::{InfoHash, PeerId};

use crate::storage::RecheckProgress;

/// Seconds of history in a rate.
pub const RATE_WINDOW: usize = 5;

/// Where a torrent is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TorrentState {
    /// A magnet link: fetching the info dictionary from peers.
    FetchingMetadata,
    /// Hashing what is already stored (resume).
    Checking,
    /// Downloading missing pieces (and uploading what we have).
    Downloading,
    /// Every piece is here (or [`seed_only`](super::TorrentConfig::seed_only)): uploading only.
    Seeding,
    /// Stopped by [`TorrentHandle::stop`](super::TorrentHandle::stop).
    Stopped,
    /// Stopped by an error (storage failure, bad metainfo).
    Failed(String),
}

/// A snapshot of a torrent.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// State.
    pub state: TorrentState,
    /// The info hash.
    pub info_hash: InfoHash,
    /// The torrent's name, once the metadata is known.
    pub name: Option<String>,
    /// The address we listen on for peers.
    pub listen_addr: SocketAddr,
    /// Total size in bytes, once the metadata is known.
    pub total_bytes: Option<u64>,
    /// Verified bytes we hold.
    pub have_bytes: u64,
    /// Pieces in the torrent (0 until the metadata is known).
    pub pieces_total: u32,
    /// Verified pieces we hold.
    pub pieces_have: u32,
    /// Payload bytes received from peers (blocks, duplicates and failed pieces included).
    pub downloaded: u64,
    /// Payload bytes sent to peers.
    pub uploaded: u64,
    /// Received payload that was thrown away: duplicates, unrequested blocks, failed pieces.
    pub wasted: u64,
    /// Download payload rate, bytes per second, over the last [`RATE_WINDOW`] seconds.
    pub download_rate: u64,
    /// Upload payload rate, bytes per second, over the last [`RATE_WINDOW`] seconds.
    pub upload_rate: u64,
    /// Connected peers (handshake done).
    pub peers: usize,
    /// Connected peers that have every piece.
    pub seeds: usize,
    /// Outbound connection attempts in flight.
    pub half_open: usize,
    /// Peer addresses known (from trackers, the DHT, the caller, inbound connections).
    pub known_peers: usize,
    /// Pieces that failed their hash check.
    pub hash_failures: u64,
    /// Peers banned for sending corrupt data.
    pub banned: usize,
    /// Progress of the resume recheck, while [`TorrentState::Checking`].
    pub recheck: Option<RecheckProgress>,
    /// Successful tracker announces.
    pub announces: u64,
    /// The last tracker or DHT error, if the last attempt failed.
    pub last_announce_error: Option<String>,
}

/// What a progress bar shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Percent of the torrent's bytes held, 0 to 100 (0 while the metadata is unknown).
    pub percent: f64,
    /// Download rate, bytes per second.
    pub download_rate: u64,
    /// Upload rate, bytes per second.
    pub upload_rate: u64,
    /// Connected peers.
    pub peers: usize,
    /// Connected seeds.
    pub seeds: usize,
    /// Time left at the current download rate; `None` when unknown or stalled, zero when done.
    pub eta: Option<Duration>,
}

impl Stats {
    /// Bytes still missing, once the metadata is known.
    pub fn left(&self) -> Option<u64> {
        self.total_bytes.map(|t| t.saturating_sub(self.have_bytes))
    }

    /// Whether every piece is held.
    pub fn is_complete(&self) -> bool {
        self.total_bytes.is_some() && self.pieces_have == self.pieces_total
    }

    /// The progress-bar view.
    pub fn progress(&self) -> Progress {
        let percent = match self.total_bytes {
            Some(0) => 100.0,
            Some(t) => self.have_bytes as f64 * 100.0 / t as f64,
            None => 0.0,
        };
        let eta = match self.left() {
            Some(0) => Some(Duration::ZERO),
            Some(left) if self.download_rate > 0 => {
                Some(Duration::from_secs(left.div_ceil(self.download_rate)))
            }
            _ => None,
        };
        Progress {
            percent,
            download_rate: self.download_rate,
            upload_rate: self.upload_rate,
            peers: self.peers,
            seeds: self.seeds,
            eta,
        }
    }
}

/// A snapshot of one connected peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its address (for an inbound connection, the remote end: an ephemeral port).
    pub addr: SocketAddr,
    /// Its peer id.
    pub peer_id: PeerId,
    /// Whether we dialed it.
    pub outbound: bool,
    /// Its client name (BEP 10 `v`), if it sent one.
    pub client: Option<String>,
    /// Payload bytes it sent us.
    pub downloaded: u64,
    /// Payload bytes we sent it.
    pub uploaded: u64,
    /// Its rate to us, bytes per second.
    pub download_rate: u64,
    /// Our rate to it, bytes per second.
    pub upload_rate: u64,
    /// We choke it.
    pub am_choking: bool,
    /// We are interested in it.
    pub am_interested: bool,
    /// It chokes us.
    pub peer_choking: bool,
    /// It is interested in us.
    pub peer_interested: bool,
    /// Pieces it has (as far as it told us).
    pub pieces: u32,
    /// It has every piece.
    pub is_seed: bool,
}

/// A rolling rate: the bytes of the last [`RATE_WINDOW`] one-second ticks. Feed it a running
/// total once a second with [`RateMeter::tick`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateMeter {
    last_total: u64,
    buckets: [u64; RATE_WINDOW],
    next: usize,
    ticks: usize,
}

impl RateMeter {
    /// Records one second ending with the running total `total`.
    pub fn tick(&mut self, total: u64) {
        self.buckets[self.next] = total.saturating_sub(self.last_total);
        self.last_total = total;
        self.next = (self.next + 1) % RATE_WINDOW;
        self.ticks = (self.ticks + 1).min(RATE_WINDOW);
    }

    /// Bytes per second over the ticks recorded (at most [`RATE_WINDOW`]).
    pub fn rate(&self) -> u64 {
        if self.ticks == 0 {
            return 0;
        }
        self.buckets.iter().sum::<u64>() / self.ticks as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_a_rolling_mean() {
        let mut m = RateMeter::default();
        assert_eq!(m.rate(), 0);
        m.tick(1000);
        assert_eq!(m.rate(), 1000);
        m.tick(1000);
        assert_eq!(m.rate(), 500);
        for i in 0..RATE_WINDOW as u64 {
            m.tick(1000 + (i + 1) * 300);
        }
        assert_eq!(m.rate(), 300);
        // A total that goes backwards (a reset) counts as nothing, not as a huge delta.
        m.tick(0);
        assert_eq!(m.rate(), 240);
    }

    fn stats(total: Option<u64>, have: u64, rate: u64) -> Stats {
        Stats {
            state: TorrentState::Downloading,
            info_hash: InfoHash([0; 20]),
            name: None,
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            total_bytes: total,
            have_bytes: have,
            pieces_total: 4,
            pieces_have: u32::from(total == Some(have)) * 4,
            downloaded: 0,
            uploaded: 0,
            wasted: 0,
            download_rate: rate,
            upload_rate: 0,
            peers: 2,
            seeds: 1,
            half_open: 0,
            known_peers: 2,
            hash_failures: 0,
            banned: 0,
            recheck: None,
            announces: 0,
            last_announce_error: None,
        }
    }

    #[test]
    fn progress_percent_and_eta() {
        let p = stats(Some(1000), 250, 50).progress();
        assert_eq!(p.percent, 25.0);
        assert_eq!(p.eta, Some(Duration::from_secs(15)));
        assert_eq!((p.peers, p.seeds), (2, 1));
        assert_eq!(stats(Some(1000), 250, 0).progress().eta, None);
        assert_eq!(stats(None, 0, 10).progress().percent, 0.0);
        let done = stats(Some(1000), 1000, 0);
        assert!(done.is_complete());
        assert_eq!(done.progress().eta, Some(Duration::ZERO));
        assert_eq!(done.left(), Some(0));
    }
}
