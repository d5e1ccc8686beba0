//! The authorization request: PKCE S256, `state` and `nonce`, always.

use crate::config::{is_printable, validate_resource};
use crate::error::{ConfigError, Error};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Parameters the SDK sets itself; extra parameters may not override them.
const RESERVED: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "org",
    "resource",
    "prompt",
    "login_hint",
    "max_age",
    "acr_values",
    "request",
    "request_uri",
    "response_mode",
];

/// What to ask for at the authorization endpoint. `openid` is required.
///
/// ```
/// use authpi_idp::AuthorizationRequest;
/// let req = AuthorizationRequest::new(["openid", "email"])
///     .org("org_acme")
///     .resource("https://api.example.com")
///     .prompt("login")
///     .max_age(3600);
/// ```
///
/// `Debug` redacts `state` and `nonce` when they were set explicitly (they are secrets until
/// the callback).
#[derive(Clone, Default)]
#[must_use]
pub struct AuthorizationRequest {
    pub(crate) scopes: Vec<String>,
    pub(crate) state: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) org: Option<String>,
    pub(crate) resources: Option<Vec<String>>,
    pub(crate) prompt: Option<String>,
    pub(crate) login_hint: Option<String>,
    pub(crate) max_age: Option<u64>,
    pub(crate) acr_values: Option<String>,
    pub(crate) extra: Vec<(String, String)>,
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "[redacted]");
        f.debug_struct("AuthorizationRequest")
            .field("scopes", &self.scopes)
            .field("state", &redacted(&self.state))
            .field("nonce", &redacted(&self.nonce))
            .field("org", &self.org)
            .field("resources", &self.resources)
            .field("prompt", &self.prompt)
            .field("login_hint", &self.login_hint)
            .field("max_age", &self.max_age)
            .field("acr_values", &self.acr_values)
            .field("extra", &self.extra)
            .finish()
    }
}

impl AuthorizationRequest {
    /// A request for these scopes.
    pub fn new<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        AuthorizationRequest {
            scopes: scopes.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Uses this `state` instead of a random one (it must be unguessable: prefer the default).
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }

    /// Uses this `nonce` instead of a random one (it must be unguessable: prefer the default).
    pub fn nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// AuthPI's `org`: tokens restricted to (and selecting) this organization.
    pub fn org(mut self, org: impl Into<String>) -> Self {
        self.org = Some(org.into());
        self
    }

    /// Adds an RFC 8707 resource indicator (order kept). Replaces the configured defaults.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources
            .get_or_insert_with(Vec::new)
            .push(resource.into());
        self
    }

    /// OIDC `prompt` (`none`, `login`, `consent`, `select_account`, space separated).
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = Some(prompt.into());
        self
    }

    /// OIDC `login_hint`.
    pub fn login_hint(mut self, hint: impl Into<String>) -> Self {
        self.login_hint = Some(hint.into());
        self
    }

    /// OIDC `max_age`: the ID token must then carry an `auth_time` no older than this.
    pub fn max_age(mut self, secs: u64) -> Self {
        self.max_age = Some(secs);
        self
    }

    /// OIDC `acr_values`.
    pub fn acr_values(mut self, values: impl Into<String>) -> Self {
        self.acr_values = Some(values.into());
        self
    }

    /// Any other parameter (it may not override one the SDK controls).
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((name.into(), value.into()));
        self
    }
}

/// A started login: the URL to send the user to, and the secrets to keep until the callback.
///
/// Serializes to exactly the JSON of the Python SDK's `AuthorizationUrl.model_dump()`
/// (`url`, `code_verifier`, `state`, `nonce`, `resources`), so a web app can keep it in its
/// session. The redirect URI and `max_age` are read back from `url` at the callback, so nothing
/// else needs storing. `Debug` redacts the verifier, state and nonce.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationUrl {
    /// The authorization URL.
    pub url: String,
    /// The PKCE verifier (secret).
    pub code_verifier: String,
    /// The `state` value (secret until the callback).
    pub state: String,
    /// The `nonce` value (secret until the callback).
    pub nonce: String,
    /// The RFC 8707 resources requested, in order.
    pub resources: Option<Vec<String>>,
}

impl fmt::Debug for AuthorizationUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationUrl")
            .field("url", &redacted_url(&self.url))
            .field("code_verifier", &"[redacted]")
            .field("state", &"[redacted]")
            .field("nonce", &"[redacted]")
            .field("resources", &self.resources)
            .finish()
    }
}

/// The authorization URL with the values of `state` and `nonce` replaced, for `Debug`.
fn redacted_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return "[unparsable URL]".to_owned();
    };
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" || k == "nonce" {
                "[redacted]".to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    if !pairs.is_empty() {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.into()
}

