//! The behaviour cases, generic over the adapter.

use crate::api::{Api, Hooks};
use authpi_idp::{AuthorizationRequest, Config, LogoutRequest, TokenSet, TokenTypeHint};
use authpi_idp_async::{Error, TransportError, TransportOptions};
use authpi_idp_testkit::{Issuer, Served};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const REDIRECT: &str = "http://127.0.0.1:8080/callback";

pub fn served() -> Served {
    Served::start(Issuer::authpi_demo("http://127.0.0.1/i_test")).unwrap()
}

pub fn web_config(served: &Served) -> Config {
    Config::builder(served.issuer_url(), "client_web")
        .client_secret("secret_web")
        .redirect_uri(REDIRECT)
        .build()
        .unwrap()
}

pub fn client<A: Api>(served: &Served) -> A {
    A::build(web_config(served), TransportOptions::default()).unwrap()
}

/// The browser's part: `/authorize` auto-approves; returns the callback URL.
pub fn authorize(served: &Served, url: &str) -> String {
    let req = http::Request::get(url).body(Vec::new()).unwrap();
    let now = served.now();
    let resp = served.with(|i| i.handle(req, now));
    assert_eq!(resp.status(), 302, "authorize answered {}", resp.status());
    resp.headers()["location"].to_str().unwrap().to_owned()
}

pub async fn login<A: Api>(served: &Served, api: &A) -> authpi_idp::Agent {
    let tx = api
        .create_authorization_url(&AuthorizationRequest::new(["openid", "email", "profile"]))
        .unwrap();
    let callback = authorize(served, tx.url.as_str());
    api.exchange_callback(callback, tx).await.unwrap()
}

fn counter_hooks() -> (
    Hooks,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    Arc<Mutex<Vec<TokenSet>>>,
) {
    let ok = Arc::new(AtomicUsize::new(0));
    let err = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (o, e, s) = (ok.clone(), err.clone(), seen.clone());
    let hooks = Hooks {
        on_refresh: Some(Arc::new(move |t| {
            o.fetch_add(1, Ordering::SeqCst);
            s.lock().unwrap().push(t);
            Ok(())
        })),
        on_refresh_error: Some(Arc::new(move |_| {
            e.fetch_add(1, Ordering::SeqCst);
        })),
    };
    (hooks, ok, err, seen)
}

fn expired(mut t: TokenSet) -> TokenSet {
    t.expires_at = 0;
    t
}

