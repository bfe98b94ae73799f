#!/usr/bin/env bash
# The main job: builds the optiscope binary (release) and runs the default experiment, the noisy
# river valley of spec 4.4 (GD, Muon, Schedule-Free Muon and AMUSE side by side), printing its
# summary and writing config.json / metrics.jsonl / summary.json under runs/.
# Extra arguments go to `optiscope run`, e.g. `scripts/start.sh --preset lora-spectrum`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo not found: install the Rust toolchain (https://rustup.rs) first" >&2; exit 1; }
cargo build --release --locked -p optiscope-cli
if [ $# -eq 0 ]; then set -- --preset river-valley; fi
exec target/release/optiscope run "$@"
