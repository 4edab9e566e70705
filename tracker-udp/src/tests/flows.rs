//! Connect, announce and scrape flows: peers, families, counts, caps, BEP 41 passkeys, the
//! access policy and the registry's limits.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use swarmd_proto::udp::{parse_response, scrape_entries, Response, ScrapeEntry, UrlData};
use swarmd_proto::{Event, InfoHash};
use swarmd_swarm::RegistryConfig;

use super::*;

#[test]
fn connect_announce_scrape() {
    let f = fixture();
    let a = v4(1, 40_000);
    let cid = f.connect(a);
    let reply = f
        .announce(a, &announce_req(cid))
        .expect("announce answered");
    assert_eq!(reply.len(), 20);
    assert_eq!(announced(&reply), (1800, 1, 0, vec![]));

    let reply = f.scrape(a, cid, &[IH]).expect("scrape answered");
    assert_eq!(reply.len(), 8 + 12);
    let Ok(Response::Scrape {
        transaction_id: 9,
        entries,
    }) = parse_response(&reply)
    else {
        panic!("not a scrape reply")
    };
    let e: Vec<_> = scrape_entries(entries).collect();
    assert_eq!(
        e,
        [ScrapeEntry {
            seeders: 0,
            completed: 0,
            leechers: 1
        }]
    );

    assert_eq!(f.requests("connect", "ok"), 1);
    assert_eq!(f.requests("announce", "ok"), 1);
    assert_eq!(f.requests("scrape", "ok"), 1);
    let received = f.metric("swarmd_bytes_received_total", &[("protocol", "udp")]);
    assert_eq!(received, 16 + 98 + 36);
    let timed = f.metric(
        "swarmd_request_duration_seconds_count",
        &[("protocol", "udp"), ("action", "announce")],
    );
    assert_eq!(timed, 1, "a fresh tally times its first request");
}

#[test]
fn two_peers_see_each_other_and_counts_follow() {
    let f = fixture();
    let (a, b) = (v4(1, 40_000), v4(2, 40_001));
    let (ca, cb) = (f.connect(a), f.connect(b));
    f.announce(a, &announce_req(ca)).unwrap();
    let seed = AnnounceRequest {
        left: 0,
        port: 6882,
        event: Event::Completed,
        ..announce_req(cb)
    };
    let (_, leechers, seeders, peers) = announced(&f.announce(b, &seed).unwrap());
    assert_eq!((leechers, seeders), (1, 1));
    assert_eq!(peers, compact_v4(v4(1, 6881)));
    let (_, _, _, peers) = announced(&f.announce(a, &announce_req(ca)).unwrap());
    assert_eq!(peers, compact_v4(v4(2, 6882)));

    // Stopped: removed, no peers back.
    let stop = AnnounceRequest {
        event: Event::Stopped,
        ..announce_req(ca)
    };
    let (_, leechers, seeders, peers) = announced(&f.announce(a, &stop).unwrap());
    assert_eq!((leechers, seeders, peers.len()), (0, 1, 0));

    let reply = f.scrape(b, cb, &[IH]).unwrap();
    let Ok(Response::Scrape { entries, .. }) = parse_response(&reply) else {
        panic!()
    };
    let e: Vec<_> = scrape_entries(entries).collect();
    assert_eq!(
        e,
        [ScrapeEntry {
            seeders: 1,
            completed: 1,
            leechers: 0
        }]
    );
}

#[test]
fn ipv6_sources_get_18_byte_peers_and_mapped_sources_count_as_ipv4() {
    let f = fixture();
    let (a, b) = (v6(1, 40_000), v6(2, 40_001));
    let (ca, cb) = (f.connect(a), f.connect(b));
    f.announce(a, &announce_req(ca)).unwrap();
    let reply = f.announce(b, &announce_req(cb)).unwrap();
    assert_eq!(reply.len(), 20 + 18);
    let (_, _, _, peers) = announced(&reply);
    let IpAddr::V6(ip) = v6(1, 0).ip() else {
        panic!()
    };
    let mut want = ip.octets().to_vec();
    want.extend_from_slice(&6881u16.to_be_bytes());
    assert_eq!(peers, want);

    // An IPv4 peer announcing through a dual-stack socket (IPv4-mapped source) joins the IPv4
    // swarm, gets 6-byte peers, and its id verifies from either form of its address.
    f.announce(v4(9, 1), &announce_req(f.connect(v4(9, 1))))
        .unwrap();
    let mapped = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 10).to_ipv6_mapped(), 5000));
    let cid = f.connect(mapped);
    let (_, _, _, peers) = announced(&f.announce(v4(10, 5000), &announce_req(cid)).unwrap());
    assert_eq!(peers, compact_v4(v4(9, 6881)));
    let reply = f.announce(mapped, &announce_req(cid)).unwrap();
    assert_eq!(reply.len(), 20 + 6);
}

