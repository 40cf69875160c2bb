//! Runs an `optrail_core::Session` with real browser I/O.
//!
//! A small loop: every browser happening becomes an [`Input`]; every
//! [`Command`] the session yields is carried out with gloo-net (WebSocket,
//! HTTP), gloo-timers and localStorage. What the components render is
//! published at most once per animation frame, and only what changed: the
//! set of operations when it changes, and each operation's O(1) summary
//! when it differs (a timeline then reads just its visible rows). No ordering, dedupe, retry or recovery decision is
//! made here — those live in the core, once.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use futures::channel::mpsc;
use futures::future::{Either, poll_fn, select};
use futures::{SinkExt, StreamExt};
use gloo_events::EventListener;
use gloo_net::http::{Request, RequestBuilder};
use gloo_net::websocket::{Message, State as SocketState, futures::WebSocket};
use gloo_timers::callback::{Interval, Timeout};
use leptos::prelude::*;
use optrail_core::compat::{self, Compat};
use optrail_core::{
    ApiError, Command, EventLog, EventsPage, HistoryError, Input, Operation, OperationId, Session,
    SocketId, StartId, StartRequest, Timestamp, TrackedOperation,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;

use crate::config::{Config, IoMode};
use crate::model::{OperationSummary, SessionSummary};
use crate::storage;

/// The clock the session is fed: ms since the epoch.
pub fn now() -> i64 {
    js_sys::Date::now() as i64
}

/// One tracked operation's reactive state (the leptos todomvc idiom: the
/// list of handles changes only when operations come and go; an event
/// touches its own operation's signals and nothing else).
#[derive(Clone)]
pub struct OperationHandle {
    pub id: OperationId,
    pub summary: RwSignal<OperationSummary>,
}

/// The reactive state the components read. Written only by the driver.
#[derive(Clone, Copy)]
pub struct Ui {
    /// Tracked operations, newest first.
    pub operations: RwSignal<Vec<OperationHandle>>,
    pub session: RwSignal<SessionSummary>,
    /// Ticks every second, for "12 s ago" and countdowns.
    pub now: RwSignal<i64>,
    /// A widget-wide notice (storage reset, …), dismissible.
    pub notice: RwSignal<Option<String>>,
}

impl Ui {
    pub fn new() -> Self {
        Self {
            operations: RwSignal::new(Vec::new()),
            session: RwSignal::new(SessionSummary::default()),
            now: RwSignal::new(now()),
            notice: RwSignal::new(None),
        }
    }
}

impl Default for Ui {
    fn default() -> Self {
        Self::new()
    }
}

/// An HTTP failure, in words a person can act on.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpError {
    /// No answer at all: the server is down or the network is.
    Unreachable,
    /// 404.
    NotFound,
    /// Any other error status, with the server's `code` and message when
    /// it sent them.
    Refused { code: String, message: String },
    /// A 2xx whose body was not what the protocol promises.
    BadBody,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Unreachable => f.write_str("the server could not be reached"),
            HttpError::NotFound => f.write_str("not found"),
            HttpError::Refused { message, .. } => f.write_str(message),
            HttpError::BadBody => f.write_str("the server sent an answer optrail cannot read"),
        }
    }
}

struct State {
    session: Session,
    /// Outgoing frames of each open socket; dropping the sender closes it.
    sockets: Slots<SocketId, mpsc::UnboundedSender<String>>,
    /// The one timer, set for the session's deadline (`poll_timeout`).
    deadline: Option<(Timestamp, Timeout)>,
    /// The timer the last one replaced. It may be the one whose callback
    /// is running: it is dropped at the next replacement, never from
    /// inside its own callback.
    spent_deadline: Option<Timeout>,
    listeners: Vec<EventListener>,
    ticker: Option<Interval>,
    /// Compat mode: the core's translator, and the real socket of each
    /// subscribed operation.
    compat: Option<Compat>,
    compat_sockets: Slots<OperationId, mpsc::UnboundedSender<String>>,
    /// Whoever waits for each start's outcome. A callback rather than a
    /// channel: every channel type is its own copy of code in the bundle.
    starts: Slots<StartId, StartDone>,
    /// Ids forgotten here lately, saved with the set (see `storage`).
    forgotten: Vec<OperationId>,
    next_start: u64,
    /// Commands kept instead of executed ([`IoMode::Recorded`]).
    recorded: Vec<Command>,
    /// A publish is scheduled for the next animation frame.
    publish_due: bool,
    /// The timer that covers a frame that does not come soon. Kept until
    /// the next one replaces it, never dropped from inside its own callback.
    publish_fallback: Option<Timeout>,
    alive: bool,
}

