//! OpenID RP conformance cases (`oidcc-client-test-*` modules, one test each, `-` → `_`) and the
//! key-handling rules of DESIGN §4/§5, each driving a real operation against a mock provider
//! that serves crafted ID tokens (signed with the testkit's `TestKey`) and its own JWKS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use authpi_idp::error::{CallbackError, ClaimError, DiscoveryError, TokenError};
use authpi_idp::jose::JoseError;
use authpi_idp::{
    Agent, AuthorizationRequest, Client, Config, ConfigBuilder, Error, KeySet, ProviderMetadata,
    RequestKind, SessionOptions, TokenSet, UnixTime,
};
use authpi_idp_testkit::jwt::{TestKey, b64url};
use authpi_idp_testkit::{Alg, at_hash};
use common::{Event, REFRESH, Trace, drive, json_response};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};

const OP: &str = "https://op.test/i_conf";
const REDIRECT: &str = "https://app.example.com/callback";
const NOW: u64 = 1_767_400_000;
const AT: &str = "opaque-access-token-1";

/// A mock OpenID provider: answers discovery, JWKS, token and UserInfo with whatever the test
/// put in it, and counts JWKS requests.
struct Op {
    discovery: Value,
    jwks: Value,
    token: Value,
    userinfo: Value,
    jwks_requests: usize,
}

impl Op {
    fn new(published: &[&TestKey]) -> Op {
        Op {
            discovery: discovery_doc(OP, false),
            jwks: jwks(published),
            token: json!({}),
            userinfo: json!({}),
            jwks_requests: 0,
        }
    }

    fn handle(&mut self, req: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
        let path = req.uri().path().to_owned();
        let body = if path.ends_with("/.well-known/openid-configuration") {
            &self.discovery
        } else if path.ends_with("/jwks.json") {
            self.jwks_requests += 1;
            &self.jwks
        } else if path.ends_with("/token") {
            &self.token
        } else if path.ends_with("/userinfo") {
            &self.userinfo
        } else {
            panic!("unexpected request to {path}")
        };
        json_response(200, body)
    }
}

fn discovery_doc(issuer: &str, iss_param: bool) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{OP}/authorize"),
        "token_endpoint": format!("{OP}/token"),
        "userinfo_endpoint": format!("{OP}/userinfo"),
        "jwks_uri": format!("{OP}/jwks.json"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["ES256", "EdDSA", "RS256", "PS256"],
        "authorization_response_iss_parameter_supported": iss_param,
    })
}

fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
}

fn config() -> ConfigBuilder {
    Config::builder(OP, "client_web")
        .client_secret("secret_web")
        .redirect_uri(REDIRECT)
}

fn client_from(builder: ConfigBuilder, iss_param: bool) -> Client {
    let meta = ProviderMetadata::from_response(
        &json_response(200, &discovery_doc(OP, iss_param)),
        OP,
        UnixTime(NOW),
    )
    .unwrap();
    Client::with_metadata(builder.build().unwrap(), meta).unwrap()
}

fn client() -> Client {
    client_from(config(), false)
}

/// A key set holding `keys`, fetched at `fetched_at`, fresh for an hour.
fn cached(keys: &[&TestKey], fetched_at: u64) -> KeySet {
    KeySet::from_json(
        jwks(keys).to_string().as_bytes(),
        UnixTime(fetched_at),
        3600,
    )
    .unwrap()
}

fn es256() -> TestKey {
    TestKey::generate(Alg::Es256, "k-es").unwrap()
}

fn id_claims(nonce: &str) -> Value {
    json!({
        "iss": OP, "sub": "usr_alice", "aud": "client_web",
        "exp": NOW + 600, "iat": NOW, "auth_time": NOW - 5, "nonce": nonce,
        "email": "alice@example.com", "email_verified": true,
    })
}

fn token_response(id_token: &str) -> Value {
    json!({
        "access_token": AT, "token_type": "Bearer", "expires_in": 600,
        "refresh_token": "rt-1", "id_token": id_token, "scope": "openid email",
    })
}

