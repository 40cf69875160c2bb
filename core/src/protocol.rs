//! Wire types: the JSON that crosses HTTP and the WebSocket, exactly as
//! PROTOCOL.md describes it. Field names are camelCase on the wire; newtypes
//! carry the invariants (a `Seq` is never confused with an `Epoch`).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::timestamp::Timestamp;

/// An operation's id: 128 random bits as 32 lowercase hex digits on the
/// reference server, but any non-empty string of a foreign backend is kept
/// as it is, so the widget can follow ids it did not mint.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OperationId(pub String);

impl OperationId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for OperationId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// An event's id, unique within its operation. Dedupe falls back to it when
/// a backend gives no `seq` (compat mode).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub String);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A per-operation sequence number. The first event is `Seq(1)`; the server
/// assigns them without gaps, so "everything up to k" is a single number and
/// a missing number is a missed event. `Seq(0)` means "before the first".
/// An event's place in its operation's stream: 1, 2, 3, … with no gaps,
/// assigned in the transaction that stores it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    /// Before the first event: `after=0` asks for everything.
    pub const ZERO: Seq = Seq(0);

    /// The seq that follows.
    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The generation of an operation's event stream. It changes only when the
/// server rebuilds the stream (seqs restart), and tells a client that what
/// it holds no longer lines up with the server's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Epoch(pub u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An event's type as the backend names it ("PaymentSucceeded"). Kept as a
/// string: types the widget has never heard of still show.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventType(pub String);

impl EventType {
    /// The type as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for EventType {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// One thing that happened to an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Unique within the operation; what dedupes without seqs.
    pub id: EventId,
    /// Absent only from backends that speak the seed's format (compat mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<Seq>,
    /// What happened (`ProgressUpdated`, `PaymentSucceeded`, …).
    #[serde(rename = "type")]
    pub kind: EventType,
    /// A sentence for the person watching.
    #[serde(default)]
    pub message: String,
    /// When it happened, to the millisecond.
    pub happened_at: Timestamp,
    /// The part of `happened_at` below the millisecond, in nanoseconds,
    /// when the source wrote it (a seed backend's 7-digit fraction); 0
    /// otherwise. Not on the wire: it only orders events without seqs
    /// that share a millisecond.
    #[serde(skip)]
    pub sub_ms_ns: u32,
    /// Anything else the backend says about it (`percentComplete`,
    /// `reason`, …).
    #[serde(default)]
    pub details: Map<String, Value>,
    /// The status this event ends the operation with, on terminal events
    /// only. It is what lets a client show the right terminal view for a
    /// kind it was never configured for (a publisher's own event types);
    /// absent from older servers and non-terminal events, where the
    /// client's `Interpretation` of the type decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

impl Event {
    /// Reads an event from its JSON value: the one way this client reads
    /// events, from the protocol's pages and frames and from seed-format
    /// backends alike. Lenient where real backends differ: `message` and
    /// `details` may be `null` (.NET's and Jackson's default), and the time
    /// may be written any way [`Timestamp::parse_lenient`] reads (its part
    /// below the millisecond kept in [`Event::sub_ms_ns`]). Without an id,
    /// a type or a time it is not an event this client can place: `None`.
    ///
    /// (Also smaller in the browser bundle than a derived decoder for
    /// `Event`: the JSON value decoder is there anyway.)
    pub fn from_value(value: &Value) -> Option<Event> {
        let object = value.as_object()?;
        let text = |key: &str| object.get(key).and_then(Value::as_str);
        let (happened_at, sub_ms_ns) = Timestamp::parse_lenient(text("happenedAt")?)?;
        Some(Event {
            id: EventId(text("id").filter(|id| !id.is_empty())?.to_owned()),
            seq: object.get("seq").and_then(Value::as_u64).map(Seq),
            kind: EventType(text("type").filter(|t| !t.is_empty())?.to_owned()),
            message: text("message").unwrap_or_default().to_owned(),
            happened_at,
            sub_ms_ns,
            details: match object.get("details") {
                Some(Value::Object(details)) => details.clone(),
                _ => Map::new(),
            },
            status: text("status").and_then(|s| s.parse().ok()),
        })
    }

