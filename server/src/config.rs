//! What a server is started with. `main.rs` fills it from the command line;
//! tests build it directly (`Config::new(db_path)` plus field updates).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::Access;
use crate::client::IpNet;

/// Everything a server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free one (see `Server::local_addr`).
    pub listen: SocketAddr,
    /// The SQLite file (it and its parent directory are created if
    /// missing), or a `postgres://` URL that several instances may share.
    pub database: PathBuf,
    /// The built widget (`index.html` and its assets), served at `/`.
    pub static_dir: Option<PathBuf>,
    /// How often the server pings each WebSocket; a socket silent for two
    /// intervals is closed.
    pub ping_interval: Duration,
    /// Origins (`https://host:port`) allowed to open `/ws` and to call the
    /// HTTP API cross-origin (CORS) besides the server's own; `*` allows all.
    pub allowed_origins: Vec<String>,
    /// Host names (without port) the server answers to, besides `localhost`
    /// and IP literals, which DNS rebinding cannot forge; `*` allows all.
    pub allowed_hosts: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the real client.
    pub trusted_proxies: Vec<IpNet>,
    /// Who may do what: demo mode, the publisher key, viewer tokens.
    pub access: Access,
    pub durability: Durability,
    /// The most appends one transaction holds (group commit); 1 commits
    /// each append alone, as before issue 20 (a benchmark's baseline).
    pub max_group: usize,
    pub retention: Retention,
    pub limits: Limits,
}

/// How hard a commit waits for the disk (SQLite's `synchronous` in WAL mode;
/// on PostgreSQL the server's own `synchronous_commit` decides).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is on the disk before it is published: a power cut
    /// loses nothing that a client has seen. The default, because
    /// PROTOCOL.md promises that a pushed event is never lost.
    #[default]
    Full,
    /// Commits survive a crash of the process but the last ones may be lost
    /// in a power cut or kernel crash, after clients have seen them. Faster;
    /// an explicit choice (`--sqlite-synchronous normal`).
    Normal,
}

/// Removal of finished operations, so that starting operations forever
/// cannot fill the disk.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Finished operations not updated for this long are removed with their
    /// events; `None` keeps everything.
    pub max_age: Option<Duration>,
    /// How often the sweep runs.
    pub every: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: Some(Duration::from_secs(30 * 24 * 3600)),
            every: Duration::from_secs(3600),
        }
    }
}

impl Config {
    pub fn new(database: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: database.into(),
            static_dir: None,
            ping_interval: Duration::from_secs(15),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            trusted_proxies: Vec::new(),
            access: Access::default(),
            durability: Durability::default(),
            max_group: crate::commit::MAX_GROUP,
            retention: Retention::default(),
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
    /// Open WebSockets per client (an IPv4 address or an IPv6 /64).
    pub sockets_per_client: usize,
    /// Events in one publisher append.
    pub events_per_batch: usize,
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
            sockets_per_client: 64,
            events_per_batch: 100,
            starts_per_minute: 60,
            events_per_page: 1000,
            operations_per_page: 100,
            connection_queue: 1024,
        }
    }
}
