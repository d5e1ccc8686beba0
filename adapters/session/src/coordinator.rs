//! [`Sessions`]: session life cycle and the distributed single-flight refresh.

use crate::store::{Lease, SessionRecord, SessionStore, StoreError};
use crate::{random_token, unix_now};
use authpi_idp::{Agent, TokenSet, UnixTime};
use authpi_idp_async::{AsyncClient, CreateAgentOptions, Error as ClientError, Transport};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

/// Tuning of [`Sessions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionsConfig {
    /// Absolute life of a session from login (default 12 h); the store's TTL follows it.
    pub session_ttl: Duration,
    /// Life of a refresh lease without renewal (default 15 s). The holder renews it every
    /// third of this while it works (however long the provider, a JWKS refetch or the store
    /// take), so only a holder that died — stopped renewing — frees it, after at most this
    /// long. Keep it well above one store round trip.
    pub lease_ttl: Duration,
    /// Longest time a request waits for another holder's refresh (default 20 s), then
    /// [`SessionError::Timeout`]. Keep it at least [`Self::lease_ttl`], so a waiter can
    /// outlast the lease of a holder that died.
    pub wait: Duration,
    /// How long the holder keeps retrying to save a rotated token set while the store fails
    /// (default 2 s) before the request is answered with [`SessionError::Unavailable`]: the
    /// old refresh token is spent, so these tokens are the session.
    pub persist_for: Duration,
    /// After that, how long a detached task keeps retrying that save (default 60 s) while it
    /// keeps the lease (renewed): no instance spends the dead refresh token meanwhile, and
    /// the rotated set is saved as soon as the store is back. Past this the tokens exist only
    /// in the client's refresh grace period of this instance and the lease is released.
    pub keep_saving_for: Duration,
    /// Longest store polling interval while waiting (default 20 ms; polls start at 1 ms and
    /// double up to it).
    pub poll: Duration,
    /// When a refresh is refused as over (`invalid_grant`, blocked user, expired session)
    /// while the store still holds the set whose refresh token was just refused, how long the
    /// holder keeps re-reading it (polling like a waiter) before it ends the session (default
    /// 500 ms). An earlier holder whose lease expired during a store outage may have refreshed
    /// with that token and still be retrying its save (every 50 ms): a rotated set saved
    /// meanwhile is adopted instead of logging the user out (see the crate docs, "What the
    /// lease survives", for what that does and does not keep). This bounds how much later a
    /// session the provider really ended gets its verdict; the default gives a holder whose
    /// store came back with ours (one outage) ten of its save retries, and still covers one
    /// whose store comes back a few hundred milliseconds later. Keep it well below
    /// [`Self::wait`]: requests for that session wait for the holder meanwhile.
    pub confirm_over_for: Duration,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            session_ttl: Duration::from_secs(12 * 3600),
            lease_ttl: Duration::from_secs(15),
            wait: Duration::from_secs(20),
            poll: Duration::from_millis(20),
            persist_for: Duration::from_secs(2),
            keep_saving_for: Duration::from_secs(60),
            confirm_over_for: Duration::from_millis(500),
        }
    }
}

impl SessionsConfig {
    /// The defaults.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`Self::session_ttl`].
    #[must_use]
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// Sets [`Self::lease_ttl`].
    #[must_use]
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Sets [`Self::wait`].
    #[must_use]
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Sets [`Self::persist_for`].
    #[must_use]
    pub fn persist_for(mut self, persist_for: Duration) -> Self {
        self.persist_for = persist_for;
        self
    }

    /// Sets [`Self::keep_saving_for`].
    #[must_use]
    pub fn keep_saving_for(mut self, keep_saving_for: Duration) -> Self {
        self.keep_saving_for = keep_saving_for;
        self
    }

    /// Sets [`Self::poll`].
    #[must_use]
    pub fn poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Sets [`Self::confirm_over_for`].
    #[must_use]
    pub fn confirm_over_for(mut self, confirm_over_for: Duration) -> Self {
        self.confirm_over_for = confirm_over_for;
        self
    }
}

