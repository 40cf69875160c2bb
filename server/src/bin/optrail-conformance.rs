//! `optrail-conformance`: checks a running server against PROTOCOL.md and
//! prints what holds and what fails; exits non-zero if anything fails.

use std::process::ExitCode;

use clap::Parser;
use optrail_server::conformance::{self, Target};

/// Checks a running optrail server (the reference one or your own) against
/// PROTOCOL.md: error codes, publisher batches and idempotency, paging, the
/// subscribe/head race under load, limits, authorization and token expiry.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// The server's base URL, where `/operations` and `/ws` live.
    #[arg(long)]
    base: String,
    /// The publisher API key the server was started with.
    #[arg(long, env = "OPTRAIL_PUBLISHER_KEY", hide_env_values = true)]
    publisher_key: String,
    /// The viewer-token secret, to check authorization (skipped without it).
    #[arg(long, env = "OPTRAIL_TOKEN_SECRET", hide_env_values = true)]
    token_secret: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let target = Target {
        base: cli.base,
        publisher_key: cli.publisher_key,
        token_secret: cli.token_secret,
    };
    println!("checking {} against PROTOCOL.md", target.base);
    let outcomes = conformance::run(&target, |outcome| println!("{outcome}")).await;
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o.verdict, Some(Err(_))))
        .count();
    let skipped = outcomes.iter().filter(|o| o.verdict.is_none()).count();
    println!(
        "{} checks: {} passed, {failed} failed, {skipped} skipped",
        outcomes.len(),
        outcomes.len() - failed - skipped
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
