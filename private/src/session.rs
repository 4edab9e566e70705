//! Peer sessions and pending accounting as one torrent holds them, compactly.
//!
//! A session is one (user, peer id) on a torrent: its baseline (what it last reported, when,
//! with which key, from which address), 88 bytes, and the accounting its announces credited
//! since the last flush. The baseline lives in a [`SessionSlot`] of two cache lines, found in
//! its shard's session table by a keyed hash of the info hash and the peer id, which the UDP
//! tracker's prefetch pipeline computes from the datagram ahead of the request. The credited
//! accounting, which most sessions have none of at any moment (a client announces every half
//! hour or so, the flush runs every few seconds), lives in its shard's [`PendingLog`], which
//! every flush empties: the slot holds only its place there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use swarmd_proto::{InfoHash, PeerId};
use swarmd_swarm::access::Transfer;

use crate::credit::{Credit, Reported};
use crate::model::Totals;
use crate::table::{slot_accessors, State};
use crate::torrent::PendingRow;

/// How stale a stored `last_seen` (and a record's `last_announce`) may grow before an announce
/// that changed nothing else is written anyway. Announces that only prove a peer is alive are
/// most of a private tracker's traffic (idle seeders); writing each would make the flush cost
/// one database row per announce. The price: after a crash, a seeder's first announce may
/// credit up to this much seeding time twice.
pub(crate) const LAST_SEEN_STEP: i64 = 300;

/// A peer's address in 19 bytes (a `SocketAddr` takes 32): the IP's 16 bytes (an IPv4
/// address in the first 4), the port, the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Addr {
    ip: [u8; 16],
    port: [u8; 2],
    v6: bool,
}

impl Addr {
    /// `ip:port`.
    #[inline]
    pub(crate) fn new(ip: IpAddr, port: u16) -> Self {
        let mut bytes = [0; 16];
        let v6 = match ip {
            IpAddr::V4(v4) => {
                bytes[..4].copy_from_slice(&v4.octets());
                false
            }
            IpAddr::V6(v6) => {
                bytes = v6.octets();
                true
            }
        };
        Self {
            ip: bytes,
            port: port.to_ne_bytes(),
            v6,
        }
    }

    /// As a socket address.
    pub(crate) fn socket(&self) -> SocketAddr {
        let ip = if self.v6 {
            IpAddr::V6(Ipv6Addr::from(self.ip))
        } else {
            IpAddr::V4(Ipv4Addr::new(
                self.ip[0], self.ip[1], self.ip[2], self.ip[3],
            ))
        };
        SocketAddr::new(ip, u16::from_ne_bytes(self.port))
    }
}

/// A clock reading (u32 seconds, as the server clock gives them) from a stored `i64` time.
pub(crate) fn secs(t: i64) -> u32 {
    u32::try_from(t.max(0)).unwrap_or(u32::MAX)
}

/// One peer session's baseline. The torrent is implied by where it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Session {
    pub(crate) user_id: i64,
    pub(crate) key_id: i64,
    pub(crate) uploaded: u64,
    pub(crate) downloaded: u64,
    pub(crate) left: u64,
    /// When it last announced.
    pub(crate) last_seen: u32,
    /// The `last_seen` the database holds for this session.
    pub(crate) written_last_seen: u32,
    pub(crate) peer_id: PeerId,
    pub(crate) addr: Addr,
    /// Changed (beyond `last_seen`) since the last flush wrote it.
    pub(crate) dirty: bool,
}

impl Session {
    /// A session first seen now (or loaded from the database, `dirty` false).
    pub(crate) fn new(
        user_id: i64,
        peer_id: PeerId,
        key_id: i64,
        addr: Addr,
        t: &Transfer,
        now: u32,
    ) -> Self {
        Self {
            user_id,
            key_id,
            uploaded: t.uploaded,
            downloaded: t.downloaded,
            left: t.left,
            last_seen: now,
            written_last_seen: now,
            peer_id,
            addr,
            dirty: true,
        }
    }

    /// What the credit rules compare against.
    #[inline]
    pub(crate) fn reported(&self) -> Reported {
        Reported {
            uploaded: self.uploaded,
            downloaded: self.downloaded,
            left: self.left,
            last_seen: i64::from(self.last_seen),
        }
    }

    /// True if the next flush must write this baseline.
    #[inline]
    pub(crate) fn due(&self) -> bool {
        self.dirty
            || i64::from(self.last_seen) - i64::from(self.written_last_seen) >= LAST_SEEN_STEP
    }

