//! [`FaultStore`]: a [`SessionStore`] wrapper that injects faults and observes calls, so a
//! test of a store failure needs no hand-written wrapper.

use crate::store::{BoxFuture, Lease, SessionRecord, SessionStore, StoreError};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// One operation of [`SessionStore`], to arm a fault on or to observe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreOp {
    /// [`SessionStore::load`].
    Load,
    /// [`SessionStore::save`].
    Save,
    /// [`SessionStore::delete`].
    Delete,
    /// [`SessionStore::find_by_sid`].
    FindBySid,
    /// [`SessionStore::find_by_sub`].
    FindBySub,
    /// [`SessionStore::remember_jti`].
    RememberJti,
    /// [`SessionStore::has_jti`].
    HasJti,
    /// [`SessionStore::try_lease`].
    TryLease,
    /// [`SessionStore::renew_lease`].
    RenewLease,
    /// [`SessionStore::release_lease`].
    ReleaseLease,
    /// [`SessionStore::put_transaction`].
    PutTransaction,
    /// [`SessionStore::take_transaction`].
    TakeTransaction,
}

impl StoreOp {
    /// Every operation, in the trait's order.
    pub const ALL: [StoreOp; 12] = [
        StoreOp::Load,
        StoreOp::Save,
        StoreOp::Delete,
        StoreOp::FindBySid,
        StoreOp::FindBySub,
        StoreOp::RememberJti,
        StoreOp::HasJti,
        StoreOp::TryLease,
        StoreOp::RenewLease,
        StoreOp::ReleaseLease,
        StoreOp::PutTransaction,
        StoreOp::TakeTransaction,
    ];

    /// Whether the operation has a negative answer, which [`FaultStore::refuse_next`] can
    /// give: every one but [`StoreOp::Delete`] and [`StoreOp::PutTransaction`].
    #[must_use]
    pub fn can_refuse(self) -> bool {
        !matches!(self, StoreOp::Delete | StoreOp::PutTransaction)
    }
}

/// What a call answered, as [`FaultStore`] counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Answer {
    /// A positive answer: `Ok(true)` (saved, leased, renewed, released, first `jti`, `jti`
    /// seen), `Ok(Some(_))` (loaded, taken), a non-empty list, or `Ok(())`.
    Yes,
    /// A negative answer: `Ok(false)` (version conflict, lease held elsewhere or lost, `jti`
    /// replayed or unseen), `Ok(None)` (absent) or an empty list.
    No,
    /// `Err(_)`, injected or from the wrapped store.
    Failed,
}

/// Pending arms and counters of one operation.
#[derive(Default)]
struct OpState {
    /// Calls still to fail; `usize::MAX`: every call until healed.
    fail: AtomicUsize,
    /// Calls still to refuse.
    refuse: AtomicUsize,
    calls: AtomicUsize,
    yes: AtomicUsize,
    no: AtomicUsize,
    failed: AtomicUsize,
}

impl OpState {
    fn answers(&self, answer: Answer) -> &AtomicUsize {
        match answer {
            Answer::Yes => &self.yes,
            Answer::No => &self.no,
            Answer::Failed => &self.failed,
        }
    }
}

/// Takes one from an armed count (`usize::MAX` is never used up); `false` when unarmed.
fn take_one(n: &AtomicUsize) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
        0 => None,
        usize::MAX => Some(usize::MAX),
        n => Some(n - 1),
    })
    .is_ok()
}

/// A [`SessionStore`] that forwards every call to an inner store, except the calls a test
/// armed a fault for, and counts what every call answered.
///
/// Faults, per [`StoreOp`], checked in this order when the call is made:
/// 1. [`fail_next`](Self::fail_next) / [`fail_until_healed`](Self::fail_until_healed): the
///    call answers `Err(StoreError::Unavailable(_))` without reaching the inner store (the
///    store is down);
/// 2. [`refuse_next`](Self::refuse_next): the call answers its negative value without reaching
///    the inner store — a save reports a version conflict (`Ok(false)`), a lease is held
///    elsewhere, a load finds nothing (see [`Answer::No`]);
/// 3. [`stale_loads`](Self::stale_loads) (loads only): a load of that session id answers an
///    old copy of the record (the view of an instance that read it just before another one
///    wrote it).
///
/// Every call, faulted or not, is counted ([`calls`](Self::calls)) and so is what it answered
/// ([`answers`](Self::answers)); [`wait_for`](Self::wait_for) waits until an answer has been
/// given a number of times (e.g. "a lease was taken through this store").
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use authpi_idp_session::testing::{Answer, FaultStore, StoreOp};
/// use authpi_idp_session::{MemoryStore, SessionStore};
/// use std::sync::Arc;
///
/// let store = FaultStore::new(Arc::new(MemoryStore::new()));
/// store.fail_next(StoreOp::Load, 1);
/// assert!(store.load("s1").await.is_err());
/// assert_eq!(store.load("s1").await, Ok(None));
/// assert_eq!(store.answers(StoreOp::Load, Answer::Failed), 1);
/// # }
/// ```
pub struct FaultStore {
    inner: Arc<dyn SessionStore>,
    ops: [OpState; 12],
    stale: Mutex<HashMap<String, (SessionRecord, usize)>>,
    answered: Notify,
}

