//! Measurements of the web layer (benches/RESULTS.md), against the testkit issuer and the Redis
//! at `REDIS_URL` (default `redis://127.0.0.1:6379`; `REDIS_URL=memory` for the in-memory
//! store). Build with `--release`.
//!
//! - `web_bench overhead [N]`: an authenticated request's work inside the service — session
//!   load from the store, agent rebuild, `has_access_in` guard — N times in a row; p50/p99.
//! - `web_bench lease [ROUNDS]`: an expired session hit by 64 concurrent requests spread over
//!   4 instances (own clients, one store) vs by 1 request; wall time per round, p50/p99.
//! - `web_bench serve PORT`: serves the example's routes with one logged-in session and prints
//!   the `wrk` command lines (authenticated and public).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use authpi_idp::{AuthorizationRequest, Config};
use authpi_idp_axum::{
    Auth, InOrg, MemoryStore, RedirectToLogin, SessionStore, Sessions, SessionsConfig, Settings,
    permission,
};
use authpi_idp_reqwest::IdpClient;
use authpi_idp_testkit::{Issuer, Served};
use axum::routing::get;
use std::sync::Arc;
use std::time::{Duration, Instant};

permission!(ReadProjects = "read" on "projects");

fn store() -> Arc<dyn SessionStore> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    if url == "memory" {
        return Arc::new(MemoryStore::new());
    }
    let prefix = format!("authpi-bench:{}:", std::process::id());
    Arc::new(authpi_idp_redis::RedisStore::new(&url, &prefix).unwrap())
}

fn sessions(
    served: &Served,
    store: Arc<dyn SessionStore>,
    port: u16,
) -> Sessions<authpi_idp_axum::ReqwestTransport> {
    let config = Config::builder(served.issuer_url(), "client_web")
        .client_secret("secret_web")
        .redirect_uri(format!("http://127.0.0.1:{port}/callback"))
        .build()
        .unwrap();
    Sessions::new(
        store,
        IdpClient::new(config).unwrap(),
        SessionsConfig::default(),
    )
}

/// Logs `usr_alice` in through the issuer's auto-approving `/authorize`; returns the session id.
async fn login(s: &Sessions<authpi_idp_axum::ReqwestTransport>) -> String {
    let tx = s
        .client()
        .create_authorization_url(&AuthorizationRequest::new(["openid", "email"]))
        .unwrap();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(authpi_idp_async::rustls_config(&Default::default()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http.get(&tx.url).send().await.unwrap();
    let callback = r.headers()["location"].to_str().unwrap().to_owned();
    let agent = s
        .client()
        .exchange_callback(callback.as_str(), &tx)
        .await
        .unwrap();
    let sub = agent.id().to_owned();
    let tokens = agent.into_tokens();
    let sid = tokens.session_id();
    s.create(tokens, &sub, sid.as_deref()).await.unwrap().id
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.50), at(0.99))
}

async fn expire(store: &dyn SessionStore, id: &str) {
    let mut r = store.load(id).await.unwrap().unwrap();
    let v = r.version;
    r.version += 1;
    r.tokens.expires_at = 1;
    assert!(store.save(&r, Some(v)).await.unwrap());
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("overhead", String::as_str);
    let n: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let served =
        Served::start(Issuer::authpi_demo("http://127.0.0.1/i_bench").current_user("usr_alice"))
            .unwrap();
    let store = store();
    match mode {
        "overhead" => {
            let s = sessions(&served, Arc::clone(&store), 8080);
            let id = login(&s).await;
            for _ in 0..1000 {
                s.agent(&id).await.unwrap();
            }
            let mut times = Vec::with_capacity(n);
            let (mut load, mut load_times) = (Duration::ZERO, Vec::with_capacity(n));
            for _ in 0..n {
                let t = Instant::now();
                let _ = store.load(&id).await.unwrap();
                let l = t.elapsed();
                load += l;
                load_times.push(l);
                let t = Instant::now();
                let (agent, _) = s.agent(&id).await.unwrap();
                assert!(agent.has_access_in("org_acme", "read", "projects"));
                times.push(t.elapsed());
            }
            let (p50, p99) = percentiles(times);
            let (l50, l99) = percentiles(load_times);
            println!(
                "authenticated request overhead (load + agent rebuild + guard), {n} runs: p50 {p50:?}  p99 {p99:?}"
            );
            println!("  of which the store load alone: p50 {l50:?}  p99 {l99:?}");
        }
        "lease" => {
            let rounds = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(50);
            let instances: Vec<_> = (0..4)
                .map(|_| sessions(&served, Arc::clone(&store), 8080))
                .collect();
            let id = login(&instances[0]).await;
            let (mut single, mut contended) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                expire(&*store, &id).await;
                let t = Instant::now();
                instances[0].agent(&id).await.unwrap();
                single.push(t.elapsed());

                expire(&*store, &id).await;
                let before = served.stats().refresh_requests;
                let t = Instant::now();
                let mut tasks = Vec::new();
                for i in 0..64 {
                    let (s, id) = (instances[i % 4].clone(), id.clone());
                    tasks.push(tokio::spawn(async move { s.agent(&id).await.map(|_| ()) }));
                }
                for task in tasks {
                    task.await.unwrap().unwrap();
                }
                contended.push(t.elapsed());
                assert_eq!(served.stats().refresh_requests - before, 1);
            }
            let (s50, s99) = percentiles(single);
            let (c50, c99) = percentiles(contended);
            println!("refresh of an expired session, {rounds} rounds:");
            println!("  1 request, 1 instance:            p50 {s50:?}  p99 {s99:?}");
            println!(
                "  64 requests over 4 instances:     p50 {c50:?}  p99 {c99:?}  (1 token request each round)"
            );
        }
        "serve" => {
            let port: u16 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(18080);
            let s = sessions(&served, Arc::clone(&store), port);
            let id = login(&s).await;
            let auth = Auth::new(s, Settings::new()).unwrap();
            let cookie = format!("{}={id}", auth.cookie_names().session);
            let app = axum::Router::new()
                .route("/", get(|| async { "public" }))
                .route(
                    "/orgs/{org}/projects",
                    get(|g: InOrg<ReadProjects, RedirectToLogin>| async move {
                        axum::Json(serde_json::json!({ "org": g.org, "user": g.agent.id() }))
                    }),
                )
                .merge(auth.routes())
                .with_state(auth);
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap();
            println!(
                "wrk -t2 -c32 -d10s --latency -H 'Cookie: {cookie}' http://127.0.0.1:{port}/orgs/org_acme/projects"
            );
            println!("wrk -t2 -c32 -d10s --latency http://127.0.0.1:{port}/");
            axum::serve(listener, app).await.unwrap();
        }
        other => eprintln!("unknown mode {other}: overhead | lease | serve"),
    }
}
