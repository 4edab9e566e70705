//! The per-torrent state: torrents counting their sessions, removed torrents keeping their
//! sessions until they end, big swarms, tables that grow and move under the prefetch.

use proptest::prelude::*;

use super::*;
use crate::Totals;

/// How the shard keeps `h`: "active" (with sessions), "idle" (listed, no sessions) or
/// "absent"; checks the torrent's session count against its sessions.
fn place(fx: &Fx, h: &InfoHash) -> &'static str {
    let shard = fx.policy.torrents.shard(h).lock();
    let sessions = shard.sessions.iter().filter(|(_, s)| s.hash == *h).count();
    match shard.torrent(h) {
        Some(t) => {
            assert_eq!(t.sessions as usize, sessions, "{h}'s session count");
            assert!(
                t.listed || sessions > 0,
                "{h} unlisted and kept without sessions"
            );
            if sessions > 0 {
                "active"
            } else {
                "idle"
            }
        }
        None => {
            assert_eq!(sessions, 0, "sessions of {h}, which the shard forgot");
            "absent"
        }
    }
}

/// Another tool gives torrent row 1 the id 77 (deleting and re-inserting it would too), and
/// the policy reloads.
fn renumber_by_another_tool(fx: &Fx, db: &TempDb) {
    let other = rusqlite::Connection::open(db.path()).unwrap();
    other
        .execute_batch(
            "PRAGMA foreign_keys = OFF;
             UPDATE torrents SET id = 77 WHERE id = 1;",
        )
        .unwrap();
    drop(other);
    fx.policy.reload().unwrap();
}

fn user_totals(fx: &Fx, uid: i64) -> Totals {
    fx.policy.user(uid).unwrap().totals
}

#[test]
fn a_torrent_is_active_while_it_has_sessions_and_records_outlive_them() {
    let fx = Fx::new(Mode::Listed);
    let (_, key) = fx.user("alice");
    fx.allow(hash(1));
    assert_eq!(place(&fx, &hash(1)), "idle");
    // Keyless announces and scrapes are not accounted: the torrent stays idle.
    assert!(Ann::new(hash(1), None).send(&fx).is_allowed());
    assert!(Ann::new(hash(1), Some(&key)).scrape(&fx).is_allowed());
    assert_eq!(place(&fx, &hash(1)), "idle");
    let a = Ann::new(hash(1), Some(&key));
    assert!(a.send(&fx).is_allowed());
    assert_eq!(place(&fx, &hash(1)), "active");
    fx.policy.flush().unwrap();
    assert_eq!(place(&fx, &hash(1)), "active", "the session is live");
    fx.advance(1);
    a.totals(50, 0, 100).send(&fx);
    a.event(Event::Stopped).totals(70, 0, 100).send(&fx);
    assert_eq!(place(&fx, &hash(1)), "idle", "the session ended");
    assert_eq!(fx.policy.stats().pending_records, 1, "its record did not");
    let f = fx.policy.flush().unwrap();
    assert_eq!((f.records, f.sessions_removed), (1, 1));
    let uid = fx.policy.user_by_name("alice").unwrap().user.id;
    assert_eq!(user_totals(&fx, uid).raw_uploaded, 70);
    assert_eq!(place(&fx, &hash(1)), "idle");
    assert_eq!(fx.policy.stats().torrents, 1);
    // Still listed, with its options.
    assert!(a.event(Event::Started).send(&fx).is_allowed());
    assert_eq!(fx.policy.stats().sessions, 1);
}

#[test]
fn a_private_torrent_is_private_whether_idle_or_active() {
    let fx = Fx::new(Mode::Listed);
    let (_, key) = fx.user("alice");
    fx.allow_with(
        hash(1),
        TorrentOptions {
            private: true,
            upload_multiplier: 2.0,
            ..TorrentOptions::default()
        },
    );
    assert!(fx.policy.is_private(&hash(1)));
    let a = Ann::new(hash(1), Some(&key));
    a.send(&fx);
    assert_eq!(place(&fx, &hash(1)), "active");
    assert!(fx.policy.is_private(&hash(1)));
    assert_eq!(
        text(&Ann::new(hash(1), None).send(&fx)),
        "passkey required: use your personal announce URL"
    );
    // Options changed while active apply at once; the multiplier to the next credit.
    fx.allow(hash(1));
    assert!(!fx.policy.is_private(&hash(1)));
    assert!(Ann::new(hash(1), None).send(&fx).is_allowed());
    fx.advance(1);
    a.totals(10, 0, 100).send(&fx);
    let uid = fx.policy.user_by_name("alice").unwrap().user.id;
    assert_eq!(user_totals(&fx, uid).uploaded, 10);
}

