//! The real `optrail-server` binary as a child process, over a SQLite file
//! in a temporary directory (or a PostgreSQL database shared with other
//! instances), plus the few API calls the scenarios compare the widget
//! against.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use optrail_core::{Event, EventsPage, Operation, OperationId, OperationList, Status};
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
    /// `--demo`: anonymous viewers of the `demo` owner and simulated runs.
    pub demo: bool,
    /// `OPTRAIL_PUBLISHER_KEY` (`--publisher-key`, passed in the
    /// environment so that it stays out of process lists). When set, the
    /// harness's own reads ([`ServerProcess::events`], …) present it.
    pub publisher_key: Option<String>,
    /// `OPTRAIL_TOKEN_SECRET` (`--token-secret`): viewers need HS256 tokens.
    pub token_secret: Option<String>,
    /// `--allow-origin`, each: pages of other origins that may embed it.
    pub allowed_origins: Vec<String>,
    /// `--database`: a `postgres://` URL that several instances share
    /// ([`crate::postgres::Postgres`]); a SQLite file of this server's own
    /// when `None`.
    pub database: Option<String>,
}

impl ServerOptions {
    /// A server as in production: no demo mode, a publisher key, viewer
    /// tokens signed with `token_secret`, and `origin` allowed to embed the
    /// widget (CORS and the WebSocket `Origin` check).
    pub fn secured(publisher_key: &str, token_secret: &str, origin: &str) -> Self {
        Self {
            demo: false,
            publisher_key: Some(publisher_key.to_owned()),
            token_secret: Some(token_secret.to_owned()),
            allowed_origins: vec![origin.to_owned()],
            ..Self::default()
        }
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            ping_interval_ms: 2_000,
            starts_per_minute: 1_000,
            static_dir: None,
            demo: true,
            publisher_key: None,
            token_secret: None,
            allowed_origins: Vec::new(),
            database: None,
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

    /// What `--database` names: the shared URL, or the SQLite file.
    pub fn database(&self) -> OsString {
        match &self.options.database {
            Some(url) => url.into(),
            None => self.dir.path().join("optrail.db").into(),
        }
    }

    /// Another process of the same binary with the same options: on a
    /// shared database ([`ServerOptions::database`]), another instance of
    /// the same service.
    pub async fn another_instance(&self) -> Result<ServerProcess> {
        ServerProcess::start(self.options.clone()).await
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
                .env_remove("OPTRAIL_PUBLISHER_KEY")
                .env_remove("OPTRAIL_TOKEN_SECRET")
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(file.try_clone()?)
                .stderr(file);
            if self.options.demo {
                // Anonymous widgets and simulated runs, as `make run`.
                command.arg("--demo");
            }
            for origin in &self.options.allowed_origins {
                command.arg("--allow-origin").arg(origin);
            }
            if let Some(key) = &self.options.publisher_key {
                command.env("OPTRAIL_PUBLISHER_KEY", key);
            }
            if let Some(secret) = &self.options.token_secret {
                command.env("OPTRAIL_TOKEN_SECRET", secret);
            }
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

    /// A request to `path` with the publisher key, if the server has one.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, self.url_of(path));
        match &self.options.publisher_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// Sends `request` and decodes a `2xx` answer as `T`; anything else is
    /// a failure that quotes the server.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T> {
        let response = request.send().await.context(what)?;
        let status = response.status();
        let body = response.text().await?;
        if !status.is_success() {
            return Err(Failure::new(format!("{what} answered {status}: {body}")));
        }
        serde_json::from_str(&body).context(what)
    }

    /// As a publisher: `POST /operations {kind, owner, params}`, an
    /// operation fed by the caller rather than simulated.
    pub async fn publish_operation(
        &self,
        kind: &str,
        owner: &str,
        params: Value,
    ) -> Result<Operation> {
        let body = json!({ "kind": kind, "owner": owner, "params": params });
        let request = self
            .request(reqwest::Method::POST, "/operations")
            .json(&body);
        self.call("POST /operations (publisher)", request).await
    }

    /// As a publisher: `POST /operations/{id}/events {events}`, one atomic
    /// batch; the server's AppendResult.
    pub async fn append_events(&self, id: &OperationId, events: &[Value]) -> Result<Value> {
        let path = format!("/operations/{id}/events");
        let request = self
            .request(reqwest::Method::POST, &path)
            .json(&json!({ "events": events }));
        self.call(&format!("POST {path}"), request).await
    }

    /// `GET /operations` as the holder of `token` (a viewer's): the ids of
    /// the operations the server lists for it.
    pub async fn listed_for(&self, token: &str) -> Result<Vec<OperationId>> {
        let request = self
            .http
            .get(self.url_of("/operations?limit=100"))
            .bearer_auth(token);
        let page: OperationList = self.call("GET /operations (viewer)", request).await?;
        Ok(page.operations.into_iter().map(|o| o.id).collect())
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
        let path = format!("/operations/{id}");
        let request = self.request(reqwest::Method::GET, &path);
        self.call(&format!("GET {path}"), request).await
    }

    /// The whole of `GET /operations/{id}/events`, page by page, with the
    /// status of the first page (read before the events it covers).
    pub async fn events(&self, id: &OperationId) -> Result<(Status, Vec<Event>)> {
        let mut events: Vec<Event> = Vec::new();
        let mut status = None;
        loop {
            let after = events.last().and_then(|e| e.seq).map_or(0, |s| s.0);
            let path = format!("/operations/{id}/events?after={after}&limit=1000");
            let request = self.request(reqwest::Method::GET, &path);
            let page: EventsPage = self.call(&format!("GET {path}"), request).await?;
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

/// Params for a fast, deterministic payment started over HTTP: `steps`
/// progress events `step_ms` apart, never failing.
pub fn payment(description: &str, step_ms: u64, steps: u32) -> serde_json::Value {
    serde_json::json!({
        "amount": 9.99,
        "currency": "EUR",
        "description": description,
        "stepMs": step_ms,
        "steps": steps,
        "failureRate": 0,
    })
}
