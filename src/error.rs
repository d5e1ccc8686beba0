//! The error type.
//!
//! One concrete [`Error`] for every operation, never generic over an HTTP client. Each error
//! answers [`Error::code`] with the code string the official Python SDK reports for the same
//! failure (`invalid_state`, `invalid_nonce`, `token_expired`, `subject_mismatch`, the provider's
//! own `invalid_grant`, `user_blocked`, …), and [`Error::retry_after`] when a 429/503 said when
//! to come back. No message ever contains a token, a secret or a verifier.
//!
//! Every string an error carries that the provider (or a callback URL) controls — OAuth `error`,
//! `error_description` and `error_uri`, a duplicated callback parameter or JSON member name, a
//! `sub` — goes through one function, [`provider_text`]: control characters and
//! bidirectional-text controls removed, at most [`MAX_PROVIDER_TEXT`] characters kept. Error
//! messages end up in logs and terminals; they cannot forge log lines or grow without bound.

pub use crate::jose::JoseError;
pub use crate::json::JsonError;
pub use crate::provider_text::{MAX_PROVIDER_TEXT, provider_text};
use std::fmt;

/// Everything that can go wrong in this crate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client configuration or an argument is invalid.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The provider answered with an OAuth error (`{"error": …}` or a redirect `error=`).
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// The provider answered with an HTTP error status and no OAuth error body (e.g. a bare 429).
    #[error("{endpoint} endpoint answered HTTP {status}")]
    Status {
        /// Which endpoint answered.
        endpoint: Endpoint,
        /// The HTTP status code.
        status: u16,
        /// Seconds to wait, from `Retry-After`, on a 429 or 503.
        retry_after: Option<u64>,
    },
    /// The authorization callback was refused (CSRF, mix-up, malformed).
    #[error("callback: {0}")]
    Callback(#[from] CallbackError),
    /// A response from the provider broke the protocol (bad JSON, bad member types, …).
    #[error("{endpoint} response: {reason}")]
    Response {
        /// Which endpoint answered.
        endpoint: Endpoint,
        /// What was wrong with it.
        reason: ResponseError,
    },
    /// An ID token was refused.
    #[error("ID token: {0}")]
    IdToken(TokenError),
    /// An access token presented to an API was refused (RFC 9068 validation).
    #[error("access token: {0}")]
    AccessToken(TokenError),
    /// A back-channel logout request or its `logout_token` was refused (code `invalid_request`).
    #[error("logout token: {0}")]
    LogoutToken(LogoutTokenError),
    /// The provider's key set could not be used.
    #[error("JWKS: {0}")]
    Jwks(#[from] JwksError),
    /// The provider's discovery document was refused.
    #[error("discovery: {0}")]
    Discovery(#[from] DiscoveryError),
    /// The access token expired (or is inside the refresh buffer) and there is no refresh token.
    #[error("the access token expired and there is no refresh token to renew it")]
    TokenExpired,
    /// A refreshed ID token or a UserInfo response names another subject than the session's.
    /// Both values went through [`provider_text`] (build it with [`Error::subject_mismatch`]).
    #[error("subject mismatch: expected `{expected}`, got `{actual}`")]
    SubjectMismatch {
        /// The session's subject.
        expected: String,
        /// The subject the provider returned.
        actual: String,
    },
    /// The provider does not offer this endpoint (e.g. no revocation endpoint in its metadata).
    #[error("the provider has no {0} endpoint")]
    Unsupported(Endpoint),
    /// The SDK was called in a way its contract forbids (e.g. `poll` after `Done`); the variant
    /// says what to do instead.
    #[error("API misuse: {0}")]
    ApiMisuse(#[from] ApiMisuse),
    /// A request could not be built from the configuration or arguments given (an endpoint URL
    /// that is no HTTP URI, a credential or token with characters a header cannot carry).
    #[error("request: {0}")]
    Request(#[from] RequestError),
    /// The request to this endpoint got no response (the driver called
    /// [`Operation::handle_transport_error`](crate::Operation::handle_transport_error)); a
    /// driver replaces it with its own, more detailed transport error.
    #[error("no response from the {endpoint} endpoint")]
    NoResponse {
        /// The endpoint the request was for.
        endpoint: Endpoint,
    },
    /// A stored token set with a refresh token has neither an ID token nor a `subject_hint`:
    /// nothing pins its subject, so UserInfo's `sub` could not be checked. The SDK never
    /// stores such a set; the user must log in again.
    #[error("the stored token set names no subject (no id_token and no subject_hint)")]
    UnpinnedSubject,
}

impl Error {
    /// [`Error::SubjectMismatch`], both subjects passed through [`provider_text`].
    #[must_use]
    pub fn subject_mismatch(expected: &str, actual: &str) -> Error {
        Error::SubjectMismatch {
            expected: provider_text(expected),
            actual: provider_text(actual),
        }
    }

    /// The code string the official Python SDK reports for this failure.
    ///
    /// Provider errors keep the provider's code verbatim (`invalid_grant`, `user_blocked`, or any
    /// unknown code). Local failures use: `configuration_error`, `invalid_state`, `invalid_issuer`,
    /// `invalid_request` (malformed callback), `missing_code`, `invalid_nonce`, `invalid_id_token`,
    /// `invalid_token`, `invalid_response`, `token_expired`, `subject_mismatch`, `unsupported`,
    /// `http_error`, `rate_limited` (a bare 429), `transport_error` (no response) and
    /// `invalid_token_set` (a stored set that pins no subject).
    #[must_use]
    pub fn code(&self) -> &str {
        match self {
            Error::Config(_) | Error::Discovery(_) => "configuration_error",
            Error::OAuth(e) => e.code(),
            Error::Status { status: 429, .. } => "rate_limited",
            Error::Status { .. } => "http_error",
            Error::Callback(e) => e.code(),
            Error::Jwks(JwksError::ForeignProvider) => "configuration_error",
            Error::Response { .. } | Error::Jwks(_) => "invalid_response",
            Error::IdToken(TokenError::Claim(
                ClaimError::NonceMismatch | ClaimError::MissingNonce,
            )) => "invalid_nonce",
            Error::IdToken(_) => "invalid_id_token",
            Error::AccessToken(_) => "invalid_token",
            Error::LogoutToken(_) => "invalid_request",
            Error::TokenExpired => "token_expired",
            Error::SubjectMismatch { .. } => "subject_mismatch",
            Error::Unsupported(_) => "unsupported",
            Error::ApiMisuse(_) | Error::Request(_) => "invalid_usage",
            Error::NoResponse { .. } => "transport_error",
            Error::UnpinnedSubject => "invalid_token_set",
        }
    }

    /// Seconds to wait before trying again, when the provider said so (`Retry-After` on 429/503).
    #[must_use]
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::OAuth(e) => e.retry_after,
            Error::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status of the provider's answer, when the error came from one.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::OAuth(e) => e.status,
            Error::Status { status, .. }
            | Error::Discovery(DiscoveryError::Status(status))
            | Error::Jwks(JwksError::Status(status)) => Some(*status),
            _ => None,
        }
    }

    /// True when the session behind a refresh token is over and must not be retried: the
    /// provider said `invalid_grant` (rotated-away, revoked or expired refresh token), or the
    /// user is blocked, or the session expired. The user must log in again.
    #[must_use]
    pub fn is_session_over(&self) -> bool {
        matches!(
            self,
            Error::OAuth(e) if matches!(
                e.kind(),
                OAuthErrorKind::InvalidGrant | OAuthErrorKind::SessionExpired | OAuthErrorKind::UserBlocked
            )
        ) || matches!(self, Error::TokenExpired)
    }
}

/// Why a JWKS response was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The JWKS endpoint answered with a status other than 200.
    #[error("JWKS request failed with HTTP status {0}")]
    Status(u16),
    /// The body is not a strict JSON object.
    #[error("invalid JWKS document: {0}")]
    Json(#[from] JsonError),
    /// The document has no `keys` array.
    #[error("JWKS document has no `keys` array")]
    MissingKeys,
    /// The key set is bound to another issuer or `jwks_uri` than the client's (a misfiled or
    /// tampered cache, or another provider's keys).
    #[error("the key set belongs to another provider (issuer or jwks_uri differ)")]
    ForeignProvider,
}

/// Why a back-channel logout request or its `logout_token` was refused (see
/// [`ValidateLogoutToken`](crate::ValidateLogoutToken)).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogoutTokenError {
    /// The request body has no (or an empty) `logout_token` parameter.
    #[error("the request has no logout_token")]
    MissingToken,
    /// The request body has more than one `logout_token` parameter.
    #[error("the request has more than one logout_token")]
    DuplicateToken,
    /// The JWS (format, algorithm, key, signature), its claims JSON, or a rule shared with ID
    /// tokens (`iss`, `aud`, `iat`, `exp`, `nbf`, `jti`, `typ`).
    #[error(transparent)]
    Token(TokenError),
    /// `events` is absent, not an object, or lacks the back-channel logout member (or its value
    /// is not an object).
    #[error("events does not hold the back-channel logout event")]
    Events,
    /// Neither `sid` nor `sub` is present.
    #[error("neither sid nor sub is present")]
    NoSessionOrSubject,
    /// A `nonce` is present (forbidden in a logout token).
    #[error("a logout token must not contain a nonce")]
    Nonce,
}

impl From<ClaimError> for LogoutTokenError {
    fn from(e: ClaimError) -> Self {
        LogoutTokenError::Token(e.into())
    }
}

/// A call the SDK's contract forbids (rustls's `ApiMisuse`): each variant says what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// `poll` was called after [`Step::Send`](crate::Step::Send) before the response came in:
    /// call [`Operation::handle_response`](crate::Operation::handle_response) (or
    /// [`Operation::handle_transport_error`](crate::Operation::handle_transport_error)) first.
    #[error("poll called after Send without handle_response or handle_transport_error")]
    PollBeforeResponse,
    /// The operation already ended with `Done` or an error: start a new operation.
    #[error("the operation is already finished")]
    OperationFinished,
    /// A login that must yield a verifiable ID token (the device grant) was started without
    /// the `openid` scope: add it.
    #[error("the login needs the `openid` scope")]
    OpenidScopeRequired,
}

