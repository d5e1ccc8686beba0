//! Regression tests for hostile input, and the fixtures the fuzz targets replay.
//!
//! - `capture_fuzz_fixtures` (ignored) drives the testkit issuer through a real login, refresh
//!   and UserInfo call at a fixed clock and writes the responses to `fuzz/fixtures/`. The fuzz
//!   targets embed those files, so every fuzz run sees the same bytes (the testkit's EC and
//!   Ed25519 keys are random per build). Re-run it with
//!   `CAPTURE_FUZZ_FIXTURES=1 cargo test --test regressions -- --ignored capture` only when the
//!   token formats change.
//! - `fixtures_replay_*` keep those committed fixtures honest: replayed through the public API
//!   at the fixed clock they still log `usr_alice` in and refresh her session.
//! - The limit tests check that oversized, deeply nested and member-heavy documents are refused
//!   with the exact error of the limit they hit (or parsed) without blowing up (timings belong
//!   to benchmarks, not tests).
//! - Crashes found by fuzzing get a test here, named after the target and what broke.

use authpi_idp::error::{Endpoint, ResponseError};
use authpi_idp::json::{JsonError, MAX_DEPTH, MAX_DOCUMENT};
use authpi_idp::{
    AuthorizationRequest, AuthorizationUrl, Client, Config, Error, KeySet, Operation,
    SessionOptions, Step, TokenSet, UnixTime,
};
use std::path::PathBuf;

/// The fixed clock of the fixtures (and of the fuzz targets).
const NOW: u64 = 1_767_312_000;
/// When the session fixtures refresh: inside the 60 s refresh buffer of a 30 min token.
const LATER: u64 = NOW + 1_790;
const ISSUER: &str = "https://idp.test/i_fuzz";
const REDIRECT: &str = "https://app.example.com/callback";

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/fixtures")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap()
}

fn client() -> Client {
    let config = Config::builder(ISSUER, "client_web")
        .client_secret("secret_web")
        .redirect_uri(REDIRECT)
        .build()
        .unwrap();
    Client::new(config).unwrap()
}

fn response(status: u16, body: Vec<u8>) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}

fn fixed_keys() -> KeySet {
    KeySet::from_json(&fixture("jwks.json"), UnixTime(NOW), 86_400).unwrap()
}

/// Drives `op`, answering every request with `answer(kind-independent request)`.
fn drive<O: Operation>(
    op: &mut O,
    now: u64,
    mut answer: impl FnMut(http::Request<Vec<u8>>) -> http::Response<Vec<u8>>,
) -> (Result<O::Output, Error>, Vec<TokenSet>) {
    let mut persisted = Vec::new();
    loop {
        match op.poll(UnixTime(now)) {
            Ok(Step::Send(out)) => op.handle_response(answer(out.request)),
            Ok(Step::Persist(t)) => persisted.push(t),
            Ok(Step::Done(v)) => return (Ok(v), persisted),
            Ok(_) => {}
            Err(e) => return (Err(e), persisted),
        }
    }
}

#[test]
#[ignore = "writes fuzz/fixtures; run by hand when token formats change"]
fn capture_fuzz_fixtures() {
    use authpi_idp_testkit::Issuer;
    use rand_chacha::rand_core::SeedableRng;
    if std::env::var_os("CAPTURE_FUZZ_FIXTURES").is_none() {
        return;
    }
    let dir = fixtures_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();
    let mut issuer = Issuer::authpi_demo(ISSUER).build().unwrap();
    let get = |path: &str| {
        http::Request::get(format!("{ISSUER}{path}"))
            .body(Vec::new())
            .unwrap()
    };
    let jwks = issuer.handle(get("/jwks.json"), NOW);
    write("jwks.json", jwks.body());
    let discovery = issuer.handle(get("/.well-known/openid-configuration"), NOW);
    write("discovery.json", discovery.body());

    let client = client();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let request = AuthorizationRequest::new(["openid", "email", "profile"]);
    let tx = client.authorization_url(&request, &mut rng).unwrap();
    write(
        "transaction.json",
        serde_json::to_string(&tx).unwrap().as_bytes(),
    );
    let redirect = issuer.handle(
        http::Request::get(tx.url.as_str())
            .body(Vec::new())
            .unwrap(),
        NOW,
    );
    let callback = redirect.headers()["location"].to_str().unwrap().to_owned();
    write("callback.txt", callback.as_bytes());

    let keys = KeySet::empty();
    let mut op = client
        .exchange_callback(callback.as_str(), &tx, &keys)
        .unwrap();
    let mut token_body = None;
    let (agent, _) = drive(&mut op, NOW, |req| {
        let resp = issuer.handle(req, NOW);
        if token_body.is_none() {
            token_body = Some(resp.body().clone());
        }
        resp
    });
    let agent = agent.unwrap();
    write("token.json", &token_body.unwrap());
    let stored = agent.into_tokens();
    write("tokens.json", stored.to_json().as_bytes());

    // Refresh with a new ID token, then (with the rotated token) a narrowed refresh without one.
    let mut refresh_body = None;
    let mut op = client
        .create_agent(
            stored.clone(),
            SessionOptions::new(),
            &fixed_keys(),
            UnixTime(LATER),
        )
        .unwrap();
    let (agent, persisted) = drive(&mut op, LATER, |req| {
        let resp = issuer.handle(req, LATER);
        refresh_body.get_or_insert_with(|| resp.body().clone());
        resp
    });
    agent.unwrap();
    write("refresh.json", &refresh_body.unwrap());
    let rotated = persisted.into_iter().next().unwrap();

    let mut bodies = Vec::new();
    let mut op = client
        .refresh(
            rotated,
            SessionOptions::new().scope("email"),
            &fixed_keys(),
            UnixTime(LATER),
        )
        .unwrap();
    let (agent, _) = drive(&mut op, LATER, |req| {
        let resp = issuer.handle(req, LATER);
        bodies.push(resp.body().clone());
        resp
    });
    agent.unwrap();
    write("refresh_no_id.json", &bodies[0]);
    write("userinfo.json", &bodies[1]);

    // The replayed (spent) refresh token: invalid_grant.
    let mut op = client
        .refresh(
            stored,
            SessionOptions::new(),
            &fixed_keys(),
            UnixTime(LATER),
        )
        .unwrap();
    let mut error_body = None;
    let (agent, _) = drive(&mut op, LATER, |req| {
        let resp = issuer.handle(req, LATER);
        error_body.get_or_insert_with(|| resp.body().clone());
        resp
    });
    assert_eq!(agent.unwrap_err().code(), "invalid_grant");
    write("invalid_grant.json", &error_body.unwrap());
}

