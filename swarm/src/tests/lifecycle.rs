//! The life of peers and swarms: completion, stop, re-announce, expiry, sweeps, limits, scrapes.

use std::collections::HashSet;

use swarmd_proto::{Event, InfoHash, PeerId};

use super::{ann, go, ih, small, v4, v6};
use crate::clock::{Clock, ManualClock};
use crate::peers::Role;
use crate::{AnnounceError, Registry, RegistryConfig, SelectedPeers, SwarmStats};

#[test]
fn completed_is_counted_once_per_peer() {
    let r = small(RegistryConfig::default());
    go(&r, &ann(ih(1), v4(1), Event::Started, 10, 0), 0);
    let (o, _) = go(&r, &ann(ih(1), v4(1), Event::Completed, 0, 0), 1);
    assert_eq!(
        (o.stats.downloaded, o.stats.complete, o.stats.incomplete),
        (1, 1, 0)
    );
    let (o, _) = go(&r, &ann(ih(1), v4(1), Event::Completed, 0, 0), 2);
    assert_eq!(
        o.stats.downloaded, 1,
        "a repeated completed is not counted again"
    );
    // A peer whose first announce is completed counts too.
    let (o, _) = go(&r, &ann(ih(1), v4(2), Event::Completed, 0, 0), 3);
    assert_eq!(o.stats.downloaded, 2);
    assert_eq!(r.describe(&ih(1), v4(2)).map(|d| d.1), Some(true));
    let (o, _) = go(&r, &ann(ih(1), v4(2), Event::None, 0, 0), 4);
    assert_eq!(o.stats.downloaded, 2);
    // Stopping does not uncount it.
    let (o, _) = go(&r, &ann(ih(1), v4(2), Event::Stopped, 0, 0), 5);
    assert_eq!(o.stats.downloaded, 2);
}

#[test]
fn stopped_removes_the_peer_and_returns_nothing() {
    let r = small(RegistryConfig::default());
    go(&r, &ann(ih(1), v4(1), Event::Started, 10, 0), 0);
    go(&r, &ann(ih(1), v4(2), Event::Started, 0, 0), 0);
    let (o, peers) = go(&r, &ann(ih(1), v4(1), Event::Stopped, 10, 50), 0);
    assert!(peers.is_empty() && !o.stored && o.peers == 0);
    assert_eq!(
        o.stats,
        SwarmStats {
            complete: 1,
            incomplete: 0,
            downloaded: 0,
            downloaders: 0
        }
    );
    // Stopping an unknown peer changes nothing.
    let (o, _) = go(&r, &ann(ih(1), v4(9), Event::Stopped, 10, 50), 0);
    assert_eq!(o.stats.complete, 1);
    // The last peer leaving drops the swarm.
    let (o, _) = go(&r, &ann(ih(1), v4(2), Event::Stopped, 0, 50), 0);
    assert_eq!(o.stats, SwarmStats::default());
    assert_eq!(r.scrape(&ih(1)), None);
    assert_eq!(r.counts().torrents, 0);
    // Stopped never creates a swarm.
    let (o, _) = go(&r, &ann(ih(2), v4(1), Event::Stopped, 0, 50), 0);
    assert_eq!(o.stats, SwarmStats::default());
    assert_eq!(r.scrape(&ih(2)), None);
}

#[test]
fn reannounce_updates_role_id_and_last_seen() {
    let r = small(RegistryConfig {
        store_peer_ids: true,
        peer_timeout: 100,
        ..Default::default()
    });
    let mut a = ann(ih(1), v4(1), Event::Started, 10, 0);
    go(&r, &a, 0);
    assert_eq!(
        r.describe(&ih(1), v4(1)),
        Some((Role::Leecher, false, Some([7; 20])))
    );
    a.peer_id = PeerId([8; 20]);
    a.event = Event::Paused;
    go(&r, &a, 50);
    assert_eq!(
        r.describe(&ih(1), v4(1)),
        Some((Role::Partial, false, Some([8; 20])))
    );
    a.event = Event::None;
    a.left = 0;
    go(&r, &a, 100);
    assert_eq!(r.describe(&ih(1), v4(1)).map(|d| d.0), Some(Role::Seeder));
    a.left = 5;
    go(&r, &a, 150);
    assert_eq!(r.describe(&ih(1), v4(1)).map(|d| d.0), Some(Role::Leecher));
    // Last seen at 150: still there at 250, gone after.
    assert_eq!(r.sweep(250, 4).peers_removed, 0);
    assert_eq!(r.sweep(251, 4).peers_removed, 1);
}

