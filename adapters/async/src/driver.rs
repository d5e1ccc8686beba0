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
use authpi_idp::flow::Session;
use authpi_idp::{
    Agent, Client, KeySet, Operation, RequestKind, SessionOptions, Step, TokenSet, UnixTime,
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

/// How long a fetched JWKS answers other callers: well under the core's refetch cooldown
/// ([`authpi_idp::jwks::REFETCH_COOLDOWN`], 60 s), so it never hides a key the core would
/// have been allowed to fetch; it only saves callers that took their key snapshot before the
/// shared cache was updated from sending the same GET again.
const JWKS_GRACE: Duration = Duration::from_secs(10);

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
    keys: RwLock<KeySet>,
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
            keys: RwLock::new(keys),
            refreshes: Flights::new(flights.grace, flights.wait, flights.capacity),
            jwks: Flights::new(JWKS_GRACE, flights.wait, 1),
        }
    }

    /// The cached key set.
    pub fn keys(&self) -> KeySet {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keeps the newer of `keys` and the cached set.
    fn store_keys(&self, keys: KeySet) {
        let mut current = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if keys.fetched_at() >= current.fetched_at() {
            *current = keys;
        }
    }

    /// Forgets every finished refresh that spent or produced `token`: after a revocation, a
    /// replayed old token set must not be answered from the grace period.
    pub fn forget_token(&self, token: &str) {
        let hash = sha256(token.as_bytes());
        self.refreshes.purge(&hash, |k| k.token == hash);
    }

    /// The `create_agent` or `refresh` operation (`start`: [`Client::create_agent`] or
    /// [`Client::refresh`]) of a stored token set, with the cached keys and the system clock.
    ///
    /// # Errors
    /// As `start`.
    pub fn session(
        &self,
        start: SessionStart,
        tokens: TokenSet,
        auto_refresh: Option<bool>,
        resources: &[String],
    ) -> Result<Session, authpi_idp::Error> {
        let mut options = SessionOptions::new();
        if let Some(on) = auto_refresh {
            options = options.auto_refresh(on);
        }
        for r in resources {
            options = options.resource(r.clone());
        }
        start(&self.client, tokens, options, &self.keys(), system_now())
    }

    /// Starts driving `op`. `on_refresh`: whether the caller has a callback to persist rotated
    /// tokens (without one, [`Action::Persist`] never comes).
    pub fn driver<O: Operation>(&self, op: O, on_refresh: bool) -> Driver<'_, T, O> {
        Driver {
            shared: self,
            op,
            on_refresh,
            pending: Pending::Nothing,
            flight: None,
            persisting: None,
            retry: None,
            at: None,
        }
    }
}

/// [`Client::create_agent`] or [`Client::refresh`].
pub type SessionStart =
    fn(&Client, TokenSet, SessionOptions, &KeySet, UnixTime) -> Result<Session, authpi_idp::Error>;

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
            return Ok(self.join_jwks(request));
        }
        loop {
            let now = self.at.take().unwrap_or_else(system_now);
            match self.op.poll(now)? {
                Step::Send(out) => {
                    return Ok(match out.kind {
                        RequestKind::Refresh { token_hash } => {
                            let key = RefreshKey {
                                token: token_hash,
                                request: request_hash(&out.request),
                            };
                            match self.shared.refreshes.join(key) {
                                Join::Leader(leader) => {
                                    self.flight = Some(leader.slot());
                                    self.pending = Pending::LeadRefresh(leader);
                                    Action::Send(out.request)
                                }
                                Join::Follower(follower) => {
                                    self.flight = Some(follower.slot());
                                    self.pending = Pending::FollowRefresh;
                                    Action::Wait(follower)
                                }
                            }
                        }
                        RequestKind::Jwks => self.join_jwks(out.request),
                        _ => Action::Send(out.request),
                    });
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
                Step::KeysRefreshed(keys) => self.shared.store_keys(keys),
                Step::Done(output) => return Ok(Action::Done(output)),
                _ => {}
            }
        }
    }

    fn join_jwks(&mut self, request: http::Request<Vec<u8>>) -> Action<O::Output> {
        match self.shared.jwks.join(()) {
            Join::Leader(leader) => {
                self.pending = Pending::LeadJwks(leader);
                Action::Send(request)
            }
            Join::Follower(follower) => {
                self.pending = Pending::FollowJwks(request);
                Action::Wait(follower)
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
            Pending::LeadJwks(leader) => leader.received(result, system_now()),
            _ => result,
        };
        self.respond(result)
    }

    /// Hands a response, or the lack of one, to the operation.
    fn respond(
        &mut self,
        result: Result<http::Response<Vec<u8>>, TransportError>,
    ) -> Result<(), Error> {
        match result {
            Ok(response) => {
                self.op.handle_response(response);
                Ok(())
            }
            Err(e) => Err(Error::Transport(e)),
        }
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
                self.retry = Some(request);
                Ok(())
            }
            (Pending::FollowRefresh, Ok(outcome)) => {
                self.at = Some(outcome.received_at);
                self.respond(outcome.to_response())
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

impl<T> Driver<'_, T, Session> {
    /// Calls `on_refresh_error` when `result` failed where a refresh was due and fresh tokens
    /// could not be obtained ([`Session::refresh_due`] and not [`Session::refreshed`], as the
    /// core decides) or not persisted (`on_refresh` failed); not on, e.g., a later UserInfo
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
