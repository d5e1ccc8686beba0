//! ID-token claim rules (OpenID Connect Core §3.1.3.7, §12.2) and the claims the agent uses.
//!
//! Signature verification happens before these rules run (see [`crate::flow`]); this module
//! checks the claims of a token whose signature is already verified, and decodes the claims of a
//! stored ID token (one that was verified when it entered the session store).

use crate::constant_time;
use crate::error::{ClaimError, TokenError};
use crate::jose::{Algorithm, at_hash_matches, stored_payload};
use crate::json::{
    self, Lenient, Leniently, Member as _, Object, Scalar, ScalarSeed, f64_to_u64, once,
};
use crate::org::{Claim, Memberships};
use crate::time::UnixTime;
use serde::de::{DeserializeSeed as _, MapAccess, SeqAccess};
use serde_json::{Map, Value};

/// The claims of an ID token the SDK relies on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub azp: Option<String>,
    pub exp: u64,
    pub iat: u64,
    pub nbf: Option<u64>,
    pub nonce: Option<String>,
    pub auth_time: Option<u64>,
    /// `auth_time` is present with a type that is not a NumericDate: refused only where
    /// `auth_time` is used (`max_age` sent, or a refresh of a session that has one).
    pub auth_time_invalid: bool,
    pub at_hash: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub org_id: Option<String>,
    pub organizations: Memberships,
    /// Every member the payload reader does not model, as sent.
    pub custom: Map<String, Value>,
}

fn claim<T>(r: Result<T, json::JsonError>, name: &'static str) -> Result<T, ClaimError> {
    r.map_err(|_| ClaimError::Missing(name))
}

/// A NumericDate claim (RFC 7519 §2): a JSON number of seconds, possibly non-integer (the
/// fraction is dropped); `Ok(None)` when absent or null; negative, non-finite or out-of-range
/// values and other JSON types are errors.
pub(crate) fn numeric_date(
    map: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, ClaimError> {
    numeric_date_of(map.get(name).map(Scalar::of), name)
}

/// [`numeric_date`] for a member read by a typed reader (`None`: absent).
pub(crate) fn numeric_date_of(
    value: Option<Scalar<'_>>,
    name: &'static str,
) -> Result<Option<u64>, ClaimError> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::U64(u)) => Ok(Some(u)),
        Some(Scalar::F64(f)) => f64_to_u64(f).map(Some).ok_or(ClaimError::Missing(name)),
        Some(_) => Err(ClaimError::Missing(name)),
    }
}

/// `aud`: a string or a non-empty array of strings.
pub(crate) fn audiences(map: &Map<String, Value>) -> Result<Vec<String>, ClaimError> {
    // The typed readers' rule, run on the `Value` (which cannot fail to be read).
    map.get("aud")
        .and_then(|aud| Leniently(Audiences).deserialize(aud).ok().flatten())
        .ok_or(ClaimError::Missing("aud"))
}

/// A NumericDate claim that must be present.
pub(crate) fn required_date(
    value: Option<Scalar<'_>>,
    name: &'static str,
) -> Result<u64, ClaimError> {
    numeric_date_of(value, name)?.ok_or(ClaimError::Missing(name))
}

/// A string claim that must be present and non-empty; any other type is an error.
pub(crate) fn required_string(
    value: Option<Scalar<'_>>,
    name: &'static str,
) -> Result<String, ClaimError> {
    match claim(value.string(name), name)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(ClaimError::Missing(name)),
    }
}

/// A string claim: absent or `null` is `None`, another JSON type is an error (RFC 9068 §2.2,
/// OIDC Core §2: the claims have defined types).
pub(crate) fn optional_string(
    value: Option<Scalar<'_>>,
    name: &'static str,
) -> Result<Option<String>, ClaimError> {
    claim(value.string(name), name)
}

/// `aud` as read from a payload: `None` when it is neither a string nor a non-empty array of
/// strings.
pub(crate) struct Audiences;

impl<'de> Lenient<'de> for Audiences {
    type Value = Option<Vec<String>>;
    fn otherwise(self) -> Option<Vec<String>> {
        None
    }
    fn string(self, v: &str) -> Option<Vec<String>> {
        Some(vec![v.to_owned()])
    }
    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Vec<String>>, A::Error> {
        let mut all = Some(Vec::new());
        while let Some(item) = seq.next_element_seed(ScalarSeed)? {
            match (item, &mut all) {
                (Scalar::Str(s), Some(list)) => list.push(s.into_owned()),
                _ => all = None,
            }
        }
        Ok(all.filter(|list| !list.is_empty()))
    }
}