    /// Reads every event of a list; returns those read, and how many could
    /// not be.
    pub fn read_all(values: &[Value]) -> (Vec<Event>, u32) {
        let mut events = Vec::with_capacity(values.len());
        let mut unreadable = 0;
        for value in values {
            match Event::from_value(value) {
                Some(event) => events.push(event),
                None => unreadable += 1,
            }
        }
        (events, unreadable)
    }
}

/// Where an operation is in its life, in the Azure long-running-operation
/// vocabulary. The last three are terminal: no event follows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Accepted, no event yet.
    NotStarted,
    /// Events are flowing.
    Running,
    /// Ended well (terminal).
    Succeeded,
    /// Ended badly (terminal).
    Failed,
    /// Ended on request (terminal).
    Canceled,
}

impl Status {
    /// Every status, in the order of an operation's life.
    pub const ALL: [Status; 5] = [
        Status::NotStarted,
        Status::Running,
        Status::Succeeded,
        Status::Failed,
        Status::Canceled,
    ];

    /// Whether no event follows: succeeded, failed or canceled.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed | Status::Canceled)
    }

    /// The name on the wire and in the database (`"NotStarted"`), which
    /// [`Status::from_str`](std::str::FromStr) reads back. The serde names
    /// are the same (a test checks it).
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::NotStarted => "NotStarted",
            Status::Running => "Running",
            Status::Succeeded => "Succeeded",
            Status::Failed => "Failed",
            Status::Canceled => "Canceled",
        }
    }

    /// The kebab-case name (`"not-started"`) that the widget's
    /// `data-status` attributes and stylesheet use. A table rather than a
    /// conversion of [`Status::as_str`] at run time, which would pull
    /// Unicode case tables into the wasm bundle.
    pub const fn slug(self) -> &'static str {
        match self {
            Status::NotStarted => "not-started",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Canceled => "canceled",
        }
    }

    /// Words for a person, as the widget shows them.
    pub const fn label(self) -> &'static str {
        match self {
            Status::NotStarted => "Not started",
            Status::Running => "Running",
            Status::Succeeded => "Succeeded",
            Status::Failed => "Failed",
            Status::Canceled => "Canceled",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no [`Status`]'s [`Status::as_str`]; it carries the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a status: one of NotStarted, Running, Succeeded, Failed, Canceled")]
pub struct UnknownStatus(pub String);

impl std::str::FromStr for Status {
    type Err = UnknownStatus;

    /// The inverse of [`Status::as_str`]: exact, case-sensitive names.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == name)
            .ok_or_else(|| UnknownStatus(name.to_owned()))
    }
}

/// A snapshot of an operation, as `GET /operations/{id}` returns it and as
/// the start endpoint answers (202).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Its id.
    pub id: OperationId,
    /// What kind of operation (`payment`, `vm`, a publisher's own).
    pub kind: String,
    /// Where it is in its life.
    pub status: Status,
    /// When it was accepted.
    pub created_at: Timestamp,
    /// When its last event was stored.
    pub updated_at: Timestamp,
    /// The stream's generation: it changes only if the stream is rebuilt.
    pub epoch: Epoch,
    /// The highest seq committed so far (`Seq(0)` before the first event).
    pub head: Seq,
    /// The latest progress, 0–100, when its events report one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_complete: Option<f64>,
    /// What the operation was started with; lets "Retry" start it again.
    #[serde(default)]
    pub params: Value,
}

/// `POST /operations` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartRequest {
    /// What kind of operation to start.
    pub kind: String,
    /// What to start it with.
    #[serde(default)]
    pub params: Value,
}

/// One page of `GET /operations/{id}/events?after=N&limit=M`: events with
/// `seq > after` in seq order, plus where the stream stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "PageFields")]
pub struct EventsPage {
    /// The operation the page is of.
    pub operation_id: OperationId,
    /// The operation's kind (`payment`, `vm`), so a client that knows only
    /// the id (a deep link) can label it.
    #[serde(default)]
    pub kind: String,
    /// The stream's generation the seqs belong to.
    pub epoch: Epoch,
    /// The stream's head when the page was read: more may follow.
    pub head: Seq,
    /// The operation's status when the page was read.
    pub status: Status,
    /// The events, in seq order.
    pub events: Vec<Event>,
    /// True when events after this page's last one exist up to `head`.
    pub has_more: bool,
    /// Events the page held that could not be read (see
    /// [`Event::from_value`]). Never on the wire: counted when reading.
    #[serde(skip)]
    pub unreadable: u32,
}

