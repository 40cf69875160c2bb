//! The publisher API: create, batches, idempotency, atomicity, terminal
//! status.

use reqwest::Method;
use serde_json::json;

use super::client::{Peer, owner};
use super::{Verdict, ensure};

pub async fn create(peer: &Peer) -> Verdict {
    let who = owner();
    let op = peer.create(&who, "deployment").await?;
    ensure!(
        op.id.as_str().len() == 32 && op.kind == "deployment" && op.head.0 == 0,
        "a new operation should have a 32-hex id, its kind and head 0: {op:?}"
    );
    ensure!(
        op.status == optrail_core::Status::NotStarted,
        "a new operation is NotStarted, not {:?}",
        op.status
    );
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let body = json!({"kind": "deployment", "owner": who, "id": id});
    let key = Some(peer.key());
    let first = peer
        .request(Method::POST, "/operations", key, Some(&body))
        .await?;
    ensure!(
        first.status == 201,
        "a create with an id answered {}: {}",
        first.status,
        first.body
    );
    ensure!(
        first.headers.get("location").and_then(|l| l.to_str().ok())
            == Some(format!("/operations/{id}").as_str()),
        "a create should answer Location: /operations/{id}"
    );
    let retry = peer
        .request(Method::POST, "/operations", key, Some(&body))
        .await?;
    ensure!(
        retry.status == 200 && retry.body["id"] == json!(id),
        "a retried create should answer 200 with the same operation, got {} {}",
        retry.status,
        retry.body
    );
    let other = json!({"kind": "deployment", "owner": owner(), "id": id});
    let clash = peer
        .request(Method::POST, "/operations", key, Some(&other))
        .await?;
    ensure!(
        clash.status == 409 && clash.code() == "operation_exists",
        "a create with another owner's id should be 409 operation_exists, got {} {}",
        clash.status,
        clash.body
    );
    Ok(())
}

pub async fn retried_batch(peer: &Peer) -> Verdict {
    let op = peer.create(&owner(), "import").await?;
    let batch = json!([{"id": "a", "type": "Step"}, {"id": "b", "type": "Step"}]);
    let first = peer.append_ok(&op.id, batch.clone()).await?;
    ensure!(
        first == [1, 2],
        "the first batch should get seqs [1, 2], got {first:?}"
    );
    let retry = peer.append_ok(&op.id, batch).await?;
    ensure!(
        retry == [1, 2],
        "a retried batch should get the same seqs, got {retry:?}"
    );
    let overlap = peer
        .append_ok(
            &op.id,
            json!([{"id": "b", "type": "Step"}, {"id": "c", "type": "Step"}]),
        )
        .await?;
    ensure!(
        overlap == [2, 3],
        "a batch overlapping the stored one should get [2, 3], got {overlap:?}"
    );
    let history = peer.history(&op.id, peer.key()).await?;
    let ids: Vec<&str> = history.iter().map(|(_, id)| id.as_str()).collect();
    ensure!(
        ids == ["a", "b", "c"],
        "the stored events should be a, b, c once each: {ids:?}"
    );
    Ok(())
}

pub async fn atomic_batch(peer: &Peer) -> Verdict {
    let op = peer.create(&owner(), "import").await?;
    let refused = peer
        .append(
            &op.id,
            json!([{"id": "x", "type": "Done", "status": "Failed"}, {"id": "y", "type": "Late"}]),
        )
        .await?;
    ensure!(
        refused.status == 409 && refused.code() == "operation_finished",
        "an event after the terminal one should refuse the batch with 409 operation_finished, got {} {}",
        refused.status,
        refused.body
    );
    let invalid = peer
        .append(
            &op.id,
            json!([{"id": "ok", "type": "Fine"}, {"id": "", "type": "Step"}]),
        )
        .await?;
    ensure!(
        invalid.status == 400 && invalid.code() == "invalid_event",
        "an event without id should be 400 invalid_event, got {} {}",
        invalid.status,
        invalid.body
    );
    let history = peer.history(&op.id, peer.key()).await?;
    ensure!(
        history.is_empty(),
        "a refused batch stored events: {history:?}"
    );
    let ended = peer
        .append(
            &op.id,
            json!([{"id": "x", "type": "Done", "status": "Failed"}]),
        )
        .await?;
    ensure!(
        ended.status == 200 && ended.body["status"] == json!("Failed"),
        "a terminal event should end the operation Failed, got {} {}",
        ended.status,
        ended.body
    );
    let page = peer
        .get(&format!("/operations/{}/events", op.id), peer.key())
        .await?;
    ensure!(
        page.body["events"][0]["status"] == json!("Failed"),
        "the stored terminal event should carry status Failed: {}",
        page.body["events"][0]
    );
    let late = peer
        .append(&op.id, json!([{"id": "z", "type": "Late"}]))
        .await?;
    ensure!(
        late.status == 409,
        "an append after the end should be 409, got {}",
        late.status
    );
    Ok(())
}
