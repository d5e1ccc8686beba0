//! Single-flight under cancellation and contention, over an in-memory transport wired to the
//! testkit's sans-IO issuer. Every interleaving is forced with channels and semaphores: the
//! transport holds a response until the test releases it; nothing sleeps to synchronize.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use authpi_idp::{AuthorizationRequest, Config, KeySet, TokenSet};
use authpi_idp_async::driver::{Action, Shared};
use authpi_idp_async::{
    AsyncClient, CreateAgentOptions, Error, FlightOptions, Spawn, Task, Transport, TransportError,
    system_now,
};
use authpi_idp_testkit::Issuer;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

const ISSUER: &str = "https://idp.test/i_demo";
const REDIRECT: &str = "https://app.example.com/callback";

/// Answers from the in-memory issuer; responses to requests whose path ends with `hold` are
/// held (after the issuer processed the request) until the test adds a permit to `release`.
#[derive(Clone)]
struct Mem {
    issuer: Arc<Mutex<Issuer>>,
    hold: Arc<Mutex<Option<&'static str>>>,
    /// Requests whose path ends with this get no response (a connection error).
    fail: Arc<Mutex<Option<&'static str>>>,
    arrived: mpsc::UnboundedSender<()>,
    release: Arc<Semaphore>,
}

impl Transport for Mem {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let fail = self
            .fail
            .lock()
            .unwrap()
            .is_some_and(|p| request.uri().path().ends_with(p));
        if fail {
            return Err(TransportError::io(std::io::Error::other(
                "connection reset",
            )));
        }
        let held = self
            .hold
            .lock()
            .unwrap()
            .is_some_and(|p| request.uri().path().ends_with(p));
        let response = self.issuer.lock().unwrap().handle(request, system_now().0);
        if held {
            let _ = self.arrived.send(());
            self.release.acquire().await.unwrap().forget();
        }
        Ok(response)
    }
}

/// Spawns on tokio: the spawn hook as a user of another runtime would write it.
struct TokioHook;
impl Spawn for TokioHook {
    fn spawn(&self, task: Task) -> Result<(), Task> {
        drop(tokio::spawn(task));
        Ok(())
    }
}

struct World {
    issuer: Arc<Mutex<Issuer>>,
    mem: Mem,
    arrived: mpsc::UnboundedReceiver<()>,
}

fn world() -> World {
    let issuer = Arc::new(Mutex::new(Issuer::authpi_demo(ISSUER).build().unwrap()));
    let (tx, arrived) = mpsc::unbounded_channel();
    let mem = Mem {
        issuer: issuer.clone(),
        hold: Arc::new(Mutex::new(None)),
        fail: Arc::new(Mutex::new(None)),
        arrived: tx,
        release: Arc::new(Semaphore::new(0)),
    };
    World {
        issuer,
        mem,
        arrived,
    }
}

fn config() -> Config {
    Config::builder(ISSUER, "client_web")
        .client_secret("secret_web")
        .redirect_uri(REDIRECT)
        .build()
        .unwrap()
}

fn client(w: &World, flights: FlightOptions) -> AsyncClient<Mem> {
    let core = authpi_idp::Client::new(config()).unwrap();
    AsyncClient::with_flight_options(core, KeySet::empty(), w.mem.clone(), flights)
}

async fn login(w: &World, c: &AsyncClient<Mem>) -> TokenSet {
    let tx = c
        .create_authorization_url(&AuthorizationRequest::new(["openid", "email"]))
        .unwrap();
    let req = http::Request::get(tx.url.as_str())
        .body(Vec::new())
        .unwrap();
    let resp = w.issuer.lock().unwrap().handle(req, system_now().0);
    let callback = resp.headers()["location"].to_str().unwrap().to_owned();
    let mut tokens = c
        .exchange_callback(callback.as_str(), &tx)
        .await
        .unwrap()
        .into_tokens();
    tokens.expires_at = 0;
    tokens
}