/// An events page as read: each event is read on its own from its JSON
/// value ([`Event::from_value`]), so one this client cannot read is counted
/// in [`EventsPage::unreadable`] instead of failing the whole page.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageFields {
    operation_id: OperationId,
    #[serde(default)]
    kind: String,
    epoch: Epoch,
    head: Seq,
    status: Status,
    events: Vec<Value>,
    has_more: bool,
}

impl From<PageFields> for EventsPage {
    fn from(page: PageFields) -> Self {
        let (events, unreadable) = Event::read_all(&page.events);
        Self {
            operation_id: page.operation_id,
            kind: page.kind,
            epoch: page.epoch,
            head: page.head,
            status: page.status,
            events,
            has_more: page.has_more,
            unreadable,
        }
    }
}

/// `GET /operations` answer: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationList {
    /// This page's operations.
    pub operations: Vec<Operation>,
    /// Pass as `before` to get the next (older) page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
}

/// Every error the server returns, over HTTP or in an `error` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable, machine-readable (`operation_not_found`, …): see PROTOCOL.md.
    pub code: String,
    /// A sentence a person can act on.
    pub message: String,
}

/// Frames a client sends on `GET /ws`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ClientFrame {
    /// Start pushing this operation's events with `seq > after`.
    Subscribe {
        /// The operation to follow.
        operation_id: OperationId,
        /// The client's contiguous prefix.
        after: Seq,
    },
    /// Stop pushing this operation's events.
    Unsubscribe {
        /// The operation to let go of.
        operation_id: OperationId,
    },
    /// Are you there? (Answered with `pong`.)
    Ping,
    /// The answer to the server's `ping`.
    Pong,
}

/// Frames the server sends on `GET /ws`. Unknown frame types deserialize as
/// [`ServerFrame::Unknown`] so a newer server does not break an older client.
/// Decoding goes through [`FrameFields`] (see there why). Marked
/// `non_exhaustive` because the wire may grow: a client must tolerate frames
/// it does not know.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ServerFrame {
    /// The first frame on a new socket: what the client needs to know of
    /// this server before anything else, so far how often it pings (the
    /// client declares a socket dead after two intervals of silence).
    Hello {
        /// The server's ping interval.
        ping_interval_ms: u64,
    },
    /// The subscription is registered; every event committed from now on
    /// will be pushed. `head` was read *after* registering, so history up to
    /// `head` plus the pushes cover everything.
    Subscribed {
        /// The operation subscribed to.
        operation_id: OperationId,
        /// The stream's generation.
        epoch: Epoch,
        /// The head read after registering.
        head: Seq,
    },
    /// An event committed after the subscription was registered.
    Event {
        /// The operation it belongs to.
        operation_id: OperationId,
        /// The stream generation the event belongs to; a client holding
        /// another epoch must not merge it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<Epoch>,
        /// The event.
        event: Event,
    },
    /// The subscription ended (asked for, or after a terminal event).
    Unsubscribed {
        /// The operation no longer followed.
        operation_id: OperationId,
    },
    /// A refusal, of one operation's subscription or of the connection.
    Error {
        /// The operation refused, if it is about one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operation_id: Option<OperationId>,
        /// Stable, machine-readable (see PROTOCOL.md).
        code: String,
        /// A sentence a person can act on.
        message: String,
    },
    /// Are you there? (Answer with `pong`.)
    Ping,
    /// The answer to the client's `ping`.
    Pong,
    /// A frame type this client does not know: ignored.
    Unknown,
}

