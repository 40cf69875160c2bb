//! Focused scenarios: one behaviour each, scripted input by input against a
//! bare [`Session`], asserting the exact commands it yields.

mod connection;
mod recovery;
mod refusals;

use optrail_core::{
    Command, ConnectionState, Epoch, Event, EventId, EventType, EventsPage, Input, OperationId,
    RequestId, Seq, ServerFrame, Session, SessionOptions, SocketId, Status, Timestamp,
    TrackedOperation,
};
use serde_json::{Map, json};

pub const T0: i64 = 1_789_000_000_000;

/// A session under a scripted clock.
pub struct Script {
    pub session: Session,
    pub now: i64,
}

impl Script {
    pub fn new() -> Self {
        Self::with(SessionOptions::default(), 1)
    }

    pub fn with(options: SessionOptions, seed: u64) -> Self {
        Self {
            session: Session::new(options, seed),
            now: T0,
        }
    }

    /// Moves the clock forward by `ms`.
    pub fn wait(&mut self, ms: i64) {
        self.now += ms;
    }

    pub fn input(&mut self, input: Input) -> Vec<Command> {
        self.session.handle(input, Timestamp(self.now));
        std::iter::from_fn(|| self.session.poll_command()).collect()
    }

    /// When the reconnect is scheduled for, if one is.
    pub fn reconnect_at(&self) -> Option<i64> {
        match self.session.connection() {
            ConnectionState::Reconnecting { at } => Some(at.0),
            _ => None,
        }
    }

    pub fn frame(&mut self, socket: SocketId, frame: ServerFrame) -> Vec<Command> {
        self.input(Input::FrameReceived(socket, frame.to_json()))
    }

    pub fn track(&mut self, id: &OperationId) -> Vec<Command> {
        self.input(Input::Track {
            operation: TrackedOperation::by_id(id.clone()),
            epoch: None,
        })
    }

    /// A default session following operation `name` on an open socket,
    /// its subscribe sent: how most scenarios begin.
    pub fn connected(name: &str) -> (Self, OperationId, SocketId) {
        let mut s = Self::new();
        let id = op(name);
        let socket = s.track_and_connect(&id);
        (s, id, socket)
    }

    /// Tracks `id`, opens the socket and sees the subscribe go out.
    pub fn track_and_connect(&mut self, id: &OperationId) -> SocketId {
        let commands = self.track(id);
        let socket = opened_socket(&commands).expect("a socket is opened");
        let commands = self.input(Input::SocketOpened(socket));
        assert!(
            commands.contains(&subscribe(socket, id, 0)),
            "subscribes on open: {commands:?}"
        );
        socket
    }

    pub fn subscribed(
        &mut self,
        socket: SocketId,
        id: &OperationId,
        epoch: u64,
        head: u64,
    ) -> Vec<Command> {
        self.frame(
            socket,
            ServerFrame::Subscribed {
                operation_id: id.clone(),
                epoch: Epoch(epoch),
                head: Seq(head),
            },
        )
    }

    pub fn push(
        &mut self,
        socket: SocketId,
        id: &OperationId,
        epoch: u64,
        seq: u64,
        kind: &str,
    ) -> Vec<Command> {
        self.frame(
            socket,
            ServerFrame::Event {
                operation_id: id.clone(),
                epoch: Some(Epoch(epoch)),
                event: event(id, epoch, seq, kind),
            },
        )
    }

    /// The ids of the events shown for `id`, in order.
    pub fn shown(&self, id: &OperationId) -> Vec<String> {
        self.session
            .operation(id)
            .expect("tracked")
            .log
            .iter()
            .map(|e| e.id.0.clone())
            .collect()
    }
}

pub fn op(name: &str) -> OperationId {
    OperationId(name.to_owned())
}

/// The event the server would have at `seq` of `epoch`.
pub fn event(id: &OperationId, epoch: u64, seq: u64, kind: &str) -> Event {
    let mut details = Map::new();
    if kind == "ProgressUpdated" {
        details.insert("percentage".into(), json!(seq * 10));
    }
    Event {
        id: EventId(format!("{id}-{epoch}-{seq}")),
        seq: Some(Seq(seq)),
        kind: EventType::from(kind),
        message: format!("{kind} {seq}"),
        happened_at: Timestamp(T0 + seq as i64),
        sub_ms_ns: 0,
        details,
        status: None,
    }
}

/// A page of plain progress events `from..=to`, the last one `last_kind`.
pub fn page(
    id: &OperationId,
    epoch: u64,
    head: u64,
    from: u64,
    to: u64,
    last_kind: &str,
) -> EventsPage {
    let events: Vec<Event> = (from..=to)
        .map(|seq| {
            let kind = if seq == head {
                last_kind
            } else {
                "ProgressUpdated"
            };
            event(id, epoch, seq, kind)
        })
        .collect();
    let status = if Interp::terminal(last_kind) && to == head {
        Interp::status(last_kind)
    } else if head == 0 {
        Status::NotStarted
    } else {
        Status::Running
    };
    EventsPage {
        operation_id: id.clone(),
        kind: "payment".into(),
        epoch: Epoch(epoch),
        head: Seq(head),
        status,
        has_more: to < head,
        unreadable: 0,
        events,
    }
}

struct Interp;
impl Interp {
    fn terminal(kind: &str) -> bool {
        Self::status(kind).is_terminal()
    }
    fn status(kind: &str) -> Status {
        optrail_core::Interpretation::default()
            .terminal_status(&EventType::from(kind))
            .unwrap_or(Status::Running)
    }
}

pub fn subscribe(socket: SocketId, id: &OperationId, after: u64) -> Command {
    Command::Send(
        socket,
        optrail_core::ClientFrame::Subscribe {
            operation_id: id.clone(),
            after: Seq(after),
        },
    )
}

pub fn opened_socket(commands: &[Command]) -> Option<SocketId> {
    commands.iter().find_map(|c| match c {
        Command::OpenSocket(id) => Some(*id),
        _ => None,
    })
}

/// The history requests among `commands`: (request, after, limit).
pub fn fetches(commands: &[Command]) -> Vec<(RequestId, u64, u32)> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::FetchHistory {
                request,
                after,
                limit,
                ..
            } => Some((*request, after.0, *limit)),
            _ => None,
        })
        .collect()
}
