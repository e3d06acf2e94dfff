#!/usr/bin/env bash
# Builds the desktop app's Debian package (release build, UI included) with the Tauri CLI from
# ui/node_modules; prints where the .deb is.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/build-ui.sh
ui/node_modules/.bin/tauri build --bundles deb
ls -l target/release/bundle/deb/*.deb
