//! End-to-end tests of the real stack: wrangler dev (workerd, DO SQLite, KV) + vf-sandbox + vf-agent + the fake
//! `claude`, all real processes on loopback. Run through `make test` (which builds everything first).

mod callback;
mod chat;

use vf_e2e::runner::{report, run_all};
use vf_e2e::{Stack, StackOptions, Test};

#[tokio::main]
async fn main() {
    let stack = Stack::start(StackOptions::default()).await;
    let tests: Vec<Test<Stack>> = vec![
        Test {
            name: "chat_streams_the_answer_live_through_the_do",
            run: |s| Box::pin(chat::streams_the_answer_live(s)),
        },
        Test {
            name: "callback_refuses_bad_tokens_before_waking_a_do",
            run: |s| Box::pin(callback::refuses_bad_tokens_before_waking_a_do(s)),
        },
    ];
    let results = run_all(&stack, &tests).await;
    let ok = report(&results);
    if !ok {
        let logs = stack.logs();
        let tail: Vec<&str> = logs.lines().rev().take(60).collect();
        eprintln!("--- last lines of the stack's logs ---");
        for line in tail.into_iter().rev() {
            eprintln!("{line}");
        }
    }
    drop(stack);
    std::process::exit(if ok { 0 } else { 1 });
}
