//! Resilience, end to end (issue 21): every refusal, hang and odd backend
//! ends in a visible, recoverable state. Each scenario ends with the widget
//! showing exactly the server's events for every operation that exists, and
//! a clear state for one that does not:
//!
//! 1. a socket handshake, then a history request, that never answer;
//! 2. more running operations than one socket may subscribe to;
//! 3. a deep link to an id the server does not know;
//! 4. two widgets of each kind on one page, all with default options;
//! 5. a seed-format backend with one bad id, and with the JSON real backends
//!    write;
//! 6. a server that pings less often than the widget used to assume;
//! 7. two tabs writing the saved set at the same moment.
//!
//! Host pages with options of their own are in `e2e/fixtures/`. Needs
//! `cargo build -p optrail-server` and `scripts/build-web.sh` first.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use optrail_core::{OperationId, Status};
use optrail_e2e::check::{RUN_LIMIT, patience, settles_like_server};
use optrail_e2e::page::{Detail, describe};
use optrail_e2e::proxy::FaultyProxy;
use optrail_e2e::seed_backend::{self, HistoryShape, SeedBackend, by_time_then_id};
use optrail_e2e::server::{ServerOptions, ServerProcess, payment};
use optrail_e2e::{Context, Result, Scenario, Widget, bail, ensure, workspace};
use serde_json::{Value, json};

/// What the widget must say of an operation the server does not know
/// (`.optrail-problem`, compared without case).
const NOT_FOUND: &str = "does not exist or is no longer available";

/// What the widget must say of events it could not read
/// (`.optrail-recovery`, compared without case; "1 event" for one).
const COULD_NOT_READ: &str = "could not read";

/// The deadlines a host sets in scenario 1 (`mount` options): far below
/// the defaults (15 s and 10 s), so that waiting them out is quick.
const REQUEST_TIMEOUT_MS: u64 = 2_000;
const CONNECT_TIMEOUT_MS: u64 = 2_000;

/// A deadline, plus a retry's backoff, plus a page's own slowness: still
/// well under the default deadlines, so that a widget ignoring the host's
/// options cannot pass.
const GIVEN_UP_WITHIN: Duration = Duration::from_secs(6);

/// `e2e/fixtures/resilience.html` mounted with `options` (on top of hash
/// routing and the namespace `resilience`).
fn host_page(options: &Value) -> String {
    let encoded: String =
        url::form_urlencoded::byte_serialize(options.to_string().as_bytes()).collect();
    format!("/resilience.html?options={encoded}")
}

/// The options a host sets to have requests and socket handshakes given up
/// quickly.
fn short_deadlines() -> Value {
    json!({
        "requestTimeoutMs": REQUEST_TIMEOUT_MS,
        "connectTimeoutMs": CONNECT_TIMEOUT_MS,
    })
}

/// [`Scenario::run_with`] on a server that serves the built widget and the
/// fixture pages.
/// Opens `id` on a host page with short deadlines and waits until the proxy
/// holds the first `what`; returns when it did.
async fn open_until_held(
    widget: &Widget,
    proxy: &FaultyProxy,
    id: &OperationId,
    what: &str,
) -> Result<Instant> {
    let page = format!("{}#/operations/{id}", host_page(&short_deadlines()));
    widget.open(&page).await?;
    let first = format!("the first {what} to be held");
    until(&first, patience(), || !proxy.held().is_empty()).await?;
    Ok(Instant::now())
}

/// After a request was held unanswered: the widget gives up on it within
/// [`GIVEN_UP_WITHIN`] (its host set `option` short), asks again, and the
/// operation ends with exactly the server's events.
async fn asks_again_then_settles(
    widget: &Widget,
    s: &Scenario,
    id: &OperationId,
    asked_again: &str,
    (option, ms): (&str, u64),
    held: Instant,
    asked: impl Fn() -> bool,
) -> Result<()> {
    if let Err(e) = until(asked_again, GIVEN_UP_WITHIN, asked).await {
        let view = widget.view().await?;
        bail!(
            "{e} after the first was held ({:.1} s; {option} is {ms}): the widget shows {}",
            held.elapsed().as_secs_f64(),
            describe(&view)
        );
    }
    let (status, _, _) = settles_like_server(widget, &s.server, id).await?;
    ensure!(status == Status::Succeeded, "the server says {status:?}");
    Ok(())
}

