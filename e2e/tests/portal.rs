//! The portal example: two widgets and the custom element inside a host
//! page with deliberately hostile global CSS.

use std::time::{Duration, Instant};

use optrail_e2e::{Scenario, bail, ensure};
use serde_json::Value;

/// Reads, for each widget root, the computed styles the host CSS attacks.
const READ_STYLES: &str = r#"
const read = (root) => {
  if (!root) return null;
  const widget = root.querySelector('.optrail');
  if (!widget) return { mounted: false };
  const style = (el) => el ? getComputedStyle(el) : null;
  const title = style(widget.querySelector('.optrail-title'));
  const button = style(widget.querySelector('.optrail-button'));
  const input = style(widget.querySelector('.optrail-input'));
  return {
    mounted: true,
    fontSize: style(widget).fontSize,
    fontFamily: style(widget).fontFamily,
    titleTransform: title ? title.textTransform : null,
    titleColor: title ? title.color : null,
    buttonBorder: button ? button.borderTopStyle : null,
    inputBorder: input ? input.borderTopStyle : null,
  };
};
return {
  ready: document.body.dataset.ready === 'true',
  payments: read(document.getElementById('payments')),
  machines: read(document.getElementById('machines')),
  element: read(document.getElementById('no-code')),
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_widgets_keep_their_look_under_hostile_host_css_and_unmount_alone() {
    Scenario::run("portal_hostile_css", async |scenario| {
        let widget = scenario.browser().await?;
        let client = widget.client().clone();
        client
            .goto(&format!("{}/portal.html", widget.base()))
            .await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let styles = loop {
            let styles = client.execute(READ_STYLES, Vec::new()).await?;
            let mounted = ["payments", "machines", "element"]
                .iter()
                .all(|k| styles[k]["mounted"] == Value::Bool(true));
            if styles["ready"] == Value::Bool(true) && mounted {
                break styles;
            }
            if Instant::now() > deadline {
                bail!("the portal's widgets did not mount: {styles}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        for key in ["payments", "machines", "element"] {
            let s = &styles[key];
            // The host sets 22px, Georgia, uppercase, dashed borders, #7a0050.
            ensure!(
                s["fontSize"] == "15px",
                "{key}: font size {}",
                s["fontSize"]
            );
            ensure!(
                !s["fontFamily"].as_str().unwrap_or("").contains("Georgia"),
                "{key}: font {}",
                s["fontFamily"]
            );
            ensure!(
                s["titleTransform"] == "none",
                "{key}: title {}",
                s["titleTransform"]
            );
            ensure!(
                s["titleColor"] != "rgb(122, 0, 80)",
                "{key}: the host's color leaked in"
            );
        }
        let form = &styles["payments"];
        ensure!(
            form["buttonBorder"] != "dashed",
            "the host's button border leaked in: {form}"
        );
        ensure!(
            form["inputBorder"] == "solid",
            "the host's input border leaked in: {form}"
        );

        // Unmounting one widget leaves the other in place.
        client
            .execute(
                "window.optrailPortal.machines.unmount(); return true;",
                Vec::new(),
            )
            .await?;
        let after = client.execute(READ_STYLES, Vec::new()).await?;
        ensure!(
            after["machines"]["mounted"] == false,
            "machines still mounted: {after}"
        );
        ensure!(
            after["payments"]["mounted"] == true,
            "payments went too: {after}"
        );
        ensure!(
            after["element"]["mounted"] == true,
            "the element went too: {after}"
        );
        Ok(())
    })
    .await;
}
