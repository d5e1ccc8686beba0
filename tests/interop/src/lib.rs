//! Test support for the interoperability suite: an `oidc-provider` process ([`Provider`]), a
//! browser stand-in that follows the provider's redirect chain with a cookie jar
//! ([`Browser`]), and [`Adapter`], the behaviour suite's [`Api`] plus access to the key cache.
//!
//! The provider is `tests/interop/provider.mjs` (see the README next to it). It needs Node.js
//! and npm: the first test that needs the provider runs `npm ci --prefix tests/interop` itself
//! (once, under a lock file shared by test binaries running in parallel). Without Node.js every
//! test fails loudly (never skips).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub use authpi_idp_adapter_suite::Api;

use authpi_idp::{Agent, AuthorizationRequest, ClientAuth, Config, KeySet};
use authpi_idp_async::TransportOptions;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one start of the provider may take to print `READY` (it normally takes under a
/// second).
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Starts tried before giving up when the provider hangs before `READY`. A start that fails
/// outright (node missing, bad arguments, an exception) is never retried. One CI run saw node
/// hang before `READY` with nothing on stderr; a fresh process started at once.
const START_ATTEMPTS: usize = 3;
/// The web clients' registered redirect URI.
pub const WEB_REDIRECT: &str = "http://127.0.0.1:7777/callback";
/// The web clients' registered post-logout redirect URI.
pub const WEB_LOGOUT: &str = "http://127.0.0.1:7777/logged-out";
/// The resource server known to the provider (RFC 8707).
pub const API_RESOURCE: &str = "https://api.example.com";

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh path in the temp directory for a keys file (the provider creates it).
#[must_use]
pub fn temp_keys_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "authpi-interop-keys-{}-{}-{nanos}.json",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ))
}

