//! Stored token sets: `TokenSet::from_json`, then `create_agent` (no refresh due, UserInfo
//! answered with the real response when the identity must be hydrated).
#![no_main]

use authpi_idp::{RefreshOptions, TokenSet, UnixTime};
use authpi_idp_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(ts) = TokenSet::from_json(data) else {
        return;
    };
    assert!(!ts.access_token.is_empty());
    // Round trip through the shared (Python-compatible) JSON form.
    let back = TokenSet::from_json(ts.to_json().as_bytes())
        .unwrap_or_else(|e| panic!("a parsed token set does not round-trip: {e}"));
    assert_eq!(back, ts);
    // Debug never shows a token.
    let debug = format!("{ts:?}");
    let public: Vec<&str> = [
        Some(ts.token_type.as_str()),
        ts.scope.as_deref(),
        ts.subject_hint.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let expires = ts.expires_at.to_string();
    let mut public = public;
    public.push(&expires);
    public.push("[redacted]");
    for secret in [
        Some(&ts.access_token),
        ts.refresh_token.as_ref(),
        ts.id_token.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        assert_not_leaked(&debug, secret, &public);
    }
    let _ = (
        ts.expires_in(UnixTime(NOW)),
        ts.is_expired(UnixTime(NOW), u64::MAX),
    );

    let client = client();
    let keys = keys_at(NOW);
    let options = RefreshOptions::new().auto_refresh(false);
    let Ok(mut op) = client.create_agent(ts.clone(), options, &keys) else {
        return;
    };
    let out = drive(&mut op, NOW, |o| {
        assert!(
            matches!(o.kind, authpi_idp::RequestKind::UserInfo),
            "unexpected request"
        );
        response(200, &[], fixtures::USERINFO.to_vec())
    });
    assert!(out.persisted.is_empty());
    if let Ok(agent) = out.result {
        assert_eq!(agent.tokens(), &ts);
        if let Some(id) = &ts.id_token {
            let claims = claims_of(id).unwrap_or_default();
            assert_eq!(claims.get("sub").and_then(|s| s.as_str()), Some(agent.id()));
        } else if ts.subject_hint.is_some() || ts.refresh_token.is_some() {
            assert_eq!(agent.id(), SUBJECT);
            if let Some(h) = &ts.subject_hint {
                assert_eq!(h, SUBJECT);
            }
        } else {
            assert_eq!(agent.id(), CLIENT_ID);
        }
    }
});
