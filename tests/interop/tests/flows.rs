//! Every flow, through every adapter, against oidc-provider 9.13.3 (one shared provider).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use authpi_idp::{AuthorizationRequest, Config, LogoutRequest, TokenTypeHint};
use authpi_idp_adapter_suite::api::Hooks;
use authpi_idp_async::TransportOptions;
use authpi_idp_interop::{
    API_RESOURCE, Adapter, Browser, Provider, WEB_LOGOUT, WEB_REDIRECT, browse, jws_alg, login,
    public_config, redirect_uri_of, web_config,
};

fn provider() -> &'static Provider {
    Provider::shared()
}

/// A discovered client (endpoints and `iss` support from the provider's metadata).
async fn discovered<A: Adapter>(config: Config) -> A {
    A::discover(config)
        .await
        .unwrap_or_else(|e| panic!("{}: discovery failed: {e} ({e:?})", A::NAME))
}

fn openid() -> AuthorizationRequest {
    AuthorizationRequest::new(["openid", "email", "profile"])
}

/// Discovery: issuer, endpoints, RFC 9207, and the key set fetched with it.
async fn discovery<A: Adapter>() {
    let p = provider();
    let api: A = discovered(web_config(p, "client_basic")).await;
    let meta = api.core().metadata();
    assert_eq!(api.core().issuer(), p.issuer());
    assert_eq!(
        meta.token_endpoint().as_str(),
        format!("{}/token", p.issuer())
    );
    assert_eq!(
        meta.end_session_endpoint().map(url::Url::as_str),
        Some(format!("{}/logout", p.issuer()).as_str())
    );
    assert!(meta.authorization_response_iss_parameter_supported());
    let keys = api.keys();
    assert_eq!(keys.len(), 3, "RS256, ES256 and EdDSA keys");
    assert!(keys.fetched_at().is_some());
}

/// Authorization code + PKCE for every client: client authentication methods and ID-token
/// algorithms.
async fn code_flow_every_client<A: Adapter>() {
    let p = provider();
    // A native client's loopback redirect on a port we own (held open for the test).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let native_port = listener.local_addr().unwrap().port();
    let cases = [
        ("client_basic", web_config(p, "client_basic"), "RS256"),
        ("client_post", web_config(p, "client_post"), "RS256"),
        ("client_rs256", web_config(p, "client_rs256"), "RS256"),
        ("client_es256", web_config(p, "client_es256"), "ES256"),
        ("client_eddsa", web_config(p, "client_eddsa"), "EdDSA"),
        ("client_public", public_config(p, native_port), "ES256"),
    ];
    for (client_id, config, alg) in cases {
        let api: A = discovered(config).await;
        let tx = api.create_authorization_url(&openid()).unwrap();
        assert!(tx.url.contains("code_challenge_method=S256"), "{client_id}");
        let redirect = redirect_uri_of(&tx.url);
        let callback = browse(tx.url.clone(), redirect.clone()).await;
        assert!(
            callback.contains("iss="),
            "{client_id}: RFC 9207 iss present"
        );
        let agent = api
            .exchange_callback(callback, tx)
            .await
            .unwrap_or_else(|e| panic!("{} {client_id}: {e} ({e:?})", A::NAME));
        assert_eq!(agent.id(), "usr_alice", "{client_id}");
        assert_eq!(agent.email(), Some("alice@example.com"), "{client_id}");
        assert_eq!(agent.email_verified(), Some(true), "{client_id}");
        let orgs: Vec<&str> = agent
            .organizations()
            .iter()
            .map(|o| o.id.as_str())
            .collect();
        assert_eq!(orgs, ["org_acme", "org_globex"], "{client_id}");
        assert_eq!(agent.org_id(), None, "{client_id}: no org requested");
        let id_token = agent.tokens().id_token.as_deref().unwrap();
        assert_eq!(jws_alg(id_token), alg, "{client_id}");
        assert!(agent.tokens().refresh_token.is_some(), "{client_id}");
        if client_id == "client_public" {
            assert_eq!(redirect, format!("http://127.0.0.1:{native_port}/callback"));
        }
    }
    drop(listener);
}

