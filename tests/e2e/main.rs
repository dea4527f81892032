//! End-to-end tests of the real stack: wrangler dev (workerd, DO SQLite, KV) + vf-sandbox + vf-agent + the fake
//! `claude`, all real processes on loopback. Run through `make test` (which builds everything first).

mod approvals;
mod browser;
mod browser_sessions;
mod chat;
mod durable;
mod failures;
mod headers;
mod input;
mod ownership;
mod questions;
mod rendering;
mod secrets;
mod sessions;
mod stall;
mod tokens;

use vf_e2e::browser::UiLoop;
use vf_e2e::runner::{report, run_all, selected, TestResult};
use vf_e2e::{Stack, StackOptions, Test};

/// Tests named after their functions, or with a prefix naming where they run (`prefix "…": …`).
macro_rules! tests {
    ($($module:ident :: $name:ident),* $(,)?) => { tests![prefix "": $($module::$name),*] };
    (prefix $prefix:literal: $($module:ident :: $name:ident),* $(,)?) => {
        vec![$(Test { name: concat!($prefix, stringify!($name)), run: |s| Box::pin($module::$name(s)) }),*]
    };
}

/// Starts a stack for `tests` (unless none is selected), runs them, and stops it.
async fn run_stack(options: StackOptions, tests: Vec<Test<Stack>>) -> Vec<TestResult> {
    if !tests.iter().any(|t| selected(t.name)) {
        return Vec::new();
    }
    let stack = Stack::start(options).await;
    run_on(&stack, &stack, &tests).await
}

/// Runs `tests` on `context`, whose stack is `stack`; prints the stack's last log lines if one failed.
async fn run_on<C>(stack: &Stack, context: &C, tests: &[Test<C>]) -> Vec<TestResult> {
    let results = run_all(context, tests).await;
    if results.iter().any(|r| !r.passed) {
        let logs = stack.logs();
        let tail: Vec<&str> = logs.lines().rev().take(80).collect();
        eprintln!("--- last lines of the stack's logs ---");
        for line in tail.into_iter().rev() {
            eprintln!("{line}");
        }
    }
    results
}

