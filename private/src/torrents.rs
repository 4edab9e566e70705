//! Every torrent's and every peer session's private-mode state, sharded by a keyed hash of the
//! info hash exactly as the registry shards its swarms: 256 shards, each a mutex on its own
//! cache line. An announce locks one shard, briefly; announces for torrents in different shards
//! never contend.
//!
//! A shard keeps two open-addressing tables ([`Table`]):
//! * **torrents**: every listed torrent, and removed ones while they still have sessions, one
//!   cache line each ([`TorrentSlot`]), under bits of the info hash's keyed hash;
//! * **sessions**: every peer session of the shard's torrents, two lines each
//!   ([`SessionSlot`]), under a keyed hash of the info hash *and the peer id*; beside them the
//!   accounting credited since the last flush ([`PendingLog`]).
//!
//! Both slots' addresses follow from the request alone (the table's place, published beside
//! the lock, and the hash bits), so the UDP tracker's prefetch pipeline loads them ahead of
//! the request with no lookup of its own, and an announce then finds its torrent and its
//! session in lines already on their way. Sessions are keyed by (info hash, user, peer id),
//! not by the registry's peer address: a dual-stack client's IPv4 and IPv6 announces share one
//! baseline and are credited once.
//!
//! A session that ends (stopped, idle, evicted) leaves its pending accounting in the shard's
//! `orphans` for the next flush; a removed torrent is forgotten with its last session.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher as _};
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{Mutex, MutexGuard};
use swarmd_proto::{Event, InfoHash, PeerId};
use swarmd_swarm::prefetch::Published;
use swarmd_swarm::Prefetch;

use crate::credit::{credit, Limits};
use crate::hashing::InfoHashState;
use crate::model::{Mode, Totals};
use crate::session::{
    session_bits, Accounted, Outcome, Pending, PendingLog, Removed, Session, SessionSlot,
};
use crate::table::Table;
use crate::torrent::{PendingRow, SessionRow, Taken, TorrentEntry, TorrentSlot};

/// Number of shards (a power of two).
const SHARDS: usize = 256;

/// Where a request's torrent and session are found: hash bits in its shard's tables.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bits {
    /// The torrent's bits in the torrent table.
    pub(crate) torrent: u64,
    /// The session's bits (info hash and peer id) in the session table.
    pub(crate) session: u32,
}

/// The keyed hash of `info_hash` (its low bits choose the shard), and of it with `peer_id`.
#[inline]
fn hash(hasher: &InfoHashState, info_hash: &InfoHash, peer_id: &PeerId) -> (u64, u32) {
    // The bytes straight into the hasher: `hash_one` would go through the generic (and
    // out-of-line) `Hash` of arrays.
    let mut h = hasher.build_hasher();
    h.write(&info_hash.0);
    let torrent = h.finish();
    h.write(&peer_id.0);
    (torrent, session_bits(h.finish()))
}

/// The torrent-table bits of a hash (the bits above the shard's).
#[inline]
fn torrent_bits(hash: u64) -> u64 {
    hash >> SHARDS.trailing_zeros()
}

/// One shard's state. The tables come first, so their places are in the lock's cache line
/// (see [`ShardCell`]).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Shard {
    pub(crate) torrents: Table<TorrentSlot>,
    pub(crate) sessions: Table<SessionSlot>,
    /// The pending accounting of the sessions.
    pub(crate) pending: PendingLog,
    /// Pending accounting of sessions that ended since the last flush (and what a failed
    /// flush gave back).
    pub(crate) orphans: Vec<PendingRow>,
    /// Sessions dropped since the last flush, whose rows the flush deletes.
    pub(crate) removed: Vec<Removed>,
    /// The keys of [`Torrents::hasher`], to place what the shard is given.
    hasher: InfoHashState,
}

impl Shard {
    /// The hash bits of `info_hash` with `peer_id`.
    fn bits(&self, info_hash: &InfoHash, peer_id: &PeerId) -> Bits {
        let (t, s) = hash(&self.hasher, info_hash, peer_id);
        Bits {
            torrent: torrent_bits(t),
            session: s,
        }
    }