/// The provider advertises RFC 9207, so a callback without `iss` (or with another one) is
/// refused before the code is spent; the untouched callback then still works.
async fn iss_is_required_and_checked<A: Adapter>() {
    let p = provider();
    let api: A = discovered(web_config(p, "client_basic")).await;
    let tx = api.create_authorization_url(&openid()).unwrap();
    let callback = browse(tx.url.clone(), WEB_REDIRECT.to_owned()).await;
    let url = url::Url::parse(&callback).unwrap();
    let rebuild = |iss: Option<&str>| {
        let mut u = url.clone();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "iss")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        {
            let mut q = u.query_pairs_mut();
            q.clear();
            for (k, v) in &pairs {
                q.append_pair(k, v);
            }
            if let Some(iss) = iss {
                q.append_pair("iss", iss);
            }
        }
        u.to_string()
    };
    for (iss, case) in [
        (None, "iss removed"),
        (Some("http://127.0.0.1:1"), "another issuer"),
        (Some(&*format!("{}/", p.issuer())), "trailing slash"),
    ] {
        let err = api
            .exchange_callback(rebuild(iss), tx.clone())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_issuer", "{case}: {err:?}");
    }
    let agent = api.exchange_callback(callback, tx).await.unwrap();
    assert_eq!(agent.id(), "usr_alice");
}

/// `org=` selects the organization: `org_id` in the ID token (agent) and after refresh;
/// an unknown org ends in `access_denied`.
async fn organizations<A: Adapter>() {
    let p = provider();
    let api: A = discovered(web_config(p, "client_basic")).await;
    for org in ["org_acme", "org_globex"] {
        let agent = login(&api, &openid().org(org)).await;
        assert_eq!(agent.org_id(), Some(org));
        assert!(agent.is_member_of("org_acme") && agent.is_member_of("org_globex"));
        let refreshed = api
            .refresh(agent.tokens().clone(), Hooks::default())
            .await
            .unwrap();
        assert_eq!(refreshed.org_id(), Some(org), "org kept after refresh");
    }
    let agent = login(&api, &openid().org("org_acme")).await;
    assert!(agent.is_owner_of("org_acme"));
    assert!(agent.has_access_in("org_acme", "delete", "projects.tasks"));
    assert!(agent.has_access_in("org_globex", "read", "projects"));
    assert!(!agent.has_access_in("org_globex", "write", "projects"));

    let tx = api
        .create_authorization_url(&openid().org("org_initech"))
        .unwrap();
    let callback = browse(tx.url.clone(), WEB_REDIRECT.to_owned()).await;
    let err = api.exchange_callback(callback, tx).await.unwrap_err();
    assert_eq!(err.code(), "access_denied", "{err:?}");
}

/// UserInfo with the login's access token.
async fn userinfo<A: Adapter>() {
    let p = provider();
    let api: A = discovered(web_config(p, "client_basic")).await;
    let agent = login(&api, &openid().org("org_globex")).await;
    let info = api.get_user_info(agent).await.unwrap();
    assert_eq!(info.sub, "usr_alice");
    assert_eq!(info.email.as_deref(), Some("alice@example.com"));
    assert_eq!(info.email_verified, Some(true));
    assert_eq!(info.name.as_deref(), Some("Alice Example"));
}

