#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use crate::jose::test_keys::{RSA1024_JWK, TestKey, b64};
use crate::jose::{AlgorithmSet, Jws};
use serde_json::json;

const T0: UnixTime = UnixTime(1_767_312_000);

fn parse(doc: &Value) -> KeySet {
    KeySet::from_json(doc.to_string().as_bytes(), T0, 3600).unwrap()
}

fn es256_jwk() -> Value {
    TestKey::generate(Algorithm::Es256, Some("k1")).jwk()
}

/// Each modification of a valid ES256/Ed25519/RSA JWK, and whether the key stays usable.
#[test]
fn per_key_rules() {
    let ec = TestKey::generate(Algorithm::Es256, Some("ec")).jwk();
    let ed = TestKey::generate(Algorithm::EdDsa, Some("ed")).jwk();
    let rsa = TestKey::generate(Algorithm::Rs256, Some("rsa")).jwk();
    type Edit = fn(&mut Map<String, Value>);
    let cases: &[(&str, &Value, Edit, bool)] = &[
        ("ec as is", &ec, |_| {}, true),
        ("ed as is", &ed, |_| {}, true),
        ("rsa as is", &rsa, |_| {}, true),
        (
            "no use",
            &ec,
            |m| {
                m.remove("use");
            },
            true,
        ),
        (
            "no alg",
            &ec,
            |m| {
                m.remove("alg");
            },
            true,
        ),
        (
            "no kid",
            &ec,
            |m| {
                m.remove("kid");
            },
            true,
        ),
        (
            "key_ops verify",
            &ec,
            |m| {
                m.insert("key_ops".into(), json!(["verify"]));
            },
            true,
        ),
        (
            "key_ops sign+verify",
            &ec,
            |m| {
                m.insert("key_ops".into(), json!(["sign", "verify"]));
            },
            true,
        ),
        (
            "ed alg Ed25519",
            &ed,
            |m| {
                m.insert("alg".into(), json!("Ed25519"));
            },
            true,
        ),
        (
            "unknown member",
            &ec,
            |m| {
                m.insert("x5t".into(), json!("abc"));
            },
            true,
        ),
        (
            "use enc",
            &ec,
            |m| {
                m.insert("use".into(), json!("enc"));
            },
            false,
        ),
        (
            "use SIG",
            &ec,
            |m| {
                m.insert("use".into(), json!("SIG"));
            },
            false,
        ),
        (
            "use null",
            &ec,
            |m| {
                m.insert("use".into(), Value::Null);
            },
            false,
        ),
        (
            "key_ops sign",
            &ec,
            |m| {
                m.insert("key_ops".into(), json!(["sign"]));
            },
            false,
        ),
        (
            "key_ops empty",
            &ec,
            |m| {
                m.insert("key_ops".into(), json!([]));
            },
            false,
        ),
        (
            "key_ops string",
            &ec,
            |m| {
                m.insert("key_ops".into(), json!("verify"));
            },
            false,
        ),
        (
            "key_ops non-string",
            &ec,
            |m| {
                m.insert("key_ops".into(), json!(["verify", 1]));
            },
            false,
        ),
        (
            "kid number",
            &ec,
            |m| {
                m.insert("kid".into(), json!(1));
            },
            false,
        ),
        (
            "alg unknown",
            &ec,
            |m| {
                m.insert("alg".into(), json!("ES384"));
            },
            false,
        ),
        (
            "alg none",
            &ec,
            |m| {
                m.insert("alg".into(), json!("none"));
            },
            false,
        ),
        (
            "alg HS256",
            &ec,
            |m| {
                m.insert("alg".into(), json!("HS256"));
            },
            false,
        ),
        (
            "alg of other kty",
            &ec,
            |m| {
                m.insert("alg".into(), json!("RS256"));
            },
            false,
        ),
        (
            "alg number",
            &ec,
            |m| {
                m.insert("alg".into(), json!(7));
            },
            false,
        ),
        (
            "kty unknown",
            &ec,
            |m| {
                m.insert("kty".into(), json!("oct"));
            },
            false,
        ),
        (
            "kty lowercase",
            &ec,
            |m| {
                m.insert("kty".into(), json!("ec"));
            },
            false,
        ),
        (
            "kty missing",
            &ec,
            |m| {
                m.remove("kty");
            },
            false,
        ),
        (
            "crv P-384",
            &ec,
            |m| {
                m.insert("crv".into(), json!("P-384"));
            },
            false,
        ),
        (
            "crv missing",
            &ec,
            |m| {
                m.remove("crv");
            },
            false,
        ),
        (
            "crv X25519",
            &ed,
            |m| {
                m.insert("crv".into(), json!("X25519"));
            },
            false,
        ),
        (
            "crv Ed448",
            &ed,
            |m| {
                m.insert("crv".into(), json!("Ed448"));
            },
            false,
        ),
        (
            "x missing",
            &ec,
            |m| {
                m.remove("x");
            },
            false,
        ),
        (
            "y missing",
            &ec,
            |m| {
                m.remove("y");
            },
            false,
        ),
        (
            "x 31 bytes",
            &ec,
            |m| {
                m.insert("x".into(), json!(b64(&[1; 31])));
            },
            false,
        ),
        (
            "y 33 bytes",
            &ec,
            |m| {
                m.insert("y".into(), json!(b64(&[1; 33])));
            },
            false,
        ),
        (
            "x not base64url",
            &ec,
            |m| {
                m.insert("x".into(), json!("!!!"));
            },
            false,
        ),
        (
            "x padded",
            &ed,
            |m| {
                let x = m["x"].as_str().unwrap().to_owned();
                m.insert("x".into(), json!(format!("{x}=")));
            },
            false,
        ),
        (
            "x number",
            &ed,
            |m| {
                m.insert("x".into(), json!(5));
            },
            false,
        ),
        (
            "ed x 31 bytes",
            &ed,
            |m| {
                m.insert("x".into(), json!(b64(&[1; 31])));
            },
            false,
        ),
        (
            "d present (EC)",
            &ec,
            |m| {
                m.insert("d".into(), json!(b64(&[1; 32])));
            },
            false,
        ),
        (
            "d present (OKP)",
            &ed,
            |m| {
                m.insert("d".into(), json!(b64(&[1; 32])));
            },
            false,
        ),
        (
            "d present (RSA)",
            &rsa,
            |m| {
                m.insert("d".into(), json!(b64(&[1; 256])));
            },
            false,
        ),
        (
            "p present (RSA)",
            &rsa,
            |m| {
                m.insert("p".into(), json!(b64(&[1; 128])));
            },
            false,
        ),
        (
            "n missing",
            &rsa,
            |m| {
                m.remove("n");
            },
            false,
        ),
        (
            "e missing",
            &rsa,
            |m| {
                m.remove("e");
            },
            false,
        ),
        (
            "e = 1",
            &rsa,
            |m| {
                m.insert("e".into(), json!(b64(&[1])));
            },
            false,
        ),
        (
            "n 2040 bits",
            &rsa,
            |m| {
                m.insert("n".into(), json!(b64(&[0xff; 255])));
            },
            false,
        ),
    ];
    for (what, base, edit, usable) in cases {
        let mut jwk = (*base).clone();
        edit(jwk.as_object_mut().unwrap());
        let keys = parse(&json!({"keys": [jwk]}));
        assert_eq!(keys.len(), usize::from(*usable), "{what}");
    }
}

