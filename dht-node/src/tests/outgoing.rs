//! Our own queries: bootstrap and its back-off, lookups over a simulated network of cores,
//! bootstrap-mode admission, BEP 42 id changes, persistence of the node table.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use swarmd_proto::bep42::is_valid_node_id;
use swarmd_proto::krpc::{parse_message, write_response, Body, Method, ResponseFields, Want};
use swarmd_proto::{InfoHash, NodeId};

use super::*;
use crate::{DhtEvent, LookupKind, LookupResult, Snapshot};

/// Cores wired together in memory: datagrams are delivered at once, in order.
struct Sim {
    nodes: Vec<Fx>,
    by_addr: HashMap<SocketAddr, usize>,
    now: Instant,
}

impl Sim {
    fn new(n: usize, config: impl Fn(usize) -> DhtConfig) -> Self {
        let mut nodes = Vec::new();
        let mut by_addr = HashMap::new();
        for i in 0..n {
            nodes.push(fixture(config(i)));
            by_addr.insert(Self::addr(i), i);
        }
        let now = nodes[0].t0;
        Self {
            nodes,
            by_addr,
            now,
        }
    }

    fn addr(i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 1, (i + 1) as u8], 7000))
    }

    /// Delivers every queued datagram (and what it prompts) until all are quiet.
    fn run(&mut self) -> usize {
        let mut delivered = 0;
        loop {
            let mut any = false;
            for i in 0..self.nodes.len() {
                while let Some(t) = self.nodes[i].node.poll_transmit() {
                    any = true;
                    delivered += 1;
                    let Some(&j) = self.by_addr.get(&t.dst) else {
                        continue;
                    };
                    let mut out = Vec::new();
                    if self.nodes[j]
                        .node
                        .handle(&t.payload, Self::addr(i), self.now, &mut out)
                    {
                        let mut ignored = Vec::new();
                        self.nodes[i]
                            .node
                            .handle(&out, t.dst, self.now, &mut ignored);
                    }
                }
            }
            if !any {
                return delivered;
            }
        }
    }

    fn tick(&mut self, secs: f64) {
        self.now += Duration::from_secs_f64(secs);
        for fx in &mut self.nodes {
            fx.node.tick(self.now);
        }
        self.run();
    }

    fn lookup(&mut self, i: usize, kind: LookupKind, target: NodeId) -> LookupResult {
        let id = self.nodes[i]
            .node
            .start_lookup(kind, target, false, self.now);
        for _ in 0..100 {
            self.run();
            while let Some(DhtEvent::LookupDone { id: done, result }) =
                self.nodes[i].node.poll_event()
            {
                if done == id {
                    return result;
                }
            }
            self.tick(0.5);
        }
        panic!("lookup never finished");
    }
}

#[test]
fn bootstrap_backs_off_quietly_when_nobody_answers() {
    let mut fx = fixture(test_config());
    let dead: SocketAddr = "192.0.2.1:6881".parse().unwrap();
    fx.node.add_bootstrap_nodes(&[dead], fx.t0);
    let mut sends = Vec::new();
    for s in 0..(4 * 3600) {
        let now = fx.at(f64::from(s));
        fx.node.tick(now);
        for t in fx.sent() {
            assert_eq!(t.dst, dead);
            sends.push(s);
        }
    }
    // Attempts back off: 5 s, 10 s, ... up to 15 minutes; in 4 hours about 20 of them.
    assert!(
        sends.len() >= 8 && sends.len() <= 30,
        "{} attempts: {sends:?}",
        sends.len()
    );
    let gaps: Vec<i32> = sends.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.windows(2).all(|g| g[1] >= g[0]),
        "gaps shrink: {gaps:?}"
    );
    assert!(*gaps.last().unwrap() >= 900, "{gaps:?}");
    assert!(fx.node.boot.failures() >= 8);
}

