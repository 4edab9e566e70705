//! Settings of the UDP tracker, with their defaults and the limits enforced on them.

use swarmd_proto::udp::{
    ANNOUNCE_RESPONSE_HEADER_LEN as ANNOUNCE_HEADER_LEN, MAX_SCRAPE_HASHES, SCRAPE_ENTRY_LEN,
    SCRAPE_RESPONSE_HEADER_LEN as SCRAPE_HEADER_LEN,
};

use crate::cookie::{MAX_LIFETIME, MIN_LIFETIME};

/// Settings of the UDP tracker. Its `Debug` output hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct UdpConfig {
    /// Sockets (each with its own OS thread) per bind address, sharing the port through
    /// `SO_REUSEPORT`; 0 means one per core. Default 0.
    pub workers: usize,
    /// `interval` sent to clients, in seconds. Default 1800.
    pub announce_interval: u32,
    /// Peers returned when `num_want` is <= 0 (BEP 15 sends -1 for "default"). Default 50.
    pub default_numwant: u32,
    /// Cap on peers returned. Default 200.
    pub max_numwant: u32,
    /// Largest reply in bytes. Announce replies carry at most `(max_reply_bytes - 20) / 6`
    /// IPv4 or `/ 18` IPv6 peers; scrapes at most `(max_reply_bytes - 8) / 12` hashes.
    /// Default 1452: one unfragmented datagram on a 1500-byte MTU over IPv6 (1500 - 40 - 8).
    pub max_reply_bytes: usize,
    /// Seconds a connection id stays valid after it is issued, clamped to 60..=65535 (BEP 15
    /// clients may use an id for a minute; real ones reuse it for several). Default 600.
    pub connection_id_lifetime: u32,
    /// Key of the connection-id MAC. `None` draws a random one at start (ids then die with the
    /// process). Instances sharing a key, and a clock with a common origin, accept each other's
    /// ids. Default `None`.
    pub secret: Option<[u8; 32]>,
    /// Honour the announce `IP address` field, for announces arriving over IPv4 only. Default
    /// false.
    pub allow_ip_param: bool,
    /// The most info hashes answered per scrape, at most 74 (BEP 15); a scrape carrying more is
    /// answered for its first `max_scrape_hashes` hashes. Default 74.
    pub max_scrape_hashes: usize,
    /// Datagrams per receive call, 1..=1024: 1 uses plain `recv_from`/`send_to`; more uses
    /// `recvmmsg`/`sendmmsg` on Linux (elsewhere it is treated as 1). Default 32: on a saturated
    /// loopback flood, 32 answered about 10% more requests per server CPU-second (see the crate
    /// README).
    pub recv_batch: usize,
}

impl std::fmt::Debug for UdpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpConfig")
            .field("workers", &self.workers)
            .field("announce_interval", &self.announce_interval)
            .field("default_numwant", &self.default_numwant)
            .field("max_numwant", &self.max_numwant)
            .field("max_reply_bytes", &self.max_reply_bytes)
            .field("connection_id_lifetime", &self.connection_id_lifetime)
            .field("secret", &self.secret.map(|_| "<redacted>"))
            .field("allow_ip_param", &self.allow_ip_param)
            .field("max_scrape_hashes", &self.max_scrape_hashes)
            .field("recv_batch", &self.recv_batch)
            .finish()
    }
}

impl Default for UdpConfig {
    fn default() -> Self {
        Self {
            workers: 0,
            announce_interval: 1800,
            default_numwant: 50,
            max_numwant: 200,
            max_reply_bytes: 1452,
            connection_id_lifetime: 600,
            secret: None,
            allow_ip_param: false,
            max_scrape_hashes: MAX_SCRAPE_HASHES,
            recv_batch: 32,
        }
    }
}

