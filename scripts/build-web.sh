#!/usr/bin/env bash
# Builds the login page's One Swipe decoder: the tessera-wasm crate (Tessera's QR decoder) for
# wasm32-unknown-unknown, then wasm-bindgen's browser bindings, into `web/` beside the built server
# binaries (target/debug/web and target/release/web), where tessera-server looks by default; and
# the spoken prompt voice-token calls play, `voice/enter-code.wav` beside them (espeak-ng and sox,
# through scripts/voice-prompt.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# wasm-bindgen's command-line tool must be exactly the version of the crate in Cargo.lock.
version=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$version" ]; then
  cargo install wasm-bindgen-cli --version "$version"
fi
rustup target add wasm32-unknown-unknown >/dev/null 2>&1
cargo build --locked --release -p tessera-wasm --target wasm32-unknown-unknown

target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
out="$target_dir/web"
wasm-bindgen --target web --no-typescript --out-dir "$out" \
  "$target_dir/wasm32-unknown-unknown/release/tessera_wasm.wasm"
for profile in debug release; do
  mkdir -p "$target_dir/$profile/web"
  cp "$out/tessera_wasm.js" "$out/tessera_wasm_bg.wasm" "$target_dir/$profile/web/"
done
echo "web decoder: $(du -k "$out/tessera_wasm_bg.wasm" | cut -f1) KiB in $target_dir/{debug,release}/web"
for profile in debug release; do
  mkdir -p "$target_dir/$profile/voice"
  scripts/voice-prompt.sh "$target_dir/$profile/voice/enter-code.wav"
done
echo "voice prompt: $target_dir/{debug,release}/voice/enter-code.wav"
