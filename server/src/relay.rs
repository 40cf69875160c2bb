//! Cross-instance fan-out on Postgres: one task per instance publishes to
//! this instance's bus every event of the operations its subscribers
//! watch, committed by any instance, once, in seq order.
//!
//! Per watched operation the relay keeps a cursor: the last seq it
//! published. It learns that an operation moved from this instance's own
//! commits (events in hand) and from the other instances' notifications
//! (only `operation head`); whatever it did not get in hand it reads from
//! the database, once for all subscribers. When the listener's connection
//! drops, notifications may have been lost: once it listens again, the
//! relay reads every watched operation's head and catches up.
//!
//! A subscriber registers with the bus, then asks the relay to watch the
//! operation ([`Relay::watch`]), then reads the head: a new cursor is the
//! head the relay read before answering, so the subscriber's head is at
//! least the cursor and every event after it is relayed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use optrail_core::{OperationId, Seq, Status};
use sqlx::Row;
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::{mpsc, oneshot};

use crate::bus::{Bus, Published};
use crate::error::Error;
use crate::postgres::parse_heads;
use crate::store::{
    Appended, epoch_from_sql, event_from_row, parse_status, seq_from_sql, seq_to_sql,
};

/// The handle of an instance's relay task.
#[derive(Debug)]
pub(crate) struct Relay {
    watches: mpsc::UnboundedSender<(OperationId, oneshot::Sender<()>)>,
}

impl Relay {
    /// Returns once the relay follows `id` (or is gone).
    pub(crate) async fn watch(&self, id: &OperationId) {
        let (done, answer) = oneshot::channel();
        if self.watches.send((id.clone(), done)).is_ok() {
            let _ = answer.await;
        }
    }
}

/// What the listener task reports.
enum Heard {
    Heads(Vec<(OperationId, Seq)>),
    /// Notifications may have been lost; listening again now.
    Reconnected,
}

pub(crate) fn spawn(
    pool: PgPool,
    bus: Arc<Bus>,
    listener: PgListener,
    local: mpsc::UnboundedReceiver<Vec<(OperationId, Appended)>>,
) -> Relay {
    let (watches, watch_requests) = mpsc::unbounded_channel();
    let (heard, hearing) = mpsc::unbounded_channel();
    tokio::spawn(listen(listener, heard));
    let relay = Relaying {
        pool,
        bus,
        cursors: HashMap::new(),
    };
    tokio::spawn(relay.run(local, watch_requests, hearing));
    Relay { watches }
}

/// Forwards notifications; says when the connection was lost (sqlx's
/// listener reconnects and listens again before it returns `None`).
async fn listen(mut listener: PgListener, heard: mpsc::UnboundedSender<Heard>) {
    loop {
        let next = match listener.try_recv().await {
            Ok(Some(notification)) => Heard::Heads(parse_heads(notification.payload())),
            Ok(None) => Heard::Reconnected,
            Err(e) => {
                if matches!(e, sqlx::Error::PoolClosed) {
                    return;
                }
                tracing::warn!(error = %e, "the notification listener failed; reconnecting");
                tokio::time::sleep(Duration::from_millis(200)).await;
                Heard::Reconnected
            }
        };
        if heard.send(next).is_err() {
            return;
        }
    }
}

struct Relaying {
    pool: PgPool,
    bus: Arc<Bus>,
    /// Watched operation → the last seq published here.
    cursors: HashMap<OperationId, Seq>,
}

impl Relaying {
    async fn run(
        mut self,
        mut local: mpsc::UnboundedReceiver<Vec<(OperationId, Appended)>>,
        mut watches: mpsc::UnboundedReceiver<(OperationId, oneshot::Sender<()>)>,
        mut hearing: mpsc::UnboundedReceiver<Heard>,
    ) {
        loop {
            tokio::select! {
                committed = local.recv() => {
                    let Some(committed) = committed else { return };
                    let mut by_operation: Vec<(OperationId, Vec<Appended>)> = Vec::new();
                    for (id, appended) in committed {
                        match by_operation.last_mut() {
                            Some((last, events)) if *last == id => events.push(appended),
                            _ => by_operation.push((id, vec![appended])),
                        }
                    }
                    for (id, events) in by_operation {
                        let head = events.last().and_then(|a| a.event.seq).unwrap_or_default();
                        self.advance(&id, head, events).await;
                    }
                }
                watch = watches.recv() => {
                    let Some((id, done)) = watch else { return };
                    self.watch(id).await;
                    let _ = done.send(());
                }
                heard = hearing.recv() => match heard {
                    None => return,
                    Some(Heard::Heads(heads)) => {
                        for (id, head) in heads {
                            self.advance(&id, head, Vec::new()).await;
                        }
                    }
                    Some(Heard::Reconnected) => self.catch_up().await,
                },
            }
        }
    }

