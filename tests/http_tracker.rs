//! End-to-end tests of the HTTP tracker: a real server on loopback port 0, driven over TCP.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use serde_bencode::value::Value;

const IH: [u8; 20] = [0x11; 20];

fn pid(n: u8) -> [u8; 20] {
    let mut id = *b"-SW0001-000000000000";
    id[19] = n;
    id
}

fn v4(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test]
async fn two_peers_see_each_other_and_counts_are_right() {
    let s = TestServer::start(test_config()).await;
    let addr = s.http_v4();

    // A leecher arrives first: nobody to see yet, but `peers` is always sent.
    let r = get(
        addr,
        &announce_url(IH, pid(1), 6001, 1000, "&event=started"),
    )
    .await;
    let d = r.bencode();
    assert_eq!(failure(&r), None);
    assert_eq!(bytes(&d, "peers"), b"");
    assert_eq!(int(&d, "complete"), 0);
    assert_eq!(int(&d, "incomplete"), 1);
    assert_eq!(int(&d, "interval"), 1800);
    assert!(int(&d, "min interval") <= int(&d, "interval"));

    // A seeder arrives: it sees the leecher, never itself.
    let d = get(addr, &announce_url(IH, pid(2), 6002, 0, "&event=started"))
        .await
        .bencode();
    assert_eq!(peers_v4(bytes(&d, "peers")), vec![v4(6001)]);
    assert_eq!((int(&d, "complete"), int(&d, "incomplete")), (1, 1));

    // The leecher re-announces and sees the seeder.
    let d = get(addr, &announce_url(IH, pid(1), 6001, 1000, ""))
        .await
        .bencode();
    assert_eq!(peers_v4(bytes(&d, "peers")), vec![v4(6002)]);

    // A second seeder is given leechers only: not the first seeder.
    let d = get(addr, &announce_url(IH, pid(3), 6003, 0, ""))
        .await
        .bencode();
    assert_eq!(peers_v4(bytes(&d, "peers")), vec![v4(6001)]);
    assert_eq!((int(&d, "complete"), int(&d, "incomplete")), (2, 1));
    s.running.stop().await;
}

#[tokio::test]
async fn completed_is_counted_once_and_stop_removes() {
    let s = TestServer::start(test_config()).await;
    let addr = s.http_v4();
    get(addr, &announce_url(IH, pid(1), 6001, 10, "&event=started")).await;
    get(addr, &announce_url(IH, pid(2), 6002, 10, "&event=started")).await;
    for _ in 0..3 {
        let d = get(addr, &announce_url(IH, pid(1), 6001, 0, "&event=completed"))
            .await
            .bencode();
        assert_eq!(int(&d, "downloaded"), 1, "completed counts once per peer");
        assert_eq!((int(&d, "complete"), int(&d, "incomplete")), (1, 1));
    }

    // Stop: the peer is removed and gets no peers back.
    let d = get(addr, &announce_url(IH, pid(1), 6001, 0, "&event=stopped"))
        .await
        .bencode();
    assert_eq!(bytes(&d, "peers"), b"");
    assert_eq!((int(&d, "complete"), int(&d, "incomplete")), (0, 1));
    let d = get(addr, &announce_url(IH, pid(2), 6002, 10, ""))
        .await
        .bencode();
    assert_eq!(bytes(&d, "peers"), b"", "the stopped peer is gone");
    assert_eq!(int(&d, "downloaded"), 1, "downloaded survives the peer");
    s.running.stop().await;
}

