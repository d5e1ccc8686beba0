//! Client configuration and its validation.
//!
//! A [`Config`] can only be built valid: the issuer is an absolute `https` URL (or `http` on a
//! loopback host), the client id is printable text, a redirect URI is `https`, loopback `http`
//! or a private-use `reverse.dns:/path` scheme (RFC 8252 §7.1), and the clock leeway is at most
//! 300 seconds.

use crate::error::ConfigError;
use crate::jose::AlgorithmSet;
use std::fmt;
use url::{Host, Url};

/// Default seconds before expiry at which `create_agent` refreshes (as the Python SDK).
pub const DEFAULT_REFRESH_BUFFER: u64 = 60;
/// Default clock leeway in seconds for `exp`, `nbf`, `iat`.
pub const DEFAULT_LEEWAY: u64 = 60;
/// Largest accepted clock leeway in seconds.
pub const MAX_LEEWAY: u64 = 300;

/// How the client authenticates at the token, revocation and introspection endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1). The default with a secret.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body (what the Python SDK sends).
    ClientSecretPost,
    /// A public client: `client_id` in the body, no secret (PKCE protects the code).
    None,
}

/// A validated client configuration. Build it with [`Config::builder`].
#[derive(Clone)]
pub struct Config {
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<String>,
    pub(crate) auth: ClientAuth,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) resources: Vec<String>,
    pub(crate) refresh_buffer: u64,
    pub(crate) leeway: u64,
    pub(crate) algorithms: AlgorithmSet,
    pub(crate) trusted_audiences: Vec<String>,
    pub(crate) auto_refresh: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("auth", &self.auth)
            .field("redirect_uri", &self.redirect_uri)
            .field("resources", &self.resources)
            .field("refresh_buffer", &self.refresh_buffer)
            .field("leeway", &self.leeway)
            .field("algorithms", &self.algorithms)
            .field("trusted_audiences", &self.trusted_audiences)
            .field("auto_refresh", &self.auto_refresh)
            .finish()
    }
}

impl Config {
    /// Starts a configuration for `client_id` at `issuer` (one trailing `/` is stripped).
    pub fn builder(issuer: impl Into<String>, client_id: impl Into<String>) -> ConfigBuilder {
        ConfigBuilder {
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret: None,
            auth: None,
            redirect_uri: None,
            resources: Vec::new(),
            refresh_buffer: DEFAULT_REFRESH_BUFFER,
            leeway: DEFAULT_LEEWAY,
            algorithms: AlgorithmSet::ALL,
            trusted_audiences: Vec::new(),
            auto_refresh: true,
        }
    }

    /// The issuer, as configured without a trailing slash. After discovery the client compares
    /// `iss` with the discovered value instead (see [`crate::ProviderMetadata`]).
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The client id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Whether a client secret is configured (the secret itself is never exposed).
    #[must_use]
    pub fn has_client_secret(&self) -> bool {
        self.client_secret.is_some()
    }

    /// The client authentication method.
    #[must_use]
    pub fn client_auth(&self) -> ClientAuth {
        self.auth
    }

    /// The redirect URI, if configured.
    #[must_use]
    pub fn redirect_uri(&self) -> Option<&str> {
        self.redirect_uri.as_deref()
    }

    /// Default RFC 8707 resource indicators.
    #[must_use]
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// Seconds before expiry at which `create_agent` refreshes.
    #[must_use]
    pub fn refresh_buffer(&self) -> u64 {
        self.refresh_buffer
    }

    /// Clock leeway in seconds.
    #[must_use]
    pub fn leeway(&self) -> u64 {
        self.leeway
    }

    /// Whether `create_agent` refreshes by itself.
    #[must_use]
    pub fn auto_refresh(&self) -> bool {
        self.auto_refresh
    }

    /// The signing algorithms this client accepts (before intersecting with the provider's).
    #[must_use]
    pub fn algorithms(&self) -> AlgorithmSet {
        self.algorithms
    }

    /// Additional audiences accepted in ID tokens.
    #[must_use]
    pub fn trusted_audiences(&self) -> &[String] {
        &self.trusted_audiences
    }
}

