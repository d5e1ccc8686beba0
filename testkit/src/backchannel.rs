//! OIDC Back-Channel Logout 1.0 on the issuer side: ending sessions, minting logout tokens
//! (well-formed or deliberately broken), and delivering them.
//!
//! - [`Issuer::end_session`] ends a session by `sid` and returns one [`LogoutDelivery`] per
//!   client that took part in it (obtained a code or tokens under that `sid`) and registered a
//!   [`backchannel_logout_uri`](crate::Client::backchannel_logout_uri). `/logout` does the same
//!   and queues the deliveries: take them with [`Issuer::take_logout_deliveries`] (sans-IO), or
//!   let [`crate::Served`] POST them.
//! - [`Issuer::mint_logout_token`] signs a logout token from a [`LogoutTokenSpec`], whose knobs
//!   make the bad variants a relying party must refuse (wrong `aud`, a `nonce`, no `events`, a
//!   fixed `jti` for replays, another `typ`, `iss`, age or algorithm).
//!
//! Ending a session also revokes the refresh-token families issued under its `sid` whose grant
//! lacks `offline_access` (Back-Channel Logout §2.7), with their access tokens.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::Error;
use crate::issuer::Issuer;
use crate::jwt::Alg;

/// The `events` member that marks a back-channel logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What a logout token the issuer mints says. [`LogoutTokenSpec::new`] gives a valid one;
/// every other method is a knob, most of them for negative tests.
#[derive(Clone, Debug, PartialEq)]
pub struct LogoutTokenSpec {
    /// The client the token is for (its algorithm signs; its id is the `aud`).
    pub client_id: String,
    /// `sub` (omitted when `None`).
    pub subject: Option<String>,
    /// `sid` (omitted when `None`).
    pub session_id: Option<String>,
    /// Replaces `aud` (default: the client id).
    pub audience: Option<Value>,
    /// Replaces `iss` (default: the issuer URL).
    pub issuer: Option<String>,
    /// Adds a `nonce` (forbidden in logout tokens).
    pub nonce: Option<String>,
    /// Whether `events` holds the back-channel logout member (default true).
    pub events: bool,
    /// A fixed `jti` (default: a fresh random one), to make replays.
    pub jti: Option<String>,
    /// The header `typ` (default `logout+jwt`; `None` omits it).
    pub typ: Option<String>,
    /// `iat` (default: `now`).
    pub issued_at: Option<u64>,
    /// `exp = iat + ttl` (default 120 s); `None` omits `exp`.
    pub ttl: Option<u64>,
    /// Signs with this algorithm instead of the client's.
    pub alg: Option<Alg>,
}

impl LogoutTokenSpec {
    /// A valid logout token for `client_id` (add a subject and/or a session id).
    pub fn new(client_id: &str) -> LogoutTokenSpec {
        LogoutTokenSpec {
            client_id: client_id.to_owned(),
            subject: None,
            session_id: None,
            audience: None,
            issuer: None,
            nonce: None,
            events: true,
            jti: None,
            typ: Some("logout+jwt".to_owned()),
            issued_at: None,
            ttl: Some(120),
            alg: None,
        }
    }

    /// Sets `sub`.
    pub fn subject(mut self, sub: &str) -> Self {
        self.subject = Some(sub.to_owned());
        self
    }

    /// Sets `sid`.
    pub fn session_id(mut self, sid: &str) -> Self {
        self.session_id = Some(sid.to_owned());
        self
    }

    /// Replaces `aud` (a string or an array).
    pub fn audience(mut self, aud: Value) -> Self {
        self.audience = Some(aud);
        self
    }

    /// Replaces `iss`.
    pub fn issuer(mut self, iss: &str) -> Self {
        self.issuer = Some(iss.to_owned());
        self
    }

    /// Adds a `nonce` claim.
    pub fn nonce(mut self, nonce: &str) -> Self {
        self.nonce = Some(nonce.to_owned());
        self
    }

