//! Group commit: one task writes every append, many in one transaction.
//!
//! An append (a runner's step, a publisher's batch) is queued here and
//! waits for its commit. The writer takes everything queued (at most
//! [`MAX_GROUP`] appends, of any operations) into one transaction, so the
//! commit — and with `synchronous = FULL` its fsync — is paid once per
//! group, not once per event. A group never waits for more appends to
//! arrive: it holds what queued while the previous commit ran, so an
//! append waits at most for the commit in progress and its own (a few
//! milliseconds), and a lone append commits at once.
//!
//! Each append runs inside a savepoint: one that fails (a finished
//! operation, a stale head, a duplicate id) is rolled back alone and the
//! others still commit. Seqs stay gap-free because each append moves its
//! operation's head in the transaction that inserts its events, in queue
//! order. After the commit the group's events go to the bus in that same
//! order through one publishing task: per operation, publish order is
//! seq order, and nothing is published before it is committed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use optrail_core::{OperationId, Seq, Timestamp};
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::bus::{Bus, Published};
use crate::error::Error;
use crate::store::{Appended, Batch, EventDraft, append_many, append_one};

/// The most appends one transaction takes. Large enough that 100 busy
/// operations share a commit; small enough that a group's transaction
/// stays a few milliseconds long.
pub const MAX_GROUP: usize = 512;

/// Appends queued beyond this make their callers wait to queue
/// (backpressure instead of unbounded memory).
const QUEUE: usize = 4 * MAX_GROUP;

/// One append, as the store was asked for it, with where to answer.
#[derive(Debug)]
enum Request {
    /// A runner's step (or a cancel): one event, only if the head is still
    /// `after` when given.
    One {
        id: OperationId,
        draft: EventDraft,
        after: Option<Seq>,
        reply: oneshot::Sender<Result<Appended, Error>>,
    },
    /// A publisher's batch, idempotent by event id.
    Batch {
        id: OperationId,
        drafts: Vec<EventDraft>,
        received: Timestamp,
        reply: oneshot::Sender<Result<Batch, Error>>,
    },
}

/// An append run inside the group, waiting for the group's commit.
enum Ran {
    One(
        OperationId,
        Result<Appended, Error>,
        oneshot::Sender<Result<Appended, Error>>,
    ),
    Batch(
        OperationId,
        Result<Batch, Error>,
        oneshot::Sender<Result<Batch, Error>>,
    ),
}

impl Ran {
    fn succeeded(&self) -> bool {
        match self {
            Ran::One(_, outcome, _) => outcome.is_ok(),
            Ran::Batch(_, outcome, _) => outcome.is_ok(),
        }
    }