/// A running `provider.mjs`. Its stdin is a pipe kept open by this value: when the test
/// process dies, the pipe closes and the provider exits by itself. Dropping kills it.
pub struct Provider {
    issuer: String,
    layout: &'static str,
    port: u16,
    child: Mutex<Option<(Child, ChildStdin)>>,
    stderr: Arc<Mutex<Vec<String>>>,
    keys_files: Mutex<Vec<PathBuf>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// The provider shared by every test of one test binary (started on first use).
    pub fn shared() -> &'static Provider {
        static SHARED: OnceLock<Provider> = OnceLock::new();
        SHARED.get_or_init(|| Provider::start(0, &temp_keys_path()))
    }

    /// A second shared provider with oidc-provider's own endpoint paths (`--layout default`:
    /// `/auth`, `/me`, `/token/revocation`, …), to prove that endpoints come from discovery.
    pub fn shared_default_layout() -> &'static Provider {
        static SHARED: OnceLock<Provider> = OnceLock::new();
        SHARED.get_or_init(|| Provider::start_with_layout(0, &temp_keys_path(), "default"))
    }

    /// Starts `provider.mjs --port PORT --keys KEYS --log-requests` and waits for `READY`.
    ///
    /// # Panics
    /// Node.js or `node_modules` missing, or no `READY` within [`READY_TIMEOUT`]: the panic
    /// message carries the provider's stderr.
    pub fn start(port: u16, keys: &Path) -> Provider {
        Self::start_with_layout(port, keys, "authpi")
    }

    /// [`Provider::start`] with `--layout authpi` or `--layout default`.
    ///
    /// # Panics
    /// As [`Provider::start`].
    pub fn start_with_layout(port: u16, keys: &Path, layout: &'static str) -> Provider {
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (child, stdin, issuer) =
            try_spawn(port, keys, layout, &stderr).unwrap_or_else(|e| panic!("{e}"));
        let port = url::Url::parse(&issuer)
            .ok()
            .and_then(|u| u.port())
            .unwrap_or_else(|| panic!("provider.mjs printed an issuer without a port: {issuer}"));
        Provider {
            issuer,
            layout,
            port,
            child: Mutex::new(Some((child, stdin))),
            stderr,
            keys_files: Mutex::new(vec![keys.to_owned()]),
        }
    }

    /// The issuer, `http://127.0.0.1:PORT` (no trailing slash).
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The port the provider listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything the provider wrote to stderr so far (all its processes, in order).
    #[must_use]
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits until every line the provider wrote to stderr before now has been collected: a
    /// marker request (`GET /__sync/N`, a 404) is logged after everything earlier, in order.
    ///
    /// # Panics
    /// The marker does not show up within 10 s.
    pub fn sync(&self) {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = format!("/__sync/{}", N.fetch_add(1, Ordering::SeqCst));
        let page = Browser::new().request(&format!("{}{path}", self.issuer), None);
        assert_eq!(page.status, 404, "sync marker");
        let line = format!("request: GET {path} ");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self
            .stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with(&line))
        {
            assert!(
                Instant::now() < deadline,
                "the provider log did not catch up"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// How many requests `METHOD PATH` the provider has answered (from `--log-requests`),
    /// after [`Provider::sync`].
    #[must_use]
    pub fn requests(&self, method: &str, path: &str) -> usize {
        self.sync();
        let prefix = format!("request: {method} {path} ");
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(&prefix))
            .count()
    }

    /// Stops the provider and starts it again on the same port (so the issuer is unchanged)
    /// with the keys file `keys`: a new file means new keys (rotation). All provider state
    /// (sessions, grants, tokens) is lost.
    ///
    /// # Panics
    /// The new process does not come up (its stderr is in the message).
    pub fn restart(&self, keys: &Path) {
        let mut guard = self.child.lock().unwrap();
        if let Some((mut child, stdin)) = guard.take() {
            drop(stdin);
            let _ = child.kill();
            let _ = child.wait();
        }
        // The old listening socket is gone once the process has been reaped; retry a little in
        // case the kernel is slow to release the port.
        let deadline = Instant::now() + Duration::from_secs(10);
        let (child, stdin, issuer) = loop {
            match try_spawn(self.port, keys, self.layout, &self.stderr) {
                Ok(started) => break started,
                Err(e) if Instant::now() < deadline => {
                    eprintln!(
                        "provider restart on port {} failed, retrying: {e}",
                        self.port
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(
            issuer, self.issuer,
            "the restarted provider must keep the issuer"
        );
        *guard = Some((child, stdin));
        self.keys_files.lock().unwrap().push(keys.to_owned());
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.child.lock()
            && let Some((mut child, stdin)) = guard.take()
        {
            drop(stdin);
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Ok(files) = self.keys_files.lock() {
            for f in files.iter() {
                let _ = std::fs::remove_file(f);
            }
        }
    }
}

/// Written into `node_modules` once an install from the current `package-lock.json` completed:
/// its content is a hash of that lock file. `npm ci` deletes `node_modules` first, so a missing
/// or different marker means "not (completely) installed from this lock file".
const INSTALLED_MARKER: &str = ".authpi-interop-installed";
/// The lock file (next to `package.json`) that serializes installs across processes.
const INSTALL_LOCK: &str = ".npm-install.lock";

/// A hash of `dir/package-lock.json`, the content of [`INSTALLED_MARKER`].
fn lock_file_hash(dir: &Path) -> Result<String, String> {
    use std::hash::{Hash, Hasher};
    let lock = std::fs::read(dir.join("package-lock.json")).map_err(|e| {
        format!(
            "interop: cannot read {}/package-lock.json: {e}",
            dir.display()
        )
    })?;
    // SipHash with fixed keys: the same bytes give the same value in every process.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    lock.hash(&mut h);
    Ok(format!("{:016x} {}", h.finish(), lock.len()))
}

/// `Err` (saying what to run) when `dir` has no complete install of the provider's packages
/// from its current `package-lock.json`.
fn check_node_modules(dir: &Path) -> Result<(), String> {
    let modules = dir.join("node_modules");
    let marker = std::fs::read_to_string(modules.join(INSTALLED_MARKER)).unwrap_or_default();
    if modules.join("oidc-provider").join("package.json").is_file()
        && lock_file_hash(dir).is_ok_and(|h| h == marker)
    {
        return Ok(());
    }
    Err(format!(
        "interop: {}/node_modules is not installed from package-lock.json; the tests run \
         `npm ci --prefix tests/interop` (from the repository root) themselves when they first \
         need the provider",
        dir.display()
    ))
}

/// `npm ci` in `dir` (from the committed lock file).
fn npm_ci(dir: &Path) -> Result<(), String> {
    eprintln!("interop: installing tests/interop's npm packages (npm ci)…");
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(dir)
        .output()
        .map_err(|e| format!("interop: cannot run `npm` ({e}); install Node.js (>= 20) and npm"))?;
    if !out.status.success() {
        return Err(format!(
            "interop: `npm ci --prefix tests/interop` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Installs the provider's npm packages from the committed lock file when they are missing, so
/// that `cargo test --workspace` works on a fresh clone with nothing pre-installed. Runs at
/// most once per test binary; see [`install_locked`] for test binaries running in parallel.
fn ensure_node_modules(dir: &Path) -> Result<(), String> {
    static INSTALL: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALL.get_or_init(|| install_locked(dir, npm_ci)).clone()
}

/// Checks and (when needed) installs under an exclusive lock on `dir/.npm-install.lock`, held
/// across the check, `install` and the marker write: a process (or thread) that finds the lock
/// taken waits, then sees the finished install and does not run `install` again. It never looks
/// at `node_modules` while another process's `npm ci` is rewriting it. The lock is the kernel's
/// (released when the holder exits, even by a crash), so no stale lock can block a later run.
fn install_locked(dir: &Path, install: impl Fn(&Path) -> Result<(), String>) -> Result<(), String> {
    let lock_path = dir.join(INSTALL_LOCK);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("interop: cannot open {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("interop: cannot lock {}: {e}", lock_path.display()))?;
    let result = (|| {
        if check_node_modules(dir).is_ok() {
            return Ok(());
        }
        install(dir)?;
        let marker = dir.join("node_modules").join(INSTALLED_MARKER);
        std::fs::write(&marker, lock_file_hash(dir)?)
            .map_err(|e| format!("interop: cannot write {}: {e}", marker.display()))?;
        check_node_modules(dir)
    })();
    let _ = lock.unlock();
    result
}

/// Starts one provider process; `Err` carries a loud explanation with the provider's stderr.
fn try_spawn(
    port: u16,
    keys: &Path,
    layout: &str,
    stderr_log: &Arc<Mutex<Vec<String>>>,
) -> Result<(Child, ChildStdin, String), String> {
    let mut attempt = 1;
    loop {
        match spawn_once(port, keys, layout, stderr_log) {
            Err(e) if e.contains(HUNG) && attempt < START_ATTEMPTS => {
                eprintln!(
                    "interop: provider start {attempt}/{START_ATTEMPTS} hung, starting a new process:\n{e}"
                );
                attempt += 1;
            }
            other => return other,
        }
    }
}

const HUNG: &str = "no READY line within";

fn spawn_once(
    port: u16,
    keys: &Path,
    layout: &str,
    stderr_log: &Arc<Mutex<Vec<String>>>,
) -> Result<(Child, ChildStdin, String), String> {
    let dir = interop_dir();
    ensure_node_modules(&dir)?;
    let mut child = Command::new("node")
        .arg(dir.join("provider.mjs"))
        .args(["--port", &port.to_string(), "--keys"])
        .arg(keys)
        .args(["--layout", layout, "--log-requests"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "interop: cannot run `node` ({e}); install Node.js (>= 20) and run \
                 `npm ci --prefix tests/interop`"
            )
        })?;
    let stdin = child.stdin.take().ok_or("interop: no stdin pipe")?;
    let stdout = child.stdout.take().ok_or("interop: no stdout pipe")?;
    let stderr = child.stderr.take().ok_or("interop: no stderr pipe")?;

    // Stderr is collected for the whole life of the process (request log, failure reasons).
    let start = stderr_log.lock().unwrap().len();
    let log = Arc::clone(stderr_log);
    let (err_done_tx, err_done) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            log.lock().unwrap().push(line);
        }
        let _ = err_done_tx.send(());
    });

    let (ready_tx, ready) = mpsc::channel::<Option<String>>();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok);
        let _ = ready_tx.send(first);
        // Keep draining (nothing else is expected on stdout).
        for _ in lines {}
    });

    let failure = match ready.recv_timeout(READY_TIMEOUT) {
        Ok(Some(line)) => match line.strip_prefix("READY ") {
            Some(issuer) => return Ok((child, stdin, issuer.trim().to_owned())),
            None => format!("unexpected first stdout line {line:?}"),
        },
        Ok(None) => "stdout closed before READY".to_owned(),
        Err(_) => format!("{HUNG} {READY_TIMEOUT:?}"),
    };
    drop(stdin);
    let _ = child.kill();
    let status = child.wait();
    let _ = err_done.recv_timeout(Duration::from_secs(5));
    let lines = stderr_log.lock().unwrap();
    let tail = lines.get(start..).unwrap_or_default().join("\n");
    Err(format!(
        "interop: provider.mjs (port {port}) did not start: {failure}; exit: {status:?}\n\
         --- provider stderr ---\n{tail}\n--- end ---"
    ))
}

/// A minimal browser: no JavaScript, a cookie jar, redirects followed by hand. Uses ureq
/// directly (redirects off), not the SDK's adapters.
#[derive(Debug)]
pub struct Browser {
    agent: ureq::Agent,
    jar: Vec<Cookie>,
}

#[derive(Debug, Clone)]
struct Cookie {
    name: String,
    value: String,
    path: String,
}

/// One HTTP answer as the browser saw it.
#[derive(Debug)]
pub struct Page {
    /// The status.
    pub status: u16,
    /// `Location`, resolved against the request URL.
    pub location: Option<String>,
    /// The body as text.
    pub body: String,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A browser with an empty cookie jar.
    #[must_use]
    pub fn new() -> Self {
        let agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Browser {
            agent,
            jar: Vec::new(),
        }
    }

    fn cookie_header(&self, url: &url::Url) -> Option<String> {
        let path = url.path();
        let matching: Vec<String> = self
            .jar
            .iter()
            .filter(|c| path_matches(path, &c.path))
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!matching.is_empty()).then(|| matching.join("; "))
    }

    fn store_cookies(&mut self, url: &url::Url, headers: &http::HeaderMap) {
        for raw in headers.get_all(http::header::SET_COOKIE) {
            let Ok(raw) = raw.to_str() else { continue };
            let mut parts = raw.split(';');
            let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
                continue;
            };
            let mut path = default_path(url.path());
            let mut expired = false;
            for attr in parts {
                let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
                match k.trim().to_ascii_lowercase().as_str() {
                    "path" if v.trim().starts_with('/') => path = v.trim().to_owned(),
                    "max-age" => expired |= v.trim().parse::<i64>().is_ok_and(|n| n <= 0),
                    "expires" => expired |= v.contains("1970"),
                    _ => {}
                }
            }
            let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
            self.jar.retain(|c| !(c.name == name && c.path == path));
            if !expired {
                self.jar.push(Cookie { name, value, path });
            }
        }
    }

    /// One request (`GET`, or a form `POST` when `form` is given), cookies sent and stored.
    ///
    /// # Panics
    /// Transport failure.
    pub fn request(&mut self, url: &str, form: Option<&str>) -> Page {
        let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("bad URL {url}: {e}"));
        let cookies = self.cookie_header(&parsed);
        let result = match form {
            None => {
                let mut req = self.agent.get(url);
                if let Some(c) = &cookies {
                    req = req.header("cookie", c);
                }
                req.call()
            }
            Some(body) => {
                let mut req = self
                    .agent
                    .post(url)
                    .header("content-type", "application/x-www-form-urlencoded");
                if let Some(c) = &cookies {
                    req = req.header("cookie", c);
                }
                req.send(body)
            }
        };
        let mut resp = result.unwrap_or_else(|e| panic!("browser: request failed: {e}"));
        self.store_cookies(&parsed, resp.headers());
        let location = resp
            .headers()
            .get(http::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(|l| {
                parsed
                    .join(l)
                    .map(String::from)
                    .unwrap_or_else(|_| l.to_owned())
            });
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        Page {
            status,
            location,
            body,
        }
    }

    /// Follows the redirect chain from an authorization URL until the redirect to
    /// `redirect_uri` (compared without query) and returns that URL: the callback. Every hop
    /// must be a 303.
    ///
    /// # Panics
    /// A hop that is not a 303, or more than 10 hops.
    pub fn authorize(&mut self, authorization_url: &str, redirect_uri: &str) -> String {
        let mut url = authorization_url.to_owned();
        for hop in 1..=10 {
            let page = self.request(&url, None);
            assert_eq!(
                page.status,
                303,
                "hop {hop} ({}) answered {} instead of 303: {}",
                path_of(&url),
                page.status,
                page.body
            );
            let next = page
                .location
                .unwrap_or_else(|| panic!("hop {hop}: 303 without Location"));
            if next.split(['?', '#']).next() == Some(redirect_uri) {
                return next;
            }
            url = next;
        }
        panic!("the redirect chain did not reach {redirect_uri} within 10 hops");
    }
}

fn path_of(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.path().to_owned())
        .unwrap_or_default()
}

