//! BEP 15 announce load generator: several sockets (threads), each with pre-built announce
//! packets and a window of requests in flight. Prints replies per second; the benchmark scripts
//! read the server's CPU time around it.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use swarmd_proto::udp::{
    parse_response, write_announce_request, write_connect_request, AnnounceRequest, Response,
    UrlData,
};
use swarmd_proto::{Event, InfoHash, PeerId};

/// Drive a UDP tracker with announces on loopback.
#[derive(Parser, Debug)]
struct Args {
    /// The tracker's UDP address (loopback only).
    #[arg(long)]
    target: SocketAddr,
    /// Seconds to run.
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
    /// Pre-built distinct announce packets per socket.
    #[arg(long, default_value_t = 4096)]
    packets: usize,
    /// `num_want` in each announce.
    #[arg(long, default_value_t = 50)]
    num_want: i32,
    /// Passkeys, one per line: each announce carries a random one as BEP 41 URL data
    /// (`/KEY/announce`), as clients of a private tracker do.
    #[arg(long, value_name = "FILE")]
    passkey_file: Option<PathBuf>,
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

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.target.ip().is_loopback(),
        "load generators only target loopback addresses"
    );
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
                // Pre-built packets: skewed towards the first hashes (a few big swarms), random
                // ports, half seeders.
                let mut rng = StdRng::seed_from_u64(s as u64 + 100);
                let packets: Vec<Vec<u8>> = (0..args.packets)
                    .map(|i| {
                        let r: f64 = rng.random();
                        let h = ((r * r * r) * hashes.len() as f64) as usize;
                        let url = if urls.is_empty() {
                            ""
                        } else {
                            urls[rng.random_range(0..urls.len())].as_str()
                        };
                        let mut p = Vec::with_capacity(98);
                        write_announce_request(
                            &mut p,
                            &AnnounceRequest {
                                connection_id: id,
                                transaction_id: i as u32,
                                info_hash: hashes[h.min(hashes.len() - 1)],
                                peer_id: PeerId(rng.random()),
                                downloaded: 0,
                                left: if i % 2 == 0 { 0 } else { 1000 },
                                uploaded: 0,
                                event: Event::None,
                                ip: None,
                                key: rng.random(),
                                num_want: args.num_want,
                                port: rng.random_range(1025..=65535),
                                url_data: UrlData::new(url.as_bytes()),
                            },
                        );
                        p
                    })
                    .collect();
                swarmd_bench::drive(&sock, &packets, args.window, deadline, totals, |b| {
                    matches!(parse_response(b), Ok(Response::Announce { .. }))
                })?;
                Ok(())
            }));
        }
        for w in workers {
            w.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
        }
        Ok(())
    })?;
    println!("{}", totals.report(start.elapsed(), "announce"));
    Ok(())
}
