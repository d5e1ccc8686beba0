//! OIDC Back-Channel Logout 1.0 §2.4 / §2.6: one test per rule.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use crate::config::Config;
use crate::error::Error;
use crate::error::LogoutTokenError;
use crate::http::RequestKind;
use crate::jose::test_keys::TestKey;
use crate::jose::{Algorithm, JoseError};
use serde_json::{Value, json};

const ISS: &str = "https://idp.authpi.com/i_a";
const CLIENT: &str = "client_1";
const NOW: UnixTime = UnixTime(1_767_312_000);

struct Env {
    client: Client,
    key: TestKey,
    keys: KeySet,
}

fn env() -> Env {
    let key = TestKey::generate(Algorithm::Es256, Some("k1"));
    let keys = KeySet::from_json(TestKey::jwks(&[&key]).as_bytes(), NOW.minus(10), 3600).unwrap();
    let client = Client::new(Config::builder(ISS, CLIENT).build().unwrap()).unwrap();
    Env { client, key, keys }
}

fn claims() -> Value {
    json!({
        "iss": ISS,
        "aud": CLIENT,
        "iat": NOW.0 - 5,
        "exp": NOW.0 + 115,
        "jti": "jti-1",
        "sub": "usr_alice",
        "sid": "s_1",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    })
}

fn with(mut v: Value, k: &str, x: Value) -> Value {
    if x.is_null() {
        v.as_object_mut().unwrap().remove(k);
    } else {
        v[k] = x;
    }
    v
}

fn body(token: &str) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", token)
        .finish()
        .into_bytes()
}

/// Drives the operation with no network: a `Send` is a failure of the test unless `jwks` is
/// given, which then answers it.
fn run_with(
    env: &Env,
    token: &str,
    now: UnixTime,
    jwks: Option<&str>,
) -> (Result<LogoutToken, Error>, usize) {
    let mut op = match env.client.backchannel_logout(&body(token), &env.keys) {
        Ok(op) => op,
        Err(e) => return (Err(e), 0),
    };
    let mut sends = 0;
    loop {
        match op.poll(now) {
            Err(e) => return (Err(e), sends),
            Ok(Step::Done(t)) => {
                assert!(matches!(
                    op.poll(now),
                    Err(Error::ApiMisuse(crate::error::ApiMisuse::OperationFinished))
                ));
                return (Ok(t), sends);
            }
            Ok(Step::Send(out)) => {
                assert_eq!(out.kind, RequestKind::Jwks);
                assert_eq!(out.request.uri(), &format!("{ISS}/jwks.json")[..]);
                sends += 1;
                let doc = jwks.expect("no JWKS request expected");
                op.handle_response(
                    http::Response::builder()
                        .status(200)
                        .body(doc.as_bytes().to_vec())
                        .unwrap(),
                );
            }
            Ok(Step::KeysRefreshed(_)) => {}
            Ok(Step::Persist(_)) => panic!("a logout token never persists tokens"),
        }
    }
}

fn run(env: &Env, claims: &Value) -> Result<LogoutToken, Error> {
    let token = env.key.token(&claims.to_string());
    let (r, sends) = run_with(env, &token, NOW, None);
    assert_eq!(sends, 0);
    r
}

fn refusal(r: Result<LogoutToken, Error>) -> LogoutTokenError {
    match r {
        Err(e @ Error::LogoutToken(_)) => {
            assert_eq!(e.code(), "invalid_request", "§2.8: 400 invalid_request");
            let Error::LogoutToken(kind) = e else {
                unreachable!()
            };
            kind
        }
        other => panic!("expected a logout-token refusal, got {other:?}"),
    }
}

fn claim(e: ClaimError) -> LogoutTokenError {
    LogoutTokenError::Token(TokenError::Claim(e))
}

