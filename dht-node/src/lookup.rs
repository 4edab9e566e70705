//! The iterative lookup engine (Kademlia): keep the closest nodes heard of, query the closest
//! not yet asked, [`ALPHA`] at a time, until the [`K`] closest live ones have all answered.
//! `get_peers` lookups collect `values` and tokens on the way; announce lookups then send
//! `announce_peer` to the `K` closest nodes that gave a token.
//!
//! Lookups are bounded: at most [`MAX_CANDIDATES`] nodes remembered, [`MAX_QUERIES`] queries
//! sent and [`MAX_PEERS`] peers collected, and [`MAX_DURATION`] of wall time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use swarmd_proto::NodeId;

use crate::routing::K;
use crate::NodeInfo;

/// Queries in flight per lookup.
pub const ALPHA: usize = 3;
/// Nodes a lookup remembers (the closest ones).
pub(crate) const MAX_CANDIDATES: usize = 64;
/// Queries one lookup may send.
pub(crate) const MAX_QUERIES: usize = 200;
/// Peers one lookup collects.
pub(crate) const MAX_PEERS: usize = 1000;
/// A lookup ends after this long whatever its state.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(60);

/// Identifies a lookup started with [`crate::DhtNode::start_lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupId(pub(crate) u64);

/// What a lookup does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKind {
    /// `find_node`: the closest nodes to the target.
    FindNode,
    /// `get_peers`: peers stored under the target, and the closest nodes.
    GetPeers,
    /// `get_peers`, then `announce_peer` to the closest nodes that gave a token.
    Announce {
        /// The port to announce.
        port: u16,
        /// Ask nodes to use our packets' source port instead (`implied_port`).
        implied_port: bool,
        /// Announce as a seed (BEP 33).
        seed: bool,
    },
}

/// What a finished lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupResult {
    /// The target looked up.
    pub target: NodeId,
    /// The closest nodes that answered, closest first (at most `K`).
    pub closest: Vec<NodeInfo>,
    /// Peers collected from `values` (get_peers and announce lookups).
    pub peers: Vec<SocketAddr>,
    /// Nodes that acknowledged our `announce_peer`.
    pub announced: usize,
    /// Queries sent.
    pub queries: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Fresh,
    InFlight,
    Answered { token: Option<Vec<u8>> },
    Failed,
}

#[derive(Debug, Clone)]
struct Candidate {
    node: NodeInfo,
    state: State,
}

/// One lookup in progress.
#[derive(Debug)]
pub(crate) struct Lookup {
    pub(crate) target: NodeId,
    pub(crate) kind: LookupKind,
    pub(crate) ipv6: bool,
    cands: Vec<Candidate>,
    /// Addresses to ask whose ids we do not know (bootstrap nodes), and whether asked.
    seeds: Vec<(SocketAddr, bool)>,
    in_flight: usize,
    peers: Vec<SocketAddr>,
    queries: usize,
    /// Announces sent and not yet answered or failed; `Some` once the announce phase began.
    announcing: Option<usize>,
    announced: usize,
    started: Instant,
}

impl Lookup {
    /// A lookup of `target` over one address family, seeded with known nodes and with
    /// addresses of unknown id.
    pub(crate) fn new(
        target: NodeId,
        kind: LookupKind,
        ipv6: bool,
        known: &[NodeInfo],
        addrs: &[SocketAddr],
        now: Instant,
    ) -> Self {
        let mut l = Self {
            target,
            kind,
            ipv6,
            cands: Vec::with_capacity(MAX_CANDIDATES),
            seeds: addrs
                .iter()
                .filter(|a| a.is_ipv6() == ipv6)
                .map(|&a| (a, false))
                .collect(),
            in_flight: 0,
            peers: Vec::new(),
            queries: 0,
            announcing: None,
            announced: 0,
            started: now,
        };
        for n in known {
            l.add(*n);
        }
        l
    }

