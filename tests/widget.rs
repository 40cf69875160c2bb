//! The widget in headless Chromium: the real components, driven through
//! the real session with recorded I/O — events in, DOM out.
#![cfg(target_arch = "wasm32")]

use optrail::{Config, IoMode, Widget, mount};
use optrail_core::{
    Command, Epoch, Event, EventId, EventType, EventsPage, Input, OperationId, RequestId, Seq,
    SocketId, Status, Timestamp, TrackedOperation,
};
use serde_json::{Map, json};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::{Element, HtmlElement};

wasm_bindgen_test_configure!(run_in_browser);

const OP: &str = "0123456789abcdef0123456789abcdef";

fn document() -> web_sys::Document {
    web_sys::window().unwrap().document().unwrap()
}

/// A fresh host element and a widget with its own storage namespace.
fn widget_in(namespace: &str) -> (Widget, HtmlElement) {
    let host: HtmlElement = document().create_element("div").unwrap().unchecked_into();
    document().body().unwrap().append_child(&host).unwrap();
    let config = Config {
        io: IoMode::Recorded,
        namespace: namespace.to_owned(),
        seed: 7,
        ..Config::default()
    };
    (mount(host.clone(), config), host)
}

/// Lets the driver publish (on the next animation frame) and Leptos run
/// its scheduled effects.
async fn settle() {
    gloo_timers::future::TimeoutFuture::new(30).await;
}

fn event(seq: u64, kind: &str, message: &str) -> Event {
    let mut details = Map::new();
    if kind == "ProgressUpdated" {
        details.insert("percentage".into(), json!(seq * 10));
    }
    if kind == "PaymentFailed" {
        details.insert("reason".into(), json!("Card declined"));
    }
    Event {
        id: EventId(format!("ev-{seq}")),
        seq: Some(Seq(seq)),
        kind: EventType::from(kind),
        message: message.to_owned(),
        happened_at: Timestamp(1_790_000_000_000 + seq as i64 * 1000),
        sub_ms_ns: 0,
        details,
        status: None,
    }
}

fn page(events: Vec<Event>, head: u64) -> EventsPage {
    EventsPage {
        operation_id: OperationId(OP.into()),
        kind: "payment".into(),
        epoch: Epoch(1),
        head: Seq(head),
        status: Status::Running,
        events,
        has_more: false,
        unreadable: 0,
    }
}

fn frame(value: serde_json::Value) -> String {
    value.to_string()
}

/// Tracks OP, opens the socket and answers the subscribe and the first
/// history request with `history`; returns the socket id.
async fn follow(widget: &Widget, host: &HtmlElement, history: Vec<Event>, head: u64) -> SocketId {
    let driver = widget.driver();
    driver.input(Input::Track {
        operation: TrackedOperation {
            kind: "payment".into(),
            params: json!({"description": "Order #7"}),
            ..TrackedOperation::by_id(OperationId(OP.into()))
        },
        epoch: Some(Epoch(1)),
    });
    let socket = driver
        .take_recorded()
        .into_iter()
        .find_map(|c| match c {
            Command::OpenSocket(id) => Some(id),
            _ => None,
        })
        .expect("the session opens a socket for a tracked operation");
    driver.input(Input::SocketOpened(socket));
    let subscribed = driver.take_recorded();
    assert!(
        subscribed
            .iter()
            .any(|c| matches!(c, Command::Send(_, f) if f.to_json().contains("\"subscribe\""))),
        "subscribes before anything else: {subscribed:?}"
    );
    assert!(
        !subscribed
            .iter()
            .any(|c| matches!(c, Command::FetchHistory { .. })),
        "no history is fetched before `subscribed`"
    );
    driver.input(Input::FrameReceived(
        socket,
        frame(json!({"type": "subscribed", "operationId": OP, "epoch": 1, "head": head})),
    ));
    let request = fetch_request(widget);
    driver.input(Input::HistoryReceived {
        request,
        page: page(history, head),
    });
    settle().await;
    select_operation(host);
    settle().await;
    socket
}

