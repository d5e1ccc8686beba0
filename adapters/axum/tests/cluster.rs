//! Several app instances (separate axum servers, separate clients) on one Redis and one issuer.

mod common;

use authpi_idp_axum::{SessionStore, SessionsConfig};
use authpi_idp_redis::RedisStore;
use authpi_idp_redis::testing::{PrivateRedis, shared_url, unique_prefix};
use authpi_idp_session::testing::{Answer, FaultStore, StoreOp};
use authpi_idp_testkit::Served;
use common::{Browser, expire, instance, issuer};
use std::sync::Arc;
use std::time::Duration;

fn redis(test: &str) -> Arc<dyn SessionStore> {
    Arc::new(RedisStore::new(&shared_url(), &unique_prefix(test)).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_requests_on_four_instances_refresh_an_expired_session_once() {
    let served = issuer();
    let store = redis("sixty_four");
    let mut instances = Vec::new();
    for _ in 0..4 {
        instances.push(instance(&served, Arc::clone(&store), SessionsConfig::default()).await);
    }
    let mut browser = Browser::new();
    let landed = browser.login(&instances[0], "").await;
    assert_eq!(landed.status, 303, "{}", landed.body);
    let id = browser.session().unwrap();
    let before = expire(&*store, &id).await;
    let old_rt = before.tokens.refresh_token.clone().unwrap();
    let base = served.stats();

    let mut tasks = Vec::new();
    for i in 0..64 {
        let mut b = browser.clone();
        let url = instances[i % 4].url("/me");
        tasks.push(tokio::spawn(async move { b.get(&url).await }));
    }
    for t in tasks {
        let page = t.await.unwrap();
        assert_eq!(page.status, 200, "{}", page.body);
        let v: serde_json::Value = serde_json::from_str(&page.body).unwrap();
        assert_eq!(v["id"], "usr_alice");
    }
    let after = served.stats();
    assert_eq!(
        after.refresh_requests - base.refresh_requests,
        1,
        "one token request"
    );
    assert_eq!(after.token_requests - base.token_requests, 1);
    let stored = store.load(&id).await.unwrap().unwrap();
    assert_eq!(stored.version, before.version + 1);
    let new_rt = stored.tokens.refresh_token.clone().unwrap();
    assert_ne!(new_rt, old_rt, "the store holds the rotated set");
    assert!(stored.tokens.expires_at > authpi_idp_session::unix_now());
    // The rotated set works on every instance without another refresh.
    for inst in &instances {
        assert_eq!(browser.get(&inst.url("/me")).await.status, 200);
    }
    assert_eq!(served.stats().refresh_requests, after.refresh_requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holder_that_died_before_sending_is_replaced_after_the_lease_expires() {
    let served = issuer();
    let store = redis("dead_holder");
    let config = SessionsConfig::default()
        .lease_ttl(Duration::from_millis(800))
        .wait(Duration::from_secs(10));
    let a = instance(&served, Arc::clone(&store), config).await;
    let b = instance(&served, Arc::clone(&store), config).await;
    let mut browser = Browser::new();
    browser.login(&a, "").await;
    let id = browser.session().unwrap();
    let record = expire(&*store, &id).await;
    // A holder took the lease and died: it never sends and never releases.
    let key = authpi_idp_session::lease_key(record.tokens.refresh_token.as_deref().unwrap());
    assert!(
        store
            .try_lease(&key, "dead-holder", Duration::from_millis(800))
            .await
            .unwrap()
    );
    let base = served.stats();
    let (mut b1, mut b2) = (browser.clone(), browser.clone());
    let (ua, ub) = (a.url("/me"), b.url("/me"));
    let (pa, pb) = tokio::join!(async move { b1.get(&ua).await }, async move {
        b2.get(&ub).await
    });
    assert_eq!(pa.status, 200, "{}", pa.body);
    assert_eq!(pb.status, 200, "{}", pb.body);
    assert_eq!(served.stats().refresh_requests - base.refresh_requests, 1);
    let stored = store.load(&id).await.unwrap().unwrap();
    assert_eq!(stored.version, record.version + 1);
    assert_ne!(stored.tokens.refresh_token, record.tokens.refresh_token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_rereads_the_store_before_ending_the_session() {
    // Instance A read the session just before B rotated it (e.g. A's lease expired under a
    // slow provider): A refreshes with the spent token, gets invalid_grant, and must answer
    // with B's rotated set instead of logging the user out.
    let served = issuer();
    let store = redis("reread");
    let b = instance(&served, Arc::clone(&store), SessionsConfig::default()).await;
    let mut browser = Browser::new();
    browser.login(&b, "").await;
    let id = browser.session().unwrap();
    let stale = expire(&*store, &id).await;
    assert_eq!(browser.get(&b.url("/me")).await.status, 200); // B rotates
    let rotated = store.load(&id).await.unwrap().unwrap();
    assert_ne!(rotated.tokens.refresh_token, stale.tokens.refresh_token);
    let base = served.stats();
    // A sees the stale record on its first load, its lease re-check and its holder re-check.
    let view = FaultStore::new(Arc::clone(&store));
    view.stale_loads(stale, 3);
    let a = instance(&served, Arc::new(view), SessionsConfig::default()).await;
    let page = browser.get(&a.url("/me")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let s = served.stats();
    assert_eq!(
        s.refresh_requests - base.refresh_requests,
        1,
        "A did send the spent token"
    );
    assert_eq!(
        store.load(&id).await.unwrap().unwrap(),
        rotated,
        "B's set is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_mid_traffic_answers_503_and_recovers_after_restart() {
    let served = issuer();
    let mut server = PrivateRedis::start();
    let store: Arc<dyn SessionStore> = Arc::new(RedisStore::new(&server.url(), "t:").unwrap());
    let a = instance(&served, Arc::clone(&store), SessionsConfig::default()).await;
    let b = instance(&served, Arc::clone(&store), SessionsConfig::default()).await;
    let mut browser = Browser::new();
    browser.login(&a, "").await;
    let id = browser.session().unwrap();
    let before = store.load(&id).await.unwrap().unwrap();
    assert_eq!(browser.get(&b.url("/me")).await.status, 200);

    server.stop();
    for inst in [&a, &b] {
        for path in ["/me", "/page", "/orgs/org_acme/projects", "/login"] {
            let page = browser.get(&inst.url(path)).await;
            assert_eq!(page.status, 503, "{path}: {}", page.body);
            assert_eq!(page.headers["retry-after"], "1");
        }
    }
    // A due refresh cannot start without the store: nothing is sent, nothing half-written.
    let base = served.stats();
    server.restart();
    let mut back = false;
    for _ in 0..100 {
        if browser.get(&a.url("/me")).await.status == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back, "no recovery after restart");
    assert_eq!(browser.get(&b.url("/me")).await.status, 200);
    let after = store.load(&id).await.unwrap().unwrap();
    assert_eq!(after, before, "the record survived whole");
    assert_eq!(served.stats().token_requests, base.token_requests);

    // An expired session while Redis is down: 503, and the refresh token is not spent.
    expire(&*store, &id).await;
    let expired = store.load(&id).await.unwrap().unwrap();
    server.stop();
    assert_eq!(browser.get(&a.url("/me")).await.status, 503);
    assert_eq!(
        served.stats().refresh_requests,
        base.refresh_requests,
        "not spent"
    );
    server.restart();
    let mut ok = false;
    for _ in 0..100 {
        if browser.get(&b.url("/me")).await.status == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok);
    let rotated = store.load(&id).await.unwrap().unwrap();
    assert_eq!(rotated.version, expired.version + 1);
    assert_eq!(served.stats().refresh_requests, base.refresh_requests + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_tokens_survive_a_store_outage_during_the_refresh() {
    // Redis dies while the holder's refresh request is at the provider (the old refresh token
    // is being spent) and comes back: the holder keeps the rotated set and saves it as soon as
    // the store answers; the request succeeds and nothing is lost or written half.
    let served = issuer();
    let mut server = PrivateRedis::start();
    let prefix = "t:";
    let store: Arc<dyn SessionStore> = Arc::new(RedisStore::new(&server.url(), prefix).unwrap());
    let config = SessionsConfig::default().persist_for(Duration::from_secs(20));
    let a = instance(&served, Arc::clone(&store), config).await;
    let mut browser = Browser::new();
    browser.login(&a, "").await;
    let id = browser.session().unwrap();
    let expired = expire(&*store, &id).await;
    let key = format!(
        "{prefix}{}",
        authpi_idp_session::lease_key(expired.tokens.refresh_token.as_deref().unwrap())
    );
    served.set_stall("/token", Duration::from_millis(1500));
    let base = served.stats();
    let url = a.url("/me");
    let mut b = browser.clone();
    let request = tokio::spawn(async move { b.get(&url).await });
    // Wait until the holder has its lease (it sends right after one more store read).
    let redis = redis::Client::open(server.url().as_str()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    loop {
        let held: bool = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if held {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.stop();
    tokio::time::sleep(Duration::from_millis(1700)).await; // the provider has answered by now
    server.restart();
    let page = request.await.unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(served.stats().refresh_requests - base.refresh_requests, 1);
    let stored = store.load(&id).await.unwrap().unwrap();
    assert_eq!(stored.version, expired.version + 1);
    assert_ne!(stored.tokens.refresh_token, expired.tokens.refresh_token);
    served.set_stall("/token", Duration::ZERO);
    assert_eq!(browser.get(&a.url("/me")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_record_means_log_in_again_and_can_be_logged_out() {
    let served = issuer();
    let url = shared_url();
    let prefix = unique_prefix("corrupt");
    let store: Arc<dyn SessionStore> = Arc::new(RedisStore::new(&url, &prefix).unwrap());
    let a = instance(&served, Arc::clone(&store), SessionsConfig::default()).await;
    let mut browser = Browser::new();
    browser.login(&a, "").await;
    let id = browser.session().unwrap();
    let redis = redis::Client::open(url.as_str()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{prefix}s:{id}");
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("record")
        .arg("{\"not\":\"a session\"}")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(browser.clone().get(&a.url("/me")).await.status, 401);
    let page = browser.clone().get(&a.url("/page")).await;
    assert_eq!(page.status, 303, "to the login");
    let origin = format!("http://{}", a.addr);
    let out = browser
        .post(&a.url("/logout"), &[("origin", origin.as_str())])
        .await;
    assert_eq!(out.status, 303, "{}", out.body);
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0, "deleted");
}

/// Awaits `event`, failing the test if it has not happened within 10 s.
async fn within(event: impl std::future::Future<Output = ()>, what: &str) {
    if tokio::time::timeout(Duration::from_secs(10), event)
        .await
        .is_err()
    {
        panic!("{what}: not within 10 s");
    }
}

/// A store that fails, refuses or observes calls as the test arms it, around `inner`.
fn faults(inner: &Arc<dyn SessionStore>) -> Arc<FaultStore> {
    Arc::new(FaultStore::new(Arc::clone(inner)))
}

/// Two instances, A and B, each seeing the shared Redis store through its own [`FaultStore`]
/// (`pa`, `pb`), with a session logged in on A whose access token is expired (a refresh is due).
struct TwoInstances {
    store: Arc<dyn SessionStore>,
    pa: Arc<FaultStore>,
    pb: Arc<FaultStore>,
    a: common::Instance,
    b: common::Instance,
    browser: Browser,
    /// The session id.
    id: String,
    /// The record as [`expire`] left it.
    expired: authpi_idp_session::SessionRecord,
}

impl TwoInstances {
    async fn start(served: &Served, test: &str, config: SessionsConfig) -> TwoInstances {
        let store = redis(test);
        let (pa, pb) = (faults(&store), faults(&store));
        let a = instance(served, Arc::clone(&pa) as Arc<dyn SessionStore>, config).await;
        let b = instance(served, Arc::clone(&pb) as Arc<dyn SessionStore>, config).await;
        let mut browser = Browser::new();
        browser.login(&a, "").await;
        let id = browser.session().unwrap();
        let expired = expire(&*store, &id).await;
        TwoInstances {
            store,
            pa,
            pb,
            a,
            b,
            browser,
            id,
            expired,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_slower_than_the_lease_ttl_keeps_its_lease_and_refreshes_alone() {
    // The provider takes five lease TTLs to answer A's refresh. A renews its lease while it
    // waits, so B, asked for the same session meanwhile, waits for A's rotated set instead of
    // taking an expired lease and spending the refresh token a second time.
    let served = issuer();
    let config = SessionsConfig::default()
        .lease_ttl(Duration::from_millis(300))
        .wait(Duration::from_secs(10));
    let t = TwoInstances::start(&served, "slow_holder", config).await;
    let (store, probe, a, b, browser, id, expired) =
        (t.store, t.pa, t.a, t.b, t.browser, t.id, t.expired);
    served.set_stall("/token", Duration::from_millis(1500));
    let base = served.stats();
    let (url, mut ba) = (a.url("/me"), browser.clone());
    let at_a = tokio::spawn(async move { ba.get(&url).await });
    // A holds the lease and is about to send.
    probe.wait_for(StoreOp::TryLease, Answer::Yes, 1).await;
    let at_b = browser.clone().get(&b.url("/me")).await;
    let at_a = at_a.await.unwrap();
    assert_eq!(at_a.status, 200, "{}", at_a.body);
    assert_eq!(at_b.status, 200, "{}", at_b.body);
    assert_eq!(
        served.stats().refresh_requests - base.refresh_requests,
        1,
        "the refresh token was spent once"
    );
    let stored = store.load(&id).await.unwrap().unwrap();
    assert_eq!(stored.version, expired.version + 1);
    assert_ne!(stored.tokens.refresh_token, expired.tokens.refresh_token);
    served.set_stall("/token", Duration::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_tokens_that_cannot_be_saved_keep_the_lease_until_they_are() {
    // A refreshes but cannot save (its saves fail): A answers 503 yet keeps the lease, so B
    // does not spend the dead refresh token (invalid_grant, then the session deleted); once
    // the store takes writes again, A's detached task saves the rotated set and B serves it.
    let served = issuer();
    let config = SessionsConfig::default()
        .lease_ttl(Duration::from_millis(300))
        .wait(Duration::from_secs(10))
        .poll(Duration::from_millis(20))
        .persist_for(Duration::from_millis(100));
    let t = TwoInstances::start(&served, "unsaved", config).await;
    let (store, pa, pb, a, b, browser, id, expired) =
        (t.store, t.pa, t.pb, t.a, t.b, t.browser, t.id, t.expired);
    let base = served.stats();
    pa.fail_until_healed(StoreOp::Save);
    let at_a = browser.clone().get(&a.url("/me")).await;
    assert_eq!(at_a.status, 503, "{}", at_a.body);
    assert_eq!(served.stats().refresh_requests - base.refresh_requests, 1);

    let refused = pb.answers(StoreOp::TryLease, Answer::No);
    let (url, mut bb) = (b.url("/me"), browser.clone());
    let mut at_b = tokio::spawn(async move { bb.get(&url).await });
    // B polls at most every 20 ms (`poll`): 40 refusals of the lease span more than two lease
    // TTLs, so A's lease outlived its TTL (it is renewed while the save is retried).
    tokio::select! {
        page = &mut at_b => {
            let page = page.unwrap();
            panic!("B answered {} before A could save: {}", page.status, page.body);
        }
        () = pb.wait_for(StoreOp::TryLease, Answer::No, refused + 40) => {}
    }
    pa.heal(StoreOp::Save);
    let at_b = at_b.await.unwrap();
    assert_eq!(at_b.status, 200, "{}", at_b.body);
    assert_eq!(
        served.stats().refresh_requests - base.refresh_requests,
        1,
        "the dead refresh token was not sent again"
    );
    let stored = store.load(&id).await.unwrap().unwrap();
    assert_eq!(stored.version, expired.version + 1);
    assert_ne!(stored.tokens.refresh_token, expired.tokens.refresh_token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_set_saved_after_an_outage_longer_than_the_lease_survives_a_second_holder() {
    // AuthPI answers a replayed refresh token with invalid_grant and keeps the grant: the
    // rotated set A saved goes on refreshing.
    outage_longer_than_the_lease(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_such_an_outage_a_provider_that_revokes_on_replay_ends_the_session_at_the_next_refresh()
 {
    // A provider that revokes the grant on replay (oidc-provider) has killed A's rotated set
    // too when B replayed: the session is kept until its access token expires, then the next
    // refresh ends it (the documented limit, crate docs "What the lease survives").
    outage_longer_than_the_lease(true).await;
}

/// A holds the lease and refreshes (the provider rotates the refresh token); then A's view of
/// the store fails its saves and lease renewals for longer than the lease TTL. B's view is
/// fine: B, asked for the session, takes the expired lease, refreshes with the spent token
/// (invalid_grant) and re-reads the store: still the old set. A's store comes back a moment
/// later and A saves the rotated set. The user must not be logged out by B; what the next
/// refresh does depends on whether the provider revoked the grant on B's replay.
async fn outage_longer_than_the_lease(replay_revokes: bool) {
    let served = common::issuer_where_replay_revokes(replay_revokes);
    let config = SessionsConfig::default()
        .lease_ttl(Duration::from_millis(300))
        .wait(Duration::from_secs(10))
        .persist_for(Duration::from_secs(10));
    let test = if replay_revokes {
        "outage_revoking"
    } else {
        "outage_authpi"
    };
    let t = TwoInstances::start(&served, test, config).await;
    let (store, pa, pb, a, b, mut browser, id, expired) =
        (t.store, t.pa, t.pb, t.a, t.b, t.browser, t.id, t.expired);
    let base = served.stats();

    // A's store outage: saves and renewals fail until healed (A took its lease before).
    pa.fail_until_healed(StoreOp::Save)
        .fail_until_healed(StoreOp::RenewLease);
    let (url, mut ba) = (a.url("/me"), browser.clone());
    let at_a = tokio::spawn(async move { ba.get(&url).await });
    // A's first save of the rotated set failed: the provider has rotated the refresh token.
    within(
        pa.wait_for(StoreOp::Save, Answer::Failed, 1),
        "A's failed save",
    )
    .await;
    assert_eq!(served.stats().refresh_requests - base.refresh_requests, 1);

    let loads = pb.answers(StoreOp::Load, Answer::Yes);
    let (url, mut bb) = (b.url("/me"), browser.clone());
    let at_b = tokio::spawn(async move { bb.get(&url).await });
    // B takes A's lease once it has expired (A could not renew it).
    within(pb.wait_for(StoreOp::TryLease, Answer::Yes, 1), "B's lease").await;
    // B's loads so far: one for the request, one before each lease attempt. As the holder it
    // loads twice more: its re-check before sending, then its first re-read after the
    // provider's invalid_grant — wait for that one.
    let attempts = pb.calls(StoreOp::TryLease);
    let reread = pb.wait_for(StoreOp::Load, Answer::Yes, loads + 1 + attempts + 2);
    within(reread, "B's re-read after invalid_grant").await;
    assert_eq!(
        served.stats().refresh_requests - base.refresh_requests,
        2,
        "B sent the spent refresh token"
    );
    // A's store comes back a moment after B's invalid_grant (the outage's length, not a
    // synchronisation: A's save loop retries every 50 ms on its own).
    tokio::time::sleep(Duration::from_millis(150)).await;
    pa.heal(StoreOp::Save).heal(StoreOp::RenewLease);

    let at_b = at_b.await.unwrap();
    assert!(
        at_b.status == 200 || at_b.status == 503,
        "B must keep the session (or answer a retryable 503), not log out: {} {}",
        at_b.status,
        at_b.body
    );
    assert!(
        !at_b
            .set_cookies
            .iter()
            .any(|c| c.starts_with("authpi-session=;")),
        "B cleared the session cookie: {:?}",
        at_b.set_cookies
    );
    let at_a = at_a.await.unwrap();
    assert_eq!(at_a.status, 200, "{}", at_a.body);

    let stored = store
        .load(&id)
        .await
        .unwrap()
        .expect("the session survived");
    assert_eq!(stored.version, expired.version + 1, "A's rotated set");
    assert_ne!(stored.tokens.refresh_token, expired.tokens.refresh_token);
    assert!(stored.tokens.expires_at > authpi_idp_session::unix_now());
    if at_b.status == 200 {
        let v: serde_json::Value = serde_json::from_str(&at_b.body).unwrap();
        assert_eq!(v["id"], "usr_alice");
        assert_eq!(
            v["version"], stored.version,
            "B answered with A's rotated set"
        );
    }
    // The session works on both instances without another refresh: the old refresh token
    // reached the provider twice (A's rotation, B's expected invalid_grant), the rotated one
    // never.
    for inst in [&a, &b] {
        let page = browser.get(&inst.url("/me")).await;
        assert_eq!(page.status, 200, "{}", page.body);
    }
    assert_eq!(served.stats().refresh_requests - base.refresh_requests, 2);

    // The next refresh, with A's rotated token.
    let again = expire(&*store, &id).await;
    let page = browser.get(&b.url("/me")).await;
    assert_eq!(served.stats().refresh_requests - base.refresh_requests, 3);
    if replay_revokes {
        assert_eq!(
            page.status, 401,
            "the grant died with B's replay: {}",
            page.body
        );
        assert!(store.load(&id).await.unwrap().is_none(), "session ended");
    } else {
        assert_eq!(page.status, 200, "A's rotated set refreshes: {}", page.body);
        let now = store.load(&id).await.unwrap().expect("kept");
        assert_eq!(now.version, again.version + 1);
        assert_ne!(now.tokens.refresh_token, stored.tokens.refresh_token);
    }
}
