//! UserInfo responses (OIDC Core §5.3) with AuthPI's claims.

use super::common::FINISHED;
use super::one_request::{OneRequest, Processed, Processor};
use crate::agent::Agent;
use crate::client::Client;
use crate::error::{ConfigError, Endpoint, Error, ResponseError};
use crate::http::error_response;
use crate::http::{Outgoing, RequestKind, get};
use crate::json::{self, Members};
use crate::org::{Organization, parse_organizations};
use crate::time::UnixTime;
use serde_json::{Map, Value};

/// The claims of a UserInfo response. Standard and AuthPI claims are typed; every other claim
/// is kept in [`UserInfo::custom`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct UserInfo {
    /// The subject.
    pub sub: String,
    /// `name`.
    pub name: Option<String>,
    /// `given_name`.
    pub given_name: Option<String>,
    /// `family_name`.
    pub family_name: Option<String>,
    /// `picture`.
    pub picture: Option<String>,
    /// `locale`.
    pub locale: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `email_verified`.
    pub email_verified: Option<bool>,
    /// `phone_number`.
    pub phone_number: Option<String>,
    /// `phone_number_verified`.
    pub phone_number_verified: Option<bool>,
    /// `address` (OIDC Core §5.1.1 object), as sent.
    pub address: Option<Value>,
    /// AuthPI's selected organization (`org=` logins).
    pub org_id: Option<String>,
    /// AuthPI's organization memberships (lenient parsing, as in tokens).
    pub organizations: Vec<Organization>,
    /// AuthPI's `created_at` (Unix seconds).
    pub created_at: Option<u64>,
    /// `updated_at` (Unix seconds).
    pub updated_at: Option<u64>,
    /// Every other claim, as sent (custom claims).
    pub custom: Map<String, Value>,
}

const TYPED: &[&str] = &[
    "sub",
    "name",
    "given_name",
    "family_name",
    "picture",
    "locale",
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "address",
    "org_id",
    "organizations",
    "created_at",
    "updated_at",
];

fn bad(reason: ResponseError) -> Error {
    Error::Response {
        endpoint: Endpoint::UserInfo,
        reason,
    }
}

/// Validates a UserInfo response; `sub` must equal `expected_sub` when given (what
/// [`Client::userinfo`] runs on the answer).
///
/// # Errors
/// The endpoint's error answer, a body that is not a strict JSON object, a missing `sub`,
/// [`Error::SubjectMismatch`], a signed or encrypted answer (unsupported).
pub fn process_userinfo_response(
    response: &http::Response<Vec<u8>>,
    expected_sub: Option<&str>,
) -> Result<UserInfo, Error> {
    if response.status() != http::StatusCode::OK {
        return Err(error_response(Endpoint::UserInfo, response));
    }
    let is_jwt = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/jwt")
        });
    if is_jwt {
        return Err(bad(ResponseError::Unsupported(
            "signed or encrypted UserInfo (application/jwt)",
        )));
    }
    let mut map = json::parse_object(response.body()).map_err(|e| bad(e.into()))?;
    let organizations = map
        .remove("organizations")
        .map(|claim| parse_organizations(&claim))
        .unwrap_or_default();
    let sub = match map.opt_str("sub").map_err(|e| bad(e.into()))? {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => return Err(bad(json::JsonError::Missing("sub").into())),
    };
    if let Some(expected) = expected_sub {
        if sub != expected {
            return Err(Error::subject_mismatch(expected, &sub));
        }
    }
    let s =
        |m: &Map<String, Value>, k: &'static str| m.opt_str(k).ok().flatten().map(str::to_owned);
    let b = |m: &Map<String, Value>, k: &'static str| m.opt_bool(k).ok().flatten();
    let n = |m: &Map<String, Value>, k: &'static str| m.opt_u64(k).ok().flatten();
    let info = UserInfo {
        name: s(&map, "name"),
        given_name: s(&map, "given_name"),
        family_name: s(&map, "family_name"),
        picture: s(&map, "picture"),
        locale: s(&map, "locale"),
        email: s(&map, "email"),
        email_verified: b(&map, "email_verified"),
        phone_number: s(&map, "phone_number"),
        phone_number_verified: b(&map, "phone_number_verified"),
        address: map.get("address").filter(|v| v.is_object()).cloned(),
        org_id: s(&map, "org_id"),
        organizations,
        created_at: n(&map, "created_at"),
        updated_at: n(&map, "updated_at"),
        sub,
        custom: Map::new(),
    };
    for k in TYPED {
        map.remove(*k);
    }
    Ok(UserInfo {
        custom: map,
        ..info
    })
}