/// Builder for [`Config`]; `build` validates everything.
#[derive(Clone)]
#[must_use]
pub struct ConfigBuilder {
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    auth: Option<ClientAuth>,
    redirect_uri: Option<String>,
    resources: Vec<String>,
    refresh_buffer: u64,
    leeway: u64,
    algorithms: AlgorithmSet,
    trusted_audiences: Vec<String>,
    auto_refresh: bool,
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ConfigBuilder {
    /// A confidential client's secret. Authentication defaults to `client_secret_basic`.
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// The client authentication method (default: `client_secret_basic` with a secret, `none`
    /// without).
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// The redirect URI registered for this client.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// Default RFC 8707 resource indicators for authorization and code exchange.
    pub fn resources<I, S>(mut self, resources: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.resources = resources.into_iter().map(Into::into).collect();
        self
    }

    /// Seconds before expiry at which `create_agent` refreshes (default 60).
    pub fn refresh_buffer(mut self, secs: u64) -> Self {
        self.refresh_buffer = secs;
        self
    }

    /// Clock leeway for `exp`, `nbf`, `iat` (default 60, at most 300).
    pub fn leeway(mut self, secs: u64) -> Self {
        self.leeway = secs;
        self
    }

    /// Pins the accepted signing algorithms (intersected with ES256, EdDSA, RS256, PS256 and with
    /// what the provider advertises).
    pub fn algorithms(mut self, algorithms: AlgorithmSet) -> Self {
        self.algorithms = algorithms;
        self
    }

    /// Extra audiences an ID token may carry besides our client id.
    pub fn trusted_audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.trusted_audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// Whether `create_agent` refreshes by itself (default true).
    pub fn auto_refresh(mut self, on: bool) -> Self {
        self.auto_refresh = on;
        self
    }

    /// Validates and builds the configuration.
    pub fn build(self) -> Result<Config, ConfigError> {
        let issuer = validate_issuer(&self.issuer)?;
        if !is_printable(&self.client_id) {
            return Err(ConfigError::ClientId);
        }
        if let Some(secret) = &self.client_secret {
            if secret.is_empty() {
                return Err(ConfigError::ClientSecret);
            }
        }
        let auth = match (self.auth, self.client_secret.is_some()) {
            (Some(ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost), false) => {
                return Err(ConfigError::SecretRequired);
            }
            (Some(auth), _) => auth,
            (None, true) => ClientAuth::ClientSecretBasic,
            (None, false) => ClientAuth::None,
        };
        if let Some(uri) = &self.redirect_uri {
            validate_redirect_uri(uri).map_err(ConfigError::RedirectUri)?;
        }
        for r in &self.resources {
            validate_resource(r)?;
        }
        if self.leeway > MAX_LEEWAY {
            return Err(ConfigError::Leeway);
        }
        let algorithms = self.algorithms.intersect(AlgorithmSet::ALL);
        if algorithms.is_empty() {
            return Err(ConfigError::NoAlgorithm);
        }
        Ok(Config {
            issuer,
            client_id: self.client_id,
            client_secret: self.client_secret,
            auth,
            redirect_uri: self.redirect_uri,
            resources: self.resources,
            refresh_buffer: self.refresh_buffer,
            leeway: self.leeway,
            algorithms,
            trusted_audiences: self.trusted_audiences,
            auto_refresh: self.auto_refresh,
        })
    }
}

/// Non-empty, no control characters, no whitespace.
pub(crate) fn is_printable(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// Whether a URL's host is a loopback host (`127.0.0.0/8`, `[::1]`, `localhost`).
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Why a URL with a non-ASCII host is refused.
pub(crate) const NON_ASCII_HOST: &str =
    "host must be ASCII: write an internationalized domain name in its `xn--` form";

/// Refuses an `http`/`https` URL whose host, as written, is not plain ASCII: a non-ASCII
/// character or a percent-escape (which the URL parser would decode into the host). Hosts of
/// issuers, endpoints, redirect URIs and resource indicators must be ASCII; an internationalized
/// domain name is accepted in its `xn--` (Punycode) form. We decide this ourselves, before the
/// URL parser, so the rule is the same whichever Unicode back end `idna` has in the
/// application (see the `url-ascii-only` feature). Other schemes have opaque hosts (no IDNA).
pub(crate) fn check_ascii_host(raw: &str) -> Result<(), &'static str> {
    let Some((scheme, rest)) = raw.split_once(':') else {
        return Ok(());
    };
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return Ok(());
    }
    // As the URL parser does for special schemes: any number of `/` or `\` before the
    // authority (`https:host` is `https://host`), which ends at `/`, `\`, `?` or `#`.
    let rest = rest.trim_start_matches(['/', '\\']);
    let authority = rest.split(['/', '\\', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.bytes().any(|b| !b.is_ascii() || b == b'%') {
        return Err(NON_ASCII_HOST);
    }
    Ok(())
}

fn validate_issuer(raw: &str) -> Result<String, ConfigError> {
    if !is_printable(raw) {
        return Err(ConfigError::Issuer(
            "empty, or has whitespace or control characters",
        ));
    }
    check_ascii_host(raw).map_err(ConfigError::Issuer)?;
    let trimmed = raw.strip_suffix('/').unwrap_or(raw);
    let url = Url::parse(trimmed).map_err(|_| ConfigError::Issuer("not an absolute URL"))?;
    check_https_or_loopback(&url).map_err(ConfigError::Issuer)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::Issuer("must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::Issuer("must not have user information"));
    }
    Ok(trimmed.to_owned())
}

/// `https`, or `http` on a loopback host.
pub(crate) fn check_https_or_loopback(url: &Url) -> Result<(), &'static str> {
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err("http is only allowed for loopback hosts"),
        _ => Err("scheme must be https"),
    }
}

