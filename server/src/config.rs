//! What a server is started with. `main.rs` fills it from the command line;
//! tests build it directly (`Config::new(db_path)` plus field updates).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything a server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free one (see `Server::local_addr`).
    pub listen: SocketAddr,
    /// The SQLite file; it and its parent directory are created if missing.
    pub database: PathBuf,
    /// The built widget (`index.html` and its assets), served at `/`.
    pub static_dir: Option<PathBuf>,
    /// How often the server pings each WebSocket; a socket silent for two
    /// intervals is closed.
    pub ping_interval: Duration,
    /// Origins (`https://host:port`) allowed to open `/ws` besides the
    /// server's own.
    pub allowed_origins: Vec<String>,
    pub limits: Limits,
}

impl Config {
    pub fn new(database: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: database.into(),
            static_dir: None,
            ping_interval: Duration::from_secs(15),
            allowed_origins: Vec::new(),
            limits: Limits::default(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new("data/optrail.db")
    }
}

/// The limits of PROTOCOL.md. They are fields, not constants, so a test can
/// lower or raise one without waiting a minute or starting 60 operations.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Request bodies larger than this get `413 body_too_large`.
    pub body_bytes: usize,
    /// Client frames larger than this get `frame_too_large` and a close.
    pub frame_bytes: usize,
    pub subscriptions_per_connection: usize,
    /// Operations one client address may start per minute (a token bucket
    /// of this size, refilled evenly over the minute).
    pub starts_per_minute: u32,
    /// `limit` of an events page is clamped to this.
    pub events_per_page: u32,
    /// `limit` of an operations page is clamped to this.
    pub operations_per_page: u32,
    /// Pushed frames a connection may have queued; a subscriber this far
    /// behind is disconnected (it recovers by resubscribing) so that it never
    /// slows the others down.
    pub connection_queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 16 * 1024,
            frame_bytes: 4 * 1024,
            subscriptions_per_connection: 64,
            starts_per_minute: 60,
            events_per_page: 1000,
            operations_per_page: 100,
            connection_queue: 1024,
        }
    }
}
