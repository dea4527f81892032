//! The stack under test: a `vf-sandbox` process and a `wrangler dev` (workerd) process, each in its own process
//! group so that stopping them leaves nothing behind.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::process::process_group;
use crate::wait::{until, until_true};

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `wrangler dev` of the Worker in `dir` on loopback `port`, with its state in `state` and its output in `log`,
/// in its own process group (so stopping it stops its workerd), without metrics or prompts.
pub fn wrangler_dev(dir: &Path, port: u16, state: &Path, log: std::fs::File) -> Command {
    let mut command = Command::new(repo_root().join("node_modules/.bin/wrangler"));
    command
        .current_dir(dir)
        .args(["dev", "--ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--inspector-port", &free_port().to_string()])
        .arg("--persist-to")
        .arg(state)
        .args(["--show-interactive-dev-session=false", "--log-level", "log"])
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("CI", "true")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .process_group(0);
    command
}

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub(crate) fn random_hex(bytes: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("/dev/urandom is readable");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Knobs of one stack.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// Delay between fake-CLI lines, ms.
    pub fake_delay_ms: u64,
    /// Bridge timeout and watchdog window of the DO, ms (short in tests so the error chain is observable).
    pub bridge_timeout_ms: u64,
    pub watchdog_ms: u64,
    pub heartbeat_ms: u64,
    /// The agent's heartbeat interval, s.
    pub agent_heartbeat_secs: u64,
    /// A shell script that replaces the agent the DO starts (to stage agents that misbehave).
    pub agent_script: Option<String>,
    /// The cargo profile whose binaries run (`target/<profile>/vf-sandbox`…): `debug` for tests, `release` for
    /// the benchmark.
    pub profile: &'static str,
    /// More Worker variables (e.g. `PUBLIC_URL`, to route the agent's callback through a test proxy).
    pub worker_vars: Vec<(String, String)>,
    /// More variables for vf-sandbox, which hands every `VF_*` one to its agents.
    pub sandbox_env: Vec<(String, String)>,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            fake_delay_ms: 40,
            bridge_timeout_ms: 8_000,
            watchdog_ms: 6_000,
            heartbeat_ms: 1_000,
            agent_heartbeat_secs: 1,
            agent_script: None,
            profile: "debug",
            worker_vars: Vec::new(),
            sandbox_env: Vec::new(),
        }
    }
}

/// The secrets the stack runs with; tests know them so they can forge tokens.
#[derive(Clone, Debug)]
pub struct Secrets {
    pub jwt: String,
    pub session: String,
    pub sandbox: String,
    pub admin: String,
}

pub struct Stack {
    pub base: String,
    pub sandbox_url: String,
    pub secrets: Secrets,
    pub dir: PathBuf,
    options: StackOptions,
    wrangler_port: u16,
    sandbox_port: u16,
    sandbox: Mutex<Option<Child>>,
    wrangler: Mutex<Option<Child>>,
}

impl Stack {
    /// Starts vf-sandbox and wrangler dev and waits until both answer.
    pub async fn start(options: StackOptions) -> Stack {
        let root = repo_root();
        let bin = format!("target/{}", options.profile);
        for needed in [
            "worker/build/index.js".to_string(),
            "app/dist/index.html".to_string(),
            format!("{bin}/vf-sandbox"),
            format!("{bin}/vf-agent"),
        ] {
            assert!(
                root.join(&needed).exists(),
                "{needed} is missing: run `make build` first (make test does)"
            );
        }
        let dir = std::env::temp_dir().join(format!("vf-e2e-{}", random_hex(6)));
        std::fs::create_dir_all(dir.join("workspace")).expect("temp dir");
        let secrets = Secrets {
            jwt: random_hex(32),
            session: random_hex(32),
            sandbox: random_hex(32),
            admin: random_hex(32),
        };
        let sandbox_port = free_port();
        let mut stack = Stack {
            base: String::new(),
            sandbox_url: format!("http://127.0.0.1:{sandbox_port}"),
            secrets,
            dir,
            options,
            wrangler_port: free_port(),
            sandbox_port,
            sandbox: Mutex::new(None),
            wrangler: Mutex::new(None),
        };
        stack.base = format!("http://127.0.0.1:{}", stack.wrangler_port);
        stack.start_sandbox();
        stack.start_wrangler().await;
        stack
    }

    /// Where the fake `claude` appends the arguments of every run, one JSON array a line.
    pub fn args_log(&self) -> PathBuf {
        self.dir.join("claude-args.jsonl")
    }

    /// Starts vf-sandbox (again) on the stack's sandbox port.
    pub fn start_sandbox(&self) {
        self.start_sandbox_with(&[]);
    }

