//! # authpi-idp-reqwest
//!
//! [`IdpClient`]: the async AuthPI / OpenID Connect client over [reqwest](https://docs.rs/reqwest)
//! 0.13 with rustls (ring; no OpenSSL). Redirects are never followed, every request has a total
//! deadline (30 s by default), response bodies are capped while they are read (1 MiB by
//! default), connections are pooled by reqwest, proxies come from the environment
//! (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, as reqwest reads them), and `User-Agent` is
//! `authpi-idp-rs/<version> (reqwest)`. TLS trusts the webpki roots unless
//! [`TransportOptions::roots`] says otherwise (the OS store, a private CA) or you hand over a
//! `rustls::ClientConfig` ([`ReqwestTransport::with_tls_config`]). The client surface,
//! single-flight refresh and the key cache come from [`authpi_idp_async::AsyncClient`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use authpi_idp::{AuthorizationRequest, Config};
//! let config = Config::builder("https://idp.authpi.com/i_demo", "client_web")
//!     .client_secret("secret_web")
//!     .redirect_uri("https://app.example.com/callback")
//!     .build()?;
//! let idp = authpi_idp_reqwest::IdpClient::new(config)?;
//! let login = idp.create_authorization_url(&AuthorizationRequest::new(["openid", "email"]))?;
//! // redirect the browser to login.url; on the callback:
//! let agent = idp.exchange_callback("https://app.example.com/callback?code=…&state=…", &login).await?;
//! # Ok(()) }
//! ```
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

pub use authpi_idp_async::{
    AsyncClient, CreateAgentOptions, DefaultTransport, Error, TlsRoots, Transport, TransportError,
    TransportOptions,
};

use authpi_idp_async::{append_capped, check_content_length, user_agent};

/// The async client over reqwest.
pub type IdpClient = AsyncClient<ReqwestTransport>;

/// A [`Transport`] over a `reqwest::Client` (no redirects, deadline, body cap).
#[derive(Clone, Debug)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    options: TransportOptions,
}

impl ReqwestTransport {
    /// A transport with its own connection pool.
    ///
    /// # Errors
    /// The TLS roots are unusable, or reqwest could not build its client.
    pub fn new(options: TransportOptions) -> Result<Self, TransportError> {
        Self::from_builder(reqwest::Client::builder(), options)
    }

    /// A transport over a `reqwest::ClientBuilder` you configured (proxies, pool, DNS, …).
    /// Whatever it says, redirects are switched off (a followed 307/308 would replay the client
    /// secret, the code or the refresh token), the `User-Agent` is this adapter's, and TLS is
    /// rustls with [`TransportOptions::roots`]; the deadline and body cap of `options` apply
    /// per request.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn from_builder(
        builder: reqwest::ClientBuilder,
        options: TransportOptions,
    ) -> Result<Self, TransportError> {
        let tls = authpi_idp_async::rustls_config(&options.roots)?;
        Self::build(builder, tls, options)
    }

    /// [`Self::from_builder`] with a complete rustls configuration of yours (client
    /// certificates, a custom verifier, …) instead of [`TransportOptions::roots`].
    ///
    /// # Errors
    /// reqwest could not build its client.
    pub fn with_tls_config(
        builder: reqwest::ClientBuilder,
        tls: rustls::ClientConfig,
        options: TransportOptions,
    ) -> Result<Self, TransportError> {
        Self::build(builder, tls, options)
    }

    fn build(
        builder: reqwest::ClientBuilder,
        tls: rustls::ClientConfig,
        options: TransportOptions,
    ) -> Result<Self, TransportError> {
        let client = builder
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.timeout)
            .user_agent(user_agent("reqwest"))
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(TransportError::connect)?;
        Ok(ReqwestTransport { client, options })
    }

    async fn send_inner(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let mut request =
            reqwest::Request::try_from(request).map_err(|_| TransportError::InvalidRequest)?;
        *request.timeout_mut() = Some(self.options.timeout);
        let mut response = self.client.execute(request).await.map_err(map_error)?;
        let max = self.options.max_response_bytes;
        check_content_length(response.headers(), max)?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(map_error)? {
            append_capped(&mut body, &chunk, max)?;
        }
        let mut out = http::Response::new(body);
        *out.status_mut() = response.status();
        *out.version_mut() = response.version();
        *out.headers_mut() = std::mem::take(response.headers_mut());
        Ok(out)
    }
}

fn map_error(e: reqwest::Error) -> TransportError {
    if e.is_timeout() {
        TransportError::Timeout
    } else if e.is_connect() {
        TransportError::connect(e.without_url())
    } else {
        TransportError::io(e.without_url())
    }
}

impl Transport for ReqwestTransport {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> impl Future<Output = Result<http::Response<Vec<u8>>, TransportError>> + Send {
        self.send_inner(request)
    }
}

impl DefaultTransport for ReqwestTransport {
    fn with_options(options: TransportOptions) -> Result<Self, TransportError> {
        Self::new(options)
    }
}
