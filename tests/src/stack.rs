//! The stack under test: a `vf-sandbox` process and a `wrangler dev` (workerd) process, each in its own process
//! group so that stopping them leaves nothing behind.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn random_hex(bytes: usize) -> String {
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
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            fake_delay_ms: 40,
            bridge_timeout_ms: 8_000,
            watchdog_ms: 6_000,
            heartbeat_ms: 1_000,
            agent_heartbeat_secs: 1,
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
    sandbox: Option<Child>,
    wrangler: Option<Child>,
}

impl Stack {
    /// Starts vf-sandbox and wrangler dev and waits until both answer.
    pub async fn start(options: StackOptions) -> Stack {
        let root = repo_root();
        for needed in ["worker/build/index.js", "app/dist/index.html", "target/debug/vf-sandbox", "target/debug/vf-agent"] {
            assert!(
                root.join(needed).exists(),
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
            sandbox: None,
            wrangler: None,
        };
        stack.base = format!("http://127.0.0.1:{}", stack.wrangler_port);
        stack.start_sandbox(sandbox_port);
        stack.start_wrangler().await;
        stack
    }

    fn start_sandbox(&mut self, port: u16) {
        let root = repo_root();
        let bin = root.join("target/debug");
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
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
            .env("VF_HEARTBEAT_SECS", self.options.agent_heartbeat_secs.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("vf-sandbox starts");
        self.sandbox = Some(child);
    }

    /// Starts wrangler dev on the stack's port and state directory.
    pub async fn start_wrangler(&mut self) {
        let root = repo_root();
        let env_file = self.dir.join("dev.vars");
        let o = &self.options;
        std::fs::write(
            &env_file,
            format!(
                "JWT_SECRET={}\nSESSION_SECRET={}\nSANDBOX_TOKEN={}\nADMIN_TOKEN={}\nSANDBOX_URL={}\n\
                 BRIDGE_TIMEOUT_MS={}\nWATCHDOG_MS={}\nHEARTBEAT_MS={}\n",
                self.secrets.jwt,
                self.secrets.session,
                self.secrets.sandbox,
                self.secrets.admin,
                self.sandbox_url,
                o.bridge_timeout_ms,
                o.watchdog_ms,
                o.heartbeat_ms,
            ),
        )
        .expect("env file");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("wrangler.log"))
            .expect("log file");
        let child = Command::new(root.join("node_modules/.bin/wrangler"))
            .current_dir(&root)
            .args(["dev", "--ip", "127.0.0.1", "--port", &self.wrangler_port.to_string()])
            .args(["--inspector-port", &free_port().to_string()])
            .arg("--env-file")
            .arg(&env_file)
            .arg("--persist-to")
            .arg(self.dir.join("state"))
            .args(["--show-interactive-dev-session=false", "--log-level", "info"])
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("CI", "true")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("wrangler dev starts");
        self.wrangler = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let http = reqwest::Client::new();
        let mut sandbox_ok = false;
        loop {
            if !sandbox_ok {
                sandbox_ok = http
                    .get(format!("{}/api/ping", self.sandbox_url))
                    .header("X-Sandbox-Token", &self.secrets.sandbox)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
            }
            let worker_ok = http
                .get(format!("{}/api/me", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 401);
            if sandbox_ok && worker_ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the stack did not come up in 90 s; see {}",
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Kills wrangler dev (workerd and all) hard, as a crash would.
    pub fn kill_wrangler(&mut self) {
        if let Some(child) = self.wrangler.take() {
            kill_group(child, false);
        }
    }

    /// How many Durable Object instances have storage in the stack's state.
    pub fn durable_object_count(&self) -> usize {
        fn walk(dir: &Path, n: &mut usize) {
            let Ok(entries) = std::fs::read_dir(dir) else { return };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, n);
                } else if path.extension().is_some_and(|e| e == "sqlite")
                    && path.to_string_lossy().contains("ChatSessionAgent")
                    && path.file_name().is_some_and(|n| n != "metadata.sqlite")
                {
                    *n += 1;
                }
            }
        }
        let mut n = 0;
        walk(&self.dir.join("state"), &mut n);
        n
    }

    /// The wrangler log so far (for diagnostics and for checking what was logged).
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for name in ["wrangler.log", "sandbox.log"] {
            all.push_str(&std::fs::read_to_string(self.dir.join(name)).unwrap_or_default());
        }
        all
    }
}

/// Stops a child's whole process group: politely first when `graceful`, then for sure.
fn kill_group(mut child: Child, graceful: bool) {
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
        for child in [self.wrangler.take(), self.sandbox.take()].into_iter().flatten() {
            kill_group(child, true);
        }
        if std::env::var_os("VF_KEEP_STATE").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
