//! The event loop of one simulated schedule: a virtual clock, a queue of
//! things about to happen, the network between client and server, the client
//! and its chaos, and the final check.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use optrail_core::{
    ApiError, ClientFrame, Command, ConnectionState, HistoryError, Input, Operation, OperationId,
    Problem, Recovery, RequestId, Rng, Seq, ServerFrame, Session, SessionOptions, SocketId,
    StartId, StartRequest, Status, Timestamp, TrackedOperation,
};
use serde_json::json;

use super::server::{ConnId, Outbox, Registration, Server};

/// The clock starts at a plausible instant (2026-09-15) so timestamps
/// round-trip through RFC 3339 like real ones.
const T0: i64 = 1_789_000_000_000;
const PING_MS: u64 = 15_000;

/// What a schedule may throw at the client. `Knobs::default()` is the
/// random mix the schedule tests use; scenario tests turn faults off.
#[derive(Debug, Clone)]
pub struct Knobs {
    /// Faults and chaos happen during `0..fault_ms` of virtual time.
    pub fault_ms: i64,
    pub initial_ops: usize,
    /// Mean pause between two chaos actions.
    pub chaos_every_ms: i64,
    /// Record every command the session yields (for determinism checks).
    pub record_commands: bool,
    /// Print what happens, as it happens.
    pub trace: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            fault_ms: 120_000,
            initial_ops: 3,
            chaos_every_ms: 2_000,
            record_commands: false,
            trace: false,
        }
    }
}

/// What happened in a schedule, summed over a run for the soak's report.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub schedules: u64,
    pub steps: u64,
    pub inputs: u64,
    pub events_committed: u64,
    pub ops: u64,
    pub reloads: u64,
    pub socket_drops: u64,
    pub silent_drops: u64,
    pub failed_opens: u64,
    pub server_restarts: u64,
    pub rebuilds: u64,
    pub history_requests: u64,
    pub history_failures: u64,
    pub duplicate_pages: u64,
    pub slow_frames: u64,
    pub malformed_frames: u64,
    pub offline_periods: u64,
    pub hidden_periods: u64,
    pub cancels: u64,
    pub starts: u64,
    pub failed_starts: u64,
    pub forgets: u64,
    pub unknown_ops: u64,
    pub slow_subscribe_answers: u64,
    pub replayed_pushes: u64,
    pub lost_pushes: u64,
    pub virtual_ms: i64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        macro_rules! sum { ($($f:ident),*) => { $(self.$f += o.$f;)* } }
        sum!(
            schedules,
            steps,
            inputs,
            events_committed,
            ops,
            reloads,
            socket_drops,
            silent_drops,
            failed_opens,
            server_restarts,
            rebuilds,
            history_requests,
            history_failures,
            duplicate_pages,
            slow_frames,
            malformed_frames,
            offline_periods,
            hidden_periods,
            cancels,
            starts,
            failed_starts,
            forgets,
            unknown_ops,
            slow_subscribe_answers,
            replayed_pushes,
            lost_pushes,
            virtual_ms
        );
    }
}

/// The outcome of one schedule.
#[derive(Debug)]
pub struct Report {
    pub stats: Stats,
    /// Every command in order, when `record_commands` was set.
    pub commands: Vec<String>,
}

#[derive(Debug)]
enum Action {
    /// An input for the client; `data` inputs ride a socket and are lost if
    /// the socket was cut before they arrive.
    ToClient {
        incarnation: u64,
        input: Input,
        data_on: Option<SocketId>,
    },
    /// The session's deadline, as the adapter's one timer saw it.
    TickDue {
        incarnation: u64,
        generation: u64,
    },
    OpenReachesServer {
        incarnation: u64,
        socket: SocketId,
    },
    FrameReachesServer {
        incarnation: u64,
        socket: SocketId,
        frame: ClientFrame,
    },
    HistoryReachesServer {
        incarnation: u64,
        request: RequestId,
        operation_id: OperationId,
        after: Seq,
        limit: u32,
    },
    CancelReachesServer {
        incarnation: u64,
        operation_id: OperationId,
    },
    StartReachesServer {
        incarnation: u64,
        start: StartId,
    },
    AnswerSubscribe {
        conn: ConnId,
        operation_id: OperationId,
        registration: Registration,
        after: Seq,
    },
    RunnerStep {
        op: usize,
    },
    Ping {
        conn: ConnId,
    },
    ServerUp,
    Chaos,
    /// Faults end: the network heals, the browser is online and visible.
    Quiesce,
}

