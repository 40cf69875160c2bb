//! Tenancy, end to end (issue 19): a server as in production (no demo mode;
//! a publisher key; HS256 viewer tokens; one host origin allowed), the
//! widget embedded by a host site on another origin with a token getter,
//! and an operation fed by a publisher over HTTP. Its owner watches it
//! arrive live; another owner, given its link, sees nothing of it.

use std::time::{SystemTime, UNIX_EPOCH};

use optrail_core::OperationId;
use optrail_e2e::check::{as_shown, patience, succeeds_like_server};
use optrail_e2e::host_page::HostPage;
use optrail_e2e::page::describe_events;
use optrail_e2e::server::ServerOptions;
use optrail_e2e::{Context, Result, Scenario, ensure};
use serde_json::{Value, json};

const PUBLISHER_KEY: &str = "e2e-publisher-key-7c1f0a9d";
/// At least 32 bytes, as the server requires of an HS256 secret.
const TOKEN_SECRET: &str = "e2e-viewer-token-secret-5b8e2d4f9a7c1e30";

/// A viewer token as a host's backend mints one (README.md, "Running it
/// for real"): `sub` the owner, both scopes, ten minutes.
fn viewer_token(owner: &str) -> Result<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let claims = json!({ "sub": owner, "scope": "read cancel", "exp": now.as_secs() + 600 });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TOKEN_SECRET.as_bytes()),
    )
    .context("minting a viewer token")
}

