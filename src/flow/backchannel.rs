//! OpenID Connect Back-Channel Logout 1.0: validating a `logout_token`.
//!
//! When a session ends at the provider, the provider POSTs a signed *logout token* to each
//! relying party's registered `backchannel_logout_uri`
//! (`application/x-www-form-urlencoded`, one `logout_token` parameter). The relying party
//! validates it and ends every local session it names (by `sid`, or by `sub` when there is no
//! `sid`). [`Client::backchannel_logout`] takes the request body and returns a
//! [`ValidateLogoutToken`] operation, driven like every other [`Operation`]; its output is a
//! [`LogoutToken`].
//!
//! # What is verified (§2.4, §2.6)
//! 1. The body has exactly one non-empty `logout_token`.
//! 2. The JWS, with the same rules and key set as ID tokens (algorithm allowlist, strict
//!    header, signature against the provider's JWKS). A `typ`, when present, must be
//!    `logout+jwt` (case-insensitive, with or without `application/`): an access token
//!    (`at+jwt`) is never a logout token.
//! 3. `iss` equals the issuer exactly; `aud` contains our client id and any other audience is
//!    one configured as trusted (the ID-token rule); `iat` is present and not in the future
//!    beyond the leeway; the token is refused once `exp` (when present) or
//!    `iat` + [`LOGOUT_TOKEN_MAX_AGE`] has passed (plus leeway); `nbf`, when present, has
//!    passed; `jti` is a non-empty string.
//! 4. `sid` or `sub` (non-empty strings) is present.
//! 5. `events` is an object with the member `http://schemas.openid.net/event/backchannel-logout`,
//!    whose value is an object.
//! 6. There is no `nonce` (§2.4: it is forbidden, precisely so that an ID token can never pass
//!    as a logout token; an ID token also lacks `events`).
//!
//! What the core does **not** do: the `jti` replay check (§2.6 step 6) needs state shared by
//! every instance of a service, so the caller does it through its session store, keeping each
//! `jti` at least until [`LogoutToken::accept_until`]. Ending the sessions is the caller's too.
//!
//! # Refetching keys
//! Anyone can POST to a back-channel logout endpoint, so a token with an unknown `kid` causes
//! at most one JWKS request per operation, and only when the key set's last fetch is older
//! than [`crate::provider::REFETCH_COOLDOWN`] (the rule for access tokens presented to an API):
//! forged tokens cannot turn into a flood of JWKS requests.
//!
//! # Errors
//! Every refusal is [`Error::LogoutToken`], whose [`Error::code`] is `invalid_request`, the
//! code §2.8 asks the endpoint to answer with (HTTP 400). No error carries the token.

use super::common::{FINISHED, Shared, record_inputs};
use super::keys::{TokenSource, Verified};
use super::{Operation, Step};
use crate::client::Client;
use crate::error::{ClaimError, Error, JoseError, LogoutTokenError, TokenError};
use crate::id_token;
use crate::jose::Jws;
use crate::json::{self, Members as _};
use crate::provider::KeySet;
use crate::time::UnixTime;
use crate::token::TokenSet;
use serde_json::Value;
use std::fmt;

/// The `events` member that marks a back-channel logout token (§2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long after its `iat` a logout token is accepted at most (seconds, before the leeway),
/// even when its `exp` is later or absent. Logout tokens are delivered at once; the bound keeps
/// the `jti` replay cache finite (see [`LogoutToken::accept_until`]).
pub const LOGOUT_TOKEN_MAX_AGE: u64 = 300;

/// A validated OIDC Back-Channel Logout 1.0 logout token. Its `Debug` redacts the provider's
/// `sid` (a session identifier).
#[derive(Clone, PartialEq, Eq)]
pub struct LogoutToken {
    issuer: String,
    subject: Option<String>,
    session_id: Option<String>,
    jwt_id: String,
    issued_at: UnixTime,
    expires_at: Option<UnixTime>,
    accept_until: UnixTime,
}

impl fmt::Debug for LogoutToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogoutToken")
            .field("issuer", &self.issuer)
            .field("subject", &self.subject)
            .field(
                "session_id",
                &self.session_id.as_ref().map(|_| "[redacted]"),
            )
            .field("jwt_id", &self.jwt_id)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("accept_until", &self.accept_until)
            .finish()
    }
}

impl LogoutToken {
    /// `iss`: the issuer (equal to the client's).
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `sub`: the user whose sessions end (all of them when there is no `sid`).
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// `sid`: the provider session that ended.
    #[must_use]
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// `jti`, for the caller's replay cache.
    #[must_use]
    pub fn jwt_id(&self) -> &str {
        &self.jwt_id
    }

