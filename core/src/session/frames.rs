//! The subscription protocol on the socket: subscribe and unsubscribe,
//! and what each server frame means for the operation it names.

use super::Session;
use super::api::{Command, Problem, SocketId};
use super::operation::{Fetch, Subscription};
use super::socket::Socket;
use crate::log::{Insert, LogOrder};
use crate::protocol::{ClientFrame, Epoch, Event, OperationId, Seq, ServerFrame};
use crate::timestamp::Timestamp;

impl Session {
    pub(super) fn subscribe(&mut self, id: &OperationId) {
        let Socket::Open { id: socket, .. } = self.socket else {
            return;
        };
        if self.unsubscribing.contains(id) {
            // Resubscribed once the old subscription's end is confirmed.
            return;
        }
        let full = self.live_subscriptions() >= self.subscription_limit;
        let Some(op) = self.find_mut(id) else { return };
        if op.subscription != Subscription::None || !op.needs_live() {
            return;
        }
        if full {
            // Never more than the server allows on one socket: this one
            // reads its history until a slot frees.
            op.waiting_for_slot = true;
            if !op.in_round() {
                op.start_round(false);
            }
            self.fetch_next(id);
            return;
        }
        op.waiting_for_slot = false;
        op.resubscribe_at = None;
        if let Fetch::PollAt(_) = op.fetch {
            op.fetch = Fetch::Idle;
        }
        op.subscription = Subscription::Pending;
        let after = op.log.contiguous();
        let operation_id = id.clone();
        self.commands.push_back(Command::Send(
            socket,
            ClientFrame::Subscribe {
                operation_id,
                after,
            },
        ));
    }

    /// Subscriptions the server holds for this client on the current
    /// socket: asked for, granted, or ended but not yet confirmed.
    fn live_subscriptions(&self) -> usize {
        let held = self
            .operations
            .iter()
            .filter(|op| op.subscription != Subscription::None)
            .count();
        held + self.unsubscribing.len()
    }

    /// A slot may have freed: operations waiting for one get it, newest
    /// first, as far as the limit allows.
    fn subscribe_waiting(&mut self) {
        let mut index = 0;
        while index < self.operations.len() && self.live_subscriptions() < self.subscription_limit {
            let op = &self.operations[index];
            if op.waiting_for_slot && op.needs_live() {
                let id = op.id().clone();
                self.subscribe(&id);
            }
            index += 1;
        }
    }

    /// The server refused to subscribe `id`: each refusal has an outcome
    /// the person can see, and none leaves it without events.
    fn refused(&mut self, id: &OperationId, code: &str, message: String) {
        let held = self.live_subscriptions();
        let now = self.now;
        let Some(op) = self.operations.iter_mut().find(|op| op.id() == id) else {
            return;
        };
        let not_found = matches!(code, "operation_not_found" | "invalid_operation_id");
        if op.finished || (!not_found && op.subscription == Subscription::None) {
            // About a subscription that no longer matters (the end came
            // another way) or that this session no longer holds.
            return;
        }
        op.subscription = Subscription::None;
        match code {
            // An id the server does not know, or could never know: it will
            // not exist later either. Shown, with Forget, never retried.
            "operation_not_found" | "invalid_operation_id" => {
                op.problem = Some(Problem::NotFound);
                op.fetch = Fetch::Idle;
                op.drop_round();
                op.waiting_for_slot = false;
                op.resubscribe_at = None;
            }
            "too_many_subscriptions" => {
                // The server allows fewer than we thought: learn it (the
                // refused one was counted), then wait for a slot.
                self.subscription_limit =
                    self.subscription_limit.min(held.saturating_sub(1)).max(1);
                self.subscribe(id);
            }
            // `internal`, or a code this client does not know: it may pass.
            // Asked again after a backoff, shown meanwhile, and read from
            // history meanwhile.
            _ => {
                let delay = op.fetch_backoff.next_delay_ms(&mut self.rng).max(250);
                let retry_at = Timestamp(now.0 + delay as i64);
                op.resubscribe_at = Some(retry_at);
                op.problem = Some(Problem::Server { message, retry_at });
                if !op.in_round() {
                    op.start_round(false);
                }
                self.fetch_next(id);
            }
        }
        self.close_socket_if_idle();
        self.subscribe_waiting();
    }

