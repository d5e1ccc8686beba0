//! The device authorization grant (RFC 8628): log in on a machine without a browser by entering
//! a short code on any other device.
//!
//! AuthPI does not offer it (yet); providers that do advertise `device_authorization_endpoint`
//! in their discovery document (oidc-provider, Keycloak, Entra ID, …).
//!
//! # Call order
//! 1. [`request`] builds the device authorization request; send it and give the response to
//!    [`DeviceAuthorization::from_response`], which validates it strictly.
//! 2. Show [`DeviceAuthorization::user_code`] and [`DeviceAuthorization::verification_uri`]
//!    (or the `_complete` form) to the user.
//! 3. Drive a [`DevicePoll`]: [`DevicePoll::poll`] answers [`DeviceStep::Wait`] (sleep until
//!    then, and poll again), [`DeviceStep::Send`] (send it, then
//!    [`DevicePoll::handle_response`]), [`DeviceStep::KeysRefreshed`] (keep the key set), or
//!    [`DeviceStep::Done`] with the verified [`Agent`].
//!
//! `authorization_pending` waits `interval` seconds (default 5); `slow_down` adds 5 seconds to
//! the interval for every later poll (RFC 8628 §3.5); `access_denied`, `expired_token` and any
//! other error end the poll with that error; so does reaching `expires_in` without an answer.
//! The ID token that comes with the tokens is verified exactly as after a code exchange
//! (signature, `iss`, `aud`, `azp`, `exp`, `iat`, `at_hash`), by the same
//! [`crate::flow::Exchange`] machine; no `nonce` is sent in this grant, so none is expected.
//!
//! # What never happens
//! - No poll before its time: `Send` is only returned once `now` reached the next poll time.
//! - No tokens with an error, and no request after `Done` or an error.

use super::common::FINISHED;
use super::{Exchange, Operation, Step};
use crate::agent::Agent;
use crate::client::Client;
use crate::config::is_loopback;
use crate::error::{ApiMisuse, Endpoint, Error, OAuthError, ResponseError};
use crate::http::{Outgoing, RequestKind, error_response, form_post, oauth_error_in};
use crate::json::JsonError;
use crate::json::{self, Members};
use crate::provider::KeySet;
use crate::time::UnixTime;
use std::fmt;
use url::Url;

/// The `grant_type` of a device access token request.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The polling interval when the provider names none (RFC 8628 §3.2).
pub const DEFAULT_INTERVAL: u64 = 5;
/// What `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: u64 = 5;

fn invalid(member: &'static str) -> Error {
    Error::Response {
        endpoint: Endpoint::DeviceAuthorization,
        reason: ResponseError::Json(JsonError::Invalid(member)),
    }
}

/// The provider's device authorization endpoint, from discovery.
fn endpoint(client: &Client) -> Result<Url, Error> {
    let raw = client
        .metadata()
        .get("device_authorization_endpoint")
        .ok_or(Error::Unsupported(Endpoint::DeviceAuthorization))?
        .as_str()
        .ok_or(Error::Unsupported(Endpoint::DeviceAuthorization))?;
    checked_url(client, raw).ok_or(Error::Unsupported(Endpoint::DeviceAuthorization))
}

/// An absolute `https` URL, or `http` on loopback when the issuer is on loopback.
fn checked_url(client: &Client, raw: &str) -> Option<Url> {
    let url = Url::parse(raw).ok()?;
    let issuer_loopback = Url::parse(client.issuer()).is_ok_and(|i| is_loopback(&i));
    let ok = (url.scheme() == "https" && url.host().is_some())
        || (issuer_loopback && url.scheme() == "http" && is_loopback(&url));
    (ok && url.fragment().is_none()).then_some(url)
}

/// The device authorization request (RFC 8628 §3.1): `scope` and the client's authentication.
///
/// # Errors
/// [`Error::Unsupported`] when the provider advertises no device authorization endpoint;
/// [`ApiMisuse::OpenidScopeRequired`] when `openid` is not among the scopes (the grant must yield a verifiable ID
/// token here).
pub fn request<I, S>(client: &Client, scopes: I) -> Result<Outgoing, Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let scopes: Vec<String> = scopes.into_iter().map(|s| s.as_ref().to_owned()).collect();
    if !scopes.iter().any(|s| s == "openid") {
        return Err(ApiMisuse::OpenidScopeRequired.into());
    }
    let url = endpoint(client)?;
    let scope = scopes.join(" ");
    Ok(Outgoing {
        kind: RequestKind::DeviceAuthorization,
        request: form_post(&url, client.config(), &[("scope", &scope)])?,
    })
}

