//! The provider's JSON Web Key Set as a cache value.
//!
//! Parsing is strict per document and lenient per key: the document must be a JSON object
//! (strict parser: duplicate members anywhere are an error) with a `keys` array, and every key
//! that cannot be used to verify a signature is skipped, not an error:
//! - not an object, `kty` other than `EC`, `OKP`, `RSA`, or a `crv` other than `P-256`
//!   (EC) / `Ed25519` (OKP);
//! - `use` present and not `"sig"`; `key_ops` present and not an array of strings containing
//!   `"verify"`;
//! - `alg` present and not one of [`Algorithm`], or not fitting the key type;
//! - a `kid` that is not a string; a missing or ill-typed or non-base64url key member;
//! - wrong sizes: `x`/`y` not 32 bytes, an RSA modulus outside 2048..=8192 bits, an RSA
//!   exponent that ring would refuse (see the crypto seam's docs for what cannot be checked
//!   before a signature: whether a P-256 point is on the curve);
//! - private keys (`d`, or any other private RSA member): a provider that publishes private
//!   keys is broken, and we do not use its keys.
//!
//! Freshness follows the response's `Cache-Control` (see [`max_age_from_headers`]); an unknown
//! `kid` in a token anyone can present (an access token at an API) may trigger a refetch only
//! [`REFETCH_COOLDOWN`] after the last fetch *attempt*, failed ones included (see
//! [`KeySet::may_refetch`]); an ID token from the token endpoint may always cause one refetch per
//! operation (see [`crate::flow`]).
//!
//! # Binding to a provider
//! A key set fetched by an operation (or by [`crate::Client::discover`]) names the issuer and
//! the `jwks_uri` it came from ([`KeySet::issuer`], [`KeySet::jwks_uri`]); an operation refuses a
//! key set bound to another provider with [`JwksError::ForeignProvider`], so a misfiled cache or
//! a multi-provider application never verifies one provider's tokens with another's keys. The
//! serde form carries the binding and requires it for a set that was ever fetched. A set built
//! in code with [`KeySet::from_json`] or [`KeySet::from_response`] is unbound until
//! [`KeySet::bind`] (it is the caller's own value). Imported caches are trusted input otherwise:
//! the keys are re-validated, but nothing proves they are the provider's.
//!
//! A `fetched_at` (or a last attempt) later than `now` counts as never fetched: a cache written
//! by a machine with a wrong clock, or tampered with, is neither fresh nor a reason to wait.

use crate::jose::{Algorithm, Header, JoseError, KeyKind, PublicKey, b64_decode};
use crate::json::{self, JsonError};
use crate::time::UnixTime;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;

/// Seconds after a fetch before a refetch triggered by an unknown `kid` is allowed.
pub const REFETCH_COOLDOWN: u64 = 60;
/// The shortest freshness lifetime of a key set, whatever the response says (5 min).
pub const MIN_MAX_AGE: u64 = 300;
/// The longest freshness lifetime of a key set, whatever the response says (24 h).
pub const MAX_MAX_AGE: u64 = 86_400;
/// The freshness lifetime when the response has no `Cache-Control: max-age` (1 h).
pub const DEFAULT_MAX_AGE: u64 = 3_600;

/// A JWKS as a cache value: the usable keys (prepared for verification), when it was fetched,
/// and how long it stays fresh.
///
/// Cheap to clone (an `Arc` inside). Serializes as
/// `{"keys":[<the original JWK objects of the usable keys>],"fetched_at":<u64|null>,"max_age":<u64>,
/// "attempted_at":<u64|null>,"issuer":<string|null>,"jwks_uri":<string|null>}`;
/// deserializing re-validates every key exactly as [`KeySet::from_json`] does, clamps
/// `max_age` to [[`MIN_MAX_AGE`], [`MAX_MAX_AGE`]], and refuses a set that has keys or a fetch
/// time but names no provider (see the [module docs](self#binding-to-a-provider)).
#[derive(Clone)]
pub struct KeySet {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    keys: Vec<Jwk>,
    fetched_at: Option<UnixTime>,
    max_age: u64,
    /// The last fetch attempt, successful or not (drives the refetch cooldown).
    attempted_at: Option<UnixTime>,
    provider: Option<Provider>,
}

/// The issuer and `jwks_uri` a key set belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Provider {
    issuer: String,
    jwks_uri: String,
}

/// One usable verification key of a [`KeySet`].
#[derive(Clone)]
pub struct Jwk {
    kid: Option<String>,
    alg: Option<Algorithm>,
    key: PublicKey,
    original: Value,
}

