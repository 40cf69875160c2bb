//! The origins allowed to use this server from a browser: the server's own,
//! plus `--allow-origin` (`*`: any). One list serves both gates a browser
//! respects — the WebSocket `Origin` check and CORS for the HTTP API — so
//! an embedding that works for one works for the other.

use std::time::Duration;

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::Error;

/// Whether `origin` is on the allow-list (`*` lists every origin).
pub fn is_listed(origin: &str, allowed: &[String]) -> bool {
    let origin = origin.trim_end_matches('/');
    allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// CORS for the HTTP API: listed origins may call it with a bearer token
/// (no cookies: credentials are never allowed) and read `Location` and
/// `Retry-After`. Other origins get no CORS headers, so browsers refuse.
pub fn cors(allowed: Vec<String>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(
            move |origin: &HeaderValue, _: &Parts| {
                origin.to_str().is_ok_and(|o| is_listed(o, &allowed))
            },
        ))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::LOCATION, header::RETRY_AFTER])
        .max_age(Duration::from_secs(600))
}

/// Browsers always send `Origin` on a WebSocket handshake; another site's
/// page must not open one with the user's cookies (cross-site WebSocket
/// hijacking). Same origin — the Origin's host:port equals the Host header —
/// is allowed, and so is every origin of `--allow-origin` (`*` allows all).
/// No `Origin` at all is a non-browser client: allowed.
pub fn check_origin(headers: &HeaderMap, uri: &Uri, allowed: &[String]) -> Result<(), Error> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let Ok(origin) = origin.to_str() else {
        return Err(Error::OriginForbidden("(not text)".into()));
    };
    let origin_trimmed = origin.trim_end_matches('/');
    if is_listed(origin, allowed) {
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
