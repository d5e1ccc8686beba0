//! A real browser (headless Chromium) through the example's flow: login → page → logout.
//! Needs `chromium` (Debian: `apt-get install chromium`); run with
//! `cargo test -p authpi-idp-axum --test browser -- --ignored`.

mod common;

use authpi_idp_axum::{MemoryStore, SessionStore, SessionsConfig, Settings};
use authpi_idp_testkit::Client;
use common::{instance_with, issuer};
use std::process::Command;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: cargo test -p authpi-idp-axum --test browser -- --ignored"]
async fn chromium_logs_in_sees_the_page_and_logs_out() {
    let served = issuer();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let app = instance_with(
        &served,
        Arc::clone(&store),
        SessionsConfig::default(),
        |addr| Settings::new().post_logout_redirect_uri(format!("http://{addr}/")),
    )
    .await;
    served.with(|i| {
        i.add_client(
            Client::confidential("client_web", "secret_web", &["http://127.0.0.1/callback"])
                .post_logout_redirect_uri(&app.url("/")),
        );
    });
    let profile = std::env::temp_dir().join(format!("authpi-chromium-{}", std::process::id()));
    let start = app.url("/logout-form");
    let dir = profile.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(["--virtual-time-budget=15000", "--dump-dom"])
            .arg(start)
            .output()
    })
    .await
    .unwrap()
    .expect("chromium not found: apt-get install chromium");
    let _ = std::fs::remove_dir_all(&dir);
    let dom = String::from_utf8_lossy(&out.stdout);
    let stats = served.stats();
    // /logout-form without a session → /login → issuer → /callback → /logout-form (a session
    // cookie set and sent back) → POST /logout with the browser's own Origin → the issuer's
    // logout → back to "/".
    assert_eq!(stats.code_requests, 1, "one login; dom: {dom}");
    assert_eq!(
        stats.revoke_requests, 1,
        "logout passed the CSRF check and revoked"
    );
    assert_eq!(
        stats.logout_requests, 1,
        "redirected through the provider's logout"
    );
    assert!(dom.contains("public"), "ended on the public page: {dom}");
    assert!(
        store.find_by_sub("usr_alice").await.unwrap().is_empty(),
        "session ended"
    );
}