#[test]
fn num_want_defaults_caps_and_budget() {
    let config = UdpConfig {
        default_numwant: 3,
        max_numwant: 5,
        ..UdpConfig::default()
    };
    let f = fixture_with(config, Recording::default(), RegistryConfig::default());
    for i in 1..=10 {
        let src = v4(i, 1000);
        f.announce(src, &announce_req(f.connect(src))).unwrap();
    }
    let me = v4(100, 1000);
    let cid = f.connect(me);
    for (num_want, expect) in [(-1, 3), (0, 3), (i32::MIN, 3), (2, 2), (5, 5), (50, 5)] {
        let req = AnnounceRequest {
            num_want,
            ..announce_req(cid)
        };
        let (_, _, _, peers) = announced(&f.announce(me, &req).unwrap());
        assert_eq!(peers.len(), expect * 6, "num_want {num_want}");
    }

    // The reply budget caps peers: 68 bytes hold 2 IPv6 peers (20 + 2 * 18 = 56).
    let config = UdpConfig {
        max_reply_bytes: 68,
        ..UdpConfig::default()
    };
    let f = fixture_with(config, Recording::default(), RegistryConfig::default());
    for i in 1..=10 {
        let src = v6(i, 1000);
        f.announce(src, &announce_req(f.connect(src))).unwrap();
    }
    let me = v6(100, 1000);
    let req = AnnounceRequest {
        num_want: 100,
        ..announce_req(f.connect(me))
    };
    let reply = f.announce(me, &req).unwrap();
    assert_eq!(reply.len(), 20 + 2 * 18);
}

#[test]
fn ip_field_is_honoured_only_when_allowed_and_over_ipv4() {
    let claimed = Ipv4Addr::new(203, 0, 113, 5);
    for allow in [false, true] {
        let config = UdpConfig {
            allow_ip_param: allow,
            ..UdpConfig::default()
        };
        let f = fixture_with(config, Recording::default(), RegistryConfig::default());
        for src in [v4(1, 1000), v6(1, 1000)] {
            let req = AnnounceRequest {
                ip: Some(claimed),
                ..announce_req(f.connect(src))
            };
            f.announce(src, &req).unwrap();
        }
        let me = v4(2, 1000);
        let (_, _, _, peers) = announced(&f.announce(me, &announce_req(f.connect(me))).unwrap());
        let stored = if allow {
            SocketAddr::from((claimed, 6881))
        } else {
            v4(1, 6881)
        };
        assert_eq!(peers, compact_v4(stored), "allow_ip_param = {allow}");
        // The IPv6 announcer was stored at its source address whatever the setting.
        let me = v6(2, 1000);
        let reply = f.announce(me, &announce_req(f.connect(me))).unwrap();
        assert_eq!(reply.len(), 20 + 18);
    }
}

#[test]
fn scrape_answers_in_order_with_zeros_and_a_cap() {
    let hidden = InfoHash([0x11; 20]);
    let policy = Recording {
        hidden: Some(hidden),
        ..Recording::default()
    };
    let config = UdpConfig {
        max_scrape_hashes: 3,
        ..UdpConfig::default()
    };
    let f = fixture_with(config, policy, RegistryConfig::default());
    let a = v4(1, 1000);
    let cid = f.connect(a);
    for (ih, seeders) in [(IH, 1), (hidden, 2)] {
        for i in 0..seeders {
            let src = v4(50 + i, 1000);
            let req = AnnounceRequest {
                info_hash: ih,
                left: 0,
                ..announce_req(f.connect(src))
            };
            f.announce(src, &req).unwrap();
        }
    }
    let unknown = InfoHash([0x22; 20]);
    let reply = f.scrape(a, cid, &[unknown, IH, hidden, IH]).unwrap();
    assert_eq!(reply.len(), 8 + 3 * 12, "capped at 3 hashes");
    let Ok(Response::Scrape { entries, .. }) = parse_response(&reply) else {
        panic!()
    };
    let seeders: Vec<u32> = scrape_entries(entries).map(|e| e.seeders).collect();
    assert_eq!(
        seeders,
        [0, 1, 0],
        "unknown and hidden hashes read as zeros"
    );

    // 74 hashes: the BEP 15 maximum fits the default budget.
    let f = fixture();
    let cid = f.connect(a);
    let many: Vec<InfoHash> = (0..80u8).map(|i| InfoHash([i; 20])).collect();
    let reply = f.scrape(a, cid, &many).unwrap();
    assert_eq!(reply.len(), 8 + 74 * 12);
}

