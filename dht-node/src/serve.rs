//! Answering queries: rate limit, own-id and read-only checks, then `ping`, `find_node`,
//! `get_peers`, `announce_peer`, `sample_infohashes` and unknown methods, each reply trimmed
//! to the amplification budget.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use swarmd_proto::bep42::{is_exempt, is_valid_node_id};
use swarmd_proto::krpc::{
    error_code, write_compact_node, write_error, write_response, Message, Method, Query,
    ResponseFields, Want, COMPACT_NODE_V4_LEN, COMPACT_NODE_V6_LEN,
};
use swarmd_proto::{Event, InfoHash, NodeId, PeerId, COMPACT_V4_LEN, COMPACT_V6_LEN};
use swarmd_swarm::access::{AccessRequest, Protocol};
use swarmd_swarm::Announce;

use crate::metrics::{Action, Drop, Outcome};
use crate::node::{DhtNode, Scratch};
use crate::routing::K;
use crate::verified::Status;
use crate::{NodeInfo, VERSION};

/// Nodes per reply for a source over [`crate::DhtConfig::repeat_requester_threshold`].
pub(crate) const REPEAT_NODES: usize = 4;
/// Values kept while nodes are trimmed to fit the amplification budget.
const TRIM_VALUES_FLOOR: usize = 8;
/// BEP 51 `interval` we announce: our (empty) sample does not change.
const SAMPLE_INTERVAL: i64 = 21_600;

/// The extra fields of a reply carrying nodes.
#[derive(Clone, Copy, Default)]
struct Extra<'a> {
    token: Option<&'a [u8]>,
    values: &'a [u8],
    values_v6: bool,
    sample: bool,
}

/// Lowers `count` towards `floor` by enough `size`-byte entries to shed `excess` bytes; false
/// if it was already at the floor.
fn trim(count: &mut usize, floor: usize, size: usize, excess: usize) -> bool {
    if *count <= floor {
        return false;
    }
    *count = count.saturating_sub(excess.div_ceil(size)).max(floor);
    true
}

fn action_of(method: &Method<'_>) -> Action {
    match method {
        Method::Ping => Action::Ping,
        Method::FindNode { .. } => Action::FindNode,
        Method::GetPeers { .. } => Action::GetPeers,
        Method::AnnouncePeer { .. } => Action::AnnouncePeer,
        Method::SampleInfohashes { .. } => Action::SampleInfohashes,
        Method::Unknown { .. } => Action::Unknown,
    }
}

impl DhtNode {
    /// A query from `src`: writes the reply into `out`; true to send it.
    pub(crate) fn on_query(
        &mut self,
        msg: &Message<'_>,
        q: &Query<'_>,
        query_len: usize,
        src: SocketAddr,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> bool {
        let action = action_of(&q.method);
        if q.id == self.id {
            self.tally.drop(Drop::OwnId);
            return false;
        }
        let verdict = self.limiter.check(src.ip(), now);
        if !verdict.allowed {
            self.tally.request(action, Outcome::RateLimited);
            self.tally.drop(Drop::RateLimited);
            return false;
        }
        // One look at each table for the querier: known sources get the full reply budget.
        let verified = self.verified.as_ref().map(|v| v.status(&q.id, src));
        let table = if src.is_ipv4() {
            &self.table4
        } else {
            &self.table6
        };
        let known = verified == Some(Status::Here) || table.contains(&q.id, src);
        if !msg.read_only {
            let node = NodeInfo {
                id: q.id,
                addr: src,
            };
            self.heard_from(node, verified, now);
        }
        let n = if verdict.recent > self.config.repeat_requester_threshold {
            REPEAT_NODES
        } else {
            K
        };
        let budget = self.reply_budget(query_len, known);
        let tid = msg.transaction_id;
        let mut s = std::mem::take(&mut self.scratch);
        let outcome = match q.method {
            Method::Ping => {
                write_response(
                    out,
                    tid,
                    Some(src),
                    Some(VERSION),
                    &ResponseFields::new(self.id),
                );
                Outcome::Ok
            }
            Method::FindNode { target }
            | Method::Unknown {
                target: Some(target),
                ..
            } => {
                self.answer_nodes(
                    &mut s,
                    out,
                    tid,
                    src,
                    q.want,
                    &target,
                    n,
                    Extra::default(),
                    budget,
                );
                Outcome::Ok
            }
            Method::SampleInfohashes { target } => {
                let extra = Extra {
                    sample: true,
                    ..Extra::default()
                };
                self.answer_nodes(&mut s, out, tid, src, q.want, &target, n, extra, budget);
                Outcome::Ok
            }
            Method::GetPeers { info_hash, .. }
            | Method::Unknown {
                info_hash: Some(info_hash),
                ..
            } => self.answer_get_peers(&mut s, out, tid, src, q.want, &info_hash, n, budget),
            Method::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
                seed,
            } => {
                let port = if implied_port { src.port() } else { port };
                self.answer_announce(&mut s, out, tid, src, &info_hash, port, token, seed)
            }
            Method::Unknown { .. } => {
                write_error(
                    out,
                    tid,
                    Some(src),
                    Some(VERSION),
                    error_code::METHOD_UNKNOWN,
                    "method unknown",
                );
                Outcome::BadRequest
            }
        };
        self.scratch = s;
        self.tally.request(action, outcome);
        self.fits(out, query_len, known)
    }

