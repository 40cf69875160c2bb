//! A commit group's appends, decided in memory: which are refused, which
//! seq each new event gets, and what the group writes.
//!
//! The writer ([`crate::commit`]) reads the state of the group's operations
//! and the event ids they already hold, [`plan`]s, then writes every new
//! event with a few multi-row statements and every moved head with one,
//! instead of several statements per append. Nothing here touches the
//! database, so a refused append (a finished operation, a stale head, a
//! new event after a terminal one) never needs rolling back, and the
//! decisions are exactly those of appending one request after the other.

use std::collections::HashMap;

use optrail_core::{Epoch, Event, OperationId, Seq, Status, Timestamp};
use serde_json::Value;

use crate::error::Error;
use crate::store::{
    Appended, Batch, EventDraft, StreamHead, epoch_from_sql, parse_status, seq_from_sql,
};

/// One append, as the store was asked for it.
#[derive(Debug)]
pub(crate) enum Work {
    /// A runner's step (or a cancel): one event, only if the head is still
    /// `after` when given.
    One {
        id: OperationId,
        draft: EventDraft,
        after: Option<Seq>,
    },
    /// A publisher's batch, all or nothing, idempotent by event id.
    Batch {
        id: OperationId,
        drafts: Vec<EventDraft>,
        received: Timestamp,
    },
}

impl Work {
    pub(crate) fn operation(&self) -> &OperationId {
        match self {
            Work::One { id, .. } | Work::Batch { id, .. } => id,
        }
    }

    /// The event ids to look up among the stored ones: a batch's, which
    /// may be retried. A runner's step has a fresh id, its time and 64
    /// random bits (a collision would fail its group's insert, and the
    /// runner retries).
    pub(crate) fn event_ids(&self) -> Vec<&str> {
        match self {
            Work::One { .. } => Vec::new(),
            Work::Batch { drafts, .. } => drafts.iter().map(|d| d.id.0.as_str()).collect(),
        }
    }
}

/// An operation's stream as stored when the group began.
#[derive(Debug, Clone)]
pub(crate) struct Stream {
    pub num: i64,
    pub epoch: Epoch,
    pub head: Seq,
    pub status: Status,
    pub percent: Option<f64>,
    pub updated_at: i64,
}

/// The columns a group reads of each operation it appends to, in either
/// store.
pub(crate) const STREAM_COLUMNS: &str =
    "num, id, epoch, head, status, percent_complete, updated_at";

impl Stream {
    /// One `operations` row (its [`STREAM_COLUMNS`]) as the operation's id
    /// and stream, from SQLite or PostgreSQL alike.
    pub(crate) fn from_row<'r, R>(row: &'r R) -> Result<(OperationId, Stream), Error>
    where
        R: sqlx::Row,
        &'static str: sqlx::ColumnIndex<R>,
        String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        Option<f64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        let stream = Stream {
            num: row.try_get("num")?,
            epoch: epoch_from_sql(row.try_get("epoch")?)?,
            head: seq_from_sql(row.try_get("head")?)?,
            status: parse_status(&row.try_get::<String, _>("status")?)?,
            percent: row.try_get("percent_complete")?,
            updated_at: row.try_get("updated_at")?,
        };
        Ok((OperationId(row.try_get("id")?), stream))
    }
}

/// The operations `works` append to, each once, in a fixed order (so that
/// concurrent groups lock rows in the same order).
pub(crate) fn operation_ids(works: &[Work]) -> Vec<&str> {
    let mut ids: Vec<&str> = works.iter().map(|w| w.operation().as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// What one append came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    One(Result<Appended, Error>),
    Batch(Result<Batch, Error>),
}

impl Outcome {
    /// The events it stored, in seq order.
    pub(crate) fn appended(&self) -> &[Appended] {
        match self {
            Outcome::One(Ok(appended)) => std::slice::from_ref(appended),
            Outcome::Batch(Ok(batch)) => &batch.appended,
            _ => &[],
        }
    }
}

/// A new row of `events`.
#[derive(Debug, Clone)]
pub(crate) struct EventRow {
    pub num: i64,
    pub seq: Seq,
    pub id: String,
    pub kind: String,
    pub message: String,
    pub happened_at: i64,
    /// JSON object.
    pub details: String,
    /// The terminal status it ends its operation with.
    pub status: Option<Status>,
}

/// An operation's row after the group.
#[derive(Debug, Clone)]
pub(crate) struct HeadRow {
    pub num: i64,
    pub head: Seq,
    pub status: Status,
    pub updated_at: i64,
    pub percent: Option<f64>,
}

/// What the group writes and answers.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// One per work, in the group's order.
    pub outcomes: Vec<(OperationId, Outcome)>,
    /// In the order they were appended (per operation, seq order).
    pub events: Vec<EventRow>,
    /// One per operation that moved.
    pub heads: Vec<HeadRow>,
}

