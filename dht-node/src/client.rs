//! Our own queries: sending them, matching answers and timeouts, admitting nodes that answered,
//! driving lookups, bootstrap with back-off, table maintenance, and BEP 42 id changes.

use std::hash::Hasher;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use siphasher::sip::SipHasher13;
use swarmd_proto::krpc::{write_query, Message, Method, Response, Want};
use swarmd_proto::{InfoHash, NodeId};

use crate::lookup::{Lookup, LookupId, LookupKind};
use crate::metrics::{Drop, Sent, SentResult};
use crate::node::{DhtNode, Transmit, MAX_OUTBOX};
use crate::routing::K;
use crate::tx::{Pending, Purpose};
use crate::verified::Status;
use crate::{NodeInfo, VERSION};

/// Lookups in progress at most; more finish at once, empty.
pub(crate) const MAX_LOOKUPS: usize = 256;
/// A candidate is not pinged again within this long.
const RECENT_PING: u32 = 300;
/// Nodes from one reply considered as verification candidates (bootstrap mode).
const CANDIDATES_PER_REPLY: usize = 8;

/// Who started a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// [`DhtNode::start_lookup`]: its result is reported.
    User,
    /// The self-bootstrap.
    Bootstrap,
    /// Bucket refresh and id changes.
    Maintenance,
    /// Bootstrap mode's search for new nodes.
    Discovery,
}

/// Whether a node address named by the node at `from` is worth a query: a real port and a
/// unicast address, loopback only if `from` is on loopback too (a remote node pointing us at
/// our own machine's services is ignored).
pub(crate) fn plausible(addr: SocketAddr, from: SocketAddr) -> bool {
    let ip = addr.ip();
    let bad = match ip {
        IpAddr::V4(v4) => v4.is_broadcast() || v4.is_multicast() || v4.is_unspecified(),
        IpAddr::V6(v6) => v6.is_multicast() || v6.is_unspecified() || v6.to_ipv4_mapped().is_some(),
    };
    addr.port() != 0 && !bad && (!ip.is_loopback() || from.ip().is_loopback())
}

/// A token bucket of pings per second.
#[derive(Debug)]
pub(crate) struct Budget {
    tokens: f64,
    rate: f64,
    last: Instant,
}

impl Budget {
    pub(crate) fn new(per_sec: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(per_sec),
            rate: f64::from(per_sec),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.rate.max(1.0));
    }

    /// Whole pings available now.
    pub(crate) fn available(&mut self, now: Instant) -> usize {
        self.refill(now);
        self.tokens as usize
    }

    /// Takes one ping; false if none is available.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A lossy set of recently pinged addresses (direct mapped, 4096 slots, 32 KiB).
#[derive(Debug)]
pub(crate) struct RecentPings {
    slots: Box<[u64]>,
    keys: (u64, u64),
    epoch: Instant,
}

impl RecentPings {
    pub(crate) fn new(epoch: Instant) -> Self {
        Self {
            slots: vec![0; 4096].into_boxed_slice(),
            keys: rand::random(),
            epoch,
        }
    }

    /// True (and marks it) if `addr` was not marked within [`RECENT_PING`] seconds.
    fn mark(&mut self, addr: SocketAddr, now: Instant) -> bool {
        let mut h = SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        match addr.ip() {
            IpAddr::V4(v4) => h.write(&v4.octets()),
            IpAddr::V6(v6) => h.write(&v6.octets()),
        }
        h.write_u16(addr.port());
        let hash = h.finish();
        let slot = &mut self.slots[(hash as usize) & 4095];
        let tag = (hash >> 32) | 1;
        let secs = now.saturating_duration_since(self.epoch).as_secs() as u32;
        let (old_tag, old_secs) = (*slot >> 32, *slot as u32);
        if old_tag == tag && secs.wrapping_sub(old_secs) < RECENT_PING {
            return false;
        }
        *slot = (tag << 32) | u64::from(secs);
        true
    }
}

impl DhtNode {
    /// Sends a query; false (counted as unsent) if the family has no socket or the transaction
    /// table or outbox is full.
    pub(crate) fn send_query(
        &mut self,
        addr: SocketAddr,
        id: Option<NodeId>,
        method: &Method<'_>,
        purpose: Purpose,
        kind: Sent,
        now: Instant,
    ) -> bool {
        let family = if addr.is_ipv4() {
            self.families.0
        } else {
            self.families.1
        };
        let tid = if family && self.outbox.len() < MAX_OUTBOX {
            self.tx.insert(addr, id, purpose, kind, now)
        } else {
            None
        };
        let Some(tid) = tid else {
            self.tally.sent(kind, SentResult::Unsent);
            return false;
        };
        let mut payload = Vec::with_capacity(160);
        let ro = self.config.read_only;
        write_query(
            &mut payload,
            &tid,
            self.id,
            method,
            Want::default(),
            ro,
            Some(VERSION),
        );
        self.tally.transmitted(payload.len());
        self.outbox.push_back(Transmit { dst: addr, payload });
        true
    }

