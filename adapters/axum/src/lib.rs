//! # authpi-idp-axum
//!
//! [`authpi_idp`] in an axum 0.8 service, with sessions shared by every instance
//! ([`authpi_idp_session`]; Redis in `authpi-idp-redis`):
//!
//! - [`Auth::routes`]: `POST /backchannel-logout` (see below), `GET /login` (optional `org`, `return_to` limited to same-origin relative
//!   paths), `GET /callback`, `POST /logout` (CSRF-checked: revokes the refresh token, ends the
//!   session, redirects through the provider's logout URL);
//! - [`SessionAgent`]: the authenticated [`Agent`] of the browser's session, refreshed when due
//!   through the distributed single-flight; per route, a missing session either redirects to
//!   the login ([`RedirectToLogin`], pages) or answers 401 ([`Unauthorized`], APIs);
//! - [`InOrg`]: `has_access_in(org, action, resource)` with `org` taken from the path; the 403
//!   names the missing permission;
//! - [`BearerAgent`]: RFC 9068 access tokens for APIs, through the same client (one JWKS cache,
//!   one single-flight), with RFC 6750 `WWW-Authenticate` errors.
//!
//! ```no_run
//! use authpi_idp_axum::{
//!     Auth, InOrg, MemoryStore, SessionAgent, Sessions, SessionsConfig, Settings, Unauthorized,
//!     permission,
//! };
//! use axum::routing::get;
//! use std::sync::Arc;
//!
//! permission!(ReadProjects = "read" on "projects");
//!
//! async fn me(s: SessionAgent<Unauthorized>) -> String {
//!     s.agent.id().to_owned()
//! }
//!
//! async fn projects(g: InOrg<ReadProjects>) -> String {
//!     format!("projects of {}", g.org)
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = authpi_idp::Config::builder("https://idp.authpi.com/i_acme", "client_web")
//!     .client_secret("secret")
//!     .redirect_uri("https://app.example.com/callback")
//!     .build()?;
//! let client = authpi_idp_reqwest::IdpClient::new(config)?;
//! // `authpi_idp_redis::RedisStore` for several instances.
//! let store = Arc::new(MemoryStore::new());
//! let auth = Auth::new(Sessions::new(store, client, SessionsConfig::default()), Settings::new())?;
//! let app = axum::Router::new()
//!     .route("/me", get(me))
//!     .route("/orgs/{org}/projects", get(projects))
//!     .merge(auth.routes())
//!     .with_state(auth);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! ## Cookies and the login transaction
//!
//! Two cookies, both `HttpOnly; SameSite=Lax; Path=/` and, unless the redirect URI is
//! `http://` on a loopback address (local development), `Secure` with the `__Host-` prefix
//! (browsers refuse a `__Host-` cookie without `Secure`): the session id (256 bits from the OS
//! CSPRNG, renewed at every login — an id the browser brought is deleted, never adopted) and
//! the login transaction id. The transaction (PKCE verifier, `state`, `nonce`, `return_to`)
//! lives in the store under that random id, so it is bound to the browser that started the
//! login, and is taken with an atomic get-and-delete, so it is single-use. The OAuth `state` is
//! never a session id.
//!
//! ## Failures
//!
//! A store failure answers 503 with `Retry-After: 1`; one error line is logged when the store
//! becomes unavailable and one when it recovers (not one per request).
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod backchannel;
mod cookies;
mod extract;
mod routes;

pub use cookies::{CookieNames, safe_return_to};
pub use extract::{
    AnyScope, BearerAgent, InOrg, OnMissing, Permission, RedirectToLogin, SessionAgent,
    Unauthorized,
};

pub use authpi_idp::Agent;
pub use authpi_idp_reqwest::ReqwestTransport;
pub use authpi_idp_session::{
    MemoryStore, SessionError, SessionRecord, SessionStore, Sessions, SessionsConfig, StoreError,
};

use authpi_idp_async::Transport;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Settings of [`Auth`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Settings {
    /// Scopes asked at login (default `openid email profile`).
    pub scopes: Vec<String>,
    /// Where the provider sends the browser after logout (must be registered there).
    pub post_logout_redirect_uri: Option<String>,
    /// Path of the login route (default `/login`), used by [`RedirectToLogin`].
    pub login_path: String,
    /// Path of the callback route (default: the path of the client's redirect URI).
    pub callback_path: Option<String>,
    /// Path of the logout route (default `/logout`).
    pub logout_path: String,
    /// Path of the back-channel logout route (default `/backchannel-logout`).
    pub backchannel_path: String,
    /// Where a login without `return_to` lands (default `/`).
    pub default_return_to: String,
    /// How long a login may take (default 10 min).
    pub login_ttl: Duration,
    /// Audience required of bearer access tokens ([`BearerAgent`]); `None`: bearer tokens are
    /// refused.
    pub api_audience: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            scopes: ["openid", "email", "profile"].map(str::to_owned).to_vec(),
            post_logout_redirect_uri: None,
            login_path: "/login".to_owned(),
            callback_path: None,
            logout_path: "/logout".to_owned(),
            backchannel_path: "/backchannel-logout".to_owned(),
            default_return_to: "/".to_owned(),
            login_ttl: Duration::from_secs(600),
            api_audience: None,
        }
    }
}