#[test]
fn expiry_removes_peers_and_drops_empty_swarms() {
    let clock = ManualClock::new(1000);
    let r = small(RegistryConfig {
        peer_timeout: 60,
        ..Default::default()
    });
    go(&r, &ann(ih(1), v4(1), Event::Started, 10, 0), clock.now());
    go(&r, &ann(ih(2), v6(1), Event::Started, 0, 0), clock.now());
    clock.advance(30);
    go(&r, &ann(ih(1), v4(2), Event::Started, 0, 0), clock.now());
    clock.advance(30);
    // Exactly at the timeout nobody expires.
    let s = r.sweep(clock.now(), 4);
    assert_eq!(
        (s.shards_visited, s.peers_removed, s.torrents_removed),
        (4, 0, 0)
    );
    clock.advance(1);
    let s = r.sweep(clock.now(), 4);
    assert_eq!((s.peers_removed, s.torrents_removed), (2, 1));
    assert_eq!(r.scrape(&ih(2)), None);
    assert_eq!(r.scrape(&ih(1)).map(|s| s.complete), Some(1));
    let c = r.counts();
    assert_eq!(
        (c.torrents, c.seeders_v4, c.leechers_v4, c.seeders_v6),
        (1, 1, 0, 0)
    );
    clock.advance(30);
    let s = r.sweep(clock.now(), 4);
    assert_eq!((s.peers_removed, s.torrents_removed), (1, 1));
    assert_eq!(r.counts(), crate::RegistryCounts::default());
    r.check_invariants();
}

#[test]
fn sweep_visits_at_most_max_shards_round_robin() {
    let r = Registry::new(RegistryConfig {
        shards: 16,
        peer_timeout: 10,
        ..Default::default()
    });
    for n in 0..200u8 {
        go(&r, &ann(ih(n), v4(1), Event::Started, 10, 0), 0);
    }
    let mut removed = 0;
    for _ in 0..5 {
        let s = r.sweep(100, 3);
        assert_eq!(s.shards_visited, 3);
        assert_eq!(s.peers_removed, s.torrents_removed);
        removed += s.torrents_removed;
        assert_eq!(r.counts().torrents as usize, 200 - removed);
    }
    // Sixteen shards in steps of three: the sixth step completes the round.
    let s = r.sweep(100, 3);
    removed += s.torrents_removed;
    assert_eq!(removed, 200);
    assert_eq!(r.counts().torrents, 0);
    assert_eq!(r.sweep(100, 0).shards_visited, 0);
    assert_eq!(r.sweep(100, 1000).shards_visited, 16);
    // Before the first timeout can elapse, nothing expires.
    assert_eq!(r.sweep(5, 16).peers_removed, 0);
}

#[test]
fn torrent_limit() {
    let r = small(RegistryConfig {
        max_torrents: 2,
        ..Default::default()
    });
    go(&r, &ann(ih(1), v4(1), Event::Started, 10, 0), 0);
    go(&r, &ann(ih(2), v4(1), Event::Started, 10, 0), 0);
    let mut out = SelectedPeers::new();
    let err = r.announce(&ann(ih(3), v4(1), Event::Started, 10, 50), 0, &mut out);
    assert_eq!(err, Err(AnnounceError::TorrentLimit));
    assert!(err
        .unwrap_err()
        .to_string()
        .contains("maximum number of torrents"));
    // Known torrents still work; stopped for an unknown one is fine.
    go(&r, &ann(ih(1), v4(2), Event::Started, 10, 0), 0);
    let (o, _) = go(&r, &ann(ih(3), v4(1), Event::Stopped, 10, 0), 0);
    assert_eq!(o.stats, SwarmStats::default());
    // Once a torrent goes away there is room again.
    go(&r, &ann(ih(2), v4(1), Event::Stopped, 10, 0), 0);
    go(&r, &ann(ih(3), v4(1), Event::Started, 10, 0), 0);
    assert_eq!(r.counts().torrents, 2);
}

