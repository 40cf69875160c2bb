//! The widget as a person sees it: what the DOM shows, read in one script
//! so that a reading is consistent, and what a person does with it.
//!
//! Every reading of an operation's timeline is remembered, so that a
//! scenario can check afterwards that the widget never showed an event
//! twice, out of order, or one the server does not have — not only at the
//! end.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::wd::WindowHandle;
use fantoccini::{Client, Locator};
use optrail_core::OperationId;
use serde::Deserialize;

use crate::{Context, Failure, Result};

/// How long a person waits for the widget to show something.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How often the DOM is read while waiting.
const POLL: Duration = Duration::from_millis(50);

/// One reading of the widget's DOM.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct View {
    /// The app rendered into `#optrail-app`.
    pub mounted: bool,
    /// `p.optrail-connection[data-state]`.
    pub connection: Option<String>,
    /// `li.optrail-list-item[data-operation-id]`, in DOM order.
    pub list: Vec<String>,
    pub detail: Option<Detail>,
    /// The start form's inline error.
    pub form_error: String,
    pub hash: String,
    /// `img` elements inside the widget.
    pub images: usize,
}

/// `article.optrail-operation`: the selected operation.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    pub id: String,
    /// `data-status`: running, succeeded, failed, canceled, not-started.
    pub status: String,
    /// The timeline's rows that exist in the DOM (it is windowed: those in
    /// and near the viewport), in order.
    pub events: Vec<ShownEvent>,
    /// `ol.optrail-timeline[data-rows]`: how many rows the timeline has.
    pub total: usize,
    /// `div.optrail-outcome[data-outcome]`.
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub recovery: String,
    pub problem: Option<String>,
    pub progress: Option<String>,
    pub can_cancel: bool,
    pub can_retry: bool,
    /// A Forget button (`.optrail-forget`) is offered.
    pub can_forget: bool,
    pub title: String,
}

/// `li.optrail-event`, as shown.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ShownEvent {
    pub id: String,
    pub seq: Option<u64>,
    pub message: String,
    /// `aria-posinset`: its row, from 1.
    pub pos: usize,
}

impl Detail {
    /// The timeline has exactly `expected`'s rows, every row in the DOM is
    /// the expected one at its position, and the last one is among them
    /// (the timeline follows its tail). The whole list is checked by
    /// scrolling through it: [`Widget::walk_timeline`].
    pub fn shows(&self, expected: &[ShownEvent]) -> bool {
        self.total == expected.len()
            && self
                .events
                .iter()
                .all(|e| e.pos >= 1 && expected.get(e.pos - 1) == Some(e))
            && self.events.last().map(|e| e.pos) == expected.last().map(|e| e.pos)
    }
}

/// Reads the timeline rows in the DOM of `article`, in row order.
const READ_ROWS: &str = r#"
const text = (el) => (el ? el.textContent : null);
const readRows = (art) => [...art.querySelectorAll('li.optrail-event')]
  .map((li) => ({
    id: li.dataset.eventId || '',
    seq: li.dataset.seq ? Number(li.dataset.seq) : null,
    message: text(li.querySelector('.optrail-event-message')) || '',
    pos: Number(li.getAttribute('aria-posinset') || 0),
  }))
  .sort((a, b) => a.pos - b.pos);
"#;