impl Jwk {
    /// The key's `kid`, if it has one.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key's `alg` member, if it has one (a key without `alg` serves every algorithm of
    /// its key type: RS256 and PS256 for an RSA key).
    #[must_use]
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.alg
    }

    /// Whether a token signed with `alg` may be verified with this key (key type and `alg`).
    #[must_use]
    pub fn supports(&self, alg: Algorithm) -> bool {
        self.key.kind() == KeyKind::for_algorithm(alg) && self.alg.is_none_or(|a| a == alg)
    }

    /// The original JWK object, as published (public members only: keys with private members
    /// are never kept).
    #[must_use]
    pub fn to_json(&self) -> &Value {
        &self.original
    }

    pub(crate) fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// Whether this key is a candidate for a token with `header` (see [`KeySet::select`]).
    fn fits(&self, header: &Header) -> bool {
        self.supports(header.alg)
            && match &header.kid {
                Some(kid) => self.kid.as_deref() == Some(kid.as_str()),
                None => true,
            }
    }

    /// Parses one JWKS entry; `None` for every key we cannot or must not use.
    fn parse(value: &Value) -> Option<Jwk> {
        let map = value.as_object()?;
        if PRIVATE_MEMBERS.iter().any(|m| map.contains_key(*m)) {
            return None;
        }
        if let Some(u) = map.get("use") {
            if u.as_str() != Some("sig") {
                return None;
            }
        }
        if let Some(ops) = map.get("key_ops") {
            let ops = ops.as_array()?;
            let mut verify = false;
            for op in ops {
                verify |= op.as_str()? == "verify";
            }
            if !verify {
                return None;
            }
        }
        let kid = match map.get("kid") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return None,
        };
        let alg = match map.get("alg") {
            None => None,
            Some(Value::String(s)) => Some(Algorithm::from_name(s)?),
            Some(_) => return None,
        };
        let key = match str_member(map, "kty")? {
            "EC" => {
                if str_member(map, "crv")? != "P-256" {
                    return None;
                }
                PublicKey::p256(&b64_member(map, "x")?, &b64_member(map, "y")?)?
            }
            "OKP" => {
                if str_member(map, "crv")? != "Ed25519" {
                    return None;
                }
                PublicKey::ed25519(&b64_member(map, "x")?)?
            }
            "RSA" => PublicKey::rsa(&b64_member(map, "n")?, &b64_member(map, "e")?)?,
            _ => return None,
        };
        if alg.is_some_and(|a| KeyKind::for_algorithm(a) != key.kind()) {
            return None;
        }
        Some(Jwk {
            kid,
            alg,
            key,
            original: value.clone(),
        })
    }
}

/// Members that only private (or symmetric) keys carry.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn str_member<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m str> {
    map.get(name)?.as_str()
}

fn b64_member(map: &Map<String, Value>, name: &str) -> Option<Vec<u8>> {
    b64_decode(str_member(map, name)?)
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kty", &self.key.kind().name())
            .field("bits", &self.key.bits())
            .finish()
    }
}

impl KeySet {
    /// A key set that was never fetched: no keys, not fresh, may be fetched at once.
    #[must_use]
    pub fn empty() -> KeySet {
        KeySet::build(Vec::new(), None, DEFAULT_MAX_AGE)
    }

    /// The same keys, bound to the provider with this `issuer` and `jwks_uri` (see the
    /// [module docs](self#binding-to-a-provider)); operations of a client for another provider
    /// refuse the result with [`JwksError::ForeignProvider`].
    #[must_use]
    pub fn bind(&self, issuer: &str, jwks_uri: &str) -> KeySet {
        let mut inner = Inner::clone(&self.inner);
        inner.provider = Some(Provider {
            issuer: issuer.to_owned(),
            jwks_uri: jwks_uri.to_owned(),
        });
        KeySet {
            inner: Arc::new(inner),
        }
    }

    /// The issuer this set is bound to, if any.
    #[must_use]
    pub fn issuer(&self) -> Option<&str> {
        self.inner.provider.as_ref().map(|p| p.issuer.as_str())
    }

    /// The `jwks_uri` this set is bound to, if any.
    #[must_use]
    pub fn jwks_uri(&self) -> Option<&str> {
        self.inner.provider.as_ref().map(|p| p.jwks_uri.as_str())
    }

    /// Checks that this set may be used for the provider with `issuer` and `jwks_uri`: an
    /// unbound set may, a bound one only when both are equal byte for byte.
    pub fn check_provider(&self, issuer: &str, jwks_uri: &str) -> Result<(), JwksError> {
        match &self.inner.provider {
            Some(p) if p.issuer != issuer || p.jwks_uri != jwks_uri => {
                Err(JwksError::ForeignProvider)
            }
            _ => Ok(()),
        }
    }

