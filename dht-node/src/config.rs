//! Settings of the DHT node, with their defaults and the limits enforced on them.

use std::path::PathBuf;
use std::time::Duration;

use swarmd_proto::NodeId;

/// Settings of the DHT node. Every field has a default (see [`DhtConfig::default`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhtConfig {
    /// Nodes to bootstrap from, as `host:port` (`[v6]:port` for IPv6 literals). Names are
    /// resolved by the driver, with back-off. Default: the public routers
    /// `router.bittorrent.com:6881`, `dht.transmissionbt.com:6881`, `router.utorrent.com:6881`
    /// and `dht.libtorrent.org:25401` (names only, never address literals). Tests and
    /// benchmarks set their own (or none).
    pub bootstrap_nodes: Vec<String>,
    /// Run as a bootstrap node (the role of `router.bittorrent.com`): besides the Kademlia
    /// routing table, keep a large table of verified nodes (admitted only after answering a
    /// ping of ours, re-verified periodically) and answer `find_node`/`get_peers` from it.
    /// Default false: a bootstrap node sends a steady stream of verification pings and keeps
    /// up to [`DhtConfig::max_nodes`] nodes in memory, which an operator should choose to do.
    pub bootstrap_mode: bool,
    /// Most verified nodes kept per address family in bootstrap mode (about 41 bytes each for
    /// IPv4). Default 1,000,000.
    pub max_nodes: usize,
    /// File the node table is saved to on shutdown and loaded from on start (bootstrap mode:
    /// the verified table; otherwise the routing table, used as extra bootstrap nodes). A
    /// missing or corrupt file is ignored with a warning. Default `None`: nothing persisted.
    pub state_file: Option<PathBuf>,
    /// Our node id. `None` (default): the id saved in [`DhtConfig::state_file`] if any, else a
    /// random one, replaced by a BEP 42 id once our external address is known.
    pub node_id: Option<NodeId>,
    /// Admit into our tables, and so hand out, only nodes whose id is valid for their IP
    /// (BEP 42); local and private addresses are exempt. Default true.
    pub enforce_node_id: bool,
    /// Queries accepted per second from one IP address (IPv6: one /64), token-bucket refill
    /// rate; excess packets are dropped silently. 0 disables the limit. Default 20.
    pub rate_limit_per_sec: u32,
    /// Token-bucket depth: queries one address may send in a burst. Default 100.
    pub rate_limit_burst: u32,
    /// Addresses (or /64s) the rate limiter tracks at once; a fixed table, so memory does not
    /// grow with the number of sources. Default 65,536 (1 MiB).
    pub max_tracked_ips: usize,
    /// A source that sent more than this many queries within the current minute gets only 4
    /// nodes per reply instead of 8. Default 60.
    pub repeat_requester_threshold: u32,
    /// Most peers (`values`) in one `get_peers` reply. Default 50 (about 400 bytes over IPv4).
    pub max_values: usize,
    /// Largest reply to a source we know (it answered one of our queries). Replies to other
    /// sources are also held to `4 * query bytes + 64`. Default 1200.
    pub max_reply_bytes: usize,
    /// Seconds between rotations of the token secret; tokens of the previous secret are still
    /// accepted. Default 300 (BEP 5: tokens live up to 10 minutes).
    pub token_rotation_secs: u32,
    /// Mark our own queries `ro=1` (BEP 43), so other nodes do not add us to their tables.
    /// Default false.
    pub read_only: bool,
    /// Milliseconds after which one of our queries counts as failed. Default 2000.
    pub query_timeout_ms: u64,
    /// Most of our own queries awaiting an answer at once. Default 2048.
    pub max_outstanding_queries: usize,
    /// Verification pings sent per second at most (bootstrap mode: admitting candidates and
    /// re-verifying the table). Default 200.
    pub verify_pings_per_sec: u32,
    /// Seconds after which a verified node is pinged again (bootstrap mode). Default 3600.
    pub reverify_interval_secs: u32,
}

impl Default for DhtConfig {
    fn default() -> Self {
        Self {
            bootstrap_nodes: [
                "router.bittorrent.com:6881",
                "dht.transmissionbt.com:6881",
                "router.utorrent.com:6881",
                "dht.libtorrent.org:25401",
            ]
            .map(String::from)
            .to_vec(),
            bootstrap_mode: false,
            max_nodes: 1_000_000,
            state_file: None,
            node_id: None,
            enforce_node_id: true,
            rate_limit_per_sec: 20,
            rate_limit_burst: 100,
            max_tracked_ips: 65_536,
            repeat_requester_threshold: 60,
            max_values: 50,
            max_reply_bytes: 1200,
            token_rotation_secs: 300,
            read_only: false,
            query_timeout_ms: 2000,
            max_outstanding_queries: 2048,
            verify_pings_per_sec: 200,
            reverify_interval_secs: 3600,
        }
    }
}

