#!/usr/bin/env bash
# Builds the desktop app's web UI (ui/, TypeScript + Vite) into ui/dist, which the tessera-desktop
# crate embeds when it compiles; runs its unit tests (Vitest) first when given --test.
set -euo pipefail
cd "$(dirname "$0")/../ui"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ "${1:-}" = "--test" ]; then
  npx vitest run
fi
npm run build --silent