    /// The position of `info_hash` in the torrent table.
    #[inline]
    pub(crate) fn find_torrent(&self, bits: u64, info_hash: &InfoHash) -> Option<usize> {
        self.torrents.find(bits, |t| t.hash == *info_hash)
    }

    /// The torrent `info_hash`, if the shard knows it.
    pub(crate) fn torrent(&self, info_hash: &InfoHash) -> Option<&TorrentSlot> {
        let bits = self.bits(info_hash, &PeerId([0; 20])).torrent;
        self.torrents.get(self.find_torrent(bits, info_hash)?)
    }

    /// The position of the session (`info_hash`, `user_id`, `peer_id`).
    fn find_session(&self, info_hash: &InfoHash, user_id: i64, peer_id: &PeerId) -> Option<usize> {
        let bits = self.bits(info_hash, peer_id).session;
        self.sessions
            .find(u64::from(bits), |s| s.is(info_hash, user_id, peer_id))
    }

    /// The session (`info_hash`, `user_id`, `peer_id`), mutably.
    pub(crate) fn session_mut(
        &mut self,
        info_hash: &InfoHash,
        user_id: i64,
        peer_id: &PeerId,
    ) -> Option<&mut Session> {
        let at = self.find_session(info_hash, user_id, peer_id)?;
        self.sessions.get_mut(at).map(|s| &mut s.session)
    }

    /// Accounts one announce by the torrent at position `torrent` (listed: the caller admitted
    /// it) with its session under bits `session_bits`: credits it against the session's
    /// baseline, then stores the new baseline, or ends the session on `event=stopped`.
    /// Returns what changed and whether the session table moved (see [`Table::insert`]).
    #[inline]
    pub(crate) fn announce(
        &mut self,
        torrent: usize,
        info_hash: &InfoHash,
        session_bits: u32,
        a: &Accounted,
        limits: Limits,
    ) -> (Outcome, bool) {
        let mut out = Outcome::default();
        let Some(t) = self.torrents.get(torrent) else {
            return (out, false);
        };
        let (multipliers, torrent_id) = (t.multipliers, t.id);
        let tr = &a.transfer;
        let stopped = tr.event == Event::Stopped;
        let now = i64::from(a.now);
        // Whether this announce leaves something the database must learn at the next flush.
        let mut write = stopped;
        let mut moved = false;
        let found = self.sessions.find(u64::from(session_bits), |s| {
            s.is(info_hash, a.user_id, &a.peer_id)
        });
        let at = match found.and_then(|i| Some((i, self.sessions.get_mut(i)?))) {
            Some((i, slot)) => {
                let s = &mut slot.session;
                if !stopped
                    && tr.event != Event::Completed
                    && s.left != 0
                    && (s.uploaded, s.downloaded, s.left) == (tr.uploaded, tr.downloaded, tr.left)
                {
                    // A keep-alive of a leecher (same totals, no event that counts): nothing
                    // to credit (no bytes, no seeding time, no completion).
                    s.update(a);
                    write = s.due();
                } else {
                    out.credit = credit(Some(&s.reported()), tr, now, multipliers, limits);
                    if !stopped {
                        s.update(a);
                        write |= s.due();
                    }
                }
                Some(i)
            }
            None => {
                out.credit = credit(None, tr, now, multipliers, limits);
                if stopped {
                    None
                } else {
                    let session = Session::new(a.user_id, a.peer_id, a.key_id, a.addr, tr, a.now);
                    let slot = SessionSlot::new(*info_hash, session_bits, torrent_id, session);
                    let (i, m) = self.sessions.insert(slot);
                    moved = m;
                    if let Some(t) = self.torrents.get_mut(torrent) {
                        t.sessions += 1;
                    }
                    out.sessions_delta = 1;
                    write = true;
                    Some(i)
                }
            }
        };
        if write || out.credit.totals != Totals::default() {
            let add = Pending {
                totals: out.credit.totals,
                last_announce: now,
            };
            out.new_record = match at.and_then(|i| self.sessions.get_mut(i)) {
                Some(slot) => self.pending.add(slot, &add, &mut self.orphans),
                None => {
                    self.orphans.push(PendingRow {
                        info_hash: *info_hash,
                        torrent_id,
                        user_id: a.user_id,
                        pending: add,
                    });
                    true
                }
            };
        }
        if let (true, Some(i)) = (stopped, at) {
            self.end_session(i, Some(torrent));
            out.sessions_delta = -1;
        }
        (out, moved)
    }

