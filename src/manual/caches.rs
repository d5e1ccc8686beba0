//! # Chapter 4: persisting caches
//!
//! Three values are meant to be stored between requests, all serde:
//!
//! - [`TokenSet`](crate::TokenSet): the session (same JSON as the Python SDK). Store the one
//!   [`Step::Persist`](crate::Step::Persist) hands out *before* polling again: the old refresh
//!   token is spent. [`Agent::into_tokens`](crate::Agent::into_tokens) gives it back after
//!   `Done`.
//! - [`KeySet`](crate::KeySet): the JWKS cache. Keep the newest one
//!   [`Step::KeysRefreshed`](crate::Step::KeysRefreshed) hands out (a failed refetch hands out the
//!   same keys with [`KeySet::attempted_at`](crate::KeySet::attempted_at) set, so the cooldown
//!   holds across processes); on a cold start pass [`KeySet::empty`](crate::KeySet::empty).
//! - [`ProviderMetadata`](crate::ProviderMetadata): the discovery result, for
//!   [`Client::with_metadata`](crate::Client::with_metadata); refresh it when
//!   [`ProviderMetadata::is_stale`](crate::ProviderMetadata::is_stale).
//!
//! ## Caches are bound to their provider

//!
//! [`KeySet`](crate::KeySet) and [`ProviderMetadata`](crate::ProviderMetadata) are cache values that serverless users
//! persist. A key set fetched by an operation names the issuer and `jwks_uri` it came from, its
//! serde form carries them (and is refused without them once fetched), and an operation of a
//! client for another issuer or `jwks_uri` refuses it with
//! [`JwksError::ForeignProvider`](crate::error::JwksError::ForeignProvider) before sending anything. Provider metadata names
//! its issuer and is accepted by [`Client::with_metadata`](crate::Client::with_metadata) only for the configured issuer
//! (which alone may differ by a trailing slash). A fetch time in the future counts as never
//! fetched (a wrong clock or a tampered file must not make a cache fresh forever). Within those
//! rules imported caches are trusted input: keys are re-validated, but nothing proves they are
//! the provider's, so keep them where you keep your sessions.
//!
