//! What the async and the blocking clients have in common, written once: the state they share
//! across clones ([`Shared`]: core client, transport, key cache, single-flight maps) and the
//! loop that runs one core operation over it ([`Driver`]), minus the waiting.
//!
//! A [`Driver`] is sans-IO like the core: [`Driver::poll`] says what to do
//! ([`Action`]), the client does it (async or blocking) and hands the result back with
//! [`Driver::sent`], [`Driver::followed`] or [`Driver::persisted`], then calls
//! [`Driver::poll`] again. The driver decides who leads a single-flight request, feeds a
//! follower the leader's response (with the leader's `now`), keeps `on_refresh` to the caller
//! whose request went out, publishes the outcome, and stores rotated key sets. It adds no
//! protocol logic: the core operation decides everything about requests and responses.
//!
//! Not a stable API: `authpi-idp-ureq` uses it; callers use [`AsyncClient`](crate::AsyncClient)
//! or [`AsyncClient::run`](crate::AsyncClient::run).

use crate::error::{BoxError, Error, TransportError};
use crate::flight::{DEFAULT_CAPACITY, Flights, Join, Leader, Slot};
use crate::{OnRefreshError, system_now};
use authpi_idp::flow::{CreateAgent, Discovered};
use authpi_idp::{
    Agent, Client, KeySet, Operation, RefreshOptions, RequestKind, Step, TokenSet, UnixTime,
};
use std::mem;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

pub use crate::flight::{Follower, Outcome};

/// What makes two refresh requests interchangeable: the refresh token (its SHA-256, from the
/// core) and the whole request (SHA-256 of method, URI, `Authorization` and body), so a
/// different scope, resource set or client never shares a response.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct RefreshKey {
    token: [u8; 32],
    request: [u8; 32],
}

/// SHA-256 of `data` (a key, never sent anywhere).
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// SHA-256 over the parts of a request that shape its answer.
fn request_hash(request: &http::Request<Vec<u8>>) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [
        request.method().as_str().as_bytes(),
        request.uri().to_string().as_bytes(),
        request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map_or(&[][..], http::HeaderValue::as_bytes),
        request.body(),
    ] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The JWKS response that produced the cached key set, and when it was received.
struct Fetched {
    parts: http::response::Parts,
    body: Vec<u8>,
    received_at: UnixTime,
}

impl Fetched {
    fn of(response: &http::Response<Vec<u8>>, received_at: UnixTime) -> Self {
        let (parts, _) = http::Response::new(()).into_parts();
        let mut copy = Fetched {
            parts,
            body: response.body().clone(),
            received_at,
        };
        copy.parts.status = response.status();
        copy.parts.version = response.version();
        copy.parts.headers = response.headers().clone();
        copy
    }

    fn response(&self) -> http::Response<Vec<u8>> {
        http::Response::from_parts(self.parts.clone(), self.body.clone())
    }
}

/// The key cache: the newest key set, a generation counter bumped on every update, and the
/// JWKS response behind it.
struct KeyCache {
    keys: KeySet,
    generation: u64,
    fetched: Option<Arc<Fetched>>,
}

/// The spans of one operation and its requests (feature `tracing`; nothing otherwise).
#[derive(Default)]
struct Trace {
    #[cfg(feature = "tracing")]
    operation: Option<tracing::Span>,
    #[cfg(feature = "tracing")]
    request: Option<(tracing::Span, std::time::Instant)>,
}

/// How a request was carried out, for the request span.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
#[derive(Clone, Copy)]
enum Flight {
    /// Not a single-flight request.
    None,
    /// This caller sent it for everybody.
    Led,
    /// This caller waited for another's.
    Joined,
}

impl Trace {
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    fn new(operation: &'static str) -> Self {
        #[cfg(feature = "tracing")]
        {
            Trace {
                operation: Some(tracing::info_span!("authpi_idp.operation", op = operation)),
                request: None,
            }
        }
        #[cfg(not(feature = "tracing"))]
        Trace::default()
    }

