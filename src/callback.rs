//! The authorization callback: parsing and the checks that run before any code is spent.
//!
//! Order of checks (each one a defence of its own, see the manual):
//! 1. parsing: a parameter that occurs twice is an error (parameter pollution);
//! 2. `state` equals the transaction's, compared in constant time (CSRF); on mismatch the error
//!    mentions a provider `error` if one came back, since that is what a user needs to debug;
//! 3. RFC 9207 `iss`, when present, equals the issuer; when the provider advertises it, it is
//!    required (mix-up attacks);
//! 4. a provider `error` becomes a typed [`crate::OAuthError`];
//! 5. `code` is required.
//!
//! Front-channel tokens (`access_token`, `id_token` in the query) are ignored: this client only
//! uses the code flow.

use crate::error::{CallbackError, Error, OAuthError, provider_text};
use subtle::ConstantTimeEq;

/// The parameters of an authorization response, each at most once.
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackParams {
    pairs: Vec<(String, String)>,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values (code, state) are secrets; names are enough to debug.
        f.debug_list()
            .entries(self.pairs.iter().map(|(k, _)| k))
            .finish()
    }
}

impl CallbackParams {
    /// Parses a full callback URL (`https://app/cb?code=…&state=…`), a query string with or
    /// without its leading `?`, or `scheme:/path?…`. Any fragment is ignored.
    pub fn parse(input: &str) -> Result<Self, CallbackError> {
        let without_fragment = input.split('#').next().unwrap_or_default();
        let query = match without_fragment.split_once('?') {
            Some((_, q)) => q,
            None if has_scheme(without_fragment) => "",
            None => without_fragment,
        };
        Self::from_pairs(url::form_urlencoded::parse(query.as_bytes()).into_owned())
    }

    /// From already-parsed pairs (a web framework's query extractor).
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, CallbackError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in pairs {
            let k = k.into();
            if out.iter().any(|(seen, _)| *seen == k) {
                return Err(CallbackError::DuplicateParameter(provider_text(&k)));
            }
            if out.len() >= 64 {
                // A real callback has a handful of parameters; bound the work per callback.
                return Err(CallbackError::DuplicateParameter(
                    "(too many parameters)".into(),
                ));
            }
            out.push((k, v.into()));
        }
        Ok(CallbackParams { pairs: out })
    }

    /// The value of a parameter.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether `s` starts with a URI scheme (RFC 3986 §3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"`),
/// i.e. is a URL rather than a bare query string such as `code=…&state=…`.
fn has_scheme(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// What the caller passes as a callback: a URL or query string, or parsed parameters.
///
/// `Debug` shows parameter names only: the values (`code`, `state`) are secrets.
pub enum CallbackInput<'a> {
    /// A full callback URL or a query string.
    Url(&'a str),
    /// Parsed parameters.
    Params(CallbackParams),
}

impl std::fmt::Debug for CallbackInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallbackInput::Url(s) => {
                // What precedes the query (scheme, host, path) and the parameter names.
                let without_fragment = s.split('#').next().unwrap_or_default();
                let (base, query) = match without_fragment.split_once('?') {
                    Some((base, q)) => (base, q),
                    None if has_scheme(without_fragment) => (without_fragment, ""),
                    None => ("", without_fragment),
                };
                let names: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
                    .map(|(k, _)| k.into_owned())
                    .collect();
                f.debug_struct("Url")
                    .field("base", &base)
                    .field("parameters", &names)
                    .finish_non_exhaustive()
            }
            CallbackInput::Params(p) => f.debug_tuple("Params").field(p).finish(),
        }
    }
}

impl<'a> From<&'a str> for CallbackInput<'a> {
    fn from(s: &'a str) -> Self {
        CallbackInput::Url(s)
    }
}

impl<'a> From<&'a String> for CallbackInput<'a> {
    fn from(s: &'a String) -> Self {
        CallbackInput::Url(s)
    }
}

