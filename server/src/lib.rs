//! # optrail-server
//!
//! The reference server of PROTOCOL.md: long-running operations — fed by a
//! publisher (the host's backend, with an API key) or simulated (demo
//! mode) — whose events are stored in SQLite with gap-free per-operation
//! seqs and pushed, after their commit and in seq order, over one
//! multiplexed WebSocket per client. Viewers see only their owner's
//! operations, proven by a signed, expiring token.
//!
//! Tests and the binary start it the same way:
//! ```no_run
//! # async fn demo() -> Result<(), optrail_server::error::Error> {
//! let mut config = optrail_server::Config::new("/tmp/optrail-demo.db");
//! config.listen = "127.0.0.1:0".parse().unwrap();
//! let server = optrail_server::serve(config).await?;
//! println!("listening on {}", server.url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod bus;
pub mod client;
pub mod commit;
pub mod config;
pub mod conformance;
pub mod demo;
pub mod error;
pub mod feed;
mod group;
pub mod host;
pub mod live;
pub mod operation_id;
pub mod origin;
pub mod postgres;
mod relay;
pub mod retention;
pub mod routes;
pub mod runner;
pub mod store;
pub mod throttle;
pub mod token;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{Config, Durability, Limits, Retention};
pub use error::Error;
pub use routes::router;

use client::SocketCount;
use feed::Feed;
use runner::Runner;
use store::Store;
use throttle::StartThrottle;

/// What every handler and connection shares; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub bus: Arc<bus::Bus>,
    pub runner: Arc<Runner>,
    pub feed: Arc<Feed>,
    pub throttle: Arc<StartThrottle>,
    pub sockets: Arc<SocketCount>,
    /// Turns `true` when the server stops: live connections close.
    pub shutdown: watch::Receiver<bool>,
}

/// The application without a socket: storage opened, unfinished runs
/// resumed. [`serve`] wraps it in a listener; a test may also drive
/// [`App::router`] itself.
#[derive(Debug)]
pub struct App {
    state: AppState,
    shutdown: watch::Sender<bool>,
    retention: Option<JoinHandle<()>>,
    /// Postgres: adopts the runs of instances that died.
    adoption: Option<JoinHandle<()>>,
}

/// How often an instance sharing a Postgres database looks for runs that
/// no live instance holds (one that died mid-run).
pub const ADOPT_EVERY: Duration = Duration::from_secs(1);

impl App {
    /// Opens the database (creating it), migrates it and resumes every
    /// operation that was running when the last server stopped.
    pub async fn open(config: Config) -> Result<App, Error> {
        let store =
            Store::open_grouped(&config.database, config.durability, config.max_group).await?;
        let bus = store.bus().clone();
        let runner = Runner::new(store.clone());
        let feed = Arc::new(Feed::new(store.clone()));
        let retention = retention::spawn(store.clone(), &config.retention);
        let resumed = runner.resume().await?;
        if resumed > 0 {
            tracing::info!(resumed, "resumed unfinished operations");
        }
        let adoption = store.is_shared().then(|| {
            let runner = runner.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(ADOPT_EVERY).await;
                    match runner.resume().await {
                        Ok(0) => {}
                        Ok(adopted) => tracing::info!(adopted, "adopted runs of another instance"),
                        Err(e) => tracing::error!(error = %e, "looking for runs to adopt failed"),
                    }
                }
            })
        });
        let (shutdown, stopping) = watch::channel(false);
        let throttle = Arc::new(StartThrottle::new(config.limits.starts_per_minute));
        Ok(App {
            state: AppState {
                config: Arc::new(config),
                store,
                bus,
                runner,
                feed,
                throttle,
                sockets: Arc::new(SocketCount::default()),
                shutdown: stopping,
            },
            shutdown,
            retention,
            adoption,
        })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn router(&self) -> axum::Router {
        router(self.state.clone())
    }

    /// Closes live connections, stops every run between two steps and
    /// closes the database. Unfinished operations resume on the next open.
    pub async fn close(self) {
        let _ = self.shutdown.send(true);
        if let Some(sweeper) = &self.retention {
            sweeper.abort();
        }
        if let Some(adoption) = &self.adoption {
            adoption.abort();
        }
        self.state.runner.stop().await;
        self.state.store.close().await;
    }
}

/// A server listening on a socket; see [`serve`].
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    app: App,
    task: JoinHandle<std::io::Result<()>>,
}

/// How long a stopping server waits for in-flight HTTP requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the app and serves it on `config.listen` (port 0 picks a free
/// port: ask [`Server::local_addr`]).
pub async fn serve(config: Config) -> Result<Server, Error> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::Internal(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("no local address: {e}")))?;
    let app = App::open(config).await?;
    let mut stopping = app.state.shutdown.clone();
    let service = app
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    // Pushes are small frames that must leave at once: no Nagle delay.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let task = tokio::spawn(async move {
        axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                let _ = stopping.wait_for(|stopping| *stopping).await;
            })
            .await
    });
    Ok(Server { addr, app, task })
}

impl Server {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> &AppState {
        self.app.state()
    }

    /// Stops accepting, closes live connections, stops the runs between two
    /// steps, lets in-flight requests finish (up to 10 s) and closes the
    /// database.
    pub async fn shutdown(self) {
        let _ = self.app.shutdown.send(true);
        // Runs first: nothing more is appended while requests drain.
        self.app.state.runner.stop().await;
        let mut task = self.task;
        match tokio::time::timeout(DRAIN_TIMEOUT, &mut task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "the listener failed"),
            Ok(Err(e)) => tracing::error!(error = %e, "the server task failed"),
            Err(_) => {
                tracing::warn!("requests still running after {DRAIN_TIMEOUT:?}; stopping anyway");
                task.abort();
            }
        }
        self.app.close().await;
    }
}
