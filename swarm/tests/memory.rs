//! Heap bytes per peer of the registry in two scenarios.
//!
//! * **Flat** (the issue 7 target, what `bench/compare.sh` fills over UDP): 2,000,000 IPv4 peers
//!   over 1,000,000 torrents, two peers each, one seeder and one leecher.
//! * **Zipf**: 1,000,000 IPv4 peers over 100,000 torrents, a realistic popularity curve.
//!
//! Measured (peer ids not kept / kept), before and after issue 7 moved small swarms into
//! 48-byte records: flat 96.9 / 136.8 bytes a peer before, 28.8 / 105.3 after (about 30 resident
//! against 115 before); Zipf 33.4 / 64.6 before, 29.3 / 65.4 after.
//!
//! Zipf distribution (Zipf, exponent 1, floor of one peer): the torrent of popularity rank `k`
//! (1-based) holds `max(1, floor(C / k))` peers, with `C` the largest constant keeping the total
//! at or under 1,000,000 (85,616) and the remainder added to the top torrent. So the top torrent
//! holds 85,624 peers, 85 torrents hold 1,000 or more, 79% of the torrents hold 1 to 3 peers,
//! and 72% of the peers sit in swarms big enough (over 32 peers) to carry an index.
//! Every third peer is a seeder.
//!
//! Heap use is measured with a counting global allocator (net live bytes requested), so it is
//! deterministic and the test can assert on it; it leaves out the allocator's own overhead
//! (malloc's chunk headers and rounding), which resident memory adds. The tests share the
//! counter, so they run one at a time. Run with `--nocapture` to see the figures:
//! `cargo test -p swarmd-swarm --test memory -- --nocapture`.

// A `#[global_allocator]` must implement the unsafe `GlobalAlloc` trait; this test-only wrapper
// forwards every call to the system allocator unchanged and only counts bytes.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use swarmd_proto::{Event, InfoHash, PeerId};
use swarmd_swarm::{Announce, Registry, RegistryConfig, SelectedPeers};

/// The system allocator, counting net live bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's own arguments, so `System`'s
// guarantees carry over; the counter has no bearing on memory safety.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl).
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl).
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Held by each test while it measures: the byte counter is process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

const PEERS: usize = 1_000_000;
const TORRENTS: usize = 100_000;

/// Peers per torrent, by popularity rank: Zipf (exponent 1) with a floor of one, summing to
/// exactly `PEERS`.
fn swarm_sizes() -> Vec<usize> {
    let sizes = |c: usize| (1..=TORRENTS).map(move |k| (c / k).max(1));
    let (mut lo, mut hi) = (1, PEERS);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if sizes(mid).sum::<usize>() <= PEERS {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut v: Vec<usize> = sizes(lo).collect();
    let total: usize = v.iter().sum();
    v[0] += PEERS - total;
    v
}

/// Builds the registry and returns its net heap bytes.
fn measure(sizes: &[usize], store_peer_ids: bool) -> usize {
    let before = LIVE.load(Ordering::Relaxed);
    let registry = Registry::new(RegistryConfig {
        store_peer_ids,
        ..RegistryConfig::default()
    });
    let mut out = SelectedPeers::new();
    let mut n: u32 = 0;
    for (rank, &size) in sizes.iter().enumerate() {
        let mut info_hash = [0x5a; 20];
        info_hash[..8].copy_from_slice(&(rank as u64).to_le_bytes());
        for _ in 0..size {
            n += 1;
            let req = Announce {
                info_hash: InfoHash(info_hash),
                peer_id: PeerId([n as u8; 20]),
                addr: SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + n), 6881)),
                event: Event::Started,
                left: if n % 3 == 0 { 0 } else { 1000 },
                numwant: 0,
            };
            registry.announce(&req, 0, &mut out).expect("within limits");
        }
    }
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    let c = registry.counts();
    assert_eq!(c.torrents as usize, TORRENTS);
    assert_eq!((c.seeders_v4 + c.leechers_v4) as usize, PEERS);
    drop(registry);
    bytes
}

#[test]
fn bytes_per_peer_at_one_million_peers() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sizes = swarm_sizes();
    assert_eq!(sizes.iter().sum::<usize>(), PEERS);
    let small = sizes.iter().filter(|&&s| s <= 3).count();
    let big = sizes.iter().filter(|&&s| s >= 1000).count();
    println!(
        "distribution: top swarm {} peers, {} swarms >= 1000 peers, {} of {} swarms hold 1-3 peers",
        sizes[0], big, small, TORRENTS
    );

    let lean = measure(&sizes, false) as f64 / PEERS as f64;
    let with_ids = measure(&sizes, true) as f64 / PEERS as f64;
    println!("bytes per peer (peer ids not kept): {lean:.1}");
    println!("bytes per peer (peer ids kept): {with_ids:.1}");
    assert!(
        lean <= 36.0,
        "{lean:.1} bytes per peer, the target is at most 36"
    );
}

const FLAT_TORRENTS: usize = 1_000_000;
const FLAT_PER_TORRENT: usize = 2;

/// Builds the flat registry (two peers a torrent, seeder then leecher) and returns its net heap
/// bytes.
fn measure_flat(store_peer_ids: bool) -> usize {
    let before = LIVE.load(Ordering::Relaxed);
    let registry = Registry::new(RegistryConfig {
        store_peer_ids,
        ..RegistryConfig::default()
    });
    let mut out = SelectedPeers::new();
    for t in 0..FLAT_TORRENTS {
        let mut info_hash = [0xa5; 20];
        info_hash[..8].copy_from_slice(&(t as u64).to_le_bytes());
        for i in 0..FLAT_PER_TORRENT {
            let n = (t * FLAT_PER_TORRENT + i) as u32;
            let req = Announce {
                info_hash: InfoHash(info_hash),
                peer_id: PeerId([n as u8; 20]),
                addr: SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + n), 6881)),
                event: Event::Started,
                left: if i % 2 == 0 { 0 } else { 1000 },
                numwant: 50,
            };
            registry.announce(&req, 0, &mut out).expect("within limits");
        }
    }
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    let c = registry.counts();
    assert_eq!(c.torrents as usize, FLAT_TORRENTS);
    assert_eq!(c.seeders_v4 as usize, FLAT_TORRENTS);
    assert_eq!(c.leechers_v4 as usize, FLAT_TORRENTS);
    drop(registry);
    bytes
}

#[test]
fn bytes_per_peer_at_two_peers_a_torrent() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let peers = (FLAT_TORRENTS * FLAT_PER_TORRENT) as f64;
    let lean = measure_flat(false) as f64 / peers;
    let with_ids = measure_flat(true) as f64 / peers;
    println!("flat, bytes per peer (peer ids not kept): {lean:.1}");
    println!("flat, bytes per peer (peer ids kept): {with_ids:.1}");
    // Issue 7: at most 38 bytes a peer resident (upstream opentracker's figure); the heap
    // figure leaves out malloc's overhead, which adds about 1.5 bytes a peer here.
    assert!(
        lean <= 36.0,
        "{lean:.1} bytes per peer, the target is at most 36"
    );
}
