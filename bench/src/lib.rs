//! Load generators for swarmd's benchmarks. Each binary under `src/bin/` drives one protocol;
//! they target loopback or the project's own test hosts only.

use std::path::Path;

use swarmd_proto::InfoHash;

/// Reads info hashes, one per line in hex (the format the benchmark scripts also give to
/// opentracker's allow list).
pub fn read_hashes(path: &Path) -> anyhow::Result<Vec<InfoHash>> {
    let text = std::fs::read_to_string(path)?;
    let hashes = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .parse::<InfoHash>()
                .map_err(|e| anyhow::anyhow!("{}: {l:?}: {e}", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!hashes.is_empty(), "{}: no info hashes", path.display());
    Ok(hashes)
}

use std::net::UdpSocket;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Latency histogram resolution and range: 2 µs buckets up to 100 ms (and one overflow bucket).
const BUCKET_US: u64 = 2;
const BUCKETS: usize = 50_000;

/// Counts shared by a generator's worker threads.
#[derive(Debug, Default)]
pub struct Totals {
    sent: AtomicU64,
    received: AtomicU64,
    unexpected: AtomicU64,
    latency: Mutex<Vec<u64>>,
}

impl Totals {
    /// Replies received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Requests sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    fn merge_latency(&self, local: &[u64]) {
        let mut h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        if h.is_empty() {
            h.resize(BUCKETS + 1, 0);
        }
        for (a, b) in h.iter_mut().zip(local) {
            *a += b;
        }
    }

    /// The latency at quantile `q` (0..=1) in microseconds, if any reply was timed.
    pub fn latency_us(&self, q: f64) -> Option<f64> {
        let h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let n: u64 = h.iter().sum();
        if n == 0 {
            return None;
        }
        let rank = ((n as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in h.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(((i as u64 + 1) * BUCKET_US) as f64);
            }
        }
        None
    }

    /// One line for the benchmark scripts, which read the `received N` figure (and, when replies
    /// were timed, `p50 X us p99 Y us`) from it:
    /// `sent S received R non-KIND replies U in T s: X replies/s (L% lost) [p50 .. us p99 .. us max .. us]`.
    pub fn report(&self, elapsed: Duration, kind: &str) -> String {
        let secs = elapsed.as_secs_f64();
        let (s, r, u) = (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
            self.unexpected.load(Ordering::Relaxed),
        );
        let mut line = format!(
            "sent {s} received {r} non-{kind} replies {u} in {secs:.1} s: {:.0} replies/s ({:.2}% lost)",
            r as f64 / secs,
            100.0 * s.saturating_sub(r) as f64 / s.max(1) as f64
        );
        if let (Some(p50), Some(p99), Some(max)) = (
            self.latency_us(0.5),
            self.latency_us(0.99),
            self.latency_us(1.0),
        ) {
            line += &format!(" p50 {p50:.0} us p99 {p99:.0} us max {max:.0} us");
        }
        line
    }
}

/// How one socket is driven.
#[derive(Debug)]
pub struct Plan<'a> {
    /// Pre-built requests, sent in order and cycled. Request `i` must carry a transaction id
    /// from which the reply classifier can recover `i`, for latency.
    pub packets: &'a mut [Vec<u8>],
    /// Requests in flight at most.
    pub window: usize,
    /// When to stop.
    pub deadline: Instant,
    /// Stop after this many requests (a fill: each packet once); `None` cycles until the deadline.
    pub limit: Option<usize>,
    /// Offered load of this socket in requests per second; `None` sends as fast as replies come.
    pub rate: Option<f64>,
    /// Called on a request before it is sent again (with how many times it was sent before),
    /// to change it in place: e.g. grow an announce's transfer counters, as a live peer's do.
    pub resend: Option<fn(&mut [u8], usize)>,
    /// Wait for replies by polling the socket without blocking, instead of sleeping in
    /// `recv`: the generator's thread then never sleeps, so the server's reply never has to
    /// wake it. On loopback that wake-up is charged to the server's `sendmmsg` (a remote
    /// client's never is), and a slower server leaves the generator asleep more often, which
    /// makes the charge grow with the server's own cost. Burns the generator's core; a
    /// thread with nothing to read yields it, so several sockets can share one core.
    pub spin: bool,
}

/// What a reply is, to the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// A reply of the wanted kind (not an error, not a query from the server).
    pub expected: bool,
    /// The index of the request it answers, if known (for latency).
    pub request: Option<usize>,
}

/// Drives one connected socket: sends the next window of requests (paced to `plan.rate` when
/// set), then reads replies until the window is answered or a read times out (the rest count as
/// lost), and again, until the deadline or the limit. Replies are timed against their request's
/// send time. With `plan.spin`, replies are polled for (see [`Plan::spin`]), and the read
/// timeout counts from the window's last send rather than from each read.
pub fn drive(
    sock: &UdpSocket,
    plan: Plan<'_>,
    totals: &Totals,
    classify: impl Fn(&[u8]) -> Reply,
) -> std::io::Result<()> {
    let packets = plan.packets;
    let mut buf = vec![0u8; 2048];
    let mut sent_at = vec![None::<Instant>; packets.len()];
    let mut hist = vec![0u64; BUCKETS + 1];
    let started = Instant::now();
    let limit = plan.limit.unwrap_or(usize::MAX);
    let mut next = 0usize;
    if plan.spin {
        sock.set_nonblocking(true)?;
    }
    let timeout = sock.read_timeout()?.unwrap_or(Duration::from_millis(20));
    while Instant::now() < plan.deadline && next < limit {
        if let Some(rate) = plan.rate {
            let due = started + Duration::from_secs_f64(next as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let batch = plan.window.min(limit - next);
        for _ in 0..batch {
            let i = next % packets.len();
            let cycles = next / packets.len();
            if let (Some(resend), true) = (plan.resend, cycles > 0) {
                resend(&mut packets[i], cycles);
            }
            sock.send(&packets[i])?;
            sent_at[i] = Some(Instant::now());
            next += 1;
        }
        totals.sent.fetch_add(batch as u64, Ordering::Relaxed);
        let mut got = 0u64;
        let waited_from = Instant::now();
        for _ in 0..batch {
            match recv(sock, &mut buf, plan.spin, waited_from, timeout) {
                Ok(n) => {
                    let reply = classify(&buf[..n]);
                    if !reply.expected {
                        totals.unexpected.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    got += 1;
                    if let Some(at) = reply
                        .request
                        .and_then(|i| sent_at.get_mut(i))
                        .and_then(Option::take)
                    {
                        let us = at.elapsed().as_micros() as u64;
                        hist[((us / BUCKET_US) as usize).min(BUCKETS)] += 1;
                    }
                }
                Err(_) => break,
            }
        }
        totals.received.fetch_add(got, Ordering::Relaxed);
    }
    totals.merge_latency(&hist);
    Ok(())
}

/// One reply: a blocking `recv` (the socket's read timeout bounds it), or with `spin` a
/// non-blocking one retried, yielding the core in between, until something arrives or
/// `timeout` has passed since `from`.
fn recv(
    sock: &UdpSocket,
    buf: &mut [u8],
    spin: bool,
    from: Instant,
    timeout: Duration,
) -> std::io::Result<usize> {
    loop {
        match sock.recv(buf) {
            Err(e) if spin && e.kind() == std::io::ErrorKind::WouldBlock => {
                if from.elapsed() >= timeout {
                    return Err(e);
                }
                std::thread::yield_now();
            }
            r => return r,
        }
    }
}
