//! A conformance check of a running server against PROTOCOL.md, for teams
//! that implement the protocol in their own backend (and for the reference
//! server, whose tests run it). It speaks only HTTP and the WebSocket, as a
//! publisher (with the key) and as viewers (with tokens it mints when given
//! the token secret), and reports each rule that holds or fails.
//!
//! ```text
//! cargo run -p optrail-server --bin optrail-conformance -- \
//!     --base http://127.0.0.1:8080 --publisher-key KEY [--token-secret SECRET]
//! ```
//!
//! Every check creates its own operations (for random owners), so it can
//! run against a server in use; it never cancels or reads what it did not
//! create.

mod authorization;
mod client;
mod live;
mod publishing;
mod reading;

use std::fmt;
use std::future::Future;
use std::time::Instant;

use client::Peer;
pub use client::Target;

/// A failed check: what PROTOCOL.md says and what the server did.
pub type Verdict = Result<(), String>;

/// One check's outcome.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: &'static str,
    /// `None`: skipped (it needs the token secret).
    pub verdict: Option<Verdict>,
    pub millis: u128,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.verdict {
            Some(Ok(())) => write!(f, "pass  {} ({} ms)", self.name, self.millis),
            Some(Err(why)) => write!(f, "FAIL  {}: {why}", self.name),
            None => write!(f, "skip  {} (needs --token-secret)", self.name),
        }
    }
}

/// Runs every check in order; `on_outcome` sees each as it finishes.
pub async fn run(target: &Target, mut on_outcome: impl FnMut(&Outcome)) -> Vec<Outcome> {
    let peer = Peer::new(target);
    let mut outcomes = Vec::new();
    let mut record = |outcome: Outcome| {
        on_outcome(&outcome);
        outcomes.push(outcome);
    };
    record(timed("health", reading::health(&peer)).await);
    record(timed("errors: codes and JSON bodies", reading::error_codes(&peer)).await);
    record(
        timed(
            "publisher: create, idempotent by id",
            publishing::create(&peer),
        )
        .await,
    );
    record(
        timed(
            "publisher: batch seqs, retried batch",
            publishing::retried_batch(&peer),
        )
        .await,
    );
    record(
        timed(
            "publisher: atomic batch, terminal status",
            publishing::atomic_batch(&peer),
        )
        .await,
    );
    record(
        timed(
            "paging: events after N, limits, hasMore",
            reading::paging(&peer),
        )
        .await,
    );
    record(
        timed(
            "live: subscribed, pushes, terminal ends it",
            live::pushes(&peer),
        )
        .await,
    );
    record(timed("live: subscribe/head race under load", live::race(&peer)).await);
    record(timed("live: frame and subscription limits", live::limits(&peer)).await);
    let viewer_checks: [(&'static str, Check); 4] = [
        ("authorization: credentials and roles", |p| {
            Box::pin(authorization::credentials(p))
        }),
        ("authorization: owners see only their own", |p| {
            Box::pin(authorization::owners(p))
        }),
        ("authorization: cancel reaches the publisher", |p| {
            Box::pin(authorization::cancel(p))
        }),
        ("authorization: expired token", |p| {
            Box::pin(authorization::expiry(p))
        }),
    ];
    for (name, check) in viewer_checks {
        if peer.can_mint() {
            record(timed(name, check(&peer)).await);
        } else {
            record(Outcome {
                name,
                verdict: None,
                millis: 0,
            });
        }
    }
    outcomes
}

type Check = for<'a> fn(&'a Peer) -> std::pin::Pin<Box<dyn Future<Output = Verdict> + 'a>>;

async fn timed(name: &'static str, check: impl Future<Output = Verdict>) -> Outcome {
    let started = Instant::now();
    let verdict = check.await;
    Outcome {
        name,
        verdict: Some(verdict),
        millis: started.elapsed().as_millis(),
    }
}

/// `Err(message)` unless `condition`.
macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!($($message)+));
        }
    };
}
pub(crate) use ensure;
