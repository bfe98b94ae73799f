#!/usr/bin/env bash
# Runs every test of optiscope, installing what they need first. Safe to run on a fresh Debian
# machine with the Rust toolchain (and on CI: .ci/run calls exactly this script).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

command -v cargo >/dev/null || { echo "cargo not found: install the Rust toolchain (https://rustup.rs) first" >&2; exit 1; }

step "installing what the tests need"
if command -v rustup >/dev/null; then
  rustup target add wasm32-unknown-unknown >/dev/null   # optiscope-core must compile for the browser
fi
python3 -c 'import numpy' 2>/dev/null || python3 -m pip install --quiet numpy   # the float64 reference

step "formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "optiscope-core builds for wasm32"
cargo check -p optiscope-core --target wasm32-unknown-unknown --locked

step "unit, vector and behaviour tests"
cargo test --workspace --locked

step "replay against an independent float64 implementation (numpy)"
cargo build -p optiscope-cli --locked
python3 tests/replay/check_replay.py target/debug/optiscope
