//! Operations of one request: client credentials, revocation, introspection (and UserInfo,
//! in its own module), each a request builder on [`Client`] plus a named response processor.

use super::Operation;
use super::Step;
use super::common::{FINISHED, Inbox, record_inputs};
use crate::agent::Agent;
use crate::client::Client;
use crate::error::{ConfigError, Endpoint, Error, ResponseError};
use crate::http::{Outgoing, RequestKind, error_response, form_post};
use crate::json::{self, Members};
use crate::org::Memberships;
use crate::time::UnixTime;
use crate::token::parse_token_response;
use serde_json::{Map, Value};
use std::fmt;
use std::marker::PhantomData;
use url::Url;

/// RFC 7009 / RFC 7662 `token_type_hint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenTypeHint {
    /// `access_token`.
    AccessToken,
    /// `refresh_token`.
    RefreshToken,
}

impl TokenTypeHint {
    fn as_str(self) -> &'static str {
        match self {
            TokenTypeHint::AccessToken => "access_token",
            TokenTypeHint::RefreshToken => "refresh_token",
        }
    }
}

/// An RFC 7662 introspection answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Introspection {
    /// Whether the token is active. When false, nothing else is meaningful (RFC 7662 §2.2).
    pub active: bool,
    /// `scope`.
    pub scope: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `sub`.
    pub sub: Option<String>,
    /// `exp`.
    pub exp: Option<u64>,
    /// `iat`.
    pub iat: Option<u64>,
    /// `token_type`.
    pub token_type: Option<String>,
    /// Every member, as sent.
    pub claims: Map<String, Value>,
}

impl Client {
    /// Client credentials (M2M): an agent for this client with the token's scopes and no
    /// organizations. Needs a client secret.
    pub fn client_credentials<I, S>(
        &self,
        scopes: I,
        resources: &[String],
    ) -> Result<OneRequest<Agent>, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        if self.config().client_secret.is_none() {
            return Err(ConfigError::SecretRequired.into());
        }
        let scope = scopes
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let mut params = vec![("grant_type", "client_credentials")];
        if !scope.is_empty() {
            params.push(("scope", &scope));
        }
        params.extend(resources.iter().map(|r| ("resource", r.as_str())));
        let request = form_post(self.metadata().token_endpoint(), self.config(), &params)?;
        Ok(OneRequest::new(
            Outgoing {
                kind: RequestKind::ClientCredentials,
                request,
            },
            Processor::ClientCredentials {
                client_id: self.config().client_id.clone(),
            },
        ))
    }

    /// RFC 7009 revocation. A non-200 answer is an error.
    pub fn revoke(
        &self,
        token: &str,
        hint: Option<TokenTypeHint>,
    ) -> Result<OneRequest<()>, Error> {
        let endpoint = self.metadata().revocation_endpoint();
        let out = self.token_hint_request(
            endpoint,
            Endpoint::Revocation,
            RequestKind::Revocation,
            token,
            hint,
        )?;
        Ok(OneRequest::new(out, Processor::Revocation))
    }

    /// RFC 7662 introspection (AuthPI answers `active: false` for other clients' tokens).
    pub fn introspect(
        &self,
        token: &str,
        hint: Option<TokenTypeHint>,
    ) -> Result<OneRequest<Introspection>, Error> {
        let endpoint = self.metadata().introspection_endpoint();
        let out = self.token_hint_request(
            endpoint,
            Endpoint::Introspection,
            RequestKind::Introspection,
            token,
            hint,
        )?;
        Ok(OneRequest::new(out, Processor::Introspection))
    }

    /// A client-authenticated `token` (+ `token_type_hint`) POST: revocation and introspection.
    fn token_hint_request(
        &self,
        endpoint: Option<&Url>,
        name: Endpoint,
        kind: RequestKind,
        token: &str,
        hint: Option<TokenTypeHint>,
    ) -> Result<Outgoing, Error> {
        if token.is_empty() {
            return Err(ConfigError::EmptyToken.into());
        }
        let endpoint = endpoint.ok_or(Error::Unsupported(name))?;
        let mut params = vec![("token", token)];
        if let Some(h) = hint {
            params.push(("token_type_hint", h.as_str()));
        }
        Ok(Outgoing {
            kind,
            request: form_post(endpoint, self.config(), &params)?,
        })
    }
}

/// Validates a client-credentials token response into the client's own [`Agent`] (what
/// [`Client::client_credentials`] runs on the answer): the token's scopes, no organizations.
///
/// # Errors
/// The token endpoint's error answer or a malformed token response.
pub fn process_client_credentials_response(
    resp: &http::Response<Vec<u8>>,
    client_id: &str,
    now: UnixTime,
) -> Result<Agent, Error> {
    let tokens = parse_token_response(resp)?.into_token_set(now);
    Ok(Agent::new(
        client_id.to_owned(),
        None,
        None,
        None,
        Memberships::default(),
        tokens,
    ))
}

/// Validates an RFC 7009 revocation response (what [`Client::revoke`] runs on the answer):
/// only status 200 is success.
///
/// # Errors
/// The endpoint's error answer (OAuth error body or bare status).
pub fn process_revocation_response(resp: &http::Response<Vec<u8>>) -> Result<(), Error> {
    if resp.status() == http::StatusCode::OK {
        Ok(())
    } else {
        Err(error_response(Endpoint::Revocation, resp))
    }
}

