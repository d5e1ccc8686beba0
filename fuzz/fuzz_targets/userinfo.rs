//! UserInfo responses (and the revocation and introspection processors on the same input): a
//! `CreateAgent` hydrating its identity from UserInfo (stored token set with
//! `subject_hint` and no ID token), and `Client::userinfo_for`.
//!
//! Input: `status(2 bytes) ‖ header lines ‖ NUL ‖ body`.
#![no_main]

use authpi_idp::{Operation, RefreshOptions, Step, TokenSet, UnixTime};
use authpi_idp_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [a, b, rest @ ..] = data else { return };
    let status = u16::from_be_bytes([*a, *b]) % 600;
    let (head, body) = split_nul(rest);
    let head = String::from_utf8_lossy(head);
    let headers = header_lines(&head);
    let resp = || response(status, &headers, body.to_vec());

    let client = client();
    let keys = keys_at(NOW);
    let tokens = TokenSet {
        id_token: None,
        subject_hint: Some(SUBJECT.to_owned()),
        expires_at: NOW + 3_600,
        ..stored_tokens()
    };
    let Ok(mut op) = client.create_agent(tokens.clone(), RefreshOptions::new(), &keys) else {
        panic!("fixed session refused");
    };
    let out = drive(&mut op, NOW, |o| {
        assert!(matches!(o.kind, authpi_idp::RequestKind::UserInfo));
        resp()
    });
    assert!(out.persisted.is_empty(), "no refresh was due");
    if let Ok(agent) = out.result {
        assert_eq!(status, 200);
        assert_eq!(agent.id(), SUBJECT);
        assert_eq!(agent.tokens(), &tokens);
        for org in agent.organizations() {
            let _ = agent.has_access_in(&org.id, "read", "projects");
        }
    }

    // The plain pair: userinfo_for with and without an expected subject.
    for expected in [Some(SUBJECT), None] {
        let Ok(mut single) = client.userinfo_for(&tokens.access_token, expected) else {
            panic!("userinfo_for refused");
        };
        let Ok(Step::Send(_)) = single.poll(UnixTime(NOW)) else {
            panic!("no request")
        };
        single.handle_response(resp());
        if let Ok(Step::Done(info)) = single.poll(UnixTime(NOW)) {
            assert_eq!(status, 200);
            if let Some(e) = expected {
                assert_eq!(info.sub, e);
            }
            assert!(!info.sub.is_empty());
        }
    }

    // The named processors, called directly, agree with the operations that run them.
    let direct = authpi_idp::flow::process_userinfo_response(&resp(), Some(SUBJECT));
    let Ok(mut single) = client.userinfo_for(&tokens.access_token, Some(SUBJECT)) else {
        panic!("userinfo_for refused");
    };
    let Ok(Step::Send(_)) = single.poll(UnixTime(NOW)) else {
        panic!("no request")
    };
    single.handle_response(resp());
    match single.poll(UnixTime(NOW)) {
        Ok(Step::Done(info)) => assert_eq!(direct.ok(), Some(info)),
        Err(e) => assert_eq!(direct.err(), Some(e)),
        Ok(other) => panic!("unexpected step {other:?}"),
    }
    let revoked = authpi_idp::flow::process_revocation_response(&resp());
    assert_eq!(revoked.is_ok(), status == 200);
    if let Ok(info) = authpi_idp::flow::process_introspection_response(&resp()) {
        assert_eq!(status, 200);
        assert_eq!(
            info.claims.get("active").and_then(|v| v.as_bool()),
            Some(info.active)
        );
    }
});
