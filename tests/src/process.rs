//! The stack's processes as `/proc` shows them: an execution's agent, a child by name, a process's group,
//! environment and liveness.

use std::collections::HashMap;
use std::time::Duration;

use vf_protocol::api::SessionRecord;

use crate::client::{Client, EventStream};
use crate::events::execution_id;
use crate::wait::until;

/// How long a test waits for a process to appear or to end.
const WITHIN: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

/// The fields of `/proc/<pid>/stat` the tests read.
struct Stat {
    comm: String,
    state: char,
    ppid: u32,
    pgrp: u32,
}

fn stat(pid: u32) -> Option<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp …`; the command name may hold spaces and parentheses.
    let (head, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    Some(Stat {
        comm: head.split_once('(')?.1.to_string(),
        state: fields.next()?.chars().next()?,
        ppid: fields.next()?.parse().ok()?,
        pgrp: fields.next()?.parse().ok()?,
    })
}

/// Every pid in `/proc`.
fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
}

/// A live process's environment.
pub fn environ(pid: u32) -> HashMap<String, String> {
    read_environ(pid).unwrap_or_else(|| panic!("process {pid} is alive and ours"))
}

fn read_environ(pid: u32) -> Option<HashMap<String, String>> {
    let bytes = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let vars = bytes
        .split(|&b| b == 0)
        .filter_map(|kv| {
            let (k, v) = std::str::from_utf8(kv).ok()?.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect();
    Some(vars)
}

/// The pid of the `vf-agent` running `execution_id` (found by its environment), if one is alive.
pub fn agent_pid(execution_id: &str) -> Option<u32> {
    pids().find(|&pid| {
        stat(pid).is_some_and(|s| s.comm == "vf-agent")
            && read_environ(pid).is_some_and(|env| {
                env.get("VF_EXECUTION_ID").map(String::as_str) == Some(execution_id)
            })
    })
}

/// The pid of the `vf-agent` of `execution_id`, once it runs.
pub async fn wait_for_agent(execution_id: &str) -> u32 {
    until(
        format!("a vf-agent for execution {execution_id}"),
        WITHIN,
        POLL,
        || async { agent_pid(execution_id) },
    )
    .await
}

/// The pid of a live child of `parent` named `comm`, once it runs.
pub async fn wait_for_child(parent: u32, comm: &str) -> u32 {
    let child =
        || pids().find(|&pid| stat(pid).is_some_and(|s| s.ppid == parent && s.comm == comm));
    until(
        format!("a child {comm} of {parent}"),
        WITHIN,
        POLL,
        || async { child() },
    )
    .await
}

/// Freezes `pid` (SIGSTOP) and waits until the kernel shows it stopped, so that what follows happens to a frozen
/// process and not to one the signal has yet to reach.
pub async fn freeze(pid: u32) {
    // SAFETY: signalling a process the caller found and owns (a test's agent); no memory is involved.
    let sent = unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
    assert_eq!(
        sent,
        0,
        "SIGSTOP {pid}: {}",
        std::io::Error::last_os_error()
    );
    until(format!("process {pid} to stop"), WITHIN, POLL, || async {
        stat(pid).is_some_and(|s| s.state == 'T').then_some(())
    })
    .await
}

/// The state letter `/proc/{pid}/stat` shows (`R`, `S`, `T` stopped, `Z`…), while the process exists.
pub fn state(pid: u32) -> Option<char> {
    stat(pid).map(|s| s.state)
}

/// Waits until `pid` has ended; panics if it is still alive after 10 s.
pub async fn wait_for_exit(pid: u32) {
    until(format!("process {pid} to end"), WITHIN, POLL, || async {
        (!alive(pid)).then_some(())
    })
    .await
}

/// The process group of a live process.
pub fn process_group(pid: u32) -> Option<u32> {
    stat(pid).map(|s| s.pgrp)
}

/// The live processes of process group `group` whose name is `comm`.
pub fn group_members(group: u32, comm: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            stat(pid).is_some_and(|s| s.pgrp == group && s.state != 'Z' && s.comm == comm)
        })
        .collect()
}

/// The loopback TCP ports process `pid` listens on.
pub fn listening_ports(pid: u32) -> Vec<u16> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let inodes: std::collections::HashSet<u64> = fds
        .flatten()
        .filter_map(|fd| {
            let target = std::fs::read_link(fd.path()).ok()?;
            target
                .to_string_lossy()
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            // sl, local address, remote address, state, …, inode (the tenth field).
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            let listening = *state == "0A" && inodes.contains(&inode.parse().ok()?);
            listening
                .then(|| u16::from_str_radix(local.rsplit(':').next()?, 16).ok())
                .flatten()
        })
        .collect()
}

/// A process's resident memory (`VmRSS`), bytes; 0 once it is gone.
pub fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Whether a process is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z')
}

/// A new user's chat whose agent is running: the stream is past its `connected` line.
pub struct Running {
    pub user: Client,
    pub session: SessionRecord,
    pub stream: EventStream,
    pub execution: String,
    /// The agent's pid.
    pub agent: u32,
}

/// Starts a chat of `user` in `session_id` and waits for its agent's process: the stream (past `connected`),
/// the execution id and the agent's pid.
pub async fn chat_with_agent(
    user: &Client,
    session_id: &str,
    prompt: &str,
) -> (EventStream, String, u32) {
    let mut stream = user.chat(session_id, prompt).await;
    let execution = execution_id(&stream.next().await.expect("connected"));
    let agent = wait_for_agent(&execution).await;
    (stream, execution, agent)
}

/// Signs a new user in, starts a chat with `prompt`, and waits for its agent's process.
pub async fn running_chat(base: &str, prompt: &str) -> Running {
    let user = Client::signed_in(base).await;
    let session = user.create_session().await;
    let (stream, execution, agent) = chat_with_agent(&user, &session.id, prompt).await;
    Running {
        user,
        session,
        stream,
        execution,
        agent,
    }
}
