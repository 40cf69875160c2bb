//! Live at size: the release widget and a hand-written plain-JavaScript page
//! (`e2e/fixtures/bench-plain.html`), each in its own headless Chromium
//! against the release server, measured in the same run on the same
//! workload. Prints figures; asserts nothing (see BENCHMARKS.md, "Live at
//! size").
//!
//! 1. An operation streaming about 1 000 events/s up to N events, watched
//!    from its start (the page is loaded first, then the operation starts
//!    and the page is pointed at it): for each event, the time its row is
//!    first on screen minus its `happenedAt`, as p50/p99/max per bucket of
//!    N/10 events.
//! 2. A reload of the finished operation: the time from navigation to the
//!    first row on screen, and to the whole history merged.
//! 3. The page's memory at N events: JS heap plus wasm memory.
//!
//! `make bench-live` (N = 100 000); `OPTRAIL_BENCH_EVENTS=20000` for a
//! shorter run. Needs the release widget (`scripts/build-web.sh`) and the
//! release server (`cargo build --release -p optrail-server`).

use std::time::{Duration, Instant};

use optrail_core::Event;
use optrail_e2e::chrome::ChromeDriver;
use optrail_e2e::server::{ServerOptions, ServerProcess};
use optrail_e2e::{Context, Failure, Result, workspace};
use serde::Deserialize;
use serde_json::json;

/// Terminal and leading events the demo payment adds to its steps.
const FRAMING_EVENTS: u64 = 4;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Page {
    Plain,
    Widget,
}

impl Page {
    fn name(self) -> &'static str {
        match self {
            Page::Plain => "plain JS page",
            Page::Widget => "optrail widget",
        }
    }

    fn file(self) -> &'static str {
        match self {
            Page::Plain => "bench-plain.html",
            Page::Widget => "bench-widget.html",
        }
    }
}

