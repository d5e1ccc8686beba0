//! # authpi-idp-ureq
//!
//! [`IdpClientSync`]: the blocking AuthPI / OpenID Connect client (the Python SDK's
//! `IdpClientSync`) over [ureq](https://docs.rs/ureq) 3 with rustls (ring, webpki roots; no
//! OpenSSL). Same surface and rules as the async clients: redirects never followed, a total
//! deadline per request (30 s default), bodies capped while read (1 MiB default),
//! `User-Agent: authpi-idp-rs/<version> (ureq)`, nothing retried, a shared key cache, and
//! single-flight refresh (with a grace period) and JWKS fetches across threads
//! (`Mutex` + `Condvar`, bounded waits), with the same contract as the async clients: every
//! thread's `on_refresh` runs, and the leader publishes the response before its own
//! `on_refresh`, so a panicking or failing callback (or an early return) never strands the
//! other threads or loses the rotation (a blocking call cannot be cancelled from outside).
//! TLS trusts [`TransportOptions::roots`]; proxies come from the environment as ureq reads
//! them. Error types, options and the driver are shared with `authpi-idp-async`.
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use authpi_idp::Config;
//! let config = Config::builder("https://idp.authpi.com/i_demo", "c_m2m")
//!     .client_secret("secret_m2m")
//!     .build()?;
//! let idp = authpi_idp_ureq::IdpClientSync::new(config)?;
//! let agent = idp.client_credentials(["reports:read"])?;
//! assert!(agent.has_access("read", "reports"));
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub use authpi_idp_async::{
    BoxError, DEFAULT_REFRESH_GRACE, Error, TlsRoots, TransportError, TransportOptions,
};

use authpi_idp::flow::Discovered;
use authpi_idp::{
    AccessTokenInfo, Agent, AuthorizationRequest, AuthorizationUrl, CallbackInput, Client, Config,
    Introspection, KeySet, LogoutRequest, Operation, TokenSet, TokenTypeHint, UserInfo,
};
use authpi_idp_async::driver::{Action, Discovery, Driver, SessionStart, Shared};
use authpi_idp_async::{os_rng, user_agent};
use std::fmt;
use std::sync::Arc;

/// A blocking transport over a `ureq::Agent` (no redirects, deadline, body cap).
#[derive(Clone, Debug)]
pub struct UreqTransport {
    agent: ureq::Agent,
    options: TransportOptions,
}

impl UreqTransport {
    /// A transport with its own connection pool, trusting [`TransportOptions::roots`]
    /// (proxies from the environment, as ureq reads them).
    pub fn new(options: TransportOptions) -> Self {
        Self::from_config(ureq::Agent::config_builder(), options)
    }

    /// A transport over a `ureq` agent configuration you started (proxy, IP family, pool …).
    /// Whatever it says, redirects are switched off (a followed 307/308 would replay the client
    /// secret, the code or the refresh token), HTTP error statuses come back as responses,
    /// the `User-Agent` is this adapter's, the deadline is `options.timeout`, and TLS (rustls)
    /// trusts [`TransportOptions::roots`]. When the OS trust store cannot be read, no root is
    /// trusted and every https request fails with a TLS error.
    pub fn from_config(
        builder: ureq::config::ConfigBuilder<ureq::typestate::AgentScope>,
        options: TransportOptions,
    ) -> Self {
        let roots = match options.roots.certificates() {
            Ok(None) => ureq::tls::RootCerts::WebPki,
            Ok(Some(certs)) => certs
                .iter()
                .map(|der| ureq::tls::Certificate::from_der(der).to_owned())
                .into(),
            Err(_) => ureq::tls::RootCerts::Specific(Arc::new(Vec::new())),
        };
        let tls = ureq::tls::TlsConfig::builder().root_certs(roots).build();
        let agent = builder
            .timeout_global(Some(options.timeout))
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(false)
            .user_agent(user_agent("ureq"))
            .tls_config(tls)
            .build()
            .new_agent();
        UreqTransport { agent, options }
    }

    /// Sends one request and reads the whole (capped) response.
    ///
    /// # Errors
    /// [`TransportError`].
    pub fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let response = self.agent.run(request).map_err(map_error)?;
        let (parts, mut body) = response.into_parts();
        let max = self.options.max_response_bytes;
        authpi_idp_async::check_content_length(&parts.headers, max)?;
        let bytes = body
            .with_config()
            .limit(max as u64)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => TransportError::TooLarge { limit: max },
                e => map_error(e),
            })?;
        Ok(http::Response::from_parts(parts, bytes))
    }
}

