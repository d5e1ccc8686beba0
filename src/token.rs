//! Token sets and token-endpoint responses (RFC 6749 §5.1, §5.2).

use crate::error::{Endpoint, Error, OAuthError, ResponseError};
use crate::http::{error_response, retry_after};
use crate::json::{self, JsonError, Member as _, ObjectOf, Scalar, ScalarSeed, f64_to_u64, once};
use crate::time::UnixTime;
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// `expires_in` assumed when the provider omits it (as the official SDK does).
pub const DEFAULT_EXPIRES_IN: u64 = 3600;

/// The tokens an application stores for a session.
///
/// Its JSON form is exactly the official Python SDK's `TokenSet` (`access_token`, `token_type`,
/// `expires_at`, `refresh_token`, `id_token`, `subject_hint`, `scope`, with `null` for absent
/// members), so Python and Rust services can share one session store. `Debug` never shows a
/// token.
///
/// Reading one is strict: [`TokenSet::from_json`] applies the crate's JSON rules (a member named
/// twice at any depth is an error; size and depth bounds) and names the member at fault. The
/// serde `Deserialize` applies the same member rules through any self-describing format, in the
/// struct's map or sequence form (as a derived impl would); the format's own rules decide the
/// rest (from a `serde_json::Value`, a duplicate is already gone). Unknown members are ignored;
/// `access_token` must be a non-empty string, `expires_at` a non-negative number (a float is
/// truncated), `token_type` a string when present (absent: `"Bearer"`), the others strings or
/// `null`.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TokenSet {
    /// The access token.
    pub access_token: String,
    /// Always `"Bearer"` (the default when a stored set omits it).
    pub token_type: String,
    /// When the access token expires (Unix seconds; a stored float is truncated).
    pub expires_at: u64,
    /// The refresh token, if any. AuthPI rotates it on every refresh.
    pub refresh_token: Option<String>,
    /// The ID token, if any.
    pub id_token: Option<String>,
    /// The subject the session belongs to when there is no ID token (after a refresh that
    /// returned none); `create_agent` then requires UserInfo's `sub` to equal it.
    pub subject_hint: Option<String>,
    /// The granted scope, space separated.
    pub scope: Option<String>,
}

fn bearer() -> String {
    "Bearer".to_owned()
}

/// A stored token set as read, in one pass: each member as sent (a second occurrence is a
/// duplicate); the rules run in [`TokenSet::from_stored`].
#[derive(Default)]
struct StoredTokens<'de> {
    access_token: Option<Scalar<'de>>,
    token_type: Option<Scalar<'de>>,
    expires_at: Option<Scalar<'de>>,
    refresh_token: Option<Scalar<'de>>,
    id_token: Option<Scalar<'de>>,
    subject_hint: Option<Scalar<'de>>,
    scope: Option<Scalar<'de>>,
}

impl<'de> json::Object<'de> for StoredTokens<'de> {
    fn member<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        let slot = match key {
            "access_token" => &mut self.access_token,
            "token_type" => &mut self.token_type,
            "expires_at" => &mut self.expires_at,
            "refresh_token" => &mut self.refresh_token,
            "id_token" => &mut self.id_token,
            "subject_hint" => &mut self.subject_hint,
            "scope" => &mut self.scope,
            _ => return Ok(false),
        };
        once(map, slot, ScalarSeed, key)?;
        Ok(true)
    }
}

/// The members of a token set, in the order of its fields (the sequence form).
const FIELDS: [&str; 7] = [
    "access_token",
    "token_type",
    "expires_at",
    "refresh_token",
    "id_token",
    "subject_hint",
    "scope",
];

impl<'de> Deserialize<'de> for TokenSet {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let stored = de.deserialize_struct("TokenSet", &FIELDS, StoredForm)?;
        TokenSet::from_stored(stored).map_err(serde::de::Error::custom)
    }
}

