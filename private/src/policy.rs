//! [`PrivatePolicy`]: opening the database into memory, the request-path checks and accounting
//! ([`AccessPolicy`]), flushing, reloading and evicting sessions.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use rusqlite::Connection;
use swarmd_proto::{Event, InfoHash, PeerId};
use swarmd_swarm::access::{Access, AccessPolicy, AccessRequest, Protocol, Transfer};
use swarmd_swarm::clock::Clock;
use swarmd_swarm::{Announce, Prefetch, Registry, SelectedPeers};

use crate::credit::{Credit, Limits};
use crate::error::PrivateError;
use crate::metrics::PrivateMetrics;
use crate::model::{FlushStats, Mode, PrivateConfig, Stats};
use crate::session::{Accounted, Addr, Session};
use crate::torrent::{self, Taken};
use crate::torrents::Torrents;
use crate::view::{Denial, KeyEntry, View};
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
    /// `view`, then a torrent shard.
    pub(crate) conn: Mutex<Connection>,
    pub(crate) view: RwLock<View>,
    pub(crate) torrents: Torrents,
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
        let listed = torrent::load_listed(&conn)?;
        let stored = flush::load_sessions(&conn)?;
        let metrics = PrivateMetrics::new()
            .map_err(|e| PrivateError::Invalid(format!("cannot create metrics: {e}")))?;
        let torrents = Torrents::new();
        for (h, entry) in &listed {
            torrents.allow(h, entry);
        }
        metrics.sessions.set(stored.len() as i64);
        for (h, torrent_id, session) in stored {
            torrents.insert_loaded(&h, torrent_id, session);
        }
        metrics.users.set(view.users.len() as i64);
        metrics.torrents.set(torrents.listed() as i64);
        tracing::info!(
            mode = config.mode.as_str(),
            database = %config.database.display(),
            users = view.users.len(),
            torrents = torrents.listed(),
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
            torrents,
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
        let mut taken = Taken::default();
        for cell in self.torrents.iter() {
            let (records, idle) = (taken.pending.len(), taken.idle);
            let mut shard = cell.lock();
            if shard.take(now, self.limits.peer_timeout, &mut taken) {
                cell.publish(&shard);
            }
            drop(shard);
            self.metrics
                .pending_records
                .sub((taken.pending.len() - records) as i64);
            self.metrics.sessions.sub((taken.idle - idle) as i64);
        }
        let result = flush::write(&mut conn, &mut taken);
        let duration = started.elapsed().as_secs_f64();
        self.metrics.flush_duration.observe(duration);
        if let Err(e) = result {
            let created = self.merge_back(taken);
            self.metrics.pending_records.add(created as i64);
            self.metrics.flushes_error.inc();
            tracing::error!(error = %e, "private-mode flush failed; changes kept for the next one");
            return Err(e.into());
        }
        drop(conn);
        self.metrics.flushes_ok.inc();
        self.metrics.last_flush.set(now);
        self.last_flush_at.store(now, Ordering::Relaxed);
        let stats = FlushStats {
            records: taken.pending.len(),
            sessions_written: taken.sessions.len(),
            sessions_removed: taken.removed.len(),
            duration_secs: duration,
        };
        tracing::debug!(?stats, "private-mode flush");
        Ok(stats)
    }

    /// Puts back what a failed flush took: pending totals kept for the next flush, baselines
    /// marked dirty again (their current value is written next time), deletions queued again
    /// unless the session has come back since. Returns the number of pending records put back.
    fn merge_back(&self, taken: Taken) -> usize {
        let created = taken.pending.len();
        for r in taken.pending {
            self.torrents.shard(&r.info_hash).lock().orphans.push(r);
        }
        for r in taken.sessions {
            let mut shard = self.torrents.shard(&r.info_hash).lock();
            let s = &r.session;
            if let Some(s) = shard.session_mut(&r.info_hash, s.user_id, &s.peer_id) {
                s.dirty = true;
            }
        }
        for r in taken.removed {
            let mut shard = self.torrents.shard(&r.info_hash).lock();
            if shard
                .session_mut(&r.info_hash, r.user_id, &r.peer_id)
                .is_none()
            {
                shard.removed.push(r);
            }
        }
        created
    }

    /// Re-reads users, keys, torrents and client rules from the database (SIGHUP, edits by
    /// other tools); pending accounting is untouched. Sessions of keys now revoked or gone and
    /// of users now disabled are evicted, and torrents now private or unlisted are purged from
    /// the registry. Blocking.
    pub fn reload(&self) -> Result<(), PrivateError> {
        let conn = self.conn.lock();
        let fresh = View::load(&conn)?;
        let listed = torrent::load_listed(&conn)?;
        let mut view = self.view.write();
        *view = fresh;
        let purge = self.torrents.replace_listed(listed, self.mode);
        let revoked: std::collections::HashMap<i64, bool> =
            view.keys.values().map(|k| (k.id, k.revoked)).collect();
        let evicted = self.evict(|s| {
            let key_gone = revoked.get(&s.key_id).is_none_or(|&r| r);
            let user_gone = view.users.get(&s.user_id).is_none_or(|u| u.disabled);
            key_gone || user_gone
        });
        self.metrics.users.set(view.users.len() as i64);
        self.metrics.torrents.set(self.torrents.listed() as i64);
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
            torrents: self.torrents.listed() as u64,
            client_rules: view.rules.len() as u64,
            sessions: u64::try_from(self.metrics.sessions.get()).unwrap_or(0),
            pending_records: u64::try_from(self.metrics.pending_records.get()).unwrap_or(0),
            last_flush_at: (last != NEVER).then_some(last),
            flushes: self.metrics.flushes_ok.get(),
            flush_errors: self.metrics.flushes_error.get(),
        }
    }

    /// Drops the sessions `pred` selects from memory (their rows are deleted at the next flush,
    /// or already were by the caller's transaction) and removes their peers from the registry
    /// with an `event=stopped` announce. Call with the view write-locked, so no announce can
    /// re-create a session meanwhile. Returns the number evicted.
    pub(crate) fn evict(&self, mut pred: impl FnMut(&Session) -> bool) -> usize {
        let mut out = Vec::new();
        for cell in self.torrents.iter() {
            let mut shard = cell.lock();
            let (n, moved) = shard.evict(&mut pred, &mut out);
            if moved {
                cell.publish(&shard);
            }
            drop(shard);
            self.metrics.sessions.sub(n as i64);
        }
        let now = self.clock.now();
        let mut scratch = SelectedPeers::new();
        for (h, s) in &out {
            let stop = Announce {
                info_hash: *h,
                peer_id: s.peer_id,
                addr: s.addr.socket(),
                event: Event::Stopped,
                left: 0,
                numwant: 0,
            };
            // A stop never fails (it never creates a swarm).
            let _ = self.registry.announce(&stop, now, &mut scratch);
        }
        out.len()
    }

    /// The rules for a tracker announce (`announce = true`) or scrape, in order: client rules
    /// (announces with a peer id only), the allow list, the passkey; accounts an allowed
    /// announce made with a valid passkey.
    ///
    /// The view is read-locked first, then the torrent's shard, and both are held through
    /// accounting: an eviction (which write-locks the view) never races a session being
    /// re-created with a key it just revoked.
    fn tracker_request(&self, req: &AccessRequest<'_>, announce: bool) -> Access {
        let now = req.now.unwrap_or_else(|| self.clock.now());
        let view = self.view.read();
        if announce {
            if let Some(peer_id) = req.peer_id {
                if !view.client_allowed(peer_id) {
                    return self.deny(Denial::Client);
                }
            }
        }
        // Looked up before the shard is locked; whether a key is needed, and so which denial
        // comes first, depends on the torrent.
        let key = view.check_key(req.passkey, i64::from(now));
        let transfer = req.transfer.filter(|_| announce);
        let h = req.info_hash;
        let peer_id = req.peer_id.copied().unwrap_or_default();
        let (bits, cell) = self.torrents.locate(h, &peer_id);
        let mut guard = cell.lock();
        let shard = &mut *guard;
        // One probe finds the allow-list entry; the session's is in the lines the prefetch
        // loaded with it.
        let at = shard.find_torrent(bits.torrent, h);
        let private = at
            .and_then(|at| shard.torrents.get(at))
            .filter(|t| t.listed)
            .map(|t| t.private);
        let (key, transfer) = match self.admit(private, key, transfer) {
            Ok(found) => found,
            Err(access) => return access,
        };
        // Admitted, so listed, so found.
        let Some(at) = at else {
            return Access::Allow;
        };
        let acc = accounted(req, &key, transfer, now);
        let (out, moved) = shard.announce(at, h, bits.session, &acc, self.limits);
        if moved {
            cell.publish(shard);
        }
        let user_id = key.user_id;
        drop(guard);
        drop(view);
        if out.sessions_delta != 0 {
            self.metrics.sessions.add(out.sessions_delta);
        }
        if out.new_record {
            self.metrics.pending_records.inc();
        }
        self.report_absurd(&out.credit, user_id, h, req.client);
        Access::Allow
    }

    /// The allow-list and passkey rules once the torrent is known (`private`: its flag if it
    /// is listed). `Ok` carries what to account; `Err` the answer when there is nothing to
    /// account (a denial, or an allowed scrape or keyless announce).
    #[inline]
    fn admit(
        &self,
        private: Option<bool>,
        key: Result<Option<KeyEntry>, Denial>,
        transfer: Option<Transfer>,
    ) -> Result<(KeyEntry, Transfer), Access> {
        let Some(private) = private else {
            return Err(self.deny(Denial::Unregistered));
        };
        let required = self.mode == Mode::Private || private;
        let key = match (key, required) {
            (Ok(Some(key)), _) => key,
            (Ok(None), false) => return Err(Access::Allow),
            (Ok(None), true) => return Err(self.deny(Denial::MissingKey)),
            (Err(denial), _) => return Err(self.deny(denial)),
        };
        transfer.map(|t| (key, t)).ok_or(Access::Allow)
    }

    /// Counts and returns a denial.
    #[cold]
    fn deny(&self, denial: Denial) -> Access {
        self.metrics.denied(denial);
        Access::Deny(Cow::Borrowed(denial.text()))
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

/// The accounting of an allowed announce with a valid key.
#[inline]
fn accounted(req: &AccessRequest<'_>, key: &KeyEntry, transfer: Transfer, now: u32) -> Accounted {
    Accounted {
        user_id: key.user_id,
        key_id: key.id,
        peer_id: req.peer_id.copied().unwrap_or_default(),
        addr: Addr::new(req.client, transfer.port),
        transfer,
        now,
    }
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
        self.torrents.is_private(info_hash, self.mode)
    }

    fn full_scrape(&self, _client: IpAddr) -> Access {
        Access::Deny(Cow::Borrowed(NO_FULL_SCRAPE))
    }

    fn prefetch(&self, info_hash: &InfoHash, peer_id: Option<&PeerId>, step: Prefetch) {
        self.torrents.prefetch(info_hash, peer_id, step);
    }
}
