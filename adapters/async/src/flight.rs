//! Single-flight: one request, one response, shared by every caller that asked meanwhile.
//!
//! A flight is a `watch` channel. The leader inserts the receiver into the map, sends the
//! request, and publishes an [`Outcome`] (the response, when it was received and whether the
//! leader persisted the result). Followers clone the receiver and wait. A leader dropped
//! before it had a response closes the channel (followers get
//! [`TransportError::Abandoned`]); one dropped after it had a response publishes it, marked
//! not persisted. The map lock is held only to look up or insert, never across I/O.

use crate::error::TransportError;
use authpi_idp::UnixTime;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a successful refresh stays available to callers that still hold the old token set.
pub const DEFAULT_REFRESH_GRACE: Duration = Duration::from_secs(30);

/// A response that can be handed to several operations.
#[derive(Clone, Debug)]
pub(crate) struct SharedResponse {
    status: http::StatusCode,
    version: http::Version,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl SharedResponse {
    pub(crate) fn new(response: &http::Response<Vec<u8>>) -> Self {
        SharedResponse {
            status: response.status(),
            version: response.version(),
            headers: response.headers().clone(),
            body: response.body().clone(),
        }
    }

    pub(crate) fn to_response(&self) -> http::Response<Vec<u8>> {
        let mut r = http::Response::new(self.body.clone());
        *r.status_mut() = self.status;
        *r.version_mut() = self.version;
        *r.headers_mut() = self.headers.clone();
        r
    }
}

/// What a finished flight produced.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) response: Result<SharedResponse, TransportError>,
    /// When the leader received the response (the `now` its operation used for it).
    pub(crate) received_at: UnixTime,
    /// Whether the leader's `on_refresh` stored the result.
    pub(crate) persisted: bool,
    finished: Instant,
    /// Reusable by late arrivals during the grace period.
    reusable: bool,
}

type Slot = Option<Arc<Outcome>>;

/// Flights by key.
pub(crate) struct Flights<K> {
    map: Mutex<HashMap<K, watch::Receiver<Slot>>>,
    grace: Duration,
}

/// The caller's role in a flight.
pub(crate) enum Join {
    /// Send the request and publish the outcome.
    Leader(Leader),
    /// Wait for the leader's outcome.
    Follower(watch::Receiver<Slot>),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
        map.retain(|_, rx| live(rx, grace));
        if let Some(rx) = map.get(&key) {
            return Join::Follower(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key, rx);
        Join::Leader(Leader {
            tx,
            response: None,
            received_at: UnixTime(0),
            keep: !grace.is_zero(),
        })
    }
}

/// In flight, or finished recently enough (and successfully) to answer late callers.
fn live(rx: &watch::Receiver<Slot>, grace: Duration) -> bool {
    let closed = rx.has_changed().is_err();
    match &*rx.borrow() {
        None => !closed,
        Some(o) => o.reusable && o.finished.elapsed() < grace,
    }
}

/// Waits for the leader's outcome.
pub(crate) async fn wait(mut rx: watch::Receiver<Slot>) -> Result<Arc<Outcome>, TransportError> {
    let slot = match rx.wait_for(Option::is_some).await {
        Ok(slot) => slot.clone(),
        Err(_) => None,
    };
    slot.ok_or(TransportError::Abandoned)
}

/// The leader's side of a flight. Dropping it publishes what it has.
pub(crate) struct Leader {
    tx: watch::Sender<Slot>,
    response: Option<Result<SharedResponse, TransportError>>,
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
                self.response = Some(Ok(SharedResponse::new(&resp)));
                Ok(resp)
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
                self.keep && persisted && matches!(&response, Ok(r) if r.status.is_success());
            self.tx.send_replace(Some(Arc::new(Outcome {
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
        self.finish(false);
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

    fn follower(j: Join) -> watch::Receiver<Slot> {
        match j {
            Join::Follower(rx) => rx,
            Join::Leader(_) => panic!("expected to follow"),
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn followers_get_the_leaders_response_and_late_callers_too_within_grace() {
        let flights = Flights::new(Duration::from_secs(30));
        let mut l = leader(flights.join(1u8));
        let rx = follower(flights.join(1u8));
        let _other = leader(flights.join(2u8)); // other keys are independent
        l.received(Ok(ok_response(200)), UnixTime(5)).unwrap();
        l.publish(true);
        let o = block_on(wait(rx)).unwrap();
        assert_eq!(o.received_at, UnixTime(5));
        assert!(o.persisted);
        // A late caller with the same key still gets the result.
        let late = block_on(wait(follower(flights.join(1u8)))).unwrap();
        assert_eq!(late.response.as_ref().unwrap().status, 200);
    }

    #[test]
    fn failures_are_shared_with_waiters_but_not_kept() {
        for (result, persisted) in [
            (Ok(ok_response(400)), true),
            (Ok(ok_response(200)), false),
            (Err(TransportError::Timeout), false),
        ] {
            let flights = Flights::new(Duration::from_secs(30));
            let mut l = leader(flights.join(1u8));
            let rx = follower(flights.join(1u8));
            let _ = l.received(result, UnixTime(1));
            l.publish(persisted);
            assert!(block_on(wait(rx)).is_ok());
            let _next = leader(flights.join(1u8));
        }
    }

    #[test]
    fn a_leader_dropped_before_a_response_abandons_its_followers() {
        let flights = Flights::new(Duration::from_secs(30));
        let l = leader(flights.join(1u8));
        let rx = follower(flights.join(1u8));
        drop(l);
        assert!(matches!(block_on(wait(rx)), Err(TransportError::Abandoned)));
        let _next = leader(flights.join(1u8));
    }

    #[test]
    fn zero_grace_shares_only_concurrent_callers() {
        let flights = Flights::new(Duration::ZERO);
        let mut l = leader(flights.join(()));
        let rx = follower(flights.join(()));
        l.received(Ok(ok_response(200)), UnixTime(1)).unwrap();
        l.publish(true);
        assert!(block_on(wait(rx)).is_ok());
        let _next = leader(flights.join(()));
    }
}
