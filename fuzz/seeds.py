#!/usr/bin/env python3
"""Writes the small seed corpora under corpus/<target>/ from the captured fixtures.

Run from fuzz/: python3 seeds.py. The `operation` seeds come from short fuzz runs (cmin)."""
import json, os, base64

F = lambda n: open(os.path.join("fixtures", n), "rb").read()
def put(target, name, data):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), "wb").write(data)

cb = F("callback.txt")
put("callback", "real", cb)
put("callback", "query", cb.split(b"?", 1)[1])
put("callback", "error", cb.replace(b"code=", b"error=access_denied&error_description=no&x="))
put("callback", "iss", cb + b"&iss=https%3A%2F%2Fidp.test%2Fi_fuzz#frag")
put("callback", "dup", cb + b"&state=x")

ok = b"\x00\xc8content-type: application/json\ncache-control: no-store\n\x00"
put("token_response", "exchange", ok + F("token.json"))
put("token_response", "refresh", ok + F("refresh.json"))
put("token_response", "refresh_no_id", ok + F("refresh_no_id.json"))
put("token_response", "invalid_grant", b"\x01\x90content-type: application/json\n\x00" + F("invalid_grant.json"))
put("token_response", "rate_limited", b"\x01\xadretry-after: 30\n\x00")

id_token = json.loads(F("token.json"))["id_token"]
payload = base64.urlsafe_b64decode(id_token.split(".")[1] + "==")
put("jws", "real", b"\x00" + id_token.encode())
put("jws", "payload", b"\x01" + payload)
put("jws", "header_payload", b"\x02" + b'{"alg":"EdDSA","kid":"fuzz-ed25519","typ":"JWT"}\x00' + payload)

put("jwks", "real", b"cache-control: public, max-age=600\n\x00" + F("jwks.json"))
put("jwks", "no_store", b"cache-control: no-store, max-age=0\n\x00" + F("jwks.json"))
put("jwks", "empty", b"\x00" + b'{"keys":[]}')

put("discovery", "real", b"\x00" + F("discovery.json"))

put("userinfo", "real", b"\x00\xc8content-type: application/json\n\x00" + F("userinfo.json"))
put("userinfo", "unauthorized", b"\x01\x91www-authenticate: Bearer error=\"invalid_token\"\n\x00")

tokens = json.loads(F("tokens.json"))
put("token_set", "stored", F("tokens.json"))
hint = dict(tokens, id_token=None, subject_hint="usr_alice")
put("token_set", "hint", json.dumps(hint).encode())
m2m = dict(tokens, id_token=None, refresh_token=None, scope="reports:read", expires_at=1767312000.5)
put("token_set", "client", json.dumps(m2m).encode())

orgs = json.loads(F("userinfo.json")).get("organizations", [])
put("scope", "worked", b"projects:** users:read owner\x00delete\x00projects.tasks\x00" + json.dumps(orgs).encode())
put("scope", "wildcards", b"*:read projects:* *:**\x00read\x00users.verifiers\x00[{\"id\":\"org_a\",\"scopes\":[\"*:**\"]},{\"id\":\"org_a\"},7]")

lt = {"iss": "https://idp.test/i_fuzz", "aud": "client_web", "iat": 1767312000, "exp": 1767312120,
      "jti": "lt-1", "sub": "usr_alice", "sid": "s_1",
      "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}
put("logout_token", "payload", b"\x01" + json.dumps(lt).encode())
put("logout_token", "typed", b"\x02" + b'{"alg":"EdDSA","kid":"fuzz-ed25519","typ":"logout+jwt"}\x00' + json.dumps(lt).encode())
put("logout_token", "nonce", b"\x01" + json.dumps(dict(lt, nonce="n")).encode())
put("logout_token", "body", b"\x00logout_token=a.b.c&logout_token=d")
