//! The accounting rules for one announce against a peer session's baseline: what is credited.
//!
//! * First sighting (no baseline): nothing is credited; clients report totals since their
//!   `started` event, and after a tracker-side loss of state counting them would double-count.
//! * A direction's delta is `reported - baseline`, or `reported` when the client reports less
//!   than before (it restarted its counters): never negative.
//! * A delta above `max_rate × max(1, now - last_seen)` is absurd and discarded (the baseline
//!   still advances).
//! * Credited bytes are the raw delta times the torrent's multiplier, truncated.
//! * Seeding time `min(now - last_seen, peer_timeout)` is credited when the baseline's `left` was
//!   0; a completion when `event=completed` and the baseline was not already complete.

use swarmd_proto::Event;
use swarmd_swarm::access::Transfer;

use crate::model::Totals;

/// The bounds the rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Bytes per second above which a delta is absurd.
    pub(crate) max_rate: u64,
    /// The most seeding seconds one announce credits.
    pub(crate) peer_timeout: u32,
}

/// A torrent's multipliers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Multipliers {
    pub(crate) upload: f64,
    pub(crate) download: f64,
}

/// What a session last reported, as the rules need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reported {
    pub(crate) uploaded: u64,
    pub(crate) downloaded: u64,
    pub(crate) left: u64,
    pub(crate) last_seen: i64,
}

/// What one announce earns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Credit {
    /// Totals to add.
    pub(crate) totals: Totals,
    /// A discarded absurd upload delta.
    pub(crate) absurd_up: Option<u64>,
    /// A discarded absurd download delta.
    pub(crate) absurd_down: Option<u64>,
}

/// Bytes moved since the baseline: the difference, or the whole report after a counter reset.
pub(crate) fn delta(reported: u64, baseline: u64) -> u64 {
    if reported >= baseline {
        reported - baseline
    } else {
        reported
    }
}

/// `raw × multiplier`, truncated (saturating at `u64::MAX`).
pub(crate) fn scale(raw: u64, multiplier: f64) -> u64 {
    // `as` from f64 truncates toward zero and saturates, which is what is wanted.
    (raw as f64 * multiplier) as u64
}

/// Applies the rules to one announce reporting `t` at `now` against `baseline`.
pub(crate) fn credit(
    baseline: Option<&Reported>,
    t: &Transfer,
    now: i64,
    m: Multipliers,
    limits: Limits,
) -> Credit {
    let mut c = Credit::default();
    let Some(b) = baseline else {
        if t.event == Event::Completed {
            c.totals.completed = 1;
        }
        return c;
    };
    let since = u64::try_from(now.saturating_sub(b.last_seen)).unwrap_or(0);
    let cap = limits.max_rate.saturating_mul(since.max(1));

    let up = delta(t.uploaded, b.uploaded);
    if up > cap {
        c.absurd_up = Some(up);
    } else {
        c.totals.raw_uploaded = up;
        c.totals.uploaded = scale(up, m.upload);
    }
    let down = delta(t.downloaded, b.downloaded);
    if down > cap {
        c.absurd_down = Some(down);
    } else {
        c.totals.raw_downloaded = down;
        c.totals.downloaded = scale(down, m.download);
    }
    if b.left == 0 {
        c.totals.seed_secs = since.min(u64::from(limits.peer_timeout));
    }
    if t.event == Event::Completed && b.left != 0 {
        c.totals.completed = 1;
    }
    c
}