struct Scheduled {
    at: i64,
    order: u64,
    /// Boxed: the heap moves entries around, and some actions are large.
    action: Box<Action>,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Earliest first (the heap is a max-heap), ties in scheduling order.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

/// One client socket as the network sees it.
#[derive(Debug)]
struct Pipe {
    conn: Option<ConnId>,
    /// Cut by a drop, a close or a restart: nothing more gets through.
    cut: bool,
    /// The client closed it: a browser fires no `open` after `close()`.
    closed_by_client: bool,
    /// Delivery times so far, to keep each direction in order like TCP.
    to_client_last: i64,
    to_server_last: i64,
}

/// The simulated browser tab: the session plus what the adapter keeps.
struct Client {
    session: Session,
    incarnation: u64,
    /// What `Command::Persist` last stored: all a reload starts from.
    persisted: Vec<TrackedOperation>,
    /// Starts asked for and not yet finished: each must finish once.
    starting: BTreeSet<StartId>,
    next_start: u64,
    /// The deadline the one timer is set for, and that timer's generation:
    /// setting it again replaces the earlier one, as a browser timer does.
    timer: Option<Timestamp>,
    timer_generation: u64,
    offline: bool,
    hidden: bool,
}

pub struct World {
    now: i64,
    rng: Rng,
    queue: BinaryHeap<Scheduled>,
    next_order: u64,
    server: Server,
    pipes: BTreeMap<(u64, SocketId), Pipe>,
    client: Client,
    options: SessionOptions,
    knobs: Knobs,
    /// While true, faults happen; after `Quiesce` the world is calm.
    stormy: bool,
    /// What the client should be tracking, by the harness's own account.
    expected: BTreeSet<OperationId>,
    unknown: BTreeSet<OperationId>,
    forgotten: Vec<OperationId>,
    stats: Stats,
    commands: Vec<String>,
    commands_since: usize,
    /// The first broken invariant seen while running.
    violation: Option<String>,
    /// Per-schedule fault mix.
    p_history_fail: f64,
    p_duplicate_page: f64,
    p_slow: f64,
    p_fail_open: f64,
    /// A push the server drops now and then: the client sees a gap in the
    /// live seqs. Never the terminal one: a lost final push is invisible to
    /// any client (which is why the reference server closes an overflowed
    /// connection instead of skipping).
    p_lost_push: f64,
    /// Visible-tab timers fire exactly at their instant (legal, and the
    /// edge case for "is it overdue yet?").
    punctual_timers: bool,
}

fn options_for(rng: &mut Rng) -> SessionOptions {
    SessionOptions {
        page_limit: [1, 2, 3, 5, 8, 500][rng.below_or_eq(5) as usize],
        server_ping_interval_ms: PING_MS,
        ..SessionOptions::default()
    }
}

impl World {
    pub fn new(seed: u64, knobs: Knobs) -> Self {
        let mut rng = Rng::new(seed);
        let options = options_for(&mut rng);
        let max_page = [1, 2, 4, 1000][rng.below_or_eq(3) as usize];
        let ends_finished_subscriptions = rng.chance(0.5);
        let session_seed = rng.next_u64();
        let p_history_fail = [0.0, 0.1, 0.3][rng.below_or_eq(2) as usize];
        let p_duplicate_page = [0.0, 0.1, 0.5][rng.below_or_eq(2) as usize];
        let p_slow = [0.0, 0.05, 0.3][rng.below_or_eq(2) as usize];
        let p_fail_open = [0.0, 0.2, 0.5][rng.below_or_eq(2) as usize];
        let punctual_timers = rng.chance(0.5);
        let p_lost_push = [0.0, 0.02, 0.1][rng.below_or_eq(2) as usize];
        Self {
            now: T0,
            rng,
            queue: BinaryHeap::new(),
            next_order: 0,
            server: Server::new(max_page, ends_finished_subscriptions),
            pipes: BTreeMap::new(),
            client: Client {
                session: Session::new(options.clone(), session_seed),
                incarnation: 1,
                persisted: Vec::new(),
                timer: None,
                timer_generation: 0,
                starting: BTreeSet::new(),
                next_start: 0,
                offline: false,
                hidden: false,
            },
            options,
            stormy: true,
            expected: BTreeSet::new(),
            unknown: BTreeSet::new(),
            forgotten: Vec::new(),
            stats: Stats::default(),
            commands: Vec::new(),
            commands_since: 0,
            violation: None,
            p_history_fail,
            p_duplicate_page,
            p_slow,
            p_fail_open,
            punctual_timers,
            p_lost_push,
            knobs,
        }
    }

    fn at(&mut self, delay: i64, action: Action) {
        self.next_order += 1;
        self.queue.push(Scheduled {
            at: self.now + delay.max(0),
            order: self.next_order,
            action: Box::new(action),
        });
    }

    fn trace(&self, line: impl FnOnce() -> String) {
        if self.knobs.trace {
            eprintln!("{:>9} {}", self.now - T0, line());
        }
    }

    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.rng.below_or_eq((hi - lo) as u64) as i64
    }

    /// One-way network latency; in a storm, sometimes very slow so that live
    /// frames and history answers overtake one another.
    fn latency(&mut self) -> i64 {
        if self.stormy && self.rng.chance(self.p_slow) {
            self.stats.slow_frames += 1;
            self.between(300, 8_000)
        } else {
            self.between(1, 40)
        }
    }

    // ----- the client -----------------------------------------------------

    fn input(&mut self, input: Input) {
        self.stats.inputs += 1;
        self.trace(|| format!("client <- {input:?}"));
        self.client.session.handle(input, Timestamp(self.now));
        self.check_never_shows_uncommitted();
        while let Some(command) = self.client.session.poll_command() {
            self.execute(command);
        }
        self.arm_timer();
    }

