//! Catching up from history: which page to ask for, what an answer or a
//! failure means, retries with backoff, request deadlines, and the end of
//! an operation.

use super::Session;
use super::api::{Command, HistoryError, Problem, RequestId};
use super::operation::{Fetch, Subscription};
use crate::log::{Insert, LogOrder};
use crate::protocol::{EventsPage, OperationId, Status};
use crate::timestamp::Timestamp;

impl Session {
    /// Decides what an operation still needs after anything changed: more
    /// history, the end of its subscription, or nothing.
    pub(super) fn catch_up(&mut self, id: &OperationId) {
        let Some(op) = self.find_mut(id) else { return };
        if op.over() {
            self.finish(id);
        } else if op.behind() {
            self.fetch_next(id);
        } else if op.fetch == Fetch::Idle {
            op.end_round();
        }
    }

    pub(super) fn fetch_next(&mut self, id: &OperationId) {
        let now = self.now;
        let page_limit = self.options.page_limit;
        let request = RequestId(self.next_request + 1);
        let Some(op) = self.find_mut(id) else { return };
        if op.fetch != Fetch::Idle || op.problem == Some(Problem::NotFound) || op.finished {
            return;
        }
        let (after, limit) = op.next_page(page_limit);
        op.fetch = Fetch::InFlight {
            request,
            sent_at: now,
            after,
            limit,
            generation: op.read_generation(),
        };
        self.next_request = request.0;
        self.commands.push_back(Command::FetchHistory {
            request,
            operation_id: id.clone(),
            after,
            limit,
        });
    }

    /// The operation whose request in flight is `request`.
    fn requested(&self, request: RequestId) -> Option<usize> {
        self.operations
            .iter()
            .position(|op| matches!(op.fetch, Fetch::InFlight { request: r, .. } if r == request))
    }

    pub(super) fn history_received(&mut self, request: RequestId, page: EventsPage) {
        let Some(index) = self.requested(request) else {
            return;
        };
        let op = &mut self.operations[index];
        let id = op.id().clone();
        if page.operation_id != id {
            // A wrong answer is a failed request: retried with backoff,
            // visible meanwhile, never a silent stall.
            let reason = format!("the server answered for {}", page.operation_id);
            self.history_failed(request, HistoryError::Transient(reason));
            return;
        }
        let Fetch::InFlight {
            after,
            limit,
            generation,
            ..
        } = op.fetch
        else {
            unreachable!("requested() found it in flight")
        };
        op.fetch = Fetch::Idle;
        op.clear_history_problem();
        if op.epoch.is_some_and(|known| known != page.epoch) {
            // Fetched across a rebuild: the page's seqs are in another
            // numbering. Start over in the new epoch.
            op.restart_epoch(page.epoch, page.head);
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
        let unreadable = page.unreadable;
        if op.log.order() == LogOrder::ByTime {
            // A whole history: its count is the truth from now on.
            op.unreadable = page.unreadable;
        }
        let mut added = 0;
        for event in page.events {
            match op.log.insert(event) {
                Insert::Added => added += 1,
                Insert::Duplicate => {}
                Insert::Rejected(_) => self.notices.rejected_events += 1,
            }
        }
        op.count_page(added, generation);

        // A page that added nothing, after which the same page would be
        // asked for again, made no progress (the history lags the head, or
        // the server answers wrongly): back off instead of asking at once.
        let stuck = added == 0
            && op.log.order() == LogOrder::BySeq
            && !op.log.is_complete()
            && op.behind()
            && op.next_page(self.options.page_limit) == (after, limit);
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
            let reason = if unreadable > 0 {
                format!("the server sent {unreadable} events this page cannot read")
            } else {
                format!("the server's history has nothing after seq {after} yet")
            };
            self.retry_later(index, reason);
            return;
        }
        self.catch_up(&id);
        self.schedule_poll(&id);
    }

    /// A pushed event could not be read: counted, and the whole history is
    /// read again (it is the only way to learn whether it is readable there).
    pub(super) fn unreadable_event(&mut self, id: &OperationId) {
        self.notices.malformed_frames += 1;
        let Some(op) = self.find_mut(id) else { return };
        if op.finished {
            return;
        }
        op.unreadable += 1;
        op.want_fresh_read();
        if !op.in_round() {
            op.start_round(false);
        }
        self.catch_up(id);
    }

