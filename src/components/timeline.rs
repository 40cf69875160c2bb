//! An operation's events as a windowed timeline: only the rows in and near
//! the viewport exist in the DOM, however long the history, so an event
//! costs the same at the ten-thousandth row as at the tenth.
//!
//! Rows have one fixed height, so row `i` sits at `i * ROW_PX` and the
//! window is plain arithmetic on the scroll position; a seq still loading
//! (the history loads newest page first) is a placeholder row of the same
//! height, so nothing moves when it arrives. The timeline follows the tail
//! while the person is at the bottom; scrolling up stops following and
//! offers "Jump to latest (N new)".
//!
//! Inside its one element the timeline is plain DOM code, not Leptos views:
//! its rows change on every frame while events stream, and the generic view
//! code that keyed views, node refs and per-row signals cost came to 13 KB
//! of the gzipped bundle, against a few KB for this. Leptos drives it through
//! one effect on the operation's summary and the clock.

use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;

use gloo_events::EventListener;
use leptos::html::Div;
use leptos::prelude::*;
use optrail_core::{Event, EventLog, OperationId};
use web_sys::{Document, Element};

use super::ViewContext;
use crate::driver::OperationHandle;
use crate::model::ago;

/// The height of one row in px; style/optrail.css gives rows this height.
const ROW_PX: usize = 52;
/// Rows rendered beyond each edge of the viewport, so a scroll by a few
/// rows (arrow keys, a wheel notch) shows rows that already exist.
const OVERSCAN: usize = 12;
/// The viewport height assumed until it can be measured.
const DEFAULT_VIEWPORT_PX: usize = 480;
/// How often the count of events is announced to screen readers at most.
const ANNOUNCE_EVERY_MS: i64 = 10_000;

#[component]
pub fn Timeline(handle: OperationHandle) -> impl IntoView {
    let ctx = expect_context::<ViewContext>();
    let summary = handle.summary;
    let root = NodeRef::<Div>::new();
    let timeline: Shared = Rc::new(RefCell::new(None));
    Effect::new(move |_| {
        let (rows, held) = summary.with(|s| {
            let _ = s.generation; // re-render when events arrive
            (s.rows, s.held)
        });
        let now = ctx.ui.now.get();
        let Some(root) = root.get() else {
            return;
        };
        let mut slot = timeline.borrow_mut();
        let window = slot.get_or_insert_with(|| Window::build(&root, &timeline, ctx, &handle.id));
        window.rows = rows;
        window.held = held;
        window.now = now;
        window.render();
    });
    view! { <div class="optrail-timeline-box" node_ref=root></div> }
}

type Shared = Rc<RefCell<Option<Window>>>;

/// The timeline's elements and what they show.
struct Window {
    ctx: ViewContext,
    id: OperationId,
    document: Document,
    scroller: Element,
    list: Element,
    jump: Element,
    /// A polite live region: the count, now and then.
    status: Element,
    /// The row elements in the DOM: a contiguous run of rows, in order.
    shown: Vec<Row>,
    rows: usize,
    held: usize,
    now: i64,
    following: bool,
    /// The row count when the person scrolled away from the tail.
    rows_when_left: usize,
    /// The clock bucket of the last count announced.
    announced: i64,
    _listeners: [EventListener; 2],
}

