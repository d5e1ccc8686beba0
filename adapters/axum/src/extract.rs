//! Extractors: the session's agent, the per-organization guard, bearer tokens.

use crate::{Auth, ReqwestTransport, cookies, json_error};
use authpi_idp::Agent;
use authpi_idp_async::Transport;
use authpi_idp_session::SessionRecord;
use axum::extract::{FromRef, FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::marker::PhantomData;

/// A `Send + Sync` type marker.
type Marker<T> = PhantomData<fn() -> T>;

/// What a route answers when the request has no valid session.
pub trait OnMissing: Send + Sync + 'static {
    /// The response (the session cookie, if any, is cleared by the caller).
    fn missing<T: Transport>(parts: &Parts, auth: &Auth<T>) -> Response;
}

/// Pages: `GET`/`HEAD` redirect (303) to the login route with `return_to` set to the
/// requested path; other methods get 401.
#[derive(Debug)]
pub struct RedirectToLogin;

/// APIs: 401 `{"error":"login_required"}`.
#[derive(Debug)]
pub struct Unauthorized;

impl OnMissing for RedirectToLogin {
    fn missing<T: Transport>(parts: &Parts, auth: &Auth<T>) -> Response {
        if parts.method != Method::GET && parts.method != Method::HEAD {
            return Unauthorized::missing(parts, auth);
        }
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", axum::http::uri::PathAndQuery::as_str);
        let mut location = auth.inner.settings.login_path.clone();
        if crate::safe_return_to(path, &auth.inner.origin).is_some() {
            location.push_str("?return_to=");
            location.extend(url::form_urlencoded::byte_serialize(path.as_bytes()));
        }
        let mut r = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    }
}

impl OnMissing for Unauthorized {
    fn missing<T: Transport>(_: &Parts, _: &Auth<T>) -> Response {
        json_error(
            StatusCode::UNAUTHORIZED,
            "login_required",
            "no valid session",
        )
    }
}

/// The authenticated [`Agent`] of the browser's session (and the record it came from),
/// refreshed when due through the distributed single-flight. `M` picks the answer when there
/// is no session: [`RedirectToLogin`] (default) or [`Unauthorized`].
pub struct SessionAgent<M = RedirectToLogin, T = ReqwestTransport> {
    /// The agent.
    pub agent: Agent,
    /// The session record (id, `sub`, `sid`, version, tokens).
    pub session: SessionRecord,
    _mode: PhantomData<fn() -> (M, T)>,
}

impl<M, T> std::fmt::Debug for SessionAgent<M, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionAgent")
            .field("agent", &self.agent.id())
            .field("session", &self.session)
            .finish()
    }
}

/// Cached in the request's extensions so a guard and a handler load the session once.
#[derive(Clone)]
struct Loaded(Agent, SessionRecord);

impl<S, M, T> FromRequestParts<S> for SessionAgent<M, T>
where
    Auth<T>: FromRef<S>,
    S: Send + Sync,
    M: OnMissing,
    T: Transport,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        if let Some(Loaded(agent, session)) = parts.extensions.get::<Loaded>().cloned() {
            return Ok(SessionAgent {
                agent,
                session,
                _mode: PhantomData,
            });
        }
        let auth = Auth::<T>::from_ref(state);
        let names = &auth.inner.cookies;
        let Some(id) = cookies::get(&parts.headers, &names.session) else {
            return Err(M::missing(parts, &auth));
        };
        match auth.inner.sessions.agent(id).await {
            Ok((agent, session)) => {
                auth.store_ok();
                parts
                    .extensions
                    .insert(Loaded(agent.clone(), session.clone()));
                Ok(SessionAgent {
                    agent,
                    session,
                    _mode: PhantomData,
                })
            }
            Err(e) if e.needs_login() => {
                let mut r = M::missing(parts, &auth);
                if let Ok(v) = HeaderValue::from_str(&names.set(&names.session, "", None)) {
                    r.headers_mut().append(header::SET_COOKIE, v);
                }
                Err(r)
            }
            Err(e) => Err(auth.fail(&e)),
        }
    }
}

/// A permission: `ACTION` on `RESOURCE` (the AuthPI scope `RESOURCE:ACTION`). Declare one
/// with [`permission!`](crate::permission).
pub trait Permission: Send + Sync + 'static {
    /// The action, e.g. `read`.
    const ACTION: &'static str;
    /// The resource, e.g. `projects`.
    const RESOURCE: &'static str;
    /// True for [`AnyScope`]: no scope is required.
    const ANY: bool = false;
}

/// No scope required (any valid bearer token).
#[derive(Debug)]
pub struct AnyScope;

impl Permission for AnyScope {
    const ACTION: &'static str = "";
    const RESOURCE: &'static str = "";
    const ANY: bool = true;
}

/// Declares a [`Permission`] type: `permission!(pub ReadProjects = "read" on "projects");`
#[macro_export]
macro_rules! permission {
    ($vis:vis $name:ident = $action:literal on $resource:literal) => {
        #[doc = concat!("The permission `", $action, "` on `", $resource, "`.")]
        #[derive(Debug)]
        $vis struct $name;
        impl $crate::Permission for $name {
            const ACTION: &'static str = $action;
            const RESOURCE: &'static str = $resource;
        }
    };
}

