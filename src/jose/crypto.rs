//! The crypto seam: the only place that talks to `ring`.
//!
//! Two operations: turn JWK key material into a [`PublicKey`] (checking every size rule we can
//! check without a signature), and verify a signature with it. A second backend would replace
//! this file only.
//!
//! What is checked when, and why:
//! - P-256 (`ES256`): `x` and `y` must be exactly 32 bytes each. ring 0.17 has no public API that
//!   validates a P-256 point on its own: point validation happens inside every ECDSA
//!   verification (`UnparsedPublicKey::verify` parses the point and checks it is on the curve),
//!   and the only other route (ECDH via `agreement::agree_ephemeral`) needs an ephemeral private
//!   key drawn from the OS RNG, which the core must not use. So a JWK whose point is not on the
//!   curve is kept, and every signature checked against it fails with
//!   [`JoseError::InvalidSignature`](super::JoseError::InvalidSignature).
//! - Ed25519 (strict, RFC 8032 §5.1.7 and DESIGN §5): `x` must be exactly 32 bytes, its `y`
//!   coordinate (the encoding with the sign bit cleared) must be canonical (`y < p`), and the
//!   point must not be one of the eight points of small order (nor the two non-canonical
//!   "negative zero" encodings of `x = 0`). A small-order key makes one fixed signature valid for
//!   every message, and ring does not refuse such keys itself, so they are refused here, when
//!   the JWKS is read. ring decodes the point at verification time and rejects a non-canonical
//!   signature `S` (`S >= L`); a test pins that.
//! - RSA: the modulus (leading zero bytes tolerated and stripped) must have 2048 to 8192 bits and
//!   be odd; the exponent must be odd and in `3..2^33`. These are the same limits ring enforces
//!   at verification time, checked up front so that such a key is skipped at JWKS parse time.
//!   ring 0.17 offers no pre-parsed RSA public key for verification, so `n` and `e` are kept
//!   as bytes and parsed by ring on each verification (a few microseconds).

use super::Algorithm;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};

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

/// Verifies `sig` over `msg` with `key` under `alg`. `false` on any mismatch, including a key
/// of the wrong family (callers select keys by family first; this is a second line).
pub(crate) fn verify(alg: Algorithm, key: &PublicKey, msg: &[u8], sig: &[u8]) -> bool {
    match (alg, key) {
        (Algorithm::Es256, PublicKey::P256(point)) => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(msg, sig)
                .is_ok()
        }
        (Algorithm::EdDsa, PublicKey::Ed25519(x)) => UnparsedPublicKey::new(&signature::ED25519, x)
            .verify(msg, sig)
            .is_ok(),
        (Algorithm::Rs256, PublicKey::Rsa { n, e }) => RsaPublicKeyComponents { n, e }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg, sig)
            .is_ok(),
        (Algorithm::Ps256, PublicKey::Rsa { n, e }) => RsaPublicKeyComponents { n, e }
            .verify(&signature::RSA_PSS_2048_8192_SHA256, msg, sig)
            .is_ok(),
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
