//! PostgreSQL, shared by any number of server instances.
//!
//! The same store as on SQLite (see [`crate::store`]) with three additions:
//!
//! - **Group commits lock and notify.** A group locks its operations' rows
//!   (`FOR UPDATE`, in id order so that two instances' groups never
//!   deadlock), plans in memory ([`crate::group`]), writes with a few
//!   array statements, and before committing sends `pg_notify` with only
//!   `(operation, head)` lines: never event bodies, so payloads stay far
//!   under the 8 000-byte limit and NOTIFY's commit-time lock stays short.
//!   Seq is still assigned in the inserting transaction.
//! - **Each instance relays** ([`crate::relay`]): it reads the events a
//!   notification announces once for all of its subscribers, and catches
//!   up from the database when its listener reconnects.
//! - **Runs are claimed** with session advisory locks on one connection:
//!   exactly one live instance runs a simulated operation; when it dies,
//!   its connection closes, the lock goes, and another instance adopts the
//!   run from its stored head (the head check of each append makes every
//!   step land once, whatever happens).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use optrail_core::{OperationId, Seq, Status};
use sqlx::postgres::{PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::{Connection, Row};
use tokio::sync::{Mutex, mpsc};

use crate::bus::Bus;
use crate::commit::{Commits, Writer};
use crate::error::Error;
use crate::group::{self, Plan, Stream, Work};
use crate::relay::{self, Relay};
use crate::store::{seq_from_sql, seq_to_sql};

/// The notification channel; payload: `operation head` lines.
pub(crate) const CHANNEL: &str = "optrail_heads";

/// Keeps a payload well under PostgreSQL's 8 000 bytes.
const PAYLOAD_BYTES: usize = 7000;

/// The schema, embedded like SQLite's.
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "schema",
        include_str!("../migrations/postgres/0001_schema.sql"),
    ),
    (
        2,
        "event ids first",
        include_str!("../migrations/postgres/0002_event_ids_first.sql"),
    ),
];

/// What [`crate::store::Store::open`] needs from a Postgres database.
pub(crate) struct Opened {
    pub pool: PgPool,
    pub commits: Commits,
    pub bus: Arc<Bus>,
    pub shared: Shared,
}

/// This instance's part in sharing the database: its run claims and its
/// relay.
#[derive(Debug)]
pub struct Shared {
    claims: Mutex<Option<PgConnection>>,
    relay: Relay,
}

pub(crate) async fn open(url: &str, max_group: usize) -> Result<Opened, Error> {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await?;
    // sqlx's migrator takes an advisory lock: instances starting together
    // migrate once.
    sqlx::migrate::Migrator::new(crate::store::EmbeddedMigrations(MIGRATIONS))
        .await?
        .run(&pool)
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    let claims = PgConnection::connect(url).await?;
    let bus = Arc::new(Bus::new());
    let (committed, local) = mpsc::unbounded_channel();
    let relay = relay::spawn(pool.clone(), bus.clone(), listener, local);
    let commits = Commits::spawn(Writer::Postgres(pool.clone()), committed, max_group);
    Ok(Opened {
        pool,
        commits,
        bus,
        shared: Shared {
            claims: Mutex::new(Some(claims)),
            relay,
        },
    })
}

impl Shared {
    pub(crate) async fn claim(&self, id: &OperationId) -> bool {
        let mut claims = self.claims.lock().await;
        let Some(connection) = claims.as_mut() else {
            return false;
        };
        let taken =
            sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(id.as_str())
                .fetch_one(connection)
                .await;
        match taken {
            Ok(taken) => taken,
            Err(e) => {
                // Without its connection this instance holds no claim any
                // more; it claims nothing until restarted.
                tracing::error!(error = %e, "the run-claims connection failed");
                *claims = None;
                false
            }
        }
    }

    pub(crate) async fn release(&self, id: &OperationId) {
        if let Some(connection) = self.claims.lock().await.as_mut() {
            let _ = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
                .bind(id.as_str())
                .execute(connection)
                .await;
        }
    }

    pub(crate) async fn watch(&self, id: &OperationId) {
        self.relay.watch(id).await;
    }

    pub(crate) async fn close(&self) {
        if let Some(connection) = self.claims.lock().await.take() {
            let _ = connection.close().await;
        }
    }
}

