//! Request handling: routing, announce and scrape against the shared registry, and the bencoded
//! replies. Everything here is synchronous and holds no lock across anything but one registry
//! call; per-request scratch buffers are thread-local and reused.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode, Uri};
use ipnet::IpNet;
use prometheus::{Histogram, IntCounter, IntGauge};
use swarmd_proto::http::{
    parse_announce, parse_scrape, percent_decode_into, write_announce, write_failure, write_scrape,
    AnnounceResponse, Peers, ScrapeFile,
};
use swarmd_proto::path::{route, Endpoint};
use swarmd_proto::{Event, InfoHash};
use swarmd_swarm::access::{Access, AccessPolicy, AccessRequest, Protocol, Transfer};
use swarmd_swarm::clock::Clock;
use swarmd_swarm::metrics::Metrics;
use swarmd_swarm::{Announce, AnnounceError, Registry, SelectedPeers, SwarmStats};

use crate::client::client_ip;

/// Settings of the HTTP tracker.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// `interval` sent to clients, in seconds.
    pub announce_interval: u32,
    /// `min interval` sent to clients, in seconds (also the scrape `min_request_interval`).
    pub min_announce_interval: u32,
    /// Peers returned when `numwant` is absent or <= 0.
    pub default_numwant: u32,
    /// Cap on peers returned.
    pub max_numwant: u32,
    /// The most open connections per listener.
    pub max_connections: usize,
    /// Time allowed to send a request head, and to idle between keep-alive requests.
    pub request_timeout: Duration,
    /// Largest request head accepted, in bytes (at least 8192).
    pub max_request_bytes: usize,
    /// Proxies whose `X-Forwarded-For` / `X-Real-IP` headers are trusted.
    pub trusted_proxies: Vec<IpNet>,
    /// Honour the `ip=` announce parameter.
    pub allow_ip_param: bool,
    /// The most info hashes in one scrape.
    pub max_scrape_hashes: usize,
    /// Answer scrapes without `info_hash` with every torrent.
    pub full_scrape: bool,
    /// The most torrents in one full scrape.
    pub full_scrape_max_torrents: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            announce_interval: 1800,
            min_announce_interval: 900,
            default_numwant: 50,
            max_numwant: 200,
            max_connections: 10_000,
            request_timeout: Duration::from_secs(15),
            max_request_bytes: 8192,
            trusted_proxies: Vec::new(),
            allow_ip_param: false,
            max_scrape_hashes: 64,
            full_scrape: false,
            full_scrape_max_torrents: 10_000,
        }
    }
}

/// How a request ended, for the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    BadRequest,
    Denied,
    Limit,
}

/// Metric handles resolved once at start, so a request costs a few atomic adds.
struct HttpMetrics {
    announce: [IntCounter; 4],
    scrape: [IntCounter; 4],
    not_found: IntCounter,
    bad_method: IntCounter,
    announce_duration: Histogram,
    scrape_duration: Histogram,
    connections: IntCounter,
    open_connections: IntGauge,
}

const RESULTS: [&str; 4] = ["ok", "bad_request", "denied", "limit"];

impl HttpMetrics {
    fn new(m: &Metrics) -> Self {
        let p = Protocol::Http;
        Self {
            announce: RESULTS.map(|r| m.request_counter(p, "announce", r)),
            scrape: RESULTS.map(|r| m.request_counter(p, "scrape", r)),
            not_found: m.request_counter(p, "other", "not_found"),
            bad_method: m.request_counter(p, "other", "method_not_allowed"),
            announce_duration: m.duration(p, "announce"),
            scrape_duration: m.duration(p, "scrape"),
            connections: m.connections(p),
            open_connections: m.open_connections(p),
        }
    }
}

