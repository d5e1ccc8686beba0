//! A blocking program: M2M client credentials, then a user session refreshed with the token
//! set persisted by `on_refresh`. Runs against the embedded testkit issuer on loopback.
//!
//! `cargo run -p authpi-idp-ureq --example blocking`
use authpi_idp::{AuthorizationRequest, Config};
use authpi_idp_testkit::Served;
use authpi_idp_ureq::{CreateAgentOptions, IdpClientSync};
use std::sync::{Arc, Mutex};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let served = Served::start_demo()?;

    // Machine to machine.
    let m2m = IdpClientSync::new(
        Config::builder(served.issuer_url(), "c_m2m")
            .client_secret("secret_m2m")
            .build()?,
    )?;
    let bot = m2m.client_credentials(["reports:read"])?;
    println!(
        "{} may read reports: {}",
        bot.id(),
        bot.has_access("read", "reports")
    );

    // A user login (the testkit's /authorize auto-approves; a browser would follow the URL).
    let idp = IdpClientSync::new(
        Config::builder(served.issuer_url(), "client_web")
            .client_secret("secret_web")
            .redirect_uri("http://127.0.0.1:8080/callback")
            .build()?,
    )?;
    let login = idp.create_authorization_url(&AuthorizationRequest::new(["openid", "email"]))?;
    let req = http::Request::get(login.url.as_str()).body(Vec::new())?;
    let now = served.now();
    let redirect = served.with(|i| i.handle(req, now));
    let callback = redirect.headers()["location"].to_str()?.to_owned();
    let agent = idp.exchange_callback(&callback, &login)?;
    println!("logged in: {}", agent.id());

    // Later: the stored tokens are due, so create_agent refreshes and persists first.
    let store = Arc::new(Mutex::new(agent.tokens().to_json()));
    let mut tokens = agent.into_tokens();
    tokens.expires_at = 0;
    let sink = Arc::clone(&store);
    let options = CreateAgentOptions::new()
        .on_refresh(move |t: authpi_idp::TokenSet| {
            *sink.lock().map_err(|_| "store poisoned")? = t.to_json();
            Ok::<_, &str>(())
        })
        .on_refresh_error(|e| eprintln!("refresh failed: {e}"));
    let agent = idp.create_agent(tokens, options)?;
    println!(
        "refreshed; acme owner: {}; stored {} bytes",
        agent.is_owner_of("org_acme"),
        store.lock().map(|s| s.len()).unwrap_or(0)
    );
    Ok(())
}
