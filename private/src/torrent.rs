//! One torrent as private mode keeps it: its allow-list entry as the database holds it
//! ([`TorrentEntry`]) and as a shard's torrent table holds it ([`TorrentSlot`], one cache
//! line), and the rows a flush takes out of memory.

use rusqlite::Connection;
use swarmd_proto::InfoHash;

use crate::credit::Multipliers;
use crate::model::Mode;
use crate::session::{Pending, Removed, Session};
use crate::table::{slot_accessors, State};

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

/// A torrent a shard knows: every listed torrent, and unlisted (removed) ones while they still
/// have sessions. One cache line, found by its hash bits in the shard's torrent table
/// ([`Table`](crate::table::Table)): what an announce needs of its torrent (the flags; the
/// multipliers and the id when it credits something) is in the one line a prefetch loads.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct TorrentSlot {
    pub(crate) hash: InfoHash,
    state: State,
    /// Allow-listed (and not removed).
    pub(crate) listed: bool,
    /// The torrent's own private flag (see [`TorrentSlot::private_in`]).
    pub(crate) private: bool,
    /// Sessions of this torrent in the shard's session table.
    pub(crate) sessions: u32,
    bits: u64,
    /// The torrent's database id (stable for an info hash: removal and revival keep it).
    pub(crate) id: i64,
    pub(crate) multipliers: Multipliers,
}

slot_accessors!(TorrentSlot, Self::unlisted(InfoHash([0; 20]), 0, 0));

impl TorrentSlot {
    /// A torrent just listed with `e`'s options, under hash bits `bits`.
    pub(crate) fn listed(hash: InfoHash, bits: u64, e: &TorrentEntry) -> Self {
        let mut s = Self::unlisted(hash, bits, e.id);
        s.set_options(e);
        s
    }

    /// A torrent not listed (removed) that has sessions.
    pub(crate) fn unlisted(hash: InfoHash, bits: u64, id: i64) -> Self {
        Self {
            hash,
            state: State::Empty,
            listed: false,
            private: false,
            sessions: 0,
            bits,
            id,
            multipliers: Multipliers {
                upload: 1.0,
                download: 1.0,
            },
        }
    }

    /// Lists the torrent with `e`'s options (the caller deals with a changed id).
    pub(crate) fn set_options(&mut self, e: &TorrentEntry) {
        self.listed = true;
        self.private = e.private;
        self.id = e.id;
        self.multipliers = Multipliers {
            upload: e.upload_multiplier,
            download: e.download_multiplier,
        };
    }

    /// Listed and private in `mode`.
    pub(crate) fn private_in(&self, mode: Mode) -> bool {
        self.listed && (mode == Mode::Private || self.private)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A torrent is one cache line.
    #[test]
    fn a_torrent_is_one_line() {
        assert_eq!(size_of::<TorrentSlot>(), 64);
        assert_eq!(align_of::<TorrentSlot>(), 64);
    }
}
