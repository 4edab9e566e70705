//! `swarmd download` and `swarmd seed` end to end, as a user runs them: the real binary as
//! child processes beside our servers (`swarmd::start`, port 0, loopback, the system clock).
//! A `.torrent` through our UDP tracker; a magnet link (BEP 9 metadata, then the data) through
//! our HTTP tracker and through our DHT node only; Ctrl-C and SIGTERM stop either command with
//! its documented code (130, 143) after announcing `stopped`; on a terminal (a pseudo-terminal
//! from util-linux `script`) the download redraws one progress line in place, and without one
//! it prints no progress, only a summary line.
//!
//! The torrents are made here with client-core's `create`: several files, with pieces that
//! cross file boundaries.

mod common;

use std::io::{Read, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::served::BIN;
use common::transfer::{
    assert_same_files, create_torrent, files_across_pieces, http_url, server, signal, tracked,
    udp_url, until, v4, write_files, TempDir,
};
use swarmd_client_core::Metainfo;
use swarmd_proto::InfoHash;

/// How long any one awaited condition may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// Sizes chosen so that most 32 KiB pieces span two or three files.
const FILES: &[(&str, usize)] = &[
    ("docs/readme.txt", 10_001),
    ("docs/empty", 0),
    ("data/one.bin", 333_333),
    ("data/two.bin", 65_537),
    ("three.bin", 1_234_567),
];
const PIECE: u32 = 32 << 10;

/// A multi-file torrent's content on disk under `seed/cli`, its `.torrent` beside it.
struct Content {
    work: TempDir,
    meta: Metainfo,
}

impl Content {
    fn new(trackers: Vec<Vec<String>>) -> Self {
        let work = TempDir::new("work");
        let dir = work.0.join("seed/cli");
        write_files(&dir, FILES, 7);
        let (torrent, meta) = create_torrent(&dir, Some(PIECE), trackers);
        assert!(
            files_across_pieces(&meta) >= 3,
            "pieces must cross file boundaries"
        );
        std::fs::write(work.0.join("cli.torrent"), &torrent).unwrap();
        Self { work, meta }
    }

    fn torrent(&self) -> String {
        self.work.path("cli.torrent")
    }

    fn seed_dir(&self) -> String {
        self.work.path("seed")
    }

    fn out_dir(&self, tag: &str) -> String {
        self.work.path(tag)
    }

    fn info_hash(&self) -> InfoHash {
        self.meta.info_hash()
    }

    /// Every file under `out` equals the seeder's.
    fn assert_fetched(&self, out: &str) {
        assert_same_files(
            &self.meta,
            &self.work.0.join("seed"),
            Path::new(out),
            "swarmd download",
        );
    }
}

/// A child process whose stdout and stderr are collected raw on threads (so a `\r` stays
/// visible), killed and reaped on drop.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

fn collect(mut from: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buf);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = from.read(&mut chunk) {
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

impl Proc {
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Self {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
        }
    }

    /// `swarmd ARGS` with stdout and stderr piped (no terminal).
    fn swarmd(args: &[&str]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        Self::spawn(cmd)
    }

    /// `swarmd ARGS` on a pseudo-terminal: util-linux `script` runs it as the session leader
    /// of a new pty (`exec`, so no shell stands between the terminal and swarmd) and copies
    /// what it writes to the terminal to our stdout pipe; our stdin pipe is its keyboard.
    fn swarmd_on_terminal(args: &[&str]) -> Self {
        require_script();
        let line = std::iter::once(BIN)
            .chain(args.iter().copied())
            .map(sh_quote)
            .collect::<Vec<_>>()
            .join(" ");
        let mut cmd = Command::new("script");
        cmd.args(["-q", "-f", "-e", "-c"])
            .arg(format!("exec {line}"))
            .arg("/dev/null")
            .env("SHELL", "/bin/sh")
            .env("TERM", "xterm");
        Self::spawn(cmd)
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Sends `sig` (`INT`, `TERM`) to the child.
    fn signal(&self, sig: &str) {
        signal(self.child.id(), sig);
    }

    /// Types `bytes` on the child's stdin (its keyboard, under `script`).
    fn type_keys(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits until the collected stdout satisfies `cond`.
    async fn until_stdout(&self, what: &str, cond: impl Fn(&str) -> bool) {
        let start = Instant::now();
        while !cond(&self.stdout()) {
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for {what}; stdout so far: {:?}",
                self.stdout()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the child to exit; its exit code (with all its output collected).
    async fn exit(&mut self, what: &str) -> i32 {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{what} did not exit in time; stdout: {:?}\nstderr: {}",
                self.stdout(),
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // The collector threads end at EOF, soon after the exit: wait for it, bounded.
        let start = Instant::now();
        while Arc::strong_count(&self.stdout) + Arc::strong_count(&self.stderr) > 2
            && start.elapsed() < Duration::from_secs(5)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        status
            .code()
            .unwrap_or_else(|| panic!("{what} died of a signal: {status:?}"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn require_script() {
    match Command::new("script").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        other => panic!(
            "util-linux `script` is required for the terminal tests (Debian: bsdutils): {other:?}"
        ),
    }
}

/// Output without a terminal: no progress redraws (no `\r` at all), just lines.
fn assert_no_progress(text: &str, who: &str) {
    assert!(
        !text.contains('\r'),
        "{who} drew progress off a terminal: {text:?}"
    );
}

/// The progress lines drawn on a terminal: the pieces of `tty` after each `\r` that is not the
/// end of a line (the terminal turns every `\n` into `\r\n`) nor the final clearing of the
/// line (`\r\x1b[K`), up to the next `\r` or `\n`.
fn redraws(tty: &str) -> Vec<&str> {
    tty.split('\r')
        .skip(1)
        .filter(|p| !p.starts_with('\n') && !p.starts_with("\u{1b}[K"))
        .map(|p| p.split('\n').next().unwrap())
        .map(|p| p.trim_end_matches("\u{1b}[K"))
        .filter(|p| !p.is_empty())
        .collect()
}

/// A progress line shows percent, the bar, rates, peers and the ETA.
fn assert_progress_line(line: &str) {
    assert!(
        line.contains("% [")
            && line.contains("] down ")
            && line.contains("/s up ")
            && line.contains(" peers ")
            && line.contains(" ETA "),
        "not a progress line: {line:?}"
    );
}

/// (a) `swarmd seed` and `swarmd download` trade a `.torrent` through our UDP tracker; off a
/// terminal both print a summary and no progress; Ctrl-C (SIGINT) stops the seeder with 130
/// after its `stopped` announce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_and_download_binaries_trade_through_our_udp_tracker() {
    let srv = server(2).await;
    let c = Content::new(vec![vec![udp_url(&srv)]]);
    let ih = c.info_hash();
    let (torrent, data) = (c.torrent(), c.seed_dir());
    let mut seeder = Proc::swarmd(&["seed", &torrent, "--data", &data]);
    until(DEADLINE, "the seeder's started announce over UDP", || {
        tracked(&srv, ih) == 1
    })
    .await;

    let out = c.out_dir("out");
    let mut download = Proc::swarmd(&["download", &torrent, "-o", &out]);
    let code = download.exit("swarmd download").await;
    let stderr = download.stderr();
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(
        stderr.contains(&format!(
            "downloaded cli: 100.0% of {} bytes",
            c.meta.total_length()
        )),
        "no summary line: {stderr}"
    );
    assert_no_progress(&stderr, "download");
    assert_no_progress(&download.stdout(), "download");
    c.assert_fetched(&out);
    // It announced `stopped` on the way out: only the seeder is left.
    until(DEADLINE, "the download's stopped announce", || {
        tracked(&srv, ih) == 1
    })
    .await;

    seeder.signal("INT");
    until(DEADLINE, "the seeder's stopped announce", || {
        tracked(&srv, ih) == 0
    })
    .await;
    let code = seeder.exit("swarmd seed").await;
    let stderr = seeder.stderr();
    assert_eq!(code, 130, "stderr: {stderr}");
    let seeding = format!("seeding cli ({} bytes", c.meta.total_length());
    assert!(stderr.contains(&seeding), "{stderr}");
    assert!(stderr.contains("seeded cli: 100.0%"), "{stderr}");
    assert_no_progress(&stderr, "seed");
}

/// (b) A magnet link with our HTTP tracker in `tr=`: the metadata (BEP 9) and then the data
/// come from the `swarmd seed` the tracker names; SIGTERM stops the seeder with 143.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magnet_download_through_our_http_tracker() {
    let srv = server(2).await;
    let c = Content::new(vec![vec![http_url(&srv)]]);
    let ih = c.info_hash();
    let magnet = c.meta.magnet().to_string();
    assert!(magnet.contains("&tr=http"), "{magnet}");
    let (torrent, data) = (c.torrent(), c.seed_dir());
    let mut seeder = Proc::swarmd(&["seed", &torrent, "--data", &data]);
    until(DEADLINE, "the seeder's started announce", || {
        tracked(&srv, ih) == 1
    })
    .await;

    let out = c.out_dir("out");
    let mut download = Proc::swarmd(&["download", &magnet, "-o", &out]);
    let code = download.exit("swarmd download MAGNET").await;
    let stderr = download.stderr();
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stderr.contains("downloaded cli: 100.0%"), "{stderr}");
    c.assert_fetched(&out);
    until(DEADLINE, "the download's stopped announce", || {
        tracked(&srv, ih) == 1
    })
    .await;

    seeder.signal("TERM");
    until(DEADLINE, "the seeder's stopped announce", || {
        tracked(&srv, ih) == 0
    })
    .await;
    assert_eq!(seeder.exit("swarmd seed").await, 143, "{}", seeder.stderr());
}

/// (b) A magnet link without trackers: the seeder announces to our DHT node only
/// (`--dht`), the download finds it there (`--dht`), then fetches metadata and data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magnet_download_through_our_dht_node_only() {
    let srv = server(2).await;
    let dht = v4(srv.dht_addrs()).to_string();
    let c = Content::new(Vec::new());
    let ih = c.info_hash();
    let magnet = c.meta.magnet().to_string();
    assert!(!magnet.contains("tr="), "{magnet}");
    let (torrent, data) = (c.torrent(), c.seed_dir());
    let mut seeder = Proc::swarmd(&["seed", &torrent, "--data", &data, "--dht", &dht]);
    // Our node stores DHT announces in the same registry the trackers use.
    until(DEADLINE, "the seeder's DHT announce", || {
        tracked(&srv, ih) == 1
    })
    .await;

    let out = c.out_dir("out");
    let mut download = Proc::swarmd(&["download", &magnet, "-o", &out, "--dht", &dht]);
    let code = download.exit("swarmd download MAGNET --dht").await;
    let stderr = download.stderr();
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stderr.contains("downloaded cli: 100.0%"), "{stderr}");
    c.assert_fetched(&out);

    seeder.signal("INT");
    assert_eq!(seeder.exit("swarmd seed").await, 130, "{}", seeder.stderr());
}

/// (c) SIGINT while a magnet download still waits for its metadata (size unknown): exit 130,
/// the tracker hears `stopped`, and the summary says so without a terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_a_magnet_download_before_its_metadata() {
    let srv = server(2).await;
    let c = Content::new(vec![vec![http_url(&srv)]]);
    let ih = c.info_hash();
    let magnet = c.meta.magnet().to_string();
    let out = c.out_dir("out");
    let mut download = Proc::swarmd(&["download", &magnet, "-o", &out]);
    until(DEADLINE, "the download's started announce", || {
        tracked(&srv, ih) == 1
    })
    .await;
    download.signal("INT");
    until(DEADLINE, "the download's stopped announce", || {
        tracked(&srv, ih) == 0
    })
    .await;
    let code = download.exit("swarmd download").await;
    let stderr = download.stderr();
    assert_eq!(code, 130, "stderr: {stderr}");
    assert!(
        stderr.contains("interrupted cli: 0.0% of an unknown size"),
        "{stderr}"
    );
    assert_no_progress(&stderr, "download");
}

/// On a terminal the download redraws one progress line in place (`\r`, no new lines) with
/// percent, rates, peers and ETA, then clears it and prints the summary once complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_on_a_terminal_redraws_its_progress_line() {
    let srv = server(2).await;
    let c = Content::new(vec![vec![http_url(&srv)]]);
    let ih = c.info_hash();
    let (torrent, data, out) = (c.torrent(), c.seed_dir(), c.out_dir("out"));
    let mut download = Proc::swarmd_on_terminal(&["download", &torrent, "-o", &out]);
    // No seeder yet: the line is redrawn at least twice at 0%.
    download
        .until_stdout("two progress redraws", |s| redraws(s).len() >= 2)
        .await;
    until(DEADLINE, "the download's started announce", || {
        tracked(&srv, ih) == 1
    })
    .await;
    let mut seeder = Proc::swarmd(&["seed", &torrent, "--data", &data]);
    let code = download.exit("swarmd download on a terminal").await;
    let tty = download.stdout();
    assert_eq!(code, 0, "terminal: {tty:?}\nstderr: {}", download.stderr());
    c.assert_fetched(&out);

    let lines = redraws(&tty);
    for line in &lines {
        assert_progress_line(line);
    }
    assert!(
        lines.iter().any(|l| l
            .starts_with("  0.0% [--------] down      0 B/s up      0 B/s peers   0 seeds   0")),
        "{lines:?}"
    );
    // Every redraw has the same width, so each one covers the last.
    assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{lines:?}");
    // The progress line is cleared, then the summary is the one line printed.
    let summary = tty.rsplit("\r\u{1b}[K").next().unwrap();
    let want = format!("downloaded cli: 100.0% of {} bytes", c.meta.total_length());
    assert!(summary.starts_with(&want), "{tty:?}");
    assert_eq!(summary.matches('\n').count(), 1, "{tty:?}");

    seeder.signal("INT");
    assert_eq!(seeder.exit("swarmd seed").await, 130);
}

/// Ctrl-C typed on the terminal (the tty turns it into SIGINT) stops a magnet download whose
/// metadata never came: its line shows the unknown size without a percent or ETA, it exits 130
/// and the tracker hears `stopped`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_on_a_terminal_stops_a_magnet_download() {
    let srv = server(2).await;
    let c = Content::new(vec![vec![http_url(&srv)]]);
    let ih = c.info_hash();
    let magnet = c.meta.magnet().to_string();
    let out = c.out_dir("out");
    let mut download = Proc::swarmd_on_terminal(&["download", &magnet, "-o", &out]);
    until(DEADLINE, "the download's started announce", || {
        tracked(&srv, ih) == 1
    })
    .await;
    download
        .until_stdout("two progress redraws", |s| redraws(s).len() >= 2)
        .await;
    download.type_keys(b"\x03");
    until(DEADLINE, "the download's stopped announce", || {
        tracked(&srv, ih) == 0
    })
    .await;
    let code = download.exit("swarmd download on a terminal").await;
    let tty = download.stdout();
    assert_eq!(code, 130, "terminal: {tty:?}");
    for line in redraws(&tty) {
        // The terminal echoes the Ctrl-C as `^C` where the cursor was.
        let line = line.replace("^C", "");
        let line = line.trim_end_matches("\u{1b}[K");
        assert_progress_line(line);
        assert!(
            line.starts_with("   --% [metadata] down ") && line.ends_with(" ETA      --"),
            "{line:?}"
        );
    }
    assert!(
        tty.contains("interrupted cli: 0.0% of an unknown size"),
        "{tty:?}"
    );
}