/// `on_refresh` that sends every token set it gets into a channel.
fn recording() -> (CreateAgentOptions, mpsc::UnboundedReceiver<TokenSet>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let options = CreateAgentOptions::new().on_refresh(move |t| {
        let tx = tx.clone();
        async move {
            tx.send(t).unwrap();
            Ok::<(), Error>(())
        }
    });
    (options, rx)
}

/// Issue #12 item 2: the leader's future is dropped after the provider rotated the token
/// (the response is held until the drop). Its request and persist complete detached: its
/// `on_refresh` still stores the rotated set, a follower gets it, and a retry with the old set
/// within the grace period gets it too, with one refresh request in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_leader_still_persists_and_shares_the_rotation() {
    let mut w = world();
    let c = client(&w, FlightOptions::default()).with_spawner(TokioHook);
    let old = login(&w, &c).await;
    w.issuer.lock().unwrap().reset_stats();
    *w.mem.hold.lock().unwrap() = Some("/token");

    let (leader_options, mut leader_store) = recording();
    let leader = tokio::spawn({
        let (c, old) = (c.clone(), old.clone());
        async move { c.refresh(old, leader_options).await }
    });
    w.arrived.recv().await.unwrap(); // the provider has rotated; the response is held
    let (follower_options, mut follower_store) = recording();
    let follower = tokio::spawn({
        let (c, old) = (c.clone(), old.clone());
        async move { c.refresh(old, follower_options).await }
    });
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    w.mem.release.add_permits(1);

    let stored = leader_store
        .recv()
        .await
        .expect("the leader's on_refresh ran");
    assert_ne!(stored.refresh_token, old.refresh_token);
    let agent = follower.await.unwrap().unwrap();
    assert_eq!(agent.tokens(), &stored);
    assert_eq!(follower_store.recv().await.unwrap(), stored);

    let (late_options, mut late_store) = recording();
    let late = c.refresh(old.clone(), late_options).await.unwrap();
    assert_eq!(late.tokens(), &stored);
    assert_eq!(late_store.recv().await.unwrap(), stored);
    assert_eq!(w.issuer.lock().unwrap().stats().refresh_requests, 1);
}

/// Issue #12 item 3: a follower gives up after the wait bound while the leader's response is
/// held, with `Timeout`; the leader still finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_waits_a_bounded_time() {
    let mut w = world();
    let flights = FlightOptions {
        wait: Duration::from_millis(50),
        ..FlightOptions::default()
    };
    let c = client(&w, flights).with_spawner(TokioHook);
    let old = login(&w, &c).await;
    *w.mem.hold.lock().unwrap() = Some("/token");
    let leader = tokio::spawn({
        let (c, old) = (c.clone(), old.clone());
        async move { c.refresh(old, CreateAgentOptions::new()).await }
    });
    w.arrived.recv().await.unwrap();
    let e = c
        .refresh(old.clone(), CreateAgentOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Transport(TransportError::Timeout)),
        "{e:?}"
    );
    w.mem.release.add_permits(1);
    assert_ne!(
        leader.await.unwrap().unwrap().tokens().refresh_token,
        old.refresh_token
    );
}