/// [`follow`] with one `ProcessingStarted` event in the history.
async fn follow_started(widget: &Widget, host: &HtmlElement) -> SocketId {
    follow(
        widget,
        host,
        vec![event(1, "ProcessingStarted", "started")],
        1,
    )
    .await
}

fn fetch_request(widget: &Widget) -> RequestId {
    widget
        .driver()
        .take_recorded()
        .into_iter()
        .find_map(|c| match c {
            Command::FetchHistory { request, .. } => Some(request),
            _ => None,
        })
        .expect("the session fetches history after `subscribed`")
}

fn push(widget: &Widget, socket: SocketId, event: Event) {
    widget.driver().input(Input::FrameReceived(
        socket,
        frame(json!({"type": "event", "operationId": OP, "epoch": 1, "event": event})),
    ));
}

fn select_operation(host: &HtmlElement) {
    let button = host
        .query_selector(&format!("[data-operation-id='{OP}'] button"))
        .unwrap()
        .expect("the tracked operation is listed");
    button.unchecked_into::<HtmlElement>().click();
}

fn texts(host: &HtmlElement, selector: &str) -> Vec<String> {
    let nodes = host.query_selector_all(selector).unwrap();
    (0..nodes.length())
        .map(|i| nodes.item(i).unwrap().text_content().unwrap_or_default())
        .collect()
}

fn attr(host: &HtmlElement, selector: &str, name: &str) -> Option<String> {
    host.query_selector(selector).unwrap()?.get_attribute(name)
}

