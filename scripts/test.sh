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
# Python's safetensors reads optiscope's checkpoints (checked below).
python3 -c 'import safetensors' 2>/dev/null || python3 -m pip install --quiet safetensors
# lavapipe, Mesa's software Vulkan driver: the GPU conformance tests run on it (slowly, sizes <= 128).
lavapipe() { ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; }
if ! lavapipe; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers >/dev/null
  elif command -v sudo >/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers >/dev/null
  fi
fi
# Debian's Chromium and playwright-core for the explorer's browser tests (never a browser download).
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  elif command -v sudo >/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
if lavapipe; then
  export WGPU_BACKEND=vulkan REQUIRE_GPU="${REQUIRE_GPU:-1}"   # a missing adapter now fails the GPU tests
elif [ "${REQUIRE_GPU:-0}" = 1 ]; then
  # CI (.ci/run sets REQUIRE_GPU=1): the GPU suite must run, so a machine without the driver fails.
  echo "error: REQUIRE_GPU=1 but lavapipe (mesa-vulkan-drivers) is not installed and could not be installed (run as root or with sudo)" >&2
  exit 1
else
  echo "warning: mesa-vulkan-drivers is not installed and cannot be (not root): the GPU tests will be skipped" >&2
fi

step "formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "optiscope-core and optiscope-gpu build for wasm32"
cargo check -p optiscope-core -p optiscope-gpu --target wasm32-unknown-unknown --locked

step "unit, vector, behaviour and GPU conformance tests"
cargo test --workspace --locked
if [ "${REQUIRE_GPU:-0}" = 1 ]; then
  cargo test -p optiscope-gpu --locked --test adapter reports_the_adapter -- --nocapture 2>&1 | grep "GPU conformance adapter"
fi

step "the explorer in headless Chromium (WebGPU and WebGL2)"
bash web/build.sh
(cd web && npm ci --no-audit --no-fund --silent)
(cd web && node --test tests/)

step "replay against an independent float64 implementation (numpy), CPU executor"
# target/debug/optiscope is the binary `cargo test` built for the CLI tests (a separate
# `cargo build -p optiscope-cli` would rebuild wgpu with other features: minutes on CI).
test -x target/debug/optiscope
python3 tests/replay/check_replay.py target/debug/optiscope --backend cpu
step "a training checkpoint read back with Python's safetensors"
python3 tests/train/check_checkpoint.py target/debug/optiscope
step "a GPT's model.safetensors read back: nanoGPT's names, numpy's loss (and PyTorch's, if installed)"
python3 tests/gpt/check_gpt.py target/debug/optiscope
step "MoE -> dense files read back with Python's safetensors (the concatenation identity in numpy)"
python3 tests/moe/check_moe.py target/debug/optiscope

if [ "${REQUIRE_GPU:-0}" = 1 ]; then
  step "the same replay check on the GPU executor"
  python3 tests/replay/check_replay.py target/debug/optiscope --backend gpu
fi
