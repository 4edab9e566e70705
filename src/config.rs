//! The configuration tree: defaults embedded in the binary, a TOML file, `SWARMD__SECTION__KEY`
//! environment overrides and command-line flags, in rising precedence, then validated.

use std::net::SocketAddr;
use std::path::Path;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The commented default configuration, as printed by `swarmd config print`.
pub const DEFAULT_TOML: &str = include_str!("default-config.toml");

/// Prefix of environment variables that override the configuration.
pub const ENV_PREFIX: &str = "SWARMD__";

/// An error in a configuration source, naming the key at fault where there is one.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML did not parse or did not fit the schema (unknown key, wrong type).
    #[error("{origin}: {message}")]
    Parse {
        /// Where the text came from (a file name, or "environment").
        origin: String,
        /// The parser's message, which names the key and position.
        message: String,
    },
    /// A value parsed but is not acceptable.
    #[error("invalid `{key}`: {reason}")]
    Invalid {
        /// Dotted key, such as `tracker.min_announce_interval_secs`.
        key: &'static str,
        /// Why it is refused.
        reason: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Logging.
    pub log: LogConfig,
    /// Process-wide settings.
    pub server: ServerConfig,
    /// Announce semantics shared by every tracker protocol.
    pub tracker: TrackerConfig,
    /// The shared swarm registry.
    pub registry: RegistryConfig,
    /// The HTTP tracker.
    pub http: HttpConfig,
    /// The UDP tracker.
    pub udp: UdpConfig,
    /// The DHT node.
    pub dht: DhtConfig,
    /// The admin listener (metrics, health, stats, and the token-protected admin API).
    pub admin: AdminConfig,
    /// Who may announce: public, allow-listed, or private with passkeys and accounting.
    pub access: AccessConfig,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Default filter (EnvFilter syntax); `RUST_LOG` takes precedence.
    pub level: String,
    /// Line format.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Runtime worker threads; 0 = one per core.
    pub worker_threads: usize,
    /// Grace period for in-flight requests at shutdown.
    pub shutdown_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            worker_threads: 0,
            shutdown_timeout_secs: 10,
        }
    }
}

/// `[tracker]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerConfig {
    /// `interval` sent to clients.
    pub announce_interval_secs: u32,
    /// `min interval` sent to clients.
    pub min_announce_interval_secs: u32,
    /// Peers returned when `numwant` is absent or <= 0.
    pub default_numwant: u32,
    /// Cap on peers returned.
    pub max_numwant: u32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        let lib = swarmd_tracker_http::TrackerConfig::default();
        Self {
            announce_interval_secs: lib.announce_interval,
            min_announce_interval_secs: lib.min_announce_interval,
            default_numwant: lib.default_numwant,
            max_numwant: lib.max_numwant,
        }
    }
}