/// Refresh twice (each rotates the refresh token and verifies a new ID token); replaying the
/// first refresh token is `invalid_grant`, ends the session, and the provider revokes the grant.
async fn refresh_rotation_and_replay<A: Adapter>() {
    let p = provider();
    let api: A = discovered(web_config(p, "client_es256")).await;
    let agent = login(&api, &openid()).await;
    let first = agent.tokens().clone();
    let second = api.refresh(first.clone(), Hooks::default()).await.unwrap();
    let third = api
        .refresh(second.tokens().clone(), Hooks::default())
        .await
        .unwrap();
    let rts: Vec<_> = [&first, second.tokens(), third.tokens()]
        .iter()
        .map(|t| t.refresh_token.clone().unwrap())
        .collect();
    assert!(rts[0] != rts[1] && rts[1] != rts[2] && rts[0] != rts[2]);
    assert_ne!(second.tokens().id_token, first.id_token, "new ID token");
    assert_eq!(third.id(), "usr_alice");
    api.get_user_info(third.clone()).await.unwrap();

    // Within the adapter's refresh grace period, the same client answers a request that still
    // holds the first token set with the rotated result, without replaying the dead token.
    let graced = api.refresh(first.clone(), Hooks::default()).await.unwrap();
    assert_eq!(graced.tokens(), second.tokens());
    // Another client instance (another process) has no such memory: the replay reaches the
    // provider.
    let api = api.with_keys(api.keys());
    let err = api.refresh(first, Hooks::default()).await.unwrap_err();
    assert_eq!(err.code(), "invalid_grant", "{err:?}");
    assert!(err.is_session_over());
    assert_eq!(err.status(), Some(400));
    // oidc-provider revokes the whole grant on replay: the newest tokens die too.
    let err = api.get_user_info(third.clone()).await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err:?}");
    let err = api
        .refresh(third.tokens().clone(), Hooks::default())
        .await
        .unwrap_err();
    assert!(err.is_session_over(), "{err:?}");
}

/// RFC 7009, once per token type. oidc-provider revokes the whole grant for either type
/// (an access token too, unlike what its README used to say), so each case has its own login.
async fn revocation<A: Adapter>() {
    let p = provider();
    let api: A = discovered(web_config(p, "client_post")).await;

    let agent = login(&api, &openid()).await;
    let at = agent.tokens().access_token.clone();
    let rt = agent.tokens().refresh_token.clone().unwrap();
    assert!(api.introspect(at.clone(), None).await.unwrap().active);
    api.revoke_token(at.clone(), Some(TokenTypeHint::AccessToken))
        .await
        .unwrap();
    assert!(!api.introspect(at, None).await.unwrap().active);
    let err = api.get_user_info(agent.clone()).await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err:?}");
    assert!(
        !api.introspect(rt, None).await.unwrap().active,
        "grant revoked"
    );

    let agent = login(&api, &openid()).await;
    let rt = agent.tokens().refresh_token.clone().unwrap();
    api.revoke_token(rt.clone(), Some(TokenTypeHint::RefreshToken))
        .await
        .unwrap();
    assert!(!api.introspect(rt, None).await.unwrap().active);
    let err = api
        .refresh(agent.tokens().clone(), Hooks::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_grant");
    assert!(err.is_session_over());
    let err = api.get_user_info(agent).await.unwrap_err();
    assert_eq!(
        err.status(),
        Some(401),
        "access token of the revoked grant: {err:?}"
    );
    // Revoking an unknown token is fine (RFC 7009 §2.2).
    api.revoke_token("not-a-token".into(), None).await.unwrap();
}

/// RFC 7662: own tokens are active with their claims; another client sees `active: false`.
async fn introspection<A: Adapter>() {
    let p = provider();
    let api: A = discovered(web_config(p, "client_basic")).await;
    let agent = login(&api, &openid()).await;
    let at = api
        .introspect(
            agent.tokens().access_token.clone(),
            Some(TokenTypeHint::AccessToken),
        )
        .await
        .unwrap();
    assert!(at.active);
    assert_eq!(at.client_id.as_deref(), Some("client_basic"));
    assert_eq!(at.sub.as_deref(), Some("usr_alice"));
    assert_eq!(at.token_type.as_deref(), Some("Bearer"));
    assert!(
        at.scope
            .as_deref()
            .unwrap()
            .split(' ')
            .any(|s| s == "email")
    );
    assert!(at.exp.unwrap() > at.iat.unwrap());

    let rt = agent.tokens().refresh_token.clone().unwrap();
    let rti = api.introspect(rt, None).await.unwrap();
    assert!(rti.active);
    assert_eq!(rti.client_id.as_deref(), Some("client_basic"));

    let other: A = discovered(web_config(p, "client_rs256")).await;
    let foreign = other
        .introspect(agent.tokens().access_token.clone(), None)
        .await
        .unwrap();
    assert!(!foreign.active);
    assert!(!api.introspect("garbage".into(), None).await.unwrap().active);
}

