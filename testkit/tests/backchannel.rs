//! Back-channel logout at the issuer: sessions with `sid`, logout tokens on session end,
//! delivery by the served issuer, and the minting knobs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use authpi_idp_testkit::{
    Alg, BACKCHANNEL_LOGOUT_EVENT, Client, Issuer, LogoutTokenSpec, Served, jwt,
};
use common::*;
use serde_json::{Value, json};

const BCL_URI: &str = "https://app.example.com/backchannel-logout";

fn web_with_bcl(uri: &str) -> Client {
    Client::confidential(
        "client_web",
        "secret_web",
        &[
            "http://127.0.0.1/callback",
            "https://app.example.com/callback",
        ],
    )
    .post_logout_redirect_uri("https://app.example.com/logged-out")
    .backchannel_logout_uri(uri)
}

fn demo_bcl() -> Issuer {
    Issuer::authpi_demo(ISS)
        .client(web_with_bcl(BCL_URI))
        .build()
        .unwrap()
}

fn claims(token: &str) -> Value {
    jwt::decode_claims(token).unwrap()
}

#[test]
fn id_and_access_tokens_carry_the_session_sid() {
    let mut idp = demo_bcl();
    assert_eq!(idp.session_id(), None);
    let t = login_web(&mut idp, &[], T0);
    let sid = idp.session_id().unwrap().to_owned();
    assert!(sid.starts_with("s_"));
    assert_eq!(claims(t["id_token"].as_str().unwrap())["sid"], sid);
    assert_eq!(claims(t["access_token"].as_str().unwrap())["sid"], sid);
}

