//! The simulated server: per-operation streams with gap-free seqs, the
//! subscription registry, history pages and cancel — following PROTOCOL.md's
//! server rules exactly, and nothing more.

use std::collections::BTreeMap;

pub use optrail_core::follow::Registration;
use optrail_core::follow::{Answer, Push};
use optrail_core::{
    Epoch, Event, EventId, EventType, EventsPage, Following, Interpretation, OperationId, Rng, Seq,
    ServerFrame, Status, Timestamp,
};
use serde_json::{Map, json};

/// One WebSocket connection as the server sees it.
pub type ConnId = u64;

/// One step of an operation's run: the event type and its progress report.
#[derive(Debug, Clone)]
struct Step {
    kind: &'static str,
    percentage: Option<u32>,
}

#[derive(Debug)]
pub struct ServerOp {
    pub id: OperationId,
    pub kind: &'static str,
    /// Every stream this operation ever had; the last is the current epoch.
    /// Earlier ones are kept so the harness can check that a client never
    /// shows an event the server did not commit in the epoch it believes.
    pub streams: Vec<Vec<Event>>,
    script: Vec<Step>,
    next_step: usize,
    pub rebuilds: u32,
}

impl ServerOp {
    pub fn epoch(&self) -> Epoch {
        Epoch(self.streams.len() as u64)
    }

    pub fn events(&self) -> &[Event] {
        self.streams.last().expect("at least one stream")
    }

    pub fn head(&self) -> Seq {
        Seq(self.events().len() as u64)
    }

    pub fn status(&self) -> Status {
        match self.events().last() {
            None => Status::NotStarted,
            Some(last) => terminal_status(last.kind.as_str()).unwrap_or(Status::Running),
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.status().is_terminal()
    }
}

#[derive(Debug)]
pub struct Conn {
    /// Which client socket this is: (client incarnation, socket id).
    pub client: (u64, optrail_core::SocketId),
    /// The reference server's subscribe rule, run as it is.
    pub following: Following,
    pub last_heard: i64,
}

/// Frames the server wants sent, in order, per connection.
pub type Outbox = Vec<(ConnId, ServerFrame)>;

#[derive(Debug)]
pub struct Server {
    pub ops: Vec<ServerOp>,
    pub conns: BTreeMap<ConnId, Conn>,
    pub up: bool,
    /// The server's own clamp on `limit` (the real one clamps to 1000);
    /// small here so that long histories take several pages.
    pub max_page: u32,
    /// Like the reference server: after pushing a terminal event (or on
    /// subscribing to a finished operation) send `unsubscribed` and drop
    /// the registration. The protocol allows both ways.
    pub ends_finished_subscriptions: bool,
    next_conn: ConnId,
}

impl Server {
    pub fn new(max_page: u32, ends_finished_subscriptions: bool) -> Self {
        Self {
            ops: Vec::new(),
            conns: BTreeMap::new(),
            up: true,
            max_page,
            ends_finished_subscriptions,
            next_conn: 0,
        }
    }

    pub fn find(&self, id: &OperationId) -> Option<usize> {
        self.ops.iter().position(|op| &op.id == id)
    }

    /// `POST /operations`: a new operation with an empty stream in epoch 1.
    pub fn start(&mut self, rng: &mut Rng) -> usize {
        let kind = if rng.chance(0.5) { "payment" } else { "vm" };
        let id = OperationId(format!("{:032x}", rng.next_u64() as u128 * 7919));
        self.ops.push(ServerOp {
            id,
            kind,
            streams: vec![Vec::new()],
            script: script(kind, rng),
            next_step: 0,
            rebuilds: 0,
        });
        self.ops.len() - 1
    }

    /// Commits the operation's next event and publishes it to every
    /// registered connection (rule 2: after commit, in seq order). Returns
    /// false when the run is over.
    pub fn step(&mut self, op: usize, now: i64, out: &mut Outbox) -> bool {
        let server_op = &mut self.ops[op];
        if server_op.is_terminal() || server_op.next_step >= server_op.script.len() {
            return false;
        }
        let step = server_op.script[server_op.next_step].clone();
        server_op.next_step += 1;
        self.commit(op, step.kind, step.percentage, now, out);
        !self.ops[op].is_terminal()
    }

