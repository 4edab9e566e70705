//! Read-only reports for the admin API: a user's keys and transfers, a torrent's transfers.

use rusqlite::{Connection, Row};
use swarmd_proto::InfoHash;

use crate::model::{TorrentDetail, Totals, TransferRecord, UserDetail, UserTransfer};
use crate::store::{self, from_sql_int};

const TOTALS_COLS: &str = "x.uploaded, x.downloaded, x.raw_uploaded, x.raw_downloaded, \
                           x.seed_secs, x.completed, x.last_announce";

/// Reads [`TOTALS_COLS`] starting at column `at`: the totals and the last announce.
fn totals_at(r: &Row<'_>, at: usize) -> rusqlite::Result<(Totals, i64)> {
    let n = |i: usize| r.get::<_, i64>(at + i).map(from_sql_int);
    Ok((
        Totals {
            uploaded: n(0)?,
            downloaded: n(1)?,
            raw_uploaded: n(2)?,
            raw_downloaded: n(3)?,
            seed_secs: n(4)?,
            completed: n(5)?,
        },
        r.get(at + 6)?,
    ))
}

/// A user with keys and per-torrent transfers; `None` if there is no such user.
pub(crate) fn user_detail(
    conn: &Connection,
    id: i64,
    now: i64,
) -> rusqlite::Result<Option<UserDetail>> {
    let Some(user) = store::user(conn, id)? else {
        return Ok(None);
    };
    let passkeys = store::keys_of_user(conn, id, now)?;
    let torrents: Vec<TransferRecord> = conn
        .prepare_cached(&format!(
            "SELECT t.info_hash, t.name, {TOTALS_COLS}
             FROM transfers x JOIN torrents t ON t.id = x.torrent_id
             WHERE x.user_id = ?1 ORDER BY x.torrent_id"
        ))?
        .query_map([id], |r| {
            let hash: Vec<u8> = r.get(0)?;
            let (totals, last_announce) = totals_at(r, 2)?;
            Ok(TransferRecord {
                info_hash: InfoHash::from_slice(&hash)
                    .map(|h| h.to_string())
                    .unwrap_or_default(),
                name: r.get(1)?,
                totals,
                last_announce,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut totals = Totals::default();
    for t in &torrents {
        totals.add(&t.totals);
    }
    Ok(Some(UserDetail {
        user,
        passkeys,
        totals,
        torrents,
    }))
}

/// A listed torrent with per-user transfers; `None` if it is not listed.
pub(crate) fn torrent_detail(
    conn: &Connection,
    info_hash: &InfoHash,
) -> rusqlite::Result<Option<TorrentDetail>> {
    let Some((id, torrent)) = store::listed_torrent(conn, info_hash)? else {
        return Ok(None);
    };
    let users: Vec<UserTransfer> = conn
        .prepare_cached(&format!(
            "SELECT x.user_id, u.name, {TOTALS_COLS}
             FROM transfers x JOIN users u ON u.id = x.user_id
             WHERE x.torrent_id = ?1 ORDER BY x.user_id"
        ))?
        .query_map([id], |r| {
            let (totals, last_announce) = totals_at(r, 2)?;
            Ok(UserTransfer {
                user_id: r.get(0)?,
                name: r.get(1)?,
                totals,
                last_announce,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut totals = Totals::default();
    for u in &users {
        totals.add(&u.totals);
    }
    Ok(Some(TorrentDetail {
        torrent,
        totals,
        users,
    }))
}
