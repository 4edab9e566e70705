//! The Mainline DHT node of swarmd (BEP 5, with BEP 32 IPv6, BEP 42 node ids, BEP 43
//! read-only nodes), storing and serving peers through the shared swarm registry, so a peer
//! announced over HTTP, UDP or the DHT is found by all three.
//!
//! [`DhtNode`] is the sans-IO core: [`DhtNode::handle`] takes one datagram, its source and
//! `now`, and writes the reply, if any; [`DhtNode::tick`] drives timers; our own queries (pings,
//! lookups, bootstrap) come out of [`DhtNode::poll_transmit`] and finished lookups out of
//! [`DhtNode::poll_event`]. Packets are parsed and written by `swarmd_proto::krpc`.
//! [`DhtServer`] is the thin tokio driver: IPv4 and IPv6 sockets, one task owning the core,
//! bootstrap name resolution, persistence of the node table, and a [`DhtHandle`] to run
//! lookups.
//!
//! # Behaviour
//!
//! * **Tables.** A Kademlia routing table per address family (k = 8, buckets split around our
//!   id, good/questionable/bad states, replacement caches, 15-minute bucket refresh). A node
//!   enters only after answering a query of ours: queriers and nodes named in replies are
//!   pinged first, so spoofed sources never get in. BEP 43 `ro=1` nodes never enter. With
//!   [`DhtConfig::enforce_node_id`], a node whose id does not match its IP (BEP 42; local
//!   addresses exempt) never enters, so it is never handed out.
//! * **Bootstrap mode** ([`DhtConfig::bootstrap_mode`]): also a table of up to
//!   [`DhtConfig::max_nodes`] verified nodes per family (a binary trie, about 41 bytes an IPv4 node),
//!   filled by pinging every querier and every node named in replies, re-verified hourly, and
//!   the source of the nodes we hand out; [`DhtServer`] saves it to
//!   [`DhtConfig::state_file`] on shutdown and loads it on start. Closest-node queries cost
//!   the trie's depth plus a leaf or two, whatever the table size.
//! * **Queries answered.** `ping`; `find_node` (8 closest nodes; `nodes` and/or `nodes6` per
//!   BEP 32 `want`, the requester's family when absent); `get_peers` (`values` sampled from the
//!   registry in the requester's family, the closest nodes and a token); `announce_peer` (token
//!   checked, stored with `left = 1` unless `seed`, the source port if `implied_port`);
//!   `sample_infohashes` (nodes and an empty sample); unknown methods carrying `target` like
//!   `find_node`, carrying `info_hash` like `get_peers`, else error 204. Every reply carries
//!   the requester's address as `ip` (BEP 42).
//! * **Private torrents** ([`swarmd_swarm::access::AccessPolicy::is_private`], or denied by the
//!   policy for the DHT): never served (`get_peers` answers nodes and a token, as for an unknown
//!   hash) and never stored (`announce_peer` is answered, not refused, so the hash is not
//!   confirmed).
//! * **Tokens**: 8-byte SipHash-2-4 MACs of (IP, info hash), secret rotated every
//!   [`DhtConfig::token_rotation_secs`], the previous secret accepted.
//! * **Abuse.** Packets carrying our own id are dropped. Queries are rate limited per IP
//!   (IPv6: per /64) by token buckets in a fixed-size table; excess is dropped silently. A
//!   source that sent more than [`DhtConfig::repeat_requester_threshold`] queries this minute
//!   gets 4 nodes instead of 8. Malformed packets get silence, or error 203 when they are
//!   well-formed queries with a bad argument. Memory is bounded whatever arrives: fixed
//!   rate-limit table, bounded transaction table, candidate pings budgeted per second.
//! * **Amplification rule**: a reply to a source we do not know (not in our tables at that
//!   address, with that id) is at most `4 * query bytes + 64` (and never above
//!   [`DhtConfig::max_reply_bytes`]): `values`, then nodes, are trimmed to fit, and a reply
//!   that still does not fit is not sent. Known sources get up to `max_reply_bytes`.
//! * **Our id** is [`DhtConfig::node_id`], else the one saved in the state file, else random;
//!   once replies' `ip` fields agree on our external address (4 voters from distinct /24s),
//!   the id is re-derived per BEP 42 if it does not match, and the routing tables are rebuilt
//!   around it (nodes kept where they fit).
//! * **Outgoing**: random 4-byte transaction ids in a bounded table; iterative lookups
//!   (alpha = 3, k = 8) for `find_node`, `get_peers` and announces; self-bootstrap from
//!   [`DhtConfig::bootstrap_nodes`], retried with back-off (5 s doubling to 15 minutes) while
//!   the routing table stays empty; pings of questionable nodes; bucket refresh.
//!
//! Metrics are listed in the `metrics` module documentation.

mod client;
mod config;
mod lookup;
mod maintain;
mod metrics;
mod node;
pub mod persist;
mod ratelimit;
mod routing;
mod serve;
mod server;
mod store;
mod token;
mod tx;
mod verified;
mod vote;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use swarmd_proto::NodeId;
use swarmd_swarm::access::AccessPolicy;
use swarmd_swarm::clock::Clock;
use swarmd_swarm::metrics::Metrics;
use swarmd_swarm::Registry;

pub use config::{split_host_port, ConfigError, DhtConfig};
pub use lookup::{LookupId, LookupKind, LookupResult, ALPHA};
pub use node::{DhtEvent, DhtNode, NodeStats, Transmit};
pub use persist::{PersistError, Snapshot};
pub use routing::K;
pub use server::{DhtHandle, DhtServer};

/// Our client version in the `v` key (BEP 5): "SW" and version 0.1.
pub const VERSION: &[u8] = b"SW\x00\x01";

/// A DHT node: its id and address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    /// The node's id.
    pub id: NodeId,
    /// Its UDP address.
    pub addr: SocketAddr,
}

/// What the node shares with the rest of swarmd.
#[derive(Clone)]
pub struct DhtDeps {
    /// The swarm registry `announce_peer` stores into and `get_peers` samples.
    pub registry: Arc<Registry>,
    /// The access policy: private hashes are never stored or served.
    pub policy: Arc<dyn AccessPolicy>,
    /// The registry's clock (peer timestamps); the node's own timers run on `now` arguments.
    pub clock: Arc<dyn Clock>,
    /// The process's metrics.
    pub metrics: Metrics,
}

impl std::fmt::Debug for DhtDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhtDeps").finish_non_exhaustive()
    }
}

/// XOR distances to one target as two integers, cheap to compare: sorting by
/// [`Distance::to`] orders ids exactly as comparing `NodeId::distance` byte arrays does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Distance(u128, u32);

impl Distance {
    /// Distances to `target`.
    pub(crate) fn from(target: &NodeId) -> Self {
        let (hi, lo) = split_id(target);
        Self(hi, lo)
    }

    /// The distance from the target to `id`.
    pub(crate) fn to(&self, id: &NodeId) -> (u128, u32) {
        let (hi, lo) = split_id(id);
        (hi ^ self.0, lo ^ self.1)
    }
}

fn split_id(id: &NodeId) -> (u128, u32) {
    let mut hi = [0u8; 16];
    let mut lo = [0u8; 4];
    hi.copy_from_slice(&id.0[..16]);
    lo.copy_from_slice(&id.0[16..]);
    (u128::from_be_bytes(hi), u32::from_be_bytes(lo))
}

/// The same address with IPv4-mapped IPv6 addresses as IPv4.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}
