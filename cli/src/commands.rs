//! The commands on a provider and a token file (login lives in `login.rs`, `demo` in `demo.rs`).

use crate::args::{Conn, Where};
use crate::error::CliError;
use crate::net::{Http, Log, Net, now};
use crate::output::{self, Style, clean_line};
use crate::store::{self, Binding, FileLock, TokenFile};
use authpi_idp::{Agent, Client, Config, LogoutRequest, RefreshOptions, TokenSet, TokenTypeHint};
use serde_json::{Value, json};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// What a command produced: exit code 0 or 1 (`can`), and what to print.
#[derive(Debug)]
pub struct Outcome {
    /// 0 ok, 1 denied.
    pub code: u8,
    /// The JSON form.
    pub json: Value,
    /// The human form.
    pub text: String,
}

impl Outcome {
    /// A successful outcome.
    pub fn ok(json: Value, text: String) -> Self {
        Outcome {
            code: 0,
            json,
            text,
        }
    }
}

/// How a command prints and logs.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// Output style.
    pub style: Style,
    /// Diagnostics.
    pub log: Log,
}

impl Ctx {
    /// A transport that logs through this context.
    pub fn http(&self) -> Http {
        Http::new(self.log)
    }
}

/// Reads a secret from a file or stdin (`-`), trimmed.
pub fn read_secret_file(path: &Path, what: &str, arg: &str) -> Result<String, CliError> {
    let mut s = String::new();
    if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .read_to_string(&mut s)
            .map_err(|e| CliError::Io(format!("cannot read the {what} from stdin: {e}")))?;
    } else {
        s = std::fs::read_to_string(path).map_err(|e| {
            CliError::usage(
                format!("cannot read the {what} from {}: {e}", path.display()),
                Some(arg),
            )
        })?;
    }
    let s = s.trim();
    if s.is_empty() {
        return Err(CliError::usage(format!("the {what} is empty"), Some(arg)));
    }
    Ok(s.to_owned())
}

/// Builds the configuration from flags/environment, completed by (and checked against) the
/// binding of a token file.
pub fn config(
    conn: &Conn,
    binding: Option<&Binding>,
    redirect_uri: Option<&str>,
) -> Result<Config, CliError> {
    let issuer = conn
        .issuer
        .as_deref()
        .or(binding.map(|b| b.issuer.as_str()))
        .ok_or_else(|| {
            CliError::usage(
                "no issuer: pass --issuer or set AUTHPI_ISSUER_URL",
                Some("--issuer"),
            )
        })?;
    let client_id = conn
        .client_id
        .as_deref()
        .or(binding.map(|b| b.client_id.as_str()))
        .ok_or_else(|| {
            CliError::usage(
                "no client id: pass --client-id or set AUTHPI_CLIENT_ID",
                Some("--client-id"),
            )
        })?;
    if let Some(b) = binding {
        check_binding(b, &Binding::new(issuer, client_id))?;
    }
    let mut builder = Config::builder(issuer, client_id);
    let secret = match &conn.client_secret_file {
        Some(p) => Some(read_secret_file(
            p,
            "client secret",
            "--client-secret-file",
        )?),
        None => conn.client_secret.clone().filter(|s| !s.is_empty()),
    };
    if let Some(secret) = secret {
        builder = builder.client_secret(secret);
    }
    if let Some(uri) = redirect_uri.or(conn.redirect_uri.as_deref()) {
        builder = builder.redirect_uri(uri);
    }
    builder
        .build()
        .map_err(|e| CliError::from(authpi_idp::Error::from(e)))
}

/// Refuses to use a token file for another issuer or client than the one it was made for.
pub fn check_binding(stored: &Binding, asked: &Binding) -> Result<(), CliError> {
    if stored == asked {
        return Ok(());
    }
    Err(CliError::Binding(format!(
        "the stored session belongs to issuer {} and client {}, not issuer {} and client {}: \
         use its --profile/--tokens, or `authpi-idp logout` first",
        clean_line(&stored.issuer),
        clean_line(&stored.client_id),
        clean_line(&asked.issuer),
        clean_line(&asked.client_id)
    )))
}

/// The binding of a configuration.
pub fn binding_of(config: &Config) -> Binding {
    Binding::new(config.issuer(), config.client_id())
}

/// A provider connection: the cache next to the token file when fresh (no network), else
/// discovery.
fn net_for(ctx: Ctx, config: Config, file: &TokenFile) -> Result<Net, CliError> {
    let binding = binding_of(&config);
    if let Some((metadata, keys)) = file.read_provider(&binding, now())? {
        ctx.log.debug("using the cached provider metadata and keys");
        let client = Client::with_metadata(config, metadata)?;
        return Ok(Net::cached(client, keys, ctx.http()));
    }
    Net::discover(config, ctx.http())
}