/// One group on Postgres: lock, plan, write, notify, commit.
pub(crate) async fn run(pool: &PgPool, works: Vec<Work>) -> Result<Plan, Error> {
    let mut tx = pool.begin().await?;
    let streams = streams(&mut tx, &works).await?;
    let known = known(&mut tx, &works, &streams).await?;
    let nums: HashMap<i64, OperationId> = streams
        .iter()
        .map(|(id, stream)| (stream.num, id.clone()))
        .collect();
    let plan = group::plan(works, streams, known);
    write(&mut tx, &plan).await?;
    notify(&mut tx, &plan, &nums).await?;
    tx.commit().await?;
    Ok(plan)
}

async fn streams(
    tx: &mut PgConnection,
    works: &[Work],
) -> Result<HashMap<OperationId, Stream>, Error> {
    let ids = group::operation_ids(works);
    let select = format!(
        "SELECT {} FROM operations WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        group::STREAM_COLUMNS
    );
    let rows = sqlx::query(&select).bind(&ids).fetch_all(&mut *tx).await?;
    rows.iter().map(Stream::from_row).collect()
}

async fn known(
    tx: &mut PgConnection,
    works: &[Work],
    streams: &HashMap<OperationId, Stream>,
) -> Result<HashMap<(i64, String), Seq>, Error> {
    let (nums, ids): (Vec<i64>, Vec<&str>) = works
        .iter()
        .filter_map(|w| streams.get(w.operation()).map(|s| (s.num, w)))
        .flat_map(|(num, w)| w.event_ids().into_iter().map(move |id| (num, id)))
        .unzip();
    if nums.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(
        "SELECT e.operation_num, e.id, e.seq FROM events e
         JOIN UNNEST($1::bigint[], $2::text[]) AS k(num, id)
           ON e.operation_num = k.num AND e.id = k.id",
    )
    .bind(&nums)
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                (row.try_get("operation_num")?, row.try_get("id")?),
                seq_from_sql(row.try_get("seq")?)?,
            ))
        })
        .collect()
}

async fn write(tx: &mut PgConnection, plan: &Plan) -> Result<(), Error> {
    if !plan.events.is_empty() {
        let events = &plan.events;
        sqlx::query(
            "INSERT INTO events (operation_num, seq, id, type, message, happened_at, details, status)
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                                  $6::bigint[], $7::text[], $8::text[])",
        )
        .bind(events.iter().map(|e| e.num).collect::<Vec<_>>())
        .bind(events.iter().map(|e| seq_to_sql(e.seq)).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.message.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.happened_at).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.details.as_str()).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|e| e.status.map(Status::as_str))
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
    }
    if !plan.heads.is_empty() {
        let heads = &plan.heads;
        sqlx::query(
            "UPDATE operations SET head = moved.head, status = moved.status,
                    updated_at = moved.updated_at, percent_complete = moved.percent
             FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::float8[])
                  AS moved(num, head, status, updated_at, percent)
             WHERE operations.num = moved.num",
        )
        .bind(heads.iter().map(|h| h.num).collect::<Vec<_>>())
        .bind(heads.iter().map(|h| seq_to_sql(h.head)).collect::<Vec<_>>())
        .bind(heads.iter().map(|h| h.status.as_str()).collect::<Vec<_>>())
        .bind(heads.iter().map(|h| h.updated_at).collect::<Vec<_>>())
        .bind(heads.iter().map(|h| h.percent).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// One notification per committed group (more only past 7 000 bytes):
/// `operation head` per moved operation. Delivered at commit, to every
/// listening instance, in commit order.
async fn notify(
    tx: &mut PgConnection,
    plan: &Plan,
    nums: &HashMap<i64, OperationId>,
) -> Result<(), Error> {
    let mut payload = String::new();
    for head in &plan.heads {
        let Some(id) = nums.get(&head.num) else {
            continue;
        };
        if payload.len() + id.as_str().len() + 22 > PAYLOAD_BYTES {
            send(tx, &payload).await?;
            payload.clear();
        }
        payload.push_str(&format!("{id} {}\n", head.head));
    }
    if !payload.is_empty() {
        send(tx, &payload).await?;
    }
    Ok(())
}

async fn send(tx: &mut PgConnection, payload: &str) -> Result<(), Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// `(operation, head)` pairs of a notification's payload.
pub(crate) fn parse_heads(payload: &str) -> Vec<(OperationId, Seq)> {
    payload
        .lines()
        .filter_map(|line| {
            let (id, head) = line.split_once(' ')?;
            Some((OperationId::from(id), Seq(head.parse().ok()?)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_is_operation_head_lines() {
        let heads = parse_heads("aa 3\nbb 12\nnot-a-line\ncc x\n");
        assert_eq!(heads, [("aa".into(), Seq(3)), ("bb".into(), Seq(12))]);
    }
}
