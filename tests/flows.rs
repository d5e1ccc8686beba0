//! Complete flows of the core against the testkit's sans-IO issuer: no sockets, a virtual clock,
//! a seeded RNG.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use authpi_idp::error::{ClaimError, TokenError};
use authpi_idp::{
    AuthorizationRequest, Client, ClientAuth, Config, Error, LogoutRequest, OAuthErrorKind,
    PrincipalType, RequestKind, SessionOptions, TokenSet, TokenTypeHint,
};
use authpi_idp_testkit::{Membership, jwt::decode_header};
use common::{Env, Event, ISS, REFRESH, WEB_REDIRECT, claims_of, web_client, web_config};
use serde_json::json;

fn org_ids(agent: &authpi_idp::Agent) -> Vec<&str> {
    agent
        .organizations()
        .iter()
        .map(|o| o.id.as_str())
        .collect()
}

/// `client_web` re-registered as in the demo fixture, with `id_token_on_refresh` switched.
fn web_registration(id_token_on_refresh: bool) -> authpi_idp_testkit::Client {
    authpi_idp_testkit::Client::confidential(
        "client_web",
        "secret_web",
        &["http://127.0.0.1/callback", WEB_REDIRECT],
    )
    .post_logout_redirect_uri("https://app.example.com/logged-out")
    .id_token_on_refresh(id_token_on_refresh)
}

#[test]
fn login_yields_agent_with_identity_organizations_and_access_decisions() {
    let mut env = Env::demo();
    let client = web_client();
    let (agent, trace) = env.login(
        &client,
        &AuthorizationRequest::new(["openid", "email", "profile"]),
    );
    // Cold key cache: the JWKS is fetched before the code is spent.
    assert_eq!(
        trace.events,
        vec![
            Event::Send(RequestKind::Jwks),
            Event::KeysRefreshed,
            Event::Send(RequestKind::AuthorizationCode),
            Event::Done
        ]
    );
    assert!(trace.persisted.is_empty());
    assert_eq!(env.keys.len(), 6);
    assert_eq!(agent.id(), "usr_alice");
    assert_eq!(agent.principal_type(), PrincipalType::User);
    assert_eq!(agent.email(), Some("alice@example.com"));
    assert_eq!(agent.email_verified(), Some(true));
    assert_eq!(agent.org_id(), None);
    assert_eq!(org_ids(&agent), vec!["org_acme", "org_globex"]);
    let acme = &agent.organizations()[0];
    assert_eq!(acme.title.as_deref(), Some("Founder"));
    assert_eq!(acme.scopes, vec!["owner", "projects:**", "users:read"]);
    assert_eq!(acme.joined_at, 1_767_312_000);
    assert_eq!(agent.organizations()[1].title, None);
    // Access decisions (spec's worked table plus roles).
    let cases = [
        ("org_acme", "read", "projects", true),
        ("org_acme", "write", "projects", true),
        ("org_acme", "delete", "projects.tasks", true),
        ("org_acme", "read", "projects.tasks.comments", true),
        ("org_acme", "read", "users", true),
        ("org_acme", "write", "users", false),
        ("org_acme", "read", "billing", false),
        ("org_globex", "read", "billing", true),
        ("org_globex", "write", "billing", false),
        ("org_globex", "read", "projects", false),
        ("org_other", "read", "projects", false),
    ];
    for (org, action, resource, granted) in cases {
        assert_eq!(
            agent.has_access_in(org, action, resource),
            granted,
            "{org} {action} {resource}"
        );
    }
    assert!(agent.has_access("read", "billing"));
    assert!(!agent.has_access("write", "billing"));
    assert!(agent.is_owner_of("org_acme"));
    assert!(!agent.is_owner_of("org_globex"));
    assert!(!agent.is_admin_of("org_acme"));
    assert!(agent.is_member_of("org_globex"));
    assert!(!agent.is_member_of("org_other"));
    let tokens = agent.tokens();
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_at, env.now + 1800);
    assert!(tokens.refresh_token.is_some());
    assert_eq!(
        claims_of(tokens.id_token.as_ref().unwrap())["sub"],
        "usr_alice"
    );
}

#[test]
fn login_with_org_selects_that_org_only() {
    let mut env = Env::demo();
    let client = web_client();
    let (tx, cb) = env.start_login(
        &client,
        &AuthorizationRequest::new(["openid", "email"]).org("org_acme"),
    );
    assert!(tx.url.contains("&org=org_acme"), "{}", tx.url);
    let keys = env.keys.clone();
    let (agent, _) = env.run(client.exchange_callback(cb.as_str(), &tx, &keys).unwrap());
    let agent = agent.unwrap();
    assert_eq!(agent.org_id(), Some("org_acme"));
    assert_eq!(org_ids(&agent), vec!["org_acme"]);
    assert!(agent.has_access_in("org_acme", "delete", "projects.tasks"));
    assert!(!agent.has_access_in("org_globex", "read", "billing"));
    assert!(!agent.has_access("read", "billing"));
    assert!(!agent.is_member_of("org_globex"));
}