    /// A querier (not read-only) we may not know: refresh it, or ping it if a table would take
    /// it. `verified` is what the verified table holds for it (bootstrap mode).
    pub(crate) fn heard_from(&mut self, node: NodeInfo, verified: Option<Status>, now: Instant) {
        let ipv6 = node.addr.is_ipv6();
        let acceptable = self.id_acceptable(&node);
        let table = if ipv6 {
            &mut self.table6
        } else {
            &mut self.table4
        };
        if table.heard_query(&node.id, node.addr, now) || !acceptable {
            return;
        }
        let routing = table.wants(&node.id);
        if routing || verified == Some(Status::Absent) {
            self.ping_candidate(node, now);
        }
    }

    /// Pings a node we heard of so it can enter our tables if it answers; within the
    /// per-second budget, at most once per address in [`RECENT_PING`], leaving a quarter of
    /// the transaction table to lookups.
    pub(crate) fn ping_candidate(&mut self, node: NodeInfo, now: Instant) {
        let reserve = self.config.max_outstanding_queries / 4;
        if !self.tx.has_room(reserve.max(1))
            || self.pings.available(now) == 0
            || !self.recent.mark(node.addr, now)
            || !self.pings.take(now)
        {
            return;
        }
        self.send_query(
            node.addr,
            Some(node.id),
            &Method::Ping,
            Purpose::Verify,
            Sent::Ping,
            now,
        );
    }

    /// `node` answered a query of ours: it enters (or refreshes) our tables.
    fn node_answered(&mut self, node: NodeInfo, now: Instant) {
        if node.id == self.id || !self.id_acceptable(&node) {
            return;
        }
        let table = if node.addr.is_ipv6() {
            &mut self.table6
        } else {
            &mut self.table4
        };
        table.insert_verified(node, now);
        if let Some(v) = &mut self.verified {
            v.admit(node, now);
        }
    }

    /// An answer to one of our queries.
    pub(crate) fn on_response(
        &mut self,
        msg: &Message<'_>,
        r: &Response<'_>,
        src: SocketAddr,
        now: Instant,
    ) {
        let Some(p) = self.tx.take(msg.transaction_id, src) else {
            self.tally.drop(Drop::Unsolicited);
            return;
        };
        if r.id == self.id {
            self.tally.drop(Drop::OwnId);
            self.query_failed(p, now);
            return;
        }
        self.tally.sent(p.method, SentResult::Answered);
        let node = NodeInfo {
            id: r.id,
            addr: src,
        };
        if let Some(ip) = msg.ip {
            self.vote(src.ip(), ip.ip().to_canonical(), now);
        }
        if !msg.read_only {
            self.node_answered(node, now);
        }
        let own = self.id;
        let nodes = r
            .nodes
            .iter()
            .map(|(id, a)| NodeInfo {
                id,
                addr: SocketAddr::V4(a),
            })
            .chain(r.nodes6.iter().map(|(id, a)| NodeInfo {
                id,
                addr: SocketAddr::V6(a),
            }))
            .filter(move |n| n.id != own && plausible(n.addr, src));
        match p.purpose {
            Purpose::Lookup(lid) => {
                if let Some((l, _)) = self.lookups.get_mut(&lid) {
                    l.on_answer(node, r.token, nodes.clone(), r.values.iter());
                }
                self.advance(lid, now);
            }
            Purpose::Announce(lid) => {
                if let Some((l, _)) = self.lookups.get_mut(&lid) {
                    l.on_announced(true);
                }
                self.advance(lid, now);
            }
            Purpose::Ping | Purpose::Verify => {}
        }
        if self.verified.is_some() {
            for n in nodes.take(CANDIDATES_PER_REPLY) {
                let new = self
                    .verified
                    .as_ref()
                    .is_some_and(|v| !v.knows(&n.id, n.addr));
                if new && n.addr.port() != 0 && self.id_acceptable(&n) {
                    self.ping_candidate(n, now);
                }
            }
        }
    }

    /// A KRPC error in answer to one of our queries.
    pub(crate) fn on_error(&mut self, tid: &[u8], src: SocketAddr, now: Instant) {
        let Some(p) = self.tx.take(tid, src) else {
            self.tally.drop(Drop::Unsolicited);
            return;
        };
        self.tally.sent(p.method, SentResult::Error);
        match p.purpose {
            Purpose::Lookup(lid) => {
                if let Some((l, _)) = self.lookups.get_mut(&lid) {
                    l.on_failure(src);
                }
                self.advance(lid, now);
            }
            Purpose::Announce(lid) => {
                if let Some((l, _)) = self.lookups.get_mut(&lid) {
                    l.on_announced(false);
                }
                self.advance(lid, now);
            }
            Purpose::Ping | Purpose::Verify => {}
        }
    }

