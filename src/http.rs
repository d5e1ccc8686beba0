//! Building back-channel requests and classifying error responses.
//!
//! Every request the core wants sent is an [`Outgoing`]: an `http::Request<Vec<u8>>` plus a
//! [`RequestKind`] that tells a driver what it is (so it can single-flight JWKS refetches and
//! refreshes of one refresh token, and never retry a token request).

use crate::config::{ClientAuth, Config};
use crate::error::{Endpoint, Error, OAuthError, RequestError, ResponseError};
use crate::json::{self, Members};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use std::fmt;
use url::Url;

/// What an [`Outgoing`] request is for.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestKind {
    /// OpenID Connect Discovery.
    Discovery,
    /// The provider's JWKS. Concurrent JWKS fetches for one provider may share one response.
    Jwks,
    /// A token request that spends an authorization code. Never retry it.
    AuthorizationCode,
    /// A refresh. Never retry it. Concurrent refreshes holding the same refresh token carry the
    /// same `token_hash` (SHA-256 of the refresh token) and must share one response, because
    /// the provider rotates the refresh token on first use.
    Refresh {
        /// SHA-256 of the refresh token, a key for single-flight (not the token itself).
        token_hash: [u8; 32],
    },
    /// A client-credentials token request.
    ClientCredentials,
    /// A UserInfo request.
    UserInfo,
    /// An RFC 7009 revocation request.
    Revocation,
    /// An RFC 7662 introspection request.
    Introspection,
    /// An RFC 8628 device authorization request (starts a device login).
    DeviceAuthorization,
    /// An RFC 8628 device access token request (a poll). Never retry it: the first success
    /// spends the device code.
    DeviceCode,
}

impl fmt::Debug for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestKind::Discovery => "Discovery",
            RequestKind::Jwks => "Jwks",
            RequestKind::AuthorizationCode => "AuthorizationCode",
            RequestKind::Refresh { .. } => "Refresh",
            RequestKind::ClientCredentials => "ClientCredentials",
            RequestKind::UserInfo => "UserInfo",
            RequestKind::Revocation => "Revocation",
            RequestKind::Introspection => "Introspection",
            RequestKind::DeviceAuthorization => "DeviceAuthorization",
            RequestKind::DeviceCode => "DeviceCode",
        })
    }
}

impl RequestKind {
    /// Whether sending this request twice could spend a one-time secret (code, refresh token)
    /// or change state at the provider: drivers must never retry these automatically.
    #[must_use]
    pub fn is_token_request(self) -> bool {
        matches!(
            self,
            RequestKind::AuthorizationCode
                | RequestKind::Refresh { .. }
                | RequestKind::ClientCredentials
                | RequestKind::DeviceCode
        )
    }
}

/// A request the core wants sent. Send `request` as is (no redirects followed) and hand the
/// response back to the operation.
pub struct Outgoing {
    /// What the request is for.
    pub kind: RequestKind,
    /// The request: method, URL, headers and body, complete.
    pub request: http::Request<Vec<u8>>,
}

impl fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Bodies and Authorization headers carry secrets: show the method and URL only
        // (query strings of back-channel requests never carry secrets).
        f.debug_struct("Outgoing")
            .field("kind", &self.kind)
            .field("method", self.request.method())
            .field("uri", self.request.uri())
            .finish_non_exhaustive()
    }
}

fn to_uri(url: &Url) -> Result<http::Uri, Error> {
    url.as_str()
        .parse::<http::Uri>()
        .map_err(|_| Error::from(RequestError::EndpointUri))
}

/// An `Authorization` value marked sensitive: `http`'s `Debug` prints `Sensitive` instead of
/// the credentials (and HTTP/2 stacks keep it out of HPACK tables). Every `Authorization`
/// header the core builds goes through here.
fn credentials(value: &str) -> Result<HeaderValue, Error> {
    let mut value =
        HeaderValue::from_str(value).map_err(|_| Error::from(RequestError::HeaderValue))?;
    value.set_sensitive(true);
    Ok(value)
}

/// A `GET` with `Accept: application/json` (and optional bearer token).
pub(crate) fn get(url: &Url, bearer: Option<&str>) -> Result<http::Request<Vec<u8>>, Error> {
    let mut b = http::Request::get(to_uri(url)?).header(ACCEPT, "application/json");
    if let Some(token) = bearer {
        b = b.header(AUTHORIZATION, credentials(&format!("Bearer {token}"))?);
    }
    b.body(Vec::new())
        .map_err(|_| Error::from(RequestError::HeaderValue))
}

