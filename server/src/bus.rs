//! Per-operation fan-out of committed events to WebSocket connections.
//!
//! Each connection owns one bounded queue; a subscription is an entry
//! "operation → connection" here. [`Bus::publish`] never waits: it offers the
//! event to every subscribed connection's queue, and a connection whose queue
//! is full is flagged as overflowed (it closes itself; its client recovers by
//! resubscribing), so one slow reader never holds up the others.
//!
//! The caller publishes only after the commit, and per operation in seq
//! order (the runner holds the operation's lock across append and publish).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Utf8Bytes;
use optrail_core::{Epoch, OperationId, Seq, ServerFrame};
use tokio::sync::{Notify, mpsc};

use crate::store::Appended;

/// One committed event, serialized once for every subscriber.
#[derive(Debug)]
pub struct Published {
    pub operation_id: OperationId,
    pub epoch: Epoch,
    pub seq: Seq,
    /// Nothing follows it: subscriptions to the operation end here.
    pub terminal: bool,
    /// The whole `event` frame.
    pub frame: Utf8Bytes,
}

impl Published {
    pub fn new(operation_id: &OperationId, appended: &Appended) -> Self {
        let frame = ServerFrame::Event {
            operation_id: operation_id.clone(),
            epoch: Some(appended.epoch),
            event: appended.event.clone(),
        }
        .to_json();
        Self {
            operation_id: operation_id.clone(),
            epoch: appended.epoch,
            seq: appended.event.seq.unwrap_or_default(),
            terminal: appended.status.is_terminal(),
            frame: Utf8Bytes::from(frame),
        }
    }
}

/// Identifies a connection's subscriptions in the bus.
pub type ConnectionId = u64;

/// Set by the bus when a connection's queue overflowed.
#[derive(Debug, Default)]
pub struct Overflow {
    flag: AtomicBool,
    notify: Notify,
}

impl Overflow {
    pub fn happened(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Resolves once the queue has overflowed.
    pub async fn wait(&self) {
        while !self.happened() {
            self.notify.notified().await;
        }
    }

    fn raise(&self) {
        if !self.flag.swap(true, Ordering::AcqRel) {
            self.notify.notify_one();
        }
    }
}

/// The bus's side of one connection.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub connection: ConnectionId,
    queue: mpsc::Sender<Arc<Published>>,
    overflow: Arc<Overflow>,
}

/// The connection's side: where its pushes arrive.
#[derive(Debug)]
pub struct Inbox {
    pub subscriber: Subscriber,
    pub queue: mpsc::Receiver<Arc<Published>>,
    pub overflow: Arc<Overflow>,
}

#[derive(Debug, Default)]
pub struct Bus {
    subscriptions: Mutex<HashMap<OperationId, HashMap<ConnectionId, Subscriber>>>,
    next_connection: AtomicU64,
}

impl Bus {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new connection with a queue of `capacity` pushes.
    pub fn connect(&self, capacity: usize) -> Inbox {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let overflow = Arc::new(Overflow::default());
        Inbox {
            subscriber: Subscriber {
                connection: self.next_connection.fetch_add(1, Ordering::Relaxed),
                queue: tx,
                overflow: overflow.clone(),
            },
            queue: rx,
            overflow,
        }
    }

    /// From now on, every event published for `operation` is offered to the
    /// subscriber. Registering again is harmless.
    pub fn subscribe(&self, operation: &OperationId, subscriber: &Subscriber) {
        self.lock()
            .entry(operation.clone())
            .or_default()
            .insert(subscriber.connection, subscriber.clone());
    }

    pub fn unsubscribe(&self, operation: &OperationId, connection: ConnectionId) {
        let mut map = self.lock();
        if let Some(subscribers) = map.get_mut(operation) {
            subscribers.remove(&connection);
            if subscribers.is_empty() {
                map.remove(operation);
            }
        }
    }

    /// Offers the event to every subscriber of its operation; returns how
    /// many queues took it. After a terminal event the operation's entry is
    /// dropped: nothing more will be published for it.
    pub fn publish(&self, published: Published) -> usize {
        let published = Arc::new(published);
        let mut map = self.lock();
        let Some(subscribers) = map.get_mut(&published.operation_id) else {
            return 0;
        };
        let mut delivered = 0;
        subscribers.retain(
            |_, subscriber| match subscriber.queue.try_send(published.clone()) {
                Ok(()) => {
                    delivered += 1;
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    subscriber.overflow.raise();
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            },
        );
        if published.terminal || subscribers.is_empty() {
            map.remove(&published.operation_id);
        }
        delivered
    }

    /// How many connections are subscribed to `operation`.
    pub fn subscribers(&self, operation: &OperationId) -> usize {
        self.lock().get(operation).map_or(0, HashMap::len)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<OperationId, HashMap<ConnectionId, Subscriber>>> {
        // A panic while holding this lock cannot leave the map half-updated
        // in a way that matters (entries are independent): keep going.
        self.subscriptions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(op: &str, seq: u64, terminal: bool) -> Published {
        Published {
            operation_id: op.into(),
            epoch: Epoch(1),
            seq: Seq(seq),
            terminal,
            frame: Utf8Bytes::from(format!("{op}:{seq}")),
        }
    }

    #[test]
    fn a_full_queue_flags_its_connection_and_never_blocks_the_others() {
        let bus = Bus::new();
        let slow = bus.connect(1);
        let mut fast = bus.connect(8);
        bus.subscribe(&"op".into(), &slow.subscriber);
        bus.subscribe(&"op".into(), &fast.subscriber);
        assert_eq!(bus.publish(published("op", 1, false)), 2);
        assert_eq!(bus.publish(published("op", 2, false)), 1);
        assert!(slow.overflow.happened());
        assert!(!fast.overflow.happened());
        assert_eq!(fast.queue.try_recv().unwrap().seq, Seq(1));
        assert_eq!(fast.queue.try_recv().unwrap().seq, Seq(2));
        assert_eq!(bus.subscribers(&"op".into()), 1);
    }

    #[test]
    fn a_terminal_event_ends_every_subscription_to_its_operation() {
        let bus = Bus::new();
        let inbox = bus.connect(4);
        bus.subscribe(&"op".into(), &inbox.subscriber);
        bus.publish(published("op", 1, true));
        assert_eq!(bus.subscribers(&"op".into()), 0);
    }
}
