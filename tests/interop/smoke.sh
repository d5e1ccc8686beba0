#!/usr/bin/env bash
# Smoke test of provider.mjs with curl (node is used only to read JSON and JWT payloads).
# Usage: tests/interop/smoke.sh      (after `npm ci --prefix tests/interop`)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
JAR="$WORK/cookies"
PROVIDER_PID=
cleanup() {
  exec 3>&- 2>/dev/null || true        # closing the provider's stdin stops it
  if [ -n "$PROVIDER_PID" ]; then kill "$PROVIDER_PID" 2>/dev/null || true; wait "$PROVIDER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; echo "--- provider stderr:" >&2; cat "$WORK/stderr" >&2 || true; exit 1; }
ok() { echo "ok   $*"; }
# jget FILE EXPR: evaluate a JS expression over the JSON document `j` in FILE.
jget() { node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); const v=eval(process.argv[2]); process.stdout.write(v===undefined?"":typeof v==="string"?v:JSON.stringify(v))' "$1" "$2"; }
# jwt_payload TOKEN: the decoded JSON payload (no verification, for display and checks only).
jwt_part() { node -e 'process.stdout.write(Buffer.from(process.argv[1].split(".")[+process.argv[2]],"base64url").toString())' "$1" "$2"; }
# query_param URL NAME
query_param() { node -e 'const v=new URL(process.argv[1]).searchParams.get(process.argv[2]); process.stdout.write(v===null?"":v)' "$1" "$2"; }

# --- start the provider; its stdin is a FIFO held open on fd 3 ---------------------------------
mkfifo "$WORK/stdin"
node "$HERE/provider.mjs" --port 0 --keys "$WORK/keys.json" <"$WORK/stdin" >"$WORK/stdout" 2>"$WORK/stderr" &
PROVIDER_PID=$!
exec 3>"$WORK/stdin"
for _ in $(seq 300); do grep -q '^READY ' "$WORK/stdout" && break; sleep 0.1; done
grep -q '^READY ' "$WORK/stdout" || fail "provider did not print READY"
[ "$(wc -l <"$WORK/stdout")" -eq 1 ] || fail "stdout must be exactly one line"
ISSUER=$(awk '{print $2}' "$WORK/stdout")
ok "started: $ISSUER"

# --- discovery ----------------------------------------------------------------------------------
curl -sf "$ISSUER/.well-known/openid-configuration" -o "$WORK/disc.json" || fail discovery
[ "$(jget "$WORK/disc.json" j.issuer)" = "$ISSUER" ] || fail "discovery issuer"
[ "$(jget "$WORK/disc.json" 'j.code_challenge_methods_supported.join()')" = "S256" ] || fail "pkce methods"
[ "$(jget "$WORK/disc.json" j.authorization_response_iss_parameter_supported)" = "true" ] || fail "iss param"
AUTHZ=$(jget "$WORK/disc.json" j.authorization_endpoint)
TOKEN=$(jget "$WORK/disc.json" j.token_endpoint)
USERINFO=$(jget "$WORK/disc.json" j.userinfo_endpoint)
REVOKE=$(jget "$WORK/disc.json" j.revocation_endpoint)
INTROSPECT=$(jget "$WORK/disc.json" j.introspection_endpoint)
JWKS=$(jget "$WORK/disc.json" j.jwks_uri)
curl -sf "$JWKS" -o "$WORK/jwks.json" || fail jwks
[ "$(jget "$WORK/jwks.json" 'j.keys.map(k=>k.alg).join()')" = "RS256,ES256,EdDSA" ] || fail "jwks algs"
[ "$(jget "$WORK/jwks.json" 'j.keys.some(k=>k.d)')" = "false" ] || fail "jwks leaks private keys"
ok "discovery + jwks (RS256, ES256, EdDSA public keys only)"

# --- authorization code + PKCE for client_basic, following redirects with a cookie jar --------
REDIRECT_URI=http://127.0.0.1:7777/callback
# RFC 7636 appendix B example pair.
VERIFIER=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk
CHALLENGE=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM
STATE=st_$RANDOM$RANDOM
NONCE=nn_$RANDOM$RANDOM
URL="$AUTHZ?client_id=client_basic&response_type=code&scope=openid%20email%20profile&redirect_uri=$(printf %s "$REDIRECT_URI" | sed 's/:/%3A/g;s#/#%2F#g')&state=$STATE&nonce=$NONCE&code_challenge=$CHALLENGE&code_challenge_method=S256&org=org_acme"
HOPS=0
while :; do
  case "$URL" in "$REDIRECT_URI"*) break ;; esac
  HOPS=$((HOPS + 1)); [ $HOPS -le 10 ] || fail "too many redirects"
  read -r STATUS NEXT < <(curl -s -o /dev/null -b "$JAR" -c "$JAR" -w '%{http_code} %{redirect_url}\n' "$URL")
  echo "     $STATUS ${URL%%\?*} -> ${NEXT%%\?*}"
  case "$STATUS" in 302|303) ;; *) fail "unexpected status $STATUS at $URL" ;; esac
  URL=$NEXT
