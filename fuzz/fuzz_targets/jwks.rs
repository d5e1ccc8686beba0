//! JWKS documents: `KeySet::from_json` and `KeySet::from_response` (with `Cache-Control`),
//! then key selection and verification of a real ID token against the result.
//!
//! Input: `header lines ‖ NUL ‖ body`.
#![no_main]

use authpi_idp::UnixTime;
use authpi_idp::jose::{AlgorithmSet, Jws};
use authpi_idp::jwks::{self, KeySet};
use authpi_idp_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (head, body) = split_nul(data);
    let head = String::from_utf8_lossy(head);
    let headers = header_lines(&head);

    let direct = KeySet::from_json(body, UnixTime(NOW), 3_600);
    let resp = response(200, &headers, body.to_vec());
    let fetched = KeySet::from_response(&resp, UnixTime(NOW));
    assert_eq!(direct.is_ok(), fetched.is_ok());
    let max_age = jwks::max_age_from_headers(resp.headers());
    assert!((jwks::MIN_MAX_AGE..=jwks::MAX_MAX_AGE).contains(&max_age));

    let Ok(keys) = fetched else { return };
    assert_eq!(keys.len(), keys.iter().count());
    assert_eq!(keys.max_age(), max_age);
    assert!(keys.is_fresh(UnixTime(NOW)));
    assert!(!keys.may_refetch(UnixTime(NOW)));
    for k in keys.iter() {
        let _ = (k.kid(), k.algorithm(), k.to_json());
        let _ = format!("{k:?}");
    }
    // Serde round trip (serverless users persist key sets; a stored set names its provider).
    let keys = keys.bind(
        "https://idp.example.com/i_fuzz",
        "https://idp.example.com/i_fuzz/jwks.json",
    );
    let json = serde_json::to_vec(&keys).unwrap_or_default();
    let back: KeySet = serde_json::from_slice(&json)
        .unwrap_or_else(|e| panic!("a parsed key set does not round-trip: {e}"));
    assert_eq!(back.len(), keys.len());
    assert_eq!(
        (back.issuer(), back.jwks_uri()),
        (keys.issuer(), keys.jwks_uri())
    );

    // Verification of the real ID token and a fuzz-key token under this key set.
    let real = serde_json::from_slice::<serde_json::Value>(fixtures::TOKEN)
        .ok()
        .and_then(|v| v.get("id_token")?.as_str().map(str::to_owned))
        .unwrap_or_default();
    let crafted = FuzzKey::new().sign(br#"{"sub":"x"}"#);
    for token in [real.as_str(), crafted.as_str()] {
        let Ok(jws) = Jws::parse(token) else {
            panic!("fixture token does not parse")
        };
        let verified = jws.verify(&keys, AlgorithmSet::ALL);
        let selected = keys.select(jws.header());
        if verified.is_ok() {
            assert!(selected.is_ok());
        }
        let _ = verified;
    }
});
