//! The access rules: client rules, the allow list, passkeys, scrapes, the DHT.

use swarmd_proto::Event;
use swarmd_swarm::access::{AccessPolicy, AccessRequest, Protocol};

use super::*;
use crate::view::Denial;
use crate::{ClientAction, ClientRule};

#[test]
fn unregistered_torrents_are_refused_in_both_modes() {
    for mode in [Mode::Listed, Mode::Private] {
        let fx = Fx::new(mode);
        let (_, key) = fx.user("alice");
        let a = Ann::new(hash(1), Some(&key));
        assert_eq!(text(&a.send(&fx)), "unregistered torrent");
        assert_eq!(text(&a.scrape(&fx)), "unregistered torrent");
        assert_eq!(
            fx.policy.metrics.denied_count(Denial::Unregistered),
            2,
            "{mode:?}"
        );
    }
}

#[test]
fn removed_torrents_are_unregistered() {
    let fx = Fx::new(Mode::Private);
    let (_, key) = fx.user("alice");
    fx.allow(hash(1));
    let a = Ann::new(hash(1), Some(&key));
    assert!(a.send(&fx).is_allowed());
    assert!(fx.policy.remove_torrent(&hash(1)).unwrap());
    assert_eq!(text(&a.send(&fx)), "unregistered torrent");
}

#[test]
fn private_mode_requires_a_passkey() {
    let fx = Fx::new(Mode::Private);
    fx.allow(hash(1));
    let a = Ann::new(hash(1), None);
    assert_eq!(
        text(&a.send(&fx)),
        "passkey required: use your personal announce URL"
    );
    assert_eq!(
        text(&a.scrape(&fx)),
        "passkey required: use your personal announce URL"
    );
    // An empty credential is no credential.
    let mut empty = a;
    empty.key = Some(b"");
    assert_eq!(
        text(&empty.send(&fx)),
        "passkey required: use your personal announce URL"
    );
    assert_eq!(fx.policy.metrics.denied_count(Denial::MissingKey), 3);
}

#[test]
fn unknown_passkeys_are_refused_whatever_their_length() {
    let fx = Fx::new(Mode::Private);
    let (_, key) = fx.user("alice");
    fx.allow(hash(1));
    let other = "0".repeat(32);
    let short = &key[..31];
    let long = format!("{key}0");
    for k in [other.as_str(), short, long.as_str(), "x"] {
        let a = Ann::new(hash(1), Some(k));
        assert_eq!(text(&a.send(&fx)), "unknown passkey", "{k}");
        assert_eq!(text(&a.scrape(&fx)), "unknown passkey", "{k}");
    }
    assert!(Ann::new(hash(1), Some(&key)).send(&fx).is_allowed());
    assert_eq!(fx.policy.metrics.denied_count(Denial::UnknownKey), 8);
}

#[test]
fn revoked_passkeys_are_refused() {
    let fx = Fx::new(Mode::Private);
    let (_, key) = fx.user("alice");
    fx.allow(hash(1));
    fx.policy.revoke_key(&key).unwrap();
    let a = Ann::new(hash(1), Some(&key));
    assert_eq!(text(&a.send(&fx)), "passkey revoked");
    assert_eq!(text(&a.scrape(&fx)), "passkey revoked");
    assert_eq!(fx.policy.metrics.denied_count(Denial::RevokedKey), 2);
}

#[test]
fn passkeys_expire_at_their_time() {
    let fx = Fx::new(Mode::Private);
    let (uid, _) = fx.user("alice");
    fx.allow(hash(1));
    let key = fx.policy.issue_key(uid, Some(fx.now() + 10)).unwrap().key;
    let a = Ann::new(hash(1), Some(&key));
    fx.advance(9);
    assert!(a.send(&fx).is_allowed());
    fx.advance(1);
    assert_eq!(text(&a.send(&fx)), "passkey expired");
    assert_eq!(text(&a.scrape(&fx)), "passkey expired");
    assert_eq!(fx.policy.metrics.denied_count(Denial::ExpiredKey), 2);
}

#[test]
fn disabled_users_are_refused_until_enabled() {
    let fx = Fx::new(Mode::Private);
    let (uid, key) = fx.user("alice");
    fx.allow(hash(1));
    let a = Ann::new(hash(1), Some(&key));
    fx.policy.set_user_disabled(uid, true).unwrap();
    assert_eq!(text(&a.send(&fx)), "account disabled");
    assert_eq!(text(&a.scrape(&fx)), "account disabled");
    fx.policy.set_user_disabled(uid, false).unwrap();
    assert!(a.send(&fx).is_allowed());
    assert_eq!(fx.policy.metrics.denied_count(Denial::DisabledUser), 2);
}

