//! One test per behaviour row of `shared/spec/reference-sdk.md` (the official Python SDK),
//! named after the Python method, driven against the testkit's sans-IO issuer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use authpi_idp::error::{CallbackError, ConfigError, Endpoint, ResponseError};
use authpi_idp::scope::{has_access, parse_scope};
use authpi_idp::{
    AuthorizationRequest, AuthorizationUrl, CallbackInput, CallbackParams, Client, Config, Error,
    KeySet, LogoutRequest, NonceCheck, OAuthErrorKind, Operation, RequestKind, SessionOptions,
    Step, TokenSet, TokenTypeHint, UnixTime,
};
use authpi_idp_testkit::{User, pkce_challenge};
use common::{Env, Event, ISS, REFRESH, T0, WEB_REDIRECT, drive, json_response};
use common::{web_client, web_config};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::{Value, json};

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(9)
}

/// Forwards to the issuer and rewrites the JSON body of the answer.
fn rewriting<'a>(
    env: &'a mut Env,
    path: &'a str,
    edit: impl Fn(&mut serde_json::Map<String, Value>) + 'a,
) -> impl FnMut(http::Request<Vec<u8>>) -> http::Response<Vec<u8>> + 'a {
    let now = env.now;
    move |req| {
        let hit = req.uri().path().ends_with(path);
        let resp = env.idp.handle(req, now);
        if !hit {
            return resp;
        }
        let mut body: serde_json::Map<String, Value> = serde_json::from_slice(resp.body()).unwrap();
        edit(&mut body);
        json_response(resp.status().as_u16(), &Value::Object(body))
    }
}

#[test]
fn idp_client_config_is_validated_at_construction() {
    let ok = |issuer: &str, redirect: &str| {
        Config::builder(issuer, "client_web")
            .redirect_uri(redirect)
            .build()
    };
    let cases: &[(&str, &str, bool)] = &[
        (
            "https://idp.authpi.com/i_a",
            "https://app.example.com/cb",
            true,
        ),
        (
            "https://idp.authpi.com/i_a/",
            "https://app.example.com/cb",
            true,
        ),
        ("http://127.0.0.1:9/i_a", "https://app.example.com/cb", true),
        (
            "http://idp.authpi.com/i_a",
            "https://app.example.com/cb",
            false,
        ),
        ("idp.authpi.com/i_a", "https://app.example.com/cb", false),
        (
            "ftp://idp.authpi.com/i_a",
            "https://app.example.com/cb",
            false,
        ),
        (
            "https://idp.authpi.com/i_a",
            "http://127.0.0.1:8080/cb",
            true,
        ),
        (
            "https://idp.authpi.com/i_a",
            "com.example.app:/callback",
            true,
        ),
        (
            "https://idp.authpi.com/i_a",
            "http://app.example.com/cb",
            false,
        ),
        (
            "https://idp.authpi.com/i_a",
            "https://app.example.com/cb#frag",
            false,
        ),
        (
            "https://idp.authpi.com/i_a",
            "https://user:pw@app.example.com/cb",
            false,
        ),
        (
            "https://idp.authpi.com/i_a",
            "https://app.example.com/c b",
            false,
        ),
        (
            "https://idp.authpi.com/i_a",
            "https://app.example.com/cb\n",
            false,
        ),
        (
            "https://idp.authpi.com/i_a",
            "https://*.example.com/cb",
            false,
        ),
    ];
    for (issuer, redirect, valid) in cases {
        assert_eq!(ok(issuer, redirect).is_ok(), *valid, "{issuer} {redirect}");
    }
    assert_eq!(
        Config::builder("https://idp.authpi.com/i_a", "")
            .build()
            .unwrap_err(),
        ConfigError::ClientId
    );
    assert!(matches!(
        Config::builder("https://idp.authpi.com/i_a", "c")
            .redirect_uri("http://app.example.com/cb")
            .build()
            .unwrap_err(),
        ConfigError::RedirectUri(_)
    ));
    assert_eq!(
        Config::builder("https://idp.authpi.com/i_a", "c")
            .leeway(301)
            .build()
            .unwrap_err(),
        ConfigError::Leeway
    );
    // Python defaults: auto_refresh on, refresh buffer 60 s.
    let c = Config::builder("https://idp.authpi.com/i_a", "c")
        .build()
        .unwrap();
    assert!(c.auto_refresh());
    assert_eq!(c.refresh_buffer(), 60);
    assert_eq!(c.issuer(), "https://idp.authpi.com/i_a");
}

#[test]
fn create_authorization_url_needs_openid_and_redirect_uri() {
    let client = web_client();
    let e = client
        .authorization_url(&AuthorizationRequest::new(["email", "profile"]), &mut rng())
        .unwrap_err();
    assert_eq!(e, Error::Config(ConfigError::OpenIdScopeRequired));
    let no_redirect = Client::new(
        Config::builder(ISS, "client_web")
            .client_secret("secret_web")
            .build()
            .unwrap(),
    )
    .unwrap();
    let e = no_redirect
        .authorization_url(&AuthorizationRequest::new(["openid"]), &mut rng())
        .unwrap_err();
    assert_eq!(e, Error::Config(ConfigError::RedirectUriRequired));
    assert_eq!(e.code(), "configuration_error");
}

