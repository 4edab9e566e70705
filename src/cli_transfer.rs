//! `swarmd download` and `swarmd seed`: one torrent through the client-core session engine,
//! with a progress line on a terminal, a summary line otherwise, and a clean stop (announce
//! `stopped`, sync the files) on Ctrl-C or SIGTERM.

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use swarmd_client_core::session::{
    SessionError, Stats, StorageConfig, Torrent, TorrentConfig, TorrentHandle, TorrentSource,
    TorrentState,
};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Where peers come from, shared by `download` and `seed`.
#[derive(clap::Args, Debug)]
pub(crate) struct PeerSources {
    /// Announce to this tracker (http:// or udp://) instead of the torrent's own; repeat for
    /// several (each its own tier).
    #[arg(long = "tracker", value_name = "URL")]
    trackers: Vec<String>,
    /// Find peers through the DHT, starting from this node; repeatable. Without it no DHT is
    /// used.
    #[arg(long = "dht", value_name = "HOST:PORT")]
    dht: Vec<String>,
    /// Connect to this peer from the start; repeatable.
    #[arg(long = "peer", value_name = "HOST:PORT")]
    peers: Vec<String>,
    /// TCP port to listen on for peers (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

/// `swarmd download`.
#[derive(clap::Args, Debug)]
pub(crate) struct DownloadArgs {
    /// A .torrent file or a magnet link.
    #[arg(value_name = "FILE_OR_MAGNET")]
    source: String,
    /// The folder to download into (the torrent's files go under it).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: PathBuf,
    #[command(flatten)]
    sources: PeerSources,
    /// Keep seeding once complete, until Ctrl-C or SIGTERM.
    #[arg(long = "seed-after")]
    seed_after: bool,
}

/// `swarmd seed`.
#[derive(clap::Args, Debug)]
pub(crate) struct SeedArgs {
    /// The .torrent file.
    #[arg(value_name = "FILE")]
    torrent: String,
    /// The folder holding the torrent's data (its files under it, as `download -o` writes them).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    #[command(flatten)]
    sources: PeerSources,
}

/// Runs `swarmd download`: 0 when complete, 130/143 when interrupted.
pub(crate) fn download(args: DownloadArgs) -> anyhow::Result<ExitCode> {
    let source = TorrentSource::from_arg(&args.source)?;
    // A magnet's `dn` names the torrent until its metadata arrives.
    let hint = match &source {
        TorrentSource::Magnet(m) => m.name.clone(),
        TorrentSource::Torrent(_) => None,
    };
    let hint = hint.as_deref();
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let storage = StorageConfig::Directory(args.output.clone());
    runtime()?.block_on(async move {
        let mut signals = Signals::new()?;
        let config = config(source, storage, &args.sources, false).await?;
        let handle = Torrent::start(config).await?;
        let start = Instant::now();
        let tty = std::io::stderr().is_terminal();
        let outcome = tokio::select! {
            r = handle.wait_complete() => Ok(r),
            code = signals.recv() => Err(code),
            () = progress_loop(&handle, tty) => unreachable!("the progress loop never ends"),
        };
        clear_line(tty);
        match outcome {
            Ok(Ok(())) => {
                let stats = handle.stats();
                eprintln!("{}", summary("downloaded", &stats, hint, start.elapsed()));
                if args.seed_after {
                    eprintln!("seeding on port {} until Ctrl-C", stats.listen_addr.port());
                    let code = signals.recv().await;
                    stop(handle).await?;
                    return Ok(code);
                }
                stop(handle).await?;
                Ok(ExitCode::SUCCESS)
            }
            Ok(Err(e)) => {
                let stats = handle.stats();
                let _ = stop(handle).await;
                Err(anyhow::Error::from(e).context(format!(
                    "download of {} failed at {:.1}%",
                    name(&stats, hint),
                    stats.progress().percent
                )))
            }
            Err(code) => {
                let stats = stop(handle).await?;
                eprintln!("{}", summary("interrupted", &stats, hint, start.elapsed()));
                Ok(code)
            }
        }
    })
}

/// Runs `swarmd seed`: refuses data that does not match, then seeds until a signal.
pub(crate) fn seed(args: SeedArgs) -> anyhow::Result<ExitCode> {
    let source = TorrentSource::from_arg(&args.torrent)?;
    anyhow::ensure!(
        matches!(source, TorrentSource::Torrent(_)),
        "seed needs a .torrent file, not a magnet link"
    );
    anyhow::ensure!(
        args.data.is_dir(),
        "{}: not a folder (give the folder holding the torrent's data)",
        args.data.display()
    );
    let storage = StorageConfig::Directory(args.data.clone());
    runtime()?.block_on(async move {
        let mut signals = Signals::new()?;
        let config = config(source, storage, &args.sources, true).await?;
        let handle = Torrent::start(config).await?;
        let tty = std::io::stderr().is_terminal();
        let checked = tokio::select! {
            r = handle.wait_complete() => Ok(r),
            code = signals.recv() => Err(code),
        };
        match checked {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let stats = handle.stats();
                let _ = stop(handle).await;
                return Err(match e {
                    SessionError::Incomplete => anyhow::anyhow!(
                        "the data in {} does not match the torrent {}: {} of {} pieces verified",
                        args.data.display(),
                        name(&stats, None),
                        stats.pieces_have,
                        stats.pieces_total
                    ),
                    e => anyhow::Error::from(e).context("cannot seed"),
                });
            }
            Err(code) => {
                stop(handle).await?;
                return Ok(code);
            }
        }
        let stats = handle.stats();
        eprintln!(
            "seeding {} ({} bytes, info hash {}) on port {} until Ctrl-C",
            name(&stats, None),
            stats.total_bytes.unwrap_or(0),
            stats.info_hash,
            stats.listen_addr.port()
        );
        let start = Instant::now();
        let code = tokio::select! {
            code = signals.recv() => code,
            () = progress_loop(&handle, tty) => unreachable!("the progress loop never ends"),
        };
        clear_line(tty);
        let stats = stop(handle).await?;
        eprintln!("{}", summary("seeded", &stats, None, start.elapsed()));
        Ok(code)
    })
}