/// The members every AuthPI JWT payload (ID token, access token) has: the registered claims
/// the SDK reads (RFC 7519 §4.1), AuthPI's `org_id` and `organizations`, and every member the
/// token type does not model, kept as custom claims. Read by the payload readers below and in
/// [`crate::access_token`]; the type rules run where the claims are built.
#[derive(Default)]
pub(crate) struct CommonClaims<'de> {
    pub(crate) iss: Option<Scalar<'de>>,
    pub(crate) sub: Option<Scalar<'de>>,
    pub(crate) aud: Option<Option<Vec<String>>>,
    pub(crate) exp: Option<Scalar<'de>>,
    pub(crate) iat: Option<Scalar<'de>>,
    pub(crate) nbf: Option<Scalar<'de>>,
    pub(crate) org_id: Option<Scalar<'de>>,
    pub(crate) organizations: Option<Memberships>,
    pub(crate) custom: Map<String, Value>,
}

impl<'de> Object<'de> for CommonClaims<'de> {
    fn member<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        let slot = match key {
            "aud" => return once(map, &mut self.aud, Leniently(Audiences), key).map(|()| true),
            "organizations" => {
                return once(map, &mut self.organizations, Leniently(Claim), key).map(|()| true);
            }
            "iss" => &mut self.iss,
            "sub" => &mut self.sub,
            "exp" => &mut self.exp,
            "iat" => &mut self.iat,
            "nbf" => &mut self.nbf,
            "org_id" => &mut self.org_id,
            _ => return Ok(false),
        };
        once(map, slot, ScalarSeed, key)?;
        Ok(true)
    }

    fn custom(&mut self) -> Option<&mut Map<String, Value>> {
        Some(&mut self.custom)
    }
}

/// An ID-token payload as read, in one pass: each modeled member as sent (a second occurrence
/// is a duplicate), everything else into `custom`. The rules run in [`IdClaims::from_payload`].
#[derive(Default)]
struct Payload<'de> {
    common: CommonClaims<'de>,
    azp: Option<Scalar<'de>>,
    nonce: Option<Scalar<'de>>,
    auth_time: Option<Scalar<'de>>,
    at_hash: Option<Scalar<'de>>,
    email: Option<Scalar<'de>>,
    email_verified: Option<Scalar<'de>>,
}

impl<'de> Object<'de> for Payload<'de> {
    fn member<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        let slot = match key {
            "azp" => &mut self.azp,
            "nonce" => &mut self.nonce,
            "auth_time" => &mut self.auth_time,
            "at_hash" => &mut self.at_hash,
            "email" => &mut self.email,
            "email_verified" => &mut self.email_verified,
            _ => return self.common.member(key, map),
        };
        once(map, slot, ScalarSeed, key)?;
        Ok(true)
    }

    fn custom(&mut self) -> Option<&mut Map<String, Value>> {
        self.common.custom()
    }
}

impl IdClaims {
    /// Reads a payload straight into the claims (no `Value` tree but for custom claims) and
    /// applies the type rules, in claim order: `iss`, `sub`, `aud`, `azp`, `exp`, `iat`, `nbf`,
    /// `nonce`, `at_hash` must be well typed; `auth_time` of the wrong type is only flagged;
    /// profile claims of the wrong type are dropped; `organizations` is read leniently.
    pub(crate) fn from_payload(payload: &[u8]) -> Result<IdClaims, TokenError> {
        let p: Payload<'_> = json::parse_typed(payload)?;
        let c = p.common;
        let auth_time = numeric_date_of(p.auth_time, "auth_time");
        Ok(IdClaims {
            iss: required_string(c.iss, "iss")?,
            sub: required_string(c.sub, "sub")?,
            aud: c.aud.flatten().ok_or(ClaimError::Missing("aud"))?,
            azp: optional_string(p.azp, "azp")?,
            exp: required_date(c.exp, "exp")?,
            iat: required_date(c.iat, "iat")?,
            nbf: numeric_date_of(c.nbf, "nbf")?,
            nonce: optional_string(p.nonce, "nonce")?,
            auth_time: auth_time.clone().ok().flatten(),
            auth_time_invalid: auth_time.is_err(),
            at_hash: optional_string(p.at_hash, "at_hash")?,
            // Profile claims are informative: a wrong type is dropped, not fatal.
            email: p.email.string("email").ok().flatten(),
            email_verified: p.email_verified.boolean("email_verified").ok().flatten(),
            org_id: c.org_id.string("org_id").ok().flatten(),
            organizations: c.organizations.unwrap_or_default(),
            custom: c.custom,
        })
    }
}

