//! Real transfers end to end, in one process over loopback (port 0, the system clock): our
//! servers (`swarmd::start`) bring peers together and client-core sessions move a multi-file
//! torrent whose pieces cross file boundaries: 1 seeder and 5 leechers through our HTTP
//! tracker, through our UDP tracker, and through our DHT node only. Then the `swarmd download`
//! and `swarmd seed` binaries: a download through our tracker, a clean stop on SIGINT/SIGTERM
//! (the tracker hears `stopped`), and `seed` refusing data that does not match.

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::served::BIN;
use common::transfer::{
    assert_same_files, create_torrent, files_across_pieces, finish, http_url, server,
    session_config, signal, tracked, udp_url, until, v4, write_files, TempDir,
};
use swarmd::Running;
use swarmd_client_core::session::{Torrent, TorrentConfig, TorrentHandle};
use swarmd_client_core::Metainfo;

const DEADLINE: Duration = Duration::from_secs(15);

/// Sizes chosen so that most 32 KiB pieces span two or three files.
const FILES: &[(&str, usize)] = &[
    ("a/one.bin", 300_001),
    ("a/tiny", 1),
    ("a/empty", 0),
    ("b/two.bin", 777_777),
    ("b/c/three.bin", 65_536),
    ("four.bin", 1_900_003),
];
const PIECE: u32 = 32 << 10;

/// A multi-file torrent's content on disk under `root/multi`, and its `.torrent`.
struct Content {
    _root: TempDir,
    dir: PathBuf,
    torrent: Vec<u8>,
    meta: Metainfo,
}

fn content(trackers: Vec<Vec<String>>) -> Content {
    let root = TempDir::new("seed");
    let dir = root.0.join("multi");
    write_files(&dir, FILES, 0);
    let (torrent, meta) = create_torrent(&dir, Some(PIECE), trackers);
    // The layout really has pieces across file boundaries.
    assert!(files_across_pieces(&meta) >= 3 && meta.files().len() == FILES.len());
    Content {
        dir: root.0.clone(),
        _root: root,
        torrent,
        meta,
    }
}

#[derive(Clone, Copy, Debug)]
enum Via {
    Http,
    Udp,
    Dht,
}

fn session(c: &Content, dir: &Path, via: Via, srv: &Running, seed: bool) -> TorrentConfig {
    let mut t = session_config(&c.torrent, dir, seed);
    t.announce.retry = Duration::from_millis(300);
    t.announce.max_retry = Duration::from_secs(1);
    t.announce.min_interval = Duration::from_secs(1);
    t.announce.trackers = Some(match via {
        Via::Http => vec![vec![http_url(srv)]],
        Via::Udp => vec![vec![udp_url(srv)]],
        Via::Dht => Vec::new(),
    });
    if let Via::Dht = via {
        t.announce.dht_nodes = vec![v4(srv.dht_addrs())];
    }
    t
}

async fn complete(h: &TorrentHandle, who: &str) {
    match tokio::time::timeout(DEADLINE, h.wait_complete()).await {
        Ok(r) => r.unwrap_or_else(|e| panic!("{who}: {e}")),
        Err(_) => panic!(
            "{who} not complete in time: {:?}\nclosed: {:?}",
            h.stats(),
            h.recent_closes()
        ),
    }
}