/// A login whose token response carries the ID token `make(nonce)`.
fn login_with(
    client: &Client,
    op: &mut Op,
    keys: &KeySet,
    req: &AuthorizationRequest,
    make: impl FnOnce(&str) -> String,
) -> (Result<Agent, Error>, Trace) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let tx = client.authorization_url(req, &mut rng).unwrap();
    op.token = token_response(&make(&tx.nonce));
    let cb = format!("{REDIRECT}?code=c1&state={}", tx.state);
    let exchange = client.exchange_callback(cb.as_str(), &tx, keys).unwrap();
    drive(exchange, UnixTime(NOW), |r| op.handle(r))
}

/// The common case: one ES256 key, cached and fresh; `edit` changes the claims.
fn login_es256(edit: impl FnOnce(&mut Value)) -> (Result<Agent, Error>, Trace) {
    let key = es256();
    let mut op = Op::new(&[&key]);
    let keys = cached(&[&key], NOW - 120);
    login_with(
        &client(),
        &mut op,
        &keys,
        &AuthorizationRequest::new(["openid"]),
        |nonce| {
            let mut c = id_claims(nonce);
            edit(&mut c);
            key.sign_claims(None, &c).unwrap()
        },
    )
}

/// The exchange spent the code and was refused with `expected`: nothing came out.
fn assert_refused<T: std::fmt::Debug>(r: Result<T, Error>, trace: &Trace, expected: Error) {
    assert_eq!(r.unwrap_err(), expected);
    assert!(trace.nothing_out(), "{:?}", trace.events);
}

fn claim_error(c: ClaimError) -> Error {
    Error::IdToken(TokenError::Claim(c))
}

fn jose_error(j: JoseError) -> Error {
    Error::IdToken(TokenError::Jose(j))
}

#[test]
fn oidcc_client_test_invalid_iss() {
    let (r, t) = login_es256(|c| c["iss"] = json!("https://op.test/i_other"));
    assert_refused(r, &t, claim_error(ClaimError::Issuer));
    assert_eq!(t.kinds(), vec![RequestKind::AuthorizationCode]);
}

#[test]
fn oidcc_client_test_missing_sub() {
    let (r, t) = login_es256(|c| {
        c.as_object_mut().unwrap().remove("sub");
    });
    assert_refused(r, &t, claim_error(ClaimError::Missing("sub")));
}

#[test]
fn oidcc_client_test_invalid_aud() {
    let (r, t) = login_es256(|c| c["aud"] = json!("client_other"));
    assert_refused(r, &t, claim_error(ClaimError::Audience));
}

#[test]
fn oidcc_client_test_missing_aud() {
    let (r, t) = login_es256(|c| {
        c.as_object_mut().unwrap().remove("aud");
    });
    assert_refused(r, &t, claim_error(ClaimError::Missing("aud")));
}

#[test]
fn oidcc_client_test_missing_iat() {
    let (r, t) = login_es256(|c| {
        c.as_object_mut().unwrap().remove("iat");
    });
    assert_refused(r, &t, claim_error(ClaimError::Missing("iat")));
}

fn sign_without_kid(key: &TestKey, claims: &Value) -> String {
    key.sign(&json!({"alg": key.alg().as_str()}), claims)
        .unwrap()
}

#[test]
fn oidcc_client_test_kid_absent_single_jwks() {
    let key = es256();
    let mut op = Op::new(&[&key]);
    let keys = cached(&[&key], NOW - 120);
    let (r, t) = login_with(
        &client(),
        &mut op,
        &keys,
        &AuthorizationRequest::new(["openid"]),
        |n| sign_without_kid(&key, &id_claims(n)),
    );
    assert_eq!(r.unwrap().id(), "usr_alice");
    assert_eq!(
        t.events,
        vec![Event::Send(RequestKind::AuthorizationCode), Event::Done]
    );
}