/// RFC 6265 §5.1.4 default-path.
fn default_path(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => path.get(..i).unwrap_or("/").to_owned(),
    }
}

/// RFC 6265 §5.1.4 path-match.
fn path_matches(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request.as_bytes().get(cookie.len()) == Some(&b'/')))
}

/// The behaviour suite's [`Api`] plus what the interop tests need from an adapter.
pub trait Adapter: Api {
    /// The adapter's cached key set.
    fn keys(&self) -> KeySet;
    /// A new adapter instance with the same core client (same metadata) and the key cache
    /// `keys`, over a fresh transport.
    fn with_keys(&self, keys: KeySet) -> Self;
    /// The core client (metadata, issuer, algorithms).
    fn core(&self) -> &authpi_idp::Client;
}

impl Adapter for authpi_idp_reqwest::IdpClient {
    fn keys(&self) -> KeySet {
        authpi_idp_reqwest::IdpClient::keys(self)
    }
    fn core(&self) -> &authpi_idp::Client {
        self.client()
    }
    fn with_keys(&self, keys: KeySet) -> Self {
        let transport =
            authpi_idp_reqwest::ReqwestTransport::new(TransportOptions::default()).unwrap();
        Self::from_client(self.client().clone(), keys, transport)
    }
}

impl Adapter for authpi_idp_hyper::IdpClient {
    fn keys(&self) -> KeySet {
        authpi_idp_hyper::IdpClient::keys(self)
    }
    fn core(&self) -> &authpi_idp::Client {
        self.client()
    }
    fn with_keys(&self, keys: KeySet) -> Self {
        let transport = authpi_idp_hyper::HyperTransport::new(TransportOptions::default()).unwrap();
        Self::from_client(self.client().clone(), keys, transport)
    }
}

