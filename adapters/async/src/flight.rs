//! Single-flight: one request, one response, shared by every caller that asked meanwhile.
//!
//! A flight is a [`Slot`] in a table keyed by what makes requests interchangeable (for a
//! refresh: the refresh token's hash and a hash of the whole request, so a different scope,
//! resource or client never shares; `()` for the JWKS). The first caller leads: it inserts the
//! slot, sends the request and publishes an [`Outcome`] (the response and when it was received)
//! **as soon as the response is there**, before anybody persists anything: every caller,
//! leader or follower, feeds the response into its own operation and runs its own
//! `on_refresh`, so nothing is ever shared "as persisted". Later callers follow: they wait on
//! the slot, blocking ([`Follower::wait_blocking`], a `Condvar`) or async ([`Follower::wait`],
//! a tokio `Notify`), each for at most the table's wait bound ([`TransportError::Timeout`]
//! after it). A leader dropped before it had a response abandons the flight (followers get
//! [`TransportError::Abandoned`]); one dropped after it had a response publishes it.
//!
//! A successful (2xx) outcome stays in the table for the grace period, so a caller that still
//! holds the old refresh token gets the rotated result instead of replaying a spent token.
//! Nothing outlives the grace period: a timer thread (started on demand, gone when there is
//! nothing to time) removes expired outcomes even when no traffic comes, and wakes async
//! followers whose wait bound passed. The table holds at most `capacity` finished outcomes
//! (the oldest go first), and [`Flights::purge`] forgets every finished flight that involved a
//! revoked token. The table lock is held only to look up, insert or remove, never across I/O
//! or a wait; lock order is table, then slot.

use crate::error::TransportError;
use authpi_idp::UnixTime;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long a successful refresh stays available to callers that still hold the old token set.
pub const DEFAULT_REFRESH_GRACE: Duration = Duration::from_secs(30);

/// How long a follower waits for the leader's response by default (the leader's own request
/// has a 30 s deadline by default; a little more so the leader's answer normally wins).
pub const DEFAULT_FOLLOW_TIMEOUT: Duration = Duration::from_secs(35);

/// `now + d`, or a far-future instant when a configured duration is too large for the clock
/// (an overflowing `Instant + Duration` panics).
fn instant_after(now: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);
    now.checked_add(d)
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

/// Finished outcomes kept at most per table.
pub(crate) const DEFAULT_CAPACITY: usize = 10_000;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a finished flight produced.
#[doc(hidden)] // reachable only through the hidden `driver` module
pub struct Outcome {
    response: Result<(http::response::Parts, Vec<u8>), TransportError>,
    /// When the leader received the response (the `now` its operation used for it).
    pub(crate) received_at: UnixTime,
    /// When the outcome was published.
    finished: Instant,
}

impl fmt::Debug for Outcome {
    /// The status only: the body is a token response.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.response.as_ref().map(|(p, _)| p.status.as_u16());
        f.debug_struct("Outcome")
            .field("status", &status)
            .field("received_at", &self.received_at)
            .finish_non_exhaustive()
    }
}

impl Outcome {
    /// A copy of the leader's response, or its transport error.
    pub(crate) fn to_response(&self) -> Result<http::Response<Vec<u8>>, TransportError> {
        let (parts, body) = self.response.as_ref().map_err(Clone::clone)?;
        Ok(http::Response::from_parts(parts.clone(), body.clone()))
    }

