//! Token-endpoint responses (status + headers + body) into a code `Exchange` and a refresh
//! `Session`.
//!
//! Input: `status(2 bytes) ‖ header lines ‖ NUL ‖ body`.
#![no_main]

use authpi_idp::RefreshOptions;
use authpi_idp_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [a, b, rest @ ..] = data else { return };
    let status = u16::from_be_bytes([*a, *b]) % 600;
    let (head, body) = split_nul(rest);
    let head = String::from_utf8_lossy(head);
    let headers = header_lines(&head);
    let resp = || response(status, &headers, body.to_vec());
    let sent_access = access_token_in(body);

    // Code exchange.
    let client = client();
    let tx = transaction();
    let keys = keys_at(NOW);
    if let Ok(mut op) = client.exchange_callback(fixtures::CALLBACK, &tx, &keys) {
        let out = drive(&mut op, NOW, |_| resp());
        assert!(out.persisted.is_empty(), "a code exchange persisted");
        match out.result {
            Ok(agent) => {
                check_exchange_agent(&agent, &keys, Some(&tx.nonce));
                assert_eq!(Some(&agent.tokens().access_token), sent_access.as_ref());
                assert_eq!(status, 200);
            }
            Err(e) => {
                let _ = (e.code(), e.retry_after(), e.status(), e.to_string());
                if let Some(at) = &sent_access {
                    assert_not_leaked(&format!("{e} {e:?}"), at, &[]);
                }
            }
        }
    }

    // Refresh of the stored session.
    let stored = stored_tokens();
    if let Ok(mut op) = client.refresh(stored.clone(), RefreshOptions::new(), &keys) {
        let out = drive(&mut op, LATER, |o| match o.kind {
            authpi_idp::RequestKind::Refresh { .. } => resp(),
            // UserInfo after a refresh without ID token: the real answer.
            _ => response(200, &[], fixtures::USERINFO.to_vec()),
        });
        assert!(out.persisted.len() <= 1);
        assert_eq!(op.refreshed(), !out.persisted.is_empty());
        if let Some(p) = out.persisted.first() {
            assert_eq!(status, 200);
            assert_eq!(Some(&p.access_token), sent_access.as_ref());
            assert!(
                p.refresh_token.is_some(),
                "a refresh lost the refresh token"
            );
            assert!(p.id_token.is_some() || p.subject_hint.as_deref() == Some(SUBJECT));
        }
        match &out.result {
            Ok(agent) => {
                assert_eq!(agent.id(), SUBJECT);
                assert_eq!(Some(agent.tokens()), out.persisted.first());
            }
            Err(e) => {
                if e.is_session_over() {
                    assert!(out.persisted.is_empty());
                }
            }
        }
    }
});
