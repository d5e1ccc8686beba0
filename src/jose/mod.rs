//! Compact JWS: parsing, the algorithm allowlist and signature verification.
//!
//! A token goes through two steps:
//! 1. [`Jws::parse`] checks the shape (exactly three parts, strict unpadded base64url with
//!    canonical trailing bits, a header that is a strict JSON object) and the header rules:
//!    `alg` is required and must be one of [`Algorithm`] (`none` and HMAC get their own errors),
//!    `kid` and `typ` must be strings when present, `crit` must be absent (we understand no
//!    extension). `jku`, `x5u`, `jwk` and `x5c` are ignored: keys only ever come from the
//!    caller's key set ([`crate::provider::KeySet`]).
//! 2. `Jws::verify` checks the algorithm against the caller's [`AlgorithmSet`], the signature
//!    length, and verifies the signature with the one key the caller selected (key selection
//!    and the refetch decision belong to the key ring of [`crate::flow`]: this module depends
//!    on no key set).
//!
//! [`JoseError::NoMatchingKey`] is the one error after which refetching the JWKS can help (the
//! provider may have rotated its keys); everything else is final for that token.
//!
//! Cheap rejections come first: a token with a forbidden algorithm or a signature of the wrong
//! length never reaches key selection, so it cannot cause a JWKS refetch.

mod crypto;
#[cfg(test)]
pub(crate) mod test_keys;
#[cfg(test)]
mod tests;

pub use crypto::CRYPTO_BACKEND;
pub(crate) use crypto::{KeyKind, PublicKey, sha256};

use crate::json::{self, JsonError, Scalar, ScalarSeed};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::de::MapAccess;
use std::borrow::Cow;
use std::fmt;

/// Unpadded base64url, strict: no padding, no `+` or `/`, no whitespace, and the unused bits
/// of the last character must be zero (one encoding per byte string).
pub(crate) const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Decodes strict unpadded base64url; `None` on any deviation.
pub(crate) fn b64_decode(s: &str) -> Option<Vec<u8>> {
    BASE64URL.decode(s).ok()
}

/// A JWS signature algorithm this crate verifies.
///
/// Serialized as its JOSE name (`"ES256"`, `"EdDSA"`, `"RS256"`, `"PS256"`); `"Ed25519"`
/// (RFC 9864's fully specified name) is accepted as an alias of `EdDSA` when reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256, signature `r ‖ s` (64 bytes).
    #[serde(rename = "ES256")]
    Es256,
    /// EdDSA on Ed25519 (the only EdDSA curve accepted).
    #[serde(rename = "EdDSA", alias = "Ed25519")]
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256, modulus of 2048 bits or more.
    #[serde(rename = "RS256")]
    Rs256,
    /// RSASSA-PSS with SHA-256 and MGF1-SHA-256, modulus of 2048 bits or more.
    #[serde(rename = "PS256")]
    Ps256,
}