#[test]
fn fixtures_replay_exchange_to_alice() {
    let client = client();
    let tx: AuthorizationUrl = serde_json::from_slice(&fixture("transaction.json")).unwrap();
    let callback = String::from_utf8(fixture("callback.txt")).unwrap();
    let mut op = client
        .exchange_callback(callback.as_str(), &tx, &fixed_keys())
        .unwrap();
    let (agent, persisted) = drive(&mut op, NOW, |_| response(200, fixture("token.json")));
    let agent = agent.unwrap();
    assert!(persisted.is_empty());
    assert_eq!(agent.id(), "usr_alice");
    assert!(agent.has_access_in("org_acme", "delete", "projects.tasks"));
    assert_eq!(
        agent.tokens(),
        &TokenSet::from_json(&fixture("tokens.json")).unwrap()
    );
}

#[test]
fn fixtures_replay_refresh_and_hydration() {
    let client = client();
    let tokens = TokenSet::from_json(&fixture("tokens.json")).unwrap();
    // With an ID token: Persist, then Done without another request.
    let mut op = client
        .create_agent(
            tokens.clone(),
            SessionOptions::new(),
            &fixed_keys(),
            UnixTime(LATER),
        )
        .unwrap();
    let (agent, persisted) = drive(&mut op, LATER, |_| response(200, fixture("refresh.json")));
    assert_eq!(agent.unwrap().id(), "usr_alice");
    assert_eq!(persisted.len(), 1);
    assert_ne!(persisted[0].access_token, tokens.access_token);

    // Without one: Persist (subject hint kept), then UserInfo.
    let mut answers = vec![
        response(200, fixture("userinfo.json")),
        response(200, fixture("refresh_no_id.json")),
    ];
    let mut op = client
        .refresh(
            tokens.clone(),
            SessionOptions::new(),
            &fixed_keys(),
            UnixTime(LATER),
        )
        .unwrap();
    let (agent, persisted) = drive(&mut op, LATER, |_| answers.pop().unwrap());
    let agent = agent.unwrap();
    assert_eq!(agent.id(), "usr_alice");
    assert_eq!(persisted.len(), 1);
    assert_eq!(persisted[0].subject_hint.as_deref(), Some("usr_alice"));
    assert_eq!(persisted[0].id_token, None);

    // The provider's invalid_grant: no token set comes out, and the error is terminal.
    let mut op = client
        .refresh(
            tokens,
            SessionOptions::new(),
            &fixed_keys(),
            UnixTime(LATER),
        )
        .unwrap();
    let (agent, persisted) = drive(&mut op, LATER, |_| {
        response(400, fixture("invalid_grant.json"))
    });
    let err = agent.unwrap_err();
    assert_eq!(err.code(), "invalid_grant");
    assert!(err.is_session_over());
    assert!(persisted.is_empty());
    assert!(!op.refreshed());
}

// ---------------------------------------------------------------------------------------------
// Limits: nothing blows up on big or deep input.

fn exchange_with_body(body: Vec<u8>) -> (Result<authpi_idp::Agent, Error>, Vec<TokenSet>) {
    let client = client();
    let tx: AuthorizationUrl = serde_json::from_slice(&fixture("transaction.json")).unwrap();
    let callback = String::from_utf8(fixture("callback.txt")).unwrap();
    let mut op = client
        .exchange_callback(callback.as_str(), &tx, &fixed_keys())
        .unwrap();
    let mut body = Some(body);
    drive(&mut op, NOW, move |_| {
        response(200, body.take().unwrap_or_default())
    })
}

