#!/usr/bin/env bash
# Installs what building and testing Tessera needs on Debian 12 (bookworm): system packages via
# apt, and a Rust toolchain via rustup if there is none. Safe to run again; it skips what is there.
set -euo pipefail

packages=(
  build-essential pkg-config curl ca-certificates
  libdbus-1-dev dbus gnome-keyring   # keyring crate + a real Secret Service for its tests
  oathtool                           # reference OTP generator the tests compare against
  faketime                           # a phone whose clock shows a code made minutes ago
  postgresql                         # the shared database of server replicas, tested for real
  hyperfine                          # whole-process timings in scripts/bench.sh
  python3                            # the demo unpacks the enrollment QR from JSON
  openssl                            # RSA service-account keys for the FCM wake-up tests
  libclang-dev                       # bindgen for nokhwa's V4L2 camera bindings
  chromium chromium-driver           # the browser login page's tests (fake camera, WebDriver)
  libwebkit2gtk-4.1-dev libxdo-dev libayatana-appindicator3-dev librsvg2-dev libssl-dev file
                                     # the Tauri 2 desktop app (WebKitGTK web view, tray)
  webkit2gtk-driver xvfb xauth xclip x11-apps python3-xlib
                                     # its end-to-end tests: WebKitWebDriver, a virtual X display, the clipboard,
                                     # xwd for screenshots, python3-xlib to play the window manager
  default-jre-headless libjna-java   # the mobile library's Kotlin bindings, run on the JVM through JNA
  kannel kannel-extras               # a real SMS gateway (smsbox's sendsms, bearerbox, the fake SMSC) for SMS codes
  python3-aiosmtpd                   # a real SMTP server (STARTTLS, AUTH) for codes by email
  libnet-smpp-perl socat             # an SMSC in the SMPP 3.4 server role (Net::SMPP), and TLS in front of it
  python3-pskc                       # PSKC seed files written by an independent implementation, for the import tests
  slapd ldap-utils openssl           # a real OpenLDAP directory (its tools, a certificate for it) for directory users
  freeradius-utils python3-pyrad     # radclient, and pyrad for the packets radclient cannot send: a RADIUS listener's clients
  libpam-radius-auth pamtester tmux  # pam_radius driven by pamtester in a terminal, typed into as a person would
  freeradius                         # FreeRADIUS as the proxy a company puts in front of Tessera's RADIUS listener
  sip-tester                         # SIPp, and its recorded RFC 4733 key presses the voice tokens' DTMF reader is tested on
  baresip-core espeak-ng sox         # a real SIP desk phone for voice calls; the spoken prompt (scripts/voice-prompt.sh)
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# Node.js (18 or newer: Debian 12's) for the desktop UI's build (Vite 6) and unit tests (Vitest 3); a
# machine may already have a newer one than Debian's, with its own npm.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
  export PATH="$HOME/.cargo/bin:$PATH"
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

# tauri-driver: the WebDriver front for the desktop app's end-to-end tests (drives WebKitWebDriver).
if [ "$(tauri-driver --version 2>/dev/null)" != "tauri-driver 2.1.0" ]; then
  cargo install tauri-driver --version 2.1.0 --locked
fi

# kotlinc for the Kotlin binding tests (npm's kotlin-compiler: the compiler, the standard library
# and kotlinx-coroutines), in tools/kotlin (git-ignored).
kotlin_version=2.4.20
kotlin_dir="$(cd "$(dirname "$0")/.." && pwd)/tools/kotlin"
if ! grep -q "\"version\": \"$kotlin_version\"" "$kotlin_dir/node_modules/kotlin-compiler/package.json" 2>/dev/null; then
  mkdir -p "$kotlin_dir"
  (cd "$kotlin_dir" && { [ -f package.json ] || npm init -y >/dev/null; } &&
    npm install --no-audit --no-fund --loglevel=error "kotlin-compiler@$kotlin_version")
fi

# axe-core for the accessibility checks of the portal's pages in Chromium (Debian has no
# package), in tools/axe (git-ignored).
axe_version=4.14.1
axe_dir="$(cd "$(dirname "$0")/.." && pwd)/tools/axe"
if ! grep -q "\"version\": \"$axe_version\"" "$axe_dir/node_modules/axe-core/package.json" 2>/dev/null; then
  mkdir -p "$axe_dir"
  (cd "$axe_dir" && { [ -f package.json ] || npm init -y >/dev/null; } &&
    npm install --no-audit --no-fund --loglevel=error "axe-core@$axe_version")
fi