#[test]
fn peer_limit_serves_but_does_not_store() {
    let r = small(RegistryConfig {
        max_peers_per_torrent: 3,
        ..Default::default()
    });
    go(&r, &ann(ih(1), v4(1), Event::Started, 10, 0), 0);
    go(&r, &ann(ih(1), v4(2), Event::Started, 10, 0), 0);
    go(&r, &ann(ih(1), v6(3), Event::Started, 0, 0), 0);
    let (o, peers) = go(&r, &ann(ih(1), v4(4), Event::Completed, 10, 50), 0);
    assert!(!o.stored);
    assert_eq!(peers.len(), 2, "served the full swarm of its family");
    assert_eq!(
        o.stats,
        SwarmStats {
            complete: 1,
            incomplete: 2,
            downloaded: 0,
            downloaders: 2
        }
    );
    assert_eq!(r.describe(&ih(1), v4(4)), None);
    // Existing peers keep updating.
    let (o, _) = go(&r, &ann(ih(1), v4(1), Event::Completed, 0, 50), 0);
    assert!(o.stored);
    assert_eq!(
        o.stats,
        SwarmStats {
            complete: 2,
            incomplete: 1,
            downloaded: 1,
            downloaders: 1
        }
    );
    // Room again after one leaves.
    go(&r, &ann(ih(1), v4(2), Event::Stopped, 10, 0), 0);
    let (o, _) = go(&r, &ann(ih(1), v4(4), Event::None, 10, 0), 0);
    assert!(o.stored);

    // A new IPv6 peer at the limit is served too.
    let (o, peers) = go(&r, &ann(ih(1), v6(9), Event::Started, 10, 50), 0);
    assert!(!o.stored);
    assert_eq!(peers, vec![v6(3)]);
    // Also in a full swarm without IPv6 peers.
    for n in 0..3 {
        go(&r, &ann(ih(2), v4(n), Event::Started, 0, 0), 0);
    }
    let (o, peers) = go(&r, &ann(ih(2), v6(9), Event::Started, 10, 50), 0);
    assert!(!o.stored && peers.is_empty());
    assert_eq!((o.stats.complete, o.stats.incomplete), (3, 0));
    assert_eq!(r.counts().leechers_v6, 0);

    // A zero limit stores nobody and keeps no swarm.
    let r = small(RegistryConfig {
        max_peers_per_torrent: 0,
        ..Default::default()
    });
    let (o, _) = go(&r, &ann(ih(1), v4(1), Event::Started, 10, 50), 0);
    assert!(!o.stored);
    assert_eq!(r.counts().torrents, 0);
}

#[test]
fn full_scrape_respects_its_limit() {
    let r = small(RegistryConfig::default());
    for n in 0..30u8 {
        go(
            &r,
            &ann(ih(n), v4(1), Event::Started, u64::from(n % 2), 0),
            0,
        );
    }
    let mut out = vec![(ih(99), SwarmStats::default())];
    r.full_scrape(1000, &mut out);
    assert_eq!(out.len(), 30);
    assert_eq!(out.iter().map(|(_, s)| s.complete).sum::<u32>(), 15);
    let hashes: HashSet<_> = out.iter().map(|(h, _)| *h).collect();
    assert_eq!(hashes, (0..30).map(ih).collect());
    r.full_scrape(7, &mut out);
    assert_eq!(out.len(), 7);
    r.full_scrape(0, &mut out);
    assert!(out.is_empty());
}

