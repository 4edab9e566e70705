//! Unit tests of the UDP tracker through [`UdpTracker::handle`], with a manual clock, plus a
//! property test and a real-socket test. This module holds the shared fixture.

mod auth;
mod flows;
mod perf;
mod props;
mod socket;

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use swarmd_proto::udp::{
    parse_response, write_announce_request, write_connect_request, write_scrape_request,
    AnnounceRequest, Response, UrlData,
};
use swarmd_proto::{Event, InfoHash, PeerId};
use swarmd_swarm::access::{Access, AccessPolicy, AccessRequest, OpenPolicy};
use swarmd_swarm::clock::ManualClock;
use swarmd_swarm::metrics::Metrics;
use swarmd_swarm::{Registry, RegistryConfig};

use crate::{UdpConfig, UdpTracker};

/// A policy that records the passkeys it is shown, denies announces carrying `deny` as passkey,
/// and hides `hidden` from scrapes.
#[derive(Default)]
pub(crate) struct Recording {
    pub(crate) passkeys: Mutex<Vec<Option<Vec<u8>>>>,
    pub(crate) clients: Mutex<Vec<IpAddr>>,
    pub(crate) deny: Option<&'static [u8]>,
    pub(crate) hidden: Option<InfoHash>,
    /// Denial text instead of "passkey revoked".
    pub(crate) reason: Option<String>,
}

impl AccessPolicy for Recording {
    fn announce(&self, req: &AccessRequest<'_>) -> Access {
        assert_eq!(req.protocol, swarmd_swarm::access::Protocol::Udp);
        assert!(req.peer_id.is_some());
        self.passkeys
            .lock()
            .unwrap()
            .push(req.passkey.map(<[u8]>::to_vec));
        self.clients.lock().unwrap().push(req.client);
        if req.passkey.is_some() && req.passkey == self.deny {
            return Access::Deny(match &self.reason {
                Some(r) => Cow::Owned(r.clone()),
                None => Cow::Borrowed("passkey revoked"),
            });
        }
        Access::Allow
    }

    fn scrape(&self, req: &AccessRequest<'_>) -> Access {
        if Some(*req.info_hash) == self.hidden {
            Access::Deny(Cow::Borrowed("hidden"))
        } else {
            Access::Allow
        }
    }

    fn is_private(&self, _: &InfoHash) -> bool {
        false
    }
}

pub(crate) struct Fixture {
    pub(crate) tracker: UdpTracker,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) metrics: Metrics,
    pub(crate) policy: Arc<Recording>,
}

pub(crate) fn fixture() -> Fixture {
    fixture_with(
        UdpConfig::default(),
        Recording::default(),
        RegistryConfig::default(),
    )
}

pub(crate) fn fixture_with(
    config: UdpConfig,
    policy: Recording,
    registry: RegistryConfig,
) -> Fixture {
    let clock = Arc::new(ManualClock::new(1_000));
    let metrics = Metrics::new().unwrap();
    let policy = Arc::new(policy);
    let tracker = UdpTracker::new(
        config,
        Arc::new(Registry::new(RegistryConfig {
            shards: 4,
            ..registry
        })),
        policy.clone(),
        clock.clone(),
        &metrics,
    );
    Fixture {
        tracker,
        clock,
        metrics,
        policy,
    }
}

/// A tracker over the open policy, for tests that do not look at the policy.
pub(crate) fn open_tracker(config: UdpConfig) -> (UdpTracker, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_000));
    let tracker = UdpTracker::new(
        config,
        Arc::new(Registry::new(RegistryConfig::default())),
        Arc::new(OpenPolicy),
        clock.clone(),
        &Metrics::new().unwrap(),
    );
    (tracker, clock)
}

pub(crate) fn v4(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(192, 0, 2, last), port))
}

pub(crate) fn v6(last: u16, port: u16) -> SocketAddr {
    SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, last], port))
}

pub(crate) const IH: InfoHash = InfoHash([0xaa; 20]);