/// Every method of the surface, end to end.
pub async fn every_method<A: Api>() {
    let served = served();
    let api: A = client(&served);

    // Login.
    let agent = login(&served, &api).await;
    assert_eq!(agent.id(), "usr_alice");
    assert_eq!(agent.email(), Some("alice@example.com"));
    assert!(agent.has_access_in("org_acme", "delete", "projects.tasks"));
    assert!(!agent.has_access_in("org_globex", "write", "billing"));

    // UserInfo.
    let info = api.get_user_info(agent.clone()).await.unwrap();
    assert_eq!(info.sub, "usr_alice");
    assert_eq!(info.email.as_deref(), Some("alice@example.com"));

    // create_agent on fresh tokens: no refresh.
    served.with(Issuer::reset_stats);
    let (hooks, ok, _, _) = counter_hooks();
    let again = api
        .create_agent(agent.tokens().clone(), hooks)
        .await
        .unwrap();
    assert_eq!(again.id(), "usr_alice");
    assert_eq!(served.stats().refresh_requests, 0);
    assert_eq!(ok.load(Ordering::SeqCst), 0);

    // Manual refresh rotates and calls on_refresh once with the new set.
    let (hooks, ok, err, seen) = counter_hooks();
    let refreshed = api.refresh(agent.tokens().clone(), hooks).await.unwrap();
    assert_eq!(served.stats().refresh_requests, 1);
    assert_eq!(
        (ok.load(Ordering::SeqCst), err.load(Ordering::SeqCst)),
        (1, 0)
    );
    assert_ne!(
        refreshed.tokens().refresh_token,
        agent.tokens().refresh_token
    );
    assert_eq!(seen.lock().unwrap()[0], *refreshed.tokens());

    // Access-token validation (RFC 9068) for an API whose audience is the client id.
    let at = refreshed.tokens().access_token.clone();
    let info = api
        .validate_access_token(at.clone(), "client_web".into())
        .await
        .unwrap();
    assert_eq!(info.agent.id(), "usr_alice");
    assert_eq!(info.client_id, "client_web");
    let wrong = api
        .validate_access_token(at.clone(), "other_api".into())
        .await;
    assert_eq!(wrong.unwrap_err().code(), "invalid_token");

    // Introspection and revocation.
    let rt = refreshed.tokens().refresh_token.clone().unwrap();
    let i = api
        .introspect(at.clone(), Some(TokenTypeHint::AccessToken))
        .await
        .unwrap();
    assert!(i.active);
    assert_eq!(i.sub.as_deref(), Some("usr_alice"));
    api.revoke_token(rt.clone(), Some(TokenTypeHint::RefreshToken))
        .await
        .unwrap();
    let i = api.introspect(rt, None).await.unwrap();
    assert!(!i.active);

    // Logout URL.
    let id_token = refreshed.tokens().id_token.clone().unwrap();
    let url = api
        .create_logout_url(
            &LogoutRequest::new()
                .id_token_hint(id_token)
                .post_logout_redirect_uri("http://127.0.0.1/logged-out")
                .state("s1"),
        )
        .unwrap();
    assert!(
        url.starts_with(&format!("{}/logout?", served.issuer_url())),
        "{url}"
    );
    assert!(url.contains("id_token_hint=") && url.contains("state=s1"));

    // exchange_code (lower level).
    let tx = api
        .create_authorization_url(&AuthorizationRequest::new(["openid"]))
        .unwrap();
    let callback = authorize(&served, tx.url.as_str());
    let params = authpi_idp::CallbackParams::parse(&callback).unwrap();
    let code = params.get("code").unwrap().to_owned();
    let by_code = api
        .exchange_code(code, tx.code_verifier.clone())
        .await
        .unwrap();
    assert_eq!(by_code.id(), "usr_alice");

    // Client credentials with the M2M client.
    let m2m = A::build(
        Config::builder(served.issuer_url(), "c_m2m")
            .client_secret("secret_m2m")
            .build()
            .unwrap(),
        TransportOptions::default(),
    )
    .unwrap();
    let bot = m2m
        .client_credentials(vec!["reports:read".into()])
        .await
        .unwrap();
    assert_eq!(bot.id(), "c_m2m");
    assert!(bot.has_access("read", "reports"));
    assert!(!bot.has_access("write", "reports"));
}

/// Discovery instead of the AuthPI layout.
pub async fn discovery<A: Api>() {
    let served = served();
    let api = A::discover(web_config(&served)).await.unwrap();
    let s = served.stats();
    assert_eq!((s.discovery_requests, s.jwks_requests), (1, 1));
    let agent = login(&served, &api).await;
    assert_eq!(agent.id(), "usr_alice");
    assert_eq!(served.stats().jwks_requests, 1, "keys came from discovery");
}

/// N concurrent `create_agent` on an expired token set: one refresh request, the same
/// rotated tokens for everyone, and every caller's `on_refresh` stores them (issue #12 item
/// 1); a late caller with the old set gets them too. The stall makes the callers overlap, but
/// nothing depends on it: a caller that comes after the leader finished is answered from the
/// grace period with the same tokens.
pub async fn single_flight_refresh<A: Api>() {
    const N: usize = 8;
    let served = served();
    let api: A = client(&served);
    let agent = login(&served, &api).await;
    let old = expired(agent.into_tokens());
    served.with(Issuer::reset_stats);
    served.with(|i| i.set_stall("/token", Duration::from_millis(100)));
    let (hooks, ok, err, seen) = counter_hooks();
    let mut tasks = Vec::new();
    for _ in 0..N {
        let (api, old, hooks) = (api.clone(), old.clone(), hooks.clone());
        tasks.push(tokio::spawn(
            async move { api.create_agent(old, hooks).await },
        ));
    }
    let mut agents = Vec::new();
    for t in tasks {
        agents.push(t.await.unwrap().unwrap());
    }
    served.with(|i| i.set_stall("/token", Duration::ZERO));
    assert_eq!(served.stats().refresh_requests, 1);
    assert_eq!(
        ok.load(Ordering::SeqCst),
        N,
        "every caller's on_refresh runs"
    );
    assert_eq!(err.load(Ordering::SeqCst), 0);
    let first = agents[0].tokens().clone();
    assert_ne!(first.refresh_token, old.refresh_token);
    for a in &agents {
        assert_eq!(a.tokens(), &first);
    }
    assert!(seen.lock().unwrap().iter().all(|t| *t == first));
    // Just after: the old token set again (grace period) ⇒ no new request, same result.
    let late = api.create_agent(old.clone(), hooks.clone()).await.unwrap();
    assert_eq!(late.tokens().refresh_token, first.refresh_token);
    assert_eq!(served.stats().refresh_requests, 1);
    assert_eq!(ok.load(Ordering::SeqCst), N + 1);
}

