//! # authpi-idp-async
//!
//! The async driver of [`authpi_idp`]: [`AsyncClient`] runs the core's sans-IO operations over
//! any [`Transport`] (an `http::Request<Vec<u8>>` in, an `http::Response<Vec<u8>>` out) and
//! adds what a long-lived client needs and a state machine cannot know about:
//!
//! - one shared [`KeySet`](authpi_idp::KeySet) cache, updated on every
//!   [`Step::KeysRefreshed`](authpi_idp::Step::KeysRefreshed);
//! - **single-flight refresh** (DESIGN §6): concurrent operations whose refresh requests are
//!   interchangeable (same refresh token, keyed by its hash
//!   ([`RequestKind::Refresh`](authpi_idp::RequestKind::Refresh)) *and* a hash of the whole
//!   request, so a different scope, resource or client never shares) send one request. The
//!   leader publishes the response the moment it arrives; every caller feeds it into its own
//!   operation and runs its own `on_refresh` (storing is idempotent), so nothing is ever
//!   shared as "persisted" and a failing, slow or panicking callback strands nobody. A
//!   follower waits at most [`FlightOptions::wait`] ([`TransportError::Timeout`]). With a
//!   [`Spawn`] hook (tokio by default in the reqwest and hyper adapters), `create_agent` and
//!   `refresh` run detached, so a caller whose future is dropped does not take the rotated
//!   tokens with it. A successful refresh stays available for a grace period
//!   ([`DEFAULT_REFRESH_GRACE`]) so a request that arrives with the old token set just after
//!   the rotation gets the rotated result instead of replaying a dead refresh token; a timer
//!   removes it afterwards even without traffic, the store is bounded, and
//!   [`AsyncClient::revoke_token`] purges every flight that spent or produced the token;
//! - **single-flight JWKS**: concurrent JWKS fetches share one request; a JWKS follower whose
//!   leader was cancelled takes the (idempotent) GET over;
//! - TLS trust ([`TlsRoots`]: webpki, the OS store, a private CA) and optional `tracing`
//!   spans (feature `tracing`; never a secret);
//! - the OS random number generator for authorization URLs, and the system clock.
//!
//! No protocol logic lives here: no form bodies, no JSON, no claim checks. Nothing is retried:
//! a token request must never be sent twice, and the others are cheap for the caller to repeat
//! ([`Error::retry_after`] tells when a 429/503 asked for a pause).
//!
//! Ready-made transports: `authpi-idp-reqwest` and `authpi-idp-hyper` (and, blocking,
//! `authpi-idp-ureq`).
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod client;
#[doc(hidden)]
pub mod driver;
mod error;
mod flight;
mod tls;

pub use client::{
    AsyncClient, BlockingCreateAgentOptions, BlockingOnRefresh, CreateAgentOptions, OnRefresh,
    OnRefreshError, RefreshOptions,
};
pub use driver::FlightOptions;
pub use error::{BoxError, Error, TransportError};
pub use flight::{DEFAULT_FOLLOW_TIMEOUT, DEFAULT_REFRESH_GRACE};
pub use tls::TlsRoots;
#[cfg(feature = "rustls")]
pub use tls::rustls_config;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default total deadline of one request (connect, send, receive the whole body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on a response body.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Version of the adapters, sent in the `User-Agent`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Moves one request over HTTP and returns the whole response.
///
/// Implementations must not follow redirects, must enforce a total deadline and cap the
/// response body while reading it ([`TransportError::TooLarge`], never buffering past the
/// cap), and must never retry on their own.
pub trait Transport: Send + Sync + 'static {
    /// Sends `request` and reads the complete response.
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> impl Future<Output = Result<http::Response<Vec<u8>>, TransportError>> + Send;
}

/// A task to run to completion on its own.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs a task detached from the caller's future: the spawn hook of this runtime-agnostic
/// crate.
///
/// [`AsyncClient::create_agent`] and [`AsyncClient::refresh`] run their operation (the refresh
/// request, the validation and `on_refresh`) as such a task and await its result, so a caller
/// whose future is dropped (a client disconnect, a `timeout`) does not take the rotated tokens
/// with it: the request and its persist complete, followers get the response, and a retry
/// within the grace period gets the rotated set. Without a spawner the operation runs inside
/// the caller's future and is cancelled with it.
///
/// With the `tokio` feature (on in `authpi-idp-reqwest` and `authpi-idp-hyper`),
/// [`TokioSpawn`] is the default.
pub trait Spawn: Send + Sync + 'static {
    /// Starts `task`, or gives it back when it cannot be spawned (it then runs in the caller's
    /// future).
    ///
    /// # Errors
    /// The task, when there is no executor to run it.
    fn spawn(&self, task: Task) -> Result<(), Task>;
}

