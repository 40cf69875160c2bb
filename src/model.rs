//! What the components render, derived from the session: a small summary
//! per operation, O(1) to build whatever the history's length. (The rows a
//! timeline shows it reads from the session's log itself.)
//! Components never see the session itself.

use optrail_core::{
    ConnectionState, LogOrder, OperationId, OperationView, Problem, Recovery, Status,
};
use serde_json::Value;

/// One tracked operation, ready to render, without its events: everything
/// here is read in O(1) from the session, so it can be rebuilt and compared
/// on every frame however long the history is.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationSummary {
    pub id: OperationId,
    pub kind: String,
    pub params: Value,
    pub status: Status,
    pub progress: Option<f64>,
    pub recovery: Recovery,
    pub problem: Option<Problem>,
    pub finished: bool,
    pub cancel_requested: bool,
    /// Events the backend has that could not be read.
    pub unreadable: u32,
    /// Read by polling: no live slot on the socket.
    pub waiting_for_slot: bool,
    /// Rows of the timeline (see `EventLog::rows`) and events held; fewer
    /// held than rows while earlier pages are loading.
    pub rows: usize,
    pub held: usize,
    /// The log's generation: a timeline re-reads its visible rows when it
    /// moves (through `Driver::rows`).
    pub generation: u64,
    /// When it was created (start response), else its first event, in ms.
    pub started_at: Option<i64>,
    /// The last event in order (the current step, or the outcome): when it
    /// happened (ms) and its message.
    pub last_at: Option<i64>,
    pub last_message: Option<String>,
    /// The last event's `details.reason`, for a failure.
    pub last_reason: Option<String>,
}

impl OperationSummary {
    pub fn of(view: &OperationView<'_>) -> Self {
        let log = view.log;
        let last = log.last();
        // Only the first row is looked at: while the history loads newest
        // page first, the start is not known yet rather than searched for.
        let first_at = match log.order() {
            LogOrder::BySeq => log.row(0),
            LogOrder::ByTime => log.first(),
        }
        .map(|e| e.happened_at.0);
        Self {
            id: view.tracked.id.clone(),
            kind: view.tracked.kind.clone(),
            params: view.tracked.params.clone(),
            status: view.status,
            progress: view.progress,
            recovery: view.recovery,
            problem: view.problem.cloned(),
            finished: view.finished,
            cancel_requested: view.cancel_requested,
            unreadable: view.unreadable,
            waiting_for_slot: view.waiting_for_slot,
            rows: log.rows(),
            held: log.held(),
            generation: log.generation(),
            started_at: view.tracked.created_at.map(|t| t.0).or(first_at),
            last_reason: last.and_then(|e| {
                e.details
                    .get("reason")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }),
            last_at: last.map(|e| e.happened_at.0),
            last_message: last.map(|e| e.message.clone()),
        }
    }

    /// When it ended (its terminal event), in ms.
    pub fn ended_at(&self) -> Option<i64> {
        self.status.is_terminal().then_some(self.last_at).flatten()
    }

    /// Why it failed: the terminal event's `details.reason`, else its message.
    pub fn failure_reason(&self) -> Option<String> {
        let message = self.last_message.as_ref()?;
        Some(self.last_reason.clone().unwrap_or_else(|| message.clone()))
    }

    /// Earlier events are still loading (the newest came first).
    pub fn loading_earlier(&self) -> bool {
        self.held < self.rows && self.recovery == Recovery::CatchingUp
    }

    /// A label for lists: the kind and what the operation is about.
    pub fn title(&self) -> String {
        let kind = match self.kind.as_str() {
            "payment" => "Payment",
            "vm" => "Virtual machine",
            "" => "Operation",
            other => other,
        };
        let subject = ["description", "name"]
            .iter()
            .find_map(|field| self.params.get(field).and_then(Value::as_str))
            .filter(|s| !s.is_empty());
        match subject {
            Some(subject) => format!("{kind} · {subject}"),
            None => kind.to_owned(),
        }
    }

