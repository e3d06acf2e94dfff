#!/usr/bin/env bash
# The demo's walkthrough, run by scripts/demo.sh inside a private Secret Service session.
set -euo pipefail
demo="$(mktemp -d)"
export TESSERA_VAULT="$demo/vault.tessera"
port="${TESSERA_DEMO_PORT:-8480}"
server="http://127.0.0.1:$port"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

# The phone network, for the SMS step: a test SMSC on Net::SMPP that prints every message it
# receives (it stops when this script's end closes its standard input).
smpp_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
printf 'demo-pw\n' > "$demo/smpp.pw"
: > "$demo/smsc.script"
mkfifo "$demo/smsc.stdin"
perl "$(dirname "$0")/../../tests/it/smpp_smsc.pl" --port "$smpp_port" --system-id tessera --password demo-pw \
  --script "$demo/smsc.script" < "$demo/smsc.stdin" > "$demo/smsc.log" 2> /dev/null &
exec 9> "$demo/smsc.stdin"
# The company directory, for the directory step: a throwaway OpenLDAP (scripts/lib/slapd.sh).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ldap_port="$(free_port)"
mkdir -p "$demo/ldap"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$demo/ldap/key.pem" -out "$demo/ldap/cert.pem" -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2> /dev/null
"$(dirname "$0")/slapd.sh" "$demo/ldap" "$ldap_port" "$(free_port)" 2> "$demo/slapd.log" &
slapd_pid=$!
printf 'service-pw\n' > "$demo/ldap.pw"
ldap_admin=(-x -H "ldap://127.0.0.1:$ldap_port" -D cn=admin,dc=example,dc=com -w admin-pw)
for _ in $(seq 100); do [ -f "$demo/ldap/base.ldif" ] && ldapadd "${ldap_admin[@]}" -f "$demo/ldap/base.ldif" > /dev/null 2>&1 && break; sleep 0.1; done
cat > "$demo/server.toml" <<TOML
[portal]
enabled = true

[[delivery.sms_gateway]]
id = "smsc"
kind = "smpp"
url = "smpp://127.0.0.1:$smpp_port"
system_id = "tessera"
secret_file = "$demo/smpp.pw"
from = "Tessera"

[[directory]]
name = "corp"
url = "ldap://127.0.0.1:$ldap_port"   # plain LDAP is allowed to this machine only; use ldaps:// or starttls elsewhere
bind_dn = "cn=tessera,ou=services,dc=example,dc=com"
bind_password_file = "$demo/ldap.pw"
base_dn = "ou=people,dc=example,dc=com"
user_filter = "(&(objectClass=inetOrgPerson)(uid={username}))"
TOML

say "tessera-server --config $demo/server.toml --data-dir $demo/server --listen 127.0.0.1:$port &   # SMS through SMPP, users from LDAP"
tessera-server --config "$demo/server.toml" --data-dir "$demo/server" --listen "127.0.0.1:$port" 2> "$demo/server.log" &
server_pid=$!
trap 'kill $server_pid $slapd_pid 2>/dev/null; wait $server_pid $slapd_pid 2>/dev/null' EXIT
for _ in $(seq 100); do curl -sf "$server/healthz" >/dev/null && break; sleep 0.1; done
sed -n '1,2p' "$demo/server.log"
admin_key="$(cat "$demo/server/admin-token")"
auth="Authorization: Bearer $admin_key"
json="Content-Type: application/json"

say "curl -X POST $server/api/v1/users -H 'Authorization: Bearer tsk_…' -d '{\"username\":\"alice\"}'"
curl -s -X POST "$server/api/v1/users" -H "$auth" -H "$json" -d '{"username":"alice"}'; echo
say "curl -X POST $server/api/v1/users/alice/tokens -H 'Authorization: Bearer tsk_…' -d '{\"kind\":\"totp\"}'"
curl -s -X POST "$server/api/v1/users/alice/tokens" -H "$auth" -H "$json" -d '{"kind":"totp"}' > "$demo/enrollment.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("serial:", d["serial"]); open(sys.argv[2],"wb").write(__import__("base64").b64decode(d["qr_png_base64"]))' \
  "$demo/enrollment.json" "$demo/enroll.png"
echo "(the enrollment QR code is saved as $demo/enroll.png)"

say tessera init
tessera init
say "tessera add --qr $demo/enroll.png"
tessera add --qr "$demo/enroll.png"
say "tessera code tessera"
code="$(tessera code tessera)"
echo "$code"

