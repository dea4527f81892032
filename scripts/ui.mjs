// `make ui`: UI development against the running Worker. `trunk watch` rebuilds the app on save into its own dist
// directory; this server serves that directory on 127.0.0.1:8080 (with the security headers of its `_headers`, as
// the Worker does), reloads open pages when a build lands, and relays the Worker's paths (/api/, /internal/) to
// it on 8787: HTTP bodies streamed both ways as they come, WebSocket upgrades as raw bytes, the Host header naming
// the Worker. Why not `trunk serve`: see README, "UI development". Env: VF_UI_PORT (8080), VF_WORKER_URL
// (http://127.0.0.1:8787), VF_UI_DIST (target/ui-dist).
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, watch } from "node:fs";
import http from "node:http";
import net from "node:net";
import { extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(fileURLToPath(import.meta.url), "../..");
const port = Number(process.env.VF_UI_PORT || 8080);
const worker = new URL(process.env.VF_WORKER_URL || "http://127.0.0.1:8787");
const dist = resolve(root, process.env.VF_UI_DIST || "target/ui-dist");
// The Worker's own paths, as wrangler.toml's run_worker_first lists them ("/api/*" → prefix "/api/").
const WORKER_PATHS = workerPaths();
// The reload channel: a WebSocket (an EventSource would hold one of the browser's six HTTP connections to this
// host, which the app's streams need) and the script that opens it.
const RELOAD_SOCKET = "/.vf-ui/reload";
const RELOAD_SCRIPT = "/.vf-ui/reload.js";
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".webmanifest": "application/manifest+json",
  ".json": "application/json",
  ".png": "image/png",
};

const log = (message) => console.log(`[ui] ${message}`);

function workerPaths() {
  const toml = readFileSync(join(root, "wrangler.toml"), "utf8");
  const list = toml.match(/^run_worker_first\s*=\s*(\[.*\])/m);
  if (!list) {
    console.error("[ui] wrangler.toml has no run_worker_first list: which paths are the Worker's?");
    process.exit(1);
  }
  return JSON.parse(list[1]).map((pattern) => pattern.replace(/\*$/, ""));
}

// trunk watch: the same Trunk.toml as `make build` (release profile, so the first build reuses make build's).
const trunk = spawn("trunk", ["watch", "--release", "--dist", dist], { cwd: root, stdio: "inherit" });
trunk.on("exit", (code, signal) => {
  log(`trunk watch ended (${signal || code})`);
  process.exit(code ?? 1);
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    trunk.kill("SIGTERM");
    process.exit(0);
  });
}

// The build on disk: index.html's hash (it names every hashed asset, so any new build changes it), or null
// before the first build lands.
function buildId() {
  try {
    return createHash("sha256").update(readFileSync(join(dist, "index.html"))).digest("hex").slice(0, 16);
  } catch {
    return null;
  }
}

// The headers of the `/*` rule and of the rule for exactly `path` in dist/_headers (Cloudflare's format).
function staticHeaders(path) {
  let text;
  try {
    text = readFileSync(join(dist, "_headers"), "utf8");
  } catch {
    return {};
  }
  const headers = {};
  let applies = false;
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    if (!/^\s/.test(line)) {
      applies = line.trim() === "/*" || line.trim() === path;
    } else if (applies) {
      const colon = line.indexOf(":");
      headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
    }
  }
  return headers;
}