/// A stream while the group is planned.
#[derive(Debug, Clone)]
struct Live {
    stored: Stream,
    /// Event ids it holds: looked up before, or appended by this group.
    ids: HashMap<String, Seq>,
    moved: bool,
}

/// Decides the group, one work after the other in its order. `streams`
/// holds the stored state of every operation that exists; `known` the
/// stored seq of every event id the works name that the operation has.
pub(crate) fn plan(
    works: Vec<Work>,
    streams: HashMap<OperationId, Stream>,
    known: HashMap<(i64, String), Seq>,
) -> Plan {
    let mut live: HashMap<OperationId, Live> = streams
        .into_iter()
        .map(|(id, stored)| {
            let ids = known
                .iter()
                .filter(|((num, _), _)| *num == stored.num)
                .map(|((_, event), seq)| (event.clone(), *seq))
                .collect();
            (
                id,
                Live {
                    stored,
                    ids,
                    moved: false,
                },
            )
        })
        .collect();
    let mut plan = Plan::default();
    for work in works {
        match work {
            Work::One { id, draft, after } => {
                let outcome = match live.get_mut(&id) {
                    None => Err(Error::OperationNotFound(id.clone())),
                    Some(stream) => one(stream, &id, draft, after, &mut plan.events),
                };
                plan.outcomes.push((id, Outcome::One(outcome)));
            }
            Work::Batch {
                id,
                drafts,
                received,
            } => {
                let outcome = match live.get_mut(&id) {
                    None => Err(Error::OperationNotFound(id.clone())),
                    Some(stream) => batch(stream, &id, drafts, received, &mut plan.events),
                };
                plan.outcomes.push((id, Outcome::Batch(outcome)));
            }
        }
    }
    plan.heads = live
        .into_values()
        .filter(|stream| stream.moved)
        .map(|stream| HeadRow {
            num: stream.stored.num,
            head: stream.stored.head,
            status: stream.stored.status,
            updated_at: stream.stored.updated_at,
            percent: stream.stored.percent,
        })
        .collect();
    plan.heads.sort_by_key(|head| head.num);
    plan
}

fn one(
    stream: &mut Live,
    id: &OperationId,
    draft: EventDraft,
    after: Option<Seq>,
    events: &mut Vec<EventRow>,
) -> Result<Appended, Error> {
    if stream.stored.status.is_terminal() {
        return Err(Error::OperationFinished(id.clone()));
    }
    if let Some(after) = after
        && after != stream.stored.head
    {
        return Err(Error::Internal(format!(
            "operation {id} is at seq {} where {after} was expected: another writer \
             appended; continuing from the stored head",
            stream.stored.head
        )));
    }
    let row = row(stream, &draft)?;
    let updated_at = draft.happened_at.millis();
    Ok(stream.append(row, draft, updated_at, events))
}

fn batch(
    stream: &mut Live,
    id: &OperationId,
    drafts: Vec<EventDraft>,
    received: Timestamp,
    events: &mut Vec<EventRow>,
) -> Result<Batch, Error> {
    // All or nothing: decided on a copy, kept only if every event passes.
    let mut trial = stream.clone();
    let mut rows = Vec::new();
    let mut seqs = Vec::with_capacity(drafts.len());
    let mut appended = Vec::new();
    for draft in drafts {
        if let Some(&seq) = trial.ids.get(&draft.id.0) {
            seqs.push(seq);
            continue;
        }
        if trial.stored.status.is_terminal() {
            return Err(Error::OperationFinished(id.clone()));
        }
        let row = row(&trial, &draft)?;
        let new = trial.append(row, draft, received.millis(), &mut rows);
        seqs.push(new.event.seq.unwrap_or_default());
        appended.push(new);
    }
    *stream = trial;
    events.append(&mut rows);
    Ok(Batch {
        seqs,
        appended,
        head: StreamHead {
            epoch: stream.stored.epoch,
            head: stream.stored.head,
            status: stream.stored.status,
        },
    })
}

/// The row of `draft` as the stream's next event.
fn row(stream: &Live, draft: &EventDraft) -> Result<EventRow, Error> {
    let details = serde_json::to_string(&draft.details)
        .map_err(|e| Error::Internal(format!("event details do not serialize: {e}")))?;
    Ok(EventRow {
        num: stream.stored.num,
        seq: stream.stored.head.next(),
        id: draft.id.0.clone(),
        kind: draft.kind.as_str().to_owned(),
        message: draft.message.clone(),
        happened_at: draft.happened_at.millis(),
        details,
        status: draft.status.is_terminal().then_some(draft.status),
    })
}

