//! Seed-format backends ("compat mode"), translated into the protocol.
//!
//! A seed-format backend has no `seq`, no multiplexed socket and no
//! `subscribe`: each operation has its own WebSocket (`{ws}/{id}`) that
//! pushes bare event objects from the moment it opens, and its history is
//! a bare JSON array. The [`Session`](crate::Session) speaks only the
//! protocol, so this translator stands between it and the adapter: the
//! session's one socket becomes virtual, each subscription becomes a real
//! socket of its own, and what those sockets say becomes typed
//! [`Input`]s. It is pure, like the session, so the deterministic
//! simulation runs it against a simulated seed-format server.
//!
//! The session then does the rest as for any backend: a socket opening is
//! a subscription whose head is unknown (`0`), so the history it fetches
//! next fills whatever was pushed before it opened; events are ordered by
//! time and deduped by id ([`LogOrder::ByTime`](crate::LogOrder)).

use serde_json::Value;

use crate::protocol::{Epoch, Event, EventsPage, OperationId, Seq, ServerFrame, Status};
use crate::session::{Command, Input, SocketId};
use crate::{ClientFrame, FrameError};

/// What the adapter does for one session command in compat mode.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum Action {
    /// Carry out the command as for any backend.
    Execute(Command),
    /// Feed this input to the session (after the command's others).
    Feed(Input),
    /// Open the seed socket of this operation.
    OpenOperationSocket(OperationId),
    /// Close the seed socket of this operation, if it is open.
    CloseOperationSocket(OperationId),
    /// Close every seed socket.
    CloseAll,
    /// Nothing to do.
    Nothing,
}

/// The translator's state: which socket of the session is the virtual one.
#[derive(Debug, Default)]
pub struct Compat {
    virtual_socket: Option<SocketId>,
}

impl Compat {
    /// A translator with no socket yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// What to do for a command of the session.
    pub fn command(&mut self, command: Command) -> Action {
        match command {
            Command::OpenSocket(id) => {
                // Nothing to open until an operation is subscribed.
                self.virtual_socket = Some(id);
                Action::Feed(Input::SocketOpened(id))
            }
            Command::CloseSocket(id) if self.virtual_socket == Some(id) => {
                self.virtual_socket = None;
                Action::CloseAll
            }
            Command::CloseSocket(_) => Action::Nothing,
            Command::Send(_, ClientFrame::Subscribe { operation_id, .. }) => {
                Action::OpenOperationSocket(operation_id)
            }
            Command::Send(_, ClientFrame::Unsubscribe { operation_id }) => {
                Action::CloseOperationSocket(operation_id)
            }
            // Seed backends neither ping nor expect pongs.
            Command::Send(_, ClientFrame::Ping | ClientFrame::Pong) => Action::Nothing,
            other => Action::Execute(other),
        }
    }

    /// An operation's seed socket opened: from now on it pushes everything,
    /// which is a subscription whose head is unknown.
    pub fn socket_opened(&self, operation_id: &OperationId) -> Option<Input> {
        let socket = self.virtual_socket?;
        Some(Input::Frame(
            socket,
            ServerFrame::Subscribed {
                operation_id: operation_id.clone(),
                epoch: Epoch(0),
                head: Seq(0),
            },
        ))
    }

    /// A text frame on an operation's seed socket: one bare event.
    pub fn frame(&self, operation_id: &OperationId, text: &str) -> Option<Input> {
        let socket = self.virtual_socket?;
        Some(match parse_event(text) {
            Ok(event) => Input::Frame(
                socket,
                ServerFrame::Event {
                    operation_id: operation_id.clone(),
                    epoch: None,
                    event,
                },
            ),
            Err(_) => Input::UnreadableEvent(operation_id.clone()),
        })
    }

    /// An operation's seed socket closed, or never opened (an id the
    /// backend does not know answers its upgrade with 404). Only that
    /// operation is affected: its subscription ended for a reason that may
    /// pass, so the session reads its history (which tells an unknown id
    /// apart) and asks for it again after a backoff. No other operation's
    /// socket is touched.
    pub fn socket_closed(&self, operation_id: &OperationId) -> Option<Input> {
        let socket = self.virtual_socket?;
        Some(Input::Frame(
            socket,
            ServerFrame::Error {
                operation_id: Some(operation_id.clone()),
                code: "connection_lost".into(),
                message: "its live connection was lost".into(),
            },
        ))
    }
}

