//! Several instances on one PostgreSQL database (issue 20), end to end:
//! three server processes on a throw-away cluster, and a proxy in front of
//! them that the widget reaches them through (page, API and WebSocket
//! alike), as behind a load balancer. Mid-stream the proxy moves the widget
//! to another instance twice: once because the instance it pointed at was
//! killed (SIGKILL), once as a load balancer draining one does (new
//! connections elsewhere, the open ones cut). The widget ends with exactly
//! the database's events of every operation, read from a surviving
//! instance.
//!
//! Needs Debian's postgresql package (`scripts/setup.sh`): without it the
//! scenario fails and says so, it is not skipped.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use optrail_core::OperationId;
use optrail_e2e::check::{mid_operation, patience, settles_like_server, succeeds_like_server};
use optrail_e2e::postgres::Postgres;
use optrail_e2e::proxy::FaultyProxy;
use optrail_e2e::server::{ServerOptions, ServerProcess};
use optrail_e2e::{DemoSettings, Failure, PaymentForm, Result, Scenario, Widget, ensure};
use serde_json::{Value, json};
use tokio::sync::watch;

const PUBLISHER_KEY: &str = "e2e-publisher-key-3a9c51e0";

/// A publisher's progress event, and the last one (which ends it).
fn rollout_event(n: usize, last: bool) -> Value {
    json!({
        "id": format!("step-{n}"),
        "type": if last { "RolloutFinished" } else { "RolloutProgressed" },
        "message": format!("checkout v43: step {n}"),
        "status": if last { Some("Succeeded") } else { None },
    })
}

