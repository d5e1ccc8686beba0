//! Back-channel logout (OIDC Back-Channel Logout 1.0) across instances sharing one Redis.

mod common;

use authpi_idp_axum::{SessionStore, SessionsConfig};
use authpi_idp_redis::RedisStore;
use authpi_idp_redis::testing::{shared_url, unique_prefix};
use authpi_idp_session::testing::{FaultStore, StoreOp};
use authpi_idp_testkit::{Client, LogoutTokenSpec, Served};
use common::{Browser, Instance, instance, issuer};
use std::sync::Arc;

async fn cluster(test: &str) -> (Served, Arc<dyn SessionStore>, Vec<Instance>) {
    let served = issuer();
    let store: Arc<dyn SessionStore> =
        Arc::new(RedisStore::new(&shared_url(), &unique_prefix(test)).unwrap());
    let mut instances = Vec::new();
    for _ in 0..4 {
        instances.push(instance(&served, Arc::clone(&store), SessionsConfig::default()).await);
    }
    // The provider delivers to one instance (as a load balancer would pick one).
    let uri = instances[2].url("/backchannel-logout");
    served.with(|i| {
        i.add_client(
            Client::confidential("client_web", "secret_web", &["http://127.0.0.1/callback"])
                .post_logout_redirect_uri("http://127.0.0.1/logged-out")
                .backchannel_logout_uri(&uri),
        );
    });
    (served, store, instances)
}

async fn post_token(instance: &Instance, token: &str) -> (u16, String) {
    let r = common::http_builder()
        .build()
        .unwrap()
        .post(instance.url("/backchannel-logout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("logout_token={token}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(r.headers()["cache-control"], "no-store");
    (status, r.text().await.unwrap())
}

async fn status_everywhere(browser: &mut Browser, instances: &[Instance]) -> Vec<u16> {
    let mut out = Vec::new();
    for inst in instances {
        out.push(browser.get(&inst.url("/me")).await.status);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_at_the_issuer_ends_on_every_instance() {
    let (served, store, instances) = cluster("bcl_end").await;
    let (mut a, mut b) = (Browser::new(), Browser::new());
    a.login(&instances[0], "").await;
    b.login(&instances[1], "").await;
    let sid = served.with(|i| i.session_id().map(str::to_owned)).unwrap();
    let record = store.load(&a.session().unwrap()).await.unwrap().unwrap();
    assert_eq!(
        record.sid.as_deref(),
        Some(sid.as_str()),
        "sid indexed at login"
    );
    assert_eq!(status_everywhere(&mut a, &instances).await, [200; 4]);

    // Served::end_session delivers synchronously (blocking): run it off the runtime threads.
    let delivered = tokio::task::block_in_place(|| served.end_session(&sid)).unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].result, Ok(200));
    assert_eq!(status_everywhere(&mut a, &instances).await, [401; 4]);
    assert_eq!(status_everywhere(&mut b, &instances).await, [401; 4]);
    assert!(store.find_by_sid(&sid).await.unwrap().is_empty());

    // A later login has a new provider session and is not touched by a replay of the token.
    let mut c = Browser::new();
    c.login(&instances[3], "").await;
    let token = String::from_utf8(delivered[0].delivery.body()).unwrap();
    let token = token.strip_prefix("logout_token=").unwrap().to_owned();
    let (status, body) = post_token(&instances[0], &token).await;
    assert_eq!(status, 400, "replay on another instance: {body}");
    assert_eq!(status_everywhere(&mut c, &instances).await, [200; 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_and_replayed_logout_tokens_are_refused_with_400() {
    let (served, store, instances) = cluster("bcl_bad").await;
    let mut a = Browser::new();
    a.login(&instances[0], "").await;
    let id = a.session().unwrap();
    let sid = served.with(|i| i.session_id().map(str::to_owned)).unwrap();
    let now = authpi_idp_session::unix_now();
    let mint = |spec: LogoutTokenSpec| served.with(|i| i.mint_logout_token(&spec, now)).unwrap();
    let valid = || LogoutTokenSpec::new("client_web").session_id(&sid);

    for (what, token) in [
        (
            "wrong aud",
            mint(valid().audience(serde_json::json!("client_other"))),
        ),
        ("nonce", mint(valid().nonce("n-123"))),
        ("no events", mint(valid().without_events())),
        (
            "neither sid nor sub",
            mint(LogoutTokenSpec::new("client_web")),
        ),
        ("wrong issuer", mint(valid().issuer("https://evil.example"))),
        ("not a jwt", "garbage".to_owned()),
    ] {
        let (status, body) = post_token(&instances[1], &token).await;
        assert_eq!(status, 400, "{what}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "invalid_request", "{what}");
        assert!(
            store.load(&id).await.unwrap().is_some(),
            "{what}: session kept"
        );
    }
    // An ID token is never a logout token.
    let id_token = store
        .load(&id)
        .await
        .unwrap()
        .unwrap()
        .tokens
        .id_token
        .unwrap();
    assert_eq!(post_token(&instances[1], &id_token).await.0, 400);
    assert!(store.load(&id).await.unwrap().is_some());

    // A valid one with a fixed jti: accepted once, then a replay on any instance is refused.
    let token = mint(valid().jti("jti-fixed"));
    assert_eq!(post_token(&instances[1], &token).await.0, 200);
    assert!(store.load(&id).await.unwrap().is_none());
    for inst in &instances {
        assert_eq!(post_token(inst, &token).await.0, 400, "replay");
    }
    // By sub (no sid): every session of the user ends.
    let (mut b, mut c) = (Browser::new(), Browser::new());
    served.with(|i| i.set_current_user("usr_alice"));
    b.login(&instances[0], "").await;
    c.login(&instances[3], "").await;
    let token = mint(LogoutTokenSpec::new("client_web").subject("usr_alice"));
    assert_eq!(post_token(&instances[2], &token).await.0, 200);
    assert_eq!(status_everywhere(&mut b, &instances).await, [401; 4]);
    assert_eq!(status_everywhere(&mut c, &instances).await, [401; 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_interrupted_by_a_store_failure_is_processed_when_the_provider_retries() {
    let served = issuer();
    let memory: Arc<dyn SessionStore> = Arc::new(authpi_idp_axum::MemoryStore::new());
    let failing = Arc::new(FaultStore::new(Arc::clone(&memory)));
    let store: Arc<dyn SessionStore> = failing.clone();
    let app = instance(&served, store, SessionsConfig::default()).await;
    let mut a = Browser::new();
    a.login(&app, "").await;
    let id = a.session().unwrap();
    let sid = served.with(|i| i.session_id().map(str::to_owned)).unwrap();
    let now = authpi_idp_session::unix_now();
    let spec = LogoutTokenSpec::new("client_web").session_id(&sid);
    let token = served.with(|i| i.mint_logout_token(&spec, now)).unwrap();

    // The next delete fails: the store dies in the middle of the logout.
    failing.fail_next(StoreOp::Delete, 1);
    let (status, body) = post_token(&app, &token).await;
    assert_eq!(status, 503, "{body}");
    assert!(memory.load(&id).await.unwrap().is_some(), "not ended yet");
    // The provider retries the same token: processed, not refused as a replay.
    let (status, body) = post_token(&app, &token).await;
    assert_eq!(status, 200, "{body}");
    assert!(memory.load(&id).await.unwrap().is_none(), "ended");
    assert_eq!(post_token(&app, &token).await.0, 400, "now a replay");
}
