//! Persisting accounting: what a flush writes in its one transaction, and reading the stored
//! peer-session baselines back at start.
//!
//! One transaction holds the transfer totals *and* the baselines they were computed against,
//! so the database is always consistent: after a crash, the next announce's delta against the
//! stored baseline re-counts exactly the bytes of the lost interval.

use std::net::IpAddr;

use rusqlite::{params, Connection};
use swarmd_proto::{InfoHash, PeerId};

use crate::session::{secs, Addr, Session};
use crate::store::{from_sql_int, to_sql_int};
use crate::torrent::Taken;

/// Writes what a flush took from every shard in one transaction: deletes the ended sessions
/// (stopped, idle, evicted), upserts the baselines due, and adds the pending totals, merged
/// into one record per (user, torrent) first (in `taken` too, so a failed write gives back
/// the merged records). Rows go in primary-key order, so each B-tree is walked once from left
/// to right rather than at random.
pub(crate) fn write(conn: &mut Connection, taken: &mut Taken) -> rusqlite::Result<()> {
    taken
        .removed
        .sort_unstable_by_key(|r| (r.torrent_id, r.user_id, r.peer_id.0));
    taken
        .sessions
        .sort_unstable_by_key(|r| (r.torrent_id, r.session.user_id, r.session.peer_id.0));
    taken
        .pending
        .sort_unstable_by_key(|r| (r.user_id, r.torrent_id));
    // One row per (user, torrent): records of a user's several sessions on a torrent, and of
    // sessions that ended, are added up first.
    taken.pending.dedup_by(|r, kept| {
        let same = (r.user_id, r.torrent_id) == (kept.user_id, kept.torrent_id);
        if same {
            kept.pending.merge(&r.pending);
        }
        same
    });
    let tx = conn.transaction()?;
    {
        let mut delete = tx.prepare_cached(
            "DELETE FROM peer_sessions WHERE torrent_id = ?1 AND user_id = ?2 AND peer_id = ?3",
        )?;
        for r in &taken.removed {
            delete.execute(params![r.torrent_id, r.user_id, &r.peer_id.0[..]])?;
        }
        let mut upsert = tx.prepare_cached(
            "INSERT INTO peer_sessions (torrent_id, user_id, peer_id, key_id, ip, port,
                                        uploaded, downloaded, left_bytes, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (torrent_id, user_id, peer_id) DO UPDATE SET
                 key_id = excluded.key_id, ip = excluded.ip, port = excluded.port,
                 uploaded = excluded.uploaded, downloaded = excluded.downloaded,
                 left_bytes = excluded.left_bytes, last_seen = excluded.last_seen",
        )?;
        for r in &taken.sessions {
            let s = &r.session;
            let addr = s.addr.socket();
            upsert.execute(params![
                r.torrent_id,
                s.user_id,
                &s.peer_id.0[..],
                s.key_id,
                addr.ip().to_string(),
                addr.port(),
                to_sql_int(s.uploaded),
                to_sql_int(s.downloaded),
                to_sql_int(s.left),
                s.last_seen,
            ])?;
        }
        let mut add = tx.prepare_cached(
            "INSERT INTO transfers (user_id, torrent_id, uploaded, downloaded, raw_uploaded,
                                    raw_downloaded, seed_secs, completed, last_announce)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (user_id, torrent_id) DO UPDATE SET
                 uploaded = uploaded + excluded.uploaded,
                 downloaded = downloaded + excluded.downloaded,
                 raw_uploaded = raw_uploaded + excluded.raw_uploaded,
                 raw_downloaded = raw_downloaded + excluded.raw_downloaded,
                 seed_secs = seed_secs + excluded.seed_secs,
                 completed = completed + excluded.completed,
                 last_announce = max(last_announce, excluded.last_announce)",
        )?;
        for r in &taken.pending {
            let p = &r.pending;
            let t = &p.totals;
            add.execute(params![
                r.user_id,
                r.torrent_id,
                to_sql_int(t.uploaded),
                to_sql_int(t.downloaded),
                to_sql_int(t.raw_uploaded),
                to_sql_int(t.raw_downloaded),
                to_sql_int(t.seed_secs),
                to_sql_int(t.completed),
                p.last_announce,
            ])?;
        }
    }
    tx.commit()
}

/// A stored peer session: the torrent's info hash and row id, and the baseline.
pub(crate) type Stored = (InfoHash, i64, Session);

/// Every stored peer session (clean: nothing to write back).
pub(crate) fn load_sessions(conn: &Connection) -> rusqlite::Result<Vec<Stored>> {
    let mut stmt = conn.prepare(
        "SELECT t.info_hash, s.user_id, s.peer_id, s.torrent_id, s.key_id, s.ip, s.port,
                s.uploaded, s.downloaded, s.left_bytes, s.last_seen
         FROM peer_sessions s JOIN torrents t ON t.id = s.torrent_id",
    )?;
    let rows = stmt.query_map([], |r| {
        let hash: Vec<u8> = r.get(0)?;
        let peer: Vec<u8> = r.get(2)?;
        let ip: String = r.get(5)?;
        Ok((
            InfoHash::from_slice(&hash),
            PeerId::from_slice(&peer),
            ip.parse::<IpAddr>().ok(),
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, u16>(6)?,
            [
                from_sql_int(r.get(7)?),
                from_sql_int(r.get(8)?),
                from_sql_int(r.get(9)?),
            ],
            secs(r.get(10)?),
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (hash, peer, ip, user_id, torrent_id, key_id, port, [up, down, left], seen) = row?;
        let (Some(info_hash), Some(peer_id), Some(ip)) = (hash, peer, ip) else {
            tracing::warn!(
                user_id,
                torrent_id,
                "ignoring a malformed stored peer session"
            );
            continue;
        };
        out.push((
            info_hash,
            torrent_id,
            Session {
                user_id,
                key_id,
                uploaded: up,
                downloaded: down,
                left,
                last_seen: seen,
                written_last_seen: seen,
                peer_id,
                addr: Addr::new(ip, port),
                dirty: false,
            },
        ));
    }
    Ok(out)
}