    /// True if `node`'s id may enter our tables (BEP 42, when enforced; local addresses exempt).
    pub(crate) fn id_acceptable(&self, node: &NodeInfo) -> bool {
        let ip = node.addr.ip();
        !self.config.enforce_node_id || is_exempt(ip) || is_valid_node_id(&node.id, ip)
    }

    /// True if `info_hash` must not be stored or served through the DHT for `client`.
    fn hidden(&self, info_hash: &InfoHash, client: IpAddr) -> bool {
        self.policy.is_private(info_hash)
            || !self
                .policy
                .announce(&AccessRequest {
                    protocol: Protocol::Dht,
                    info_hash,
                    passkey: None,
                    peer_id: None,
                    client,
                    transfer: None,
                    now: None,
                })
                .is_allowed()
    }

    /// Writes into `out` the `n` nodes of one family closest to `target` we hand out: from the
    /// verified table in bootstrap mode, else from the routing table.
    pub(crate) fn closest_into(
        &self,
        target: &NodeId,
        n: usize,
        ipv6: bool,
        out: &mut Vec<NodeInfo>,
    ) {
        out.clear();
        if let Some(v) = &self.verified {
            let (v4, v6) = v.lens();
            if (if ipv6 { v6 } else { v4 }) > 0 {
                v.closest(ipv6, target, n, out);
                return;
            }
        }
        let table = if ipv6 { &self.table6 } else { &self.table4 };
        table.closest(target, n, out);
    }

    /// Writes the reply to a nodes-bearing query, trimming nodes and values until it fits
    /// `budget`.
    #[allow(clippy::too_many_arguments)]
    fn answer_nodes(
        &self,
        s: &mut Scratch,
        out: &mut Vec<u8>,
        tid: &[u8],
        src: SocketAddr,
        want: Want,
        target: &NodeId,
        n: usize,
        extra: Extra<'_>,
        budget: usize,
    ) {
        let (n4, n6) = if want.is_empty() {
            (src.is_ipv4(), src.is_ipv6())
        } else {
            (want.n4, want.n6)
        };
        s.nodes.clear();
        s.nodes6.clear();
        for (wanted, ipv6) in [(n4, false), (n6, true)] {
            if !wanted {
                continue;
            }
            self.closest_into(target, n + 1, ipv6, &mut s.closest);
            let buf = if ipv6 { &mut s.nodes6 } else { &mut s.nodes };
            for node in s.closest.iter().filter(|x| x.addr != src).take(n) {
                write_compact_node(buf, &node.id, node.addr);
            }
        }
        let (entry, item) = if extra.values_v6 {
            (COMPACT_V6_LEN, COMPACT_V6_LEN + 3)
        } else {
            (COMPACT_V4_LEN, COMPACT_V4_LEN + 2)
        };
        let mut values = extra.values.len() / entry;
        let mut k4 = s.nodes.len() / COMPACT_NODE_V4_LEN;
        let mut k6 = s.nodes6.len() / COMPACT_NODE_V6_LEN;
        loop {
            out.clear();
            let fields = ResponseFields {
                nodes: &s.nodes[..k4 * COMPACT_NODE_V4_LEN],
                nodes6: &s.nodes6[..k6 * COMPACT_NODE_V6_LEN],
                values: &extra.values[..values * entry],
                values_v6: extra.values_v6,
                token: extra.token,
                samples: extra.sample.then_some(&[][..]),
                interval: extra.sample.then_some(SAMPLE_INTERVAL),
                num: extra.sample.then_some(0),
                ..ResponseFields::new(self.id)
            };
            write_response(out, tid, Some(src), Some(VERSION), &fields);
            let Some(excess) = out.len().checked_sub(budget).filter(|&e| e > 0) else {
                return;
            };
            // Trim in phases, each down to a floor: the other family's nodes, values beyond
            // 8, the requester's family's nodes beyond 4, the remaining values, the rest.
            let (own, own_size, other, other_size) = if src.is_ipv4() {
                (&mut k4, COMPACT_NODE_V4_LEN, &mut k6, COMPACT_NODE_V6_LEN)
            } else {
                (&mut k6, COMPACT_NODE_V6_LEN, &mut k4, COMPACT_NODE_V4_LEN)
            };
            if !trim(other, 0, other_size, excess)
                && !trim(&mut values, TRIM_VALUES_FLOOR, item, excess)
                && !trim(own, REPEAT_NODES, own_size, excess)
                && !trim(&mut values, 0, item, excess)
                && !trim(own, 0, own_size, excess)
            {
                return;
            }
        }
    }