    /// The same set, with a fetch attempt at `now` recorded (a failed refetch: the keys stay,
    /// the cooldown of [`KeySet::may_refetch`] starts again).
    #[must_use]
    pub fn with_attempt(&self, now: UnixTime) -> KeySet {
        let mut inner = Inner::clone(&self.inner);
        inner.attempted_at = Some(now);
        KeySet {
            inner: Arc::new(inner),
        }
    }

    /// When a fetch was last attempted (successful or not), if ever.
    #[must_use]
    pub fn attempted_at(&self) -> Option<UnixTime> {
        self.inner.attempted_at.max(self.inner.fetched_at)
    }

    /// Parses a JWKS document fetched at `fetched_at`, fresh for `max_age` seconds (clamped
    /// to [[`MIN_MAX_AGE`], [`MAX_MAX_AGE`]]). Unusable keys are skipped (module docs); the
    /// result may hold no key at all.
    pub fn from_json(body: &[u8], fetched_at: UnixTime, max_age: u64) -> Result<KeySet, JwksError> {
        let doc = json::parse_object(body)?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::MissingKeys)?;
        Ok(KeySet::build(
            keys.iter().filter_map(Jwk::parse).collect(),
            Some(fetched_at),
            max_age,
        ))
    }

    /// From an HTTP response to the JWKS request: the status must be 200 (else
    /// [`JwksError::Status`]); the body is JSON (the `Content-Type` is not enforced); the
    /// freshness lifetime comes from the headers ([`max_age_from_headers`]).
    pub fn from_response(
        resp: &http::Response<Vec<u8>>,
        now: UnixTime,
    ) -> Result<KeySet, JwksError> {
        if resp.status() != http::StatusCode::OK {
            return Err(JwksError::Status(resp.status().as_u16()));
        }
        KeySet::from_json(resp.body(), now, max_age_from_headers(resp.headers()))
    }

    fn build(keys: Vec<Jwk>, fetched_at: Option<UnixTime>, max_age: u64) -> KeySet {
        KeySet {
            inner: Arc::new(Inner {
                keys,
                fetched_at,
                max_age: max_age.clamp(MIN_MAX_AGE, MAX_MAX_AGE),
                attempted_at: None,
                provider: None,
            }),
        }
    }

    /// When the set was fetched; `None` for [`KeySet::empty`].
    #[must_use]
    pub fn fetched_at(&self) -> Option<UnixTime> {
        self.inner.fetched_at
    }

    /// The freshness lifetime in seconds, within [[`MIN_MAX_AGE`], [`MAX_MAX_AGE`]].
    #[must_use]
    pub fn max_age(&self) -> u64 {
        self.inner.max_age
    }

    /// Whether the set was fetched and `fetched_at <= now < fetched_at + max_age` (a fetch
    /// time in the future counts as never fetched).
    #[must_use]
    pub fn is_fresh(&self, now: UnixTime) -> bool {
        self.inner
            .fetched_at
            .is_some_and(|t| t <= now && now < t.plus(self.inner.max_age))
    }

    /// Whether a refetch is allowed now: never fetched nor attempted, or `now >= last +
    /// REFETCH_COOLDOWN` where `last` is the later of the last fetch and the last failed
    /// attempt ([`KeySet::with_attempt`]); times in the future count as never. Callers refetch
    /// on [`JoseError::NoMatchingKey`] in a token anyone can present only when this holds, so
    /// forged `kid`s cannot turn into a flood of JWKS requests, even while the endpoint fails.
    #[must_use]
    pub fn may_refetch(&self, now: UnixTime) -> bool {
        let past = |t: Option<UnixTime>| t.filter(|t| *t <= now);
        past(self.inner.fetched_at)
            .max(past(self.inner.attempted_at))
            .is_none_or(|t| now >= t.plus(REFETCH_COOLDOWN))
    }

    /// The number of usable keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.keys.len()
    }

    /// Whether there is no usable key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inner.keys.is_empty()
    }

    /// The usable keys, in document order.
    pub fn iter(&self) -> impl Iterator<Item = &Jwk> {
        self.inner.keys.iter()
    }

    /// Selects the one key for a token with `header`. Candidates are the keys whose type is
    /// implied by `header.alg` (ES256 ⇒ EC P-256, EdDSA ⇒ OKP Ed25519, RS256/PS256 ⇒ RSA),
    /// whose `alg`, if any, equals `header.alg`, and, when the token has a `kid`, whose `kid`
    /// equals it byte for byte. Exactly one candidate ⇒ that key; none ⇒
    /// [`JoseError::NoMatchingKey`]; several ⇒ [`JoseError::AmbiguousKey`] (a token without
    /// `kid` is only accepted when exactly one key fits).
    pub fn select(&self, header: &Header) -> Result<&Jwk, JoseError> {
        let mut candidates = self.inner.keys.iter().filter(|k| k.fits(header));
        let first = candidates.next().ok_or(JoseError::NoMatchingKey)?;
        if candidates.next().is_some() {
            return Err(JoseError::AmbiguousKey);
        }
        Ok(first)
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("keys", &self.inner.keys)
            .field("fetched_at", &self.inner.fetched_at)
            .field("max_age", &self.inner.max_age)
            .field("attempted_at", &self.inner.attempted_at)
            .field("provider", &self.inner.provider)
            .finish()
    }
}

