//! The client session: a sans-IO state machine for every operation one
//! client tracks.
//!
//! It never touches a socket, a timer or a clock. The adapter (the browser
//! driver, or the simulation) feeds it [`Input`]s with the current time and
//! carries out the [`Command`]s it yields; the UI reads
//! [`Session::operations`] and [`Session::connection`]. Everything that makes
//! the list right — subscribe before history, buffering, gap fills, epoch
//! changes, reconnects, the watchdog — happens here, once, and is therefore
//! testable natively and deterministically.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backoff::{Backoff, BackoffOptions};
use crate::interpretation::Interpretation;
use crate::log::{EventLog, Insert, LogOrder};
use crate::protocol::{ClientFrame, Epoch, EventsPage, OperationId, Seq, ServerFrame, Status};
use crate::rng::Rng;
use crate::timestamp::Timestamp;

/// Tuning for a [`Session`]; `Default` fits the reference server.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// `BySeq` for optrail backends, `ByTime` for seed-format backends.
    pub order: LogOrder,
    pub interpretation: Interpretation,
    /// Reconnect delays.
    pub reconnect: BackoffOptions,
    /// Delays between retries of a failed history request.
    pub history_retry: BackoffOptions,
    /// Events asked for per history request.
    pub page_limit: u32,
    /// How often the server pings. Silence for twice this long means the
    /// socket is dead even if the browser has not noticed.
    pub server_ping_interval_ms: u64,
    /// A connection that lived this long was healthy: the next reconnect
    /// starts again from the shortest delay.
    pub healthy_after_ms: u64,
    /// A history request unanswered this long has failed, and is retried
    /// like any other failure: a request that never answers cannot leave an
    /// operation "catching up" forever.
    pub request_timeout_ms: u64,
    /// A socket not open this long after it was asked for is given up and
    /// reconnected like a lost one.
    pub connect_timeout_ms: u64,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            order: LogOrder::BySeq,
            interpretation: Interpretation::default(),
            reconnect: BackoffOptions::default(),
            history_retry: BackoffOptions {
                initial_ms: 1_000,
                cap_ms: 30_000,
            },
            page_limit: 500,
            server_ping_interval_ms: 15_000,
            healthy_after_ms: 10_000,
            request_timeout_ms: 15_000,
            connect_timeout_ms: 10_000,
        }
    }
}

/// What the client remembers about an operation across reloads: the
/// persisted form, stored by the adapter (localStorage) on [`Command::Persist`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackedOperation {
    pub id: OperationId,
    #[serde(default)]
    pub kind: String,
    /// What it was started with, so "Retry" can start it again.
    #[serde(default)]
    pub params: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// The last status seen; a terminal one means "load once, never subscribe".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

impl TrackedOperation {
    /// An operation known only by id (a deep link, an embedder's `track`).
    pub fn by_id(id: OperationId) -> Self {
        Self {
            id,
            kind: String::new(),
            params: Value::Null,
            created_at: None,
            status: None,
        }
    }
}

/// Identifies one socket the session asked for, so that late news about an
/// old socket cannot be mistaken for news about the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(pub u64);

/// Identifies one history request, so a stale answer is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// The session's timers. Setting a timer replaces any earlier one with the
/// same name; a timer that fires early or stale is ignored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// The next reconnect attempt.
    Reconnect,
    /// When a silent socket would be declared dead.
    Watchdog,
    /// The next attempt at an operation's failed history request.
    HistoryRetry(OperationId),
    /// When an operation's history request in flight has waited too long.
    HistoryDeadline(OperationId),
    /// When a socket still opening has waited too long.
    ConnectDeadline,
}

/// Why a history request failed, as far as the session cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryError {
    /// The server does not know the operation (404): retrying will not help.
    NotFound,
    /// Anything else (network, 5xx, malformed body): retried with backoff.
    Transient(String),
}

/// Everything that can happen to a session.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Follow an operation; `epoch` when the start response gave it.
    Track {
        operation: TrackedOperation,
        epoch: Option<Epoch>,
    },
    /// Replace the tracked set with one read from storage (page load, or
    /// another tab changed it). Does not write it back.
    Restore(Vec<TrackedOperation>),
    Forget(OperationId),
    Cancel(OperationId),
    CancelFailed {
        operation_id: OperationId,
        message: String,
    },
    SocketOpened(SocketId),
    SocketClosed(SocketId),
    FrameReceived(SocketId, String),
    HistoryReceived {
        request: RequestId,
        page: EventsPage,
    },
    HistoryFailed {
        request: RequestId,
        error: HistoryError,
    },
    TimerFired(Timer),
    Online,
    Offline,
    Visible,
    Hidden,
}

/// What the adapter must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Open the WebSocket; report back with this id.
    OpenSocket(SocketId),
    CloseSocket(SocketId),
    Send(SocketId, ClientFrame),
    /// `GET /operations/{id}/events?after=…&limit=…`; answer with
    /// [`Input::HistoryReceived`] or [`Input::HistoryFailed`].
    FetchHistory {
        request: RequestId,
        operation_id: OperationId,
        after: Seq,
        limit: u32,
    },
    /// `DELETE /operations/{id}`; report only a failure.
    Cancel(OperationId),
    /// Fire [`Input::TimerFired`] at (or after) `at`.
    SetTimer {
        timer: Timer,
        at: Timestamp,
    },
    /// Store this tracked set (newest first).
    Persist(Vec<TrackedOperation>),
}

/// The live channel as a person would describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Nothing needs a live channel.
    Idle,
    Connecting,
    Live,
    /// Waiting to reconnect at `at`.
    Reconnecting {
        at: Timestamp,
    },
    /// The browser says it is offline; reconnecting resumes when it is back.
    Offline,
}

/// What the last (re)subscription of an operation found, for the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Catching up with the server.
    CatchingUp,
    /// Every event the server has is here and none was missed.
    Complete { total: usize },
    /// After a disconnect or a gap, `missed` events were fetched again.
    Replayed { missed: u64, total: usize },
    /// The server rebuilt the stream (new epoch): everything was fetched anew.
    Refetched { total: usize },
}

impl Recovery {
    /// The same finding with `total` events here now. Events pushed after a
    /// catch-up arrive in order (a gap starts a new catch-up), so they count
    /// as "here, none missed" too: `total` is always what the log holds,
    /// never the size it had when the catch-up ended.
    fn with_total(self, total: usize) -> Self {
        match self {
            Recovery::CatchingUp => Recovery::CatchingUp,
            Recovery::Complete { .. } => Recovery::Complete { total },
            Recovery::Replayed { missed, .. } => Recovery::Replayed { missed, total },
            Recovery::Refetched { .. } => Recovery::Refetched { total },
        }
    }
}

