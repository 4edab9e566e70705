//! End-to-end tests of listed and private modes: the admin API (token, users, passkeys, allow
//! list, client rules), passkeys over HTTP paths and BEP 41 URL data, accounting that survives a
//! restart, and private torrents that never leak through the DHT.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use common::krpc::Krpc;
use common::*;
use serde_json::{json, Value};
use swarmd::config::Config;
use swarmd_private::Mode;
use swarmd_proto::krpc::{parse_message, Body, Method};
use swarmd_proto::InfoHash;
use swarmd_swarm::clock::Clock;

const TOKEN: &str = "test-admin-token-0123456789";
const IH: [u8; 20] = [0x11; 20];
const OTHER: [u8; 20] = [0x22; 20];

/// A fresh database path under the temp dir.
fn db_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("swarmd-private-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("swarmd.db")
}

fn private_config(mode: Mode, db: &std::path::Path) -> Config {
    let mut c = test_config();
    c.access.mode = mode;
    c.access.database = db.display().to_string();
    c.access.flush_interval_secs = 3600;
    c.admin.token = TOKEN.into();
    c
}

/// One admin API call: (status, JSON body or Null).
async fn api_as(
    admin: SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: admin\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let reply = Conn::open(admin).await.send_raw(req.as_bytes()).await;
    let value = if reply.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&reply.body).expect("the API answers JSON")
    };
    (reply.status, value)
}

async fn api(admin: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    api_as(admin, Some(TOKEN), method, path, body).await
}

