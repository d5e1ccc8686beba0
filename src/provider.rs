//! Provider knowledge: endpoints from the AuthPI layout or from OpenID Connect Discovery.
//!
//! [`ProviderMetadata::authpi`] derives every endpoint from the issuer with no round trip, as
//! the official SDK does. [`ProviderMetadata::from_response`] validates a discovery document:
//! `issuer` must equal the configured issuer (one trailing slash in the configuration is
//! tolerated, and from then on the discovered value is the exact expected `iss`), endpoints must
//! be `https` unless the issuer host is loopback, PKCE `S256` and `response_type=code` must be
//! supported, and the advertised signing algorithms must leave one this client accepts.
//!
//! Metadata serializes (serde) with its fetch time, so a serverless deployment can persist it.

use crate::config::{check_ascii_host, check_https_or_loopback, is_loopback};
use crate::error::DiscoveryError;
use crate::jose::AlgorithmSet;
use crate::json::{self, JsonError, Members};
use crate::time::UnixTime;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

/// Suggested maximum age of discovered metadata, in seconds (24 h, as AuthPI recommends).
pub const METADATA_MAX_AGE: u64 = 86_400;

/// Where the provider's endpoints are and what it supports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredMetadata", into = "StoredMetadata")]
pub struct ProviderMetadata {
    issuer: String,
    authorization_endpoint: Url,
    token_endpoint: Url,
    userinfo_endpoint: Option<Url>,
    jwks_uri: Url,
    revocation_endpoint: Option<Url>,
    introspection_endpoint: Option<Url>,
    end_session_endpoint: Option<Url>,
    signing_algorithms: AlgorithmSet,
    iss_parameter_supported: bool,
    fetched_at: Option<UnixTime>,
    document: Option<Map<String, Value>>,
}

/// Whether a provider's `issuer` is acceptable for the `configured` issuer: equal, or equal to
/// the configured value without its one trailing slash (DESIGN §4: only the configuration may
/// differ by a slash).
pub(crate) fn issuer_matches_configured(found: &str, configured: &str) -> bool {
    found == configured || configured.strip_suffix('/') == Some(found)
}

fn join(issuer: &str, path: &str) -> Result<Url, DiscoveryError> {
    Url::parse(&format!("{issuer}{path}")).map_err(|_| DiscoveryError::Endpoint("issuer"))
}

impl ProviderMetadata {
    /// The AuthPI layout: every endpoint under the issuer (`/authorize`, `/token`, `/userinfo`,
    /// `/revoke`, `/introspect`, `/logout`, `/jwks.json`), algorithms ES256, EdDSA and RS256.
    ///
    /// `issuer` is a validated issuer such as [`crate::Config::issuer`].
    pub fn authpi(issuer: &str) -> Result<Self, DiscoveryError> {
        let issuer = issuer.strip_suffix('/').unwrap_or(issuer);
        Ok(ProviderMetadata {
            issuer: issuer.to_owned(),
            authorization_endpoint: join(issuer, "/authorize")?,
            token_endpoint: join(issuer, "/token")?,
            userinfo_endpoint: Some(join(issuer, "/userinfo")?),
            jwks_uri: join(issuer, "/jwks.json")?,
            revocation_endpoint: Some(join(issuer, "/revoke")?),
            introspection_endpoint: Some(join(issuer, "/introspect")?),
            end_session_endpoint: Some(join(issuer, "/logout")?),
            signing_algorithms: AlgorithmSet::from_names(["ES256", "EdDSA", "RS256"]),
            iss_parameter_supported: false,
            fetched_at: None,
            document: None,
        })
    }