/// A token file opened under its lock, with its provider.
struct Opened {
    net: Net,
    file: TokenFile,
    binding: Binding,
    tokens: TokenSet,
    lock: FileLock,
}

fn timeout(at: &Where) -> Duration {
    Duration::from_secs(at.lock_timeout)
}

fn open(ctx: Ctx, conn: &Conn, at: &Where, exclusive: bool) -> Result<Opened, CliError> {
    let path = store::resolve(at.tokens.as_deref(), at.profile.as_deref())?;
    let file = TokenFile::new(path).with_store(at.store, ctx.log);
    let lock = file.lock(exclusive, timeout(at), ctx.log)?;
    let (tokens, bound) = file.read_locked(&lock)?;
    let config = config(conn, bound.as_ref(), None)?;
    let binding = binding_of(&config);
    let net = net_for(ctx, config, &file)?;
    Ok(Opened {
        net,
        file,
        binding,
        tokens,
        lock,
    })
}

/// Rewrites the provider cache when it changed (under the exclusive lock, taken without
/// waiting when only a shared one is held: the cache is only an optimization).
fn save_cache(ctx: Ctx, o: Opened) {
    if !o.net.keys_changed {
        return;
    }
    let Opened {
        net,
        file,
        binding,
        lock,
        ..
    } = o;
    let _lock = if lock.exclusive {
        lock
    } else {
        drop(lock);
        match file.lock(true, Duration::ZERO, ctx.log) {
            Ok(l) => l,
            Err(_) => return,
        }
    };
    if let Err(e) = file.write_provider(&binding, net.client.metadata(), &net.keys) {
        ctx.log.note(&format!("warning: {e}"));
    }
}

/// Rebuilds the agent of the stored session. Reads under a shared lock; when a refresh is due
/// (or `force`), takes the exclusive lock, re-reads (another process may have refreshed
/// meanwhile) and refreshes, writing the rotated set before anything else happens.
fn session(ctx: Ctx, conn: &Conn, at: &Where, force: bool) -> Result<(Agent, Opened), CliError> {
    let mut o = open(ctx, conn, at, false)?;
    let buffer = o.net.client.config().refresh_buffer();
    let due = force || o.tokens.is_expired(now(), buffer);
    if due {
        drop(o);
        o = open(ctx, conn, at, true)?;
    }
    let client = o.net.client.clone();
    let tokens = o.tokens.clone();
    let agent = if !due {
        let op = client.create_agent(
            tokens,
            RefreshOptions::new().auto_refresh(false),
            &o.net.keys,
        )?;
        o.net.run_plain(op)
    } else {
        let op = if force {
            client.refresh(tokens, RefreshOptions::new(), &o.net.keys)?
        } else {
            client.create_agent(tokens, RefreshOptions::new(), &o.net.keys)?
        };
        let (file, binding) = (o.file.clone(), o.binding.clone());
        o.net.run(op, &mut |t| file.write_rotated(&t, &binding))
    };
    match agent {
        Ok(agent) => Ok((agent, o)),
        Err(e) => {
            save_cache(ctx, o);
            Err(e)
        }
    }
}

fn agent_outcome(agent: &Agent, style: Style) -> Outcome {
    let now = now();
    Outcome::ok(
        output::agent_json(agent, style, now),
        output::agent_text(agent, style, now),
    )
}

/// `whoami` / `refresh`.
pub fn whoami(ctx: Ctx, conn: &Conn, at: &Where, force: bool) -> Result<Outcome, CliError> {
    let (agent, o) = session(ctx, conn, at, force)?;
    save_cache(ctx, o);
    Ok(agent_outcome(&agent, ctx.style))
}

/// `token`: the access token (refreshed when due).
pub fn token(ctx: Ctx, conn: &Conn, at: &Where, header: bool) -> Result<Outcome, CliError> {
    let (agent, o) = session(ctx, conn, at, false)?;
    save_cache(ctx, o);
    let t = agent.tokens();
    let line = if header {
        format!("Authorization: Bearer {}\n", t.access_token)
    } else {
        format!("{}\n", t.access_token)
    };
    Ok(Outcome::ok(
        json!({
            "access_token": t.access_token,
            "token_type": "Bearer",
            "expires_at": t.expires_at,
            "expires_in": t.expires_in(now()),
        }),
        line,
    ))
}