#[test]
fn lookups_converge_and_announced_peers_are_found_in_a_simulated_network() {
    let n = 40;
    let mut sim = Sim::new(n, |_| DhtConfig {
        node_id: Some(NodeId(rand::random())),
        bootstrap_nodes: Vec::new(),
        rate_limit_per_sec: 0,
        ..DhtConfig::default()
    });
    let _ = sim.nodes.len();
    let boot = Sim::addr(0);
    for i in 1..n {
        let now = sim.now;
        sim.nodes[i].node.add_bootstrap_nodes(&[boot], now);
        sim.tick(0.1);
    }
    for _ in 0..5 {
        sim.tick(1.0);
    }
    let ids: Vec<(NodeId, SocketAddr)> = (0..n)
        .map(|i| (sim.nodes[i].node.id(), Sim::addr(i)))
        .collect();
    for from in [3, 17, 31] {
        let target = NodeId(rand::random());
        let r = sim.lookup(from, LookupKind::FindNode, target);
        let mut want: Vec<(NodeId, SocketAddr)> = ids
            .iter()
            .copied()
            .filter(|(id, _)| *id != sim.nodes[from].node.id())
            .collect();
        want.sort_by_key(|(id, _)| target.distance(id));
        want.truncate(8);
        let got: Vec<(NodeId, SocketAddr)> = r.closest.iter().map(|n| (n.id, n.addr)).collect();
        assert_eq!(got, want, "lookup from {from}");
    }
    let ih = InfoHash([0x42; 20]);
    let r = sim.lookup(
        5,
        LookupKind::Announce {
            port: 5555,
            implied_port: false,
            seed: false,
        },
        NodeId(ih.0),
    );
    assert_eq!(r.announced, 8, "{r:?}");
    for from in [1, 9, 22, 39] {
        let r = sim.lookup(from, LookupKind::GetPeers, NodeId(ih.0));
        assert!(
            r.peers.contains(&SocketAddr::new(Sim::addr(5).ip(), 5555)),
            "from {from}: {r:?}"
        );
    }
}

#[test]
fn bootstrap_mode_admits_only_nodes_that_answered_our_ping() {
    let mut fx = fixture(DhtConfig {
        bootstrap_mode: true,
        ..test_config()
    });
    let a = NodeInfo {
        id: id_of(&[1, 1]),
        addr: addr(1),
    };
    let b = NodeInfo {
        id: id_of(&[2, 2]),
        addr: addr(2),
    };
    fx.ask(a.id, a.addr, &Method::Ping, Want::default(), fx.t0)
        .unwrap();
    fx.ask(b.id, b.addr, &Method::Ping, Want::default(), fx.t0)
        .unwrap();
    assert_eq!(fx.node.stats().verified_v4, 0, "admitted before answering");
    // Only `a` answers; `b` times out.
    let answered = answer_pings(&mut fx, &|dst| (dst == a.addr).then_some(a.id), 0.0);
    assert_eq!(answered, 1);
    fx.node.tick(fx.at(10.0));
    assert_eq!(fx.node.stats().verified_v4, 1);
    assert_eq!(fx.node.closest_nodes(&b.id, 8, false), vec![a]);
    // Nodes named in a reply are pinged before being admitted.
    let c = NodeInfo {
        id: id_of(&[3, 3]),
        addr: addr(3),
    };
    fx.node
        .start_lookup(LookupKind::FindNode, NodeId([0; 20]), false, fx.at(11.0));
    for t in fx.sent() {
        let msg = parse_message(&t.payload).unwrap();
        let mut nodes = Vec::new();
        swarmd_proto::krpc::write_compact_node(&mut nodes, &c.id, c.addr);
        let mut reply = Vec::new();
        write_response(
            &mut reply,
            msg.transaction_id,
            None,
            None,
            &ResponseFields {
                nodes: &nodes,
                ..ResponseFields::new(a.id)
            },
        );
        fx.raw(&reply, t.dst, fx.at(11.0));
    }
    assert_eq!(fx.node.stats().verified_v4, 1, "c admitted unverified");
    let pinged: Vec<SocketAddr> = fx
        .sent()
        .into_iter()
        .filter(|t| matches!(parse_message(&t.payload).map(|m| m.body), Ok(Body::Query(q)) if q.method == Method::Ping))
        .map(|t| t.dst)
        .collect();
    assert!(pinged.contains(&c.addr), "{pinged:?}");
}