#[test]
fn end_session_mints_one_verified_logout_token_per_client_with_a_uri() {
    let mut idp = demo_bcl();
    let keys = jwks(&mut idp);
    login_web(&mut idp, &[], T0);
    // client_native takes part in the same session but registered no back-channel URI.
    let q = authorize(
        &mut idp,
        "client_native",
        "http://127.0.0.1:5000/callback",
        &[],
        T0,
    );
    assert!(q.contains_key("code"));
    let sid = idp.session_id().unwrap().to_owned();

    let out = idp.end_session(&sid, T0 + 30).unwrap();
    assert_eq!(out.len(), 1, "{out:?}");
    let d = &out[0];
    assert_eq!(
        (
            d.client_id.as_str(),
            d.uri.as_str(),
            d.session_id.as_str(),
            d.subject.as_str()
        ),
        ("client_web", BCL_URI, sid.as_str(), "usr_alice")
    );
    let (h, c) = verify_with_jwks(&keys, &d.logout_token).expect("signed by a published key");
    assert_eq!(h["typ"], "logout+jwt");
    assert_eq!(h["alg"], "ES256");
    assert_eq!(c["iss"], ISS);
    assert_eq!(c["aud"], "client_web");
    assert_eq!(c["sub"], "usr_alice");
    assert_eq!(c["sid"], sid);
    assert_eq!(c["iat"], T0 + 30);
    assert_eq!(c["exp"], T0 + 150);
    assert_eq!(c["jti"].as_str().unwrap().len(), 18);
    assert_eq!(c["events"], json!({BACKCHANNEL_LOGOUT_EVENT: {}}));
    assert!(c.get("nonce").is_none());
    assert_eq!(
        d.body(),
        format!("logout_token={}", d.logout_token).into_bytes()
    );
    let req = d.request().unwrap();
    assert_eq!(req.method(), "POST");
    assert_eq!(
        req.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert!(!format!("{d:?}").contains(&d.logout_token));

    // The session is over: no current session, a second end announces nothing.
    assert_eq!(idp.session_id(), None);
    assert!(idp.end_session(&sid, T0 + 31).unwrap().is_empty());
    assert_eq!(idp.stats().backchannel_logouts, 1);
    // The next login is a new session.
    let t2 = login_web(&mut idp, &[], T0 + 40);
    assert_ne!(claims(t2["id_token"].as_str().unwrap())["sid"], sid);
}

#[test]
fn unknown_or_foreign_session_announces_nothing() {
    let mut idp = demo_bcl();
    login_web(&mut idp, &[], T0);
    assert!(idp.end_session("s_nope", T0).unwrap().is_empty());
    assert!(idp.session_id().is_some(), "another sid leaves the session");
}

#[test]
fn ending_a_session_revokes_its_refresh_tokens_unless_offline_access() {
    let mut idp = demo_bcl();
    let t = login_web(&mut idp, &[], T0);
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let sid = idp.session_id().unwrap().to_owned();
    idp.end_session(&sid, T0 + 10).unwrap();
    let resp = refresh(&mut idp, &rt, &[], T0 + 20);
    assert_eq!(resp.status(), 400);
    assert_eq!(body(&resp)["error"], "invalid_grant");
    // With offline_access the grant outlives the session (Back-Channel Logout §2.7).
    let t = login_web(
        &mut idp,
        &[("scope", "openid email offline_access")],
        T0 + 30,
    );
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let sid = idp.session_id().unwrap().to_owned();
    assert_eq!(idp.end_session(&sid, T0 + 40).unwrap().len(), 1);
    assert_eq!(refresh(&mut idp, &rt, &[], T0 + 50).status(), 200);
}

#[test]
fn logout_endpoint_ends_the_hinted_session_and_queues_deliveries() {
    let mut idp = demo_bcl();
    let t = login_web(&mut idp, &[], T0);
    let sid = idp.session_id().unwrap().to_owned();
    assert!(idp.take_logout_deliveries().is_empty());
    let q = form(&[("id_token_hint", t["id_token"].as_str().unwrap())]);
    assert_eq!(get(&mut idp, &format!("/logout?{q}"), T0 + 5).status(), 200);
    let out = idp.take_logout_deliveries();
    assert_eq!(out.len(), 1);
    assert_eq!(claims(&out[0].logout_token)["sid"], sid);
    assert!(idp.take_logout_deliveries().is_empty(), "taken once");
    // Logging out again with the same hint: the session is already over.
    get(&mut idp, &format!("/logout?{q}"), T0 + 6);
    assert!(idp.take_logout_deliveries().is_empty());
}

#[test]
fn mint_logout_token_knobs_make_each_bad_variant() {
    let idp = demo_bcl();
    let keys = idp.jwks();
    let base = LogoutTokenSpec::new("client_web")
        .subject("usr_alice")
        .session_id("s_1");
    let (h, c) = verify_with_jwks(&keys, &idp.mint_logout_token(&base, T0).unwrap()).unwrap();
    assert_eq!(h["typ"], "logout+jwt");
    assert_eq!(
        (c["sub"].clone(), c["sid"].clone(), c["exp"].clone()),
        (json!("usr_alice"), json!("s_1"), json!(T0 + 120))
    );
    let mint = |spec: LogoutTokenSpec| {
        let t = idp.mint_logout_token(&spec, T0).unwrap();
        verify_with_jwks(&keys, &t).expect("still validly signed")
    };
    assert_eq!(
        mint(base.clone().audience(json!("other"))).1["aud"],
        "other"
    );
    assert_eq!(mint(base.clone().nonce("n")).1["nonce"], "n");
    assert!(
        mint(base.clone().without_events())
            .1
            .get("events")
            .is_none()
    );
    let (a, b) = (
        mint(base.clone().jti("same")),
        mint(base.clone().jti("same")),
    );
    assert_eq!(
        (a.1["jti"].clone(), b.1["jti"].clone()),
        (json!("same"), json!("same"))
    );
    assert_ne!(mint(base.clone()).1["jti"], mint(base.clone()).1["jti"]);
    assert_eq!(mint(base.clone().typ(Some("JWT"))).0["typ"], "JWT");
    assert!(mint(base.clone().typ(None)).0.get("typ").is_none());
    assert_eq!(
        mint(base.clone().issuer("https://evil")).1["iss"],
        "https://evil"
    );
    let old = mint(base.clone().issued_at(T0 - 1000).ttl(None)).1;
    assert_eq!(
        (old["iat"].clone(), old.get("exp")),
        (json!(T0 - 1000), None)
    );
    assert_eq!(mint(base.clone().alg(Alg::EdDsa)).0["alg"], "EdDSA");
    assert!(
        mint(LogoutTokenSpec::new("client_web").session_id("s"))
            .1
            .get("sub")
            .is_none()
    );
    // Without a known client there is no algorithm to sign with, unless one is given.
    assert!(
        idp.mint_logout_token(&LogoutTokenSpec::new("nobody"), T0)
            .is_err()
    );
    idp.mint_logout_token(&LogoutTokenSpec::new("nobody").alg(Alg::Es256), T0)
        .unwrap();
}

/// A loopback receiver for back-channel logout POSTs: answers `status` to up to `n`
/// requests, sends each (path, content-type, body) on the channel, and stops by itself after
/// `n` requests or 20 seconds.
fn receiver(status: u16, n: usize) -> (String, mpsc::Receiver<(String, String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let uri = format!(
        "http://127.0.0.1:{}/backchannel-logout",
        listener.local_addr().unwrap().port()
    );
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut served = 0;
        while served < n && Instant::now() < deadline {
            let Ok((stream, _)) = listener.accept() else {
                thread::sleep(Duration::from_millis(5));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split(' ').nth(1).unwrap_or("").to_owned();
            let (mut len, mut ctype) = (0usize, String::new());
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap();
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap();
                } else if k.eq_ignore_ascii_case("content-type") {
                    ctype = v.trim().to_owned();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let mut w = stream;
            write!(
                w,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            served += 1;
            let _ = tx.send((path, ctype, String::from_utf8(body).unwrap()));
        }
    });
    (uri, rx)
}

#[test]
fn served_issuer_delivers_logout_tokens_to_loopback_receivers() {
    let (uri, rx) = receiver(200, 2);
    let served =
        Served::start(Issuer::authpi_demo("http://127.0.0.1/i_test").client(web_with_bcl(&uri)))
            .unwrap();
    let now = served.now();
    // Log in (sans-IO, under the lock), then end the session through the server.
    let sid = served.with(|idp| {
        login_web(idp, &[], now);
        idp.session_id().unwrap().to_owned()
    });
    let out = served.end_session(&sid).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].result, Ok(200));
    let (path, ctype, body) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(path, "/backchannel-logout");
    assert_eq!(ctype, "application/x-www-form-urlencoded");
    let token = body.strip_prefix("logout_token=").unwrap();
    assert_eq!(token, out[0].delivery.logout_token);
    assert_eq!(claims(token)["sid"], sid);

    // Through /logout over HTTP: delivered before the browser's answer.
    let t2 = served.with(|idp| login_web(idp, &[], now));
    let hint = t2["id_token"].as_str().unwrap();
    let mut s = std::net::TcpStream::connect(served.addr()).unwrap();
    write!(
        s,
        "GET /i_test/logout?{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        form(&[("id_token_hint", hint)])
    )
    .unwrap();
    let (_, _, body) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        claims(body.strip_prefix("logout_token=").unwrap())["sid"],
        claims(hint)["sid"]
    );
    let all = served.deliveries();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|d| d.result == Ok(200)));
}

