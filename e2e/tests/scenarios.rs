//! The widget in headless Chromium against the real server: each scenario
//! ends with the widget showing exactly the server's events (same ids, same
//! order, none twice, never anything else on the way) and its final status.

use optrail_core::Status;
use optrail_e2e::check::settles_like_server;
use optrail_e2e::{PaymentForm, Scenario, ensure};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_started_from_the_form_succeeds_and_its_subscription_ends() {
    Scenario::run("payment_succeeds", async |s| {
        let widget = s.browser().await?;
        widget.open("/").await?;
        let id = widget
            .start_payment(&PaymentForm {
                step_ms: 100,
                ..PaymentForm::default()
            })
            .await?;
        let (status, _, _) = settles_like_server(&widget, &s.server, &id).await?;
        ensure!(status == Status::Succeeded, "the server says {status:?}");
        widget
            .wait_connection("idle", optrail_e2e::check::patience())
            .await?;
        Ok(())
    })
    .await;
}
