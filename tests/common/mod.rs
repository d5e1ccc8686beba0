//! Shared helpers for the integration tests: a generic driver that records every `Step`, and an
//! environment around the testkit's sans-IO issuer with a virtual clock and a seeded RNG.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use authpi_idp::{
    Agent, AuthorizationRequest, AuthorizationUrl, Client, Config, Error, KeySet, Operation,
    RequestKind, Step, TokenSet, UnixTime,
};
use authpi_idp_testkit::{Issuer, IssuerBuilder};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

/// Issuer URL of the testkit in every test.
pub const ISS: &str = "https://idp.test/i_demo";
/// The virtual clock's start.
pub const T0: u64 = 1_767_400_000;
/// A registered redirect URI of `client_web`.
pub const WEB_REDIRECT: &str = "https://app.example.com/callback";

/// One step an operation produced, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// `Step::Send` of this kind.
    Send(RequestKind),
    /// `Step::Persist`.
    Persist,
    /// `Step::KeysRefreshed`.
    KeysRefreshed,
    /// `Step::Done`.
    Done,
}

/// A copy of a request the core asked to send.
#[derive(Clone, Debug)]
pub struct Sent {
    pub kind: RequestKind,
    pub method: http::Method,
    pub uri: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Sent {
    /// The form body as ordered pairs.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    /// All values of a form parameter, in order.
    pub fn form_all(&self, name: &str) -> Vec<String> {
        self.form()
            .into_iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v)
            .collect()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

/// Everything an operation did.
#[derive(Debug, Default)]
pub struct Trace {
    pub events: Vec<Event>,
    pub sent: Vec<Sent>,
    pub persisted: Vec<TokenSet>,
    pub keys: Vec<KeySet>,
}

impl Trace {
    /// How many requests of a kind were sent (Refresh matches any token hash).
    pub fn sends(&self, kind: RequestKind) -> usize {
        self.sent.iter().filter(|s| same_kind(s.kind, kind)).count()
    }

    /// The kinds of the requests sent, in order.
    pub fn kinds(&self) -> Vec<RequestKind> {
        self.sent.iter().map(|s| s.kind).collect()
    }

    /// The first sent request of a kind.
    pub fn first(&self, kind: RequestKind) -> &Sent {
        self.sent
            .iter()
            .find(|s| same_kind(s.kind, kind))
            .unwrap_or_else(|| panic!("no {kind:?} request in {:?}", self.kinds()))
    }

    /// Whether neither tokens nor an output came out.
    pub fn nothing_out(&self) -> bool {
        self.persisted.is_empty() && !self.events.contains(&Event::Done)
    }
}

fn same_kind(a: RequestKind, b: RequestKind) -> bool {
    match (a, b) {
        (RequestKind::Refresh { .. }, RequestKind::Refresh { .. }) => true,
        _ => a == b,
    }
}

/// Any refresh, for [`Trace::sends`].
pub const REFRESH: RequestKind = RequestKind::Refresh {
    token_hash: [0; 32],
};

/// Copies a request (the `http` request type is not `Clone`).
pub fn copy_request(req: &http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
    let mut b = http::Request::builder()
        .method(req.method().clone())
        .uri(req.uri().clone());
    for (k, v) in req.headers() {
        b = b.header(k, v);
    }
    b.body(req.body().clone()).unwrap()
}

/// Drives an operation to its end with `transport`, recording every step. A `Persist` or
/// `KeysRefreshed` is recorded and the loop goes on, as a real driver would.
pub fn drive<O: Operation>(
    op: O,
    now: UnixTime,
    mut transport: impl FnMut(http::Request<Vec<u8>>) -> http::Response<Vec<u8>>,
) -> (Result<O::Output, Error>, Trace) {
    drive_fallible(op, now, |req| Some(transport(req)))
}

/// [`drive`] with a transport that may fail: `None` means the request got no response, and
/// the driver calls `handle_transport_error` and keeps polling, as the drivers do.
pub fn drive_fallible<O: Operation>(
    mut op: O,
    now: UnixTime,
    mut transport: impl FnMut(http::Request<Vec<u8>>) -> Option<http::Response<Vec<u8>>>,
) -> (Result<O::Output, Error>, Trace) {
    let mut trace = Trace::default();
    for _ in 0..32 {
        match op.poll(now) {
            Err(e) => return (Err(e), trace),
            Ok(Step::Send(out)) => {
                trace.events.push(Event::Send(out.kind));
                trace.sent.push(Sent {
                    kind: out.kind,
                    method: out.request.method().clone(),
                    uri: out.request.uri().to_string(),
                    headers: out.request.headers().clone(),
                    body: out.request.body().clone(),
                });
                match transport(out.request) {
                    Some(response) => op.handle_response(response),
                    None => op.handle_transport_error(),
                }
            }
            Ok(Step::Persist(tokens)) => {
                trace.events.push(Event::Persist);
                trace.persisted.push(tokens);
            }
            Ok(Step::KeysRefreshed(keys)) => {
                trace.events.push(Event::KeysRefreshed);
                trace.keys.push(keys);
            }
            Ok(Step::Done(out)) => {
                trace.events.push(Event::Done);
                // After Done, the operation is over.
                assert!(matches!(op.poll(now), Err(Error::Usage(_))));
                return (Ok(out), trace);
            }
            Ok(other) => panic!("unexpected step {other:?}"),
        }
    }
    panic!("operation did not finish in 32 steps: {:?}", trace.events);
}

/// The testkit issuer with a virtual clock, a seeded RNG and a cached key set.
pub struct Env {
    pub idp: Issuer,
    pub rng: ChaCha20Rng,
    pub now: u64,
    pub keys: KeySet,
}

impl Env {
    pub fn new(builder: IssuerBuilder) -> Env {
        Env {
            idp: builder.build().unwrap(),
            rng: ChaCha20Rng::seed_from_u64(42),
            now: T0,
            keys: KeySet::empty(),
        }
    }

    /// The demo fixture at [`ISS`].
    pub fn demo() -> Env {
        Env::new(Issuer::authpi_demo(ISS))
    }

    pub fn now(&self) -> UnixTime {
        UnixTime(self.now)
    }

    /// Advances the virtual clock.
    pub fn advance(&mut self, secs: u64) {
        self.now += secs;
    }

    /// Drives `op` against the issuer at the current time; keeps refreshed keys.
    pub fn run<O: Operation>(&mut self, op: O) -> (Result<O::Output, Error>, Trace) {
        let now = self.now;
        let idp = &mut self.idp;
        let (res, trace) = drive(op, UnixTime(now), |req| idp.handle(req, now));
        if let Some(k) = trace.keys.last() {
            self.keys = k.clone();
        }
        (res, trace)
    }

    /// [`Env::run`], except that requests of kind `fail` get no response (a transport error).
    pub fn run_failing<O: Operation>(
        &mut self,
        op: O,
        fail: RequestKind,
    ) -> (Result<O::Output, Error>, Trace) {
        let now = self.now;
        let idp = &mut self.idp;
        let (res, trace) = drive_fallible(op, UnixTime(now), |req| {
            let path = req.uri().path().to_owned();
            let is_fail = match fail {
                RequestKind::Jwks => path.ends_with("/jwks.json"),
                RequestKind::UserInfo => path.ends_with("/userinfo"),
                _ => path.ends_with("/token"),
            };
            (!is_fail).then(|| idp.handle(req, now))
        });
        if let Some(k) = trace.keys.last() {
            self.keys = k.clone();
        }
        (res, trace)
    }

    /// The browser part: `GET` the authorization URL, return the redirect's `Location`.
    pub fn authorize(&mut self, url: &str) -> String {
        let resp = self
            .idp
            .handle(http::Request::get(url).body(Vec::new()).unwrap(), self.now);
        assert_eq!(
            resp.status(),
            302,
            "{}",
            String::from_utf8_lossy(resp.body())
        );
        resp.headers()["location"].to_str().unwrap().to_owned()
    }

    /// Starts a login with `client` and returns the transaction and the callback URL.
    pub fn start_login(
        &mut self,
        client: &Client,
        req: &AuthorizationRequest,
    ) -> (AuthorizationUrl, String) {
        let tx = client.authorization_url(req, &mut self.rng).unwrap();
        let cb = self.authorize(&tx.url);
        (tx, cb)
    }

    /// A complete login: authorization URL, redirect, callback exchange.
    pub fn login(&mut self, client: &Client, req: &AuthorizationRequest) -> (Agent, Trace) {
        let (tx, cb) = self.start_login(client, req);
        let keys = self.keys.clone();
        let op = client.exchange_callback(cb.as_str(), &tx, &keys).unwrap();
        let (res, trace) = self.run(op);
        (res.unwrap(), trace)
    }
}

/// `client_web` with `client_secret_post` unless told otherwise.
pub fn web_config() -> authpi_idp::ConfigBuilder {
    Config::builder(ISS, "client_web")
        .client_secret("secret_web")
        .redirect_uri(WEB_REDIRECT)
}

pub fn web_client() -> Client {
    Client::new(web_config().build().unwrap()).unwrap()
}

/// A JSON HTTP response.
pub fn json_response(status: u16, body: &serde_json::Value) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string().into_bytes())
        .unwrap()
}

/// Decodes a JWS payload without verification.
pub fn claims_of(token: &str) -> serde_json::Value {
    authpi_idp_testkit::jwt::decode_claims(token).unwrap()
}

/// A query parameter of a URL.
pub fn query(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {name} in {url}"))
}