#[test]
fn a_removed_torrent_keeps_its_sessions_until_they_end() {
    let fx = Fx::new(Mode::Private);
    let (uid, key) = fx.user("alice");
    fx.allow(hash(1));
    let a = Ann::new(hash(1), Some(&key));
    a.totals(100, 0, 50).send(&fx);
    assert!(fx.policy.remove_torrent(&hash(1)).unwrap());
    assert_eq!(text(&a.send(&fx)), "unregistered torrent");
    assert!(!fx.policy.is_private(&hash(1)));
    assert_eq!(fx.policy.stats().sessions, 1);
    assert_eq!(fx.policy.stats().torrents, 0);
    assert_eq!(place(&fx, &hash(1)), "active");
    // Revived before the session ends: the session continues from its baseline.
    fx.allow(hash(1));
    fx.advance(10);
    a.totals(300, 0, 50).send(&fx);
    assert_eq!(user_totals(&fx, uid).raw_uploaded, 200);
    // Removed again, the session idles out and the torrent is forgotten.
    assert!(fx.policy.remove_torrent(&hash(1)).unwrap());
    fx.advance(TIMEOUT + 1);
    let f = fx.policy.flush().unwrap();
    assert_eq!(f.sessions_removed, 1);
    assert_eq!(place(&fx, &hash(1)), "absent");
    assert_eq!(fx.policy.stats().sessions, 0);
    assert_eq!(text(&a.send(&fx)), "unregistered torrent");
}

#[test]
fn evicting_the_last_sessions_of_a_removed_torrent_forgets_it() {
    let fx = Fx::new(Mode::Private);
    let (_, key) = fx.user("alice");
    fx.allow(hash(1));
    Ann::new(hash(1), Some(&key)).send(&fx);
    fx.policy.flush().unwrap();
    fx.policy.remove_torrent(&hash(1)).unwrap();
    fx.policy.revoke_key(&key).unwrap();
    assert_eq!(place(&fx, &hash(1)), "absent");
    assert_eq!(fx.policy.stats().sessions, 0);
}

#[test]
fn sessions_on_a_removed_torrent_survive_a_reopen() {
    let db = TempDb::new("removed");
    let cfg = config(Mode::Private, db.path());
    let fx = Fx::with_config(&cfg);
    let (uid, key) = fx.user("alice");
    fx.allow(hash(1));
    let a = Ann::new(hash(1), Some(&key));
    a.totals(100, 0, 50).send(&fx);
    fx.policy.remove_torrent(&hash(1)).unwrap();
    fx.policy.flush().unwrap();
    let Fx {
        policy,
        clock,
        registry,
    } = fx;
    drop(policy);
    let fx = Fx::reopen(&cfg, clock, registry);
    assert_eq!(fx.policy.stats().sessions, 1);
    assert_eq!(place(&fx, &hash(1)), "active");
    assert_eq!(text(&a.send(&fx)), "unregistered torrent");
    fx.allow(hash(1));
    fx.advance(10);
    a.totals(400, 0, 50).send(&fx);
    assert_eq!(user_totals(&fx, uid).raw_uploaded, 300);
}

