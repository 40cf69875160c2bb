//! The simulation against a seed-format backend: the session behind the
//! core's compat translator, as the browser driver runs it, against a
//! server with no seq, one socket per operation, pushes duplicated and
//! reordered, events that happen before anyone subscribes, sockets that
//! drop, history requests that fail, reloads and garbage frames. The
//! outcome is checked as for the protocol: every operation ends with
//! exactly the server's events, each once, in time order.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use optrail_core::compat::{self, Action, Compat};
use optrail_core::{
    Command, Event, EventId, EventType, HistoryError, Input, LogOrder, OperationId, Problem, Rng,
    Session, SessionOptions, Timestamp, TrackedOperation,
};
use serde_json::{Map, Value, json};

const T0: i64 = 1_789_000_000_000;
/// Faults stop after this long; then the world must converge.
const STORM_MS: i64 = 120_000;
/// Time allowed to converge once calm.
const CALM_MS: i64 = 30 * 60_000;

/// The outcome of one schedule, for the summary line.
#[derive(Debug, Default, Clone)]
pub struct SeedStats {
    pub schedules: u64,
    pub steps: u64,
    pub events: u64,
    pub duplicate_pushes: u64,
    pub reordered_pushes: u64,
    pub socket_drops: u64,
    pub history_failures: u64,
    pub reloads: u64,
    pub garbage_frames: u64,
    pub unreadable_events: u64,
    pub unknown_ids: u64,
}

impl SeedStats {
    pub fn add(&mut self, o: &SeedStats) {
        self.schedules += o.schedules;
        self.steps += o.steps;
        self.events += o.events;
        self.duplicate_pushes += o.duplicate_pushes;
        self.reordered_pushes += o.reordered_pushes;
        self.socket_drops += o.socket_drops;
        self.history_failures += o.history_failures;
        self.reloads += o.reloads;
        self.garbage_frames += o.garbage_frames;
        self.unreadable_events += o.unreadable_events;
        self.unknown_ids += o.unknown_ids;
    }
}

/// One operation on the seed server: what happened so far (each event as
/// the server wrote it), and what will.
struct SeedOp {
    id: OperationId,
    events: Vec<(Event, Value)>,
    remaining: Vec<&'static str>,
}

/// How a seed backend writes an event: real ones differ (see
/// `Event::from_value`), and a few write events no client can place.
/// An event written without the part below the millisecond loses it:
/// `event.sub_ms_ns` is set to what was written.
fn written(event: &mut Event, rng: &mut Rng, unreadable: bool) -> Value {
    let utc = event.happened_at.0;
    let ms = utc.rem_euclid(1000);
    // `…T12:34:56` without its fraction and zone.
    let stamp = rfc3339(Timestamp(utc - ms));
    let stem = &stamp[..19];
    let sub = event.sub_ms_ns / 100;
    let mut object = json!({
        "id": event.id.0,
        "type": event.kind.as_str(),
        "message": event.message,
        "details": event.details,
    });
    let (time, nulls) = match rng.below_or_eq(3) {
        // What optrail's own serializer writes: milliseconds only.
        0 => {
            event.sub_ms_ns = 0;
            (rfc3339(event.happened_at), false)
        }
        // ASP.NET: seven fraction digits, `+00:00`, nulls.
        1 => (format!("{stem}.{ms:03}{sub:04}+00:00"), true),
        // An offset without its colon, two hours east.
        2 => {
            let local = rfc3339(Timestamp(utc - ms + 2 * 3_600_000));
            (format!("{}.{ms:03}{sub:04}+0200", &local[..19]), false)
        }
        // No offset at all: UTC by convention.
        _ => (format!("{stem}.{ms:03}{sub:04}"), true),
    };
    if !unreadable {
        object["happenedAt"] = json!(time);
    }
    if nulls && event.message.is_empty() {
        object["message"] = Value::Null;
    }
    if nulls && event.details.is_empty() {
        object["details"] = Value::Null;
    }
    object
}

/// `Timestamp`'s own RFC 3339 text (its serde form).
fn rfc3339(at: Timestamp) -> String {
    serde_json::to_value(at)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .expect("a timestamp writes as a string")
}