#[test]
fn valid_logout_token_is_accepted_with_every_claim() {
    let env = env();
    let t = run(&env, &claims()).unwrap();
    assert_eq!(t.issuer(), ISS);
    assert_eq!(t.subject(), Some("usr_alice"));
    assert_eq!(t.session_id(), Some("s_1"));
    assert_eq!(t.jwt_id(), "jti-1");
    assert_eq!(t.issued_at(), NOW.minus(5));
    assert_eq!(t.expires_at(), Some(NOW.plus(115)));
    assert_eq!(t.accept_until(), NOW.plus(115 + 60));
}

#[test]
fn request_body_needs_exactly_one_logout_token() {
    let env = env();
    let keys = &env.keys;
    for (body, e) in [
        (&b""[..], LogoutTokenError::MissingToken),
        (b"token=abc", LogoutTokenError::MissingToken),
        (b"logout_token=", LogoutTokenError::MissingToken),
        (
            b"logout_token=a&logout_token=b",
            LogoutTokenError::DuplicateToken,
        ),
        (
            b"logout_token=a&logout_token=",
            LogoutTokenError::DuplicateToken,
        ),
    ] {
        let r = env.client.backchannel_logout(body, keys).map(|_| ());
        assert_eq!(r, Err(Error::LogoutToken(e)), "{body:?}");
    }
    // Other parameters are ignored; the value is form-decoded.
    let token = env.key.token(&claims().to_string());
    let mut b = b"other=1&".to_vec();
    b.extend(body(&token));
    let mut op = env.client.backchannel_logout(&b, keys).unwrap();
    assert!(matches!(op.poll(NOW), Ok(Step::Done(_))));
}

#[test]
fn backchannel_2_6_sid_or_sub_required() {
    let env = env();
    let no_sid = with(claims(), "sid", Value::Null);
    assert_eq!(run(&env, &no_sid).unwrap().session_id(), None);
    let no_sub = with(claims(), "sub", Value::Null);
    assert_eq!(run(&env, &no_sub).unwrap().subject(), None);
    let neither = with(no_sid, "sub", Value::Null);
    assert_eq!(
        refusal(run(&env, &neither)),
        LogoutTokenError::NoSessionOrSubject
    );
    // Present but not a non-empty string is malformed, not absent.
    assert_eq!(
        refusal(run(&env, &with(claims(), "sid", json!(7)))),
        claim(ClaimError::Missing("sid"))
    );
    assert_eq!(
        refusal(run(&env, &with(claims(), "sub", json!("")))),
        claim(ClaimError::Missing("sub"))
    );
}

#[test]
fn backchannel_2_6_missing_events() {
    let env = env();
    assert_eq!(
        refusal(run(&env, &with(claims(), "events", Value::Null))),
        LogoutTokenError::Events
    );
}

#[test]
fn backchannel_2_6_events_not_an_object() {
    let env = env();
    for events in [
        json!([BACKCHANNEL_LOGOUT_EVENT]),
        json!(BACKCHANNEL_LOGOUT_EVENT),
        json!(true),
    ] {
        assert_eq!(
            refusal(run(&env, &with(claims(), "events", events.clone()))),
            LogoutTokenError::Events,
            "{events}"
        );
    }
}

#[test]
fn backchannel_2_6_events_wrong_member() {
    let env = env();
    for events in [
        json!({}),
        json!({"http://schemas.openid.net/event/backchannel-logout/": {}}),
        json!({"http://schemas.openid.net/event/frontchannel-logout": {}}),
    ] {
        assert_eq!(
            refusal(run(&env, &with(claims(), "events", events.clone()))),
            LogoutTokenError::Events,
            "{events}"
        );
    }
}

#[test]
fn backchannel_2_4_event_member_value_must_be_an_object() {
    let env = env();
    for value in [json!(true), json!("x"), json!([]), json!(1)] {
        let events = json!({ BACKCHANNEL_LOGOUT_EVENT: value });
        assert_eq!(
            refusal(run(&env, &with(claims(), "events", events))),
            LogoutTokenError::Events,
            "{value}"
        );
    }
    // Other events may be listed alongside; a non-empty object is accepted (SHOULD be `{}`).
    let events = json!({BACKCHANNEL_LOGOUT_EVENT: {"x": 1}, "urn:other": true});
    run(&env, &with(claims(), "events", events)).unwrap();
}

