//! EventLog inserts against a naive baseline, measured in the same run.
//!
//! `cargo bench -p optrail-core --bench event_log`
//!
//! Arrival orders: in seq order, shuffled, and shuffled with 20 % extra
//! duplicate deliveries (a push and a history page carrying the same event).
//! Events are built before timing and moved in; only inserting is timed.
//!
//! The naive baseline is what a UI without a log does to render after each
//! event: `push`, `sort_by_key(seq)`, `dedup_by_key(seq)`. That is O(n) per
//! event, so at 1M events a full run is out of reach (hours): at that size it
//! is measured honestly at the margin — prefilled with n − k events, the
//! last k inserts are timed — and the log is measured the same way beside
//! it. "Sort once at the end" is reported for reference: it is what a batch
//! import would do, not something a live view can.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use optrail_core::{
    Event, EventId, EventLog, EventType, Interpretation, LogOrder, Rng, Seq, Timestamp,
};
use serde_json::{Map, json};

const SIZES: [usize; 2] = [10_000, 1_000_000];
/// Events timed at the margin of a 1M-event list: enough for the log to
/// time well, few enough for the naive list (~25 ms an event there).
const LOG_MARGIN: usize = 10_000;
const NAIVE_MARGIN: usize = 100;

fn make_event(seq: u64) -> Event {
    let mut details = Map::new();
    details.insert("percentage".into(), json!(seq % 100));
    details.insert("workerId".into(), json!("w1"));
    Event {
        id: EventId(format!("0f3c9a5e-{seq:012}")),
        seq: Some(Seq(seq)),
        kind: EventType::from("ProgressUpdated"),
        message: format!("Provisioning disk: step {seq}"),
        happened_at: Timestamp(1_789_000_000_000 + seq as i64),
        sub_ms_ns: 0,
        details,
        status: None,
    }
}

fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below_or_eq(i as u64) as usize);
    }
}

#[derive(Clone, Copy, Debug)]
enum Arrival {
    InOrder,
    Shuffled,
    ShuffledWithDuplicates,
}

impl Arrival {
    const ALL: [Arrival; 3] = [
        Arrival::InOrder,
        Arrival::Shuffled,
        Arrival::ShuffledWithDuplicates,
    ];

    fn name(self) -> &'static str {
        match self {
            Arrival::InOrder => "in_order",
            Arrival::Shuffled => "shuffled",
            Arrival::ShuffledWithDuplicates => "shuffled_20pct_dups",
        }
    }

    /// The arrivals for `n` distinct events (n × 1.2 with duplicates).
    fn events(self, n: usize) -> Vec<Event> {
        let mut rng = Rng::new(42);
        let mut events: Vec<Event> = (1..=n as u64).map(make_event).collect();
        match self {
            Arrival::InOrder => {}
            Arrival::Shuffled => shuffle(&mut events, &mut rng),
            Arrival::ShuffledWithDuplicates => {
                let extra: Vec<Event> = (0..n / 5)
                    .map(|_| events[rng.below_or_eq(n as u64 - 1) as usize].clone())
                    .collect();
                events.extend(extra);
                shuffle(&mut events, &mut rng);
            }
        }
        events
    }
}

fn new_log() -> EventLog {
    EventLog::new(LogOrder::BySeq, Arc::new(Interpretation::default()))
}

fn insert_all(events: Vec<Event>) -> EventLog {
    let mut log = new_log();
    for event in events {
        log.insert(event);
    }
    log
}

/// What a naive UI does on every arriving event.
fn naive_insert(list: &mut Vec<Event>, event: Event) {
    list.push(event);
    list.sort_by_key(|e| e.seq);
    list.dedup_by_key(|e| e.seq);
}

fn naive_all(events: Vec<Event>) -> Vec<Event> {
    let mut list = Vec::new();
    for event in events {
        naive_insert(&mut list, event);
    }
    list
}

fn sort_once(events: Vec<Event>) -> Vec<Event> {
    let mut list = events;
    list.sort_by_key(|e| e.seq);
    list.dedup_by_key(|e| e.seq);
    list
}

/// A list holding every event but the last `k` arrivals, and those.
fn margin_split(arrival: Arrival, n: usize, k: usize) -> (Vec<Event>, Vec<Event>) {
    let mut events = arrival.events(n);
    let tail = events.split_off(events.len() - k);
    (events, tail)
}

fn bench_full(c: &mut Criterion) {
    for n in SIZES {
        let mut group = c.benchmark_group(format!("insert_{n}"));
        if n >= 1_000_000 {
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(8));
            group.warm_up_time(Duration::from_secs(1));
        } else {
            group.sample_size(20);
            group.measurement_time(Duration::from_secs(2));
            group.warm_up_time(Duration::from_secs(1));
        }
        for arrival in Arrival::ALL {
            let events = arrival.events(n);
            group.throughput(Throughput::Elements(events.len() as u64));
            group.bench_with_input(
                BenchmarkId::new("event_log", arrival.name()),
                &events,
                |b, events| {
                    b.iter_batched(
                        || events.clone(),
                        |events| black_box(insert_all(events)),
                        BatchSize::PerIteration,
                    )
                },
            );
            if n <= 10_000 {
                group.bench_with_input(
                    BenchmarkId::new("naive_sort_each", arrival.name()),
                    &events,
                    |b, events| {
                        b.iter_batched(
                            || events.clone(),
                            |events| black_box(naive_all(events)),
                            BatchSize::PerIteration,
                        )
                    },
                );
            }
            group.bench_with_input(
                BenchmarkId::new("reference_sort_once_at_end", arrival.name()),
                &events,
                |b, events| {
                    b.iter_batched(
                        || events.clone(),
                        |events| black_box(sort_once(events)),
                        BatchSize::PerIteration,
                    )
                },
            );
        }
        group.finish();
    }
}