    /// The discovery URL of an issuer: `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(issuer: &str) -> Result<Url, DiscoveryError> {
        join(
            issuer.strip_suffix('/').unwrap_or(issuer),
            "/.well-known/openid-configuration",
        )
    }

    /// Validates a discovery response for `expected_issuer` (the configured issuer). The
    /// discovered `issuer` must equal it exactly, or be it without its one trailing slash: only
    /// the configuration may differ by a slash, never the provider's answer (a discovered
    /// `https://idp/` for a configured `https://idp` is refused, as OIDC Discovery §4.3 asks).
    pub fn from_response(
        response: &http::Response<Vec<u8>>,
        expected_issuer: &str,
        now: UnixTime,
    ) -> Result<Self, DiscoveryError> {
        if response.status() != http::StatusCode::OK {
            return Err(DiscoveryError::Status(response.status().as_u16()));
        }
        let doc = json::parse_object(response.body())?;
        let meta = Self::from_document(doc, Some(now))?;
        if !issuer_matches_configured(&meta.issuer, expected_issuer) {
            return Err(DiscoveryError::IssuerMismatch);
        }
        Ok(meta)
    }

    fn from_document(
        doc: Map<String, Value>,
        fetched_at: Option<UnixTime>,
    ) -> Result<Self, DiscoveryError> {
        let issuer = doc.req_str("issuer")?.to_owned();
        check_ascii_host(&issuer).map_err(|_| DiscoveryError::Endpoint("issuer"))?;
        let issuer_url = Url::parse(&issuer).map_err(|_| DiscoveryError::Endpoint("issuer"))?;
        check_https_or_loopback(&issuer_url).map_err(|_| DiscoveryError::Endpoint("issuer"))?;
        let loopback = is_loopback(&issuer_url);
        let endpoint = |name: &'static str| -> Result<Option<Url>, DiscoveryError> {
            let Some(raw) = doc.opt_str(name)? else {
                return Ok(None);
            };
            check_ascii_host(raw).map_err(|_| DiscoveryError::Endpoint(name))?;
            let url = Url::parse(raw).map_err(|_| DiscoveryError::Endpoint(name))?;
            let ok = url.scheme() == "https"
                || (loopback && url.scheme() == "http" && is_loopback(&url));
            if !ok || url.fragment().is_some() {
                return Err(DiscoveryError::Endpoint(name));
            }
            Ok(Some(url))
        };
        let required = |name: &'static str| -> Result<Url, DiscoveryError> {
            endpoint(name)?.ok_or(DiscoveryError::Json(JsonError::Missing(name)))
        };
        let strings = |name: &'static str| -> Result<Option<Vec<&str>>, DiscoveryError> {
            match doc.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .ok_or(DiscoveryError::Json(JsonError::Invalid(name)))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                Some(_) => Err(DiscoveryError::Json(JsonError::Invalid(name))),
            }
        };
        let response_types = strings("response_types_supported")?.ok_or(DiscoveryError::Json(
            JsonError::Missing("response_types_supported"),
        ))?;
        if !response_types.contains(&"code") {
            return Err(DiscoveryError::NoCodeFlow);
        }
        strings("subject_types_supported")?.ok_or(DiscoveryError::Json(JsonError::Missing(
            "subject_types_supported",
        )))?;
        // Absent means the provider did not say; AuthPI and oidc-provider always list it.
        if let Some(methods) = strings("code_challenge_methods_supported")? {
            if !methods.contains(&"S256") {
                return Err(DiscoveryError::NoS256);
            }
        }
        let algs = strings("id_token_signing_alg_values_supported")?.ok_or(
            DiscoveryError::Json(JsonError::Missing("id_token_signing_alg_values_supported")),
        )?;
        let signing_algorithms = AlgorithmSet::from_names(algs);
        if signing_algorithms.is_empty() {
            return Err(DiscoveryError::NoAlgorithm);
        }
        let iss_parameter_supported = doc
            .opt_bool("authorization_response_iss_parameter_supported")?
            .unwrap_or(false);
        Ok(ProviderMetadata {
            authorization_endpoint: required("authorization_endpoint")?,
            token_endpoint: required("token_endpoint")?,
            userinfo_endpoint: endpoint("userinfo_endpoint")?,
            jwks_uri: required("jwks_uri")?,
            revocation_endpoint: endpoint("revocation_endpoint")?,
            introspection_endpoint: endpoint("introspection_endpoint")?,
            end_session_endpoint: endpoint("end_session_endpoint")?,
            signing_algorithms,
            iss_parameter_supported,
            fetched_at,
            issuer,
            document: Some(doc),
        })
    }

    /// The exact issuer identifier every `iss` is compared with.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The authorization endpoint.
    #[must_use]
    pub fn authorization_endpoint(&self) -> &Url {
        &self.authorization_endpoint
    }

    /// The token endpoint.
    #[must_use]
    pub fn token_endpoint(&self) -> &Url {
        &self.token_endpoint
    }

    /// The UserInfo endpoint, if the provider has one.
    #[must_use]
    pub fn userinfo_endpoint(&self) -> Option<&Url> {
        self.userinfo_endpoint.as_ref()
    }

    /// The JWKS URI.
    #[must_use]
    pub fn jwks_uri(&self) -> &Url {
        &self.jwks_uri
    }

    /// The RFC 7009 revocation endpoint, if any.
    #[must_use]
    pub fn revocation_endpoint(&self) -> Option<&Url> {
        self.revocation_endpoint.as_ref()
    }

    /// The RFC 7662 introspection endpoint, if any.
    #[must_use]
    pub fn introspection_endpoint(&self) -> Option<&Url> {
        self.introspection_endpoint.as_ref()
    }

    /// The RP-initiated logout endpoint, if any.
    #[must_use]
    pub fn end_session_endpoint(&self) -> Option<&Url> {
        self.end_session_endpoint.as_ref()
    }

    /// The ID-token signing algorithms the provider advertises that this crate knows.
    #[must_use]
    pub fn signing_algorithms(&self) -> AlgorithmSet {
        self.signing_algorithms
    }

    /// Whether the provider advertises RFC 9207 `iss` in authorization responses (then the
    /// callback requires it).
    #[must_use]
    pub fn authorization_response_iss_parameter_supported(&self) -> bool {
        self.iss_parameter_supported
    }

    /// When the document was fetched (None for the derived AuthPI layout).
    #[must_use]
    pub fn fetched_at(&self) -> Option<UnixTime> {
        self.fetched_at
    }

    /// Whether a fetched document is older than [`METADATA_MAX_AGE`], or has a fetch time in
    /// the future (counted as never fetched: a wrong clock or a tampered cache must not make a
    /// document fresh forever). The derived layout never is stale.
    #[must_use]
    pub fn is_stale(&self, now: UnixTime) -> bool {
        self.fetched_at
            .is_some_and(|t| t > now || now.since(t) >= METADATA_MAX_AGE)
    }

    /// Any member of the discovery document, as the provider sent it.
    #[must_use]
    pub fn get(&self, member: &str) -> Option<&Value> {
        self.document.as_ref().and_then(|d| d.get(member))
    }
}