/// A setting out of its allowed range, as reported by [`DhtConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dht setting `{field}`: {problem}")]
pub struct ConfigError {
    /// The offending field's name.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// Smallest reply budget: a `find_node` answer with 8 IPv6 nodes (8 * 38 bytes) and headers.
pub(crate) const MIN_REPLY_BYTES: usize = 512;
/// Largest UDP payload over IPv4.
pub(crate) const MAX_REPLY_BYTES: usize = 65_507;

impl DhtConfig {
    /// Checks every setting against its range. [`crate::DhtNode::new`] does not fail: it clamps
    /// out-of-range values instead; call this to report them to an operator.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, problem: String| Err(ConfigError { field, problem });
        for node in &self.bootstrap_nodes {
            if split_host_port(node).is_none() {
                return bad(
                    "bootstrap_nodes",
                    format!("`{node}` is not `host:port` (IPv6 literals as `[addr]:port`)"),
                );
            }
        }
        let range = |field, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                bad(field, format!("{v} is not within {lo}..={hi}"))
            }
        };
        range("max_nodes", self.max_nodes as u64, 8, 100_000_000)?;
        range("max_tracked_ips", self.max_tracked_ips as u64, 64, 1 << 24)?;
        range("max_values", self.max_values as u64, 1, 500)?;
        range(
            "max_reply_bytes",
            self.max_reply_bytes as u64,
            MIN_REPLY_BYTES as u64,
            MAX_REPLY_BYTES as u64,
        )?;
        range(
            "token_rotation_secs",
            u64::from(self.token_rotation_secs),
            10,
            3600,
        )?;
        range("query_timeout_ms", self.query_timeout_ms, 100, 60_000)?;
        range(
            "max_outstanding_queries",
            self.max_outstanding_queries as u64,
            16,
            1 << 20,
        )?;
        range(
            "reverify_interval_secs",
            u64::from(self.reverify_interval_secs),
            60,
            7 * 86_400,
        )?;
        if self.rate_limit_per_sec > 0 && self.rate_limit_burst == 0 {
            return bad(
                "rate_limit_burst",
                "must be at least 1 while rate_limit_per_sec is set".into(),
            );
        }
        if self.bootstrap_mode && self.verify_pings_per_sec == 0 {
            return bad(
                "verify_pings_per_sec",
                "must be at least 1 in bootstrap mode (nodes are admitted after a ping)".into(),
            );
        }
        Ok(())
    }

    /// [`DhtConfig::query_timeout_ms`] as a duration, clamped to its range.
    pub(crate) fn query_timeout(&self) -> Duration {
        Duration::from_millis(self.query_timeout_ms.clamp(100, 60_000))
    }

    /// [`DhtConfig::max_reply_bytes`] clamped to its range.
    pub(crate) fn reply_cap(&self) -> usize {
        self.max_reply_bytes.clamp(MIN_REPLY_BYTES, MAX_REPLY_BYTES)
    }
}

/// Splits `host:port` (or `[v6]:port`) into its host and port, if well formed.
pub fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = match host.strip_prefix('[') {
        Some(h) => h.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    (!host.is_empty() && port != 0).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_name_routers_only() {
        let c = DhtConfig::default();
        assert_eq!(c.validate(), Ok(()));
        for n in &c.bootstrap_nodes {
            let (host, _) = split_host_port(n).unwrap();
            assert!(
                host.parse::<std::net::IpAddr>().is_err(),
                "{n} is a literal"
            );
        }
        assert!(!c.bootstrap_mode);
        assert_eq!(c.query_timeout(), Duration::from_secs(2));
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("a.b:1"), Some(("a.b", 1)));
        assert_eq!(split_host_port("[::1]:6881"), Some(("::1", 6881)));
        assert_eq!(split_host_port("127.0.0.1:2"), Some(("127.0.0.1", 2)));
        for bad in ["a.b", "a.b:0", ":5", "::1:5", "a:b:c", "[::1:5", "a:99999"] {
            assert_eq!(split_host_port(bad), None, "{bad}");
        }
    }

    #[test]
    fn out_of_range_settings_are_reported() {
        let check = |f: fn(&mut DhtConfig), field| {
            let mut c = DhtConfig::default();
            f(&mut c);
            assert_eq!(c.validate().map_err(|e| e.field), Err(field));
        };
        check(|c| c.bootstrap_nodes.push("nope".into()), "bootstrap_nodes");
        check(|c| c.max_nodes = 1, "max_nodes");
        check(|c| c.max_tracked_ips = 1, "max_tracked_ips");
        check(|c| c.max_values = 0, "max_values");
        check(|c| c.max_reply_bytes = 100, "max_reply_bytes");
        check(|c| c.token_rotation_secs = 1, "token_rotation_secs");
        check(|c| c.query_timeout_ms = 1, "query_timeout_ms");
        check(|c| c.max_outstanding_queries = 0, "max_outstanding_queries");
        check(|c| c.reverify_interval_secs = 0, "reverify_interval_secs");
        check(|c| c.rate_limit_burst = 0, "rate_limit_burst");
        check(
            |c| {
                c.bootstrap_mode = true;
                c.verify_pings_per_sec = 0;
            },
            "verify_pings_per_sec",
        );
    }
}
