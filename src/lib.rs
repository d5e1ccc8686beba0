//! # authpi-idp
//!
//! A sans-IO OpenID Connect client for [AuthPI](https://authpi.com), whose tokens carry
//! per-organization scopes. The crate builds every HTTP request as an `http::Request` value and
//! validates every `http::Response` you hand back; it does no I/O, reads no clock and uses no
//! global randomness. Time (`now`) and a CSPRNG are arguments. Thin adapters (reqwest, ureq,
//! hyper) drive the same state machines, and so can any HTTP stack of your own.
//!
//! ## The whole login flow
//!
//! ```
//! use authpi_idp::{AuthorizationRequest, Client, Config, KeySet, Operation, RefreshOptions, Step, UnixTime};
//! # use authpi_idp_testkit::Issuer;
//! # fn send(issuer: &mut Issuer, req: http::Request<Vec<u8>>, now: u64) -> http::Response<Vec<u8>> {
//! #     issuer.handle(req, now)
//! # }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let mut issuer = Issuer::authpi_demo("http://127.0.0.1:9/i_demo").build()?;
//! # let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
//! # use rand_chacha::rand_core::SeedableRng;
//! let now = UnixTime(1_767_312_000);
//! let config = Config::builder("http://127.0.0.1:9/i_demo", "client_web")
//!     .client_secret("secret_web")
//!     .redirect_uri("http://127.0.0.1:8080/callback")
//!     .build()?;
//! let client = Client::new(config)?; // AuthPI layout: no discovery round trip
//! let mut keys = KeySet::empty();   // a cache value: the first verification fetches it
//!
//! // 1. Send the user to the authorization URL; keep the transaction (it is serde) in the session.
//! let tx = client.authorization_url(&AuthorizationRequest::new(["openid", "email"]), &mut rng)?;
//! # let redirect = send(&mut issuer, http::Request::get(tx.url.as_str()).body(Vec::new())?, now.0);
//! # let callback_url = redirect.headers()["location"].to_str()?.to_owned();
//!
//! // 2. On the callback: check it, spend the code, verify the ID token.
//! let mut op = client.exchange_callback(callback_url.as_str(), &tx, &keys)?;
//! let agent = loop {
//!     match op.poll(now)? {
//!         Step::Send(out) => op.handle_response(send(&mut issuer, out.request, now.0)),
//!         Step::KeysRefreshed(k) => keys = k,
//!         Step::Persist(_) => unreachable!("a code exchange rotates nothing"),
//!         Step::Done(agent) => break agent,
//!     }
//! };
//! assert_eq!(agent.id(), "usr_alice");
//! assert!(agent.has_access_in("org_acme", "delete", "projects.tasks"));
//!
//! // 3. On every later request: rebuild the agent from the stored tokens (refreshes when due).
//! let stored = agent.into_tokens().to_json();
//! let later = UnixTime(now.0 + 7200);
//! let tokens = authpi_idp::TokenSet::from_json(stored.as_bytes())?;
//! let mut op = client.create_agent(tokens, RefreshOptions::new(), &keys)?;
//! let agent = loop {
//!     match op.poll(later)? {
//!         Step::Send(out) => op.handle_response(send(&mut issuer, out.request, later.0)),
//!         Step::Persist(rotated) => { /* store `rotated` now: the old refresh token is spent */ }
//!         Step::KeysRefreshed(k) => keys = k,
//!         Step::Done(agent) => break agent,
//!     }
//! };
//! assert!(agent.expires_at() > later.0);
//! # Ok(()) }
//! ```
//!
//! ## Method map
//!
//! | Python SDK (`authpi-idp` 1.1.2) | here |
//! |---|---|
//! | `IdpClient(issuer_url, client_id, …)` | [`Config::builder`] → [`Client::new`] (AuthPI layout) or [`Client::discover`] |
//! | `create_authorization_url` | [`Client::authorization_url`] → [`AuthorizationUrl`] |
//! | `exchange_callback` | [`Client::exchange_callback`] → [`flow::Exchange`] |
//! | `exchange_code` | [`Client::exchange_code`] with [`NonceCheck::DangerousSkip`] (Python's behaviour, named as such) or [`NonceCheck::of`] |
//! | `create_agent` | [`Client::create_agent`] → [`flow::CreateAgent`] |
//! | `refresh` | [`Client::refresh`] |
//! | `client_credentials` | [`Client::client_credentials`] |
//! | `get_user_info` | [`Client::userinfo`] |
//! | `revoke_token` | [`Client::revoke`] |
//! | (introspection) | [`Client::introspect`] |
//! | `create_logout_url` | [`Client::logout_url`] |
//! | (APIs) | [`Client::validate_access_token`] (RFC 9068) |
//! | (back-channel logout) | [`Client::backchannel_logout`] → [`ValidateLogoutToken`] → [`LogoutToken`] |
//! | `has_access`, `parse_scope` | [`scope::has_access`], [`scope::parse_scope`] |
//! | `AuthenticatedAgent` | [`Agent`] |
//! | `TokenSet` | [`TokenSet`] (same JSON) |
//!
//! ## What is verified
//!
//! Every ID token, at login and at refresh: the JWS signature against the provider's JWKS
//! (ES256, EdDSA/Ed25519, RS256, PS256; never `none`, never HMAC), then `iss` (exact), `aud`
//! (our client id; extra audiences only when trusted), `azp`, `exp`/`iat`/`nbf` with a 60 s
//! leeway, `nonce` (constant time), `at_hash` when present, `auth_time` when `max_age` was sent.
//! Refreshed ID tokens must keep `iss`, `sub`, `aud` (and `azp`, `nonce`, `auth_time` when
//! present); a refreshed ID token whose key cannot be fetched never costs the rotated tokens
//! (see the no-verdict rule in [`manual`] and [`Agent::identity_reverified`]). Access tokens
//! presented to an API are verified per RFC 9068 by [`Client::validate_access_token`].
//! Back-channel logout tokens (OIDC Back-Channel Logout 1.0) are verified by
//! [`Client::backchannel_logout`] (signature, `iss`, `aud`, `iat`/`exp`, `jti`, `events`, `sid`
//! or `sub`, no `nonce`, `typ`); the `jti` replay check is the caller's (see [`ValidateLogoutToken`]).
//! Stored token sets are trusted as your own storage: `create_agent` decodes a stored ID token
//! (checking its `iss` and `aud`) without re-verifying the signature.
//!
//! ## Cargo features
//!
//! One crypto backend, exactly (two, or none, is a compile error; [`CRYPTO_BACKEND`]
//! names the one built in). Key and signature rules are ours and identical for each.
//!
//! | feature | |
//! |---|---|
//! | `ring` (default) | ring: C and assembly, built with a C compiler |
//! | `aws-lc-rs` | AWS-LC: faster P-256 and Ed25519 on x86_64; FIPS through aws-lc-rs's `fips` |
//! | `rustcrypto` | pure Rust (`p256`, `ed25519-dalek` strict, `rsa`, `sha2`): no C compiler; `wasm32-unknown-unknown` |
//! | `url-ascii-only` (default) | pins `idna_adapter` to its no-Unicode 1.0 stream, dropping ICU4X (about 21 crates) from `url` for the whole application (an existing `Cargo.lock` may need `cargo update -p idna_adapter --precise 1.0.0` once) |
//!
//! Another backend: `authpi-idp = { version = "…", default-features = false, features =
//! ["rustcrypto", "url-ascii-only"] }`. Issuer, endpoint, redirect and resource hosts must be
//! ASCII with or without `url-ascii-only` (an internationalized name in its `xn--` form).
//!
//! See [`manual`] for the threat model and the reason for each default.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod access_token;
pub mod agent;
mod client;
pub mod config;
mod constant_time;
pub mod error;
pub mod flow;
mod http;
mod id_token;
mod jose;
mod json;
pub mod manual;
mod org;
pub mod provider;
mod provider_text;
pub mod scope;
mod time;
pub mod token;

