#!/usr/bin/env bash
# Generates the mobile library's Kotlin, Swift and Python bindings with the workspace's
# uniffi-bindgen and the repository's uniffi.toml (Kotlin package dev.tessera.core, Swift module
# TesseraCore), into target/bindings/ or the directory given.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/bindings}"
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --locked -p tessera-ffi --lib
cargo build --locked -p uniffi-bindgen
rm -rf "$out"
target/debug/uniffi-bindgen generate --library target/debug/libtessera_ffi.so --config uniffi.toml \
  --language kotlin --language swift --language python --no-format --out-dir "$out"
echo "bindings: $out (Kotlin in $out/dev/tessera/core/, Swift TesseraCore.swift + TesseraCoreFFI.h/.modulemap, Python tessera_ffi.py)"