/// Why a request could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// An endpoint URL is not a valid HTTP request URI.
    #[error("endpoint URL is not a valid HTTP URI")]
    EndpointUri,
    /// A credential or token has characters an HTTP header cannot carry.
    #[error("request has invalid header characters")]
    HeaderValue,
}

/// The endpoint a response came from, for error reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// OpenID Connect Discovery.
    Discovery,
    /// The JWKS.
    Jwks,
    /// The token endpoint.
    Token,
    /// The UserInfo endpoint.
    UserInfo,
    /// The revocation endpoint (RFC 7009).
    Revocation,
    /// The introspection endpoint (RFC 7662).
    Introspection,
    /// The end-session endpoint (RP-initiated logout).
    EndSession,
    /// The device authorization endpoint (RFC 8628).
    DeviceAuthorization,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Endpoint::Discovery => "discovery",
            Endpoint::Jwks => "JWKS",
            Endpoint::Token => "token",
            Endpoint::UserInfo => "userinfo",
            Endpoint::Revocation => "revocation",
            Endpoint::Introspection => "introspection",
            Endpoint::EndSession => "end-session",
            Endpoint::DeviceAuthorization => "device authorization",
        })
    }
}

/// An error the provider reported in OAuth form.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct OAuthError {
    code: String,
    description: Option<String>,
    uri: Option<String>,
    status: Option<u16>,
    retry_after: Option<u64>,
}