#[test]
fn bep41_passkeys_reach_the_policy() {
    let f = fixture();
    let a = v4(1, 1000);
    let cid = f.connect(a);
    let long = format!("/KEY2/announce?{}", "x".repeat(400)); // split over two URLData options
    let cases: [(&[u8], Option<&[u8]>); 6] = [
        (b"", None),
        (b"/announce", None),
        (b"/KEY1/announce", Some(b"KEY1")),
        (b"/announce/KEY3?x=1&y=2", Some(b"KEY3")),
        (long.as_bytes(), Some(b"KEY2")),
        (b"/foo", None),
    ];
    for (url, _) in &cases {
        let req = AnnounceRequest {
            url_data: UrlData::new(url),
            ..announce_req(cid)
        };
        let reply = f.announce(a, &req).unwrap();
        announced(&reply);
    }
    let seen = f.policy.passkeys.lock().unwrap().clone();
    let want: Vec<Option<Vec<u8>>> = cases.iter().map(|(_, k)| k.map(<[u8]>::to_vec)).collect();
    assert_eq!(seen, want);
}

#[test]
fn denied_announces_get_the_policy_reason() {
    let policy = Recording {
        deny: Some(b"BAD"),
        ..Recording::default()
    };
    let f = fixture_with(UdpConfig::default(), policy, RegistryConfig::default());
    let a = v4(1, 1000);
    let req = AnnounceRequest {
        url_data: UrlData::new(b"/BAD/announce"),
        ..announce_req(f.connect(a))
    };
    let reply = f.announce(a, &req).unwrap();
    assert_eq!(error_message(&reply), "passkey revoked");
    assert_eq!(
        parse_response(&reply).unwrap().transaction_id(),
        0x0102_0304
    );
    assert_eq!(f.requests("announce", "denied"), 1);
}

#[test]
fn long_denials_are_cut_to_the_reply_budget() {
    let policy = Recording {
        deny: Some(b"BAD"),
        reason: Some(format!("{}é", "r".repeat(59))),
        ..Recording::default()
    };
    let config = UdpConfig {
        max_reply_bytes: 68,
        ..UdpConfig::default()
    };
    let f = fixture_with(config, policy, RegistryConfig::default());
    let a = v4(1, 1000);
    let req = AnnounceRequest {
        url_data: UrlData::new(b"/BAD/announce"),
        ..announce_req(f.connect(a))
    };
    let reply = f.announce(a, &req).unwrap();
    assert!(reply.len() <= 68);
    // 60 bytes of room: the two-byte 'é' would straddle the limit, so the cut falls before it.
    assert_eq!(error_message(&reply), "r".repeat(59));
}

#[test]
fn full_registry_is_an_error_reply() {
    let registry = RegistryConfig {
        max_torrents: 1,
        ..RegistryConfig::default()
    };
    let f = fixture_with(UdpConfig::default(), Recording::default(), registry);
    let a = v4(1, 1000);
    let cid = f.connect(a);
    announced(&f.announce(a, &announce_req(cid)).unwrap());
    let other = AnnounceRequest {
        info_hash: InfoHash([0x33; 20]),
        ..announce_req(cid)
    };
    let msg = error_message(&f.announce(a, &other).unwrap());
    assert!(msg.starts_with("tracker is full"), "{msg}");
    assert_eq!(f.requests("announce", "limit"), 1);
}

#[test]
fn client_ip_given_to_the_policy_is_canonical() {
    let f = fixture();
    let mapped = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped(), 1));
    let reply = f
        .announce(mapped, &announce_req(f.connect(mapped)))
        .unwrap();
    announced(&reply);
    let clients = f.policy.clients.lock().unwrap().clone();
    assert_eq!(clients, [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))]);
}