/// What an ID token is checked against.
pub(crate) struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub trusted_audiences: &'a [String],
    /// The nonce sent at authorization: required and equal. `None` on refresh (see
    /// [`check_refreshed`]).
    pub nonce: Option<&'a str>,
    pub max_age: Option<u64>,
    pub access_token: Option<&'a str>,
    pub leeway: u64,
    pub now: UnixTime,
}

/// `typ` values that mark a JWT as something other than an ID token.
pub(crate) fn is_other_token_type(typ: Option<&str>) -> bool {
    typ_is(typ, "at+jwt") || typ_is(typ, "logout+jwt")
}

/// Whether a JWS `typ` names the media type `expected` (RFC 7515 §4.1.9: the `application/`
/// prefix may be omitted; media types, prefix included, compare case-insensitively).
pub(crate) fn typ_is(typ: Option<&str>, expected: &str) -> bool {
    const PREFIX: &str = "application/";
    typ.is_some_and(|t| {
        let subtype = match t.get(..PREFIX.len()) {
            Some(p) if p.eq_ignore_ascii_case(PREFIX) => t.get(PREFIX.len()..).unwrap_or(t),
            _ => t,
        };
        subtype.eq_ignore_ascii_case(expected)
    })
}

/// Time rules shared by ID and access tokens.
pub(crate) fn check_times(
    exp: u64,
    iat: Option<u64>,
    nbf: Option<u64>,
    leeway: u64,
    now: UnixTime,
) -> Result<(), ClaimError> {
    let now = now.as_secs();
    if now >= exp.saturating_add(leeway) {
        return Err(ClaimError::Expired);
    }
    if nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(ClaimError::NotYetValid);
    }
    if iat.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err(ClaimError::IssuedInFuture);
    }
    Ok(())
}

/// The claim rules for a verified ID token signed with `alg`.
pub(crate) fn check(
    claims: &IdClaims,
    alg: Algorithm,
    typ: Option<&str>,
    e: &Expected<'_>,
) -> Result<(), ClaimError> {
    if is_other_token_type(typ) {
        return Err(ClaimError::Type);
    }
    if claims.iss != e.issuer {
        return Err(ClaimError::Issuer);
    }
    if !claims.aud.iter().any(|a| a == e.client_id) {
        return Err(ClaimError::Audience);
    }
    if claims
        .aud
        .iter()
        .any(|a| a != e.client_id && !e.trusted_audiences.contains(a))
    {
        return Err(ClaimError::UntrustedAudience);
    }
    if claims.azp.as_deref().is_some_and(|azp| azp != e.client_id) {
        return Err(ClaimError::AuthorizedParty);
    }
    // OIDC Core §3.1.3.7 step 4: several audiences need an `azp` (which then must be ours).
    let several = claims
        .aud
        .first()
        .is_some_and(|first| claims.aud.iter().any(|a| a != first));
    if several && claims.azp.is_none() {
        return Err(ClaimError::Missing("azp"));
    }
    check_times(claims.exp, Some(claims.iat), claims.nbf, e.leeway, e.now)?;
    if let Some(expected) = e.nonce {
        match &claims.nonce {
            None => return Err(ClaimError::MissingNonce),
            Some(n) if !constant_time::eq(n, expected) => return Err(ClaimError::NonceMismatch),
            Some(_) => {}
        }
    }
    if let Some(max_age) = e.max_age {
        if claims.auth_time_invalid {
            return Err(ClaimError::Missing("auth_time"));
        }
        let auth_time = claims.auth_time.ok_or(ClaimError::AuthTime)?;
        if auth_time.saturating_add(max_age).saturating_add(e.leeway) < e.now.as_secs() {
            return Err(ClaimError::AuthTime);
        }
    }
    if let (Some(at_hash), Some(access_token)) = (&claims.at_hash, e.access_token) {
        if !at_hash_matches(alg, access_token, at_hash) {
            return Err(ClaimError::AtHash);
        }
    }
    Ok(())
}

