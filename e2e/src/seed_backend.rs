//! A small backend that speaks exactly the seed's format, for the widget's
//! compat mode: `GET /payments/{id}/events` answers a plain JSON array of
//! events (id, type, message, happenedAt, details — no `seq`), and
//! `GET /payments/{id}/ws` pushes the same bare event objects. It is
//! deliberately unkind: history comes newest first, and every pushed event
//! is pushed twice.
//!
//! It serves any number of payments; an id it does not serve gets `404` on
//! both routes, as a real backend answers for a payment it does not know.
//! A payment's history may also come wrapped as `{"events": [...]}`
//! ([`HistoryShape::Wrapped`]), and its events are whatever JSON the test
//! emits: the odd shapes real backends write are the test's to choose.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tower_http::services::ServeDir;

use crate::{Context, Result, workspace};

/// The page the compat tests open: the widget mounted in compat mode, the
/// payment chosen by the hash (`#/operations/{id}`), its handle as
/// `window.optrailWidget` (to `track` more).
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><link rel="stylesheet" href="/optrail.css"></head>
<body><div id="optrail-app"></div>
<script type="module">
  import init, { mount } from "/optrail.js";
  await init();
  window.optrailWidget = mount(document.getElementById("optrail-app"), {
    compat: true, apiBase: "", namespace: "compat-e2e", hashRouting: true,
  });
</script></body></html>"#;

/// How a payment's history is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HistoryShape {
    /// A plain array, as the seed writes it.
    #[default]
    Array,
    /// `{"events": [...]}`, as some backends wrap their lists.
    Wrapped,
}

#[derive(Default)]
struct Payment {
    shape: HistoryShape,
    events: Vec<Value>,
}

/// What was asked of one id, served or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Asked {
    /// `GET /payments/{id}/events` requests.
    pub histories: usize,
    /// `GET /payments/{id}/ws` upgrade requests.
    pub sockets: usize,
}

#[derive(Default)]
struct Book {
    payments: HashMap<String, Payment>,
    asked: HashMap<String, Asked>,
    /// The first payment: what [`SeedBackend::emit`] and
    /// [`SeedBackend::events`] are about.
    first: String,
}

#[derive(Clone)]
struct Shared {
    book: Arc<Mutex<Book>>,
    /// (payment, event) as pushed.
    pushes: broadcast::Sender<(String, Value)>,
}

impl Shared {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running backend; stops when dropped.
pub struct SeedBackend {
    addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl SeedBackend {
    /// Serves one payment, `payment` (more with
    /// [`SeedBackend::add_payment`]), and the built widget (`dist/`).
    pub async fn start(payment: &str) -> Result<Self> {
        let shared = Shared {
            book: Arc::default(),
            pushes: broadcast::channel(1024).0,
        };
        shared.book().first = payment.to_owned();
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
        let backend = Self { addr, shared, task };
        backend.add_payment(payment, HistoryShape::Array);
        Ok(backend)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `payment` too (no events yet), its history written as `shape`.
    pub fn add_payment(&self, payment: &str, shape: HistoryShape) {
        self.shared
            .book()
            .payments
            .entry(payment.to_owned())
            .or_default()
            .shape = shape;
    }

    /// Records an event of the first payment and pushes it (twice) to
    /// every socket open on it.
    pub fn emit(&self, event: Value) {
        let first = self.shared.book().first.clone();
        self.emit_to(&first, event);
    }

    /// Records an event of `payment` (served) and pushes it (twice) to
    /// every socket open on it.
    pub fn emit_to(&self, payment: &str, event: Value) {
        if let Some(served) = self.shared.book().payments.get_mut(payment) {
            served.events.push(event.clone());
        }
        let _ = self.shared.pushes.send((payment.to_owned(), event));
    }

    /// Every event of the first payment, in emission order.
    pub fn events(&self) -> Vec<Value> {
        let first = self.shared.book().first.clone();
        self.events_of(&first)
    }

    /// Every event of `payment`, in emission order.
    pub fn events_of(&self, payment: &str) -> Vec<Value> {
        self.shared
            .book()
            .payments
            .get(payment)
            .map(|p| p.events.clone())
            .unwrap_or_default()
    }

    /// What was asked of `id` so far, whether it is served or not.
    pub fn asked(&self, id: &str) -> Asked {
        self.shared
            .book()
            .asked
            .get(id)
            .copied()
            .unwrap_or_default()
    }
}

impl Drop for SeedBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn history(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let mut book = shared.book();
    book.asked.entry(id.clone()).or_default().histories += 1;
    let Some(payment) = book.payments.get(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let events: Vec<Value> = payment.events.iter().rev().cloned().collect();
    match payment.shape {
        HistoryShape::Array => axum::Json(events).into_response(),
        HistoryShape::Wrapped => axum::Json(json!({ "events": events })).into_response(),
    }
}

async fn socket(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    {
        let mut book = shared.book();
        book.asked.entry(id.clone()).or_default().sockets += 1;
        if !book.payments.contains_key(&id) {
            return StatusCode::NOT_FOUND.into_response();
        }
    }
    let pushes = shared.pushes.subscribe();
    upgrade.on_upgrade(move |socket| push(socket, id, pushes))
}

async fn push(
    mut socket: WebSocket,
    payment: String,
    mut pushes: broadcast::Receiver<(String, Value)>,
) {
    while let Ok((to, event)) = pushes.recv().await {
        if to != payment {
            continue;
        }
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

/// A seed-format event as the tests emit it, at `at_ms` into a fixed minute.
pub fn event(id: &str, kind: &str, at_ms: u64) -> Value {
    json!({
        "id": id,
        "type": kind,
        "message": format!("{kind} ({id})"),
        "happenedAt": format!("2026-11-24T10:00:{:02}.{:03}Z", at_ms / 1000, at_ms % 1000),
        "details": { "workerId": "seed-worker-1" },
    })
}

/// The order the widget must show [`event`]s in: by (happenedAt, id), each
/// id once. Only for `event`'s timestamps, which sort as text.
pub fn by_time_then_id(events: &[Value]) -> Vec<String> {
    let mut keyed: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["happenedAt"].as_str().unwrap_or_default().to_owned(),
                e["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    keyed.sort();
    keyed.dedup_by(|a, b| a.1 == b.1);
    keyed.into_iter().map(|(_, id)| id).collect()
}