    /// A request starts: method and path only (no query, no host, no header or body).
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    fn request(&mut self, request: &http::Request<Vec<u8>>, kind: &RequestKind, flight: Flight) {
        #[cfg(feature = "tracing")]
        {
            let kind = match kind {
                RequestKind::Discovery => "discovery",
                RequestKind::Jwks => "jwks",
                RequestKind::AuthorizationCode => "authorization_code",
                RequestKind::Refresh { .. } => "refresh",
                RequestKind::ClientCredentials => "client_credentials",
                RequestKind::UserInfo => "userinfo",
                RequestKind::Revocation => "revocation",
                RequestKind::Introspection => "introspection",
                _ => "other",
            };
            let flight = match flight {
                Flight::None => "none",
                Flight::Led => "led",
                Flight::Joined => "joined",
            };
            let parent = self.operation.as_ref().and_then(tracing::Span::id);
            let span = tracing::info_span!(
                parent: parent,
                "authpi_idp.request",
                method = %request.method(),
                endpoint = request.uri().path(),
                kind,
                flight,
                status = tracing::field::Empty,
                error = tracing::field::Empty,
                duration_ms = tracing::field::Empty,
            );
            self.request = Some((span, std::time::Instant::now()));
        }
    }

    /// The request ended with `result`: status (or error kind) and duration; closes its span.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    fn response(&mut self, result: Result<u16, &TransportError>) {
        #[cfg(feature = "tracing")]
        if let Some((span, start)) = self.request.take() {
            match result {
                Ok(status) => span.record("status", status),
                Err(e) => span.record("error", tracing::field::display(e)),
            };
            let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
            span.record("duration_ms", ms);
        }
    }
}

/// Single-flight settings of a [`Shared`] state.
#[derive(Clone, Copy, Debug)]
pub struct FlightOptions {
    /// How long a finished refresh answers callers that still hold the old token set.
    pub grace: Duration,
    /// How long a caller waits for another caller's request.
    pub wait: Duration,
    /// Finished refreshes kept at most.
    pub capacity: usize,
}

impl Default for FlightOptions {
    fn default() -> Self {
        FlightOptions {
            grace: crate::DEFAULT_REFRESH_GRACE,
            wait: crate::flight::DEFAULT_FOLLOW_TIMEOUT,
            capacity: DEFAULT_CAPACITY,
        }
    }
}

/// The state a client's clones share.
pub struct Shared<T> {
    /// The core client.
    pub client: Client,
    /// The HTTP transport.
    pub transport: T,
    keys: RwLock<KeyCache>,
    refreshes: Flights<RefreshKey>,
    jwks: Flights<()>,
}

impl<T> Shared<T> {
    /// `grace`: how long a finished refresh answers callers that still hold the old token set.
    pub fn new(client: Client, keys: KeySet, transport: T, grace: Duration) -> Self {
        Self::with_flights(
            client,
            keys,
            transport,
            FlightOptions {
                grace,
                ..FlightOptions::default()
            },
        )
    }

    /// [`Self::new`] with all single-flight settings.
    pub fn with_flights(
        client: Client,
        keys: KeySet,
        transport: T,
        flights: FlightOptions,
    ) -> Self {
        Shared {
            client,
            transport,
            keys: RwLock::new(KeyCache {
                keys,
                generation: 0,
                fetched: None,
            }),
            refreshes: Flights::new(flights.grace, flights.wait, flights.capacity),
            jwks: Flights::new(Duration::ZERO, flights.wait, 1),
        }
    }

    /// The cached key set.
    pub fn keys(&self) -> KeySet {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys
            .clone()
    }

    fn key_generation(&self) -> u64 {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .generation
    }

    /// The JWKS response behind the cache, if the cache changed after `generation`.
    fn fetched_since(&self, generation: u64) -> Option<(u64, Arc<Fetched>)> {
        let cache = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let fetched = cache.fetched.as_ref()?;
        (cache.generation > generation).then(|| (cache.generation, Arc::clone(fetched)))
    }

    /// Keeps the newer of `keys` and the cached set (with the response it came from).
    fn store_keys(&self, keys: KeySet, fetched: Option<Fetched>) {
        let mut cache = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if keys.fetched_at() >= cache.keys.fetched_at() {
            cache.keys = keys;
            cache.generation = cache.generation.wrapping_add(1);
            // Keys absorbed from the cached response itself (or a failed attempt) keep it.
            if let Some(fetched) = fetched {
                cache.fetched = Some(Arc::new(fetched));
            }
        }
    }

    /// Forgets every finished refresh that spent or produced `token`: after a revocation, a
    /// replayed old token set must not be answered from the grace period.
    pub fn forget_token(&self, token: &str) {
        let hash = sha256(token.as_bytes());
        self.refreshes.purge(&hash, |k| k.token == hash);
    }

