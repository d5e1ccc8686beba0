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
//! - Ed25519: `x` must be exactly 32 bytes; ring decodes the point at verification time and
//!   rejects a non-canonical `S` (`S >= L`).
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

    /// An Ed25519 key; `None` unless exactly 32 bytes.
    pub(crate) fn ed25519(x: &[u8]) -> Option<PublicKey> {
        let x: [u8; 32] = x.try_into().ok()?;
        Some(PublicKey::Ed25519(x))
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
}
