//! What goes into and comes out of a [`Session`](super::Session): its
//! options, inputs, commands, and the words the UI shows.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backoff::BackoffOptions;
use crate::interpretation::Interpretation;
use crate::log::LogOrder;
use crate::protocol::{
    ApiError, ClientFrame, Epoch, EventsPage, Operation, OperationId, Seq, ServerFrame,
    StartRequest, Status,
};
use crate::timestamp::Timestamp;

/// Tuning for a [`Session`](super::Session); `Default` fits the reference server.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// `BySeq` for optrail backends, `ByTime` for seed-format backends.
    pub order: LogOrder,
    /// What event types mean (terminal, progress) for this backend.
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
    /// A request unanswered this long has failed, and is retried like any
    /// other failure: a request that never answers cannot leave an
    /// operation "catching up" forever.
    pub request_timeout_ms: u64,
    /// A socket not open this long after it was asked for is given up and
    /// reconnected like a lost one.
    pub connect_timeout_ms: u64,
    /// Subscriptions the server allows on one socket (the reference
    /// server's default). Never exceeded: operations beyond it wait for a
    /// free slot and meanwhile read their history every
    /// [`Self::poll_interval_ms`]. A lower limit learned from a
    /// `too_many_subscriptions` refusal replaces it.
    pub max_subscriptions: usize,
    /// How often an operation without a live subscription (waiting for a
    /// slot, or on a backend whose sockets cannot be trusted to report
    /// their own death: see [`Self::poll_always`]) reads its history.
    pub poll_interval_ms: u64,
    /// Read the history of every followed operation every
    /// `poll_interval_ms`, subscribed or not: for seed-format backends,
    /// whose sockets never ping, so a silently dead one is noticed.
    pub poll_always: bool,
    /// The tracked set is kept to this many operations: beyond it, the
    /// oldest finished ones are forgotten (running ones never are).
    pub max_tracked: usize,
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
            max_subscriptions: 64,
            poll_interval_ms: 5_000,
            poll_always: false,
            max_tracked: 200,
        }
    }
}

/// What the client remembers about an operation across reloads: the
/// persisted form, stored by the adapter (localStorage) on [`Command::Persist`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackedOperation {
    /// The server's id of the operation.
    pub id: OperationId,
    /// What kind of operation it is (`payment`, …); empty while only the
    /// id is known.
    #[serde(default)]
    pub kind: String,
    /// What it was started with, so "Retry" can start it again.
    #[serde(default)]
    pub params: Value,
    /// When the server created it, once known.
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

/// Identifies one start, chosen by the adapter, so that it can hand the
/// outcome to whoever asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StartId(pub u64);

/// Why a history request failed, as far as the session cares.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HistoryError {
    /// The server does not know the operation (404): retrying will not help.
    NotFound,
    /// Anything else (network, 5xx, malformed body): retried with backoff.
    Transient(String),
}

/// Everything that can happen to a session. Adapters only build inputs,
/// so new kinds may be added without breaking them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Input {
    /// The person asked to start an operation.
    Start {
        /// Echoed in [`Command::StartOperation`] and [`Command::StartFinished`].
        start: StartId,
        /// What to start.
        request: StartRequest,
    },
    /// The server accepted a start (`202`): the operation is followed from
    /// here, even if the session had given up waiting for the answer.
    Started {
        /// The start it answers.
        start: StartId,
        /// The operation as the server created it.
        operation: Operation,
    },
    /// A start failed: the server refused it, or could not be reached.
    StartFailed {
        /// The start that failed.
        start: StartId,
        /// The server's `code` and a sentence for the person.
        error: ApiError,
    },
    /// Follow an operation; `epoch` when the start response gave it.
    Track {
        /// The operation and what is known of it.
        operation: TrackedOperation,
        /// Its epoch, when the start response gave it.
        epoch: Option<Epoch>,
    },
    /// Replace the tracked set with one read from storage (page load, or
    /// another tab changed it). Does not write it back.
    Restore(Vec<TrackedOperation>),
    /// Stop following an operation and drop it from the tracked set.
    Forget(OperationId),
    /// The person asked to cancel an operation.
    Cancel(OperationId),
    /// The server accepted the cancel request ([`Command::Cancel`]): the
    /// operation's end will come as an event.
    CancelAccepted(OperationId),
    /// The cancel request ([`Command::Cancel`]) failed.
    CancelFailed {
        /// The operation whose cancel failed.
        operation_id: OperationId,
        /// Why, in words the person can read.
        message: String,
    },
    /// The socket of [`Command::OpenSocket`] is open.
    SocketOpened(SocketId),
    /// A socket closed or failed to open.
    SocketClosed(SocketId),
    /// A text frame arrived on a socket.
    FrameReceived(SocketId, String),
    /// A frame already read by a translator ([`crate::compat`]).
    Frame(SocketId, ServerFrame),
    /// A frame arrived that could not be read (binary, or not what the
    /// backend's format promises): counted, and proof that the socket lives.
    Unreadable(SocketId),
    /// An event of this operation arrived that could not be read (a seed
    /// backend's push, [`crate::compat`]): shown as not read, and the
    /// history is read again to learn how many are.
    UnreadableEvent(OperationId),
    /// The answer to [`Command::FetchHistory`].
    HistoryReceived {
        /// The request it answers.
        request: RequestId,
        /// The page of history.
        page: EventsPage,
    },
    /// [`Command::FetchHistory`] failed.
    HistoryFailed {
        /// The request that failed.
        request: RequestId,
        /// Why.
        error: HistoryError,
    },
    /// Nothing happened but time passed: the adapter feeds this at (or
    /// after) [`Session::poll_timeout`](super::Session::poll_timeout).
    /// Any other input does the same work, so an early or extra tick is
    /// harmless.
    Tick,
    /// The browser is online again.
    Online,
    /// The browser is offline.
    Offline,
    /// The page became visible: overdue work happens now.
    Visible,
    /// The page was hidden.
    Hidden,
}

