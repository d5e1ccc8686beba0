//! Blocking single-flight (`Mutex` + `Condvar`): the same rules as the async client's.

use authpi_idp::UnixTime;
use authpi_idp_async::TransportError;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A finished flight.
pub(crate) struct Outcome {
    pub(crate) response: Result<(http::response::Parts, Vec<u8>), TransportError>,
    pub(crate) received_at: UnixTime,
    pub(crate) persisted: bool,
    finished: Instant,
    reusable: bool,
}

impl Outcome {
    pub(crate) fn to_response(&self) -> Result<http::Response<Vec<u8>>, TransportError> {
        let (parts, body) = self.response.as_ref().map_err(Clone::clone)?;
        let mut r = http::Response::new(body.clone());
        *r.status_mut() = parts.status;
        *r.version_mut() = parts.version;
        *r.headers_mut() = parts.headers.clone();
        Ok(r)
    }
}

enum State {
    Pending,
    Done(Arc<Outcome>),
    Abandoned,
}

pub(crate) struct Slot {
    state: Mutex<State>,
    cv: Condvar,
}

impl Slot {
    fn set(&self, s: State) {
        *lock(&self.state) = s;
        self.cv.notify_all();
    }

    /// Blocks until the leader published.
    pub(crate) fn wait(&self) -> Result<Arc<Outcome>, TransportError> {
        let mut g = lock(&self.state);
        loop {
            match &*g {
                State::Pending => g = self.cv.wait(g).unwrap_or_else(PoisonError::into_inner),
                State::Done(o) => return Ok(Arc::clone(o)),
                State::Abandoned => return Err(TransportError::Abandoned),
            }
        }
    }

    fn live(&self, grace: Duration) -> bool {
        match &*lock(&self.state) {
            State::Pending => true,
            State::Done(o) => o.reusable && o.finished.elapsed() < grace,
            State::Abandoned => false,
        }
    }
}

pub(crate) struct Flights<K> {
    map: Mutex<HashMap<K, Arc<Slot>>>,
    grace: Duration,
}

pub(crate) enum Join {
    Leader(Leader),
    Follower(Arc<Slot>),
}

impl<K: Hash + Eq> Flights<K> {
    pub(crate) fn new(grace: Duration) -> Self {
        Flights {
            map: Mutex::new(HashMap::new()),
            grace,
        }
    }

    pub(crate) fn join(&self, key: K) -> Join {
        let mut map = lock(&self.map);
        let grace = self.grace;
        map.retain(|_, s| s.live(grace));
        if let Some(slot) = map.get(&key) {
            return Join::Follower(Arc::clone(slot));
        }
        let slot = Arc::new(Slot {
            state: Mutex::new(State::Pending),
            cv: Condvar::new(),
        });
        map.insert(key, Arc::clone(&slot));
        Join::Leader(Leader {
            slot,
            response: None,
            received_at: UnixTime(0),
            keep: !grace.is_zero(),
        })
    }
}

/// The leader's side; dropping it publishes what it has (or abandons the flight).
pub(crate) struct Leader {
    slot: Arc<Slot>,
    response: Option<Result<(http::response::Parts, Vec<u8>), TransportError>>,
    received_at: UnixTime,
    keep: bool,
}

impl Leader {
    pub(crate) fn received(
        &mut self,
        result: Result<http::Response<Vec<u8>>, TransportError>,
        at: UnixTime,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        self.received_at = at;
        match result {
            Ok(resp) => {
                let (parts, body) = resp.into_parts();
                let copy = (parts.clone(), body.clone());
                self.response = Some(Ok(copy));
                Ok(http::Response::from_parts(parts, body))
            }
            Err(e) => {
                self.response = Some(Err(e.clone()));
                self.finish(false);
                Err(e)
            }
        }
    }

    pub(crate) fn publish(mut self, persisted: bool) {
        self.finish(persisted);
    }

    fn finish(&mut self, persisted: bool) {
        if let Some(response) = self.response.take() {
            let reusable =
                self.keep && persisted && matches!(&response, Ok((p, _)) if p.status.is_success());
            self.slot.set(State::Done(Arc::new(Outcome {
                response,
                received_at: self.received_at,
                persisted,
                finished: Instant::now(),
                reusable,
            })));
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if self.response.is_some() {
            self.finish(false);
        } else if matches!(&*lock(&self.slot.state), State::Pending) {
            self.slot.set(State::Abandoned);
        }
    }
}