    fn reusable(&self) -> bool {
        matches!(&self.response, Ok((p, _)) if p.status.is_success())
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
#[doc(hidden)] // reachable only through the hidden `driver` module
pub struct Slot {
    state: Mutex<State>,
    blocking: Condvar,
    r#async: Notify,
    /// Hashes of the tokens this flight produced (added by the drivers that consumed it), so
    /// revoking any of them purges the flight.
    tags: Mutex<Vec<[u8; 32]>>,
    /// Counted in its table's `kept` (changed under the table's lock only).
    counted: AtomicBool,
}

impl Slot {
    fn new() -> Self {
        Slot {
            state: Mutex::new(State::Pending),
            blocking: Condvar::new(),
            r#async: Notify::new(),
            tags: Mutex::new(Vec::new()),
            counted: AtomicBool::new(false),
        }
    }

    /// Stops counting it in `kept`; whether it was counted.
    fn uncount(&self) -> bool {
        self.counted.swap(false, AtomicOrdering::Relaxed)
    }

    fn set(&self, state: State) {
        *lock(&self.state) = state;
        self.wake();
    }

    fn wake(&self) {
        self.blocking.notify_all();
        self.r#async.notify_waiters();
    }

    /// The outcome, or `None` while the leader is at work.
    fn done(&self) -> Option<Result<Arc<Outcome>, TransportError>> {
        let state = lock(&self.state);
        (!matches!(*state, State::Pending)).then(|| state.result())
    }

    /// In flight, or finished successfully within `grace` (answers late callers).
    fn joinable(&self, grace: Duration) -> bool {
        match &*lock(&self.state) {
            State::Pending => true,
            State::Done(o) => o.reusable() && o.finished.elapsed() < grace,
            State::Abandoned => false,
        }
    }

    fn finished(&self) -> bool {
        matches!(&*lock(&self.state), State::Done(_))
    }

    /// Records the hashes of tokens this flight produced.
    pub(crate) fn tag(&self, hashes: impl IntoIterator<Item = [u8; 32]>) {
        let mut tags = lock(&self.tags);
        for h in hashes {
            if !tags.contains(&h) {
                tags.push(h);
            }
        }
    }

    fn tagged(&self, hash: &[u8; 32]) -> bool {
        lock(&self.tags).contains(hash)
    }
}

/// A timed event of the table.
enum Event<K> {
    /// An async follower's wait bound passes: wake the slot's waiters so they look at the time.
    /// The flag is set when it fires (the follower then knows its own wake-up came).
    Wake(Arc<Slot>, Arc<AtomicBool>),
    /// A finished outcome's grace period ends: remove it.
    Expire(K, Arc<Slot>),
}

struct Timed<K> {
    at: Instant,
    seq: u64,
    event: Event<K>,
}

impl<K> PartialEq for Timed<K> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<K> Eq for Timed<K> {}
impl<K> PartialOrd for Timed<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K> Ord for Timed<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct Table<K> {
    slots: HashMap<K, Arc<Slot>>,
    timers: BinaryHeap<Reverse<Timed<K>>>,
    /// Finished outcomes in `slots`.
    kept: usize,
    seq: u64,
    timer_running: bool,
}

impl<K: Hash + Eq> Table<K> {
    fn schedule(&mut self, at: Instant, event: Event<K>) {
        self.seq = self.seq.wrapping_add(1);
        self.timers.push(Reverse(Timed {
            at,
            seq: self.seq,
            event,
        }));
    }

    /// Fires the earliest event.
    fn fire_next(&mut self) {
        if let Some(Reverse(t)) = self.timers.pop() {
            match t.event {
                Event::Wake(slot, fired) => {
                    fired.store(true, AtomicOrdering::Relaxed);
                    slot.wake();
                }
                // A slot already replaced or purged was uncounted then.
                Event::Expire(key, slot) => self.remove(&key, &slot),
            }
        }
    }

    /// Over capacity: expires the oldest kept outcomes first. Only expiry events fire; the
    /// wake-ups passed over are put back (a follower woken early would wait past its bound).
    fn shrink_to(&mut self, capacity: usize) {
        let mut wakes = Vec::new();
        while self.kept > capacity {
            let Some(Reverse(t)) = self.timers.pop() else {
                break;
            };
            match t.event {
                Event::Wake(..) => wakes.push(t),
                Event::Expire(key, slot) => self.remove(&key, &slot),
            }
        }
        self.timers.extend(wakes.into_iter().map(Reverse));
    }

    /// Fires every event due at `now`.
    fn fire_due(&mut self, now: Instant) {
        while self.timers.peek().is_some_and(|Reverse(t)| t.at <= now) {
            self.fire_next();
        }
    }

    /// Removes `key` if it still maps to `slot` (uncounting it from `kept`).
    fn remove(&mut self, key: &K, slot: &Arc<Slot>) {
        if self.slots.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            self.slots.remove(key);
            if slot.uncount() {
                self.kept = self.kept.saturating_sub(1);
            }
        }
    }
}

struct Inner<K> {
    table: Mutex<Table<K>>,
    timer: Condvar,
    grace: Duration,
    wait: Duration,
    capacity: usize,
}

/// Schedules a wake-up of a slot (the async wait bound), whatever the table's key type.
trait WakeAt: Send + Sync {
    fn wake_at(self: Arc<Self>, at: Instant, slot: Arc<Slot>, fired: Arc<AtomicBool>);
}

impl<K: Hash + Eq + Send + 'static> WakeAt for Inner<K> {
    fn wake_at(self: Arc<Self>, at: Instant, slot: Arc<Slot>, fired: Arc<AtomicBool>) {
        let mut table = lock(&self.table);
        table.schedule(at, Event::Wake(slot, fired));
        self.ensure_timer(&mut table);
    }
}

