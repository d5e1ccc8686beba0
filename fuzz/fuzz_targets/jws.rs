//! Compact JWS: `Jws::parse` + `verify` against the fixed key set, and the ID-token claim
//! checks through an `Exchange` whose token response embeds the token as `id_token`.
//!
//! Input: `mode ‖ rest`. Mode 0: `rest` is the token. Mode 1: `rest` is a payload, signed by
//! the fixed key under the standard header. Mode 2: `rest` is `header ‖ NUL ‖ payload`, signed
//! by the fixed key as given (so header rules are reached with a valid signature).
#![no_main]

use authpi_idp::AlgorithmSet;
use authpi_idp::internal::jose::{Jws, verify_jws};
use authpi_idp_fuzz::*;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else { return };
    let key = FuzzKey::new();
    let token = match mode % 3 {
        0 => match std::str::from_utf8(rest) {
            Ok(s) => s.to_owned(),
            Err(_) => return,
        },
        1 => key.sign(rest),
        _ => {
            let (h, p) = split_nul(rest);
            key.sign_raw(h, p)
        }
    };
    let keys = keys_at(NOW);
    if let Ok(jws) = Jws::parse(&token) {
        let _ = (jws.header(), jws.payload(), jws.signing_input());
        let verified = verify_jws(&keys, &jws, AlgorithmSet::ALL);
        if mode % 3 == 1 {
            // Our own standard header over any payload: always verifies.
            assert!(
                verified.is_ok(),
                "fixed-key signature refused: {verified:?}"
            );
        }
    }

    // As the ID token of a real token response.
    let mut body: Value = serde_json::from_slice(fixtures::TOKEN).unwrap_or(Value::Null);
    body["id_token"] = Value::String(token.clone());
    let Ok(body) = serde_json::to_vec(&body) else {
        return;
    };
    let client = client();
    let tx = transaction();
    let Ok(mut op) = client.exchange_callback(fixtures::CALLBACK, &tx, &keys) else {
        panic!("fixed callback refused");
    };
    let out = drive(&mut op, NOW, |_| response(200, &[], body.clone()));
    assert!(out.persisted.is_empty());
    if let Ok(agent) = out.result {
        check_exchange_agent(&agent, &keys, Some(&tx.nonce));
        assert_eq!(agent.tokens().id_token.as_deref(), Some(token.as_str()));
    }
});
