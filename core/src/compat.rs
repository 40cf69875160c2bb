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
            Err(_) => Input::Unreadable(socket),
        })
    }

    /// An operation's seed socket closed or failed: today that is the loss
    /// of the virtual socket, so every subscription recovers the same way
    /// (the adapter closes the other seed sockets: [`Action::CloseAll`]).
    pub fn socket_closed(&mut self) -> Option<Input> {
        self.virtual_socket.take().map(Input::SocketClosed)
    }
}

/// One pushed seed event.
pub fn parse_event(text: &str) -> Result<Event, FrameError> {
    serde_json::from_str(text).map_err(|e| FrameError(e.to_string()))
}

/// A seed backend's history (a bare array of events) as a history page.
pub fn history_page(operation_id: OperationId, body: &str) -> Result<EventsPage, FrameError> {
    let events: Vec<Event> = serde_json::from_str(body).map_err(|e| FrameError(e.to_string()))?;
    Ok(EventsPage {
        operation_id,
        kind: String::new(),
        epoch: Epoch(0),
        head: Seq(0),
        status: Status::Running,
        events,
        has_more: false,
    })
}
