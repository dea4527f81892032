//! `make bench`: boots the real stack with release binaries, measures it, and prints one table (bench/latest.md).
//!
//! Every figure comes from this one run. Latencies use one clock on both sides: the synthetic agent stamps each
//! text delta with the wall time just before writing it, and the reader subtracts that from its read time.

mod browser;
mod direct;
mod floor;
mod measure;
mod paths;

use std::io::Read;

use vf_e2e::stack::repo_root;
use vf_e2e::{Stack, StackOptions};

use direct::Workerd;
use floor::RelayWorker;
use measure::{ms, percentile, Recorder};
use paths::Bench;
use vf_e2e::inspector::Inspector;

/// Every run's agent (`VF_SYNTHETIC=N:SIZE:INTERVAL_US:PAUSE_US`) pauses 100 ms after `session-init`, as a real
/// one does before its first token: the deltas travel an open connection, whose set-up is measured on its own
/// (the last part of the table).
///
/// Relay latency: this many 200-byte deltas, 5 ms apart (a fast token stream), per path and round; rounds
/// interleave the paths so that a noisy neighbour on the machine hits all of them alike. The first round warms
/// every path up (connections, JIT, the DO) and is not counted.
const LATENCY_SPEC: &str = "500:200:5000:100000";
const WARM_UP_SPEC: &str = "50:200:5000:100000";
const LATENCY_ROUNDS: usize = 3;
/// Throughput and burst runs write back to back.
const BURST_SMALL: &str = "10000:200:0:100000";
const BURST_LARGE: &str = "10000:4096:0:100000";
const BURST_2000: &str = "2000:200:0:100000";
/// An agent that answers at once, for the time to the first event.
const AT_ONCE_SPEC: &str = "1:200:0";
/// How often each burst runs (its median is reported).
const BURST_RUNS: usize = 5;
const REPLAY_RUNS: usize = 5;
/// The memory rows' streams, and the pause before the last sample.
const MEMORY_SMALL: &str = "10000:200:0:100000";
const MEMORY_LARGE: &str = "200000:200:0:100000";
const MEMORY_SETTLE: std::time::Duration = std::time::Duration::from_secs(5);
const FIRST_EVENT_RUNS: usize = 10;

/// One row of the table.
struct Row {
    what: String,
    measured: String,
    goal: &'static str,
    /// None: no goal on this row.
    met: Option<bool>,
}

fn row(what: impl Into<String>, measured: String) -> Row {
    Row {
        what: what.into(),
        measured,
        goal: "",
        met: None,
    }
}

fn goal(what: impl Into<String>, measured: String, goal: &'static str, met: bool) -> Row {
    Row {
        what: what.into(),
        measured,
        goal,
        met: Some(met),
    }
}