#[test]
fn oidcc_client_test_kid_absent_multiple_jwks() {
    // Several keys, but only one fits ES256: accepted.
    let key = es256();
    let rsa = TestKey::from_rsa_pool(Alg::Rs256, 0, "k-rsa").unwrap();
    let ed = TestKey::generate(Alg::EdDsa, "k-ed").unwrap();
    let mut op = Op::new(&[&rsa, &key, &ed]);
    let keys = cached(&[&rsa, &key, &ed], NOW - 120);
    let (r, _) = login_with(
        &client(),
        &mut op,
        &keys,
        &AuthorizationRequest::new(["openid"]),
        |n| sign_without_kid(&key, &id_claims(n)),
    );
    assert_eq!(r.unwrap().id(), "usr_alice");
    // Two ES256 keys: a token without kid is ambiguous and refused, with no refetch.
    let other = TestKey::generate(Alg::Es256, "k-es-2").unwrap();
    let mut op = Op::new(&[&key, &other]);
    let keys = cached(&[&key, &other], NOW - 120);
    let (r, t) = login_with(
        &client(),
        &mut op,
        &keys,
        &AuthorizationRequest::new(["openid"]),
        |n| sign_without_kid(&key, &id_claims(n)),
    );
    assert_refused(r, &t, jose_error(JoseError::AmbiguousKey));
    assert_eq!(op.jwks_requests, 0);
}

fn valid_login_with(key: &TestKey) -> (Result<Agent, Error>, Trace) {
    let mut op = Op::new(&[key]);
    let keys = cached(&[key], NOW - 120);
    login_with(
        &client(),
        &mut op,
        &keys,
        &AuthorizationRequest::new(["openid"]),
        |n| {
            let mut c = id_claims(n);
            c["at_hash"] = json!(at_hash(key.alg(), AT));
            key.sign_claims(None, &c).unwrap()
        },
    )
}

#[test]
fn oidcc_client_test_idtoken_sig_rs256() {
    let key = TestKey::from_rsa_pool(Alg::Rs256, 1, "k-rsa").unwrap();
    let (r, t) = valid_login_with(&key);
    let agent = r.unwrap();
    assert_eq!(agent.id(), "usr_alice");
    assert_eq!(agent.email(), Some("alice@example.com"));
    assert_eq!(agent.tokens().access_token, AT);
    assert_eq!(agent.tokens().expires_at, NOW + 600);
    assert_eq!(t.events.last(), Some(&Event::Done));
}

