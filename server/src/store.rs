//! Operations and their event streams in SQLite (WAL mode), or in
//! PostgreSQL shared by several server instances ([`crate::postgres`]).
//!
//! All writes go through one connection, so transactions never fight over
//! SQLite's write lock; reads use a small pool of read-only connections that
//! see a consistent snapshot per transaction. [`Store::append`] assigns
//! `seq = head + 1` and moves `head` in the transaction that inserts the
//! event: seqs are gap-free, and the runner's step (which is `head`)
//! survives any restart together with the event it produced. Appends of
//! all operations that wait at the same time share one transaction (group
//! commit, [`crate::commit`]), and the store publishes what it committed
//! to its [`Bus`] after the commit, in seq order per operation.

use std::borrow::Cow;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use optrail_core::{
    Epoch, Event, EventId, EventType, EventsPage, Operation, OperationId, OperationList, Seq,
    Status, Timestamp,
};
use serde_json::{Map, Value};
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::PgPool;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ColumnIndex, Decode, Row, Type};
use tokio::sync::mpsc;

use crate::auth::{Audience, Owner};
use crate::bus::Bus;
use crate::commit::{CommitStats, Commits, MAX_GROUP, Writer, publish_all};
use crate::config::Durability;
use crate::error::Error;
use crate::postgres::Shared;

/// The schema, embedded so the binary carries it (and without sqlx's
/// proc macros, which would build SQLite a second time for the host).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "operations and events",
        include_str!("../migrations/0001_operations_and_events.sql"),
    ),
    (
        2,
        "owners, publishers, terminal status",
        include_str!("../migrations/0002_owners_publishers_terminal_status.sql"),
    ),
    (
        3,
        "events in append order",
        include_str!("../migrations/0003_events_in_append_order.sql"),
    ),
    (
        4,
        "event ids first",
        include_str!("../migrations/0004_event_ids_first.sql"),
    ),
];

/// A database's migrations, embedded in the binary.
#[derive(Debug)]
pub(crate) struct EmbeddedMigrations(pub &'static [(i64, &'static str, &'static str)]);

impl MigrationSource<'static> for EmbeddedMigrations {
    fn resolve(
        self,
    ) -> Pin<
        Box<dyn Future<Output = Result<Vec<Migration>, sqlx::error::BoxDynError>> + Send + 'static>,
    > {
        Box::pin(async {
            Ok(self
                .0
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// Brings a SQLite database to the current schema.
pub(crate) async fn migrate_sqlite(pool: &SqlitePool) -> Result<(), Error> {
    Migrator::new(EmbeddedMigrations(MIGRATIONS))
        .await?
        .run(pool)
        .await?;
    Ok(())
}

/// A new operation, before its first event.
#[derive(Debug, Clone)]
pub struct NewOperation {
    pub id: OperationId,
    pub owner: Owner,
    /// Fed by a publisher (true) or simulated by the runner (false).
    pub fed: bool,
    pub kind: String,
    /// Normalized: every field the run uses, defaults filled in.
    pub params: Value,
    /// The run's plan (failure point, worker, reason) derives from it.
    pub seed: u64,
    pub created_at: Timestamp,
}

/// An event before the store gives it its seq.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub id: EventId,
    pub kind: EventType,
    pub message: String,
    pub happened_at: Timestamp,
    pub details: Map<String, Value>,
    /// The operation's status once this event is committed; a terminal
    /// one is also stored with the event and sent with it.
    pub status: Status,
}

/// What an idempotent batch append did.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The seq of each draft, in the batch's order: new or stored before.
    pub seqs: Vec<Seq>,
    /// The events this call committed, in seq order: what to publish.
    pub appended: Vec<Appended>,
    /// Where the stream stands after the batch.
    pub head: StreamHead,
}

/// A committed event and where its stream stands.
#[derive(Debug, Clone)]
pub struct Appended {
    pub event: Event,
    pub epoch: Epoch,
    pub status: Status,
}

/// What `subscribe` reads after registering.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamHead {
    pub epoch: Epoch,
    pub head: Seq,
    pub status: Status,
}

/// An operation whose run has not finished: what the runner needs to resume.
#[derive(Debug, Clone)]
pub struct Unfinished {
    pub id: OperationId,
    pub kind: String,
    pub params: Value,
    pub seed: u64,
    pub head: Seq,
}

#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    /// Where appends wait for the next group commit.
    commits: Commits,
    /// Where committed events are published, after their commit.
    bus: Arc<Bus>,
    /// Postgres only: which operations' runs this instance holds.
    shared: Option<Arc<Shared>>,
}

/// The database behind a store.
#[derive(Debug, Clone)]
enum Db {
    /// One file: a single writer connection and a few readers.
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
    },
    /// Shared by any number of server instances.
    Postgres(PgPool),
}

