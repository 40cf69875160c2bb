//! Compat mode: the widget against a backend that speaks exactly the seed's
//! format (no seq, a socket per payment), served inside the test.

use std::time::Duration;

use optrail_core::OperationId;
use optrail_e2e::Scenario;
use optrail_e2e::seed_backend::{SeedBackend, by_time_then_id, event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compat_mode_orders_by_happened_at_and_dedupes_by_id_against_a_seed_backend() {
    Scenario::run("compat_seed_backend", async |scenario| {
        let payment = "pay-7f3a";
        let backend = SeedBackend::start(payment).await?;
        // History before the page opens; ids deliberately not in time order.
        backend.emit(event("evt-m", "ProcessingStarted", 1_000));
        backend.emit(event("evt-b", "FraudCheckStarted", 2_000));
        backend.emit(event("evt-z", "FraudCheckPassed", 2_500));

        let widget = scenario.browser_at(backend.url()).await?;
        widget.open(&format!("/compat.html#/operations/{payment}")).await?;
        let id = OperationId(payment.to_owned());
        widget
            .wait_detail(&id, "the seed history to show", |d| d.total == 3)
            .await?;

        // Live pushes (each arrives twice), one resent from history, two at
        // the same instant (the id breaks the tie), and one that happened
        // before some already shown.
        backend.emit(event("evt-q", "ProgressUpdated", 3_000));
        backend.emit(event("evt-b", "FraudCheckStarted", 2_000));
        backend.emit(event("evt-d", "ProgressUpdated", 3_000));
        backend.emit(event("evt-a", "Annotated", 1_500));
        tokio::time::sleep(Duration::from_millis(200)).await;
        backend.emit(event("evt-k", "PaymentSucceeded", 4_000));

        let detail = widget
            .wait_detail(&id, "the payment to succeed", |d| d.status == "succeeded")
            .await?;
        let shown: Vec<String> = detail.events.iter().map(|e| e.id.clone()).collect();
        let expected = by_time_then_id(&backend.events());
        optrail_e2e::ensure!(
            shown == expected,
            "the widget shows {shown:?}, the seed backend's events in (happenedAt, id) order are {expected:?}"
        );
        optrail_e2e::ensure!(detail.outcome.as_deref() == Some("succeeded"), "outcome {:?}", detail.outcome);
        Ok(())
    })
    .await;
}