say "curl -X POST $server/api/v1/validate -d '{\"username\":\"alice\",\"passcode\":\"$code\"}'"
curl -s -X POST "$server/api/v1/validate" -H "$json" -d "{\"username\":\"alice\",\"passcode\":\"$code\"}"; echo
say "# the same code again: a replay"
curl -s -X POST "$server/api/v1/validate" -H "$json" -d "{\"username\":\"alice\",\"passcode\":\"$code\"}"; echo
say "# push approval: a push token for alice, enrolled from the QR code the server returns"
say "curl -X POST $server/api/v1/users/alice/tokens -H 'Authorization: Bearer tsk_…' -d '{\"kind\":\"push\"}'"
curl -s -X POST "$server/api/v1/users/alice/tokens" -H "$auth" -H "$json" -d '{"kind":"push"}' > "$demo/push.json"
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]) or "")' "$@"; }
python3 -c 'import json,sys,base64; open(sys.argv[2],"wb").write(base64.b64decode(json.load(open(sys.argv[1]))["qr_png_base64"]))' \
  "$demo/push.json" "$demo/push.png"
echo "serial: $(field "$demo/push.json" serial)"
say "tessera enroll $demo/push.png --yes   # shows the server, organization and account; --yes confirms"
tessera enroll "$demo/push.png" --yes
say "curl -X POST $server/api/v1/validate -d '{\"username\":\"alice\",\"passcode\":\"\"}'   # empty passcode: push"
curl -s -X POST "$server/api/v1/validate" -H "$json" -d '{"username":"alice","passcode":""}' | tee "$demo/challenge.json"; echo
transaction="$(field "$demo/challenge.json" transaction_id)"
number="$(field "$demo/challenge.json" number)"
say "tessera push approve $transaction --number $number   # what tapping the number does"
tessera push approve "$transaction" --number "$number"
say "curl $server/api/v1/transactions/$transaction?wait=10"
curl -s "$server/api/v1/transactions/$transaction?wait=10"; echo
say "curl -X POST $server/api/v1/validate -d '{\"username\":\"alice\",\"transaction_id\":\"$transaction\"}'"
curl -s -X POST "$server/api/v1/validate" -H "$json" -d "{\"username\":\"alice\",\"transaction_id\":\"$transaction\"}"; echo

say "# One Swipe: the device shows a one-time QR; the login side's camera reads it"
say "tessera oneswipe --png $demo/oneswipe.png"
tessera oneswipe --png "$demo/oneswipe.png"
say "tessera-framegen --qr $demo/oneswipe.png --out $demo/camera   # webcam-like frames (no camera here)"
tessera-framegen --qr "$demo/oneswipe.png" --out "$demo/camera" --count 12
say "tessera scan --frames $demo/camera --kind oneswipe"
payload="$(tessera scan --frames "$demo/camera" --kind oneswipe)"
echo "$payload"
say "curl -X POST $server/api/v1/oneswipe -d '{\"payload\":\"…\"}'"
curl -s -X POST "$server/api/v1/oneswipe" -H "$json" -d "{\"payload\":\"$payload\"}"; echo
say "# the same code again: refused"
curl -s -X POST "$server/api/v1/oneswipe" -H "$json" -d "{\"payload\":\"$payload\"}"; echo

say "# a user without the app: bob gets his codes by SMS, a fresh one at each login (real-time mode)"
say "curl -X POST $server/api/v1/users -H 'Authorization: Bearer tsk_…' -d '{\"username\":\"bob\",\"password\":\"2580\",\"phone\":\"+447700900123\"}'"
curl -s -X POST "$server/api/v1/users" -H "$auth" -H "$json" -d '{"username":"bob","password":"2580","phone":"+447700900123"}'; echo
say "curl -X POST $server/api/v1/users/bob/tokens -H 'Authorization: Bearer tsk_…' -d '{\"kind\":\"sms\",\"mode\":\"realtime\"}'"
curl -s -X POST "$server/api/v1/users/bob/tokens" -H "$auth" -H "$json" -d '{"kind":"sms","mode":"realtime"}'; echo
say "curl -X POST $server/api/v1/validate -d '{\"username\":\"bob\",\"password\":\"2580\",\"passcode\":\"\"}'   # the right password sends a code"
curl -s -X POST "$server/api/v1/validate" -H "$json" -d '{"username":"bob","password":"2580","passcode":""}' | tee "$demo/sms.json"; echo
say "# what reached bob's phone (the SMSC's log)"
sms=""
for _ in $(seq 100); do
  sms="$(python3 -c 'import json,sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event") == "submit": print(e["short_message"])' "$demo/smsc.log" | tail -1)"
  [ -n "$sms" ] && break
  sleep 0.1
