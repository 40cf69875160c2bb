//! Load benchmark of the live channel: N WebSocket subscribers on loopback
//! while operations emit events. Prints events/s delivered, the delivery
//! latency (an event's `happenedAt`, stamped just before its transaction,
//! to the frame's arrival: commit and fan-out included, millisecond
//! resolution), and SQLite's append rate — next to a one-subscriber
//! baseline measured in the same run.
//!
//! ```text
//! cargo bench -p optrail-server --bench loadbench -- [--subscribers 1000,10000]
//!     [--rate 10000] [--per-operation 100] [--seconds 10] [--warmup 2]
//!     [--phases appends,fanout] [--postgres 1,3] [--peer socketio]
//! ```
//!
//! The server runs in a child process (this binary, re-executed with
//! `--serve`): 10k sockets on each side would not fit one process's
//! descriptor limit. Only loopback addresses are used; every phase is
//! bounded in time, and the child exits when this process does.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use optrail_core::{Operation, OperationId, OperationList, Timestamp};
use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Debug, Clone)]
struct Options {
    subscribers: Vec<usize>,
    /// Events delivered per second, summed over all subscribers.
    rate: f64,
    per_operation: usize,
    seconds: f64,
    warmup: f64,
    /// Which parts run: `appends` (SQLite append rate and one operation's
    /// latency at 1 000 events/s, group commit against one transaction per
    /// append) and `fanout` (the subscriber scenarios).
    phases: Vec<String>,
    /// Also run each phase on PostgreSQL with this many instances (each
    /// count in turn), e.g. `--postgres 1,3`.
    postgres: Vec<usize>,
    /// Also run the fan-out scenarios against a Node.js Socket.IO server.
    peer: bool,
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--serve") {
        let max_group = args.get(2).map_or(optrail_server::commit::MAX_GROUP, |n| {
            n.parse().expect("--serve DATABASE [MAX_GROUP]")
        });
        serve(args.get(1).expect("--serve DATABASE"), max_group);
        return;
    }
    let options = parse(&args);
    raise_descriptor_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    println!(
        "clients: this process; load average before: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    if options.phases.iter().any(|p| p == "appends") {
        // The baseline first: one transaction per append, as before issue 20.
        for (name, max_group) in [
            ("SQLite, one transaction per append (baseline)", 1),
            ("SQLite, group commit", optrail_server::commit::MAX_GROUP),
        ] {
            let server = ChildServer::start(None, max_group);
            println!(
                "{name}: server {} (child process, at most {max_group} appends per transaction)",
                server.base
            );
            runtime.block_on(appends(
                std::slice::from_ref(&server.base),
                &options,
                &[server.pid()],
            ));
        }
        for &n in &options.postgres {
            let cluster = Cluster::start();
            let servers = ChildServer::several(&cluster.url, n);
            println!("PostgreSQL × {n}: servers {:?}", bases(&servers));
            runtime.block_on(appends(&bases(&servers), &options, &pids(&servers)));
        }
    }
    if options.phases.iter().any(|p| p == "fanout") {
        let server = ChildServer::start(None, optrail_server::commit::MAX_GROUP);
        println!("SQLite fan-out: server {} (child process)", server.base);
        runtime.block_on(run(
            std::slice::from_ref(&server.base),
            &options,
            &[server.pid()],
        ));
        drop(server);
        for &n in &options.postgres {
            let cluster = Cluster::start();
            let servers = ChildServer::several(&cluster.url, n);
            println!(
                "PostgreSQL × {n} fan-out: servers {:?}, subscribers spread over them",
                bases(&servers)
            );
            runtime.block_on(run(&bases(&servers), &options, &pids(&servers)));
        }
        if options.peer {
            println!("peer: Node.js Socket.IO (server/benches/peer/socketio.js), no persistence");
            for scenario in scenarios(&options) {
                let peer = Peer::start(scenario.operations, scenario.step_ms);
                let http = reqwest::Client::new();
                let bases = std::slice::from_ref(&peer.base);
                let pids = [peer.child.id()];
                runtime.block_on(load(&http, bases, &options, &scenario, &pids, true));
            }
        }
    }
}

