#!/usr/bin/env bash
# Whole-process timings of the release `tessera`, run by scripts/bench.sh inside a private Secret Service session.
set -euo pipefail
dir="$(mktemp -d)"
export TESSERA_VAULT="$dir/vault.tessera"
./target/release/tessera init 2>/dev/null
for i in $(seq 1 999); do
  printf 'otpauth://totp/Issuer%%20%d:user%d@example.com?secret=%s\n' "$i" "$i" "$(head -c 20 /dev/urandom | base32)"
done > "$dir/tokens.txt"
./target/release/tessera import --otpauth "$dir/tokens.txt" 2>/dev/null
./target/release/tessera add 'otpauth://totp/Target:me?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP' 2>/dev/null
echo "tessera processes on a 1,000-token vault, OS key store slot (gnome-keyring over D-Bus):"
hyperfine --warmup 5 --runs 50 -N \
  "./target/release/tessera code target:me" \
  "./target/release/tessera code target:me --at 1700000000" \
  "./target/release/tessera list"
