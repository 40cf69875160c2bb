//! The widget in headless Chromium against the real server: each scenario
//! ends with the widget showing exactly the server's events (same ids, same
//! order, none twice, and never anything else on the way) and the server's
//! final status.
//!
//! Needs `cargo build -p optrail-server` and `scripts/build-web.sh` first.

use std::time::{Duration, Instant};

use optrail_core::{OperationId, Status};
use optrail_e2e::check::{mid_operation, patience, settles_like_server, succeeds_like_server};
use optrail_e2e::server::payment;
use optrail_e2e::{DemoSettings, Failure, PaymentForm, Scenario, VmForm, bail, ensure};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_started_from_the_form_succeeds_and_its_subscription_ends() {
    Scenario::run("payment_succeeds", async |s| {
        let widget = s.browser().await?;
        widget.open("/").await?;
        let id = widget
            .start_payment(&PaymentForm {
                demo: DemoSettings::stepping(100),
                ..PaymentForm::default()
            })
            .await?;
        let detail = succeeds_like_server(&widget, &s.server, &id, "PaymentSucceeded").await?;
        ensure!(
            detail.progress.as_deref() == Some("100"),
            "progress reads {:?} after success",
            detail.progress
        );
        ensure!(!detail.can_cancel, "a finished payment still offers Cancel");
        // Nothing is live any more: the socket is closed.
        widget.wait_connection("idle", patience()).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_started_from_the_form_is_provisioned_with_what_was_entered() {
    Scenario::run("vm_provisioned", async |s| {
        let widget = s.browser().await?;
        widget.open("/").await?;
        let id = widget
            .start_vm(&VmForm {
                name: "e2e-vm-7".into(),
                size: "large".into(),
                demo: DemoSettings::stepping(80),
            })
            .await?;
        let detail = succeeds_like_server(&widget, &s.server, &id, "VmProvisioned").await?;
        let params = s.server.operation(&id).await?.params;
        ensure!(
            params["name"] == "e2e-vm-7" && params["size"] == "large",
            "the server holds {params}, not what the form said"
        );
        ensure!(
            detail.title == "Virtual machine · e2e-vm-7",
            "the detail is titled {:?}",
            detail.title
        );
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_payment_shows_its_reason_and_retry_starts_a_new_operation() {
    Scenario::run("failing_payment_retry", async |s| {
        let widget = s.browser().await?;
        widget.open("/").await?;
        let first = widget
            .start_payment(&PaymentForm {
                demo: DemoSettings {
                    step_ms: 80,
                    failure_percent: 100,
                },
                ..PaymentForm::default()
            })
            .await?;
        let (status, events, detail) = settles_like_server(&widget, &s.server, &first).await?;
        ensure!(status == Status::Failed, "the server says {status:?}");
        let reason = events
            .last()
            .and_then(|e| e.details.get("reason"))
            .and_then(|r| r.as_str())
            .ok_or_else(|| Failure::new("the failing event has no details.reason"))?;
        ensure!(
            detail.reason.as_deref() == Some(reason),
            "the Failed view gives the reason {:?}, the server {reason:?}",
            detail.reason
        );
        ensure!(detail.can_retry, "the Failed view offers no Retry");

        widget.retry().await?;
        let view = widget
            .wait("Retry to start and show a new operation", patience(), |v| {
                v.list.len() == 2 && v.detail.as_ref().is_some_and(|d| d.id != first.as_str())
            })
            .await?;
        let second = OperationId(view.detail.map(|d| d.id).unwrap_or_default());
        ensure!(
            view.list.iter().any(|id| id == first.as_str()),
            "the failed operation left the list: {:?}",
            view.list
        );
        let (again, _, _) = settles_like_server(&widget, &s.server, &second).await?;
        ensure!(again == Status::Failed, "the retry ended {again:?}");
        let (old, new) = (
            s.server.operation(&first).await?,
            s.server.operation(&second).await?,
        );
        ensure!(
            old.params == new.params && old.kind == new.kind,
            "the retry was started with {} {}, the original with {} {}",
            new.kind,
            new.params,
            old.kind,
            old.params
        );
        // The first one is still shown as it ended.
        widget.select(&first).await?;
        settles_like_server(&widget, &s.server, &first).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_mid_operation_resumes_without_missing_or_doubling_events() {
    Scenario::run("reload_mid_operation", async |s| {
        let widget = s.browser().await?;
        widget.open("/").await?;
        let id = widget
            .start_payment(&PaymentForm {
                demo: DemoSettings::stepping(400),
                ..PaymentForm::default()
            })
            .await?;
        let before = mid_operation(&widget, &s.server, &id, 3).await?;
        widget.reload().await?;
        widget
            .wait_detail(&id, "the reloaded page to show the operation again", |_| {
                true
            })
            .await?;
        let now = s.server.operation(&id).await?.status;
        ensure!(
            !now.is_terminal(),
            "the operation ended ({now:?}) before the page was back; make it slower"
        );
        let (status, events, _) = settles_like_server(&widget, &s.server, &id).await?;
        ensure!(status == Status::Succeeded, "the server says {status:?}");
        ensure!(
            events.len() > before.total,
            "no event happened after the reload, so nothing was resumed"
        );
        widget.wait_connection("idle", patience()).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_operation_shows_reconnecting_then_catches_up_after_restart() {
    Scenario::run("server_killed", async |s| {
        let widget = s.browser().await?;
        widget.open("/").await?;
        let id = widget
            .start_payment(&PaymentForm {
                demo: DemoSettings::stepping(300),
                ..PaymentForm::default()
            })
            .await?;
        let before = mid_operation(&widget, &s.server, &id, 3).await?;
        s.server.kill();
        widget
            .wait_connection("reconnecting", Duration::from_secs(15))
            .await?;
        // Still down a moment later: the widget keeps saying so.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let view = widget.view().await?;
        ensure!(
            view.connection.as_deref() == Some("reconnecting"),
            "with the server down the indicator reads {:?}",
            view.connection
        );
        // Starting another meanwhile fails in words, and adds nothing.
        match widget.start_payment(&PaymentForm::default()).await {
            Ok(other) => bail!("started {other} with the server down"),
            Err(e) => ensure!(
                e.message().contains("Couldn't reach the server"),
                "starting with the server down: {e}"
            ),
        }
        s.server.restart().await?;
        let (status, events, _) = settles_like_server(&widget, &s.server, &id).await?;
        ensure!(status == Status::Succeeded, "the server says {status:?}");
        ensure!(
            events.len() > before.total,
            "nothing happened after the restart"
        );
        widget.wait_connection("idle", patience()).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_repeatedly_while_events_flow_lose_and_double_nothing() {
    const CUTS: usize = 4;
    Scenario::run("connections_cut", async |s| {
        let base = s.start_proxy().await?.url();
        let widget = s.browser_at(base).await?;
        let operation = s
            .server
            .start_operation("payment", payment("through a flaky network", 120, 80))
            .await?;
        let id = operation.id;
        widget.open(&format!("/#/operations/{id}")).await?;
        let proxy = s.proxy.as_ref().expect("started above");
        let mut shown = 0;
        for cut in 1..=CUTS {
            if cut % 2 == 0 {
                // The moment a new socket's handshake passes the proxy:
                // the cut lands in the subscribe and history catch-up.
                let deadline = Instant::now() + patience();
                while proxy.websockets_opened() < cut {
                    ensure!(
                        Instant::now() < deadline,
                        "no new WebSocket after cut {}",
                        cut - 1
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            } else {
                // Live on a fresh socket (one per earlier cut, plus the
                // first), and events arriving.
                let view = widget
                    .wait(
                        &format!("events to flow on a new live socket before cut {cut}"),
                        patience(),
                        |v| {
                            proxy.websockets_opened() >= cut
                                && v.connection.as_deref() == Some("live")
                                && v.detail.as_ref().is_some_and(|d| d.total > shown)
                        },
                    )
                    .await?;
                shown = view.detail.map_or(0, |d| d.total);
            }
            if s.server.operation(&id).await?.status.is_terminal() {
                bail!("the operation ended before cut {cut}; make it longer");
            }
            let dropped = proxy.cut_all();
            ensure!(dropped > 0, "cut {cut} found no connection to drop");
        }
        let (status, _, _) = settles_like_server(&widget, &s.server, &id).await?;
        ensure!(status == Status::Succeeded, "the server says {status:?}");
        let sockets = proxy.websockets_opened();
        ensure!(
            sockets > CUTS,
            "{sockets} WebSockets for {CUTS} cuts: the widget did not reconnect after each"
        );
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_operations_share_one_socket_and_canceling_one_leaves_the_others_to_succeed() {
    Scenario::run("three_at_once_cancel_one", async |s| {
        // The proxy injects no fault here; it counts WebSocket handshakes.
        let base = s.start_proxy().await?.url();
        let widget = s.browser_at(base).await?;
        widget.open("/").await?;
        let mut ids = Vec::new();
        for description in ["first", "second", "third"] {
            let id = widget
                .start_payment(&PaymentForm {
                    description: description.into(),
                    demo: DemoSettings::stepping(600),
                    ..PaymentForm::default()
                })
                .await?;
            ids.push(id);
        }
        for id in &ids {
            // Its first event may be a moment behind the start's answer on
            // a busy machine: running within a second is alongside.
            let mut status = s.server.operation(id).await?.status;
            for _ in 0..10 {
                if status != Status::NotStarted {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                status = s.server.operation(id).await?.status;
            }
            ensure!(
                status == Status::Running,
                "{id} is {status:?}, not running alongside the others"
            );
        }
        let proxy = s.proxy.as_ref().expect("started above");
        ensure!(
            proxy.websockets_opened() == 1,
            "three operations opened {} WebSockets",
            proxy.websockets_opened()
        );

        let canceled = &ids[1];
        widget.select(canceled).await?;
        widget
            .wait_detail(canceled, "Cancel to be offered", |d| d.can_cancel)
            .await?;
        widget.cancel().await?;
        let (status, events, _) = settles_like_server(&widget, &s.server, canceled).await?;
        ensure!(status == Status::Canceled, "the canceled one is {status:?}");
        ensure!(
            events
                .last()
                .is_some_and(|e| e.kind.as_str() == "OperationCanceled"),
            "the canceled one does not end with OperationCanceled"
        );
        for id in [&ids[0], &ids[2]] {
            widget.select(id).await?;
            let (status, _, _) = settles_like_server(&widget, &s.server, id).await?;
            ensure!(status == Status::Succeeded, "{id} ended {status:?}");
        }
        widget.wait_connection("idle", patience()).await?;
        ensure!(
            proxy.websockets_opened() == 1,
            "{} WebSockets were opened for three operations on a healthy network",
            proxy.websockets_opened()
        );
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_link_in_a_fresh_profile_shows_the_operation_live_and_a_finished_one_whole() {
    Scenario::run("deep_link_fresh_profile", async |s| {
        let widget = s.browser().await?;
        // Same origin, but no widget on this page: nothing stored yet.
        widget
            .client()
            .goto(&format!("{}/healthz", s.server.url()))
            .await?;
        let stored = widget
            .client()
            .execute("return window.localStorage.length", Vec::new())
            .await?;
        ensure!(
            stored == json!(0),
            "a fresh profile has {stored} stored keys"
        );

        let running = s
            .server
            .start_operation("payment", payment("deep link", 300, 10))
            .await?;
        widget
            .open(&format!("/#/operations/{}", running.id))
            .await?;
        // Shown while it runs, not only once it is over.
        mid_operation(&widget, &s.server, &running.id, 1).await?;
        let view = widget
            .wait("the deep-linked operation to be listed", patience(), |v| {
                !v.list.is_empty()
            })
            .await?;
        ensure!(
            view.list == [running.id.to_string()],
            "the list shows {:?}, not just the deep-linked operation",
            view.list
        );
        let (status, _, _) = settles_like_server(&widget, &s.server, &running.id).await?;
        ensure!(status == Status::Succeeded, "the server says {status:?}");

        // A deep link to an operation that finished before it was opened,
        // with more events than one history page holds.
        let finished = s
            .server
            .start_operation("payment", payment("already done", 0, 1_100))
            .await?;
        s.server
            .finished(&finished.id, optrail_e2e::check::RUN_LIMIT)
            .await?;
        widget
            .open(&format!("/#/operations/{}", finished.id))
            .await?;
        let (status, _, _) = settles_like_server(&widget, &s.server, &finished.id).await?;
        ensure!(status == Status::Succeeded, "the server says {status:?}");
        let view = widget.view().await?;
        ensure!(
            view.detail.is_some_and(|d| d.total > 1_100),
            "the finished operation is not shown whole"
        );
        ensure!(
            view.list.len() == 2,
            "after two deep links the list shows {:?}",
            view.list
        );
        widget.wait_connection("idle", patience()).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_windows_on_the_same_operation_agree_and_a_cancel_in_one_shows_in_both() {
    Scenario::run("two_windows", async |s| {
        let mut first = s.browser().await?;
        first.open("/").await?;
        let id = first
            .start_payment(&PaymentForm {
                demo: DemoSettings::stepping(500),
                ..PaymentForm::default()
            })
            .await?;
        let second = first.new_window().await?;
        second.open(&format!("/#/operations/{id}")).await?;
        mid_operation(&second, &s.server, &id, 3).await?;
        first
            .wait_detail(&id, "the first window to be live too", |d| d.total >= 3)
            .await?;
        second
            .wait_detail(&id, "Cancel in the second window", |d| d.can_cancel)
            .await?;
        second.cancel().await?;
        let (status, _, in_second) = settles_like_server(&second, &s.server, &id).await?;
        ensure!(status == Status::Canceled, "the server says {status:?}");
        let (_, _, in_first) = settles_like_server(&first, &s.server, &id).await?;
        ensure!(
            in_first.total == in_second.total
                && in_first.events == in_second.events
                && in_first.status == in_second.status,
            "the windows disagree"
        );
        for widget in [&first, &second] {
            let view = widget.view().await?;
            ensure!(
                view.list == [id.to_string()],
                "a window lists {:?}",
                view.list
            );
        }
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn description_with_markup_shows_as_literal_text_and_runs_nothing() {
    const MARKUP: &str = "<img src=x onerror=alert(1)>";
    Scenario::run("markup_in_description", async |s| {
        let widget = s.browser().await?;
        widget.open("/").await?;
        // Any alert the page shows is recorded rather than blocking.
        widget
            .client()
            .execute(
                "window.__optrailAlerts = []; \
                 window.alert = (m) => window.__optrailAlerts.push(String(m));",
                Vec::new(),
            )
            .await?;
        let id = widget
            .start_payment(&PaymentForm {
                description: MARKUP.into(),
                demo: DemoSettings::stepping(80),
                ..PaymentForm::default()
            })
            .await?;
        let (status, events, detail) = settles_like_server(&widget, &s.server, &id).await?;
        ensure!(status == Status::Succeeded, "the server says {status:?}");
        ensure!(
            events.iter().any(|e| e.message.contains(MARKUP)),
            "no server message quotes the description, so the check below proves nothing"
        );
        ensure!(
            detail.title.contains(MARKUP),
            "the title reads {:?}",
            detail.title
        );
        let no_markup_ran = async |stage: &str| -> Result<(), Failure> {
            let view = widget.view().await?;
            ensure!(
                view.images == 0,
                "{stage}: {} img elements in the widget",
                view.images
            );
            let page_images = widget
                .client()
                .execute("return document.images.length", Vec::new())
                .await?;
            ensure!(
                page_images == json!(0),
                "{stage}: {page_images} images on the page"
            );
            if let Ok(text) = widget.client().get_alert_text().await {
                bail!("{stage}: an alert is open: {text:?}");
            }
            Ok(())
        };
        no_markup_ran("after the run").await?;
        let alerts = widget
            .client()
            .execute("return window.__optrailAlerts", Vec::new())
            .await?;
        ensure!(alerts == json!([]), "alerts were shown: {alerts}");
        // Rendered again from storage and history after a reload.
        widget.reload().await?;
        settles_like_server(&widget, &s.server, &id).await?;
        no_markup_ran("after a reload").await?;
        Ok(())
    })
    .await;
}