/// Something wrong with one operation, in words the UI can show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The server does not know this operation.
    NotFound,
    /// The server refused something (its message).
    Server(String),
    /// History could not be loaded; retrying at `retry_at`.
    HistoryUnavailable { reason: String, retry_at: Timestamp },
    /// Cancel was refused (its message).
    CancelFailed(String),
}

/// Session-wide notices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notices {
    /// Frames that could not be parsed and were ignored.
    pub malformed_frames: u64,
    /// Events the log refused (bad seq) and ignored.
    pub rejected_events: u64,
    /// The last server error not tied to an operation.
    pub server_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Socket {
    Closed,
    Connecting(SocketId),
    Open {
        id: SocketId,
        opened_at: Timestamp,
        last_frame_at: Timestamp,
    },
    Waiting {
        until: Timestamp,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subscription {
    None,
    Pending,
    Active,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fetch {
    Idle,
    InFlight(RequestId),
    RetryAt(Timestamp),
}

/// The bookkeeping of one catch-up after a (re)subscribe or a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Round {
    /// Events added from history this round that the client had missed.
    missed: u64,
    /// The first catch-up of this page load: history is "loaded", not "missed".
    first: bool,
    refetched: bool,
    /// History pages received this round.
    pages: u32,
}

#[derive(Debug, Clone)]
struct OperationState {
    tracked: TrackedOperation,
    log: EventLog,
    epoch: Option<Epoch>,
    /// The highest seq the server is known to have.
    head: Seq,
    subscription: Subscription,
    fetch: Fetch,
    /// When the request in flight was asked for, and what it asked for.
    fetch_sent_at: Timestamp,
    fetch_range: (Seq, u32),
    fetch_backoff: Backoff,
    round: Option<Round>,
    recovery: Recovery,
    /// Set once the first catch-up of this page load is over.
    caught_up_once: bool,
    problem: Option<Problem>,
    /// The status the server last reported in a history page.
    server_status: Option<Status>,
    /// Terminal and complete: never subscribed again.
    finished: bool,
    cancel_requested: bool,
}

impl OperationState {
    fn needs_live(&self) -> bool {
        !self.finished
            && self.problem != Some(Problem::NotFound)
            && !self.tracked.status.is_some_and(Status::is_terminal)
    }
}

/// A read-only view of one tracked operation, for rendering.
#[derive(Debug, Clone, Copy)]
pub struct OperationView<'a> {
    pub tracked: &'a TrackedOperation,
    pub log: &'a EventLog,
    pub status: Status,
    pub progress: Option<f64>,
    pub recovery: Recovery,
    pub problem: Option<&'a Problem>,
    pub epoch: Option<Epoch>,
    /// The server's head as last known.
    pub head: Seq,
    /// Terminal and complete: the subscription is over.
    pub finished: bool,
    pub cancel_requested: bool,
}

/// The client session for all tracked operations. See the module doc.
#[derive(Debug)]
pub struct Session {
    options: SessionOptions,
    interpretation: Arc<Interpretation>,
    rng: Rng,
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
    revision: u64,
    /// The time of the input being handled.
    now: Timestamp,
    /// When the socket being opened was asked for.
    connecting_since: Timestamp,
}

impl Session {
    /// A session with nothing tracked. `seed` drives the reconnect jitter.
    pub fn new(options: SessionOptions, seed: u64) -> Self {
        Self {
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
            revision: 0,
            now: Timestamp(0),
            connecting_since: Timestamp(0),
        }
    }

    /// The one way in. `now` is the caller's clock in ms since the epoch.
    pub fn handle(&mut self, input: Input, now: Timestamp) {
        self.revision += 1;
        self.now = now;
        // A frame on the current socket is proof of life, not a reason to
        // declare it dead because it came late.
        if !matches!(&input, Input::FrameReceived(id, _) if Some(*id) == self.current_socket()) {
            self.check_watchdog(now);
        }
        match input {
            Input::Track { operation, epoch } => self.track(operation, epoch, true),
            Input::Restore(set) => self.restore(set),
            Input::Forget(id) => self.forget(&id),
            Input::Cancel(id) => self.cancel(&id),
            Input::CancelFailed {
                operation_id,
                message,
            } => {
                if let Some(op) = self.find_mut(&operation_id) {
                    op.cancel_requested = false;
                    // "Not found" is what keeps the session from following
                    // the operation; a failed cancel must not paper over it.
                    // Once it has ended anyway, the refusal is moot.
                    if op.problem != Some(Problem::NotFound) && !op.finished {
                        op.problem = Some(Problem::CancelFailed(message));
                    }
                }
            }
            Input::SocketOpened(id) => self.socket_opened(id, now),
            Input::SocketClosed(id) => self.socket_closed(id, now),
            Input::FrameReceived(id, text) => self.frame_received(id, &text, now),
            Input::HistoryReceived { request, page } => self.history_received(request, page),
            Input::HistoryFailed { request, error } => self.history_failed(request, error, now),
            Input::TimerFired(timer) => self.timer_fired(timer, now),
            Input::Online => {
                self.offline = false;
                if matches!(self.socket, Socket::Waiting { .. } | Socket::Closed) {
                    self.socket = Socket::Closed;
                    self.ensure_socket();
                }
            }
            Input::Offline => {
                self.offline = true;
                if matches!(self.socket, Socket::Waiting { .. }) {
                    self.socket = Socket::Closed;
                }
            }
            Input::Visible => {
                // Timers are throttled in hidden tabs: an overdue reconnect
                // happens now rather than whenever the late timer fires.
                if let Socket::Waiting { until } = self.socket
                    && now >= until
                {
                    self.socket = Socket::Closed;
                    self.ensure_socket();
                }
            }
            Input::Hidden => {}
        }
    }

    /// The one way out: the next command to carry out, in order.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// Changes with every input; lets an adapter skip re-rendering.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn connection(&self) -> ConnectionState {
        match self.socket {
            _ if self.offline && !matches!(self.socket, Socket::Open { .. }) => {
                if self.operations.iter().any(OperationState::needs_live) {
                    ConnectionState::Offline
                } else {
                    ConnectionState::Idle
                }
            }
            Socket::Closed => ConnectionState::Idle,
            Socket::Connecting(_) => ConnectionState::Connecting,
            Socket::Open { .. } => ConnectionState::Live,
            Socket::Waiting { until } => ConnectionState::Reconnecting { at: until },
        }
    }

    pub fn notices(&self) -> &Notices {
        &self.notices
    }

    /// Tracked operations, newest first.
    pub fn operations(&self) -> impl Iterator<Item = OperationView<'_>> {
        self.operations.iter().map(view)
    }

    pub fn operation(&self, id: &OperationId) -> Option<OperationView<'_>> {
        self.operations
            .iter()
            .find(|op| &op.tracked.id == id)
            .map(view)
    }

    /// The tracked set as it would be persisted.
    pub fn tracked(&self) -> Vec<TrackedOperation> {
        self.operations
            .iter()
            .map(|op| op.tracked.clone())
            .collect()
    }

    // ----- tracking -------------------------------------------------------

    fn track(&mut self, tracked: TrackedOperation, epoch: Option<Epoch>, persist: bool) {
        if self.find(&tracked.id).is_some() {
            return;
        }
        let op = OperationState {
            log: EventLog::new(self.options.order, self.interpretation.clone()),
            epoch,
            head: Seq::ZERO,
            subscription: Subscription::None,
            fetch: Fetch::Idle,
            fetch_sent_at: Timestamp(0),
            fetch_range: (Seq::ZERO, 0),
            fetch_backoff: Backoff::new(self.options.history_retry.clone()),
            round: None,
            recovery: Recovery::CatchingUp,
            caught_up_once: false,
            problem: None,
            server_status: None,
            finished: false,
            cancel_requested: false,
            tracked,
        };
        let id = op.tracked.id.clone();
        let live = op.needs_live();
        self.operations.insert(0, op);
        if live {
            self.ensure_socket();
            self.subscribe(&id);
        } else {
            // Terminal when last seen: load it once, never subscribe.
            self.start_round(&id, false);
            self.fetch_next(&id);
        }
        if persist {
            self.persist();
        }
    }

    fn restore(&mut self, set: Vec<TrackedOperation>) {
        let gone: Vec<OperationId> = self
            .operations
            .iter()
            .filter(|op| !set.iter().any(|t| t.id == op.tracked.id))
            .map(|op| op.tracked.id.clone())
            .collect();
        for id in gone {
            self.remove(&id);
        }
        // Insert oldest first so the newest ends up in front.
        for tracked in set.into_iter().rev() {
            self.track(tracked, None, false);
        }
        self.close_socket_if_idle();
    }

    fn forget(&mut self, id: &OperationId) {
        if self.remove(id) {
            self.persist();
            self.close_socket_if_idle();
        }
    }

    fn remove(&mut self, id: &OperationId) -> bool {
        let Some(index) = self.operations.iter().position(|op| &op.tracked.id == id) else {
            return false;
        };
        let op = self.operations.remove(index);
        if op.subscription != Subscription::None {
            self.unsubscribe(&op.tracked.id);
        }
        true
    }

    fn cancel(&mut self, id: &OperationId) {
        if let Some(op) = self.find_mut(id)
            && !op.finished
            && !op.cancel_requested
            && op.problem != Some(Problem::NotFound)
        {
            op.cancel_requested = true;
            if matches!(op.problem, Some(Problem::CancelFailed(_))) {
                op.problem = None;
            }
            self.commands.push_back(Command::Cancel(id.clone()));
        }
    }

    fn persist(&mut self) {
        self.commands.push_back(Command::Persist(self.tracked()));
    }

    // ----- the socket -----------------------------------------------------

    fn wants_socket(&self) -> bool {
        self.operations.iter().any(OperationState::needs_live)
    }

    /// Opens a socket if one is needed and none is open, connecting or
    /// scheduled. The only place that opens sockets.
    fn ensure_socket(&mut self) {
        if self.socket == Socket::Closed && !self.offline && self.wants_socket() {
            self.next_socket += 1;
            let id = SocketId(self.next_socket);
            self.socket = Socket::Connecting(id);
            self.connecting_since = self.now;
            self.commands.push_back(Command::OpenSocket(id));
            self.commands.push_back(Command::SetTimer {
                timer: Timer::ConnectDeadline,
                at: Timestamp(self.now.0 + self.options.connect_timeout_ms as i64),
            });
        }
    }

    fn close_socket_if_idle(&mut self) {
        if self.wants_socket() {
            return;
        }
        match self.socket {
            Socket::Open { id, .. } | Socket::Connecting(id) => {
                self.commands.push_back(Command::CloseSocket(id));
                self.socket = Socket::Closed;
                self.unsubscribing.clear();
                for op in &mut self.operations {
                    op.subscription = Subscription::None;
                }
            }
            Socket::Waiting { .. } => self.socket = Socket::Closed,
            Socket::Closed => {}
        }
    }

    fn current_socket(&self) -> Option<SocketId> {
        match self.socket {
            Socket::Connecting(id) | Socket::Open { id, .. } => Some(id),
            _ => None,
        }
    }

    fn socket_opened(&mut self, id: SocketId, now: Timestamp) {
        if self.socket != Socket::Connecting(id) {
            // An old socket or one we gave up on: close it, it is not ours.
            self.commands.push_back(Command::CloseSocket(id));
            return;
        }
        self.socket = Socket::Open {
            id,
            opened_at: now,
            last_frame_at: now,
        };
        self.unsubscribing.clear();
        self.arm_watchdog(now);
        let ids: Vec<OperationId> = self
            .operations
            .iter()
            .filter(|op| op.needs_live())
            .map(|op| op.tracked.id.clone())
            .collect();
        for op in ids {
            self.subscribe(&op);
        }
    }

    fn socket_closed(&mut self, id: SocketId, now: Timestamp) {
        if self.current_socket() != Some(id) {
            return;
        }
        self.lost_socket(now, now);
    }

    /// The current socket is gone (closed, or declared dead). The only path
    /// that schedules a reconnect. `alive_until` is the last instant it was
    /// known to work: a socket that worked for a while was healthy, however
    /// it ended, and the next reconnect starts from the shortest delay.
    fn lost_socket(&mut self, now: Timestamp, alive_until: Timestamp) {
        if let Socket::Open { opened_at, .. } = self.socket
            && alive_until.0 - opened_at.0 >= self.options.healthy_after_ms as i64
        {
            self.backoff.reset();
        }
        for op in &mut self.operations {
            op.subscription = Subscription::None;
        }
        self.unsubscribing.clear();
        self.socket = Socket::Closed;
        if self.offline || !self.wants_socket() {
            return;
        }
        let delay = self.backoff.next_delay_ms(&mut self.rng);
        let until = Timestamp(now.0 + delay as i64);
        self.socket = Socket::Waiting { until };
        self.commands.push_back(Command::SetTimer {
            timer: Timer::Reconnect,
            at: until,
        });
    }

    fn watchdog_limit(&self) -> i64 {
        2 * self.options.server_ping_interval_ms as i64
    }

    fn arm_watchdog(&mut self, last_frame_at: Timestamp) {
        let at = Timestamp(last_frame_at.0 + self.watchdog_limit());
        self.commands.push_back(Command::SetTimer {
            timer: Timer::Watchdog,
            at,
        });
    }

    /// Runs on every input, so a dead socket is noticed whenever anything
    /// happens at all, not only when a (possibly throttled) timer fires.
    fn check_watchdog(&mut self, now: Timestamp) {
        if let Socket::Open {
            id, last_frame_at, ..
        } = self.socket
            && now.0 - last_frame_at.0 >= self.watchdog_limit()
        {
            self.commands.push_back(Command::CloseSocket(id));
            self.lost_socket(now, last_frame_at);
        }
    }

    fn timer_fired(&mut self, timer: Timer, now: Timestamp) {
        match timer {
            Timer::Reconnect => match self.socket {
                Socket::Waiting { until } if now >= until => {
                    self.socket = Socket::Closed;
                    self.ensure_socket();
                }
                Socket::Waiting { until } => self.commands.push_back(Command::SetTimer {
                    timer: Timer::Reconnect,
                    at: until,
                }),
                _ => {}
            },
            Timer::Watchdog => {
                // check_watchdog already ran; if the socket lives, look again
                // when it would next be overdue.
                if let Socket::Open { last_frame_at, .. } = self.socket {
                    self.arm_watchdog(last_frame_at);
                }
            }
            Timer::HistoryRetry(id) => {
                let due = self
                    .find(&id)
                    .is_some_and(|op| matches!(op.fetch, Fetch::RetryAt(at) if now >= at));
                if due {
                    let op = self.find_mut(&id).expect("checked above");
                    op.fetch = Fetch::Idle;
                    if matches!(op.problem, Some(Problem::HistoryUnavailable { .. })) {
                        op.problem = None;
                    }
                    self.fetch_next(&id);
                } else if let Some(OperationState {
                    fetch: Fetch::RetryAt(at),
                    ..
                }) = self.find(&id)
                {
                    let at = *at;
                    self.commands.push_back(Command::SetTimer {
                        timer: Timer::HistoryRetry(id),
                        at,
                    });
                }
            }
            Timer::HistoryDeadline(id) => {
                let timeout = self.options.request_timeout_ms as i64;
                let Some(op) = self.find(&id) else { return };
                let Fetch::InFlight(request) = op.fetch else {
                    return;
                };
                let due = Timestamp(op.fetch_sent_at.0 + timeout);
                if now >= due {
                    let reason = format!("no answer within {} s", timeout / 1000);
                    self.history_failed(request, HistoryError::Transient(reason), now);
                } else {
                    self.commands.push_back(Command::SetTimer {
                        timer: Timer::HistoryDeadline(id),
                        at: due,
                    });
                }
            }
            Timer::ConnectDeadline => {
                let Socket::Connecting(id) = self.socket else {
                    return;
                };
                let due =
                    Timestamp(self.connecting_since.0 + self.options.connect_timeout_ms as i64);
                if now >= due {
                    // Given up: a late open of this socket is closed as not ours.
                    self.commands.push_back(Command::CloseSocket(id));
                    self.lost_socket(now, now);
                } else {
                    self.commands.push_back(Command::SetTimer {
                        timer: Timer::ConnectDeadline,
                        at: due,
                    });
                }
            }
        }
    }

    // ----- frames ---------------------------------------------------------

    fn subscribe(&mut self, id: &OperationId) {
        let Socket::Open { id: socket, .. } = self.socket else {
            return;
        };
        if self.unsubscribing.contains(id) {
            // Resubscribed once the old subscription's end is confirmed.
            return;
        }
        let Some(op) = self.find_mut(id) else { return };
        if op.subscription != Subscription::None || !op.needs_live() {
            return;
        }
        op.subscription = Subscription::Pending;
        let after = op.log.contiguous();
        self.commands.push_back(Command::Send(
            socket,
            ClientFrame::Subscribe {
                operation_id: id.clone(),
                after,
            },
        ));
    }

    /// Ends a subscription on the current socket, remembering that its
    /// `unsubscribed` is still to come.
    fn unsubscribe(&mut self, id: &OperationId) {
        if let Socket::Open { id: socket, .. } = self.socket {
            self.unsubscribing.insert(id.clone());
            self.commands.push_back(Command::Send(
                socket,
                ClientFrame::Unsubscribe {
                    operation_id: id.clone(),
                },
            ));
        }
    }

    fn frame_received(&mut self, socket: SocketId, text: &str, now: Timestamp) {
        let Socket::Open {
            id, last_frame_at, ..
        } = &mut self.socket
        else {
            return;
        };
        if *id != socket {
            return;
        }
        *last_frame_at = now;
        let frame = match ServerFrame::parse(text) {
            Ok(frame) => frame,
            Err(_) => {
                self.notices.malformed_frames += 1;
                return;
            }
        };
        match frame {
            ServerFrame::Subscribed {
                operation_id,
                epoch,
                head,
            } => self.subscribed(&operation_id, epoch, head),
            ServerFrame::Event {
                operation_id,
                epoch,
                event,
            } => self.live_event(&operation_id, epoch, event),
            ServerFrame::Unsubscribed { operation_id }
                if self.unsubscribing.remove(&operation_id) =>
            {
                // The end we asked for. If the operation was tracked again
                // meanwhile, its subscription can go out now.
                self.subscribe(&operation_id);
            }
            ServerFrame::Unsubscribed { operation_id } => {
                // While a subscribe is pending, an `unsubscribed` answers an
                // earlier unsubscribe (forget, then track again): the server
                // answers a subscribe with `subscribed` before anything else.
                if let Some(op) = self.find_mut(&operation_id)
                    && op.subscription != Subscription::Pending
                {
                    op.subscription = Subscription::None;
                    if op.needs_live() {
                        // The server ended it early: whatever it has is in
                        // the history; the next connection subscribes again.
                        self.fetch_next(&operation_id);
                    }
                }
            }
            ServerFrame::Error {
                operation_id: Some(operation_id),
                code,
                message,
            } => {
                if let Some(op) = self.find_mut(&operation_id) {
                    op.subscription = Subscription::None;
                    op.problem = Some(if code == "operation_not_found" {
                        Problem::NotFound
                    } else {
                        Problem::Server(message)
                    });
                    self.close_socket_if_idle();
                }
            }
            ServerFrame::Error {
                operation_id: None,
                message,
                ..
            } => self.notices.server_error = Some(message),
            ServerFrame::Ping => self
                .commands
                .push_back(Command::Send(socket, ClientFrame::Pong)),
            ServerFrame::Pong | ServerFrame::Unknown => {}
        }
    }

    fn subscribed(&mut self, id: &OperationId, epoch: Epoch, head: Seq) {
        let Some(op) = self.find_mut(id) else { return };
        if op.subscription != Subscription::Pending {
            return;
        }
        op.subscription = Subscription::Active;
        let refetched = op.epoch.is_some_and(|known| known != epoch);
        if refetched {
            op.log.clear();
            op.fetch = Fetch::Idle; // an answer for the old epoch is stale
            op.head = Seq::ZERO;
        }
        op.epoch = Some(epoch);
        op.head = op.head.max(head);
        self.start_round(id, refetched);
        self.catch_up(id);
    }

    fn live_event(
        &mut self,
        id: &OperationId,
        epoch: Option<Epoch>,
        event: crate::protocol::Event,
    ) {
        let Some(op) = self.find_mut(id) else { return };
        if op.finished || op.subscription == Subscription::None {
            return;
        }
        if let (Some(known), Some(new)) = (op.epoch, epoch)
            && known != new
        {
            // The stream was rebuilt under us: start over in the new epoch.
            op.log.clear();
            op.fetch = Fetch::Idle;
            op.head = Seq::ZERO;
            op.epoch = Some(new);
            self.start_round(id, true);
        }
        let op = self.find_mut(id).expect("found above");
        if op.epoch.is_none() {
            op.epoch = epoch;
        }
        // Only an event the log accepts may raise the trusted head: a
        // hostile seq far ahead would otherwise leave the operation asking
        // for history that does not exist.
        let seq = event.seq;
        if let Insert::Rejected(_) = op.log.insert(event) {
            self.notices.rejected_events += 1;
            return;
        }
        if let Some(seq) = seq {
            op.head = op.head.max(seq);
        }
        // Until `subscribed` arrives the live events are only buffered: the
        // catch-up that follows it fills whatever is missing.
        if op.subscription == Subscription::Active {
            if op.round.is_none() && op.log.first_gap().is_some() {
                self.start_round(id, false);
            }
            self.catch_up(id);
        }
    }

    // ----- history --------------------------------------------------------

    fn start_round(&mut self, id: &OperationId, refetched: bool) {
        if let Some(op) = self.find_mut(id) {
            let first = !op.caught_up_once;
            let round = op.round.get_or_insert(Round {
                missed: 0,
                first,
                refetched: false,
                pages: 0,
            });
            round.refetched |= refetched;
            op.recovery = Recovery::CatchingUp;
        }
    }

    /// Decides what an operation still needs after anything changed: more
    /// history, the end of its subscription, or nothing.
    fn catch_up(&mut self, id: &OperationId) {
        let Some(op) = self.find_mut(id) else { return };
        let behind = match op.log.order() {
            LogOrder::BySeq => op.log.contiguous() < op.head || op.log.first_gap().is_some(),
            // Without seqs, one full fetch per round is all there is.
            LogOrder::ByTime => op.round.is_some_and(|round| round.pages == 0),
        };
        // A terminal event we recognise, or the server's word for a
        // vocabulary we do not: either way nothing more will come.
        let over =
            op.log.is_complete() || (!behind && op.server_status.is_some_and(Status::is_terminal));
        if over {
            self.finish(id);
        } else if behind {
            self.fetch_next(id);
        } else if op.fetch == Fetch::Idle {
            self.end_round(id);
        }
    }

    fn fetch_next(&mut self, id: &OperationId) {
        let page_limit = self.options.page_limit;
        let Some(op) = self.find_mut(id) else { return };
        if op.fetch != Fetch::Idle || op.problem == Some(Problem::NotFound) || op.finished {
            return;
        }
        let (after, limit) = next_page(op, u64::from(page_limit));
        self.next_request += 1;
        let request = RequestId(self.next_request);
        let now = self.now;
        let op = self.find_mut(id).expect("found above");
        op.fetch = Fetch::InFlight(request);
        op.fetch_sent_at = now;
        op.fetch_range = (after, limit);
        self.commands.push_back(Command::FetchHistory {
            request,
            operation_id: id.clone(),
            after,
            limit,
        });
        self.commands.push_back(Command::SetTimer {
            timer: Timer::HistoryDeadline(id.clone()),
            at: Timestamp(now.0 + self.options.request_timeout_ms as i64),
        });
    }

    fn history_received(&mut self, request: RequestId, page: EventsPage) {
        let Some(op) = self
            .operations
            .iter_mut()
            .find(|op| op.fetch == Fetch::InFlight(request))
        else {
            return;
        };
        let id = op.tracked.id.clone();
        if page.operation_id != id {
            // A wrong answer is a failed request: retried with backoff,
            // visible meanwhile, never a silent stall.
            let reason = format!("the server answered for {}", page.operation_id);
            self.history_failed(request, HistoryError::Transient(reason), self.now);
            return;
        }
        op.fetch = Fetch::Idle;
        if matches!(op.problem, Some(Problem::HistoryUnavailable { .. })) {
            op.problem = None;
        }
        if op.epoch.is_some_and(|known| known != page.epoch) {
            // Fetched across a rebuild: the page's seqs are in another
            // numbering. Start over in the new epoch.
            op.log.clear();
            op.head = page.head;
            op.epoch = Some(page.epoch);
            self.start_round(&id, true);
            self.catch_up(&id);
            return;
        }
        op.epoch = Some(page.epoch);
        op.head = op.head.max(page.head);
        if op.tracked.kind.is_empty() {
            // Known by id only (a deep link): the page is how we learn more.
            op.tracked.kind = page.kind;
        }
        op.server_status = Some(page.status);
        let mut added = 0;
        for event in page.events {
            match op.log.insert(event) {
                Insert::Added => added += 1,
                Insert::Duplicate => {}
                Insert::Rejected(_) => self.notices.rejected_events += 1,
            }
        }
        if let Some(round) = op.round.as_mut() {
            round.missed += added;
            round.pages += 1;
        }

        // A page that added nothing, after which the same page would be
        // asked for again, made no progress (the history lags the head, or
        // the server answers wrongly): back off instead of asking at once.
        let stuck = added == 0
            && op.log.order() == LogOrder::BySeq
            && !op.log.is_complete()
            && (op.log.contiguous() < op.head || op.log.first_gap().is_some())
            && next_page(op, u64::from(self.options.page_limit)) == op.fetch_range;
        if !stuck {
            op.fetch_backoff.reset();
        }
        // A page read before the end (its status says running while the
        // log already holds the whole stream) is merely stale.
        let still_live = op.tracked.status.is_some_and(Status::is_terminal)
            && !page.status.is_terminal()
            && !op.log.is_complete();
        if still_live {
            // Persisted as terminal but the server says otherwise: follow it.
            op.tracked.status = Some(page.status);
            self.ensure_socket();
            self.subscribe(&id);
            self.persist();
        }
        if stuck {
            let Some(op) = self.find_mut(&id) else { return };
            let (after, _) = op.fetch_range;
            op.fetch = Fetch::InFlight(request);
            let reason = format!("the server's history has nothing after seq {after} yet");
            self.history_failed(request, HistoryError::Transient(reason), self.now);
            return;
        }
        self.catch_up(&id);
    }

    fn history_failed(&mut self, request: RequestId, error: HistoryError, now: Timestamp) {
        let Some(op) = self
            .operations
            .iter_mut()
            .find(|op| op.fetch == Fetch::InFlight(request))
        else {
            return;
        };
        match error {
            HistoryError::NotFound => {
                op.fetch = Fetch::Idle;
                op.problem = Some(Problem::NotFound);
                op.round = None;
                let id = op.tracked.id.clone();
                let subscribed = op.subscription != Subscription::None;
                op.subscription = Subscription::None;
                if subscribed {
                    self.unsubscribe(&id);
                }
                self.close_socket_if_idle();
            }
            HistoryError::Transient(_) if op.finished => {
                // Asked before the end arrived another way: nothing to retry.
                op.fetch = Fetch::Idle;
            }
            HistoryError::Transient(reason) => {
                let delay = op.fetch_backoff.next_delay_ms(&mut self.rng).max(250);
                let at = Timestamp(now.0 + delay as i64);
                op.fetch = Fetch::RetryAt(at);
                op.problem = Some(Problem::HistoryUnavailable {
                    reason,
                    retry_at: at,
                });
                let timer = Timer::HistoryRetry(op.tracked.id.clone());
                self.commands.push_back(Command::SetTimer { timer, at });
            }
        }
    }

    /// The catch-up is over: nothing is missing up to the known head.
    fn end_round(&mut self, id: &OperationId) {
        let Some(op) = self.find_mut(id) else { return };
        let Some(round) = op.round.take() else { return };
        let total = op.log.len();
        op.recovery = if round.refetched {
            Recovery::Refetched { total }
        } else if round.first || round.missed == 0 {
            Recovery::Complete { total }
        } else {
            Recovery::Replayed {
                missed: round.missed,
                total,
            }
        };
        op.caught_up_once = true;
        if !op.needs_live() && op.subscription == Subscription::None {
            op.finished = true;
        }
    }

    /// A terminal event arrived and nothing before it is missing: the view
    /// switches and the subscription ends.
    fn finish(&mut self, id: &OperationId) {
        self.end_round(id);
        let Some(op) = self.find_mut(id) else { return };
        op.finished = true;
        op.cancel_requested = false;
        // A retry scheduled before the end is moot: everything is here.
        if let Fetch::RetryAt(_) = op.fetch {
            op.fetch = Fetch::Idle;
        }
        // Neither a pending history retry nor a refused cancel matters now.
        if matches!(
            op.problem,
            Some(Problem::HistoryUnavailable { .. } | Problem::CancelFailed(_))
        ) {
            op.problem = None;
        }
        let status = effective_status(op);
        let unsubscribe = op.subscription != Subscription::None;
        op.subscription = Subscription::None;
        let changed = op.tracked.status != Some(status);
        op.tracked.status = Some(status);
        if unsubscribe {
            self.unsubscribe(id);
        }
        if changed {
            self.persist();
        }
        self.close_socket_if_idle();
    }

    fn find(&self, id: &OperationId) -> Option<&OperationState> {
        self.operations.iter().find(|op| &op.tracked.id == id)
    }

    fn find_mut(&mut self, id: &OperationId) -> Option<&mut OperationState> {
        self.operations.iter_mut().find(|op| &op.tracked.id == id)
    }
}

