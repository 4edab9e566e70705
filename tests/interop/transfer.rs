//! Interop of real transfers through our tracker on 127.0.0.1 (system clock): Debian's
//! python3-libtorrent (run with `/usr/bin/python3`) seeds and the `swarmd download` binary
//! fetches; the `swarmd seed` binary seeds and `aria2c` fetches. The files must hash the same.
//! Torrents are v1-only, made by client-core's `create` (no pad files).
//! `scripts/install-deps.sh` installs python3-libtorrent and aria2.
//!
//! The ignored `throughput_256_mib_swarmd_beside_libtorrent` prints the seconds a 256 MiB file
//! takes over loopback, swarmd -> swarmd and libtorrent -> libtorrent in the same run:
//! `cargo test --release --locked --test interop_transfer -- --ignored --nocapture`.

#[path = "../common/mod.rs"]
mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::served::BIN;
use common::transfer::{
    create_torrent, final_report, finish, hashes, http_url, pattern, rel_path, require_libtorrent,
    server, session_config, signal, tracked, until, write_files, LtSeeder, Reaped, TempDir, PYTHON,
};
use swarmd_client_core::session::Torrent;
use swarmd_client_core::Metainfo;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/libtorrent_transfer.py"
);
const DEADLINE: Duration = Duration::from_secs(60);

fn require_aria2() {
    match Command::new("aria2c").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "aria2c is required for this test (scripts/install-deps.sh installs aria2): {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => {
            panic!("aria2c is required for this test (scripts/install-deps.sh installs aria2): {e}")
        }
    }
}

