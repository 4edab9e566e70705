//! Generic peer discovery: participants meet under the SHA-1 of any name (a "topic"), through a
//! tracker or the DHT, exactly as if it were a torrent's info hash.
//!
//! ```
//! use swarmd_client_core::rendezvous::topic_hash;
//! // SHA-1("abc")
//! assert_eq!(
//!     topic_hash("abc").to_string(),
//!     "a9993e364706816aba3e25717850c26c9cd0d89d"
//! );
//! ```

use std::net::SocketAddr;

use sha1::{Digest, Sha1};
use swarmd_proto::InfoHash;

use crate::dht::{is_self, DhtClient, DhtError};
use crate::tracker::{random_peer_id, AnnounceRequest, TrackerClient, TrackerError};

/// What can go wrong while meeting on a topic.
#[derive(Debug, thiserror::Error)]
pub enum RendezvousError {
    /// The tracker announce failed.
    #[error("tracker: {0}")]
    Tracker(#[from] TrackerError),
    /// The DHT lookup or announce failed.
    #[error("DHT: {0}")]
    Dht(#[from] DhtError),
}

/// The info hash a topic meets under: SHA-1 of its UTF-8 bytes.
pub fn topic_hash(topic: &str) -> InfoHash {
    InfoHash(Sha1::digest(topic.as_bytes()).into())
}

/// Announces us on `port` under `topic` to the tracker at `url` (`http://` or `udp://`; event
/// `started`, `left` = 1 so that we count as a leecher and get seeders and leechers back) and
/// returns the other peers the tracker gave.
pub async fn rendezvous_tracker(
    url: &str,
    topic: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, RendezvousError> {
    rendezvous_tracker_with(&TrackerClient::default(), url, topic, port).await
}

/// [`rendezvous_tracker`] with a given tracker client (its timeouts and UDP connection ids).
pub async fn rendezvous_tracker_with(
    client: &TrackerClient,
    url: &str,
    topic: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, RendezvousError> {
    let req = AnnounceRequest::new(topic_hash(topic), random_peer_id(), port, 1);
    Ok(client.announce(url, &req).await?.peers)
}

/// Announces us on `port` under `topic` to the DHT reached through `bootstrap` (one ephemeral
/// client socket), then looks the topic up again and returns the peers found, us excepted (as
/// far as the nodes' report of our address tells).
pub async fn rendezvous_dht(
    bootstrap: &[SocketAddr],
    topic: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, RendezvousError> {
    let local: SocketAddr = match bootstrap.first() {
        Some(SocketAddr::V6(_)) => "[::]:0",
        _ => "0.0.0.0:0",
    }
    .parse()
    .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    let client = DhtClient::bind(local).await?;
    rendezvous_dht_with(&client, bootstrap, topic, port).await
}

/// [`rendezvous_dht`] with a given DHT client.
pub async fn rendezvous_dht_with(
    client: &DhtClient,
    bootstrap: &[SocketAddr],
    topic: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, RendezvousError> {
    let hash = topic_hash(topic);
    client.announce(bootstrap, hash, Some(port)).await?;
    let lookup = client.get_peers(bootstrap, hash).await?;
    let reported = lookup.reported_addr;
    Ok(lookup
        .peers
        .into_iter()
        .filter(|p| !is_self(*p, reported, port))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::topic_hash;

    #[test]
    fn topic_hash_is_sha1_of_utf8() {
        assert_eq!(
            topic_hash("").to_string(),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_ne!(topic_hash("é"), topic_hash("e"));
    }
}
