//! End-to-end tests of the UDP tracker (BEP 15, BEP 41): a real server on loopback port 0,
//! driven with real datagrams; time is a manual clock.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use swarmd_proto::udp::{parse_response, scrape_entries, Response};
use swarmd_proto::Event;

const IH: [u8; 20] = [0x42; 20];
/// How long a test waits to conclude that the server stays silent.
const SILENCE: Duration = Duration::from_millis(300);

fn pid(n: u8) -> [u8; 20] {
    let mut id = *b"-SW0001-000000000000";
    id[19] = n;
    id
}

#[tokio::test]
async fn connect_announce_scrape_over_ipv4_and_ipv6() {
    let s = TestServer::start(test_config()).await;
    for server in [s.udp_v4(), s.udp_v6()] {
        let v6 = server.is_ipv6();
        let entry = if v6 { 18 } else { 6 };
        let ih = if v6 { [0x66; 20] } else { IH };
        let mut a = UdpClient::new(server).await;
        let mut b = UdpClient::new(server).await;
        let ca = a.connect().await;
        let cb = b.connect().await;

        let reply = a
            .announce_raw(ca, &UdpAnnounce::new(ih, pid(1), 7001, 100))
            .await;
        assert_eq!(reply.len(), 20, "first peer: header only");
        let (leechers, seeders, peers) = udp_announce_reply(&reply);
        assert_eq!((leechers, seeders, peers.len()), (1, 0, 0));

        let reply = b
            .announce_raw(cb, &UdpAnnounce::new(ih, pid(2), 7002, 0))
            .await;
        assert_eq!(reply.len(), 20 + entry, "one peer of the packet's family");
        let (leechers, seeders, peers) = udp_announce_reply(&reply);
        assert_eq!((leechers, seeders), (1, 1));
        let seen = if v6 {
            peers_v6(&peers)
        } else {
            peers_v4(&peers)
        };
        let want: SocketAddr = if v6 { "[::1]:7001" } else { "127.0.0.1:7001" }
            .parse()
            .unwrap();
        assert_eq!(seen, vec![want]);

        // Scrape answers in request order, zeros for unknown hashes.
        let unknown = [0x99; 20];
        let reply = a.scrape_raw(ca, &[unknown, ih, unknown]).await.unwrap();
        assert_eq!(reply.len(), 8 + 3 * 12);
        let Response::Scrape { entries, .. } = parse_response(&reply).unwrap() else {
            panic!("not a scrape reply")
        };
        let e: Vec<_> = scrape_entries(entries)
            .map(|e| (e.seeders, e.completed, e.leechers))
            .collect();
        assert_eq!(e, vec![(0, 0, 0), (1, 0, 1), (0, 0, 0)]);

        // Stopping removes the peer and returns no peers.
        let mut stop = UdpAnnounce::new(ih, pid(2), 7002, 0);
        stop.event = Event::Stopped;
        let reply = b.announce_raw(cb, &stop).await;
        assert_eq!(udp_announce_reply(&reply), (1, 0, vec![]));
    }
    s.running.stop().await;
}

#[tokio::test]
async fn expired_future_and_forged_connection_ids_get_silence() {
    let mut c = test_config();
    c.udp.connection_id_lifetime_secs = 120;
    let s = TestServer::start(c).await;
    let mut a = UdpClient::new(s.udp_v4()).await;
    let id = a.connect().await;
    let ann = UdpAnnounce::new(IH, pid(1), 7001, 1);

    // Reused within its lifetime: accepted.
    s.clock.advance(100);
    let _ = a.announce_raw(id, &ann).await;

    // Forged: one bit flipped.
    let (_, p) = a.announce_packet(id ^ 1, &ann);
    assert_eq!(a.exchange(&p, SILENCE).await, None);

    // A client at another IP cannot use it (the id is bound to the source IP)...
    let other = UdpClient::new_from(s.udp_v4(), "127.0.0.2:0".parse().unwrap()).await;
    let (_, p) = a.announce_packet(id, &ann);
    assert_eq!(other.exchange(&p, SILENCE).await, None);
    // ...but another socket of the same IP may: clients share cached ids across sockets.
    let same_ip = UdpClient::new(s.udp_v4()).await;
    assert!(same_ip.exchange(&p, SILENCE).await.is_some());

    // Expired.
    s.clock.advance(200);
    let (_, p) = a.announce_packet(id, &ann);
    assert_eq!(
        a.exchange(&p, SILENCE).await,
        None,
        "expired id must be refused"
    );

    // An id issued "in the future" (from a clock ahead of ours) is refused too.
    let future_id = a.connect().await;
    s.clock.set(1_000);
    let (_, p) = a.announce_packet(future_id, &ann);
    assert_eq!(
        a.exchange(&p, SILENCE).await,
        None,
        "future slot must be refused"
    );

    // A fresh id works again.
    let id = a.connect().await;
    let _ = a.announce_raw(id, &ann).await;
    s.running.stop().await;
}