/// `[registry]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Shard count (rounded up to a power of two).
    pub shards: usize,
    /// Torrent limit.
    pub max_torrents: usize,
    /// Peer limit per torrent.
    pub max_peers_per_torrent: usize,
    /// Expiry timeout.
    pub peer_timeout_secs: u32,
    /// Keep peer ids for `compact=0` replies.
    pub store_peer_ids: bool,
    /// Period of expiry sweep steps.
    pub sweep_interval_ms: u64,
    /// Shards swept per step.
    pub sweep_shards_per_step: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        // The registry's own defaults, so the two never drift apart.
        let lib = swarmd_swarm::RegistryConfig::default();
        Self {
            shards: lib.shards,
            max_torrents: lib.max_torrents,
            max_peers_per_torrent: lib.max_peers_per_torrent,
            peer_timeout_secs: lib.peer_timeout,
            store_peer_ids: lib.store_peer_ids,
            sweep_interval_ms: 1000,
            sweep_shards_per_step: 64,
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Serve the HTTP tracker.
    pub enabled: bool,
    /// Listen addresses.
    pub bind: Vec<SocketAddr>,
    /// Connection limit.
    pub max_connections: usize,
    /// Header read and keep-alive idle timeout.
    pub request_timeout_secs: u64,
    /// Largest request head.
    pub max_request_bytes: usize,
    /// Proxies whose forwarding headers are trusted.
    pub trusted_proxies: Vec<IpNet>,
    /// Honour `ip=`.
    pub allow_ip_param: bool,
    /// Scrape hash cap.
    pub max_scrape_hashes: usize,
    /// Allow full scrapes.
    pub full_scrape: bool,
    /// Full scrape size cap.
    pub full_scrape_max_torrents: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        let lib = swarmd_tracker_http::TrackerConfig::default();
        Self {
            enabled: true,
            bind: vec![
                SocketAddr::from(([0, 0, 0, 0], 6969)),
                SocketAddr::from(([0u16; 8], 6969)),
            ],
            max_connections: lib.max_connections,
            request_timeout_secs: lib.request_timeout.as_secs(),
            max_request_bytes: lib.max_request_bytes,
            trusted_proxies: lib.trusted_proxies,
            allow_ip_param: lib.allow_ip_param,
            max_scrape_hashes: lib.max_scrape_hashes,
            full_scrape: lib.full_scrape,
            full_scrape_max_torrents: lib.full_scrape_max_torrents,
        }
    }
}

/// `[udp]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UdpConfig {
    /// Serve the UDP tracker.
    pub enabled: bool,
    /// Listen addresses.
    pub bind: Vec<SocketAddr>,
    /// Worker threads per address; 0 = one per core.
    pub workers: usize,
    /// Reply size budget in bytes.
    pub max_reply_bytes: usize,
    /// Connection id lifetime.
    pub connection_id_lifetime_secs: u32,
    /// Hex connection-id key; empty = random per start.
    pub secret: String,
    /// Honour the announce IP field.
    pub allow_ip_param: bool,
    /// Scrape hash cap.
    pub max_scrape_hashes: usize,
    /// Datagrams per receive call.
    pub recv_batch: usize,
}

impl Default for UdpConfig {
    fn default() -> Self {
        let lib = swarmd_tracker_udp::UdpConfig::default();
        Self {
            enabled: true,
            bind: vec![
                SocketAddr::from(([0, 0, 0, 0], 6969)),
                SocketAddr::from(([0u16; 8], 6969)),
            ],
            workers: lib.workers,
            max_reply_bytes: lib.max_reply_bytes,
            connection_id_lifetime_secs: lib.connection_id_lifetime,
            secret: String::new(),
            allow_ip_param: lib.allow_ip_param,
            max_scrape_hashes: lib.max_scrape_hashes,
            recv_batch: lib.recv_batch,
        }
    }
}

/// `[dht]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DhtConfig {
    /// Run the DHT node.
    pub enabled: bool,
    /// Listen addresses (at most one per family).
    pub bind: Vec<SocketAddr>,
    /// Bootstrap nodes, `host:port`.
    pub bootstrap_nodes: Vec<String>,
    /// Serve as a bootstrap node.
    pub bootstrap_mode: bool,
    /// Verified-node capacity per family in bootstrap mode.
    pub max_nodes: usize,
    /// Node table file; empty = none.
    pub state_file: String,
    /// Node id in hex; empty = automatic.
    pub node_id: String,
    /// Enforce BEP 42 ids.
    pub enforce_node_id: bool,
    /// Per-IP query rate.
    pub rate_limit_per_sec: u32,
    /// Per-IP burst.
    pub rate_limit_burst: u32,
    /// Rate limiter capacity.
    pub max_tracked_ips: usize,
    /// Repeat-requester threshold per minute.
    pub repeat_requester_threshold: u32,
    /// Peers per get_peers reply.
    pub max_values: usize,
    /// Reply size cap.
    pub max_reply_bytes: usize,
    /// Token secret rotation period.
    pub token_rotation_secs: u32,
    /// BEP 43 read-only queries.
    pub read_only: bool,
    /// Query timeout.
    pub query_timeout_ms: u64,
    /// Outstanding query cap.
    pub max_outstanding_queries: usize,
    /// Verification ping rate.
    pub verify_pings_per_sec: u32,
    /// Re-verification period.
    pub reverify_interval_secs: u32,
}