#[test]
fn backchannel_2_4_nonce_present() {
    let env = env();
    for nonce in [json!("n-1"), json!(""), json!(5)] {
        assert_eq!(
            refusal(run(&env, &with(claims(), "nonce", nonce.clone()))),
            LogoutTokenError::Nonce,
            "{nonce}"
        );
    }
}

#[test]
fn backchannel_2_6_wrong_aud() {
    let env = env();
    for aud in [json!("client_2"), json!(["client_2"])] {
        assert_eq!(
            refusal(run(&env, &with(claims(), "aud", aud))),
            claim(ClaimError::Audience)
        );
    }
    assert_eq!(
        refusal(run(&env, &with(claims(), "aud", Value::Null))),
        claim(ClaimError::Missing("aud"))
    );
    // Extra audiences as for ID tokens: refused unless trusted.
    let two = with(claims(), "aud", json!([CLIENT, "api"]));
    assert_eq!(
        refusal(run(&env, &two)),
        claim(ClaimError::UntrustedAudience)
    );
    let trusting = Env {
        client: Client::new(
            Config::builder(ISS, CLIENT)
                .trusted_audiences(["api"])
                .build()
                .unwrap(),
        )
        .unwrap(),
        ..env
    };
    run(&trusting, &two).unwrap();
}

#[test]
fn backchannel_2_6_wrong_iss() {
    let env = env();
    for iss in [json!("https://evil.example"), json!(format!("{ISS}/"))] {
        assert_eq!(
            refusal(run(&env, &with(claims(), "iss", iss))),
            claim(ClaimError::Issuer)
        );
    }
    assert_eq!(
        refusal(run(&env, &with(claims(), "iss", Value::Null))),
        claim(ClaimError::Missing("iss"))
    );
}

#[test]
fn backchannel_2_6_iat_too_far_in_the_future() {
    let env = env();
    // Leeway 60 s: iat = now + 60 is accepted, now + 61 is not.
    run(&env, &with(claims(), "iat", json!(NOW.0 + 60))).unwrap();
    assert_eq!(
        refusal(run(&env, &with(claims(), "iat", json!(NOW.0 + 61)))),
        claim(ClaimError::IssuedInFuture)
    );
    assert_eq!(
        refusal(run(&env, &with(claims(), "iat", Value::Null))),
        claim(ClaimError::Missing("iat"))
    );
    assert_eq!(
        refusal(run(&env, &with(claims(), "iat", json!(-1)))),
        claim(ClaimError::Missing("iat"))
    );
}

#[test]
fn backchannel_2_6_expired() {
    let env = env();
    // exp + leeway is the end.
    run(&env, &with(claims(), "exp", json!(NOW.0 - 59))).unwrap();
    assert_eq!(
        refusal(run(&env, &with(claims(), "exp", json!(NOW.0 - 60)))),
        claim(ClaimError::Expired)
    );
    // Without exp, the token is old once iat + LOGOUT_TOKEN_MAX_AGE + leeway has passed.
    let no_exp = |iat: u64| with(with(claims(), "exp", Value::Null), "iat", json!(iat));
    let t = run(&env, &no_exp(NOW.0 - LOGOUT_TOKEN_MAX_AGE - 59)).unwrap();
    assert_eq!(t.expires_at(), None);
    assert_eq!(t.accept_until(), NOW.plus(1));
    assert_eq!(
        refusal(run(&env, &no_exp(NOW.0 - LOGOUT_TOKEN_MAX_AGE - 60))),
        claim(ClaimError::Expired)
    );
    // A far exp does not extend the acceptance window past iat + max age.
    let far = with(
        with(claims(), "exp", json!(NOW.0 + 86_400)),
        "iat",
        json!(NOW.0 - LOGOUT_TOKEN_MAX_AGE - 60),
    );
    assert_eq!(refusal(run(&env, &far)), claim(ClaimError::Expired));
}