fn map_error(e: ureq::Error) -> TransportError {
    match e {
        ureq::Error::Timeout(_) => TransportError::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => TransportError::connect(e),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => TransportError::Timeout,
        e => TransportError::io(e),
    }
}

/// Called with the rotated token set as soon as a refresh succeeded; an error stops the
/// operation with [`Error::Callback`] (which carries the rotated set).
pub type OnRefresh = authpi_idp_async::BlockingOnRefresh;
/// Called when fresh tokens could not be obtained or persisted.
pub use authpi_idp_async::OnRefreshError;
/// Options of [`IdpClientSync::create_agent`] and [`IdpClientSync::refresh`] (the same
/// options type as the async clients', with a blocking `on_refresh`).
pub type CreateAgentOptions = authpi_idp_async::BlockingCreateAgentOptions;

/// The blocking client. Cheap to clone; clones share the key cache and single-flight maps.
#[derive(Clone)]
pub struct IdpClientSync {
    inner: Arc<Shared<UreqTransport>>,
}

impl fmt::Debug for IdpClientSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdpClientSync")
            .field("issuer", &self.inner.client.issuer())
            .finish_non_exhaustive()
    }
}

impl IdpClientSync {
    /// A client for an AuthPI issuer (no discovery), default transport options.
    ///
    /// # Errors
    /// The configuration is invalid.
    pub fn new(config: Config) -> Result<Self, Error> {
        Self::with_options(config, TransportOptions::default())
    }

    /// [`Self::new`] with transport options.
    ///
    /// # Errors
    /// The configuration is invalid.
    pub fn with_options(config: Config, options: TransportOptions) -> Result<Self, Error> {
        Ok(Self::from_client(
            Client::new(config)?,
            KeySet::empty(),
            UreqTransport::new(options),
            DEFAULT_REFRESH_GRACE,
        ))
    }

    /// Discovers any OpenID provider and fetches its key set, over a default transport.
    ///
    /// # Errors
    /// Transport failure, or invalid metadata / JWKS.
    pub fn discover(config: Config) -> Result<Self, Error> {
        Self::discover_with(config, UreqTransport::new(TransportOptions::default()))
    }

    /// Discovers any OpenID provider and fetches its key set, over `transport` (your
    /// deadline, cap, roots, agent configuration).
    ///
    /// # Errors
    /// Transport failure, or invalid metadata / JWKS.
    pub fn discover_with(config: Config, transport: UreqTransport) -> Result<Self, Error> {
        let mut discovery = Discovery::new(config);
        let Discovered { client, keys, .. } = loop {
            match discovery.poll()? {
                Ok(done) => break done,
                Err(request) => discovery.sent(transport.send(request))?,
            }
        };
        Ok(Self::from_client(
            client,
            keys,
            transport,
            DEFAULT_REFRESH_GRACE,
        ))
    }

    /// Wraps a core client, a key set and a transport; `grace` as in the async client.
    pub fn from_client(
        client: Client,
        keys: KeySet,
        transport: UreqTransport,
        grace: std::time::Duration,
    ) -> Self {
        IdpClientSync {
            inner: Arc::new(Shared::new(client, keys, transport, grace)),
        }
    }

    /// The core client.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The cached key set.
    pub fn keys(&self) -> KeySet {
        self.inner.keys()
    }

    /// The authorization URL (PKCE, `state`, `nonce` from the OS RNG).
    ///
    /// # Errors
    /// No redirect URI, `openid` missing, or the OS RNG failed.
    pub fn create_authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<AuthorizationUrl, Error> {
        let mut rng = os_rng()?;
        Ok(self.inner.client.authorization_url(request, &mut rng)?)
    }