async fn run_on_site(
    name: &str,
    options: ServerOptions,
    body: impl AsyncFnOnce(&mut Scenario) -> Result<()>,
) {
    let site = workspace::site_with_fixtures()
        .unwrap_or_else(|e| panic!("{name}: cannot build the site: {e}"));
    let options = ServerOptions {
        static_dir: Some(site.path().to_path_buf()),
        ..options
    };
    Scenario::run_with(name, options, body).await;
}

/// Polls `probe` until it holds; how long that took.
async fn until(what: &str, within: Duration, mut probe: impl FnMut() -> bool) -> Result<Duration> {
    let start = Instant::now();
    loop {
        if probe() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > within {
            bail!("waited {within:?} for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts `n` payments over HTTP; their ids, in start order.
async fn start_payments(
    server: &ServerProcess,
    n: usize,
    step_ms: u64,
    steps: u32,
) -> Result<Vec<OperationId>> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let started = server
            .start_operation("payment", payment(&format!("payment {i}"), step_ms, steps))
            .await?;
        ids.push(started.id);
    }
    Ok(ids)
}

/// Tracks `ids` through the page's `window.optrailWidget` handle.
async fn track(widget: &Widget, ids: &[OperationId]) -> Result<()> {
    let ids: Vec<&str> = ids.iter().map(OperationId::as_str).collect();
    widget
        .execute(
            "for (const id of arguments[0]) window.optrailWidget.track(id); return true;",
            vec![json!(ids)],
        )
        .await
        .context("tracking through window.optrailWidget")?;
    Ok(())
}

// ----- 1. hangs -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_handshake_that_never_answers_is_given_up_after_the_hosts_connect_timeout() {
    run_on_site(
        "held_socket_handshake",
        ServerOptions::default(),
        async |s| {
            let base = s.start_proxy().await?.url();
            let widget = s.browser_at(base).await?;
            let proxy = s.proxy.as_ref().expect("started above");
            proxy.hold("GET /ws", 1);
            let op = s
                .server
                .start_operation("payment", payment("behind a stalled handshake", 300, 20))
                .await?;
            let held = open_until_held(&widget, proxy, &op.id, "WebSocket handshake").await?;
            let view = widget.view().await?;
            ensure!(
                matches!(
                    view.connection.as_deref(),
                    Some("connecting" | "reconnecting")
                ),
                "with its handshake unanswered the widget reads {}",
                describe(&view)
            );
            let asked_again = "a second WebSocket handshake";
            let option = ("connectTimeoutMs", CONNECT_TIMEOUT_MS);
            asks_again_then_settles(&widget, s, &op.id, asked_again, option, held, || {
                proxy.websockets_opened() >= 2
            })
            .await
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_request_that_never_answers_is_retried_after_the_hosts_request_timeout() {
    run_on_site(
        "held_history_request",
        ServerOptions::default(),
        async |s| {
            let base = s.start_proxy().await?.url();
            let widget = s.browser_at(base).await?;
            let proxy = s.proxy.as_ref().expect("started above");
            let op = s
                .server
                .start_operation("payment", payment("behind a stalled request", 300, 20))
                .await?;
            let history = format!("GET /operations/{}/events", op.id);
            proxy.hold(&history, 1);
            let held = open_until_held(&widget, proxy, &op.id, "history request").await?;
            // Waiting for it is visible, and claims nothing.
            let waiting = widget
                .wait_detail(&op.id, "the held operation to be shown", |_| true)
                .await?;
            ensure!(
                !waiting.recovery.contains("none missed"),
                "with its history unanswered the operation reads {:?}",
                waiting.recovery
            );
            let asked_again = "a second history request";
            let option = ("requestTimeoutMs", REQUEST_TIMEOUT_MS);
            asks_again_then_settles(&widget, s, &op.id, asked_again, option, held, || {
                proxy.requests_starting_with(&history) >= 2
            })
            .await
        },
    )
    .await;
}

// ----- 2. more than one socket may subscribe to -----------------------------

/// The server refuses a 65th subscription on one socket
/// (`Limits::subscriptions_per_connection`, `too_many_subscriptions`).
const RUNNING: usize = 70;

/// Reads every list item's status chip: id → `data-status`.
const READ_LIST_STATUSES: &str = r#"
const out = {};
for (const li of document.querySelectorAll('#optrail-app li.optrail-list-item')) {
  const chip = li.querySelector('.optrail-chip');
  out[li.dataset.operationId] = chip ? chip.dataset.status : '';
}
return out;
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seventy_running_operations_each_end_with_exactly_their_events() {
    run_on_site("seventy_running", ServerOptions::default(), async |s| {
        let widget = s.browser().await?;
        widget.open(&host_page(&json!({}))).await?;
        let ids = start_payments(&s.server, RUNNING, 600, 12).await?;
        track(&widget, &ids).await?;
        widget
            .wait("all of them to be listed", patience(), |v| {
                v.list.len() == RUNNING
            })
            .await?;
        for id in &ids {
            s.server.finished(id, RUN_LIMIT).await?;
        }
        // Ended on the server: each shows its outcome in the list soon
        // after (one reading of all of them, so that a stuck one fails fast).
        let deadline = Instant::now() + Duration::from_secs(15);
        let stuck = loop {
            let statuses: BTreeMap<String, String> =
                serde_json::from_value(widget.execute(READ_LIST_STATUSES, Vec::new()).await?)
                    .context("the list's statuses")?;
            let stuck: Vec<(String, String)> = ids
                .iter()
                .map(|id| {
                    let status = statuses.get(id.as_str()).cloned().unwrap_or_default();
                    (id.to_string(), status)
                })
                .filter(|(_, status)| status != "succeeded")
                .collect();
            if stuck.is_empty() || Instant::now() > deadline {
                break stuck;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        if let Some((first, _)) = stuck.first() {
            let detail = widget.select(&OperationId(first.clone())).await?;
            bail!(
                "{} of {RUNNING} operations that succeeded on the server are not shown as \
                 succeeded 15 s later: {stuck:?}; the first of them shows: {}",
                stuck.len(),
                describe_detail(&detail)
            );
        }
        for id in &ids {
            widget.select(id).await?;
            let (status, _, _) = settles_like_server(&widget, &s.server, id).await?;
            ensure!(
                status == Status::Succeeded,
                "{id}: the server says {status:?}"
            );
        }
        Ok(())
    })
    .await;
}

fn describe_detail(detail: &Detail) -> String {
    format!(
        "status={:?} rows={} recovery={:?} problem={:?}",
        detail.status, detail.total, detail.recovery, detail.problem
    )
}

// ----- 3. an id the server does not know -----------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_link_to_an_unknown_id_says_so_can_be_forgotten_and_stays_forgotten() {
    Scenario::run("deep_link_unknown_id", async |s| {
        let base = s.start_proxy().await?.url();
        let widget = s.browser_at(base).await?;
        let proxy = s.proxy.as_ref().expect("started above");
        let hello = OperationId("hello".into());
        widget.open("/#/operations/hello").await?;
        let detail = widget
            .wait_detail(&hello, "the unknown operation to show a problem", |d| {
                d.problem.is_some()
            })
            .await?;
        let problem = detail.problem.clone().unwrap_or_default();
        ensure!(
            problem.to_lowercase().contains(NOT_FOUND),
            "the unknown operation reads {problem:?}, not that it {NOT_FOUND:?}"
        );
        ensure!(
            detail.can_forget && !detail.can_cancel && detail.total == 0,
            "the unknown operation offers Forget: {}, Cancel: {}, and shows {} rows",
            detail.can_forget,
            detail.can_cancel,
            detail.total
        );
        // Not asked for again and again: the socket goes, and no more
        // history requests follow.
        widget.wait_connection("idle", patience()).await?;
        let asked = proxy.requests_starting_with("GET /operations/hello/");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let asked_later = proxy.requests_starting_with("GET /operations/hello/");
        ensure!(
            asked_later == asked,
            "the unknown operation was asked for {} more times in 3 s after it was shown unknown",
            asked_later - asked
        );

        widget.forget().await?;
        widget
            .wait("Forget to remove the unknown operation", patience(), |v| {
                v.list.is_empty() && v.detail.is_none()
            })
            .await?;
        // Every tracked set stored, of any key: none may hold it (a list of
        // forgotten ids, which keeps other tabs from bringing it back, may).
        let stored = widget
            .execute(
                "return JSON.stringify(Object.values(localStorage).flatMap(raw => { \
                   try { return (JSON.parse(raw).operations || []).map(o => o.id); } \
                   catch (e) { return []; } }));",
                Vec::new(),
            )
            .await?;
        ensure!(
            !stored.as_str().unwrap_or_default().contains("hello"),
            "after Forget the browser still stores it: {stored}"
        );
        widget.reload().await?;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let view = widget.view().await?;
        ensure!(
            view.list.is_empty() && view.detail.is_none(),
            "the forgotten operation came back after a reload: {}",
            describe(&view)
        );
        Ok(())
    })
    .await;
}

// ----- 4. two widgets of each kind, default options ------------------------

/// Per widget root of `two-widgets.html` (two `mount`ed divs, then two
/// `<optrail-operations>`), the ids it lists; `null` until it has rendered.
const READ_TWO_WIDGETS: &str = r#"
if (document.body.dataset.ready !== 'true') return null;
const roots = [...document.querySelectorAll('div.host-widget, optrail-operations')];
if (roots.length !== 4 || roots.some((r) => !r.querySelector('section.optrail'))) return null;
return roots.map((r) => [...r.querySelectorAll('li.optrail-list-item')].map((li) => li.dataset.operationId));
"#;

async fn lists_of_two_widgets(widget: &Widget, want: &[Vec<String>]) -> Result<Vec<Vec<String>>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let read = widget.execute(READ_TWO_WIDGETS, Vec::new()).await?;
        let lists: Option<Vec<Vec<String>>> =
            serde_json::from_value(read).context("the widgets' lists")?;
        if let Some(lists) = lists
            && (lists == want || Instant::now() > deadline)
        {
            return Ok(lists);
        }
        if Instant::now() > deadline {
            bail!("the page's four widgets did not render within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_widgets_of_each_kind_with_default_options_keep_their_own_operations_across_a_reload() {
    run_on_site(
        "two_widgets_default_options",
        ServerOptions::default(),
        async |s| {
            let ids = start_payments(&s.server, 4, 0, 1).await?;
            for id in &ids {
                s.server.finished(id, RUN_LIMIT).await?;
            }
            let own: Vec<Vec<String>> = ids.iter().map(|id| vec![id.to_string()]).collect();
            let widget = s.browser().await?;
            let query: Vec<String> = ids.iter().map(|id| format!("track={id}")).collect();
            widget
                .client()
                .goto(&format!(
                    "{}/two-widgets.html?{}",
                    widget.base(),
                    query.join("&")
                ))
                .await?;
            let before = lists_of_two_widgets(&widget, &own).await?;
            widget.client().refresh().await.context("reloading")?;
            let after = lists_of_two_widgets(&widget, &own).await?;
            ensure!(
                before == own && after == own,
                "the page's widgets (two mounted divs, two <optrail-operations>, all without a \
             namespace or an id) were given one operation each, {own:?}; they list {before:?}, \
             and after a reload {after:?}"
            );
            Ok(())
        },
    )
    .await;
}

// ----- 5. seed-format backends ---------------------------------------------

/// Waits for `payment` to be shown succeeded, scrolls through it; the ids
/// shown and the detail.
async fn succeeded_compat(widget: &Widget, payment: &str) -> Result<(Vec<String>, Detail)> {
    let id = OperationId(payment.to_owned());
    widget.select(&id).await?;
    let detail = widget
        // Without seqs the end is confirmed by one more history read (the
        // recovery line says so meanwhile): wait for that too.
        .wait_detail(&id, &format!("{payment} to be shown succeeded"), |d| {
            d.status == "succeeded" && !d.recovery.starts_with("Catching up")
        })
        .await?;
    let shown = widget.walk_timeline().await?;
    Ok((shown.into_iter().map(|e| e.id).collect(), detail))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compat_one_unknown_id_among_good_ones_is_not_found_and_touches_no_other_socket() {
    Scenario::run("compat_one_bad_id", async |scenario| {
        let good = ["pay-good-1", "pay-good-2"];
        let bad = "pay-missing";
        let backend = SeedBackend::start(good[0]).await?;
        backend.add_payment(good[1], HistoryShape::Array);
        for (g, payment) in good.iter().enumerate() {
            backend.emit_to(
                payment,
                seed_backend::event(&format!("{g}-a"), "ProcessingStarted", 1_000),
            );
            backend.emit_to(
                payment,
                seed_backend::event(&format!("{g}-b"), "FraudCheckStarted", 2_000),
            );
        }
        let widget = scenario.browser_at(backend.url()).await?;
        widget
            .open(&format!("/compat.html#/operations/{}", good[0]))
            .await?;
        let ids = [good[0], bad, good[1]].map(|p| OperationId(p.to_owned()));
        track(&widget, &ids).await?;
        let good_sockets = || good.map(|p| backend.asked(p).sockets);
        until("a socket for each good payment", patience(), || {
            good_sockets().iter().all(|&n| n >= 1)
        })
        .await?;
        // Live while the bad id is being refused.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (g, payment) in good.iter().enumerate() {
            backend.emit_to(
                payment,
                seed_backend::event(&format!("{g}-c"), "FraudCheckPassed", 3_000),
            );
        }
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        for (g, payment) in good.iter().enumerate() {
            backend.emit_to(
                payment,
                seed_backend::event(&format!("{g}-z"), "PaymentSucceeded", 4_000),
            );
        }

        let bad_id = OperationId(bad.to_owned());
        widget.select(&bad_id).await?;
        let shown = widget
            .wait(
                "the unknown payment to show a problem",
                Duration::from_secs(10),
                |v| {
                    v.detail
                        .as_ref()
                        .is_some_and(|d| d.id == bad && d.problem.is_some())
                },
            )
            .await;
        let detail = match shown {
            Ok(view) => view.detail.expect("waited for it"),
            Err(e) => bail!(
                "{e}; the seed backend was asked for it {:?}, the good ones' sockets were \
                 opened {:?} times",
                backend.asked(bad),
                good_sockets()
            ),
        };
        let problem = detail.problem.clone().unwrap_or_default();
        ensure!(
            problem.to_lowercase().contains(NOT_FOUND) && detail.can_forget,
            "the unknown payment reads {problem:?} (Forget offered: {})",
            detail.can_forget
        );
        for payment in good {
            let (shown, detail) = succeeded_compat(&widget, payment).await?;
            let expected = by_time_then_id(&backend.events_of(payment));
            ensure!(
                shown == expected,
                "{payment} shows {shown:?}; the seed backend's events in (happenedAt, id) \
                 order are {expected:?} (recovery {:?})",
                detail.recovery
            );
        }
        let asked = backend.asked(bad);
        tokio::time::sleep(Duration::from_secs(3)).await;
        ensure!(
            backend.asked(bad) == asked,
            "the unknown payment was asked for again after it was shown unknown: {asked:?}, \
             then {:?}",
            backend.asked(bad)
        );
        ensure!(
            good_sockets() == [1, 1],
            "one unknown id made the widget reopen the good payments' sockets: opened {:?} times",
            good_sockets()
        );
        Ok(())
    })
    .await;
}

/// The format of one odd timestamp, as real backends write them.
#[derive(Clone, Copy)]
enum Stamp {
    /// ASP.NET's `DateTimeOffset`: seven fraction digits, `+00:00`.
    AspNet,
    /// An offset without a colon: `+0200`.
    CompactOffset,
    /// Plain RFC 3339 with another offset: `-07:00`.
    Western,
    /// Plain RFC 3339 in UTC with milliseconds.
    Zulu,
}

/// `2026-12-01T01:49:{46 + ms/1000}.{ms%1000}{ticks}` UTC, written as `stamp`
/// (`ticks`: the four digits after the millisecond, kept only by AspNet).
fn odd_time(ms: u64, ticks: u32, stamp: Stamp) -> String {
    let (second, milli) = (46 + ms / 1000, ms % 1000);
    match stamp {
        Stamp::AspNet => format!("2026-12-01T01:49:{second:02}.{milli:03}{ticks:04}+00:00"),
        Stamp::CompactOffset => format!("2026-12-01T03:49:{second:02}.{milli:03}+0200"),
        Stamp::Western => format!("2026-11-30T18:49:{second:02}.{milli:03}-07:00"),
        Stamp::Zulu => format!("2026-12-01T01:49:{second:02}.{milli:03}Z"),
    }
}

/// A payment's 28 events in the order they happened, in the JSON real
/// backends write: odd timestamps, `null` details and messages. Two of them
/// happened within one millisecond, the later one with the smaller id: only
/// the seven-digit fraction orders them. Three carry no offset at all; they
/// happened a day later, so their order holds whatever zone they are read in.
fn odd_events() -> Vec<Value> {
    let stamps = [
        Stamp::AspNet,
        Stamp::CompactOffset,
        Stamp::Western,
        Stamp::Zulu,
    ];
    let mut events = Vec::new();
    for i in 0..22u64 {
        let stamp = stamps[i as usize % stamps.len()];
        let mut event = json!({
            "id": format!("odd-{i:02}"),
            "type": if i == 0 { "ProcessingStarted" } else { "ProgressUpdated" },
            "message": format!("step {i}"),
            "happenedAt": odd_time(i * 100, 2_417, stamp),
            "details": { "step": i },
        });
        if i % 3 == 1 {
            event["details"] = Value::Null;
        }
        if i % 5 == 2 {
            event["message"] = Value::Null;
        }
        events.push(event);
    }
    // Within one millisecond: .2224417 then .2224418; by id alone the
    // other way round.
    for (id, ticks) in [("odd-22b", 4_417), ("odd-22a", 4_418)] {
        events.push(json!({
            "id": id, "type": "ProgressUpdated", "message": id,
            "happenedAt": odd_time(2_222, ticks, Stamp::AspNet), "details": null,
        }));
    }
    for i in 0..3u64 {
        events.push(json!({
            "id": format!("odd-3{i}"), "type": "ProgressUpdated", "message": null,
            "happenedAt": format!("2026-12-02T00:00:0{i}.5"), "details": {},
        }));
    }
    events.push(json!({
        "id": "odd-99", "type": "PaymentSucceeded", "message": "Paid",
        "happenedAt": "2026-12-02T15:00:00.0000000+00:00", "details": {},
    }));
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compat_shows_every_event_of_the_json_real_backends_write_and_never_a_false_none_missed() {
    Scenario::run("compat_odd_json", async |scenario| {
        let odd = "pay-odd";
        let broken = "pay-broken";
        let backend = SeedBackend::start(odd).await?;
        backend.add_payment(broken, HistoryShape::Wrapped);
        let events = odd_events();
        ensure!(events.len() == 28, "{} odd events", events.len());
        let (before, live) = events.split_at(14);
        for event in before {
            backend.emit_to(odd, event.clone());
        }
        // Five readable events and one no reader can place (no id, no
        // time), then the end; its history wrapped as `{"events": [...]}`.
        for (i, kind) in ["ProcessingStarted", "FraudCheckStarted", "FraudCheckPassed"]
            .iter()
            .enumerate()
        {
            backend.emit_to(
                broken,
                seed_backend::event(&format!("brk-{i}"), kind, 1_000 * i as u64),
            );
        }
        backend.emit_to(
            broken,
            json!({ "type": "ProgressUpdated", "message": "garbled" }),
        );
        backend.emit_to(
            broken,
            seed_backend::event("brk-3", "ProgressUpdated", 3_500),
        );
        backend.emit_to(
            broken,
            seed_backend::event("brk-4", "ProgressUpdated", 3_700),
        );

        let widget = scenario.browser_at(backend.url()).await?;
        widget
            .open(&format!("/compat.html#/operations/{odd}"))
            .await?;
        track(&widget, &[OperationId(broken.to_owned())]).await?;
        until("a socket for each payment", patience(), || {
            backend.asked(odd).sockets >= 1 && backend.asked(broken).sockets >= 1
        })
        .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        for event in live {
            backend.emit_to(odd, event.clone());
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        backend.emit_to(
            broken,
            seed_backend::event("brk-9", "PaymentSucceeded", 4_000),
        );

        let (shown, detail) = succeeded_compat(&widget, odd).await?;
        let expected: Vec<String> = events
            .iter()
            .map(|e| e["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        ensure!(
            shown == expected,
            "{odd} shows {} of its {} events, under {:?}: {shown:?}; in the order they happened \
             they are {expected:?}",
            shown.len(),
            expected.len(),
            detail.recovery
        );
        ensure!(
            detail.recovery == "All 28 events, none missed",
            "{odd}, whole, reads {:?}",
            detail.recovery
        );

        let (shown, detail) = succeeded_compat(&widget, broken).await?;
        let readable = ["brk-0", "brk-1", "brk-2", "brk-3", "brk-4", "brk-9"];
        ensure!(
            shown == readable,
            "{broken} shows {shown:?}; its readable events are {readable:?}"
        );
        let recovery = detail.recovery.to_lowercase();
        ensure!(
            !recovery.contains("none missed")
                && recovery.contains(&format!("{COULD_NOT_READ} 1 event")),
            "{broken}, one of whose events could not be read, reads {:?}",
            detail.recovery
        );
        Ok(())
    })
    .await;
}

// ----- 6. a server that pings rarely ----------------------------------------

/// Longer than twice the 15 s the widget used to assume.
const RARE_PING_MS: u64 = 40_000;

/// How long a quiet, healthy socket is watched: past the 30 s after which
/// a widget assuming 15 s pings declares it dead.
const QUIET_WATCH: Duration = Duration::from_secs(34);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_socket_of_a_server_pinging_every_40_s_is_not_declared_dead() {
    let options = ServerOptions {
        ping_interval_ms: RARE_PING_MS,
        ..ServerOptions::default()
    };
    Scenario::run_with("rare_pings", options, async |s| {
        let base = s.start_proxy().await?.url();
        let widget = s.browser_at(base).await?;
        let proxy = s.proxy.as_ref().expect("started above");
        // One event now, the next in 60 s: the socket carries nothing but
        // the server's pings meanwhile.
        let op = s
            .server
            .start_operation("payment", payment("quiet", 60_000, 3))
            .await?;
        widget.open(&format!("/#/operations/{}", op.id)).await?;
        widget
            .wait(
                "the operation to be live with its first event",
                patience(),
                |v| {
                    v.connection.as_deref() == Some("live")
                        && v.detail.as_ref().is_some_and(|d| d.total >= 1)
                },
            )
            .await?;
        let live = Instant::now();
        while live.elapsed() < QUIET_WATCH {
            let view = widget.view().await?;
            let sockets = proxy.websockets_opened();
            ensure!(
                sockets == 1 && view.connection.as_deref() == Some("live"),
                "{:.1} s into a quiet, healthy connection (the server pings every {} s): {sockets} \
                 WebSockets opened, the widget reads {}",
                live.elapsed().as_secs_f64(),
                RARE_PING_MS / 1000,
                describe(&view)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        widget
            .wait_detail(&op.id, "Cancel to be offered", |d| d.can_cancel)
            .await?;
        widget.cancel().await?;
        let (status, _, _) = settles_like_server(&widget, &s.server, &op.id).await?;
        ensure!(status == Status::Canceled, "the server says {status:?}");
        Ok(())
    })
    .await;
}

// ----- 7. two tabs writing at once ------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_saving_at_the_same_moment_keep_each_others_operations() {
    run_on_site(
        "two_tabs_same_moment",
        ServerOptions::default(),
        async |s| {
            let ids = start_payments(&s.server, 2, 0, 1).await?;
            for id in &ids {
                s.server.finished(id, RUN_LIMIT).await?;
            }
            let page = host_page(&json!({}));
            let mut first = s.browser().await?;
            first.open(&page).await?;
            let second = first.new_window().await?;
            second.open(&page).await?;
            // The second tab saves its operation the moment it hears of the
            // first tab's signal, which the first sends just before saving its
            // own: the second saves before it has heard of the first's save.
            second
                .execute(
                    "const id = arguments[0]; \
                 addEventListener('storage', (e) => { \
                   if (e.key === 'e2e-go') window.optrailWidget.track(id); \
                 }); return true;",
                    vec![json!(ids[1].as_str())],
                )
                .await?;
            first
                .execute(
                    "localStorage.setItem('e2e-go', '1'); \
                 window.optrailWidget.track(arguments[0]); return true;",
                    vec![json!(ids[0].as_str())],
                )
                .await?;
            let mut both: Vec<String> = ids.iter().map(ToString::to_string).collect();
            both.sort();
            let lists_both = |list: &[String]| {
                let mut list = list.to_vec();
                list.sort();
                list == both
            };
            for (name, tab) in [("first", &first), ("second", &second)] {
                let shown = tab
                    .wait(
                        &format!("the {name} tab to list both operations"),
                        Duration::from_secs(5),
                        |v| lists_both(&v.list),
                    )
                    .await;
                if let Err(e) = shown {
                    let (one, two) = (first.view().await?.list, second.view().await?.list);
                    let stored = first
                        .execute(
                            "return localStorage.getItem('resilience:tracked');",
                            Vec::new(),
                        )
                        .await?;
                    bail!(
                        "{e}: the first tab, which tracked {}, lists {one:?}; the second, which \
                     tracked {}, lists {two:?}; stored: {stored}",
                        ids[0],
                        ids[1]
                    );
                }
            }
            for (name, tab) in [("first", &first), ("second", &second)] {
                tab.reload().await?;
                tab.wait(
                    &format!("the {name} tab to list both operations after a reload"),
                    Duration::from_secs(5),
                    |v| lists_both(&v.list),
                )
                .await?;
            }
            Ok(())
        },
    )
    .await;
}