#[test]
fn backchannel_2_4_jti_required() {
    let env = env();
    for jti in [Value::Null, json!(""), json!(3)] {
        assert_eq!(
            refusal(run(&env, &with(claims(), "jti", jti))),
            claim(ClaimError::Missing("jti"))
        );
    }
}

#[test]
fn backchannel_2_4_typ_logout_jwt_when_present() {
    let env = env();
    for typ in [
        "logout+jwt",
        "application/logout+jwt",
        "Logout+JWT",
        "APPLICATION/LOGOUT+JWT",
    ] {
        let header = json!({"alg": "ES256", "kid": "k1", "typ": typ}).to_string();
        let token = env.key.sign(&header, &claims().to_string());
        let (r, _) = run_with(&env, &token, NOW, None);
        r.unwrap_or_else(|e| panic!("{typ}: {e:?}"));
    }
}

#[test]
fn backchannel_2_4_typ_at_jwt_is_refused() {
    let env = env();
    for typ in ["at+jwt", "application/at+jwt", "JWT", "jwt", "secevent+jwt"] {
        let header = json!({"alg": "ES256", "kid": "k1", "typ": typ}).to_string();
        let token = env.key.sign(&header, &claims().to_string());
        let (r, sends) = run_with(&env, &token, NOW, None);
        assert_eq!(refusal(r), claim(ClaimError::Type), "{typ}");
        assert_eq!(sends, 0);
    }
}

#[test]
fn backchannel_2_4_id_token_is_not_a_logout_token() {
    let env = env();
    // An AuthPI ID token of the same session: nonce, no events, no typ.
    let id_token = json!({
        "iss": ISS, "sub": "usr_alice", "aud": CLIENT, "exp": NOW.0 + 3600, "iat": NOW.0 - 5,
        "nonce": "n-1", "auth_time": NOW.0 - 5, "sid": "s_1", "jti": "j",
    });
    assert_eq!(refusal(run(&env, &id_token)), LogoutTokenError::Events);
    // Even with a forged-looking events member, the nonce gives it away.
    let with_events = with(id_token, "events", json!({ BACKCHANNEL_LOGOUT_EVENT: {} }));
    assert_eq!(refusal(run(&env, &with_events)), LogoutTokenError::Nonce);
}

#[test]
fn access_token_is_not_a_logout_token() {
    let env = env();
    // AuthPI access token shape (typ at+jwt, sid, jti) even with an events member.
    let at = json!({
        "iss": ISS, "sub": "usr_alice", "aud": CLIENT, "exp": NOW.0 + 1800, "iat": NOW.0 - 5,
        "jti": "j", "sid": "s_1", "client_id": CLIENT, "scope": "openid",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    });
    let header = json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt"}).to_string();
    let token = env.key.sign(&header, &at.to_string());
    let (r, _) = run_with(&env, &token, NOW, None);
    assert_eq!(refusal(r), claim(ClaimError::Type));
}