impl Live {
    /// Moves the head to `row`'s seq; the operation takes the draft's
    /// status and, if it has one, its percentage.
    fn append(
        &mut self,
        row: EventRow,
        draft: EventDraft,
        updated_at: i64,
        events: &mut Vec<EventRow>,
    ) -> Appended {
        let seq = row.seq;
        self.stored.head = seq;
        self.stored.status = draft.status;
        self.stored.updated_at = updated_at;
        if let Some(percent) = draft.details.get("percentage").and_then(Value::as_f64) {
            self.stored.percent = Some(percent);
        }
        self.ids.insert(row.id.clone(), seq);
        self.moved = true;
        events.push(row);
        Appended {
            epoch: self.stored.epoch,
            status: draft.status,
            event: Event {
                id: draft.id,
                seq: Some(seq),
                kind: draft.kind,
                message: draft.message,
                happened_at: draft.happened_at,
                sub_ms_ns: 0,
                details: draft.details,
                status: draft.status.is_terminal().then_some(draft.status),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use optrail_core::{EventId, EventType};
    use serde_json::Map;

    use super::*;

    fn stream(num: i64, head: u64, status: Status) -> Stream {
        Stream {
            num,
            epoch: Epoch(1),
            head: Seq(head),
            status,
            percent: None,
            updated_at: 0,
        }
    }

    fn draft(id: &str, status: Status) -> EventDraft {
        EventDraft {
            id: EventId(id.into()),
            kind: EventType::from("Step"),
            message: String::new(),
            happened_at: Timestamp::from_millis(5),
            details: Map::new(),
            status,
        }
    }

    #[test]
    fn appends_take_consecutive_seqs_and_refusals_change_nothing() {
        let a = OperationId::from("a");
        let done = OperationId::from("done");
        let streams = HashMap::from([
            (a.clone(), stream(1, 3, Status::Running)),
            (done.clone(), stream(2, 9, Status::Succeeded)),
        ]);
        let works = vec![
            Work::One {
                id: a.clone(),
                draft: draft("x", Status::Running),
                after: Some(Seq(3)),
            },
            // Stale: the head is 4 now.
            Work::One {
                id: a.clone(),
                draft: draft("y", Status::Running),
                after: Some(Seq(3)),
            },
            Work::One {
                id: done.clone(),
                draft: draft("z", Status::Running),
                after: None,
            },
            Work::One {
                id: "missing".into(),
                draft: draft("w", Status::Running),
                after: None,
            },
            Work::One {
                id: a.clone(),
                draft: draft("v", Status::Succeeded),
                after: Some(Seq(4)),
            },
        ];
        let plan = plan(works, streams, HashMap::new());
        let verdicts: Vec<Option<u64>> = plan
            .outcomes
            .iter()
            .map(|(_, o)| o.appended().first().and_then(|a| a.event.seq).map(|s| s.0))
            .collect();
        assert_eq!(verdicts, [Some(4), None, None, None, Some(5)]);
        assert!(matches!(
            plan.outcomes[2].1,
            Outcome::One(Err(Error::OperationFinished(_)))
        ));
        assert!(matches!(
            plan.outcomes[3].1,
            Outcome::One(Err(Error::OperationNotFound(_)))
        ));
        let seqs: Vec<u64> = plan.events.iter().map(|e| e.seq.0).collect();
        assert_eq!(seqs, [4, 5]);
        assert_eq!(plan.heads.len(), 1);
        assert_eq!(plan.heads[0].head, Seq(5));
        assert_eq!(plan.heads[0].status, Status::Succeeded);
    }

    #[test]
    fn a_batch_is_idempotent_by_id_and_all_or_nothing() {
        let a = OperationId::from("a");
        let streams = HashMap::from([(a.clone(), stream(1, 2, Status::Running))]);
        let known = HashMap::from([((1, "old".to_owned()), Seq(2))]);
        let works = vec![
            Work::Batch {
                id: a.clone(),
                drafts: vec![
                    draft("old", Status::Running),
                    draft("n1", Status::Running),
                    draft("n1", Status::Running),
                ],
                received: Timestamp::from_millis(7),
            },
            // Refused whole: a new event after the terminal one.
            Work::Batch {
                id: a.clone(),
                drafts: vec![draft("end", Status::Failed), draft("late", Status::Running)],
                received: Timestamp::from_millis(8),
            },
            // A retry of the first batch: same seqs, nothing new.
            Work::Batch {
                id: a.clone(),
                drafts: vec![draft("old", Status::Running), draft("n1", Status::Running)],
                received: Timestamp::from_millis(9),
            },
        ];
        let plan = plan(works, streams, known);
        let Outcome::Batch(Ok(first)) = &plan.outcomes[0].1 else {
            panic!("the first batch is stored");
        };
        assert_eq!(first.seqs, [Seq(2), Seq(3), Seq(3)]);
        assert!(matches!(
            plan.outcomes[1].1,
            Outcome::Batch(Err(Error::OperationFinished(_)))
        ));
        let Outcome::Batch(Ok(retry)) = &plan.outcomes[2].1 else {
            panic!("the retry is answered");
        };
        assert_eq!(retry.seqs, [Seq(2), Seq(3)]);
        assert!(retry.appended.is_empty());
        assert_eq!(plan.events.len(), 1);
        assert_eq!(plan.heads[0].head, Seq(3));
        assert_eq!(plan.heads[0].updated_at, 7);
    }
}
