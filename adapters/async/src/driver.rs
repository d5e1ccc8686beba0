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
use crate::flight::{Flights, Join, Leader};
use crate::{OnRefreshError, system_now};
use authpi_idp::flow::CreateAgent;
use authpi_idp::{
    Agent, Client, KeySet, Operation, RefreshOptions, RequestKind, Step, TokenSet, UnixTime,
};
use std::mem;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

pub use crate::flight::{Follower, Outcome};

/// The state a client's clones share.
pub struct Shared<T> {
    /// The core client.
    pub client: Client,
    /// The HTTP transport.
    pub transport: T,
    keys: RwLock<KeySet>,
    refreshes: Flights<[u8; 32]>,
    jwks: Flights<()>,
}

impl<T> Shared<T> {
    /// `grace`: how long a finished refresh answers callers that still hold the old token set.
    pub fn new(client: Client, keys: KeySet, transport: T, grace: Duration) -> Self {
        Shared {
            client,
            transport,
            keys: RwLock::new(keys),
            refreshes: Flights::new(grace),
            jwks: Flights::new(Duration::ZERO),
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

    /// The `create_agent` or `refresh` operation (`start`: [`Client::create_agent`] or
    /// [`Client::refresh`]) of a stored token set, with the cached keys (its first `poll`
    /// decides, at the system clock's `now`, whether a refresh is due).
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

    /// Starts driving `op`. `on_refresh`: whether the caller has a callback to persist rotated
    /// tokens (without one, [`Action::Persist`] never comes).
    pub fn driver<O: Operation>(&self, op: O, on_refresh: bool) -> Driver<'_, T, O> {
        Driver {
            shared: self,
            op,
            on_refresh,
            pending: Pending::Nothing,
            leader: None,
            already_persisted: false,
            at: None,
            attempted: false,
        }
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
    Lead { leader: Leader, refresh: bool },
    Follow { refresh: bool },
}

/// Runs one core operation over a [`Shared`] state.
pub struct Driver<'a, T, O> {
    shared: &'a Shared<T>,
    op: O,
    on_refresh: bool,
    pending: Pending,
    /// The refresh this caller leads, published once `on_refresh` has answered.
    leader: Option<Leader>,
    /// The leader of the refresh this caller followed already persisted its result.
    already_persisted: bool,
    /// The `now` for the next poll: the time the shared refresh response was received.
    at: Option<UnixTime>,
    /// A refresh request was due (sent or joined).
    attempted: bool,
}

impl<T, O: Operation> Driver<'_, T, O> {
    /// Polls the operation until the client has something to do.
    ///
    /// # Errors
    /// The operation's error.
    pub fn poll(&mut self) -> Result<Action<O::Output>, Error> {
        loop {
            let now = self.at.take().unwrap_or_else(system_now);
            match self.op.poll(now)? {
                Step::Send(out) => {
                    let join = match out.kind {
                        RequestKind::Refresh { token_hash } => {
                            self.attempted = true;
                            (self.shared.refreshes.join(token_hash), true)
                        }
                        RequestKind::Jwks => (self.shared.jwks.join(()), false),
                        _ => return Ok(Action::Send(out.request)),
                    };
                    return Ok(match join {
                        (Join::Leader(leader), refresh) => {
                            self.pending = Pending::Lead { leader, refresh };
                            Action::Send(out.request)
                        }
                        (Join::Follower(follower), refresh) => {
                            self.pending = Pending::Follow { refresh };
                            Action::Wait(follower)
                        }
                    });
                }
                Step::Persist(tokens) if self.on_refresh && !self.already_persisted => {
                    return Ok(Action::Persist(tokens));
                }
                Step::Persist(_) => self.persisted(Ok(()))?,
                Step::KeysRefreshed(keys) => self.shared.store_keys(keys),
                Step::Done(output) => return Ok(Action::Done(output)),
            }
        }
    }

    /// Feeds the transport's answer to the request of [`Action::Send`].
    ///
    /// # Errors
    /// The transport error.
    pub fn sent(
        &mut self,
        result: Result<http::Response<Vec<u8>>, TransportError>,
    ) -> Result<(), Error> {
        match mem::replace(&mut self.pending, Pending::Nothing) {
            Pending::Lead {
                mut leader,
                refresh,
            } => {
                let received = system_now();
                self.op.handle_response(leader.received(result, received)?);
                if refresh {
                    // Followers use the same `now`; published once `on_refresh` has answered
                    // (or, if dropped first, as not persisted).
                    self.at = Some(received);
                    self.leader = Some(leader);
                } else {
                    leader.publish(true);
                }
            }
            _ => self.op.handle_response(result?),
        }
        Ok(())
    }

    /// Feeds the leader's outcome after [`Action::Wait`].
    ///
    /// # Errors
    /// The leader's transport error, or [`TransportError::Abandoned`].
    pub fn followed(&mut self, outcome: Result<Arc<Outcome>, TransportError>) -> Result<(), Error> {
        let refresh = matches!(
            mem::replace(&mut self.pending, Pending::Nothing),
            Pending::Follow { refresh: true }
        );
        let outcome = outcome?;
        self.op.handle_response(outcome.to_response()?);
        if refresh {
            self.at = Some(outcome.received_at);
            self.already_persisted = outcome.persisted;
        }
        Ok(())
    }

    /// Reports what `on_refresh` returned after [`Action::Persist`].
    ///
    /// # Errors
    /// [`Error::Callback`] with the callback's error.
    pub fn persisted(&mut self, result: Result<(), BoxError>) -> Result<(), Error> {
        if let Some(leader) = self.leader.take() {
            leader.publish(result.is_ok());
        }
        result.map_err(Error::Callback)
    }
}

impl<T> Driver<'_, T, CreateAgent> {
    /// Calls `on_refresh_error` when `result` failed where a refresh was due and fresh tokens
    /// could not be obtained or persisted (not, e.g., on a later UserInfo failure).
    pub fn report_refresh_error(
        &self,
        result: &Result<Agent, Error>,
        on_refresh_error: Option<&OnRefreshError>,
    ) {
        if let (Err(e), Some(f)) = (result, on_refresh_error) {
            let due = self.attempted || matches!(e, Error::Idp(authpi_idp::Error::TokenExpired));
            if due && (!self.op.refreshed() || matches!(e, Error::Callback(_))) {
                f(e);
            }
        }
    }
}
