//! Drives the `authpi-idp` binary as a user would, against the embedded issuer on loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use authpi_idp::TokenSet;
use authpi_idp_testkit::Served;
use authpi_idp_ureq::{TransportOptions, UreqTransport};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_authpi-idp");
const API: &str = "https://api.example.com";

fn cmd() -> Command {
    let mut c = Command::new(BIN);
    for var in [
        "AUTHPI_ISSUER_URL",
        "AUTHPI_CLIENT_ID",
        "AUTHPI_CLIENT_SECRET",
        "AUTHPI_REDIRECT_URI",
    ] {
        c.env_remove(var);
    }
    c
}

/// A fresh, empty directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "authpi-cli-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn web_args(served: &Served) -> Vec<String> {
    vec![
        "--issuer".into(),
        served.issuer_url().into(),
        "--client-id".into(),
        "client_web".into(),
        "--client-secret".into(),
        "secret_web".into(),
    ]
}

fn run(served: &Served, command: &str, extra: &[&str]) -> Output {
    cmd()
        .arg(command)
        .args(web_args(served))
        .args(extra)
        .output()
        .unwrap()
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn stderr_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stderr).unwrap_or_else(|e| {
        panic!(
            "stderr is not one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The "browser": GET the authorization URL without following redirects, return `Location`.
fn browse(url: &str) -> String {
    let t = UreqTransport::new(TransportOptions::default());
    let resp = t
        .send(http::Request::get(url).body(Vec::new()).unwrap())
        .unwrap();
    assert_eq!(resp.status(), 302, "authorize answered {}", resp.status());
    resp.headers()["location"].to_str().unwrap().to_owned()
}

/// Headless login (`--no-browser`); returns the parsed stdout JSON.
fn headless_login(served: &Served, tokens: &Path, extra: &[&str]) -> Value {
    let mut child = cmd()
        .arg("login")
        .args(web_args(served))
        .args([
            "--no-browser",
            "--redirect-uri",
            "http://127.0.0.1:9/callback",
            "--json",
        ])
        .arg("--tokens")
        .arg(tokens)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(
        first.starts_with(&format!("{}/authorize?", served.issuer_url())),
        "first line is not the authorization URL: {first}"
    );
    let callback = browse(first.trim());
    assert!(callback.starts_with("http://127.0.0.1:9/callback?"));
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{callback}").unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "login failed: {err}");
    serde_json::from_str(&rest).unwrap()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn demo_runs_the_whole_session_and_exits_0() {
    let out = cmd().arg("demo").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "usr_alice (user)",
        "alice@example.com (verified)",
        "org_acme \"Founder\": owner projects:** users:read",
        "org_globex: billing:read",
        "allow   write projects.tasks in org_acme",
        "deny    write billing in org_globex",
        "(rotated)",
        "persisted before use: true",
        "validated the access token: subject usr_alice",
        "fails with invalid_grant",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn demo_json_has_agent_decisions_rotation_and_revocation() {
    let out = cmd().args(["demo", "--json"]).output().unwrap();
    let v = stdout_json(&out);
    assert_eq!(v["agent"]["id"], "usr_alice");
    assert_eq!(v["agent"]["organizations"][0]["id"], "org_acme");
    assert_eq!(v["decisions"].as_array().unwrap().len(), 5);
    assert_eq!(v["decisions"][0]["allowed"], true);
    assert_eq!(v["decisions"][2]["allowed"], false);
    assert_eq!(v["refresh"]["rotated"], true);
    assert_eq!(v["validated"]["audience"][0], API);
    assert_eq!(v["revoked"]["refresh_after_revoke"], "invalid_grant");
    // No token in the default output.
    assert!(v["agent"]["tokens"].get("access_token").is_none());
}

#[test]
fn headless_login_writes_a_private_python_compatible_token_file() {
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("login");
    let tokens = dir.join("tokens.json");
    let v = headless_login(&served, &tokens, &["--org", "org_acme"]);
    assert_eq!(v["id"], "usr_alice");
    assert_eq!(v["email"], "alice@example.com");
    assert_eq!(v["org_id"], "org_acme");
    assert_eq!(v["tokens"]["has_refresh_token"], true);
    assert!(
        v["tokens"].get("refresh_token").is_none(),
        "secret in output"
    );
    assert_eq!(mode(&tokens), 0o600);
    let stored = TokenSet::from_json(&std::fs::read(&tokens).unwrap()).unwrap();
    assert!(stored.refresh_token.is_some() && stored.id_token.is_some());
    assert_eq!(v["expires_at"], stored.expires_at);
    let stats = served.stats();
    assert_eq!((stats.code_requests, stats.refresh_requests), (1, 0));
}

#[test]
fn loopback_login_receives_the_callback_on_its_own_listener() {
    let served = Served::start_demo().unwrap();
    let mut child = cmd()
        .arg("login")
        .args(web_args(&served))
        .args(["--json", "--timeout", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert_ne!(stderr.read_line(&mut line).unwrap(), 0, "no URL on stderr");
        if let Some(u) = line
            .trim()
            .strip_prefix(&format!("{}/authorize?", served.issuer_url()))
        {
            break format!("{}/authorize?{u}", served.issuer_url());
        }
    };
    let callback = browse(&url);
    assert!(callback.starts_with("http://127.0.0.1:"), "{callback}");
    // The CLI's listener answers the browser with a small page.
    let t = UreqTransport::new(TransportOptions::default());
    let page = t
        .send(
            http::Request::get(callback.as_str())
                .body(Vec::new())
                .unwrap(),
        )
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(String::from_utf8_lossy(page.body()).contains("Logged in as usr_alice"));
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout_json(&out)["id"], "usr_alice");
}

#[test]
fn whoami_can_userinfo_and_logout_url_on_a_token_file() {
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("whoami");
    let tokens = dir.join("t.json");
    let file = tokens.to_str().unwrap();
    headless_login(&served, &tokens, &[]);
    let before = std::fs::read(&tokens).unwrap();

    // whoami through the environment instead of flags.
    let out = cmd()
        .args(["whoami", "--json", "--tokens", file])
        .env("AUTHPI_ISSUER_URL", served.issuer_url())
        .env("AUTHPI_CLIENT_ID", "client_web")
        .env("AUTHPI_CLIENT_SECRET", "secret_web")
        .output()
        .unwrap();
    let v = stdout_json(&out);
    assert_eq!(v["id"], "usr_alice");
    assert_eq!(v["organizations"].as_array().unwrap().len(), 2);

    // Human form.
    let out = run(&served, "whoami", &["--tokens", file]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("subject:       usr_alice (user)"), "{text}");

    // can: 0 allowed, 1 denied (table).
    for (org, action, resource, code) in [
        (Some("org_acme"), "write", "projects.tasks", 0),
        (Some("org_acme"), "read", "users", 0),
        (Some("org_acme"), "delete", "users", 1),
        (Some("org_globex"), "read", "billing", 0),
        (Some("org_globex"), "write", "billing", 1),
        (Some("org_nope"), "read", "billing", 1),
        (None, "read", "billing", 0),
        (None, "delete", "billing", 1),
    ] {
        let mut args = vec!["--tokens", file, "--json"];
        if let Some(o) = org {
            args.extend(["--org", o]);
        }
        args.extend([action, resource]);
        let out = run(&served, "can", &args);
        assert_eq!(out.status.code(), Some(code), "{org:?} {action} {resource}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["allowed"], code == 0);
        assert_eq!(v["action"], action);
    }

    let out = run(&served, "userinfo", &["--tokens", file, "--json"]);
    let v = stdout_json(&out);
    assert_eq!(v["sub"], "usr_alice");
    assert_eq!(v["email"], "alice@example.com");

    let out = run(
        &served,
        "logout-url",
        &[
            "--tokens",
            file,
            "--post-logout-redirect-uri",
            "http://127.0.0.1/logged-out",
            "--json",
        ],
    );
    let v = stdout_json(&out);
    let url = v["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/logout?", served.issuer_url())),
        "{url}"
    );
    assert!(url.contains("id_token_hint="));
    assert!(url.contains("post_logout_redirect_uri="));

    // Nothing above was due for a refresh: no refresh, the file is unchanged, and only the
    // login discovered the provider (the others used the cache next to the token file).
    let stats = served.stats();
    assert_eq!(stats.refresh_requests, 0);
    assert_eq!(stats.discovery_requests, 1);
    assert_eq!(std::fs::read(&tokens).unwrap(), before);
}

#[test]
fn can_exits_2_with_a_json_error_when_the_token_file_is_missing() {
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("can-missing");
    let missing = dir.join("absent.json");
    let out = run(
        &served,
        "can",
        &["--tokens", missing.to_str().unwrap(), "--json", "read", "x"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let e = stderr_json(&out);
    assert_eq!(e["error"], "token_file_error");
    assert_eq!(e["kind"], "token_file");
    assert!(e["message"].as_str().unwrap().contains("absent.json"));
}

#[test]
fn a_bad_issuer_is_a_json_error_on_stderr_with_exit_2() {
    // Nothing listens on port 1; a relative issuer is a configuration error; a missing issuer
    // is a usage error.
    for (issuer, code, kind) in [
        (
            Some("http://127.0.0.1:1/i_none"),
            "transport_error",
            "transport",
        ),
        (Some("not a url"), "configuration_error", "configuration"),
        (None, "usage_error", "usage"),
    ] {
        let mut c = cmd();
        c.args(["client-credentials", "--json", "--client-id", "c_m2m"]);
        if let Some(i) = issuer {
            c.args(["--issuer", i]);
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{issuer:?}");
        assert!(out.stdout.is_empty());
        let e = stderr_json(&out);
        assert_eq!(e["error"], code, "{issuer:?}");
        assert_eq!(e["kind"], kind, "{issuer:?}");
        assert!(e["message"].is_string());
    }
    // A clap usage error is JSON too under --json.
    let out = cmd().args(["can", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr_json(&out)["error"], "usage_error");
}

#[test]
fn a_failing_refresh_leaves_the_token_file_untouched() {
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("fail");
    let tokens = dir.join("t.json");
    let file = tokens.to_str().unwrap();
    headless_login(&served, &tokens, &[]);

    let out = run(&served, "revoke", &["--tokens", file, "--json"]);
    assert_eq!(stdout_json(&out)["revoked"], "refresh_token");
    let before = std::fs::read(&tokens).unwrap();

    let out = run(&served, "refresh", &["--tokens", file, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr_json(&out);
    assert_eq!(e["error"], "invalid_grant");
    assert_eq!(e["kind"], "oauth");
    assert_eq!(std::fs::read(&tokens).unwrap(), before);
    assert_eq!(mode(&tokens), 0o600);
    // No temporary file was left behind.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["t.json", "t.json.lock", "t.json.provider.json"]);
}

#[test]
fn refresh_rotates_and_writes_back_and_show_tokens_reveals_them() {
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("refresh");
    let tokens = dir.join("t.json");
    let file = tokens.to_str().unwrap();
    headless_login(&served, &tokens, &[]);
    let old = TokenSet::from_json(&std::fs::read(&tokens).unwrap()).unwrap();

    let out = run(
        &served,
        "refresh",
        &["--tokens", file, "--json", "--show-tokens"],
    );
    let v = stdout_json(&out);
    let new = TokenSet::from_json(&std::fs::read(&tokens).unwrap()).unwrap();
    assert_ne!(new.refresh_token, old.refresh_token);
    assert_eq!(
        v["tokens"]["refresh_token"].as_str(),
        new.refresh_token.as_deref()
    );
    assert_eq!(mode(&tokens), 0o600);
    assert_eq!(served.stats().refresh_requests, 1);
}

#[test]
fn eight_concurrent_whoami_on_an_expired_token_set_refresh_once() {
    let served = Served::start_demo().unwrap();
    served.use_system_clock();
    let dir = temp_dir("concurrent");
    let tokens = dir.join("t.json");
    headless_login(&served, &tokens, &[]);
    let mut set = TokenSet::from_json(&std::fs::read(&tokens).unwrap()).unwrap();
    set.expires_at = unix_now() - 10;
    std::fs::write(&tokens, set.to_json()).unwrap();

    let children: Vec<_> = (0..8)
        .map(|_| {
            cmd()
                .arg("whoami")
                .args(web_args(&served))
                .args(["--json", "--tokens", tokens.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(stdout_json(&out)["id"], "usr_alice");
    }
    assert_eq!(served.stats().refresh_requests, 1);
    let now_set = TokenSet::from_json(&std::fs::read(&tokens).unwrap()).unwrap();
    assert!(now_set.expires_at > unix_now());
    assert_ne!(now_set.refresh_token, set.refresh_token);
    assert_eq!(mode(&tokens), 0o600);
}

#[test]
fn client_credentials_and_verify_as_an_api() {
    let served = Served::start_demo().unwrap();
    let out = cmd()
        .args([
            "client-credentials",
            "--json",
            "--show-tokens",
            "--scope",
            "reports:read",
        ])
        .args(["--issuer", served.issuer_url(), "--client-id", "c_m2m"])
        .args(["--client-secret", "secret_m2m"])
        .output()
        .unwrap();
    let v = stdout_json(&out);
    assert_eq!(v["id"], "c_m2m");
    assert_eq!(v["scopes"], serde_json::json!(["reports:read"]));

    // A user token for an API, validated as that API would.
    let dir = temp_dir("verify");
    let tokens = dir.join("t.json");
    headless_login(&served, &tokens, &["--resource", API]);
    let at = TokenSet::from_json(&std::fs::read(&tokens).unwrap())
        .unwrap()
        .access_token;
    let out = run(&served, "verify", &["--audience", API, "--json", &at]);
    let v = stdout_json(&out);
    assert_eq!(v["agent"]["id"], "usr_alice");
    assert_eq!(v["client_id"], "client_web");
    assert_eq!(v["dat_type"], "identity");

    let out = run(
        &served,
        "verify",
        &["--audience", "https://other.example", "--json", &at],
    );
    assert_eq!(out.status.code(), Some(2));
    let e = stderr_json(&out);
    assert_eq!(e["error"], "invalid_token");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(&at),
        "token echoed"
    );
}
