//! Shared fixtures and invariant checks for the fuzz targets.
//!
//! Everything here is deterministic: a fixed clock ([`NOW`], [`LATER`]), the testkit responses
//! captured once into `fuzz/fixtures/` (see `tests/regressions.rs`), and one fixed Ed25519 key
//! ([`FuzzKey`], from a constant seed) that signs the ID tokens the targets craft. Ed25519
//! signatures are deterministic, so the same input always takes the same path.
//!
//! The fuzz targets use the core's public API only.

use authpi_idp::{
    Agent, AlgorithmSet, AuthorizationUrl, Client, Config, Error, KeySet, Operation, Step,
    TokenSet, UnixTime,
    error::ApiMisuse,
    internal::jose::{Jws, verify_jws},
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde_json::Value;

/// The fixed clock of the code exchange (the fixtures were captured at this time).
pub const NOW: u64 = 1_767_312_000;
/// The fixed clock of sessions: inside the refresh buffer of the fixture's access token.
pub const LATER: u64 = NOW + 1_790;
/// The issuer of the fixtures.
pub const ISSUER: &str = "https://idp.test/i_fuzz";
/// The client of the fixtures.
pub const CLIENT_ID: &str = "client_web";
/// The fixture subject.
pub const SUBJECT: &str = "usr_alice";
/// `kid` of the fixed fuzz key.
pub const FUZZ_KID: &str = "fuzz-ed25519";

/// Captured testkit responses (bodies).
pub mod fixtures {
    /// JWKS of the testkit issuer (six keys).
    pub const JWKS: &[u8] = include_bytes!("../fixtures/jwks.json");
    /// Discovery document.
    pub const DISCOVERY: &[u8] = include_bytes!("../fixtures/discovery.json");
    /// The authorization transaction (serde form of `AuthorizationUrl`).
    pub const TRANSACTION: &[u8] = include_bytes!("../fixtures/transaction.json");
    /// The callback URL the issuer redirected to.
    pub const CALLBACK: &str = include_str!("../fixtures/callback.txt");
    /// The code-exchange token response.
    pub const TOKEN: &[u8] = include_bytes!("../fixtures/token.json");
    /// The token set stored after the exchange.
    pub const TOKENS: &[u8] = include_bytes!("../fixtures/tokens.json");
    /// A refresh response with a new ID token.
    pub const REFRESH: &[u8] = include_bytes!("../fixtures/refresh.json");
    /// A refresh response without an ID token.
    pub const REFRESH_NO_ID: &[u8] = include_bytes!("../fixtures/refresh_no_id.json");
    /// A UserInfo response for `usr_alice`.
    pub const USERINFO: &[u8] = include_bytes!("../fixtures/userinfo.json");
    /// The `invalid_grant` error body (400).
    pub const INVALID_GRANT: &[u8] = include_bytes!("../fixtures/invalid_grant.json");
}

/// The fixed signing key of the fuzz targets (Ed25519 from a constant seed).
pub struct FuzzKey(Ed25519KeyPair);

impl FuzzKey {
    /// The key.
    pub fn new() -> FuzzKey {
        let pair = Ed25519KeyPair::from_seed_unchecked(&[0x5a; 32]);
        FuzzKey(pair.unwrap_or_else(|_| unreachable_key()))
    }

    /// Its public JWK.
    pub fn jwk(&self) -> Value {
        serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": FUZZ_KID,
            "x": URL_SAFE_NO_PAD.encode(self.0.public_key().as_ref()),
        })
    }

    /// Signs the exact header and payload bytes.
    pub fn sign_raw(&self, header: &[u8], payload: &[u8]) -> String {
        let mut input = URL_SAFE_NO_PAD.encode(header);
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let sig = self.0.sign(input.as_bytes());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(sig.as_ref()));
        input
    }

    /// Signs `payload` under the standard header `{"alg":"EdDSA","kid":FUZZ_KID}`.
    pub fn sign(&self, payload: &[u8]) -> String {
        let header = format!(r#"{{"alg":"EdDSA","kid":"{FUZZ_KID}"}}"#);
        self.sign_raw(header.as_bytes(), payload)
    }
}

impl Default for FuzzKey {
    fn default() -> Self {
        Self::new()
    }
}

fn unreachable_key() -> Ed25519KeyPair {
    // A 32-byte seed always makes a key; keep the harness free of `unwrap` anyway.
    std::process::abort()
}

/// The JWKS document the targets trust: the testkit's six keys plus the fuzz key.
pub fn jwks_document() -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(fixtures::JWKS).unwrap_or(Value::Null);
    if let Some(keys) = doc.get_mut("keys").and_then(Value::as_array_mut) {
        keys.push(FuzzKey::new().jwk());
    }
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// The trusted key set, fetched at `fetched_at`.
pub fn keys_at(fetched_at: u64) -> KeySet {
    KeySet::from_json(&jwks_document(), UnixTime(fetched_at), 86_400).unwrap_or_else(|_| {
        std::process::abort();
    })
}

/// The fixed client (`client_web`, AuthPI layout, no discovery).
pub fn client() -> Client {
    let config = Config::builder(ISSUER, CLIENT_ID)
        .client_secret("secret_web")
        .redirect_uri("https://app.example.com/callback")
        .build();
    match config.map(Client::new) {
        Ok(Ok(c)) => c,
        _ => std::process::abort(),
    }
}

/// The fixed authorization transaction.
pub fn transaction() -> AuthorizationUrl {
    serde_json::from_slice(fixtures::TRANSACTION).unwrap_or_else(|_| std::process::abort())
}

