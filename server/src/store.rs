//! Operations and their event streams in SQLite (WAL mode).
//!
//! All writes go through one connection, so transactions never fight over
//! SQLite's write lock; reads use a small pool of read-only connections that
//! see a consistent snapshot per transaction. [`Store::append`] assigns
//! `seq = head + 1` and moves `head` in the transaction that inserts the
//! event: seqs are gap-free, and the runner's step (which is `head`)
//! survives any restart together with the event it produced.

use std::borrow::Cow;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use optrail_core::{
    Epoch, Event, EventId, EventType, EventsPage, Operation, OperationId, OperationList, Seq,
    Status, Timestamp,
};
use serde_json::{Map, Value};
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use crate::error::Error;

/// The schema, embedded so the binary carries it (and without sqlx's
/// proc macros, which would build SQLite a second time for the host).
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "operations and events",
    include_str!("../migrations/0001_operations_and_events.sql"),
)];

#[derive(Debug)]
struct EmbeddedMigrations;

impl MigrationSource<'static> for EmbeddedMigrations {
    fn resolve(
        self,
    ) -> Pin<
        Box<dyn Future<Output = Result<Vec<Migration>, sqlx::error::BoxDynError>> + Send + 'static>,
    > {
        Box::pin(async {
            Ok(MIGRATIONS
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

/// A new operation, before its first event.
#[derive(Debug, Clone)]
pub struct NewOperation {
    pub id: OperationId,
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
    /// The operation's status once this event is committed.
    pub status: Status,
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
    writer: SqlitePool,
    reader: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database file and its directory, and
    /// brings the schema up to date.
    pub async fn open(path: &Path) -> Result<Store, Error> {
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
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // WAL + NORMAL: a commit survives a crash of the process
                    // (the OS has it); only a power cut may lose the last ones.
                    .synchronous(SqliteSynchronous::Normal),
            )
            .await?;
        Migrator::new(EmbeddedMigrations)
            .await?
            .run(&writer)
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(base.read_only(true))
            .await?;
        Ok(Store { writer, reader })
    }

    /// Waits for in-flight queries and closes every connection.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    pub async fn create(&self, new: &NewOperation) -> Result<Operation, Error> {
        let params = serde_json::to_string(&new.params)
            .map_err(|e| Error::Internal(format!("params do not serialize: {e}")))?;
        sqlx::query(
            "INSERT INTO operations (id, kind, status, created_at, updated_at, params, seed)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(new.id.as_str())
        .bind(&new.kind)
        .bind(status_name(Status::NotStarted))
        .bind(new.created_at.millis())
        .bind(new.created_at.millis())
        .bind(params)
        .bind(seed_to_sql(new.seed))
        .execute(&self.writer)
        .await?;
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

    /// Appends one event: `seq = head + 1`, in one transaction with the
    /// operation's new head and status. Refuses to append after a terminal
    /// event.
    pub async fn append(&self, id: &OperationId, draft: EventDraft) -> Result<Appended, Error> {
        let details = serde_json::to_string(&draft.details)
            .map_err(|e| Error::Internal(format!("event details do not serialize: {e}")))?;
        let percentage = draft.details.get("percentage").and_then(Value::as_f64);
        let mut tx = self.writer.begin().await?;
        // Moving the head first both takes the seq and refuses a finished
        // operation, in one statement.
        let moved = sqlx::query(
            "UPDATE operations
             SET head = head + 1, status = ?, updated_at = ?,
                 percent_complete = COALESCE(?, percent_complete)
             WHERE id = ? AND status IN ('NotStarted', 'Running')
             RETURNING num, head, epoch",
        )
        .bind(status_name(draft.status))
        .bind(draft.happened_at.millis())
        .bind(percentage)
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = moved else {
            tx.rollback().await?;
            return Err(match self.head(id).await? {
                Some(_) => Error::OperationFinished(id.clone()),
                None => Error::OperationNotFound(id.clone()),
            });
        };
        let num: i64 = row.try_get("num")?;
        let seq = seq_from_sql(row.try_get("head")?)?;
        let epoch = epoch_from_sql(row.try_get("epoch")?)?;
        sqlx::query(
            "INSERT INTO events (operation_num, seq, id, type, message, happened_at, details)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(num)
        .bind(seq_to_sql(seq))
        .bind(&draft.id.0)
        .bind(draft.kind.as_str())
        .bind(&draft.message)
        .bind(draft.happened_at.millis())
        .bind(&details)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Appended {
            event: Event {
                id: draft.id,
                seq: Some(seq),
                kind: draft.kind,
                message: draft.message,
                happened_at: draft.happened_at,
                details: draft.details,
            },
            epoch,
            status: draft.status,
        })
    }

    pub async fn operation(&self, id: &OperationId) -> Result<Option<Operation>, Error> {
        let row = sqlx::query(&format!("{OPERATION_COLUMNS} WHERE id = ?"))
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(operation_from_row).transpose()
    }

    /// Newest first; `before` is the `nextBefore` of the previous page.
    pub async fn list(&self, before: Option<i64>, limit: u32) -> Result<OperationList, Error> {
        let rows = sqlx::query(&format!(
            "{OPERATION_COLUMNS} WHERE num < ? ORDER BY num DESC LIMIT ?"
        ))
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.reader)
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
    }

    /// Where the stream stands, or `None` for an unknown operation.
    pub async fn head(&self, id: &OperationId) -> Result<Option<StreamHead>, Error> {
        let row = sqlx::query("SELECT epoch, head, status FROM operations WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.map(|row| {
            Ok(StreamHead {
                epoch: epoch_from_sql(row.try_get("epoch")?)?,
                head: seq_from_sql(row.try_get("head")?)?,
                status: parse_status(&row.try_get::<String, _>("status")?)?,
            })
        })
        .transpose()
    }

    /// Events with `seq > after`, at most `limit`, read in one snapshot with
    /// the head and status they are reported with.
    pub async fn events(
        &self,
        id: &OperationId,
        after: Seq,
        limit: u32,
    ) -> Result<Option<EventsPage>, Error> {
        let mut tx: Transaction<'_, Sqlite> = self.reader.begin().await?;
        let Some(row) =
            sqlx::query("SELECT num, kind, epoch, head, status FROM operations WHERE id = ?")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(None);
        };
        let num: i64 = row.try_get("num")?;
        let head = seq_from_sql(row.try_get("head")?)?;
        let rows = sqlx::query(
            "SELECT seq, id, type, message, happened_at, details FROM events
             WHERE operation_num = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
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
        }))
    }

    /// Operations whose run must continue (after a restart).
    pub async fn unfinished(&self) -> Result<Vec<Unfinished>, Error> {
        let rows = sqlx::query(
            "SELECT id, kind, params, seed, head FROM operations
             WHERE status IN ('NotStarted', 'Running') ORDER BY num",
        )
        .fetch_all(&self.writer)
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
    }
}