    fn commit(
        &mut self,
        op: usize,
        kind: &str,
        percentage: Option<u32>,
        now: i64,
        out: &mut Outbox,
    ) {
        let server_op = &mut self.ops[op];
        let epoch = server_op.epoch();
        let seq = server_op.head().next();
        let mut details = Map::new();
        details.insert("workerId".into(), json!("w1"));
        if let Some(pct) = percentage {
            details.insert("percentage".into(), json!(pct));
        }
        let event = Event {
            id: EventId(format!("{}-{}-{}", server_op.id, epoch, seq)),
            seq: Some(seq),
            kind: EventType::from(kind),
            message: format!("{kind} (step {seq} of epoch {epoch})"),
            happened_at: Timestamp(now),
            sub_ms_ns: 0,
            details,
            status: None,
        };
        server_op
            .streams
            .last_mut()
            .expect("stream")
            .push(event.clone());
        let id = server_op.id.clone();
        let terminal = server_op.is_terminal();
        for (&conn, c) in &mut self.conns {
            let push = c.following.push(&id, epoch, seq, terminal);
            if push != Push::Skip {
                out.push((
                    conn,
                    ServerFrame::Event {
                        operation_id: id.clone(),
                        epoch: Some(epoch),
                        event: event.clone(),
                    },
                ));
            }
            if push == Push::SendThenEnd {
                out.push((
                    conn,
                    ServerFrame::Unsubscribed {
                        operation_id: id.clone(),
                    },
                ));
            }
        }
    }

    /// The stream is rebuilt: a new epoch whose seqs restart at 1 with
    /// different events. Registrations stay; later pushes carry the new
    /// epoch. Only for a run still in progress.
    pub fn rebuild(&mut self, op: usize, rng: &mut Rng) -> bool {
        let server_op = &mut self.ops[op];
        if server_op.is_terminal() {
            return false;
        }
        server_op.streams.push(Vec::new());
        server_op.script = script(server_op.kind, rng);
        server_op.next_step = 0;
        server_op.rebuilds += 1;
        true
    }

    /// `DELETE /operations/{id}`: appends `OperationCanceled`, or refuses a
    /// finished operation (409).
    pub fn cancel(&mut self, id: &OperationId, now: i64, out: &mut Outbox) -> Result<(), String> {
        let Some(op) = self.find(id) else {
            return Err("operation_not_found".into());
        };
        if self.ops[op].is_terminal() {
            return Err("operation_finished".into());
        }
        self.commit(op, "OperationCanceled", None, now, out);
        Ok(())
    }

    pub fn connect(&mut self, client: (u64, optrail_core::SocketId), now: i64) -> ConnId {
        self.next_conn += 1;
        self.conns.insert(
            self.next_conn,
            Conn {
                client,
                following: if self.ends_finished_subscriptions {
                    Following::new()
                } else {
                    Following::keeping_finished()
                },
                last_heard: now,
            },
        );
        self.next_conn
    }

    pub fn disconnect(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }

    /// Rule 3, first half: register the subscriber *before* anything else.
    /// Events committed from now on are pushed to this connection, even
    /// before the `subscribed` answer goes out. Returns the registration to
    /// answer later, or the error frame for an unknown operation.
    pub fn subscribe(
        &mut self,
        conn: ConnId,
        id: &OperationId,
        out: &mut Outbox,
    ) -> Option<Registration> {
        if self.find(id).is_none() {
            out.push((
                conn,
                ServerFrame::Error {
                    operation_id: Some(id.clone()),
                    code: "operation_not_found".into(),
                    message: format!("No operation {id}."),
                },
            ));
            return None;
        }
        let c = self.conns.get_mut(&conn)?;
        Some(c.following.register(id.clone()))
    }

