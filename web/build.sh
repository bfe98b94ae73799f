#!/usr/bin/env bash
# Builds the explorer's web bundle into web/dist: the wasm library with the `web` profile (no
# debug info, fat LTO, one codegen unit, opt-level "z" but 3 for the compute crates; Cargo.toml),
# then wasm-bindgen (its CLI pinned to the wasm-bindgen crate version in Cargo.lock, installed if
# missing or different), optionally wasm-opt, then index.html and a gzipped copy of the wasm for
# scripts/serve.py. Prints the wasm's raw and gzipped sizes. No tool downloads binaries.
#   OPTISCOPE_WEB_PROFILE=release bash web/build.sh   # the release profile, no wasm-opt (to compare)
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${OPTISCOPE_WEB_PROFILE:-web}"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
  echo "installing wasm-bindgen-cli $version (about 2 minutes, once)"
  cargo install wasm-bindgen-cli --version "$version"
fi
cargo build -p optiscope-app --lib --target wasm32-unknown-unknown --profile "$profile" --locked
rm -rf web/dist && mkdir -p web/dist
wasm-bindgen --target web --no-typescript --out-dir web/dist \
  "target/wasm32-unknown-unknown/$profile/optiscope_app.wasm"
wasm=web/dist/optiscope_app_bg.wasm
# wasm-opt from the npm `binaryen` package pinned in web/package.json (Debian's binaryen 108 makes
# a module that fails to load), on request: OPTISCOPE_WASM_OPT=-Oz (or -O3, …). Off by default:
# on this bundle it shrank the raw wasm but not the gzipped one, and the JS build of wasm-opt
# took 9 minutes on 2 cores (BENCHMARKS.md, "The explorer's bundle").
if [ -n "${OPTISCOPE_WASM_OPT:-}" ]; then
  if [ ! -x web/node_modules/.bin/wasm-opt ]; then
    (cd web && npm ci --no-audit --no-fund)
  fi
  # The features Rust's wasm32-unknown-unknown target enables by default.
  web/node_modules/.bin/wasm-opt "$OPTISCOPE_WASM_OPT" --enable-bulk-memory --enable-mutable-globals \
    --enable-nontrapping-float-to-int --enable-sign-ext --enable-reference-types \
    --enable-multivalue "$wasm" -o "$wasm.opt"
  mv "$wasm.opt" "$wasm"
fi
cp index.html web/dist/
# Precompressed for scripts/serve.py (Content-Encoding: gzip).
gzip -9 -k -f "$wasm"
raw=$(stat -c %s "$wasm")
gz=$(stat -c %s "$wasm.gz")
echo "built web/dist ($profile): optiscope_app_bg.wasm $raw bytes, $gz gzipped (gzip -9)"