fn m2m_config(p: &Provider, resources: &[&str]) -> Config {
    Config::builder(p.issuer(), "client_m2m")
        .client_secret("client_m2m_secret")
        .resources(resources.iter().copied())
        .build()
        .unwrap()
}

/// Client credentials (client_secret_basic): an opaque token without a resource, an RFC 9068
/// JWT with one, validated with the resource as audience.
async fn client_credentials<A: Adapter>() {
    let p = provider();
    let api: A = discovered(m2m_config(p, &[])).await;
    let agent = api.client_credentials(Vec::new()).await.unwrap();
    assert_eq!(agent.id(), "client_m2m");
    assert!(agent.organizations().is_empty());
    assert_eq!(agent.tokens().access_token.split('.').count(), 1, "opaque");
    let info = api
        .introspect(agent.tokens().access_token.clone(), None)
        .await
        .unwrap();
    assert!(info.active);
    assert_eq!(info.client_id.as_deref(), Some("client_m2m"));

    let api: A = discovered(m2m_config(p, &[API_RESOURCE])).await;
    let agent = api
        .client_credentials(vec!["projects:read".to_owned()])
        .await
        .unwrap();
    let at = agent.tokens().access_token.clone();
    assert_eq!(jws_alg(&at), "ES256");
    let info = api
        .validate_access_token(at.clone(), API_RESOURCE.into())
        .await
        .unwrap();
    assert_eq!(info.client_id, "client_m2m");
    assert_eq!(info.agent.id(), "client_m2m");
    assert_eq!(info.audience, [API_RESOURCE]);
    assert!(info.agent.token_scopes().allows("read", "projects"));
    let err = api
        .validate_access_token(at, "https://other.example.com".into())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_token", "{err:?}");
}

/// RFC 8707 on a login: the authorize-time resource is repeated at `/token`, so the access
/// token is a JWT for the API, which `validate_access_token` accepts with that audience.
async fn resource_indicators<A: Adapter>() {
    let p = provider();
    let api: A = discovered(web_config(p, "client_basic")).await;
    let request = AuthorizationRequest::new(["openid", "email", "projects:read"])
        .resource(API_RESOURCE)
        .org("org_acme");
    let agent = login(&api, &request).await;
    assert_eq!(agent.id(), "usr_alice");
    let at = agent.tokens().access_token.clone();
    assert_eq!(at.split('.').count(), 3, "a JWT access token");
    let info = api
        .validate_access_token(at.clone(), API_RESOURCE.into())
        .await
        .unwrap_or_else(|e| panic!("{}: {e} ({e:?})", A::NAME));
    assert_eq!(info.agent.id(), "usr_alice");
    assert_eq!(info.client_id, "client_basic");
    assert_eq!(info.audience, [API_RESOURCE]);
    assert_eq!(info.agent.org_id(), Some("org_acme"));
    assert!(info.agent.has_access_in("org_acme", "read", "projects"));
    assert!(info.agent.token_scopes().allows("read", "projects"));
    // The audience is checked: the client id is not this token's audience.
    let err = api
        .validate_access_token(at, "client_basic".into())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_token");
}

