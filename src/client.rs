//! The client: configuration plus provider knowledge, and the operations of the official SDK.

use crate::agent::Agent;
use crate::authorize::{self, AuthorizationRequest, AuthorizationUrl};
use crate::callback::{self, CallbackInput};
use crate::config::{Config, validate_redirect_uri};
use crate::error::{ConfigError, DiscoveryError, Endpoint, Error, ResponseError};
use crate::flow::{Discover, Exchange, Session, SessionOptions, Single, ValidateAccessToken};
use crate::http::{Outgoing, RequestKind, error_response, form_post, get};
use crate::jose::AlgorithmSet;
use crate::json::{self, Members};
use crate::jwks::KeySet;
use crate::provider::ProviderMetadata;
use crate::time::UnixTime;
use crate::token::{TokenSet, parse_token_response};
use crate::userinfo::{self, UserInfo};
use rand_core::CryptoRng;
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;
use url::Url;

/// SHA-256 of a token: a single-flight key that is not the token itself.
pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    crate::jose::sha256(token.as_bytes())
}

/// How [`Client::exchange_code`] binds the ID token to the login that asked for it. The
/// weaker choice is spelled out where it is made (DESIGN §1.3: a weakened check has a name that
/// says so); [`Client::exchange_callback`] always checks, from the transaction.
#[derive(Clone, Copy)]
pub enum NonceCheck<'a> {
    /// The ID token must carry this `nonce` (the one sent in the authorization request,
    /// compared in constant time); when `max_age` was sent, `auth_time` is required and must
    /// be recent enough. [`NonceCheck::of`] takes both from a transaction.
    Expect {
        /// The `nonce` of the authorization request.
        nonce: &'a str,
        /// The `max_age` of the authorization request, if it had one.
        max_age: Option<u64>,
    },
    /// **Dangerous**: no `nonce` and no `max_age` check. An ID token minted for another login
    /// (replayed, or injected with a stolen code) is not detected. Only for codes whose
    /// authorization request you do not have — the Python SDK's `exchange_code` behaves so.
    /// The signature, `iss`, `aud`, `azp`, `exp`, `iat`, `nbf` and `at_hash` are still checked.
    DangerousSkip,
}

impl<'a> NonceCheck<'a> {
    /// The checks of the transaction's authorization request (its `nonce` and `max_age`).
    ///
    /// # Errors
    /// [`Error::Callback`] when the transaction is tampered with (empty nonce, bad URL).
    pub fn of(transaction: &'a AuthorizationUrl) -> Result<Self, Error> {
        let tx = authorize::transaction_params(transaction)?;
        Ok(NonceCheck::Expect {
            nonce: &transaction.nonce,
            max_age: tx.max_age,
        })
    }
}

impl fmt::Debug for NonceCheck<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NonceCheck::Expect { max_age, .. } => f
                .debug_struct("Expect")
                .field("nonce", &"[redacted]")
                .field("max_age", max_age)
                .finish(),
            NonceCheck::DangerousSkip => f.write_str("DangerousSkip"),
        }
    }
}

/// An OpenID Connect client for one provider. Cheap to clone (one `Arc`), `Send + Sync`.
///
/// Build it with [`Client::new`] (AuthPI layout, no round trip) or [`Client::discover`] /
/// [`Client::with_metadata`] (any OpenID provider). Every method either returns a value at once
/// (authorization URL, logout URL) or an operation to drive (see [`crate::flow`]).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    metadata: ProviderMetadata,
    algorithms: AlgorithmSet,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .field("issuer", &self.inner.metadata.issuer())
            .finish_non_exhaustive()
    }
}

/// RFC 7009 / RFC 7662 `token_type_hint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenTypeHint {
    /// `access_token`.
    AccessToken,
    /// `refresh_token`.
    RefreshToken,
}

impl TokenTypeHint {
    fn as_str(self) -> &'static str {
        match self {
            TokenTypeHint::AccessToken => "access_token",
            TokenTypeHint::RefreshToken => "refresh_token",
        }
    }
}

/// Parameters of an RP-initiated logout URL.
#[derive(Clone, Default)]
#[must_use]
pub struct LogoutRequest {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

impl fmt::Debug for LogoutRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogoutRequest")
            .field("post_logout_redirect_uri", &self.post_logout_redirect_uri)
            .finish_non_exhaustive()
    }
}

impl LogoutRequest {
    /// An empty request.
    pub fn new() -> Self {
        Self::default()
    }

    /// The ID token of the session (AuthPI requires it).
    pub fn id_token_hint(mut self, id_token: impl Into<String>) -> Self {
        self.id_token_hint = Some(id_token.into());
        self
    }

