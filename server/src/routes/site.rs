//! The built widget's files, served at `/` when `--static-dir` is given,
//! under a Content-Security-Policy the widget runs with.
//!
//! Unknown paths get `index.html` (a single-page app), except under the
//! API's own paths and for clients that ask for JSON only: those get the
//! JSON `not_found` a program expects, not a page.

use std::path::{Path, PathBuf};

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::error::Error;

/// Paths that belong to the API: never answered with a page.
const API_PATHS: &[&str] = &["/operations", "/ws", "/healthz"];

pub fn is_api_path(path: &str) -> bool {
    API_PATHS.iter().any(|api| {
        path.strip_prefix(api)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Whether the client wants JSON and not a page (`Accept` names JSON and
/// no HTML), as programs that hit a wrong path do.
fn wants_json_only(request: &Request) -> bool {
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .unwrap_or_default();
    accept.contains("application/json") && !accept.contains("text/html")
}

/// The fallback of the router when it serves the widget.
pub async fn serve(dir: PathBuf, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if is_api_path(&path) || wants_json_only(&request) {
        return Error::NotFound(format!("{method} {path}")).into_response();
    }
    let files = ServeDir::new(&dir).fallback(ServeFile::new(dir.join("index.html")));
    match files.oneshot(request).await {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    }
}

/// The policy for the widget's pages: its own scripts, styles and sockets
/// only; `'wasm-unsafe-eval'` because the widget is WebAssembly compiled by
/// a module script; each inline script of the served HTML pages (Trunk's
/// loader, the portal example) allowed by its SHA-256 and nothing else
/// inline. Styles allow inline `style` attributes, which the widget sets
/// (progress bars); they cannot run code.
pub fn content_security_policy(dir: Option<&Path>) -> HeaderValue {
    let hashes: String = dir
        .map(inline_script_hashes)
        .unwrap_or_default()
        .iter()
        .map(|h| format!(" 'sha256-{h}'"))
        .collect();
    let policy = format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{hashes}; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
    );
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
}

/// Base64 SHA-256 of every inline `<script>` body in the top-level HTML
/// files of `dir`, read once at startup.
fn inline_script_hashes(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut hashes: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("html"))
        })
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|html| inline_scripts(&html))
        .map(|body| {
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body.as_bytes()))
        })
        .collect();
    hashes.sort();
    hashes.dedup();
    hashes
}

/// The bodies of `<script>` elements without a `src`, exactly as written
/// (the hash covers every byte between the tags).
fn inline_scripts(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut bodies = Vec::new();
    let mut at = 0;
    while let Some(start) = lower[at..].find("<script").map(|i| at + i) {
        let Some(open_end) = lower[start..].find('>').map(|i| start + i + 1) else {
            break;
        };
        let Some(close) = lower[open_end..].find("</script").map(|i| open_end + i) else {
            break;
        };
        if !lower[start..open_end].contains(" src=") {
            bodies.push(html[open_end..close].to_owned());
        }
        at = close;
    }
    bodies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_found_and_external_ones_skipped() {
        let html = "<head><script type=\"module\">import init from '/a.js';\ninit();</script>\
                    <SCRIPT src=\"/b.js\"></SCRIPT><script>x()</script></head>";
        assert_eq!(
            inline_scripts(html),
            ["import init from '/a.js';\ninit();", "x()"]
        );
    }

    #[test]
    fn api_paths_are_recognized_without_swallowing_lookalikes() {
        assert!(is_api_path("/operations"));
        assert!(is_api_path("/operations/abc/nope"));
        assert!(is_api_path("/ws/x"));
        assert!(!is_api_path("/operations-guide"));
        assert!(!is_api_path("/portal.html"));
    }

    #[test]
    fn the_policy_allows_wasm_and_each_inline_script_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<script>boot()</script>").unwrap();
        let policy = content_security_policy(Some(dir.path()));
        let policy = policy.to_str().unwrap();
        assert!(policy.contains("'wasm-unsafe-eval'"));
        let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"boot()"));
        assert!(policy.contains(&format!("'sha256-{expected}'")), "{policy}");
        assert!(policy.contains("script-src 'self' 'wasm-unsafe-eval' 'sha256-"));
    }
}
