//! Operations: the state machines every driver runs.
//!
//! An operation is driven by one loop, the same in every adapter (async or blocking) and in a
//! test with no network at all:
//!
//! ```no_run
//! # use authpi_idp::{Error, Operation, Step, UnixTime};
//! # fn send(_: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> { unimplemented!() }
//! # fn store(_: &authpi_idp::TokenSet) {}
//! # fn run<O: Operation>(mut op: O, now: UnixTime) -> Result<O::Output, Error> {
//! loop {
//!     match op.poll(now)? {
//!         Step::Send(out) => op.handle_response(send(out.request)),
//!         Step::Persist(tokens) => store(&tokens),       // rotated tokens: store them first
//!         Step::KeysRefreshed(keys) => { /* keep `keys` for the next operations */ }
//!         Step::Done(output) => break Ok(output),
//!         _ => {}
//!     }
//! }
//! # }
//! ```
//!
//! # Call order
//! - [`Operation::poll`] returns the next [`Step`]. After [`Step::Send`], the next call must be
//!   [`Operation::handle_response`] with the response to that request; only then does `poll`
//!   make progress. Every other step is an event: handle it, then call `poll` again.
//! - [`Operation::handle_response`] only records the response; `poll` validates it, so every
//!   error surfaces from `poll`.
//! - After `Done` or an error, the operation is over: `poll` answers [`Error::Usage`].
//! - `now` may differ between calls (a slow network); each check uses the `now` of the `poll`
//!   that makes it.
//!
//! # What never happens
//! - No tokens come out with an error: a failed operation emits no `Persist` after the failure,
//!   and `Done` only follows every check.
//! - A refresh hands the rotated token set out as [`Step::Persist`] as soon as the token
//!   response and its ID token are validated, *before* UserInfo hydration or anything else that
//!   can still fail: the old refresh token is already spent at the provider.
//! - At most one JWKS refetch per operation, and only when the cached key set is stale, empty,
//!   or lacks the token's key and is older than [`crate::jwks::REFETCH_COOLDOWN`].

use crate::agent::Agent;
use crate::client::Client;
use crate::config::Config;
use crate::error::{ClaimError, Error, ResponseError, TokenError};
use crate::http::{Outgoing, RequestKind, get};
use crate::id_token::{self, Expected, IdClaims};
use crate::jose::{AlgorithmSet, JoseError, Jws};
use crate::jwks::KeySet;
use crate::provider::ProviderMetadata;
use crate::time::UnixTime;
use crate::token::{TokenResponse, TokenSet, parse_token_response};
use crate::userinfo;
use std::fmt;

/// What an operation wants next.
#[must_use]
#[non_exhaustive]
pub enum Step<T> {
    /// Send this request (no redirects) and pass the response to `handle_response`.
    Send(Outgoing),
    /// A refresh rotated the tokens: persist this token set before calling `poll` again.
    Persist(TokenSet),
    /// The provider's key set was refetched: keep it for later operations.
    KeysRefreshed(KeySet),
    /// The operation finished with this output.
    Done(T),
}

impl<T> fmt::Debug for Step<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Send(o) => f.debug_tuple("Send").field(o).finish(),
            Step::Persist(t) => f.debug_tuple("Persist").field(t).finish(),
            Step::KeysRefreshed(k) => f.debug_tuple("KeysRefreshed").field(k).finish(),
            Step::Done(_) => f.write_str("Done(..)"),
        }
    }
}

/// A protocol operation as a state machine (see the [module docs](self) for the call order).
pub trait Operation {
    /// What the operation produces.
    type Output;

    /// Advances the operation. See the module docs for the call order.
    fn poll(&mut self, now: UnixTime) -> Result<Step<Self::Output>, Error>;

    /// Records the response to the request of the last [`Step::Send`].
    fn handle_response(&mut self, response: http::Response<Vec<u8>>);
}

const NO_RESPONSE: Error = Error::Usage("poll called after Send without handle_response");
const FINISHED: Error = Error::Usage("the operation is already finished");

