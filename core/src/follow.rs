//! The server's half of the subscribe rule (PROTOCOL.md, server rule 3),
//! for one connection: which operations it follows, and for each committed
//! event whether to push it.
//!
//! The rule is what makes history ∪ pushes cover everything without the
//! server buffering anything: **register** the subscriber first, **then**
//! read the head and answer `subscribed {epoch, head}`. Every event
//! committed after the head was read is published after its commit, hence
//! after the registration, so it is pushed; every event up to the head is
//! in the history the client fetches. A push with a seq at or below the
//! reported head is therefore redundant and skipped (clients would dedupe
//! it, but it costs a frame per event of a busy operation). A terminal
//! event ends the subscription: nothing follows it.
//!
//! It lives in the core, free of I/O, so that the reference server and the
//! deterministic simulation's server run the same rule: a simulation seed
//! that breaks it breaks the server too.

use std::collections::BTreeMap;

use crate::protocol::{Epoch, OperationId, Seq};

/// One connection's subscriptions, as a server keeps them.
///
/// The order of calls is the rule: [`Following::register`] before the head
/// is read, [`Following::answer`] with that head, and [`Following::push`]
/// for every committed event of any operation. The caller carries out the
/// verdicts (sends frames, updates its fan-out); this type only decides.
#[derive(Debug, Clone)]
pub struct Following {
    operations: BTreeMap<OperationId, Followed>,
    next_registration: u64,
    /// Whether a terminal event (or a finished operation's answer) ends the
    /// subscription; see [`Following::keeping_finished`].
    end_finished: bool,
}

/// The state of one followed operation.
#[derive(Debug, Clone, Copy)]
struct Followed {
    registration: Registration,
    /// The epoch and head reported in `subscribed`; `None` until answered.
    reported: Option<(Epoch, Seq)>,
}

/// One `subscribe` of one operation on one connection. A re-subscribe gets
/// a new one, so that a late answer for the registration it replaced is
/// recognised and dropped ([`Answer::Stale`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration(u64);

/// What to send once the head has been read after a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Send `subscribed {epoch, head}`; pushes follow.
    Subscribed,
    /// Send `subscribed {epoch, head}`, then `unsubscribed`: the operation
    /// has finished, so its history holds everything. The subscription is
    /// over; no push follows.
    SubscribedThenEnded,
    /// The registration was replaced or ended meanwhile: send nothing.
    Stale,
}

/// What to do with one committed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Send nothing: the operation is not followed, or the event is in the
    /// history below the reported head.
    Skip,
    /// Send the event.
    Send,
    /// Send the event, then `unsubscribed`: it was terminal, the
    /// subscription is over.
    SendThenEnd,
}

impl Default for Following {
    fn default() -> Self {
        Self::new()
    }
}

impl Following {
    /// Follows nothing yet; subscriptions end on a terminal event, as the
    /// reference server does.
    pub fn new() -> Self {
        Self {
            operations: BTreeMap::new(),
            next_registration: 0,
            end_finished: true,
        }
    }

    /// Like [`Following::new`], but a finished operation stays followed
    /// until the client unsubscribes, which PROTOCOL.md allows too. The
    /// simulation plays servers of both kinds against the client.
    pub fn keeping_finished() -> Self {
        Self {
            end_finished: false,
            ..Self::new()
        }
    }

    /// Step one of `subscribe`, before the head is read: from now on every
    /// event of `operation` is pushed, none skipped (the head is not known
    /// yet). Replaces an earlier registration of the same operation.
    pub fn register(&mut self, operation: OperationId) -> Registration {
        self.next_registration += 1;
        let registration = Registration(self.next_registration);
        self.operations.insert(
            operation,
            Followed {
                registration,
                reported: None,
            },
        );
        registration
    }

    /// Step two, with the head read after [`Following::register`]: records
    /// the `epoch` and `head` that the `subscribed` answer reports, and says
    /// what to send. `finished` is whether the operation is terminal.
    pub fn answer(
        &mut self,
        operation: &OperationId,
        registration: Registration,
        epoch: Epoch,
        head: Seq,
        finished: bool,
    ) -> Answer {
        let followed = match self.operations.get_mut(operation) {
            Some(followed) if followed.registration == registration => followed,
            _ => return Answer::Stale,
        };
        if finished && self.end_finished {
            self.operations.remove(operation);
            return Answer::SubscribedThenEnded;
        }
        followed.reported = Some((epoch, head));
        Answer::Subscribed
    }

