//! The read-only face of one tracked operation, for rendering.

use super::api::{Problem, Recovery, TrackedOperation};
use super::operation::OperationState;
use crate::log::EventLog;
use crate::protocol::{Epoch, Seq, Status};

/// A read-only view of one tracked operation, for rendering.
#[derive(Debug, Clone, Copy)]
pub struct OperationView<'a> {
    /// What is remembered of it across reloads.
    pub tracked: &'a TrackedOperation,
    /// Its events, ordered and deduped.
    pub log: &'a EventLog,
    /// The status to show.
    pub status: Status,
    /// The latest progress, 0.0–1.0, when its events report one.
    pub progress: Option<f64>,
    /// What its last catch-up found.
    pub recovery: Recovery,
    /// What is wrong with it, if anything.
    pub problem: Option<&'a Problem>,
    /// The stream's epoch as last known.
    pub epoch: Option<Epoch>,
    /// The server's head as last known.
    pub head: Seq,
    /// Terminal and complete: the subscription is over.
    pub finished: bool,
    /// A cancel was asked for and not (yet) refused.
    pub cancel_requested: bool,
    /// Events the backend has that could not be read.
    pub unreadable: u32,
    /// Followed by reading its history now and then, because the socket
    /// has no free subscription slot.
    pub waiting_for_slot: bool,
}

impl<'a> OperationView<'a> {
    pub(super) fn of(op: &'a OperationState) -> Self {
        Self {
            tracked: &op.tracked,
            log: &op.log,
            status: op.effective_status(),
            progress: op.log.progress(),
            recovery: op.recovery(),
            problem: op.problem.as_ref(),
            epoch: op.epoch,
            head: op.head,
            finished: op.finished,
            cancel_requested: op.cancel_requested,
            unreadable: op.unreadable,
            waiting_for_slot: op.waiting_for_slot,
        }
    }
}