#[derive(Debug)]
enum Step {
    /// Input for the client's current page (`page`); lost after a reload.
    ToClient {
        page: u64,
        input: Input,
    },
    /// The op socket's open reaches the server.
    SocketOpens {
        page: u64,
        op: OperationId,
    },
    /// The op socket's news reaches the client: opened, a text, or closed.
    SocketNews {
        page: u64,
        op: OperationId,
        generation: u64,
        news: News,
    },
    /// The server's operation does its next step.
    Run {
        op: usize,
    },
    Tick {
        page: u64,
        generation: u64,
    },
    Chaos,
}

#[derive(Debug)]
enum News {
    Opened,
    Text(String),
    Closed,
}

struct World {
    now: i64,
    rng: Rng,
    queue: BinaryHeap<Reverse<(i64, u64, usize)>>,
    steps: Vec<Option<Step>>,
    ops: Vec<SeedOp>,
    session: Session,
    compat: Compat,
    /// Bumped on reload: answers to the old page are lost.
    page: u64,
    /// Open op sockets of the current page: generation per operation.
    sockets: BTreeMap<OperationId, u64>,
    next_generation: u64,
    persisted: Vec<TrackedOperation>,
    timer: Option<(Timestamp, u64)>,
    next_timer: u64,
    stormy: bool,
    /// This backend wraps its histories as `{"events": [...]}`.
    wrapped: bool,
    /// Ids tracked that the backend never had.
    unknown: Vec<OperationId>,
    stats: SeedStats,
    trace: bool,
}

fn options() -> SessionOptions {
    SessionOptions {
        order: LogOrder::ByTime,
        // Seed backends do not ping (as `Config::compat` in the widget).
        server_ping_interval_ms: 24 * 3600 * 1000,
        ..SessionOptions::default()
    }
}

impl World {
    fn new(seed: u64, trace: bool) -> Self {
        let mut rng = Rng::new(seed);
        let session = Session::new(options(), rng.next_u64());
        Self {
            now: T0,
            rng,
            queue: BinaryHeap::new(),
            steps: Vec::new(),
            ops: Vec::new(),
            session,
            compat: Compat::new(),
            page: 0,
            sockets: BTreeMap::new(),
            next_generation: 0,
            persisted: Vec::new(),
            timer: None,
            next_timer: 0,
            stormy: true,
            wrapped: false,
            unknown: Vec::new(),
            stats: SeedStats::default(),
            trace,
        }
    }