/// Per-thread buffers reused by every request handled on that thread.
#[derive(Default)]
struct Scratch {
    body: Vec<u8>,
    peers: SelectedPeers,
    decoded: Vec<u8>,
    hashes: Vec<InfoHash>,
    files: Vec<ScrapeFile>,
    full: Vec<(InfoHash, SwarmStats)>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The HTTP tracker's shared state: one per process, shared by every listener and connection.
pub struct Tracker {
    config: TrackerConfig,
    registry: Arc<Registry>,
    policy: Arc<dyn AccessPolicy>,
    clock: Arc<dyn Clock>,
    metrics: HttpMetrics,
}

impl Tracker {
    /// Creates the tracker over a shared registry, access policy and clock.
    pub fn new(
        config: TrackerConfig,
        registry: Arc<Registry>,
        policy: Arc<dyn AccessPolicy>,
        clock: Arc<dyn Clock>,
        metrics: &Metrics,
    ) -> Self {
        Self {
            config,
            registry,
            policy,
            clock,
            metrics: HttpMetrics::new(metrics),
        }
    }

    /// The tracker's settings.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    pub(crate) fn connection_opened(&self) {
        self.metrics.connections.inc();
        self.metrics.open_connections.inc();
    }

    pub(crate) fn connection_closed(&self) {
        self.metrics.open_connections.dec();
    }

    /// Answers one request. Tracker errors are bencoded `failure reason`s with status 200, as
    /// clients expect; only unknown paths (404) and methods (405) get HTTP errors.
    pub fn respond(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        peer: SocketAddr,
    ) -> Response<Full<Bytes>> {
        let Some((endpoint, passkey)) = route(uri.path().as_bytes()) else {
            self.metrics.not_found.inc();
            return plain(StatusCode::NOT_FOUND, "not found\n");
        };
        if method != Method::GET && method != Method::HEAD {
            self.metrics.bad_method.inc();
            return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET is supported\n");
        }
        let started = Instant::now();
        let query = uri.query().unwrap_or("").as_bytes();
        SCRATCH.with_borrow_mut(|s| {
            s.body.clear();
            let (outcome, counters, histogram) = match endpoint {
                Endpoint::Announce => (
                    self.announce(query, headers, peer, passkey, s),
                    &self.metrics.announce,
                    &self.metrics.announce_duration,
                ),
                Endpoint::Scrape => (
                    self.scrape(query, headers, peer, passkey, s),
                    &self.metrics.scrape,
                    &self.metrics.scrape_duration,
                ),
            };
            counters[outcome as usize].inc();
            let response = bencoded(Bytes::copy_from_slice(&s.body));
            histogram.observe(started.elapsed().as_secs_f64());
            response
        })
    }

    fn client(&self, headers: &HeaderMap, peer: SocketAddr) -> Result<IpAddr, String> {
        client_ip(peer.ip(), headers, &self.config.trusted_proxies).map_err(|e| e.to_string())
    }

    fn announce(
        &self,
        query: &[u8],
        headers: &HeaderMap,
        peer: SocketAddr,
        passkey: Option<&[u8]>,
        s: &mut Scratch,
    ) -> Outcome {
        let q = match parse_announce(query) {
            Ok(q) => q,
            Err(e) => return fail(&mut s.body, &e.to_string(), Outcome::BadRequest),
        };
        let mut ip = match self.client(headers, peer) {
            Ok(ip) => ip,
            Err(e) => return fail(&mut s.body, &e, Outcome::BadRequest),
        };
        if self.config.allow_ip_param {
            if let Some(claimed) = q.ip {
                ip = claimed.to_canonical();
            }
        }
        let now = self.clock.now();
        let access = self.policy.announce(&AccessRequest {
            protocol: Protocol::Http,
            info_hash: &q.info_hash,
            passkey,
            peer_id: Some(&q.peer_id),
            client: ip,
            transfer: Some(Transfer {
                uploaded: q.uploaded,
                downloaded: q.downloaded,
                left: q.left,
                event: q.event,
                port: q.port,
            }),
            now: Some(now),
        });
        if let Access::Deny(reason) = access {
            return fail(&mut s.body, &reason, Outcome::Denied);
        }
        let numwant = q.numwant.map_or(self.config.default_numwant, |n| {
            n.min(self.config.max_numwant)
        });
        let req = Announce {
            info_hash: q.info_hash,
            peer_id: q.peer_id,
            addr: SocketAddr::new(ip, q.port),
            event: q.event,
            left: q.left,
            numwant: numwant as usize,
        };
        let outcome = match self.registry.announce(&req, now, &mut s.peers) {
            Ok(o) => o,
            Err(e @ AnnounceError::TorrentLimit) => {
                return fail(&mut s.body, &e.to_string(), Outcome::Limit)
            }
        };
        s.decoded.clear();
        let tracker_id = match q.tracker_id {
            Some(raw) if percent_decode_into(raw, &mut s.decoded).is_ok() => Some(&s.decoded[..]),
            _ => None,
        };
        let warning = (!outcome.stored && q.event != Event::Stopped)
            .then_some("this torrent has too many peers: you get peers but are not tracked");
        let selected = &s.peers.compact[..];
        let ids = (!q.no_peer_id && !s.peers.peer_ids.is_empty()).then_some(&s.peers.peer_ids[..]);
        let (v4, v6, v4_ids, v6_ids): (&[u8], &[u8], _, _) = if ip.is_ipv4() {
            (selected, &[], ids, None)
        } else {
            (&[], selected, None, ids)
        };
        let peers = if q.compact {
            Peers::Compact { v4, v6 }
        } else {
            Peers::Dicts {
                v4,
                v6,
                v4_ids,
                v6_ids,
            }
        };
        write_announce(
            &mut s.body,
            &AnnounceResponse {
                interval: self.config.announce_interval,
                min_interval: self.config.min_announce_interval,
                complete: outcome.stats.complete,
                incomplete: outcome.stats.incomplete,
                downloaded: outcome.stats.downloaded,
                tracker_id,
                warning,
                peers,
            },
        );
        Outcome::Ok
    }

