//! The UDP tracker's metrics: handles resolved once at start, and a per-worker [`Tally`] that
//! counts in plain integers and is flushed into the shared Prometheus counters about once a
//! second, so two workers on two cores do not bounce counter cache lines on every packet.

use prometheus::{Histogram, IntCounter};
use swarmd_swarm::access::Protocol;
use swarmd_swarm::metrics::Metrics;

/// What a request asked for, for the `action` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Connect = 0,
    Announce = 1,
    Scrape = 2,
    /// An authenticated packet with an unknown action.
    Other = 3,
}

const ACTIONS: [&str; 4] = ["connect", "announce", "scrape", "other"];

impl Action {
    /// The action of a BEP 15 action number.
    pub(crate) fn from_code(code: u32) -> Self {
        match code {
            0 => Action::Connect,
            1 => Action::Announce,
            2 => Action::Scrape,
            _ => Action::Other,
        }
    }
}

/// How a request ended, for the `result` label (the first four as over HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok = 0,
    BadRequest = 1,
    Denied = 2,
    Limit = 3,
    /// Unknown, expired, future or forged connection id: answered with silence.
    BadConnectionId = 4,
}

const RESULTS: [&str; 5] = ["ok", "bad_request", "denied", "limit", "bad_connection_id"];

/// The (action, result) pairs that can happen, so only those appear in the exposition.
fn possible(action: &str, result: &str) -> bool {
    match action {
        "connect" => result == "ok",
        "announce" => true,
        "scrape" => matches!(result, "ok" | "bad_request" | "bad_connection_id"),
        _ => result == "bad_request",
    }
}

/// Why a datagram got no reply (or its reply was lost), for `swarmd_dropped_packets_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// Shorter than the 16-byte BEP 15 header.
    TooShort = 0,
    /// Larger than the receive buffer.
    TooLong = 1,
    /// Garbage, an unknown action or a connect without the magic, not authenticated.
    Malformed = 2,
    /// An announce or scrape whose connection id did not verify.
    BadConnectionId = 3,
    /// The reply could not be sent.
    SendError = 4,
}

const DROPS: [&str; 5] = [
    "too_short",
    "too_long",
    "malformed",
    "bad_connection_id",
    "send_error",
];

/// Prometheus handles, resolved once.
pub(crate) struct UdpMetrics {
    requests: [[Option<IntCounter>; RESULTS.len()]; ACTIONS.len()],
    durations: [Histogram; 3],
    dropped: [IntCounter; DROPS.len()],
    bytes_in: IntCounter,
    bytes_out: IntCounter,
    packets_in: IntCounter,
    packets_out: IntCounter,
}

impl UdpMetrics {
    pub(crate) fn new(m: &Metrics) -> Self {
        let p = Protocol::Udp;
        Self {
            requests: ACTIONS
                .map(|a| RESULTS.map(|r| possible(a, r).then(|| m.request_counter(p, a, r)))),
            durations: [
                m.duration(p, "connect"),
                m.duration(p, "announce"),
                m.duration(p, "scrape"),
            ],
            dropped: DROPS.map(|r| m.dropped_packets(p, r)),
            bytes_in: m.bytes_received(p),
            bytes_out: m.bytes_sent(p),
            packets_in: m.packets_received(p),
            packets_out: m.packets_sent(p),
        }
    }

    /// Records one sampled request latency.
    pub(crate) fn observe(&self, action: Action, secs: f64) {
        if let Some(h) = self.durations.get(action as usize) {
            h.observe(secs);
        }
    }
}

/// Measure the latency of one request in this many, per worker. Two clock reads and a
/// histogram update cost about as much as a third of a connect's own work, so only a sample
/// is timed; the histogram's `_count` is therefore about 1/64 of the requests.
pub(crate) const SAMPLE_EVERY: u32 = 64;

/// Counts kept by one worker between flushes.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    requests: [[u64; RESULTS.len()]; ACTIONS.len()],
    dropped: [u64; DROPS.len()],
    bytes_in: u64,
    bytes_out: u64,
    packets_in: u64,
    packets_out: u64,
    /// Requests seen, for sampling latencies.
    seq: u32,
}

impl Tally {
    pub(crate) fn request(&mut self, action: Action, outcome: Outcome) {
        self.requests[action as usize][outcome as usize] += 1;
    }

    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.dropped[reason as usize] += 1;
    }

    pub(crate) fn received(&mut self, bytes: usize) {
        self.bytes_in += bytes as u64;
        self.packets_in += 1;
    }

    pub(crate) fn sent(&mut self, bytes: usize) {
        self.bytes_out += bytes as u64;
        self.packets_out += 1;
    }

    /// A tally whose next request is not timed (for measurements).
    #[cfg(test)]
    pub(crate) fn default_unsampled() -> Self {
        Self {
            seq: 1,
            ..Self::default()
        }
    }

    /// Whether to time the next request (the first of every [`SAMPLE_EVERY`]).
    pub(crate) fn sample(&mut self) -> bool {
        let s = self.seq;
        self.seq = s.wrapping_add(1);
        s % SAMPLE_EVERY == 0
    }

    /// Adds the counts into the shared counters and zeroes them.
    pub(crate) fn flush(&mut self, m: &UdpMetrics) {
        for (counts, counters) in self.requests.iter_mut().zip(&m.requests) {
            for (n, c) in counts.iter_mut().zip(counters) {
                if let (true, Some(c)) = (*n > 0, c) {
                    c.inc_by(*n);
                }
                *n = 0;
            }
        }
        add(&mut self.dropped, &m.dropped);
        add(
            std::slice::from_mut(&mut self.bytes_in),
            std::slice::from_ref(&m.bytes_in),
        );
        add(
            std::slice::from_mut(&mut self.bytes_out),
            std::slice::from_ref(&m.bytes_out),
        );
        add(
            std::slice::from_mut(&mut self.packets_in),
            std::slice::from_ref(&m.packets_in),
        );
        add(
            std::slice::from_mut(&mut self.packets_out),
            std::slice::from_ref(&m.packets_out),
        );
    }
}

fn add(counts: &mut [u64], counters: &[IntCounter]) {
    for (n, c) in counts.iter_mut().zip(counters) {
        if *n > 0 {
            c.inc_by(*n);
            *n = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_flushes_once() {
        let m = Metrics::new().unwrap();
        let um = UdpMetrics::new(&m);
        let mut t = Tally::default();
        t.request(Action::Announce, Outcome::Denied);
        t.drop(DropReason::SendError);
        t.received(100);
        t.sent(16);
        t.flush(&um);
        t.flush(&um);
        assert_eq!(um.requests[1][2].as_ref().map(IntCounter::get), Some(1));
        assert!(um.requests[0][2].is_none(), "connects are never denied");
        assert_eq!(um.dropped[4].get(), 1);
        assert_eq!(um.bytes_in.get(), 100);
        assert_eq!(um.bytes_out.get(), 16);
        assert!(t.sample());
        assert!((1..SAMPLE_EVERY).all(|_| !t.sample()));
        assert!(t.sample());
        assert_eq!(Action::from_code(9), Action::Other);
    }
}
