//! End-to-end tests of the DHT node inside `swarmd serve`: KRPC over real UDP sockets on
//! loopback, sharing the swarm registry with the trackers, and never exposing private torrents.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::krpc::Krpc;
use common::*;
use swarmd_proto::krpc::{parse_message, Body, Method};
use swarmd_proto::{InfoHash, NodeId};
use swarmd_swarm::access::{Access, AccessPolicy, AccessRequest};

const IH: [u8; 20] = [0x5a; 20];
const SECRET_IH: [u8; 20] = [0x77; 20];

#[tokio::test]
async fn peers_cross_between_the_trackers_and_the_dht() {
    let s = TestServer::start(test_config()).await;
    let node = s.dht_v4();
    let mut k = Krpc::new(node).await;

    // Announced over HTTP, found through the DHT.
    get(s.http_v4(), &announce_url(IH, [1; 20], 6001, 10, "")).await;
    let (values, token) = k.get_peers(IH).await;
    assert_eq!(
        values,
        vec!["127.0.0.1:6001".parse::<SocketAddr>().unwrap()]
    );
    assert!(!token.is_empty(), "get_peers hands out a token");

    // Announced through the DHT (with the token), found over HTTP and UDP.
    let reply = k
        .query(Method::AnnouncePeer {
            info_hash: InfoHash(IH),
            port: 6002,
            implied_port: false,
            token: &token,
            seed: false,
        })
        .await;
    let body = parse_message(&reply).unwrap().body;
    assert!(matches!(body, Body::Response(_)), "{body:?}");
    let d = get(
        s.http_v4(),
        &announce_url(IH, [3; 20], 6003, 10, "&numwant=10"),
    )
    .await
    .bencode();
    let mut got = peers_v4(bytes(&d, "peers"));
    got.sort();
    assert_eq!(
        got,
        vec![
            "127.0.0.1:6001".parse::<SocketAddr>().unwrap(),
            "127.0.0.1:6002".parse().unwrap()
        ]
    );

    // A bad token is refused and stores nothing.
    let reply = k
        .query(Method::AnnouncePeer {
            info_hash: InfoHash(IH),
            port: 6009,
            implied_port: false,
            token: b"forged",
            seed: false,
        })
        .await;
    assert!(matches!(
        parse_message(&reply).unwrap().body,
        Body::Error { .. }
    ));
    let (values, _) = k.get_peers(IH).await;
    assert!(!values.contains(&"127.0.0.1:6009".parse().unwrap()));
    s.running.stop().await;
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
        ih.0 == SECRET_IH
    }
    fn full_scrape(&self, _client: IpAddr) -> Access {
        Access::Allow
    }
}

#[tokio::test]
async fn private_torrents_never_leak_through_the_dht() {
    let s = TestServer::start_with_policy(test_config(), Arc::new(OnePrivate)).await;
    let mut k = Krpc::new(s.dht_v4()).await;
    // A private torrent's peer, announced over HTTP, is not served through the DHT...
    get(s.http_v4(), &announce_url(SECRET_IH, [1; 20], 6001, 10, "")).await;
    let (values, token) = k.get_peers(SECRET_IH).await;
    assert!(values.is_empty(), "private peers leaked: {values:?}");
    // ...and an announce_peer for it is not stored (nor refused, which would confirm it).
    let reply = k
        .query(Method::AnnouncePeer {
            info_hash: InfoHash(SECRET_IH),
            port: 6002,
            implied_port: false,
            token: &token,
            seed: false,
        })
        .await;
    let body = parse_message(&reply).unwrap().body;
    assert!(matches!(body, Body::Response(_)), "{body:?}");
    let st = s.running.registry().scrape(&InfoHash(SECRET_IH)).unwrap();
    assert_eq!(
        st.complete + st.incomplete,
        1,
        "only the HTTP peer is stored"
    );
    s.running.stop().await;
}

#[tokio::test]
async fn ping_find_node_and_garbage() {
    let s = TestServer::start(test_config()).await;
    let mut k = Krpc::new(s.dht_v4()).await;
    let reply = k.query(Method::Ping).await;
    let msg = parse_message(&reply).unwrap();
    assert!(matches!(msg.body, Body::Response(_)));
    let reply = k
        .query(Method::FindNode {
            target: NodeId([1; 20]),
        })
        .await;
    let body = parse_message(&reply).unwrap().body;
    assert!(matches!(body, Body::Response(_)), "{body:?}");
    // Garbage gets silence (the node's own queries to us, such as a verification ping, are not
    // replies and do not count).
    k.sock.send_to(b"not bencode", k.node).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    let mut buf = [0u8; 2048];
    while let Ok(r) = tokio::time::timeout_at(deadline, k.sock.recv_from(&mut buf)).await {
        let (n, _) = r.unwrap();
        let msg = parse_message(&buf[..n]).unwrap();
        assert!(
            matches!(msg.body, Body::Query(_)),
            "garbage was answered: {msg:?}"
        );
    }
    s.running.stop().await;
}
