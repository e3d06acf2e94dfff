#!/usr/bin/env bash
# The whole test suite, as CI runs it: machine setup, formatting, lints, build, then every test
# (unit, property, oathtool cross-checks, the CLI against a real Secret Service, the server
# against SQLite and a real PostgreSQL, the browser login page in headless Chromium, the desktop
# app's UI unit tests in Vitest and the real desktop app under Xvfb through tauri-driver, the
# mobile library's Kotlin bindings on the JVM and its Python bindings against a real server).
set -euo pipefail
cd "$(dirname "$0")/.."

# `--only STAGE` (repeatable) runs just those stages, for working on one of them; stages:
# setup fmt ui clippy cross build ffi mobile web test. Without it, every stage runs, in this order.
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only+=("${2:?--only needs a stage}"); shift 2 ;;
    *) echo "usage: scripts/test.sh [--only STAGE]..." >&2; exit 2 ;;
  esac
done
stages=(setup fmt ui clippy cross build ffi mobile web test)
for stage in "${only[@]}"; do
  [[ " ${stages[*]} " == *" $stage "* ]] || { echo "unknown stage '$stage'; stages: ${stages[*]}" >&2; exit 2; }
done
wanted() { [ ${#only[@]} -eq 0 ] || [[ " ${only[*]} " == *" $1 "* ]]; }

wanted setup && scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

# A suite run compiles each crate once: incremental caches only swell the target directory (they
# once pushed a CI disk to "No space left on device"; without them a clean run leaves 6.4 GiB).
# CARGO_INCREMENTAL=1 keeps them.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
free_gib=$(df -Pk . | awk 'NR == 2 { print int($4 / 1048576) }')
if [ "${free_gib:-0}" -lt 10 ]; then
  echo "warning: ${free_gib} GiB free here; a clean run of the suite needs about 7 GiB" >&2
fi
if wanted fmt; then
  step "cargo fmt --check"
  cargo fmt --all -- --check
fi
# The desktop crate embeds ui/dist when it compiles, so the UI is built before anything else.
if wanted ui; then
  step "desktop UI: Vitest unit tests, TypeScript check, Vite build"
  scripts/build-ui.sh --test
fi
if wanted clippy; then
  step "cargo clippy -D warnings"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi
# All OS-specific code lives in core (file modes, locking) and platform (keyring backends), so
# checking them covers it. The CLI and client link ring, whose C sources need the target's SDK
# headers (MSVC, Xcode) that this machine does not have.
if wanted cross; then
  step "cargo check for Windows and macOS (compile only: no SDKs on this machine)"
  rustup target add x86_64-pc-windows-msvc aarch64-apple-darwin >/dev/null 2>&1
  for target in x86_64-pc-windows-msvc aarch64-apple-darwin; do
    cargo check --locked -p tessera-core -p tessera-platform --target "$target"
  done
fi
if wanted build; then
  step "cargo build (binaries the end-to-end tests run)"
  cargo build --workspace --bins --locked
fi
# Built on its own, as the phones get it: with graviola, without ring (a workspace build would
# unify the client's features and link ring too).
if wanted ffi; then
  step "the mobile library (tessera-ffi) for the Kotlin and Python binding tests"
  cargo build --locked -p tessera-ffi --lib
fi
# No Android NDK or Apple SDK here, so nothing can be linked; static libraries need no linker and
# prove every crate of the library compiles, and its assembly assembles, for the phones.
if wanted mobile; then
  step "the mobile library for Android and iOS (aarch64 static libraries)"
  rustup target add aarch64-linux-android aarch64-apple-ios >/dev/null 2>&1
  for target in aarch64-linux-android aarch64-apple-ios; do
    cargo rustc --locked -p tessera-ffi --lib --target "$target" --crate-type staticlib
  done
fi
if wanted web; then
  step "the login page's One Swipe decoder (WebAssembly)"
  scripts/build-web.sh
fi
if wanted test; then
  step "cargo test (with PostgreSQL, inside a private D-Bus session with gnome-keyring)"
  # A test that hangs fails the run after 40 minutes (the suite takes about 10 here, 15 on CI);
  # the harness has by then named every test running for over 60 seconds.
  timeout --kill-after=1m 40m scripts/with-postgres.sh scripts/with-keyring.sh cargo test --workspace --locked \
    || { status=$?; [ $status -ne 124 ] || echo "the tests did not finish within 40 minutes" >&2; exit $status; }
fi
if [ ${#only[@]} -eq 0 ]; then step "all checks passed"; else step "passed: ${only[*]}"; fi
