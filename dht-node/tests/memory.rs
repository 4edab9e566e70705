//! Heap bytes per node of the bootstrap-mode table: 1,000,000 IPv4 nodes and 250,000 IPv6
//! nodes with random ids, loaded through [`DhtNode::restore`] (what a restart does).
//!
//! Heap use is measured with a counting global allocator (net live bytes requested). Run with
//! `--nocapture` to see the figures:
//! `cargo test -p swarmd-dht-node --release --test memory -- --nocapture`.

// A `#[global_allocator]` must implement the unsafe `GlobalAlloc` trait; this test-only wrapper
// forwards every call to the system allocator unchanged and only counts bytes.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use swarmd_dht_node::{DhtConfig, DhtDeps, DhtNode, NodeInfo, Snapshot};
use swarmd_proto::NodeId;
use swarmd_swarm::access::OpenPolicy;
use swarmd_swarm::clock::SystemClock;
use swarmd_swarm::metrics::Metrics;
use swarmd_swarm::{Registry, RegistryConfig};

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

fn node(max_nodes: usize) -> DhtNode {
    let deps = DhtDeps {
        registry: Arc::new(Registry::new(RegistryConfig {
            shards: 1,
            ..RegistryConfig::default()
        })),
        policy: Arc::new(OpenPolicy),
        clock: Arc::new(SystemClock::new()),
        metrics: Metrics::new().unwrap(),
    };
    DhtNode::new(
        DhtConfig {
            bootstrap_mode: true,
            max_nodes,
            bootstrap_nodes: Vec::new(),
            node_id: Some(NodeId([0; 20])),
            ..DhtConfig::default()
        },
        deps,
        Instant::now(),
    )
}

/// Net heap bytes the verified table holds after loading `nodes`.
fn measure(nodes: Vec<NodeInfo>) -> (usize, usize) {
    let n = nodes.len();
    let mut dht = node(n);
    let snapshot = Snapshot {
        own_id: NodeId([0; 20]),
        nodes,
    };
    let input = snapshot.nodes.capacity() * std::mem::size_of::<NodeInfo>();
    let before = LIVE.load(Ordering::Relaxed);
    dht.restore(snapshot, Instant::now());
    // The snapshot's vector was freed inside `restore`.
    let bytes = LIVE.load(Ordering::Relaxed) + input - before;
    let s = dht.stats();
    (bytes, s.verified_v4 + s.verified_v6)
}

#[test]
fn bytes_per_verified_node() {
    let v4: Vec<NodeInfo> = (0..1_000_000u32)
        .map(|i| NodeInfo {
            id: NodeId(rand::random()),
            addr: SocketAddr::from(((0x0a00_0000 + i).to_be_bytes(), 6881)),
        })
        .collect();
    let (bytes, stored) = measure(v4);
    assert_eq!(stored, 1_000_000);
    let per_v4 = bytes as f64 / stored as f64;

    let v6: Vec<NodeInfo> = (0..250_000u32)
        .map(|i| NodeInfo {
            id: NodeId(rand::random()),
            addr: SocketAddr::new(
                Ipv6Addr::from((0xfd00_u128 << 112) + u128::from(i)).into(),
                6881,
            ),
        })
        .collect();
    let (bytes, stored) = measure(v6);
    assert_eq!(stored, 250_000);
    let per_v6 = bytes as f64 / stored as f64;

    println!("bootstrap table: {per_v4:.1} bytes per IPv4 node, {per_v6:.1} per IPv6 node");
    println!(
        "so 10 million IPv4 nodes take about {:.0} MiB",
        per_v4 * 1e7 / f64::from(1 << 20)
    );
    assert!(per_v4 < 64.0, "{per_v4:.1} bytes per IPv4 node");
    assert!(per_v6 < 80.0, "{per_v6:.1} bytes per IPv6 node");
}
