//! TLS trust for the transports: which roots they trust, written once.
//!
//! Every adapter uses rustls (ring; never OpenSSL) and trusts, per [`TlsRoots`]:
//! - the compiled-in webpki (Mozilla) roots, the default: the same answer on every machine;
//! - the operating system's trust store (`rustls-native-certs`), for hosts whose
//!   administrators add a corporate or TLS-inspecting proxy's CA there;
//! - exactly the certificates you give (PEM), for a provider behind a private CA.
//!
//! The reqwest and hyper adapters also take a complete `rustls::ClientConfig` of your own.

use crate::error::TransportError;
use std::fmt;
use std::sync::Arc;

/// The roots a transport trusts. Every adapter uses rustls (ring; never OpenSSL) and trusts
/// the compiled-in webpki (Mozilla) roots by default (the same answer on every machine), the
/// operating system's trust store (`rustls-native-certs`: where administrators put a
/// corporate or TLS-inspecting proxy's CA), or exactly the certificates you give (PEM: a
/// provider behind a private CA). The reqwest and hyper adapters also take a complete
/// `rustls::ClientConfig`.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsRoots {
    /// The compiled-in webpki (Mozilla) roots.
    #[default]
    Webpki,
    /// The operating system's trust store, loaded when the transport is built.
    Os,
    /// Exactly these root certificates (DER), e.g. a private CA.
    Custom(Arc<[Vec<u8>]>),
}

impl fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsRoots::Webpki => f.write_str("Webpki"),
            TlsRoots::Os => f.write_str("Os"),
            TlsRoots::Custom(c) => write!(f, "Custom({} certificates)", c.len()),
        }
    }
}

impl TlsRoots {
    /// Exactly the certificates of a PEM bundle.
    ///
    /// # Errors
    /// [`TransportError::Tls`] when the bundle is malformed or holds no certificate.
    pub fn from_pem(pem: &[u8]) -> Result<Self, TransportError> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let certs = CertificateDer::pem_slice_iter(pem)
            .map(|c| c.map(|c| c.as_ref().to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TransportError::Tls("malformed PEM certificate bundle"))?;
        if certs.is_empty() {
            return Err(TransportError::Tls("no certificate in the PEM bundle"));
        }
        Ok(TlsRoots::Custom(certs.into()))
    }

    /// Exactly the certificates of a PEM file.
    ///
    /// # Errors
    /// The file cannot be read, or as [`Self::from_pem`].
    pub fn from_pem_file(path: impl AsRef<std::path::Path>) -> Result<Self, TransportError> {
        let pem = std::fs::read(path).map_err(TransportError::io)?;
        Self::from_pem(&pem)
    }

    /// The root certificates (DER) to trust, or `None` for the compiled-in webpki roots.
    ///
    /// # Errors
    /// [`TransportError::Tls`] when [`TlsRoots::Os`] finds no usable certificate.
    pub fn certificates(&self) -> Result<Option<Vec<Vec<u8>>>, TransportError> {
        match self {
            TlsRoots::Webpki => Ok(None),
            TlsRoots::Custom(c) => Ok(Some(c.to_vec())),
            TlsRoots::Os => {
                let found = rustls_native_certs::load_native_certs();
                let certs: Vec<Vec<u8>> = found.certs.iter().map(|c| c.as_ref().to_vec()).collect();
                if certs.is_empty() {
                    return Err(TransportError::Tls(
                        "the operating system's trust store has no usable certificate",
                    ));
                }
                Ok(Some(certs))
            }
        }
    }
}

/// A rustls client configuration (ring, safe defaults, no client certificate) trusting
/// `roots`: what the reqwest and hyper adapters use unless given a configuration.
///
/// # Errors
/// [`TransportError::Tls`] when a root is unusable or none is left.
#[cfg(feature = "rustls")]
pub fn rustls_config(roots: &TlsRoots) -> Result<rustls::ClientConfig, TransportError> {
    let mut store = rustls::RootCertStore::empty();
    match roots.certificates()? {
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(certs) => {
            for der in certs {
                store
                    .add(rustls_pki_types::CertificateDer::from(der))
                    .map_err(|_| TransportError::Tls("an unusable root certificate"))?;
            }
        }
    }
    if store.is_empty() {
        return Err(TransportError::Tls("no usable root certificate"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| TransportError::Tls("no TLS version"))?
        .with_root_certificates(store)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bundles_are_parsed_or_refused() {
        assert!(matches!(
            TlsRoots::from_pem(b"no pem here"),
            Err(TransportError::Tls(_))
        ));
        let bad = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(TlsRoots::from_pem(bad).is_err());
        let one = b"-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";
        assert_eq!(
            TlsRoots::from_pem(one).unwrap(),
            TlsRoots::Custom(vec![vec![0u8, 1, 2]].into())
        );
    }
}
