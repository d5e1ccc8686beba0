//! # authpi-idp-redis
//!
//! A [`SessionStore`] on Redis, shared by every instance of a service (the `redis` crate with
//! tokio and its connection manager, which reconnects by itself after Redis comes back).
//!
//! Layout under a key prefix (e.g. `authpi:`):
//!
//! | key | type | content |
//! |---|---|---|
//! | `{p}s:{id}` | hash | `version`, `record` (the [`SessionRecord`] JSON, whose `tokens` member is the Python SDK's `TokenSet` JSON), `sub`, `sid`; TTL until the session's `expires_at` |
//! | `{p}sub:{sub}`, `{p}sid:{sid}` | set | session ids; TTL the longest of its sessions' |
//! | `{p}jti:{jti}` | string | back-channel logout replay cache (`SET NX EX`) |
//! | `{p}lease:{sha256}` | string | refresh lease: the holder's fencing value (`SET NX PX`, renewed by its holder with a fenced `PEXPIRE`) |
//! | `{p}tx:{id}` | string | a login in progress, taken once with `GETDEL` |
//!
//! Every write is one command or one Lua script, so it happens whole or not at all: the
//! compare-and-set save checks the version, writes the record, its TTL and both indexes in one
//! script; a lease is renewed (compare-and-`PEXPIRE`) and released (compare-and-delete) by scripts
//! only while it holds our fencing value. Scripts touch keys they compute from the prefix, so this layout targets a single
//! Redis (or a primary with replicas), not Redis Cluster.
//!
//! Every failure (connection refused, timeout, …) is [`StoreError::Unavailable`]: the web layer
//! answers 503 and logs one line. Commands time out after [`RedisConfig::response_timeout`].
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

use authpi_idp_session::{BoxFuture, Lease, SessionRecord, SessionStore, StoreError};
use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SAVE: &str = r"
local cur = redis.call('HGET', KEYS[1], 'version')
if ARGV[1] == '' then
  if cur then return 0 end
else
  if cur ~= ARGV[1] then return 0 end
  local old = redis.call('HMGET', KEYS[1], 'sub', 'sid')
  if old[1] then redis.call('SREM', ARGV[5] .. 'sub:' .. old[1], ARGV[6]) end
  if old[2] and old[2] ~= '' then redis.call('SREM', ARGV[5] .. 'sid:' .. old[2], ARGV[6]) end
end
local ttl = tonumber(ARGV[4])
if ttl <= 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'record', ARGV[3], 'sub', ARGV[7], 'sid', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ttl)
local function index(k)
  redis.call('SADD', k, ARGV[6])
  if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
end
index(ARGV[5] .. 'sub:' .. ARGV[7])
if ARGV[8] ~= '' then index(ARGV[5] .. 'sid:' .. ARGV[8]) end
return 1
";

const DELETE: &str = r"
local old = redis.call('HMGET', KEYS[1], 'sub', 'sid')
if old[1] then redis.call('SREM', ARGV[1] .. 'sub:' .. old[1], ARGV[2]) end
if old[2] and old[2] ~= '' then redis.call('SREM', ARGV[1] .. 'sid:' .. old[2], ARGV[2]) end
return redis.call('DEL', KEYS[1])
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Connection settings of [`RedisStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisConfig {
    /// Deadline of one command (default 1 s).
    pub response_timeout: Duration,
    /// Deadline of one connection attempt (default 1 s).
    pub connection_timeout: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            response_timeout: Duration::from_secs(1),
            connection_timeout: Duration::from_secs(1),
        }
    }
}

/// The Redis session store. Cheap to clone (one multiplexed connection, shared).
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    save: redis::Script,
    delete: redis::Script,
    release: redis::Script,
    renew: redis::Script,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: &redis::RedisError) -> StoreError {
    // The error's category only: a Redis error message can echo a key.
    let what = if e.is_timeout() {
        "timeout".to_owned()
    } else if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else if e.is_io_error() || e.is_connection_dropped() {
        "connection lost".to_owned()
    } else {
        format!("{:?}", e.kind())
    };
    StoreError::Unavailable(format!("redis: {what}"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    /// A store at `url` (`redis://host:port/db`) whose keys all start with `prefix`. Connects
    /// lazily: the service starts even while Redis is down (its requests then get 503).
    ///
    /// # Errors
    /// The URL is invalid.
    pub fn new(url: &str, prefix: &str) -> Result<Self, StoreError> {
        Self::with_config(url, prefix, RedisConfig::default())
    }

    /// [`Self::new`] with connection settings.
    ///
    /// # Errors
    /// The URL is invalid.
    pub fn with_config(url: &str, prefix: &str, config: RedisConfig) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|_| StoreError::Unavailable("invalid Redis URL".to_owned()))?;
        let manager = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.response_timeout))
            .set_connection_timeout(Some(config.connection_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, manager)
            .map_err(|e| unavailable(&e))?;
        Ok(RedisStore {
            conn,
            prefix: prefix.to_owned(),
            save: redis::Script::new(SAVE),
            delete: redis::Script::new(DELETE),
            release: redis::Script::new(RELEASE),
            renew: redis::Script::new(RENEW),
        })
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `PING`: whether Redis answers now.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| unavailable(&e))
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    async fn find(&self, index: String) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn.smembers(&index).await.map_err(|e| unavailable(&e))?;
        let mut live = Vec::with_capacity(ids.len());
        for id in ids {
            let exists: bool = conn
                .exists(self.key("s", &id))
                .await
                .map_err(|e| unavailable(&e))?;
            if exists {
                live.push(id);
            } else {
                // Expired record: drop the stale index entry.
                let _: Result<i64, _> = conn.srem(&index, &id).await;
            }
        }
        Ok(live)
    }
}