#[test]
fn oidcc_client_test_idtoken_sig_none() {
    let (r, t) = {
        let key = es256();
        let mut op = Op::new(&[&key]);
        let keys = cached(&[&key], NOW - 120);
        login_with(
            &client(),
            &mut op,
            &keys,
            &AuthorizationRequest::new(["openid"]),
            |n| {
                format!(
                    "{}.{}.",
                    b64url(br#"{"alg":"none"}"#),
                    b64url(id_claims(n).to_string().as_bytes())
                )
            },
        )
    };
    let e = r.unwrap_err();
    assert_eq!(e, jose_error(JoseError::AlgNone));
    assert_eq!(e.code(), "invalid_id_token");
    assert!(t.nothing_out());
}

/// A token whose header names the published key but whose signature is another key's.
fn forged_with(published: &TestKey, signer: &TestKey) -> (Result<Agent, Error>, Trace, usize) {
    let mut op = Op::new(&[published]);
    let keys = cached(&[published], NOW - 120);
    let (r, t) = login_with(
        &client(),
        &mut op,
        &keys,
        &AuthorizationRequest::new(["openid"]),
        |n| signer.sign_claims(None, &id_claims(n)).unwrap(),
    );
    (r, t, op.jwks_requests)
}

#[test]
fn oidcc_client_test_invalid_sig_rs256() {
    let published = TestKey::from_rsa_pool(Alg::Rs256, 2, "k-rsa").unwrap();
    let signer = TestKey::from_rsa_pool(Alg::Rs256, 3, "k-rsa").unwrap();
    let (r, t, jwks_requests) = forged_with(&published, &signer);
    assert_refused(r, &t, jose_error(JoseError::InvalidSignature));
    assert_eq!(jwks_requests, 0);
}

#[test]
fn oidcc_client_test_invalid_sig_es256() {
    let published = es256();
    let signer = es256();
    let (r, t, jwks_requests) = forged_with(&published, &signer);
    assert_refused(r, &t, jose_error(JoseError::InvalidSignature));
    assert_eq!(jwks_requests, 0);
}

#[test]
fn oidcc_client_test_invalid_sig_hs256() {
    // The classic confusion: HMAC keyed with the public key's JWK text.
    let key = es256();
    let mut op = Op::new(&[&key]);
    let keys = cached(&[&key], NOW - 120);
    let secret = key.jwk().to_string();
    let (r, t) = login_with(
        &client(),
        &mut op,
        &keys,
        &AuthorizationRequest::new(["openid"]),
        |n| {
            let input = format!(
                "{}.{}",
                b64url(br#"{"alg":"HS256","kid":"k-es"}"#),
                b64url(id_claims(n).to_string().as_bytes())
            );
            let mac = ring::hmac::sign(
                &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes()),
                input.as_bytes(),
            );
            format!("{input}.{}", b64url(mac.as_ref()))
        },
    );
    assert_refused(r, &t, jose_error(JoseError::Hmac));
    assert_eq!(op.jwks_requests, 0);
}

#[test]
fn oidcc_client_test_userinfo_invalid_sub() {
    let key = es256();
    let mut op = Op::new(&[&key]);
    let keys = cached(&[&key], NOW - 120);
    let client = client();
    let (agent, _) = login_with(
        &client,
        &mut op,
        &keys,
        &AuthorizationRequest::new(["openid"]),
        |n| key.sign_claims(None, &id_claims(n)).unwrap(),
    );
    let agent = agent.unwrap();
    op.userinfo = json!({"sub": "usr_mallory", "email": "mallory@example.com"});
    let mismatch = Error::SubjectMismatch {
        expected: "usr_alice".into(),
        actual: "usr_mallory".into(),
    };
    let (r, t) = drive(client.userinfo(&agent).unwrap(), UnixTime(NOW), |q| {
        op.handle(q)
    });
    assert_refused(r, &t, mismatch.clone());
    assert_eq!(mismatch.code(), "subject_mismatch");
    // The same rule when a stored token set is hydrated from UserInfo.
    let hinted = TokenSet {
        id_token: None,
        subject_hint: Some("usr_alice".into()),
        ..agent.tokens().clone()
    };
    let (r, t) = drive(
        client
            .create_agent(hinted, SessionOptions::new(), &keys, UnixTime(NOW))
            .unwrap(),
        UnixTime(NOW),
        |q| op.handle(q),
    );
    assert_refused(r, &t, mismatch);
    assert_eq!(t.kinds(), vec![RequestKind::UserInfo]);
}

#[test]
fn oidcc_client_test_nonce_invalid() {
    let (r, t) = login_es256(|c| c["nonce"] = json!("not-the-nonce"));
    let e = r.unwrap_err();
    assert_eq!(e, claim_error(ClaimError::NonceMismatch));
    assert_eq!(e.code(), "invalid_nonce");
    assert!(t.nothing_out());
    let (r, t) = login_es256(|c| {
        c.as_object_mut().unwrap().remove("nonce");
    });
    assert_refused(r, &t, claim_error(ClaimError::MissingNonce));
}

#[test]
fn oidcc_client_test_discovery_issuer_mismatch() {
    let mut op = Op::new(&[&es256()]);
    op.discovery = discovery_doc("https://op.test/i_evil", false);
    let (r, t) = drive(
        Client::discover(config().build().unwrap()),
        UnixTime(NOW),
        |q| op.handle(q),
    );
    assert_refused(r, &t, Error::Discovery(DiscoveryError::IssuerMismatch));
    assert_eq!(t.kinds(), vec![RequestKind::Discovery]);
    assert_eq!(op.jwks_requests, 0);
    // A trailing slash in the configuration is tolerated; the discovered value wins.
    op.discovery = discovery_doc(OP, false);
    let (r, _) = drive(
        Client::discover(
            Config::builder(format!("{OP}/"), "client_web")
                .build()
                .unwrap(),
        ),
        UnixTime(NOW),
        |q| op.handle(q),
    );
    assert_eq!(r.unwrap().client.issuer(), OP);
}

#[test]
fn oidcc_client_test_signing_key_rotation() {
    let old = es256();
    let new = TestKey::generate(Alg::Es256, "k-es-new").unwrap();
    // The cache holds only the old key, fetched 2 minutes ago (past the 60 s cooldown).
    let keys = cached(&[&old], NOW - 120);
    let mut op = Op::new(&[&new, &old]);
    let (r, t) = login_with(
        &client(),
        &mut op,
        &keys,
        &AuthorizationRequest::new(["openid"]),
        |n| new.sign_claims(None, &id_claims(n)).unwrap(),
    );
    assert_eq!(r.unwrap().id(), "usr_alice");
    assert_eq!(
        t.events,
        vec![
            Event::Send(RequestKind::AuthorizationCode),
            Event::Send(RequestKind::Jwks),
            Event::KeysRefreshed,
            Event::Done
        ]
    );
    assert_eq!(op.jwks_requests, 1);
    let refreshed = &t.keys[0];
    assert_eq!(refreshed.len(), 2);
    assert_eq!(refreshed.fetched_at(), Some(UnixTime(NOW)));
}

fn callback_case(iss_param: bool, extra: &str) -> Result<(), Error> {
    let client = client_from(config(), iss_param);
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let tx = client
        .authorization_url(&AuthorizationRequest::new(["openid"]), &mut rng)
        .unwrap();
    let cb = format!("{REDIRECT}?code=c1&state={}{extra}", tx.state);
    // An error here means no Exchange exists: no request can be sent, no code spent.
    client
        .exchange_callback(cb.as_str(), &tx, &KeySet::empty())
        .map(|_| ())
}

#[test]
fn oidcc_client_test_invalid_authorization_response_iss() {
    let evil = "&iss=https%3A%2F%2Fevil.test%2Fi_conf";
    for advertised in [false, true] {
        let e = callback_case(advertised, evil).unwrap_err();
        assert_eq!(e, Error::Callback(CallbackError::IssuerMismatch));
        assert_eq!(e.code(), "invalid_issuer");
    }
    // The right iss passes.
    let ok = format!(
        "&iss={}",
        url::form_urlencoded::byte_serialize(OP.as_bytes()).collect::<String>()
    );
    callback_case(true, &ok).unwrap();
}

#[test]
fn oidcc_client_test_remove_authorization_response_iss() {
    assert_eq!(
        callback_case(true, "").unwrap_err(),
        Error::Callback(CallbackError::IssuerMissing)
    );
    // Not advertised (AuthPI): absence is fine.
    callback_case(false, "").unwrap();
}

// ---------------------------------------------------------------------------------------------
// Algorithms and key handling

#[test]
fn valid_tokens_for_es256_eddsa_rs256_ps256_verify() {
    let keys = [
        TestKey::generate(Alg::Es256, "k1").unwrap(),
        TestKey::generate(Alg::EdDsa, "k2").unwrap(),
        TestKey::from_rsa_pool(Alg::Rs256, 4, "k3").unwrap(),
        TestKey::from_rsa_pool(Alg::Ps256, 5, "k4").unwrap(),
    ];
    for key in &keys {
        let (r, t) = valid_login_with(key);
        let agent = r.unwrap_or_else(|e| panic!("{}: {e:?}", key.alg()));
        assert_eq!(agent.id(), "usr_alice");
        assert_eq!(t.events.last(), Some(&Event::Done));
    }
    // PS256 is refused when the client pins the AuthPI algorithms only.
    let ps = &keys[3];
    let pinned = client_from(
        config().algorithms(authpi_idp::jose::AlgorithmSet::from_names([
            "ES256", "EdDSA", "RS256",
        ])),
        false,
    );
    let mut op = Op::new(&[ps]);
    let cache = cached(&[ps], NOW - 120);
    let (r, t) = login_with(
        &pinned,
        &mut op,
        &cache,
        &AuthorizationRequest::new(["openid"]),
        |n| ps.sign_claims(None, &id_claims(n)).unwrap(),
    );
    assert_refused(
        r,
        &t,
        jose_error(JoseError::AlgorithmNotAllowed(
            authpi_idp::jose::Algorithm::from_name("PS256").unwrap(),
        )),
    );
}

#[test]
fn refetch_cooldown_burst_of_50_random_kids_causes_at_most_one_jwks_request() {
    let key = es256();
    let mut op = Op::new(&[&key]);
    let client = client();
    let mut shared = cached(&[&key], NOW - 120);
    let mut rng = ChaCha20Rng::seed_from_u64(50);
    let mut refused = 0;
    for _ in 0..50 {
        let kid = format!(
            "{:032x}",
            u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())
        );
        let (r, t) = login_with(
            &client,
            &mut op,
            &shared,
            &AuthorizationRequest::new(["openid"]),
            |n| {
                key.sign(&json!({"alg": "ES256", "kid": kid}), &id_claims(n))
                    .unwrap()
            },
        );
        assert_eq!(r.unwrap_err(), jose_error(JoseError::NoMatchingKey));
        assert!(t.nothing_out());
        if let Some(k) = t.keys.last() {
            shared = k.clone();
        }
        refused += 1;
    }
    assert_eq!(refused, 50);
    assert_eq!(op.jwks_requests, 1);
    assert_eq!(shared.fetched_at(), Some(UnixTime(NOW)));
}

