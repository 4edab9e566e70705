//! The `swarmd` command: parses the command line, loads the configuration and runs the services.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use swarmd::config::{Config, LogFormat, DEFAULT_TOML};

#[cfg(all(target_os = "linux", not(target_env = "musl")))]
mod alloc;
mod cli_admin;
mod cli_health;
mod cli_transfer;

/// BitTorrent tracker (HTTP and UDP), Mainline DHT node and swarm registry server.
#[derive(Parser, Debug)]
#[command(name = "swarmd", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the servers (with the embedded defaults unless --config is given).
    Serve(ServeArgs),
    /// Print or check configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Create and inspect .torrent files and magnet links.
    Torrent {
        #[command(subcommand)]
        action: TorrentAction,
    },
    /// Announce to a tracker (http:// or udp://) and print the interval, counts and peers.
    Announce(AnnounceArgs),
    /// Meet other peers under SHA-1(TOPIC) through a tracker or the DHT: announce, then print
    /// the topic's info hash and the other peers found, one per line.
    Rendezvous(RendezvousArgs),
    /// Manage a running listed or private tracker through its admin API: users, passkeys, the
    /// allow list, client rules, statistics.
    Admin(cli_admin::AdminArgs),
    /// GET a health URL (such as http://127.0.0.1:6970/readyz): exit 0 on HTTP 200, 1 otherwise
    /// (for container HEALTHCHECKs).
    Health(cli_health::HealthArgs),
    /// Download a torrent (a .torrent file or a magnet link) into a folder: progress on a
    /// terminal, exit 0 when complete; Ctrl-C or SIGTERM announces `stopped` and exits 130/143.
    Download(cli_transfer::DownloadArgs),
    /// Seed a torrent from the folder holding its data (refused unless every piece verifies),
    /// until Ctrl-C or SIGTERM.
    Seed(cli_transfer::SeedArgs),
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("via").required(true).args(["tracker", "dht"])))]
struct RendezvousArgs {
    /// The topic: any name; its SHA-1 is the info hash announced.
    topic: String,
    /// Meet through this tracker (http:// or udp:// announce URL).
    #[arg(long, value_name = "URL")]
    tracker: Option<String>,
    /// Meet through the DHT, starting from this node.
    #[arg(long, value_name = "HOST:PORT")]
    dht: Option<String>,
    /// The port to announce.
    #[arg(long, default_value_t = 6881)]
    port: u16,
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("hash").args(["info_hash", "torrent", "magnet"])))]
#[command(group(clap::ArgGroup::new("target").required(true).args(["url", "dht"])))]
struct AnnounceArgs {
    /// The tracker's announce URL (http:// or udp://), or a magnet link: then its info hash is
    /// announced to its own trackers (`tr`), one after the other until one answers.
    url: Option<String>,
    /// Announce through the DHT instead, starting from this node (get_peers, then
    /// announce_peer to the closest nodes that gave a token).
    #[arg(long, value_name = "HOST:PORT")]
    dht: Option<String>,
    /// The info hash, 40 hex digits.
    #[arg(long = "info-hash", value_name = "HEX")]
    info_hash: Option<String>,
    /// Take the info hash from this .torrent.
    #[arg(long, value_name = "FILE")]
    torrent: Option<PathBuf>,
    /// Take the info hash from this magnet link.
    #[arg(long, value_name = "URI")]
    magnet: Option<String>,
    /// The port to announce.
    #[arg(long, default_value_t = 6881)]
    port: u16,
    /// Bytes left to download (0: announce as a seeder).
    #[arg(long, default_value_t = 0)]
    left: u64,
    /// The event to send.
    #[arg(long, value_enum)]
    event: Option<AnnounceEvent>,
    /// Peers wanted.
    #[arg(long)]
    numwant: Option<u32>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum AnnounceEvent {
    Started,
    Completed,
    Stopped,
}

#[derive(Subcommand, Debug)]
enum TorrentAction {
    /// Create a .torrent from a file or a folder (files sorted by path; empty and hidden files
    /// included).
    Create(CreateArgs),
    /// Print a .torrent's name, info hash, files, sizes, pieces, trackers and flags.
    Show {
        /// The .torrent file.
        file: PathBuf,
    },
    /// Print a .torrent's magnet link (BEP 9).
    Magnet {
        /// The .torrent file.
        file: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct CreateArgs {
    /// The file or folder to share.
    path: PathBuf,
    /// Tracker URL; repeat for several. Each -t is its own tier (as mktorrent does with several
    /// -a); give several URLs in one -t separated by commas to make them one tier.
    #[arg(short = 't', long = "tracker", value_name = "URL")]
    trackers: Vec<String>,
    /// Set the private flag (BEP 27): peers from the trackers only.
    #[arg(long)]
    private: bool,
    /// Bytes per piece, a power of two from 16384 to 2^30 (default: automatic, 1000-2000 pieces,
    /// 16 KiB to 16 MiB).
    #[arg(long = "piece-length", value_name = "BYTES")]
    piece_length: Option<u32>,
    /// Comment stored in the torrent.
    #[arg(long)]
    comment: Option<String>,
    /// Source tag stored in the info dictionary (changes the info hash).
    #[arg(long)]
    source: Option<String>,
    /// Omit the creation date (then the output depends only on the input and the options).
    #[arg(long = "no-date")]
    no_date: bool,
    /// Where to write the .torrent.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Configuration file (TOML); missing keys take their defaults.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// HTTP tracker listen address; repeat for several. Replaces `http.bind`.
    #[arg(long = "http-bind", value_name = "ADDR")]
    http_bind: Vec<SocketAddr>,
    /// UDP tracker listen address; repeat for several. Replaces `udp.bind`.
    #[arg(long = "udp-bind", value_name = "ADDR")]
    udp_bind: Vec<SocketAddr>,
    /// DHT node listen address (one IPv4 and/or one IPv6); repeatable. Replaces `dht.bind`.
    #[arg(long = "dht-bind", value_name = "ADDR")]
    dht_bind: Vec<SocketAddr>,
    /// Admin listen address; repeat for several. Replaces `admin.bind`.
    #[arg(long = "admin-bind", value_name = "ADDR")]
    admin_bind: Vec<SocketAddr>,
    /// Log line format; replaces `log.format`.
    #[arg(long = "log-format", value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
}

#[derive(Subcommand, Debug)]
enum ConfigAction {
    /// Print the default configuration as commented TOML.
    Print,
    /// Validate a configuration file (with SWARMD__* environment overrides applied).
    Check {
        /// The file to check.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Config {
            action: ConfigAction::Print,
        } => {
            print!("{DEFAULT_TOML}");
            Ok(())
        }
        Command::Config {
            action: ConfigAction::Check { file },
        } => Config::load(Some(&file), std::env::vars())
            .map(|_| println!("{}: ok", file.display()))
            .map_err(anyhow::Error::from),
        Command::Torrent { action } => torrent::run(action),
        Command::Announce(args) => announce::run(args),
        Command::Rendezvous(args) => rendezvous::run(args),
        Command::Admin(args) => cli_admin::run(args),
        Command::Health(args) => cli_health::run(args),
        Command::Download(args) => return cli_transfer::exit(cli_transfer::download(args)),
        Command::Seed(args) => return cli_transfer::exit(cli_transfer::seed(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("swarmd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref(), std::env::vars())?;
    if !args.http_bind.is_empty() {
        config.http.bind = args.http_bind;
    }
    if !args.udp_bind.is_empty() {
        config.udp.bind = args.udp_bind;
    }
    if !args.dht_bind.is_empty() {
        config.dht.bind = args.dht_bind;
    }
    if !args.admin_bind.is_empty() {
        config.admin.bind = args.admin_bind;
    }
    if let Some(format) = args.log_format {
        config.log.format = format;
    }
    config.validate()?;
    swarmd::logging::init(&config.log.level, config.log.format)?;

    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all().thread_name("swarmd-worker");
    if config.server.worker_threads > 0 {
        runtime.worker_threads(config.server.worker_threads);
    }
    let runtime = runtime.build().context("cannot start the runtime")?;
    let grace = Duration::from_secs(config.server.shutdown_timeout_secs);
    let result = runtime.block_on(async {
        let shutdown = shutdown_signal();
        swarmd::run(config, shutdown).await
    });
    // Tasks that ignored the grace period must not hold the process open.
    runtime.shutdown_timeout(grace);
    result
}

/// Completes on the first SIGINT or SIGTERM. A second signal during the graceful stop exits at
/// once.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Installed now, not when the future is first polled: a signal that arrives while the
    // listeners start must stop the server gracefully, not kill it with the default action.
    let streams = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (mut term, mut int) = match streams {
            (Ok(t), Ok(i)) => (t, i),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot listen for signals; stop with SIGKILL");
                std::future::pending::<()>().await;
                return;
            }
        };
        let which = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(
            signal = which,
            "stopping: no new connections, finishing requests"
        );
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            eprintln!("swarmd: second signal, exiting now");
            std::process::exit(1);
        });
    }
}

mod torrent {
    //! `swarmd torrent`: create, show and magnet.

