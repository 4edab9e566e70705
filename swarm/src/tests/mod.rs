//! Unit tests of the registry's announce, scrape, expiry and limit rules, through its public API
//! (plus its internal invariant check).

mod lifecycle;
mod selection;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use swarmd_proto::{Event, InfoHash, PeerId};

use crate::{Announce, AnnounceOutcome, Registry, RegistryConfig, SelectedPeers};

pub(super) fn ih(n: u8) -> InfoHash {
    InfoHash([n; 20])
}

pub(super) fn v4(n: u32) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + n), 6881))
}

pub(super) fn v6(n: u32) -> SocketAddr {
    SocketAddr::from((
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, (n >> 16) as u16, n as u16),
        6881,
    ))
}

pub(super) fn ann(
    info_hash: InfoHash,
    addr: SocketAddr,
    event: Event,
    left: u64,
    numwant: usize,
) -> Announce {
    Announce {
        info_hash,
        peer_id: PeerId([7; 20]),
        addr,
        event,
        left,
        numwant,
    }
}

pub(super) fn small(config: RegistryConfig) -> Registry {
    Registry::new(RegistryConfig {
        shards: 4,
        ..config
    })
}

/// Announces and returns (outcome, selected addresses).
pub(super) fn go(r: &Registry, a: &Announce, now: u32) -> (AnnounceOutcome, Vec<SocketAddr>) {
    let mut out = SelectedPeers::new();
    let o = r.announce(a, now, &mut out).expect("announce accepted");
    assert_eq!(o.peers, out.len());
    r.check_invariants();
    (o, out.addrs().collect())
}

#[test]
fn registry_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Registry>();
}

#[test]
fn shards_round_up_to_a_power_of_two() {
    assert_eq!(
        Registry::new(RegistryConfig {
            shards: 0,
            ..Default::default()
        })
        .shard_count(),
        1
    );
    let r = Registry::new(RegistryConfig {
        shards: 5,
        ..Default::default()
    });
    assert_eq!(r.shard_count(), 8);
    assert_eq!(r.config().shards, 8);
    assert_eq!(Registry::new(RegistryConfig::default()).shard_count(), 1024);
    let huge = Registry::new(RegistryConfig {
        shards: usize::MAX,
        ..Default::default()
    });
    assert_eq!(huge.shard_count(), 1 << 20);
}
