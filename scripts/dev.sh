#!/usr/bin/env bash
# Runs the whole stack locally: vf-sandbox on 127.0.0.1:3000 and wrangler dev on 127.0.0.1:8787.
# Ctrl-C stops both. Expects `make build` to have run (make dev does).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/dev-vars.sh
sandbox_token=$(sed -n 's/^SANDBOX_TOKEN=//p' .dev.vars)

mkdir -p .vf/workspace .vf/logs
export PATH="$root/target/debug:$PATH"
if [ -n "${CLAUDE_CODE_OAUTH_TOKEN:-}" ] && [ -x node_modules/.bin/claude ]; then
  export VF_CLAUDE_BIN="$root/node_modules/.bin/claude"
  echo "[dev] CLAUDE_CODE_OAUTH_TOKEN is set: the agent runs the real Claude Code CLI (log in with that token)"
else
  if [ -n "${CLAUDE_CODE_OAUTH_TOKEN:-}" ]; then
    echo "[dev] CLAUDE_CODE_OAUTH_TOKEN is set but node_modules/.bin/claude is missing (npm ci installs it)"
  fi
  export VF_CLAUDE_BIN="$root/target/debug/vf-fake-claude"
  export VF_FAKE_DELAY_MS="${VF_FAKE_DELAY_MS:-60}"
  echo "[dev] offline demo agent (a scripted Claude Code session); log in with any sk-ant-oat01-… token"
fi

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "[dev] stopped"
}
trap stop INT TERM EXIT

SANDBOX_TOKEN="$sandbox_token" setsid target/debug/vf-sandbox --listen 127.0.0.1:3000 --workspace "$root/.vf/workspace" --log-dir "$root/.vf/logs" &
pids+=($!)
setsid node_modules/.bin/wrangler dev --ip 127.0.0.1 --port 8787 --show-interactive-dev-session=false &
pids+=($!)

for _ in $(seq 1 120); do
  if curl -fs -o /dev/null -w '' http://127.0.0.1:8787/ 2>/dev/null; then break; fi
  sleep 0.5
done
echo
echo "  VaporForge is running: http://127.0.0.1:8787   (Ctrl-C stops it)"
echo "  UI development: \`make ui\` in another terminal serves it rebuilt on save on http://127.0.0.1:8080"
echo
wait -n "${pids[@]}"