#[tokio::test]
async fn peers_expire_when_time_moves_past_the_timeout() {
    let s = TestServer::start(test_config()).await;
    let addr = s.http_v4();
    get(addr, &announce_url(IH, pid(1), 6001, 10, "")).await;
    s.clock.advance(2000);
    get(addr, &announce_url(IH, pid(2), 6002, 10, "")).await;
    let scrape = format!("/scrape?info_hash={}", enc(&IH));
    assert_eq!(
        int(
            &files(&get(addr, &scrape).await)[&IH.to_vec()],
            "incomplete"
        ),
        2
    );

    // Past peer 1's timeout (2700 s) but not peer 2's: the sweeper removes only peer 1.
    s.clock.advance(1000);
    let expired = wait_until(Duration::from_secs(10), || async {
        int(
            &files(&get(addr, &scrape).await)[&IH.to_vec()],
            "incomplete",
        ) == 1
    })
    .await;
    assert!(expired, "peer 1 was not expired");
    let d = get(addr, &announce_url(IH, pid(3), 6003, 10, ""))
        .await
        .bencode();
    assert_eq!(peers_v4(bytes(&d, "peers")), vec![v4(6002)]);

    // Everyone times out: the swarm is dropped.
    s.clock.advance(10_000);
    let dropped = wait_until(Duration::from_secs(10), || async {
        s.running.registry().counts().torrents == 0
    })
    .await;
    assert!(dropped, "the empty swarm was not dropped");
    s.running.stop().await;
}

fn files(
    r: &Reply,
) -> std::collections::BTreeMap<Vec<u8>, std::collections::BTreeMap<Vec<u8>, Value>> {
    match r.bencode().get(&b"files"[..]) {
        Some(Value::Dict(f)) => f
            .iter()
            .map(|(k, v)| match v {
                Value::Dict(d) => (k.clone(), d.clone().into_iter().collect()),
                other => panic!("file entry is not a dict: {other:?}"),
            })
            .collect(),
        other => panic!("no files dict: {other:?} in {:?}", r.text()),
    }
}

#[tokio::test]
async fn scrape_answers_many_hashes_with_zeros_for_unknown() {
    let s = TestServer::start(test_config()).await;
    let addr = s.http_v4();
    let other = [0x22; 20];
    let unknown = [0x33; 20];
    get(addr, &announce_url(IH, pid(1), 6001, 0, "&event=completed")).await;
    get(addr, &announce_url(IH, pid(2), 6002, 5, "")).await;
    get(addr, &announce_url(other, pid(3), 6003, 5, "&event=paused")).await;

    let url = format!(
        "/scrape?info_hash={}&info_hash={}&info_hash={}",
        enc(&unknown),
        enc(&IH),
        enc(&other)
    );
    let f = files(&get(addr, &url).await);
    assert_eq!(f.len(), 3);
    let ih = &f[&IH.to_vec()];
    assert_eq!(
        (
            int(ih, "complete"),
            int(ih, "incomplete"),
            int(ih, "downloaded")
        ),
        (1, 1, 1)
    );
    assert_eq!(int(ih, "downloaders"), 1);
    // BEP 21: a paused peer is incomplete but not downloading.
    let o = &f[&other.to_vec()];
    assert_eq!((int(o, "incomplete"), int(o, "downloaders")), (1, 0));
    let u = &f[&unknown.to_vec()];
    assert_eq!(
        (
            int(u, "complete"),
            int(u, "incomplete"),
            int(u, "downloaded")
        ),
        (0, 0, 0)
    );

    // The passkey form routes too, and the scrape cap is enforced.
    let f = files(&get(addr, &format!("/somekey/scrape?info_hash={}", enc(&IH))).await);
    assert_eq!(f.len(), 1);
    let many: String = (0..65u8)
        .map(|i| format!("info_hash={}&", enc(&[i; 20])))
        .collect();
    let r = get(addr, &format!("/scrape?{many}")).await;
    assert!(
        failure(&r).unwrap().contains("too many"),
        "{:?}",
        failure(&r)
    );
    // Full scrape is off by default.
    let r = get(addr, "/scrape").await;
    assert!(
        failure(&r).unwrap().contains("full scrape"),
        "{:?}",
        failure(&r)
    );
    s.running.stop().await;
}

#[tokio::test]
async fn full_scrape_when_enabled() {
    let mut c = test_config();
    c.http.full_scrape = true;
    let s = TestServer::start(c).await;
    let addr = s.http_v4();
    for i in 0..5u8 {
        get(
            addr,
            &announce_url([i; 20], pid(i), 6000 + u16::from(i), 1, ""),
        )
        .await;
    }
    let f = files(&get(addr, "/scrape").await);
    assert_eq!(f.len(), 5);
    s.running.stop().await;
}

