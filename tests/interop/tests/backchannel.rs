//! OIDC Back-Channel Logout 1.0 against oidc-provider: `client_bcl` logs in, the session ends
//! at the provider (RP-initiated logout, confirmed), the provider POSTs a `logout_token` to a
//! loopback receiver run by this test, and the core validates it.
//!
//! The provider's clients are static, so the receiver listens on the fixed
//! `127.0.0.1:7778` named in `provider.mjs`; if another run holds the port, this test waits for
//! it (bounded) instead of failing at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use authpi_idp::backchannel::LogoutTokenError;
use authpi_idp::error::{ClaimError, TokenError};
use authpi_idp::{AuthorizationRequest, ClientAuth, Config, Error, LogoutRequest};
use authpi_idp_interop::{Browser, Provider, WEB_REDIRECT, temp_keys_path, web_config};
use authpi_idp_ureq::IdpClientSync;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const RECEIVER: &str = "127.0.0.1:7778";
const PATH: &str = "/backchannel-logout";

/// One POST the receiver got.
#[derive(Debug)]
struct Received {
    method: String,
    path: String,
    content_type: String,
    body: Vec<u8>,
}

/// Listens on [`RECEIVER`] (waiting up to 120 s for the port), answers 200 to each request and
/// forwards it on the channel; stops by itself after 60 s.
fn receiver() -> mpsc::Receiver<Received> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let listener = loop {
        match TcpListener::bind(RECEIVER) {
            Ok(l) => break l,
            Err(e) if Instant::now() < deadline => {
                eprintln!("backchannel receiver: {RECEIVER} busy ({e}), waiting");
                thread::sleep(Duration::from_millis(500));
            }
            Err(e) => panic!("cannot listen on {RECEIVER} (named in provider.mjs): {e}"),
        }
    };
    listener.set_nonblocking(true).unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let stop = Instant::now() + Duration::from_secs(60);
        while Instant::now() < stop {
            let Ok((stream, _)) = listener.accept() else {
                thread::sleep(Duration::from_millis(10));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                eprintln!("backchannel receiver: a connection closed without a request");
                continue;
            }
            let mut parts = line.split(' ');
            let method = parts.next().unwrap_or_default().to_owned();
            let path = parts.next().unwrap_or_default().to_owned();
            let (mut len, mut content_type) = (0usize, String::new());
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 {
                    break;
                }
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap_or(0);
                    } else if k.eq_ignore_ascii_case("content-type") {
                        content_type = v.trim().to_owned();
                    }
                }
            }
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let _ = tx.send(Received {
                method,
                path,
                content_type,
                body,
            });
            let mut w = stream;
            let _ =
                w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    rx
}

fn bcl_config(p: &Provider) -> Config {
    Config::builder(p.issuer(), "client_bcl")
        .client_secret("client_bcl_secret")
        .client_auth(ClientAuth::ClientSecretBasic)
        .redirect_uri(WEB_REDIRECT)
        .build()
        .unwrap()
}

#[test]
fn oidc_provider_logout_token_is_delivered_and_validated() {
    let rx = receiver();
    let p = Provider::start(0, &temp_keys_path());
    let idp = IdpClientSync::discover(bcl_config(&p)).unwrap();
    assert!(idp.client().metadata().end_session_endpoint().is_some());

    // Login in a browser whose cookies carry the provider session.
    let mut browser = Browser::new();
    let tx = idp
        .create_authorization_url(&AuthorizationRequest::new(["openid", "email"]))
        .unwrap();
    let callback = browser.authorize(&tx.url, WEB_REDIRECT);
    let agent = idp.exchange_callback(callback.as_str(), &tx).unwrap();
    let sid = agent
        .tokens()
        .session_id()
        .expect("oidc-provider puts sid in the ID token of a back-channel client");

    // The session ends at the provider: logout URL, confirmation form, POST.
    let url = idp
        .create_logout_url(
            &LogoutRequest::new().id_token_hint(agent.tokens().id_token.clone().unwrap()),
        )
        .unwrap();
    let form = browser.request(url.as_str(), None);
    assert_eq!(form.status, 200, "{}", form.body);
    let xsrf = form
        .body
        .split("name=\"xsrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the logout form has an xsrf field")
        .to_owned();
    let done = browser.request(
        &format!("{}/logout/confirm", p.issuer()),
        Some(&format!("xsrf={xsrf}&logout=yes")),
    );
    assert!(
        matches!(done.status, 200 | 303),
        "logout confirm answered {}: {}",
        done.status,
        done.body
    );

    let got = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| {
            panic!(
                "no logout token arrived at {RECEIVER}; provider stderr:\n{}",
                p.stderr()
            )
        });
    assert_eq!((got.method.as_str(), got.path.as_str()), ("POST", PATH));
    assert!(
        got.content_type
            .starts_with("application/x-www-form-urlencoded"),
        "{}",
        got.content_type
    );

    // The core validates it: signature (provider JWKS), iss, aud, iat/exp, jti, events, sid.
    let keys = idp.keys();
    let token = idp
        .run(idp.client().backchannel_logout(&got.body, &keys).unwrap())
        .unwrap();
    assert_eq!(token.issuer(), p.issuer());
    assert_eq!(token.session_id(), Some(sid.as_str()));
    assert_eq!(token.subject(), Some(agent.id()));
    assert!(!token.jwt_id().is_empty());
    assert!(
        token
            .expires_at()
            .is_some_and(|exp| exp > token.issued_at())
    );

    // The same token presented to another client of the provider: not its audience.
    let other = IdpClientSync::discover(web_config(&p, "client_basic")).unwrap();
    let keys = other.keys();
    let err = other
        .run(other.client().backchannel_logout(&got.body, &keys).unwrap())
        .unwrap_err();
    assert!(
        matches!(
            &err,
            authpi_idp_ureq::Error::Idp(Error::LogoutToken(LogoutTokenError::Token(
                TokenError::Claim(ClaimError::Audience)
            )))
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "invalid_request");

    // The session's own ID token is not a logout token.
    let id_token = agent.tokens().id_token.clone().unwrap();
    let body = format!("logout_token={id_token}");
    let keys = idp.keys();
    let err = idp
        .run(
            idp.client()
                .backchannel_logout(body.as_bytes(), &keys)
                .unwrap(),
        )
        .unwrap_err();
    assert_eq!(err.code(), "invalid_request");
}
