//! Removal of finished operations older than the configured age, so that a
//! client starting operations forever cannot fill the disk. Unfinished
//! operations are never removed, whatever their age.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::config::Retention;
use crate::runner::now;
use crate::store::Store;

/// Operations removed per transaction: the single writer stays free for
/// appends between two batches.
const BATCH: u32 = 500;

/// Sweeps every `retention.every` until aborted; `None` when nothing is
/// ever removed.
pub fn spawn(store: Store, retention: &Retention) -> Option<JoinHandle<()>> {
    let max_age = retention.max_age?;
    let every = retention.every.max(Duration::from_millis(10));
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            sweep(&store, max_age).await;
        }
    }))
}

/// One sweep: batches until no finished operation is older than `max_age`.
pub async fn sweep(store: &Store, max_age: Duration) -> u64 {
    let age_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
    let cutoff = optrail_core::Timestamp::from_millis(now().millis().saturating_sub(age_ms));
    let mut removed = 0;
    loop {
        match store.remove_finished_before(cutoff, BATCH).await {
            Ok(0) => break,
            Ok(n) => removed += n,
            Err(e) => {
                tracing::error!(error = %e, "retention sweep failed; retrying on the next");
                break;
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed finished operations past their retention");
    }
    removed
}