/// The key set an operation verifies with, and its one permitted refetch.
struct KeyRing {
    keys: KeySet,
    jwks_uri: url::Url,
    refetched: bool,
    event: Option<KeySet>,
}

#[allow(clippy::large_enum_variant)] // short-lived, never stored
enum Verified<T> {
    Yes(T),
    NeedKeys(Outgoing),
}

impl KeyRing {
    fn new(keys: &KeySet, metadata: &ProviderMetadata) -> Self {
        KeyRing {
            keys: keys.clone(),
            jwks_uri: metadata.jwks_uri().clone(),
            refetched: false,
            event: None,
        }
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
    fn prefetch(&self, now: UnixTime) -> Result<Option<Outgoing>, Error> {
        if !self.refetched && !self.keys.is_fresh(now) && self.keys.may_refetch(now) {
            return self.request().map(Some);
        }
        Ok(None)
    }

    /// Verifies the signature, or asks for the JWKS when the cache cannot answer.
    ///
    /// `wrap` says which kind of token failed (`Error::IdToken` or `Error::AccessToken`).
    fn verify(
        &mut self,
        jws: &Jws<'_>,
        allowed: AlgorithmSet,
        now: UnixTime,
        wrap: fn(TokenError) -> Error,
    ) -> Result<Verified<()>, Error> {
        if let Some(out) = self.prefetch(now)? {
            return Ok(Verified::NeedKeys(out));
        }
        match jws.verify(&self.keys, allowed) {
            Ok(()) => Ok(Verified::Yes(())),
            Err(JoseError::NoMatchingKey) if !self.refetched && self.keys.may_refetch(now) => {
                self.request().map(Verified::NeedKeys)
            }
            Err(e) => Err(wrap(e.into())),
        }
    }

    fn absorb(&mut self, response: &http::Response<Vec<u8>>, now: UnixTime) -> Result<(), Error> {
        self.refetched = true;
        let keys = KeySet::from_response(response, now)?;
        self.keys = keys.clone();
        self.event = Some(keys);
        Ok(())
    }
}

fn take(response: &mut Option<http::Response<Vec<u8>>>) -> Result<http::Response<Vec<u8>>, Error> {
    response.take().ok_or(NO_RESPONSE)
}

/// Verifies an ID token's signature and claims.
fn verify_id_token(
    client: &Client,
    ring: &mut KeyRing,
    token: &str,
    expected: &Expected<'_>,
) -> Result<Verified<IdClaims>, Error> {
    let id_err = |e: TokenError| Error::IdToken(e);
    let jws = Jws::parse(token).map_err(|e| id_err(e.into()))?;
    if id_token::is_other_token_type(jws.header().typ.as_deref()) {
        return Err(id_err(ClaimError::Type.into()));
    }
    if let Verified::NeedKeys(req) =
        ring.verify(&jws, client.algorithms(), expected.now, Error::IdToken)?
    {
        return Ok(Verified::NeedKeys(req));
    }
    let claims = IdClaims::from_payload(jws.payload()).map_err(id_err)?;
    id_token::check(
        &claims,
        jws.header().alg,
        jws.header().typ.as_deref(),
        expected,
    )
    .map_err(|e| id_err(e.into()))?;
    Ok(Verified::Yes(claims))
}

fn agent_from_claims(claims: IdClaims, tokens: TokenSet) -> Agent {
    Agent::new(
        claims.sub,
        claims.email,
        claims.email_verified,
        claims.org_id,
        claims.organizations,
        tokens,
    )
}

// ---------------------------------------------------------------------------------------------
// Code exchange

enum ExchangeState {
    Start(Outgoing),
    AwaitPrefetch(Outgoing),
    AwaitToken,
    Verify(TokenResponse),
    AwaitJwks(TokenResponse),
    Finished,
}

/// Spends an authorization code and validates the result into an [`Agent`].
///
/// Steps: `Send(JWKS)` + `KeysRefreshed` first when the cached key set is empty or stale (so
/// that no transport failure can come between spending the code and the result), then
/// `Send(token request)`, then `Send(JWKS)` + `KeysRefreshed` only if the ID token's key is
/// unknown and the cooldown allows, then `Done`.
/// The ID token is required and fully verified (signature, `iss`, `aud`, `azp`, `exp`, `iat`,
/// `nbf`, `nonce`, `at_hash`, `auth_time` when `max_age` was sent); on any failure no token
/// comes out.
pub struct Exchange {
    client: Client,
    ring: KeyRing,
    state: ExchangeState,
    response: Option<http::Response<Vec<u8>>>,
    nonce: Option<String>,
    max_age: Option<u64>,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange").finish_non_exhaustive()
    }
}