/// Many sessions on one torrent (past the index threshold, and back under it as they stop):
/// each is credited against its own baseline, and records stay per user.
#[test]
fn big_swarms_keep_every_session_apart() {
    const PEERS: u8 = 90;
    let fx = Fx::new(Mode::Private);
    let users = [fx.user("a"), fx.user("b"), fx.user("c")];
    fx.allow(hash(1));
    let ann = |n: u8| {
        let (_, key) = &users[usize::from(n % 3)];
        let mut a = Ann::new(hash(1), Some(key)).peer(peer(b"-qB", n));
        a.port = 1000 + u16::from(n);
        a
    };
    for n in 0..PEERS {
        assert!(ann(n).totals(u64::from(n), 0, 10).send(&fx).is_allowed());
    }
    assert_eq!(fx.policy.stats().sessions, u64::from(PEERS));
    assert_eq!(fx.policy.stats().pending_records, u64::from(PEERS));
    // Written as one record per user.
    assert_eq!(fx.policy.flush().unwrap().records, 3);
    fx.advance(10);
    // Every peer reports 1000 more; two thirds then stop.
    for n in 0..PEERS {
        let a = ann(n).totals(u64::from(n) + 1000, 0, 10);
        let a = if n % 3 == 2 {
            a
        } else {
            a.event(Event::Stopped)
        };
        assert!(a.send(&fx).is_allowed());
    }
    assert_eq!(fx.policy.stats().sessions, u64::from(PEERS / 3));
    fx.advance(10);
    // The survivors (user c) report 10 more each; the others come back as first sightings.
    for n in 0..PEERS {
        ann(n).totals(u64::from(n) + 1010, 0, 10).send(&fx);
    }
    let per_user = u64::from(PEERS / 3) * 1000;
    assert_eq!(user_totals(&fx, users[0].0).raw_uploaded, per_user);
    assert_eq!(user_totals(&fx, users[1].0).raw_uploaded, per_user);
    assert_eq!(
        user_totals(&fx, users[2].0).raw_uploaded,
        per_user + u64::from(PEERS / 3) * 10
    );
    assert_eq!(fx.policy.stats().sessions, u64::from(PEERS));
    // Revoking one user's key evicts exactly their sessions.
    fx.policy.revoke_key(&users[1].1).unwrap();
    assert_eq!(fx.policy.stats().sessions, u64::from(PEERS / 3) * 2);
    assert_eq!(peers_in_registry(&fx, &hash(1)), u32::from(PEERS / 3) * 2);
}

/// Another tool deleting and re-inserting a torrent's row gives its hash a new id: the
/// sessions' rows move to it at the next flush.
#[test]
fn a_new_row_id_for_a_hash_moves_its_session_rows() {
    let db = TempDb::new("newid");
    let fx = Fx::with_config(&config(Mode::Private, db.path()));
    let (_, key) = fx.user("alice");
    fx.allow(hash(1));
    Ann::new(hash(1), Some(&key)).send(&fx);
    fx.policy.flush().unwrap();
    renumber_by_another_tool(&fx, &db);
    let f = fx.policy.flush().unwrap();
    assert_eq!((f.sessions_written, f.sessions_removed), (1, 1));
    let ids: Vec<i64> = fx
        .policy
        .conn
        .lock()
        .prepare("SELECT torrent_id FROM peer_sessions")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ids, vec![77]);
}

/// Records of sessions that ended before a torrent's row id changed are written under the
/// new id (the old row is gone: writing under it would break the foreign key and every flush
/// after it).
#[test]
fn records_of_ended_sessions_follow_a_new_row_id() {
    let db = TempDb::new("newid-ended");
    let fx = Fx::with_config(&config(Mode::Private, db.path()));
    let (uid, key) = fx.user("alice");
    fx.allow(hash(1));
    let a = Ann::new(hash(1), Some(&key));
    a.totals(0, 0, 10).send(&fx);
    fx.policy.flush().unwrap();
    fx.advance(10);
    a.totals(500, 0, 10).event(Event::Stopped).send(&fx);
    assert_eq!(place(&fx, &hash(1)), "idle");
    renumber_by_another_tool(&fx, &db);
    let f = fx.policy.flush().unwrap();
    assert_eq!((f.records, f.sessions_removed), (1, 1));
    let rows: Vec<(i64, i64)> = fx
        .policy
        .conn
        .lock()
        .prepare("SELECT torrent_id, raw_uploaded FROM transfers")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(rows.contains(&(77, 500)), "{rows:?}");
    assert_eq!(user_totals(&fx, uid).raw_uploaded, 500);
}