    /// Validates the callback, spends the code and verifies the ID token.
    ///
    /// # Errors
    /// See [`authpi_idp::Client::exchange_callback`]; transport failures.
    pub fn exchange_callback<'a>(
        &self,
        callback: impl Into<CallbackInput<'a>>,
        transaction: &AuthorizationUrl,
    ) -> Result<Agent, Error> {
        let keys = self.keys();
        self.run(
            self.inner
                .client
                .exchange_callback(callback, transaction, &keys)?,
        )
    }

    /// Exchanges a code with its verifier.
    ///
    /// # Errors
    /// See [`authpi_idp::Client::exchange_code`]; transport failures.
    pub fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
        resources: Option<&[String]>,
    ) -> Result<Agent, Error> {
        let keys = self.keys();
        self.run(self.inner.client.exchange_code(
            code,
            code_verifier,
            resources,
            authpi_idp::NonceCheck::DangerousSkip,
            &keys,
        )?)
    }

    /// Rebuilds the agent of a stored token set, refreshing (single-flight) when due.
    ///
    /// # Errors
    /// `token_expired`, provider errors, [`Error::Callback`].
    pub fn create_agent(
        &self,
        tokens: TokenSet,
        options: CreateAgentOptions,
    ) -> Result<Agent, Error> {
        self.run_session(Client::create_agent, tokens, &options)
    }

    /// Refreshes now (single-flight).
    ///
    /// # Errors
    /// As [`Self::create_agent`].
    pub fn refresh(&self, tokens: TokenSet, options: CreateAgentOptions) -> Result<Agent, Error> {
        self.run_session(Client::refresh, tokens, &options)
    }

    fn run_session(
        &self,
        start: SessionStart,
        tokens: TokenSet,
        options: &CreateAgentOptions,
    ) -> Result<Agent, Error> {
        let (auto_refresh, resources) = (options.auto_refresh, &options.resources);
        let op = self.inner.session(start, tokens, auto_refresh, resources)?;
        let mut driver = self.inner.driver(op, options.on_refresh.is_some());
        let result = self.drive(&mut driver, options.on_refresh.as_ref());
        driver.report_refresh_error(&result, options.on_refresh_error.as_ref());
        result
    }

    /// UserInfo for the agent's access token.
    ///
    /// # Errors
    /// Provider errors, `subject_mismatch`, transport failures.
    pub fn get_user_info(&self, agent: &Agent) -> Result<UserInfo, Error> {
        self.run(self.inner.client.userinfo(agent)?)
    }

    /// RFC 7009 revocation. Also forgets any finished refresh that spent or produced `token`.
    ///
    /// # Errors
    /// A non-200 answer; transport failures.
    pub fn revoke_token(&self, token: &str, hint: Option<TokenTypeHint>) -> Result<(), Error> {
        self.inner.forget_token(token);
        self.run(self.inner.client.revoke(token, hint)?)
    }

    /// RFC 7662 introspection.
    ///
    /// # Errors
    /// Provider errors; transport failures.
    pub fn introspect(
        &self,
        token: &str,
        hint: Option<TokenTypeHint>,
    ) -> Result<Introspection, Error> {
        self.run(self.inner.client.introspect(token, hint)?)
    }

    /// The RP-initiated logout URL.
    ///
    /// # Errors
    /// No logout endpoint, or an invalid post-logout URI.
    pub fn create_logout_url(&self, request: &LogoutRequest) -> Result<url::Url, Error> {
        Ok(self.inner.client.logout_url(request)?)
    }

    /// Client credentials (M2M) with the configured resources.
    ///
    /// # Errors
    /// No client secret; provider errors; transport failures.
    pub fn client_credentials<I, S>(&self, scopes: I) -> Result<Agent, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let resources = self.inner.client.config().resources().to_vec();
        self.run(self.inner.client.client_credentials(scopes, &resources)?)
    }

    /// Validates a bearer access token for an API (RFC 9068).
    ///
    /// # Errors
    /// `invalid_token` and friends; transport failures.
    pub fn validate_access_token(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<AccessTokenInfo, Error> {
        let keys = self.keys();
        self.run(
            self.inner
                .client
                .validate_access_token(token, audience, &keys),
        )
    }

    /// Drives any core operation (a `Persist` step is not stored anywhere).
    ///
    /// # Errors
    /// The operation's error, or a transport failure.
    pub fn run<O: Operation>(&self, op: O) -> Result<O::Output, Error> {
        self.drive(&mut self.inner.driver(op, false), None)
    }

    fn drive<O: Operation>(
        &self,
        driver: &mut Driver<'_, UreqTransport, O>,
        on_refresh: Option<&OnRefresh>,
    ) -> Result<O::Output, Error> {
        loop {
            match driver.poll()? {
                Action::Send(request) => driver.sent(self.inner.transport.send(request))?,
                Action::Wait(flight) => driver.followed(flight.wait_blocking())?,
                Action::Persist(tokens) => {
                    driver.persisted(on_refresh.map_or(Ok(()), |f| f(tokens)))?
                }
                Action::Done(output) => return Ok(output),
            }
        }
    }
}
