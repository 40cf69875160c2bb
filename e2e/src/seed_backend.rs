//! A small backend that speaks exactly the seed's format, for the widget's
//! compat mode: `GET /payments/{id}/events` answers a plain JSON array of
//! events (id, type, message, happenedAt, details — no `seq`), and
//! `GET /payments/{id}/ws` pushes the same bare event objects. It is
//! deliberately unkind: history comes newest first, and every pushed event
//! is pushed twice.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use tokio::sync::broadcast;
use tower_http::services::ServeDir;

use crate::{Context, Result, workspace};

/// The page the compat test opens: the widget mounted in compat mode, the
/// payment chosen by the hash (`#/operations/{id}`).
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><link rel="stylesheet" href="/optrail.css"></head>
<body><div id="optrail-app"></div>
<script type="module">
  import init, { mount } from "/optrail.js";
  await init();
  mount(document.getElementById("optrail-app"), {
    compat: true, apiBase: "", namespace: "compat-e2e", hashRouting: true,
  });
</script></body></html>"#;

#[derive(Clone)]
struct Shared {
    payment: String,
    events: Arc<Mutex<Vec<Value>>>,
    pushes: broadcast::Sender<Value>,
}

/// The running backend; stops when dropped.
pub struct SeedBackend {
    addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl SeedBackend {
    /// Serves one payment, `payment`, and the built widget (`dist/`).
    pub async fn start(payment: &str) -> Result<Self> {
        let shared = Shared {
            payment: payment.to_owned(),
            events: Arc::default(),
            pushes: broadcast::channel(256).0,
        };
        let app = Router::new()
            .route("/compat.html", get(|| async { Html(PAGE) }))
            .route("/payments/{id}/events", get(history))
            .route("/payments/{id}/ws", get(socket))
            .fallback_service(ServeDir::new(workspace::dist_dir()?))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the seed backend")?;
        let addr = listener
            .local_addr()
            .context("the seed backend's address")?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Records an event and pushes it (twice) to every open socket.
    pub fn emit(&self, event: Value) {
        self.shared
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
        let _ = self.shared.pushes.send(event);
    }

    /// Every event emitted, in emission order.
    pub fn events(&self) -> Vec<Value> {
        self.shared
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for SeedBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn history(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    if id != shared.payment {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut events = shared
        .events
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    events.reverse();
    axum::Json(events).into_response()
}

async fn socket(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if id != shared.payment {
        return StatusCode::NOT_FOUND.into_response();
    }
    let pushes = shared.pushes.subscribe();
    upgrade.on_upgrade(move |socket| push(socket, pushes))
}

async fn push(mut socket: WebSocket, mut pushes: broadcast::Receiver<Value>) {
    while let Ok(event) = pushes.recv().await {
        let text = event.to_string();
        for _ in 0..2 {
            if socket
                .send(Message::Text(text.clone().into()))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}
