//! Registry throughput at 1,000,000 IPv4 peers over 100,000 torrents (the Zipf distribution of
//! `tests/memory.rs`): re-announces of stored peers asking for 50 peers, inserts of new peers,
//! and scrapes. Single-threaded: this measures the cost of one operation, not contention.
//!
//! `cargo bench -p swarmd-swarm --bench registry`

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::{criterion_main, Criterion, Throughput};
use rand::Rng;
use swarmd_proto::{Event, InfoHash, PeerId};
use swarmd_swarm::{Announce, Prefetch, Registry, RegistryConfig, SelectedPeers};

const PEERS: usize = 1_000_000;
const TORRENTS: usize = 100_000;
/// Requests per batch in the batched cases (a UDP worker's default `recv_batch`).
const BATCH: usize = 32;

fn info_hash(rank: usize) -> InfoHash {
    let mut h = [0x5a; 20];
    h[..8].copy_from_slice(&(rank as u64).to_le_bytes());
    InfoHash(h)
}

fn addr(n: u32) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + n), 6881))
}

fn announce(rank: usize, n: u32, event: Event, numwant: usize) -> Announce {
    Announce {
        info_hash: info_hash(rank),
        peer_id: PeerId([1; 20]),
        addr: addr(n),
        event,
        left: if n % 3 == 0 { 0 } else { 1000 },
        numwant,
    }
}

/// The registry, and the torrent rank of every peer (peer `n` has address `addr(n + 1)`).
fn build() -> (Registry, Vec<u32>) {
    let sizes_for = |c: usize| (1..=TORRENTS).map(move |k| (c / k).max(1));
    let (mut lo, mut hi) = (1, PEERS);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if sizes_for(mid).sum::<usize>() <= PEERS {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut sizes: Vec<usize> = sizes_for(lo).collect();
    let total: usize = sizes.iter().sum();
    sizes[0] += PEERS - total;
    let registry = Registry::new(RegistryConfig::default());
    let mut torrent_of = Vec::with_capacity(PEERS);
    let mut out = SelectedPeers::new();
    for (rank, &size) in sizes.iter().enumerate() {
        for _ in 0..size {
            torrent_of.push(rank as u32);
            let n = torrent_of.len() as u32;
            registry
                .announce(&announce(rank, n, Event::Started, 0), 0, &mut out)
                .unwrap();
        }
    }
    (registry, torrent_of)
}

fn bench(c: &mut Criterion) {
    let (registry, torrent_of) = build();
    let mut rng = rand::rng();
    // Random peers, drawn ahead so the RNG is not measured: big swarms get most announces.
    let picks: Vec<u32> = (0..1 << 16)
        .map(|_| rng.random_range(0..torrent_of.len() as u32))
        .collect();
    let mut out = SelectedPeers::new();
    let mut group = c.benchmark_group("registry_1m_peers");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));

    let mut i = 0;
    group.bench_function("reannounce_numwant_50", |b| {
        b.iter(|| {
            i = (i + 1) & 0xffff;
            let p = picks[i];
            let req = announce(torrent_of[p as usize] as usize, p + 1, Event::None, 50);
            black_box(registry.announce(&req, 1, &mut out).unwrap());
        })
    });

    // The same without peer selection: bookkeeping alone.
    group.bench_function("reannounce_numwant_0", |b| {
        b.iter(|| {
            i = (i + 1) & 0xffff;
            let p = picks[i];
            let req = announce(torrent_of[p as usize] as usize, p + 1, Event::None, 0);
            black_box(registry.announce(&req, 1, &mut out).unwrap());
        })
    });

    // New peers (fresh addresses) into the torrents of random peers; the inserted peers are
    // stopped again outside the timed loop, so the registry stays at 1M peers.
    let mut fresh = PEERS as u32 + 1;
    group.bench_function("insert_new_peer_numwant_50", |b| {
        b.iter_custom(|iters| {
            let first = fresh;
            let start = Instant::now();
            for k in 0..iters {
                let p = picks[(k & 0xffff) as usize] as usize;
                let req = announce(torrent_of[p] as usize, fresh, Event::Started, 50);
                black_box(registry.announce(&req, 1, &mut out).unwrap());
                fresh += 1;
            }
            let elapsed = start.elapsed();
            for (k, n) in (first..fresh).enumerate() {
                let p = picks[k & 0xffff] as usize;
                registry
                    .announce(
                        &announce(torrent_of[p] as usize, n, Event::Stopped, 0),
                        1,
                        &mut out,
                    )
                    .unwrap();
            }
            elapsed
        })
    });

    // Batches of 32 re-announces to uniformly drawn torrents (mostly small swarms, cold in
    // the cache), the way a UDP worker handles a batch of datagrams: as they come, then with
    // the two-step prefetch pipeline (bucket two requests ahead, record one ahead).
    let mut first = vec![0u32; TORRENTS];
    for (k, &r) in torrent_of.iter().enumerate().rev() {
        first[r as usize] = k as u32;
    }
    let uniform: Vec<Announce> = (0..1 << 16)
        .map(|_| {
            let r = rng.random_range(0..TORRENTS);
            announce(r, first[r] + 1, Event::None, 50)
        })
        .collect();
    group.throughput(Throughput::Elements(BATCH as u64));
    for prefetch in [false, true] {
        let name = if prefetch {
            "batch32_uniform_prefetch"
        } else {
            "batch32_uniform"
        };
        let mut at = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                let batch = &uniform[at..at + BATCH];
                at = (at + BATCH) % uniform.len();
                if prefetch {
                    for req in &batch[..2] {
                        registry.prefetch(&req.info_hash, Prefetch::Bucket);
                    }
                }
                for (k, req) in batch.iter().enumerate() {
                    if prefetch {
                        if let Some(next) = batch.get(k + 2) {
                            registry.prefetch(&next.info_hash, Prefetch::Bucket);
                        }
                        if let Some(next) = batch.get(k + 1) {
                            registry.prefetch(&next.info_hash, Prefetch::Record);
                        }
                    }
                    black_box(registry.announce(req, 1, &mut out).unwrap());
                }
            })
        });
    }
    group.throughput(Throughput::Elements(1));

    let mut j = 0;
    group.bench_function("scrape", |b| {
        b.iter(|| {
            j = (j + 1) & 0xffff;
            black_box(registry.scrape(&info_hash(torrent_of[picks[j] as usize] as usize)))
        })
    });
    group.finish();
}

// The macro defines an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