/// Concurrent JWKS fetches share one request. Independent of timing: a caller that starts
/// after the fetch has the keys already or, if it took its key snapshot before the cache was
/// updated, is answered with the response behind the cache, never a second GET.
pub async fn single_flight_jwks<A: Api>() {
    let served = served();
    let api: A = client(&served);
    let token = {
        let other: A = client(&served);
        login(&served, &other).await.into_tokens().access_token
    };
    served.with(Issuer::reset_stats);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (api, token) = (api.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            api.validate_access_token(token, "client_web".into()).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().agent.id(), "usr_alice");
    }
    assert_eq!(served.stats().jwks_requests, 1);
}

/// A 2 MiB body is refused at the 1 MiB default cap.
pub async fn size_cap<A: Api>() {
    let served = served();
    let api: A = client(&served);
    let agent = login(&served, &api).await;
    let mut body = b"{\"sub\":\"usr_alice\",\"pad\":\"".to_vec();
    body.resize(2 * 1024 * 1024, b'a');
    body.extend_from_slice(b"\"}");
    let resp = http::Response::builder()
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    served.with(|i| i.push_response("/userinfo", resp));
    let err = api.get_user_info(agent).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport(TransportError::TooLarge { limit: 1_048_576 })
        ),
        "{err:?}"
    );
}

