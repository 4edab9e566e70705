//! Every query type through the core, checked byte for byte with the codec.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use swarmd_proto::krpc::{error_code, parse_message, Body, Method, Want};
use swarmd_proto::{Event, InfoHash, NodeId, PeerId};
use swarmd_swarm::access::{Access, AccessPolicy, AccessRequest};
use swarmd_swarm::{Announce, SelectedPeers};

use super::*;

const IH: InfoHash = InfoHash([0x5a; 20]);

/// A node knowing `n` IPv4 and `n` IPv6 nodes (inserted as verified).
fn populated(n: u32) -> Fx {
    let mut fx = fixture(test_config());
    let now = fx.t0;
    for i in 0..n {
        let id: [u8; 20] = rand::random();
        fx.node.table4.insert_verified(
            NodeInfo {
                id: NodeId(id),
                addr: addr(i + 1),
            },
            now,
        );
        let v6: SocketAddr = format!("[fd00::{}]:6881", i + 1).parse().unwrap();
        fx.node.table6.insert_verified(
            NodeInfo {
                id: NodeId(rand::random()),
                addr: v6,
            },
            now,
        );
    }
    fx
}

fn announce_peer(fx: &Fx, ih: InfoHash, peer: SocketAddr) {
    let a = Announce {
        info_hash: ih,
        peer_id: PeerId([1; 20]),
        addr: peer,
        event: Event::Started,
        left: 1,
        numwant: 0,
    };
    fx.registry
        .announce(&a, 1000, &mut SelectedPeers::new())
        .unwrap();
}

#[test]
fn ping_is_answered_with_our_id_and_the_requesters_address() {
    let mut fx = fixture(test_config());
    let src = addr(7);
    let reply = fx
        .ask(id_of(&[1]), src, &Method::Ping, Want::default(), fx.t0)
        .unwrap();
    let (msg, r) = response(&reply);
    assert_eq!(msg.transaction_id, b"aa");
    assert_eq!(r.id, fx.node.id());
    assert_eq!(msg.ip, Some(src), "BEP 42 ip");
    assert_eq!(msg.version, Some(crate::VERSION));
    assert!(r.nodes.is_empty() && r.token.is_none());
}

#[test]
fn find_node_answers_the_closest_nodes_per_want() {
    let mut fx = populated(40);
    let target = NodeId(rand::random());
    let src = addr(1000);
    let q = Method::FindNode { target };
    // No `want`: the requester's own family only.
    let reply = fx
        .ask(id_of(&[1]), src, &q, Want::default(), fx.t0)
        .unwrap();
    let (_, r) = response(&reply);
    let want: Vec<(NodeId, SocketAddr)> = fx
        .node
        .table4
        .closest_vec(&target, 8)
        .into_iter()
        .map(|n| (n.id, n.addr))
        .collect();
    let got: Vec<(NodeId, SocketAddr)> = r.nodes.iter().map(|(i, a)| (i, a.into())).collect();
    assert_eq!(got, want);
    assert!(r.nodes6.is_empty());
    // `want` n6 only, from an IPv4 requester.
    let reply = fx
        .ask(
            id_of(&[1]),
            src,
            &q,
            Want {
                n4: false,
                n6: true,
            },
            fx.t0,
        )
        .unwrap();
    let (_, r) = response(&reply);
    assert!(r.nodes.is_empty());
    assert_eq!(r.nodes6.len(), 8);
    // Both: 8 + 8 nodes exceed the amplification bound for a stranger, so the other
    // family's nodes are trimmed; a known node gets all 16.
    let p = query_bytes(id_of(&[1]), &q, Want { n4: true, n6: true }, false);
    let reply = fx.raw(&p, src, fx.t0).unwrap();
    let (_, r) = response(&reply);
    assert_eq!(r.nodes.len(), 8);
    assert!(r.nodes6.len() < 8 && reply.len() <= crate::node::amplification_bound(p.len()));
    let known = fx.node.table4.entries().next().unwrap().node;
    let reply = fx
        .ask(known.id, known.addr, &q, Want { n4: true, n6: true }, fx.t0)
        .unwrap();
    let (_, r) = response(&reply);
    assert_eq!((r.nodes.len(), r.nodes6.len()), (8, 8));
    assert!(
        r.nodes.iter().all(|(id, _)| id != known.id),
        "the requester is not handed itself"
    );
    let v6src: SocketAddr = "[fd00::99]:1".parse().unwrap();
    let reply = fx
        .ask(id_of(&[1]), v6src, &q, Want::default(), fx.t0)
        .unwrap();
    let (msg, r) = response(&reply);
    assert_eq!((r.nodes.len(), r.nodes6.len()), (0, 8));
    assert_eq!(msg.ip, Some(v6src));
}

