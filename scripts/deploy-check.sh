#!/usr/bin/env bash
# `make deploy-check`: `wrangler deploy --dry-run` of the production and the preview environment. Needs no
# Cloudflare account and uploads nothing. Expects `make build` to have run (make test does).
#
# The dry run checks wrangler.toml against wrangler's schema (each environment, with what it does not inherit),
# bundles worker/build/index.js with its wasm, fails if a bound Durable Object class is not exported by the built
# Worker, reads the assets directory, and checks each container: its class is a Durable Object of this Worker,
# its instance type exists, its image is a Dockerfile or a registry reference.
#
# For a Dockerfile image the dry run also builds the image, which needs a running Docker daemon. Without one
# (DEPLOY_CHECK_IMAGE=0, or auto when `docker info` fails), the dry run is given a copy of wrangler.toml whose
# container image is a registry reference, which a dry run does not pull: every check above still runs, only
# the image build is skipped. DEPLOY_CHECK_IMAGE=1 insists on the build.
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp -d)
derived=.deploy-check.wrangler.toml # in the root: wrangler resolves main, assets and image from the config's folder
trap 'rm -rf "$out" "$derived"' EXIT

docker_bin=${WRANGLER_DOCKER_BIN:-docker}
mode=${DEPLOY_CHECK_IMAGE:-auto}
if [ "$mode" = auto ]; then
  if "$docker_bin" info >/dev/null 2>&1; then mode=1; else mode=0; fi
fi

config=wrangler.toml
if [ "$mode" = 1 ]; then
  echo "[deploy-check] the dry run builds the sandbox image from Dockerfile (with Docker)"
else
  [ -f Dockerfile ] || { echo "[deploy-check] Dockerfile is missing" >&2; exit 1; }
  containers=$(grep -c '^\[\[\(env\.[a-z]*\.\)\?containers\]\]$' wrangler.toml)
  images=$(grep -c '^image = "\./Dockerfile"$' wrangler.toml)
  if [ "$containers" != "$images" ]; then
    echo "[deploy-check] expected every container to use image = \"./Dockerfile\" ($images of $containers)" >&2
    exit 1
  fi
  sed 's#^image = "\./Dockerfile"$#image = "registry.cloudflare.com/vaporforge-sandbox:deploy-check"#' \
    wrangler.toml >"$derived"
  config=$derived
  echo "[deploy-check] no Docker: checking everything but the image build ($containers containers)"
fi

for env in "" preview; do
  echo "[deploy-check] wrangler deploy --dry-run --env=\"$env\""
  node_modules/.bin/wrangler deploy --dry-run --outdir "$out/${env:-production}" --config "$config" --env="$env"
done
echo "[deploy-check] ok"