/// A stalled provider hits the configured deadline.
pub async fn deadline<A: Api>() {
    let served = served();
    let api = A::build(
        web_config(&served),
        TransportOptions::new().timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let agent = login(&served, &api).await;
    served.with(|i| i.set_stall("/userinfo", Duration::from_secs(3)));
    let start = Instant::now();
    let err = api.get_user_info(agent).await.unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(err, Error::Transport(TransportError::Timeout)),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    served.with(|i| i.set_stall("/userinfo", Duration::ZERO));
}

/// A 302 is returned to the core (an error), never followed.
pub async fn redirects_not_followed<A: Api>() {
    let served = served();
    let api: A = client(&served);
    let agent = login(&served, &api).await;
    let target = format!("{}/userinfo", served.issuer_url());
    let resp = http::Response::builder()
        .status(302)
        .header("location", target)
        .body(Vec::new())
        .unwrap();
    served.with(|i| i.push_response("/userinfo", resp));
    served.with(Issuer::reset_stats);
    let err = api.get_user_info(agent).await.unwrap_err();
    assert_eq!(err.status(), Some(302), "{err:?}");
    assert_eq!(
        served.stats().userinfo_requests,
        1,
        "the redirect was followed"
    );
}

/// Provider errors reach the caller with the same codes in every adapter.
pub async fn provider_errors<A: Api>() {
    let served = served();
    let api: A = client(&served);
    let agent = login(&served, &api).await;
    let tokens = agent.tokens().clone();

    // A rotated-away refresh token: invalid_grant, session over, on_refresh_error once. (A
    // second client: the first one would answer from its single-flight grace period.)
    let _ = api.refresh(tokens.clone(), Hooks::default()).await.unwrap();
    let other: A = client(&served);
    let (hooks, ok, err, _) = counter_hooks();
    let e = other.refresh(tokens.clone(), hooks).await.unwrap_err();
    assert_eq!(e.code(), "invalid_grant", "{e:?}");
    assert!(e.is_session_over());
    assert_eq!(
        (ok.load(Ordering::SeqCst), err.load(Ordering::SeqCst)),
        (0, 1)
    );

    // Due without a refresh token: token_expired (and on_refresh_error).
    let mut no_rt = expired(tokens.clone());
    no_rt.refresh_token = None;
    let (hooks, _, err, _) = counter_hooks();
    let e = api.create_agent(no_rt, hooks).await.unwrap_err();
    assert_eq!(e.code(), "token_expired");
    assert_eq!(err.load(Ordering::SeqCst), 1);

    // Wrong client secret: invalid_client.
    let bad = A::build(
        Config::builder(served.issuer_url(), "client_web")
            .client_secret("wrong")
            .redirect_uri(REDIRECT)
            .build()
            .unwrap(),
        TransportOptions::default(),
    )
    .unwrap();
    let e = bad
        .introspect(tokens.access_token.clone(), None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_client");
    assert_eq!(e.status(), Some(401));

    // A blocked user: user_blocked on refresh.
    let fresh = login(&served, &api).await;
    served.with(|i| i.block_user("usr_alice"));
    let e = api
        .refresh(fresh.into_tokens(), Hooks::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "user_blocked");
    served.with(|i| i.unblock_user("usr_alice"));

    // A failing on_refresh stops the operation, on_refresh_error reports it, and the error
    // carries the rotated tokens (issue #12 item 5): storing those later keeps the session.
    let fresh = login(&served, &api).await.into_tokens();
    let err_count = Arc::new(AtomicUsize::new(0));
    let ec = err_count.clone();
    let hooks = Hooks {
        on_refresh: Some(Arc::new(|_| Err("store down".into()))),
        on_refresh_error: Some(Arc::new(move |_| {
            ec.fetch_add(1, Ordering::SeqCst);
        })),
    };
    let e = api.refresh(fresh.clone(), hooks).await.unwrap_err();
    assert!(matches!(e, Error::Callback { .. }), "{e:?}");
    assert_eq!(err_count.load(Ordering::SeqCst), 1);
    let rotated = e
        .rotated_tokens()
        .expect("the error carries the tokens")
        .clone();
    assert_ne!(rotated.refresh_token, fresh.refresh_token);
    let shown = format!("{e:?}");
    let secret = rotated.refresh_token.clone().unwrap();
    assert!(
        !shown.contains(&secret) && !shown.contains(&rotated.access_token),
        "{shown}"
    );
    // The carried set is live: it refreshes.
    let next = other.refresh(rotated, Hooks::default()).await.unwrap();
    assert_eq!(next.id(), "usr_alice");
}

/// A 429 with `Retry-After` on a refresh: the delay reaches the caller, nothing is retried.
pub async fn rate_limited<A: Api>() {
    let served = served();
    let api: A = client(&served);
    let agent = login(&served, &api).await;
    let resp = http::Response::builder()
        .status(429)
        .header("retry-after", "7")
        .body(Vec::new())
        .unwrap();
    served.with(|i| i.push_response("/token", resp));
    served.with(Issuer::reset_stats);
    let (hooks, ok, err, _) = counter_hooks();
    let e = api
        .create_agent(expired(agent.into_tokens()), hooks)
        .await
        .unwrap_err();
    assert_eq!(e.retry_after(), Some(7), "{e:?}");
    assert_eq!(e.code(), "rate_limited");
    assert_eq!(
        served.stats().token_requests,
        1,
        "a token request is never retried"
    );
    assert_eq!(
        (ok.load(Ordering::SeqCst), err.load(Ordering::SeqCst)),
        (0, 1)
    );
}

/// The `User-Agent` sent on the wire names the adapter (captured by a raw loopback listener
/// that answers the discovery request with a 500).
pub async fn user_agent<A: Api>() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_owned());
        }
        let mut w = stream;
        w.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        )
        .unwrap();
        head
    });
    let config = Config::builder(format!("http://127.0.0.1:{port}/i_ua"), "client_web")
        .build()
        .unwrap();
    let err = A::discover(config).await.unwrap_err();
    assert!(matches!(err, Error::Idp(_)), "{err:?}");
    let head = server.join().unwrap();
    let expected = format!(
        "user-agent: authpi-idp-rs/{} ({})",
        authpi_idp_async::VERSION,
        A::NAME
    );
    assert!(
        head.iter().any(|l| l.eq_ignore_ascii_case(&expected)),
        "{head:?}"
    );
    assert!(head[0].starts_with("GET /i_ua/.well-known/openid-configuration "));
}

