//! Prometheus metrics shared by every protocol: request counters and latencies, registry gauges,
//! expiry counters, build info and process metrics. No info hash or IP address ever becomes a
//! label, so cardinality is fixed by the code, not by clients.

use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, TextEncoder,
};

use crate::access::Protocol;
use crate::registry::{Registry, SweepStats};

/// Latency buckets in seconds, from 10 µs (a warm in-memory announce) to 1 s.
const DURATION_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05,
    0.25, 1.0,
];

/// The metric set of one swarmd process.
#[derive(Clone)]
pub struct Metrics {
    registry: prometheus::Registry,
    requests: IntCounterVec,
    durations: HistogramVec,
    connections: IntCounterVec,
    open_connections: IntGaugeVec,
    expired_peers: IntCounter,
    expired_torrents: IntCounter,
    bytes_received: IntCounterVec,
    bytes_sent: IntCounterVec,
    packets_received: IntCounterVec,
    packets_sent: IntCounterVec,
    dropped_packets: IntCounterVec,
    dht_nodes: IntGaugeVec,
    dht_queries_sent: IntCounterVec,
}

impl Metrics {
    /// Creates the metric set, with `swarmd_build_info` and (on Linux) process metrics registered.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = prometheus::Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "swarmd_requests_total",
                "Requests handled, by protocol, action and result.",
            ),
            &["protocol", "action", "result"],
        )?;
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "swarmd_request_duration_seconds",
                "Time from a request's arrival to its reply being ready, by protocol and action.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["protocol", "action"],
        )?;
        let connections = IntCounterVec::new(
            Opts::new(
                "swarmd_connections_total",
                "Connections accepted, by protocol.",
            ),
            &["protocol"],
        )?;
        let open_connections = IntGaugeVec::new(
            Opts::new(
                "swarmd_open_connections",
                "Connections open now, by protocol.",
            ),
            &["protocol"],
        )?;
        let expired_peers = IntCounter::new(
            "swarmd_expired_peers_total",
            "Peers removed because they did not re-announce in time.",
        )?;
        let expired_torrents = IntCounter::new(
            "swarmd_expired_torrents_total",
            "Torrents dropped because their last peer left or expired.",
        )?;
        let bytes_received = IntCounterVec::new(
            Opts::new(
                "swarmd_bytes_received_total",
                "Payload bytes received (UDP datagrams), by protocol.",
            ),
            &["protocol"],
        )?;
        let bytes_sent = IntCounterVec::new(
            Opts::new(
                "swarmd_bytes_sent_total",
                "Payload bytes sent (UDP datagrams), by protocol.",
            ),
            &["protocol"],
        )?;
        let packets_received = IntCounterVec::new(
            Opts::new(
                "swarmd_packets_received_total",
                "UDP datagrams received, by protocol.",
            ),
            &["protocol"],
        )?;
        let packets_sent = IntCounterVec::new(
            Opts::new(
                "swarmd_packets_sent_total",
                "UDP datagrams sent, by protocol.",
            ),
            &["protocol"],
        )?;
        let dropped_packets = IntCounterVec::new(
            Opts::new(
                "swarmd_dropped_packets_total",
                "Datagrams received and left unanswered, or replies that could not be sent, by \
                 protocol and reason.",
            ),
            &["protocol", "reason"],
        )?;
        let dht_nodes = IntGaugeVec::new(
            Opts::new(
                "swarmd_dht_nodes",
                "Nodes in the DHT node's tables, by table (routing: the Kademlia routing table; \
                 verified: the bootstrap-mode table) and IP version.",
            ),
            &["table", "ip_version"],
        )?;
        let dht_queries_sent = IntCounterVec::new(
            Opts::new(
                "swarmd_dht_queries_sent_total",
                "Queries the DHT node sent, by method and result (answered, error, timeout, \
                 unsent: no room for another outstanding query).",
            ),
            &["method", "result"],
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "swarmd_build_info",
                "Always 1; the labels tell which build is running.",
            ),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(durations.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(open_connections.clone()))?;
        registry.register(Box::new(expired_peers.clone()))?;
        registry.register(Box::new(expired_torrents.clone()))?;
        registry.register(Box::new(bytes_received.clone()))?;
        registry.register(Box::new(bytes_sent.clone()))?;
        registry.register(Box::new(packets_received.clone()))?;
        registry.register(Box::new(packets_sent.clone()))?;
        registry.register(Box::new(dropped_packets.clone()))?;
        registry.register(Box::new(dht_nodes.clone()))?;
        registry.register(Box::new(dht_queries_sent.clone()))?;
        registry.register(Box::new(build_info))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;

        Ok(Self {
            registry,
            requests,
            durations,
            connections,
            open_connections,
            expired_peers,
            expired_torrents,
            bytes_received,
            bytes_sent,
            packets_received,
            packets_sent,
            dropped_packets,
            dht_nodes,
            dht_queries_sent,
        })
    }

    /// The counter of requests with these labels. Resolve it once and keep it: incrementing the
    /// returned handle is one atomic add, while resolving hashes the labels.
    pub fn request_counter(&self, protocol: Protocol, action: &str, result: &str) -> IntCounter {
        self.requests
            .with_label_values(&[protocol.as_str(), action, result])
    }

    /// The latency histogram for these labels; resolve once and keep it, like
    /// [`Metrics::request_counter`].
    pub fn duration(&self, protocol: Protocol, action: &str) -> Histogram {
        self.durations
            .with_label_values(&[protocol.as_str(), action])
    }

    /// Counter of accepted connections for a connection-oriented protocol.
    pub fn connections(&self, protocol: Protocol) -> IntCounter {
        self.connections.with_label_values(&[protocol.as_str()])
    }

    /// Gauge of open connections for a connection-oriented protocol.
    pub fn open_connections(&self, protocol: Protocol) -> IntGauge {
        self.open_connections
            .with_label_values(&[protocol.as_str()])
    }

    /// Counter of payload bytes received by a datagram protocol; resolve once and keep it.
    pub fn bytes_received(&self, protocol: Protocol) -> IntCounter {
        self.bytes_received.with_label_values(&[protocol.as_str()])
    }

    /// Counter of payload bytes sent by a datagram protocol; resolve once and keep it.
    pub fn bytes_sent(&self, protocol: Protocol) -> IntCounter {
        self.bytes_sent.with_label_values(&[protocol.as_str()])
    }

    /// Counter of datagrams received for a datagram protocol.
    pub fn packets_received(&self, protocol: Protocol) -> IntCounter {
        self.packets_received
            .with_label_values(&[protocol.as_str()])
    }

    /// Counter of datagrams sent for a datagram protocol.
    pub fn packets_sent(&self, protocol: Protocol) -> IntCounter {
        self.packets_sent.with_label_values(&[protocol.as_str()])
    }

    /// Counter of datagrams dropped for `reason` (left unanswered, or a reply that could not be
    /// sent); resolve once and keep it.
    pub fn dropped_packets(&self, protocol: Protocol, reason: &str) -> IntCounter {
        self.dropped_packets
            .with_label_values(&[protocol.as_str(), reason])
    }

    /// Gauge of nodes in one of the DHT node's tables (`table` = `routing` or `verified`,
    /// `ip_version` = `4` or `6`); resolve once and keep it.
    pub fn dht_nodes(&self, table: &str, ip_version: &str) -> IntGauge {
        self.dht_nodes.with_label_values(&[table, ip_version])
    }

    /// Counter of queries the DHT node sent with `method` that ended with `result`
    /// (`answered`, `error`, `timeout`, `unsent`); resolve once and keep it.
    pub fn dht_queries_sent(&self, method: &str, result: &str) -> IntCounter {
        self.dht_queries_sent.with_label_values(&[method, result])
    }

    /// Records what one expiry sweep removed.
    pub fn record_sweep(&self, stats: &SweepStats) {
        self.expired_peers.inc_by(stats.peers_removed as u64);
        self.expired_torrents.inc_by(stats.torrents_removed as u64);
    }

    /// Exposes the registry's sizes (`swarmd_torrents`, `swarmd_peers`), read at scrape time.
    pub fn watch_registry(&self, registry: Arc<Registry>) -> Result<(), prometheus::Error> {
        self.registry
            .register(Box::new(RegistryCollector::new(registry)?))
    }

    /// The underlying Prometheus registry, to register more collectors.
    pub fn prometheus(&self) -> &prometheus::Registry {
        &self.registry
    }

    /// Appends every metric in the Prometheus text exposition format to `out`.
    pub fn encode_text(&self, out: &mut Vec<u8>) -> Result<(), prometheus::Error> {
        TextEncoder::new().encode(&self.registry.gather(), out)
    }
}