/// The last arrivals into a list of 1M: the per-event cost a live view pays
/// when its list is already long.
fn bench_margin(c: &mut Criterion) {
    let n = 1_000_000;
    let mut group = c.benchmark_group(format!("margin_of_{n}"));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.warm_up_time(Duration::from_secs(1));
    let arrival = Arrival::Shuffled;
    let (prefix, tail) = margin_split(arrival, n, LOG_MARGIN);
    group.throughput(Throughput::Elements(LOG_MARGIN as u64));
    group.bench_function(
        BenchmarkId::new(format!("event_log_last_{LOG_MARGIN}"), arrival.name()),
        |b| {
            b.iter_custom(|iters| {
                timed_margin(
                    iters,
                    || insert_all(prefix.clone()),
                    &tail,
                    |log, e| {
                        log.insert(e);
                    },
                )
            })
        },
    );
    let (prefix, tail) = margin_split(arrival, n, NAIVE_MARGIN);
    group.throughput(Throughput::Elements(NAIVE_MARGIN as u64));
    group.bench_function(
        BenchmarkId::new(
            format!("naive_sort_each_last_{NAIVE_MARGIN}"),
            arrival.name(),
        ),
        |b| {
            b.iter_custom(|iters| {
                timed_margin(iters, || naive_prefilled(&prefix), &tail, naive_insert)
            })
        },
    );
    group.finish();
}

/// Times only the inserts of `tail` into a list built by `prefill` (not
/// cloned: a clone has no spare capacity, and its first insert would time
/// a reallocation no live list pays).
fn timed_margin<L>(
    iters: u64,
    prefill: impl Fn() -> L,
    tail: &[Event],
    mut insert: impl FnMut(&mut L, Event),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut list = prefill();
        let tail = tail.to_vec();
        let started = Instant::now();
        for event in tail {
            insert(&mut list, event);
        }
        total += started.elapsed();
        black_box(&list);
    }
    total
}

/// Builds the naive list as the naive client would have it: pushed one by
/// one (so with the spare capacity growth leaves), already sorted.
fn naive_prefilled(prefix: &[Event]) -> Vec<Event> {
    let mut list = Vec::new();
    list.extend(prefix.iter().cloned());
    list.sort_by_key(|e| e.seq);
    list
}

/// A plain table at the end: events per second, best of three, and the
/// log's speed-up over the naive baseline at the same size.
fn summary(_: &mut Criterion) {
    fn best_of_3(mut run: impl FnMut() -> Duration) -> Duration {
        (0..3).map(|_| run()).min().expect("three runs")
    }
    fn per_second(events: usize, time: Duration) -> f64 {
        events as f64 / time.as_secs_f64()
    }
    fn timed<T>(events: &[Event], f: impl Fn(Vec<Event>) -> T) -> Duration {
        best_of_3(|| {
            let events = events.to_vec();
            let started = Instant::now();
            let out = black_box(f(events));
            let elapsed = started.elapsed();
            // Freeing a million events is not inserting them.
            drop(out);
            elapsed
        })
    }
    println!("\n== EventLog summary (best of 3, events/s; construction not timed) ==");
    println!(
        "{:<10} {:<22} {:>16} {:>18} {:>18} {:>10}",
        "size", "arrival", "event_log", "naive_sort_each", "sort_once_at_end", "log/naive"
    );
    for n in SIZES {
        for arrival in Arrival::ALL {
            let events = arrival.events(n);
            let log = per_second(events.len(), timed(&events, insert_all));
            let once = per_second(events.len(), timed(&events, sort_once));
            let naive = if n <= 10_000 {
                Some(per_second(events.len(), timed(&events, naive_all)))
            } else {
                None
            };
            println!(
                "{:<10} {:<22} {:>16} {:>18} {:>18} {:>10}",
                n,
                arrival.name(),
                rate(log),
                naive.map_or("(see margin)".into(), rate),
                rate(once),
                naive.map_or(String::new(), |naive| format!("{:.0}×", log / naive)),
            );
        }
    }
    let n = 1_000_000;
    let (prefix, tail) = margin_split(Arrival::Shuffled, n, LOG_MARGIN);
    let log_time = best_of_3(|| {
        timed_margin(
            1,
            || insert_all(prefix.clone()),
            &tail,
            |log, e| {
                log.insert(e);
            },
        )
    });
    let (prefix, tail) = margin_split(Arrival::Shuffled, n, NAIVE_MARGIN);
    let naive_time =
        best_of_3(|| timed_margin(1, || naive_prefilled(&prefix), &tail, naive_insert));
    let log_rate = per_second(LOG_MARGIN, log_time);
    let naive_rate = per_second(NAIVE_MARGIN, naive_time);
    println!(
        "{:<10} {:<22} {:>16} {:>18} {:>18} {:>10}",
        "margin",
        format!("of {n}, shuffled"),
        rate(log_rate),
        rate(naive_rate),
        "-",
        format!("{:.0}×", log_rate / naive_rate),
    );
    println!(
        "(margin: the last {LOG_MARGIN} (log) or {NAIVE_MARGIN} (naive) arrivals into a list already\n \
         holding the other ~1M. The naive baseline cannot run 1M inserts in full: each insert\n \
         re-sorts the whole list. Per-event figures, so comparable.)\n"
    );
}

fn rate(per_second: f64) -> String {
    if per_second >= 1e6 {
        format!("{:.2} M/s", per_second / 1e6)
    } else if per_second >= 1e3 {
        format!("{:.1} k/s", per_second / 1e3)
    } else {
        format!("{per_second:.0} /s")
    }
}

criterion_group!(benches, bench_full, bench_margin, summary);
criterion_main!(benches);