impl fmt::Debug for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthError")
            .field("code", &self.code)
            .field("description", &self.description)
            .field("status", &self.status)
            .field("retry_after", &self.retry_after)
            .finish_non_exhaustive()
    }
}

impl OAuthError {
    /// An error with this code, as a provider would send it. Control characters are removed and
    /// the texts are truncated to 256 characters.
    #[must_use]
    pub fn new(code: &str, description: Option<&str>) -> Self {
        OAuthError {
            code: provider_text(code),
            description: description.map(provider_text),
            uri: None,
            status: None,
            retry_after: None,
        }
    }

    pub(crate) fn with_uri(mut self, uri: Option<&str>) -> Self {
        self.uri = uri.map(provider_text);
        self
    }

    pub(crate) fn with_status(mut self, status: u16, retry_after: Option<u64>) -> Self {
        self.status = Some(status);
        self.retry_after = retry_after;
        self
    }

    /// The code exactly as the provider sent it (`invalid_grant`, `user_blocked`, …).
    #[must_use]
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The code as a known kind.
    #[must_use]
    pub fn kind(&self) -> OAuthErrorKind {
        OAuthErrorKind::from_code(&self.code)
    }

    /// The provider's `error_description`.
    #[must_use]
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The provider's `error_uri`.
    #[must_use]
    pub fn uri(&self) -> Option<&str> {
        self.uri.as_deref()
    }

