//! End-to-end tests of the client-core tracker clients against our own HTTP and UDP trackers on
//! port 0, and against tiny fake UDP trackers for retransmit timing.

mod common;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{test_config, TestServer};
use swarmd_client_core::tracker::{
    AnnounceRequest, ClientConfig, Event, InfoHash, PeerId, Tiers, TrackerClient, TrackerError,
};
use swarmd_proto::udp;
use swarmd_swarm::access::{Access, AccessPolicy, AccessRequest};
use tokio::net::UdpSocket;

fn url(scheme: &str, addr: SocketAddr) -> String {
    format!("{scheme}://{addr}/announce")
}

fn req(hash: u8, peer: u8, port: u16, left: u64) -> AnnounceRequest {
    AnnounceRequest::new(InfoHash([hash; 20]), PeerId([peer; 20]), port, left)
}

fn fast() -> ClientConfig {
    ClientConfig {
        http_timeout: Duration::from_secs(5),
        udp_base_timeout: Duration::from_millis(200),
        udp_max_retries: 3,
        ..ClientConfig::default()
    }
}

/// Two peers announce to `tracker`; each sees the other (addresses as seen from `ip`).
async fn two_peers_see_each_other(client: &TrackerClient, tracker: &str, hash: u8, ip: &str) {
    let a = client
        .announce(tracker, &req(hash, 1, 7001, 0))
        .await
        .unwrap();
    assert!(a.peers.is_empty(), "{a:?}");
    let b = client
        .announce(tracker, &req(hash, 2, 7002, 100))
        .await
        .unwrap();
    let a_addr: SocketAddr = format!("{ip}:7001").parse().unwrap();
    let b_addr: SocketAddr = format!("{ip}:7002").parse().unwrap();
    assert_eq!(b.peers, vec![a_addr], "{b:?}");
    assert_eq!((b.complete, b.incomplete), (Some(1), Some(1)));
    assert!(b.interval > 0);
    let mut again = req(hash, 1, 7001, 0);
    again.event = Event::None;
    let a = client.announce(tracker, &again).await.unwrap();
    assert_eq!(a.peers, vec![b_addr], "{a:?}");
}

#[tokio::test]
async fn http_announce_v4_and_v6_peers_see_each_other() {
    let s = TestServer::start(test_config()).await;
    let client = TrackerClient::new(fast());
    two_peers_see_each_other(&client, &url("http", s.http_v4()), 1, "127.0.0.1").await;
    // Over IPv6 the peers come back in `peers6`.
    two_peers_see_each_other(&client, &url("http", s.http_v6()), 2, "[::1]").await;
}

#[tokio::test]
async fn udp_announce_v4_and_v6_reuse_the_connection_id() {
    let s = TestServer::start(test_config()).await;
    let client = TrackerClient::new(fast());
    two_peers_see_each_other(&client, &url("udp", s.udp_v4()), 3, "127.0.0.1").await;
    assert_eq!(
        client.udp_connects(),
        1,
        "three announces, one connect (v4)"
    );
    two_peers_see_each_other(&client, &url("udp", s.udp_v6()), 4, "[::1]").await;
    assert_eq!(
        client.udp_connects(),
        2,
        "one more connect for the v6 tracker"
    );
    // Three announces and one connect per tracker, no retransmit.
    assert_eq!(client.udp_sends(), 8);
}

