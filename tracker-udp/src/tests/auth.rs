//! Connection ids and silence: what is answered, what is not, and what gets an error reply.

use std::sync::Arc;

use swarmd_proto::udp::{write_announce_request, PROTOCOL_ID};
use swarmd_swarm::access::OpenPolicy;
use swarmd_swarm::clock::ManualClock;
use swarmd_swarm::metrics::Metrics;
use swarmd_swarm::{Registry, RegistryConfig};

use super::*;

fn announce_bytes(cid: u64) -> Vec<u8> {
    let mut p = Vec::new();
    write_announce_request(&mut p, &announce_req(cid));
    p
}

#[test]
fn ids_live_for_the_configured_lifetime() {
    let f = fixture();
    let a = v4(1, 1000);
    let cid = f.connect(a);
    f.clock.advance(600);
    assert!(
        f.announce(a, &announce_req(cid)).is_some(),
        "valid for 600 s"
    );
    f.clock.advance(1);
    assert!(
        f.announce(a, &announce_req(cid)).is_none(),
        "expired at 601 s"
    );
    assert!(f.scrape(a, cid, &[IH]).is_none());
    assert_eq!(f.requests("announce", "bad_connection_id"), 1);
    assert_eq!(f.requests("scrape", "bad_connection_id"), 1);
    assert_eq!(f.dropped("bad_connection_id"), 2);

    let config = UdpConfig {
        connection_id_lifetime: 120,
        ..UdpConfig::default()
    };
    let f = fixture_with(config, Recording::default(), RegistryConfig::default());
    let cid = f.connect(a);
    f.clock.advance(120);
    assert!(f.scrape(a, cid, &[IH]).is_some());
    f.clock.advance(1);
    assert!(f.scrape(a, cid, &[IH]).is_none());
}

#[test]
fn ids_survive_the_16_bit_stamp_wrapping() {
    let f = fixture();
    let a = v4(1, 1000);
    f.clock.set(65_500);
    let cid = f.connect(a);
    f.clock.set(65_500 + 100);
    assert!(f.announce(a, &announce_req(cid)).is_some());
    f.clock.set(65_500 + 65_536);
    assert!(
        f.announce(a, &announce_req(cid)).is_none(),
        "same stamp, 2^16 s later"
    );
}

#[test]
fn future_ids_are_refused() {
    let f = fixture();
    let a = v4(1, 1000);
    let cid = f.connect(a);
    f.clock.set(999);
    assert!(f.announce(a, &announce_req(cid)).is_none());
    f.clock.set(1_000);
    assert!(f.announce(a, &announce_req(cid)).is_some());
}

#[test]
fn forged_and_foreign_ids_get_silence() {
    let f = fixture();
    let a = v4(1, 1000);
    let cid = f.connect(a);
    for bit in 0..64 {
        assert!(
            f.announce(a, &announce_req(cid ^ (1 << bit))).is_none(),
            "bit {bit}"
        );
    }
    // The same IP from another port may reuse the id: clients share cached ids across sockets.
    assert!(
        f.announce(v4(1, 1001), &announce_req(cid)).is_some(),
        "other port of the same ip"
    );
    assert!(
        f.announce(v4(2, 1000), &announce_req(cid)).is_none(),
        "other ip"
    );
    assert!(
        f.announce(v6(1, 1000), &announce_req(cid)).is_none(),
        "other family"
    );
    assert!(
        f.announce(a, &announce_req(PROTOCOL_ID)).is_none(),
        "the magic is no id"
    );
    assert!(f.announce(a, &announce_req(cid)).is_some());
    assert_eq!(
        f.requests("announce", "ok"),
        2,
        "the other-port announce and this one"
    );
}

#[test]
fn shared_secrets_share_ids() {
    let make = |secret| {
        UdpTracker::new(
            UdpConfig {
                secret,
                ..UdpConfig::default()
            },
            Arc::new(Registry::new(RegistryConfig::default())),
            Arc::new(OpenPolicy),
            Arc::new(ManualClock::new(50)),
            &Metrics::new().unwrap(),
        )
    };
    let (one, two) = (make(Some([5; 32])), make(Some([5; 32])));
    let a = v4(1, 1000);
    let cid = connect(&one, a);
    assert_eq!(cid, connect(&two, a));
    assert!(send(&two, &announce_bytes(cid), a).is_some());
    let (r1, r2) = (make(None), make(None));
    assert_ne!(connect(&r1, a), connect(&r2, a), "random secrets differ");
}

#[test]
fn connect_needs_the_magic_and_never_amplifies() {
    let f = fixture();
    let a = v4(1, 1000);
    let mut p = PROTOCOL_ID.to_be_bytes().to_vec();
    p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(f.send(&p, a).map(|r| r.len()), Some(16));
    p[7] ^= 1;
    assert!(f.send(&p, a).is_none(), "wrong magic");
    assert_eq!(f.dropped("malformed"), 1);
    // A connect whose "magic" is a valid cookie is still a bad connect: silence.
    let cid = f.connect(a);
    p[..8].copy_from_slice(&cid.to_be_bytes());
    assert!(f.send(&p, a).is_none());
}

#[test]
fn short_packets_and_garbage_get_silence() {
    let f = fixture();
    let a = v4(1, 1000);
    let cid = f.connect(a);
    let valid = announce_bytes(cid);
    for len in 0..16 {
        assert!(f.send(&valid[..len], a).is_none(), "len {len}");
    }
    assert_eq!(f.dropped("too_short"), 16);
    let mut garbage = vec![0x5a; 100];
    assert!(f.send(&garbage, a).is_none());
    garbage[8..12].copy_from_slice(&7u32.to_be_bytes());
    assert!(f.send(&garbage, a).is_none(), "unknown action, no valid id");
    assert_eq!(f.dropped("malformed"), 2);
}

#[test]
fn authenticated_bad_requests_get_error_replies() {
    let f = fixture();
    let a = v4(1, 1000);
    let cid = f.connect(a);

    let mut p = announce_bytes(cid);
    p[80..84].copy_from_slice(&9u32.to_be_bytes());
    assert_eq!(error_message(&f.send(&p, a).unwrap()), "unknown event 9");
    // The same with a bad id: silence.
    p[0] ^= 0x80;
    assert!(f.send(&p, a).is_none());

    let mut p = announce_bytes(cid);
    p[96..98].copy_from_slice(&[0, 0]);
    assert_eq!(error_message(&f.send(&p, a).unwrap()), "port must not be 0");

    let p = announce_bytes(cid);
    let reply = f.send(&p[..50], a).unwrap();
    assert_eq!(error_message(&reply), "packet too short");
    assert!(reply.len() < 50);

    let mut p = announce_bytes(cid);
    p[8..12].copy_from_slice(&7u32.to_be_bytes());
    assert_eq!(error_message(&f.send(&p, a).unwrap()), "unknown action 7");

    assert_eq!(f.requests("announce", "bad_request"), 3);
    assert_eq!(f.requests("other", "bad_request"), 1);
    assert_eq!(f.requests("announce", "bad_connection_id"), 1);
}
