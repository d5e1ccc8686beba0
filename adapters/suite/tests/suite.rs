//! The behaviour suite, instantiated per adapter.

macro_rules! suite {
    ($module:ident, $api:ty) => {
        mod $module {
            use authpi_idp_adapter_suite::cases;
            type A = $api;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn every_method() {
                cases::every_method::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn discovery() {
                cases::discovery::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn single_flight_refresh() {
                cases::single_flight_refresh::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn single_flight_jwks() {
                cases::single_flight_jwks::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn size_cap() {
                cases::size_cap::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn deadline() {
                cases::deadline::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn redirects_not_followed() {
                cases::redirects_not_followed::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn provider_errors() {
                cases::provider_errors::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn rate_limited() {
                cases::rate_limited::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn user_agent() {
                cases::user_agent::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn private_ca_roots() {
                cases::private_ca_roots::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn callback_mixing() {
                cases::callback_mixing::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn flight_key_covers_resources() {
                cases::flight_key_covers_resources::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn refresh_error_before_the_token_request() {
                cases::refresh_error_before_the_token_request::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn revoke_purges_the_grace_period() {
                cases::revoke_purges_the_grace_period::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn panicking_on_refresh_still_publishes() {
                cases::panicking_on_refresh_still_publishes::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn size_cap_without_content_length() {
                cases::size_cap_without_content_length::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn deadline_covers_a_trickled_body() {
                cases::deadline_covers_a_trickled_body::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn post_redirects_not_followed() {
                cases::post_redirects_not_followed::<A>().await;
            }
        }
    };
}

suite!(reqwest, authpi_idp_reqwest::IdpClient);
suite!(hyper, authpi_idp_hyper::IdpClient);
suite!(ureq, authpi_idp_ureq::IdpClientSync);

/// Issue #12 item 8: `ReqwestTransport::from_builder` forces "no redirects" and the adapter's
/// `User-Agent`, whatever the caller's builder said: a POST 307 on the token endpoint is not
/// followed (it would replay the client secret and the refresh token).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reqwest_from_builder_forces_no_redirects_and_the_user_agent() {
    use authpi_idp_adapter_suite::cases;
    use authpi_idp_reqwest::{IdpClient, ReqwestTransport, TransportOptions};
    use std::io::{BufRead, BufReader, Write};
    let builder = || {
        ::reqwest::Client::builder()
            .redirect(::reqwest::redirect::Policy::limited(10))
            .user_agent("caller-agent/1")
    };

    let served = cases::served();
    let transport = ReqwestTransport::from_builder(builder(), TransportOptions::default()).unwrap();
    let api = IdpClient::with_transport(cases::web_config(&served), transport).unwrap();
    let mut old = cases::login(&served, &api).await.into_tokens();
    old.expires_at = 0;
    let resp = http::Response::builder()
        .status(307)
        .header("location", format!("{}/token", served.issuer_url()))
        .body(Vec::new())
        .unwrap();
    served.with(|i| i.push_response("/token", resp));
    served.with(authpi_idp_testkit::Issuer::reset_stats);
    let err = api
        .refresh(old, authpi_idp_reqwest::CreateAgentOptions::new())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(307), "{err:?}");
    assert_eq!(served.stats().token_requests, 1, "the 307 was followed");

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
            head.push(line.trim_end().to_ascii_lowercase());
        }
        let mut w = stream;
        w.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        )
        .unwrap();
        head
    });
    let config = authpi_idp::Config::builder(format!("http://127.0.0.1:{port}/i_ua"), "client_web")
        .build()
        .unwrap();
    let transport = ReqwestTransport::from_builder(builder(), TransportOptions::default()).unwrap();
    assert!(IdpClient::discover_with(config, transport).await.is_err());
    let head = server.join().unwrap();
    let expected = format!(
        "user-agent: authpi-idp-rs/{} (reqwest)",
        authpi_idp_async::VERSION
    );
    assert!(head.contains(&expected), "{head:?}");
}

/// Issue #12 item 9: hyper goes through the configured proxy: http in absolute form, https
/// through a `CONNECT` tunnel with TLS end to end (the private CA's server behind it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hyper_goes_through_the_proxy() {
    use authpi_idp_adapter_suite::cases;
    use authpi_idp_async::{TlsRoots, rustls_config};
    use authpi_idp_hyper::{HyperTransport, IdpClient, TransportOptions};
    use hyper_util::client::proxy::matcher::Matcher;

    // http: the testkit issuer, via the proxy.
    let served = cases::served();
    let (proxy, seen) = cases::one_shot_proxy();
    let matcher = Matcher::builder().all(proxy).build();
    let options = TransportOptions::default();
    let transport =
        HyperTransport::with_proxy(rustls_config(&options.roots).unwrap(), matcher, options)
            .unwrap();
    let api = IdpClient::with_transport(cases::web_config(&served), transport).unwrap();
    served.with(authpi_idp_testkit::Issuer::reset_stats);
    let i = api.introspect("tok", None).await.unwrap();
    assert!(!i.active);
    assert_eq!(
        seen.join().unwrap(),
        format!("POST {}/introspect HTTP/1.1", served.issuer_url())
    );

    // https: a CONNECT tunnel to the private-CA server; the proxy sees no HTTP inside.
    let (ca_pem, issuer, server) = cases::private_ca_server();
    let (proxy, seen) = cases::one_shot_proxy();
    let options = TransportOptions::default().roots(TlsRoots::from_pem(ca_pem.as_bytes()).unwrap());
    let matcher = Matcher::builder().all(proxy).build();
    let transport =
        HyperTransport::with_proxy(rustls_config(&options.roots).unwrap(), matcher, options)
            .unwrap();
    let config = authpi_idp::Config::builder(issuer.clone(), "client_web")
        .client_secret("secret_web")
        .build()
        .unwrap();
    let api = IdpClient::with_transport(config, transport).unwrap();
    let i = api.introspect("tok", None).await.unwrap();
    assert!(!i.active);
    let authority = issuer
        .trim_start_matches("https://")
        .trim_end_matches("/i_tls");
    assert_eq!(
        seen.join().unwrap(),
        format!("CONNECT {authority} HTTP/1.1")
    );
    server.join().unwrap();
}

/// Issue #12 item 11: the blocking client discovers over the transport it is given (its
/// deadline here), not over hard-coded defaults.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ureq_discovery_uses_the_given_transport() {
    use authpi_idp_adapter_suite::cases;
    use authpi_idp_ureq::{IdpClientSync, TransportError, TransportOptions, UreqTransport};
    use std::io::Write;
    let (issuer, server) = cases::raw_server(|s| {
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{",
        );
        for _ in 0..200 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            if s.write_all(b" ").and_then(|()| s.flush()).is_err() {
                return;
            }
        }
    });
    let config = authpi_idp::Config::builder(issuer, "client_web")
        .build()
        .unwrap();
    let options = TransportOptions::new().timeout(std::time::Duration::from_millis(300));
    let err = tokio::task::spawn_blocking(move || {
        IdpClientSync::discover_with(config, UreqTransport::new(options)).unwrap_err()
    })
    .await
    .unwrap();
    assert!(
        matches!(
            err,
            authpi_idp_ureq::Error::Transport(TransportError::Timeout)
        ),
        "{err:?}"
    );
    server.join().unwrap();
}
