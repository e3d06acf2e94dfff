#!/usr/bin/env bash
# The main job: sets up the machine, builds `tessera` and `tessera-server`, starts the server with
# SQLite, and walks through enrolling a soft token with the CLI, validating its codes with curl, and
# approving a push login with number matching, logging in with a One Swipe QR read from
# (generated) camera frames, logging in with a code sent by SMS through an SMPP gateway, and
# logging in with a password a company directory (OpenLDAP) checks, and signing in to the organisation
# from the CLI with a registration code. The browser login page is then at http://127.0.0.1:8480/login,
# the self-service portal at http://127.0.0.1:8480/portal.
# In a terminal the server keeps running afterwards (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p tessera-cli -p tessera-server -p tessera-bench
scripts/build-web.sh
export PATH="$PWD/target/release:$PATH"

# A private D-Bus session with its own gnome-keyring, so the demo never touches your keyring.
scripts/with-keyring.sh scripts/lib/demo-walkthrough.sh