#[test]
fn listed_mode_needs_keys_only_for_private_torrents_but_checks_any_presented() {
    let fx = Fx::new(Mode::Listed);
    let (_, key) = fx.user("alice");
    fx.allow(hash(1));
    fx.allow_with(
        hash(2),
        TorrentOptions {
            private: true,
            ..TorrentOptions::default()
        },
    );
    assert!(Ann::new(hash(1), None).send(&fx).is_allowed());
    assert!(Ann::new(hash(1), None).scrape(&fx).is_allowed());
    assert_eq!(
        text(&Ann::new(hash(2), None).send(&fx)),
        "passkey required: use your personal announce URL"
    );
    assert!(Ann::new(hash(2), Some(&key)).send(&fx).is_allowed());
    // A presented key must be valid even where none is needed.
    let bad = "z".repeat(32);
    assert_eq!(
        text(&Ann::new(hash(1), Some(&bad)).send(&fx)),
        "unknown passkey"
    );
    fx.policy.revoke_key(&key).unwrap();
    assert_eq!(
        text(&Ann::new(hash(1), Some(&key)).send(&fx)),
        "passkey revoked"
    );
    // Keyless announces are not accounted: no session.
    assert_eq!(fx.policy.stats().sessions, 0);
}

#[test]
fn udp_follows_the_same_rules() {
    let fx = Fx::new(Mode::Private);
    let (_, key) = fx.user("alice");
    fx.allow(hash(1));
    let mut a = Ann::new(hash(1), None);
    a.protocol = Protocol::Udp;
    assert_eq!(
        text(&a.send(&fx)),
        "passkey required: use your personal announce URL"
    );
    a.key = Some(key.as_bytes());
    assert!(a.send(&fx).is_allowed());
    assert_eq!(fx.policy.stats().sessions, 1);
}

fn rule(prefix: &str, action: ClientAction) -> ClientRule {
    ClientRule {
        prefix: prefix.into(),
        action,
        note: None,
    }
}

#[test]
fn deny_rules_refuse_matching_clients() {
    let fx = Fx::new(Mode::Private);
    let (_, key) = fx.user("alice");
    fx.allow(hash(1));
    fx.policy
        .set_client_rule(&rule("-XL", ClientAction::Deny))
        .unwrap();
    let a = Ann::new(hash(1), Some(&key));
    assert!(a.peer(peer(b"-qB4650-", 1)).send(&fx).is_allowed());
    assert_eq!(
        text(&a.peer(peer(b"-XL0012-", 1)).send(&fx)),
        "client not allowed"
    );
    // Client rules come first: even an unregistered hash says so.
    let mut other = a.peer(peer(b"-XL0012-", 1));
    other.hash = hash(9);
    assert_eq!(text(&other.send(&fx)), "client not allowed");
    assert_eq!(fx.policy.metrics.denied_count(Denial::Client), 2);
}

#[test]
fn allow_rules_admit_only_matching_clients_and_deny_wins() {
    let fx = Fx::new(Mode::Private);
    let (_, key) = fx.user("alice");
    fx.allow(hash(1));
    let a = Ann::new(hash(1), Some(&key));
    fx.policy
        .set_client_rule(&rule("-qB", ClientAction::Allow))
        .unwrap();
    fx.policy
        .set_client_rule(&rule("-TR", ClientAction::Allow))
        .unwrap();
    assert!(a.peer(peer(b"-qB4650-", 1)).send(&fx).is_allowed());
    assert!(a.peer(peer(b"-TR3000-", 1)).send(&fx).is_allowed());
    assert_eq!(
        text(&a.peer(peer(b"-DE13F0-", 1)).send(&fx)),
        "client not allowed"
    );
    fx.policy
        .set_client_rule(&rule("-qB4650", ClientAction::Deny))
        .unwrap();
    assert_eq!(
        text(&a.peer(peer(b"-qB4650-", 1)).send(&fx)),
        "client not allowed"
    );
    assert!(a.peer(peer(b"-qB5000-", 1)).send(&fx).is_allowed());
    // Removing the allow rules opens the door to everyone not denied.
    assert!(fx.policy.remove_client_rule("-qB").unwrap());
    assert!(fx.policy.remove_client_rule("-TR").unwrap());
    assert!(a.peer(peer(b"-DE13F0-", 1)).send(&fx).is_allowed());
}

#[test]
fn client_rules_skip_scrapes_and_requests_without_a_peer_id() {
    let fx = Fx::new(Mode::Private);
    let (_, key) = fx.user("alice");
    fx.allow(hash(1));
    fx.policy
        .set_client_rule(&rule("-qB", ClientAction::Allow))
        .unwrap();
    let mut a = Ann::new(hash(1), Some(&key)).peer(peer(b"-XX", 1));
    assert!(a.scrape(&fx).is_allowed());
    a.peer = None;
    assert!(fx.policy.announce(&a.req()).is_allowed());
}

#[test]
fn scrapes_never_account() {
    let fx = Fx::new(Mode::Private);
    let (_, key) = fx.user("alice");
    fx.allow(hash(1));
    let a = Ann::new(hash(1), Some(&key));
    assert!(a.scrape(&fx).is_allowed());
    let mut req = a.req();
    assert!(fx.policy.scrape(&req).is_allowed());
    req.transfer = None;
    assert!(fx.policy.announce(&req).is_allowed());
    assert_eq!(fx.policy.stats().sessions, 0);
    assert_eq!(fx.policy.stats().pending_records, 0);
}

