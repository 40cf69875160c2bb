//! The `Host` allow-list, against DNS rebinding: a hostile page whose name
//! is made to resolve to this server's address reaches it with its own
//! name in `Host`, so any name the server was not told about is refused.
//! IP literals and `localhost` cannot be rebound and always pass.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::Error;

/// Whether the host part of a `Host` value (`name:port`, `[v6]:port`) is
/// one this server answers to.
pub fn is_allowed(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let name = name.trim_end_matches('.');
    name.parse::<IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed
            .iter()
            .any(|a| a == "*" || a.trim_end_matches('.').eq_ignore_ascii_case(name))
}

/// Refuses requests for a host name not on the list (`421 host_forbidden`).
/// A request without any host (HTTP/1.0) cannot come from a rebinding
/// browser and passes.
pub async fn check(
    State(allowed): State<Arc<Vec<String>>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()));
    match host {
        Some(host) if !is_allowed(&host, &allowed) => {
            Error::HostForbidden(host.chars().take(100).collect()).into_response()
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_localhost_and_listed_names_pass_and_other_names_do_not() {
        let listed = vec!["optrail.example.com".to_owned()];
        for host in [
            "127.0.0.1:8080",
            "[::1]:8080",
            "192.0.2.1",
            "localhost:8080",
            "LOCALHOST",
            "optrail.example.com",
            "Optrail.Example.com.:443",
        ] {
            assert!(is_allowed(host, &listed), "{host}");
        }
        for host in ["evil.example:8080", "example.com", "localhost.evil.example"] {
            assert!(!is_allowed(host, &listed), "{host}");
        }
        assert!(is_allowed("anything.example", &["*".to_owned()]));
    }
}