pub use agent::{Agent, PrincipalType};
pub use client::Client;
pub use config::{ClientAuth, Config, ConfigBuilder};
pub use error::{Error, OAuthError, OAuthErrorKind};
pub use flow::{
    AccessTokenInfo, AuthorizationRequest, AuthorizationUrl, CallbackInput, CallbackParams,
    DeviceAuthorization, DevicePoll, DeviceStep, Discovered, Introspection, LogoutRequest,
    LogoutToken, NonceCheck, Operation, RefreshOptions, Step, TokenTypeHint, UserInfo,
    ValidateLogoutToken, pkce_challenge,
};
pub use http::{Outgoing, RequestKind};
pub use jose::{Algorithm, AlgorithmSet, CRYPTO_BACKEND};
pub use org::Organization;
pub use provider::{KeySet, ProviderMetadata};
pub use time::UnixTime;
pub use token::TokenSet;

/// Internals public only for the fuzz targets, benches and regression tests (as rustls and
/// quinn do): no stability promise, not part of the documented API.
#[doc(hidden)]
pub mod internal {
    /// The strict JSON reader every provider document goes through.
    pub mod json {
        pub use crate::json::{JsonError, MAX_DEPTH, MAX_DOCUMENT, parse_object, parse_value};
    }
    /// Compact JWS parsing and verification against a key set.
    pub mod jose {
        pub use crate::flow::verify_with as verify_jws;
        pub use crate::jose::{Header, Jws, at_hash_matches};
    }
    /// AuthPI's `organizations` claim.
    pub mod org {
        pub use crate::org::{Memberships, parse_organizations};
    }
    /// The named response processors of the one-request operations.
    pub use crate::flow::{
        process_client_credentials_response, process_introspection_response,
        process_revocation_response, process_userinfo_response,
    };
    /// The JWKS freshness rule.
    pub use crate::provider::max_age_from_headers;

    /// The one-pass typed readers of the hot paths, timed alone by the benches (what they read
    /// is private, so it is dropped here).
    pub mod readers {
        /// Reads and validates a token-endpoint response.
        ///
        /// # Errors
        /// As the code exchange reports it.
        pub fn token_response(response: &http::Response<Vec<u8>>) -> Result<(), crate::Error> {
            crate::token::parse_token_response(response).map(drop)
        }

        /// Reads an ID-token payload into its claims, with their type rules (required claims
        /// present, modeled claims well typed); the rules against a client (`iss`, `aud`,
        /// times, nonce) are not checked.
        ///
        /// # Errors
        /// Not strict JSON, a required claim missing or empty, or a modeled claim of the wrong
        /// type.
        pub fn id_token_claims(payload: &[u8]) -> Result<(), crate::error::TokenError> {
            crate::id_token::IdClaims::from_payload(payload).map(drop)
        }

        /// Reads an RFC 9068 access-token payload and checks it against issuer `iss` and
        /// audience `aud` at time `now` (leeway 0).
        ///
        /// # Errors
        /// Not strict JSON, a claim of the wrong type, or a claim rule.
        pub fn access_token_claims(
            payload: &[u8],
            iss: &str,
            aud: &str,
            now: u64,
        ) -> Result<(), crate::error::TokenError> {
            let expected = crate::access_token::Expected {
                issuer: iss,
                audience: aud,
                leeway: 0,
                now: crate::UnixTime(now),
            };
            crate::access_token::AccessClaims::check(payload, &expected).map(drop)
        }
    }
}
