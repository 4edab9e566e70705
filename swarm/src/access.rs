//! The access-policy seam: every protocol asks it whether a request may announce or scrape a
//! hash, and whether a hash is private (so never served or stored through the DHT).
//!
//! The default is [`OpenPolicy`], a public tracker. Private mode (passkeys, allow lists) is
//! another implementation of [`AccessPolicy`]; protocols need no change to use it.

use std::borrow::Cow;
use std::net::IpAddr;

use swarmd_proto::{Event, InfoHash, PeerId};

/// Which protocol a request arrived over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// HTTP tracker (BEP 3).
    Http,
    /// UDP tracker (BEP 15).
    Udp,
    /// Mainline DHT (BEP 5).
    Dht,
}

impl Protocol {
    /// The protocol's name as used in metric labels and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Udp => "udp",
            Protocol::Dht => "dht",
        }
    }
}

/// What a policy is asked about one request for one info hash.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// The protocol the request came over.
    pub protocol: Protocol,
    /// The info hash the request is about.
    pub info_hash: &'a InfoHash,
    /// The credential the client presented, if any: the passkey from an HTTP path
    /// (`/KEY/announce`) or from BEP 41 URL data over UDP. `None` over the DHT.
    pub passkey: Option<&'a [u8]>,
    /// The announcing peer's id, when the protocol carries one (client allow/deny lists).
    pub peer_id: Option<&'a PeerId>,
    /// The client's address as the server determined it.
    pub client: IpAddr,
    /// What an announcing client reports about its transfer; `None` for scrapes and over the
    /// DHT. Accounting policies record it (see [`AccessPolicy::announce`]).
    pub transfer: Option<Transfer>,
    /// The server clock's reading, when the caller already has one for this request (a UDP
    /// worker reads it once per batch); `None` lets a policy that needs the time read it.
    pub now: Option<crate::clock::Secs>,
}

/// The transfer figures a client reports in a tracker announce (BEP 3): totals since its
/// `started` event, bytes it still needs, and the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// Bytes uploaded since the client's `started` event.
    pub uploaded: u64,
    /// Bytes downloaded since the client's `started` event.
    pub downloaded: u64,
    /// Bytes the client still needs (0 for a seeder).
    pub left: u64,
    /// The announce's event.
    pub event: Event,
    /// The port the client listens on.
    pub port: u16,
}

/// A policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Go ahead.
    Allow,
    /// Refused; the reason is shown to the client (HTTP `failure reason`, BEP 15 error text).
    /// Over the DHT a refusal is silent or a KRPC error, at the node's choice.
    Deny(Cow<'static, str>),
}

impl Access {
    /// True for [`Access::Allow`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, Access::Allow)
    }
}

/// Decides who may do what. Implementations must be cheap: they run on every request, on the
/// servers' worker threads, and must not block on IO (keep any database behind an in-memory view).
pub trait AccessPolicy: Send + Sync + 'static {
    /// May this request announce this hash (and so be stored and receive peers)?
    ///
    /// Trackers call it once per announce, before the registry sees the request, with
    /// `req.transfer` set; an accounting policy records the transfer here when it allows the
    /// request, so one lookup serves both. The DHT calls it without a transfer for
    /// `announce_peer` and `get_peers`.
    fn announce(&self, req: &AccessRequest<'_>) -> Access;

    /// May this request see this hash's counts in a scrape? A denied hash is answered as unknown
    /// (zeros) or refused, at the protocol's choice, so scrapes never confirm hidden torrents.
    fn scrape(&self, req: &AccessRequest<'_>) -> Access;

    /// Is this hash private (BEP 27)? Private hashes are never stored or served through the DHT,
    /// and the DHT may not even confirm that it knows them.
    fn is_private(&self, info_hash: &InfoHash) -> bool;

    /// May a client ask for every torrent at once (a "full scrape")? Policies that hide torrents
    /// from some clients must refuse.
    fn full_scrape(&self, client: IpAddr) -> Access {
        let _ = client;
        Access::Allow
    }

    /// Starts loading, without waiting, what [`AccessPolicy::announce`] of `info_hash` by
    /// `peer_id` (`None` for a scrape) will read, as
    /// [`Registry::prefetch`](crate::Registry::prefetch) does for the registry: the UDP
    /// tracker calls both for the datagrams after the one it is handling. A hint only; policies
    /// with nothing per torrent to look up keep the default, which does nothing.
    fn prefetch(&self, info_hash: &InfoHash, peer_id: Option<&PeerId>, step: crate::Prefetch) {
        let _ = (info_hash, peer_id, step);
    }
}

/// A public tracker: anything announced is tracked, nothing is private.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenPolicy;

impl AccessPolicy for OpenPolicy {
    fn announce(&self, _req: &AccessRequest<'_>) -> Access {
        Access::Allow
    }

    fn scrape(&self, _req: &AccessRequest<'_>) -> Access {
        Access::Allow
    }

    fn is_private(&self, _info_hash: &InfoHash) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn open_policy_allows_everything_and_hides_nothing() {
        let ih = InfoHash([1; 20]);
        let req = AccessRequest {
            protocol: Protocol::Http,
            info_hash: &ih,
            passkey: None,
            peer_id: None,
            client: IpAddr::V4(Ipv4Addr::LOCALHOST),
            transfer: None,
            now: None,
        };
        let p = OpenPolicy;
        assert!(p.announce(&req).is_allowed());
        assert!(p.scrape(&req).is_allowed());
        assert!(!p.is_private(&ih));
        assert!(p.full_scrape(req.client).is_allowed());
    }
}
