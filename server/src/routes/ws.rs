//! `GET /ws`: checks the `Origin`, the caller and the client's socket
//! count, then hands the socket to [`crate::live`].

use axum::extract::State;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;

use super::query::{QueryParams, SocketQuery};
use crate::AppState;
use crate::auth::{Scope, bearer};
use crate::client::Client;
use crate::error::Error;
use crate::live::{self, Watcher};
use crate::origin::check_origin;

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
    query: Result<QueryParams<SocketQuery>, Error>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Error> {
    check_origin(&headers, &uri, &app.config.allowed_origins)?;
    let upgrade = upgrade.map_err(|_| Error::UpgradeRequired)?;
    let QueryParams(query) = query?;
    let token = match bearer(&headers)? {
        Some(token) => Some(token),
        None => query.access_token.as_deref(),
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
