#!/usr/bin/env bash
# Benchmarks: the core's criterion suite (codes, verification, vault open/save, Argon2id unlock,
# QR decoding), then whole `tessera` processes timed with hyperfine against a real Secret Service.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"

cargo bench --locked -p tessera-core --bench core -- --warm-up-time 1 --measurement-time 3
cargo build --release --locked -p tessera-cli

scripts/with-keyring.sh scripts/lib/process-bench.sh