#[test]
fn unusable_keys_do_not_hide_usable_ones() {
    let good = TestKey::generate(Algorithm::EdDsa, Some("good"));
    let rsa1024: Value = serde_json::from_str(RSA1024_JWK).unwrap();
    let doc = json!({"keys": [
        "not an object",
        42,
        null,
        {"kty": "oct", "k": "c2VjcmV0"},
        rsa1024,
        good.jwk(),
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
    ]});
    let keys = parse(&doc);
    assert_eq!(keys.len(), 1);
    assert_eq!(keys.iter().next().unwrap().kid(), Some("good"));
    let token = good.token("{}");
    Jws::parse(&token)
        .unwrap()
        .verify(&keys, AlgorithmSet::ALL)
        .unwrap();
}

/// DESIGN §5: Ed25519 keys of small order or with a non-canonical encoding are skipped when the
/// JWKS is read (a small-order key makes one fixed signature valid for every message).
#[test]
fn ed25519_small_order_and_non_canonical_keys_are_skipped() {
    let good = TestKey::generate(Algorithm::EdDsa, Some("good")).jwk();
    let mut bad_keys = Vec::new();
    // The identity point, y = 0 (order 4), an order-8 point, and y = p (non-canonical).
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let order8: Vec<u8> = (0..32)
        .map(|i| {
            u8::from_str_radix(
                &"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"
                    [2 * i..2 * i + 2],
                16,
            )
            .unwrap()
        })
        .collect();
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    for (kid, x) in [
        ("identity", identity.to_vec()),
        ("zero", vec![0; 32]),
        ("order8", order8),
        ("p", p.to_vec()),
    ] {
        bad_keys.push(json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(&x)}));
    }
    let mut doc = bad_keys.clone();
    doc.push(good);
    let keys = parse(&json!({ "keys": doc }));
    assert_eq!(keys.len(), 1);
    assert_eq!(keys.iter().next().unwrap().kid(), Some("good"));
}