impl Settings {
    /// The defaults.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the scopes asked at login.
    #[must_use]
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the post-logout redirect URI.
    #[must_use]
    pub fn post_logout_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.post_logout_redirect_uri = Some(uri.into());
        self
    }

    /// Sets the audience of bearer access tokens.
    #[must_use]
    pub fn api_audience(mut self, audience: impl Into<String>) -> Self {
        self.api_audience = Some(audience.into());
        self
    }
}

/// Why [`Auth::new`] refused a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The client has no redirect URI.
    NoRedirectUri,
    /// The redirect URI is not an absolute `https://` URL (or `http://` on loopback).
    InsecureRedirectUri,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NoRedirectUri => f.write_str("the client has no redirect URI"),
            ConfigError::InsecureRedirectUri => f.write_str(
                "the redirect URI must be https:// (http:// only on a loopback address)",
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

pub(crate) struct Inner<T> {
    pub(crate) sessions: Sessions<T>,
    pub(crate) settings: Settings,
    pub(crate) cookies: CookieNames,
    /// `scheme://host[:port]` of the service (from the redirect URI).
    pub(crate) origin: String,
    pub(crate) callback_path: String,
    store_ok: AtomicBool,
}

/// The web layer of one service instance: sessions, settings, cookie names. Put it in the
/// router's state (implement `FromRef` for a bigger state). Cheap to clone.
pub struct Auth<T = ReqwestTransport> {
    pub(crate) inner: Arc<Inner<T>>,
}

impl<T> Clone for Auth<T> {
    fn clone(&self) -> Self {
        Auth {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> fmt::Debug for Auth<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("origin", &self.inner.origin)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> Auth<T> {
    /// The web layer over `sessions`. The service's origin and the cookie policy come from the
    /// client's redirect URI.
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn new(sessions: Sessions<T>, settings: Settings) -> Result<Self, ConfigError> {
        let redirect = sessions
            .client()
            .client()
            .config()
            .redirect_uri()
            .ok_or(ConfigError::NoRedirectUri)?;
        let url = url::Url::parse(redirect).map_err(|_| ConfigError::InsecureRedirectUri)?;
        let secure = match url.scheme() {
            "https" => true,
            "http" if cookies::is_loopback(&url) => false,
            _ => return Err(ConfigError::InsecureRedirectUri),
        };
        let origin = url.origin().ascii_serialization();
        let callback_path = settings
            .callback_path
            .clone()
            .unwrap_or_else(|| url.path().to_owned());
        Ok(Auth {
            inner: Arc::new(Inner {
                sessions,
                settings,
                cookies: CookieNames::new(secure),
                origin,
                callback_path,
                store_ok: AtomicBool::new(true),
            }),
        })
    }

    /// The sessions.
    pub fn sessions(&self) -> &Sessions<T> {
        &self.inner.sessions
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The cookie names in use.
    pub fn cookie_names(&self) -> &CookieNames {
        &self.inner.cookies
    }

    /// The service's origin (`scheme://host[:port]`).
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The login, callback and logout routes (paths from [`Settings`]), ready to
    /// [`merge`](axum::Router::merge) into any router.
    pub fn routes<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        routes::router(self.clone())
    }

    /// Turns a session failure into a response (and logs store outages once).
    pub(crate) fn fail(&self, e: &SessionError) -> Response {
        match e {
            SessionError::Unavailable(_) | SessionError::Timeout => self.unavailable(e),
            SessionError::Provider(p) => {
                tracing::warn!(error = %p, code = p.code(), "identity provider error");
                let status = if p.status().is_some() {
                    StatusCode::BAD_GATEWAY
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                json_error(
                    status,
                    "temporarily_unavailable",
                    "the identity provider failed",
                )
            }
            SessionError::NotFound | SessionError::Over => {
                json_error(StatusCode::UNAUTHORIZED, "login_required", "log in")
            }
            _ => json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error",
            ),
        }
    }

    /// 503 for a store failure; logs when the store goes from healthy to failing.
    pub(crate) fn unavailable(&self, e: &dyn fmt::Display) -> Response {
        if self.inner.store_ok.swap(false, Ordering::SeqCst) {
            tracing::error!(error = %e, "session store unavailable: answering 503 until it recovers");
        }
        let mut r = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "sessions are unavailable, try again",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    }

    /// Records a store success (logs the recovery once).
    pub(crate) fn store_ok(&self) {
        if !self.inner.store_ok.swap(true, Ordering::SeqCst) {
            tracing::warn!("session store available again");
        }
    }
}

/// `{"error": code, "error_description": description}` with `status`.
pub(crate) fn json_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "error": code, "error_description": description })),
    )
        .into_response()
}
