//! `optrail-server`: the command line. Everything else lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use optrail_server::{Config, Limits};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// The optrail reference server: simulated operations with persisted,
/// sequenced events over HTTP and a WebSocket (see PROTOCOL.md).
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// SQLite database file, created (with its directory) on first start.
    #[arg(long, env = "OPTRAIL_DATABASE", default_value = "./data/optrail.db")]
    database: PathBuf,
    /// Directory of the built widget, served at / (index.html for unknown paths).
    #[arg(long)]
    static_dir: Option<PathBuf>,
    /// Milliseconds between the server's pings; sockets silent for two
    /// intervals are closed.
    #[arg(long, default_value_t = 15_000, value_parser = clap::value_parser!(u64).range(1..))]
    ping_interval_ms: u64,
    /// Another origin allowed to open /ws (repeatable; `*` allows any).
    /// The server's own origin is always allowed.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// Operations one client address may start per minute.
    #[arg(long, default_value_t = 60)]
    starts_per_minute: u32,
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|spec| spec.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer())
        .with(filter)
        .init();

    let cli = Cli::parse();
    let config = Config {
        listen: cli.listen,
        database: cli.database,
        static_dir: cli.static_dir,
        ping_interval: Duration::from_millis(cli.ping_interval_ms),
        allowed_origins: cli.allow_origins,
        limits: Limits {
            starts_per_minute: cli.starts_per_minute,
            ..Limits::default()
        },
    };
    let database = config.database.clone();
    let stopped = match stop_signal() {
        Ok(stopped) => stopped,
        Err(e) => {
            eprintln!("optrail-server: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match optrail_server::serve(config).await {
        Ok(server) => server,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("optrail-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {}", server.url());
    tracing::info!(url = %server.url(), database = %database.display(), "started");

    stopped.await;
    tracing::info!("stopping");
    server.shutdown().await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when
/// this is called, not when it is first polled, so a signal that arrives
/// right after the URL is printed still stops the server gracefully.
fn stop_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
