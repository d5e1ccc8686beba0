//! ID-token claim rules (OpenID Connect Core §3.1.3.7, §12.2) and the claims the agent uses.
//!
//! Signature verification happens before these rules run (see [`crate::flow`]); this module
//! checks the claims of a token whose signature is already verified, and decodes the claims of a
//! stored ID token (one that was verified when it entered the session store).

use crate::callback::ct_eq;
use crate::error::{ClaimError, TokenError};
use crate::jose::{Algorithm, Jws, at_hash_matches};
use crate::json::{self, Members};
use crate::org::{Organization, into_organizations};
use crate::time::UnixTime;
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
    pub at_hash: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub org_id: Option<String>,
    pub organizations: Vec<Organization>,
}

fn claim<T>(r: Result<T, json::JsonError>, name: &'static str) -> Result<T, ClaimError> {
    r.map_err(|_| ClaimError::Missing(name))
}

/// `aud`: a string or a non-empty array of strings.
pub(crate) fn audiences(map: &Map<String, Value>) -> Result<Vec<String>, ClaimError> {
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

impl IdClaims {
    pub(crate) fn from_payload(payload: &[u8]) -> Result<IdClaims, TokenError> {
        let mut map = json::parse_object(payload)?;
        let organizations = map
            .remove("organizations")
            .map(into_organizations)
            .unwrap_or_default();
        Ok(Self::from_map(&map, organizations)?)
    }

    fn from_map(
        map: &Map<String, Value>,
        organizations: Vec<Organization>,
    ) -> Result<IdClaims, ClaimError> {
        let req_str = |name: &'static str| -> Result<String, ClaimError> {
            match claim(map.opt_str(name), name)? {
                Some(s) if !s.is_empty() => Ok(s.to_owned()),
                _ => Err(ClaimError::Missing(name)),
            }
        };
        let opt_str =
            |name: &'static str| claim(map.opt_str(name), name).map(|o| o.map(str::to_owned));
        let req_u64 =
            |name: &'static str| claim(map.opt_u64(name), name)?.ok_or(ClaimError::Missing(name));
        Ok(IdClaims {
            iss: req_str("iss")?,
            sub: req_str("sub")?,
            aud: audiences(map)?,
            azp: opt_str("azp")?,
            exp: req_u64("exp")?,
            iat: req_u64("iat")?,
            nbf: claim(map.opt_u64("nbf"), "nbf")?,
            nonce: opt_str("nonce")?,
            auth_time: claim(map.opt_u64("auth_time"), "auth_time")?,
            at_hash: opt_str("at_hash")?,
            // Profile claims are informative: a wrong type is dropped, not fatal.
            email: map.opt_str("email").ok().flatten().map(str::to_owned),
            email_verified: map.opt_bool("email_verified").ok().flatten(),
            org_id: map.opt_str("org_id").ok().flatten().map(str::to_owned),
            organizations,
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
/// prefix may be omitted; media types compare case-insensitively).
pub(crate) fn typ_is(typ: Option<&str>, expected: &str) -> bool {
    typ.is_some_and(|t| {
        let bare = match t.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => t.get(12..),
            _ => None,
        };
        bare.unwrap_or(t).eq_ignore_ascii_case(expected)
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
    check_times(claims.exp, Some(claims.iat), claims.nbf, e.leeway, e.now)?;
    if let Some(expected) = e.nonce {
        match &claims.nonce {
            None => return Err(ClaimError::MissingNonce),
            Some(n) if !ct_eq(n, expected) => return Err(ClaimError::NonceMismatch),
            Some(_) => {}
        }
    }
    if let Some(max_age) = e.max_age {
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

/// OIDC Core §12.2: a refreshed ID token keeps `iss` and `aud`; its `nonce`, if any, equals the
/// original's. (`sub` is compared by the caller, which reports `subject_mismatch`.)
pub(crate) fn check_refreshed(new: &IdClaims, original: &IdClaims) -> Result<(), ClaimError> {
    if new.iss != original.iss {
        return Err(ClaimError::Changed("iss"));
    }
    if new.aud != original.aud {
        return Err(ClaimError::Changed("aud"));
    }
    if let Some(n) = &new.nonce {
        match &original.nonce {
            Some(o) if ct_eq(n, o) => {}
            _ => return Err(ClaimError::NonceMismatch),
        }
    }
    Ok(())
}

/// Decodes a stored ID token without verifying its signature (it was verified when it entered
/// the store), and checks that it belongs to this issuer and client.
pub(crate) fn decode_stored(
    token: &str,
    issuer: &str,
    client_id: &str,
) -> Result<IdClaims, TokenError> {
    let jws = Jws::parse(token)?;
    let claims = IdClaims::from_payload(jws.payload())?;
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
        run(
            v,
            &Expected {
                trusted_audiences: &trusted,
                ..expected()
            },
        )
        .unwrap();
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
            "APPLICATION/AT+JWT",
            "logout+jwt",
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
