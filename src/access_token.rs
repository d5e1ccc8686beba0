//! RFC 9068 access-token claim rules (JWT profile for OAuth 2.0 access tokens), mirroring
//! [`id_token`](crate::id_token): every claim the SDK reads has its type checked, and an
//! ill-typed one is an error, never silently dropped.
//!
//! The signature is verified before these rules run (see
//! [`ValidateAccessToken`](crate::flow::ValidateAccessToken)).

use crate::error::ClaimError;
use crate::id_token::{audiences, check_times, numeric_date};
use crate::json::Members as _;
use crate::org::Memberships;
use crate::time::UnixTime;
use serde_json::{Map, Value};

/// Members this module models; everything else is a custom claim.
const MODELED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "client_id",
    "jti",
    "scope",
    "sid",
    "org_id",
    "organizations",
    "dat",
];

/// The claims of an access token the SDK relies on, and the rest as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AccessClaims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: Vec<String>,
    pub(crate) exp: u64,
    pub(crate) iat: u64,
    pub(crate) nbf: Option<u64>,
    pub(crate) client_id: String,
    pub(crate) jti: String,
    pub(crate) scope: Option<String>,
    pub(crate) sid: Option<String>,
    pub(crate) org_id: Option<String>,
    pub(crate) organizations: Memberships,
    pub(crate) dat_type: Option<String>,
    /// Every member not listed in [`MODELED`], as sent.
    pub(crate) custom: Map<String, Value>,
}

/// What an access token is checked against.
pub(crate) struct Expected<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) audience: &'a str,
    pub(crate) leeway: u64,
    pub(crate) now: UnixTime,
}

fn required(map: &Map<String, Value>, name: &'static str) -> Result<String, ClaimError> {
    match map.opt_str(name) {
        Ok(Some(s)) if !s.is_empty() => Ok(s.to_owned()),
        _ => Err(ClaimError::Missing(name)),
    }
}

/// An optional string claim: absent or `null` is `None`, another JSON type is an error.
fn optional(map: &Map<String, Value>, name: &'static str) -> Result<Option<String>, ClaimError> {
    map.opt_str(name)
        .map(|o| o.map(str::to_owned))
        .map_err(|_| ClaimError::Missing(name))
}

/// `dat.type`: `dat`, when present, is an object whose `type`, when present, is a string.
fn dat_type(map: &Map<String, Value>) -> Result<Option<String>, ClaimError> {
    match map.get("dat") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(dat)) => match dat.get("type") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ClaimError::Missing("dat")),
        },
        Some(_) => Err(ClaimError::Missing("dat")),
    }
}

impl AccessClaims {
    /// Decodes the claims from a parsed payload and checks them against `expected`, in this
    /// order: `iss` (exact), `aud` contains the API's audience, `exp`/`iat` present and
    /// `exp`/`iat`/`nbf` with leeway, then `sub`, `client_id`, `jti` present and `scope`,
    /// `sid`, `org_id`, `dat` well typed.
    pub(crate) fn check(
        mut map: Map<String, Value>,
        expected: &Expected<'_>,
    ) -> Result<AccessClaims, ClaimError> {
        let organizations = map
            .remove("organizations")
            .map(|claim| Memberships::from_claim(&claim))
            .unwrap_or_default();
        let iss = required(&map, "iss")?;
        if iss != expected.issuer {
            return Err(ClaimError::Issuer);
        }
        let aud = audiences(&map)?;
        if !aud.iter().any(|a| a == expected.audience) {
            return Err(ClaimError::Audience);
        }
        let exp = numeric_date(&map, "exp")
            .ok()
            .flatten()
            .ok_or(ClaimError::Missing("exp"))?;
        let iat = numeric_date(&map, "iat")
            .ok()
            .flatten()
            .ok_or(ClaimError::Missing("iat"))?;
        let nbf = numeric_date(&map, "nbf")?;
        check_times(exp, Some(iat), nbf, expected.leeway, expected.now)?;
        let claims = AccessClaims {
            iss,
            sub: required(&map, "sub")?,
            aud,
            exp,
            iat,
            nbf,
            client_id: required(&map, "client_id")?,
            jti: required(&map, "jti")?,
            scope: optional(&map, "scope")?,
            sid: optional(&map, "sid")?,
            org_id: optional(&map, "org_id")?,
            organizations,
            dat_type: dat_type(&map)?,
            custom: Map::new(),
        };
        for name in MODELED {
            map.remove(*name);
        }
        Ok(AccessClaims {
            custom: map,
            ..claims
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Map<String, Value> {
        match json!({
            "iss": "https://idp.example", "sub": "usr_1", "aud": ["api"], "exp": 2000,
            "iat": 1000, "client_id": "c", "jti": "j", "scope": "openid", "sid": "s",
            "org_id": "org_1", "dat": {"type": "identity"}, "tenant_tier": "gold",
        }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://idp.example",
            audience: "api",
            leeway: 60,
            now: UnixTime(1500),
        }
    }

    #[test]
    fn valid_claims_are_read_and_the_rest_is_custom() {
        let c = AccessClaims::check(valid(), &expected()).unwrap();
        assert_eq!(c.sub, "usr_1");
        assert_eq!(c.scope.as_deref(), Some("openid"));
        assert_eq!(c.sid.as_deref(), Some("s"));
        assert_eq!(c.org_id.as_deref(), Some("org_1"));
        assert_eq!(c.dat_type.as_deref(), Some("identity"));
        assert_eq!(c.custom.len(), 1);
        assert_eq!(c.custom["tenant_tier"], "gold");
    }

    /// An ill-typed optional claim is an error naming it, as in an ID token (RFC 9068 §2.2:
    /// the claims have defined types); it used to be dropped silently.
    #[test]
    fn ill_typed_optional_claims_are_refused() {
        let cases: &[(&str, Value, &str)] = &[
            ("scope", json!(["openid"]), "scope"),
            ("scope", json!(1), "scope"),
            ("sid", json!(7), "sid"),
            ("sid", json!({"a": 1}), "sid"),
            ("org_id", json!(true), "org_id"),
            ("org_id", json!(["org_1"]), "org_id"),
            ("dat", json!("identity"), "dat"),
            ("dat", json!({"type": 1}), "dat"),
        ];
        for (name, value, reported) in cases {
            let mut map = valid();
            map.insert((*name).to_owned(), value.clone());
            assert_eq!(
                AccessClaims::check(map, &expected()),
                Err(ClaimError::Missing(reported)),
                "{name} = {value}"
            );
        }
    }

    #[test]
    fn absent_or_null_optional_claims_are_none() {
        for absent in [None, Some(Value::Null)] {
            let mut map = valid();
            for name in ["scope", "sid", "org_id", "dat"] {
                map.remove(name);
                if let Some(v) = &absent {
                    map.insert(name.to_owned(), v.clone());
                }
            }
            let c = AccessClaims::check(map, &expected()).unwrap();
            assert_eq!(
                (c.scope, c.sid, c.org_id, c.dat_type),
                (None, None, None, None),
                "{absent:?}"
            );
        }
    }
}
