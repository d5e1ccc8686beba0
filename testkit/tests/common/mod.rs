//! Test helpers: drive the sans-IO issuer and verify its tokens independently of it.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;

use authpi_idp_testkit::{Issuer, jwt, pkce_challenge};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{Request, Response};
use ring::signature;
use serde_json::Value;

pub const ISS: &str = "https://idp.test/i_test";
pub const T0: u64 = 1_767_400_000;
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub fn demo() -> Issuer {
    Issuer::authpi_demo(ISS).build().unwrap()
}

pub fn get(idp: &mut Issuer, path_and_query: &str, now: u64) -> Response<Vec<u8>> {
    idp.handle(
        Request::get(format!("{ISS}{path_and_query}"))
            .body(Vec::new())
            .unwrap(),
        now,
    )
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// POST a form; `basic` = Some((id, secret)) adds HTTP Basic.
pub fn post(
    idp: &mut Issuer,
    path: &str,
    pairs: &[(&str, &str)],
    basic: Option<(&str, &str)>,
    now: u64,
) -> Response<Vec<u8>> {
    let mut b = Request::post(format!("{ISS}{path}"))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some((id, secret)) = basic {
        b = b.header(
            "authorization",
            format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
        );
    }
    idp.handle(b.body(form(pairs).into_bytes()).unwrap(), now)
}

pub fn body(resp: &Response<Vec<u8>>) -> Value {
    serde_json::from_slice(resp.body()).unwrap()
}

pub fn query_of(location: &str) -> HashMap<String, String> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn location(resp: &Response<Vec<u8>>) -> String {
    assert_eq!(
        resp.status(),
        302,
        "body: {}",
        String::from_utf8_lossy(resp.body())
    );
    resp.headers()["location"].to_str().unwrap().to_owned()
}

/// GET /authorize with the usual parameters plus `extra`; returns the redirect's query.
pub fn authorize(
    idp: &mut Issuer,
    client_id: &str,
    redirect_uri: &str,
    extra: &[(&str, &str)],
    now: u64,
) -> HashMap<String, String> {
    let challenge = pkce_challenge(VERIFIER);
    let mut pairs = vec![
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("response_type", "code"),
        ("scope", "openid profile email"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for (k, _) in extra {
        pairs.retain(|(pk, _)| pk != k);
    }
    pairs.extend_from_slice(extra);
    let resp = get(idp, &format!("/authorize?{}", form(&pairs)), now);
    query_of(&location(&resp))
}

pub const WEB_REDIRECT: &str = "https://app.example.com/callback";

/// Logs alice in at `client_web` and exchanges the code; returns the token response body.
pub fn login_web(idp: &mut Issuer, extra: &[(&str, &str)], now: u64) -> Value {
    let q = authorize(idp, "client_web", WEB_REDIRECT, extra, now);
    let code = q.get("code").expect("code in redirect").clone();
    let resp = post(
        idp,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", WEB_REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        Some(("client_web", "secret_web")),
        now,
    );
    assert_eq!(
        resp.status(),
        200,
        "{}",
        String::from_utf8_lossy(resp.body())
    );
    body(&resp)
}

pub fn refresh(idp: &mut Issuer, rt: &str, extra: &[(&str, &str)], now: u64) -> Response<Vec<u8>> {
    let mut pairs = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
    pairs.extend_from_slice(extra);
    post(
        idp,
        "/token",
        &pairs,
        Some(("client_web", "secret_web")),
        now,
    )
}

pub fn userinfo(idp: &mut Issuer, at: &str, now: u64) -> Response<Vec<u8>> {
    idp.handle(
        Request::get(format!("{ISS}/userinfo"))
            .header("authorization", format!("Bearer {at}"))
            .body(Vec::new())
            .unwrap(),
        now,
    )
}

/// Verifies a compact JWS against a JWKS document, independently of the testkit's own
/// verification code. Returns (header, claims).
pub fn verify_with_jwks(jwks: &Value, token: &str) -> Option<(Value, Value)> {
    let header = jwt::decode_header(token)?;
    let kid = header["kid"].as_str()?;
    let key = jwks["keys"].as_array()?.iter().find(|k| k["kid"] == kid)?;
    let alg = header["alg"].as_str()?;
    assert_eq!(key["alg"], alg);
    let (signed, sig) = token.rsplit_once('.')?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    let d = |name: &str| URL_SAFE_NO_PAD.decode(key[name].as_str().unwrap()).unwrap();
    let ok = match alg {
        "ES256" => {
            let mut point = vec![4u8];
            point.extend(d("x"));
            point.extend(d("y"));
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(signed.as_bytes(), &sig)
                .is_ok()
        }
        "EdDSA" => signature::UnparsedPublicKey::new(&signature::ED25519, d("x"))
            .verify(signed.as_bytes(), &sig)
            .is_ok(),
        "RS256" | "PS256" => {
            let comps = signature::RsaPublicKeyComponents {
                n: d("n"),
                e: d("e"),
            };
            let algo: &signature::RsaParameters = if alg == "RS256" {
                &signature::RSA_PKCS1_2048_8192_SHA256
            } else {
                &signature::RSA_PSS_2048_8192_SHA256
            };
            comps.verify(algo, signed.as_bytes(), &sig).is_ok()
        }
        _ => false,
    };
    ok.then(|| (header, jwt::decode_claims(token).unwrap()))
}

pub fn jwks(idp: &mut Issuer) -> Value {
    body(&get(idp, "/jwks.json", T0))
}
