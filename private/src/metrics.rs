//! Prometheus metrics of private mode: flushes, pending accounting, sessions, denials by reason,
//! discarded absurd deltas, users and torrents. No user, key or hash ever becomes a label.

use prometheus::core::Collector;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

use crate::view::Denial;

/// Flush duration buckets, in seconds.
const FLUSH_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The metric handles, live from the policy's creation (registration only exposes them).
#[derive(Debug, Clone)]
pub(crate) struct PrivateMetrics {
    flushes: IntCounterVec,
    pub(crate) flushes_ok: IntCounter,
    pub(crate) flushes_error: IntCounter,
    pub(crate) flush_duration: Histogram,
    pub(crate) last_flush: IntGauge,
    pub(crate) pending_records: IntGauge,
    pub(crate) sessions: IntGauge,
    denied_vec: IntCounterVec,
    denied: [IntCounter; Denial::ALL.len()],
    absurd: IntCounterVec,
    pub(crate) absurd_up: IntCounter,
    pub(crate) absurd_down: IntCounter,
    pub(crate) users: IntGauge,
    pub(crate) torrents: IntGauge,
}

impl PrivateMetrics {
    /// Creates the metrics (unregistered).
    pub(crate) fn new() -> Result<Self, prometheus::Error> {
        let flushes = IntCounterVec::new(
            Opts::new(
                "swarmd_private_flushes_total",
                "Flushes of pending accounting and peer sessions to the database, by result.",
            ),
            &["result"],
        )?;
        let flush_duration = Histogram::with_opts(
            HistogramOpts::new(
                "swarmd_private_flush_duration_seconds",
                "Time one flush of accounting to the database took.",
            )
            .buckets(FLUSH_BUCKETS.to_vec()),
        )?;
        let last_flush = IntGauge::new(
            "swarmd_private_last_flush_timestamp_seconds",
            "Server time of the last successful flush (0 before the first).",
        )?;
        let pending_records = IntGauge::new(
            "swarmd_private_pending_records",
            "Accounting records waiting for the next flush (one per peer session with unwritten accounting, and those of sessions that ended), merged per user and torrent when written.",
        )?;
        let sessions = IntGauge::new(
            "swarmd_private_sessions",
            "Peer sessions (user, torrent, peer id) whose transfer baseline is remembered.",
        )?;
        let denied_vec = IntCounterVec::new(
            Opts::new(
                "swarmd_private_denied_total",
                "Announces and scrapes refused by the private-mode policy, by reason.",
            ),
            &["reason"],
        )?;
        let denied = Denial::ALL.map(|d| denied_vec.with_label_values(&[d.label()]));
        let absurd = IntCounterVec::new(
            Opts::new(
                "swarmd_private_absurd_deltas_total",
                "Reported transfer deltas discarded for exceeding the maximum rate, by direction.",
            ),
            &["direction"],
        )?;
        let users = IntGauge::new("swarmd_private_users", "User accounts.")?;
        let torrents = IntGauge::new("swarmd_private_torrents", "Allow-listed torrents.")?;
        Ok(Self {
            flushes_ok: flushes.with_label_values(&["ok"]),
            flushes_error: flushes.with_label_values(&["error"]),
            flushes,
            flush_duration,
            last_flush,
            pending_records,
            sessions,
            denied_vec,
            denied,
            absurd_up: absurd.with_label_values(&["up"]),
            absurd_down: absurd.with_label_values(&["down"]),
            absurd,
            users,
            torrents,
        })
    }

    /// Registers every metric on `registry`.
    pub(crate) fn register(
        &self,
        registry: &prometheus::Registry,
    ) -> Result<(), prometheus::Error> {
        let collectors: [Box<dyn Collector>; 9] = [
            Box::new(self.flushes.clone()),
            Box::new(self.flush_duration.clone()),
            Box::new(self.last_flush.clone()),
            Box::new(self.pending_records.clone()),
            Box::new(self.sessions.clone()),
            Box::new(self.denied_vec.clone()),
            Box::new(self.absurd.clone()),
            Box::new(self.users.clone()),
            Box::new(self.torrents.clone()),
        ];
        for c in collectors {
            registry.register(c)?;
        }
        Ok(())
    }

    /// Counts one refusal.
    pub(crate) fn denied(&self, reason: Denial) {
        self.denied[reason.index()].inc();
    }

    /// The refusals counted for `reason`.
    #[cfg(test)]
    pub(crate) fn denied_count(&self, reason: Denial) -> u64 {
        self.denied[reason.index()].get()
    }
}
