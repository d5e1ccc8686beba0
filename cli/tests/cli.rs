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
        "AUTHPI_PROFILE",
        "AUTHPI_BROWSER",
        "AUTHPI_LOG",
        "ALL_PROXY",
        "all_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        c.env_remove(var);
    }
    // Default token locations of these tests stay in a private directory, never in $HOME.
    c.env("XDG_STATE_HOME", state_home());
    c
}

/// The XDG state directory of this test process.
fn state_home() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("authpi-cli-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
    // Under --json stdout is JSON lines: the URL to open first, the result last.
    let first: Value = serde_json::from_str(&first).unwrap();
    let url = first["authorization_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/authorize?", served.issuer_url())),
        "first line is not the authorization URL: {first}"
    );
    let callback = browse(url);
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

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
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
        .args(["--json", "--timeout", "30", "--no-launch-browser"])
        .arg("--tokens")
        .arg(temp_dir("loopback").join("t.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["browser_opened"], false);
    let url = first["authorization_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("{}/authorize?", served.issuer_url())));
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
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Under --json stderr is empty on success (no prose).
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&rest).unwrap();
    assert_eq!(v["id"], "usr_alice");
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
fn can_exits_3_login_required_with_a_json_error_when_the_token_file_is_missing() {
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("can-missing");
    let missing = dir.join("absent.json");
    let out = run(
        &served,
        "can",
        &["--tokens", missing.to_str().unwrap(), "--json", "read", "x"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    let e = stderr_json(&out);
    assert_eq!(e["error"], "login_required");
    assert_eq!(e["kind"], "login_required");
    assert_eq!(e["exit_code"], 3);
    assert!(e["message"].as_str().unwrap().contains("absent.json"));
}

#[test]
fn a_bad_issuer_is_a_json_error_on_stderr_with_its_exit_code() {
    // Nothing listens on port 1 (unavailable: 5); a relative issuer is a configuration error
    // (2); a missing issuer is a usage error (4).
    for (issuer, code, kind, exit) in [
        (
            Some("http://127.0.0.1:1/i_none"),
            "transport_error",
            "transport",
            5,
        ),
        (Some("not a url"), "configuration_error", "configuration", 2),
        (None, "usage_error", "usage", 4),
    ] {
        let mut c = cmd();
        c.args(["client-credentials", "--json", "--client-id", "c_m2m"]);
        if let Some(i) = issuer {
            c.args(["--issuer", i]);
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(exit), "{issuer:?}");
        assert!(out.stdout.is_empty());
        let e = stderr_json(&out);
        assert_eq!(e["error"], code, "{issuer:?}");
        assert_eq!(e["kind"], kind, "{issuer:?}");
        assert!(e["message"].is_string());
    }
    // A clap usage error is JSON too under --json.
    let out = cmd().args(["can", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(stderr_json(&out)["error"], "usage_error");
}

#[test]
fn a_failing_refresh_leaves_the_token_file_untouched() {
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("fail");
    let tokens = dir.join("t.json");
    let file = tokens.to_str().unwrap();
    headless_login(&served, &tokens, &[]);

    // Keep a copy of the session, revoke it (which deletes the file), then put the copy back:
    // a token file whose refresh token the provider no longer honours.
    let before = std::fs::read(&tokens).unwrap();
    let out = run(&served, "revoke", &["--tokens", file, "--json"]);
    assert_eq!(stdout_json(&out)["revoked"], "refresh_token");
    assert!(!tokens.exists());
    std::fs::write(&tokens, &before).unwrap();
    set_mode(&tokens, 0o600);

    let out = run(&served, "refresh", &["--tokens", file, "--json"]);
    // Login required.
    assert_eq!(out.status.code(), Some(3));
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
fn rotated_tokens_survive_a_failed_write_and_are_recovered() {
    // Review #3: the old refresh token is spent once the refresh answered; when the token file
    // cannot be written the rotated tokens go to FILE.rotated and the next command uses them.
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("rotated");
    let tokens = dir.join("t.json");
    let rotated = dir.join("t.json.rotated");
    let file = tokens.to_str().unwrap();
    headless_login(&served, &tokens, &[]);
    let before = std::fs::read(&tokens).unwrap();
    let old = TokenSet::from_json(&before).unwrap();

    // Debug builds honour this fault injection: every write of the token file fails.
    let out = cmd()
        .arg("refresh")
        .args(web_args(&served))
        .args(["--tokens", file])
        .env("AUTHPI_IDP_TEST_FAIL_TOKEN_WRITE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("t.json.rotated"), "{stderr}");
    assert_eq!(
        std::fs::read(&tokens).unwrap(),
        before,
        "the file was written"
    );
    assert_eq!(mode(&rotated), 0o600);
    let kept = TokenSet::from_json(&std::fs::read(&rotated).unwrap()).unwrap();
    let new_rt = kept.refresh_token.clone().unwrap();
    assert_ne!(Some(&new_rt), old.refresh_token.as_ref());
    let printed = format!("{stderr}{}", String::from_utf8_lossy(&out.stdout));
    assert!(!printed.contains(&new_rt) && !printed.contains(&kept.access_token));

    // The next commands use them (a read-only one under the shared lock leaves the file)...
    let v = stdout_json(&run(&served, "whoami", &["--tokens", file, "--json"]));
    assert_eq!(v["id"], "usr_alice");
    assert!(rotated.exists());
    // ...and one under the exclusive lock promotes them to the file; the session goes on: the
    // rotated refresh token is the live one.
    let v = stdout_json(&run(
        &served,
        "refresh",
        &["--tokens", file, "--json", "--show-tokens"],
    ));
    assert_eq!(v["id"], "usr_alice");
    assert!(!rotated.exists());
    assert_eq!(served.stats().refresh_requests, 2);
    let now = TokenSet::from_json(&std::fs::read(&tokens).unwrap()).unwrap();
    assert_eq!(
        v["tokens"]["refresh_token"].as_str(),
        now.refresh_token.as_deref()
    );
    assert_ne!(now.refresh_token.as_deref(), Some(&new_rt[..]));
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

// ---------------------------------------------------------------------------------------------
// Issue 15: defects and the commands users expect.

/// A child with a liveness guard: killed (and the test failed) if it runs longer than `secs`.
fn wait_guarded(mut child: std::process::Child, secs: u64) -> Output {
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > std::time::Duration::from_secs(secs) {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {secs} s; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A fake browser: a script that GETs the login URL, then follows the issuer's redirect to the
/// CLI's loopback listener (what a browser does), recording that it ran in `marker`.
fn fake_browser(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let marker = dir.join("browser-ran");
    let script = dir.join("browser.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1\" > '{}'\n\
             loc=$(curl -s -o /dev/null -w '%{{redirect_url}}' \"$1\")\n\
             curl -s -o /dev/null \"$loc\"\n",
            marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, marker)
}

#[test]
fn verify_needs_no_client_id() {
    // Defect 1: an API has no client; `verify` works with --issuer and --audience alone.
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("verify-no-client");
    let tokens = dir.join("t.json");
    headless_login(&served, &tokens, &["--resource", API]);
    let at = TokenSet::from_json(&std::fs::read(&tokens).unwrap())
        .unwrap()
        .access_token;
    let out = cmd()
        .args(["verify", "--json", "--issuer", served.issuer_url()])
        .args(["--audience", API, &at])
        .output()
        .unwrap();
    let v = stdout_json(&out);
    assert_eq!(v["agent"]["id"], "usr_alice");
    assert_eq!(v["client_id"], "client_web");
}

#[test]
fn login_opens_the_browser_and_completes_on_loopback() {
    // Defect 2: `login` opens the system browser (AUTHPI_BROWSER here) and still prints the URL.
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("browser");
    let (script, marker) = fake_browser(&dir);
    let tokens = dir.join("t.json");
    let child = cmd()
        .arg("login")
        .args(web_args(&served))
        .args(["--timeout", "30"])
        .arg("--tokens")
        .arg(&tokens)
        .env("AUTHPI_BROWSER", &script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_guarded(child, 60);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let opened = std::fs::read_to_string(&marker).unwrap();
    assert!(opened.starts_with(&format!("{}/authorize?", served.issuer_url())));
    // The URL is printed as a fallback.
    assert!(stderr.contains("If it did not open, visit"), "{stderr}");
    assert!(stderr.contains(opened.trim()), "{stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("subject:       usr_alice (user)"), "{text}");
    assert_eq!(mode(&tokens), 0o600);

    // --no-launch-browser: the opener is not run, the URL is printed.
    std::fs::remove_file(&marker).unwrap();
    let child = cmd()
        .arg("login")
        .args(web_args(&served))
        .args(["--timeout", "1", "--no-launch-browser"])
        .arg("--tokens")
        .arg(&tokens)
        .env("AUTHPI_BROWSER", &script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_guarded(child, 30);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Open this URL in your browser"), "{stderr}");
    assert!(!marker.exists(), "the browser was started");
}

#[test]
fn a_huge_timeout_is_no_deadline_not_a_panic() {
    // Review #5: `--timeout` takes any u64; Instant + u64::MAX seconds used to panic (exit 101).
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("huge-timeout");
    let (script, _marker) = fake_browser(&dir);
    let tokens = dir.join("t.json");
    let child = cmd()
        .arg("login")
        .args(web_args(&served))
        .args(["--json", "--timeout", &u64::MAX.to_string()])
        .arg("--tokens")
        .arg(&tokens)
        .env("AUTHPI_BROWSER", &script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_guarded(child, 60);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tokens.exists());
}

#[test]
fn loopback_ignores_stale_callbacks_and_idle_connections() {
    // Defect 3: an idle connection does not delay the real callback, a callback with another
    // state does not abort the login.
    use std::io::Read as _;
    use std::net::TcpStream;
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("stale");
    let mut child = cmd()
        .arg("login")
        .args(web_args(&served))
        // Shorter than a browser's idle connection may stay open (and than the listener's
        // per-connection read timeout): the login must not wait for the idle one.
        .args(["--json", "--timeout", "15", "--no-launch-browser"])
        .arg("--tokens")
        .arg(dir.join("t.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let first: Value = serde_json::from_str(&first).unwrap();
    let redirect = first["redirect_uri"].as_str().unwrap().to_owned();
    let addr = redirect
        .strip_prefix("http://")
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    // A browser's speculative connection that never sends anything.
    let _idle = TcpStream::connect(&addr).unwrap();
    // A stale tab (or a hostile page) hitting the callback with another state.
    let mut stale = TcpStream::connect(&addr).unwrap();
    write!(
        stale,
        "GET /callback?code=forged&state=not-this-login HTTP/1.1\r\nHost: {addr}\r\n\r\n"
    )
    .unwrap();
    let mut page = String::new();
    stale.read_to_string(&mut page).unwrap();
    assert!(page.starts_with("HTTP/1.1 400"), "{page}");
    assert!(
        page.contains("not the one the terminal is waiting for"),
        "{page}"
    );
    // The real callback still completes the login.
    let callback = browse(first["authorization_url"].as_str().unwrap());
    let t = UreqTransport::new(TransportOptions::default());
    let page = t
        .send(
            http::Request::get(callback.as_str())
                .body(Vec::new())
                .unwrap(),
        )
        .unwrap();
    assert_eq!(page.status(), 200);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let out = wait_guarded(child, 30);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        serde_json::from_str::<Value>(&rest).unwrap()["id"],
        "usr_alice"
    );
    assert_eq!(served.stats().code_requests, 1);
}

#[test]
fn loopback_timeout_holds_while_connections_keep_coming() {
    // Defect 3: the deadline is checked whatever the listener sees.
    use std::net::TcpStream;
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("timeout");
    let mut child = cmd()
        .arg("login")
        .args(web_args(&served))
        .args(["--json", "--timeout", "2", "--no-launch-browser"])
        .arg("--tokens")
        .arg(dir.join("t.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let first: Value = serde_json::from_str(&first).unwrap();
    let redirect = first["redirect_uri"].as_str().unwrap().to_owned();
    let addr = redirect
        .strip_prefix("http://")
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(mut s) = TcpStream::connect(&addr) {
                    let _ = write!(s, "GET /favicon.ico HTTP/1.1\r\n\r\n");
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    let out = wait_guarded(child, 30);
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr_json(&out)["error"], "io_error");
}

#[test]
fn secrets_come_from_files_and_stdin_not_argv() {
    // Defect 4: --client-secret-file and `verify -`; --help says which ways are safe.
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("secrets");
    let secret = dir.join("secret");
    std::fs::write(&secret, "secret_m2m\n").unwrap();
    let out = cmd()
        .args(["client-credentials", "--json", "--show-tokens"])
        .args(["--issuer", served.issuer_url(), "--client-id", "c_m2m"])
        .arg("--client-secret-file")
        .arg(&secret)
        .args(["--scope", "reports:read"])
        .output()
        .unwrap();
    let v = stdout_json(&out);
    assert_eq!(v["id"], "c_m2m");
    let at = v["tokens"]["access_token"].as_str().unwrap().to_owned();

    // The secret from stdin.
    let mut child = cmd()
        .args(["client-credentials", "--json"])
        .args(["--issuer", served.issuer_url(), "--client-id", "c_m2m"])
        .args(["--client-secret-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    write!(child.stdin.take().unwrap(), "secret_m2m").unwrap();
    assert_eq!(stdout_json(&wait_guarded(child, 30))["id"], "c_m2m");

    // The token to verify from stdin.
    let mut child = cmd()
        .args(["verify", "--json", "--issuer", served.issuer_url()])
        .args(["--audience", "c_m2m", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{at}").unwrap();
    let v = stdout_json(&wait_guarded(child, 30));
    assert_eq!(v["agent"]["id"], "c_m2m");

    let help = cmd().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--client-secret-file FILE"), "{help}");
    assert!(help.contains("visible to other users (ps)"), "{help}");
}

#[test]
fn revoke_ends_the_local_session_too() {
    // Defect 5: after `revoke`, `can` must not answer from the stored access token.
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("revoke");
    let tokens = dir.join("t.json");
    let file = tokens.to_str().unwrap();
    headless_login(&served, &tokens, &[]);
    let out = run(&served, "can", &["--tokens", file, "read", "billing"]);
    assert_eq!(out.status.code(), Some(0));
    let out = run(&served, "revoke", &["--tokens", file, "--json"]);
    assert_eq!(stdout_json(&out)["revoked"], "refresh_token");
    let out = run(
        &served,
        "can",
        &["--tokens", file, "--json", "read", "billing"],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(stderr_json(&out)["error"], "login_required");
}

#[test]
fn revoke_waits_for_a_refresh_in_progress() {
    // Defect 5: revoke takes the exclusive lock before it reads the token it revokes, so a
    // concurrent refresh cannot rotate it in between: while another process holds the lock, no
    // revocation request goes out.
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("revoke-lock");
    let tokens = dir.join("t.json");
    headless_login(&served, &tokens, &[]);
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("t.json.lock"))
        .unwrap();
    lock.lock_shared().unwrap();
    let child = cmd()
        .arg("revoke")
        .args(web_args(&served))
        .args(["--json", "--lock-timeout", "1"])
        .arg("--tokens")
        .arg(&tokens)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_guarded(child, 30);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr_json(&out)["error"], "lock_timeout");
    assert_eq!(served.stats().revoke_requests, 0);
    assert!(tokens.exists());
}

#[test]
fn logout_revokes_both_tokens_deletes_them_and_prints_the_logout_url() {
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("logout");
    let tokens = dir.join("t.json");
    let file = tokens.to_str().unwrap();
    headless_login(&served, &tokens, &[]);
    let out = run(&served, "logout", &["--tokens", file, "--json"]);
    let v = stdout_json(&out);
    assert_eq!(
        v["revoked"],
        serde_json::json!(["refresh_token", "access_token"])
    );
    let url = v["logout_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/logout?", served.issuer_url())),
        "{url}"
    );
    assert!(url.contains("id_token_hint="));
    assert_eq!(served.stats().revoke_requests, 2);
    assert!(!tokens.exists());
    assert!(!dir.join("t.json.provider.json").exists());
    let out = run(&served, "whoami", &["--tokens", file]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn a_provider_cache_others_can_write_is_refused() {
    // Defect 6: a planted FILE.provider.json (its token_endpoint would receive the refresh
    // token and client secret) is refused, and nothing is sent anywhere.
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("planted");
    let tokens = dir.join("t.json");
    let file = tokens.to_str().unwrap();
    headless_login(&served, &tokens, &[]);
    let cache = dir.join("t.json.provider.json");
    let planted = std::fs::read_to_string(&cache)
        .unwrap()
        .replace("/token\"", "/stolen\"");
    std::fs::write(&cache, planted).unwrap();
    set_mode(&cache, 0o666);
    let before = served.stats();
    let out = run(&served, "refresh", &["--tokens", file, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr_json(&out);
    assert_eq!(e["error"], "token_file_error");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("may be written by other users")
    );
    assert_eq!(served.stats().token_requests, before.token_requests);

    // Owned by another user (the tests run as root in CI; elsewhere this part cannot run).
    set_mode(&cache, 0o600);
    if std::os::unix::fs::chown(&cache, Some(65534), Some(65534)).is_ok() {
        let out = run(&served, "whoami", &["--tokens", file, "--json"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr_json(&out)["message"]
                .as_str()
                .unwrap()
                .contains("belongs to another user")
        );
    }
}

#[test]
fn a_token_file_is_bound_to_its_issuer_and_client() {
    // Defect 6: the file names its issuer and client; later commands need no flags, and another
    // client or issuer is refused before anything is sent.
    let served = Served::start_demo().unwrap();
    let other = Served::start_demo().unwrap();
    let dir = temp_dir("binding");
    let tokens = dir.join("t.json");
    let file = tokens.to_str().unwrap();
    headless_login(&served, &tokens, &[]);
    let stored: Value = serde_json::from_slice(&std::fs::read(&tokens).unwrap()).unwrap();
    assert_eq!(stored["bound_to"]["issuer"], served.issuer_url());
    assert_eq!(stored["bound_to"]["client_id"], "client_web");

    let out = cmd()
        .args(["whoami", "--json", "--tokens", file])
        .env("AUTHPI_CLIENT_SECRET", "secret_web")
        .output()
        .unwrap();
    assert_eq!(stdout_json(&out)["id"], "usr_alice");

    let out = cmd()
        .args(["whoami", "--json", "--tokens", file, "--client-id", "c_m2m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr_json(&out)["error"], "token_file_mismatch");

    let before = other.stats();
    let out = cmd()
        .args(["refresh", "--json", "--tokens", file])
        .args(["--issuer", other.issuer_url()])
        .output()
        .unwrap();
    assert_eq!(stderr_json(&out)["error"], "token_file_mismatch");
    assert_eq!(other.stats().token_requests, before.token_requests);
}

#[test]
fn a_held_lock_is_waited_for_with_a_message_and_a_timeout() {
    // Defect 7: a suspended process holding the lock no longer blocks everyone forever.
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("lock");
    let tokens = dir.join("t.json");
    headless_login(&served, &tokens, &[]);
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("t.json.lock"))
        .unwrap();
    lock.lock().unwrap();
    let child = cmd()
        .arg("whoami")
        .args(web_args(&served))
        .args(["--lock-timeout", "2"])
        .arg("--tokens")
        .arg(&tokens)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_guarded(child, 30);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("waiting for another authpi-idp process"),
        "{stderr}"
    );
    assert!(stderr.contains("(lock_timeout)"), "{stderr}");
}

#[test]
fn read_only_commands_share_the_lock() {
    // Defect 7: `whoami`/`can`/`token` with nothing to refresh take the shared lock.
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("shared");
    let tokens = dir.join("t.json");
    headless_login(&served, &tokens, &[]);
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("t.json.lock"))
        .unwrap();
    lock.lock_shared().unwrap();
    for command in ["whoami", "token"] {
        let child = cmd()
            .arg(command)
            .args(web_args(&served))
            .args(["--lock-timeout", "5"])
            .arg("--tokens")
            .arg(&tokens)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_guarded(child, 30);
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn temporary_files_left_by_a_killed_writer_are_removed() {
    // Defect 7: `.t.json.PID.N.tmp` files hold secrets; the next writer removes them.
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("tmp");
    let tokens = dir.join("t.json");
    headless_login(&served, &tokens, &[]);
    let leftover = dir.join(".t.json.99999.0.tmp");
    let cache_leftover = dir.join(".t.json.provider.json.99999.1.tmp");
    let unrelated = dir.join(".other.json.99999.0.tmp");
    for p in [&leftover, &cache_leftover, &unrelated] {
        std::fs::write(p, "{\"refresh_token\":\"SECRET\"}").unwrap();
    }
    let out = run(
        &served,
        "refresh",
        &["--tokens", tokens.to_str().unwrap(), "--json"],
    );
    stdout_json(&out);
    assert!(!leftover.exists());
    assert!(!cache_leftover.exists());
    assert!(unrelated.exists());
}

#[test]
fn non_utf8_arguments_are_a_usage_error_not_a_panic() {
    // Defect 8.
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"\xff\xfe");
    for json in [false, true] {
        let mut c = cmd();
        c.args(["whoami", "--tokens"])
            .arg(bad)
            .arg("--profile")
            .arg(bad);
        if json {
            c.arg("--json");
        }
        let out = c.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn json_usage_errors_name_the_argument() {
    // Defect 8.
    let out = cmd()
        .args(["login", "--json", "--timeout", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let e = stderr_json(&out);
    assert_eq!(e["error"], "usage_error");
    assert_eq!(e["argument"], "--timeout <TIMEOUT>");
    assert!(e["message"].as_str().unwrap().contains("soon"), "{e}");
    let out = cmd()
        .args(["whoami", "--json"])
        .env("HOME", "")
        .env("XDG_STATE_HOME", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(stderr_json(&out)["argument"], "--tokens");
}

#[test]
fn provider_strings_cannot_inject_terminal_escapes() {
    // Defect 8: an organization title with ESC / OSC sequences prints escaped.
    let served = Served::start_demo().unwrap();
    served.with(|i| {
        let mut m = authpi_idp_testkit::Membership::new("org_evil", &["projects:read"]);
        m.title = Some("\u{1b}]0;pwned\u{7}\u{1b}[2J".into());
        i.set_membership("usr_alice", m);
    });
    let dir = temp_dir("escapes");
    let tokens = dir.join("t.json");
    headless_login(&served, &tokens, &[]);
    let out = run(&served, "whoami", &["--tokens", tokens.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains("\\u{1b}]0;pwned\\u{7}\\u{1b}[2J"), "{text}");
    let out = run(&served, "userinfo", &["--tokens", tokens.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\u{1b}'), "{text:?}");
}

#[test]
fn json_errors_carry_status_and_retry_after_and_exit_5() {
    // Defect 8: a 429 with Retry-After is a JSON error with both, exit 5 (unavailable).
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("429");
    let tokens = dir.join("t.json");
    let file = tokens.to_str().unwrap();
    headless_login(&served, &tokens, &[]);
    served.push_response(
        "/token",
        http::Response::builder()
            .status(429)
            .header("retry-after", "7")
            .body(Vec::new())
            .unwrap(),
    );
    let out = run(&served, "refresh", &["--tokens", file, "--json"]);
    assert_eq!(out.status.code(), Some(5));
    let e = stderr_json(&out);
    assert_eq!(e["error"], "rate_limited");
    assert_eq!(e["status"], 429);
    assert_eq!(e["retry_after"], 7);
    assert_eq!(e["exit_code"], 5);
}

#[test]
fn token_prints_the_access_token_or_a_header() {
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("token");
    let tokens = dir.join("t.json");
    let file = tokens.to_str().unwrap();
    headless_login(&served, &tokens, &[]);
    let at = TokenSet::from_json(&std::fs::read(&tokens).unwrap())
        .unwrap()
        .access_token;
    let out = run(&served, "token", &["--tokens", file]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{at}\n"));
    let out = run(&served, "token", &["--tokens", file, "--header"]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("Authorization: Bearer {at}\n")
    );
    let v = stdout_json(&run(&served, "token", &["--tokens", file, "--json"]));
    assert_eq!(v["access_token"], at.as_str());
    assert!(v["expires_in"].as_i64().unwrap() > 0);
}

#[test]
fn token_refreshes_when_due() {
    let served = Served::start_demo().unwrap();
    served.use_system_clock();
    let dir = temp_dir("token-refresh");
    let tokens = dir.join("t.json");
    headless_login(&served, &tokens, &[]);
    let mut stored: Value = serde_json::from_slice(&std::fs::read(&tokens).unwrap()).unwrap();
    let old_at = stored["access_token"].as_str().unwrap().to_owned();
    stored["expires_at"] = (unix_now() - 10).into();
    std::fs::write(&tokens, stored.to_string()).unwrap();
    let out = run(&served, "token", &["--tokens", tokens.to_str().unwrap()]);
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_ne!(printed.trim(), old_at);
    let now_set = TokenSet::from_json(&std::fs::read(&tokens).unwrap()).unwrap();
    assert_eq!(printed.trim(), now_set.access_token);
    assert_eq!(served.stats().refresh_requests, 1);
}

#[test]
fn profiles_live_in_the_xdg_state_dir_and_remember_their_issuer() {
    let served = Served::start_demo().unwrap();
    let state = temp_dir("xdg");
    let mut child = cmd()
        .arg("login")
        .args(web_args(&served))
        .args([
            "--paste-callback",
            "--redirect-uri",
            "http://127.0.0.1:9/callback",
        ])
        .args(["--profile", "work"])
        .env("XDG_STATE_HOME", &state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Without --json the first stdout line is the URL itself (the paste flow's contract).
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let callback = browse(first.trim());
    writeln!(child.stdin.take().unwrap(), "{callback}").unwrap();
    let out = wait_guarded(child, 30);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = state.join("authpi-idp/profiles/work.json");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);

    // No flags at all: the profile names its issuer and client.
    let out = cmd()
        .args(["whoami", "--json", "--profile", "work"])
        .env("XDG_STATE_HOME", &state)
        .env("AUTHPI_CLIENT_SECRET", "secret_web")
        .output()
        .unwrap();
    assert_eq!(stdout_json(&out)["id"], "usr_alice");
    // The default profile is another session: not logged in.
    let out = cmd()
        .args(["whoami", "--json"])
        .env("XDG_STATE_HOME", &state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn verbose_logs_requests_without_secrets() {
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("verbose");
    let tokens = dir.join("t.json");
    let file = tokens.to_str().unwrap();
    headless_login(&served, &tokens, &[]);
    let stored = TokenSet::from_json(&std::fs::read(&tokens).unwrap()).unwrap();
    let out = cmd()
        .args(["refresh", "--tokens", file])
        .args(web_args(&served))
        .env("AUTHPI_LOG", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "POST {}/token (refresh) -> 200 in",
            served.issuer_url()
        )),
        "{stderr}"
    );
    for secret in [
        "secret_web",
        stored.refresh_token.as_deref().unwrap(),
        stored.access_token.as_str(),
    ] {
        assert!(!stderr.contains(secret), "secret in the log: {stderr}");
    }
}

#[test]
fn completions_and_help_examples() {
    let out = cmd().args(["completions", "bash"]).output().unwrap();
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(script.contains("authpi-idp"), "{script}");
    assert!(script.contains("logout"), "{script}");
    let help = cmd().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for expected in [
        "Exit codes:",
        "3  login required",
        "Examples:",
        "authpi-idp token --header",
    ] {
        assert!(help.contains(expected), "{expected}: {help}");
    }
}

#[test]
fn proxies_come_from_the_environment() {
    // ALL_PROXY/HTTPS_PROXY/HTTP_PROXY are honoured (here a proxy that does not exist, so the
    // request fails as unavailable), and NO_PROXY exempts the issuer.
    let served = Served::start_demo().unwrap();
    let m2m = |c: &mut Command| {
        c.args(["client-credentials", "--json"])
            .args(["--issuer", served.issuer_url(), "--client-id", "c_m2m"])
            .env("AUTHPI_CLIENT_SECRET", "secret_m2m");
    };
    let mut c = cmd();
    m2m(&mut c);
    let out = c.env("ALL_PROXY", "http://127.0.0.1:1").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stderr_json(&out)["error"], "transport_error");
    assert_eq!(served.stats().discovery_requests, 0);
    let mut c = cmd();
    m2m(&mut c);
    let out = c
        .env("ALL_PROXY", "http://127.0.0.1:1")
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .unwrap();
    assert_eq!(stdout_json(&out)["id"], "c_m2m");
}

#[test]
fn store_keyring_falls_back_to_the_file_without_a_keyring() {
    // No OS keyring here (a build without the `keyring` feature, or a headless machine without
    // a Secret Service): the tokens stay in the file, with a warning, and the session works.
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("keyring");
    let tokens = dir.join("t.json");
    let mut child = cmd()
        .arg("login")
        .args(web_args(&served))
        .args([
            "--paste-callback",
            "--redirect-uri",
            "http://127.0.0.1:9/callback",
        ])
        .args(["--store", "keyring", "--tokens"])
        .arg(&tokens)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let callback = browse(first.trim());
    writeln!(child.stdin.take().unwrap(), "{callback}").unwrap();
    let out = wait_guarded(child, 30);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: the OS keyring cannot be used"),
        "{stderr}"
    );
    let stored = TokenSet::from_json(&std::fs::read(&tokens).unwrap()).unwrap();
    assert!(stored.refresh_token.is_some());
    assert_eq!(mode(&tokens), 0o600);
    let out = run(
        &served,
        "whoami",
        &["--tokens", tokens.to_str().unwrap(), "--json"],
    );
    assert_eq!(stdout_json(&out)["id"], "usr_alice");
}

#[test]
fn a_keyring_session_that_cannot_be_read_is_an_error_not_a_login() {
    // A marker file (tokens in the keyring) on a machine where the keyring cannot be read.
    let served = Served::start_demo().unwrap();
    let dir = temp_dir("keyring-marker");
    let tokens = dir.join("t.json");
    std::fs::write(
        &tokens,
        serde_json::json!({
            "bound_to": {"issuer": served.issuer_url(), "client_id": "client_web"},
            "keyring": {"service": "authpi-idp", "account": "/nonexistent/authpi-test"},
        })
        .to_string(),
    )
    .unwrap();
    set_mode(&tokens, 0o600);
    let out = run(
        &served,
        "whoami",
        &["--tokens", tokens.to_str().unwrap(), "--json"],
    );
    assert_eq!(out.status.code(), Some(2));
    let e = stderr_json(&out);
    assert_eq!(e["error"], "token_file_error");
    assert!(e["message"].as_str().unwrap().contains("OS keyring"), "{e}");
}

#[test]
fn ca_file_trusts_a_private_ca() {
    // A provider behind a private CA: the built-in roots refuse it (unavailable, exit 5);
    // with --ca-file the TLS handshake succeeds (the one-request test server then answers
    // something that is not a discovery document: a configuration error, exit 2).
    use authpi_idp_adapter_suite::cases::private_ca_server;
    let (_, issuer, server) = private_ca_server();
    let out = cmd()
        .args([
            "verify",
            "--json",
            "--issuer",
            &issuer,
            "--audience",
            "a",
            "tok",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stderr_json(&out)["error"], "transport_error");
    server.join().unwrap();

    let (ca, issuer, server) = private_ca_server();
    let dir = temp_dir("ca");
    let pem = dir.join("ca.pem");
    std::fs::write(&pem, ca).unwrap();
    let out = cmd()
        .args([
            "verify",
            "--json",
            "--issuer",
            &issuer,
            "--audience",
            "a",
            "tok",
        ])
        .arg("--ca-file")
        .arg(&pem)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stderr_json(&out)["kind"], "discovery");
    server.join().unwrap();

    // A file that is not PEM is a usage error naming the flag.
    let out = cmd()
        .args(["whoami", "--json", "--ca-file"])
        .arg(dir.join("missing.pem"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(stderr_json(&out)["argument"], "--ca-file");
}
