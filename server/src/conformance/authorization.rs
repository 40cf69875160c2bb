//! Who may do what: credentials, roles, scopes, owners, and token expiry.
//! Needs the token secret, to act as the host's backend minting tokens.

use std::time::Duration;

use optrail_core::{OperationId, ServerFrame};
use reqwest::Method;
use serde_json::json;

use super::client::{Answer, Peer, owner};
use super::{Verdict, ensure};
use crate::auth::Scopes;

pub async fn credentials(peer: &Peer) -> Verdict {
    let who = owner();
    let op = peer.create(&who, "deployment").await?;
    let anonymous = peer.request(Method::GET, "/operations", None, None).await?;
    // A demo-mode server lets anonymous viewers list the demo owner's
    // operations; it must still not show anyone else's.
    ensure!(
        anonymous.status == 401
            || (anonymous.status == 200 && !anonymous.body.to_string().contains(op.id.as_str())),
        "an anonymous list should be 401 (or, in demo mode, not show other owners'), got {} {}",
        anonymous.status,
        anonymous.body
    );
    let garbage = peer.get("/operations", "not-a-token").await?;
    ensure!(
        garbage.status == 401 && garbage.code() == "unauthorized",
        "a garbage token should be 401 unauthorized, got {} {}",
        garbage.status,
        garbage.body
    );
    let viewer = peer.viewer(&who);
    let append = peer
        .request(
            Method::POST,
            &format!("/operations/{}/events", op.id),
            Some(&viewer),
            Some(&json!({"events": [{"id": "v", "type": "Step"}]})),
        )
        .await?;
    ensure!(
        append.status == 403 && append.code() == "forbidden",
        "a viewer's append should be 403 forbidden, got {} {}",
        append.status,
        append.body
    );
    let reader = peer.token(
        &who,
        Scopes {
            read: true,
            cancel: false,
        },
        Duration::from_secs(600),
    );
    let cancel = peer
        .request(
            Method::DELETE,
            &format!("/operations/{}", op.id),
            Some(&reader),
            None,
        )
        .await?;
    ensure!(
        cancel.status == 403 && cancel.code() == "forbidden",
        "a cancel without the cancel scope should be 403 forbidden, got {} {}",
        cancel.status,
        cancel.body
    );
    Ok(())
}

/// The answer with the operation's id blanked: another owner's operation
/// must read exactly like one that does not exist.
fn shape(answer: &Answer, id: &OperationId) -> (u16, String) {
    (
        answer.status,
        answer.body.to_string().replace(id.as_str(), "ID"),
    )
}

pub async fn owners(peer: &Peer) -> Verdict {
    let (alice, bob) = (owner(), owner());
    let alices = peer.create(&alice, "payment").await?;
    let bobs = peer.create(&bob, "payment").await?;
    let unknown = OperationId("0123456789abcdef0123456789abcdef".into());
    let bob_token = peer.viewer(&bob);
    let list = peer.get("/operations?limit=100", &bob_token).await?;
    let listed = list.body.to_string();
    ensure!(
        list.status == 200
            && listed.contains(bobs.id.as_str())
            && !listed.contains(alices.id.as_str()),
        "a viewer's list should hold its owner's operations only: {listed}"
    );
    for (method, path) in [
        (Method::GET, "/operations/{id}"),
        (Method::GET, "/operations/{id}/events"),
        (Method::DELETE, "/operations/{id}"),
    ] {
        let ask = |id: &OperationId| {
            let path = path.replace("{id}", id.as_str());
            let method = method.clone();
            let token = bob_token.clone();
            async move { peer.request(method, &path, Some(&token), None).await }
        };
        let theirs = shape(&ask(&alices.id).await?, &alices.id);
        let nobodys = shape(&ask(&unknown).await?, &unknown);
        ensure!(
            theirs.0 == 404 && theirs == nobodys,
            "{method} {path} of another owner's operation should answer as an unknown one: {theirs:?} vs {nobodys:?}"
        );
    }
    let mut socket = peer.socket(&bob_token).await?;
    let refusal = |frame: ServerFrame, id: &OperationId| match frame {
        ServerFrame::Error { code, message, .. } => Ok((code, message.replace(id.as_str(), "ID"))),
        other => Err(format!(
            "subscribing to another owner's operation answered {other:?}"
        )),
    };
    socket.subscribe(&alices.id, 0).await?;
    let theirs = refusal(socket.next_frame().await?, &alices.id)?;
    socket.subscribe(&unknown, 0).await?;
    let nobodys = refusal(socket.next_frame().await?, &unknown)?;
    ensure!(
        theirs.0 == "operation_not_found" && theirs == nobodys,
        "subscribe to another owner's operation should be refused as an unknown one: {theirs:?} vs {nobodys:?}"
    );
    Ok(())
}

pub async fn cancel(peer: &Peer) -> Verdict {
    let who = owner();
    let op = peer.create(&who, "deployment").await?;
    peer.append_ok(&op.id, json!([{"id": "s", "type": "Started"}]))
        .await?;
    let viewer = peer.viewer(&who);
    let path = format!("/operations/{}", op.id);
    for attempt in 1..=2 {
        let answer = peer
            .request(Method::DELETE, &path, Some(&viewer), None)
            .await?;
        ensure!(
            answer.status == 202 && answer.body["status"] == json!("Running"),
            "cancel {attempt} of a fed operation should be 202 with it still Running, got {} {}",
            answer.status,
            answer.body
        );
    }
    let page = peer.get(&format!("{path}/events"), peer.key()).await?;
    let types: Vec<&str> = page.body["events"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["type"].as_str()).collect())
        .unwrap_or_default();
    ensure!(
        types == ["Started", "CancelRequested"],
        "two cancels should add one CancelRequested event to the stream: {types:?}"
    );
    peer.append_ok(
        &op.id,
        json!([{"id": "c", "type": "Stopped", "status": "Canceled"}]),
    )
    .await?;
    let finished = peer
        .request(Method::DELETE, &path, Some(&viewer), None)
        .await?;
    ensure!(
        finished.status == 409 && finished.code() == "operation_finished",
        "cancel of a finished operation should be 409 operation_finished, got {} {}",
        finished.status,
        finished.body
    );
    Ok(())
}

pub async fn expiry(peer: &Peer) -> Verdict {
    let who = owner();
    let op = peer.create(&who, "deployment").await?;
    let short = peer.token(&who, Scopes::ALL, Duration::from_secs(2));
    let mut socket = peer.socket(&short).await?;
    socket.subscribe(&op.id, 0).await?;
    match socket.next_frame().await? {
        ServerFrame::Subscribed { .. } => {}
        other => return Err(format!("expected subscribed, got {other:?}")),
    }
    let code = socket.closed().await?;
    ensure!(
        code == Some(4401),
        "the socket should close with 4401, not {code:?}"
    );
    let answer = peer.get("/operations", &short).await?;
    ensure!(
        answer.status == 401 && answer.code() == "token_expired",
        "an expired token over HTTP should be 401 token_expired, got {} {}",
        answer.status,
        answer.body
    );
    Ok(())
}