    async fn watch(&mut self, id: OperationId) {
        if self.cursors.contains_key(&id) {
            return;
        }
        // Forget the operations nobody here watches any more (their last
        // subscriber left without an event since).
        let bus = &self.bus;
        self.cursors.retain(|id, _| bus.subscribers(id) > 0);
        // Unknown, unreadable or finished: nothing to relay; the
        // subscriber's own head read answers.
        if let Some((head, false)) = self.read_head(&id).await {
            self.cursors.insert(id, head);
        }
    }

    /// The stored head, and whether the operation has finished.
    async fn read_head(&self, id: &OperationId) -> Option<(Seq, bool)> {
        let row = sqlx::query("SELECT head, status FROM operations WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await;
        let read = row.map_err(Error::from).and_then(|row| {
            row.map(|row| {
                let head = seq_from_sql(row.try_get("head")?)?;
                let status = parse_status(&row.try_get::<String, _>("status")?)?;
                Ok((head, status.is_terminal()))
            })
            .transpose()
        });
        read.unwrap_or_else(|e| {
            tracing::error!(operation = %id, error = %e, "the relay cannot read a head");
            None
        })
    }

    async fn catch_up(&mut self) {
        let watched: Vec<OperationId> = self.cursors.keys().cloned().collect();
        tracing::info!(
            operations = watched.len(),
            "notifications may have been lost; catching up from the database"
        );
        for id in watched {
            if let Some((head, _)) = self.read_head(&id).await {
                self.advance(&id, head, Vec::new()).await;
            }
        }
    }

    /// `id` is at `head`: publish what lies between the cursor and it,
    /// from `events` when they are exactly that, else from the database.
    async fn advance(&mut self, id: &OperationId, head: Seq, events: Vec<Appended>) {
        let Some(&cursor) = self.cursors.get(id) else {
            return;
        };
        if self.bus.subscribers(id) == 0 {
            self.cursors.remove(id);
            return;
        }
        if head <= cursor {
            return;
        }
        let first = events.first().and_then(|a| a.event.seq);
        let events = if first == Some(cursor.next()) {
            events
        } else {
            self.read(id, cursor, head).await
        };
        let mut cursor = cursor;
        let mut ended = false;
        for appended in events {
            let seq = appended.event.seq.unwrap_or_default();
            if seq != cursor.next() {
                continue;
            }
            cursor = seq;
            ended |= appended.status.is_terminal();
            self.bus.publish(Published::new(id, &appended));
        }
        if ended {
            self.cursors.remove(id);
        } else {
            self.cursors.insert(id.clone(), cursor);
        }
    }

    /// Events `(after, head]` from the database; none if it fails (the
    /// next notification or reconnect catches up).
    async fn read(&self, id: &OperationId, after: Seq, head: Seq) -> Vec<Appended> {
        let rows = sqlx::query(
            "SELECT o.epoch, e.seq, e.id, e.type, e.message, e.happened_at, e.details, e.status
             FROM events e JOIN operations o ON o.num = e.operation_num
             WHERE o.id = $1 AND e.seq > $2 AND e.seq <= $3 ORDER BY e.seq",
        )
        .bind(id.as_str())
        .bind(seq_to_sql(after))
        .bind(seq_to_sql(head))
        .fetch_all(&self.pool)
        .await;
        let read = rows.map_err(Error::from).and_then(|rows| {
            rows.iter()
                .map(|row| {
                    let event = event_from_row(row)?;
                    Ok(Appended {
                        epoch: epoch_from_sql(row.try_get("epoch")?)?,
                        status: event.status.unwrap_or(Status::Running),
                        event,
                    })
                })
                .collect::<Result<Vec<_>, Error>>()
        });
        read.unwrap_or_else(|e| {
            tracing::error!(operation = %id, error = %e, "the relay cannot read events");
            Vec::new()
        })
    }
}
