//! The crypto seam: the only place that talks to a crypto library.
//!
//! Like rustls's `CryptoProvider`, the primitives come from one backend chosen at build time by
//! a cargo feature, and everything else is ours:
//!
//! | feature | backend | notes |
//! |---|---|---|
//! | `ring` (default) | ring 0.17 | C and assembly built by `cc` |
//! | `aws-lc-rs` | AWS-LC through aws-lc-rs | faster P-256 and Ed25519 on x86_64; FIPS module via aws-lc-rs's `fips` feature |
//! | `rustcrypto` | `p256` (ECDSA), `ed25519-dalek` (`verify_strict`), `rsa` (PKCS#1 v1.5 and PSS) + `sha2` | pure Rust: no C compiler, no assembly; builds for `wasm32-unknown-unknown` |
//!
//! Exactly one must be enabled: none, or two at once (e.g. `rustcrypto` without
//! `default-features = false`), is a compile error rather than a silent choice, so a build
//! that must not link C (wasm32) cannot end up with ring by accident.
//!
//! A backend ([`Backend`]) verifies a signature on key material that this module has already
//! checked, and computes SHA-256/SHA-512 (`at_hash`, the PKCE challenge, the single-flight
//! key). It never decides what is acceptable: every rule below is applied here, before the
//! backend is called, identically for every backend, and the core test suite runs once per
//! backend in CI.
//!
//! What is checked when, and why:
//! - P-256 (`ES256`): `x` and `y` must be exactly 32 bytes each; the signature exactly 64
//!   bytes (`r ‖ s`). ring 0.17 has no public API that validates a P-256 point on its own: point
//!   validation happens inside every ECDSA verification, and the only other route (ECDH via
//!   `agreement::agree_ephemeral`) needs an ephemeral private key drawn from the OS RNG, which
//!   the core must not use. So, for every backend alike, a JWK whose point is not on the curve
//!   is kept, and every signature checked against it fails with
//!   [`JoseError::InvalidSignature`](super::JoseError::InvalidSignature) (each backend parses
//!   and validates the point at verification time; a test checks this for the active one).
//! - Ed25519 (strict, RFC 8032 §5.1.7 and DESIGN §5): `x` must be exactly 32 bytes, its `y`
//!   coordinate (the encoding with the sign bit cleared) must be canonical (`y < p`), and the
//!   point must not be one of the eight points of small order (nor the two non-canonical
//!   "negative zero" encodings of `x = 0`). A small-order key makes one fixed signature valid for
//!   every message, and ring and aws-lc-rs do not refuse such keys themselves, so they are
//!   refused here, for every backend, when the JWKS is read. The signature must be exactly 64
//!   bytes with a canonical `S < L`, also checked here for every backend (each backend refuses
//!   it too; a test pins that); every backend compares `R` by its encoding, so a non-canonical
//!   `R` never verifies. The `rustcrypto` backend uses `ed25519-dalek`'s `verify_strict`, which
//!   also refuses a small-order `R`: a signature only the key's owner could make, so with a
//!   valid key the three backends accept the same signatures from anyone else.
//! - RSA: the modulus (leading zero bytes tolerated and stripped) must have 2048 to 8192 bits and
//!   be odd; the exponent must be odd and in `3..2^33`; the signature exactly as long as the
//!   modulus. These are ring's verification limits, checked up front so that such a key is
//!   skipped at JWKS parse time and every backend sees the same keys (the `rsa` crate is told
//!   to accept 8192-bit moduli, its default maximum being 4096). `n` and `e` are kept as bytes
//!   and parsed by the backend on each verification (a few microseconds). The `rsa` crate's
//!   RUSTSEC-2023-0071 (timing of private-key operations) does not apply: we only verify.