    /// Where the provider sends the user afterwards (registered, matched exactly).
    pub fn post_logout_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.post_logout_redirect_uri = Some(uri.into());
        self
    }

    /// Opaque value echoed back to the post-logout redirect URI.
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }
}

/// An RFC 7662 introspection answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Introspection {
    /// Whether the token is active. When false, nothing else is meaningful (RFC 7662 §2.2).
    pub active: bool,
    /// `scope`.
    pub scope: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `sub`.
    pub sub: Option<String>,
    /// `exp`.
    pub exp: Option<u64>,
    /// `iat`.
    pub iat: Option<u64>,
    /// `token_type`.
    pub token_type: Option<String>,
    /// Every member, as sent.
    pub claims: Map<String, Value>,
}

impl Client {
    /// A client for an AuthPI issuer: endpoints derived from the issuer, no discovery round trip.
    pub fn new(config: Config) -> Result<Client, Error> {
        let metadata = ProviderMetadata::authpi(&config.issuer)?;
        Client::with_metadata(config, metadata)
    }

    /// A client with provider metadata obtained elsewhere (discovery done earlier, or metadata
    /// imported from storage). The metadata's issuer must equal the configured one, or be it
    /// without its one trailing slash (only the configuration may differ by a slash).
    pub fn with_metadata(config: Config, metadata: ProviderMetadata) -> Result<Client, Error> {
        if !crate::provider::issuer_matches_configured(metadata.issuer(), &config.issuer) {
            return Err(DiscoveryError::IssuerMismatch.into());
        }
        let algorithms = config.algorithms.intersect(metadata.signing_algorithms());
        if algorithms.is_empty() {
            return Err(DiscoveryError::NoAlgorithm.into());
        }
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                metadata,
                algorithms,
            }),
        })
    }

    /// Discovers the provider (OpenID Connect Discovery 1.0) and fetches its keys.
    pub fn discover(config: Config) -> Discover {
        Discover::new(config)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The provider metadata in use.
    #[must_use]
    pub fn metadata(&self) -> &ProviderMetadata {
        &self.inner.metadata
    }

    /// The exact issuer every `iss` is compared with.
    #[must_use]
    pub fn issuer(&self) -> &str {
        self.inner.metadata.issuer()
    }

    /// The accepted signing algorithms: ES256/EdDSA/RS256/PS256 ∩ the provider's ∩ the pin.
    #[must_use]
    pub fn algorithms(&self) -> AlgorithmSet {
        self.inner.algorithms
    }

    /// The request that fetches the provider's JWKS (to warm a [`KeySet`] ahead of logins).
    pub fn jwks_request(&self) -> Result<Outgoing, Error> {
        Ok(Outgoing {
            kind: RequestKind::Jwks,
            request: get(self.metadata().jwks_uri(), None)?,
        })
    }

    /// Starts a login: the authorization URL with PKCE S256, `state` and `nonce` (32 random
    /// bytes each from `rng`, base64url), and the transaction to keep until the callback.
    pub fn authorization_url<R: CryptoRng + ?Sized>(
        &self,
        request: &AuthorizationRequest,
        rng: &mut R,
    ) -> Result<AuthorizationUrl, Error> {
        let redirect_uri = self
            .config()
            .redirect_uri
            .as_deref()
            .ok_or(ConfigError::RedirectUriRequired)?;
        authorize::build(
            self.metadata().authorization_endpoint(),
            &self.config().client_id,
            redirect_uri,
            &self.config().resources,
            request,
            rng,
        )
    }

    /// Validates the callback against the transaction (duplicates, `state` first in constant
    /// time, RFC 9207 `iss`, provider errors, `code`) and returns the code exchange to drive.
    ///
    /// `keys` is the cached key set ([`KeySet::empty`] on a cold start: the exchange fetches it).
    pub fn exchange_callback<'a>(
        &self,
        callback: impl Into<CallbackInput<'a>>,
        transaction: &AuthorizationUrl,
        keys: &KeySet,
    ) -> Result<Exchange, Error> {
        let params = callback.into().into_params()?;
        let tx = authorize::transaction_params(transaction)?;
        let code = callback::validate(
            &params,
            &transaction.state,
            self.issuer(),
            self.metadata()
                .authorization_response_iss_parameter_supported(),
        )?;
        let resources = transaction.resources.clone().unwrap_or_default();
        let out = self.code_request(
            &code,
            &transaction.code_verifier,
            &tx.redirect_uri,
            &resources,
        )?;
        Ok(Exchange::new(
            self.clone(),
            out,
            keys,
            Some(transaction.nonce.clone()),
            tx.max_age,
        ))
    }

    /// Lower level: exchanges a code with its verifier, without the callback checks (`state`,
    /// `iss`). The ID token is still required and verified; `nonce` says whether it must carry
    /// the login's `nonce` (and `auth_time` within `max_age`), or — [`NonceCheck::DangerousSkip`],
    /// visible at the call site — not. Uses the configured redirect URI and, when `resources`
    /// is None, the configured resources.
    ///
    /// # Errors
    /// [`ConfigError::RedirectUriRequired`]; [`ConfigError::EmptyToken`] for an empty code,
    /// verifier or expected nonce.
    pub fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
        resources: Option<&[String]>,
        nonce: NonceCheck<'_>,
        keys: &KeySet,
    ) -> Result<Exchange, Error> {
        let redirect_uri = self
            .config()
            .redirect_uri
            .as_deref()
            .ok_or(ConfigError::RedirectUriRequired)?;
        if code.is_empty() || code_verifier.is_empty() {
            return Err(ConfigError::EmptyToken.into());
        }
        let (nonce, max_age) = match nonce {
            NonceCheck::Expect { nonce: "", .. } => return Err(ConfigError::EmptyToken.into()),
            NonceCheck::Expect { nonce, max_age } => (Some(nonce.to_owned()), max_age),
            NonceCheck::DangerousSkip => (None, None),
        };
        let resources = resources.unwrap_or(&self.config().resources);
        let out = self.code_request(code, code_verifier, redirect_uri, resources)?;
        Ok(Exchange::new(self.clone(), out, keys, nonce, max_age))
    }

    fn code_request(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        resources: &[String],
    ) -> Result<Outgoing, Error> {
        let mut params = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        params.extend(resources.iter().map(|r| ("resource", r.as_str())));
        Ok(Outgoing {
            kind: RequestKind::AuthorizationCode,
            request: form_post(self.metadata().token_endpoint(), self.config(), &params)?,
        })
    }

    /// Rebuilds the agent of a stored token set, refreshing when it is inside the refresh
    /// buffer (if auto-refresh is on) and hydrating from UserInfo when there is no ID token.
    /// See [`Session`] for the steps.
    pub fn create_agent(
        &self,
        tokens: TokenSet,
        options: SessionOptions,
        keys: &KeySet,
        now: UnixTime,
    ) -> Result<Session, Error> {
        Session::new(self.clone(), tokens, options, keys, now)
    }

    /// Refreshes now, whatever the expiry (manual refresh). Keeps the old refresh token and
    /// scope when the response omits them; a new ID token must keep `iss`, `sub`, `aud` (and
    /// `nonce` if present); without one, the identity is re-read from UserInfo.
    pub fn refresh(
        &self,
        tokens: TokenSet,
        options: SessionOptions,
        keys: &KeySet,
        now: UnixTime,
    ) -> Result<Session, Error> {
        Session::new(
            self.clone(),
            tokens,
            SessionOptions {
                force_refresh: true,
                ..options
            },
            keys,
            now,
        )
    }

    /// Client credentials (M2M): an agent for this client with the token's scopes and no
    /// organizations. Needs a client secret.
    pub fn client_credentials<I, S>(
        &self,
        scopes: I,
        resources: &[String],
    ) -> Result<Single<Agent>, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        if self.config().client_secret.is_none() {
            return Err(ConfigError::SecretRequired.into());
        }
        let scope = scopes
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let mut params = vec![("grant_type", "client_credentials")];
        if !scope.is_empty() {
            params.push(("scope", &scope));
        }
        params.extend(resources.iter().map(|r| ("resource", r.as_str())));
        let request = form_post(self.metadata().token_endpoint(), self.config(), &params)?;
        let client_id = self.config().client_id.clone();
        Ok(Single::new(
            Outgoing {
                kind: RequestKind::ClientCredentials,
                request,
            },
            Box::new(move |resp, now| {
                let tokens = parse_token_response(resp)?.into_token_set(now);
                Ok(Agent::new(client_id, None, None, None, Vec::new(), tokens))
            }),
        ))
    }

    /// UserInfo for an agent's access token; `sub` must equal the agent's id.
    pub fn userinfo(&self, agent: &Agent) -> Result<Single<UserInfo>, Error> {
        self.userinfo_for(&agent.tokens().access_token, Some(agent.id()))
    }

    /// UserInfo for an access token; when `expected_sub` is given, `sub` must equal it.
    pub fn userinfo_for(
        &self,
        access_token: &str,
        expected_sub: Option<&str>,
    ) -> Result<Single<UserInfo>, Error> {
        if access_token.is_empty() {
            return Err(ConfigError::EmptyToken.into());
        }
        let endpoint = self
            .metadata()
            .userinfo_endpoint()
            .ok_or(Error::Unsupported("UserInfo"))?;
        let expected = expected_sub.map(str::to_owned);
        Ok(Single::new(
            Outgoing {
                kind: RequestKind::UserInfo,
                request: get(endpoint, Some(access_token))?,
            },
            Box::new(move |resp, _| userinfo::parse(resp, expected.as_deref())),
        ))
    }

    /// RFC 7009 revocation. A non-200 answer is an error.
    pub fn revoke(&self, token: &str, hint: Option<TokenTypeHint>) -> Result<Single<()>, Error> {
        let endpoint = self.metadata().revocation_endpoint();
        let out = self.token_hint_request(
            endpoint,
            "token revocation",
            RequestKind::Revocation,
            token,
            hint,
        )?;
        Ok(Single::new(
            out,
            Box::new(|resp, _| {
                if resp.status() == http::StatusCode::OK {
                    Ok(())
                } else {
                    Err(error_response(Endpoint::Revocation, resp))
                }
            }),
        ))
    }

    /// RFC 7662 introspection (AuthPI answers `active: false` for other clients' tokens).
    pub fn introspect(
        &self,
        token: &str,
        hint: Option<TokenTypeHint>,
    ) -> Result<Single<Introspection>, Error> {
        let endpoint = self.metadata().introspection_endpoint();
        let out = self.token_hint_request(
            endpoint,
            "token introspection",
            RequestKind::Introspection,
            token,
            hint,
        )?;
        Ok(Single::new(
            out,
            Box::new(|resp, _| parse_introspection(resp)),
        ))
    }

    /// A client-authenticated `token` (+ `token_type_hint`) POST: revocation and introspection.
    fn token_hint_request(
        &self,
        endpoint: Option<&Url>,
        feature: &'static str,
        kind: RequestKind,
        token: &str,
        hint: Option<TokenTypeHint>,
    ) -> Result<Outgoing, Error> {
        if token.is_empty() {
            return Err(ConfigError::EmptyToken.into());
        }
        let endpoint = endpoint.ok_or(Error::Unsupported(feature))?;
        let mut params = vec![("token", token)];
        if let Some(h) = hint {
            params.push(("token_type_hint", h.as_str()));
        }
        Ok(Outgoing {
            kind,
            request: form_post(endpoint, self.config(), &params)?,
        })
    }

    /// The RP-initiated logout URL: the discovered `end_session_endpoint`, or `{issuer}/logout`
    /// in the AuthPI layout.
    pub fn logout_url(&self, request: &LogoutRequest) -> Result<Url, Error> {
        let mut url = self
            .metadata()
            .end_session_endpoint()
            .cloned()
            .ok_or(Error::Unsupported("RP-initiated logout"))?;
        if let Some(uri) = &request.post_logout_redirect_uri {
            validate_redirect_uri(uri).map_err(ConfigError::PostLogoutRedirectUri)?;
        }
        {
            let mut q = url.query_pairs_mut();
            if let Some(hint) = &request.id_token_hint {
                q.append_pair("id_token_hint", hint);
            }
            q.append_pair("client_id", &self.config().client_id);
            if let Some(uri) = &request.post_logout_redirect_uri {
                q.append_pair("post_logout_redirect_uri", uri);
            }
            if let Some(state) = &request.state {
                q.append_pair("state", state);
            }
        }
        Ok(url)
    }

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

