//! `GET /ws`: checks the `Origin`, the caller and the client's socket
//! count, then hands the socket to [`crate::live`].

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri, header};
use axum::response::Response;

use crate::AppState;
use crate::auth::{Scope, bearer};
use crate::client::Client;
use crate::error::Error;
use crate::live::{self, Watcher};

/// Larger than the frame limit, so an oversize frame still arrives whole and
/// gets its `frame_too_large` answer; beyond this the socket just closes.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// A browser's WebSocket cannot send headers, so its token comes as
/// `?access_token=`; other clients may send `Authorization: Bearer`.
pub async fn upgrade(
    State(app): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Error> {
    check_origin(&headers, &uri, &app.config.allowed_origins)?;
    let upgrade = upgrade.map_err(|_| Error::UpgradeRequired)?;
    let Query(query) = query?;
    let token = match bearer(&headers)? {
        Some(token) => Some(token),
        None => query.get("access_token").map(String::as_str),
    };
    let caller = app.config.access.authenticate(token)?;
    let watcher = Watcher {
        audience: caller.audience(Scope::Read)?,
        expires_at: caller.expires_at(),
    };
    let slot = app
        .sockets
        .claim(client, app.config.limits.sockets_per_client)?;
    let max = MAX_MESSAGE_BYTES.max(2 * app.config.limits.frame_bytes);
    Ok(upgrade
        // Frames are small: 4 KiB buffers instead of 128 KiB keep 10k
        // connections at tens of megabytes instead of gigabytes.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| live::serve(socket, app, watcher, slot)))
}

/// Browsers always send `Origin` on a WebSocket handshake; another site's
/// page must not open one with the user's cookies (cross-site WebSocket
/// hijacking). Same origin — the Origin's host:port equals the Host header —
/// is allowed, and so is every origin of `--allow-origin` (`*` allows all).
/// No `Origin` at all is a non-browser client: allowed.
fn check_origin(headers: &HeaderMap, uri: &Uri, allowed: &[String]) -> Result<(), Error> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let Ok(origin) = origin.to_str() else {
        return Err(Error::OriginForbidden("(not text)".into()));
    };
    let origin_trimmed = origin.trim_end_matches('/');
    if allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin_trimmed))
    {
        return Ok(());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    if let (Some((scheme, authority)), Some(host)) = (origin_trimmed.split_once("://"), host)
        && same_authority(scheme, authority, host)
    {
        return Ok(());
    }
    Err(Error::OriginForbidden(origin.chars().take(200).collect()))
}

/// `host:port` equality, where a scheme's default port may be left out.
fn same_authority(scheme: &str, origin: &str, host: &str) -> bool {
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => ":80",
        "https" | "wss" => ":443",
        _ => "",
    };
    let strip = |s: &str| -> String {
        let s = s.to_ascii_lowercase();
        match s.strip_suffix(default) {
            Some(bare) if !default.is_empty() => bare.to_owned(),
            _ => s,
        }
    };
    strip(origin) == strip(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: &str, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, origin.parse().unwrap());
        headers.insert(header::HOST, host.parse().unwrap());
        headers
    }

    #[test]
    fn same_origin_and_allowed_origins_pass_and_others_are_forbidden() {
        let uri = Uri::from_static("/ws");
        let none: Vec<String> = Vec::new();
        assert!(
            check_origin(
                &headers("http://127.0.0.1:8080", "127.0.0.1:8080"),
                &uri,
                &none
            )
            .is_ok()
        );
        assert!(
            check_origin(
                &headers("http://example.com", "example.com:80"),
                &uri,
                &none
            )
            .is_ok()
        );
        assert!(
            check_origin(
                &headers("http://evil.example", "127.0.0.1:8080"),
                &uri,
                &none
            )
            .is_err()
        );
        assert!(check_origin(&headers("null", "127.0.0.1:8080"), &uri, &none).is_err());
        let allowed = vec!["http://localhost:3000/".to_owned()];
        assert!(
            check_origin(
                &headers("http://localhost:3000", "127.0.0.1:8080"),
                &uri,
                &allowed
            )
            .is_ok()
        );
        assert!(check_origin(&HeaderMap::new(), &uri, &none).is_ok());
    }
}