// A file of the dist for a GET, or index.html (the single-page fallback, as the Worker's assets have).
function serveStatic(req, res) {
  let path;
  try {
    path = decodeURIComponent(new URL(req.url, "http://ui").pathname);
  } catch {
    res.writeHead(400).end();
    return;
  }
  const id = buildId();
  if (id === null) {
    res.writeHead(503, { "Content-Type": "text/plain", "Retry-After": "2" });
    res.end("the first build is still running (trunk watch)\n");
    return;
  }
  if (path === RELOAD_SCRIPT) {
    res.writeHead(200, { "Content-Type": TYPES[".js"], "Cache-Control": "no-store" });
    res.end(reloadScript);
    return;
  }
  let file = join(dist, normalize(path));
  const isFile = file.startsWith(dist + "/") && path !== "/_headers" && existsSync(file) && statSync(file).isFile();
  if (!isFile) file = join(dist, "index.html");
  let body = readFileSync(file);
  if (file.endsWith("index.html")) {
    const tag = `<script src="${RELOAD_SCRIPT}" data-build="${id}"></script>`;
    body = body.toString("utf8").replace("</body>", `${tag}</body>`);
  }
  res.writeHead(200, {
    ...staticHeaders(path),
    "Content-Type": TYPES[extname(file)] || "application/octet-stream",
    "Cache-Control": "no-cache",
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

// In the page: reload when the server's build differs from the page's; reconnect when the server restarts.
const reloadScript = `(() => {
  const loaded = document.currentScript.dataset.build;
  const connect = () => {
    const socket = new WebSocket(location.origin.replace(/^http/, "ws") + "${RELOAD_SOCKET}");
    socket.onmessage = (e) => { if (e.data !== loaded) location.reload(); };
    socket.onclose = () => setTimeout(connect, 1000);
  };
  connect();
})();
`;

// The request's headers for the Worker: as the browser sent them (Origin, Cookie and all), but with the Host of
// the Worker, which takes its own origin from it (the agent's callback address, the same-origin check).
function workerHeaders(rawHeaders) {
  const lines = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    lines.push([name, name.toLowerCase() === "host" ? worker.host : rawHeaders[i + 1]]);
  }
  return lines;
}

function relayHttp(req, res) {
  const upstream = http.request({
    host: worker.hostname,
    port: worker.port,
    method: req.method,
    path: req.url,
    headers: workerHeaders(req.rawHeaders),
  });
  upstream.on("response", (answer) => {
    res.writeHead(answer.statusCode, answer.statusMessage, answer.rawHeaders);
    // Flush each chunk as it comes: no buffering, no compression of our own.
    answer.pipe(res);
  });
  upstream.on("error", (e) => {
    if (!res.headersSent) {
      res.writeHead(502, { "Content-Type": "text/plain" });
      res.end(`the Worker on ${worker.origin} does not answer (${e.code || e.message}): is \`make dev\` running?\n`);
    } else {
      res.destroy();
    }
  });
  // The browser went away (a reload, a closed tab): the Worker sees the disconnect too.
  res.on("close", () => upstream.destroy());
  req.pipe(upstream);
}

// A WebSocket upgrade to the Worker: the request re-sent with the Worker's Host, then the bytes both ways as they
// are (so the browser and the Worker negotiate extensions such as permessage-deflate between themselves).
function relayUpgrade(req, socket, head) {
  const upstream = net.connect(Number(worker.port), worker.hostname, () => {
    const headers = workerHeaders(req.rawHeaders)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join("");
    upstream.write(`${req.method} ${req.url} HTTP/1.1\r\n${headers}\r\n`);
    upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  upstream.setNoDelay(true);
  socket.setNoDelay(true);
  upstream.on("error", () => socket.destroy());
  socket.on("error", () => upstream.destroy());
  upstream.on("close", () => socket.destroy());
  socket.on("close", () => upstream.destroy());
}

// The reload channel's open sockets, each sent the build id on connect and on every new build.
const reloadSockets = new Set();

// One unmasked text frame (server to browser) of a short message.
function textFrame(text) {
  const payload = Buffer.from(text);
  return Buffer.concat([Buffer.from([0x81, payload.length]), payload]);
}

function acceptReload(req, socket) {
  const key = req.headers["sec-websocket-key"];
  const accept = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
  socket.write(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
  );
  reloadSockets.add(socket);
  socket.on("close", () => reloadSockets.delete(socket));
  socket.on("error", () => socket.destroy());
  // A close frame (or anything else) from the page ends it.
  socket.on("data", () => socket.end());
  socket.write(textFrame(buildId() || ""));
}

// A build lands as a burst of file events in the dist (trunk empties it, then moves its staged build in):
// announce it once the burst is over.
mkdirSync(dist, { recursive: true });
let announced = buildId();
let settle;
watch(dist, { persistent: true }, () => {
  clearTimeout(settle);
  settle = setTimeout(() => {
    const id = buildId();
    if (id === null || id === announced) return;
    announced = id;
    log(`new build ${id}: reloading ${reloadSockets.size} page(s)`);
    for (const socket of reloadSockets) socket.write(textFrame(id));
  }, 300);
}).on("error", (e) => log(`watching ${dist}: ${e.message}`));

const server = http.createServer((req, res) => {
  const path = new URL(req.url, "http://ui").pathname;
  if (WORKER_PATHS.some((prefix) => path.startsWith(prefix))) {
    relayHttp(req, res);
  } else if (req.method === "GET" || req.method === "HEAD") {
    serveStatic(req, res);
  } else {
    res.writeHead(405, { Allow: "GET, HEAD" });
    res.end();
  }
});
server.on("upgrade", (req, socket, head) => {
  const path = new URL(req.url, "http://ui").pathname;
  if (path === RELOAD_SOCKET) {
    acceptReload(req, socket);
  } else if (WORKER_PATHS.some((prefix) => path.startsWith(prefix))) {
    relayUpgrade(req, socket, head);
  } else {
    socket.destroy();
  }
});
server.listen(port, "127.0.0.1", () => {
  log(`the app: http://127.0.0.1:${port}   (the API: ${worker.origin}; Ctrl-C stops)`);
});