    /// The HTTP status, for errors from a back-channel response (None for redirect errors).
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Seconds to wait, from `Retry-After`.
    #[must_use]
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }
}

/// The OAuth, OpenID Connect and AuthPI error codes a client acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthErrorKind {
    /// `invalid_request` (RFC 6749).
    InvalidRequest,
    /// `invalid_client` (RFC 6749).
    InvalidClient,
    /// `invalid_grant` (RFC 6749): the code or refresh token is spent, revoked or expired.
    InvalidGrant,
    /// `unauthorized_client` (RFC 6749).
    UnauthorizedClient,
    /// `unsupported_grant_type` (RFC 6749).
    UnsupportedGrantType,
    /// `invalid_scope` (RFC 6749).
    InvalidScope,
    /// `access_denied` (RFC 6749).
    AccessDenied,
    /// `unsupported_response_type` (RFC 6749).
    UnsupportedResponseType,
    /// `server_error` (RFC 6749).
    ServerError,
    /// `temporarily_unavailable` (RFC 6749).
    TemporarilyUnavailable,
    /// `invalid_target` (RFC 8707).
    InvalidTarget,
    /// `interaction_required` (OIDC Core).
    InteractionRequired,
    /// `login_required` (OIDC Core).
    LoginRequired,
    /// `consent_required` (OIDC Core).
    ConsentRequired,
    /// `account_selection_required` (OIDC Core).
    AccountSelectionRequired,
    /// `invalid_token` (RFC 6750).
    InvalidToken,
    /// `insufficient_scope` (RFC 6750).
    InsufficientScope,
    /// `session_expired` (AuthPI).
    SessionExpired,
    /// `user_blocked` (AuthPI).
    UserBlocked,
    /// `account_linking_required` (AuthPI).
    AccountLinkingRequired,
    /// Any other code; [`OAuthError::code`] has it verbatim.
    Other,
}

impl OAuthErrorKind {
    /// The kind of a code string.
    #[must_use]
    pub fn from_code(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            "access_denied" => Self::AccessDenied,
            "unsupported_response_type" => Self::UnsupportedResponseType,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            "invalid_target" => Self::InvalidTarget,
            "interaction_required" => Self::InteractionRequired,
            "login_required" => Self::LoginRequired,
            "consent_required" => Self::ConsentRequired,
            "account_selection_required" => Self::AccountSelectionRequired,
            "invalid_token" => Self::InvalidToken,
            "insufficient_scope" => Self::InsufficientScope,
            "session_expired" => Self::SessionExpired,
            "user_blocked" => Self::UserBlocked,
            "account_linking_required" => Self::AccountLinkingRequired,
            _ => Self::Other,
        }
    }
}

