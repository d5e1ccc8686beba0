//! Structure-aware: drives a code `Exchange`, then `create_agent` with refresh, answering every
//! request from an arbitrary script of responses (real testkit responses, fixed-key ID tokens
//! with chosen claims, mutated fixtures, raw bytes) in arbitrary order.
//!
//! Invariants: an error never comes with tokens (no `Persist`/`Done` after it); a `Done` agent
//! of an exchange is the subject of an ID token signed by a trusted key; a refresh that fails
//! before `Persist` produces no token set; a `Persist` carries the access token of the refresh
//! response it came from; at most one JWKS refetch per operation.
#![no_main]

use arbitrary::Arbitrary;
use authpi_idp::{KeySet, RefreshOptions, RequestKind, TokenSet};
use authpi_idp_fuzz::*;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Fixture {
    Token,
    Refresh,
    RefreshNoId,
    Userinfo,
    Jwks,
    InvalidGrant,
    Discovery,
}

impl Fixture {
    fn bytes(self) -> Vec<u8> {
        match self {
            Fixture::Token => fixtures::TOKEN.to_vec(),
            Fixture::Refresh => fixtures::REFRESH.to_vec(),
            Fixture::RefreshNoId => fixtures::REFRESH_NO_ID.to_vec(),
            Fixture::Userinfo => fixtures::USERINFO.to_vec(),
            Fixture::Jwks => jwks_document(),
            Fixture::InvalidGrant => fixtures::INVALID_GRANT.to_vec(),
            Fixture::Discovery => fixtures::DISCOVERY.to_vec(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Choice<T> {
    Right,
    Absent,
    Other(T),
}

#[derive(Arbitrary, Debug)]
struct Claims {
    sub: Choice<String>,
    iss: Choice<String>,
    aud: Choice<Vec<String>>,
    nonce: Choice<String>,
    at_hash: Choice<String>,
    exp: i16,
    iat: i16,
    nbf: Option<i16>,
    azp: Option<String>,
    typ: Option<String>,
    organizations: Option<Vec<(String, Vec<String>)>>,
}

#[derive(Arbitrary, Debug)]
enum Body {
    Fixture(Fixture),
    Mutated {
        fixture: Fixture,
        at: u16,
        byte: u8,
    },
    Raw(Vec<u8>),
    /// A token response with this access token (or a fresh one) and a fixed-key ID token.
    Signed {
        access_token: Option<String>,
        refresh_token: Option<String>,
        claims: Claims,
    },
    /// A token response without ID token.
    NoIdToken {
        access_token: String,
        refresh_token: Option<String>,
        expires_in: Option<i32>,
    },
}

#[derive(Arbitrary, Debug)]
struct Answer {
    status: Option<u16>,
    cache_control: Option<String>,
    retry_after: Option<String>,
    body: Body,
}

#[derive(Arbitrary, Debug)]
enum InitialKeys {
    Fresh,
    Stale,
    Empty,
}

#[derive(Arbitrary, Debug)]
struct Script {
    keys: InitialKeys,
    exchange: Vec<Answer>,
    /// Use the exchange's tokens for the session (else the stored fixture).
    chain: bool,
    force_refresh: bool,
    drop_id_token: bool,
    session: Vec<Answer>,
}

fn at(delta: i16, base: u64) -> u64 {
    base.saturating_add_signed(i64::from(delta))
}

fn id_token(c: &Claims, access_token: &str, nonce: &str, now: u64) -> String {
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, choice: &Choice<String>, right: &str| match choice {
        Choice::Right => {
            m.insert(k.into(), json!(right));
        }
        Choice::Absent => {}
        Choice::Other(v) => {
            m.insert(k.into(), json!(v));
        }
    };
    put("sub", &c.sub, SUBJECT);
    put("iss", &c.iss, ISSUER);
    put("nonce", &c.nonce, nonce);
    let right_hash = authpi_idp::Algorithm::EdDsa.at_hash(access_token);
    put("at_hash", &c.at_hash, &right_hash);
    match &c.aud {
        Choice::Right => {
            m.insert("aud".into(), json!(CLIENT_ID));
        }
        Choice::Absent => {}
        Choice::Other(v) => {
            m.insert("aud".into(), json!(v));
        }
    }
    m.insert("exp".into(), json!(at(c.exp, now)));
    m.insert("iat".into(), json!(at(c.iat, now)));
    if let Some(n) = c.nbf {
        m.insert("nbf".into(), json!(at(n, now)));
    }
    if let Some(azp) = &c.azp {
        m.insert("azp".into(), json!(azp));
    }
    if let Some(orgs) = &c.organizations {
        let v: Vec<Value> = orgs
            .iter()
            .map(
                |(id, scopes)| json!({"id": id, "scopes": scopes, "title": null, "joined_at": NOW}),
            )
            .collect();
        m.insert("organizations".into(), Value::Array(v));
    }
    let payload = serde_json::to_vec(&Value::Object(m)).unwrap_or_default();
    let key = FuzzKey::new();
    match &c.typ {
        None => key.sign(&payload),
        Some(t) => {
            let header = json!({"alg": "EdDSA", "kid": FUZZ_KID, "typ": t});
            key.sign_raw(header.to_string().as_bytes(), &payload)
        }
    }
}

/// Builds the response for `answer`; returns it with the access token a token endpoint would
/// have handed out in it (as serde_json reads the body).
fn build(answer: Option<&Answer>, nonce: &str, now: u64, n: usize) -> http::Response<Vec<u8>> {
    let Some(a) = answer else {
        return response(503, &[("retry-after", "1")], Vec::new());
    };
    let body = match &a.body {
        Body::Fixture(f) => f.bytes(),
        Body::Mutated { fixture, at, byte } => {
            let mut b = fixture.bytes();
            let len = b.len();
            if let Some(x) = b.get_mut(usize::from(*at) % len.max(1)) {
                *x = *byte;
            }
            b
        }
        Body::Raw(b) => b.clone(),
        Body::Signed {
            access_token,
            refresh_token,
            claims,
        } => {
            let at = access_token
                .clone()
                .unwrap_or_else(|| format!("at-{n}-{now}"));
            let mut doc = json!({
                "access_token": at, "token_type": "Bearer", "expires_in": 1800,
                "id_token": id_token(claims, &at, nonce, now),
            });
            if let Some(rt) = refresh_token {
                doc["refresh_token"] = json!(rt);
            }
            serde_json::to_vec(&doc).unwrap_or_default()
        }
        Body::NoIdToken {
            access_token,
            refresh_token,
            expires_in,
        } => {
            let mut doc = json!({"access_token": access_token, "token_type": "bearer"});
            if let Some(rt) = refresh_token {
                doc["refresh_token"] = json!(rt);
            }
            if let Some(e) = expires_in {
                doc["expires_in"] = json!(e);
            }
            serde_json::to_vec(&doc).unwrap_or_default()
        }
    };
    let mut headers = Vec::new();
    if let Some(c) = &a.cache_control {
        headers.push(("cache-control", c.as_str()));
    }
    if let Some(r) = &a.retry_after {
        headers.push(("retry-after", r.as_str()));
    }
    response(a.status.unwrap_or(200), &headers, body)
}

fuzz_target!(|script: Script| {
    let client = client();
    let tx = transaction();
    let keys = match script.keys {
        InitialKeys::Fresh => keys_at(NOW),
        InitialKeys::Stale => keys_at(NOW - 100_000),
        InitialKeys::Empty => KeySet::empty(),
    };

    // 1. The code exchange.
    let Ok(mut op) = client.exchange_callback(fixtures::CALLBACK, &tx, &keys) else {
        panic!("fixed callback refused");
    };
    let mut n = 0;
    let mut token_bodies = Vec::new();
    let out = drive(&mut op, NOW, |o| {
        let r = build(script.exchange.get(n), &tx.nonce, NOW, n);
        n += 1;
        if o.kind.is_token_request() {
            token_bodies.push(r.body().clone());
        }
        r
    });
    assert!(out.persisted.is_empty(), "a code exchange persisted");
    // The code is spent at most once; a stale or empty key set is fetched *before* it is spent,
    // and only then (a fresh set is used as is).
    assert!(out.sent.iter().filter(|k| k.is_token_request()).count() <= 1);
    match script.keys {
        InitialKeys::Fresh => assert!(out.sent.first().is_some_and(|k| k.is_token_request())),
        InitialKeys::Stale | InitialKeys::Empty => {
            assert!(matches!(out.sent.first(), Some(RequestKind::Jwks)));
        }
    }
    let trusted = out.refreshed_keys.clone().unwrap_or_else(|| keys.clone());
    let exchanged = match out.result {
        Ok(agent) => {
            check_exchange_agent(&agent, &trusted, Some(&tx.nonce));
            let sent: Vec<Option<String>> =
                token_bodies.iter().map(|b| access_token_in(b)).collect();
            assert!(sent.contains(&Some(agent.tokens().access_token.clone())));
            Some(agent.into_tokens())
        }
        Err(_) => None,
    };

    // 2. A session on those tokens (or the stored fixture), refreshing.
    let mut tokens: TokenSet = match (script.chain, exchanged) {
        (true, Some(t)) => t,
        _ => stored_tokens(),
    };
    if script.drop_id_token {
        tokens.subject_hint = tokens.id_token.take().and(Some(SUBJECT.to_owned()));
    }
    let keys = out.refreshed_keys.unwrap_or(keys);
    let options = RefreshOptions::new();
    let session = if script.force_refresh {
        client.refresh(tokens.clone(), options, &keys)
    } else {
        client.create_agent(tokens.clone(), options, &keys)
    };
    let Ok(mut op) = session else { return };
    let mut n = 0;
    let mut refresh_access: Vec<Option<String>> = Vec::new();
    let out = drive(&mut op, LATER, |o| {
        let r = build(script.session.get(n), &tx.nonce, LATER, n + 100);
        n += 1;
        if let RequestKind::Refresh { .. } = o.kind {
            assert!(
                refresh_access.is_empty(),
                "two refresh requests in one session"
            );
            refresh_access.push(access_token_in(r.body()));
        }
        r
    });
    assert!(out.persisted.len() <= 1, "persisted twice");
    assert_eq!(op.refreshed(), !out.persisted.is_empty());
    if let Some(p) = out.persisted.first() {
        // The access token came from the refresh response.
        assert_eq!(refresh_access.first(), Some(&Some(p.access_token.clone())));
        assert!(p.refresh_token.is_some() || tokens.refresh_token.is_none());
        assert!(p.id_token.is_some() || p.subject_hint.is_some());
    }
    match out.result {
        Ok(agent) => {
            let expected = out.persisted.first().unwrap_or(&tokens);
            assert_eq!(agent.tokens(), expected);
            if tokens.refresh_token.is_some() || tokens.id_token.is_some() {
                assert_eq!(agent.id(), SUBJECT, "the session changed subject");
            }
        }
        Err(e) => {
            if refresh_access.is_empty() || out.persisted.is_empty() {
                assert!(out.persisted.is_empty());
            }
            let _ = (e.code(), e.is_session_over(), e.retry_after());
        }
    }
});