impl Adapter for authpi_idp_ureq::IdpClientSync {
    fn keys(&self) -> KeySet {
        authpi_idp_ureq::IdpClientSync::keys(self)
    }
    fn core(&self) -> &authpi_idp::Client {
        self.client()
    }
    fn with_keys(&self, keys: KeySet) -> Self {
        Self::from_client(
            self.client().clone(),
            keys,
            authpi_idp_ureq::UreqTransport::new(TransportOptions::default()),
            authpi_idp_ureq::DEFAULT_REFRESH_GRACE,
        )
    }
}

/// A confidential web client of the provider (`client_basic`, `client_rs256`, …;
/// `client_post` authenticates with `client_secret_post`).
#[must_use]
pub fn web_config(provider: &Provider, client_id: &str) -> Config {
    let auth = if client_id == "client_post" {
        ClientAuth::ClientSecretPost
    } else {
        ClientAuth::ClientSecretBasic
    };
    Config::builder(provider.issuer(), client_id)
        .client_secret(format!("{client_id}_secret"))
        .client_auth(auth)
        .redirect_uri(WEB_REDIRECT)
        .build()
        .unwrap()
}

/// The public native client with a loopback redirect URI on `port`.
#[must_use]
pub fn public_config(provider: &Provider, port: u16) -> Config {
    Config::builder(provider.issuer(), "client_public")
        .client_auth(ClientAuth::None)
        .redirect_uri(format!("http://127.0.0.1:{port}/callback"))
        .build()
        .unwrap()
}

