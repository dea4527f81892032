//! The app's streaming cost in headless Chromium on the real stack: main-thread busy time per streamed delta at
//! the first turn of a session and at its fiftieth, and the long tasks while they stream.
//!
//! Busy time is Chromium's own account (`Performance.getMetrics`: `TaskDuration`, the time the renderer's main
//! thread spent in tasks, split into script, layout and style), read before and after one answer; long tasks come
//! from the page's `PerformanceObserver`. The waits poll one cheap script every 50 ms, which is counted too.

use std::collections::HashMap;

use serde_json::{json, Value};
use vf_e2e::{Browser, Page};

use crate::paths::Bench;
use crate::{goal, heading, Row};

/// What the measured answers are: 400 deltas of 40 bytes, 10 ms apart (the figure), after a pause.
const STREAM: &str = "400:40:10000:100000";
const DELTAS: f64 = 400.0;
/// The 48 turns between the two measured ones, written back to back (same size, so turn 50 shows 49 such answers).
const FILL: &str = "400:40:0:0";
const TURNS: usize = 50;

/// Collects the page's long tasks into `window.__vfLong` (durations in ms); a page load starts it afresh.
const OBSERVE_LONG_TASKS: &str =
    "window.__vfLong = []; new PerformanceObserver(l => l.getEntries()\
    .forEach(e => window.__vfLong.push(e.duration))).observe({type: 'longtask'});";

/// The main thread's work for one streamed answer.
struct Cost {
    busy_ms: f64,
    script_ms: f64,
    layout_style_ms: f64,
    long_tasks: Vec<f64>,
}

impl Cost {
    fn per_delta(&self) -> f64 {
        self.busy_ms / DELTAS
    }

    fn show(&self) -> String {
        format!(
            "{:.3} ms (script {:.3}, layout + style {:.3})",
            self.per_delta(),
            self.script_ms / DELTAS,
            self.layout_style_ms / DELTAS
        )
    }
}

/// Chromium's cumulative counters for the page, in ms.
async fn metrics(page: &Page) -> HashMap<String, f64> {
    let result = page.cdp("Performance.getMetrics", json!({})).await;
    result["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .filter_map(|m| {
            Some((
                m["name"].as_str()?.to_string(),
                m["value"].as_f64()? * 1000.0,
            ))
        })
        .collect()
}

/// Sends a prompt from the page and measures the main thread until its answer is done; `messages`: how many the
/// page shows then.
async fn stream_one(page: &Page, messages: usize) -> Cost {
    page.js("window.__vfLong = []; return 0;").await;
    let before = metrics(page).await;
    page.send("bench").await;
    page.wait_until(
        "the streamed answer to finish",
        &format!(
            "(m => m.length === {messages} && m[m.length - 1].dataset.status === 'done')\
             (document.querySelectorAll('[data-testid=message]'))"
        ),
    )
    .await;
    let after = metrics(page).await;
    let spent = |name: &str| {
        after.get(name).copied().unwrap_or(0.0) - before.get(name).copied().unwrap_or(0.0)
    };
    let long: Value = page.js("return window.__vfLong;").await;
    Cost {
        busy_ms: spent("TaskDuration"),
        script_ms: spent("ScriptDuration"),
        layout_style_ms: spent("LayoutDuration") + spent("RecalcStyleDuration"),
        long_tasks: serde_json::from_value(long).unwrap_or_default(),
    }
}

/// The browser rows: turn 1 and turn 50 of one session, their ratio, and the long tasks.
pub async fn rows(bench: &Bench, rows: &mut Vec<Row>) {
    let browser = Browser::start().await;
    let page = browser.page(&bench.stack.base).await;
    page.sign_in().await;
    let session = page.new_session().await;
    page.cdp("Performance.enable", json!({})).await;
    page.js(&format!("{OBSERVE_LONG_TASKS} return 0;")).await;
    bench.synthetic(STREAM).await;
    let first = stream_one(&page, 2).await;

    bench.synthetic(FILL).await;
    let api = page.api().await;
    for _ in 2..TURNS {
        api.turn(&session, "fill").await;
    }
    // A fresh load shows the 49 answers from the log, as a user coming back to a long session sees them.
    page.open(&format!("/s/{session}")).await;
    page.wait_until(
        "the session's 49 turns",
        &format!(
            "document.querySelectorAll('[data-testid=message]').length === {}",
            2 * (TURNS - 1)
        ),
    )
    .await;
    page.cdp("Performance.enable", json!({})).await;
    page.js(&format!("{OBSERVE_LONG_TASKS} return 0;")).await;
    bench.synthetic(STREAM).await;
    let fiftieth = stream_one(&page, 2 * TURNS).await;

    rows.push(heading(
        "Browser: main-thread busy time per streamed delta (400 deltas of 40 bytes, 10 ms apart; headless Chromium)",
    ));
    rows.push(goal(
        "turn 1 of a session",
        first.show(),
        "≤ 0.5 ms",
        first.per_delta() <= 0.5,
    ));
    rows.push(goal(
        format!("turn {TURNS} (the page shows {} answers)", TURNS - 1),
        fiftieth.show(),
        "≤ 0.5 ms",
        fiftieth.per_delta() <= 0.5,
    ));
    let growth = fiftieth.per_delta() / first.per_delta().max(f64::EPSILON);
    rows.push(goal(
        format!("turn {TURNS} / turn 1"),
        format!("{growth:.2}×"),
        "≤ 1.2×",
        growth <= 1.2,
    ));
    let long: Vec<f64> = first
        .long_tasks
        .iter()
        .chain(&fiftieth.long_tasks)
        .copied()
        .collect();
    let longest = long.iter().copied().fold(0.0, f64::max);
    rows.push(goal(
        "long tasks (over 50 ms) while the two answers stream",
        format!("{} (longest {longest:.0} ms)", long.len()),
        "none",
        long.is_empty(),
    ));
}