    /// Keeps the one timer at the session's deadline, as the driver does.
    fn arm_timer(&mut self) {
        let deadline = self.client.session.poll_timeout();
        if deadline == self.client.timer {
            return;
        }
        self.client.timer = deadline;
        self.client.timer_generation += 1;
        let Some(at) = deadline else { return };
        // Hidden tabs throttle timers heavily; visible ones are a little
        // late too.
        let late = if self.client.hidden {
            self.between(0, 60_000)
        } else if self.punctual_timers || self.rng.chance(0.5) {
            0
        } else {
            self.between(0, 20)
        };
        let delay = (at.0 - self.now).max(0) + late;
        let (incarnation, generation) = (self.client.incarnation, self.client.timer_generation);
        self.at(
            delay,
            Action::TickDue {
                incarnation,
                generation,
            },
        );
    }

    fn execute(&mut self, command: Command) {
        self.trace(|| format!("client -> {command:?}"));
        if self.knobs.record_commands {
            self.commands.push(format!("{} {command:?}", self.now - T0));
        }
        self.commands_since += 1;
        let incarnation = self.client.incarnation;
        match command {
            Command::OpenSocket(socket) => {
                self.pipes.insert(
                    (incarnation, socket),
                    Pipe {
                        conn: None,
                        cut: false,
                        closed_by_client: false,
                        to_client_last: self.now,
                        to_server_last: self.now,
                    },
                );
                if self.client.offline {
                    let delay = self.between(1, 50);
                    self.stats.failed_opens += 1;
                    self.control(socket, delay, Input::SocketClosed(socket));
                } else {
                    let delay = if self.stormy {
                        self.between(1, 4_000)
                    } else {
                        self.latency()
                    };
                    self.at(
                        delay,
                        Action::OpenReachesServer {
                            incarnation,
                            socket,
                        },
                    );
                }
            }
            Command::CloseSocket(socket) => {
                self.cut(incarnation, socket);
                if let Some(pipe) = self.pipes.get_mut(&(incarnation, socket)) {
                    pipe.closed_by_client = true;
                }
                // Browsers fire `close` after `close()`; the session must
                // shrug off news about a socket it gave up.
                if self.rng.chance(0.5) {
                    let delay = self.latency();
                    self.control(socket, delay, Input::SocketClosed(socket));
                }
            }
            Command::Send(socket, frame) => {
                let Some(pipe) = self.pipes.get(&(incarnation, socket)) else {
                    return;
                };
                if pipe.cut || pipe.conn.is_none() {
                    return;
                }
                let latency = self.latency();
                let pipe = self.pipes.get_mut(&(incarnation, socket)).expect("pipe");
                let at = (self.now + latency).max(pipe.to_server_last);
                pipe.to_server_last = at;
                let delay = at - self.now;
                self.at(
                    delay,
                    Action::FrameReachesServer {
                        incarnation,
                        socket,
                        frame,
                    },
                );
            }
            Command::FetchHistory {
                request,
                operation_id,
                after,
                limit,
            } => {
                self.stats.history_requests += 1;
                let fails_on_the_way =
                    self.client.offline || (self.stormy && self.rng.chance(self.p_history_fail));
                if fails_on_the_way {
                    self.stats.history_failures += 1;
                    let delay = self.latency();
                    self.reply(
                        delay,
                        Input::HistoryFailed {
                            request,
                            error: HistoryError::Transient("network error".into()),
                        },
                    );
                } else {
                    let delay = self.latency();
                    self.at(
                        delay,
                        Action::HistoryReachesServer {
                            incarnation,
                            request,
                            operation_id,
                            after,
                            limit,
                        },
                    );
                }
            }
            Command::Cancel(operation_id) => {
                self.stats.cancels += 1;
                let delay = self.latency();
                self.at(
                    delay,
                    Action::CancelReachesServer {
                        incarnation,
                        operation_id,
                    },
                );
            }
            Command::StartOperation { start, .. } => {
                self.stats.starts += 1;
                let fails_on_the_way =
                    self.client.offline || (self.stormy && self.rng.chance(self.p_history_fail));
                let delay = self.latency();
                if fails_on_the_way {
                    let error = ApiError {
                        code: "unreachable".into(),
                        message: "the server could not be reached".into(),
                    };
                    self.reply(delay, Input::StartFailed { start, error });
                } else {
                    self.at(delay, Action::StartReachesServer { incarnation, start });
                }
            }
            Command::StartFinished { start, outcome } => {
                if outcome.is_err() {
                    self.stats.failed_starts += 1;
                }
                if !self.client.starting.remove(&start) {
                    self.violation.get_or_insert_with(|| {
                        format!("start {start:?} finished twice, or was never asked for")
                    });
                }
            }
            Command::Persist(set) => self.client.persisted = set,
        }
    }

    /// An answer over HTTP (history, cancel): lost on reload.
    fn reply(&mut self, delay: i64, input: Input) {
        let incarnation = self.client.incarnation;
        self.at(
            delay,
            Action::ToClient {
                incarnation,
                input,
                data_on: None,
            },
        );
    }