impl Exchange {
    pub(crate) fn new(
        client: Client,
        request: Outgoing,
        keys: &KeySet,
        nonce: Option<String>,
        max_age: Option<u64>,
    ) -> Self {
        Exchange {
            ring: KeyRing::new(keys, client.metadata()),
            client,
            state: ExchangeState::Start(request),
            response: None,
            nonce,
            max_age,
        }
    }
}

impl Operation for Exchange {
    type Output = Agent;

    fn poll(&mut self, now: UnixTime) -> Result<Step<Agent>, Error> {
        loop {
            if let Some(keys) = self.ring.event.take() {
                return Ok(Step::KeysRefreshed(keys));
            }
            match std::mem::replace(&mut self.state, ExchangeState::Finished) {
                ExchangeState::Start(out) => {
                    if let Some(jwks) = self.ring.prefetch(now)? {
                        self.state = ExchangeState::AwaitPrefetch(out);
                        return Ok(Step::Send(jwks));
                    }
                    self.state = ExchangeState::AwaitToken;
                    return Ok(Step::Send(out));
                }
                ExchangeState::AwaitPrefetch(out) => {
                    self.ring.absorb(&take(&mut self.response)?, now)?;
                    self.state = ExchangeState::Start(out);
                }
                ExchangeState::AwaitToken => {
                    let tr = parse_token_response(&take(&mut self.response)?)?;
                    if tr.id_token.is_none() {
                        return Err(Error::Response {
                            endpoint: crate::error::Endpoint::Token,
                            reason: ResponseError::MissingIdToken,
                        });
                    }
                    self.state = ExchangeState::Verify(tr);
                }
                ExchangeState::AwaitJwks(tr) => {
                    self.ring.absorb(&take(&mut self.response)?, now)?;
                    self.state = ExchangeState::Verify(tr);
                }
                ExchangeState::Verify(tr) => {
                    let config = self.client.config();
                    let expected = Expected {
                        issuer: self.client.issuer(),
                        client_id: &config.client_id,
                        trusted_audiences: &config.trusted_audiences,
                        nonce: self.nonce.as_deref(),
                        max_age: self.max_age,
                        access_token: Some(&tr.access_token),
                        leeway: config.leeway,
                        now,
                    };
                    let token = tr.id_token.as_deref().unwrap_or_default();
                    match verify_id_token(&self.client, &mut self.ring, token, &expected)? {
                        Verified::NeedKeys(out) => {
                            self.state = ExchangeState::AwaitJwks(tr);
                            return Ok(Step::Send(out));
                        }
                        Verified::Yes(claims) => {
                            return Ok(Step::Done(agent_from_claims(
                                claims,
                                tr.into_token_set(now),
                            )));
                        }
                    }
                }
                ExchangeState::Finished => return Err(FINISHED),
            }
        }
    }