/// The redirect-URI rules (shared with post-logout redirect URIs).
pub(crate) fn validate_redirect_uri(raw: &str) -> Result<Url, &'static str> {
    if !is_printable(raw) {
        return Err("empty, or has whitespace or control characters");
    }
    check_ascii_host(raw)?;
    let url = Url::parse(raw).map_err(|_| "not an absolute URI")?;
    if url.fragment().is_some() || raw.contains('#') {
        return Err("must not have a fragment");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not have user information");
    }
    match url.scheme() {
        "https" => {
            let host = url.host_str().ok_or("https redirect URI needs a host")?;
            if host.contains('*') {
                return Err("wildcard hosts are not allowed");
            }
            Ok(url)
        }
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err("http is only allowed for loopback hosts"),
        scheme if scheme.contains('.') => {
            // Private-use scheme (RFC 8252 §7.1): `com.example.app:/path`, no authority.
            if raw[scheme.len()..].starts_with("://") || url.host().is_some() {
                return Err("private-use scheme URIs take a path, not a host (`rev.dns:/path`)");
            }
            if !url.path().starts_with('/') {
                return Err("private-use scheme URIs need an absolute path");
            }
            Ok(url)
        }
        _ => Err("scheme must be https, loopback http or a reverse-DNS private-use scheme"),
    }
}