    /// Ends the session at position `at`: its pending accounting goes to the orphans, its row's
    /// deletion is queued, and its torrent (at position `torrent`, if the caller knows it) is
    /// forgotten if it was its last session and it is not listed.
    fn end_session(&mut self, at: usize, torrent: Option<usize>) -> Option<Session> {
        let mut slot = self.sessions.remove(at)?;
        if let Some(row) = self.pending.take(&mut slot) {
            self.orphans.push(row);
        }
        self.removed.push(slot.removed());
        let torrent = torrent.or_else(|| {
            let bits = self.bits(&slot.hash, &PeerId([0; 20])).torrent;
            self.find_torrent(bits, &slot.hash)
        });
        release(&mut self.torrents, torrent);
        Some(slot.session)
    }

    /// Takes what the flush writes: the queued deletions, the orphaned and the sessions'
    /// pending accounting, and the baselines due; forgets sessions idle for more than `timeout`
    /// seconds at `now` (queueing their rows' deletion). Returns whether a table moved.
    pub(crate) fn take(&mut self, now: i64, timeout: u32, out: &mut Taken) -> bool {
        let timeout = i64::from(timeout);
        out.removed.append(&mut self.removed);
        out.pending.append(&mut self.orphans);
        let Shard {
            torrents,
            sessions,
            pending,
            hasher,
            ..
        } = self;
        let moved = sessions.retain(|slot| {
            if let Some(row) = pending.take(slot) {
                out.pending.push(row);
            }
            let s = &mut slot.session;
            if now.saturating_sub(i64::from(s.last_seen)) > timeout {
                out.removed.push(slot.removed());
                out.idle += 1;
                let bits = torrent_bits(hash(hasher, &slot.hash, &PeerId([0; 20])).0);
                let at = torrents.find(bits, |t| t.hash == slot.hash);
                release(torrents, at);
                return false;
            }
            if s.due() {
                s.dirty = false;
                s.written_last_seen = s.last_seen;
                out.sessions.push(SessionRow {
                    info_hash: slot.hash,
                    torrent_id: slot.torrent_id,
                    session: *s,
                });
            }
            true
        });
        // Every live session's record was taken above, and ended ones' went to the orphans.
        pending.clear();
        moved
    }

    /// Ends the sessions `evict` selects (their pending accounting stays for the flush, their
    /// rows' deletion is queued) and appends them to `out`. Returns how many, and whether the
    /// session table moved.
    pub(crate) fn evict(
        &mut self,
        evict: &mut impl FnMut(&Session) -> bool,
        out: &mut Vec<(InfoHash, Session)>,
    ) -> (usize, bool) {
        let Shard {
            torrents,
            sessions,
            pending,
            orphans,
            removed,
            hasher,
        } = self;
        let before = out.len();
        let moved = sessions.retain(|slot| {
            if !evict(&slot.session) {
                return true;
            }
            if let Some(row) = pending.take(slot) {
                orphans.push(row);
            }
            removed.push(slot.removed());
            out.push((slot.hash, slot.session));
            let bits = torrent_bits(hash(hasher, &slot.hash, &PeerId([0; 20])).0);
            let at = torrents.find(bits, |t| t.hash == slot.hash);
            release(torrents, at);
            false
        });
        (out.len() - before, moved)
    }