/// Why no agent could be produced for a session.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionError {
    /// No such session (never existed, expired, logged out): log in.
    NotFound,
    /// The provider ended the session (`invalid_grant`, blocked user, no refresh token left)
    /// and the store held nothing newer: the record was deleted; log in.
    Over,
    /// The store failed: answer 503. Nothing was written half.
    Unavailable(StoreError),
    /// Another instance's refresh did not finish within [`SessionsConfig::wait`]: answer 503.
    Timeout,
    /// The provider or the transport failed (no verdict on the session; try again later).
    Provider(ClientError),
    /// The operating system's random number generator failed.
    Rng,
}

impl SessionError {
    /// True when the browser must log in again (not a temporary failure).
    #[must_use]
    pub fn needs_login(&self) -> bool {
        matches!(self, SessionError::NotFound | SessionError::Over)
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::NotFound => f.write_str("no session"),
            SessionError::Over => f.write_str("the session is over"),
            SessionError::Unavailable(e) => fmt::Display::fmt(e, f),
            SessionError::Timeout => {
                f.write_str("timed out waiting for another instance to refresh the session")
            }
            SessionError::Provider(e) => write!(f, "identity provider error: {e}"),
            SessionError::Rng => f.write_str("the operating system's random generator failed"),
        }
    }
}

impl std::error::Error for SessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SessionError::Unavailable(e) => Some(e),
            SessionError::Provider(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for SessionError {
    fn from(e: StoreError) -> Self {
        SessionError::Unavailable(e)
    }
}

/// The lease key of a refresh token: `lease:` + hex SHA-256 (the token never leaves memory).
#[must_use]
pub fn lease_key(refresh_token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, refresh_token.as_bytes());
    let mut key = String::with_capacity(6 + 64);
    key.push_str("lease:");
    for b in digest.as_ref() {
        key.push_str(&format!("{b:02x}"));
    }
    key
}

