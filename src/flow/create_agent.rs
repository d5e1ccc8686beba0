//! Stored sessions: rebuild an [`Agent`] from a [`TokenSet`], refreshing and hydrating as
//! needed ([`Client::create_agent`], [`Client::refresh`]).

use super::Operation;
use super::Step;
use super::common::{FINISHED, Received, Shared, agent_from_claims, record_inputs};
use super::keys::Verified;
use super::userinfo::process_userinfo_response;
use crate::agent::Agent;
use crate::client::Client;
use crate::error::{Endpoint, Error};
use crate::http::{Outgoing, RequestKind, form_post, get};
use crate::id_token::{self, IdClaims};
use crate::org::Memberships;
use crate::provider::KeySet;
use crate::time::UnixTime;
use crate::token::{TokenResponse, TokenSet, parse_token_response};
use std::fmt;

/// SHA-256 of a token: a single-flight key that is not the token itself.
pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    crate::jose::sha256(token.as_bytes())
}

impl Client {
    /// Rebuilds the agent of a stored token set, refreshing when it is inside the refresh
    /// buffer at the `now` of the first `poll` (if auto-refresh is on) and hydrating from UserInfo when there is no ID token.
    /// See [`CreateAgent`] for the steps.
    pub fn create_agent(
        &self,
        tokens: TokenSet,
        options: RefreshOptions,
        keys: &KeySet,
    ) -> Result<CreateAgent, Error> {
        CreateAgent::new(self.clone(), tokens, options, keys)
    }

    /// Refreshes now, whatever the expiry (manual refresh). Keeps the old refresh token and
    /// scope when the response omits them; a new ID token must keep `iss`, `sub`, `aud` (and
    /// `nonce` if present); without one, the identity is re-read from UserInfo.
    pub fn refresh(
        &self,
        tokens: TokenSet,
        options: RefreshOptions,
        keys: &KeySet,
    ) -> Result<CreateAgent, Error> {
        CreateAgent::new(
            self.clone(),
            tokens,
            RefreshOptions {
                force_refresh: true,
                ..options
            },
            keys,
        )
    }
}

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

enum CreateAgentState {
    /// Nothing decided yet: the first `poll` decides, with its `now`, whether a refresh is due.
    Start,
    /// A refresh is due: prefetch the keys if needed, then send the refresh request.
    Refresh,
    AwaitPrefetch,
    AwaitRefresh,
    /// The refresh response, its ID token parsed once.
    VerifyRefresh(Received),
    AwaitJwks(Received),
    /// The refreshed ID token's signature cannot be checked for lack of keys (no verdict).
    Unverifiable(Received),
    Persisted,
    AwaitUserInfo,
    Finished,
}

/// Options of [`Client::create_agent`] and [`Client::refresh`].
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct RefreshOptions {
    pub(crate) auto_refresh: Option<bool>,
    pub(crate) force_refresh: bool,
    pub(crate) resources: Vec<String>,
    pub(crate) scope: Option<String>,
}

impl RefreshOptions {
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
/// [`CreateAgent::refreshed`] tells whether step 3 happened (an adapter reports `on_refresh_error`
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
pub struct CreateAgent {
    shared: Shared,
    tokens: TokenSet,
    identity: Identity,
    options: RefreshOptions,
    state: CreateAgentState,
    /// The first `poll` decided to refresh.
    refresh: bool,
    refreshed: bool,
    reverified: bool,
}

impl fmt::Debug for CreateAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateAgent")
            .field("refresh", &self.refresh)
            .field("refreshed", &self.refreshed)
            .finish_non_exhaustive()
    }
}

impl CreateAgent {
    fn new(
        client: Client,
        tokens: TokenSet,
        options: RefreshOptions,
        keys: &KeySet,
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
        Ok(CreateAgent {
            shared: Shared::new(client, keys),
            tokens,
            identity,
            options,
            state: CreateAgentState::Start,
            refresh: false,
            refreshed: false,
            reverified: true,
        })
    }

    /// Whether this operation had to refresh, as decided by its first `poll` (`false` before
    /// it): forced ([`Client::refresh`]), or auto-refresh on and the access token inside the
    /// refresh buffer at that poll's `now`. An error from `poll` while
    /// `refresh_due() && !refreshed()` means fresh tokens could not be obtained: whatever failed
    /// (no refresh token, the key-set prefetch, the token request or its validation), the
    /// caller holds no usable tokens, which is when an adapter reports `on_refresh_error`.
    #[must_use]
    pub fn refresh_due(&self) -> bool {
        self.refresh
    }

    /// Whether a refresh would be due at `now` (what the first `poll` decides with its `now`):
    /// forced ([`Client::refresh`]), or auto-refresh on (the options, else the configuration)
    /// and the access token inside the refresh buffer.
    #[must_use]
    pub fn refresh_due_at(&self, now: UnixTime) -> bool {
        let config = self.shared.client.config();
        let auto = self.options.auto_refresh.unwrap_or(config.auto_refresh);
        self.options.force_refresh || (auto && self.tokens.is_expired(now, config.refresh_buffer))
    }