impl fmt::Debug for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultStore").finish_non_exhaustive()
    }
}

impl FaultStore {
    /// A wrapper around `inner` with no fault armed: it behaves exactly like `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn SessionStore>) -> FaultStore {
        FaultStore {
            inner,
            ops: Default::default(),
            stale: Mutex::new(HashMap::new()),
            answered: Notify::new(),
        }
    }

    /// The wrapped store (calls on it are neither faulted nor counted).
    #[must_use]
    pub fn inner(&self) -> &Arc<dyn SessionStore> {
        &self.inner
    }

    fn state(&self, op: StoreOp) -> &OpState {
        let [
            load,
            save,
            delete,
            find_by_sid,
            find_by_sub,
            remember_jti,
            has_jti,
            try_lease,
            renew_lease,
            release_lease,
            put_transaction,
            take_transaction,
        ] = &self.ops;
        match op {
            StoreOp::Load => load,
            StoreOp::Save => save,
            StoreOp::Delete => delete,
            StoreOp::FindBySid => find_by_sid,
            StoreOp::FindBySub => find_by_sub,
            StoreOp::RememberJti => remember_jti,
            StoreOp::HasJti => has_jti,
            StoreOp::TryLease => try_lease,
            StoreOp::RenewLease => renew_lease,
            StoreOp::ReleaseLease => release_lease,
            StoreOp::PutTransaction => put_transaction,
            StoreOp::TakeTransaction => take_transaction,
        }
    }

    /// The next `n` calls of `op` fail with [`StoreError::Unavailable`] (replacing what was
    /// armed; `0` disarms, `usize::MAX` is [`Self::fail_until_healed`]).
    pub fn fail_next(&self, op: StoreOp, n: usize) -> &Self {
        self.state(op).fail.store(n, Ordering::SeqCst);
        self
    }

    /// Every call of `op` fails with [`StoreError::Unavailable`] until [`Self::heal`].
    pub fn fail_until_healed(&self, op: StoreOp) -> &Self {
        self.fail_next(op, usize::MAX)
    }

    /// Disarms the failures and refusals armed on `op` (stale loads stay armed).
    pub fn heal(&self, op: StoreOp) -> &Self {
        let state = self.state(op);
        state.fail.store(0, Ordering::SeqCst);
        state.refuse.store(0, Ordering::SeqCst);
        self
    }

    /// The next `n` calls of `op` answer its negative value ([`Answer::No`]) without reaching
    /// the inner store: for [`StoreOp::Save`] a version conflict (`Ok(false)`, nothing
    /// written), for [`StoreOp::TryLease`] a lease held elsewhere, for [`StoreOp::Load`] an
    /// absent session. Replaces what was armed; `0` disarms.
    ///
    /// # Panics
    /// For an operation without a negative answer ([`StoreOp::can_refuse`]).
    pub fn refuse_next(&self, op: StoreOp, n: usize) -> &Self {
        assert!(op.can_refuse(), "{op:?} has no negative answer to give");
        self.state(op).refuse.store(n, Ordering::SeqCst);
        self
    }

    /// The next `n` loads of session `record.id` answer `Ok(Some(record))` (an old view of
    /// it) without reaching the inner store; loads of other ids are not affected. Replaces
    /// what was armed for that id; `0` disarms.
    pub fn stale_loads(&self, record: SessionRecord, n: usize) -> &Self {
        let mut stale = self
            .stale
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if n == 0 {
            stale.remove(&record.id);
        } else {
            stale.insert(record.id.clone(), (record, n));
        }
        self
    }

    /// How many calls of `op` were made through this wrapper, faulted or not.
    #[must_use]
    pub fn calls(&self, op: StoreOp) -> usize {
        self.state(op).calls.load(Ordering::SeqCst)
    }

    /// How many calls of `op` have answered `answer` so far (injected answers included).
    #[must_use]
    pub fn answers(&self, op: StoreOp, answer: Answer) -> usize {
        self.state(op).answers(answer).load(Ordering::SeqCst)
    }

    /// Waits until [`Self::answers`]`(op, answer)` is at least `n` (at once when it already
    /// is). Wrap it in a timeout, or race it against the request under test, where the
    /// answer may never come.
    pub async fn wait_for(&self, op: StoreOp, answer: Answer, n: usize) {
        loop {
            let mut notified = std::pin::pin!(self.answered.notified());
            // Registered before the count is read: an answer in between still wakes us.
            notified.as_mut().enable();
            if self.answers(op, answer) >= n {
                return;
            }
            notified.await;
        }
    }

    fn take_stale(&self, id: &str) -> Option<SessionRecord> {
        let mut stale = self
            .stale
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (record, left) = stale.get_mut(id)?;
        let record = record.clone();
        *left = left.saturating_sub(1);
        if *left == 0 {
            stale.remove(id);
        }
        Some(record)
    }

    /// One call of `op`: counted, then failed, refused (`refused`: the negative answer, `None`
    /// when `op` has none, as [`StoreOp::can_refuse`] says) or forwarded, as armed; its answer
    /// is counted when it completes.
    fn call<'a, T: Send + 'a>(
        &'a self,
        op: StoreOp,
        refused: Option<T>,
        forward: impl FnOnce() -> BoxFuture<'a, Result<T, StoreError>>,
        answer: fn(&T) -> Answer,
    ) -> BoxFuture<'a, Result<T, StoreError>> {
        let state = self.state(op);
        state.calls.fetch_add(1, Ordering::SeqCst);
        let fut: BoxFuture<'a, Result<T, StoreError>> = if take_one(&state.fail) {
            let e = StoreError::Unavailable(format!("injected fault: {op:?} fails"));
            Box::pin(std::future::ready(Err(e)))
        } else if let Some(no) = refused.filter(|_| take_one(&state.refuse)) {
            Box::pin(std::future::ready(Ok(no)))
        } else {
            forward()
        };
        Box::pin(async move {
            let out = fut.await;
            let given = match &out {
                Ok(v) => answer(v),
                Err(_) => Answer::Failed,
            };
            state.answers(given).fetch_add(1, Ordering::SeqCst);
            self.answered.notify_waiters();
            out
        })
    }
}

