//! `POST /operations`, `GET /operations`, `GET /operations/{id}`,
//! `DELETE /operations/{id}`.

use std::collections::HashMap;
use std::time::Instant;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::Response;
use optrail_core::{Operation, OperationList, StartRequest};

use super::{ClientAddr, accepted, location, parse_operation_id, query_integer, query_limit};
use crate::AppState;
use crate::error::Error;
use crate::simulation::Params;

pub async fn start(
    State(app): State<AppState>,
    ClientAddr(client): ClientAddr,
    body: Result<Json<StartRequest>, JsonRejection>,
) -> Result<Response, Error> {
    let Json(request) = body.map_err(|r| Error::from_json(r, app.config.limits.body_bytes))?;
    let params = Params::parse(&request.kind, &request.params)?;
    app.throttle.take(client, Instant::now())?;
    let operation = app.runner.start(params).await?;
    let location = location(&operation.id);
    let mut response = accepted(Json(operation));
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

pub async fn list(
    State(app): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<OperationList>, Error> {
    let Query(query) = query?;
    let limits = &app.config.limits;
    let limit = query_limit(&query, 20, limits.operations_per_page)?;
    let before = query_integer(&query, "before", 1, i64::MAX as u64)?;
    let before = before.map(|b| b as i64);
    Ok(Json(app.store.list(before, limit).await?))
}

pub async fn show(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Operation>, Error> {
    let Path(raw) = id?;
    let id = parse_operation_id(&raw)?;
    let operation = app.store.operation(&id).await?;
    operation.map(Json).ok_or(Error::OperationNotFound(id))
}

pub async fn cancel(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Error> {
    let Path(raw) = id?;
    let id = parse_operation_id(&raw)?;
    Ok(accepted(Json(app.runner.cancel(&id).await?)))
}