    /// A query that got no (acceptable) answer: the node fails in our tables.
    fn query_failed(&mut self, p: Pending, now: Instant) {
        if let Some(id) = p.id {
            let table = if p.addr.is_ipv6() {
                &mut self.table6
            } else {
                &mut self.table4
            };
            table.failed(&id, p.addr, now);
            if let Some(v) = &mut self.verified {
                v.failed(NodeInfo { id, addr: p.addr });
            }
        }
        match p.purpose {
            Purpose::Lookup(lid) => {
                if let Some((l, _)) = self.lookups.get_mut(&lid) {
                    l.on_failure(p.addr);
                }
                self.advance(lid, now);
            }
            Purpose::Announce(lid) => {
                if let Some((l, _)) = self.lookups.get_mut(&lid) {
                    l.on_announced(false);
                }
                self.advance(lid, now);
            }
            Purpose::Ping | Purpose::Verify => {}
        }
    }

    /// Fails every query past its deadline.
    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some(p) = self.tx.expired(now) {
            self.tally.sent(p.method, SentResult::Timeout);
            self.query_failed(p, now);
        }
    }

    /// Starts a lookup on behalf of `owner`, seeded with the closest nodes we know (and, while
    /// the routing table is empty, the saved and bootstrap nodes).
    pub(crate) fn start_owned(
        &mut self,
        kind: LookupKind,
        target: NodeId,
        ipv6: bool,
        owner: Owner,
        now: Instant,
    ) -> LookupId {
        let id = LookupId(self.next_lookup);
        self.next_lookup += 1;
        let mut known = Vec::new();
        let mut addrs = Vec::new();
        if self.lookups.len() < MAX_LOOKUPS {
            let table = if ipv6 { &self.table6 } else { &self.table4 };
            table.closest(&target, K, &mut known);
            if known.len() < K {
                let mut more = Vec::new();
                self.closest_into(&target, K, ipv6, &mut more);
                known.extend(more);
            }
            if known.is_empty() {
                known.extend(self.boot.saved.iter().copied());
                addrs.extend(self.boot.addrs.iter().copied());
            }
        }
        let lookup = Lookup::new(target, kind, ipv6, &known, &addrs, now);
        self.lookups.insert(id, (lookup, owner));
        self.advance(id, now);
        id
    }

    /// Advances every lookup (time bounds).
    pub(crate) fn advance_all(&mut self, now: Instant) {
        let ids: Vec<LookupId> = self.lookups.keys().copied().collect();
        for id in ids {
            self.advance(id, now);
        }
    }

    /// Sends what a lookup may send now, and finishes it when it is done.
    pub(crate) fn advance(&mut self, lid: LookupId, now: Instant) {
        let Some((l, _)) = self.lookups.get_mut(&lid) else {
            return;
        };
        if l.is_announcing() {
            if l.announce_done(now) {
                self.finish(lid, now);
            }
            return;
        }
        let (kind, target) = (l.kind, l.target);
        let method = match kind {
            LookupKind::FindNode => Method::FindNode { target },
            _ => Method::GetPeers {
                info_hash: InfoHash(target.0),
                noseed: false,
                scrape: false,
            },
        };
        let sent = if kind == LookupKind::FindNode {
            Sent::FindNode
        } else {
            Sent::GetPeers
        };
        while let Some((addr, id)) = self
            .lookups
            .get_mut(&lid)
            .and_then(|(l, _)| l.next_query(now))
        {
            if !self.send_query(addr, id, &method, Purpose::Lookup(lid), sent, now) {
                if let Some((l, _)) = self.lookups.get_mut(&lid) {
                    l.on_failure(addr);
                }
            }
        }
        let Some((l, _)) = self.lookups.get_mut(&lid) else {
            return;
        };
        if !l.search_done(now) {
            return;
        }
        let LookupKind::Announce {
            port,
            implied_port,
            seed,
        } = kind
        else {
            self.finish(lid, now);
            return;
        };
        for (node, token) in l.begin_announce() {
            let method = Method::AnnouncePeer {
                info_hash: InfoHash(target.0),
                port,
                implied_port,
                token: &token,
                seed,
            };
            let purpose = Purpose::Announce(lid);
            if !self.send_query(
                node.addr,
                Some(node.id),
                &method,
                purpose,
                Sent::AnnouncePeer,
                now,
            ) {
                if let Some((l, _)) = self.lookups.get_mut(&lid) {
                    l.announce_not_sent();
                }
            }
        }
        if self
            .lookups
            .get(&lid)
            .is_some_and(|(l, _)| l.announce_done(now))
        {
            self.finish(lid, now);
        }
    }

    /// Removes a finished lookup and reports it to its owner.
    fn finish(&mut self, lid: LookupId, now: Instant) {
        let Some((l, owner)) = self.lookups.remove(&lid) else {
            return;
        };
        match owner {
            Owner::User => self.events.push_back(crate::DhtEvent::LookupDone {
                id: lid,
                result: l.result(),
            }),
            Owner::Bootstrap => self.bootstrap_finished(lid, l.ipv6, now),
            Owner::Maintenance | Owner::Discovery => {}
        }
    }
}
