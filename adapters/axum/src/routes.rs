//! Login, callback and logout.

use crate::cookies::{self, safe_return_to};
use crate::{Auth, json_error};
use authpi_idp::{AuthorizationRequest, AuthorizationUrl, LogoutRequest, TokenTypeHint};
use authpi_idp_async::Transport;
use axum::Router;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

pub(crate) fn router<T: Transport, S: Clone + Send + Sync + 'static>(auth: Auth<T>) -> Router<S> {
    let (login, callback, logout, backchannel) = (
        auth.inner.settings.login_path.clone(),
        auth.inner.callback_path.clone(),
        auth.inner.settings.logout_path.clone(),
        auth.inner.settings.backchannel_path.clone(),
    );
    Router::new()
        .route(&login, get(login_route::<T>))
        .route(&callback, get(callback_route::<T>))
        .route(&logout, post(logout_route::<T>))
        .route(
            &backchannel,
            post(crate::backchannel::backchannel_route::<T>),
        )
        .with_state(auth)
}

/// A login in progress, stored under the login cookie's random id.
#[derive(Serialize, Deserialize)]
struct Transaction {
    tx: AuthorizationUrl,
    return_to: String,
}

#[derive(Deserialize)]
struct LoginQuery {
    org: Option<String>,
    return_to: Option<String>,
}

fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn login_route<T: Transport>(
    State(auth): State<Auth<T>>,
    Query(q): Query<LoginQuery>,
) -> Response {
    let inner = &auth.inner;
    let return_to = match q.return_to.as_deref() {
        None => inner.settings.default_return_to.clone(),
        Some(r) => match safe_return_to(r, &inner.origin) {
            Some(r) => r,
            None => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "return_to must be a relative path on this site",
                );
            }
        },
    };
    let mut request = AuthorizationRequest::new(inner.settings.scopes.iter().map(String::as_str));
    if let Some(org) = q.org.filter(|o| !o.is_empty()) {
        if org.len() > 128
            || !org
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return json_error(StatusCode::BAD_REQUEST, "invalid_request", "invalid org");
        }
        request = request.org(org);
    }
    let tx = match inner.sessions.client().create_authorization_url(&request) {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "could not build the authorization URL");
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "login unavailable",
            );
        }
    };
    let Some(id) = authpi_idp_session::random_token(32) else {
        return json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "no randomness",
        );
    };
    let url = tx.url.clone();
    let data = match serde_json::to_string(&Transaction { tx, return_to }) {
        Ok(d) => d,
        Err(_) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "login unavailable",
            );
        }
    };
    let ttl = inner.settings.login_ttl;
    if let Err(e) = inner
        .sessions
        .store()
        .put_transaction(&id, &data, ttl)
        .await
    {
        return auth.unavailable(&e);
    }
    auth.store_ok();
    let cookie = inner.cookies.set(&inner.cookies.login, &id, Some(ttl));
    see_other(&url, &[cookie])
}

async fn callback_route<T: Transport>(
    State(auth): State<Auth<T>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let inner = &auth.inner;
    let names = &inner.cookies;
    let clear_login = names.set(&names.login, "", None);
    let Some(tx_id) = cookies::get(&headers, &names.login) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "no login in progress in this browser",
        );
    };
    // Single use: taken (get-and-delete) before anything else.
    let data = match inner.sessions.store().take_transaction(tx_id).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "no login in progress in this browser",
            );
        }
        Err(e) => return auth.unavailable(&e),
    };
    let Ok(Transaction { tx, return_to }) = serde_json::from_str::<Transaction>(&data) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unreadable login",
        );
    };
    let query = query.unwrap_or_default();
    let agent = match inner
        .sessions
        .client()
        .exchange_callback(query.as_str(), &tx)
        .await
    {
        Ok(agent) => agent,
        Err(e) => {
            tracing::warn!(error = %e, code = e.code(), "login callback refused");
            let status = match e {
                authpi_idp_async::Error::Transport(_) => StatusCode::BAD_GATEWAY,
                _ => StatusCode::BAD_REQUEST,
            };
            let mut r = json_error(status, e.code(), "the login could not be completed");
            if let Ok(v) = HeaderValue::from_str(&clear_login) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            return r;
        }
    };
    let sub = agent.id().to_owned();
    let tokens = agent.into_tokens();
    let sid = tokens.session_id();
    // Session renewal: a session id the browser brought is ended, never reused.
    if let Some(old) = cookies::get(&headers, &names.session) {
        if let Err(e) = inner.sessions.store().delete(old).await {
            return auth.unavailable(&e);
        }
    }
    let record = match inner.sessions.create(tokens, &sub, sid.as_deref()).await {
        Ok(r) => r,
        Err(e) => return auth.fail(&e),
    };
    auth.store_ok();
    let session = names.set(
        &names.session,
        &record.id,
        Some(inner.sessions.config().session_ttl),
    );
    see_other(&return_to, &[session, clear_login])
}

/// CSRF rule for state-changing POSTs: `Origin` must be ours; without `Origin`,
/// `Sec-Fetch-Site` must say `same-origin`. Anything else is refused.
pub(crate) fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    match headers.get(header::ORIGIN).map(HeaderValue::to_str) {
        Some(Ok(o)) => o == origin,
        Some(Err(_)) => false,
        None => headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "same-origin"),
    }
}

async fn logout_route<T: Transport>(State(auth): State<Auth<T>>, headers: HeaderMap) -> Response {
    let inner = &auth.inner;
    if !same_origin(&headers, &inner.origin) {
        return json_error(
            StatusCode::FORBIDDEN,
            "invalid_request",
            "cross-site logout refused",
        );
    }
    let names = &inner.cookies;
    let clear = names.set(&names.session, "", None);
    let record = match cookies::get(&headers, &names.session) {
        None => None,
        Some(id) => match inner.sessions.end(id).await {
            Ok(r) => r,
            Err(e) => return auth.fail(&e),
        },
    };
    auth.store_ok();
    let client = inner.sessions.client();
    let mut logout = LogoutRequest::new();
    if let Some(record) = &record {
        if let Some(rt) = &record.tokens.refresh_token {
            if let Err(e) = client
                .revoke_token(rt, Some(TokenTypeHint::RefreshToken))
                .await
            {
                tracing::warn!(error = %e, "refresh token revocation failed at logout");
            }
        }
        if let Some(id_token) = &record.tokens.id_token {
            logout = logout.id_token_hint(id_token.clone());
        }
    }
    if let Some(uri) = &inner.settings.post_logout_redirect_uri {
        logout = logout.post_logout_redirect_uri(uri.clone());
    }
    let location = match client.create_logout_url(&logout) {
        Ok(url) => url.to_string(),
        Err(_) => inner.settings.default_return_to.clone(),
    };
    see_other(&location, &[clear])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_rule() {
        let origin = "https://app.example.com";
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            m
        };
        assert!(same_origin(&h(&[("origin", origin)]), origin));
        assert!(same_origin(
            &h(&[("sec-fetch-site", "same-origin")]),
            origin
        ));
        assert!(!same_origin(&h(&[]), origin));
        assert!(!same_origin(
            &h(&[("origin", "https://evil.example")]),
            origin
        ));
        assert!(!same_origin(&h(&[("origin", "null")]), origin));
        assert!(!same_origin(
            &h(&[("sec-fetch-site", "cross-site")]),
            origin
        ));
        assert!(!same_origin(&h(&[("sec-fetch-site", "same-site")]), origin));
        // Origin wins over Sec-Fetch-Site.
        assert!(!same_origin(
            &h(&[
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "same-origin")
            ]),
            origin
        ));
    }
}
