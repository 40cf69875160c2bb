//! What `synchronous = FULL` (the default) costs against NORMAL: sequential
//! single-event appends through the store, both settings alternated in one
//! run on the same disk. Prints figures, asserts nothing:
//! `cargo bench -p optrail-server --bench durability_cost` (BENCHMARKS.md has
//! the figures).

use std::time::{Duration, Instant};

use optrail_core::{EventId, EventType, OperationId, Seq, Status};
use optrail_server::Durability;
use optrail_server::auth::Owner;
use optrail_server::runner::now;
use optrail_server::store::{EventDraft, NewOperation, Store};
use serde_json::Map;

const APPENDS: u64 = 1000;
const ROUNDS: usize = 5;

async fn appends_per_second(durability: Durability) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("cost.db"), durability)
        .await
        .unwrap();
    let id = OperationId("0123456789abcdef0123456789abcdef".into());
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
    let started = Instant::now();
    for n in 0..APPENDS {
        let draft = EventDraft {
            id: EventId(format!("e{n}")),
            kind: EventType::from("ProgressUpdated"),
            message: String::new(),
            happened_at: now(),
            details: Map::new(),
            status: Status::Running,
        };
        store.append(&id, draft, Some(Seq(n))).await.unwrap();
    }
    let elapsed = started.elapsed().max(Duration::from_micros(1));
    store.close().await;
    APPENDS as f64 / elapsed.as_secs_f64()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut full = Vec::new();
    let mut normal = Vec::new();
    for _ in 0..ROUNDS {
        normal.push(appends_per_second(Durability::Normal).await);
        full.push(appends_per_second(Durability::Full).await);
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    println!(
        "appends/s, best of {ROUNDS} × {APPENDS}: NORMAL {:.0} (baseline), FULL {:.0} ({:.0} %); all NORMAL {normal:.0?}, all FULL {full:.0?}",
        best(&normal),
        best(&full),
        100.0 * best(&full) / best(&normal)
    );
}
