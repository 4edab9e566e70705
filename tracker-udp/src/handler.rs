//! The sans-socket core: one datagram in, at most one reply out. Connection ids are checked
//! before anything else is looked at; only authenticated requests ever get an error reply, and
//! unauthenticated ones never get more bytes back than they carried.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use swarmd_proto::path::{route, split_query};
use swarmd_proto::udp::{
    parse_request, write_announce_response, write_connect_response, write_error_response,
    write_scrape_response_entry, write_scrape_response_header, AnnounceRequest, Request,
    RequestError, ScrapeRequest, UrlData, CONNECT_REQUEST_LEN, ERROR_RESPONSE_HEADER_LEN,
};
use swarmd_proto::{InfoHash, PeerId, COMPACT_V4_LEN, COMPACT_V6_LEN};
use swarmd_swarm::access::{Access, AccessPolicy, AccessRequest, Protocol, Transfer};
use swarmd_swarm::clock::{Clock, Secs};
use swarmd_swarm::metrics::Metrics;
use swarmd_swarm::{Announce, Prefetch, Registry, SelectedPeers};

use crate::config::UdpConfig;
use crate::cookie::{canonical, ConnectionIds};
use crate::metrics::{Action, DropReason, Outcome, Tally, UdpMetrics};

/// Bytes of the BEP 15 header every request starts with (connection id, action, transaction).
const HEADER_LEN: usize = CONNECT_REQUEST_LEN;

/// Buffers reused by every request one thread handles.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    peers: SelectedPeers,
    url: Vec<u8>,
    text: String,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The UDP tracker's shared state: one per process, shared by every worker thread.
pub struct UdpTracker {
    config: UdpConfig,
    registry: Arc<Registry>,
    policy: Arc<dyn AccessPolicy>,
    clock: Arc<dyn Clock>,
    pub(crate) metrics: UdpMetrics,
    ids: ConnectionIds,
    v4_budget: usize,
    v6_budget: usize,
    scrape_cap: usize,
}

impl std::fmt::Debug for UdpTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpTracker")
            .field("config", &self.config)
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

impl UdpTracker {
    /// Creates the tracker over a shared registry, access policy and clock, resolving its metric
    /// handles in `metrics`. Out-of-range settings are clamped (see [`UdpConfig::validate`]);
    /// without a configured secret a random one is drawn.
    pub fn new(
        config: UdpConfig,
        registry: Arc<Registry>,
        policy: Arc<dyn AccessPolicy>,
        clock: Arc<dyn Clock>,
        metrics: &Metrics,
    ) -> Self {
        let secret = config.secret.unwrap_or_else(rand::random);
        let ids = ConnectionIds::new(&secret, config.connection_id_lifetime);
        Self {
            v4_budget: config.peer_budget(COMPACT_V4_LEN),
            v6_budget: config.peer_budget(COMPACT_V6_LEN),
            scrape_cap: config.scrape_cap(),
            ids,
            config,
            registry,
            policy,
            clock,
            metrics: UdpMetrics::new(metrics),
        }
    }

    /// The tracker's settings as given (before clamping).
    pub fn config(&self) -> &UdpConfig {
        &self.config
    }

    /// The tracker's clock.
    pub(crate) fn now(&self) -> Secs {
        self.clock.now()
    }

    /// Handles one datagram from `src`: writes the reply, if any, into `out` (cleared first) and
    /// returns whether to send it. Counts the request in the metrics at once (workers use a
    /// batched path); bytes are counted as received here, and as sent only by the servers.
    pub fn handle(&self, packet: &[u8], src: SocketAddr, out: &mut Vec<u8>) -> bool {
        let mut tally = Tally::default();
        let reply = SCRATCH.with_borrow_mut(|s| {
            self.handle_with(packet, src, self.clock.now(), out, s, &mut tally)
        });
        tally.flush(&self.metrics);
        reply
    }

