#!/usr/bin/env bash
# The main job: sets up the machine, builds the `tessera` CLI, and walks through a soft token's
# life in a throwaway vault: create it, add a token from an enrollment QR image, show codes.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p tessera-cli
export PATH="$PWD/target/release:$PATH"

# A private D-Bus session with its own gnome-keyring, so the demo never touches your keyring.
scripts/with-keyring.sh scripts/lib/demo-walkthrough.sh
