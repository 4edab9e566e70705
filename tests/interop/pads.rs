//! Interop of BEP 47 pad files with libtorrent 2.0 (Debian's python3-libtorrent, run with
//! `/usr/bin/python3`), through our HTTP tracker on 127.0.0.1 (system clock).
//!
//! libtorrent makes the torrents, so they carry its pad files (`attr` `p`, paths `.pad/N`): a
//! v1-only torrent with canonical file order and pads, and libtorrent's default hybrid (v1 + v2)
//! torrent. For each: a client-core [`Torrent`] seeds and libtorrent downloads to 100% (before
//! pad files were virtual, it stalled at 99.8%: we could not serve the pad bytes), and
//! libtorrent seeds and client-core downloads. The real files must hash the same, and no pad
//! file may appear on our disk. `scripts/install-deps.sh` installs python3-libtorrent.

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::transfer::{
    final_report, finish, hashes, http_url, require_libtorrent, server, session_config, tracked,
    until, write_files, LtSeeder, TempDir, PYTHON,
};
use swarmd_client_core::session::Torrent;
use swarmd_client_core::Metainfo;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/libtorrent_pads.py"
);
const DEADLINE: Duration = Duration::from_secs(60);
/// Piece length of the test torrents: small, so there are many pads and pieces.
const PIECE_LEN: u32 = 32 << 10;

/// Which kind of torrent libtorrent makes (the helper's FLAVOR).
#[derive(Debug, Clone, Copy)]
enum Flavor {
    /// v1 only, canonical file order, pad files.
    V1,
    /// libtorrent 2.0's default: v1 + v2, pad files always.
    Hybrid,
}

impl Flavor {
    fn arg(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::Hybrid => "hybrid",
        }
    }
}

/// Writes the folder `root/padded` (files of lengths that are no multiple of the piece length,
/// one in a subfolder, one of 3 bytes) and has libtorrent make its `.torrent` naming `url`;
/// returns the torrent's bytes and metainfo. Asserts the torrent has pad files.
fn make_torrent(root: &Path, url: &str, flavor: Flavor) -> (Vec<u8>, Metainfo) {
    let dir = root.join("padded");
    write_files(
        &dir,
        &[
            ("first.bin", 1_234_567),
            ("second.bin", 345_678),
            ("sub/third.bin", 98_765),
            ("tiny.bin", 3),
        ],
        1,
    );
    let path = root.join("padded.torrent");
    let out = Command::new(PYTHON)
        .arg(SCRIPT)
        .arg("make")
        .arg(&dir)
        .arg(&path)
        .arg(url)
        .arg(PIECE_LEN.to_string())
        .arg(flavor.arg())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "libtorrent could not make the torrent: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no report from libtorrent ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let bytes = std::fs::read(&path).unwrap();
    let meta = Metainfo::from_bytes(&bytes).unwrap();
    let pads = meta.files().iter().filter(|f| f.is_pad()).count();
    assert!(pads > 0, "libtorrent made no pad files: {report:#}");
    assert_eq!(report["pads"].as_u64(), Some(pads as u64), "{report:#}");
    assert_eq!(
        report["v2"].as_bool(),
        Some(matches!(flavor, Flavor::Hybrid))
    );
    assert!(meta
        .files()
        .iter()
        .filter(|f| f.is_pad())
        .all(|f| f.path[0] == ".pad"));
    (bytes, meta)
}

/// Bytes of the real (not pad) files.
fn real_bytes(meta: &Metainfo) -> u64 {
    meta.files()
        .iter()
        .filter(|f| !f.is_pad())
        .map(|f| f.length)
        .sum()
}

