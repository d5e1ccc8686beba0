//! What every operation shares (rustls's `CommonState`): the pending response ([`Inbox`]),
//! and for the machines that verify a token the client, its key ring and the expected ID-token
//! claims ([`Shared`]).

use super::Step;
use super::keys::{KeyRing, TokenSource, Verified};
use crate::agent::Agent;
use crate::client::Client;
use crate::error::{ApiMisuse, ClaimError, Endpoint, Error};
use crate::http::{Outgoing, RequestKind};
use crate::id_token::{self, Expected, IdClaims};
use crate::jose::Jws;
use crate::provider::KeySet;
use crate::time::UnixTime;
use crate::token::{TokenResponse, TokenSet};

const NO_RESPONSE: ApiMisuse = ApiMisuse::PollBeforeResponse;

/// [`ApiMisuse::OperationFinished`] as an [`Error`].
pub(crate) const FINISHED: Error = Error::ApiMisuse(ApiMisuse::OperationFinished);

/// The endpoint a request kind goes to, for [`Error::NoResponse`].
fn endpoint_of(kind: RequestKind) -> Endpoint {
    match kind {
        RequestKind::Discovery => Endpoint::Discovery,
        RequestKind::Jwks => Endpoint::Jwks,
        RequestKind::UserInfo => Endpoint::UserInfo,
        RequestKind::Revocation => Endpoint::Revocation,
        RequestKind::Introspection => Endpoint::Introspection,
        RequestKind::DeviceAuthorization => Endpoint::DeviceAuthorization,
        RequestKind::AuthorizationCode
        | RequestKind::Refresh { .. }
        | RequestKind::ClientCredentials
        | RequestKind::DeviceCode => Endpoint::Token,
    }
}

/// The request an operation sent last and what came back for it.
#[derive(Default)]
pub(crate) struct Inbox {
    sent: Option<RequestKind>,
    reply: Option<Option<http::Response<Vec<u8>>>>,
}

impl Inbox {
    /// Records that `out` is being sent and returns the step that sends it.
    pub(crate) fn send<T>(&mut self, out: Outgoing) -> Step<T> {
        self.sent = Some(out.kind);
        self.reply = None;
        Step::Send(out)
    }

    pub(crate) fn response(&mut self, response: http::Response<Vec<u8>>) {
        self.reply = Some(Some(response));
    }

    pub(crate) fn transport_error(&mut self) {
        self.reply = Some(None);
    }

    /// The response to the last request: [`Error::NoResponse`] after a transport error, a
    /// usage error when neither input came.
    pub(crate) fn take(&mut self) -> Result<http::Response<Vec<u8>>, Error> {
        match self.reply.take() {
            Some(Some(response)) => Ok(response),
            Some(None) => Err(self
                .sent
                .map_or(NO_RESPONSE.into(), |kind| Error::NoResponse {
                    endpoint: endpoint_of(kind),
                })),
            None => Err(NO_RESPONSE.into()),
        }
    }
}

/// The part every token-verifying machine ([`Exchange`](super::Exchange),
/// [`CreateAgent`](super::CreateAgent), [`ValidateAccessToken`](super::ValidateAccessToken))
/// shares.
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) ring: KeyRing,
    pub(crate) inbox: Inbox,
}

impl Shared {
    pub(crate) fn new(client: Client, keys: &KeySet) -> Self {
        Shared {
            ring: KeyRing::new(keys, client.metadata()),
            client,
            inbox: Inbox::default(),
        }
    }

    /// The opening of every `poll`: a pending `KeysRefreshed` event, then a deferred error,
    /// and [`FINISHED`] once the operation is over.
    pub(crate) fn open<T>(&mut self) -> Result<Option<Step<T>>, Error> {
        self.ring.poll_event()
    }

    /// Sends `out` (see [`Inbox::send`]).
    pub(crate) fn send<T>(&mut self, out: Outgoing) -> Step<T> {
        self.inbox.send(out)
    }

