//! The HTTP surface of PROTOCOL.md. Handlers are thin: parse the request,
//! call the store, runner or bus, map the result.
//!
//! Ids and query strings arrive typed ([`OperationPath`],
//! [`query::QueryParams`]). Handlers take them as `Result`s and check the
//! caller's scope first, so that a caller without it is refused before
//! anything else of the request is judged.
//!
//! [`OperationPath`]: crate::operation_id::OperationPath

pub mod events;
pub mod operations;
pub mod query;
pub mod site;
pub mod ws;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use optrail_core::OperationId;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::error::Error;

/// The whole application: API, live channel and (optionally) the widget's
/// static files, with the body limit and JSON errors everywhere, CORS from
/// the origin allow-list, the `Host` allow-list, and security headers.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.limits.body_bytes;
    let config = state.config.clone();
    let api = Router::new()
        .route("/operations", get(operations::list).post(operations::start))
        .route(
            "/operations/{id}",
            get(operations::show).delete(operations::cancel),
        )
        .route(
            "/operations/{id}/events",
            get(events::page).post(events::append),
        )
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(healthz));
    let app = match config.static_dir.clone() {
        Some(dir) => api.fallback(move |request: Request| site::serve(dir.clone(), request)),
        None => api.fallback(not_found),
    };
    let policy = site::content_security_policy(config.static_dir.as_deref());
    app.layer(RequestBodyLimitLayer::new(body_limit))
        .layer(middleware::from_fn_with_state(body_limit, json_errors))
        .layer(crate::origin::cors(config.allowed_origins.clone()))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            policy,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(middleware::from_fn_with_state(
            Arc::new(config.allowed_hosts.clone()),
            crate::host::check,
        ))
        // The path only: `/ws?access_token=…` carries a credential.
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
            }),
        )
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Error {
    Error::NotFound(format!("{method} {}", uri.path()))
}

/// Turns the plain-text error responses of layers and routing (413 from the
/// body limit, 405 from the router) into the `{code, message}` body every
/// client expects.
async fn json_errors(State(body_limit): State<usize>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut mapped = Error::for_status(status, &method, &path, body_limit).into_response();
    *mapped.status_mut() = status;
    if let Some(allow) = allow {
        mapped.headers_mut().insert(header::ALLOW, allow);
    }
    mapped
}

/// Runs `work` to its end on a task of its own. A client that disconnects
/// mid-request drops the handler's future and everything it awaits inline,
/// which could stop a committed append or cancel before it is published;
/// a spawned task is not dropped with the request.
pub async fn complete<T: Send + 'static>(
    work: impl Future<Output = Result<T, Error>> + Send + 'static,
) -> Result<T, Error> {
    tokio::spawn(work)
        .await
        .map_err(|e| Error::Internal(format!("the request's work failed: {e}")))?
}

/// A JSON body already read as a value, decoded as `T`.
fn decode<T: serde::de::DeserializeOwned>(body: serde_json::Value) -> Result<T, Error> {
    serde_json::from_value(body)
        .map_err(|e| Error::InvalidJson(format!("the body is not the JSON expected: {e}")))
}

/// `Location` of an operation.
fn location(id: &OperationId) -> HeaderValue {
    HeaderValue::from_str(&format!("/operations/{id}"))
        .unwrap_or_else(|_| HeaderValue::from_static("/operations"))
}

/// 200 for reads, 202 for starts and cancels.
fn accepted<T: IntoResponse>(body: T) -> Response {
    (StatusCode::ACCEPTED, body).into_response()
}
