//! Browser-facing rules on one instance: cookies, CSRF, fixation, open redirects, the login
//! transaction, guards and bearer tokens.

mod common;

use authpi_idp_axum::{MemoryStore, SessionStore, SessionsConfig};
use common::{Browser, Instance, instance, issuer};
use std::sync::Arc;

async fn setup() -> (authpi_idp_testkit::Served, Arc<dyn SessionStore>, Instance) {
    let served = issuer();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let app = instance(&served, Arc::clone(&store), SessionsConfig::default()).await;
    (served, store, app)
}

#[tokio::test]
async fn login_sets_strict_cookies_and_lands_on_return_to() {
    let (_served, store, app) = setup().await;
    let mut b = Browser::new();
    let start = b
        .get(&app.url("/login?return_to=%2Forgs%2Forg_acme%2Fprojects%3Fx%3D1"))
        .await;
    assert_eq!(start.status, 303);
    let tx_cookie = &start.set_cookies[0];
    assert!(tx_cookie.starts_with("authpi-login="), "{tx_cookie}");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(tx_cookie.contains(attr), "{tx_cookie}");
    }
    // Loopback http: no Secure (and therefore no __Host- prefix).
    assert!(!tx_cookie.contains("Secure"));
    // The OAuth state is not the transaction id nor a session id.
    let authorize = url::Url::parse(start.location.as_deref().unwrap()).unwrap();
    let state = authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    assert_ne!(b.cookies["authpi-login"], state);
    let issued = b.get(authorize.as_str()).await;
    let landed = b.get(issued.location.as_deref().unwrap()).await;
    assert_eq!(landed.status, 303, "{}", landed.body);
    assert_eq!(
        landed.location.as_deref(),
        Some("/orgs/org_acme/projects?x=1")
    );
    let session_cookie = landed
        .set_cookies
        .iter()
        .find(|c| c.starts_with("authpi-session="))
        .unwrap();
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"));
    let id = b.session().unwrap();
    assert!(id.len() >= 43, "256-bit id");
    assert_ne!(id, state);
    // The login cookie is cleared.
    assert!(!b.cookies.contains_key("authpi-login"));
    let record = store.load(&id).await.unwrap().unwrap();
    assert_eq!(record.sub, "usr_alice");
    assert_eq!(record.version, 1);
    assert_eq!(b.get(&app.url("/page")).await.body, "hello usr_alice");
}

#[tokio::test]
async fn secure_cookies_with_host_prefix_for_https_and_no_plain_http_elsewhere() {
    let served = issuer();
    let build = |redirect: &str| {
        let config = authpi_idp::Config::builder(served.issuer_url(), "client_web")
            .client_secret("secret_web")
            .redirect_uri(redirect)
            .build()
            .map_err(|e| e.to_string())?;
        let client = authpi_idp_reqwest::IdpClient::new(config).unwrap();
        let sessions = authpi_idp_axum::Sessions::new(
            Arc::new(MemoryStore::new()),
            client,
            SessionsConfig::default(),
        );
        authpi_idp_axum::Auth::new(sessions, authpi_idp_axum::Settings::new())
            .map_err(|e| e.to_string())
    };
    let auth = build("https://app.example.com/callback").unwrap();
    assert_eq!(auth.cookie_names().session, "__Host-authpi-session");
    assert!(auth.cookie_names().secure);
    assert_eq!(auth.origin(), "https://app.example.com");
    for local in ["http://127.0.0.1:8080/callback", "http://[::1]:1/cb"] {
        assert!(!build(local).unwrap().cookie_names().secure, "{local}");
    }
    // Plain http elsewhere never gets this far.
    assert!(build("http://app.example.com/callback").is_err());
}

#[tokio::test]
async fn open_redirect_attempts_on_return_to_are_refused() {
    let (_served, _store, app) = setup().await;
    let mut b = Browser::new();
    for bad in [
        "https%3A%2F%2Fevil.example",
        "%2F%2Fevil.example",
        "%2F%5Cevil.example",
        "%2F%09%2Fevil.example",
        "javascript%3Aalert(1)",
        "evil.example",
    ] {
        let page = b.get(&app.url(&format!("/login?return_to={bad}"))).await;
        assert_eq!(page.status, 400, "{bad}");
        assert!(page.location.is_none());
        assert!(page.set_cookies.is_empty(), "no login started for {bad}");
    }
}

#[tokio::test]
async fn the_session_id_is_renewed_at_login_and_a_planted_id_is_never_adopted() {
    let (_served, store, app) = setup().await;
    let mut b = Browser::new();
    b.login(&app, "").await;
    let first = b.session().unwrap();
    // Logging in again (e.g. as another user on a shared browser) ends the old session.
    b.login(&app, "").await;
    let second = b.session().unwrap();
    assert_ne!(first, second);
    assert!(
        store.load(&first).await.unwrap().is_none(),
        "old session ended"
    );
    assert!(store.load(&second).await.unwrap().is_some());

    // An attacker plants a session id in the victim's browser before login.
    let mut victim = Browser::new();
    victim
        .cookies
        .insert("authpi-session".into(), "attacker-chosen".into());
    victim.login(&app, "").await;
    let id = victim.session().unwrap();
    assert_ne!(id, "attacker-chosen");
    assert!(store.load("attacker-chosen").await.unwrap().is_none());
}

