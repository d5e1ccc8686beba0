//! [`AsyncClient`]: the client surface of the Python SDK's `IdpClient`, over any transport.

use crate::driver::{Action, Discovery, Driver, FlightOptions, SessionStart, Shared};
use crate::error::{BoxError, Error, TransportError};
use crate::{
    DEFAULT_REFRESH_GRACE, DefaultTransport, Spawn, Task, Transport, TransportOptions, os_rng,
    system_now,
};
use authpi_idp::flow::{CreateAgent, Discovered};
use authpi_idp::{
    AccessTokenInfo, Agent, AuthorizationRequest, AuthorizationUrl, CallbackInput, Client, Config,
    Introspection, KeySet, LogoutRequest, Operation, TokenSet, TokenTypeHint, UnixTime, UserInfo,
};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Called with the rotated token set as soon as a refresh succeeded: store it (the old refresh
/// token is already spent). An error stops the operation with [`Error::Callback`].
pub type OnRefresh = Arc<
    dyn Fn(TokenSet) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> + Send + Sync,
>;

/// The blocking client's `on_refresh` (`authpi-idp-ureq`): store the rotated token set.
pub type BlockingOnRefresh = Arc<dyn Fn(TokenSet) -> Result<(), BoxError> + Send + Sync>;

/// Called when fresh tokens could not be obtained or persisted.
pub type OnRefreshError = Arc<dyn Fn(&Error) + Send + Sync>;

/// Options of `create_agent` and `refresh`, written once for both clients: `R` is the
/// `on_refresh` callback, [`OnRefresh`] (async, [`CreateAgentOptions`]) or
/// [`BlockingOnRefresh`] ([`BlockingCreateAgentOptions`]).
#[derive(Clone)]
#[non_exhaustive]
pub struct RefreshOptions<R> {
    /// Stores the rotated token set. Under single-flight every caller's `on_refresh` runs
    /// with the same rotated set (storing it is idempotent), whether it sent the request or
    /// followed; the response is shared before any of them runs, so a failing, slow or
    /// panicking callback strands nobody.
    pub on_refresh: Option<R>,
    /// Fires only when a refresh was due and fresh tokens could not be obtained or persisted
    /// (failures before or at the persist step, as the core decides; not a later UserInfo
    /// failure).
    pub on_refresh_error: Option<OnRefreshError>,
    /// Overrides the configuration's `auto_refresh`.
    pub auto_refresh: Option<bool>,
    /// RFC 8707 resources for the refresh (automatic refreshes send none unless given).
    pub resources: Vec<String>,
}

/// Options of [`AsyncClient::create_agent`] and [`AsyncClient::refresh`].
pub type CreateAgentOptions = RefreshOptions<OnRefresh>;
/// Options of the blocking client's `create_agent` and `refresh`.
pub type BlockingCreateAgentOptions = RefreshOptions<BlockingOnRefresh>;

impl<R> Default for RefreshOptions<R> {
    fn default() -> Self {
        RefreshOptions {
            on_refresh: None,
            on_refresh_error: None,
            auto_refresh: None,
            resources: Vec::new(),
        }
    }
}

impl<R> fmt::Debug for RefreshOptions<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateAgentOptions")
            .field("on_refresh", &self.on_refresh.is_some())
            .field("on_refresh_error", &self.on_refresh_error.is_some())
            .field("auto_refresh", &self.auto_refresh)
            .field("resources", &self.resources)
            .finish()
    }
}

impl<R> RefreshOptions<R> {
    /// No callbacks, configuration defaults.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the `on_refresh_error` callback.
    #[must_use]
    pub fn on_refresh_error(mut self, f: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.on_refresh_error = Some(Arc::new(f));
        self
    }

    /// Overrides the configuration's `auto_refresh`.
    #[must_use]
    pub fn auto_refresh(mut self, on: bool) -> Self {
        self.auto_refresh = Some(on);
        self
    }

    /// Adds an RFC 8707 resource for the refresh.
    #[must_use]
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }
}

impl RefreshOptions<OnRefresh> {
    /// Sets the async `on_refresh` callback.
    #[must_use]
    pub fn on_refresh<F, Fut, E>(mut self, f: F) -> Self
    where
        F: Fn(TokenSet) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        self.on_refresh = Some(Arc::new(move |tokens| {
            let fut = f(tokens);
            Box::pin(async move { fut.await.map_err(Into::into) })
        }));
        self
    }
}

