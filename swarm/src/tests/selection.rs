//! Peer selection: who is given whom, address families, sampling in big swarms.

use std::collections::HashSet;
use std::net::SocketAddr;

use rand::seq::SliceRandom;
use rand::Rng;
use swarmd_proto::{Event, PeerId};

use super::{ann, go, ih, small, v4, v6};
use crate::peers::Role;
use crate::{RegistryConfig, SelectedPeers, SwarmStats};

#[test]
fn two_peers_see_each_other() {
    let r = small(RegistryConfig::default());
    let (o, peers) = go(&r, &ann(ih(1), v4(1), Event::Started, 100, 50), 0);
    assert!(peers.is_empty() && o.stored);
    assert_eq!(
        o.stats,
        SwarmStats {
            complete: 0,
            incomplete: 1,
            downloaded: 0,
            downloaders: 1
        }
    );
    let (o, peers) = go(&r, &ann(ih(1), v4(2), Event::Started, 100, 50), 0);
    assert_eq!(peers, vec![v4(1)]);
    assert_eq!(o.stats.incomplete, 2);
    let (_, peers) = go(&r, &ann(ih(1), v4(1), Event::None, 100, 50), 0);
    assert_eq!(peers, vec![v4(2)]);
    assert_eq!(r.scrape(&ih(1)).map(|s| s.incomplete), Some(2));
    assert_eq!(r.scrape(&ih(2)), None);
}

#[test]
fn requester_is_never_in_its_own_list() {
    let r = small(RegistryConfig::default());
    for n in 0..40 {
        go(&r, &ann(ih(1), v4(n), Event::Started, 1, 0), 0);
    }
    for n in 0..40 {
        for numwant in [1, 5, 39, 40, 200] {
            let (o, peers) = go(&r, &ann(ih(1), v4(n), Event::None, 1, numwant), 0);
            assert_eq!(o.peers, numwant.min(39));
            assert!(!peers.contains(&v4(n)));
            assert_eq!(
                peers.iter().collect::<HashSet<_>>().len(),
                peers.len(),
                "duplicates"
            );
        }
    }
}

#[test]
fn seeder_gets_only_leechers() {
    let r = small(RegistryConfig::default());
    for n in 0..10 {
        let left = if n < 5 { 0 } else { 10 };
        go(&r, &ann(ih(1), v4(n), Event::Started, left, 0), 0);
    }
    // A paused peer (partial seed) is not given to seeders either.
    go(&r, &ann(ih(1), v4(99), Event::Paused, 10, 0), 0);
    let (o, peers) = go(&r, &ann(ih(1), v4(0), Event::None, 0, 50), 0);
    let leechers: HashSet<_> = (5..10).map(v4).collect();
    assert_eq!(peers.iter().copied().collect::<HashSet<_>>(), leechers);
    assert_eq!(
        o.stats,
        SwarmStats {
            complete: 5,
            incomplete: 6,
            downloaded: 0,
            downloaders: 5
        }
    );
    // With a small numwant the sample is still leechers only.
    for _ in 0..50 {
        let (_, peers) = go(&r, &ann(ih(1), v4(0), Event::None, 0, 2), 0);
        assert_eq!(peers.len(), 2);
        assert!(peers.iter().all(|p| leechers.contains(p)));
    }
    // A leecher gets anyone but itself (seeders first is not required).
    let (_, peers) = go(&r, &ann(ih(1), v4(5), Event::None, 10, 50), 0);
    assert_eq!(peers.len(), 10);
}

#[test]
fn paused_peer_is_a_partial_seed() {
    let r = small(RegistryConfig::default());
    go(&r, &ann(ih(1), v4(1), Event::Started, 10, 0), 0);
    go(&r, &ann(ih(1), v4(2), Event::Started, 0, 0), 0);
    go(&r, &ann(ih(1), v4(3), Event::Paused, 10, 0), 0);
    let (o, peers) = go(&r, &ann(ih(1), v4(4), Event::Paused, 10, 50), 0);
    assert_eq!(
        peers,
        vec![v4(1)],
        "a partial seed gets downloading leechers only"
    );
    assert_eq!(
        o.stats,
        SwarmStats {
            complete: 1,
            incomplete: 3,
            downloaded: 0,
            downloaders: 1
        }
    );
    assert_eq!(r.describe(&ih(1), v4(4)).map(|d| d.0), Some(Role::Partial));
    // A leecher is given partial seeds.
    let (_, peers) = go(&r, &ann(ih(1), v4(1), Event::None, 10, 50), 0);
    assert_eq!(peers.len(), 3);
    // Paused with left = 0 is a seeder.
    let (o, _) = go(&r, &ann(ih(1), v4(3), Event::Paused, 0, 0), 0);
    assert_eq!(
        o.stats,
        SwarmStats {
            complete: 2,
            incomplete: 2,
            downloaded: 0,
            downloaders: 1
        }
    );
    let c = r.counts();
    assert_eq!((c.seeders_v4, c.leechers_v4), (2, 2));
}

