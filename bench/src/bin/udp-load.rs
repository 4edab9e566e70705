//! BEP 15 load generator: several sockets (one thread each), each with pre-built requests
//! (a connect/announce/scrape mix over skewed info hashes) and a window of requests in flight,
//! optionally paced to a fixed offered load. Prints replies per second and reply latency; the
//! benchmark scripts read the server's CPU time around it.
//!
//! `--fill N` instead announces N distinct peers per info hash exactly once each (every hash of
//! the list): the memory benchmark's way to put, say, 2M peers over 1M torrents.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use swarmd_bench::{Plan, Reply};
use swarmd_proto::udp::{
    parse_response, write_announce_request, write_connect_request, write_scrape_request,
    AnnounceRequest, Response, UrlData,
};
use swarmd_proto::{Event, InfoHash, PeerId};

/// Drive a UDP tracker on loopback.
#[derive(Parser, Debug)]
struct Args {
    /// The tracker's UDP address (loopback only).
    #[arg(long)]
    target: SocketAddr,
    /// Seconds to run (a fill stops earlier once every peer is announced).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Sockets (one thread each).
    #[arg(long, default_value_t = 4)]
    sockets: usize,
    /// Requests in flight per socket.
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Info hashes (hex, one per line); without it, `--hashes` random ones are used.
    #[arg(long)]
    hash_file: Option<PathBuf>,
    /// Number of random info hashes when no file is given.
    #[arg(long, default_value_t = 10_000)]
    hashes: usize,
    /// Pre-built distinct requests per socket (distinct peers, for announces).
    #[arg(long, default_value_t = 4096)]
    packets: usize,
    /// `num_want` in each announce.
    #[arg(long, default_value_t = 50)]
    num_want: i32,
    /// Request mix, percent, as CONNECT:ANNOUNCE:SCRAPE.
    #[arg(long, default_value = "0:100:0")]
    mix: String,
    /// Offered load in requests per second, over all sockets (default: as fast as answered).
    #[arg(long)]
    rate: Option<f64>,
    /// Announce this many distinct peers on every info hash, once each, then stop.
    #[arg(long, value_name = "PEERS_PER_HASH")]
    fill: Option<usize>,
    /// Each time an announce is sent again, its downloaded and uploaded counters have grown
    /// by 16 KiB, as a transferring peer's do (without it, re-announces are keep-alives): under
    /// private mode every such announce is accounted, and its records written by the flush.
    #[arg(long)]
    progress: bool,
    /// Passkeys, one per line: each announce carries a random one as BEP 41 URL data
    /// (`/KEY/announce`), as clients of a private tracker do.
    #[arg(long, value_name = "FILE")]
    passkey_file: Option<PathBuf>,
    /// Poll for replies instead of sleeping until one comes, so the server's replies never
    /// have to wake the generator (on loopback that wake-up is charged to the server, and it
    /// grows as the server slows). The sockets' threads then keep their core busy.
    #[arg(long)]
    spin: bool,
}

fn connect(sock: &UdpSocket, buf: &mut [u8]) -> anyhow::Result<u64> {
    let mut p = Vec::new();
    for attempt in 0..20u32 {
        p.clear();
        write_connect_request(&mut p, attempt);
        sock.send(&p)?;
        if let Ok(n) = sock.recv(buf) {
            if let Ok(Response::Connect { connection_id, .. }) = parse_response(&buf[..n]) {
                return Ok(connection_id);
            }
        }
    }
    anyhow::bail!("no connect reply from the tracker")
}

/// A skewed pick: a few big swarms get most requests (the cube of a uniform draw).
fn skewed(rng: &mut StdRng, n: usize) -> usize {
    let r: f64 = rng.random();
    (((r * r * r) * n as f64) as usize).min(n - 1)
}

fn parse_mix(mix: &str) -> anyhow::Result<[u32; 3]> {
    let parts: Vec<u32> = mix
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("--mix {mix:?}: {e}"))?;
    anyhow::ensure!(
        parts.len() == 3 && parts.iter().sum::<u32>() == 100,
        "--mix wants CONNECT:ANNOUNCE:SCRAPE percentages adding up to 100"
    );
    Ok([parts[0], parts[1], parts[2]])
}

struct Announce<'a> {
    id: u64,
    tid: u32,
    info_hash: InfoHash,
    port: u16,
    seeder: bool,
    url: &'a str,
}