    /// Remembers a node heard of, if it is among the closest and new.
    pub(crate) fn add(&mut self, node: NodeInfo) {
        if node.addr.is_ipv6() != self.ipv6 || node.addr.port() == 0 {
            return;
        }
        let d = self.target.distance(&node.id);
        let pos = match self
            .cands
            .binary_search_by(|c| self.target.distance(&c.node.id).cmp(&d))
        {
            Ok(_) => return,
            Err(pos) => pos,
        };
        if pos >= MAX_CANDIDATES || self.cands.iter().any(|c| c.node.addr == node.addr) {
            return;
        }
        if self.cands.len() >= MAX_CANDIDATES {
            // Never drop a node we await an answer from.
            match self.cands.iter().rposition(|c| c.state != State::InFlight) {
                Some(i) if i >= pos => {
                    self.cands.remove(i);
                }
                _ => return,
            }
        }
        self.cands.insert(
            pos,
            Candidate {
                node,
                state: State::Fresh,
            },
        );
    }

    /// The next node to ask, if the lookup may send a query now (marks it in flight).
    pub(crate) fn next_query(&mut self, now: Instant) -> Option<(SocketAddr, Option<NodeId>)> {
        if self.announcing.is_some()
            || self.in_flight >= ALPHA
            || self.queries >= MAX_QUERIES
            || now.saturating_duration_since(self.started) >= MAX_DURATION
        {
            return None;
        }
        if let Some(seed) = self.seeds.iter_mut().find(|(_, asked)| !asked) {
            seed.1 = true;
            self.in_flight += 1;
            self.queries += 1;
            return Some((seed.0, None));
        }
        let c = self
            .cands
            .iter_mut()
            .filter(|c| c.state != State::Failed)
            .take(K)
            .find(|c| c.state == State::Fresh)?;
        c.state = State::InFlight;
        self.in_flight += 1;
        self.queries += 1;
        Some((c.node.addr, Some(c.node.id)))
    }

    fn in_flight_at(&mut self, addr: SocketAddr) -> Option<&mut Candidate> {
        self.cands
            .iter_mut()
            .find(|c| c.node.addr == addr && c.state == State::InFlight)
    }

