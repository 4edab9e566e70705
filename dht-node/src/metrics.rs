//! The DHT node's metrics: Prometheus handles resolved once, and a [`Tally`] of plain integers
//! the single-threaded core counts into, flushed on every tick (about once a second).
//!
//! * `swarmd_requests_total{protocol="dht", action, result}`: queries received, by method
//!   (`ping`, `find_node`, `get_peers`, `announce_peer`, `sample_infohashes`, `unknown`,
//!   `other` for unparsable queries) and result (`ok`, `bad_request`: answered with an error,
//!   `denied`: a private hash, answered but not stored, `rate_limited`: dropped, `limit`: the
//!   registry is full).
//! * `swarmd_bytes_received_total{protocol="dht"}`, `swarmd_bytes_sent_total{protocol="dht"}`.
//! * `swarmd_dropped_packets_total{protocol="dht", reason}`: `rate_limited`, `malformed`
//!   (silence), `own_id`, `unsolicited` (an answer to no query of ours), `too_long`,
//!   `oversized_reply` (the amplification rule), `send_error`.
//! * `swarmd_dht_nodes{table="routing"|"verified", ip_version}`: table sizes.
//! * `swarmd_dht_queries_sent_total{method, result}`: our own queries and how they ended.

use prometheus::{IntCounter, IntGauge};
use swarmd_swarm::access::Protocol;
use swarmd_swarm::metrics::Metrics;

/// A received query's method, for the `action` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Ping = 0,
    FindNode = 1,
    GetPeers = 2,
    AnnouncePeer = 3,
    SampleInfohashes = 4,
    Unknown = 5,
    /// A query that did not parse.
    Other = 6,
}

const ACTIONS: [&str; 7] = [
    "ping",
    "find_node",
    "get_peers",
    "announce_peer",
    "sample_infohashes",
    "unknown",
    "other",
];

/// How a received query ended, for the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok = 0,
    BadRequest = 1,
    Denied = 2,
    RateLimited = 3,
    Limit = 4,
}

const RESULTS: [&str; 5] = ["ok", "bad_request", "denied", "rate_limited", "limit"];

/// Why a datagram got no reply (or its reply was lost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drop {
    RateLimited = 0,
    Malformed = 1,
    OwnId = 2,
    Unsolicited = 3,
    TooLong = 4,
    OversizedReply = 5,
    SendError = 6,
}

const DROPS: [&str; 7] = [
    "rate_limited",
    "malformed",
    "own_id",
    "unsolicited",
    "too_long",
    "oversized_reply",
    "send_error",
];

/// A query we send, for `swarmd_dht_queries_sent_total{method}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    Ping = 0,
    FindNode = 1,
    GetPeers = 2,
    AnnouncePeer = 3,
}

const SENT: [&str; 4] = ["ping", "find_node", "get_peers", "announce_peer"];

/// How one of our queries ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SentResult {
    Answered = 0,
    Error = 1,
    Timeout = 2,
    Unsent = 3,
}

const SENT_RESULTS: [&str; 4] = ["answered", "error", "timeout", "unsent"];

/// Prometheus handles, resolved once.
#[derive(Clone)]
pub(crate) struct DhtMetrics {
    requests: [[IntCounter; RESULTS.len()]; ACTIONS.len()],
    dropped: [IntCounter; DROPS.len()],
    sent: [[IntCounter; SENT_RESULTS.len()]; SENT.len()],
    bytes_in: IntCounter,
    bytes_out: IntCounter,
    packets_in: IntCounter,
    packets_out: IntCounter,
    /// routing v4, routing v6, verified v4, verified v6.
    pub(crate) nodes: [IntGauge; 4],
}

impl std::fmt::Debug for DhtMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhtMetrics").finish_non_exhaustive()
    }
}