#[test]
fn remove_forgets_a_torrent_and_its_counts() {
    let r = small(RegistryConfig::default());
    go(&r, &ann(ih(1), v4(1), Event::Started, 0, 10), 100);
    go(&r, &ann(ih(1), v6(2), Event::Started, 5, 10), 100);
    go(&r, &ann(ih(2), v4(3), Event::Started, 5, 10), 100);
    assert!(r.remove(&ih(1)));
    assert!(!r.remove(&ih(1)));
    r.check_invariants();
    assert_eq!(r.scrape(&ih(1)), None);
    let c = r.counts();
    assert_eq!(
        (c.torrents, c.leechers_v4, c.seeders_v4, c.leechers_v6),
        (1, 1, 0, 0)
    );
}

#[test]
fn mass_expiry_gives_memory_back_and_keeps_every_survivor() {
    let r = small(RegistryConfig {
        peer_timeout: 10,
        ..Default::default()
    });
    let key = |t: u32| {
        let mut k = [3; 20];
        k[..4].copy_from_slice(&t.to_le_bytes());
        swarmd_proto::InfoHash(k)
    };
    // 2,000 torrents of 1-3 IPv4 peers, every seventh with an IPv6 peer too; a fifth of them
    // announce again later.
    let mut out = SelectedPeers::new();
    for t in 0..2000u32 {
        for p in 0..=t % 3 {
            let a = ann(key(t), v4(t * 4 + p), Event::Started, u64::from(p), 5);
            r.announce(&a, 0, &mut out).expect("room");
        }
        if t % 7 == 0 {
            r.announce(&ann(key(t), v6(t), Event::Started, 0, 5), 0, &mut out)
                .expect("room");
        }
    }
    r.check_invariants();
    for t in (0..2000u32).step_by(5) {
        let a = ann(key(t), v4(t * 4), Event::None, 1, 5);
        r.announce(&a, 20, &mut out).expect("tracked");
    }
    let s = r.sweep(25, 4);
    assert_eq!(s.torrents_removed, 1600);
    r.check_invariants();
    assert_eq!(r.counts().torrents, 400);
    for t in 0..2000u32 {
        // The survivor re-announced as a leecher.
        let want = (t % 5 == 0).then_some(SwarmStats {
            complete: 0,
            incomplete: 1,
            downloaded: 0,
            downloaders: 1,
        });
        assert_eq!(r.scrape(&key(t)), want, "torrent {t}");
    }
    // The freed records are reused.
    for t in 2000..2500u32 {
        go(&r, &ann(key(t), v4(t * 4), Event::Started, 0, 5), 30);
    }
    assert_eq!(r.counts().torrents, 900);
    assert_eq!(r.sweep(100, 4).torrents_removed, 900);
    r.check_invariants();
    assert_eq!(r.counts(), crate::RegistryCounts::default());
}

#[test]
fn prefetch_is_only_a_hint() {
    use crate::Prefetch;
    let r = small(RegistryConfig::default());
    // An empty registry (no index yet), then known and unknown torrents, a held shard.
    for step in [Prefetch::Bucket, Prefetch::Record] {
        r.prefetch(&ih(1), step);
    }
    for t in 0..300u32 {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(&t.to_le_bytes());
        go(&r, &ann(InfoHash(h), v4(t), Event::Started, 1, 5), 1);
    }
    let before = r.counts();
    for t in 0..600u32 {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(&t.to_le_bytes());
        for step in [Prefetch::Bucket, Prefetch::Record] {
            r.prefetch(&InfoHash(h), step);
        }
    }
    let (_, shard) = r.shard(&ih(9));
    let held = shard.lock();
    r.prefetch(&ih(9), Prefetch::Record);
    drop(held);
    assert_eq!(r.counts(), before);
    r.check_invariants();
    assert_eq!(r.scrape(&ih(200)), None);
}
