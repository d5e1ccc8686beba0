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

use crate::agent::Agent;
use crate::client::Client;
use crate::config::is_loopback;
use crate::error::{Endpoint, Error, OAuthError, ResponseError};
use crate::flow::{Exchange, Operation, Step};
use crate::http::{Outgoing, RequestKind, error_response, form_post, oauth_error_in};
use crate::json::JsonError;
use crate::json::{self, Members};
use crate::jwks::KeySet;
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
        .ok_or(Error::Unsupported(
            "the device authorization grant (the provider advertises no \
             device_authorization_endpoint)",
        ))?
        .as_str()
        .ok_or(Error::Unsupported(
            "a device_authorization_endpoint that is not a string",
        ))?;
    checked_url(client, raw).ok_or(Error::Unsupported(
        "a device_authorization_endpoint that is not an https URL",
    ))
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
/// [`Error::Usage`] when `openid` is not among the scopes (the grant must yield a verifiable ID
/// token here).
pub fn request<I, S>(client: &Client, scopes: I) -> Result<Outgoing, Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let scopes: Vec<String> = scopes.into_iter().map(|s| s.as_ref().to_owned()).collect();
    if !scopes.iter().any(|s| s == "openid") {
        return Err(Error::Usage("the device login needs the `openid` scope"));
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
    /// whole `expires_in`, and an `interval` of at least 1 (default 5).
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
#[must_use]
#[non_exhaustive]
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

const FINISHED: Error = Error::Usage("the device poll is already finished");

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
    /// is invalid; [`Error::Usage`] when called out of order.
    pub fn poll(&mut self, now: UnixTime) -> Result<DeviceStep, Error> {
        loop {
            match std::mem::replace(&mut self.state, PollState::Finished) {
                PollState::Finished => return Err(FINISHED),
                PollState::Pending => {
                    self.next_at = UnixTime(now.as_secs().saturating_add(self.interval));
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
                            until: self.next_at,
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
                        // A code exchange never rotates tokens of a stored session.
                        _ => return Err(Error::Usage("unexpected step in a device poll")),
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
