//! Publisher-fed operations: the host's backend creates them for an owner
//! and appends their events; the server numbers, stores and pushes those
//! events exactly as it does the simulated runs' (seq in the inserting
//! transaction, published after the commit, in seq order).
//!
//! A viewer's cancel of a fed operation cannot stop work the server does
//! not do: it appends a [`CANCEL_REQUESTED`] event to the same stream,
//! which the publisher follows (HTTP or WebSocket, with its key) and
//! answers by ending the operation with a `Canceled` terminal event.

use optrail_core::{Epoch, EventId, EventType, Operation, OperationId, Seq, Status, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::{Audience, Owner};
use crate::error::Error;
use crate::operation_id::parse_operation_id;
use crate::runner::{now, random_hex};
use crate::store::{EventDraft, NewOperation, Store};

/// The event type of a viewer's cancel request on a fed operation.
pub const CANCEL_REQUESTED: &str = "CancelRequested";

/// Its id: one request per operation, however often viewers ask.
const CANCEL_REQUESTED_ID: &str = "cancel-requested";

const MAX_KIND_CHARS: usize = 64;
const MAX_EVENT_ID_CHARS: usize = 128;
const MAX_TYPE_CHARS: usize = 100;
const MAX_MESSAGE_CHARS: usize = 2000;

/// A publisher's `POST /operations` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRequest {
    /// Any kind the publisher names (`deployment`, `payment`, …).
    pub kind: String,
    /// Whose operation it is: the `sub` of that owner's viewer tokens.
    pub owner: String,
    #[serde(default)]
    pub params: Value,
    /// The publisher's own id (32 lowercase hex digits), which makes a
    /// retried create idempotent; the server mints one if absent.
    #[serde(default)]
    pub id: Option<String>,
}

/// One event of a publisher's batch.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventInput {
    /// Unique within the operation; a retried id is not stored twice.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub message: String,
    /// Defaults to the time the server receives it.
    #[serde(default)]
    pub happened_at: Option<Timestamp>,
    #[serde(default)]
    pub details: Map<String, Value>,
    /// Set on the last event only: the terminal status it ends the
    /// operation with (`Succeeded`, `Failed`, `Canceled`).
    #[serde(default)]
    pub status: Option<Status>,
}

/// `POST /operations/{id}/events` body.
#[derive(Debug, Clone, Deserialize)]
pub struct AppendRequest {
    pub events: Vec<EventInput>,
}

/// The seq each event of a batch got (or had, when retried).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSeq {
    pub id: EventId,
    pub seq: Seq,
}

/// `POST /operations/{id}/events` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppendResponse {
    pub operation_id: OperationId,
    pub epoch: Epoch,
    pub head: Seq,
    pub status: Status,
    /// One per event of the request, in its order.
    pub events: Vec<EventSeq>,
}

/// Publish order is the store's business: it publishes each commit after
/// it, in seq order per operation, even when two batches or a cancel
/// request race.
#[derive(Debug)]
pub struct Feed {
    store: Store,
}

impl Feed {
    pub fn new(store: Store) -> Feed {
        Feed { store }
    }

    /// Creates a fed operation; `true` if it was created now, `false` if a
    /// retry found it already created.
    pub async fn create(&self, request: CreateRequest) -> Result<(Operation, bool), Error> {
        let owner = Owner::parse(&request.owner).map_err(Error::InvalidParams)?;
        let kind =
            bounded_text("kind", &request.kind, MAX_KIND_CHARS).map_err(Error::InvalidParams)?;
        let params = match request.params {
            Value::Null => Value::Object(Map::new()),
            params @ Value::Object(_) => params,
            _ => return Err(Error::InvalidParams("params must be a JSON object".into())),
        };
        let id = match &request.id {
            Some(raw) => parse_operation_id(raw)?,
            None => OperationId(random_hex::<16>()?),
        };
        let new = NewOperation {
            id,
            owner,
            fed: true,
            kind: kind.to_owned(),
            params,
            seed: 0,
            created_at: now(),
        };
        let (operation, created) = self.store.create_fed(&new).await?;
        if created {
            tracing::info!(operation = %operation.id, kind = %operation.kind, "publisher created");
        }
        Ok((operation, created))
    }