/// An announce with the usual defaults: a leecher on port 6881 wanting the default count.
pub(crate) fn announce_req(connection_id: u64) -> AnnounceRequest<'static> {
    AnnounceRequest {
        connection_id,
        transaction_id: 0x0102_0304,
        info_hash: IH,
        peer_id: PeerId(*b"-SW0001-abcdefghijkl"),
        downloaded: 0,
        left: 1000,
        uploaded: 0,
        event: Event::Started,
        ip: None,
        key: 7,
        num_want: -1,
        port: 6881,
        url_data: UrlData::default(),
    }
}

impl Fixture {
    /// Sends `packet` from `src`; the reply if the tracker answers.
    pub(crate) fn send(&self, packet: &[u8], src: SocketAddr) -> Option<Vec<u8>> {
        send(&self.tracker, packet, src)
    }

    pub(crate) fn connect(&self, src: SocketAddr) -> u64 {
        connect(&self.tracker, src)
    }

    /// Announces `req` from `src`; the raw reply.
    pub(crate) fn announce(&self, src: SocketAddr, req: &AnnounceRequest<'_>) -> Option<Vec<u8>> {
        let mut p = Vec::new();
        write_announce_request(&mut p, req);
        self.send(&p, src)
    }

    /// Scrapes `hashes` from `src` with `cid`; the raw reply.
    pub(crate) fn scrape(&self, src: SocketAddr, cid: u64, hashes: &[InfoHash]) -> Option<Vec<u8>> {
        let mut p = Vec::new();
        write_scrape_request(&mut p, cid, 9, hashes);
        self.send(&p, src)
    }

    /// The value of the sample of `name` whose labels include every `(key, value)` pair.
    pub(crate) fn metric(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        metric(&self.metrics, name, labels)
    }

    pub(crate) fn requests(&self, action: &str, result: &str) -> u64 {
        self.metric(
            "swarmd_requests_total",
            &[("protocol", "udp"), ("action", action), ("result", result)],
        )
    }

    pub(crate) fn dropped(&self, reason: &str) -> u64 {
        self.metric(
            "swarmd_dropped_packets_total",
            &[("protocol", "udp"), ("reason", reason)],
        )
    }
}

/// The sum of the samples of `name` whose labels include every `(key, value)` pair.
pub(crate) fn metric(metrics: &Metrics, name: &str, labels: &[(&str, &str)]) -> u64 {
    let mut text = Vec::new();
    metrics.encode_text(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
        .sum()
}

pub(crate) fn send(tracker: &UdpTracker, packet: &[u8], src: SocketAddr) -> Option<Vec<u8>> {
    let mut out = vec![0xee; 3]; // stale bytes: handle must clear them
    let reply = tracker.handle(packet, src, &mut out);
    if !reply {
        assert!(out.is_empty() || out == [0xee; 3], "no reply but {out:?}");
    }
    reply.then_some(out)
}

pub(crate) fn connect(tracker: &UdpTracker, src: SocketAddr) -> u64 {
    let mut p = Vec::new();
    write_connect_request(&mut p, 0xdead_beef);
    let r = send(tracker, &p, src).expect("connect is answered");
    assert_eq!(r.len(), 16);
    match parse_response(&r) {
        Ok(Response::Connect {
            transaction_id: 0xdead_beef,
            connection_id,
        }) => connection_id,
        other => panic!("not a connect reply: {other:?}"),
    }
}

/// The announce reply's (interval, leechers, seeders, peers).
pub(crate) fn announced(reply: &[u8]) -> (u32, u32, u32, Vec<u8>) {
    match parse_response(reply) {
        Ok(Response::Announce {
            transaction_id: 0x0102_0304,
            interval,
            leechers,
            seeders,
            peers,
        }) => (interval, leechers, seeders, peers.to_vec()),
        other => panic!("not an announce reply: {other:?}"),
    }
}

/// The error reply's message.
pub(crate) fn error_message(reply: &[u8]) -> String {
    match parse_response(reply) {
        Ok(Response::Error { message, .. }) => String::from_utf8(message.to_vec()).unwrap(),
        other => panic!("not an error reply: {other:?}"),
    }
}

pub(crate) fn compact_v4(addr: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(a) = addr else {
        panic!("not v4")
    };
    let mut v = a.ip().octets().to_vec();
    v.extend_from_slice(&a.port().to_be_bytes());
    v
}
