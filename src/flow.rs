//! Operations: the state machines every driver runs.
//!
//! An operation is driven by one loop, the same in every adapter (async or blocking) and in a
//! test with no network at all:
//!
//! ```no_run
//! # use authpi_idp::{Error, Operation, Step, UnixTime};
//! # fn send(_: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, std::io::Error> { unimplemented!() }
//! # fn store(_: &authpi_idp::TokenSet) {}
//! # fn run<O: Operation>(mut op: O, now: UnixTime) -> Result<O::Output, Error> {
//! loop {
//!     match op.poll(now)? {
//!         Step::Send(out) => match send(out.request) {
//!             Ok(response) => op.handle_response(response),
//!             Err(_transport_error) => op.handle_transport_error(), // then keep polling
//!         },
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
//!   [`Operation::handle_response`] with the response to that request, or
//!   [`Operation::handle_transport_error`] when the request got no response (connection error,
//!   timeout, size cap); only then does `poll` make progress. Every other step is an event:
//!   handle it, then call `poll` again.
//! - After `handle_transport_error`, keep polling: `poll` either goes on (a refresh whose new ID
//!   token cannot be checked for lack of keys: `Persist`, then `Done`, see [`Session`]), or
//!   answers [`Error::NoResponse`], which a driver replaces with its own transport error.
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
//! - At most one JWKS request per operation, and only when the cached key set is stale or empty
//!   (and the last attempt is older than [`crate::jwks::REFETCH_COOLDOWN`]), or lacks the
//!   token's key. For a token anyone can present (an access token at an API) a missing key
//!   causes a refetch only when the last fetch *attempt* is older than the cooldown; an ID token
//!   that came from the token endpoint over TLS is not forgeable by a third party, so its
//!   unknown `kid` always gets the one refetch (keys rotated between login and refresh just
//!   work).
//! - A failed JWKS request (error status, unusable body, no response) is still an attempt: the
//!   operation emits [`Step::KeysRefreshed`] with the same keys and the attempt recorded
//!   ([`KeySet::attempted_at`]), so the cooldown holds across operations while the endpoint
//!   fails.
//! - Cheap rejections (an `alg` outside the allowed set, an ES256/EdDSA signature that is not 64
//!   bytes, a malformed token, a wrong `typ`) come before any JWKS request.
//! - A key set bound to another provider ([`KeySet::check_provider`]) is refused by the first
//!   `poll`, before any request.

use crate::agent::Agent;
use crate::client::Client;
use crate::config::Config;
use crate::error::{ClaimError, Endpoint, Error, ResponseError, TokenError};
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
    /// The provider's key set was refetched, or a refetch was attempted and failed (same keys,
    /// attempt time recorded for the cooldown): keep it for later operations.
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

    /// The request of the last [`Step::Send`] got no response (connection error, timeout, size
    /// cap): call it instead of [`handle_response`](Self::handle_response), then keep polling.
    /// `poll` then either goes on (see the [module docs](self)) or answers
    /// [`Error::NoResponse`].
    fn handle_transport_error(&mut self);
}

const NO_RESPONSE: Error = Error::Usage("poll called after Send without handle_response");
pub(crate) const FINISHED: Error = Error::Usage("the operation is already finished");

/// The endpoint a request kind goes to, for [`Error::NoResponse`].
fn endpoint_of(kind: RequestKind) -> Endpoint {
    match kind {
        RequestKind::Discovery => Endpoint::Discovery,
        RequestKind::Jwks => Endpoint::Jwks,
        RequestKind::UserInfo => Endpoint::UserInfo,
        RequestKind::Revocation => Endpoint::Revocation,
        RequestKind::Introspection => Endpoint::Introspection,
        RequestKind::DeviceAuthorization => Endpoint::DeviceAuthorization,
        RequestKind::AuthorizationCode
        | RequestKind::Refresh { .. }
        | RequestKind::ClientCredentials
        | RequestKind::DeviceCode => Endpoint::Token,
    }
}

/// The request an operation sent last and what came back for it.
#[derive(Default)]
pub(crate) struct Inbox {
    sent: Option<RequestKind>,
    reply: Option<Option<http::Response<Vec<u8>>>>,
}

impl Inbox {
    /// Records that `out` is being sent and returns the step that sends it.
    pub(crate) fn send<T>(&mut self, out: Outgoing) -> Step<T> {
        self.sent = Some(out.kind);
        self.reply = None;
        Step::Send(out)
    }

    pub(crate) fn response(&mut self, response: http::Response<Vec<u8>>) {
        self.reply = Some(Some(response));
    }

