//! A real server on a random loopback port over a real SQLite file in a
//! temporary directory, with real HTTP and WebSocket clients.

#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use optrail_core::{Event, EventsPage, Operation, OperationId, Seq, ServerFrame};
use optrail_server::{Config, Server};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Long enough for anything these tests wait for on a loaded 2-core
/// machine, short enough that a hang fails instead of blocking CI.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A test's database directory; the file outlives server restarts.
pub struct Data {
    pub dir: TempDir,
}

impl Data {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("optrail.db")
    }

    /// Loopback, a random port, generous start limit (tests start many),
    /// demo mode (anonymous viewers of the demo owner, simulated runs).
    pub fn config(&self) -> Config {
        let mut config = Config::new(self.path());
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.limits.starts_per_minute = 100_000;
        config.access.demo = true;
        config
    }
}

pub struct TestServer {
    pub server: Server,
    pub http: reqwest::Client,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        let server = optrail_server::serve(config).await.expect("server starts");
        Self {
            server,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.server.local_addr())
    }

    pub async fn stop(self) {
        self.server.shutdown().await;
    }

    /// `POST /operations`, expecting 202.
    pub async fn start_operation(&self, kind: &str, params: Value) -> Operation {
        let response = self
            .http
            .post(self.url("/operations"))
            .json(&json!({"kind": kind, "params": params}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{:?}", response.text().await);
        response.json().await.unwrap()
    }

    pub async fn operation(&self, id: &OperationId) -> Operation {
        let response = self
            .http
            .get(self.url(&format!("/operations/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn events_page(&self, id: &OperationId, after: u64, limit: u32) -> EventsPage {
        let response = self
            .http
            .get(self.url(&format!(
                "/operations/{id}/events?after={after}&limit={limit}"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Every event up to the head at the time of the last page.
    pub async fn all_events(&self, id: &OperationId) -> Vec<Event> {
        let mut events: Vec<Event> = Vec::new();
        loop {
            let after = events.last().and_then(|e| e.seq).unwrap_or(Seq::ZERO);
            let page = self.events_page(id, after.0, 1000).await;
            events.extend(page.events);
            if !page.has_more {
                return events;
            }
        }
    }

    /// Every event, read with a bearer credential (a token or the key).
    pub async fn all_events_with(&self, id: &OperationId, bearer: &str) -> Vec<Event> {
        let response = self
            .http
            .get(self.url(&format!("/operations/{id}/events?limit=1000")))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json::<EventsPage>().await.unwrap().events
    }

    /// Polls until the operation is terminal.
    pub async fn finished(&self, id: &OperationId) -> Operation {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let operation = self.operation(id).await;
                if operation.status.is_terminal() {
                    return operation;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the operation finishes")
    }

    /// Polls until the operation's head reaches `seq`.
    pub async fn reached(&self, id: &OperationId, seq: u64) -> Operation {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let operation = self.operation(id).await;
                if operation.head.0 >= seq {
                    return operation;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the operation progresses")
    }

    pub async fn ws(&self) -> Ws {
        Ws::connect(&self.ws_url(), None).await
    }
}

pub type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client speaking the live channel's JSON frames.
pub struct Ws {
    pub stream: Stream,
    /// The ping interval the server's `hello` announced, once read.
    pub hello: Option<u64>,
}

impl Ws {
    pub async fn connect(url: &str, origin: Option<&str>) -> Self {
        Self::try_connect(url, origin)
            .await
            .expect("the WebSocket opens")
    }

    pub async fn try_connect(
        url: &str,
        origin: Option<&str>,
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let mut request = url.into_client_request().unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        let (stream, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self {
            stream,
            hello: None,
        })
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text.to_owned()))
            .await
            .expect("the frame is sent");
    }

    pub async fn subscribe(&mut self, id: &OperationId, after: u64) {
        self.send(json!({"type": "subscribe", "operationId": id, "after": after}))
            .await;
    }

    /// The next text frame, parsed; `None` when the socket closed. The
    /// connection's `hello` is taken note of in [`Ws::hello`], not returned.
    pub async fn next(&mut self) -> Option<ServerFrame> {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("a frame within the patience");
            match message {
                Some(Ok(Message::Text(text))) => {
                    match ServerFrame::parse(text.as_str()).expect("a valid frame") {
                        ServerFrame::Hello { ping_interval_ms } => {
                            self.hello = Some(ping_interval_ms);
                        }
                        frame => return Some(frame),
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next frame that is not a ping (answering pings as a client must).
    pub async fn next_frame(&mut self) -> ServerFrame {
        loop {
            match self.next().await.expect("the socket stays open") {
                ServerFrame::Ping => self.send(json!({"type": "pong"})).await,
                frame => return frame,
            }
        }
    }

    /// The close frame's code, after skipping other frames.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("the socket closes within the patience");
            match message {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }
}

/// The event types and percentages of a log, for comparing runs.
pub fn shape(events: &[Event]) -> Vec<(String, Option<f64>)> {
    events
        .iter()
        .map(|e| {
            (
                e.kind.as_str().to_owned(),
                e.details.get("percentage").and_then(Value::as_f64),
            )
        })
        .collect()
}

/// Asserts the seqs are exactly 1..=n and the ids unique.
pub fn assert_gap_free(events: &[Event]) {
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.seq, Some(Seq(i as u64 + 1)), "seq of event {i}");
    }
    let mut ids: Vec<_> = events.iter().map(|e| e.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "event ids are unique");
}

/// What a successful payment with `steps` progress updates emits.
pub fn successful_payment(steps: u64) -> Vec<(String, Option<f64>)> {
    let mut shape = vec![
        ("ProcessingStarted".to_owned(), None),
        ("FraudCheckStarted".to_owned(), None),
        ("FraudCheckPassed".to_owned(), None),
    ];
    for i in 1..=steps {
        let percentage = (i as f64 * 100.0 / steps as f64).round();
        shape.push(("ProgressUpdated".to_owned(), Some(percentage)));
    }
    shape.push(("PaymentSucceeded".to_owned(), Some(100.0)));
    shape
}

/// A throw-away PostgreSQL cluster (scripts/pg.sh) on a free loopback port,
/// stopped and removed on drop. Tests that need it fail, never skip, when
/// PostgreSQL is missing.
pub struct Postgres {
    dir: TempDir,
    pub url: String,
}

impl Postgres {
    pub fn start() -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg.sh");
        let dir = tempfile::tempdir().expect("a temporary directory");
        // As root the cluster runs as `postgres`, which must reach the dir.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let output = std::process::Command::new(script)
            .arg("start")
            .arg(dir.path().join("pg"))
            // Durability is not what these tests check; speed is welcome.
            .env("PG_SETTINGS", "-c fsync=off")
            .output()
            .expect("scripts/pg.sh runs");
        assert!(
            output.status.success(),
            "cannot start PostgreSQL for this test ({}); run scripts/setup.sh, which installs it",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        let url = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        Self { dir, url }
    }

    /// Loopback, a random port, demo mode, on this cluster.
    pub fn config(&self) -> Config {
        let mut config = Config::new(&self.url);
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.limits.starts_per_minute = 100_000;
        config.access.demo = true;
        config
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg.sh");
        let _ = std::process::Command::new(script)
            .arg("stop")
            .arg(self.dir.path().join("pg"))
            .output();
    }
}

/// Starts a server on `config` with a publisher key and a token secret and
/// runs the conformance command against it: every check must pass.
pub async fn passes_conformance(mut config: Config) {
    use optrail_server::auth::{Access, PublisherKey};
    use optrail_server::conformance::{self, Target};
    use optrail_server::token::TokenVerifier;

    const KEY: &str = "conformance-publisher-key-0123456789";
    const SECRET: &str = "conformance-token-secret-0123456789abcdef";
    config.access = Access {
        demo: false,
        publisher_key: Some(PublisherKey::new(KEY).unwrap()),
        tokens: Some(TokenVerifier::new(SECRET.as_bytes()).unwrap()),
    };
    let server = TestServer::start(config).await;
    let target = Target {
        base: server.server.url(),
        publisher_key: KEY.into(),
        token_secret: Some(SECRET.into()),
    };
    let outcomes = conformance::run(&target, |outcome| println!("{outcome}")).await;
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|o| !matches!(o.verdict, Some(Ok(()))))
        .map(ToString::to_string)
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    server.stop().await;
}