done
CODE=$(query_param "$URL" code)
[ -n "$CODE" ] || fail "no code in callback: $URL"
[ "$(query_param "$URL" state)" = "$STATE" ] || fail "state"
[ "$(query_param "$URL" iss)" = "$ISSUER" ] || fail "RFC 9207 iss"
ok "authorization: code, state and iss on the callback after $HOPS hops"

# --- code exchange (client_secret_basic) --------------------------------------------------------
BASIC=(-u client_basic:client_basic_secret)
curl -s "${BASIC[@]}" "$TOKEN" -d grant_type=authorization_code --data-urlencode "code=$CODE" \
  --data-urlencode "redirect_uri=$REDIRECT_URI" -d code_verifier=$VERIFIER -o "$WORK/t1.json"
AT1=$(jget "$WORK/t1.json" j.access_token); RT1=$(jget "$WORK/t1.json" j.refresh_token); IDT=$(jget "$WORK/t1.json" j.id_token)
[ -n "$AT1" ] && [ -n "$RT1" ] && [ -n "$IDT" ] || fail "token response: $(cat "$WORK/t1.json")"
[ "$(jget "$WORK/t1.json" j.expires_in)" = "600" ] || fail "access token ttl"
jwt_part "$IDT" 0 >"$WORK/idh.json"; jwt_part "$IDT" 1 >"$WORK/idp.json"
[ "$(jget "$WORK/idh.json" j.alg)" = "RS256" ] || fail "id token alg"
[ "$(jget "$WORK/idp.json" '[j.iss,j.sub,j.aud,j.nonce,j.email,j.name,j.org_id,j.organizations[0].id].join()')" = \
  "$ISSUER,usr_alice,client_basic,$NONCE,alice@example.com,Alice Example,org_acme,org_acme" ] || fail "id token claims: $(cat "$WORK/idp.json")"
ok "code exchange: access, refresh and ID token (RS256; sub, email, name, org_id, organizations)"

# --- userinfo -------------------------------------------------------------------------------------
curl -sf -H "Authorization: Bearer $AT1" "$USERINFO" -o "$WORK/ui.json" || fail userinfo
[ "$(jget "$WORK/ui.json" '[j.sub,j.email,j.email_verified,j.org_id,j.organizations[0].scopes.join(" ")].join()')" = \
  "usr_alice,alice@example.com,true,org_acme,owner projects:**" ] || fail "userinfo: $(cat "$WORK/ui.json")"
ok "userinfo: $(cat "$WORK/ui.json" | head -c 120)..."