/// Invalid configuration or arguments.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The issuer URL is not acceptable.
    #[error("issuer URL: {0}")]
    Issuer(&'static str),
    /// The client id is empty or has control characters.
    #[error("client id must be non-empty printable text")]
    ClientId,
    /// The client secret is empty.
    #[error("client secret must be non-empty")]
    ClientSecret,
    /// Secret-based client authentication was chosen without a secret, or the grant needs one.
    #[error("this needs a client secret")]
    SecretRequired,
    /// The redirect URI is not acceptable.
    #[error("redirect URI: {0}")]
    RedirectUri(&'static str),
    /// The operation needs a redirect URI and none is configured.
    #[error("no redirect URI is configured")]
    RedirectUriRequired,
    /// A post-logout redirect URI is not acceptable.
    #[error("post-logout redirect URI: {0}")]
    PostLogoutRedirectUri(&'static str),
    /// Clock leeway above the 300 s maximum.
    #[error("clock leeway must be at most 300 seconds")]
    Leeway,
    /// The scopes do not include `openid`.
    #[error("scopes must include `openid`")]
    OpenIdScopeRequired,
    /// A scope token has characters RFC 6749 §3.3 does not allow, or is empty.
    #[error("invalid scope token")]
    Scope,
    /// A resource indicator is not an absolute URI without fragment (RFC 8707 §2).
    #[error("resource indicator must be an absolute URI without fragment")]
    Resource,
    /// An authorization parameter is invalid.
    #[error("authorization parameter `{0}` is invalid")]
    Parameter(&'static str),
    /// An extra authorization parameter would override one the SDK controls.
    #[error("extra parameter `{0}` is reserved")]
    ReservedParameter(String),
    /// No algorithm is left once the allowlist, the provider's and the pinned ones intersect.
    #[error("no acceptable signing algorithm is left")]
    NoAlgorithm,
    /// A token argument is empty.
    #[error("token must be non-empty")]
    EmptyToken,
}

/// Why an authorization callback was refused.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// A parameter occurs more than once (its name, through [`provider_text`]).
    #[error("parameter `{0}` occurs more than once")]
    DuplicateParameter(String),
    /// `state` is missing or differs from the transaction's (possible CSRF). `provider_error`
    /// went through [`provider_text`].
    #[error("state mismatch{}", provider_error.as_deref().map(|e| format!(" (the provider also returned error `{e}`)")).unwrap_or_default())]
    StateMismatch {
        /// The provider's `error`, if the callback carried one.
        provider_error: Option<String>,
    },
    /// RFC 9207 `iss` differs from the issuer (possible mix-up attack).
    #[error("issuer mismatch in the authorization response")]
    IssuerMismatch,
    /// RFC 9207 `iss` is required by the provider's metadata and absent.
    #[error("the authorization response has no `iss` although the provider advertises it")]
    IssuerMissing,
    /// No `code` in a successful callback.
    #[error("the authorization response has no code")]
    MissingCode,
    /// The transaction does not carry what the callback needs (tampered session store).
    #[error("the authorization transaction is invalid: {0}")]
    Transaction(&'static str),
}

impl fmt::Debug for CallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl CallbackError {
    fn code(&self) -> &'static str {
        match self {
            CallbackError::StateMismatch { .. } => "invalid_state",
            CallbackError::IssuerMismatch | CallbackError::IssuerMissing => "invalid_issuer",
            CallbackError::MissingCode => "missing_code",
            CallbackError::DuplicateParameter(_) | CallbackError::Transaction(_) => {
                "invalid_request"
            }
        }
    }
}

/// What was wrong with a provider response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The body is not acceptable JSON.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// An unexpected HTTP status with a body that is not an OAuth error.
    #[error("unexpected HTTP status {0}")]
    UnexpectedStatus(u16),
    /// `token_type` is not `Bearer`.
    #[error("token_type is not Bearer")]
    TokenType,
    /// `expires_in` is negative, fractional or not a number.
    #[error("expires_in is not a non-negative whole number")]
    ExpiresIn,
    /// A token member is an empty string.
    #[error("member `{0}` is empty")]
    Empty(&'static str),
    /// The code exchange returned no ID token.
    #[error("no id_token in the token response")]
    MissingIdToken,
    /// The response is of a kind the SDK does not accept (e.g. a signed UserInfo JWT).
    #[error("unsupported content: {0}")]
    Unsupported(&'static str),
}

/// Why a token (ID token or access token) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The JWS itself: format, algorithm, key or signature.
    #[error(transparent)]
    Jose(#[from] JoseError),
    /// The claims set is not acceptable JSON.
    #[error("claims: {0}")]
    Json(#[from] JsonError),
    /// A claim rule failed.
    #[error(transparent)]
    Claim(#[from] ClaimError),
}

/// A claim rule that failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// `iss` differs from the issuer (exact comparison).
    #[error("iss does not match the issuer")]
    Issuer,
    /// `aud` does not contain our client id (or the API's audience).
    #[error("aud does not contain the expected audience")]
    Audience,
    /// `aud` lists an audience that is neither ours nor configured as trusted.
    #[error("aud contains an untrusted additional audience")]
    UntrustedAudience,
    /// `azp` is present and is not our client id.
    #[error("azp is not our client id")]
    AuthorizedParty,
    /// The token expired (`exp` + leeway is in the past).
    #[error("the token expired")]
    Expired,
    /// The token is not valid yet (`nbf` − leeway is in the future).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iat` is in the future beyond the leeway.
    #[error("iat is in the future")]
    IssuedInFuture,
    /// A required claim is absent or has the wrong JSON type.
    #[error("claim `{0}` is missing or has the wrong type")]
    Missing(&'static str),
    /// `nonce` is absent although one was sent.
    #[error("nonce is missing")]
    MissingNonce,
    /// `nonce` differs from the one sent.
    #[error("nonce does not match")]
    NonceMismatch,
    /// `at_hash` does not match the access token.
    #[error("at_hash does not match the access token")]
    AtHash,
    /// `auth_time` is missing although `max_age` was sent, or is too old.
    #[error("auth_time is missing or older than max_age allows")]
    AuthTime,
    /// The token's `typ` says it is another kind of token.
    #[error("the token type `typ` is wrong for this use")]
    Type,
    /// A refreshed ID token differs from the original in a claim that must not change.
    #[error("refreshed ID token changed `{0}`")]
    Changed(&'static str),
}

/// Why a discovery document was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The response status was not 200.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The body is not acceptable JSON, or a member has the wrong type.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// `issuer` differs from the configured issuer.
    #[error("issuer in the document does not match the configured issuer")]
    IssuerMismatch,
    /// An endpoint URL is invalid or not https (loopback issuers excepted).
    #[error("endpoint `{0}` is not a valid https URL")]
    Endpoint(&'static str),
    /// The provider does not support PKCE S256.
    #[error("the provider does not support PKCE S256")]
    NoS256,
    /// The provider's signing algorithms leave nothing this client accepts.
    #[error("no ID-token signing algorithm in common with the provider")]
    NoAlgorithm,
    /// The provider does not support `response_type=code`.
    #[error("the provider does not support response_type=code")]
    NoCodeFlow,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_text_table() {
        let long = "x".repeat(5000);
        let accents = "é".repeat(300);
        let escapes = "a\u{1b}".repeat(300);
        let cases: &[(&str, &str)] = &[
            ("invalid_grant", "invalid_grant"),
            ("two words, punctuation: ok.", "two words, punctuation: ok."),
            ("line\nbreak\r\n[ERROR] forged", "linebreak[ERROR] forged"),
            ("\u{1b}[31mred\u{1b}[0m", "[31mred[0m"),
            (
                "tab\there\0nul\u{7f}del\u{85}nel\u{9b}csi",
                "tabherenuldelnelcsi",
            ),
            ("user\u{202e}gpj.exe", "usergpj.exe"),
            ("\u{2066}iso\u{2069}\u{200e}\u{200f}\u{61c}", "iso"),
            (
                "zero\u{200d}width joiner kept, 日本語 kept",
                "zero\u{200d}width joiner kept, 日本語 kept",
            ),
            ("\u{1}\u{2}\u{3}", ""),
            ("", ""),
        ];
        for &(input, expected) in cases {
            assert_eq!(provider_text(input), expected, "{input:?}");
        }
        assert_eq!(provider_text(&long), "x".repeat(256));
        assert_eq!(provider_text(&accents), "é".repeat(256));
        // Capped after cleaning: 256 visible characters, not 128.
        assert_eq!(provider_text(&escapes), "a".repeat(256));
    }

    /// Every route by which provider- or URL-controlled text reaches an error: the text that
    /// comes out is cleaned and bounded, whatever the route.
    #[test]
    fn provider_strings_reach_errors_only_through_provider_text() {
        let hostile = format!("\u{1b}[2J\r\n[INFO] login ok\u{202e}{}", "y".repeat(2000));
        let clean = provider_text(&hostile);
        assert!(clean.chars().count() == MAX_PROVIDER_TEXT && clean.starts_with("[2J[INFO]"));
        let enc: String = url::form_urlencoded::byte_serialize(hostile.as_bytes()).collect();
        let json_str = serde_json::to_string(&hostile).unwrap();
        let resp = |status: u16, body: String| {
            http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(body.into_bytes())
                .unwrap()
        };
        let routes: Vec<(&str, Error, Error)> = vec![
            (
                "duplicate callback parameter",
                crate::flow::CallbackParams::parse(&format!("?{enc}=1&{enc}=2"))
                    .map(|_| ())
                    .unwrap_err()
                    .into(),
                CallbackError::DuplicateParameter(clean.clone()).into(),
            ),
            (
                "provider error next to a wrong state",
                crate::flow::callback_validate(
                    &crate::flow::CallbackParams::parse(&format!("?state=x&error={enc}")).unwrap(),
                    "S",
                    "https://idp.example",
                    false,
                )
                .unwrap_err(),
                CallbackError::StateMismatch {
                    provider_error: Some(clean.clone()),
                }
                .into(),
            ),
            (
                "duplicate JSON member",
                Error::Response {
                    endpoint: Endpoint::Token,
                    reason: crate::json::parse_object(
                        format!("{{{json_str}:1,{json_str}:2}}").as_bytes(),
                    )
                    .unwrap_err()
                    .into(),
                },
                Error::Response {
                    endpoint: Endpoint::Token,
                    reason: JsonError::DuplicateMember(clean.clone()).into(),
                },
            ),
            (
                "UserInfo sub",
                crate::flow::process_userinfo_response(
                    &resp(200, format!("{{\"sub\":{json_str}}}")),
                    Some("usr_1"),
                )
                .unwrap_err(),
                Error::SubjectMismatch {
                    expected: "usr_1".into(),
                    actual: clean.clone(),
                },
            ),
            (
                "refreshed ID token sub",
                Error::subject_mismatch(&hostile, &hostile),
                Error::SubjectMismatch {
                    expected: clean.clone(),
                    actual: clean.clone(),
                },
            ),
            (
                "OAuth error body",
                crate::http::error_response(
                    Endpoint::Token,
                    &resp(
                        400,
                        format!(
                            "{{\"error\":{json_str},\"error_description\":{json_str},\"error_uri\":{json_str}}}"
                        ),
                    ),
                ),
                Error::OAuth(
                    OAuthError::new(&clean, Some(&clean))
                        .with_uri(Some(&clean))
                        .with_status(400, None),
                ),
            ),
        ];
        for (route, got, expected) in routes {
            assert_eq!(got, expected, "{route}");
            for text in [got.to_string(), format!("{got:?}")] {
                assert!(
                    !text
                        .chars()
                        .any(|c| c.is_control() || crate::provider_text::is_bidi_control(c)),
                    "{route}: {text:?}"
                );
                assert!(
                    text.chars().count() <= 3 * MAX_PROVIDER_TEXT + 120,
                    "{route}"
                );
            }
        }
    }

    #[test]
    fn status_is_reported_for_every_error_that_came_with_one() {
        assert_eq!(
            Error::Discovery(DiscoveryError::Status(500)).status(),
            Some(500)
        );
        assert_eq!(Error::Jwks(JwksError::Status(404)).status(), Some(404));
        let status = Error::Status {
            endpoint: Endpoint::Token,
            status: 429,
            retry_after: Some(3),
        };
        assert_eq!(
            (status.status(), status.retry_after(), status.code()),
            (Some(429), Some(3), "rate_limited")
        );
        assert_eq!(Error::TokenExpired.status(), None);
    }
}