impl From<CallbackParams> for CallbackInput<'_> {
    fn from(p: CallbackParams) -> Self {
        CallbackInput::Params(p)
    }
}

impl CallbackInput<'_> {
    pub(crate) fn into_params(self) -> Result<CallbackParams, CallbackError> {
        match self {
            CallbackInput::Url(s) => CallbackParams::parse(s),
            CallbackInput::Params(p) => Ok(p),
        }
    }
}

/// Constant-time string equality (length is not secret).
pub(crate) fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Runs checks 2–5 and returns the authorization code.
pub(crate) fn validate(
    params: &CallbackParams,
    expected_state: &str,
    issuer: &str,
    iss_required: bool,
) -> Result<String, Error> {
    let provider_error = params.get("error");
    match params.get("state") {
        Some(state) if ct_eq(state, expected_state) => {}
        _ => {
            return Err(CallbackError::StateMismatch {
                provider_error: provider_error.map(provider_text),
            }
            .into());
        }
    }
    match params.get("iss") {
        Some(iss) if iss != issuer => return Err(CallbackError::IssuerMismatch.into()),
        None if iss_required => return Err(CallbackError::IssuerMissing.into()),
        _ => {}
    }
    if let Some(code) = provider_error {
        return Err(OAuthError::new(code, params.get("error_description"))
            .with_uri(params.get("error_uri"))
            .into());
    }
    match params.get("code") {
        Some(code) if !code.is_empty() => Ok(code.to_owned()),
        _ => Err(CallbackError::MissingCode.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OAuthErrorKind;

    const ISS: &str = "https://idp.authpi.com/i_a";

    fn run(input: &str, iss_required: bool) -> Result<String, Error> {
        let params = CallbackParams::parse(input).map_err(Error::from)?;
        validate(&params, "S1", ISS, iss_required)
    }

    #[test]
    fn accepts_url_query_string_and_private_scheme() {
        for input in [
            "https://app.example.com/cb?code=C&state=S1",
            "https://app.example.com/cb?code=C&state=S1#ignored=1",
            "?code=C&state=S1",
            "code=C&state=S1",
            "com.example.app:/cb?code=C&state=S1",
            "https://app.example.com/cb?code=C&state=S1&session_state=x",
            "code=C&state=S1&iss_hint=https://unencoded.example",
        ] {
            assert_eq!(run(input, false).unwrap(), "C", "{input}");
        }
    }

    #[test]
    fn a_url_without_query_has_no_parameters() {
        assert_eq!(
            run("https://app.example.com/cb", false).unwrap_err().code(),
            "invalid_state"
        );
        assert_eq!(
            run("com.example.app:/cb", false).unwrap_err().code(),
            "invalid_state"
        );
    }

    #[test]
    fn duplicate_parameters_are_errors() {
        for input in [
            "code=C&state=S1&code=D",
            "code=C&state=S1&state=S1",
            "code=C&state=S1&iss=a&iss=a",
        ] {
            assert!(
                matches!(
                    run(input, false),
                    Err(Error::Callback(CallbackError::DuplicateParameter(_)))
                ),
                "{input}"
            );
        }
    }

    #[test]
    fn state_is_checked_first_and_mentions_the_provider_error() {
        let e = run("error=access_denied&state=WRONG", false).unwrap_err();
        assert_eq!(e.code(), "invalid_state");
        assert!(e.to_string().contains("access_denied"), "{e}");
        // Even a wrong iss is reported as a state problem when the state is wrong.
        let e = run("code=C&state=WRONG&iss=https://evil", true).unwrap_err();
        assert_eq!(e.code(), "invalid_state");
        let e = run("code=C", false).unwrap_err();
        assert_eq!(e.code(), "invalid_state");
        let e = run("code=C&state=S", false).unwrap_err();
        assert_eq!(e.code(), "invalid_state");
        let e = run("code=C&state=S1x", false).unwrap_err();
        assert_eq!(e.code(), "invalid_state");
    }

    #[test]
    fn oidcc_client_test_invalid_authorization_response_iss() {
        let e = run("code=C&state=S1&iss=https%3A%2F%2Fevil.example.com", false).unwrap_err();
        assert_eq!(e, Error::Callback(CallbackError::IssuerMismatch));
        // A trailing slash is a different issuer: exact comparison.
        let e = run(
            "code=C&state=S1&iss=https%3A%2F%2Fidp.authpi.com%2Fi_a%2F",
            false,
        )
        .unwrap_err();
        assert_eq!(e, Error::Callback(CallbackError::IssuerMismatch));
        assert_eq!(
            run(
                "code=C&state=S1&iss=https%3A%2F%2Fidp.authpi.com%2Fi_a",
                true
            )
            .unwrap(),
            "C"
        );
    }

    #[test]
    fn oidcc_client_test_remove_authorization_response_iss() {
        let e = run("code=C&state=S1", true).unwrap_err();
        assert_eq!(e, Error::Callback(CallbackError::IssuerMissing));
        assert_eq!(e.code(), "invalid_issuer");
    }

    #[test]
    fn provider_errors_become_typed_errors() {
        let table = [
            ("access_denied", OAuthErrorKind::AccessDenied),
            ("login_required", OAuthErrorKind::LoginRequired),
            ("consent_required", OAuthErrorKind::ConsentRequired),
            ("interaction_required", OAuthErrorKind::InteractionRequired),
            ("user_blocked", OAuthErrorKind::UserBlocked),
            (
                "account_linking_required",
                OAuthErrorKind::AccountLinkingRequired,
            ),
            ("session_expired", OAuthErrorKind::SessionExpired),
            ("some_future_code", OAuthErrorKind::Other),
        ];
        for (code, kind) in table {
            let e = run(
                &format!("error={code}&error_description=why&state=S1&code=C"),
                false,
            )
            .unwrap_err();
            let Error::OAuth(o) = &e else { panic!("{e:?}") };
            assert_eq!(
                (o.kind(), o.code(), o.description()),
                (kind, code, Some("why"))
            );
            assert_eq!(e.code(), code);
        }
    }

    #[test]
    fn code_is_required() {
        assert_eq!(run("state=S1", false).unwrap_err().code(), "missing_code");
        assert_eq!(
            run("state=S1&code=", false).unwrap_err().code(),
            "missing_code"
        );
    }

    #[test]
    fn front_channel_tokens_are_ignored() {
        assert_eq!(
            run("code=C&state=S1&id_token=x.y.z&access_token=a", false).unwrap(),
            "C"
        );
    }

    proptest::proptest! {
        #[test]
        fn encoded_parameters_round_trip(code in "\\PC{1,40}", state in "\\PC{1,40}", base in "(https://app\\.example\\.com/cb|com\\.example\\.app:/cb|)") {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("code", &code)
                .append_pair("state", &state)
                .finish();
            let input = if base.is_empty() { query } else { format!("{base}?{query}#frag") };
            let params = CallbackParams::parse(&input).unwrap();
            proptest::prop_assert_eq!(params.get("code"), Some(code.as_str()));
            proptest::prop_assert_eq!(params.get("state"), Some(state.as_str()));
            proptest::prop_assert_eq!(validate(&params, &state, ISS, false).unwrap(), code);
        }

        #[test]
        fn arbitrary_input_never_panics(input in "\\PC{0,200}") {
            if let Ok(params) = CallbackParams::parse(&input) {
                let _ = validate(&params, "S1", ISS, true);
            }
        }
    }

    #[test]
    fn debug_hides_values() {
        let p = CallbackParams::parse("code=SECRETCODE&state=S1").unwrap();
        assert!(!format!("{p:?}").contains("SECRET"));
    }
}
