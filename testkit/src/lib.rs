//! `authpi-idp-testkit`: an embedded, AuthPI-compatible OpenID Connect issuer for tests,
//! demos and benchmarks.
//!
//! It behaves like AuthPI as seen by a relying party (see `shared/spec/authpi.md`):
//! discovery, a six-key JWKS (ES256, EdDSA, RS256, two generations each) with rotation,
//! an auto-approving `/authorize`, `/token` with `authorization_code` (single use, PKCE S256,
//! 60 s), rotating `refresh_token` (replay revokes the whole family unless
//! [`IssuerBuilder::replay_revokes_grant`] says otherwise: AuthPI itself does not) and
//! `client_credentials`, `/userinfo`, `/revoke` (RFC 7009), `/introspect` (RFC 7662) and
//! `/logout`. Every token is a JWS signed with the client's algorithm.
//!
//! Two ways to run it:
//! - **sans-IO**: [`Issuer::handle`] takes an `http::Request<Vec<u8>>` and the time `now`
//!   (Unix seconds) and returns an `http::Response<Vec<u8>>`. No sockets, no clock: a
//!   virtual clock is just a number you pass.
//! - **served**: [`Served::start`] binds `127.0.0.1:0`, serves HTTP/1.1 (keep-alive, a thread
//!   per connection) and stops when dropped. Its clock is the system clock unless set.
//! - **dev issuer**: [`dev::serve`] builds it from a TOML/JSON file (users, organizations,
//!   clients with back-channel logout URIs, TTLs, algorithm) and serves it with optional
//!   request log and interactive login; `authpi-idp issuer serve --port P --config FILE`
//!   runs it (example: `testkit/dev-issuer.toml`).
//!
//! ```
//! use authpi_idp_testkit::Issuer;
//! let mut idp = Issuer::authpi_demo("https://idp.test/i_demo").build().unwrap();
//! let req = http::Request::get("https://idp.test/i_demo/jwks.json").body(Vec::new()).unwrap();
//! let resp = idp.handle(req, 1_767_312_000);
//! assert_eq!(resp.status(), 200);
//! assert_eq!(idp.stats().jwks_requests, 1);
//! ```
//!
//! # The demo fixture ([`Issuer::authpi_demo`])
//! - user `usr_alice` (`alice@example.com`, verified, name "Alice Example"), the current user;
//!   member of `org_acme` (title "Founder", scopes `owner projects:** users:read`) and of
//!   `org_globex` (no title, scopes `billing:read`), both joined at 1767312000;
//! - `client_web` / `secret_web`: confidential, ES256, redirect URIs
//!   `http://127.0.0.1/callback` (any port) and `https://app.example.com/callback`,
//!   post-logout URIs `https://app.example.com/logged-out`, `http://127.0.0.1/logged-out`;
//! - `client_native`: public (no secret), EdDSA, redirect URIs `http://127.0.0.1/callback`
//!   (any port) and `com.example.app:/callback`;
//! - `c_m2m` / `secret_m2m`: machine-to-machine, RS256, scopes `reports:read`;
//! - `agt_bot` / `secret_bot`: agent, ES256, scopes `projects:read tasks:write`, 5-minute
//!   tokens.
//!
//! # Choices where AuthPI's documentation is silent
//! - Refresh tokens are issued on every code grant; the rotated token keeps the full grant.
//!   A refresh response has an ID token unless the client says `id_token_on_refresh(false)`
//!   or the (narrowed) scope lacks `openid`; it repeats the original `nonce` and `auth_time`.
//! - Replaying a redeemed authorization code is `invalid_grant` and revokes the tokens it
//!   produced (RFC 6749 §4.1.2). A failed PKCE check does not consume the code.
//! - With `org=…`, `organizations` in every token and in userinfo holds only that org, and
//!   `org_id` is set. If the membership ends, refresh answers `invalid_grant`.
//! - A blocked user gets `user_blocked` at `/authorize`, at `/token` (400) and `invalid_token`
//!   at `/userinfo`.
//! - `at_hash` uses SHA-256 for ES256/RS256 and SHA-512 for EdDSA (left half, base64url).
//! - M2M access tokens have `dat.type = "key"`, agent tokens `"agent"`, user tokens
//!   `"identity"`; client-credentials tokens carry `organizations: []` and no `sid`.
//! - Access tokens carry `org_id` when an org was selected. Introspection returns
//!   `token_type` (`access_token`/`refresh_token`) and the token's `scope, client_id, sub,
//!   exp, iat, iss, aud, jti, sid, org_id`.
//! - `/logout` ends the session its `id_token_hint` names (next login gets a new `sid` and
//!   `auth_time`), revokes that session's refresh tokens unless the grant has
//!   `offline_access`, and sends an OIDC Back-Channel Logout 1.0 `logout_token` (typ
//!   `logout+jwt`, `sub`, `sid`, `jti`, `events`, `exp` = `iat` + 120 s) to every client of the
//!   session that registered a `backchannel_logout_uri` ([`Issuer::end_session`],
//!   [`Issuer::take_logout_deliveries`]; [`Served`] POSTs them, loopback only). ID and access
//!   tokens carry the session's `sid`. [`Issuer::mint_logout_token`] makes good and bad
//!   logout tokens for tests ([`LogoutTokenSpec`]).
//! - Errors on back-channel endpoints are `{"error","error_description"}` with 400
//!   (401 `invalid_client`, with `WWW-Authenticate: Basic` when Basic was used) and
//!   `Cache-Control: no-store`. Unknown paths are 404, wrong methods 405.
#![forbid(unsafe_code)]

mod backchannel;
pub mod dev;
mod handlers;
mod issuer;
pub mod jwt;
mod model;
mod served;
mod util;

pub use backchannel::{BACKCHANNEL_LOGOUT_EVENT, LogoutDelivery, LogoutTokenSpec};
pub use issuer::{Issuer, IssuerBuilder, Ttls, at_hash, pkce_challenge};
pub use jwt::{Alg, TestKey};
pub use model::{Client, ClientKind, Membership, Stats, User};
pub use served::{DeliveryOutcome, ServeOptions, Served};

/// What can go wrong building or running the issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The issuer URL is not an absolute http(s) URL without query or fragment.
    InvalidIssuerUrl,
    /// Key generation or signing failed (the OS RNG failed, or a key was unusable).
    Crypto,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidIssuerUrl => f.write_str("the issuer URL is not a valid http(s) URL"),
            Error::Crypto => f.write_str("key generation or signing failed"),
        }
    }
}

impl std::error::Error for Error {}