    fn at(&mut self, delay: i64, step: Step) {
        let index = self.steps.len();
        self.steps.push(Some(step));
        self.queue
            .push(Reverse((self.now + delay.max(0), index as u64, index)));
    }

    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.rng.below_or_eq((hi - lo) as u64) as i64
    }

    fn latency(&mut self) -> i64 {
        if self.stormy && self.rng.chance(0.1) {
            self.between(200, 3_000)
        } else {
            self.between(1, 40)
        }
    }

    // ----- the client: the session behind the translator -----------------

    fn input(&mut self, input: Input) {
        if self.trace {
            println!("{:>8} client <- {input:?}", self.now - T0);
        }
        self.session.handle(input, Timestamp(self.now));
        while let Some(command) = self.session.poll_command() {
            if self.trace {
                println!("{:>8} client -> {command:?}", self.now - T0);
            }
            let action = self.compat.command(command);
            self.carry_out(action);
        }
        let deadline = self.session.poll_timeout();
        if deadline != self.timer.map(|(at, _)| at) {
            self.next_timer += 1;
            self.timer = deadline.map(|at| (at, self.next_timer));
            if let Some(at) = deadline {
                let (page, generation) = (self.page, self.next_timer);
                self.at(at.0 - self.now, Step::Tick { page, generation });
            }
        }
    }

    fn carry_out(&mut self, action: Action) {
        let page = self.page;
        match action {
            Action::Execute(Command::FetchHistory {
                request,
                operation_id,
                ..
            }) => {
                let delay = self.latency();
                let input = if self.stormy && self.rng.chance(0.15) {
                    self.stats.history_failures += 1;
                    Input::HistoryFailed {
                        request,
                        error: HistoryError::Transient("502".into()),
                    }
                } else {
                    let body = match self.ops.iter().find(|op| op.id == operation_id) {
                        Some(op) => {
                            let events: Vec<&Value> = op.events.iter().map(|(_, w)| w).collect();
                            if self.wrapped {
                                json!({ "events": events }).to_string()
                            } else {
                                serde_json::to_string(&events).expect("events")
                            }
                        }
                        None => {
                            let error = HistoryError::NotFound;
                            self.at(
                                delay,
                                Step::ToClient {
                                    page,
                                    input: Input::HistoryFailed { request, error },
                                },
                            );
                            return;
                        }
                    };
                    // Through the same parser the driver uses.
                    let page = compat::history_page(operation_id, &body).expect("a seed history");
                    Input::HistoryReceived { request, page }
                };
                self.at(delay, Step::ToClient { page, input });
            }
            Action::Execute(Command::Persist(set)) => self.persisted = set,
            Action::Execute(other) => panic!("a seed backend has no use for {other:?}"),
            Action::Feed(input) => self.at(0, Step::ToClient { page, input }),
            Action::OpenOperationSocket(op) => {
                let delay = self.latency();
                self.at(delay, Step::SocketOpens { page, op });
            }
            Action::CloseOperationSocket(op) => {
                self.sockets.remove(&op);
            }
            Action::CloseAll => self.sockets.clear(),
            Action::Nothing => {}
        }
    }

    /// News from an op socket, through the translator as the driver does.
    fn socket_news(&mut self, op: &OperationId, news: News) {
        let input = match news {
            News::Opened => self.compat.socket_opened(op),
            News::Text(text) => self.compat.frame(op, &text),
            News::Closed => {
                self.sockets.remove(op);
                self.compat.socket_closed(op)
            }
        };
        if let Some(input) = input {
            self.input(input);
        }
    }

    /// News of an op socket reaching the client after `delay`.
    fn news_after(&mut self, delay: i64, page: u64, op: OperationId, generation: u64, news: News) {
        let step = Step::SocketNews {
            page,
            op,
            generation,
            news,
        };
        self.at(delay, step);
    }

    fn reload(&mut self) {
        self.stats.reloads += 1;
        self.page += 1;
        self.sockets.clear();
        self.timer = None;
        self.session = Session::new(options(), self.rng.next_u64());
        self.compat = Compat::new();
        let set = self.persisted.clone();
        self.input(Input::Restore(set));
    }

    // ----- the seed server -------------------------------------------------

    fn start_operation(&mut self) {
        let n = self.ops.len();
        let id = OperationId(format!("pay_{n:03}_{:08x}", self.rng.next_u64() as u32));
        let mut remaining = vec!["ProcessingStarted"];
        let progress = self.between(0, 8) as usize;
        remaining.extend(std::iter::repeat_n("ProgressUpdated", progress));
        remaining.push(if self.rng.chance(0.5) {
            "PaymentSucceeded"
        } else {
            "PaymentFailed"
        });
        remaining.reverse();
        self.ops.push(SeedOp {
            id: id.clone(),
            events: Vec::new(),
            remaining,
        });
        // Events may flow before the client subscribes, or even tracks it.
        let first = self.between(0, 2_000);
        self.at(first, Step::Run { op: n });
        let track = self.between(0, 3_000);
        let operation = TrackedOperation::by_id(id);
        let page = self.page;
        self.at(
            track,
            Step::ToClient {
                page,
                input: Input::Track {
                    operation,
                    epoch: None,
                },
            },
        );
    }

    fn run(&mut self, index: usize) {
        let Some(kind) = self.ops[index].remaining.pop() else {
            return;
        };
        let n = self.ops[index].events.len();
        let terminal = self.ops[index].remaining.is_empty();
        // Two events may share a millisecond; the fraction below it orders
        // them (their ids sort the other way when `n` grows a digit).
        let sub_ms_ns = self.rng.below_or_eq(9_999) as u32 * 100;
        let mut event = Event {
            id: EventId(format!("{}-{n}", self.ops[index].id.as_str())),
            seq: None,
            kind: EventType::from(kind),
            message: if self.rng.chance(0.2) {
                String::new()
            } else {
                format!("{kind} {n}")
            },
            happened_at: Timestamp(self.now),
            sub_ms_ns,
            details: Map::new(),
            status: None,
        };
        // Now and then an event no client can place (the end never is: an
        // operation whose end cannot be read cannot end).
        let unreadable = !terminal && self.rng.chance(0.05);
        if unreadable {
            self.stats.unreadable_events += 1;
        }
        let value = written(&mut event, &mut self.rng, unreadable);
        let text = value.to_string();
        let op = &mut self.ops[index];
        op.events.push((event, value));
        let id = op.id.clone();
        self.stats.events += 1;
        if let Some(&generation) = self.sockets.get(&id) {
            let copies = if self.stormy && self.rng.chance(0.2) {
                self.stats.duplicate_pushes += 1;
                2
            } else {
                1
            };
            for _ in 0..copies {
                // Each copy on its own delay: pushes overtake each other.
                let delay = self.latency();
                if delay > 100 {
                    self.stats.reordered_pushes += 1;
                }
                let news = News::Text(text.clone());
                let (page, op) = (self.page, id.clone());
                self.news_after(delay, page, op, generation, news);
            }
        }
        if !self.ops[index].remaining.is_empty() {
            // Now and then the next one in the same millisecond.
            let next = if self.rng.chance(0.2) {
                0
            } else {
                self.between(10, 3_000)
            };
            self.at(next, Step::Run { op: index });
        }
    }

    fn chaos(&mut self) {
        match self.rng.below_or_eq(9) {
            0 if self.ops.len() < 6 => self.start_operation(),
            1 => self.reload(),
            2..=4 => {
                // The server drops one op socket.
                let open: Vec<(OperationId, u64)> =
                    self.sockets.iter().map(|(k, v)| (k.clone(), *v)).collect();
                if !open.is_empty() {
                    let (op, generation) =
                        open[self.rng.below_or_eq(open.len() as u64 - 1) as usize].clone();
                    self.stats.socket_drops += 1;
                    let delay = self.latency();
                    let page = self.page;
                    self.news_after(delay, page, op, generation, News::Closed);
                }
            }
            5 => {
                if let Some((op, &generation)) = self.sockets.iter().next() {
                    self.stats.garbage_frames += 1;
                    let (page, op) = (self.page, op.clone());
                    let news = News::Text("{\"type\": 42".into());
                    self.news_after(1, page, op, generation, news);
                }
            }
            _ => {}
        }
        if self.now - T0 < STORM_MS {
            let next = self.between(100, 4_000);
            self.at(next, Step::Chaos);
        } else {
            self.stormy = false;
        }
    }

    fn step(&mut self, step: Step) {
        self.stats.steps += 1;
        if self.trace && !matches!(step, Step::ToClient { .. } | Step::Tick { .. }) {
            println!("{:>8} world: {step:?}", self.now - T0);
        }
        match step {
            Step::ToClient { page, input } if page == self.page => self.input(input),
            Step::ToClient { .. } => {}
            Step::SocketOpens { page, op } if page == self.page => {
                self.next_generation += 1;
                let generation = self.next_generation;
                self.sockets.insert(op.clone(), generation);
                // An id the backend does not know: the upgrade is refused.
                let known = self.ops.iter().any(|o| o.id == op);
                let news = if known { News::Opened } else { News::Closed };
                let delay = self.latency();
                self.news_after(delay, page, op, generation, news);
            }
            Step::SocketOpens { .. } => {}
            Step::SocketNews {
                page,
                op,
                generation,
                news,
            } => {
                let current = page == self.page && self.sockets.get(&op) == Some(&generation);
                if current {
                    self.socket_news(&op, news);
                }
            }
            Step::Run { op } => self.run(op),
            Step::Tick { page, generation } => {
                if page == self.page && self.timer.is_some_and(|(_, g)| g == generation) {
                    self.timer = None;
                    self.input(Input::Tick);
                }
            }
            Step::Chaos => self.chaos(),
        }
    }

    fn settled(&self) -> bool {
        !self.stormy
            && self.ops.iter().all(|op| op.remaining.is_empty())
            && self
                .session
                .operations()
                .all(|view| view.finished || view.problem == Some(&Problem::NotFound))
    }

    fn check(&self) -> Result<(), String> {
        let tracked: BTreeSet<&OperationId> =
            self.session.operations().map(|v| &v.tracked.id).collect();
        for op in &self.ops {
            if !tracked.contains(&op.id) {
                // Started after the last persist and lost with a reload: the
                // harness tracks by id, so this is the harness's own loss.
                continue;
            }
            let view = self.session.operation(&op.id).expect("tracked");
            let shown: Vec<&str> = view.log.iter().map(|e| e.id.0.as_str()).collect();
            // Every event that can be read, in time order to the sub-ms.
            let mut expected: Vec<&Event> = op
                .events
                .iter()
                .filter(|(_, written)| written.get("happenedAt").is_some())
                .map(|(event, _)| event)
                .collect();
            expected.sort_by(|a, b| {
                (a.happened_at, a.sub_ms_ns, &a.id.0).cmp(&(b.happened_at, b.sub_ms_ns, &b.id.0))
            });
            let expected: Vec<&str> = expected.iter().map(|e| e.id.0.as_str()).collect();
            if shown != expected {
                return Err(format!(
                    "{}: shows {shown:?}, the server has {expected:?}",
                    op.id
                ));
            }
            // And what cannot be read is said, never passed over.
            let unreadable = (op.events.len() - expected.len()) as u32;
            if view.unreadable != unreadable {
                return Err(format!(
                    "{}: says {} events could not be read, the server has {unreadable}",
                    op.id, view.unreadable
                ));
            }
            if view.problem == Some(&Problem::NotFound) || !view.finished {
                return Err(format!("{}: not finished ({:?})", op.id, view.problem));
            }
        }
        for id in &self.unknown {
            if let Some(view) = self.session.operation(id)
                && view.problem != Some(&Problem::NotFound)
            {
                return Err(format!(
                    "{id}: unknown to the server, shows {:?}",
                    view.problem
                ));
            }
        }
        Ok(())
    }
}