#[tokio::test]
async fn udp_connection_id_expires() {
    let s = TestServer::start(test_config()).await;
    let client = TrackerClient::new(ClientConfig {
        udp_connection_ttl: Duration::from_millis(50),
        ..fast()
    });
    let u = url("udp", s.udp_v4());
    client.announce(&u, &req(5, 1, 7001, 0)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    client.announce(&u, &req(5, 1, 7001, 0)).await.unwrap();
    assert_eq!(client.udp_connects(), 2);
}

#[tokio::test]
async fn scrape_over_http_and_udp() {
    let s = TestServer::start(test_config()).await;
    let client = TrackerClient::new(fast());
    let h = url("http", s.http_v4());
    client.announce(&h, &req(6, 1, 7001, 0)).await.unwrap();
    client.announce(&h, &req(6, 2, 7002, 10)).await.unwrap();
    let hashes = [InfoHash([6; 20]), InfoHash([0x77; 20])];
    for tracker in [h, url("udp", s.udp_v4()), url("udp", s.udp_v6())] {
        let stats = client.scrape(&tracker, &hashes).await.unwrap();
        assert_eq!(stats.len(), 2, "{tracker}");
        assert_eq!(
            (stats[0].complete, stats[0].incomplete),
            (1, 1),
            "{tracker}"
        );
        assert_eq!(
            (stats[1].complete, stats[1].incomplete),
            (0, 0),
            "{tracker}"
        );
    }
    assert!(matches!(
        client
            .scrape(&format!("http://{}/nothing", s.http_v4()), &hashes)
            .await,
        Err(TrackerError::NoScrape)
    ));
}

/// Allows announces only with the passkey `secret`.
struct PasskeyPolicy;

impl AccessPolicy for PasskeyPolicy {
    fn announce(&self, req: &AccessRequest<'_>) -> Access {
        if req.passkey == Some(b"secret".as_slice()) {
            Access::Allow
        } else {
            Access::Deny(Cow::Borrowed("unknown passkey"))
        }
    }

    fn scrape(&self, req: &AccessRequest<'_>) -> Access {
        self.announce(req)
    }

    fn is_private(&self, _: &InfoHash) -> bool {
        false
    }
}

#[tokio::test]
async fn failure_reason_is_a_typed_error_and_passkey_path_works() {
    let s = TestServer::start_with_policy(test_config(), Arc::new(PasskeyPolicy)).await;
    let client = TrackerClient::new(fast());
    for tracker in [url("http", s.http_v4()), url("udp", s.udp_v4())] {
        match client.announce(&tracker, &req(7, 1, 7001, 0)).await {
            Err(TrackerError::Failure(m)) => assert!(m.contains("unknown passkey"), "{m}"),
            other => panic!("{tracker}: expected a failure, got {other:?}"),
        }
        let mut with_key = req(7, 1, 7001, 0);
        with_key.passkey = Some("secret".to_owned());
        client.announce(&tracker, &with_key).await.unwrap();
    }
    assert!(matches!(
        client
            .announce(
                &format!("https://{}/announce", s.http_v4()),
                &req(7, 1, 1, 0)
            )
            .await,
        Err(TrackerError::UnsupportedScheme(_))
    ));
}

/// A fake UDP tracker that drops the datagrams whose 0-based index is in `drop` and answers the
/// others (connect with id 42, announce with one peer). Returns its address and a handle giving
/// the arrival times of every datagram.
async fn fake_tracker(
    drop: &'static [usize],
) -> (SocketAddr, tokio::task::JoinHandle<Vec<Instant>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok(Ok((n, from))) =
            tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf)).await
        {
            seen.push(Instant::now());
            if drop.contains(&(seen.len() - 1)) {
                continue;
            }
            let mut out = Vec::new();
            match udp::parse_request(&buf[..n]) {
                Ok(udp::Request::Connect { transaction_id, .. }) => {
                    udp::write_connect_response(&mut out, transaction_id, 42);
                }
                Ok(udp::Request::Announce(a)) => {
                    assert_eq!(a.connection_id, 42);
                    udp::write_announce_response(
                        &mut out,
                        a.transaction_id,
                        900,
                        3,
                        4,
                        &[10, 0, 0, 1, 0x1a, 0xe1],
                    );
                }
                _ => udp::write_error_response(&mut out, 0, "bad request"),
            }
            socket.send_to(&out, from).await.unwrap();
        }
        seen
    });
    (addr, task)
}

