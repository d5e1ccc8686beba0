//! An axum 0.8 web app: login, callback, a page guarded by `has_access_in`, and logout, with the
//! embedded testkit issuer as the identity provider (its `/authorize` auto-approves
//! `usr_alice`). Sessions live in memory, keyed by a cookie.
//!
//! `cargo run -p authpi-idp-reqwest --example axum_app`, then open http://127.0.0.1:8080/
//!
//! With `--features tracing`, the SDK's spans are printed as they close: one
//! `authpi_idp.operation` per call and one `authpi_idp.request` per HTTP request, with the
//! method, endpoint path, kind, single-flight role (`led`/`joined`), status and duration, and
//! never a token, code, verifier, secret or query string.
use authpi_idp::{AuthorizationRequest, AuthorizationUrl, Config, LogoutRequest, TokenSet};
use authpi_idp_reqwest::{CreateAgentOptions, IdpClient};
use authpi_idp_testkit::Served;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const APP: &str = "http://127.0.0.1:8080";

#[derive(Clone)]
enum Session {
    LoggingIn(AuthorizationUrl),
    LoggedIn(TokenSet),
}

#[derive(Clone)]
struct App {
    idp: IdpClient,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
}

impl App {
    fn get(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
        let sid = cookies
            .split(';')
            .find_map(|c| c.trim().strip_prefix("sid="))?;
        let session = self.sessions.lock().ok()?.get(sid)?.clone();
        Some((sid.to_owned(), session))
    }

    fn put(&self, sid: &str, session: Session) {
        if let Ok(mut s) = self.sessions.lock() {
            s.insert(sid.to_owned(), session);
        }
    }
}

fn fail(status: StatusCode, e: impl std::fmt::Display) -> Response {
    (status, e.to_string()).into_response()
}

async fn home() -> Html<&'static str> {
    Html(
        r#"<a href="/login">log in</a> · <a href="/projects">projects</a> · <a href="/logout">log out</a>"#,
    )
}

async fn login(State(app): State<App>) -> Response {
    let request = AuthorizationRequest::new(["openid", "email", "profile"]);
    let tx = match app.idp.create_authorization_url(&request) {
        Ok(tx) => tx,
        Err(e) => return fail(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let sid = tx.state.clone(); // 32 random bytes: fine as a session id for a demo
    let url = tx.url.to_string();
    app.put(&sid, Session::LoggingIn(tx));
    let cookie = format!("sid={sid}; HttpOnly; SameSite=Lax; Path=/");
    ([(header::SET_COOKIE, cookie)], Redirect::to(&url)).into_response()
}

async fn callback(State(app): State<App>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let Some((sid, Session::LoggingIn(tx))) = app.get(&headers) else {
        return fail(StatusCode::BAD_REQUEST, "no login in progress");
    };
    match app
        .idp
        .exchange_callback(q.unwrap_or_default().as_str(), &tx)
        .await
    {
        Ok(agent) => {
            app.put(&sid, Session::LoggedIn(agent.into_tokens()));
            Redirect::to("/projects").into_response()
        }
        Err(e) => fail(
            StatusCode::UNAUTHORIZED,
            format!("login failed: {}", e.code()),
        ),
    }
}

async fn projects(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some((sid, Session::LoggedIn(tokens))) = app.get(&headers) else {
        return Redirect::to("/login").into_response();
    };
    let store = app.clone();
    let key = sid.clone();
    let options = CreateAgentOptions::new().on_refresh(move |rotated: TokenSet| {
        store.put(&key, Session::LoggedIn(rotated));
        async { Ok::<_, std::convert::Infallible>(()) }
    });
    match app.idp.create_agent(tokens, options).await {
        Ok(agent) if agent.has_access_in("org_acme", "read", "projects") => {
            Html(format!("<h1>Acme projects</h1><p>Hello {}</p>", agent.id())).into_response()
        }
        Ok(_) => fail(StatusCode::FORBIDDEN, "no access to Acme projects"),
        Err(e) if e.is_session_over() => Redirect::to("/login").into_response(),
        Err(e) => fail(StatusCode::BAD_GATEWAY, e.code()),
    }
}

async fn logout(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some((sid, Session::LoggedIn(tokens))) = app.get(&headers) else {
        return Redirect::to("/").into_response();
    };
    if let Ok(mut s) = app.sessions.lock() {
        s.remove(&sid);
    }
    let mut request = LogoutRequest::new().post_logout_redirect_uri("http://127.0.0.1/logged-out");
    if let Some(id_token) = tokens.id_token {
        request = request.id_token_hint(id_token);
    }
    match app.idp.create_logout_url(&request) {
        Ok(url) => Redirect::to(url.as_str()).into_response(),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .init();
    let served = Served::start_demo()?;
    let config = Config::builder(served.issuer_url(), "client_web")
        .client_secret("secret_web")
        .redirect_uri(format!("{APP}/callback"))
        .build()?;
    let app = App {
        idp: IdpClient::new(config)?,
        sessions: Arc::default(),
    };
    let router = Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/projects", get(projects))
        .route("/logout", get(logout))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    println!(
        "app on {APP}/ (identity provider at {})",
        served.issuer_url()
    );
    axum::serve(listener, router).await?;
    Ok(())
}