#[test]
fn session_lifecycle_refresh_rotation_hydration_revoke_introspect() {
    let mut env = Env::demo();
    let client = web_client();
    let (agent, _) = env.login(&client, &AuthorizationRequest::new(["openid", "email"]));
    let stored = agent.into_tokens();
    let first_rt = stored.refresh_token.clone().unwrap();

    // Still fresh: create_agent sends nothing.
    env.advance(600);
    let (a, trace) = env.run(
        client
            .create_agent(
                stored.clone(),
                SessionOptions::new(),
                &env.keys.clone(),
                env.now(),
            )
            .unwrap(),
    );
    assert_eq!(trace.events, vec![Event::Done]);
    assert_eq!(a.unwrap().tokens(), &stored);

    // Past expiry: refresh with rotation; Persist comes before anything else.
    env.advance(1800);
    let (a, trace) = env.run(
        client
            .create_agent(
                stored.clone(),
                SessionOptions::new(),
                &env.keys.clone(),
                env.now(),
            )
            .unwrap(),
    );
    let a = a.unwrap();
    assert_eq!(
        trace.events,
        vec![
            Event::Send(refresh_kind(&trace)),
            Event::Persist,
            Event::Done
        ]
    );
    let rotated = trace.persisted[0].clone();
    assert_eq!(a.tokens(), &rotated);
    assert_ne!(rotated.refresh_token.as_deref(), Some(first_rt.as_str()));
    assert_ne!(rotated.access_token, stored.access_token);
    assert_eq!(rotated.expires_at, env.now + 1800);
    assert!(rotated.id_token.is_some());
    assert_eq!(a.id(), "usr_alice");
    assert_eq!(org_ids(&a), vec!["org_acme", "org_globex"]);
    // The single-flight key is the hash of the spent refresh token, not the token.
    let RequestKind::Refresh { token_hash } = trace.sent[0].kind else {
        panic!()
    };
    assert_eq!(
        token_hash.as_slice(),
        ring::digest::digest(&ring::digest::SHA256, first_rt.as_bytes()).as_ref()
    );

    // Replaying the old refresh token: invalid_grant, terminal, nothing persisted.
    let (r, trace) = env.run(
        client
            .refresh(
                stored.clone(),
                SessionOptions::new(),
                &env.keys.clone(),
                env.now(),
            )
            .unwrap(),
    );
    let e = r.unwrap_err();
    assert_eq!(e.code(), "invalid_grant");
    assert!(e.is_session_over());
    assert!(matches!(&e, Error::OAuth(o) if o.kind() == OAuthErrorKind::InvalidGrant));
    assert_eq!(e.status(), Some(400));
    assert!(trace.nothing_out());
    assert_eq!(trace.sends(REFRESH), 1);

    // AuthPI's testkit revokes the whole family on replay: log in again for the next part.
    let (agent, _) = env.login(&client, &AuthorizationRequest::new(["openid", "email"]));
    let stored = agent.into_tokens();

    // Refresh responses without ID token, and a membership change in between.
    env.idp.add_client(web_registration(false));
    env.idp.remove_membership("usr_alice", "org_globex");
    env.idp.set_membership(
        "usr_alice",
        Membership::new("org_initech", &["admin", "reports:read"]).title("CTO"),
    );
    env.advance(1800);
    let (a, trace) = env.run(
        client
            .create_agent(
                stored.clone(),
                SessionOptions::new(),
                &env.keys.clone(),
                env.now(),
            )
            .unwrap(),
    );
    let a = a.unwrap();
    assert_eq!(
        trace.events,
        vec![
            // The cached keys are older than their max-age (3600 s): refetched before the
            // refresh token is spent.
            Event::Send(RequestKind::Jwks),
            Event::KeysRefreshed,
            Event::Send(refresh_kind(&trace)),
            Event::Persist,
            Event::Send(RequestKind::UserInfo),
            Event::Done
        ]
    );
    let rotated = &trace.persisted[0];
    assert_eq!(rotated.id_token, None);
    assert_eq!(rotated.subject_hint.as_deref(), Some("usr_alice"));
    assert_ne!(rotated.refresh_token, stored.refresh_token);
    let userinfo = trace.first(RequestKind::UserInfo);
    assert_eq!(
        userinfo.header("authorization"),
        Some(format!("Bearer {}", rotated.access_token))
    );
    assert_eq!(a.id(), "usr_alice");
    assert_eq!(org_ids(&a), vec!["org_acme", "org_initech"]);
    assert!(a.is_admin_of("org_initech"));
    assert!(!a.is_member_of("org_globex"));
    assert_eq!(a.email(), Some("alice@example.com"));

    // The stored hint alone hydrates on the next request, with no refresh.
    let (a2, trace) = env.run(
        client
            .create_agent(
                rotated.clone(),
                SessionOptions::new(),
                &env.keys.clone(),
                env.now(),
            )
            .unwrap(),
    );
    assert_eq!(
        trace.events,
        vec![Event::Send(RequestKind::UserInfo), Event::Done]
    );
    assert_eq!(a2.unwrap().id(), "usr_alice");

    // Revoke the refresh token: the family is dead; introspection says inactive.
    let (r, trace) = env.run(
        client
            .revoke(
                rotated.refresh_token.as_deref().unwrap(),
                Some(TokenTypeHint::RefreshToken),
            )
            .unwrap(),
    );
    r.unwrap();
    let sent = trace.first(RequestKind::Revocation);
    assert_eq!(sent.form_all("token_type_hint"), vec!["refresh_token"]);
    for token in [
        rotated.refresh_token.clone().unwrap(),
        rotated.access_token.clone(),
    ] {
        let (info, _) = env.run(client.introspect(&token, None).unwrap());
        let info = info.unwrap();
        assert!(!info.active);
        assert_eq!(info.sub, None);
    }
    let (r, trace) = env.run(
        client
            .refresh(
                rotated.clone(),
                SessionOptions::new(),
                &env.keys.clone(),
                env.now(),
            )
            .unwrap(),
    );
    assert_eq!(r.unwrap_err().code(), "invalid_grant");
    assert!(trace.nothing_out());
}

