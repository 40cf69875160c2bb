//! The live channel: what `subscribe` promises, the subscribe/head race
//! under concurrent appends, and the frame limits.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use optrail_core::{OperationId, ServerFrame, Status};
use serde_json::{Value, json};

use super::client::{Peer, owner};
use super::{Verdict, ensure};

pub async fn pushes(peer: &Peer) -> Verdict {
    let op = peer.create(&owner(), "deployment").await?;
    let mut socket = peer.socket(peer.key()).await?;
    socket.subscribe(&op.id, 0).await?;
    let epoch = match socket.next_frame().await? {
        ServerFrame::Subscribed { epoch, head, .. } if head.0 == 0 => epoch,
        other => {
            return Err(format!(
                "subscribe should answer subscribed with head 0: {other:?}"
            ));
        }
    };
    peer.append_ok(
        &op.id,
        json!([
            {"id": "s", "type": "Started"},
            {"id": "p", "type": "ProgressUpdated", "details": {"percentage": 50}},
            {"id": "d", "type": "Finished", "status": "Succeeded"},
        ]),
    )
    .await?;
    for expected in 1..=3u64 {
        match socket.next_frame().await? {
            ServerFrame::Event {
                epoch: pushed_epoch,
                event,
                ..
            } => {
                ensure!(
                    event.seq.map(|s| s.0) == Some(expected),
                    "push {expected} had seq {:?}",
                    event.seq
                );
                ensure!(
                    pushed_epoch == Some(epoch),
                    "a push carried epoch {pushed_epoch:?}, not {epoch}"
                );
                if expected == 3 {
                    ensure!(
                        event.status == Some(Status::Succeeded),
                        "the terminal push should carry status Succeeded: {event:?}"
                    );
                }
            }
            other => return Err(format!("expected push {expected}, got {other:?}")),
        }
    }
    match socket.next_frame().await? {
        ServerFrame::Unsubscribed { .. } => Ok(()),
        other => Err(format!(
            "a terminal push should be followed by unsubscribed: {other:?}"
        )),
    }
}

/// Subscribers that join at random moments while a publisher appends: each
/// must end with every event exactly once, from its history fetch up to the
/// `subscribed` head plus the pushes after it.
pub async fn race(peer: &Peer) -> Verdict {
    const EVENTS: u64 = 300;
    const SUBSCRIBERS: u64 = 12;
    let op = peer.create(&owner(), "load").await?;
    let publisher = async {
        let mut next = 1;
        while next <= EVENTS {
            let size = 1 + next % 4;
            let batch: Vec<Value> = (next..(next + size).min(EVENTS + 1))
                .map(|n| {
                    let mut event = json!({"id": format!("r{n}"), "type": "Step"});
                    if n == EVENTS {
                        event["status"] = json!("Succeeded");
                    }
                    event
                })
                .collect();
            next += batch.len() as u64;
            peer.append_ok(&op.id, Value::Array(batch)).await?;
        }
        Ok::<(), String>(())
    };
    let subscribers = (0..SUBSCRIBERS).map(|i| follow(peer, &op.id, Duration::from_millis(i * 7)));
    let (published, followed) =
        tokio::join!(publisher, futures_util::future::join_all(subscribers));
    published?;
    for (i, log) in followed.into_iter().enumerate() {
        let log = log.map_err(|e| format!("subscriber {i}: {e}"))?;
        let seqs: Vec<u64> = log.keys().copied().collect();
        ensure!(
            seqs == (1..=EVENTS).collect::<Vec<_>>(),
            "subscriber {i} ended with {} events, first gap after {:?}",
            seqs.len(),
            seqs.iter()
                .zip(1..)
                .find(|(s, n)| **s != *n)
                .map(|(_, n)| n - 1)
        );
        for (seq, id) in &log {
            ensure!(
                *id == format!("r{seq}"),
                "subscriber {i}: seq {seq} has id {id}"
            );
        }
    }
    Ok(())
}

/// What one client following the protocol ends with: subscribe, read the
/// history, merge the pushes, until `unsubscribed`. Every event committed
/// after the `subscribed` head must also have been pushed (rule 3).
async fn follow(
    peer: &Peer,
    id: &OperationId,
    delay: Duration,
) -> Result<BTreeMap<u64, String>, String> {
    tokio::time::sleep(delay).await;
    let mut socket = peer.socket(peer.key()).await?;
    socket.subscribe(id, 0).await?;
    let mut log = BTreeMap::new();
    let head = match socket.next_frame().await? {
        ServerFrame::Subscribed { head, .. } => head.0,
        other => return Err(format!("expected subscribed, got {other:?}")),
    };
    for (seq, event_id) in peer.history(id, peer.key()).await? {
        merge(&mut log, seq, event_id)?;
    }
    let mut pushed = BTreeSet::new();
    loop {
        match socket.next_frame().await? {
            ServerFrame::Event { event, .. } => {
                let seq = event.seq.ok_or("a push without seq")?.0;
                pushed.insert(seq);
                merge(&mut log, seq, event.id.0)?;
            }
            ServerFrame::Unsubscribed { .. } => break,
            other => return Err(format!("unexpected {other:?}")),
        }
    }
    let last = log.keys().next_back().copied().unwrap_or(0);
    if let Some(missed) = (head + 1..=last).find(|seq| !pushed.contains(seq)) {
        return Err(format!(
            "seq {missed} was committed after subscribed (head {head}) but never pushed"
        ));
    }
    Ok(log)
}

/// Adds an event to a client's log; the same seq must always be the same
/// event.
fn merge(log: &mut BTreeMap<u64, String>, seq: u64, event_id: String) -> Verdict {
    match log.insert(seq, event_id.clone()) {
        Some(previous) if previous != event_id => {
            Err(format!("seq {seq} came as {previous} and as {event_id}"))
        }
        _ => Ok(()),
    }
}

pub async fn limits(peer: &Peer) -> Verdict {
    let who = owner();
    let mut ids = Vec::new();
    for _ in 0..65 {
        ids.push(peer.create(&who, "held").await?.id);
    }
    let mut socket = peer.socket(peer.key()).await?;
    for id in &ids[..64] {
        socket.subscribe(id, 0).await?;
        match socket.next_frame().await? {
            ServerFrame::Subscribed { .. } => {}
            other => return Err(format!("subscription to {id} refused: {other:?}")),
        }
    }
    socket.subscribe(&ids[64], 0).await?;
    match socket.next_frame().await? {
        ServerFrame::Error { code, .. } if code == "too_many_subscriptions" => {}
        other => {
            return Err(format!(
                "the 65th subscription should be too_many_subscriptions: {other:?}"
            ));
        }
    }
    let mut socket = peer.socket(peer.key()).await?;
    let padding = "x".repeat(5 * 1024);
    socket
        .send_text(json!({"type": "ping", "pad": padding}).to_string())
        .await?;
    match socket.next_frame().await? {
        ServerFrame::Error { code, .. } if code == "frame_too_large" => {}
        other => {
            return Err(format!(
                "a 5 KiB frame should be frame_too_large: {other:?}"
            ));
        }
    }
    let code = socket.closed().await?;
    ensure!(
        code == Some(1009),
        "after frame_too_large the socket should close 1009, not {code:?}"
    );
    Ok(())
}
