//! Every way a request or a frame can fail, each with the stable `code` and
//! HTTP status of PROTOCOL.md's table. Handlers return `Result<_, Error>`;
//! the body is always `{code, message}`, never axum's plain-text rejections.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use optrail_core::{ApiError, OperationId};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidParams(String),
    #[error("unknown operation kind {0:?}: use \"payment\" or \"vm\"")]
    UnknownKind(String),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("{0:?} is not an operation id: ids are 32 lowercase hex digits")]
    InvalidOperationId(String),
    #[error("no operation {0}")]
    OperationNotFound(OperationId),
    #[error("operation {0} has already finished")]
    OperationFinished(OperationId),
    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("the request body must be JSON, sent with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error(
        "too many operations started: at most {per_minute} a minute; retry in {retry_after_secs} s"
    )]
    RateLimited {
        per_minute: u32,
        retry_after_secs: u64,
    },
    #[error("WebSocket connections from origin {0:?} are not allowed")]
    OriginForbidden(String),
    #[error("frame of {size} bytes is larger than the {limit} bytes allowed")]
    FrameTooLarge { size: usize, limit: usize },
    #[error("at most {0} subscriptions per connection")]
    TooManySubscriptions(usize),
    #[error("no such resource: {0}")]
    NotFound(String),
    #[error("{0} is not allowed: see PROTOCOL.md for the methods of each path")]
    MethodNotAllowed(String),
    #[error("GET /ws must be a WebSocket upgrade request")]
    UpgradeRequired,
    #[error("{0}")]
    Unauthorized(String),
    #[error("the access token has expired: get a fresh one and retry")]
    TokenExpired,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    InvalidEvent(String),
    #[error("operation {0} already exists with another owner or kind")]
    OperationExists(OperationId),
    #[error("this server does not answer to the host name {0:?}; see --allow-host")]
    HostForbidden(String),
    #[error("at most {0} WebSocket connections per client: close one first")]
    TooManySockets(usize),
    #[error("storage failure: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The stable, machine-readable code of PROTOCOL.md.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidJson(_) => "invalid_json",
            Error::InvalidParams(_) => "invalid_params",
            Error::UnknownKind(_) => "unknown_kind",
            Error::InvalidQuery(_) => "invalid_query",
            Error::InvalidOperationId(_) => "invalid_operation_id",
            Error::OperationNotFound(_) => "operation_not_found",
            Error::OperationFinished(_) => "operation_finished",
            Error::BodyTooLarge { .. } => "body_too_large",
            Error::UnsupportedMediaType => "unsupported_media_type",
            Error::RateLimited { .. } => "rate_limited",
            Error::OriginForbidden(_) => "origin_forbidden",
            Error::FrameTooLarge { .. } => "frame_too_large",
            Error::TooManySubscriptions(_) => "too_many_subscriptions",
            Error::NotFound(_) => "not_found",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::UpgradeRequired => "upgrade_required",
            Error::Unauthorized(_) => "unauthorized",
            Error::TokenExpired => "token_expired",
            Error::Forbidden(_) => "forbidden",
            Error::InvalidEvent(_) => "invalid_event",
            Error::OperationExists(_) => "operation_exists",
            Error::HostForbidden(_) => "host_forbidden",
            Error::TooManySockets(_) => "too_many_sockets",
            Error::Storage(_) | Error::Migration(_) | Error::Internal(_) => "internal",
        }
    }

    /// The HTTP status; frame-only errors (`frame_too_large`,
    /// `too_many_subscriptions`) never travel over HTTP and map to 400.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::InvalidJson(_)
            | Error::InvalidParams(_)
            | Error::UnknownKind(_)
            | Error::InvalidQuery(_)
            | Error::InvalidOperationId(_)
            | Error::InvalidEvent(_)
            | Error::FrameTooLarge { .. }
            | Error::TooManySubscriptions(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) | Error::TokenExpired => StatusCode::UNAUTHORIZED,
            Error::OriginForbidden(_) | Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::HostForbidden(_) => StatusCode::MISDIRECTED_REQUEST,
            Error::OperationNotFound(_) | Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::OperationFinished(_) | Error::OperationExists(_) => StatusCode::CONFLICT,
            Error::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
            Error::RateLimited { .. } | Error::TooManySockets(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::Storage(_) | Error::Migration(_) | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    pub fn to_api(&self) -> ApiError {
        ApiError {
            code: self.code().to_owned(),
            message: self.to_string(),
        }
    }

    /// The error a response with this status carries when something below
    /// the handlers (routing, a tower layer) produced it without a JSON body.
    pub fn for_status(status: StatusCode, method: &Method, path: &str, body_limit: usize) -> Error {
        match status {
            StatusCode::NOT_FOUND => Error::NotFound(format!("{method} {path}")),
            StatusCode::METHOD_NOT_ALLOWED => Error::MethodNotAllowed(format!("{method} {path}")),
            StatusCode::PAYLOAD_TOO_LARGE => Error::BodyTooLarge { limit: body_limit },
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::UnsupportedMediaType,
            s if s.is_client_error() => Error::InvalidJson(format!(
                "{method} {path} was refused ({})",
                s.canonical_reason().unwrap_or("client error")
            )),
            s => Error::Internal(format!(
                "{method} {path} failed ({})",
                s.canonical_reason().unwrap_or("server error")
            )),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut response = (status, Json(self.to_api())).into_response();
        let headers = response.headers_mut();
        match self {
            Error::RateLimited {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            // RFC 6750: a bearer-protected resource says how to authenticate.
            Error::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Error::TokenExpired => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer error=\"invalid_token\", error_description=\"expired\"",
                    ),
                );
            }
            _ => {}
        }
        response
    }
}

impl Error {
    /// Maps axum's `Json` rejection; `body_limit` is only for the message.
    pub fn from_json(rejection: JsonRejection, body_limit: usize) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Error::UnsupportedMediaType,
            JsonRejection::JsonSyntaxError(e) => {
                Error::InvalidJson(format!("the body is not valid JSON: {}", e.body_text()))
            }
            JsonRejection::JsonDataError(e) => Error::InvalidJson(format!(
                "the body is not the JSON expected: {}",
                e.body_text()
            )),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Error::BodyTooLarge { limit: body_limit }
            }
            other => {
                Error::InvalidJson(format!("the body could not be read: {}", other.body_text()))
            }
        }
    }
}

impl From<PathRejection> for Error {
    fn from(rejection: PathRejection) -> Self {
        Error::InvalidOperationId(rejection.body_text())
    }
}

/// Request text quoted in an error message, cut after `max_chars`
/// characters (with an ellipsis): a client's mistake should not make the
/// answer as large as the request.
pub(crate) fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
