//! The `tracing` feature: spans per operation and per request with the endpoint path, kind,
//! flight role, status and duration, and never a secret (issue #12 item 12). A capturing
//! subscriber records every span, field and event as text.
#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use authpi_idp::{AuthorizationRequest, CallbackParams, Config, KeySet};
use authpi_idp_async::{AsyncClient, CreateAgentOptions, Transport, TransportError, system_now};
use authpi_idp_testkit::Issuer;
use std::fmt::{Debug, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

const ISSUER: &str = "https://idp.test/i_demo";

#[derive(Clone)]
struct Mem(Arc<Mutex<Issuer>>);

impl Transport for Mem {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        Ok(self.0.lock().unwrap().handle(request, system_now().0))
    }
}

#[derive(Default)]
struct Capture {
    next: AtomicU64,
    log: Arc<Mutex<Vec<String>>>,
}

struct Text<'a>(&'a mut String);
impl Visit for Text<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let mut line = format!("span#{id} {}", attrs.metadata().name());
        if let Some(parent) = attrs.parent() {
            let _ = write!(line, " parent#{}", parent.into_u64());
        }
        attrs.record(&mut Text(&mut line));
        self.log.lock().unwrap().push(line);
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut line = format!("record#{}", span.into_u64());
        values.record(&mut Text(&mut line));
        self.log.lock().unwrap().push(line);
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = String::from("event");
        event.record(&mut Text(&mut line));
        self.log.lock().unwrap().push(line);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn spans_carry_endpoint_status_duration_and_flight_but_no_secret() {
    let capture = Capture::default();
    let log = capture.log.clone();
    let secrets = tracing::subscriber::with_default(capture, || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(scenario())
    });
    let log = log.lock().unwrap().clone();
    let text = log.join("\n");

    // One operation span per operation, request spans inside it.
    assert!(
        text.contains("authpi_idp.operation op=\"Session\""),
        "{text}"
    );
    let refresh_led = log
        .iter()
        .find(|l| l.contains("kind=\"refresh\"") && l.contains("flight=\"led\""))
        .unwrap_or_else(|| panic!("no led refresh span:\n{text}"));
    assert!(refresh_led.contains("method=POST"), "{refresh_led}");
    assert!(
        refresh_led.contains("endpoint=\"/i_demo/token\""),
        "{refresh_led}"
    );
    assert!(refresh_led.contains(" parent#"), "{refresh_led}");
    let id = refresh_led
        .split_whitespace()
        .next()
        .unwrap()
        .trim_start_matches("span#");
    let records: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with(&format!("record#{id} ")))
        .collect();
    assert!(records.iter().any(|l| l.contains("status=200")), "{text}");
    assert!(records.iter().any(|l| l.contains("duration_ms=")), "{text}");
    assert!(
        log.iter()
            .any(|l| l.contains("kind=\"refresh\"") && l.contains("flight=\"joined\"")),
        "the grace-period caller joined the flight:\n{text}"
    );
    assert!(text.contains("kind=\"jwks\""), "{text}");

    for secret in secrets {
        assert!(
            !text.contains(&secret),
            "a secret leaked into tracing:\n{text}"
        );
    }
    assert!(!text.contains('?'), "a URL query leaked:\n{text}");
}

/// Logs in, refreshes (leads), refreshes again with the old set (joins); returns every secret
/// seen on the way.
async fn scenario() -> Vec<String> {
    let issuer = Arc::new(Mutex::new(Issuer::authpi_demo(ISSUER).build().unwrap()));
    let config = Config::builder(ISSUER, "client_web")
        .client_secret("secret_web")
        .redirect_uri("https://app.example.com/callback")
        .build()
        .unwrap();
    let core = authpi_idp::Client::new(config).unwrap();
    let c = AsyncClient::from_client(core, KeySet::empty(), Mem(issuer.clone())).without_spawner();
    let tx = c
        .create_authorization_url(&AuthorizationRequest::new(["openid", "email"]))
        .unwrap();
    let req = http::Request::get(tx.url.as_str())
        .body(Vec::new())
        .unwrap();
    let resp = issuer.lock().unwrap().handle(req, system_now().0);
    let callback = resp.headers()["location"].to_str().unwrap().to_owned();
    let code = CallbackParams::parse(&callback)
        .unwrap()
        .get("code")
        .unwrap()
        .to_owned();
    let mut old = c
        .exchange_callback(callback.as_str(), &tx)
        .await
        .unwrap()
        .into_tokens();
    old.expires_at = 0;
    let new = c
        .refresh(old.clone(), CreateAgentOptions::new())
        .await
        .unwrap()
        .into_tokens();
    let again = c
        .refresh(old.clone(), CreateAgentOptions::new())
        .await
        .unwrap();
    assert_eq!(again.tokens(), &new);
    let mut secrets = vec![
        "secret_web".to_owned(),
        code,
        tx.code_verifier.clone(),
        tx.state.clone(),
        tx.nonce.clone(),
    ];
    for t in [&old, &new] {
        secrets.push(t.access_token.clone());
        secrets.extend(t.refresh_token.clone());
        secrets.extend(t.id_token.clone());
    }
    secrets
}
