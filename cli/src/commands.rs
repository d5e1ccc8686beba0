//! The commands (everything but `demo`), over the blocking ureq client.

use crate::args::{Conn, LoginArgs};
use crate::error::CliError;
use crate::output::{self, Style};
use crate::store::TokenFile;
use authpi_idp::{
    Agent, AuthorizationRequest, Client, Config, LogoutRequest, TokenSet, TokenTypeHint, UnixTime,
};
use authpi_idp_ureq::{
    CreateAgentOptions, DEFAULT_REFRESH_GRACE, IdpClientSync, TransportOptions, UreqTransport,
};
use serde_json::{Value, json};
use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

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
    fn ok(json: Value, text: String) -> Self {
        Outcome {
            code: 0,
            json,
            text,
        }
    }
}

/// The system clock.
pub fn now() -> UnixTime {
    UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

/// Builds the configuration from flags/environment.
pub fn config(conn: &Conn, redirect_uri: Option<&str>) -> Result<Config, CliError> {
    let issuer = conn.issuer.as_deref().ok_or_else(|| {
        CliError::Usage("no issuer: pass --issuer or set AUTHPI_ISSUER_URL".into())
    })?;
    let client_id = conn.client_id.as_deref().ok_or_else(|| {
        CliError::Usage("no client id: pass --client-id or set AUTHPI_CLIENT_ID".into())
    })?;
    let mut b = Config::builder(issuer, client_id);
    if let Some(secret) = conn.client_secret.as_deref().filter(|s| !s.is_empty()) {
        b = b.client_secret(secret);
    }
    if let Some(uri) = redirect_uri.or(conn.redirect_uri.as_deref()) {
        b = b.redirect_uri(uri);
    }
    b.build()
        .map_err(|e| CliError::from(authpi_idp::Error::from(e)))
}

/// Discovers the provider and its keys.
pub fn discover(config: Config) -> Result<IdpClientSync, CliError> {
    Ok(IdpClientSync::discover(config)?)
}

/// A client for commands on a token file: the cached metadata and keys next to the file when
/// fresh (no network), else discovery (and the cache is rewritten).
fn client_for_file(conn: &Conn, file: &TokenFile) -> Result<IdpClientSync, CliError> {
    let config = config(conn, None)?;
    if let Some((metadata, keys)) = file.read_provider(config.issuer(), now()) {
        let client = Client::with_metadata(config, metadata)?;
        return Ok(IdpClientSync::from_client(
            client,
            keys,
            UreqTransport::new(TransportOptions::default()),
            DEFAULT_REFRESH_GRACE,
        ));
    }
    let client = discover(config)?;
    file.write_provider(client.client().metadata(), &client.keys());
    Ok(client)
}

/// Rewrites the provider cache when the key set changed during a command.
fn update_cache(client: &IdpClientSync, file: &TokenFile, before: Option<UnixTime>) {
    let keys = client.keys();
    if keys.fetched_at() != before {
        file.write_provider(client.client().metadata(), &keys);
    }
}

/// Rebuilds the agent of a token file under its lock; refreshes when due (or `force`), and the
/// rotated token set is written back before anything else happens.
fn session(client: &IdpClientSync, file: &TokenFile, force: bool) -> Result<Agent, CliError> {
    let before = client.keys().fetched_at();
    let _lock = file.lock()?;
    let tokens = file.read()?;
    let sink = file.clone();
    let options = CreateAgentOptions::new().on_refresh(move |t: TokenSet| sink.write(&t));
    let agent = if force {
        client.refresh(tokens, options)
    } else {
        client.create_agent(tokens, options)
    };
    update_cache(client, file, before);
    Ok(agent?)
}

fn agent_outcome(agent: &Agent, style: Style) -> Outcome {
    let now = now();
    Outcome::ok(
        output::agent_json(agent, style, now),
        output::agent_text(agent, style, now),
    )
}

/// `whoami` / `refresh`.
pub fn whoami(conn: &Conn, path: &Path, force: bool, style: Style) -> Result<Outcome, CliError> {
    let file = TokenFile::new(path);
    let client = client_for_file(conn, &file)?;
    let agent = session(&client, &file, force)?;
    Ok(agent_outcome(&agent, style))
}

/// `can`: 0 allowed, 1 denied.
pub fn can(
    conn: &Conn,
    path: &Path,
    org: Option<&str>,
    action: &str,
    resource: &str,
) -> Result<Outcome, CliError> {
    let file = TokenFile::new(path);
    let client = client_for_file(conn, &file)?;
    let agent = session(&client, &file, false)?;
    let allowed = match org {
        Some(o) => agent.has_access_in(o, action, resource),
        None => agent.has_access(action, resource),
    };
    let verdict = if allowed { "allowed" } else { "denied" };
    let within = org.map(|o| format!(" in {o}")).unwrap_or_default();
    Ok(Outcome {
        code: if allowed { 0 } else { 1 },
        json: json!({
            "allowed": allowed, "subject": agent.id(), "org": org,
            "action": action, "resource": resource,
        }),
        text: format!(
            "{verdict}: {} may{} {action} {resource}{within}\n",
            agent.id(),
            if allowed { "" } else { " not" }
        ),
    })
}

/// `userinfo`.
pub fn userinfo(conn: &Conn, path: &Path) -> Result<Outcome, CliError> {
    let file = TokenFile::new(path);
    let client = client_for_file(conn, &file)?;
    let agent = session(&client, &file, false)?;
    let info = client.get_user_info(&agent)?;
    let v = output::userinfo_json(&info);
    Ok(Outcome::ok(v.clone(), output::kv_text(&v)))
}

/// `revoke`.
pub fn revoke(conn: &Conn, path: &Path, refresh: bool, access: bool) -> Result<Outcome, CliError> {
    let file = TokenFile::new(path);
    let client = client_for_file(conn, &file)?;
    let tokens = {
        let _lock = file.lock()?;
        file.read()?
    };
    let (token, hint) = match (&tokens.refresh_token, refresh, access) {
        (_, _, true) => (tokens.access_token.as_str(), TokenTypeHint::AccessToken),
        (Some(rt), _, false) => (rt.as_str(), TokenTypeHint::RefreshToken),
        (None, true, false) => {
            return Err(CliError::Usage(
                "the token file holds no refresh token".into(),
            ));
        }
        (None, false, false) => (tokens.access_token.as_str(), TokenTypeHint::AccessToken),
    };
    client.revoke_token(token, Some(hint))?;
    let name = match hint {
        TokenTypeHint::RefreshToken => "refresh_token",
        _ => "access_token",
    };
    Ok(Outcome::ok(
        json!({"revoked": name}),
        format!("revoked the {}\n", name.replace('_', " ")),
    ))
}

/// `logout-url`.
pub fn logout_url(
    conn: &Conn,
    path: Option<&Path>,
    post_logout: Option<&str>,
    state: Option<&str>,
) -> Result<Outcome, CliError> {
    let mut request = LogoutRequest::new();
    let client = match path {
        Some(p) => {
            let file = TokenFile::new(p);
            let client = client_for_file(conn, &file)?;
            if let Some(id) = file.read()?.id_token {
                request = request.id_token_hint(id);
            }
            client
        }
        None => discover(config(conn, None)?)?,
    };
    if let Some(u) = post_logout {
        request = request.post_logout_redirect_uri(u);
    }
    if let Some(s) = state {
        request = request.state(s);
    }
    let url = client.create_logout_url(&request)?;
    Ok(Outcome::ok(
        json!({"url": url.as_str()}),
        format!("{url}\n"),
    ))
}

fn split_scopes(scopes: &[String]) -> Vec<String> {
    scopes
        .iter()
        .flat_map(|s| s.split_whitespace())
        .map(str::to_owned)
        .collect()
}

/// `client-credentials`.
pub fn client_credentials(
    conn: &Conn,
    scopes: &[String],
    path: Option<&Path>,
    style: Style,
) -> Result<Outcome, CliError> {
    let client = discover(config(conn, None)?)?;
    let agent = client.client_credentials(split_scopes(scopes))?;
    if let Some(p) = path {
        save(&client, &TokenFile::new(p), agent.tokens())?;
    }
    Ok(agent_outcome(&agent, style))
}

/// `verify`: API-side access-token validation.
pub fn verify(conn: &Conn, audience: &str, token: &str, style: Style) -> Result<Outcome, CliError> {
    let client = discover(config(conn, None)?)?;
    let info = client.validate_access_token(token, audience)?;
    let now = now();
    let v = output::access_token_json(&info, style, now);
    let mut text = output::agent_text(&info.agent, style, now);
    text.push_str(&format!(
        "client_id:     {}\naudience:      {}\njti:           {}\n",
        info.client_id,
        info.audience.join(" "),
        info.jti
    ));
    if let Some(t) = &info.dat_type {
        text.push_str(&format!("type:          {t}\n"));
    }
    Ok(Outcome::ok(v, text))
}

fn save(client: &IdpClientSync, file: &TokenFile, tokens: &TokenSet) -> Result<(), CliError> {
    let _lock = file.lock()?;
    file.write(tokens)?;
    file.write_provider(client.client().metadata(), &client.keys());
    Ok(())
}

const DEFAULT_SCOPES: &str = "openid profile email offline_access";

fn authorization_request(args: &LoginArgs) -> AuthorizationRequest {
    let mut scopes = split_scopes(&args.scope);
    if scopes.is_empty() {
        scopes = DEFAULT_SCOPES.split(' ').map(str::to_owned).collect();
    }
    let mut req = AuthorizationRequest::new(scopes);
    if let Some(org) = &args.org {
        req = req.org(org.clone());
    }
    for r in &args.resource {
        req = req.resource(r.clone());
    }
    req
}

/// `login`.
pub fn login(args: &LoginArgs, style: Style) -> Result<Outcome, CliError> {
    let agent;
    let client;
    if args.no_browser {
        if args.conn.redirect_uri.is_none() {
            return Err(CliError::Usage(
                "--no-browser needs --redirect-uri (or AUTHPI_REDIRECT_URI)".into(),
            ));
        }
        client = discover(config(&args.conn, None)?)?;
        let tx = client.create_authorization_url(&authorization_request(args))?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", tx.url)
            .and_then(|()| out.flush())
            .map_err(|e| CliError::Io(format!("cannot write to stdout: {e}")))?;
        drop(out);
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Io(format!("cannot read the callback URL: {e}")))?;
        let line = line.trim();
        if line.is_empty() {
            return Err(CliError::Usage("no callback URL on stdin".into()));
        }
        agent = client.exchange_callback(line, &tx)?;
    } else {
        let (listener, redirect, path) = loopback(args.conn.redirect_uri.as_deref())?;
        client = discover(config(&args.conn, Some(&redirect))?)?;
        let tx = client.create_authorization_url(&authorization_request(args))?;
        eprintln!("Open this URL in your browser to log in:\n\n  {}\n", tx.url);
        eprintln!("Waiting for the callback on {redirect} …");
        let deadline = Instant::now() + Duration::from_secs(args.timeout);
        let (mut stream, target) = wait_for_callback(&listener, &path, deadline)?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let callback = format!("http://127.0.0.1:{port}{target}");
        let result = client.exchange_callback(callback.as_str(), &tx);
        let page = match &result {
            Ok(a) => format!("Logged in as {}. You can close this window.", html(a.id())),
            Err(e) => format!(
                "Login failed ({}). You can close this window.",
                html(e.code())
            ),
        };
        respond(
            &mut stream,
            if result.is_ok() {
                "200 OK"
            } else {
                "400 Bad Request"
            },
            &page,
        );
        agent = result?;
    }
    if let Some(p) = &args.tokens {
        save(&client, &TokenFile::new(p), agent.tokens())?;
    }
    Ok(agent_outcome(&agent, style))
}

