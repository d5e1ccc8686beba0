//! Operations: the state machines every driver runs.
//!
//! An operation is driven by one loop, the same in every adapter (async or blocking) and in a
//! test with no network at all:
//!
//! ```no_run
//! # use authpi_idp::{Error, Operation, Step, UnixTime};
//! # fn send(_: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, std::io::Error> { unimplemented!() }
//! # fn store(_: &authpi_idp::TokenSet) {}
//! # fn run<O: Operation>(mut op: O, now: UnixTime) -> Result<O::Output, Error> {
//! loop {
//!     match op.poll(now)? {
//!         Step::Send(out) => match send(out.request) {
//!             Ok(response) => op.handle_response(response),
//!             Err(_transport_error) => op.handle_transport_error(), // then keep polling
//!         },
//!         Step::Persist(tokens) => store(&tokens),       // rotated tokens: store them first
//!         Step::KeysRefreshed(keys) => { /* keep `keys` for the next operations */ }
//!         Step::Done(output) => break Ok(output),
//!     }
//! }
//! # }
//! ```
//!
//! # Call order
//! - [`Operation::poll`] returns the next [`Step`]. After [`Step::Send`], the next call must be
//!   [`Operation::handle_response`] with the response to that request, or
//!   [`Operation::handle_transport_error`] when the request got no response (connection error,
//!   timeout, size cap); only then does `poll` make progress. Every other step is an event:
//!   handle it, then call `poll` again.
//! - After `handle_transport_error`, keep polling: `poll` either goes on (a refresh whose new ID
//!   token cannot be checked for lack of keys: `Persist`, then `Done`, see [`CreateAgent`]), or
//!   answers [`Error::NoResponse`], which a driver replaces with its own transport error.
//! - [`Operation::handle_response`] only records the response; `poll` validates it, so every
//!   error surfaces from `poll`.
//! - After `Done` or an error, the operation is over: `poll` answers
//!   [`ApiMisuse::OperationFinished`](crate::error::ApiMisuse::OperationFinished).
//! - `now` may differ between calls (a slow network); each check uses the `now` of the `poll`
//!   that makes it.
//!
//! # What never happens
//! - No tokens come out with an error: a failed operation emits no `Persist` after the failure,
//!   and `Done` only follows every check.
//! - A refresh hands the rotated token set out as [`Step::Persist`] as soon as the token
//!   response and its ID token are validated, *before* UserInfo hydration or anything else that
//!   can still fail: the old refresh token is already spent at the provider.
//! - At most one JWKS request per operation, and only when the cached key set is stale or empty
//!   (and the last attempt is older than [`crate::provider::REFETCH_COOLDOWN`]), or lacks the
//!   token's key. For a token anyone can present (an access token at an API) a missing key
//!   causes a refetch only when the last fetch *attempt* is older than the cooldown; an ID token
//!   that came from the token endpoint over TLS is not forgeable by a third party, so its
//!   unknown `kid` always gets the one refetch (keys rotated between login and refresh just
//!   work).
//! - A failed JWKS request (error status, unusable body, no response) is still an attempt: the
//!   operation emits [`Step::KeysRefreshed`] with the same keys and the attempt recorded
//!   ([`KeySet::attempted_at`]), so the cooldown holds across operations while the endpoint
//!   fails.
//! - Cheap rejections (an `alg` outside the allowed set, an ES256/EdDSA signature that is not 64
//!   bytes, a malformed token, a wrong `typ`) come before any JWKS request.
//! - A key set bound to another provider ([`KeySet::check_provider`]) is refused by the first
//!   `poll`, before any request.
//!
//! # Layout
//! One module per operation, each with the `impl Client` block that starts it:
//! [`authorize`](crate::AuthorizationRequest) and the callback checks (no operation: a URL and a
//! pure check), [`Exchange`] (code exchange), [`CreateAgent`] (stored session, refresh),
//! [`ValidateAccessToken`] (RFC 9068 at an API), [`Discover`], [`OneRequest`] (client
//! credentials, UserInfo, revocation, introspection) and the logout URL. The key ring (the one
//! permitted JWKS refetch) and the state every verifying machine shares live in private
//! modules beside them.

mod access_token;
mod authorize;
pub mod backchannel;
mod callback;
mod common;
mod create_agent;
pub mod device;
mod discover;
mod exchange;
mod keys;
mod logout;
mod one_request;
mod userinfo;

pub use access_token::{AccessTokenInfo, ValidateAccessToken};
pub use authorize::{AuthorizationRequest, AuthorizationUrl, pkce_challenge};
pub use backchannel::{LogoutToken, ValidateLogoutToken};
pub use callback::{CallbackInput, CallbackParams};
pub use create_agent::{CreateAgent, RefreshOptions};
pub use device::{DeviceAuthorization, DevicePoll, DeviceStep};
pub use discover::{Discover, Discovered};
pub use exchange::{Exchange, NonceCheck};
pub use logout::LogoutRequest;
pub use one_request::{Introspection, OneRequest, TokenTypeHint};
pub use userinfo::UserInfo;

