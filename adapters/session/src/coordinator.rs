//! [`Sessions`]: session life cycle and the distributed single-flight refresh.

use crate::store::{Lease, SessionRecord, SessionStore, StoreError};
use crate::{random_token, unix_now};
use authpi_idp::{Agent, TokenSet, UnixTime};
use authpi_idp_async::{AsyncClient, CreateAgentOptions, Error as ClientError, Transport};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Tuning of [`Sessions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionsConfig {
    /// Absolute life of a session from login (default 12 h); the store's TTL follows it.
    pub session_ttl: Duration,
    /// Life of a refresh lease (default 15 s). A holder that dies frees it after this long;
    /// keep it above the transport's request deadline plus a store write.
    pub lease_ttl: Duration,
    /// Longest time a request waits for another holder's refresh (default 20 s), then
    /// [`SessionError::Timeout`].
    pub wait: Duration,
    /// How long the holder keeps retrying to save a rotated token set while the store fails
    /// (default 2 s): the old refresh token is spent, so these tokens are the session.
    pub persist_for: Duration,
    /// Longest store polling interval while waiting (default 20 ms; polls start at 1 ms and
    /// double up to it).
    pub poll: Duration,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            session_ttl: Duration::from_secs(12 * 3600),
            lease_ttl: Duration::from_secs(15),
            wait: Duration::from_secs(20),
            poll: Duration::from_millis(20),
            persist_for: Duration::from_secs(2),
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

    /// Sets [`Self::poll`].
    #[must_use]
    pub fn poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
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
                let result = self.hold(&lease, &record.id, &old).await;
                // A failed release frees itself at expiry.
                let _ = self.store.release_lease(&lease).await;
                return result;
            }
            if Instant::now() >= deadline {
                return Err(SessionError::Timeout);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.config.poll);
        }
    }

    async fn reload(&self, id: &str) -> Result<SessionRecord, SessionError> {
        // Gone while we waited: ended by logout or by another instance's verdict.
        self.store.load(id).await?.ok_or(SessionError::Over)
    }

    /// The lease holder's part.
    async fn hold(
        &self,
        _lease: &Lease,
        id: &str,
        old: &str,
    ) -> Result<(Agent, SessionRecord), SessionError> {
        // The previous holder may have written and released between our load and our lease.
        let current = self.reload(id).await?;
        if current.tokens.refresh_token.as_deref() != Some(old) {
            return self.build(current).await;
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
        match self.client.refresh(current.tokens.clone(), options).await {
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
                // rotated it (e.g. after our lease expired under a slow provider).
                let current = self.reload(id).await?;
                if current.tokens.refresh_token.as_deref() != Some(old) {
                    return self.build(current).await;
                }
                self.store.delete(id).await?;
                Err(SessionError::Over)
            }
            // The rotated set is carried in the error and kept by the client for its grace
            // period: the next request (same instance) that refreshes the old set gets it back
            // through `on_refresh` and saves it.
            Err(ClientError::Callback { source, .. }) => {
                Err(SessionError::Unavailable(StoreError::Unavailable(format!(
                    "the rotated tokens could not be saved ({source})"
                ))))
            }
            Err(e) => Err(SessionError::Provider(e)),
        }
    }
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
            Ok(false) => match store.load(&base.id).await? {
                Some(now) if now.tokens.refresh_token == old => base = now,
                Some(_) => {
                    return Err(StoreError::Unavailable(
                        "the session was rotated by another holder".to_owned(),
                    ));
                }
                None => {
                    return Err(StoreError::Unavailable(
                        "the session ended during the refresh".to_owned(),
                    ));
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