    /// Starts loading (see [`Registry::prefetch`] and [`AccessPolicy::prefetch`]) the swarm and
    /// the policy's state that an announce or scrape datagram names: its info hash (and an
    /// announce's peer id), or a scrape's first one. Reads only those bytes, checks nothing (an unauthenticated
    /// packet costs one wasted hint at most), and does nothing for other datagrams.
    #[inline]
    pub(crate) fn prefetch(&self, packet: &[u8], step: Prefetch) {
        const ANNOUNCE: u32 = 1;
        const SCRAPE: u32 = 2;
        let (Some(action), Some(hash)) = (packet.get(8..12), packet.get(16..36)) else {
            return;
        };
        let action = u32::from_be_bytes(action.try_into().unwrap_or_default());
        if action == ANNOUNCE || action == SCRAPE {
            let mut info_hash = InfoHash([0; 20]);
            info_hash.0.copy_from_slice(hash);
            self.registry.prefetch(&info_hash, step);
            let peer_id = match packet.get(36..56) {
                Some(id) if action == ANNOUNCE => PeerId::from_slice(id),
                _ => None,
            };
            self.policy.prefetch(&info_hash, peer_id.as_ref(), step);
        }
    }

    /// [`UdpTracker::handle`] with the caller's clock reading, scratch buffers and counters.
    pub(crate) fn handle_with(
        &self,
        packet: &[u8],
        src: SocketAddr,
        now: Secs,
        out: &mut Vec<u8>,
        s: &mut Scratch,
        tally: &mut Tally,
    ) -> bool {
        out.clear();
        tally.received(packet.len());
        let started = tally.sample().then(Instant::now);
        if packet.len() < HEADER_LEN {
            tally.drop(DropReason::TooShort);
            return false;
        }
        let ip = canonical(src.ip());
        let (action, outcome) = match parse_request(packet) {
            Ok(Request::Connect { transaction_id }) => {
                let id = self.ids.issue(ip, now);
                write_connect_response(out, transaction_id, id);
                (Action::Connect, Outcome::Ok)
            }
            Ok(Request::Announce(req)) => {
                if !self.ids.verify(req.connection_id, ip, now) {
                    return bad_id(tally, Action::Announce);
                }
                (Action::Announce, self.announce(&req, ip, now, out, s))
            }
            Ok(Request::Scrape(req)) => {
                if !self.ids.verify(req.connection_id, ip, now) {
                    return bad_id(tally, Action::Scrape);
                }
                (Action::Scrape, self.scrape(&req, ip, out))
            }
            Err(e) => match self.rejection(&e, ip, now) {
                Ok((action, transaction_id)) => {
                    s.text.clear();
                    let _ = write!(s.text, "{}", e.kind);
                    self.fail(out, transaction_id, &s.text);
                    (action, Outcome::BadRequest)
                }
                Err(Some(action)) => return bad_id(tally, action),
                Err(None) => {
                    tally.drop(DropReason::Malformed);
                    return false;
                }
            },
        };
        tally.request(action, outcome);
        if let Some(t0) = started {
            self.metrics.observe(action, t0.elapsed().as_secs_f64());
        }
        true
    }

    /// For a request that did not parse: `Ok` (its action and transaction id) if it carries a
    /// valid connection id, so it may be told what was wrong; otherwise silence, `Err` with the
    /// action if it was an announce or scrape (a bad id) or `None` (garbage).
    fn rejection(
        &self,
        e: &RequestError,
        ip: IpAddr,
        now: Secs,
    ) -> Result<(Action, u32), Option<Action>> {
        let Some(h) = &e.header else {
            return Err(None);
        };
        let action = Action::from_code(h.action);
        if action == Action::Connect {
            // A connect carries the protocol id, not a cookie: never an error reply.
            return Err(None);
        }
        if self.ids.verify(h.connection_id, ip, now) {
            Ok((action, h.transaction_id))
        } else if matches!(action, Action::Announce | Action::Scrape) {
            Err(Some(action))
        } else {
            Err(None)
        }
    }