#[test]
fn prefetches_follow_the_published_tables_and_never_change_answers() {
    use swarmd_swarm::Prefetch;
    let fx = Fx::new(Mode::Private);
    let (_, key) = fx.user("alice");
    let check_published = |fx: &Fx| {
        for cell in fx.policy.torrents.iter() {
            let s = cell.lock();
            assert_eq!(
                cell.published(),
                [s.torrents.span(), s.sessions.span()],
                "published where they are"
            );
        }
    };
    // Before any table exists, and for torrents never seen, a prefetch is only a hint.
    for step in [Prefetch::Bucket, Prefetch::Record] {
        fx.policy.prefetch(&hash(1), Some(&peer(b"-qB", 1)), step);
        fx.policy.prefetch(&hash(1), None, step);
    }
    for n in 0..200u8 {
        fx.allow(hash(n));
    }
    check_published(&fx);
    // Announces grow the session tables; a prefetch may name a slot that holds another
    // session, or one the table has since left.
    for n in 0..200u8 {
        for p in 0..3 {
            let a = Ann::new(hash(n), Some(&key)).peer(peer(b"-qB", p));
            assert!(a.send(&fx).is_allowed());
        }
        for m in [n, n.wrapping_add(1), 250] {
            for step in [Prefetch::Bucket, Prefetch::Record] {
                fx.policy.prefetch(&hash(m), Some(&peer(b"-qB", 0)), step);
            }
        }
    }
    check_published(&fx);
    assert_eq!(fx.policy.stats().sessions, 600);
    // A flush that ends sessions (and frees emptied tables) republishes them.
    fx.advance(TIMEOUT + 1);
    let f = fx.policy.flush().unwrap();
    assert_eq!(f.sessions_removed, 600);
    check_published(&fx);
    for n in 0..200u8 {
        assert_eq!(place(&fx, &hash(n)), "idle");
    }
    assert_eq!(place(&fx, &hash(250)), "absent");
}

/// A hash from a 16-bit number, for more torrents than `hash` makes.
fn wide_hash(i: u16) -> InfoHash {
    let mut h = [7; 20];
    h[..2].copy_from_slice(&i.to_be_bytes());
    InfoHash(h)
}

#[test]
fn states_moved_by_a_flush_are_found_by_their_own_hash_not_a_stale_hint() {
    let fx = Fx::new(Mode::Private);
    let (uid, key) = fx.user("alice");
    const N: u16 = 2000;
    for i in 0..N {
        fx.allow(wide_hash(i));
        assert!(Ann::new(wide_hash(i), Some(&key)).send(&fx).is_allowed());
    }
    // Every second torrent loses its session; the flush returns those to idle, and the states
    // after them in each shard move into their places, under the hints noted before.
    for i in (0..N).step_by(2) {
        let stop = Ann::new(wide_hash(i), Some(&key)).event(Event::Stopped);
        assert!(stop.send(&fx).is_allowed());
    }
    fx.policy.flush().unwrap();
    let before = user_totals(&fx, uid);
    fx.advance(60);
    for i in (1..N).step_by(2) {
        let progress = Ann::new(wide_hash(i), Some(&key)).totals(1000, 0, 100);
        assert!(progress.send(&fx).is_allowed());
    }
    fx.policy.flush().unwrap();
    let after = user_totals(&fx, uid);
    // Each surviving session was credited its own 1000 bytes, once.
    assert_eq!(
        after.raw_uploaded - before.raw_uploaded,
        1000 * u64::from(N / 2)
    );
    assert_eq!(fx.policy.stats().sessions, u64::from(N / 2));
    for i in 0..N {
        let want = if i % 2 == 0 { "idle" } else { "active" };
        assert_eq!(place(&fx, &wide_hash(i)), want, "torrent {i}");
    }
}

/// What changes a shard's tables, in any order.
#[derive(Debug, Clone)]
enum ShardOp {
    /// User `user` announces torrent `torrent` from peer `peer`.
    Announce {
        torrent: u8,
        user: usize,
        peer: u8,
        up: u64,
        event: Event,
    },
    /// The torrent is removed from the allow list.
    Remove(u8),
    /// The torrent is (re-)listed.
    Allow(u8),
    /// The user's key is revoked (evicting their sessions) and a new one issued.
    Rekey(usize),
    Advance(u32),
    Flush,
}

