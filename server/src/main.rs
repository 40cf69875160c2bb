//! `optrail-server`: the command line. Everything else lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use optrail_server::auth::{Access, DEMO_OWNER, PublisherKey};
use optrail_server::client::IpNet;
use optrail_server::token::TokenVerifier;
use optrail_server::{Config, Durability, Limits, Retention};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// The optrail reference server: operations fed by a publisher (or
/// simulated, in demo mode) with persisted, sequenced events over HTTP and a
/// WebSocket (see PROTOCOL.md).
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// SQLite database file, created (with its directory) on first start;
    /// or a `postgres://` URL, which any number of instances may share.
    #[arg(long, env = "OPTRAIL_DATABASE", default_value = "./data/optrail.db")]
    database: PathBuf,
    /// Directory of the built widget, served at / (index.html for unknown paths).
    #[arg(long)]
    static_dir: Option<PathBuf>,
    /// Milliseconds between the server's pings; sockets silent for two
    /// intervals are closed.
    #[arg(long, default_value_t = 15_000, value_parser = clap::value_parser!(u64).range(1..))]
    ping_interval_ms: u64,
    /// Another origin allowed to open /ws and to call the API cross-origin
    /// (CORS) (repeatable; `*` allows any). The server's own origin is
    /// always allowed.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// A host name the server answers to (repeatable; `*` allows any).
    /// `localhost` and IP addresses are always allowed; any other name is
    /// refused (421), which defeats DNS rebinding.
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_hosts: Vec<String>,
    /// A reverse proxy (an address or CIDR block, repeatable) whose
    /// X-Forwarded-For names the real client for the per-client limits.
    #[arg(long = "trust-proxy", value_name = "CIDR")]
    trust_proxies: Vec<IpNet>,
    /// Demo mode: anonymous visitors view and cancel the "demo" owner's
    /// operations and may start simulated ones. Never on an exposed server.
    #[arg(long)]
    demo: bool,
    /// The key publishers send as `Authorization: Bearer KEY` (at least 16
    /// characters). Prefer the environment variable: flags show in `ps`.
    #[arg(long, env = "OPTRAIL_PUBLISHER_KEY", hide_env_values = true)]
    publisher_key: Option<String>,
    /// The HS256 secret (at least 32 bytes) with which the host's backend
    /// signs viewer tokens. Prefer the environment variable.
    #[arg(long, env = "OPTRAIL_TOKEN_SECRET", hide_env_values = true)]
    token_secret: Option<String>,
    /// SQLite's `synchronous`: `full` puts every commit on the disk before it
    /// is pushed; `normal` is faster but a power cut may lose the last
    /// commits after clients have seen them.
    #[arg(long, value_enum, default_value_t = Synchronous::Full)]
    sqlite_synchronous: Synchronous,
    /// Days after which finished operations are removed; 0 keeps them.
    #[arg(long, default_value_t = 30)]
    retain_finished_days: u64,
    /// Operations one client may start per minute (demo mode).
    #[arg(long, default_value_t = 60)]
    starts_per_minute: u32,
    /// WebSockets one client (an IPv4 address or an IPv6 /64) may hold open.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    sockets_per_client: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Synchronous {
    Full,
    Normal,
}

impl Cli {
    /// Who may do what; a bad key or secret is a startup error.
    fn access(&self) -> Result<Access, String> {
        Ok(Access {
            demo: self.demo,
            publisher_key: self
                .publisher_key
                .as_deref()
                .map(PublisherKey::new)
                .transpose()?,
            tokens: self
                .token_secret
                .as_deref()
                .map(|secret| TokenVerifier::new(secret.as_bytes()))
                .transpose()?,
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|spec| spec.parse::<Targets>().ok())
        .unwrap_or_else(|| {
            Targets::new()
                .with_default(tracing::Level::INFO)
                // PostgreSQL's notices ("… already exists, skipping" from
                // concurrent migrations) are not the operator's business.
                .with_target("sqlx::postgres::notice", tracing::Level::WARN)
        });
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer())
        .with(filter)
        .init();

    let cli = Cli::parse();
    let access = match cli.access() {
        Ok(access) => access,
        Err(e) => {
            eprintln!("optrail-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = Config {
        listen: cli.listen,
        database: cli.database,
        static_dir: cli.static_dir,
        ping_interval: Duration::from_millis(cli.ping_interval_ms),
        allowed_origins: cli.allow_origins,
        allowed_hosts: cli.allow_hosts,
        trusted_proxies: cli.trust_proxies,
        access,
        durability: match cli.sqlite_synchronous {
            Synchronous::Full => Durability::Full,
            Synchronous::Normal => Durability::Normal,
        },
        max_group: optrail_server::commit::MAX_GROUP,
        retention: Retention {
            max_age: (cli.retain_finished_days > 0)
                .then(|| Duration::from_secs(cli.retain_finished_days * 24 * 3600)),
            ..Retention::default()
        },
        limits: Limits {
            starts_per_minute: cli.starts_per_minute,
            sockets_per_client: usize::try_from(cli.sockets_per_client).unwrap_or(usize::MAX),
            ..Limits::default()
        },
    };
    let access = config.access.clone();
    let durability = config.durability;
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
    announce(&access, durability);

    stopped.await;
    tracing::info!("stopping");
    server.shutdown().await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Says at startup who can reach what, so that demo mode or a server no
/// viewer can use is never a surprise. Never prints a key or a secret.
fn announce(access: &Access, durability: Durability) {
    if access.demo {
        println!(
            "DEMO MODE: anyone who reaches this server can see, start and cancel \
             the \"{DEMO_OWNER}\" owner's operations without a token"
        );
        tracing::warn!("demo mode: anonymous access to the {DEMO_OWNER:?} owner's operations");
    }
    tracing::info!(
        publishers = access.publisher_key.is_some(),
        viewer_tokens = access.tokens.is_some(),
        "access"
    );
    if !access.demo && access.tokens.is_none() {
        tracing::warn!("no --token-secret: no viewer can authenticate");
    }
    if durability == Durability::Normal {
        tracing::warn!("synchronous=NORMAL: a power cut may lose commits clients have seen");
    }
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
