//! `authpi-idp demo`: a whole session against the embedded issuer, over real HTTP on loopback.

use crate::commands::Outcome;
use crate::error::CliError;
use crate::net::now;
use crate::output::{self, Style, fingerprint};
use authpi_idp::{AuthorizationRequest, Config, TokenSet, TokenTypeHint};
use authpi_idp_testkit::Served;
use authpi_idp_ureq::{CreateAgentOptions, IdpClientSync, TransportOptions, UreqTransport};
use serde_json::json;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

/// The API the demo's access tokens are issued for (RFC 8707 resource).
pub const API: &str = "https://api.example.com";

/// The access decisions the demo shows: (organization, action, resource).
pub const DECISIONS: [(&str, &str, &str); 5] = [
    ("org_acme", "write", "projects.tasks"),
    ("org_acme", "read", "users"),
    ("org_acme", "delete", "users"),
    ("org_globex", "read", "billing"),
    ("org_globex", "write", "billing"),
];

/// Runs the demo.
pub fn run(style: Style) -> Result<Outcome, CliError> {
    let served = Served::start_demo()
        .map_err(|e| CliError::Io(format!("cannot start the embedded issuer: {e}")))?;
    let issuer = served.issuer_url().to_owned();
    let mut text = String::new();
    let _ = writeln!(text, "embedded AuthPI issuer at {issuer}");

    // Discovery + JWKS over HTTP, as for any OpenID provider.
    let config = Config::builder(&issuer, "client_web")
        .client_secret("secret_web")
        .redirect_uri("http://127.0.0.1/callback")
        .build()
        .map_err(|e| CliError::from(authpi_idp::Error::from(e)))?;
    let idp = IdpClientSync::discover(config)?;
    let _ = writeln!(
        text,
        "discovered the provider; {} verification keys",
        idp.keys().len()
    );

    // Login: the CLI plays the browser (the demo issuer approves at once and redirects).
    let request =
        AuthorizationRequest::new(["openid", "profile", "email", "offline_access"]).resource(API);
    let tx = idp.create_authorization_url(&request)?;
    let browser = UreqTransport::new(TransportOptions::default());
    let get = http::Request::get(tx.url.as_str())
        .body(Vec::new())
        .map_err(|_| CliError::Io("invalid authorization URL".into()))?;
    let redirect = browser.send(get).map_err(authpi_idp_ureq::Error::from)?;
    let location = redirect
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            CliError::Io(format!(
                "the authorization endpoint answered {} without a redirect",
                redirect.status()
            ))
        })?
        .to_owned();
    let agent = idp.exchange_callback(location.as_str(), &tx)?;
    let now = now();
    let _ = writeln!(text, "\nlogged in (ID token verified):");
    text.push_str(&output::agent_text(&agent, style, now));

    // Local authorization decisions.
    let _ = writeln!(text, "\naccess decisions (local, no network):");
    let mut decisions = Vec::new();
    for (org, action, resource) in DECISIONS {
        let allowed = agent.has_access_in(org, action, resource);
        let _ = writeln!(
            text,
            "  {:<7} {action} {resource} in {org}",
            if allowed { "allow" } else { "deny" }
        );
        decisions
            .push(json!({"org": org, "action": action, "resource": resource, "allowed": allowed}));
    }
    let _ = writeln!(
        text,
        "  owner of org_acme: {}",
        agent.is_owner_of("org_acme")
    );

    // One refresh: AuthPI rotates the refresh token; the rotated set is persisted first.
    let old = agent.tokens().clone();
    let persisted: Arc<Mutex<Option<TokenSet>>> = Arc::default();
    let sink = Arc::clone(&persisted);
    let options = CreateAgentOptions::new().on_refresh(move |t: TokenSet| {
        *sink.lock().unwrap_or_else(PoisonError::into_inner) = Some(t);
        Ok::<_, CliError>(())
    });
    let refreshed = idp.refresh(old.clone(), options)?;
    let new = refreshed.tokens().clone();
    let was_persisted = persisted
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        == Some(&new);
    let fp = |t: &Option<String>| t.as_deref().map_or("-".to_owned(), fingerprint);
    let rotated = old.refresh_token != new.refresh_token;
    let _ = writeln!(text, "\nrefreshed (token fingerprints, SHA-256 prefixes):");
    let _ = writeln!(
        text,
        "  refresh token {} -> {} ({})",
        fp(&old.refresh_token),
        fp(&new.refresh_token),
        if rotated { "rotated" } else { "NOT rotated" }
    );
    let _ = writeln!(
        text,
        "  access token  {} -> {}, expires at {}",
        fingerprint(&old.access_token),
        fingerprint(&new.access_token),
        new.expires_at
    );
    let _ = writeln!(text, "  persisted before use: {was_persisted}");

    // The API side: RFC 9068 validation of the new access token.
    let info = idp.validate_access_token(&new.access_token, API)?;
    let _ = writeln!(
        text,
        "\nAPI {API} validated the access token: subject {}, client {}, type {}, scope {}",
        info.agent.id(),
        info.client_id,
        info.dat_type.as_deref().unwrap_or("-"),
        info.agent.token_scopes().as_slice().join(" ")
    );

    // Revocation ends the session: the next refresh is refused.
    let rt = new
        .refresh_token
        .clone()
        .ok_or_else(|| CliError::Io("the provider returned no refresh token".into()))?;
    idp.revoke_token(&rt, Some(TokenTypeHint::RefreshToken))?;
    let after = match idp.refresh(new, CreateAgentOptions::new()) {
        Ok(_) => {
            return Err(CliError::Io(
                "a revoked refresh token was accepted by the issuer".into(),
            ));
        }
        Err(e) => e,
    };
    let _ = writeln!(
        text,
        "\nrevoked the refresh token; refreshing again fails with {} (session over: {})",
        after.code(),
        after.is_session_over()
    );
    let stats = served.stats();
    let _ = writeln!(
        text,
        "\nissuer saw: {} discovery, {} JWKS, {} authorize, {} token ({} refresh), {} revoke requests",
        stats.discovery_requests,
        stats.jwks_requests,
        stats.authorize_requests,
        stats.token_requests,
        stats.refresh_requests,
        stats.revoke_requests
    );

    let json = json!({
        "issuer": issuer,
        "agent": output::agent_json(&agent, style, now),
        "decisions": decisions,
        "refresh": {
            "rotated": rotated,
            "persisted": was_persisted,
            "expires_at": refreshed.expires_at(),
            "tokens": output::tokens_json(refreshed.tokens(), style.show_tokens, now),
        },
        "validated": output::access_token_json(&info, style, now),
        "revoked": {"refresh_after_revoke": after.code(), "session_over": after.is_session_over()},
    });
    Ok(Outcome {
        code: 0,
        json,
        text,
    })
}