/// Issue #12 item 1: a refresh led without `on_refresh` does not mark the result persisted:
/// a caller with `on_refresh` that gets the shared result (grace period) still stores it.
pub async fn callback_mixing<A: Api>() {
    let served = served();
    let api: A = client(&served);
    let old = expired(login(&served, &api).await.into_tokens());
    served.with(Issuer::reset_stats);
    let first = api.refresh(old.clone(), Hooks::default()).await.unwrap();
    let (hooks, ok, _, seen) = counter_hooks();
    let second = api.create_agent(old, hooks).await.unwrap();
    assert_eq!(second.tokens(), first.tokens());
    assert_eq!(served.stats().refresh_requests, 1, "shared, not re-sent");
    assert_eq!(ok.load(Ordering::SeqCst), 1, "its own on_refresh ran");
    assert_eq!(seen.lock().unwrap()[0], *first.tokens());
}

/// Issue #12 item 4: a refresh asking for a resource never gets the answer to one that asked
/// for none (the flight key covers the whole request).
pub async fn flight_key_covers_resources<A: Api>() {
    let served = served();
    let api: A = client(&served);
    let old = expired(login(&served, &api).await.into_tokens());
    served.with(Issuer::reset_stats);
    let plain = api.refresh(old.clone(), Hooks::default()).await.unwrap();
    let resources = vec!["https://api.b.example".to_owned()];
    let other = api.refresh_for(old, Hooks::default(), resources).await;
    assert_eq!(
        served.stats().refresh_requests,
        2,
        "the resource-specific refresh was answered from a flight without that resource"
    );
    // The old token is spent, so the provider refuses it: never the token for another audience.
    if let Ok(a) = other {
        assert_ne!(a.tokens(), plain.tokens());
    }
}

/// Issue #12 item 6: a refresh that fails before its token request (the expired set needs
/// the key set first, and the JWKS prefetch fails) reports `on_refresh_error`.
pub async fn refresh_error_before_the_token_request<A: Api>() {
    let served = served();
    let tokens = expired(login(&served, &client::<A>(&served)).await.into_tokens());
    let api: A = client(&served); // empty key cache: the refresh must fetch the JWKS first
    let resp = http::Response::builder()
        .status(500)
        .body(Vec::new())
        .unwrap();
    served.with(|i| i.push_response("/jwks.json", resp));
    served.with(Issuer::reset_stats);
    let (hooks, ok, err, _) = counter_hooks();
    let e = api.create_agent(tokens, hooks).await.unwrap_err();
    assert_eq!(served.stats().refresh_requests, 0, "{e:?}");
    assert_eq!(
        (ok.load(Ordering::SeqCst), err.load(Ordering::SeqCst)),
        (0, 1),
        "{e:?}"
    );
}

/// Issue #12 item 7: revoking the rotated refresh token (logout) purges the grace period: a
/// replayed old token set does not get a valid agent.
pub async fn revoke_purges_the_grace_period<A: Api>() {
    let served = served();
    let api: A = client(&served);
    let old = expired(login(&served, &api).await.into_tokens());
    let rotated = api.refresh(old.clone(), Hooks::default()).await.unwrap();
    let rt = rotated.tokens().refresh_token.clone().unwrap();
    api.revoke_token(rt, Some(TokenTypeHint::RefreshToken))
        .await
        .unwrap();
    let replay = api.create_agent(old, Hooks::default()).await;
    assert!(
        replay.is_err(),
        "a replayed token set got an agent after logout"
    );
}

/// Issue #12 item 2: a leader whose `on_refresh` panics has already published the rotated
/// response: a caller within the grace period gets it (no dead token re-sent) and stores it.
pub async fn panicking_on_refresh_still_publishes<A: Api>() {
    let served = served();
    let api: A = client(&served);
    let old = expired(login(&served, &api).await.into_tokens());
    served.with(Issuer::reset_stats);
    let hooks = Hooks {
        on_refresh: Some(Arc::new(|_| panic!("store exploded"))),
        ..Hooks::default()
    };
    assert!(api.refresh(old.clone(), hooks).await.is_err());
    let (hooks, ok, _, _) = counter_hooks();
    let again = api.create_agent(old.clone(), hooks).await.unwrap();
    assert_ne!(again.tokens().refresh_token, old.refresh_token);
    assert_eq!(served.stats().refresh_requests, 1);
    assert_eq!(ok.load(Ordering::SeqCst), 1);
}

