#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::test_keys::{TestKey, b64};
use super::*;
use crate::jwks::KeySet;
use crate::time::UnixTime;
use serde_json::json;

const PAYLOAD: &str = r#"{"iss":"https://idp.example","sub":"usr_1"}"#;
const NOW: UnixTime = UnixTime(1_767_312_000);

fn keyset(keys: &[&TestKey]) -> KeySet {
    KeySet::from_json(TestKey::jwks(keys).as_bytes(), NOW, 3600).unwrap()
}

fn keyset_json(doc: &serde_json::Value) -> KeySet {
    KeySet::from_json(doc.to_string().as_bytes(), NOW, 3600).unwrap()
}

/// Replaces part `i` (0, 1, 2) of a compact token.
fn with_part(token: &str, i: usize, part: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[i] = part;
    parts.join(".")
}

fn part(token: &str, i: usize) -> &str {
    token.split('.').nth(i).unwrap()
}

fn verify(token: &str, keys: &KeySet) -> Result<(), JoseError> {
    Jws::parse(token)?.verify(keys, AlgorithmSet::ALL)
}

#[test]
fn valid_tokens_verify_for_every_algorithm() {
    for alg in Algorithm::ALL {
        let key = TestKey::generate(alg, Some("k1"));
        let token = key.token(PAYLOAD);
        let jws = Jws::parse(&token).unwrap();
        assert_eq!(jws.header().alg, alg);
        assert_eq!(jws.header().kid.as_deref(), Some("k1"));
        assert_eq!(jws.header().typ, None);
        jws.verify(&keyset(&[&key]), AlgorithmSet::ALL)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(jws.payload(), PAYLOAD.as_bytes());
        assert_eq!(jws.signing_input(), token.rsplit_once('.').unwrap().0);
    }
}