/// The timer thread: fires events when due, exits when there is nothing left to time.
fn run_timer<K: Hash + Eq + Send + 'static>(inner: &Inner<K>) {
    let mut table = lock(&inner.table);
    loop {
        let now = Instant::now();
        table.fire_due(now);
        let Some(next) = table.timers.peek().map(|Reverse(t)| t.at) else {
            table.timer_running = false;
            return;
        };
        table = inner
            .timer
            .wait_timeout(table, next.saturating_duration_since(now))
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

/// Flights by key.
pub(crate) struct Flights<K> {
    inner: Arc<Inner<K>>,
}

/// The caller's role in a flight.
pub(crate) enum Join<K: Hash + Eq + Clone + Send + 'static> {
    /// Send the request and publish the outcome.
    Leader(Leader<K>),
    /// Wait for the leader's outcome.
    Follower(Follower),
}

impl<K: Hash + Eq + Clone + Send + 'static> Flights<K> {
    /// `grace`: how long a successful outcome answers late callers (zero: only concurrent
    /// ones); `wait`: how long a follower waits; `capacity`: finished outcomes kept at most.
    pub(crate) fn new(grace: Duration, wait: Duration, capacity: usize) -> Self {
        Flights {
            inner: Arc::new(Inner {
                table: Mutex::new(Table {
                    slots: HashMap::new(),
                    timers: BinaryHeap::new(),
                    kept: 0,
                    seq: 0,
                    timer_running: false,
                }),
                timer: Condvar::new(),
                grace,
                wait,
                capacity: capacity.max(1),
            }),
        }
    }

    /// Joins the flight for `key`, or starts one.
    pub(crate) fn join(&self, key: K) -> Join<K> {
        let mut table = lock(&self.inner.table);
        table.fire_due(Instant::now());
        if let Some(slot) = table.slots.get(&key) {
            if slot.joinable(self.inner.grace) {
                return Join::Follower(self.follower(Arc::clone(slot)));
            }
            let slot = Arc::clone(slot);
            table.remove(&key, &slot);
        }
        let slot = Arc::new(Slot::new());
        table.slots.insert(key.clone(), Arc::clone(&slot));
        Join::Leader(Leader {
            flights: Arc::clone(&self.inner),
            key,
            slot,
            response: None,
            received_at: UnixTime(0),
        })
    }

    fn follower(&self, slot: Arc<Slot>) -> Follower {
        Follower {
            slot,
            wait: self.inner.wait,
            timer: Arc::clone(&self.inner) as Arc<dyn WakeAt>,
        }
    }

    /// Forgets every finished flight whose key `matches` or that produced a token with hash
    /// `token_hash` (a revoked token must not be answered from the grace period).
    pub(crate) fn purge(&self, token_hash: &[u8; 32], matches: impl Fn(&K) -> bool) {
        let mut table = lock(&self.inner.table);
        let mut uncounted = 0usize;
        table.slots.retain(|k, slot| {
            let forget = slot.finished() && (matches(k) || slot.tagged(token_hash));
            if forget && slot.uncount() {
                uncounted += 1;
            }
            !forget
        });
        table.kept = table.kept.saturating_sub(uncounted);
    }

    /// Finished outcomes currently kept (for tests and metrics).
    #[cfg(test)]
    pub(crate) fn kept(&self) -> usize {
        lock(&self.inner.table).slots.len()
    }

    /// The capacity count (for tests): must equal the finished outcomes kept.
    #[cfg(test)]
    fn counted(&self) -> usize {
        lock(&self.inner.table).kept
    }
}

