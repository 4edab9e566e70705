//! Benchmarks of the private-mode access policy on the request path: one tracker announce
//! (passkey and allow-list lookups, client rules, session accounting) against 100,000 listed
//! torrents, 1,000 users and 65,536 live sessions on skewed hashes, as the UDP and HTTP
//! trackers call it; then keep-alives into one big swarm of 5,000 sessions (the hash index of
//! a torrent's sessions), and the flush of everything that accumulated.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use criterion::{Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use swarmd_private::{Mode, PrivateConfig, PrivatePolicy, TorrentOptions};
use swarmd_proto::{Event, InfoHash, PeerId};
use swarmd_swarm::access::{AccessPolicy, AccessRequest, OpenPolicy, Protocol, Transfer};
use swarmd_swarm::clock::ManualClock;
use swarmd_swarm::{Prefetch, Registry, RegistryConfig};

/// Announces per batch in the batched cases (a UDP worker's default `recv_batch`).
const BATCH: usize = 32;

struct Peer {
    info_hash: InfoHash,
    peer_id: PeerId,
    key: usize,
    port: u16,
}

fn bench_announce(c: &mut Criterion) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let registry = Arc::new(Registry::new(RegistryConfig::default()));
    let policy = PrivatePolicy::open(
        &PrivateConfig::new(Mode::Private, ":memory:"),
        registry,
        clock.clone(),
    )
    .unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let hashes: Vec<InfoHash> = (0..100_000).map(|_| InfoHash(rng.random())).collect();
    let items: Vec<_> = hashes
        .iter()
        .map(|h| (*h, TorrentOptions::default()))
        .collect();
    policy.allow_torrents(&items).unwrap();
    let keys: Vec<String> = (0..1_000)
        .map(|i| policy.create_user(&format!("user{i}")).unwrap().1.key)
        .collect();
    let peers: Vec<Peer> = (0..65_536)
        .map(|i| {
            let r: f64 = rng.random();
            Peer {
                info_hash: hashes[((r * r * r) * hashes.len() as f64) as usize],
                peer_id: PeerId(rng.random()),
                key: rng.random_range(0..keys.len()),
                port: 1025 + (i % 60_000) as u16,
            }
        })
        .collect();
    let client = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
    let announce = |p: &Peer, uploaded: u64| {
        policy.announce(&AccessRequest {
            protocol: Protocol::Udp,
            info_hash: &p.info_hash,
            passkey: Some(keys[p.key].as_bytes()),
            peer_id: Some(&p.peer_id),
            client,
            transfer: Some(Transfer {
                uploaded,
                downloaded: 0,
                left: 1000,
                event: Event::None,
                port: p.port,
            }),
            now: None,
        })
    };
    for p in &peers {
        assert!(announce(p, 0).is_allowed());
    }
    // As the server's periodic flush does: the new sessions' baselines written, so the
    // keep-alives below find them clean, as they would a few seconds after they began.
    policy.flush().unwrap();
    let mut g = c.benchmark_group("private_policy");
    let mut i = 0usize;
    // The loop alone (picking a peer, building its request), for the policy's own cost.
    let open = OpenPolicy;
    g.bench_function("harness_only_open_policy", |b| {
        b.iter(|| {
            i = (i + 7919) & 0xffff;
            let p = &peers[i];
            // Read what a policy reads: the hash, the peer id, the passkey's bytes.
            let (info_hash, peer_id) = black_box((p.info_hash, p.peer_id));
            let passkey = keys[p.key].as_bytes();
            black_box((passkey[0], passkey[passkey.len() - 1]));
            black_box(&open).announce(&AccessRequest {
                protocol: Protocol::Udp,
                info_hash: &info_hash,
                passkey: Some(passkey),
                peer_id: Some(&peer_id),
                client,
                transfer: Some(Transfer {
                    uploaded: 0,
                    downloaded: 0,
                    left: 1000,
                    event: Event::None,
                    port: p.port,
                }),
                now: None,
            })
        })
    });
    g.bench_function("announce_keepalive_65k_sessions", |b| {
        b.iter(|| {
            i = (i + 7919) & 0xffff;
            black_box(announce(&peers[i], 0))
        })
    });
    // The same keep-alives with the peers taken in order: the request's own data is then hot
    // (as a server's freshly parsed packet is), so only the policy's misses are left. The
    // torrents and sessions are still visited in random order.
    let mut k = 0usize;
    g.bench_function("announce_keepalive_65k_sessions_hot_request", |b| {
        b.iter(|| {
            k = (k + 1) & 0xffff;
            black_box(announce(&peers[k], 0))
        })
    });
    // Keep-alives in batches of 32, as a UDP worker takes datagrams (their data hot, the
    // torrents and sessions in random order): as they come, then with the prefetch pipeline
    // the worker runs (the shard, torrent and session two requests ahead).
    g.throughput(Throughput::Elements(BATCH as u64));
    for prefetch in [false, true] {
        let name = if prefetch {
            "announce_keepalive_65k_sessions_batch32_prefetch"
        } else {
            "announce_keepalive_65k_sessions_batch32"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                // In order, as in the hot-request case: a worker's datagrams are in its cache.
                let batch: [&Peer; BATCH] = std::array::from_fn(|_| {
                    k = (k + 1) & 0xffff;
                    &peers[k]
                });
                if prefetch {
                    for p in &batch[..2] {
                        policy.prefetch(&p.info_hash, Some(&p.peer_id), Prefetch::Bucket);
                    }
                }
                for (k, p) in batch.iter().enumerate() {
                    if prefetch {
                        if let Some(next) = batch.get(k + 2) {
                            policy.prefetch(&next.info_hash, Some(&next.peer_id), Prefetch::Bucket);
                        }
                        if let Some(next) = batch.get(k + 1) {
                            policy.prefetch(&next.info_hash, Some(&next.peer_id), Prefetch::Record);
                        }
                    }
                    black_box(announce(p, 0));
                }
            })
        });
    }
    g.throughput(Throughput::Elements(1));
    let mut up = 0u64;
    g.bench_function("announce_progress_65k_sessions", |b| {
        b.iter(|| {
            i = (i + 7919) & 0xffff;
            up += 16_384;
            black_box(announce(&peers[i], up))
        })
    });
    // One big swarm: 5,000 sessions of random users on one torrent.
    let big = InfoHash(rng.random());
    policy
        .allow_torrent(big, &TorrentOptions::default())
        .unwrap();
    let swarm: Vec<Peer> = (0..5_000)
        .map(|i| Peer {
            info_hash: big,
            peer_id: PeerId(rng.random()),
            key: rng.random_range(0..keys.len()),
            port: 1025 + i as u16,
        })
        .collect();
    for p in &swarm {
        assert!(announce(p, 0).is_allowed());
    }
    let mut j = 0usize;
    g.bench_function("announce_keepalive_5k_swarm", |b| {
        b.iter(|| {
            j = (j + 2503) % swarm.len();
            black_box(announce(&swarm[j], 0))
        })
    });
    g.finish();
    let f = policy.flush().unwrap();
    println!(
        "flush after the benchmark: {} records, {} sessions in {:.3} s ({:.2} us per row)",
        f.records,
        f.sessions_written,
        f.duration_secs,
        f.duration_secs * 1e6 / (f.records + f.sessions_written).max(1) as f64
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_announce(&mut c);
    c.final_summary();
}