    fn scrape(
        &self,
        query: &[u8],
        headers: &HeaderMap,
        peer: SocketAddr,
        passkey: Option<&[u8]>,
        s: &mut Scratch,
    ) -> Outcome {
        if let Err(e) = parse_scrape(query, self.config.max_scrape_hashes, &mut s.hashes) {
            return fail(&mut s.body, &e.to_string(), Outcome::BadRequest);
        }
        let ip = match self.client(headers, peer) {
            Ok(ip) => ip,
            Err(e) => return fail(&mut s.body, &e, Outcome::BadRequest),
        };
        s.files.clear();
        if s.hashes.is_empty() {
            if !self.config.full_scrape {
                return fail(
                    &mut s.body,
                    "missing info_hash (full scrape is disabled)",
                    Outcome::BadRequest,
                );
            }
            if let Access::Deny(reason) = self.policy.full_scrape(ip) {
                return fail(&mut s.body, &reason, Outcome::Denied);
            }
            s.full.clear();
            self.registry
                .full_scrape(self.config.full_scrape_max_torrents, &mut s.full);
            s.files
                .extend(s.full.iter().map(|(h, st)| scrape_file(*h, st)));
        } else {
            // Denied hashes are left out (BEP 48 lists only torrents with stats); unknown ones
            // are answered with zeros. If every hash is denied, the reason is the reply.
            let mut denial = None;
            for h in &s.hashes {
                let access = self.policy.scrape(&AccessRequest {
                    protocol: Protocol::Http,
                    info_hash: h,
                    passkey,
                    peer_id: None,
                    client: ip,
                    transfer: None,
                    now: None,
                });
                match access {
                    Access::Allow => {
                        let stats = self.registry.scrape(h).unwrap_or_default();
                        s.files.push(scrape_file(*h, &stats));
                    }
                    Access::Deny(reason) => denial = Some(reason),
                }
            }
            if s.files.is_empty() {
                if let Some(reason) = denial {
                    return fail(&mut s.body, &reason, Outcome::Denied);
                }
            }
        }
        write_scrape(
            &mut s.body,
            &mut s.files,
            Some(self.config.min_announce_interval),
        );
        Outcome::Ok
    }
}

fn scrape_file(info_hash: InfoHash, st: &SwarmStats) -> ScrapeFile {
    ScrapeFile {
        info_hash,
        complete: st.complete,
        downloaded: st.downloaded,
        incomplete: st.incomplete,
        downloaders: st.downloaders,
    }
}

fn fail(body: &mut Vec<u8>, reason: &str, outcome: Outcome) -> Outcome {
    body.clear();
    write_failure(body, reason);
    outcome
}

fn bencoded(body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
