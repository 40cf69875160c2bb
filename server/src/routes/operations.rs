//! `POST /operations`, `GET /operations`, `GET /operations/{id}`,
//! `DELETE /operations/{id}`.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use optrail_core::{Operation, OperationList, StartRequest};
use serde_json::Value;

use super::query::{ListQuery, QueryParams};
use super::{accepted, complete, decode, location};
use crate::AppState;
use crate::auth::{Audience, Caller, Owner, Scope};
use crate::client::Client;
use crate::demo::Params;
use crate::error::Error;
use crate::operation_id::OperationPath;

/// A publisher creates an operation it will feed (`201`, or `200` when a
/// retry finds it created); in demo mode a viewer starts a simulated run
/// (`202`).
pub async fn start(
    State(app): State<AppState>,
    caller: Caller,
    Client(client): Client,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, Error> {
    let Json(body) = body.map_err(|r| Error::from_json(r, app.config.limits.body_bytes))?;
    let (status, operation) = match caller {
        Caller::Publisher => {
            let feed = app.feed.clone();
            let request = decode(body)?;
            let (operation, created) = complete(async move { feed.create(request).await }).await?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, operation)
        }
        Caller::Viewer(viewer) => {
            if !app.config.access.demo {
                return Err(Error::Forbidden(
                    "simulated operations run only in demo mode; a publisher creates operations"
                        .into(),
                ));
            }
            let request: StartRequest = decode(body)?;
            let params = Params::parse(&request.kind, &request.params)?;
            app.throttle.take(client, Instant::now())?;
            let runner = app.runner.clone();
            let operation =
                complete(async move { runner.start(params, viewer.owner).await }).await?;
            (StatusCode::ACCEPTED, operation)
        }
    };
    let location = location(&operation.id);
    let mut response = (status, Json(operation)).into_response();
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

/// The caller's operations only; a publisher sees all, or one owner's with
/// `?owner=` (a viewer's `owner` is ignored: it has one).
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    query: Result<QueryParams<ListQuery>, Error>,
) -> Result<Json<OperationList>, Error> {
    let mut audience = caller.audience(Scope::Read)?;
    let QueryParams(query) = query?;
    if let (Audience::All, Some(owner)) = (&audience, &query.owner) {
        audience = Audience::Owner(Owner::parse(owner).map_err(Error::InvalidQuery)?);
    }
    let limit = query.limit(app.config.limits.operations_per_page);
    Ok(Json(app.store.list(&audience, query.before, limit).await?))
}

pub async fn show(
    State(app): State<AppState>,
    caller: Caller,
    id: Result<OperationPath, Error>,
) -> Result<Json<Operation>, Error> {
    let audience = caller.audience(Scope::Read)?;
    let OperationPath(id) = id?;
    let operation = app.store.operation(&id, &audience).await?;
    operation.map(Json).ok_or(Error::OperationNotFound(id))
}

/// A simulated run stops with `OperationCanceled`; a publisher-fed
/// operation gets a `CancelRequested` event for its publisher to act on.
pub async fn cancel(
    State(app): State<AppState>,
    caller: Caller,
    id: Result<OperationPath, Error>,
) -> Result<Response, Error> {
    let audience = caller.audience(Scope::Cancel)?;
    let OperationPath(id) = id?;
    let operation = complete(async move {
        match app.store.is_fed(&id, &audience).await? {
            None => Err(Error::OperationNotFound(id)),
            Some(true) => app.feed.request_cancel(&id).await,
            Some(false) => app.runner.cancel(&id).await,
        }
    })
    .await?;
    Ok(accepted(Json(operation)))
}