/// The serde form: the provider's document (or the AuthPI layout marker) and the fetch time.
#[derive(Serialize, Deserialize)]
struct StoredMetadata {
    issuer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    document: Option<Map<String, Value>>,
    #[serde(default)]
    fetched_at: Option<UnixTime>,
}

impl TryFrom<StoredMetadata> for ProviderMetadata {
    type Error = DiscoveryError;
    fn try_from(s: StoredMetadata) -> Result<Self, DiscoveryError> {
        match s.document {
            Some(doc) => {
                let meta = ProviderMetadata::from_document(doc, s.fetched_at)?;
                if meta.issuer != s.issuer {
                    return Err(DiscoveryError::IssuerMismatch);
                }
                Ok(meta)
            }
            None => ProviderMetadata::authpi(&s.issuer),
        }
    }
}

impl From<ProviderMetadata> for StoredMetadata {
    fn from(m: ProviderMetadata) -> Self {
        StoredMetadata {
            issuer: m.issuer,
            document: m.document,
            fetched_at: m.fetched_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response(status: u16, body: &Value) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .body(serde_json::to_vec(body).unwrap())
            .unwrap()
    }

    fn doc(issuer: &str) -> Value {
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "jwks_uri": format!("{issuer}/jwks.json"),
            "revocation_endpoint": format!("{issuer}/revoke"),
            "end_session_endpoint": format!("{issuer}/logout"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256", "EdDSA", "RS256", "HS256", "none"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true
        })
    }