    pub(crate) fn transport_error(&mut self) {
        self.reply = Some(None);
    }

    /// The response to the last request: [`Error::NoResponse`] after a transport error, a
    /// usage error when neither input came.
    pub(crate) fn take(&mut self) -> Result<http::Response<Vec<u8>>, Error> {
        match self.reply.take() {
            Some(Some(response)) => Ok(response),
            Some(None) => Err(self.sent.map_or(NO_RESPONSE, |kind| Error::NoResponse {
                endpoint: endpoint_of(kind),
            })),
            None => Err(NO_RESPONSE),
        }
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
            return Err(FINISHED);
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
    fn prefetch(&self, now: UnixTime) -> Result<Option<Outgoing>, Error> {
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
        match jws.verify(&self.keys, allowed) {
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

/// Parses an ID token from the token endpoint and makes the checks that need no key.
fn parse_id_token(token: &str) -> Result<Jws<'_>, Error> {
    let jws = Jws::parse(token).map_err(|e| Error::IdToken(e.into()))?;
    if id_token::is_other_token_type(jws.header().typ.as_deref()) {
        return Err(Error::IdToken(ClaimError::Type.into()));
    }
    Ok(jws)
}

/// Verifies the signature of an ID token from the token endpoint (see [`KeyRing::verify`]).
fn verify_id_signature(
    client: &Client,
    ring: &mut KeyRing,
    jws: &Jws<'_>,
    now: UnixTime,
) -> Result<Verified<()>, Error> {
    ring.verify(
        jws,
        client.algorithms(),
        now,
        TokenSource::TokenEndpoint,
        Error::IdToken,
    )
}

/// Decodes the claims of an ID token and checks them (the signature is checked separately).
fn check_id_claims(jws: &Jws<'_>, expected: &Expected<'_>) -> Result<IdClaims, Error> {
    let claims = IdClaims::from_payload(jws.payload()).map_err(Error::IdToken)?;
    id_token::check(
        &claims,
        jws.header().alg,
        jws.header().typ.as_deref(),
        expected,
    )
    .map_err(|e| Error::IdToken(e.into()))?;
    Ok(claims)
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
/// unknown (once, whatever the cooldown: the ID token came from the token endpoint), then
/// `Done`.
/// The ID token is required and fully verified (signature, `iss`, `aud`, `azp`, `exp`, `iat`,
/// `nbf`, `nonce`, `at_hash`, `auth_time` when `max_age` was sent); on any failure no token
/// comes out. A login has no earlier verified identity to fall back on, so an ID token whose key
/// cannot be found is an error here (unlike a refresh, see [`Session`]).
pub struct Exchange {
    client: Client,
    ring: KeyRing,
    state: ExchangeState,
    inbox: Inbox,
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
            inbox: Inbox::default(),
            nonce,
            max_age,
        }
    }
}

impl Operation for Exchange {
    type Output = Agent;

    fn poll(&mut self, now: UnixTime) -> Result<Step<Agent>, Error> {
        loop {
            if let Some(step) = self.ring.poll_event()? {
                return Ok(step);
            }
            match std::mem::replace(&mut self.state, ExchangeState::Finished) {
                ExchangeState::Start(out) => {
                    if let Some(jwks) = self.ring.prefetch(now)? {
                        self.state = ExchangeState::AwaitPrefetch(out);
                        return Ok(self.inbox.send(jwks));
                    }
                    self.state = ExchangeState::AwaitToken;
                    return Ok(self.inbox.send(out));
                }
                ExchangeState::AwaitPrefetch(out) => {
                    match self.ring.absorb(self.inbox.take(), now) {
                        Ok(()) => self.state = ExchangeState::Start(out),
                        Err(e) => self.ring.defer(e),
                    }
                }
                ExchangeState::AwaitToken => {
                    let tr = parse_token_response(&self.inbox.take()?)?;
                    if tr.id_token.is_none() {
                        return Err(Error::Response {
                            endpoint: Endpoint::Token,
                            reason: ResponseError::MissingIdToken,
                        });
                    }
                    self.state = ExchangeState::Verify(tr);
                }
                ExchangeState::AwaitJwks(tr) => match self.ring.absorb(self.inbox.take(), now) {
                    Ok(()) => self.state = ExchangeState::Verify(tr),
                    Err(e) => self.ring.defer(e),
                },
                ExchangeState::Verify(tr) => {
                    let token = tr.id_token.as_deref().unwrap_or_default();
                    let jws = parse_id_token(token)?;
                    match verify_id_signature(&self.client, &mut self.ring, &jws, now)? {
                        Verified::NeedKeys(out) => {
                            self.state = ExchangeState::AwaitJwks(tr);
                            return Ok(self.inbox.send(out));
                        }
                        Verified::NoKey => {
                            return Err(Error::IdToken(JoseError::NoMatchingKey.into()));
                        }
                        Verified::Yes(()) => {}
                    }
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
                    let claims = check_id_claims(&jws, &expected)?;
                    return Ok(Step::Done(agent_from_claims(
                        claims,
                        tr.into_token_set(now),
                    )));
                }
                ExchangeState::Finished => return Err(FINISHED),
            }
        }
    }

    fn handle_response(&mut self, response: http::Response<Vec<u8>>) {
        self.inbox.response(response);
    }

    fn handle_transport_error(&mut self) {
        self.inbox.transport_error();
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
    /// The refreshed ID token's signature cannot be checked for lack of keys (no verdict).
    Unverifiable(TokenResponse),
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
///    refresh token is only spent once the keys to verify the answer are at hand (a failed
///    prefetch is an error, since nothing is spent yet; its attempt starts the cooldown, so the
///    next operation within it refreshes with the cached keys instead);
/// 2. `Send(JWKS)` + `KeysRefreshed` when a refreshed ID token's key is still unknown (a key
///    rotated in between), once, whatever the cooldown (the ID token came from the token
///    endpoint over TLS; only tokens anyone can present obey the cooldown);
/// 3. `Persist(tokens)` with the rotated token set, as soon as it is validated;
/// 4. `Send(UserInfo)` when the identity must come from UserInfo (a token set with
///    `subject_hint` and no ID token, or a refresh that returned no ID token); UserInfo's
///    `sub` must equal the session's subject, and its organizations replace the old ones;
/// 5. `Done(agent)`.
///
/// [`Session::refreshed`] tells whether step 3 happened (an adapter reports `on_refresh_error`
/// only for failures before it).
///
/// # The no-verdict rule (rotated tokens are never dropped)
/// Once the refresh request is answered, the old refresh token is spent at the provider. If the
/// new ID token then cannot be given a verdict for lack of keys — the JWKS request answers an
/// error status or an unusable body, gets no response
/// ([`Operation::handle_transport_error`]), or the token's `kid` is still unknown after the one
/// refetch — the operation neither fails nor drops the tokens:
/// - the new ID token's claims are decoded and checked without the signature (`iss`, `sub`,
///   `aud` as a set, `azp`, `nonce`, `auth_time`, `exp`/`iat`/`nbf`, `at_hash`); a claim that
///   fails is a verdict: the error comes out and nothing is persisted;
/// - otherwise `Persist(set)` hands out the new access and refresh tokens, `expires_at` and
///   `scope`, with the *previous*, verified `id_token` in place of the unverifiable new one (or
///   the previous `subject_hint` when the session had no ID token), then `Done(agent)` with the
///   previous verified identity, and [`Agent::identity_reverified`] is `false`. The next refresh
///   (or login) verifies a new ID token again.
///
/// A verdict against the tokens — a bad signature with fresh keys, a changed `iss`, `sub`,
/// `aud`, `azp`, `nonce` or `auth_time`, an expired token, a disallowed `alg` — still persists
/// nothing.
///
/// A stored set with a refresh token but neither an ID token nor a `subject_hint` pins no
/// subject, so UserInfo's `sub` could not be checked against anything: it is refused with
/// [`Error::UnpinnedSubject`] when the operation is created (the SDK never stores such a set:
/// a refresh without an ID token writes `subject_hint`).
pub struct Session {
    client: Client,
    ring: KeyRing,
    tokens: TokenSet,
    identity: Identity,
    refresh: bool,
    options: SessionOptions,
    state: SessionState,
    inbox: Inbox,
    refreshed: bool,
    reverified: bool,
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
            return Err(Error::UnpinnedSubject);
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
            inbox: Inbox::default(),
            refreshed: false,
            reverified: true,
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

    /// Checks the claims of a refreshed ID token: first against the original (OIDC Core §12.2:
    /// `iss`, `aud` as a set, `azp`, `nonce`, `auth_time`, then `sub`), so a changed claim is
    /// reported as such, then every rule of a new ID token except the signature.
    fn check_refreshed_claims(
        &self,
        jws: &Jws<'_>,
        tr: &TokenResponse,
        now: UnixTime,
    ) -> Result<IdClaims, Error> {
        let claims = IdClaims::from_payload(jws.payload()).map_err(Error::IdToken)?;
        if let Identity::Claims(original) = &self.identity {
            id_token::check_refreshed(&claims, original).map_err(|e| Error::IdToken(e.into()))?;
        }
        if let Some(expected) = self.subject() {
            if claims.sub != expected {
                return Err(Error::subject_mismatch(expected, &claims.sub));
            }
        }
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
        id_token::check(
            &claims,
            jws.header().alg,
            jws.header().typ.as_deref(),
            &expected,
        )
        .map_err(|e| Error::IdToken(e.into()))?;
        Ok(claims)
    }

    /// After the tokens are settled: hydrate from UserInfo, or finish.
    fn finish_or_hydrate(&mut self) -> Result<Step<Agent>, Error> {
        match std::mem::replace(&mut self.identity, Identity::Client) {
            Identity::Claims(claims) => {
                let agent = agent_from_claims(claims, self.take_tokens());
                Ok(Step::Done(agent.reverified(self.reverified)))
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
                Ok(self.inbox.send(Outgoing {
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
            if let Some(step) = self.ring.poll_event()? {
                return Ok(step);
            }
            match std::mem::replace(&mut self.state, SessionState::Finished) {
                SessionState::Start if self.refresh => {
                    if self.tokens.refresh_token.is_some() {
                        if let Some(jwks) = self.ring.prefetch(now)? {
                            self.state = SessionState::AwaitPrefetch;
                            return Ok(self.inbox.send(jwks));
                        }
                    }
                    let out = self.refresh_request()?;
                    self.state = SessionState::AwaitRefresh;
                    return Ok(self.inbox.send(out));
                }
                SessionState::Start | SessionState::Persisted => return self.finish_or_hydrate(),
                SessionState::AwaitPrefetch => {
                    // The refresh token is not spent yet: a failure here loses nothing.
                    match self.ring.absorb(self.inbox.take(), now) {
                        Ok(()) => self.state = SessionState::Start,
                        Err(e) => self.ring.defer(e),
                    }
                }
                SessionState::AwaitRefresh => {
                    let tr = parse_token_response(&self.inbox.take()?)?;
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
                    // The refresh token is spent: a JWKS failure is no verdict on the tokens.
                    self.state = match self.ring.absorb(self.inbox.take(), now) {
                        Ok(()) => SessionState::VerifyRefresh(tr),
                        Err(_) => SessionState::Unverifiable(tr),
                    };
                }
                SessionState::VerifyRefresh(tr) => {
                    let token = tr.id_token.as_deref().unwrap_or_default();
                    let jws = parse_id_token(token)?;
                    match verify_id_signature(&self.client, &mut self.ring, &jws, now)? {
                        Verified::NeedKeys(out) => {
                            self.state = SessionState::AwaitJwks(tr);
                            return Ok(self.inbox.send(out));
                        }
                        Verified::NoKey => {
                            self.state = SessionState::Unverifiable(tr);
                            continue;
                        }
                        Verified::Yes(()) => {}
                    }
                    let claims = self.check_refreshed_claims(&jws, &tr, now)?;
                    let mut new = self.merge(tr, now);
                    new.subject_hint = None;
                    self.identity = Identity::Claims(claims);
                    self.tokens = new.clone();
                    self.refreshed = true;
                    self.state = SessionState::Persisted;
                    return Ok(Step::Persist(new));
                }
                SessionState::Unverifiable(tr) => {
                    // No verdict on the signature: the claims still get one (module docs).
                    let token = tr.id_token.as_deref().unwrap_or_default();
                    let jws = parse_id_token(token)?;
                    self.check_refreshed_claims(&jws, &tr, now)?;
                    let mut new = self.merge(tr, now);
                    if let Identity::Claims(_) = &self.identity {
                        // Identity kept from the previous, verified ID token.
                        new.id_token = self.tokens.id_token.clone();
                        new.subject_hint = None;
                    } else {
                        new.id_token = None;
                        new.subject_hint = self.subject().map(str::to_owned);
                    }
                    self.reverified = false;
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
                    let info = userinfo::parse(&self.inbox.take()?, expected.as_deref())?;
                    let agent = Agent::new(
                        info.sub,
                        info.email,
                        info.email_verified,
                        info.org_id,
                        info.organizations,
                        self.take_tokens(),
                    );
                    return Ok(Step::Done(agent.reverified(self.reverified)));
                }
                SessionState::Finished => return Err(FINISHED),
            }
        }
    }

    fn handle_response(&mut self, response: http::Response<Vec<u8>>) {
        self.inbox.response(response);
    }

    fn handle_transport_error(&mut self) {
        self.inbox.transport_error();
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
    inbox: Inbox,
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
            inbox: Inbox::default(),
        }
    }

    fn verify(&mut self, now: UnixTime) -> Result<Verified<AccessTokenInfo>, Error> {
        use crate::json::Members;
        let at_err = |e: TokenError| Error::AccessToken(e);
        let jws = Jws::parse(&self.token).map_err(|e| at_err(e.into()))?;
        if !id_token::typ_is(jws.header().typ.as_deref(), "at+jwt") {
            return Err(at_err(ClaimError::Type.into()));
        }
        match self.ring.verify(
            &jws,
            self.client.algorithms(),
            now,
            TokenSource::Bearer,
            Error::AccessToken,
        )? {
            Verified::NeedKeys(out) => return Ok(Verified::NeedKeys(out)),
            Verified::NoKey => return Err(at_err(JoseError::NoMatchingKey.into())),
            Verified::Yes(()) => {}
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
            id_token::numeric_date(&map, name)
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
        let nbf = id_token::numeric_date(&map, "nbf").map_err(|e| at_err(e.into()))?;
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
            if let Some(step) = self.ring.poll_event()? {
                return Ok(step);
            }
            match std::mem::replace(&mut self.state, AccessState::Finished) {
                AccessState::Verify => match self.verify(now)? {
                    Verified::NeedKeys(out) => {
                        self.state = AccessState::AwaitJwks;
                        return Ok(self.inbox.send(out));
                    }
                    Verified::NoKey => {
                        return Err(Error::AccessToken(JoseError::NoMatchingKey.into()));
                    }
                    Verified::Yes(info) => return Ok(Step::Done(info)),
                },
                AccessState::AwaitJwks => match self.ring.absorb(self.inbox.take(), now) {
                    Ok(()) => self.state = AccessState::Verify,
                    Err(e) => self.ring.defer(e),
                },
                AccessState::Finished => return Err(FINISHED),
            }
        }
    }

    fn handle_response(&mut self, response: http::Response<Vec<u8>>) {
        self.inbox.response(response);
    }

    fn handle_transport_error(&mut self) {
        self.inbox.transport_error();
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
    inbox: Inbox,
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
            inbox: Inbox::default(),
        }
    }
}

impl Operation for Discover {
    type Output = Discovered;

    fn poll(&mut self, now: UnixTime) -> Result<Step<Discovered>, Error> {
        match std::mem::replace(&mut self.state, DiscoverState::Finished) {
            DiscoverState::Start => {
                let url = ProviderMetadata::discovery_url(&self.config.issuer)?;
                let request = get(&url, None)?;
                self.state = DiscoverState::AwaitMetadata;
                Ok(self.inbox.send(Outgoing {
                    kind: RequestKind::Discovery,
                    request,
                }))
            }
            DiscoverState::AwaitMetadata => {
                let resp = self.inbox.take()?;
                let metadata = ProviderMetadata::from_response(&resp, &self.config.issuer, now)?;
                let client = Client::with_metadata(self.config.clone(), metadata)?;
                let request = get(client.metadata().jwks_uri(), None)?;
                self.state = DiscoverState::AwaitJwks(client);
                Ok(self.inbox.send(Outgoing {
                    kind: RequestKind::Jwks,
                    request,
                }))
            }
            DiscoverState::AwaitJwks(client) => {
                let keys = KeySet::from_response(&self.inbox.take()?, now)?.bind(
                    client.metadata().issuer(),
                    client.metadata().jwks_uri().as_str(),
                );
                Ok(Step::Done(Discovered { client, keys }))
            }
            DiscoverState::Finished => Err(FINISHED),
        }
    }

    fn handle_response(&mut self, response: http::Response<Vec<u8>>) {
        self.inbox.response(response);
    }

    fn handle_transport_error(&mut self) {
        self.inbox.transport_error();
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
    inbox: Inbox,
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
            inbox: Inbox::default(),
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
            return Ok(self.inbox.send(out));
        }
        let f = self.process.take().ok_or(FINISHED)?;
        let resp = self.inbox.take()?;
        f(&resp, now).map(Step::Done)
    }

    fn handle_response(&mut self, response: http::Response<Vec<u8>>) {
        self.inbox.response(response);
    }

    fn handle_transport_error(&mut self) {
        self.inbox.transport_error();
    }
}