/// `can`: 0 allowed, 1 denied.
pub fn can(
    ctx: Ctx,
    conn: &Conn,
    at: &Where,
    org: Option<&str>,
    action: &str,
    resource: &str,
) -> Result<Outcome, CliError> {
    let (agent, o) = session(ctx, conn, at, false)?;
    save_cache(ctx, o);
    let allowed = match org {
        Some(o) => agent.has_access_in(o, action, resource),
        None => agent.has_access(action, resource),
    };
    let verdict = if allowed { "allowed" } else { "denied" };
    let within = org
        .map(|o| format!(" in {}", clean_line(o)))
        .unwrap_or_default();
    Ok(Outcome {
        code: if allowed { 0 } else { 1 },
        json: json!({
            "allowed": allowed, "subject": agent.id(), "org": org,
            "action": action, "resource": resource,
        }),
        text: format!(
            "{verdict}: {} may{} {} {}{within}\n",
            clean_line(agent.id()),
            if allowed { "" } else { " not" },
            clean_line(action),
            clean_line(resource)
        ),
    })
}

/// `userinfo`.
pub fn userinfo(ctx: Ctx, conn: &Conn, at: &Where) -> Result<Outcome, CliError> {
    let (agent, mut o) = session(ctx, conn, at, false)?;
    let op = o.net.client.userinfo(&agent)?;
    let info = o.net.run_plain(op);
    save_cache(ctx, o);
    let v = output::userinfo_json(&info?);
    Ok(Outcome::ok(v.clone(), output::kv_text(&v)))
}

fn revoke_one(o: &mut Opened, token: &str, hint: TokenTypeHint) -> Result<(), CliError> {
    let op = o.net.client.revoke(token, Some(hint))?;
    o.net.run_plain(op)
}

/// `revoke`: under the exclusive lock (no refresh can rotate the token meanwhile), revoke, then
/// delete the local tokens.
pub fn revoke(
    ctx: Ctx,
    conn: &Conn,
    at: &Where,
    refresh: bool,
    access: bool,
) -> Result<Outcome, CliError> {
    let mut o = open(ctx, conn, at, true)?;
    let tokens = o.tokens.clone();
    let (token, hint) = match (&tokens.refresh_token, refresh, access) {
        (_, _, true) => (tokens.access_token.as_str(), TokenTypeHint::AccessToken),
        (Some(rt), _, false) => (rt.as_str(), TokenTypeHint::RefreshToken),
        (None, true, false) => {
            return Err(CliError::usage(
                "the stored session holds no refresh token",
                Some("--refresh"),
            ));
        }
        (None, false, false) => (tokens.access_token.as_str(), TokenTypeHint::AccessToken),
    };
    revoke_one(&mut o, token, hint)?;
    o.file.delete()?;
    let name = match hint {
        TokenTypeHint::RefreshToken => "refresh_token",
        _ => "access_token",
    };
    Ok(Outcome::ok(
        json!({"revoked": name, "deleted": o.file.path()}),
        format!(
            "revoked the {}; deleted {}\n",
            name.replace('_', " "),
            o.file.path().display()
        ),
    ))
}

/// `logout`: under the exclusive lock, revoke the refresh and access tokens, delete the local
/// tokens, print the provider's logout URL.
pub fn logout(
    ctx: Ctx,
    conn: &Conn,
    at: &Where,
    post_logout: Option<&str>,
) -> Result<Outcome, CliError> {
    let mut o = open(ctx, conn, at, true)?;
    let tokens = o.tokens.clone();
    let mut revoked = Vec::new();
    if o.net.client.metadata().revocation_endpoint().is_some() {
        if let Some(rt) = &tokens.refresh_token {
            revoke_one(&mut o, rt, TokenTypeHint::RefreshToken)?;
            revoked.push("refresh_token");
        }
        revoke_one(&mut o, &tokens.access_token, TokenTypeHint::AccessToken)?;
        revoked.push("access_token");
    } else {
        ctx.log
            .note("the provider has no revocation endpoint: only the local tokens are deleted");
    }
    let mut request = LogoutRequest::new();
    if let Some(id) = &tokens.id_token {
        request = request.id_token_hint(id.clone());
    }
    if let Some(u) = post_logout {
        request = request.post_logout_redirect_uri(u);
    }
    let url = o.net.client.logout_url(&request).ok();
    o.file.delete()?;
    let mut text = format!(
        "logged out: revoked {}; deleted {}\n",
        if revoked.is_empty() {
            "nothing".to_owned()
        } else {
            revoked.join(" and ").replace('_', " ")
        },
        o.file.path().display()
    );
    if let Some(u) = &url {
        text.push_str(&format!(
            "to end the session in the browser too, open:\n{u}\n"
        ));
    }
    Ok(Outcome::ok(
        json!({
            "revoked": revoked,
            "deleted": o.file.path(),
            "logout_url": url.as_ref().map(|u| u.as_str()),
        }),
        text,
    ))
}