/// A form `POST` to a client-authenticated endpoint (token, revocation, introspection).
pub(crate) fn form_post(
    url: &Url,
    config: &Config,
    params: &[(&str, &str)],
) -> Result<http::Request<Vec<u8>>, Error> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        form.append_pair(k, v);
    }
    let mut b = http::Request::post(to_uri(url)?)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT, "application/json");
    match (config.auth, config.client_secret.as_deref()) {
        (ClientAuth::ClientSecretBasic, Some(secret)) => {
            // RFC 6749 §2.3.1: both parts form-urlencoded before Base64.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let creds = format!("{}:{}", enc(&config.client_id), enc(secret));
            b = b.header(
                AUTHORIZATION,
                credentials(&format!("Basic {}", STANDARD.encode(creds)))?,
            );
        }
        (ClientAuth::ClientSecretPost, Some(secret)) => {
            form.append_pair("client_id", &config.client_id);
            form.append_pair("client_secret", secret);
        }
        _ => {
            form.append_pair("client_id", &config.client_id);
        }
    }
    b.body(form.finish().into_bytes())
        .map_err(|_| Error::from(RequestError::HeaderValue))
}

/// `Retry-After` as delta-seconds (an HTTP date is not interpreted: we own no clock here).
pub(crate) fn retry_after(response: &http::Response<Vec<u8>>) -> Option<u64> {
    let status = response.status().as_u16();
    if status != 429 && status != 503 {
        return None;
    }
    response
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The OAuth error in a JSON body (`{"error": "...", ...}`), if the body is one.
pub(crate) fn oauth_error_in(
    map: &serde_json::Map<String, serde_json::Value>,
) -> Option<OAuthError> {
    let code = map.opt_str("error").ok().flatten()?;
    let description = map.opt_str("error_description").ok().flatten();
    let uri = map.opt_str("error_uri").ok().flatten();
    Some(OAuthError::new(code, description).with_uri(uri))
}

/// The error for a response whose status is not the expected success: an OAuth error when the
/// body is one (or, for bearer-protected endpoints, the `WWW-Authenticate` challenge says so),
/// else a bare status error. Never fails to produce an error.
pub(crate) fn error_response(endpoint: Endpoint, response: &http::Response<Vec<u8>>) -> Error {
    let status = response.status().as_u16();
    let retry = retry_after(response);
    if let Ok(map) = json::parse_object(response.body()) {
        if let Some(e) = oauth_error_in(&map) {
            return Error::OAuth(e.with_status(status, retry));
        }
    }
    if let Some(e) = www_authenticate_error(response) {
        return Error::OAuth(e.with_status(status, retry));
    }
    if (200..300).contains(&status) {
        return Error::Response {
            endpoint,
            reason: ResponseError::UnexpectedStatus(status),
        };
    }
    Error::Status {
        endpoint,
        status,
        retry_after: retry,
    }
}

/// RFC 6750 §3: `WWW-Authenticate: Bearer error="invalid_token", error_description="..."`.
fn www_authenticate_error(response: &http::Response<Vec<u8>>) -> Option<OAuthError> {
    let value = response
        .headers()
        .get(http::header::WWW_AUTHENTICATE)?
        .to_str()
        .ok()?;
    let rest = value.trim_start();
    let rest = rest
        .get(..6)
        .filter(|s| s.eq_ignore_ascii_case("bearer"))
        .and_then(|_| rest.get(6..))?;
    let mut code = None;
    let mut description = None;
    for (k, v) in auth_params(rest) {
        match k.as_str() {
            "error" => code = Some(v),
            "error_description" => description = Some(v),
            _ => {}
        }
    }
    code.map(|c| OAuthError::new(&c, description.as_deref()))
}

/// Parses `k="v", k2=v2` auth-params (RFC 9110 §11.2), tolerantly; bounded work per byte.
fn auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            return out;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek() != Some(&'=') {
            continue;
        }
        chars.next();
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    _ => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key.to_ascii_lowercase(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(auth: ClientAuth, secret: Option<&str>) -> Config {
        let mut b = Config::builder("https://idp.authpi.com/i_a", "client:1é").client_auth(auth);
        if let Some(s) = secret {
            b = b.client_secret(s);
        }
        b.build().unwrap()
    }

    fn body(req: &http::Request<Vec<u8>>) -> Vec<(String, String)> {
        url::form_urlencoded::parse(req.body())
            .into_owned()
            .collect()
    }

    #[test]
    fn client_secret_basic_form_encodes_both_parts() {
        let url = Url::parse("https://idp.authpi.com/i_a/token").unwrap();
        let req = form_post(
            &url,
            &config(ClientAuth::ClientSecretBasic, Some("p@ss w:rd")),
            &[("a", "b")],
        )
        .unwrap();
        let auth = req.headers()[AUTHORIZATION].to_str().unwrap();
        let decoded = String::from_utf8(
            STANDARD
                .decode(auth.strip_prefix("Basic ").unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(decoded, "client%3A1%C3%A9:p%40ss+w%3Ard");
        assert_eq!(body(&req), vec![("a".into(), "b".into())]);
        assert_eq!(
            req.headers()[CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
    }

    #[test]
    fn client_secret_post_puts_credentials_in_the_body() {
        let url = Url::parse("https://idp.authpi.com/i_a/token").unwrap();
        let req = form_post(
            &url,
            &config(ClientAuth::ClientSecretPost, Some("s")),
            &[("a", "b")],
        )
        .unwrap();
        assert!(req.headers().get(AUTHORIZATION).is_none());
        let b = body(&req);
        assert!(b.contains(&("client_id".into(), "client:1é".into())));
        assert!(b.contains(&("client_secret".into(), "s".into())));
    }

    #[test]
    fn public_client_sends_only_its_id() {
        let url = Url::parse("https://idp.authpi.com/i_a/token").unwrap();
        let req = form_post(&url, &config(ClientAuth::None, None), &[]).unwrap();
        assert!(req.headers().get(AUTHORIZATION).is_none());
        assert_eq!(body(&req), vec![("client_id".into(), "client:1é".into())]);
    }

    fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> http::Response<Vec<u8>> {
        let mut b = http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(body.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn error_classification_table() {
        let e = error_response(
            Endpoint::Token,
            &resp(
                400,
                &[],
                r#"{"error":"invalid_grant","error_description":"used"}"#,
            ),
        );
        assert_eq!(e.code(), "invalid_grant");
        assert_eq!(e.status(), Some(400));
        let e = error_response(
            Endpoint::Token,
            &resp(429, &[("retry-after", "17")], "slow down"),
        );
        assert_eq!(e.code(), "rate_limited");
        assert_eq!(e.retry_after(), Some(17));
        let e = error_response(
            Endpoint::Token,
            &resp(
                503,
                &[("retry-after", "5")],
                r#"{"error":"temporarily_unavailable"}"#,
            ),
        );
        assert_eq!(e.code(), "temporarily_unavailable");
        assert_eq!(e.retry_after(), Some(5));
        let e = error_response(
            Endpoint::Token,
            &resp(500, &[("retry-after", "5")], "<html>"),
        );
        assert_eq!((e.code(), e.retry_after()), ("http_error", None));
        let e = error_response(
            Endpoint::UserInfo,
            &resp(
                401,
                &[(
                    "www-authenticate",
                    r#"Bearer realm="x", error="invalid_token", error_description="expired \"now\"""#,
                )],
                "",
            ),
        );
        assert_eq!(e.code(), "invalid_token");
        let Error::OAuth(o) = e else { panic!() };
        assert_eq!(o.description(), Some(r#"expired "now""#));
    }

    #[test]
    fn provider_text_is_sanitized_and_bounded() {
        let long = "x".repeat(5000);
        let e = error_response(
            Endpoint::Token,
            &resp(
                400,
                &[],
                &format!(r#"{{"error":"bad\n","error_description":"{long}"}}"#),
            ),
        );
        let Error::OAuth(o) = e else { panic!() };
        assert_eq!(o.code(), "bad");
        assert_eq!(o.description().unwrap().len(), 256);
    }

    #[test]
    fn auth_params_parser_is_tolerant() {
        assert_eq!(
            auth_params(r#" error="a\"b",  x=y,z"#),
            vec![("error".into(), "a\"b".into()), ("x".into(), "y".into())]
        );
        assert!(auth_params("").is_empty());
    }
}