#[test]
fn create_authorization_url_uses_32_random_bytes_and_s256() {
    let client = web_client();
    let tx = client
        .authorization_url(
            &AuthorizationRequest::new(["openid", "email"]).org("org_acme"),
            &mut rng(),
        )
        .unwrap();
    for v in [&tx.code_verifier, &tx.state, &tx.nonce] {
        assert_eq!(v.len(), 43, "base64url of 32 bytes, unpadded");
        assert!(
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
    assert_ne!(tx.state, tx.nonce);
    let url = url::Url::parse(&tx.url).unwrap();
    assert_eq!(
        url.as_str().split('?').next(),
        Some(format!("{ISS}/authorize").as_str())
    );
    let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let expect = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        q,
        vec![
            expect("client_id", "client_web"),
            expect("redirect_uri", WEB_REDIRECT),
            expect("response_type", "code"),
            expect("scope", "openid email"),
            expect("state", &tx.state),
            expect("nonce", &tx.nonce),
            expect("code_challenge", &pkce_challenge(&tx.code_verifier)),
            expect("code_challenge_method", "S256"),
            expect("org", "org_acme"),
        ]
    );
    assert_eq!(
        authpi_idp::pkce_challenge(&tx.code_verifier),
        pkce_challenge(&tx.code_verifier)
    );
    // Same seed, same values: no hidden entropy.
    let again = client
        .authorization_url(
            &AuthorizationRequest::new(["openid", "email"]).org("org_acme"),
            &mut rng(),
        )
        .unwrap();
    assert_eq!(again, tx);
    // Caller-supplied state and nonce are used as given.
    let fixed = client
        .authorization_url(
            &AuthorizationRequest::new(["openid"])
                .state("st")
                .nonce("nn"),
            &mut rng(),
        )
        .unwrap();
    assert_eq!((fixed.state.as_str(), fixed.nonce.as_str()), ("st", "nn"));
}

#[test]
fn authorization_url_json_matches_python_model_dump() {
    let client = web_client();
    let tx = client
        .authorization_url(
            &AuthorizationRequest::new(["openid"]).resource("https://api.example.com"),
            &mut rng(),
        )
        .unwrap();
    let text = serde_json::to_string(&tx).unwrap();
    let keys = ["url", "code_verifier", "state", "nonce", "resources"];
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| text.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 5);
    assert_eq!(v["resources"], json!(["https://api.example.com"]));
    // Python's model_dump of a transaction without resources; read back and used.
    let python = json!({
        "url": tx.url, "code_verifier": tx.code_verifier, "state": tx.state,
        "nonce": tx.nonce, "resources": null
    });
    let back: AuthorizationUrl = serde_json::from_value(python).unwrap();
    assert_eq!(back.resources, None);
    assert_eq!(back.state, tx.state);
    let none = client
        .authorization_url(&AuthorizationRequest::new(["openid"]), &mut rng())
        .unwrap();
    assert_eq!(
        serde_json::to_value(&none).unwrap()["resources"],
        Value::Null
    );
}

#[test]
fn exchange_callback_checks_state_first_then_error_then_code() {
    let client = web_client();
    let tx = client
        .authorization_url(&AuthorizationRequest::new(["openid"]), &mut rng())
        .unwrap();
    let keys = KeySet::empty();
    let s = &tx.state;
    let cases: Vec<(String, Error)> = vec![
        // Wrong state wins over everything, and mentions the provider's error.
        (
            format!("{WEB_REDIRECT}?error=access_denied&state=wrong"),
            Error::Callback(CallbackError::StateMismatch {
                provider_error: Some("access_denied".into()),
            }),
        ),
        (
            format!("{WEB_REDIRECT}?code=c&state=wrong"),
            Error::Callback(CallbackError::StateMismatch {
                provider_error: None,
            }),
        ),
        (
            format!("{WEB_REDIRECT}?code=c"),
            Error::Callback(CallbackError::StateMismatch {
                provider_error: None,
            }),
        ),
        // Then the provider's error, typed.
        (
            format!(
                "{WEB_REDIRECT}?error=login_required&error_description=no+session&state={s}&code=c"
            ),
            Error::OAuth(authpi_idp::OAuthError::new(
                "login_required",
                Some("no session"),
            )),
        ),
        // Then the code.
        (
            format!("{WEB_REDIRECT}?state={s}"),
            Error::Callback(CallbackError::MissingCode),
        ),
        // Fragment ignored: the code in it does not count.
        (
            format!("{WEB_REDIRECT}?state={s}#code=c"),
            Error::Callback(CallbackError::MissingCode),
        ),
        (
            format!("{WEB_REDIRECT}?state={s}&code=a&code=b"),
            Error::Callback(CallbackError::DuplicateParameter("code".into())),
        ),
    ];
    for (cb, expected) in cases {
        let e = client
            .exchange_callback(cb.as_str(), &tx, &keys)
            .unwrap_err();
        assert_eq!(e, expected, "{cb}");
    }
    let codes: Vec<&str> = ["invalid_state", "login_required", "missing_code"].to_vec();
    let got = [
        client
            .exchange_callback("?state=x&code=c", &tx, &keys)
            .unwrap_err(),
        client
            .exchange_callback(
                format!("?state={s}&error=login_required").as_str(),
                &tx,
                &keys,
            )
            .unwrap_err(),
        client
            .exchange_callback(format!("state={s}").as_str(), &tx, &keys)
            .unwrap_err(),
    ];
    assert_eq!(got.iter().map(Error::code).collect::<Vec<_>>(), codes);
    // Parsed parameters are accepted too, and the right state + code builds the exchange.
    let params = CallbackParams::from_pairs([("state", s.as_str()), ("code", "c")]).unwrap();
    assert!(client.exchange_callback(params, &tx, &keys).is_ok());
}

