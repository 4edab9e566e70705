//! Tracker clients: HTTP (BEP 3, BEP 23 compact, BEP 7 `peers6`) and UDP (BEP 15), scrape, and
//! BEP 12 tier order.
//!
//! [`TrackerClient`] holds the settings (timeouts, UDP retransmit base) and the UDP connection
//! ids it may reuse for 60 seconds; [`announce`] and [`scrape`] are one-shot shortcuts with the
//! defaults. [`Tiers`] walks an announce-list tier by tier (BEP 12).

mod http;
mod tiers;
mod udp;
mod url;

use std::net::SocketAddr;
use std::time::Duration;

pub use swarmd_proto::{Event, InfoHash, PeerId};
pub use tiers::Tiers;
pub use url::{TrackerUrl, UrlError};

pub use http::{parse_announce_reply, parse_scrape_reply};
use udp::UdpSessions;

/// One announce to a tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: PeerId,
    /// The port we listen on.
    pub port: u16,
    /// Bytes uploaded so far.
    pub uploaded: u64,
    /// Bytes downloaded so far.
    pub downloaded: u64,
    /// Bytes still missing (0 for a seeder).
    pub left: u64,
    /// The event (none for a regular announce).
    pub event: Event,
    /// Peers wanted; `None` lets the tracker choose.
    pub numwant: Option<u32>,
    /// A client key, stable across our announces.
    pub key: Option<u32>,
    /// A passkey inserted as a path segment before `announce` (`/KEY/announce`), for private
    /// trackers whose URL does not already carry it.
    pub passkey: Option<String>,
}

impl AnnounceRequest {
    /// A `started` announce for `info_hash` from `peer_id` on `port`, with nothing transferred
    /// and `left` bytes missing.
    pub fn new(info_hash: InfoHash, peer_id: PeerId, port: u16, left: u64) -> Self {
        Self {
            info_hash,
            peer_id,
            port,
            uploaded: 0,
            downloaded: 0,
            left,
            event: Event::Started,
            numwant: None,
            key: None,
            passkey: None,
        }
    }
}

/// A tracker's answer to an announce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// Seconds to wait before the next regular announce.
    pub interval: u32,
    /// Minimum seconds between announces, if the tracker sent one.
    pub min_interval: Option<u32>,
    /// Seeders, if known.
    pub complete: Option<u32>,
    /// Leechers, if known.
    pub incomplete: Option<u32>,
    /// Peers, IPv4 and IPv6, in reply order.
    pub peers: Vec<SocketAddr>,
    /// The tracker's `warning message`, if any.
    pub warning: Option<String>,
    /// The `tracker id` to send back in later announces, if any.
    pub tracker_id: Option<Vec<u8>>,
}

/// Scrape counters of one torrent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeStats {
    /// Seeders.
    pub complete: u32,
    /// Completed downloads so far.
    pub downloaded: u32,
    /// Leechers.
    pub incomplete: u32,
}

/// Why an announce or a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// The URL could not be understood.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// A scheme this client does not speak (`https`, ...).
    #[error("unsupported tracker scheme `{0}`")]
    UnsupportedScheme(String),
    /// The URL's path has no last `announce` segment to turn into `scrape`.
    #[error("tracker URL has no `announce` segment, so it cannot scrape")]
    NoScrape,
    /// The host did not resolve.
    #[error("cannot resolve `{0}`")]
    Resolve(String),
    /// A socket or connection error.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// An announce-list with no tracker in it.
    #[error("no tracker to announce to")]
    NoTracker,
    /// The tracker did not answer in time (UDP: after every retransmit).
    #[error("tracker timed out")]
    Timeout,
    /// The tracker refused: a `failure reason` (HTTP) or an error packet (UDP).
    #[error("tracker failure: {0}")]
    Failure(String),
    /// An HTTP status other than 200 without a bencoded failure.
    #[error("HTTP status {0}")]
    HttpStatus(u16),
    /// An HTTP protocol error.
    #[error("HTTP error: {0}")]
    Http(String),
    /// A reply that is not a valid tracker reply.
    #[error("malformed tracker reply: {0}")]
    Malformed(String),
}