#[tokio::test]
async fn compact_zero_gives_dicts_and_peer_ids_follow_the_config() {
    for store_ids in [false, true] {
        let mut c = test_config();
        c.registry.store_peer_ids = store_ids;
        let s = TestServer::start(c).await;
        let addr = s.http_v4();
        get(addr, &announce_url(IH, pid(1), 6001, 10, "")).await;
        for no_peer_id in [false, true] {
            let extra = if no_peer_id {
                "&compact=0&no_peer_id=1"
            } else {
                "&compact=0"
            };
            let d = get(addr, &announce_url(IH, pid(2), 6002, 10, extra))
                .await
                .bencode();
            let Some(Value::List(list)) = d.get(&b"peers"[..]) else {
                panic!("compact=0 must give a list of dicts: {d:?}");
            };
            assert_eq!(list.len(), 1);
            let Value::Dict(p) = &list[0] else {
                panic!("peer entry is not a dict")
            };
            let p: std::collections::BTreeMap<_, _> = p.clone().into_iter().collect();
            assert_eq!(bytes(&p, "ip"), b"127.0.0.1");
            assert_eq!(int(&p, "port"), 6001);
            let want_id = store_ids && !no_peer_id;
            assert_eq!(
                p.contains_key(&b"peer id"[..]),
                want_id,
                "store={store_ids} no_peer_id={no_peer_id}"
            );
            if want_id {
                assert_eq!(bytes(&p, "peer id"), &pid(1));
            }
        }
        s.running.stop().await;
    }
}

#[tokio::test]
async fn ipv6_peers_come_in_peers6_and_families_stay_apart() {
    let s = TestServer::start(test_config()).await;
    let (a4, a6) = (s.http_v4(), s.http_v6());
    get(a6, &announce_url(IH, pid(1), 7001, 10, "")).await;
    get(a4, &announce_url(IH, pid(2), 7002, 10, "")).await;
    let d = get(a6, &announce_url(IH, pid(3), 7003, 10, ""))
        .await
        .bencode();
    assert_eq!(bytes(&d, "peers"), b"", "`peers` is always present");
    let six = peers_v6(bytes(&d, "peers6"));
    assert_eq!(six, vec!["[::1]:7001".parse::<SocketAddr>().unwrap()]);
    // Counts cover both families.
    assert_eq!(int(&d, "incomplete"), 3);
    // An IPv4 client gets only IPv4 peers.
    let d = get(a4, &announce_url(IH, pid(4), 7004, 10, ""))
        .await
        .bencode();
    assert_eq!(peers_v4(bytes(&d, "peers")), vec![v4(7002)]);
    assert!(!d.contains_key(&b"peers6"[..]));
    s.running.stop().await;
}

#[tokio::test]
async fn forwarding_headers_are_trusted_only_from_trusted_proxies() {
    let mut c = test_config();
    c.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let s = TestServer::start(c).await;
    let (a4, a6) = (s.http_v4(), s.http_v6());
    // From the trusted proxy: the rightmost untrusted X-Forwarded-For entry is the client.
    get_with(
        a4,
        &announce_url(IH, pid(1), 8001, 10, ""),
        &[("X-Forwarded-For", "198.51.100.7, 203.0.113.9, 127.0.0.1")],
    )
    .await;
    // From ::1, which is not trusted: the header is ignored.
    get_with(
        a6,
        &announce_url(IH, pid(2), 8002, 10, ""),
        &[("X-Forwarded-For", "2001:db8::66")],
    )
    .await;
    // X-Real-IP from the trusted proxy.
    get_with(
        a4,
        &announce_url(IH, pid(3), 8003, 10, ""),
        &[("X-Real-IP", "192.0.2.44")],
    )
    .await;
    let d = get(a4, &announce_url(IH, pid(4), 8004, 10, "&numwant=10"))
        .await
        .bencode();
    let mut got = peers_v4(bytes(&d, "peers"));
    got.sort();
    let want: Vec<SocketAddr> = vec![
        "192.0.2.44:8003".parse().unwrap(),
        "203.0.113.9:8001".parse().unwrap(),
    ];
    assert_eq!(got, want);
    let d = get(a6, &announce_url(IH, pid(5), 8005, 10, ""))
        .await
        .bencode();
    assert_eq!(
        peers_v6(bytes(&d, "peers6")),
        vec!["[::1]:8002".parse().unwrap()]
    );

    // A trusted proxy sending garbage gets a failure, not a guess.
    let r = get_with(
        a4,
        &announce_url(IH, pid(6), 8006, 10, ""),
        &[("X-Forwarded-For", "junk")],
    )
    .await;
    assert_eq!(
        failure(&r).as_deref(),
        Some("invalid X-Forwarded-For header")
    );
    s.running.stop().await;
}

