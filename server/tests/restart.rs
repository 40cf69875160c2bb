//! Durability: a server stopped (or killed) mid-operation and started again
//! on the same file continues every run after its last committed event —
//! nothing lost, nothing repeated, the epoch unchanged.

mod common;

use common::{Data, TestServer, assert_gap_free, shape, successful_payment};
use optrail_core::{Epoch, OperationId, ServerFrame, Status};
use serde_json::json;

const STEPS: u64 = 100;

fn slow_payment() -> serde_json::Value {
    json!({"amount": 7, "description": "restart", "stepMs": 10, "steps": STEPS, "failureRate": 0})
}

#[tokio::test]
async fn a_restart_mid_operation_resumes_after_the_last_event_without_loss_or_repeats() {
    let data = Data::new();
    let first = TestServer::start(data.config()).await;
    let operation = first.start_operation("payment", slow_payment()).await;
    first.reached(&operation.id, 10).await;
    first.stop().await;

    let second = TestServer::start(data.config()).await;
    // Nothing moved while no server ran.
    let before = second.all_events(&operation.id).await;
    assert!(before.len() >= 10 && before.len() < STEPS as usize + 4);
    let finished = second.finished(&operation.id).await;
    assert_eq!(finished.status, Status::Succeeded);
    assert_eq!(finished.epoch, Epoch(1));
    let events = second.all_events(&operation.id).await;
    assert_gap_free(&events);
    assert_eq!(shape(&events), successful_payment(STEPS));
    assert_eq!(
        &events[..before.len()],
        &before[..],
        "committed events never change"
    );
    second.stop().await;
}

#[tokio::test]
async fn a_subscriber_after_a_restart_gets_the_same_epoch_and_the_rest_of_the_events() {
    let data = Data::new();
    let first = TestServer::start(data.config()).await;
    let operation = first.start_operation("payment", slow_payment()).await;
    first.reached(&operation.id, 5).await;
    first.stop().await;

    let second = TestServer::start(data.config()).await;
    let mut ws = second.ws().await;
    ws.subscribe(&operation.id, 0).await;
    let head = match ws.next_frame().await {
        ServerFrame::Subscribed { epoch, head, .. } => {
            assert_eq!(epoch, Epoch(1));
            head
        }
        other => panic!("expected subscribed, got {other:?}"),
    };
    let mut next = head.next();
    loop {
        match ws.next_frame().await {
            ServerFrame::Event { event, epoch, .. } => {
                assert_eq!(epoch, Some(Epoch(1)));
                assert_eq!(event.seq, Some(next));
                next = next.next();
            }
            ServerFrame::Unsubscribed { .. } => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(next.0 - 1, STEPS + 4);
    second.stop().await;
}

/// A kill, not a stop: the server's runtime is dropped with every task
/// wherever it is — between steps, inside a transaction, between a commit
/// and its publish.
#[tokio::test]
async fn a_crash_mid_operation_loses_and_repeats_nothing() {
    let data = Data::new();
    let config = data.config();
    let (ids, seen) = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let result = runtime.block_on(async {
            let server = TestServer::start(config).await;
            let mut ids: Vec<OperationId> = Vec::new();
            for _ in 0..3 {
                let operation = server.start_operation("payment", slow_payment()).await;
                ids.push(operation.id);
            }
            server.reached(&ids[2], 15).await;
            let seen = server.all_events(&ids[0]).await;
            // No shutdown: the runs are still going when the runtime dies.
            std::mem::forget(server);
            (ids, seen)
        });
        runtime.shutdown_background();
        result
    })
    .join()
    .expect("the doomed server's thread");

    let server = TestServer::start(data.config()).await;
    for id in &ids {
        let finished = server.finished(id).await;
        assert_eq!(finished.status, Status::Succeeded);
        assert_eq!(finished.epoch, Epoch(1));
        let events = server.all_events(id).await;
        assert_gap_free(&events);
        assert_eq!(shape(&events), successful_payment(STEPS), "the log of {id}");
    }
    let events = server.all_events(&ids[0]).await;
    assert_eq!(&events[..seen.len()], &seen[..]);
    server.stop().await;
}

#[tokio::test]
async fn the_database_file_and_its_directories_are_created_on_first_start() {
    let data = Data::new();
    let mut config = data.config();
    config.database = data.dir.path().join("a/b/c/optrail.db");
    let server = TestServer::start(config.clone()).await;
    assert!(config.database.is_file());
    let operation = server
        .start_operation("vm", json!({"name": "a", "stepMs": 0, "failureRate": 0}))
        .await;
    server.finished(&operation.id).await;
    server.stop().await;
    // And it opens again, with what it had.
    let server = TestServer::start(config).await;
    assert_eq!(
        server.operation(&operation.id).await.status,
        Status::Succeeded
    );
    server.stop().await;
}
