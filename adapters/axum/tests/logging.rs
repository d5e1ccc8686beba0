//! A store outage is logged once when it starts and once when it ends, not once per request.

mod common;

use authpi_idp_axum::{SessionStore, SessionsConfig};
use authpi_idp_redis::RedisStore;
use authpi_idp_redis::testing::PrivateRedis;
use common::{Browser, instance, issuer};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_gives_one_error_line_and_one_recovery_line() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let served = issuer();
    let mut server = PrivateRedis::start();
    let store: Arc<dyn SessionStore> = Arc::new(RedisStore::new(&server.url(), "t:").unwrap());
    let app = instance(&served, store, SessionsConfig::default()).await;
    let mut browser = Browser::new();
    browser.login(&app, "").await;
    server.stop();
    for _ in 0..8 {
        assert_eq!(browser.get(&app.url("/me")).await.status, 503);
    }
    server.restart();
    let mut back = false;
    for _ in 0..100 {
        if browser.get(&app.url("/me")).await.status == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back);
    for _ in 0..3 {
        assert_eq!(browser.get(&app.url("/me")).await.status, 200);
    }
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let down: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("session store unavailable"))
        .collect();
    assert_eq!(down.len(), 1, "{log}");
    assert!(
        down[0].contains("ERROR") && down[0].contains("redis: "),
        "{}",
        down[0]
    );
    let up = log
        .lines()
        .filter(|l| l.contains("session store available again"));
    assert_eq!(up.count(), 1, "{log}");
}