/// A one-shot loopback server: reads one request (head and `Content-Length` body), then
/// `respond` writes whatever it likes. Returns the issuer URL to point a client at.
pub fn raw_server(
    respond: impl FnOnce(&mut std::net::TcpStream) + Send + 'static,
) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{BufRead, BufReader, Read};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        respond(&mut stream);
    });
    (format!("http://127.0.0.1:{port}/i_raw"), handle)
}

fn raw_client<A: Api>(issuer: &str, options: TransportOptions) -> A {
    let config = Config::builder(issuer, "client_web")
        .client_secret("secret_web")
        .build()
        .unwrap();
    A::build(config, options).unwrap()
}

/// The cap holds while reading, not only against an announced `Content-Length`: a chunked
/// body and a close-delimited body (no length at all) of 2 MiB are both refused.
pub async fn size_cap_without_content_length<A: Api>() {
    use std::io::Write;
    let chunk = vec![b'a'; 64 * 1024];
    let head_chunked =
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    let head_close =
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
    for chunked in [true, false] {
        let chunk = chunk.clone();
        let (issuer, server) = raw_server(move |s| {
            let head = if chunked { head_chunked } else { head_close };
            let _ = s.write_all(head.as_bytes());
            for _ in 0..32 {
                let ok = if chunked {
                    s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .and_then(|()| s.write_all(&chunk))
                        .and_then(|()| s.write_all(b"\r\n"))
                } else {
                    s.write_all(&chunk)
                };
                if ok.is_err() {
                    return; // the client hung up at the cap
                }
            }
            let _ = s.write_all(if chunked { b"0\r\n\r\n" } else { b"" });
        });
        let api: A = raw_client(&issuer, TransportOptions::default());
        let err = api.introspect("tok".into(), None).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Transport(TransportError::TooLarge { limit: 1_048_576 })
            ),
            "chunked={chunked}: {err:?}"
        );
        server.join().unwrap();
    }
}

/// The deadline covers the body: the status line and headers come at once, then the body
/// trickles in a byte at a time and never completes within the deadline.
pub async fn deadline_covers_a_trickled_body<A: Api>() {
    use std::io::Write;
    let (issuer, server) = raw_server(|s| {
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{",
        );
        // Trickle until the client hangs up (bounded: the server stops by itself).
        for _ in 0..200 {
            std::thread::sleep(Duration::from_millis(50));
            if s.write_all(b" ").and_then(|()| s.flush()).is_err() {
                return;
            }
        }
    });
    let api: A = raw_client(
        &issuer,
        TransportOptions::new().timeout(Duration::from_millis(400)),
    );
    let err = api.introspect("tok".into(), None).await.unwrap_err();
    assert!(
        matches!(err, Error::Transport(TransportError::Timeout)),
        "{err:?}"
    );
    server.join().unwrap();
}

/// POST 307/308 on the token endpoint are not followed (a follow would replay the client
/// secret and the refresh token): one token request, the status reaches the caller.
pub async fn post_redirects_not_followed<A: Api>() {
    for status in [307u16, 308] {
        let served = served();
        let api: A = client(&served);
        let old = expired(login(&served, &api).await.into_tokens());
        let resp = http::Response::builder()
            .status(status)
            .header("location", format!("{}/token", served.issuer_url()))
            .body(Vec::new())
            .unwrap();
        served.with(|i| i.push_response("/token", resp));
        served.with(Issuer::reset_stats);
        let err = api.refresh(old, Hooks::default()).await.unwrap_err();
        assert_eq!(err.status(), Some(status), "{err:?}");
        assert_eq!(
            served.stats().token_requests,
            1,
            "the {status} was followed"
        );
    }
}