fn shard_op() -> impl Strategy<Value = ShardOp> {
    let event = prop_oneof![
        5 => Just(Event::None),
        1 => Just(Event::Started),
        1 => Just(Event::Completed),
        2 => Just(Event::Stopped),
    ];
    prop_oneof![
        12 => (0u8..6, 0usize..3, 0u8..40, 0u64..1000, event).prop_map(
            |(torrent, user, peer, up, event)| ShardOp::Announce { torrent, user, peer, up, event }
        ),
        1 => (0u8..6).prop_map(ShardOp::Remove),
        1 => (0u8..6).prop_map(ShardOp::Allow),
        1 => (0usize..3).prop_map(ShardOp::Rekey),
        2 => (1u32..TIMEOUT).prop_map(ShardOp::Advance),
        1 => Just(ShardOp::Flush),
    ]
}

/// The tables agree with each other and with the counters: every torrent counts exactly its
/// sessions, an unlisted torrent is kept only while it has some, every session's torrent is
/// there with the same row id, and the sessions, pending records and listed torrents gauges
/// count what the tables hold.
fn check_tables(fx: &Fx) {
    let (mut sessions, mut records, mut listed) = (0, 0, 0);
    for cell in fx.policy.torrents.iter() {
        let s = cell.lock();
        for (_, t) in s.torrents.iter() {
            let mine = s.sessions.iter().filter(|(_, x)| x.hash == t.hash).count();
            assert_eq!(t.sessions as usize, mine, "{}'s session count", t.hash);
            assert!(t.listed || mine > 0, "{} unlisted and kept", t.hash);
            listed += usize::from(t.listed);
        }
        let mut places = std::collections::HashSet::new();
        for (_, x) in s.sessions.iter() {
            let t = s.torrent(&x.hash).expect("a session's torrent is known");
            assert_eq!(x.torrent_id, t.id);
            if let Some(at) = x.pending_place() {
                assert!(
                    (at as usize) < s.pending.len(),
                    "a record's place in the log"
                );
                assert!(places.insert(at), "two sessions share a record");
                records += 1;
            }
        }
        sessions += s.sessions.len();
        records += s.orphans.len();
        assert_eq!(cell.published(), [s.torrents.span(), s.sessions.span()]);
    }
    let stats = fx.policy.stats();
    assert_eq!(stats.sessions, sessions as u64);
    assert_eq!(stats.pending_records, records as u64);
    assert_eq!(stats.torrents, listed as u64);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever the order of announces, stops, removals, re-listings, revocations, idle
    /// timeouts and flushes (sessions enough to grow, tombstone and rebuild the tables), the
    /// tables stay consistent, and a final flush leaves nothing pending.
    #[test]
    fn shard_tables_stay_consistent(ops in proptest::collection::vec(shard_op(), 1..160)) {
        let fx = Fx::new(Mode::Private);
        let mut users: Vec<(i64, String)> = (0..3).map(|i| fx.user(&format!("u{i}"))).collect();
        for n in 0..6 {
            fx.allow(hash(n));
        }
        for op in ops {
            match op {
                ShardOp::Announce { torrent, user, peer: p, up, event } => {
                    let key = users[user].1.clone();
                    let a = Ann::new(hash(torrent), Some(&key))
                        .peer(peer(b"-qB", p))
                        .totals(up, 0, 10)
                        .event(event);
                    a.send(&fx);
                }
                ShardOp::Remove(n) => {
                    fx.policy.remove_torrent(&hash(n)).unwrap();
                }
                ShardOp::Allow(n) => fx.allow(hash(n)),
                ShardOp::Rekey(u) => {
                    fx.policy.revoke_key(&users[u].1).unwrap();
                    users[u].1 = fx.policy.issue_key(users[u].0, None).unwrap().key;
                }
                ShardOp::Advance(secs) => fx.advance(secs),
                ShardOp::Flush => {
                    fx.policy.flush().unwrap();
                }
            }
            check_tables(&fx);
        }
        fx.policy.flush().unwrap();
        check_tables(&fx);
        prop_assert_eq!(fx.policy.stats().pending_records, 0);
    }
}
