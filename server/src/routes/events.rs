//! `GET /operations/{id}/events?after=N&limit=M`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use optrail_core::{EventsPage, Seq};

use super::{parse_operation_id, query_integer, query_limit};
use crate::AppState;
use crate::error::Error;

pub async fn page(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<EventsPage>, Error> {
    let Path(raw) = id?;
    let id = parse_operation_id(&raw)?;
    let Query(query) = query?;
    // Seqs are stored as SQLite integers: i64::MAX is the largest there is.
    let after = query_integer(&query, "after", 0, i64::MAX as u64)?.unwrap_or(0);
    let limit = query_limit(&query, 100, app.config.limits.events_per_page)?;
    let page = app.store.events(&id, Seq(after), limit).await?;
    page.map(Json).ok_or(Error::OperationNotFound(id))
}