impl Default for DhtConfig {
    fn default() -> Self {
        let lib = swarmd_dht_node::DhtConfig::default();
        Self {
            enabled: true,
            bind: vec![
                SocketAddr::from(([0, 0, 0, 0], 6881)),
                SocketAddr::from(([0u16; 8], 6881)),
            ],
            bootstrap_nodes: lib.bootstrap_nodes,
            bootstrap_mode: lib.bootstrap_mode,
            max_nodes: lib.max_nodes,
            state_file: String::new(),
            node_id: String::new(),
            enforce_node_id: lib.enforce_node_id,
            rate_limit_per_sec: lib.rate_limit_per_sec,
            rate_limit_burst: lib.rate_limit_burst,
            max_tracked_ips: lib.max_tracked_ips,
            repeat_requester_threshold: lib.repeat_requester_threshold,
            max_values: lib.max_values,
            max_reply_bytes: lib.max_reply_bytes,
            token_rotation_secs: lib.token_rotation_secs,
            read_only: lib.read_only,
            query_timeout_ms: lib.query_timeout_ms,
            max_outstanding_queries: lib.max_outstanding_queries,
            verify_pings_per_sec: lib.verify_pings_per_sec,
            reverify_interval_secs: lib.reverify_interval_secs,
        }
    }
}

/// Decodes a 64-digit hex key.
fn parse_secret(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// `[admin]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Serve the admin listener.
    pub enabled: bool,
    /// Listen addresses.
    pub bind: Vec<SocketAddr>,
    /// Bearer token of the admin API (`/api/v1/...`); empty disables the API. At least
    /// [`MIN_TOKEN_LEN`] characters. Prefer `token_file` or `SWARMD__ADMIN__TOKEN` over the file.
    pub token: String,
    /// A file holding the token (surrounding whitespace ignored), read at start and on SIGHUP.
    /// Mutually exclusive with `token`.
    pub token_file: String,
}

/// The shortest admin token accepted: a guessable token would open the whole API.
pub const MIN_TOKEN_LEN: usize = 16;

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: vec![SocketAddr::from(([127, 0, 0, 1], 6970))],
            token: String::new(),
            token_file: String::new(),
        }
    }
}

/// `[access]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    /// `public`: anything announced is tracked. `listed`: only allow-listed info hashes.
    /// `private`: allow list plus a valid passkey per user, with per-user accounting.
    pub mode: swarmd_private::Mode,
    /// The SQLite database of users, passkeys, the allow list and accounting (listed and private
    /// modes; created and migrated on start).
    pub database: String,
    /// Seconds between the batched writes of accounting to the database.
    pub flush_interval_secs: u32,
    /// Transfer deltas above this rate (bytes/s since the peer's previous announce) are absurd
    /// and discarded.
    pub max_rate_bytes_per_sec: u64,
    /// Public announce URLs (`http://HOST:PORT/announce`, `udp://HOST:PORT/announce`), into which
    /// the admin API writes each user's passkey to hand out personal announce URLs.
    pub announce_urls: Vec<String>,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            mode: swarmd_private::Mode::Public,
            database: "swarmd.db".into(),
            flush_interval_secs: 5,
            max_rate_bytes_per_sec: 2 << 30,
            announce_urls: Vec::new(),
        }
    }
}

