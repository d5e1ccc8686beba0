//! `authpi-idp login --device` (RFC 8628) against oidc-provider (tests/interop/provider.mjs):
//! AuthPI has no device flow. A thread plays the user who enters the code in a browser.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use authpi_idp::TokenSet;
use authpi_idp_interop::{Browser, Provider};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_authpi-idp");

fn cmd() -> Command {
    let mut c = Command::new(BIN);
    for var in [
        "AUTHPI_ISSUER_URL",
        "AUTHPI_CLIENT_ID",
        "AUTHPI_CLIENT_SECRET",
        "AUTHPI_REDIRECT_URI",
        "AUTHPI_PROFILE",
        "AUTHPI_BROWSER",
        "AUTHPI_LOG",
    ] {
        c.env_remove(var);
    }
    c.env("XDG_STATE_HOME", temp_dir("state"));
    c
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("authpi-cli-device-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in: {body}"))
        + marker.len();
    body[start..].split('"').next().unwrap().to_owned()
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The user: enters the code at the verification page and approves (or aborts).
fn user_enters_code(verification_uri: &str, user_code: &str, approve: bool) {
    let mut browser = Browser::new();
    let page = browser.request(verification_uri, None);
    let xsrf = hidden(&page.body, "xsrf");
    let page = browser.request(
        verification_uri,
        Some(&form(&[("xsrf", &xsrf), ("user_code", user_code)])),
    );
    let xsrf = hidden(&page.body, "xsrf");
    let decision = if approve {
        ("confirm", "yes")
    } else {
        ("abort", "yes")
    };
    let mut page = browser.request(
        verification_uri,
        Some(&form(&[
            ("xsrf", &xsrf),
            ("user_code", user_code),
            decision,
        ])),
    );
    while let Some(next) = page.location.clone() {
        page = browser.request(&next, None);
    }
    assert_eq!(page.status, 200, "{}", page.body);
}

fn wait_guarded(mut child: std::process::Child, secs: u64) -> std::process::Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(secs) {
            child.kill().unwrap();
            panic!("login --device still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn login_device_against_oidc_provider() {
    let p = Provider::shared();
    let dir = temp_dir("approve");
    let tokens = dir.join("t.json");
    let mut child = cmd()
        .args(["login", "--device", "--json", "--timeout", "120"])
        .args(["--issuer", p.issuer(), "--client-id", "client_device"])
        .args(["--scope", "openid email offline_access"])
        .arg("--tokens")
        .arg(&tokens)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Under --json the first stdout line says where to go and what to enter.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let first: Value = serde_json::from_str(&first).unwrap();
    let code = first["user_code"].as_str().unwrap().to_owned();
    let uri = first["verification_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with(p.issuer()), "{uri}");
    assert_eq!(first["interval"], 5);
    user_enters_code(&uri, &code, true);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let out = wait_guarded(child, 120);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        p.stderr()
    );
    let v: Value = serde_json::from_str(&rest).unwrap();
    assert_eq!(v["id"], "usr_alice");
    assert_eq!(v["email"], "alice@example.com");
    let stored = TokenSet::from_json(&std::fs::read(&tokens).unwrap()).unwrap();
    assert!(stored.refresh_token.is_some() && stored.id_token.is_some());

    // The session works like any other: whoami with no flags (the file names the provider).
    let out = cmd()
        .args(["whoami", "--json", "--tokens"])
        .arg(&tokens)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["id"], "usr_alice");
}

#[test]
fn login_device_aborted_by_the_user_exits_1_access_denied() {
    let p = Provider::shared();
    let dir = temp_dir("abort");
    let tokens = dir.join("t.json");
    // The largest --timeout (any u64 parses) is no deadline, not an Instant overflow panic
    // (review #5); the --json test keeps a finite one.
    let mut child = cmd()
        .args(["login", "--device", "--timeout", &u64::MAX.to_string()])
        .args(["--issuer", p.issuer(), "--client-id", "client_device"])
        .arg("--tokens")
        .arg(&tokens)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Without --json the instructions are prose on stderr.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut text = String::new();
    let (uri, code) = loop {
        let mut line = String::new();
        assert_ne!(
            stderr.read_line(&mut line).unwrap(),
            0,
            "no code shown: {text}"
        );
        text.push_str(&line);
        if let Some(rest) = line.strip_prefix("To log in, open ") {
            let uri = rest.split(' ').next().unwrap().to_owned();
            let mut blank = String::new();
            stderr.read_line(&mut blank).unwrap();
            let mut code = String::new();
            stderr.read_line(&mut code).unwrap();
            break (uri, code.trim().to_owned());
        }
    };
    user_enters_code(&uri, &code, false);
    let out = wait_guarded(child, 120);
    assert_eq!(out.status.code(), Some(1));
    assert!(!tokens.exists());
}
