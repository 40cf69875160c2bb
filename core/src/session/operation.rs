//! One tracked operation's state and the transitions that touch nothing
//! else: restarting an epoch, starting and ending a catch-up round,
//! choosing the next history page, and its deadline.

use std::sync::Arc;

use super::api::{Problem, Recovery, RequestId, SessionOptions, TrackedOperation};
use crate::backoff::Backoff;
use crate::interpretation::Interpretation;
use crate::log::{EventLog, LogOrder};
use crate::protocol::{Epoch, OperationId, Seq, Status};
use crate::timestamp::Timestamp;

/// Where an operation's subscription stands on the current socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Subscription {
    None,
    /// `subscribe` sent, `subscribed` not yet back: pushes are buffered.
    Pending,
    Active,
}

/// Where an operation's history request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fetch {
    Idle,
    InFlight {
        request: RequestId,
        sent_at: Timestamp,
        /// What it asked for, to tell a page that made no progress.
        after: Seq,
        limit: u32,
        /// [`OperationState::reads`] when it was sent.
        generation: u32,
    },
    RetryAt(Timestamp),
    /// Nothing wrong: the next read of an operation that is polled.
    PollAt(Timestamp),
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

/// One tracked operation. See the module doc.
#[derive(Debug, Clone)]
pub(super) struct OperationState {
    pub tracked: TrackedOperation,
    pub log: EventLog,
    pub epoch: Option<Epoch>,
    /// The highest seq the server is known to have.
    pub head: Seq,
    pub subscription: Subscription,
    /// Bumped whenever something happens that only a history read sent
    /// afterwards can cover: a subscription reached, or, without seqs, a
    /// terminal event pushed (earlier events may still be on their way, or
    /// were never pushed to this socket). Without seqs, only a page read
    /// under the current value counts as the round's read.
    reads: u32,
    pub fetch: Fetch,
    pub fetch_backoff: Backoff,
    round: Option<Round>,
    recovery: Recovery,
    /// Set once the first catch-up of this page load is over.
    caught_up_once: bool,
    pub problem: Option<Problem>,
    /// The status the server last reported in a history page.
    pub server_status: Option<Status>,
    /// Terminal and complete: never subscribed again.
    pub finished: bool,
    pub cancel_requested: bool,
    /// Not subscribed because the socket has no free slot: polled instead.
    pub waiting_for_slot: bool,
    /// When to ask for a subscription the server refused for a reason
    /// that may pass (`internal`, or a code we do not know).
    pub resubscribe_at: Option<Timestamp>,
    /// When the cancel request went out, until the server answers it: a
    /// cancel that never answers fails at the request deadline.
    pub cancel_sent_at: Option<Timestamp>,
    /// Events the backend has that could not be read: from its latest
    /// whole history, plus pushes since. Never claimed as complete while
    /// any are.
    pub unreadable: u32,
}

impl OperationState {
    pub fn new(
        tracked: TrackedOperation,
        epoch: Option<Epoch>,
        options: &SessionOptions,
        interpretation: Arc<Interpretation>,
    ) -> Self {
        Self {
            log: EventLog::new(options.order, interpretation),
            epoch,
            head: Seq::ZERO,
            subscription: Subscription::None,
            reads: 0,
            fetch: Fetch::Idle,
            fetch_backoff: Backoff::new(options.history_retry.clone()),
            round: None,
            recovery: Recovery::CatchingUp,
            caught_up_once: false,
            problem: None,
            server_status: None,
            finished: false,
            cancel_requested: false,
            waiting_for_slot: false,
            resubscribe_at: None,
            unreadable: 0,
            cancel_sent_at: None,
            tracked,
        }
    }

    pub fn id(&self) -> &OperationId {
        &self.tracked.id
    }

    /// Whether it needs a live subscription: not over, not unknown to the
    /// server, and not remembered as terminal.
    pub fn needs_live(&self) -> bool {
        !self.finished
            && self.problem != Some(Problem::NotFound)
            && !self.tracked.status.is_some_and(Status::is_terminal)
    }

    /// The stream was rebuilt (a new epoch): everything of the old one is
    /// in another numbering, so it is dropped and fetched anew.
    pub fn restart_epoch(&mut self, epoch: Epoch, head: Seq) {
        self.log.clear();
        // An answer for the old epoch is stale.
        self.fetch = Fetch::Idle;
        self.head = head;
        self.epoch = Some(epoch);
        self.start_round(true);
    }

    /// A catch-up begins (or, when one is running, is marked refetched).
    pub fn start_round(&mut self, refetched: bool) {
        let first = !self.caught_up_once;
        let round = self.round.get_or_insert(Round {
            missed: 0,
            first,
            refetched: false,
            pages: 0,
        });
        round.refetched |= refetched;
        self.recovery = Recovery::CatchingUp;
    }

    pub fn in_round(&self) -> bool {
        self.round.is_some()
    }

    /// Abandons the catch-up without a finding (the operation is unknown).
    pub fn drop_round(&mut self) {
        self.round = None;
    }

    /// Only a history read sent from now on covers everything so far.
    pub fn want_fresh_read(&mut self) {
        self.reads += 1;
        if let Some(round) = self.round.as_mut() {
            round.pages = 0;
        }
    }