impl Config {
    /// Parses and validates TOML text; `origin` names the source in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Loads the layers below the command line: defaults, then `file` (if any), then the
    /// `SWARMD__*` variables among `env`. The result is validated.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut tree = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse {
                        origin: path.display().to_string(),
                        message: e.to_string(),
                    })?
            }
            None => toml::Table::new(),
        };
        let mut origin = file.map_or_else(|| "defaults".to_string(), |p| p.display().to_string());
        let mut applied = Vec::new();
        for (name, value) in env {
            let Some(path) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            apply_env(&mut tree, &name, path, &value)?;
            applied.push(name);
        }
        if !applied.is_empty() {
            origin = format!("{origin} (with environment {})", applied.join(", "));
        }
        let config: Config =
            toml::Value::Table(tree)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    origin,
                    message: e.to_string(),
                })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks cross-field rules that the types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &'static str, reason: String| Err(ConfigError::Invalid { key, reason });
        let t = &self.tracker;
        if t.announce_interval_secs == 0 {
            return bad("tracker.announce_interval_secs", "must be positive".into());
        }
        if t.min_announce_interval_secs > t.announce_interval_secs {
            return bad(
                "tracker.min_announce_interval_secs",
                format!(
                    "{} exceeds tracker.announce_interval_secs ({})",
                    t.min_announce_interval_secs, t.announce_interval_secs
                ),
            );
        }
        if t.default_numwant > t.max_numwant {
            return bad(
                "tracker.default_numwant",
                format!(
                    "{} exceeds tracker.max_numwant ({})",
                    t.default_numwant, t.max_numwant
                ),
            );
        }
        let r = &self.registry;
        if r.peer_timeout_secs <= t.announce_interval_secs {
            return bad(
                "registry.peer_timeout_secs",
                format!(
                    "{} must exceed tracker.announce_interval_secs ({}), or peers expire between announces",
                    r.peer_timeout_secs, t.announce_interval_secs
                ),
            );
        }
        if r.shards == 0 || r.shards > 1 << 20 {
            return bad(
                "registry.shards",
                format!("{} is not within 1..=1048576", r.shards),
            );
        }
        if r.max_torrents == 0 {
            return bad("registry.max_torrents", "must be positive".into());
        }
        if r.max_peers_per_torrent == 0 {
            return bad("registry.max_peers_per_torrent", "must be positive".into());
        }
        if r.sweep_interval_ms == 0 {
            return bad("registry.sweep_interval_ms", "must be positive".into());
        }
        if r.sweep_shards_per_step == 0 {
            return bad("registry.sweep_shards_per_step", "must be positive".into());
        }
        let h = &self.http;
        if h.enabled && h.bind.is_empty() {
            return bad("http.bind", "is empty while http.enabled is true".into());
        }
        if h.max_connections == 0 {
            return bad("http.max_connections", "must be positive".into());
        }
        if h.request_timeout_secs == 0 {
            return bad("http.request_timeout_secs", "must be positive".into());
        }
        if !(8192..=1 << 20).contains(&h.max_request_bytes) {
            return bad(
                "http.max_request_bytes",
                format!("{} is not within 8192..=1048576", h.max_request_bytes),
            );
        }
        if h.max_scrape_hashes == 0 {
            return bad("http.max_scrape_hashes", "must be positive".into());
        }
        let u = &self.udp;
        if u.enabled && u.bind.is_empty() {
            return bad("udp.bind", "is empty while udp.enabled is true".into());
        }
        if !u.secret.is_empty() && parse_secret(&u.secret).is_none() {
            return bad(
                "udp.secret",
                "must be 64 hexadecimal digits (32 bytes) or empty".into(),
            );
        }
        // The UDP tracker knows its own bounds; name its fields as this file's keys.
        if let Err(e) = self.udp_tracker_config().validate() {
            let key = match e.field {
                "max_reply_bytes" => "udp.max_reply_bytes",
                "connection_id_lifetime" => "udp.connection_id_lifetime_secs",
                "max_scrape_hashes" => "udp.max_scrape_hashes",
                "recv_batch" => "udp.recv_batch",
                "workers" => "udp.workers",
                "default_numwant" => "tracker.default_numwant",
                "max_numwant" => "tracker.max_numwant",
                "announce_interval" => "tracker.announce_interval_secs",
                _ => "udp",
            };
            return bad(key, e.problem);
        }
        let d = &self.dht;
        if d.enabled {
            if d.bind.is_empty() {
                return bad("dht.bind", "is empty while dht.enabled is true".into());
            }
            if d.bind.iter().filter(|a| a.is_ipv4()).count() > 1
                || d.bind.iter().filter(|a| a.is_ipv6()).count() > 1
            {
                return bad("dht.bind", "at most one IPv4 and one IPv6 address".into());
            }
        }
        if !d.node_id.is_empty() && d.node_id.parse::<swarmd_proto::NodeId>().is_err() {
            return bad(
                "dht.node_id",
                "must be 40 hexadecimal digits or empty".into(),
            );
        }
        if let Err(e) = self.dht_node_config().validate() {
            return bad(dht_key(e.field), e.problem);
        }
        if self.admin.enabled && self.admin.bind.is_empty() {
            return bad("admin.bind", "is empty while admin.enabled is true".into());
        }
        let a = &self.admin;
        if !a.token.is_empty() && !a.token_file.is_empty() {
            return bad(
                "admin.token",
                "set admin.token or admin.token_file, not both".into(),
            );
        }
        if !a.token.is_empty() && a.token.trim().chars().count() < MIN_TOKEN_LEN {
            return bad(
                "admin.token",
                format!("is shorter than {MIN_TOKEN_LEN} characters"),
            );
        }
        let x = &self.access;
        if x.mode != swarmd_private::Mode::Public && x.database.is_empty() {
            return bad(
                "access.database",
                format!("is empty while access.mode is {}", x.mode.as_str()),
            );
        }
        if x.flush_interval_secs == 0 || x.flush_interval_secs > 3600 {
            return bad("access.flush_interval_secs", "must be 1..=3600".into());
        }
        if x.max_rate_bytes_per_sec == 0 {
            return bad("access.max_rate_bytes_per_sec", "must be positive".into());
        }
        for url in &x.announce_urls {
            if let Err(reason) = crate::announce_url::check_base(url) {
                return bad("access.announce_urls", format!("{url:?}: {reason}"));
            }
        }
        if self.server.shutdown_timeout_secs == 0 {
            return bad("server.shutdown_timeout_secs", "must be positive".into());
        }
        Ok(())
    }

    /// The private-mode settings in the private crate's own terms.
    pub fn private_config(&self) -> swarmd_private::PrivateConfig {
        swarmd_private::PrivateConfig {
            mode: self.access.mode,
            database: self.access.database.clone().into(),
            flush_interval_secs: self.access.flush_interval_secs,
            max_rate_bytes_per_sec: self.access.max_rate_bytes_per_sec,
            peer_timeout_secs: self.registry.peer_timeout_secs,
        }
    }

    /// The registry settings in the registry crate's own terms.
    pub fn registry_config(&self) -> swarmd_swarm::RegistryConfig {
        swarmd_swarm::RegistryConfig {
            shards: self.registry.shards,
            max_torrents: self.registry.max_torrents,
            max_peers_per_torrent: self.registry.max_peers_per_torrent,
            peer_timeout: self.registry.peer_timeout_secs,
            store_peer_ids: self.registry.store_peer_ids,
        }
    }

    /// The DHT node's settings in its crate's own terms.
    pub fn dht_node_config(&self) -> swarmd_dht_node::DhtConfig {
        let d = &self.dht;
        swarmd_dht_node::DhtConfig {
            bootstrap_nodes: d.bootstrap_nodes.clone(),
            bootstrap_mode: d.bootstrap_mode,
            max_nodes: d.max_nodes,
            state_file: (!d.state_file.is_empty()).then(|| d.state_file.clone().into()),
            node_id: d.node_id.parse().ok(),
            enforce_node_id: d.enforce_node_id,
            rate_limit_per_sec: d.rate_limit_per_sec,
            rate_limit_burst: d.rate_limit_burst,
            max_tracked_ips: d.max_tracked_ips,
            repeat_requester_threshold: d.repeat_requester_threshold,
            max_values: d.max_values,
            max_reply_bytes: d.max_reply_bytes,
            token_rotation_secs: d.token_rotation_secs,
            read_only: d.read_only,
            query_timeout_ms: d.query_timeout_ms,
            max_outstanding_queries: d.max_outstanding_queries,
            verify_pings_per_sec: d.verify_pings_per_sec,
            reverify_interval_secs: d.reverify_interval_secs,
        }
    }

    /// The UDP tracker's settings in its crate's own terms.
    pub fn udp_tracker_config(&self) -> swarmd_tracker_udp::UdpConfig {
        swarmd_tracker_udp::UdpConfig {
            workers: self.udp.workers,
            announce_interval: self.tracker.announce_interval_secs,
            default_numwant: self.tracker.default_numwant,
            max_numwant: self.tracker.max_numwant,
            max_reply_bytes: self.udp.max_reply_bytes,
            connection_id_lifetime: self.udp.connection_id_lifetime_secs,
            secret: parse_secret(&self.udp.secret),
            allow_ip_param: self.udp.allow_ip_param,
            max_scrape_hashes: self.udp.max_scrape_hashes,
            recv_batch: self.udp.recv_batch,
        }
    }

    /// The HTTP tracker's settings in its crate's own terms.
    pub fn http_tracker_config(&self) -> swarmd_tracker_http::TrackerConfig {
        swarmd_tracker_http::TrackerConfig {
            announce_interval: self.tracker.announce_interval_secs,
            min_announce_interval: self.tracker.min_announce_interval_secs,
            default_numwant: self.tracker.default_numwant,
            max_numwant: self.tracker.max_numwant,
            max_connections: self.http.max_connections,
            request_timeout: std::time::Duration::from_secs(self.http.request_timeout_secs),
            max_request_bytes: self.http.max_request_bytes,
            trusted_proxies: self.http.trusted_proxies.clone(),
            allow_ip_param: self.http.allow_ip_param,
            max_scrape_hashes: self.http.max_scrape_hashes,
            full_scrape: self.http.full_scrape,
            full_scrape_max_torrents: self.http.full_scrape_max_torrents,
        }
    }
}