impl<K: Hash + Eq + Send + 'static> Inner<K> {
    /// Starts the timer thread unless it runs; without threads, expiry happens at `join`.
    fn ensure_timer(self: &Arc<Self>, table: &mut Table<K>) {
        if table.timer_running {
            self.timer.notify_one();
            return;
        }
        let inner = Arc::clone(self);
        table.timer_running = std::thread::Builder::new()
            .name("authpi-idp-flights".into())
            .spawn(move || run_timer(&inner))
            .is_ok();
    }
}

/// A follower's handle on a flight: wait for the leader's outcome.
#[doc(hidden)] // reachable only through the hidden `driver` module
pub struct Follower {
    slot: Arc<Slot>,
    wait: Duration,
    timer: Arc<dyn WakeAt>,
}

impl Follower {
    /// The flight.
    pub(crate) fn slot(&self) -> Arc<Slot> {
        Arc::clone(&self.slot)
    }

    /// Waits (async) for the leader's outcome, at most the table's wait bound.
    ///
    /// # Errors
    /// The leader's transport error, [`TransportError::Abandoned`], or
    /// [`TransportError::Timeout`] when the bound passed.
    pub async fn wait(&self) -> Result<Arc<Outcome>, TransportError> {
        let deadline = instant_after(Instant::now(), self.wait);
        // Set when our scheduled wake-up fired; `None` until one is scheduled.
        let mut wake_up: Option<Arc<AtomicBool>> = None;
        loop {
            // Register before looking, so a `set` between the look and the await still wakes us.
            let mut notified = pin!(self.slot.r#async.notified());
            notified.as_mut().enable();
            if let Some(result) = self.slot.done() {
                return result;
            }
            if Instant::now() >= deadline {
                return Err(TransportError::Timeout);
            }
            // None scheduled yet, or ours fired before the bound (it must not end the wait
            // early nor leave it without one): schedule a wake-up at the bound.
            if wake_up
                .as_ref()
                .is_none_or(|fired| fired.load(AtomicOrdering::Relaxed))
            {
                let fired = Arc::new(AtomicBool::new(false));
                Arc::clone(&self.timer).wake_at(
                    deadline,
                    Arc::clone(&self.slot),
                    Arc::clone(&fired),
                );
                wake_up = Some(fired);
            }
            notified.await;
        }
    }

    /// Blocks the thread until the leader's outcome is there, at most the table's wait bound.
    ///
    /// # Errors
    /// As [`Self::wait`].
    pub fn wait_blocking(&self) -> Result<Arc<Outcome>, TransportError> {
        let pending = |state: &mut State| matches!(state, State::Pending);
        let (state, _) = self
            .slot
            .blocking
            .wait_timeout_while(lock(&self.slot.state), self.wait, pending)
            .unwrap_or_else(PoisonError::into_inner);
        match &*state {
            State::Pending => Err(TransportError::Timeout),
            done => done.result(),
        }
    }
}

/// The leader's side of a flight. Dropping it publishes what it has, or abandons the flight.
pub(crate) struct Leader<K: Hash + Eq + Clone + Send + 'static> {
    flights: Arc<Inner<K>>,
    key: K,
    slot: Arc<Slot>,
    response: Option<Result<(http::response::Parts, Vec<u8>), TransportError>>,
    received_at: UnixTime,
}

