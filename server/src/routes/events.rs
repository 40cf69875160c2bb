//! `GET /operations/{id}/events?after=N&limit=M` (viewers and publishers)
//! and `POST /operations/{id}/events` (publishers).

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use optrail_core::{EventsPage, Seq};
use serde_json::Value;

use super::{complete, decode, query_integer, query_limit};
use crate::AppState;
use crate::auth::{Caller, Scope};
use crate::error::Error;
use crate::feed::AppendResponse;
use crate::operation_id::OperationPath;

pub async fn page(
    State(app): State<AppState>,
    caller: Caller,
    id: Result<OperationPath, Error>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<EventsPage>, Error> {
    let audience = caller.audience(Scope::Read)?;
    let OperationPath(id) = id?;
    let Query(query) = query?;
    // Seqs are stored as SQLite integers: i64::MAX is the largest there is.
    let after = query_integer(&query, "after", 0, i64::MAX as u64)?.unwrap_or(0);
    let limit = query_limit(&query, 100, app.config.limits.events_per_page)?;
    let page = app.store.events(&id, &audience, Seq(after), limit).await?;
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
