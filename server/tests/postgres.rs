//! The server on PostgreSQL (issue 20, part 3), against a real throw-away
//! cluster (scripts/pg.sh): the conformance command, clients racing
//! subscriptions across two instances, and three instance processes with
//! publishers writing through all of them while one is killed with
//! SIGKILL mid-stream.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{PATIENCE, Postgres, TestServer, Ws, assert_gap_free, passes_conformance};
use optrail_core::{Event, OperationId, Rng, ServerFrame};
use optrail_server::auth::PublisherKey;
use serde_json::json;

/// The publisher key of the instances started as processes below.
const KEY: &str = "conformance-publisher-key-0123456789";

#[tokio::test]
async fn on_postgres_the_server_passes_every_conformance_check() {
    let postgres = Postgres::start();
    passes_conformance(postgres.config()).await;
}

/// Merges by seq; the same seq twice must be the same event.
fn insert(log: &mut BTreeMap<u64, Event>, event: Event) {
    let seq = event.seq.expect("a seq").0;
    if let Some(known) = log.get(&seq) {
        assert_eq!(known.id, event.id, "seq {seq} arrived as two events");
    }
    log.insert(seq, event);
}

/// PROTOCOL.md's client on one instance: subscribe, then history up to
/// the head, then pushes, which must be exactly what follows the head.
async fn follow(server: &TestServer, id: OperationId, delay: Duration) -> (Vec<Event>, bool) {
    tokio::time::sleep(delay).await;
    let mut ws = server.ws().await;
    ws.subscribe(&id, 0).await;
    let head = match ws.next_frame().await {
        ServerFrame::Subscribed { head, .. } => head,
        other => panic!("expected subscribed first, got {other:?}"),
    };
    let mut log = BTreeMap::new();
    let mut after = 0;
    while after < head.0 {
        for event in server.events_page(&id, after, 7).await.events {
            after = after.max(event.seq.unwrap().0);
            insert(&mut log, event);
        }
    }
    let mut pushed = Vec::new();
    loop {
        match ws.next_frame().await {
            ServerFrame::Event { event, .. } => {
                pushed.push(event.seq.unwrap().0);
                insert(&mut log, event);
            }
            ServerFrame::Unsubscribed { .. } => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let expected: Vec<u64> = (head.0 + 1..=head.0 + pushed.len() as u64).collect();
    assert_eq!(pushed, expected, "pushes after head {}", head.0);
    (
        log.into_values().collect(),
        head.0 > 0 && !pushed.is_empty(),
    )
}

/// The race test of tests/live.rs with two instances: runs on one, half
/// the clients subscribe through the other, whose relay learns of the
/// events from notifications only.
#[tokio::test]
async fn clients_subscribing_at_random_moments_on_either_instance_end_with_exactly_the_log() {
    let postgres = Postgres::start();
    let running = TestServer::start(postgres.config()).await;
    let relaying = TestServer::start(postgres.config()).await;
    let mut rng = Rng::new(0x5eed_0917_a11e);
    let mut operations = Vec::new();
    for i in 0..4 {
        let operation = running
            .start_operation(
                if i % 2 == 0 { "payment" } else { "vm" },
                json!({"amount": 9, "name": "race", "stepMs": 3, "steps": 60, "failureRate": 0.5}),
            )
            .await;
        operations.push(operation.id);
    }
    let mut clients = Vec::new();
    for c in 0..32 {
        let id = operations[c % operations.len()].clone();
        let delay = Duration::from_millis(rng.below_or_eq(200));
        let server = if c % 2 == 0 { &running } else { &relaying };
        clients.push((id.clone(), follow(server, id, delay)));
    }
    let (ids, futures): (Vec<_>, Vec<_>) = clients.into_iter().unzip();
    let logs = futures_util::future::join_all(futures).await;
    assert!(
        logs.iter().any(|(_, raced)| *raced),
        "no client joined mid-run"
    );
    for (id, (log, _)) in ids.iter().zip(logs) {
        let truth = relaying.all_events(id).await;
        assert_gap_free(&truth);
        assert!(relaying.operation(id).await.status.is_terminal());
        assert_eq!(log, truth, "a client's log of {id} differs");
    }
    relaying.stop().await;
    running.stop().await;
}

/// One instance of the binary on the shared database.
struct Instance {
    child: Option<Child>,
    url: String,
}

impl Instance {
    fn start(database: &str) -> Instance {
        let mut child = Command::new(env!("CARGO_BIN_EXE_optrail-server"))
            .args(["--listen", "127.0.0.1:0", "--ping-interval-ms", "500"])
            .args(["--database", database, "--demo"])
            .args(["--starts-per-minute", "100000"])
            .env("OPTRAIL_PUBLISHER_KEY", KEY)
            .env_remove("OPTRAIL_DATABASE")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let url = loop {
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "the server exited"
            );
            if let Some(url) = line.trim().strip_prefix("listening on ") {
                break url.to_owned();
            }
        };
        // Keep reading its log so that it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Instance {
            child: Some(child),
            url,
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A viewer that survives its instance: on a lost socket it moves to the
/// next instance, subscribes again and fills the gap from that instance's
/// history. Ends with its merged log once the operation ended.
async fn watch_across(urls: Vec<String>, first: usize, id: OperationId) -> (Vec<Event>, usize) {
    let http = reqwest::Client::new();
    let mut log: BTreeMap<u64, Event> = BTreeMap::new();
    let mut moves = 0;
    let mut at = first;
    loop {
        let url = &urls[at % urls.len()];
        at += 1;
        let ws_url = format!("{}/ws", url.replacen("http://", "ws://", 1));
        let Ok(mut ws) = Ws::try_connect(&ws_url, None).await else {
            moves += 1;
            continue;
        };
        ws.subscribe(&id, 0).await;
        let head = match ws.next().await {
            Some(ServerFrame::Subscribed { head, .. }) => head,
            _ => {
                moves += 1;
                continue;
            }
        };
        let mut after = log.keys().next_back().copied().unwrap_or(0);
        let mut history_failed = false;
        while after < head.0 {
            let page = http
                .get(format!(
                    "{url}/operations/{id}/events?after={after}&limit=50"
                ))
                .send()
                .await;
            let Ok(page) = page else {
                history_failed = true;
                break;
            };
            let page: optrail_core::EventsPage = page.json().await.unwrap();
            for event in page.events {
                after = after.max(event.seq.unwrap().0);
                insert(&mut log, event);
            }
        }
        if history_failed {
            moves += 1;
            continue;
        }
        let mut next = head.0 + 1;
        loop {
            match ws.next().await {
                Some(ServerFrame::Event { event, .. }) => {
                    let seq = event.seq.unwrap().0;
                    assert_eq!(seq, next, "a push out of order on {url}");
                    next += 1;
                    insert(&mut log, event);
                }
                Some(ServerFrame::Unsubscribed { .. }) => {
                    return (log.into_values().collect(), moves);
                }
                Some(ServerFrame::Ping) => ws.send(json!({"type": "pong"})).await,
                Some(other) => panic!("unexpected {other:?}"),
                None => break, // the instance is gone: move on
            }
        }
        moves += 1;
    }
}

/// A publisher writing an operation's events in small batches through all
/// instances in turn; a batch refused because its instance died is sent
/// again to the next one (appends are idempotent by event id).
async fn publish_across(urls: Vec<String>, id: OperationId, events: usize, pause: Duration) {
    let http = reqwest::Client::new();
    let mut at = 0;
    let mut sent = 0;
    while sent < events {
        let batch: Vec<_> = (sent..(sent + 2).min(events))
            .map(|n| {
                let last = n + 1 == events;
                json!({
                    "id": format!("e{n}"),
                    "type": if last { "Deployed" } else { "Progress" },
                    "message": format!("step {n}"),
                    "status": if last { Some("Succeeded") } else { None },
                })
            })
            .collect();
        let url = &urls[at % urls.len()];
        at += 1;
        let response = http
            .post(format!("{url}/operations/{id}/events"))
            .bearer_auth(KEY)
            .json(&json!({ "events": batch }))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if matches!(&response, Ok(r) if r.status() == 200) {
            sent += batch.len();
            tokio::time::sleep(pause).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_one_killed_mid_stream_every_subscriber_ends_with_exactly_the_log() {
    let postgres = Postgres::start();
    let mut instances: Vec<Instance> = (0..3).map(|_| Instance::start(&postgres.url)).collect();
    let urls: Vec<String> = instances.iter().map(|i| i.url.clone()).collect();
    let http = reqwest::Client::new();
    // Three fed operations, created through different instances.
    let mut operations = Vec::new();
    for url in &urls {
        let created: serde_json::Value = http
            .post(format!("{url}/operations"))
            .bearer_auth(KEY)
            .json(&json!({"kind": "deployment", "owner": "demo"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        operations.push(OperationId::from(created["id"].as_str().unwrap()));
    }
    // And one simulated run, started on the instance that will die.
    let run: serde_json::Value = http
        .post(format!("{}/operations", urls[0]))
        .json(&json!({"kind": "payment", "params":
            {"amount": 5, "stepMs": 25, "steps": 40, "failureRate": 0}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run = OperationId::from(run["id"].as_str().unwrap());
    let mut viewers = Vec::new();
    for (n, id) in operations.iter().chain([&run]).enumerate() {
        for v in 0..3 {
            let watch = watch_across(urls.clone(), n + v, id.clone());
            viewers.push((id.clone(), tokio::spawn(watch)));
        }
    }
    let publishers: Vec<_> = operations
        .iter()
        .map(|id| {
            let publish = publish_across(urls.clone(), id.clone(), 40, Duration::from_millis(25));
            tokio::spawn(publish)
        })
        .collect();
    // Mid-stream: about a third of the events are out.
    tokio::time::sleep(Duration::from_millis(250)).await;
    instances[0].kill();
    let mut moved = 0;
    tokio::time::timeout(2 * PATIENCE, async {
        for publisher in publishers {
            publisher.await.unwrap();
        }
        let survivor = &urls[1];
        for (id, viewer) in viewers {
            let (log, moves) = viewer.await.unwrap();
            moved += moves;
            let truth: optrail_core::EventsPage = http
                .get(format!("{survivor}/operations/{id}/events?limit=1000"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(truth.status.is_terminal(), "{id} ended");
            assert_gap_free(&truth.events);
            assert_eq!(log, truth.events, "a viewer's log of {id} differs");
        }
    })
    .await
    .expect("every viewer ends within the patience");
    assert!(moved > 0, "no viewer had to move to another instance");
}

/// A notification lost while an instance's listener was disconnected is
/// lost for good: the relay must catch up from the database once its
/// listener is back. The lost notification is made certain by committing
/// the operation's last event straight into the database, without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_listener_reconnects_catches_up_from_the_database() {
    let postgres = Postgres::start();
    let mut config = postgres.config();
    config.access.publisher_key = Some(PublisherKey::new(KEY).unwrap());
    let relaying = TestServer::start(config).await;
    let created: serde_json::Value = relaying
        .http
        .post(relaying.url("/operations"))
        .bearer_auth(KEY)
        .json(&json!({"kind": "deployment", "owner": "demo"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = OperationId::from(created["id"].as_str().unwrap());
    let follower = tokio::spawn({
        let (url, id) = (relaying.ws_url(), id.clone());
        async move {
            let mut ws = Ws::connect(&url, None).await;
            ws.subscribe(&id, 0).await;
            let mut frames = Vec::new();
            loop {
                match ws.next_frame().await {
                    ServerFrame::Unsubscribed { .. } => return frames,
                    frame => frames.push(frame),
                }
            }
        }
    });
    // Subscribed (and so watched by the relay) before the commit.
    tokio::time::timeout(PATIENCE, async {
        while relaying.server.state().bus.subscribers(&id) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let admin = sqlx::PgPool::connect(&postgres.url).await.unwrap();
    let mut tx = admin.begin().await.unwrap();
    let num: i64 = sqlx::query_scalar(
        "UPDATE operations SET head = 1, status = 'Succeeded' WHERE id = $1 RETURNING num",
    )
    .bind(id.as_str())
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO events (operation_num, seq, id, type, message, happened_at, details, status)
         VALUES ($1, 1, 'e0', 'Deployed', 'done', 0, '{}', 'Succeeded')",
    )
    .bind(num)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let cut = sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .execute(&admin)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(cut, 1, "the instance's listener connection");
    let frames = tokio::time::timeout(PATIENCE, follower)
        .await
        .expect("the relay caught up")
        .unwrap();
    let seqs: Vec<_> = frames
        .iter()
        .filter_map(|frame| match frame {
            ServerFrame::Event { event, .. } => event.seq,
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [optrail_core::Seq(1)], "{frames:?}");
    relaying.stop().await;
}
