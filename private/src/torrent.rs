//! One torrent's private-mode state: its allow-list entry, its peer sessions and its users'
//! pending accounting, side by side, so the request path finds all three with one lookup by
//! info hash (as the registry finds the torrent's swarm). Here are the accounting of one
//! announce, and what a flush takes out of and puts back into one torrent.

use rusqlite::Connection;
use swarmd_proto::{Event, InfoHash, PeerId};

use crate::credit::{credit, Limits, Multipliers};
use crate::model::{Mode, Totals};
use crate::session::{Accounted, Outcome, Pending, Removed, Session, UserPending};
use crate::small::SmallMap;

/// An allow-listed torrent as the database row says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TorrentEntry {
    pub(crate) id: i64,
    pub(crate) private: bool,
    pub(crate) upload_multiplier: f64,
    pub(crate) download_multiplier: f64,
}

impl TorrentEntry {
    /// Whether the torrent is private in `mode` (every listed torrent is, in `private` mode).
    pub(crate) fn private_in(&self, mode: Mode) -> bool {
        mode == Mode::Private || self.private
    }
}

/// Every listed (not removed) torrent in the database.
pub(crate) fn load_listed(conn: &Connection) -> rusqlite::Result<Vec<(InfoHash, TorrentEntry)>> {
    let mut stmt = conn.prepare(
        "SELECT id, info_hash, private, upload_multiplier, download_multiplier
         FROM torrents WHERE removed_at IS NULL",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, Vec<u8>>(1)?,
            TorrentEntry {
                id: r.get(0)?,
                private: r.get(2)?,
                upload_multiplier: r.get(3)?,
                download_multiplier: r.get(4)?,
            },
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (hash, entry) = row?;
        if let Some(h) = InfoHash::from_slice(&hash) {
            out.push((h, entry));
        }
    }
    Ok(out)
}

/// A pending record taken for the flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingRow {
    pub(crate) info_hash: InfoHash,
    pub(crate) torrent_id: i64,
    pub(crate) user_id: i64,
    pub(crate) pending: Pending,
}

/// A session baseline taken for the flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionRow {
    pub(crate) info_hash: InfoHash,
    pub(crate) torrent_id: i64,
    pub(crate) session: Session,
}

/// What a flush took out of memory.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    pub(crate) pending: Vec<PendingRow>,
    pub(crate) sessions: Vec<SessionRow>,
    pub(crate) removed: Vec<Removed>,
    /// Sessions forgotten for idleness (already gone from memory).
    pub(crate) idle: usize,
}

/// A torrent's state while it has sessions or pending accounting (see [`crate::torrents`]);
/// also kept for a removed torrent until its sessions end (announces to it are refused).
///
/// Laid out in this order (`repr(C)`) so that, after the 20-byte key of its slot (see
/// [`crate::torrents::Slot`]), what a keep-alive reads (the flags, then the first session)
/// comes first, in the slot's first two cache lines, and what it does not (ids, multipliers,
/// pending accounting) last.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct TorrentState {
    /// Allow-listed (and not removed).
    pub(crate) listed: bool,
    /// The torrent's own private flag (see [`TorrentState::private_in`]).
    pub(crate) private: bool,
    pub(crate) sessions: SmallMap<Session>,
    /// The torrent's database id (stable for an info hash: removal and revival keep it).
    pub(crate) id: i64,
    pub(crate) multipliers: Multipliers,
    pub(crate) pending: SmallMap<UserPending>,
}

impl TorrentState {
    /// The state of a torrent just listed.
    pub(crate) fn listed(e: &TorrentEntry) -> Self {
        let mut s = Self::unlisted(e.id);
        s.listed = true;
        s.private = e.private;
        s.multipliers = Multipliers {
            upload: e.upload_multiplier,
            download: e.download_multiplier,
        };
        s
    }

    /// The state of a torrent not listed (removed) that still has sessions.
    pub(crate) fn unlisted(id: i64) -> Self {
        Self {
            id,
            listed: false,
            private: false,
            multipliers: Multipliers {
                upload: 1.0,
                download: 1.0,
            },
            sessions: SmallMap::default(),
            pending: SmallMap::default(),
        }
    }

    /// The allow-list entry, if listed.
    pub(crate) fn entry(&self) -> Option<TorrentEntry> {
        self.listed.then_some(TorrentEntry {
            id: self.id,
            private: self.private,
            upload_multiplier: self.multipliers.upload,
            download_multiplier: self.multipliers.download,
        })
    }

    /// Listed and private in `mode`.
    pub(crate) fn private_in(&self, mode: Mode) -> bool {
        self.listed && (mode == Mode::Private || self.private)
    }

    /// Lists the torrent with `e`'s options. Should the row id of the hash have changed (the
    /// row was deleted and re-inserted by another tool), the sessions' rows under the old id
    /// are queued for deletion and rewritten under the new one.
    pub(crate) fn set_entry(
        &mut self,
        hash: &InfoHash,
        e: &TorrentEntry,
        removed: &mut Vec<Removed>,
    ) {
        if e.id != self.id {
            for s in self.sessions.iter_mut() {
                s.dirty = true;
                removed.push(Removed {
                    info_hash: *hash,
                    torrent_id: self.id,
                    user_id: s.user_id,
                    peer_id: s.peer_id,
                });
            }
        }
        self.listed = true;
        self.private = e.private;
        self.id = e.id;
        self.multipliers = Multipliers {
            upload: e.upload_multiplier,
            download: e.download_multiplier,
        };
    }