#[tokio::test]
async fn udp_retransmits_with_the_configured_base_timeout() {
    // Drops the first connect and the first announce.
    let (addr, fake) = fake_tracker(&[0, 2]).await;
    let client = TrackerClient::new(ClientConfig {
        udp_base_timeout: Duration::from_millis(100),
        udp_max_retries: 4,
        ..ClientConfig::default()
    });
    let start = Instant::now();
    let r = client
        .announce(&format!("udp://{addr}"), &req(8, 1, 7001, 0))
        .await
        .unwrap();
    let took = start.elapsed();
    assert_eq!(r.interval, 900);
    assert_eq!((r.complete, r.incomplete), (Some(4), Some(3)));
    assert_eq!(
        r.peers,
        vec!["10.0.0.1:6881".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(client.udp_sends(), 4);
    assert_eq!(client.udp_connects(), 1);
    let seen = fake.await.unwrap();
    assert_eq!(seen.len(), 4);
    // Connect: try 0 waits 100 ms; try 1 (200 ms) is answered; the announce then goes out at
    // n = 1 (200 ms), is dropped, and is retransmitted.
    let gap1 = seen[1] - seen[0];
    let gap3 = seen[3] - seen[2];
    // Lower bounds only: load can stretch the gaps but never shorten them, so these cannot
    // fail spuriously (no upper time limits in tests). gap3 >= 2 * base shows the doubling.
    assert!(gap1 >= Duration::from_millis(95), "{gap1:?}");
    assert!(gap3 >= Duration::from_millis(195), "{gap3:?}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
}

#[tokio::test]
async fn udp_gives_up_after_the_last_retry() {
    let (addr, fake) = fake_tracker(&[0, 1, 2, 3, 4, 5]).await;
    let client = TrackerClient::new(ClientConfig {
        udp_base_timeout: Duration::from_millis(50),
        udp_max_retries: 2,
        ..ClientConfig::default()
    });
    let start = Instant::now();
    let r = client
        .announce(&format!("udp://{addr}/announce"), &req(9, 1, 7001, 0))
        .await;
    assert!(matches!(r, Err(TrackerError::Timeout)), "{r:?}");
    // 50 + 100 + 200 ms.
    assert!(start.elapsed() >= Duration::from_millis(350));
    assert_eq!(client.udp_sends(), 3);
    assert_eq!(fake.await.unwrap().len(), 3);
}

/// Runs `swarmd announce ARGS` off the runtime; its stdout, or a panic with its stderr.
async fn cli_announce(args: Vec<String>) -> String {
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_swarmd"))
            .arg("announce")
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn cli_announce_prints_counts_and_peers() {
    let s = TestServer::start(test_config()).await;
    let client = TrackerClient::new(fast());
    client
        .announce(&url("http", s.http_v4()), &req(0xab, 1, 7001, 0))
        .await
        .unwrap();
    let hex = "ab".repeat(20);
    for tracker in [url("http", s.http_v4()), url("udp", s.udp_v4())] {
        let out = cli_announce(vec![
            tracker.clone(),
            "--info-hash".into(),
            hex.clone(),
            "--port".into(),
            "7009".into(),
            "--left".into(),
            "5".into(),
            "--event".into(),
            "started".into(),
        ])
        .await;
        assert!(out.contains("seeders: 1\n"), "{tracker}: {out}");
        assert!(out.contains("\n127.0.0.1:7001\n"), "{tracker}: {out}");
    }
    let magnet = format!("magnet:?xt=urn:btih:{hex}");
    let out = cli_announce(vec![url("udp", s.udp_v6()), "--magnet".into(), magnet]).await;
    assert!(out.contains(&format!("info hash: {hex}")), "{out}");

    // A magnet link as the target: announced to its own trackers, the first that answers.
    // (`https` is refused at once as unsupported, so the fall-through costs no wait.)
    let mut enc = String::new();
    let mut target = format!("magnet:?xt=urn:btih:{hex}");
    for tr in [
        format!("https://{}/announce", s.http_v4()),
        url("http", s.http_v4()),
    ] {
        enc.clear();
        swarmd_proto::http::percent_encode_into(tr.as_bytes(), &mut enc);
        target.push_str(&format!("&tr={enc}"));
    }
    let out = cli_announce(vec![
        target,
        "--port".into(),
        "7010".into(),
        "--left".into(),
        "5".into(),
    ])
    .await;
    assert!(
        out.contains(&format!("tracker: {}\n", url("http", s.http_v4()))),
        "{out}"
    );
    assert!(out.contains("\n127.0.0.1:7001\n"), "{out}");
}

#[tokio::test]
async fn tiers_fall_through_and_promote_the_tracker_that_answered() {
    let s = TestServer::start(test_config()).await;
    let client = TrackerClient::new(fast());
    let live = url("udp", s.udp_v4());
    let mut tiers = Tiers::new(vec![
        vec![format!("https://{}/announce", s.http_v4()), live.clone()],
        vec![url("http", s.http_v4())],
    ]);
    let (used, r) = tiers.announce(&client, &req(10, 1, 7001, 0)).await.unwrap();
    assert_eq!(used, live);
    assert!(r.interval > 0);
    assert_eq!(tiers.tiers()[0][0], live, "{:?}", tiers.tiers());
}