#[test]
fn exchange_code_requires_an_id_token() {
    let mut env = Env::demo();
    let client = web_client();
    let (tx, cb) = env.start_login(&client, &AuthorizationRequest::new(["openid"]));
    let code = common::query(&cb, "code");
    let keys = env.keys.clone();
    let op = client
        .exchange_code(
            &code,
            &tx.code_verifier,
            None,
            NonceCheck::of(&tx).unwrap(),
            &keys,
        )
        .unwrap();
    let (r, t) = {
        let transport = rewriting(&mut env, "/token", |b| {
            b.remove("id_token");
        });
        drive(op, UnixTime(T0), transport)
    };
    assert_eq!(
        r.unwrap_err(),
        Error::Response {
            endpoint: Endpoint::Token,
            reason: ResponseError::MissingIdToken
        }
    );
    assert!(t.nothing_out());
    // With the ID token (a new login), exchange_code yields the agent.
    let (tx, cb) = env.start_login(&client, &AuthorizationRequest::new(["openid"]));
    let code = common::query(&cb, "code");
    let keys = env.keys.clone();
    let (agent, t) = env.run(
        client
            .exchange_code(
                &code,
                &tx.code_verifier,
                None,
                NonceCheck::DangerousSkip,
                &keys,
            )
            .unwrap(),
    );
    assert_eq!(agent.unwrap().id(), "usr_alice");
    assert_eq!(
        t.first(RequestKind::AuthorizationCode)
            .form_all("redirect_uri"),
        vec![WEB_REDIRECT]
    );
    for nonce in [NonceCheck::DangerousSkip, NonceCheck::of(&tx).unwrap()] {
        assert_eq!(
            client
                .exchange_code("", "v", None, nonce, &keys)
                .unwrap_err(),
            Error::Config(ConfigError::EmptyToken)
        );
    }
    let expect_empty = NonceCheck::Expect {
        nonce: "",
        max_age: None,
    };
    assert_eq!(
        client
            .exchange_code("c", "v", None, expect_empty, &keys)
            .unwrap_err(),
        Error::Config(ConfigError::EmptyToken)
    );
}

/// `exchange_code` checks the login's `nonce` and `max_age` unless the caller writes
/// `NonceCheck::DangerousSkip` (DESIGN §1.3: the weakening is visible at the call site).
#[test]
fn exchange_code_checks_nonce_and_max_age_unless_dangerously_skipped() {
    let mut env = Env::demo();
    let client = web_client();
    // A first login opens the issuer's browser session: its auth_time is T0.
    env.login(&client, &AuthorizationRequest::new(["openid"]));
    env.advance(200);
    #[derive(Clone, Copy)]
    enum Check {
        OfTransaction,
        Wrong,
        MaxAge60,
        Skip,
    }
    let exchange = |env: &mut Env, req: &AuthorizationRequest, check: Check| {
        let (tx, cb) = env.start_login(&client, req);
        let code = common::query(&cb, "code");
        let keys = env.keys.clone();
        let nonce = match check {
            Check::OfTransaction => NonceCheck::of(&tx).unwrap(),
            Check::Wrong => NonceCheck::Expect {
                nonce: "another-login",
                max_age: None,
            },
            Check::MaxAge60 => NonceCheck::Expect {
                nonce: &tx.nonce,
                max_age: Some(60),
            },
            Check::Skip => NonceCheck::DangerousSkip,
        };
        let op = client
            .exchange_code(&code, &tx.code_verifier, None, nonce, &keys)
            .unwrap();
        env.run(op).0.map(|agent| agent.id().to_owned())
    };
    let plain = AuthorizationRequest::new(["openid"]);
    assert_eq!(
        exchange(&mut env, &plain, Check::OfTransaction).unwrap(),
        "usr_alice"
    );
    assert_eq!(
        exchange(&mut env, &plain, Check::Wrong).unwrap_err().code(),
        "invalid_nonce"
    );
    // The session authenticated 200 s ago (this request sent no max_age, so the issuer did not
    // re-authenticate): with max_age 60 its auth_time is too old.
    assert_eq!(
        exchange(&mut env, &plain, Check::MaxAge60).unwrap_err(),
        Error::IdToken(authpi_idp::error::TokenError::Claim(
            authpi_idp::error::ClaimError::AuthTime
        ))
    );
    assert_eq!(
        exchange(&mut env, &plain, Check::Skip).unwrap(),
        "usr_alice"
    );
    // NonceCheck::of takes max_age from the transaction.
    let (tx, _) = env.start_login(&client, &AuthorizationRequest::new(["openid"]).max_age(60));
    assert!(matches!(
        NonceCheck::of(&tx).unwrap(),
        NonceCheck::Expect { nonce, max_age: Some(60) } if nonce == tx.nonce
    ));
    // Debug never shows the nonce.
    let (tx, _) = env.start_login(&client, &plain);
    let debug = format!("{:?}", NonceCheck::of(&tx).unwrap());
    assert!(!debug.contains(&tx.nonce), "{debug}");
}

fn login_tokens(env: &mut Env) -> TokenSet {
    let (agent, _) = env.login(
        &web_client(),
        &AuthorizationRequest::new(["openid", "email"]),
    );
    agent.into_tokens()
}

#[test]
fn create_agent_without_refresh_token_in_buffer_is_token_expired() {
    let mut env = Env::demo();
    let mut tokens = login_tokens(&mut env);
    tokens.refresh_token = None;
    tokens.expires_at = env.now + 60; // inside the 60 s buffer
    let keys = env.keys.clone();
    let (r, t) = env.run(
        web_client()
            .create_agent(tokens.clone(), SessionOptions::new(), &keys, env.now())
            .unwrap(),
    );
    let e = r.unwrap_err();
    assert_eq!(e, Error::TokenExpired);
    assert_eq!(e.code(), "token_expired");
    assert!(t.sent.is_empty());
    assert!(t.nothing_out());
    // Just outside the buffer: no refresh needed, the agent is rebuilt locally.
    tokens.expires_at = env.now + 61;
    let (r, t) = env.run(
        web_client()
            .create_agent(tokens, SessionOptions::new(), &keys, env.now())
            .unwrap(),
    );
    assert_eq!(r.unwrap().id(), "usr_alice");
    assert_eq!(t.events, vec![Event::Done]);
}