#[test]
fn delivery_failures_are_reported_not_fatal() {
    // Nothing listens on this port (bound, then closed).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}/bcl");
    let (rejecting, rx) = receiver(400, 1);
    let served = Served::start(
        Issuer::authpi_demo("http://127.0.0.1/i_test")
            .client(web_with_bcl(&dead))
            .client(
                Client::public("client_spa", &["http://127.0.0.1/callback"])
                    .backchannel_logout_uri(&rejecting),
            )
            .client(
                Client::public("client_remote", &["http://127.0.0.1/callback"])
                    .backchannel_logout_uri("https://app.example.com/bcl"),
            ),
    )
    .unwrap();
    let now = served.now();
    let sid = served.with(|idp| {
        login_web(idp, &[], now);
        for c in ["client_spa", "client_remote"] {
            authorize(idp, c, "http://127.0.0.1:9/callback", &[], now);
        }
        idp.session_id().unwrap().to_owned()
    });
    let out = served.end_session(&sid).unwrap();
    let by = |id: &str| out.iter().find(|d| d.delivery.client_id == id).unwrap();
    assert!(by("client_web").result.is_err());
    assert_eq!(by("client_spa").result, Ok(400));
    assert!(
        by("client_remote")
            .result
            .as_ref()
            .unwrap_err()
            .contains("loopback"),
        "never delivers off the machine"
    );
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
}
