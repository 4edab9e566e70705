//! Unit tests of the private-mode policy, with a manual clock and throwaway databases.

mod access;
mod accounting;
mod admin;
mod concurrency;
mod persistence;
mod proptests;
mod torrents;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use swarmd_proto::{Event, InfoHash, PeerId};
use swarmd_swarm::access::{Access, AccessPolicy, AccessRequest, Protocol, Transfer};
use swarmd_swarm::clock::{Clock, ManualClock};
use swarmd_swarm::{Announce, Registry, RegistryConfig, SelectedPeers};

use crate::{Mode, PrivateConfig, PrivatePolicy, TorrentOptions};

/// The clock's start.
pub(crate) const T0: u32 = 1_000_000;
/// The tests' maximum rate (bytes/s).
pub(crate) const MAX_RATE: u64 = 1_000_000;
/// The tests' peer timeout (s).
pub(crate) const TIMEOUT: u32 = 600;

/// A database file under the temp dir, removed (with its WAL files) on drop.
pub(crate) struct TempDb(PathBuf);

impl TempDb {
    pub(crate) fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "swarmd-private-{tag}-{}-{}-{nanos}.db",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Self(std::env::temp_dir().join(name))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A policy with its clock and registry.
pub(crate) struct Fx {
    pub(crate) policy: Arc<PrivatePolicy>,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) registry: Arc<Registry>,
}

pub(crate) fn config(mode: Mode, database: &Path) -> PrivateConfig {
    PrivateConfig {
        mode,
        database: database.to_path_buf(),
        flush_interval_secs: 5,
        max_rate_bytes_per_sec: MAX_RATE,
        peer_timeout_secs: TIMEOUT,
    }
}

impl Fx {
    /// An in-memory database.
    pub(crate) fn new(mode: Mode) -> Self {
        Self::with_config(&config(mode, Path::new(":memory:")))
    }

    pub(crate) fn with_config(config: &PrivateConfig) -> Self {
        let clock = Arc::new(ManualClock::new(T0));
        let registry = Arc::new(Registry::new(RegistryConfig {
            shards: 4,
            ..RegistryConfig::default()
        }));
        Self::reopen(config, clock, registry)
    }

    pub(crate) fn reopen(
        config: &PrivateConfig,
        clock: Arc<ManualClock>,
        registry: Arc<Registry>,
    ) -> Self {
        let policy = PrivatePolicy::open(config, registry.clone(), clock.clone()).unwrap();
        Self {
            policy,
            clock,
            registry,
        }
    }

    pub(crate) fn now(&self) -> i64 {
        i64::from(self.clock.now())
    }

    pub(crate) fn advance(&self, secs: u32) {
        self.clock.advance(secs);
    }

    /// A user and their first key.
    pub(crate) fn user(&self, name: &str) -> (i64, String) {
        let (u, k) = self.policy.create_user(name).unwrap();
        (u.id, k.key)
    }

    pub(crate) fn allow(&self, h: InfoHash) {
        self.policy
            .allow_torrent(h, &TorrentOptions::default())
            .unwrap();
    }

    pub(crate) fn allow_with(&self, h: InfoHash, opts: TorrentOptions) {
        self.policy.allow_torrent(h, &opts).unwrap();
    }
}

pub(crate) fn hash(n: u8) -> InfoHash {
    InfoHash([n; 20])
}

/// A peer id starting with `prefix`, then `n`.
pub(crate) fn peer(prefix: &[u8], n: u8) -> PeerId {
    let mut id = [n; 20];
    id[..prefix.len()].copy_from_slice(prefix);
    PeerId(id)
}

pub(crate) const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

/// What a tracker announce carries, built step by step.
#[derive(Clone, Copy)]
pub(crate) struct Ann<'a> {
    pub(crate) protocol: Protocol,
    pub(crate) hash: InfoHash,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) peer: Option<PeerId>,
    pub(crate) up: u64,
    pub(crate) down: u64,
    pub(crate) left: u64,
    pub(crate) event: Event,
    pub(crate) port: u16,
}

impl<'a> Ann<'a> {
    pub(crate) fn new(hash: InfoHash, key: Option<&'a str>) -> Self {
        Self {
            protocol: Protocol::Http,
            hash,
            key: key.map(str::as_bytes),
            peer: Some(peer(b"-qB4650-", 1)),
            up: 0,
            down: 0,
            left: 100,
            event: Event::None,
            port: 6881,
        }
    }

    pub(crate) fn peer(mut self, p: PeerId) -> Self {
        self.peer = Some(p);
        self
    }

    pub(crate) fn totals(mut self, up: u64, down: u64, left: u64) -> Self {
        self.up = up;
        self.down = down;
        self.left = left;
        self
    }

    pub(crate) fn event(mut self, e: Event) -> Self {
        self.event = e;
        self
    }

    pub(crate) fn req(&self) -> AccessRequest<'_> {
        AccessRequest {
            protocol: self.protocol,
            info_hash: &self.hash,
            passkey: self.key,
            peer_id: self.peer.as_ref(),
            client: CLIENT,
            transfer: Some(Transfer {
                uploaded: self.up,
                downloaded: self.down,
                left: self.left,
                event: self.event,
                port: self.port,
            }),
            now: None,
        }
    }

    /// Asks the policy, and on success stores the peer in the registry as a tracker would.
    pub(crate) fn send(&self, fx: &Fx) -> Access {
        let access = fx.policy.announce(&self.req());
        if access.is_allowed() {
            let a = Announce {
                info_hash: self.hash,
                peer_id: self.peer.unwrap_or_default(),
                addr: SocketAddr::new(CLIENT, self.port),
                event: self.event,
                left: self.left,
                numwant: 0,
            };
            fx.registry
                .announce(&a, fx.clock.now(), &mut SelectedPeers::new())
                .unwrap();
        }
        access
    }

    pub(crate) fn scrape(&self, fx: &Fx) -> Access {
        let mut req = self.req();
        req.transfer = None;
        req.peer_id = None;
        fx.policy.scrape(&req)
    }
}

/// The denial text, or "allow".
pub(crate) fn text(a: &Access) -> &str {
    match a {
        Access::Allow => "allow",
        Access::Deny(r) => r,
    }
}

/// Peers the registry holds for `h`.
pub(crate) fn peers_in_registry(fx: &Fx, h: &InfoHash) -> u32 {
    fx.registry
        .scrape(h)
        .map_or(0, |s| s.complete + s.incomplete)
}