    /// `iat`.
    #[must_use]
    pub fn issued_at(&self) -> UnixTime {
        self.issued_at
    }

    /// `exp`, when the token has one.
    #[must_use]
    pub fn expires_at(&self) -> Option<UnixTime> {
        self.expires_at
    }

    /// The last moment this token would still be accepted (with the leeway of the client that
    /// validated it): a replay cache must keep [`jwt_id`](Self::jwt_id) at least until then.
    #[must_use]
    pub fn accept_until(&self) -> UnixTime {
        self.accept_until
    }
}

impl TokenSet {
    /// The `sid` (provider session id) of the set's ID token, for indexing a local session so
    /// that a back-channel logout naming that `sid` finds it (compare with
    /// [`LogoutToken::session_id`]).
    ///
    /// Decoded with the strict JSON rules; the signature is not verified again: the ID token
    /// was verified when it entered the set (by the exchange or the refresh that produced it).
    /// `None` when there is no ID token, it cannot be decoded, or it has no string `sid`.
    #[must_use]
    pub fn session_id(&self) -> Option<String> {
        let jws = Jws::parse(self.id_token.as_deref()?).ok()?;
        let map = json::parse_object(jws.payload()).ok()?;
        map.opt_str("sid").ok().flatten().map(str::to_owned)
    }
}