/// The history request an operation needs next, as `(after, limit)`.
///
/// In seq order the newest events come first, because they are what a
/// person watching sees (a timeline opens at its tail): far behind the head,
/// the newest page; with a gap, the newest page of the last gap, so a
/// history loads backwards from the tail one page at a time. A gap from a
/// lost push is smaller than a page, so it is fetched exactly. Without seqs
/// there is nothing to page by: the whole history, once per round.
fn next_page(op: &OperationState, page: u64) -> (Seq, u32) {
    let contiguous = op.log.contiguous();
    if op.log.order() == LogOrder::ByTime {
        return (contiguous, page as u32);
    }
    match op.log.last_gap() {
        Some((start, end)) => {
            let after = end.0.saturating_sub(page).max(start.0 - 1);
            (Seq(after), (end.0 - after) as u32)
        }
        None if op.head.0 > contiguous.0 + page => (Seq(op.head.0 - page), page as u32),
        None => (contiguous, page as u32),
    }
}

/// The status to show: a terminal event's, else the server's or the
/// remembered terminal one, else what the events imply.
fn effective_status(op: &OperationState) -> Status {
    if let Some(status) = op.log.terminal_status() {
        return status;
    }
    let remembered = op.server_status.or(op.tracked.status);
    match remembered {
        Some(status) if status.is_terminal() => status,
        _ if op.log.is_empty() && op.head == Seq::ZERO => Status::NotStarted,
        _ => Status::Running,
    }
}