/// A token set in serde's map form (members by name) or sequence form (fields in order, as
/// formats that write structs as arrays produce them).
struct StoredForm;

impl<'de> Visitor<'de> for StoredForm {
    type Value = StoredTokens<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a token set")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StoredTokens<'de>, A::Error> {
        ObjectOf(StoredTokens::default()).visit_map(map)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StoredTokens<'de>, A::Error> {
        let mut s = StoredTokens::default();
        for slot in [
            &mut s.access_token,
            &mut s.token_type,
            &mut s.expires_at,
            &mut s.refresh_token,
            &mut s.id_token,
            &mut s.subject_hint,
            &mut s.scope,
        ] {
            *slot = seq.next_element_seed(ScalarSeed)?;
        }
        if seq.next_element_seed(json::Skip)?.is_some() {
            return Err(serde::de::Error::invalid_length(FIELDS.len() + 1, &self));
        }
        Ok(s)
    }
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |o: &Option<String>| o.as_ref().map(|_| "[redacted]");
        f.debug_struct("TokenSet")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &redacted(&self.refresh_token))
            .field("id_token", &redacted(&self.id_token))
            .field("subject_hint", &self.subject_hint)
            .field("scope", &self.scope)
            .finish()
    }
}

impl TokenSet {
    /// Parses a stored token set (the Python SDK's JSON) under the strict JSON rules.
    ///
    /// # Errors
    /// Not strict JSON, not an object, or a member missing or of the wrong type: an empty or
    /// absent `access_token`, `expires_at` absent or not a non-negative number, any other
    /// member neither a string nor `null`.
    pub fn from_json(bytes: &[u8]) -> Result<TokenSet, JsonError> {
        TokenSet::from_stored(json::parse_typed(bytes)?)
    }

    fn from_stored(s: StoredTokens<'_>) -> Result<TokenSet, JsonError> {
        let access_token = match s.access_token.string("access_token")? {
            Some(t) if !t.is_empty() => t,
            Some(_) => return Err(JsonError::Invalid("access_token")),
            None => return Err(JsonError::Missing("access_token")),
        };
        // An integer, or a float from Python's `time.time()` arithmetic: whole seconds kept.
        let expires_at = match s.expires_at {
            Some(Scalar::U64(u)) => u,
            Some(Scalar::F64(f)) => f64_to_u64(f).ok_or(JsonError::Invalid("expires_at"))?,
            None => return Err(JsonError::Missing("expires_at")),
            Some(_) => return Err(JsonError::Invalid("expires_at")),
        };
        Ok(TokenSet {
            access_token,
            token_type: match s.token_type {
                None => bearer(),
                Some(Scalar::Str(t)) => t.into_owned(),
                Some(_) => return Err(JsonError::Invalid("token_type")),
            },
            expires_at,
            refresh_token: s.refresh_token.string("refresh_token")?,
            id_token: s.id_token.string("id_token")?,
            subject_hint: s.subject_hint.string("subject_hint")?,
            scope: s.scope.string("scope")?,
        })
    }

    /// The JSON form (the Python SDK's).
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serializing plain strings and integers into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Seconds until the access token expires (negative once expired).
    #[must_use]
    pub fn expires_in(&self, now: UnixTime) -> i64 {
        let (a, b) = (i128::from(self.expires_at), i128::from(now.as_secs()));
        i64::try_from(a - b).unwrap_or(if a > b { i64::MAX } else { i64::MIN })
    }

    /// Whether the access token expires within `buffer` seconds of `now` (or already has).
    #[must_use]
    pub fn is_expired(&self, now: UnixTime, buffer: u64) -> bool {
        self.expires_at <= now.as_secs().saturating_add(buffer)
    }
}

/// A successful token-endpoint response, validated.
#[derive(Clone)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub scope: Option<String>,
}

