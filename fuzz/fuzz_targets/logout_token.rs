//! Back-channel logout: `Client::backchannel_logout` on a request body, then the
//! `ValidateLogoutToken` operation against the fixed key set.
//!
//! Input: `mode ‖ rest`. Mode 0: `rest` is the raw POST body. Mode 1: `rest` is a claims
//! payload, signed by the fixed key under the standard header and sent as `logout_token`.
//! Mode 2: `rest` is `header ‖ NUL ‖ payload`, signed by the fixed key as given (header rules
//! with a valid signature). Any JWKS request is answered with the trusted JWKS.
//!
//! Invariants: never a panic; every refusal is `invalid_request`; at most one JWKS request;
//! an accepted token satisfies every rule of Back-Channel Logout 1.0 §2.6 when its claims are
//! re-read independently here.
#![no_main]

use authpi_idp::{Error, UnixTime};
use authpi_idp_fuzz::*;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

fn form(token: &str) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", token)
        .finish()
        .into_bytes()
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else { return };
    let key = FuzzKey::new();
    let body = match mode % 3 {
        0 => rest.to_vec(),
        1 => form(&key.sign(rest)),
        _ => {
            let (h, p) = split_nul(rest);
            form(&key.sign_raw(h, p))
        }
    };
    // Fetched long enough ago that an unknown kid may refetch once.
    let keys = keys_at(NOW - 3_600);
    let client = client();
    let mut op = match client.backchannel_logout(&body, &keys) {
        Ok(op) => op,
        Err(e) => {
            assert!(matches!(e, Error::LogoutToken(_)), "{e:?}");
            assert_eq!(e.code(), "invalid_request");
            return;
        }
    };
    let out = drive(&mut op, NOW, |_| response(200, &[], jwks_document()));
    assert!(out.persisted.is_empty());
    match out.result {
        Err(Error::LogoutToken(_)) | Err(Error::Jwks(_)) => {}
        Err(e) => panic!("unexpected error kind {e:?}"),
        Ok(t) => {
            let token = url::form_urlencoded::parse(&body)
                .find(|(k, _)| k == "logout_token")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let claims = claims_of(&token).unwrap_or(Value::Null);
            assert_eq!(claims["iss"], ISSUER);
            assert_eq!(t.issuer(), ISSUER);
            let aud_ok = match &claims["aud"] {
                Value::String(a) => a == CLIENT_ID,
                Value::Array(a) => a.iter().all(|x| x == CLIENT_ID) && !a.is_empty(),
                _ => false,
            };
            assert!(aud_ok, "aud {}", claims["aud"]);
            assert!(claims["events"][EVENT].is_object());
            assert!(claims.get("nonce").is_none());
            assert!(t.session_id().is_some() || t.subject().is_some());
            assert_eq!(claims["jti"].as_str(), Some(t.jwt_id()));
            assert!(!t.jwt_id().is_empty());
            assert!(t.issued_at() <= UnixTime(NOW + 60));
            assert!(t.accept_until() > UnixTime(NOW));
            if let Some(exp) = t.expires_at() {
                assert!(exp.plus(60) > UnixTime(NOW));
            }
        }
    }
});
