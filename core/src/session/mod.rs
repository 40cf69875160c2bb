//! The client session: a sans-IO state machine for every operation one
//! client tracks.
//!
//! It never touches a socket, a timer or a clock. The adapter (the browser
//! driver, or the simulation) feeds it [`Input`]s with the current time,
//! carries out the [`Command`]s it yields, and wakes it with
//! [`Input::Tick`] at [`Session::poll_timeout`]; the UI reads
//! [`Session::operations`] and [`Session::connection`]. Everything that
//! makes the list right — subscribe before history, buffering, gap fills,
//! epoch changes, reconnects, deadlines, the watchdog — happens here, once,
//! and is therefore testable natively and deterministically.
//!
//! The rooms: [`api`](self) holds what goes in and out; `operation` one
//! operation's state and its own transitions; `socket` the live channel;
//! `frames` the subscription protocol; `history` catching up; `tracking`
//! the tracked set; `view` what the UI reads. This file only coordinates.

mod api;
mod frames;
mod history;
mod operation;
mod socket;
mod starts;
mod tracking;
mod view;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

pub use api::{
    Command, ConnectionState, HistoryError, Input, Notices, Problem, Recovery, RequestId,
    SessionOptions, SocketId, StartId, TrackedOperation,
};
pub use view::OperationView;

use crate::backoff::Backoff;
use crate::interpretation::Interpretation;
use crate::protocol::OperationId;
use crate::rng::Rng;
use crate::timestamp::Timestamp;
use operation::OperationState;
use socket::Socket;

/// The client session for all tracked operations. See the module doc.
#[derive(Debug)]
pub struct Session {
    options: SessionOptions,
    interpretation: Arc<Interpretation>,
    rng: Rng,
    /// Newest first.
    operations: Vec<OperationState>,
    socket: Socket,
    next_socket: u64,
    next_request: u64,
    backoff: Backoff,
    offline: bool,
    commands: VecDeque<Command>,
    /// Operations unsubscribed on the current socket whose `unsubscribed`
    /// has not come back yet. Until it does, a new subscribe for the same
    /// operation waits: the frames carry no request id, so an answer to the
    /// old subscription would otherwise be taken for the new one's.
    unsubscribing: BTreeSet<OperationId>,
    notices: Notices,
    /// Starts whose answer has not come back.
    starts: Vec<starts::PendingStart>,
    /// The current socket's server's ping interval, from its `hello`.
    server_ping_ms: Option<u64>,
    /// Subscriptions allowed on one socket: the option, or less once the
    /// server has said so.
    subscription_limit: usize,
    /// The time of the input being handled.
    now: Timestamp,
}

impl Session {
    /// A session with nothing tracked. `seed` drives the reconnect jitter.
    pub fn new(options: SessionOptions, seed: u64) -> Self {
        Self {
            subscription_limit: options.max_subscriptions.max(1),
            interpretation: Arc::new(options.interpretation.clone()),
            backoff: Backoff::new(options.reconnect.clone()),
            options,
            rng: Rng::new(seed),
            operations: Vec::new(),
            socket: Socket::Closed,
            next_socket: 0,
            next_request: 0,
            offline: false,
            commands: VecDeque::new(),
            unsubscribing: BTreeSet::new(),
            notices: Notices::default(),
            starts: Vec::new(),
            server_ping_ms: None,
            now: Timestamp(0),
        }
    }

    /// The one way in. `now` is the caller's clock in ms since the epoch.
    ///
    /// Whatever is due by `now` (a reconnect, a retry, a deadline, the
    /// watchdog) is done first, whichever input arrives: time is an input
    /// like any other, so a late or throttled tick loses nothing.
    pub fn handle(&mut self, input: Input, now: Timestamp) {
        self.now = now;
        let proof_of_life = match &input {
            Input::FrameReceived(id, _) | Input::Frame(id, _) | Input::Unreadable(id) => {
                Some(*id) == self.current_socket()
            }
            _ => false,
        };
        self.socket_due(proof_of_life);
        self.history_due();
        self.starts_due();
        match input {
            Input::Start { start, request } => self.start(start, request),
            Input::Started { start, operation } => self.started(start, operation),
            Input::StartFailed { start, error } => self.finish_start(start, Err(error)),
            Input::Track { operation, epoch } => self.track(operation, epoch, true),
            Input::Restore(set) => self.restore(set),
            Input::Forget(id) => self.forget(&id),
            Input::Cancel(id) => self.cancel(&id),
            Input::CancelAccepted(id) => self.cancel_accepted(&id),
            Input::CancelFailed {
                operation_id,
                message,
            } => self.cancel_failed(&operation_id, message),
            Input::SocketOpened(id) => self.socket_opened(id),
            Input::SocketClosed(id) => self.socket_closed(id),
            Input::FrameReceived(id, text) => self.frame_received(id, &text),
            Input::Frame(id, frame) => self.frame(id, Ok(frame)),
            Input::Unreadable(id) => self.frame(id, Err(())),
            Input::UnreadableEvent(id) => self.unreadable_event(&id),
            Input::HistoryReceived { request, page } => self.history_received(request, page),
            Input::HistoryFailed { request, error } => self.history_failed(request, error),
            Input::Online => self.went_online(),
            Input::Offline => self.went_offline(),
            // Overdue work was done above; hidden tabs throttle ticks, so a
            // page becoming visible is a good moment for it.
            Input::Tick | Input::Visible | Input::Hidden => {}
        }
    }

    /// The one way out: the next command to carry out, in order.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// When the session next needs [`Input::Tick`] (or any input), if
    /// ever: the earliest of the reconnect, the connect deadline, the
    /// watchdog, each start's deadline, and each operation's request
    /// deadline or retry. The
    /// adapter keeps one timer and re-reads this after every input.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let timeout = self.options.request_timeout_ms;
        // Plain loops: this runs after every input, and in the browser
        // bundle an iterator chain costs several times the code.
        let mut earliest = self.socket_deadline();
        let mut consider = |at: Option<Timestamp>| {
            if let Some(at) = at
                && earliest.is_none_or(|e| at < e)
            {
                earliest = Some(at);
            }
        };
        for op in &self.operations {
            consider(op.deadline(timeout));
        }
        consider(self.starts_deadline());
        earliest
    }

    /// Session-wide notices (malformed frames, rejected events, errors).
    pub fn notices(&self) -> &Notices {
        &self.notices
    }

    /// Tracked operations, newest first.
    pub fn operations(&self) -> impl Iterator<Item = OperationView<'_>> {
        self.operations.iter().map(OperationView::of)
    }

    /// One tracked operation, if it is tracked.
    pub fn operation(&self, id: &OperationId) -> Option<OperationView<'_>> {
        self.find(id).map(OperationView::of)
    }

    /// The tracked set as it would be persisted.
    pub fn tracked(&self) -> Vec<TrackedOperation> {
        self.operations
            .iter()
            .map(|op| op.tracked.clone())
            .collect()
    }

    fn find(&self, id: &OperationId) -> Option<&OperationState> {
        self.operations.iter().find(|op| op.id() == id)
    }

    fn find_mut(&mut self, id: &OperationId) -> Option<&mut OperationState> {
        self.operations.iter_mut().find(|op| op.id() == id)
    }
}
