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
//! The group reads its operations' heads and the event ids it names, then
//! decides every append in memory ([`crate::group`]): one that is refused
//! (a finished operation, a stale head) changes nothing and the others
//! still commit. Seqs stay gap-free because each append moves its
//! operation's head in the transaction that inserts its events, in queue
//! order. After the commit the group's events go to the bus in that same
//! order through one publishing task: per operation, publish order is
//! seq order, and nothing is published before it is committed. On
//! PostgreSQL the group also locks its operations and notifies the other
//! instances, and the relay publishes ([`crate::postgres`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use optrail_core::{OperationId, Seq, Timestamp};
use sqlx::SqlitePool;
use sqlx::postgres::PgPool;
use tokio::sync::{mpsc, oneshot};

use crate::bus::{Bus, Published};
use crate::error::Error;
use crate::group::{Outcome, Work};
use crate::store::{Appended, Batch, EventDraft};

/// The most appends one transaction takes, by default. Large enough that
/// 100 busy operations share a commit; small enough that a group's
/// transaction stays a few milliseconds long.
pub const MAX_GROUP: usize = 512;

/// Appends queued beyond this make their callers wait to queue
/// (backpressure instead of unbounded memory).
const QUEUE: usize = 4 * MAX_GROUP;

/// Where an append's answer goes.
#[derive(Debug)]
enum Reply {
    One(oneshot::Sender<Result<Appended, Error>>),
    Batch(oneshot::Sender<Result<Batch, Error>>),
}

impl Reply {
    fn send(self, outcome: Outcome) {
        match (self, outcome) {
            (Reply::One(reply), Outcome::One(outcome)) => drop(reply.send(outcome)),
            (Reply::Batch(reply), Outcome::Batch(outcome)) => drop(reply.send(outcome)),
            (reply, _) => reply.fail("the writer mixed up two answers"),
        }
    }

    /// Answers after the group failed: nothing of it is stored.
    fn fail(self, why: &str) {
        let failed = Error::Internal(format!("the transaction of this append failed: {why}"));
        match self {
            Reply::One(reply) => drop(reply.send(Err(failed))),
            Reply::Batch(reply) => drop(reply.send(Err(failed))),
        }
    }
}

