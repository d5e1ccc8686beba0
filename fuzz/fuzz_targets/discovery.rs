//! Discovery documents: `ProviderMetadata::from_response`, then a client built on them.
//!
//! Input: `status byte ‖ body` (status byte 0 ⇒ 200).
#![no_main]

use authpi_idp::{Client, Config, ProviderMetadata, UnixTime};
use authpi_idp_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [s, body @ ..] = data else { return };
    let status = if *s == 0 {
        200
    } else {
        100 + u16::from(*s) * 2
    };
    let resp = response(status, &[], body.to_vec());
    for expected in [ISSUER, "https://idp.test/i_fuzz/"] {
        let Ok(meta) = ProviderMetadata::from_response(&resp, expected, UnixTime(NOW)) else {
            continue;
        };
        assert_eq!(status, 200);
        // Only the configured issuer may carry an extra trailing slash (DESIGN §4).
        assert!(meta.issuer() == expected || expected.strip_suffix('/') == Some(meta.issuer()));
        assert_eq!(meta.fetched_at(), Some(UnixTime(NOW)));
        let _ = (
            meta.authorization_endpoint(),
            meta.token_endpoint(),
            meta.userinfo_endpoint(),
            meta.jwks_uri(),
            meta.end_session_endpoint(),
            meta.signing_algorithms(),
            meta.authorization_response_iss_parameter_supported(),
            meta.is_stale(UnixTime(NOW)),
        );
        let json = serde_json::to_vec(&meta).unwrap_or_default();
        let back: ProviderMetadata = serde_json::from_slice(&json)
            .unwrap_or_else(|e| panic!("metadata does not round-trip: {e}"));
        assert_eq!(back, meta);
        let Ok(config) = Config::builder(ISSUER, CLIENT_ID)
            .client_secret("secret_web")
            .redirect_uri("https://app.example.com/callback")
            .build()
        else {
            panic!("fixed config refused")
        };
        if let Ok(client) = Client::with_metadata(config, meta) {
            // Back-channel endpoints must be https (the issuer is not loopback).
            assert_eq!(client.metadata().token_endpoint().scheme(), "https");
            assert_eq!(client.metadata().jwks_uri().scheme(), "https");
            let _ = client.jwks_request();
            let _ = client.logout_url(&authpi_idp::LogoutRequest::new());
        }
    }
});
