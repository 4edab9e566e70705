//! KRPC query load generator: many sockets (source ports), each with pre-built `ping`,
//! `find_node` and `get_peers` queries and a window of queries in flight. Prints replies per
//! second by kind; the benchmark scripts read the node's CPU time around it.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
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
    /// Offered load in queries per second, over all sockets (default: as fast as answered).
    #[arg(long)]
    rate: Option<f64>,
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
    let totals = swarmd_bench::Totals::default();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.duration);

    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut workers = Vec::new();
        for s in 0..args.sockets {
            let (args, hashes, totals) = (&args, &hashes, &totals);
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
                let mut packets: Vec<Vec<u8>> = (0..args.packets)
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
                let plan = swarmd_bench::Plan {
                    packets: &mut packets,
                    resend: None,
                    window: args.window,
                    deadline,
                    limit: None,
                    rate: args.rate.map(|r| r / args.sockets as f64),
                    spin: false,
                };
                swarmd_bench::drive(&sock, plan, totals, |b| match parse_message(b) {
                    Ok(m) if matches!(m.body, Body::Response(_)) => swarmd_bench::Reply {
                        expected: true,
                        request: <[u8; 2]>::try_from(m.transaction_id)
                            .ok()
                            .map(|t| usize::from(u16::from_be_bytes(t))),
                    },
                    _ => swarmd_bench::Reply {
                        expected: false,
                        request: None,
                    },
                })?;
                Ok(())
            }));
        }
        for w in workers {
            w.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
        }
        Ok(())
    })?;
    println!("{}", totals.report(start.elapsed(), "response"));
    Ok(())
}