    /// A node answered a lookup query: remember it (with its token), its nodes and its peers.
    pub(crate) fn on_answer(
        &mut self,
        from: NodeInfo,
        token: Option<&[u8]>,
        nodes: impl Iterator<Item = NodeInfo>,
        values: impl Iterator<Item = SocketAddr>,
    ) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let answered = State::Answered {
            token: token.map(<[u8]>::to_vec),
        };
        match self.in_flight_at(from.addr) {
            Some(c) => {
                c.node.id = from.id;
                c.state = answered;
                // Its id may differ from what we were told: keep the list sorted.
                let t = self.target;
                self.cands.sort_by_key(|c| t.distance(&c.node.id));
            }
            None => {
                // A seed of unknown id: add it as answered.
                self.add(from);
                if let Some(c) = self.cands.iter_mut().find(|c| c.node.addr == from.addr) {
                    c.state = answered;
                }
            }
        }
        for n in nodes {
            self.add(n);
        }
        for p in values {
            if self.peers.len() < MAX_PEERS && !self.peers.contains(&p) {
                self.peers.push(p);
            }
        }
    }

    /// A lookup query to `addr` failed (timeout or error).
    pub(crate) fn on_failure(&mut self, addr: SocketAddr) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(c) = self.in_flight_at(addr) {
            c.state = State::Failed;
        }
    }

    /// True when the search is over: nothing in flight, and the `K` closest live nodes all
    /// answered (or nothing is left to ask, or a bound was hit).
    pub(crate) fn search_done(&self, now: Instant) -> bool {
        if now.saturating_duration_since(self.started) >= MAX_DURATION {
            return true;
        }
        if self.in_flight > 0 {
            return false;
        }
        if self.queries >= MAX_QUERIES {
            return true;
        }
        let seeds_left = self.seeds.iter().any(|(_, asked)| !asked);
        let fresh_left = self
            .cands
            .iter()
            .filter(|c| c.state != State::Failed)
            .take(K)
            .any(|c| c.state == State::Fresh);
        !seeds_left && !fresh_left
    }

    /// Starts the announce phase: the `K` closest answered nodes that gave a token.
    pub(crate) fn begin_announce(&mut self) -> Vec<(NodeInfo, Vec<u8>)> {
        let targets: Vec<(NodeInfo, Vec<u8>)> = self
            .cands
            .iter()
            .filter_map(|c| match &c.state {
                State::Answered { token } => Some((c.node, token.clone())),
                _ => None,
            })
            .take(K)
            .filter_map(|(n, t)| t.map(|t| (n, t)))
            .collect();
        self.announcing = Some(targets.len());
        targets
    }

    /// An `announce_peer` of ours was answered (`ok`) or failed.
    pub(crate) fn on_announced(&mut self, ok: bool) {
        if let Some(n) = &mut self.announcing {
            *n = n.saturating_sub(1);
        }
        self.announced += usize::from(ok);
    }

    /// An announce whose query could not be sent.
    pub(crate) fn announce_not_sent(&mut self) {
        self.on_announced(false);
    }

    /// True in the announce phase.
    pub(crate) fn is_announcing(&self) -> bool {
        self.announcing.is_some()
    }

    /// True once every announce is answered or failed (or the time bound passed).
    pub(crate) fn announce_done(&self, now: Instant) -> bool {
        self.announcing == Some(0)
            || now.saturating_duration_since(self.started) >= MAX_DURATION + MAX_DURATION / 4
    }

    /// The result so far.
    pub(crate) fn result(&self) -> LookupResult {
        LookupResult {
            target: self.target,
            closest: self
                .cands
                .iter()
                .filter(|c| matches!(c.state, State::Answered { .. }))
                .take(K)
                .map(|c| c.node)
                .collect(),
            peers: self.peers.clone(),
            announced: self.announced,
            queries: self.queries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(b: u8) -> NodeInfo {
        let mut id = [0u8; 20];
        id[0] = b;
        NodeInfo {
            id: NodeId(id),
            addr: SocketAddr::from(([10, 0, 0, b], 6881)),
        }
    }

    #[test]
    fn converges_on_the_closest_answering_nodes() {
        let t0 = Instant::now();
        let target = NodeId([0; 20]);
        let seeds: Vec<NodeInfo> = (100..110).map(node).collect();
        let mut l = Lookup::new(target, LookupKind::FindNode, false, &seeds, &[], t0);
        // Three in flight at most.
        let q: Vec<_> = std::iter::from_fn(|| l.next_query(t0)).collect();
        assert_eq!(q.len(), ALPHA);
        assert_eq!(q[0].0, node(100).addr);
        // The first answers with closer nodes; the second fails.
        l.on_answer(node(100), None, (1..5).map(node), std::iter::empty());
        l.on_failure(node(101).addr);
        let next = l.next_query(t0).unwrap();
        assert_eq!(next.0, node(1).addr, "closest first");
        // Answer everything until done.
        let mut pending = vec![q[2].0, next.0];
        while let Some(a) = pending.pop() {
            let b = match a {
                std::net::SocketAddr::V4(v4) => v4.ip().octets()[3],
                _ => unreachable!(),
            };
            l.on_answer(node(b), Some(b"tk"), std::iter::empty(), std::iter::empty());
            while let Some((a, _)) = l.next_query(t0) {
                pending.push(a);
            }
        }
        assert!(l.search_done(t0));
        let r = l.result();
        let got: Vec<u8> = r.closest.iter().map(|n| n.id.0[0]).collect();
        assert_eq!(got, vec![1, 2, 3, 4, 100, 102, 103, 104]);
    }

    #[test]
    fn candidate_list_is_bounded_and_deduplicated() {
        let t0 = Instant::now();
        let mut l = Lookup::new(NodeId([0; 20]), LookupKind::GetPeers, false, &[], &[], t0);
        for b in 1..=255 {
            l.add(node(b));
            l.add(node(b));
        }
        assert_eq!(l.cands.len(), MAX_CANDIDATES);
        assert_eq!(l.cands[0].node, node(1));
        // A node of the other family is ignored.
        l.add(NodeInfo {
            id: NodeId([0; 20]),
            addr: "[::1]:5".parse().unwrap(),
        });
        assert_eq!(l.cands[0].node, node(1));
        assert!(l.search_done(t0 + MAX_DURATION));
    }
}