#[tokio::test]
async fn garbage_gets_silence_and_authenticated_errors_get_error_packets() {
    let s = TestServer::start(test_config()).await;
    let mut a = UdpClient::new(s.udp_v4()).await;
    for junk in [&b""[..], b"\x00", &[0u8; 15], &[0xffu8; 16], &[0u8; 200]] {
        assert_eq!(a.exchange(junk, SILENCE).await, None, "{junk:?}");
    }
    // Connect without the magic.
    let mut p = Vec::new();
    swarmd_proto::udp::write_connect_request(&mut p, 9);
    p[0] ^= 0xff;
    assert_eq!(a.exchange(&p, SILENCE).await, None);

    // With a valid id, a malformed announce (unknown event 9) gets an error packet.
    let id = a.connect().await;
    let (tid, mut p) = a.announce_packet(id, &UdpAnnounce::new(IH, pid(1), 7001, 1));
    p[80..84].copy_from_slice(&9u32.to_be_bytes());
    let reply = a
        .exchange(&p, Duration::from_secs(5))
        .await
        .expect("error reply");
    assert_eq!(&reply[..4], &3u32.to_be_bytes(), "action 3");
    assert_eq!(&reply[4..8], &tid.to_be_bytes());
    let msg = udp_error(&reply).unwrap();
    assert!(msg.contains("event"), "{msg}");
    s.running.stop().await;
}

#[tokio::test]
async fn replies_respect_the_size_budget_and_num_want() {
    let mut c = test_config();
    c.udp.max_reply_bytes = 20 + 6 * 10;
    c.tracker.default_numwant = 5;
    let s = TestServer::start(c).await;
    let mut a = UdpClient::new(s.udp_v4()).await;
    let id = a.connect().await;
    for i in 0..30u8 {
        a.announce_raw(id, &UdpAnnounce::new(IH, pid(i), 7000 + u16::from(i), 1))
            .await;
    }
    let mut ann = UdpAnnounce::new(IH, pid(200), 8000, 1);
    ann.num_want = 0;
    let r = a.announce_raw(id, &ann).await;
    assert_eq!(r.len(), 20 + 6 * 5, "num_want <= 0 means the default");
    ann.num_want = 200;
    let r = a.announce_raw(id, &ann).await;
    assert_eq!(r.len(), 20 + 6 * 10, "capped by the reply budget");
    s.running.stop().await;
}

#[tokio::test]
async fn peers_cross_between_http_and_udp() {
    let s = TestServer::start(test_config()).await;
    // HTTP first, then UDP sees it.
    get(s.http_v4(), &announce_url(IH, pid(1), 6001, 5, "")).await;
    let mut u = UdpClient::new(s.udp_v4()).await;
    let id = u.connect().await;
    let r = u
        .announce_raw(id, &UdpAnnounce::new(IH, pid(2), 6002, 5))
        .await;
    let (leechers, _, peers) = udp_announce_reply(&r);
    assert_eq!(leechers, 2);
    assert_eq!(peers_v4(&peers), vec!["127.0.0.1:6001".parse().unwrap()]);
    // And HTTP sees the UDP peer.
    let d = get(
        s.http_v4(),
        &announce_url(IH, pid(3), 6003, 5, "&numwant=10"),
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
    // Same over IPv6.
    let mut u6 = UdpClient::new(s.udp_v6()).await;
    let id6 = u6.connect().await;
    get(s.http_v6(), &announce_url(IH, pid(4), 6004, 5, "")).await;
    let r = u6
        .announce_raw(id6, &UdpAnnounce::new(IH, pid(5), 6005, 5))
        .await;
    let (_, _, peers) = udp_announce_reply(&r);
    assert_eq!(peers_v6(&peers), vec!["[::1]:6004".parse().unwrap()]);
    s.running.stop().await;
}

#[tokio::test]
async fn bep41_url_data_routes_like_http_paths() {
    let s = TestServer::start(test_config()).await;
    let mut u = UdpClient::new(s.udp_v4()).await;
    let id = u.connect().await;
    let long_key = format!("/{}/announce", "k".repeat(100));
    for url in [
        &b"/announce"[..],
        b"/announce?passkey=x",
        b"/somekey/announce",
        long_key.as_bytes(),
    ] {
        let mut ann = UdpAnnounce::new(IH, pid(1), 7001, 1);
        ann.url = url;
        let r = u.announce_raw(id, &ann).await;
        assert!(
            udp_error(&r).is_none(),
            "{:?}: {:?}",
            String::from_utf8_lossy(url),
            udp_error(&r)
        );
    }
    s.running.stop().await;
}

#[tokio::test]
async fn udp_metrics_are_exported() {
    let s = TestServer::start(test_config()).await;
    let mut u = UdpClient::new(s.udp_v4()).await;
    let id = u.connect().await;
    u.announce_raw(id, &UdpAnnounce::new(IH, pid(1), 7001, 1))
        .await;
    let (_, p) = u.announce_packet(id ^ 0xff, &UdpAnnounce::new(IH, pid(1), 7001, 1));
    assert_eq!(u.exchange(&p, SILENCE).await, None);
    // Workers publish their counts when idle (within about 100 ms): poll with a deadline.
    let wanted = [
        "swarmd_requests_total{action=\"connect\",protocol=\"udp\",result=\"ok\"} 1",
        "swarmd_requests_total{action=\"announce\",protocol=\"udp\",result=\"ok\"} 1",
        "swarmd_requests_total{action=\"announce\",protocol=\"udp\",result=\"bad_connection_id\"} 1",
        // connect + announce + the forged announce in; connect + announce replies out.
        "swarmd_packets_received_total{protocol=\"udp\"} 3",
        "swarmd_packets_sent_total{protocol=\"udp\"} 2",
        "swarmd_bytes_received_total{protocol=\"udp\"}",
        "swarmd_bytes_sent_total{protocol=\"udp\"}",
    ];
    let admin = s.admin();
    let complete = wait_until(Duration::from_secs(10), || async move {
        let text = get(admin, "/metrics").await.text();
        wanted.iter().all(|l| text.contains(l))
    })
    .await;
    let text = get(admin, "/metrics").await.text();
    assert!(complete, "metrics lack some of {wanted:?}:\n{text}");
    s.running.stop().await;
}