    use std::io::{IsTerminal as _, Write as _};
    use std::path::Path;

    use anyhow::Context as _;
    use swarmd_client_core::{CreateOptions, Metainfo};

    use super::{CreateArgs, TorrentAction};

    pub(super) fn run(action: TorrentAction) -> anyhow::Result<()> {
        match action {
            TorrentAction::Create(args) => create(args),
            TorrentAction::Show { file } => {
                let m = load(&file)?;
                print!("{}", show(&m));
                Ok(())
            }
            TorrentAction::Magnet { file } => {
                println!("{}", load(&file)?.magnet());
                Ok(())
            }
        }
    }

    fn load(file: &Path) -> anyhow::Result<Metainfo> {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        Metainfo::from_bytes(&bytes).with_context(|| format!("{}: invalid torrent", file.display()))
    }

    fn create(args: CreateArgs) -> anyhow::Result<()> {
        let creation_date = if args.no_date {
            None
        } else {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
            Some(i64::try_from(now.as_secs())?)
        };
        let opts = CreateOptions {
            trackers: args
                .trackers
                .iter()
                .map(|t| {
                    t.split(',')
                        .filter(|u| !u.is_empty())
                        .map(String::from)
                        .collect()
                })
                .filter(|t: &Vec<String>| !t.is_empty())
                .collect(),
            private: args.private,
            piece_length: args.piece_length,
            comment: args.comment,
            source: args.source,
            creation_date,
            created_by: Some(concat!("swarmd/", env!("CARGO_PKG_VERSION")).to_owned()),
        };
        let tty = std::io::stderr().is_terminal();
        let start = std::time::Instant::now();
        let last = std::cell::Cell::new(start);
        let bytes = swarmd_client_core::metainfo::create(&args.path, &opts, |done| {
            let now = std::time::Instant::now();
            if tty && now.duration_since(last.get()).as_millis() >= 100 {
                last.set(now);
                let secs = now.duration_since(start).as_secs_f64().max(1e-3);
                eprint!(
                    "\rhashing: {} MiB ({:.0} MiB/s)   ",
                    done >> 20,
                    done as f64 / secs / 1048576.0
                );
                let _ = std::io::stderr().flush();
            }
        })?;
        if tty {
            eprintln!();
        }
        std::fs::write(&args.output, &bytes)
            .with_context(|| format!("cannot write {}", args.output.display()))?;
        let m = Metainfo::from_bytes(&bytes).context("created torrent does not parse")?;
        println!("{}", m.info_hash());
        Ok(())
    }

