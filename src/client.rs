//! The client: configuration plus provider knowledge. Nothing else.
//!
//! Every operation is started by an `impl Client` block next to its machine in
//! [`crate::flow`]; this module imports nothing from there (the dependency runs one way, as
//! quinn-proto's `Endpoint` → `Connection`).

use crate::config::Config;
use crate::error::{DiscoveryError, Error};
use crate::jose::AlgorithmSet;
use crate::provider::{ProviderMetadata, issuer_matches_configured};
use std::fmt;
use std::sync::Arc;

/// An OpenID Connect client for one provider. Cheap to clone (one `Arc`), `Send + Sync`.
///
/// Build it with [`Client::new`] (AuthPI layout, no round trip) or [`Client::discover`] /
/// [`Client::with_metadata`] (any OpenID provider). Every method either returns a value at once
/// (authorization URL, logout URL) or an operation to drive (see [`crate::flow`], where each operation's constructor lives beside its machine).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    metadata: ProviderMetadata,
    algorithms: AlgorithmSet,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .field("issuer", &self.inner.metadata.issuer())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for an AuthPI issuer: endpoints derived from the issuer, no discovery round trip.
    pub fn new(config: Config) -> Result<Client, Error> {
        let metadata = ProviderMetadata::authpi(&config.issuer)?;
        Client::with_metadata(config, metadata)
    }

    /// A client with provider metadata obtained elsewhere (discovery done earlier, or metadata
    /// imported from storage). The metadata's issuer must equal the configured one, or be it
    /// without its one trailing slash (only the configuration may differ by a slash).
    pub fn with_metadata(config: Config, metadata: ProviderMetadata) -> Result<Client, Error> {
        if !issuer_matches_configured(metadata.issuer(), &config.issuer) {
            return Err(DiscoveryError::IssuerMismatch.into());
        }
        let algorithms = config.algorithms.intersect(metadata.signing_algorithms());
        if algorithms.is_empty() {
            return Err(DiscoveryError::NoAlgorithm.into());
        }
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                metadata,
                algorithms,
            }),
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The provider metadata in use.
    #[must_use]
    pub fn metadata(&self) -> &ProviderMetadata {
        &self.inner.metadata
    }

    /// The exact issuer every `iss` is compared with.
    #[must_use]
    pub fn issuer(&self) -> &str {
        self.inner.metadata.issuer()
    }

    /// The accepted signing algorithms: ES256/EdDSA/RS256/PS256 ∩ the provider's ∩ the pin.
    #[must_use]
    pub fn algorithms(&self) -> AlgorithmSet {
        self.inner.algorithms
    }
}
