//! # authpi-idp-hyper
//!
//! [`IdpClient`]: the async AuthPI / OpenID Connect client over hyper 1 (hyper-util's pooled
//! legacy client) and hyper-rustls (ring; no OpenSSL), on tokio. Redirects are never followed
//! (hyper does not follow them), every request has a total deadline (30 s by default), bodies
//! are capped while read (1 MiB by default), and `User-Agent` is
//! `authpi-idp-rs/<version> (hyper)`. Proxies come from the environment as curl reads it
//! (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`; hyper-util's matcher): https goes
//! through a `CONNECT` tunnel (TLS end to end with the provider), http in absolute form.
//! [`HyperTransport::with_proxy`] takes an explicit matcher. TLS trusts the webpki roots unless
//! [`TransportOptions::roots`] says otherwise (the OS store, a private CA) or you hand over a
//! `rustls::ClientConfig` ([`HyperTransport::with_tls_config`]). The client surface, single-flight refresh and the key
//! cache come from [`authpi_idp_async::AsyncClient`].
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
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpStream;

/// The async client over hyper.
pub type IdpClient = AsyncClient<HyperTransport>;

/// A [`Transport`] over a pooled hyper client with rustls. Needs a tokio runtime (with time).
#[derive(Clone, Debug)]
pub struct HyperTransport {
    client: Client<HttpsConnector<ProxyConnector>, Full<Bytes>>,
    options: TransportOptions,
    user_agent: http::HeaderValue,
}

impl HyperTransport {
    /// A transport with its own connection pool (HTTP/1.1, https or loopback http), trusting
    /// [`TransportOptions::roots`].
    ///
    /// # Errors
    /// The TLS roots are unusable.
    pub fn new(options: TransportOptions) -> Result<Self, TransportError> {
        let tls = authpi_idp_async::rustls_config(&options.roots)?;
        Self::with_tls_config(tls, options)
    }

    /// A transport with a complete rustls configuration of yours (client certificates, a
    /// custom verifier, …) instead of [`TransportOptions::roots`].
    ///
    /// # Errors
    /// The user agent could not be encoded.
    pub fn with_tls_config(
        tls: rustls::ClientConfig,
        options: TransportOptions,
    ) -> Result<Self, TransportError> {
        Self::with_proxy(tls, Matcher::from_env(), options)
    }

    /// [`Self::with_tls_config`] with an explicit proxy matcher instead of the environment's
    /// (`Matcher::builder().all("http://proxy:3128").no("localhost").build()`).
    ///
    /// # Errors
    /// The user agent could not be encoded.
    pub fn with_proxy(
        tls: rustls::ClientConfig,
        proxy: Matcher,
        options: TransportOptions,
    ) -> Result<Self, TransportError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        let connector = ProxyConnector {
            http,
            proxy: Arc::new(proxy),
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new()).build(https);
        let user_agent = http::HeaderValue::try_from(user_agent("hyper"))
            .map_err(|_| TransportError::InvalidRequest)?;
        Ok(HyperTransport {
            client,
            options,
            user_agent,
        })
    }

    async fn exchange(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let mut request = request.map(|b| Full::new(Bytes::from(b)));
        request
            .headers_mut()
            .entry(http::header::USER_AGENT)
            .or_insert_with(|| self.user_agent.clone());
        let response = self.client.request(request).await.map_err(|e| {
            if e.is_connect() {
                TransportError::connect(e)
            } else {
                TransportError::io(e)
            }
        })?;
        let max = self.options.max_response_bytes;
        check_content_length(response.headers(), max)?;
        let (parts, mut incoming) = response.into_parts();
        let mut body = Vec::new();
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(TransportError::io)?;
            if let Some(data) = frame.data_ref() {
                append_capped(&mut body, data, max)?;
            }
        }
        Ok(http::Response::from_parts(parts, body))
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connects directly, through a `CONNECT` tunnel (https via a proxy) or to the proxy itself
/// (http via a proxy: the connection is marked proxied, so hyper sends absolute-form URIs).
#[derive(Clone, Debug)]
pub struct ProxyConnector {
    http: HttpConnector,
    proxy: Arc<Matcher>,
}

impl tower_service::Service<http::Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: http::Uri) -> Self::Future {
        let mut http = self.http.clone();
        let Some(intercept) = self.proxy.intercept(&dst) else {
            return Box::pin(async move { Ok(ProxyStream::direct(http.call(dst).await?)) });
        };
        if dst.scheme() == Some(&http::uri::Scheme::HTTPS) {
            let mut tunnel = Tunnel::new(intercept.uri().clone(), http);
            if let Some(auth) = intercept.basic_auth() {
                tunnel = tunnel.with_auth(auth.clone());
            }
            Box::pin(async move { Ok(ProxyStream::direct(tunnel.call(dst).await?)) })
        } else {
            let proxy = intercept.uri().clone();
            Box::pin(async move {
                Ok(ProxyStream {
                    io: http.call(proxy).await?,
                    proxied: true,
                })
            })
        }
    }
}

/// A TCP connection to the provider, a tunnel to it, or one to an HTTP proxy.
#[derive(Debug)]
pub struct ProxyStream {
    io: TokioIo<TcpStream>,
    proxied: bool,
}

impl ProxyStream {
    fn direct(io: TokioIo<TcpStream>) -> Self {
        ProxyStream { io, proxied: false }
    }
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl hyper::rt::Read for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl Transport for HyperTransport {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        tokio::time::timeout(self.options.timeout, self.exchange(request))
            .await
            .map_err(|_| TransportError::Timeout)?
    }
}

impl DefaultTransport for HyperTransport {
    fn with_options(options: TransportOptions) -> Result<Self, TransportError> {
        Self::new(options)
    }
}
