//! Runs the simulated operations: one task per unfinished operation, which
//! appends the next event of its [`Script`] every `stepMs` (the store
//! publishes it after the commit).
//!
//! Each operation has an async lock held across a step's append, by its
//! task and by a cancel alike: a cancel never interleaves with a half-done
//! step. The step
//! is the stream's head, stored with each event, so [`Runner::resume`] after
//! a restart continues exactly where the last commit left off.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use optrail_core::{EventId, EventType, Operation, OperationId, Seq, Timestamp};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::auth::{Audience, Owner};
use crate::demo::{Params, Script, Step};
use crate::error::Error;
use crate::store::{EventDraft, NewOperation, Store};

/// How long a run waits before retrying after a storage failure.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// One operation's running task.
#[derive(Debug)]
struct Run {
    script: Arc<Script>,
    /// Held across a step's append.
    lock: tokio::sync::Mutex<()>,
    task: Mutex<Option<AbortHandle>>,
}

impl Run {
    fn abort(&self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

#[derive(Debug, Default)]
struct Runs {
    by_id: HashMap<OperationId, Arc<Run>>,
    /// Set by [`Runner::stop`]: no new task starts after it.
    stopped: bool,
}

#[derive(Debug)]
pub struct Runner {
    store: Store,
    runs: Mutex<Runs>,
}

impl Runner {
    pub fn new(store: Store) -> Arc<Runner> {
        Arc::new(Runner {
            store,
            runs: Mutex::new(Runs::default()),
        })
    }

    /// Stores and starts a new operation for `owner`. The answer is the
    /// snapshot right after the insert (`NotStarted`, head 0).
    pub async fn start(self: &Arc<Self>, params: Params, owner: Owner) -> Result<Operation, Error> {
        let new = NewOperation {
            id: OperationId(random_hex::<16>()?),
            owner,
            fed: false,
            kind: params.kind().to_owned(),
            params: params.to_json(),
            seed: u64::from_le_bytes(random_bytes()?),
            created_at: now(),
        };
        let operation = self.store.create(&new).await?;
        // New, so no other instance holds it; the claim only keeps other
        // instances from adopting it.
        if self.store.claim(&new.id).await {
            self.spawn(new.id, Script::new(params, new.seed), Seq::ZERO);
        }
        Ok(operation)
    }

    /// Restarts the run of every unfinished operation after its last
    /// committed step; returns how many. With several instances
    /// (Postgres) only the runs no live instance holds are taken, so
    /// calling it again adopts the runs of an instance that died.
    pub async fn resume(self: &Arc<Self>) -> Result<usize, Error> {
        let mut resumed = 0;
        for unfinished in self.store.unfinished().await? {
            if lock(&self.runs).by_id.contains_key(&unfinished.id) {
                continue;
            }
            match Params::parse(&unfinished.kind, &unfinished.params) {
                Ok(params) => {
                    if !self.store.claim(&unfinished.id).await {
                        continue;
                    }
                    // Read again under the claim: the list may be stale.
                    let head = match self.store.head(&unfinished.id, &Audience::All).await {
                        Ok(Some(head)) if !head.status.is_terminal() => head.head,
                        _ => {
                            self.store.release(&unfinished.id).await;
                            continue;
                        }
                    };
                    let script = Script::new(params, unfinished.seed);
                    self.spawn(unfinished.id, script, head);
                    resumed += 1;
                }
                Err(e) => tracing::error!(
                    operation = %unfinished.id,
                    error = %e,
                    "stored params no longer validate; the operation stays where it is"
                ),
            }
        }
        Ok(resumed)
    }

    /// Stops the run and appends `OperationCanceled`; a finished operation
    /// is `operation_finished`. The caller has checked that the operation is
    /// simulated and the viewer's.
    pub async fn cancel(&self, id: &OperationId) -> Result<Operation, Error> {
        let run = lock(&self.runs).by_id.get(id).cloned();
        let appended = match &run {
            Some(run) => {
                let _step = run.lock.lock().await;
                let appended = self
                    .store
                    .append(id, draft(run.script.canceled()), None)
                    .await?;
                run.abort();
                appended
            }
            // Not running here (only while stopping): the store decides.
            None => {
                let operation = self
                    .store
                    .operation(id, &Audience::All)
                    .await?
                    .ok_or_else(|| Error::OperationNotFound(id.clone()))?;
                let params = Params::parse(&operation.kind, &operation.params)?;
                let mut step = Script::new(params, 0).canceled();
                step.details.insert("workerId".into(), "api".into());
                self.store.append(id, draft(step), None).await?
            }
        };
        if let Some(run) = run {
            self.forget(id, &run);
            self.store.release(id).await;
        }
        tracing::info!(operation = %id, seq = ?appended.event.seq, "canceled");
        self.store
            .operation(id, &Audience::All)
            .await?
            .ok_or_else(|| Error::OperationNotFound(id.clone()))
    }

    /// Stops every run between two steps (never inside one) and refuses to
    /// start more. Unfinished operations resume on the next start.
    pub async fn stop(&self) {
        let runs: Vec<Arc<Run>> = {
            let mut runs = lock(&self.runs);
            runs.stopped = true;
            runs.by_id.drain().map(|(_, run)| run).collect()
        };
        for run in runs {
            let _step = run.lock.lock().await;
            run.abort();
        }
    }

    fn spawn(self: &Arc<Self>, id: OperationId, script: Script, head: Seq) {
        let mut runs = lock(&self.runs);
        if runs.stopped {
            return;
        }
        let run = Arc::new(Run {
            script: Arc::new(script),
            lock: tokio::sync::Mutex::new(()),
            task: Mutex::new(None),
        });
        runs.by_id.insert(id.clone(), run.clone());
        let task = tokio::spawn(self.clone().drive(id, run.clone(), head));
        *lock(&run.task) = Some(task.abort_handle());
    }

    async fn drive(self: Arc<Self>, id: OperationId, run: Arc<Run>, mut head: Seq) {
        let pause = Duration::from_millis(run.script.params().timing.step_ms);
        // Events are due every `pause` from the first one, so the rate does
        // not drift with the time each step takes; a run that fell behind
        // (a stall, a restart) starts over from now instead of bursting.
        let mut due = Instant::now();
        if head != Seq::ZERO {
            due += pause;
        }
        while let Some(step) = run.script.step(head.0) {
            if pause.is_zero() {
                // A zero sleep still waits for the timer's next tick (1 ms).
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep_until(due).await;
                due += pause;
                let now = Instant::now();
                if due + pause < now {
                    due = now;
                }
            }
            let guard = run.lock.lock().await;
            match self.store.append(&id, draft(step), Some(head)).await {
                Ok(appended) => {
                    head = appended.event.seq.unwrap_or(head.next());
                    let terminal = appended.status.is_terminal();
                    drop(guard);
                    if terminal {
                        break;
                    }
                }
                Err(Error::OperationFinished(_) | Error::OperationNotFound(_)) => break,
                Err(e) => {
                    drop(guard);
                    tracing::error!(operation = %id, error = %e, "append failed; retrying");
                    tokio::time::sleep(RETRY_AFTER_FAILURE).await;
                    // The commit may have happened after all: go on from
                    // what is stored.
                    match self.store.head(&id, &Audience::All).await {
                        Ok(Some(stored)) if stored.status.is_terminal() => break,
                        Ok(Some(stored)) => head = stored.head,
                        Ok(None) => break,
                        Err(_) => {}
                    }
                    due = Instant::now();
                }
            }
        }
        self.forget(&id, &run);
        self.store.release(&id).await;
    }

    fn forget(&self, id: &OperationId, run: &Arc<Run>) {
        let mut runs = lock(&self.runs);
        if runs.by_id.get(id).is_some_and(|r| Arc::ptr_eq(r, run)) {
            runs.by_id.remove(id);
        }
    }
}

fn draft(step: Step) -> EventDraft {
    let happened_at = now();
    EventDraft {
        id: step_id(happened_at),
        kind: EventType(step.kind.to_owned()),
        message: step.message,
        happened_at,
        details: step.details,
        status: step.status,
    }
}

/// Now, in the wire's unit.
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Timestamp::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// A step's event id: when it happened (12 hex digits of milliseconds),
/// then 16 random hex digits, unique within the operation by a wide
/// margin. Time first, so the ids of a group's steps, one for each of many
/// operations, land together in `events_by_id` (migration 4) instead of in
/// a page of each operation's own. A step re-run after a crash gets a new
/// id, but it was never committed.
fn step_id(happened_at: Timestamp) -> EventId {
    static FALLBACK: AtomicU64 = AtomicU64::new(0);
    let made = happened_at.millis().max(0);
    let unique = random_hex::<8>()
        .unwrap_or_else(|_| format!("{:016x}", FALLBACK.fetch_add(1, Ordering::Relaxed)));
    EventId(format!("{made:012x}{unique}"))
}

fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Internal(format!("the system's random source failed: {e}")))?;
    Ok(bytes)
}

/// `N` random bytes as `2N` lowercase hex digits.
pub fn random_hex<const N: usize>() -> Result<String, Error> {
    use std::fmt::Write;
    let bytes = random_bytes::<N>()?;
    let mut hex = String::with_capacity(2 * N);
    for byte in bytes {
        let _ = write!(hex, "{byte:02x}");
    }
    Ok(hex)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_ids_sort_in_the_order_they_were_made() {
        let first = step_id(now());
        std::thread::sleep(Duration::from_millis(2));
        let later: Vec<EventId> = (0..100).map(|_| step_id(now())).collect();
        assert!(later.iter().all(|id| id.0 > first.0), "{first:?} {later:?}");
        assert!(later.iter().all(|id| id.0.len() == 28));
        let distinct: std::collections::HashSet<&str> =
            later.iter().map(|id| id.0.as_str()).collect();
        assert_eq!(distinct.len(), later.len());
    }
}