#[test]
fn create_agent_refreshes_in_buffer_and_hands_out_tokens_before_done() {
    let mut env = Env::demo();
    let tokens = login_tokens(&mut env);
    env.now = tokens.expires_at - 60;
    let keys = env.keys.clone();
    let (r, t) = env.run(
        web_client()
            .create_agent(tokens.clone(), SessionOptions::new(), &keys, env.now())
            .unwrap(),
    );
    let agent = r.unwrap();
    assert_eq!(t.events[1..], [Event::Persist, Event::Done]);
    assert_eq!(agent.tokens(), &t.persisted[0]);
    assert!(t.first(REFRESH).form_all("resource").is_empty());
    // auto_refresh off (per call): no refresh even when expired.
    env.advance(3600);
    let (r, t) = env.run(
        web_client()
            .create_agent(
                tokens.clone(),
                SessionOptions::new().auto_refresh(false),
                &keys,
                env.now(),
            )
            .unwrap(),
    );
    assert!(r.unwrap().is_expired(env.now(), 30));
    assert_eq!(t.events, vec![Event::Done]);
    // …and off in the configuration.
    let manual = Client::new(web_config().auto_refresh(false).build().unwrap()).unwrap();
    let (_, t) = env.run(
        manual
            .create_agent(tokens, SessionOptions::new(), &keys, env.now())
            .unwrap(),
    );
    assert_eq!(t.events, vec![Event::Done]);
}

#[test]
fn refresh_keeps_old_refresh_token_and_scope_when_omitted() {
    let mut env = Env::demo();
    let tokens = login_tokens(&mut env);
    let keys = env.keys.clone();
    let op = web_client()
        .refresh(tokens.clone(), SessionOptions::new(), &keys, env.now())
        .unwrap();
    let (r, t) = {
        let transport = rewriting(&mut env, "/token", |b| {
            b.remove("refresh_token");
            b.remove("scope");
        });
        drive(op, UnixTime(T0), transport)
    };
    let agent = r.unwrap();
    let persisted = &t.persisted[0];
    assert_eq!(persisted.refresh_token, tokens.refresh_token);
    assert_eq!(persisted.scope.as_deref(), Some("openid email"));
    assert_eq!(persisted.scope, tokens.scope);
    assert_ne!(persisted.access_token, tokens.access_token);
    assert_eq!(agent.tokens(), persisted);
    // When the response has them, the new ones win. (The kept refresh token was rotated
    // away at the issuer, so this part starts from a new login.)
    let tokens = login_tokens(&mut env);
    let keys = env.keys.clone();
    let (r, t) = env.run(
        web_client()
            .refresh(
                tokens.clone(),
                SessionOptions::new().scope("openid"),
                &keys,
                env.now(),
            )
            .unwrap(),
    );
    r.unwrap();
    assert_eq!(t.first(REFRESH).form_all("scope"), vec!["openid"]);
    assert_ne!(t.persisted[0].refresh_token, tokens.refresh_token);
    assert_eq!(t.persisted[0].scope.as_deref(), Some("openid"));
}

#[test]
fn refresh_without_id_token_replaces_organizations_even_when_empty() {
    let mut env = Env::demo();
    let tokens = login_tokens(&mut env);
    env.idp.remove_membership("usr_alice", "org_acme");
    env.idp.remove_membership("usr_alice", "org_globex");
    let keys = env.keys.clone();
    let op = web_client()
        .refresh(tokens, SessionOptions::new(), &keys, env.now())
        .unwrap();
    let (r, t) = {
        let transport = rewriting(&mut env, "/token", |b| {
            b.remove("id_token");
        });
        drive(op, UnixTime(T0), transport)
    };
    let agent = r.unwrap();
    assert_eq!(
        t.events[1..],
        [
            Event::Persist,
            Event::Send(RequestKind::UserInfo),
            Event::Done
        ]
    );
    assert_eq!(t.persisted[0].subject_hint.as_deref(), Some("usr_alice"));
    assert_eq!(t.persisted[0].id_token, None);
    assert_eq!(agent.id(), "usr_alice");
    assert!(agent.organizations().is_empty());
    assert!(!agent.is_member_of("org_acme"));
}

#[test]
fn token_set_with_subject_hint_hydrates_from_userinfo() {
    let mut env = Env::demo();
    let mut tokens = login_tokens(&mut env);
    tokens.id_token = None;
    tokens.subject_hint = Some("usr_alice".into());
    let keys = env.keys.clone();
    let (r, t) = env.run(
        web_client()
            .create_agent(tokens.clone(), SessionOptions::new(), &keys, env.now())
            .unwrap(),
    );
    let agent = r.unwrap();
    assert_eq!(
        t.events,
        vec![Event::Send(RequestKind::UserInfo), Event::Done]
    );
    assert_eq!(agent.id(), "usr_alice");
    assert_eq!(agent.email(), Some("alice@example.com"));
    assert_eq!(agent.organizations().len(), 2);
    assert_eq!(agent.tokens(), &tokens);
    // A hint naming someone else: subject_mismatch, no agent.
    tokens.subject_hint = Some("usr_bob".into());
    let (r, t) = env.run(
        web_client()
            .create_agent(tokens, SessionOptions::new(), &keys, env.now())
            .unwrap(),
    );
    assert_eq!(
        r.unwrap_err(),
        Error::SubjectMismatch {
            expected: "usr_bob".into(),
            actual: "usr_alice".into()
        }
    );
    assert!(t.nothing_out());
}

#[test]
fn token_set_without_id_and_refresh_token_is_client_credentials_agent() {
    let mut env = Env::demo();
    let client = Client::new(
        Config::builder(ISS, "c_m2m")
            .client_secret("secret_m2m")
            .build()
            .unwrap(),
    )
    .unwrap();
    let (agent, _) = env.run(client.client_credentials(["reports:read"], &[]).unwrap());
    let stored = agent.unwrap().into_tokens().to_json();
    let tokens = TokenSet::from_json(stored.as_bytes()).unwrap();
    let (r, t) = env.run(
        client
            .create_agent(tokens, SessionOptions::new(), &KeySet::empty(), env.now())
            .unwrap(),
    );
    let agent = r.unwrap();
    assert_eq!(t.events, vec![Event::Done]);
    assert_eq!(agent.id(), "c_m2m");
    assert!(agent.organizations().is_empty());
    assert!(agent.has_access("read", "reports"));
    // Expired client-credentials tokens cannot be refreshed.
    env.advance(1800);
    let mut tokens = agent.into_tokens();
    tokens.expires_at = env.now;
    let (r, _) = env.run(
        client
            .create_agent(tokens, SessionOptions::new(), &KeySet::empty(), env.now())
            .unwrap(),
    );
    assert_eq!(r.unwrap_err(), Error::TokenExpired);
}