fn view(op: &OperationState) -> OperationView<'_> {
    let status = effective_status(op);
    OperationView {
        tracked: &op.tracked,
        log: &op.log,
        status,
        progress: op.log.progress(),
        recovery: op.recovery.with_total(op.log.len()),
        problem: op.problem.as_ref(),
        epoch: op.epoch,
        head: op.head,
        finished: op.finished,
        cancel_requested: op.cancel_requested,
    }
}

#[cfg(test)]
mod tests {
    //! Regression tests for bugs the simulation found; the scenarios in
    //! `core/tests/` cover the rules themselves.

    use super::*;
    use crate::test_events::event;

    const T0: i64 = 1_000_000;

    fn drain(session: &mut Session) -> Vec<Command> {
        std::iter::from_fn(|| session.poll_command()).collect()
    }

    fn run(session: &mut Session, input: Input, at: i64) -> Vec<Command> {
        session.handle(input, Timestamp(at));
        drain(session)
    }

    fn frame(socket: SocketId, frame: ServerFrame) -> Input {
        Input::FrameReceived(socket, frame.to_json())
    }

    fn push(socket: SocketId, id: &OperationId, seq: u64, kind: &str) -> Input {
        frame(
            socket,
            ServerFrame::Event {
                operation_id: id.clone(),
                epoch: Some(Epoch(1)),
                event: event(seq, kind),
            },
        )
    }

