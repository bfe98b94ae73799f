#!/usr/bin/env bash
# Builds the explorer's web bundle into web/dist: the wasm library in release mode, then
# wasm-bindgen (its CLI pinned to the wasm-bindgen crate version in Cargo.lock, installed if
# missing or different), then index.html. No tool downloads binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
  echo "installing wasm-bindgen-cli $version (about 2 minutes, once)"
  cargo install wasm-bindgen-cli --version "$version"
fi
cargo build -p optiscope-app --lib --target wasm32-unknown-unknown --release --locked
rm -rf web/dist && mkdir -p web/dist
wasm-bindgen --target web --no-typescript --out-dir web/dist target/wasm32-unknown-unknown/release/optiscope_app.wasm
cp index.html web/dist/
echo "built web/dist ($(du -sh web/dist | cut -f1))"
