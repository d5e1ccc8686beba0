//! Back-channel logout end to end: a login through the core against the testkit issuer, the
//! session ended at the issuer, its logout token validated by the core; and every bad variant
//! the testkit can mint refused with `invalid_request` (OIDC Back-Channel Logout 1.0 §2.6,
//! §2.8).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use authpi_idp::backchannel::LogoutTokenError;
use authpi_idp::error::{ClaimError, TokenError};
use authpi_idp::{AuthorizationRequest, Error, RequestKind, UnixTime};
use authpi_idp_testkit::{Alg, Client as IdpClient, Issuer, LogoutTokenSpec};
use common::*;
use serde_json::json;

const BCL: &str = "https://app.example.com/backchannel-logout";

fn env() -> Env {
    Env::new(
        Issuer::authpi_demo(ISS).client(
            IdpClient::confidential("client_web", "secret_web", &[WEB_REDIRECT])
                .backchannel_logout_uri(BCL),
        ),
    )
}

fn body(token: &str) -> Vec<u8> {
    format!("logout_token={token}").into_bytes()
}

#[test]
fn session_ended_at_the_issuer_is_announced_and_validated() {
    let mut env = env();
    let client = web_client();
    let (agent, _) = env.login(&client, &AuthorizationRequest::new(["openid", "email"]));
    let sid = agent
        .tokens()
        .session_id()
        .expect("the ID token names its session");
    assert_eq!(env.idp.session_id(), Some(sid.as_str()));

    env.advance(600);
    let deliveries = env.idp.end_session(&sid, env.now).unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].uri, BCL);
    let keys = env.keys.clone();
    let op = client
        .backchannel_logout(&deliveries[0].body(), &keys)
        .unwrap();
    let (token, trace) = env.run(op);
    let token = token.unwrap();
    assert!(trace.sent.is_empty(), "keys were cached at login");
    assert_eq!(token.session_id(), Some(sid.as_str()));
    assert_eq!(token.subject(), Some(agent.id()));
    assert_eq!(token.issuer(), ISS);
    assert_eq!(token.issued_at(), env.now());
    assert_eq!(token.expires_at(), Some(env.now().plus(120)));
    assert_eq!(token.jwt_id().len(), 18);
    // The refresh token of that session is dead at the issuer too.
    let stored = agent.into_tokens();
    let op = client.refresh(stored, authpi_idp::SessionOptions::new(), &keys, env.now());
    let (r, _) = env.run(op.unwrap());
    assert_eq!(r.unwrap_err().code(), "invalid_grant");
}

#[test]
fn logout_endpoint_announces_the_hinted_session() {
    let mut env = env();
    let client = web_client();
    let (agent, _) = env.login(&client, &AuthorizationRequest::new(["openid"]));
    let hint = agent.tokens().id_token.clone().unwrap();
    let url = format!(
        "{ISS}/logout?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token_hint", &hint)
            .finish()
    );
    let resp = env
        .idp
        .handle(http::Request::get(url).body(Vec::new()).unwrap(), env.now);
    assert_eq!(resp.status(), 200);
    let d = env.idp.take_logout_deliveries();
    assert_eq!(d.len(), 1);
    let keys = env.keys.clone();
    let (t, _) = env.run(client.backchannel_logout(&d[0].body(), &keys).unwrap());
    assert_eq!(
        t.unwrap().session_id(),
        agent.tokens().session_id().as_deref()
    );
}

/// Each bad token the testkit mints, and the refusal the core gives it.
#[test]
fn every_bad_variant_is_refused_with_invalid_request() {
    let mut env = env();
    let client = web_client();
    let (_agent, _) = env.login(&client, &AuthorizationRequest::new(["openid"]));
    let now = env.now;
    let good = LogoutTokenSpec::new("client_web")
        .subject("usr_alice")
        .session_id("s_x");
    let claim = |c| LogoutTokenError::Token(TokenError::Claim(c));
    let cases: Vec<(&str, LogoutTokenSpec, LogoutTokenError)> = vec![
        (
            "wrong aud",
            good.clone().audience(json!("client_other")),
            claim(ClaimError::Audience),
        ),
        (
            "untrusted extra aud",
            good.clone().audience(json!(["client_web", "client_other"])),
            claim(ClaimError::UntrustedAudience),
        ),
        ("nonce", good.clone().nonce("n-1"), LogoutTokenError::Nonce),
        (
            "no events",
            good.clone().without_events(),
            LogoutTokenError::Events,
        ),
        (
            "neither sid nor sub",
            LogoutTokenSpec::new("client_web"),
            LogoutTokenError::NoSessionOrSubject,
        ),
        (
            "wrong iss",
            good.clone().issuer("https://idp.test/i_other"),
            claim(ClaimError::Issuer),
        ),
        (
            "iat in the future",
            good.clone().issued_at(now + 61),
            claim(ClaimError::IssuedInFuture),
        ),
        (
            "expired",
            good.clone().issued_at(now - 200).ttl(Some(100)),
            claim(ClaimError::Expired),
        ),
        (
            "too old without exp",
            good.clone().issued_at(now - 400).ttl(None),
            claim(ClaimError::Expired),
        ),
        (
            "typ at+jwt",
            good.clone().typ(Some("at+jwt")),
            claim(ClaimError::Type),
        ),
        (
            "typ JWT",
            good.clone().typ(Some("JWT")),
            claim(ClaimError::Type),
        ),
    ];
    let keys = env.keys.clone();
    for (name, spec, expected) in cases {
        let token = env.idp.mint_logout_token(&spec, now).unwrap();
        let (r, trace) = env.run(client.backchannel_logout(&body(&token), &keys).unwrap());
        let e = r.unwrap_err();
        assert_eq!(e, Error::LogoutToken(expected), "{name}");
        assert_eq!(e.code(), "invalid_request", "{name}");
        assert!(trace.sent.is_empty(), "{name}: no JWKS request");
    }
    // No typ at all is accepted (the header member is optional).
    let token = env
        .idp
        .mint_logout_token(&good.clone().typ(None), now)
        .unwrap();
    let (r, _) = env.run(client.backchannel_logout(&body(&token), &keys).unwrap());
    r.unwrap();
}