/// Settings of a [`TrackerClient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConfig {
    /// Whole-request timeout of an HTTP announce or scrape.
    pub http_timeout: Duration,
    /// UDP retransmit base: the n-th try waits `base * 2^n` (BEP 15: 15 s).
    pub udp_base_timeout: Duration,
    /// UDP retransmits after the first try (BEP 15: 8, so n = 0..=8).
    pub udp_max_retries: u32,
    /// How long a UDP connection id may be reused (BEP 15: 60 s).
    pub udp_connection_ttl: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            http_timeout: Duration::from_secs(30),
            udp_base_timeout: Duration::from_secs(15),
            udp_max_retries: 8,
            udp_connection_ttl: Duration::from_secs(60),
        }
    }
}

/// A tracker client for HTTP and UDP trackers; keeps UDP connection ids between requests.
#[derive(Debug, Default)]
pub struct TrackerClient {
    config: ClientConfig,
    udp: UdpSessions,
}

impl TrackerClient {
    /// A client with `config`.
    pub fn new(config: ClientConfig) -> Self {
        Self {
            config,
            udp: UdpSessions::default(),
        }
    }

    /// The client's settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// How many UDP connect requests got an answer so far (a reused connection id sends none).
    pub fn udp_connects(&self) -> u64 {
        self.udp.connects()
    }

    /// How many UDP datagrams were sent so far, retransmits included.
    pub fn udp_sends(&self) -> u64 {
        self.udp.sends()
    }

    /// Announces to the tracker at `url` (`http://` or `udp://`).
    pub async fn announce(
        &self,
        url: &str,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        let u = TrackerUrl::parse(url)?;
        match u.scheme.as_str() {
            "http" => http::announce(&u, req, self.config.http_timeout).await,
            "udp" => self.udp.announce(&u, req, &self.config).await,
            other => Err(TrackerError::UnsupportedScheme(other.to_owned())),
        }
    }

    /// Scrapes `hashes` at the tracker at `url` (an announce URL; over HTTP its last `announce`
    /// segment becomes `scrape`). Stats come back in `hashes` order; a torrent the tracker does
    /// not know gets zeros.
    pub async fn scrape(
        &self,
        url: &str,
        hashes: &[InfoHash],
    ) -> Result<Vec<ScrapeStats>, TrackerError> {
        let u = TrackerUrl::parse(url)?;
        match u.scheme.as_str() {
            "http" => http::scrape(&u, hashes, self.config.http_timeout).await,
            "udp" => self.udp.scrape(&u, hashes, &self.config).await,
            other => Err(TrackerError::UnsupportedScheme(other.to_owned())),
        }
    }
}

/// Announces to `url` with a default [`TrackerClient`] (no connection id reuse across calls).
pub async fn announce(url: &str, req: &AnnounceRequest) -> Result<AnnounceResponse, TrackerError> {
    TrackerClient::default().announce(url, req).await
}

/// Scrapes `hashes` at `url` with a default [`TrackerClient`].
pub async fn scrape(url: &str, hashes: &[InfoHash]) -> Result<Vec<ScrapeStats>, TrackerError> {
    TrackerClient::default().scrape(url, hashes).await
}

/// A random peer id in the Azureus style: `-SW0100-` and 12 random alphanumerics.
pub fn random_peer_id() -> PeerId {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(b"-SW0100-");
    let mut rng = rand::rng();
    for b in &mut id[8..] {
        *b = ALPHABET[rng.random_range(0..ALPHABET.len())];
    }
    PeerId(id)
}

/// Peers from compact bytes: 6 bytes per IPv4 entry or 18 per IPv6 entry (a trailing partial
/// entry is ignored).
pub(crate) fn compact_peers(bytes: &[u8], v6: bool, out: &mut Vec<SocketAddr>) {
    if v6 {
        for c in bytes.chunks_exact(18) {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&c[..16]);
            let port = u16::from_be_bytes([c[16], c[17]]);
            out.push(SocketAddr::from((ip, port)));
        }
    } else {
        for c in bytes.chunks_exact(6) {
            let ip = [c[0], c[1], c[2], c[3]];
            let port = u16::from_be_bytes([c[4], c[5]]);
            out.push(SocketAddr::from((ip, port)));
        }
    }
}
