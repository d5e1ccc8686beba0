//! `authpi-idp issuer serve` as a process: started on a free loopback port from a config file,
//! driven over HTTP by the SDK, stopped (killed) when the test ends.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use authpi_idp::{AuthorizationRequest, Config, Operation, Step, UnixTime};
use authpi_idp_ureq::{IdpClientSync, TransportOptions, UreqTransport};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_authpi-idp");

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testkit/dev-issuer.toml")
}

/// A running dev issuer; killed and reaped on drop.
struct Dev {
    child: Child,
    url: String,
    lines: mpsc::Receiver<String>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dev {
    fn start(config: &Path, extra: &[&str]) -> Dev {
        let mut child = Command::new(BIN)
            .args(["issuer", "serve", "--config"])
            .arg(config)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("the issuer did not start: {err}");
            }
        };
        let url = first.strip_prefix("issuer: ").unwrap().to_owned();
        Dev {
            child,
            url,
            lines: rx,
        }
    }

    /// Log lines printed so far (waits briefly for stragglers).
    fn log(&self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(300)) {
            out.push(l);
        }
        out
    }
}

fn now() -> UnixTime {
    UnixTime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
}

fn send(req: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
    UreqTransport::new(TransportOptions::default())
        .send(req)
        .unwrap()
}

fn web(dev: &Dev, redirect: &str) -> IdpClientSync {
    IdpClientSync::discover(
        Config::builder(&dev.url, "client_web")
            .client_secret("secret_web")
            .redirect_uri(redirect)
            .build()
            .unwrap(),
    )
    .unwrap()
}

/// Logs in with the auto-approving issuer; returns the agent.
fn login(idp: &IdpClientSync) -> authpi_idp::Agent {
    let tx = idp
        .create_authorization_url(&AuthorizationRequest::new(["openid", "email"]))
        .unwrap();
    let resp = send(
        http::Request::get(tx.url.as_str())
            .body(Vec::new())
            .unwrap(),
    );
    assert_eq!(resp.status(), 302);
    let cb = resp.headers()["location"].to_str().unwrap().to_owned();
    idp.exchange_callback(cb.as_str(), &tx).unwrap()
}

#[test]
fn example_config_serves_a_whole_login_and_logs_each_request() {
    let dev = Dev::start(&example_config(), &["--port", "0", "--log-requests"]);
    assert!(dev.url.starts_with("http://127.0.0.1:"), "{}", dev.url);
    assert!(dev.url.ends_with("/i_dev"));
    let idp = web(&dev, "http://127.0.0.1:3000/callback");
    let agent = login(&idp);
    assert_eq!(agent.id(), "usr_alice");
    assert_eq!(agent.email(), Some("alice@example.com"));
    assert!(agent.has_access_in("org_acme", "delete", "projects.tasks"));
    assert!(agent.has_access_in("org_globex", "read", "billing"));
    assert!(!agent.has_access_in("org_globex", "write", "billing"));
    // Machine to machine, RS256 as configured.
    let m2m = IdpClientSync::new(
        Config::builder(&dev.url, "c_reports")
            .client_secret("secret_reports")
            .build()
            .unwrap(),
    )
    .unwrap();
    let bot = m2m.client_credentials(["reports:read"]).unwrap();
    assert_eq!(bot.id(), "c_reports");
    let header = authpi_idp_testkit::jwt::decode_header(&bot.tokens().access_token).unwrap();
    assert_eq!(header["alg"], "RS256");

    let log = dev.log();
    for expected in [
        "GET /i_dev/.well-known/openid-configuration 200",
        "GET /i_dev/jwks.json 200",
        "GET /i_dev/authorize 302",
        "POST /i_dev/token 200",
    ] {
        assert!(
            log.iter().any(|l| l == expected),
            "{expected} not in {log:?}"
        );
    }
    assert!(log.iter().all(|l| l.split(' ').count() == 3), "{log:?}");
}

#[test]
fn explicit_port_and_bind_address() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = port.to_string();
    let dev = Dev::start(&example_config(), &["--port", &p, "--bind", "127.0.0.1"]);
    assert_eq!(dev.url, format!("http://127.0.0.1:{port}/i_dev"));
    let resp = send(
        http::Request::get(format!("{}/jwks.json", dev.url))
            .body(Vec::new())
            .unwrap(),
    );
    assert_eq!(resp.status(), 200);
    // Without --log-requests nothing but the URL line is printed.
    assert!(dev.log().is_empty());
}

