//! The one assertion every scenario ends with: the widget shows exactly the
//! server's events — same ids, same order, none twice — and the server's
//! final status, and never showed anything else on the way.

use std::collections::HashMap;
use std::time::Duration;

use optrail_core::{Event, OperationId, Status};

use crate::page::{Detail, PATIENCE, ShownEvent, Widget, describe_events};
use crate::server::ServerProcess;
use crate::{Failure, Result};

/// How long an operation may take on the server (fast `stepMs` everywhere).
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// The server's events as the widget should show them.
pub fn as_shown(events: &[Event]) -> Vec<ShownEvent> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| ShownEvent {
            id: e.id.0.clone(),
            seq: e.seq.map(|s| s.0),
            message: e.message.clone(),
            pos: i + 1,
        })
        .collect()
}

/// Waits for the operation to end on the server, then for the widget (which
/// must be showing it, or be made to by the caller) to show exactly its
/// events and its status; checks every earlier reading of its timeline.
/// The server's final status and events.
pub async fn settles_like_server(
    widget: &Widget,
    server: &ServerProcess,
    id: &OperationId,
) -> Result<(Status, Vec<Event>, Detail)> {
    let (status, events) = server.finished(id, RUN_LIMIT).await?;
    server_log_is_sound(id, &events)?;
    let expected = as_shown(&events);
    let name = status.slug();
    let waited = widget
        .wait_detail(
            id,
            &format!(
                "the widget to show {id} as {name} with the server's {} events",
                expected.len()
            ),
            |d| d.status == name && d.shows(&expected),
        )
        .await;
    let detail = match waited {
        Ok(detail) => detail,
        Err(e) => {
            return Err(Failure::new(format!(
                "{e}\n  server ({name}): {}",
                describe_events(&expected)
            )));
        }
    };
    let walked = widget.walk_timeline().await?;
    if walked != expected {
        return Err(Failure::new(format!(
            "operation {id}: scrolled through, the timeline shows [{}]; the server has [{}]",
            describe_events(&walked),
            describe_events(&expected)
        )));
    }
    if detail.outcome.as_deref() != Some(name) {
        return Err(Failure::new(format!(
            "operation {id} is {name} but its outcome view is {:?}",
            detail.outcome
        )));
    }
    never_showed_anything_else(widget, id, &expected)?;
    recovery_counts_what_is_shown(id, &detail)?;
    Ok((status, events, detail))
}

/// [`settles_like_server`] for an operation that must succeed, with `last`
/// as its final event type; the detail shown.
pub async fn succeeds_like_server(
    widget: &Widget,
    server: &ServerProcess,
    id: &OperationId,
    last: &str,
) -> Result<Detail> {
    let (status, events, detail) = settles_like_server(widget, server, id).await?;
    if status != Status::Succeeded {
        return Err(Failure::new(format!("{id}: the server says {status:?}")));
    }
    if events.last().is_none_or(|e| e.kind.as_str() != last) {
        return Err(Failure::new(format!("{id}: the last event is not {last}")));
    }
    Ok(detail)
}

/// The recovery line ("All 10 events, none missed", "Replayed 4 missed
/// events · all 10 here") counts the events the timeline shows.
fn recovery_counts_what_is_shown(id: &OperationId, detail: &Detail) -> Result<()> {
    let text = detail.recovery.to_lowercase();
    let counted = text
        .split("all ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok());
    match counted {
        Some(n) if n != detail.total => Err(Failure::new(format!(
            "operation {id}: the recovery line says {:?} next to {} events shown",
            detail.recovery, detail.total
        ))),
        _ => Ok(()),
    }
}

/// Every reading of `id`'s timeline was a part of the server's log, in its
/// order: nothing the server does not have, nothing twice, nothing swapped.
pub fn never_showed_anything_else(
    widget: &Widget,
    id: &OperationId,
    expected: &[ShownEvent],
) -> Result<()> {
    let by_seq: HashMap<u64, &ShownEvent> =
        expected.iter().filter_map(|e| Some((e.seq?, e))).collect();
    let observations = widget.observations();
    let observations = observations.lock().unwrap_or_else(|p| p.into_inner());
    let mut readings = 0;
    for (shown_id, shown) in observations.iter() {
        if shown_id != id.as_str() {
            continue;
        }
        readings += 1;
        for event in shown {
            let matches = event
                .seq
                .and_then(|seq| by_seq.get(&seq))
                .is_some_and(|server| *server == event);
            if !matches {
                return Err(Failure::new(format!(
                    "operation {id}: the widget once showed [{}], but event {:?} (seq {:?}) is not \
                     the server's; the server has [{}]",
                    describe_events(shown),
                    event.id,
                    event.seq,
                    describe_events(expected)
                )));
            }
        }
    }
    if readings == 0 {
        return Err(Failure::new(format!(
            "operation {id} was never read from the widget"
        )));
    }
    Ok(())
}

/// The server's own promise: seqs 1, 2, 3, … and ids unique.
fn server_log_is_sound(id: &OperationId, events: &[Event]) -> Result<()> {
    let mut ids = std::collections::HashSet::new();
    for (i, event) in events.iter().enumerate() {
        let want = i as u64 + 1;
        if event.seq.map(|s| s.0) != Some(want) || !ids.insert(&event.id) {
            return Err(Failure::new(format!(
                "the server's log of {id} is not gap-free and unique at position {want}: {:?}",
                events.iter().map(|e| (e.seq, &e.id.0)).collect::<Vec<_>>()
            )));
        }
    }
    Ok(())
}

/// Waits until the widget shows at least `n` events of `id` (and `id` is
/// still running on the server at that moment, so the next step happens
/// mid-operation).
pub async fn mid_operation(
    widget: &Widget,
    server: &ServerProcess,
    id: &OperationId,
    n: usize,
) -> Result<Detail> {
    let detail = widget
        .wait_detail(id, &format!("{id} to show {n} events"), |d| d.total >= n)
        .await?;
    let operation = server.operation(id).await?;
    if operation.status.is_terminal() {
        return Err(Failure::new(format!(
            "operation {id} already ended ({:?}) before the mid-operation step; make it slower",
            operation.status
        )));
    }
    Ok(detail)
}

/// The patience of [`Widget::wait`], for scenario code.
pub const fn patience() -> Duration {
    PATIENCE
}