#[tokio::test]
async fn ip_param_is_ignored_unless_enabled() {
    for allow in [false, true] {
        let mut c = test_config();
        c.http.allow_ip_param = allow;
        let s = TestServer::start(c).await;
        let a = s.http_v4();
        get(a, &announce_url(IH, pid(1), 9001, 10, "&ip=192.0.2.1")).await;
        let d = get(a, &announce_url(IH, pid(2), 9002, 10, ""))
            .await
            .bencode();
        let want: SocketAddr = if allow {
            "192.0.2.1:9001".parse().unwrap()
        } else {
            v4(9001)
        };
        assert_eq!(peers_v4(bytes(&d, "peers")), vec![want]);
        s.running.stop().await;
    }
}

#[tokio::test]
async fn bad_requests_get_precise_failure_reasons() {
    let s = TestServer::start(test_config()).await;
    let a = s.http_v4();
    let ih = enc(&IH);
    let id = enc(&pid(1));
    let cases: Vec<(String, &str)> = vec![
        (
            format!("/announce?peer_id={id}&port=1&left=0"),
            "missing info_hash",
        ),
        (
            format!("/announce?info_hash={ih}&port=1&left=0"),
            "missing peer_id",
        ),
        (
            format!("/announce?info_hash={ih}&peer_id={id}&left=0"),
            "missing port",
        ),
        (
            format!("/announce?info_hash=%11%11&peer_id={id}&port=1&left=0"),
            "info_hash",
        ),
        (
            format!("/announce?info_hash={ih}&peer_id={id}&port=99999&left=0"),
            "port",
        ),
        (
            format!("/announce?info_hash={ih}&peer_id={id}&port=1&left=-1"),
            "left",
        ),
        (
            format!("/announce?info_hash={ih}&peer_id={id}&port=1&left=0&event=bogus"),
            "event",
        ),
        (
            format!("/announce?info_hash=%zz&peer_id={id}&port=1&left=0"),
            "info_hash",
        ),
    ];
    for (url, needle) in cases {
        let r = get(a, &url).await;
        let reason = failure(&r).unwrap_or_else(|| panic!("no failure for {url}: {:?}", r.text()));
        assert!(
            reason.contains(needle),
            "{url}: {reason:?} should mention {needle:?}"
        );
        let d = r.bencode();
        assert!(!d.contains_key(&b"peers"[..]), "a failure carries no peers");
    }
    assert_eq!(
        s.running.registry().counts().torrents,
        0,
        "nothing was stored"
    );

    // Unknown paths and methods are HTTP errors.
    assert_eq!(get(a, "/nothing").await.status, 404);
    let mut conn = Conn::open(a).await;
    let r = conn
        .send_raw(b"POST /announce HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .await;
    assert_eq!(r.status, 405);
    // An absurd request head is refused without being read whole.
    let huge = format!("/announce?x={}", "a".repeat(100_000));
    let mut conn = Conn::open(a).await;
    let r = conn
        .send_raw(format!("GET {huge} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await;
    assert!(r.status == 414 || r.status == 431, "status {}", r.status);
    s.running.stop().await;
}

#[tokio::test]
async fn keep_alive_serves_many_requests_on_one_connection_and_echoes_tracker_id() {
    let s = TestServer::start(test_config()).await;
    let mut conn = Conn::open(s.http_v4()).await;
    for i in 0..20u8 {
        let r = conn
            .get(
                &announce_url(IH, pid(i), 6000 + u16::from(i), 1, "&trackerid=abc%21"),
                &[],
            )
            .await;
        let d = r.bencode();
        assert_eq!(int(&d, "incomplete"), i64::from(i) + 1);
        assert_eq!(bytes(&d, "tracker id"), b"abc!");
    }
    s.running.stop().await;
}

#[tokio::test]
async fn torrent_limit_refuses_new_torrents_only() {
    let mut c = test_config();
    c.registry.max_torrents = 2;
    let s = TestServer::start(c).await;
    let a = s.http_v4();
    for i in 0..2u8 {
        let r = get(a, &announce_url([i; 20], pid(i), 6000, 1, "")).await;
        assert_eq!(failure(&r), None);
    }
    let r = get(a, &announce_url([9; 20], pid(9), 6000, 1, "")).await;
    assert!(failure(&r).unwrap().contains("full"), "{:?}", failure(&r));
    // Tracked torrents keep working.
    let r = get(a, &announce_url([0; 20], pid(7), 6007, 1, "")).await;
    assert_eq!(failure(&r), None);
    s.running.stop().await;
}

#[tokio::test]
async fn peer_limit_serves_but_does_not_store_with_a_warning() {
    let mut c = test_config();
    c.registry.max_peers_per_torrent = 2;
    let s = TestServer::start(c).await;
    let a = s.http_v4();
    get(a, &announce_url(IH, pid(1), 6001, 1, "")).await;
    get(a, &announce_url(IH, pid(2), 6002, 1, "")).await;
    let d = get(a, &announce_url(IH, pid(3), 6003, 1, ""))
        .await
        .bencode();
    assert_eq!(
        peers_v4(bytes(&d, "peers")).len(),
        2,
        "the extra peer is still served"
    );
    assert!(d.contains_key(&b"warning message"[..]));
    assert_eq!(int(&d, "incomplete"), 2, "but not stored");
    s.running.stop().await;
}

#[tokio::test]
async fn admin_endpoints_report_health_stats_and_metrics() {
    let s = TestServer::start(test_config()).await;
    let (a, admin) = (s.http_v4(), s.admin());
    get(a, &announce_url(IH, pid(1), 6001, 0, "")).await;
    get(a, &announce_url(IH, pid(2), 6002, 5, "")).await;
    get(a, "/announce?bad").await;
    get(a, &format!("/scrape?info_hash={}", enc(&IH))).await;

    assert_eq!(get(admin, "/healthz").await.status, 200);
    assert_eq!(get(admin, "/readyz").await.status, 200);
    let stats: serde_json::Value =
        serde_json::from_str(&get(admin, "/stats").await.text()).unwrap();
    assert_eq!(stats["torrents"], 1);
    assert_eq!(stats["peers"]["seeders"], 1);
    assert_eq!(stats["peers"]["leechers"], 1);

    let m = get(admin, "/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = m.text();
    for line in [
        "swarmd_requests_total{action=\"announce\",protocol=\"http\",result=\"ok\"} 2",
        "swarmd_requests_total{action=\"announce\",protocol=\"http\",result=\"bad_request\"} 1",
        "swarmd_requests_total{action=\"scrape\",protocol=\"http\",result=\"ok\"} 1",
        "swarmd_torrents 1",
        "swarmd_peers{ip_version=\"4\",kind=\"seeder\"} 1",
        "swarmd_peers{ip_version=\"4\",kind=\"leecher\"} 1",
        "swarmd_build_info{version=",
        "swarmd_request_duration_seconds_bucket{action=\"announce\",protocol=\"http\",le=",
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(line), "metrics lack {line:?}:\n{text}");
    }
    // No info hash or address ever appears in a label.
    assert!(!text.contains("127.0.0.1"));
    assert!(!text.to_lowercase().contains(&"11".repeat(20)));
    s.running.stop().await;
}

#[tokio::test]
async fn stop_drains_and_refuses_new_connections() {
    let s = TestServer::start(test_config()).await;
    let a = s.http_v4();
    let mut conn = Conn::open(a).await;
    assert_eq!(
        conn.get(&announce_url(IH, pid(1), 6001, 1, ""), &[])
            .await
            .status,
        200
    );
    tokio::time::timeout(Duration::from_secs(5), s.running.stop())
        .await
        .expect("stop is bounded");
    assert!(
        tokio::net::TcpStream::connect(a).await.is_err(),
        "listener closed"
    );
}