#[cfg(not(any(feature = "ring", feature = "aws-lc-rs", feature = "rustcrypto")))]
compile_error!(
    "authpi-idp needs a crypto backend: enable one of the features `ring` (default), `aws-lc-rs`, `rustcrypto`"
);
#[cfg(any(
    all(feature = "ring", feature = "aws-lc-rs"),
    all(feature = "ring", feature = "rustcrypto"),
    all(feature = "aws-lc-rs", feature = "rustcrypto"),
))]
compile_error!(
    "authpi-idp: enable exactly one crypto backend feature; to choose `aws-lc-rs` or `rustcrypto`, set `default-features = false` (and add `url-ascii-only` back if wanted)"
);

#[cfg(feature = "aws-lc-rs")]
mod aws_lc;
#[cfg(feature = "ring")]
mod ring_backend;
#[cfg(feature = "rustcrypto")]
mod rustcrypto;

use super::Algorithm;

/// The backend of this build.
#[cfg(all(
    feature = "ring",
    not(any(feature = "aws-lc-rs", feature = "rustcrypto"))
))]
type Active = ring_backend::Ring;
/// The backend of this build.
#[cfg(all(
    feature = "aws-lc-rs",
    not(any(feature = "ring", feature = "rustcrypto"))
))]
type Active = aws_lc::AwsLc;
/// The backend of this build.
#[cfg(all(
    feature = "rustcrypto",
    not(any(feature = "ring", feature = "aws-lc-rs"))
))]
type Active = rustcrypto::RustCrypto;

/// The crypto backend of this build: `"ring"`, `"aws-lc-rs"` or `"rustcrypto"` (the cargo
/// feature that chose it).
pub const CRYPTO_BACKEND: &str = Active::NAME;

/// RSA signature padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RsaPadding {
    /// RSASSA-PKCS1-v1_5 (`RS256`).
    Pkcs1v15,
    /// RSASSA-PSS with MGF1-SHA-256 and a 32-byte salt (`PS256`).
    Pss,
}

/// What a crypto backend provides. Inputs have passed this module's checks (sizes, signature
/// lengths, canonical Ed25519 `S`); a backend answers `false` for anything it cannot verify.
pub(crate) trait Backend {
    /// The feature name.
    const NAME: &'static str;
    /// ECDSA P-256 with SHA-256 over `msg`; `point` is `04 ‖ x ‖ y`, `sig` is `r ‖ s`
    /// (64 bytes). The point is validated (on the curve, not the identity) here.
    fn verify_p256_sha256(point: &[u8; 65], msg: &[u8], sig: &[u8]) -> bool;
    /// Ed25519 (RFC 8032, pure) over `msg`; `sig` is 64 bytes with `S < L`.
    fn verify_ed25519(key: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool;
    /// RSA with SHA-256; `n` (2048–8192 bits, odd) and `e` big-endian without leading zeros;
    /// `sig` is exactly as long as `n`.
    fn verify_rsa_sha256(n: &[u8], e: &[u8], padding: RsaPadding, msg: &[u8], sig: &[u8]) -> bool;
    /// SHA-256.
    fn sha256(data: &[u8]) -> [u8; 32];
    /// SHA-512.
    fn sha512(data: &[u8]) -> [u8; 64];
}

/// SHA-256 of `data`, by the active backend.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Active::sha256(data)
}

/// SHA-512 of `data`, by the active backend.
pub(crate) fn sha512(data: &[u8]) -> [u8; 64] {
    Active::sha512(data)
}

/// Smallest RSA modulus accepted, in bits.
pub(crate) const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (ring's limit for the algorithms we use).
pub(crate) const RSA_MAX_BITS: usize = 8192;

/// Public key material ready for verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// Uncompressed SEC1 point `04 ‖ x ‖ y`.
    P256([u8; 65]),
    /// The 32-byte Ed25519 public key.
    Ed25519([u8; 32]),
    /// RSA modulus and exponent, big-endian, without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

/// The key families, as implied by a JWK's `kty` (+ `crv`) or a token's `alg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// `kty: EC`, `crv: P-256`.
    P256,
    /// `kty: OKP`, `crv: Ed25519`.
    Ed25519,
    /// `kty: RSA`.
    Rsa,
}