    /// Takes the answer to a JWKS request into the key ring; on failure the error is reported
    /// after the `KeysRefreshed` event that records the attempt (`Err` is returned too, for the
    /// machines that treat a failure as no verdict instead).
    pub(crate) fn absorb_keys(&mut self, now: UnixTime) -> Result<(), Error> {
        let response = self.inbox.take();
        self.ring.absorb(response, now)
    }

    /// Verifies the signature of an ID token from the token endpoint (see [`KeyRing::verify`]).
    pub(crate) fn verify_id_signature(
        &mut self,
        jws: &Jws<'_>,
        now: UnixTime,
    ) -> Result<Verified<()>, Error> {
        self.ring.verify(
            jws,
            self.client.algorithms(),
            now,
            TokenSource::TokenEndpoint,
            Error::IdToken,
        )
    }

    /// What an ID token from this client's token endpoint must satisfy.
    pub(crate) fn expected<'a>(
        &'a self,
        nonce: Option<&'a str>,
        max_age: Option<u64>,
        access_token: &'a str,
        now: UnixTime,
    ) -> Expected<'a> {
        let config = self.client.config();
        Expected {
            issuer: self.client.issuer(),
            client_id: &config.client_id,
            trusted_audiences: &config.trusted_audiences,
            nonce,
            max_age,
            access_token: Some(access_token),
            leeway: config.leeway,
            now,
        }
    }
}

/// The two inputs of [`Operation`](super::Operation), identical in every machine: they only
/// record what came back in the machine's [`Inbox`] (reached through `$($path).+`).
macro_rules! record_inputs {
    ($($path:ident).+) => {
        fn handle_response(&mut self, response: http::Response<Vec<u8>>) {
            self.$($path).+.response(response);
        }

        fn handle_transport_error(&mut self) {
            self.$($path).+.transport_error();
        }
    };
}
pub(crate) use record_inputs;

/// Parses an ID token from the token endpoint and makes the checks that need no key.
pub(crate) fn parse_id_token(token: &str) -> Result<Jws<'_>, Error> {
    let jws = Jws::parse(token).map_err(|e| Error::IdToken(e.into()))?;
    if id_token::is_other_token_type(jws.header().typ.as_deref()) {
        return Err(Error::IdToken(ClaimError::Type.into()));
    }
    Ok(jws)
}

/// Decodes the claims of an ID token and checks them (the signature is checked separately).
pub(crate) fn check_id_claims(jws: &Jws<'_>, expected: &Expected<'_>) -> Result<IdClaims, Error> {
    let claims = IdClaims::from_payload(jws.payload()).map_err(Error::IdToken)?;
    id_token::check(
        &claims,
        jws.header().alg,
        jws.header().typ.as_deref(),
        expected,
    )
    .map_err(|e| Error::IdToken(e.into()))?;
    Ok(claims)
}

pub(crate) fn agent_from_claims(claims: IdClaims, tokens: TokenSet) -> Agent {
    Agent::new(
        claims.sub,
        claims.email,
        claims.email_verified,
        claims.org_id,
        claims.organizations,
        tokens,
    )
    .with_custom(claims.custom)
}

/// A token response whose ID token is parsed (and its `typ` checked) once, when it arrives;
/// the states after that carry the parsed token instead of re-reading the raw one.
pub(crate) struct Received {
    /// The token response (its raw `id_token` kept, for the token set).
    pub(crate) tokens: TokenResponse,
    /// Its ID token, parsed.
    pub(crate) id_token: Jws<'static>,
}

impl Received {
    /// `Ok(Err(tokens))` gives the response back when it has no ID token.
    pub(crate) fn parse(tokens: TokenResponse) -> Result<Result<Received, TokenResponse>, Error> {
        let Some(raw) = tokens.id_token.as_deref() else {
            return Ok(Err(tokens));
        };
        let id_token = parse_id_token(raw)?.into_owned();
        Ok(Ok(Received { tokens, id_token }))
    }
}