/// A validated device authorization response (RFC 8628 §3.2).
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    verification_uri: Url,
    verification_uri_complete: Option<Url>,
    expires_at: UnixTime,
    interval: u64,
}

impl fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The device code is a bearer secret until it is spent; the user code is shown to the
        // user anyway but is just as good to an attacker for a few minutes.
        f.debug_struct("DeviceAuthorization")
            .field("device_code", &"[redacted]")
            .field("user_code", &"[redacted]")
            .field("verification_uri", &self.verification_uri.as_str())
            .field("expires_at", &self.expires_at)
            .field("interval", &self.interval)
            .finish()
    }
}

impl DeviceAuthorization {
    /// Validates the device authorization response received at `now`: HTTP 200, strict JSON
    /// (no duplicate members), non-empty `device_code` and `user_code` (the latter without
    /// control characters: it is shown to the user), an `https` `verification_uri` (and
    /// `verification_uri_complete` when present; `http` only on a loopback issuer), a positive
    /// whole `expires_in`, and an `interval` of at least 1 (default 5; clamped to `expires_in`).
    ///
    /// # Errors
    /// The provider's OAuth error (e.g. `invalid_client`, `invalid_scope`), or
    /// [`Error::Response`] naming the member that is wrong.
    pub fn from_response(
        client: &Client,
        response: &http::Response<Vec<u8>>,
        now: UnixTime,
    ) -> Result<Self, Error> {
        if response.status() != http::StatusCode::OK {
            return Err(error_response(Endpoint::DeviceAuthorization, response));
        }
        let map = json::parse_object(response.body()).map_err(|e| Error::Response {
            endpoint: Endpoint::DeviceAuthorization,
            reason: ResponseError::Json(e),
        })?;
        if let Some(e) = oauth_error_in(&map) {
            return Err(Error::OAuth(e));
        }
        let wrap = |e: JsonError| Error::Response {
            endpoint: Endpoint::DeviceAuthorization,
            reason: ResponseError::Json(e),
        };
        let required = |name: &'static str| -> Result<String, Error> {
            match map.opt_str(name).map_err(wrap)? {
                Some(s) if !s.is_empty() => Ok(s.to_owned()),
                Some(_) => Err(Error::Response {
                    endpoint: Endpoint::DeviceAuthorization,
                    reason: ResponseError::Empty(name),
                }),
                None => Err(wrap(JsonError::Missing(name))),
            }
        };
        let device_code = required("device_code")?;
        let user_code = required("user_code")?;
        if user_code.chars().any(char::is_control) || user_code.len() > 64 {
            return Err(invalid("user_code"));
        }
        let verification_uri = checked_url(client, &required("verification_uri")?)
            .ok_or_else(|| invalid("verification_uri"))?;
        let verification_uri_complete =
            match map.opt_str("verification_uri_complete").map_err(wrap)? {
                None => None,
                Some(raw) => Some(
                    checked_url(client, raw).ok_or_else(|| invalid("verification_uri_complete"))?,
                ),
            };
        let expires_in = map
            .opt_u64("expires_in")
            .map_err(wrap)?
            .ok_or_else(|| wrap(JsonError::Missing("expires_in")))?;
        if expires_in == 0 {
            return Err(invalid("expires_in"));
        }
        let interval = map
            .opt_u64("interval")
            .map_err(wrap)?
            .unwrap_or(DEFAULT_INTERVAL);
        if interval == 0 {
            return Err(invalid("interval"));
        }
        // An interval longer than the code's life would only wait past its expiry: clamp it.
        let interval = interval.min(expires_in);
        Ok(DeviceAuthorization {
            device_code,
            user_code,
            verification_uri,
            verification_uri_complete,
            expires_at: UnixTime(now.as_secs().saturating_add(expires_in)),
            interval,
        })
    }

    /// The code the user enters at [`Self::verification_uri`].
    #[must_use]
    pub fn user_code(&self) -> &str {
        &self.user_code
    }

    /// Where the user enters the code.
    #[must_use]
    pub fn verification_uri(&self) -> &Url {
        &self.verification_uri
    }

    /// The verification URI with the code already filled in, when the provider offers one.
    #[must_use]
    pub fn verification_uri_complete(&self) -> Option<&Url> {
        self.verification_uri_complete.as_ref()
    }

    /// When the device code expires.
    #[must_use]
    pub fn expires_at(&self) -> UnixTime {
        self.expires_at
    }

    /// The polling interval the provider asked for, in seconds.
    #[must_use]
    pub fn interval(&self) -> u64 {
        self.interval
    }
}