    /// Appends a publisher's batch (validated first, then atomically) and
    /// publishes what it committed.
    pub async fn append(
        &self,
        id: &OperationId,
        request: AppendRequest,
        max_events: usize,
    ) -> Result<AppendResponse, Error> {
        if request.events.is_empty() || request.events.len() > max_events {
            return Err(Error::InvalidEvent(format!(
                "a batch holds 1 to {max_events} events"
            )));
        }
        let received = now();
        let drafts = request
            .events
            .into_iter()
            .enumerate()
            .map(|(i, event)| {
                draft(event, received).map_err(|e| Error::InvalidEvent(format!("events[{i}]: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<EventId> = drafts.iter().map(|d| d.id.clone()).collect();
        let batch = self.store.append_batch(id, drafts, received).await?;
        Ok(AppendResponse {
            operation_id: id.clone(),
            epoch: batch.head.epoch,
            head: batch.head.head,
            status: batch.head.status,
            events: ids
                .into_iter()
                .zip(batch.seqs)
                .map(|(id, seq)| EventSeq { id, seq })
                .collect(),
        })
    }

    /// A viewer's cancel of a fed operation: one `CancelRequested` event
    /// (the same one however often it is asked), then the snapshot.
    pub async fn request_cancel(&self, id: &OperationId) -> Result<Operation, Error> {
        let head = self
            .store
            .head(id, &Audience::All)
            .await?
            .ok_or_else(|| Error::OperationNotFound(id.clone()))?;
        if head.status.is_terminal() {
            return Err(Error::OperationFinished(id.clone()));
        }
        let request = EventDraft {
            id: EventId(CANCEL_REQUESTED_ID.to_owned()),
            kind: EventType::from(CANCEL_REQUESTED),
            message: "A viewer asked to cancel this operation".to_owned(),
            happened_at: now(),
            details: Map::new(),
            status: Status::Running,
        };
        let batch = self.store.append_batch(id, vec![request], now()).await?;
        tracing::info!(operation = %id, seq = ?batch.seqs.first(), "cancel requested");
        self.store
            .operation(id, &Audience::All)
            .await?
            .ok_or_else(|| Error::OperationNotFound(id.clone()))
    }
}

/// A publisher's event as the store takes it.
fn draft(event: EventInput, received: Timestamp) -> Result<EventDraft, String> {
    let id = bounded_text("id", &event.id, MAX_EVENT_ID_CHARS)?;
    let kind = bounded_text("type", &event.kind, MAX_TYPE_CHARS)?;
    if kind == CANCEL_REQUESTED {
        return Err(format!(
            "type {CANCEL_REQUESTED} is the server's cancel request"
        ));
    }
    if event.message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(format!(
            "message is longer than {MAX_MESSAGE_CHARS} characters"
        ));
    }
    let status = match event.status {
        None => Status::Running,
        Some(status) if status.is_terminal() => status,
        Some(_) => {
            return Err("status, when present, is Succeeded, Failed or Canceled".into());
        }
    };
    Ok(EventDraft {
        id: EventId(id.to_owned()),
        kind: EventType::from(kind),
        message: event.message,
        happened_at: event.happened_at.unwrap_or(received),
        details: event.details,
        status,
    })
}

fn bounded_text<'a>(name: &str, text: &'a str, max: usize) -> Result<&'a str, String> {
    let chars = text.chars().count();
    if chars == 0 || chars > max || text.chars().any(char::is_control) {
        return Err(format!(
            "{name} must be 1 to {max} characters without control characters"
        ));
    }
    Ok(text)
}
