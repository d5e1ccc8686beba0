//! Whole flows against the sans-IO handler.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use authpi_idp_testkit::{Alg, Client, Issuer, Membership, TestKey, at_hash, jwt};
use common::*;
use http::Request;
use serde_json::{Value, json};

#[test]
fn full_flow_authorize_token_userinfo_refresh_replay_revoke_introspect() {
    let mut idp = demo();
    let keys = jwks(&mut idp);

    // authorize → redirect with code, state, session_state (no iss by default)
    let q = authorize(&mut idp, "client_web", WEB_REDIRECT, &[], T0);
    assert_eq!(q["state"], "st-1");
    assert!(q.contains_key("session_state"));
    assert!(!q.contains_key("iss"));

    // code → tokens (client_secret_basic)
    let resp = post(
        &mut idp,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", WEB_REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        Some(("client_web", "secret_web")),
        T0 + 5,
    );
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let tokens = body(&resp);
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 1800);
    assert_eq!(tokens["scope"], "openid profile email");
    let at = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();
    let idt = tokens["id_token"].as_str().unwrap();

    // Access token: RFC 9068 shape, verifiable with the published JWKS.
    let (h, c) = verify_with_jwks(&keys, at).expect("access token verifies");
    assert_eq!(h["typ"], "at+jwt");
    assert_eq!(h["alg"], "ES256");
    assert_eq!(c["iss"], ISS);
    assert_eq!(c["sub"], "usr_alice");
    assert_eq!(c["aud"], "client_web");
    assert_eq!(c["client_id"], "client_web");
    assert_eq!(c["iat"], T0 + 5);
    assert_eq!(c["auth_time"], T0 + 5);
    assert_eq!(c["exp"], T0 + 5 + 1800);
    assert_eq!(c["jti"].as_str().unwrap().len(), 18);
    assert!(c["sid"].as_str().unwrap().starts_with("s_"));
    assert_eq!(c["dat"], json!({"type": "identity"}));
    assert_eq!(c["scope"], "openid profile email");
    assert_eq!(
        c["organizations"],
        json!([
            {"id": "org_acme", "title": "Founder", "scopes": ["owner", "projects:**", "users:read"], "joined_at": 1767312000},
            {"id": "org_globex", "title": null, "scopes": ["billing:read"], "joined_at": 1767312000}
        ])
    );

    // ID token: no typ, login time as auth_time, nonce, at_hash, profile + email claims.
    let (h, c) = verify_with_jwks(&keys, idt).expect("id token verifies");
    assert!(h.get("typ").is_none());
    assert_eq!(c["aud"], "client_web");
    assert_eq!(c["nonce"], "n-1");
    assert_eq!(c["auth_time"], T0);
    assert_eq!(c["exp"], T0 + 5 + 3600);
    assert_eq!(c["at_hash"], at_hash(Alg::Es256, at));
    assert_eq!(c["email"], "alice@example.com");
    assert_eq!(c["email_verified"], true);
    assert_eq!(c["name"], "Alice Example");
    assert!(c.get("org_id").is_none());

    // Refresh token: signed JWT without typ.
    let (h, _) = verify_with_jwks(&keys, rt).expect("refresh token verifies");
    assert!(h.get("typ").is_none());

    // userinfo
    let ui = userinfo(&mut idp, at, T0 + 10);
    assert_eq!(ui.status(), 200);
    let ui = body(&ui);
    assert_eq!(ui["sub"], "usr_alice");
    assert_eq!(ui["email"], "alice@example.com");
    assert_eq!(ui["name"], "Alice Example");
    assert_eq!(ui["organizations"].as_array().unwrap().len(), 2);
    assert!(ui["created_at"].is_u64() && ui["updated_at"].is_u64());

    // refresh rotates
    let r1 = refresh(&mut idp, rt, &[], T0 + 100);
    assert_eq!(r1.status(), 200);
    let r1 = body(&r1);
    let rt2 = r1["refresh_token"].as_str().unwrap();
    let at2 = r1["access_token"].as_str().unwrap();
    assert_ne!(rt2, rt);
    let (_, idc) = verify_with_jwks(&keys, r1["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(idc["auth_time"], T0, "refresh keeps the real login time");
    assert_eq!(idc["sub"], "usr_alice");
    assert_eq!(userinfo(&mut idp, at2, T0 + 101).status(), 200);

    // replaying the used refresh token ⇒ invalid_grant, and the whole family dies
    let replay = refresh(&mut idp, rt, &[], T0 + 200);
    assert_eq!(replay.status(), 400);
    assert_eq!(replay.headers()["cache-control"], "no-store");
    assert_eq!(body(&replay)["error"], "invalid_grant");
    let after = refresh(&mut idp, rt2, &[], T0 + 201);
    assert_eq!(body(&after)["error"], "invalid_grant");
    let ui = userinfo(&mut idp, at2, T0 + 202);
    assert_eq!(ui.status(), 401);
    assert!(
        ui.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\"")
    );

    // new login; revoke the access token; introspection says inactive
    let t = login_web(&mut idp, &[], T0 + 300);
    let at3 = t["access_token"].as_str().unwrap();
    let basic = Some(("client_web", "secret_web"));
    let intro = post(&mut idp, "/introspect", &[("token", at3)], basic, T0 + 301);
    let intro = body(&intro);
    assert_eq!(intro["active"], true);
    assert_eq!(intro["token_type"], "access_token");
    assert_eq!(intro["sub"], "usr_alice");
    let rev = post(&mut idp, "/revoke", &[("token", at3)], basic, T0 + 302);
    assert_eq!(rev.status(), 200);
    let intro = post(&mut idp, "/introspect", &[("token", at3)], basic, T0 + 303);
    assert_eq!(body(&intro), json!({"active": false}));
    assert_eq!(userinfo(&mut idp, at3, T0 + 304).status(), 401);

    // revoke the refresh token: refresh fails afterwards
    let rt3 = t["refresh_token"].as_str().unwrap();
    let pairs = [("token", rt3), ("token_type_hint", "refresh_token")];
    assert_eq!(
        post(&mut idp, "/revoke", &pairs, basic, T0 + 305).status(),
        200
    );
    assert_eq!(
        body(&refresh(&mut idp, rt3, &[], T0 + 306))["error"],
        "invalid_grant"
    );

    let s = idp.stats();
    assert_eq!(s.authorize_requests, 2);
    assert_eq!(s.token_requests, 6);
    assert_eq!(s.code_requests, 2);
    assert_eq!(s.refresh_requests, 4);
    assert_eq!(s.userinfo_requests, 4);
    assert_eq!(s.revoke_requests, 2);
    assert_eq!(s.introspect_requests, 2);
    assert_eq!(s.jwks_requests, 1);
}

