//! Performance measurements, ignored by default. Run with
//! `cargo test -p swarmd-tracker-udp --release -- --ignored --nocapture perf_`.
//!
//! * `perf_handle`: user-space work per request through the worker path (`handle_with`), with
//!   and without latency timing, over a registry preloaded with 200,000 peers.
//! * `perf_flood`: a loopback flood against a one-worker server pinned to CPU 0, the load
//!   generator pinned to CPU 1; prints the server thread's user and system CPU per reply, for the
//!   plain and the batched loop. `SWARMD_FLOOD_SECS` sets each run's length (default 5),
//!   `SWARMD_FLOOD_ROUNDS` the rounds (default 2).

use std::hint::black_box;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarmd_proto::udp::write_announce_request;
use swarmd_proto::{Event, InfoHash, PeerId};
use swarmd_swarm::access::OpenPolicy;
use swarmd_swarm::clock::{ManualClock, SystemClock};
use swarmd_swarm::metrics::Metrics;
use swarmd_swarm::{Announce, Registry, RegistryConfig, SelectedPeers};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::handler::Scratch;
use crate::metrics::Tally;
use crate::UdpServer;

const HASHES: u32 = 100_000;

fn hash(i: u32) -> InfoHash {
    let mut h = [0x5a; 20];
    h[..4].copy_from_slice(&i.to_be_bytes());
    InfoHash(h)
}

/// A registry with two IPv4 peers in each of `HASHES` swarms.
fn preloaded() -> Arc<Registry> {
    let r = Arc::new(Registry::new(RegistryConfig::default()));
    let mut out = SelectedPeers::new();
    for i in 0..HASHES * 2 {
        let a = Announce {
            info_hash: hash(i % HASHES),
            peer_id: PeerId([1; 20]),
            addr: SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 6881)),
            event: Event::Started,
            left: u64::from(i % 3),
            numwant: 0,
        };
        r.announce(&a, 0, &mut out).unwrap();
    }
    r
}

fn tracker(
    registry: Arc<Registry>,
    config: UdpConfig,
    clock: Arc<dyn swarmd_swarm::clock::Clock>,
) -> UdpTracker {
    UdpTracker::new(
        config,
        registry,
        Arc::new(OpenPolicy),
        clock,
        &Metrics::new().unwrap(),
    )
}

#[test]
#[ignore = "performance measurement"]
fn perf_handle() {
    let t = tracker(
        preloaded(),
        UdpConfig::default(),
        Arc::new(ManualClock::new(0)),
    );
    let mut scratch = Scratch::default();
    let mut tally = Tally::default();
    let mut out = Vec::with_capacity(1500);
    let clients: Vec<SocketAddr> = (0..1024u32)
        .map(|i| SocketAddr::from(([127, 1, (i >> 8) as u8, i as u8], 40_000)))
        .collect();
    let ids: Vec<u64> = clients.iter().map(|&c| connect(&t, c)).collect();
    let mut packets: Vec<Vec<u8>> = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        let mut p = Vec::new();
        let req = AnnounceRequest {
            info_hash: hash((i as u32).wrapping_mul(2_654_435_761) % HASHES),
            ..announce_req(id)
        };
        write_announce_request(&mut p, &req);
        packets.push(p);
    }
    let mut connect_packet = Vec::new();
    swarmd_proto::udp::write_connect_request(&mut connect_packet, 1);
    let n = 2_000_000usize;
    for mode in ["1/64 timed", "all timed", "none timed"] {
        let start = Instant::now();
        for k in 0..n {
            let i = k % packets.len();
            match mode {
                "all timed" => tally = Tally::default(),
                "none timed" => tally = Tally::default_unsampled(),
                _ => {}
            }
            let h = (k as u32).wrapping_mul(2_654_435_761) % HASHES;
            packets[i][16..20].copy_from_slice(&h.to_be_bytes());
            black_box(t.handle_with(
                &packets[i],
                clients[i],
                0,
                &mut out,
                &mut scratch,
                &mut tally,
            ));
        }
        let name = format!("announce, {mode}");
        let per = start.elapsed().as_nanos() as f64 / n as f64;
        println!("{name}: {per:.0} ns/request");
    }
    let start = Instant::now();
    for k in 0..n {
        let i = k % clients.len();
        black_box(t.handle_with(
            &connect_packet,
            clients[i],
            0,
            &mut out,
            &mut scratch,
            &mut tally,
        ));
    }
    println!(
        "connect: {:.0} ns/request",
        start.elapsed().as_nanos() as f64 / n as f64
    );
    let start = Instant::now();
    let h = Metrics::new()
        .unwrap()
        .duration(swarmd_swarm::access::Protocol::Udp, "announce");
    for _ in 0..n {
        let t0 = Instant::now();
        h.observe(black_box(t0.elapsed().as_secs_f64()));
    }
    println!(
        "timing one request (2 clock reads + histogram observe): {:.0} ns",
        start.elapsed().as_nanos() as f64 / n as f64
    );
}

