#!/usr/bin/env bash
# Runs a command with a real PostgreSQL: starts Debian's cluster if it is down, makes sure a
# `tessera` role (password `tessera`, allowed to create databases) exists, and exports
# TESSERA_TEST_POSTGRES_URL for the tests, which create a fresh database per test.
set -euo pipefail
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
read -r version cluster port status _ < <(pg_lsclusters -h | head -n 1)
if [ "$status" != "online" ]; then
  $sudo pg_ctlcluster "$version" "$cluster" start
fi
$sudo runuser -u postgres -- psql -q -p "$port" -v ON_ERROR_STOP=1 <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tessera') THEN
    CREATE ROLE tessera LOGIN PASSWORD 'tessera' CREATEDB;
  END IF;
END $$;
SQL
export TESSERA_TEST_POSTGRES_URL="postgres://tessera:tessera@127.0.0.1:$port/postgres"
exec "$@"