/// Validates an RFC 7662 introspection response (what [`Client::introspect`] runs on the
/// answer): status 200, a strict JSON object, `active` a boolean.
///
/// # Errors
/// The endpoint's error answer; a body that is not a strict JSON object or has no boolean
/// `active`.
pub fn process_introspection_response(
    resp: &http::Response<Vec<u8>>,
) -> Result<Introspection, Error> {
    if resp.status() != http::StatusCode::OK {
        return Err(error_response(Endpoint::Introspection, resp));
    }
    let bad = |e: json::JsonError| Error::Response {
        endpoint: Endpoint::Introspection,
        reason: ResponseError::Json(e),
    };
    let map = json::parse_object(resp.body()).map_err(bad)?;
    let active = map
        .opt_bool("active")
        .map_err(bad)?
        .ok_or(bad(json::JsonError::Missing("active")))?;
    let s = |k: &'static str| map.opt_str(k).ok().flatten().map(str::to_owned);
    let n = |k: &'static str| map.opt_u64(k).ok().flatten();
    Ok(Introspection {
        active,
        scope: s("scope"),
        client_id: s("client_id"),
        sub: s("sub"),
        exp: n("exp"),
        iat: n("iat"),
        token_type: s("token_type"),
        claims: map,
    })
}

/// An operation of exactly one request: `Send`, then `Done`.
///
/// Also usable as a plain pair (oauth4webapi's `xxxRequest` / `processXxxResponse`): take
/// [`OneRequest::request`], send it, and call [`OneRequest::process`] with the response. The
/// processing is a named function per endpoint ([`Client::client_credentials`],
/// [`Client::userinfo`], [`Client::revoke`], [`Client::introspect`] each document theirs).
pub struct OneRequest<T> {
    request: Option<Outgoing>,
    inbox: Inbox,
    process: Option<Processor>,
    output: PhantomData<fn() -> T>,
}

/// The processors of [`OneRequest`], sealed: nothing outside this module names them.
#[allow(unreachable_pub)] // sealed trait pattern: public in a private module on purpose
mod sealed {
    use super::{
        Agent, Error, FINISHED, Introspection, UnixTime, process_client_credentials_response,
        process_introspection_response, process_revocation_response,
    };

    /// Which named response processor a [`OneRequest`](super::OneRequest) runs, with what it checks against.
    pub enum Processor {
        /// [`process_client_credentials_response`](super::process_client_credentials_response).
        ClientCredentials { client_id: String },
        /// [`process_userinfo_response`](crate::flow::process_userinfo_response).
        UserInfo { expected_sub: Option<String> },
        /// [`process_revocation_response`](super::process_revocation_response).
        Revocation,
        /// [`process_introspection_response`](super::process_introspection_response).
        Introspection,
    }

    /// The output a [`Processor`] makes, per output type (one processor per output type, so the
    /// mismatch arms are unreachable by construction and still no panic).
    pub trait Processed: Sized {
        /// Runs the processor `p` on `resp`.
        fn run(p: Processor, resp: &http::Response<Vec<u8>>, now: UnixTime) -> Result<Self, Error>;
    }

    impl Processed for Agent {
        fn run(p: Processor, resp: &http::Response<Vec<u8>>, now: UnixTime) -> Result<Self, Error> {
            match p {
                Processor::ClientCredentials { client_id } => {
                    process_client_credentials_response(resp, &client_id, now)
                }
                _ => Err(FINISHED),
            }
        }
    }

    impl Processed for () {
        fn run(p: Processor, resp: &http::Response<Vec<u8>>, _: UnixTime) -> Result<Self, Error> {
            match p {
                Processor::Revocation => process_revocation_response(resp),
                _ => Err(FINISHED),
            }
        }
    }

    impl Processed for Introspection {
        fn run(p: Processor, resp: &http::Response<Vec<u8>>, _: UnixTime) -> Result<Self, Error> {
            match p {
                Processor::Introspection => process_introspection_response(resp),
                _ => Err(FINISHED),
            }
        }
    }
}

pub(crate) use sealed::{Processed, Processor};

impl<T> fmt::Debug for OneRequest<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneRequest")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl<T: Processed> OneRequest<T> {
    pub(crate) fn new(request: Outgoing, process: Processor) -> Self {
        OneRequest {
            request: Some(request),
            inbox: Inbox::default(),
            process: Some(process),
            output: PhantomData,
        }
    }

    /// The request to send (None once taken).
    pub fn request(&mut self) -> Option<Outgoing> {
        self.request.take()
    }

    /// Validates the response to the request.
    pub fn process(
        mut self,
        response: &http::Response<Vec<u8>>,
        now: UnixTime,
    ) -> Result<T, Error> {
        let p = self.process.take().ok_or(FINISHED)?;
        T::run(p, response, now)
    }
}

impl<T: Processed> Operation for OneRequest<T> {
    type Output = T;

    fn poll(&mut self, now: UnixTime) -> Result<Step<T>, Error> {
        if let Some(out) = self.request.take() {
            return Ok(self.inbox.send(out));
        }
        let p = self.process.take().ok_or(FINISHED)?;
        let resp = self.inbox.take()?;
        T::run(p, &resp, now).map(Step::Done)
    }

    record_inputs!(inbox);
}
