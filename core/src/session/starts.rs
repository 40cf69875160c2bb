//! Starting operations: the one user action that talks to the server
//! before anything is tracked. A start has a deadline like every request,
//! and ends exactly once for whoever asked.

use super::Session;
use super::api::{Command, StartId, TrackedOperation};
use crate::protocol::{ApiError, Operation, OperationId, StartRequest};
use crate::timestamp::Timestamp;

/// A start whose answer has not come back, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PendingStart {
    start: StartId,
    sent_at: Timestamp,
}

impl Session {
    pub(super) fn start(&mut self, start: StartId, request: StartRequest) {
        self.starts.push(PendingStart {
            start,
            sent_at: self.now,
        });
        self.commands
            .push_back(Command::StartOperation { start, request });
    }

    pub(super) fn started(&mut self, start: StartId, operation: Operation) {
        let id = operation.id.clone();
        let epoch = operation.epoch;
        // Followed even when the answer came after the deadline: the
        // operation exists, and losing it would be worse than a late row.
        self.track(
            TrackedOperation {
                id: operation.id,
                kind: operation.kind,
                params: operation.params,
                created_at: Some(operation.created_at),
                status: None,
            },
            Some(epoch),
            true,
        );
        self.finish_start(start, Ok(id));
    }

    pub(super) fn finish_start(&mut self, start: StartId, outcome: Result<OperationId, ApiError>) {
        let Some(index) = self.starts.iter().position(|p| p.start == start) else {
            return;
        };
        self.starts.remove(index);
        self.commands
            .push_back(Command::StartFinished { start, outcome });
    }

    /// The earliest deadline of the starts in flight.
    pub(super) fn starts_deadline(&self) -> Option<Timestamp> {
        let timeout = self.options.request_timeout_ms as i64;
        self.starts
            .iter()
            .map(|p| Timestamp(p.sent_at.0 + timeout))
            .min()
    }

    /// Starts unanswered past their deadline end as failed; the person can
    /// try again, and a late `202` still shows the operation.
    pub(super) fn starts_due(&mut self) {
        let timeout = self.options.request_timeout_ms as i64;
        let now = self.now;
        let due: Vec<StartId> = self
            .starts
            .iter()
            .filter(|p| now.0 - p.sent_at.0 >= timeout)
            .map(|p| p.start)
            .collect();
        for start in due {
            let error = ApiError {
                code: "timeout".into(),
                message: format!(
                    "The server did not answer within {} s. If it started the operation anyway, it appears here when the answer comes.",
                    timeout / 1000
                ),
            };
            self.finish_start(start, Err(error));
        }
    }
}