    /// A fresh session that has just been told to track `id`.
    fn tracking(id: &OperationId) -> Session {
        let mut session = Session::new(SessionOptions::default(), 1);
        run(
            &mut session,
            Input::Track {
                operation: TrackedOperation::by_id(id.clone()),
                epoch: None,
            },
            T0,
        );
        session
    }

    /// A session following `id` on socket 1, subscribed at `head`.
    fn live(id: &OperationId, head: u64) -> (Session, SocketId) {
        let mut session = tracking(id);
        let socket = SocketId(1);
        run(&mut session, Input::SocketOpened(socket), T0);
        let subscribed = ServerFrame::Subscribed {
            operation_id: id.clone(),
            epoch: Epoch(1),
            head: Seq(head),
        };
        run(&mut session, frame(socket, subscribed), T0);
        (session, socket)
    }

    #[test]
    fn events_pushed_after_the_catch_up_count_in_its_total() {
        let id = OperationId::from("a");
        let (mut session, socket) = live(&id, 0);
        let recovery = |session: &Session| session.operation(&id).unwrap().recovery;
        assert_eq!(recovery(&session), Recovery::Complete { total: 0 });
        for seq in 1..=3 {
            let at = T0 + seq as i64;
            run(&mut session, push(socket, &id, seq, "ProgressUpdated"), at);
        }
        // Not "all 0 events" next to three shown.
        assert_eq!(recovery(&session), Recovery::Complete { total: 3 });
    }