#[cfg(test)]
pub(crate) use callback::validate as callback_validate;
pub use keys::verify_with;
pub use one_request::{
    process_client_credentials_response, process_introspection_response,
    process_revocation_response,
};
pub use userinfo::process_userinfo_response;

use crate::error::Error;
use crate::http::Outgoing;
use crate::provider::KeySet;
use crate::time::UnixTime;
use crate::token::TokenSet;
use std::fmt;

/// What an operation wants next.
///
/// Exhaustive on purpose (no `#[non_exhaustive]`, and drivers write no `_ => {}` arm): every
/// variant is an obligation of the driver, so a new one — as `Persist` once was — must break
/// the compilation of every driver instead of being silently ignored by a wildcard.
#[must_use]
pub enum Step<T> {
    /// Send this request (no redirects) and pass the response to `handle_response`.
    Send(Outgoing),
    /// A refresh rotated the tokens: persist this token set before calling `poll` again.
    Persist(TokenSet),
    /// The provider's key set was refetched, or a refetch was attempted and failed (same keys,
    /// attempt time recorded for the cooldown): keep it for later operations.
    KeysRefreshed(KeySet),
    /// The operation finished with this output.
    Done(T),
}

impl<T> fmt::Debug for Step<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Send(o) => f.debug_tuple("Send").field(o).finish(),
            Step::Persist(t) => f.debug_tuple("Persist").field(t).finish(),
            Step::KeysRefreshed(k) => f.debug_tuple("KeysRefreshed").field(k).finish(),
            Step::Done(_) => f.write_str("Done(..)"),
        }
    }
}

/// A protocol operation as a state machine (see the [module docs](self) for the call order).
pub trait Operation {
    /// What the operation produces.
    type Output;

    /// Advances the operation. See the module docs for the call order.
    fn poll(&mut self, now: UnixTime) -> Result<Step<Self::Output>, Error>;

    /// Records the response to the request of the last [`Step::Send`].
    fn handle_response(&mut self, response: http::Response<Vec<u8>>);

    /// The request of the last [`Step::Send`] got no response (connection error, timeout, size
    /// cap): call it instead of [`handle_response`](Self::handle_response), then keep polling.
    /// `poll` then either goes on (see the [module docs](self)) or answers
    /// [`Error::NoResponse`].
    fn handle_transport_error(&mut self);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ApiMisuse, Endpoint};
    use crate::{Client, Config, ProviderMetadata};
    use serde_json::json;

    const ISS: &str = "https://idp.example.com";

    /// A client whose provider has only the endpoints discovery requires.
    fn bare_client() -> Client {
        let doc = json!({
            "issuer": ISS,
            "authorization_endpoint": format!("{ISS}/authorize"),
            "token_endpoint": format!("{ISS}/token"),
            "jwks_uri": format!("{ISS}/jwks.json"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "code_challenge_methods_supported": ["S256"],
        });
        let resp = http::Response::builder()
            .status(200)
            .body(serde_json::to_vec(&doc).unwrap())
            .unwrap();
        let metadata = ProviderMetadata::from_response(&resp, ISS, UnixTime(0)).unwrap();
        let config = Config::builder(ISS, "c")
            .client_secret("s")
            .redirect_uri("http://127.0.0.1/cb")
            .build()
            .unwrap();
        Client::with_metadata(config, metadata).unwrap()
    }

    /// `Unsupported` names the endpoint the provider lacks (issue #14: it was a free text).
    #[test]
    fn a_missing_endpoint_is_named() {
        let client = bare_client();
        let cases = [
            (client.revoke("t", None).err(), Endpoint::Revocation),
            (client.introspect("t", None).err(), Endpoint::Introspection),
            (client.userinfo_for("t", None).err(), Endpoint::UserInfo),
            (
                client.logout_url(&LogoutRequest::new()).err(),
                Endpoint::EndSession,
            ),
        ];
        for (got, endpoint) in cases {
            assert_eq!(got, Some(Error::Unsupported(endpoint)));
            assert_eq!(
                got.map(|e| e.code().to_owned()).as_deref(),
                Some("unsupported")
            );
        }
    }

    /// Each misuse of the call order is its own [`ApiMisuse`] (issue #14: it was a free text).
    #[test]
    fn api_misuse_says_what_was_wrong() {
        let client = bare_client();
        let mut op = client.client_credentials(["read"], &[]).unwrap();
        assert!(matches!(op.poll(UnixTime(0)), Ok(Step::Send(_))));
        let e = op.poll(UnixTime(0)).unwrap_err();
        assert_eq!(e, Error::ApiMisuse(ApiMisuse::PollBeforeResponse));
        assert_eq!(e.code(), "invalid_usage");
        // The failed poll consumed the operation: it is over.
        assert_eq!(
            op.poll(UnixTime(0)).unwrap_err(),
            Error::ApiMisuse(ApiMisuse::OperationFinished)
        );
    }
}