#[tokio::test]
async fn the_login_transaction_is_bound_to_the_browser_and_single_use() {
    let (served, _store, app) = setup().await;
    let mut b = Browser::new();
    let start = b.get(&app.url("/login")).await;
    let issued = b.get(start.location.as_deref().unwrap()).await;
    let callback = issued.location.unwrap();
    let tx_cookie = b.cookies["authpi-login"].clone();

    // Another browser (no login cookie) cannot complete it.
    let mut other = Browser::new();
    let page = other.get(&callback).await;
    assert_eq!(page.status, 400);
    assert!(other.session().is_none());
    // Nor with a made-up transaction id.
    other.cookies.insert("authpi-login".into(), "guess".into());
    assert_eq!(other.get(&callback).await.status, 400);

    let base = served.stats().code_requests;
    assert_eq!(b.get(&callback).await.status, 303);
    assert!(b.session().is_some());
    // Replaying the callback with the same transaction: refused before the code is spent.
    let mut replay = Browser::new();
    replay.cookies.insert("authpi-login".into(), tx_cookie);
    assert_eq!(replay.get(&callback).await.status, 400);
    assert!(replay.session().is_none());
    assert_eq!(served.stats().code_requests, base + 1);
}

#[tokio::test]
async fn logout_is_post_only_and_refuses_cross_site_requests() {
    let (served, store, app) = setup().await;
    let mut b = Browser::new();
    b.login(&app, "").await;
    let id = b.session().unwrap();
    let origin = format!("http://{}", app.addr);

    assert_eq!(b.get(&app.url("/logout")).await.status, 405);
    for headers in [
        vec![],
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
        vec![
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "same-origin"),
        ],
    ] {
        let page = b.post(&app.url("/logout"), &headers).await;
        assert_eq!(page.status, 403, "{headers:?}");
        assert!(
            store.load(&id).await.unwrap().is_some(),
            "session kept for {headers:?}"
        );
    }
    let revokes = served.stats().revoke_requests;
    let page = b
        .post(&app.url("/logout"), &[("origin", origin.as_str())])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let location = url::Url::parse(page.location.as_deref().unwrap()).unwrap();
    assert!(
        location.as_str().starts_with(served.issuer_url()),
        "{location}"
    );
    let params: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(
        params["post_logout_redirect_uri"],
        "http://127.0.0.1/logged-out"
    );
    assert!(params.contains_key("id_token_hint"));
    assert!(store.load(&id).await.unwrap().is_none(), "session ended");
    assert!(b.session().is_none(), "cookie cleared");
    assert_eq!(
        served.stats().revoke_requests,
        revokes + 1,
        "refresh token revoked"
    );
    // The old cookie is worthless now.
    let mut replay = Browser::new();
    replay.cookies.insert("authpi-session".into(), id);
    assert_eq!(replay.get(&app.url("/me")).await.status, 401);
    let page = replay.get(&app.url("/page")).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/login?return_to=%2Fpage"));
}

#[tokio::test]
async fn pages_redirect_to_login_and_apis_answer_401() {
    let (_served, _store, app) = setup().await;
    let mut b = Browser::new();
    let page = b.get(&app.url("/orgs/org_acme/projects?tab=1")).await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some("/login?return_to=%2Forgs%2Forg_acme%2Fprojects%3Ftab%3D1")
    );
    let api = b.get(&app.url("/me")).await;
    assert_eq!(api.status, 401);
    assert!(api.body.contains("login_required"));
}

#[tokio::test]
async fn the_org_guard_takes_the_org_from_the_path_and_names_the_missing_permission() {
    let (_served, _store, app) = setup().await;
    let mut b = Browser::new();
    b.login(&app, "").await;
    let ok = b.get(&app.url("/orgs/org_acme/projects")).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let v: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
    assert_eq!(v["org"], "org_acme");
    // usr_alice has only billing:read in org_globex, and nothing in org_unknown.
    for org in ["org_globex", "org_unknown"] {
        let page = b.get(&app.url(&format!("/orgs/{org}/projects"))).await;
        assert_eq!(page.status, 403, "{org}");
        let v: serde_json::Value = serde_json::from_str(&page.body).unwrap();
        assert_eq!(v["missing_permission"], "projects:read");
        assert_eq!(v["org"], org);
    }
}

#[tokio::test]
async fn bearer_tokens_follow_rfc_6750() {
    let (served, _store, app) = setup().await;
    let http = common::http_builder().build().unwrap();
    let url = app.url("/api/reports");
    let machine =
        |id: &'static str, secret: &'static str, scope: &'static str, resource: &'static str| {
            let served_url = served.issuer_url().to_owned();
            async move {
                let config = authpi_idp::Config::builder(served_url, id)
                    .client_secret(secret)
                    .resources([resource])
                    .build()
                    .unwrap();
                let client = authpi_idp_reqwest::IdpClient::new(config).unwrap();
                let agent = client.client_credentials([scope]).await.unwrap();
                agent.tokens().access_token.clone()
            }
        };
    let m2m = |resource: &'static str| machine("c_m2m", "secret_m2m", "reports:read", resource);
    let token = m2m("https://api.example.com/reports").await;

    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], r#"Bearer realm="api""#);

    let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["caller"], "c_m2m");

    let r = http
        .get(&url)
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_request""#)
    );

    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    let r = http.get(&url).bearer_auth(&forged).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );

    // Another API's token (wrong audience) is not accepted.
    let other = m2m("https://api.example.com/other").await;
    let r = http.get(&url).bearer_auth(&other).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // A valid token for this audience without reports:read lacks the scope.
    let bot = machine(
        "agt_bot",
        "secret_bot",
        "projects:read",
        "https://api.example.com/reports",
    )
    .await;
    let r = http.get(&url).bearer_auth(&bot).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["www-authenticate"],
        r#"Bearer realm="api", error="insufficient_scope", scope="reports:read""#
    );
}