impl Algorithm {
    /// Every supported algorithm, in a fixed order.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Es256,
        Algorithm::EdDsa,
        Algorithm::Rs256,
        Algorithm::Ps256,
    ];

    /// The algorithm for a JOSE `alg` name (case-sensitive); `"Ed25519"` is `EdDsa`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "ES256" => Some(Algorithm::Es256),
            "EdDSA" | "Ed25519" => Some(Algorithm::EdDsa),
            "RS256" => Some(Algorithm::Rs256),
            "PS256" => Some(Algorithm::Ps256),
            _ => None,
        }
    }

    /// The canonical JOSE name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
            Algorithm::Rs256 => "RS256",
            Algorithm::Ps256 => "PS256",
        }
    }

    /// The OIDC `at_hash` (or `c_hash`) of `access_token` for a token signed with `self`:
    /// unpadded base64url of the left half of the hash of its ASCII bytes, where the hash is
    /// SHA-256 for ES256/RS256/PS256 and SHA-512 for EdDSA (Ed25519).
    #[must_use]
    pub fn at_hash(self, access_token: &str) -> String {
        match self {
            Algorithm::Es256 | Algorithm::Rs256 | Algorithm::Ps256 => {
                let digest = crypto::sha256(access_token.as_bytes());
                BASE64URL.encode(digest.as_ref().get(..16).unwrap_or_default())
            }
            Algorithm::EdDsa => {
                let digest = crypto::sha512(access_token.as_bytes());
                BASE64URL.encode(digest.as_ref().get(..32).unwrap_or_default())
            }
        }
    }

    fn bit(self) -> u8 {
        match self {
            Algorithm::Es256 => 1,
            Algorithm::EdDsa => 2,
            Algorithm::Rs256 => 4,
            Algorithm::Ps256 => 8,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Checks an `at_hash` claim against `access_token` in constant time (for equal lengths).
#[must_use]
pub fn at_hash_matches(alg: Algorithm, access_token: &str, at_hash: &str) -> bool {
    crate::constant_time::eq(&alg.at_hash(access_token), at_hash)
}

/// A small copyable set of [`Algorithm`]s: the provider's advertised algorithms intersected
/// with a client's pin is the set a token's `alg` must belong to.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct AlgorithmSet(u8);

impl AlgorithmSet {
    /// Every supported algorithm.
    pub const ALL: AlgorithmSet = AlgorithmSet(0b1111);
    /// No algorithm: nothing verifies.
    pub const EMPTY: AlgorithmSet = AlgorithmSet(0);

    /// Whether `a` is in the set.
    #[must_use]
    pub fn contains(self, a: Algorithm) -> bool {
        self.0 & a.bit() != 0
    }

    /// The set plus `a`.
    #[must_use]
    pub fn with(self, a: Algorithm) -> Self {
        AlgorithmSet(self.0 | a.bit())
    }

    /// The algorithms in both sets.
    #[must_use]
    pub fn intersect(self, o: AlgorithmSet) -> Self {
        AlgorithmSet(self.0 & o.0)
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The set of the known names among `names` (e.g. a discovery document's
    /// `id_token_signing_alg_values_supported`); unknown names (`none`, `HS256`, …) are ignored.
    #[must_use]
    pub fn from_names<'a, I: IntoIterator<Item = &'a str>>(names: I) -> Self {
        names.into_iter().filter_map(Algorithm::from_name).collect()
    }

    /// The algorithms in the set, in [`Algorithm::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(move |a| self.contains(*a))
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<T: IntoIterator<Item = Algorithm>>(iter: T) -> Self {
        iter.into_iter()
            .fold(AlgorithmSet::EMPTY, AlgorithmSet::with)
    }
}

impl fmt::Debug for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The JOSE header members this crate uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The signature algorithm.
    pub alg: Algorithm,
    /// The key id, compared byte for byte with the JWKS `kid`s.
    pub kid: Option<String>,
    /// The media type (`at+jwt`, `logout+jwt`, `JWT`, …), as sent.
    pub typ: Option<String>,
}

/// A JOSE header as read, in one pass (a member named twice is a duplicate).
#[derive(Default)]
struct RawHeader<'de> {
    alg: Option<Scalar<'de>>,
    kid: Option<Scalar<'de>>,
    typ: Option<Scalar<'de>>,
    crit: Option<Scalar<'de>>,
}

impl<'de> json::Object<'de> for RawHeader<'de> {
    fn member<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        let slot = match key {
            "alg" => &mut self.alg,
            "kid" => &mut self.kid,
            "typ" => &mut self.typ,
            "crit" => &mut self.crit,
            _ => return Ok(false),
        };
        json::once(map, slot, ScalarSeed, key)?;
        Ok(true)
    }
}

