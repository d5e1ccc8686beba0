//! What the client knows about its provider: the discovery metadata ([`ProviderMetadata`])
//! and the JWKS key set as a cache value ([`KeySet`]). Pure data (serde), no requests: the
//! operations in [`crate::flow`] fetch, and decide when to refetch.

mod jwks;
mod metadata;

pub use jwks::{
    DEFAULT_MAX_AGE, Jwk, KeySet, MAX_MAX_AGE, MIN_MAX_AGE, REFETCH_COOLDOWN, max_age_from_headers,
};
pub use metadata::{METADATA_MAX_AGE, ProviderMetadata};

pub(crate) use metadata::issuer_matches_configured;
