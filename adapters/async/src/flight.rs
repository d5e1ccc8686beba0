//! Single-flight: one request, one response, shared by every caller that asked meanwhile.
//!
//! A flight is a [`Slot`] in a map keyed by what makes requests interchangeable (the refresh
//! token's hash; `()` for the JWKS). The first caller leads: it inserts the slot, sends the
//! request and publishes an [`Outcome`] (the response, when it was received and whether the
//! leader persisted the result). Later callers follow: they wait on the slot, blocking
//! ([`Follower::wait_blocking`], a `Condvar`) or async ([`Follower::wait`], a tokio `Notify`);
//! both wait on the same state, so one implementation serves the async and the blocking
//! clients. A leader dropped before it had a response abandons the flight (followers get
//! [`TransportError::Abandoned`]); one dropped after it had a response publishes it, marked
//! not persisted. A successful, persisted outcome stays in the map for the grace period, so a
//! caller that still holds the old refresh token gets the rotated result. The map lock is held
//! only to look up or insert, never across I/O or a wait.

use crate::error::TransportError;
use authpi_idp::UnixTime;
use std::collections::HashMap;
use std::hash::Hash;
use std::pin::pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long a successful refresh stays available to callers that still hold the old token set.
pub const DEFAULT_REFRESH_GRACE: Duration = Duration::from_secs(30);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a finished flight produced.
#[doc(hidden)] // reachable only through the hidden `driver` module
#[derive(Debug)]
pub struct Outcome {
    response: Result<(http::response::Parts, Vec<u8>), TransportError>,
    /// When the leader received the response (the `now` its operation used for it).
    pub(crate) received_at: UnixTime,
    /// Whether the leader's `on_refresh` stored the result.
    pub(crate) persisted: bool,
    finished: Instant,
    /// Reusable by late arrivals during the grace period.
    reusable: bool,
}

impl Outcome {
    /// A copy of the leader's response, or its transport error.
    pub(crate) fn to_response(&self) -> Result<http::Response<Vec<u8>>, TransportError> {
        let (parts, body) = self.response.as_ref().map_err(Clone::clone)?;
        Ok(http::Response::from_parts(parts.clone(), body.clone()))
    }
}

enum State {
    Pending,
    Done(Arc<Outcome>),
    Abandoned,
}

impl State {
    /// What a follower gets once the leader is done (`Abandoned` while still pending).
    fn result(&self) -> Result<Arc<Outcome>, TransportError> {
        match self {
            State::Done(o) => Ok(Arc::clone(o)),
            State::Pending | State::Abandoned => Err(TransportError::Abandoned),
        }
    }
}

/// One flight's state, with a wake-up for each kind of waiter.
struct Slot {
    state: Mutex<State>,
    blocking: Condvar,
    r#async: Notify,
}

impl Slot {
    fn set(&self, state: State) {
        *lock(&self.state) = state;
        self.blocking.notify_all();
        self.r#async.notify_waiters();
    }

    /// The outcome, or `None` while the leader is at work.
    fn done(&self) -> Option<Result<Arc<Outcome>, TransportError>> {
        let state = lock(&self.state);
        (!matches!(*state, State::Pending)).then(|| state.result())
    }

    /// In flight, or finished recently enough (and successfully) to answer late callers.
    fn live(&self, grace: Duration) -> bool {
        match &*lock(&self.state) {
            State::Pending => true,
            State::Done(o) => o.reusable && o.finished.elapsed() < grace,
            State::Abandoned => false,
        }
    }
}

/// Flights by key.
pub(crate) struct Flights<K> {
    map: Mutex<HashMap<K, Arc<Slot>>>,
    grace: Duration,
}

/// The caller's role in a flight.
pub(crate) enum Join {
    /// Send the request and publish the outcome.
    Leader(Leader),
    /// Wait for the leader's outcome.
    Follower(Follower),
}

impl<K: Hash + Eq> Flights<K> {
    /// `grace`: how long a successful outcome answers late callers (zero: only concurrent ones).
    pub(crate) fn new(grace: Duration) -> Self {
        Flights {
            map: Mutex::new(HashMap::new()),
            grace,
        }
    }

