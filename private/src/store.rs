//! SQL for the administered records: users, passkeys, torrents and client rules. Plain
//! functions over a connection (or a transaction, which derefs to one); callers own the
//! transactions and keep the in-memory view in step.

use rand::Rng;
use rusqlite::{params, Connection, OptionalExtension, Row};
use swarmd_proto::InfoHash;

use crate::model::{ClientAction, ClientRule, KeyState, Passkey, Torrent, TorrentOptions, User};
use crate::view::KEY_LEN;

/// A fresh passkey: 32 characters of `[0-9a-z]` from the thread's CSPRNG.
pub(crate) fn generate_key() -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..KEY_LEN)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Clamps a count to SQLite's signed 64-bit integers.
pub(crate) fn to_sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Reads a count back (negative values, written by other tools, become 0).
pub(crate) fn from_sql_int(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

const USER_COLS: &str = "id, name, created_at, disabled";

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
        disabled: r.get(3)?,
    })
}

/// The user with this id.
pub(crate) fn user(conn: &Connection, id: i64) -> rusqlite::Result<Option<User>> {
    conn.prepare_cached(&format!("SELECT {USER_COLS} FROM users WHERE id = ?1"))?
        .query_row([id], user_from_row)
        .optional()
}

/// The id of the user with this name.
pub(crate) fn user_id_by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM users WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()
}

/// Every user, by id.
pub(crate) fn users(conn: &Connection) -> rusqlite::Result<Vec<User>> {
    conn.prepare_cached(&format!("SELECT {USER_COLS} FROM users ORDER BY id"))?
        .query_map([], user_from_row)?
        .collect()
}

/// Inserts a user (the caller checked the name is free).
pub(crate) fn insert_user(conn: &Connection, name: &str, now: i64) -> rusqlite::Result<User> {
    conn.prepare_cached("INSERT INTO users (name, created_at, disabled) VALUES (?1, ?2, 0)")?
        .execute(params![name, now])?;
    Ok(User {
        id: conn.last_insert_rowid(),
        name: name.to_owned(),
        created_at: now,
        disabled: false,
    })
}

/// Sets a user's disabled flag; `None` if there is no such user.
pub(crate) fn set_disabled(
    conn: &Connection,
    id: i64,
    disabled: bool,
) -> rusqlite::Result<Option<User>> {
    conn.prepare_cached("UPDATE users SET disabled = ?2 WHERE id = ?1")?
        .execute(params![id, disabled])?;
    user(conn, id)
}

const KEY_COLS: &str = "id, key, user_id, created_at, expires_at, revoked_at";

fn key_from_row(r: &Row<'_>, now: i64) -> rusqlite::Result<Passkey> {
    let expires_at = r.get(4)?;
    let revoked_at = r.get(5)?;
    Ok(Passkey {
        id: r.get(0)?,
        key: r.get(1)?,
        user_id: r.get(2)?,
        created_at: r.get(3)?,
        expires_at,
        revoked_at,
        state: KeyState::at(now, expires_at, revoked_at),
    })
}

/// Issues a new passkey to `user_id` (which must exist).
pub(crate) fn insert_key(
    conn: &Connection,
    user_id: i64,
    expires_at: Option<i64>,
    now: i64,
) -> rusqlite::Result<Passkey> {
    let key = generate_key();
    conn.prepare_cached(
        "INSERT INTO passkeys (key, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![key, user_id, now, expires_at])?;
    Ok(Passkey {
        id: conn.last_insert_rowid(),
        key,
        user_id,
        created_at: now,
        expires_at,
        revoked_at: None,
        state: KeyState::at(now, expires_at, None),
    })
}

/// The passkey with this value.
pub(crate) fn key_by_value(
    conn: &Connection,
    key: &str,
    now: i64,
) -> rusqlite::Result<Option<Passkey>> {
    conn.prepare_cached(&format!("SELECT {KEY_COLS} FROM passkeys WHERE key = ?1"))?
        .query_row([key], |r| key_from_row(r, now))
        .optional()
}

/// Every passkey of a user, by id.
pub(crate) fn keys_of_user(
    conn: &Connection,
    user_id: i64,
    now: i64,
) -> rusqlite::Result<Vec<Passkey>> {
    conn.prepare_cached(&format!(
        "SELECT {KEY_COLS} FROM passkeys WHERE user_id = ?1 ORDER BY id"
    ))?
    .query_map([user_id], |r| key_from_row(r, now))?
    .collect()
}

/// Marks a key revoked at `now` unless it already is.
pub(crate) fn revoke_key(conn: &Connection, key_id: i64, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE passkeys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![key_id, now])?;
    Ok(())
}