    /// Lists `info_hash` with `entry`'s options (or updates them). True if it was listed
    /// already; the second value says whether the torrent table moved.
    fn allow(&mut self, info_hash: &InfoHash, entry: &TorrentEntry) -> (bool, bool) {
        let bits = self.bits(info_hash, &PeerId([0; 20])).torrent;
        let Some(at) = self.find_torrent(bits, info_hash) else {
            let (_, moved) = self
                .torrents
                .insert(TorrentSlot::listed(*info_hash, bits, entry));
            return (false, moved);
        };
        let Some(t) = self.torrents.get_mut(at) else {
            return (false, false);
        };
        let (was, old_id) = (t.listed, t.id);
        t.set_options(entry);
        if old_id != entry.id {
            self.renumber(info_hash, old_id, entry.id);
        }
        (was, false)
    }

    /// The torrent `info_hash` has a new row id (its row was deleted and re-inserted by
    /// another tool): its sessions' rows under the old id are queued for deletion and
    /// rewritten under the new one, and its orphaned accounting goes to the new one.
    fn renumber(&mut self, info_hash: &InfoHash, old_id: i64, new_id: i64) {
        if self.torrent(info_hash).is_some_and(|t| t.sessions > 0) {
            for slot in self.sessions.iter_mut() {
                if slot.hash == *info_hash {
                    self.removed.push(Removed {
                        torrent_id: old_id,
                        ..slot.removed()
                    });
                    slot.torrent_id = new_id;
                    slot.session.dirty = true;
                }
            }
        }
        for row in &mut self.orphans {
            if row.info_hash == *info_hash {
                row.torrent_id = new_id;
            }
        }
    }

    /// Unlists `info_hash`: its sessions stay until they end, but announces to it are refused;
    /// without sessions it is forgotten at once. True if it was listed.
    fn unlist(&mut self, info_hash: &InfoHash) -> bool {
        let bits = self.bits(info_hash, &PeerId([0; 20])).torrent;
        let Some(at) = self.find_torrent(bits, info_hash) else {
            return false;
        };
        let Some(t) = self.torrents.get_mut(at) else {
            return false;
        };
        let was = std::mem::replace(&mut t.listed, false);
        if t.sessions == 0 {
            self.torrents.remove(at);
        }
        was
    }

    /// Adds a session loaded from the database to the torrent `info_hash` (row id
    /// `torrent_id`), keeping an unlisted entry for the torrent if it is not listed.
    fn insert_loaded(&mut self, info_hash: &InfoHash, torrent_id: i64, session: Session) {
        let bits = self.bits(info_hash, &session.peer_id);
        let at = match self.find_torrent(bits.torrent, info_hash) {
            Some(at) => at,
            None => {
                let t = TorrentSlot::unlisted(*info_hash, bits.torrent, torrent_id);
                self.torrents.insert(t).0
            }
        };
        let Some(t) = self.torrents.get_mut(at) else {
            return;
        };
        let id = t.id;
        let known = self
            .sessions
            .find(u64::from(bits.session), |s| {
                s.is(info_hash, session.user_id, &session.peer_id)
            })
            .is_some();
        if !known {
            t.sessions += 1;
            self.sessions
                .insert(SessionSlot::new(*info_hash, bits.session, id, session));
        }
    }
}

/// One session of the torrent at position `at` ended: forgets the torrent if that was its
/// last and it is not listed.
fn release(torrents: &mut Table<TorrentSlot>, at: Option<usize>) {
    let Some(at) = at else {
        return;
    };
    if let Some(t) = torrents.get_mut(at) {
        t.sessions = t.sessions.saturating_sub(1);
        if t.sessions == 0 && !t.listed {
            torrents.remove(at);
        }
    }
}

/// A shard on its own cache line(s), so neighbouring locks do not false-share, with the
/// addresses of its tables published beside the lock: the prefetch reads them, and the
/// announce then locks the shard and reads the torrent table's place, all in the first line.
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct ShardCell {
    /// The shard's torrent table, republished whenever it moves, and read without the lock by
    /// the prefetch, which only prefetches a slot.
    torrent_table: Published,
    /// The shard's session table, likewise.
    session_table: Published,
    shard: Mutex<Shard>,
}

impl ShardCell {
    /// Locks the shard.
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, Shard> {
        self.shard.lock()
    }