#[derive(Debug)]
struct Request {
    work: Work,
    reply: Reply,
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
    /// Starts the writer; each committed group's events go to `committed`
    /// in commit order. Groups hold at most `max_group` appends.
    pub(crate) fn spawn(db: Writer, committed: Committed, max_group: usize) -> Commits {
        let (queue, requests) = mpsc::channel(QUEUE);
        let tally = Arc::new(Tally::default());
        let writer = write(db, requests, committed, tally.clone(), max_group.max(1));
        tokio::spawn(writer);
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
        let request = Request {
            work: Work::One {
                id: id.clone(),
                draft,
                after,
            },
            reply: Reply::One(reply),
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
        let request = Request {
            work: Work::Batch {
                id: id.clone(),
                drafts,
                received,
            },
            reply: Reply::Batch(reply),
        };
        self.queue.send(request).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Error {
    Error::Internal("the database writer has stopped".into())
}

/// Where a group's appends are written.
#[derive(Debug, Clone)]
pub(crate) enum Writer {
    /// The single writer connection.
    Sqlite(SqlitePool),
    /// Also notifies the other instances of every committed group.
    Postgres(PgPool),
}

/// A committed group's events, in commit order (per operation, seq order).
pub(crate) type Committed = mpsc::UnboundedSender<Vec<(OperationId, Appended)>>;

/// The writer: one group after another until every [`Commits`] is gone.
async fn write(
    db: Writer,
    mut requests: mpsc::Receiver<Request>,
    publish: Committed,
    tally: Arc<Tally>,
    max_group: usize,
) {
    let mut group = Vec::with_capacity(max_group);
    while requests.recv_many(&mut group, max_group).await > 0 {
        let size = group.len() as u64;
        if commit(&db, std::mem::take(&mut group), &publish).await {
            tally.groups.fetch_add(1, Ordering::Relaxed);
            tally.appends.fetch_add(size, Ordering::Relaxed);
        }
        group.reserve(max_group);
    }
}

/// Runs one group in one transaction, then publishes and answers; `true`
/// if it committed.
async fn commit(db: &Writer, group: Vec<Request>, publish: &Committed) -> bool {
    let (works, replies): (Vec<Work>, Vec<Reply>) =
        group.into_iter().map(|r| (r.work, r.reply)).unzip();
    let planned = match db {
        Writer::Sqlite(pool) => sqlite::run(pool, works).await,
        Writer::Postgres(pool) => crate::postgres::run(pool, works).await,
    };
    match planned {
        Ok(plan) => {
            let events: Vec<_> = plan
                .outcomes
                .iter()
                .flat_map(|(id, outcome)| {
                    outcome
                        .appended()
                        .iter()
                        .map(|appended| (id.clone(), appended.clone()))
                })
                .collect();
            if !events.is_empty() {
                // Fails only when the publisher is gone: the server stops.
                let _ = publish.send(events);
            }
            for (reply, (_, outcome)) in replies.into_iter().zip(plan.outcomes) {
                reply.send(outcome);
            }
            true
        }
        Err(error) => {
            tracing::error!(error = %error, "a group commit failed; its appends are refused");
            let why = error.to_string();
            replies.into_iter().for_each(|r| r.fail(&why));
            false
        }
    }
}

/// A group's reads and writes on SQLite: a handful of statements whatever
/// its size (each statement is a round trip to SQLite's worker thread).
mod sqlite {
    use std::collections::HashMap;

    use optrail_core::{OperationId, Seq, Status};
    use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};

    use crate::error::Error;
    use crate::group::{self, Plan, Stream, Work};
    use crate::store::{seq_from_sql, seq_to_sql};

    /// Rows per multi-row statement, well under SQLite's 32 766 variables.
    const ROWS: usize = 500;

    pub(super) async fn run(pool: &SqlitePool, works: Vec<Work>) -> Result<Plan, Error> {
        let mut tx = pool.begin().await?;
        let streams = streams(&mut tx, &works).await?;
        let known = known(&mut tx, &works, &streams).await?;
        let plan = group::plan(works, streams, known);
        write(&mut tx, &plan).await?;
        tx.commit().await?;
        Ok(plan)
    }

    async fn streams(
        tx: &mut SqliteConnection,
        works: &[Work],
    ) -> Result<HashMap<OperationId, Stream>, Error> {
        let ids = group::operation_ids(works);
        let mut streams = HashMap::new();
        for chunk in ids.chunks(ROWS) {
            let mut query = QueryBuilder::<Sqlite>::new("SELECT ");
            query.push(group::STREAM_COLUMNS);
            query.push(" FROM operations WHERE id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            query.push(")");
            for row in query.build().fetch_all(&mut *tx).await? {
                let (id, stream) = Stream::from_row(&row)?;
                streams.insert(id, stream);
            }
        }
        Ok(streams)
    }

    /// The stored seqs of the event ids the works name.
    async fn known(
        tx: &mut SqliteConnection,
        works: &[Work],
        streams: &HashMap<OperationId, Stream>,
    ) -> Result<HashMap<(i64, String), Seq>, Error> {
        let pairs: Vec<(i64, &str)> = works
            .iter()
            .filter_map(|w| streams.get(w.operation()).map(|s| (s.num, w)))
            .flat_map(|(num, w)| w.event_ids().into_iter().map(move |id| (num, id)))
            .collect();
        let mut known = HashMap::new();
        for chunk in pairs.chunks(ROWS) {
            let mut query = known_query(chunk);
            for row in query.build().fetch_all(&mut *tx).await? {
                known.insert(
                    (row.try_get("operation_num")?, row.try_get("id")?),
                    seq_from_sql(row.try_get("seq")?)?,
                );
            }
        }
        Ok(known)
    }

    /// The stored seqs of `pairs` (operation, event id), each looked up in
    /// `events_by_id`: a row-value `IN` list made SQLite scan the whole
    /// index (or table) instead.
    fn known_query<'a>(pairs: &'a [(i64, &'a str)]) -> QueryBuilder<'a, Sqlite> {
        let mut query = QueryBuilder::<Sqlite>::new("SELECT e.operation_num, e.id, e.seq FROM (");
        query.push_values(pairs, |mut pair, (num, id)| {
            pair.push_bind(*num).push_bind(*id);
        });
        // CROSS JOIN: the listed pairs are the outer loop, whatever the
        // planner thinks of the table's size.
        query.push(
            ") AS k CROSS JOIN events AS e ON e.operation_num = k.column1 AND e.id = k.column2",
        );
        query
    }

    async fn write(tx: &mut SqliteConnection, plan: &Plan) -> Result<(), Error> {
        for chunk in plan.events.chunks(ROWS) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO events (operation_num, seq, id, type, message, happened_at, details, status) ",
            );
            insert.push_values(chunk, |mut row, event| {
                row.push_bind(event.num)
                    .push_bind(seq_to_sql(event.seq))
                    .push_bind(&event.id)
                    .push_bind(&event.kind)
                    .push_bind(&event.message)
                    .push_bind(event.happened_at)
                    .push_bind(&event.details)
                    .push_bind(event.status.map(Status::as_str));
            });
            insert.build().execute(&mut *tx).await?;
        }
        for chunk in plan.heads.chunks(ROWS) {
            let mut update = QueryBuilder::<Sqlite>::new(
                "UPDATE operations SET head = moved.column2, status = moved.column3,
                 updated_at = moved.column4, percent_complete = moved.column5 FROM (",
            );
            update.push_values(chunk, |mut row, head| {
                row.push_bind(head.num)
                    .push_bind(seq_to_sql(head.head))
                    .push_bind(head.status.as_str())
                    .push_bind(head.updated_at)
                    .push_bind(head.percent);
            });
            update.push(") AS moved WHERE operations.num = moved.column1");
            update.build().execute(&mut *tx).await?;
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use sqlx::sqlite::SqliteConnectOptions;

        use super::*;

        #[tokio::test]
        async fn known_event_ids_are_looked_up_in_their_index() {
            let dir = tempfile::tempdir().unwrap();
            let options = SqliteConnectOptions::new()
                .filename(dir.path().join("optrail.db"))
                .create_if_missing(true);
            let pool = SqlitePool::connect_with(options).await.unwrap();
            crate::store::migrate_sqlite(&pool).await.unwrap();
            let pairs = [(1, "a"), (1, "b"), (2, "c")];
            let sql = format!("EXPLAIN QUERY PLAN {}", known_query(&pairs).sql());
            let mut explain = sqlx::query(&sql);
            for (num, id) in pairs {
                explain = explain.bind(num).bind(id);
            }
            let plan: Vec<String> = explain
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|row| row.get("detail"))
                .collect();
            assert!(
                plan.iter()
                    .any(|step| step.contains("events_by_id (id=? AND operation_num=?)")),
                "{plan:?}"
            );
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN e")),
                "{plan:?}"
            );
        }
    }
}

/// Publishes committed groups in commit order, off the writer's path (a
/// hot operation's fan-out must not delay the next commit). SQLite's
/// publisher: on Postgres, [`crate::relay`] publishes.
pub(crate) async fn publish_all(
    bus: Arc<Bus>,
    mut committed: mpsc::UnboundedReceiver<Vec<(OperationId, Appended)>>,
) {
    while let Some(events) = committed.recv().await {
        for (id, appended) in events {
            // Nobody to push to: skip serializing. A subscriber registering
            // from now on reads a head that already covers this event.
            if bus.subscribers(&id) > 0 {
                bus.publish(Published::new(&id, &appended));
            }
        }
    }
}
