//! Headless Chromium for the browser tests (one profile per `Page`), on the app from the Worker or from `make ui`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::Capabilities;
use fantoccini::{ClientBuilder, Locator};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{uuid_like, Client};
use crate::stack::{free_port, kill_group, lock, random_hex, repo_root};
use crate::wait::until_true;
use crate::{Stack, StackOptions};

/// Debian's packages (`apt-get install chromium chromium-driver`); a test never downloads a browser.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long any one awaited condition may take before the test fails.
const WAIT: Duration = Duration::from_secs(30);
/// How often a condition is checked.
const POLL: Duration = Duration::from_millis(40);

/// The messages as the page shows them: role, `data-status`, and the visible text (the user's text, or the
/// assistant's rendered markdown parts).
const SNAPSHOT_FN: &str = r#"() => Array.from(document.querySelectorAll('[data-testid="message"]')).map(m => ({
    role: m.dataset.role || '',
    status: m.dataset.status || '',
    text: Array.from(m.querySelectorAll(m.dataset.role === 'user' ? '.user-text' : '.markdown'))
        .map(e => e.textContent).join(''),
}))"#;

/// Where the browser tests load the app from, on the stack they run on.
pub trait App {
    /// The stack whose Worker answers the API.
    fn stack(&self) -> &Stack;
    /// The origin the pages are opened on.
    fn base(&self) -> &str;
}

/// The app as the Worker serves it (its static assets).
impl App for Stack {
    fn stack(&self) -> &Stack {
        self
    }
    fn base(&self) -> &str {
        &self.base
    }
}

/// The UI development loop: `make ui` (trunk watch and scripts/ui.mjs), run as a developer runs it but on a free
/// port, in front of a stack whose Worker admits exactly its origin (as `.dev.vars` admits port 8080). `make ui`
/// runs in its own process group, stopped on drop; it builds into the stack's directory.
pub struct UiLoop {
    pub base: String,
    /// Where trunk watch writes its builds.
    pub dist: PathBuf,
    pub stack: Stack,
    ui: Mutex<Option<Child>>,
}

impl App for UiLoop {
    fn stack(&self) -> &Stack {
        &self.stack
    }
    fn base(&self) -> &str {
        &self.base
    }
}