/// Runs one body against either database: `sql("… ? …")` gives the
/// statement with `?` placeholders (SQLite) or `$1, $2, …` (Postgres), and
/// `$pool` is SQLite's `$side` pool or Postgres's pool.
macro_rules! on_db {
    ($db:expr, $side:ident, |$pool:ident, $sql:ident| $body:expr) => {
        match $db {
            Db::Sqlite { $side: $pool, .. } => {
                let $sql = |text: &str| text.to_owned();
                $body
            }
            Db::Postgres($pool) => {
                let $sql = numbered;
                $body
            }
        }
    };
}

/// `?` placeholders as Postgres's `$1, $2, …` (our statements have no `?`
/// inside literals).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// `--database`: a `postgres://` (or `postgresql://`) URL, else a file.
pub fn is_postgres_url(database: &Path) -> bool {
    database
        .to_str()
        .is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

impl Store {
    /// Opens (creating if needed) the database file and its directory, and
    /// brings the schema up to date. A `postgres://` URL opens PostgreSQL.
    pub async fn open(path: &Path, durability: Durability) -> Result<Store, Error> {
        Self::open_grouped(path, durability, MAX_GROUP).await
    }

    /// [`Store::open`], with at most `max_group` appends per transaction.
    pub async fn open_grouped(
        path: &Path,
        durability: Durability,
        max_group: usize,
    ) -> Result<Store, Error> {
        if is_postgres_url(path) {
            let url = path.to_str().unwrap_or_default();
            let opened = crate::postgres::open(url, max_group).await?;
            return Ok(Store {
                db: Db::Postgres(opened.pool),
                commits: opened.commits,
                bus: opened.bus,
                shared: Some(Arc::new(opened.shared)),
            });
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                Error::Internal(format!("cannot create directory {}: {e}", parent.display()))
            })?;
        }
        let base = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(Duration::from_secs(5));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // A file cannot drop the connection: no ping (a round trip to
            // SQLite's worker thread) before every group and every insert.
            .test_before_acquire(false)
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    // A group commit writes every page its appends touched:
                    // the new events' few pages, and about one index leaf
                    // per operation in the group (`events_by_seq`). Small
                    // pages write less. It applies to new databases only.
                    .page_size(1024)
                    // Checkpoint after 16 MiB of WAL rather than 1 000 pages:
                    // a hot page is copied to the database once per
                    // checkpoint, however often it was committed.
                    .pragma("wal_autocheckpoint", "16000")
                    .journal_mode(SqliteJournalMode::Wal)
                    // FULL: a commit is on the disk before it is published.
                    // NORMAL survives a crash of the process but not a power
                    // cut; it is only ever an explicit choice.
                    .synchronous(match durability {
                        Durability::Full => SqliteSynchronous::Full,
                        Durability::Normal => SqliteSynchronous::Normal,
                    }),
            )
            .await?;
        migrate_sqlite(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(base.read_only(true))
            .await?;
        let bus = Arc::new(Bus::new());
        let (committed, to_publish) = mpsc::unbounded_channel();
        tokio::spawn(publish_all(bus.clone(), to_publish));
        let commits = Commits::spawn(Writer::Sqlite(writer.clone()), committed, max_group);
        Ok(Store {
            db: Db::Sqlite { writer, reader },
            commits,
            bus,
            shared: None,
        })
    }

    /// Whether other server instances may share the database (Postgres):
    /// runs are then claimed before they start.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Takes the run of operation `id` for this instance; `false` if
    /// another live instance holds it. Always `true` on SQLite.
    pub async fn claim(&self, id: &OperationId) -> bool {
        match &self.shared {
            Some(shared) => shared.claim(id).await,
            None => true,
        }
    }

    /// Gives the run of `id` up (it ended here).
    pub async fn release(&self, id: &OperationId) {
        if let Some(shared) = &self.shared {
            shared.release(id).await;
        }
    }

    /// Before a subscriber reads the head: makes sure this instance relays
    /// every event of `id` committed from now on, by any instance. A no-op
    /// on SQLite, where every commit is this process's own.
    pub async fn watch(&self, id: &OperationId) {
        if let Some(shared) = &self.shared {
            shared.watch(id).await;
        }
    }

    /// How the appends so far were grouped into transactions.
    pub fn commit_stats(&self) -> CommitStats {
        self.commits.stats()
    }

    /// The fan-out of this store's committed events to live connections.
    pub fn bus(&self) -> &Arc<Bus> {
        &self.bus
    }

    /// What the writer's commits wait for, as the database reports it.
    pub async fn durability(&self) -> Result<Durability, Error> {
        let writer = match &self.db {
            Db::Sqlite { writer, .. } => writer,
            Db::Postgres(pool) => {
                let setting: String = sqlx::query_scalar("SHOW synchronous_commit")
                    .fetch_one(pool)
                    .await?;
                return Ok(match setting.as_str() {
                    "off" => Durability::Normal,
                    _ => Durability::Full,
                });
            }
        };
        let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(writer)
            .await?;
        match level {
            2 | 3 => Ok(Durability::Full),
            1 => Ok(Durability::Normal),
            other => Err(Error::Internal(format!(
                "the database runs with synchronous = {other}"
            ))),
        }
    }

    /// Waits for in-flight queries and closes every connection.
    pub async fn close(&self) {
        if let Some(shared) = &self.shared {
            shared.close().await;
        }
        match &self.db {
            Db::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }

    pub async fn create(&self, new: &NewOperation) -> Result<Operation, Error> {
        let params = serde_json::to_string(&new.params)
            .map_err(|e| Error::Internal(format!("params do not serialize: {e}")))?;
        on_db!(&self.db, writer, |pool, sql| {
            sqlx::query(&sql(
                "INSERT INTO operations (id, owner, fed, kind, status, created_at, updated_at, params, seed)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(new.id.as_str())
            .bind(new.owner.as_str())
            .bind(i64::from(new.fed))
            .bind(&new.kind)
            .bind(Status::NotStarted.as_str())
            .bind(new.created_at.millis())
            .bind(new.created_at.millis())
            .bind(&params)
            .bind(seed_to_sql(new.seed))
            .execute(pool)
            .await
            .map(drop)?
        });
        Ok(Operation {
            id: new.id.clone(),
            kind: new.kind.clone(),
            status: Status::NotStarted,
            created_at: new.created_at,
            updated_at: new.created_at,
            epoch: Epoch(1),
            head: Seq::ZERO,
            percent_complete: None,
            params: new.params.clone(),
        })
    }

    /// A publisher's create, idempotent by id: the same id, owner and kind
    /// again returns the stored operation (`false`: not created now);
    /// another owner or kind is `operation_exists`.
    pub async fn create_fed(&self, new: &NewOperation) -> Result<(Operation, bool), Error> {
        match self.create(new).await {
            Ok(operation) => Ok((operation, true)),
            Err(Error::Storage(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                let operation = on_db!(&self.db, writer, |pool, sql| {
                    let row = sqlx::query(&sql(&format!(
                        "{OPERATION_COLUMNS} WHERE id = ? AND owner = ? AND kind = ? AND fed = 1"
                    )))
                    .bind(new.id.as_str())
                    .bind(new.owner.as_str())
                    .bind(&new.kind)
                    .fetch_optional(pool)
                    .await?;
                    row.as_ref().map(operation_from_row).transpose()?
                });
                match operation {
                    Some(operation) => Ok((operation, false)),
                    None => Err(Error::OperationExists(new.id.clone())),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Appends one event: `seq = head + 1`, in one transaction with the
    /// operation's new head and status, and publishes it after the commit.
    /// Refuses to append after a terminal event, and, with `after`, unless
    /// the head is still `after`: a run's step is its head, so a step
    /// computed from a stale head (another writer, a late commit of a
    /// crashed process) must not be stored. The transaction is shared with
    /// the appends of other operations waiting at the same time (see
    /// [`commit`](crate::commit)).
    pub async fn append(
        &self,
        id: &OperationId,
        draft: EventDraft,
        after: Option<Seq>,
    ) -> Result<Appended, Error> {
        self.commits.append(id, draft, after).await
    }

    /// Appends a publisher's batch atomically, in order, each new event at
    /// `head + 1`, and publishes what it stored after the commit.
    /// Idempotent by event id: an id the operation already has is not
    /// stored again, its seq is returned (so a retried batch gets the same
    /// seqs and creates nothing). A new event after a terminal one refuses
    /// the whole batch (`operation_finished`). `received` becomes the
    /// operation's `updatedAt`: a publisher's `happenedAt` may lie in the
    /// past, and retention counts from it.
    pub async fn append_batch(
        &self,
        id: &OperationId,
        drafts: Vec<EventDraft>,
        received: Timestamp,
    ) -> Result<Batch, Error> {
        self.commits.append_batch(id, drafts, received).await
    }

    /// The operation, if `audience` may see it: an operation of another
    /// owner is `None`, exactly like one that does not exist.
    pub async fn operation(
        &self,
        id: &OperationId,
        audience: &Audience,
    ) -> Result<Option<Operation>, Error> {
        on_db!(&self.db, reader, |pool, sql| {
            let row = sqlx::query(&sql(&format!("{OPERATION_COLUMNS} WHERE id = ? {VISIBLE}")))
                .bind(id.as_str())
                .bind(audience.owner())
                .bind(audience.owner())
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(operation_from_row).transpose()
        })
    }

    /// Whether the operation is publisher-fed, if `audience` may see it.
    pub async fn is_fed(
        &self,
        id: &OperationId,
        audience: &Audience,
    ) -> Result<Option<bool>, Error> {
        on_db!(&self.db, reader, |pool, sql| {
            let row = sqlx::query(&sql(&format!(
                "SELECT fed FROM operations WHERE id = ? {VISIBLE}"
            )))
            .bind(id.as_str())
            .bind(audience.owner())
            .bind(audience.owner())
            .fetch_optional(pool)
            .await?;
            row.map(|row| Ok(row.try_get::<i64, _>("fed")? != 0))
                .transpose()
        })
    }

    /// Newest first, only what `audience` may see; `before` is the
    /// `nextBefore` of the previous page.
    pub async fn list(
        &self,
        audience: &Audience,
        before: Option<i64>,
        limit: u32,
    ) -> Result<OperationList, Error> {
        on_db!(&self.db, reader, |pool, sql| {
            let rows = sqlx::query(&sql(&format!(
                "{OPERATION_COLUMNS} WHERE num < ? {VISIBLE} ORDER BY num DESC LIMIT ?"
            )))
            .bind(before.unwrap_or(i64::MAX))
            .bind(audience.owner())
            .bind(audience.owner())
            .bind(i64::from(limit) + 1)
            .fetch_all(pool)
            .await?;
            let more = rows.len() > limit as usize;
            let rows = &rows[..rows.len().min(limit as usize)];
            let next_before = match rows.last() {
                Some(last) if more => Some(last.try_get::<i64, _>("num")?.to_string()),
                _ => None,
            };
            Ok(OperationList {
                operations: rows
                    .iter()
                    .map(operation_from_row)
                    .collect::<Result<_, _>>()?,
                next_before,
            })
        })
    }

    /// Where the stream stands, or `None` for an operation that does not
    /// exist or that `audience` may not see.
    pub async fn head(
        &self,
        id: &OperationId,
        audience: &Audience,
    ) -> Result<Option<StreamHead>, Error> {
        on_db!(&self.db, reader, |pool, sql| {
            let row = sqlx::query(&sql(&format!(
                "SELECT epoch, head, status FROM operations WHERE id = ? {VISIBLE}"
            )))
            .bind(id.as_str())
            .bind(audience.owner())
            .bind(audience.owner())
            .fetch_optional(pool)
            .await?;
            row.map(|row| {
                Ok(StreamHead {
                    epoch: epoch_from_sql(row.try_get("epoch")?)?,
                    head: seq_from_sql(row.try_get("head")?)?,
                    status: parse_status(&row.try_get::<String, _>("status")?)?,
                })
            })
            .transpose()
        })
    }

    /// Events with `seq > after`, at most `limit`, read in one snapshot with
    /// the head and status they are reported with.
    pub async fn events(
        &self,
        id: &OperationId,
        audience: &Audience,
        after: Seq,
        limit: u32,
    ) -> Result<Option<EventsPage>, Error> {
        on_db!(&self.db, reader, |pool, sql| {
            let mut tx = pool.begin().await?;
            if let Db::Postgres(_) = &self.db {
                // The head and the events in one snapshot, as on SQLite.
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await?;
            }
            let Some(row) = sqlx::query(&sql(&format!(
                "SELECT num, kind, epoch, head, status FROM operations WHERE id = ? {VISIBLE}"
            )))
            .bind(id.as_str())
            .bind(audience.owner())
            .bind(audience.owner())
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(None);
            };
            let num: i64 = row.try_get("num")?;
            let head = seq_from_sql(row.try_get("head")?)?;
            let rows = sqlx::query(&sql(
                "SELECT seq, id, type, message, happened_at, details, status FROM events
                 WHERE operation_num = ? AND seq > ? ORDER BY seq LIMIT ?",
            ))
            .bind(num)
            .bind(seq_to_sql(after))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            let events = rows
                .iter()
                .map(event_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            let last = events
                .last()
                .and_then(|e| e.seq)
                .unwrap_or(after)
                .max(after);
            Ok(Some(EventsPage {
                operation_id: id.clone(),
                kind: row.try_get("kind")?,
                epoch: epoch_from_sql(row.try_get("epoch")?)?,
                head,
                status: parse_status(&row.try_get::<String, _>("status")?)?,
                events,
                has_more: last < head,
                unreadable: 0,
            }))
        })
    }

    /// Simulated operations whose run must continue (after a restart).
    /// Publisher-fed ones are their publisher's to continue.
    pub async fn unfinished(&self) -> Result<Vec<Unfinished>, Error> {
        on_db!(&self.db, writer, |pool, sql| {
            let rows = sqlx::query(&sql("SELECT id, kind, params, seed, head FROM operations
                 WHERE status IN ('NotStarted', 'Running') AND fed = 0 ORDER BY num"))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(Unfinished {
                        id: OperationId(row.try_get("id")?),
                        kind: row.try_get("kind")?,
                        params: parse_json(&row.try_get::<String, _>("params")?)?,
                        seed: seed_from_sql(row.try_get("seed")?),
                        head: seq_from_sql(row.try_get("head")?)?,
                    })
                })
                .collect()
        })
    }

    /// Removes up to `limit` finished operations last updated before `cutoff`,
    /// with their events, in one transaction; returns how many. Small
    /// batches keep the single writer free for appends.
    pub async fn remove_finished_before(
        &self,
        cutoff: Timestamp,
        limit: u32,
    ) -> Result<u64, Error> {
        on_db!(&self.db, writer, |pool, sql| {
            let mut tx = pool.begin().await?;
            let nums: Vec<i64> = sqlx::query_scalar(&sql("SELECT num FROM operations
                 WHERE status IN ('Succeeded', 'Failed', 'Canceled') AND updated_at < ?
                 ORDER BY updated_at LIMIT ?"))
            .bind(cutoff.millis())
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
            for &num in &nums {
                sqlx::query(&sql("DELETE FROM events WHERE operation_num = ?"))
                    .bind(num)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&sql("DELETE FROM operations WHERE num = ?"))
                    .bind(num)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(nums.len() as u64)
        })
    }
}

/// A row of either database.
pub(crate) trait StoredRow: Row {}
impl StoredRow for sqlx::sqlite::SqliteRow {}
impl StoredRow for sqlx::postgres::PgRow {}

/// The visibility filter after a `WHERE`: bind the audience's owner twice.
const VISIBLE: &str = "AND (? IS NULL OR owner = ?)";

const OPERATION_COLUMNS: &str = "SELECT num, id, kind, status, created_at, updated_at, epoch, head, \
     percent_complete, params FROM operations";

fn operation_from_row<R: StoredRow>(row: &R) -> Result<Operation, Error>
where
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> f64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(Operation {
        id: OperationId(row.try_get("id")?),
        kind: row.try_get("kind")?,
        status: parse_status(&row.try_get::<String, _>("status")?)?,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
        updated_at: Timestamp::from_millis(row.try_get("updated_at")?),
        epoch: epoch_from_sql(row.try_get("epoch")?)?,
        head: seq_from_sql(row.try_get("head")?)?,
        percent_complete: row.try_get("percent_complete")?,
        params: parse_json(&row.try_get::<String, _>("params")?)?,
    })
}

pub(crate) fn event_from_row<R: StoredRow>(row: &R) -> Result<Event, Error>
where
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let details = match parse_json(&row.try_get::<String, _>("details")?)? {
        Value::Object(map) => map,
        other => {
            return Err(Error::Internal(format!(
                "stored details {other} are not an object"
            )));
        }
    };
    Ok(Event {
        id: EventId(row.try_get("id")?),
        seq: Some(seq_from_sql(row.try_get("seq")?)?),
        kind: EventType(row.try_get("type")?),
        message: row.try_get("message")?,
        happened_at: Timestamp::from_millis(row.try_get("happened_at")?),
        sub_ms_ns: 0,
        details,
        status: row
            .try_get::<Option<String>, _>("status")?
            .as_deref()
            .map(parse_status)
            .transpose()?,
    })
}

pub(crate) fn parse_json(text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::Internal(format!("stored JSON is corrupt: {e}")))
}

/// A status read back from the database ([`Status::as_str`] wrote it); an
/// unknown one means the data is corrupt.
pub(crate) fn parse_status(name: &str) -> Result<Status, Error> {
    name.parse()
        .map_err(|_| Error::Internal(format!("stored status {name:?} is unknown")))
}

/// SQLite integers are i64; seqs never get near 2^63, and a seq read back
/// negative means the file was tampered with.
pub(crate) fn seq_to_sql(seq: Seq) -> i64 {
    i64::try_from(seq.0).unwrap_or(i64::MAX)
}

pub(crate) fn seq_from_sql(value: i64) -> Result<Seq, Error> {
    u64::try_from(value)
        .map(Seq)
        .map_err(|_| Error::Internal(format!("stored seq {value} is negative")))
}

pub(crate) fn epoch_from_sql(value: i64) -> Result<Epoch, Error> {
    u64::try_from(value)
        .ok()
        .filter(|&e| e >= 1)
        .map(Epoch)
        .ok_or_else(|| Error::Internal(format!("stored epoch {value} is not ≥ 1")))
}

/// Seeds are any 64 bits; SQLite keeps them as the same bits in an i64.
pub(crate) fn seed_to_sql(seed: u64) -> i64 {
    i64::from_ne_bytes(seed.to_ne_bytes())
}

pub(crate) fn seed_from_sql(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database of the schema before migration 3 (events clustered by
    /// operation and seq) keeps every event, in seq order, with its
    /// terminal status, and its ids stay idempotent.
    #[tokio::test]
    async fn events_stored_before_the_append_order_migration_are_kept() {
        const ID: &str = "0123456789abcdef0123456789abcdef";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optrail.db");
        let old = SqlitePool::connect_with(
            SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true),
        )
        .await
        .unwrap();
        Migrator::new(EmbeddedMigrations(&MIGRATIONS[..2]))
            .await
            .unwrap()
            .run(&old)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO operations (num, id, fed, kind, status, created_at, updated_at, head, params, seed)
             VALUES (1, ?, 1, 'deployment', 'Succeeded', 0, 0, 3, '{}', 0)",
        )
        .bind(ID)
        .execute(&old)
        .await
        .unwrap();
        for (seq, id, status) in [(2, "b", None), (3, "c", Some("Succeeded")), (1, "a", None)] {
            sqlx::query(
                "INSERT INTO events (operation_num, seq, id, type, message, happened_at, details, status)
                 VALUES (1, ?, ?, 'Step', ?, 0, '{}', ?)",
            )
            .bind(seq)
            .bind(id)
            .bind(format!("step {seq}"))
            .bind(status)
            .execute(&old)
            .await
            .unwrap();
        }
        old.close().await;

        let store = Store::open(&path, Durability::Full).await.unwrap();
        let id = OperationId::from(ID);
        let page = store
            .events(&id, &Audience::All, Seq::ZERO, 10)
            .await
            .unwrap()
            .unwrap();
        let shown: Vec<_> = page
            .events
            .iter()
            .map(|e| (e.seq, e.id.0.as_str(), e.message.as_str(), e.status))
            .collect();
        assert_eq!(
            shown,
            [
                (Some(Seq(1)), "a", "step 1", None),
                (Some(Seq(2)), "b", "step 2", None),
                (Some(Seq(3)), "c", "step 3", Some(Status::Succeeded)),
            ]
        );
        let again = EventDraft {
            id: EventId("b".into()),
            kind: EventType::from("Step"),
            message: "step 2".into(),
            happened_at: Timestamp::from_millis(0),
            details: Map::new(),
            status: Status::Running,
        };
        let batch = store
            .append_batch(&id, vec![again], Timestamp::from_millis(1))
            .await
            .unwrap();
        assert_eq!(batch.seqs, [Seq(2)]);
        assert!(batch.appended.is_empty());
    }

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            numbered("WHERE id = ? AND (? IS NULL OR owner = ?)"),
            "WHERE id = $1 AND ($2 IS NULL OR owner = $3)"
        );
    }
}