impl DhtMetrics {
    pub(crate) fn new(m: &Metrics) -> Self {
        let p = Protocol::Dht;
        Self {
            requests: ACTIONS.map(|a| RESULTS.map(|r| m.request_counter(p, a, r))),
            dropped: DROPS.map(|r| m.dropped_packets(p, r)),
            sent: SENT.map(|s| SENT_RESULTS.map(|r| m.dht_queries_sent(s, r))),
            bytes_in: m.bytes_received(p),
            bytes_out: m.bytes_sent(p),
            packets_in: m.packets_received(p),
            packets_out: m.packets_sent(p),
            nodes: [
                m.dht_nodes("routing", "4"),
                m.dht_nodes("routing", "6"),
                m.dht_nodes("verified", "4"),
                m.dht_nodes("verified", "6"),
            ],
        }
    }
}

/// Counts kept between flushes.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    requests: [[u64; RESULTS.len()]; ACTIONS.len()],
    dropped: [u64; DROPS.len()],
    sent: [[u64; SENT_RESULTS.len()]; SENT.len()],
    bytes_in: u64,
    bytes_out: u64,
    packets_in: u64,
    packets_out: u64,
}

impl Tally {
    pub(crate) fn request(&mut self, action: Action, outcome: Outcome) {
        self.requests[action as usize][outcome as usize] += 1;
    }

    pub(crate) fn drop(&mut self, reason: Drop) {
        self.dropped[reason as usize] += 1;
    }

    pub(crate) fn sent(&mut self, method: Sent, result: SentResult) {
        self.sent[method as usize][result as usize] += 1;
    }

    pub(crate) fn received(&mut self, bytes: usize) {
        self.bytes_in += bytes as u64;
        self.packets_in += 1;
    }

    pub(crate) fn transmitted(&mut self, bytes: usize) {
        self.bytes_out += bytes as u64;
        self.packets_out += 1;
    }

    /// Requests counted with this action and outcome since the last flush (tests).
    #[cfg(test)]
    pub(crate) fn requests(&self, action: Action, outcome: Outcome) -> u64 {
        self.requests[action as usize][outcome as usize]
    }

    /// Drops counted for `reason` since the last flush (tests).
    #[cfg(test)]
    pub(crate) fn drops(&self, reason: Drop) -> u64 {
        self.dropped[reason as usize]
    }

    /// Adds the counts into the shared counters and zeroes them.
    pub(crate) fn flush(&mut self, m: &DhtMetrics) {
        let add = |n: &mut u64, c: &IntCounter| {
            if *n > 0 {
                c.inc_by(*n);
                *n = 0;
            }
        };
        for (row, counters) in self.requests.iter_mut().zip(&m.requests) {
            row.iter_mut().zip(counters).for_each(|(n, c)| add(n, c));
        }
        for (row, counters) in self.sent.iter_mut().zip(&m.sent) {
            row.iter_mut().zip(counters).for_each(|(n, c)| add(n, c));
        }
        self.dropped
            .iter_mut()
            .zip(&m.dropped)
            .for_each(|(n, c)| add(n, c));
        add(&mut self.bytes_in, &m.bytes_in);
        add(&mut self.bytes_out, &m.bytes_out);
        add(&mut self.packets_in, &m.packets_in);
        add(&mut self.packets_out, &m.packets_out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_flushes_into_the_shared_families() {
        let m = Metrics::new().unwrap();
        let dm = DhtMetrics::new(&m);
        let mut t = Tally::default();
        t.request(Action::GetPeers, Outcome::RateLimited);
        t.drop(Drop::OwnId);
        t.sent(Sent::FindNode, SentResult::Timeout);
        t.received(10);
        t.transmitted(20);
        t.flush(&dm);
        t.flush(&dm);
        dm.nodes[0].set(3);
        let mut text = Vec::new();
        m.encode_text(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        for line in [
            r#"swarmd_requests_total{action="get_peers",protocol="dht",result="rate_limited"} 1"#,
            r#"swarmd_dropped_packets_total{protocol="dht",reason="own_id"} 1"#,
            r#"swarmd_dht_queries_sent_total{method="find_node",result="timeout"} 1"#,
            r#"swarmd_bytes_received_total{protocol="dht"} 10"#,
            r#"swarmd_bytes_sent_total{protocol="dht"} 20"#,
            r#"swarmd_dht_nodes{ip_version="4",table="routing"} 3"#,
        ] {
            assert!(text.contains(line), "missing {line}");
        }
    }
}
