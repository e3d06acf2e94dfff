#!/usr/bin/env bash
# Benchmarks: the core's criterion suite (codes, verification, vault open/save, Argon2id unlock,
# QR decoding), whole `tessera` processes timed with hyperfine against a real Secret Service, the
# verification server under load (tessera-loadgen), and push latency with 10,000 connected devices
# (tessera-pushbench), codes by SMS through a gateway stand-in (tessera-smsbench), on SQLite and PostgreSQL,
# directory passwords checked by bind against a real slapd next to local ones (tessera-dirbench), QR decoders on webcam-like frames (tessera-scanbench), and
# the self-service portal's page times and weights (tessera-portalbench), RADIUS beside HTTP
# validation (tessera-radiusbench), voice-token logins answered and keyed by a SIP phone stand-in
# (tessera-voicebench), and
# the desktop app's start to first code, idle memory and package size (tessera-desktopbench).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"

cargo bench --locked -p tessera-core --bench core -- --warm-up-time 1 --measurement-time 3
cargo build --release --locked -p tessera-cli -p tessera-server -p tessera-bench

scripts/with-keyring.sh scripts/lib/process-bench.sh

for connections in 8 16 32; do
  ./target/release/tessera-loadgen --seconds 10 --concurrency "$connections"
done
./target/release/tessera-loadgen --seconds 10 --concurrency 16 --application-key
./target/release/tessera-pushbench --devices 10000 --round-trips 1000
./target/release/tessera-smsbench --logins 500 --messages 5000 --concurrency 32
./target/release/tessera-dirbench --users 200 --logins 500 --concurrency 16 --seconds 10
./target/release/tessera-portalbench --requests 2000 --devices 5
./target/release/tessera-radiusbench --seconds 10 --concurrency 16
./target/release/tessera-voicebench --logins 200
for seed in 11 12; do ./target/release/tessera-scanbench --frames 500 --seed "$seed"; done
scripts/build-deb.sh
scripts/with-keyring.sh ./target/release/tessera-desktopbench --runs 5 --tokens 20 --idle 10
scripts/with-postgres.sh sh -c '
  for connections in 8 16; do
    psql "$TESSERA_TEST_POSTGRES_URL" -q -c "DROP DATABASE IF EXISTS tessera_bench" -c "CREATE DATABASE tessera_bench"
    ./target/release/tessera-loadgen --seconds 10 --concurrency "$connections" --database-url "${TESSERA_TEST_POSTGRES_URL%/*}/tessera_bench"
  done
  psql "$TESSERA_TEST_POSTGRES_URL" -q -c "DROP DATABASE IF EXISTS tessera_bench" -c "CREATE DATABASE tessera_bench"
  ./target/release/tessera-pushbench --devices 10000 --round-trips 1000 --database-url "${TESSERA_TEST_POSTGRES_URL%/*}/tessera_bench"
  for replicas in 1 2; do
    psql "$TESSERA_TEST_POSTGRES_URL" -q -c "DROP DATABASE IF EXISTS tessera_bench" -c "CREATE DATABASE tessera_bench"
    ./target/release/tessera-smsbench --logins 500 --messages 5000 --concurrency 32 --replicas "$replicas" --database-url "${TESSERA_TEST_POSTGRES_URL%/*}/tessera_bench"
  done'