    fn announce(
        &self,
        req: &AnnounceRequest<'_>,
        src_ip: IpAddr,
        now: Secs,
        out: &mut Vec<u8>,
        s: &mut Scratch,
    ) -> Outcome {
        let tid = req.transaction_id;
        let Scratch { peers, url, text } = s;
        let passkey = passkey(&req.url_data, url);
        let mut ip = src_ip;
        if self.config.allow_ip_param && ip.is_ipv4() {
            if let Some(claimed) = req.ip {
                ip = IpAddr::V4(claimed);
            }
        }
        let access = self.policy.announce(&AccessRequest {
            protocol: Protocol::Udp,
            info_hash: &req.info_hash,
            passkey,
            peer_id: Some(&req.peer_id),
            client: ip,
            transfer: Some(Transfer {
                uploaded: req.uploaded,
                downloaded: req.downloaded,
                left: req.left,
                event: req.event,
                port: req.port,
            }),
            now: Some(now),
        });
        if let Access::Deny(reason) = access {
            self.fail(out, tid, &reason);
            return Outcome::Denied;
        }
        let budget = if ip.is_ipv4() {
            self.v4_budget
        } else {
            self.v6_budget
        };
        let wanted = match u32::try_from(req.num_want) {
            Ok(n) if n > 0 => n.min(self.config.max_numwant),
            _ => self.config.default_numwant,
        };
        let announce = Announce {
            info_hash: req.info_hash,
            peer_id: req.peer_id,
            addr: SocketAddr::new(ip, req.port),
            event: req.event,
            left: req.left,
            numwant: (wanted as usize).min(budget),
        };
        match self.registry.announce(&announce, now, peers) {
            Ok(o) => {
                write_announce_response(
                    out,
                    tid,
                    self.config.announce_interval,
                    o.stats.incomplete,
                    o.stats.complete,
                    &peers.compact,
                );
                Outcome::Ok
            }
            Err(e) => {
                text.clear();
                let _ = write!(text, "{e}");
                self.fail(out, tid, text);
                Outcome::Limit
            }
        }
    }

    fn scrape(&self, req: &ScrapeRequest<'_>, ip: IpAddr, out: &mut Vec<u8>) -> Outcome {
        write_scrape_response_header(out, req.transaction_id);
        for info_hash in req.info_hashes().take(self.scrape_cap) {
            // Scrapes carry no URL data, so no passkey. Denied hashes look unknown: zeros.
            let allowed = self
                .policy
                .scrape(&AccessRequest {
                    protocol: Protocol::Udp,
                    info_hash: &info_hash,
                    passkey: None,
                    peer_id: None,
                    client: ip,
                    transfer: None,
                    now: None,
                })
                .is_allowed();
            let st = if allowed {
                self.registry.scrape(&info_hash).unwrap_or_default()
            } else {
                Default::default()
            };
            write_scrape_response_entry(out, st.complete, st.downloaded, st.incomplete);
        }
        Outcome::Ok
    }

    /// Replaces `out` with an error reply, its message cut (at a character boundary) to keep
    /// the reply within the budget.
    fn fail(&self, out: &mut Vec<u8>, transaction_id: u32, message: &str) {
        let room = self
            .config
            .max_reply_bytes
            .max(HEADER_LEN * 4)
            .saturating_sub(ERROR_RESPONSE_HEADER_LEN);
        let mut end = message.len().min(room);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        out.clear();
        write_error_response(out, transaction_id, &message[..end]);
    }
}

fn bad_id(tally: &mut Tally, action: Action) -> bool {
    tally.drop(DropReason::BadConnectionId);
    tally.request(action, Outcome::BadConnectionId);
    false
}

/// The passkey in BEP 41 URL data (`/KEY/announce` or `/announce/KEY`, query ignored), like an
/// HTTP tracker path. URL data that is absent, or does not route (`/announce.php`, `/KEY`), gives
/// no passkey: the access policy then decides, as for a client that sent none.
fn passkey<'b>(url_data: &UrlData<'b>, buf: &'b mut Vec<u8>) -> Option<&'b [u8]> {
    if url_data.is_empty() {
        return None;
    }
    let url = match url_data.as_contiguous() {
        Some(url) => url,
        None => {
            buf.clear();
            url_data.write_to(buf);
            buf
        }
    };
    let (path, _query) = split_query(url);
    route(path).and_then(|(_, key)| key)
}