impl KeyKind {
    /// The key family an algorithm needs.
    pub(crate) fn for_algorithm(alg: Algorithm) -> KeyKind {
        match alg {
            Algorithm::Es256 => KeyKind::P256,
            Algorithm::EdDsa => KeyKind::Ed25519,
            Algorithm::Rs256 | Algorithm::Ps256 => KeyKind::Rsa,
        }
    }

    /// Short name for `Debug` output.
    pub(crate) fn name(self) -> &'static str {
        match self {
            KeyKind::P256 => "EC P-256",
            KeyKind::Ed25519 => "OKP Ed25519",
            KeyKind::Rsa => "RSA",
        }
    }
}

impl PublicKey {
    /// A P-256 key from its affine coordinates; `None` unless both are exactly 32 bytes.
    pub(crate) fn p256(x: &[u8], y: &[u8]) -> Option<PublicKey> {
        let x: &[u8; 32] = x.try_into().ok()?;
        let y: &[u8; 32] = y.try_into().ok()?;
        let mut point = [0u8; 65];
        let (tag, rest) = point.split_at_mut(1);
        let (px, py) = rest.split_at_mut(32);
        tag.copy_from_slice(&[0x04]);
        px.copy_from_slice(x);
        py.copy_from_slice(y);
        Some(PublicKey::P256(point))
    }

    /// An Ed25519 key; `None` unless exactly 32 bytes, canonical and not of small order.
    pub(crate) fn ed25519(x: &[u8]) -> Option<PublicKey> {
        let x: [u8; 32] = x.try_into().ok()?;
        ed25519_is_strict(&x).then_some(PublicKey::Ed25519(x))
    }

    /// An RSA key; `None` when the modulus or the exponent is outside the accepted range.
    pub(crate) fn rsa(n: &[u8], e: &[u8]) -> Option<PublicKey> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let bits = bit_length(n);
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) || n.last().is_none_or(|b| b & 1 == 0) {
            return None;
        }
        if e.len() > 5 {
            return None;
        }
        let e_value = e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        if !(3..(1 << 33)).contains(&e_value) || e_value & 1 == 0 {
            return None;
        }
        Some(PublicKey::Rsa {
            n: n.to_vec(),
            e: e.to_vec(),
        })
    }

    /// The key family.
    pub(crate) fn kind(&self) -> KeyKind {
        match self {
            PublicKey::P256(_) => KeyKind::P256,
            PublicKey::Ed25519(_) => KeyKind::Ed25519,
            PublicKey::Rsa { .. } => KeyKind::Rsa,
        }
    }

    /// The exact length of a valid signature made with this key (the modulus length for RSA).
    pub(crate) fn signature_len(&self) -> usize {
        match self {
            PublicKey::P256(_) | PublicKey::Ed25519(_) => 64,
            PublicKey::Rsa { n, .. } => n.len(),
        }
    }

    /// Key size in bits (the curve size for EC/OKP); for `Debug` output.
    pub(crate) fn bits(&self) -> usize {
        match self {
            PublicKey::P256(_) => 256,
            PublicKey::Ed25519(_) => 255,
            PublicKey::Rsa { n, .. } => bit_length(n),
        }
    }
}

/// The Ed25519 group order `L`, little-endian (RFC 8032 §5.1).
const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Whether the `S` half of an Ed25519 signature is canonical (`S < L`, RFC 8032 §5.1.7).
fn ed25519_s_is_canonical(sig: &[u8]) -> bool {
    let Some(s) = sig.get(32..64) else {
        return false;
    };
    // Little-endian: compare from the most significant byte down.
    for (a, l) in s.iter().rev().zip(ED25519_L.iter().rev()) {
        if a != l {
            return a < l;
        }
    }
    false // S == L
}