    /// Socket open / close news, in order with the socket's frames.
    fn control(&mut self, socket: SocketId, delay: i64, input: Input) {
        let incarnation = self.client.incarnation;
        let at = match self.pipes.get_mut(&(incarnation, socket)) {
            Some(pipe) => {
                let at = (self.now + delay).max(pipe.to_client_last);
                pipe.to_client_last = at;
                at
            }
            None => self.now + delay,
        };
        self.at(
            at - self.now,
            Action::ToClient {
                incarnation,
                input,
                data_on: None,
            },
        );
    }

    /// Cuts a pipe: the server forgets the connection and nothing more gets
    /// through in either direction.
    fn cut(&mut self, incarnation: u64, socket: SocketId) {
        if let Some(pipe) = self.pipes.get_mut(&(incarnation, socket)) {
            pipe.cut = true;
            if let Some(conn) = pipe.conn.take() {
                self.server.disconnect(conn);
            }
        }
    }

    fn open_pipes(&self) -> Vec<SocketId> {
        self.pipes
            .iter()
            .filter(|((inc, _), pipe)| {
                *inc == self.client.incarnation && !pipe.cut && pipe.conn.is_some()
            })
            .map(|((_, socket), _)| *socket)
            .collect()
    }

    /// Drops a socket: a clean close the browser reports, or a silent
    /// half-open death only the watchdog can notice.
    fn drop_socket(&mut self, socket: SocketId) {
        let incarnation = self.client.incarnation;
        self.cut(incarnation, socket);
        self.stats.socket_drops += 1;
        if self.rng.chance(0.3) {
            self.stats.silent_drops += 1;
            // Maybe the browser notices minutes later, maybe never.
            if self.rng.chance(0.5) {
                let delay = self.between(60_000, 600_000);
                self.control(socket, delay, Input::SocketClosed(socket));
            }
        } else {
            let delay = self.latency();
            self.control(socket, delay, Input::SocketClosed(socket));
        }
    }

    fn reload(&mut self) {
        self.stats.reloads += 1;
        let old = self.client.incarnation;
        let sockets: Vec<SocketId> = self
            .pipes
            .keys()
            .filter(|(inc, _)| *inc == old)
            .map(|(_, s)| *s)
            .collect();
        for socket in sockets {
            self.cut(old, socket);
        }
        let seed = self.rng.next_u64();
        self.client.session = Session::new(self.options.clone(), seed);
        self.client.incarnation += 1;
        self.client.timer = None;
        // Whoever asked for a start went with the page.
        self.client.starting.clear();
        self.trace(|| "client reloads".to_owned());
        let set = self.client.persisted.clone();
        self.input(Input::Restore(set));
        if self.client.offline {
            self.input(Input::Offline);
        }
        if self.client.hidden {
            self.input(Input::Hidden);
        }
    }

    /// The person starts an operation; it is expected once the server's
    /// answer reaches this page.
    fn track_new(&mut self) {
        self.client.next_start += 1;
        let start = StartId(self.client.next_start);
        self.client.starting.insert(start);
        let kind = if self.rng.chance(0.5) {
            "payment"
        } else {
            "vm"
        };
        self.input(Input::Start {
            start,
            request: StartRequest {
                kind: kind.into(),
                params: json!({ "kind": kind }),
            },
        });
    }

    // ----- the server side ------------------------------------------------

    fn send_out(&mut self, out: Outbox) {
        for (conn, frame) in out {
            let Some(c) = self.server.conns.get(&conn) else {
                continue;
            };
            let (incarnation, socket) = c.client;
            let latency = self.latency();
            let Some(pipe) = self.pipes.get_mut(&(incarnation, socket)) else {
                continue;
            };
            if pipe.cut {
                continue;
            }
            if matches!(&frame, ServerFrame::Event { event, .. }
                    if super::server::terminal_status(event.kind.as_str()).is_none())
                && self.stormy
                && self.rng.chance(self.p_lost_push)
            {
                self.stats.lost_pushes += 1;
                continue;
            }
            let pipe = self.pipes.get_mut(&(incarnation, socket)).expect("pipe");
            let at = (self.now + latency).max(pipe.to_client_last);
            pipe.to_client_last = at;
            let text = frame.to_json();
            self.at(
                at - self.now,
                Action::ToClient {
                    incarnation,
                    input: Input::FrameReceived(socket, text),
                    data_on: Some(socket),
                },
            );
        }
    }

    fn restart_server(&mut self) {
        self.stats.server_restarts += 1;
        self.server.up = false;
        let conns: Vec<(u64, SocketId)> = self.server.conns.values().map(|c| c.client).collect();
        for (incarnation, socket) in conns {
            self.cut(incarnation, socket);
            if incarnation == self.client.incarnation {
                let delay = self.latency();
                self.control(socket, delay, Input::SocketClosed(socket));
            }
        }
        let down = self.between(100, 10_000);
        self.at(down, Action::ServerUp);
    }