/// The process's exit code for a command's result (errors printed as `swarmd: ...`).
pub(crate) fn exit(result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("swarmd: {e:#}");
        ExitCode::FAILURE
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("swarmd-client")
        .build()
        .context("cannot start the runtime")
}

async fn config(
    source: TorrentSource,
    storage: StorageConfig,
    sources: &PeerSources,
    seed_only: bool,
) -> anyhow::Result<TorrentConfig> {
    let mut c = TorrentConfig::new(source, storage);
    c.listen = SocketAddr::from(([0, 0, 0, 0], sources.port));
    c.seed_only = seed_only;
    if !sources.trackers.is_empty() {
        c.announce.trackers = Some(sources.trackers.iter().map(|t| vec![t.clone()]).collect());
    }
    c.announce.dht_nodes = resolve(&sources.dht, "--dht").await?;
    c.announce.peers = resolve(&sources.peers, "--peer").await?;
    Ok(c)
}

async fn resolve(names: &[String], what: &str) -> anyhow::Result<Vec<SocketAddr>> {
    let mut out = Vec::new();
    for n in names {
        let addrs = tokio::net::lookup_host(n.as_str())
            .await
            .with_context(|| format!("{what} {n}: cannot resolve (want HOST:PORT)"))?;
        out.extend(addrs);
    }
    Ok(out)
}

/// Stops the torrent: announces `stopped`, syncs the storage.
async fn stop(handle: TorrentHandle) -> anyhow::Result<Stats> {
    handle
        .stop()
        .await
        .context("cannot stop cleanly (storage sync failed)")
}

/// SIGINT and SIGTERM, installed before the torrent starts.
struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }

    /// The exit code for the first signal: 130 for SIGINT, 143 for SIGTERM.
    async fn recv(&mut self) -> ExitCode {
        tokio::select! {
            _ = self.int.recv() => ExitCode::from(130),
            _ = self.term.recv() => ExitCode::from(143),
        }
    }
}