/// Issue #12 item 2: a JWKS follower whose leader gave up (dropped before a response) takes
/// the fetch over instead of failing with `Abandoned`.
#[tokio::test]
async fn a_jwks_follower_takes_over_from_an_abandoned_leader() {
    let w = world();
    let c = client(&w, FlightOptions::default());
    let token = login(&w, &c).await.access_token;
    let shared = Shared::new(
        authpi_idp::Client::new(config()).unwrap(),
        KeySet::empty(),
        (),
        Duration::from_secs(30),
    );
    let op = |t: &str| {
        shared
            .client
            .validate_access_token(t, "client_web", &KeySet::empty())
    };
    let mut first = shared.driver(op(&token), false);
    let mut second = shared.driver(op(&token), false);
    assert!(matches!(first.poll().unwrap(), Action::Send(_)));
    let Action::Wait(flight) = second.poll().unwrap() else {
        panic!("expected to follow the first JWKS fetch");
    };
    drop(first); // cancelled before a response
    second.followed(flight.wait().await).unwrap();
    let Action::Send(request) = second.poll().unwrap() else {
        panic!("expected to send the JWKS request itself");
    };
    assert!(request.uri().path().ends_with("/jwks.json"));
    let response = w.issuer.lock().unwrap().handle(request, system_now().0);
    second.sent(Ok(response)).unwrap();
    loop {
        match second.poll().unwrap() {
            Action::Done(info) => break assert_eq!(info.agent.id(), "usr_alice"),
            Action::Send(r) => panic!("unexpected request {}", r.uri()),
            _ => {}
        }
    }
}

/// Issue #12 item 1: a leader without `on_refresh` does not make the followers skip theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_without_on_refresh_leaves_every_follower_storing() {
    let mut w = world();
    let c = client(&w, FlightOptions::default()).with_spawner(TokioHook);
    let old = login(&w, &c).await;
    *w.mem.hold.lock().unwrap() = Some("/token");
    let leader = tokio::spawn({
        let (c, old) = (c.clone(), old.clone());
        async move { c.refresh(old, CreateAgentOptions::new()).await }
    });
    w.arrived.recv().await.unwrap();
    let stored = Arc::new(AtomicUsize::new(0));
    let mut followers = Vec::new();
    for _ in 0..3 {
        let (c, old, stored) = (c.clone(), old.clone(), stored.clone());
        followers.push(tokio::spawn(async move {
            let options = CreateAgentOptions::new().on_refresh(move |_| {
                stored.fetch_add(1, Ordering::SeqCst);
                async { Ok::<(), Error>(()) }
            });
            c.refresh(old, options).await
        }));
    }
    w.mem.release.add_permits(1);
    let rotated = leader.await.unwrap().unwrap().into_tokens();
    for f in followers {
        assert_eq!(f.await.unwrap().unwrap().tokens(), &rotated);
    }
    assert_eq!(stored.load(Ordering::SeqCst), 3);
}

/// The core's no-verdict rule through the driver: a refresh whose ID token has a rotated key,
/// and whose JWKS refetch gets no response, still hands out the rotated tokens (`on_refresh`
/// stores them) instead of failing with the transport error and losing them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_whose_key_refetch_gets_no_response_still_persists() {
    let w = world();
    let c = client(&w, FlightOptions::default()).with_spawner(TokioHook);
    let old = login(&w, &c).await;
    w.issuer.lock().unwrap().rotate_keys().unwrap();
    *w.mem.fail.lock().unwrap() = Some("/jwks.json");
    let (options, mut stored) = recording();
    let agent = c.refresh(old.clone(), options).await.unwrap();
    let rotated = stored.recv().await.expect("on_refresh ran");
    assert_eq!(agent.tokens(), &rotated);
    assert_ne!(rotated.refresh_token, old.refresh_token);
    assert!(!agent.identity_reverified());
}