    const ISS: &str = "https://idp.authpi.com/i_abc";

    #[test]
    fn authpi_layout_derives_every_endpoint() {
        let m = ProviderMetadata::authpi("https://idp.authpi.com/i_abc/").unwrap();
        assert_eq!(m.issuer(), ISS);
        assert_eq!(
            m.authorization_endpoint().as_str(),
            "https://idp.authpi.com/i_abc/authorize"
        );
        assert_eq!(
            m.token_endpoint().as_str(),
            "https://idp.authpi.com/i_abc/token"
        );
        assert_eq!(
            m.userinfo_endpoint().unwrap().as_str(),
            "https://idp.authpi.com/i_abc/userinfo"
        );
        assert_eq!(
            m.jwks_uri().as_str(),
            "https://idp.authpi.com/i_abc/jwks.json"
        );
        assert_eq!(
            m.revocation_endpoint().unwrap().as_str(),
            "https://idp.authpi.com/i_abc/revoke"
        );
        assert_eq!(
            m.introspection_endpoint().unwrap().as_str(),
            "https://idp.authpi.com/i_abc/introspect"
        );
        assert_eq!(
            m.end_session_endpoint().unwrap().as_str(),
            "https://idp.authpi.com/i_abc/logout"
        );
        assert!(!m.authorization_response_iss_parameter_supported());
    }

    #[test]
    fn valid_discovery_document() {
        let m =
            ProviderMetadata::from_response(&response(200, &doc(ISS)), ISS, UnixTime(10)).unwrap();
        assert_eq!(m.issuer(), ISS);
        assert!(m.authorization_response_iss_parameter_supported());
        assert_eq!(m.introspection_endpoint(), None);
        assert_eq!(
            m.signing_algorithms(),
            AlgorithmSet::from_names(["ES256", "EdDSA", "RS256"])
        );
        assert_eq!(m.fetched_at(), Some(UnixTime(10)));
    }

    #[test]
    fn trailing_slash_in_configuration_is_tolerated_and_discovered_value_wins() {
        let issuer = "https://idp.example.com";
        let m = ProviderMetadata::from_response(
            &response(200, &doc(issuer)),
            "https://idp.example.com/",
            UnixTime(0),
        )
        .unwrap();
        assert_eq!(m.issuer(), issuer);
        // Exact equality, slash included, is fine too.
        let with_slash = "https://idp.example.com/";
        let m = ProviderMetadata::from_response(
            &response(200, &doc(with_slash)),
            with_slash,
            UnixTime(0),
        )
        .unwrap();
        assert_eq!(m.issuer(), with_slash);
    }

    /// DESIGN §4 / OIDC Discovery §4.3: the discovered issuer must be the configured one; a
    /// trailing slash only the *discovered* value has is a different issuer.
    #[test]
    fn trailing_slash_on_the_discovered_issuer_only_is_refused() {
        for (discovered, configured) in [
            ("https://idp.example.com/", "https://idp.example.com"),
            (
                "https://idp.example.com/i_a/",
                "https://idp.example.com/i_a",
            ),
            ("https://idp.example.com//", "https://idp.example.com/"),
        ] {
            let e = ProviderMetadata::from_response(
                &response(200, &doc(discovered)),
                configured,
                UnixTime(0),
            )
            .unwrap_err();
            assert_eq!(
                e,
                DiscoveryError::IssuerMismatch,
                "{discovered} for {configured}"
            );
        }
    }

    #[test]
    fn fetch_time_in_the_future_counts_as_stale() {
        let m = ProviderMetadata::from_response(&response(200, &doc(ISS)), ISS, UnixTime(1_000))
            .unwrap();
        assert!(!m.is_stale(UnixTime(1_000)));
        assert!(m.is_stale(UnixTime(999)));
        let far: ProviderMetadata = serde_json::from_value(serde_json::json!({
            "issuer": ISS, "document": doc(ISS), "fetched_at": u64::MAX
        }))
        .unwrap();
        assert!(far.is_stale(UnixTime(1_000)));
    }

