//! Deterministic simulation of the client session against a simulated server
//! over a hostile simulated network (see `sim/`), plus focused scenarios.
//!
//! - `cargo test -p optrail-core --test simulation` runs a few thousand
//!   random schedules.
//! - `OPTRAIL_SIM_SCHEDULES=200000 cargo test --release -p optrail-core --test
//!   simulation -- --nocapture simulated_schedules` is the soak; it prints
//!   schedules per second.
//! - `OPTRAIL_SIM_SEED=1234` replays exactly one schedule;
//!   add `OPTRAIL_SIM_TRACE=1` to watch every input and command.

mod scenarios;
mod sim;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sim::{Knobs, Stats, run_schedule};

/// Schedules per plain `cargo test`: enough to hit every fault many times,
/// few enough to stay within seconds in the dev profile.
const DEFAULT_SCHEDULES: u64 = 2_000;

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {text:?}")),
    )
}

#[test]
fn simulated_schedules_converge_to_the_servers_log() {
    if let Some(seed) = env_u64("OPTRAIL_SIM_SEED") {
        let knobs = Knobs {
            trace: std::env::var_os("OPTRAIL_SIM_TRACE").is_some(),
            ..Knobs::default()
        };
        match run_schedule(seed, knobs) {
            Ok(report) => println!("seed {seed}: ok, {:?}", report.stats),
            Err(failure) => panic!("seed {seed} failed: {failure}"),
        }
        return;
    }
    let schedules = env_u64("OPTRAIL_SIM_SCHEDULES").unwrap_or(DEFAULT_SCHEDULES);
    let first = env_u64("OPTRAIL_SIM_FIRST_SEED").unwrap_or(0);
    let threads = env_u64("OPTRAIL_SIM_THREADS")
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u64))
        .clamp(1, schedules.max(1));
    let started = Instant::now();
    let next_seed = AtomicU64::new(first);
    let failed = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    // Each worker takes the next seed; which worker runs a seed does not
    // matter, since a schedule depends on nothing but its seed.
    let results: Vec<(Stats, Vec<u64>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut total = Stats::default();
                    let mut failures = Vec::new();
                    loop {
                        let seed = next_seed.fetch_add(1, Ordering::Relaxed);
                        if seed >= first + schedules || failed.load(Ordering::Relaxed) >= 5 {
                            break;
                        }
                        let outcome = run_schedule(seed, Knobs::default());
                        done.fetch_add(1, Ordering::Relaxed);
                        match outcome {
                            Ok(report) => total.add(&report.stats),
                            Err(failure) => {
                                eprintln!(
                                    "seed {seed} failed after {:.2} s ({} schedules done): {failure}",
                                    started.elapsed().as_secs_f64(),
                                    done.load(Ordering::Relaxed),
                                );
                                eprintln!(
                                    "  replay: OPTRAIL_SIM_SEED={seed} OPTRAIL_SIM_TRACE=1 cargo test -p optrail-core --test simulation -- simulated_schedules --nocapture"
                                );
                                failures.push(seed);
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    (total, failures)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    let mut total = Stats::default();
    let mut failures = Vec::new();
    for (stats, seeds) in results {
        total.add(&stats);
        failures.extend(seeds);
    }
    failures.sort_unstable();
    let elapsed = started.elapsed().as_secs_f64();
    let ran = total.schedules + failures.len() as u64;
    println!(
        "{ran} schedules on {threads} threads in {elapsed:.2} s: {:.0} schedules/s, {:.0} steps/s, {:.1} virtual hours",
        ran as f64 / elapsed,
        total.steps as f64 / elapsed,
        total.virtual_ms as f64 / 3_600_000.0
    );
    println!("{total:#?}");
    assert!(
        failures.is_empty(),
        "failing seeds: {failures:?} (replay one with OPTRAIL_SIM_SEED=…)"
    );
}

/// Seed-format schedules per plain `cargo test`.
const DEFAULT_SEED_SCHEDULES: u64 = 500;

#[test]
fn seed_format_schedules_converge_to_the_servers_events() {
    let trace = std::env::var_os("OPTRAIL_SIM_TRACE").is_some();
    let seeds = match env_u64("OPTRAIL_SIM_SEED") {
        Some(seed) => seed..seed + 1,
        None => {
            let first = env_u64("OPTRAIL_SIM_FIRST_SEED").unwrap_or(0);
            first..first + env_u64("OPTRAIL_SIM_SEED_SCHEDULES").unwrap_or(DEFAULT_SEED_SCHEDULES)
        }
    };
    let started = Instant::now();
    let mut total = sim::seed::SeedStats::default();
    let mut failures = Vec::new();
    for seed in seeds {
        match sim::seed::run_seed_schedule(seed, trace) {
            Ok(stats) => total.add(&stats),
            Err(failure) => {
                eprintln!("{failure}");
                failures.push(seed);
                if failures.len() >= 5 {
                    break;
                }
            }
        }
    }
    println!(
        "{} seed-format schedules in {:.2} s: {total:?}",
        total.schedules,
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "failing seed-format seeds: {failures:?} (replay one with OPTRAIL_SIM_SEED=… OPTRAIL_SIM_TRACE=1 … -- seed_format --nocapture)"
    );
}

#[test]
fn terminal_types_match_the_default_interpretation() {
    sim::server::check_terminal_types();
}

/// The session's randomness comes only from its seed, and time only from the
/// caller: the same schedule yields the same commands, to the millisecond.
#[test]
fn same_inputs_give_same_commands() {
    for seed in [3, 17, 4242] {
        let knobs = Knobs {
            record_commands: true,
            ..Knobs::default()
        };
        let a = run_schedule(seed, knobs.clone()).expect("schedule passes");
        let b = run_schedule(seed, knobs).expect("schedule passes");
        assert!(a.commands.len() > 20, "a schedule does something");
        assert_eq!(a.commands, b.commands, "seed {seed} diverged");
    }
}