impl<K: Hash + Eq + Clone + Send + 'static> Leader<K> {
    /// The flight.
    pub(crate) fn slot(&self) -> Arc<Slot> {
        Arc::clone(&self.slot)
    }

    /// Records the transport's answer without publishing it yet (dropping the leader, or
    /// [`Self::publish`], publishes it).
    pub(crate) fn record(
        &mut self,
        result: Result<http::Response<Vec<u8>>, TransportError>,
        at: UnixTime,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        self.received_at = at;
        let (stored, back) = match result {
            Ok(resp) => {
                let (parts, body) = resp.into_parts();
                let back = Ok(http::Response::from_parts(parts.clone(), body.clone()));
                (Ok((parts, body)), back)
            }
            Err(e) => (Err(e.clone()), Err(e)),
        };
        self.response = Some(stored);
        back
    }

    /// Publishes the recorded answer.
    pub(crate) fn publish(mut self) {
        self.finish();
    }

    /// Records the transport's answer and publishes it to the followers at once.
    pub(crate) fn received(
        mut self,
        result: Result<http::Response<Vec<u8>>, TransportError>,
        at: UnixTime,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let back = self.record(result, at);
        self.finish();
        back
    }

    fn finish(&mut self) {
        let Some(response) = self.response.take() else {
            return;
        };
        let outcome = Arc::new(Outcome {
            response,
            received_at: self.received_at,
            finished: Instant::now(),
        });
        let keep = !self.flights.grace.is_zero() && outcome.reusable();
        self.slot.set(State::Done(outcome));
        let mut table = lock(&self.flights.table);
        if !keep {
            table.remove(&self.key, &self.slot);
            return;
        }
        if !table
            .slots
            .get(&self.key)
            .is_some_and(|s| Arc::ptr_eq(s, &self.slot))
        {
            return; // purged meanwhile
        }
        let at = instant_after(Instant::now(), self.flights.grace);
        table.schedule(at, Event::Expire(self.key.clone(), Arc::clone(&self.slot)));
        if !self.slot.counted.swap(true, AtomicOrdering::Relaxed) {
            table.kept += 1;
        }
        table.shrink_to(self.flights.capacity);
        self.flights.ensure_timer(&mut table);
    }
}