    /// The address of wrangler dev.
    pub fn worker_addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.wrangler_port).into()
    }

    /// Starts vf-sandbox with extra environment variables; it hands every `VF_*` one to the agents it starts.
    pub fn start_sandbox_with(&self, env: &[(&str, &str)]) {
        let port = self.sandbox_port;
        let bin = self.bin_dir();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = std::fs::File::create(self.dir.join("sandbox.log")).expect("log file");
        let child = Command::new(bin.join("vf-sandbox"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--workspace")
            .arg(self.dir.join("workspace"))
            .arg("--log-dir")
            .arg(self.dir.join("process-logs"))
            .env("SANDBOX_TOKEN", &self.secrets.sandbox)
            .env("PATH", path)
            .env("VF_CLAUDE_BIN", bin.join("vf-fake-claude"))
            .env("VF_FAKE_DELAY_MS", self.options.fake_delay_ms.to_string())
            .env(
                "VF_HEARTBEAT_SECS",
                self.options.agent_heartbeat_secs.to_string(),
            )
            .env("VF_FAKE_ARGS_LOG", self.args_log())
            .envs(self.options.sandbox_env.iter().map(|(k, v)| (k, v)))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("vf-sandbox starts");
        *lock(&self.sandbox) = Some(child);
    }

    /// Where the stack's native binaries are (`target/<profile>`).
    pub fn bin_dir(&self) -> PathBuf {
        repo_root().join("target").join(self.options.profile)
    }

    /// Stops vf-sandbox (the sandbox is down until `start_sandbox`).
    pub fn stop_sandbox(&self) {
        if let Some(child) = lock(&self.sandbox).take() {
            kill_group(child, true);
        }
    }

    /// The AGENT_COMMAND line of the env file: the staged script, written to a file (an env file would expand the
    /// script's `$` references itself).
    fn agent_command(&self) -> String {
        let Some(script) = &self.options.agent_script else {
            return String::new();
        };
        let path = self.dir.join("agent.sh");
        std::fs::write(&path, script).expect("agent script");
        format!("AGENT_COMMAND=sh {}\n", path.display())
    }

    /// Starts wrangler dev on the stack's port and state directory.
    pub async fn start_wrangler(&self) {
        let root = repo_root();
        let env_file = self.dir.join("dev.vars");
        let o = &self.options;
        std::fs::write(
            &env_file,
            format!(
                "JWT_SECRET={}\nSESSION_SECRET={}\nSANDBOX_TOKEN={}\nADMIN_TOKEN={}\nSANDBOX_URL={}\n\
                 BRIDGE_TIMEOUT_MS={}\nWATCHDOG_MS={}\nHEARTBEAT_MS={}\n{}",
                self.secrets.jwt,
                self.secrets.session,
                self.secrets.sandbox,
                self.secrets.admin,
                self.sandbox_url,
                o.bridge_timeout_ms,
                o.watchdog_ms,
                o.heartbeat_ms,
                self.agent_command(),
            ) + &o
                .worker_vars
                .iter()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect::<String>(),
        )
        .expect("env file");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("wrangler.log"))
            .expect("log file");
        let child = wrangler_dev(&root, self.wrangler_port, &self.dir.join("state"), log)
            .arg("--env-file")
            .arg(&env_file)
            .spawn()
            .expect("wrangler dev starts");
        *lock(&self.wrangler) = Some(child);
        self.wait_ready().await;
    }

    /// Waits until both vf-sandbox and the Worker answer.
    async fn wait_ready(&self) {
        let what = format!("the stack to come up (see {})", self.dir.display());
        until_true(what, Duration::from_secs(90), || async {
            self.sandbox_answers().await && self.worker_answers().await
        })
        .await;
    }

    /// Whether vf-sandbox answers its ping.
    async fn sandbox_answers(&self) -> bool {
        reqwest::Client::new()
            .get(format!("{}/api/ping", self.sandbox_url))
            .header("X-Sandbox-Token", &self.secrets.sandbox)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// Whether the Worker answers (an API call without a cookie is a 401).
    async fn worker_answers(&self) -> bool {
        reqwest::Client::new()
            .get(format!("{}/api/me", self.base))
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 401)
    }

    /// Waits until a (re)started vf-sandbox answers its ping: from then on it takes the agents the DO starts.
    pub async fn wait_for_sandbox(&self) {
        let what = format!("vf-sandbox to answer its ping (see {})", self.dir.display());
        until_true(what, Duration::from_secs(30), || self.sandbox_answers()).await;
    }

    /// The pid of wrangler dev, which leads the process group of its workerd processes.
    pub fn wrangler_pid(&self) -> Option<u32> {
        lock(&self.wrangler).as_ref().map(Child::id)
    }

    /// The workerd processes of wrangler dev's process group: the one that runs the Worker (wrangler starts it with
    /// an inspector) first, then wrangler's proxy in front of it, a dev-only hop that production does not have.
    pub fn workerds(&self) -> (Vec<u32>, Vec<u32>) {
        let Some(group) = self.wrangler_pid() else {
            return (Vec::new(), Vec::new());
        };
        crate::process::group_members(group, "workerd")
            .into_iter()
            .partition(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                    String::from_utf8_lossy(&cmdline).contains("--inspector-addr")
                })
            })
    }

    /// The resident memory of the workerd that runs the Worker, bytes (not wrangler's proxy: that one buffers
    /// what it relays to a client, and only in development).
    pub fn workerd_rss(&self) -> u64 {
        self.workerds()
            .0
            .into_iter()
            .map(crate::process::rss_bytes)
            .sum()
    }

    /// The resident memory of wrangler dev's proxy workerd, bytes.
    pub fn proxy_rss(&self) -> u64 {
        self.workerds()
            .1
            .into_iter()
            .map(crate::process::rss_bytes)
            .sum()
    }

    /// Kills wrangler dev (workerd and all) hard, as a crash would.
    pub fn kill_wrangler(&self) {
        if let Some(child) = lock(&self.wrangler).take() {
            kill_group(child, false);
        }
    }

    /// The storage files of the stack's Durable Objects (one SQLite database each, with its journal files).
    fn durable_object_files(&self) -> Vec<PathBuf> {
        files_under(&self.dir.join("state"))
            .into_iter()
            .filter(|path| {
                path.to_string_lossy().contains("ChatSessionAgent")
                    && path
                        .file_name()
                        .is_some_and(|n| !n.to_string_lossy().starts_with("metadata.sqlite"))
            })
            .collect()
    }

    /// How many Durable Object instances have storage in the stack's state.
    pub fn durable_object_count(&self) -> usize {
        self.durable_object_files()
            .iter()
            .filter(|path| path.extension().is_some_and(|e| e == "sqlite"))
            .count()
    }

    /// Waits until the count of Durable Objects with storage is `n`.
    pub async fn wait_for_durable_objects(&self, n: usize) {
        let what = format!("{n} Durable Objects with storage");
        until_true(what, Duration::from_secs(10), || async {
            self.durable_object_count() == n
        })
        .await;
    }

    /// Waits until a Durable Object's storage on disk holds `marker` (the text of an event stored after the
    /// requests a test wants to prove harmless: their storage, had they any, is on disk before it).
    pub async fn wait_for_stored(&self, marker: &str) {
        let what = format!("{marker:?} in a Durable Object's storage");
        // Each look reads every DO's files: not every 50 ms.
        let every = Duration::from_millis(200);
        until(what, Duration::from_secs(10), every, || async {
            let files = self.durable_object_files();
            let stored = files
                .iter()
                .any(|path| std::fs::read(path).is_ok_and(|bytes| contains(&bytes, marker)));
            stored.then_some(())
        })
        .await;
    }

    /// Every process vf-sandbox started, as its control API lists them.
    pub async fn sandbox_processes(&self) -> Vec<serde_json::Value> {
        reqwest::Client::new()
            .get(format!("{}/api/process", self.sandbox_url))
            .header("X-Sandbox-Token", &self.secrets.sandbox)
            .send()
            .await
            .expect("vf-sandbox answers")
            .json()
            .await
            .expect("a process list")
    }

    /// The sandbox's record of the process group `pid` belongs to (vf-sandbox runs each command in its own
    /// group, under `sh -c`, so the process it knows is the group's leader).
    pub async fn sandbox_process(&self, pid: u32) -> Option<serde_json::Value> {
        let pgid = process_group(pid)?;
        self.sandbox_processes()
            .await
            .into_iter()
            .find(|p| p["pid"].as_u64() == Some(u64::from(pgid)))
    }

    /// Everything the agents the sandbox started have logged so far (`process-logs/*.log`).
    pub fn agent_logs(&self) -> String {
        let Ok(entries) = std::fs::read_dir(self.dir.join("process-logs")) else {
            return String::new();
        };
        entries
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect()
    }

    /// The wrangler log so far (for diagnostics and for checking what was logged).
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for name in ["wrangler.log", "sandbox.log"] {
            all.push_str(&std::fs::read_to_string(self.dir.join(name)).unwrap_or_default());
        }
        all
    }

    /// Waits until wrangler has logged `needle` (a request's path): the lines of every request answered before
    /// that one are in the log by then.
    pub async fn wait_for_log(&self, needle: &str) {
        let what = format!("{needle:?} in the wrangler log");
        let path = self.dir.join("wrangler.log");
        until_true(what, Duration::from_secs(10), || async {
            std::fs::read(&path).is_ok_and(|bytes| contains(&bytes, needle))
        })
        .await;
    }
}

/// Every file under `dir`, at any depth (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files
}

/// Whether `haystack` holds the bytes of `needle` (not empty).
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
}

pub(crate) fn lock(child: &Mutex<Option<Child>>) -> std::sync::MutexGuard<'_, Option<Child>> {
    child
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Stops a child's whole process group: politely first when `graceful`, then for sure.
pub(crate) fn kill_group(mut child: Child, graceful: bool) {
    let pgid = child.id() as i32;
    if graceful {
        // SAFETY: signalling a process group we created; no memory is involved.
        unsafe {
            libc::kill(-pgid, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(if graceful { 5 } else { 0 });
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let _ = child.wait();
}

impl Drop for Stack {
    fn drop(&mut self) {
        for child in [lock(&self.wrangler).take(), lock(&self.sandbox).take()]
            .into_iter()
            .flatten()
        {
            kill_group(child, true);
        }
        if std::env::var_os("VF_KEEP_STATE").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