    /// Leaves out `events`.
    pub fn without_events(mut self) -> Self {
        self.events = false;
        self
    }

    /// Fixes the `jti` (mint twice for a replay).
    pub fn jti(mut self, jti: &str) -> Self {
        self.jti = Some(jti.to_owned());
        self
    }

    /// Sets the header `typ` (`None` omits it).
    pub fn typ(mut self, typ: Option<&str>) -> Self {
        self.typ = typ.map(str::to_owned);
        self
    }

    /// Sets `iat`.
    pub fn issued_at(mut self, iat: u64) -> Self {
        self.issued_at = Some(iat);
        self
    }

    /// Sets the lifetime (`exp = iat + ttl`); `None` omits `exp`.
    pub fn ttl(mut self, ttl: Option<u64>) -> Self {
        self.ttl = ttl;
        self
    }

    /// Signs with `alg` instead of the client's algorithm.
    pub fn alg(mut self, alg: Alg) -> Self {
        self.alg = Some(alg);
        self
    }
}

/// A logout token to POST to a client's back-channel logout URI.
#[derive(Clone, PartialEq, Eq)]
pub struct LogoutDelivery {
    /// The client it is for.
    pub client_id: String,
    /// Its registered `backchannel_logout_uri`.
    pub uri: String,
    /// The session that ended.
    pub session_id: String,
    /// The user whose session ended.
    pub subject: String,
    /// The signed logout token.
    pub logout_token: String,
}

