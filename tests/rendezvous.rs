//! Generic rendezvous (`swarmd_client_core::rendezvous` and `swarmd rendezvous`) end to end
//! against the in-process server: through the HTTP and UDP trackers and through our DHT node,
//! which shares one swarm registry with the trackers.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::{test_config, TestServer};
use swarmd_client_core::dht::{DhtClient, DhtConfig};
use swarmd_client_core::rendezvous::{
    rendezvous_dht_with, rendezvous_tracker, rendezvous_tracker_with, topic_hash,
};
use swarmd_client_core::tracker::{ClientConfig, TrackerClient};

fn lo(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

async fn dht_client() -> DhtClient {
    let config = DhtConfig {
        query_timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(10),
        ..DhtConfig::default()
    };
    DhtClient::bind_with(lo(0), config).await.unwrap()
}

/// Runs the `swarmd` binary with `args` off the runtime (the server lives in this process)
/// and returns its standard output; fails on a non-zero exit.
async fn swarmd(args: Vec<String>) -> String {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_swarmd"))
            .args(&args)
            .output()
            .expect("swarmd runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "swarmd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_participants_meet_through_http_and_udp_trackers() {
    let s = TestServer::start(test_config()).await;
    let client = TrackerClient::new(ClientConfig {
        http_timeout: Duration::from_secs(5),
        udp_base_timeout: Duration::from_millis(500),
        udp_max_retries: 3,
        ..ClientConfig::default()
    });
    for (url, topic) in [
        (format!("http://{}/announce", s.http_v4()), "chat/room-http"),
        (format!("udp://{}/announce", s.udp_v4()), "chat/room-udp"),
    ] {
        let a = rendezvous_tracker_with(&client, &url, topic, 7001)
            .await
            .unwrap();
        assert!(a.is_empty(), "{url}: first participant alone: {a:?}");
        let b = rendezvous_tracker_with(&client, &url, topic, 7002)
            .await
            .unwrap();
        assert_eq!(b, vec![lo(7001)], "{url}");
        let a = rendezvous_tracker(&url, topic, 7001).await.unwrap();
        assert_eq!(a, vec![lo(7002)], "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_meet_through_our_dht_node_sharing_the_tracker_registry() {
    let s = TestServer::start(test_config()).await;
    let bootstrap = [s.dht_v4()];
    let topic = "swarmd/rendezvous-dht";

    // A peer joins through the HTTP tracker under the topic's hash.
    let url = format!("http://{}/announce", s.http_v4());
    rendezvous_tracker(&url, topic, 7003).await.unwrap();

    let a = dht_client().await;
    let accepted = a.announce(&bootstrap, topic_hash(topic), Some(7001)).await;
    assert_eq!(accepted.unwrap(), 1, "our node accepts A's announce");

    let b = dht_client().await;
    let peers = rendezvous_dht_with(&b, &bootstrap, topic, 7002)
        .await
        .unwrap();
    assert!(peers.contains(&lo(7001)), "B finds A: {peers:?}");
    assert!(
        peers.contains(&lo(7003)),
        "B finds the HTTP peer: {peers:?}"
    );
    assert!(!peers.contains(&lo(7002)), "B is not told about itself");

    // A finds B in turn, and the tracker sees the DHT announces (one registry).
    let found = a.get_peers(&bootstrap, topic_hash(topic)).await.unwrap();
    assert!(found.peers.contains(&lo(7002)), "{found:?}");
    let over_http = rendezvous_tracker(&url, topic, 7004).await.unwrap();
    for p in [7001, 7002, 7003] {
        assert!(over_http.contains(&lo(p)), "{p} in {over_http:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarmd_rendezvous_prints_the_hash_and_the_other_peer() {
    let s = TestServer::start(test_config()).await;
    let topic = "cli-topic";
    let hash = topic_hash(topic).to_string();

    let url = format!("http://{}/announce", s.http_v4());
    rendezvous_tracker(&url, topic, 7001).await.unwrap();
    let out = swarmd(
        ["rendezvous", topic, "--tracker", &url, "--port", "7002"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [format!("info hash: {hash}").as_str(), "127.0.0.1:7001"]
    );

    let dht = s.dht_v4().to_string();
    let out = swarmd(
        ["rendezvous", topic, "--dht", &dht, "--port", "7005"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert!(out.starts_with(&format!("info hash: {hash}\n")), "{out}");
    assert!(out.lines().any(|l| l == "127.0.0.1:7002"), "{out}");
    assert!(!out.lines().any(|l| l == "127.0.0.1:7005"), "{out}");

    // `swarmd announce --dht` reaches the same registry.
    let out = swarmd(
        [
            "announce",
            "--dht",
            &dht,
            "--info-hash",
            &hash,
            "--port",
            "7006",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert!(out.contains("nodes accepted: 1\n"), "{out}");
    assert!(out.lines().any(|l| l == "127.0.0.1:7001"), "{out}");
    let after = rendezvous_tracker(&url, topic, 7007).await.unwrap();
    assert!(after.contains(&lo(7006)), "{after:?}");
}
