#!/usr/bin/env bash
# The demo's walkthrough, run by scripts/demo.sh inside a private Secret Service session.
set -euo pipefail
demo_dir="$(mktemp -d)"
export TESSERA_VAULT="$demo_dir/vault.tessera"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

say tessera init
tessera init
say tessera add --qr docs/demo/enroll-example.png
tessera add --qr docs/demo/enroll-example.png
say tessera add "otpauth://hotp/Example%20Bank:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example%20Bank&counter=0"
tessera add "otpauth://hotp/Example%20Bank:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example%20Bank&counter=0"
say tessera list
tessera list
say tessera code demo
tessera code demo
say "oathtool --totp -b <the demo seed>   # an independent implementation agrees"
oathtool --totp -b "$(cat docs/demo/enroll-example.seed)"
say "tessera code bank   # HOTP: each call shows the next code"
tessera code bank
tessera code bank
say tessera show-qr demo
tessera show-qr demo
printf '\nThe demo vault is %s (delete it when done).\n' "$TESSERA_VAULT"
printf 'Your own vault lives in the platform data directory: run `tessera init` to create it.\n'