fn code_exchange(
    idp: &mut Issuer,
    code: &str,
    redirect: &str,
    verifier: &str,
    now: u64,
) -> http::Response<Vec<u8>> {
    post(
        idp,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
            ("client_id", "client_web"),
            ("client_secret", "secret_web"),
        ],
        None,
        now,
    )
}

#[test]
fn code_grant_failures_are_invalid_grant() {
    // (case, verifier, redirect_uri at /token, seconds after issue)
    let cases = [
        ("pkce mismatch", "x".repeat(43), WEB_REDIRECT, 1),
        ("verifier too short", "abc".to_owned(), WEB_REDIRECT, 1),
        (
            "redirect mismatch",
            VERIFIER.to_owned(),
            "https://app.example.com/other",
            1,
        ),
        ("expired after 60 s", VERIFIER.to_owned(), WEB_REDIRECT, 60),
    ];
    for (case, verifier, redirect, delay) in cases {
        let mut idp = demo();
        let q = authorize(&mut idp, "client_web", WEB_REDIRECT, &[], T0);
        let resp = code_exchange(&mut idp, &q["code"], redirect, &verifier, T0 + delay);
        assert_eq!(resp.status(), 400, "{case}");
        assert_eq!(body(&resp)["error"], "invalid_grant", "{case}");
        // And the happy path with the same code still works when not expired (59 s ok).
        if delay < 60 {
            let ok = code_exchange(&mut idp, &q["code"], WEB_REDIRECT, VERIFIER, T0 + 59);
            assert_eq!(
                ok.status(),
                200,
                "{case}: code not consumed by a failed attempt"
            );
        }
    }
}

#[test]
fn code_replay_is_invalid_grant_and_revokes_issued_tokens() {
    let mut idp = demo();
    let q = authorize(&mut idp, "client_web", WEB_REDIRECT, &[], T0);
    let first = body(&code_exchange(
        &mut idp,
        &q["code"],
        WEB_REDIRECT,
        VERIFIER,
        T0 + 1,
    ));
    let at = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&mut idp, at, T0 + 2).status(), 200);
    let replay = code_exchange(&mut idp, &q["code"], WEB_REDIRECT, VERIFIER, T0 + 3);
    assert_eq!(body(&replay)["error"], "invalid_grant");
    assert_eq!(userinfo(&mut idp, at, T0 + 4).status(), 401);
    let rt = first["refresh_token"].as_str().unwrap();
    assert_eq!(
        body(&refresh(&mut idp, rt, &[], T0 + 5))["error"],
        "invalid_grant"
    );
}