const READ_VIEW: &str = r#"
const root = document.getElementById('optrail-app');
if (!root) {
  return { mounted: false, connection: null, list: [], detail: null, formError: '', hash: location.hash, images: 0 };
}
const conn = root.querySelector('p.optrail-connection');
const art = root.querySelector('article.optrail-operation');
let detail = null;
if (art) {
  const outcome = art.querySelector('div.optrail-outcome');
  detail = {
    id: art.dataset.operationId || '',
    status: art.dataset.status || '',
    events: readRows(art),
    total: Number((art.querySelector('ol.optrail-timeline') || { dataset: {} }).dataset.rows || 0),
    outcome: outcome ? outcome.dataset.outcome : null,
    reason: text(art.querySelector('.optrail-failure-reason')),
    recovery: text(art.querySelector('.optrail-recovery')) || '',
    problem: text(art.querySelector('.optrail-problem:not([hidden])')),
    progress: (art.querySelector('[role=progressbar]') || { getAttribute: () => null }).getAttribute('aria-valuenow'),
    canCancel: !!art.querySelector('.optrail-cancel:not([disabled])'),
    canRetry: !!art.querySelector('.optrail-retry'),
    canForget: !!art.querySelector('.optrail-forget'),
    title: text(art.querySelector('.optrail-operation-title')) || '',
  };
}
return {
  mounted: root.childElementCount > 0 && !!conn,
  connection: conn ? conn.dataset.state : null,
  list: [...root.querySelectorAll('li.optrail-list-item')].map((li) => li.dataset.operationId),
  detail,
  formError: text(root.querySelector('form.optrail-form > .optrail-form-error')) || '',
  hash: location.hash,
  images: root.querySelectorAll('img').length,
};
"#;

const WALK_TIMELINE: &str = r#"
const done = arguments[arguments.length - 1];
const art = document.querySelector('#optrail-app article.optrail-operation');
if (!art) { done(['', []]); return; }
const scroller = art.querySelector('.optrail-timeline-scroller');
const rows = new Map();
const read = () => { for (const row of readRows(art)) rows.set(row.pos, row); };
const settled = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 20)));
(async () => {
  scroller.scrollTop = 0;
  await settled();
  for (;;) {
    read();
    if (scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 1) break;
    scroller.scrollTop += Math.max(1, scroller.clientHeight - 52);
    await settled();
  }
  scroller.scrollTop = scroller.scrollHeight;
  await settled();
  done([art.dataset.operationId || '', [...rows.values()].sort((a, b) => a.pos - b.pos)]);
})();
"#;

/// XPath of the start form's `tag` control labelled `label…`.
fn form_control(label: &str, tag: &str) -> String {
    format!(
        "//form[contains(concat(' ', normalize-space(@class), ' '), ' optrail-form ')]\
         //label[starts-with(normalize-space(span), '{label}')]//{tag}"
    )
}

/// The start form's "Demo settings".
#[derive(Debug, Clone)]
pub struct DemoSettings {
    /// "Step delay (ms)".
    pub step_ms: u64,
    /// "Failure chance (%)".
    pub failure_percent: u32,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            step_ms: 150,
            failure_percent: 0,
        }
    }
}

impl DemoSettings {
    /// No failures, `step_ms` between steps.
    pub fn stepping(step_ms: u64) -> Self {
        Self {
            step_ms,
            ..Self::default()
        }
    }
}

/// A payment as entered in the start form.
#[derive(Debug, Clone)]
pub struct PaymentForm {
    pub amount: String,
    pub description: String,
    pub demo: DemoSettings,
}

impl Default for PaymentForm {
    fn default() -> Self {
        Self {
            amount: "12.50".into(),
            description: "e2e order".into(),
            demo: DemoSettings::default(),
        }
    }
}

/// A virtual machine as entered in the start form.
#[derive(Debug, Clone)]
pub struct VmForm {
    pub name: String,
    /// `small`, `medium` or `large`.
    pub size: String,
    pub demo: DemoSettings,
}

/// Every timeline reading, per operation, in the order it was read.
pub type Observations = Arc<Mutex<Vec<(String, Vec<ShownEvent>)>>>;

/// The widget in one browser window.
#[derive(Clone)]
pub struct Widget {
    client: Client,
    base: String,
    /// Set when the browser has several windows: every call switches to
    /// this one first.
    window: Option<WindowHandle>,
    observed: Observations,
}

impl Widget {
    /// `base` is the origin the widget is served from (`http://host:port`).
    pub fn new(client: Client, base: impl Into<String>) -> Self {
        Self {
            client,
            base: base.into(),
            window: None,
            observed: Observations::default(),
        }
    }

