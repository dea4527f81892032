# The sandbox image: vf-sandbox (control server, port 3000) and vf-agent, plus the Claude Code CLI they drive.
# Built by `wrangler deploy` for the SandboxContainer Durable Object (wrangler.toml [[containers]]), from the
# repository root (see .dockerignore). Only the built binaries are copied in; no script is written here.

# ---- build: the workspace's vf-sandbox package, release profile, as pinned by Cargo.lock ----
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The caches keep the registry and target/ between builds; the binaries leave the cached target/ by copy.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p vf-sandbox --bins \
    && mkdir -p /out \
    && cp target/release/vf-sandbox target/release/vf-agent /out/

# ---- runtime: Node 22 for the CLI, tini as PID 1 (it reaps the orphans of killed process groups) ----
FROM node:22-bookworm-slim
ARG CLAUDE_CODE_VERSION=2.1.330
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini git ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && npm install -g "@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}" \
    && npm cache clean --force \
    && mkdir -p /workspace \
    && chown node:node /workspace
COPY --from=build /out/vf-sandbox /out/vf-agent /usr/local/bin/

# The CLI stays at the pinned version; vf-agent runs `claude` from PATH (VF_* reach every sandbox process).
ENV DISABLE_AUTOUPDATER=1 \
    VF_CLAUDE_BIN=claude
# The node image's unprivileged user (uid 1000). SANDBOX_TOKEN comes from the Durable Object at start.
USER node
WORKDIR /workspace
EXPOSE 3000
ENTRYPOINT ["tini", "--", "vf-sandbox", "--listen", "0.0.0.0:3000", "--workspace", "/workspace"]