    /// The `create_agent` or `refresh` operation (`start`: [`Client::create_agent`] or
    /// [`Client::refresh`]) of a stored token set, with the cached keys (the first `poll`, at the
    /// system clock, decides whether a refresh is due).
    ///
    /// # Errors
    /// As `start`.
    pub fn session(
        &self,
        start: SessionStart,
        tokens: TokenSet,
        auto_refresh: Option<bool>,
        resources: &[String],
    ) -> Result<CreateAgent, authpi_idp::Error> {
        let mut options = RefreshOptions::new();
        if let Some(on) = auto_refresh {
            options = options.auto_refresh(on);
        }
        for r in resources {
            options = options.resource(r.clone());
        }
        start(&self.client, tokens, options, &self.keys())
    }

    /// Starts driving `op` whose first `poll` runs at `now` (the time a caller already decided
    /// with, e.g. [`CreateAgent::refresh_due_at`]); later polls read the system clock.
    pub fn driver_at<O: Operation>(
        &self,
        op: O,
        on_refresh: bool,
        now: UnixTime,
    ) -> Driver<'_, T, O> {
        let mut driver = self.driver(op, on_refresh);
        driver.at = Some(now);
        driver
    }

    /// Starts driving `op`. `on_refresh`: whether the caller has a callback to persist rotated
    /// tokens (without one, [`Action::Persist`] never comes).
    pub fn driver<O: Operation>(&self, op: O, on_refresh: bool) -> Driver<'_, T, O> {
        let name = std::any::type_name::<O>();
        let name = name.rsplit("::").next().unwrap_or(name);
        Driver {
            trace: Trace::new(name),
            shared: self,
            op,
            on_refresh,
            pending: Pending::Nothing,
            flight: None,
            persisting: None,
            retry: None,
            failure: None,
            generation: self.key_generation(),
            jwks_fetched: None,
            jwks_leader: None,
            at: None,
        }
    }
}

/// OpenID discovery, driven the same way by the async and the blocking client: [`Self::poll`]
/// gives a request to send (hand the answer to [`Self::sent`]) or the discovered client.
pub struct Discovery(authpi_idp::flow::Discover);

impl Discovery {
    /// Starts discovering the provider of `config`.
    pub fn new(config: authpi_idp::Config) -> Self {
        Discovery(Client::discover(config))
    }

    /// `Ok(Err(request))`: send it; `Ok(Ok(discovered))`: done.
    ///
    /// # Errors
    /// Invalid metadata or JWKS.
    pub fn poll(&mut self) -> Result<Result<Discovered, http::Request<Vec<u8>>>, Error> {
        loop {
            match self.0.poll(system_now())? {
                Step::Send(out) => return Ok(Err(out.request)),
                Step::Done(discovered) => return Ok(Ok(discovered)),
                // Discovery fetches the keys itself (they come with `Done`) and rotates nothing.
                Step::KeysRefreshed(_) | Step::Persist(_) => {}
            }
        }
    }

    /// Feeds the answer to the request of the last [`Self::poll`].
    ///
    /// # Errors
    /// The transport error.
    pub fn sent(
        &mut self,
        result: Result<http::Response<Vec<u8>>, TransportError>,
    ) -> Result<(), Error> {
        // Discovery cannot go on without an answer: the transport error is the better report.
        self.0.handle_response(result?);
        Ok(())
    }
}

/// [`Client::create_agent`] or [`Client::refresh`].
pub type SessionStart =
    fn(&Client, TokenSet, RefreshOptions, &KeySet) -> Result<CreateAgent, authpi_idp::Error>;

/// What the client must do next.
pub enum Action<T> {
    /// Send the request; hand the result to [`Driver::sent`].
    Send(http::Request<Vec<u8>>),
    /// Wait for another caller's request; hand the outcome to [`Driver::followed`].
    Wait(Follower),
    /// Call `on_refresh` with the rotated tokens; hand its result to [`Driver::persisted`].
    Persist(TokenSet),
    /// The operation finished.
    Done(T),
}

/// The request the client is carrying out for the driver.
enum Pending {
    Nothing,
    LeadRefresh(Leader<RefreshKey>),
    LeadJwks(Leader<()>),
    FollowRefresh,
    /// Following a JWKS fetch; the request is kept to take over if the leader gives up.
    FollowJwks(http::Request<Vec<u8>>),
}