/// Every path below `dir`, relative to it.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            if p.is_dir() {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A client-core torrent seeds a libtorrent-made padded torrent through our tracker;
/// libtorrent downloads it to 100%.
async fn swarmd_seeds_libtorrent_downloads(flavor: Flavor, tag: &str) {
    require_libtorrent();
    let srv = server(5).await;
    let url = http_url(&srv);
    let work = TempDir::new(tag);
    let seed_root = work.0.join("seed");
    let (torrent, meta) = make_torrent(&seed_root, &url, flavor);
    let want = hashes(&meta, &seed_root);

    let seeder = Torrent::start(session_config(&torrent, &seed_root, true))
        .await
        .unwrap();
    tokio::time::timeout(DEADLINE, seeder.wait_complete())
        .await
        .expect("the seeder checks its files in time")
        .unwrap();
    let ih = meta.info_hash();
    until(DEADLINE, "our seeder's announce", || tracked(&srv, ih) == 1).await;

    let lt_dir = work.0.join("lt");
    std::fs::create_dir_all(&lt_dir).unwrap();
    let lt = Command::new(PYTHON)
        .arg(SCRIPT)
        .arg("download")
        .arg(seed_root.join("padded.torrent"))
        .arg(&lt_dir)
        .arg(&url)
        .arg(DEADLINE.as_secs().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish(
        DEADLINE + Duration::from_secs(10),
        lt,
        "libtorrent download",
    )
    .await;
    let report = final_report(&out);
    assert_eq!(
        report["ok"], true,
        "libtorrent did not complete: {report:#}"
    );
    assert_eq!(report["progress"].as_f64(), Some(1.0), "{report:#}");
    assert_eq!(report["hash_failures"].as_u64(), Some(0), "{report:#}");
    assert!(out.status.success());
    assert_eq!(hashes(&meta, &lt_dir), want, "libtorrent's files differ");

    let stats = seeder.stop().await.unwrap();
    assert!(
        stats.uploaded >= real_bytes(&meta),
        "uploaded {} of {} bytes",
        stats.uploaded,
        real_bytes(&meta)
    );
    // The seed folder still holds only the real files: no pad was ever created.
    assert!(!seed_root.join("padded/.pad").exists());
}

/// libtorrent seeds a padded torrent it made; a client-core torrent downloads it through our
/// tracker without writing a pad file.
async fn libtorrent_seeds_swarmd_downloads(flavor: Flavor, tag: &str) {
    require_libtorrent();
    let srv = server(5).await;
    let url = http_url(&srv);
    let work = TempDir::new(tag);
    let seed_root = work.0.join("seed");
    let (torrent, meta) = make_torrent(&seed_root, &url, flavor);
    let want = hashes(&meta, &seed_root);

    let torrent_path = seed_root.join("padded.torrent");
    let mut lt = LtSeeder::start(SCRIPT, &torrent_path, &seed_root, &url).await;
    let ih = meta.info_hash();
    until(DEADLINE, "libtorrent's announce", || tracked(&srv, ih) >= 1).await;

    let out_dir = work.0.join("out");
    let leecher = Torrent::start(session_config(&torrent, &out_dir, false))
        .await
        .unwrap();
    tokio::time::timeout(DEADLINE, leecher.wait_complete())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "client-core did not complete in time: {:?}",
                leecher.stats()
            )
        })
        .unwrap();
    // stop() syncs the files.
    let stats = leecher.stop().await.unwrap();
    assert!(stats.downloaded >= real_bytes(&meta), "{stats:?}");
    assert_eq!(stats.hash_failures, 0, "{stats:?}");
    assert_eq!(hashes(&meta, &out_dir), want, "downloaded files differ");
    let on_disk = tree(&out_dir);
    assert!(
        on_disk
            .iter()
            .all(|p| !p.components().any(|c| c.as_os_str() == ".pad")),
        "a pad file reached the disk: {on_disk:?}"
    );
    let real = meta.files().iter().filter(|f| !f.is_pad()).count();
    assert_eq!(
        on_disk.iter().filter(|p| out_dir.join(p).is_file()).count(),
        real,
        "{on_disk:?}"
    );

    let report = lt.stop().await;
    assert!(
        report["uploaded"].as_u64().unwrap() >= real_bytes(&meta),
        "libtorrent uploaded less than the files: {report:#}"
    );
    assert!(lt.wait().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarmd_seeds_v1_padded_torrent_to_libtorrent() {
    swarmd_seeds_libtorrent_downloads(Flavor::V1, "seed-v1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarmd_seeds_hybrid_padded_torrent_to_libtorrent() {
    swarmd_seeds_libtorrent_downloads(Flavor::Hybrid, "seed-hybrid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_seeds_v1_padded_torrent_to_swarmd() {
    libtorrent_seeds_swarmd_downloads(Flavor::V1, "leech-v1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_seeds_hybrid_padded_torrent_to_swarmd() {
    libtorrent_seeds_swarmd_downloads(Flavor::Hybrid, "leech-hybrid").await;
}
