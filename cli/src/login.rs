//! `login`: the browser (loopback redirect, RFC 8252), the paste-the-callback flow for machines
//! without a browser, and the device authorization grant (RFC 8628).

use crate::args::LoginArgs;
use crate::commands::{
    Ctx, Outcome, binding_of, config, precheck_login_target, save_login, split_scopes,
};
use crate::error::CliError;
use crate::net::{Net, now};
use crate::output::{self, clean_line};
use crate::store::{self, TokenFile};
use authpi_idp::{Agent, AuthorizationRequest, AuthorizationUrl};
use serde_json::json;
use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEFAULT_SCOPES: &str = "openid profile email offline_access";

fn scopes(args: &LoginArgs) -> Vec<String> {
    let scopes = split_scopes(&args.scope);
    if scopes.is_empty() {
        return DEFAULT_SCOPES.split(' ').map(str::to_owned).collect();
    }
    scopes
}

fn authorization_request(args: &LoginArgs) -> AuthorizationRequest {
    let mut req = AuthorizationRequest::new(scopes(args));
    if let Some(org) = &args.org {
        req = req.org(org.clone());
    }
    for r in &args.resource {
        req = req.resource(r.clone());
    }
    req
}

/// Prints one line on stdout now (before the final result), flushing it.
fn stdout_line(line: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| CliError::Io(format!("cannot write to stdout: {e}")))
}

fn authorization_url(net: &Net, args: &LoginArgs) -> Result<AuthorizationUrl, CliError> {
    let mut rng = authpi_idp_async::os_rng()?;
    Ok(net
        .client
        .authorization_url(&authorization_request(args), &mut rng)?)
}

/// `login`.
pub fn login(ctx: Ctx, args: &LoginArgs) -> Result<Outcome, CliError> {
    let path = store::resolve(args.at.tokens.as_deref(), args.at.profile.as_deref())?;
    let file = TokenFile::new(path).with_store(args.at.store, ctx.log);
    // Logging in again to a profile needs no flags: its file names the issuer and client.
    let stored = file.read().ok().and_then(|(_, b)| b);
    let (net, agent) = if args.device {
        let config = config(&args.conn, stored.as_ref(), None)?;
        precheck_login_target(&file, &binding_of(&config))?;
        let mut net = Net::discover(config, ctx.http())?;
        let agent = crate::device::login(ctx, &mut net, &scopes(args), args.timeout)?;
        (net, agent)
    } else if args.paste_callback {
        paste_login(ctx, args, &file, stored.as_ref())?
    } else {
        loopback_login(ctx, args, &file, stored.as_ref())?
    };
    save_login(ctx, &net, &file, agent.tokens(), args.at.lock_timeout)?;
    let now = now();
    let mut text = output::agent_text(&agent, ctx.style, now);
    text.push_str(&format!("saved to:      {}\n", file.path().display()));
    Ok(Outcome::ok(
        output::agent_json(&agent, ctx.style, now),
        text,
    ))
}

fn paste_login(
    ctx: Ctx,
    args: &LoginArgs,
    file: &TokenFile,
    stored: Option<&store::Binding>,
) -> Result<(Net, Agent), CliError> {
    if args.conn.redirect_uri.is_none() {
        return Err(CliError::usage(
            "--paste-callback needs --redirect-uri (or AUTHPI_REDIRECT_URI)",
            Some("--redirect-uri"),
        ));
    }
    let config = config(&args.conn, stored, None)?;
    precheck_login_target(file, &binding_of(&config))?;
    let mut net = Net::discover(config, ctx.http())?;
    let tx = authorization_url(&net, args)?;
    if ctx.style.json {
        stdout_line(&json!({"authorization_url": tx.url.as_str()}).to_string())?;
    } else {
        stdout_line(tx.url.as_str())?;
        ctx.log.note(
            "Open the URL above in a browser, log in, then paste the full URL the browser was \
             sent to (it fails to load; copy it from the address bar):",
        );
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Io(format!("cannot read the callback URL: {e}")))?;
    let line = line.trim();
    if line.is_empty() {
        return Err(CliError::usage("no callback URL on stdin", None));
    }
    let op = net.client.exchange_callback(line, &tx, &net.keys)?;
    let agent = net.run_plain(op)?;
    Ok((net, agent))
}

fn loopback_login(
    ctx: Ctx,
    args: &LoginArgs,
    file: &TokenFile,
    stored: Option<&store::Binding>,
) -> Result<(Net, Agent), CliError> {
    let (listener, redirect, path) = loopback(args.conn.redirect_uri.as_deref())?;
    let config = config(&args.conn, stored, Some(&redirect))?;
    precheck_login_target(file, &binding_of(&config))?;
    let mut net = Net::discover(config, ctx.http())?;
    let tx = authorization_url(&net, args)?;
    let opened = if args.no_launch_browser {
        Err("--no-launch-browser".to_owned())
    } else {
        open_browser(tx.url.as_str())
    };
    if ctx.style.json {
        stdout_line(
            &json!({
                "authorization_url": tx.url.as_str(),
                "browser_opened": opened.is_ok(),
                "redirect_uri": redirect,
            })
            .to_string(),
        )?;
    } else {
        match &opened {
            Ok(()) => ctx.log.note(&format!(
                "Opened your browser to log in. If it did not open, visit:\n\n  {}\n",
                tx.url
            )),
            Err(why) => ctx.log.note(&format!(
                "Open this URL in your browser to log in{}:\n\n  {}\n",
                if args.no_launch_browser {
                    String::new()
                } else {
                    format!(" (could not start a browser: {why})")
                },
                tx.url
            )),
        }
        ctx.log
            .note(&format!("Waiting for the callback on {redirect} …"));
    }
    let deadline = crate::net::deadline_in(args.timeout);
    let (mut stream, target) = wait_for_callback(&listener, &path, &tx.state, deadline)?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let callback = format!("http://127.0.0.1:{port}{target}");
    let result = net
        .client
        .exchange_callback(callback.as_str(), &tx, &net.keys)
        .map_err(CliError::from)
        .and_then(|op| net.run_plain(op));
    match &result {
        Ok(a) => respond(
            &mut stream,
            "200 OK",
            "Logged in",
            &format!(
                "Logged in as {}. You can close this window and return to the terminal.",
                html(&clean_line(a.id()))
            ),
        ),
        Err(e) => respond(
            &mut stream,
            "400 Bad Request",
            "Login failed",
            &format!(
                "Login failed: {} ({}). Return to the terminal for details.",
                html(&e.to_string()),
                html(e.code())
            ),
        ),
    }
    Ok((net, result?))
}