/// One seeder and five leechers meet only through `via` and all finish with the seeder's bytes.
async fn swarm_through(via: Via) {
    let started = Instant::now();
    let srv = server(2).await;
    let c = content(Vec::new());
    let seeder = Torrent::start(session(&c, &c.dir, via, &srv, true))
        .await
        .unwrap();
    tokio::time::timeout(DEADLINE, seeder.wait_complete())
        .await
        .expect("seeder rechecks in time")
        .expect("seeder holds every piece");
    let dirs: Vec<TempDir> = (0..5).map(|i| TempDir::new(&format!("l{i}"))).collect();
    let mut leechers = Vec::new();
    for d in &dirs {
        leechers.push(
            Torrent::start(session(&c, &d.0, via, &srv, false))
                .await
                .unwrap(),
        );
    }
    for (i, l) in leechers.iter().enumerate() {
        complete(l, &format!("leecher {i} via {via:?}")).await;
    }
    for (i, l) in leechers.into_iter().enumerate() {
        let s = l.stop().await.unwrap();
        assert_eq!(s.pieces_have, c.meta.piece_count() as u32);
        assert_eq!(s.hash_failures, 0);
        assert_same_files(&c.meta, &c.dir, &dirs[i].0, &format!("leecher {i}"));
    }
    let s = seeder.stop().await.unwrap();
    assert!(s.uploaded > 0, "the seeder uploaded nothing: {s:?}");
    eprintln!(
        "swarm via {via:?}: {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_seeder_five_leechers_through_our_http_tracker() {
    swarm_through(Via::Http).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_seeder_five_leechers_through_our_udp_tracker() {
    swarm_through(Via::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_seeder_five_leechers_through_our_dht_node_only() {
    swarm_through(Via::Dht).await;
}

/// Runs the binary to completion (killed at the deadline).
async fn run_bin(args: Vec<String>) -> std::process::Output {
    let child = Command::new(BIN)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish(DEADLINE, child, &format!("swarmd {args:?}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_binary_fetches_through_our_tracker_and_exits_0() {
    let srv = server(2).await;
    let url = http_url(&srv);
    // The torrent names our tracker: the binary uses the torrent's own trackers by default.
    let c = content(vec![vec![url.clone()]]);
    let seeder = Torrent::start(session(&c, &c.dir, Via::Http, &srv, true))
        .await
        .unwrap();
    seeder.wait_complete().await.unwrap();
    let work = TempDir::new("cli");
    let file = work.0.join("multi.torrent");
    std::fs::write(&file, &c.torrent).unwrap();
    let out_dir = work.0.join("out");
    let started = Instant::now();
    let out = run_bin(vec![
        "download".into(),
        file.display().to_string(),
        "-o".into(),
        out_dir.display().to_string(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "download failed: {stderr}");
    assert!(
        stderr.contains("downloaded multi: 100.0%"),
        "no summary line: {stderr}"
    );
    assert_same_files(&c.meta, &c.dir, &out_dir, "swarmd download");
    // It announced `stopped` on the way out: only the seeder is left at the tracker.
    let ih = c.meta.info_hash();
    until(DEADLINE, "the download's stopped announce", || {
        tracked(&srv, ih) == 1
    })
    .await;
    eprintln!("swarmd download: {:.2} s", started.elapsed().as_secs_f64());
    seeder.stop().await.unwrap();
}

/// `swarmd download` with no one to download from, stopped by `sig`: exits `code`, and the
/// tracker hears `stopped`.
async fn download_stops_on(sig: &str, code: i32) {
    let srv = server(2).await;
    let url = http_url(&srv);
    let c = content(Vec::new());
    let work = TempDir::new("sig");
    let file = work.0.join("multi.torrent");
    std::fs::write(&file, &c.torrent).unwrap();
    let child = Command::new(BIN)
        .arg("download")
        .arg(&file)
        .arg("-o")
        .arg(work.0.join("out"))
        .args(["--tracker", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ih = c.meta.info_hash();
    until(DEADLINE, "the download's started announce", || {
        tracked(&srv, ih) == 1
    })
    .await;
    signal(child.id(), sig);
    until(DEADLINE, "the download's stopped announce", || {
        tracked(&srv, ih) == 0
    })
    .await;
    let out = finish(DEADLINE, child, "swarmd download").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(stderr.contains("interrupted multi"), "stderr: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_binary_stops_cleanly_on_sigint() {
    download_stops_on("INT", 130).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_binary_stops_cleanly_on_sigterm() {
    download_stops_on("TERM", 143).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_binary_refuses_data_that_does_not_match() {
    let c = content(Vec::new());
    // One byte changed in the middle of the largest file.
    let victim = c.dir.join("multi/four.bin");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[1_000_000] ^= 0xff;
    std::fs::write(&victim, &bytes).unwrap();
    let file = c.dir.join("multi.torrent");
    std::fs::write(&file, &c.torrent).unwrap();
    let out = run_bin(vec![
        "seed".into(),
        file.display().to_string(),
        "--data".into(),
        c.dir.display().to_string(),
        "--peer".into(),
        "127.0.0.1:9".into(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let pieces = c.meta.piece_count();
    assert!(
        stderr.contains(&format!(
            "does not match the torrent multi: {} of {pieces} pieces verified",
            pieces - 1
        )),
        "stderr: {stderr}"
    );
    // And a missing folder is refused at once.
    let out = run_bin(vec![
        "seed".into(),
        file.display().to_string(),
        "--data".into(),
        c.dir.join("nope").display().to_string(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a folder"));
}