/// OIDC Core §12.2: a refreshed ID token keeps `iss` and `aud` (compared as sets: order and
/// repetition carry no meaning); its `azp` and `nonce`, if present, equal the original's; its
/// `auth_time`, if present, equals the original's when that had one (it is the time of the
/// original authentication). (`sub` is compared by the caller, which reports
/// `subject_mismatch`.)
pub(crate) fn check_refreshed(new: &IdClaims, original: &IdClaims) -> Result<(), ClaimError> {
    if new.iss != original.iss {
        return Err(ClaimError::Changed("iss"));
    }
    fn set(aud: &[String]) -> std::collections::BTreeSet<&str> {
        aud.iter().map(String::as_str).collect()
    }
    if set(&new.aud) != set(&original.aud) {
        return Err(ClaimError::Changed("aud"));
    }
    if new.azp.is_some() && new.azp != original.azp {
        return Err(ClaimError::Changed("azp"));
    }
    if let Some(n) = &new.nonce {
        match &original.nonce {
            Some(o) if constant_time::eq(n, o) => {}
            _ => return Err(ClaimError::NonceMismatch),
        }
    }
    if original.auth_time.is_some()
        && (new.auth_time_invalid || new.auth_time.is_some_and(|t| Some(t) != original.auth_time))
    {
        return Err(ClaimError::Changed("auth_time"));
    }
    Ok(())
}