/// The real token response with its member `field` padded (appended to) so the document is
/// `size` bytes.
fn padded_token_response(size: usize, field: &str) -> Vec<u8> {
    let real: serde_json::Value = serde_json::from_slice(&fixture("token.json")).unwrap();
    let original = real[field].as_str().unwrap_or_default().to_owned();
    let base = serde_json::to_vec(&real).unwrap().len();
    let mut doc = real.clone();
    doc[field] = serde_json::Value::String(original.clone() + &"x".repeat(size - base));
    let out = serde_json::to_vec(&doc).unwrap();
    assert_eq!(out.len(), size);
    out
}

/// The error of a token response refused for its JSON.
fn token_json_error(reason: JsonError) -> Error {
    Error::Response {
        endpoint: Endpoint::Token,
        reason: ResponseError::Json(reason),
    }
}

#[test]
fn limits_one_mib_token_response_is_parsed() {
    // Exactly MAX_DOCUMENT bytes: parsed, and the real ID token inside still verifies. (The
    // padding is in `scope`: padding `access_token` would break the ID token's `at_hash`.)
    let body = padded_token_response(MAX_DOCUMENT, "scope");
    let (agent, persisted) = exchange_with_body(body);
    let agent = agent.unwrap();
    assert_eq!(agent.id(), "usr_alice");
    let scope_len = agent.tokens().scope.as_ref().map_or(0, String::len);
    assert!(scope_len > 1_040_000, "{scope_len}");
    assert!(persisted.is_empty());
}

#[test]
fn limits_token_response_over_one_mib_is_refused() {
    for field in ["scope", "access_token"] {
        let body = padded_token_response(MAX_DOCUMENT + 1, field);
        let (agent, persisted) = exchange_with_body(body);
        assert_eq!(
            agent.unwrap_err(),
            token_json_error(JsonError::TooLarge),
            "{field}"
        );
        assert!(persisted.is_empty());
    }
}

#[test]
fn limits_deeply_nested_documents_are_refused_without_overflow() {
    // From just past the limit to far beyond it: the depth error, not a stack overflow. The
    // outer object is one level, so `depth` inner levels make `depth + 1`.
    for depth in [MAX_DEPTH, 1_000, 100_000] {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let mut doc = String::from("{\"access_token\":");
            doc.push_str(&open.repeat(depth));
            doc.push('1');
            doc.push_str(&close.repeat(depth));
            doc.push('}');
            assert_eq!(
                authpi_idp::json::parse_object(doc.as_bytes()),
                Err(JsonError::TooDeep),
                "{depth}"
            );
            let (agent, persisted) = exchange_with_body(doc.into_bytes());
            assert_eq!(agent.unwrap_err(), token_json_error(JsonError::TooDeep));
            assert!(persisted.is_empty());
        }
    }
    // Nesting up to the limit is still parsed.
    let doc = format!(
        "{{\"a\":{}1{}}}",
        "[".repeat(MAX_DEPTH - 1),
        "]".repeat(MAX_DEPTH - 1)
    );
    assert!(authpi_idp::json::parse_object(doc.as_bytes()).is_ok());
}

#[test]
fn limits_many_members_are_parsed_and_duplicates_found_anywhere() {
    // ~50 000 distinct members in one object: parsed (duplicate detection must not be
    // quadratic for this to finish in a test), and one duplicate at the very end is found.
    let n = 50_000;
    let mut doc = String::from("{");
    for i in 0..n {
        doc.push_str(&format!("\"m{i}\":{i},"));
    }
    doc.push_str("\"access_token\":\"a\"}");
    let map = authpi_idp::json::parse_object(doc.as_bytes()).unwrap();
    assert_eq!(map.len(), n + 1);
    let dup = doc.replace("\"access_token\":\"a\"}", "\"m7\":1}");
    assert_eq!(
        authpi_idp::json::parse_object(dup.as_bytes()),
        Err(authpi_idp::json::JsonError::DuplicateMember("m7".into()))
    );
    // Many members in a token response: refused for what it lacks, not for its size.
    let (agent, persisted) = exchange_with_body(doc.into_bytes());
    assert_eq!(
        agent.unwrap_err(),
        token_json_error(JsonError::Missing("token_type"))
    );
    assert!(persisted.is_empty());
}

#[test]
fn limits_many_scopes_and_organizations_do_not_blow_up() {
    use authpi_idp::scope::ScopeSet;
    let scopes: Vec<String> = (0..50_000).map(|i| format!("r{i}.x:act{i}")).collect();
    let set = ScopeSet::new(scopes.iter().cloned());
    assert!(set.allows("act49999", "r49999.x"));
    assert!(!set.allows("act1", "r2.x"));
    let orgs = serde_json::Value::Array(
        (0..20_000)
            .map(|i| serde_json::json!({"id": format!("org_{i}"), "scopes": ["a:**"]}))
            .collect(),
    );
    let parsed = authpi_idp::org::parse_organizations(&orgs);
    let m = authpi_idp::org::Memberships::new(parsed);
    assert!(m.has_access_in("org_19999", "read", "a.b.c"));
    assert!(!m.has_access_in("org_20000", "read", "a"));
}