    /// What a history request sent now records, for [`Self::count_page`].
    pub fn read_generation(&self) -> u32 {
        self.reads
    }

    /// A history page sent at read generation `sent_under` added `added`
    /// events to the round. Without seqs, only a page read at the current
    /// generation counts as the round's read.
    pub fn count_page(&mut self, added: u64, sent_under: u32) {
        let current = sent_under == self.reads;
        if let Some(round) = self.round.as_mut() {
            round.missed += added;
            round.pages += u32::from(current || self.log.order() == LogOrder::BySeq);
        }
    }

    /// The catch-up is over: nothing is missing up to the known head.
    pub fn end_round(&mut self) {
        let Some(round) = self.round.take() else {
            return;
        };
        let total = self.log.len();
        self.recovery = if round.refetched {
            Recovery::Refetched { total }
        } else if round.first || round.missed == 0 {
            Recovery::Complete { total }
        } else {
            Recovery::Replayed {
                missed: round.missed,
                total,
            }
        };
        self.caught_up_once = true;
        if !self.needs_live() && self.subscription == Subscription::None {
            self.finished = true;
        }
    }

    /// Whether history is still needed to be complete up to the head.
    pub fn behind(&self) -> bool {
        match self.log.order() {
            LogOrder::BySeq => self.log.contiguous() < self.head || self.log.first_gap().is_some(),
            // Without seqs, one full fetch per round is all there is.
            LogOrder::ByTime => self.round.is_some_and(|round| round.pages == 0),
        }
    }

    /// Whether nothing more will come: a terminal event we recognise, or
    /// the server's word for a vocabulary we do not.
    ///
    /// Without seqs, a terminal event says nothing about the events before
    /// it: pushes may overtake each other, so it ends the operation only
    /// once a history read after it is in (see [`Self::needs_round`]).
    pub fn over(&self) -> bool {
        let complete =
            self.log.is_complete() && (self.log.order() == LogOrder::BySeq || !self.behind());
        complete || (!self.behind() && self.server_status.is_some_and(Status::is_terminal))
    }

    /// Whether the log needs another catch-up round: a gap in seq order,
    /// or, without seqs, a terminal event that arrived between rounds.
    pub fn needs_round(&self) -> bool {
        !self.in_round()
            && match self.log.order() {
                LogOrder::BySeq => self.log.first_gap().is_some(),
                LogOrder::ByTime => self.log.is_complete(),
            }
    }

    /// A history failure that has since been overcome is no longer shown.
    pub fn clear_history_problem(&mut self) {
        if matches!(self.problem, Some(Problem::HistoryUnavailable { .. })) {
            self.problem = None;
        }
    }

    /// The history request this operation needs next, as `(after, limit)`.
    ///
    /// In seq order the newest events come first, because they are what a
    /// person watching sees (a timeline opens at its tail): far behind the
    /// head, the newest page; with a gap, the newest page of the last gap,
    /// so a history loads backwards from the tail one page at a time. A gap
    /// from a lost push is smaller than a page, so it is fetched exactly.
    /// Without seqs there is nothing to page by: the whole history, once
    /// per round.
    pub fn next_page(&self, page: u32) -> (Seq, u32) {
        let page = u64::from(page);
        let contiguous = self.log.contiguous();
        if self.log.order() == LogOrder::ByTime {
            return (contiguous, page as u32);
        }
        match self.log.last_gap() {
            Some((start, end)) => {
                let after = end.0.saturating_sub(page).max(start.0 - 1);
                (Seq(after), (end.0 - after) as u32)
            }
            None if self.head.0 > contiguous.0 + page => (Seq(self.head.0 - page), page as u32),
            None => (contiguous, page as u32),
        }
    }

    /// When this operation next needs the session's attention: its request
    /// in flight times out, or its retry is due.
    pub fn deadline(&self, request_timeout_ms: u64) -> Option<Timestamp> {
        let fetch = match self.fetch {
            Fetch::Idle => None,
            Fetch::InFlight { sent_at, .. } => {
                Some(Timestamp(sent_at.0 + request_timeout_ms as i64))
            }
            Fetch::RetryAt(at) | Fetch::PollAt(at) => Some(at),
        };
        let cancel = self
            .cancel_sent_at
            .map(|at| Timestamp(at.0 + request_timeout_ms as i64));
        [fetch, self.resubscribe_at, cancel]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether it should be read again later although nothing is wrong:
    /// it has no live subscription to tell it what happens, or its
    /// backend's sockets are not trusted to.
    pub fn polled(&self, options: &SessionOptions) -> bool {
        self.needs_live()
            && (self.waiting_for_slot || self.resubscribe_at.is_some() || options.poll_always)
    }

    /// The status to show: a terminal event's, else the server's or the
    /// remembered terminal one, else what the events imply.
    pub fn effective_status(&self) -> Status {
        if let Some(status) = self.log.terminal_status() {
            return status;
        }
        let remembered = self.server_status.or(self.tracked.status);
        match remembered {
            Some(status) if status.is_terminal() => status,
            _ if self.log.is_empty() && self.head == Seq::ZERO => Status::NotStarted,
            _ => Status::Running,
        }
    }

    pub fn recovery(&self) -> Recovery {
        self.recovery.with_total(self.log.len())
    }
}