    fn show(m: &Metainfo) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "name: {}", m.name());
        let _ = writeln!(s, "info hash: {}", m.info_hash());
        let _ = writeln!(s, "total size: {}", m.total_length());
        let _ = writeln!(s, "piece length: {}", m.piece_length());
        let _ = writeln!(s, "piece count: {}", m.piece_count());
        let _ = writeln!(s, "private: {}", if m.private() { "yes" } else { "no" });
        for (i, tier) in m.trackers().iter().enumerate() {
            let _ = writeln!(s, "tracker tier {i}: {}", tier.join(" "));
        }
        for url in m.url_list() {
            let _ = writeln!(s, "web seed: {url}");
        }
        if let Some(c) = m.comment() {
            let _ = writeln!(s, "comment: {c}");
        }
        if let Some(c) = m.created_by() {
            let _ = writeln!(s, "created by: {c}");
        }
        if let Some(d) = m.creation_date() {
            let _ = writeln!(s, "creation date: {d}");
        }
        if let Some(src) = m.source() {
            let _ = writeln!(s, "source: {src}");
        }
        let _ = writeln!(s, "files: {}", m.files().len());
        for f in m.files() {
            let _ = writeln!(s, "  {} {}", f.length, f.path.join("/"));
        }
        s
    }
}

mod announce {
    //! `swarmd announce`: one announce to a tracker, for operators debugging their tracker.

    use anyhow::Context as _;
    use std::net::SocketAddr;

    use swarmd_client_core::dht::DhtClient;
    use swarmd_client_core::tracker::{
        random_peer_id, AnnounceRequest, ClientConfig, Event, InfoHash, Tiers, TrackerClient,
    };
    use swarmd_client_core::{Magnet, Metainfo};

    use super::{AnnounceArgs, AnnounceEvent};

