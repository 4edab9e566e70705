//! [`PrivatePolicy`]: opening the database into memory, the request-path checks and accounting
//! ([`AccessPolicy`]), flushing, reloading and evicting sessions.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use rusqlite::Connection;
use swarmd_proto::{Event, InfoHash};
use swarmd_swarm::access::{Access, AccessPolicy, AccessRequest, Protocol};
use swarmd_swarm::clock::Clock;
use swarmd_swarm::{Announce, Registry, SelectedPeers};

use crate::credit::{Credit, Limits, Multipliers};
use crate::error::PrivateError;
use crate::metrics::PrivateMetrics;
use crate::model::{FlushStats, Mode, PrivateConfig, Stats};
use crate::session::{Accounted, Session, SessionKey, Sessions, Taken};
use crate::view::{Denial, KeyEntry, TorrentEntry, View};
use crate::{flush, schema};

/// Shown to DHT nodes asking about a private torrent.
const PRIVATE_TORRENT: &str = "private torrent";
/// Shown to clients asking for a full scrape.
const NO_FULL_SCRAPE: &str = "full scrape is not available on this tracker";
/// `last_flush_at` before the first flush.
const NEVER: i64 = i64::MIN;

/// The access policy of the `listed` and `private` modes: allow list, passkeys, client rules
/// and per-user accounting, with all state in SQLite and an in-memory view so the request path
/// never touches the database. `Send + Sync`; share it in an `Arc`.
///
/// Request-path calls ([`AccessPolicy`] methods, [`PrivatePolicy::stats`]) are cheap and never
/// block on IO. Every other method is blocking (it runs SQL): call it from a blocking context.
pub struct PrivatePolicy {
    pub(crate) mode: Mode,
    pub(crate) limits: Limits,
    /// The one connection, shared by flushes and admin operations. Lock order: `conn`, then
    /// `view`, then a session shard.
    pub(crate) conn: Mutex<Connection>,
    pub(crate) view: RwLock<View>,
    pub(crate) sessions: Sessions,
    pub(crate) registry: Arc<Registry>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: PrivateMetrics,
    last_flush_at: AtomicI64,
}

