//! End-to-end tests of the DHT node inside `swarmd serve`: KRPC over real UDP sockets on
//! loopback, sharing the swarm registry with the trackers, and never exposing private torrents.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use swarmd_proto::krpc::{parse_message, write_query, Body, Method, Want};
use swarmd_proto::{InfoHash, NodeId};
use swarmd_swarm::access::{Access, AccessPolicy, AccessRequest};

const IH: [u8; 20] = [0x5a; 20];
const SECRET_IH: [u8; 20] = [0x77; 20];

/// A KRPC client socket on loopback.
struct Krpc {
    sock: tokio::net::UdpSocket,
    node: SocketAddr,
    id: NodeId,
    tid: u16,
}

impl Krpc {
    async fn new(node: SocketAddr) -> Self {
        Self {
            sock: tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            node,
            id: NodeId([0x33; 20]),
            tid: 0,
        }
    }

    /// Sends a query and returns the raw reply (panics on silence).
    async fn query(&mut self, method: Method<'_>) -> Vec<u8> {
        self.tid += 1;
        let mut p = Vec::new();
        write_query(
            &mut p,
            &self.tid.to_be_bytes(),
            self.id,
            &method,
            Want::default(),
            false,
            None,
        );
        self.sock.send_to(&p, self.node).await.unwrap();
        // The node may query us too (it pings new contacts to verify them): skip those, and
        // return the message carrying our transaction id.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let mut buf = vec![0u8; 4096];
            let (n, _) = tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf))
                .await
                .expect("a KRPC reply within 5 s")
                .unwrap();
            buf.truncate(n);
            let ours = matches!(
                parse_message(&buf),
                Ok(m) if m.transaction_id == self.tid.to_be_bytes() && !matches!(m.body, Body::Query(_))
            );
            if ours {
                return buf;
            }
        }
    }

    /// get_peers: (values, token).
    async fn get_peers(&mut self, ih: [u8; 20]) -> (Vec<SocketAddr>, Vec<u8>) {
        let reply = self
            .query(Method::GetPeers {
                info_hash: InfoHash(ih),
                noseed: false,
                scrape: false,
            })
            .await;
        let msg = parse_message(&reply).unwrap();
        let Body::Response(r) = msg.body else {
            panic!("get_peers answered with {:?}", msg.body)
        };
        // BEP 42: every reply tells the requester its address.
        assert_eq!(msg.ip, Some(self.sock.local_addr().unwrap()));
        (
            r.values.iter().collect(),
            r.token.unwrap_or_default().to_vec(),
        )
    }
}

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