    /// Ends a subscription on the current socket, remembering that its
    /// `unsubscribed` is still to come.
    pub(super) fn unsubscribe(&mut self, id: &OperationId) {
        if let Socket::Open { id: socket, .. } = self.socket {
            self.unsubscribing.insert(id.clone());
            let operation_id = id.clone();
            self.commands.push_back(Command::Send(
                socket,
                ClientFrame::Unsubscribe { operation_id },
            ));
        }
    }

    pub(super) fn frame_received(&mut self, socket: SocketId, text: &str) {
        self.frame(socket, ServerFrame::decode(text).ok_or(()));
    }

    /// A frame on `socket`, or `Err` for one that could not be read.
    pub(super) fn frame(&mut self, socket: SocketId, frame: Result<ServerFrame, ()>) {
        let Socket::Open {
            id, last_frame_at, ..
        } = &mut self.socket
        else {
            return;
        };
        if *id != socket {
            return;
        }
        *last_frame_at = self.now;
        let frame = match frame {
            Ok(frame) => frame,
            Err(()) => {
                self.notices.malformed_frames += 1;
                return;
            }
        };
        match frame {
            ServerFrame::Hello { ping_interval_ms } => {
                // The server's word beats the option: a slower pinger's
                // healthy sockets must not be declared dead.
                self.server_ping_ms = Some(ping_interval_ms.max(1_000));
            }
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
                // meanwhile, its subscription can go out now; else the slot
                // is free for one that waits.
                self.subscribe(&operation_id);
                self.subscribe_waiting();
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
                    self.subscribe_waiting();
                }
            }
            ServerFrame::Error {
                operation_id: Some(operation_id),
                code,
                message,
            } => self.refused(&operation_id, &code, message),
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
        if matches!(op.problem, Some(Problem::Server { .. })) {
            op.problem = None;
        }
        op.want_fresh_read();
        if op.epoch.is_some_and(|known| known != epoch) {
            op.restart_epoch(epoch, head);
        } else {
            op.epoch = Some(epoch);
            op.head = op.head.max(head);
            op.start_round(false);
        }
        self.catch_up(id);
    }

    fn live_event(&mut self, id: &OperationId, epoch: Option<Epoch>, event: Event) {
        let Some(op) = self.find_mut(id) else { return };
        if op.finished || op.subscription == Subscription::None {
            return;
        }
        match (op.epoch, epoch) {
            // The stream was rebuilt under us: start over in the new epoch.
            (Some(known), Some(new)) if known != new => op.restart_epoch(new, Seq::ZERO),
            (None, _) => op.epoch = epoch,
            _ => {}
        }
        // Only an event the log accepts may raise the trusted head: a
        // hostile seq far ahead would otherwise leave the operation asking
        // for history that does not exist.
        let seq = event.seq;
        let was_complete = op.log.is_complete();
        if let Insert::Rejected(_) = op.log.insert(event) {
            self.notices.rejected_events += 1;
            return;
        }
        if let Some(seq) = seq {
            op.head = op.head.max(seq);
        }
        if op.log.order() == LogOrder::ByTime && !was_complete && op.log.is_complete() {
            // Without seqs the end says nothing of what came before it.
            op.want_fresh_read();
        }
        // Until `subscribed` arrives the live events are only buffered: the
        // catch-up that follows it fills whatever is missing.
        if op.subscription == Subscription::Active {
            if op.needs_round() {
                op.start_round(false);
            }
            self.catch_up(id);
        }
    }
}
