//! Serving the issuer on loopback with a minimal HTTP/1.1 server (std::net, a thread per
//! connection, keep-alive, `Content-Length` bodies only).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};

use crate::backchannel::LogoutDelivery;
use crate::issuer::{Issuer, IssuerBuilder};
use crate::model::Stats;

/// Largest request head (request line + headers).
const MAX_HEAD: u64 = 64 * 1024;
/// Largest request body.
const MAX_BODY: u64 = 1024 * 1024;

/// How [`Served::start_with`] serves.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Address to bind (default `127.0.0.1:0`: loopback, an ephemeral port).
    pub bind: SocketAddr,
    /// Print one line per request to standard output: method, path, status (and one line per
    /// back-channel logout delivery). Default false.
    pub log_requests: bool,
    /// Bound on connecting, writing and reading when delivering a logout token (default 5 s).
    pub delivery_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            log_requests: false,
            delivery_timeout: Duration::from_secs(5),
        }
    }
}

impl ServeOptions {
    /// Binds `addr` instead of `127.0.0.1:0`.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Logs one line per request to standard output.
    pub fn log_requests(mut self, on: bool) -> Self {
        self.log_requests = on;
        self
    }
}

/// The outcome of POSTing one logout token to a client's back-channel logout URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryOutcome {
    /// What was delivered.
    pub delivery: LogoutDelivery,
    /// The HTTP status the client answered, or why nothing was delivered.
    pub result: Result<u16, String>,
}

