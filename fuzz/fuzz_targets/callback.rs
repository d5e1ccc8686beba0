//! The authorization callback: `CallbackParams::parse`, then a full `exchange_callback`
//! against the fixed transaction, driven with the real token response.
#![no_main]

use authpi_idp::CallbackParams;
use authpi_idp_fuzz::{ISSUER, NOW, client, drive, fixtures, keys_at, response, transaction};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = CallbackParams::parse(input);
    if let Ok(p) = &parsed {
        let _ = format!("{p:?}");
    }
    let client = client();
    let tx = transaction();
    let keys = keys_at(NOW);
    let Ok(mut op) = client.exchange_callback(input, &tx, &keys) else {
        return;
    };
    // Accepted: the parameters parse, the state is the transaction's, no provider error, and
    // the issuer (when given) is ours.
    let params = parsed.unwrap_or_else(|_| panic!("exchange accepted an unparseable callback"));
    assert_eq!(params.get("state"), Some(tx.state.as_str()));
    assert_eq!(params.get("error"), None);
    assert!(params.get("iss").is_none_or(|iss| iss == ISSUER));
    let code = params.get("code").unwrap_or_default().to_owned();
    assert!(!code.is_empty());
    let out = drive(&mut op, NOW, |o| {
        // The code that is spent is the callback's.
        let form: Vec<(String, String)> = url_pairs(o.request.body());
        assert!(form.iter().any(|(k, v)| k == "code" && *v == code));
        response(200, &[], fixtures::TOKEN.to_vec())
    });
    assert!(out.persisted.is_empty());
    let agent = out
        .result
        .unwrap_or_else(|e| panic!("real token response refused: {e}"));
    authpi_idp_fuzz::check_exchange_agent(&agent, &keys, Some(&tx.nonce));
});

fn url_pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}