#[test]
fn stale_key_set_is_refetched_before_the_code_is_spent() {
    let key = es256();
    let mut op = Op::new(&[&key]);
    // Fetched 2 hours ago with max-age 1 h: stale.
    let stale = cached(&[&key], NOW - 7200);
    assert!(!stale.is_fresh(UnixTime(NOW)));
    let (r, t) = login_with(
        &client(),
        &mut op,
        &stale,
        &AuthorizationRequest::new(["openid"]),
        |n| key.sign_claims(None, &id_claims(n)).unwrap(),
    );
    assert_eq!(r.unwrap().id(), "usr_alice");
    assert_eq!(
        t.events,
        vec![
            Event::Send(RequestKind::Jwks),
            Event::KeysRefreshed,
            Event::Send(RequestKind::AuthorizationCode),
            Event::Done
        ]
    );
    assert!(t.keys[0].is_fresh(UnixTime(NOW)));
}

#[test]
fn unknown_kid_right_after_a_fetch_is_refused_without_a_request() {
    let key = es256();
    let mut op = Op::new(&[&key]);
    let just_fetched = cached(&[&key], NOW - 10);
    let (r, t) = login_with(
        &client(),
        &mut op,
        &just_fetched,
        &AuthorizationRequest::new(["openid"]),
        |n| {
            key.sign(&json!({"alg": "ES256", "kid": "unknown"}), &id_claims(n))
                .unwrap()
        },
    );
    assert_refused(r, &t, jose_error(JoseError::NoMatchingKey));
    assert_eq!(t.kinds(), vec![RequestKind::AuthorizationCode]);
    assert_eq!(op.jwks_requests, 0);
}