impl UiLoop {
    /// Starts the stack, then `make ui` in front of it; waits until it serves the app's index.html.
    pub async fn start() -> UiLoop {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let stack = Stack::start(StackOptions {
            worker_vars: vec![("ALLOWED_ORIGINS".into(), base.clone())],
            ..StackOptions::default()
        })
        .await;
        let dist = stack.dir.join("ui-dist");
        let log_path = stack.dir.join("ui.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        // The developer's command, not a sub-make of `make test`.
        let child = Command::new("make")
            .args(["--no-print-directory", "ui"])
            .current_dir(repo_root())
            .env_remove("MAKEFLAGS")
            .env_remove("MFLAGS")
            .env_remove("MAKELEVEL")
            .env("VF_UI_PORT", port.to_string())
            .env("VF_WORKER_URL", &stack.base)
            .env("VF_UI_DIST", &dist)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("make ui starts");
        let ui = UiLoop {
            base,
            dist,
            stack,
            ui: Mutex::new(Some(child)),
        };
        ui.wait_ready(&log_path).await;
        ui
    }

    /// Waits until the first build is served (trunk watch builds before anything else: about 10 s after
    /// `make build`, whose release build it reuses).
    async fn wait_ready(&self, log: &Path) {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("an HTTP client");
        let what = format!("make ui to serve the app (see {})", log.display());
        until_true(what, Duration::from_secs(300), || async {
            if let Some(Ok(Some(status))) = lock(&self.ui).as_mut().map(Child::try_wait) {
                panic!(
                    "make ui ended ({status}): {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            let index = http.get(format!("{}/index.html", self.base)).send().await;
            index.is_ok_and(|r| r.status().is_success())
        })
        .await;
    }
}

impl Drop for UiLoop {
    fn drop(&mut self) {
        if let Some(child) = lock(&self.ui).take() {
            kill_group(child, true);
        }
    }
}

/// A running chromedriver. Dropping it stops chromedriver and every browser it started, and removes the profiles.
pub struct Browser {
    url: String,
    dir: PathBuf,
    profiles: AtomicUsize,
    driver: Mutex<Option<Child>>,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and waits until it is ready.
    pub async fn start() -> Browser {
        for needed in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(needed).exists(),
                "{needed} is missing: install Debian's chromium and chromium-driver \
                 (`VF_SETUP_BROWSER=1 scripts/setup.sh`; make test does)"
            );
        }
        let dir = std::env::temp_dir().join(format!("vf-browser-{}", random_hex(6)));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let port = free_port();
        let log = std::fs::File::create(dir.join("chromedriver.log")).expect("log file");
        // Chromium keeps its crash database and caches under XDG_CONFIG_HOME / XDG_CACHE_HOME: keep them in the
        // temp dir too, so nothing is written to the user's home and `Drop` can find every process by its path.
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let browser = Browser {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            profiles: AtomicUsize::new(0),
            driver: Mutex::new(Some(child)),
        };
        browser.wait_ready().await;
        browser
    }

    async fn wait_ready(&self) {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("an HTTP client");
        let what = format!(
            "chromedriver to be ready (see {})",
            self.dir.join("chromedriver.log").display()
        );
        until_true(what, WAIT, || async {
            let status: Option<Value> = match http.get(format!("{}/status", self.url)).send().await
            {
                Ok(response) => response.json().await.ok(),
                Err(_) => None,
            };
            status.is_some_and(|s| s["value"]["ready"] == true)
        })
        .await;
    }

    /// A new browser with a fresh profile, on the app at `base`.
    pub async fn page(&self, base: &str) -> Page {
        let n = self.profiles.fetch_add(1, Ordering::Relaxed);
        let profile = self.dir.join(format!("profile-{n}"));
        std::fs::create_dir_all(&profile).expect("profile dir");
        let capabilities: Capabilities = serde_json::from_value(json!({
            "browserName": "chrome",
            "timeouts": { "pageLoad": 30_000, "script": 10_000 },
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--deny-permission-prompts",
                    "--window-size=1024,800",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }))
        .expect("capabilities");
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "no browser session: {e}; see {}",
                    self.dir.join("chromedriver.log").display()
                )
            });
        Page {
            client,
            base: base.to_string(),
            driver: self.url.clone(),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(child) = lock(&self.driver).take() {
            kill_group(child, true);
        }
        kill_strays(&self.dir);
        if std::env::var_os("VF_KEEP_STATE").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Kills what Chromium started outside chromedriver's process group (its crash handler daemonizes): every process
/// whose command line names `dir`, which is this browser's alone.
fn kill_strays(dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            // SAFETY: signalling a process this browser started (found by its unique temp dir); no memory involved.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// One message as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Shown {
    pub role: String,
    pub status: String,
    pub text: String,
}

/// Text compared as a reader sees it: rendered markdown keeps the words, not every blank or line break.
pub fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

/// One browser window on the app, driven over WebDriver.
pub struct Page {
    pub client: fantoccini::Client,
    pub base: String,
    /// chromedriver's address, for the DevTools commands WebDriver has no verb for.
    driver: String,
}

impl Page {
    /// Opens `path` in a second window of the same browser (same user) and switches to it; returns the first
    /// window, for [`Page::switch_to`].
    pub async fn open_in_second_window(&self, path: &str) -> fantoccini::wd::WindowHandle {
        let first = self.client.window().await.expect("the first window");
        let second = self
            .client
            .new_window(false)
            .await
            .expect("a second window")
            .handle;
        self.switch_to(second).await;
        self.open(path).await;
        first
    }

    /// Switches to `window`.
    pub async fn switch_to(&self, window: fantoccini::wd::WindowHandle) {
        self.client
            .switch_to_window(window)
            .await
            .expect("switch windows");
    }

    /// Navigates to `path` of the app (`/login`, `/s/{id}?transport=do`…).
    pub async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// Runs a Chrome DevTools Protocol command in the page (chromedriver's `goog/cdp/execute`); returns its result.
    pub async fn cdp(&self, command: &str, params: Value) -> Value {
        let session = self
            .client
            .session_id()
            .await
            .ok()
            .flatten()
            .expect("a WebDriver session");
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("an HTTP client")
            .post(format!(
                "{}/session/{session}/goog/cdp/execute",
                self.driver
            ))
            .json(&json!({ "cmd": command, "params": params }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{command}: {e}"));
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{command}: {e}"));
        assert!(body["value"].get("error").is_none(), "{command}: {body}");
        body["value"].clone()
    }

    /// Runs a script in the page (`return …` to get a value).
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `expression` until it is truthy; returns its value.
    pub async fn wait_until(&self, what: &str, expression: &str) -> Value {
        let script = format!("return ({expression});");
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.js(&script).await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {what} (`{expression}`); the page shows {:?}, error banner {:?}",
                self.messages().await,
                self.banner().await
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits inside the page until `expression` is truthy: the page checks it every 100 ms itself, one WebDriver
    /// call in all. For measurements, which the calls of [`Page::wait_until`] (each one a task of the page's main
    /// thread) would disturb.
    pub async fn wait_in_page(&self, what: &str, expression: &str) {
        let timeouts = fantoccini::wd::TimeoutConfiguration::new(
            Some(WAIT),
            Some(Duration::from_secs(30)),
            Some(Duration::ZERO),
        );
        self.client
            .update_timeouts(timeouts)
            .await
            .unwrap_or_else(|e| panic!("script timeout: {e}"));
        let script = format!(
            "const finish = arguments[arguments.length - 1];\
             const check = () => ({expression}) ? finish(true) : setTimeout(check, 100);\
             check();"
        );
        self.client
            .execute_async(&script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("waited {WAIT:?} for {what} (`{expression}`): {e}"));
    }

    /// The element with `data-testid="id"`, once it is there.
    pub async fn element(&self, id: &str) -> Element {
        self.wait_until(
            &format!("{id} to appear"),
            &format!("document.querySelector('{}') !== null", testid(id)),
        )
        .await;
        self.client
            .find(Locator::Css(&testid(id)))
            .await
            .unwrap_or_else(|e| panic!("find {id}: {e}"))
    }

    /// Waits until `id` is there and enabled.
    async fn wait_enabled(&self, id: &str) {
        self.wait_until(
            &format!("{id} to be enabled"),
            &format!(
                "(e => e !== null && !e.disabled)(document.querySelector('{}'))",
                testid(id)
            ),
        )
        .await;
    }

    /// Clicks `id` once it is there and enabled.
    pub async fn click(&self, id: &str) {
        self.wait_enabled(id).await;
        self.element(id)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {id}: {e}"));
    }

    /// Clicks the element `id` whose `data-label` is `label` (one of several alike: the options of a question).
    pub async fn click_labelled(&self, id: &str, label: &str) {
        let selector = format!("{}[data-label=\"{label}\"]", testid(id));
        // Into the middle of the window: at its top edge the sticky chat bar would take the click.
        self.wait_until(
            &format!("{id} {label:?} to appear"),
            &format!(
                "(e => e !== null && (e.scrollIntoView({{block: 'center'}}), true))(document.querySelector('{selector}'))"
            ),
        )
        .await;
        // A streaming answer may scroll the page (the chat follows it) between the scroll and the click, and the
        // sticky bar then takes it: scroll to the element again and retry, a few times.
        for attempt in 1.. {
            let element = self
                .client
                .find(Locator::Css(&selector))
                .await
                .unwrap_or_else(|e| panic!("find {selector}: {e}"));
            match element.click().await {
                Ok(()) => return,
                Err(e) if attempt < 5 && e.to_string().contains("intercepted") => {
                    self.js(&format!(
                        "document.querySelector('{selector}').scrollIntoView({{block: 'center'}}); return 0;"
                    ))
                    .await;
                }
                Err(e) => panic!("click {selector}: {e}"),
            }
        }
    }

    /// Picks the option with `value` in the `<select>` `id`, once it is enabled (the browser fires `change`).
    pub async fn choose(&self, id: &str, value: &str) {
        self.wait_enabled(id).await;
        self.element(id)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("choose {value} in {id}: {e}"));
    }

    /// Types `text` into `id` (key by key, as a user would).
    pub async fn type_into(&self, id: &str, text: &str) {
        self.element(id)
            .await
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {id}: {e}"));
    }

    /// An attribute of `id` (None while the element or the attribute is missing).
    pub async fn attribute(&self, id: &str, name: &str) -> Option<String> {
        self.js(&format!(
            "return (e => e && e.getAttribute('{name}'))(document.querySelector('{}'));",
            testid(id)
        ))
        .await
        .as_str()
        .map(str::to_string)
    }

    /// Waits until attribute `name` of `id` is `value`.
    pub async fn wait_for_attribute(&self, id: &str, name: &str, value: &str) {
        self.wait_until(
            &format!("{id} {name}={value}"),
            &format!(
                "(e => e !== null && e.getAttribute('{name}') === '{value}')(document.querySelector('{}'))",
                testid(id)
            ),
        )
        .await;
    }

    /// Signs in on `/login` with a fresh token (a new user), pasted into the form; lands on the session list.
    pub async fn sign_in(&self) {
        self.open("/login").await;
        let token = format!("sk-ant-oat01-browser-{}", uuid_like());
        self.type_into("login-token", &token).await;
        self.click("login-submit").await;
        self.wait_until(
            "the session list after signing in",
            &format!(
                "location.pathname === '/' && document.querySelector('{}') !== null",
                testid("session-list")
            ),
        )
        .await;
    }

    /// Creates a session from the session list; returns its id once its chat is ready for a prompt.
    pub async fn new_session(&self) -> String {
        self.click("new-session").await;
        let id = self
            .wait_until(
                "the new session's chat",
                "location.pathname.startsWith('/s/') && location.pathname.slice(3)",
            )
            .await;
        self.wait_ready().await;
        id.as_str().expect("a session id").to_string()
    }

    /// Waits until the chat has loaded and takes a prompt.
    pub async fn wait_ready(&self) {
        self.wait_until(
            "the prompt box to be enabled",
            &format!(
                "(p => p !== null && !p.disabled)(document.querySelector('{}'))",
                testid("prompt")
            ),
        )
        .await;
    }

    /// Types a prompt and clicks send.
    pub async fn send(&self, prompt: &str) {
        self.wait_ready().await;
        self.type_into("prompt", prompt).await;
        self.click("send").await;
    }

    /// The messages the page shows now.
    pub async fn messages(&self) -> Vec<Shown> {
        let value = self.js(&format!("return ({SNAPSHOT_FN})();")).await;
        serde_json::from_value(value).expect("message snapshots")
    }

    /// Polls the shown messages until `done` holds for them; returns them.
    pub async fn wait_for_messages(
        &self,
        what: &str,
        done: impl Fn(&[Shown]) -> bool,
    ) -> Vec<Shown> {
        let deadline = Instant::now() + WAIT;
        loop {
            let shown = self.messages().await;
            if done(&shown) {
                return shown;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {what}; the page shows {shown:?}, error banner {:?}",
                self.banner().await
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The error banner's text, if one is shown.
    pub async fn banner(&self) -> Option<String> {
        self.js(&format!(
            "return (e => e && e.textContent)(document.querySelector('{}'));",
            testid("error-banner")
        ))
        .await
        .as_str()
        .map(str::to_string)
    }

    /// Starts recording every distinct state of the messages (a MutationObserver in the page, so no state is
    /// missed between two polls). A reload ends the recording.
    pub async fn record(&self) {
        self.js(&format!(
            "if (!window.__vfSeen) {{
                 const snapshot = {SNAPSHOT_FN};
                 const seen = window.__vfSeen = [];
                 const take = () => {{
                     const now = JSON.stringify(snapshot());
                     if (seen[seen.length - 1] !== now) seen.push(now);
                 }};
                 new MutationObserver(take).observe(document.body, {{
                     subtree: true, childList: true, characterData: true, attributes: true,
                 }});
                 take();
             }}"
        ))
        .await;
    }

    /// The states recorded since `record`, oldest first.
    pub async fn recorded(&self) -> Vec<Vec<Shown>> {
        let value = self.js("return window.__vfSeen || [];").await;
        value
            .as_array()
            .expect("recorded states")
            .iter()
            .map(|s| {
                serde_json::from_str(s.as_str().expect("a recorded state")).expect("a snapshot")
            })
            .collect()
    }

    /// The path of the page (`/s/{id}`).
    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("the current URL")
            .path()
            .to_string()
    }

    /// An API client signed in as this browser (its cookies).
    pub async fn api(&self) -> Client {
        let cookies = self
            .client
            .get_all_cookies()
            .await
            .expect("the browser's cookies");
        assert!(!cookies.is_empty(), "the browser has no session cookie");
        let mut client = Client::new(&self.base);
        client.cookie = Some(
            cookies
                .iter()
                .map(|c| format!("{}={}", c.name(), c.value()))
                .collect::<Vec<_>>()
                .join("; "),
        );
        client
    }

    /// Takes the page's network down (`offline`), or brings it back: the browser fires `offline`/`online`.
    pub async fn set_offline(&self, offline: bool) {
        self.cdp("Network.enable", json!({})).await;
        self.cdp(
            "Network.emulateNetworkConditions",
            json!({"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}),
        )
        .await;
    }

    /// Saves a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("a screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("artifact dir");
        }
        std::fs::write(path, png).expect("screenshot written");
    }

    /// Ends the WebDriver session (its browser quits).
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
