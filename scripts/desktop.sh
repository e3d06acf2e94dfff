#!/usr/bin/env bash
# Builds and starts the desktop app (release build) on this machine's display. The vault is the
# same as the CLI's (TESSERA_VAULT to use another). Without a display, it runs on a virtual one
# (Xvfb) so that it can at least be driven by tauri-driver.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"
scripts/build-ui.sh
cargo build --locked --release -p tessera-desktop
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "desktop: no display; running on a virtual one (xvfb-run)"
  exec xvfb-run -a -s "-screen 0 1280x800x24" target/release/tessera-desktop
fi
exec target/release/tessera-desktop
