#!/usr/bin/env bash
# Benchmarks: the core's criterion suite (codes, verification, vault open/save, Argon2id unlock,
# QR decoding), whole `tessera` processes timed with hyperfine against a real Secret Service, and
# the verification server under load (tessera-loadgen) on SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"

cargo bench --locked -p tessera-core --bench core -- --warm-up-time 1 --measurement-time 3
cargo build --release --locked -p tessera-cli -p tessera-server

scripts/with-keyring.sh scripts/lib/process-bench.sh

for connections in 8 16 32; do
  ./target/release/tessera-loadgen --seconds 10 --concurrency "$connections"
done
scripts/with-postgres.sh sh -c '
  for connections in 8 16; do
    psql "$TESSERA_TEST_POSTGRES_URL" -q -c "DROP DATABASE IF EXISTS tessera_bench" -c "CREATE DATABASE tessera_bench"
    ./target/release/tessera-loadgen --seconds 10 --concurrency "$connections" --database-url "${TESSERA_TEST_POSTGRES_URL%/*}/tessera_bench"
  done'