/// Deletes the stored sessions announced with a key.
pub(crate) fn delete_sessions_of_key(conn: &Connection, key_id: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM peer_sessions WHERE key_id = ?1")?
        .execute([key_id])
}

/// Deletes the stored sessions of a user.
pub(crate) fn delete_sessions_of_user(conn: &Connection, user_id: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM peer_sessions WHERE user_id = ?1")?
        .execute([user_id])
}

const TORRENT_COLS: &str =
    "id, info_hash, name, private, upload_multiplier, download_multiplier, added_at";

fn torrent_from_row(r: &Row<'_>) -> rusqlite::Result<(i64, Torrent)> {
    let hash: Vec<u8> = r.get(1)?;
    Ok((
        r.get(0)?,
        Torrent {
            info_hash: InfoHash::from_slice(&hash)
                .map(|h| h.to_string())
                .unwrap_or_default(),
            name: r.get(2)?,
            private: r.get(3)?,
            upload_multiplier: r.get(4)?,
            download_multiplier: r.get(5)?,
            added_at: r.get(6)?,
        },
    ))
}

/// The listed torrent with this hash, with its row id.
pub(crate) fn listed_torrent(
    conn: &Connection,
    info_hash: &InfoHash,
) -> rusqlite::Result<Option<(i64, Torrent)>> {
    conn.prepare_cached(&format!(
        "SELECT {TORRENT_COLS} FROM torrents WHERE info_hash = ?1 AND removed_at IS NULL"
    ))?
    .query_row([&info_hash.0[..]], torrent_from_row)
    .optional()
}

/// Every listed torrent, by id.
pub(crate) fn listed_torrents(conn: &Connection) -> rusqlite::Result<Vec<Torrent>> {
    conn.prepare_cached(&format!(
        "SELECT {TORRENT_COLS} FROM torrents WHERE removed_at IS NULL ORDER BY id"
    ))?
    .query_map([], |r| torrent_from_row(r).map(|(_, t)| t))?
    .collect()
}

/// Lists a torrent or updates its options; a removed one is revived with its id (and so its
/// history) and its original `added_at`.
pub(crate) fn upsert_torrent(
    conn: &Connection,
    info_hash: &InfoHash,
    opts: &TorrentOptions,
    now: i64,
) -> rusqlite::Result<(i64, Torrent)> {
    conn.prepare_cached(
        "INSERT INTO torrents
             (info_hash, name, private, upload_multiplier, download_multiplier, added_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (info_hash) DO UPDATE SET
             name = excluded.name,
             private = excluded.private,
             upload_multiplier = excluded.upload_multiplier,
             download_multiplier = excluded.download_multiplier,
             removed_at = NULL",
    )?
    .execute(params![
        &info_hash.0[..],
        opts.name,
        opts.private,
        opts.upload_multiplier,
        opts.download_multiplier,
        now
    ])?;
    listed_torrent(conn, info_hash)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

/// Soft-deletes a listed torrent; false if it was not listed.
pub(crate) fn remove_torrent(
    conn: &Connection,
    info_hash: &InfoHash,
    now: i64,
) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE torrents SET removed_at = ?2 WHERE info_hash = ?1 AND removed_at IS NULL",
        )?
        .execute(params![&info_hash.0[..], now])?;
    Ok(n > 0)
}

fn rule_from_row(r: &Row<'_>) -> rusqlite::Result<ClientRule> {
    let action: String = r.get(1)?;
    Ok(ClientRule {
        prefix: r.get(0)?,
        action: if action == "deny" {
            ClientAction::Deny
        } else {
            ClientAction::Allow
        },
        note: r.get(2)?,
    })
}

/// Every client rule, by prefix.
pub(crate) fn client_rules(conn: &Connection) -> rusqlite::Result<Vec<ClientRule>> {
    conn.prepare_cached("SELECT prefix, action, note FROM client_rules ORDER BY prefix")?
        .query_map([], rule_from_row)?
        .collect()
}

/// Inserts or replaces the rule for `rule.prefix` (keeping its creation time).
pub(crate) fn upsert_rule(conn: &Connection, rule: &ClientRule, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO client_rules (prefix, action, note, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (prefix) DO UPDATE SET action = excluded.action, note = excluded.note",
    )?
    .execute(params![rule.prefix, rule.action.as_str(), rule.note, now])?;
    Ok(())
}

/// Deletes the rule for `prefix`; false if there was none.
pub(crate) fn delete_rule(conn: &Connection, prefix: &str) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM client_rules WHERE prefix = ?1")?
        .execute([prefix])?;
    Ok(n > 0)
}