/// What the adapter must do. Not `non_exhaustive`: an adapter that does not
/// carry out a new command must fail to compile, not ignore it.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Open the WebSocket; report back with this id.
    OpenSocket(SocketId),
    /// Close this socket; no news about it is expected any more.
    CloseSocket(SocketId),
    /// Send a frame on this socket.
    Send(SocketId, ClientFrame),
    /// `GET /operations/{id}/events?after=…&limit=…`; answer with
    /// [`Input::HistoryReceived`] or [`Input::HistoryFailed`].
    FetchHistory {
        /// Echo it in the answer.
        request: RequestId,
        /// The operation whose events to read.
        operation_id: OperationId,
        /// Events with a seq above this.
        after: Seq,
        /// At most this many.
        limit: u32,
    },
    /// `DELETE /operations/{id}`; answer with [`Input::CancelAccepted`] or
    /// [`Input::CancelFailed`].
    Cancel(OperationId),
    /// `POST /operations`; answer with [`Input::Started`] or
    /// [`Input::StartFailed`].
    StartOperation {
        /// Echo it in the answer.
        start: StartId,
        /// The body to post.
        request: StartRequest,
    },
    /// Tell whoever asked for this start how it ended: the operation's id
    /// (already tracked), or why not. Exactly once per [`Input::Start`].
    StartFinished {
        /// The start that ended.
        start: StartId,
        /// Its outcome.
        outcome: Result<OperationId, ApiError>,
    },
    /// Store this tracked set (newest first).
    Persist(Vec<TrackedOperation>),
}

/// The live channel as a person would describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Nothing needs a live channel.
    Idle,
    /// The socket is being opened.
    Connecting,
    /// The socket is open.
    Live,
    /// Waiting to reconnect at `at`.
    Reconnecting {
        /// When the next attempt starts.
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
    Complete {
        /// Events here.
        total: usize,
    },
    /// After a disconnect or a gap, `missed` events were fetched again.
    Replayed {
        /// Events fetched that had been missed.
        missed: u64,
        /// Events here.
        total: usize,
    },
    /// The server rebuilt the stream (new epoch): everything was fetched anew.
    Refetched {
        /// Events here.
        total: usize,
    },
}

impl Recovery {
    /// The same finding with `total` events here now. Events pushed after a
    /// catch-up arrive in order (a gap starts a new catch-up), so they count
    /// as "here, none missed" too: `total` is always what the log holds,
    /// never the size it had when the catch-up ended.
    pub(super) fn with_total(self, total: usize) -> Self {
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
    /// The server refused something (its message); retrying at `retry_at`.
    Server {
        /// The server's words.
        message: String,
        /// When the subscription is asked for again.
        retry_at: Timestamp,
    },
    /// History could not be loaded; retrying at `retry_at`.
    HistoryUnavailable {
        /// Why, in words the person can read.
        reason: String,
        /// When the next attempt goes out.
        retry_at: Timestamp,
    },
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