    /// Whether the refreshed token set was handed out (`Persist`). After that, the old refresh
    /// token is spent: the caller must keep the new one, whatever happens next.
    #[must_use]
    pub fn refreshed(&self) -> bool {
        self.refreshed
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
        let request = form_post(
            self.shared.client.metadata().token_endpoint(),
            self.shared.client.config(),
            &params,
        )?;
        Ok(Outgoing {
            kind: RequestKind::Refresh {
                token_hash: token_hash(rt),
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
        received: &Received,
        now: UnixTime,
    ) -> Result<IdClaims, Error> {
        let (jws, tr) = (&received.id_token, &received.tokens);
        let claims = IdClaims::from_payload(jws.payload()).map_err(Error::IdToken)?;
        if let Identity::Claims(original) = &self.identity {
            id_token::check_refreshed(&claims, original).map_err(|e| Error::IdToken(e.into()))?;
        }
        if let Some(expected) = self.subject() {
            if claims.sub != expected {
                return Err(Error::subject_mismatch(expected, &claims.sub));
            }
        }
        let expected = self.shared.expected(None, None, &tr.access_token, now);
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
                let id = self.shared.client.config().client_id.clone();
                Ok(Step::Done(Agent::new(
                    id,
                    None,
                    None,
                    None,
                    Memberships::default(),
                    self.take_tokens(),
                )))
            }
            hydrate @ Identity::Hydrate { .. } => {
                self.identity = hydrate;
                let endpoint = self
                    .shared
                    .client
                    .metadata()
                    .userinfo_endpoint()
                    .ok_or(Error::Unsupported(Endpoint::UserInfo))?;
                let request = get(endpoint, Some(&self.tokens.access_token))?;
                self.state = CreateAgentState::AwaitUserInfo;
                Ok(self.shared.send(Outgoing {
                    kind: RequestKind::UserInfo,
                    request,
                }))
            }
        }
    }
}

impl Operation for CreateAgent {
    type Output = Agent;

    fn poll(&mut self, now: UnixTime) -> Result<Step<Agent>, Error> {
        loop {
            if let Some(step) = self.shared.open()? {
                return Ok(step);
            }
            match std::mem::replace(&mut self.state, CreateAgentState::Finished) {
                CreateAgentState::Start if self.refresh_due_at(now) => {
                    self.refresh = true;
                    self.state = CreateAgentState::Refresh;
                }
                CreateAgentState::Refresh => {
                    if self.tokens.refresh_token.is_some() {
                        if let Some(jwks) = self.shared.ring.prefetch(now)? {
                            self.state = CreateAgentState::AwaitPrefetch;
                            return Ok(self.shared.send(jwks));
                        }
                    }
                    let out = self.refresh_request()?;
                    self.state = CreateAgentState::AwaitRefresh;
                    return Ok(self.shared.send(out));
                }
                CreateAgentState::Start | CreateAgentState::Persisted => {
                    return self.finish_or_hydrate();
                }
                CreateAgentState::AwaitPrefetch => {
                    // The refresh token is not spent yet: a failure here loses nothing.
                    match self.shared.absorb_keys(now) {
                        Ok(()) => self.state = CreateAgentState::Refresh,
                        Err(e) => self.shared.ring.defer(e),
                    }
                }
                CreateAgentState::AwaitRefresh => {
                    let tr = parse_token_response(&self.shared.inbox.take()?)?;
                    let tr = match Received::parse(tr)? {
                        Ok(received) => {
                            self.state = CreateAgentState::VerifyRefresh(received);
                            continue;
                        }
                        Err(without_id_token) => without_id_token,
                    };
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
                    self.state = CreateAgentState::Persisted;
                    return Ok(Step::Persist(new));
                }
                CreateAgentState::AwaitJwks(received) => {
                    // The refresh token is spent: a JWKS failure is no verdict on the tokens.
                    self.state = match self.shared.absorb_keys(now) {
                        Ok(()) => CreateAgentState::VerifyRefresh(received),
                        Err(_) => CreateAgentState::Unverifiable(received),
                    };
                }
                CreateAgentState::VerifyRefresh(received) => {
                    match self.shared.verify_id_signature(&received.id_token, now)? {
                        Verified::NeedKeys(out) => {
                            self.state = CreateAgentState::AwaitJwks(received);
                            return Ok(self.shared.send(out));
                        }
                        Verified::NoKey => {
                            self.state = CreateAgentState::Unverifiable(received);
                            continue;
                        }
                        Verified::Yes(()) => {}
                    }
                    let claims = self.check_refreshed_claims(&received, now)?;
                    let mut new = self.merge(received.tokens, now);
                    new.subject_hint = None;
                    self.identity = Identity::Claims(claims);
                    self.tokens = new.clone();
                    self.refreshed = true;
                    self.state = CreateAgentState::Persisted;
                    return Ok(Step::Persist(new));
                }
                CreateAgentState::Unverifiable(received) => {
                    // No verdict on the signature: the claims still get one (type docs).
                    self.check_refreshed_claims(&received, now)?;
                    let mut new = self.merge(received.tokens, now);
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
                    self.state = CreateAgentState::Persisted;
                    return Ok(Step::Persist(new));
                }
                CreateAgentState::AwaitUserInfo => {
                    let expected = match &self.identity {
                        Identity::Hydrate { expected } => expected.clone(),
                        _ => None,
                    };
                    let info =
                        process_userinfo_response(&self.shared.inbox.take()?, expected.as_deref())?;
                    let agent = Agent::new(
                        info.sub,
                        info.email,
                        info.email_verified,
                        info.org_id,
                        Memberships::new(info.organizations),
                        self.take_tokens(),
                    )
                    .with_custom(info.custom);
                    return Ok(Step::Done(agent.reverified(self.reverified)));
                }
                CreateAgentState::Finished => return Err(FINISHED),
            }
        }
    }

    record_inputs!(shared.inbox);
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
