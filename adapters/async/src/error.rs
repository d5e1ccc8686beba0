//! The adapters' error type.

use std::fmt;
use std::sync::Arc;

/// A boxed error from a caller's callback or an HTTP library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request did not produce a response. Never contains a request body, header or token:
/// the underlying library error is kept only as [`std::error::Error::source`] of
/// [`TransportError::Connect`] / [`TransportError::Io`] (HTTP libraries report the URL at
/// most, and back-channel URLs carry no secrets).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TransportError {
    /// The total deadline passed.
    Timeout,
    /// The response body was larger than the cap (it was not read past the cap).
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// No connection (DNS, TCP, TLS).
    Connect(Arc<dyn std::error::Error + Send + Sync>),
    /// The connection failed while sending or receiving.
    Io(Arc<dyn std::error::Error + Send + Sync>),
    /// The request could not be expressed for this HTTP library.
    InvalidRequest,
    /// TLS could not be set up (unusable roots or configuration); names the problem, never a
    /// certificate.
    Tls(&'static str),
    /// Another caller's request, whose response this call was waiting for (single-flight),
    /// was cancelled before a response came back.
    Abandoned,
}

impl TransportError {
    /// Wraps a connection failure.
    pub fn connect(e: impl Into<BoxError>) -> Self {
        TransportError::Connect(Arc::from(e.into()))
    }

    /// Wraps an I/O failure.
    pub fn io(e: impl Into<BoxError>) -> Self {
        TransportError::Io(Arc::from(e.into()))
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Timeout => f.write_str("the request timed out"),
            TransportError::TooLarge { limit } => {
                write!(f, "the response body exceeds the {limit}-byte cap")
            }
            TransportError::Connect(_) => f.write_str("could not connect to the provider"),
            TransportError::Io(_) => f.write_str("the connection to the provider failed"),
            TransportError::InvalidRequest => f.write_str("the request could not be sent"),
            TransportError::Tls(what) => write!(f, "TLS setup failed: {what}"),
            TransportError::Abandoned => {
                f.write_str("the shared request was cancelled before it completed")
            }
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TransportError::Connect(e) | TransportError::Io(e) => Some(&**e),
            _ => None,
        }
    }
}

/// Everything an adapter call can fail with.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The core rejected something (configuration, provider answer, token, claim …).
    Idp(authpi_idp::Error),
    /// The request did not get a response.
    Transport(TransportError),
    /// The caller's `on_refresh` callback failed: the rotated tokens were not persisted. The
    /// old refresh token is already spent, so the rotated set is carried here (its `Debug`
    /// is redacted): store it once the store is back ([`Error::rotated_tokens`]). Within the
    /// refresh grace period, a retry with the old token set also gets it again.
    Callback {
        /// The callback's error.
        source: BoxError,
        /// The rotated token set that was not persisted.
        tokens: Option<Box<authpi_idp::TokenSet>>,
    },
    /// The operating system's random number generator failed.
    Rng,
}

impl Error {
    /// The error code the Python SDK would report: the core's [`authpi_idp::Error::code`], or
    /// `transport_error`, `callback_error`, `rng_error`.
    #[must_use]
    pub fn code(&self) -> &str {
        match self {
            Error::Idp(e) => e.code(),
            Error::Transport(_) => "transport_error",
            Error::Callback { .. } => "callback_error",
            Error::Rng => "rng_error",
        }
    }

    /// Seconds to wait before trying again, when a 429/503 said so.
    #[must_use]
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::Idp(e) => e.retry_after(),
            _ => None,
        }
    }

    /// The HTTP status of the provider's answer, when the error came from one.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Idp(e) => e.status(),
            _ => None,
        }
    }

    /// True when the session is over (see [`authpi_idp::Error::is_session_over`]).
    #[must_use]
    pub fn is_session_over(&self) -> bool {
        matches!(self, Error::Idp(e) if e.is_session_over())
    }

    /// The rotated token set an `on_refresh` failure left unpersisted ([`Error::Callback`]).
    #[must_use]
    pub fn rotated_tokens(&self) -> Option<&authpi_idp::TokenSet> {
        match self {
            Error::Callback { tokens, .. } => tokens.as_deref(),
            _ => None,
        }
    }

    /// The core error, if this is one.
    #[must_use]
    pub fn as_idp(&self) -> Option<&authpi_idp::Error> {
        match self {
            Error::Idp(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Idp(e) => fmt::Display::fmt(e, f),
            Error::Transport(e) => fmt::Display::fmt(e, f),
            Error::Callback { .. } => f.write_str("the on_refresh callback failed"),
            Error::Rng => f.write_str("the operating system's random number generator failed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Idp(e) => Some(e),
            Error::Transport(e) => Some(e),
            Error::Callback { source, .. } => Some(&**source),
            Error::Rng => None,
        }
    }
}

impl From<authpi_idp::Error> for Error {
    fn from(e: authpi_idp::Error) -> Self {
        Error::Idp(e)
    }
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        Error::Transport(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages_carry_no_inner_text() {
        let secret = "tok_SECRET";
        let e = Error::Transport(TransportError::io(std::io::Error::other(secret)));
        assert_eq!(e.code(), "transport_error");
        assert!(!e.to_string().contains(secret));
        let e = Error::Callback {
            source: secret.into(),
            tokens: None,
        };
        assert_eq!(e.code(), "callback_error");
        assert!(!e.to_string().contains(secret));
        assert!(Error::from(authpi_idp::Error::TokenExpired).code() == "token_expired");
    }
}