impl TokenResponse {
    pub(crate) fn into_token_set(self, now: UnixTime) -> TokenSet {
        TokenSet {
            access_token: self.access_token,
            token_type: bearer(),
            expires_at: now.plus(self.expires_in).as_secs(),
            refresh_token: self.refresh_token,
            id_token: self.id_token,
            subject_hint: None,
            scope: self.scope,
        }
    }
}

fn bad(reason: ResponseError) -> Error {
    Error::Response {
        endpoint: Endpoint::Token,
        reason,
    }
}

/// A token-endpoint response body as read, in one pass: each member as sent (a second
/// occurrence is a duplicate); the rules run in [`parse_token_response`].
#[derive(Default)]
struct TokenBody<'de> {
    access_token: Option<Scalar<'de>>,
    token_type: Option<Scalar<'de>>,
    expires_in: Option<Scalar<'de>>,
    refresh_token: Option<Scalar<'de>>,
    id_token: Option<Scalar<'de>>,
    scope: Option<Scalar<'de>>,
    error: Option<Scalar<'de>>,
    error_description: Option<Scalar<'de>>,
    error_uri: Option<Scalar<'de>>,
}

impl<'de> json::Object<'de> for TokenBody<'de> {
    fn member<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        let slot = match key {
            "access_token" => &mut self.access_token,
            "token_type" => &mut self.token_type,
            "expires_in" => &mut self.expires_in,
            "refresh_token" => &mut self.refresh_token,
            "id_token" => &mut self.id_token,
            "scope" => &mut self.scope,
            "error" => &mut self.error,
            "error_description" => &mut self.error_description,
            "error_uri" => &mut self.error_uri,
            _ => return Ok(false),
        };
        once(map, slot, ScalarSeed, key)?;
        Ok(true)
    }
}