/// Verifies `sig` over `msg` with `key` under `alg`. `false` on any mismatch, including a key
/// of the wrong family (callers select keys by family first; this is a second line).
pub(crate) fn verify(alg: Algorithm, key: &PublicKey, msg: &[u8], sig: &[u8]) -> bool {
    if sig.len() != key.signature_len() {
        return false;
    }
    match (alg, key) {
        (Algorithm::Es256, PublicKey::P256(point)) => Active::verify_p256_sha256(point, msg, sig),
        (Algorithm::EdDsa, PublicKey::Ed25519(x)) => {
            ed25519_s_is_canonical(sig) && Active::verify_ed25519(x, msg, sig)
        }
        (Algorithm::Rs256, PublicKey::Rsa { n, e }) => {
            Active::verify_rsa_sha256(n, e, RsaPadding::Pkcs1v15, msg, sig)
        }
        (Algorithm::Ps256, PublicKey::Rsa { n, e }) => {
            Active::verify_rsa_sha256(n, e, RsaPadding::Pss, msg, sig)
        }
        _ => false,
    }
}

/// The field prime `p = 2^255 - 19`, little-endian.
const ED25519_P: [u8; 32] = [
    0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
];

/// The `y` coordinates (little-endian, sign bit cleared) of the eight Ed25519 points of small
/// order: `y = 0` (order 4, both signs of `x`), `y = 1` (the identity), `y = p - 1` (order 2),
/// and the two `y` of the four points of order 8 (both signs each). The same list as
/// libsodium's `crypto_core_ed25519_is_valid_point` blocklist.
const ED25519_SMALL_ORDER_Y: [[u8; 32]; 5] = [
    [0; 32],
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
];

