//! `POST /backchannel-logout` (OIDC Back-Channel Logout 1.0).

use crate::{Auth, json_error};
use authpi_idp_async::Transport;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// Validates the `logout_token` (the core's [`authpi_idp::Client::backchannel_logout`], keys
/// from the shared cache), refuses a `jti` already seen by any instance (the store's replay
/// cache), ends every session with that `sid` (or, without `sid`, every session of `sub`) in
/// the store — so on every instance — and then records the `jti` until the token could no
/// longer be accepted.
///
/// Answers 200 with `Cache-Control: no-store`; 400 `{"error":"invalid_request",…}` for any
/// invalid or replayed token (§2.8); 503 when the store or the JWKS is unreachable.
pub(crate) async fn backchannel_route<T: Transport>(
    State(auth): State<Auth<T>>,
    body: Bytes,
) -> Response {
    let mut r = handle(&auth, &body).await;
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn handle<T: Transport>(auth: &Auth<T>, body: &[u8]) -> Response {
    let client = auth.inner.sessions.client();
    let op = match client.client().backchannel_logout(body, &client.keys()) {
        Ok(op) => op,
        Err(e) => return refused(&e),
    };
    let token = match client.run(op).await {
        Ok(token) => token,
        Err(authpi_idp_async::Error::Idp(e)) => return refused(&e),
        Err(e) => {
            tracing::warn!(error = %e, "back-channel logout: could not fetch the provider's keys");
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the provider's keys could not be fetched",
            );
        }
    };
    // Replay check first, the jti recorded only once the sessions ended: a store failure in
    // between answers 503 and the provider's retry is processed, not refused as a replay.
    let store = auth.inner.sessions.store();
    match store.has_jti(token.jwt_id()).await {
        Ok(false) => {}
        Ok(true) => return replayed(),
        Err(e) => return auth.unavailable(&e),
    }
    if let Err(e) = auth
        .inner
        .sessions
        .end_matching(token.session_id(), token.subject())
        .await
    {
        return auth.fail(&e);
    }
    let now = authpi_idp_session::unix_now();
    let keep = token.accept_until().as_secs().saturating_sub(now).max(60);
    match store
        .remember_jti(token.jwt_id(), Duration::from_secs(keep))
        .await
    {
        Ok(true) => {
            auth.store_ok();
            tracing::info!("back-channel logout: sessions ended");
            StatusCode::OK.into_response()
        }
        // A concurrent delivery of the same token got here first (both ended the same
        // sessions).
        Ok(false) => replayed(),
        Err(e) => auth.unavailable(&e),
    }
}

fn replayed() -> Response {
    json_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "the logout token was already used",
    )
}

fn refused(e: &authpi_idp::Error) -> Response {
    tracing::info!(error = %e, "back-channel logout token refused");
    json_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string())
}