/// What a [`DevicePoll`] wants next.
///
/// Exhaustive on purpose, as [`Step`]: a new obligation must break every driver's build.
#[must_use]
#[allow(clippy::large_enum_variant)] // short-lived, never stored (as `flow::Step`)
pub enum DeviceStep {
    /// Nothing to do before this time: wait, then call [`DevicePoll::poll`] again.
    Wait {
        /// The earliest time of the next poll.
        until: UnixTime,
    },
    /// Send this request (no redirects) and pass the response to
    /// [`DevicePoll::handle_response`].
    Send(Outgoing),
    /// The provider's key set was refetched: keep it for later operations.
    KeysRefreshed(KeySet),
    /// The user approved: the verified agent, with its token set.
    Done(Agent),
}

impl fmt::Debug for DeviceStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceStep::Wait { until } => f.debug_struct("Wait").field("until", until).finish(),
            DeviceStep::Send(o) => f.debug_tuple("Send").field(o).finish(),
            DeviceStep::KeysRefreshed(k) => f.debug_tuple("KeysRefreshed").field(k).finish(),
            DeviceStep::Done(_) => f.write_str("Done(..)"),
        }
    }
}

enum PollState {
    /// Waiting for the next poll time.
    Idle,
    /// A token request is under way, run by an [`Exchange`].
    Exchanging {
        exchange: Box<Exchange>,
        /// The last `Send` was the device token request (not a JWKS fetch).
        sent_token_request: bool,
    },
    /// The provider said `authorization_pending` or `slow_down`: schedule the next poll.
    Pending,
    Finished,
}

/// Polls the token endpoint until the user approved (see the [module docs](self)).
pub struct DevicePoll {
    client: Client,
    keys: KeySet,
    device_code: String,
    expires_at: UnixTime,
    interval: u64,
    next_at: UnixTime,
    state: PollState,
}