impl Header {
    /// Parses the decoded header bytes under the rules of this module: no `crit`; `alg` a
    /// supported name; `kid` and `typ`, when present, strings.
    fn parse(bytes: &[u8]) -> Result<Header, JoseError> {
        let raw: RawHeader<'_> = json::parse_typed(bytes)?;
        if raw.crit.is_some() {
            return Err(JoseError::CriticalHeader);
        }
        let alg = match raw.alg {
            Some(Scalar::Str(name)) => parse_alg(&name)?,
            None | Some(Scalar::Null) => return Err(JsonError::Missing("alg").into()),
            Some(_) => return Err(JsonError::Invalid("alg").into()),
        };
        let string = |member: Option<Scalar<'_>>, wrong: JoseError| match member {
            None => Ok(None),
            Some(Scalar::Str(s)) => Ok(Some(s.into_owned())),
            Some(_) => Err(wrong),
        };
        Ok(Header {
            alg,
            kid: string(raw.kid, JoseError::InvalidKid)?,
            typ: string(raw.typ, JoseError::InvalidTyp)?,
        })
    }
}

fn parse_alg(name: &str) -> Result<Algorithm, JoseError> {
    if let Some(alg) = Algorithm::from_name(name) {
        return Ok(alg);
    }
    // Case-insensitive on purpose: `None`/`NONE` and `hs256` are the usual bypass attempts and
    // deserve the specific error even though no case variant would ever be accepted.
    if name.eq_ignore_ascii_case("none") {
        Err(JoseError::AlgNone)
    } else if ["HS256", "HS384", "HS512"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
    {
        Err(JoseError::Hmac)
    } else {
        Err(JoseError::UnsupportedAlgorithm)
    }
}

/// A parsed, not yet verified, compact JWS.
///
/// `Debug` shows the header and lengths only: the payload of an ID or access token is not for
/// logs.
pub struct Jws<'a> {
    header: Header,
    signing_input: Cow<'a, str>,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// The three base64url parts of a compact JWS, not decoded.
fn split(token: &str) -> Result<(&str, &str, &str), JoseError> {
    if token.len() > json::MAX_DOCUMENT {
        return Err(JoseError::TooLong);
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok((h, p, s)),
        _ => Err(JoseError::Malformed(
            "a compact JWS has exactly three parts",
        )),
    }
}

/// The decoded payload of a compact JWS whose signature was verified earlier (a stored ID
/// token): the shape is checked, the header and signature are neither decoded nor looked at.
pub(crate) fn stored_payload(token: &str) -> Result<Vec<u8>, JoseError> {
    let (_, p, _) = split(token)?;
    b64_decode(p).ok_or(JoseError::Malformed("payload is not base64url"))
}

impl<'a> Jws<'a> {
    /// Splits and decodes a compact JWS and parses its header (see the module docs for the
    /// rules). Nothing is verified yet.
    pub fn parse(token: &'a str) -> Result<Jws<'a>, JoseError> {
        let (h, p, s) = split(token)?;
        let header_bytes = b64_decode(h).ok_or(JoseError::Malformed("header is not base64url"))?;
        let payload = b64_decode(p).ok_or(JoseError::Malformed("payload is not base64url"))?;
        let signature = b64_decode(s).ok_or(JoseError::Malformed("signature is not base64url"))?;
        let signing_input = token
            .get(..h.len() + 1 + p.len())
            .ok_or(JoseError::Malformed(
                "a compact JWS has exactly three parts",
            ))?;
        let header = Header::parse(&header_bytes)?;
        Ok(Jws {
            header,
            signing_input: Cow::Borrowed(signing_input),
            payload,
            signature,
        })
    }

    /// The parsed header.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Decoded payload bytes. NOT verified: only use after [`verify`](Self::verify) returned Ok.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The signing input (`header.payload`, still encoded), as covered by the signature.
    #[must_use]
    pub fn signing_input(&self) -> &str {
        &self.signing_input
    }

    /// The same token, no longer borrowing the string it was parsed from (a machine keeps it
    /// in its state instead of parsing the token again).
    #[must_use]
    pub fn into_owned(self) -> Jws<'static> {
        Jws {
            header: self.header,
            signing_input: Cow::Owned(self.signing_input.into_owned()),
            payload: self.payload,
            signature: self.signature,
        }
    }

    /// The checks that need no key: `alg ∈ allowed`, and the signature length of ES256 and
    /// EdDSA (exactly 64 bytes). [`verify`](Self::verify) makes them too; a caller runs them
    /// first when a JWKS request may come before `verify`, so that a token failing them never
    /// causes one.
    pub fn precheck(&self, allowed: AlgorithmSet) -> Result<(), JoseError> {
        let alg = self.header.alg;
        if !allowed.contains(alg) {
            return Err(JoseError::AlgorithmNotAllowed(alg));
        }
        if matches!(alg, Algorithm::Es256 | Algorithm::EdDsa) && self.signature.len() != 64 {
            return Err(JoseError::SignatureLength);
        }
        Ok(())
    }

    /// Checks `alg ∈ allowed`, the signature length, and verifies the signature with `key`,
    /// the one key the caller selected (the key ring of [`crate::flow`] selects it from the
    /// provider's key set and decides about refetching; this module knows no key set).
    pub(crate) fn verify(&self, key: &PublicKey, allowed: AlgorithmSet) -> Result<(), JoseError> {
        self.precheck(allowed)?;
        if self.signature.len() != key.signature_len() {
            return Err(JoseError::SignatureLength);
        }
        if crypto::verify(
            self.header.alg,
            key,
            self.signing_input.as_bytes(),
            &self.signature,
        ) {
            Ok(())
        } else {
            Err(JoseError::InvalidSignature)
        }
    }
}

impl fmt::Debug for Jws<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jws")
            .field("header", &self.header)
            .field("payload_len", &self.payload.len())
            .field("signature_len", &self.signature.len())
            .finish_non_exhaustive()
    }
}