# --- refresh twice (client_secret_basic), then replay the first refresh token --------------------
refresh() { curl -s "${BASIC[@]}" "$TOKEN" -d grant_type=refresh_token --data-urlencode "refresh_token=$1" -o "$2"; }
refresh "$RT1" "$WORK/t2.json"; RT2=$(jget "$WORK/t2.json" j.refresh_token); AT2=$(jget "$WORK/t2.json" j.access_token)
[ -n "$RT2" ] && [ "$RT2" != "$RT1" ] || fail "first refresh did not rotate: $(cat "$WORK/t2.json")"
[ -n "$(jget "$WORK/t2.json" j.id_token)" ] || fail "refresh returned no id_token"
refresh "$RT2" "$WORK/t3.json"; RT3=$(jget "$WORK/t3.json" j.refresh_token); AT3=$(jget "$WORK/t3.json" j.access_token)
[ -n "$RT3" ] && [ "$RT3" != "$RT2" ] || fail "second refresh did not rotate: $(cat "$WORK/t3.json")"
ok "refresh twice: refresh token rotated each time, new ID token each time"
refresh "$RT1" "$WORK/t4.json"
[ "$(jget "$WORK/t4.json" j.error)" = "invalid_grant" ] || fail "replay: $(cat "$WORK/t4.json")"
ok "replayed refresh token => invalid_grant ($(jget "$WORK/t4.json" j.error_description))"
# Reuse detection revoked the whole grant: the newest refresh token and access token are dead too.
refresh "$RT3" "$WORK/t5.json"
[ "$(jget "$WORK/t5.json" j.error)" = "invalid_grant" ] || fail "grant not revoked on replay: $(cat "$WORK/t5.json")"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $AT3" "$USERINFO")
[ "$STATUS" = 401 ] || fail "access token still valid after replay ($STATUS)"
ok "replay revoked the grant: latest refresh token => invalid_grant, latest access token => 401"

# --- client credentials (client_m2m), with and without a resource indicator ----------------------
M2M=(-u client_m2m:client_m2m_secret)
curl -s "${M2M[@]}" "$TOKEN" -d grant_type=client_credentials -d resource=https://api.example.com \
  -d 'scope=projects:read' -o "$WORK/cc.json"
CC=$(jget "$WORK/cc.json" j.access_token)
[ -n "$CC" ] || fail "client credentials: $(cat "$WORK/cc.json")"
jwt_part "$CC" 0 >"$WORK/cch.json"; jwt_part "$CC" 1 >"$WORK/ccp.json"
[ "$(jget "$WORK/cch.json" '[j.typ,j.alg].join()')" = "at+jwt,ES256" ] || fail "cc header: $(cat "$WORK/cch.json")"
[ "$(jget "$WORK/ccp.json" '[j.iss,j.sub,j.aud,j.client_id,j.scope].join()')" = \
  "$ISSUER,client_m2m,https://api.example.com,client_m2m,projects:read" ] || fail "cc claims: $(cat "$WORK/ccp.json")"
ok "client credentials with resource: JWT access token (at+jwt, ES256, aud https://api.example.com)"
curl -s "${M2M[@]}" "$TOKEN" -d grant_type=client_credentials -o "$WORK/cc2.json"
[ -n "$(jget "$WORK/cc2.json" j.access_token)" ] || fail "client credentials without resource: $(cat "$WORK/cc2.json")"
ok "client credentials without resource: opaque access token"

# --- fresh login for revocation and introspection --------------------------------------------------
login() { # login CLIENT_ID [SCOPE] [EXTRA_PARAMS] [REDIRECT_URI] -> prints the callback URL
  local redirect=${4:-$REDIRECT_URI}
  local url="$AUTHZ?client_id=$1&response_type=code&scope=${2:-openid}&redirect_uri=$(node -p 'encodeURIComponent(process.argv[1])' "$redirect")&state=s&nonce=n&code_challenge=$CHALLENGE&code_challenge_method=S256${3:-}"
  local hops=0 status next
  while :; do
    case "$url" in "$redirect"*) printf %s "$url"; return ;; esac
    hops=$((hops + 1)); [ $hops -le 10 ] || return 1
    read -r status next < <(curl -s -o /dev/null -b "$JAR" -c "$JAR" -w '%{http_code} %{redirect_url}\n' "$url")
    url=$next
  done
}
CB=$(login client_basic openid%20projects%3Aread "&resource=https%3A%2F%2Fapi.example.com") || fail "second login"
curl -s "${BASIC[@]}" "$TOKEN" -d grant_type=authorization_code --data-urlencode "code=$(query_param "$CB" code)" \
  --data-urlencode "redirect_uri=$REDIRECT_URI" -d code_verifier=$VERIFIER -d resource=https://api.example.com -o "$WORK/r1.json"