#[test]
fn votes_on_our_address_switch_to_a_bep42_id() {
    let mut fx = fixture(DhtConfig {
        node_id: None,
        ..test_config()
    });
    let old = fx.node.id();
    let me: SocketAddr = "203.0.113.50:6881".parse().unwrap();
    // Four nodes in distinct networks answer our pings saying we are `me`.
    let voters: Vec<NodeInfo> = (0..4u8)
        .map(|i| {
            let a = SocketAddr::from(([198, 51, i, 1], 6881));
            NodeInfo {
                id: swarmd_proto::bep42::node_id_for(a.ip(), i, [i; 17]),
                addr: a,
            }
        })
        .collect();
    for v in &voters {
        fx.ask(v.id, v.addr, &Method::Ping, Want::default(), fx.t0)
            .unwrap();
    }
    for t in fx.sent() {
        let msg = parse_message(&t.payload).unwrap();
        let v = voters.iter().find(|v| v.addr == t.dst).unwrap();
        let mut reply = Vec::new();
        write_response(
            &mut reply,
            msg.transaction_id,
            Some(me),
            None,
            &ResponseFields::new(v.id),
        );
        fx.raw(&reply, t.dst, fx.t0);
    }
    assert_eq!(fx.node.external_ip(), Some(me.ip()));
    assert_ne!(fx.node.id(), old);
    assert!(is_valid_node_id(&fx.node.id(), me.ip()));
    assert_eq!(
        fx.node.stats().routing_v4,
        4,
        "the table survived the switch"
    );
}

#[test]
fn a_configured_id_is_kept_and_a_saved_one_adopted() {
    let fixed = fixture(test_config()).node.id();
    assert_eq!(fixed, NodeId([0x80; 20]));
    let mut fx = fixture(DhtConfig {
        node_id: None,
        bootstrap_mode: true,
        ..test_config()
    });
    let saved = Snapshot {
        own_id: NodeId([0x33; 20]),
        nodes: (1..=20)
            .map(|i| NodeInfo {
                id: NodeId(rand::random()),
                addr: addr(i),
            })
            .collect(),
    };
    fx.node.restore(saved.clone(), fx.t0);
    assert_eq!(fx.node.id(), NodeId([0x33; 20]));
    assert_eq!(fx.node.stats().verified_v4, 20);
    let back = fx.node.snapshot();
    assert_eq!(back.own_id, saved.own_id);
    let mut a: Vec<_> = back.nodes.iter().map(|n| n.addr).collect();
    let mut b: Vec<_> = saved.nodes.iter().map(|n| n.addr).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    // The restored nodes seed the bootstrap.
    fx.node.tick(fx.t0);
    assert!(!fx.sent().is_empty());
}

#[test]
fn implausible_node_addresses_are_never_queried() {
    use crate::client::plausible;
    let remote: SocketAddr = "198.51.100.1:6881".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:6881".parse().unwrap();
    for bad in [
        "0.0.0.0:6881",
        "255.255.255.255:6881",
        "224.0.0.1:6881",
        "1.2.3.4:0",
        "[::]:1",
        "[ff02::1]:1",
        "[::ffff:1.2.3.4]:1",
    ] {
        assert!(!plausible(bad.parse().unwrap(), remote), "{bad}");
    }
    assert!(
        !plausible(local, remote),
        "a remote node pointing at our loopback"
    );
    assert!(plausible(local, local));
    assert!(plausible("203.0.113.4:1".parse().unwrap(), remote));
    assert!(plausible("[2001:db8::1]:1".parse().unwrap(), remote));
}