/// Runs one seed-format schedule to its end and checks the outcome.
pub fn run_seed_schedule(seed: u64, trace: bool) -> Result<SeedStats, String> {
    let mut world = World::new(seed, trace);
    world.wrapped = world.rng.chance(0.3);
    for _ in 0..=world.rng.below_or_eq(3) {
        world.start_operation();
    }
    if world.rng.chance(0.3) {
        // A deep link to an id the backend never had, among good ones.
        world.stats.unknown_ids += 1;
        let id = OperationId(format!("missing_{:08x}", world.rng.next_u64() as u32));
        world.unknown.push(id.clone());
        let track = Input::Track {
            operation: TrackedOperation::by_id(id),
            epoch: None,
        };
        world.at(
            1,
            Step::ToClient {
                page: 0,
                input: track,
            },
        );
    }
    world.at(1, Step::Chaos);
    let deadline = T0 + STORM_MS + CALM_MS;
    while let Some(Reverse((at, _, index))) = world.queue.pop() {
        if at > deadline {
            break;
        }
        world.now = at;
        let step = world.steps[index].take().expect("each step runs once");
        world.step(step);
        if world.settled() {
            break;
        }
    }
    if !world.settled() {
        let states: Vec<String> = world
            .session
            .operations()
            .map(|v| {
                format!(
                    "{}: {} events, {:?}, {:?}",
                    v.tracked.id,
                    v.log.len(),
                    v.recovery,
                    v.problem
                )
            })
            .collect();
        return Err(format!(
            "seed {seed}: did not settle within {} virtual minutes of calm: {states:?}",
            CALM_MS / 60_000
        ));
    }
    world.check().map_err(|e| format!("seed {seed}: {e}"))?;
    world.stats.schedules = 1;
    Ok(world.stats)
}