    /// Rule 3, second half: read the head (after registering) and answer
    /// `subscribed {epoch, head}`. `replay_from` optionally re-pushes
    /// events with `after < seq ≤ head`, which the protocol allows.
    pub fn answer_subscribe(
        &mut self,
        conn: ConnId,
        id: &OperationId,
        registration: Registration,
        replay_from: Option<Seq>,
        out: &mut Outbox,
    ) {
        let Some(op) = self.find(id) else { return };
        let server_op = &self.ops[op];
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let answer = c.following.answer(
            id,
            registration,
            server_op.epoch(),
            server_op.head(),
            server_op.is_terminal(),
        );
        if answer == Answer::Stale {
            return;
        }
        out.push((
            conn,
            ServerFrame::Subscribed {
                operation_id: id.clone(),
                epoch: server_op.epoch(),
                head: server_op.head(),
            },
        ));
        if let Some(after) = replay_from {
            for event in server_op.events().iter().skip(after.0 as usize) {
                out.push((
                    conn,
                    ServerFrame::Event {
                        operation_id: id.clone(),
                        epoch: Some(server_op.epoch()),
                        event: event.clone(),
                    },
                ));
            }
        }
        if answer == Answer::SubscribedThenEnded {
            // Everything is in the history already.
            out.push((
                conn,
                ServerFrame::Unsubscribed {
                    operation_id: id.clone(),
                },
            ));
        }
    }

    pub fn unsubscribe(&mut self, conn: ConnId, id: &OperationId, out: &mut Outbox) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.following.end(id);
            out.push((
                conn,
                ServerFrame::Unsubscribed {
                    operation_id: id.clone(),
                },
            ));
        }
    }

    /// `GET /operations/{id}/events?after=…&limit=…`.
    pub fn page(&self, id: &OperationId, after: Seq, limit: u32) -> Option<EventsPage> {
        let op = &self.ops[self.find(id)?];
        let limit = limit.clamp(1, self.max_page) as usize;
        let events: Vec<Event> = op
            .events()
            .iter()
            .skip(after.0 as usize)
            .take(limit)
            .cloned()
            .collect();
        let last = events.last().and_then(|e| e.seq).unwrap_or(after);
        Some(EventsPage {
            operation_id: id.clone(),
            kind: op.kind.to_owned(),
            epoch: op.epoch(),
            head: op.head(),
            status: op.status(),
            has_more: last < op.head(),
            unreadable: 0,
            events,
        })
    }
}

/// PROTOCOL.md's terminal types (the default interpretation's, checked
/// against it in `terminal_types_match_the_default_interpretation`).
pub fn terminal_status(kind: &str) -> Option<Status> {
    match kind {
        "PaymentSucceeded" | "VmProvisioned" => Some(Status::Succeeded),
        "PaymentFailed" | "VmProvisioningFailed" => Some(Status::Failed),
        "OperationCanceled" => Some(Status::Canceled),
        _ => None,
    }
}

/// The harness's shortcut agrees with the session's vocabulary.
pub fn check_terminal_types() {
    let rules = Interpretation::default();
    for kind in [
        "PaymentSucceeded",
        "VmProvisioned",
        "PaymentFailed",
        "VmProvisioningFailed",
        "OperationCanceled",
        "ProgressUpdated",
        "Booting",
    ] {
        assert_eq!(
            terminal_status(kind),
            rules.terminal_status(&EventType::from(kind))
        );
    }
    assert_eq!(rules.terminal.len(), 5);
}

/// A run as PROTOCOL.md describes it for each kind, with a random number of
/// progress reports and a random outcome.
fn script(kind: &'static str, rng: &mut Rng) -> Vec<Step> {
    let plain = |kind| Step {
        kind,
        percentage: None,
    };
    let progress_steps = rng.below_or_eq(12) as u32;
    let progress = (1..=progress_steps).map(|i| Step {
        kind: "ProgressUpdated",
        percentage: Some(i * 100 / (progress_steps + 1)),
    });
    let fail = rng.chance(0.25);
    let mut steps = Vec::new();
    match kind {
        "payment" => {
            steps.extend(["ProcessingStarted", "FraudCheckStarted", "FraudCheckPassed"].map(plain));
            steps.extend(progress);
            steps.push(plain(if fail {
                "PaymentFailed"
            } else {
                "PaymentSucceeded"
            }));
        }
        _ => {
            steps.extend(
                [
                    "ValidationStarted",
                    "ResourcesAllocated",
                    "DiskProvisioning",
                ]
                .map(plain),
            );
            steps.extend(progress);
            steps.push(plain("Booting"));
            steps.push(plain(if fail {
                "VmProvisioningFailed"
            } else {
                "VmProvisioned"
            }));
        }
    }
    steps
}