const OPERATION_COLUMNS: &str = "SELECT num, id, kind, status, created_at, updated_at, epoch, head, \
     percent_complete, params FROM operations";

fn operation_from_row(row: &SqliteRow) -> Result<Operation, Error> {
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

fn event_from_row(row: &SqliteRow) -> Result<Event, Error> {
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
        details,
    })
}

fn parse_json(text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::Internal(format!("stored JSON is corrupt: {e}")))
}

pub(crate) fn status_name(status: Status) -> &'static str {
    match status {
        Status::NotStarted => "NotStarted",
        Status::Running => "Running",
        Status::Succeeded => "Succeeded",
        Status::Failed => "Failed",
        Status::Canceled => "Canceled",
    }
}

fn parse_status(name: &str) -> Result<Status, Error> {
    Ok(match name {
        "NotStarted" => Status::NotStarted,
        "Running" => Status::Running,
        "Succeeded" => Status::Succeeded,
        "Failed" => Status::Failed,
        "Canceled" => Status::Canceled,
        other => {
            return Err(Error::Internal(format!(
                "stored status {other:?} is unknown"
            )));
        }
    })
}

/// SQLite integers are i64; seqs never get near 2^63, and a seq read back
/// negative means the file was tampered with.
fn seq_to_sql(seq: Seq) -> i64 {
    i64::try_from(seq.0).unwrap_or(i64::MAX)
}

fn seq_from_sql(value: i64) -> Result<Seq, Error> {
    u64::try_from(value)
        .map(Seq)
        .map_err(|_| Error::Internal(format!("stored seq {value} is negative")))
}

fn epoch_from_sql(value: i64) -> Result<Epoch, Error> {
    u64::try_from(value)
        .ok()
        .filter(|&e| e >= 1)
        .map(Epoch)
        .ok_or_else(|| Error::Internal(format!("stored epoch {value} is not ≥ 1")))
}

/// Seeds are any 64 bits; SQLite keeps them as the same bits in an i64.
fn seed_to_sql(seed: u64) -> i64 {
    i64::from_ne_bytes(seed.to_ne_bytes())
}

fn seed_from_sql(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes())
}