#[test]
fn get_peers_serves_values_of_the_requesters_family_and_a_token() {
    let mut fx = populated(20);
    let v4peer: SocketAddr = "192.0.2.1:6000".parse().unwrap();
    let v6peer: SocketAddr = "[2001:db8::1]:6000".parse().unwrap();
    announce_peer(&fx, IH, v4peer);
    announce_peer(&fx, IH, v6peer);
    let q = Method::GetPeers {
        info_hash: IH,
        noseed: false,
        scrape: false,
    };
    let src = addr(5000);
    let reply = fx
        .ask(id_of(&[1]), src, &q, Want::default(), fx.t0)
        .unwrap();
    let (_, r) = response(&reply);
    assert_eq!(r.values.iter().collect::<Vec<_>>(), vec![v4peer]);
    assert_eq!(r.token.map(<[u8]>::len), Some(8));
    assert_eq!(r.nodes.len(), 8, "nodes as well");
    let v6src: SocketAddr = "[fd00::77]:1".parse().unwrap();
    let reply = fx
        .ask(id_of(&[1]), v6src, &q, Want::default(), fx.t0)
        .unwrap();
    let (_, r) = response(&reply);
    assert_eq!(r.values.iter().collect::<Vec<_>>(), vec![v6peer]);
    // An unknown hash: no values, nodes and a token.
    let q = Method::GetPeers {
        info_hash: InfoHash([1; 20]),
        noseed: false,
        scrape: false,
    };
    let reply = fx
        .ask(id_of(&[1]), src, &q, Want::default(), fx.t0)
        .unwrap();
    let (_, r) = response(&reply);
    assert!(r.values.is_empty() && r.token.is_some() && !r.nodes.is_empty());
}

#[test]
fn announce_peer_stores_with_a_valid_token_only() {
    let mut fx = fixture(test_config());
    let src = addr(9);
    let gp = Method::GetPeers {
        info_hash: IH,
        noseed: false,
        scrape: false,
    };
    let reply = fx
        .ask(id_of(&[1]), src, &gp, Want::default(), fx.t0)
        .unwrap();
    let token = response(&reply).1.token.unwrap().to_vec();
    // A forged token: error 203, nothing stored.
    let bad = Method::AnnouncePeer {
        info_hash: IH,
        port: 7000,
        implied_port: false,
        token: b"12345678",
        seed: false,
    };
    let reply = fx
        .ask(id_of(&[1]), src, &bad, Want::default(), fx.t0)
        .unwrap();
    assert_eq!(error(&reply).0, error_code::PROTOCOL);
    assert!(fx.registry.scrape(&IH).is_none());
    // Another address's token is refused too.
    let other = addr(10);
    let a = Method::AnnouncePeer {
        info_hash: IH,
        port: 7000,
        implied_port: false,
        token: &token,
        seed: false,
    };
    assert_eq!(
        error(
            &fx.ask(id_of(&[1]), other, &a, Want::default(), fx.t0)
                .unwrap()
        )
        .0,
        203
    );
    // The right one: stored as a leecher at the given port.
    let reply = fx
        .ask(id_of(&[1]), src, &a, Want::default(), fx.t0)
        .unwrap();
    let (msg, r) = response(&reply);
    assert_eq!((r.id, msg.ip), (fx.node.id(), Some(src)));
    let st = fx.registry.scrape(&IH).unwrap();
    assert_eq!((st.complete, st.incomplete), (0, 1));
    let mut out = SelectedPeers::new();
    fx.registry.sample(&IH, false, 10, &mut out);
    assert_eq!(
        out.addrs().collect::<Vec<_>>(),
        vec![SocketAddr::new(src.ip(), 7000)]
    );
    // implied_port uses the source port; seed=1 stores a seeder.
    let a = Method::AnnouncePeer {
        info_hash: IH,
        port: 1,
        implied_port: true,
        token: &token,
        seed: true,
    };
    response(
        &fx.ask(id_of(&[1]), src, &a, Want::default(), fx.t0)
            .unwrap(),
    );
    fx.registry.sample(&IH, false, 10, &mut out);
    assert!(out.addrs().any(|p| p == src));
    assert_eq!(fx.registry.scrape(&IH).unwrap().complete, 1);
}