/// The JWKS freshness lifetime for response `headers`, in seconds:
/// - `Cache-Control: no-store` or `no-cache` ⇒ [`MIN_MAX_AGE`];
/// - `max-age=N` (token or quoted form; the smallest if repeated) ⇒ `N` minus the `Age`
///   header, if any (the time the response already spent in a shared cache);
/// - a `max-age` without a valid number, or a `Cache-Control` that is not visible ASCII ⇒
///   [`MIN_MAX_AGE`] (RFC 9111 §4.2.1: treat as stale);
/// - no `max-age` ⇒ [`DEFAULT_MAX_AGE`];
///
/// and the result is clamped to [[`MIN_MAX_AGE`], [`MAX_MAX_AGE`]]. Directive names are
/// case-insensitive; several `Cache-Control` headers are read as one list.
#[must_use]
pub fn max_age_from_headers(headers: &http::HeaderMap) -> u64 {
    let mut no_store = false;
    let mut invalid = false;
    let mut max_age: Option<u64> = None;
    for value in headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else {
            invalid = true;
            continue;
        };
        for directive in value.split(',') {
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim())),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                no_store = true;
            } else if name.eq_ignore_ascii_case("max-age") {
                match arg.and_then(parse_delta_seconds) {
                    Some(n) => max_age = Some(max_age.map_or(n, |m| m.min(n))),
                    None => invalid = true,
                }
            }
        }
    }
    let raw = if no_store || invalid {
        MIN_MAX_AGE
    } else if let Some(n) = max_age {
        let age = headers
            .get(http::header::AGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_delta_seconds(v.trim()))
            .unwrap_or(0);
        n.saturating_sub(age)
    } else {
        DEFAULT_MAX_AGE
    };
    raw.clamp(MIN_MAX_AGE, MAX_MAX_AGE)
}

/// RFC 9111 delta-seconds (digits only, saturating), also in quoted form.
fn parse_delta_seconds(s: &str) -> Option<u64> {
    let s = s
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// Why a JWKS response was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The JWKS endpoint answered with a status other than 200.
    #[error("JWKS request failed with HTTP status {0}")]
    Status(u16),
    /// The body is not a strict JSON object.
    #[error("invalid JWKS document: {0}")]
    Json(#[from] JsonError),
    /// The document has no `keys` array.
    #[error("JWKS document has no `keys` array")]
    MissingKeys,
    /// The key set is bound to another issuer or `jwks_uri` than the client's (a misfiled or
    /// tampered cache, or another provider's keys).
    #[error("the key set belongs to another provider (issuer or jwks_uri differ)")]
    ForeignProvider,
}

#[derive(Serialize)]
struct StoredRef<'a> {
    keys: Vec<&'a Value>,
    fetched_at: Option<UnixTime>,
    max_age: u64,
    attempted_at: Option<UnixTime>,
    issuer: Option<&'a str>,
    jwks_uri: Option<&'a str>,
}

#[derive(Deserialize)]
struct Stored {
    keys: Vec<Value>,
    fetched_at: Option<UnixTime>,
    max_age: u64,
    #[serde(default)]
    attempted_at: Option<UnixTime>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    jwks_uri: Option<String>,
}

impl Serialize for KeySet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredRef {
            keys: self.inner.keys.iter().map(|k| &k.original).collect(),
            fetched_at: self.inner.fetched_at,
            max_age: self.inner.max_age,
            attempted_at: self.inner.attempted_at,
            issuer: self.issuer(),
            jwks_uri: self.jwks_uri(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for KeySet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = Stored::deserialize(deserializer)?;
        let provider = match (stored.issuer, stored.jwks_uri) {
            (Some(issuer), Some(jwks_uri)) => Some(Provider { issuer, jwks_uri }),
            (None, None) if stored.keys.is_empty() && stored.fetched_at.is_none() => None,
            _ => {
                return Err(serde::de::Error::custom(
                    "a stored key set must name its issuer and jwks_uri",
                ));
            }
        };
        Ok(KeySet {
            inner: Arc::new(Inner {
                keys: stored.keys.iter().filter_map(Jwk::parse).collect(),
                fetched_at: stored.fetched_at,
                max_age: stored.max_age.clamp(MIN_MAX_AGE, MAX_MAX_AGE),
                attempted_at: stored.attempted_at,
                provider,
            }),
        })
    }
}

#[cfg(test)]
mod tests;