/// Why a JWS was refused. Messages never contain token contents.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoseError {
    /// The token is longer than [`json::MAX_DOCUMENT`].
    #[error("token longer than {} bytes", json::MAX_DOCUMENT)]
    TooLong,
    /// Not a compact JWS: wrong number of parts or a part that is not strict base64url.
    #[error("malformed JWS: {0}")]
    Malformed(&'static str),
    /// The header is not a strict JSON object, or `alg` is missing or not a string.
    #[error("invalid JWS header: {0}")]
    Json(#[from] JsonError),
    /// `alg: none` (any case): unsigned tokens are never accepted.
    #[error("unsigned token (alg none) refused")]
    AlgNone,
    /// `HS256`/`HS384`/`HS512`: a client must never verify HMAC with a public key.
    #[error("HMAC-signed token refused")]
    Hmac,
    /// An `alg` this crate does not implement.
    #[error("unsupported JWS algorithm")]
    UnsupportedAlgorithm,
    /// A supported `alg` outside the caller's allowed set.
    #[error("JWS algorithm {0} is not allowed here")]
    AlgorithmNotAllowed(Algorithm),
    /// The header has a `crit` member; we implement no extension.
    #[error("JWS header has a `crit` member")]
    CriticalHeader,
    /// The header's `kid` is not a string.
    #[error("JWS header `kid` is not a string")]
    InvalidKid,
    /// The header's `typ` is not a string.
    #[error("JWS header `typ` is not a string")]
    InvalidTyp,
    /// No key of the key set fits the token (kid, key type, alg). Refetching the JWKS may help.
    #[error("no key in the key set matches the token")]
    NoMatchingKey,
    /// More than one key fits the token (no `kid`, or a duplicated one).
    #[error("several keys in the key set match the token")]
    AmbiguousKey,
    /// The signature length does not fit the algorithm and key.
    #[error("JWS signature has the wrong length")]
    SignatureLength,
    /// The signature does not verify.
    #[error("invalid JWS signature")]
    InvalidSignature,
}