/// A private CA (generated here) and a loopback HTTPS server whose certificate it signed,
/// answering one request with `{"active":false}`. Returns the CA's PEM, the issuer URL and the
/// server thread (it ends after one connection).
pub fn private_ca_server() -> (String, String, std::thread::JoinHandle<()>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
    use std::io::{BufRead, BufReader, Write};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let mut leaf_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf_params.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut reader = BufReader::new(&mut tls);
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return, // e.g. the client refused our certificate
                Ok(_) if line == "\r\n" => break,
                Ok(_) => {
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
            }
        }
        let mut body = vec![0; length];
        let _ = std::io::Read::read_exact(&mut reader, &mut body);
        let answer = b"{\"active\":false}";
        let _ = write!(
            tls,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            answer.len()
        );
        let _ = tls.write_all(answer);
        let _ = tls.flush();
        tls.conn.send_close_notify();
        let _ = tls.flush();
    });
    (ca.pem(), format!("https://127.0.0.1:{port}/i_tls"), server)
}

/// Issue #12 item 9: a provider behind a private CA. The default webpki roots and the OS trust
/// store refuse it; the CA given as custom roots (PEM) is trusted.
pub async fn private_ca_roots<A: Api>() {
    let (_, issuer, server) = private_ca_server();
    let api: A = raw_client(&issuer, TransportOptions::default());
    let err = api.introspect("tok".into(), None).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport(TransportError::Connect(_) | TransportError::Io(_))
        ),
        "{err:?}"
    );
    server.join().unwrap();

    // The OS trust store loads (this machine has one) and does not know the private CA.
    let os = authpi_idp_async::TlsRoots::Os;
    assert!(!os.certificates().unwrap().unwrap().is_empty());
    let (_, issuer, server) = private_ca_server();
    let api: A = raw_client(&issuer, TransportOptions::new().roots(os));
    assert!(api.introspect("tok".into(), None).await.is_err());
    server.join().unwrap();

    let (ca_pem, issuer, server) = private_ca_server();
    let roots = authpi_idp_async::TlsRoots::from_pem(ca_pem.as_bytes()).unwrap();
    let api: A = raw_client(&issuer, TransportOptions::new().roots(roots));
    let i = api.introspect("tok".into(), None).await.unwrap();
    assert!(!i.active);
    server.join().unwrap();
}

/// A loopback proxy for one connection: a `CONNECT` tunnel (https) or an absolute-form
/// request (http), forwarded to the origin. Returns its URL, and a thread that ends after the
/// connection with the request line it saw.
pub fn one_shot_proxy() -> (String, std::thread::JoinHandle<String>) {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        // Nobody connects (the client bypassed the proxy): stop by itself after a while.
        listener.set_nonblocking(true).unwrap();
        let start = std::time::Instant::now();
        let client = loop {
            match listener.accept() {
                Ok((c, _)) => break c,
                Err(_) if start.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return String::new(),
            }
        };
        client.set_nonblocking(false).unwrap();
        let mut reader = BufReader::new(client.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if !lower.starts_with("connection:") && !lower.starts_with("proxy-") {
                headers.push(line);
            }
        }
        let mut parts = request_line.split_whitespace();
        let (method, target) = (parts.next().unwrap(), parts.next().unwrap().to_owned());
        let mut client = client;
        if method == "CONNECT" {
            let mut origin = TcpStream::connect(&target).unwrap();
            client
                .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                .unwrap();
            let (mut c2, mut o2) = (client.try_clone().unwrap(), origin.try_clone().unwrap());
            let up = std::thread::spawn(move || {
                let _ = std::io::copy(&mut reader, &mut o2);
                let _ = o2.shutdown(std::net::Shutdown::Write);
            });
            let _ = std::io::copy(&mut origin, &mut c2);
            let _ = client.shutdown(std::net::Shutdown::Both);
            let _ = up.join();
        } else {
            let url = url::Url::parse(&target).unwrap();
            let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut origin = TcpStream::connect(addr).unwrap();
            let path = &target[target.find(url.path()).unwrap()..];
            write!(origin, "{method} {path} HTTP/1.1\r\n").unwrap();
            for h in &headers {
                origin.write_all(h.as_bytes()).unwrap();
            }
            origin.write_all(b"connection: close\r\n\r\n").unwrap();
            origin.write_all(&body).unwrap();
            let _ = std::io::copy(&mut origin, &mut client);
            let _ = client.shutdown(std::net::Shutdown::Both);
        }
        request_line.trim_end().to_owned()
    });
    (format!("http://127.0.0.1:{port}"), handle)
}
