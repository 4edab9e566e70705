//! Unit tests of the DHT client against fake nodes on loopback sockets.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swarmd_proto::krpc::{
    parse_message, write_compact_addr, write_error, write_response, Body, Method, ResponseFields,
};
use swarmd_proto::{InfoHash, NodeId};
use tokio::net::UdpSocket;

use super::{DhtClient, DhtConfig, DhtError};

fn fast() -> DhtConfig {
    DhtConfig {
        query_timeout: Duration::from_millis(300),
        deadline: Duration::from_secs(5),
        ..DhtConfig::default()
    }
}

async fn client() -> DhtClient {
    DhtClient::bind_with("127.0.0.1:0".parse().unwrap(), fast())
        .await
        .unwrap()
}

/// What the fake node saw: (method name, read_only, port, implied_port) per query.
type Seen = Arc<Mutex<Vec<(Vec<u8>, bool, u16, bool)>>>;

/// A fake node; `hostile` first sends garbage before each real reply.
async fn fake_node(values: Vec<SocketAddr>, hostile: bool) -> (SocketAddr, Seen) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let Ok(msg) = parse_message(&buf[..n]) else {
                continue;
            };
            let Body::Query(q) = msg.body else { continue };
            let (port, implied) = match q.method {
                Method::AnnouncePeer {
                    port, implied_port, ..
                } => (port, implied_port),
                _ => (0, false),
            };
            log.lock()
                .unwrap()
                .push((q.method.name().to_vec(), msg.read_only, port, implied));
            let tid = msg.transaction_id.to_vec();
            if hostile {
                let garbage: [&[u8]; 5] = [
                    b"\xff\x00garbage",
                    b"d1:rd2:id3:abce1:t2:zz1:y1:re",
                    b"de",
                    b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:qq1:y1:qe",
                    b"li1ei2ei3ee",
                ];
                for g in garbage {
                    let _ = sock.send_to(g, from).await;
                }
                // The right transaction id from the wrong address: ignored.
                let mut spoof = Vec::new();
                write_error(&mut spoof, &tid, None, None, 201, "spoofed");
                let _ = other.send_to(&spoof, from).await;
                // A reply with a hostile node list (port 0, unspecified address, truncated).
                let mut nodes = vec![0u8; 26 * 2 + 7];
                nodes[20..26].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
                let mut bad = Vec::new();
                write_response(
                    &mut bad,
                    b"\x00\x00\x00",
                    None,
                    None,
                    &ResponseFields {
                        nodes: &nodes,
                        ..ResponseFields::new(NodeId([7; 20]))
                    },
                );
                let _ = sock.send_to(&bad, from).await;
            }
            let mut vals = Vec::new();
            for v in &values {
                write_compact_addr(&mut vals, *v);
            }
            let mut out = Vec::new();
            write_response(
                &mut out,
                &tid,
                Some(from),
                None,
                &ResponseFields {
                    values: &vals,
                    token: Some(b"tok"),
                    ..ResponseFields::new(NodeId([9; 20]))
                },
            );
            let _ = sock.send_to(&out, from).await;
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn lookup_collects_peers_and_tokens_read_only() {
    let peer: SocketAddr = "10.0.0.1:6881".parse().unwrap();
    let (node, seen) = fake_node(vec![peer], false).await;
    let c = client().await;
    let l = c.get_peers(&[node], InfoHash([1; 20])).await.unwrap();
    assert_eq!(l.peers, vec![peer]);
    assert_eq!(l.nodes_with_tokens, vec![(node, b"tok".to_vec())]);
    assert_eq!(l.reported_addr, Some(c.local_addr().unwrap()));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, b"get_peers");
    assert!(seen[0].1, "queries carry ro=1");
}

#[tokio::test]
async fn hostile_replies_are_ignored() {
    let peer: SocketAddr = "10.0.0.2:51413".parse().unwrap();
    let (node, _) = fake_node(vec![peer], true).await;
    let c = client().await;
    let l = c.get_peers(&[node], InfoHash([2; 20])).await.unwrap();
    assert_eq!(l.peers, vec![peer]);
    let n = c
        .announce(&[node], InfoHash([2; 20]), Some(7000))
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn announce_sends_port_or_implied_port() {
    let (node, seen) = fake_node(Vec::new(), false).await;
    let c = client().await;
    assert_eq!(
        c.announce(&[node], InfoHash([3; 20]), Some(7001))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        c.announce(&[node], InfoHash([3; 20]), None).await.unwrap(),
        1
    );
    let seen = seen.lock().unwrap();
    let ann: Vec<_> = seen.iter().filter(|s| s.0 == b"announce_peer").collect();
    assert_eq!(ann.len(), 2);
    assert_eq!((ann[0].2, ann[0].3), (7001, false));
    assert!(ann[1].3, "implied_port");
    assert!(ann.iter().all(|s| s.1));
}

#[tokio::test]
async fn silent_node_gives_no_response_and_empty_bootstrap_errors() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let c = client().await;
    let err = c
        .get_peers(&[silent.local_addr().unwrap()], InfoHash([4; 20]))
        .await
        .unwrap_err();
    assert!(matches!(err, DhtError::NoResponse), "{err}");
    let err = c.get_peers(&[], InfoHash([4; 20])).await.unwrap_err();
    assert!(matches!(err, DhtError::NoBootstrap), "{err}");
}

#[test]
fn self_detection() {
    let me: SocketAddr = "192.0.2.1:7001".parse().unwrap();
    assert!(super::is_self(me, Some(me), 7001));
    assert!(!super::is_self(
        me,
        Some("192.0.2.2:1".parse().unwrap()),
        7001
    ));
    assert!(!super::is_self(me, Some(me), 7002));
}