/// Decodes a stored ID token without verifying its signature or reading its header (both were
/// checked when it entered the store), and checks that it belongs to this issuer and client.
pub(crate) fn decode_stored(
    token: &str,
    issuer: &str,
    client_id: &str,
) -> Result<IdClaims, TokenError> {
    let claims = IdClaims::from_payload(&stored_payload(token)?)?;
    if claims.iss != issuer {
        return Err(ClaimError::Issuer.into());
    }
    if !claims.aud.iter().any(|a| a == client_id) {
        return Err(ClaimError::Audience.into());
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISS: &str = "https://idp.authpi.com/i_a";

    fn claims(v: Value) -> Result<IdClaims, TokenError> {
        IdClaims::from_payload(&serde_json::to_vec(&v).unwrap())
    }

    fn base() -> Value {
        json!({"iss": ISS, "sub": "usr_1", "aud": "client_1", "exp": 2000, "iat": 1000, "nonce": "N"})
    }

    fn expected() -> Expected<'static> {
        Expected {
            issuer: ISS,
            client_id: "client_1",
            trusted_audiences: &[],
            nonce: Some("N"),
            max_age: None,
            access_token: None,
            leeway: 60,
            now: UnixTime(1500),
        }
    }

    fn run(v: Value, e: &Expected<'_>) -> Result<(), TokenError> {
        let c = claims(v)?;
        check(&c, Algorithm::Es256, None, e).map_err(Into::into)
    }

    fn with(mut v: Value, k: &str, x: Value) -> Value {
        if x.is_null() {
            v.as_object_mut().unwrap().remove(k);
        } else {
            v[k] = x;
        }
        v
    }

    fn claim_err(r: Result<(), TokenError>) -> ClaimError {
        match r {
            Err(TokenError::Claim(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn duplicate_members_are_refused_at_any_depth() {
        // (payload, the duplicated name)
        let cases = [
            (r#"{"sub":"usr_1","sub":"usr_2"}"#, "sub"),
            (r#"{"sub":"usr_1","\u0073ub":"usr_2"}"#, "sub"),
            (r#"{"tier":"gold","tier":"free"}"#, "tier"),
            (r#"{"x":{"y":1,"y":2}}"#, "y"),
            (r#"{"aud":["a",{"k":1,"k":2}]}"#, "k"),
            (
                r#"{"organizations":[],"organizations":[]}"#,
                "organizations",
            ),
            (r#"{"organizations":[{"id":"org_1","id":"org_2"}]}"#, "id"),
            (
                r#"{"organizations":[{"id":"org_1","scopes":[],"scopes":[]}]}"#,
                "scopes",
            ),
            (r#"{"organizations":[{"id":"org_1","x":1,"x":2}]}"#, "x"),
            (
                r#"{"organizations":[{"id":"org_1","title":{"a":1,"a":1}}]}"#,
                "a",
            ),
            (r#"{"organizations":[7,{"z":[{"q":1,"q":1}]}]}"#, "q"),
            (r#"{"email":{"e":1,"e":1}}"#, "e"),
        ];
        for (doc, name) in cases {
            assert_eq!(
                IdClaims::from_payload(doc.as_bytes()),
                Err(TokenError::Json(json::JsonError::DuplicateMember(
                    name.into()
                ))),
                "{doc}"
            );
        }
    }

    #[test]
    fn custom_claims_are_every_unmodeled_member_as_sent() {
        let mut v = base();
        v["tier"] = json!({"name": "gold", "seats": [1, 2.5, null]});
        v["sid"] = json!("s-1");
        v["organizations"] = json!([{"id": "org_1", "scopes": ["owner"]}]);
        let c = claims(v).unwrap();
        let names: Vec<&str> = c.custom.keys().map(String::as_str).collect();
        assert_eq!(names, ["sid", "tier"]);
        assert_eq!(
            c.custom["tier"],
            json!({"name": "gold", "seats": [1, 2.5, null]})
        );
        assert!(c.organizations.is_owner_of("org_1"));
    }

    /// The previous reader, kept as the oracle of the typed one: the payload as a strict
    /// `Value` tree, then each claim taken out of it.
    mod reference {
        use super::super::*;
        use crate::json::Members;
        use crate::org::Organization;

        fn org(item: &Value) -> Option<Organization> {
            let obj = item.as_object()?;
            let id = obj.get("id")?.as_str()?.to_owned();
            Some(Organization {
                id,
                title: obj.get("title").and_then(Value::as_str).map(str::to_owned),
                scopes: match obj.get("scopes") {
                    Some(Value::Array(items)) => items
                        .iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                },
                joined_at: obj.opt_u64("joined_at").ok().flatten().unwrap_or(0),
            })
        }

        /// `aud` as the `Value` reader took it: the oracle of `id_token::audiences`, which now
        /// runs the typed rule on a `Value`.
        pub(super) fn audiences(map: &Map<String, Value>) -> Result<Vec<String>, ClaimError> {
            match map.get("aud") {
                Some(Value::String(s)) => Ok(vec![s.clone()]),
                Some(Value::Array(items)) if !items.is_empty() => items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .ok_or(ClaimError::Missing("aud"))
                    })
                    .collect(),
                _ => Err(ClaimError::Missing("aud")),
            }
        }

        pub(super) fn from_payload(payload: &[u8]) -> Result<IdClaims, TokenError> {
            let mut map = json::parse_object(payload)?;
            let organizations: Vec<Organization> = match map.remove("organizations") {
                Some(Value::Array(items)) => items.iter().filter_map(org).collect(),
                _ => Vec::new(),
            };
            let m = &map;
            let opt =
                |name: &'static str| claim(m.opt_str(name), name).map(|o| o.map(str::to_owned));
            let req = |name: &'static str| match opt(name)? {
                Some(s) if !s.is_empty() => Ok(s),
                _ => Err(ClaimError::Missing(name)),
            };
            let date = |name| numeric_date(m, name)?.ok_or(ClaimError::Missing(name));
            let auth_time = numeric_date(m, "auth_time");
            let claims = IdClaims {
                iss: req("iss")?,
                sub: req("sub")?,
                aud: audiences(m)?,
                azp: opt("azp")?,
                exp: date("exp")?,
                iat: date("iat")?,
                nbf: numeric_date(m, "nbf")?,
                nonce: opt("nonce")?,
                auth_time: auth_time.clone().ok().flatten(),
                auth_time_invalid: auth_time.is_err(),
                at_hash: opt("at_hash")?,
                email: m.opt_str("email").ok().flatten().map(str::to_owned),
                email_verified: m.opt_bool("email_verified").ok().flatten(),
                org_id: m.opt_str("org_id").ok().flatten().map(str::to_owned),
                organizations: Memberships::new(organizations),
                custom: Map::new(),
            };
            for name in [
                "iss",
                "sub",
                "aud",
                "azp",
                "exp",
                "iat",
                "nbf",
                "nonce",
                "auth_time",
                "at_hash",
                "email",
                "email_verified",
                "org_id",
            ] {
                map.remove(name);
            }
            Ok(IdClaims {
                custom: map,
                ..claims
            })
        }
    }

    fn scalar() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            prop_oneof![
                Just(0.0),
                Just(1.5),
                Just(-1.0),
                Just(1e30),
                Just(1767312000.0)
            ]
            .prop_map(Value::from),
            prop_oneof![
                Just(""),
                Just("usr_1"),
                Just(ISS),
                Just("client_1"),
                Just("owner")
            ]
            .prop_map(Value::from),
        ]
    }

    fn value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        scalar().prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("id"),
                        Just("title"),
                        Just("scopes"),
                        Just("joined_at"),
                        Just("k")
                    ]
                    .prop_map(str::to_owned),
                    inner,
                    0..5,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// An `organizations` claim: mostly well-formed entries, each member of any type.
    fn organizations() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let text = || {
            prop_oneof![
                Just("org_1"),
                Just("org_2"),
                Just("Founder"),
                Just("a:read")
            ]
        };
        let member = move || prop_oneof![3 => text().prop_map(Value::from), 1 => value()];
        let entry = (
            member(),
            member(),
            proptest::collection::vec(member(), 0..4),
            prop_oneof![scalar(), Just(Value::from(1767312000u64))],
            proptest::collection::vec(any::<bool>(), 3),
        )
            .prop_map(|(id, title, scopes, joined_at, keep)| {
                let mut o = Map::new();
                for (k, v, keep) in [
                    ("id", id, true),
                    ("title", title, keep[0]),
                    ("scopes", Value::from(scopes), keep[1]),
                    ("joined_at", joined_at, keep[2]),
                ] {
                    if keep {
                        o.insert(k.to_owned(), v);
                    }
                }
                Value::Object(o)
            });
        prop_oneof![
            4 => proptest::collection::vec(prop_oneof![4 => entry, 1 => value()], 0..5)
                .prop_map(Value::from),
            1 => value(),
        ]
    }

    proptest::proptest! {
        /// The one-pass typed reader gives exactly what the `Value`-tree reader gave: the same
        /// claims, the same custom claims, the same memberships, or the same error.
        #[test]
        fn typed_reader_equals_the_value_tree_reader(
            members in proptest::collection::btree_map(
                proptest::sample::select(vec![
                    "iss", "sub", "aud", "azp", "exp", "iat", "nbf", "nonce", "auth_time",
                    "at_hash", "email", "email_verified", "org_id", "organizations", "tier", "sid",
                ]),
                value(),
                0..16,
            ),
            orgs in organizations(),
            valid_base in proptest::bool::ANY,
        ) {
            let mut doc = if valid_base { base() } else { json!({}) };
            doc["organizations"] = orgs;
            for (k, v) in members {
                doc[k] = v;
            }
            let bytes = serde_json::to_vec(&doc).unwrap();
            proptest::prop_assert_eq!(
                IdClaims::from_payload(&bytes),
                reference::from_payload(&bytes)
            );
            // The `Value` form of the `aud` rule (back-channel logout tokens) too.
            if let Value::Object(map) = &doc {
                proptest::prop_assert_eq!(audiences(map), reference::audiences(map));
            }
        }
    }

    #[test]
    fn valid_claims_pass() {
        run(base(), &expected()).unwrap();
    }

    #[test]
    fn oidcc_client_test_invalid_iss() {
        assert_eq!(
            claim_err(run(with(base(), "iss", json!("https://evil")), &expected())),
            ClaimError::Issuer
        );
        assert_eq!(
            claim_err(run(
                with(base(), "iss", json!(format!("{ISS}/"))),
                &expected()
            )),
            ClaimError::Issuer
        );
    }

    #[test]
    fn oidcc_client_test_missing_sub() {
        assert_eq!(
            claim_err(run(with(base(), "sub", Value::Null), &expected())),
            ClaimError::Missing("sub")
        );
        assert_eq!(
            claim_err(run(with(base(), "sub", json!("")), &expected())),
            ClaimError::Missing("sub")
        );
        assert_eq!(
            claim_err(run(with(base(), "sub", json!(5)), &expected())),
            ClaimError::Missing("sub")
        );
    }

    #[test]
    fn oidcc_client_test_invalid_aud() {
        assert_eq!(
            claim_err(run(with(base(), "aud", json!("other")), &expected())),
            ClaimError::Audience
        );
        assert_eq!(
            claim_err(run(with(base(), "aud", json!(["other"])), &expected())),
            ClaimError::Audience
        );
    }

    #[test]
    fn oidcc_client_test_missing_aud() {
        assert_eq!(
            claim_err(run(with(base(), "aud", Value::Null), &expected())),
            ClaimError::Missing("aud")
        );
        assert_eq!(
            claim_err(run(with(base(), "aud", json!([])), &expected())),
            ClaimError::Missing("aud")
        );
    }

    #[test]
    fn invalid_secondary_aud_is_rejected_unless_trusted() {
        let v = with(base(), "aud", json!(["client_1", "other"]));
        assert_eq!(
            claim_err(run(v.clone(), &expected())),
            ClaimError::UntrustedAudience
        );
        let trusted = vec!["other".to_owned()];
        let trusting = Expected {
            trusted_audiences: &trusted,
            ..expected()
        };
        run(with(v.clone(), "azp", json!("client_1")), &trusting).unwrap();
        // OIDC Core §3.1.3.7 step 4: several audiences without `azp` are refused.
        assert_eq!(claim_err(run(v, &trusting)), ClaimError::Missing("azp"));
        // One audience in an array needs no azp.
        run(with(base(), "aud", json!(["client_1"])), &expected()).unwrap();
    }

    #[test]
    fn azp_must_be_our_client_id() {
        run(with(base(), "azp", json!("client_1")), &expected()).unwrap();
        assert_eq!(
            claim_err(run(with(base(), "azp", json!("x")), &expected())),
            ClaimError::AuthorizedParty
        );
    }

    #[test]
    fn oidcc_client_test_missing_iat() {
        assert_eq!(
            claim_err(run(with(base(), "iat", Value::Null), &expected())),
            ClaimError::Missing("iat")
        );
    }

    #[test]
    fn exp_iat_nbf_with_leeway() {
        let at = |now| Expected {
            now: UnixTime(now),
            ..expected()
        };
        run(base(), &at(2059)).unwrap();
        assert_eq!(claim_err(run(base(), &at(2060))), ClaimError::Expired);
        assert_eq!(
            claim_err(run(with(base(), "exp", Value::Null), &at(1500))),
            ClaimError::Missing("exp")
        );
        run(base(), &at(940)).unwrap();
        assert_eq!(claim_err(run(base(), &at(939))), ClaimError::IssuedInFuture);
        let v = with(base(), "nbf", json!(1600));
        run(v.clone(), &at(1540)).unwrap();
        assert_eq!(claim_err(run(v, &at(1539))), ClaimError::NotYetValid);
        let strict = Expected {
            leeway: 0,
            now: UnixTime(2000),
            ..expected()
        };
        assert_eq!(claim_err(run(base(), &strict)), ClaimError::Expired);
    }

    #[test]
    fn oidcc_client_test_nonce_invalid() {
        assert_eq!(
            claim_err(run(with(base(), "nonce", json!("M")), &expected())),
            ClaimError::NonceMismatch
        );
        assert_eq!(
            claim_err(run(with(base(), "nonce", Value::Null), &expected())),
            ClaimError::MissingNonce
        );
    }

    #[test]
    fn max_age_requires_fresh_auth_time() {
        let e = Expected {
            max_age: Some(300),
            ..expected()
        };
        assert_eq!(claim_err(run(base(), &e)), ClaimError::AuthTime);
        run(with(base(), "auth_time", json!(1500 - 360)), &e).unwrap();
        assert_eq!(
            claim_err(run(with(base(), "auth_time", json!(1500 - 361)), &e)),
            ClaimError::AuthTime
        );
    }

    #[test]
    fn at_hash_is_checked_when_present() {
        let at = "some-access-token";
        let good = Algorithm::Es256.at_hash(at);
        let e = Expected {
            access_token: Some(at),
            ..expected()
        };
        run(with(base(), "at_hash", json!(good)), &e).unwrap();
        assert_eq!(
            claim_err(run(with(base(), "at_hash", json!("AAAA")), &e)),
            ClaimError::AtHash
        );
        run(base(), &e).unwrap();
    }

    #[test]
    fn access_and_logout_tokens_are_not_id_tokens() {
        let c = claims(base()).unwrap();
        for typ in [
            "at+jwt",
            "application/at+jwt",
            "AT+JWT",
            "Application/at+jwt",
            "APPLICATION/AT+JWT",
            "logout+jwt",
            "application/Logout+JWT",
        ] {
            assert_eq!(
                check(&c, Algorithm::Es256, Some(typ), &expected()),
                Err(ClaimError::Type),
                "{typ}"
            );
        }
        check(&c, Algorithm::Es256, Some("JWT"), &expected()).unwrap();
    }

    #[test]
    fn refresh_rules_openid_core_12_2() {
        let orig = claims(base()).unwrap();
        let same = claims(with(base(), "iat", json!(1900))).unwrap();
        check_refreshed(&same, &orig).unwrap();
        let no_nonce = claims(with(base(), "nonce", Value::Null)).unwrap();
        check_refreshed(&no_nonce, &orig).unwrap();
        let other_nonce = claims(with(base(), "nonce", json!("X"))).unwrap();
        assert_eq!(
            check_refreshed(&other_nonce, &orig),
            Err(ClaimError::NonceMismatch)
        );
        let other_iss = claims(with(base(), "iss", json!("https://x"))).unwrap();
        assert_eq!(
            check_refreshed(&other_iss, &orig),
            Err(ClaimError::Changed("iss"))
        );
        let other_aud = claims(with(base(), "aud", json!(["client_1", "b"]))).unwrap();
        assert_eq!(
            check_refreshed(&other_aud, &orig),
            Err(ClaimError::Changed("aud"))
        );
    }

    /// DESIGN §5: media types compare case-insensitively, with or without `application/`.
    #[test]
    fn typ_media_type_table() {
        let cases = [
            (Some("at+jwt"), true),
            (Some("AT+JWT"), true),
            (Some("application/at+jwt"), true),
            (Some("Application/at+jwt"), true),
            (Some("APPLICATION/At+Jwt"), true),
            (Some("application/"), false),
            (Some("applicationat+jwt"), false),
            (Some("text/at+jwt"), false),
            (Some("JWT"), false),
            (Some(""), false),
            (None, false),
        ];
        for (typ, expected) in cases {
            assert_eq!(typ_is(typ, "at+jwt"), expected, "{typ:?}");
        }
    }

    /// RFC 7519 §2: a NumericDate may be non-integer; NaN/infinity cannot be JSON, negative and
    /// out-of-range values are errors.
    #[test]
    fn numeric_dates_may_be_fractional() {
        let c = claims(with(
            with(with(base(), "exp", json!(2000.5)), "iat", json!(1000.25)),
            "nbf",
            json!(999.9),
        ))
        .unwrap();
        assert_eq!((c.exp, c.iat, c.nbf), (2000, 1000, Some(999)));
        run(with(base(), "exp", json!(1_767_312_000.5)), &expected()).unwrap();
        for bad in [
            json!(-1),
            json!(-0.5),
            json!(1e30),
            json!("2000"),
            json!(true),
        ] {
            assert_eq!(
                claims(with(base(), "exp", bad.clone())).unwrap_err(),
                TokenError::Claim(ClaimError::Missing("exp")),
                "{bad}"
            );
        }
    }

    /// A mistyped optional claim the check does not use does not refuse the token; one it
    /// uses does.
    #[test]
    fn mistyped_auth_time_matters_only_where_used() {
        let v = with(base(), "auth_time", json!("yesterday"));
        run(v.clone(), &expected()).unwrap();
        let e = Expected {
            max_age: Some(300),
            ..expected()
        };
        assert_eq!(
            claim_err(run(v.clone(), &e)),
            ClaimError::Missing("auth_time")
        );
        // On refresh, against an original that has auth_time.
        let orig = claims(with(base(), "auth_time", json!(900))).unwrap();
        assert_eq!(
            check_refreshed(&claims(v).unwrap(), &orig),
            Err(ClaimError::Changed("auth_time"))
        );
        // A mistyped claim that is always used refuses the token.
        for name in ["nbf", "nonce", "azp", "at_hash"] {
            assert_eq!(
                claims(with(base(), name, json!({"x": 1}))).unwrap_err(),
                TokenError::Claim(ClaimError::Missing(name)),
                "{name}"
            );
        }
    }

    /// OIDC Core §12.2 beyond iss/aud/nonce: `aud` is a set, `azp` and `auth_time` keep their
    /// values.
    #[test]
    fn refresh_compares_aud_as_a_set_and_keeps_azp_and_auth_time() {
        let orig = claims(with(
            with(
                with(base(), "aud", json!(["client_1", "api"])),
                "azp",
                json!("client_1"),
            ),
            "auth_time",
            json!(900),
        ))
        .unwrap();
        let edit = |k: &str, x: Value| {
            let v = with(
                with(
                    with(base(), "aud", json!(["client_1", "api"])),
                    "azp",
                    json!("client_1"),
                ),
                "auth_time",
                json!(900),
            );
            claims(with(v, k, x)).unwrap()
        };
        check_refreshed(&edit("aud", json!(["api", "client_1"])), &orig).unwrap();
        check_refreshed(&edit("aud", json!(["api", "client_1", "api"])), &orig).unwrap();
        check_refreshed(&edit("auth_time", Value::Null), &orig).unwrap();
        check_refreshed(&edit("azp", Value::Null), &orig).unwrap();
        assert_eq!(
            check_refreshed(&edit("aud", json!(["client_1"])), &orig),
            Err(ClaimError::Changed("aud"))
        );
        assert_eq!(
            check_refreshed(&edit("azp", json!("other")), &orig),
            Err(ClaimError::Changed("azp"))
        );
        assert_eq!(
            check_refreshed(&edit("auth_time", json!(1400)), &orig),
            Err(ClaimError::Changed("auth_time"))
        );
        // An azp the original did not have is a change too.
        let plain = claims(base()).unwrap();
        assert_eq!(
            check_refreshed(
                &claims(with(base(), "azp", json!("client_1"))).unwrap(),
                &plain
            ),
            Err(ClaimError::Changed("azp"))
        );
    }

    #[test]
    fn profile_claims_are_lenient() {
        let c = claims(with(
            with(base(), "email", json!(5)),
            "email_verified",
            json!("yes"),
        ))
        .unwrap();
        assert_eq!((c.email, c.email_verified), (None, None));
    }
}
