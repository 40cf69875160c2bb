//! # optrail-core
//!
//! Everything that decides what a person watching a long-running operation
//! sees, free of I/O so that every race is testable natively.
//!
//! ## The protocol in twenty lines
//! 1. `POST /operations {kind, params}` → `202 Accepted`, `Location`, and the
//!    [`Operation`] with its `epoch` and `head` (the highest committed seq).
//! 2. Every event of an operation has a `seq`: 1, 2, 3, … with no gaps,
//!    assigned in the transaction that stores it, and published only after
//!    that commit, in seq order.
//! 3. The client opens `GET /ws` and sends `subscribe {operationId, after}`
//!    **before** it reads any history. The server registers the subscriber,
//!    then reads the head and answers `subscribed {epoch, head}`; every event
//!    committed after that is pushed as `event {operationId, epoch, event}`.
//! 4. On `subscribed`, the client fetches `GET /operations/{id}/events?after=k`
//!    where `k` is its contiguous prefix, page by page up to `head`, while
//!    buffering pushes. Both go into one [`EventLog`]: ordered by seq, each
//!    seq once. Registering before reading the head is what makes
//!    history ∪ pushes cover everything.
//! 5. A pushed seq beyond `k + 1` is a gap: fetch exactly the gap.
//! 6. A different `epoch` means the stream was rebuilt: discard and refetch.
//! 7. A terminal event (succeeded / failed / canceled) with nothing missing
//!    before it ends the subscription.
//! 8. The socket reconnects with jittered exponential backoff; a watchdog
//!    declares it dead after two missed server pings; each re-subscribe is
//!    step 3 again, so a disconnect loses nothing.
//! 9. Tracked ids are persisted ([`Command::Persist`]); a reload restores
//!    them and resumes at step 3.
//!
//! PROTOCOL.md at the repository root is the full contract.
//!
//! ## Shape
//! [`Session`] is a sans-IO state machine: [`Session::handle`] takes an
//! [`Input`] and the current time, [`Session::poll_command`] yields
//! [`Command`]s for the adapter to carry out, and [`Session::poll_timeout`]
//! says when to wake it. Time and randomness are inputs, so the same
//! inputs always give the same commands.
//!
//! [`Following`] is the server's half of step 3 for one connection, pure as
//! well, so that the reference server and the simulation run the same rule.

#![warn(missing_docs)]

pub mod backoff;
pub mod compat;
pub mod follow;
mod id_set;
pub mod interpretation;
pub mod log;
pub mod protocol;
pub mod rng;
pub mod session;
pub mod shared_set;
pub mod timestamp;

#[cfg(test)]
mod test_events;

pub use backoff::{Backoff, BackoffOptions};
pub use follow::Following;
pub use interpretation::Interpretation;
pub use log::{EventLog, Insert, LogOrder, Rejection};
pub use protocol::UnknownStatus;
pub use protocol::{
    ApiError, ClientFrame, Epoch, Event, EventId, EventType, EventsPage, FrameError, Operation,
    OperationId, OperationList, Seq, ServerFrame, StartRequest, Status,
};
pub use rng::Rng;
pub use session::{
    Command, ConnectionState, HistoryError, Input, Notices, OperationView, Problem, Recovery,
    RequestId, Session, SessionOptions, SocketId, StartId, TrackedOperation,
};
pub use timestamp::{Timestamp, TimestampError};