impl std::fmt::Debug for PrivatePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivatePolicy")
            .field("mode", &self.mode)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl PrivatePolicy {
    /// Opens (creating the file if needed) and migrates the database, and loads users, keys,
    /// torrents, client rules and peer sessions into memory. `config.mode` must not be
    /// [`Mode::Public`] ([`PrivateError::Invalid`]). Blocking.
    pub fn open(
        config: &PrivateConfig,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, PrivateError> {
        if config.mode == Mode::Public {
            return Err(PrivateError::Invalid(
                "the private-mode policy needs mode listed or private, not public".into(),
            ));
        }
        let mut conn = schema::open(&config.database)?;
        schema::migrate(&mut conn)?;
        let view = View::load(&conn)?;
        let stored = flush::load_sessions(&conn)?;
        let metrics = PrivateMetrics::new()
            .map_err(|e| PrivateError::Invalid(format!("cannot create metrics: {e}")))?;
        let sessions = Sessions::new();
        metrics.sessions.set(stored.len() as i64);
        for (key, session) in stored {
            sessions
                .shard(&key.info_hash, key.user_id)
                .lock()
                .sessions
                .insert(key, session);
        }
        metrics.users.set(view.users.len() as i64);
        metrics.torrents.set(view.torrents.len() as i64);
        tracing::info!(
            mode = config.mode.as_str(),
            database = %config.database.display(),
            users = view.users.len(),
            torrents = view.torrents.len(),
            sessions = metrics.sessions.get(),
            "private-mode state loaded"
        );
        Ok(Arc::new(Self {
            mode: config.mode,
            limits: Limits {
                max_rate: config.max_rate_bytes_per_sec,
                peer_timeout: config.peer_timeout_secs,
            },
            conn: Mutex::new(conn),
            view: RwLock::new(view),
            sessions,
            registry,
            clock,
            metrics,
            last_flush_at: AtomicI64::new(NEVER),
        }))
    }

    /// The mode (`Listed` or `Private`).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Registers this crate's metrics (`swarmd_private_*`) on `registry`. Once only.
    pub fn register_metrics(
        &self,
        registry: &prometheus::Registry,
    ) -> Result<(), prometheus::Error> {
        self.metrics.register(registry)
    }

    /// Now on the server clock.
    pub(crate) fn now(&self) -> i64 {
        i64::from(self.clock.now())
    }

    /// Writes every pending accounting change and session baseline in one transaction, and
    /// forgets sessions idle longer than the peer timeout (memory and database). Blocking; safe
    /// to call concurrently with announces, which only wait for a shard's in-memory take.
    ///
    /// On a database error the taken changes are merged back, so nothing is lost, and the
    /// error is returned; the next flush retries them.
    pub fn flush(&self) -> Result<FlushStats, PrivateError> {
        let started = Instant::now();
        let mut conn = self.conn.lock();
        let now = self.now();
        let timeout = self.limits.peer_timeout;
        let mut taken: Vec<Taken> = (0..self.sessions.len()).map(|_| Taken::default()).collect();
        for (shard, out) in self.sessions.iter().zip(&mut taken) {
            let mut shard = shard.lock();
            shard.take(now, timeout, out);
            self.metrics.pending_records.sub(out.pending.len() as i64);
            self.metrics.sessions.sub(out.idle as i64);
        }
        let result = flush::write(&mut conn, &taken);
        let duration = started.elapsed().as_secs_f64();
        self.metrics.flush_duration.observe(duration);
        if let Err(e) = result {
            for (shard, t) in self.sessions.iter().zip(taken) {
                let mut shard = shard.lock();
                let created = shard.merge_back(t);
                self.metrics.pending_records.add(created as i64);
            }
            self.metrics.flushes_error.inc();
            tracing::error!(error = %e, "private-mode flush failed; changes kept for the next one");
            return Err(e.into());
        }
        drop(conn);
        self.metrics.flushes_ok.inc();
        self.metrics.last_flush.set(now);
        self.last_flush_at.store(now, Ordering::Relaxed);
        let stats = FlushStats {
            records: taken.iter().map(|t| t.pending.len()).sum(),
            sessions_written: taken.iter().map(|t| t.sessions.len()).sum(),
            sessions_removed: taken.iter().map(|t| t.removed.len()).sum(),
            duration_secs: duration,
        };
        tracing::debug!(?stats, "private-mode flush");
        Ok(stats)
    }

    /// Re-reads users, keys, torrents and client rules from the database (SIGHUP, edits by
    /// other tools); pending accounting is untouched. Sessions of keys now revoked or gone and
    /// of users now disabled are evicted, and torrents now private or unlisted are purged from
    /// the registry. Blocking.
    pub fn reload(&self) -> Result<(), PrivateError> {
        let conn = self.conn.lock();
        let fresh = View::load(&conn)?;
        let mut view = self.view.write();
        let old = std::mem::replace(&mut *view, fresh);
        let mut purge: Vec<InfoHash> = old
            .torrents
            .keys()
            .filter(|h| !view.torrents.contains_key(h))
            .copied()
            .collect();
        purge.extend(
            view.torrents
                .iter()
                .filter(|(h, t)| {
                    self.private_entry(t)
                        && !old.torrents.get(h).is_some_and(|o| self.private_entry(o))
                })
                .map(|(h, _)| *h),
        );
        let revoked: HashMap<i64, bool> = view.keys.values().map(|k| (k.id, k.revoked)).collect();
        let evicted = self.evict(|k, s| {
            let key_gone = revoked.get(&s.key_id).is_none_or(|&r| r);
            let user_gone = view.users.get(&k.user_id).is_none_or(|u| u.disabled);
            key_gone || user_gone
        });
        self.metrics.users.set(view.users.len() as i64);
        self.metrics.torrents.set(view.torrents.len() as i64);
        drop(view);
        drop(conn);
        for h in &purge {
            self.registry.remove(h);
        }
        tracing::info!(evicted, purged = purge.len(), "private-mode state reloaded");
        Ok(())
    }

    /// A cheap in-memory snapshot: counts, pending records, flush figures.
    pub fn stats(&self) -> Stats {
        let now = self.now();
        let view = self.view.read();
        let last = self.last_flush_at.load(Ordering::Relaxed);
        Stats {
            mode: self.mode,
            users: view.users.len() as u64,
            active_keys: view.active_keys(now),
            torrents: view.torrents.len() as u64,
            client_rules: view.rules.len() as u64,
            sessions: u64::try_from(self.metrics.sessions.get()).unwrap_or(0),
            pending_records: u64::try_from(self.metrics.pending_records.get()).unwrap_or(0),
            last_flush_at: (last != NEVER).then_some(last),
            flushes: self.metrics.flushes_ok.get(),
            flush_errors: self.metrics.flushes_error.get(),
        }
    }

    /// Whether a listed torrent is private in this mode.
    pub(crate) fn private_entry(&self, t: &TorrentEntry) -> bool {
        self.mode == Mode::Private || t.private
    }

    /// Drops the sessions `pred` selects from memory (their rows are deleted at the next flush,
    /// or already were by the caller's transaction) and removes their peers from the registry
    /// with an `event=stopped` announce. Call with the view write-locked, so no announce can
    /// re-create a session meanwhile. Returns the number evicted.
    pub(crate) fn evict(&self, mut pred: impl FnMut(&SessionKey, &Session) -> bool) -> usize {
        let mut out = Vec::new();
        for shard in self.sessions.iter() {
            let mut shard = shard.lock();
            let before = out.len();
            shard.evict(&mut pred, &mut out);
            self.metrics.sessions.sub((out.len() - before) as i64);
        }
        let now = self.clock.now();
        let mut scratch = SelectedPeers::new();
        for (k, s) in &out {
            let stop = Announce {
                info_hash: k.info_hash,
                peer_id: k.peer_id,
                addr: s.addr,
                event: Event::Stopped,
                left: 0,
                numwant: 0,
            };
            // A stop never fails (it never creates a swarm).
            let _ = self.registry.announce(&stop, now, &mut scratch);
        }
        out.len()
    }

    /// The rules for a tracker announce (`announce = true`) or scrape; accounts an allowed
    /// announce made with a valid passkey.
    fn tracker_request(&self, req: &AccessRequest<'_>, announce: bool) -> Access {
        let now = self.now();
        let view = self.view.read();
        let checked = check(&view, self.mode, req, announce, now);
        let (key, torrent) = match checked {
            Err(denial) => {
                drop(view);
                self.metrics.denied(denial);
                return Access::Deny(Cow::Borrowed(denial.text()));
            }
            Ok(None) => return Access::Allow,
            Ok(Some(found)) => found,
        };
        let Some(transfer) = req.transfer.filter(|_| announce) else {
            return Access::Allow;
        };
        let acc = Accounted {
            key: SessionKey {
                info_hash: *req.info_hash,
                user_id: key.user_id,
                peer_id: req.peer_id.copied().unwrap_or_default(),
            },
            torrent_id: torrent.id,
            key_id: key.id,
            addr: SocketAddr::new(req.client, transfer.port),
            transfer,
            multipliers: Multipliers {
                upload: torrent.upload_multiplier,
                download: torrent.download_multiplier,
            },
            now,
        };
        // The view stays read-locked through accounting, so an eviction (which write-locks it)
        // never races a session being re-created with a key it just revoked.
        let mut shard = self.sessions.shard(req.info_hash, key.user_id).lock();
        let out = shard.announce(&acc, self.limits);
        if out.sessions_delta != 0 {
            self.metrics.sessions.add(out.sessions_delta);
        }
        if out.new_record {
            self.metrics.pending_records.inc();
        }
        drop(shard);
        drop(view);
        self.report_absurd(&out.credit, key.user_id, req.info_hash, req.client);
        Access::Allow
    }

    fn report_absurd(&self, credit: &Credit, user_id: i64, info_hash: &InfoHash, client: IpAddr) {
        for (delta, direction, counter) in [
            (credit.absurd_up, "up", &self.metrics.absurd_up),
            (credit.absurd_down, "down", &self.metrics.absurd_down),
        ] {
            if let Some(delta) = delta {
                counter.inc();
                tracing::warn!(
                    user_id,
                    info_hash = %info_hash,
                    %client,
                    direction,
                    delta,
                    max_rate = self.limits.max_rate,
                    "discarding an absurd transfer delta"
                );
            }
        }
    }

    /// Over the DHT: private torrents are refused, anything else (listed or not) is fine.
    fn dht_request(&self, info_hash: &InfoHash) -> Access {
        if self.is_private(info_hash) {
            Access::Deny(Cow::Borrowed(PRIVATE_TORRENT))
        } else {
            Access::Allow
        }
    }
}

/// Rules 1–3: client rules (announces with a peer id only), the allow list, the passkey.
/// `Ok(Some)` carries the valid key presented and the torrent.
fn check(
    view: &View,
    mode: Mode,
    req: &AccessRequest<'_>,
    announce: bool,
    now: i64,
) -> Result<Option<(KeyEntry, TorrentEntry)>, Denial> {
    if announce {
        if let Some(peer_id) = req.peer_id {
            if !view.client_allowed(peer_id) {
                return Err(Denial::Client);
            }
        }
    }
    let torrent = view
        .torrents
        .get(req.info_hash)
        .ok_or(Denial::Unregistered)?;
    let required = mode == Mode::Private || torrent.private;
    let key = view.check_key(req.passkey, required, now)?;
    Ok(key.map(|k| (*k, *torrent)))
}

impl AccessPolicy for PrivatePolicy {
    fn announce(&self, req: &AccessRequest<'_>) -> Access {
        match req.protocol {
            Protocol::Dht => self.dht_request(req.info_hash),
            Protocol::Http | Protocol::Udp => self.tracker_request(req, true),
        }
    }

    fn scrape(&self, req: &AccessRequest<'_>) -> Access {
        match req.protocol {
            Protocol::Dht => self.dht_request(req.info_hash),
            Protocol::Http | Protocol::Udp => self.tracker_request(req, false),
        }
    }

    fn is_private(&self, info_hash: &InfoHash) -> bool {
        self.view
            .read()
            .torrents
            .get(info_hash)
            .is_some_and(|t| self.private_entry(t))
    }

    fn full_scrape(&self, _client: IpAddr) -> Access {
        Access::Deny(Cow::Borrowed(NO_FULL_SCRAPE))
    }
}