/// An operation whose key snapshot predates a JWKS fetch that finished before it asked (so
/// there is no flight left to join) is answered with the response behind the updated cache,
/// not with a second GET: what makes concurrent JWKS sharing independent of timing.
#[tokio::test]
async fn a_late_jwks_request_reuses_the_response_behind_the_cache() {
    let w = world();
    let c = client(&w, FlightOptions::default());
    let token = login(&w, &c).await.access_token;
    let shared = Shared::new(
        authpi_idp::Client::new(config()).unwrap(),
        KeySet::empty(),
        (),
        Duration::from_secs(30),
    );
    let op = |t: &str| {
        shared
            .client
            .validate_access_token(t, "client_web", &KeySet::empty())
    };
    let mut first = shared.driver(op(&token), false);
    let mut second = shared.driver(op(&token), false); // took its (empty) snapshot already
    let Action::Send(request) = first.poll().unwrap() else {
        panic!("expected the first to fetch the JWKS");
    };
    let response = w.issuer.lock().unwrap().handle(request, system_now().0);
    first.sent(Ok(response)).unwrap();
    assert!(matches!(first.poll().unwrap(), Action::Done(_)));
    w.issuer.lock().unwrap().reset_stats();
    match second.poll().unwrap() {
        Action::Done(info) => assert_eq!(info.agent.id(), "usr_alice"),
        Action::Send(r) => panic!("fetched {} again", r.uri()),
        _ => panic!("unexpected action"),
    }
    assert_eq!(w.issuer.lock().unwrap().stats().jwks_requests, 0);
}

/// Issue #12 item 3: the leader's `on_refresh` is outside the followers' wait. Here it blocks
/// until the follower has its answer (as a pool of one connection would make it): the
/// follower still gets the rotated set instead of waiting for the leader's callback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_do_not_wait_for_the_leaders_on_refresh() {
    let mut w = world();
    let c = client(&w, FlightOptions::default()).with_spawner(TokioHook);
    let old = login(&w, &c).await;
    *w.mem.hold.lock().unwrap() = Some("/token");
    let gate = Arc::new(Semaphore::new(0));
    let leader_options = CreateAgentOptions::new().on_refresh({
        let gate = gate.clone();
        move |_| {
            let gate = gate.clone();
            async move {
                gate.acquire().await.unwrap().forget();
                Ok::<(), Error>(())
            }
        }
    });
    let leader = tokio::spawn({
        let (c, old) = (c.clone(), old.clone());
        async move { c.refresh(old, leader_options).await }
    });
    w.arrived.recv().await.unwrap();
    let follower = tokio::spawn({
        let (c, old) = (c.clone(), old.clone());
        async move { c.refresh(old, CreateAgentOptions::new()).await }
    });
    w.mem.release.add_permits(1);
    let followed = follower.await.unwrap().unwrap();
    gate.add_permits(1); // only now may the leader's callback return
    let led = leader.await.unwrap().unwrap();
    assert_eq!(followed.tokens(), led.tokens());
}

/// Spawns on tokio and counts the tasks it was given.
#[derive(Clone, Default)]
struct CountingHook(Arc<std::sync::atomic::AtomicUsize>);
impl Spawn for CountingHook {
    fn spawn(&self, task: Task) -> Result<(), Task> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        drop(tokio::spawn(task));
        Ok(())
    }
}

/// Only a due refresh spends a one-time secret, so only that runs detached: rebuilding the
/// agent of a fresh token set (every authenticated request of a web app) stays in the caller's
/// task, with no spawn and no cross-thread wake-up; an expired set still refreshes detached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_due_refresh_runs_detached() {
    let w = world();
    let hook = CountingHook::default();
    let c = client(&w, FlightOptions::default()).with_spawner(hook.clone());
    let expired = login(&w, &c).await;
    let spawned = || hook.0.load(std::sync::atomic::Ordering::SeqCst);

    let mut fresh = expired.clone();
    fresh.expires_at = system_now().0 + 3600;
    let agent = c
        .create_agent(fresh.clone(), CreateAgentOptions::new())
        .await
        .unwrap();
    assert_eq!(agent.tokens(), &fresh);
    assert_eq!(spawned(), 0, "a fresh set is rebuilt in the caller's task");

    let (options, mut store) = recording();
    let agent = c.create_agent(expired.clone(), options).await.unwrap();
    assert_ne!(agent.tokens().refresh_token, expired.refresh_token);
    assert_eq!(store.recv().await.unwrap(), *agent.tokens());
    assert_eq!(spawned(), 1, "a due refresh runs detached");
}