impl Window {
    fn build(root: &Element, shared: &Shared, ctx: ViewContext, id: &OperationId) -> Self {
        let document = root
            .owner_document()
            .expect("an element in a page has a document");
        // Leptos may reuse the box of the previous operation's timeline when
        // the selection changes: start from an empty one.
        root.set_text_content(None);
        let scroller = element(&document, "div", "optrail-timeline-scroller");
        for (name, value) in [
            ("tabindex", "0"),
            ("role", "region"),
            ("aria-label", "Events"),
        ] {
            let _ = scroller.set_attribute(name, value);
        }
        let list = element(&document, "ol", "optrail-timeline");
        let _ = scroller.append_child(&list);
        let jump = element(&document, "button", "optrail-button optrail-jump");
        let _ = jump.set_attribute("type", "button");
        let _ = jump.set_attribute("hidden", "");
        let status = element(&document, "p", "optrail-sr-only");
        let _ = status.set_attribute("aria-live", "polite");
        let _ = root.append_with_node_3(&scroller, &jump, &status);
        let on_scroll = {
            let shared = Rc::downgrade(shared);
            EventListener::new(&scroller, "scroll", move |_| {
                if let Some(shared) = shared.upgrade()
                    && let Some(window) = shared.borrow_mut().as_mut()
                {
                    window.scrolled();
                }
            })
        };
        let on_jump = {
            let shared = Rc::downgrade(shared);
            EventListener::new(&jump, "click", move |_| {
                if let Some(shared) = shared.upgrade()
                    && let Some(window) = shared.borrow_mut().as_mut()
                {
                    window.following = true;
                    window.render();
                }
            })
        };
        Self {
            ctx,
            id: id.clone(),
            document,
            scroller,
            list,
            jump,
            status,
            shown: Vec::new(),
            rows: 0,
            held: 0,
            now: 0,
            following: true,
            rows_when_left: 0,
            announced: -1,
            _listeners: [on_scroll, on_jump],
        }
    }

    /// The person scrolled (or the timeline did, to follow): at the bottom
    /// it follows the tail, anywhere else it stays where it was put.
    fn scrolled(&mut self) {
        let top = self.scroller.scroll_top();
        let bottom = self.scroller.scroll_height() - self.scroller.client_height();
        let at_bottom = top + ROW_PX as i32 / 2 >= bottom;
        if at_bottom != self.following {
            if !at_bottom {
                self.rows_when_left = self.rows;
            }
            self.following = at_bottom;
        }
        self.render();
    }

    /// Brings the DOM up to date: the list's height, the rows in and near
    /// the viewport, the "Jump to latest" control and the announcement; then
    /// keeps the tail in view while following.
    fn render(&mut self) {
        let measured = self.scroller.client_height().max(0) as usize;
        let height = if measured > 0 {
            measured
        } else {
            DEFAULT_VIEWPORT_PX
        };
        let total = self.rows;
        let top = if self.following {
            (total * ROW_PX).saturating_sub(height)
        } else {
            self.scroller.scroll_top().max(0) as usize
        };
        let first = (top / ROW_PX).saturating_sub(OVERSCAN).min(total);
        let last = ((top + height) / ROW_PX + 1 + OVERSCAN).clamp(first, total);
        let _ = self
            .list
            .set_attribute("style", &format!("height:{}px", total * ROW_PX));
        let _ = self.list.set_attribute("data-rows", &total.to_string());
        let (ctx, id) = (self.ctx, self.id.clone());
        ctx.with_log(&id, &mut |log| self.render_rows(log, first..last));
        if self.following {
            let _ = self.jump.set_attribute("hidden", "");
        } else {
            let _ = self.jump.remove_attribute("hidden");
            let unseen = total.saturating_sub(self.rows_when_left);
            self.jump.set_text_content(Some(&match unseen {
                0 => "Jump to latest".to_owned(),
                n => format!("Jump to latest ({n} new)"),
            }));
        }
        // Screen readers hear the count now and then, not once per event.
        let bucket = self.now / ANNOUNCE_EVERY_MS;
        if bucket != self.announced {
            self.announced = bucket;
            let held = self.held;
            let noun = if held == 1 { "event" } else { "events" };
            self.status
                .set_text_content(Some(&format!("{held} {noun}")));
        }
        if self.following {
            // Past the end clamps to the bottom.
            self.scroller.set_scroll_top(i32::MAX);
        }
    }