/// Told how a start ended.
pub type StartDone = Box<dyn FnOnce(Result<OperationId, ApiError>)>;

/// How long a publish may wait for an animation frame before a timer does
/// it (a frame may be late, or rendering paused, in a busy or hidden page).
const PUBLISH_FALLBACK_MS: u32 = 50;

/// A map for the handful of sockets alive at once. A scanned
/// `Vec` does the job in a fraction of a hash map's code (the three maps
/// here once cost about 3 KB of the gzipped bundle as `HashMap`s).
struct Slots<K, V>(Vec<(K, V)>);

impl<K, V> Default for Slots<K, V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<K: PartialEq, V> Slots<K, V> {
    /// Replaces (and so drops) any value already under `key`.
    fn insert(&mut self, key: K, value: V) {
        self.remove(&key);
        self.0.push((key, value));
    }

    fn remove(&mut self, key: &K) -> Option<V> {
        let index = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.swap_remove(index).1)
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// Owns the session and carries out its commands. See the module doc.
pub struct Driver {
    config: Config,
    ui: Ui,
    /// The widget's reactive owner, so signals made while publishing belong
    /// to the widget and go with it.
    owner: Option<Owner>,
    state: RefCell<State>,
    this: Weak<Driver>,
}

impl Driver {
    /// Loads the tracked set, installs the browser listeners and resumes
    /// every tracked operation.
    pub fn launch(config: Config, ui: Ui) -> Rc<Self> {
        let seed = if config.seed == 0 {
            (js_sys::Math::random() * u64::MAX as f64) as u64
        } else {
            config.seed
        };
        let session = Session::new(config.session.clone(), seed);
        let compat = config.compat.then(Compat::new);
        let driver = Rc::new_cyclic(|this| Driver {
            config,
            ui,
            owner: Owner::current(),
            state: RefCell::new(State {
                session,
                sockets: Slots::default(),
                deadline: None,
                spent_deadline: None,
                listeners: Vec::new(),
                ticker: None,
                compat,
                compat_sockets: Slots::default(),
                starts: Slots::default(),
                forgotten: Vec::new(),
                next_start: 0,
                recorded: Vec::new(),
                publish_due: false,
                publish_fallback: None,
                alive: true,
            }),
            this: this.clone(),
        });
        let loaded = storage::load(driver.config.namespace());
        if loaded.notice.is_some() {
            ui.notice.set(loaded.notice);
        }
        if driver.config.io == IoMode::Browser {
            driver.listen();
        }
        driver.input(Input::Restore(loaded.operations));
        driver
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn ui(&self) -> Ui {
        self.ui
    }

    /// Feeds one input, carries out what follows, and schedules a publish.
    pub fn input(&self, input: Input) {
        // Tracking, restoring or forgetting changes the set of operations a
        // person acts on (a deep link selects what it tracks at once): that
        // is published at once. Everything else waits for the next frame.
        let set_changes = matches!(
            input,
            Input::Track { .. } | Input::Restore(_) | Input::Forget(_) | Input::Started { .. }
        );
        match &input {
            Input::Forget(id) => {
                let forgotten = &mut self.state.borrow_mut().forgotten;
                forgotten.insert(0, id.clone());
                forgotten.truncate(100);
            }
            Input::Track { operation, .. } => {
                let id = &operation.id;
                self.state.borrow_mut().forgotten.retain(|f| f != id);
            }
            _ => {}
        }
        {
            let mut state = self.state.borrow_mut();
            if !state.alive {
                return;
            }
            state.session.handle(input, Timestamp(now()));
        }
        loop {
            let command = self.state.borrow_mut().session.poll_command();
            match command {
                Some(command) => self.execute(command),
                None => break,
            }
        }
        self.arm_deadline();
        self.schedule_publish();
        if set_changes {
            self.publish();
        }
    }

    /// Keeps the one timer at the session's deadline: the session decides
    /// what is due when, the driver only wakes it.
    fn arm_deadline(&self) {
        let mut state = self.state.borrow_mut();
        let at = state.session.poll_timeout();
        let armed = state.deadline.as_ref().map(|(t, _)| *t);
        // A deadline that only moved later (the watchdog's, with every
        // frame) keeps the timer already set: firing early is harmless (the
        // session does what is due, and the next input sets it again), and
        // a socket busy with a thousand frames a second then costs no timer
        // churn at all.
        let still_ahead = armed.is_some_and(|t| t.0 > now() && at.is_some_and(|at| at >= t));
        if !state.alive || armed == at || still_ahead {
            return;
        }
        let timeout = at.map(|at| {
            let delay = (at.0 - now()).clamp(0, i64::from(i32::MAX)) as u32;
            let driver = self.this.clone();
            (at, Timeout::new(delay, move || feed(&driver, Input::Tick)))
        });
        let replaced = std::mem::replace(&mut state.deadline, timeout);
        state.spent_deadline = replaced.map(|(_, timer)| timer);
    }

    /// Publishes on the next animation frame, once for every input that
    /// arrives before it: a burst of frames renders once.
    fn schedule_publish(&self) {
        let mut state = self.state.borrow_mut();
        if state.publish_due || !state.alive {
            return;
        }
        state.publish_due = true;
        let driver = self.this.clone();
        state.publish_fallback = Some(Timeout::new(PUBLISH_FALLBACK_MS, move || {
            if let Some(driver) = driver.upgrade() {
                driver.publish();
            }
        }));
        drop(state);
        if let Some(window) = web_sys::window() {
            let driver = self.this.clone();
            let frame = wasm_bindgen::closure::Closure::once_into_js(move || {
                if let Some(driver) = driver.upgrade() {
                    driver.publish();
                }
            });
            let _ = window.request_animation_frame(frame.unchecked_ref());
        }
    }

    /// Brings the reactive state up to date with the session, touching only
    /// what changed. O(operations), never O(events).
    fn publish(&self) {
        let state = &mut *self.state.borrow_mut();
        if !std::mem::take(&mut state.publish_due) || !state.alive {
            return;
        }
        let session = &state.session;
        let ui = self.ui;
        let same_set = ui.operations.with_untracked(|handles| {
            handles.len() == session.operations().count()
                && handles
                    .iter()
                    .zip(session.operations())
                    .all(|(h, v)| h.id == v.tracked.id)
        });
        if !same_set {
            let mut old = ui.operations.get_untracked();
            let handles: Vec<OperationHandle> = session
                .operations()
                .map(
                    |view| match old.iter().position(|h| h.id == view.tracked.id) {
                        Some(at) => old.swap_remove(at),
                        None => self.new_handle(&view),
                    },
                )
                .collect();
            ui.operations.set(handles);
            old.into_iter().for_each(|gone| gone.summary.dispose());
        }
        ui.operations.with_untracked(|handles| {
            for (handle, view) in handles.iter().zip(session.operations()) {
                let summary = OperationSummary::of(&view);
                if handle.summary.with_untracked(|s| *s != summary) {
                    handle.summary.set(summary);
                }
            }
        });
        let summary = SessionSummary {
            connection: session.connection(),
            malformed_frames: session.notices().malformed_frames,
            server_error: session.notices().server_error.clone(),
        };
        if ui.session.with_untracked(|s| *s != summary) {
            ui.session.set(summary);
        }
    }

    fn new_handle(&self, view: &optrail_core::OperationView<'_>) -> OperationHandle {
        let make = || OperationHandle {
            id: view.tracked.id.clone(),
            summary: RwSignal::new(OperationSummary::of(view)),
        };
        match &self.owner {
            Some(owner) => owner.with(make),
            None => make(),
        }
    }

    /// Lends an operation's log to `read` (a timeline reads its visible
    /// rows from it, so its work does not grow with the history); nothing
    /// when the operation is not tracked.
    pub fn with_log(&self, id: &OperationId, read: &mut dyn FnMut(&EventLog)) {
        let state = self.state.borrow();
        if let Some(view) = state.session.operation(id) {
            read(view.log);
        }
    }

    /// Follows an operation known only by id (a deep link, `track()`).
    pub fn track(&self, id: OperationId) {
        self.input(Input::Track {
            operation: TrackedOperation::by_id(id),
            epoch: None,
        });
    }

    /// Commands recorded in [`IoMode::Recorded`], oldest first; drains them.
    pub fn take_recorded(&self) -> Vec<Command> {
        std::mem::take(&mut self.state.borrow_mut().recorded)
    }

    /// Stops everything: sockets closed, timers cleared, listeners removed.
    /// Late answers of requests in flight find the driver dead and vanish.
    pub fn shutdown(&self) {
        let mut state = self.state.borrow_mut();
        state.alive = false;
        state.sockets.clear();
        state.compat_sockets.clear();
        state.deadline = None;
        state.spent_deadline = None;
        state.listeners.clear();
        state.ticker = None;
        state.publish_fallback = None;
    }

    fn execute(&self, command: Command) {
        if let Command::StartFinished { start, outcome } = command {
            // Not I/O: the answer for whoever asked, in every mode.
            let done = self.state.borrow_mut().starts.remove(&start);
            if let Some(done) = done {
                // The operation it started is published first: whoever
                // asked may select it at once.
                self.state.borrow_mut().publish_due = true;
                self.publish();
                done(outcome);
            }
            return;
        }
        if let Command::Persist(operations) = &command {
            self.persist(operations);
        }
        if self.config.io == IoMode::Recorded {
            self.state.borrow_mut().recorded.push(command);
            return;
        }
        let action = match self.state.borrow_mut().compat.as_mut() {
            Some(compat) => compat.command(command),
            None => compat::Action::Execute(command),
        };
        match action {
            compat::Action::Execute(command) => self.carry_out(command),
            compat::Action::Feed(input) => {
                // After the commands still queued, as a real socket would.
                let driver = self.this.clone();
                spawn_local(async move { feed(&driver, input) });
            }
            compat::Action::OpenOperationSocket(operation_id) => {
                let url = self.config.websocket_url(operation_id.as_str());
                self.open_socket(url, Link::Compat(operation_id));
            }
            compat::Action::CloseOperationSocket(operation_id) => {
                self.state.borrow_mut().compat_sockets.remove(&operation_id);
            }
            compat::Action::CloseAll => self.state.borrow_mut().compat_sockets.clear(),
            compat::Action::Nothing => {}
        }
    }

    fn carry_out(&self, command: Command) {
        match command {
            Command::OpenSocket(id) => {
                let url = self.config.websocket_url("");
                self.open_socket(url, Link::Protocol(id));
            }
            Command::CloseSocket(id) => {
                self.state.borrow_mut().sockets.remove(&id);
            }
            Command::Send(id, frame) => {
                if let Some(socket) = self.state.borrow().sockets.get(&id) {
                    let _ = socket.unbounded_send(frame.to_json());
                }
            }
            Command::FetchHistory {
                request,
                operation_id,
                after,
                limit,
            } => {
                let url = self.config.url(
                    &self.config.urls.events,
                    operation_id.as_str(),
                    after.0,
                    limit,
                );
                let fetch = self.authorized(Request::get(&url)).build();
                let driver = self.this.clone();
                let compat = self.config.compat;
                spawn_local(async move {
                    let body = send(fetch).await;
                    let page = if compat {
                        body.and_then(|body| {
                            compat::history_page(operation_id, &body)
                                .map_err(|_| HttpError::BadBody)
                        })
                    } else {
                        decode::<EventsPage>(body)
                    };
                    let input = match page {
                        Ok(page) => Input::HistoryReceived { request, page },
                        // Unknown, or an id the server could never know.
                        Err(HttpError::NotFound) => Input::HistoryFailed {
                            request,
                            error: HistoryError::NotFound,
                        },
                        Err(HttpError::Refused { code, .. }) if code == "invalid_operation_id" => {
                            Input::HistoryFailed {
                                request,
                                error: HistoryError::NotFound,
                            }
                        }
                        Err(error) => Input::HistoryFailed {
                            request,
                            error: HistoryError::Transient(error.to_string()),
                        },
                    };
                    feed(&driver, input);
                });
            }
            Command::Cancel(operation_id) => {
                let url = self
                    .config
                    .url(&self.config.urls.cancel, operation_id.as_str(), 0, 0);
                let request = self.authorized(Request::delete(&url)).build();
                let driver = self.this.clone();
                spawn_local(async move {
                    // Any 2xx means canceled, whatever its body (204 included).
                    let input = match send(request).await {
                        Ok(_) => Input::CancelAccepted(operation_id),
                        Err(error) => Input::CancelFailed {
                            operation_id,
                            message: error.to_string(),
                        },
                    };
                    feed(&driver, input);
                });
            }
            Command::StartOperation { start, request } => {
                let url = self.config.url(&self.config.urls.start, "", 0, 0);
                let post = self.authorized(Request::post(&url)).json(&request);
                let driver = self.this.clone();
                spawn_local(async move {
                    let input = match decode::<Operation>(send(post).await) {
                        Ok(operation) => Input::Started { start, operation },
                        Err(error) => Input::StartFailed {
                            start,
                            error: start_error(error),
                        },
                    };
                    feed(&driver, input);
                });
            }
            // Done in `execute`, in every mode.
            Command::StartFinished { .. } | Command::Persist(_) => {}
        }
    }

    /// Saves the tracked set, merged with what another tab stored meanwhile;
    /// operations that tab added are followed here too.
    fn persist(&self, operations: &[TrackedOperation]) {
        let forgotten = self.state.borrow().forgotten.clone();
        match storage::save(self.config.namespace(), operations, &forgotten) {
            None => self.ui.notice.set(Some(
                "This browser refused to save your operations; they will not survive a reload."
                    .into(),
            )),
            Some(stored) if stored.len() > operations.len() => {
                // After the commands still queued, as any other news.
                let driver = self.this.clone();
                spawn_local(async move { feed(&driver, Input::Restore(stored)) });
            }
            Some(_) => {}
        }
    }

    fn authorized(&self, builder: RequestBuilder) -> RequestBuilder {
        match self.config.token() {
            Some(token) => builder.header("Authorization", &format!("Bearer {token}")),
            None => builder,
        }
    }

    fn open_socket(&self, mut url: String, link: Link) {
        if let Some(token) = self.config.token() {
            // Browsers cannot set headers on a WebSocket: the token goes in
            // the query string.
            let separator = if url.contains('?') { '&' } else { '?' };
            let token = js_sys::encode_uri_component(&token);
            url = format!("{url}{separator}access_token={token}");
        }
        let (sender, receiver) = mpsc::unbounded();
        let mut state = self.state.borrow_mut();
        match &link {
            Link::Protocol(id) => state.sockets.insert(*id, sender),
            Link::Compat(operation) => state.compat_sockets.insert(operation.clone(), sender),
        };
        spawn_local(run_socket(self.this.clone(), link, url, receiver));
    }

    fn listen(&self) {
        let Some(window) = web_sys::window() else {
            return;
        };
        let document = window.document();
        let mut listeners = Vec::new();
        for online in [true, false] {
            let driver = self.this.clone();
            let name = if online { "online" } else { "offline" };
            // Built on the spot, not cloned: cloning an `Input` carries the
            // clone code of every kind of input into the bundle.
            listeners.push(EventListener::new(&window, name, move |_| {
                feed(
                    &driver,
                    if online {
                        Input::Online
                    } else {
                        Input::Offline
                    },
                )
            }));
        }
        if let Some(document) = document.clone() {
            let driver = self.this.clone();
            let watched = document.clone();
            listeners.push(EventListener::new(
                &document,
                "visibilitychange",
                move |_| {
                    let input = if watched.hidden() {
                        Input::Hidden
                    } else {
                        Input::Visible
                    };
                    feed(&driver, input);
                },
            ));
        }
        {
            // Another tab changed the tracked set: follow it.
            let driver = self.this.clone();
            let key = storage::key(self.config.namespace());
            listeners.push(EventListener::new(&window, "storage", move |event| {
                let Some(event) = event.dyn_ref::<web_sys::StorageEvent>() else {
                    return;
                };
                if event.key().as_deref() != Some(key.as_str()) {
                    return;
                }
                let Some(this) = driver.upgrade() else { return };
                let theirs = match event.new_value() {
                    None => storage::Stored::default(),
                    Some(raw) => match storage::parse(&raw) {
                        Ok(stored) => stored,
                        Err(_) => return,
                    },
                };
                // Theirs, plus what this tab follows that they neither have
                // nor forgot (they may have written before hearing of it).
                let mut ours = this.state.borrow().session.tracked();
                ours.retain(|o| !theirs.forgotten.contains(&o.id));
                let forgotten = this.state.borrow().forgotten.clone();
                let merged = theirs.merged(&ours, &forgotten);
                if merged.operations.len() != theirs.operations.len() {
                    storage::write(this.config.namespace(), &merged);
                }
                this.input(Input::Restore(merged.operations));
            }));
        }
        let ui = self.ui;
        let ticker = Interval::new(1_000, move || {
            ui.now.try_set(now());
        });
        if !window.navigator().on_line() {
            self.input(Input::Offline);
        }
        let mut state = self.state.borrow_mut();
        state.listeners = listeners;
        state.ticker = Some(ticker);
    }

    /// Starts an operation through the session; `done` learns how it
    /// ended, exactly once: its id (already tracked), or the server's
    /// `code` and a sentence for the person. Never, if the widget is
    /// unmounted first.
    pub fn start_operation(&self, kind: &str, params: Value, done: StartDone) {
        let start = {
            let mut state = self.state.borrow_mut();
            state.next_start += 1;
            let start = StartId(state.next_start);
            state.starts.insert(start, done);
            start
        };
        let request = StartRequest {
            kind: kind.to_owned(),
            params,
        };
        self.input(Input::Start { start, request });
    }
}

/// A failed start in words for the person, with a code for the host.
fn start_error(error: HttpError) -> ApiError {
    let refused = |why: &dyn std::fmt::Display| format!("The server refused to start it: {why}");
    let (code, message) = match error {
        HttpError::Unreachable => (
            "unreachable".to_owned(),
            "Couldn't reach the server — check your connection and try again.".to_owned(),
        ),
        HttpError::Refused { code, message } => (code, refused(&message)),
        HttpError::NotFound => ("not_found".to_owned(), refused(&HttpError::NotFound)),
        HttpError::BadBody => ("bad_response".to_owned(), refused(&HttpError::BadBody)),
    };
    ApiError { code, message }
}

/// Feeds an input to a driver that may have been unmounted meanwhile.
fn feed(driver: &Weak<Driver>, input: Input) {
    if let Some(driver) = driver.upgrade() {
        driver.input(input);
    }
}

/// What a real socket stands for.
enum Link {
    /// The protocol's one multiplexed socket.
    Protocol(SocketId),
    /// A seed backend's socket for one operation, standing in for its
    /// subscription on the session's virtual socket (see `optrail_core::compat`).
    Compat(OperationId),
}

/// What happened on a real socket.
enum SocketNews {
    Opened,
    Text(String),
    /// A frame the protocol has no use for (binary).
    Unreadable,
    Closed,
}

impl Driver {
    /// What news about a real socket means to the session, if anything.
    fn socket_news(&self, link: &Link, news: SocketNews) -> Option<Input> {
        let id = match link {
            Link::Protocol(id) => *id,
            Link::Compat(operation) => {
                let mut state = self.state.borrow_mut();
                if matches!(news, SocketNews::Closed) {
                    // That operation's socket only: the others are fine.
                    state.compat_sockets.remove(operation);
                }
                let compat = state.compat.as_ref()?;
                return match news {
                    SocketNews::Opened => compat.socket_opened(operation),
                    SocketNews::Text(text) => compat.frame(operation, &text),
                    SocketNews::Unreadable => compat.frame(operation, ""),
                    SocketNews::Closed => compat.socket_closed(operation),
                };
            }
        };
        Some(match news {
            SocketNews::Opened => Input::SocketOpened(id),
            SocketNews::Text(text) => Input::FrameReceived(id, text),
            SocketNews::Unreadable => Input::Unreadable(id),
            SocketNews::Closed => Input::SocketClosed(id),
        })
    }
}

/// Tells a driver that may have been unmounted meanwhile about a socket.
fn report(driver: &Weak<Driver>, link: &Link, news: SocketNews) {
    if let Some(driver) = driver.upgrade()
        && let Some(input) = driver.socket_news(link, news)
    {
        driver.input(input);
    }
}

/// One WebSocket's life: open, report, pump frames both ways, report close.
async fn run_socket(
    driver: Weak<Driver>,
    link: Link,
    url: String,
    mut outgoing: mpsc::UnboundedReceiver<String>,
) {
    let closed = || report(&driver, &link, SocketNews::Closed);
    let Ok(mut socket) = WebSocket::open(&url) else {
        closed();
        return;
    };
    // Ready means open, or failed to open. The session may give up on a
    // socket still opening (its connect deadline): the socket is then
    // dropped, which closes it — a browser lets only one socket to a host
    // be connecting at a time, so one left hanging would block the next.
    loop {
        let ready = poll_fn(|cx| socket.poll_ready_unpin(cx));
        match select(ready, outgoing.next()).await {
            Either::Left(_) => break,
            // The session sends nothing before the socket is open.
            Either::Right((Some(_), _)) => {}
            Either::Right((None, _)) => return,
        }
    }
    if !matches!(socket.state(), SocketState::Open) {
        closed();
        return;
    }
    report(&driver, &link, SocketNews::Opened);
    enum Next {
        Frame(Option<Result<Message, gloo_net::websocket::WebSocketError>>),
        Send(Option<String>),
    }
    loop {
        let next = match select(socket.next(), outgoing.next()).await {
            Either::Left((frame, _)) => Next::Frame(frame),
            Either::Right((text, _)) => Next::Send(text),
        };
        match next {
            Next::Frame(Some(Ok(Message::Text(text)))) => {
                report(&driver, &link, SocketNews::Text(text));
            }
            // Binary frames are not part of the protocol: the session
            // counts them as unreadable.
            Next::Frame(Some(Ok(Message::Bytes(_)))) => {
                report(&driver, &link, SocketNews::Unreadable);
            }
            Next::Frame(_) => {
                // Closed by the session meanwhile (its sender is gone, maybe
                // replaced by a newer socket's): not news.
                if matches!(outgoing.try_recv(), Err(mpsc::TryRecvError::Closed)) {
                    return;
                }
                break;
            }
            Next::Send(Some(text)) => {
                if socket.send(Message::Text(text)).await.is_err() {
                    break;
                }
            }
            // The session closed it (or the widget was unmounted): not news.
            Next::Send(None) => return,
        }
    }
    drop(socket);
    closed();
}

/// Sends a request and returns the body of a successful answer. `request`
/// is what building it gave; a request that could not be built counts as
/// unreachable.
///
/// Deliberately not generic: decoding is a separate, synchronous step
/// ([`decode`]), so the bundle carries one copy of this async code rather
/// than one per answer type.
async fn send(request: Result<Request, gloo_net::Error>) -> Result<String, HttpError> {
    let request = request.map_err(|_| HttpError::Unreachable)?;
    let response = request.send().await.map_err(|_| HttpError::Unreachable)?;
    let status = response.status();
    if status == 404 {
        return Err(HttpError::NotFound);
    }
    let body = response.text().await;
    if !response.ok() {
        // Read field by field, not as a whole `optrail_core::ApiError`: a
        // host's own backend may send a message without our `code`, and it
        // should still reach the person.
        let json = body
            .ok()
            .and_then(|body| serde_json::from_str::<Value>(&body).ok());
        let field = |name: &str| {
            json.as_ref()
                .and_then(|v| v.get(name).and_then(Value::as_str).map(str::to_owned))
        };
        let message = field("message").unwrap_or_else(|| format!("the server answered {status}"));
        let code = field("code").unwrap_or_else(|| format!("http_{status}"));
        return Err(HttpError::Refused { code, message });
    }
    body.map_err(|_| HttpError::BadBody)
}

/// Reads a successful answer's JSON body as `T`.
fn decode<T: DeserializeOwned>(body: Result<String, HttpError>) -> Result<T, HttpError> {
    serde_json::from_str(&body?).map_err(|_| HttpError::BadBody)
}