#[test]
fn client_credentials_needs_a_client_secret() {
    let client = Client::new(Config::builder(ISS, "c_m2m").build().unwrap()).unwrap();
    assert_eq!(
        client
            .client_credentials(["reports:read"], &[])
            .unwrap_err(),
        Error::Config(ConfigError::SecretRequired)
    );
}

#[test]
fn token_set_expires_at_is_now_plus_expires_in_or_3600() {
    let mut env = Env::demo();
    let client = Client::new(
        Config::builder(ISS, "c_m2m")
            .client_secret("secret_m2m")
            .build()
            .unwrap(),
    )
    .unwrap();
    let cases: [(Option<Value>, u64); 3] = [
        (None, 3600),
        (Some(json!(120)), 120),
        (Some(json!("240")), 240),
    ];
    for (expires_in, expected) in cases {
        let op = client.client_credentials(["reports:read"], &[]).unwrap();
        let transport = rewriting(&mut env, "/token", move |b| {
            b.remove("expires_in");
            if let Some(v) = &expires_in {
                b.insert("expires_in".into(), v.clone());
            }
        });
        let (r, _) = drive(op, UnixTime(T0), transport);
        assert_eq!(r.unwrap().expires_at(), T0 + expected);
    }
    let op = client.client_credentials(["reports:read"], &[]).unwrap();
    let transport = rewriting(&mut env, "/token", |b| {
        b.insert("expires_in".into(), json!(-5));
    });
    let (r, t) = drive(op, UnixTime(T0), transport);
    assert_eq!(
        r.unwrap_err(),
        Error::Response {
            endpoint: Endpoint::Token,
            reason: ResponseError::ExpiresIn
        }
    );
    assert!(t.nothing_out());
}

#[test]
fn get_user_info_keeps_standard_and_custom_claims() {
    let mut env = Env::demo();
    env.idp.add_user(
        User::new("usr_alice")
            .email("alice@example.com", true)
            .name("Alice Example")
            .custom_claim("plan", json!("pro"))
            .custom_claim("quota", json!({"seats": 5})),
    );
    let client = web_client();
    let (agent, _) = env.login(
        &client,
        &AuthorizationRequest::new(["openid", "email", "profile"]).org("org_acme"),
    );
    let (info, t) = env.run(client.userinfo(&agent).unwrap());
    let info = info.unwrap();
    assert_eq!(
        t.events,
        vec![Event::Send(RequestKind::UserInfo), Event::Done]
    );
    assert_eq!(info.sub, "usr_alice");
    assert_eq!(info.name.as_deref(), Some("Alice Example"));
    assert_eq!(info.email.as_deref(), Some("alice@example.com"));
    assert_eq!(info.email_verified, Some(true));
    assert_eq!(info.org_id.as_deref(), Some("org_acme"));
    assert_eq!(info.organizations.len(), 1);
    assert_eq!(info.organizations[0].id, "org_acme");
    assert_eq!(info.created_at, Some(1_767_225_600));
    assert_eq!(info.updated_at, Some(1_767_225_600));
    assert_eq!(info.custom.get("plan"), Some(&json!("pro")));
    assert_eq!(info.custom.get("quota"), Some(&json!({"seats": 5})));
    assert!(!info.custom.contains_key("sub"));
    assert!(!info.custom.contains_key("email"));
}

#[test]
fn revoke_token_non_200_is_an_error() {
    let mut env = Env::demo();
    let tokens = login_tokens(&mut env);
    let client = web_client();
    env.idp.push_response(
        "/revoke",
        http::Response::builder()
            .status(503)
            .header("retry-after", "30")
            .body(Vec::new())
            .unwrap(),
    );
    let (r, _) = env.run(client.revoke(&tokens.access_token, None).unwrap());
    let e = r.unwrap_err();
    assert_eq!(
        e,
        Error::Status {
            endpoint: Endpoint::Revocation,
            status: 503,
            retry_after: Some(30)
        }
    );
    assert_eq!(e.code(), "http_error");
    let (r, t) = env.run(
        client
            .revoke(&tokens.access_token, Some(TokenTypeHint::AccessToken))
            .unwrap(),
    );
    r.unwrap();
    let sent = t.first(RequestKind::Revocation);
    assert_eq!(sent.form_all("token"), vec![tokens.access_token.clone()]);
    assert_eq!(sent.form_all("token_type_hint"), vec!["access_token"]);
    let (info, _) = env.run(client.introspect(&tokens.access_token, None).unwrap());
    assert!(!info.unwrap().active);
    assert_eq!(
        client.revoke("", None).unwrap_err(),
        Error::Config(ConfigError::EmptyToken)
    );
}

#[test]
fn create_logout_url_uses_the_issuer_logout_endpoint() {
    let url = web_client().logout_url(&LogoutRequest::new()).unwrap();
    assert_eq!(url.as_str(), format!("{ISS}/logout?client_id=client_web"));
}

