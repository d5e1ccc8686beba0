//! Access-token validation at an API (RFC 9068): the signature with the shared key ring, then
//! the claim rules of [`crate::access_token`].

use super::Operation;
use super::Step;
use super::common::{FINISHED, Shared, record_inputs};
use super::keys::{TokenSource, Verified};
use crate::access_token::{AccessClaims, Expected};
use crate::agent::Agent;
use crate::client::Client;
use crate::error::{ClaimError, Error, TokenError};
use crate::id_token;
use crate::jose::{JoseError, Jws};
use crate::provider::KeySet;
use crate::time::UnixTime;
use crate::token::TokenSet;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::fmt;

impl Client {
    /// Validates a bearer access token for an API whose audience is `audience` (RFC 9068).
    pub fn validate_access_token(
        &self,
        token: &str,
        audience: &str,
        keys: &KeySet,
    ) -> ValidateAccessToken {
        ValidateAccessToken::new(self.clone(), token, audience, keys)
    }
}

/// The claims of a validated RFC 9068 access token, with the agent built from them.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AccessTokenInfo {
    /// The agent: subject, organizations and `org_id` from the token, token-level scopes from
    /// its `scope`; `tokens` holds the access token with `expires_at = exp`. Its
    /// [`Agent::claim`] reads the token's custom claims too.
    pub agent: Agent,
    /// `client_id`: the client the token was issued to.
    pub client_id: String,
    /// `jti`.
    pub jti: String,
    /// `sid` (user tokens).
    pub sid: Option<String>,
    /// `dat.type` (`identity`, `agent`, `key`, `token`).
    pub dat_type: Option<String>,
    /// `iat`.
    pub issued_at: u64,
    /// `aud`, as listed.
    pub audience: Vec<String>,
    /// Every claim this crate does not model (not `iss`, `sub`, `aud`, `exp`, `iat`, `nbf`,
    /// `client_id`, `jti`, `scope`, `sid`, `org_id`, `organizations`, `dat`), as sent.
    pub custom: Map<String, Value>,
}

impl AccessTokenInfo {
    /// A custom claim (see [`custom`](Self::custom)) as a `T`: `Ok(None)` when absent.
    ///
    /// # Errors
    /// The claim is present but is not a `T`.
    pub fn claim<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, serde_json::Error> {
        self.custom.get(name).map(T::deserialize).transpose()
    }
}

enum AccessState {
    Verify,
    AwaitJwks,
    Finished,
}

/// Validates a bearer access token as an API would (RFC 9068): `typ` is `at+jwt`, signature,
/// `iss` exact, `aud` contains the API's audience, `exp`/`nbf`/`iat` with leeway, `sub`,
/// `client_id`, `jti` present, and `scope`, `sid`, `org_id`, `dat` well typed when present.
/// Shares the key set (and its refetch rules) with the client.
pub struct ValidateAccessToken {
    shared: Shared,
    token: String,
    audience: String,
    state: AccessState,
}

impl fmt::Debug for ValidateAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidateAccessToken")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl ValidateAccessToken {
    fn new(client: Client, token: &str, audience: &str, keys: &KeySet) -> Self {
        ValidateAccessToken {
            shared: Shared::new(client, keys),
            token: token.to_owned(),
            audience: audience.to_owned(),
            state: AccessState::Verify,
        }
    }

    fn verify(&mut self, now: UnixTime) -> Result<Verified<AccessTokenInfo>, Error> {
        let at_err = |e: TokenError| Error::AccessToken(e);
        let jws = Jws::parse(&self.token).map_err(|e| at_err(e.into()))?;
        if !id_token::typ_is(jws.header().typ.as_deref(), "at+jwt") {
            return Err(at_err(ClaimError::Type.into()));
        }
        match self.shared.ring.verify(
            &jws,
            self.shared.client.algorithms(),
            now,
            TokenSource::Bearer,
            Error::AccessToken,
        )? {
            Verified::NeedKeys(out) => return Ok(Verified::NeedKeys(out)),
            Verified::NoKey => return Err(at_err(JoseError::NoMatchingKey.into())),
            Verified::Yes(()) => {}
        }
        let expected = Expected {
            issuer: self.shared.client.issuer(),
            audience: &self.audience,
            leeway: self.shared.client.config().leeway,
            now,
        };
        let claims = AccessClaims::check(jws.payload(), &expected).map_err(at_err)?;
        let tokens = TokenSet {
            access_token: self.token.clone(),
            token_type: "Bearer".to_owned(),
            expires_at: claims.exp,
            refresh_token: None,
            id_token: None,
            subject_hint: None,
            scope: claims.scope,
        };
        let agent = Agent::new(
            claims.sub,
            None,
            None,
            claims.org_id,
            claims.organizations,
            tokens,
        )
        .with_custom(claims.custom.clone());
        Ok(Verified::Yes(AccessTokenInfo {
            agent,
            client_id: claims.client_id,
            jti: claims.jti,
            sid: claims.sid,
            dat_type: claims.dat_type,
            issued_at: claims.iat,
            audience: claims.aud,
            custom: claims.custom,
        }))
    }
}

impl Operation for ValidateAccessToken {
    type Output = AccessTokenInfo;

    fn poll(&mut self, now: UnixTime) -> Result<Step<AccessTokenInfo>, Error> {
        loop {
            if let Some(step) = self.shared.open()? {
                return Ok(step);
            }
            match std::mem::replace(&mut self.state, AccessState::Finished) {
                AccessState::Verify => match self.verify(now)? {
                    Verified::NeedKeys(out) => {
                        self.state = AccessState::AwaitJwks;
                        return Ok(self.shared.send(out));
                    }
                    Verified::NoKey => {
                        return Err(Error::AccessToken(JoseError::NoMatchingKey.into()));
                    }
                    Verified::Yes(info) => return Ok(Step::Done(info)),
                },
                AccessState::AwaitJwks => match self.shared.absorb_keys(now) {
                    Ok(()) => self.state = AccessState::Verify,
                    Err(e) => self.shared.ring.defer(e),
                },
                AccessState::Finished => return Err(FINISHED),
            }
        }
    }

    record_inputs!(shared.inbox);
}