#[test]
fn unknown_methods_follow_bep_5() {
    let mut fx = populated(20);
    let src = addr(3);
    let target = Method::Unknown {
        name: b"vote",
        target: Some(NodeId([3; 20])),
        info_hash: None,
    };
    let reply = fx
        .ask(id_of(&[1]), src, &target, Want::default(), fx.t0)
        .unwrap();
    let (_, r) = response(&reply);
    assert_eq!(r.nodes.len(), 8);
    let ih = Method::Unknown {
        name: b"get",
        target: None,
        info_hash: Some(IH),
    };
    let reply = fx
        .ask(id_of(&[1]), src, &ih, Want::default(), fx.t0)
        .unwrap();
    let (_, r) = response(&reply);
    assert!(r.token.is_some() && r.nodes.len() == 8);
    let neither = Method::Unknown {
        name: b"put",
        target: None,
        info_hash: None,
    };
    let (code, message) = error(
        &fx.ask(id_of(&[1]), src, &neither, Want::default(), fx.t0)
            .unwrap(),
    );
    assert_eq!(
        (code, message.as_str()),
        (error_code::METHOD_UNKNOWN, "method unknown")
    );
    // sample_infohashes: nodes and an empty sample.
    let s = Method::SampleInfohashes {
        target: NodeId([3; 20]),
    };
    let reply = fx
        .ask(id_of(&[1]), src, &s, Want::default(), fx.t0)
        .unwrap();
    let (_, r) = response(&reply);
    assert_eq!((r.nodes.len(), r.samples.len(), r.num), (8, 0, Some(0)));
    assert!(r.interval.is_some());
}

#[test]
fn malformed_input_gets_silence_or_error_203() {
    let mut fx = fixture(test_config());
    let src = addr(4);
    for garbage in [
        &b""[..],
        b"de",
        b"i1e",
        b"d1:t2:aa1:y1:re",
        b"\xff\x00",
        b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",
    ] {
        let reply = fx.raw(garbage, src, fx.t0);
        if let Some(r) = reply {
            let msg = parse_message(&r).unwrap();
            assert!(
                matches!(msg.body, Body::Error { code: 203, .. }),
                "{garbage:?}"
            );
        }
    }
    // A query missing its target names what is missing.
    let bad = b"d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:aa1:y1:qe";
    let (code, message) = error(&fx.raw(bad, src, fx.t0).unwrap());
    assert_eq!((code, message.as_str()), (203, "missing target"));
    // Responses and errors nobody asked for are dropped.
    assert!(fx
        .raw(
            b"d1:rd2:id20:abcdefghij0123456789e1:t2:aa1:y1:re",
            src,
            fx.t0
        )
        .is_none());
    assert!(fx
        .raw(b"d1:eli201e1:xe1:t2:aa1:y1:ee", src, fx.t0)
        .is_none());
}

/// A policy under which one hash is private.
struct OnePrivate;

impl AccessPolicy for OnePrivate {
    fn announce(&self, _req: &AccessRequest<'_>) -> Access {
        Access::Allow
    }
    fn scrape(&self, _req: &AccessRequest<'_>) -> Access {
        Access::Allow
    }
    fn is_private(&self, ih: &InfoHash) -> bool {
        *ih == IH
    }
    fn full_scrape(&self, _client: IpAddr) -> Access {
        Access::Allow
    }
}

