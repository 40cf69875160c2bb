//! Accessibility checked, not assumed: axe-core (npm, installed into
//! `.tools/` by scripts/setup.sh) over the widget's running, finished and
//! failed views and over the portal example must report no violation.

use std::time::Duration;

use optrail_e2e::check::{mid_operation, settles_like_server};
use optrail_e2e::{
    Context, DemoSettings, Failure, PaymentForm, Result, Scenario, Widget, ensure, workspace,
};
use serde_json::json;

/// Runs axe over the whole page; one line per violation.
const AXE_RUN: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ['violations'] }).then(
  (result) => done(result.violations.map((v) =>
    `${v.id} (${v.impact}): ${v.help}: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`)),
  (error) => done([`axe could not run: ${error}`]));
"#;

async fn violations(widget: &Widget, what: &str) -> Result<()> {
    let path = workspace::root().join(".tools/node_modules/axe-core/axe.min.js");
    let axe = std::fs::read_to_string(&path)
        .context("axe-core is not installed in .tools/: run scripts/setup.sh")?;
    let client = widget.client();
    client
        .execute(&format!("{axe}\nreturn true;"), Vec::new())
        .await
        .context("loading axe-core into the page")?;
    let value = client
        .execute_async(AXE_RUN, Vec::new())
        .await
        .context("running axe-core")?;
    let found: Vec<String> = serde_json::from_value(value).context("axe's answer")?;
    ensure!(
        found.is_empty(),
        "axe-core finds {} violation(s) in {what}:\n  {}",
        found.len(),
        found.join("\n  ")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_finished_and_failed_views_and_the_portal_have_no_axe_violations() {
    Scenario::run("accessibility", async |s| {
        let widget = s.browser().await?;
        widget.open("/").await?;
        violations(&widget, "the empty app with its start form").await?;

        let running = widget
            .start_payment(&PaymentForm {
                demo: DemoSettings::stepping(1_500),
                ..PaymentForm::default()
            })
            .await?;
        mid_operation(&widget, &s.server, &running, 2).await?;
        violations(&widget, "the running view").await?;

        let done = s
            .server
            .start_operation(
                "payment",
                json!({"amount": 3, "steps": 2, "stepMs": 0, "failureRate": 0}),
            )
            .await?;
        widget.open(&format!("/#/operations/{}", done.id)).await?;
        settles_like_server(&widget, &s.server, &done.id).await?;
        violations(&widget, "the succeeded view").await?;

        let failed = s
            .server
            .start_operation(
                "payment",
                json!({"amount": 4, "steps": 2, "stepMs": 0, "fail": true}),
            )
            .await?;
        widget.open(&format!("/#/operations/{}", failed.id)).await?;
        settles_like_server(&widget, &s.server, &failed.id).await?;
        violations(&widget, "the failed view").await?;

        widget
            .client()
            .goto(&format!("{}/portal.html", widget.base()))
            .await
            .context("opening the portal example")?;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ready = widget
                .client()
                .execute("return document.body.dataset.ready === 'true'", Vec::new())
                .await?;
            if ready == json!(true) {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(Failure::new("the portal example never became ready"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        violations(&widget, "the portal example").await?;
        Ok(())
    })
    .await;
}
