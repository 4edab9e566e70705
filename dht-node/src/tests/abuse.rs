//! Abuse handling: rate limits, our own id, read-only nodes, BEP 42, the amplification rule
//! and bounded memory under floods.

use std::net::SocketAddr;

use swarmd_proto::bep42::node_id_for;
use swarmd_proto::krpc::{Method, Want};
use swarmd_proto::{InfoHash, NodeId};

use super::*;
use crate::metrics::{Action, Drop, Outcome};
use crate::node::amplification_bound;

#[test]
fn over_limit_queries_are_dropped_silently() {
    let mut fx = fixture(DhtConfig {
        rate_limit_per_sec: 2,
        rate_limit_burst: 3,
        ..test_config()
    });
    let src = addr(1);
    let answered = (0..10)
        .filter(|_| {
            fx.ask(id_of(&[1]), src, &Method::Ping, Want::default(), fx.t0)
                .is_some()
        })
        .count();
    assert_eq!(answered, 3);
    assert_eq!(
        fx.node.tally.requests(Action::Ping, Outcome::RateLimited),
        7
    );
    assert_eq!(fx.node.tally.drops(Drop::RateLimited), 7);
    // Another source, and the same one a second later, are served.
    assert!(fx
        .ask(id_of(&[1]), addr(2), &Method::Ping, Want::default(), fx.t0)
        .is_some());
    let later = fx.at(1.0);
    let answered = (0..10)
        .filter(|_| {
            fx.ask(id_of(&[1]), src, &Method::Ping, Want::default(), later)
                .is_some()
        })
        .count();
    assert_eq!(answered, 2);
    // Malformed queries count against the limit too.
    let bad = b"d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:aa1:y1:qe";
    assert!(fx.raw(bad, src, later).is_none());
}

#[test]
fn packets_carrying_our_own_id_are_dropped() {
    let mut fx = fixture(test_config());
    let own = fx.node.id();
    assert!(fx
        .ask(own, addr(1), &Method::Ping, Want::default(), fx.t0)
        .is_none());
    assert_eq!(fx.node.tally.drops(Drop::OwnId), 1);
    // A reply carrying our id is not admitted either.
    fx.ask(id_of(&[1]), addr(2), &Method::Ping, Want::default(), fx.t0)
        .unwrap();
    let n = answer_pings(&mut fx, &|_| Some(own), 0.0);
    assert_eq!(n, 1);
    assert_eq!(fx.node.stats().routing_v4, 0);
}

#[test]
fn queriers_enter_the_table_only_after_answering_our_ping_and_never_when_read_only() {
    let mut fx = fixture(test_config());
    let querier = NodeInfo {
        id: id_of(&[1, 2, 3]),
        addr: addr(1),
    };
    // Read-only: answered, but never pinged nor added.
    let p = query_bytes(querier.id, &Method::Ping, Want::default(), true);
    assert!(fx.raw(&p, querier.addr, fx.t0).is_some());
    assert!(fx.sent().is_empty(), "a read-only node was pinged");
    // A normal querier is pinged, and only enters the table once it answers.
    fx.ask(
        querier.id,
        querier.addr,
        &Method::Ping,
        Want::default(),
        fx.t0,
    )
    .unwrap();
    assert_eq!(fx.node.stats().routing_v4, 0);
    assert_eq!(answer_pings(&mut fx, &|_| Some(querier.id), 0.0), 1);
    assert_eq!(handed_out(&fx, querier.id), vec![querier]);
    // A read-only responder is not added either.
    let other = NodeInfo {
        id: id_of(&[9]),
        addr: addr(2),
    };
    fx.ask(other.id, other.addr, &Method::Ping, Want::default(), fx.t0)
        .unwrap();
    for t in fx.sent() {
        let msg = swarmd_proto::krpc::parse_message(&t.payload).unwrap();
        let mut reply = Vec::new();
        swarmd_proto::krpc::write_response(
            &mut reply,
            msg.transaction_id,
            None,
            None,
            &swarmd_proto::krpc::ResponseFields::new(other.id),
        );
        // Add `ro=1` at the top level (keys stay sorted: `r` < `ro` < `t`).
        let at = reply.windows(4).position(|w| w == b"1:t4").unwrap();
        reply.splice(at..at, b"2:roi1e".iter().copied());
        fx.raw(&reply, t.dst, fx.t0);
    }
    assert_eq!(
        fx.node.stats().routing_v4,
        1,
        "a read-only responder was added"
    );
}