#[test]
fn rsa_1024_is_skipped_and_2048_kept() {
    let rsa1024: Value = serde_json::from_str(RSA1024_JWK).unwrap();
    assert_eq!(parse(&json!({"keys": [rsa1024]})).len(), 0);
    for n in 0..2 {
        let k = TestKey::generate_nth(Algorithm::Ps256, Some("r"), n);
        assert_eq!(parse(&json!({"keys": [k.jwk()]})).len(), 1);
    }
}

#[test]
fn document_level_errors() {
    let cases: &[(&[u8], JwksError)] = &[
        (b"[]", JwksError::Json(JsonError::NotAnObject)),
        (b"{}", JwksError::MissingKeys),
        (br#"{"keys":null}"#, JwksError::MissingKeys),
        (br#"{"keys":{}}"#, JwksError::MissingKeys),
        (br#"{"keys":"x"}"#, JwksError::MissingKeys),
        (
            br#"{"keys":[],"keys":[]}"#,
            JwksError::Json(JsonError::DuplicateMember("keys".into())),
        ),
        (
            br#"{"keys":[{"kty":"EC","kty":"RSA"}]}"#,
            JwksError::Json(JsonError::DuplicateMember("kty".into())),
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            KeySet::from_json(body, T0, 3600).unwrap_err(),
            *expected,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    assert!(matches!(
        KeySet::from_json(b"{", T0, 3600).unwrap_err(),
        JwksError::Json(JsonError::Syntax { .. })
    ));
    // An empty key list is a valid (if useless) document.
    assert!(
        KeySet::from_json(br#"{"keys":[]}"#, T0, 3600)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn select_reports_the_key() {
    let a = TestKey::generate(Algorithm::Es256, Some("a"));
    let b = TestKey::generate(Algorithm::Rs256, Some("b"));
    let keys = parse(&json!({"keys": [a.jwk(), b.jwk()]}));
    let header = Header {
        alg: Algorithm::Rs256,
        kid: Some("b".into()),
        typ: None,
    };
    let key = keys.select(&header).unwrap();
    assert_eq!(key.kid(), Some("b"));
    assert_eq!(key.algorithm(), Some(Algorithm::Rs256));
    assert!(key.supports(Algorithm::Rs256));
    assert!(!key.supports(Algorithm::Ps256));
    assert!(!key.supports(Algorithm::Es256));
    assert_eq!(key.to_json(), &b.jwk());
}

fn response(status: u16, cache_control: &[&str], body: &str) -> http::Response<Vec<u8>> {
    let mut builder = http::Response::builder().status(status);
    for v in cache_control {
        builder = builder.header(http::header::CACHE_CONTROL, *v);
    }
    builder.body(body.as_bytes().to_vec()).unwrap()
}

#[test]
fn cache_control_table() {
    let cases: &[(&[&str], Option<&str>, u64)] = &[
        (&[], None, DEFAULT_MAX_AGE),
        (&["public, max-age=600"], None, 600),
        (&["max-age=600, public"], None, 600),
        (&["MAX-AGE=600"], None, 600),
        (&["max-age = 600"], None, 600),
        (&["max-age=\"600\""], None, 600),
        (&["max-age=0"], None, MIN_MAX_AGE),
        (&["max-age=299"], None, MIN_MAX_AGE),
        (&["max-age=300"], None, 300),
        (&["max-age=86400"], None, 86_400),
        (&["max-age=86401"], None, MAX_MAX_AGE),
        (&["max-age=99999999999999999999999999"], None, MAX_MAX_AGE),
        (&["no-store"], None, MIN_MAX_AGE),
        (&["no-cache"], None, MIN_MAX_AGE),
        (&["No-Cache, max-age=3600"], None, MIN_MAX_AGE),
        (&["max-age=3600", "no-store"], None, MIN_MAX_AGE),
        (&["max-age=7200", "max-age=900"], None, 900),
        (&["max-age=7200, max-age=900"], None, 900),
        (&["max-age=abc"], None, MIN_MAX_AGE),
        (&["max-age=-5"], None, MIN_MAX_AGE),
        (&["max-age="], None, MIN_MAX_AGE),
        (&["max-age"], None, MIN_MAX_AGE),
        (&["max-age=1.5"], None, MIN_MAX_AGE),
        (&["public"], None, DEFAULT_MAX_AGE),
        (&["s-maxage=60"], None, DEFAULT_MAX_AGE),
        (&["private, must-revalidate"], None, DEFAULT_MAX_AGE),
        (&[""], None, DEFAULT_MAX_AGE),
        (&["max-age=3600"], Some("600"), 3000),
        (&["max-age=3600"], Some("3500"), MIN_MAX_AGE),
        (&["max-age=3600"], Some("junk"), 3600),
        (&[], Some("600"), DEFAULT_MAX_AGE),
    ];
    for (cache_control, age, expected) in cases {
        let mut headers = http::HeaderMap::new();
        for v in *cache_control {
            headers.append(http::header::CACHE_CONTROL, v.parse().unwrap());
        }
        if let Some(age) = age {
            headers.insert(http::header::AGE, age.parse().unwrap());
        }
        assert_eq!(
            max_age_from_headers(&headers),
            *expected,
            "{cache_control:?} age {age:?}"
        );
    }
    // A header value that is not visible ASCII is treated as stale.
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_bytes(b"max-age=3600, \xff").unwrap(),
    );
    assert_eq!(max_age_from_headers(&headers), MIN_MAX_AGE);
}

#[test]
fn from_response_status_and_max_age() {
    let body = json!({"keys": [es256_jwk()]}).to_string();
    let keys = KeySet::from_response(&response(200, &["max-age=900"], &body), T0).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys.max_age(), 900);
    assert_eq!(keys.fetched_at(), Some(T0));
    let keys = KeySet::from_response(&response(200, &[], &body), T0).unwrap();
    assert_eq!(keys.max_age(), DEFAULT_MAX_AGE);
    for status in [201, 204, 304, 404, 429, 500, 503] {
        assert_eq!(
            KeySet::from_response(&response(status, &[], &body), T0).unwrap_err(),
            JwksError::Status(status)
        );
    }
    assert_eq!(
        KeySet::from_response(&response(200, &[], "<html>"), T0).unwrap_err(),
        JwksError::Json(JsonError::Syntax { line: 1, column: 1 })
    );
}

#[test]
fn from_json_clamps_max_age() {
    for (given, expected) in [
        (0, MIN_MAX_AGE),
        (299, MIN_MAX_AGE),
        (300, 300),
        (5000, 5000),
        (86_400, 86_400),
        (u64::MAX, MAX_MAX_AGE),
    ] {
        let keys = KeySet::from_json(br#"{"keys":[]}"#, T0, given).unwrap();
        assert_eq!(keys.max_age(), expected, "{given}");
    }
}

#[test]
fn freshness_and_refetch_boundaries() {
    let keys = KeySet::from_json(br#"{"keys":[]}"#, T0, 600).unwrap();
    let at = |s: u64| T0.plus(s);
    assert!(keys.is_fresh(T0));
    assert!(keys.is_fresh(at(599)));
    assert!(!keys.is_fresh(at(600)));
    assert!(!keys.is_fresh(at(601)));
    assert!(!keys.may_refetch(T0));
    assert!(!keys.may_refetch(at(REFETCH_COOLDOWN - 1)));
    assert!(keys.may_refetch(at(REFETCH_COOLDOWN)));
    assert!(keys.may_refetch(at(10_000)));
    // A fetch time in the future (a clock that went backwards, a tampered cache) counts as
    // never fetched: not fresh, refetch allowed.
    assert!(!keys.is_fresh(T0.minus(10)));
    assert!(keys.may_refetch(T0.minus(10)));
    let far = KeySet::from_json(br#"{"keys":[]}"#, UnixTime(u64::MAX / 2), 600).unwrap();
    assert!(!far.is_fresh(T0));
    assert!(far.may_refetch(T0));
    // Near the end of time nothing overflows.
    let late = KeySet::from_json(br#"{"keys":[]}"#, UnixTime(u64::MAX - 5), 600).unwrap();
    assert!(late.is_fresh(UnixTime(u64::MAX - 1)));
    assert!(!late.may_refetch(UnixTime(u64::MAX - 1)));

    let never = KeySet::empty();
    assert_eq!(never.fetched_at(), None);
    assert!(never.is_empty());
    assert!(!never.is_fresh(T0));
    assert!(!never.is_fresh(UnixTime::EPOCH));
    assert!(never.may_refetch(UnixTime::EPOCH));
    assert!(never.may_refetch(T0));
}

/// DESIGN §4: the cooldown counts fetch *attempts*: a failed refetch starts it again.
#[test]
fn failed_attempt_starts_the_cooldown() {
    let keys = KeySet::from_json(br#"{"keys":[]}"#, T0, 3600).unwrap();
    let later = T0.plus(1000);
    assert!(keys.may_refetch(later));
    let attempted = keys.with_attempt(later);
    assert_eq!(attempted.attempted_at(), Some(later));
    assert_eq!(attempted.fetched_at(), Some(T0));
    assert!(!attempted.may_refetch(later));
    assert!(!attempted.may_refetch(later.plus(REFETCH_COOLDOWN - 1)));
    assert!(attempted.may_refetch(later.plus(REFETCH_COOLDOWN)));
    // A never-fetched set that failed its first fetch waits too.
    let cold = KeySet::empty().with_attempt(T0);
    assert!(!cold.may_refetch(T0.plus(59)) && cold.may_refetch(T0.plus(60)));
    assert!(!cold.is_fresh(T0));
    // An attempt in the future counts as none.
    assert!(keys.with_attempt(UnixTime(u64::MAX)).may_refetch(later));
}

const ISSUER: &str = "https://idp.test/i_a";
const JWKS_URI: &str = "https://idp.test/i_a/jwks.json";

#[test]
fn binding_to_a_provider() {
    let keys = parse(&json!({"keys": [es256_jwk()]}));
    // Unbound (built in code): usable for any provider.
    assert_eq!((keys.issuer(), keys.jwks_uri()), (None, None));
    keys.check_provider(ISSUER, JWKS_URI).unwrap();
    let bound = keys.bind(ISSUER, JWKS_URI);
    assert_eq!(
        (bound.issuer(), bound.jwks_uri()),
        (Some(ISSUER), Some(JWKS_URI))
    );
    assert_eq!(bound.len(), 1);
    bound.check_provider(ISSUER, JWKS_URI).unwrap();
    for (iss, uri) in [
        ("https://idp.test/i_b", JWKS_URI),
        (ISSUER, "https://idp.test/i_b/jwks.json"),
        ("https://idp.test/i_a/", JWKS_URI),
    ] {
        assert_eq!(
            bound.check_provider(iss, uri),
            Err(JwksError::ForeignProvider),
            "{iss} {uri}"
        );
    }
}

#[test]
fn serde_round_trip() {
    let ec = TestKey::generate(Algorithm::Es256, Some("ec"));
    let ed = TestKey::generate(Algorithm::EdDsa, Some("ed"));
    let rsa = TestKey::generate(Algorithm::Ps256, Some("rsa"));
    let doc = json!({"keys": [ec.jwk(), {"kty": "oct", "k": "c2VjcmV0"}, ed.jwk(), rsa.jwk()]});
    let keys = KeySet::from_json(doc.to_string().as_bytes(), T0, 900)
        .unwrap()
        .bind(ISSUER, JWKS_URI)
        .with_attempt(T0.plus(5));
    let stored = serde_json::to_value(&keys).unwrap();
    assert_eq!(
        stored,
        json!({"keys": [ec.jwk(), ed.jwk(), rsa.jwk()], "fetched_at": T0.0, "max_age": 900,
               "attempted_at": T0.0 + 5, "issuer": ISSUER, "jwks_uri": JWKS_URI})
    );
    let back: KeySet = serde_json::from_value(stored.clone()).unwrap();
    assert_eq!(back.len(), 3);
    assert_eq!(back.fetched_at(), Some(T0));
    assert_eq!(back.attempted_at(), Some(T0.plus(5)));
    assert_eq!(back.issuer(), Some(ISSUER));
    assert_eq!(back.jwks_uri(), Some(JWKS_URI));
    assert_eq!(back.max_age(), 900);
    assert_eq!(serde_json::to_value(&back).unwrap(), stored);
    for key in [&ec, &ed, &rsa] {
        let token = key.token("{}");
        Jws::parse(&token)
            .unwrap()
            .verify(&back, AlgorithmSet::ALL)
            .unwrap();
    }
    // Never fetched.
    let empty = serde_json::to_value(KeySet::empty()).unwrap();
    assert_eq!(
        empty,
        json!({"keys": [], "fetched_at": null, "max_age": DEFAULT_MAX_AGE,
               "attempted_at": null, "issuer": null, "jwks_uri": null})
    );
    let back: KeySet = serde_json::from_value(empty).unwrap();
    assert_eq!(back.fetched_at(), None);
    assert!(back.may_refetch(T0));
    // A stored set that was fetched must name its provider (an older export, or a misfiled
    // file, is refused instead of being trusted for every provider).
    let unbound =
        serde_json::to_value(KeySet::from_json(doc.to_string().as_bytes(), T0, 900).unwrap())
            .unwrap();
    assert!(serde_json::from_value::<KeySet>(unbound).is_err());
    let half = json!({"keys": [], "fetched_at": 5, "max_age": 300, "issuer": ISSUER});
    assert!(serde_json::from_value::<KeySet>(half).is_err());
}

#[test]
fn deserializing_revalidates_keys_and_clamps() {
    let good = es256_jwk();
    let mut private = good.clone();
    private["d"] = json!(b64(&[1; 32]));
    let stored = json!({"keys": [private, good], "fetched_at": 5, "max_age": 1,
                        "issuer": ISSUER, "jwks_uri": JWKS_URI});
    let keys: KeySet = serde_json::from_value(stored).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys.max_age(), MIN_MAX_AGE);
    assert!(serde_json::from_value::<KeySet>(json!({"keys": []})).is_err());
    assert!(serde_json::from_value::<KeySet>(json!({"fetched_at": 1, "max_age": 300})).is_err());
}

#[test]
fn debug_shows_kids_and_algs() {
    let a = TestKey::generate(Algorithm::Es256, Some("kid-a"));
    let b = TestKey::generate(Algorithm::Rs256, Some("kid-b"));
    let keys = parse(&json!({"keys": [a.jwk(), b.jwk()]}));
    let dbg = format!("{keys:?}");
    for needle in ["kid-a", "kid-b", "Es256", "Rs256", "2048", "fetched_at"] {
        assert!(dbg.contains(needle), "{needle} missing in {dbg}");
    }
    // No key material.
    let x = a.jwk()["x"].as_str().unwrap().to_owned();
    assert!(!dbg.contains(&x));
}

#[test]
fn key_set_is_send_and_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<KeySet>();
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn member() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[A-Za-z0-9_-]{0,50}".prop_map(Value::from),
            prop::sample::select(vec![
                "EC", "OKP", "RSA", "P-256", "Ed25519", "sig", "verify", "ES256", "EdDSA", "RS256"
            ])
            .prop_map(Value::from),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(|b| Value::from(b64(&b))),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_keys_never_panic(keys in proptest::collection::vec(
            proptest::collection::btree_map(
                prop::sample::select(vec!["kty", "crv", "x", "y", "n", "e", "alg", "use", "kid", "key_ops", "d"]),
                member(), 0..8), 0..6)) {
            let doc = json!({"keys": keys});
            let set = KeySet::from_json(doc.to_string().as_bytes(), T0, 0).unwrap();
            prop_assert!(set.len() <= 6);
            let header = Header { alg: Algorithm::Es256, kid: None, typ: None };
            let _ = set.select(&header);
        }

        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = KeySet::from_json(&body, T0, 0);
        }

        #[test]
        fn arbitrary_cache_control_is_clamped(v in "[ -~]{0,60}", age in "[ -~]{0,12}") {
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::CACHE_CONTROL, v.parse().unwrap());
            if let Ok(age) = age.parse() {
                headers.insert(http::header::AGE, age);
            }
            let m = max_age_from_headers(&headers);
            prop_assert!((MIN_MAX_AGE..=MAX_MAX_AGE).contains(&m));
        }
    }
}

/// Rough timing; run with
/// `cargo test --release --lib jwks::tests::timing -- --ignored --nocapture`.
#[test]
#[ignore = "timing report, not a test"]
fn timing() {
    use std::time::Instant;
    let keys: Vec<TestKey> = [Algorithm::Es256, Algorithm::EdDsa, Algorithm::Rs256]
        .iter()
        .flat_map(|a| (0..2).map(move |n| TestKey::generate_nth(*a, Some(&format!("{a}-{n}")), n)))
        .collect();
    let body = TestKey::jwks(&keys.iter().collect::<Vec<_>>());
    const N: u32 = 2_000;
    let start = Instant::now();
    for _ in 0..N {
        std::hint::black_box(
            KeySet::from_json(std::hint::black_box(body.as_bytes()), T0, 3600).unwrap(),
        );
    }
    println!(
        "6-key JWKS ({} bytes) from_json: {:?}",
        body.len(),
        start.elapsed() / N
    );
}
