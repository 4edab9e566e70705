//! Property tests: whatever arrives from wherever, the core never panics and never answers an
//! unknown source with more than the amplification bound.

use std::net::{IpAddr, SocketAddr};

use proptest::prelude::*;
use swarmd_proto::krpc::{Method, Want};
use swarmd_proto::{InfoHash, NodeId};

use super::*;
use crate::node::amplification_bound;

fn source() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
    ]
}

fn method() -> impl Strategy<Value = (u8, [u8; 20], u16, bool)> {
    (0u8..7, any::<[u8; 20]>(), any::<u16>(), any::<bool>())
}

/// A node with a full-ish table and a popular swarm, so replies are as big as they get.
fn busy() -> Fx {
    let mut fx = fixture(DhtConfig {
        bootstrap_mode: true,
        max_values: 500,
        max_reply_bytes: 65_000,
        ..test_config()
    });
    for i in 0..200u32 {
        let n = NodeInfo {
            id: NodeId(rand::random()),
            addr: addr(i + 1),
        };
        fx.node.table4.insert_verified(n, fx.t0);
        if let Some(v) = &mut fx.node.verified {
            v.admit(n, fx.t0);
            let v6 = NodeInfo {
                id: NodeId(rand::random()),
                addr: format!("[fd00::{}]:6881", i + 1).parse().unwrap(),
            };
            v.admit(v6, fx.t0);
        }
    }
    let mut out = swarmd_swarm::SelectedPeers::new();
    for i in 0..600u32 {
        for ip in [
            IpAddr::from((0xc000_0000 + i).to_be_bytes()),
            IpAddr::from(std::net::Ipv6Addr::from(
                (0x2001_0db8_u128 << 96) + u128::from(i),
            )),
        ] {
            let a = swarmd_swarm::Announce {
                info_hash: InfoHash([0x5a; 20]),
                peer_id: swarmd_proto::PeerId([0; 20]),
                addr: SocketAddr::new(ip, 6000),
                event: swarmd_proto::Event::Started,
                left: 1,
                numwant: 0,
            };
            fx.registry.announce(&a, 1000, &mut out).unwrap();
        }
    }
    fx
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_nor_amplify(
        packets in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..200), source()), 1..20),
    ) {
        let mut fx = fixture(test_config());
        for (i, (p, src)) in packets.iter().enumerate() {
            let now = fx.at(i as f64);
            if let Some(reply) = fx.raw(p, *src, now) {
                prop_assert!(reply.len() <= amplification_bound(p.len()));
            }
            fx.node.tick(now);
            let _ = fx.sent();
        }
    }

    #[test]
    fn arbitrary_queries_from_strangers_never_amplify(
        queries in proptest::collection::vec((method(), source(), any::<bool>(), any::<bool>(), any::<bool>()), 1..30),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut fx = busy();
        for (i, ((m, target, port, flag), src, n4, n6, ro)) in queries.iter().enumerate() {
            let ih = if *flag { InfoHash([0x5a; 20]) } else { InfoHash(*target) };
            let token = [1u8; 8];
            let method = match m {
                0 => Method::Ping,
                1 => Method::FindNode { target: NodeId(*target) },
                2 => Method::GetPeers { info_hash: ih, noseed: *flag, scrape: false },
                3 => Method::AnnouncePeer { info_hash: ih, port: *port, implied_port: *flag, token: &token, seed: false },
                4 => Method::SampleInfohashes { target: NodeId(*target) },
                5 => Method::Unknown { name: b"x", target: flag.then_some(NodeId(*target)), info_hash: Some(ih) },
                _ => Method::Unknown { name: b"y", target: None, info_hash: None },
            };
            let mut p = query_bytes(NodeId(rand::random()), &method, Want { n4: *n4, n6: *n6 }, *ro);
            if i == 0 {
                // Also a truncated one.
                p.truncate(cut.index(p.len() + 1));
            }
            let now = fx.at(i as f64 * 0.01);
            if let Some(reply) = fx.raw(&p, *src, now) {
                prop_assert!(
                    reply.len() <= amplification_bound(p.len()),
                    "{} bytes for a {}-byte query", reply.len(), p.len()
                );
            }
        }
        fx.node.tick(fx.at(10.0));
        prop_assert!(fx.node.stats().outstanding <= fx.node.config.max_outstanding_queries);
    }
}