    /// An operation read by polling is read again after the interval, once
    /// it has caught up with what it was told.
    fn schedule_poll(&mut self, id: &OperationId) {
        let at = Timestamp(self.now.0 + self.options.poll_interval_ms as i64);
        let options = &self.options;
        let Some(op) = self.operations.iter_mut().find(|op| op.id() == id) else {
            return;
        };
        if op.polled(options) && !op.finished && op.fetch == Fetch::Idle && !op.in_round() {
            op.fetch = Fetch::PollAt(at);
        }
    }

    pub(super) fn history_failed(&mut self, request: RequestId, error: HistoryError) {
        let Some(index) = self.requested(request) else {
            return;
        };
        let op = &mut self.operations[index];
        match error {
            HistoryError::NotFound => {
                op.fetch = Fetch::Idle;
                op.problem = Some(Problem::NotFound);
                op.drop_round();
                op.waiting_for_slot = false;
                op.resubscribe_at = None;
                let id = op.id().clone();
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
            HistoryError::Transient(reason) => self.retry_later(index, reason),
        }
    }

    /// A history request failed: shown, and asked again after a backoff.
    fn retry_later(&mut self, index: usize, reason: String) {
        let op = &mut self.operations[index];
        let delay = op.fetch_backoff.next_delay_ms(&mut self.rng).max(250);
        let retry_at = Timestamp(self.now.0 + delay as i64);
        op.fetch = Fetch::RetryAt(retry_at);
        op.problem = Some(Problem::HistoryUnavailable { reason, retry_at });
    }

    /// Does whatever the operations' deadlines say is due: a request that
    /// waited too long has failed; a retry whose time has come goes out.
    pub(super) fn history_due(&mut self) {
        let now = self.now;
        let timeout = self.options.request_timeout_ms;
        for index in 0..self.operations.len() {
            let op = &mut self.operations[index];
            if op.deadline(timeout).is_none_or(|at| now < at) {
                continue;
            }
            let id = op.id().clone();
            if op
                .cancel_sent_at
                .is_some_and(|at| now.0 - at.0 >= timeout as i64)
            {
                let reason = format!("no answer within {} s", timeout / 1000);
                self.cancel_failed(&id, reason);
            }
            let op = &mut self.operations[index];
            if op.resubscribe_at.is_some_and(|at| now >= at) {
                op.resubscribe_at = None;
                self.subscribe(&id);
            }
            let op = &mut self.operations[index];
            match op.fetch {
                Fetch::InFlight {
                    request, sent_at, ..
                } if now.0 - sent_at.0 >= timeout as i64 => {
                    let reason = format!("no answer within {} s", timeout / 1000);
                    self.history_failed(request, HistoryError::Transient(reason));
                }
                Fetch::RetryAt(at) | Fetch::PollAt(at) if now >= at => {
                    op.fetch = Fetch::Idle;
                    op.clear_history_problem();
                    self.fetch_next(&id);
                }
                _ => {}
            }
        }
    }

    /// A terminal event arrived and nothing before it is missing: the view
    /// switches and the subscription ends.
    pub(super) fn finish(&mut self, id: &OperationId) {
        let Some(op) = self.find_mut(id) else { return };
        op.end_round();
        op.finished = true;
        op.cancel_requested = false;
        op.cancel_sent_at = None;
        // A retry or poll scheduled before the end is moot: everything is
        // here.
        if let Fetch::RetryAt(_) | Fetch::PollAt(_) = op.fetch {
            op.fetch = Fetch::Idle;
        }
        op.waiting_for_slot = false;
        op.resubscribe_at = None;
        // Neither a pending history retry, a refused subscription nor a
        // refused cancel matters now.
        if matches!(
            op.problem,
            Some(
                Problem::HistoryUnavailable { .. }
                    | Problem::Server { .. }
                    | Problem::CancelFailed(_)
            )
        ) {
            op.problem = None;
        }
        let status = op.effective_status();
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
}