/// `logout-url`.
pub fn logout_url(
    ctx: Ctx,
    conn: &Conn,
    path: Option<&Path>,
    post_logout: Option<&str>,
    state: Option<&str>,
) -> Result<Outcome, CliError> {
    let mut request = LogoutRequest::new();
    let client = match path {
        Some(p) => {
            let at = Where {
                tokens: Some(p.to_path_buf()),
                ..Where::default()
            };
            let o = open(ctx, conn, &at, false)?;
            if let Some(id) = o.tokens.id_token.clone() {
                request = request.id_token_hint(id);
            }
            o.net.client
        }
        None => Net::discover(config(conn, None, None)?, ctx.http())?.client,
    };
    if let Some(u) = post_logout {
        request = request.post_logout_redirect_uri(u);
    }
    if let Some(s) = state {
        request = request.state(s);
    }
    let url = client.logout_url(&request)?;
    Ok(Outcome::ok(
        json!({"url": url.as_str()}),
        format!("{url}\n"),
    ))
}

/// Scopes given as repeatable, space-separated flags.
pub fn split_scopes(scopes: &[String]) -> Vec<String> {
    scopes
        .iter()
        .flat_map(|s| s.split_whitespace())
        .map(str::to_owned)
        .collect()
}

/// `client-credentials`.
pub fn client_credentials(
    ctx: Ctx,
    conn: &Conn,
    scopes: &[String],
    path: Option<&Path>,
) -> Result<Outcome, CliError> {
    let mut net = Net::discover(config(conn, None, None)?, ctx.http())?;
    let op = net.client.client_credentials(split_scopes(scopes), &[])?;
    let agent = net.run_plain(op)?;
    if let Some(p) = path {
        let file = TokenFile::new(p).with_store(store::Store::File, ctx.log);
        save_login(ctx, &net, &file, agent.tokens(), 30)?;
    }
    Ok(agent_outcome(&agent, ctx.style))
}

/// Verification needs no client: RFC 9068 validation checks the issuer, the audience and the
/// signature. The core's configuration wants a client id, so a fixed one stands in; it is never
/// sent (validation makes no request but discovery and the JWKS).
const VERIFY_ONLY_CLIENT: &str = "authpi-idp-cli-verify";

/// `verify`: API-side access-token validation.
pub fn verify(ctx: Ctx, conn: &Conn, audience: &str, token: &str) -> Result<Outcome, CliError> {
    let token = if token == "-" {
        read_secret_file(Path::new("-"), "access token", "TOKEN")?
    } else {
        token.to_owned()
    };
    let conn = Conn {
        issuer: conn.issuer.clone(),
        client_id: Some(
            conn.client_id
                .clone()
                .unwrap_or_else(|| VERIFY_ONLY_CLIENT.to_owned()),
        ),
        ..Conn::default()
    };
    let mut net = Net::discover(config(&conn, None, None)?, ctx.http())?;
    let op = net
        .client
        .validate_access_token(&token, audience, &net.keys);
    let info = net.run_plain(op)?;
    let now = now();
    let style = ctx.style;
    let v = output::access_token_json(&info, style, now);
    let mut text = output::agent_text(&info.agent, style, now);
    text.push_str(&format!(
        "client_id:     {}\naudience:      {}\njti:           {}\n",
        clean_line(&info.client_id),
        clean_line(&info.audience.join(" ")),
        clean_line(&info.jti)
    ));
    if let Some(t) = &info.dat_type {
        text.push_str(&format!("type:          {}\n", clean_line(t)));
    }
    Ok(Outcome::ok(v, text))
}

/// Saves a fresh login's tokens (and the provider cache) under the exclusive lock. A file that
/// belongs to another issuer or client is not overwritten.
pub fn save_login(
    ctx: Ctx,
    net: &Net,
    file: &TokenFile,
    tokens: &TokenSet,
    lock_timeout: u64,
) -> Result<(), CliError> {
    let binding = binding_of(net.client.config());
    let _lock = file.lock(true, Duration::from_secs(lock_timeout), ctx.log)?;
    if file.exists() {
        match file.read() {
            Ok((_, Some(stored))) => check_binding(&stored, &binding)?,
            Ok((_, None)) | Err(CliError::TokenFile(_)) => {}
            Err(e) => return Err(e),
        }
    }
    file.write(tokens, &binding)?;
    if let Err(e) = file.write_provider(&binding, net.client.metadata(), &net.keys) {
        ctx.log.note(&format!("warning: {e}"));
    }
    Ok(())
}

/// Checks, before a login, that the target file is not another issuer's or client's session
/// (so the user is not sent through a login whose result cannot be saved).
pub fn precheck_login_target(file: &TokenFile, binding: &Binding) -> Result<(), CliError> {
    if file.exists()
        && let Ok((_, Some(stored))) = file.read()
    {
        check_binding(&stored, binding)?;
    }
    Ok(())
}