/// A setting out of its allowed range, as reported by [`UdpConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("udp tracker setting `{field}`: {problem}")]
pub struct ConfigError {
    /// The offending field's name.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// Smallest reply budget: an announce reply with at least two IPv6 peers (20 + 2 * 18 = 56)
/// and a scrape reply with at least one entry.
const MIN_REPLY_BYTES: usize = 68;
/// Largest UDP payload over IPv4.
const MAX_REPLY_BYTES: usize = 65_507;
/// Most packets per batch.
pub(crate) const MAX_BATCH: usize = 1024;

impl UdpConfig {
    /// Checks every setting against its range. [`crate::UdpTracker::new`] does not fail: it
    /// clamps out-of-range values instead; call this to report them to an operator.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, problem: String| Err(ConfigError { field, problem });
        if !(MIN_REPLY_BYTES..=MAX_REPLY_BYTES).contains(&self.max_reply_bytes) {
            return bad(
                "max_reply_bytes",
                format!(
                    "{} is not within {MIN_REPLY_BYTES}..={MAX_REPLY_BYTES}",
                    self.max_reply_bytes
                ),
            );
        }
        if !(MIN_LIFETIME..=MAX_LIFETIME).contains(&self.connection_id_lifetime) {
            return bad(
                "connection_id_lifetime",
                format!(
                    "{} is not within {MIN_LIFETIME}..={MAX_LIFETIME} seconds",
                    self.connection_id_lifetime
                ),
            );
        }
        if !(1..=MAX_SCRAPE_HASHES).contains(&self.max_scrape_hashes) {
            return bad(
                "max_scrape_hashes",
                format!(
                    "{} is not within 1..={MAX_SCRAPE_HASHES}",
                    self.max_scrape_hashes
                ),
            );
        }
        if !(1..=MAX_BATCH).contains(&self.recv_batch) {
            return bad(
                "recv_batch",
                format!("{} is not within 1..={MAX_BATCH}", self.recv_batch),
            );
        }
        Ok(())
    }

    /// Peers that fit in one announce reply with `entry_len`-byte entries.
    pub(crate) fn peer_budget(&self, entry_len: usize) -> usize {
        self.max_reply_bytes
            .clamp(MIN_REPLY_BYTES, MAX_REPLY_BYTES)
            .saturating_sub(ANNOUNCE_HEADER_LEN)
            / entry_len.max(1)
    }

    /// Hashes answered per scrape: the configured cap, within BEP 15's and the reply budget's.
    pub(crate) fn scrape_cap(&self) -> usize {
        let budget = (self.max_reply_bytes.clamp(MIN_REPLY_BYTES, MAX_REPLY_BYTES)
            - SCRAPE_HEADER_LEN)
            / SCRAPE_ENTRY_LEN;
        self.max_scrape_hashes
            .clamp(1, MAX_SCRAPE_HASHES)
            .min(budget)
    }

    /// Sockets per bind address: `workers`, or the number of cores if 0.
    pub(crate) fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = UdpConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.peer_budget(6), 238);
        assert_eq!(c.peer_budget(18), 79);
        assert_eq!(c.scrape_cap(), 74);
        assert!(c.worker_count() >= 1);
    }

    #[test]
    fn out_of_range_settings_are_reported() {
        let check = |f: fn(&mut UdpConfig), field| {
            let mut c = UdpConfig::default();
            f(&mut c);
            assert_eq!(c.validate().map_err(|e| e.field), Err(field));
        };
        check(|c| c.max_reply_bytes = 67, "max_reply_bytes");
        check(|c| c.max_reply_bytes = 70_000, "max_reply_bytes");
        check(|c| c.connection_id_lifetime = 59, "connection_id_lifetime");
        check(
            |c| c.connection_id_lifetime = 70_000,
            "connection_id_lifetime",
        );
        check(|c| c.max_scrape_hashes = 0, "max_scrape_hashes");
        check(|c| c.max_scrape_hashes = 75, "max_scrape_hashes");
        check(|c| c.recv_batch = 0, "recv_batch");
    }

    #[test]
    fn small_budgets_cap_scrapes() {
        let c = UdpConfig {
            max_reply_bytes: 68,
            ..UdpConfig::default()
        };
        assert_eq!(c.scrape_cap(), 5);
        assert_eq!(c.peer_budget(18), 2);
    }
}
