//! An axum service behind AuthPI, configured only by the environment:
//!
//! | variable | meaning |
//! |---|---|
//! | `AUTHPI_ISSUER_URL` | the issuer, e.g. `http://127.0.0.1:9090/i_dev` |
//! | `AUTHPI_CLIENT_ID`, `AUTHPI_CLIENT_SECRET` | the confidential client |
//! | `AUTHPI_REDIRECT_URI` | e.g. `http://127.0.0.1:3000/callback` (its origin is the service's) |
//! | `AUTHPI_API_AUDIENCE` | optional: audience of bearer tokens for `/api/reports` (default: the client id) |
//! | `REDIS_URL` | optional: sessions in Redis (else in memory, one instance only) |
//! | `BIND` | optional: listen address (default `127.0.0.1:3000`) |
//!
//! Routes: `/` public; `/login`, `/callback`, `POST /logout`, `POST /backchannel-logout`;
//! `/me` (the agent as JSON); `/orgs/{org}/projects` (needs `projects:read` in `org`);
//! `/api/reports` (bearer token with scope `reports:read`).
//!
//! `cargo run -p authpi-idp-axum --example service` (see the README).
use authpi_idp::Config;
use authpi_idp_axum::{
    Auth, BearerAgent, InOrg, RedirectToLogin, SessionAgent, SessionStore, Sessions,
    SessionsConfig, Settings, Unauthorized, permission,
};
use authpi_idp_reqwest::IdpClient;
use axum::Json;
use axum::response::Html;
use axum::routing::get;
use std::sync::Arc;

permission!(ReadProjects = "read" on "projects");
permission!(ReadReports = "read" on "reports");

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("set {name}"))
}

async fn home() -> Html<&'static str> {
    Html(
        r#"<!doctype html><title>service</title>
<p><a href="/login">log in</a> · <a href="/me">me</a> · <a href="/orgs/org_acme/projects">org_acme projects</a></p>
<form method="post" action="/logout"><button>log out</button></form>"#,
    )
}

async fn me(s: SessionAgent<Unauthorized>) -> Json<serde_json::Value> {
    let a = &s.agent;
    Json(serde_json::json!({
        "id": a.id(),
        "email": a.email(),
        "organizations": a.organizations().iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        "expires_at": a.expires_at(),
    }))
}

async fn projects(g: InOrg<ReadProjects, RedirectToLogin>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "org": g.org, "user": g.agent.id(), "projects": ["alpha", "beta"] }))
}

async fn reports(b: BearerAgent<ReadReports>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "caller": b.info.agent.id(), "reports": ["q1", "q2"] }))
}

/// The service's router over `auth` (also used by the load generator in the README).
fn app(auth: Auth) -> axum::Router {
    axum::Router::new()
        .route("/", get(home))
        .route("/me", get(me))
        .route("/orgs/{org}/projects", get(projects))
        .route("/api/reports", get(reports))
        .merge(auth.routes())
        .with_state(auth)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber_init();
    let redirect = env("AUTHPI_REDIRECT_URI")?;
    let client_id = env("AUTHPI_CLIENT_ID")?;
    let config = Config::builder(env("AUTHPI_ISSUER_URL")?, client_id.clone())
        .client_secret(env("AUTHPI_CLIENT_SECRET")?)
        .redirect_uri(redirect.clone())
        .build()?;
    let client = IdpClient::new(config)?;
    let store: Arc<dyn SessionStore> = match std::env::var("REDIS_URL") {
        Ok(url) => Arc::new(authpi_idp_redis::RedisStore::new(&url, "authpi:")?),
        Err(_) => Arc::new(authpi_idp_axum::MemoryStore::new()),
    };
    let origin = url::Url::parse(&redirect)?.origin().ascii_serialization();
    let audience = std::env::var("AUTHPI_API_AUDIENCE").unwrap_or(client_id);
    let settings = Settings::new()
        .post_logout_redirect_uri(format!("{origin}/"))
        .api_audience(audience);
    let auth = Auth::new(
        Sessions::new(store, client, SessionsConfig::default()),
        settings,
    )?;
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    eprintln!("listening on http://{bind}");
    axum::serve(listener, app(auth)).await?;
    Ok(())
}

/// Log lines (store outages, refused logins) on stderr.
fn tracing_subscriber_init() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .try_init();
}
