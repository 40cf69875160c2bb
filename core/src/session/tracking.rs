//! The tracked set: following, restoring, forgetting and cancelling
//! operations, and persisting the set.

use super::Session;
use super::api::{Command, Problem, TrackedOperation};
use super::operation::{OperationState, Subscription};
use crate::protocol::{Epoch, OperationId};

impl Session {
    pub(super) fn track(&mut self, tracked: TrackedOperation, epoch: Option<Epoch>, persist: bool) {
        if self.find(&tracked.id).is_some() {
            return;
        }
        let mut op =
            OperationState::new(tracked, epoch, &self.options, self.interpretation.clone());
        let id = op.id().clone();
        let live = op.needs_live();
        if !live {
            // Terminal when last seen: load it once, never subscribe.
            op.start_round(false);
        }
        self.operations.insert(0, op);
        if live {
            self.ensure_socket();
            self.subscribe(&id);
        } else {
            self.fetch_next(&id);
        }
        self.trim();
        if persist {
            self.persist();
        }
    }

    /// Keeps the tracked set bounded: beyond `max_tracked`, the oldest
    /// operations that are over (finished, remembered as ended, or unknown
    /// to the server) are forgotten. Running ones never are.
    fn trim(&mut self) {
        while self.operations.len() > self.options.max_tracked {
            let oldest_over = self.operations.iter().rposition(|op| !op.needs_live());
            let Some(index) = oldest_over else { break };
            let id = self.operations[index].id().clone();
            self.remove(&id);
        }
    }

    pub(super) fn restore(&mut self, set: Vec<TrackedOperation>) {
        let gone: Vec<OperationId> = self
            .operations
            .iter()
            .filter(|op| !set.iter().any(|t| &t.id == op.id()))
            .map(|op| op.id().clone())
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

    pub(super) fn forget(&mut self, id: &OperationId) {
        if self.remove(id) {
            self.persist();
            self.close_socket_if_idle();
        }
    }

    fn remove(&mut self, id: &OperationId) -> bool {
        let Some(index) = self.operations.iter().position(|op| op.id() == id) else {
            return false;
        };
        let op = self.operations.remove(index);
        if op.subscription != Subscription::None {
            self.unsubscribe(op.id());
        }
        true
    }

    pub(super) fn cancel(&mut self, id: &OperationId) {
        let now = self.now;
        if let Some(op) = self.find_mut(id)
            && !op.finished
            && !op.cancel_requested
            && op.problem != Some(Problem::NotFound)
        {
            op.cancel_requested = true;
            op.cancel_sent_at = Some(now);
            if matches!(op.problem, Some(Problem::CancelFailed(_))) {
                op.problem = None;
            }
            self.commands.push_back(Command::Cancel(id.clone()));
        }
    }

    pub(super) fn cancel_accepted(&mut self, id: &OperationId) {
        if let Some(op) = self.find_mut(id) {
            op.cancel_sent_at = None;
        }
    }

    pub(super) fn cancel_failed(&mut self, id: &OperationId, message: String) {
        if let Some(op) = self.find_mut(id) {
            if !op.cancel_requested {
                // Already answered (or given up on at its deadline).
                return;
            }
            op.cancel_requested = false;
            op.cancel_sent_at = None;
            // "Not found" is what keeps the session from following the
            // operation; a failed cancel must not paper over it. Once it
            // has ended anyway, the refusal is moot.
            if op.problem != Some(Problem::NotFound) && !op.finished {
                op.problem = Some(Problem::CancelFailed(message));
            }
        }
    }

    pub(super) fn persist(&mut self) {
        self.commands.push_back(Command::Persist(self.tracked()));
    }
}