/// Feeds `id` through every instance in turn, two events a batch, until
/// `moved` says the widget was moved for the last time and at least
/// `at_least` events are out; then ends it. A batch an instance cannot take
/// (it was killed) goes to the next one: appends are idempotent by event
/// id, so a batch committed just before its instance died lands once. How
/// many events were published.
async fn publish_through(
    urls: Vec<String>,
    id: OperationId,
    at_least: usize,
    mut moved: watch::Receiver<bool>,
) -> Result<usize> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let deadline = Instant::now() + 2 * patience();
    let (mut sent, mut at) = (0, 0);
    loop {
        let done = *moved.borrow_and_update() && sent >= at_least;
        let batch: Vec<Value> = if done {
            vec![rollout_event(sent, true)]
        } else {
            (sent..sent + 2).map(|n| rollout_event(n, false)).collect()
        };
        let url = &urls[at % urls.len()];
        at += 1;
        let answered = http
            .post(format!("{url}/operations/{id}/events"))
            .bearer_auth(PUBLISHER_KEY)
            .json(&json!({ "events": batch }))
            .send()
            .await;
        if matches!(&answered, Ok(r) if r.status().is_success()) {
            sent += batch.len();
            if done {
                return Ok(sent);
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        ensure!(
            Instant::now() < deadline,
            "the publisher could not append to {id} through any instance ({sent} events out)"
        );
    }
}

/// Waits until the widget is live on a WebSocket that the proxy sent to
/// `upstream`, and shows more than `shown` events of the selected
/// operation: the move is done and events flow again.
async fn live_again_through(
    widget: &Widget,
    proxy: &FaultyProxy,
    upstream: SocketAddr,
    shown: usize,
    what: &str,
) -> Result<()> {
    widget
        .wait(
            &format!("the widget to be live through {what} with more than {shown} events"),
            patience(),
            |v| {
                proxy.requests_to(upstream, "GET /ws") > 0
                    && v.connection.as_deref() == Some("live")
                    && v.detail.as_ref().is_some_and(|d| d.total > shown)
            },
        )
        .await?;
    Ok(())
}

/// The operation's head, which must not be its end yet: the widget is to
/// be shown events committed after this move.
async fn still_running(server: &ServerProcess, id: &OperationId, nth: &str) -> Result<usize> {
    let operation = server.operation(id).await?;
    ensure!(
        !operation.status.is_terminal(),
        "{id} ended ({:?}) before the {nth} move; make it slower",
        operation.status
    );
    Ok(operation.head.0 as usize)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_moved_to_other_instances_mid_stream_shows_exactly_the_log() {
    let postgres = Postgres::start().unwrap_or_else(|e| panic!("{e}"));
    let options = ServerOptions {
        database: Some(postgres.url().to_owned()),
        publisher_key: Some(PUBLISHER_KEY.to_owned()),
        ..ServerOptions::default()
    };
    Scenario::run_with("scale_out_moves", options, async |s| {
        // Instance 1 is `s.server`; the proxy points at it first.
        s.start_instance().await?;
        s.start_instance().await?;
        let (first, second, third) = (
            s.server.addr(),
            s.instances[0].addr(),
            s.instances[1].addr(),
        );
        let urls = vec![s.server.url(), s.instances[0].url(), s.instances[1].url()];
        let base = s.start_proxy().await?.url();
        let widget = s.browser_at(base).await?;

        // A deployment fed by a publisher, created through the third
        // instance, opened by link; then a payment started from the form,
        // through the proxy, so the first instance runs it.
        let deployment = s.instances[1]
            .publish_operation("deployment", "demo", json!({ "name": "checkout v43" }))
            .await?
            .id;
        widget.open(&format!("/#/operations/{deployment}")).await?;
        let payment = widget
            .start_payment(&PaymentForm {
                description: "across instances".into(),
                demo: DemoSettings::stepping(500),
                ..PaymentForm::default()
            })
            .await?;
        // Disjoint borrows: the moves kill the first instance while the
        // others and the proxy are read.
        let (killed, instances) = (&mut s.server, &s.instances);
        let proxy = s.proxy.as_ref().expect("started above");
        ensure!(
            proxy.requests_to(first, "POST /operations") == 1,
            "the payment was not started through the first instance"
        );

        let (moved, moves_done) = watch::channel(false);
        let publisher = publish_through(urls, deployment.clone(), 6, moves_done);
        let moves = async {
            // Move 1: the instance the widget is on, which also runs the
            // payment, is killed; the proxy sends new connections to the
            // second. Another instance adopts the run from its stored head:
            // what follows the dead one's last commit can only reach the
            // widget through the second instance.
            mid_operation(&widget, &instances[1], &payment, 3).await?;
            killed.kill();
            proxy.switch_to(second);
            let committed = still_running(&instances[1], &payment, "first").await?;
            live_again_through(&widget, proxy, second, committed, "the second instance").await?;
            // Move 2, as a load balancer drains an instance: new
            // connections go to the third, the open ones are cut.
            proxy.switch_to(third);
            ensure!(
                proxy.cut_all() > 0,
                "the second move found no connection to cut"
            );
            let committed = still_running(&instances[1], &payment, "second").await?;
            live_again_through(&widget, proxy, third, committed, "the third instance").await?;
            let _ = moved.send(true);
            Ok::<_, Failure>(())
        };
        let (published, ()) = tokio::try_join!(publisher, moves)?;

        // Exactly the database's events, read through the third instance.
        let survivor = &s.instances[1];
        let (status, _, _) = settles_like_server(&widget, survivor, &payment).await?;
        ensure!(
            status == optrail_core::Status::Succeeded,
            "the payment ended {status:?}"
        );
        widget.select(&deployment).await?;
        succeeds_like_server(&widget, survivor, &deployment, "RolloutFinished").await?;
        let (_, fed) = survivor.events(&deployment).await?;
        ensure!(
            fed.len() == published,
            "the publisher appended {published} events, the database holds {}",
            fed.len()
        );
        let adopted = s.instances.iter().any(|instance| {
            instance.logs().iter().any(|log| {
                std::fs::read_to_string(log)
                    .is_ok_and(|text| text.contains("adopted runs of another instance"))
            })
        });
        ensure!(
            adopted,
            "no surviving instance adopted the killed one's run"
        );
        widget.wait_connection("idle", patience()).await?;
        Ok(())
    })
    .await;
}