#[test]
fn ed25519_header_alias_verifies_as_eddsa() {
    let key = TestKey::generate(Algorithm::EdDsa, Some("k1"));
    let token = key.sign(r#"{"alg":"Ed25519","kid":"k1"}"#, PAYLOAD);
    let jws = Jws::parse(&token).unwrap();
    assert_eq!(jws.header().alg, Algorithm::EdDsa);
    jws.verify(&keyset(&[&key]), AlgorithmSet::ALL).unwrap();
}

#[test]
fn typ_is_reported() {
    let key = TestKey::generate(Algorithm::Es256, Some("k1"));
    let token = key.sign(r#"{"alg":"ES256","kid":"k1","typ":"at+jwt"}"#, PAYLOAD);
    let jws = Jws::parse(&token).unwrap();
    assert_eq!(jws.header().typ.as_deref(), Some("at+jwt"));
    jws.verify(&keyset(&[&key]), AlgorithmSet::ALL).unwrap();
}

/// Header rules, table-driven: (header JSON, expected parse error).
#[test]
fn header_rules() {
    let cases: &[(&str, JoseError)] = &[
        (r#"{"alg":"none"}"#, JoseError::AlgNone),
        (r#"{"alg":"None"}"#, JoseError::AlgNone),
        (r#"{"alg":"NONE","kid":"k1"}"#, JoseError::AlgNone),
        (r#"{"alg":"HS256","kid":"k1"}"#, JoseError::Hmac),
        (r#"{"alg":"HS384"}"#, JoseError::Hmac),
        (r#"{"alg":"hs512"}"#, JoseError::Hmac),
        (r#"{"alg":"ES384"}"#, JoseError::UnsupportedAlgorithm),
        (r#"{"alg":"RS512"}"#, JoseError::UnsupportedAlgorithm),
        (r#"{"alg":"es256"}"#, JoseError::UnsupportedAlgorithm),
        (r#"{"alg":"ES256 "}"#, JoseError::UnsupportedAlgorithm),
        (r#"{"alg":""}"#, JoseError::UnsupportedAlgorithm),
        (
            r#"{"kid":"k1"}"#,
            JoseError::Json(JsonError::Missing("alg")),
        ),
        (
            r#"{"alg":null}"#,
            JoseError::Json(JsonError::Missing("alg")),
        ),
        (r#"{"alg":256}"#, JoseError::Json(JsonError::Invalid("alg"))),
        (
            r#"{"alg":["ES256"]}"#,
            JoseError::Json(JsonError::Invalid("alg")),
        ),
        (
            r#"{"alg":"ES256","alg":"ES256"}"#,
            JoseError::Json(JsonError::DuplicateMember("alg".into())),
        ),
        (
            r#"{"alg":"ES256","kid":"a","kid":"b"}"#,
            JoseError::Json(JsonError::DuplicateMember("kid".into())),
        ),
        (
            r#"{"alg":"ES256","x":{"y":1,"y":2}}"#,
            JoseError::Json(JsonError::DuplicateMember("y".into())),
        ),
        (
            r#"{"alg":"ES256","crit":["exp"],"exp":1}"#,
            JoseError::CriticalHeader,
        ),
        (r#"{"alg":"ES256","crit":[]}"#, JoseError::CriticalHeader),
        (r#"{"alg":"ES256","crit":null}"#, JoseError::CriticalHeader),
        (r#"{"alg":"ES256","kid":1}"#, JoseError::InvalidKid),
        (r#"{"alg":"ES256","kid":null}"#, JoseError::InvalidKid),
        (r#"{"alg":"ES256","kid":["k1"]}"#, JoseError::InvalidKid),
        (r#"{"alg":"ES256","typ":1}"#, JoseError::InvalidTyp),
        (r#"["ES256"]"#, JoseError::Json(JsonError::NotAnObject)),
    ];
    let key = TestKey::generate(Algorithm::Es256, Some("k1"));
    for (header, expected) in cases {
        let token = key.sign(header, PAYLOAD);
        assert_eq!(
            Jws::parse(&token).unwrap_err(),
            *expected,
            "header {header}"
        );
    }
}

#[test]
fn unknown_alg_is_not_echoed() {
    let key = TestKey::generate(Algorithm::Es256, None);
    let alg = "X".repeat(10_000);
    let token = key.sign(&format!(r#"{{"alg":"{alg}"}}"#), PAYLOAD);
    let err = Jws::parse(&token).unwrap_err();
    assert_eq!(err, JoseError::UnsupportedAlgorithm);
    assert!(!err.to_string().contains("XXX"));
    assert!(!format!("{err:?}").contains("XXX"));
}

#[test]
fn wrong_number_of_parts() {
    let key = TestKey::generate(Algorithm::Es256, Some("k1"));
    let token = key.token(PAYLOAD);
    let two = token.rsplit_once('.').unwrap().0.to_owned();
    let four = format!("{token}.");
    let four_full = format!("{token}.{}", part(&token, 2));
    // Three empty parts are three parts: the (empty) header is then not JSON.
    assert!(matches!(
        Jws::parse(".."),
        Err(JoseError::Json(JsonError::Syntax { .. }))
    ));
    for bad in [
        "",
        ".",
        "...",
        "abc",
        two.as_str(),
        four.as_str(),
        four_full.as_str(),
    ] {
        assert!(
            matches!(Jws::parse(bad), Err(JoseError::Malformed(_))),
            "{bad:?} was accepted"
        );
    }
}

#[test]
fn strict_base64url() {
    let key = TestKey::generate(Algorithm::Es256, Some("k1"));
    let token = key.token(PAYLOAD);
    let (h, p, s) = (part(&token, 0), part(&token, 1), part(&token, 2));
    let std_sig = s.replace('-', "+").replace('_', "/");
    // Pick a signature that needs `+` or `/` in standard base64 (loop until one does).
    let mut plus_token = None;
    for _ in 0..64 {
        let t = key.token(PAYLOAD);
        let sig = part(&t, 2);
        if sig.contains('-') || sig.contains('_') {
            plus_token = Some(with_part(&t, 2, &sig.replace('-', "+").replace('_', "/")));
            break;
        }
    }
    let plus_token = plus_token.expect("no signature with - or _ in 64 tries");
    let padded_sig = format!("{s}=="); // 64 bytes: 86 chars, padding would be `==`
    let cases = [
        format!("{h}=.{p}.{s}"),
        format!("{h}.{p}=.{s}"),
        format!("{h}.{p}.{padded_sig}"),
        format!("{h}.{p}.{std_sig}x"),
        plus_token,
        format!("{h}.{p} .{s}"),
        format!(" {h}.{p}.{s}"),
        format!("{h}.{p}.{s}\n"),
        format!("{h}.{p}.{}", &s[..s.len() - 1]), // 85 chars: length ≡ 1 (mod 4) is never valid
    ];
    for bad in &cases {
        assert!(
            matches!(Jws::parse(bad), Err(JoseError::Malformed(_))),
            "{bad:?} was accepted"
        );
    }
    // The untouched token still parses.
    assert!(Jws::parse(&token).is_ok());
}

/// Sets the lowest unused bit of the last character: same bytes, non-canonical encoding.
fn non_canonical(part: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert_ne!(part.len() % 4, 0, "needs a part with unused trailing bits");
    let last = part.as_bytes()[part.len() - 1];
    let idx = ALPHABET.iter().position(|c| *c == last).unwrap();
    format!("{}{}", &part[..part.len() - 1], ALPHABET[idx | 1] as char)
}

#[test]
fn non_canonical_trailing_bits_are_rejected() {
    let key = TestKey::generate(Algorithm::Es256, Some("k1"));
    // 64-byte signature: 86 characters, 4 unused bits.
    let token = key.token(PAYLOAD);
    let sig = part(&token, 2);
    assert_eq!(sig.len() % 4, 2);
    let bad = with_part(&token, 2, &non_canonical(sig));
    assert_eq!(
        Jws::parse(&bad).unwrap_err(),
        JoseError::Malformed("signature is not base64url")
    );
    // Header and payload too (pick JSON texts whose encodings have unused bits).
    let header = r#"{"alg":"ES256","kid":"k1"}"#; // 26 bytes: 35 chars
    let token = key.sign(header, PAYLOAD);
    assert_ne!(part(&token, 0).len() % 4, 0);
    let bad = with_part(&token, 0, &non_canonical(part(&token, 0)));
    assert_eq!(
        Jws::parse(&bad).unwrap_err(),
        JoseError::Malformed("header is not base64url")
    );
    let token = key.sign(header, "{}");
    let bad = with_part(&token, 1, &non_canonical(part(&token, 1)));
    assert_eq!(
        Jws::parse(&bad).unwrap_err(),
        JoseError::Malformed("payload is not base64url")
    );
}

#[test]
fn oversized_token_is_refused() {
    let key = TestKey::generate(Algorithm::Es256, Some("k1"));
    let token = key.token(PAYLOAD);
    let long = format!("{token}{}", "A".repeat(crate::json::MAX_DOCUMENT));
    assert_eq!(Jws::parse(&long).unwrap_err(), JoseError::TooLong);
}

#[test]
fn es256_signature_must_be_64_bytes() {
    let key = TestKey::generate(Algorithm::Es256, Some("k1"));
    let keys = keyset(&[&key]);
    let token = key.token(PAYLOAD);
    let input = token.rsplit_once('.').unwrap().0;
    let sig = b64_decode(part(&token, 2)).unwrap();
    // DER signature of the same input by the same key.
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &rng,
    )
    .unwrap();
    let der_pair = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        pkcs8.as_ref(),
        &rng,
    )
    .unwrap();
    let der = der_pair
        .sign(&rng, input.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec();
    assert_eq!(der[0], 0x30);
    let mut long = sig.clone();
    long.push(0);
    for bad in [sig[..63].to_vec(), long, der, Vec::new()] {
        let t = format!("{input}.{}", b64(&bad));
        assert_eq!(
            verify(&t, &keys),
            Err(JoseError::SignatureLength),
            "{} bytes",
            bad.len()
        );
        // Checked before key selection: no key set needed, so no refetch is triggered.
        assert_eq!(
            verify(&t, &KeySet::empty()),
            Err(JoseError::SignatureLength)
        );
    }
}

#[test]
fn eddsa_and_rsa_signature_lengths() {
    for alg in [Algorithm::EdDsa, Algorithm::Rs256, Algorithm::Ps256] {
        let key = TestKey::generate(alg, Some("k1"));
        let token = key.token(PAYLOAD);
        let input = token.rsplit_once('.').unwrap().0;
        let sig = b64_decode(part(&token, 2)).unwrap();
        let mut long = sig.clone();
        long.push(0);
        for bad in [sig[..sig.len() - 1].to_vec(), long] {
            let t = format!("{input}.{}", b64(&bad));
            assert_eq!(
                verify(&t, &keyset(&[&key])),
                Err(JoseError::SignatureLength),
                "{alg} {} bytes",
                bad.len()
            );
        }
    }
}

#[test]
fn tampered_payload_or_signature_fails_for_every_algorithm() {
    for alg in Algorithm::ALL {
        let key = TestKey::generate(alg, Some("k1"));
        let keys = keyset(&[&key]);
        let token = key.token(PAYLOAD);
        let other_payload = b64(br#"{"iss":"https://idp.example","sub":"usr_2"}"#);
        let tampered_payload = with_part(&token, 1, &other_payload);
        assert_eq!(
            verify(&tampered_payload, &keys),
            Err(JoseError::InvalidSignature),
            "{alg}"
        );
        let mut sig = b64_decode(part(&token, 2)).unwrap();
        for i in [0, sig.len() / 2, sig.len() - 1] {
            sig[i] ^= 0x01;
            let tampered_sig = with_part(&token, 2, &b64(&sig));
            assert_eq!(
                verify(&tampered_sig, &keys),
                Err(JoseError::InvalidSignature),
                "{alg} byte {i}"
            );
            sig[i] ^= 0x01;
        }
        // Re-encoded header with the same meaning: the signature covers the encoded bytes.
        let respaced = with_part(
            &token,
            0,
            &b64(format!("{} ", key.header_json()).as_bytes()),
        );
        assert_eq!(
            verify(&respaced, &keys),
            Err(JoseError::InvalidSignature),
            "{alg}"
        );
        assert_eq!(verify(&token, &keys), Ok(()), "{alg}");
    }
}

#[test]
fn wrong_key_with_same_kid_fails() {
    for alg in Algorithm::ALL {
        let signer = TestKey::generate_nth(alg, Some("k1"), 0);
        let published = TestKey::generate_nth(alg, Some("k1"), 1);
        let token = signer.token(PAYLOAD);
        assert_eq!(
            verify(&token, &keyset(&[&published])),
            Err(JoseError::InvalidSignature),
            "{alg}"
        );
    }
}

#[test]
fn token_alg_must_be_allowed() {
    let key = TestKey::generate(Algorithm::Es256, Some("k1"));
    let token = key.token(PAYLOAD);
    let jws = Jws::parse(&token).unwrap();
    let keys = keyset(&[&key]);
    let rsa_only = AlgorithmSet::EMPTY.with(Algorithm::Rs256);
    assert_eq!(
        jws.verify(&keys, rsa_only),
        Err(JoseError::AlgorithmNotAllowed(Algorithm::Es256))
    );
    assert_eq!(
        jws.verify(&keys, AlgorithmSet::EMPTY),
        Err(JoseError::AlgorithmNotAllowed(Algorithm::Es256))
    );
    assert_eq!(jws.verify(&keys, rsa_only.with(Algorithm::Es256)), Ok(()));
}

#[test]
fn kid_absent_single_candidate_verifies_several_are_ambiguous() {
    for alg in Algorithm::ALL {
        let a = TestKey::generate_nth(alg, Some("a"), 0);
        let b = TestKey::generate_nth(alg, Some("b"), 1);
        let token = a.sign(&format!(r#"{{"alg":"{}"}}"#, alg.name()), PAYLOAD);
        assert_eq!(verify(&token, &keyset(&[&a])), Ok(()), "{alg}");
        assert_eq!(
            verify(&token, &keyset(&[&a, &b])),
            Err(JoseError::AmbiguousKey),
            "{alg}"
        );
        assert_eq!(
            verify(&token, &KeySet::empty()),
            Err(JoseError::NoMatchingKey),
            "{alg}"
        );
    }
}

#[test]
fn kid_absent_other_key_types_do_not_count() {
    let ec = TestKey::generate(Algorithm::Es256, Some("ec"));
    let ed = TestKey::generate(Algorithm::EdDsa, Some("ed"));
    let rsa = TestKey::generate(Algorithm::Rs256, Some("rsa"));
    let keys = keyset(&[&ec, &ed, &rsa]);
    let token = ed.sign(r#"{"alg":"EdDSA"}"#, PAYLOAD);
    assert_eq!(verify(&token, &keys), Ok(()));
}

#[test]
fn kid_must_match_exactly() {
    let key = TestKey::generate(Algorithm::Es256, Some("Key-1"));
    let keys = keyset(&[&key]);
    for kid in ["key-1", "KEY-1", "Key-1 ", " Key-1", "Key-", "Key-1x", ""] {
        let token = key.sign(&format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#), PAYLOAD);
        assert_eq!(
            verify(&token, &keys),
            Err(JoseError::NoMatchingKey),
            "kid {kid:?}"
        );
    }
    // A key without kid never matches a token with one.
    let anonymous = TestKey::generate(Algorithm::Es256, None);
    let token = anonymous.sign(r#"{"alg":"ES256","kid":"k"}"#, PAYLOAD);
    assert_eq!(
        verify(&token, &keyset(&[&anonymous])),
        Err(JoseError::NoMatchingKey)
    );
}

#[test]
fn key_alg_must_equal_token_alg() {
    // The same RSA key published with alg RS256: a PS256 token does not select it.
    let rs = TestKey::generate(Algorithm::Rs256, Some("r"));
    let ps = TestKey::generate(Algorithm::Ps256, Some("r"));
    assert_eq!(
        verify(&ps.token(PAYLOAD), &keyset(&[&rs])),
        Err(JoseError::NoMatchingKey)
    );
    assert_eq!(
        verify(&rs.token(PAYLOAD), &keyset(&[&ps])),
        Err(JoseError::NoMatchingKey)
    );
    // Without `alg` the RSA key serves both.
    let mut jwk = rs.jwk();
    jwk.as_object_mut().unwrap().remove("alg");
    let keys = keyset_json(&json!({"keys": [jwk]}));
    assert_eq!(verify(&rs.token(PAYLOAD), &keys), Ok(()));
    assert_eq!(verify(&ps.token(PAYLOAD), &keys), Ok(()));
}

#[test]
fn key_type_must_fit_token_alg() {
    // An EC key with kid "k" cannot verify an RS256 token with kid "k".
    let ec = TestKey::generate(Algorithm::Es256, Some("k"));
    let rsa = TestKey::generate(Algorithm::Rs256, Some("k"));
    assert_eq!(
        verify(&rsa.token(PAYLOAD), &keyset(&[&ec])),
        Err(JoseError::NoMatchingKey)
    );
    // Same kid on keys of different types: each token finds its own.
    let keys = keyset(&[&ec, &rsa]);
    assert_eq!(verify(&rsa.token(PAYLOAD), &keys), Ok(()));
    assert_eq!(verify(&ec.token(PAYLOAD), &keys), Ok(()));
}

#[test]
fn duplicate_kid_of_the_same_type_is_ambiguous() {
    let a = TestKey::generate(Algorithm::Es256, Some("k"));
    let b = TestKey::generate(Algorithm::Es256, Some("k"));
    assert_eq!(
        verify(&a.token(PAYLOAD), &keyset(&[&a, &b])),
        Err(JoseError::AmbiguousKey)
    );
}

#[test]
fn unusable_keys_are_never_selected() {
    let key = TestKey::generate(Algorithm::Es256, Some("k1"));
    let token = key.token(PAYLOAD);
    let variants: Vec<(&str, serde_json::Value)> = vec![
        ("use enc", json!({"use": "enc"})),
        ("key_ops sign only", json!({"key_ops": ["sign"]})),
        ("private d", json!({"d": b64(&[7; 32])})),
        ("alg mismatch", json!({"alg": "ES384"})),
    ];
    for (what, extra) in variants {
        let mut jwk = key.jwk();
        for (k, v) in extra.as_object().unwrap() {
            jwk[k] = v.clone();
        }
        let keys = keyset_json(&json!({"keys": [jwk]}));
        assert_eq!(keys.len(), 0, "{what}");
        assert_eq!(
            verify(&token, &keys),
            Err(JoseError::NoMatchingKey),
            "{what}"
        );
    }
}

#[test]
fn rsa_1024_key_is_skipped() {
    let jwk: serde_json::Value = serde_json::from_str(test_keys::RSA1024_JWK).unwrap();
    let keys = keyset_json(&json!({"keys": [jwk]}));
    assert!(keys.is_empty());
    // A token naming that key finds nothing (a 2048-bit key signs it; the kid is what matters).
    let signer = TestKey::generate(Algorithm::Rs256, Some("rsa-1024"));
    assert_eq!(
        verify(&signer.token(PAYLOAD), &keys),
        Err(JoseError::NoMatchingKey)
    );
}

#[test]
fn embedded_jwk_and_jku_are_ignored() {
    for alg in Algorithm::ALL {
        let legit = TestKey::generate_nth(alg, Some("k1"), 0);
        let attacker = TestKey::generate_nth(alg, Some("k1"), 1);
        let keys = keyset(&[&legit]);
        let header = json!({
            "alg": alg.name(),
            "kid": "k1",
            "jwk": attacker.jwk(),
            "jku": "https://attacker.example/jwks.json",
            "x5u": "https://attacker.example/cert.pem",
            "x5c": ["MIIB"],
        })
        .to_string();
        // Signed by the attacker with its key embedded: only the key set counts.
        let forged = attacker.sign(&header, PAYLOAD);
        assert_eq!(
            verify(&forged, &keys),
            Err(JoseError::InvalidSignature),
            "{alg}"
        );
        // Without kid too.
        let mut no_kid: serde_json::Value = serde_json::from_str(&header).unwrap();
        no_kid.as_object_mut().unwrap().remove("kid");
        let forged = attacker.sign(&no_kid.to_string(), PAYLOAD);
        assert_eq!(
            verify(&forged, &keys),
            Err(JoseError::InvalidSignature),
            "{alg}"
        );
        // The members are ignored, not refused: a legit token carrying them verifies.
        let genuine = legit.sign(&header, PAYLOAD);
        assert_eq!(verify(&genuine, &keys), Ok(()), "{alg}");
    }
}

#[test]
fn invalid_ec_point_fails_at_verification() {
    // A JWK whose point is not on P-256 is kept (ring 0.17 cannot check it without a
    // signature) and every signature checked against it fails.
    let key = TestKey::generate(Algorithm::Es256, Some("k1"));
    let mut jwk = key.jwk();
    jwk["y"] = b64(&[0x11; 32]).into();
    let keys = keyset_json(&json!({"keys": [jwk]}));
    assert_eq!(keys.len(), 1);
    assert_eq!(
        verify(&key.token(PAYLOAD), &keys),
        Err(JoseError::InvalidSignature)
    );
}

#[test]
fn debug_does_not_show_the_payload() {
    let key = TestKey::generate(Algorithm::Es256, Some("k1"));
    let token = key.token(r#"{"secret_claim":"hunter2"}"#);
    let jws = Jws::parse(&token).unwrap();
    let dbg = format!("{jws:?}");
    assert!(dbg.contains("Es256"));
    assert!(!dbg.contains("hunter2"));
    assert!(!dbg.contains(part(&token, 1)));
}

#[test]
fn algorithm_names_and_serde() {
    for (alg, name) in [
        (Algorithm::Es256, "ES256"),
        (Algorithm::EdDsa, "EdDSA"),
        (Algorithm::Rs256, "RS256"),
        (Algorithm::Ps256, "PS256"),
    ] {
        assert_eq!(alg.name(), name);
        assert_eq!(alg.to_string(), name);
        assert_eq!(Algorithm::from_name(name), Some(alg));
        assert_eq!(serde_json::to_string(&alg).unwrap(), format!("\"{name}\""));
        assert_eq!(
            serde_json::from_str::<Algorithm>(&format!("\"{name}\"")).unwrap(),
            alg
        );
    }
    assert_eq!(Algorithm::from_name("Ed25519"), Some(Algorithm::EdDsa));
    assert_eq!(
        serde_json::from_str::<Algorithm>("\"Ed25519\"").unwrap(),
        Algorithm::EdDsa
    );
    for bad in ["none", "HS256", "es256", "EDDSA", "ES384", ""] {
        assert_eq!(Algorithm::from_name(bad), None, "{bad}");
    }
}

#[test]
fn algorithm_set_operations() {
    let es_rs = AlgorithmSet::EMPTY
        .with(Algorithm::Es256)
        .with(Algorithm::Rs256);
    assert!(es_rs.contains(Algorithm::Es256));
    assert!(!es_rs.contains(Algorithm::EdDsa));
    assert!(AlgorithmSet::EMPTY.is_empty());
    assert!(!es_rs.is_empty());
    assert_eq!(AlgorithmSet::default(), AlgorithmSet::EMPTY);
    assert_eq!(
        es_rs.iter().collect::<Vec<_>>(),
        vec![Algorithm::Es256, Algorithm::Rs256]
    );
    assert_eq!(
        AlgorithmSet::ALL.iter().collect::<Vec<_>>(),
        Algorithm::ALL.to_vec()
    );
    let ed_rs: AlgorithmSet = [Algorithm::EdDsa, Algorithm::Rs256].into_iter().collect();
    assert_eq!(
        es_rs.intersect(ed_rs).iter().collect::<Vec<_>>(),
        vec![Algorithm::Rs256]
    );
    assert!(es_rs.intersect(AlgorithmSet::EMPTY).is_empty());
    assert_eq!(es_rs.intersect(AlgorithmSet::ALL), es_rs);
    assert_eq!(
        AlgorithmSet::from_names(["RS256", "none", "HS256", "ES256", "ES384", "Ed25519"]),
        es_rs.with(Algorithm::EdDsa)
    );
    assert_eq!(format!("{es_rs:?}"), "{Es256, Rs256}");
}

#[test]
fn at_hash_vectors() {
    // OpenID Connect Core 1.0, Appendix A.3/A.4 (RS256), checked independently with Python's
    // hashlib: base64url(SHA-256(token)[..16]).
    let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
    let cases = [
        (Algorithm::Rs256, token, "77QmUPtjPfzWtF2AnpK9RQ"),
        (Algorithm::Ps256, token, "77QmUPtjPfzWtF2AnpK9RQ"),
        (Algorithm::Es256, token, "77QmUPtjPfzWtF2AnpK9RQ"),
        // base64url(SHA-512(token)[..32]) from hashlib.
        (
            Algorithm::EdDsa,
            token,
            "q7nS86GgvvFaZkzALLWqJYaJIKw2wCDAVfCAsm5CrBM",
        ),
        (Algorithm::Es256, "", "47DEQpj8HBSa-_TImW-5JA"),
        (
            Algorithm::EdDsa,
            "",
            "z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg_SpIdNs6c4",
        ),
    ];
    for (alg, access_token, expected) in cases {
        assert_eq!(alg.at_hash(access_token), expected, "{alg}");
        assert!(at_hash_matches(alg, access_token, expected), "{alg}");
    }
}

#[test]
fn at_hash_mismatches() {
    let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
    for bad in [
        "77QmUPtjPfzWtF2AnpK9Rq",
        "77QmUPtjPfzWtF2AnpK9R",
        "77QmUPtjPfzWtF2AnpK9RQ=",
        "77QmUPtjPfzWtF2AnpK9RQA",
        "",
        "q7nS86GgvvFaZkzALLWqJYaJIKw2wCDAVfCAsm5CrBM",
    ] {
        assert!(!at_hash_matches(Algorithm::Rs256, token, bad), "{bad}");
    }
    // EdDSA uses SHA-512: the SHA-256 value must not match.
    assert!(!at_hash_matches(
        Algorithm::EdDsa,
        token,
        "77QmUPtjPfzWtF2AnpK9RQ"
    ));
}

/// Rough timings; run with
/// `cargo test --release --lib jose::tests::timings -- --ignored --nocapture`.
#[test]
#[ignore = "timing report, not a test"]
fn timings() {
    use std::time::Instant;
    const N: u32 = 2_000;
    for alg in Algorithm::ALL {
        let key = TestKey::generate(alg, Some("k1"));
        let token = key.token(PAYLOAD);
        let keys = keyset(&[&key]);
        let start = Instant::now();
        for _ in 0..N {
            verify(std::hint::black_box(&token), &keys).unwrap();
        }
        let per = start.elapsed() / N;
        let start = Instant::now();
        for _ in 0..N {
            std::hint::black_box(Jws::parse(std::hint::black_box(&token)).unwrap());
        }
        let parse = start.elapsed() / N;
        println!("{alg}: parse {parse:?}, parse+select+verify {per:?}");
    }
}

mod never_panics {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;
    use std::sync::OnceLock;

    /// The key of [`parse_arbitrary_headers`]: ES256, `kid` `k1` (generated once).
    fn es256_k1() -> &'static TestKey {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(|| TestKey::generate(Algorithm::Es256, Some("k1")))
    }

    /// Header members: each rule's member with right and wrong values, members that must be
    /// ignored, sometimes a duplicate, in any order.
    fn header_members() -> impl Strategy<Value = Vec<(String, Value)>> {
        let alg = prop::option::weighted(
            0.9,
            prop::sample::select(vec![
                json!("ES256"),
                json!("ES256"),
                json!("EdDSA"),
                json!("Ed25519"),
                json!("RS256"),
                json!("PS256"),
                json!("none"),
                json!("NONE"),
                json!("HS256"),
                json!("hs512"),
                json!("ES384"),
                json!("es256"),
                json!(""),
                json!(256),
                json!(null),
                json!(["ES256"]),
            ]),
        );
        let kid = prop::option::of(prop::sample::select(vec![
            json!("k1"),
            json!("k1"),
            json!("k2"),
            json!(""),
            json!(1),
            json!(["k1"]),
            json!({"k": 1}),
        ]));
        let typ = prop::option::of(prop::sample::select(vec![
            json!("JWT"),
            json!("at+jwt"),
            json!("application/at+jwt"),
            json!("logout+jwt"),
            json!(5),
            json!(true),
        ]));
        let crit = prop::option::weighted(
            0.15,
            prop::sample::select(vec![json!(["exp"]), json!([]), json!("b64")]),
        );
        let ignored = prop::sample::subsequence(
            vec![
                ("jku", json!("https://evil.example/jwks")),
                ("x5u", json!("https://evil.example/cert")),
                ("jwk", json!({"kty": "oct", "k": "AAAA"})),
                ("x5c", json!(["MIIB"])),
                ("cty", json!("JWT")),
                ("b64", json!(false)),
            ],
            0..=3,
        );
        (
            alg,
            kid,
            typ,
            crit,
            ignored,
            any::<prop::sample::Index>(),
            prop::bool::weighted(0.15),
        )
            .prop_flat_map(|(alg, kid, typ, crit, ignored, dup_index, dup)| {
                let mut members: Vec<(String, Value)> = Vec::new();
                for (name, value) in [("alg", alg), ("kid", kid), ("typ", typ), ("crit", crit)] {
                    if let Some(v) = value {
                        members.push((name.to_owned(), v));
                    }
                }
                members.extend(ignored.into_iter().map(|(k, v)| (k.to_owned(), v)));
                if dup && !members.is_empty() {
                    let (name, _) = dup_index.get(&members).clone();
                    members.push((name, json!("second")));
                }
                Just(members).prop_shuffle()
            })
    }

    /// The header as JSON text, members in the given order (duplicates kept).
    fn header_text(members: &[(String, Value)]) -> String {
        let inner: Vec<String> = members
            .iter()
            .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
            .collect();
        format!("{{{}}}", inner.join(","))
    }

    #[derive(Debug)]
    enum Verdict {
        /// Parses; verifies against the ES256 key `k1` or not.
        Parses { verifies: bool },
        /// `alg` absent, `null` or not a string.
        AlgMember,
        /// Refused while parsing with exactly this error.
        Refused(JoseError),
    }

    /// The header rules of the module docs, written independently of `Header::parse`.
    fn header_verdict(members: &[(String, Value)]) -> Verdict {
        let mut seen = std::collections::HashSet::new();
        for (name, _) in members {
            if !seen.insert(name.as_str()) {
                return Verdict::Refused(JoseError::Json(JsonError::DuplicateMember(name.clone())));
            }
        }
        let get = |n: &str| members.iter().find(|(k, _)| k == n).map(|(_, v)| v);
        if get("crit").is_some() {
            return Verdict::Refused(JoseError::CriticalHeader);
        }
        let alg = match get("alg") {
            Some(Value::String(a)) => a.as_str(),
            _ => return Verdict::AlgMember,
        };
        let refused = match alg {
            "ES256" | "EdDSA" | "Ed25519" | "RS256" | "PS256" => None,
            a if a.eq_ignore_ascii_case("none") => Some(JoseError::AlgNone),
            a if a.to_ascii_uppercase().starts_with("HS") => Some(JoseError::Hmac),
            _ => Some(JoseError::UnsupportedAlgorithm),
        };
        if let Some(e) = refused {
            return Verdict::Refused(e);
        }
        let kid = match get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => return Verdict::Refused(JoseError::InvalidKid),
        };
        if matches!(get("typ"), Some(t) if !t.is_string()) {
            return Verdict::Refused(JoseError::InvalidTyp);
        }
        Verdict::Parses {
            verifies: alg == "ES256" && matches!(kid, None | Some("k1")),
        }
    }

    proptest! {
        #[test]
        fn parse_and_verify_arbitrary_strings(s in "[A-Za-z0-9_.=+/ -]{0,200}") {
            if let Ok(jws) = Jws::parse(&s) {
                let _ = jws.verify(&KeySet::empty(), AlgorithmSet::ALL);
            }
        }

        /// Structured headers (every rule's member, right and wrong values, duplicates,
        /// ignored members, any order), really signed by the one key of the set: the outcome
        /// is exactly the header rules' verdict, and a random signature never verifies.
        #[test]
        fn parse_arbitrary_headers(
            members in header_members(),
            sig in proptest::collection::vec(any::<u8>(), 64..=64),
        ) {
            let key = es256_k1();
            let text = header_text(&members);
            let token = key.sign(&text, PAYLOAD);
            let parsed = Jws::parse(&token);
            match (header_verdict(&members), &parsed) {
                (Verdict::Parses { verifies }, Ok(jws)) => {
                    let verified = jws.verify(&keyset(&[key]), AlgorithmSet::ALL);
                    prop_assert_eq!(verified.is_ok(), verifies, "{} -> {:?}", text, verified);
                }
                (Verdict::AlgMember, Err(JoseError::Json(JsonError::Missing("alg") | JsonError::Invalid("alg")))) => {}
                (Verdict::Refused(expected), Err(got)) => prop_assert_eq!(&expected, got, "{}", text),
                (expected, got) => prop_assert!(false, "{} -> {:?}, expected {:?}", text, got, expected),
            }
            let forged = with_part(&token, 2, &b64(&sig));
            if let Ok(jws) = Jws::parse(&forged) {
                prop_assert!(jws.verify(&keyset(&[key]), AlgorithmSet::ALL).is_err());
            }
        }

        /// `at_hash` against an independent model (OIDC Core §3.1.3.6: base64url of the left
        /// half of the hash named by the algorithm, computed here with ring's digest and the
        /// base64 crate's standard URL-safe engine), and a one-character change never matches.
        #[test]
        fn at_hash_matches_an_independent_model(token in ".{0,100}", flip in 0usize..64) {
            use base64::Engine as _;
            for alg in Algorithm::ALL {
                let (hash, half) = match alg {
                    Algorithm::EdDsa => (&ring::digest::SHA512, 32),
                    _ => (&ring::digest::SHA256, 16),
                };
                let digest = ring::digest::digest(hash, token.as_bytes());
                let model = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(&digest.as_ref()[..half]);
                prop_assert!(at_hash_matches(alg, &token, &model), "{alg}");
                let mut other = model.clone().into_bytes();
                let i = flip % other.len();
                other[i] = if other[i] == b'A' { b'B' } else { b'A' };
                let other = String::from_utf8(other).unwrap();
                prop_assert!(!at_hash_matches(alg, &token, &other), "{alg}");
            }
        }
    }
}