/// Runs one core operation over a [`Shared`] state.
pub struct Driver<'a, T, O> {
    trace: Trace,
    shared: &'a Shared<T>,
    op: O,
    on_refresh: bool,
    pending: Pending,
    /// The refresh flight this caller led or followed (tagged with the tokens it produced).
    flight: Option<Arc<Slot>>,
    /// The token set handed to `on_refresh`, kept for [`Error::Callback`].
    persisting: Option<TokenSet>,
    /// A JWKS request to send again: the fetch this caller followed was abandoned.
    retry: Option<http::Request<Vec<u8>>>,
    /// The transport error of the last request, reported if the core answers `NoResponse`.
    failure: Option<TransportError>,
    /// The key cache's generation this operation's key snapshot may predate.
    generation: u64,
    /// The JWKS response this operation received, for the cache it updates.
    jwks_fetched: Option<Fetched>,
    /// The JWKS flight this operation leads, published once the cache is updated.
    jwks_leader: Option<Leader<()>>,
    /// The `now` for the next poll: the time the shared refresh response was received.
    at: Option<UnixTime>,
}

impl<T, O: Operation> Driver<'_, T, O> {
    /// Polls the operation until the client has something to do.
    ///
    /// # Errors
    /// The operation's error.
    pub fn poll(&mut self) -> Result<Action<O::Output>, Error> {
        if let Some(request) = self.retry.take() {
            if let Some(action) = self.join_jwks(request) {
                return Ok(action);
            }
        }
        loop {
            let now = self.at.take().unwrap_or_else(system_now);
            let step = self.op.poll(now);
            if let Ok(Step::KeysRefreshed(keys)) = &step {
                self.shared
                    .store_keys(keys.clone(), self.jwks_fetched.take());
            }
            if let Some(leader) = self.jwks_leader.take() {
                leader.publish();
            }
            let step = step.map_err(|e| match (e, self.failure.take()) {
                (authpi_idp::Error::NoResponse { .. }, Some(t)) => Error::Transport(t),
                (e, _) => Error::Idp(e),
            })?;
            self.failure = None;
            match step {
                Step::Send(out) => {
                    let action = match out.kind {
                        RequestKind::Refresh { token_hash } => {
                            let key = RefreshKey {
                                token: token_hash,
                                request: request_hash(&out.request),
                            };
                            match self.shared.refreshes.join(key) {
                                Join::Leader(leader) => {
                                    self.flight = Some(leader.slot());
                                    self.pending = Pending::LeadRefresh(leader);
                                    self.trace.request(&out.request, &out.kind, Flight::Led);
                                    Action::Send(out.request)
                                }
                                Join::Follower(follower) => {
                                    self.flight = Some(follower.slot());
                                    self.pending = Pending::FollowRefresh;
                                    self.trace.request(&out.request, &out.kind, Flight::Joined);
                                    Action::Wait(follower)
                                }
                            }
                        }
                        RequestKind::Jwks => match self.join_jwks(out.request) {
                            Some(action) => action,
                            None => continue,
                        },
                        _ => {
                            self.trace.request(&out.request, &out.kind, Flight::None);
                            Action::Send(out.request)
                        }
                    };
                    return Ok(action);
                }
                Step::Persist(tokens) => {
                    if let Some(flight) = &self.flight {
                        let hashes = [Some(&tokens.access_token), tokens.refresh_token.as_ref()];
                        flight.tag(hashes.into_iter().flatten().map(|t| sha256(t.as_bytes())));
                    }
                    if self.on_refresh {
                        self.persisting = Some(tokens.clone());
                        return Ok(Action::Persist(tokens));
                    }
                }
                Step::KeysRefreshed(_) => {} // stored above, before the flight was published
                Step::Done(output) => return Ok(Action::Done(output)),
            }
        }
    }

    /// Leads or follows the JWKS fetch, or (`None`) answers the operation from the cache:
    /// when this caller would lead but the key cache changed since the operation took its
    /// snapshot, the response behind the cache is the answer (published to anybody who
    /// joined meanwhile). The check comes after joining: a leader stores the keys before it
    /// removes its flight, so a caller that finds no flight finds the new cache.
    fn join_jwks(&mut self, request: http::Request<Vec<u8>>) -> Option<Action<O::Output>> {
        match self.shared.jwks.join(()) {
            Join::Leader(leader) => {
                if let Some((generation, fetched)) = self.shared.fetched_since(self.generation) {
                    self.generation = generation;
                    self.at = Some(fetched.received_at);
                    let response = leader.received(Ok(fetched.response()), fetched.received_at);
                    if let Ok(response) = response {
                        self.op.handle_response(response);
                    }
                    return None;
                }
                self.pending = Pending::LeadJwks(leader);
                self.trace
                    .request(&request, &RequestKind::Jwks, Flight::Led);
                Some(Action::Send(request))
            }
            Join::Follower(follower) => {
                self.trace
                    .request(&request, &RequestKind::Jwks, Flight::Joined);
                self.pending = Pending::FollowJwks(request);
                Some(Action::Wait(follower))
            }
        }
    }

    /// Feeds the transport's answer to the request of [`Action::Send`]. A leader publishes it
    /// to its followers at once.
    ///
    /// # Errors
    /// The transport error.
    pub fn sent(
        &mut self,
        result: Result<http::Response<Vec<u8>>, TransportError>,
    ) -> Result<(), Error> {
        let result = match mem::replace(&mut self.pending, Pending::Nothing) {
            Pending::LeadRefresh(leader) => {
                let received = system_now();
                // Followers validate with the same `now`.
                self.at = Some(received);
                leader.received(result, received)
            }
            Pending::LeadJwks(mut leader) => {
                let received = system_now();
                if let Ok(response) = &result {
                    self.jwks_fetched = Some(Fetched::of(response, received));
                }
                let result = leader.record(result, received);
                // Published at the next poll, once the key cache holds the keys: a caller
                // that finds no flight then finds the new cache generation instead.
                self.jwks_leader = Some(leader);
                result
            }
            _ => result,
        };
        self.respond(result)
    }

    /// Hands a response, or the lack of one, to the operation.
    fn respond(
        &mut self,
        result: Result<http::Response<Vec<u8>>, TransportError>,
    ) -> Result<(), Error> {
        self.trace
            .response(result.as_ref().map(|r| r.status().as_u16()));
        match result {
            Ok(response) => self.op.handle_response(response),
            Err(e) => {
                // The core decides what no response means (a refresh whose JWKS refetch got
                // none still hands out the rotated tokens); `poll` goes on or answers
                // `NoResponse`, which `poll` replaces with this transport error.
                self.op.handle_transport_error();
                self.failure = Some(e);
            }
        }
        Ok(())
    }

    /// Feeds the leader's outcome after [`Action::Wait`]. A JWKS fetch whose leader gave up
    /// is taken over (the next [`Self::poll`] sends it: a GET is idempotent); a refresh is not.
    ///
    /// # Errors
    /// The leader's transport error, [`TransportError::Abandoned`] or
    /// [`TransportError::Timeout`].
    pub fn followed(&mut self, outcome: Result<Arc<Outcome>, TransportError>) -> Result<(), Error> {
        match (mem::replace(&mut self.pending, Pending::Nothing), outcome) {
            (Pending::FollowJwks(request), Err(TransportError::Abandoned)) => {
                self.trace.response(Err(&TransportError::Abandoned));
                self.retry = Some(request);
                Ok(())
            }
            (Pending::FollowRefresh, Ok(outcome)) => {
                self.at = Some(outcome.received_at);
                self.respond(outcome.to_response())
            }
            (Pending::FollowJwks(_), Ok(outcome)) => {
                let response = outcome.to_response();
                if let Ok(r) = &response {
                    self.jwks_fetched = Some(Fetched::of(r, outcome.received_at));
                }
                self.respond(response)
            }
            (_, outcome) => self.respond(outcome.and_then(|o| o.to_response())),
        }
    }

    /// Reports what `on_refresh` returned after [`Action::Persist`].
    ///
    /// # Errors
    /// [`Error::Callback`] with the callback's error and the rotated tokens.
    pub fn persisted(&mut self, result: Result<(), BoxError>) -> Result<(), Error> {
        let tokens = self.persisting.take();
        match (result, tokens) {
            (Ok(()), _) => Ok(()),
            (Err(source), Some(tokens)) => Err(Error::Callback {
                source,
                tokens: Some(Box::new(tokens)),
            }),
            (Err(source), None) => Err(Error::Callback {
                source,
                tokens: None,
            }),
        }
    }
}

impl<T> Driver<'_, T, CreateAgent> {
    /// Calls `on_refresh_error` when `result` failed where a refresh was due and fresh tokens
    /// could not be obtained ([`CreateAgent::refresh_due`] and not [`CreateAgent::refreshed`], as the
    /// core decides at the first poll) or not persisted (`on_refresh` failed); not on, e.g., a later UserInfo
    /// failure.
    pub fn report_refresh_error(
        &self,
        result: &Result<Agent, Error>,
        on_refresh_error: Option<&OnRefreshError>,
    ) {
        if let (Err(e), Some(f)) = (result, on_refresh_error) {
            let unpersisted = matches!(e, Error::Callback { .. });
            if self.op.refresh_due() && (!self.op.refreshed() || unpersisted) {
                f(e);
            }
        }
    }
}