/// RFC 8707 §2: an absolute URI without a fragment.
pub(crate) fn validate_resource(raw: &str) -> Result<(), ConfigError> {
    if !is_printable(raw) || raw.contains('#') || check_ascii_host(raw).is_err() {
        return Err(ConfigError::Resource);
    }
    Url::parse(raw)
        .map(|_| ())
        .map_err(|_| ConfigError::Resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(issuer: &str) -> Result<Config, ConfigError> {
        Config::builder(issuer, "client_1").build()
    }

    #[test]
    fn issuer_rules() {
        let ok = [
            (
                "https://idp.authpi.com/i_abc",
                "https://idp.authpi.com/i_abc",
            ),
            (
                "https://idp.authpi.com/i_abc/",
                "https://idp.authpi.com/i_abc",
            ),
            ("http://127.0.0.1:8080/i_x", "http://127.0.0.1:8080/i_x"),
            ("http://localhost:3000", "http://localhost:3000"),
            ("http://[::1]:3000/i", "http://[::1]:3000/i"),
        ];
        for (raw, expected) in ok {
            assert_eq!(
                build(raw).map(|c| c.issuer).as_deref(),
                Ok(expected),
                "{raw}"
            );
        }
        let bad = [
            "",
            "idp.authpi.com",
            "/i_abc",
            "http://idp.authpi.com/i_abc",
            "ftp://idp.authpi.com",
            "https://idp.authpi.com/i_abc?x=1",
            "https://idp.authpi.com/i_abc#f",
            "https://user:pw@idp.authpi.com/i",
            " https://idp.authpi.com/i",
            "https://idp.authpi.com/i\n",
        ];
        for raw in bad {
            assert!(matches!(build(raw), Err(ConfigError::Issuer(_))), "{raw:?}");
        }
    }

    #[test]
    fn redirect_uri_rules() {
        let ok = [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?x=1",
            "http://127.0.0.1:53211/callback",
            "http://127.0.0.1/callback",
            "http://[::1]:8080/cb",
            "http://localhost:8080/cb",
            "com.example.app:/callback",
        ];
        for uri in ok {
            assert!(validate_redirect_uri(uri).is_ok(), "{uri}");
        }
        let bad = [
            "",
            "/callback",
            "http://app.example.com/callback",
            "https://app.example.com/cb#frag",
            "https://app.example.com/cb#",
            "https://user@app.example.com/cb",
            "https://*.example.com/cb",
            "https://app.example.com/c b",
            "https://app.example.com/cb\t",
            "com.example.app://callback",
            "myapp:/callback",
            "javascript:alert(1)",
        ];
        for uri in bad {
            assert!(validate_redirect_uri(uri).is_err(), "{uri:?}");
        }
    }

    #[test]
    fn client_auth_defaults_and_secret_rules() {
        let c = Config::builder("https://idp.authpi.com/i_a", "c")
            .build()
            .unwrap();
        assert_eq!(c.client_auth(), ClientAuth::None);
        let c = Config::builder("https://idp.authpi.com/i_a", "c")
            .client_secret("s")
            .build()
            .unwrap();
        assert_eq!(c.client_auth(), ClientAuth::ClientSecretBasic);
        let e = Config::builder("https://idp.authpi.com/i_a", "c")
            .client_auth(ClientAuth::ClientSecretPost)
            .build()
            .unwrap_err();
        assert_eq!(e, ConfigError::SecretRequired);
        let e = Config::builder("https://idp.authpi.com/i_a", "c")
            .client_secret("")
            .build()
            .unwrap_err();
        assert_eq!(e, ConfigError::ClientSecret);
        let e = Config::builder("https://idp.authpi.com/i_a", "")
            .build()
            .unwrap_err();
        assert_eq!(e, ConfigError::ClientId);
    }

    #[test]
    fn leeway_is_capped() {
        let b = || Config::builder("https://idp.authpi.com/i_a", "c");
        assert_eq!(b().leeway(300).build().unwrap().leeway(), 300);
        assert_eq!(b().leeway(301).build().unwrap_err(), ConfigError::Leeway);
    }

    #[test]
    fn secret_never_in_debug() {
        let c = Config::builder("https://idp.authpi.com/i_a", "c")
            .client_secret("TOPSECRET")
            .build()
            .unwrap();
        assert!(!format!("{c:?}").contains("TOPSECRET"));
    }

    /// Hosts must be ASCII, whichever `idna` back end the application links: an
    /// internationalized domain name is accepted in its `xn--` form only.
    #[test]
    fn non_ascii_hosts_are_refused_and_xn_forms_accepted() {
        // (URL, host ASCII as written)
        let table = [
            ("https://xn--bcher-kva.example/i_a", true),
            ("https://XN--BCHER-KVA.example/i_a", true),
            ("https://idp.example.com/b\u{fc}cher", true), // non-ASCII path, ASCII host
            ("https://b\u{fc}cher.example/i_a", false),
            ("https://B\u{dc}CHER.example", false),
            ("https://b%C3%BCcher.example/i_a", false), // percent-escaped non-ASCII host
            ("https:b\u{fc}cher.example/i_a", false),   // no slashes: still the host
            ("https:\\\\b\u{fc}cher.example/i_a", false), // backslashes, as the URL parser reads them
            ("https://\u{430}pp.example.com/cb", false),  // Cyrillic look-alike
            ("https://idp.example.com:443/i", true),
            ("https://\u{ff41}pp.example.com/cb", false), // fullwidth letter
        ];
        for (url, ascii) in table {
            let expected = if ascii { Ok(()) } else { Err(NON_ASCII_HOST) };
            assert_eq!(check_ascii_host(url), expected, "{url}");
            if !ascii {
                assert_eq!(
                    build(url).unwrap_err(),
                    ConfigError::Issuer(NON_ASCII_HOST),
                    "issuer {url}"
                );
                assert_eq!(
                    validate_redirect_uri(url).unwrap_err(),
                    NON_ASCII_HOST,
                    "redirect {url}"
                );
                let e = Config::builder("https://idp.authpi.com/i_a", "c")
                    .redirect_uri(url)
                    .build()
                    .unwrap_err();
                assert_eq!(e, ConfigError::RedirectUri(NON_ASCII_HOST), "{url}");
                let e = Config::builder("https://idp.authpi.com/i_a", "c")
                    .resources([url])
                    .build()
                    .unwrap_err();
                assert_eq!(e, ConfigError::Resource, "resource {url}");
            }
        }
        let c = build("https://xn--bcher-kva.example/i_a").unwrap();
        assert_eq!(c.issuer, "https://xn--bcher-kva.example/i_a");
        assert!(validate_redirect_uri("https://xn--bcher-kva.example/cb").is_ok());
        // Private-use schemes have no IDNA host: a non-ASCII path is the URL parser's business.
        assert!(validate_redirect_uri("com.example.app:/b\u{fc}cher").is_ok());
    }

    /// Discovered endpoints (and the discovered issuer) follow the same rule.
    #[test]
    fn discovery_refuses_non_ascii_endpoint_hosts() {
        let iss = "https://idp.authpi.com/i_abc";
        let doc = |name: &str, value: &str| {
            let mut doc = serde_json::json!({
                "issuer": iss,
                "authorization_endpoint": format!("{iss}/authorize"),
                "token_endpoint": format!("{iss}/token"),
                "jwks_uri": format!("{iss}/jwks.json"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "code_challenge_methods_supported": ["S256"],
            });
            doc[name] = serde_json::Value::from(value);
            http::Response::builder()
                .status(200)
                .body(serde_json::to_vec(&doc).unwrap())
                .unwrap()
        };
        let now = crate::UnixTime(1_767_312_000);
        let ok = doc("token_endpoint", "https://xn--bcher-kva.example/token");
        let meta = crate::ProviderMetadata::from_response(&ok, iss, now).unwrap();
        assert_eq!(
            meta.token_endpoint().as_str(),
            "https://xn--bcher-kva.example/token"
        );
        for name in [
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "userinfo_endpoint",
        ] {
            let bad = doc(name, "https://b\u{fc}cher.example/x");
            assert_eq!(
                crate::ProviderMetadata::from_response(&bad, iss, now).unwrap_err(),
                crate::error::DiscoveryError::Endpoint(match name {
                    "authorization_endpoint" => "authorization_endpoint",
                    "token_endpoint" => "token_endpoint",
                    "jwks_uri" => "jwks_uri",
                    _ => "userinfo_endpoint",
                }),
                "{name}"
            );
        }
        let bad = doc("issuer", "https://b\u{fc}cher.example/i_abc");
        assert_eq!(
            crate::ProviderMetadata::from_response(&bad, iss, now).unwrap_err(),
            crate::error::DiscoveryError::Endpoint("issuer")
        );
    }

    #[test]
    fn resources_must_be_absolute_uris_without_fragment() {
        let b = || Config::builder("https://idp.authpi.com/i_a", "c");
        assert!(b().resources(["https://api.example.com"]).build().is_ok());
        assert_eq!(
            b().resources(["api"]).build().unwrap_err(),
            ConfigError::Resource
        );
        assert_eq!(
            b().resources(["https://api.example.com#x"])
                .build()
                .unwrap_err(),
            ConfigError::Resource
        );
    }
}