#[test]
fn private_hashes_are_never_served_nor_stored() {
    let mut fx = fixture_with(test_config(), Arc::new(OnePrivate));
    let peer: SocketAddr = "192.0.2.1:6000".parse().unwrap();
    announce_peer(&fx, IH, peer);
    let src = addr(9);
    let gp = Method::GetPeers {
        info_hash: IH,
        noseed: false,
        scrape: false,
    };
    let reply = fx
        .ask(id_of(&[1]), src, &gp, Want::default(), fx.t0)
        .unwrap();
    let (_, r) = response(&reply);
    assert!(r.values.is_empty(), "private peers served");
    let token = r.token.expect("a token, as for any hash").to_vec();
    // The same reply shape as an unknown hash.
    let unknown = Method::GetPeers {
        info_hash: InfoHash([9; 20]),
        noseed: false,
        scrape: false,
    };
    let other = fx
        .ask(id_of(&[1]), src, &unknown, Want::default(), fx.t0)
        .unwrap();
    assert_eq!(other.len(), reply.len());
    // announce_peer is answered but not stored.
    let a = Method::AnnouncePeer {
        info_hash: IH,
        port: 7000,
        implied_port: false,
        token: &token,
        seed: false,
    };
    response(
        &fx.ask(id_of(&[1]), src, &a, Want::default(), fx.t0)
            .unwrap(),
    );
    let mut out = SelectedPeers::new();
    fx.registry.sample(&IH, false, 10, &mut out);
    assert_eq!(
        out.addrs().collect::<Vec<_>>(),
        vec![peer],
        "the DHT peer was stored"
    );
    use crate::metrics::{Action, Outcome};
    assert_eq!(
        fx.node
            .tally
            .requests(Action::AnnouncePeer, Outcome::Denied),
        1
    );
}

#[test]
fn tokens_rotate_previous_accepted_older_refused() {
    let mut fx = fixture(test_config());
    let src = addr(9);
    let gp = Method::GetPeers {
        info_hash: IH,
        noseed: false,
        scrape: false,
    };
    let reply = fx
        .ask(id_of(&[1]), src, &gp, Want::default(), fx.t0)
        .unwrap();
    let token = response(&reply).1.token.unwrap().to_vec();
    let a = Method::AnnouncePeer {
        info_hash: IH,
        port: 7000,
        implied_port: false,
        token: &token,
        seed: false,
    };
    fx.node.tick(fx.at(301.0));
    response(
        &fx.ask(id_of(&[1]), src, &a, Want::default(), fx.at(301.0))
            .unwrap(),
    );
    fx.node.tick(fx.at(602.0));
    let reply = fx
        .ask(id_of(&[1]), src, &a, Want::default(), fx.at(602.0))
        .unwrap();
    assert_eq!(error(&reply), (203, "invalid token".into()));
}

#[test]
fn repeat_requesters_get_fewer_nodes() {
    let mut fx = populated(40);
    fx.node.config.repeat_requester_threshold = 5;
    let src = addr(2000);
    let q = Method::FindNode {
        target: NodeId([7; 20]),
    };
    let counts: Vec<usize> = (0..8)
        .map(|_| {
            response(
                &fx.ask(id_of(&[1]), src, &q, Want::default(), fx.t0)
                    .unwrap(),
            )
            .1
            .nodes
            .len()
        })
        .collect();
    assert_eq!(counts, vec![8, 8, 8, 8, 8, 4, 4, 4]);
    // Another source is unaffected; a minute later the count restarts.
    assert_eq!(
        response(
            &fx.ask(id_of(&[1]), addr(2001), &q, Want::default(), fx.t0)
                .unwrap()
        )
        .1
        .nodes
        .len(),
        8
    );
    let later = fx.at(61.0);
    assert_eq!(
        response(
            &fx.ask(id_of(&[1]), src, &q, Want::default(), later)
                .unwrap()
        )
        .1
        .nodes
        .len(),
        8
    );
}