/// Whether an encoded Ed25519 public key is canonical (`y < p`) and not of small order. (The
/// only other non-canonical encodings, `x = 0` with the sign bit set, have `y = ±1` and are
/// caught by the small-order list, which ignores the sign bit.) Whether the point is on the
/// curve at all is left to ring, which fails every verification with a key that is not.
fn ed25519_is_strict(encoded: &[u8; 32]) -> bool {
    let mut y = *encoded;
    if let Some(last) = y.last_mut() {
        *last &= 0x7f;
    }
    // Little-endian comparison y < p, from the most significant byte.
    let below_p = y
        .iter()
        .rev()
        .zip(ED25519_P.iter().rev())
        .find(|(a, b)| a != b)
        .is_some_and(|(a, b)| a < b);
    below_p && !ED25519_SMALL_ORDER_Y.contains(&y)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// Bit length of a big-endian unsigned integer without leading zero bytes.
fn bit_length(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(first) => (n.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rsa_size_and_exponent_rules() {
        let mut n2048 = vec![0xffu8; 256];
        let e = [1u8, 0, 1];
        assert!(PublicKey::rsa(&n2048, &e).is_some());
        // A leading zero byte is tolerated and stripped.
        let mut padded = vec![0u8];
        padded.extend_from_slice(&n2048);
        assert_eq!(PublicKey::rsa(&padded, &e), PublicKey::rsa(&n2048, &e));
        // 2047 bits: too small.
        let mut n2047 = n2048.clone();
        if let Some(b) = n2047.first_mut() {
            *b = 0x7f;
        }
        assert!(PublicKey::rsa(&n2047, &e).is_none());
        // Even modulus.
        if let Some(b) = n2048.last_mut() {
            *b = 0xfe;
        }
        assert!(PublicKey::rsa(&n2048, &e).is_none());
        // 8192 bits accepted, 8200 refused.
        assert!(PublicKey::rsa(&[0xffu8; 1024], &e).is_some());
        assert!(PublicKey::rsa(&[0xffu8; 1025], &e).is_none());
        let n = [0xffu8; 256];
        for (e, ok) in [
            (&[3u8][..], true),
            (&[1], false),
            (&[0], false),
            (&[], false),
            (&[1, 0, 0], false),                  // even
            (&[0, 0, 1, 0, 1], true),             // leading zeros stripped
            (&[1, 0xff, 0xff, 0xff, 0xff], true), // 2^33 - 1
            (&[2, 0, 0, 0, 1], false),            // 2^33 + 1
            (&[1, 0, 0, 0, 0, 1], false),         // 6 bytes
        ] {
            assert_eq!(PublicKey::rsa(&n, e).is_some(), ok, "e = {e:?}");
        }
    }

    #[test]
    fn fixed_size_keys() {
        assert!(PublicKey::p256(&[1; 32], &[2; 32]).is_some());
        assert!(PublicKey::p256(&[1; 31], &[2; 32]).is_none());
        assert!(PublicKey::p256(&[1; 32], &[2; 33]).is_none());
        assert!(PublicKey::ed25519(&[1; 32]).is_some());
        assert!(PublicKey::ed25519(&[1; 31]).is_none());
        assert!(PublicKey::ed25519(&[1; 33]).is_none());
    }

    use crate::jose::BASE64URL;
    use crate::jose::test_keys::TestKey;
    use base64::Engine as _;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn b64(v: &serde_json::Value, member: &str) -> Vec<u8> {
        BASE64URL.decode(v[member].as_str().unwrap()).unwrap()
    }

    /// The public key of a test key, through its JWK (as the JWKS parser sees it).
    fn public(key: &TestKey) -> PublicKey {
        let jwk = key.jwk();
        match key.alg {
            Algorithm::Es256 => PublicKey::p256(&b64(&jwk, "x"), &b64(&jwk, "y")),
            Algorithm::EdDsa => PublicKey::ed25519(&b64(&jwk, "x")),
            Algorithm::Rs256 | Algorithm::Ps256 => PublicKey::rsa(&b64(&jwk, "n"), &b64(&jwk, "e")),
        }
        .unwrap()
    }

    /// The backend the features chose (CI runs the core tests once per backend).
    #[test]
    fn backend_is_the_one_the_features_chose() {
        let expected = if cfg!(feature = "ring") {
            "ring"
        } else if cfg!(feature = "aws-lc-rs") {
            "aws-lc-rs"
        } else {
            "rustcrypto"
        };
        assert_eq!(CRYPTO_BACKEND, expected);
    }

    /// FIPS 180-2 appendix vectors ("abc").
    #[test]
    fn sha2_vectors() {
        assert_eq!(
            sha256(b"abc").to_vec(),
            hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(
            sha512(b"abc").to_vec(),
            hex(concat!(
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a",
                "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
            ))
        );
        assert_eq!(
            sha256(b"").to_vec(),
            hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }

    /// RFC 8032 §7.1 TEST 1 and TEST 2, plus the same signatures made non-canonical (`S + L`),
    /// truncated, or over another message.
    #[test]
    fn ed25519_rfc8032_vectors_and_strictness() {
        let cases = [
            (
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "",
                concat!(
                    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155",
                    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
                ),
            ),
            (
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "72",
                concat!(
                    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da",
                    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
                ),
            ),
        ];
        for (key, msg, sig) in cases {
            let key = PublicKey::ed25519(&hex(key)).unwrap();
            let (msg, sig) = (hex(msg), hex(sig));
            assert!(
                verify(Algorithm::EdDsa, &key, &msg, &sig),
                "{CRYPTO_BACKEND}"
            );
            assert!(!verify(Algorithm::EdDsa, &key, b"other", &sig));
            assert!(!verify(Algorithm::EdDsa, &key, &msg, &sig[..63]));
            // S + L: the same scalar mod L, but not canonical (RFC 8032 §5.1.7).
            let mut s_plus_l = sig.clone();
            let mut carry = 0u16;
            for (b, l) in s_plus_l[32..].iter_mut().zip(ED25519_L) {
                let sum = u16::from(*b) + u16::from(l) + carry;
                *b = sum as u8;
                carry = sum >> 8;
            }
            assert_eq!(carry, 0);
            assert!(!ed25519_s_is_canonical(&s_plus_l));
            assert!(!verify(Algorithm::EdDsa, &key, &msg, &s_plus_l));
        }
        // The boundary of the canonical check itself.
        let mut sig = [0u8; 64];
        sig[32..].copy_from_slice(&ED25519_L);
        assert!(!ed25519_s_is_canonical(&sig), "S = L");
        sig[32] -= 1;
        assert!(ed25519_s_is_canonical(&sig), "S = L - 1");
        sig[32..].copy_from_slice(&[0; 32]);
        assert!(ed25519_s_is_canonical(&sig), "S = 0");
    }

    /// RFC 6979 §A.2.5 (P-256, SHA-256, message "sample"); then the same key with `y` moved
    /// off the curve: kept at parse time, never verifies (the same for every backend).
    #[test]
    fn p256_rfc6979_vector_and_off_curve_point() {
        let x = hex("60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6");
        let y = hex("7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299");
        let sig = hex(concat!(
            "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716",
            "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8"
        ));
        let key = PublicKey::p256(&x, &y).unwrap();
        assert!(
            verify(Algorithm::Es256, &key, b"sample", &sig),
            "{CRYPTO_BACKEND}"
        );
        assert!(!verify(Algorithm::Es256, &key, b"samplf", &sig));
        // DER or any other length is refused before the backend.
        assert!(!verify(Algorithm::Es256, &key, b"sample", &sig[..63]));
        let mut off = y.clone();
        off[31] ^= 1;
        let off_curve = PublicKey::p256(&x, &off).unwrap();
        assert!(!verify(Algorithm::Es256, &off_curve, b"sample", &sig));
        // The point at infinity has no affine encoding; all-zero coordinates are off the curve.
        let zero = PublicKey::p256(&[0; 32], &[0; 32]).unwrap();
        assert!(!verify(Algorithm::Es256, &zero, b"sample", &sig));
        // r = 0 or s = 0 never verifies.
        let mut r0 = sig.clone();
        r0[..32].fill(0);
        assert!(!verify(Algorithm::Es256, &key, b"sample", &r0));
    }

    /// Signatures made by ring (the test keys) verify with the active backend, for every
    /// algorithm; a flipped bit never does.
    #[test]
    fn signatures_from_another_implementation_verify() {
        for alg in [
            Algorithm::Es256,
            Algorithm::EdDsa,
            Algorithm::Rs256,
            Algorithm::Ps256,
        ] {
            let key = TestKey::generate(alg, None);
            let public = public(&key);
            let msg = b"header.payload";
            let sig = key.sign_raw(msg);
            assert!(verify(alg, &public, msg, &sig), "{alg:?} {CRYPTO_BACKEND}");
            let mut bad = sig.clone();
            bad[sig.len() / 2] ^= 0x10;
            assert!(!verify(alg, &public, msg, &bad), "{alg:?}");
            assert!(!verify(alg, &public, b"header.payloae", &sig), "{alg:?}");
        }
        // RS256 and PS256 signatures are not interchangeable.
        let rs = TestKey::generate(Algorithm::Rs256, None);
        let sig = rs.sign_raw(b"m");
        assert!(!verify(Algorithm::Ps256, &public(&rs), b"m", &sig));
    }

    /// The largest modulus the size rule accepts, 8192 bits, verifies with every backend
    /// (the `rsa` crate's own default maximum is 4096); a key from another fixture does not.
    #[test]
    fn rsa_8192_verifies() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/keys/rsa8192.sig.json"))
                .unwrap();
        let key = PublicKey::rsa(&b64(&v, "n"), &b64(&v, "e")).unwrap();
        assert_eq!(key.bits(), 8192);
        let msg = v["msg"].as_str().unwrap().as_bytes();
        assert!(
            verify(Algorithm::Rs256, &key, msg, &b64(&v, "rs256")),
            "{CRYPTO_BACKEND}"
        );
        assert!(
            verify(Algorithm::Ps256, &key, msg, &b64(&v, "ps256")),
            "{CRYPTO_BACKEND}"
        );
        assert!(!verify(Algorithm::Rs256, &key, msg, &b64(&v, "ps256")));
        assert!(!verify(Algorithm::Rs256, &key, b"other", &b64(&v, "rs256")));
        let other = public(&TestKey::generate(Algorithm::Rs256, None));
        assert!(!verify(Algorithm::Rs256, &other, msg, &b64(&v, "rs256")));
    }

    #[test]
    fn key_of_wrong_family_never_verifies() {
        let key = PublicKey::ed25519(&[1; 32]).unwrap();
        assert!(!verify(Algorithm::Es256, &key, b"m", &[0; 64]));
        assert!(!verify(Algorithm::Rs256, &key, b"m", &[0; 64]));
    }

    fn hex32(h: &str) -> [u8; 32] {
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        bytes.try_into().unwrap()
    }

    /// The eight Ed25519 points of small order, as listed in the literature (e.g. "Taming the
    /// many EdDSAs", Brendel et al. 2020, Table 6; libsodium's blocklist), encoded: none is
    /// accepted as a JWKS key. So are the non-canonical encodings (`y >= p`, and `x = 0` with
    /// the sign bit set).
    #[test]
    fn ed25519_small_order_and_non_canonical_keys_are_refused() {
        let small_order = [
            // identity (order 1)
            "0100000000000000000000000000000000000000000000000000000000000000",
            // order 2: y = p - 1
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            // order 4: y = 0, both signs of x
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0000000000000000000000000000000000000000000000000000000000000080",
            // order 8: two y values, both signs of x
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        ];
        let non_canonical = [
            // y = p, p + 1, p + 18 = 2^255 - 1 (the last with either sign bit)
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            // x = 0 with the sign bit set ("negative zero") for y = 1 and y = p - 1
            "0100000000000000000000000000000000000000000000000000000000000080",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        ];
        for h in small_order.iter().chain(&non_canonical) {
            assert_eq!(PublicKey::ed25519(&hex32(h)), None, "{h}");
        }
        // The largest canonical y (p - 2) is not refused by these rules, nor is a real key.
        let edge = hex32("ebffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
        assert!(PublicKey::ed25519(&edge).is_some());
        let key = super::super::test_keys::TestKey::generate(Algorithm::EdDsa, None);
        let x = crate::jose::b64_decode(key.jwk()["x"].as_str().unwrap()).unwrap();
        assert!(PublicKey::ed25519(&x).is_some());
    }

    /// RFC 8032 §5.1.7: `S` must be below the group order `L`; ring must refuse `S + L`, which
    /// would verify under a lax verifier (it is the same scalar mod L).
    #[test]
    fn ed25519_non_canonical_signature_is_refused() {
        // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
        let l = hex32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        let key = super::super::test_keys::TestKey::generate(Algorithm::EdDsa, None);
        let x = crate::jose::b64_decode(key.jwk()["x"].as_str().unwrap()).unwrap();
        let public = PublicKey::ed25519(&x).unwrap();
        let sig = key.sign_raw(b"message");
        assert!(verify(Algorithm::EdDsa, &public, b"message", &sig));
        // S' = S + L (S < L < 2^253, so S + L < 2^254 still fits in 32 bytes).
        let mut malleated = sig.clone();
        let mut carry = 0u16;
        for (b, l) in malleated[32..].iter_mut().zip(l) {
            let sum = u16::from(*b) + u16::from(l) + carry;
            *b = (sum & 0xff) as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
        assert_ne!(malleated, sig);
        assert!(!verify(Algorithm::EdDsa, &public, b"message", &malleated));
    }
}