    fn handle_response(&mut self, response: http::Response<Vec<u8>>) {
        self.response = Some(response);
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions: create_agent and refresh

/// How a session's identity is known.
#[allow(clippy::large_enum_variant)] // one per operation
enum Identity {
    /// From the (stored or refreshed) ID token.
    Claims(IdClaims),
    /// From UserInfo, whose `sub` must equal `expected` when known.
    Hydrate { expected: Option<String> },
    /// A client-credentials token set: the client itself.
    Client,
}

enum SessionState {
    Start,
    AwaitPrefetch,
    AwaitRefresh,
    VerifyRefresh(TokenResponse),
    AwaitJwks(TokenResponse),
    Persisted,
    AwaitUserInfo,
    Finished,
}

/// Options of [`Client::create_agent`] and [`Client::refresh`].
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct SessionOptions {
    pub(crate) auto_refresh: Option<bool>,
    pub(crate) force_refresh: bool,
    pub(crate) resources: Vec<String>,
    pub(crate) scope: Option<String>,
}

impl SessionOptions {
    /// Default options: refresh when the configuration says so and the token is inside the
    /// refresh buffer; automatic refreshes send no `resource`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Overrides the configuration's `auto_refresh`.
    pub fn auto_refresh(mut self, on: bool) -> Self {
        self.auto_refresh = Some(on);
        self
    }

    /// RFC 8707 resources to send with a refresh (order kept).
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// Narrows the scope of the refreshed access token (never widens; the provider answers
    /// `invalid_scope` to a widening).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
}

/// Rebuilds an [`Agent`] from a stored [`TokenSet`], refreshing and hydrating as needed.
///
/// Steps, in order, each only when needed:
/// 1. `Send(refresh request)` when forced or when auto-refresh is on and the access token is
///    within the refresh buffer (no refresh token ⇒ [`Error::TokenExpired`]); preceded by
///    `Send(JWKS)` + `KeysRefreshed` when the cached key set is empty or stale, so that the
///    refresh token is only spent once the keys to verify the answer are at hand;
/// 2. `Send(JWKS)` + `KeysRefreshed` when a refreshed ID token's key is still unknown (a key
///    rotated in between) and the cooldown allows;
/// 3. `Persist(tokens)` with the rotated token set, as soon as it is validated;
/// 4. `Send(UserInfo)` when the identity must come from UserInfo (a token set with
///    `subject_hint` and no ID token, or a refresh that returned no ID token); UserInfo's
///    `sub` must equal the session's subject, and its organizations replace the old ones;
/// 5. `Done(agent)`.
///
/// [`Session::refreshed`] tells whether step 3 happened (an adapter reports `on_refresh_error`
/// only for failures before it).
pub struct Session {
    client: Client,
    ring: KeyRing,
    tokens: TokenSet,
    identity: Identity,
    refresh: bool,
    options: SessionOptions,
    state: SessionState,
    response: Option<http::Response<Vec<u8>>>,
    refreshed: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("refresh", &self.refresh)
            .field("refreshed", &self.refreshed)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(
        client: Client,
        tokens: TokenSet,
        options: SessionOptions,
        keys: &KeySet,
        now: UnixTime,
    ) -> Result<Self, Error> {
        let config = client.config();
        let identity = if let Some(id_token) = &tokens.id_token {
            let claims = id_token::decode_stored(id_token, client.issuer(), &config.client_id)
                .map_err(Error::IdToken)?;
            Identity::Claims(claims)
        } else if let Some(hint) = &tokens.subject_hint {
            Identity::Hydrate {
                expected: Some(hint.clone()),
            }
        } else if tokens.refresh_token.is_some() {
            Identity::Hydrate { expected: None }
        } else {
            Identity::Client
        };
        let auto = options.auto_refresh.unwrap_or(config.auto_refresh);
        let refresh =
            options.force_refresh || (auto && tokens.is_expired(now, config.refresh_buffer));
        Ok(Session {
            ring: KeyRing::new(keys, client.metadata()),
            client,
            tokens,
            identity,
            refresh,
            options,
            state: SessionState::Start,
            response: None,
            refreshed: false,
        })
    }

    /// Whether the refreshed token set was handed out (`Persist`). After that, the old refresh
    /// token is spent: the caller must keep the new one, whatever happens next.
    #[must_use]
    pub fn refreshed(&self) -> bool {
        self.refreshed
    }

    /// Whether this operation had to refresh (forced, or auto-refresh with the access token
    /// inside the refresh buffer), decided when it was created. An error from `poll` while
    /// `refresh_due() && !refreshed()` means fresh tokens could not be obtained: whatever failed
    /// (no refresh token, the key-set prefetch, the token request or its validation), the
    /// caller holds no usable tokens, which is when an adapter reports `on_refresh_error`.
    #[must_use]
    pub fn refresh_due(&self) -> bool {
        self.refresh
    }

    fn subject(&self) -> Option<&str> {
        match &self.identity {
            Identity::Claims(c) => Some(&c.sub),
            Identity::Hydrate { expected } => expected.as_deref(),
            Identity::Client => None,
        }
    }

    fn refresh_request(&self) -> Result<Outgoing, Error> {
        let rt = self
            .tokens
            .refresh_token
            .as_deref()
            .ok_or(Error::TokenExpired)?;
        let mut params = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
        if let Some(scope) = &self.options.scope {
            params.push(("scope", scope));
        }
        for r in &self.options.resources {
            params.push(("resource", r));
        }
        let request = crate::http::form_post(
            self.client.metadata().token_endpoint(),
            self.client.config(),
            &params,
        )?;
        Ok(Outgoing {
            kind: RequestKind::Refresh {
                token_hash: crate::client::token_hash(rt),
            },
            request,
        })
    }

    fn merge(&self, tr: TokenResponse, now: UnixTime) -> TokenSet {
        let mut new = tr.into_token_set(now);
        if new.refresh_token.is_none() {
            new.refresh_token = self.tokens.refresh_token.clone();
        }
        if new.scope.is_none() {
            new.scope = self.tokens.scope.clone();
        }
        new
    }

    /// The session's tokens, moved out once the operation is done.
    fn take_tokens(&mut self) -> TokenSet {
        std::mem::replace(
            &mut self.tokens,
            TokenSet {
                access_token: String::new(),
                token_type: String::new(),
                expires_at: 0,
                refresh_token: None,
                id_token: None,
                subject_hint: None,
                scope: None,
            },
        )
    }

    /// After the tokens are settled: hydrate from UserInfo, or finish.
    fn finish_or_hydrate(&mut self) -> Result<Step<Agent>, Error> {
        match std::mem::replace(&mut self.identity, Identity::Client) {
            Identity::Claims(claims) => {
                Ok(Step::Done(agent_from_claims(claims, self.take_tokens())))
            }
            Identity::Client => {
                let id = self.client.config().client_id.clone();
                Ok(Step::Done(Agent::new(
                    id,
                    None,
                    None,
                    None,
                    Vec::new(),
                    self.take_tokens(),
                )))
            }
            hydrate @ Identity::Hydrate { .. } => {
                self.identity = hydrate;
                let endpoint = self
                    .client
                    .metadata()
                    .userinfo_endpoint()
                    .ok_or(Error::Unsupported("UserInfo"))?;
                let request = get(endpoint, Some(&self.tokens.access_token))?;
                self.state = SessionState::AwaitUserInfo;
                Ok(Step::Send(Outgoing {
                    kind: RequestKind::UserInfo,
                    request,
                }))
            }
        }
    }
}

impl Operation for Session {
    type Output = Agent;

    fn poll(&mut self, now: UnixTime) -> Result<Step<Agent>, Error> {
        loop {
            if let Some(keys) = self.ring.event.take() {
                return Ok(Step::KeysRefreshed(keys));
            }
            match std::mem::replace(&mut self.state, SessionState::Finished) {
                SessionState::Start if self.refresh => {
                    if self.tokens.refresh_token.is_some() {
                        if let Some(jwks) = self.ring.prefetch(now)? {
                            self.state = SessionState::AwaitPrefetch;
                            return Ok(Step::Send(jwks));
                        }
                    }
                    let out = self.refresh_request()?;
                    self.state = SessionState::AwaitRefresh;
                    return Ok(Step::Send(out));
                }
                SessionState::Start | SessionState::Persisted => return self.finish_or_hydrate(),
                SessionState::AwaitPrefetch => {
                    self.ring.absorb(&take(&mut self.response)?, now)?;
                    self.state = SessionState::Start;
                }
                SessionState::AwaitRefresh => {
                    let tr = parse_token_response(&take(&mut self.response)?)?;
                    if tr.id_token.is_some() {
                        self.state = SessionState::VerifyRefresh(tr);
                        continue;
                    }
                    // No new ID token: identity comes from UserInfo, bound to the old subject.
                    let subject = self.subject().map(str::to_owned);
                    let mut new = self.merge(tr, now);
                    new.id_token = None;
                    new.subject_hint = subject.clone();
                    self.identity = match self.identity {
                        Identity::Client => Identity::Client,
                        _ => Identity::Hydrate { expected: subject },
                    };
                    self.tokens = new.clone();
                    self.refreshed = true;
                    self.state = SessionState::Persisted;
                    return Ok(Step::Persist(new));
                }
                SessionState::AwaitJwks(tr) => {
                    self.ring.absorb(&take(&mut self.response)?, now)?;
                    self.state = SessionState::VerifyRefresh(tr);
                }
                SessionState::VerifyRefresh(tr) => {
                    let config = self.client.config();
                    let expected = Expected {
                        issuer: self.client.issuer(),
                        client_id: &config.client_id,
                        trusted_audiences: &config.trusted_audiences,
                        nonce: None,
                        max_age: None,
                        access_token: Some(&tr.access_token),
                        leeway: config.leeway,
                        now,
                    };
                    let token = tr.id_token.as_deref().unwrap_or_default();
                    let claims =
                        match verify_id_token(&self.client, &mut self.ring, token, &expected)? {
                            Verified::NeedKeys(out) => {
                                self.state = SessionState::AwaitJwks(tr);
                                return Ok(Step::Send(out));
                            }
                            Verified::Yes(claims) => claims,
                        };
                    if let Identity::Claims(original) = &self.identity {
                        id_token::check_refreshed(&claims, original)
                            .map_err(|e| Error::IdToken(e.into()))?;
                    }
                    if let Some(expected) = self.subject() {
                        if claims.sub != expected {
                            return Err(Error::SubjectMismatch {
                                expected: expected.to_owned(),
                                actual: claims.sub,
                            });
                        }
                    }
                    let mut new = self.merge(tr, now);
                    new.subject_hint = None;
                    self.identity = Identity::Claims(claims);
                    self.tokens = new.clone();
                    self.refreshed = true;
                    self.state = SessionState::Persisted;
                    return Ok(Step::Persist(new));
                }
                SessionState::AwaitUserInfo => {
                    let expected = match &self.identity {
                        Identity::Hydrate { expected } => expected.clone(),
                        _ => None,
                    };
                    let info = userinfo::parse(&take(&mut self.response)?, expected.as_deref())?;
                    return Ok(Step::Done(Agent::new(
                        info.sub,
                        info.email,
                        info.email_verified,
                        info.org_id,
                        info.organizations,
                        self.take_tokens(),
                    )));
                }
                SessionState::Finished => return Err(FINISHED),
            }
        }
    }

    fn handle_response(&mut self, response: http::Response<Vec<u8>>) {
        self.response = Some(response);
    }
}

// ---------------------------------------------------------------------------------------------
// Access-token validation for APIs (RFC 9068)

/// The claims of a validated RFC 9068 access token, with the agent built from them.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AccessTokenInfo {
    /// The agent: subject, organizations and `org_id` from the token, token-level scopes from
    /// its `scope`; `tokens` holds the access token with `expires_at = exp`.
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
}

enum AccessState {
    Verify,
    AwaitJwks,
    Finished,
}

/// Validates a bearer access token as an API would (RFC 9068): `typ` is `at+jwt`, signature,
/// `iss` exact, `aud` contains the API's audience, `exp`/`nbf`/`iat` with leeway, and `sub`,
/// `client_id`, `jti` present. Shares the key set (and its refetch rules) with the client.
pub struct ValidateAccessToken {
    client: Client,
    ring: KeyRing,
    token: String,
    audience: String,
    state: AccessState,
    response: Option<http::Response<Vec<u8>>>,
}

impl fmt::Debug for ValidateAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidateAccessToken")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl ValidateAccessToken {
    pub(crate) fn new(client: Client, token: &str, audience: &str, keys: &KeySet) -> Self {
        ValidateAccessToken {
            ring: KeyRing::new(keys, client.metadata()),
            client,
            token: token.to_owned(),
            audience: audience.to_owned(),
            state: AccessState::Verify,
            response: None,
        }
    }