/// Validates a token-endpoint response (RFC 6749 §5.1/§5.2 and the crate's stricter rules).
pub(crate) fn parse_token_response(
    response: &http::Response<Vec<u8>>,
) -> Result<TokenResponse, Error> {
    if response.status() != http::StatusCode::OK {
        return Err(error_response(Endpoint::Token, response));
    }
    let body: TokenBody<'_> = json::parse_typed(response.body()).map_err(|e| bad(e.into()))?;
    if let Ok(Some(code)) = body.error.string("error") {
        // A 200 carrying `error` is an error (seen in the wild, oauth2-rs #303).
        let description = body
            .error_description
            .string("error_description")
            .ok()
            .flatten();
        let uri = body.error_uri.string("error_uri").ok().flatten();
        let e = OAuthError::new(&code, description.as_deref()).with_uri(uri.as_deref());
        return Err(Error::OAuth(e.with_status(200, retry_after(response))));
    }
    let non_empty =
        |value: Option<Scalar<'_>>, name: &'static str| -> Result<Option<String>, Error> {
            match value.string(name).map_err(|e| bad(e.into()))? {
                Some(s) if s.is_empty() => Err(bad(ResponseError::Empty(name))),
                other => Ok(other),
            }
        };
    let access_token = non_empty(body.access_token, "access_token")?
        .ok_or(bad(JsonError::Missing("access_token").into()))?;
    match body.token_type {
        Some(Scalar::Str(t)) if t.eq_ignore_ascii_case("bearer") => {}
        Some(Scalar::Str(_)) => return Err(bad(ResponseError::TokenType)),
        None | Some(Scalar::Null) => return Err(bad(JsonError::Missing("token_type").into())),
        Some(_) => return Err(bad(JsonError::Invalid("token_type").into())),
    }
    let expires_in = match body.expires_in {
        None | Some(Scalar::Null) => DEFAULT_EXPIRES_IN,
        // Some providers send a numeric string (oauth2-rs #85, Azure).
        Some(Scalar::Str(s))
            if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse().map_err(|_| bad(ResponseError::ExpiresIn))?
        }
        number => number
            .seconds("expires_in")
            .ok()
            .flatten()
            .ok_or(bad(ResponseError::ExpiresIn))?,
    };
    Ok(TokenResponse {
        access_token,
        expires_in,
        refresh_token: non_empty(body.refresh_token, "refresh_token")?,
        id_token: non_empty(body.id_token, "id_token")?,
        scope: body.scope.string("scope").map_err(|e| bad(e.into()))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OAuthErrorKind;

    fn resp(status: u16, body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    fn parse(status: u16, body: &str) -> Result<TokenResponse, Error> {
        parse_token_response(&resp(status, body))
    }

    fn reason(e: Error) -> ResponseError {
        match e {
            Error::Response { reason, .. } => reason,
            other => panic!("not a response error: {other:?}"),
        }
    }

    #[test]
    fn rfc6749_5_1_successful_response() {
        let r = parse(
            200,
            r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"example_is_not_bearer_here_so_use_Bearer","expires_in":3600}"#,
        );
        assert_eq!(reason(r.err().unwrap()), ResponseError::TokenType);
        let r = parse(
            200,
            r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"Bearer","expires_in":3600,"refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA","scope":"openid email"}"#,
        )
        .unwrap();
        assert_eq!(r.access_token, "2YotnFZFEjr1zCsicMWpAA");
        assert_eq!(r.expires_in, 3600);
        assert_eq!(r.refresh_token.as_deref(), Some("tGzv3JOkF0XG5Qx2TlKWIA"));
        assert_eq!(r.scope.as_deref(), Some("openid email"));
        let ts = r.into_token_set(UnixTime(1000));
        assert_eq!((ts.expires_at, ts.token_type.as_str()), (4600, "Bearer"));
    }

    #[test]
    fn token_type_is_bearer_in_any_case() {
        for tt in ["bearer", "BEARER", "Bearer", "bEaReR"] {
            assert!(
                parse(
                    200,
                    &format!(r#"{{"access_token":"a","token_type":"{tt}"}}"#)
                )
                .is_ok(),
                "{tt}"
            );
        }
        for tt in ["mac", "DPoP", "", "Bearer "] {
            let e = parse(
                200,
                &format!(r#"{{"access_token":"a","token_type":"{tt}"}}"#),
            )
            .err()
            .unwrap();
            assert_eq!(reason(e), ResponseError::TokenType, "{tt}");
        }
        let e = parse(200, r#"{"access_token":"a"}"#).err().unwrap();
        assert_eq!(
            reason(e),
            ResponseError::Json(JsonError::Missing("token_type"))
        );
    }

    #[test]
    fn expires_in_number_or_numeric_string_never_negative() {
        let ok = [
            ("3600", 3600),
            ("\"3600\"", 3600),
            ("0", 0),
            ("3600.0", 3600),
            ("null", 3600),
        ];
        for (v, want) in ok {
            let r = parse(
                200,
                &format!(r#"{{"access_token":"a","token_type":"Bearer","expires_in":{v}}}"#),
            )
            .unwrap();
            assert_eq!(r.expires_in, want, "{v}");
        }
        for v in [
            "-1", "\"-1\"", "1.5", "\"\"", "\"12a\"", "true", "[]", "\"1e3\"", "\" 5\"",
        ] {
            let e = parse(
                200,
                &format!(r#"{{"access_token":"a","token_type":"Bearer","expires_in":{v}}}"#),
            )
            .err()
            .unwrap();
            assert_eq!(reason(e), ResponseError::ExpiresIn, "{v}");
        }
    }

    #[test]
    fn expires_in_absent_means_3600() {
        let r = parse(200, r#"{"access_token":"a","token_type":"Bearer"}"#).unwrap();
        assert_eq!(r.expires_in, DEFAULT_EXPIRES_IN);
    }

    #[test]
    fn ok_with_error_member_is_an_error() {
        let e = parse(
            200,
            r#"{"error":"invalid_grant","error_description":"nope"}"#,
        )
        .err()
        .unwrap();
        let Error::OAuth(o) = e else { panic!("{e:?}") };
        assert_eq!(o.kind(), OAuthErrorKind::InvalidGrant);
        assert_eq!(o.status(), Some(200));
    }

    #[test]
    fn rfc6749_5_2_error_response_is_typed_with_status() {
        let e = parse(400, r#"{"error":"invalid_grant"}"#).err().unwrap();
        assert_eq!((e.code(), e.status()), ("invalid_grant", Some(400)));
        let e = parse(401, r#"{"error":"invalid_client"}"#).err().unwrap();
        assert_eq!((e.code(), e.status()), ("invalid_client", Some(401)));
        let e = parse(400, r#"{"error":"user_blocked"}"#).err().unwrap();
        assert!(e.is_session_over());
    }

    #[test]
    fn non_json_non_object_and_duplicates_are_errors() {
        assert!(matches!(
            reason(parse(200, "<html>").err().unwrap()),
            ResponseError::Json(JsonError::Syntax { .. })
        ));
        assert_eq!(
            reason(parse(200, "[]").err().unwrap()),
            ResponseError::Json(JsonError::NotAnObject)
        );
        let e = parse(
            200,
            r#"{"access_token":"a","access_token":"b","token_type":"Bearer"}"#,
        )
        .err()
        .unwrap();
        assert_eq!(
            reason(e),
            ResponseError::Json(JsonError::DuplicateMember("access_token".into()))
        );
    }

    #[test]
    fn members_must_have_the_right_types() {
        let cases = [
            (
                r#"{"access_token":1,"token_type":"Bearer"}"#,
                ResponseError::Json(JsonError::Invalid("access_token")),
            ),
            (
                r#"{"access_token":"","token_type":"Bearer"}"#,
                ResponseError::Empty("access_token"),
            ),
            (
                r#"{"token_type":"Bearer"}"#,
                ResponseError::Json(JsonError::Missing("access_token")),
            ),
            (
                r#"{"access_token":"a","token_type":"Bearer","refresh_token":5}"#,
                ResponseError::Json(JsonError::Invalid("refresh_token")),
            ),
            (
                r#"{"access_token":"a","token_type":"Bearer","id_token":""}"#,
                ResponseError::Empty("id_token"),
            ),
            (
                r#"{"access_token":"a","token_type":"Bearer","scope":["openid"]}"#,
                ResponseError::Json(JsonError::Invalid("scope")),
            ),
        ];
        for (body, want) in cases {
            assert_eq!(reason(parse(200, body).err().unwrap()), want, "{body}");
        }
    }

    #[test]
    fn token_set_json_is_the_python_sdks() {
        let ts = TokenSet {
            access_token: "at".into(),
            token_type: "Bearer".into(),
            expires_at: 1_767_312_000,
            refresh_token: Some("rt".into()),
            id_token: None,
            subject_hint: Some("usr_1".into()),
            scope: None,
        };
        assert_eq!(
            ts.to_json(),
            r#"{"access_token":"at","token_type":"Bearer","expires_at":1767312000,"refresh_token":"rt","id_token":null,"subject_hint":"usr_1","scope":null}"#
        );
        assert_eq!(TokenSet::from_json(ts.to_json().as_bytes()).unwrap(), ts);
    }

    #[test]
    fn stored_token_set_from_python_with_float_expiry_and_missing_members() {
        let ts =
            TokenSet::from_json(br#"{"access_token":"at","expires_at":1767312000.75}"#).unwrap();
        assert_eq!(
            (ts.expires_at, ts.token_type.as_str(), ts.refresh_token),
            (1_767_312_000, "Bearer", None)
        );
        assert!(TokenSet::from_json(br#"{"access_token":"at","expires_at":-1}"#).is_err());
        assert!(TokenSet::from_json(br#"{"access_token":"","expires_at":1}"#).is_err());
        assert!(
            TokenSet::from_json(br#"{"access_token":"a","access_token":"b","expires_at":1}"#)
                .is_err()
        );
    }

    #[test]
    fn stored_token_sets_are_read_strictly_through_serde_too() {
        let ok = r#"{"access_token":"at","expires_at":100,"extra":{"kept":false}}"#;
        let ts: TokenSet = serde_json::from_str(ok).unwrap();
        assert_eq!((ts.access_token.as_str(), ts.expires_at), ("at", 100));
        assert_eq!(TokenSet::from_json(ok.as_bytes()).unwrap(), ts);
        // The sequence form (formats that write structs as arrays), as a derived impl reads it.
        let seq = r#"["at","Bearer",100,null,null,null,"openid"]"#;
        let from_seq: TokenSet = serde_json::from_str(seq).unwrap();
        assert_eq!(
            (from_seq.expires_at, from_seq.scope.as_deref()),
            (100, Some("openid"))
        );
        assert!(
            serde_json::from_str::<TokenSet>(r#"["at","Bearer",1,null,null,null,null,8]"#).is_err()
        );
        assert!(serde_json::from_str::<TokenSet>(r#"["at"]"#).is_err());
        let refused = [
            (
                r#"{"access_token":"at","expires_at":1,"access_token":"evil"}"#,
                "access_token",
            ),
            (r#"{"access_token":"at","expires_at":1,"x":1,"x":2}"#, "x"),
            (
                r#"{"access_token":"at","expires_at":1,"x":{"y":[{"z":1,"z":2}]}}"#,
                "z",
            ),
        ];
        for (doc, name) in refused {
            assert_eq!(
                TokenSet::from_json(doc.as_bytes()),
                Err(JsonError::DuplicateMember(name.into())),
                "{doc}"
            );
            assert!(serde_json::from_str::<TokenSet>(doc).is_err(), "{doc}");
        }
        let wrong = [
            (r#"{"expires_at":1}"#, JsonError::Missing("access_token")),
            (
                r#"{"access_token":"","expires_at":1}"#,
                JsonError::Invalid("access_token"),
            ),
            (
                r#"{"access_token":"at","expires_at":1,"token_type":null}"#,
                JsonError::Invalid("token_type"),
            ),
            (
                r#"{"access_token":"at","expires_at":-0.5}"#,
                JsonError::Invalid("expires_at"),
            ),
            (r#"{"access_token":"at"}"#, JsonError::Missing("expires_at")),
            (
                r#"{"access_token":"at","expires_at":"1"}"#,
                JsonError::Invalid("expires_at"),
            ),
            (
                r#"{"access_token":"at","expires_at":1,"scope":7}"#,
                JsonError::Invalid("scope"),
            ),
            (
                r#"{"access_token":"at","expires_at":1,"id_token":[]}"#,
                JsonError::Invalid("id_token"),
            ),
        ];
        for (doc, want) in wrong {
            assert_eq!(TokenSet::from_json(doc.as_bytes()), Err(want), "{doc}");
        }
    }

    #[test]
    fn debug_never_shows_tokens() {
        let ts = TokenSet {
            access_token: "SECRET_AT".into(),
            token_type: "Bearer".into(),
            expires_at: 1,
            refresh_token: Some("SECRET_RT".into()),
            id_token: Some("SECRET_ID".into()),
            subject_hint: None,
            scope: None,
        };
        let d = format!("{ts:?}");
        assert!(!d.contains("SECRET"), "{d}");
    }

    #[test]
    fn expiry_arithmetic() {
        let ts = TokenSet::from_json(br#"{"access_token":"a","expires_at":100}"#).unwrap();
        assert_eq!(ts.expires_in(UnixTime(40)), 60);
        assert_eq!(ts.expires_in(UnixTime(140)), -40);
        assert!(!ts.is_expired(UnixTime(40), 30));
        assert!(ts.is_expired(UnixTime(40), 60));
        assert!(ts.is_expired(UnixTime(100), 0));
    }
}