/// The Socket.IO peer for one scenario; stopped on drop.
struct Peer {
    child: Child,
    base: String,
}

impl Peer {
    fn start(operations: usize, step_ms: u64) -> Peer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peer/socketio.js");
        let mut child = Command::new("node")
            .arg(script)
            .arg(operations.to_string())
            .arg(step_ms.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node runs the peer (scripts/setup.sh installs socket.io)");
        let base = read_address(&mut child);
        Peer { child, base }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        std::thread::sleep(Duration::from_millis(300));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bases(servers: &[ChildServer]) -> Vec<String> {
    servers.iter().map(|s| s.base.clone()).collect()
}

fn pids(servers: &[ChildServer]) -> Vec<u32> {
    servers.iter().map(ChildServer::pid).collect()
}

/// A throw-away PostgreSQL cluster (scripts/pg.sh, default settings: every
/// commit is flushed), stopped on drop.
struct Cluster {
    dir: tempfile::TempDir,
    url: String,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let output = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg.sh"))
            .arg("start")
            .arg(dir.path().join("pg"))
            .output()
            .expect("scripts/pg.sh runs");
        assert!(
            output.status.success(),
            "no PostgreSQL ({}): run scripts/setup.sh",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        let url = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        Cluster { dir, url }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg.sh"))
            .arg("stop")
            .arg(self.dir.path().join("pg"))
            .output();
    }
}

/// The server in a child process, on a fresh database; stopped on drop.
struct ChildServer {
    _dir: tempfile::TempDir,
    child: Child,
    base: String,
}

impl ChildServer {
    /// On a fresh SQLite file, or on `postgres`.
    fn start(postgres: Option<&str>, max_group: usize) -> ChildServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let database = match postgres {
            Some(url) => std::path::PathBuf::from(url),
            None => dir.path().join("bench.db"),
        };
        let mut child = spawn_server(&database, max_group);
        let base = read_address(&mut child);
        ChildServer {
            _dir: dir,
            child,
            base,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `n` instances sharing one PostgreSQL database.
    fn several(url: &str, n: usize) -> Vec<ChildServer> {
        (0..n)
            .map(|_| ChildServer::start(Some(url), optrail_server::commit::MAX_GROUP))
            .collect()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        // Closing its stdin stops the server; kill it if it lingers.
        drop(self.child.stdin.take());
        std::thread::sleep(Duration::from_millis(500));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse(args: &[String]) -> Options {
    let mut options = Options {
        subscribers: vec![1000, 10_000],
        rate: 10_000.0,
        per_operation: 100,
        seconds: 10.0,
        warmup: 2.0,
        phases: vec!["appends".into(), "fanout".into()],
        postgres: Vec::new(),
        peer: false,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--subscribers" => {
                options.subscribers = value
                    .split(',')
                    .map(|n| n.parse().expect("--subscribers N[,N…]"))
                    .collect();
            }
            "--rate" => options.rate = value.parse().expect("--rate EVENTS_PER_S"),
            "--per-operation" => options.per_operation = value.parse().expect("--per-operation N"),
            "--seconds" => options.seconds = value.parse().expect("--seconds S"),
            "--warmup" => options.warmup = value.parse().expect("--warmup S"),
            "--phases" => options.phases = value.split(',').map(str::to_owned).collect(),
            "--peer" => options.peer = value == "socketio",
            "--postgres" => {
                options.postgres = value
                    .split(',')
                    .map(|n| n.parse().expect("--postgres N[,N…]"))
                    .collect();
            }
            other => panic!("unknown option {other}"),
        }
    }
    options.seconds = options.seconds.clamp(1.0, 60.0);
    options
}

fn raise_descriptor_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

// ----- the server, in the child -------------------------------------------

fn serve(database: &str, max_group: usize) {
    raise_descriptor_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut config = optrail_server::Config::new(database);
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.limits.starts_per_minute = 1_000_000;
        // Every socket comes from loopback: one client as the cap counts.
        config.limits.sockets_per_client = usize::MAX;
        config.access.demo = true;
        config.max_group = max_group;
        let server = optrail_server::serve(config)
            .await
            .expect("the server starts");
        println!("listening on {}", server.url());
        std::io::stdout().flush().ok();
        // Runs until the parent closes stdin (or dies).
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        })
        .await
        .ok();
        server.shutdown().await;
    });
}

