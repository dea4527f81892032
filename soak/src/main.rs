//! `make soak`: the real stack (wrangler dev, vf-sandbox, vf-agent, the fake CLI) under Worker crashes,
//! reconnecting clients, a stalled reader and parallel sessions; one table, and a non-zero exit on any loss.
//!
//! Every answer is a `[burst:N:64]` of the fake CLI: N text deltas, each starting with its zero-padded index, so
//! what a client or the log holds says exactly which deltas are missing, doubled or out of order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vf_e2e::client::Line;
use vf_e2e::events::terminals;
use vf_e2e::inspector::Inspector;
use vf_e2e::{Client, EventStream, Stack, StackOptions};
use vf_protocol::Event;

/// Crashes: this many `kill -9` of wrangler dev, each in the middle of an answer of [`CRASH_DELTAS`].
const CRASHES: usize = 20;
const CRASH_DELTAS: usize = 20_000;
/// Reconnects: this many disconnect/resume cycles of one client, over answers of [`RECONNECT_DELTAS`].
const RECONNECTS: usize = 200;
const RECONNECT_DELTAS: usize = 20_000;
/// The stalled reader's answer.
const STALLED_DELTAS: usize = 200_000;
/// Parallel sessions, each with an answer of [`PARALLEL_DELTAS`].
const PARALLEL: usize = 3;
const PARALLEL_DELTAS: usize = 50_000;

/// A small deterministic generator (xorshift64*), seeded from `VF_SOAK_SEED` or the clock; the seed is printed so a
/// failing run can be replayed.
struct Random(u64);

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1) as u64) as usize
    }
}

/// What a client or the log holds of one answer of `count` deltas.
#[derive(Default, Clone, Copy)]
struct Count {
    deltas: usize,
    lost: usize,
    doubled: usize,
    out_of_order: usize,
}

/// Counts the deltas of an answer of `count` in `lines`, by their index.
fn count(lines: &[Line], count: usize) -> Count {
    let mut seen = vec![0u32; count];
    let mut last = None;
    let mut result = Count::default();
    for line in lines {
        let Event::TextDelta { text } = &line.envelope.event else {
            continue;
        };
        let Some(index) = text.get(..7).and_then(|i| i.parse::<usize>().ok()) else {
            continue;
        };
        result.deltas += 1;
        if let Some(slot) = seen.get_mut(index) {
            *slot += 1;
        }
        if last.is_some_and(|l| index <= l) {
            result.out_of_order += 1;
        }
        last = Some(index);
    }
    result.lost = seen.iter().filter(|&&n| n == 0).count();
    result.doubled = seen.iter().map(|&n| n.saturating_sub(1) as usize).sum();
    result
}

/// One row of the table: a phase's totals.
#[derive(Default)]
struct Tally {
    phase: &'static str,
    answers: usize,
    produced: usize,
    stored: usize,
    /// Deltas each client received, summed over its answers.
    delivered: Vec<usize>,
    lost: usize,
    doubled: usize,
    out_of_order: usize,
    non_terminal: usize,
    peak_rss: u64,
}

impl Tally {
    fn new(phase: &'static str) -> Self {
        Tally {
            phase,
            ..Tally::default()
        }
    }

    /// Adds an answer of `deltas` as the log holds it, and as each client received it.
    fn answer(&mut self, deltas: usize, log: &[Line], clients: &[&[Line]]) {
        self.answers += 1;
        self.produced += deltas;
        let stored = count(log, deltas);
        self.stored += stored.deltas;
        self.add(stored);
        if terminals(log).len() != 1 {
            self.non_terminal += 1;
        }
        self.delivered
            .resize(self.delivered.len().max(clients.len()), 0);
        for (slot, lines) in clients.iter().enumerate() {
            let got = count(lines, deltas);
            self.delivered[slot] += got.deltas;
            self.add(got);
        }
    }

    fn add(&mut self, c: Count) {
        self.lost += c.lost;
        self.doubled += c.doubled;
        self.out_of_order += c.out_of_order;
    }

    fn clean(&self) -> bool {
        self.lost == 0 && self.doubled == 0 && self.out_of_order == 0 && self.non_terminal == 0
    }
}

/// The highest RSS of the Worker's workerd seen since the last `take`, sampled every 100 ms while the stack lives
/// (the sampler holds it weakly, so that dropping the stack, on success or on a panic, stops every process).
struct RssPeak(Arc<AtomicU64>);

