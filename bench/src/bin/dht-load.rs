//! KRPC query load generator: many sockets (source ports), each with pre-built `ping`,
//! `find_node` and `get_peers` queries and a window of queries in flight. Prints replies per
//! second by kind; the benchmark scripts read the node's CPU time around it.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use swarmd_proto::krpc::{parse_message, write_query, Body, Method, Want};
use swarmd_proto::{InfoHash, NodeId};

/// Drive a DHT node with queries on loopback.
#[derive(Parser, Debug)]
struct Args {
    /// The node's UDP address (loopback only).
    #[arg(long)]
    target: SocketAddr,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Sockets, i.e. source ports (one thread each).
    #[arg(long, default_value_t = 16)]
    sockets: usize,
    /// Queries in flight per socket.
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Info hashes for get_peers (hex, one per line); without it, 10,000 random ones.
    #[arg(long)]
    hash_file: Option<PathBuf>,
    /// Percent of queries that are `ping`, `find_node`; the rest are `get_peers`.
    #[arg(long, default_value_t = 20)]
    ping_pct: u32,
    /// Percent of queries that are `find_node`.
    #[arg(long, default_value_t = 40)]
    find_node_pct: u32,
    /// Distinct pre-built queries per socket.
    #[arg(long, default_value_t = 1024)]
    packets: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.target.ip().is_loopback(),
        "load generators only target loopback addresses"
    );
    anyhow::ensure!(
        args.ping_pct + args.find_node_pct <= 100,
        "mix exceeds 100%"
    );
    anyhow::ensure!(
        args.packets <= 1 << 16,
        "at most 65536 packets (2-byte transaction ids)"
    );
    let hashes: Vec<InfoHash> = match &args.hash_file {
        Some(p) => swarmd_bench::read_hashes(p)?,
        None => {
            let mut rng = StdRng::seed_from_u64(1);
            (0..10_000).map(|_| InfoHash(rng.random())).collect()
        }
    };
    let sent = AtomicU64::new(0);
    let replies = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.duration);

    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut workers = Vec::new();
        for s in 0..args.sockets {
            let (args, hashes, sent, replies, errors) = (&args, &hashes, &sent, &replies, &errors);
            workers.push(scope.spawn(move || -> anyhow::Result<()> {
                let local: SocketAddr = if args.target.is_ipv4() {
                    "127.0.0.1:0".parse()?
                } else {
                    "[::1]:0".parse()?
                };
                let sock = UdpSocket::bind(local)?;
                sock.connect(args.target)?;
                sock.set_read_timeout(Some(Duration::from_millis(20)))?;
                let mut rng = StdRng::seed_from_u64(s as u64 + 7);
                let me = NodeId(rng.random());
                let packets: Vec<Vec<u8>> = (0..args.packets)
                    .map(|i| {
                        let tid = (i as u16).to_be_bytes();
                        let roll = rng.random_range(0..100);
                        let method = if roll < args.ping_pct {
                            Method::Ping
                        } else if roll < args.ping_pct + args.find_node_pct {
                            Method::FindNode {
                                target: NodeId(rng.random()),
                            }
                        } else {
                            Method::GetPeers {
                                info_hash: hashes[rng.random_range(0..hashes.len())],
                                noseed: false,
                                scrape: false,
                            }
                        };
                        let mut p = Vec::with_capacity(128);
                        write_query(&mut p, &tid, me, &method, Want::default(), false, None);
                        p
                    })
                    .collect();
                let mut buf = vec![0u8; 2048];
                let mut next = 0usize;
                while Instant::now() < deadline {
                    for _ in 0..args.window {
                        sock.send(&packets[next % packets.len()])?;
                        next += 1;
                    }
                    sent.fetch_add(args.window as u64, Ordering::Relaxed);
                    let mut got = 0u64;
                    for _ in 0..args.window {
                        match sock.recv(&mut buf) {
                            Ok(n) => {
                                got += 1;
                                if !matches!(
                                    parse_message(&buf[..n]).map(|m| m.body),
                                    Ok(Body::Response(_))
                                ) {
                                    errors.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            Err(_) => break,
                        }
                    }
                    replies.fetch_add(got, Ordering::Relaxed);
                }
                Ok(())
            }));
        }
        for w in workers {
            w.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
        }
        Ok(())
    })?;
    let secs = start.elapsed().as_secs_f64();
    let (s, r, e) = (
        sent.load(Ordering::Relaxed),
        replies.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
    );
    println!(
        "sent {s} received {r} non-response replies {e} in {secs:.1} s: {:.0} replies/s ({:.2}% lost)",
        r as f64 / secs,
        100.0 * (s.saturating_sub(r)) as f64 / s.max(1) as f64
    );
    Ok(())
}