    /// This widget pinned to the browser's current window, and another
    /// one in a new window of the same browser (same profile, so the same
    /// localStorage), with their own readings.
    pub async fn new_window(&mut self) -> Result<Widget> {
        let current = self.client.window().await.context("naming the window")?;
        self.window = Some(current);
        let created = self
            .client
            .new_window(false)
            .await
            .context("opening a second window")?;
        Ok(Widget {
            client: self.client.clone(),
            base: self.base.clone(),
            window: Some(created.handle),
            observed: Observations::default(),
        })
    }

    async fn activate(&self) -> Result<()> {
        if let Some(window) = &self.window {
            self.client
                .switch_to_window(window.clone())
                .await
                .context("switching windows")?;
        }
        Ok(())
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs `script` in this widget's window (switching to it first, as
    /// [`Widget::client`] alone does not); its value.
    pub async fn execute(
        &self,
        script: &str,
        args: Vec<serde_json::Value>,
    ) -> Result<serde_json::Value> {
        self.activate().await?;
        let value = self
            .client
            .execute(script, args)
            .await
            .context("running a script in the page")?;
        Ok(value)
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn observations(&self) -> Observations {
        self.observed.clone()
    }

    /// Loads `base + path` and waits for the app to render.
    pub async fn open(&self, path: &str) -> Result<View> {
        let url = format!("{}{path}", self.base);
        self.activate().await?;
        self.client
            .goto(&url)
            .await
            .context(format_args!("opening {url}"))?;
        self.wait("the widget to render", PATIENCE, |v| v.mounted)
            .await
    }

    /// Reloads the page and waits for the app to render again.
    pub async fn reload(&self) -> Result<View> {
        self.activate().await?;
        self.client.refresh().await.context("reloading")?;
        self.wait("the widget to render after the reload", PATIENCE, |v| {
            v.mounted
        })
        .await
    }

    /// Reads the DOM once, and remembers the timeline it shows.
    pub async fn view(&self) -> Result<View> {
        self.activate().await?;
        let value = self
            .client
            .execute(&format!("{READ_ROWS}{READ_VIEW}"), Vec::new())
            .await
            .context("reading the widget's DOM")?;
        let view: View = serde_json::from_value(value).context("the DOM reading")?;
        if let Some(detail) = &view.detail {
            check_timeline(detail)?;
            let mut observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
            let repeat = observed
                .last()
                .is_some_and(|(id, events)| *id == detail.id && *events == detail.events);
            if !repeat {
                observed.push((detail.id.clone(), detail.events.clone()));
            }
        }
        Ok(view)
    }

    /// Every row of the shown operation's timeline, read the way a person
    /// would: scrolled from the top to the bottom a screen at a time (the
    /// timeline is windowed, so no single reading holds them all). Ends
    /// scrolled to the bottom, following again. Remembered like a reading.
    pub async fn walk_timeline(&self) -> Result<Vec<ShownEvent>> {
        self.activate().await?;
        let value = self
            .client
            .execute_async(&format!("{READ_ROWS}{WALK_TIMELINE}"), Vec::new())
            .await
            .context("walking the timeline")?;
        let (id, events): (String, Vec<ShownEvent>) =
            serde_json::from_value(value).context("the timeline walk")?;
        self.observed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, events.clone()));
        Ok(events)
    }

