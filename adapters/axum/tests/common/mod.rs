//! Test harness: app instances (each a real axum server on 127.0.0.1 with its own client) in
//! front of one served testkit issuer, and a cookie-jar browser.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use authpi_idp::Config;
use authpi_idp_axum::{
    Auth, BearerAgent, InOrg, RedirectToLogin, SessionAgent, SessionStore, Sessions,
    SessionsConfig, Settings, Unauthorized, permission,
};
use authpi_idp_reqwest::IdpClient;
use authpi_idp_testkit::{Issuer, Served};
use axum::Json;
use axum::routing::get;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

permission!(pub ReadProjects = "read" on "projects");
permission!(pub ReadReports = "read" on "reports");

async fn me(s: SessionAgent<Unauthorized>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "id": s.agent.id(),
        "version": s.session.version,
        "expires_at": s.agent.expires_at(),
    }))
}

async fn page(s: SessionAgent<RedirectToLogin>) -> String {
    format!("hello {}", s.agent.id())
}

/// A page that logs out at once (a form POSTed by script, as a user's click would).
async fn logout_form(s: SessionAgent<RedirectToLogin>) -> axum::response::Html<String> {
    axum::response::Html(format!(
        "<!doctype html><p>hello {}</p><form id=f method=post action=/logout></form>\
         <script>document.getElementById('f').submit()</script>",
        s.agent.id()
    ))
}

async fn projects(g: InOrg<ReadProjects, RedirectToLogin>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "org": g.org, "user": g.agent.id() }))
}

async fn reports(b: BearerAgent<ReadReports>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "caller": b.info.agent.id() }))
}

/// The example service's routes.
pub fn app(auth: Auth) -> axum::Router {
    axum::Router::new()
        .route("/", get(|| async { "public" }))
        .route("/me", get(me))
        .route("/page", get(page))
        .route("/logout-form", get(logout_form))
        .route("/orgs/{org}/projects", get(projects))
        .route("/api/reports", get(reports))
        .merge(auth.routes())
        .with_state(auth)
}

/// The demo issuer with `usr_alice` logged in at the authorization endpoint.
pub fn issuer() -> Served {
    issuer_where_replay_revokes(true)
}

/// [`issuer`], choosing whether a replayed refresh token revokes its grant (the testkit's
/// default, as stricter providers do) or is only refused (`false`: AuthPI's own behaviour).
pub fn issuer_where_replay_revokes(revokes: bool) -> Served {
    let issuer = Issuer::authpi_demo("http://127.0.0.1/i_test")
        .current_user("usr_alice")
        .replay_revokes_grant(revokes);
    Served::start(issuer).unwrap()
}

pub struct Instance {
    pub addr: SocketAddr,
    pub auth: Auth,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Instance {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// One app instance: its own listener, client (own JWKS cache and single-flight) and
/// `Sessions`, on the shared `store`.
pub async fn instance(
    served: &Served,
    store: Arc<dyn SessionStore>,
    config: SessionsConfig,
) -> Instance {
    instance_with(served, store, config, |_| {
        Settings::new()
            .post_logout_redirect_uri("http://127.0.0.1/logged-out")
            .api_audience("https://api.example.com/reports")
    })
    .await
}

/// [`instance`] with settings made from the instance's address.
pub async fn instance_with(
    served: &Served,
    store: Arc<dyn SessionStore>,
    config: SessionsConfig,
    settings: impl FnOnce(SocketAddr) -> Settings,
) -> Instance {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let redirect = format!("http://{addr}/callback");
    let config_ = Config::builder(served.issuer_url(), "client_web")
        .client_secret("secret_web")
        .redirect_uri(redirect)
        .build()
        .unwrap();
    let client = IdpClient::new(config_).unwrap();
    let auth = Auth::new(Sessions::new(store, client, config), settings(addr)).unwrap();
    let router = app(auth.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Instance {
        addr,
        auth,
        stop: Some(tx),
    }
}

/// A reqwest builder with this workspace's TLS setup (rustls with ring: reqwest is built
/// without a default crypto provider).
pub fn http_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_backend_preconfigured(authpi_idp_async::rustls_config(&Default::default()).unwrap())
}

/// A browser stand-in: a cookie jar (cookies are per host, not per port, as in browsers) and
/// no automatic redirects.
#[derive(Clone)]
pub struct Browser {
    pub http: reqwest::Client,
    pub cookies: HashMap<String, String>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: http_builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, r: reqwest::Response) -> Page {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let location = headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let set_cookies: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for c in &set_cookies {
            let first = c.split(';').next().unwrap();
            let (k, v) = first.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let body = r.text().await.unwrap_or_default();
        Page {
            status,
            location,
            set_cookies,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let r = self
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    pub async fn post(&mut self, url: &str, headers: &[(&str, &str)]) -> Page {
        let mut req = self.http.post(url).header("cookie", self.cookie_header());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        self.finish(r).await
    }

    /// Full login through `instance`: /login → issuer /authorize → /callback.
    pub async fn login(&mut self, instance: &Instance, query: &str) -> Page {
        let start = self.get(&instance.url(&format!("/login{query}"))).await;
        assert_eq!(start.status, 303, "login: {}", start.body);
        let authorize = start.location.unwrap();
        let issued = self.get(&authorize).await;
        assert_eq!(issued.status, 302, "authorize: {}", issued.body);
        let callback = issued.location.unwrap();
        self.get(&callback).await
    }

    pub fn session(&self) -> Option<String> {
        self.cookies.get("authpi-session").cloned()
    }
}

/// Marks the stored access token of session `id` as expired (the refresh is then due).
pub async fn expire(store: &dyn SessionStore, id: &str) -> authpi_idp_session::SessionRecord {
    let mut r = store.load(id).await.unwrap().unwrap();
    let expected = r.version;
    r.version += 1;
    r.tokens.expires_at = authpi_idp_session::unix_now() - 10;
    assert!(store.save(&r, Some(expected)).await.unwrap());
    r
}
