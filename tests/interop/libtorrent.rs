//! Interop: Debian's python3-libtorrent (run with `/usr/bin/python3`) as a real seeder and a
//! real leecher. They learn each other's address only from our tracker on 127.0.0.1 (over HTTP
//! in one test, over UDP in the other), and the leecher downloads the seeder's file.
//! `scripts/install-deps.sh` installs the package.

#[path = "../common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use swarmd_proto::InfoHash;

const PYTHON: &str = "/usr/bin/python3";

fn libtorrent_available() -> Result<(), String> {
    let out = Command::new(PYTHON)
        .args(["-c", "import libtorrent; print(libtorrent.__version__)"])
        .output()
        .map_err(|e| format!("cannot run {PYTHON}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[derive(Clone, Copy)]
enum Scheme {
    Http,
    Udp,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_peers_find_each_other_through_our_http_tracker() {
    swarm_through(Scheme::Http).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_peers_find_each_other_through_our_udp_tracker() {
    swarm_through(Scheme::Udp).await;
}

async fn swarm_through(scheme: Scheme) {
    if let Err(e) = libtorrent_available() {
        panic!(
            "python3-libtorrent is required for this test (scripts/install-deps.sh installs it): {e}"
        );
    }
    let mut config = test_config();
    config.http.bind = vec!["127.0.0.1:0".parse().unwrap()];
    config.udp.bind = vec!["127.0.0.1:0".parse().unwrap()];
    // libtorrent announces `started` then waits `interval`; keep it short so a retry is quick.
    config.tracker.announce_interval_secs = 5;
    config.tracker.min_announce_interval_secs = 1;
    config.registry.peer_timeout_secs = 60;
    let server = TestServer::start(config).await;
    let url = match scheme {
        Scheme::Http => format!("http://{}/announce", server.http_v4()),
        Scheme::Udp => format!("udp://{}/announce", server.udp_v4()),
    };

    let tag = match scheme {
        Scheme::Http => "http",
        Scheme::Udp => "udp",
    };
    let work = std::env::temp_dir().join(format!("swarmd-lt-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/libtorrent_swarm.py"
    );

    // Watch the registry while libtorrent runs: the most peers and completions seen.
    let registry = server.running.registry().clone();
    let seen: Arc<Mutex<HashMap<InfoHash, (u32, u32)>>> = Arc::default();
    let watcher = {
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut all = Vec::new();
            loop {
                all.clear();
                registry.full_scrape(10, &mut all);
                {
                    let mut seen = seen.lock().unwrap();
                    for (ih, st) in &all {
                        let e = seen.entry(*ih).or_default();
                        e.0 = e.0.max(st.complete + st.incomplete);
                        e.1 = e.1.max(st.downloaded);
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let out = tokio::task::spawn_blocking({
        let work = work.clone();
        move || {
            Command::new(PYTHON)
                .arg(script)
                .arg(&url)
                .arg(&work)
                .arg("60")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    watcher.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| {
            panic!("no report from the script ({e}); stdout:\n{stdout}\nstderr:\n{stderr}")
        });
    assert!(
        out.status.success(),
        "libtorrent did not finish: {report:#}\nstderr:\n{stderr}"
    );

    let seeder = format!("127.0.0.1:{}", report["seeder_port"]);
    let peers: Vec<&str> = report["leecher_peers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        peers.contains(&seeder.as_str()),
        "leecher never saw the seeder {seeder}: {report:#}"
    );
    assert_eq!(report["payload_matches"], true, "{report:#}");
    assert!(report["leecher_tracker_replies"].as_u64().unwrap() >= 1);

    // Our tracker saw both peers, and counted the leecher's completion.
    let ih: InfoHash = report["info_hash"].as_str().unwrap().parse().unwrap();
    let (max_peers, max_downloaded) = seen.lock().unwrap().get(&ih).copied().unwrap_or_default();
    assert_eq!(max_peers, 2, "both peers tracked: {report:#}");
    assert_eq!(max_downloaded, 1, "completed counted once: {report:#}");
    server.running.stop().await;
    let _ = std::fs::remove_dir_all(&work);
}

/// Two libtorrent sessions whose only DHT contact is our node: A announces an info hash (by
/// adding a magnet link), B looks it up with `dht_get_peers` and must find A, and also a peer
/// that announced only to our HTTP tracker: one registry behind every protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_finds_peers_through_our_dht_node() {
    if let Err(e) = libtorrent_available() {
        panic!("python3-libtorrent is required for this test (scripts/install-deps.sh installs it): {e}");
    }
    let server = TestServer::start(test_config()).await;
    let node = server.dht_v4();
    let ih = [0x6c; 20];
    let hex: String = ih.iter().map(|b| format!("{b:02x}")).collect();
    // A peer known only to the HTTP tracker.
    let r = get(server.http_v4(), &announce_url(ih, [9; 20], 6001, 10, "")).await;
    assert_eq!(failure(&r), None);

    let work = std::env::temp_dir().join(format!("swarmd-lt-dht-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/libtorrent_dht.py"
    );
    let out = tokio::task::spawn_blocking({
        let work = work.clone();
        move || {
            Command::new(PYTHON)
                .arg(script)
                .arg(node.to_string())
                .arg(&hex)
                .arg(&work)
                .arg("60")
                .arg("6001")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| {
            panic!("no report from the script ({e}); stdout:\n{stdout}\nstderr:\n{stderr}")
        });
    assert!(
        out.status.success(),
        "libtorrent B did not find the peers: {report:#}\nstderr:\n{stderr}"
    );
    assert_eq!(report["found_a"], true, "{report:#}");
    assert_eq!(
        report["found_expected"],
        serde_json::json!([6001]),
        "{report:#}"
    );

    // A's announce went into the shared registry.
    let a_port = report["a_port"].as_u64().unwrap();
    let mut out = swarmd_swarm::SelectedPeers::default();
    server
        .running
        .registry()
        .sample(&InfoHash(ih), false, 50, &mut out)
        .expect("the swarm exists");
    assert!(
        out.addrs().any(|a| u64::from(a.port()) == a_port),
        "A's announce_peer is in the registry: {report:#}"
    );
    server.running.stop().await;
    let _ = std::fs::remove_dir_all(&work);
}

/// Private mode with real clients: two libtorrent sessions, each announcing with its own user's
/// passkey URL, move a private torrent through our tracker; each user's accounting matches the
/// bytes moved (within one piece). A third session with a wrong passkey gets the tracker's
/// failure reason and never receives a byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_moves_a_private_torrent_and_accounting_matches() {
    if let Err(e) = libtorrent_available() {
        panic!("python3-libtorrent is required for this test (scripts/install-deps.sh installs it): {e}");
    }
    let work = std::env::temp_dir().join(format!("swarmd-lt-private-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let seed_dir = work.join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let payload: Vec<u8> = (0..3 * 1024 * 1024 + 12_345u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(seed_dir.join("payload.bin"), &payload).unwrap();
    const PIECE: u32 = 64 * 1024;
    let torrent = swarmd_client_core::metainfo::create(
        &seed_dir.join("payload.bin"),
        &swarmd_client_core::CreateOptions {
            private: true,
            piece_length: Some(PIECE),
            ..Default::default()
        },
        |_| {},
    )
    .unwrap();
    let info_hash = swarmd_client_core::Metainfo::from_bytes(&torrent)
        .unwrap()
        .info_hash();
    std::fs::write(work.join("t.torrent"), &torrent).unwrap();

    let mut config = test_config();
    config.http.bind = vec!["127.0.0.1:0".parse().unwrap()];
    config.tracker.announce_interval_secs = 5;
    config.tracker.min_announce_interval_secs = 1;
    config.registry.peer_timeout_secs = 60;
    config.access.mode = swarmd_private::Mode::Private;
    config.access.database = work.join("swarmd.db").display().to_string();
    config.admin.token = "interop-admin-token-0123456789".into();
    // The tracker runs on the system clock here: libtorrent's timing is real.
    let server = swarmd::start(config, swarmd::Options::default())
        .await
        .unwrap();
    let http = *server.http_addrs().first().unwrap();
    let p = server.private().unwrap().clone();
    let (seed_user, seed_key) = p.create_user("seeder").unwrap();
    let (leech_user, leech_key) = p.create_user("leecher").unwrap();
    p.allow_torrent(
        info_hash,
        &swarmd_private::TorrentOptions {
            private: true,
            ..Default::default()
        },
    )
    .unwrap();
    let url = |key: &str| format!("http://{http}/{key}/announce");

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/libtorrent_private.py"
    );
    let out = tokio::task::spawn_blocking({
        let (work, seed_dir) = (work.clone(), seed_dir.clone());
        let (s, l) = (url(&seed_key.key), url(&leech_key.key));
        let bad = url("0123456789abcdefghijklmnopqrstuv");
        move || {
            Command::new(PYTHON)
                .arg(script)
                .arg(work.join("t.torrent"))
                .arg(&seed_dir)
                .arg(work.join("leech"))
                .args([&s, &l, &bad, "60"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no report ({e}); stdout:\n{stdout}\nstderr:\n{stderr}"));
    assert!(
        out.status.success(),
        "the private download failed: {report:#}\n{stderr}"
    );
    assert_eq!(report["final_announces"], true, "{report:#}");
    assert_eq!(
        std::fs::read(work.join("leech/payload.bin")).unwrap(),
        payload,
        "payload differs"
    );
    // The intruder was refused with the reason, and got nothing.
    assert_eq!(report["intruder_downloaded"], 0, "{report:#}");
    assert!(
        report["intruder_errors"]
            .to_string()
            .contains("unknown passkey"),
        "{report:#}"
    );

    let moved = payload.len() as u64;
    let seeder = p.user(seed_user.id).unwrap().totals;
    let leecher = p.user(leech_user.id).unwrap().totals;
    let close = |got: u64| got.abs_diff(moved) <= u64::from(PIECE);
    assert!(
        close(seeder.raw_uploaded),
        "seeder uploaded {} of {moved}: {report:#}",
        seeder.raw_uploaded
    );
    assert!(
        close(leecher.raw_downloaded),
        "leecher downloaded {} of {moved}",
        leecher.raw_downloaded
    );
    assert_eq!(leecher.completed, 1);
    assert_eq!(
        (seeder.uploaded, leecher.downloaded),
        (seeder.raw_uploaded, leecher.raw_downloaded)
    );
    server.stop().await;
    let _ = std::fs::remove_dir_all(&work);
}
