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
    /// The status the JWKS endpoint answers (200 unless a test breaks it).
    jwks_status: u16,
}

impl Op {
    fn new(published: &[&TestKey]) -> Op {
        Op {
            discovery: discovery_doc(OP, false),
            jwks: jwks(published),
            token: json!({}),
            userinfo: json!({}),
            jwks_requests: 0,
            jwks_status: 200,
        }
    }

    fn handle(&mut self, req: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
        let path = req.uri().path().to_owned();
        let body = if path.ends_with("/.well-known/openid-configuration") {
            &self.discovery
        } else if path.ends_with("/jwks.json") {
            self.jwks_requests += 1;
            if self.jwks_status != 200 {
                return json_response(self.jwks_status, &json!({}));
            }
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

/// An RFC 9068 access token for the mock provider's API `https://api.test`, with header `kid`.
fn access_token(key: &TestKey, kid: &str) -> String {
    key.sign(
        &json!({"alg": "ES256", "kid": kid, "typ": "at+jwt"}),
        &json!({"iss": OP, "sub": "usr_alice", "aud": "https://api.test", "exp": NOW + 600,
                "iat": NOW, "client_id": "client_web", "jti": "j1"}),
    )
    .unwrap()
}

fn random_kid(rng: &mut ChaCha20Rng) -> String {
    format!(
        "{:032x}",
        u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())
    )
}

/// Validates `token` as the API would, with the shared key set `shared` (updated from the
/// operation's `KeysRefreshed`).
fn validate_at(op: &mut Op, shared: &mut KeySet, token: &str) -> (Result<(), Error>, Trace) {
    let v = client().validate_access_token(token, "https://api.test", shared);
    let (r, t) = drive(v, UnixTime(NOW), |q| op.handle(q));
    if let Some(k) = t.keys.last() {
        *shared = k.clone();
    }
    (r.map(|_| ()), t)
}

/// DESIGN §4: forged access tokens with random `kid`s (anyone can present one at an API)
/// cause at most one JWKS request per cooldown.
#[test]
fn refetch_cooldown_burst_of_50_forged_access_tokens_causes_at_most_one_jwks_request() {
    let key = es256();
    let mut op = Op::new(&[&key]);
    let mut shared = cached(&[&key], NOW - 120);
    let mut rng = ChaCha20Rng::seed_from_u64(50);
    validate_at(&mut op, &mut shared, &access_token(&key, "k-es"))
        .0
        .unwrap();
    for _ in 0..50 {
        let (r, t) = validate_at(
            &mut op,
            &mut shared,
            &access_token(&key, &random_kid(&mut rng)),
        );
        assert_eq!(
            r.unwrap_err(),
            Error::AccessToken(TokenError::Jose(JoseError::NoMatchingKey))
        );
        assert!(t.nothing_out());
    }
    assert_eq!(op.jwks_requests, 1);
    assert_eq!(shared.fetched_at(), Some(UnixTime(NOW)));
}

/// Issue #11, key cache 1: a *failed* JWKS fetch starts the cooldown too (attempts count, not
/// successes): while the endpoint answers 503, forged tokens cause one request, not one each.
#[test]
fn failed_jwks_fetch_starts_the_cooldown() {
    let key = es256();
    let mut op = Op::new(&[&key]);
    op.jwks_status = 503;
    let mut shared = cached(&[&key], NOW - 120);
    let mut rng = ChaCha20Rng::seed_from_u64(51);
    let (r, t) = validate_at(
        &mut op,
        &mut shared,
        &access_token(&key, &random_kid(&mut rng)),
    );
    assert_eq!(
        r.unwrap_err(),
        Error::Jwks(authpi_idp::jwks::JwksError::Status(503))
    );
    assert_eq!(
        t.events,
        vec![Event::Send(RequestKind::Jwks), Event::KeysRefreshed]
    );
    assert_eq!(shared.attempted_at(), Some(UnixTime(NOW)));
    assert_eq!(shared.fetched_at(), Some(UnixTime(NOW - 120)));
    for _ in 0..50 {
        let (r, _) = validate_at(
            &mut op,
            &mut shared,
            &access_token(&key, &random_kid(&mut rng)),
        );
        assert_eq!(
            r.unwrap_err(),
            Error::AccessToken(TokenError::Jose(JoseError::NoMatchingKey))
        );
    }
    assert_eq!(op.jwks_requests, 1);
    // The keys still verify genuine tokens meanwhile.
    validate_at(&mut op, &mut shared, &access_token(&key, "k-es"))
        .0
        .unwrap();
}

/// Issue #11, key cache 5: cheap rejections come before the JWKS prefetch: with a stale cache,
/// a disallowed `alg`, a 70-byte ES256 signature or a wrong `typ` causes no request.
#[test]
fn cheap_rejections_come_before_the_jwks_prefetch() {
    let key = es256();
    let stale = cached(&[&key], NOW - 7200);
    assert!(!stale.is_fresh(UnixTime(NOW)));
    let good = access_token(&key, "k-es");
    let (h, rest) = good.split_once('.').unwrap();
    let (p, _) = rest.split_once('.').unwrap();
    let long_sig = format!("{h}.{p}.{}", b64url(&[7u8; 70]));
    let ps256 = key
        .sign_raw(
            &json!({"alg": "PS256", "kid": "k-es", "typ": "at+jwt"}).to_string(),
            &String::from_utf8(
                authpi_idp_testkit::jwt::decode_claims(&good)
                    .unwrap()
                    .to_string()
                    .into_bytes(),
            )
            .unwrap(),
        )
        .unwrap();
    let id_typed = key
        .sign(
            &json!({"alg": "ES256", "kid": "k-es", "typ": "JWT"}),
            &authpi_idp_testkit::jwt::decode_claims(&good).unwrap(),
        )
        .unwrap();
    let pinned = client_from(
        config().algorithms(authpi_idp::jose::AlgorithmSet::from_names(["ES256"])),
        false,
    );
    let cases = [
        (
            long_sig,
            Error::AccessToken(TokenError::Jose(JoseError::SignatureLength)),
        ),
        (
            ps256,
            Error::AccessToken(TokenError::Jose(JoseError::AlgorithmNotAllowed(
                authpi_idp::jose::Algorithm::from_name("PS256").unwrap(),
            ))),
        ),
        (
            id_typed,
            Error::AccessToken(TokenError::Claim(ClaimError::Type)),
        ),
        (
            "not.a-token".to_owned(),
            Error::AccessToken(TokenError::Jose(JoseError::Malformed(
                "a compact JWS has exactly three parts",
            ))),
        ),
    ];
    for (token, expected) in cases {
        let mut op = Op::new(&[&key]);
        let v = pinned.validate_access_token(&token, "https://api.test", &stale);
        let (r, t) = drive(v, UnixTime(NOW), |q| op.handle(q));
        assert_eq!(r.unwrap_err(), expected);
        assert_eq!(op.jwks_requests, 0, "{expected:?}");
        assert!(t.events.is_empty(), "{:?}", t.events);
    }
    // A genuine token with the stale cache does prefetch.
    let mut op = Op::new(&[&key]);
    let v = pinned.validate_access_token(&good, "https://api.test", &stale);
    drive(v, UnixTime(NOW), |q| op.handle(q)).0.unwrap();
    assert_eq!(op.jwks_requests, 1);
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

/// DESIGN §4: right after a fetch (inside the cooldown), an unknown `kid` in an access token
/// is refused without a request; an ID token from the token endpoint is not forgeable by a
/// third party and gets its one refetch whatever the cooldown (a key rotated since the last
/// fetch just works), and is refused only if the key is still unknown after it.
#[test]
fn unknown_kid_right_after_a_fetch_refetches_only_for_an_id_token() {
    let key = es256();
    let mut op = Op::new(&[&key]);
    let mut just_fetched = cached(&[&key], NOW - 10);
    let (r, t) = validate_at(&mut op, &mut just_fetched, &access_token(&key, "unknown"));
    assert_eq!(
        r.unwrap_err(),
        Error::AccessToken(TokenError::Jose(JoseError::NoMatchingKey))
    );
    assert!(t.sent.is_empty());
    assert_eq!(op.jwks_requests, 0);

    let (r, t) = login_with(
        &client(),
        &mut op,
        &cached(&[&key], NOW - 10),
        &AuthorizationRequest::new(["openid"]),
        |n| {
            key.sign(&json!({"alg": "ES256", "kid": "unknown"}), &id_claims(n))
                .unwrap()
        },
    );
    assert_refused(r, &t, jose_error(JoseError::NoMatchingKey));
    assert_eq!(
        t.kinds(),
        vec![RequestKind::AuthorizationCode, RequestKind::Jwks]
    );
    assert_eq!(op.jwks_requests, 1);

    // The provider rotated to a new key between the fetch and the login: accepted.
    let rotated = TestKey::generate(Alg::Es256, "k-new").unwrap();
    let mut op = Op::new(&[&key, &rotated]);
    let (r, t) = login_with(
        &client(),
        &mut op,
        &cached(&[&key], NOW - 10),
        &AuthorizationRequest::new(["openid"]),
        |n| rotated.sign_claims(None, &id_claims(n)).unwrap(),
    );
    assert_eq!(r.unwrap().id(), "usr_alice");
    assert_eq!(op.jwks_requests, 1);
    assert!(t.events.contains(&Event::KeysRefreshed));
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
            c["azp"] = json!("client_web");
            key.sign_claims(None, &c).unwrap()
        },
    );
    r.unwrap();
}

/// OIDC Core §3.1.3.7 step 4: an ID token with several audiences must carry `azp` (even when
/// every audience is trusted).
#[test]
fn several_audiences_without_azp_are_refused() {
    let key = es256();
    let mut op = Op::new(&[&key]);
    let keys = cached(&[&key], NOW - 120);
    let trusting = client_from(config().trusted_audiences(["client_other"]), false);
    let (r, t) = login_with(
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
    assert_refused(r, &t, claim_error(ClaimError::Missing("azp")));
}

/// DESIGN §5: `typ` is a media type: `Application/AT+JWT` is an access token, never an ID
/// token, and an access token typed so is accepted at an API.
#[test]
fn typ_compares_case_insensitively_with_or_without_application() {
    let key = es256();
    for typ in [
        "Application/at+jwt",
        "APPLICATION/AT+JWT",
        "application/Logout+JWT",
    ] {
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
    let mut op = Op::new(&[&key]);
    let mut keys = cached(&[&key], NOW - 120);
    let good = access_token(&key, "k-es");
    let claims = authpi_idp_testkit::jwt::decode_claims(&good).unwrap();
    for typ in ["Application/at+jwt", "application/AT+JWT", "AT+JWT"] {
        let token = key
            .sign(&json!({"alg": "ES256", "kid": "k-es", "typ": typ}), &claims)
            .unwrap();
        validate_at(&mut op, &mut keys, &token).0.unwrap();
    }
}

/// RFC 7519 §2: NumericDates may be non-integer (`"exp": 1767312000.5` is not "missing").
#[test]
fn fractional_numeric_dates_are_accepted() {
    let (r, _) = login_es256(|c| {
        c["exp"] = json!((NOW + 600) as f64 + 0.5);
        c["iat"] = json!(NOW as f64 + 0.25);
        c["auth_time"] = json!("not a date"); // unused without max_age: ignored
    });
    assert_eq!(r.unwrap().id(), "usr_alice");
    let (r, t) = login_es256(|c| c["exp"] = json!(-5));
    assert_refused(r, &t, claim_error(ClaimError::Missing("exp")));
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
}

/// OIDC Core §12.2: the refreshed ID token's `iss` must be the original's. The comparison with
/// the original comes first, so the error says what changed.
#[test]
fn refreshed_id_token_with_different_issuer_is_changed_iss() {
    let (r, t) = refresh_with(|c| c["iss"] = json!("https://op.test/i_other"));
    assert_refused(r, &t, claim_error(ClaimError::Changed("iss")));
    assert_eq!(t.sends(REFRESH), 1);
}

/// OIDC Core §12.2: `aud` must be the original's, compared as a set.
#[test]
fn refreshed_id_token_with_different_audience_is_changed_aud() {
    for aud in [
        json!(["client_web", "x"]),
        json!("x"),
        json!(["x", "client_web"]),
    ] {
        let (r, t) = refresh_with(|c| c["aud"] = aud.clone());
        assert_refused(r, &t, claim_error(ClaimError::Changed("aud")));
    }
    // The same audience as a one-element array (a set equal to the original's) is kept.
    let (r, t) = refresh_with(|c| c["aud"] = json!(["client_web", "client_web"]));
    r.unwrap();
    assert_eq!(t.persisted.len(), 1);
}

/// OIDC Core §12.2: `auth_time` is the time of the original authentication; `azp` may not
/// appear or change.
#[test]
fn refreshed_id_token_with_different_auth_time_or_azp_is_refused() {
    let (r, t) = refresh_with(|c| c["auth_time"] = json!(NOW));
    assert_refused(r, &t, claim_error(ClaimError::Changed("auth_time")));
    let (r, t) = refresh_with(|c| c["azp"] = json!("client_web"));
    assert_refused(r, &t, claim_error(ClaimError::Changed("azp")));
}

/// Issue #11 key cache 8: a stored set with a refresh token and neither an ID token nor a
/// `subject_hint` pins no subject: refused, instead of taking UserInfo's `sub` unchecked.
#[test]
fn stored_set_without_id_token_or_subject_hint_is_refused() {
    let key = es256();
    let mut tokens = stored_session(&key);
    tokens.id_token = None;
    let e = client()
        .create_agent(
            tokens.clone(),
            SessionOptions::new(),
            &cached(&[&key], NOW - 120),
            UnixTime(NOW),
        )
        .unwrap_err();
    assert_eq!(e, Error::UnpinnedSubject);
    assert_eq!(e.code(), "invalid_token_set");
    // With the subject pinned, the same set is accepted.
    tokens.subject_hint = Some("usr_alice".into());
    client()
        .create_agent(
            tokens,
            SessionOptions::new(),
            &cached(&[&key], NOW - 120),
            UnixTime(NOW),
        )
        .unwrap();
}

/// DESIGN §4: a key set bound to another provider (a misfiled cache, a multi-provider app) is
/// refused before any request; a fetch time in the future counts as never fetched.
#[test]
fn key_set_of_another_provider_is_refused_and_future_fetch_time_is_refetched() {
    let key = es256();
    let jwks_uri = format!("{OP}/jwks.json");
    let mine = cached(&[&key], NOW - 120).bind(OP, &jwks_uri);
    for foreign in [
        cached(&[&key], NOW - 120).bind("https://op.test/i_other", &jwks_uri),
        cached(&[&key], NOW - 120).bind(OP, "https://op.test/i_other/jwks.json"),
    ] {
        let mut op = Op::new(&[&key]);
        let (r, t) = login_with(
            &client(),
            &mut op,
            &foreign,
            &AuthorizationRequest::new(["openid"]),
            |n| key.sign_claims(None, &id_claims(n)).unwrap(),
        );
        let e = r.unwrap_err();
        assert_eq!(e, Error::Jwks(authpi_idp::jwks::JwksError::ForeignProvider));
        assert_eq!(e.code(), "configuration_error");
        assert!(t.sent.is_empty() && t.nothing_out());
        let mut shared = foreign.clone();
        let (r, t) = validate_at(&mut op, &mut shared, &access_token(&key, "k-es"));
        assert_eq!(r.unwrap_err(), e);
        assert!(t.sent.is_empty());
    }
    // Bound to this provider: accepted, and what the operation fetches is bound too.
    let mut op = Op::new(&[&key]);
    let (r, _) = login_with(
        &client(),
        &mut op,
        &mine,
        &AuthorizationRequest::new(["openid"]),
        |n| key.sign_claims(None, &id_claims(n)).unwrap(),
    );
    r.unwrap();
    let mut op = Op::new(&[&key]);
    let future = cached(&[&key], NOW + 1_000_000);
    let (r, t) = login_with(
        &client(),
        &mut op,
        &future,
        &AuthorizationRequest::new(["openid"]),
        |n| key.sign_claims(None, &id_claims(n)).unwrap(),
    );
    r.unwrap();
    assert_eq!(
        t.kinds()[0],
        RequestKind::Jwks,
        "future fetch time = never fetched"
    );
    let fetched = &t.keys[0];
    assert_eq!(fetched.issuer(), Some(OP));
    assert_eq!(fetched.jwks_uri(), Some(jwks_uri.as_str()));
    assert_eq!(fetched.fetched_at(), Some(UnixTime(NOW)));
}

/// The no-verdict rule for a session pinned by `subject_hint` (no ID token stored): the new ID
/// token's key cannot be fetched, its claims pass, so the rotated tokens are persisted with the
/// `subject_hint` kept, and the identity comes from UserInfo, checked against it.
#[test]
fn no_verdict_refresh_of_a_subject_hint_session_keeps_the_hint_and_hydrates() {
    let key = es256();
    let rotated = TestKey::generate(Alg::Es256, "k-new").unwrap();
    let mut op = Op::new(&[&key]);
    op.jwks_status = 503;
    op.userinfo = json!({"sub": "usr_alice", "email": "alice@example.com"});
    let mut c = id_claims("n-orig");
    c["iat"] = json!(NOW);
    op.token = json!({
        "access_token": "opaque-access-token-2", "token_type": "Bearer", "expires_in": 600,
        "refresh_token": "rt-2", "id_token": rotated.sign_claims(None, &c).unwrap(),
    });
    let mut stored = stored_session(&key);
    stored.id_token = None;
    stored.subject_hint = Some("usr_alice".into());
    let (r, t) = drive(
        client()
            .create_agent(
                stored,
                SessionOptions::new(),
                &cached(&[&key], NOW - 120),
                UnixTime(NOW),
            )
            .unwrap(),
        UnixTime(NOW),
        |q| op.handle(q),
    );
    let agent = r.unwrap();
    assert_eq!(
        t.events,
        vec![
            Event::Send(t.kinds()[0]),
            Event::Send(RequestKind::Jwks),
            Event::KeysRefreshed,
            Event::Persist,
            Event::Send(RequestKind::UserInfo),
            Event::Done
        ]
    );
    let p = &t.persisted[0];
    assert_eq!(p.refresh_token.as_deref(), Some("rt-2"));
    assert_eq!(p.id_token, None);
    assert_eq!(p.subject_hint.as_deref(), Some("usr_alice"));
    assert_eq!(agent.id(), "usr_alice");
    assert!(!agent.identity_reverified());

    // The same with a new ID token for another subject: a verdict, nothing persisted.
    let mut op = Op::new(&[&key]);
    op.jwks_status = 503;
    c["sub"] = json!("usr_bob");
    op.token = json!({
        "access_token": "opaque-access-token-2", "token_type": "Bearer", "expires_in": 600,
        "refresh_token": "rt-2", "id_token": rotated.sign_claims(None, &c).unwrap(),
    });
    let mut stored = stored_session(&key);
    stored.id_token = None;
    stored.subject_hint = Some("usr_alice".into());
    let (r, t) = drive(
        client()
            .create_agent(
                stored,
                SessionOptions::new(),
                &cached(&[&key], NOW - 120),
                UnixTime(NOW),
            )
            .unwrap(),
        UnixTime(NOW),
        |q| op.handle(q),
    );
    assert_eq!(
        r.unwrap_err(),
        Error::SubjectMismatch {
            expected: "usr_alice".into(),
            actual: "usr_bob".into()
        }
    );
    assert!(t.persisted.is_empty());
}