/// Redraws the progress line twice a second on a terminal; otherwise just waits.
async fn progress_loop(handle: &TorrentHandle, tty: bool) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        if tty {
            eprint!("\r{}\x1b[K", progress_line(&handle.stats()));
            let _ = std::io::stderr().flush();
        }
    }
}

fn clear_line(tty: bool) {
    if tty {
        eprint!("\r\x1b[K");
    }
}

/// The torrent's name: from its metadata, else `hint` (a magnet's `dn`), else its info hash.
fn name(stats: &Stats, hint: Option<&str>) -> String {
    stats
        .name
        .clone()
        .or_else(|| hint.map(str::to_owned))
        .unwrap_or_else(|| stats.info_hash.to_string())
}

/// Cells in the progress bar: as wide as the words shown in its place (`metadata`, `checking`).
const BAR: usize = 8;

/// The progress line, always [`LINE_WIDTH`] columns wide so each redraw covers the last and
/// an 80-column terminal never wraps it:
///
/// ` 42.0% [###-----] down  1.2 MiB/s up  300 KiB/s peers   3 seeds   1 ETA    0:12`
///
/// Before a magnet's metadata the size is unknown: `   --% [metadata]`; while the stored data
/// is rechecked, the share checked: ` 10.0% [checking]`. The percent is rounded down (100.0%
/// only when complete); the ETA is `--` while nothing arrives.
fn progress_line(s: &Stats) -> String {
    let p = s.progress();
    let (percent, bar) = if s.total_bytes.is_none() {
        ("   --%".to_owned(), "metadata".to_owned())
    } else if s.state == TorrentState::Checking {
        let checked = s.recheck.as_ref().map_or(0.0, |r| {
            f64::from(r.checked) * 100.0 / f64::from(r.total.max(1))
        });
        (percent_cell(checked), "checking".to_owned())
    } else {
        (percent_cell(p.percent), bar_cells(p.percent))
    };
    let eta = p.eta.map_or_else(|| "--".to_owned(), eta);
    format!(
        "{percent} [{bar}] down {:>10} up {:>10} peers {:>3} seeds {:>3} ETA {eta:>7}",
        rate(p.download_rate),
        rate(p.upload_rate),
        p.peers,
        p.seeds,
    )
}

/// Columns of a [`progress_line`] (with fewer than 1000 peers).
#[cfg(test)]
const LINE_WIDTH: usize = 79;

/// ` 42.0%`: six columns, rounded down to a tenth.
fn percent_cell(percent: f64) -> String {
    let p = if percent.is_finite() {
        (percent.clamp(0.0, 100.0) * 10.0).floor() / 10.0
    } else {
        0.0
    };
    format!("{p:5.1}%")
}

/// `###-----`: [`BAR`] cells, a cell filled per full 1/BAR of the torrent.
fn bar_cells(percent: f64) -> String {
    let filled = if percent.is_finite() {
        ((percent.clamp(0.0, 100.0) / 100.0) * BAR as f64).floor() as usize
    } else {
        0
    };
    (0..BAR)
        .map(|i| if i < filled { '#' } else { '-' })
        .collect()
}

/// The line printed when a command ends: what happened, the torrent's name (`hint` until the
/// metadata is known), progress, size, time, bytes moved and the info hash.
fn summary(what: &str, s: &Stats, hint: Option<&str>, took: Duration) -> String {
    let secs = took.as_secs_f64().max(1e-3);
    let size = s.total_bytes.map_or_else(
        || "an unknown size (no metadata yet)".to_owned(),
        |t| format!("{t} bytes"),
    );
    format!(
        "{what} {}: {} of {size} in {:.1} s (down {} bytes, {}; up {} bytes), info hash {}",
        name(s, hint),
        percent_cell(s.progress().percent).trim_start(),
        secs,
        s.downloaded,
        rate((s.downloaded as f64 / secs) as u64),
        s.uploaded,
        s.info_hash,
    )
}