#[test]
fn at_hash_mismatch_is_refused() {
    let (r, t) = login_es256(|c| c["at_hash"] = json!(at_hash(Alg::Es256, "another-token")));
    assert_refused(r, &t, claim_error(ClaimError::AtHash));
}

#[test]
fn max_age_makes_auth_time_required() {
    let key = es256();
    let keys = cached(&[&key], NOW - 120);
    let req = AuthorizationRequest::new(["openid"]).max_age(300);
    let run = |edit: &dyn Fn(&mut Value)| {
        let mut op = Op::new(&[&key]);
        login_with(&client(), &mut op, &keys, &req, |n| {
            let mut c = id_claims(n);
            edit(&mut c);
            key.sign_claims(None, &c).unwrap()
        })
    };
    let (r, t) = run(&|c| {
        c.as_object_mut().unwrap().remove("auth_time");
    });
    assert_refused(r, &t, claim_error(ClaimError::AuthTime));
    // Older than max_age (+ leeway).
    let (r, t) = run(&|c| c["auth_time"] = json!(NOW - 300 - 61));
    assert_refused(r, &t, claim_error(ClaimError::AuthTime));
    // Recent enough.
    let (r, _) = run(&|c| c["auth_time"] = json!(NOW - 100));
    r.unwrap();
    // Without max_age, a missing auth_time is fine.
    let (r, _) = login_es256(|c| {
        c.as_object_mut().unwrap().remove("auth_time");
    });
    r.unwrap();
}