    /// The events it stored, in seq order.
    fn published(&self) -> Vec<(OperationId, Appended)> {
        match self {
            Ran::One(id, Ok(appended), _) => vec![(id.clone(), appended.clone())],
            Ran::Batch(id, Ok(batch), _) => batch
                .appended
                .iter()
                .map(|appended| (id.clone(), appended.clone()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Answers with the append's own outcome (its group committed).
    fn answer(self) {
        match self {
            Ran::One(_, outcome, reply) => drop(reply.send(outcome)),
            Ran::Batch(_, outcome, reply) => drop(reply.send(outcome)),
        }
    }

    /// Answers after the group failed: nothing of it is stored. An append
    /// that had failed on its own keeps its own error.
    fn fail(self, why: &str) {
        let failed = || Error::Internal(format!("the transaction of this append failed: {why}"));
        match self {
            Ran::One(_, outcome, reply) => drop(reply.send(outcome.and_then(|_| Err(failed())))),
            Ran::Batch(_, outcome, reply) => {
                drop(reply.send(outcome.and_then(|_| Err(failed()))));
            }
        }
    }
}

impl Request {
    /// Runs the append inside the group's transaction.
    async fn run(self, tx: &mut SqliteConnection) -> Ran {
        match self {
            Request::One {
                id,
                draft,
                after,
                reply,
            } => {
                let outcome = append_one(tx, &id, draft, after).await;
                Ran::One(id, outcome, reply)
            }
            Request::Batch {
                id,
                drafts,
                received,
                reply,
            } => {
                let outcome = append_many(tx, &id, drafts, received).await;
                Ran::Batch(id, outcome, reply)
            }
        }
    }

    /// Answers without having run (the group failed before reaching it).
    fn fail(self, why: &str) {
        let failed = Error::Internal(format!("the transaction of this append failed: {why}"));
        match self {
            Request::One { reply, .. } => drop(reply.send(Err(failed))),
            Request::Batch { reply, .. } => drop(reply.send(Err(failed))),
        }
    }
}

/// The queue in front of the writer; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Commits {
    queue: mpsc::Sender<Request>,
    tally: Arc<Tally>,
}

/// How the writer has grouped appends so far.
#[derive(Debug, Default)]
struct Tally {
    groups: AtomicU64,
    appends: AtomicU64,
}

/// Committed groups and the appends they held (refused appends included),
/// since the store opened: `appends / groups` is the mean group size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    pub groups: u64,
    pub appends: u64,
}

impl Commits {
    /// Starts the writer on `pool` (one connection) and the task that
    /// publishes its commits to `bus`.
    pub(crate) fn spawn(pool: SqlitePool, bus: Arc<Bus>) -> Commits {
        let (queue, requests) = mpsc::channel(QUEUE);
        let (publish, committed) = mpsc::unbounded_channel();
        let tally = Arc::new(Tally::default());
        tokio::spawn(write(pool, requests, publish, tally.clone()));
        tokio::spawn(publish_all(bus, committed));
        Commits { queue, tally }
    }

    pub(crate) fn stats(&self) -> CommitStats {
        CommitStats {
            groups: self.tally.groups.load(Ordering::Relaxed),
            appends: self.tally.appends.load(Ordering::Relaxed),
        }
    }

    /// See [`Store::append`](crate::store::Store::append).
    pub(crate) async fn append(
        &self,
        id: &OperationId,
        draft: EventDraft,
        after: Option<Seq>,
    ) -> Result<Appended, Error> {
        let (reply, answer) = oneshot::channel();
        let request = Request::One {
            id: id.clone(),
            draft,
            after,
            reply,
        };
        self.queue.send(request).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// See [`Store::append_batch`](crate::store::Store::append_batch).
    pub(crate) async fn append_batch(
        &self,
        id: &OperationId,
        drafts: Vec<EventDraft>,
        received: Timestamp,
    ) -> Result<Batch, Error> {
        let (reply, answer) = oneshot::channel();
        let request = Request::Batch {
            id: id.clone(),
            drafts,
            received,
            reply,
        };
        self.queue.send(request).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Error {
    Error::Internal("the database writer has stopped".into())
}

/// The writer: one group after another until every [`Commits`] is gone.
async fn write(
    pool: SqlitePool,
    mut requests: mpsc::Receiver<Request>,
    publish: mpsc::UnboundedSender<Vec<(OperationId, Appended)>>,
    tally: Arc<Tally>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while requests.recv_many(&mut group, MAX_GROUP).await > 0 {
        let size = group.len() as u64;
        if commit(&pool, std::mem::take(&mut group), &publish).await {
            tally.groups.fetch_add(1, Ordering::Relaxed);
            tally.appends.fetch_add(size, Ordering::Relaxed);
        }
        group.reserve(MAX_GROUP);
    }
}

/// Runs one group in one transaction, then publishes and answers; `true`
/// if it committed.
async fn commit(
    pool: &SqlitePool,
    group: Vec<Request>,
    publish: &mpsc::UnboundedSender<Vec<(OperationId, Appended)>>,
) -> bool {
    let mut ran = Vec::with_capacity(group.len());
    let mut waiting = group.into_iter();
    let committed: Result<(), Error> = async {
        let mut tx = pool.begin().await?;
        for request in waiting.by_ref() {
            sqlx::query("SAVEPOINT append").execute(&mut *tx).await?;
            let done = request.run(&mut tx).await;
            let succeeded = done.succeeded();
            ran.push(done);
            if !succeeded {
                sqlx::query("ROLLBACK TO append").execute(&mut *tx).await?;
            }
            sqlx::query("RELEASE append").execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
    .await;
    match committed {
        Ok(()) => {
            let events: Vec<_> = ran.iter().flat_map(Ran::published).collect();
            if !events.is_empty() {
                // Fails only when the publisher is gone: the server stops.
                let _ = publish.send(events);
            }
            ran.into_iter().for_each(Ran::answer);
            true
        }
        Err(error) => {
            tracing::error!(error = %error, "a group commit failed; its appends are refused");
            let why = error.to_string();
            ran.into_iter().for_each(|r| r.fail(&why));
            waiting.for_each(|r| r.fail(&why));
            false
        }
    }
}

/// Publishes committed groups in commit order, off the writer's path (a
/// hot operation's fan-out must not delay the next commit).
async fn publish_all(
    bus: Arc<Bus>,
    mut committed: mpsc::UnboundedReceiver<Vec<(OperationId, Appended)>>,
) {
    while let Some(events) = committed.recv().await {
        for (id, appended) in events {
            bus.publish(Published::new(&id, &appended));
        }
    }
}