    /// The recovery line, or nothing when there is nothing to recover (the
    /// server does not know the operation).
    pub fn recovery_line(&self) -> String {
        match self.problem {
            Some(Problem::NotFound) => String::new(),
            // Never "none missed" when some could not be read.
            _ if self.unreadable > 0 => format!(
                "{} {} here · could not read {} {} the server sent",
                self.held,
                events(self.held),
                self.unreadable,
                events(self.unreadable as usize)
            ),
            _ if self.waiting_for_slot => format!(
                "{} {} here · the server's live limit is reached: checking every few seconds",
                self.held,
                events(self.held)
            ),
            _ if self.loading_earlier() => format!(
                "Loading earlier events… {} of {} here",
                self.held, self.rows
            ),
            _ => recovery_text(self.recovery),
        }
    }
}

/// The session-wide state the header and banners show.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSummary {
    pub connection: ConnectionState,
    pub malformed_frames: u64,
    pub server_error: Option<String>,
}

impl Default for SessionSummary {
    /// Nothing tracked, nothing connected.
    fn default() -> Self {
        Self {
            connection: ConnectionState::Idle,
            malformed_frames: 0,
            server_error: None,
        }
    }
}

/// "12 s ago", "3 min ago", "2 h ago".
pub fn ago(now: i64, at: i64) -> String {
    let s = ((now - at).max(0) / 1000) as u64;
    match s {
        0..=4 => "just now".into(),
        5..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// A percentage as a CSS length to a tenth ("42.5%"), without float
/// formatting (see [`duration`]).
pub fn percent_css(pct: f64) -> String {
    let tenths = (pct.clamp(0.0, 100.0) * 10.0).round() as u32;
    format!("{}.{}%", tenths / 10, tenths % 10)
}

/// "4.2 s", "1 min 05 s", "2 h 03 min".
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 59_950 {
        // Tenths by integer arithmetic: formatting an f64 would pull
        // core's float printer (~14 KB) into the bundle for this alone.
        let tenths = (ms + 50) / 100;
        return format!("{}.{} s", tenths / 10, tenths % 10);
    }
    let s = ms / 1000;
    if s < 3600 {
        return format!("{} min {:02} s", s / 60, s % 60);
    }
    format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
}

/// "event" or "events".
fn events(n: usize) -> &'static str {
    if n == 1 { "event" } else { "events" }
}

/// The recovery outcome in words.
pub fn recovery_text(recovery: Recovery) -> String {
    match recovery {
        Recovery::CatchingUp => "Catching up with the server…".into(),
        Recovery::Complete { total } => format!("All {total} {}, none missed", events(total)),
        Recovery::Replayed { missed, total } => format!(
            "Replayed {missed} missed {} · all {total} here",
            events(missed as usize)
        ),
        Recovery::Refetched { total } => {
            format!(
                "The server rebuilt this stream; fetched all {total} {} again",
                events(total)
            )
        }
    }
}

/// A problem in words a person can act on.
pub fn problem_text(problem: &Problem, now: i64) -> String {
    match problem {
        Problem::NotFound => {
            "This operation does not exist or is no longer available. You can forget it.".into()
        }
        Problem::Server { message, retry_at } => format!(
            "The server refused to follow it live ({message}) — asking again in {} s",
            seconds_until(*retry_at, now)
        ),
        Problem::HistoryUnavailable { reason, retry_at } => format!(
            "Couldn't load the history ({reason}) — retrying in {} s",
            seconds_until(*retry_at, now)
        ),
        Problem::CancelFailed(message) => format!("Couldn't cancel: {message}"),
    }
}

/// Whole seconds from `now` until `at`, rounded up.
fn seconds_until(at: optrail_core::Timestamp, now: i64) -> i64 {
    ((at.0 - now).max(0) + 999) / 1000
}

/// The connection in words.
pub fn connection_text(connection: ConnectionState, now: i64) -> String {
    match connection {
        ConnectionState::Idle => "Up to date".into(),
        ConnectionState::Connecting => "Connecting…".into(),
        ConnectionState::Live => "Live".into(),
        ConnectionState::Reconnecting { at } => {
            let s = seconds_until(at, now);
            if s == 0 {
                "Reconnecting…".into()
            } else {
                format!("Lost connection — retrying in {s} s")
            }
        }
        ConnectionState::Offline => "Offline — waiting for the network".into(),
    }
}