struct Inner<T> {
    store: Arc<dyn SessionStore>,
    client: AsyncClient<T>,
    config: SessionsConfig,
    local: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Sessions of one service instance: creation at login, the agent of a request (refreshing
/// through the distributed single-flight when due), logout. Cheap to clone.
pub struct Sessions<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Sessions<T> {
    fn clone(&self) -> Self {
        Sessions {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> fmt::Debug for Sessions<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> Sessions<T> {
    /// Sessions in `store`, refreshed through `client`.
    pub fn new(
        store: Arc<dyn SessionStore>,
        client: AsyncClient<T>,
        config: SessionsConfig,
    ) -> Self {
        Sessions {
            inner: Arc::new(Inner {
                store,
                client,
                config,
                local: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.inner.store
    }

    /// The async client.
    pub fn client(&self) -> &AsyncClient<T> {
        &self.inner.client
    }

    /// The configuration.
    pub fn config(&self) -> &SessionsConfig {
        &self.inner.config
    }

    /// Creates a session for a fresh login under a new random id (never reusing one the
    /// browser brought: no fixation). `sid` is the provider's session id, if any.
    ///
    /// # Errors
    /// [`SessionError::Unavailable`], [`SessionError::Rng`].
    pub async fn create(
        &self,
        tokens: TokenSet,
        sub: &str,
        sid: Option<&str>,
    ) -> Result<SessionRecord, SessionError> {
        let now = unix_now();
        for _ in 0..3 {
            let id = crate::new_session_id().ok_or(SessionError::Rng)?;
            let record = SessionRecord {
                id,
                sub: sub.to_owned(),
                sid: sid.map(str::to_owned),
                created_at: now,
                expires_at: now.saturating_add(self.inner.config.session_ttl.as_secs()),
                version: 1,
                tokens: tokens.clone(),
            };
            if self.inner.store.save(&record, None).await? {
                return Ok(record);
            }
        }
        // Three 256-bit collisions in a row: the RNG is broken.
        Err(SessionError::Rng)
    }

    /// The agent of session `id`, refreshing first when its access token is due (see the
    /// crate docs for the coordination). Returns the record the agent was built from.
    ///
    /// # Errors
    /// See [`SessionError`].
    pub async fn agent(&self, id: &str) -> Result<(Agent, SessionRecord), SessionError> {
        // A record that cannot be read authenticates nobody: log in again (the callback
        // deletes it).
        let record = match self.inner.store.load(id).await {
            Ok(Some(record)) => record,
            Ok(None) | Err(StoreError::Corrupt) => return Err(SessionError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let buffer = self.inner.client.client().config().refresh_buffer();
        if !record.tokens.is_expired(UnixTime(unix_now()), buffer) {
            return self.inner.build(record).await;
        }
        // Detached: a cancelled request must not drop a rotation half-way.
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move { inner.refresh_coordinated(record).await })
            .await
            .unwrap_or_else(|_| {
                Err(SessionError::Unavailable(StoreError::Unavailable(
                    "the refresh task failed".to_owned(),
                )))
            })
    }

    /// Ends session `id` in the store and returns the record it had (to revoke its tokens).
    ///
    /// # Errors
    /// [`SessionError::Unavailable`].
    pub async fn end(&self, id: &str) -> Result<Option<SessionRecord>, SessionError> {
        let record = match self.inner.store.load(id).await {
            Ok(record) => record,
            // Unreadable: nothing to revoke, but it still ends.
            Err(StoreError::Corrupt) => None,
            Err(e) => return Err(e.into()),
        };
        self.inner.store.delete(id).await?;
        Ok(record)
    }

    /// Ends every session matching the provider session id `sid` (when given) or, with no
    /// `sid`, every session of `sub` (back-channel logout). Returns how many ended.
    ///
    /// # Errors
    /// [`SessionError::Unavailable`].
    pub async fn end_matching(
        &self,
        sid: Option<&str>,
        sub: Option<&str>,
    ) -> Result<usize, SessionError> {
        let ids = match (sid, sub) {
            (Some(sid), _) => {
                let mut ids = self.inner.store.find_by_sid(sid).await?;
                if let Some(sub) = sub {
                    // Both given: only that user's sessions with that sid.
                    let of_sub = self.inner.store.find_by_sub(sub).await?;
                    ids.retain(|id| of_sub.contains(id));
                }
                ids
            }
            (None, Some(sub)) => self.inner.store.find_by_sub(sub).await?,
            (None, None) => Vec::new(),
        };
        for id in &ids {
            self.inner.store.delete(id).await?;
        }
        Ok(ids.len())
    }
}

impl<T: Transport> Inner<T> {
    /// The agent of a record whose tokens are not to be refreshed now.
    async fn build(&self, record: SessionRecord) -> Result<(Agent, SessionRecord), SessionError> {
        let options = CreateAgentOptions::new().auto_refresh(false);
        match self
            .client
            .create_agent(record.tokens.clone(), options)
            .await
        {
            Ok(agent) => Ok((agent, record)),
            Err(e) if e.is_session_over() => Err(SessionError::Over),
            Err(e) => Err(SessionError::Provider(e)),
        }
    }

    fn local_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, m| Arc::strong_count(m) > 1);
        Arc::clone(map.entry(key.to_owned()).or_default())
    }

    async fn refresh_coordinated(
        self: Arc<Self>,
        record: SessionRecord,
    ) -> Result<(Agent, SessionRecord), SessionError> {
        let Some(old) = record.tokens.refresh_token.clone() else {
            // Due, and nothing to refresh with.
            self.store.delete(&record.id).await?;
            return Err(SessionError::Over);
        };
        let key = lease_key(&old);
        let deadline = crate::instant_after(Instant::now(), self.config.wait);
        // 1. In this process: one task per refresh token.
        let local = self.local_lock(&key);
        let _local = tokio::time::timeout(self.config.wait, local.lock())
            .await
            .map_err(|_| SessionError::Timeout)?;
        // 2. Across processes: the lease. Polls start at 1 ms (a refresh takes about one
        // provider round trip) and back off to `poll`.
        let mut pause = Duration::from_millis(1).min(self.config.poll);
        loop {
            let current = self.reload(&record.id).await?;
            if current.tokens.refresh_token.as_deref() != Some(old.as_str()) {
                return self.build(current).await;
            }
            let fence = random_token(16).ok_or(SessionError::Rng)?;
            if self
                .store
                .try_lease(&key, &fence, self.config.lease_ttl)
                .await?
            {
                let lease = Lease { key, fence };
                let ttl = self.config.lease_ttl;
                let (result, unsaved) =
                    renewing(&*self.store, &lease, ttl, self.hold(&record.id, &old)).await;
                match unsaved {
                    // A failed release frees itself at expiry.
                    None => {
                        let _ = self.store.release_lease(&lease).await;
                    }
                    // The rotated set is not in the store and the old refresh token is
                    // spent: keep the lease (so no instance spends that token and ends the
                    // session) until a detached task has saved it.
                    Some((base, tokens)) => {
                        let store = Arc::clone(&self.store);
                        let keep_for = self.config.keep_saving_for;
                        tokio::spawn(async move {
                            let save = persist_rotated(&*store, base, tokens, keep_for);
                            let _ = renewing(&*store, &lease, ttl, save).await;
                            let _ = store.release_lease(&lease).await;
                        });
                    }
                }
                return result;
            }
            if Instant::now() >= deadline {
                return Err(SessionError::Timeout);
            }
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2).min(self.config.poll);
        }
    }

    async fn reload(&self, id: &str) -> Result<SessionRecord, SessionError> {
        // Gone while we waited: ended by logout or by another instance's verdict.
        self.store.load(id).await?.ok_or(SessionError::Over)
    }

    /// The lease holder's part. Besides the answer, the rotated set that could not be saved
    /// (with the record to save it over), if any.
    async fn hold(
        &self,
        id: &str,
        old: &str,
    ) -> (
        Result<(Agent, SessionRecord), SessionError>,
        Option<(SessionRecord, TokenSet)>,
    ) {
        // The previous holder may have written and released between our load and our lease.
        let current = match self.reload(id).await {
            Ok(current) => current,
            Err(e) => return (Err(e), None),
        };
        if current.tokens.refresh_token.as_deref() != Some(old) {
            return (self.build(current).await, None);
        }
        let written: Arc<Mutex<Option<SessionRecord>>> = Arc::new(Mutex::new(None));
        let (store, base, slot) = (
            Arc::clone(&self.store),
            current.clone(),
            Arc::clone(&written),
        );
        let persist_for = self.config.persist_for;
        let options = CreateAgentOptions::new().on_refresh(move |tokens: TokenSet| {
            let (store, base, slot) = (Arc::clone(&store), base.clone(), Arc::clone(&slot));
            async move {
                let record = persist_rotated(&*store, base, tokens, persist_for).await?;
                *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(record);
                Ok::<(), StoreError>(())
            }
        });
        let result = match self.client.refresh(current.tokens.clone(), options).await {
            // The rotated set is carried in the error (and kept by the client for its grace
            // period): the caller keeps the lease and saves it in the background.
            Err(ClientError::Callback { source, tokens }) => {
                let unsaved = tokens.map(|tokens| (current, *tokens));
                return (
                    Err(SessionError::Unavailable(StoreError::Unavailable(format!(
                        "the rotated tokens could not be saved ({source})"
                    )))),
                    unsaved,
                );
            }
            result => result,
        };
        (self.settle(result, &written, id, old).await, None)
    }

    /// The answer to a refresh that did not fail in `on_refresh`.
    async fn settle(
        &self,
        result: Result<Agent, ClientError>,
        written: &Mutex<Option<SessionRecord>>,
        id: &str,
        old: &str,
    ) -> Result<(Agent, SessionRecord), SessionError> {
        match result {
            Ok(agent) => {
                let record = written
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                match record {
                    Some(record) => Ok((agent, record)),
                    // The client answered from its own single-flight without calling us: the
                    // caller that did persisted it; read it back.
                    None => {
                        let current = self.reload(id).await?;
                        Ok((agent, current))
                    }
                }
            }
            Err(e) if e.is_session_over() => {
                // Re-read before declaring the session over: another instance may have
                // rotated it, or may still be saving its rotated set (its lease expired while
                // its store failed, and we took the lease meanwhile).
                let config = &self.config;
                let rotated =
                    await_rotation(&*self.store, id, old, config.confirm_over_for, config.poll)
                        .await?;
                if let Some(current) = rotated {
                    return self.build(current).await;
                }
                self.store.delete(id).await?;
                Err(SessionError::Over)
            }
            Err(e) => Err(SessionError::Provider(e)),
        }
    }
}

/// After the provider refused the refresh token `old` of session `id` as over: re-reads the
/// session until it holds another refresh token (a rotated set another holder saved, returned)
/// or `grace` has passed since the first read (`None`: the store still holds `old`). Polls
/// start at 1 ms and back off to `poll`, like a waiter's.
///
/// No lease is consulted: the caller holds the lease of `old` itself, so the lease of an
/// earlier holder is gone whether or not that holder is still retrying its save (a save is a
/// compare-and-set on the record, not fenced by the lease). A session that is gone from the
/// store ends at once ([`SessionError::Over`]); a store failure is
/// [`SessionError::Unavailable`], and nothing is decided.
async fn await_rotation(
    store: &dyn SessionStore,
    id: &str,
    old: &str,
    grace: Duration,
    poll: Duration,
) -> Result<Option<SessionRecord>, SessionError> {
    let give_up = crate::instant_after(Instant::now(), grace);
    let mut pause = Duration::from_millis(1).min(poll);
    loop {
        let current = store.load(id).await?.ok_or(SessionError::Over)?;
        if current.tokens.refresh_token.as_deref() != Some(old) {
            return Ok(Some(current));
        }
        let left = give_up.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = pause.saturating_mul(2).min(poll);
    }
}

/// Runs `work` while renewing `lease` (to `ttl`) every third of `ttl`, so a holder that is
/// slow but alive never loses it. A renewal that fails (store down) is tried again at the
/// next tick; one that finds the lease gone stops renewing.
async fn renewing<F: Future>(
    store: &dyn SessionStore,
    lease: &Lease,
    ttl: Duration,
    work: F,
) -> F::Output {
    let period = (ttl / 3).max(Duration::from_millis(1));
    let renew = async {
        loop {
            tokio::time::sleep(period).await;
            if let Ok(false) = store.renew_lease(lease, ttl).await {
                break;
            }
        }
        // Never completes: `work` decides when this ends.
        std::future::pending::<()>().await;
    };
    let mut work = std::pin::pin!(work);
    let mut renew = std::pin::pin!(renew);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        let _ = renew.as_mut().poll(cx);
        Poll::Pending
    })
    .await
}

/// Compare-and-sets the rotated token set over `base` (version + 1). A conflicting write that
/// kept the same refresh token (metadata only) is retried on top; a store failure is retried
/// for `persist_for` (the old refresh token is already spent: these tokens are the session).
async fn persist_rotated(
    store: &dyn SessionStore,
    mut base: SessionRecord,
    tokens: TokenSet,
    persist_for: Duration,
) -> Result<SessionRecord, StoreError> {
    let old = base.tokens.refresh_token.clone();
    let give_up = crate::instant_after(Instant::now(), persist_for);
    loop {
        let record = SessionRecord {
            version: base.version.saturating_add(1),
            tokens: tokens.clone(),
            ..base.clone()
        };
        match store.save(&record, Some(base.version)).await {
            Ok(true) => return Ok(record),
            Ok(false) => match store.load(&base.id).await {
                Ok(Some(now)) if now.tokens.refresh_token == old => base = now,
                Ok(Some(_)) => {
                    return Err(StoreError::Unavailable(
                        "the session was rotated by another holder".to_owned(),
                    ));
                }
                Ok(None) => {
                    return Err(StoreError::Unavailable(
                        "the session ended during the refresh".to_owned(),
                    ));
                }
                // Like a failed save: retried below until `persist_for` runs out.
                Err(e) => {
                    if Instant::now() >= give_up {
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Err(e) => {
                if Instant::now() >= give_up {
                    return Err(e);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::testing::{Answer, FaultStore, StoreOp};

    #[tokio::test]
    async fn a_load_failure_after_a_save_conflict_is_retried_like_a_failed_save() {
        let now = unix_now();
        let base = crate::testing::record("s1", "usr_a", None, "rt-old", now);
        let memory = MemoryStore::new();
        // The next save reports a version conflict and the next two loads fail.
        let store = FaultStore::new(Arc::new(memory.clone()));
        store
            .refuse_next(StoreOp::Save, 1)
            .fail_next(StoreOp::Load, 2);
        assert!(memory.save(&base, None).await.unwrap());
        let mut rotated = base.tokens.clone();
        rotated.refresh_token = Some("rt-new".to_owned());
        let saved = persist_rotated(&store, base.clone(), rotated, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(saved.version, base.version + 1);
        let stored = memory.load("s1").await.unwrap().unwrap();
        assert_eq!(stored.tokens.refresh_token.as_deref(), Some("rt-new"));
    }

    /// `base` rotated: version + 1, refresh token `rt`.
    fn rotated(base: &SessionRecord, rt: &str) -> SessionRecord {
        let mut next = base.clone();
        next.version += 1;
        next.tokens.refresh_token = Some(rt.to_owned());
        next
    }

    #[tokio::test]
    async fn a_refused_refresh_adopts_a_rotated_set_saved_during_the_grace() {
        let old = crate::testing::record("s1", "usr_a", None, "rt-old", unix_now());
        let memory = MemoryStore::new();
        assert!(memory.save(&old, None).await.unwrap());
        let store = Arc::new(FaultStore::new(Arc::new(memory.clone())));
        // The earlier holder's save lands after the third re-read.
        let saver = {
            let (store, next) = (Arc::clone(&store), rotated(&old, "rt-new"));
            tokio::spawn(async move {
                store.wait_for(StoreOp::Load, Answer::Yes, 3).await;
                assert!(store.inner().save(&next, Some(1)).await.unwrap());
            })
        };
        let grace = Duration::from_secs(10);
        let poll = Duration::from_millis(5);
        let started = Instant::now();
        let found = await_rotation(&*store, "s1", "rt-old", grace, poll)
            .await
            .unwrap()
            .expect("the rotated set");
        saver.await.unwrap();
        assert_eq!(found.tokens.refresh_token.as_deref(), Some("rt-new"));
        assert_eq!(found.version, 2);
        assert!(store.calls(StoreOp::Load) > 3);
        assert!(
            started.elapsed() < grace,
            "adopted at once, not at the deadline"
        );
    }

    #[tokio::test]
    async fn a_refused_refresh_ends_the_session_only_after_the_grace() {
        let old = crate::testing::record("s1", "usr_a", None, "rt-old", unix_now());
        let store = FaultStore::new(Arc::new(MemoryStore::new()));
        assert!(store.save(&old, None).await.unwrap());
        let (grace, poll) = (Duration::from_millis(120), Duration::from_millis(20));
        let started = Instant::now();
        let found = await_rotation(&store, "s1", "rt-old", grace, poll)
            .await
            .unwrap();
        assert!(found.is_none(), "still the refused set");
        assert!(started.elapsed() >= grace);
        // Backing off from 1 ms to `poll`: a handful of reads, not a busy loop.
        let loads = store.calls(StoreOp::Load);
        assert!((2..=20).contains(&loads), "{loads} loads");

        // No grace: one read, then the verdict.
        let before = store.calls(StoreOp::Load);
        let found = await_rotation(&store, "s1", "rt-old", Duration::ZERO, poll)
            .await
            .unwrap();
        assert!(found.is_none());
        assert_eq!(store.calls(StoreOp::Load), before + 1);
    }

    #[tokio::test]
    async fn a_refused_refresh_stops_waiting_for_a_gone_session_or_a_failing_store() {
        let old = crate::testing::record("s1", "usr_a", None, "rt-old", unix_now());
        let store = FaultStore::new(Arc::new(MemoryStore::new()));
        assert!(store.save(&old, None).await.unwrap());
        let grace = Duration::from_secs(10);
        let poll = Duration::from_millis(5);
        // The store fails from the second read on: 503, nothing decided.
        let failing = {
            let store = &store;
            async move {
                store.wait_for(StoreOp::Load, Answer::Yes, 1).await;
                store.fail_until_healed(StoreOp::Load);
            }
        };
        let (found, ()) =
            tokio::join!(await_rotation(&store, "s1", "rt-old", grace, poll), failing);
        assert!(
            matches!(found, Err(SessionError::Unavailable(_))),
            "{found:?}"
        );
        store.heal(StoreOp::Load);
        assert_eq!(store.inner().load("s1").await.unwrap(), Some(old));

        // Ended meanwhile (logout): over at once.
        store.delete("s1").await.unwrap();
        let started = Instant::now();
        let found = await_rotation(&store, "s1", "rt-old", grace, poll).await;
        assert!(matches!(found, Err(SessionError::Over)), "{found:?}");
        assert!(started.elapsed() < grace);
    }
}