/// One pushed seed event, read leniently (see [`Event::from_value`]).
pub fn parse_event(text: &str) -> Result<Event, FrameError> {
    // The decoder's own words are not kept (see `ServerFrame::decode`).
    let value: Value = serde_json::from_str(text).map_err(|_| FrameError("not JSON".into()))?;
    Event::from_value(&value).ok_or_else(|| FrameError("not an event: no id, type or time".into()))
}

/// A seed backend's history as a history page: a bare array of events, or
/// one wrapped as `{"events": [...]}` (also `items` or `data`). Events that
/// cannot be read are skipped and counted in [`EventsPage::unreadable`], so
/// the person is told rather than shown a shorter list as complete.
pub fn history_page(operation_id: OperationId, body: &str) -> Result<EventsPage, FrameError> {
    let value: Value = serde_json::from_str(body).map_err(|_| FrameError("not JSON".into()))?;
    let items = match &value {
        Value::Array(items) => items,
        Value::Object(object) => ["events", "items", "data"]
            .iter()
            .find_map(|key| object.get(*key).and_then(Value::as_array))
            .ok_or_else(|| FrameError("a history without an events array".into()))?,
        _ => return Err(FrameError("a history that is not an array".into())),
    };
    let (mut events, unreadable) = Event::read_all(items);
    // Seed backends have no seqs; one that sends some anyway is ordered by
    // time like the rest.
    for event in &mut events {
        event.seq = None;
    }
    Ok(EventsPage {
        operation_id,
        kind: String::new(),
        epoch: Epoch(0),
        head: Seq(0),
        status: Status::Running,
        events,
        has_more: false,
        unreadable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::Timestamp;

    #[test]
    fn times_as_real_backends_write_them() {
        let utc = |text| Timestamp::parse_lenient(text).map(|(at, ns)| (at.0, ns));
        let base = Timestamp::parse("2026-12-01T01:49:46.222Z").unwrap().0;
        assert_eq!(
            utc("2026-12-01T01:49:46.2224417+00:00"),
            Some((base, 441_700))
        );
        assert_eq!(utc("2026-12-01T01:49:46.222Z"), Some((base, 0)));
        assert_eq!(utc("2026-12-01T03:49:46.222+0200"), Some((base, 0)));
        assert_eq!(utc("2026-12-01T03:49:46.222+02:00"), Some((base, 0)));
        assert_eq!(utc("2026-12-01T01:49:46.222"), Some((base, 0)));
        assert_eq!(utc("2026-12-01T01:49:46Z"), Some((base - 222, 0)));
        assert_eq!(utc("yesterday"), None);
        assert_eq!(utc("2026-12-01T01:49:46.2+0"), None);
    }

    #[test]
    fn nulls_and_numbers_are_read_and_events_without_id_type_or_time_are_not() {
        let read = |text: &str| Event::from_value(&serde_json::from_str(text).unwrap());
        let event = read(
            r#"{"id":"7","type":"PaymentSucceeded","message":null,"details":null,
                "happenedAt":"2026-12-01T01:49:46.2224417+00:00"}"#,
        )
        .expect("an event");
        assert_eq!(event.id.0, "7");
        assert_eq!(event.message, "");
        assert!(event.details.is_empty());
        assert_eq!(event.sub_ms_ns, 441_700);
        for broken in [
            r#"{"type":"X","happenedAt":"2026-12-01T01:49:46Z"}"#,
            r#"{"id":"a","happenedAt":"2026-12-01T01:49:46Z"}"#,
            r#"{"id":"a","type":"X"}"#,
            r#"{"id":"a","type":"X","happenedAt":null}"#,
        ] {
            assert_eq!(read(broken), None, "{broken}");
        }
    }

    #[test]
    fn a_wrapped_history_is_read_and_what_cannot_be_read_is_counted() {
        let body = r#"{"events":[
            {"id":"a","type":"Started","happenedAt":"2026-12-01T01:49:46Z"},
            {"type":"Broken"},
            {"id":"b","type":"Done","happenedAt":"2026-12-01T01:49:47Z","details":null}
        ]}"#;
        let page = history_page(OperationId::from("p"), body).unwrap();
        assert_eq!(page.events.len(), 2);
        assert_eq!(page.unreadable, 1);
        assert!(history_page(OperationId::from("p"), r#"{"nope":1}"#).is_err());
        assert!(
            history_page(OperationId::from("p"), "[]")
                .unwrap()
                .events
                .is_empty()
        );
    }
}
