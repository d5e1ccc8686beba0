//! The whole flow, sans-IO: login → agent → authorization → expiry → refresh with rotation →
//! UserInfo → revocation, against the embedded AuthPI-compatible issuer, in memory.
//!
//! Every request the core builds is printed and answered by the issuer's sans-IO handler; the
//! clock is a variable and the RNG is seeded, so the run is the same every time.
//!
//! Run: `cargo run --example flow`

use authpi_idp::{
    AuthorizationRequest, Client, Config, Error, KeySet, LogoutRequest, Operation, RefreshOptions,
    Step, TokenTypeHint, UnixTime,
};
use authpi_idp_testkit::Issuer;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

const ISSUER: &str = "https://idp.example.test/i_demo";

/// Drives an operation against the issuer, printing each step.
fn drive<O: Operation>(
    issuer: &mut Issuer,
    keys: &mut KeySet,
    mut op: O,
    now: UnixTime,
) -> Result<O::Output, Error> {
    loop {
        match op.poll(now)? {
            Step::Send(out) => {
                println!(
                    "  → {:?} {} {}",
                    out.kind,
                    out.request.method(),
                    out.request.uri()
                );
                let response = issuer.handle(out.request, now.as_secs());
                println!("  ← {}", response.status());
                op.handle_response(response);
            }
            Step::Persist(tokens) => println!(
                "  ✎ persist rotated tokens (expires_at {})",
                tokens.expires_at
            ),
            Step::KeysRefreshed(new) => {
                println!("  ⟳ key set refreshed ({} keys)", new.len());
                *keys = new;
            }
            Step::Done(output) => return Ok(output),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut issuer = Issuer::authpi_demo(ISSUER).build()?;
    let mut rng = ChaCha20Rng::seed_from_u64(2026);
    let mut now = UnixTime(1_767_312_000);

    let config = Config::builder(ISSUER, "client_web")
        .client_secret("secret_web")
        .redirect_uri("https://app.example.com/callback")
        .build()?;
    let client = Client::new(config)?;
    let mut keys = KeySet::empty();

    println!("1. authorization URL");
    let tx = client.authorization_url(
        &AuthorizationRequest::new(["openid", "email", "profile"]).org("org_acme"),
        &mut rng,
    )?;
    println!("  {}", tx.url);

    // The browser part: the issuer auto-approves alice and redirects to the callback.
    let redirect = issuer.handle(
        http::Request::get(tx.url.as_str()).body(Vec::new())?,
        now.as_secs(),
    );
    let callback = redirect
        .headers()
        .get("location")
        .ok_or("no redirect")?
        .to_str()?
        .to_owned();
    println!(
        "  callback: {}",
        callback.split('?').next().unwrap_or_default()
    );

    println!("2. callback → code exchange → verified ID token");
    let op = client.exchange_callback(callback.as_str(), &tx, &keys)?;
    let agent = drive(&mut issuer, &mut keys, op, now)?;
    println!(
        "  agent {} ({}) email {:?}, selected org {:?}",
        agent.id(),
        agent.principal_type().as_str(),
        agent.email(),
        agent.org_id()
    );
    for org in agent.organizations() {
        println!(
            "  member of {} as {:?} with {:?}",
            org.id, org.title, org.scopes
        );
    }

    println!("3. local authorization");
    for (org, action, resource) in [
        ("org_acme", "delete", "projects.tasks"),
        ("org_acme", "write", "users"),
        ("org_globex", "read", "billing"),
    ] {
        println!(
            "  {action} {resource} in {org}: {}",
            agent.has_access_in(org, action, resource)
        );
    }

    println!("4. an hour later: create_agent refreshes (rotation) before anything else");
    let stored = agent.into_tokens();
    now = now.plus(3600);
    let op = client.create_agent(stored.clone(), RefreshOptions::new(), &keys)?;
    let agent = drive(&mut issuer, &mut keys, op, now)?;
    println!(
        "  new access token, expires in {} s; refresh token rotated: {}",
        agent.expires_in(now),
        agent.tokens().refresh_token != stored.refresh_token
    );

    println!("5. userinfo, revocation, logout URL");
    let info = drive(&mut issuer, &mut keys, client.userinfo(&agent)?, now)?;
    println!("  userinfo sub {} name {:?}", info.sub, info.name);
    let access_token = agent.tokens().access_token.clone();
    drive(
        &mut issuer,
        &mut keys,
        client.revoke(&access_token, Some(TokenTypeHint::AccessToken))?,
        now,
    )?;
    let introspection = drive(
        &mut issuer,
        &mut keys,
        client.introspect(&access_token, Some(TokenTypeHint::AccessToken))?,
        now,
    )?;
    println!(
        "  access token revoked; introspection says active = {}",
        introspection.active
    );
    let id_token = agent.tokens().id_token.clone().unwrap_or_default();
    let logout = client.logout_url(&LogoutRequest::new().id_token_hint(id_token))?;
    println!(
        "  logout: {}…",
        logout.as_str().chars().take(60).collect::<String>()
    );
    println!(
        "7. replaying the spent refresh token ends the session (the issuer revokes the family)"
    );
    let op = client.refresh(stored, RefreshOptions::new(), &keys)?;
    match drive(&mut issuer, &mut keys, op, now) {
        Err(e) => println!("  {} (session over: {})", e.code(), e.is_session_over()),
        Ok(_) => return Err("a replayed refresh token was accepted".into()),
    }

    println!("done");
    Ok(())
}