    #[test]
    fn a_failed_cancel_of_an_unknown_operation_keeps_it_not_found() {
        let id = OperationId::from("nope");
        let mut session = Session::new(SessionOptions::default(), 1);
        let track = Input::Track {
            operation: TrackedOperation::by_id(id.clone()),
            epoch: None,
        };
        run(&mut session, track, T0);
        run(&mut session, Input::SocketOpened(SocketId(1)), T0);
        // The cancel goes out before the server's answer comes back.
        assert_eq!(
            run(&mut session, Input::Cancel(id.clone()), T0),
            [Command::Cancel(id.clone())]
        );
        let not_found = ServerFrame::Error {
            operation_id: Some(id.clone()),
            code: "operation_not_found".into(),
            message: "No such operation.".into(),
        };
        let commands = run(&mut session, frame(SocketId(1), not_found), T0 + 5);
        assert_eq!(commands, [Command::CloseSocket(SocketId(1))]);
        let failed = Input::CancelFailed {
            operation_id: id.clone(),
            message: "operation_not_found".into(),
        };
        run(&mut session, failed, T0 + 10);
        assert_eq!(
            session.operation(&id).unwrap().problem,
            Some(&Problem::NotFound)
        );
        assert_eq!(session.connection(), ConnectionState::Idle);
        // Nothing to cancel any more, and nothing reopens the socket.
        assert_eq!(run(&mut session, Input::Cancel(id.clone()), T0 + 20), []);
        assert_eq!(run(&mut session, Input::Online, T0 + 30), []);
    }

