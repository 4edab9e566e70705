//! The sans-IO node core: its state, the datagram entry point, timers, and the API the driver
//! (or a test) uses. Answering queries lives in `serve`, our own queries in `client`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarmd_proto::krpc::{error_code, parse_message, write_error, Body};
use swarmd_proto::NodeId;
use swarmd_swarm::access::AccessPolicy;
use swarmd_swarm::clock::Clock;
use swarmd_swarm::{Registry, SelectedPeers};

use crate::client::{Budget, Owner, RecentPings};
use crate::config::DhtConfig;
use crate::lookup::{Lookup, LookupId, LookupKind, LookupResult};
use crate::maintain::Boot;
use crate::metrics::{Action, DhtMetrics, Drop, Outcome, Tally};
use crate::persist::Snapshot;
use crate::ratelimit::RateLimiter;
use crate::routing::RoutingTable;
use crate::token::Tokens;
use crate::tx::Transactions;
use crate::verified::VerifiedTable;
use crate::vote::Votes;
use crate::{canonical, DhtDeps, NodeInfo, VERSION};

/// Largest datagram looked at; bigger ones are dropped unread.
pub(crate) const MAX_PACKET: usize = 4096;
/// Datagrams waiting in the outbox at most; more are dropped (and counted unsent).
pub(crate) const MAX_OUTBOX: usize = 4096;
/// Maintenance (pings, refresh, verification) runs at most this often.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(1);

/// A datagram the node wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub dst: SocketAddr,
    /// The bencoded KRPC message.
    pub payload: Vec<u8>,
}

/// Something the node reports to its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhtEvent {
    /// A lookup started with [`DhtNode::start_lookup`] finished.
    LookupDone {
        /// Which lookup.
        id: LookupId,
        /// What it found.
        result: LookupResult,
    },
}

/// Sizes of the node's tables and queues, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStats {
    /// Nodes in the IPv4 routing table.
    pub routing_v4: usize,
    /// Nodes in the IPv6 routing table.
    pub routing_v6: usize,
    /// Verified IPv4 nodes (bootstrap mode).
    pub verified_v4: usize,
    /// Verified IPv6 nodes (bootstrap mode).
    pub verified_v6: usize,
    /// Lookups in progress.
    pub lookups: usize,
    /// Our queries awaiting an answer.
    pub outstanding: usize,
}

/// Buffers reused by every reply.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub(crate) peers: SelectedPeers,
    pub(crate) closest: Vec<NodeInfo>,
    pub(crate) nodes: Vec<u8>,
    pub(crate) nodes6: Vec<u8>,
    pub(crate) text: String,
}

/// The DHT node core. Single-threaded: the driver owns it (see [`crate::DhtServer`]).
pub struct DhtNode {
    pub(crate) config: DhtConfig,
    pub(crate) registry: Arc<Registry>,
    pub(crate) policy: Arc<dyn AccessPolicy>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: DhtMetrics,
    pub(crate) tally: Tally,
    pub(crate) id: NodeId,
    /// Which socket families the driver has.
    pub(crate) families: (bool, bool),
    pub(crate) table4: RoutingTable,
    pub(crate) table6: RoutingTable,
    pub(crate) verified: Option<VerifiedTable>,
    pub(crate) tokens: Tokens,
    pub(crate) limiter: RateLimiter,
    pub(crate) tx: Transactions,
    pub(crate) lookups: BTreeMap<LookupId, (Lookup, Owner)>,
    pub(crate) next_lookup: u64,
    pub(crate) outbox: VecDeque<Transmit>,
    pub(crate) events: VecDeque<DhtEvent>,
    pub(crate) votes4: Votes,
    pub(crate) votes6: Votes,
    pub(crate) boot: Boot,
    pub(crate) pings: Budget,
    pub(crate) recent: RecentPings,
    pub(crate) next_maintenance: Instant,
    pub(crate) next_discovery: Instant,
    pub(crate) scratch: Scratch,
}