fn announce(p: &mut Vec<u8>, a: &Announce<'_>, rng: &mut StdRng, num_want: i32) {
    write_announce_request(
        p,
        &AnnounceRequest {
            connection_id: a.id,
            transaction_id: a.tid,
            info_hash: a.info_hash,
            peer_id: PeerId(rng.random()),
            downloaded: 0,
            left: if a.seeder { 0 } else { 1000 },
            uploaded: 0,
            event: Event::None,
            ip: None,
            key: rng.random(),
            num_want,
            port: a.port,
            url_data: UrlData::new(a.url.as_bytes()),
        },
    );
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.target.ip().is_loopback(),
        "load generators only target loopback addresses"
    );
    let mix = parse_mix(&args.mix)?;
    let hashes: Vec<InfoHash> = match &args.hash_file {
        Some(p) => swarmd_bench::read_hashes(p)?,
        None => {
            let mut rng = StdRng::seed_from_u64(1);
            (0..args.hashes).map(|_| InfoHash(rng.random())).collect()
        }
    };
    let urls: Vec<String> = match &args.passkey_file {
        Some(p) => std::fs::read_to_string(p)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|k| format!("/{k}/announce"))
            .collect(),
        None => Vec::new(),
    };
    let totals = swarmd_bench::Totals::default();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.duration);
    let per_socket_rate = args.rate.map(|r| r / args.sockets as f64);

    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut workers = Vec::new();
        for s in 0..args.sockets {
            let (args, hashes, totals, urls) = (&args, &hashes, &totals, &urls);
            workers.push(scope.spawn(move || -> anyhow::Result<()> {
                let local: SocketAddr = if args.target.is_ipv4() {
                    "127.0.0.1:0".parse()?
                } else {
                    "[::1]:0".parse()?
                };
                let sock = UdpSocket::bind(local)?;
                sock.connect(args.target)?;
                sock.set_read_timeout(Some(Duration::from_millis(200)))?;
                let mut buf = vec![0u8; 2048];
                let id = connect(&sock, &mut buf)?;
                sock.set_read_timeout(Some(Duration::from_millis(20)))?;
                let mut rng = StdRng::seed_from_u64(s as u64 + 100);
                // Keys come from their own generator, so a run with passkeys sends the same
                // peers, hashes and mix as one without (only the URL data differs), and the
                // two can be compared on the same server.
                let mut key_rng = StdRng::seed_from_u64(s as u64 + 1_000);
                let mut pick_url = move || -> &str {
                    if urls.is_empty() {
                        ""
                    } else {
                        urls[key_rng.random_range(0..urls.len())].as_str()
                    }
                };
                let mut packets: Vec<Vec<u8>> = Vec::new();
                if let Some(per_hash) = args.fill {
                    // This socket's share of every (hash, peer) pair, each announced once.
                    let pairs = hashes.len() * per_hash;
                    for i in (s..pairs).step_by(args.sockets) {
                        let mut p = Vec::with_capacity(100);
                        let a = Announce {
                            id,
                            tid: packets.len() as u32,
                            info_hash: hashes[i / per_hash],
                            port: 1025 + (i % per_hash) as u16,
                            seeder: i % 2 == 0,
                            url: pick_url(),
                        };
                        announce(&mut p, &a, &mut rng, 0);
                        packets.push(p);
                    }
                } else {
                    for i in 0..args.packets {
                        let mut p = Vec::with_capacity(100);
                        let tid = i as u32;
                        let roll = rng.random_range(0..100);
                        if roll < mix[0] {
                            write_connect_request(&mut p, tid);
                        } else if roll < mix[0] + mix[1] {
                            let a = Announce {
                                id,
                                tid,
                                info_hash: hashes[skewed(&mut rng, hashes.len())],
                                port: rng.random_range(1025..=65535),
                                seeder: i % 2 == 0,
                                url: pick_url(),
                            };
                            announce(&mut p, &a, &mut rng, args.num_want);
                        } else {
                            let n = rng.random_range(1..=4);
                            let asked: Vec<InfoHash> = (0..n)
                                .map(|_| hashes[skewed(&mut rng, hashes.len())])
                                .collect();
                            write_scrape_request(&mut p, id, tid, &asked);
                        }
                        packets.push(p);
                    }
                }
                let limit = args.fill.map(|_| packets.len());
                let plan = Plan {
                    resend: args.progress.then_some(progress as fn(&mut [u8], usize)),
                    packets: &mut packets,
                    window: args.window,
                    deadline,
                    limit,
                    rate: per_socket_rate,
                    spin: args.spin,
                };
                swarmd_bench::drive(&sock, plan, totals, |b| match parse_response(b) {
                    Ok(Response::Error { .. }) | Err(_) => Reply {
                        expected: false,
                        request: None,
                    },
                    Ok(r) => Reply {
                        expected: true,
                        request: Some(r.transaction_id() as usize),
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
    println!("{}", totals.report(start.elapsed(), "expected"));
    Ok(())
}

/// Grows an announce's downloaded and uploaded counters (BEP 15 offsets 56 and 72) by 16 KiB;
/// leaves other requests alone.
fn progress(packet: &mut [u8], _sent_before: usize) {
    const ANNOUNCE: [u8; 4] = 1u32.to_be_bytes();
    if packet.get(8..12) != Some(&ANNOUNCE[..]) {
        return;
    }
    for at in [56, 72] {
        if let Some(field) = packet.get_mut(at..at + 8) {
            let v = u64::from_be_bytes(field.try_into().unwrap_or_default()) + 16_384;
            field.copy_from_slice(&v.to_be_bytes());
        }
    }
}
