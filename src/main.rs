//! The `swarmd` command: parses the command line, loads the configuration and runs the services.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use swarmd::config::{Config, LogFormat, DEFAULT_TOML};

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
    let result = runtime.block_on(swarmd::run(config, shutdown_signal()));
    // Tasks that ignored the grace period must not hold the process open.
    runtime.shutdown_timeout(grace);
    result
}

/// Completes on the first SIGINT or SIGTERM. A second signal during the graceful stop exits at
/// once.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
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
