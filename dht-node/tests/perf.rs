//! Throughput measurements, ignored by default. Run with
//! `cargo test -p swarmd-dht-node --release --test perf -- --ignored --nocapture --test-threads 1`.
//!
//! Both run a bootstrap-mode node holding 1,000,000 verified IPv4 nodes and a registry of
//! 10,000 swarms of 3 peers, and a query mix of 20% `ping`, 40% `find_node`, 40% `get_peers`
//! (half of them for stored hashes) from 1024 source ports, rate limit off.
//!
//! * `perf_core`: user-space work per query through [`DhtNode::handle`], no sockets.
//! * `perf_udp`: a loopback flood against a [`DhtServer`] on its own single-threaded runtime
//!   thread; prints that thread's user and system CPU per reply (from `/proc`), so the figure
//!   does not depend on how fast the load generator is. `SWARMD_DHT_PERF_SECS` sets the length
//!   (default 5).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarmd_dht_node::{DhtConfig, DhtDeps, DhtNode, DhtServer, NodeInfo, Snapshot};
use swarmd_proto::krpc::{write_query, Method, Want};
use swarmd_proto::{Event, InfoHash, NodeId, PeerId};
use swarmd_swarm::access::OpenPolicy;
use swarmd_swarm::clock::SystemClock;
use swarmd_swarm::metrics::Metrics;
use swarmd_swarm::{Announce, Registry, RegistryConfig, SelectedPeers};
use tokio_util::sync::CancellationToken;

fn table_size() -> u32 {
    std::env::var("SWARMD_DHT_PERF_NODES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}
const HASHES: u32 = 10_000;

fn hash(i: u32) -> InfoHash {
    let mut h = [0x5a; 20];
    h[..4].copy_from_slice(&i.to_be_bytes());
    InfoHash(h)
}

fn deps() -> DhtDeps {
    let registry = Arc::new(Registry::new(RegistryConfig::default()));
    let mut out = SelectedPeers::new();
    for i in 0..HASHES * 3 {
        let a = Announce {
            info_hash: hash(i % HASHES),
            peer_id: PeerId([1; 20]),
            addr: SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 6881)),
            event: Event::Started,
            left: 1,
            numwant: 0,
        };
        registry.announce(&a, 0, &mut out).unwrap();
    }
    DhtDeps {
        registry,
        policy: Arc::new(OpenPolicy),
        clock: Arc::new(SystemClock::new()),
        metrics: Metrics::new().unwrap(),
    }
}

fn config() -> DhtConfig {
    DhtConfig {
        bootstrap_mode: true,
        max_nodes: table_size() as usize,
        bootstrap_nodes: Vec::new(),
        rate_limit_per_sec: 0,
        repeat_requester_threshold: u32::MAX,
        node_id: Some(NodeId([0x77; 20])),
        ..DhtConfig::default()
    }
}

fn table() -> Snapshot {
    Snapshot {
        own_id: NodeId([0x77; 20]),
        nodes: (0..table_size())
            .map(|i| NodeInfo {
                id: NodeId(rand::random()),
                addr: SocketAddr::from(((0x0a00_0000 + i).to_be_bytes(), 6881)),
            })
            .collect(),
    }
}

/// The query mix, 4096 packets with 2-byte transaction ids.
fn queries() -> Vec<(Vec<u8>, &'static str)> {
    (0..4096u32)
        .map(|i| {
            let id = NodeId(rand::random());
            let (method, kind) = match i % 10 {
                0 | 1 => (Method::Ping, "ping"),
                2..=5 => (
                    Method::FindNode {
                        target: NodeId(rand::random()),
                    },
                    "find_node",
                ),
                6 | 7 => (
                    Method::GetPeers {
                        info_hash: hash(i % HASHES),
                        noseed: false,
                        scrape: false,
                    },
                    "get_peers",
                ),
                _ => (
                    Method::GetPeers {
                        info_hash: InfoHash(rand::random()),
                        noseed: false,
                        scrape: false,
                    },
                    "get_peers",
                ),
            };
            let mut p = Vec::new();
            write_query(
                &mut p,
                &(i as u16).to_be_bytes(),
                id,
                &method,
                Want::default(),
                false,
                Some(b"LT\x02\x08"),
            );
            (p, kind)
        })
        .collect()
}

#[test]
#[ignore = "performance measurement"]
fn perf_core() {
    let t0 = Instant::now();
    let mut node = DhtNode::new(config(), deps(), t0);
    node.restore(table(), t0);
    println!(
        "table of {} verified nodes loaded in {:.2?}",
        node.stats().verified_v4,
        t0.elapsed()
    );
    let packets = queries();
    let sources: Vec<SocketAddr> = (0..1024u16)
        .map(|p| SocketAddr::from(([127, 0, 0, 2], 20_000 + p)))
        .collect();
    let mut out = Vec::with_capacity(1500);
    for kind in ["ping", "find_node", "get_peers", "mix"] {
        let picked: Vec<&Vec<u8>> = packets
            .iter()
            .filter(|(_, k)| kind == "mix" || *k == kind)
            .map(|(p, _)| p)
            .collect();
        let n = 1_000_000usize;
        let start = Instant::now();
        let mut bytes = 0usize;
        for k in 0..n {
            let now = t0 + Duration::from_micros(k as u64);
            if node.handle(
                picked[k % picked.len()],
                sources[k % sources.len()],
                now,
                &mut out,
            ) {
                bytes += out.len();
            }
            if k % 4096 == 0 {
                while node.poll_transmit().is_some() {}
                node.tick(now);
            }
        }
        let per = start.elapsed().as_nanos() as f64 / n as f64;
        println!(
            "{kind}: {per:.0} ns/query ({:.0} queries/s of user-space work on one core), {:.0} reply bytes avg",
            1e9 / per,
            bytes as f64 / n as f64
        );
    }
}