impl std::fmt::Debug for LogoutDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogoutDelivery")
            .field("client_id", &self.client_id)
            .field("uri", &self.uri)
            .field("session_id", &self.session_id)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl LogoutDelivery {
    /// The form body: `logout_token=…`.
    pub fn body(&self) -> Vec<u8> {
        crate::util::form_encode(&[("logout_token", &self.logout_token)]).into_bytes()
    }

    /// The POST request to [`uri`](Self::uri) (`application/x-www-form-urlencoded`).
    pub fn request(&self) -> Result<http::Request<Vec<u8>>, http::Error> {
        http::Request::post(self.uri.as_str())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(self.body())
    }

    /// POSTs the token over plain HTTP/1.1, only to a loopback address (`127.0.0.1`,
    /// `localhost`, `[::1]`), and returns the response status. `timeout` bounds connecting,
    /// writing and reading each.
    pub fn deliver(&self, timeout: Duration) -> io::Result<u16> {
        let url = url::Url::parse(&self.uri).map_err(io::Error::other)?;
        let host = url.host_str().unwrap_or("");
        if url.scheme() != "http" || !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Err(io::Error::other(
                "the testkit delivers only to http://127.0.0.1 (loopback)",
            ));
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let connect_host = host.trim_start_matches('[').trim_end_matches(']');
        let addr = (connect_host, port)
            .to_socket_addrs()?
            .find(|a| a.ip().is_loopback())
            .ok_or_else(|| io::Error::other("no loopback address"))?;
        let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let body = self.body();
        let mut target = url.path().to_owned();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        let head = format!(
            "POST {target} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            url.host_str().map_or(String::new(), |h| match url.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            }),
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(&body)?;
        stream.flush()?;
        let mut buf = Vec::new();
        // The status line is all we need; read until it is complete or the peer closes.
        let mut chunk = [0u8; 512];
        while !buf.contains(&b'\n') && buf.len() < 8192 {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
        let line = String::from_utf8_lossy(&buf);
        line.split(' ')
            .nth(1)
            .and_then(|s| s.trim().parse::<u16>().ok())
            .ok_or_else(|| io::Error::other("no HTTP status line in the answer"))
    }
}

impl Issuer {
    /// The `sid` of the current login session, if someone is logged in.
    pub fn session_id(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.sid.as_str())
    }

    /// Ends the session `sid` at time `now`: it is no longer the current session (the next
    /// login gets a new `sid`), the refresh-token families issued under it without
    /// `offline_access` are revoked (with their access tokens), and one signed logout token is
    /// returned per client that obtained a code or tokens under it and registered a
    /// back-channel logout URI. A session is ended once: calling again returns nothing.
    pub fn end_session(&mut self, sid: &str, now: u64) -> Result<Vec<LogoutDelivery>, Error> {
        if self.session.as_ref().is_some_and(|s| s.sid == sid) {
            self.session = None;
        }
        if !self.ended_sessions.insert(sid.to_owned()) {
            return Ok(Vec::new());
        }
        let mut revoke = Vec::new();
        let mut parties: BTreeSet<(String, String)> = BTreeSet::new();
        for (id, family) in &self.families {
            if family.grant.sid == sid {
                parties.insert((family.grant.client_id.clone(), family.grant.user_id.clone()));
                if !family.grant.scopes.iter().any(|s| s == "offline_access") {
                    revoke.push(id.clone());
                }
            }
        }
        for code in self.codes.values() {
            if code.grant.sid == sid {
                parties.insert((code.grant.client_id.clone(), code.grant.user_id.clone()));
            }
        }
        for id in revoke {
            self.revoke_family(&id);
        }
        let mut out = Vec::new();
        for (client_id, user_id) in parties {
            let Some(uri) = self
                .clients
                .get(&client_id)
                .and_then(|c| c.backchannel_logout_uri.clone())
            else {
                continue;
            };
            let spec = LogoutTokenSpec::new(&client_id)
                .subject(&user_id)
                .session_id(sid);
            let logout_token = self.mint_logout_token(&spec, now)?;
            self.stats.backchannel_logouts += 1;
            out.push(LogoutDelivery {
                client_id,
                uri,
                session_id: sid.to_owned(),
                subject: user_id,
                logout_token,
            });
        }
        Ok(out)
    }

    /// The deliveries produced by `/logout` since the last call (sans-IO users POST them
    /// themselves; [`crate::Served`] does it for you).
    pub fn take_logout_deliveries(&mut self) -> Vec<LogoutDelivery> {
        std::mem::take(&mut self.pending_logouts)
    }

    /// Signs a logout token as this issuer would, at time `now`, following `spec` (see its
    /// knobs). The client must exist unless [`LogoutTokenSpec::alg`] is set.
    pub fn mint_logout_token(&self, spec: &LogoutTokenSpec, now: u64) -> Result<String, Error> {
        let alg = match spec.alg {
            Some(a) => a,
            None => self
                .clients
                .get(&spec.client_id)
                .map(|c| c.alg)
                .ok_or(Error::Crypto)?,
        };
        let iat = spec.issued_at.unwrap_or(now);
        let mut c = Map::new();
        c.insert(
            "iss".into(),
            json!(spec.issuer.clone().unwrap_or_else(|| self.url.clone())),
        );
        c.insert(
            "aud".into(),
            spec.audience
                .clone()
                .unwrap_or_else(|| json!(spec.client_id)),
        );
        c.insert("iat".into(), json!(iat));
        if let Some(ttl) = spec.ttl {
            c.insert("exp".into(), json!(iat.saturating_add(ttl)));
        }
        let jti = match &spec.jti {
            Some(j) => j.clone(),
            None => self.jti()?,
        };
        c.insert("jti".into(), json!(jti));
        if let Some(sub) = &spec.subject {
            c.insert("sub".into(), json!(sub));
        }
        if let Some(sid) = &spec.session_id {
            c.insert("sid".into(), json!(sid));
        }
        if spec.events {
            c.insert("events".into(), json!({ BACKCHANNEL_LOGOUT_EVENT: {} }));
        }
        if let Some(n) = &spec.nonce {
            c.insert("nonce".into(), json!(n));
        }
        self.sign(alg, spec.typ.as_deref(), &Value::Object(c))
    }
}