/// Writes a two-file folder `root/NAME` (the files meet inside a piece) and its v1 `.torrent`
/// naming `url`; returns the torrent's path and metainfo.
fn make_torrent(root: &Path, name: &str, url: &str) -> (PathBuf, Metainfo) {
    let dir = root.join(name);
    write_files(
        &dir,
        &[("first.bin", 1_234_567), ("second.bin", 2_345_678)],
        1,
    );
    let (torrent, meta) = create_torrent(&dir, Some(64 << 10), vec![vec![url.to_owned()]]);
    let path = root.join(format!("{name}.torrent"));
    std::fs::write(&path, &torrent).unwrap();
    (path, meta)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_seeds_and_swarmd_download_fetches_through_our_tracker() {
    require_libtorrent();
    let srv = server(5).await;
    let work = TempDir::new("lt-seed");
    let seed_root = work.0.join("seed");
    let (torrent, meta) = make_torrent(&seed_root, "ltpayload", &http_url(&srv));
    let want = hashes(&meta, &seed_root);

    let mut lt = LtSeeder::start(SCRIPT, &torrent, &seed_root, &http_url(&srv)).await;
    assert_eq!(tracked(&srv, meta.info_hash()), 1);

    // The real binary, with the torrent's own tracker (ours).
    let out_dir = work.0.join("out");
    let started = Instant::now();
    let dl = Command::new(BIN)
        .arg("download")
        .arg(&torrent)
        .arg("-o")
        .arg(&out_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish(DEADLINE, dl, "swarmd download").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "swarmd download failed: {stderr}");
    eprintln!(
        "libtorrent -> swarmd download: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(hashes(&meta, &out_dir), want, "downloaded files differ");
    // swarmd announced `stopped`: only libtorrent is left at the tracker.
    until(DEADLINE, "swarmd's stopped announce", || {
        tracked(&srv, meta.info_hash()) == 1
    })
    .await;

    let report = lt.stop().await;
    assert!(
        report["uploaded"].as_u64().unwrap() >= meta.total_length(),
        "libtorrent uploaded less than the torrent: {report:#}"
    );
    assert!(lt.wait().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarmd_seed_and_aria2_fetches_through_our_tracker() {
    require_aria2();
    let srv = server(5).await;
    let work = TempDir::new("aria2");
    let seed_root = work.0.join("seed");
    let (torrent, meta) = make_torrent(&seed_root, "ariapayload", &http_url(&srv));
    let want = hashes(&meta, &seed_root);

    let seeder = Command::new(BIN)
        .arg("seed")
        .arg(&torrent)
        .arg("--data")
        .arg(&seed_root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = seeder.id();
    let mut seeder = Reaped(Some(seeder));
    let ih = meta.info_hash();
    until(DEADLINE, "swarmd seed's started announce", || {
        tracked(&srv, ih) == 1
    })
    .await;

    let out_dir = work.0.join("out");
    let started = Instant::now();
    let aria = Command::new("aria2c")
        .args([
            "--interface=127.0.0.1",
            "--disable-ipv6=true",
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--seed-time=0",
            "--bt-stop-timeout=60",
            "--file-allocation=none",
            "--summary-interval=0",
            "--console-log-level=warn",
        ])
        .arg(format!("--dir={}", out_dir.display()))
        .arg(&torrent)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish(DEADLINE, aria, "aria2c").await;
    assert!(
        out.status.success(),
        "aria2c failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "swarmd seed -> aria2c: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(hashes(&meta, &out_dir), want, "aria2's files differ");

    // Ctrl-C: swarmd seed announces `stopped` and exits 130.
    signal(pid, "INT");
    until(DEADLINE, "swarmd seed's stopped announce", || {
        tracked(&srv, ih) == 0
    })
    .await;
    let out = finish(DEADLINE, seeder.0.take().unwrap(), "swarmd seed").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "stderr: {stderr}");
    let uploaded: u64 = stderr
        .split("; up ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary line: {stderr}"));
    assert!(
        uploaded >= meta.total_length(),
        "swarmd seed uploaded {uploaded}: {stderr}"
    );
}

/// Seconds for a 256 MiB file over loopback, swarmd -> swarmd (client-core sessions, files on
/// disk) beside libtorrent -> libtorrent (one python process, `pair` mode of the script, tuned
/// for throughput: see `PERF` there), measured the same way on both sides: the seeder has
/// checked its data and announced to our HTTP tracker, the leecher starts with the torrent
/// (the tracker gives it the seeder), and the clock runs from the leecher's start to its
/// completion, then on to an fsync of each downloaded file. Prints both figures, their ratio
/// and each leecher's progress trace. Both sides share the machine's two cores with whatever
/// else runs: compare figures from a quiet machine (`vmstat 1` idle before the run).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "throughput figure: 256 MiB on disk; run with --release --ignored --nocapture"]
async fn throughput_256_mib_swarmd_beside_libtorrent() {
    require_libtorrent();
    let srv = server(5).await;
    let url = http_url(&srv);
    let work = TempDir::new("throughput");
    let seed_root = work.0.join("seed");
    let dir = seed_root.join("big");
    std::fs::create_dir_all(&dir).unwrap();
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("big.bin")).unwrap());
        for i in 0..256u32 {
            f.write_all(&pattern(1 << 20, i.wrapping_mul(7919)))
                .unwrap();
        }
    }
    let (torrent, meta) = create_torrent(&dir, None, vec![vec![url.clone()]]);
    let ih = meta.info_hash();
    let tpath = work.0.join("big.torrent");
    std::fs::write(&tpath, &torrent).unwrap();
    let want = hashes(&meta, &seed_root);

    // swarmd -> swarmd, both announcing to the torrent's tracker (ours).
    let cfg = |dir: &Path, seed: bool| session_config(&torrent, dir, seed);
    let seeder = Torrent::start(cfg(&seed_root, true)).await.unwrap();
    seeder.wait_complete().await.unwrap();
    until(DEADLINE, "the swarmd seeder's announce", || {
        tracked(&srv, ih) == 1
    })
    .await;
    let sw_dir = work.0.join("sw");
    let start = Instant::now();
    let leecher = Torrent::start(cfg(&sw_dir, false)).await.unwrap();
    let mut trace = Vec::new();
    {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let done = leecher.wait_complete();
        tokio::pin!(done);
        loop {
            tokio::select! {
                r = &mut done => break r.unwrap(),
                _ = tick.tick() => {
                    let t = start.elapsed().as_secs_f64();
                    assert!(t < 600.0, "swarmd leecher not done in 600 s: {trace:?}");
                    trace.push((t, leecher.stats().progress().percent));
                }
            }
        }
    }
    let swarmd_secs = start.elapsed().as_secs_f64();
    fsync_files(&meta, &sw_dir);
    let swarmd_synced = start.elapsed().as_secs_f64();
    leecher.stop().await.unwrap();
    seeder.stop().await.unwrap();
    assert_eq!(hashes(&meta, &sw_dir), want);
    // Both announced `stopped`: libtorrent's leecher will be given its own seeder only.
    until(DEADLINE, "the swarmd sessions' stopped announces", || {
        tracked(&srv, ih) == 0
    })
    .await;

    // libtorrent -> libtorrent, through the same tracker, same torrent.
    let lt_dir = work.0.join("lt");
    std::fs::create_dir_all(&lt_dir).unwrap();
    let child = Command::new(PYTHON)
        .arg(SCRIPT)
        .arg("pair")
        .arg(&tpath)
        .arg(&seed_root)
        .arg(&lt_dir)
        .arg(&url)
        .arg("50")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish(DEADLINE, child, "libtorrent pair").await;
    let report = final_report(&out);
    assert_eq!(report["ok"], true, "{report:#}");
    let lt_secs = report["seconds"].as_f64().unwrap();
    let lt_synced = report["synced"].as_f64().unwrap();
    assert_eq!(hashes(&meta, &lt_dir), want);
    let trace: Vec<String> = trace
        .iter()
        .map(|(t, p)| format!("{t:.2} s {p:.1}%"))
        .collect();
    println!("swarmd leecher progress: {}", trace.join(", "));
    println!(
        "libtorrent leecher: dialled the seeder over {} after {:.3} s; progress {}",
        report["transport"].as_str().unwrap_or("?"),
        report["connect"].as_f64().unwrap_or(f64::NAN),
        report["trace"]
    );
    println!(
        "256 MiB over loopback ({} pieces of {} KiB), leecher start to complete: \
         swarmd -> swarmd {swarmd_secs:.2} s ({swarmd_synced:.2} s with the file fsynced), \
         libtorrent -> libtorrent {lt_secs:.2} s ({lt_synced:.2} s fsynced); \
         ratio swarmd/libtorrent {:.3} ({:.3} fsynced)",
        meta.piece_count(),
        meta.piece_length() >> 10,
        swarmd_secs / lt_secs,
        swarmd_synced / lt_synced,
    );
}

/// fsyncs each file of the torrent under `root`, as the libtorrent script does after its
/// leecher completes.
fn fsync_files(meta: &Metainfo, root: &Path) {
    for f in meta.files() {
        let p = root.join(rel_path(meta, f));
        std::fs::File::open(&p)
            .and_then(|f| f.sync_all())
            .unwrap_or_else(|e| panic!("fsync {}: {e}", p.display()));
    }
}