#[test]
fn full_scrapes_are_refused() {
    let fx = Fx::new(Mode::Listed);
    assert_eq!(
        text(&fx.policy.full_scrape(CLIENT)),
        "full scrape is not available on this tracker"
    );
}

fn dht(fx: &Fx, h: InfoHash) -> Access {
    let req = AccessRequest {
        protocol: Protocol::Dht,
        info_hash: &h,
        passkey: None,
        peer_id: None,
        client: CLIENT,
        transfer: None,
        now: None,
    };
    let a = fx.policy.announce(&req);
    assert_eq!(fx.policy.scrape(&req), a);
    a
}

#[test]
fn dht_refuses_only_private_torrents_in_listed_mode() {
    let fx = Fx::new(Mode::Listed);
    fx.allow(hash(1));
    fx.allow_with(
        hash(2),
        TorrentOptions {
            private: true,
            ..TorrentOptions::default()
        },
    );
    assert!(
        dht(&fx, hash(9)).is_allowed(),
        "unlisted is fine on the DHT"
    );
    assert!(dht(&fx, hash(1)).is_allowed());
    assert_eq!(text(&dht(&fx, hash(2))), "private torrent");
    assert!(!fx.policy.is_private(&hash(9)));
    assert!(!fx.policy.is_private(&hash(1)));
    assert!(fx.policy.is_private(&hash(2)));
}

#[test]
fn dht_refuses_every_listed_torrent_in_private_mode() {
    let fx = Fx::new(Mode::Private);
    fx.allow(hash(1));
    assert!(dht(&fx, hash(9)).is_allowed());
    assert_eq!(text(&dht(&fx, hash(1))), "private torrent");
    assert!(fx.policy.is_private(&hash(1)));
    assert!(!fx.policy.is_private(&hash(9)));
    fx.policy.remove_torrent(&hash(1)).unwrap();
    assert!(!fx.policy.is_private(&hash(1)));
}

/// Stores a peer in the registry as the DHT would.
fn dht_peer(fx: &Fx, h: InfoHash, port: u16) {
    let a = swarmd_swarm::Announce {
        info_hash: h,
        peer_id: Default::default(),
        addr: std::net::SocketAddr::new(CLIENT, port),
        event: Event::None,
        left: 1,
        numwant: 0,
    };
    fx.registry
        .announce(&a, T0, &mut swarmd_swarm::SelectedPeers::new())
        .unwrap();
}

#[test]
fn making_a_torrent_private_purges_its_dht_peers() {
    let fx = Fx::new(Mode::Listed);
    dht_peer(&fx, hash(1), 1000);
    dht_peer(&fx, hash(2), 1000);
    // Listed but public: peers stay.
    fx.allow(hash(1));
    assert_eq!(peers_in_registry(&fx, &hash(1)), 1);
    // Flagged private: purged.
    fx.allow_with(
        hash(1),
        TorrentOptions {
            private: true,
            ..TorrentOptions::default()
        },
    );
    assert_eq!(peers_in_registry(&fx, &hash(1)), 0);
    // In private mode every listed torrent is private.
    let fx2 = Fx::new(Mode::Private);
    dht_peer(&fx2, hash(2), 1000);
    fx2.allow(hash(2));
    assert_eq!(peers_in_registry(&fx2, &hash(2)), 0);
}

#[test]
fn removing_a_torrent_purges_its_swarm() {
    let fx = Fx::new(Mode::Listed);
    fx.allow(hash(1));
    assert!(Ann::new(hash(1), None).send(&fx).is_allowed());
    assert_eq!(peers_in_registry(&fx, &hash(1)), 1);
    assert!(fx.policy.remove_torrent(&hash(1)).unwrap());
    assert_eq!(peers_in_registry(&fx, &hash(1)), 0);
    assert!(!fx.policy.remove_torrent(&hash(1)).unwrap());
}

#[test]
fn public_mode_is_refused() {
    let clock = Arc::new(ManualClock::new(T0));
    let registry = Arc::new(Registry::new(RegistryConfig::default()));
    let err = PrivatePolicy::open(
        &config(Mode::Public, Path::new(":memory:")),
        registry,
        clock,
    )
    .unwrap_err();
    assert!(err.is_invalid(), "{err}");
}

#[test]
fn the_policy_is_send_and_sync_and_an_access_policy() {
    fn check<T: Send + Sync + AccessPolicy>() {}
    check::<PrivatePolicy>();
    let fx = Fx::new(Mode::Listed);
    let dynamic: Arc<dyn AccessPolicy> = fx.policy.clone();
    assert!(!dynamic.is_private(&hash(1)));
    assert_eq!(fx.policy.mode(), Mode::Listed);
}
