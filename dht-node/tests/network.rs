//! An in-process network of 50 DHT nodes, each a real [`DhtServer`] on its own loopback address
//! (127.0.0.1 to 127.0.0.50, port 0; Linux routes all of 127/8 to `lo`), bootstrapping from the
//! first: iterative lookups converge to the true closest nodes, and a peer announced from one
//! node is found from every other. Nothing leaves the machine; waits have deadlines, not sleeps.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarmd_dht_node::{DhtConfig, DhtDeps, DhtHandle, DhtServer, NodeInfo};
use swarmd_proto::{InfoHash, NodeId};
use swarmd_swarm::access::OpenPolicy;
use swarmd_swarm::clock::SystemClock;
use swarmd_swarm::metrics::Metrics;
use swarmd_swarm::{Registry, RegistryConfig};
use tokio_util::sync::CancellationToken;

const NODES: usize = 50;

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

struct Node {
    server: DhtServer,
    handle: DhtHandle,
    id: NodeId,
    addr: SocketAddr,
}

async fn start(i: usize, bootstrap: Option<SocketAddr>, stop: &CancellationToken) -> Node {
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, (i + 1) as u8));
    let config = DhtConfig {
        bootstrap_nodes: bootstrap.iter().map(|a| a.to_string()).collect(),
        node_id: Some(NodeId(rand::random())),
        ..DhtConfig::default()
    };
    let server = DhtServer::start(&[SocketAddr::new(ip, 0)], config, deps(), stop.clone()).unwrap();
    let handle = server.handle();
    let (id, _) = handle.stats().await.unwrap();
    let addr = server.local_addrs()[0];
    Node {
        server,
        handle,
        id,
        addr,
    }
}

/// Polls `check` until it holds or `within` passes.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The 8 ids closest to `target` among all nodes but `except`.
fn true_closest(nodes: &[Node], target: &NodeId, except: &NodeId) -> Vec<(NodeId, SocketAddr)> {
    let mut all: Vec<(NodeId, SocketAddr)> = nodes
        .iter()
        .filter(|n| n.id != *except)
        .map(|n| (n.id, n.addr))
        .collect();
    all.sort_by_key(|(id, _)| target.distance(id));
    all.truncate(8);
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_nodes_converge_and_find_an_announced_peer() {
    let t0 = Instant::now();
    let stop = CancellationToken::new();
    let mut nodes = vec![start(0, None, &stop).await];
    let boot = nodes[0].addr;
    for i in 1..NODES {
        nodes.push(start(i, Some(boot), &stop).await);
    }

    // Every routing table fills beyond one bucket.
    let handles: Vec<DhtHandle> = nodes.iter().map(|n| n.handle.clone()).collect();
    eventually(Duration::from_secs(20), "routing tables to fill", || {
        let handles = handles.clone();
        async move {
            for h in &handles {
                if h.stats().await.unwrap().1.routing_v4 < 8 {
                    return false;
                }
            }
            true
        }
    })
    .await;
    let settled = t0.elapsed();

    let mut lookups = Vec::new();
    // Lookups from several nodes converge to the true 8 closest of all 50.
    for from in [1, 13, 26, 38, 49] {
        let target = NodeId(rand::random());
        let want = true_closest(&nodes, &target, &nodes[from].id);
        let h = nodes[from].handle.clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut tries = 0;
        let got = loop {
            tries += 1;
            let r = h.find_node(target).await.unwrap();
            let got: Vec<(NodeId, SocketAddr)> = r
                .closest
                .iter()
                .map(|n: &NodeInfo| (n.id, n.addr))
                .collect();
            if got == want || Instant::now() > deadline {
                break got;
            }
        };
        assert_eq!(got, want, "lookup from node {from} did not converge");
        lookups.push(tries);
    }

    // A peer announced from node 7 is found by get_peers lookups from every other node.
    let ih = InfoHash([0x42; 20]);
    let announced = nodes[7]
        .handle
        .announce(ih, 6881, false, false)
        .await
        .unwrap();
    assert!(announced.announced >= 1, "{announced:?}");
    let peer = SocketAddr::new(nodes[7].addr.ip(), 6881);
    let mut tasks = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        if i == 7 {
            continue;
        }
        let h = n.handle.clone();
        tasks.push(tokio::spawn(async move {
            // Retried until a deadline only to ride out a slow scheduler; on loopback the
            // first lookup finds it.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let r = h.get_peers(ih).await.unwrap();
                let found = r.peers.contains(&peer);
                if found || Instant::now() > deadline {
                    return (i, found, r);
                }
            }
        }));
    }
    for t in tasks {
        let (i, found, r) = t.await.unwrap();
        assert!(found, "node {i} did not find the peer: {r:?}");
    }
    println!(
        "{NODES} nodes: tables filled after {:.2?}, lookups needed {lookups:?} tries, whole test {:.2?}",
        settled,
        t0.elapsed()
    );

    stop.cancel();
    for n in nodes {
        n.server.join().await;
    }
}