/// Creates a user; returns (id, passkey).
async fn user(admin: SocketAddr, name: &str) -> (i64, String) {
    let (status, v) = api(
        admin,
        "POST",
        "/api/v1/users",
        Some(json!({ "name": name })),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    (
        v["user"]["id"].as_i64().unwrap(),
        v["passkey"]["key"].as_str().unwrap().to_string(),
    )
}

async fn allow(admin: SocketAddr, ih: [u8; 20], opts: Value) {
    let (status, v) = api(
        admin,
        "PUT",
        &format!("/api/v1/torrents/{}", InfoHash(ih)),
        Some(opts),
    )
    .await;
    assert_eq!(status, 200, "{v}");
}

/// An HTTP announce under `prefix` (such as `/KEY`), with transfer figures.
#[allow(clippy::too_many_arguments)]
async fn announce(
    http: SocketAddr,
    prefix: &str,
    ih: [u8; 20],
    peer: u8,
    port: u16,
    up: u64,
    down: u64,
    left: u64,
    event: &str,
) -> Reply {
    let target = format!(
        "{prefix}/announce?info_hash={}&peer_id={}&port={port}&uploaded={up}&downloaded={down}&left={left}&compact=1{}",
        enc(&ih),
        enc(&[peer; 20]),
        if event.is_empty() { String::new() } else { format!("&event={event}") }
    );
    get(http, &target).await
}

fn peers_of(reply: &Reply) -> Vec<SocketAddr> {
    assert_eq!(failure(reply), None);
    peers_v4(bytes(&reply.bencode(), "peers"))
}

async fn totals(admin: SocketAddr, id: i64) -> Value {
    let (status, v) = api(admin, "GET", &format!("/api/v1/users/{id}"), None).await;
    assert_eq!(status, 200, "{v}");
    v["totals"].clone()
}

#[tokio::test]
async fn api_needs_the_token_and_a_non_public_mode() {
    let db = db_path("auth");
    let s = TestServer::start(private_config(Mode::Private, &db)).await;
    let admin = s.running.admin_addrs()[0];
    let (status, v) = api_as(admin, None, "GET", "/api/v1/users", None).await;
    assert_eq!(status, 401, "{v}");
    let (status, _) = api_as(
        admin,
        Some("wrong-token-but-long-enough"),
        "GET",
        "/api/v1/users",
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = api_as(
        admin,
        None,
        "POST",
        "/api/v1/users",
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, 401);
    let (status, v) = api(admin, "GET", "/api/v1/users", None).await;
    assert_eq!((status, v), (200, json!([])));
    // The description is public, and lists the API.
    let (status, doc) = api_as(admin, None, "GET", "/api/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/api/v1/users"].is_object());
    // Wrong methods and paths.
    let (status, _) = api(admin, "DELETE", "/api/v1/users", None).await;
    assert_eq!(status, 405);
    let (status, _) = api(admin, "GET", "/api/v1/nope", None).await;
    assert_eq!(status, 404);
    // Bad input gets 400 with a reason; a taken name 409.
    let (status, v) = api(admin, "POST", "/api/v1/users", Some(json!({"nam": "x"}))).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("nam"), "{v}");
    user(admin, "alice").await;
    let (status, _) = api(
        admin,
        "POST",
        "/api/v1/users",
        Some(json!({"name": "alice"})),
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = api(admin, "PUT", "/api/v1/torrents/xyz", Some(json!({}))).await;
    assert_eq!(status, 400);
    s.running.stop().await;

    // No token configured: the API is disabled, whatever is presented.
    let mut c = private_config(Mode::Private, &db);
    c.admin.token = String::new();
    let s = TestServer::start(c).await;
    let (status, _) = api(s.running.admin_addrs()[0], "GET", "/api/v1/users", None).await;
    assert_eq!(status, 403);
    s.running.stop().await;

    // Public mode: nothing to manage.
    let mut c = test_config();
    c.admin.token = TOKEN.into();
    let s = TestServer::start(c).await;
    let (status, v) = api(s.running.admin_addrs()[0], "GET", "/api/v1/users", None).await;
    assert_eq!(status, 409, "{v}");
    let (status, v) = api(s.running.admin_addrs()[0], "GET", "/api/v1/stats", None).await;
    assert_eq!((status, v["mode"].as_str()), (200, Some("public")));
    s.running.stop().await;
}

#[tokio::test]
async fn passkeys_gate_announces_over_http_and_udp() {
    let db = db_path("keys");
    let mut c = private_config(Mode::Private, &db);
    c.access.announce_urls = vec!["http://tracker.example:6969/announce".into()];
    let s = TestServer::start(c).await;
    let (admin, http) = (s.running.admin_addrs()[0], s.http_v4());
    let (_, alice) = user(admin, "alice").await;
    let (bob_id, bob) = user(admin, "bob").await;
    allow(admin, IH, json!({ "name": "linux.iso" })).await;

    // A valid key announces and gets peers; both path forms work.
    let r = announce(
        http,
        &format!("/{alice}"),
        IH,
        1,
        7001,
        0,
        0,
        100,
        "started",
    )
    .await;
    assert_eq!(peers_of(&r), vec![]);
    let r = get(
        http,
        &format!(
            "/announce/{bob}?info_hash={}&peer_id={}&port=7002&uploaded=0&downloaded=0&left=100",
            enc(&IH),
            enc(&[2; 20])
        ),
    )
    .await;
    assert_eq!(peers_of(&r), vec!["127.0.0.1:7001".parse().unwrap()]);

    // Wrong, missing keys and unlisted hashes: a failure and no peers.
    for (prefix, ih, reason) in [
        (
            "/0123456789abcdefghijklmnopqrstuv".to_string(),
            IH,
            "unknown passkey",
        ),
        ("/short".to_string(), IH, "unknown passkey"),
        (
            String::new(),
            IH,
            "passkey required: use your personal announce URL",
        ),
        (format!("/{alice}"), OTHER, "unregistered torrent"),
    ] {
        let r = announce(http, &prefix, ih, 9, 7009, 0, 0, 100, "").await;
        assert_eq!(failure(&r).as_deref(), Some(reason));
        assert!(!r.bencode().contains_key(&b"peers"[..]));
    }
    assert_eq!(s.running.registry().scrape(&InfoHash(OTHER)), None);

    // Over UDP, the key travels as BEP 41 URL data.
    let mut u = UdpClient::new(s.udp_v4()).await;
    let cid = u.connect().await;
    let url = format!("/{bob}/announce");
    let mut a = UdpAnnounce::new(IH, [3; 20], 7003, 100);
    a.url = url.as_bytes();
    let (_, _, peers) = udp_announce_reply(&u.announce_raw(cid, &a).await);
    assert_eq!(peers_v4(&peers).len(), 2);
    let mut a = UdpAnnounce::new(IH, [4; 20], 7004, 100);
    a.url = b"/0123456789abcdefghijklmnopqrstuv/announce";
    assert_eq!(
        udp_error(&u.announce_raw(cid, &a).await).as_deref(),
        Some("unknown passkey")
    );
    a.url = b"";
    assert_eq!(
        udp_error(&u.announce_raw(cid, &a).await).as_deref(),
        Some("passkey required: use your personal announce URL")
    );

    // Scrape: with a key, counts; without one, the hash stays hidden.
    let r = get(http, &format!("/{alice}/scrape?info_hash={}", enc(&IH))).await;
    let files = r.bencode();
    assert!(failure(&r).is_none());
    assert!(
        matches!(files.get(&b"files"[..]), Some(serde_bencode::value::Value::Dict(d)) if d.len() == 1)
    );
    let r = get(http, &format!("/scrape?info_hash={}", enc(&IH))).await;
    assert!(failure(&r).is_some());

    // The API hands out personal announce URLs.
    let (_, v) = api(
        admin,
        "POST",
        &format!("/api/v1/users/{bob_id}/passkeys"),
        None,
    )
    .await;
    let key = v["passkey"]["key"].as_str().unwrap();
    assert_eq!(
        v["announce_urls"],
        json!([format!("http://tracker.example:6969/{key}/announce")])
    );
    s.running.stop().await;
}

#[tokio::test]
async fn revocation_rotation_disabling_and_expiry_apply_without_restart() {
    let db = db_path("revoke");
    let s = TestServer::start(private_config(Mode::Private, &db)).await;
    let (admin, http) = (s.running.admin_addrs()[0], s.http_v4());
    let (alice_id, alice) = user(admin, "alice").await;
    let (_, bob) = user(admin, "bob").await;
    allow(admin, IH, json!({})).await;
    announce(
        http,
        &format!("/{alice}"),
        IH,
        1,
        7001,
        0,
        0,
        100,
        "started",
    )
    .await;
    let r = announce(http, &format!("/{bob}"), IH, 2, 7002, 0, 0, 100, "started").await;
    assert_eq!(peers_of(&r), vec!["127.0.0.1:7001".parse().unwrap()]);

    // Revoked: refused at once, and alice's peer is no longer handed out.
    let (status, v) = api(admin, "DELETE", &format!("/api/v1/passkeys/{alice}"), None).await;
    assert_eq!((status, v["state"].as_str()), (200, Some("revoked")));
    let r = announce(http, &format!("/{alice}"), IH, 1, 7001, 0, 0, 100, "").await;
    assert_eq!(failure(&r).as_deref(), Some("passkey revoked"));
    let r = announce(http, &format!("/{bob}"), IH, 2, 7002, 0, 0, 100, "").await;
    assert_eq!(peers_of(&r), vec![]);

    // Rotation: the new key works, the old ones stay revoked.
    let (status, v) = api(
        admin,
        "POST",
        &format!("/api/v1/users/{alice_id}/passkeys/rotate"),
        None,
    )
    .await;
    assert_eq!(status, 201);
    let fresh = v["passkey"]["key"].as_str().unwrap().to_string();
    let r = announce(http, &format!("/{fresh}"), IH, 1, 7001, 0, 0, 100, "").await;
    assert_eq!(failure(&r), None);

    // Disabled: every key of the user fails.
    let (status, _) = api(
        admin,
        "PATCH",
        &format!("/api/v1/users/{alice_id}"),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, 200);
    let r = announce(http, &format!("/{fresh}"), IH, 1, 7001, 0, 0, 100, "").await;
    assert_eq!(failure(&r).as_deref(), Some("account disabled"));
    api(
        admin,
        "PATCH",
        &format!("/api/v1/users/{alice_id}"),
        Some(json!({"disabled": false})),
    )
    .await;
    let r = announce(http, &format!("/{fresh}"), IH, 1, 7001, 0, 0, 100, "").await;
    assert_eq!(failure(&r), None);

    // Expiry follows the server clock.
    let expires = i64::from(s.clock.now()) + 60;
    let (_, v) = api(
        admin,
        "POST",
        &format!("/api/v1/users/{alice_id}/passkeys"),
        Some(json!({"expires_at": expires})),
    )
    .await;
    let short = v["passkey"]["key"].as_str().unwrap().to_string();
    let r = announce(http, &format!("/{short}"), IH, 5, 7005, 0, 0, 100, "").await;
    assert_eq!(failure(&r), None);
    s.clock.advance(61);
    let r = announce(http, &format!("/{short}"), IH, 5, 7005, 0, 0, 100, "").await;
    assert_eq!(failure(&r).as_deref(), Some("passkey expired"));

    // Removing a torrent from the allow list refuses it and drops its peers.
    let (status, _) = api(
        admin,
        "DELETE",
        &format!("/api/v1/torrents/{}", InfoHash(IH)),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let r = announce(http, &format!("/{bob}"), IH, 2, 7002, 0, 0, 100, "").await;
    assert_eq!(failure(&r).as_deref(), Some("unregistered torrent"));
    assert_eq!(s.running.registry().scrape(&InfoHash(IH)), None);
    s.running.stop().await;
}

#[tokio::test]
async fn listed_mode_and_client_rules() {
    let db = db_path("listed");
    let s = TestServer::start(private_config(Mode::Listed, &db)).await;
    let (admin, http) = (s.running.admin_addrs()[0], s.http_v4());
    allow(admin, IH, json!({})).await;
    allow(admin, OTHER, json!({ "private": true })).await;
    // Listed: no key needed for an ordinary listed torrent; unlisted refused.
    let r = announce(http, "", IH, 1, 7001, 0, 0, 100, "").await;
    assert_eq!(failure(&r), None);
    let r = announce(http, "", [0x33; 20], 1, 7001, 0, 0, 100, "").await;
    assert_eq!(failure(&r).as_deref(), Some("unregistered torrent"));
    // A torrent flagged private needs a key even in listed mode.
    let r = announce(http, "", OTHER, 1, 7001, 0, 0, 100, "").await;
    assert_eq!(
        failure(&r).as_deref(),
        Some("passkey required: use your personal announce URL")
    );
    let (_, key) = user(admin, "carol").await;
    let r = announce(http, &format!("/{key}"), OTHER, 1, 7001, 0, 0, 100, "").await;
    assert_eq!(failure(&r), None);

    // Client rules on peer_id prefixes. Peer ids here are 20 equal bytes: b'A' = 0x41.
    let (status, v) = api(
        admin,
        "PUT",
        "/api/v1/clients/AAAA",
        Some(json!({"action": "deny", "note": "broken"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let r = announce(http, "", IH, b'A', 7010, 0, 0, 100, "").await;
    assert_eq!(failure(&r).as_deref(), Some("client not allowed"));
    let r = announce(http, "", IH, b'B', 7011, 0, 0, 100, "").await;
    assert_eq!(failure(&r), None);
    // Once an allow rule exists, only matching clients may announce.
    api(
        admin,
        "PUT",
        "/api/v1/clients/CC",
        Some(json!({"action": "allow"})),
    )
    .await;
    let r = announce(http, "", IH, b'B', 7011, 0, 0, 100, "").await;
    assert_eq!(failure(&r).as_deref(), Some("client not allowed"));
    let r = announce(http, "", IH, b'C', 7012, 0, 0, 100, "").await;
    assert_eq!(failure(&r), None);
    let (status, rules) = api(admin, "GET", "/api/v1/clients", None).await;
    assert_eq!((status, rules.as_array().map(Vec::len)), (200, Some(2)));
    let (status, _) = api(admin, "DELETE", "/api/v1/clients/CC", None).await;
    assert_eq!(status, 204);
    let r = announce(http, "", IH, b'B', 7011, 0, 0, 100, "").await;
    assert_eq!(failure(&r), None);
    s.running.stop().await;
}

#[tokio::test]
async fn accounting_accumulates_applies_multipliers_and_survives_a_clean_restart() {
    let db = db_path("accounting");
    let config = private_config(Mode::Private, &db);
    let s = TestServer::start(config.clone()).await;
    let (admin, http) = (s.running.admin_addrs()[0], s.http_v4());
    let (alice_id, alice) = user(admin, "alice").await;
    allow(admin, IH, json!({ "upload_multiplier": 2.0 })).await;
    allow(admin, OTHER, json!({ "download_multiplier": 0.0 })).await;
    let k = format!("/{alice}");

    // Several announces: the deltas add up; the first sighting is only a baseline.
    announce(http, &k, IH, 1, 7001, 0, 0, 1000, "started").await;
    s.clock.advance(60);
    announce(http, &k, IH, 1, 7001, 100, 400, 600, "").await;
    s.clock.advance(60);
    announce(http, &k, IH, 1, 7001, 300, 1000, 0, "completed").await;
    s.clock.advance(100);
    announce(http, &k, IH, 1, 7001, 500, 1000, 0, "").await;
    // Freeleech: downloads are not credited, but the raw figures are kept.
    announce(http, &k, OTHER, 1, 7001, 0, 0, 1000, "started").await;
    s.clock.advance(10);
    announce(http, &k, OTHER, 1, 7001, 0, 700, 300, "stopped").await;

    let t = totals(admin, alice_id).await;
    assert_eq!(t["raw_uploaded"], 500);
    assert_eq!(t["uploaded"], 1000, "upload multiplier 2");
    assert_eq!(t["raw_downloaded"], 1700);
    assert_eq!(t["downloaded"], 1000, "freeleech download not credited");
    assert_eq!(t["completed"], 1);
    assert_eq!(t["seed_secs"], 100);
    let (_, tor) = api(
        admin,
        "GET",
        &format!("/api/v1/torrents/{}", InfoHash(IH)),
        None,
    )
    .await;
    assert_eq!(tor["totals"]["raw_uploaded"], 500);
    assert_eq!(tor["swarm"]["seeders"], 1);
    assert_eq!(tor["users"][0]["name"], "alice");

    // More traffic, then a clean stop: nothing pending may be lost.
    s.clock.advance(30);
    announce(http, &k, IH, 1, 7001, 900, 1000, 0, "").await;
    s.running.stop().await;

    let s = TestServer::start(config).await;
    let (admin, http) = (s.running.admin_addrs()[0], s.http_v4());
    let t = totals(admin, alice_id).await;
    assert_eq!(t["raw_uploaded"], 900);
    assert_eq!(t["uploaded"], 1800);
    // 100 s, then 40 s (the clock moved 10 + 30 s between this torrent's announces).
    assert_eq!(t["seed_secs"], 140);
    // The session's baseline survived too: the next delta continues from it.
    s.clock.advance(30);
    let r = announce(http, &k, IH, 1, 7001, 1000, 1000, 0, "").await;
    assert_eq!(failure(&r), None);
    let t = totals(admin, alice_id).await;
    assert_eq!(t["raw_uploaded"], 1000);
    s.running.stop().await;
}

#[tokio::test]
async fn private_torrents_never_reach_the_dht_but_listed_ones_do() {
    let db = db_path("dht");
    let s = TestServer::start(private_config(Mode::Listed, &db)).await;
    let (admin, http) = (s.running.admin_addrs()[0], s.http_v4());
    allow(admin, IH, json!({})).await;
    allow(admin, OTHER, json!({ "private": true })).await;
    let (_, key) = user(admin, "dave").await;
    announce(http, "", IH, 1, 7001, 0, 0, 100, "").await;
    announce(http, &format!("/{key}"), OTHER, 1, 7002, 0, 0, 100, "").await;

    let mut k = Krpc::new(s.dht_v4()).await;
    let (values, _) = k.get_peers(IH).await;
    assert_eq!(
        values,
        vec!["127.0.0.1:7001".parse().unwrap()],
        "a public listed torrent is shared"
    );
    let (values, token) = k.get_peers(OTHER).await;
    assert!(values.is_empty(), "private peers leaked: {values:?}");
    let reply = k
        .query(Method::AnnouncePeer {
            info_hash: InfoHash(OTHER),
            port: 7003,
            implied_port: false,
            token: &token,
            seed: false,
        })
        .await;
    assert!(matches!(
        parse_message(&reply).unwrap().body,
        Body::Response(_) | Body::Error { .. }
    ));
    let st = s.running.registry().scrape(&InfoHash(OTHER)).unwrap();
    assert_eq!(
        st.complete + st.incomplete,
        1,
        "the DHT stored nothing for a private torrent"
    );

    // Making a torrent private later purges what the DHT put into its swarm.
    let (_, token) = k.get_peers([0x44; 20]).await;
    k.query(Method::AnnouncePeer {
        info_hash: InfoHash([0x44; 20]),
        port: 7004,
        implied_port: false,
        token: &token,
        seed: false,
    })
    .await;
    assert!(s.running.registry().scrape(&InfoHash([0x44; 20])).is_some());
    allow(admin, [0x44; 20], json!({ "private": true })).await;
    assert_eq!(s.running.registry().scrape(&InfoHash([0x44; 20])), None);
    let (values, _) = k.get_peers([0x44; 20]).await;
    assert!(values.is_empty());
    s.running.stop().await;
}

#[tokio::test]
async fn metrics_include_the_access_policy() {
    let db = db_path("metrics");
    let s = TestServer::start(private_config(Mode::Private, &db)).await;
    let (admin, http) = (s.running.admin_addrs()[0], s.http_v4());
    allow(admin, IH, json!({})).await;
    announce(http, "/nope", IH, 1, 7001, 0, 0, 100, "").await;
    let (status, v) = api(admin, "POST", "/api/v1/flush", None).await;
    assert_eq!(status, 200, "{v}");
    let text = get(admin, "/metrics").await.text();
    for needle in [
        "swarmd_private_denied_total{reason=\"unknown_key\"} 1",
        "swarmd_private_flushes_total{result=\"ok\"}",
        "swarmd_private_last_flush_timestamp_seconds",
        "swarmd_private_torrents 1",
    ] {
        assert!(text.contains(needle), "missing {needle}");
    }
    let (_, stats) = api(admin, "GET", "/api/v1/stats", None).await;
    assert_eq!(stats["mode"], "private");
    assert_eq!(stats["access"]["torrents"], 1);
    s.running.stop().await;
}