    /// Takes the new report of an announce as the baseline; marks the session dirty if anything
    /// but the time changed.
    #[inline]
    pub(crate) fn update(&mut self, a: &Accounted) {
        let t = &a.transfer;
        self.dirty |= (self.uploaded, self.downloaded, self.left)
            != (t.uploaded, t.downloaded, t.left)
            || (self.key_id, self.addr) != (a.key_id, a.addr);
        self.uploaded = t.uploaded;
        self.downloaded = t.downloaded;
        self.left = t.left;
        self.key_id = a.key_id;
        self.addr = a.addr;
        self.last_seen = a.now;
    }
}

/// Accounting waiting for a flush: one session's, or what is left of ended sessions'.
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
    pub(crate) info_hash: InfoHash,
    pub(crate) torrent_id: i64,
    pub(crate) user_id: i64,
    pub(crate) peer_id: PeerId,
}

/// One announce to account, after the policy allowed it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Accounted {
    pub(crate) user_id: i64,
    pub(crate) key_id: i64,
    pub(crate) peer_id: PeerId,
    pub(crate) addr: Addr,
    pub(crate) transfer: Transfer,
    pub(crate) now: u32,
}

/// Where a slot's pending accounting is in its shard's [`PendingLog`]: none.
const NO_PENDING: u32 = u32::MAX;

/// A peer session in its shard's session table: the key (info hash, user, peer id: the user
/// and the peer id are in the session), the baseline, the place of the accounting waiting for
/// the flush, and the torrent's row id for the rows the flush writes. Two cache lines, both
/// read by every announce of the session.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct SessionSlot {
    pub(crate) hash: InfoHash,
    state: State,
    /// The session's hash bits (see [`session_bits`]).
    bits: u32,
    /// Its pending accounting's place in the shard's [`PendingLog`], or [`NO_PENDING`].
    pending: u32,
    pub(crate) session: Session,
    /// The torrent's database id (its slot's, kept in step when it changes).
    pub(crate) torrent_id: i64,
}

/// A session's hash bits in its table, from the keyed hash of its info hash and peer id: 32 of
/// them, which address every table a shard can hold and keep the slot in two lines.
#[inline]
pub(crate) fn session_bits(hash: u64) -> u32 {
    // Truncation is intended: the low bits pick the slot.
    hash as u32
}

slot_accessors!(
    SessionSlot,
    Self {
        hash: InfoHash([0; 20]),
        state: State::Empty,
        bits: 0,
        pending: NO_PENDING,
        session: Session::new(
            0,
            PeerId([0; 20]),
            0,
            Addr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            &Transfer {
                uploaded: 0,
                downloaded: 0,
                left: 0,
                event: swarmd_proto::Event::None,
                port: 0,
            },
            0,
        ),
        torrent_id: 0,
    }
);

impl SessionSlot {
    /// `session` of the torrent `hash` (row id `torrent_id`), under hash bits `bits`.
    pub(crate) fn new(hash: InfoHash, bits: u32, torrent_id: i64, session: Session) -> Self {
        Self {
            hash,
            state: State::Empty,
            bits,
            pending: NO_PENDING,
            session,
            torrent_id,
        }
    }

    /// Whether this is the session (`hash`, `user_id`, `peer_id`).
    #[inline]
    pub(crate) fn is(&self, hash: &InfoHash, user_id: i64, peer_id: &PeerId) -> bool {
        self.session.peer_id == *peer_id && self.session.user_id == user_id && self.hash == *hash
    }

    /// Where this session's pending accounting is in its shard's log, if it has any.
    #[cfg(test)]
    pub(crate) fn pending_place(&self) -> Option<u32> {
        (self.pending != NO_PENDING).then_some(self.pending)
    }

    /// The row of `pending` for this session, keyed as the flush writes it.
    fn row(&self, pending: Pending) -> PendingRow {
        PendingRow {
            info_hash: self.hash,
            torrent_id: self.torrent_id,
            user_id: self.session.user_id,
            pending,
        }
    }

    /// The row deleting this session's baseline.
    pub(crate) fn removed(&self) -> Removed {
        Removed {
            info_hash: self.hash,
            torrent_id: self.torrent_id,
            user_id: self.session.user_id,
            peer_id: self.session.peer_id,
        }
    }
}

/// A shard's pending accounting of live sessions, one record per session with any, in the
/// order they were first credited since the last flush, which takes them all and empties the
/// log. A record of a session that ended before the flush moved to the shard's orphans and
/// stays here unread until then.
#[derive(Debug, Default)]
pub(crate) struct PendingLog {
    records: Vec<Pending>,
}

