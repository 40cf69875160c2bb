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

use crate::sim::server::{ConnId, Outbox, Registration, Server};

mod chaos;
mod check;
mod client;
mod network;
mod step;

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
    pub refused_subscriptions: u64,
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
            refused_subscriptions,
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
    /// A subscribe refused with `internal` now and then (it may pass).
    p_refuse: f64,
    /// The server's subscriptions per connection: usually plenty, some
    /// schedules fewer than the client follows.
    subscription_limit: usize,
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
        let p_refuse = [0.0, 0.0, 0.1][rng.below_or_eq(2) as usize];
        let subscription_limit = [64, 64, 1, 2, 3][rng.below_or_eq(4) as usize];
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
            p_refuse,
            subscription_limit,
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