/// The `[dht]` key for a field of the DHT node's own config (the names match).
fn dht_key(field: &str) -> &'static str {
    const KEYS: &[&str] = &[
        "dht.bootstrap_nodes",
        "dht.bootstrap_mode",
        "dht.max_nodes",
        "dht.state_file",
        "dht.node_id",
        "dht.enforce_node_id",
        "dht.rate_limit_per_sec",
        "dht.rate_limit_burst",
        "dht.max_tracked_ips",
        "dht.repeat_requester_threshold",
        "dht.max_values",
        "dht.max_reply_bytes",
        "dht.token_rotation_secs",
        "dht.read_only",
        "dht.query_timeout_ms",
        "dht.max_outstanding_queries",
        "dht.verify_pings_per_sec",
        "dht.reverify_interval_secs",
    ];
    KEYS.iter()
        .find(|k| k.strip_prefix("dht.") == Some(field))
        .copied()
        .unwrap_or("dht")
}

/// Sets `SWARMD__A__B=value` at `a.b` in `tree`. The value is read as a TOML value when it parses
/// as one (numbers, booleans, arrays), else taken as a string.
fn apply_env(
    tree: &mut toml::Table,
    name: &str,
    path: &str,
    value: &str,
) -> Result<(), ConfigError> {
    let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
    if keys.iter().any(String::is_empty) {
        return Err(ConfigError::Parse {
            origin: "environment".into(),
            message: format!("{name}: expected {ENV_PREFIX}SECTION__KEY"),
        });
    }
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let (last, parents) = keys.split_last().ok_or_else(|| ConfigError::Parse {
        origin: "environment".into(),
        message: format!("{name}: no key"),
    })?;
    let mut table = tree;
    for key in parents {
        let entry = table
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry.as_table_mut().ok_or_else(|| ConfigError::Parse {
            origin: "environment".into(),
            message: format!("{name}: `{key}` is not a section"),
        })?;
    }
    table.insert(last.clone(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_file_is_exactly_the_defaults() {
        let parsed = Config::from_toml(DEFAULT_TOML, "embedded").unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn embedded_default_file_names_every_key() {
        // Every key of the schema must appear (uncommented) in the printed defaults, so that
        // `config print` documents the whole tree.
        let full = toml::Value::try_from(Config::default()).unwrap();
        let printed: toml::Table = DEFAULT_TOML.parse().unwrap();
        let full = full.as_table().unwrap();
        for (section, body) in full {
            let printed_section = printed[section].as_table().unwrap();
            for key in body.as_table().unwrap().keys() {
                assert!(
                    printed_section.contains_key(key),
                    "{section}.{key} is missing from default-config.toml"
                );
            }
        }
        assert_eq!(full.len(), printed.len());
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_toml("[http]\nbindd = []\n", "f.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("bindd"), "{msg}");
        assert!(msg.contains("f.toml"), "{msg}");
        let err = Config::from_toml("[nope]\n", "f.toml").unwrap_err();
        assert!(err.to_string().contains("nope"));
    }

    #[test]
    fn wrong_types_and_bad_values_are_named() {
        let err = Config::from_toml("[tracker]\ndefault_numwant = \"x\"\n", "f").unwrap_err();
        assert!(err.to_string().contains("default_numwant"), "{err}");
        let err = Config::from_toml(
            "[tracker]\nannounce_interval_secs = 60\nmin_announce_interval_secs = 120\n",
            "f",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("tracker.min_announce_interval_secs"),
            "{err}"
        );
        let err =
            Config::from_toml("[http]\ntrusted_proxies = [\"10.0.0.0/33\"]\n", "f").unwrap_err();
        assert!(err.to_string().contains("trusted_proxies"), "{err}");
    }

    #[test]
    fn env_overrides_file_and_parses_values() {
        let dir = std::env::temp_dir().join(format!("swarmd-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "[http]\nbind = [\"127.0.0.1:1\"]\nmax_scrape_hashes = 5\n",
        )
        .unwrap();
        let env = vec![
            (
                "SWARMD__HTTP__MAX_SCRAPE_HASHES".to_string(),
                "7".to_string(),
            ),
            ("SWARMD__LOG__LEVEL".to_string(), "debug".to_string()),
            (
                "SWARMD__ADMIN__BIND".to_string(),
                "[\"127.0.0.1:2\"]".to_string(),
            ),
            ("OTHER".to_string(), "ignored".to_string()),
        ];
        let c = Config::load(Some(&file), env).unwrap();
        assert_eq!(c.http.bind, vec!["127.0.0.1:1".parse().unwrap()]);
        assert_eq!(c.http.max_scrape_hashes, 7);
        assert_eq!(c.log.level, "debug");
        assert_eq!(c.admin.bind, vec!["127.0.0.1:2".parse().unwrap()]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unknown_env_keys_are_errors() {
        let env = vec![("SWARMD__HTTP__NOPE".to_string(), "1".to_string())];
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(
            err.contains("nope") && err.contains("SWARMD__HTTP__NOPE"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod doc_tests {
    use super::*;

    /// The README's configuration table must list every key of the schema.
    #[test]
    fn readme_lists_every_key() {
        let readme = include_str!("../README.md");
        let full = toml::Value::try_from(Config::default()).unwrap();
        for (section, body) in full.as_table().unwrap() {
            for key in body.as_table().unwrap().keys() {
                let needle = format!("| `{section}.{key}` |");
                assert!(
                    readme.contains(&needle),
                    "README lacks a row for {section}.{key}"
                );
            }
        }
    }

    /// The deploy examples (public and private tracker) must stay valid.
    #[test]
    fn deploy_example_is_valid() {
        let text = include_str!("../deploy/config.example.toml");
        Config::from_toml(text, "deploy/config.example.toml").unwrap();
        let text = include_str!("../deploy/config.private.example.toml");
        let private = Config::from_toml(text, "deploy/config.private.example.toml").unwrap();
        assert_eq!(private.access.mode, swarmd_private::Mode::Private);
    }
}
