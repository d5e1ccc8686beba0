//! What the client knows about its provider: the discovery metadata ([`ProviderMetadata`])
//! and the JWKS key set as a cache value ([`KeySet`]). Pure data (serde), no requests: the
//! operations in [`crate::flow`] fetch, and decide when to refetch.
//!
//! # The metadata
//! Provider knowledge: endpoints from the AuthPI layout or from OpenID Connect Discovery.
//!
//! [`ProviderMetadata::authpi`] derives every endpoint from the issuer with no round trip, as
//! the official SDK does. [`ProviderMetadata::from_response`] validates a discovery document:
//! `issuer` must equal the configured issuer (one trailing slash in the configuration is
//! tolerated, and from then on the discovered value is the exact expected `iss`), endpoints must
//! be `https` unless the issuer host is loopback, PKCE `S256` and `response_type=code` must be
//! supported, and the advertised signing algorithms must leave one this client accepts.
//!
//! Metadata serializes (serde) with its fetch time, so a serverless deployment can persist it.
//!
//! # The key set
//! The provider's JSON Web Key Set as a cache value.
//!
//! Parsing is strict per document and lenient per key: the document must be a JSON object
//! (strict parser: duplicate members anywhere are an error) with a `keys` array, and every key
//! that cannot be used to verify a signature is skipped, not an error:
//! - not an object, `kty` other than `EC`, `OKP`, `RSA`, or a `crv` other than `P-256`
//!   (EC) / `Ed25519` (OKP);
//! - `use` present and not `"sig"`; `key_ops` present and not an array of strings containing
//!   `"verify"`;
//! - `alg` present and not one of [`Algorithm`](crate::Algorithm), or not fitting the key type;
//! - a `kid` that is not a string; a missing or ill-typed or non-base64url key member;
//! - wrong sizes: `x`/`y` not 32 bytes, an RSA modulus outside 2048..=8192 bits, an RSA
//!   exponent that ring would refuse (see the crypto seam's docs for what cannot be checked
//!   before a signature: whether a P-256 point is on the curve);
//! - private keys (`d`, or any other private RSA member): a provider that publishes private
//!   keys is broken, and we do not use its keys.
//!
//! Freshness follows the response's `Cache-Control` (see [`max_age_from_headers`]); an unknown
//! `kid` in a token anyone can present (an access token at an API) may trigger a refetch only
//! [`REFETCH_COOLDOWN`] after the last fetch *attempt*, failed ones included (see
//! [`KeySet::may_refetch`]); an ID token from the token endpoint may always cause one refetch per
//! operation (see [`crate::flow`]).
//!
//! ## Binding to a provider
//! A key set fetched by an operation (or by [`crate::Client::discover`]) names the issuer and
//! the `jwks_uri` it came from ([`KeySet::issuer`], [`KeySet::jwks_uri`]); an operation refuses a
//! key set bound to another provider with [`JwksError::ForeignProvider`](crate::error::JwksError::ForeignProvider), so a misfiled cache or
//! a multi-provider application never verifies one provider's tokens with another's keys. The
//! serde form carries the binding and requires it for a set that was ever fetched. A set built
//! in code with [`KeySet::from_json`] or [`KeySet::from_response`] is unbound until
//! [`KeySet::bind`] (it is the caller's own value). Imported caches are trusted input otherwise:
//! the keys are re-validated, but nothing proves they are the provider's.
//!
//! A `fetched_at` (or a last attempt) later than `now` counts as never fetched: a cache written
//! by a machine with a wrong clock, or tampered with, is neither fresh nor a reason to wait.

mod jwks;
mod metadata;

pub use jwks::{
    DEFAULT_MAX_AGE, Jwk, KeySet, MAX_MAX_AGE, MIN_MAX_AGE, REFETCH_COOLDOWN, max_age_from_headers,
};
pub use metadata::{METADATA_MAX_AGE, ProviderMetadata};

pub(crate) use metadata::issuer_matches_configured;
