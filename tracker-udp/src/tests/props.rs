//! Property tests: no input panics the handler (or its prefetch hint), unauthenticated input never gets a reply longer
//! than itself, and no reply exceeds the budget.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use swarmd_proto::udp::{write_announce_request, UrlData};
use swarmd_proto::{Event, InfoHash, PeerId};

use super::*;

fn source() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)),
        // IPv4-mapped IPv6 sources.
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| {
            SocketAddr::new(
                IpAddr::V6(std::net::Ipv4Addr::from(ip).to_ipv6_mapped()),
                port,
            )
        }),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::None),
        Just(Event::Started),
        Just(Event::Completed),
        Just(Event::Stopped),
        Just(Event::Paused),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_nor_amplify(
        packet in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            // Headers with known actions, so deeper parsing is exercised.
            (any::<u64>(), 0u32..5, proptest::collection::vec(any::<u8>(), 4..150))
                .prop_map(|(cid, action, rest)| {
                    let mut p = cid.to_be_bytes().to_vec();
                    p.extend_from_slice(&action.to_be_bytes());
                    p.extend_from_slice(&rest);
                    p
                }),
        ],
        src in source(),
    ) {
        let (tracker, _clock) = open_tracker(UdpConfig::default());
        // The batch loop's prefetch hint reads any datagram without harm.
        tracker.prefetch(&packet, swarmd_swarm::Prefetch::Bucket);
        tracker.prefetch(&packet, swarmd_swarm::Prefetch::Record);
        let mut out = Vec::new();
        let replied = tracker.handle(&packet, src, &mut out);
        let own_id = connect(&tracker, src).to_be_bytes();
        if replied && !packet.starts_with(&own_id) {
            prop_assert!(out.len() <= packet.len(), "{} > {}", out.len(), packet.len());
        }
        if !replied {
            prop_assert!(out.is_empty());
        }
    }

    #[test]
    fn authenticated_input_stays_within_the_budget(
        src in source(),
        info_hash in any::<[u8; 20]>(),
        left in any::<u64>(),
        event in event(),
        num_want in any::<i32>(),
        port in 1u16..,
        url in proptest::collection::vec(any::<u8>(), 0..300),
        budget in 68usize..200,
        flips in proptest::collection::vec((8usize..130, any::<u8>()), 0..4),
        peers in 0u8..40,
    ) {
        let (tracker, _clock) = open_tracker(UdpConfig {
            max_reply_bytes: budget,
            ..UdpConfig::default()
        });
        for i in 0..peers {
            let other = SocketAddr::from(([10, 0, 0, i], 1000));
            let req = AnnounceRequest {
                info_hash: InfoHash(info_hash),
                ..announce_req(connect(&tracker, other))
            };
            let mut p = Vec::new();
            write_announce_request(&mut p, &req);
            send(&tracker, &p, other);
        }
        let req = AnnounceRequest {
            connection_id: connect(&tracker, src),
            transaction_id: 1,
            info_hash: InfoHash(info_hash),
            peer_id: PeerId([1; 20]),
            downloaded: 0,
            left,
            uploaded: 0,
            event,
            ip: None,
            key: 0,
            num_want,
            port,
            url_data: UrlData::new(&url),
        };
        let mut p = Vec::new();
        write_announce_request(&mut p, &req);
        // Corrupt a few bytes past the connection id.
        for (at, b) in flips {
            if let Some(x) = p.get_mut(at) {
                *x ^= b;
            }
        }
        let mut out = Vec::new();
        if tracker.handle(&p, src, &mut out) {
            prop_assert!(out.len() <= budget, "{} > {budget}", out.len());
        }
    }
}
