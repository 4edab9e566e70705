//! Peer sessions and pending accounting, in memory, sharded.
//!
//! A session is one (info hash, user, peer id): its baseline (what it last reported, when, with
//! which key, from which address). Pending totals are kept per (user, torrent) until the next
//! flush. A shard, chosen by a keyed hash of (info hash, user id), holds both a session and the
//! pending totals it feeds, so one announce takes one shard lock, briefly.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::SocketAddr;

use ahash::RandomState;
use parking_lot::Mutex;
use swarmd_proto::{Event, InfoHash, PeerId};
use swarmd_swarm::access::Transfer;

use crate::credit::{credit, Credit, Limits, Multipliers, Reported};
use crate::model::Totals;

/// Number of shards (a power of two).
const SHARDS: usize = 32;

/// How stale a stored `last_seen` (and a record's `last_announce`) may grow before an announce
/// that changed nothing else is written anyway. Announces that only prove a peer is alive are
/// most of a private tracker's traffic (idle seeders); writing each would make the flush cost
/// one database row per announce. The price: after a crash, a seeder's first announce may
/// credit up to this much seeding time twice.
pub(crate) const LAST_SEEN_STEP: i64 = 300;

/// Identity of a peer session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SessionKey {
    pub(crate) info_hash: InfoHash,
    pub(crate) user_id: i64,
    pub(crate) peer_id: PeerId,
}

/// A session's baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Session {
    pub(crate) torrent_id: i64,
    pub(crate) key_id: i64,
    pub(crate) addr: SocketAddr,
    pub(crate) reported: Reported,
    /// Changed (beyond `last_seen`) since the last flush wrote it.
    pub(crate) dirty: bool,
    /// The `last_seen` the database holds for this session.
    pub(crate) written_last_seen: i64,
}

impl Session {
    /// True if the next flush must write this baseline.
    fn due(&self) -> bool {
        self.dirty || self.reported.last_seen - self.written_last_seen >= LAST_SEEN_STEP
    }
}

/// Accounting waiting for a flush, for one (user, torrent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pending {
    pub(crate) totals: Totals,
    pub(crate) last_announce: i64,
}

impl Pending {
    /// Adds `other` (totals summed, latest announce kept).
    pub(crate) fn merge(&mut self, other: &Pending) {
        self.totals.add(&other.totals);
        self.last_announce = self.last_announce.max(other.last_announce);
    }
}

/// A session whose database row is to be deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Removed {
    pub(crate) key: SessionKey,
    pub(crate) torrent_id: i64,
}

/// (user id, torrent id).
pub(crate) type RecordKey = (i64, i64);

/// One announce to account, after the policy allowed it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Accounted {
    pub(crate) key: SessionKey,
    pub(crate) torrent_id: i64,
    pub(crate) key_id: i64,
    pub(crate) addr: SocketAddr,
    pub(crate) transfer: Transfer,
    pub(crate) multipliers: Multipliers,
    pub(crate) now: i64,
}

/// What accounting one announce changed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Outcome {
    pub(crate) credit: Credit,
    /// +1 a session was created, -1 one was dropped (stopped).
    pub(crate) sessions_delta: i64,
    /// A new pending record was created.
    pub(crate) new_record: bool,
}

/// What a flush took out of one shard.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    pub(crate) pending: Vec<(RecordKey, Pending)>,
    pub(crate) sessions: Vec<(SessionKey, Session)>,
    pub(crate) removed: Vec<Removed>,
    /// Sessions forgotten for idleness (already gone from memory).
    pub(crate) idle: usize,
}

/// One shard's state.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    pub(crate) sessions: HashMap<SessionKey, Session, RandomState>,
    pub(crate) pending: HashMap<RecordKey, Pending, RandomState>,
    /// Sessions dropped since the last flush, whose rows the flush deletes.
    pub(crate) removed: Vec<Removed>,
}