    fn verify(&mut self, now: UnixTime) -> Result<Verified<AccessTokenInfo>, Error> {
        use crate::json::Members;
        let at_err = |e: TokenError| Error::AccessToken(e);
        let jws = Jws::parse(&self.token).map_err(|e| at_err(e.into()))?;
        if !id_token::typ_is(jws.header().typ.as_deref(), "at+jwt") {
            return Err(at_err(ClaimError::Type.into()));
        }
        if let Verified::NeedKeys(out) =
            self.ring
                .verify(&jws, self.client.algorithms(), now, Error::AccessToken)?
        {
            return Ok(Verified::NeedKeys(out));
        }
        let mut map = crate::json::parse_object(jws.payload()).map_err(|e| at_err(e.into()))?;
        let organizations = map
            .remove("organizations")
            .map(crate::org::into_organizations)
            .unwrap_or_default();
        let claim = |r: Result<Option<&str>, crate::json::JsonError>, name: &'static str| match r {
            Ok(Some(s)) if !s.is_empty() => Ok(s.to_owned()),
            _ => Err(at_err(ClaimError::Missing(name).into())),
        };
        let number = |name: &'static str| {
            map.opt_u64(name)
                .ok()
                .flatten()
                .ok_or_else(|| at_err(ClaimError::Missing(name).into()))
        };
        if claim(map.opt_str("iss"), "iss")? != self.client.issuer() {
            return Err(at_err(ClaimError::Issuer.into()));
        }
        let audience = id_token::audiences(&map).map_err(|e| at_err(e.into()))?;
        if !audience.contains(&self.audience) {
            return Err(at_err(ClaimError::Audience.into()));
        }
        let exp = number("exp")?;
        let iat = number("iat")?;
        let nbf = map
            .opt_u64("nbf")
            .map_err(|_| at_err(ClaimError::Missing("nbf").into()))?;
        id_token::check_times(exp, Some(iat), nbf, self.client.config().leeway, now)
            .map_err(|e| at_err(e.into()))?;
        let sub = claim(map.opt_str("sub"), "sub")?;
        let client_id = claim(map.opt_str("client_id"), "client_id")?;
        let jti = claim(map.opt_str("jti"), "jti")?;
        let scope = map.opt_str("scope").ok().flatten().map(str::to_owned);
        let org_id = map.opt_str("org_id").ok().flatten().map(str::to_owned);
        let sid = map.opt_str("sid").ok().flatten().map(str::to_owned);
        let dat_type = map
            .get("dat")
            .and_then(|d| d.get("type"))
            .and_then(|t| t.as_str())
            .map(str::to_owned);
        let tokens = TokenSet {
            access_token: self.token.clone(),
            token_type: "Bearer".to_owned(),
            expires_at: exp,
            refresh_token: None,
            id_token: None,
            subject_hint: None,
            scope,
        };
        Ok(Verified::Yes(AccessTokenInfo {
            agent: Agent::new(sub, None, None, org_id, organizations, tokens),
            client_id,
            jti,
            sid,
            dat_type,
            issued_at: iat,
            audience,
        }))
    }
}