/// Every field a server frame may carry, all optional, read in one pass and
/// then checked against the frame's type. Serde's derive for an internally
/// tagged enum would buffer each frame into a generic tree first and decode
/// that again, which costs a second copy of every field type's decoder
/// (about 8 KB of the widget's gzipped bundle) and a second walk per frame.
/// So a field is read with the same type in every frame that has it.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FrameFields {
    #[serde(rename = "type")]
    kind: String,
    operation_id: Option<OperationId>,
    epoch: Option<Epoch>,
    head: Option<Seq>,
    /// A plain `Value` (`Null` when absent), not an `Option`: the bundle
    /// then needs no second decoder for it.
    #[serde(default)]
    event: Value,
    code: Option<String>,
    message: Option<String>,
    /// Read as a [`Seq`] (a plain `u64` on the wire too): the bundle then
    /// carries one decoder for optional integers instead of two.
    ping_interval_ms: Option<Seq>,
}

impl FrameFields {
    fn into_frame<E: serde::de::Error>(self) -> Result<ServerFrame, E> {
        fn needs<T, E: serde::de::Error>(field: Option<T>, name: &'static str) -> Result<T, E> {
            field.ok_or_else(|| E::missing_field(name))
        }
        Ok(match self.kind.as_str() {
            "hello" => ServerFrame::Hello {
                ping_interval_ms: needs(self.ping_interval_ms, "pingIntervalMs")?.0,
            },
            "subscribed" => ServerFrame::Subscribed {
                operation_id: needs(self.operation_id, "operationId")?,
                epoch: needs(self.epoch, "epoch")?,
                head: needs(self.head, "head")?,
            },
            "event" => ServerFrame::Event {
                operation_id: needs(self.operation_id, "operationId")?,
                epoch: self.epoch,
                event: match self.event {
                    Value::Null => return Err(E::missing_field("event")),
                    event => Event::from_value(&event)
                        .ok_or_else(|| E::custom("an event without id, type or time"))?,
                },
            },
            "unsubscribed" => ServerFrame::Unsubscribed {
                operation_id: needs(self.operation_id, "operationId")?,
            },
            "error" => ServerFrame::Error {
                operation_id: self.operation_id,
                code: needs(self.code, "code")?,
                message: needs(self.message, "message")?,
            },
            "ping" => ServerFrame::Ping,
            "pong" => ServerFrame::Pong,
            _ => ServerFrame::Unknown,
        })
    }
}

impl<'de> Deserialize<'de> for ServerFrame {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        FrameFields::deserialize(d)?.into_frame()
    }
}

/// Just a frame's type, for a frame whose fields did not decode.
#[derive(Deserialize)]
struct FrameType {
    #[serde(rename = "type")]
    kind: String,
}

/// A frame that could not be understood. Never a panic: the session counts
/// it and shows a notice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed frame: {0}")]
pub struct FrameError(pub String);

impl ServerFrame {
    /// Decodes a frame. A frame whose fields do not decode is still
    /// understood when its type needs none of them: a newer server's frame
    /// type, or a ping, may carry fields of any shape.
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        Self::read(text).map_err(|error| FrameError(error.to_string()))
    }

    /// [`Self::parse`] without saying why a frame could not be read, for a
    /// client that only counts such frames: formatting decoder errors
    /// would put core's float printer (serde's errors can quote numbers)
    /// into the browser bundle for text nobody reads.
    pub fn decode(text: &str) -> Option<Self> {
        Self::read(text).ok()
    }

    fn read(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text).or_else(|error: serde_json::Error| {
            let fieldless = serde_json::from_str::<FrameType>(text).ok().and_then(|t| {
                FrameFields {
                    kind: t.kind,
                    ..FrameFields::default()
                }
                .into_frame::<serde_json::Error>()
                .ok()
            });
            fieldless.ok_or(error)
        })
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialize")
    }
}

