//! Unit tests of the node core, driven through `handle` and `tick` with byte-level checks via
//! the KRPC codec, and of the tables against brute force.

mod abuse;
mod outgoing;
mod props;
mod queries;
mod tables;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarmd_proto::krpc::{parse_message, write_query, Body, Message, Method, Response, Want};
use swarmd_proto::NodeId;
use swarmd_swarm::access::{AccessPolicy, OpenPolicy};
use swarmd_swarm::clock::ManualClock;
use swarmd_swarm::metrics::Metrics;
use swarmd_swarm::{Registry, RegistryConfig};

use crate::{DhtConfig, DhtDeps, DhtNode, NodeInfo, Transmit};

/// A node under test and what it shares.
pub(crate) struct Fx {
    pub(crate) node: DhtNode,
    pub(crate) registry: Arc<Registry>,
    pub(crate) t0: Instant,
}

/// A config for tests: no bootstrap names, no rate limit unless a test sets one.
pub(crate) fn test_config() -> DhtConfig {
    DhtConfig {
        bootstrap_nodes: Vec::new(),
        rate_limit_per_sec: 0,
        node_id: Some(NodeId([0x80; 20])),
        ..DhtConfig::default()
    }
}

pub(crate) fn fixture(config: DhtConfig) -> Fx {
    fixture_with(config, Arc::new(OpenPolicy))
}

pub(crate) fn fixture_with(config: DhtConfig, policy: Arc<dyn AccessPolicy>) -> Fx {
    let registry = Arc::new(Registry::new(RegistryConfig::default()));
    let deps = DhtDeps {
        registry: registry.clone(),
        policy,
        clock: Arc::new(ManualClock::new(1000)),
        metrics: Metrics::new().unwrap(),
    };
    let t0 = Instant::now();
    Fx {
        node: DhtNode::new(config, deps, t0),
        registry,
        t0,
    }
}

impl Fx {
    /// `t0 + secs`.
    pub(crate) fn at(&self, secs: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(secs)
    }

    /// Feeds raw bytes; the reply, if any.
    pub(crate) fn raw(&mut self, packet: &[u8], src: SocketAddr, now: Instant) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.node.handle(packet, src, now, &mut out).then_some(out)
    }

    /// Sends a query from `(id, src)`; the reply bytes, if any.
    pub(crate) fn ask(
        &mut self,
        id: NodeId,
        src: SocketAddr,
        method: &Method<'_>,
        want: Want,
        now: Instant,
    ) -> Option<Vec<u8>> {
        let p = query_bytes(id, method, want, false);
        self.raw(&p, src, now)
    }

    /// Every datagram queued by the node.
    pub(crate) fn sent(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.node.poll_transmit()).collect()
    }
}

/// A query as a client writes it, transaction id `aa`.
pub(crate) fn query_bytes(id: NodeId, method: &Method<'_>, want: Want, ro: bool) -> Vec<u8> {
    let mut p = Vec::new();
    write_query(&mut p, b"aa", id, method, want, ro, None);
    p
}

/// Parses a reply that must be a response.
pub(crate) fn response(bytes: &[u8]) -> (Message<'_>, Response<'_>) {
    let msg = parse_message(bytes).expect("a valid reply");
    match msg.body {
        Body::Response(r) => (msg, r),
        other => panic!("expected a response, got {other:?}"),
    }
}

/// Parses a reply that must be an error: its code and message.
pub(crate) fn error(bytes: &[u8]) -> (i64, String) {
    match parse_message(bytes).expect("a valid reply").body {
        Body::Error { code, message } => (code, String::from_utf8_lossy(message).into_owned()),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// An IPv4 address on 10/8 (BEP 42 exempt).
pub(crate) fn addr(i: u32) -> SocketAddr {
    SocketAddr::from(((0x0a00_0000 + i).to_be_bytes(), 6881))
}

/// A node id with the given first bytes, zero elsewhere.
pub(crate) fn id_of(prefix: &[u8]) -> NodeId {
    let mut id = [0u8; 20];
    id[..prefix.len()].copy_from_slice(prefix);
    NodeId(id)
}

/// Answers every ping the node queued, as the pinged node would (with `id`s from `ids`, by
/// destination), and returns how many were answered.
pub(crate) fn answer_pings(
    fx: &mut Fx,
    ids: &dyn Fn(SocketAddr) -> Option<NodeId>,
    secs: f64,
) -> usize {
    let now = fx.at(secs);
    let mut n = 0;
    for t in fx.sent() {
        let msg = parse_message(&t.payload).unwrap();
        let Body::Query(q) = msg.body else { continue };
        if q.method != Method::Ping {
            continue;
        }
        let Some(id) = ids(t.dst) else { continue };
        let mut reply = Vec::new();
        swarmd_proto::krpc::write_response(
            &mut reply,
            msg.transaction_id,
            Some(t.dst),
            None,
            &swarmd_proto::krpc::ResponseFields::new(id),
        );
        assert!(
            fx.raw(&reply, t.dst, now).is_none(),
            "a response gets no reply"
        );
        n += 1;
    }
    n
}

/// The node's nodes as a find_node reply would hand them out (up to 8, IPv4).
pub(crate) fn handed_out(fx: &Fx, target: NodeId) -> Vec<NodeInfo> {
    fx.node.closest_nodes(&target, 8, false)
}
