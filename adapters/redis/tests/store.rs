//! The store suite on Redis, and what only a real server can show.

use authpi_idp_redis::RedisStore;
use authpi_idp_redis::testing::{PrivateRedis, shared_url, unique_prefix};
use authpi_idp_session::{SessionStore, StoreError};

#[tokio::test]
async fn redis_store_passes_the_store_suite() {
    let store = RedisStore::new(&shared_url(), &unique_prefix("suite")).unwrap();
    authpi_idp_session::testing::check_store(&store).await;
}

#[tokio::test]
async fn the_record_ttl_follows_the_session_and_the_json_is_python_compatible() {
    let url = shared_url();
    let prefix = unique_prefix("ttl");
    let store = RedisStore::new(&url, &prefix).unwrap();
    let now = authpi_idp_session::unix_now();
    let r = authpi_idp_session::testing::record("s1", "usr_a", Some("sid1"), "rt", now);
    assert!(store.save(&r, None).await.unwrap());
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{prefix}s:s1");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((3590..=3600).contains(&ttl), "ttl {ttl}");
    for index in [format!("{prefix}sid:sid1"), format!("{prefix}sub:usr_a")] {
        let ttl: i64 = redis::cmd("TTL")
            .arg(&index)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!((3590..=3600).contains(&ttl), "{index} ttl {ttl}");
    }
    let raw: String = redis::cmd("HGET")
        .arg(&key)
        .arg("record")
        .query_async(&mut conn)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let tokens = serde_json::to_string(&v["tokens"]).unwrap();
    assert_eq!(
        authpi_idp::TokenSet::from_json(tokens.as_bytes()).unwrap(),
        r.tokens
    );
    store.delete("s1").await.unwrap();
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0);
}

#[tokio::test]
async fn a_stopped_redis_gives_unavailable_and_a_restarted_one_recovers() {
    let mut server = PrivateRedis::start();
    let store = RedisStore::new(&server.url(), "p:").unwrap();
    let now = authpi_idp_session::unix_now();
    let r = authpi_idp_session::testing::record("s1", "usr_a", None, "rt", now);
    assert!(store.save(&r, None).await.unwrap());
    server.stop();
    for _ in 0..3 {
        assert!(matches!(
            store.load("s1").await,
            Err(StoreError::Unavailable(_))
        ));
        let mut next = r.clone();
        next.version = 2;
        assert!(matches!(
            store.save(&next, Some(1)).await,
            Err(StoreError::Unavailable(_))
        ));
    }
    server.restart();
    // The connection manager reconnects on its own; the record survived whole.
    let mut ok = false;
    for _ in 0..100 {
        if store.ping().await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ok, "no recovery after restart");
    assert_eq!(store.load("s1").await.unwrap(), Some(r.clone()));
    let mut next = r.clone();
    next.version = 2;
    assert!(store.save(&next, Some(1)).await.unwrap());
}
