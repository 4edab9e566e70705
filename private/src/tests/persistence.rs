//! The database: migrations, reopening, crash recovery, flush failure, reload.

use rusqlite::Connection;

use super::*;
use crate::schema;
use crate::{ClientAction, ClientRule, PrivateError, SCHEMA_VERSION};

fn user_version(path: &Path) -> i64 {
    let conn = Connection::open(path).unwrap();
    schema::version(&conn).unwrap()
}

#[test]
fn a_fresh_database_gets_the_current_version_and_reopening_changes_nothing() {
    let db = TempDb::new("fresh");
    let fx = Fx::with_config(&config(Mode::Private, db.path()));
    assert_eq!(user_version(db.path()), SCHEMA_VERSION);
    let mode: String = fx
        .policy
        .conn
        .lock()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = fx
        .policy
        .conn
        .lock()
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1);
    drop(fx);
    let mut conn = schema::open(db.path()).unwrap();
    assert_eq!(schema::migrate(&mut conn).unwrap(), 0);
    assert_eq!(schema::version(&conn).unwrap(), SCHEMA_VERSION);
}

#[test]
fn a_database_from_the_future_is_refused_untouched() {
    let db = TempDb::new("future");
    Connection::open(db.path())
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let registry = Arc::new(Registry::new(RegistryConfig::default()));
    let err = PrivatePolicy::open(&config(Mode::Private, db.path()), registry, clock).unwrap_err();
    assert!(
        matches!(
            err,
            PrivateError::SchemaTooNew {
                found: 999,
                supported: SCHEMA_VERSION
            }
        ),
        "{err}"
    );
    assert_eq!(user_version(db.path()), 999);
}

#[test]
fn a_file_that_is_not_a_database_fails_to_open() {
    let db = TempDb::new("garbage");
    std::fs::write(db.path(), vec![0x42u8; 4096]).unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let registry = Arc::new(Registry::new(RegistryConfig::default()));
    let err = PrivatePolicy::open(&config(Mode::Private, db.path()), registry, clock).unwrap_err();
    assert!(matches!(err, PrivateError::Open { .. }), "{err}");
    assert!(
        err.to_string().starts_with("cannot open database "),
        "{err}"
    );
}

#[test]
fn everything_survives_a_reopen_and_deltas_continue_from_the_stored_baseline() {
    let db = TempDb::new("reopen");
    let cfg = config(Mode::Private, db.path());
    let fx = Fx::with_config(&cfg);
    let (uid, key) = fx.user("alice");
    let (bob, _) = fx.user("bob");
    fx.policy.set_user_disabled(bob, true).unwrap();
    let expiring = fx.policy.issue_key(uid, Some(fx.now() + 100)).unwrap();
    fx.allow_with(
        hash(1),
        TorrentOptions {
            name: Some("one".into()),
            upload_multiplier: 2.0,
            ..TorrentOptions::default()
        },
    );
    fx.allow(hash(2));
    fx.policy.remove_torrent(&hash(2)).unwrap();
    let rule = ClientRule {
        prefix: "-XL".into(),
        action: ClientAction::Deny,
        note: Some("leecher".into()),
    };
    fx.policy.set_client_rule(&rule).unwrap();
    let a = Ann::new(hash(1), Some(&key));
    a.totals(1000, 0, 100).send(&fx);
    fx.advance(10);
    a.totals(1500, 0, 100).send(&fx);
    fx.policy.flush().unwrap();
    let before_users = fx.policy.list_users().unwrap();
    let before_user = fx.policy.user(uid).unwrap();
    let before_torrents = fx.policy.list_torrents().unwrap();
    let stats = fx.policy.stats();
    let Fx {
        policy,
        clock,
        registry,
    } = fx;
    drop(policy);

    let fx = Fx::reopen(&cfg, clock, registry);
    assert_eq!(fx.policy.list_users().unwrap(), before_users);
    assert_eq!(fx.policy.user(uid).unwrap(), before_user);
    assert_eq!(before_user.totals.uploaded, 1000);
    assert_eq!(fx.policy.list_torrents().unwrap(), before_torrents);
    assert_eq!(fx.policy.list_client_rules().unwrap(), vec![rule]);
    let after = fx.policy.stats();
    assert_eq!(
        (
            after.users,
            after.active_keys,
            after.torrents,
            after.client_rules,
            after.sessions
        ),
        (
            stats.users,
            stats.active_keys,
            stats.torrents,
            stats.client_rules,
            1
        )
    );
    // The in-memory view works as before.
    assert_eq!(
        text(&Ann::new(hash(2), Some(&key)).send(&fx)),
        "unregistered torrent"
    );
    assert_eq!(
        text(&a.peer(peer(b"-XL", 1)).send(&fx)),
        "client not allowed"
    );
    assert!(Ann::new(hash(1), Some(&expiring.key))
        .peer(peer(b"-qB", 7))
        .send(&fx)
        .is_allowed());
    // The session continues from its stored baseline: 300 more bytes, doubled.
    fx.advance(10);
    a.totals(1800, 0, 100).send(&fx);
    assert_eq!(fx.policy.user(uid).unwrap().totals.uploaded, 1600);
}