    /// Joins the flight for `key`, or starts one.
    pub(crate) fn join(&self, key: K) -> Join {
        let mut map = lock(&self.map);
        let grace = self.grace;
        map.retain(|_, slot| slot.live(grace));
        if let Some(slot) = map.get(&key) {
            return Join::Follower(Follower(Arc::clone(slot)));
        }
        let slot = Arc::new(Slot {
            state: Mutex::new(State::Pending),
            blocking: Condvar::new(),
            r#async: Notify::new(),
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

/// A follower's handle on a flight: wait for the leader's outcome.
#[doc(hidden)] // reachable only through the hidden `driver` module
pub struct Follower(Arc<Slot>);

impl Follower {
    /// Waits (async) for the leader's outcome.
    pub async fn wait(&self) -> Result<Arc<Outcome>, TransportError> {
        loop {
            // Register before looking, so a `set` between the look and the await still wakes us.
            let mut notified = pin!(self.0.r#async.notified());
            notified.as_mut().enable();
            if let Some(result) = self.0.done() {
                return result;
            }
            notified.await;
        }
    }

    /// Blocks the thread until the leader's outcome is there.
    pub fn wait_blocking(&self) -> Result<Arc<Outcome>, TransportError> {
        let pending = |state: &mut State| matches!(state, State::Pending);
        self.0
            .blocking
            .wait_while(lock(&self.0.state), pending)
            .unwrap_or_else(PoisonError::into_inner)
            .result()
    }
}

/// The leader's side of a flight. Dropping it publishes what it has, or abandons the flight.
pub(crate) struct Leader {
    slot: Arc<Slot>,
    response: Option<Result<(http::response::Parts, Vec<u8>), TransportError>>,
    received_at: UnixTime,
    keep: bool,
}

impl Leader {
    /// Records the transport's answer. A transport error is published at once.
    pub(crate) fn received(
        &mut self,
        result: Result<http::Response<Vec<u8>>, TransportError>,
        at: UnixTime,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        self.received_at = at;
        match result {
            Ok(resp) => {
                let (parts, body) = resp.into_parts();
                self.response = Some(Ok((parts.clone(), body.clone())));
                Ok(http::Response::from_parts(parts, body))
            }
            Err(e) => {
                self.response = Some(Err(e.clone()));
                self.finish(false);
                Err(e)
            }
        }
    }

    /// Publishes the outcome to the followers.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_response(status: u16) -> http::Response<Vec<u8>> {
        let mut r = http::Response::new(b"{}".to_vec());
        *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
        r
    }

    fn leader(j: Join) -> Leader {
        match j {
            Join::Leader(l) => l,
            Join::Follower(_) => panic!("expected to lead"),
        }
    }

    fn follower(j: Join) -> Follower {
        match j {
            Join::Follower(f) => f,
            Join::Leader(_) => panic!("expected to follow"),
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Both ways of waiting, on the same slot.
    fn wait_both(f: &Follower) -> [Result<Arc<Outcome>, TransportError>; 2] {
        [block_on(f.wait()), f.wait_blocking()]
    }

    #[test]
    fn followers_get_the_leaders_response_and_late_callers_too_within_grace() {
        let flights = Flights::new(Duration::from_secs(30));
        let mut l = leader(flights.join(1u8));
        let f = follower(flights.join(1u8));
        let _other = leader(flights.join(2u8)); // other keys are independent
        l.received(Ok(ok_response(200)), UnixTime(5)).unwrap();
        l.publish(true);
        for o in wait_both(&f) {
            let o = o.unwrap();
            assert_eq!(o.received_at, UnixTime(5));
            assert!(o.persisted);
        }
        // A late caller with the same key still gets the result.
        let late = follower(flights.join(1u8)).wait_blocking().unwrap();
        assert_eq!(late.to_response().unwrap().status(), 200);
    }

    #[test]
    fn failures_are_shared_with_waiters_but_not_kept() {
        for (result, persisted, shared_status) in [
            (Ok(ok_response(400)), true, Some(400)),
            (Ok(ok_response(200)), false, Some(200)),
            (Err(TransportError::Timeout), false, None),
        ] {
            let flights = Flights::new(Duration::from_secs(30));
            let mut l = leader(flights.join(1u8));
            let f = follower(flights.join(1u8));
            let _ = l.received(result, UnixTime(1));
            l.publish(persisted);
            for o in wait_both(&f) {
                let status = o.unwrap().to_response().ok().map(|r| r.status().as_u16());
                assert_eq!(status, shared_status);
            }
            let _next = leader(flights.join(1u8));
        }
    }

    #[test]
    fn a_leader_dropped_before_a_response_abandons_its_followers() {
        let flights = Flights::new(Duration::from_secs(30));
        let l = leader(flights.join(1u8));
        let f = follower(flights.join(1u8));
        drop(l);
        for o in wait_both(&f) {
            assert!(matches!(o, Err(TransportError::Abandoned)));
        }
        let _next = leader(flights.join(1u8));
    }

    #[test]
    fn a_leader_dropped_after_a_response_publishes_it_not_persisted() {
        let flights = Flights::new(Duration::from_secs(30));
        let mut l = leader(flights.join(1u8));
        let f = follower(flights.join(1u8));
        l.received(Ok(ok_response(200)), UnixTime(3)).unwrap();
        drop(l);
        for o in wait_both(&f) {
            assert!(!o.unwrap().persisted);
        }
        let _next = leader(flights.join(1u8)); // not reusable: a new flight starts
    }

    #[test]
    fn zero_grace_shares_only_concurrent_callers() {
        let flights = Flights::new(Duration::ZERO);
        let mut l = leader(flights.join(()));
        let f = follower(flights.join(()));
        l.received(Ok(ok_response(200)), UnixTime(1)).unwrap();
        l.publish(true);
        assert!(wait_both(&f).iter().all(Result::is_ok));
        let _next = leader(flights.join(()));
    }

    #[test]
    fn waiters_already_parked_are_woken() {
        let flights = Flights::new(Duration::from_secs(30));
        let mut l = leader(flights.join(1u8));
        let (f1, f2) = (follower(flights.join(1u8)), follower(flights.join(1u8)));
        let blocking = std::thread::spawn(move || f1.wait_blocking().map(|o| o.received_at));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let waiting = std::thread::spawn(move || rt.block_on(f2.wait()).map(|o| o.received_at));
        std::thread::sleep(Duration::from_millis(50));
        l.received(Ok(ok_response(200)), UnixTime(9)).unwrap();
        l.publish(true);
        assert_eq!(blocking.join().unwrap().unwrap(), UnixTime(9));
        assert_eq!(waiting.join().unwrap().unwrap(), UnixTime(9));
    }
}
