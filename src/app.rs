//! Wiring: build the shared registry, metrics and access policy (opening the private-mode
//! database in listed and private modes), bind every listener, run the expiry sweeper and the
//! accounting flusher, reload on SIGHUP, and stop it all gracefully, writing pending accounting
//! last.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use swarmd_swarm::access::{AccessPolicy, OpenPolicy};
use swarmd_swarm::clock::{Clock, SystemClock};
use swarmd_swarm::metrics::Metrics;
use swarmd_swarm::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use swarmd_private::{Mode, PrivatePolicy};

use crate::admin::token::AdminToken;
use crate::admin::{self, AdminState};
use crate::config::Config;

/// What the embedding program supplies besides the configuration.
#[derive(Clone)]
pub struct Options {
    /// The registry's clock; tests pass a manual one to drive expiry.
    pub clock: Arc<dyn Clock>,
    /// Who may announce and scrape what in public mode (`access.mode = "public"`); listed and
    /// private modes use the database-backed policy instead.
    pub policy: Arc<dyn AccessPolicy>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock::new()),
            policy: Arc::new(OpenPolicy),
        }
    }
}

/// A started swarmd: its bound addresses, its registry, and the handle to stop it.
pub struct Running {
    http_addrs: Vec<SocketAddr>,
    udp_addrs: Vec<SocketAddr>,
    dht_addrs: Vec<SocketAddr>,
    dht: Option<swarmd_dht_node::DhtHandle>,
    admin_addrs: Vec<SocketAddr>,
    registry: Arc<Registry>,
    metrics: Metrics,
    shutdown: CancellationToken,
    ready: Arc<AtomicBool>,
    tasks: JoinSet<()>,
    grace: Duration,
    private: Option<Arc<PrivatePolicy>>,
    admin: Arc<AdminState>,
}

impl Running {
    /// Addresses the HTTP tracker listens on (ports resolved, so port 0 becomes the real one).
    pub fn http_addrs(&self) -> &[SocketAddr] {
        &self.http_addrs
    }

    /// Addresses the UDP tracker listens on (ports resolved).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// Addresses the DHT node listens on (ports resolved).
    pub fn dht_addrs(&self) -> &[SocketAddr] {
        &self.dht_addrs
    }

    /// A handle to the DHT node (lookups, stats), if it runs.
    pub fn dht(&self) -> Option<&swarmd_dht_node::DhtHandle> {
        self.dht.as_ref()
    }

    /// Addresses the admin listener (metrics, health, stats) listens on.
    pub fn admin_addrs(&self) -> &[SocketAddr] {
        &self.admin_addrs
    }

    /// The shared swarm registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The metric set.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The private-mode policy (listed and private modes).
    pub fn private(&self) -> Option<&Arc<PrivatePolicy>> {
        self.private.as_ref()
    }

    /// Re-reads the admin token file and the access policy's database view, keeping peers and
    /// pending accounting (what SIGHUP does).
    pub async fn reload(&self) -> anyhow::Result<()> {
        let admin = self.admin.clone();
        tokio::task::spawn_blocking(move || admin.reload())
            .await
            .context("reload task failed")?
    }

    /// A token that stops every service when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, lets in-flight requests finish (up to the configured grace period plus a
    /// margin), and returns once every task has ended.
    pub async fn stop(mut self) {
        self.ready.store(false, Ordering::Relaxed);
        self.shutdown.cancel();
        let deadline = self.grace + Duration::from_secs(1);
        let drained = tokio::time::timeout(deadline, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("tasks still running after the shutdown deadline; aborting them");
            self.tasks.abort_all();
        }
        // Every server has stopped: no announce can follow, so this flush loses nothing.
        if let Some(p) = self.private.take() {
            match tokio::task::spawn_blocking(move || p.flush()).await {
                Ok(Ok(s)) => tracing::info!(records = s.records, "accounting written"),
                Ok(Err(e)) => tracing::error!(error = %e, "final accounting flush failed"),
                Err(e) => tracing::error!(error = %e, "final accounting flush panicked"),
            }
        }
    }
}

/// Binds with `bind`, or, for the IPv6 wildcard on a host without IPv6, reports `None` so the
/// default dual-stack configuration still starts on IPv4-only machines.
fn bind_or_skip_v6<T>(
    addr: SocketAddr,
    what: &str,
    bind: impl FnOnce(SocketAddr) -> io::Result<T>,
) -> anyhow::Result<Option<T>> {
    match bind(addr) {
        Ok(l) => Ok(Some(l)),
        Err(e)
            if addr.is_ipv6()
                && addr.ip().is_unspecified()
                && matches!(e.raw_os_error(), Some(EAFNOSUPPORT | EADDRNOTAVAIL)) =>
        {
            tracing::warn!(%addr, error = %e, "IPv6 is not available; {what} listens on IPv4 only");
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("cannot bind {what} on {addr}")),
    }
}

