//! The live channel (`GET /ws`): frames, limits, liveness, and the
//! subscribe/history race that the whole protocol exists to win.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Data, TestServer, Ws, assert_gap_free};
use futures_util::SinkExt;
use optrail_core::{Epoch, Event, OperationId, Rng, Seq, ServerFrame};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

async fn server() -> (Data, TestServer) {
    let data = Data::new();
    let server = TestServer::start(data.config()).await;
    (data, server)
}

fn expect_error(frame: ServerFrame, code: &str) -> Option<OperationId> {
    match frame {
        ServerFrame::Error {
            operation_id,
            code: got,
            message,
        } => {
            assert_eq!(got, code, "{message}");
            assert!(!message.is_empty());
            operation_id
        }
        other => panic!("expected an error {code}, got {other:?}"),
    }
}

#[tokio::test]
async fn subscribe_answers_subscribed_then_pushes_every_later_event_in_seq_order() {
    let (_data, server) = server().await;
    let operation = server
        .start_operation(
            "payment",
            json!({"amount": 5, "stepMs": 20, "steps": 10, "failureRate": 0}),
        )
        .await;
    let mut ws = server.ws().await;
    ws.subscribe(&operation.id, 0).await;
    let (epoch, head) = match ws.next_frame().await {
        ServerFrame::Subscribed {
            operation_id,
            epoch,
            head,
        } => {
            assert_eq!(operation_id, operation.id);
            (epoch, head)
        }
        other => panic!("expected subscribed, got {other:?}"),
    };
    assert_eq!(epoch, Epoch(1));
    let mut expected = head.next();
    loop {
        match ws.next_frame().await {
            ServerFrame::Event {
                operation_id,
                epoch,
                event,
            } => {
                assert_eq!(operation_id, operation.id);
                assert_eq!(epoch, Some(Epoch(1)));
                assert_eq!(
                    event.seq,
                    Some(expected),
                    "pushes are gap-free and in order"
                );
                expected = expected.next();
            }
            ServerFrame::Unsubscribed { operation_id } => {
                assert_eq!(operation_id, operation.id);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let events = server.all_events(&operation.id).await;
    assert_eq!(Seq(events.len() as u64), Seq(expected.0 - 1));
    assert_eq!(events.last().unwrap().kind.as_str(), "PaymentSucceeded");
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_operation_gets_an_error_frame_and_the_socket_stays_up() {
    let (_data, server) = server().await;
    let mut ws = server.ws().await;
    let unknown = OperationId::from("0123456789abcdef0123456789abcdef");
    ws.subscribe(&unknown, 0).await;
    assert_eq!(
        expect_error(ws.next_frame().await, "operation_not_found"),
        Some(unknown)
    );
    ws.subscribe(&OperationId::from("nope"), 0).await;
    expect_error(ws.next_frame().await, "invalid_operation_id");
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next_frame().await, ServerFrame::Pong);
    server.stop().await;
}

#[tokio::test]
async fn a_finished_operation_answers_subscribed_with_its_head_then_unsubscribed() {
    let (_data, server) = server().await;
    let operation = server
        .start_operation("vm", json!({"name": "a", "stepMs": 0, "failureRate": 0}))
        .await;
    let finished = server.finished(&operation.id).await;
    let mut ws = server.ws().await;
    ws.subscribe(&operation.id, 0).await;
    assert_eq!(
        ws.next_frame().await,
        ServerFrame::Subscribed {
            operation_id: operation.id.clone(),
            epoch: Epoch(1),
            head: finished.head
        }
    );
    assert_eq!(
        ws.next_frame().await,
        ServerFrame::Unsubscribed {
            operation_id: operation.id.clone()
        }
    );
    server.stop().await;
}

#[tokio::test]
async fn unsubscribe_stops_the_pushes() {
    let (_data, server) = server().await;
    let operation = server
        .start_operation(
            "payment",
            json!({"amount": 5, "stepMs": 30, "steps": 200, "failureRate": 0}),
        )
        .await;
    let mut ws = server.ws().await;
    ws.subscribe(&operation.id, 0).await;
    assert!(matches!(
        ws.next_frame().await,
        ServerFrame::Subscribed { .. }
    ));
    ws.send(json!({"type": "unsubscribe", "operationId": operation.id}))
        .await;
    // Pushes already on their way may precede the answer; none follow it.
    loop {
        match ws.next_frame().await {
            ServerFrame::Event { .. } => {}
            ServerFrame::Unsubscribed { operation_id } => {
                assert_eq!(operation_id, operation.id);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    ws.send(json!({"type": "ping"})).await;
    let head = server.operation(&operation.id).await.head;
    server.reached(&operation.id, head.0 + 3).await;
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next_frame().await, ServerFrame::Pong);
    assert_eq!(ws.next_frame().await, ServerFrame::Pong);
    server.stop().await;
}

#[tokio::test]
async fn malformed_frames_get_invalid_json_and_unknown_types_are_ignored() {
    let (_data, server) = server().await;
    let mut ws = server.ws().await;
    for text in [
        "not json",
        "[1,2,3]",
        r#"{"no":"type"}"#,
        r#"{"type":"subscribe"}"#,
        r#"{"type":"subscribe","operationId":"0123456789abcdef0123456789abcdef","after":-1}"#,
        r#"{"type":"subscribe","operationId":"0123456789abcdef0123456789abcdef","after":"1"}"#,
        r#"{"type":"subscribe","operationId":42,"after":0}"#,
    ] {
        ws.send_text(text).await;
        expect_error(ws.next_frame().await, "invalid_json");
    }
    ws.stream
        .send(Message::binary(vec![1, 2, 3]))
        .await
        .unwrap();
    expect_error(ws.next_frame().await, "invalid_json");
    // A frame type from the future is ignored: the next answer is the pong.
    ws.send(json!({"type": "hello", "x": 1})).await;
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next_frame().await, ServerFrame::Pong);
    server.stop().await;
}

#[tokio::test]
async fn an_oversize_frame_gets_frame_too_large_then_the_socket_closes() {
    let (_data, server) = server().await;
    let mut ws = server.ws().await;
    let padding = "x".repeat(5 * 1024);
    ws.send(json!({"type": "ping", "padding": padding})).await;
    expect_error(ws.next_frame().await, "frame_too_large");
    assert_eq!(ws.closed().await, Some(1009));
    server.stop().await;
}

#[tokio::test]
async fn the_65th_subscription_is_refused_and_the_socket_stays_up() {
    let (_data, server) = server().await;
    let mut ids = Vec::new();
    for _ in 0..65 {
        let operation = server
            .start_operation("vm", json!({"name": "a", "stepMs": 60000}))
            .await;
        ids.push(operation.id);
    }
    let mut ws = server.ws().await;
    for id in &ids[..64] {
        ws.subscribe(id, 0).await;
        assert!(matches!(
            ws.next_frame().await,
            ServerFrame::Subscribed { .. }
        ));
    }
    ws.subscribe(&ids[64], 0).await;
    assert_eq!(
        expect_error(ws.next_frame().await, "too_many_subscriptions"),
        Some(ids[64].clone())
    );
    // Subscribing again to one already held is not a new subscription.
    ws.subscribe(&ids[0], 0).await;
    assert!(matches!(
        ws.next_frame().await,
        ServerFrame::Subscribed { .. }
    ));
    // After an unsubscribe there is room again.
    ws.send(json!({"type": "unsubscribe", "operationId": ids[1]}))
        .await;
    assert!(matches!(
        ws.next_frame().await,
        ServerFrame::Unsubscribed { .. }
    ));
    ws.subscribe(&ids[64], 0).await;
    assert!(matches!(
        ws.next_frame().await,
        ServerFrame::Subscribed { .. }
    ));
    server.stop().await;
}

#[tokio::test]
async fn a_foreign_origin_is_403_origin_forbidden_and_same_or_allowed_origins_connect() {
    let data = Data::new();
    let mut config = data.config();
    config.allowed_origins = vec!["http://widget.example:3000".into()];
    let server = TestServer::start(config).await;
    let url = server.ws_url();
    match Ws::try_connect(&url, Some("http://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
            let body: optrail_core::ApiError =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body.code, "origin_forbidden");
        }
        Err(other) => panic!("expected a 403, got {other}"),
        Ok(_) => panic!("a foreign origin connected"),
    }
    let same = format!("http://{}", server.server.local_addr());
    Ws::connect(&url, Some(&same)).await;
    Ws::connect(&url, Some("http://widget.example:3000")).await;
    Ws::connect(&url, None).await;
    server.stop().await;
}

#[tokio::test]
async fn the_server_pings_and_closes_a_socket_silent_for_two_intervals() {
    let data = Data::new();
    let mut config = data.config();
    config.ping_interval = Duration::from_millis(400);
    let server = TestServer::start(config).await;
    let mut ws = server.ws().await;
    assert_eq!(ws.next().await, Some(ServerFrame::Ping));
    // It came after the interval, so a client's dead-socket check uses it.
    assert_eq!(ws.hello, Some(400));
    // Never answering: closed after about two intervals.
    assert_eq!(ws.closed().await, Some(1001));

    // A client that talks (pongs, and pings of its own every 100 ms) stays
    // connected well past that, and keeps being pinged.
    let mut ws = server.ws().await;
    let until = tokio::time::Instant::now() + Duration::from_millis(2000);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut pings = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => ws.send(json!({"type": "ping"})).await,
            frame = ws.next() => match frame {
                Some(ServerFrame::Ping) => {
                    pings += 1;
                    ws.send(json!({"type": "pong"})).await;
                }
                Some(ServerFrame::Pong) => {}
                other => panic!("unexpected {other:?}"),
            },
            _ = tokio::time::sleep_until(until) => break,
        }
    }
    assert!(pings >= 3, "{pings} pings");
    server.stop().await;
}

/// Merges by seq; the same seq twice must be the same event.
fn insert(log: &mut BTreeMap<u64, Event>, event: Event) {
    let seq = event.seq.expect("a seq").0;
    if let Some(known) = log.get(&seq) {
        assert_eq!(
            known.id, event.id,
            "seq {seq} arrived as two different events"
        );
    }
    log.insert(seq, event);
}

/// A client as PROTOCOL.md's client rules describe it: subscribe first,
/// fetch history after `subscribed`, merge pushes by seq.
/// Returns the log, and whether the client joined mid-run (history and
/// pushes both non-empty).
async fn follow(server: &TestServer, id: OperationId, delay: Duration) -> (Vec<Event>, bool) {
    tokio::time::sleep(delay).await;
    let mut ws = server.ws().await;
    ws.subscribe(&id, 0).await;
    let mut log: BTreeMap<u64, Event> = BTreeMap::new();
    let mut pushed: Vec<u64> = Vec::new();
    // Pushes before `subscribed` would be a server bug: none may come.
    let head = match ws.next_frame().await {
        ServerFrame::Subscribed { head, epoch, .. } => {
            assert_eq!(epoch, Epoch(1));
            head
        }
        other => panic!("expected subscribed first, got {other:?}"),
    };
    // History up to the head, page by page (small pages on purpose).
    let mut after = 0;
    while after < head.0 {
        let page = server.events_page(&id, after, 7).await;
        for event in page.events {
            after = after.max(event.seq.unwrap().0);
            insert(&mut log, event);
        }
    }
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
    // The pushes are exactly what followed the head, in order.
    let expected: Vec<u64> = (head.0 + 1..=head.0 + pushed.len() as u64).collect();
    assert_eq!(pushed, expected, "pushes after head {}", head.0);
    let raced = head.0 > 0 && !pushed.is_empty();
    (log.into_values().collect(), raced)
}

#[tokio::test]
async fn many_clients_subscribing_at_random_moments_each_end_with_exactly_the_log() {
    let (_data, server) = server().await;
    let mut rng = Rng::new(0x5eed_0917_a11e);
    let mut operations = Vec::new();
    for i in 0..4 {
        let operation = server
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
        clients.push((id.clone(), follow(&server, id, delay)));
    }
    let (ids, futures): (Vec<_>, Vec<_>) = clients.into_iter().unzip();
    let logs = futures_util::future::join_all(futures).await;
    let raced = logs.iter().filter(|(_, raced)| *raced).count();
    assert!(raced > 0, "no client joined an operation mid-run");
    eprintln!("{raced} of {} clients joined mid-run", logs.len());
    for (id, (log, _)) in ids.iter().zip(logs) {
        let truth = server.all_events(id).await;
        assert_gap_free(&truth);
        assert!(server.operation(id).await.status.is_terminal());
        assert_eq!(
            log, truth,
            "a client's log of {id} differs from the server's"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_subscriber_that_never_reads_is_cut_off_and_never_slows_the_others() {
    let (_data, server) = server().await;
    let operation = server
        .start_operation(
            "payment",
            json!({"amount": 1, "stepMs": 20, "steps": 30, "failureRate": 0}),
        )
        .await;
    // A connection whose queue holds two pushes and is never drained.
    let bus = &server.server.state().bus;
    let stuck = bus.connect(2);
    bus.subscribe(&operation.id, &stuck.subscriber);
    let (log, _) = follow(&server, operation.id.clone(), Duration::ZERO).await;
    assert_eq!(log, server.all_events(&operation.id).await);
    assert!(stuck.overflow.happened(), "the stuck queue overflowed");
    assert_eq!(bus.subscribers(&operation.id), 0);
    server.stop().await;
}