fn heading(what: &str) -> Row {
    row(format!("**{what}**"), String::new())
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

fn ratio(a: u64, b: u64) -> f64 {
    a as f64 / b.max(1) as f64
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// p50 and p99 of one latency path.
struct Latency {
    p50: u64,
    p99: u64,
    n: usize,
}

impl Latency {
    fn of(runs: &[Recorder]) -> Latency {
        let samples: Vec<u64> = runs.iter().flat_map(|r| r.latencies.clone()).collect();
        Latency {
            p50: percentile(&samples, 50.0),
            p99: percentile(&samples, 99.0),
            n: samples.len(),
        }
    }

    fn show(&self) -> String {
        format!("{} / {}", ms(self.p50), ms(self.p99))
    }
}

async fn latency_rows(bench: &mut Bench, rows: &mut Vec<Row>) {
    let session = bench.session().await;
    let mut paths: [Vec<Recorder>; 5] = Default::default();
    for round in 0..=LATENCY_ROUNDS {
        let spec = if round == 0 {
            WARM_UP_SPEC
        } else {
            LATENCY_SPEC
        };
        let runs = [
            bench.do_path(&session, spec).await.1,
            bench.legacy_path(&session, spec).await,
            bench.floor_path(spec, false).await,
            bench.floor_path(spec, true).await,
            bench.loopback_path(spec).await,
        ];
        if round > 0 {
            for (path, run) in paths.iter_mut().zip(runs) {
                path.push(run);
            }
        }
    }
    let [a, b, c, c_stored, d] = paths.map(|runs| Latency::of(&runs));
    rows.push(heading(&format!(
        "Relay latency, agent write → client read, p50 / p99 (200-byte events 5 ms apart, {} per path)",
        thousands(a.n as u64)
    )));
    rows.push(row("(a) DO path: Worker → DO (stored) → client", a.show()));
    rows.push(row("(b) legacy WebSocket path", b.show()));
    rows.push(row(
        "(c) bare pass-through DO, same workerd (floor)",
        c.show(),
    ));
    rows.push(row(
        "(c′) bare DO that commits each chunk (one INSERT) before forwarding it (persist-before-send floor)",
        c_stored.show(),
    ));
    rows.push(row("(d) direct loopback agent → client", d.show()));
    let ratios = |x: &Latency| format!("{:.2}× / {:.2}×", ratio(a.p50, x.p50), ratio(a.p99, x.p99));
    rows.push(row("a / c", ratios(&c)));
    rows.push(goal(
        "a / c′",
        ratios(&c_stored),
        "p50 ≤ 1.1×",
        ratio(a.p50, c_stored.p50) <= 1.1,
    ));
    rows.push(goal(
        "(a) against the TS peer (`AIChatAgent`, measured 1.10 / 3.76 ms here)",
        a.show(),
        "p50 ≤ 1.10 ms, p99 ≤ 3 ms",
        a.p50 <= 1_100 && a.p99 <= 3_000,
    ));
    rows.push(row(
        "where a's time goes, per event (differences of medians): commit wait and SQL (c′ − c) / our parsing, \
         storing and fan-out (a − c′)",
        format!(
            "{} / {}",
            ms(c_stored.p50.saturating_sub(c.p50)),
            ms(a.p50.saturating_sub(c_stored.p50))
        ),
    ));
    rows.push(goal(
        "a / b",
        ratios(&b),
        "p50 ≤ 1.0×",
        ratio(a.p50, b.p50) <= 1.0,
    ));
    rows.push(row("a / d", ratios(&d)));
}

/// The runs of one burst size, through the DO path, the bare pass-through DO (c) and the DO that commits each
/// chunk before forwarding it (c′).
struct Burst {
    spec: &'static str,
    bytes: f64,
    ours: Vec<Recorder>,
    floor: Vec<Recorder>,
    committed: Vec<Recorder>,
}

impl Burst {
    fn new(spec: &'static str, bytes: f64) -> Burst {
        Burst {
            spec,
            bytes,
            ours: Vec::new(),
            floor: Vec::new(),
            committed: Vec::new(),
        }
    }

    fn rate(runs: &[Recorder]) -> u64 {
        median(runs.iter().map(|r| r.rate() as u64).collect())
    }

    fn cpu(runs: &[Recorder]) -> f64 {
        median(runs.iter().map(|r| r.cpu_per_event() as u64).collect()) as f64
    }

    /// The DO path's rate and CPU per event, beside the floors'.
    fn throughput(&self) -> String {
        let (ours, floor) = (Self::rate(&self.ours), Self::rate(&self.floor));
        let committed = Self::rate(&self.committed);
        format!(
            "{} events/s = {:.1} MB/s ({:.0}% of the bare DO's {}, {:.0}% of c′'s {}); workerd CPU {:.0} µs/event \
             (bare DO: {:.0}, c′: {:.0})",
            thousands(ours),
            ours as f64 * self.bytes / 1e6,
            100.0 * ratio(ours, floor),
            thousands(floor),
            100.0 * ratio(ours, committed),
            thousands(committed),
            Self::cpu(&self.ours),
            Self::cpu(&self.floor),
            Self::cpu(&self.committed),
        )
    }

    fn firsts(runs: &[Recorder]) -> Vec<u64> {
        runs.iter().map(Recorder::first_latency).collect()
    }
}

/// Throughput and first-event-under-burst rows; returns a session holding one 10,000-delta answer (for replay).
async fn burst_rows(bench: &Bench, rows: &mut Vec<Row>) -> String {
    let replay_session = bench.session().await;
    let other = bench.session().await;
    let mut bursts = [
        Burst::new(BURST_SMALL, 200.0),
        Burst::new(BURST_LARGE, 4096.0),
        Burst::new(BURST_2000, 200.0),
    ];
    for i in 0..BURST_RUNS {
        for burst in bursts.iter_mut() {
            let session = if i == 0 && burst.spec == BURST_SMALL {
                &replay_session
            } else {
                &other
            };
            burst.ours.push(bench.do_path(session, burst.spec).await.1);
            burst.floor.push(bench.floor_path(burst.spec, false).await);
            burst
                .committed
                .push(bench.floor_path(burst.spec, true).await);
        }
    }
    let [small, large, b2000] = &bursts;
    rows.push(heading(&format!(
        "Throughput of one session, every event persisted (10,000 events back to back, median of {BURST_RUNS})"
    )));
    rows.push(goal(
        "200-byte events",
        small.throughput(),
        "≥ 20,000 events/s",
        Burst::rate(&small.ours) >= 20_000,
    ));
    rows.push(row("4 KB events", large.throughput()));
    rows.push(heading(&format!(
        "First event under a burst: agent's first write → client's first read (median / worst of {BURST_RUNS})"
    )));
    // The reference: a widely used TypeScript DO chat agent stores the whole burst before sending anything.
    for (label, burst, reference_ms) in [
        ("2,000 × 200 B", b2000, 246u64),
        ("10,000 × 200 B", small, 1840),
        ("10,000 × 4 KB", large, 1840),
    ] {
        let ours = Burst::firsts(&burst.ours);
        let worst = *ours.iter().max().expect("runs");
        let shown = median(ours);
        rows.push(goal(
            label,
            format!(
                "{} / {} (bare DO: {}; c′: {}; TS DO agent: {} ms, {:.0}× ours)",
                ms(shown),
                ms(worst),
                ms(median(Burst::firsts(&burst.floor))),
                ms(median(Burst::firsts(&burst.committed))),
                thousands(reference_ms),
                reference_ms as f64 * 1000.0 / shown.max(1) as f64
            ),
            "≤ 5 ms",
            worst <= 5_000,
        ));
    }
    replay_session
}

async fn replay_rows(bench: &Bench, session: &str, rows: &mut Vec<Row>) {
    let total = bench.replay(session, 0).await.lines;
    let (mut first, mut full, mut tail) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..REPLAY_RUNS {
        let replay = bench.replay(session, 0).await;
        assert_eq!(replay.lines, total, "every replay delivers the same log");
        first.push(replay.first_byte_us);
        full.push(replay.last_byte_us);
        let replay = bench.replay(session, total - 10).await;
        assert_eq!(replay.lines, 10, "a replay near the end");
        tail.push(replay.last_byte_us);
    }
    rows.push(heading(&format!(
        "Replay to a resuming client, request → last byte ({} stored events, median of {REPLAY_RUNS})",
        thousands(total)
    )));
    let full = median(full);
    rows.push(goal(
        "after=0",
        format!(
            "{} = {} events/s (first byte after {})",
            ms(full),
            thousands((total as f64 / (full as f64 / 1e6)) as u64),
            ms(median(first))
        ),
        "≤ 150 ms",
        full <= 150_000,
    ));
    rows.push(row(
        "after = last − 10 (what every request costs: cookie, session check, DO)",
        ms(median(tail)),
    ));
}

/// The app's workerd memory at one moment, and again after a full collection of the Worker's V8 heap.
struct Memory {
    rss: u64,
    collected: u64,
    js_heap: u64,
}

impl Memory {
    async fn sample(workerd: &Workerd, v8: &mut Inspector) -> Memory {
        let rss = workerd.rss();
        let js_heap = v8.heap_used().await;
        v8.collect_garbage().await;
        Memory {
            rss,
            collected: workerd.rss(),
            js_heap,
        }
    }

    fn show(&self) -> String {
        format!(
            "{} (JS heap in use {}); after a collection {}",
            mb(self.rss),
            mb(self.js_heap),
            mb(self.collected)
        )
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

/// Memory of the app's workerd: idle, after a 10,000-event stream, after a 200,000-event stream and its full replay,
/// after a pause, and after a second such stream. Each sample also forces a full collection (through workerd's
/// inspector): what a collection frees was only waiting for V8 to run one, what it leaves is what stays.
async fn memory_rows(bench: &Bench, rows: &mut Vec<Row>) {
    let app = &bench.app;
    let mut v8 = Inspector::find(&[app.pid], &format!("{}/api/me", app.base), "vaporforge").await;
    let idle = Memory::sample(app, &mut v8).await;
    let session = bench.session().await;
    bench.do_path(&session, MEMORY_SMALL).await;
    let after_small = Memory::sample(app, &mut v8).await;
    let big = bench.session().await;
    bench.do_path(&big, MEMORY_LARGE).await;
    let after_large = bench.app.rss();
    let replayed = bench.replay(&big, 0).await.lines;
    let after_replay = bench.app.rss();
    tokio::time::sleep(MEMORY_SETTLE).await;
    let settled = Memory::sample(app, &mut v8).await;
    rows.push(heading(
        "Memory of the app's workerd (RSS, and RSS after a full V8 collection forced through the inspector; \
         the TS peer held 221 MB after one 10,000-event stream)",
    ));
    rows.push(row("idle, after the runs above", idle.show()));
    rows.push(row("after a 10,000-event stream", after_small.show()));
    rows.push(row(
        format!(
            "after a 200,000-event stream / and its full replay ({} lines)",
            thousands(replayed)
        ),
        format!("{} / {}", mb(after_large), mb(after_replay)),
    ));
    rows.push(goal(
        format!("{} s later", MEMORY_SETTLE.as_secs()),
        settled.show(),
        "no growth that stays: after a collection ≤ after 10,000 (collected) + 25%",
        settled.collected <= after_small.collected + after_small.collected / 4,
    ));
    // What stays: a leak grows again with every long stream, a high-water mark does not. The same session, so
    // that no second DO (with its own SQLite cache) is counted as growth.
    bench.do_path(&big, MEMORY_LARGE).await;
    bench.replay(&big, 0).await;
    tokio::time::sleep(MEMORY_SETTLE).await;
    let second = Memory::sample(app, &mut v8).await;
    rows.push(goal(
        format!(
            "after a second 200,000-event stream in the same session and its replay, {} s later",
            MEMORY_SETTLE.as_secs()
        ),
        second.show(),
        "after a collection ≤ the first + 10% (what stays does not grow again)",
        second.collected <= settled.collected + settled.collected / 10,
    ));
    // The same streams into c′ (a plain JS DO that stores each chunk) on its own workerd: what workerd itself
    // keeps after a DO has written 200,000 rows, with none of our code involved.
    let relay = &bench.relay.workerd;
    let mut relay_v8 = Inspector::find(
        &[relay.pid],
        &format!("{}/ping", relay.base),
        "vf-bench-relay",
    )
    .await;
    let before = Memory::sample(relay, &mut relay_v8).await;
    bench.floor_path(MEMORY_LARGE, true).await;
    let one = Memory::sample(relay, &mut relay_v8).await;
    bench.floor_path(MEMORY_LARGE, true).await;
    let two = Memory::sample(relay, &mut relay_v8).await;
    rows.push(row(
        "for comparison, c′'s workerd after a collection: before / after one 200,000-event stream / after a second",
        format!("{} / {} / {}", mb(before.collected), mb(one.collected), mb(two.collected)),
    ));
}

async fn first_event_rows(bench: &Bench, rows: &mut Vec<Row>) {
    let session = bench.session().await;
    let mut connected = Vec::new();
    let mut first = Vec::new();
    for _ in 0..FIRST_EVENT_RUNS {
        let (sent, run) = bench.do_path(&session, AT_ONCE_SPEC).await;
        connected.push(run.first_line_at.expect("lines") - sent);
        first.push(run.session_init_at.expect("a session-init") - sent);
    }
    rows.push(heading(&format!(
        "POST /api/v15/chat → first line, agent answers at once (p50 / worst of {FIRST_EVENT_RUNS})"
    )));
    rows.push(row(
        "`connected` (the DO answered)",
        format!(
            "{} / {}",
            ms(median(connected.clone())),
            ms(*connected.iter().max().expect("runs"))
        ),
    ));
    rows.push(row(
        "first agent event (sandbox started the agent, it called back)",
        format!(
            "{} / {}",
            ms(median(first.clone())),
            ms(*first.iter().max().expect("runs"))
        ),
    ));
}

/// Raw and gzipped size of the app's files: what the first page load fetches (index.html and the files it names:
/// the JS loader, the wasm, the stylesheet) and the code-highlighting worker, fetched with the first code block.
fn wasm_rows(rows: &mut Vec<Row>) {
    let dir = repo_root().join("app/dist");
    let index =
        std::fs::read_to_string(dir.join("index.html")).expect("app/dist exists (make app)");
    let files: Vec<(String, usize, u64)> = std::fs::read_dir(&dir)
        .expect("app/dist reads")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "html" || e == "js" || e == "wasm" || e == "css")
        })
        .map(|path| {
            let mut raw = Vec::new();
            std::fs::File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut raw))
                .expect("the file reads");
            let mut gz = flate2::read::GzEncoder::new(&raw[..], flate2::Compression::best());
            let gzipped = std::io::copy(&mut gz, &mut std::io::sink()).expect("gzip");
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, raw.len(), gzipped)
        })
        .collect();
    let first_load = |name: &str| name == "index.html" || index.contains(name);
    let sum = |pick: &dyn Fn(&str) -> bool| {
        files
            .iter()
            .filter(|(name, ..)| pick(name))
            .fold((0, 0), |(raw, gz), (_, r, g)| (raw + r, gz + g))
    };
    let (wasm_raw, wasm_gz) = sum(&|name| name.ends_with(".wasm") && first_load(name));
    assert!(wasm_raw > 0, "app/dist/index.html names a .wasm");
    let (_, first_gz) = sum(&first_load);
    let (worker_raw, worker_gz) = sum(&|name| name.starts_with("vf-highlighter"));
    rows.push(heading("App (app/dist)"));
    rows.push(row(
        "wasm raw / gzipped (-9)",
        format!("{} KB / {} KB", wasm_raw / 1000, wasm_gz / 1000),
    ));
    rows.push(goal(
        "first page load gzipped (index.html, JS loader, wasm, CSS)",
        format!("{} KB", first_gz / 1000),
        "≤ 350 KB gzipped",
        first_gz <= 350_000,
    ));
    rows.push(row(
        "highlighting worker (JS + wasm, with the first code block) raw / gzipped",
        format!("{} KB / {} KB", worker_raw / 1000, worker_gz / 1000),
    ));
}