RAT=$(jget "$WORK/r1.json" j.access_token); RRT=$(jget "$WORK/r1.json" j.refresh_token)
[ -n "$RAT" ] && [ -n "$RRT" ] || fail "resource code exchange: $(cat "$WORK/r1.json")"
jwt_part "$RAT" 1 >"$WORK/rat.json"
[ "$(jget "$WORK/rat.json" '[j.aud,j.sub,j.scope,j.organizations[0].id].join()')" = \
  "https://api.example.com,usr_alice,projects:read,org_acme" ] || fail "resource access token: $(cat "$WORK/rat.json")"
ok "code flow with resource: JWT access token for https://api.example.com with organizations"

# introspection: own token active, other client's token inactive
curl -s "${BASIC[@]}" "$INTROSPECT" --data-urlencode "token=$RRT" -o "$WORK/i1.json"
[ "$(jget "$WORK/i1.json" '[j.active,j.client_id,j.sub,j.scope].join()')" = "true,client_basic,usr_alice,openid projects:read" ] \
  || fail "introspection: $(cat "$WORK/i1.json")"
curl -s -u client_post:client_post_secret "$INTROSPECT" --data-urlencode "token=$RRT" -o "$WORK/i2.json"
[ "$(jget "$WORK/i2.json" j.active)" = "false" ] || fail "foreign introspection: $(cat "$WORK/i2.json")"
ok "introspection: own refresh token active; another client sees active=false"

# revocation of the refresh token, then introspection and refresh fail
STATUS=$(curl -s -o /dev/null -w '%{http_code}' "${BASIC[@]}" "$REVOKE" --data-urlencode "token=$RRT" -d token_type_hint=refresh_token)
[ "$STATUS" = 200 ] || fail "revocation status $STATUS"
curl -s "${BASIC[@]}" "$INTROSPECT" --data-urlencode "token=$RRT" -o "$WORK/i3.json"
[ "$(jget "$WORK/i3.json" j.active)" = "false" ] || fail "revoked token still active: $(cat "$WORK/i3.json")"
refresh "$RRT" "$WORK/r2.json"
[ "$(jget "$WORK/r2.json" j.error)" = "invalid_grant" ] || fail "refresh after revocation: $(cat "$WORK/r2.json")"
ok "revocation: 200, then introspection active=false and refresh => invalid_grant"

# --- authorization code replay: invalid_grant, and the tokens of the first exchange die ----------
CB=$(login client_post) || fail "third login"
CODE=$(query_param "$CB" code)
exchange_post() {
  curl -s "$TOKEN" -d client_id=client_post -d client_secret=client_post_secret -d grant_type=authorization_code \
    --data-urlencode "code=$CODE" --data-urlencode "redirect_uri=$REDIRECT_URI" -d code_verifier=$VERIFIER -o "$1"
}
exchange_post "$WORK/c1.json"
CAT=$(jget "$WORK/c1.json" j.access_token)
[ -n "$CAT" ] || fail "client_secret_post exchange: $(cat "$WORK/c1.json")"
curl -sf -o /dev/null -H "Authorization: Bearer $CAT" "$USERINFO" || fail "userinfo before code replay"
exchange_post "$WORK/c2.json"
[ "$(jget "$WORK/c2.json" j.error)" = "invalid_grant" ] || fail "code replay: $(cat "$WORK/c2.json")"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $CAT" "$USERINFO")
[ "$STATUS" = 401 ] || fail "access token still valid after code replay ($STATUS)"
ok "client_secret_post exchange; code replay => invalid_grant and revokes the first exchange's tokens"

