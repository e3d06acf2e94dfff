#!/usr/bin/env bash
# The fast inner loop: formatting, lints and the unit tests of the crates that hold the rules (core,
# client, server) plus the desktop UI's Vitest tests. No root, no services, no end-to-end tests:
# minutes on a warm machine, once scripts/setup-debian.sh has installed the packages (some unit tests read
# their files, such as SIPp's recorded key presses). The whole suite, as CI runs it, is scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy -D warnings (core, client, server, CLI)"
cargo clippy --locked -p tessera-core -p tessera-client -p tessera-server -p tessera-cli --all-targets -- -D warnings
step "unit tests: core, client, server"
# The store's contract test runs on SQLite here; under scripts/with-postgres.sh on PostgreSQL too.
if [ -z "${TESSERA_TEST_POSTGRES_URL:-}" ]; then export TESSERA_TEST_SQLITE_ONLY=1; fi
cargo test --locked -p tessera-core -p tessera-client -p tessera-server
if [ -d ui/node_modules ]; then
  step "desktop UI: Vitest"
  (cd ui && npx vitest run)
else
  step "desktop UI: skipped, no ui/node_modules (scripts/build-ui.sh --test installs them)"
fi
step "fast checks passed"
