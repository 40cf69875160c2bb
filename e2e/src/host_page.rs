//! A host site on an origin of its own (another loopback port) that embeds
//! the widget the way README.md's "Embedding" tells a customer to: the
//! module and the wasm imported from the optrail server's origin, the API
//! called cross-origin with a viewer token from a getter
//! (`token: () => window.viewerToken`), under a strict Content-Security-
//! Policy that names the optrail server and nothing else.
//!
//! The host "signs viewers in" the simplest way: the test hands it a token
//! per viewer ([`HostPage::sign_in`]), and `/as/{viewer}` renders the page
//! that viewer's browser gets, with the token in it, as a host's backend
//! would after its own login.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::{Context, Result};

/// Allows the page's two inline scripts and nothing else inline.
const NONCE: &str = "optrail-e2e-host";

#[derive(Default)]
struct Site {
    /// `http://127.0.0.1:PORT` of the optrail server the page embeds.
    optrail: Option<String>,
    /// Viewer name → viewer token.
    viewers: HashMap<String, String>,
}

type Shared = Arc<Mutex<Site>>;

/// The running host site; stops when dropped.
pub struct HostPage {
    addr: SocketAddr,
    site: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl HostPage {
    /// Listens on a free loopback port at once, so that its origin can be
    /// given to the optrail server (`--allow-origin`) before either page is
    /// opened; [`HostPage::embed`] then names that server.
    pub async fn start() -> Result<Self> {
        let site = Shared::default();
        let app = Router::new()
            .route("/as/{viewer}", get(page))
            .with_state(site.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the host page")?;
        let addr = listener.local_addr().context("the host page's address")?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, site, task })
    }

    /// `http://127.0.0.1:PORT`: the origin the optrail server must allow.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The optrail server (`http://host:port`) whose widget and API the
    /// page uses.
    pub fn embed(&self, optrail: &str) {
        self.lock().optrail = Some(optrail.trim_end_matches('/').to_owned());
    }

    /// `/as/{viewer}` will carry `token` as `window.viewerToken`.
    pub fn sign_in(&self, viewer: &str, token: String) {
        self.lock().viewers.insert(viewer.to_owned(), token);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Site> {
        self.site.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for HostPage {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn page(State(site): State<Shared>, Path(viewer): Path<String>) -> Response {
    let (optrail, token) = {
        let site = site.lock().unwrap_or_else(|p| p.into_inner());
        match (&site.optrail, site.viewers.get(&viewer)) {
            (Some(optrail), Some(token)) => (optrail.clone(), token.clone()),
            _ => return StatusCode::NOT_FOUND.into_response(),
        }
    };
    let socket = optrail.replacen("http://", "ws://", 1);
    let policy = format!(
        "default-src 'none'; script-src 'nonce-{NONCE}' {optrail} 'wasm-unsafe-eval'; \
         style-src {optrail} 'unsafe-inline'; connect-src {optrail} {socket}; base-uri 'none'"
    );
    // JSON string literals are JavaScript string literals.
    let js = |s: &str| serde_json::Value::from(s).to_string();
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Host site</title>
<link rel="stylesheet" href="{optrail}/optrail.css"></head>
<body><main><h1>Your deployments</h1><div id="optrail-app"></div></main>
<script nonce="{NONCE}">window.viewerToken = {token};</script>
<script type="module" nonce="{NONCE}">
  import init, {{ mount }} from {module};
  await init();
  window.optrailWidget = mount(document.getElementById("optrail-app"), {{
    apiBase: {base}, namespace: "host-e2e", hashRouting: true,
    token: () => window.viewerToken,
  }});
</script></body></html>"#,
        token = js(&token),
        module = js(&format!("{optrail}/optrail.js")),
        base = js(&optrail),
    );
    ([(header::CONTENT_SECURITY_POLICY, policy)], Html(html)).into_response()
}