impl<K: Hash + Eq + Clone + Send + 'static> Drop for Leader<K> {
    fn drop(&mut self) {
        if self.response.is_some() {
            self.finish();
        } else if matches!(&*lock(&self.slot.state), State::Pending) {
            self.slot.set(State::Abandoned);
            lock(&self.flights.table).remove(&self.key, &self.slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(300);

    fn ok_response(status: u16) -> http::Response<Vec<u8>> {
        let mut r = http::Response::new(b"{}".to_vec());
        *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
        r
    }

    fn leader<K: Hash + Eq + Clone + Send + 'static>(j: Join<K>) -> Leader<K> {
        match j {
            Join::Leader(l) => l,
            Join::Follower(_) => panic!("expected to lead"),
        }
    }

    fn follower<K: Hash + Eq + Clone + Send + 'static>(j: Join<K>) -> Follower {
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
    fn followers_get_the_response_as_soon_as_it_is_received_and_late_callers_within_grace() {
        let flights = Flights::new(Duration::from_secs(30), LONG, 10);
        let l = leader(flights.join(1u8));
        let f = follower(flights.join(1u8));
        let _other = leader(flights.join(2u8)); // other keys are independent
        // Published on receipt: nobody waits for the leader's persist.
        l.received(Ok(ok_response(200)), UnixTime(5)).unwrap();
        for o in wait_both(&f) {
            assert_eq!(o.unwrap().received_at, UnixTime(5));
        }
        let late = follower(flights.join(1u8)).wait_blocking().unwrap();
        assert_eq!(late.to_response().unwrap().status(), 200);
    }

    #[test]
    fn failures_are_shared_with_waiters_but_not_kept() {
        for (result, shared_status) in [
            (Ok(ok_response(400)), Some(400)),
            (Err(TransportError::Timeout), None),
        ] {
            let flights = Flights::new(Duration::from_secs(30), LONG, 10);
            let l = leader(flights.join(1u8));
            let f = follower(flights.join(1u8));
            let _ = l.received(result, UnixTime(1));
            for o in wait_both(&f) {
                let status = o.unwrap().to_response().ok().map(|r| r.status().as_u16());
                assert_eq!(status, shared_status);
            }
            let _next = leader(flights.join(1u8));
        }
    }

    #[test]
    fn a_leader_dropped_before_a_response_abandons_its_followers() {
        let flights = Flights::new(Duration::from_secs(30), LONG, 10);
        let l = leader(flights.join(1u8));
        let f = follower(flights.join(1u8));
        drop(l);
        for o in wait_both(&f) {
            assert!(matches!(o, Err(TransportError::Abandoned)));
        }
        let _next = leader(flights.join(1u8));
    }

    #[test]
    fn a_huge_grace_or_wait_is_far_future_not_a_panic() {
        // Review #5: Instant + Duration::MAX used to panic (wait() and the grace expiry).
        let flights = Flights::new(Duration::MAX, Duration::MAX, 10);
        let l = leader(flights.join(1u8));
        let f = follower(flights.join(1u8));
        l.received(Ok(ok_response(200)), UnixTime(1)).unwrap();
        assert!(wait_both(&f).iter().all(Result::is_ok));
        // Kept for the (huge) grace: a late caller still follows.
        assert!(follower(flights.join(1u8)).wait_blocking().is_ok());
    }

    #[test]
    fn the_capacity_count_matches_the_kept_outcomes() {
        // Review #6: an expiry of a slot already purged (or replaced) must not count again.
        let flights = Flights::new(LONG, LONG, 10);
        leader(flights.join(1u8))
            .received(Ok(ok_response(200)), UnixTime(1))
            .unwrap();
        assert_eq!((flights.kept(), flights.counted()), (1, 1));
        flights.purge(&[0; 32], |k| *k == 1);
        assert_eq!((flights.kept(), flights.counted()), (0, 0));
        leader(flights.join(2u8))
            .received(Ok(ok_response(200)), UnixTime(2))
            .unwrap();
        assert_eq!((flights.kept(), flights.counted()), (1, 1));
        // The purged slot's expiry (the earliest event) fires: slot 2 is still kept and counted.
        lock(&flights.inner.table).fire_next();
        assert_eq!((flights.kept(), flights.counted()), (1, 1));
        lock(&flights.inner.table).fire_next();
        assert_eq!((flights.kept(), flights.counted()), (0, 0));
    }

    #[test]
    fn over_capacity_only_expiries_fire_not_wake_ups() {
        // Review #6: the capacity loop fired a follower's wake-up (scheduled before the
        // expiries) early.
        let flights = Flights::new(LONG, LONG, 1);
        let pending = leader(flights.join(1u8));
        let fired = Arc::new(AtomicBool::new(false));
        Arc::clone(&flights.inner).wake_at(
            instant_after(Instant::now(), LONG),
            pending.slot(),
            Arc::clone(&fired),
        );
        for k in [2u8, 3] {
            leader(flights.join(k))
                .received(Ok(ok_response(200)), UnixTime(1))
                .unwrap();
        }
        assert!(
            !fired.load(AtomicOrdering::Relaxed),
            "the wake-up fired early"
        );
        let table = lock(&flights.inner.table);
        assert_eq!(table.kept, 1);
        assert!(table.slots.contains_key(&1) && table.slots.contains_key(&3));
        assert!(!table.slots.contains_key(&2));
        let wakes = table
            .timers
            .iter()
            .filter(|Reverse(t)| matches!(t.event, Event::Wake(..)))
            .count();
        assert_eq!(wakes, 1);
    }

    #[test]
    fn a_follower_woken_early_by_its_own_wake_up_schedules_another() {
        // Review #6: a wake-up that fired before the bound left the follower without one.
        let flights = Flights::new(LONG, LONG, 10);
        let _leader = leader(flights.join(1u8));
        let f = follower(flights.join(1u8));
        let wakes = || {
            lock(&flights.inner.table)
                .timers
                .iter()
                .filter(|Reverse(t)| matches!(t.event, Event::Wake(..)))
                .count()
        };
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut wait = pin!(f.wait());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        assert_eq!(wakes(), 1);
        // Its wake-up fires early (as the capacity loop used to do).
        lock(&flights.inner.table).fire_next();
        assert_eq!(wakes(), 0);
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        assert_eq!(wakes(), 1, "no wake-up at the bound any more");
    }

    #[test]
    fn zero_grace_shares_only_concurrent_callers() {
        let flights = Flights::new(Duration::ZERO, LONG, 10);
        let l = leader(flights.join(()));
        let f = follower(flights.join(()));
        l.received(Ok(ok_response(200)), UnixTime(1)).unwrap();
        assert!(wait_both(&f).iter().all(Result::is_ok));
        let _next = leader(flights.join(()));
    }

    #[test]
    fn waiters_already_parked_are_woken() {
        let flights = Flights::new(Duration::from_secs(30), LONG, 10);
        let l = leader(flights.join(1u8));
        let (f1, f2) = (follower(flights.join(1u8)), follower(flights.join(1u8)));
        // Whether the waiters park before or after the publish, both must see it: no
        // sleeping, both orders are correct.
        let blocking = std::thread::spawn(move || f1.wait_blocking().map(|o| o.received_at));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let waiting = std::thread::spawn(move || rt.block_on(f2.wait()).map(|o| o.received_at));
        l.received(Ok(ok_response(200)), UnixTime(9)).unwrap();
        assert_eq!(blocking.join().unwrap().unwrap(), UnixTime(9));
        assert_eq!(waiting.join().unwrap().unwrap(), UnixTime(9));
    }

    /// Issue #12 item 3: a follower waits a bounded time, async and blocking, while the
    /// leader never answers.
    #[test]
    fn followers_give_up_after_the_wait_bound() {
        let flights = Flights::new(Duration::from_secs(30), Duration::from_millis(20), 10);
        let _l = leader(flights.join(1u8));
        let f = follower(flights.join(1u8));
        for o in wait_both(&f) {
            assert!(matches!(o, Err(TransportError::Timeout)), "{o:?}");
        }
    }

    /// Issue #12 item 7: an outcome does not outlive the grace period even with no traffic (the
    /// timer removes it), the table is bounded, and a purge forgets tagged flights.
    #[test]
    fn kept_outcomes_expire_without_traffic_are_bounded_and_purged() {
        let flights = Flights::new(Duration::from_millis(10), LONG, 10);
        let l = leader(flights.join(1u8));
        l.received(Ok(ok_response(200)), UnixTime(1)).unwrap();
        assert_eq!(flights.kept(), 1);
        // No join: only the timer thread can remove it. Wait for it (bounded, no timing
        // assertion: the loop ends as soon as the table is empty).
        let start = Instant::now();
        while flights.kept() != 0 {
            assert!(start.elapsed() < Duration::from_secs(20), "never expired");
            std::thread::yield_now();
        }

        let flights = Flights::new(Duration::from_secs(30), LONG, 3);
        for k in 0..5u8 {
            leader(flights.join(k))
                .received(Ok(ok_response(200)), UnixTime(1))
                .unwrap();
        }
        assert_eq!(flights.kept(), 3, "capacity");
        assert!(
            matches!(flights.join(0u8), Join::Leader(_)),
            "oldest evicted"
        );
        assert!(
            matches!(flights.join(4u8), Join::Follower(_)),
            "newest kept"
        );

        let flights = Flights::new(Duration::from_secs(30), LONG, 10);
        let l = leader(flights.join(7u8));
        l.slot().tag([[9; 32]]);
        l.received(Ok(ok_response(200)), UnixTime(1)).unwrap();
        flights.purge(&[8; 32], |_| false);
        assert!(matches!(flights.join(7u8), Join::Follower(_)), "untouched");
        flights.purge(&[9; 32], |_| false);
        assert!(
            matches!(flights.join(7u8), Join::Leader(_)),
            "purged by tag"
        );
    }

    #[test]
    fn outcome_debug_shows_no_body() {
        let flights = Flights::new(Duration::from_secs(30), LONG, 10);
        let l = leader(flights.join(1u8));
        let f = follower(flights.join(1u8));
        let mut r = ok_response(200);
        *r.body_mut() = b"{\"refresh_token\":\"rt_SECRET\"}".to_vec();
        l.received(Ok(r), UnixTime(1)).unwrap();
        let o = f.wait_blocking().unwrap();
        let shown = format!("{o:?}");
        assert!(
            !shown.contains("rt_SECRET") && shown.contains("200"),
            "{shown}"
        );
    }
}
