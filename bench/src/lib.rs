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
use std::time::{Duration, Instant};

/// Counts shared by a generator's worker threads.
#[derive(Debug, Default)]
pub struct Totals {
    sent: AtomicU64,
    received: AtomicU64,
    unexpected: AtomicU64,
}

impl Totals {
    /// One line for the benchmark scripts, which read the `received N` figure from it:
    /// `sent S received R non-KIND replies U in T s: X replies/s (L% lost)`.
    pub fn report(&self, elapsed: Duration, kind: &str) -> String {
        let secs = elapsed.as_secs_f64();
        let (s, r, u) = (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
            self.unexpected.load(Ordering::Relaxed),
        );
        format!(
            "sent {s} received {r} non-{kind} replies {u} in {secs:.1} s: {:.0} replies/s ({:.2}% lost)",
            r as f64 / secs,
            100.0 * s.saturating_sub(r) as f64 / s.max(1) as f64
        )
    }
}

/// Drives one connected socket until `deadline`: sends the next `window` of `packets` (cycling),
/// then reads replies until the window is answered or a read times out (the rest counts as lost),
/// and again. `expected` tells wanted replies from others (errors, the server's own queries).
pub fn drive(
    sock: &UdpSocket,
    packets: &[Vec<u8>],
    window: usize,
    deadline: Instant,
    totals: &Totals,
    expected: impl Fn(&[u8]) -> bool,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 2048];
    let mut next = 0usize;
    while Instant::now() < deadline {
        for _ in 0..window {
            sock.send(&packets[next % packets.len()])?;
            next += 1;
        }
        totals.sent.fetch_add(window as u64, Ordering::Relaxed);
        let mut got = 0u64;
        for _ in 0..window {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    got += 1;
                    if !expected(&buf[..n]) {
                        totals.unexpected.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(_) => break,
            }
        }
        totals.received.fetch_add(got, Ordering::Relaxed);
    }
    Ok(())
}