    /// `get_peers` (and unknown methods carrying `info_hash`): peers of the requester's family
    /// unless the hash is hidden, the closest nodes, and a token.
    #[allow(clippy::too_many_arguments)]
    fn answer_get_peers(
        &mut self,
        s: &mut Scratch,
        out: &mut Vec<u8>,
        tid: &[u8],
        src: SocketAddr,
        want: Want,
        info_hash: &InfoHash,
        n: usize,
        budget: usize,
    ) -> Outcome {
        let hidden = self.hidden(info_hash, src.ip());
        let token = self.tokens.issue(src.ip(), info_hash);
        let ipv6 = src.is_ipv6();
        s.peers.compact.clear();
        if !hidden {
            let max = self.config.max_values.clamp(1, 500);
            let _ = self.registry.sample(info_hash, ipv6, max, &mut s.peers);
        }
        let peers = std::mem::take(&mut s.peers.compact);
        let extra = Extra {
            token: Some(&token),
            values: &peers,
            values_v6: ipv6,
            sample: false,
        };
        let target = NodeId::from(*info_hash);
        self.answer_nodes(s, out, tid, src, want, &target, n, extra, budget);
        s.peers.compact = peers;
        Outcome::Ok
    }

    /// `announce_peer`: token checked, then stored unless the hash is hidden (answered alike).
    #[allow(clippy::too_many_arguments)]
    fn answer_announce(
        &mut self,
        s: &mut Scratch,
        out: &mut Vec<u8>,
        tid: &[u8],
        src: SocketAddr,
        info_hash: &InfoHash,
        port: u16,
        token: &[u8],
        seed: bool,
    ) -> Outcome {
        let fail = |out: &mut Vec<u8>, code, msg: &str| {
            write_error(out, tid, Some(src), Some(VERSION), code, msg);
        };
        if !self.tokens.verify(token, src.ip(), info_hash) {
            fail(out, error_code::PROTOCOL, "invalid token");
            return Outcome::BadRequest;
        }
        if port == 0 {
            fail(out, error_code::PROTOCOL, "invalid port");
            return Outcome::BadRequest;
        }
        let ok = |out: &mut Vec<u8>, id| {
            write_response(out, tid, Some(src), Some(VERSION), &ResponseFields::new(id));
        };
        if self.hidden(info_hash, src.ip()) {
            ok(out, self.id);
            return Outcome::Denied;
        }
        let announce = Announce {
            info_hash: *info_hash,
            peer_id: PeerId([0; 20]),
            addr: SocketAddr::new(src.ip(), port),
            event: Event::None,
            left: u64::from(!seed),
            numwant: 0,
        };
        match self
            .registry
            .announce(&announce, self.clock.now(), &mut s.peers)
        {
            Ok(_) => {
                ok(out, self.id);
                Outcome::Ok
            }
            Err(e) => {
                s.text.clear();
                s.text.push_str(&e.to_string());
                fail(out, error_code::SERVER, &s.text);
                Outcome::Limit
            }
        }
    }
}