/// A rate in at most 10 columns (up to 9999 GiB/s): `512 B/s`, `2 KiB/s`, `3.0 MiB/s`,
/// `120 MiB/s`, `1.5 GiB/s`.
fn rate(bytes_per_sec: u64) -> String {
    const KIB: f64 = 1024.0;
    const MIB: f64 = KIB * 1024.0;
    const GIB: f64 = MIB * 1024.0;
    // One decimal below 100 (as rounded), none above.
    fn scaled(v: f64, unit: &str) -> String {
        if v < 99.95 {
            format!("{v:.1} {unit}/s")
        } else {
            format!("{v:.0} {unit}/s")
        }
    }
    let b = bytes_per_sec as f64;
    if b >= GIB {
        scaled(b / GIB, "GiB")
    } else if b >= MIB {
        scaled(b / MIB, "MiB")
    } else if b >= KIB {
        format!("{:.0} KiB/s", b / KIB)
    } else {
        format!("{bytes_per_sec} B/s")
    }
}

/// A duration as `m:ss` or `h:mm:ss`.
fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// An ETA in at most 7 columns: `0:12`, `1:02:03`, `12h05m`, `>99h`.
fn eta(d: Duration) -> String {
    let s = d.as_secs();
    match s / 3600 {
        0..=9 => duration(d),
        h @ 10..=99 => format!("{h}h{:02}m", s / 60 % 60),
        _ => ">99h".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmd_client_core::storage::RecheckProgress;

    /// A torrent of `total` bytes (`None`: a magnet before its metadata) holding `have`.
    fn stats(total: Option<u64>, have: u64) -> Stats {
        Stats {
            state: if total.is_some() {
                TorrentState::Downloading
            } else {
                TorrentState::FetchingMetadata
            },
            info_hash: swarmd_proto::InfoHash([0xab; 20]),
            name: total.map(|_| "payload".to_owned()),
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 6881)),
            total_bytes: total,
            have_bytes: have,
            pieces_total: 0,
            pieces_have: 0,
            downloaded: have,
            uploaded: 0,
            wasted: 0,
            download_rate: 0,
            upload_rate: 0,
            peers: 0,
            seeds: 0,
            half_open: 0,
            known_peers: 0,
            hash_failures: 0,
            banned: 0,
            recheck: None,
            announces: 0,
            last_announce_error: None,
        }
    }

    #[test]
    fn rates_and_durations_read_well() {
        assert_eq!(rate(0), "0 B/s");
        assert_eq!(rate(512), "512 B/s");
        assert_eq!(rate(2048), "2 KiB/s");
        assert_eq!(rate(3 << 20), "3.0 MiB/s");
        assert_eq!(rate(250 << 20), "250 MiB/s");
        assert_eq!(rate(3 << 30), "3.0 GiB/s");
        assert_eq!(duration(Duration::from_secs(75)), "1:15");
        assert_eq!(duration(Duration::from_secs(3725)), "1:02:05");
        assert_eq!(eta(Duration::from_secs(12)), "0:12");
        assert_eq!(eta(Duration::from_secs(9 * 3600 + 59 * 60 + 59)), "9:59:59");
        assert_eq!(eta(Duration::from_secs(12 * 3600 + 5 * 60)), "12h05m");
        assert_eq!(eta(Duration::from_secs(400 * 3600)), ">99h");
        assert_eq!(eta(Duration::from_secs(u64::MAX)), ">99h");
    }

    #[test]
    fn rates_fit_ten_columns() {
        for shift in 0..43 {
            let b = 1u64 << shift;
            for b in [b, b - 1, b * 3 / 2, b * 99 / 100, b * 1023 / 1024] {
                assert!(rate(b).len() <= 10, "{b}: {}", rate(b));
            }
        }
        assert_eq!(rate((99.97 * 1048576.0) as u64), "100 MiB/s");
        assert!(!rate(u64::MAX).is_empty());
    }

    #[test]
    fn progress_line_shows_percent_rates_peers_and_eta() {
        let mut s = stats(Some(1000 << 20), 420 << 20);
        s.download_rate = 58 << 20;
        s.upload_rate = 300 << 10;
        s.peers = 3;
        s.seeds = 1;
        let line = progress_line(&s);
        assert_eq!(
            line,
            " 42.0% [###-----] down 58.0 MiB/s up  300 KiB/s peers   3 seeds   1 ETA    0:10"
        );
        assert_eq!(line.len(), LINE_WIDTH);
    }

    #[test]
    fn progress_line_handles_zero_rate_unknown_size_and_the_extremes() {
        // Nothing arriving: no ETA, no division by zero.
        let line = progress_line(&stats(Some(1 << 20), 0));
        assert_eq!(
            line,
            "  0.0% [--------] down      0 B/s up      0 B/s peers   0 seeds   0 ETA      --"
        );
        // A magnet before its metadata: size, percent and ETA unknown.
        let line = progress_line(&stats(None, 0));
        assert_eq!(
            line,
            "   --% [metadata] down      0 B/s up      0 B/s peers   0 seeds   0 ETA      --"
        );
        // Almost done shows 99.9%, never a rounded-up 100.0%; done shows 100.0% and ETA 0:00.
        let mut s = stats(Some(10_000), 9_999);
        s.download_rate = 1;
        assert!(
            progress_line(&s).starts_with(" 99.9% [#######-]"),
            "{}",
            progress_line(&s)
        );
        let s = stats(Some(10_000), 10_000);
        assert!(progress_line(&s).starts_with("100.0% [########]"));
        assert!(progress_line(&s).ends_with("ETA    0:00"));
        // An empty torrent is complete.
        assert!(progress_line(&stats(Some(0), 0)).starts_with("100.0% [########]"));
        // More held than the total (it cannot be, but never panic or overflow the bar).
        assert!(progress_line(&stats(Some(10), 20)).starts_with("100.0% [########]"));
        // Checking: the share of pieces checked.
        let mut s = stats(Some(1 << 20), 0);
        s.state = TorrentState::Checking;
        s.recheck = Some(RecheckProgress {
            checked: 1,
            total: 4,
            have: 1,
            bytes_hashed: 1 << 18,
        });
        assert!(
            progress_line(&s).starts_with(" 25.0% [checking]"),
            "{}",
            progress_line(&s)
        );
        s.recheck = None;
        assert!(progress_line(&s).starts_with("  0.0% [checking]"));
    }

    #[test]
    fn progress_line_keeps_its_width() {
        let mut widths = std::collections::BTreeSet::new();
        for (total, have) in [
            (Some(1u64 << 40), 0u64),
            (Some(1 << 40), 1 << 39),
            (None, 0),
        ] {
            for rate in [0, 1, 999, 1 << 10, 99 << 20, 999 << 20, 5 << 30] {
                for peers in [0, 7, 999] {
                    let mut s = stats(total, have);
                    s.download_rate = rate;
                    s.upload_rate = rate / 3;
                    s.peers = peers;
                    s.seeds = peers / 2;
                    widths.insert(progress_line(&s).len());
                }
            }
        }
        assert_eq!(widths.into_iter().collect::<Vec<_>>(), vec![LINE_WIDTH]);
    }

    #[test]
    fn summary_names_a_magnet_before_its_metadata() {
        let s = stats(None, 0);
        let line = summary("interrupted", &s, Some("cli"), Duration::from_secs(2));
        assert!(
            line.starts_with("interrupted cli: 0.0% of an unknown size (no metadata yet) in 2.0 s"),
            "{line}"
        );
        let line = summary("interrupted", &s, None, Duration::ZERO);
        assert!(
            line.starts_with(&format!("interrupted {}: ", s.info_hash)),
            "{line}"
        );
        // Interrupted just short of the end: rounded down, never 100.0%.
        let line = summary(
            "interrupted",
            &stats(Some(10_000), 9_996),
            None,
            Duration::ZERO,
        );
        assert!(
            line.starts_with("interrupted payload: 99.9% of 10000 bytes"),
            "{line}"
        );
        let s = stats(Some(2048), 2048);
        let line = summary("downloaded", &s, Some("ignored"), Duration::from_secs(1));
        assert!(
            line.starts_with("downloaded payload: 100.0% of 2048 bytes in 1.0 s (down 2048 bytes, 2 KiB/s; up 0 bytes)"),
            "{line}"
        );
    }
}