/// The stored token set of the fixtures.
pub fn stored_tokens() -> TokenSet {
    TokenSet::from_json(fixtures::TOKENS).unwrap_or_else(|_| std::process::abort())
}

/// A response with `status` (invalid codes become 500), extra headers and `body`.
pub fn response(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> http::Response<Vec<u8>> {
    let status =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = http::Response::new(body);
    *resp.status_mut() = status;
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            resp.headers_mut().append(k, v);
        }
    }
    resp
}

/// Splits `data` at the first NUL: `(head, rest)`; no NUL ⇒ `(data, [])`.
pub fn split_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(i) => (
            data.get(..i).unwrap_or_default(),
            data.get(i + 1..).unwrap_or_default(),
        ),
        None => (data, &[]),
    }
}

/// Header lines `name: value` from a text block.
pub fn header_lines(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

/// What one drive of an operation produced, with the invariants of the step protocol checked.
pub struct Outcome<T> {
    /// The final result.
    pub result: Result<T, Error>,
    /// Every `Persist`, in order.
    pub persisted: Vec<TokenSet>,
    /// The last `KeysRefreshed`.
    pub refreshed_keys: Option<KeySet>,
    /// The kinds of requests sent, in order.
    pub sent: Vec<authpi_idp::RequestKind>,
}

/// Drives `op` at `now`, answering each request with `answer`. Asserts the step protocol:
/// bounded steps, and nothing but an error once the operation is over.
pub fn drive<O: Operation>(
    op: &mut O,
    now: u64,
    mut answer: impl FnMut(&authpi_idp::Outgoing) -> http::Response<Vec<u8>>,
) -> Outcome<O::Output> {
    // Replaced by the operation's own end; `finished` says whether it came.
    let mut finished = false;
    let mut out = Outcome {
        result: Err(Error::ApiMisuse(ApiMisuse::OperationFinished)),
        persisted: Vec::new(),
        refreshed_keys: None,
        sent: Vec::new(),
    };
    for _ in 0..32 {
        match op.poll(UnixTime(now)) {
            Ok(Step::Send(o)) => {
                out.sent.push(o.kind);
                let r = answer(&o);
                op.handle_response(r);
            }
            Ok(Step::Persist(t)) => out.persisted.push(t),
            Ok(Step::KeysRefreshed(k)) => {
                assert!(
                    out.refreshed_keys.is_none(),
                    "two JWKS refetches in one operation"
                );
                out.refreshed_keys = Some(k);
            }
            Ok(Step::Done(v)) => {
                out.result = Ok(v);
                finished = true;
                break;
            }
            Err(e) => {
                out.result = Err(e);
                finished = true;
                break;
            }
        }
    }
    assert!(finished, "operation did not finish in 32 steps");
    // Over is over: no token, no step after Done or an error.
    match op.poll(UnixTime(now)) {
        Err(Error::ApiMisuse(ApiMisuse::OperationFinished)) => {}
        other => panic!(
            "poll after the end answered {:?}",
            other.map(|s| format!("{s:?}"))
        ),
    }
    let jwks_requests = out
        .sent
        .iter()
        .filter(|k| matches!(k, authpi_idp::RequestKind::Jwks))
        .count();
    assert!(
        jwks_requests <= 1,
        "{jwks_requests} JWKS requests in one operation"
    );
    out
}

/// The payload of a compact JWS as JSON (no verification).
pub fn claims_of(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// The `access_token` member of a JSON body, as serde_json (not the core) reads it.
pub fn access_token_in(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("access_token")?.as_str().map(str::to_owned)
}

/// Invariants of an agent that came out of a code exchange: its ID token is signed by a
/// trusted key (`keys`: the fixed set, or the one the operation refetched), names this issuer
/// and client, carries the transaction's nonce (when one was sent), and the agent is its
/// subject.
pub fn check_exchange_agent(agent: &Agent, keys: &KeySet, nonce: Option<&str>) {
    let tokens = agent.tokens();
    let Some(id_token) = tokens.id_token.as_deref() else {
        panic!("an exchange produced an agent without an ID token");
    };
    let jws = match Jws::parse(id_token) {
        Ok(j) => j,
        Err(e) => panic!("accepted ID token does not parse: {e}"),
    };
    if let Err(e) = verify_jws(keys, &jws, AlgorithmSet::ALL) {
        panic!("accepted ID token does not verify under the trusted keys: {e}");
    }
    let claims = claims_of(id_token).unwrap_or(Value::Null);
    assert_eq!(claims.get("sub").and_then(Value::as_str), Some(agent.id()));
    assert_eq!(claims.get("iss").and_then(Value::as_str), Some(ISSUER));
    let aud_ok = match claims.get("aud") {
        Some(Value::String(s)) => s == CLIENT_ID,
        Some(Value::Array(a)) => a.iter().all(|x| x.as_str() == Some(CLIENT_ID)) && !a.is_empty(),
        _ => false,
    };
    assert!(aud_ok, "accepted ID token has another audience");
    if let Some(nonce) = nonce {
        assert_eq!(claims.get("nonce").and_then(Value::as_str), Some(nonce));
    }
    let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
    assert!(exp.saturating_add(60) > NOW, "accepted an expired ID token");
    assert_eq!(tokens.token_type, "Bearer");
}

/// A `Debug` string must not contain `secret` unless `secret` also occurs in `public` text
/// (a scope or a subject can equal a token by accident).
pub fn assert_not_leaked(debug: &str, secret: &str, public: &[&str]) {
    if secret.len() < 12 || public.iter().any(|p| p.contains(secret)) {
        return;
    }
    assert!(!debug.contains(secret), "a secret leaked into Debug output");
}