fn refresh_kind(trace: &common::Trace) -> RequestKind {
    trace
        .sent
        .iter()
        .map(|s| s.kind)
        .find(|k| matches!(k, RequestKind::Refresh { .. }))
        .unwrap()
}

#[test]
fn introspect_own_active_token_reports_its_claims() {
    let mut env = Env::demo();
    let client = web_client();
    let (agent, _) = env.login(&client, &AuthorizationRequest::new(["openid", "email"]));
    let (info, trace) = env.run(
        client
            .introspect(
                &agent.tokens().access_token,
                Some(TokenTypeHint::AccessToken),
            )
            .unwrap(),
    );
    let info = info.unwrap();
    assert!(info.active);
    assert_eq!(info.sub.as_deref(), Some("usr_alice"));
    assert_eq!(info.client_id.as_deref(), Some("client_web"));
    assert_eq!(info.scope.as_deref(), Some("openid email"));
    assert_eq!(info.token_type.as_deref(), Some("access_token"));
    assert_eq!(
        trace.events,
        vec![Event::Send(RequestKind::Introspection), Event::Done]
    );
}

fn m2m_client(id: &str, secret: &str) -> Client {
    Client::new(
        Config::builder(ISS, id)
            .client_secret(secret)
            .build()
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn client_credentials_m2m_agent_uses_token_level_scopes() {
    let mut env = Env::demo();
    let client = m2m_client("c_m2m", "secret_m2m");
    let (agent, trace) = env.run(client.client_credentials(["reports:read"], &[]).unwrap());
    let agent = agent.unwrap();
    assert_eq!(
        trace.events,
        vec![Event::Send(RequestKind::ClientCredentials), Event::Done]
    );
    let sent = trace.first(RequestKind::ClientCredentials);
    assert_eq!(
        sent.form(),
        vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("scope".to_owned(), "reports:read".to_owned())
        ]
    );
    assert!(sent.header("authorization").unwrap().starts_with("Basic "));
    assert_eq!(agent.id(), "c_m2m");
    assert_eq!(agent.principal_type(), PrincipalType::User);
    assert!(agent.organizations().is_empty());
    assert_eq!(agent.tokens().refresh_token, None);
    assert_eq!(agent.tokens().id_token, None);
    assert_eq!(agent.tokens().scope.as_deref(), Some("reports:read"));
    assert_eq!(agent.expires_at(), env.now + 1800);
    // No organizations: has_access falls back to the token's scope.
    assert!(agent.has_access("read", "reports"));
    assert!(!agent.has_access("write", "reports"));
    assert!(!agent.has_access("read", "projects"));
    assert!(!agent.has_access_in("org_acme", "read", "reports"));
    assert_eq!(
        claims_of(&agent.tokens().access_token)["dat"]["type"],
        "key"
    );
    // An unknown scope is refused by the issuer.
    let (r, trace) = env.run(client.client_credentials(["admin:**"], &[]).unwrap());
    assert_eq!(r.unwrap_err().code(), "invalid_scope");
    assert!(trace.nothing_out());
}

#[test]
fn client_credentials_agt_bot_is_an_agent_principal() {
    let mut env = Env::demo();
    let client = m2m_client("agt_bot", "secret_bot");
    let (agent, _) = env.run(
        client
            .client_credentials(["projects:read", "tasks:write"], &[])
            .unwrap(),
    );
    let agent = agent.unwrap();
    assert_eq!(agent.id(), "agt_bot");
    assert_eq!(agent.principal_type(), PrincipalType::Agent);
    assert_eq!(agent.principal_type().as_str(), "agent");
    assert_eq!(agent.expires_at(), env.now + 300);
    assert!(agent.has_access("read", "projects"));
    assert!(agent.has_access("write", "tasks"));
    assert!(!agent.has_access("write", "projects"));
    assert_eq!(
        claims_of(&agent.tokens().access_token)["dat"]["type"],
        "agent"
    );
    // A wrong secret is invalid_client.
    let bad = m2m_client("agt_bot", "wrong");
    let (r, t) = env.run(bad.client_credentials(["projects:read"], &[]).unwrap());
    let e = r.unwrap_err();
    assert_eq!((e.code(), e.status()), ("invalid_client", Some(401)));
    assert!(t.nothing_out());
}

#[test]
fn public_client_logs_in_with_pkce_and_no_secret() {
    let mut env = Env::demo();
    let config = Config::builder(ISS, "client_native")
        .redirect_uri("http://127.0.0.1:53682/callback")
        .build()
        .unwrap();
    assert_eq!(config.client_auth(), ClientAuth::None);
    let client = Client::new(config).unwrap();
    let (agent, trace) = env.login(&client, &AuthorizationRequest::new(["openid"]));
    assert_eq!(agent.id(), "usr_alice");
    let sent = trace.first(RequestKind::AuthorizationCode);
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.form_all("client_id"), vec!["client_native"]);
    assert!(sent.form_all("client_secret").is_empty());
    assert_eq!(
        sent.form_all("redirect_uri"),
        vec!["http://127.0.0.1:53682/callback"]
    );
    assert_eq!(sent.form_all("code_verifier").len(), 1);
    // client_native signs with EdDSA.
    let header = decode_header(agent.tokens().id_token.as_ref().unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    // A public client cannot use client credentials.
    assert_eq!(
        client.client_credentials(["x:y"], &[]).unwrap_err().code(),
        "configuration_error"
    );
}

#[test]
fn client_secret_post_and_basic_both_authenticate() {
    for auth in [ClientAuth::ClientSecretPost, ClientAuth::ClientSecretBasic] {
        let mut env = Env::demo();
        let client = Client::new(web_config().client_auth(auth).build().unwrap()).unwrap();
        let (agent, trace) = env.login(&client, &AuthorizationRequest::new(["openid"]));
        assert_eq!(agent.id(), "usr_alice");
        let sent = trace.first(RequestKind::AuthorizationCode);
        match auth {
            ClientAuth::ClientSecretPost => {
                assert_eq!(sent.header("authorization"), None);
                assert_eq!(sent.form_all("client_id"), vec!["client_web"]);
                assert_eq!(sent.form_all("client_secret"), vec!["secret_web"]);
            }
            _ => {
                // base64("client_web:secret_web")
                assert_eq!(
                    sent.header("authorization").as_deref(),
                    Some("Basic Y2xpZW50X3dlYjpzZWNyZXRfd2Vi")
                );
                assert!(sent.form_all("client_secret").is_empty());
                assert!(sent.form_all("client_id").is_empty());
            }
        }
        // A wrong secret fails at the token endpoint, whatever the method; no tokens.
        let bad = Client::new(
            web_config()
                .client_secret("nope")
                .client_auth(auth)
                .build()
                .unwrap(),
        )
        .unwrap();
        let (tx, cb) = env.start_login(&bad, &AuthorizationRequest::new(["openid"]));
        let keys = env.keys.clone();
        let (r, t) = env.run(bad.exchange_callback(cb.as_str(), &tx, &keys).unwrap());
        assert_eq!(r.unwrap_err().code(), "invalid_client", "{auth:?}");
        assert!(t.nothing_out());
    }
}

#[test]
fn rfc8707_resources_are_sent_and_kept_in_order() {
    let mut env = Env::demo();
    let client = web_client();
    let (a, b) = ("https://api.example.com/z", "https://api.example.com/a");
    let (tx, cb) = env.start_login(
        &client,
        &AuthorizationRequest::new(["openid"])
            .resource(a)
            .resource(b),
    );
    assert_eq!(tx.resources, Some(vec![a.to_owned(), b.to_owned()]));
    let url = url::Url::parse(&tx.url).unwrap();
    let in_url: Vec<String> = url
        .query_pairs()
        .filter(|(k, _)| k == "resource")
        .map(|(_, v)| v.into_owned())
        .collect();
    assert_eq!(in_url, vec![a, b]);
    let keys = env.keys.clone();
    let (agent, trace) = env.run(client.exchange_callback(cb.as_str(), &tx, &keys).unwrap());
    let agent = agent.unwrap();
    assert_eq!(
        trace
            .first(RequestKind::AuthorizationCode)
            .form_all("resource"),
        vec![a, b]
    );
    // The access token's audience is the first requested resource.
    assert_eq!(claims_of(&agent.tokens().access_token)["aud"], a);
    // A refresh with explicit resources sends them in order; automatic ones send none.
    env.advance(3600);
    let (_, trace) = env.run(
        client
            .refresh(
                agent.tokens().clone(),
                SessionOptions::new().resource(b),
                &env.keys.clone(),
                env.now(),
            )
            .unwrap(),
    );
    assert_eq!(trace.first(REFRESH).form_all("resource"), vec![b]);
    let rotated = trace.persisted[0].clone();
    assert_eq!(claims_of(&rotated.access_token)["aud"], b);
    env.advance(3600);
    let (_, trace) = env.run(
        client
            .create_agent(rotated, SessionOptions::new(), &env.keys.clone(), env.now())
            .unwrap(),
    );
    assert!(trace.first(REFRESH).form_all("resource").is_empty());
}

#[test]
fn discovery_against_the_testkit_then_login() {
    let mut env = Env::demo();
    let config = web_config().build().unwrap();
    let (d, trace) = env.run(Client::discover(config));
    let d = d.unwrap();
    assert_eq!(
        trace.events,
        vec![
            Event::Send(RequestKind::Discovery),
            Event::Send(RequestKind::Jwks),
            Event::Done
        ]
    );
    assert_eq!(
        trace.sent[0].uri,
        format!("{ISS}/.well-known/openid-configuration")
    );
    assert_eq!(d.client.issuer(), ISS);
    assert_eq!(
        d.client.metadata().token_endpoint().as_str(),
        format!("{ISS}/token")
    );
    assert_eq!(d.keys.len(), 6);
    assert_eq!(env.idp.stats().discovery_requests, 1);
    env.keys = d.keys.clone();
    // Warm keys: the login spends the code directly, no JWKS request.
    let (agent, trace) = env.login(&d.client, &AuthorizationRequest::new(["openid", "email"]));
    assert_eq!(
        trace.events,
        vec![Event::Send(RequestKind::AuthorizationCode), Event::Done]
    );
    assert_eq!(agent.id(), "usr_alice");
    assert_eq!(env.idp.stats().jwks_requests, 1);
}

#[test]
fn access_token_validated_as_api_with_right_and_wrong_audience() {
    let mut env = Env::demo();
    let client = web_client();
    let api = "https://api.example.com";
    let (agent, _) = env.login(
        &client,
        &AuthorizationRequest::new(["openid", "email"])
            .org("org_acme")
            .resource(api),
    );
    let at = agent.tokens().access_token.clone();
    let keys = env.keys.clone();
    let (info, trace) = env.run(client.validate_access_token(&at, api, &keys));
    let info = info.unwrap();
    assert_eq!(trace.events, vec![Event::Done]);
    assert_eq!(info.agent.id(), "usr_alice");
    assert_eq!(info.client_id, "client_web");
    assert_eq!(info.jti.len(), 18);
    assert!(info.sid.as_deref().unwrap().starts_with("s_"));
    assert_eq!(info.dat_type.as_deref(), Some("identity"));
    assert_eq!(info.audience, vec![api.to_owned()]);
    assert_eq!(info.agent.org_id(), Some("org_acme"));
    assert!(info.agent.has_access_in("org_acme", "write", "projects"));
    assert_eq!(info.agent.expires_at(), agent.expires_at());

    for wrong in [
        "https://other.example.com",
        "client_web",
        "https://api.example.com/",
    ] {
        let (r, trace) = env.run(client.validate_access_token(&at, wrong, &keys));
        let e = r.unwrap_err();
        assert_eq!(
            e,
            Error::AccessToken(TokenError::Claim(ClaimError::Audience)),
            "{wrong}"
        );
        assert_eq!(e.code(), "invalid_token");
        assert!(trace.nothing_out());
    }
    // An ID token is not an access token.
    let id = agent.tokens().id_token.clone().unwrap();
    let (r, _) = env.run(client.validate_access_token(&id, "client_web", &keys));
    assert_eq!(
        r.unwrap_err(),
        Error::AccessToken(TokenError::Claim(ClaimError::Type))
    );
    // A forged signature is an access-token error (`invalid_token`), not an ID-token one.
    let (signing_input, signature) = at.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let forged = format!("{signing_input}.{flipped}{}", &signature[1..]);
    let (r, trace) = env.run(client.validate_access_token(&forged, api, &keys));
    let e = r.unwrap_err();
    assert_eq!(
        e,
        Error::AccessToken(TokenError::Jose(
            authpi_idp::jose::JoseError::InvalidSignature
        ))
    );
    assert_eq!(e.code(), "invalid_token");
    assert!(trace.nothing_out());
    // Expired (beyond the 60 s leeway).
    env.advance(1800 + 61);
    let (r, _) = env.run(client.validate_access_token(&at, api, &keys));
    assert_eq!(
        r.unwrap_err(),
        Error::AccessToken(TokenError::Claim(ClaimError::Expired))
    );
}

#[test]
fn logout_url_is_built_and_accepted_by_the_issuer() {
    let mut env = Env::demo();
    let client = web_client();
    let (agent, _) = env.login(&client, &AuthorizationRequest::new(["openid"]));
    let id_token = agent.tokens().id_token.clone().unwrap();
    let url = client
        .logout_url(
            &LogoutRequest::new()
                .id_token_hint(&id_token)
                .post_logout_redirect_uri("https://app.example.com/logged-out")
                .state("s1"),
        )
        .unwrap();
    assert_eq!(url.path(), "/i_demo/logout");
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(
        pairs,
        vec![
            ("id_token_hint".to_owned(), id_token.clone()),
            ("client_id".to_owned(), "client_web".to_owned()),
            (
                "post_logout_redirect_uri".to_owned(),
                "https://app.example.com/logged-out".to_owned()
            ),
            ("state".to_owned(), "s1".to_owned()),
        ]
    );
    let location = env.authorize(url.as_str());
    assert_eq!(location, "https://app.example.com/logged-out?state=s1");
    // An invalid post-logout URI is refused locally.
    assert_eq!(
        client
            .logout_url(&LogoutRequest::new().post_logout_redirect_uri("http://evil.example/x"))
            .unwrap_err()
            .code(),
        "configuration_error"
    );
}

// ---------------------------------------------------------------------------------------------
// The no-verdict rule (DESIGN §1.5, §4): rotated tokens are never dropped for lack of keys.

/// A logged-in session whose access token is due for refresh; the key set cached at login is
/// still fresh (the testkit serves `max-age=3600`).
fn due_session(env: &mut Env, client: &Client) -> TokenSet {
    let (agent, _) = env.login(client, &AuthorizationRequest::new(["openid", "email"]));
    env.advance(1800);
    assert!(env.keys.is_fresh(env.now()));
    agent.into_tokens()
}

fn session_op(env: &Env, client: &Client, tokens: &TokenSet) -> authpi_idp::flow::Session {
    client
        .create_agent(tokens.clone(), SessionOptions::new(), &env.keys, env.now())
        .unwrap()
}

/// The rotated set kept the old verified identity: new access/refresh tokens and expiry, the
/// previous ID token, and an agent with the previous identity marked as not re-verified.
fn assert_kept_with_old_identity(
    stored: &TokenSet,
    agent: &authpi_idp::Agent,
    trace: &common::Trace,
    now: u64,
) {
    assert_eq!(trace.persisted.len(), 1);
    let p = &trace.persisted[0];
    assert!(p.refresh_token.is_some());
    assert_ne!(
        p.refresh_token, stored.refresh_token,
        "rt-2 must be handed out"
    );
    assert_ne!(p.access_token, stored.access_token);
    assert_eq!(p.expires_at, now + 1800);
    assert_eq!(
        p.id_token, stored.id_token,
        "the previous, verified ID token"
    );
    assert_eq!(p.subject_hint, None);
    assert_eq!(agent.tokens(), p);
    assert_eq!(agent.id(), "usr_alice");
    assert_eq!(agent.email(), Some("alice@example.com"));
    assert!(!agent.identity_reverified());
}

/// Issue #11 scenario (a): the cache is fresh but lacks the key AuthPI just rotated to; the
/// refresh spends rt-1; the JWKS endpoint answers 503.
#[test]
fn refresh_with_rotated_key_and_jwks_503_persists_rt2_with_the_old_identity() {
    let mut env = Env::demo();
    let client = web_client();
    let stored = due_session(&mut env, &client);
    let fetched_at = env.keys.fetched_at();
    env.idp.rotate_keys().unwrap();
    env.idp
        .push_response("/jwks.json", common::json_response(503, &json!({})));
    let (agent, trace) = env.run(session_op(&env, &client, &stored));
    let agent = agent.unwrap();
    assert_eq!(
        trace.events,
        vec![
            Event::Send(refresh_kind(&trace)),
            Event::Send(RequestKind::Jwks),
            Event::KeysRefreshed,
            Event::Persist,
            Event::Done
        ]
    );
    assert_kept_with_old_identity(&stored, &agent, &trace, env.now);
    // The failed attempt is recorded (cooldown), the keys are unchanged.
    assert_eq!(env.keys.fetched_at(), fetched_at);
    assert_eq!(env.keys.attempted_at(), Some(env.now()));

    // rt-2 is alive: once the JWKS answers again, refreshing with it verifies the new key.
    let rotated = trace.persisted[0].clone();
    let (again, trace) = env.run(
        client
            .refresh(
                rotated.clone(),
                SessionOptions::new(),
                &env.keys.clone(),
                env.now(),
            )
            .unwrap(),
    );
    let again = again.unwrap();
    assert!(again.identity_reverified());
    assert_eq!(trace.sends(RequestKind::Jwks), 1);
    let new_id = trace.persisted[0].id_token.clone().unwrap();
    assert_ne!(
        decode_header(&new_id).unwrap()["kid"],
        decode_header(stored.id_token.as_deref().unwrap()).unwrap()["kid"]
    );
}

/// Issue #11 scenario (b): as (a), but the JWKS request gets no response at all.
#[test]
fn refresh_with_rotated_key_and_jwks_transport_failure_persists_rt2_with_the_old_identity() {
    let mut env = Env::demo();
    let client = web_client();
    let stored = due_session(&mut env, &client);
    env.idp.rotate_keys().unwrap();
    let op = session_op(&env, &client, &stored);
    let (agent, trace) = env.run_failing(op, RequestKind::Jwks);
    let agent = agent.unwrap();
    assert_eq!(
        trace.events,
        vec![
            Event::Send(refresh_kind(&trace)),
            Event::Send(RequestKind::Jwks),
            Event::KeysRefreshed,
            Event::Persist,
            Event::Done
        ]
    );
    assert_kept_with_old_identity(&stored, &agent, &trace, env.now);
    assert_eq!(env.keys.attempted_at(), Some(env.now()));
}

/// A transport failure where no verdict is possible and nothing was handed out yet is
/// `NoResponse` with the endpoint, and nothing comes out.
#[test]
fn transport_failure_of_the_refresh_itself_is_no_response_from_the_token_endpoint() {
    let mut env = Env::demo();
    let client = web_client();
    let stored = due_session(&mut env, &client);
    let op = session_op(&env, &client, &stored);
    let (r, trace) = env.run_failing(op, REFRESH);
    let e = r.unwrap_err();
    assert_eq!(
        e,
        Error::NoResponse {
            endpoint: authpi_idp::error::Endpoint::Token
        }
    );
    assert_eq!(e.code(), "transport_error");
    assert!(trace.nothing_out());
    // At login, a JWKS transport failure before the code is spent is NoResponse(Jwks), and the
    // attempt is still handed out for the cooldown.
    let mut env = Env::demo();
    let (tx, cb) = env.start_login(&client, &AuthorizationRequest::new(["openid"]));
    let op = client
        .exchange_callback(cb.as_str(), &tx, &authpi_idp::KeySet::empty())
        .unwrap();
    let (r, trace) = env.run_failing(op, RequestKind::Jwks);
    assert_eq!(
        r.unwrap_err(),
        Error::NoResponse {
            endpoint: authpi_idp::error::Endpoint::Jwks
        }
    );
    assert_eq!(
        trace.events,
        vec![Event::Send(RequestKind::Jwks), Event::KeysRefreshed]
    );
    assert_eq!(trace.keys[0].attempted_at(), Some(env.now()));
}

/// Issue #11 scenario (c): the key set was fetched under 60 s ago (a login just before), the
/// provider rotated its key: the ID token from the token endpoint still gets its one refetch,
/// whatever the cooldown, and the refresh is fully verified.
#[test]
fn refresh_right_after_a_fetch_refetches_for_the_rotated_key_despite_the_cooldown() {
    let mut env = Env::demo();
    let client = web_client();
    let (agent, _) = env.login(&client, &AuthorizationRequest::new(["openid", "email"]));
    let stored = agent.into_tokens();
    env.advance(10);
    assert!(!env.keys.may_refetch(env.now()), "inside the cooldown");
    env.idp.rotate_keys().unwrap();
    let (agent, trace) = env.run(
        client
            .refresh(
                stored.clone(),
                SessionOptions::new(),
                &env.keys.clone(),
                env.now(),
            )
            .unwrap(),
    );
    let agent = agent.unwrap();
    assert_eq!(
        trace.events,
        vec![
            Event::Send(refresh_kind(&trace)),
            Event::Send(RequestKind::Jwks),
            Event::KeysRefreshed,
            Event::Persist,
            Event::Done
        ]
    );
    assert!(agent.identity_reverified());
    let p = &trace.persisted[0];
    assert_ne!(p.id_token, stored.id_token);
    assert_eq!(agent.tokens(), p);
    assert_eq!(env.keys.fetched_at(), Some(env.now()));
}

/// A token response crafted by the test: valid ID token claims of the stored session with
/// `edit` applied, signed with `key` (the issuer's current key unless told otherwise).
fn crafted_refresh(
    env: &mut Env,
    stored: &TokenSet,
    edit: impl FnOnce(&mut serde_json::Value),
    foreign_key: bool,
) {
    let old = claims_of(stored.id_token.as_deref().unwrap());
    let header = decode_header(stored.id_token.as_deref().unwrap()).unwrap();
    let alg = authpi_idp_testkit::Alg::from_name(header["alg"].as_str().unwrap()).unwrap();
    let mut claims = old.clone();
    claims["iat"] = json!(env.now);
    claims["exp"] = json!(env.now + 3600);
    claims.as_object_mut().unwrap().remove("at_hash");
    edit(&mut claims);
    let token = if foreign_key {
        let kid = env.idp.signing_key(alg).unwrap().kid().to_owned();
        authpi_idp_testkit::jwt::TestKey::generate(alg, &kid)
            .unwrap()
            .sign_claims(None, &claims)
            .unwrap()
    } else {
        env.idp.sign(alg, None, &claims).unwrap()
    };
    env.idp.push_response(
        "/token",
        common::json_response(
            200,
            &json!({
                "access_token": "at-2", "token_type": "Bearer", "expires_in": 1800,
                "refresh_token": "rt-2", "id_token": token,
            }),
        ),
    );
}

/// Issue #11 scenario (d): a verdict against the tokens persists nothing, whether the keys
/// were at hand or the no-verdict path decoded the claims without the signature.
#[test]
fn refresh_verdicts_against_the_tokens_persist_nothing() {
    type Edit = fn(&mut serde_json::Value);
    let cases: Vec<(&str, Edit, bool, Error)> = vec![
        (
            "bad signature with fresh keys",
            |_| {},
            true,
            Error::IdToken(TokenError::Jose(
                authpi_idp::jose::JoseError::InvalidSignature,
            )),
        ),
        (
            "changed sub",
            |c| c["sub"] = json!("usr_bob"),
            false,
            Error::SubjectMismatch {
                expected: "usr_alice".into(),
                actual: "usr_bob".into(),
            },
        ),
        (
            "changed iss",
            |c| c["iss"] = json!("https://idp.test/i_other"),
            false,
            Error::IdToken(TokenError::Claim(ClaimError::Changed("iss"))),
        ),
        (
            "changed aud",
            |c| c["aud"] = json!("client_other"),
            false,
            Error::IdToken(TokenError::Claim(ClaimError::Changed("aud"))),
        ),
        (
            "expired",
            |c| c["exp"] = c["iat"].as_u64().map(|t| t - 3600).into(),
            false,
            Error::IdToken(TokenError::Claim(ClaimError::Expired)),
        ),
        (
            "nonce changed",
            |c| c["nonce"] = json!("another-nonce"),
            false,
            Error::IdToken(TokenError::Claim(ClaimError::NonceMismatch)),
        ),
        (
            "azp appeared",
            |c| c["azp"] = json!("client_web"),
            false,
            Error::IdToken(TokenError::Claim(ClaimError::Changed("azp"))),
        ),
    ];
    for (name, edit, foreign, expected) in cases {
        // Rotated key, JWKS reachable: the signature gets its verdict with fresh keys.
        for jwks_down in [false, true] {
            if foreign && jwks_down {
                continue; // a signature needs keys to be judged
            }
            let mut env = Env::demo();
            let client = web_client();
            let stored = due_session(&mut env, &client);
            env.idp.rotate_keys().unwrap();
            crafted_refresh(&mut env, &stored, edit, foreign);
            if jwks_down {
                env.idp
                    .push_response("/jwks.json", common::json_response(503, &json!({})));
            }
            let (r, trace) = env.run(session_op(&env, &client, &stored));
            assert_eq!(r.unwrap_err(), expected, "{name}, JWKS down: {jwks_down}");
            assert!(trace.persisted.is_empty(), "{name}: nothing persisted");
            assert!(trace.nothing_out(), "{name}");
            assert_eq!(trace.sends(RequestKind::Jwks), 1, "{name}");
        }
    }
}

/// The no-verdict rule when the JWKS answers but does not publish the new key yet (a CDN still
/// serving the old document): the `kid` is unknown after the one refetch.
#[test]
fn refresh_whose_key_is_not_yet_published_persists_rt2_with_the_old_identity() {
    let mut env = Env::demo();
    let client = web_client();
    let stored = due_session(&mut env, &client);
    let old_document = env.idp.jwks();
    env.idp.rotate_keys().unwrap();
    env.idp
        .push_response("/jwks.json", common::json_response(200, &old_document));
    let (agent, trace) = env.run(session_op(&env, &client, &stored));
    let agent = agent.unwrap();
    assert_eq!(
        trace.events,
        vec![
            Event::Send(refresh_kind(&trace)),
            Event::Send(RequestKind::Jwks),
            Event::KeysRefreshed,
            Event::Persist,
            Event::Done
        ]
    );
    assert_kept_with_old_identity(&stored, &agent, &trace, env.now);
    assert_eq!(env.keys.fetched_at(), Some(env.now()));
}