fn spawn_server(database: &std::path::Path, max_group: usize) -> Child {
    Command::new(std::env::current_exe().expect("this binary"))
        .arg("--serve")
        .arg(database)
        .arg(max_group.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the server process starts")
}

fn read_address(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("the child's stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the server's first line");
    line.trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned()
}

// ----- the clients ---------------------------------------------------------

struct Scenario {
    name: String,
    subscribers: usize,
    operations: usize,
    step_ms: u64,
}

/// SQLite's append rate (1, 8 and 100 operations appending as fast as
/// they can) and one operation's delivery latency at 1 000 events/s.
async fn appends(bases: &[String], options: &Options, server_pids: &[u32]) {
    let http = reqwest::Client::new();
    append_rate(&http, bases, 1).await;
    append_rate(&http, bases, 8).await;
    append_rate(&http, bases, 100).await;
    let scenario = Scenario {
        name: "one operation at 1 000 events/s".into(),
        subscribers: 1,
        operations: 1,
        step_ms: 1,
    };
    load(&http, bases, options, &scenario, server_pids, false).await;
}

async fn run(bases: &[String], options: &Options, server_pids: &[u32]) {
    let http = reqwest::Client::new();
    for scenario in &scenarios(options) {
        load(&http, bases, options, scenario, server_pids, false).await;
    }
}

/// The fan-out scenarios: the one-subscriber baseline, then `--subscribers`.
fn scenarios(options: &Options) -> Vec<Scenario> {
    let mut scenarios = vec![Scenario {
        name: "baseline".into(),
        subscribers: 1,
        operations: 1,
        step_ms: 100,
    }];
    for &n in &options.subscribers {
        let operations = n.div_ceil(options.per_operation.max(1));
        // Each subscriber receives rate / n events per second.
        let step_ms = (1000.0 * n as f64 / options.rate).round().max(1.0) as u64;
        scenarios.push(Scenario {
            name: format!("{n} subscribers"),
            subscribers: n,
            operations,
            step_ms,
        });
    }
    scenarios
}

async fn start(http: &reqwest::Client, base: &str, step_ms: u64) -> Operation {
    http.post(format!("{base}/operations"))
        .json(&json!({"kind": "payment", "params": {
            "amount": 1, "description": "bench", "stepMs": step_ms,
            "steps": 10_000, "failureRate": 0
        }}))
        .send()
        .await
        .expect("POST /operations")
        .json()
        .await
        .expect("an operation")
}

async fn cancel(http: &reqwest::Client, base: &str, ids: &[OperationId]) {
    for id in ids {
        let _ = http.delete(format!("{base}/operations/{id}")).send().await;
    }
}

/// The sum of the heads of `ids`.
async fn heads(http: &reqwest::Client, base: &str, ids: &[OperationId]) -> u64 {
    let mut total = 0;
    let mut before: Option<String> = None;
    let wanted: std::collections::HashSet<&OperationId> = ids.iter().collect();
    loop {
        let mut url = format!("{base}/operations?limit=100");
        if let Some(cursor) = &before {
            url.push_str(&format!("&before={cursor}"));
        }
        let list: OperationList = http
            .get(url)
            .send()
            .await
            .expect("GET /operations")
            .json()
            .await
            .expect("a list");
        total += list
            .operations
            .iter()
            .filter(|o| wanted.contains(&o.id))
            .map(|o| o.head.0)
            .sum::<u64>();
        match list.next_before {
            Some(cursor) => before = Some(cursor),
            None => return total,
        }
    }
}

/// Appends as fast as the runner goes (`stepMs` 0), nobody subscribed.
async fn append_rate(http: &reqwest::Client, bases: &[String], operations: usize) {
    let base = &bases[0];
    let mut ids = Vec::new();
    for o in 0..operations {
        ids.push(start(http, &bases[o % bases.len()], 0).await.id);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let from = heads(http, base, &ids).await;
    let began = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let to = heads(http, base, &ids).await;
    let elapsed = began.elapsed().as_secs_f64();
    cancel(http, base, &ids).await;
    println!(
        "appends, stepMs 0, no subscribers, {operations} operation(s): {:.0} events/s",
        (to - from) as f64 / elapsed
    );
}

#[derive(Default)]
struct ClientReport {
    latencies_us: Vec<u32>,
    gaps: u64,
    disconnected: bool,
}

async fn load(
    http: &reqwest::Client,
    bases: &[String],
    options: &Options,
    scenario: &Scenario,
    server_pids: &[u32],
    peer: bool,
) {
    // Operations, started evenly over one step so their events interleave,
    // and over the instances (each runs those started on it). The peer
    // runs its rooms `op0`… itself, from its start.
    let base = &bases[0];
    let mut ids = Vec::new();
    let stagger = Duration::from_millis(scenario.step_ms) / scenario.operations.max(1) as u32;
    for o in 0..scenario.operations {
        if peer {
            ids.push(OperationId(format!("op{o}")));
            continue;
        }
        ids.push(
            start(http, &bases[o % bases.len()], scenario.step_ms)
                .await
                .id,
        );
        tokio::time::sleep(stagger).await;
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let (window_tx, window_rx) = watch::channel(None::<(i64, i64)>);
    let subscribed = Arc::new(AtomicUsize::new(0));
    let connecting = Arc::new(Semaphore::new(200));
    let mut clients = Vec::with_capacity(scenario.subscribers);
    let setup = Instant::now();
    for i in 0..scenario.subscribers {
        let id = ids[i % ids.len()].clone();
        // Subscribers spread over the instances, each operation's too.
        let base = &bases[(i / ids.len() + i) % bases.len()];
        let url = match peer {
            false => format!("{}/ws", base.replacen("http://", "ws://", 1)),
            true => format!(
                "{}/socket.io/?EIO=4&transport=websocket",
                base.replacen("http://", "ws://", 1)
            ),
        };
        let stop = stop_rx.clone();
        let window = window_rx.clone();
        let subscribed = subscribed.clone();
        let connecting = connecting.clone();
        clients.push(tokio::spawn(async move {
            client(url, id, stop, window, subscribed, connecting, peer).await
        }));
    }
    while subscribed.load(Ordering::Relaxed) < scenario.subscribers {
        if setup.elapsed() > Duration::from_secs(60) {
            println!(
                "  only {} of {} subscribed after a minute; measuring those",
                subscribed.load(Ordering::Relaxed),
                scenario.subscribers
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let setup = setup.elapsed();
    tokio::time::sleep(Duration::from_secs_f64(options.warmup)).await;
    let from_head = if peer {
        0
    } else {
        heads(http, base, &ids).await
    };
    let began = now_us();
    let measured = Instant::now();
    let _ = window_tx.send(Some((began, began + (options.seconds * 1e6) as i64)));
    tokio::time::sleep(Duration::from_secs_f64(options.seconds)).await;
    let elapsed = measured.elapsed().as_secs_f64();
    let to_head = if peer {
        0
    } else {
        heads(http, base, &ids).await
    };
    let memory = format!(
        "resident memory: server {} MiB, clients {} MiB; load average {}",
        server_pids
            .iter()
            .map(|pid| rss_mib(&pid.to_string()))
            .sum::<u64>(),
        rss_mib("self"),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split(' ')
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = stop_tx.send(true);
    let mut latencies: Vec<u32> = Vec::new();
    let (mut gaps, mut disconnected) = (0, 0);
    for client in clients {
        let report = client.await.unwrap_or_default();
        latencies.extend(report.latencies_us);
        gaps += report.gaps;
        disconnected += usize::from(report.disconnected);
    }
    if !peer {
        cancel(http, base, &ids).await;
    }
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let at = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        f64::from(latencies[at]) / 1000.0
    };
    println!(
        "{}: {} subscribers on {} operations (stepMs {}), {:.1} s to connect and subscribe",
        scenario.name,
        scenario.subscribers,
        scenario.operations,
        scenario.step_ms,
        setup.as_secs_f64()
    );
    println!(
        "  delivered {:.0} events/s ({} in {:.1} s); appends {:.0} events/s; gaps {gaps}; dropped connections {disconnected}",
        latencies.len() as f64 / options.seconds,
        latencies.len(),
        options.seconds,
        (to_head - from_head) as f64 / elapsed,
    );
    println!(
        "  latency happenedAt → received: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    println!("  {memory}");
}

fn rss_mib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// One subscriber: connect, subscribe, then record each pushed event's
/// latency while the measuring window is open. Answers pings.
async fn client(
    url: String,
    id: OperationId,
    mut stop: watch::Receiver<bool>,
    window: watch::Receiver<Option<(i64, i64)>>,
    subscribed: Arc<AtomicUsize>,
    connecting: Arc<Semaphore>,
    peer: bool,
) -> ClientReport {
    let mut report = ClientReport::default();
    let permit = connecting.acquire_owned().await;
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024);
    // A server whose accept queue overflows resets connections: retry a
    // few times, then count this subscriber as dropped.
    let mut attempts = 0;
    let mut ws = loop {
        let connecting =
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true);
        match connecting.await {
            Ok((ws, _)) => break ws,
            Err(_) if attempts < 20 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100 * attempts)).await;
            }
            Err(e) => {
                eprintln!("connect: {e}");
                report.disconnected = true;
                return report;
            }
        }
    };
    if peer {
        // Engine.IO's open packet, then Socket.IO's namespace connect.
        let _open = ws.next().await;
        ws.send(Message::text("40")).await.expect("connect");
        while let Some(Ok(message)) = ws.next().await {
            if message.to_text().is_ok_and(|t| t.starts_with("40")) {
                break;
            }
        }
        let subscribe = format!(r#"42["subscribe","{id}"]"#);
        ws.send(Message::text(subscribe)).await.expect("subscribe");
    } else {
        let subscribe = json!({"type": "subscribe", "operationId": id, "after": 0}).to_string();
        ws.send(Message::text(subscribe)).await.expect("subscribe");
    }
    drop(permit);
    let mut last_seq: Option<u64> = None;
    loop {
        let message = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            message = ws.next() => message,
        };
        let Some(Ok(message)) = message else {
            report.disconnected = true;
            break;
        };
        let Message::Text(text) = message else {
            continue;
        };
        let received = now_us();
        let text = text.as_str();
        if text.starts_with(r#"{"type":"event""#) || text.starts_with(r#"42["event","#) {
            let (Some(seq), Some(at)) = (field_u64(text, "\"seq\":"), happened_at_us(text)) else {
                continue;
            };
            if let Some(last) = last_seq
                && seq != last + 1
            {
                report.gaps += 1;
            }
            last_seq = Some(seq);
            if let Some((from, to)) = *window.borrow()
                && (from..to).contains(&received)
            {
                report
                    .latencies_us
                    .push(u32::try_from((received - at).max(0)).unwrap_or(u32::MAX));
            }
        } else if text.starts_with(r#"{"type":"subscribed""#)
            || text.starts_with(r#"42["subscribed","#)
        {
            last_seq = field_u64(text, "\"head\":");
            subscribed.fetch_add(1, Ordering::Relaxed);
        } else if text.starts_with(r#"{"type":"ping""#) {
            let _ = ws.send(Message::text(r#"{"type":"pong"}"#)).await;
        } else if text == "2" {
            // Engine.IO's ping.
            let _ = ws.send(Message::text("3")).await;
        }
    }
    let _ = ws.close(None).await;
    report
}

fn field_u64(text: &str, key: &str) -> Option<u64> {
    let rest = &text[text.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn happened_at_us(text: &str) -> Option<i64> {
    let key = "\"happenedAt\":\"";
    let rest = &text[text.find(key)? + key.len()..];
    let value = &rest[..rest.find('"')?];
    Timestamp::parse(value).ok().map(|t| t.millis() * 1000)
}