#[wasm_bindgen_test]
async fn history_and_live_events_render_once_in_seq_order() {
    let (widget, host) = widget_in("t-order");
    let socket = follow(
        &widget,
        &host,
        vec![
            event(1, "ProcessingStarted", "started"),
            event(3, "ProgressUpdated", "30 %"),
        ],
        3,
    )
    .await;
    // A gap (2 missing) and a live duplicate of 3.
    push(&widget, socket, event(3, "ProgressUpdated", "30 %"));
    push(&widget, socket, event(4, "ProgressUpdated", "40 %"));
    let gap = fetch_request(&widget);
    widget.driver().input(Input::HistoryReceived {
        request: gap,
        page: page(vec![event(2, "FraudCheckStarted", "fraud check")], 4),
    });
    settle().await;
    let seqs: Vec<_> = {
        let nodes = host.query_selector_all(".optrail-event").unwrap();
        (0..nodes.length())
            .map(|i| {
                nodes
                    .item(i)
                    .unwrap()
                    .unchecked_into::<Element>()
                    .get_attribute("data-seq")
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(seqs, ["1", "2", "3", "4"]);
    assert_eq!(
        texts(&host, ".optrail-event-message"),
        ["started", "fraud check", "30 %", "40 %"]
    );
    assert_eq!(
        attr(
            &host,
            ".optrail-operation [role=progressbar]",
            "aria-valuenow"
        )
        .as_deref(),
        Some("40")
    );
    assert_eq!(
        attr(&host, ".optrail-operation", "data-status").as_deref(),
        Some("running")
    );
    widget.unmount();
}

/// The `data-seq` of every timeline row in the DOM, in DOM order.
fn shown_seqs(host: &HtmlElement) -> Vec<u64> {
    let nodes = host.query_selector_all(".optrail-event").unwrap();
    (0..nodes.length())
        .filter_map(|i| {
            let row = nodes.item(i)?.unchecked_into::<Element>();
            row.get_attribute("data-seq")?.parse().ok()
        })
        .collect()
}

/// Adds the widget's stylesheet to the test page (once): scrolling needs
/// the timeline's real size.
fn with_stylesheet() {
    let document = document();
    if document.get_element_by_id("optrail-css").is_some() {
        return;
    }
    let style = document.create_element("style").unwrap();
    style.set_id("optrail-css");
    style.set_text_content(Some(include_str!("../style/optrail.css")));
    document.head().unwrap().append_child(&style).unwrap();
}

#[wasm_bindgen_test]
async fn a_long_timeline_keeps_a_window_of_rows_follows_its_tail_and_offers_a_jump_back() {
    with_stylesheet();
    let (widget, host) = widget_in("t-window");
    let socket = follow_started(&widget, &host).await;
    for seq in 2..=2_000 {
        push(
            &widget,
            socket,
            event(seq, "ProgressUpdated", &format!("step {seq}")),
        );
    }
    settle().await;
    settle().await;
    let rows = shown_seqs(&host);
    assert_eq!(
        attr(&host, ".optrail-timeline", "data-rows").as_deref(),
        Some("2000")
    );
    assert!(
        rows.len() < 100,
        "{} rows in the DOM for 2 000 events",
        rows.len()
    );
    assert_eq!(rows.last(), Some(&2_000), "it follows the tail: {rows:?}");
    assert!(
        rows.windows(2).all(|w| w[1] == w[0] + 1),
        "one run, in order: {rows:?}"
    );
    assert_eq!(
        attr(&host, ".optrail-event:last-child", "aria-setsize").as_deref(),
        Some("2000")
    );
    assert!(
        attr(&host, ".optrail-jump", "hidden").is_some(),
        "following: no jump"
    );

    // Scrolled to the top, it stops following; new events do not pull it
    // back, and the jump says how many came.
    let scroller: HtmlElement = host
        .query_selector(".optrail-timeline-scroller")
        .unwrap()
        .unwrap()
        .unchecked_into();
    scroller.set_scroll_top(0);
    settle().await;
    assert_eq!(shown_seqs(&host).first(), Some(&1), "the top is shown");
    for seq in 2_001..=2_005 {
        push(
            &widget,
            socket,
            event(seq, "ProgressUpdated", &format!("step {seq}")),
        );
    }
    settle().await;
    assert_eq!(shown_seqs(&host).first(), Some(&1), "still at the top");
    assert!(attr(&host, ".optrail-jump", "hidden").is_none());
    assert_eq!(texts(&host, ".optrail-jump"), ["Jump to latest (5 new)"]);
    host.query_selector(".optrail-jump")
        .unwrap()
        .unwrap()
        .unchecked_into::<HtmlElement>()
        .click();
    settle().await;
    settle().await;
    assert_eq!(shown_seqs(&host).last(), Some(&2_005), "back at the tail");
    assert!(attr(&host, ".optrail-jump", "hidden").is_some());
    widget.unmount();
}

#[wasm_bindgen_test]
async fn a_running_operation_can_be_forgotten_which_stops_following_without_canceling() {
    let (widget, host) = widget_in("t-forget-running");
    follow_started(&widget, &host).await;
    assert!(host.query_selector(".optrail-cancel").unwrap().is_some());
    host.query_selector(".optrail-forget")
        .unwrap()
        .expect("a running operation offers Forget")
        .unchecked_into::<HtmlElement>()
        .click();
    settle().await;
    assert!(host.query_selector(".optrail-list-item").unwrap().is_none());
    let commands = widget.driver().take_recorded();
    assert!(
        commands
            .iter()
            .any(|c| matches!(c, Command::Send(_, f) if f.to_json().contains("\"unsubscribe\""))),
        "following ends: {commands:?}"
    );
    assert!(
        !commands.iter().any(|c| matches!(c, Command::Cancel(_))),
        "forgetting is not canceling: {commands:?}"
    );
    widget.unmount();
}

#[wasm_bindgen_test]
async fn terminal_event_switches_to_the_succeeded_view_and_unsubscribes() {
    let (widget, host) = widget_in("t-succeeded");
    let socket = follow_started(&widget, &host).await;
    assert!(host.query_selector(".optrail-cancel").unwrap().is_some());
    push(
        &widget,
        socket,
        event(2, "PaymentSucceeded", "Payment done"),
    );
    settle().await;
    assert_eq!(
        attr(&host, ".optrail-outcome", "data-outcome").as_deref(),
        Some("succeeded")
    );
    assert!(host.query_selector(".optrail-cancel").unwrap().is_none());
    assert_eq!(
        attr(
            &host,
            ".optrail-operation [role=progressbar]",
            "aria-valuenow"
        )
        .as_deref(),
        Some("100")
    );
    let commands = widget.driver().take_recorded();
    assert!(
        commands
            .iter()
            .any(|c| matches!(c, Command::Send(_, f) if f.to_json().contains("\"unsubscribe\""))),
        "the subscription ends: {commands:?}"
    );
    widget.unmount();
}

#[wasm_bindgen_test]
async fn failed_view_shows_the_reason_and_offers_retry() {
    let (widget, host) = widget_in("t-failed");
    let socket = follow_started(&widget, &host).await;
    push(&widget, socket, event(2, "PaymentFailed", "Payment failed"));
    settle().await;
    assert_eq!(
        attr(&host, ".optrail-outcome", "data-outcome").as_deref(),
        Some("failed")
    );
    assert_eq!(texts(&host, ".optrail-failure-reason"), ["Card declined"]);
    assert!(host.query_selector(".optrail-retry").unwrap().is_some());
    widget.unmount();
}

#[wasm_bindgen_test]
async fn html_in_a_message_shows_as_literal_text() {
    let (widget, host) = widget_in("t-xss");
    let hostile = "<img src=x onerror=\"window.__pwned=1\"><b>bold</b>";
    follow(
        &widget,
        &host,
        vec![event(1, "ProcessingStarted", hostile)],
        1,
    )
    .await;
    assert_eq!(texts(&host, ".optrail-event-message"), [hostile]);
    assert!(host.query_selector("img, b").unwrap().is_none());
    settle().await;
    let pwned = js_sys::Reflect::get(&web_sys::window().unwrap(), &"__pwned".into()).unwrap();
    assert!(pwned.is_undefined());
    widget.unmount();
}

#[wasm_bindgen_test]
async fn a_reload_resumes_every_tracked_operation_from_local_storage() {
    let (first, _) = widget_in("t-resume");
    first.driver().input(Input::Track {
        operation: TrackedOperation::by_id(OperationId(OP.into())),
        epoch: None,
    });
    first.unmount();

    let (second, host) = widget_in("t-resume");
    settle().await;
    assert_eq!(
        attr(&host, ".optrail-list-item", "data-operation-id").as_deref(),
        Some(OP)
    );
    assert!(
        attr(&host, ".optrail-empty", "hidden").is_some(),
        "the empty-list hint is hidden"
    );
    let commands = second.driver().take_recorded();
    let socket = commands
        .iter()
        .find_map(|c| match c {
            Command::OpenSocket(id) => Some(*id),
            _ => None,
        })
        .expect("the resumed operation needs the live channel");
    second.driver().input(Input::SocketOpened(socket));
    let commands = second.driver().take_recorded();
    assert!(
        commands
            .iter()
            .any(|c| matches!(c, Command::Send(_, f) if f.to_json().contains(OP))),
        "it subscribes again: {commands:?}"
    );
    second.unmount();
}

#[wasm_bindgen_test]
async fn corrupt_storage_is_reset_with_a_visible_notice() {
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    storage.set_item("t-corrupt:tracked", "{not json").unwrap();
    let (widget, host) = widget_in("t-corrupt");
    settle().await;
    let notice = texts(&host, ".optrail-notice").join(" ");
    assert!(notice.contains("reset"), "notice shown: {notice:?}");
    assert!(storage.get_item("t-corrupt:tracked").unwrap().is_none());
    assert!(host.query_selector(".optrail-list-item").unwrap().is_none());
    assert_eq!(texts(&host, ".optrail-empty"), ["No operations yet."]);
    assert!(attr(&host, ".optrail-empty", "hidden").is_none());
    widget.unmount();

    storage
        .set_item("t-foreign:tracked", r#"{"version":99,"operations":[]}"#)
        .unwrap();
    let (widget, host) = widget_in("t-foreign");
    settle().await;
    assert!(
        texts(&host, ".optrail-notice")
            .join(" ")
            .contains("another version")
    );
    widget.unmount();
}

#[wasm_bindgen_test]
async fn unmount_removes_the_widget_from_the_page() {
    let (widget, host) = widget_in("t-unmount");
    settle().await;
    assert!(host.query_selector(".optrail").unwrap().is_some());
    widget.unmount();
    settle().await;
    assert_eq!(host.child_element_count(), 0);
}

/// The start form's field whose label starts with `label`: (label, control).
fn form_field(host: &HtmlElement, label: &str) -> (Element, Element) {
    let labels = host
        .query_selector_all("form.optrail-form label.optrail-field")
        .unwrap();
    (0..labels.length())
        .map(|i| labels.item(i).unwrap().unchecked_into::<Element>())
        .find(|l| {
            l.query_selector(".optrail-label")
                .unwrap()
                .and_then(|s| s.text_content())
                .is_some_and(|t| t.starts_with(label))
        })
        .map(|l| {
            let control = l.query_selector("input, select").unwrap().unwrap();
            (l, control)
        })
        .unwrap_or_else(|| panic!("the form has a {label:?} field"))
}

fn set_value(control: &Element, value: &str) {
    js_sys::Reflect::set(control, &"value".into(), &value.into()).unwrap();
}

#[wasm_bindgen_test]
async fn the_start_form_switches_kinds_keeps_what_was_typed_and_explains_a_bad_number() {
    let host: HtmlElement = document().create_element("div").unwrap().unchecked_into();
    document().body().unwrap().append_child(&host).unwrap();
    let config = Config {
        io: IoMode::Recorded,
        namespace: "t-form".into(),
        start_form: true,
        demo_controls: true,
        ..Config::default()
    };
    let widget = mount(host.clone(), config);
    settle().await;
    let hidden = |label: &str| form_field(&host, label).0.has_attribute("hidden");
    assert!(!hidden("Amount") && !hidden("Description"));
    assert!(
        hidden("Name") && hidden("Size"),
        "VM fields wait for their kind"
    );

    let (_, amount) = form_field(&host, "Amount");
    set_value(&amount, "12,50");
    let start = host.query_selector(".optrail-start").unwrap().unwrap();
    start.unchecked_ref::<HtmlElement>().click();
    settle().await;
    let error = texts(&host, ".optrail-form-error").join(" ");
    assert!(error.contains("Enter the amount as a number"), "{error:?}");
    assert!(
        widget.driver().take_recorded().is_empty(),
        "nothing is sent for a form that does not read"
    );

    let (_, kind) = form_field(&host, "Kind");
    set_value(&kind, "vm");
    kind.dispatch_event(&web_sys::Event::new("change").unwrap())
        .unwrap();
    settle().await;
    assert!(hidden("Amount") && hidden("Description"));
    assert!(!hidden("Name") && !hidden("Size"));

    // The VM's own fields read; the demo settings are checked next.
    let (_, failure) = form_field(&host, "Failure chance");
    set_value(&failure, "");
    start.unchecked_ref::<HtmlElement>().click();
    settle().await;
    let error = texts(&host, ".optrail-form-error").join(" ");
    assert!(error.contains("failure chance"), "{error:?}");

    set_value(&kind, "payment");
    kind.dispatch_event(&web_sys::Event::new("change").unwrap())
        .unwrap();
    settle().await;
    assert!(!hidden("Amount"));
    let typed = js_sys::Reflect::get(&amount, &"value".into()).unwrap();
    assert_eq!(
        typed.as_string().as_deref(),
        Some("12,50"),
        "typing survives a switch"
    );
    widget.unmount();
}