fn flag(b: &bool) -> Answer {
    if *b { Answer::Yes } else { Answer::No }
}

fn some<T>(o: &Option<T>) -> Answer {
    if o.is_some() { Answer::Yes } else { Answer::No }
}

fn list(v: &[String]) -> Answer {
    if v.is_empty() {
        Answer::No
    } else {
        Answer::Yes
    }
}

fn unit(_: &()) -> Answer {
    Answer::Yes
}

impl SessionStore for FaultStore {
    fn load<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        let forward = || match self.take_stale(id) {
            Some(old) => Box::pin(std::future::ready(Ok(Some(old)))) as BoxFuture<'a, _>,
            None => self.inner.load(id),
        };
        self.call(StoreOp::Load, Some(None), forward, some)
    }

    fn save<'a>(
        &'a self,
        record: &'a SessionRecord,
        expected: Option<u64>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let forward = || self.inner.save(record, expected);
        self.call(StoreOp::Save, Some(false), forward, flag)
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.call(StoreOp::Delete, None, || self.inner.delete(id), unit)
    }

    fn find_by_sid<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        let forward = || self.inner.find_by_sid(sid);
        self.call(StoreOp::FindBySid, Some(Vec::new()), forward, |v| list(v))
    }

    fn find_by_sub<'a>(&'a self, sub: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        let forward = || self.inner.find_by_sub(sub);
        self.call(StoreOp::FindBySub, Some(Vec::new()), forward, |v| list(v))
    }

    fn remember_jti<'a>(
        &'a self,
        jti: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let forward = || self.inner.remember_jti(jti, ttl);
        self.call(StoreOp::RememberJti, Some(false), forward, flag)
    }

    fn has_jti<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        let forward = || self.inner.has_jti(jti);
        self.call(StoreOp::HasJti, Some(false), forward, flag)
    }

    fn try_lease<'a>(
        &'a self,
        key: &'a str,
        fence: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let forward = || self.inner.try_lease(key, fence, ttl);
        self.call(StoreOp::TryLease, Some(false), forward, flag)
    }

    fn renew_lease<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let forward = || self.inner.renew_lease(lease, ttl);
        self.call(StoreOp::RenewLease, Some(false), forward, flag)
    }

    fn release_lease<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<bool, StoreError>> {
        let forward = || self.inner.release_lease(lease);
        self.call(StoreOp::ReleaseLease, Some(false), forward, flag)
    }

    fn put_transaction<'a>(
        &'a self,
        id: &'a str,
        data: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let forward = || self.inner.put_transaction(id, data, ttl);
        self.call(StoreOp::PutTransaction, None, forward, unit)
    }

    fn take_transaction<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        let forward = || self.inner.take_transaction(id);
        self.call(StoreOp::TakeTransaction, Some(None), forward, some)
    }
}