impl RssPeak {
    fn start(stack: &Arc<Stack>) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let sampled = peak.clone();
        let stack = Arc::downgrade(stack);
        tokio::spawn(async move {
            while let Some(rss) = stack.upgrade().map(|s| s.workerd_rss()) {
                sampled.fetch_max(rss, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        RssPeak(peak)
    }

    fn take(&self) -> u64 {
        self.0.swap(0, Ordering::Relaxed)
    }
}

fn burst(deltas: usize) -> String {
    format!("[burst:{deltas}:64] soak")
}

/// Starts an answer; retries while the previous one is still being finished (409).
async fn start(user: &Client, session: &str, deltas: usize) -> EventStream {
    for _ in 0..200 {
        let stream = user.chat(session, &burst(deltas)).await;
        if stream.status() == 200 {
            return stream;
        }
        assert_eq!(stream.status(), 409, "chat");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the session never took the next prompt");
}

/// Reads a stream to its end, every line kept (heartbeats left out).
async fn read_all(mut stream: EventStream) -> Vec<Line> {
    let mut lines = Vec::new();
    while let Ok(Some(line)) = stream.try_next().await {
        if !matches!(line.envelope.event, Event::Heartbeat) {
            lines.push(line);
        }
    }
    lines
}

/// `kill -9` of wrangler dev at a random point of each answer (after a random number of deltas reached the
/// client), then a restart on the same state: the agent reconnects and the log completes.
async fn crashes(stack: &Stack, random: &mut Random) -> Tally {
    let mut tally = Tally::new("Worker killed mid-answer, restarted (×20)");
    for round in 0..CRASHES {
        let user = Client::signed_in(&stack.base).await;
        let session = user.create_session().await.id;
        let mut stream = start(&user, &session, CRASH_DELTAS).await;
        let at = 1 + random.below(CRASH_DELTAS / 2);
        let mut read = Vec::new();
        while count(&read, CRASH_DELTAS).deltas < at {
            match stream.try_next().await {
                Ok(Some(line)) => read.push(line),
                _ => break,
            }
        }
        let mid = terminals(&read).is_empty();
        drop(stream);
        stack.kill_wrangler();
        stack.start_wrangler().await;
        let log = user.wait_for_terminal(&session).await;
        println!(
            "  crash {:>2}: killed after {at} deltas{}",
            round + 1,
            if mid { "" } else { " (answer complete)" }
        );
        tally.answer(CRASH_DELTAS, &log, &[]);
    }
    tally
}

/// One client that drops its stream after a random number of lines and resumes after the last seq it has, over
/// and over, across answers: what it received in total is the log, once and in order.
async fn reconnects(stack: &Stack, random: &mut Random) -> Tally {
    let mut tally = Tally::new("client disconnects and resumes (×200)");
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await.id;
    let mut received: Vec<Line> = Vec::new();
    let mut answers = 1;
    drop(start(&user, &session, RECONNECT_DELTAS).await);
    let mut cycles = 0;
    loop {
        let after = received.last().and_then(|l| l.envelope.seq).unwrap_or(0);
        let mut stream = user.events(&session, after).await;
        let budget = if cycles < RECONNECTS {
            1 + random.below(400)
        } else {
            usize::MAX
        };
        let mut ended = false;
        for _ in 0..budget {
            match stream.try_next().await {
                Ok(Some(line)) if line.envelope.seq.is_some() => {
                    ended = line.envelope.event.is_terminal();
                    received.push(line);
                    if ended {
                        break;
                    }
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        cycles += 1;
        if ended && cycles >= RECONNECTS {
            break;
        }
        if ended {
            answers += 1;
            drop(start(&user, &session, RECONNECT_DELTAS).await);
        }
    }
    let seqs: Vec<u64> = received.iter().filter_map(|l| l.envelope.seq).collect();
    let contiguous = seqs.iter().zip(1..).all(|(&s, n)| s == n);
    println!(
        "  {cycles} cycles over {answers} answers; seqs 1..={} contiguous: {contiguous}",
        seqs.len()
    );
    let log = user.stored(&session).await;
    if !contiguous || log.len() != received.len() {
        tally.doubled += received.len().abs_diff(log.len()).max(1);
    }
    // Split the log and the received lines per answer (each starts with its user-message).
    for (stored, got) in per_answer(&log).into_iter().zip(per_answer(&received)) {
        tally.answer(RECONNECT_DELTAS, stored, &[got]);
    }
    tally
}

fn per_answer(lines: &[Line]) -> Vec<&[Line]> {
    let starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| matches!(l.envelope.event, Event::UserMessage { .. }))
        .map(|(i, _)| i)
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &from)| &lines[from..starts.get(n + 1).copied().unwrap_or(lines.len())])
        .collect()
}

/// A subscriber that reads nothing while 200,000 events stream to another; afterwards it reads (resuming if the
/// Worker dropped it) and must have everything.
async fn stalled_reader(stack: &Stack) -> Tally {
    let mut tally = Tally::new("a subscriber stalls through 200,000 events");
    let user = Client::signed_in(&stack.base).await;
    let session = user.create_session().await.id;
    let mut stalled = user.events(&session, 0).await;
    let started = Instant::now();
    let reader = read_all(start(&user, &session, STALLED_DELTAS).await).await;
    println!(
        "  the reading client got the answer in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut late = Vec::new();
    loop {
        match stalled.try_next().await {
            Ok(Some(line)) if line.envelope.seq.is_some() => {
                let end = line.envelope.event.is_terminal();
                late.push(line);
                if end {
                    break;
                }
            }
            Ok(Some(_)) => {}
            _ => {
                let after = late.last().and_then(|l| l.envelope.seq).unwrap_or(0);
                println!("  the stalled subscriber was dropped; resuming after {after}");
                stalled = user.events(&session, after).await;
            }
        }
    }
    let log = user.stored(&session).await;
    tally.answer(STALLED_DELTAS, &log, &[&reader, &late]);
    tally
}

/// Three users' answers stream at the same time, each read by its own client.
async fn parallel(stack: &Stack) -> Tally {
    let mut tally = Tally::new("3 sessions stream at once");
    let runs = (0..PARALLEL).map(|_| async {
        let user = Client::signed_in(&stack.base).await;
        let session = user.create_session().await.id;
        let lines = read_all(start(&user, &session, PARALLEL_DELTAS).await).await;
        let log = user.stored(&session).await;
        (log, lines)
    });
    for (log, lines) in futures::future::join_all(runs).await {
        tally.answer(PARALLEL_DELTAS, &log, &[&lines]);
    }
    tally
}

fn mb(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

/// The Worker's workerd RSS at the start, at the end, and at the end after a full collection of its V8 heap; and
/// what wrangler's dev-only proxy holds at the end.
struct Rss {
    idle: u64,
    end: u64,
    collected: u64,
    proxy: u64,
}

impl Rss {
    /// The end figures: as they are, then after a full collection forced through workerd's inspector (what it
    /// frees was only waiting for V8 to run one).
    async fn end(stack: &Stack, idle: u64) -> Rss {
        let end = stack.workerd_rss();
        let (worker, _) = stack.workerds();
        let mut v8 =
            Inspector::find(&worker, &format!("{}/api/me", stack.base), "vaporforge").await;
        v8.collect_garbage().await;
        Rss {
            idle,
            end,
            collected: stack.workerd_rss(),
            proxy: stack.proxy_rss(),
        }
    }
}

fn table(tallies: &[Tally], rss: &Rss) -> String {
    let mut out = String::from(
        "| phase | answers | deltas produced | stored | delivered (per client) | lost | doubled | out of order | non-terminal | peak RSS of the Worker's workerd |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for t in tallies {
        let delivered = if t.delivered.is_empty() {
            "—".to_string()
        } else {
            t.delivered
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(" / ")
        };
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            t.phase,
            t.answers,
            t.produced,
            t.stored,
            delivered,
            t.lost,
            t.doubled,
            t.out_of_order,
            t.non_terminal,
            mb(t.peak_rss)
        );
    }
    out += &format!(
        "\nRSS of the workerd that runs the Worker: {} idle at the start, {} at the end, {} after a full V8 \
         collection. wrangler dev's proxy workerd (a dev-only hop in front of it) held {} at the end.\n",
        mb(rss.idle),
        mb(rss.end),
        mb(rss.collected),
        mb(rss.proxy)
    );
    out
}

#[tokio::main]
async fn main() {
    let seed = std::env::var("VF_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    println!("soak: seed {seed} (VF_SOAK_SEED={seed} replays this run)");
    let mut random = Random(seed);
    let started = Instant::now();
    let stack = Arc::new(Stack::start(StackOptions::default()).await);
    let idle_rss = stack.workerd_rss();
    let peak = RssPeak::start(&stack);
    let mut tallies = Vec::new();
    for phase in 0..4 {
        let mut tally = match phase {
            0 => crashes(&stack, &mut random).await,
            1 => reconnects(&stack, &mut random).await,
            2 => stalled_reader(&stack).await,
            _ => parallel(&stack).await,
        };
        tally.peak_rss = peak.take();
        println!(
            "{}: {}",
            tally.phase,
            if tally.clean() { "clean" } else { "FAILED" }
        );
        tallies.push(tally);
    }
    let table = table(&tallies, &Rss::end(&stack, idle_rss).await);
    drop(stack);
    println!("\n{table}\n{:.0} s in all", started.elapsed().as_secs_f64());
    let path = vf_e2e::stack::repo_root().join("soak/latest.md");
    let _ = std::fs::write(&path, format!("# make soak (seed {seed})\n\n{table}"));
    if !tallies.iter().all(Tally::clean) {
        eprintln!("soak: something was lost, doubled, out of order or left running");
        std::process::exit(1);
    }
}