    /// Accounts one announce: credits it against the session's baseline, then stores the new
    /// baseline (or drops the session on `event=stopped`, queueing its row's deletion).
    #[inline]
    pub(crate) fn announce(
        &mut self,
        hash: &InfoHash,
        a: &Accounted,
        limits: Limits,
        removed: &mut Vec<Removed>,
    ) -> Outcome {
        let t = &a.transfer;
        let stopped = t.event == Event::Stopped;
        let now = i64::from(a.now);
        let mut out = Outcome::default();
        // Whether this announce leaves something the database must learn at the next flush.
        let mut write = stopped;
        match self.sessions.find_mut((a.user_id, a.peer_id)) {
            // A keep-alive of a leecher (same totals, no event that counts): nothing to credit
            // (no bytes, no seeding time, no completion), so the rules need not run.
            Some((_, s))
                if !stopped
                    && t.event != Event::Completed
                    && s.left != 0
                    && (s.uploaded, s.downloaded, s.left) == (t.uploaded, t.downloaded, t.left) =>
            {
                s.update(a);
                write = s.due();
            }
            Some((i, s)) => {
                out.credit = credit(Some(&s.reported()), t, now, self.multipliers, limits);
                if stopped {
                    self.sessions.swap_remove(i);
                    removed.push(Removed {
                        info_hash: *hash,
                        torrent_id: self.id,
                        user_id: a.user_id,
                        peer_id: a.peer_id,
                    });
                    out.sessions_delta = -1;
                } else {
                    s.update(a);
                    write |= s.due();
                }
            }
            None => {
                out.credit = credit(None, t, now, self.multipliers, limits);
                if !stopped {
                    self.sessions.push(Session::new(
                        a.user_id, a.peer_id, a.key_id, a.addr, t, a.now,
                    ));
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
            last_announce: now,
        };
        out.new_record = self.merge_pending(a.user_id, &add);
        out
    }

    /// Moves pending records and baselines due into `out`, and forgets sessions idle for more
    /// than `timeout` seconds at `now` (queueing their rows' deletion).
    pub(crate) fn take(&mut self, hash: &InfoHash, now: i64, timeout: i64, out: &mut Taken) {
        let id = self.id;
        out.pending.extend(self.pending.drain().map(|p| PendingRow {
            info_hash: *hash,
            torrent_id: id,
            user_id: p.user_id,
            pending: p.pending,
        }));
        if self.sessions.is_empty() {
            return;
        }
        self.sessions.retain(|s| {
            if now.saturating_sub(i64::from(s.last_seen)) > timeout {
                out.removed.push(Removed {
                    info_hash: *hash,
                    torrent_id: id,
                    user_id: s.user_id,
                    peer_id: s.peer_id,
                });
                out.idle += 1;
                return false;
            }
            if s.due() {
                s.dirty = false;
                s.written_last_seen = s.last_seen;
                out.sessions.push(SessionRow {
                    info_hash: *hash,
                    torrent_id: id,
                    session: *s,
                });
            }
            true
        });
    }

    /// Adds pending accounting for `user_id` (an announce's, or one a failed flush took). True
    /// if a record was created.
    #[inline]
    pub(crate) fn merge_pending(&mut self, user_id: i64, p: &Pending) -> bool {
        match self.pending.get_mut(user_id) {
            Some(mine) => {
                mine.pending.merge(p);
                false
            }
            None => {
                self.pending.push(UserPending {
                    user_id,
                    pending: *p,
                });
                true
            }
        }
    }

    /// The session of (`user_id`, `peer_id`), mutably.
    pub(crate) fn session_mut(&mut self, user_id: i64, peer_id: PeerId) -> Option<&mut Session> {
        self.sessions.get_mut((user_id, peer_id))
    }

    /// Drops the sessions `evict` selects, queueing their rows' deletion, and appends them to
    /// `out`. Returns the number dropped.
    pub(crate) fn evict(
        &mut self,
        hash: &InfoHash,
        evict: &mut impl FnMut(&Session) -> bool,
        removed: &mut Vec<Removed>,
        out: &mut Vec<(InfoHash, Session)>,
    ) -> usize {
        let before = out.len();
        let id = self.id;
        self.sessions.retain(|s| {
            if !evict(s) {
                return true;
            }
            removed.push(Removed {
                info_hash: *hash,
                torrent_id: id,
                user_id: s.user_id,
                peer_id: s.peer_id,
            });
            out.push((*hash, *s));
            false
        });
        out.len() - before
    }
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    use super::*;

    /// What a keep-alive reads comes first: the flags, then the first session.
    #[test]
    fn the_hot_fields_lead_the_state() {
        assert_eq!(offset_of!(TorrentState, listed), 0);
        assert_eq!(offset_of!(TorrentState, sessions), 8);
        assert!(
            // Two maps of an inline entry (88 and 64 bytes) and three vector headers each, the
            // flags, the id and the multipliers: five cache lines.
            size_of::<TorrentState>() <= 320,
            "{}",
            size_of::<TorrentState>()
        );
    }
}
