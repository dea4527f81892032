//! Secrets: the Claude token stays server side, and no secret or token we issued appears in a log.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use vf_e2e::client::uuid_like;
use vf_e2e::process::{chat_with_agent, environ, wait_for_child};
use vf_e2e::stack::{contains, files_under};
use vf_e2e::wait::until_true;
use vf_e2e::{Client, Stack};
use vf_protocol::api::CLAUDE_TOKEN_PREFIX;

/// The base64url header of every token we issue (`{"alg":"HS256","typ":"JWT"}`): finding it in a log means a
/// session cookie or an execution token leaked there.
const OUR_TOKEN_HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// The ids of every process vf-sandbox has started.
async fn process_ids(stack: &Stack) -> HashSet<String> {
    stack
        .sandbox_processes()
        .await
        .iter()
        .filter_map(|p| p["id"].as_str().map(String::from))
        .collect()
}

/// Every file under `dirs`, with its bytes.
fn read_files_under(dirs: &[&Path]) -> Vec<(String, Vec<u8>)> {
    dirs.iter()
        .flat_map(|dir| files_under(dir))
        .filter_map(|path| Some((path.display().to_string(), std::fs::read(&path).ok()?)))
        .collect()
}

/// Item 5: The Claude token stays server side: the login answer and `/api/me` show only a masked form; it reaches
/// the agent only through its environment (and the CLI's, which does not get the callback token); it is in no
/// response, no stored event, no Durable Object file, no file of the sandbox workspace and no CLI argument.
pub async fn security_the_claude_token_stays_server_side(stack: &Stack) {
    let user = Client::login(&stack.base).await;
    let token = user.claude_token.as_str();
    let secret_part = &token[CLAUDE_TOKEN_PREFIX.len()..token.len() - 4];
    let me = user.client.get("/api/me").await.text().await.unwrap();
    let me_json: Value = serde_json::from_str(&me).unwrap();
    let hint = me_json["tokenHint"].as_str().expect("a masked hint");
    assert_eq!(
        hint,
        format!("{CLAUDE_TOKEN_PREFIX}…{}", &token[token.len() - 4..])
    );
    assert!(!me.contains(secret_part), "/api/me shows the token: {me}");

    let session = user.client.create_session().await;
    let (mut stream, _, agent) =
        chat_with_agent(&user.client, &session.id, "[fixture:hang] secrets").await;
    let agent_env = environ(agent);
    assert_eq!(
        agent_env["CLAUDE_CODE_OAUTH_TOKEN"], token,
        "the agent gets the token in its environment"
    );
    let execution_token = agent_env["VF_STREAM_JWT"].clone();
    let cli = wait_for_child(agent, "vf-fake-claude").await;
    let cli_env = environ(cli);
    assert_eq!(
        cli_env["CLAUDE_CODE_OAUTH_TOKEN"], token,
        "the CLI needs the token"
    );
    assert!(
        !cli_env.contains_key("VF_STREAM_JWT"),
        "the CLI (and its tools) never see the callback token"
    );
    user.client.cancel(&session.id).await;

    let mut seen = Vec::new();
    while let Some(line) = stream.next().await {
        seen.push(serde_json::to_string(&line.envelope).unwrap());
    }
    seen.extend(user.client.snapshot(&session.id).await);
    seen.push(user.client.get("/api/sessions").await.text().await.unwrap());
    seen.push(user.client.get("/api/flags").await.text().await.unwrap());
    for text in &seen {
        assert!(
            !text.contains(secret_part),
            "a response carries the Claude token: {text}"
        );
        assert!(
            !text.contains(&execution_token),
            "a response carries the execution token: {text}"
        );
    }
    let args = std::fs::read_to_string(stack.args_log()).unwrap_or_default();
    assert!(
        !args.contains(secret_part),
        "the token is not a CLI argument"
    );
    let files = read_files_under(&[&stack.dir.join("workspace"), &stack.dir.join("state")]);
    for (path, bytes) in &files {
        if path.contains("ChatSessionAgent") || path.contains("workspace") {
            assert!(
                !contains(bytes, secret_part),
                "{path} holds the Claude token"
            );
        }
    }
}

/// Items 1 and 5: No secret in any log line: the stack's four secrets, any test user's Claude token (they all start
/// with the `sk-ant-oat01-` prefix), and any session cookie or execution token we issued (they all start with our
/// token header) appear nowhere in the wrangler, sandbox and agent logs, after every test above has run.
pub async fn security_no_secret_appears_in_a_log(stack: &Stack) {
    // Make sure this stack has logged in, chatted, called back and logged out at least once.
    let user = Client::login(&stack.base).await;
    let session = user.client.create_session().await;
    let earlier: HashSet<String> = process_ids(stack).await;
    user.client.turn(&session.id, "[fixture:text] log me").await;
    let logout = user.client.post("/api/auth/logout", json!({})).await;
    assert_eq!(logout.status().as_u16(), 204);

    // The logs are complete once they show what came last: wrangler has logged a request answered after all of
    // the above, and the chat's agent has exited (its output goes straight to its log file, so it is all there).
    let marker = format!("/api/log-flushed-{}", uuid_like());
    Client::new(&stack.base).get(&marker).await;
    stack.wait_for_log(&marker).await;
    until_true(
        "the chat's agent to exit",
        Duration::from_secs(10),
        || async {
            let started: Vec<Value> = stack
                .sandbox_processes()
                .await
                .into_iter()
                .filter(|p| !earlier.contains(p["id"].as_str().unwrap_or_default()))
                .collect();
            !started.is_empty() && started.iter().all(|p| p["status"] != "running")
        },
    )
    .await;

    let mut logs = vec![(
        "wrangler and vf-sandbox".to_string(),
        stack.logs().into_bytes(),
    )];
    logs.extend(read_files_under(&[&stack.dir.join("process-logs")]));
    let all: usize = logs.iter().map(|(_, b)| b.len()).sum();
    assert!(
        contains(&logs[0].1, "/api/v15/chat") && contains(&logs[0].1, "/internal/stream"),
        "the logs record the traffic (so this scan looks at something)"
    );
    let s = &stack.secrets;
    let needles = [
        ("JWT_SECRET", s.jwt.as_str()),
        ("SESSION_SECRET", s.session.as_str()),
        ("SANDBOX_TOKEN", s.sandbox.as_str()),
        ("ADMIN_TOKEN", s.admin.as_str()),
        ("a Claude token", CLAUDE_TOKEN_PREFIX),
        ("this user's Claude token", user.claude_token.as_str()),
        ("a session cookie or execution token", OUR_TOKEN_HEADER),
        ("this user's session cookie", user.session_token.as_str()),
    ];
    for (name, bytes) in &logs {
        for (what, needle) in needles {
            assert!(!contains(bytes, needle), "{what} appears in {name}");
        }
    }
    println!("    {} log files, {all} bytes: no secret", logs.len());
}