impl SessionStore for RedisStore {
    fn load<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let raw: Option<String> = conn
                .hget(self.key("s", id), "record")
                .await
                .map_err(|e| unavailable(&e))?;
            match raw {
                None => Ok(None),
                Some(raw) => SessionRecord::from_json(raw.as_bytes()).map(Some),
            }
        })
    }

    fn save<'a>(
        &'a self,
        record: &'a SessionRecord,
        expected: Option<u64>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let ttl_ms = record
                .expires_at
                .saturating_mul(1000)
                .saturating_sub(now_ms());
            let written: i64 = self
                .save
                .key(self.key("s", &record.id))
                .arg(expected.map(|v| v.to_string()).unwrap_or_default())
                .arg(record.version.to_string())
                .arg(record.to_json())
                .arg(ttl_ms)
                .arg(&self.prefix)
                .arg(&record.id)
                .arg(&record.sub)
                .arg(record.sid.as_deref().unwrap_or(""))
                .invoke_async(&mut conn)
                .await
                .map_err(|e| unavailable(&e))?;
            Ok(written == 1)
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let _: i64 = self
                .delete
                .key(self.key("s", id))
                .arg(&self.prefix)
                .arg(id)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| unavailable(&e))?;
            Ok(())
        })
    }

    fn find_by_sid<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(self.find(self.key("sid", sid)))
    }

    fn find_by_sub<'a>(&'a self, sub: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(self.find(self.key("sub", sub)))
    }

    fn remember_jti<'a>(
        &'a self,
        jti: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let set: Option<String> = redis::cmd("SET")
                .arg(self.key("jti", jti))
                .arg("1")
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl))
                .query_async(&mut conn)
                .await
                .map_err(|e| unavailable(&e))?;
            Ok(set.is_some())
        })
    }

    fn has_jti<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            conn.exists(self.key("jti", jti))
                .await
                .map_err(|e| unavailable(&e))
        })
    }

    fn try_lease<'a>(
        &'a self,
        key: &'a str,
        fence: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let set: Option<String> = redis::cmd("SET")
                .arg(format!("{}{key}", self.prefix))
                .arg(fence)
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl))
                .query_async(&mut conn)
                .await
                .map_err(|e| unavailable(&e))?;
            Ok(set.is_some())
        })
    }

    fn renew_lease<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let renewed: i64 = self
                .renew
                .key(format!("{}{}", self.prefix, lease.key))
                .arg(&lease.fence)
                .arg(millis(ttl))
                .invoke_async(&mut conn)
                .await
                .map_err(|e| unavailable(&e))?;
            Ok(renewed == 1)
        })
    }

    fn release_lease<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let deleted: i64 = self
                .release
                .key(format!("{}{}", self.prefix, lease.key))
                .arg(&lease.fence)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| unavailable(&e))?;
            Ok(deleted == 1)
        })
    }

    fn put_transaction<'a>(
        &'a self,
        id: &'a str,
        data: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let _: () = redis::cmd("SET")
                .arg(self.key("tx", id))
                .arg(data)
                .arg("PX")
                .arg(millis(ttl))
                .query_async(&mut conn)
                .await
                .map_err(|e| unavailable(&e))?;
            Ok(())
        })
    }

    fn take_transaction<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            redis::cmd("GETDEL")
                .arg(self.key("tx", id))
                .query_async(&mut conn)
                .await
                .map_err(|e| unavailable(&e))
        })
    }
}

pub mod testing;