    /// Reads the DOM until `done` holds; the reading that satisfied it.
    pub async fn wait(
        &self,
        what: &str,
        within: Duration,
        mut done: impl FnMut(&View) -> bool,
    ) -> Result<View> {
        let deadline = Instant::now() + within;
        loop {
            let view = self.view().await?;
            if done(&view) {
                return Ok(view);
            }
            if Instant::now() > deadline {
                return Err(Failure::new(format!(
                    "waited {within:?} for {what}; the widget shows {}",
                    describe(&view)
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the detail shows `id`.
    pub async fn wait_detail(
        &self,
        id: &OperationId,
        what: &str,
        mut done: impl FnMut(&Detail) -> bool,
    ) -> Result<Detail> {
        let view = self
            .wait(what, PATIENCE, |v| {
                v.detail
                    .as_ref()
                    .is_some_and(|d| d.id == id.as_str() && done(d))
            })
            .await?;
        view.detail
            .ok_or_else(|| Failure::new("the detail vanished"))
    }

    /// Waits until the connection indicator reads `state`.
    pub async fn wait_connection(&self, state: &str, within: Duration) -> Result<View> {
        self.wait(
            &format!("the connection indicator to read {state:?}"),
            within,
            |v| v.connection.as_deref() == Some(state),
        )
        .await
    }

    /// Fills the start form with a payment, submits it, and waits until
    /// the new operation is listed and shown; its id.
    pub async fn start_payment(&self, form: &PaymentForm) -> Result<OperationId> {
        let before = self.view().await?.list;
        self.choose("Kind", "payment").await?;
        self.fill("Amount", &form.amount).await?;
        self.fill("Description", &form.description).await?;
        self.fill_demo_settings(&form.demo).await?;
        self.submit_start("payment", before).await
    }

    /// [`Widget::start_payment`] for a virtual machine.
    pub async fn start_vm(&self, form: &VmForm) -> Result<OperationId> {
        let before = self.view().await?.list;
        self.choose("Kind", "vm").await?;
        self.fill("Name", &form.name).await?;
        self.choose("Size", &form.size).await?;
        self.fill_demo_settings(&form.demo).await?;
        self.submit_start("VM", before).await
    }

    async fn fill_demo_settings(&self, demo: &DemoSettings) -> Result<()> {
        self.open_demo_settings().await?;
        self.fill("Step delay", &demo.step_ms.to_string()).await?;
        self.fill("Failure chance", &demo.failure_percent.to_string())
            .await
    }

    /// Submits the start form and waits for the operation it starts to be
    /// listed (it was not in `before`) and shown.
    async fn submit_start(&self, what: &str, before: Vec<String>) -> Result<OperationId> {
        self.click("form.optrail-form .optrail-start").await?;
        let view = self
            .wait(
                &format!("the started {what} to be listed and shown"),
                PATIENCE,
                |v| {
                    !v.form_error.is_empty()
                        || v.detail
                            .as_ref()
                            .is_some_and(|d| !before.contains(&d.id) && v.list.contains(&d.id))
                },
            )
            .await?;
        if !view.form_error.is_empty() {
            return Err(Failure::new(format!(
                "the form refused to start: {}",
                view.form_error
            )));
        }
        let detail = view.detail.expect("waited for a detail");
        Ok(OperationId(detail.id))
    }

    /// Picks `value` in the form's select labelled `label…`.
    async fn choose(&self, label: &str, value: &str) -> Result<()> {
        self.activate().await?;
        let select = self
            .client
            .find(Locator::XPath(&form_control(label, "select")))
            .await
            .context(format_args!("finding the {label:?} select"))?;
        select
            .select_by_value(value)
            .await
            .context(format_args!("choosing {value:?} for {label:?}"))?;
        Ok(())
    }

    /// Opens the "Demo settings" disclosure so its inputs can be typed in.
    async fn open_demo_settings(&self) -> Result<()> {
        self.activate().await?;
        let open = self
            .client
            .execute(
                "const d = document.querySelector('form.optrail-form details.optrail-advanced'); \
                 return d ? d.open : null;",
                Vec::new(),
            )
            .await?;
        match open.as_bool() {
            Some(true) => Ok(()),
            Some(false) => {
                self.click("form.optrail-form details.optrail-advanced > summary")
                    .await
            }
            None => Err(Failure::new(
                "the form has no demo settings (details.optrail-advanced)",
            )),
        }
    }

    /// Types `value` into the form input labelled `label…`.
    async fn fill(&self, label: &str, value: &str) -> Result<()> {
        self.activate().await?;
        let input = self
            .client
            .find(Locator::XPath(&form_control(label, "input")))
            .await
            .context(format_args!("finding the {label:?} input"))?;
        if input.prop("value").await?.as_deref() == Some(value) {
            return Ok(());
        }
        input
            .clear()
            .await
            .context(format_args!("clearing {label:?}"))?;
        input
            .send_keys(value)
            .await
            .context(format_args!("typing into {label:?}"))?;
        let typed = input.prop("value").await?.unwrap_or_default();
        if typed != value {
            return Err(Failure::new(format!(
                "the {label:?} input holds {typed:?} after typing {value:?}"
            )));
        }
        Ok(())
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) -> Result<()> {
        self.activate().await?;
        let element = self
            .client
            .find(Locator::Css(css))
            .await
            .context(format_args!("finding {css}"))?;
        element
            .click()
            .await
            .context(format_args!("clicking {css}"))?;
        Ok(())
    }

    /// Shows `id` in the detail by clicking its list item.
    pub async fn select(&self, id: &OperationId) -> Result<Detail> {
        self.click(&format!(
            "li.optrail-list-item[data-operation-id='{id}'] button"
        ))
        .await?;
        self.wait_detail(id, &format!("operation {id} to be shown"), |_| true)
            .await
    }

    /// Clicks Cancel on the shown operation.
    pub async fn cancel(&self) -> Result<()> {
        self.click("article.optrail-operation .optrail-cancel")
            .await
    }

    /// Clicks Retry on the shown (failed) operation.
    pub async fn retry(&self) -> Result<()> {
        self.click("article.optrail-operation .optrail-retry").await
    }

    /// Clicks Forget on the shown operation.
    pub async fn forget(&self) -> Result<()> {
        self.click("article.optrail-operation .optrail-forget")
            .await
    }
}

/// What a single reading must satisfy: seqs strictly increasing, no event
/// id twice.
fn check_timeline(detail: &Detail) -> Result<()> {
    let mut ids = std::collections::HashSet::new();
    let mut last = 0;
    for event in &detail.events {
        if !ids.insert(event.id.as_str()) {
            return Err(Failure::new(format!(
                "operation {} shows event {} twice: {}",
                detail.id,
                event.id,
                describe_events(&detail.events)
            )));
        }
        let Some(seq) = event.seq else {
            // Compat mode: a seed backend gives no seqs at all.
            if detail.events.iter().all(|e| e.seq.is_none()) {
                continue;
            }
            return Err(Failure::new(format!(
                "operation {} shows event {} without a seq",
                detail.id, event.id
            )));
        };
        if seq <= last {
            return Err(Failure::new(format!(
                "operation {} shows seq {seq} after seq {last}: {}",
                detail.id,
                describe_events(&detail.events)
            )));
        }
        last = seq;
    }
    Ok(())
}

/// A reading in one line, for failure messages.
pub fn describe(view: &View) -> String {
    let detail = match &view.detail {
        None => "no detail".to_owned(),
        Some(d) => format!(
            "detail {} status={:?} outcome={:?} reason={:?} recovery={:?} problem={:?} events=[{}]",
            d.id,
            d.status,
            d.outcome,
            d.reason,
            d.recovery,
            d.problem,
            describe_events(&d.events)
        ),
    };
    format!(
        "mounted={} connection={:?} list={:?} form_error={:?} hash={:?}; {detail}",
        view.mounted, view.connection, view.list, view.form_error, view.hash
    )
}

/// `seq:id` pairs.
pub fn describe_events(events: &[ShownEvent]) -> String {
    events
        .iter()
        .map(|e| format!("{}:{}", e.seq.map_or("?".into(), |s| s.to_string()), e.id))
        .collect::<Vec<_>>()
        .join(" ")
}
