#!/usr/bin/env bash
# The main job: builds the explorer's web bundle (wasm + wasm-bindgen, see web/build.sh) and serves
# it on http://127.0.0.1:8080 — open that address in a browser with WebGPU (Chrome, Edge; others
# fall back to the CPU path). Ctrl-C stops the server.
# `scripts/start.sh --cli [ARGS]` instead builds the `optiscope` binary and runs an experiment
# (default: the river-valley preset), printing its summary.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo not found: install the Rust toolchain (https://rustup.rs) first" >&2; exit 1; }
if [ "${1:-}" = "--cli" ]; then
  shift
  cargo build --release --locked -p optiscope-cli
  if [ $# -eq 0 ]; then set -- --preset river-valley; fi
  exec target/release/optiscope run "$@"
fi
bash web/build.sh
exec python3 scripts/serve.py --port "${PORT:-8080}" --dir web/dist