impl Shard {
    /// Accounts one announce: credits it against the baseline, then stores the new baseline
    /// (or drops the session on `event=stopped`).
    pub(crate) fn announce(&mut self, a: &Accounted, limits: Limits) -> Outcome {
        let t = &a.transfer;
        let stopped = t.event == Event::Stopped;
        let reported = Reported {
            uploaded: t.uploaded,
            downloaded: t.downloaded,
            left: t.left,
            last_seen: a.now,
        };
        let mut out = Outcome::default();
        // Whether this announce leaves something the database must learn at the next flush.
        let mut write = stopped;
        match self.sessions.get_mut(&a.key) {
            Some(s) => {
                out.credit = credit(Some(&s.reported), t, a.now, a.multipliers, limits);
                let p = &s.reported;
                if stopped {
                    let torrent_id = s.torrent_id;
                    self.sessions.remove(&a.key);
                    self.removed.push(Removed {
                        key: a.key,
                        torrent_id,
                    });
                    out.sessions_delta = -1;
                } else {
                    s.dirty |= (p.uploaded, p.downloaded, p.left)
                        != (t.uploaded, t.downloaded, t.left)
                        || (s.torrent_id, s.key_id, s.addr) != (a.torrent_id, a.key_id, a.addr);
                    s.torrent_id = a.torrent_id;
                    s.key_id = a.key_id;
                    s.addr = a.addr;
                    s.reported = reported;
                    write |= s.due();
                }
            }
            None => {
                out.credit = credit(None, t, a.now, a.multipliers, limits);
                if !stopped {
                    self.sessions.insert(
                        a.key,
                        Session {
                            torrent_id: a.torrent_id,
                            key_id: a.key_id,
                            addr: a.addr,
                            reported,
                            dirty: true,
                            written_last_seen: a.now,
                        },
                    );
                    out.sessions_delta = 1;
                    write = true;
                }
            }
        }
        if !write && out.credit.totals == Totals::default() {
            return out;
        }
        let add = Pending {
            totals: out.credit.totals,
            last_announce: a.now,
        };
        match self.pending.entry((a.key.user_id, a.torrent_id)) {
            Entry::Occupied(mut e) => e.get_mut().merge(&add),
            Entry::Vacant(e) => {
                e.insert(add);
                out.new_record = true;
            }
        }
        out
    }

    /// Moves pending records, dirty baselines and queued deletions into `out`, and forgets
    /// sessions idle for more than `timeout` seconds at `now`. Maps keep their capacity, so
    /// steady-state announces do not allocate.
    pub(crate) fn take(&mut self, now: i64, timeout: u32, out: &mut Taken) {
        let records = self.pending.len();
        out.pending.extend(self.pending.drain());
        out.removed.append(&mut self.removed);
        let timeout = i64::from(timeout);
        self.sessions.retain(|key, s| {
            if now.saturating_sub(s.reported.last_seen) > timeout {
                out.removed.push(Removed {
                    key: *key,
                    torrent_id: s.torrent_id,
                });
                out.idle += 1;
                return false;
            }
            if s.due() {
                s.dirty = false;
                s.written_last_seen = s.reported.last_seen;
                out.sessions.push((*key, *s));
            }
            true
        });
        let live = self.sessions.len();
        shrink(&mut self.sessions, live);
        // The drained map keeps room for as many records as this interval had.
        shrink(&mut self.pending, records);
    }

    /// Puts back what a failed flush took: pending totals merged, baselines marked dirty again
    /// (their current value is written next time), deletions queued again unless the session
    /// has come back since. Returns the number of pending records created.
    pub(crate) fn merge_back(&mut self, taken: Taken) -> usize {
        let mut created = 0;
        for (k, p) in taken.pending {
            match self.pending.entry(k) {
                Entry::Occupied(mut e) => e.get_mut().merge(&p),
                Entry::Vacant(e) => {
                    e.insert(p);
                    created += 1;
                }
            }
        }
        for (k, _) in taken.sessions {
            if let Some(s) = self.sessions.get_mut(&k) {
                s.dirty = true;
            }
        }
        for r in taken.removed {
            if !self.sessions.contains_key(&r.key) {
                self.removed.push(r);
            }
        }
        created
    }

    /// Drops the sessions `evict` selects, queues their rows for deletion and appends them to
    /// `out`.
    pub(crate) fn evict(
        &mut self,
        mut evict: impl FnMut(&SessionKey, &Session) -> bool,
        out: &mut Vec<(SessionKey, Session)>,
    ) {
        let removed = &mut self.removed;
        self.sessions.retain(|key, s| {
            if !evict(key, s) {
                return true;
            }
            removed.push(Removed {
                key: *key,
                torrent_id: s.torrent_id,
            });
            out.push((*key, *s));
            false
        });
    }
}

/// Gives memory back after a spike: shrinks a map whose capacity is over four times `used`.
fn shrink<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V, RandomState>, used: usize) {
    if map.capacity() > 64 && used.saturating_mul(4) < map.capacity() {
        map.shrink_to(used * 2);
    }
}

/// A shard on its own cache line(s).
#[repr(align(64))]
#[derive(Debug, Default)]
struct Padded(Mutex<Shard>);

/// Every shard.
#[derive(Debug)]
pub(crate) struct Sessions {
    shards: Box<[Padded]>,
    hasher: RandomState,
}

impl Sessions {
    /// Empty shards.
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Padded::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    /// The shard holding the sessions and pending totals of `user_id` on `info_hash`.
    pub(crate) fn shard(&self, info_hash: &InfoHash, user_id: i64) -> &Mutex<Shard> {
        // Truncation is intended: the low bits pick the shard.
        let i = self.hasher.hash_one((info_hash, user_id)) as usize & (SHARDS - 1);
        &self.shards[i].0
    }

    /// Every shard, in a fixed order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Mutex<Shard>> {
        self.shards.iter().map(|p| &p.0)
    }

    /// Number of shards.
    pub(crate) fn len(&self) -> usize {
        self.shards.len()
    }
}