    /// Records where `shard`'s tables now are (call with the shard locked, `shard` its own).
    pub(crate) fn publish(&self, shard: &Shard) {
        self.torrent_table.publish(shard.torrents.span());
        self.session_table.publish(shard.sessions.span());
    }

    /// The tables as last published.
    #[cfg(test)]
    pub(crate) fn published(&self) -> [(usize, usize); 2] {
        [self.torrent_table.get(), self.session_table.get()]
    }
}

/// Every shard, and the count of listed torrents.
#[derive(Debug)]
pub(crate) struct Torrents {
    shards: Box<[ShardCell]>,
    /// Keyed hash choosing a torrent's shard (its low bits) and its place in the shard's tables
    /// (the others, and with the peer id).
    hasher: InfoHashState,
    /// Listed torrents; changed only with the view write-locked (admin operations).
    listed: AtomicUsize,
}

impl Torrents {
    /// Empty shards.
    pub(crate) fn new() -> Self {
        let hasher = InfoHashState::new();
        Self {
            shards: (0..SHARDS)
                .map(|_| ShardCell {
                    shard: Mutex::new(Shard {
                        torrents: Table::default(),
                        sessions: Table::default(),
                        pending: PendingLog::default(),
                        orphans: Vec::new(),
                        removed: Vec::new(),
                        hasher,
                    }),
                    torrent_table: Published::default(),
                    session_table: Published::default(),
                })
                .collect(),
            hasher,
            listed: AtomicUsize::new(0),
        }
    }

    /// The shard holding `info_hash`.
    #[inline]
    pub(crate) fn shard(&self, info_hash: &InfoHash) -> &ShardCell {
        self.locate(info_hash, &PeerId([0; 20])).1
    }

    /// The shard holding `info_hash`, and the bits its tables place the torrent and its
    /// session with `peer_id` under.
    #[inline]
    pub(crate) fn locate(&self, info_hash: &InfoHash, peer_id: &PeerId) -> (Bits, &ShardCell) {
        let (t, s) = hash(&self.hasher, info_hash, peer_id);
        // Truncation is intended: the low bits pick the shard.
        let i = t as usize & (SHARDS - 1);
        let bits = Bits {
            torrent: torrent_bits(t),
            session: s,
        };
        (bits, &self.shards[i])
    }

    /// Starts loading what an announce of `info_hash` by `peer_id` reads (see
    /// [`AccessPolicy::prefetch`](swarmd_swarm::access::AccessPolicy::prefetch)): at the first
    /// step the shard's lock, the torrent's slot and the session's (through the tables'
    /// addresses published beside the lock); nothing at the second, as no address depends on
    /// what the first loads.
    pub(crate) fn prefetch(&self, info_hash: &InfoHash, peer_id: Option<&PeerId>, step: Prefetch) {
        if step != Prefetch::Bucket {
            return;
        }
        let (bits, cell) = self.locate(info_hash, peer_id.unwrap_or(&PeerId([0; 20])));
        swarmd_swarm::prefetch::prefetch(std::ptr::from_ref(&cell.shard));
        cell.torrent_table.prefetch::<TorrentSlot>(bits.torrent);
        if peer_id.is_some() {
            cell.session_table
                .prefetch_lines::<SessionSlot>(u64::from(bits.session));
        }
    }