    #[test]
    fn forget_then_track_again_on_the_same_socket_keeps_following() {
        let id = OperationId::from("op");
        let (mut session, socket) = live(&id, 0);
        // Another operation keeps the socket open.
        let other = Input::Track {
            operation: TrackedOperation::by_id(OperationId::from("other")),
            epoch: None,
        };
        run(&mut session, other, T0);
        run(&mut session, Input::Forget(id.clone()), T0 + 10);
        // The server had ended the subscription by itself (the reference
        // server does after a terminal push) before it read the unsubscribe.
        let unsubscribed = ServerFrame::Unsubscribed {
            operation_id: id.clone(),
        };
        run(&mut session, frame(socket, unsubscribed.clone()), T0 + 15);
        let track = Input::Track {
            operation: TrackedOperation::by_id(id.clone()),
            epoch: None,
        };
        let commands = run(&mut session, track, T0 + 20);
        assert!(commands.contains(&Command::Send(
            socket,
            ClientFrame::Subscribe {
                operation_id: id.clone(),
                after: Seq(0),
            }
        )));
        // Then it answers the unsubscribe, then the new subscribe.
        run(&mut session, frame(socket, unsubscribed), T0 + 30);
        let subscribed = ServerFrame::Subscribed {
            operation_id: id.clone(),
            epoch: Epoch(1),
            head: Seq(1),
        };
        let commands = run(&mut session, frame(socket, subscribed), T0 + 40);
        assert!(
            commands
                .iter()
                .any(|c| matches!(c, Command::FetchHistory { after: Seq(0), .. })),
            "catches up after the new subscription: {commands:?}"
        );
        run(
            &mut session,
            push(socket, &id, 2, "ProgressUpdated"),
            T0 + 50,
        );
        let view = session.operation(&id).unwrap();
        assert_eq!(view.log.len(), 1, "live events are taken, not dropped");
        assert_eq!(view.recovery, Recovery::CatchingUp);
    }

    #[test]
    fn a_request_failing_after_the_operation_finished_is_not_retried() {
        let id = OperationId::from("op");
        let (mut session, socket) = live(&id, 1);
        // The catch-up request (1) is in flight when the end arrives live.
        run(
            &mut session,
            push(socket, &id, 1, "ProcessingStarted"),
            T0 + 10,
        );
        run(
            &mut session,
            push(socket, &id, 2, "PaymentSucceeded"),
            T0 + 20,
        );
        assert!(session.operation(&id).unwrap().finished);
        let failed = Input::HistoryFailed {
            request: RequestId(1),
            error: HistoryError::Transient("502".into()),
        };
        assert_eq!(run(&mut session, failed, T0 + 30), []);
        assert_eq!(session.operation(&id).unwrap().problem, None);
    }

    #[test]
    fn a_stale_page_arriving_after_the_end_does_not_flip_the_remembered_status() {
        let id = OperationId::from("op");
        let (mut session, socket) = live(&id, 1);
        run(
            &mut session,
            push(socket, &id, 1, "ProcessingStarted"),
            T0 + 10,
        );
        let end = run(
            &mut session,
            push(socket, &id, 2, "PaymentSucceeded"),
            T0 + 20,
        );
        assert!(end.iter().any(|c| matches!(c, Command::Persist(_))));
        // The catch-up page was read when the operation was still running.
        let page = EventsPage {
            operation_id: id.clone(),
            kind: "payment".into(),
            epoch: Epoch(1),
            head: Seq(1),
            status: Status::Running,
            events: vec![event(1, "ProcessingStarted")],
            has_more: false,
        };
        let received = Input::HistoryReceived {
            request: RequestId(1),
            page,
        };
        assert_eq!(run(&mut session, received, T0 + 30), []);
        let view = session.operation(&id).unwrap();
        assert_eq!(view.tracked.status, Some(Status::Succeeded));
        assert_eq!(view.status, Status::Succeeded);
    }