impl Client {
    /// UserInfo for an agent's access token; `sub` must equal the agent's id.
    pub fn userinfo(&self, agent: &Agent) -> Result<OneRequest<UserInfo>, Error> {
        self.userinfo_for(&agent.tokens().access_token, Some(agent.id()))
    }

    /// UserInfo for an access token; when `expected_sub` is given, `sub` must equal it.
    pub fn userinfo_for(
        &self,
        access_token: &str,
        expected_sub: Option<&str>,
    ) -> Result<OneRequest<UserInfo>, Error> {
        if access_token.is_empty() {
            return Err(ConfigError::EmptyToken.into());
        }
        let endpoint = self
            .metadata()
            .userinfo_endpoint()
            .ok_or(Error::Unsupported(Endpoint::UserInfo))?;
        Ok(OneRequest::new(
            Outgoing {
                kind: RequestKind::UserInfo,
                request: get(endpoint, Some(access_token))?,
            },
            Processor::UserInfo {
                expected_sub: expected_sub.map(str::to_owned),
            },
        ))
    }
}

impl Processed for UserInfo {
    fn run(p: Processor, resp: &http::Response<Vec<u8>>, _: UnixTime) -> Result<Self, Error> {
        match p {
            Processor::UserInfo { expected_sub } => {
                process_userinfo_response(resp, expected_sub.as_deref())
            }
            _ => Err(FINISHED),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, ct: &str, body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .header("content-type", ct)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    #[test]
    fn standard_authpi_and_custom_claims() {
        let body = r#"{"sub":"usr_1","name":"Alice","email":"a@x","email_verified":true,
            "org_id":"org_1","organizations":[{"id":"org_1","title":null,"scopes":["owner"],"joined_at":5}],
            "created_at":100,"updated_at":200,"plan":"pro","address":{"country":"FR"}}"#;
        let u =
            process_userinfo_response(&resp(200, "application/json", body), Some("usr_1")).unwrap();
        assert_eq!(u.name.as_deref(), Some("Alice"));
        assert_eq!(u.email_verified, Some(true));
        assert_eq!(u.org_id.as_deref(), Some("org_1"));
        assert_eq!(u.organizations.len(), 1);
        assert_eq!((u.created_at, u.updated_at), (Some(100), Some(200)));
        assert_eq!(u.custom.get("plan"), Some(&Value::from("pro")));
        assert!(!u.custom.contains_key("sub"));
        assert_eq!(u.address.unwrap()["country"], "FR");
    }

    #[test]
    fn oidcc_client_test_userinfo_invalid_sub() {
        let e = process_userinfo_response(
            &resp(200, "application/json", r#"{"sub":"usr_other"}"#),
            Some("usr_1"),
        )
        .unwrap_err();
        assert_eq!(e.code(), "subject_mismatch");
        assert!(
            matches!(e, Error::SubjectMismatch { ref expected, ref actual } if expected == "usr_1" && actual == "usr_other")
        );
    }

    #[test]
    fn sub_is_required_and_errors_are_typed() {
        assert!(
            process_userinfo_response(&resp(200, "application/json", r#"{"name":"x"}"#), None)
                .is_err()
        );
        assert!(
            process_userinfo_response(
                &resp(200, "application/json", r#"{"sub":"a","sub":"b"}"#),
                None
            )
            .is_err()
        );
        assert!(process_userinfo_response(&resp(200, "application/jwt", "a.b.c"), None).is_err());
        let e = process_userinfo_response(
            &http::Response::builder()
                .status(401)
                .header("www-authenticate", r#"Bearer error="invalid_token""#)
                .body(Vec::new())
                .unwrap(),
            None,
        )
        .unwrap_err();
        assert_eq!((e.code(), e.status()), ("invalid_token", Some(401)));
    }
}
