//! The real `optrail-server` binary as a child process, over a SQLite file
//! in a temporary directory, plus the few API calls the scenarios compare
//! the widget against.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use optrail_core::{Event, EventsPage, Operation, OperationId, Status};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::process::ChildGuard;
use crate::{Context, Failure, Result, workspace};

/// How long a server may take to print its address.
const STARTUP: Duration = Duration::from_secs(15);

/// Knobs of the server command line.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `--ping-interval-ms`: short, so ping/pong runs during the scenarios.
    pub ping_interval_ms: u64,
    /// `--starts-per-minute`.
    pub starts_per_minute: u32,
    /// `--static-dir`; the built widget (`dist/`) when `None`.
    pub static_dir: Option<PathBuf>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            ping_interval_ms: 2_000,
            starts_per_minute: 1_000,
            static_dir: None,
        }
    }
}

/// One server: its database outlives [`ServerProcess::kill`], and
/// [`ServerProcess::restart`] brings it back on the same port.
pub struct ServerProcess {
    binary: PathBuf,
    dist: PathBuf,
    options: ServerOptions,
    dir: TempDir,
    addr: SocketAddr,
    child: Option<ChildGuard>,
    /// One log file per start, oldest first.
    logs: Vec<PathBuf>,
    http: reqwest::Client,
}

impl ServerProcess {
    /// Starts the binary on a free loopback port over a fresh database.
    pub async fn start(options: ServerOptions) -> Result<Self> {
        let binary = workspace::server_binary()?;
        let dist = match &options.static_dir {
            Some(dir) => dir.clone(),
            None => workspace::dist_dir()?,
        };
        let dir = tempfile::Builder::new()
            .prefix("optrail-e2e-server-")
            .tempdir()
            .context("cannot create the server's temporary directory")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let mut server = Self {
            binary,
            dist,
            options,
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child: None,
            logs: Vec::new(),
            http,
        };
        server.spawn().await?;
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn database(&self) -> PathBuf {
        self.dir.path().join("optrail.db")
    }

    /// Every start's log (stdout and stderr), oldest first.
    pub fn logs(&self) -> &[PathBuf] {
        &self.logs
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.exited().is_none())
    }

    /// SIGKILL: no shutdown, no flush; sockets are closed by the kernel.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
    }

    /// Starts the binary again on the same port and database.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn().await
    }

    async fn spawn(&mut self) -> Result<()> {
        let deadline = Instant::now() + STARTUP;
        loop {
            let log = self
                .dir
                .path()
                .join(format!("server-{}.log", self.logs.len() + 1));
            self.logs.push(log.clone());
            let file = std::fs::File::create(&log).context("cannot create the server log")?;
            let mut command = Command::new(&self.binary);
            command
                .arg("--listen")
                .arg(self.addr.to_string())
                .arg("--database")
                .arg(self.database())
                .arg("--static-dir")
                .arg(&self.dist)
                .arg("--ping-interval-ms")
                .arg(self.options.ping_interval_ms.to_string())
                .arg("--starts-per-minute")
                .arg(self.options.starts_per_minute.to_string())
                // Anonymous widgets and simulated runs, as `make run`.
                .arg("--demo")
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(file.try_clone()?)
                .stderr(file);
            let mut child = ChildGuard::spawn("optrail-server", command, false)?;
            match wait_for_address(&mut child, &log, deadline).await {
                Ok(addr) => {
                    self.addr = addr;
                    self.child = Some(child);
                    return Ok(());
                }
                // The old port may linger for a moment after a SIGKILL.
                Err(_) if Instant::now() < deadline && self.addr.port() != 0 => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn url_of(&self, path: &str) -> String {
        format!("{}{path}", self.url())
    }

    /// `POST /operations`, expecting 202.
    pub async fn start_operation(&self, kind: &str, params: Value) -> Result<Operation> {
        let response = self
            .http
            .post(self.url_of("/operations"))
            .json(&json!({ "kind": kind, "params": params }))
            .send()
            .await
            .context("POST /operations")?;
        let status = response.status();
        let body = response.text().await?;
        if status.as_u16() != 202 {
            return Err(Failure::new(format!(
                "POST /operations answered {status}: {body}"
            )));
        }
        serde_json::from_str(&body).context("the start answer")
    }

    /// `GET /operations/{id}`.
    pub async fn operation(&self, id: &OperationId) -> Result<Operation> {
        let url = self.url_of(&format!("/operations/{id}"));
        let response = self.http.get(&url).send().await.context(&url)?;
        let status = response.status();
        let body = response.text().await?;
        if !status.is_success() {
            return Err(Failure::new(format!("GET {url} answered {status}: {body}")));
        }
        serde_json::from_str(&body).context(url)
    }

    /// The whole of `GET /operations/{id}/events`, page by page, with the
    /// status of the first page (read before the events it covers).
    pub async fn events(&self, id: &OperationId) -> Result<(Status, Vec<Event>)> {
        let mut events: Vec<Event> = Vec::new();
        let mut status = None;
        loop {
            let after = events.last().and_then(|e| e.seq).map_or(0, |s| s.0);
            let url = self.url_of(&format!("/operations/{id}/events?after={after}&limit=1000"));
            let response = self.http.get(&url).send().await.context(&url)?;
            let code = response.status();
            let body = response.text().await?;
            if !code.is_success() {
                return Err(Failure::new(format!("GET {url} answered {code}: {body}")));
            }
            let page: EventsPage = serde_json::from_str(&body).context(&url)?;
            status.get_or_insert(page.status);
            let more = page.has_more && !page.events.is_empty();
            events.extend(page.events);
            if !more {
                break;
            }
        }
        Ok((status.unwrap_or(Status::NotStarted), events))
    }

    /// Polls until the server says the operation is terminal; its final
    /// status and events.
    pub async fn finished(
        &self,
        id: &OperationId,
        within: Duration,
    ) -> Result<(Status, Vec<Event>)> {
        let deadline = Instant::now() + within;
        loop {
            let (status, events) = self.events(id).await?;
            if status.is_terminal() {
                // The status was read before the events: read once more so
                // that the events are those of the terminal status.
                return self.events(id).await;
            }
            if Instant::now() > deadline {
                return Err(Failure::new(format!(
                    "operation {id} still {status:?} on the server after {within:?} ({} events)",
                    events.len()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Waits until the server's log names its address (`listening on URL`).
async fn wait_for_address(
    child: &mut ChildGuard,
    log: &Path,
    deadline: Instant,
) -> Result<SocketAddr> {
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(addr) = text.lines().find_map(|line| {
            line.trim()
                .strip_prefix("listening on http://")
                .and_then(|a| a.parse().ok())
        }) {
            return Ok(addr);
        }
        if let Some(status) = child.exited() {
            return Err(Failure::new(format!(
                "optrail-server exited ({status}) before listening; its log ({}):\n{}",
                log.display(),
                tail(&text, 20)
            )));
        }
        if Instant::now() > deadline {
            return Err(Failure::new(format!(
                "optrail-server did not print its address within {STARTUP:?}; its log ({}):\n{}",
                log.display(),
                tail(&text, 20)
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