#[test]
fn peer_ids_follow_the_selection_only_when_kept() {
    for keep in [false, true] {
        let r = small(RegistryConfig {
            store_peer_ids: keep,
            ..Default::default()
        });
        for n in 0..60u32 {
            let mut a = ann(ih(1), v4(n), Event::Started, 10, 0);
            a.peer_id = PeerId([n as u8; 20]);
            go(&r, &a, 0);
        }
        let mut out = SelectedPeers::new();
        let o = r
            .announce(&ann(ih(1), v4(0), Event::None, 10, 20), 0, &mut out)
            .unwrap();
        assert_eq!(o.peers, 20);
        if keep {
            assert_eq!(out.peer_ids.len(), 20 * 20);
            for (addr, id) in out.addrs().zip(out.peer_ids.chunks_exact(20)) {
                let SocketAddr::V4(a) = addr else {
                    panic!("v4 expected")
                };
                let n = u32::from(*a.ip()) - 0x0a00_0000;
                assert_eq!(id, &[n as u8; 20]);
            }
        } else {
            assert!(out.peer_ids.is_empty());
        }
        r.check_invariants();
    }
}

#[test]
fn address_families_are_kept_apart() {
    let r = small(RegistryConfig::default());
    go(&r, &ann(ih(1), v4(1), Event::Started, 10, 0), 0);
    go(&r, &ann(ih(1), v6(1), Event::Started, 10, 0), 0);
    go(&r, &ann(ih(1), v6(2), Event::Started, 0, 0), 0);
    let mut out = SelectedPeers::new();
    let o = r
        .announce(&ann(ih(1), v6(3), Event::None, 10, 50), 0, &mut out)
        .unwrap();
    assert_eq!(o.peers, 2);
    assert_eq!(out.compact.len(), 36);
    assert!(out.is_ipv6() && out.entry_len() == 18);
    assert_eq!(
        out.addrs().collect::<HashSet<_>>(),
        [v6(1), v6(2)].into_iter().collect()
    );
    assert_eq!(&out.compact[16..18], &6881u16.to_be_bytes());
    assert_eq!(
        o.stats,
        SwarmStats {
            complete: 1,
            incomplete: 3,
            downloaded: 0,
            downloaders: 3
        }
    );
    // The same buffer, reused over IPv4: cleared, 6-byte entries, IPv4 peers only.
    let o = r
        .announce(&ann(ih(1), v4(2), Event::None, 10, 50), 0, &mut out)
        .unwrap();
    assert_eq!(o.peers, 1);
    assert_eq!(out.compact, [10, 0, 0, 1, 0x1a, 0xe1]);
    assert!(!out.is_ipv6());
    // An IPv4-mapped IPv6 address is the IPv4 peer.
    let mapped: SocketAddr = "[::ffff:10.0.0.2]:6881".parse().unwrap();
    let o = r
        .announce(&ann(ih(1), mapped, Event::None, 10, 50), 0, &mut out)
        .unwrap();
    assert_eq!((o.peers, out.entry_len()), (1, 6));
    let c = r.counts();
    assert_eq!(
        (c.seeders_v4, c.leechers_v4, c.seeders_v6, c.leechers_v6),
        (0, 2, 1, 2)
    );
}

#[test]
fn numwant_zero_gives_no_peers() {
    let r = small(RegistryConfig::default());
    for n in 0..5 {
        go(&r, &ann(ih(1), v4(n), Event::Started, 10, 0), 0);
    }
    let (o, peers) = go(&r, &ann(ih(1), v4(9), Event::Started, 10, 0), 0);
    assert!(peers.is_empty() && o.peers == 0 && o.stored);
    // A huge numwant is harmless.
    let (o, _) = go(&r, &ann(ih(1), v4(9), Event::None, 10, usize::MAX), 0);
    assert_eq!(o.peers, 5);
}

