//! The table of processes started through the control API.
//!
//! Each runs in its own process group, is reaped by its own task, and is stopped as a whole group.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::process::{ChildStdout, Command};
use tokio::sync::watch;

/// How long a process group may take to exit after SIGTERM before it gets SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// What `GET /api/process/{id}` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessInfo {
    pub id: String,
    pub pid: u32,
    pub status: Status,
    /// `None` while running, and when a signal ended the process.
    pub exit_code: Option<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Exited,
    /// Stopped through the API (or on shutdown), or ended by a signal.
    Killed,
}

/// A process to start: `command` runs under `/bin/sh -c` with exactly `env`.
pub struct Spec<'a> {
    pub command: &'a str,
    pub cwd: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    /// Hand stdout back to the caller instead of appending it to the log (stderr always goes to the log).
    pub capture_stdout: bool,
}

#[derive(Debug, Clone, Copy)]
struct Exit {
    code: Option<i32>,
    signaled: bool,
}

struct Proc {
    pid: u32,
    killed: AtomicBool,
    exit: watch::Receiver<Option<Exit>>,
}

impl Proc {
    fn info(&self, id: &str) -> ProcessInfo {
        let exit = *self.exit.borrow();
        let status = match exit {
            None => Status::Running,
            Some(e) if e.signaled || self.killed.load(Ordering::Relaxed) => Status::Killed,
            Some(_) => Status::Exited,
        };
        ProcessInfo {
            id: id.to_string(),
            pid: self.pid,
            status,
            exit_code: exit.and_then(|e| e.code),
        }
    }

    /// SIGTERM to the whole group, SIGKILL after [`KILL_GRACE`] if any member is left, then waits until the
    /// leader is reaped so that the status the caller reads is final.
    async fn stop(&self) {
        if !group_alive(self.pid) {
            return;
        }
        if self.exit.borrow().is_none() {
            self.killed.store(true, Ordering::Relaxed);
        }
        signal_group(self.pid, libc::SIGTERM);
        let deadline = tokio::time::Instant::now() + KILL_GRACE;
        while group_alive(self.pid) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        if group_alive(self.pid) {
            signal_group(self.pid, libc::SIGKILL);
        }
        let mut exit = self.exit.clone();
        let _ = exit.wait_for(Option::is_some).await;
    }
}

/// Sends `signal` to every process of the group led by `pgid`.
fn signal_group(pgid: u32, signal: libc::c_int) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid) {
        // SAFETY: kill(2) with a negative pid only signals that process group; it touches no memory of ours.
        unsafe { libc::kill(-pgid, signal) };
    }
}

/// Whether any process of the group is still alive. Zombies do not count: they are dead, only waiting for their
/// parent (for orphans, init) to reap them, and `kill(-pgid, 0)` would count them until then.
fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        // SAFETY: signal 0 only checks that the group exists.
        return libc::pid_t::try_from(pgid).is_ok_and(|g| unsafe { libc::kill(-g, 0) } == 0);
    };
    entries.flatten().any(|entry| {
        // `/proc/<pid>/stat` is `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let mut fields = stat
            .rsplit_once(") ")
            .map_or("", |(_, rest)| rest)
            .split(' ');
        let (state, pgrp) = (fields.next(), fields.nth(1));
        state.is_some_and(|s| s != "Z") && pgrp.and_then(|p| p.parse().ok()) == Some(pgid)
    })
}

/// The table of started processes. Entries stay after exit so that their final status can still be read.
pub struct Processes {
    log_dir: PathBuf,
    table: Mutex<HashMap<String, Arc<Proc>>>,
}

impl Processes {
    pub fn new(log_dir: PathBuf) -> Self {
        Processes {
            log_dir,
            table: Mutex::default(),
        }
    }

    /// Starts a process in its own process group, stdin null, output appended to `<log_dir>/<id>.log`.
    pub fn start(&self, spec: Spec<'_>) -> std::io::Result<(ProcessInfo, Option<ChildStdout>)> {
        let id = uuid::Uuid::new_v4().to_string();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.join(format!("{id}.log")))?;
        let stdout = if spec.capture_stdout {
            Stdio::piped()
        } else {
            log.try_clone()?.into()
        };
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(spec.command)
            .current_dir(spec.cwd)
            .env_clear()
            .envs(spec.env)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            // Its own group, so that stopping it reaches everything it started, and a signal meant for the
            // server (Ctrl-C in a terminal) does not reach it.
            .process_group(0)
            .spawn()?;
        let pid = child.id().expect("a just-spawned child has a pid");
        let stdout = child.stdout.take();
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            // Waiting is what reaps the child: no zombies, whether or not anyone asks for its status.
            let exit = match child.wait().await {
                Ok(status) => Exit {
                    code: status.code(),
                    signaled: status.signal().is_some(),
                },
                Err(e) => {
                    eprintln!("vf-sandbox: waiting for process {pid} failed: {e}");
                    Exit {
                        code: None,
                        signaled: false,
                    }
                }
            };
            let _ = tx.send(Some(exit));
        });
        let proc = Arc::new(Proc {
            pid,
            killed: AtomicBool::new(false),
            exit: rx,
        });
        let info = proc.info(&id);
        self.lock().insert(id, proc);
        Ok((info, stdout))
    }

    pub fn get(&self, id: &str) -> Option<ProcessInfo> {
        self.lock().get(id).map(|p| p.info(id))
    }

    /// Every process started, in no particular order.
    pub fn list(&self) -> Vec<ProcessInfo> {
        self.lock().iter().map(|(id, p)| p.info(id)).collect()
    }

    /// Stops the process's whole group; the status after that, or `None` for an unknown id.
    pub async fn kill(&self, id: &str) -> Option<ProcessInfo> {
        let proc = self.lock().get(id).cloned()?;
        proc.stop().await;
        Some(proc.info(id))
    }

    /// Stops every process group that still has members.
    pub async fn shutdown(&self) {
        let all: Vec<_> = self.lock().values().cloned().collect();
        futures::future::join_all(all.iter().map(|p| p.stop())).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Proc>>> {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