    #[test]
    fn a_watchdog_timer_firing_exactly_on_time_declares_the_silent_socket_dead() {
        let id = OperationId::from("op");
        let (mut session, socket) = live(&id, 0);
        let limit = 2 * SessionOptions::default().server_ping_interval_ms as i64;
        // A timer may fire exactly at its instant. Re-arming the watchdog
        // for that same instant would spin forever.
        let commands = run(&mut session, Input::TimerFired(Timer::Watchdog), T0 + limit);
        assert_eq!(commands[0], Command::CloseSocket(socket));
        assert!(matches!(
            commands[1],
            Command::SetTimer {
                timer: Timer::Reconnect,
                ..
            }
        ));
    }

    #[test]
    fn an_answer_to_the_old_subscription_is_not_taken_for_the_new_ones() {
        let id = OperationId::from("op");
        let mut session = Session::new(SessionOptions::default(), 1);
        for name in ["other", "op"] {
            let track = Input::Track {
                operation: TrackedOperation::by_id(OperationId::from(name)),
                epoch: None,
            };
            run(&mut session, track, T0);
        }
        let socket = SocketId(1);
        run(&mut session, Input::SocketOpened(socket), T0);
        // Forgotten and tracked again before the first subscribe's answer.
        let forget = run(&mut session, Input::Forget(id.clone()), T0 + 10);
        let unsubscribe = ClientFrame::Unsubscribe {
            operation_id: id.clone(),
        };
        assert_eq!(
            forget,
            [
                Command::Send(socket, unsubscribe),
                Command::Persist(session.tracked())
            ]
        );
        let track = Input::Track {
            operation: TrackedOperation::by_id(id.clone()),
            epoch: None,
        };
        let commands = run(&mut session, track, T0 + 20);
        assert!(
            !commands
                .iter()
                .any(|c| matches!(c, Command::Send(_, ClientFrame::Subscribe { .. }))),
            "the new subscribe waits for the old one's end: {commands:?}"
        );
        // The server answers in order: subscribed (old), pushes, unsubscribed.
        let old_answer = ServerFrame::Subscribed {
            operation_id: id.clone(),
            epoch: Epoch(1),
            head: Seq(3),
        };
        assert_eq!(run(&mut session, frame(socket, old_answer), T0 + 30), []);
        run(
            &mut session,
            push(socket, &id, 4, "ProgressUpdated"),
            T0 + 31,
        );
        let ended = ServerFrame::Unsubscribed {
            operation_id: id.clone(),
        };
        let commands = run(&mut session, frame(socket, ended), T0 + 40);
        assert_eq!(
            commands,
            [Command::Send(
                socket,
                ClientFrame::Subscribe {
                    operation_id: id.clone(),
                    after: Seq(0),
                }
            )]
        );
        // The new answer starts the catch-up; later pushes are taken.
        let answer = ServerFrame::Subscribed {
            operation_id: id.clone(),
            epoch: Epoch(1),
            head: Seq(4),
        };
        let commands = run(&mut session, frame(socket, answer), T0 + 50);
        assert!(commands.iter().any(|c| matches!(
            c,
            Command::FetchHistory {
                after: Seq(0),
                limit: 500,
                ..
            }
        )));
        run(
            &mut session,
            push(socket, &id, 5, "ProgressUpdated"),
            T0 + 60,
        );
        assert_eq!(session.operation(&id).unwrap().log.len(), 1);
    }

    #[test]
    fn a_healthy_connection_declared_dead_by_the_watchdog_resets_the_backoff() {
        let id = OperationId::from("op");
        let mut session = Session::new(SessionOptions::default(), 1);
        let track = Input::Track {
            operation: TrackedOperation::by_id(id),
            epoch: None,
        };
        run(&mut session, track, T0);
        // Ten failed attempts: the ceiling is at the 20 s cap.
        let mut now = T0;
        for attempt in 1..=10 {
            run(&mut session, Input::SocketClosed(SocketId(attempt)), now);
            now += 20_000;
            run(&mut session, Input::TimerFired(Timer::Reconnect), now);
        }
        let socket = SocketId(11);
        run(&mut session, Input::SocketOpened(socket), now);
        // An hour of life with pings, then silence.
        let opened = now;
        while now < opened + 3_600_000 {
            now += 15_000;
            run(&mut session, frame(socket, ServerFrame::Ping), now);
        }
        now += 30_000;
        let commands = run(&mut session, Input::TimerFired(Timer::Watchdog), now);
        let Some(Command::SetTimer { at, .. }) = commands.get(1) else {
            panic!("a reconnect is scheduled: {commands:?}");
        };
        assert!(at.0 - now <= 500, "waited {} ms", at.0 - now);
    }

    #[test]
    fn a_retry_pending_when_the_operation_finishes_fetches_nothing() {
        let id = OperationId::from("op");
        let (mut session, socket) = live(&id, 2);
        // The catch-up request fails and is scheduled for a retry...
        session.handle(
            Input::HistoryFailed {
                request: RequestId(1),
                error: HistoryError::Transient("502".into()),
            },
            Timestamp(T0),
        );
        drain(&mut session);
        // ...but the whole stream arrives live in the meantime.
        run(
            &mut session,
            push(socket, &id, 1, "ProcessingStarted"),
            T0 + 10,
        );
        run(
            &mut session,
            push(socket, &id, 2, "PaymentSucceeded"),
            T0 + 20,
        );
        let view = session.operation(&id).unwrap();
        assert!(view.finished);
        assert_eq!(view.problem, None, "no stale 'history unavailable'");
        let retry = Input::TimerFired(Timer::HistoryRetry(id.clone()));
        let commands = run(&mut session, retry, T0 + 60_000);
        assert!(
            !commands
                .iter()
                .any(|c| matches!(c, Command::FetchHistory { .. })),
            "a finished operation asks for nothing: {commands:?}"
        );
    }
    #[test]
    fn a_refused_cancel_is_forgotten_once_the_operation_ends() {
        let id = OperationId::from("op");
        let mut session = tracking(&id);
        run(&mut session, Input::Cancel(id.clone()), T0 + 1);
        let refused = Input::CancelFailed {
            operation_id: id.clone(),
            message: "the server could not be reached".into(),
        };
        run(&mut session, refused.clone(), T0 + 2);
        assert!(matches!(
            session.operation(&id).unwrap().problem,
            Some(Problem::CancelFailed(_))
        ));
        session.finish(&id);
        assert_eq!(session.operation(&id).unwrap().problem, None);
        // A refusal that arrives after the end is not shown either.
        run(&mut session, refused, T0 + 3);
        assert_eq!(session.operation(&id).unwrap().problem, None);
    }
}