impl Operation for ValidateAccessToken {
    type Output = AccessTokenInfo;

    fn poll(&mut self, now: UnixTime) -> Result<Step<AccessTokenInfo>, Error> {
        loop {
            if let Some(keys) = self.ring.event.take() {
                return Ok(Step::KeysRefreshed(keys));
            }
            match std::mem::replace(&mut self.state, AccessState::Finished) {
                AccessState::Verify => match self.verify(now)? {
                    Verified::NeedKeys(out) => {
                        self.state = AccessState::AwaitJwks;
                        return Ok(Step::Send(out));
                    }
                    Verified::Yes(info) => return Ok(Step::Done(info)),
                },
                AccessState::AwaitJwks => {
                    self.ring.absorb(&take(&mut self.response)?, now)?;
                    self.state = AccessState::Verify;
                }
                AccessState::Finished => return Err(FINISHED),
            }
        }
    }

    fn handle_response(&mut self, response: http::Response<Vec<u8>>) {
        self.response = Some(response);
    }
}

// ---------------------------------------------------------------------------------------------
// Discovery

/// A client built from discovery, with the provider's key set fetched.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Discovered {
    /// The client, with the discovered endpoints.
    pub client: Client,
    /// The provider's key set, fetched right after discovery.
    pub keys: KeySet,
}