    /// Every shard, in a fixed order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &ShardCell> {
        self.shards.iter()
    }

    /// Number of listed torrents.
    pub(crate) fn listed(&self) -> usize {
        self.listed.load(Ordering::Relaxed)
    }

    /// Whether `info_hash` is listed and private in `mode`.
    pub(crate) fn is_private(&self, info_hash: &InfoHash, mode: Mode) -> bool {
        let shard = self.shard(info_hash).lock();
        shard.torrent(info_hash).is_some_and(|t| t.private_in(mode))
    }

    /// Lists `info_hash` with `entry`'s options (or updates them). Call with the view
    /// write-locked.
    pub(crate) fn allow(&self, info_hash: &InfoHash, entry: &TorrentEntry) {
        let cell = self.shard(info_hash);
        let mut shard = cell.lock();
        let (was_listed, moved) = shard.allow(info_hash, entry);
        if moved {
            cell.publish(&shard);
        }
        if !was_listed {
            self.listed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Unlists `info_hash`: its sessions stay until they end, but announces to it are
    /// refused. True if it was listed. Call with the view write-locked.
    pub(crate) fn unlist(&self, info_hash: &InfoHash) -> bool {
        let was_listed = self.shard(info_hash).lock().unlist(info_hash);
        if was_listed {
            self.listed.fetch_sub(1, Ordering::Relaxed);
        }
        was_listed
    }

    /// Makes the listed torrents exactly `fresh` (a reload): returns the hashes that were
    /// listed and are no longer, or that are now private in `mode` and were not. Call with the
    /// view write-locked.
    pub(crate) fn replace_listed(
        &self,
        fresh_rows: Vec<(InfoHash, TorrentEntry)>,
        mode: Mode,
    ) -> Vec<InfoHash> {
        let mut fresh: HashMap<InfoHash, TorrentEntry, InfoHashState> =
            HashMap::with_capacity_and_hasher(fresh_rows.len(), InfoHashState::new());
        fresh.extend(fresh_rows);
        self.listed.store(fresh.len(), Ordering::Relaxed);
        let mut purge = Vec::new();
        for cell in self.iter() {
            let mut shard = cell.lock();
            let mut renumbered = Vec::new();
            let moved = shard.torrents.retain(|t| {
                let was = t.private_in(mode);
                match fresh.remove(&t.hash) {
                    Some(e) => {
                        if e.id != t.id {
                            renumbered.push((t.hash, t.id, e.id));
                        }
                        t.set_options(&e);
                        if t.private_in(mode) && !was {
                            purge.push(t.hash);
                        }
                        true
                    }
                    None if t.listed => {
                        t.listed = false;
                        purge.push(t.hash);
                        t.sessions > 0
                    }
                    None => true,
                }
            });
            for (h, old, new) in renumbered {
                shard.renumber(&h, old, new);
            }
            if moved {
                cell.publish(&shard);
            }
        }
        for (h, e) in fresh {
            if e.private_in(mode) {
                purge.push(h);
            }
            let cell = self.shard(&h);
            let mut shard = cell.lock();
            if shard.allow(&h, &e).1 {
                cell.publish(&shard);
            }
        }
        purge
    }

    /// Adds a session loaded from the database to the torrent with row id `torrent_id`,
    /// keeping an unlisted entry for it if the torrent is not listed.
    pub(crate) fn insert_loaded(&self, info_hash: &InfoHash, torrent_id: i64, session: Session) {
        let cell = self.shard(info_hash);
        let mut shard = cell.lock();
        shard.insert_loaded(info_hash, torrent_id, session);
        cell.publish(&shard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an announce reads of its torrent and its session comes in whole lines: the
    /// slots are line-aligned, a torrent's one line, a session's two.
    #[test]
    fn slots_are_line_aligned() {
        assert_eq!(align_of::<SessionSlot>(), 64);
        assert_eq!(align_of::<TorrentSlot>(), 64);
        assert_eq!(size_of::<SessionSlot>(), 128);
        assert_eq!(size_of::<TorrentSlot>(), 64);
    }

    /// The prefetch's reads (the published places) and the announce's first ones (the lock,
    /// the torrent table's place) share one cache line.
    #[test]
    fn a_shard_cell_starts_with_what_every_request_reads() {
        let torrents = Torrents::new();
        for cell in torrents.iter() {
            let line = |p: usize| p / 64;
            let start = std::ptr::from_ref(cell).addr();
            let shard = cell.lock();
            let table = std::ptr::from_ref(&shard.torrents).addr();
            assert_eq!(start % 64, 0);
            assert_eq!(line(table), line(start), "the torrent table's place");
            assert!(std::ptr::from_ref(&cell.session_table).addr() < start + 64);
        }
    }
}