    /// Makes the list hold exactly the rows `wanted` of `log`, in order:
    /// rows still wanted with the same event are kept as they are (so a
    /// selection in them survives), others are made or removed; then the
    /// parts that change with time or length are updated.
    fn render_rows(&mut self, log: &EventLog, wanted: Range<usize>) {
        let total = log.rows();
        // What left the window, or now shows another event, goes.
        self.shown.retain(|r| {
            let keep = wanted.contains(&r.row)
                && r.key.as_deref() == log.row(r.row).map(|e| e.id.0.as_str());
            if !keep {
                r.li.remove();
            }
            keep
        });
        // The rest is a run of `wanted` in order: add what is missing, each
        // before the next kept row (or at the end).
        for (at, row) in wanted.enumerate() {
            if self.shown.get(at).is_none_or(|r| r.row != row) {
                let new = Row::new(&self.document, row, log.row(row));
                let next = self.shown.get(at).map(|r| r.li.as_ref());
                let _ = self.list.insert_before(&new.li, next);
                self.shown.insert(at, new);
            }
        }
        for row in &mut self.shown {
            row.update(total, self.now);
        }
    }
}

/// One row element and what it shows.
struct Row {
    row: usize,
    /// The event id; `None` for a placeholder.
    key: Option<String>,
    li: Element,
    /// The event's time element, its instant and its clock text.
    time: Option<(Element, i64, String)>,
    /// What its changing parts show now, to touch the DOM only on change.
    set_size: usize,
    latest: bool,
    time_text: String,
}

impl Row {
    fn new(document: &Document, row: usize, event: Option<&Event>) -> Self {
        let li = element(document, "li", "optrail-event-placeholder");
        let _ = li.set_attribute("style", &format!("top:{}px", row * ROW_PX));
        let _ = li.set_attribute("aria-posinset", &(row + 1).to_string());
        let mut this = Self {
            row,
            key: None,
            li,
            time: None,
            set_size: 0,
            latest: false,
            time_text: String::new(),
        };
        let Some(event) = event else {
            this.li.set_text_content(Some("Loading…"));
            return this;
        };
        let li = &this.li;
        li.set_class_name("optrail-event");
        if let Some(seq) = event.seq {
            let _ = li.set_attribute("data-seq", &seq.0.to_string());
        }
        let _ = li.set_attribute("data-event-id", &event.id.0);
        let kind = element(document, "span", "optrail-event-type");
        kind.set_text_content(Some(&event.kind.0));
        let message = element(document, "span", "optrail-event-message");
        message.set_text_content(Some(&event.message));
        let _ = message.set_attribute("title", &event.message);
        let time = element(document, "time", "optrail-event-time");
        let iso = event.happened_at.to_string();
        let _ = time.set_attribute("datetime", &iso);
        let _ = time.set_attribute("title", &iso);
        let _ = li.append_with_node_3(&kind, &message, &time);
        let at = event.happened_at.0;
        this.key = Some(event.id.0.clone());
        this.time = Some((time, at, absolute_time(at)));
        this
    }

    fn update(&mut self, total: usize, now: i64) {
        if self.set_size != total {
            self.set_size = total;
            let _ = self.li.set_attribute("aria-setsize", &total.to_string());
        }
        let latest = self.row + 1 == total && self.key.is_some();
        if self.latest != latest {
            self.latest = latest;
            self.li.set_class_name(if latest {
                "optrail-event optrail-event-latest"
            } else {
                "optrail-event"
            });
        }
        if let Some((time, at, clock)) = &self.time {
            let text = format!("{clock} · {}", ago(now, *at));
            if text != self.time_text {
                time.set_text_content(Some(&text));
                self.time_text = text;
            }
        }
    }
}

fn element(document: &Document, tag: &str, class: &str) -> Element {
    let element = document
        .create_element(tag)
        .expect("a valid tag name can always be created");
    element.set_class_name(class);
    element
}

fn absolute_time(ms: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    date.to_locale_time_string("default")
        .as_string()
        .unwrap_or_default()
}