#[test]
fn bad_signature_is_refused_without_a_jwks_request() {
    let env = env();
    let other = TestKey::generate(Algorithm::Es256, Some("k1"));
    let token = other.token(&claims().to_string());
    let (r, sends) = run_with(&env, &token, NOW, None);
    assert_eq!(
        refusal(r),
        LogoutTokenError::Token(TokenError::Jose(JoseError::InvalidSignature))
    );
    assert_eq!(sends, 0);
    // A tampered payload under the real key's signature.
    let good = env.key.token(&claims().to_string());
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged = crate::jose::test_keys::b64(
        with(claims(), "sub", json!("usr_bob"))
            .to_string()
            .as_bytes(),
    );
    parts[1] = &forged;
    let (r, _) = run_with(&env, &parts.join("."), NOW, None);
    assert_eq!(
        refusal(r),
        LogoutTokenError::Token(TokenError::Jose(JoseError::InvalidSignature))
    );
    // alg none and HMAC never get as far as keys.
    let none = format!(
        "{}.{}.",
        crate::jose::test_keys::b64(br#"{"alg":"none"}"#),
        crate::jose::test_keys::b64(claims().to_string().as_bytes())
    );
    let (r, sends) = run_with(&env, &none, NOW, None);
    assert_eq!(
        refusal(r),
        LogoutTokenError::Token(TokenError::Jose(JoseError::AlgNone))
    );
    assert_eq!(sends, 0);
}

#[test]
fn unknown_kid_within_cooldown_causes_no_jwks_request() {
    // The cached set was fetched 10 s ago (< REFETCH_COOLDOWN): a token with an unknown kid is
    // refused at once; anyone can POST here, so it must not turn into a JWKS request.
    let env = env();
    let rotated = TestKey::generate(Algorithm::Es256, Some("k2"));
    let token = rotated.token(&claims().to_string());
    let (r, sends) = run_with(&env, &token, NOW, None);
    assert_eq!(
        refusal(r),
        LogoutTokenError::Token(TokenError::Jose(JoseError::NoMatchingKey))
    );
    assert_eq!(sends, 0);
}

#[test]
fn unknown_kid_outside_cooldown_refetches_once() {
    let env = env();
    let rotated = TestKey::generate(Algorithm::Es256, Some("k2"));
    let token = rotated.token(&claims().to_string());
    let later = NOW.plus(crate::provider::REFETCH_COOLDOWN);
    let later_claims = with(
        with(claims(), "iat", json!(later.0 - 5)),
        "exp",
        json!(later.0 + 100),
    );
    let token_later = rotated.token(&later_claims.to_string());
    // The provider rotated: one JWKS request, then the token verifies.
    let jwks = TestKey::jwks(&[&env.key, &rotated]);
    let (r, sends) = run_with(&env, &token_later, later, Some(&jwks));
    assert_eq!(r.unwrap().jwt_id(), "jti-1");
    assert_eq!(sends, 1);
    // Still unknown after the refetch: refused after exactly one request.
    let unchanged = TestKey::jwks(&[&env.key]);
    let (r, sends) = run_with(&env, &token_later, later, Some(&unchanged));
    assert_eq!(
        refusal(r),
        LogoutTokenError::Token(TokenError::Jose(JoseError::NoMatchingKey))
    );
    assert_eq!(sends, 1);
    drop(token);
}

#[test]
fn refetch_emits_keys_refreshed_before_done() {
    let env = env();
    let rotated = TestKey::generate(Algorithm::Es256, Some("k2"));
    let later = NOW.plus(crate::provider::REFETCH_COOLDOWN);
    let c = with(
        with(claims(), "iat", json!(later.0)),
        "exp",
        json!(later.0 + 100),
    );
    let token = rotated.token(&c.to_string());
    let mut op = env
        .client
        .backchannel_logout(&body(&token), &env.keys)
        .unwrap();
    assert!(matches!(op.poll(later), Ok(Step::Send(_))));
    let jwks = TestKey::jwks(&[&rotated]);
    op.handle_response(http::Response::new(jwks.into_bytes()));
    let Ok(Step::KeysRefreshed(k)) = op.poll(later) else {
        panic!("expected KeysRefreshed")
    };
    assert_eq!(k.len(), 1);
    assert!(matches!(op.poll(later), Ok(Step::Done(_))));
}

#[test]
fn duplicate_claims_are_refused() {
    let env = env();
    let payload = claims()
        .to_string()
        .replacen('{', r#"{"sid":"s_other","#, 1);
    let token = env.key.token(&payload);
    let (r, _) = run_with(&env, &token, NOW, None);
    assert!(matches!(
        refusal(r),
        LogoutTokenError::Token(TokenError::Json(crate::json::JsonError::DuplicateMember(_)))
    ));
}

#[test]
fn debug_and_errors_never_show_the_token() {
    let env = env();
    let token = env.key.token(&claims().to_string());
    let op = env
        .client
        .backchannel_logout(&body(&token), &env.keys)
        .unwrap();
    assert!(!format!("{op:?}").contains(&token[..20]));
    let r = run(&env, &with(claims(), "nonce", json!("secret-nonce")));
    let e = r.unwrap_err();
    assert!(!format!("{e} {e:?}").contains("secret-nonce"));
    // The provider's session id is redacted from the validated token's Debug (review #7).
    let t = run(&env, &with(claims(), "sid", json!("sid-secret-42"))).unwrap();
    let dbg = format!("{t:?}");
    assert!(!dbg.contains("sid-secret-42"), "{dbg}");
    assert!(
        dbg.contains("usr_alice") && dbg.contains("[redacted]"),
        "{dbg}"
    );
}

#[test]
fn token_set_session_id_reads_the_id_token_sid() {
    let env = env();
    let mut set = TokenSet {
        access_token: "at".into(),
        token_type: "Bearer".into(),
        expires_at: NOW.0,
        refresh_token: None,
        id_token: None,
        subject_hint: None,
        scope: None,
    };
    assert_eq!(set.session_id(), None);
    set.id_token = Some(
        env.key
            .token(&json!({"sub": "u", "sid": "s_9"}).to_string()),
    );
    assert_eq!(set.session_id().as_deref(), Some("s_9"));
    set.id_token = Some(env.key.token(&json!({"sub": "u", "sid": 9}).to_string()));
    assert_eq!(set.session_id(), None);
    set.id_token = Some(env.key.token(r#"{"sid":"a","sid":"b"}"#));
    assert_eq!(set.session_id(), None, "duplicate members are refused");
}

#[test]
fn numeric_dates_may_be_fractional() {
    // RFC 7519 §2: a NumericDate is a JSON number, possibly non-integer.
    let env = env();
    let c = with(
        with(claims(), "iat", json!(NOW.0 as f64 - 4.5)),
        "exp",
        json!(NOW.0 as f64 + 100.25),
    );
    let t = run(&env, &c).unwrap();
    assert_eq!(t.issued_at(), NOW.minus(5));
    assert_eq!(t.expires_at(), Some(NOW.plus(100)));
    assert_eq!(
        refusal(run(&env, &with(claims(), "iat", json!(-1.5)))),
        claim(ClaimError::Missing("iat"))
    );
}

#[test]
fn jwks_transport_failure_counts_as_an_attempt_and_is_no_verdict() {
    let env = env();
    let rotated = TestKey::generate(Algorithm::Es256, Some("k2"));
    let later = NOW.plus(crate::provider::REFETCH_COOLDOWN);
    let c = with(
        with(claims(), "iat", json!(later.0)),
        "exp",
        json!(later.0 + 100),
    );
    let token = rotated.token(&c.to_string());
    let mut op = env
        .client
        .backchannel_logout(&body(&token), &env.keys)
        .unwrap();
    assert!(matches!(op.poll(later), Ok(Step::Send(_))));
    op.handle_transport_error();
    // The failed attempt is handed out (it starts the cooldown), then the error.
    let Ok(Step::KeysRefreshed(k)) = op.poll(later) else {
        panic!("expected KeysRefreshed")
    };
    assert!(!k.may_refetch(later));
    assert!(matches!(
        op.poll(later),
        Err(Error::NoResponse {
            endpoint: crate::error::Endpoint::Jwks
        })
    ));
    assert!(matches!(
        op.poll(later),
        Err(Error::ApiMisuse(crate::error::ApiMisuse::OperationFinished))
    ));
}