fn parse_introspection(resp: &http::Response<Vec<u8>>) -> Result<Introspection, Error> {
    if resp.status() != http::StatusCode::OK {
        return Err(error_response(Endpoint::Introspection, resp));
    }
    let bad = |e: json::JsonError| Error::Response {
        endpoint: Endpoint::Introspection,
        reason: ResponseError::Json(e),
    };
    let map = json::parse_object(resp.body()).map_err(bad)?;
    let active = map
        .opt_bool("active")
        .map_err(bad)?
        .ok_or(bad(json::JsonError::Missing("active")))?;
    let s = |k: &'static str| map.opt_str(k).ok().flatten().map(str::to_owned);
    let n = |k: &'static str| map.opt_u64(k).ok().flatten();
    Ok(Introspection {
        active,
        scope: s("scope"),
        client_id: s("client_id"),
        sub: s("sub"),
        exp: n("exp"),
        iat: n("iat"),
        token_type: s("token_type"),
        claims: map,
    })
}

#[cfg(test)]
mod token_hash_tests {
    #[test]
    fn token_hash_is_sha256_of_the_token() {
        // FIPS 180-2 test vector: SHA-256("abc").
        let expected = [
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
            0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
            0xf2, 0x00, 0x15, 0xad,
        ];
        assert_eq!(super::token_hash("abc"), expected);
        assert_ne!(super::token_hash("abd"), expected);
    }
}