# --- public native client: loopback redirect on any port, no client authentication ---------------
NATIVE_REDIRECT=http://127.0.0.1:53123/callback
CB=$(login client_public openid "" "$NATIVE_REDIRECT") || fail "native login"
curl -s "$TOKEN" -d client_id=client_public -d grant_type=authorization_code --data-urlencode "code=$(query_param "$CB" code)" \
  --data-urlencode "redirect_uri=$NATIVE_REDIRECT" -d code_verifier=$VERIFIER -o "$WORK/n1.json"
NRT=$(jget "$WORK/n1.json" j.refresh_token)
[ -n "$NRT" ] || fail "native exchange: $(cat "$WORK/n1.json")"
[ "$(jwt_part "$(jget "$WORK/n1.json" j.id_token)" 0 | node -p 'JSON.parse(require("fs").readFileSync(0)).alg')" = ES256 ] || fail "native id token alg"
curl -s "$TOKEN" -d client_id=client_public -d grant_type=refresh_token --data-urlencode "refresh_token=$NRT" -o "$WORK/n2.json"
[ -n "$(jget "$WORK/n2.json" j.refresh_token)" ] || fail "native refresh: $(cat "$WORK/n2.json")"
ok "client_public: redirect_uri on port 53123 accepted, exchange and refresh without a secret"
STATUS=$(curl -s -o "$WORK/e1.json" -w '%{http_code}' "$AUTHZ?client_id=client_basic&response_type=code&scope=openid&redirect_uri=http%3A%2F%2F127.0.0.1%3A7778%2Fcallback&state=s&code_challenge=$CHALLENGE&code_challenge_method=S256")
[ "$STATUS" = 400 ] && [ "$(jget "$WORK/e1.json" j.error)" = invalid_redirect_uri ] || fail "web client other port: $STATUS $(cat "$WORK/e1.json")"
ok "web client: a different loopback port => 400 invalid_redirect_uri (no redirect)"