    pub(super) fn run(args: AnnounceArgs) -> anyhow::Result<()> {
        // A magnet link as the target: its info hash, announced to its own trackers.
        let magnet_target = match &args.url {
            Some(u) if u.starts_with("magnet:") => {
                Some(Magnet::parse(u).context("invalid magnet link")?)
            }
            _ => None,
        };
        let info_hash: InfoHash = if let Some(hex) = &args.info_hash {
            hex.parse()
                .ok()
                .context("--info-hash wants 40 hex digits")?
        } else if let Some(file) = &args.torrent {
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            Metainfo::from_bytes(&bytes)
                .with_context(|| format!("{}: invalid torrent", file.display()))?
                .info_hash()
        } else if let Some(uri) = &args.magnet {
            Magnet::parse(uri).context("invalid magnet link")?.info_hash
        } else if let Some(m) = &magnet_target {
            m.info_hash
        } else {
            anyhow::bail!(
                "give --info-hash, --torrent or --magnet (or a magnet link as the target)"
            );
        };
        let mut req = AnnounceRequest::new(info_hash, random_peer_id(), args.port, args.left);
        req.event = match args.event {
            None => Event::None,
            Some(AnnounceEvent::Started) => Event::Started,
            Some(AnnounceEvent::Completed) => Event::Completed,
            Some(AnnounceEvent::Stopped) => Event::Stopped,
        };
        req.numwant = args.numwant;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime")?;
        let Some(url) = &args.url else {
            let node = args.dht.as_deref().context("give a tracker URL or --dht")?;
            return runtime.block_on(dht(node, info_hash, args.port));
        };
        // An operator at a terminal: retransmit UDP quickly (2 s, 4 s, 8 s) rather than on
        // BEP 15's schedule for long-running clients (15 s doubling eight times).
        let client = TrackerClient::new(ClientConfig {
            udp_base_timeout: std::time::Duration::from_secs(2),
            udp_max_retries: 2,
            ..ClientConfig::default()
        });
        let r = match magnet_target {
            Some(m) => {
                anyhow::ensure!(
                    !m.trackers.is_empty(),
                    "the magnet link names no tracker (tr=)"
                );
                let mut tiers = Tiers::new(vec![m.trackers]);
                let (answered, r) = runtime
                    .block_on(tiers.announce(&client, &req))
                    .context("no tracker of the magnet link answered")?;
                println!("tracker: {answered}");
                r
            }
            None => runtime
                .block_on(client.announce(url, &req))
                .with_context(|| format!("announce to {url} failed"))?,
        };
        let count = |n: Option<u32>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
        println!("info hash: {info_hash}");
        println!("interval: {}", r.interval);
        if let Some(m) = r.min_interval {
            println!("min interval: {m}");
        }
        println!("seeders: {}", count(r.complete));
        println!("leechers: {}", count(r.incomplete));
        if let Some(w) = &r.warning {
            println!("warning: {w}");
        }
        println!("peers: {}", r.peers.len());
        for p in &r.peers {
            println!("{p}");
        }
        Ok(())
    }

    /// `--dht`: announce through the DHT node at `node` and print what the lookup found.
    async fn dht(node: &str, info_hash: InfoHash, port: u16) -> anyhow::Result<()> {
        let bootstrap: Vec<SocketAddr> = tokio::net::lookup_host(node)
            .await
            .with_context(|| format!("cannot resolve {node}"))?
            .collect();
        let local = match bootstrap.first() {
            Some(SocketAddr::V6(_)) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
            _ => SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let client = DhtClient::bind(local).await?;
        let (accepted, lookup) = client
            .announce_with_lookup(&bootstrap, info_hash, Some(port))
            .await
            .with_context(|| format!("DHT announce through {node} failed"))?;
        println!("info hash: {info_hash}");
        println!("nodes accepted: {accepted}");
        println!("peers: {}", lookup.peers.len());
        for p in &lookup.peers {
            println!("{p}");
        }
        Ok(())
    }
}

mod rendezvous {
    //! `swarmd rendezvous`: announce under SHA-1(TOPIC) and print the peers met there.

    use anyhow::Context as _;
    use swarmd_client_core::rendezvous::{rendezvous_dht, rendezvous_tracker, topic_hash};

    use super::RendezvousArgs;

    pub(super) fn run(args: RendezvousArgs) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime")?;
        let peers = runtime.block_on(async {
            if let Some(url) = &args.tracker {
                rendezvous_tracker(url, &args.topic, args.port)
                    .await
                    .with_context(|| format!("rendezvous through {url} failed"))
            } else if let Some(node) = &args.dht {
                let bootstrap: Vec<_> = tokio::net::lookup_host(node.as_str())
                    .await
                    .with_context(|| format!("cannot resolve {node}"))?
                    .collect();
                rendezvous_dht(&bootstrap, &args.topic, args.port)
                    .await
                    .with_context(|| format!("rendezvous through the DHT at {node} failed"))
            } else {
                anyhow::bail!("give --tracker or --dht")
            }
        })?;
        println!("info hash: {}", topic_hash(&args.topic));
        for p in &peers {
            println!("{p}");
        }
        Ok(())
    }
}