impl Client {
    /// Takes the POST body of a back-channel logout request (`application/x-www-form-urlencoded`
    /// with exactly one `logout_token`) and returns the operation that validates it.
    ///
    /// The operation verifies the signature via the JWKS (an unknown `kid` refetches at most
    /// once, and only outside the cooldown: anyone can POST here), `iss`, `aud` (our client id;
    /// extra audiences as for ID tokens), `iat` within the leeway (and `exp` when present),
    /// `jti`, the back-channel logout member of `events`, `sid` or `sub`, no `nonce`, and `typ`
    /// = `logout+jwt` when present. An ID token or an access token is never accepted. See the
    /// [module docs](crate::flow::backchannel) for every rule; the caller still checks `jti` for
    /// replay and ends the sessions.
    ///
    /// ```
    /// # use authpi_idp::{Client, Config, KeySet, Error};
    /// # fn main() -> Result<(), Error> {
    /// let client = Client::new(Config::builder("https://idp.authpi.com/i_a", "client_web").build()?)?;
    /// let err = client.backchannel_logout(b"logout_token=a&logout_token=b", &KeySet::empty()).unwrap_err();
    /// assert_eq!(err.code(), "invalid_request"); // answer 400 with this code (§2.8)
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::LogoutToken`] when the body has no `logout_token` or more than one.
    pub fn backchannel_logout(
        &self,
        body: &[u8],
        keys: &KeySet,
    ) -> Result<ValidateLogoutToken, Error> {
        let mut token = None;
        for (name, value) in url::form_urlencoded::parse(body) {
            if name == "logout_token" {
                if token.is_some() {
                    return Err(Error::LogoutToken(LogoutTokenError::DuplicateToken));
                }
                token = Some(value.into_owned());
            }
        }
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(Error::LogoutToken(LogoutTokenError::MissingToken))?;
        Ok(ValidateLogoutToken {
            shared: Shared::new(self.clone(), keys),
            token,
            state: State::Verify,
        })
    }
}

enum State {
    Verify,
    AwaitJwks,
    Finished,
}

/// Validates a back-channel logout token: `Send(JWKS)` + `KeysRefreshed` only when the key set
/// is empty or stale, or lacks the token's key, and the cooldown allows; then `Done`.
///
/// Made by [`Client::backchannel_logout`]; implements [`Operation`] with
/// `Output = `[`LogoutToken`]. Every error comes out of `poll` as [`Error::LogoutToken`]
/// (a JWKS that cannot be fetched or used as [`Error::NoResponse`] or [`Error::Jwks`], after the
/// `KeysRefreshed` that records the attempt).
pub struct ValidateLogoutToken {
    shared: Shared,
    token: String,
    state: State,
}

impl fmt::Debug for ValidateLogoutToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidateLogoutToken")
            .finish_non_exhaustive()
    }
}

fn wrap(e: TokenError) -> Error {
    Error::LogoutToken(LogoutTokenError::Token(e))
}

fn err(e: impl Into<LogoutTokenError>) -> Error {
    Error::LogoutToken(e.into())
}

impl ValidateLogoutToken {
    fn verify(&mut self, now: UnixTime) -> Result<Verified<LogoutToken>, Error> {
        let jws = Jws::parse(&self.token).map_err(|e| wrap(e.into()))?;
        let typ = jws.header().typ.as_deref();
        if typ.is_some() && !id_token::typ_is(typ, "logout+jwt") {
            return Err(err(ClaimError::Type));
        }
        match self.shared.ring.verify(
            &jws,
            self.shared.client.algorithms(),
            now,
            TokenSource::Bearer,
            wrap,
        )? {
            Verified::NeedKeys(out) => return Ok(Verified::NeedKeys(out)),
            Verified::NoKey => return Err(wrap(JoseError::NoMatchingKey.into())),
            Verified::Yes(()) => {}
        }
        let map = json::parse_object(jws.payload()).map_err(|e| wrap(e.into()))?;
        let config = self.shared.client.config();
        let string = |name: &'static str| -> Result<Option<String>, Error> {
            match map.opt_str(name) {
                Ok(None) => Ok(None),
                Ok(Some(s)) if !s.is_empty() => Ok(Some(s.to_owned())),
                _ => Err(err(ClaimError::Missing(name))),
            }
        };
        // NumericDates may be non-integer (RFC 7519 §2); the fraction is dropped.
        let number = |name: &'static str| -> Result<Option<u64>, Error> {
            id_token::numeric_date(&map, name).map_err(err)
        };

        // §2.6 step 2: the ID-token rules that apply (iss, aud, iat, exp).
        if string("iss")?.ok_or(err(ClaimError::Missing("iss")))? != self.shared.client.issuer() {
            return Err(err(ClaimError::Issuer));
        }
        let aud = id_token::audiences(&map).map_err(err)?;
        if !aud.contains(&config.client_id) {
            return Err(err(ClaimError::Audience));
        }
        if aud
            .iter()
            .any(|a| *a != config.client_id && !config.trusted_audiences.contains(a))
        {
            return Err(err(ClaimError::UntrustedAudience));
        }
        let iat = number("iat")?.ok_or(err(ClaimError::Missing("iat")))?;
        let exp = number("exp")?;
        let nbf = number("nbf")?;
        let max = iat.saturating_add(LOGOUT_TOKEN_MAX_AGE);
        let effective_exp = exp.map_or(max, |exp| exp.min(max));
        id_token::check_times(effective_exp, Some(iat), nbf, config.leeway, now).map_err(err)?;
        let jti = string("jti")?.ok_or(err(ClaimError::Missing("jti")))?;

        // Step 3: sid or sub.
        let sub = string("sub")?;
        let sid = string("sid")?;
        if sub.is_none() && sid.is_none() {
            return Err(err(LogoutTokenError::NoSessionOrSubject));
        }
        // Step 4: the back-channel logout event.
        let has_event = map
            .get("events")
            .and_then(Value::as_object)
            .and_then(|events| events.get(BACKCHANNEL_LOGOUT_EVENT))
            .is_some_and(Value::is_object);
        if !has_event {
            return Err(err(LogoutTokenError::Events));
        }
        // Step 5: no nonce (whatever its value, even null).
        if map.contains_key("nonce") {
            return Err(err(LogoutTokenError::Nonce));
        }
        Ok(Verified::Yes(LogoutToken {
            issuer: self.shared.client.issuer().to_owned(),
            subject: sub,
            session_id: sid,
            jwt_id: jti,
            issued_at: UnixTime(iat),
            expires_at: exp.map(UnixTime),
            accept_until: UnixTime(effective_exp.saturating_add(config.leeway)),
        }))
    }
}

impl Operation for ValidateLogoutToken {
    type Output = LogoutToken;

    fn poll(&mut self, now: UnixTime) -> Result<Step<LogoutToken>, Error> {
        loop {
            if let Some(step) = self.shared.open()? {
                return Ok(step);
            }
            match std::mem::replace(&mut self.state, State::Finished) {
                State::Verify => match self.verify(now)? {
                    Verified::NeedKeys(out) => {
                        self.state = State::AwaitJwks;
                        return Ok(self.shared.send(out));
                    }
                    Verified::NoKey => return Err(wrap(JoseError::NoMatchingKey.into())),
                    Verified::Yes(token) => return Ok(Step::Done(token)),
                },
                State::AwaitJwks => match self.shared.absorb_keys(now) {
                    Ok(()) => self.state = State::Verify,
                    Err(e) => self.shared.ring.defer(e),
                },
                State::Finished => return Err(FINISHED),
            }
        }
    }

    record_inputs!(shared.inbox);
}

#[cfg(test)]
mod tests;
