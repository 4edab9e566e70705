//! Helpers for the end-to-end transfer tests (client-core sessions, the `swarmd download` and
//! `swarmd seed` binaries, libtorrent and aria2 beside our servers): a server with short
//! announce intervals, tracker URLs, the peers the registry holds, polling with a deadline,
//! child processes waited for off the runtime and killed on drop, temp folders, torrent content
//! with pieces across file boundaries, and the libtorrent helper's JSON lines.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};
use swarmd::Running;
use swarmd_client_core::session::{StorageConfig, TorrentConfig, TorrentSource};
use swarmd_client_core::{CreateOptions, FileEntry, Metainfo};
use swarmd_proto::InfoHash;

use super::test_config;

/// The Python with Debian's python3-libtorrent.
pub const PYTHON: &str = "/usr/bin/python3";

/// Panics with how to install it unless `PYTHON` can import libtorrent.
pub fn require_libtorrent() {
    let out = Command::new(PYTHON)
        .args(["-c", "import libtorrent; print(libtorrent.__version__)"])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "python3-libtorrent is required for this test (scripts/install-deps.sh installs it): {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!(
            "python3-libtorrent is required for this test (scripts/install-deps.sh installs it): cannot run {PYTHON}: {e}"
        ),
    }
}

/// A fresh folder under the temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "swarmd-test-{}-{}-{tag}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    /// `rel` below the folder, as a string (for command lines).
    pub fn path(&self, rel: &str) -> String {
        self.0.join(rel).to_str().unwrap().to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (and reaped) on drop, so a failing test leaves nothing behind.
pub struct Reaped(pub Option<Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits for `child` off the runtime, killing it once `deadline` has passed; its output.
pub async fn finish(deadline: Duration, child: Child, what: &str) -> Output {
    let what = what.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut reaped = Reaped(Some(child));
        let start = Instant::now();
        while reaped.0.as_mut().unwrap().try_wait().unwrap().is_none() {
            if start.elapsed() > deadline {
                let mut c = reaped.0.take().unwrap();
                let _ = c.kill();
                let out = c.wait_with_output().unwrap();
                panic!(
                    "{what} did not finish in time; stdout:\n{}\nstderr:\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        reaped.0.take().unwrap().wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// Sends `sig` (`INT`, `TERM`) to the process `pid`.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid} failed");
}

/// Waits for `cond`, polling, failing once `deadline` has passed.
pub async fn until(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Our servers on 127.0.0.1, port 0 (HTTP and UDP trackers on IPv4 only), announcing every
/// `announce_interval_secs` and accepting announces a second apart.
pub async fn server(announce_interval_secs: u32) -> Running {
    let mut config = test_config();
    config.http.bind = vec!["127.0.0.1:0".parse().unwrap()];
    config.udp.bind = vec!["127.0.0.1:0".parse().unwrap()];
    config.tracker.announce_interval_secs = announce_interval_secs;
    config.tracker.min_announce_interval_secs = 1;
    config.registry.peer_timeout_secs = 60;
    swarmd::start(config, swarmd::Options::default())
        .await
        .expect("server starts")
}

/// The IPv4 one of `addrs`.
pub fn v4(addrs: &[SocketAddr]) -> SocketAddr {
    *addrs.iter().find(|a| a.is_ipv4()).expect("an IPv4 address")
}

/// Our HTTP tracker's announce URL (libtorrent accepts a loopback tracker only with exactly
/// this path).
pub fn http_url(srv: &Running) -> String {
    format!("http://{}/announce", v4(srv.http_addrs()))
}

/// Our UDP tracker's announce URL.
pub fn udp_url(srv: &Running) -> String {
    format!("udp://{}/announce", v4(srv.udp_addrs()))
}

/// Peers (seeders + leechers) our registry holds for `ih`, whichever way they announced.
pub fn tracked(srv: &Running, ih: InfoHash) -> u32 {
    let mut all = Vec::new();
    srv.registry().full_scrape(1000, &mut all);
    all.iter()
        .find(|(h, _)| *h == ih)
        .map_or(0, |(_, s)| s.complete + s.incomplete)
}

/// `len` bytes that differ with `seed`.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// Writes each `(path, len)` of `files` below `dir` (making folders as needed): file `i` holds
/// `pattern(len, seed + i)`.
pub fn write_files(dir: &Path, files: &[(&str, usize)], seed: u32) {
    for (i, (path, len)) in files.iter().enumerate() {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, pattern(*len, seed + i as u32)).unwrap();
    }
}

/// client-core's `.torrent` of the folder `dir` (v1, no pad files), naming `trackers`; its
/// bytes and metainfo.
pub fn create_torrent(
    dir: &Path,
    piece_length: Option<u32>,
    trackers: Vec<Vec<String>>,
) -> (Vec<u8>, Metainfo) {
    let torrent = swarmd_client_core::metainfo::create(
        dir,
        &CreateOptions {
            trackers,
            piece_length,
            ..Default::default()
        },
        |_| {},
    )
    .unwrap();
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    (torrent, meta)
}

/// How many non-empty files of the torrent cross a piece boundary.
pub fn files_across_pieces(meta: &Metainfo) -> usize {
    let piece = meta.piece_length();
    let mut at = 0u64;
    let mut crossing = 0;
    for f in meta.files() {
        let end = at + f.length;
        if f.length > 0 && at / piece != (end - 1) / piece {
            crossing += 1;
        }
        at = end;
    }
    crossing
}

/// Where the torrent puts `f`, relative to the download folder.
pub fn rel_path(meta: &Metainfo, f: &FileEntry) -> PathBuf {
    f.path
        .iter()
        .fold(PathBuf::from(meta.name()), |p, c| p.join(c))
}

/// Every file of the torrent under `out` equals the one under `seed`.
pub fn assert_same_files(meta: &Metainfo, seed: &Path, out: &Path, who: &str) {
    for f in meta.files() {
        let rel = rel_path(meta, f);
        let want = std::fs::read(seed.join(&rel)).unwrap();
        let got = std::fs::read(out.join(&rel))
            .unwrap_or_else(|e| panic!("{who}: {}: {e}", rel.display()));
        assert!(want == got, "{who}: {} differs", rel.display());
    }
}

/// SHA-1 of each real (not pad) file of the torrent under `root`, in order.
pub fn hashes(meta: &Metainfo, root: &Path) -> Vec<String> {
    meta.files()
        .iter()
        .filter(|f| !f.is_pad())
        .map(|f| {
            let p = root.join(rel_path(meta, f));
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            format!("{:x}", Sha1::digest(&bytes))
        })
        .collect()
}

/// A client-core session of `torrent` with its files under `dir`, listening on 127.0.0.1.
pub fn session_config(torrent: &[u8], dir: &Path, seed: bool) -> TorrentConfig {
    let mut c = TorrentConfig::new(
        TorrentSource::Torrent(torrent.to_vec()),
        StorageConfig::Directory(dir.to_path_buf()),
    );
    c.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c.seed_only = seed;
    c
}

/// Reads one JSON line (`what`) from a libtorrent helper's stdout, off the runtime.
pub async fn json_line(
    out: BufReader<ChildStdout>,
    what: &str,
) -> (serde_json::Value, BufReader<ChildStdout>) {
    let (line, out) = tokio::task::spawn_blocking(move || {
        let mut out = out;
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        (line, out)
    })
    .await
    .unwrap();
    let v = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("libtorrent gave no {what} ({e}): {line:?}"));
    (v, out)
}

/// A libtorrent helper script seeding in its `seed` mode (for at most 120 s): it prints a JSON
/// status line once it seeds, and a final report once its stdin closes. Killed on drop.
pub struct LtSeeder {
    child: Reaped,
    stdin: Option<ChildStdin>,
    stdout: Option<BufReader<ChildStdout>>,
}

impl LtSeeder {
    /// Runs `script seed TORRENT ROOT URL 120` and waits until it says it seeds.
    pub async fn start(script: &str, torrent: &Path, root: &Path, url: &str) -> Self {
        let mut child = Command::new(PYTHON)
            .arg(script)
            .arg("seed")
            .arg(torrent)
            .arg(root)
            .arg(url)
            .arg("120")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let stdin = child.stdin.take();
        let child = Reaped(Some(child));
        let (ready, stdout) = json_line(stdout, "status").await;
        assert_eq!(
            ready["seeding"], true,
            "libtorrent did not start seeding: {ready:#}"
        );
        Self {
            child,
            stdin,
            stdout: Some(stdout),
        }
    }

    /// Closes its stdin (the cue to stop); its final report.
    pub async fn stop(&mut self) -> serde_json::Value {
        drop(self.stdin.take());
        let stdout = self.stdout.take().expect("stopped once");
        json_line(stdout, "final report").await.0
    }

    /// Waits for it to exit (after [`Self::stop`]).
    pub fn wait(mut self) -> ExitStatus {
        self.child.0.take().unwrap().wait().unwrap()
    }
}

/// The JSON report on the last line of a finished libtorrent helper's stdout.
pub fn final_report(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| {
        panic!(
            "no report from libtorrent ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