done
echo "${sms:-no message arrived: see $demo/server.log}"
sms_code="$(printf '%s' "$sms" | grep -oE '[0-9]{6}' | head -1 || true)"
transaction="$(field "$demo/sms.json" transaction_id)"
say "curl -X POST $server/api/v1/validate -d '{\"username\":\"bob\",\"transaction_id\":\"$transaction\",\"passcode\":\"$sms_code\"}'"
curl -s -X POST "$server/api/v1/validate" -H "$json" -d "{\"username\":\"bob\",\"transaction_id\":\"$transaction\",\"passcode\":\"$sms_code\"}"; echo

say "# a user from the company directory: carol's password lives in OpenLDAP, and Tessera checks it by binding as her"
ldapadd "${ldap_admin[@]}" > /dev/null <<'LDIF'
dn: uid=carol,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: carol
cn: Carol Chen
sn: Chen
mobile: +44 7700 900456
mail: carol@example.com
userPassword: carol-directory-pw
LDIF
say "curl -X POST $server/api/v1/validate -d '{\"username\":\"carol\",\"password\":\"carol-directory-pw\",\"passcode\":\"\"}'   # her first login creates her"
curl -s -X POST "$server/api/v1/validate" -H "$json" -d '{"username":"carol","password":"carol-directory-pw","passcode":""}'; echo
say "curl $server/api/v1/users/carol -H 'Authorization: Bearer tsk_…'"
curl -s "$server/api/v1/users/carol" -H "$auth"; echo
say "curl -X POST $server/api/v1/users/carol/tokens -H 'Authorization: Bearer tsk_…' -d '{\"kind\":\"totp\"}'"
curl -s -X POST "$server/api/v1/users/carol/tokens" -H "$auth" -H "$json" -d '{"kind":"totp"}' > "$demo/carol.json"
carol_uri="$(field "$demo/carol.json" otpauth_uri)"
say "tessera add - <<< 'otpauth://totp/Tessera:carol?…'"
printf '%s\n' "$carol_uri" | tessera add -
carol_code="$(tessera code carol)"
say "curl -X POST $server/api/v1/validate -d '{\"username\":\"carol\",\"password\":\"carol-directory-pw\",\"passcode\":\"$carol_code\"}'"
curl -s -X POST "$server/api/v1/validate" -H "$json" -d "{\"username\":\"carol\",\"password\":\"carol-directory-pw\",\"passcode\":\"$carol_code\"}"; echo

say "curl -X POST $server/api/v1/users -H 'Authorization: Bearer tsk_…' -d '{\"username\":\"dana\",\"password\":\"2580\"}'   # no token yet"
curl -s -X POST "$server/api/v1/users" -H "$auth" -H "$json" -d '{"username":"dana","password":"2580"}'; echo
say "curl -X POST $server/api/v1/users/dana/registration-code -H 'Authorization: Bearer tsk_…' -d '{}'   # the help desk"
curl -s -X POST "$server/api/v1/users/dana/registration-code" -H "$auth" -H "$json" -d '{}' > "$demo/dana.json"
dana_code="$(field "$demo/dana.json" code)"
say "tessera signin $server --username dana --name demo   # password 2580, then the registration code: no QR code"
printf '2580\n%s\n' "$dana_code" | tessera signin "$server" --username dana --name demo
say "curl -X POST $server/api/v1/users/erin/registration-code …   # erin enrols her phone in the portal herself"
curl -s -X POST "$server/api/v1/users" -H "$auth" -H "$json" -d '{"username":"erin","password":"2580"}' > /dev/null
curl -s -X POST "$server/api/v1/users/erin/registration-code" -H "$auth" -H "$json" -d '{}' > "$demo/erin.json"
erin_link="$(field "$demo/erin.json" portal_url)"

say "curl $server/api/v1/audit?username=alice -H 'Authorization: Bearer tsk_…'"
curl -s "$server/api/v1/audit?username=alice&limit=4" -H "$auth"; echo

printf '\nThe login page is at %s/login (passcode, push, or One Swipe with a webcam: run `tessera oneswipe`).\n' "$server"
printf 'There bob (password 2580) gets his code by SMS: the messages land in %s/smsc.log.\n' "$demo"
printf 'carol logs in there with her directory password (carol-directory-pw) and a code from `tessera code carol`.\n' 
printf 'The self-service portal is at %s/portal: dana signs in with 2580 and `tessera code dana`;\n' "$server"
printf 'erin (password 2580) enrols her first phone from %s\n' "$erin_link"
printf 'The API is described at %s/api/v1/openapi.json; metrics are at %s/metrics.\n' "$server" "$server"
printf 'Admin key: %s   Demo files: %s\n' "$admin_key" "$demo"
if [ -t 0 ]; then
  printf '\nThe server keeps running at %s with the demo vault (TESSERA_VAULT=%s). Ctrl-C stops it.\n' "$server" "$TESSERA_VAULT"
  wait $server_pid
fi
