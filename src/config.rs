//! What a host can set when it mounts the widget. Plain structs with
//! `Default`: the defaults fit the reference server on the same origin.

use std::rc::Rc;

use optrail_core::SessionOptions;

/// Where each request goes. `{base}` is [`Config::api_base`], `{id}` the
/// operation id, `{after}`/`{limit}` the history paging.
#[derive(Debug, Clone, PartialEq)]
pub struct UrlTemplates {
    pub start: String,
    pub events: String,
    pub cancel: String,
    /// `ws:`/`wss:` URL, or an `http(s):` / path one that is converted.
    pub websocket: String,
}

impl Default for UrlTemplates {
    fn default() -> Self {
        Self {
            start: "{base}/operations".into(),
            events: "{base}/operations/{id}/events?after={after}&limit={limit}".into(),
            cancel: "{base}/operations/{id}".into(),
            websocket: "{base}/ws".into(),
        }
    }
}

/// How much the widget shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewMode {
    /// Form, list and the selected operation's timeline.
    #[default]
    Full,
    /// A list of operations with their progress; details on click.
    Compact,
}

/// Who carries out the session's commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoMode {
    /// Real WebSocket, HTTP, timers and storage.
    #[default]
    Browser,
    /// Commands are recorded, not executed: tests drive the session with
    /// inputs and read the DOM ("events in, DOM out").
    Recorded,
}

/// Returns the bearer token to send, called on every connect and request.
pub type TokenGetter = Rc<dyn Fn() -> Option<String>>;

/// Everything a host page can configure.
#[derive(Clone, Default)]
pub struct Config {
    /// Prefix of every URL; empty means the page's own origin.
    pub api_base: String,
    pub urls: UrlTemplates,
    /// Ordering mode, terminal vocabulary, progress path, backoff.
    pub session: SessionOptions,
    /// localStorage key prefix, so several widgets keep separate sets.
    pub namespace: String,
    pub view: ViewMode,
    /// The widget's title, and the name of its landmarks: two widgets on
    /// one page need two names (empty means "Operations").
    pub label: String,
    /// Show the start form.
    pub start_form: bool,
    /// Show the demo settings (step delay, failure chance) in the form.
    pub demo_controls: bool,
    /// Keep the selected operation in `location.hash` (`#/operations/{id}`).
    pub hash_routing: bool,
    pub auth_token: Option<TokenGetter>,
    pub io: IoMode,
    /// Seed for reconnect jitter; 0 means "from the clock".
    pub seed: u64,
    /// The backend speaks the seed's format: events without `seq` from
    /// `GET {events}` as a plain array, and one WebSocket per operation
    /// pushing bare event objects. See [`Config::compat`].
    pub compat: bool,
}

impl Config {
    /// The standalone app: everything on, hash routing.
    pub fn app() -> Self {
        Self {
            namespace: "optrail".into(),
            start_form: true,
            demo_controls: true,
            hash_routing: true,
            ..Self::default()
        }
    }

    /// A backend that speaks exactly the seed's format
    /// (`GET /payments/{id}/events`, a WebSocket per payment): events are
    /// ordered by `(happenedAt, id)` and deduped by id, and the socket is not
    /// expected to ping.
    pub fn compat(api_base: &str) -> Self {
        let mut session = SessionOptions {
            order: optrail_core::LogOrder::ByTime,
            ..SessionOptions::default()
        };
        // Seed backends do not ping: never declare their sockets dead for
        // silence; read every operation's history now and then instead, so
        // a silently dead socket costs seconds, not the rest of the run.
        session.server_ping_interval_ms = 24 * 3600 * 1000;
        session.poll_always = true;
        session.poll_interval_ms = 10_000;
        Self {
            api_base: api_base.to_owned(),
            urls: UrlTemplates {
                start: "{base}/payments".into(),
                events: "{base}/payments/{id}/events".into(),
                cancel: "{base}/payments/{id}".into(),
                websocket: "{base}/payments/{id}/ws".into(),
            },
            session,
            namespace: "optrail-compat".into(),
            compat: true,
            ..Self::default()
        }
    }

    pub(crate) fn label(&self) -> String {
        if self.label.is_empty() {
            "Operations".to_owned()
        } else {
            self.label.clone()
        }
    }

    pub(crate) fn namespace(&self) -> &str {
        if self.namespace.is_empty() {
            "optrail"
        } else {
            &self.namespace
        }
    }

    pub(crate) fn url(&self, template: &str, id: &str, after: u64, limit: u32) -> String {
        template
            .replace("{base}", self.api_base.trim_end_matches('/'))
            .replace(
                "{id}",
                &js_sys::encode_uri_component(id)
                    .as_string()
                    .unwrap_or_default(),
            )
            .replace("{after}", &after.to_string())
            .replace("{limit}", &limit.to_string())
    }

    /// The WebSocket URL (of one operation in compat mode), resolved
    /// against the page and switched to ws(s).
    pub(crate) fn websocket_url(&self, id: &str) -> String {
        let raw = self.url(&self.urls.websocket, id, 0, 0);
        let location = web_sys::window().map(|w| w.location());
        let resolved = match &location {
            Some(loc) => web_sys::Url::new_with_base(&raw, &loc.href().unwrap_or_default())
                .map(|u| u.href())
                .unwrap_or(raw),
            None => raw,
        };
        if let Some(rest) = resolved.strip_prefix("https:") {
            format!("wss:{rest}")
        } else if let Some(rest) = resolved.strip_prefix("http:") {
            format!("ws:{rest}")
        } else {
            resolved
        }
    }

    pub(crate) fn token(&self) -> Option<String> {
        self.auth_token.as_ref().and_then(|get| get())
    }
}