impl fmt::Debug for DevicePoll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevicePoll")
            .field("interval", &self.interval)
            .field("next_at", &self.next_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl DevicePoll {
    /// Starts polling for `authorization` at `now` (the first poll may go out at once).
    #[must_use]
    pub fn new(
        client: &Client,
        authorization: &DeviceAuthorization,
        keys: &KeySet,
        now: UnixTime,
    ) -> Self {
        DevicePoll {
            client: client.clone(),
            keys: keys.clone(),
            device_code: authorization.device_code.clone(),
            expires_at: authorization.expires_at,
            interval: authorization.interval,
            next_at: now,
            state: PollState::Idle,
        }
    }

    /// The current polling interval (grows with every `slow_down`).
    #[must_use]
    pub fn interval(&self) -> u64 {
        self.interval
    }

    fn token_request(&self) -> Result<Outgoing, Error> {
        Ok(Outgoing {
            kind: RequestKind::DeviceCode,
            request: form_post(
                self.client.metadata().token_endpoint(),
                self.client.config(),
                &[
                    ("grant_type", GRANT_TYPE),
                    ("device_code", &self.device_code),
                ],
            )?,
        })
    }

    /// Advances the poll. See the [module docs](self) for the call order.
    ///
    /// # Errors
    /// `access_denied`, `expired_token` or another OAuth error from the provider; the device
    /// code expired without an answer (`expired_token`); the token response or its ID token
    /// is invalid; [`ApiMisuse`] when called out of order.
    pub fn poll(&mut self, now: UnixTime) -> Result<DeviceStep, Error> {
        loop {
            match std::mem::replace(&mut self.state, PollState::Finished) {
                PollState::Finished => return Err(FINISHED),
                PollState::Pending => {
                    // Never later than the expiry: a driver then learns of it at once.
                    self.next_at = UnixTime(
                        now.as_secs()
                            .saturating_add(self.interval)
                            .min(self.expires_at.as_secs()),
                    );
                    self.state = PollState::Idle;
                }
                PollState::Idle => {
                    if now >= self.expires_at {
                        return Err(Error::OAuth(OAuthError::new(
                            "expired_token",
                            Some("the device code expired before the user approved"),
                        )));
                    }
                    if now < self.next_at {
                        self.state = PollState::Idle;
                        return Ok(DeviceStep::Wait {
                            until: self.next_at.min(self.expires_at),
                        });
                    }
                    let exchange = Exchange::new(
                        self.client.clone(),
                        self.token_request()?,
                        &self.keys,
                        None,
                        None,
                    );
                    self.state = PollState::Exchanging {
                        exchange: Box::new(exchange),
                        sent_token_request: false,
                    };
                }
                PollState::Exchanging { mut exchange, .. } => {
                    let step = exchange.poll(now)?;
                    return Ok(match step {
                        Step::Send(out) => {
                            let is_token = out.kind == RequestKind::DeviceCode;
                            self.state = PollState::Exchanging {
                                exchange,
                                sent_token_request: is_token,
                            };
                            DeviceStep::Send(out)
                        }
                        Step::KeysRefreshed(keys) => {
                            self.keys = keys.clone();
                            self.state = PollState::Exchanging {
                                exchange,
                                sent_token_request: false,
                            };
                            DeviceStep::KeysRefreshed(keys)
                        }
                        Step::Done(agent) => DeviceStep::Done(agent),
                        // A code exchange rotates no stored tokens: never happens.
                        Step::Persist(_) => return Err(FINISHED),
                    });
                }
            }
        }
    }

    /// Records the response to the request of the last [`DeviceStep::Send`].
    pub fn handle_response(&mut self, response: http::Response<Vec<u8>>) {
        match &mut self.state {
            PollState::Exchanging {
                exchange,
                sent_token_request,
            } => {
                if *sent_token_request {
                    match pending(&response) {
                        Some(Pending::Wait) => {
                            self.state = PollState::Pending;
                            return;
                        }
                        Some(Pending::SlowDown) => {
                            self.interval = self.interval.saturating_add(SLOW_DOWN_STEP);
                            self.state = PollState::Pending;
                            return;
                        }
                        None => {}
                    }
                }
                exchange.handle_response(response);
            }
            // Out of order: `poll` reports it.
            _ => self.state = PollState::Finished,
        }
    }
}

impl DevicePoll {
    /// The request of the last [`DeviceStep::Send`] got no response (connection error,
    /// timeout, size cap): call it instead of [`Self::handle_response`], then keep polling; the
    /// next `poll` answers [`Error::NoResponse`] (a driver reports its own transport error).
    pub fn handle_transport_error(&mut self) {
        match &mut self.state {
            PollState::Exchanging { exchange, .. } => exchange.handle_transport_error(),
            _ => self.state = PollState::Finished,
        }
    }
}

enum Pending {
    Wait,
    SlowDown,
}

/// `authorization_pending` / `slow_down` (a 400 with that OAuth error, RFC 8628 §3.5).
fn pending(response: &http::Response<Vec<u8>>) -> Option<Pending> {
    if response.status() != http::StatusCode::BAD_REQUEST {
        return None;
    }
    let map = json::parse_object(response.body()).ok()?;
    match map.opt_str("error").ok().flatten()? {
        "authorization_pending" => Some(Pending::Wait),
        "slow_down" => Some(Pending::SlowDown),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::provider::ProviderMetadata;
    use authpi_idp_testkit::{Alg, Issuer};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    const ISS: &str = "https://op.example.com";
    const NOW: UnixTime = UnixTime(1_767_312_000);

    fn response(status: u16, body: &Value) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .body(serde_json::to_vec(body).unwrap())
            .unwrap()
    }

    fn raw(status: u16, body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    fn doc(device_endpoint: Option<&str>) -> Value {
        let mut d = json!({
            "issuer": ISS,
            "authorization_endpoint": format!("{ISS}/auth"),
            "token_endpoint": format!("{ISS}/token"),
            "jwks_uri": format!("{ISS}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        });
        if let Some(e) = device_endpoint {
            d["device_authorization_endpoint"] = e.into();
        }
        d
    }

    fn client_with(device_endpoint: Option<&str>) -> Client {
        let metadata =
            ProviderMetadata::from_response(&response(200, &doc(device_endpoint)), ISS, NOW)
                .unwrap();
        let config = Config::builder(ISS, "cli")
            .client_secret("cli_secret")
            .build()
            .unwrap();
        Client::with_metadata(config, metadata).unwrap()
    }

    fn client() -> Client {
        client_with(Some(&format!("{ISS}/device")))
    }

    /// The provider's signer: the testkit issuer's keys.
    fn signer() -> Issuer {
        Issuer::authpi_demo(ISS).build().unwrap()
    }

    fn keys(issuer: &Issuer) -> KeySet {
        KeySet::from_response(&response(200, &issuer.jwks()), NOW).unwrap()
    }

    fn authorization() -> Value {
        json!({
            "device_code": "DEVICE-CODE-SECRET",
            "user_code": "WDJB-MJHT",
            "verification_uri": format!("{ISS}/device"),
            "verification_uri_complete": format!("{ISS}/device?user_code=WDJB-MJHT"),
            "expires_in": 600,
            "interval": 5,
        })
    }

    fn parsed() -> DeviceAuthorization {
        DeviceAuthorization::from_response(&client(), &response(200, &authorization()), NOW)
            .unwrap()
    }

    fn form(req: &http::Request<Vec<u8>>) -> Vec<(String, String)> {
        url::form_urlencoded::parse(req.body())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn token_response(issuer: &Issuer, aud: &str, now: UnixTime) -> http::Response<Vec<u8>> {
        let id_token = issuer
            .sign(
                Alg::Es256,
                None,
                &json!({
                    "iss": ISS, "sub": "usr_alice", "aud": aud,
                    "iat": now.as_secs(), "exp": now.as_secs() + 300,
                    "email": "alice@example.com",
                }),
            )
            .unwrap();
        response(
            200,
            &json!({
                "access_token": "AT", "token_type": "Bearer", "expires_in": 1800,
                "refresh_token": "RT", "id_token": id_token, "scope": "openid offline_access",
            }),
        )
    }

    fn oauth(code: &str) -> http::Response<Vec<u8>> {
        response(400, &json!({"error": code}))
    }

    fn expect_send(step: DeviceStep) -> Outgoing {
        match step {
            DeviceStep::Send(out) => out,
            other => panic!("expected Send, got {other:?}"),
        }
    }

    fn expect_wait(step: DeviceStep) -> UnixTime {
        match step {
            DeviceStep::Wait { until } => until,
            other => panic!("expected Wait, got {other:?}"),
        }
    }

    #[test]
    fn rfc8628_3_1_device_authorization_request() {
        let out = request(&client(), ["openid", "offline_access"]).unwrap();
        assert_eq!(out.kind, RequestKind::DeviceAuthorization);
        assert!(!out.kind.is_token_request());
        assert_eq!(out.request.method(), http::Method::POST);
        assert_eq!(out.request.uri(), &format!("{ISS}/device")[..]);
        assert_eq!(
            form(&out.request),
            vec![("scope".to_owned(), "openid offline_access".to_owned())]
        );
        // Client authentication as at the token endpoint (client_secret_basic by default).
        assert!(
            out.request.headers()["authorization"]
                .to_str()
                .unwrap()
                .starts_with("Basic ")
        );
    }

    #[test]
    fn the_request_needs_an_advertised_https_endpoint_and_openid() {
        assert!(matches!(
            request(&client_with(None), ["openid"]),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(
            request(
                &client_with(Some("http://op.example.com/device")),
                ["openid"]
            ),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(
            request(&client(), ["profile"]),
            Err(Error::ApiMisuse(_))
        ));
    }

    #[test]
    fn rfc8628_3_2_response_is_parsed() {
        let a = parsed();
        assert_eq!(a.user_code(), "WDJB-MJHT");
        assert_eq!(a.verification_uri().as_str(), format!("{ISS}/device"));
        assert_eq!(
            a.verification_uri_complete().unwrap().as_str(),
            format!("{ISS}/device?user_code=WDJB-MJHT")
        );
        assert_eq!(a.expires_at(), UnixTime(NOW.as_secs() + 600));
        assert_eq!(a.interval(), 5);
        // interval is optional: 5 s (RFC 8628 §3.2).
        let mut v = authorization();
        v.as_object_mut().unwrap().remove("interval");
        let a = DeviceAuthorization::from_response(&client(), &response(200, &v), NOW).unwrap();
        assert_eq!(a.interval(), DEFAULT_INTERVAL);
        let debug = format!("{a:?}");
        assert!(
            !debug.contains("DEVICE-CODE-SECRET") && !debug.contains("WDJB"),
            "{debug}"
        );
    }

    #[test]
    fn rfc8628_3_2_invalid_responses_are_refused() {
        let with = |member: &str, value: Value| {
            let mut v = authorization();
            v[member] = value;
            v
        };
        let without = |member: &str| {
            let mut v = authorization();
            v.as_object_mut().unwrap().remove(member);
            v
        };
        let cases: Vec<(&str, Value)> = vec![
            ("no device_code", without("device_code")),
            ("no user_code", without("user_code")),
            ("no verification_uri", without("verification_uri")),
            ("no expires_in", without("expires_in")),
            ("empty device_code", with("device_code", json!(""))),
            ("numeric device_code", with("device_code", json!(42))),
            (
                "user_code with ESC",
                with("user_code", json!("\u{1b}[2JABCD")),
            ),
            (
                "relative verification_uri",
                with("verification_uri", json!("/device")),
            ),
            (
                "http verification_uri",
                with("verification_uri", json!("http://op.example.com/d")),
            ),
            (
                "verification_uri with fragment",
                with("verification_uri", json!(format!("{ISS}/d#x"))),
            ),
            (
                "javascript verification_uri_complete",
                with("verification_uri_complete", json!("javascript:alert(1)")),
            ),
            ("expires_in 0", with("expires_in", json!(0))),
            ("negative expires_in", with("expires_in", json!(-5))),
            ("string expires_in", with("expires_in", json!("600"))),
            ("interval 0", with("interval", json!(0))),
            ("fractional interval", with("interval", json!(2.5))),
        ];
        for (name, body) in cases {
            let err = DeviceAuthorization::from_response(&client(), &response(200, &body), NOW)
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Response {
                        endpoint: Endpoint::DeviceAuthorization,
                        ..
                    }
                ),
                "{name}: {err:?}"
            );
        }
        // Duplicate members are refused (strict JSON).
        let dup = r#"{"device_code":"a","device_code":"b","user_code":"U","verification_uri":"https://op.example.com/d","expires_in":600}"#;
        assert!(DeviceAuthorization::from_response(&client(), &raw(200, dup), NOW).is_err());
        // The provider's OAuth errors, with or without a 200.
        for resp in [
            oauth("invalid_client"),
            response(200, &json!({"error": "invalid_client"})),
        ] {
            let err = DeviceAuthorization::from_response(&client(), &resp, NOW).unwrap_err();
            assert_eq!(err.code(), "invalid_client");
        }
        let err = DeviceAuthorization::from_response(&client(), &raw(503, ""), NOW).unwrap_err();
        assert_eq!(err.status(), Some(503));
    }

    #[test]
    fn rfc8628_3_4_polls_honour_interval_pending_and_slow_down() {
        let issuer = signer();
        let c = client();
        let mut poll = DevicePoll::new(&c, &parsed(), &keys(&issuer), NOW);

        // The first poll goes out at once: the device access token request.
        let out = expect_send(poll.poll(NOW).unwrap());
        assert_eq!(out.kind, RequestKind::DeviceCode);
        assert!(out.kind.is_token_request());
        assert_eq!(out.request.uri(), &format!("{ISS}/token")[..]);
        let f = form(&out.request);
        assert!(f.contains(&("grant_type".into(), GRANT_TYPE.into())));
        assert!(f.contains(&("device_code".into(), "DEVICE-CODE-SECRET".into())));

        // authorization_pending: wait `interval` (5 s); no request before then.
        poll.handle_response(oauth("authorization_pending"));
        let t = UnixTime(NOW.as_secs() + 1);
        assert_eq!(
            expect_wait(poll.poll(t).unwrap()),
            UnixTime(t.as_secs() + 5)
        );
        assert_eq!(
            expect_wait(poll.poll(UnixTime(t.as_secs() + 4)).unwrap()),
            UnixTime(t.as_secs() + 5)
        );
        let t = UnixTime(t.as_secs() + 5);
        expect_send(poll.poll(t).unwrap());

        // slow_down: the interval grows by 5 s, for this and every later poll.
        poll.handle_response(oauth("slow_down"));
        assert_eq!(poll.interval(), 10);
        assert_eq!(
            expect_wait(poll.poll(t).unwrap()),
            UnixTime(t.as_secs() + 10)
        );
        let t = UnixTime(t.as_secs() + 10);
        expect_send(poll.poll(t).unwrap());
        poll.handle_response(oauth("authorization_pending"));
        assert_eq!(
            expect_wait(poll.poll(t).unwrap()),
            UnixTime(t.as_secs() + 10)
        );
        let t = UnixTime(t.as_secs() + 10);
        expect_send(poll.poll(t).unwrap());
        poll.handle_response(oauth("slow_down"));
        assert_eq!(poll.interval(), 15);
        let t2 = expect_wait(poll.poll(t).unwrap());
        assert_eq!(t2, UnixTime(t.as_secs() + 15));

        // Approved: the tokens, with the ID token verified.
        expect_send(poll.poll(t2).unwrap());
        poll.handle_response(token_response(&issuer, "cli", t2));
        let agent = match poll.poll(t2).unwrap() {
            DeviceStep::Done(a) => a,
            other => panic!("{other:?}"),
        };
        assert_eq!(agent.id(), "usr_alice");
        assert_eq!(agent.email(), Some("alice@example.com"));
        assert_eq!(agent.tokens().refresh_token.as_deref(), Some("RT"));
        assert_eq!(agent.tokens().expires_at, t2.as_secs() + 1800);
        // Over.
        assert!(matches!(poll.poll(t2), Err(Error::ApiMisuse(_))));
    }

    #[test]
    fn rfc8628_3_5_terminal_errors_end_the_poll() {
        let issuer = signer();
        for code in [
            "access_denied",
            "expired_token",
            "invalid_grant",
            "invalid_client",
        ] {
            let mut poll = DevicePoll::new(&client(), &parsed(), &keys(&issuer), NOW);
            expect_send(poll.poll(NOW).unwrap());
            poll.handle_response(oauth(code));
            let err = poll.poll(NOW).unwrap_err();
            assert_eq!(err.code(), code);
            assert!(
                poll.poll(NOW).is_err(),
                "{code}: poll goes on after an error"
            );
        }
        // A pending answer that is not a 400 is not a pending answer.
        let mut poll = DevicePoll::new(&client(), &parsed(), &keys(&issuer), NOW);
        expect_send(poll.poll(NOW).unwrap());
        poll.handle_response(response(500, &json!({"error": "authorization_pending"})));
        assert!(poll.poll(NOW).is_err());
    }

    #[test]
    fn rfc8628_3_5_the_device_code_expires_without_a_request() {
        let issuer = signer();
        let mut poll = DevicePoll::new(&client(), &parsed(), &keys(&issuer), NOW);
        expect_send(poll.poll(NOW).unwrap());
        poll.handle_response(oauth("authorization_pending"));
        let err = poll.poll(UnixTime(NOW.as_secs() + 600)).unwrap_err();
        assert_eq!(err.code(), "expired_token");
    }

    #[test]
    fn the_wait_never_passes_the_expiry() {
        let issuer = signer();
        let with = |expires_in: u64, interval: u64| {
            let mut v = authorization();
            v["expires_in"] = json!(expires_in);
            v["interval"] = json!(interval);
            DeviceAuthorization::from_response(&client(), &response(200, &v), NOW).unwrap()
        };
        // (expires_in, interval, answer, parsed interval, first wait)
        let table: &[(u64, u64, &str, u64, u64)] = &[
            (600, 5, "authorization_pending", 5, 5),
            (600, 600, "authorization_pending", 600, 600),
            (600, 601, "authorization_pending", 600, 600),
            (600, u64::MAX, "authorization_pending", 600, 600),
            (600, u64::MAX, "slow_down", 600, 600),
            (10, 8, "slow_down", 8, 10),
            (600, 590, "slow_down", 590, 595),
            (
                u64::MAX,
                u64::MAX,
                "slow_down",
                u64::MAX,
                u64::MAX - NOW.as_secs(),
            ),
        ];
        for &(expires_in, interval, answer, parsed_interval, first_wait) in table {
            let case = format!("expires_in {expires_in}, interval {interval}, {answer}");
            let auth = with(expires_in, interval);
            assert_eq!(auth.interval(), parsed_interval, "{case}");
            let mut poll = DevicePoll::new(&client(), &auth, &keys(&issuer), NOW);
            expect_send(poll.poll(NOW).unwrap());
            let mut t = NOW;
            for round in 0..5 {
                poll.handle_response(oauth(answer));
                let until = expect_wait(poll.poll(t).unwrap());
                if round == 0 {
                    assert_eq!(
                        until,
                        UnixTime(NOW.as_secs().saturating_add(first_wait)),
                        "{case}"
                    );
                }
                assert!(until <= auth.expires_at(), "{case}: waits past the expiry");
                // At `until` the next poll goes out, or the code has expired: never a later wait.
                match poll.poll(until) {
                    Ok(DeviceStep::Send(_)) => assert!(until < auth.expires_at(), "{case}"),
                    Err(e) => {
                        assert_eq!(e.code(), "expired_token", "{case}");
                        break;
                    }
                    Ok(other) => panic!("{case}: {other:?}"),
                }
                t = until;
            }
        }
    }

    #[test]
    fn the_id_token_is_verified_like_a_code_exchange() {
        let issuer = signer();
        // Another audience: refused, no agent.
        let mut poll = DevicePoll::new(&client(), &parsed(), &keys(&issuer), NOW);
        expect_send(poll.poll(NOW).unwrap());
        poll.handle_response(token_response(&issuer, "someone_else", NOW));
        assert_eq!(poll.poll(NOW).unwrap_err().code(), "invalid_id_token");

        // Signed by a key the provider does not publish: one JWKS refetch (as for a code
        // exchange), then refused.
        let stranger = Issuer::authpi_demo("https://elsewhere.example")
            .build()
            .unwrap();
        let mut poll = DevicePoll::new(&client(), &parsed(), &keys(&issuer), NOW);
        expect_send(poll.poll(NOW).unwrap());
        poll.handle_response(token_response(&stranger, "cli", NOW));
        let mut refetches = 0;
        let err = loop {
            match poll.poll(NOW) {
                Err(e) => break e,
                Ok(DeviceStep::Send(out)) => {
                    assert_eq!(out.kind, RequestKind::Jwks);
                    refetches += 1;
                    poll.handle_response(response(200, &issuer.jwks()));
                }
                Ok(DeviceStep::KeysRefreshed(_)) => {}
                Ok(other) => panic!("{other:?}"),
            }
        };
        assert_eq!(err.code(), "invalid_id_token");
        assert!(refetches <= 1, "{refetches} JWKS refetches");

        // No ID token at all: refused.
        let mut poll = DevicePoll::new(&client(), &parsed(), &keys(&issuer), NOW);
        expect_send(poll.poll(NOW).unwrap());
        poll.handle_response(response(
            200,
            &json!({"access_token": "AT", "token_type": "Bearer", "expires_in": 60}),
        ));
        assert!(poll.poll(NOW).is_err());
    }

    #[test]
    fn an_empty_key_set_is_fetched_before_the_first_poll() {
        let issuer = signer();
        let mut poll = DevicePoll::new(&client(), &parsed(), &KeySet::empty(), NOW);
        let out = expect_send(poll.poll(NOW).unwrap());
        assert_eq!(out.kind, RequestKind::Jwks);
        poll.handle_response(response(200, &issuer.jwks()));
        assert!(matches!(
            poll.poll(NOW).unwrap(),
            DeviceStep::KeysRefreshed(_)
        ));
        expect_send(poll.poll(NOW).unwrap());
        poll.handle_response(oauth("authorization_pending"));
        // The fetched keys are kept: the next poll goes straight to the token endpoint.
        let t = expect_wait(poll.poll(NOW).unwrap());
        assert_eq!(
            expect_send(poll.poll(t).unwrap()).kind,
            RequestKind::DeviceCode
        );
        poll.handle_response(token_response(&issuer, "cli", t));
        assert!(matches!(poll.poll(t).unwrap(), DeviceStep::Done(_)));
    }

    #[test]
    fn a_poll_without_a_response_is_no_response() {
        let issuer = signer();
        let mut poll = DevicePoll::new(&client(), &parsed(), &keys(&issuer), NOW);
        expect_send(poll.poll(NOW).unwrap());
        poll.handle_transport_error();
        assert!(matches!(
            poll.poll(NOW),
            Err(Error::NoResponse {
                endpoint: Endpoint::Token
            })
        ));
    }

    #[test]
    fn out_of_order_calls_are_usage_errors() {
        let issuer = signer();
        let mut poll = DevicePoll::new(&client(), &parsed(), &keys(&issuer), NOW);
        expect_send(poll.poll(NOW).unwrap());
        // poll without handle_response.
        assert!(matches!(poll.poll(NOW), Err(Error::ApiMisuse(_))));
        // handle_response without a request.
        let mut poll = DevicePoll::new(&client(), &parsed(), &keys(&issuer), NOW);
        poll.handle_response(oauth("authorization_pending"));
        assert!(matches!(poll.poll(NOW), Err(Error::ApiMisuse(_))));
    }

    proptest! {
        #[test]
        fn the_response_parser_never_panics(status in 100u16..600, body in ".*") {
            let _ = DeviceAuthorization::from_response(&client(), &raw(status, &body), NOW);
        }

        #[test]
        fn the_poll_never_panics_on_any_token_response(status in 100u16..600, body in ".*") {
            let issuer = signer();
            let mut poll = DevicePoll::new(&client(), &parsed(), &keys(&issuer), NOW);
            expect_send(poll.poll(NOW).unwrap());
            poll.handle_response(raw(status, &body));
            let _ = poll.poll(NOW);
        }
    }
}