    #[test]
    fn oidcc_client_test_discovery_issuer_mismatch() {
        let e = ProviderMetadata::from_response(
            &response(200, &doc("https://evil.example.com")),
            ISS,
            UnixTime(0),
        )
        .unwrap_err();
        assert_eq!(e, DiscoveryError::IssuerMismatch);
    }

    #[test]
    fn discovery_rules_table() {
        // (member, new value or null to remove it, expected error)
        let cases = [
            (
                "token_endpoint",
                json!("http://idp.authpi.com/t"),
                DiscoveryError::Endpoint("token_endpoint"),
            ),
            (
                "jwks_uri",
                Value::Null,
                DiscoveryError::Json(JsonError::Missing("jwks_uri")),
            ),
            (
                "jwks_uri",
                json!(1),
                DiscoveryError::Json(JsonError::Invalid("jwks_uri")),
            ),
            (
                "code_challenge_methods_supported",
                json!(["plain"]),
                DiscoveryError::NoS256,
            ),
            (
                "id_token_signing_alg_values_supported",
                json!(["HS256", "none"]),
                DiscoveryError::NoAlgorithm,
            ),
            (
                "id_token_signing_alg_values_supported",
                json!("RS256"),
                DiscoveryError::Json(JsonError::Invalid("id_token_signing_alg_values_supported")),
            ),
            (
                "response_types_supported",
                json!(["token"]),
                DiscoveryError::NoCodeFlow,
            ),
            (
                "authorization_response_iss_parameter_supported",
                json!("true"),
                DiscoveryError::Json(JsonError::Invalid(
                    "authorization_response_iss_parameter_supported",
                )),
            ),
        ];
        for (member, value, expected) in cases {
            let mut d = doc(ISS).as_object().unwrap().clone();
            if value.is_null() {
                d.remove(member);
            } else {
                d.insert(member.into(), value);
            }
            let e = ProviderMetadata::from_response(
                &response(200, &Value::Object(d)),
                ISS,
                UnixTime(0),
            )
            .unwrap_err();
            assert_eq!(e, expected, "{member}");
        }
    }

    #[test]
    fn non_200_and_duplicates_are_refused() {
        assert_eq!(
            ProviderMetadata::from_response(&response(404, &doc(ISS)), ISS, UnixTime(0))
                .unwrap_err(),
            DiscoveryError::Status(404)
        );
        let body = format!(r#"{{"issuer":"{ISS}","issuer":"{ISS}"}}"#);
        let resp = http::Response::builder()
            .status(200)
            .body(body.into_bytes())
            .unwrap();
        assert_eq!(
            ProviderMetadata::from_response(&resp, ISS, UnixTime(0)).unwrap_err(),
            DiscoveryError::Json(JsonError::DuplicateMember("issuer".into()))
        );
    }

    #[test]
    fn loopback_issuer_may_use_http_endpoints() {
        let iss = "http://127.0.0.1:4000";
        let m =
            ProviderMetadata::from_response(&response(200, &doc(iss)), iss, UnixTime(0)).unwrap();
        assert_eq!(m.token_endpoint().as_str(), "http://127.0.0.1:4000/token");
    }

    #[test]
    fn serde_round_trip_keeps_metadata_and_fetch_time() {
        let m =
            ProviderMetadata::from_response(&response(200, &doc(ISS)), ISS, UnixTime(77)).unwrap();
        let back: ProviderMetadata =
            serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
        let a = ProviderMetadata::authpi(ISS).unwrap();
        let back: ProviderMetadata =
            serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
        assert!(!m.is_stale(UnixTime(77 + METADATA_MAX_AGE - 1)));
        assert!(m.is_stale(UnixTime(77 + METADATA_MAX_AGE)));
    }
}