impl std::fmt::Debug for DhtNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhtNode")
            .field("id", &self.id)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl DhtNode {
    /// A node with no contacts yet, at `now`. Out-of-range settings are clamped (see
    /// [`DhtConfig::validate`]). Both address families are assumed until
    /// [`DhtNode::set_families`] says otherwise.
    pub fn new(config: DhtConfig, deps: DhtDeps, now: Instant) -> Self {
        let id = config.node_id.unwrap_or_else(|| NodeId(rand::random()));
        let verified = config.bootstrap_mode.then(|| {
            VerifiedTable::new(
                config.max_nodes.clamp(8, 100_000_000),
                Duration::from_secs(u64::from(config.reverify_interval_secs.max(60))),
                now,
            )
        });
        let rotation = Duration::from_secs(u64::from(config.token_rotation_secs.clamp(10, 3600)));
        Self {
            table4: RoutingTable::new(id, now),
            table6: RoutingTable::new(id, now),
            verified,
            tokens: Tokens::new(rotation, now),
            limiter: RateLimiter::new(
                config.rate_limit_per_sec,
                config.rate_limit_burst.clamp(1, 1_000_000),
                config.max_tracked_ips,
                now,
            ),
            tx: Transactions::new(
                config.max_outstanding_queries.clamp(16, 1 << 20),
                config.query_timeout(),
            ),
            lookups: BTreeMap::new(),
            next_lookup: 0,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            votes4: Votes::default(),
            votes6: Votes::default(),
            boot: Boot::new(now),
            pings: Budget::new(config.verify_pings_per_sec.max(1), now),
            recent: RecentPings::new(now),
            next_maintenance: now,
            next_discovery: now,
            scratch: Scratch::default(),
            metrics: DhtMetrics::new(&deps.metrics),
            tally: Tally::default(),
            registry: deps.registry,
            policy: deps.policy,
            clock: deps.clock,
            families: (true, true),
            id,
            config,
        }
    }

    /// Our node id now.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The node's settings as given.
    pub fn config(&self) -> &DhtConfig {
        &self.config
    }

    /// Tells the node which address families it can send on (sockets bound).
    pub fn set_families(&mut self, ipv4: bool, ipv6: bool) {
        self.families = (ipv4, ipv6);
    }

    /// Our external address as settled by BEP 42 votes, IPv4 first.
    pub fn external_ip(&self) -> Option<IpAddr> {
        self.votes4.settled().or(self.votes6.settled())
    }

    /// Sizes of the tables and queues.
    pub fn stats(&self) -> NodeStats {
        let (verified_v4, verified_v6) = self.verified.as_ref().map_or((0, 0), |v| v.lens());
        NodeStats {
            routing_v4: self.table4.len(),
            routing_v6: self.table6.len(),
            verified_v4,
            verified_v6,
            lookups: self.lookups.len(),
            outstanding: self.tx.len(),
        }
    }

    /// The `n` nodes closest to `target` we would hand out, of one family.
    pub fn closest_nodes(&self, target: &NodeId, n: usize, ipv6: bool) -> Vec<NodeInfo> {
        let mut out = Vec::new();
        self.closest_into(target, n, ipv6, &mut out);
        out
    }

    /// Handles one datagram from `src` at `now`: writes the reply, if any, into `out` (cleared
    /// first) and returns whether to send it to `src`. Queries of our own that this prompts
    /// (pings, lookup steps) wait in [`DhtNode::poll_transmit`].
    pub fn handle(
        &mut self,
        packet: &[u8],
        src: SocketAddr,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> bool {
        out.clear();
        let src = canonical(src);
        self.tally.received(packet.len());
        if packet.len() > MAX_PACKET {
            self.tally.drop(Drop::TooLong);
            return false;
        }
        if src.port() == 0 {
            self.tally.drop(Drop::Malformed);
            return false;
        }
        let sent = match parse_message(packet) {
            Ok(msg) => match msg.body {
                Body::Query(q) => self.on_query(&msg, &q, packet.len(), src, now, out),
                Body::Response(r) => {
                    self.on_response(&msg, &r, src, now);
                    false
                }
                Body::Error { .. } => {
                    self.on_error(msg.transaction_id, src, now);
                    false
                }
            },
            Err(e) => match e.transaction_id {
                Some(tid) => {
                    if !self.limiter.check(src.ip(), now).allowed {
                        self.tally.request(Action::Other, Outcome::RateLimited);
                        self.tally.drop(Drop::RateLimited);
                        return false;
                    }
                    self.scratch.text.clear();
                    let _ = write!(self.scratch.text, "{e}");
                    write_error(
                        out,
                        tid,
                        Some(src),
                        Some(VERSION),
                        error_code::PROTOCOL,
                        &self.scratch.text,
                    );
                    self.tally.request(Action::Other, Outcome::BadRequest);
                    self.fits(out, packet.len(), false)
                }
                None => {
                    self.tally.drop(Drop::Malformed);
                    false
                }
            },
        };
        if sent {
            self.tally.transmitted(out.len());
        }
        sent
    }

    /// Keeps `out` if it is within the reply budget for a query of `query_len` bytes (see the
    /// crate docs); otherwise clears it and counts the drop.
    pub(crate) fn fits(&mut self, out: &mut Vec<u8>, query_len: usize, known: bool) -> bool {
        if out.len() <= self.reply_budget(query_len, known) {
            true
        } else {
            out.clear();
            self.tally.drop(Drop::OversizedReply);
            false
        }
    }

    /// The most bytes a reply to a `query_len`-byte query may have.
    pub(crate) fn reply_budget(&self, query_len: usize, known: bool) -> usize {
        let cap = self.config.reply_cap();
        if known {
            cap
        } else {
            cap.min(amplification_bound(query_len))
        }
    }

    /// Drives timers at `now`: query timeouts, token rotation, lookups, bootstrap retries,
    /// table maintenance; publishes metrics. Call it about once a second (more often is fine).
    pub fn tick(&mut self, now: Instant) {
        self.tokens.rotate(now);
        self.expire(now);
        self.advance_all(now);
        self.bootstrap_if_due(now);
        if now >= self.next_maintenance {
            self.next_maintenance = now + MAINTENANCE_EVERY;
            self.maintain(now);
        }
        self.publish();
    }

    /// Publishes counts and gauges to the shared metrics.
    pub(crate) fn publish(&mut self) {
        let s = self.stats();
        let g = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        for (gauge, v) in self.metrics.nodes.iter().zip([
            s.routing_v4,
            s.routing_v6,
            s.verified_v4,
            s.verified_v6,
        ]) {
            gauge.set(g(v));
        }
        self.tally.flush(&self.metrics);
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<DhtEvent> {
        self.events.pop_front()
    }

    /// Counts a datagram the driver failed to send.
    pub fn note_send_error(&mut self) {
        self.tally.drop(Drop::SendError);
    }

    /// Starts a lookup of `target` over IPv4 (or IPv6) from the closest nodes we know (and the
    /// bootstrap addresses, if the table is empty); its result comes as
    /// [`DhtEvent::LookupDone`].
    pub fn start_lookup(
        &mut self,
        kind: LookupKind,
        target: NodeId,
        ipv6: bool,
        now: Instant,
    ) -> LookupId {
        self.start_owned(kind, target, ipv6, Owner::User, now)
    }

    /// Adds resolved bootstrap addresses; a bootstrap starts at the next tick if the routing
    /// table is empty.
    pub fn add_bootstrap_nodes(&mut self, addrs: &[SocketAddr], now: Instant) {
        for a in addrs {
            let a = canonical(*a);
            if !self.boot.addrs.contains(&a) && self.boot.addrs.len() < 64 {
                self.boot.addrs.push(a);
            }
        }
        if self.boot.running.is_empty() {
            self.boot.next_try = self.boot.next_try.min(now);
        }
    }

    /// The node table to persist: our id, and the verified table (bootstrap mode) plus the
    /// routing tables.
    pub fn snapshot(&self) -> Snapshot {
        let mut nodes: Vec<NodeInfo> = self
            .table4
            .entries()
            .chain(self.table6.entries())
            .map(|e| e.node)
            .collect();
        if let Some(v) = &self.verified {
            let seen: std::collections::HashSet<NodeId> = nodes.iter().map(|n| n.id).collect();
            nodes.extend(v.nodes().filter(|n| !seen.contains(&n.id)));
        }
        Snapshot {
            own_id: self.id,
            nodes,
        }
    }

    /// Loads a saved node table: adopts its id (unless [`DhtConfig::node_id`] is set), puts
    /// its nodes into the verified table (bootstrap mode; BEP 42 checked when enforced), and
    /// keeps the ones closest to our id to seed the next bootstrap.
    pub fn restore(&mut self, snapshot: Snapshot, now: Instant) {
        if self.config.node_id.is_none() && snapshot.own_id != self.id {
            self.change_id(snapshot.own_id, now);
        }
        let mut seeds: Vec<NodeInfo> = Vec::new();
        for n in snapshot.nodes {
            let n = NodeInfo {
                id: n.id,
                addr: canonical(n.addr),
            };
            if n.id == self.id || n.addr.port() == 0 || !self.id_acceptable(&n) {
                continue;
            }
            if let Some(v) = &mut self.verified {
                v.restore(n, now);
            }
            seeds.push(n);
        }
        let own = self.id;
        let keep = crate::lookup::MAX_CANDIDATES;
        if seeds.len() > keep {
            seeds.select_nth_unstable_by_key(keep, |a| own.distance(&a.id));
            seeds.truncate(keep);
        }
        seeds.sort_by_key(|a| own.distance(&a.id));
        seeds.shrink_to_fit();
        self.boot.saved = seeds;
        self.boot.next_try = now;
    }
}

/// The amplification rule: a reply to a source we do not know is at most 4 times the query
/// plus 64 bytes.
pub(crate) fn amplification_bound(query_len: usize) -> usize {
    query_len.saturating_mul(4).saturating_add(64)
}
