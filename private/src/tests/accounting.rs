//! The accounting rules, one announce at a time, and eviction.

use swarmd_proto::Event;

use super::*;
use crate::Totals;

/// The user's flushed totals on `h` (zeros if none).
fn totals(fx: &Fx, uid: i64, h: InfoHash) -> Totals {
    let hex = h.to_string();
    fx.policy
        .user(uid)
        .unwrap()
        .torrents
        .into_iter()
        .find(|t| t.info_hash == hex)
        .map(|t| t.totals)
        .unwrap_or_default()
}

fn setup(opts: TorrentOptions) -> (Fx, i64, String) {
    let fx = Fx::new(Mode::Private);
    let (uid, key) = fx.user("alice");
    fx.allow_with(hash(1), opts);
    (fx, uid, key)
}

#[test]
fn first_sighting_credits_nothing_then_deltas_count() {
    let (fx, uid, key) = setup(TorrentOptions::default());
    let a = Ann::new(hash(1), Some(&key));
    assert!(a.totals(5000, 7000, 100).send(&fx).is_allowed());
    let t = totals(&fx, uid, hash(1));
    assert_eq!(t, Totals::default());
    fx.advance(10);
    a.totals(6000, 9000, 100).send(&fx);
    let t = totals(&fx, uid, hash(1));
    assert_eq!((t.uploaded, t.downloaded), (1000, 2000));
    assert_eq!((t.raw_uploaded, t.raw_downloaded), (1000, 2000));
    let rec = &fx.policy.user(uid).unwrap().torrents[0];
    assert_eq!(rec.last_announce, fx.now());
}

#[test]
fn multipliers_scale_credited_bytes_and_truncate() {
    let (fx, uid, key) = setup(TorrentOptions {
        upload_multiplier: 1.5,
        download_multiplier: 0.5,
        ..TorrentOptions::default()
    });
    let a = Ann::new(hash(1), Some(&key));
    a.send(&fx);
    fx.advance(1);
    a.totals(3, 1001, 100).send(&fx);
    let t = totals(&fx, uid, hash(1));
    assert_eq!((t.uploaded, t.raw_uploaded), (4, 3));
    assert_eq!((t.downloaded, t.raw_downloaded), (500, 1001));
}

#[test]
fn freeleech_credits_no_download_but_keeps_raw_figures() {
    let (fx, uid, key) = setup(TorrentOptions {
        download_multiplier: 0.0,
        ..TorrentOptions::default()
    });
    let a = Ann::new(hash(1), Some(&key));
    a.send(&fx);
    fx.advance(10);
    a.totals(100, 5000, 100).send(&fx);
    let t = totals(&fx, uid, hash(1));
    assert_eq!((t.uploaded, t.downloaded), (100, 0));
    assert_eq!((t.raw_uploaded, t.raw_downloaded), (100, 5000));
}

#[test]
fn multiplier_changes_apply_to_later_announces() {
    let (fx, uid, key) = setup(TorrentOptions::default());
    let a = Ann::new(hash(1), Some(&key));
    a.send(&fx);
    fx.advance(1);
    a.totals(100, 0, 100).send(&fx);
    fx.allow_with(
        hash(1),
        TorrentOptions {
            upload_multiplier: 2.0,
            ..TorrentOptions::default()
        },
    );
    fx.advance(1);
    a.totals(200, 0, 100).send(&fx);
    assert_eq!(totals(&fx, uid, hash(1)).uploaded, 300);
}

#[test]
fn absurd_deltas_are_discarded_per_direction_but_the_baseline_advances() {
    let (fx, uid, key) = setup(TorrentOptions::default());
    let a = Ann::new(hash(1), Some(&key));
    a.send(&fx);
    fx.advance(10);
    // Exactly the cap is fine; one byte more is absurd.
    a.totals(10 * MAX_RATE, 10 * MAX_RATE + 1, 100).send(&fx);
    let t = totals(&fx, uid, hash(1));
    assert_eq!((t.raw_uploaded, t.raw_downloaded), (10 * MAX_RATE, 0));
    assert_eq!(fx.policy.metrics.absurd_up.get(), 0);
    assert_eq!(fx.policy.metrics.absurd_down.get(), 1);
    // The next delta counts from the absurd report.
    fx.advance(1);
    a.totals(10 * MAX_RATE + 5, 10 * MAX_RATE + 8, 100)
        .send(&fx);
    let t = totals(&fx, uid, hash(1));
    assert_eq!((t.raw_uploaded, t.raw_downloaded), (10 * MAX_RATE + 5, 7));
}