impl RefreshOptions<BlockingOnRefresh> {
    /// Sets the blocking `on_refresh` callback.
    #[must_use]
    pub fn on_refresh<E: Into<BoxError>>(
        mut self,
        f: impl Fn(TokenSet) -> Result<(), E> + Send + Sync + 'static,
    ) -> Self {
        self.on_refresh = Some(Arc::new(move |t| f(t).map_err(Into::into)));
        self
    }
}

/// The async client (the Python SDK's `IdpClient`). Cheap to clone: clones share the key
/// cache and the single-flight maps.
pub struct AsyncClient<T> {
    inner: Arc<Shared<T>>,
    spawn: Option<Arc<dyn Spawn>>,
}

impl<T> Clone for AsyncClient<T> {
    fn clone(&self) -> Self {
        AsyncClient {
            inner: Arc::clone(&self.inner),
            spawn: self.spawn.clone(),
        }
    }
}

/// [`crate::TokioSpawn`] with the `tokio` feature, else none.
fn default_spawn() -> Option<Arc<dyn Spawn>> {
    #[cfg(feature = "tokio")]
    {
        Some(Arc::new(crate::TokioSpawn))
    }
    #[cfg(not(feature = "tokio"))]
    {
        None
    }
}

impl<T> fmt::Debug for AsyncClient<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncClient")
            .field("issuer", &self.inner.client.issuer())
            .finish_non_exhaustive()
    }
}

impl<T: DefaultTransport> AsyncClient<T> {
    /// A client for an AuthPI issuer (endpoints derived from the issuer, no round trip) over
    /// the default transport with default options (30 s, 1 MiB). The key set is fetched on
    /// first use.
    ///
    /// # Errors
    /// The configuration is invalid, or the transport could not be built.
    pub fn new(config: Config) -> Result<Self, Error> {
        Self::with_options(config, TransportOptions::default())
    }

    /// [`Self::new`] with transport options.
    ///
    /// # Errors
    /// The configuration is invalid, or the transport could not be built.
    pub fn with_options(config: Config, options: TransportOptions) -> Result<Self, Error> {
        Self::with_transport(config, T::with_options(options)?)
    }

    /// Discovers any OpenID provider (and fetches its key set) over the default transport.
    ///
    /// # Errors
    /// Transport failure, or invalid metadata / JWKS.
    pub async fn discover(config: Config) -> Result<Self, Error> {
        Self::discover_with(config, T::with_options(TransportOptions::default())?).await
    }
}

impl<T: Transport> AsyncClient<T> {
    /// A client for an AuthPI issuer (endpoints derived from the issuer, no round trip) over
    /// `transport`. The key set is fetched on first use.
    ///
    /// # Errors
    /// The configuration is invalid.
    pub fn with_transport(config: Config, transport: T) -> Result<Self, Error> {
        Ok(Self::from_client(
            Client::new(config)?,
            KeySet::empty(),
            transport,
        ))
    }

    /// Discovers any OpenID provider and fetches its key set.
    ///
    /// # Errors
    /// Transport failure, or invalid metadata / JWKS.
    pub async fn discover_with(config: Config, transport: T) -> Result<Self, Error> {
        let mut discovery = Discovery::new(config);
        let Discovered { client, keys, .. } = loop {
            match discovery.poll()? {
                Ok(done) => break done,
                Err(request) => discovery.sent(transport.send(request).await)?,
            }
        };
        Ok(Self::from_client(client, keys, transport))
    }

    /// Wraps a core client and a key set (e.g. both restored from storage).
    pub fn from_client(client: Client, keys: KeySet, transport: T) -> Self {
        Self::with_refresh_grace(client, keys, transport, DEFAULT_REFRESH_GRACE)
    }

    /// Like [`Self::from_client`], with the grace period during which a finished refresh answers
    /// callers that still hold the old token set (zero: only concurrent callers share).
    pub fn with_refresh_grace(
        client: Client,
        keys: KeySet,
        transport: T,
        grace: std::time::Duration,
    ) -> Self {
        Self::with_flight_options(
            client,
            keys,
            transport,
            FlightOptions {
                grace,
                ..FlightOptions::default()
            },
        )
    }