enum DiscoverState {
    Start,
    AwaitMetadata,
    AwaitJwks(Client),
    Finished,
}

/// OpenID Connect Discovery followed by the JWKS fetch: `Send(discovery)`, `Send(JWKS)`,
/// `Done(Discovered)`.
pub struct Discover {
    config: Config,
    state: DiscoverState,
    response: Option<http::Response<Vec<u8>>>,
}

impl fmt::Debug for Discover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discover")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

impl Discover {
    pub(crate) fn new(config: Config) -> Self {
        Discover {
            config,
            state: DiscoverState::Start,
            response: None,
        }
    }
}

impl Operation for Discover {
    type Output = Discovered;

    fn poll(&mut self, now: UnixTime) -> Result<Step<Discovered>, Error> {
        match std::mem::replace(&mut self.state, DiscoverState::Finished) {
            DiscoverState::Start => {
                let url = ProviderMetadata::discovery_url(&self.config.issuer)?;
                self.state = DiscoverState::AwaitMetadata;
                Ok(Step::Send(Outgoing {
                    kind: RequestKind::Discovery,
                    request: get(&url, None)?,
                }))
            }
            DiscoverState::AwaitMetadata => {
                let resp = take(&mut self.response)?;
                let metadata = ProviderMetadata::from_response(&resp, &self.config.issuer, now)?;
                let client = Client::with_metadata(self.config.clone(), metadata)?;
                let request = get(client.metadata().jwks_uri(), None)?;
                self.state = DiscoverState::AwaitJwks(client);
                Ok(Step::Send(Outgoing {
                    kind: RequestKind::Jwks,
                    request,
                }))
            }
            DiscoverState::AwaitJwks(client) => {
                let keys = KeySet::from_response(&take(&mut self.response)?, now)?;
                Ok(Step::Done(Discovered { client, keys }))
            }
            DiscoverState::Finished => Err(FINISHED),
        }
    }

