//! The [`SessionStore`] trait, the session record and the in-memory store.

use authpi_idp::TokenSet;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A boxed, `Send` future (the store trait is object safe: `Arc<dyn SessionStore>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One logged-in browser session.
///
/// Its JSON form is `{"id", "sub", "sid", "created_at", "expires_at", "version", "tokens"}`
/// where `tokens` is exactly the Python SDK's `TokenSet` JSON, so a Python service can read the
/// same store. `Debug` never shows a token or the session id.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The session id (the cookie value): 256 bits from the OS CSPRNG.
    pub id: String,
    /// The user (`sub` of the ID token).
    pub sub: String,
    /// The provider's session id (`sid` claim), used by back-channel logout.
    pub sid: Option<String>,
    /// When the session was created (Unix seconds).
    pub created_at: u64,
    /// When the session ends whatever happens (Unix seconds); the store's TTL follows it.
    pub expires_at: u64,
    /// Compare-and-set version: 1 when created, +1 on every save.
    pub version: u64,
    /// The tokens.
    pub tokens: TokenSet,
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("id", &"[redacted]")
            .field("sub", &self.sub)
            .field("sid", &self.sid.as_ref().map(|_| "[redacted]"))
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("version", &self.version)
            .field("tokens", &self.tokens)
            .finish()
    }
}

impl SessionRecord {
    /// The JSON form.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses the JSON form; the token set is read by its strict `Deserialize` (a member named
    /// twice is refused).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the record cannot be read.
    pub fn from_json(bytes: &[u8]) -> Result<SessionRecord, StoreError> {
        #[derive(Deserialize)]
        struct Raw {
            id: String,
            sub: String,
            sid: Option<String>,
            created_at: u64,
            expires_at: u64,
            version: u64,
            // Read straight from the record's bytes, so the token set's strict rules (a
            // member named twice refused) see the document itself, not a `Value` of it.
            tokens: TokenSet,
        }
        let raw: Raw = serde_json::from_slice(bytes).map_err(|_| StoreError::Corrupt)?;
        let tokens = raw.tokens;
        Ok(SessionRecord {
            id: raw.id,
            sub: raw.sub,
            sid: raw.sid,
            created_at: raw.created_at,
            expires_at: raw.expires_at,
            version: raw.version,
            tokens,
        })
    }

    /// Seconds left before [`Self::expires_at`] (zero once past).
    #[must_use]
    pub fn ttl(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }
}

/// Why the store could not answer. Never contains a key, a token or a session id.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The store is unreachable or failed (the caller answers 503).
    Unavailable(String),
    /// A stored value could not be read.
    Corrupt,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable(why) => write!(f, "session store unavailable: {why}"),
            StoreError::Corrupt => f.write_str("a stored session record could not be read"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A held refresh lease: the key and the fencing value only its holder knows.
#[derive(Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lease key (derived from the refresh token's SHA-256, never the token).
    pub key: String,
    /// The fencing value (128 random bits): release deletes the lease only if it still holds it.
    pub fence: String,
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Where sessions live. Every method is atomic on its own: a failed call changes nothing.
///
/// Implementations: [`MemoryStore`] (one process) and `authpi-idp-redis` (many instances).
pub trait SessionStore: Send + Sync + 'static {
    /// The record of session `id`, if it exists and has not expired.
    fn load<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>>;

    /// Writes `record` if the stored version is `expected` (`None`: no record may exist),
    /// updating the `sid` / `sub` indexes and the TTL (until `record.expires_at`) in the same
    /// atomic step. Returns `false` (nothing written) on a version conflict.
    fn save<'a>(
        &'a self,
        record: &'a SessionRecord,
        expected: Option<u64>,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Deletes session `id` and its index entries (no error when absent).
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The ids of the live sessions with provider session id `sid`.
    fn find_by_sid<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>>;

    /// The ids of the live sessions of user `sub`.
    fn find_by_sub<'a>(&'a self, sub: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>>;

    /// Records a `jti` for `ttl`; `true` the first time, `false` when it was already seen
    /// (a replay).
    fn remember_jti<'a>(
        &'a self,
        jti: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Whether `jti` was recorded by [`Self::remember_jti`] and has not expired.
    fn has_jti<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Takes the lease `key` for `ttl` with the fencing value `fence` if nobody holds it.
    fn try_lease<'a>(
        &'a self,
        key: &'a str,
        fence: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Extends `lease` to expire `ttl` from now, only if its fencing value is still the stored
    /// one (Redis: `GET` == fence then `PEXPIRE`, in one script); `true` if renewed, `false`
    /// when it expired or another holder has it. The holder calls it while it works, so a
    /// slow refresh keeps its lease and only a holder that stopped renewing (died) loses it.
    fn renew_lease<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Releases `lease` only if its fencing value is still the stored one; `true` if released.
    fn release_lease<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Stores an authorization transaction (login in progress) for `ttl`.
    fn put_transaction<'a>(
        &'a self,
        id: &'a str,
        data: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Removes and returns an authorization transaction: it can be taken once.
    fn take_transaction<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>>;
}

#[derive(Default)]
struct Memory {
    sessions: HashMap<String, SessionRecord>,
    by_sid: HashMap<String, HashSet<String>>,
    by_sub: HashMap<String, HashSet<String>>,
    jtis: HashMap<String, Instant>,
    leases: HashMap<String, (String, Instant)>,
    transactions: HashMap<String, (String, Instant)>,
}

impl Memory {
    fn unindex(&mut self, record: &SessionRecord) {
        if let Some(sid) = &record.sid
            && let Some(set) = self.by_sid.get_mut(sid)
        {
            set.remove(&record.id);
            if set.is_empty() {
                self.by_sid.remove(sid);
            }
        }
        if let Some(set) = self.by_sub.get_mut(&record.sub) {
            set.remove(&record.id);
            if set.is_empty() {
                self.by_sub.remove(&record.sub);
            }
        }
    }

    fn live(&mut self, id: &str, now: u64) -> Option<&SessionRecord> {
        let expired = self.sessions.get(id).is_some_and(|r| r.expires_at <= now);
        if expired && let Some(r) = self.sessions.remove(id) {
            self.unindex(&r);
        }
        self.sessions.get(id)
    }

    fn purge(&mut self, now: Instant) {
        self.jtis.retain(|_, until| *until > now);
        self.leases.retain(|_, (_, until)| *until > now);
        self.transactions.retain(|_, (_, until)| *until > now);
    }
}

/// A store in this process's memory (tests, single-instance services). Expired entries are
/// dropped lazily.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Memory>>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Memory> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl SessionStore for MemoryStore {
    fn load<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        let now = crate::unix_now();
        ready(Ok(self.lock().live(id, now).cloned()))
    }

    fn save<'a>(
        &'a self,
        record: &'a SessionRecord,
        expected: Option<u64>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let now = crate::unix_now();
        let mut m = self.lock();
        let current = m.live(&record.id, now).map(|r| r.version);
        if current != expected {
            return ready(Ok(false));
        }
        if let Some(old) = m.sessions.remove(&record.id) {
            m.unindex(&old);
        }
        if record.expires_at > now {
            if let Some(sid) = &record.sid {
                m.by_sid
                    .entry(sid.clone())
                    .or_default()
                    .insert(record.id.clone());
            }
            m.by_sub
                .entry(record.sub.clone())
                .or_default()
                .insert(record.id.clone());
            m.sessions.insert(record.id.clone(), record.clone());
        }
        ready(Ok(true))
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut m = self.lock();
        if let Some(old) = m.sessions.remove(id) {
            m.unindex(&old);
        }
        ready(Ok(()))
    }

    fn find_by_sid<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        let now = crate::unix_now();
        let mut m = self.lock();
        let ids: Vec<String> = m
            .by_sid
            .get(sid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        let live = ids.into_iter().filter(|id| m.live(id, now).is_some());
        ready(Ok(live.collect()))
    }

    fn find_by_sub<'a>(&'a self, sub: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        let now = crate::unix_now();
        let mut m = self.lock();
        let ids: Vec<String> = m
            .by_sub
            .get(sub)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        let live = ids.into_iter().filter(|id| m.live(id, now).is_some());
        ready(Ok(live.collect()))
    }

    fn remember_jti<'a>(
        &'a self,
        jti: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let now = Instant::now();
        let mut m = self.lock();
        m.purge(now);
        if m.jtis.contains_key(jti) {
            return ready(Ok(false));
        }
        m.jtis
            .insert(jti.to_owned(), crate::instant_after(now, ttl));
        ready(Ok(true))
    }

    fn has_jti<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut m = self.lock();
        m.purge(Instant::now());
        ready(Ok(m.jtis.contains_key(jti)))
    }

    fn try_lease<'a>(
        &'a self,
        key: &'a str,
        fence: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let now = Instant::now();
        let mut m = self.lock();
        m.purge(now);
        if m.leases.contains_key(key) {
            return ready(Ok(false));
        }
        m.leases.insert(
            key.to_owned(),
            (fence.to_owned(), crate::instant_after(now, ttl)),
        );
        ready(Ok(true))
    }

    fn renew_lease<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let now = Instant::now();
        let mut m = self.lock();
        m.purge(now);
        let held = m.leases.get_mut(&lease.key);
        let ours = match held {
            Some((fence, until)) if *fence == lease.fence => {
                *until = now + ttl;
                true
            }
            _ => false,
        };
        ready(Ok(ours))
    }

    fn release_lease<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut m = self.lock();
        m.purge(Instant::now());
        let ours = m
            .leases
            .get(&lease.key)
            .is_some_and(|(fence, _)| *fence == lease.fence);
        if ours {
            m.leases.remove(&lease.key);
        }
        ready(Ok(ours))
    }

    fn put_transaction<'a>(
        &'a self,
        id: &'a str,
        data: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let now = Instant::now();
        let mut m = self.lock();
        m.purge(now);
        m.transactions.insert(
            id.to_owned(),
            (data.to_owned(), crate::instant_after(now, ttl)),
        );
        ready(Ok(()))
    }

    fn take_transaction<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        let mut m = self.lock();
        m.purge(Instant::now());
        ready(Ok(m.transactions.remove(id).map(|(data, _)| data)))
    }
}
