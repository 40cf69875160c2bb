//! `GET /operations/{id}/events?after=N&limit=M` (viewers and publishers)
//! and `POST /operations/{id}/events` (publishers).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use optrail_core::EventsPage;
use serde_json::Value;

use super::query::{PageQuery, QueryParams};
use super::{complete, decode};
use crate::AppState;
use crate::auth::{Caller, Scope};
use crate::error::Error;
use crate::feed::AppendResponse;
use crate::operation_id::OperationPath;

pub async fn page(
    State(app): State<AppState>,
    caller: Caller,
    id: Result<OperationPath, Error>,
    query: Result<QueryParams<PageQuery>, Error>,
) -> Result<Json<EventsPage>, Error> {
    let audience = caller.audience(Scope::Read)?;
    let OperationPath(id) = id?;
    let QueryParams(query) = query?;
    let limit = query.limit(app.config.limits.events_per_page);
    let page = app.store.events(&id, &audience, query.after, limit).await?;
    page.map(Json).ok_or(Error::OperationNotFound(id))
}

/// A publisher's batch: stored atomically, idempotent by event id, each
/// event published after the commit even if this request is abandoned.
pub async fn append(
    State(app): State<AppState>,
    caller: Caller,
    id: Result<OperationPath, Error>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<AppendResponse>, Error> {
    if caller != Caller::Publisher {
        return Err(Error::Forbidden(
            "only a publisher (with the publisher key) appends events".into(),
        ));
    }
    let OperationPath(id) = id?;
    let Json(body) = body.map_err(|r| Error::from_json(r, app.config.limits.body_bytes))?;
    let request = decode(body)?;
    let max = app.config.limits.events_per_batch;
    let feed = app.feed.clone();
    Ok(Json(
        complete(async move { feed.append(&id, request, max).await }).await?,
    ))
}
