#!/usr/bin/env bash
# Generates the mobile library's Kotlin, Swift and Python bindings with the workspace's
# uniffi-bindgen and the repository's uniffi.toml (Kotlin package dev.tessera.core, Swift module
# TesseraCore), into target/bindings/ or the directory given. A given directory that exists must be
# empty or hold bindings from an earlier run: nothing else is ever deleted.
set -euo pipefail
out="${1:-$(dirname "$0")/../target/bindings}"
# An absolute path without GNU realpath (macOS runs this for the iOS build).
mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
marker=".tessera-bindings"
if [ -e "$out" ] && [ ! -d "$out" ]; then
  echo "bindings: $out is a file; give an empty or new directory" >&2
  exit 2
fi
if [ -d "$out" ] && [ -n "$(ls -A "$out")" ] && [ ! -e "$out/$marker" ]; then
  echo "bindings: $out exists and holds other files; give an empty or new directory" >&2
  exit 2
fi
cargo build --locked -p tessera-ffi --lib
cargo build --locked -p uniffi-bindgen
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
library="$target_dir/debug/libtessera_ffi.so"
[ "$(uname)" = Darwin ] && library="$target_dir/debug/libtessera_ffi.dylib"
fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT
"$target_dir/debug/uniffi-bindgen" generate --library "$library" --config uniffi.toml \
  --language kotlin --language swift --language python --no-format --out-dir "$fresh"
touch "$fresh/$marker"
rm -rf "$out"
mkdir -p "$(dirname "$out")"
cp -r "$fresh" "$out"
echo "bindings: $out (Kotlin in dev/tessera/core/, Swift TesseraCore.swift + TesseraCoreFFI.h/.modulemap, Python tessera_ffi.py)"
