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
                eprintln!("{}", summary("downloaded", &stats, start.elapsed()));
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
                    name(&stats),
                    stats.progress().percent
                )))
            }
            Err(code) => {
                let stats = stop(handle).await?;
                eprintln!("{}", summary("interrupted", &stats, start.elapsed()));
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
                        name(&stats),
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
            name(&stats),
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
        eprintln!("{}", summary("seeded", &stats, start.elapsed()));
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

fn name(stats: &Stats) -> String {
    stats
        .name
        .clone()
        .unwrap_or_else(|| stats.info_hash.to_string())
}

/// `42.0% [########------] down 1.2 MiB/s up 300 KiB/s peers 3 (1 seed) ETA 0:12`
fn progress_line(s: &Stats) -> String {
    let p = s.progress();
    let state = format!("{:?}", s.state).to_lowercase();
    let width = 20;
    let filled = ((p.percent / 100.0) * width as f64).round() as usize;
    let bar: String = (0..width)
        .map(|i| if i < filled.min(width) { '#' } else { '-' })
        .collect();
    let eta = p.eta.map_or_else(|| "--".to_owned(), duration);
    format!(
        "{:5.1}% [{bar}] {state} down {} up {} peers {} ({} seeds) ETA {eta}",
        p.percent,
        rate(p.download_rate),
        rate(p.upload_rate),
        p.peers,
        p.seeds,
    )
}

fn summary(what: &str, s: &Stats, took: Duration) -> String {
    let secs = took.as_secs_f64().max(1e-3);
    format!(
        "{what} {}: {:.1}% of {} bytes in {:.1} s (down {} bytes, {}; up {} bytes), info hash {}",
        name(s),
        s.progress().percent,
        s.total_bytes.unwrap_or(0),
        secs,
        s.downloaded,
        rate((s.downloaded as f64 / secs) as u64),
        s.uploaded,
        s.info_hash,
    )
}

fn rate(bytes_per_sec: u64) -> String {
    let b = bytes_per_sec as f64;
    if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB/s", b / 1048576.0)
    } else if b >= 1024.0 {
        format!("{:.0} KiB/s", b / 1024.0)
    } else {
        format!("{bytes_per_sec} B/s")
    }
}

fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_durations_read_well() {
        assert_eq!(rate(512), "512 B/s");
        assert_eq!(rate(2048), "2 KiB/s");
        assert_eq!(rate(3 << 20), "3.0 MiB/s");
        assert_eq!(duration(Duration::from_secs(75)), "1:15");
        assert_eq!(duration(Duration::from_secs(3725)), "1:02:05");
    }
}