# --- one ID-token algorithm per client ------------------------------------------------------------
for pair in client_rs256:RS256 client_es256:ES256 client_eddsa:EdDSA; do
  client=${pair%%:*}; alg=${pair#*:}
  CB=$(login "$client") || fail "$client login"
  curl -s -u "$client:${client}_secret" "$TOKEN" -d grant_type=authorization_code --data-urlencode "code=$(query_param "$CB" code)" \
    --data-urlencode "redirect_uri=$REDIRECT_URI" -d code_verifier=$VERIFIER -o "$WORK/alg.json"
  IDH=$(jwt_part "$(jget "$WORK/alg.json" j.id_token)" 0)
  [ "$(node -p 'const h=JSON.parse(process.argv[1]); h.alg+","+(h.kid?"kid":"")' "$IDH")" = "$alg,kid" ] || fail "$client: $IDH"
done
ok "ID tokens: client_rs256 RS256, client_es256 ES256, client_eddsa EdDSA, each with a kid"

# --- error redirects: PKCE is mandatory and S256 only; unknown org => access_denied ---------------
E=$(curl -s -o /dev/null -w '%{redirect_url}' "$AUTHZ?client_id=client_basic&response_type=code&scope=openid&redirect_uri=http%3A%2F%2F127.0.0.1%3A7777%2Fcallback&state=s")
[ "$(query_param "$E" error)" = invalid_request ] || fail "no PKCE: $E"
E=$(curl -s -o /dev/null -w '%{redirect_url}' "$AUTHZ?client_id=client_basic&response_type=code&scope=openid&redirect_uri=http%3A%2F%2F127.0.0.1%3A7777%2Fcallback&state=s&code_challenge=$VERIFIER&code_challenge_method=plain")
[ "$(query_param "$E" error)" = invalid_request ] || fail "plain PKCE: $E"
E=$(login client_basic openid "&org=org_unknown") || fail "unknown org login"
[ "$(query_param "$E" error),$(query_param "$E" state),$(query_param "$E" iss)" = "access_denied,s,$ISSUER" ] || fail "unknown org: $E"
ok "error redirects: no code_challenge / plain => invalid_request; org_unknown => access_denied (with state and iss)"

# --- RP-initiated logout: GET form, POST confirm, redirect; session-bound refresh tokens die -----
CB=$(login client_basic) || fail "login before logout"
curl -s "${BASIC[@]}" "$TOKEN" -d grant_type=authorization_code --data-urlencode "code=$(query_param "$CB" code)" \
  --data-urlencode "redirect_uri=$REDIRECT_URI" -d code_verifier=$VERIFIER -o "$WORK/l1.json"
LOGOUT=$(jget "$WORK/disc.json" j.end_session_endpoint)
curl -s -b "$JAR" -c "$JAR" -G "$LOGOUT" --data-urlencode "id_token_hint=$(jget "$WORK/l1.json" j.id_token)" \
  --data-urlencode "post_logout_redirect_uri=http://127.0.0.1:7777/logged-out" -d state=bye -o "$WORK/logout.html"
XSRF=$(sed -n 's/.*name="xsrf" value="\([^"]*\)".*/\1/p' "$WORK/logout.html")
[ -n "$XSRF" ] || fail "logout form: $(cat "$WORK/logout.html")"
read -r STATUS NEXT < <(curl -s -o /dev/null -b "$JAR" -c "$JAR" -w '%{http_code} %{redirect_url}\n' "$LOGOUT/confirm" -d "xsrf=$XSRF" -d logout=yes)
[ "$STATUS $NEXT" = "303 http://127.0.0.1:7777/logged-out?state=bye" ] || fail "logout confirm: $STATUS $NEXT"
refresh "$(jget "$WORK/l1.json" j.refresh_token)" "$WORK/l2.json"
[ "$(jget "$WORK/l2.json" j.error)" = "invalid_grant" ] || fail "refresh after logout: $(cat "$WORK/l2.json")"
ok "logout: 303 to post_logout_redirect_uri?state=bye; the session's refresh token => invalid_grant"

# --- keys: a restart with the same file keeps the keys, a new file rotates them ------------------
restart_jwks() { # restart_jwks KEYFILE OUT: start a second provider, fetch its JWKS, stop it
  local out="$WORK/stdout2" iss
  : >"$out"
  node "$HERE/provider.mjs" --port 0 --keys "$1" <"$WORK/stdin" >"$out" 2>>"$WORK/stderr" &
  local pid=$!
  for _ in $(seq 300); do grep -q '^READY ' "$out" && break; sleep 0.1; done
  iss=$(awk '{print $2}' "$out")
  curl -sf "$iss/jwks.json" -o "$2" || { kill $pid; return 1; }
  kill -TERM $pid; wait $pid
}
restart_jwks "$WORK/keys.json" "$WORK/jwks_same.json" || fail "restart with the same keys"
[ "$(jget "$WORK/jwks.json" 'j.keys.map(k=>k.kid).join()')" = "$(jget "$WORK/jwks_same.json" 'j.keys.map(k=>k.kid).join()')" ] || fail "same file, different keys"
restart_jwks "$WORK/keys2.json" "$WORK/jwks_new.json" || fail "restart with new keys"
[ "$(jget "$WORK/jwks_new.json" 'j.keys.filter(k=>'"$(jget "$WORK/jwks.json" 'j.keys.map(k=>k.kid)')"'.includes(k.kid)).length')" = 0 ] || fail "new file kept old kids"
ok "restart: same --keys file => same kids; new --keys file => all-new kids; SIGTERM stops it"

echo "PASS"