impl PendingLog {
    /// Adds `p` to `slot`'s pending accounting; true if it had none. A log as long as its
    /// places can count (never, in practice: that many records between two flushes would be
    /// hundreds of gigabytes) sends the record to `overflow` instead.
    #[inline]
    pub(crate) fn add(
        &mut self,
        slot: &mut SessionSlot,
        p: &Pending,
        overflow: &mut Vec<PendingRow>,
    ) -> bool {
        if let Some(mine) = self.records.get_mut(slot.pending as usize) {
            mine.merge(p);
            return false;
        }
        match u32::try_from(self.records.len()) {
            Ok(at) if at != NO_PENDING => {
                self.records.push(*p);
                slot.pending = at;
            }
            _ => overflow.push(slot.row(*p)),
        }
        true
    }

    /// The row of `slot`'s pending accounting, if any, taken out.
    pub(crate) fn take(&mut self, slot: &mut SessionSlot) -> Option<PendingRow> {
        let at = std::mem::replace(&mut slot.pending, NO_PENDING);
        let p = self.records.get_mut(at as usize)?;
        Some(slot.row(std::mem::take(p)))
    }

    /// Number of records, read or not.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Forgets every record, once the flush took those of every live session. Keeps room for
    /// as many as this interval held, giving back what earlier busier ones grew it to.
    pub(crate) fn clear(&mut self) {
        let used = self.records.len();
        self.records.clear();
        if self.records.capacity() > 4 * used.max(64) {
            self.records.shrink_to(2 * used);
        }
    }
}

/// What accounting one announce changed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Outcome {
    pub(crate) credit: Credit,
    /// +1 a session was created, -1 one was dropped (stopped).
    pub(crate) sessions_delta: i64,
    /// A new pending record was created (a session's first since the flush, or the record
    /// of one that ended without any).
    pub(crate) new_record: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_compactly() {
        assert_eq!(std::mem::size_of::<Addr>(), 19);
        assert_eq!(std::mem::size_of::<Session>(), 88);
        assert_eq!(std::mem::size_of::<SessionSlot>(), 128);
        for a in [
            "10.1.2.3:6881",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "[::1]:80",
            "[::ffff:10.0.0.1]:1",
            "[2001:db8::7]:51413",
        ] {
            let s: SocketAddr = a.parse().unwrap();
            assert_eq!(Addr::new(s.ip(), s.port()).socket(), s, "{a}");
        }
        assert_ne!(
            Addr::new("::ffff:10.0.0.1".parse().unwrap(), 1),
            Addr::new("10.0.0.1".parse().unwrap(), 1)
        );
    }

    #[test]
    fn the_pending_log_merges_takes_and_empties() {
        use crate::table::Slot as _;
        let mut log = PendingLog::default();
        let mut overflow = Vec::new();
        let (mut a, mut b) = (SessionSlot::vacant(), SessionSlot::vacant());
        a.session.user_id = 1;
        b.session.user_id = 2;
        let p = |up, at| Pending {
            totals: Totals {
                uploaded: up,
                ..Totals::default()
            },
            last_announce: at,
        };
        assert!(log.add(&mut a, &p(5, 10), &mut overflow));
        assert!(log.add(&mut b, &p(7, 11), &mut overflow));
        assert!(
            !log.add(&mut a, &p(3, 12), &mut overflow),
            "merged into a's record"
        );
        assert_eq!(
            (a.pending_place(), b.pending_place(), log.len()),
            (Some(0), Some(1), 2)
        );
        let row = log.take(&mut a).expect("a's record");
        assert_eq!((row.user_id, row.pending), (1, p(8, 12)));
        assert_eq!((a.pending_place(), log.take(&mut a)), (None, None));
        log.take(&mut b);
        log.clear();
        assert_eq!(log.len(), 0);
        assert!(
            log.add(&mut a, &p(1, 13), &mut overflow),
            "a new record after the flush"
        );
        assert_eq!(a.pending_place(), Some(0));
        assert!(overflow.is_empty());
        // A busy interval's room is given back after a quiet one.
        for _ in 0..10_000 {
            log.add(&mut SessionSlot::vacant(), &p(1, 1), &mut overflow);
        }
        log.clear();
        log.clear();
        assert!(log.records.capacity() <= 256, "{}", log.records.capacity());
    }

    #[test]
    fn stored_times_clamp_to_the_clock_range() {
        assert_eq!(secs(-5), 0);
        assert_eq!(secs(1_000), 1_000);
        assert_eq!(secs(i64::MAX), u32::MAX);
    }
}