fn render(rows: &[Row]) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let wrangler = std::fs::read_to_string(repo_root().join("node_modules/wrangler/package.json"))
        .ok()
        .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
        .and_then(|p| p["version"].as_str().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    let mut out = format!(
        "`make bench` on this machine: {cores} cores, wrangler {wrangler} (local workerd), release builds; requests \
         go to the workerd running each Worker, past wrangler dev's proxy worker (a dev-only hop).\n\n\
         | measure | result | goal | |\n|---|---|---|---|\n"
    );
    for r in rows {
        let mark = match r.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.what, r.measured, r.goal, mark
        ));
    }
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let options = StackOptions {
        profile: "release",
        // Long enough never to fire during a run: the bench measures the event path, not the watchdog.
        bridge_timeout_ms: 60_000,
        watchdog_ms: 60_000,
        heartbeat_ms: 15_000,
        agent_heartbeat_secs: 10,
        ..StackOptions::default()
    };
    eprintln!("vf-bench: starting the stack (release binaries) and the relay worker…");
    let (stack, relay) = tokio::join!(Stack::start(options), RelayWorker::start());
    let mut bench = Bench::new(stack, relay).await;
    let mut rows = Vec::new();
    if selected("latency") {
        eprintln!("vf-bench: relay latency (a, b, c, d)…");
        latency_rows(&mut bench, &mut rows).await;
    }
    if selected("burst") {
        eprintln!("vf-bench: throughput and bursts…");
        let replay_session = burst_rows(&bench, &mut rows).await;
        eprintln!("vf-bench: replay…");
        replay_rows(&bench, &replay_session, &mut rows).await;
    }
    if selected("first") {
        eprintln!("vf-bench: time to first event…");
        first_event_rows(&bench, &mut rows).await;
    }
    if selected("memory") {
        eprintln!("vf-bench: memory…");
        memory_rows(&bench, &mut rows).await;
    }
    if selected("browser") {
        eprintln!("vf-bench: the app's streaming cost in Chromium…");
        browser::rows(&bench, &mut rows).await;
    }
    wasm_rows(&mut rows);
    let table = render(&rows);
    println!("{table}");
    if only().is_none() {
        let path = repo_root().join("bench/latest.md");
        std::fs::write(&path, &table).expect("bench/latest.md is writable");
        eprintln!("vf-bench: written to {}", path.display());
    }
}

/// `vf-bench [latency|burst|first|memory|browser]` runs one part only (and leaves bench/latest.md alone).
fn only() -> Option<String> {
    std::env::args().nth(1)
}

fn selected(part: &str) -> bool {
    only().is_none_or(|only| only == part)
}