#[test]
fn at_jwt_typed_id_token_is_refused() {
    let key = es256();
    for typ in ["at+jwt", "application/at+jwt", "logout+jwt"] {
        let mut op = Op::new(&[&key]);
        let keys = cached(&[&key], NOW - 120);
        let (r, t) = login_with(
            &client(),
            &mut op,
            &keys,
            &AuthorizationRequest::new(["openid"]),
            |n| key.sign_claims(Some(typ), &id_claims(n)).unwrap(),
        );
        assert_refused(r, &t, claim_error(ClaimError::Type));
    }
}

#[test]
fn extra_untrusted_audience_is_refused() {
    let (r, t) = login_es256(|c| c["aud"] = json!(["client_web", "client_other"]));
    assert_refused(r, &t, claim_error(ClaimError::UntrustedAudience));
    // Trusted by configuration: accepted.
    let key = es256();
    let mut op = Op::new(&[&key]);
    let keys = cached(&[&key], NOW - 120);
    let trusting = client_from(config().trusted_audiences(["client_other"]), false);
    let (r, _) = login_with(
        &trusting,
        &mut op,
        &keys,
        &AuthorizationRequest::new(["openid"]),
        |n| {
            let mut c = id_claims(n);
            c["aud"] = json!(["client_web", "client_other"]);
            key.sign_claims(None, &c).unwrap()
        },
    );
    r.unwrap();
}

/// A stored session from the mock provider, expired, with an ID token bound to `nonce`.
fn stored_session(key: &TestKey) -> TokenSet {
    TokenSet {
        access_token: AT.into(),
        token_type: "Bearer".into(),
        expires_at: NOW - 10,
        refresh_token: Some("rt-1".into()),
        id_token: Some(key.sign_claims(None, &id_claims("n-orig")).unwrap()),
        subject_hint: None,
        scope: Some("openid".into()),
    }
}

fn refresh_with(edit: impl FnOnce(&mut Value)) -> (Result<Agent, Error>, Trace) {
    let key = es256();
    let mut op = Op::new(&[&key]);
    let keys = cached(&[&key], NOW - 120);
    let mut c = id_claims("n-orig");
    c["iat"] = json!(NOW);
    edit(&mut c);
    op.token = json!({
        "access_token": "opaque-access-token-2", "token_type": "Bearer", "expires_in": 600,
        "refresh_token": "rt-2", "id_token": key.sign_claims(None, &c).unwrap(),
    });
    drive(
        client()
            .create_agent(
                stored_session(&key),
                SessionOptions::new(),
                &keys,
                UnixTime(NOW),
            )
            .unwrap(),
        UnixTime(NOW),
        |q| op.handle(q),
    )
}

#[test]
fn refreshed_id_token_keeping_the_claims_is_persisted_first() {
    let (r, t) = refresh_with(|_| {});
    let agent = r.unwrap();
    assert_eq!(
        t.events,
        vec![Event::Send(t.kinds()[0]), Event::Persist, Event::Done]
    );
    assert_eq!(t.sends(REFRESH), 1);
    assert_eq!(t.persisted[0].refresh_token.as_deref(), Some("rt-2"));
    assert_eq!(agent.tokens(), &t.persisted[0]);
}

#[test]
fn refreshed_id_token_with_different_sub_is_subject_mismatch_and_not_persisted() {
    let (r, t) = refresh_with(|c| c["sub"] = json!("usr_bob"));
    let e = r.unwrap_err();
    assert_eq!(
        e,
        Error::SubjectMismatch {
            expected: "usr_alice".into(),
            actual: "usr_bob".into()
        }
    );
    assert_eq!(e.code(), "subject_mismatch");
    assert!(t.nothing_out());
    assert!(!t.events.contains(&Event::Persist));
    assert_eq!(t.sends(REFRESH), 1);
}

#[test]
fn refreshed_id_token_with_different_nonce_is_refused() {
    let (r, t) = refresh_with(|c| c["nonce"] = json!("n-other"));
    assert_refused(r, &t, claim_error(ClaimError::NonceMismatch));
    // And a changed issuer or audience.
    let (r, t) = refresh_with(|c| c["aud"] = json!(["client_web", "x"]));
    let e = r.unwrap_err();
    assert_eq!(e, claim_error(ClaimError::UntrustedAudience));
    assert!(t.nothing_out());
}