#[test]
fn after_a_crash_the_lost_interval_bytes_are_recovered() {
    let db = TempDb::new("crash");
    let cfg = config(Mode::Private, db.path());
    let fx = Fx::with_config(&cfg);
    let (uid, key) = fx.user("alice");
    fx.allow(hash(1));
    let a = Ann::new(hash(1), Some(&key));
    a.totals(0, 0, 100).send(&fx);
    fx.advance(10);
    a.totals(1000, 100, 100).send(&fx);
    fx.policy.flush().unwrap();
    // These announces are never flushed: the process dies.
    fx.advance(10);
    a.totals(3000, 300, 0).event(Event::Completed).send(&fx);
    fx.advance(10);
    a.totals(4000, 300, 0).send(&fx);
    let Fx {
        policy,
        clock,
        registry,
    } = fx;
    drop(policy);

    let fx = Fx::reopen(&cfg, clock, registry);
    fx.advance(10);
    // The next announce's delta against the stored baseline (1000, 100) recovers the bytes,
    // though it must pass the rate cap over the whole 30 s since the stored baseline.
    a.totals(4500, 300, 0).send(&fx);
    let t = fx.policy.user(uid).unwrap().totals;
    assert_eq!((t.raw_uploaded, t.raw_downloaded), (4500, 300));
    // Lost: the completion and the seeding time of the lost interval.
    assert_eq!((t.completed, t.seed_secs), (0, 0));
}

#[test]
fn a_failed_flush_keeps_everything_for_the_next_one() {
    let (fx, _db) = {
        let db = TempDb::new("flushfail");
        (Fx::with_config(&config(Mode::Private, db.path())), db)
    };
    let (uid, key) = fx.user("alice");
    fx.allow(hash(1));
    let a = Ann::new(hash(1), Some(&key));
    a.totals(0, 0, 0).send(&fx);
    fx.advance(10);
    a.totals(700, 0, 0).send(&fx);
    let stopper = Ann::new(hash(1), Some(&key)).peer(peer(b"-TR", 2));
    stopper.send(&fx);
    fx.policy.flush().unwrap();
    stopper.event(Event::Stopped).send(&fx);
    fx.advance(10);
    a.totals(900, 0, 0).send(&fx);
    fx.policy
        .conn
        .lock()
        .execute_batch("ALTER TABLE transfers RENAME TO transfers_away")
        .unwrap();
    assert!(matches!(fx.policy.flush(), Err(PrivateError::Db(_))));
    let s = fx.policy.stats();
    assert_eq!((s.flush_errors, s.flushes, s.pending_records), (1, 1, 1));
    // More accounting arrives meanwhile, into the same record.
    fx.advance(10);
    a.totals(1000, 0, 0).send(&fx);
    fx.policy
        .conn
        .lock()
        .execute_batch("ALTER TABLE transfers_away RENAME TO transfers")
        .unwrap();
    let f = fx.policy.flush().unwrap();
    assert_eq!(
        (f.records, f.sessions_written, f.sessions_removed),
        (1, 1, 1)
    );
    let t = fx.policy.user(uid).unwrap().totals;
    assert_eq!(t.raw_uploaded, 1000);
    assert_eq!(t.seed_secs, 30);
    let rows: i64 = fx
        .policy
        .conn
        .lock()
        .query_row("SELECT count(*) FROM peer_sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1, "the stopped session's row is gone");
}

#[test]
fn reload_picks_up_edits_by_other_tools() {
    let db = TempDb::new("reload");
    let fx = Fx::with_config(&config(Mode::Listed, db.path()));
    let (_, key) = fx.user("alice");
    let (bob, bob_key) = fx.user("bob");
    fx.allow(hash(1));
    fx.allow(hash(2));
    let a = Ann::new(hash(1), Some(&key));
    a.send(&fx);
    let mut b = Ann::new(hash(1), Some(&bob_key)).peer(peer(b"-TR", 2));
    b.port = 8000;
    b.send(&fx);
    assert_eq!(peers_in_registry(&fx, &hash(1)), 2);
    let other = Connection::open(db.path()).unwrap();
    other
        .execute(
            "UPDATE passkeys SET revoked_at = 1 WHERE key = ?1",
            [key.as_str()],
        )
        .unwrap();
    other
        .execute("UPDATE users SET disabled = 1 WHERE id = ?1", [bob])
        .unwrap();
    other
        .execute(
            "INSERT INTO client_rules (prefix, action, created_at) VALUES ('-XL', 'deny', 0)",
            [],
        )
        .unwrap();
    other
        .execute(
            "UPDATE torrents SET private = 1 WHERE info_hash = ?1",
            [&hash(2).0[..]],
        )
        .unwrap();
    drop(other);
    // Nothing changes until the reload.
    assert!(a.send(&fx).is_allowed());
    fx.policy.reload().unwrap();
    assert_eq!(text(&a.send(&fx)), "passkey revoked");
    assert_eq!(
        text(&Ann::new(hash(1), Some(&bob_key)).send(&fx)),
        "account disabled"
    );
    assert_eq!(
        text(&Ann::new(hash(1), None).peer(peer(b"-XL", 3)).send(&fx)),
        "client not allowed"
    );
    assert!(fx.policy.is_private(&hash(2)));
    // Both sessions were evicted, and their peers with them.
    assert_eq!(fx.policy.stats().sessions, 0);
    assert_eq!(peers_in_registry(&fx, &hash(1)), 0);
}