/// Runs the browser part of a login on the blocking pool: returns the callback URL.
pub async fn browse(authorization_url: String, redirect_uri: String) -> String {
    tokio::task::spawn_blocking(move || Browser::new().authorize(&authorization_url, &redirect_uri))
        .await
        .unwrap()
}

/// A whole login: authorization URL, browser, callback exchange.
pub async fn login<A: Api>(api: &A, request: &AuthorizationRequest) -> Agent {
    let tx = api.create_authorization_url(request).unwrap();
    let redirect = redirect_uri_of(&tx.url);
    let callback = browse(tx.url.clone(), redirect).await;
    api.exchange_callback(callback, tx)
        .await
        .unwrap_or_else(|e| panic!("{}: exchange_callback failed: {e} ({e:?})", A::NAME))
}

/// The `redirect_uri` parameter of an authorization URL.
#[must_use]
pub fn redirect_uri_of(authorization_url: &str) -> String {
    url::Url::parse(authorization_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .expect("authorization URL without redirect_uri")
}

/// The `alg` of a compact JWS's protected header.
#[must_use]
pub fn jws_alg(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    json["alg"].as_str().unwrap_or_default().to_owned()
}

/// `kid`s of a key set, sorted.
#[must_use]
pub fn kids(keys: &KeySet) -> Vec<String> {
    let mut k: Vec<String> = keys
        .iter()
        .filter_map(|j| j.kid().map(str::to_owned))
        .collect();
    k.sort();
    k
}

/// The same key set, as if fetched `secs` seconds earlier (serde round trip): a cache that
/// is past the unknown-`kid` refetch cooldown but still fresh.
#[must_use]
pub fn aged(keys: &KeySet, secs: u64) -> KeySet {
    let mut v = serde_json::to_value(keys).unwrap();
    let at = v["fetched_at"].as_u64().unwrap();
    v["fetched_at"] = serde_json::Value::from(at - secs);
    serde_json::from_value(v).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_node_modules_says_what_to_run() {
        let empty =
            std::env::temp_dir().join(format!("authpi-interop-empty-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        let err = check_node_modules(&empty).unwrap_err();
        assert!(err.contains("npm ci --prefix tests/interop"), "{err}");
        std::fs::remove_dir(&empty).unwrap();
        // On a fresh clone nothing is installed yet: the harness installs it itself.
        ensure_node_modules(&interop_dir()).unwrap();
        check_node_modules(&interop_dir()).unwrap();
    }

    /// Test binaries run in parallel (and threads within one): exactly one install happens, no
    /// caller sees `node_modules` before it is complete, and a changed lock file reinstalls.
    #[test]
    fn concurrent_installs_run_npm_once() {
        use std::sync::atomic::AtomicBool;
        let dir = std::env::temp_dir().join(format!(
            "authpi-interop-install-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("package-lock.json"), "{\"v\":1}").unwrap();
        let installs = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicBool::new(false));
        let fake_npm_ci = {
            let (installs, running) = (Arc::clone(&installs), Arc::clone(&running));
            move |d: &Path| -> Result<(), String> {
                assert!(
                    !running.swap(true, Ordering::SeqCst),
                    "two installs at once"
                );
                installs.fetch_add(1, Ordering::SeqCst);
                // Like npm ci: remove, then rebuild slowly.
                let _ = std::fs::remove_dir_all(d.join("node_modules"));
                std::thread::sleep(Duration::from_millis(100));
                let pkg = d.join("node_modules").join("oidc-provider");
                std::fs::create_dir_all(&pkg).unwrap();
                std::fs::write(pkg.join("package.json"), "{}").unwrap();
                running.store(false, Ordering::SeqCst);
                Ok(())
            }
        };
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (dir, f) = (dir.clone(), fake_npm_ci.clone());
                std::thread::spawn(move || {
                    install_locked(&dir, &f).unwrap();
                    // Whoever returns sees a complete install.
                    check_node_modules(&dir).unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(installs.load(Ordering::SeqCst), 1);
        install_locked(&dir, &fake_npm_ci).unwrap();
        assert_eq!(
            installs.load(Ordering::SeqCst),
            1,
            "installed: nothing to do"
        );
        std::fs::write(dir.join("package-lock.json"), "{\"v\":2}").unwrap();
        install_locked(&dir, &fake_npm_ci).unwrap();
        assert_eq!(
            installs.load(Ordering::SeqCst),
            2,
            "a new lock file reinstalls"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_provider_that_cannot_start_fails_loudly_with_its_stderr() {
        // The keys file cannot be created: provider.mjs exits before READY.
        let keys = Path::new("/nonexistent-authpi-dir/keys.json");
        let log = Arc::new(Mutex::new(Vec::new()));
        let err = try_spawn(0, keys, "authpi", &log).err().unwrap();
        assert!(err.contains("did not start"), "{err}");
        assert!(err.contains("--- provider stderr ---"), "{err}");
        assert!(
            err.contains("nonexistent-authpi-dir"),
            "stderr is included: {err}"
        );
    }

    #[test]
    fn cookie_paths_follow_rfc_6265() {
        for (request, cookie, ok) in [
            ("/interaction/abc", "/interaction/abc", true),
            ("/interaction/abc", "/interaction/ab", false),
            ("/interaction/abc/x", "/interaction/abc", true),
            ("/authorize/abc", "/interaction/abc", false),
            ("/anything", "/", true),
        ] {
            assert_eq!(path_matches(request, cookie), ok, "{request} vs {cookie}");
        }
        assert_eq!(default_path("/authorize"), "/");
        assert_eq!(default_path("/a/b/c"), "/a/b");
    }

    #[test]
    fn jar_replaces_and_expires_cookies() {
        let mut b = Browser::new();
        let url = url::Url::parse("http://127.0.0.1:1/authorize/x").unwrap();
        let mut h = http::HeaderMap::new();
        h.append(
            http::header::SET_COOKIE,
            "a=1; path=/authorize/x; httponly".parse().unwrap(),
        );
        h.append(http::header::SET_COOKIE, "s=2; path=/".parse().unwrap());
        b.store_cookies(&url, &h);
        assert_eq!(b.cookie_header(&url).as_deref(), Some("a=1; s=2"));
        let other = url::Url::parse("http://127.0.0.1:1/token").unwrap();
        assert_eq!(b.cookie_header(&other).as_deref(), Some("s=2"));
        let mut h = http::HeaderMap::new();
        h.append(
            http::header::SET_COOKIE,
            "a=; path=/authorize/x; expires=Thu, 01 Jan 1970 00:00:00 GMT"
                .parse()
                .unwrap(),
        );
        b.store_cookies(&url, &h);
        assert_eq!(b.cookie_header(&url).as_deref(), Some("s=2"));
    }
}
