//! RFC 9068 access-token claim rules (JWT profile for OAuth 2.0 access tokens), mirroring
//! [`id_token`](crate::id_token): every claim the SDK reads has its type checked, and an
//! ill-typed one is an error, never silently dropped.
//!
//! The signature is verified before these rules run (see
//! [`ValidateAccessToken`](crate::flow::ValidateAccessToken)).

use crate::error::{ClaimError, TokenError};
use crate::id_token::{
    CommonClaims, check_times, numeric_date_of, optional_string, required_date, required_string,
};
use crate::json::{self, Lenient, Leniently, Object, ObjectOf, Scalar, ScalarSeed, once};
use crate::org::Memberships;
use crate::time::UnixTime;
use serde::de::{MapAccess, Visitor as _};
use serde_json::{Map, Value};

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
    /// Every member the payload reader does not model, as sent.
    pub(crate) custom: Map<String, Value>,
}

/// What an access token is checked against.
pub(crate) struct Expected<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) audience: &'a str,
    pub(crate) leeway: u64,
    pub(crate) now: UnixTime,
}

/// `dat.type`: `dat`, when present and not `null`, is an object whose `type`, when present and
/// not `null`, is a string. `Err(())` for anything else.
struct DatType;

impl<'de> Lenient<'de> for DatType {
    type Value = Result<Option<String>, ()>;
    fn otherwise(self) -> Result<Option<String>, ()> {
        Err(())
    }
    fn null(self) -> Result<Option<String>, ()> {
        Ok(None)
    }
    fn map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let dat = ObjectOf(Dat::default()).visit_map(map)?;
        Ok(match dat.typ {
            None | Some(Scalar::Null) => Ok(None),
            Some(Scalar::Str(s)) => Ok(Some(s.into_owned())),
            Some(_) => Err(()),
        })
    }
}

/// The members of `dat` the SDK reads.
#[derive(Default)]
struct Dat<'de> {
    typ: Option<Scalar<'de>>,
}

impl<'de> Object<'de> for Dat<'de> {
    fn member<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        if key != "type" {
            return Ok(false);
        }
        once(map, &mut self.typ, ScalarSeed, key)?;
        Ok(true)
    }
}

/// An access-token payload as read, in one pass: each modeled member as sent (a second
/// occurrence is a duplicate), everything else into `custom`. The rules run in
/// [`AccessClaims::check`].
#[derive(Default)]
struct Payload<'de> {
    common: CommonClaims<'de>,
    client_id: Option<Scalar<'de>>,
    jti: Option<Scalar<'de>>,
    scope: Option<Scalar<'de>>,
    sid: Option<Scalar<'de>>,
    dat: Option<Result<Option<String>, ()>>,
}

impl<'de> Object<'de> for Payload<'de> {
    fn member<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        let slot = match key {
            "dat" => return once(map, &mut self.dat, Leniently(DatType), key).map(|()| true),
            "client_id" => &mut self.client_id,
            "jti" => &mut self.jti,
            "scope" => &mut self.scope,
            "sid" => &mut self.sid,
            _ => return self.common.member(key, map),
        };
        once(map, slot, ScalarSeed, key)?;
        Ok(true)
    }

    fn custom(&mut self) -> Option<&mut Map<String, Value>> {
        self.common.custom()
    }
}

impl AccessClaims {
    /// Reads the claims from a verified payload and checks them against `expected`, in this
    /// order: `iss` (exact), `aud` contains the API's audience, `exp`/`iat` present and
    /// `exp`/`iat`/`nbf` with leeway, then `sub`, `client_id`, `jti` present and `scope`,
    /// `sid`, `org_id`, `dat` well typed.
    pub(crate) fn check(
        payload: &[u8],
        expected: &Expected<'_>,
    ) -> Result<AccessClaims, TokenError> {
        let p: Payload<'_> = json::parse_typed(payload)?;
        let c = p.common;
        let iss = required_string(c.iss, "iss")?;
        if iss != expected.issuer {
            return Err(ClaimError::Issuer.into());
        }
        let aud = c.aud.flatten().ok_or(ClaimError::Missing("aud"))?;
        if !aud.iter().any(|a| a == expected.audience) {
            return Err(ClaimError::Audience.into());
        }
        let exp = required_date(c.exp, "exp")?;
        let iat = required_date(c.iat, "iat")?;
        let nbf = numeric_date_of(c.nbf, "nbf")?;
        check_times(exp, Some(iat), nbf, expected.leeway, expected.now)?;
        Ok(AccessClaims {
            iss,
            sub: required_string(c.sub, "sub")?,
            aud,
            exp,
            iat,
            nbf,
            client_id: required_string(p.client_id, "client_id")?,
            jti: required_string(p.jti, "jti")?,
            scope: optional_string(p.scope, "scope")?,
            sid: optional_string(p.sid, "sid")?,
            org_id: optional_string(c.org_id, "org_id")?,
            organizations: c.organizations.unwrap_or_default(),
            dat_type: p
                .dat
                .unwrap_or(Ok(None))
                .map_err(|()| ClaimError::Missing("dat"))?,
            custom: c.custom,
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

    /// The claims of `map` checked against [`expected`]: a claim error, or the claims.
    fn check(map: Map<String, Value>) -> Result<AccessClaims, ClaimError> {
        let payload = serde_json::to_vec(&map).unwrap();
        match AccessClaims::check(&payload, &expected()) {
            Ok(c) => Ok(c),
            Err(TokenError::Claim(e)) => Err(e),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn duplicate_members_are_refused_at_any_depth() {
        let cases = [
            (r#"{"scope":"a","scope":"b"}"#, "scope"),
            (r#"{"dat":{"type":"identity","type":"agent"}}"#, "type"),
            (r#"{"dat":{"x":1,"x":2}}"#, "x"),
            (r#"{"tenant":1,"tenant":2}"#, "tenant"),
            (
                r#"{"organizations":[{"id":"org_1","scopes":["a"],"scopes":["*:**"]}]}"#,
                "scopes",
            ),
        ];
        for (doc, name) in cases {
            assert_eq!(
                AccessClaims::check(doc.as_bytes(), &expected()),
                Err(TokenError::Json(json::JsonError::DuplicateMember(
                    name.into()
                ))),
                "{doc}"
            );
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
        let c = check(valid()).unwrap();
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
                check(map),
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
            let c = check(map).unwrap();
            assert_eq!(
                (c.scope, c.sid, c.org_id, c.dat_type),
                (None, None, None, None),
                "{absent:?}"
            );
        }
    }
}