/// RP-initiated logout: the provider accepts our logout URL (its confirmation form, not an
/// error), the confirmation redirects to our post-logout URI with our state, and the
/// session-bound tokens die.
async fn logout<A: Adapter>() {
    let p = provider();
    let api: A = discovered(web_config(p, "client_basic")).await;
    let tx = api.create_authorization_url(&openid()).unwrap();
    let (browser, callback) = tokio::task::spawn_blocking(move || {
        let mut b = Browser::new();
        let url = tx.url.clone();
        let cb = b.authorize(&url, WEB_REDIRECT);
        (b, (cb, tx))
    })
    .await
    .unwrap();
    let (callback, tx) = callback;
    let agent = api.exchange_callback(callback, tx).await.unwrap();
    let id_token = agent.tokens().id_token.clone().unwrap();
    let url = api
        .create_logout_url(
            &LogoutRequest::new()
                .id_token_hint(id_token)
                .post_logout_redirect_uri(WEB_LOGOUT)
                .state("bye-1"),
        )
        .unwrap();
    assert!(url.starts_with(&format!("{}/logout?", p.issuer())));
    let issuer = p.issuer().to_owned();
    let (form, done) = tokio::task::spawn_blocking(move || {
        let mut b = browser;
        let form = b.request(&url, None);
        let xsrf = form
            .body
            .split("name=\"xsrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned);
        let done = xsrf.as_ref().map(|x| {
            b.request(
                &format!("{issuer}/logout/confirm"),
                Some(&format!("xsrf={x}&logout=yes")),
            )
        });
        (form, done)
    })
    .await
    .unwrap();
    assert_eq!(form.status, 200, "logout page: {}", form.body);
    assert!(form.body.contains("op.logoutForm"), "{}", form.body);
    let done = done.expect("the logout form has an xsrf field");
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some(format!("{WEB_LOGOUT}?state=bye-1").as_str())
    );
    // Tokens granted without offline_access are bound to the session.
    let err = api.get_user_info(agent).await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err:?}");
}

/// No discovery: the AuthPI endpoint layout derived from the issuer works against this
/// provider too (it serves AuthPI's paths).
async fn authpi_layout_without_discovery<A: Adapter>() {
    let p = provider();
    let api = A::build(web_config(p, "client_eddsa"), TransportOptions::default()).unwrap();
    let agent = login(&api, &openid().org("org_acme")).await;
    assert_eq!(agent.org_id(), Some("org_acme"));
    assert_eq!(
        jws_alg(agent.tokens().id_token.as_deref().unwrap()),
        "EdDSA"
    );
    let info = api.get_user_info(agent.clone()).await.unwrap();
    assert_eq!(info.sub, "usr_alice");
    let refreshed = api
        .refresh(agent.tokens().clone(), Hooks::default())
        .await
        .unwrap();
    assert_eq!(refreshed.id(), "usr_alice");
}

/// Stored sessions (`create_agent`): fresh tokens are used as they are; expired ones are
/// refreshed once and handed to `on_refresh`; concurrent requests with the same expired set
/// share one refresh (a second refresh would replay a rotated token, and this provider would
/// revoke the grant); a set without ID token is hydrated from UserInfo.
async fn stored_sessions<A: Adapter>() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let p = provider();
    let api: A = discovered(web_config(p, "client_rs256")).await;
    let agent = login(&api, &openid().org("org_acme")).await;
    let stored = authpi_idp::TokenSet::from_json(agent.tokens().to_json().as_bytes()).unwrap();
    assert_eq!(&stored, agent.tokens());

    let persisted = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicUsize::new(0));
    let hooks = {
        let (persisted, errors) = (persisted.clone(), errors.clone());
        Hooks {
            on_refresh: Some(Arc::new(move |t| {
                persisted.lock().unwrap().push(t);
                Ok(())
            })),
            on_refresh_error: Some(Arc::new(move |_| {
                errors.fetch_add(1, Ordering::SeqCst);
            })),
        }
    };

    let same = api
        .create_agent(stored.clone(), hooks.clone())
        .await
        .unwrap();
    assert_eq!(same.tokens(), &stored, "fresh: no refresh");
    assert!(persisted.lock().unwrap().is_empty());

    let mut expired = stored.clone();
    expired.expires_at = 0;
    let (a, b) = tokio::join!(
        api.create_agent(expired.clone(), hooks.clone()),
        api.create_agent(expired.clone(), hooks.clone())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.tokens(), b.tokens(), "one refresh, shared");
    assert_ne!(a.tokens().refresh_token, stored.refresh_token);
    assert_eq!(a.org_id(), Some("org_acme"));
    assert_eq!(errors.load(Ordering::SeqCst), 0);
    assert_eq!(
        *persisted.lock().unwrap(),
        [a.tokens().clone(), a.tokens().clone()],
        "every caller's on_refresh stores the shared set (DESIGN §6)"
    );
    api.get_user_info(a.clone()).await.unwrap();

    let mut bare = a.tokens().clone();
    bare.id_token = None;
    // A refresh token with neither an ID token nor a subject_hint pins no subject: refused
    // (issue #11, key cache 8). With the subject pinned, UserInfo's sub is checked against it.
    let err = api
        .create_agent(bare.clone(), Hooks::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_token_set", "{err:?}");
    bare.subject_hint = Some("usr_alice".into());
    let hydrated = api.create_agent(bare, Hooks::default()).await.unwrap();
    assert_eq!(hydrated.id(), "usr_alice");
    assert_eq!(hydrated.email(), Some("alice@example.com"));
    assert_eq!(hydrated.organizations().len(), 2);
}

