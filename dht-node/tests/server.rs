//! The tokio driver: dual-stack sockets, and the node table saved on shutdown and loaded on
//! start. Loopback only; waits have deadlines.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarmd_dht_node::{DhtConfig, DhtDeps, DhtServer};
use swarmd_proto::krpc::{parse_message, write_query, Body, Method, Want};
use swarmd_proto::NodeId;
use swarmd_swarm::access::OpenPolicy;
use swarmd_swarm::clock::SystemClock;
use swarmd_swarm::metrics::Metrics;
use swarmd_swarm::{Registry, RegistryConfig};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

fn deps() -> DhtDeps {
    DhtDeps {
        registry: Arc::new(Registry::new(RegistryConfig {
            shards: 4,
            ..RegistryConfig::default()
        })),
        policy: Arc::new(OpenPolicy),
        clock: Arc::new(SystemClock::new()),
        metrics: Metrics::new().unwrap(),
    }
}

fn quiet() -> DhtConfig {
    DhtConfig {
        bootstrap_nodes: Vec::new(),
        ..DhtConfig::default()
    }
}

/// Sends a ping to `node` from `sock` and returns the parsed reply's `ip` and responder id.
async fn ping(sock: &UdpSocket, node: SocketAddr) -> (Option<SocketAddr>, NodeId) {
    let mut p = Vec::new();
    write_query(
        &mut p,
        b"pp",
        NodeId([9; 20]),
        &Method::Ping,
        Want::default(),
        false,
        None,
    );
    sock.send_to(&p, node).await.unwrap();
    let mut buf = [0u8; 1500];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("a reply within 5 s")
        .unwrap();
    assert_eq!(from, node);
    let msg = parse_message(&buf[..n]).unwrap();
    let Body::Response(r) = msg.body else {
        panic!("not a response: {msg:?}")
    };
    (msg.ip, r.id)
}

#[tokio::test]
async fn answers_over_ipv4_and_ipv6() {
    let stop = CancellationToken::new();
    let v6: SocketAddr = "[::1]:0".parse().unwrap();
    let v4: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = match DhtServer::start(&[v4, v6], quiet(), deps(), stop.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("no IPv6 loopback here ({e}); checking IPv4 only");
            DhtServer::start(&[v4], quiet(), deps(), stop.clone()).unwrap()
        }
    };
    let (id, _) = server.handle().stats().await.unwrap();
    for &addr in server.local_addrs() {
        let bind: SocketAddr = if addr.is_ipv4() { v4 } else { v6 };
        let sock = UdpSocket::bind(bind).await.unwrap();
        let (ip, responder) = ping(&sock, addr).await;
        assert_eq!(
            ip,
            Some(sock.local_addr().unwrap()),
            "BEP 42 ip over {addr}"
        );
        assert_eq!(responder, id);
    }
    // Two addresses of one family are refused.
    assert!(DhtServer::start(&[v4, v4], quiet(), deps(), stop.clone()).is_err());
    stop.cancel();
    server.join().await;
}

fn state_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("swarmd-dht-{name}-{}.bin", std::process::id()))
}

#[tokio::test]
async fn the_verified_table_survives_a_restart() {
    let path = state_path("restart");
    let _ = std::fs::remove_file(&path);
    let router_config = DhtConfig {
        bootstrap_mode: true,
        state_file: Some(path.clone()),
        node_id: None,
        ..quiet()
    };
    let stop = CancellationToken::new();
    let router = DhtServer::start(
        &["127.0.0.1:0".parse().unwrap()],
        router_config.clone(),
        deps(),
        stop.clone(),
    )
    .unwrap();
    let router_addr = router.local_addrs()[0];
    let (router_id, _) = router.handle().stats().await.unwrap();

    // Three nodes bootstrap from the router; it verifies them (pings) and admits them.
    let mut clients = Vec::new();
    for i in 0..3u8 {
        let c = DhtServer::start(
            &[SocketAddr::from(([127, 0, 0, 20 + i], 0))],
            DhtConfig {
                bootstrap_nodes: vec![router_addr.to_string()],
                ..DhtConfig::default()
            },
            deps(),
            stop.clone(),
        )
        .unwrap();
        clients.push(c);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while router.handle().stats().await.unwrap().1.verified_v4 < 3 {
        assert!(
            Instant::now() < deadline,
            "the router never verified its clients"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    router.join().await;
    for c in clients {
        c.join().await;
    }
    assert!(path.exists(), "no state file written");

    // Restarted: same id, same verified nodes, before any traffic.
    let stop = CancellationToken::new();
    let again = DhtServer::start(
        &["127.0.0.1:0".parse().unwrap()],
        router_config,
        deps(),
        stop.clone(),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (id, stats) = again.handle().stats().await.unwrap();
        if id == router_id && stats.verified_v4 == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "table not restored: {id} {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    again.join().await;

    // A corrupt file is ignored: the node starts empty, with a warning.
    std::fs::write(&path, b"not a node table").unwrap();
    let stop = CancellationToken::new();
    let fresh = DhtServer::start(
        &["127.0.0.1:0".parse().unwrap()],
        DhtConfig {
            bootstrap_mode: true,
            state_file: Some(path.clone()),
            ..quiet()
        },
        deps(),
        stop.clone(),
    )
    .unwrap();
    let (id, stats) = fresh.handle().stats().await.unwrap();
    assert_ne!(id, router_id);
    assert_eq!(stats.verified_v4, 0);
    stop.cancel();
    fresh.join().await;
    let _ = std::fs::remove_file(&path);
}
