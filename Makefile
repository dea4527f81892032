# VaporForge (Rust). The two commands: `make dev` (run the stack) and `make test` (every check and test).
SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
export PATH := $(HOME)/.cargo/bin:$(ROOT)/node_modules/.bin:$(PATH)
# worker-build and trunk use these tools instead of downloading their own.
export WASM_BINDGEN_BIN := $(HOME)/.cargo/bin/wasm-bindgen
export WASM_OPT_BIN := $(ROOT)/node_modules/binaryen/bin/wasm-opt
export ESBUILD_BIN := $(ROOT)/node_modules/esbuild/bin/esbuild
export TRUNK_SKIP_VERSION_CHECK := true
export WRANGLER_SEND_METRICS := false
export CLOUDFLARE_CF_FETCH_ENABLED := false

.PHONY: help setup build app worker sandbox dev ui test lint fmt unit deploy-check e2e bench soak clean

help:
	@echo "make dev    install what is missing, build, run the stack on http://127.0.0.1:8787"
	@echo "make ui     with make dev running: the app on http://127.0.0.1:8080, rebuilt on save, API on 8787"
	@echo "make test   install what is missing, lint, unit tests, end-to-end tests against the real stack"
	@echo "make bench  release builds, then measure the real stack and print one table (bench/latest.md)"
	@echo "make soak   crashes, reconnects, a stalled reader and parallel sessions on the real stack (soak/latest.md)"

setup:
	@scripts/setup.sh

## Builds
app:
	trunk build --release

worker:
	worker-build --release worker

sandbox:
	cargo build -p vf-sandbox --bins

build: app worker sandbox

## The two commands
dev: setup build
	@scripts/dev.sh

# UI development, next to a running `make dev`: trunk watch rebuilds the app on save, the page reloads, and the
# API and the legacy WebSocket are relayed to the Worker (README, "UI development"). The browser tests run it too.
ui:
	@node scripts/ui.mjs

# The browser tests need Debian's chromium and chromedriver: setup installs them for `make test` (not `make dev`).
# Setup installs the claude CLI too, so under `make test` the real-CLI tests fail rather than skip without it.
test: export VF_SETUP_BROWSER := 1
test: export VF_REQUIRE_REAL_CLI := 1
test: setup lint unit build deploy-check e2e

## Pieces of `make test`
fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p vf-worker -p vf-app --target wasm32-unknown-unknown -- -D warnings

# Alone, the real-CLI tests skip (saying why) when node_modules has no claude; `make test` requires it.
unit:
	cargo test --workspace --exclude vf-e2e

# `wrangler deploy --dry-run` of both environments, without an account (and without Docker: see the script).
deploy-check:
	@scripts/deploy-check.sh

e2e:
	cargo test -p vf-e2e --test e2e

# Latency, throughput, replay, memory, the app's streaming cost in Chromium and its size, on the real stack with
# release builds; prints the table, writes bench/latest.md.
bench: export VF_SETUP_BROWSER := 1
bench: setup app worker
	cargo build --release -p vf-sandbox --bins
	cargo run --release -p vf-bench

# Endurance, not part of `make test` (about 10 minutes): exits non-zero if anything was lost, doubled or left running.
soak: setup app worker sandbox
	cargo run --release -p vf-soak

clean:
	rm -rf app/dist worker/build .wrangler/tmp