#[test]
fn bep42_invalid_ids_never_enter_the_tables_when_enforced() {
    let public: SocketAddr = "203.0.113.9:6881".parse().unwrap();
    let good = node_id_for(public.ip(), 3, [7; 17]);
    let bad = NodeId([0x11; 20]);
    for enforce in [true, false] {
        let mut fx = fixture(DhtConfig {
            enforce_node_id: enforce,
            ..test_config()
        });
        fx.ask(bad, public, &Method::Ping, Want::default(), fx.t0)
            .unwrap();
        let pinged = answer_pings(&mut fx, &|_| Some(bad), 0.0);
        assert_eq!(pinged, usize::from(!enforce), "enforce={enforce}");
        assert_eq!(fx.node.stats().routing_v4, usize::from(!enforce));
        let mut fx = fixture(DhtConfig {
            enforce_node_id: enforce,
            ..test_config()
        });
        fx.ask(good, public, &Method::Ping, Want::default(), fx.t0)
            .unwrap();
        answer_pings(&mut fx, &|_| Some(good), 0.0);
        assert_eq!(
            handed_out(&fx, good),
            vec![NodeInfo {
                id: good,
                addr: public
            }]
        );
    }
}

#[test]
fn replies_to_unknown_sources_respect_the_amplification_bound() {
    let mut fx = fixture(DhtConfig {
        max_values: 200,
        max_reply_bytes: 4000,
        ..test_config()
    });
    let ih = InfoHash([0x5a; 20]);
    let mut out = swarmd_swarm::SelectedPeers::new();
    for i in 0..300u32 {
        let a = swarmd_swarm::Announce {
            info_hash: ih,
            peer_id: swarmd_proto::PeerId([0; 20]),
            addr: SocketAddr::from(([192, 0, (i >> 8) as u8, i as u8], 6000)),
            event: swarmd_proto::Event::Started,
            left: 1,
            numwant: 0,
        };
        fx.registry.announce(&a, 1000, &mut out).unwrap();
    }
    for i in 0..30u32 {
        fx.node.table4.insert_verified(
            NodeInfo {
                id: NodeId(rand::random()),
                addr: addr(100 + i),
            },
            fx.t0,
        );
    }
    let q = query_bytes(
        id_of(&[1]),
        &Method::GetPeers {
            info_hash: ih,
            noseed: false,
            scrape: false,
        },
        Want { n4: true, n6: true },
        false,
    );
    let stranger = addr(5000);
    let reply = fx.raw(&q, stranger, fx.t0).unwrap();
    assert!(
        reply.len() <= amplification_bound(q.len()),
        "{} > {}",
        reply.len(),
        amplification_bound(q.len())
    );
    let (_, r) = response(&reply);
    assert!(!r.values.is_empty(), "values trimmed, not dropped");
    assert_eq!(r.nodes.len(), 8, "nodes kept while values can be trimmed");
    assert!(r.token.is_some());
    // A known node (in our table at that address, with that id) gets the full budget.
    let known = fx.node.table4.entries().next().unwrap().node;
    let q = query_bytes(
        known.id,
        &Method::GetPeers {
            info_hash: ih,
            noseed: false,
            scrape: false,
        },
        Want::default(),
        false,
    );
    let reply = fx.raw(&q, known.addr, fx.t0).unwrap();
    assert!(reply.len() > amplification_bound(q.len()));
    assert_eq!(response(&reply).1.values.len(), 200);
}

#[test]
fn a_flood_of_queriers_keeps_memory_bounded() {
    let mut fx = fixture(DhtConfig {
        bootstrap_mode: true,
        max_outstanding_queries: 64,
        verify_pings_per_sec: 1000,
        max_tracked_ips: 256,
        ..test_config()
    });
    for i in 0..20_000u32 {
        let src = SocketAddr::from(((0x0b00_0000 + i).to_be_bytes(), 1000));
        let id = NodeId(rand::random());
        let now = fx.at(f64::from(i) / 1000.0);
        fx.ask(id, src, &Method::Ping, Want::default(), now)
            .unwrap();
        // The driver would send these; nobody answers.
        fx.sent();
        if i % 100 == 0 {
            fx.node.tick(now);
        }
    }
    let s = fx.node.stats();
    assert!(s.outstanding <= 64, "{s:?}");
    assert_eq!(s.verified_v4, 0, "nobody answered, nobody admitted");
    assert_eq!(s.routing_v4, 0);
    assert!(fx.node.outbox.is_empty());
}