/// Spawns on the current tokio runtime (`tokio::runtime::Handle::try_current`); outside a
/// runtime, the task runs in the caller's future.
#[cfg(feature = "tokio")]
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioSpawn;

#[cfg(feature = "tokio")]
impl Spawn for TokioSpawn {
    fn spawn(&self, task: Task) -> Result<(), Task> {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                drop(handle.spawn(task));
                Ok(())
            }
            Err(_) => Err(task),
        }
    }
}

/// A transport that can build itself from [`TransportOptions`]; gives [`AsyncClient::new`],
/// [`AsyncClient::with_options`] and [`AsyncClient::discover`].
pub trait DefaultTransport: Transport + Sized {
    /// Builds the transport.
    ///
    /// # Errors
    /// The HTTP library could not be set up (e.g. TLS).
    fn with_options(options: TransportOptions) -> Result<Self, TransportError>;
}

/// Settings every transport honours.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportOptions {
    /// Total deadline per request (default [`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
    /// Largest response body accepted (default [`DEFAULT_MAX_RESPONSE_BYTES`]).
    pub max_response_bytes: usize,
    /// The TLS roots to trust (default: the compiled-in webpki roots).
    pub roots: TlsRoots,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            roots: TlsRoots::default(),
        }
    }
}

impl TransportOptions {
    /// The defaults: 30 s, 1 MiB.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the total deadline per request.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the TLS roots to trust ([`TlsRoots::Os`], [`TlsRoots::from_pem`] …).
    #[must_use]
    pub fn roots(mut self, roots: TlsRoots) -> Self {
        self.roots = roots;
        self
    }

    /// Sets the response body cap.
    #[must_use]
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }
}

/// `authpi-idp-rs/<version> (<adapter>)`.
#[must_use]
pub fn user_agent(adapter: &str) -> String {
    format!("authpi-idp-rs/{VERSION} ({adapter})")
}

/// The system clock as the core's [`UnixTime`](authpi_idp::UnixTime).
#[must_use]
pub fn system_now() -> authpi_idp::UnixTime {
    authpi_idp::UnixTime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

/// A CSPRNG seeded from the operating system, for one authorization URL.
///
/// # Errors
/// [`TransportError`] is not involved: a failing OS RNG yields [`Error::Rng`].
pub fn os_rng() -> Result<rand_chacha::ChaCha20Rng, Error> {
    use rand_core::{SeedableRng, TryRngCore};
    let mut seed = [0u8; 32];
    rand_core::OsRng
        .try_fill_bytes(&mut seed)
        .map_err(|_| Error::Rng)?;
    Ok(rand_chacha::ChaCha20Rng::from_seed(seed))
}

/// Appends at most `max - buf.len()` bytes of `chunk` to `buf`, or fails with
/// [`TransportError::TooLarge`] when the chunk does not fit: a helper for transports that read
/// bodies frame by frame.
///
/// # Errors
/// [`TransportError::TooLarge`] when `buf` would exceed `max`.
pub fn append_capped(buf: &mut Vec<u8>, chunk: &[u8], max: usize) -> Result<(), TransportError> {
    if buf.len().saturating_add(chunk.len()) > max {
        return Err(TransportError::TooLarge { limit: max });
    }
    buf.extend_from_slice(chunk);
    Ok(())
}

/// Fails early with [`TransportError::TooLarge`] when a response announces a `Content-Length`
/// above `max`.
///
/// # Errors
/// [`TransportError::TooLarge`].
pub fn check_content_length(headers: &http::HeaderMap, max: usize) -> Result<(), TransportError> {
    let announced = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match announced {
        Some(n) if n > max as u64 => Err(TransportError::TooLarge { limit: max }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_capped_stops_at_the_cap() {
        let mut buf = Vec::new();
        append_capped(&mut buf, &[0; 6], 10).unwrap();
        append_capped(&mut buf, &[0; 4], 10).unwrap();
        assert_eq!(buf.len(), 10);
        assert!(matches!(
            append_capped(&mut buf, &[0], 10),
            Err(TransportError::TooLarge { limit: 10 })
        ));
        assert_eq!(buf.len(), 10);
    }

    #[test]
    fn content_length_over_the_cap_is_refused() {
        for (value, ok) in [("10", true), ("11", false), ("junk", true), (" 9 ", true)] {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::CONTENT_LENGTH, value.parse().unwrap());
            assert_eq!(check_content_length(&h, 10).is_ok(), ok, "{value}");
        }
    }

    #[test]
    fn user_agent_names_the_adapter() {
        assert_eq!(
            user_agent("reqwest"),
            format!("authpi-idp-rs/{VERSION} (reqwest)")
        );
    }

    #[test]
    fn os_rng_gives_distinct_streams() {
        use rand_core::RngCore;
        let (mut a, mut b) = (os_rng().unwrap(), os_rng().unwrap());
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