/// Binds the loopback listener: the port and path of a given `http://127.0.0.1:PORT/...`
/// redirect URI, or a free port with `/callback`.
fn loopback(redirect: Option<&str>) -> Result<(TcpListener, String, String), CliError> {
    let (port, path) = match redirect {
        None => (0, "/callback".to_owned()),
        Some(r) => {
            let url = url::Url::parse(r)
                .map_err(|_| CliError::Usage("--redirect-uri is not a URL".into()))?;
            if url.scheme() != "http" || url.host_str() != Some("127.0.0.1") {
                return Err(CliError::Usage(
                    "without --no-browser the redirect URI must be http://127.0.0.1[:PORT]/PATH \
                     (or leave it out: a free port is used)"
                        .into(),
                ));
            }
            (url.port().unwrap_or(0), url.path().to_owned())
        }
    };
    let listener = TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| CliError::Io(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| CliError::Io(format!("cannot listen: {e}")))?
        .port();
    Ok((listener, format!("http://127.0.0.1:{bound}{path}"), path))
}

/// Accepts connections until one is a `GET` of `path` (others get a 404), or the deadline.
fn wait_for_callback(
    listener: &TcpListener,
    path: &str,
    deadline: Instant,
) -> Result<(TcpStream, String), CliError> {
    listener
        .set_nonblocking(true)
        .map_err(|e| CliError::Io(format!("listener: {e}")))?;
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                match read_request_target(&mut stream) {
                    Some(target) if target.split('?').next() == Some(path) => {
                        return Ok((stream, target));
                    }
                    _ => respond(&mut stream, "404 Not Found", "Not the login callback."),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(CliError::Io("no callback before the timeout".into()));
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(e) => return Err(CliError::Io(format!("listener: {e}"))),
        }
    }
}

/// Reads a request head (at most 16 KiB) and returns the target of a `GET`.
fn read_request_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 || head.len() > 16 * 1024 {
            break;
        }
        head.extend_from_slice(buf.get(..n)?);
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next()?.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) if target.starts_with('/') => Some(target.to_owned()),
        _ => None,
    }
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn respond(stream: &mut TcpStream, status: &str, message: &str) {
    let body =
        format!("<!doctype html><meta charset=utf-8><title>authpi-idp</title><p>{message}</p>\n");
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}