/// Reads the registry's counts when Prometheus scrapes, so the hot path keeps no global gauges.
struct RegistryCollector {
    registry: Arc<Registry>,
    torrents: IntGauge,
    peers: IntGaugeVec,
    descs: Vec<Desc>,
}

impl RegistryCollector {
    fn new(registry: Arc<Registry>) -> Result<Self, prometheus::Error> {
        let torrents = IntGauge::new("swarmd_torrents", "Torrents (swarms) tracked now.")?;
        let peers = IntGaugeVec::new(
            Opts::new(
                "swarmd_peers",
                "Peers tracked now, by kind (seeder: left=0; leecher: the rest, partial seeds \
                 included) and IP version.",
            ),
            &["kind", "ip_version"],
        )?;
        let descs = torrents
            .desc()
            .into_iter()
            .chain(peers.desc())
            .cloned()
            .collect();
        Ok(Self {
            registry,
            torrents,
            peers,
            descs,
        })
    }
}

impl Collector for RegistryCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let c = self.registry.counts();
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.torrents.set(gauge(c.torrents));
        for (kind, version, value) in [
            ("seeder", "4", c.seeders_v4),
            ("leecher", "4", c.leechers_v4),
            ("seeder", "6", c.seeders_v6),
            ("leecher", "6", c.leechers_v6),
        ] {
            self.peers
                .with_label_values(&[kind, version])
                .set(gauge(value));
        }
        let mut out = self.torrents.collect();
        out.extend(self.peers.collect());
        out
    }
}