#[test]
fn id_and_access_tokens_of_the_session_are_not_logout_tokens() {
    let mut env = env();
    let client = web_client();
    let (agent, _) = env.login(&client, &AuthorizationRequest::new(["openid"]));
    let keys = env.keys.clone();
    let id = agent.tokens().id_token.clone().unwrap();
    let (r, _) = env.run(client.backchannel_logout(&body(&id), &keys).unwrap());
    // AuthPI's ID token has no `jti`; with one it would still lack `events` and carry `nonce`
    // (see the unit tests).
    assert_eq!(
        r.unwrap_err(),
        Error::LogoutToken(LogoutTokenError::Token(TokenError::Claim(
            ClaimError::Missing("jti")
        )))
    );
    let at = agent.tokens().access_token.clone();
    let (r, _) = env.run(client.backchannel_logout(&body(&at), &keys).unwrap());
    assert_eq!(
        r.unwrap_err(),
        Error::LogoutToken(LogoutTokenError::Token(TokenError::Claim(ClaimError::Type)))
    );
    let rt = agent.tokens().refresh_token.clone().unwrap();
    let (r, _) = env.run(client.backchannel_logout(&body(&rt), &keys).unwrap());
    assert_eq!(r.unwrap_err().code(), "invalid_request");
}

#[test]
fn replay_is_left_to_the_caller_with_a_stable_jti() {
    // The core validates; the route's store refuses a second use of the same `jti`. Two
    // tokens minted with one `jti` validate alike and report it, so the store can.
    let mut env = env();
    let client = web_client();
    env.login(&client, &AuthorizationRequest::new(["openid"]));
    let spec = LogoutTokenSpec::new("client_web")
        .session_id("s_1")
        .jti("jti-replayed");
    let keys = env.keys.clone();
    let now = env.now;
    for _ in 0..2 {
        let token = env.idp.mint_logout_token(&spec, now).unwrap();
        let (t, _) = env.run(client.backchannel_logout(&body(&token), &keys).unwrap());
        let t = t.unwrap();
        assert_eq!(t.jwt_id(), "jti-replayed");
        assert_eq!(t.accept_until(), UnixTime(now + 120 + 60));
    }
}

#[test]
fn rotated_key_is_fetched_once_outside_the_cooldown_only() {
    let mut env = env();
    let client = web_client();
    env.login(&client, &AuthorizationRequest::new(["openid"]));
    env.idp.rotate_keys().unwrap();
    let spec = LogoutTokenSpec::new("client_web").session_id("s_1");
    // Within the cooldown of the login's JWKS fetch: refused, nothing sent.
    env.advance(10);
    let token = env.idp.mint_logout_token(&spec, env.now).unwrap();
    let keys = env.keys.clone();
    let (r, trace) = env.run(client.backchannel_logout(&body(&token), &keys).unwrap());
    assert_eq!(
        r.unwrap_err(),
        Error::LogoutToken(LogoutTokenError::Token(TokenError::Jose(
            authpi_idp::jose::JoseError::NoMatchingKey
        )))
    );
    assert!(trace.sent.is_empty());
    // Later: one JWKS request, then the token verifies.
    env.advance(authpi_idp::jwks::REFETCH_COOLDOWN);
    let token = env.idp.mint_logout_token(&spec, env.now).unwrap();
    let (r, trace) = env.run(client.backchannel_logout(&body(&token), &keys).unwrap());
    r.unwrap();
    assert_eq!(trace.sends(RequestKind::Jwks), 1);
    // A token signed by a key the issuer never published: at most one request, then refused.
    let stranger = authpi_idp_testkit::TestKey::generate(Alg::Es256, "stranger").unwrap();
    let forged = stranger
        .sign_claims(
            Some("logout+jwt"),
            &json!({"iss": ISS, "aud": "client_web", "iat": env.now, "jti": "j", "sid": "s",
                    "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}),
        )
        .unwrap();
    env.advance(authpi_idp::jwks::REFETCH_COOLDOWN);
    let keys = env.keys.clone();
    let (r, trace) = env.run(client.backchannel_logout(&body(&forged), &keys).unwrap());
    assert_eq!(r.unwrap_err().code(), "invalid_request");
    assert!(trace.sends(RequestKind::Jwks) <= 1);
}