/// base64url (unpadded) of 32 bytes from the caller's CSPRNG.
pub(crate) fn random_token<R: CryptoRng + ?Sized>(rng: &mut R) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(ASCII(code_verifier)))`.
#[must_use]
pub fn pkce_challenge(code_verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(crate::jose::sha256(code_verifier.as_bytes()))
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn valid_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

fn check_text(value: &str, name: &'static str) -> Result<(), ConfigError> {
    if value.is_empty() || value.len() > 2048 || value.chars().any(char::is_control) {
        return Err(ConfigError::Parameter(name));
    }
    Ok(())
}

/// Builds the authorization URL; the caller passes the endpoint, client and redirect.
pub(crate) fn build<R: CryptoRng + ?Sized>(
    endpoint: &url::Url,
    client_id: &str,
    redirect_uri: &str,
    default_resources: &[String],
    req: &AuthorizationRequest,
    rng: &mut R,
) -> Result<AuthorizationUrl, Error> {
    if !req.scopes.iter().any(|s| s == "openid") {
        return Err(ConfigError::OpenIdScopeRequired.into());
    }
    if !req.scopes.iter().all(|s| valid_scope_token(s)) {
        return Err(ConfigError::Scope.into());
    }
    for (value, name) in [(&req.state, "state"), (&req.nonce, "nonce")] {
        if let Some(v) = value {
            if !is_printable(v) || v.len() > 512 {
                return Err(ConfigError::Parameter(name).into());
            }
        }
    }
    for (value, name) in [
        (&req.org, "org"),
        (&req.prompt, "prompt"),
        (&req.login_hint, "login_hint"),
        (&req.acr_values, "acr_values"),
    ] {
        if let Some(v) = value {
            check_text(v, name)?;
        }
    }
    for (name, value) in &req.extra {
        if RESERVED.contains(&name.as_str()) {
            return Err(ConfigError::ReservedParameter(name.clone()).into());
        }
        if name.is_empty()
            || name.chars().any(char::is_control)
            || value.chars().any(char::is_control)
        {
            return Err(ConfigError::Parameter("extra parameter").into());
        }
    }
    let resources: Vec<String> = match &req.resources {
        Some(r) => r.clone(),
        None => default_resources.to_vec(),
    };
    for r in &resources {
        validate_resource(r)?;
    }

    // Draw order is part of the contract (tests and fuzzing replay it): verifier, state, nonce.
    let code_verifier = random_token(rng);
    let state = req.state.clone().unwrap_or_else(|| random_token(rng));
    let nonce = req.nonce.clone().unwrap_or_else(|| random_token(rng));

    let mut url = endpoint.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", &req.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &pkce_challenge(&code_verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(org) = &req.org {
            q.append_pair("org", org);
        }
        for r in &resources {
            q.append_pair("resource", r);
        }
        if let Some(p) = &req.prompt {
            q.append_pair("prompt", p);
        }
        if let Some(h) = &req.login_hint {
            q.append_pair("login_hint", h);
        }
        if let Some(m) = req.max_age {
            q.append_pair("max_age", &m.to_string());
        }
        if let Some(a) = &req.acr_values {
            q.append_pair("acr_values", a);
        }
        for (k, v) in &req.extra {
            q.append_pair(k, v);
        }
    }
    Ok(AuthorizationUrl {
        url: url.into(),
        code_verifier,
        state,
        nonce,
        resources: if resources.is_empty() {
            None
        } else {
            Some(resources)
        },
    })
}

/// What the callback needs back from a transaction's URL.
pub(crate) struct TransactionParams {
    pub redirect_uri: String,
    pub max_age: Option<u64>,
}

pub(crate) fn transaction_params(
    tx: &AuthorizationUrl,
) -> Result<TransactionParams, crate::error::CallbackError> {
    use crate::error::CallbackError::Transaction;
    let url = url::Url::parse(&tx.url).map_err(|_| Transaction("url is not a URL"))?;
    let mut redirect_uri = None;
    let mut max_age = None;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "redirect_uri" if redirect_uri.is_none() => redirect_uri = Some(v.into_owned()),
            "redirect_uri" => return Err(Transaction("duplicate redirect_uri")),
            "max_age" => {
                max_age = Some(
                    v.parse()
                        .map_err(|_| Transaction("max_age is not a number"))?,
                )
            }
            _ => {}
        }
    }
    if tx.code_verifier.is_empty() || tx.state.is_empty() || tx.nonce.is_empty() {
        return Err(Transaction("empty verifier, state or nonce"));
    }
    Ok(TransactionParams {
        redirect_uri: redirect_uri.ok_or(Transaction("no redirect_uri in url"))?,
        max_age,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand_core::{RngCore, impls};

    /// An "RNG" that replays fixed bytes: for RFC vectors only.
    pub(crate) struct Replay(pub Vec<u8>, pub usize);
    impl RngCore for Replay {
        fn next_u32(&mut self) -> u32 {
            impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                *b = self.0[self.1 % self.0.len()];
                self.1 += 1;
            }
        }
    }
    impl CryptoRng for Replay {}

    #[test]
    fn debug_redacts_state_and_nonce_inside_the_url_too() {
        let tx = AuthorizationUrl {
            url: "https://idp.test/authorize?client_id=c&state=S3CR3TSTATE&nonce=S3CR3TNONCE&scope=openid".into(),
            code_verifier: "S3CR3TVERIFIER".into(),
            state: "S3CR3TSTATE".into(),
            nonce: "S3CR3TNONCE".into(),
            resources: None,
        };
        let debug = format!("{tx:?}");
        assert!(!debug.contains("S3CR3T"), "{debug}");
        assert!(debug.contains("client_id=c"), "{debug}");
        assert!(debug.contains("scope=openid"), "{debug}");
    }

    #[test]
    fn rfc7636_appendix_b_pkce_vector() {
        // The 32 octets of RFC 7636 Appendix B.
        let octets = vec![
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let verifier = random_token(&mut Replay(octets, 0));
        assert_eq!(verifier, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            pkce_challenge(&verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn scope_token_grammar() {
        for ok in ["openid", "projects:read", "a!#[]~"] {
            assert!(valid_scope_token(ok), "{ok}");
        }
        for bad in ["", "a b", "a\"b", "a\\b", "é"] {
            assert!(!valid_scope_token(bad), "{bad}");
        }
    }
}
