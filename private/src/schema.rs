//! The database: opening it with the right pragmas, and the versioned schema migrations.
//!
//! Migrations are an ordered list of SQL scripts; `PRAGMA user_version` holds how many have been
//! applied. Each missing one runs in its own transaction (the version bump included), so a crash
//! mid-upgrade leaves the database at a consistent earlier version. A database newer than the
//! code is refused ([`PrivateError::SchemaTooNew`]) and left untouched.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::error::PrivateError;

/// How long a statement waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The migrations, in order: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[V1];

/// The schema version this code writes.
pub(crate) const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Version 1: users, passkeys, torrents (soft-deleted), per-user transfers, peer-session
/// baselines and client rules.
const V1: &str = "
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
) STRICT;

CREATE TABLE passkeys (
    id          INTEGER PRIMARY KEY,
    key         TEXT    NOT NULL UNIQUE,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
) STRICT;
CREATE INDEX passkeys_by_user ON passkeys(user_id);

CREATE TABLE torrents (
    id                  INTEGER PRIMARY KEY,
    info_hash           BLOB    NOT NULL UNIQUE CHECK (length(info_hash) = 20),
    name                TEXT,
    private             INTEGER NOT NULL DEFAULT 0 CHECK (private IN (0, 1)),
    upload_multiplier   REAL    NOT NULL DEFAULT 1.0,
    download_multiplier REAL    NOT NULL DEFAULT 1.0,
    added_at            INTEGER NOT NULL,
    removed_at          INTEGER
) STRICT;

CREATE TABLE transfers (
    user_id         INTEGER NOT NULL REFERENCES users(id),
    torrent_id      INTEGER NOT NULL REFERENCES torrents(id),
    uploaded        INTEGER NOT NULL DEFAULT 0,
    downloaded      INTEGER NOT NULL DEFAULT 0,
    raw_uploaded    INTEGER NOT NULL DEFAULT 0,
    raw_downloaded  INTEGER NOT NULL DEFAULT 0,
    seed_secs       INTEGER NOT NULL DEFAULT 0,
    completed       INTEGER NOT NULL DEFAULT 0,
    last_announce   INTEGER NOT NULL,
    PRIMARY KEY (user_id, torrent_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX transfers_by_torrent ON transfers(torrent_id);

-- Peer sessions are the baselines of the accounting: rewritten at every flush for the peers
-- that announced, so they carry no foreign keys and no secondary indexes (each would be one
-- more B-tree write per row). Rows are deleted by primary key as sessions end in memory; the
-- rare admin deletes by user or key scan the table.
CREATE TABLE peer_sessions (
    torrent_id  INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    peer_id     BLOB    NOT NULL CHECK (length(peer_id) = 20),
    key_id      INTEGER NOT NULL,
    ip          TEXT    NOT NULL,
    port        INTEGER NOT NULL,
    uploaded    INTEGER NOT NULL,
    downloaded  INTEGER NOT NULL,
    left_bytes  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    PRIMARY KEY (torrent_id, user_id, peer_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE client_rules (
    prefix      TEXT    PRIMARY KEY,
    action      TEXT    NOT NULL CHECK (action IN ('allow', 'deny')),
    note        TEXT,
    created_at  INTEGER NOT NULL
) STRICT;
";

/// Opens (creating if needed) the database at `path` and sets WAL journaling, `NORMAL`
/// synchronous mode, foreign keys and a 5 s busy timeout.
pub(crate) fn open(path: &Path) -> Result<Connection, PrivateError> {
    let open_err = |source| PrivateError::Open {
        path: path.display().to_string(),
        source,
    };
    let conn = Connection::open(path).map_err(open_err)?;
    configure(&conn).map_err(open_err)?;
    Ok(conn)
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Answers the mode in force ("memory" for an in-memory database); reading it also makes
    // SQLite check that the file is a database at all.
    let _mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // A flush touches pages all over the session and transfer tables: keep them cached
    // (32 MiB) and read through a memory map rather than a pread per page.
    conn.pragma_update(None, "cache_size", -32_768)?;
    conn.pragma_update(None, "mmap_size", 256i64 << 20)?;
    Ok(())
}

/// The schema version of the database (`PRAGMA user_version`).
pub(crate) fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Brings the schema to [`CURRENT_VERSION`], one transaction per migration. Returns the number
/// of migrations applied (0 when up to date).
pub(crate) fn migrate(conn: &mut Connection) -> Result<usize, PrivateError> {
    let found = version(conn)?;
    if found > CURRENT_VERSION {
        return Err(PrivateError::SchemaTooNew {
            found,
            supported: CURRENT_VERSION,
        });
    }
    let start = usize::try_from(found).unwrap_or(0);
    for (i, script) in MIGRATIONS.iter().enumerate().skip(start) {
        let tx = conn.transaction()?;
        tx.execute_batch(script)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "database schema migrated");
    }
    Ok(MIGRATIONS.len().saturating_sub(start))
}