#[test]
fn announces_in_the_same_second_get_one_second_of_allowance() {
    let (fx, uid, key) = setup(TorrentOptions::default());
    let a = Ann::new(hash(1), Some(&key));
    a.send(&fx);
    a.totals(MAX_RATE, MAX_RATE + 1, 100).send(&fx);
    let t = totals(&fx, uid, hash(1));
    assert_eq!((t.raw_uploaded, t.raw_downloaded), (MAX_RATE, 0));
    assert_eq!(fx.policy.metrics.absurd_down.get(), 1);
}

#[test]
fn a_counter_reset_counts_from_zero() {
    let (fx, uid, key) = setup(TorrentOptions::default());
    let a = Ann::new(hash(1), Some(&key));
    a.totals(1000, 1000, 100).send(&fx);
    fx.advance(10);
    a.totals(1500, 1200, 100).send(&fx);
    fx.advance(10);
    // The client restarted: its totals start again from 0.
    a.totals(300, 40, 100).send(&fx);
    let t = totals(&fx, uid, hash(1));
    assert_eq!((t.raw_uploaded, t.raw_downloaded), (800, 240));
}

#[test]
fn seeding_time_accrues_from_seeding_baselines_capped_by_the_timeout() {
    let (fx, uid, key) = setup(TorrentOptions::default());
    let a = Ann::new(hash(1), Some(&key));
    a.totals(0, 0, 100).send(&fx);
    fx.advance(100);
    // The baseline was leeching: no seeding time for this interval.
    a.totals(0, 100, 0).event(Event::Completed).send(&fx);
    assert_eq!(totals(&fx, uid, hash(1)).seed_secs, 0);
    fx.advance(300);
    a.totals(0, 100, 0).send(&fx);
    assert_eq!(totals(&fx, uid, hash(1)).seed_secs, 300);
    // A long silence credits at most the peer timeout (the session is flushed, not forgotten,
    // because user() flushes before the clock moves).
    fx.advance(TIMEOUT);
    a.totals(0, 100, 0).send(&fx);
    assert_eq!(
        totals(&fx, uid, hash(1)).seed_secs,
        300 + u64::from(TIMEOUT)
    );
}

#[test]
fn seeding_time_credit_is_capped_at_the_timeout() {
    let (fx, uid, key) = setup(TorrentOptions::default());
    let a = Ann::new(hash(1), Some(&key));
    a.totals(0, 0, 0).send(&fx);
    // No flush in between, so the session survives a gap longer than the timeout.
    fx.advance(TIMEOUT * 3);
    a.totals(0, 0, 0).send(&fx);
    assert_eq!(totals(&fx, uid, hash(1)).seed_secs, u64::from(TIMEOUT));
}

#[test]
fn completions_count_once() {
    let (fx, uid, key) = setup(TorrentOptions::default());
    let a = Ann::new(hash(1), Some(&key));
    a.totals(0, 0, 100).send(&fx);
    fx.advance(1);
    a.totals(0, 100, 0).event(Event::Completed).send(&fx);
    fx.advance(1);
    // A repeated completed event from a seeding baseline is not another completion.
    a.totals(0, 100, 0).event(Event::Completed).send(&fx);
    assert_eq!(totals(&fx, uid, hash(1)).completed, 1);
    // A completed event at first sighting counts (nothing says it was complete before).
    let b = Ann::new(hash(1), Some(&key)).peer(peer(b"-TR3000-", 2));
    b.totals(0, 100, 0).event(Event::Completed).send(&fx);
    assert_eq!(totals(&fx, uid, hash(1)).completed, 2);
}

