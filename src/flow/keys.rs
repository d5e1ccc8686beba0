//! The key ring: the key set an operation verifies with, key selection, and the decision to
//! refetch the JWKS (at most once per operation; see the [`flow`](super) docs for the rules).

use super::Step;
use crate::client::Client;
use crate::error::TokenError;
use crate::error::{ApiMisuse, Error};
use crate::http::{Outgoing, RequestKind, get};
use crate::jose::{AlgorithmSet, JoseError, Jws};
use crate::provider::{KeySet, ProviderMetadata};
use crate::time::UnixTime;

#[doc(hidden)] // for fuzz targets and benches, through `internal::jose::verify_jws`
/// Selects the one key of `keys` that fits the token's header and verifies the signature with
/// it. [`JoseError::NoMatchingKey`] is the one error after which a refetch can help.
pub fn verify_with(keys: &KeySet, jws: &Jws<'_>, allowed: AlgorithmSet) -> Result<(), JoseError> {
    jws.precheck(allowed)?;
    let key = keys.select(jws.header())?;
    jws.verify(key.public_key(), allowed)
}

impl Client {
    /// The request that fetches the provider's JWKS (to warm a [`KeySet`] ahead of logins).
    pub fn jwks_request(&self) -> Result<Outgoing, Error> {
        Ok(Outgoing {
            kind: RequestKind::Jwks,
            request: get(self.metadata().jwks_uri(), None)?,
        })
    }
}

/// Who can present a token, which decides whether its unknown `kid` may bypass the cooldown.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenSource {
    /// An ID token straight from the token endpoint over TLS: one refetch per operation,
    /// whatever the cooldown.
    TokenEndpoint,
    /// An access token presented to an API by anyone: refetch only after the cooldown.
    Bearer,
}

/// The key set an operation verifies with, and its one permitted refetch.
pub(crate) struct KeyRing {
    keys: KeySet,
    issuer: String,
    jwks_uri: url::Url,
    refetched: bool,
    event: Option<KeySet>,
    /// An error to report once the pending `KeysRefreshed` event is out.
    pending: Option<Error>,
    finished: bool,
}

#[allow(clippy::large_enum_variant)] // short-lived, never stored
pub(crate) enum Verified<T> {
    Yes(T),
    NeedKeys(Outgoing),
    /// No key fits and no refetch is left or permitted: no verdict on the token.
    NoKey,
}

impl KeyRing {
    /// The key ring of an operation; a key set bound to another provider makes the first
    /// [`KeyRing::poll_event`] fail.
    pub(crate) fn new(keys: &KeySet, metadata: &ProviderMetadata) -> Self {
        let pending = keys
            .check_provider(metadata.issuer(), metadata.jwks_uri().as_str())
            .err()
            .map(Error::Jwks);
        KeyRing {
            keys: keys.clone(),
            issuer: metadata.issuer().to_owned(),
            jwks_uri: metadata.jwks_uri().clone(),
            refetched: false,
            event: None,
            pending,
            finished: false,
        }
    }

    /// What an operation's `poll` must return before anything else: a key-set event, then a
    /// deferred error (after which the operation is over).
    pub(crate) fn poll_event<T>(&mut self) -> Result<Option<Step<T>>, Error> {
        if let Some(keys) = self.event.take() {
            return Ok(Some(Step::KeysRefreshed(keys)));
        }
        if let Some(e) = self.pending.take() {
            self.finished = true;
            return Err(e);
        }
        if self.finished {
            return Err(ApiMisuse::OperationFinished.into());
        }
        Ok(None)
    }

    /// Reports `e` after the pending key-set event (if any).
    pub(crate) fn defer(&mut self, e: Error) {
        self.pending = Some(e);
    }

    fn request(&self) -> Result<Outgoing, Error> {
        Ok(Outgoing {
            kind: RequestKind::Jwks,
            request: get(&self.jwks_uri, None)?,
        })
    }

    /// The JWKS request to send *before* spending a one-time secret (code, refresh token), when
    /// the cached set is empty or stale: a transport failure then costs nothing, whereas after
    /// the token response it would lose tokens the provider already rotated.
    pub(crate) fn prefetch(&self, now: UnixTime) -> Result<Option<Outgoing>, Error> {
        if !self.refetched && !self.keys.is_fresh(now) && self.keys.may_refetch(now) {
            return self.request().map(Some);
        }
        Ok(None)
    }

    /// Verifies the signature, or asks for the JWKS when the cache cannot answer.
    ///
    /// Cheap rejections (allowed `alg`, signature length) come first, so that no token that
    /// fails them causes a JWKS request. `wrap` says which kind of token failed
    /// (`Error::IdToken` or `Error::AccessToken`).
    pub(crate) fn verify(
        &mut self,
        jws: &Jws<'_>,
        allowed: AlgorithmSet,
        now: UnixTime,
        source: TokenSource,
        wrap: fn(TokenError) -> Error,
    ) -> Result<Verified<()>, Error> {
        jws.precheck(allowed).map_err(|e| wrap(e.into()))?;
        if let Some(out) = self.prefetch(now)? {
            return Ok(Verified::NeedKeys(out));
        }
        match verify_with(&self.keys, jws, allowed) {
            Ok(()) => Ok(Verified::Yes(())),
            Err(JoseError::NoMatchingKey) => {
                let permitted = match source {
                    TokenSource::TokenEndpoint => true,
                    TokenSource::Bearer => self.keys.may_refetch(now),
                };
                if !self.refetched && permitted {
                    self.request().map(Verified::NeedKeys)
                } else {
                    Ok(Verified::NoKey)
                }
            }
            Err(e) => Err(wrap(e.into())),
        }
    }

    /// Takes the JWKS response (or the transport failure) into the ring. Success or failure,
    /// the attempt counts and is handed out as a `KeysRefreshed` event.
    pub(crate) fn absorb(
        &mut self,
        response: Result<http::Response<Vec<u8>>, Error>,
        now: UnixTime,
    ) -> Result<(), Error> {
        self.refetched = true;
        let (issuer, jwks_uri) = (self.issuer.as_str(), self.jwks_uri.as_str());
        let fetched = response.and_then(|r| {
            KeySet::from_response(&r, now)
                .map(|k| k.bind(issuer, jwks_uri))
                .map_err(Error::from)
        });
        match fetched {
            Ok(keys) => {
                self.keys = keys.clone();
                self.event = Some(keys);
                Ok(())
            }
            Err(e) => {
                self.keys = self.keys.with_attempt(now);
                self.event = Some(self.keys.clone());
                Err(e)
            }
        }
    }
}