    fn server_frame(&mut self, conn: ConnId, frame: ClientFrame) {
        if let Some(c) = self.server.conns.get_mut(&conn) {
            c.last_heard = self.now;
        }
        let mut out = Outbox::new();
        match frame {
            ClientFrame::Subscribe {
                operation_id,
                after,
            } => {
                if let Some(registration) = self.server.subscribe(conn, &operation_id, &mut out) {
                    // Events committed while the head is being read are
                    // pushed before `subscribed` goes out.
                    let delay = if self.rng.chance(0.3) {
                        self.stats.slow_subscribe_answers += 1;
                        self.between(1, 2_000)
                    } else {
                        0
                    };
                    self.at(
                        delay,
                        Action::AnswerSubscribe {
                            conn,
                            operation_id,
                            registration,
                            after,
                        },
                    );
                }
            }
            ClientFrame::Unsubscribe { operation_id } => {
                self.server.unsubscribe(conn, &operation_id, &mut out)
            }
            ClientFrame::Ping => out.push((conn, ServerFrame::Pong)),
            ClientFrame::Pong => {}
        }
        self.send_out(out);
    }

    // ----- chaos ----------------------------------------------------------

    fn chaos(&mut self) {
        let roll = self.rng.below_or_eq(99);
        match roll {
            0..=14 => {
                if let Some(&socket) = self.pick(&self.open_pipes()) {
                    self.drop_socket(socket);
                }
            }
            15..=22 => self.reload(),
            23..=27 if self.server.up => self.restart_server(),
            28..=35 => {
                let live: Vec<usize> = (0..self.server.ops.len())
                    .filter(|&i| {
                        !self.server.ops[i].is_terminal() && self.server.ops[i].rebuilds < 2
                    })
                    .collect();
                if let Some(&op) = self.pick(&live)
                    && self.server.rebuild(op, &mut self.rng)
                {
                    self.stats.rebuilds += 1;
                }
            }
            36..=43 => {
                self.client.offline = !self.client.offline;
                if self.client.offline {
                    self.stats.offline_periods += 1;
                    self.input(Input::Offline);
                    for socket in self.open_pipes() {
                        if self.rng.chance(0.7) {
                            let incarnation = self.client.incarnation;
                            self.cut(incarnation, socket);
                            let delay = self.between(1, 10_000);
                            self.control(socket, delay, Input::SocketClosed(socket));
                        } else {
                            self.drop_socket(socket);
                        }
                    }
                } else {
                    self.input(Input::Online);
                }
            }
            44..=51 => {
                self.client.hidden = !self.client.hidden;
                if self.client.hidden {
                    self.stats.hidden_periods += 1;
                    self.input(Input::Hidden);
                } else {
                    self.input(Input::Visible);
                }
            }
            52..=61 if self.expected.len() < 6 => self.track_new(),
            62..=67 => {
                let ids: Vec<OperationId> = self.expected.iter().cloned().collect();
                if let Some(id) = self.pick(&ids).cloned() {
                    self.input(Input::Cancel(id));
                }
            }
            68..=71 => {
                // Forget an operation; often track it again later (same id,
                // a fresh log), as a person or another tab might.
                let ids: Vec<OperationId> = self.expected.iter().cloned().collect();
                if let Some(id) = self.pick(&ids).cloned() {
                    self.stats.forgets += 1;
                    self.expected.remove(&id);
                    self.unknown.remove(&id);
                    self.forgotten.push(id.clone());
                    self.input(Input::Forget(id));
                }
            }
            72..=77 => {
                if let Some(id) = self.forgotten.pop() {
                    self.expected.insert(id.clone());
                    if self.server.find(&id).is_none() {
                        self.unknown.insert(id.clone());
                    }
                    self.input(Input::Track {
                        operation: TrackedOperation::by_id(id),
                        epoch: None,
                    });
                }
            }
            78..=79 if self.unknown.is_empty() => {
                self.stats.unknown_ops += 1;
                let id = OperationId(format!("{:032x}", self.rng.next_u64()));
                self.expected.insert(id.clone());
                self.unknown.insert(id.clone());
                self.input(Input::Track {
                    operation: TrackedOperation::by_id(id),
                    epoch: None,
                });
            }
            80..=83 => {
                if let Some(&socket) = self.pick(&self.open_pipes()) {
                    self.stats.malformed_frames += 1;
                    let garbage = [
                        "{",
                        "null",
                        "[1,2]",
                        r#"{"type":"event","operationId":"x"}"#,
                        r#"{"type":"subscribed","operationId":7}"#,
                        "\u{0}\u{1}",
                    ];
                    let text = garbage[self.rng.below_or_eq(5) as usize].to_owned();
                    let latency = self.latency();
                    let incarnation = self.client.incarnation;
                    let pipe = self.pipes.get_mut(&(incarnation, socket)).expect("open");
                    let at = (self.now + latency).max(pipe.to_client_last);
                    pipe.to_client_last = at;
                    self.at(
                        at - self.now,
                        Action::ToClient {
                            incarnation,
                            input: Input::FrameReceived(socket, text),
                            data_on: Some(socket),
                        },
                    );
                }
            }
            _ => {
                // A moment of calm.
            }
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.rng.below_or_eq(items.len() as u64 - 1) as usize])
        }
    }

    // ----- the loop -------------------------------------------------------

    fn step(&mut self, action: Action) {
        self.stats.steps += 1;
        match action {
            Action::ToClient {
                incarnation,
                input,
                data_on,
            } => {
                if incarnation != self.client.incarnation {
                    return;
                }
                if let Some(socket) = data_on
                    && self
                        .pipes
                        .get(&(incarnation, socket))
                        .is_none_or(|pipe| pipe.cut)
                {
                    return;
                }
                if let Input::Started { operation, .. } = &input {
                    // Followed from here, whether or not the start is still
                    // waited for.
                    self.expected.insert(operation.id.clone());
                }
                if let Input::SocketOpened(socket) = &input
                    && self
                        .pipes
                        .get(&(incarnation, *socket))
                        .is_some_and(|pipe| pipe.closed_by_client)
                {
                    return;
                }
                self.input(input);
            }
            Action::TickDue {
                incarnation,
                generation,
            } => {
                if incarnation == self.client.incarnation
                    && self.client.timer_generation == generation
                {
                    // Fired: the next input sets it again.
                    self.client.timer = None;
                    self.input(Input::Tick);
                }
            }
            Action::OpenReachesServer {
                incarnation,
                socket,
            } => {
                let cut = self
                    .pipes
                    .get(&(incarnation, socket))
                    .is_none_or(|pipe| pipe.cut);
                if incarnation != self.client.incarnation || cut {
                    return;
                }
                let refused = !self.server.up
                    || self.client.offline
                    || (self.stormy && self.rng.chance(self.p_fail_open));
                if refused {
                    self.stats.failed_opens += 1;
                    self.cut(incarnation, socket);
                    let delay = self.latency();
                    self.control(socket, delay, Input::SocketClosed(socket));
                    return;
                }
                let conn = self.server.connect((incarnation, socket), self.now);
                self.pipes
                    .get_mut(&(incarnation, socket))
                    .expect("pipe")
                    .conn = Some(conn);
                let delay = self.latency();
                self.control(socket, delay, Input::SocketOpened(socket));
                self.at(PING_MS as i64, Action::Ping { conn });
            }
            Action::FrameReachesServer {
                incarnation,
                socket,
                frame,
            } => {
                let conn = self
                    .pipes
                    .get(&(incarnation, socket))
                    .filter(|pipe| !pipe.cut)
                    .and_then(|pipe| pipe.conn);
                if let Some(conn) = conn {
                    self.server_frame(conn, frame);
                }
            }
            Action::HistoryReachesServer {
                incarnation,
                request,
                operation_id,
                after,
                limit,
            } => {
                if incarnation != self.client.incarnation {
                    return;
                }
                let answer = if !self.server.up
                    || (self.stormy && self.rng.chance(self.p_history_fail / 2.0))
                {
                    self.stats.history_failures += 1;
                    Input::HistoryFailed {
                        request,
                        error: HistoryError::Transient("502 Bad Gateway".into()),
                    }
                } else {
                    match self.server.page(&operation_id, after, limit) {
                        Some(page) => Input::HistoryReceived { request, page },
                        None => Input::HistoryFailed {
                            request,
                            error: HistoryError::NotFound,
                        },
                    }
                };
                let delay = self.latency();
                if self.stormy && self.rng.chance(self.p_duplicate_page) {
                    self.stats.duplicate_pages += 1;
                    let again = delay + self.between(0, 3_000);
                    self.reply(again, answer.clone());
                }
                self.reply(delay, answer);
            }
            Action::StartReachesServer { incarnation, start } => {
                if incarnation != self.client.incarnation {
                    // The page that asked is gone, and the answer with it.
                    return;
                }
                let input = if self.server.up {
                    let op = self.server.start(&mut self.rng);
                    self.stats.ops += 1;
                    let delay = self.between(0, 3_000);
                    self.at(delay, Action::RunnerStep { op });
                    let op = &self.server.ops[op];
                    Input::Started {
                        start,
                        operation: Operation {
                            id: op.id.clone(),
                            kind: op.kind.to_owned(),
                            status: Status::NotStarted,
                            created_at: Timestamp(self.now),
                            updated_at: Timestamp(self.now),
                            epoch: op.epoch(),
                            head: Seq::ZERO,
                            percent_complete: None,
                            params: json!({ "kind": op.kind }),
                        },
                    }
                } else {
                    let error = ApiError {
                        code: "unavailable".into(),
                        message: "The server is restarting.".into(),
                    };
                    Input::StartFailed { start, error }
                };
                let delay = self.latency();
                self.reply(delay, input);
            }
            Action::CancelReachesServer {
                incarnation,
                operation_id,
            } => {
                if incarnation != self.client.incarnation {
                    return;
                }
                let mut out = Outbox::new();
                let result = if self.server.up {
                    self.server.cancel(&operation_id, self.now, &mut out)
                } else {
                    Err("The server is restarting.".into())
                };
                if !out.is_empty() {
                    self.stats.events_committed += 1;
                }
                self.send_out(out);
                if let Err(message) = result {
                    let delay = self.latency();
                    self.reply(
                        delay,
                        Input::CancelFailed {
                            operation_id,
                            message,
                        },
                    );
                }
            }
            Action::AnswerSubscribe {
                conn,
                operation_id,
                registration,
                after,
            } => {
                // Some servers also push what lies between `after` and the
                // head; clients dedupe.
                let replay = self.rng.chance(0.2).then_some(after);
                if replay.is_some() {
                    self.stats.replayed_pushes += 1;
                }
                let mut out = Outbox::new();
                self.server
                    .answer_subscribe(conn, &operation_id, registration, replay, &mut out);
                self.send_out(out);
            }
            Action::RunnerStep { op } => {
                if !self.server.up {
                    let delay = self.between(500, 2_000);
                    self.at(delay, Action::RunnerStep { op });
                    return;
                }
                let mut out = Outbox::new();
                let before = self.server.ops[op].head();
                let more = self.server.step(op, self.now, &mut out);
                if self.server.ops[op].head() != before {
                    self.stats.events_committed += 1;
                }
                self.send_out(out);
                if more {
                    // Bursts (several events in one millisecond) and pauses.
                    let delay = if self.rng.chance(0.2) {
                        0
                    } else {
                        self.between(1, 3_000)
                    };
                    self.at(delay, Action::RunnerStep { op });
                }
            }
            Action::Ping { conn } => {
                let Some(c) = self.server.conns.get(&conn) else {
                    return;
                };
                // Rule 5: a client silent for two intervals is dropped.
                if self.now - c.last_heard > 2 * PING_MS as i64 + 5_000 {
                    let (incarnation, socket) = c.client;
                    self.cut(incarnation, socket);
                    if incarnation == self.client.incarnation {
                        let delay = self.latency();
                        self.control(socket, delay, Input::SocketClosed(socket));
                    }
                    return;
                }
                self.send_out(vec![(conn, ServerFrame::Ping)]);
                self.at(PING_MS as i64, Action::Ping { conn });
            }
            Action::ServerUp => {
                self.server.up = true;
            }
            Action::Chaos => {
                if !self.stormy {
                    return;
                }
                self.chaos();
                let mean = self.knobs.chaos_every_ms;
                let delay = self.between(1, 2 * mean);
                self.at(delay, Action::Chaos);
            }
            Action::Quiesce => {
                self.stormy = false;
                self.server.up = true;
                if self.client.offline {
                    self.client.offline = false;
                    self.input(Input::Online);
                }
                if self.client.hidden {
                    self.client.hidden = false;
                    self.input(Input::Visible);
                }
            }
        }
    }

    fn settled(&self) -> bool {
        !self.stormy
            && self.client.starting.is_empty()
            && self.server.ops.iter().all(|op| op.is_terminal())
            && self
                .client
                .session
                .operations()
                .all(|view| view.finished || view.problem == Some(&Problem::NotFound))
    }

    /// Runs the schedule to its end and checks the outcome.
    pub fn run(mut self) -> Result<Report, String> {
        for _ in 0..self.knobs.initial_ops {
            self.track_new();
        }
        if self.knobs.fault_ms > 0 {
            let first = self.between(1, self.knobs.chaos_every_ms);
            self.at(first, Action::Chaos);
        }
        let fault_ms = self.knobs.fault_ms;
        self.at(fault_ms, Action::Quiesce);
        // After the storm: up to 30 virtual minutes to converge, then one
        // more quiet minute in which the session must not ask for anything.
        let deadline = self.now + fault_ms + 30 * 60_000;
        let mut settled_at: Option<i64> = None;
        let mut same_instant = 0u32;
        while let Some(next) = self.queue.pop() {
            if next.at == self.now {
                same_instant += 1;
                if same_instant > 100_000 {
                    return Err(self.fail("livelock: 100 000 steps without time moving"));
                }
            } else {
                same_instant = 0;
            }
            self.now = next.at;
            if self.now > deadline {
                return Err(self.fail("did not converge within 30 virtual minutes of calm"));
            }
            self.step(*next.action);
            if let Some(violation) = self.violation.take() {
                return Err(self.fail(&violation));
            }
            match settled_at {
                None if self.settled() => {
                    settled_at = Some(self.now);
                    self.commands_since = 0;
                }
                Some(at) if self.now - at >= 60_000 => break,
                _ => {}
            }
        }
        if settled_at.is_none() {
            return Err(self.fail("the world ran out of things to do before settling"));
        }
        if self.commands_since > 0 {
            return Err(self.fail(&format!(
                "the session kept issuing commands after everything settled ({})",
                self.commands_since
            )));
        }
        self.check_final()?;
        self.stats.schedules = 1;
        self.stats.virtual_ms = self.now - T0;
        Ok(Report {
            stats: self.stats,
            commands: self.commands,
        })
    }

    /// At every step: every event the client shows was committed by the
    /// server in the epoch the client believes, at that seq.
    fn check_never_shows_uncommitted(&mut self) {
        if self.violation.is_some() {
            return;
        }
        for view in self.client.session.operations() {
            let Some(op) = self.server.find(&view.tracked.id) else {
                if !view.log.is_empty() {
                    self.violation = Some(format!("events shown for unknown {}", view.tracked.id));
                }
                continue;
            };
            let streams = &self.server.ops[op].streams;
            let stream = match view.epoch {
                Some(epoch) if epoch.0 >= 1 && epoch.0 as usize <= streams.len() => {
                    &streams[(epoch.0 - 1) as usize]
                }
                None if view.log.is_empty() => continue,
                other => {
                    self.violation = Some(format!(
                        "{} shows events under epoch {other:?}, which the server never had",
                        view.tracked.id
                    ));
                    return;
                }
            };
            // Ids name (operation, epoch, seq) here, so comparing them is
            // comparing events; the final check compares them in full.
            for event in view.log.iter() {
                let seq = event.seq.map_or(0, |s| s.0) as usize;
                if seq == 0 || stream.get(seq - 1).is_none_or(|e| e.id != event.id) {
                    self.violation = Some(format!(
                        "the client shows {} at seq {seq} in epoch {:?}, which the server never committed there",
                        event.id, view.epoch
                    ));
                    return;
                }
            }
        }
    }

    fn check_final(&self) -> Result<(), String> {
        let session = &self.client.session;
        let tracked: BTreeSet<OperationId> = session.tracked().into_iter().map(|t| t.id).collect();
        if tracked != self.expected {
            return Err(self.fail(&format!(
                "tracked set {tracked:?} differs from expected {:?}",
                self.expected
            )));
        }
        let persisted: Vec<_> = self
            .client
            .persisted
            .iter()
            .map(|t| (t.id.clone(), t.status))
            .collect();
        let current: Vec<_> = session
            .tracked()
            .into_iter()
            .map(|t| (t.id, t.status))
            .collect();
        if persisted != current {
            return Err(self.fail(&format!(
                "persisted {persisted:?} is not the tracked set {current:?}"
            )));
        }
        if !self.client.starting.is_empty() {
            return Err(self.fail(&format!(
                "starts never finished for whoever asked: {:?}",
                self.client.starting
            )));
        }
        if session.connection() != ConnectionState::Idle {
            return Err(self.fail(&format!(
                "connection is {:?} with nothing left to follow",
                session.connection()
            )));
        }
        for view in session.operations() {
            let id = &view.tracked.id;
            let Some(op) = self.server.find(id) else {
                if view.problem != Some(&Problem::NotFound) || !view.log.is_empty() {
                    return Err(self.fail(&format!(
                        "unknown operation {id}: problem {:?}, {} events",
                        view.problem,
                        view.log.len()
                    )));
                }
                continue;
            };
            let op = &self.server.ops[op];
            let shown: Vec<_> = view.log.iter().cloned().collect();
            if shown != op.events() {
                let seqs = |events: &[optrail_core::Event]| {
                    events
                        .iter()
                        .map(|e| format!("{}:{}", e.seq.map_or(0, |s| s.0), e.id))
                        .collect::<Vec<_>>()
                };
                return Err(self.fail(&format!(
                    "operation {id}: the client shows\n  {:?}\nbut the server has (epoch {})\n  {:?}",
                    seqs(&shown),
                    op.epoch(),
                    seqs(op.events())
                )));
            }
            let problems = [
                (view.status != op.status(), "status"),
                (!view.finished, "finished"),
                (view.epoch != Some(op.epoch()), "epoch"),
                (view.recovery == Recovery::CatchingUp, "recovery"),
                (
                    view.tracked.status != Some(op.status()),
                    "remembered status",
                ),
                (
                    matches!(view.problem, Some(p) if !matches!(p, Problem::CancelFailed(_))),
                    "problem",
                ),
                (
                    op.status() == optrail_core::Status::Succeeded && view.progress != Some(100.0),
                    "progress",
                ),
            ];
            if let Some((_, what)) = problems.iter().find(|(wrong, _)| *wrong) {
                return Err(self.fail(&format!(
                    "operation {id}: wrong {what}: status {:?} (server {:?}), finished {}, epoch {:?} (server {}), recovery {:?}, remembered {:?}, problem {:?}, progress {:?}",
                    view.status,
                    op.status(),
                    view.finished,
                    view.epoch,
                    op.epoch(),
                    view.recovery,
                    view.tracked.status,
                    view.problem,
                    view.progress
                )));
            }
        }
        Ok(())
    }

    fn fail(&self, what: &str) -> String {
        let mut text = format!("{what} (at virtual t={} ms)", self.now - T0);
        text.push_str(&format!(
            "\n  connection {:?}",
            self.client.session.connection()
        ));
        for view in self.client.session.operations() {
            let server = self.server.find(&view.tracked.id).map(|op| {
                let op = &self.server.ops[op];
                (op.epoch(), op.head(), op.status())
            });
            text.push_str(&format!(
                "\n  {}: {} events, contiguous {}, head {}, epoch {:?}, status {:?}, finished {}, recovery {:?}, problem {:?}, remembered {:?}; server (epoch, head, status) {server:?}",
                view.tracked.id,
                view.log.len(),
                view.log.contiguous(),
                view.head,
                view.epoch,
                view.status,
                view.finished,
                view.recovery,
                view.problem,
                view.tracked.status,
            ));
        }
        text
    }
}

/// Runs one schedule from its seed.
pub fn run_schedule(seed: u64, knobs: Knobs) -> Result<Report, String> {
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut knobs = knobs;
    if knobs.fault_ms == Knobs::default().fault_ms {
        // The schedule's own storm length and size.
        knobs.fault_ms = 10_000 + rng.below_or_eq(230_000) as i64;
        knobs.initial_ops = 1 + rng.below_or_eq(3) as usize;
        knobs.chaos_every_ms = [300, 1_000, 3_000][rng.below_or_eq(2) as usize];
    }
    let world = World::new(seed, knobs);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| world.run())).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panic".to_owned());
        Err(format!("panicked: {message}"))
    })
}