#[tokio::main]
async fn main() {
    let mut results = run_stack(
        StackOptions::default(),
        tests![
            chat::streams_the_answer_live,
            durable::resume_after_random_disconnects,
            durable::concurrent_subscribers_see_identical_sequences,
            durable::a_disconnect_does_not_stop_the_execution,
            durable::one_execution_at_a_time,
            durable::the_next_turn_resumes_claudes_session,
            durable::a_lost_transcript_does_not_poison_the_session,
            durable::clear_empties_the_transcript,
            durable::a_bad_after_is_400,
            durable::idle_streams_carry_heartbeats_uncompressed,
            failures::cancel_kills_the_sandbox_process,
            failures::a_killed_agent_yields_agent_crashed,
            failures::cli_crash_and_garbage_end_cleanly,
            failures::sandbox_down_is_dispatch_failed,
            failures::an_oversized_line_leaves_a_marker,
            sessions::sessions_queued_prompts_run_in_order_and_a_removed_one_never_runs,
            sessions::sessions_the_queue_is_capped_and_emptied_by_delete,
            sessions::sessions_replaying_an_idempotency_key_starts_no_second_turn,
            sessions::sessions_the_list_is_live_and_tells_the_truth,
            sessions::sessions_the_transcript_exports_as_markdown,
            // Browser: the app in headless Chromium (Debian's chromium + chromedriver).
            browser::browser_streams_an_answer_live,
            browser::browser_reload_mid_answer_loses_nothing,
            browser::browser_second_window_sees_the_same_stream,
            browser::browser_stop_ends_the_answer,
            browser::browser_flag_off_uses_the_legacy_websocket,
            browser::browser_chat_fits_a_375px_phone,
            browser::browser_an_approval_is_decided_from_a_second_window,
            browser::browser_the_turn_controls_reach_the_cli,
            browser::browser_session_rules_are_listed_and_forgotten,
            browser::browser_questions_are_answered_from_a_second_window,
            browser::browser_a_plan_is_approved_then_one_is_sent_back,
            browser_sessions::browser_sessions_the_list_follows_a_session_live,
            browser_sessions::browser_sessions_a_prompt_sent_while_an_answer_runs_is_queued,
            browser_sessions::browser_sessions_the_outbox_sends_a_prompt_once_when_back_online,
            rendering::browser_cards_show_code_diffs_commands_and_a_subagents_calls,
            rendering::browser_finished_paragraphs_stay_put_while_the_answer_streams,
            rendering::browser_the_clis_status_shows_under_the_running_answer,
            rendering::status_events_are_live_and_never_stored,
            // Security and hostile input (issue 6); the log scan last, after everything above has logged.
            tokens::security_callback_tokens_are_refused_before_a_do_wakes,
            tokens::security_execution_tokens_are_bound_to_their_execution,
            tokens::security_session_cookies_are_refused_when_forged,
            tokens::security_cookie_is_strict_bounded_and_dies_at_logout,
            ownership::security_another_users_session_is_404_on_every_route,
            ownership::security_cross_site_requests_are_refused,
            headers::security_pages_and_api_carry_security_headers,
            input::security_bad_input_gets_a_clear_4xx_and_loses_nothing,
            input::security_hostile_agent_lines_are_contained,
            input::security_a_callback_body_that_never_ends_is_bounded,
            input::security_a_chat_flood_starts_one_execution,
            secrets::security_the_claude_token_stays_server_side,
            secrets::security_no_secret_appears_in_a_log,
            // Last on this stack: they restart wrangler.
            sessions::sessions_the_queue_survives_a_worker_restart,
            failures::an_answer_survives_a_worker_restart,
        ],
    )
    .await;
    results.extend(
        run_stack(
            failures::broken_agent_options(),
            tests![
                failures::an_agent_that_never_calls_back_times_out,
                failures::an_agent_that_exits_early_is_crashed,
            ],
        )
        .await,
    );
    results.extend(
        run_stack(
            approvals::options(),
            tests![
                approvals::approvals_a_second_client_approves_and_the_answer_continues,
                approvals::approvals_a_deny_with_a_message_reaches_claude,
                approvals::approvals_allow_for_this_session_answers_later_requests,
                approvals::approvals_cancel_while_pending_ends_the_turn,
                approvals::approvals_an_unanswered_approval_times_out,
                questions::questions_are_answered_from_a_second_client,
                questions::plans_are_approved_or_sent_back,
                sessions::sessions_the_list_shows_a_session_awaiting_approval,
                // Last on this stack: it restarts wrangler.
                approvals::approvals_a_pending_approval_survives_a_worker_restart,
            ],
        )
        .await,
    );
    // The UI development loop: the browser's streaming and legacy cases again, through `make ui`.
    let ui_tests: Vec<Test<UiLoop>> = tests![prefix "make_ui_":
        browser::browser_streams_an_answer_live,
        browser::browser_reload_mid_answer_loses_nothing,
        browser::browser_flag_off_uses_the_legacy_websocket,
        browser::streams_line_by_line_and_admits_only_its_origin,
        browser::a_new_build_reloads_the_page,
    ];
    if ui_tests.iter().any(|t| selected(t.name)) {
        let ui = UiLoop::start().await;
        results.extend(run_on(&ui.stack, &ui, &ui_tests).await);
    }
    let stall_tests: Vec<Test<stall::Stalled>> = vec![Test {
        name: "a_stalled_callback_stores_every_line_once",
        run: |s| Box::pin(stall::a_stalled_callback_stores_every_line_once(s)),
    }];
    if stall_tests.iter().any(|t| selected(t.name)) {
        let stalled = stall::Stalled::start().await;
        results.extend(run_on(&stalled.stack, &stalled, &stall_tests).await);
    }
    std::process::exit(if report(&results) { 0 } else { 1 });
}
