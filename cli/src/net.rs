//! The CLI's driver: runs the core's operations over the ureq transport, logging each request
//! (method, endpoint without its query, status, time; never a header or a body) when asked.

use crate::error::CliError;
use authpi_idp::flow::Discovered;
use authpi_idp::{Client, Config, KeySet, Operation, Outgoing, Step, TokenSet, UnixTime};
use authpi_idp_ureq::{TlsRoots, TransportOptions, UreqTransport};
use std::sync::OnceLock;
use std::time::Instant;

/// The TLS roots of every transport of this process (`--ca-file`, `--system-roots`), set once
/// at start.
static ROOTS: OnceLock<TlsRoots> = OnceLock::new();

/// Sets the TLS roots (call once, before any request).
pub fn set_roots(roots: TlsRoots) {
    let _ = ROOTS.set(roots);
}

/// The system clock.
pub fn now() -> UnixTime {
    authpi_idp_async::system_now()
}

/// `secs` seconds from now, on the monotonic clock; a `--timeout` too large for the clock
/// (any `u64` parses) means "no deadline": a far-future instant, never an overflow panic.
pub fn deadline_in(secs: u64) -> Instant {
    let now = Instant::now();
    // About 30 years: beyond any login, within every platform's `Instant` range.
    const FAR: std::time::Duration = std::time::Duration::from_secs(30 * 365 * 24 * 3600);
    now.checked_add(std::time::Duration::from_secs(secs))
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

/// Where diagnostics go: nowhere, or stderr (text, or JSON lines under `--json`).
#[derive(Clone, Copy, Debug)]
pub struct Log {
    /// Log requests.
    pub verbose: bool,
    /// JSON lines instead of prose.
    pub json: bool,
}

impl Log {
    /// A progress message for a person (suppressed under `--json`, where stderr carries only
    /// the error object).
    pub fn note(&self, message: &str) {
        if !self.json {
            eprintln!("{message}");
        }
    }

    /// A diagnostic (only with `--verbose`).
    pub fn debug(&self, message: &str) {
        if self.verbose {
            if self.json {
                eprintln!(
                    "{}",
                    serde_json::json!({"log": "debug", "message": message})
                );
            } else {
                eprintln!("authpi-idp: {message}");
            }
        }
    }

    fn request(&self, kind: &str, method: &str, endpoint: &str, result: &str, ms: u128) {
        if !self.verbose {
            return;
        }
        if self.json {
            eprintln!(
                "{}",
                serde_json::json!({
                    "log": "request", "kind": kind, "method": method,
                    "endpoint": endpoint, "result": result, "ms": ms,
                })
            );
        } else {
            eprintln!("authpi-idp: {method} {endpoint} ({kind}) -> {result} in {ms} ms");
        }
    }
}

/// A URL without query or fragment (what the log shows).
fn endpoint(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    format!("{scheme}://{authority}{}", uri.path())
}

/// Sends requests and logs them.
#[derive(Clone, Debug)]
pub struct Http {
    transport: UreqTransport,
    log: Log,
}

impl Http {
    /// The transport: rustls with the roots of [`set_roots`] (default webpki), proxies from
    /// the environment, 30 s deadline, 1 MiB cap, no redirects.
    pub fn new(log: Log) -> Self {
        let roots = ROOTS.get().cloned().unwrap_or_default();
        log.debug(&format!("TLS roots: {roots:?}"));
        Http {
            transport: UreqTransport::new(TransportOptions::new().roots(roots)),
            log,
        }
    }

    /// Sends one request of the given kind (for the log).
    pub fn send(
        &self,
        kind: &str,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, CliError> {
        let method = request.method().to_string();
        let url = endpoint(request.uri());
        let start = Instant::now();
        let result = self.transport.send(request);
        let ms = start.elapsed().as_millis();
        match &result {
            Ok(r) => self
                .log
                .request(kind, &method, &url, r.status().as_str(), ms),
            Err(e) => self.log.request(kind, &method, &url, &e.to_string(), ms),
        }
        Ok(result?)
    }

    fn send_outgoing(&self, out: Outgoing) -> Result<http::Response<Vec<u8>>, CliError> {
        let kind = format!("{:?}", out.kind).to_lowercase();
        self.send(&kind, out.request)
    }
}

/// A provider connection: the core client, its key set and the transport.
#[derive(Debug)]
pub struct Net {
    /// The core client.
    pub client: Client,
    /// The key set (updated when an operation refetched it).
    pub keys: KeySet,
    /// Whether `keys` changed since this value was made (the cache should be rewritten).
    pub keys_changed: bool,
    /// The transport.
    pub http: Http,
}

impl Net {
    /// Discovers the provider (OpenID Connect Discovery, then its JWKS).
    pub fn discover(config: Config, http: Http) -> Result<Net, CliError> {
        let mut op = Client::discover(config);
        let Discovered { client, keys, .. } = drive(&http, &mut op, &mut |_| Ok(()), None)?;
        Ok(Net {
            client,
            keys,
            keys_changed: true,
            http,
        })
    }

    /// A connection from cached metadata and keys (no network).
    pub fn cached(client: Client, keys: KeySet, http: Http) -> Net {
        Net {
            client,
            keys,
            keys_changed: false,
            http,
        }
    }

    /// Runs an operation; `persist` receives rotated token sets (it must store them before the
    /// operation goes on).
    pub fn run<O: Operation>(
        &mut self,
        mut op: O,
        persist: &mut dyn FnMut(TokenSet) -> Result<(), CliError>,
    ) -> Result<O::Output, CliError> {
        let mut keys = None;
        let out = drive(&self.http, &mut op, persist, Some(&mut keys));
        if let Some(k) = keys {
            self.keys = k;
            self.keys_changed = true;
        }
        out
    }

    /// Runs an operation that never rotates tokens.
    pub fn run_plain<O: Operation>(&mut self, op: O) -> Result<O::Output, CliError> {
        self.run(op, &mut |_| {
            Err(CliError::Io(
                "internal: an operation without refresh emitted tokens".into(),
            ))
        })
    }
}

fn drive<O: Operation>(
    http: &Http,
    op: &mut O,
    persist: &mut dyn FnMut(TokenSet) -> Result<(), CliError>,
    mut keys: Option<&mut Option<KeySet>>,
) -> Result<O::Output, CliError> {
    // A request without a response is reported to the operation, which decides (a rotated
    // token set may still have to be persisted); its own `NoResponse` is then replaced by the
    // transport's more precise error.
    let mut transport_error: Option<CliError> = None;
    loop {
        let step = match op.poll(now()) {
            Ok(step) => step,
            Err(authpi_idp::Error::NoResponse { .. }) if transport_error.is_some() => {
                return Err(transport_error
                    .take()
                    .unwrap_or_else(|| CliError::Io("no response from the provider".into())));
            }
            Err(e) => return Err(e.into()),
        };
        match step {
            Step::Send(out) => match http.send_outgoing(out) {
                Ok(response) => op.handle_response(response),
                Err(e) => {
                    transport_error = Some(e);
                    op.handle_transport_error();
                }
            },
            Step::Persist(tokens) => persist(tokens)?,
            Step::KeysRefreshed(k) => {
                if let Some(slot) = keys.as_deref_mut() {
                    *slot = Some(k);
                }
            }
            Step::Done(output) => return Ok(output),
        }
    }
}
