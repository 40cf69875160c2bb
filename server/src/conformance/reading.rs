//! Reads: health, error codes and bodies, paging of events and lists.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Answer, Peer, owner};
use super::{Verdict, ensure};

pub async fn health(peer: &Peer) -> Verdict {
    let answer = peer.request(Method::GET, "/healthz", None, None).await?;
    ensure!(
        answer.status == 200,
        "GET /healthz answered {}",
        answer.status
    );
    Ok(())
}

/// `{code, message}` with the documented code and status.
fn expect(what: &str, answer: &Answer, status: u16, code: &str) -> Verdict {
    ensure!(
        answer.status == status && answer.code() == code,
        "{what}: expected {status} {code}, got {} {}",
        answer.status,
        answer.body
    );
    ensure!(
        answer.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: the error body has no message: {}",
        answer.body
    );
    Ok(())
}

pub async fn error_codes(peer: &Peer) -> Verdict {
    let key = peer.key();
    let op = peer.create(&owner(), "conformance").await?;
    let unknown = "0123456789abcdef0123456789abcdef";
    expect(
        "a malformed id",
        &peer.get("/operations/not-an-id", key).await?,
        400,
        "invalid_operation_id",
    )?;
    expect(
        "an unknown id",
        &peer.get(&format!("/operations/{unknown}"), key).await?,
        404,
        "operation_not_found",
    )?;
    expect(
        "events of an unknown id",
        &peer
            .get(&format!("/operations/{unknown}/events"), key)
            .await?,
        404,
        "operation_not_found",
    )?;
    expect(
        "after=-1",
        &peer
            .get(&format!("/operations/{}/events?after=-1", op.id), key)
            .await?,
        400,
        "invalid_query",
    )?;
    expect(
        "an unknown path under the API",
        &peer
            .get(&format!("/operations/{}/nope", op.id), key)
            .await?,
        404,
        "not_found",
    )?;
    expect(
        "PUT /operations",
        &peer
            .request(Method::PUT, "/operations", Some(key), None)
            .await?,
        405,
        "method_not_allowed",
    )?;
    expect(
        "a body that is not JSON",
        &peer
            .raw("/operations", Some("application/json"), "{not json".into())
            .await?,
        400,
        "invalid_json",
    )?;
    expect(
        "a body without Content-Type",
        &peer.raw("/operations", None, "{}".into()).await?,
        415,
        "unsupported_media_type",
    )?;
    let big = json!({"kind": "k", "owner": "o", "params": {"pad": "x".repeat(17 * 1024)}});
    expect(
        "a 17 KiB body",
        &peer
            .raw("/operations", Some("application/json"), big.to_string())
            .await?,
        413,
        "body_too_large",
    )?;
    Ok(())
}

pub async fn paging(peer: &Peer) -> Verdict {
    let key = peer.key();
    let op = peer.create(&owner(), "conformance").await?;
    let mut n = 0;
    for size in [100, 100, 50] {
        let batch: Vec<Value> = (0..size)
            .map(|_| {
                n += 1;
                json!({"id": format!("p{n}"), "type": "Step"})
            })
            .collect();
        peer.append_ok(&op.id, Value::Array(batch)).await?;
    }
    let page = |after: u64, limit: &str| {
        let path = format!("/operations/{}/events?after={after}&limit={limit}", op.id);
        async move { peer.get(&path, key).await }
    };
    let first = page(0, "100").await?;
    let seqs = |answer: &Answer| -> Vec<u64> {
        answer.body["events"]
            .as_array()
            .map(|e| e.iter().filter_map(|e| e["seq"].as_u64()).collect())
            .unwrap_or_default()
    };
    ensure!(
        first.status == 200 && seqs(&first) == (1..=100).collect::<Vec<_>>(),
        "events?after=0&limit=100 did not answer seqs 1..=100: {} {:?}",
        first.status,
        seqs(&first)
    );
    ensure!(
        first.body["hasMore"] == json!(true) && first.body["head"] == json!(250),
        "the first page should say hasMore and head 250: {}",
        json!({"hasMore": first.body["hasMore"], "head": first.body["head"]})
    );
    let last = page(200, "100").await?;
    ensure!(
        seqs(&last) == (201..=250).collect::<Vec<_>>() && last.body["hasMore"] == json!(false),
        "events?after=200 should be seqs 201..=250 without more: {:?}",
        seqs(&last)
    );
    let clamped = page(0, "5000").await?;
    ensure!(
        clamped.status == 200 && seqs(&clamped).len() == 250,
        "limit=5000 should be clamped to 1000 (all 250 here), got {} events",
        seqs(&clamped).len()
    );
    expect("limit=0", &page(0, "0").await?, 400, "invalid_query")?;

    // The list: newest first, pages that neither repeat nor skip.
    for _ in 0..3 {
        peer.create(&owner(), "conformance").await?;
    }
    let mut seen = HashSet::new();
    let mut path = "/operations?limit=2".to_owned();
    for _ in 0..2 {
        let answer = peer.get(&path, key).await?;
        ensure!(
            answer.status == 200,
            "GET {path} answered {}",
            answer.status
        );
        let operations = answer.body["operations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        ensure!(
            operations.len() == 2,
            "GET {path} gave {} operations",
            operations.len()
        );
        for operation in &operations {
            let id = operation["id"].as_str().unwrap_or_default().to_owned();
            ensure!(seen.insert(id.clone()), "operation {id} on two pages");
        }
        let Some(next) = answer.body["nextBefore"].as_str() else {
            return Err(format!("GET {path} has no nextBefore though more exist"));
        };
        path = format!("/operations?limit=2&before={next}");
    }
    Ok(())
}