/// A publisher's event in the deployment's own vocabulary (no type the
/// widget knows), with its progress.
fn step(n: u32, percentage: u32) -> Value {
    json!({
        "id": format!("step-{n}"),
        "type": "RolloutProgressed",
        "message": format!("checkout v42: step {n}"),
        "details": { "percentage": percentage },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_widget_shows_a_publisher_fed_operation_live_to_its_owner_and_nothing_to_another()
 {
    let host = HostPage::start()
        .await
        .unwrap_or_else(|e| panic!("cannot start the host page: {e}"));
    let options = ServerOptions::secured(PUBLISHER_KEY, TOKEN_SECRET, &host.origin());
    Scenario::run_with("tenancy_cross_origin", options, async |s| {
        host.embed(&s.server.url());
        let (alice_token, bob_token) = (viewer_token("alice")?, viewer_token("bob")?);
        host.sign_in("alice", alice_token.clone());
        host.sign_in("bob", bob_token.clone());

        let deployment = s
            .server
            .publish_operation("deployment", "alice", json!({ "name": "checkout v42" }))
            .await?;
        let id = deployment.id.clone();

        // Alice opens it before anything has happened: the page, the module
        // and the wasm come from two origins, the API and the socket from
        // the server's, with her token.
        let alice = s.browser_at(host.origin()).await?;
        alice.open(&format!("/as/alice#/operations/{id}")).await?;
        alice
            .wait_detail(&id, "Alice's page to show her deployment", |d| {
                d.status == "not-started" && d.total == 0 && d.problem.is_none()
            })
            .await?;
        alice.wait_connection("live", patience()).await?;

        // The publisher appends in batches while she watches; each batch
        // shows up on the open page, over the live socket, before the next.
        let batches = [
            vec![step(1, 10), step(2, 20), step(3, 30)],
            vec![step(4, 45)],
            vec![step(5, 60), step(6, 75), step(7, 90)],
        ];
        for (b, batch) in batches.iter().enumerate() {
            s.server.append_events(&id, batch).await?;
            let (_, events) = s.server.events(&id).await?;
            let expected = as_shown(&events);
            let view = alice
                .wait(
                    &format!(
                        "batch {} to show live: [{}]",
                        b + 1,
                        describe_events(&expected)
                    ),
                    patience(),
                    |v| {
                        v.connection.as_deref() == Some("live")
                            && v.detail.as_ref().is_some_and(|d| {
                                d.id == id.as_str() && d.status == "running" && d.shows(&expected)
                            })
                    },
                )
                .await?;
            ensure!(
                view.detail.is_some_and(|d| d.outcome.is_none()),
                "a running deployment shows an outcome"
            );
        }
        let finished = json!({
            "id": "rolled-out",
            "type": "RolloutFinished",
            "message": "checkout v42 is live",
            "status": "Succeeded",
            "details": { "percentage": 100 },
        });
        let answer = s.server.append_events(&id, &[finished]).await?;
        ensure!(
            answer["status"] == "Succeeded" && answer["head"] == 8,
            "the terminal batch answered {answer}"
        );

        // Exactly the server's eight events, read scrolling through, never
        // anything else on the way, and the Succeeded view its status gave.
        let detail = succeeds_like_server(&alice, &s.server, &id, "RolloutFinished").await?;
        ensure!(
            detail.progress.as_deref() == Some("100") && !detail.can_cancel,
            "the finished deployment shows progress {:?}, cancel offered: {}",
            detail.progress,
            detail.can_cancel
        );
        alice.wait_connection("idle", patience()).await?;

        // Bob, another owner of the same host, is given the link. The server
        // answers as if it did not exist; his page shows nothing of it.
        let bob = s.browser_at(host.origin()).await?;
        bob.open(&format!("/as/bob#/operations/{id}")).await?;
        let refused = bob
            .wait_detail(&id, "Bob's page to say the deployment is unknown", |d| {
                d.problem.is_some()
            })
            .await?;
        ensure!(
            refused.total == 0
                && refused.events.is_empty()
                && refused.title == "Operation"
                && refused.status == "not-started"
                && refused.outcome.is_none()
                && refused.progress.is_none()
                && !refused.can_cancel
                && refused
                    .problem
                    .as_deref()
                    .is_some_and(|p| p.contains("does not exist or is no longer available")),
            "Bob's page shows of Alice's deployment: {refused:?}"
        );
        let text = widget_text(&bob).await?;
        ensure!(
            !text.contains("checkout") && !text.contains("deployment"),
            "Bob's page names Alice's deployment: {text:?}"
        );

        // His token works: his own operation shows on the same page.
        let own = s
            .server
            .publish_operation("deployment", "bob", json!({ "name": "billing v7" }))
            .await?;
        let own_done = json!({
            "id": "done", "type": "RolloutFinished", "message": "billing v7 is live",
            "status": "Succeeded",
        });
        s.server.append_events(&own.id, &[own_done]).await?;
        bob.client()
            .execute(
                &format!("location.hash = '#/operations/{}';", own.id),
                Vec::new(),
            )
            .await
            .context("following the link to Bob's own deployment")?;
        succeeds_like_server(&bob, &s.server, &own.id, "RolloutFinished").await?;
        let view = bob.view().await?;
        ensure!(
            view.list
                .iter()
                .all(|listed| *listed == id.0 || *listed == own.id.0),
            "Bob's list holds operations he never named: {:?}",
            view.list
        );
        let again = bob.select(&id).await?;
        ensure!(
            again.total == 0 && again.title == "Operation",
            "Bob's page, back on Alice's deployment, shows {again:?}"
        );
        every_reading_was_empty(&bob, &id)?;

        // The server's own lists agree: each owner sees only their own.
        let (for_alice, for_bob) = (
            s.server.listed_for(&alice_token).await?,
            s.server.listed_for(&bob_token).await?,
        );
        ensure!(
            for_alice == [id.clone()] && for_bob == [own.id.clone()],
            "GET /operations lists {for_alice:?} for Alice and {for_bob:?} for Bob"
        );
        Ok(())
    })
    .await;
}

/// Everything the widget says, as text.
async fn widget_text(widget: &optrail_e2e::Widget) -> Result<String> {
    let text = widget
        .client()
        .execute(
            "return document.getElementById('optrail-app').textContent;",
            Vec::new(),
        )
        .await
        .context("reading the widget's text")?;
    Ok(text.as_str().unwrap_or_default().to_owned())
}

/// Every reading of `id` on `widget`'s page showed no event at all.
fn every_reading_was_empty(widget: &optrail_e2e::Widget, id: &OperationId) -> Result<()> {
    let observations = widget.observations();
    let observations = observations.lock().unwrap_or_else(|p| p.into_inner());
    let shown: Vec<_> = observations
        .iter()
        .filter(|(read, events)| read == id.as_str() && !events.is_empty())
        .collect();
    ensure!(
        shown.is_empty(),
        "another owner's page once showed events of {id}: {shown:?}"
    );
    Ok(())
}