/// `EAFNOSUPPORT` and `EADDRNOTAVAIL` on Linux: the host has no IPv6.
const EAFNOSUPPORT: i32 = 97;
const EADDRNOTAVAIL: i32 = 99;

fn bind_all<T>(
    addrs: &[SocketAddr],
    what: &str,
    mut bind: impl FnMut(SocketAddr) -> io::Result<T>,
) -> anyhow::Result<Vec<T>> {
    let mut out = Vec::with_capacity(addrs.len());
    for &addr in addrs {
        if let Some(l) = bind_or_skip_v6(addr, what, &mut bind)? {
            out.push(l);
        }
    }
    if out.is_empty() && !addrs.is_empty() {
        anyhow::bail!("{what}: no listener could be bound");
    }
    Ok(out)
}

fn local_addrs(listeners: &[TcpListener]) -> io::Result<Vec<SocketAddr>> {
    listeners.iter().map(TcpListener::local_addr).collect()
}

/// Starts every enabled service of `config` on the current tokio runtime.
pub async fn start(config: Config, options: Options) -> anyhow::Result<Running> {
    config.validate()?;
    let metrics = Metrics::new().context("cannot create metrics")?;
    let registry = Arc::new(Registry::new(config.registry_config()));
    metrics
        .watch_registry(registry.clone())
        .context("cannot register registry metrics")?;
    let token = AdminToken::from_config(&config.admin)?;
    let private = match config.access.mode {
        Mode::Public => None,
        mode => {
            let pc = config.private_config();
            let (reg, clock) = (registry.clone(), options.clock.clone());
            let p = tokio::task::spawn_blocking(move || PrivatePolicy::open(&pc, reg, clock))
                .await
                .context("opening the database panicked")?
                .with_context(|| format!("cannot start {} mode", mode.as_str()))?;
            p.register_metrics(metrics.prometheus())
                .context("cannot register access metrics")?;
            tracing::info!(mode = mode.as_str(), database = %config.access.database, "access policy loaded");
            if !token.is_set() {
                tracing::warn!("admin.token is not set: the admin API is disabled");
            }
            Some(p)
        }
    };
    let policy: Arc<dyn AccessPolicy> = match &private {
        Some(p) => p.clone(),
        None => options.policy.clone(),
    };
    let shutdown = CancellationToken::new();
    let ready = Arc::new(AtomicBool::new(false));
    let grace = Duration::from_secs(config.server.shutdown_timeout_secs);
    let mut tasks = JoinSet::new();

    let http_listeners = if config.http.enabled {
        bind_all(
            &config.http.bind,
            "http tracker",
            swarmd_tracker_http::bind_tcp,
        )?
    } else {
        Vec::new()
    };
    let admin_listeners = if config.admin.enabled {
        bind_all(
            &config.admin.bind,
            "admin listener",
            swarmd_tracker_http::bind_tcp,
        )?
    } else {
        Vec::new()
    };
    let http_addrs = local_addrs(&http_listeners)?;
    let admin_addrs = local_addrs(&admin_listeners)?;

    if !http_listeners.is_empty() {
        let tracker = Arc::new(swarmd_tracker_http::Tracker::new(
            config.http_tracker_config(),
            registry.clone(),
            policy.clone(),
            options.clock.clone(),
            &metrics,
        ));
        for (listener, addr) in http_listeners.into_iter().zip(&http_addrs) {
            tracing::info!(addr = %addr, "http tracker listening");
            tasks.spawn(swarmd_tracker_http::serve(
                listener,
                tracker.clone(),
                shutdown.clone(),
                grace,
            ));
        }
    }

    let mut udp_addrs = Vec::new();
    if config.udp.enabled {
        let tracker = Arc::new(swarmd_tracker_udp::UdpTracker::new(
            config.udp_tracker_config(),
            registry.clone(),
            policy.clone(),
            options.clock.clone(),
            &metrics,
        ));
        let servers = bind_all(&config.udp.bind, "udp tracker", |addr| {
            swarmd_tracker_udp::UdpServer::start(&[addr], tracker.clone(), shutdown.clone())
        })?;
        for server in servers {
            for addr in server.local_addrs() {
                tracing::info!(addr = %addr, "udp tracker listening");
                udp_addrs.push(*addr);
            }
            let token = shutdown.clone();
            tasks.spawn(async move {
                token.cancelled().await;
                // Workers notice the token within their socket read timeout.
                let _ = tokio::task::spawn_blocking(move || server.join()).await;
            });
        }
    }

    let mut dht_addrs = Vec::new();
    let mut dht = None;
    if config.dht.enabled {
        let server = swarmd_dht_node::DhtServer::start(
            &config.dht.bind,
            config.dht_node_config(),
            swarmd_dht_node::DhtDeps {
                registry: registry.clone(),
                policy: policy.clone(),
                clock: options.clock.clone(),
                metrics: metrics.clone(),
            },
            shutdown.clone(),
        )
        .with_context(|| format!("cannot start the dht node on {:?}", config.dht.bind))?;
        for addr in server.local_addrs() {
            tracing::info!(addr = %addr, "dht node listening");
        }
        dht_addrs = server.local_addrs().to_vec();
        dht = Some(server.handle());
        // The node saves its table once the token fires; join waits for that.
        tasks.spawn(server.join());
    }

    let admin_state = Arc::new(AdminState {
        metrics: metrics.clone(),
        registry: registry.clone(),
        ready: ready.clone(),
        started: Instant::now(),
        http_addrs: http_addrs.clone(),
        udp_addrs: udp_addrs.clone(),
        dht_addrs: dht_addrs.clone(),
        private: private.clone(),
        token,
        announce_urls: config.access.announce_urls.clone(),
    });
    // Every listener is bound and every service started: ready before /readyz can be asked.
    ready.store(true, Ordering::Relaxed);
    for (listener, addr) in admin_listeners.into_iter().zip(&admin_addrs) {
        tracing::info!(addr = %addr, "admin listening (/metrics, /healthz, /readyz, /stats)");
        tasks.spawn(admin::serve(
            listener,
            admin_state.clone(),
            shutdown.clone(),
        ));
    }

    tasks.spawn(sweeper(
        registry.clone(),
        options.clock.clone(),
        metrics.clone(),
        Duration::from_millis(config.registry.sweep_interval_ms),
        config.registry.sweep_shards_per_step,
        shutdown.clone(),
    ));

    if let Some(p) = &private {
        tasks.spawn(flusher(
            p.clone(),
            Duration::from_secs(config.access.flush_interval_secs.into()),
            shutdown.clone(),
        ));
    }

    Ok(Running {
        http_addrs,
        udp_addrs,
        dht_addrs,
        dht,
        admin_addrs,
        registry,
        metrics,
        shutdown,
        ready,
        tasks,
        grace,
        private,
        admin: admin_state,
    })
}