#[test]
fn token_set_json_is_shared_with_python() {
    // What Python's TokenSet.model_dump_json() writes.
    let python = r#"{"access_token":"at","token_type":"Bearer","expires_at":1767400000,"refresh_token":"rt","id_token":null,"subject_hint":"usr_alice","scope":"openid email"}"#;
    let t = TokenSet::from_json(python.as_bytes()).unwrap();
    assert_eq!(
        t,
        TokenSet {
            access_token: "at".into(),
            token_type: "Bearer".into(),
            expires_at: 1_767_400_000,
            refresh_token: Some("rt".into()),
            id_token: None,
            subject_hint: Some("usr_alice".into()),
            scope: Some("openid email".into()),
        }
    );
    assert_eq!(t.to_json(), python);
    // Python defaults: only access_token and expires_at are required.
    let minimal = TokenSet::from_json(br#"{"access_token":"at","expires_at":5}"#).unwrap();
    assert_eq!(minimal.token_type, "Bearer");
    assert_eq!(minimal.refresh_token, None);
    // Stored input is strict JSON: duplicates, wrong types and empty tokens are refused.
    for bad in [
        r#"{"access_token":"a","access_token":"b","expires_at":5}"#,
        r#"{"access_token":"a","expires_at":"5"}"#,
        r#"{"access_token":"","expires_at":5}"#,
        r#"{"expires_at":5}"#,
        r#"[]"#,
    ] {
        assert!(TokenSet::from_json(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn authenticated_agent_expiry_helpers_match_python() {
    let mut env = Env::demo();
    let (agent, _) = env.login(&web_client(), &AuthorizationRequest::new(["openid"]));
    let now = env.now();
    assert_eq!(agent.expires_at(), T0 + 1800);
    assert_eq!(agent.expires_in(now), 1800);
    assert_eq!(agent.expires_in(UnixTime(T0 + 1900)), -100);
    assert_eq!(authpi_idp::DEFAULT_EXPIRY_BUFFER, 30);
    assert!(!agent.is_expired(UnixTime(T0 + 1769), 30));
    assert!(agent.is_expired(UnixTime(T0 + 1770), 30));
}

#[test]
fn has_access_and_parse_scope_free_functions() {
    let scopes = ["projects:**", "users:read"];
    let table = [
        ("read", "projects", true),
        ("write", "projects", true),
        ("delete", "projects.tasks", true),
        ("read", "projects.tasks.comments", true),
        ("read", "users", true),
        ("write", "users", false),
        ("read", "billing", false),
    ];
    for (action, resource, granted) in table {
        assert_eq!(
            has_access(&scopes, action, resource),
            granted,
            "{action} {resource}"
        );
    }
    assert!(has_access(&["projects:*"], "delete", "projects"));
    assert!(!has_access(&["projects:*"], "read", "projects.tasks"));
    assert!(has_access(&["*:read"], "read", "users"));
    assert!(!has_access(&["*:read"], "read", "users.verifiers"));
    assert!(has_access(&["*:**"], "anything", "a.b.c"));
    let s = parse_scope("projects.tasks:write").unwrap();
    assert_eq!((s.resource, s.action), ("projects.tasks", "write"));
    let s = parse_scope("a:b:c").unwrap();
    assert_eq!((s.resource, s.action), ("a:b", "c"));
    for bad in ["owner", ":read", "projects:", ""] {
        assert!(parse_scope(bad).is_none(), "{bad}");
    }
}

#[test]
fn errors_expose_python_codes() {
    let mut env = Env::demo();
    let client = web_client();
    let tokens = login_tokens(&mut env);
    // Blocked user: refresh is refused by the provider; the code is kept verbatim.
    env.idp.block_user("usr_alice");
    let keys = env.keys.clone();
    let (r, t) = env.run(
        client
            .refresh(tokens.clone(), SessionOptions::new(), &keys, env.now())
            .unwrap(),
    );
    let e = r.unwrap_err();
    assert_eq!(e.code(), "user_blocked");
    assert!(e.is_session_over());
    assert!(t.nothing_out());
    env.idp.unblock_user("usr_alice");
    // The provider's codes map to kinds; unknown codes are kept verbatim.
    let kinds = [
        ("invalid_request", OAuthErrorKind::InvalidRequest),
        ("invalid_client", OAuthErrorKind::InvalidClient),
        ("invalid_grant", OAuthErrorKind::InvalidGrant),
        ("unauthorized_client", OAuthErrorKind::UnauthorizedClient),
        (
            "unsupported_grant_type",
            OAuthErrorKind::UnsupportedGrantType,
        ),
        ("invalid_scope", OAuthErrorKind::InvalidScope),
        ("access_denied", OAuthErrorKind::AccessDenied),
        ("invalid_target", OAuthErrorKind::InvalidTarget),
        ("interaction_required", OAuthErrorKind::InteractionRequired),
        ("login_required", OAuthErrorKind::LoginRequired),
        ("consent_required", OAuthErrorKind::ConsentRequired),
        ("invalid_token", OAuthErrorKind::InvalidToken),
        ("insufficient_scope", OAuthErrorKind::InsufficientScope),
        ("session_expired", OAuthErrorKind::SessionExpired),
        ("user_blocked", OAuthErrorKind::UserBlocked),
        (
            "account_linking_required",
            OAuthErrorKind::AccountLinkingRequired,
        ),
        ("brand_new_code", OAuthErrorKind::Other),
    ];
    for (code, kind) in kinds {
        env.idp.push_response(
            "/token",
            json_response(400, &json!({"error": code, "error_description": "d"})),
        );
        let keys = env.keys.clone();
        let (r, t) = env.run(
            client
                .refresh(tokens.clone(), SessionOptions::new(), &keys, env.now())
                .unwrap(),
        );
        let e = r.unwrap_err();
        assert_eq!(e.code(), code);
        assert_eq!(e.status(), Some(400));
        let Error::OAuth(o) = &e else { panic!("{e:?}") };
        assert_eq!(o.kind(), kind);
        assert_eq!(o.description(), Some("d"));
        assert_eq!(
            e.is_session_over(),
            matches!(code, "invalid_grant" | "session_expired" | "user_blocked"),
            "{code}"
        );
        assert!(t.nothing_out());
    }
    // Local failures carry the Python SDK's codes.
    let local = [
        (Error::TokenExpired, "token_expired"),
        (
            Error::SubjectMismatch {
                expected: "a".into(),
                actual: "b".into(),
            },
            "subject_mismatch",
        ),
        (
            Error::Config(ConfigError::OpenIdScopeRequired),
            "configuration_error",
        ),
        (
            Error::Callback(CallbackError::StateMismatch {
                provider_error: None,
            }),
            "invalid_state",
        ),
        (Error::Callback(CallbackError::MissingCode), "missing_code"),
    ];
    for (e, code) in local {
        assert_eq!(e.code(), code);
    }
}

#[test]
fn token_endpoint_429_with_retry_after_surfaces_retry_after() {
    let mut env = Env::demo();
    let tokens = login_tokens(&mut env);
    env.idp.push_response(
        "/token",
        http::Response::builder()
            .status(429)
            .header("retry-after", "17")
            .body(b"Too Many Requests".to_vec())
            .unwrap(),
    );
    let keys = env.keys.clone();
    let (r, t) = env.run(
        web_client()
            .refresh(tokens.clone(), SessionOptions::new(), &keys, env.now())
            .unwrap(),
    );
    let e = r.unwrap_err();
    assert_eq!(
        e,
        Error::Status {
            endpoint: Endpoint::Token,
            status: 429,
            retry_after: Some(17)
        }
    );
    assert_eq!(e.retry_after(), Some(17));
    assert_eq!(e.code(), "rate_limited");
    assert!(!e.is_session_over());
    assert!(t.nothing_out());
    // The refresh token was not spent: the next attempt succeeds.
    assert!(t.sent[0].kind.is_token_request());
    let (r, _) = env.run(
        web_client()
            .refresh(tokens, SessionOptions::new(), &keys, env.now())
            .unwrap(),
    );
    r.unwrap();
}

/// The forms in which `secret` shows up when it leaks into a `{:?}`/`{}` text: raw,
/// form-urlencoded, as the decimal bytes of `Vec<u8>`'s `Debug` (a request body), and base64
/// (standard and URL-safe, no padding) of `client_web:secret` (a Basic header) and of itself.
fn leak_forms(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut forms = vec![
        secret.to_owned(),
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
        secret
            .bytes()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    ];
    for text in [format!("client_web:{secret}"), secret.to_owned()] {
        forms.push(STANDARD_NO_PAD.encode(&text));
        forms.push(URL_SAFE_NO_PAD.encode(&text));
    }
    forms
}

fn assert_no_leak(what: &str, text: &str, secrets: &[(&str, &str)]) {
    for (name, secret) in secrets {
        for form in leak_forms(secret) {
            assert!(
                !text.contains(&form),
                "{name} leaked (as {form:?}) in {what}: {text}"
            );
        }
    }
}

/// (what, its `Debug` text)
type Debugs = Vec<(String, String)>;

/// Drives `op` against the issuer and returns the `Debug` of every step it produced, of each
/// request's headers (what a driver logging `request.headers()` would print), and of the end.
fn debug_of_run<O: Operation>(env: &mut Env, mut op: O) -> (Result<O::Output, Error>, Debugs) {
    let now = env.now();
    let mut seen = Vec::new();
    for _ in 0..32 {
        let step = op.poll(now);
        let Ok(step) = step else {
            return (Err(step.err().unwrap()), seen);
        };
        seen.push(("step".to_owned(), format!("{step:?}")));
        match step {
            Step::Send(out) => {
                seen.push((
                    format!("{:?} headers", out.kind),
                    format!("{:?}", out.request.headers()),
                ));
                seen.push((format!("{:?} outgoing", out.kind), format!("{out:?}")));
                op.handle_response(env.idp.handle(out.request, now.0));
            }
            Step::KeysRefreshed(keys) => env.keys = keys,
            Step::Done(out) => return (Ok(out), seen),
            _ => {}
        }
    }
    panic!("the operation did not finish");
}

/// `Debug` and `Display` of the SDK's own values — transactions, callbacks, operations, every
/// step and request they produce, token sets, agents, errors — never show a secret in any form
/// it could take there (see [`leak_forms`]).
#[test]
fn secrets_never_in_debug() {
    let mut env = Env::demo();
    let basic = || {
        Client::new(
            web_config()
                .client_auth(authpi_idp::ClientAuth::ClientSecretBasic)
                .build()
                .unwrap(),
        )
        .unwrap()
    };
    let client = basic();
    let config = client.config().clone();
    let request = AuthorizationRequest::new(["openid", "email"])
        .state("chosen-state-value-123")
        .nonce("chosen-nonce-value-456");
    let (tx, cb) = env.start_login(&client, &request);
    let code = common::query(&cb, "code");
    let keys = env.keys.clone();
    let exchange = client.exchange_callback(cb.as_str(), &tx, &keys).unwrap();
    let mut debugs = vec![
        ("config", format!("{config:?}")),
        ("client", format!("{client:?}")),
        ("request", format!("{request:?}")),
        ("transaction", format!("{tx:?}")),
        (
            "callback input",
            format!("{:?}", CallbackInput::from(cb.as_str())),
        ),
        (
            "callback input (params)",
            format!(
                "{:?}",
                CallbackInput::from(CallbackParams::parse(&cb).unwrap())
            ),
        ),
        (
            "callback params",
            format!("{:?}", CallbackParams::parse(&cb).unwrap()),
        ),
        ("nonce check", format!("{:?}", NonceCheck::of(&tx).unwrap())),
        ("exchange", format!("{exchange:?}")),
    ];
    let (agent, seen) = debug_of_run(&mut env, exchange);
    debugs.extend(seen.into_iter().map(|(w, d)| {
        (
            if w == "step" {
                "exchange step"
            } else {
                "exchange request"
            },
            d,
        )
    }));
    let agent = agent.unwrap();
    let tokens = agent.tokens().clone();
    debugs.push(("tokens", format!("{tokens:?}")));
    debugs.push(("agent", format!("{agent:?}")));
    // Refresh (Basic), UserInfo (Bearer), revocation and introspection (Basic + the token).
    let session = client
        .refresh(
            tokens.clone(),
            SessionOptions::new(),
            &env.keys.clone(),
            env.now(),
        )
        .unwrap();
    debugs.push(("session", format!("{session:?}")));
    let (refreshed, seen) = debug_of_run(&mut env, session);
    refreshed.unwrap();
    debugs.extend(seen.into_iter().map(|(_, d)| ("refresh", d)));
    let (info, seen) = debug_of_run(&mut env, client.userinfo(&agent).unwrap());
    info.unwrap();
    debugs.extend(seen.into_iter().map(|(_, d)| ("userinfo", d)));
    let (_, seen) = debug_of_run(
        &mut env,
        client.introspect(&tokens.access_token, None).unwrap(),
    );
    debugs.extend(seen.into_iter().map(|(_, d)| ("introspection", d)));
    let (revoked, seen) = debug_of_run(
        &mut env,
        client
            .revoke(tokens.refresh_token.as_deref().unwrap(), None)
            .unwrap(),
    );
    revoked.unwrap();
    debugs.extend(seen.into_iter().map(|(_, d)| ("revocation", d)));
    debugs.push((
        "logout request",
        format!(
            "{:?}",
            LogoutRequest::new().id_token_hint(tokens.id_token.clone().unwrap())
        ),
    ));
    // Errors: a wrong state with the real code, a provider error, a refused refresh.
    let bad = basic()
        .exchange_callback(
            format!("?state={}x&code={code}", tx.state).as_str(),
            &tx,
            &keys,
        )
        .unwrap_err();
    debugs.push(("callback error", format!("{bad} {bad:?}")));
    let (keys, now) = (env.keys.clone(), env.now());
    let (refused, seen) = debug_of_run(
        &mut env,
        client
            .refresh(tokens.clone(), SessionOptions::new(), &keys, now)
            .unwrap(),
    );
    let refused = refused.unwrap_err();
    assert_eq!(
        refused.code(),
        "invalid_grant",
        "the revoked refresh token is refused"
    );
    debugs.push(("refresh error", format!("{refused} {refused:?}")));
    debugs.extend(seen.into_iter().map(|(_, d)| ("refused refresh", d)));

    let secrets = [
        ("client secret", "secret_web"),
        ("code verifier", tx.code_verifier.as_str()),
        ("state", tx.state.as_str()),
        ("nonce", tx.nonce.as_str()),
        ("code", code.as_str()),
        ("access token", tokens.access_token.as_str()),
        ("refresh token", tokens.refresh_token.as_deref().unwrap()),
        ("ID token", tokens.id_token.as_deref().unwrap()),
    ];
    assert_eq!(tx.state, "chosen-state-value-123");
    for (what, text) in &debugs {
        assert_no_leak(what, text, &secrets);
    }
    // The detector sees each form where it occurs: in an unmarked copy of a real Basic
    // header, and in a real request body (which carries the token to the provider).
    let mut revoke = client.revoke(&tokens.access_token, None).unwrap();
    let Ok(Step::Send(out)) = revoke.poll(env.now()) else {
        panic!("revocation sends a request")
    };
    let mut unmarked = out.request.headers().clone();
    unmarked.values_mut().for_each(|v| v.set_sensitive(false));
    let unmarked = format!("{unmarked:?}");
    assert!(
        leak_forms("secret_web")
            .iter()
            .any(|f| unmarked.contains(f)),
        "{unmarked}"
    );
    let body = format!("{:?}", out.request.body());
    assert!(
        leak_forms(&tokens.access_token)
            .iter()
            .any(|f| body.contains(f))
    );
}

#[test]
fn create_agent_on_refresh_error_fires_only_before_tokens_are_handed_out() {
    use authpi_idp::{Operation, Step};
    // `Session::refreshed()` is what an adapter uses to decide on `on_refresh_error`.
    let run = |env: &mut Env, tokens: TokenSet| {
        let keys = env.keys.clone();
        let mut op = web_client()
            .refresh(tokens, SessionOptions::new(), &keys, env.now())
            .unwrap();
        let mut persisted = 0;
        let err = loop {
            match op.poll(env.now()) {
                Ok(Step::Send(out)) => op.handle_response(env.idp.handle(out.request, env.now)),
                Ok(Step::Persist(_)) => persisted += 1,
                Ok(Step::KeysRefreshed(_)) => {}
                Ok(Step::Done(_)) => panic!("expected a failure"),
                Ok(other) => panic!("{other:?}"),
                Err(e) => break e,
            }
        };
        (err, op.refreshed(), persisted)
    };
    // Failure at the token endpoint: nothing handed out, on_refresh_error applies.
    let mut env = Env::demo();
    let tokens = login_tokens(&mut env);
    env.idp.push_response(
        "/token",
        json_response(400, &json!({"error": "invalid_grant"})),
    );
    let (e, refreshed, persisted) = run(&mut env, tokens);
    assert_eq!(e.code(), "invalid_grant");
    assert_eq!((refreshed, persisted), (false, 0));
    // Failure after the rotated tokens were handed out (UserInfo hydration fails).
    let mut tokens = login_tokens(&mut env);
    tokens.id_token = None;
    tokens.subject_hint = Some("usr_alice".into());
    env.idp.add_client(
        authpi_idp_testkit::Client::confidential(
            "client_web",
            "secret_web",
            &["http://127.0.0.1/callback", WEB_REDIRECT],
        )
        .id_token_on_refresh(false),
    );
    env.idp
        .push_response("/userinfo", json_response(500, &json!({})));
    let (e, refreshed, persisted) = run(&mut env, tokens);
    assert_eq!(e.code(), "http_error");
    assert_eq!((refreshed, persisted), (true, 1));
}