/// A swarm of 5,000 peers: samples are distinct and never hold the requester, and the index
/// stays consistent through many random removals and role changes.
#[test]
fn large_swarm_sampling_and_index_consistency() {
    let r = small(RegistryConfig::default());
    let mut rng = rand::rng();
    let mut live: Vec<u32> = (0..5000).collect();
    for &n in &live {
        let left = if n % 3 == 0 { 0 } else { 10 };
        r.announce(
            &ann(ih(1), v4(n), Event::Started, left, 0),
            0,
            &mut SelectedPeers::new(),
        )
        .unwrap();
    }
    r.check_invariants();
    let mut out = SelectedPeers::new();
    for round in 0..3000u32 {
        let n = live[rng.random_range(0..live.len())];
        let left = [0, 10][rng.random_range(0..2)];
        let event = [Event::None, Event::Paused, Event::Completed][rng.random_range(0..3)];
        let numwant = [1, 50, 200][rng.random_range(0..3)];
        let o = r
            .announce(&ann(ih(1), v4(n), event, left, numwant), 0, &mut out)
            .unwrap();
        let peers: Vec<_> = out.addrs().collect();
        assert_eq!(peers.len(), o.peers);
        assert!(!peers.contains(&v4(n)), "requester in its own list");
        assert_eq!(
            peers.iter().collect::<HashSet<_>>().len(),
            peers.len(),
            "duplicates"
        );
        if left == 0 || event == Event::Paused {
            for p in &peers {
                assert_eq!(r.describe(&ih(1), *p).map(|d| d.0), Some(Role::Leecher));
            }
        }
        if round % 2 == 0 {
            // Every other round, a random peer leaves.
            live.shuffle(&mut rng);
            if let Some(gone) = live.pop() {
                r.announce(&ann(ih(1), v4(gone), Event::Stopped, 0, 0), 0, &mut out)
                    .unwrap();
            }
        }
        if round % 500 == 0 {
            r.check_invariants();
        }
    }
    r.check_invariants();
    let c = r.counts();
    assert_eq!((c.seeders_v4 + c.leechers_v4) as usize, live.len());
    // Shrink all the way down through the index threshold and back to nothing.
    for n in live.drain(..) {
        r.announce(&ann(ih(1), v4(n), Event::Stopped, 0, 0), 0, &mut out)
            .unwrap();
        if n % 97 == 0 {
            r.check_invariants();
        }
    }
    r.check_invariants();
    assert_eq!(r.counts().torrents, 0);
}

/// A numwant smaller than the candidates samples all over the swarm, not just one spot.
#[test]
fn samples_cover_the_swarm() {
    let r = small(RegistryConfig::default());
    for n in 0..100 {
        go(&r, &ann(ih(1), v4(n), Event::Started, 10, 0), 0);
    }
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let (_, peers) = go(&r, &ann(ih(1), v4(0), Event::None, 10, 5), 0);
        seen.extend(peers);
    }
    assert!(
        seen.len() > 90,
        "only {} of 99 peers ever selected",
        seen.len()
    );
}

#[test]
fn sample_reads_without_announcing() {
    use crate::{Announce, Registry, RegistryConfig, SelectedPeers};
    use std::net::SocketAddr;
    use swarmd_proto::{Event, InfoHash, PeerId};

    let r = Registry::new(RegistryConfig::default());
    let ih = InfoHash([3; 20]);
    let mut out = SelectedPeers::default();
    assert_eq!(r.sample(&ih, false, 10, &mut out), None);
    assert!(out.is_empty());
    for (i, addr) in ["10.0.0.1:1", "10.0.0.2:2", "[2001:db8::1]:3"]
        .iter()
        .enumerate()
    {
        let req = Announce {
            info_hash: ih,
            peer_id: PeerId([i as u8; 20]),
            addr: addr.parse::<SocketAddr>().unwrap(),
            event: Event::Started,
            left: if i == 0 { 0 } else { 5 },
            numwant: 0,
        };
        r.announce(&req, 10, &mut out).unwrap();
    }
    let stats = r.sample(&ih, false, 10, &mut out).unwrap();
    assert_eq!((stats.complete, stats.incomplete), (1, 2));
    let mut got: Vec<SocketAddr> = out.addrs().collect();
    got.sort();
    assert_eq!(
        got,
        vec!["10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap()]
    );
    r.sample(&ih, true, 10, &mut out).unwrap();
    assert_eq!(out.compact.len(), 18);
    r.sample(&ih, false, 1, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    // Sampling changed nothing.
    assert_eq!(r.scrape(&ih).unwrap(), stats);
}