/// Writes pending accounting every `every`, off the async workers. The final write happens in
/// [`Running::stop`], once the servers have stopped.
async fn flusher(policy: Arc<PrivatePolicy>, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let p = policy.clone();
        match tokio::task::spawn_blocking(move || p.flush()).await {
            Ok(Ok(s)) if s.records > 0 => {
                tracing::debug!(
                    records = s.records,
                    secs = s.duration_secs,
                    "accounting written"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "accounting flush failed; will retry"),
            Err(e) => tracing::error!(error = %e, "accounting flush panicked"),
        }
    }
}

/// Expires peers a slice of shards at a time, off the async workers, so no sweep stalls requests.
async fn sweeper(
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    every: Duration,
    shards_per_step: usize,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let registry = registry.clone();
        let now = clock.now();
        let step = tokio::task::spawn_blocking(move || registry.sweep(now, shards_per_step)).await;
        match step {
            Ok(stats) => {
                if stats.peers_removed > 0 || stats.torrents_removed > 0 {
                    tracing::debug!(
                        peers = stats.peers_removed,
                        torrents = stats.torrents_removed,
                        "expired"
                    );
                }
                metrics.record_sweep(&stats);
            }
            Err(e) => tracing::error!(error = %e, "expiry sweep failed"),
        }
    }
}

/// Runs swarmd until `shutdown` completes, then stops gracefully.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    // SIGHUP is caught before the listeners start, so an early reload never kills the process.
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with POST /api/v1/reload");
            None
        }
    };
    let running = start(config, Options::default()).await?;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(()) = async { match hangups.as_mut() { Some(h) => h.recv().await, None => None } } => {
                match running.reload().await {
                    Ok(()) => tracing::info!("reloaded the admin token and the access policy"),
                    Err(e) => tracing::error!(error = %format!("{e:#}"), "reload failed; keeping the previous state"),
                }
            }
        }
    }
    tracing::info!("shutting down");
    running.stop().await;
    tracing::info!("stopped");
    Ok(())
}