    /// A committed event `seq` of `operation` in `epoch`, published after
    /// its commit. Before the answer, everything is sent: the head it will
    /// report is not read yet. After it, an event of the reported epoch at
    /// or below the reported head is in the client's history and skipped;
    /// an event of another epoch is sent (the client refetches on a new
    /// epoch). Only an answered subscription ends on a terminal event, so
    /// that `subscribed` always precedes `unsubscribed`.
    pub fn push(
        &mut self,
        operation: &OperationId,
        epoch: Epoch,
        seq: Seq,
        terminal: bool,
    ) -> Push {
        let Some(followed) = self.operations.get(operation) else {
            return Push::Skip;
        };
        let Some((reported_epoch, reported_head)) = followed.reported else {
            return Push::Send;
        };
        if epoch == reported_epoch && seq <= reported_head {
            return Push::Skip;
        }
        if terminal && self.end_finished {
            self.operations.remove(operation);
            return Push::SendThenEnd;
        }
        Push::Send
    }

    /// Stops following `operation` (an `unsubscribe`, or a `subscribe` that
    /// failed). Returns whether it was followed.
    pub fn end(&mut self, operation: &OperationId) -> bool {
        self.operations.remove(operation).is_some()
    }

    /// Whether `operation` is followed, answered or not.
    pub fn contains(&self, operation: &OperationId) -> bool {
        self.operations.contains_key(operation)
    }

    /// How many operations are followed.
    pub fn len(&self) -> usize {
        self.operations.len()
    }

    /// Whether no operation is followed.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// The followed operations, in id order.
    pub fn operations(&self) -> impl Iterator<Item = &OperationId> {
        self.operations.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str) -> OperationId {
        OperationId(name.to_owned())
    }

    const E1: Epoch = Epoch(1);
    const E2: Epoch = Epoch(2);

    /// Registers `name` and answers with `head` in epoch 1, unfinished.
    fn subscribed(following: &mut Following, name: &str, head: u64) -> OperationId {
        let id = op(name);
        let registration = following.register(id.clone());
        let answer = following.answer(&id, registration, E1, Seq(head), false);
        assert_eq!(answer, Answer::Subscribed);
        id
    }

    #[test]
    fn pushes_before_the_answer_all_go_out_and_do_not_end_it() {
        let mut following = Following::new();
        let a = op("a");
        let registration = following.register(a.clone());
        assert_eq!(following.push(&a, E1, Seq(3), false), Push::Send);
        assert_eq!(following.push(&a, E1, Seq(4), true), Push::Send);
        assert!(following.contains(&a));
        let answer = following.answer(&a, registration, E1, Seq(4), true);
        assert_eq!(answer, Answer::SubscribedThenEnded);
        assert!(following.is_empty());
    }

    #[test]
    fn pushes_up_to_the_reported_head_of_its_epoch_are_skipped_the_rest_sent() {
        let mut following = Following::new();
        let a = subscribed(&mut following, "a", 5);
        assert_eq!(following.push(&a, E1, Seq(4), false), Push::Skip);
        assert_eq!(following.push(&a, E1, Seq(5), false), Push::Skip);
        assert_eq!(following.push(&a, E1, Seq(6), false), Push::Send);
        // A rebuilt stream's seqs restart: the old head covers none of them.
        assert_eq!(following.push(&a, E2, Seq(1), false), Push::Send);
        assert_eq!(following.push(&op("b"), E1, Seq(6), false), Push::Skip);
    }

    #[test]
    fn a_terminal_push_ends_the_subscription_after_the_event() {
        let mut following = Following::new();
        let a = subscribed(&mut following, "a", 2);
        assert_eq!(following.push(&a, E1, Seq(3), true), Push::SendThenEnd);
        assert!(!following.contains(&a));
        assert_eq!(following.push(&a, E1, Seq(4), false), Push::Skip);
    }

    #[test]
    fn a_server_keeping_finished_subscriptions_never_ends_one() {
        let mut following = Following::keeping_finished();
        let a = subscribed(&mut following, "a", 2);
        assert_eq!(following.push(&a, E1, Seq(3), true), Push::Send);
        let again = following.register(a.clone());
        let answer = following.answer(&a, again, E1, Seq(3), true);
        assert_eq!(answer, Answer::Subscribed);
        assert!(following.contains(&a));
    }

    #[test]
    fn an_answer_for_a_replaced_or_ended_registration_is_stale() {
        let mut following = Following::new();
        let a = op("a");
        let first = following.register(a.clone());
        let second = following.register(a.clone());
        let answer = following.answer(&a, first, E1, Seq(1), false);
        assert_eq!(answer, Answer::Stale);
        let answer = following.answer(&a, second, E1, Seq(1), false);
        assert_eq!(answer, Answer::Subscribed);
        assert!(following.end(&a));
        assert!(!following.end(&a));
        let answer = following.answer(&a, second, E1, Seq(1), false);
        assert_eq!(answer, Answer::Stale);
        assert_eq!(following.len(), 0);
    }

    #[test]
    fn a_re_subscribe_skips_nothing_until_answered_again() {
        let mut following = Following::new();
        let a = subscribed(&mut following, "a", 5);
        following.register(a.clone());
        assert_eq!(following.push(&a, E1, Seq(5), false), Push::Send);
        assert_eq!(following.operations().collect::<Vec<_>>(), [&a]);
    }
}