/// utime and stime of one thread of this process, in clock ticks (1/100 s).
fn thread_cpu(tid: &str) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    (f[11].parse().unwrap(), f[12].parse().unwrap())
}

fn thread_named(name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        for e in std::fs::read_dir("/proc/self/task").unwrap() {
            let tid = e.unwrap().file_name().into_string().unwrap();
            let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"));
            if comm.is_ok_and(|c| c.trim() == name) {
                return tid;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no thread {name}");
}

#[test]
#[ignore = "performance measurement"]
fn perf_udp() {
    let secs: u64 = std::env::var("SWARMD_DHT_PERF_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let state = std::env::temp_dir().join(format!("swarmd-dht-perf-{}.bin", std::process::id()));
    swarmd_dht_node::persist::save(&state, &table()).unwrap();
    let stop = CancellationToken::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let server_stop = stop.clone();
    let server_state = state.clone();
    let server = std::thread::Builder::new()
        .name("dht-perf-node".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let addr = SocketAddr::from(([127, 0, 0, 1], 0));
                let config = DhtConfig {
                    state_file: Some(server_state),
                    ..config()
                };
                let s = DhtServer::start(&[addr], config, deps(), server_stop).unwrap();
                tx.send((s.local_addrs()[0], s.handle())).unwrap();
                s.join().await;
            });
        })
        .unwrap();
    let (target, handle) = rx.recv().unwrap();
    let tid = thread_named("dht-perf-node");
    // Wait for the node to load its 1M-node table from the state file.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while rt.block_on(handle.stats()).unwrap().1.verified_v4 < table_size() as usize {
        assert!(Instant::now() < deadline, "table not loaded");
        std::thread::sleep(Duration::from_millis(100));
    }
    let packets = Arc::new(queries());
    let replies = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut gens = Vec::new();
    for g in 0..2u8 {
        let (packets, replies, done) = (packets.clone(), replies.clone(), done.clone());
        gens.push(std::thread::spawn(move || {
            generate(g, target, &packets, &replies, &done)
        }));
    }
    std::thread::sleep(Duration::from_millis(500));
    let (r0, c0, t0) = (
        replies.load(Ordering::Relaxed),
        thread_cpu(&tid),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs(secs));
    let (r1, c1, wall) = (
        replies.load(Ordering::Relaxed),
        thread_cpu(&tid),
        t0.elapsed().as_secs_f64(),
    );
    done.store(true, Ordering::Relaxed);
    for g in gens {
        g.join().unwrap();
    }
    stop.cancel();
    server.join().unwrap();
    let _ = std::fs::remove_file(&state);
    let n = (r1 - r0) as f64;
    let tick_us = 1e6 / 100.0;
    let (user, sys) = (
        (c1.0 - c0.0) as f64 * tick_us / n,
        (c1.1 - c0.1) as f64 * tick_us / n,
    );
    println!(
        "udp: {:.0} replies/s; node thread CPU per reply: user {user:.2} us, system {sys:.2} us \
         ({:.0}% of a core) => about {:.0} replies per node CPU-second",
        n / wall,
        (c1.0 + c1.1 - c0.0 - c0.1) as f64 / wall,
        1e6 / (user + sys)
    );
}

/// One generator thread: 32 non-blocking sockets on 127.0.0.(10 + g), 16 queries in flight each.
fn generate(
    g: u8,
    target: SocketAddr,
    packets: &[(Vec<u8>, &str)],
    replies: &AtomicU64,
    done: &AtomicBool,
) {
    const SOCKETS: usize = 32;
    const WINDOW: usize = 16;
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + g));
    let socks: Vec<UdpSocket> = (0..SOCKETS)
        .map(|_| {
            let s = UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
            s.connect(target).unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let mut inflight = vec![0usize; SOCKETS];
    let mut last = vec![Instant::now(); SOCKETS];
    let mut buf = [0u8; 2048];
    let mut k = usize::from(g) * 977;
    while !done.load(Ordering::Relaxed) {
        for (i, s) in socks.iter().enumerate() {
            while inflight[i] < WINDOW {
                k = k.wrapping_add(1);
                if s.send(&packets[k % packets.len()].0).is_err() {
                    break;
                }
                inflight[i] += 1;
            }
            let mut got = 0;
            while s.recv(&mut buf).is_ok() {
                got += 1;
            }
            if got > 0 {
                inflight[i] = inflight[i].saturating_sub(got);
                last[i] = Instant::now();
                replies.fetch_add(got as u64, Ordering::Relaxed);
            } else if last[i].elapsed() > Duration::from_millis(50) {
                inflight[i] = 0;
                last[i] = Instant::now();
            }
        }
    }
}