#[test]
fn code_is_bound_to_its_client() {
    let mut idp = demo();
    let q = authorize(
        &mut idp,
        "client_native",
        "http://127.0.0.1:5555/callback",
        &[],
        T0,
    );
    // client_web presents client_native's code.
    let resp = code_exchange(
        &mut idp,
        &q["code"],
        "http://127.0.0.1:5555/callback",
        VERIFIER,
        T0 + 1,
    );
    assert_eq!(body(&resp)["error"], "invalid_grant");
    // The public client itself (no secret) succeeds, EdDSA-signed.
    let resp = post(
        &mut idp,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", "http://127.0.0.1:5555/callback"),
            ("code_verifier", VERIFIER),
            ("client_id", "client_native"),
        ],
        None,
        T0 + 2,
    );
    assert_eq!(resp.status(), 200);
    let t = body(&resp);
    let header = jwt::decode_header(t["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let claims = jwt::decode_claims(t["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(
        claims["at_hash"],
        at_hash(Alg::EdDsa, t["access_token"].as_str().unwrap())
    );
}

#[test]
fn redirect_uri_rules() {
    // (client, redirect_uri, accepted)
    let cases = [
        ("client_web", "https://app.example.com/callback", true),
        ("client_web", "http://127.0.0.1/callback", true),
        ("client_web", "http://127.0.0.1:49152/callback", true),
        ("client_native", "http://127.0.0.1:8080/callback", true),
        ("client_native", "com.example.app:/callback", true),
        ("client_web", "https://app.example.com/callback/", false),
        ("client_web", "https://app.example.com:8443/callback", false),
        ("client_web", "https://app.example.com/callback?x=1", false),
        ("client_web", "http://localhost:8080/callback", false),
        ("client_web", "http://127.0.0.1:8080/other", false),
        ("client_web", "https://127.0.0.1:8080/callback", false),
        ("client_web", "https://evil.example/callback", false),
        ("client_native", "https://app.example.com/callback", false),
    ];
    for (client, redirect, accepted) in cases {
        let mut idp = demo();
        let challenge = authpi_idp_testkit::pkce_challenge(VERIFIER);
        let q = form(&[
            ("client_id", client),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s"),
            ("nonce", "n"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]);
        let resp = get(&mut idp, &format!("/authorize?{q}"), T0);
        if accepted {
            let loc = location(&resp);
            assert!(loc.starts_with(redirect), "{client} {redirect}: {loc}");
            assert!(query_of(&loc).contains_key("code"), "{client} {redirect}");
        } else {
            assert_eq!(resp.status(), 400, "{client} {redirect}");
            assert!(resp.headers().get("location").is_none());
            assert_eq!(
                body(&resp)["error"],
                "invalid_request",
                "{client} {redirect}"
            );
        }
    }
}

#[test]
fn unknown_client_is_a_400_page() {
    let mut idp = demo();
    let resp = get(
        &mut idp,
        "/authorize?client_id=nope&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback",
        T0,
    );
    assert_eq!(resp.status(), 400);
    assert_eq!(body(&resp)["error"], "invalid_client");
}

#[test]
fn authorize_errors_go_back_by_redirect() {
    // (extra params, expected error)
    let cases: [(&[(&str, &str)], &str); 9] = [
        (&[("scope", "profile email")], "invalid_scope"),
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("code_challenge", "")], "invalid_request"),
        (&[("nonce", "")], "invalid_request"),
        (&[("prompt", "bogus")], "invalid_request"),
        (&[("max_age", "-1")], "invalid_request"),
        (&[("org", "org_initech")], "access_denied"),
        (&[("resource", "not a uri")], "invalid_target"),
    ];
    for (extra, expected) in cases {
        let mut idp = demo();
        let q = authorize(&mut idp, "client_web", WEB_REDIRECT, extra, T0);
        assert_eq!(
            q.get("error").map(String::as_str),
            Some(expected),
            "{extra:?}"
        );
        assert_eq!(q["state"], "st-1", "{extra:?}");
        assert!(q.contains_key("error_description"));
        assert!(!q.contains_key("code"));
    }
}

#[test]
fn blocked_user_and_no_user() {
    let mut idp = demo();
    idp.block_user("usr_alice");
    let q = authorize(&mut idp, "client_web", WEB_REDIRECT, &[], T0);
    assert_eq!(q["error"], "user_blocked");
    idp.unblock_user("usr_alice");
    let t = login_web(&mut idp, &[], T0);
    idp.block_user("usr_alice");
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&mut idp, at, T0 + 1).status(), 401);
    let r = refresh(&mut idp, t["refresh_token"].as_str().unwrap(), &[], T0 + 2);
    assert_eq!(body(&r)["error"], "user_blocked");
    idp.clear_current_user();
    let q = authorize(
        &mut idp,
        "client_web",
        WEB_REDIRECT,
        &[("prompt", "none")],
        T0,
    );
    assert_eq!(q["error"], "login_required");
}

#[test]
fn replaying_a_spent_refresh_token_revokes_the_grant_only_when_configured() {
    // (replay_revokes_grant, does the rotated token still refresh after the replay)
    for (revokes, rotated_survives) in [(true, false), (false, true)] {
        let mut idp = Issuer::authpi_demo(ISS)
            .replay_revokes_grant(revokes)
            .build()
            .unwrap();
        let t = login_web(&mut idp, &[], T0);
        let rt = t["refresh_token"].as_str().unwrap();
        let rotated = body(&refresh(&mut idp, rt, &[], T0 + 1));
        let rt2 = rotated["refresh_token"].as_str().unwrap();
        let replay = refresh(&mut idp, rt, &[], T0 + 2);
        assert_eq!(body(&replay)["error"], "invalid_grant", "revokes={revokes}");
        let after = refresh(&mut idp, rt2, &[], T0 + 3);
        assert_eq!(after.status() == 200, rotated_survives, "revokes={revokes}");
    }
}