/// Opens `url` in the system browser: `$AUTHPI_BROWSER URL` when set, else `xdg-open` (Linux,
/// BSD), `open` (macOS), the URL handler (Windows). Does not wait for the browser.
fn open_browser(url: &str) -> Result<(), String> {
    let mut cmd = match std::env::var_os("AUTHPI_BROWSER").filter(|v| !v.is_empty()) {
        Some(program) => std::process::Command::new(program),
        None if cfg!(target_os = "macos") => std::process::Command::new("open"),
        None if cfg!(windows) => {
            let mut c = std::process::Command::new("rundll32");
            c.arg("url.dll,FileProtocolHandler");
            c
        }
        None => std::process::Command::new("xdg-open"),
    };
    let mut child = cmd
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    // Reap it whenever it ends; the login does not wait for the browser.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// Binds the loopback listener: the port and path of a given `http://127.0.0.1:PORT/...`
/// redirect URI, or a free port with `/callback`.
fn loopback(redirect: Option<&str>) -> Result<(TcpListener, String, String), CliError> {
    let (port, path) = match redirect {
        None => (0, "/callback".to_owned()),
        Some(r) => {
            let url = url::Url::parse(r).map_err(|_| {
                CliError::usage("--redirect-uri is not a URL", Some("--redirect-uri"))
            })?;
            if url.scheme() != "http" || url.host_str() != Some("127.0.0.1") {
                return Err(CliError::usage(
                    "for the browser login the redirect URI must be http://127.0.0.1[:PORT]/PATH \
                     (or leave it out: a free port is used); other redirect URIs need \
                     --paste-callback",
                    Some("--redirect-uri"),
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

fn digest(s: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .to_vec()
}

/// What a connection to the listener turned out to be.
enum Visit {
    /// The callback of this login (its `state` matches).
    Ours(TcpStream, String),
}

/// Connections being served at once.
static VISITORS: AtomicUsize = AtomicUsize::new(0);
/// At most this many connections are served at once (a browser opens a handful).
const MAX_VISITORS: usize = 64;

/// Serves connections concurrently until one is a `GET` of `path` whose `state` is this
/// login's, or the deadline passes. Other requests are answered and ignored: a 404 for other
/// paths, a page saying the link is stale for a callback with another `state` (an old tab, a
/// page firing requests at the port); idle connections do not delay anyone.
fn wait_for_callback(
    listener: &TcpListener,
    path: &str,
    state: &str,
    deadline: Instant,
) -> Result<(TcpStream, String), CliError> {
    listener
        .set_nonblocking(true)
        .map_err(|e| CliError::Io(format!("listener: {e}")))?;
    let (tx, rx) = mpsc::channel::<Visit>();
    let expected = digest(state);
    loop {
        if Instant::now() >= deadline {
            return Err(CliError::Io(
                "no login callback arrived before the timeout (--timeout)".into(),
            ));
        }
        match listener.accept() {
            Ok((stream, _)) => {
                // Bounded: a local process opening connections in a loop gets them closed
                // instead of one thread each.
                if VISITORS.load(Ordering::Relaxed) >= MAX_VISITORS {
                    drop(stream);
                    continue;
                }
                VISITORS.fetch_add(1, Ordering::Relaxed);
                let (tx, path, expected) = (tx.clone(), path.to_owned(), expected.clone());
                std::thread::spawn(move || {
                    visit(stream, &path, &expected, &tx);
                    VISITORS.fetch_sub(1, Ordering::Relaxed);
                });
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CliError::Io(format!("listener: {e}"))),
        }
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(Visit::Ours(stream, target)) => return Ok((stream, target)),
            Err(_) => {}
        }
    }
}

fn visit(mut stream: TcpStream, path: &str, expected: &[u8], tx: &mpsc::Sender<Visit>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Some(target) = read_request_target(&mut stream) else {
        respond(
            &mut stream,
            "400 Bad Request",
            "authpi-idp",
            "Not a login callback.",
        );
        return;
    };
    let (target_path, query) = target.split_once('?').unwrap_or((&target, ""));
    if target_path != path {
        respond(
            &mut stream,
            "404 Not Found",
            "authpi-idp",
            "Not the login callback.",
        );
        return;
    }
    let states: Vec<_> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "state")
        .collect();
    let ours = matches!(states.as_slice(), [(_, s)] if digest(s) == expected);
    if ours {
        let _ = tx.send(Visit::Ours(stream, target));
    } else {
        respond(
            &mut stream,
            "400 Bad Request",
            "Stale login link",
            "This login link is not the one the terminal is waiting for (an old tab?). It was \
             ignored; finish the login started by the most recent `authpi-idp login`.",
        );
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
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn respond(stream: &mut TcpStream, status: &str, title: &str, message: &str) {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>{title} · authpi-idp</title>\
         <h1>{title}</h1><p>{message}</p>\n"
    );
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         Content-Security-Policy: default-src 'none'\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}