/// What one page measured.
struct Measured {
    /// Per bucket: p50, p99, max latency in ms, and events never shown.
    buckets: Vec<(f64, f64, f64, usize)>,
    live_memory: Memory,
    reload_first_row_ms: Option<f64>,
    reload_merged_ms: Option<f64>,
    reload_memory: Memory,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Memory {
    js_heap: f64,
    wasm: f64,
    dom_nodes: u64,
}

impl Memory {
    fn total_mb(&self) -> f64 {
        (self.js_heap + self.wasm) / 1e6
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reading {
    /// `covered[seq]`: epoch ms when a row with that seq or a later one was
    /// first on screen (null where never).
    covered: Vec<Option<f64>>,
    first_row_at: Option<f64>,
    merged_at: Option<f64>,
    memory: Memory,
}

const READ: &str = "const b = window.bench; if (!b) return null; \
    return { covered: Array.from({ length: b.maxShown + 1 }, (_, i) => b.covered[i] ?? null), \
    firstRowAt: b.firstRowAt, mergedAt: b.mergedAt, memory: b.memory() };";

const PROGRESS: &str = "const b = window.bench; \
    return b ? [b.maxShown, b.mergedAt !== null] : [0, false];";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("bench-live failed: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let events: u64 = std::env::var("OPTRAIL_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
        .max(FRAMING_EVENTS + 10);
    let site = workspace::site_with_fixtures()?;
    let server = ServerProcess::start(ServerOptions {
        static_dir: Some(site.path().to_path_buf()),
        ..ServerOptions::default()
    })
    .await?;
    let chrome = ChromeDriver::start().await?;
    println!(
        "bench-live: {events} events at about 1 000/s, each page in its own headless Chromium, \
         against the release server at {}",
        server.url()
    );
    let mut results = Vec::new();
    for page in [Page::Plain, Page::Widget] {
        let measured = measure(page, &server, &chrome, events).await?;
        results.push((page, measured));
    }
    report(events, &results);
    Ok(())
}

async fn measure(
    page: Page,
    server: &ServerProcess,
    chrome: &ChromeDriver,
    events: u64,
) -> Result<Measured> {
    let browser = chrome.new_browser().await?;
    let client = browser.client();
    client
        .goto(&format!("{}/{}", server.url(), page.file()))
        .await
        .context("opening the page")?;
    let loading = Instant::now();
    while client
        .execute("return window.benchReady === true", Vec::new())
        .await?
        != serde_json::Value::Bool(true)
    {
        if loading.elapsed() > Duration::from_secs(30) {
            return Err(Failure::new(format!("{} never became ready", page.name())));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let operation = server
        .start_operation(
            "payment",
            json!({
                "amount": 1,
                "description": format!("bench {}", page.name()),
                "steps": events - FRAMING_EVENTS,
                "stepMs": 1,
                "failureRate": 0,
            }),
        )
        .await?;
    let id = operation.id;
    client
        .execute(&format!("location.hash = '#/operations/{id}'"), Vec::new())
        .await
        .context("pointing the page at the operation")?;
    let started = Instant::now();
    let limit = Duration::from_secs(events / 500 + 120);
    // Live: until the page has shown every row and says it is all there.
    loop {
        let value = client.execute(PROGRESS, Vec::new()).await?;
        let (shown, merged): (u64, bool) = serde_json::from_value(value)?;
        if shown >= events && merged {
            break;
        }
        if started.elapsed() > limit {
            let state = client
                .execute(
                    "return [document.querySelector('.optrail-recovery')?.textContent, \
                     document.querySelector('.optrail-connection')?.dataset.state, \
                     document.querySelector('.optrail-problem:not([hidden])')?.textContent]",
                    Vec::new(),
                )
                .await?;
            return Err(Failure::new(format!(
                "{}: {shown} of {events} events shown after {limit:?}; the page says {state}",
                page.name()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let live = read(client).await?;
    let (_, server_events) = server.events(&id).await?;
    let buckets = latencies(&live, &server_events, events);
    // Reload: navigation to first row, and to everything merged.
    client.refresh().await.context("reloading")?;
    let reloaded = Instant::now();
    let reload = loop {
        let value = client.execute(PROGRESS, Vec::new()).await?;
        let (_, merged): (u64, bool) = serde_json::from_value(value)?;
        if merged || reloaded.elapsed() > Duration::from_secs(120) {
            break read(client).await?;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    browser.close().await;
    Ok(Measured {
        buckets,
        live_memory: live.memory,
        reload_first_row_ms: reload.first_row_at,
        reload_merged_ms: reload.merged_at,
        reload_memory: reload.memory,
    })
}

async fn read(client: &fantoccini::Client) -> Result<Reading> {
    let value = client.execute(READ, Vec::new()).await?;
    serde_json::from_value(value).context("the page's measurements")
}

/// p50/p99/max of shown-minus-happened per bucket of `events / 10`.
fn latencies(reading: &Reading, server: &[Event], events: u64) -> Vec<(f64, f64, f64, usize)> {
    let bucket = (events / 10).max(1) as usize;
    let mut buckets = Vec::new();
    for chunk in server.chunks(bucket) {
        let mut latencies = Vec::with_capacity(chunk.len());
        let mut never = 0;
        for event in chunk {
            let seq = event.seq.map_or(0, |s| s.0) as usize;
            match reading.covered.get(seq).copied().flatten() {
                Some(shown) => latencies.push(shown - event.happened_at.0 as f64),
                None => never += 1,
            }
        }
        latencies.sort_by(f64::total_cmp);
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        buckets.push((at(0.5), at(0.99), at(1.0), never));
    }
    buckets
}

fn report(events: u64, results: &[(Page, Measured)]) {
    let bucket = events / 10;
    println!("\nLatency (row on screen minus happenedAt), ms, p50 / p99 / max:");
    println!(
        "| events | {} | {} |",
        results[0].0.name(),
        results[1].0.name()
    );
    println!("|---|---|---|");
    let rows = results
        .iter()
        .map(|(_, m)| m.buckets.len())
        .max()
        .unwrap_or(0);
    for i in 0..rows {
        let cell = |m: &Measured| match m.buckets.get(i) {
            Some((p50, p99, max, never)) if *never > 0 => {
                format!("{p50:.0} / {p99:.0} / {max:.0} ({never} never shown)")
            }
            Some((p50, p99, max, _)) => format!("{p50:.0} / {p99:.0} / {max:.0}"),
            None => "-".into(),
        };
        println!(
            "| {}–{} | {} | {} |",
            i as u64 * bucket + 1,
            (i as u64 + 1) * bucket,
            cell(&results[0].1),
            cell(&results[1].1)
        );
    }
    println!("\nReload of the finished operation ({events} events), ms from navigation:");
    println!("| page | first row | all merged | memory (JS heap + wasm) | DOM nodes |");
    println!("|---|---|---|---|---|");
    for (page, m) in results {
        println!(
            "| {} | {} | {} | {:.1} MB | {} |",
            page.name(),
            ms(m.reload_first_row_ms),
            ms(m.reload_merged_ms),
            m.reload_memory.total_mb(),
            m.reload_memory.dom_nodes
        );
    }
    println!("\nMemory after streaming {events} events:");
    for (page, m) in results {
        println!(
            "- {}: {:.1} MB (JS heap {:.1} MB, wasm {:.1} MB), {} DOM nodes",
            page.name(),
            m.live_memory.total_mb(),
            m.live_memory.js_heap / 1e6,
            m.live_memory.wasm / 1e6,
            m.live_memory.dom_nodes
        );
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or("never".into(), |v| format!("{v:.0}"))
}