#[test]
fn refresh_scope_narrowing_widening_and_full_grant_kept() {
    let mut idp = demo();
    let t = login_web(&mut idp, &[], T0);
    let rt = t["refresh_token"].as_str().unwrap();
    let wide = refresh(&mut idp, rt, &[("scope", "openid email phone")], T0 + 1);
    assert_eq!(wide.status(), 400);
    assert_eq!(body(&wide)["error"], "invalid_scope");
    // Widening did not consume the token.
    let narrow = body(&refresh(&mut idp, rt, &[("scope", "openid email")], T0 + 2));
    assert_eq!(narrow["scope"], "openid email");
    let c = jwt::decode_claims(narrow["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(c["scope"], "openid email");
    let idc = jwt::decode_claims(narrow["id_token"].as_str().unwrap()).unwrap();
    assert!(idc.get("name").is_none(), "profile was narrowed away");
    // The rotated token still carries the whole grant.
    let rt2 = narrow["refresh_token"].as_str().unwrap();
    let full = body(&refresh(&mut idp, rt2, &[], T0 + 3));
    assert_eq!(full["scope"], "openid profile email");
}

#[test]
fn org_selection_restricts_and_memberships_are_reread() {
    let mut idp = demo();
    let t = login_web(&mut idp, &[("org", "org_acme")], T0);
    let c = jwt::decode_claims(t["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(c["org_id"], "org_acme");
    assert_eq!(c["organizations"].as_array().unwrap().len(), 1);
    let idc = jwt::decode_claims(t["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(idc["org_id"], "org_acme");
    let rtc = jwt::decode_claims(t["refresh_token"].as_str().unwrap()).unwrap();
    assert_eq!(rtc["org_id"], "org_acme");

    // membership change shows up at refresh
    idp.set_membership(
        "usr_alice",
        Membership::new("org_acme", &["member"]).title("Alumna"),
    );
    let r = body(&refresh(
        &mut idp,
        t["refresh_token"].as_str().unwrap(),
        &[],
        T0 + 10,
    ));
    let c = jwt::decode_claims(r["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(c["org_id"], "org_acme", "org restriction kept");
    assert_eq!(
        c["organizations"],
        json!([{"id": "org_acme", "title": "Alumna", "scopes": ["member"], "joined_at": 1767312000}])
    );
    // and at userinfo
    let ui = body(&userinfo(
        &mut idp,
        r["access_token"].as_str().unwrap(),
        T0 + 11,
    ));
    assert_eq!(ui["org_id"], "org_acme");
    assert_eq!(ui["organizations"][0]["scopes"], json!(["member"]));

    // membership gone ⇒ refresh refused
    idp.remove_membership("usr_alice", "org_acme");
    let gone = refresh(&mut idp, r["refresh_token"].as_str().unwrap(), &[], T0 + 20);
    assert_eq!(body(&gone)["error"], "invalid_grant");

    // inactive orgs are left out
    let mut idp = demo();
    idp.set_org_active("org_globex", false);
    let t = login_web(&mut idp, &[], T0);
    let c = jwt::decode_claims(t["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(c["organizations"].as_array().unwrap().len(), 1);
}

#[test]
fn resource_indicators_set_the_audience() {
    let mut idp = demo();
    let extra = [
        ("resource", "https://api.example.com"),
        ("resource", "https://billing.example.com"),
    ];
    // authorize() replaces same-named params, so build the two resources by hand
    let challenge = authpi_idp_testkit::pkce_challenge(VERIFIER);
    let mut pairs = vec![
        ("client_id", "client_web"),
        ("redirect_uri", WEB_REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "s"),
        ("nonce", "n"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    pairs.extend_from_slice(&extra);
    let q = query_of(&location(&get(
        &mut idp,
        &format!("/authorize?{}", form(&pairs)),
        T0,
    )));
    let t = body(&code_exchange(
        &mut idp,
        &q["code"],
        WEB_REDIRECT,
        VERIFIER,
        T0 + 1,
    ));
    let c = jwt::decode_claims(t["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(c["aud"], "https://api.example.com");
    let rt = t["refresh_token"].as_str().unwrap();
    let r = body(&refresh(
        &mut idp,
        rt,
        &[("resource", "https://billing.example.com")],
        T0 + 2,
    ));
    let c = jwt::decode_claims(r["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(c["aud"], "https://billing.example.com");
    let rt = r["refresh_token"].as_str().unwrap();
    let bad = refresh(
        &mut idp,
        rt,
        &[("resource", "https://other.example.com")],
        T0 + 3,
    );
    assert_eq!(body(&bad)["error"], "invalid_target");
}

#[test]
fn id_token_on_refresh_switch() {
    let mut idp = Issuer::authpi_demo(ISS)
        .client(
            Client::confidential("client_web", "secret_web", &[WEB_REDIRECT])
                .id_token_on_refresh(false),
        )
        .build()
        .unwrap();
    let t = login_web(&mut idp, &[], T0);
    assert!(t.get("id_token").is_some());
    let r = body(&refresh(
        &mut idp,
        t["refresh_token"].as_str().unwrap(),
        &[],
        T0 + 1,
    ));
    assert!(r.get("id_token").is_none());
    assert!(r.get("refresh_token").is_some());
}

#[test]
fn client_credentials_m2m_and_agent() {
    // (client, secret, expected ttl, dat type, alg)
    let cases = [
        ("c_m2m", "secret_m2m", 1800, "key", "RS256"),
        ("agt_bot", "secret_bot", 300, "agent", "ES256"),
    ];
    for (id, secret, ttl, dat, alg) in cases {
        let mut idp = demo();
        let keys = jwks(&mut idp);
        let resp = post(
            &mut idp,
            "/token",
            &[("grant_type", "client_credentials")],
            Some((id, secret)),
            T0,
        );
        assert_eq!(resp.status(), 200, "{id}");
        let t = body(&resp);
        assert_eq!(t["expires_in"], ttl, "{id}");
        assert!(
            t.get("refresh_token").is_none() && t.get("id_token").is_none(),
            "{id}"
        );
        let (h, c) = verify_with_jwks(&keys, t["access_token"].as_str().unwrap()).unwrap();
        assert_eq!(h["alg"], alg);
        assert_eq!(c["sub"], id);
        assert_eq!(c["dat"]["type"], dat);
        assert_eq!(c["exp"], T0 + ttl);
        assert!(c.get("sid").is_none());
        let wrong = post(
            &mut idp,
            "/token",
            &[("grant_type", "client_credentials"), ("scope", "admin:*")],
            Some((id, secret)),
            T0,
        );
        assert_eq!(body(&wrong)["error"], "invalid_scope", "{id}");
    }
    let mut idp = demo();
    let resp = post(
        &mut idp,
        "/token",
        &[("grant_type", "client_credentials")],
        Some(("client_web", "secret_web")),
        T0,
    );
    assert_eq!(body(&resp)["error"], "unauthorized_client");
}

#[test]
fn client_authentication_failures() {
    // (form pairs, basic, expected status, expected error)
    let cc = ("grant_type", "client_credentials");
    type Case<'a> = (
        Vec<(&'a str, &'a str)>,
        Option<(&'a str, &'a str)>,
        u16,
        &'a str,
    );
    let cases: [Case; 6] = [
        (vec![cc], Some(("c_m2m", "wrong")), 401, "invalid_client"),
        (
            vec![cc, ("client_id", "c_m2m"), ("client_secret", "wrong")],
            None,
            401,
            "invalid_client",
        ),
        (
            vec![cc, ("client_id", "c_m2m")],
            None,
            401,
            "invalid_client",
        ),
        (vec![cc], None, 401, "invalid_client"),
        (
            vec![cc, ("client_secret", "secret_m2m")],
            Some(("c_m2m", "secret_m2m")),
            400,
            "invalid_request",
        ),
        (
            vec![("grant_type", "password")],
            Some(("c_m2m", "secret_m2m")),
            400,
            "unsupported_grant_type",
        ),
    ];
    for (pairs, basic, status, error) in cases {
        let mut idp = demo();
        let resp = post(&mut idp, "/token", &pairs, basic, T0);
        assert_eq!(resp.status(), status, "{pairs:?}");
        assert_eq!(body(&resp)["error"], error, "{pairs:?}");
        assert_eq!(resp.headers()["cache-control"], "no-store");
    }
    // Basic credentials are form-urlencoded (RFC 6749 §2.3.1).
    let mut idp = Issuer::authpi_demo(ISS)
        .client(Client::m2m("c_odd", "p@ss:w rd", &["a:b"]))
        .build()
        .unwrap();
    let resp = post(
        &mut idp,
        "/token",
        &[cc],
        Some(("c_odd", "p%40ss%3Aw+rd")),
        T0,
    );
    assert_eq!(resp.status(), 200);
}

#[test]
fn introspection_only_for_the_owning_client() {
    let mut idp = demo();
    let t = login_web(&mut idp, &[], T0);
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    let other = post(
        &mut idp,
        "/introspect",
        &[("token", at)],
        Some(("c_m2m", "secret_m2m")),
        T0 + 1,
    );
    assert_eq!(body(&other), json!({"active": false}));
    let own = body(&post(
        &mut idp,
        "/introspect",
        &[("token", rt)],
        Some(("client_web", "secret_web")),
        T0 + 1,
    ));
    assert_eq!(own["active"], true);
    assert_eq!(own["token_type"], "refresh_token");
    // another client's revoke is a silent no-op
    let rev = post(
        &mut idp,
        "/revoke",
        &[("token", at)],
        Some(("c_m2m", "secret_m2m")),
        T0 + 2,
    );
    assert_eq!(rev.status(), 200);
    assert_eq!(userinfo(&mut idp, at, T0 + 3).status(), 200);
    // unknown tokens revoke fine; expiry makes introspection inactive
    let rev = post(
        &mut idp,
        "/revoke",
        &[("token", "garbage")],
        Some(("client_web", "secret_web")),
        T0 + 4,
    );
    assert_eq!(rev.status(), 200);
    let late = post(
        &mut idp,
        "/introspect",
        &[("token", at)],
        Some(("client_web", "secret_web")),
        T0 + 1800,
    );
    assert_eq!(body(&late)["active"], false);
}

#[test]
fn key_rotation() {
    let mut idp = demo();
    let before = jwks(&mut idp);
    let kids = |j: &Value| -> Vec<String> {
        j["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let k0 = kids(&before);
    assert_eq!(k0.len(), 6);
    for k in before["keys"].as_array().unwrap() {
        assert_eq!(k["use"], "sig");
        let kid = k["kid"].as_str().unwrap();
        assert_eq!(kid.len(), 36, "UUID-like");
        assert_eq!(kid.matches('-').count(), 4);
        match k["alg"].as_str().unwrap() {
            "ES256" => assert!(k["kty"] == "EC" && k["crv"] == "P-256" && k["y"].is_string()),
            "EdDSA" => assert!(k["kty"] == "OKP" && k["crv"] == "Ed25519" && k["x"].is_string()),
            "RS256" => assert!(k["kty"] == "RSA" && k["n"].is_string() && k["e"] == "AQAB"),
            other => panic!("unexpected alg {other}"),
        }
    }
    let resp = get(&mut idp, "/jwks.json", T0);
    assert_eq!(resp.headers()["cache-control"], "public, max-age=3600");

    let old = login_web(&mut idp, &[], T0);
    let old_at = old["access_token"].as_str().unwrap();
    let old_kid = jwt::decode_header(old_at).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        k0[..3].contains(&old_kid),
        "signs with the newest generation (listed first)"
    );

    idp.rotate_keys().unwrap();
    let after = jwks(&mut idp);
    let k1 = kids(&after);
    assert_eq!(k1.len(), 6);
    assert_eq!(&k1[3..], &k0[..3], "previous newest generation kept");
    assert!(k1[..3].iter().all(|k| !k0.contains(k)), "new generation");
    let new = login_web(&mut idp, &[], T0 + 1);
    let new_kid = jwt::decode_header(new["access_token"].as_str().unwrap()).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(k1[..3].contains(&new_kid));
    // still verifiable: its key is published
    assert!(verify_with_jwks(&after, old_at).is_some());
    assert_eq!(userinfo(&mut idp, old_at, T0 + 2).status(), 200);

    idp.rotate_keys().unwrap();
    let gone = jwks(&mut idp);
    assert!(verify_with_jwks(&gone, old_at).is_none());
    assert_eq!(
        userinfo(&mut idp, old_at, T0 + 3).status(),
        401,
        "key dropped"
    );
}

#[test]
fn fault_injection_once_and_counted() {
    let mut idp = demo();
    let mut limited = http::Response::new(Vec::new());
    *limited.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
    limited
        .headers_mut()
        .insert("retry-after", "7".parse().unwrap());
    idp.push_response("/token", limited);
    idp.push_response("/token", http::Response::new(b"{not json".to_vec()));
    let t = login_web_expect_raw(&mut idp);
    assert_eq!(t.0, 429);
    assert_eq!(t.1, "7");
    let second = refresh(&mut idp, "whatever", &[], T0);
    assert_eq!(second.body(), b"{not json");
    let third = refresh(&mut idp, "whatever", &[], T0);
    assert_eq!(body(&third)["error"], "invalid_grant", "back to normal");
    assert_eq!(idp.stats().token_requests, 3);
    assert_eq!(idp.stats().refresh_requests, 2);
}

fn login_web_expect_raw(idp: &mut Issuer) -> (u16, String) {
    let q = authorize(idp, "client_web", WEB_REDIRECT, &[], T0);
    let r = code_exchange(idp, &q["code"], WEB_REDIRECT, VERIFIER, T0);
    (
        r.status().as_u16(),
        r.headers()["retry-after"].to_str().unwrap().to_owned(),
    )
}

#[test]
fn discovery_and_rfc9207_switch() {
    let mut idp = demo();
    let d = body(&get(&mut idp, "/.well-known/openid-configuration", T0));
    assert_eq!(d["issuer"], ISS);
    for (k, suffix) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks.json"),
        ("revocation_endpoint", "/revoke"),
        ("introspection_endpoint", "/introspect"),
        ("end_session_endpoint", "/logout"),
    ] {
        assert_eq!(d[k], format!("{ISS}{suffix}"), "{k}");
    }
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "RS256"])
    );
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert!(
        d.get("authorization_response_iss_parameter_supported")
            .is_none()
    );
    let q = authorize(&mut idp, "client_web", WEB_REDIRECT, &[], T0);
    assert!(!q.contains_key("iss"));

    let mut idp = Issuer::authpi_demo(ISS)
        .authorization_response_iss(true)
        .build()
        .unwrap();
    let d = body(&get(&mut idp, "/.well-known/openid-configuration", T0));
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    let q = authorize(&mut idp, "client_web", WEB_REDIRECT, &[], T0);
    assert_eq!(q["iss"], ISS);
    let q = authorize(
        &mut idp,
        "client_web",
        WEB_REDIRECT,
        &[("scope", "email")],
        T0,
    );
    assert_eq!(q["iss"], ISS, "error redirects carry iss too");
    assert_eq!(idp.stats().discovery_requests, 1);
}

#[test]
fn logout() {
    let mut idp = demo();
    let t = login_web(&mut idp, &[], T0);
    let idt = t["id_token"].as_str().unwrap();
    let sid1 = jwt::decode_claims(idt).unwrap()["sid"].clone();
    let q = form(&[
        ("id_token_hint", idt),
        (
            "post_logout_redirect_uri",
            "https://app.example.com/logged-out",
        ),
        ("state", "bye"),
    ]);
    let loc = location(&get(&mut idp, &format!("/logout?{q}"), T0 + 10));
    assert_eq!(loc, "https://app.example.com/logged-out?state=bye");
    // a new login is a new session with a new login time
    let t2 = login_web(&mut idp, &[], T0 + 20);
    let c2 = jwt::decode_claims(t2["id_token"].as_str().unwrap()).unwrap();
    assert_ne!(c2["sid"], sid1);
    assert_eq!(c2["auth_time"], T0 + 20);

    let q = form(&[
        ("id_token_hint", idt),
        ("post_logout_redirect_uri", "https://evil.example/"),
    ]);
    let resp = get(&mut idp, &format!("/logout?{q}"), T0);
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("location").is_none());
    assert_eq!(get(&mut idp, "/logout", T0).status(), 400);
    // an access token is not an id_token_hint; nor is a forged token
    let q = form(&[("id_token_hint", t2["access_token"].as_str().unwrap())]);
    assert_eq!(get(&mut idp, &format!("/logout?{q}"), T0).status(), 400);
    let forged = TestKey::generate(Alg::Es256, "forged").unwrap();
    let fake = forged
        .sign_claims(
            None,
            &json!({"iss": ISS, "sub": "usr_alice", "aud": "client_web", "nonce": "n"}),
        )
        .unwrap();
    assert_eq!(
        get(
            &mut idp,
            &format!("/logout?{}", form(&[("id_token_hint", &fake)])),
            T0
        )
        .status(),
        400
    );
}

#[test]
fn session_auth_time_and_max_age() {
    let mut idp = demo();
    let t = login_web(&mut idp, &[], T0);
    let c = jwt::decode_claims(t["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(c["auth_time"], T0);
    // same session later: auth_time stays
    let t = login_web(&mut idp, &[], T0 + 500);
    assert_eq!(
        jwt::decode_claims(t["id_token"].as_str().unwrap()).unwrap()["auth_time"],
        T0
    );
    // max_age exceeded ⇒ re-login
    let t = login_web(&mut idp, &[("max_age", "100")], T0 + 600);
    assert_eq!(
        jwt::decode_claims(t["id_token"].as_str().unwrap()).unwrap()["auth_time"],
        T0 + 600
    );
    // prompt=login ⇒ re-login
    let t = login_web(&mut idp, &[("prompt", "login")], T0 + 700);
    assert_eq!(
        jwt::decode_claims(t["id_token"].as_str().unwrap()).unwrap()["auth_time"],
        T0 + 700
    );
}

#[test]
fn userinfo_custom_claims_and_bad_tokens() {
    let mut idp = Issuer::authpi_demo(ISS)
        .user(
            authpi_idp_testkit::User::new("usr_bob")
                .email("bob@example.com", false)
                .custom_claim("plan", json!("pro")),
        )
        .current_user("usr_bob")
        .build()
        .unwrap();
    let t = login_web(&mut idp, &[], T0);
    let ui = body(&userinfo(&mut idp, t["access_token"].as_str().unwrap(), T0));
    assert_eq!(ui["sub"], "usr_bob");
    assert_eq!(ui["plan"], "pro");
    assert_eq!(ui["email_verified"], false);
    assert_eq!(ui["organizations"], json!([]));
    // an ID token or refresh token is not an access token; expiry; forged signature
    for tok in [
        t["id_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    ] {
        assert_eq!(userinfo(&mut idp, tok, T0).status(), 401);
    }
    assert_eq!(
        userinfo(&mut idp, t["access_token"].as_str().unwrap(), T0 + 1800).status(),
        401
    );
    let claims = jwt::decode_claims(t["access_token"].as_str().unwrap()).unwrap();
    let kid = jwt::decode_header(t["access_token"].as_str().unwrap()).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let forged = TestKey::generate(Alg::Es256, &kid).unwrap();
    let fake = forged.sign_claims(Some("at+jwt"), &claims).unwrap();
    assert_eq!(userinfo(&mut idp, &fake, T0).status(), 401);
    let none = idp.handle(
        Request::get(format!("{ISS}/userinfo"))
            .body(Vec::new())
            .unwrap(),
        T0,
    );
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
}

#[test]
fn routing() {
    let mut idp = demo();
    assert_eq!(get(&mut idp, "/nope", T0).status(), 404);
    assert_eq!(get(&mut idp, "/token", T0).status(), 405);
    let outside = idp.handle(
        Request::get("https://idp.test/jwks.json")
            .body(Vec::new())
            .unwrap(),
        T0,
    );
    assert_eq!(
        outside.status(),
        404,
        "endpoints live under the issuer path"
    );
    let relative = idp.handle(
        Request::get("/i_test/jwks.json").body(Vec::new()).unwrap(),
        T0,
    );
    assert_eq!(relative.status(), 200, "origin-form URIs work too");
    assert_eq!(idp.stats().other_requests, 2);
}

#[test]
fn test_keys_sign_and_publish_all_algorithms() {
    for alg in [Alg::Es256, Alg::EdDsa, Alg::Rs256, Alg::Ps256] {
        let key = TestKey::generate(alg, "k1").unwrap();
        let jwks = json!({"keys": [key.jwk()]});
        let tok = key
            .sign(&json!({"alg": alg.as_str(), "kid": "k1"}), &json!({"a": 1}))
            .unwrap();
        let (_, c) = verify_with_jwks(&jwks, &tok).unwrap_or_else(|| panic!("{alg} verifies"));
        assert_eq!(c["a"], 1);
        assert_eq!(key.verify(&tok).as_deref(), Some(&b"{\"a\":1}"[..]));
        // tampering breaks it
        let mut bad = tok.clone();
        bad.push('A');
        assert!(key.verify(&bad).is_none(), "{alg}");
        // raw: exact bytes preserved (duplicate members for negative tests)
        let raw = key
            .sign_raw(r#"{"alg":"X","kid":"k1"}"#, r#"{"sub":"a","sub":"b"}"#)
            .unwrap();
        let payload = raw.split('.').nth(1).unwrap();
        assert_eq!(jwt::b64url(br#"{"sub":"a","sub":"b"}"#), payload);
        assert_eq!(Alg::from_name(alg.as_str()), Some(alg));
    }
    let es = TestKey::generate(Alg::Es256, "k").unwrap();
    let sig = es.signature(b"m").unwrap();
    assert_eq!(sig.len(), 64, "ES256 signatures are r||s");
    assert!(!format!("{es:?}").contains("Pair"));
}

#[test]
fn debug_redacts_client_secret() {
    let c = Client::confidential("client_web", "secret_web", &[WEB_REDIRECT]);
    let s = format!("{c:?}");
    assert!(!s.contains("secret_web"), "{s}");
    assert!(s.contains("redacted"));
}

#[test]
fn redirect_uri_matches_rfc8252_loopback() {
    // (registered, candidate, matches)
    let cases = [
        ("http://127.0.0.1/cb", "http://127.0.0.1:1/cb", true),
        ("http://127.0.0.1/cb", "http://127.0.0.1:65535/cb", true),
        ("http://127.0.0.1/cb", "http://127.0.0.1/cb", true),
        ("http://[::1]/cb", "http://[::1]:8080/cb", true),
        ("http://[::1]/cb", "http://127.0.0.1:8080/cb", false),
        ("http://127.0.0.1:80/cb", "http://127.0.0.1:8080/cb", false),
        (
            "http://127.0.0.1:3000/cb",
            "http://127.0.0.1:3001/cb",
            false,
        ),
        ("http://127.0.0.1:3000/cb", "http://127.0.0.1:3000/cb", true),
        ("http://[::1]:3000/cb", "http://[::1]:3001/cb", false),
        (
            "http://127.0.0.1/cb",
            "http://127.0.0.1:8080/cb#frag",
            false,
        ),
        (
            "http://127.0.0.1/cb",
            "http://user@127.0.0.1:8080/cb",
            false,
        ),
        ("http://localhost/cb", "http://localhost:8080/cb", false),
        (
            "https://app.example.com/cb",
            "https://app.example.com:443/cb",
            false,
        ),
    ];
    for (registered, candidate, expected) in cases {
        let c = Client::public("c", &[registered]);
        assert_eq!(
            c.redirect_uri_matches(candidate),
            expected,
            "{registered} vs {candidate}"
        );
    }
}

#[test]
fn garbage_input_gets_4xx_not_a_panic() {
    let mut idp = demo();
    let bodies: [&[u8]; 6] = [
        b"\xff\xfe\x00grant_type=refresh_token&refresh_token=\xff",
        b"grant_type=refresh_token&refresh_token=a.b.c&client_id=client_web&client_secret=secret_web",
        b"grant_type=refresh_token&refresh_token=..&client_id=client_web&client_secret=secret_web",
        b"grant_type=authorization_code&grant_type=authorization_code&client_id=client_web",
        b"%%%%&&&==",
        b"",
    ];
    for b in bodies {
        for path in [
            "/token",
            "/revoke",
            "/introspect",
            "/authorize",
            "/logout",
            "/userinfo",
        ] {
            let req = Request::post(format!("{ISS}{path}"))
                .header("authorization", "Basic %%%")
                .body(b.to_vec())
                .unwrap();
            let status = idp.handle(req, T0).status().as_u16();
            assert!((400..500).contains(&status), "{path} {b:?}: {status}");
        }
    }
    let req = Request::get(format!("{ISS}/userinfo"))
        .header("authorization", "Bearer eyJ.eyJ.sig")
        .body(Vec::new())
        .unwrap();
    assert_eq!(idp.handle(req, T0).status(), 401);
}
