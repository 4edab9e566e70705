//! Admin operations: validation, errors, idempotence, serde shapes, stats and metrics.

use super::*;
use crate::{ClientAction, ClientRule, KeyState, PrivateError, Torrent};

#[test]
fn user_names_are_validated_and_unique() {
    let fx = Fx::new(Mode::Private);
    for bad in ["", &"x".repeat(65), "a\nb", "tab\there", "\u{7f}"] {
        let err = fx.policy.create_user(bad).unwrap_err();
        assert!(err.is_invalid(), "{bad:?}: {err}");
    }
    let (u, k) = fx.policy.create_user(&"é".repeat(64)).unwrap();
    assert_eq!(k.user_id, u.id);
    let (alice, _) = fx.policy.create_user("alice").unwrap();
    let err = fx.policy.create_user("alice").unwrap_err();
    assert!(matches!(&err, PrivateError::NameTaken(n) if n == "alice"));
    assert!(err.is_conflict() && !err.is_not_found() && !err.is_invalid());
    assert!(fx.policy.create_user("Alice").is_ok());
    let users = fx.policy.list_users().unwrap();
    assert_eq!(users.len(), 3);
    assert!(users.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(users[1], alice);
    assert_eq!(alice.created_at, fx.now());
    assert!(!alice.disabled);
}

#[test]
fn passkeys_are_32_lowercase_alphanumerics_and_distinct() {
    let fx = Fx::new(Mode::Private);
    let (u, first) = fx.policy.create_user("alice").unwrap();
    let mut seen = std::collections::HashSet::new();
    seen.insert(first.key.clone());
    for _ in 0..50 {
        let k = fx.policy.issue_key(u.id, None).unwrap();
        assert_eq!(k.key.len(), 32);
        assert!(k
            .key
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
        assert!(seen.insert(k.key));
    }
    assert_eq!(first.state, KeyState::Active);
    assert_eq!((first.expires_at, first.revoked_at), (None, None));
}

#[test]
fn key_operations_on_unknown_users_and_keys_fail_as_not_found() {
    let fx = Fx::new(Mode::Private);
    for err in [
        fx.policy.issue_key(42, None).unwrap_err(),
        fx.policy.rotate_keys(42, None).unwrap_err(),
        fx.policy.set_user_disabled(42, true).unwrap_err(),
        fx.policy.user(42).unwrap_err(),
        fx.policy.user_by_name("nobody").unwrap_err(),
        fx.policy.revoke_key("nope").unwrap_err(),
        fx.policy.torrent(&hash(1)).unwrap_err(),
    ] {
        assert!(err.is_not_found(), "{err}");
    }
    assert_eq!(
        fx.policy.user_by_name("nobody").unwrap_err().to_string(),
        "no such user: nobody"
    );
}

#[test]
fn revoking_is_idempotent() {
    let fx = Fx::new(Mode::Private);
    let (_, key) = fx.user("alice");
    let r1 = fx.policy.revoke_key(&key).unwrap();
    assert_eq!(r1.state, KeyState::Revoked);
    assert_eq!(r1.revoked_at, Some(fx.now()));
    fx.advance(100);
    let r2 = fx.policy.revoke_key(&key).unwrap();
    assert_eq!(r1, r2);
}

#[test]
fn rotation_revokes_active_keys_only_and_issues_one() {
    let fx = Fx::new(Mode::Private);
    let (uid, first) = fx.user("alice");
    let expiring = fx.policy.issue_key(uid, Some(fx.now() + 5)).unwrap();
    let revoked = fx.policy.issue_key(uid, None).unwrap();
    fx.policy.revoke_key(&revoked.key).unwrap();
    fx.advance(10);
    let new = fx.policy.rotate_keys(uid, Some(fx.now() + 1000)).unwrap();
    assert_eq!(new.expires_at, Some(fx.now() + 1000));
    let keys = fx.policy.user(uid).unwrap().passkeys;
    let state = |k: &str| keys.iter().find(|p| p.key == k).unwrap().state;
    assert_eq!(state(&first), KeyState::Revoked);
    assert_eq!(state(&expiring.key), KeyState::Expired);
    assert_eq!(state(&revoked.key), KeyState::Revoked);
    assert_eq!(state(&new.key), KeyState::Active);
    assert_eq!(keys.len(), 4);
    assert_eq!(fx.policy.stats().active_keys, 1);
}

#[test]
fn user_detail_by_id_and_name_agree() {
    let fx = Fx::new(Mode::Private);
    let (uid, _) = fx.user("alice");
    let d = fx.policy.user(uid).unwrap();
    assert_eq!(d, fx.policy.user_by_name("alice").unwrap());
    assert_eq!(d.user.name, "alice");
    assert_eq!(d.passkeys.len(), 1);
    assert!(d.torrents.is_empty());
    let u = fx.policy.set_user_disabled(uid, true).unwrap();
    assert!(u.disabled);
    assert!(fx.policy.user(uid).unwrap().user.disabled);
}

#[test]
fn torrent_options_are_validated() {
    let fx = Fx::new(Mode::Listed);
    for (up, down) in [
        (f64::NAN, 1.0),
        (1.0, f64::INFINITY),
        (-0.5, 1.0),
        (1.0, 100.5),
    ] {
        let opts = TorrentOptions {
            upload_multiplier: up,
            download_multiplier: down,
            ..TorrentOptions::default()
        };
        assert!(fx
            .policy
            .allow_torrent(hash(1), &opts)
            .unwrap_err()
            .is_invalid());
    }
    let opts = TorrentOptions {
        upload_multiplier: 100.0,
        download_multiplier: 0.0,
        ..TorrentOptions::default()
    };
    assert!(fx.policy.allow_torrent(hash(1), &opts).is_ok());
}

#[test]
fn allow_updates_flags_and_revives_removed_torrents_with_their_history() {
    let fx = Fx::new(Mode::Private);
    let (uid, key) = fx.user("alice");
    let t = fx
        .policy
        .allow_torrent(
            hash(0xab),
            &TorrentOptions {
                name: Some("debian.iso".into()),
                ..TorrentOptions::default()
            },
        )
        .unwrap();
    assert_eq!(t.info_hash, "ab".repeat(20));
    assert_eq!(t.name.as_deref(), Some("debian.iso"));
    assert_eq!(t.added_at, fx.now());
    let a = Ann::new(hash(0xab), Some(&key));
    a.send(&fx);
    fx.advance(1);
    a.totals(100, 0, 100).send(&fx);
    fx.advance(10);
    let updated = fx
        .policy
        .allow_torrent(
            hash(0xab),
            &TorrentOptions {
                private: true,
                upload_multiplier: 2.0,
                ..TorrentOptions::default()
            },
        )
        .unwrap();
    assert_eq!(updated.added_at, t.added_at);
    assert!(updated.private && updated.name.is_none());
    assert_eq!(fx.policy.list_torrents().unwrap(), vec![updated.clone()]);
    assert!(fx.policy.remove_torrent(&hash(0xab)).unwrap());
    assert!(fx.policy.list_torrents().unwrap().is_empty());
    assert!(fx.policy.torrent(&hash(0xab)).unwrap_err().is_not_found());
    // History survives removal, and revival.
    assert_eq!(fx.policy.user(uid).unwrap().totals.uploaded, 100);
    fx.allow(hash(0xab));
    let d = fx.policy.torrent(&hash(0xab)).unwrap();
    assert_eq!(d.totals.uploaded, 100);
    assert_eq!(d.users[0].name, "alice");
    assert_eq!(fx.policy.stats().torrents, 1);
}

#[test]
fn client_rules_are_validated_upserted_and_listed_by_prefix() {
    let fx = Fx::new(Mode::Private);
    let rule = |p: &str, action| ClientRule {
        prefix: p.into(),
        action,
        note: None,
    };
    for bad in ["", &"a".repeat(21), "-q\u{7f}", "é", "a\tb"] {
        assert!(fx
            .policy
            .set_client_rule(&rule(bad, ClientAction::Deny))
            .unwrap_err()
            .is_invalid());
    }
    fx.policy
        .set_client_rule(&rule("-XL", ClientAction::Deny))
        .unwrap();
    let mut r = rule(&"a".repeat(20), ClientAction::Allow);
    r.note = Some("twenty".into());
    assert_eq!(fx.policy.set_client_rule(&r).unwrap(), r);
    let r2 = ClientRule {
        note: Some("changed".into()),
        action: ClientAction::Deny,
        ..r.clone()
    };
    fx.policy.set_client_rule(&r2).unwrap();
    let listed = fx.policy.list_client_rules().unwrap();
    assert_eq!(listed, vec![rule("-XL", ClientAction::Deny), r2]);
    assert_eq!(fx.policy.stats().client_rules, 2);
    assert!(fx.policy.remove_client_rule("-XL").unwrap());
    assert!(!fx.policy.remove_client_rule("-XL").unwrap());
    assert_eq!(fx.policy.stats().client_rules, 1);
}

#[test]
fn serde_shapes_match_the_admin_api() {
    use serde_json::json;
    assert_eq!(json!(Mode::Listed), json!("listed"));
    assert_eq!(Mode::default(), Mode::Public);
    assert_eq!(Mode::Private.as_str(), "private");
    assert_eq!(json!(KeyState::Expired), json!("expired"));
    assert_eq!(json!(ClientAction::Deny), json!("deny"));
    let opts: TorrentOptions = serde_json::from_value(json!({"private": true})).unwrap();
    assert_eq!(
        opts,
        TorrentOptions {
            private: true,
            ..TorrentOptions::default()
        }
    );
    assert_eq!(opts.upload_multiplier, 1.0);
    assert!(serde_json::from_value::<TorrentOptions>(json!({"privat": true})).is_err());
    let rule: ClientRule =
        serde_json::from_value(json!({"prefix": "-qB", "action": "allow"})).unwrap();
    assert_eq!(rule.note, None);

    let fx = Fx::new(Mode::Private);
    let (uid, key) = fx.user("alice");
    fx.allow(hash(1));
    Ann::new(hash(1), Some(&key)).send(&fx);
    let d = fx.policy.user(uid).unwrap();
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["id"], json!(uid));
    assert_eq!(v["name"], json!("alice"));
    assert_eq!(v["disabled"], json!(false));
    assert_eq!(v["passkeys"][0]["state"], json!("active"));
    assert_eq!(v["passkeys"][0]["expires_at"], json!(null));
    assert_eq!(v["totals"]["raw_uploaded"], json!(0));
    assert_eq!(v["torrents"][0]["info_hash"], json!("01".repeat(20)));
    assert_eq!(v["torrents"][0]["seed_secs"], json!(0));
    assert_eq!(v["torrents"][0]["last_announce"], json!(fx.now()));
    let back: crate::UserDetail = serde_json::from_value(v).unwrap();
    assert_eq!(back, d);
    let t: Torrent = fx.policy.list_torrents().unwrap().remove(0);
    let tv = serde_json::to_value(&t).unwrap();
    assert_eq!(tv["upload_multiplier"], json!(1.0));
    let td = serde_json::to_value(fx.policy.torrent(&hash(1)).unwrap()).unwrap();
    assert_eq!(td["info_hash"], json!("01".repeat(20)));
    assert_eq!(td["users"][0]["user_id"], json!(uid));
    assert_eq!(td["users"][0]["completed"], json!(0));
    let s = serde_json::to_value(fx.policy.stats()).unwrap();
    assert_eq!(s["mode"], json!("private"));
    assert_eq!(s["sessions"], json!(1));
}

#[test]
fn stats_count_what_memory_holds() {
    let fx = Fx::new(Mode::Listed);
    let s = fx.policy.stats();
    assert_eq!(s.mode, Mode::Listed);
    assert_eq!(
        (s.users, s.active_keys, s.torrents, s.sessions),
        (0, 0, 0, 0)
    );
    assert_eq!((s.last_flush_at, s.flushes, s.flush_errors), (None, 0, 0));
    let (uid, key) = fx.user("alice");
    fx.user("bob");
    fx.policy.issue_key(uid, Some(fx.now() + 1)).unwrap();
    fx.allow(hash(1));
    Ann::new(hash(1), Some(&key)).send(&fx);
    let s = fx.policy.stats();
    assert_eq!(
        (s.users, s.active_keys, s.torrents, s.sessions),
        (2, 3, 1, 1)
    );
    assert_eq!(s.pending_records, 1);
    fx.advance(1);
    fx.policy.flush().unwrap();
    let s = fx.policy.stats();
    assert_eq!(s.active_keys, 2);
    assert_eq!(s.pending_records, 0);
    assert_eq!((s.last_flush_at, s.flushes), (Some(fx.now()), 1));
}

#[test]
fn metrics_register_with_their_names() {
    let fx = Fx::new(Mode::Private);
    let (_, key) = fx.user("alice");
    fx.allow(hash(1));
    Ann::new(hash(2), Some(&key)).send(&fx);
    Ann::new(hash(1), Some(&key)).send(&fx);
    let reg = prometheus::Registry::new();
    fx.policy.register_metrics(&reg).unwrap();
    fx.policy.flush().unwrap();
    let families = reg.gather();
    let get = |name: &str| {
        families
            .iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    for name in [
        "swarmd_private_flushes_total",
        "swarmd_private_flush_duration_seconds",
        "swarmd_private_last_flush_timestamp_seconds",
        "swarmd_private_pending_records",
        "swarmd_private_sessions",
        "swarmd_private_denied_total",
        "swarmd_private_absurd_deltas_total",
        "swarmd_private_users",
        "swarmd_private_torrents",
    ] {
        assert!(!get(name).help().is_empty(), "{name}");
    }
    let denied = get("swarmd_private_denied_total");
    let reasons: Vec<&str> = denied
        .get_metric()
        .iter()
        .map(|m| m.get_label()[0].value())
        .collect();
    assert_eq!(reasons.len(), 7, "{reasons:?}");
    let unregistered = denied
        .get_metric()
        .iter()
        .find(|m| m.get_label()[0].value() == "unregistered")
        .unwrap();
    assert_eq!(unregistered.get_counter().get_value(), 1.0);
    let gauge = |name| get(name).get_metric()[0].get_gauge().get_value();
    assert_eq!(gauge("swarmd_private_users"), 1.0);
    assert_eq!(gauge("swarmd_private_torrents"), 1.0);
    assert_eq!(gauge("swarmd_private_sessions"), 1.0);
    assert_eq!(gauge("swarmd_private_pending_records"), 0.0);
    assert_eq!(
        gauge("swarmd_private_last_flush_timestamp_seconds"),
        f64::from(T0)
    );
    assert!(
        fx.policy.register_metrics(&reg).is_err(),
        "registered twice"
    );
}

#[test]
fn allow_torrents_is_all_or_none() {
    let fx = Fx::new(Mode::Listed);
    let bad = TorrentOptions {
        upload_multiplier: f64::NAN,
        ..TorrentOptions::default()
    };
    let items = vec![(hash(1), TorrentOptions::default()), (hash(2), bad)];
    assert!(fx.policy.allow_torrents(&items).unwrap_err().is_invalid());
    assert!(fx.policy.list_torrents().unwrap().is_empty());
    let items: Vec<_> = (1..=50u8)
        .map(|i| (hash(i), TorrentOptions::default()))
        .collect();
    let rows = fx.policy.allow_torrents(&items).unwrap();
    assert_eq!(rows.len(), 50);
    assert_eq!(fx.policy.list_torrents().unwrap().len(), 50);
    assert_eq!(fx.policy.stats().torrents, 50);
}