#[test]
fn stopped_accounts_then_drops_the_session() {
    let (fx, uid, key) = setup(TorrentOptions::default());
    let a = Ann::new(hash(1), Some(&key));
    a.totals(0, 0, 100).send(&fx);
    assert_eq!(fx.policy.stats().sessions, 1);
    fx.advance(10);
    a.totals(500, 600, 100).event(Event::Stopped).send(&fx);
    assert_eq!(fx.policy.stats().sessions, 0);
    let t = totals(&fx, uid, hash(1));
    assert_eq!((t.raw_uploaded, t.raw_downloaded), (500, 600));
    let rows: i64 = fx
        .policy
        .conn
        .lock()
        .query_row("SELECT count(*) FROM peer_sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
    // Coming back is a first sighting.
    fx.advance(10);
    a.totals(900, 900, 100).event(Event::Started).send(&fx);
    fx.advance(10);
    a.totals(1000, 900, 100).send(&fx);
    let t = totals(&fx, uid, hash(1));
    assert_eq!((t.raw_uploaded, t.raw_downloaded), (600, 600));
}

#[test]
fn sessions_are_per_peer_id_and_records_per_user_and_torrent() {
    let (fx, uid, key) = setup(TorrentOptions::default());
    fx.allow(hash(2));
    let (bob, bob_key) = fx.user("bob");
    let a1 = Ann::new(hash(1), Some(&key)).peer(peer(b"-qB", 1));
    let a2 = Ann::new(hash(1), Some(&key)).peer(peer(b"-qB", 2));
    let a3 = Ann::new(hash(2), Some(&key));
    let b1 = Ann::new(hash(1), Some(&bob_key));
    for a in [a1, a2, a3, b1] {
        a.send(&fx);
    }
    assert_eq!(fx.policy.stats().sessions, 4);
    // A record per session until the flush merges them per user and torrent.
    assert_eq!(fx.policy.stats().pending_records, 4);
    fx.advance(5);
    a1.totals(10, 0, 100).send(&fx);
    a2.totals(20, 0, 100).send(&fx);
    a3.totals(40, 0, 100).send(&fx);
    b1.totals(80, 0, 100).send(&fx);
    assert_eq!(totals(&fx, uid, hash(1)).uploaded, 30);
    assert_eq!(totals(&fx, uid, hash(2)).uploaded, 40);
    assert_eq!(totals(&fx, bob, hash(1)).uploaded, 80);
    let detail = fx.policy.torrent(&hash(1)).unwrap();
    assert_eq!(detail.totals.uploaded, 110);
    assert_eq!(detail.users.len(), 2);
    let alice = fx.policy.user(uid).unwrap();
    assert_eq!(alice.totals.uploaded, 70);
    assert_eq!(fx.policy.stats().pending_records, 0);
}

#[test]
fn idle_sessions_are_forgotten_at_flush() {
    let (fx, _uid, key) = setup(TorrentOptions::default());
    Ann::new(hash(1), Some(&key)).send(&fx);
    let f = fx.policy.flush().unwrap();
    assert_eq!(
        (f.records, f.sessions_written, f.sessions_removed),
        (1, 1, 0)
    );
    fx.advance(TIMEOUT);
    assert_eq!(fx.policy.flush().unwrap().sessions_removed, 0);
    fx.advance(1);
    let f = fx.policy.flush().unwrap();
    assert_eq!(
        (f.records, f.sessions_written, f.sessions_removed),
        (0, 0, 1)
    );
    assert_eq!(fx.policy.stats().sessions, 0);
    let rows: i64 = fx
        .policy
        .conn
        .lock()
        .query_row("SELECT count(*) FROM peer_sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
}

/// Alice announces two torrents from two peers with her key; Bob one. Returns Bob's key.
fn populate(fx: &Fx, key: &str) -> String {
    fx.allow(hash(2));
    let (_, bob_key) = fx.user("bob");
    Ann::new(hash(1), Some(key)).peer(peer(b"-qB", 1)).send(fx);
    let mut a = Ann::new(hash(2), Some(key)).peer(peer(b"-qB", 2));
    a.port = 7000;
    a.send(fx);
    let mut b = Ann::new(hash(1), Some(&bob_key)).peer(peer(b"-TR", 3));
    b.port = 8000;
    b.send(fx);
    fx.policy.flush().unwrap();
    assert_eq!(peers_in_registry(fx, &hash(1)), 2);
    assert_eq!(peers_in_registry(fx, &hash(2)), 1);
    bob_key
}

fn session_rows(fx: &Fx) -> i64 {
    fx.policy
        .conn
        .lock()
        .query_row("SELECT count(*) FROM peer_sessions", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn revoking_a_key_evicts_its_sessions_and_peers() {
    let (fx, _uid, key) = setup(TorrentOptions::default());
    populate(&fx, &key);
    assert_eq!(session_rows(&fx), 3);
    fx.policy.revoke_key(&key).unwrap();
    assert_eq!(peers_in_registry(&fx, &hash(1)), 1, "bob stays");
    assert_eq!(peers_in_registry(&fx, &hash(2)), 0);
    assert_eq!(fx.policy.stats().sessions, 1);
    assert_eq!(session_rows(&fx), 1);
    fx.policy.flush().unwrap();
    assert_eq!(session_rows(&fx), 1);
}

#[test]
fn rotating_keys_evicts_and_the_new_key_works() {
    let (fx, uid, key) = setup(TorrentOptions::default());
    populate(&fx, &key);
    let new = fx.policy.rotate_keys(uid, None).unwrap();
    assert_eq!(peers_in_registry(&fx, &hash(1)), 1);
    assert_eq!(peers_in_registry(&fx, &hash(2)), 0);
    assert_eq!(fx.policy.stats().sessions, 1);
    assert_eq!(
        text(&Ann::new(hash(1), Some(&key)).send(&fx)),
        "passkey revoked"
    );
    assert!(Ann::new(hash(1), Some(&new.key)).send(&fx).is_allowed());
}

#[test]
fn disabling_a_user_evicts_their_sessions_and_peers() {
    let (fx, uid, key) = setup(TorrentOptions::default());
    populate(&fx, &key);
    fx.policy.set_user_disabled(uid, true).unwrap();
    assert_eq!(peers_in_registry(&fx, &hash(1)), 1);
    assert_eq!(peers_in_registry(&fx, &hash(2)), 0);
    assert_eq!(fx.policy.stats().sessions, 1);
    assert_eq!(session_rows(&fx), 1);
}

#[test]
fn a_session_follows_its_peer_across_keys_and_addresses() {
    let (fx, uid, key) = setup(TorrentOptions::default());
    let a = Ann::new(hash(1), Some(&key));
    a.totals(100, 0, 100).send(&fx);
    let key2 = fx.policy.issue_key(uid, None).unwrap().key;
    fx.advance(1);
    let mut b = Ann::new(hash(1), Some(&key2)).totals(150, 0, 100);
    b.port = 9999;
    b.send(&fx);
    assert_eq!(fx.policy.stats().sessions, 1);
    assert_eq!(totals(&fx, uid, hash(1)).raw_uploaded, 50);
    // The session now belongs to key2: revoking it evicts the peer at its new address.
    fx.policy.revoke_key(&key2).unwrap();
    assert_eq!(fx.policy.stats().sessions, 0);
    let remaining = fx.registry.scrape(&hash(1)).unwrap();
    assert_eq!(
        remaining.incomplete, 1,
        "the old address (port 6881) was never stopped"
    );
}

/// Announces that change nothing but the time (idle peers) are not written at every flush, only
/// once their stored `last_seen` is `LAST_SEEN_STEP` old; a change of totals is written at once.
#[test]
fn keepalive_announces_are_written_coarsely() {
    use crate::session::LAST_SEEN_STEP;
    let (fx, uid, key) = setup(TorrentOptions::default());
    Ann::new(hash(1), Some(&key)).send(&fx);
    let f = fx.policy.flush().unwrap();
    assert_eq!((f.records, f.sessions_written), (1, 1));
    // A leecher re-announcing with the same totals: nothing to write.
    for _ in 0..3 {
        fx.advance(10);
        Ann::new(hash(1), Some(&key)).send(&fx);
    }
    let f = fx.policy.flush().unwrap();
    assert_eq!((f.records, f.sessions_written), (0, 0));
    // Once the stored last_seen is LAST_SEEN_STEP old, the next keep-alive is written.
    fx.advance(LAST_SEEN_STEP as u32);
    Ann::new(hash(1), Some(&key)).send(&fx);
    let f = fx.policy.flush().unwrap();
    assert_eq!((f.records, f.sessions_written), (1, 1));
    // Progress is written at the next flush, whatever the time.
    fx.advance(1);
    Ann::new(hash(1), Some(&key)).totals(5, 7, 93).send(&fx);
    let f = fx.policy.flush().unwrap();
    assert_eq!((f.records, f.sessions_written), (1, 1));
    let t = totals(&fx, uid, hash(1));
    assert_eq!((t.raw_uploaded, t.raw_downloaded), (5, 7));
    let stored: i64 = fx
        .policy
        .conn
        .lock()
        .query_row("SELECT uploaded FROM peer_sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 5, "the baseline went with the totals");
}
