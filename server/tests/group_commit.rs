//! Group commit (issue 20, part 1): appends of many operations share
//! transactions, yet each operation's seqs stay gap-free, each refused
//! append is refused alone, and every committed event is published after
//! its commit in seq order per operation.

use std::collections::HashMap;

use optrail_core::{EventId, EventType, OperationId, Seq, Status};
use optrail_server::Durability;
use optrail_server::auth::{Audience, Owner};
use optrail_server::error::Error;
use optrail_server::runner::now;
use optrail_server::store::{EventDraft, NewOperation, Store};
use serde_json::Map;

const OPERATIONS: usize = 40;
const EVENTS: u64 = 30;

async fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("group.db"), Durability::Full)
        .await
        .unwrap()
}

async fn create(store: &Store, n: usize) -> OperationId {
    let id = OperationId(format!("{n:032x}"));
    store
        .create(&NewOperation {
            id: id.clone(),
            owner: Owner::demo(),
            fed: false,
            kind: "payment".into(),
            params: serde_json::json!({}),
            seed: 0,
            created_at: now(),
        })
        .await
        .unwrap();
    id
}

fn draft(n: u64, status: Status) -> EventDraft {
    EventDraft {
        id: EventId(format!("e{n}")),
        kind: EventType::from("ProgressUpdated"),
        message: format!("event {n}"),
        happened_at: now(),
        details: Map::new(),
        status,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_commits_and_stay_gap_free_and_ordered() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let mut ids = Vec::new();
    for n in 0..OPERATIONS {
        ids.push(create(&store, n).await);
    }
    let mut inbox = store.bus().connect(OPERATIONS * EVENTS as usize);
    for id in &ids {
        store.bus().subscribe(id, &inbox.subscriber);
    }
    let before = store.commit_stats();
    let writers: Vec<_> = ids
        .iter()
        .map(|id| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                for n in 0..EVENTS {
                    let appended = store.append(&id, draft(n, Status::Running), Some(Seq(n)));
                    assert_eq!(appended.await.unwrap().event.seq, Some(Seq(n + 1)));
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let stats = store.commit_stats();
    let (groups, appends) = (stats.groups - before.groups, stats.appends - before.appends);
    assert_eq!(appends, OPERATIONS as u64 * EVENTS);
    assert!(
        groups < appends / 2,
        "{appends} concurrent appends took {groups} transactions: they were not grouped"
    );
    // Stored: every operation has exactly 1..=EVENTS.
    for id in &ids {
        let page = store
            .events(id, &Audience::All, Seq::ZERO, 1000)
            .await
            .unwrap()
            .unwrap();
        let seqs: Vec<u64> = page.events.iter().map(|e| e.seq.unwrap().0).collect();
        assert_eq!(seqs, (1..=EVENTS).collect::<Vec<_>>(), "operation {id}");
        assert_eq!(page.head, Seq(EVENTS));
    }
    // Published: each operation's events once, in seq order.
    let mut last: HashMap<OperationId, u64> = HashMap::new();
    for _ in 0..OPERATIONS as u64 * EVENTS {
        let published = tokio::time::timeout(std::time::Duration::from_secs(5), inbox.queue.recv())
            .await
            .expect("every committed event is published")
            .unwrap();
        let previous = last.entry(published.operation_id.clone()).or_default();
        assert_eq!(published.seq.0, *previous + 1, "{}", published.operation_id);
        *previous = published.seq.0;
    }
    assert!(
        inbox.queue.try_recv().is_err(),
        "nothing is published twice"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_append_leaves_the_rest_of_its_group_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let finished = create(&store, 1).await;
    store
        .append(&finished, draft(0, Status::Succeeded), None)
        .await
        .unwrap();
    let stale = create(&store, 2).await;
    let live = create(&store, 3).await;
    // Many refused appends racing many good ones: they share groups.
    let mut tasks = Vec::new();
    for n in 0..50u64 {
        let store = store.clone();
        let (finished, stale, live) = (finished.clone(), stale.clone(), live.clone());
        tasks.push(tokio::spawn(async move {
            let refused = store.append(&finished, draft(n, Status::Running), None);
            assert!(matches!(refused.await, Err(Error::OperationFinished(_))));
            let refused = store.append(&stale, draft(n, Status::Running), Some(Seq(7)));
            assert!(matches!(refused.await, Err(Error::Internal(_))));
            store
                .append(&live, draft(n, Status::Running), None)
                .await
                .unwrap()
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap().event.seq.unwrap().0);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    let head = |id: OperationId| {
        let store = store.clone();
        async move { store.head(&id, &Audience::All).await.unwrap().unwrap().head }
    };
    assert_eq!(head(finished).await, Seq(1));
    assert_eq!(head(stale).await, Seq::ZERO);
    assert_eq!(head(live).await, Seq(50));
    store.close().await;
}