/// utime and stime of one thread of this process, in clock ticks.
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

#[allow(unsafe_code)]
fn pin(tid: libc::pid_t, cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and sched_setaffinity only read and
    // write the set we own, for a thread id of this process.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

#[test]
#[ignore = "performance measurement"]
fn perf_flood() {
    let secs: u64 = std::env::var("SWARMD_FLOOD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let rounds: usize = std::env::var("SWARMD_FLOOD_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    for round in 0..rounds {
        // Alternate the order, so a neighbour's load does not always hit the same mode.
        let order = if round % 2 == 0 {
            [1usize, 32]
        } else {
            [32, 1]
        };
        for batch in order {
            let config = UdpConfig {
                workers: 1,
                recv_batch: batch,
                ..UdpConfig::default()
            };
            // A fresh registry per run: a run adds up to 64 peers to each swarm it touches.
            let t = Arc::new(tracker(preloaded(), config, Arc::new(SystemClock::new())));
            let stop = CancellationToken::new();
            let server =
                UdpServer::start(&["127.0.0.1:0".parse().unwrap()], t, stop.clone()).unwrap();
            let addr = server.local_addrs()[0];
            let tid = thread_named("swarmd-udp-0");
            pin(tid.parse().unwrap(), 0);
            pin(0, 1);
            let (replies, cpu, wall) = flood(addr, &tid, Duration::from_secs(secs));
            stop.cancel();
            server.join();
            let tick_us = 1e6 / 100.0;
            println!(
                "round {round} recv_batch={batch}: {:.0} replies/s; server CPU per reply: user {:.2} us, \
                 system {:.2} us ({:.0}% of a core)",
                replies as f64 / wall,
                cpu.0 as f64 * tick_us / replies as f64,
                cpu.1 as f64 * tick_us / replies as f64,
                (cpu.0 + cpu.1) as f64 / wall,
            );
        }
    }
}

/// Floods `addr` with announces from 64 connected sockets (64 loopback addresses), keeping
/// `WINDOW` requests in flight per socket, sending and receiving with `sendmmsg`/`recvmmsg` so
/// the generator stays cheaper per request than the server; returns (replies, server (utime,
/// stime) ticks, seconds).
fn flood(addr: SocketAddr, tid: &str, length: Duration) -> (u64, (u64, u64), f64) {
    const SOCKETS: u8 = 64;
    let mut clients = Vec::new();
    for i in 0..SOCKETS {
        let s = UdpSocket::bind(SocketAddr::from(([127, 0, 1, i + 1], 0))).unwrap();
        s.connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut p = Vec::new();
        swarmd_proto::udp::write_connect_request(&mut p, 1);
        s.send(&p).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(s.recv(&mut buf).unwrap(), 16);
        let cid = u64::from_be_bytes(buf[8..16].try_into().unwrap());
        let mut pkt = Vec::new();
        write_announce_request(&mut pkt, &announce_req(cid));
        s.set_nonblocking(true).unwrap();
        clients.push(Client {
            socket: s,
            packets: vec![pkt; WINDOW],
            inflight: 0,
            last: Instant::now(),
        });
    }
    let mut gen = Generator {
        clients,
        rbufs: vec![[0u8; 2048]; 64],
        seq: 0,
    };
    gen.run(Instant::now() + Duration::from_millis(500));
    let before = thread_cpu(tid);
    let start = Instant::now();
    let replies = gen.run(start + length);
    let wall = start.elapsed().as_secs_f64();
    let after = thread_cpu(tid);
    (replies, (after.0 - before.0, after.1 - before.1), wall)
}

/// Requests in flight per generator socket.
const WINDOW: usize = 8;

struct Client {
    socket: UdpSocket,
    packets: Vec<Vec<u8>>,
    inflight: usize,
    last: Instant,
}

struct Generator {
    clients: Vec<Client>,
    rbufs: Vec<[u8; 2048]>,
    seq: u32,
}

/// An mmsghdr for a connected socket (no address) over one iovec.
fn mmsg(iov: &mut libc::iovec) -> libc::mmsghdr {
    #[allow(unsafe_code)]
    // SAFETY: mmsghdr is plain old data; all-zero is valid (null name, zero lengths).
    let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
    m.msg_hdr.msg_iov = iov;
    m.msg_hdr.msg_iovlen = 1;
    m
}

impl Generator {
    /// Sends and receives until `until`; returns the replies received.
    #[allow(unsafe_code)]
    fn run(&mut self, until: Instant) -> u64 {
        use std::os::fd::AsRawFd;
        let mut replies = 0u64;
        let mut iov: Vec<libc::iovec> = Vec::with_capacity(64);
        let mut msgs: Vec<libc::mmsghdr> = Vec::with_capacity(64);
        while Instant::now() < until {
            for c in self.clients.iter_mut() {
                let fd = c.socket.as_raw_fd();
                let want = WINDOW - c.inflight;
                if want > 0 {
                    iov.clear();
                    for p in c.packets.iter_mut().take(want) {
                        self.seq = self.seq.wrapping_add(1);
                        let h = self.seq.wrapping_mul(2_654_435_761) % HASHES;
                        p[16..20].copy_from_slice(&h.to_be_bytes());
                        iov.push(libc::iovec {
                            iov_base: p.as_mut_ptr().cast(),
                            iov_len: p.len(),
                        });
                    }
                    msgs.clear();
                    msgs.extend(iov.iter_mut().map(mmsg));
                    // SAFETY: each header points at an iovec in `iov` covering a packet in
                    // `c.packets`; all outlive the call. The socket is connected.
                    let n = unsafe {
                        libc::sendmmsg(fd, msgs.as_mut_ptr(), msgs.len() as u32, libc::MSG_DONTWAIT)
                    };
                    if n > 0 {
                        c.inflight += n as usize;
                    }
                }
                iov.clear();
                iov.extend(self.rbufs.iter_mut().map(|b| libc::iovec {
                    iov_base: b.as_mut_ptr().cast(),
                    iov_len: b.len(),
                }));
                msgs.clear();
                msgs.extend(iov.iter_mut().map(mmsg));
                // SAFETY: each header points at an iovec in `iov` covering a buffer in
                // `self.rbufs`; all outlive the call.
                let n = unsafe {
                    libc::recvmmsg(
                        fd,
                        msgs.as_mut_ptr(),
                        msgs.len() as u32,
                        libc::MSG_DONTWAIT,
                        std::ptr::null_mut(),
                    )
                };
                if n > 0 {
                    replies += n as u64;
                    c.inflight = c.inflight.saturating_sub(n as usize);
                    c.last = Instant::now();
                } else if c.last.elapsed() > Duration::from_millis(20) {
                    c.inflight = 0; // lost packets
                    c.last = Instant::now();
                }
            }
        }
        replies
    }
}