    /// Like [`Self::from_client`], with every single-flight setting (grace period, how long a
    /// follower waits, how many finished refreshes are kept).
    pub fn with_flight_options(
        client: Client,
        keys: KeySet,
        transport: T,
        flights: FlightOptions,
    ) -> Self {
        AsyncClient {
            inner: Arc::new(Shared::with_flights(client, keys, transport, flights)),
            spawn: default_spawn(),
        }
    }

    /// Runs `create_agent` and `refresh` as tasks of `spawn`, detached from the caller's future
    /// (see [`Spawn`]).
    #[must_use]
    pub fn with_spawner(mut self, spawn: impl Spawn) -> Self {
        self.spawn = Some(Arc::new(spawn));
        self
    }

    /// Runs every operation inside the caller's future (cancelled with it).
    #[must_use]
    pub fn without_spawner(mut self) -> Self {
        self.spawn = None;
        self
    }

    /// The core client.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.inner.transport
    }

    /// The cached key set (serde: persist it if you like).
    pub fn keys(&self) -> KeySet {
        self.inner.keys()
    }

    /// The authorization URL, with PKCE, `state` and `nonce` from the OS RNG. Keep the result
    /// (it is serde) until the callback.
    ///
    /// # Errors
    /// No redirect URI configured, `openid` missing, or the OS RNG failed.
    pub fn create_authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<AuthorizationUrl, Error> {
        let mut rng = os_rng()?;
        Ok(self.inner.client.authorization_url(request, &mut rng)?)
    }

    /// Validates the callback (state first), spends the code and verifies the ID token.
    ///
    /// # Errors
    /// See [`authpi_idp::Client::exchange_callback`]; transport failures.
    pub async fn exchange_callback<'a>(
        &self,
        callback: impl Into<CallbackInput<'a>>,
        transaction: &AuthorizationUrl,
    ) -> Result<Agent, Error> {
        let op = self
            .inner
            .client
            .exchange_callback(callback, transaction, &self.keys())?;
        self.run(op).await
    }

    /// Exchanges a code with its verifier (no state/nonce checks; the ID token is verified).
    ///
    /// # Errors
    /// See [`authpi_idp::Client::exchange_code`]; transport failures.
    pub async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
        resources: Option<&[String]>,
    ) -> Result<Agent, Error> {
        let op = self.inner.client.exchange_code(
            code,
            code_verifier,
            resources,
            authpi_idp::NonceCheck::DangerousSkip,
            &self.keys(),
        )?;
        self.run(op).await
    }

    /// Rebuilds the agent of a stored token set, refreshing (single-flight) when due.
    ///
    /// # Errors
    /// `token_expired` when a refresh is due without a refresh token; provider errors;
    /// [`Error::Callback`] when `on_refresh` failed.
    pub async fn create_agent(
        &self,
        tokens: TokenSet,
        options: CreateAgentOptions,
    ) -> Result<Agent, Error> {
        self.run_session(Client::create_agent, tokens, &options)
            .await
    }

    /// Refreshes now, whatever the expiry (single-flight with concurrent refreshes of the same
    /// refresh token).
    ///
    /// # Errors
    /// As [`Self::create_agent`].
    pub async fn refresh(
        &self,
        tokens: TokenSet,
        options: CreateAgentOptions,
    ) -> Result<Agent, Error> {
        self.run_session(Client::refresh, tokens, &options).await
    }

    /// Runs the session operation. Only a due refresh spends a one-time secret, so only then does
    /// it run detached (see [`Spawn`]) when a spawner is set: the common request, whose stored
    /// tokens are still fresh, stays in the caller's task (no spawn, no cross-thread wake-up).
    /// The first `poll` uses the same `now` as that decision.
    async fn run_session(
        &self,
        start: SessionStart,
        tokens: TokenSet,
        options: &CreateAgentOptions,
    ) -> Result<Agent, Error> {
        let (auto_refresh, resources) = (options.auto_refresh, &options.resources);
        let op = self.inner.session(start, tokens, auto_refresh, resources)?;
        let now = system_now();
        let spawn = match &self.spawn {
            Some(spawn) if op.refresh_due_at(now) => spawn,
            _ => return self.drive_session(op, now, options).await,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (this, options) = (self.clone(), options.clone());
        let task: Task = Box::pin(async move {
            let result = this.drive_session(op, now, &options).await;
            let _ = tx.send(result);
        });
        if let Err(task) = spawn.spawn(task) {
            task.await;
        }
        rx.await
            .unwrap_or(Err(Error::Transport(TransportError::Abandoned)))
    }

    async fn drive_session(
        &self,
        op: CreateAgent,
        now: UnixTime,
        options: &CreateAgentOptions,
    ) -> Result<Agent, Error> {
        let mut driver = self.inner.driver_at(op, options.on_refresh.is_some(), now);
        let result = self.drive(&mut driver, options.on_refresh.as_ref()).await;
        driver.report_refresh_error(&result, options.on_refresh_error.as_ref());
        result
    }

    /// UserInfo for the agent's access token (`sub` must equal the agent's id).
    ///
    /// # Errors
    /// Provider errors, `subject_mismatch`, transport failures.
    pub async fn get_user_info(&self, agent: &Agent) -> Result<UserInfo, Error> {
        let op = self.inner.client.userinfo(agent)?;
        self.run(op).await
    }

    /// RFC 7009 revocation. Also forgets any finished refresh that spent or produced `token`,
    /// so a replayed old token set is not answered from the grace period.
    ///
    /// # Errors
    /// A non-200 answer; transport failures.
    pub async fn revoke_token(
        &self,
        token: &str,
        hint: Option<TokenTypeHint>,
    ) -> Result<(), Error> {
        self.inner.forget_token(token);
        let op = self.inner.client.revoke(token, hint)?;
        self.run(op).await
    }

    /// RFC 7662 introspection.
    ///
    /// # Errors
    /// Provider errors; transport failures.
    pub async fn introspect(
        &self,
        token: &str,
        hint: Option<TokenTypeHint>,
    ) -> Result<Introspection, Error> {
        let op = self.inner.client.introspect(token, hint)?;
        self.run(op).await
    }

    /// The RP-initiated logout URL.
    ///
    /// # Errors
    /// The provider has no logout endpoint, or the post-logout URI is invalid.
    pub fn create_logout_url(&self, request: &LogoutRequest) -> Result<url::Url, Error> {
        Ok(self.inner.client.logout_url(request)?)
    }

    /// Client credentials (M2M) with the configured resources.
    ///
    /// # Errors
    /// No client secret; provider errors; transport failures.
    pub async fn client_credentials<I, S>(&self, scopes: I) -> Result<Agent, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let resources = self.inner.client.config().resources().to_vec();
        let op = self.inner.client.client_credentials(scopes, &resources)?;
        self.run(op).await
    }

    /// Validates a bearer access token for an API whose audience is `audience` (RFC 9068).
    ///
    /// # Errors
    /// `invalid_token` and friends; transport failures while fetching the JWKS.
    pub async fn validate_access_token(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<AccessTokenInfo, Error> {
        let op = self
            .inner
            .client
            .validate_access_token(token, audience, &self.keys());
        self.run(op).await
    }

    /// Drives any core operation with this client's transport, key cache and single-flight.
    /// A `Persist` step is not stored anywhere (use [`Self::create_agent`] for callbacks).
    ///
    /// # Errors
    /// The operation's error, or a transport failure.
    pub async fn run<O>(&self, op: O) -> Result<O::Output, Error>
    where
        O: Operation + Send,
        O::Output: Send,
    {
        self.drive(&mut self.inner.driver(op, false), None).await
    }

    async fn drive<O>(
        &self,
        driver: &mut Driver<'_, T, O>,
        on_refresh: Option<&OnRefresh>,
    ) -> Result<O::Output, Error>
    where
        O: Operation + Send,
        O::Output: Send,
    {
        loop {
            match driver.poll()? {
                Action::Send(request) => driver.sent(self.inner.transport.send(request).await)?,
                Action::Wait(flight) => driver.followed(flight.wait().await)?,
                Action::Persist(tokens) => {
                    let result = match on_refresh {
                        Some(f) => f(tokens).await,
                        None => Ok(()),
                    };
                    driver.persisted(result)?;
                }
                Action::Done(output) => return Ok(output),
            }
        }
    }
}