    fn handle_response(&mut self, response: http::Response<Vec<u8>>) {
        self.response = Some(response);
    }
}

// ---------------------------------------------------------------------------------------------
// Single-request operations

type Process<T> = Box<dyn FnOnce(&http::Response<Vec<u8>>, UnixTime) -> Result<T, Error> + Send>;

/// An operation of exactly one request: `Send`, then `Done`.
///
/// Also usable as a plain pair: take [`Single::request`], send it, and call
/// [`Single::process`] with the response.
pub struct Single<T> {
    request: Option<Outgoing>,
    response: Option<http::Response<Vec<u8>>>,
    process: Option<Process<T>>,
}

impl<T> fmt::Debug for Single<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Single")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl<T> Single<T> {
    pub(crate) fn new(request: Outgoing, process: Process<T>) -> Self {
        Single {
            request: Some(request),
            response: None,
            process: Some(process),
        }
    }

    /// The request to send (None once taken).
    pub fn request(&mut self) -> Option<Outgoing> {
        self.request.take()
    }

    /// Validates the response to the request.
    pub fn process(
        mut self,
        response: &http::Response<Vec<u8>>,
        now: UnixTime,
    ) -> Result<T, Error> {
        let f = self.process.take().ok_or(FINISHED)?;
        f(response, now)
    }
}

impl<T> Operation for Single<T> {
    type Output = T;

    fn poll(&mut self, now: UnixTime) -> Result<Step<T>, Error> {
        if let Some(out) = self.request.take() {
            return Ok(Step::Send(out));
        }
        let f = self.process.take().ok_or(FINISHED)?;
        let resp = take(&mut self.response)?;
        f(&resp, now).map(Step::Done)
    }

    fn handle_response(&mut self, response: http::Response<Vec<u8>>) {
        self.response = Some(response);
    }
}