impl ClientFrame {
    /// Decodes a frame a client sent.
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        serde_json::from_str(text).map_err(|e| FrameError(e.to_string()))
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("client frames always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_reads_back_its_name_and_serde_agrees_with_it() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse(), Ok(status));
            assert_eq!(status.to_string(), status.as_str());
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(
                status.slug(),
                status.label().to_lowercase().replace(' ', "-")
            );
        }
        assert_eq!(
            "running".parse::<Status>(),
            Err(UnknownStatus("running".into()))
        );
    }

    #[test]
    fn event_round_trips_in_camel_case() {
        let json = r#"{"id":"e1","seq":3,"type":"ProgressUpdated","message":"40 %","happenedAt":"2026-11-24T10:00:00.123Z","details":{"percentage":40}}"#;
        let event: Event = serde_json::from_str(json).unwrap();
        assert_eq!(event.seq, Some(Seq(3)));
        assert_eq!(event.kind.as_str(), "ProgressUpdated");
        assert_eq!(serde_json::to_string(&event).unwrap(), json);
    }

    #[test]
    fn seed_events_without_seq_and_with_unknown_fields_deserialize() {
        let json = r#"{"id":"e1","type":"SomethingNew","happenedAt":"2026-11-24T10:00:00Z","extra":[1,2]}"#;
        let event: Event = serde_json::from_str(json).unwrap();
        assert_eq!(event.seq, None);
        assert!(event.details.is_empty());
    }

    #[test]
    fn frames_are_tagged_by_type() {
        let frame = ClientFrame::Subscribe {
            operation_id: "op".into(),
            after: Seq(7),
        };
        assert_eq!(
            frame.to_json(),
            r#"{"type":"subscribe","operationId":"op","after":7}"#
        );
        let parsed =
            ServerFrame::parse(r#"{"type":"subscribed","operationId":"op","epoch":1,"head":9}"#)
                .unwrap();
        assert_eq!(
            parsed,
            ServerFrame::Subscribed {
                operation_id: "op".into(),
                epoch: Epoch(1),
                head: Seq(9)
            }
        );
    }

    #[test]
    fn every_server_frame_round_trips() {
        let event: Event = serde_json::from_str(
            r#"{"id":"e1","seq":3,"type":"ProgressUpdated","happenedAt":"2026-11-24T10:00:00Z"}"#,
        )
        .unwrap();
        let op = OperationId::from("op");
        for frame in [
            ServerFrame::Subscribed {
                operation_id: op.clone(),
                epoch: Epoch(2),
                head: Seq(9),
            },
            ServerFrame::Event {
                operation_id: op.clone(),
                epoch: Some(Epoch(2)),
                event: event.clone(),
            },
            ServerFrame::Event {
                operation_id: op.clone(),
                epoch: None,
                event,
            },
            ServerFrame::Unsubscribed {
                operation_id: op.clone(),
            },
            ServerFrame::Error {
                operation_id: Some(op),
                code: "operation_not_found".into(),
                message: "No such operation.".into(),
            },
            ServerFrame::Error {
                operation_id: None,
                code: "bad_frame".into(),
                message: "Not JSON.".into(),
            },
            ServerFrame::Hello {
                ping_interval_ms: 40_000,
            },
            ServerFrame::Ping,
            ServerFrame::Pong,
            ServerFrame::Unknown,
        ] {
            assert_eq!(ServerFrame::parse(&frame.to_json()), Ok(frame));
        }
    }

    #[test]
    fn a_frame_missing_what_its_type_needs_says_which_field() {
        let error = ServerFrame::parse(r#"{"type":"event","operationId":"op"}"#).unwrap_err();
        assert!(error.0.contains("missing field `event`"), "{error}");
        let error = ServerFrame::parse(r#"{"operationId":"op"}"#).unwrap_err();
        assert!(error.0.contains("missing field `type`"), "{error}");
    }

    #[test]
    fn unknown_frame_types_are_tolerated_and_garbage_is_an_error() {
        assert_eq!(
            ServerFrame::parse(r#"{"type":"greeting","x":1}"#).unwrap(),
            ServerFrame::Unknown
        );
        // A newer frame type may reuse a field name with another shape.
        assert_eq!(
            ServerFrame::parse(r#"{"head":{"seq":3},"type":"progress"}"#).unwrap(),
            ServerFrame::Unknown
        );
        assert_eq!(
            ServerFrame::parse(r#"{"type":"ping","event":"soon"}"#).unwrap(),
            ServerFrame::Ping
        );
        assert!(ServerFrame::parse("not json").is_err());
        assert!(ServerFrame::parse(r#"{"type":"event","operationId":"op"}"#).is_err());
        assert!(
            ServerFrame::parse(r#"{"type":"subscribed","operationId":"op","epoch":-1,"head":0}"#)
                .is_err()
        );
    }
}