/// oidc-provider's own endpoint paths: everything the SDK uses comes from discovery.
async fn default_layout_via_discovery<A: Adapter>() {
    let p = Provider::shared_default_layout();
    let api: A = discovered(web_config(p, "client_basic")).await;
    let meta = api.core().metadata();
    assert_eq!(meta.authorization_endpoint().path(), "/auth");
    assert_eq!(meta.userinfo_endpoint().unwrap().path(), "/me");
    assert_eq!(meta.jwks_uri().path(), "/jwks");
    let agent = login(&api, &openid().org("org_globex")).await;
    assert_eq!(agent.org_id(), Some("org_globex"));
    let info = api.get_user_info(agent.clone()).await.unwrap();
    assert_eq!(info.sub, "usr_alice");
    let at = agent.tokens().access_token.clone();
    assert!(api.introspect(at.clone(), None).await.unwrap().active);
    let refreshed = api
        .refresh(agent.tokens().clone(), Hooks::default())
        .await
        .unwrap();
    api.revoke_token(refreshed.tokens().access_token.clone(), None)
        .await
        .unwrap();
    assert!(!api.introspect(at, None).await.unwrap().active);
    let logout = api
        .create_logout_url(&LogoutRequest::new().post_logout_redirect_uri(WEB_LOGOUT))
        .unwrap();
    assert!(logout.starts_with(&format!("{}/session/end?", p.issuer())));
    let page = tokio::task::spawn_blocking(move || Browser::new().request(&logout, None))
        .await
        .unwrap();
    // No session cookie in this browser: oidc-provider has nobody to ask and answers with an
    // auto-submitting confirmation form (still a form, not an error).
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("name=\"xsrf\"")
            && page
                .body
                .contains(&format!("action=\"{}/session/end/confirm\"", p.issuer())),
        "{}",
        page.body
    );
    // The AuthPI layout guessed from the issuer is wrong here: no discovery, no login.
    let guessed = A::build(web_config(p, "client_basic"), TransportOptions::default()).unwrap();
    let tx = guessed.create_authorization_url(&openid()).unwrap();
    assert!(tx.url.starts_with(&format!("{}/authorize?", p.issuer())));
}

macro_rules! per_adapter {
    ($($case:ident),* $(,)?) => {
        mod reqwest {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case::<authpi_idp_reqwest::IdpClient>().await
                }
            )*
        }
        mod hyper {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case::<authpi_idp_hyper::IdpClient>().await
                }
            )*
        }
        mod ureq {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case::<authpi_idp_ureq::IdpClientSync>().await
                }
            )*
        }
    };
}

per_adapter!(
    discovery,
    code_flow_every_client,
    iss_is_required_and_checked,
    organizations,
    userinfo,
    refresh_rotation_and_replay,
    revocation,
    introspection,
    client_credentials,
    resource_indicators,
    logout,
    authpi_layout_without_discovery,
    stored_sessions,
    default_layout_via_discovery,
);