/// Guard: the session's agent has `P` in the organization named by the route's `{org}` path
/// parameter (`has_access_in(org, P::ACTION, P::RESOURCE)`). Otherwise 403 naming the missing
/// permission. Without a session, `M` answers (default 401).
pub struct InOrg<P, M = Unauthorized, T = ReqwestTransport> {
    /// The agent.
    pub agent: Agent,
    /// The organization from the path.
    pub org: String,
    _p: Marker<(P, M, T)>,
}

impl<P, M, T> std::fmt::Debug for InOrg<P, M, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InOrg")
            .field("agent", &self.agent.id())
            .field("org", &self.org)
            .finish()
    }
}

impl<S, P, M, T> FromRequestParts<S> for InOrg<P, M, T>
where
    Auth<T>: FromRef<S>,
    S: Send + Sync,
    P: Permission,
    M: OnMissing,
    T: Transport,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let Ok(Path(params)) =
            Path::<HashMap<String, String>>::from_request_parts(parts, state).await
        else {
            return Err(json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "route without an {org} parameter",
            ));
        };
        let Some(org) = params.get("org").cloned() else {
            return Err(json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "route without an {org} parameter",
            ));
        };
        let SessionAgent { agent, .. } =
            SessionAgent::<M, T>::from_request_parts(parts, state).await?;
        if !agent.has_access_in(&org, P::ACTION, P::RESOURCE) {
            return Err(forbidden::<P>(&org));
        }
        Ok(InOrg {
            agent,
            org,
            _p: PhantomData,
        })
    }
}

fn forbidden<P: Permission>(org: &str) -> Response {
    let permission = format!("{}:{}", P::RESOURCE, P::ACTION);
    (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({
            "error": "forbidden",
            "error_description": format!("missing permission {permission} in organization {org}"),
            "missing_permission": permission,
            "org": org,
        })),
    )
        .into_response()
}

/// An API caller authenticated by an RFC 9068 access token (`Authorization: Bearer …`),
/// validated for [`Settings::api_audience`](crate::Settings::api_audience) through the shared
/// client (one JWKS cache, one single-flight), holding scope `P`.
///
/// Errors per RFC 6750 §3: no credentials ⇒ 401 `WWW-Authenticate: Bearer realm="api"`;
/// malformed header ⇒ 400 `error="invalid_request"`; invalid token ⇒ 401
/// `error="invalid_token"`; scope missing ⇒ 403 `error="insufficient_scope", scope="…"`.
pub struct BearerAgent<P = AnyScope, T = ReqwestTransport> {
    /// The validated token's agent and claims.
    pub info: authpi_idp::AccessTokenInfo,
    _p: PhantomData<fn() -> (P, T)>,
}

impl<P, T> std::fmt::Debug for BearerAgent<P, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAgent")
            .field("agent", &self.info.agent.id())
            .field("client_id", &self.info.client_id)
            .finish()
    }
}

fn bearer_error(status: StatusCode, challenge: &str, code: &str, description: &str) -> Response {
    let mut r = json_error(status, code, description);
    if let Ok(v) = HeaderValue::from_str(challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

impl<S, P, T> FromRequestParts<S> for BearerAgent<P, T>
where
    Auth<T>: FromRef<S>,
    S: Send + Sync,
    P: Permission,
    T: Transport,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let auth = Auth::<T>::from_ref(state);
        let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(if parts.headers.contains_key(header::AUTHORIZATION) {
                bearer_error(
                    StatusCode::BAD_REQUEST,
                    r#"Bearer realm="api", error="invalid_request""#,
                    "invalid_request",
                    "more than one Authorization header",
                )
            } else {
                bearer_error(
                    StatusCode::UNAUTHORIZED,
                    r#"Bearer realm="api""#,
                    "invalid_request",
                    "a bearer token is required",
                )
            });
        };
        let token = value.to_str().ok().and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            let token = token.trim_start_matches(' ');
            (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
                .then_some(token)
        });
        let Some(token) = token else {
            return Err(bearer_error(
                StatusCode::BAD_REQUEST,
                r#"Bearer realm="api", error="invalid_request""#,
                "invalid_request",
                "malformed Authorization header",
            ));
        };
        let Some(audience) = auth.inner.settings.api_audience.as_deref() else {
            return Err(bearer_error(
                StatusCode::UNAUTHORIZED,
                r#"Bearer realm="api", error="invalid_token""#,
                "invalid_token",
                "this service accepts no bearer tokens",
            ));
        };
        let client = auth.inner.sessions.client();
        let info = match client.validate_access_token(token, audience).await {
            Ok(info) => info,
            Err(authpi_idp_async::Error::Idp(e)) => {
                tracing::debug!(error = %e, "bearer token refused");
                return Err(bearer_error(
                    StatusCode::UNAUTHORIZED,
                    r#"Bearer realm="api", error="invalid_token""#,
                    "invalid_token",
                    "the access token is invalid",
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "bearer validation: provider keys unreachable");
                return Err(json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the provider's keys could not be fetched",
                ));
            }
        };
        if !P::ANY && !info.agent.has_access(P::ACTION, P::RESOURCE) {
            let scope = format!("{}:{}", P::RESOURCE, P::ACTION);
            return Err(bearer_error(
                StatusCode::FORBIDDEN,
                &format!(r#"Bearer realm="api", error="insufficient_scope", scope="{scope}""#),
                "insufficient_scope",
                &format!("scope {scope} is required"),
            ));
        }
        Ok(BearerAgent {
            info,
            _p: PhantomData,
        })
    }
}