struct Shared {
    issuer: Mutex<Issuer>,
    options: ServeOptions,
    delivered: Mutex<Vec<DeliveryOutcome>>,
    /// `None`: system time.
    clock: Mutex<Option<u64>>,
    stop: AtomicBool,
    conns: Mutex<Vec<(TcpStream, JoinHandle<()>)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn system_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Shared {
    fn now(&self) -> u64 {
        lock(&self.clock).unwrap_or_else(system_now)
    }
}

/// An [`Issuer`] served over HTTP/1.1 on `127.0.0.1` at an ephemeral port. Dropping it stops
/// the listener and closes every connection.
pub struct Served {
    shared: Arc<Shared>,
    url: String,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Served {
    /// Binds `127.0.0.1:0`, then builds the issuer with URL `http://127.0.0.1:PORT{path}`,
    /// where `{path}` is the path of the builder's URL (e.g. `/i_test`), and starts serving.
    pub fn start(builder: IssuerBuilder) -> io::Result<Served> {
        Served::start_with(builder, ServeOptions::default())
    }

    /// Like [`Served::start`], binding `options.bind` (the issuer URL names the bound address;
    /// an unspecified address such as `0.0.0.0` is named `127.0.0.1`).
    pub fn start_with(builder: IssuerBuilder, options: ServeOptions) -> io::Result<Served> {
        let listener = TcpListener::bind(options.bind)?;
        let addr = listener.local_addr()?;
        let path = url::Url::parse(builder.url())
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        let host = match addr.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let url = format!("http://{host}:{}{path}", addr.port());
        let issuer = builder.issuer_url(&url).build().map_err(io::Error::other)?;
        let shared = Arc::new(Shared {
            issuer: Mutex::new(issuer),
            options,
            delivered: Mutex::new(Vec::new()),
            clock: Mutex::new(None),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("testkit-accept".into())
            .spawn(move || accept_loop(&listener, &accept_shared))?;
        Ok(Served {
            shared,
            url,
            addr,
            accept: Some(accept),
        })
    }

    /// [`Served::start`] with the demo fixture at path `/i_test`.
    pub fn start_demo() -> io::Result<Served> {
        Served::start(Issuer::authpi_demo("http://127.0.0.1/i_test"))
    }

    /// The issuer URL, e.g. `http://127.0.0.1:40123/i_test`.
    pub fn issuer_url(&self) -> &str {
        &self.url
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs `f` with the issuer locked (no request is handled meanwhile).
    pub fn with<R>(&self, f: impl FnOnce(&mut Issuer) -> R) -> R {
        f(&mut lock(&self.shared.issuer))
    }

    /// Shortcut for [`Issuer::push_response`].
    pub fn push_response(&self, path_suffix: &str, response: Response<Vec<u8>>) {
        lock(&self.shared.issuer).push_response(path_suffix, response);
    }

    /// Shortcut for [`Issuer::set_stall`]: requests to `path_suffix` wait `delay` before
    /// being answered (the issuer is not locked while waiting).
    pub fn set_stall(&self, path_suffix: &str, delay: Duration) {
        lock(&self.shared.issuer).set_stall(path_suffix, delay);
    }

    /// Request counters.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.issuer).stats()
    }

    /// Freezes the clock at `now` (Unix seconds).
    pub fn set_clock(&self, now: u64) {
        *lock(&self.shared.clock) = Some(now);
    }

    /// Moves the clock forward by `secs` (freezing it if it was following system time).
    pub fn advance(&self, secs: u64) {
        let mut c = lock(&self.shared.clock);
        *c = Some(c.unwrap_or_else(system_now).saturating_add(secs));
    }

    /// Follows the system clock again (the default).
    pub fn use_system_clock(&self) {
        *lock(&self.shared.clock) = None;
    }

    /// The server's current time.
    pub fn now(&self) -> u64 {
        self.shared.now()
    }

    /// Ends session `sid` at the server's time ([`Issuer::end_session`]) and POSTs the logout
    /// tokens to the clients' back-channel logout URIs, returning what happened to each.
    pub fn end_session(&self, sid: &str) -> io::Result<Vec<DeliveryOutcome>> {
        let now = self.shared.now();
        let deliveries = lock(&self.shared.issuer)
            .end_session(sid, now)
            .map_err(io::Error::other)?;
        Ok(deliver_all(&self.shared, deliveries))
    }

    /// Every back-channel logout delivery so far (from `/logout` and [`Served::end_session`]),
    /// oldest first.
    pub fn deliveries(&self) -> Vec<DeliveryOutcome> {
        lock(&self.shared.delivered).clone()
    }
}

/// POSTs each delivery, without holding the issuer lock (the receiving client may call the
/// issuer, e.g. for its JWKS, while handling the POST).
fn deliver_all(shared: &Shared, deliveries: Vec<LogoutDelivery>) -> Vec<DeliveryOutcome> {
    let mut out = Vec::new();
    for delivery in deliveries {
        let result = delivery
            .deliver(shared.options.delivery_timeout)
            .map_err(|e| e.to_string());
        if shared.options.log_requests {
            let status = match &result {
                Ok(s) => s.to_string(),
                Err(e) => format!("failed: {e}"),
            };
            log_line(&format!(
                "BACKCHANNEL-LOGOUT {} {} {status}",
                delivery.client_id, delivery.uri
            ));
        }
        out.push(DeliveryOutcome { delivery, result });
    }
    lock(&shared.delivered).extend(out.iter().cloned());
    out
}

fn log_line(line: &str) {
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

impl Drop for Served {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let conns = std::mem::take(&mut *lock(&self.shared.conns));
        for (stream, _) in &conns {
            let _ = stream.shutdown(Shutdown::Both);
        }
        for (_, handle) in conns {
            let _ = handle.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let Ok(clone) = stream.try_clone() else {
            continue;
        };
        let conn_shared = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name("testkit-conn".into())
            .spawn(move || serve_connection(stream, &conn_shared));
        if let Ok(handle) = spawned {
            let mut conns = lock(&shared.conns);
            conns.retain(|(_, h)| !h.is_finished());
            conns.push((clone, handle));
        }
    }
}

/// A parsed request and whether the connection stays open after it.
type Parsed = (Request<Vec<u8>>, bool);

/// A parse failure that is answered with `status` before closing.
struct HttpError(StatusCode);

fn serve_connection(stream: TcpStream, shared: &Shared) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut writer = io::BufWriter::new(write_half);
    let mut reader = BufReader::new(stream);
    serve_requests(&mut reader, &mut writer, shared);
    // Other handles to this socket (kept for Drop) must not keep the peer waiting.
    let _ = writer.flush();
    let _ = reader.get_ref().shutdown(Shutdown::Both);
}

fn serve_requests(
    reader: &mut BufReader<TcpStream>,
    writer: &mut io::BufWriter<TcpStream>,
    shared: &Shared,
) {
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let parsed = read_request(reader, writer);
        let (req, keep_alive) = match parsed {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(HttpError(status)) => {
                let mut resp =
                    Response::new(status.canonical_reason().unwrap_or("").as_bytes().to_vec());
                *resp.status_mut() = status;
                let _ = write_response(writer, &resp, false, false);
                return;
            }
        };
        let head = req.method() == Method::HEAD;
        let stall = lock(&shared.issuer).stall_for(req.uri().path());
        if let Some(delay) = stall {
            sleep_unless_stopped(delay, shared);
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
        }
        let now = shared.now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let (resp, deliveries) = {
            let mut issuer = lock(&shared.issuer);
            let resp = issuer.handle(req, now);
            (resp, issuer.take_logout_deliveries())
        };
        if shared.options.log_requests {
            log_line(&format!("{method} {path} {}", resp.status().as_u16()));
        }
        // Back-channel logout is delivered before the browser gets its answer (as an OP that
        // logs the user out everywhere before confirming would).
        deliver_all(shared, deliveries);
        if write_response(writer, &resp, keep_alive, head).is_err() || !keep_alive {
            return;
        }
    }
}

fn sleep_unless_stopped(delay: Duration, shared: &Shared) {
    let step = Duration::from_millis(10);
    let mut left = delay;
    while !left.is_zero() && !shared.stop.load(Ordering::SeqCst) {
        let d = left.min(step);
        thread::sleep(d);
        left = left.saturating_sub(d);
    }
}

/// Reads one CRLF- (or LF-) terminated line, bounded by `budget`.
fn read_line(
    reader: &mut BufReader<TcpStream>,
    budget: &mut u64,
) -> Result<Option<Vec<u8>>, HttpError> {
    let mut line = Vec::new();
    let n = reader
        .by_ref()
        .take(*budget)
        .read_until(b'\n', &mut line)
        .map_err(|_| HttpError(StatusCode::BAD_REQUEST))?;
    if n == 0 {
        return Ok(None);
    }
    *budget = budget.saturating_sub(n as u64);
    if line.last() != Some(&b'\n') {
        return Err(HttpError(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(line))
}

/// Reads one request. `Ok(None)`: the peer closed the connection between requests.
fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut impl Write,
) -> Result<Option<Parsed>, HttpError> {
    let bad = || HttpError(StatusCode::BAD_REQUEST);
    let mut budget = MAX_HEAD;
    // Request line (empty lines before it are tolerated, RFC 9112 §2.2).
    let line = loop {
        match read_line(reader, &mut budget) {
            Ok(None) => return Ok(None),
            Err(e) if budget == MAX_HEAD => {
                // Nothing read: the connection was closed or reset.
                let _ = e;
                return Ok(None);
            }
            Err(e) => return Err(e),
            Ok(Some(l)) if l.is_empty() => continue,
            Ok(Some(l)) => break l,
        }
    };
    let line = String::from_utf8(line).map_err(|_| bad())?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let version = match version {
        "HTTP/1.1" => Version::HTTP_11,
        "HTTP/1.0" => Version::HTTP_10,
        _ => return Err(HttpError(StatusCode::HTTP_VERSION_NOT_SUPPORTED)),
    };
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| bad())?;
    let mut builder = Request::builder()
        .method(method)
        .uri(target)
        .version(version);
    let mut content_length: Option<u64> = None;
    let mut connection_close = version == Version::HTTP_10;
    let mut expect_continue = false;
    loop {
        let Some(line) = read_line(reader, &mut budget)? else {
            return Err(bad());
        };
        if line.is_empty() {
            break;
        }
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return Err(bad()); // obsolete line folding
        }
        let colon = line.iter().position(|b| *b == b':').ok_or_else(bad)?;
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        let name = HeaderName::from_bytes(name).map_err(|_| bad())?;
        let value = HeaderValue::from_bytes(value).map_err(|_| bad())?;
        if name == http::header::CONTENT_LENGTH {
            let n: u64 = value
                .to_str()
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse().ok())
                .ok_or_else(bad)?;
            if content_length.is_some_and(|c| c != n) {
                return Err(bad());
            }
            content_length = Some(n);
        } else if name == http::header::TRANSFER_ENCODING {
            return Err(HttpError(StatusCode::NOT_IMPLEMENTED));
        } else if name == http::header::CONNECTION {
            let v = value.to_str().unwrap_or("").to_ascii_lowercase();
            if v.split(',').any(|t| t.trim() == "close") {
                connection_close = true;
            } else if v.split(',').any(|t| t.trim() == "keep-alive") {
                connection_close = false;
            }
        } else if name == http::header::EXPECT {
            expect_continue = value.as_bytes().eq_ignore_ascii_case(b"100-continue");
        }
        builder = builder.header(name, value);
    }
    let len = content_length.unwrap_or(0);
    if len > MAX_BODY {
        return Err(HttpError(StatusCode::PAYLOAD_TOO_LARGE));
    }
    if expect_continue && len > 0 && version == Version::HTTP_11 {
        writer
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .and_then(|()| writer.flush())
            .map_err(|_| bad())?;
    }
    let mut body = vec![0u8; usize::try_from(len).map_err(|_| bad())?];
    reader.read_exact(&mut body).map_err(|_| bad())?;
    let req = builder.body(body).map_err(|_| bad())?;
    Ok(Some((req, !connection_close)))
}

fn write_response(
    w: &mut impl Write,
    resp: &Response<Vec<u8>>,
    keep_alive: bool,
    head: bool,
) -> io::Result<()> {
    let status = resp.status();
    write!(
        w,
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )?;
    for (name, value) in resp.headers() {
        if name == http::header::CONTENT_LENGTH
            || name == http::header::CONNECTION
            || name == http::header::TRANSFER_ENCODING
        {
            continue;
        }
        w.write_all(name.as_str().as_bytes())?;
        w.write_all(b": ")?;
        w.write_all(value.as_bytes())?;
        w.write_all(b"\r\n")?;
    }
    write!(w, "Content-Length: {}\r\n", resp.body().len())?;
    if !keep_alive {
        w.write_all(b"Connection: close\r\n")?;
    }
    w.write_all(b"\r\n")?;
    if !head {
        w.write_all(resp.body())?;
    }
    w.flush()
}