/// A loopback receiver answering 200 to up to `n` POSTs; sends each body on the channel and
/// stops by itself after `n` requests or 30 seconds.
fn receiver(n: usize) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let uri = format!(
        "http://127.0.0.1:{}/backchannel-logout",
        listener.local_addr().unwrap().port()
    );
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
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
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            // Recorded before answering, so that "delivered before the browser's answer" is
            // observable without a race.
            let _ = tx.send(String::from_utf8(body).unwrap());
            let mut w = stream;
            w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .unwrap();
            served += 1;
        }
    });
    (uri, rx)
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("authpi-dev-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn session_ended_at_the_issuer_is_delivered_by_backchannel_logout() {
    let (bcl, rx) = receiver(1);
    // JSON this time, with the receiver as client_web's back-channel logout URI.
    let config = serde_json::json!({
        "path": "/i_json",
        "users": [{"id": "usr_carol", "email": "carol@example.com", "email_verified": true}],
        "organizations": [{"id": "org_x", "members": [{"user": "usr_carol", "scopes": ["owner"]}]}],
        "clients": [{
            "id": "client_web", "secret": "secret_web",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "backchannel_logout_uri": bcl,
        }],
    });
    let path = temp_file("bcl.json", &config.to_string());
    let dev = Dev::start(&path, &["--port", "0", "--log-requests"]);
    let idp = web(&dev, "http://127.0.0.1:4000/callback");
    let agent = login(&idp);
    assert_eq!(agent.id(), "usr_carol");
    let sid = agent.tokens().session_id().unwrap();

    // The user signs out at the issuer (RP-initiated logout ends the session there).
    let url = idp
        .create_logout_url(
            &authpi_idp::LogoutRequest::new()
                .id_token_hint(agent.tokens().id_token.clone().unwrap()),
        )
        .unwrap();
    let resp = send(http::Request::get(url.as_str()).body(Vec::new()).unwrap());
    assert_eq!(resp.status(), 200);
    // Delivered before the issuer answered the browser.
    let body = rx
        .try_recv()
        .expect("logout token delivered before the answer");
    let keys = idp.keys();
    let mut op = idp
        .client()
        .backchannel_logout(body.as_bytes(), &keys)
        .unwrap();
    let token = loop {
        match op.poll(now()).unwrap() {
            Step::Done(t) => break t,
            Step::Send(out) => op.handle_response(send(out.request)),
            _ => {}
        }
    };
    assert_eq!(token.session_id(), Some(sid.as_str()));
    assert_eq!(token.subject(), Some("usr_carol"));
    let log = dev.log();
    assert!(
        log.iter()
            .any(|l| l == &format!("BACKCHANNEL-LOGOUT client_web {bcl} 200")),
        "{log:?}"
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn interactive_login_page_lets_the_developer_choose_the_user() {
    let dev = Dev::start(&example_config(), &["--port", "0", "--interactive"]);
    let idp = web(&dev, "http://127.0.0.1:3000/callback");
    let tx = idp
        .create_authorization_url(&AuthorizationRequest::new(["openid", "email"]))
        .unwrap();
    let page = send(
        http::Request::get(tx.url.as_str())
            .body(Vec::new())
            .unwrap(),
    );
    assert_eq!(page.status(), 200);
    let html = String::from_utf8(page.body().clone()).unwrap();
    for needle in [
        r#"name="login_user" value="usr_alice""#,
        r#"name="login_user" value="usr_bob""#,
        r#"<form method="post" action="/i_dev/authorize">"#,
        r#"type="hidden" name="state""#,
    ] {
        assert!(html.contains(needle), "{needle} not in {html}");
    }
    // A user named in the query of a GET does not log in: only the page's POST does.
    let sneaky = format!("{}&login_user=usr_bob", tx.url);
    let resp = send(http::Request::get(sneaky).body(Vec::new()).unwrap());
    assert_eq!(resp.status(), 200);
    // Submitting the form as the page would: its hidden fields are the query's parameters.
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::Url::parse(&tx.url).unwrap().query_pairs() {
        form.append_pair(&k, &v);
    }
    form.append_pair("login_user", "usr_bob");
    let resp = send(
        http::Request::post(format!("{}/authorize", dev.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.finish().into_bytes())
            .unwrap(),
    );
    assert_eq!(resp.status(), 302);
    let cb = resp.headers()["location"].to_str().unwrap().to_owned();
    let agent = idp.exchange_callback(cb.as_str(), &tx).unwrap();
    assert_eq!(agent.id(), "usr_bob");
    assert!(agent.has_access_in("org_acme", "read", "projects"));
    assert!(!agent.has_access_in("org_acme", "write", "projects"));
}

#[test]
fn invalid_configuration_is_refused_with_the_reason() {
    for (name, text, reason) in [
        ("typo.toml", "algoritm = \"ES256\"\n", "algoritm"),
        (
            "member.toml",
            "[[organizations]]\nid = \"org_a\"\nmembers = [{ user = \"usr_ghost\" }]\n",
            "usr_ghost",
        ),
        (
            "alg.toml",
            "[[clients]]\nid = \"c\"\nsecret = \"s\"\nalgorithm = \"HS256\"\n",
            "HS256",
        ),
        ("broken.json", "{\"users\": [", "JSON"),
    ] {
        let path = temp_file(name, text);
        let mut child = Command::new(BIN)
            .args(["issuer", "serve", "--port", "0", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // An accepted configuration would serve forever: bound the wait, then fail.
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name}: the issuer accepted the configuration and kept serving");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let _ = std::fs::remove_file(&path);
        assert_eq!(status.code(), Some(2), "{name}");
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(err.contains(reason), "{name}: {err}");
    }
}
