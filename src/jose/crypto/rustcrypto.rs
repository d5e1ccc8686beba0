//! The `rustcrypto` backend: pure Rust, no C and no assembly in the build.
//!
//! `p256` (ECDSA P-256), `ed25519-dalek` (`verify_strict`: also refuses small-order `R` and
//! keys), `rsa` (PKCS#1 v1.5 and PSS, told to accept the 8192-bit moduli our size rule allows)
//! and `sha2`.

use super::{Backend, RsaPadding};
use p256::ecdsa::signature::Verifier as _;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::{Digest as _, Sha256, Sha512};

/// The largest modulus we accept ([`super::RSA_MAX_BITS`]); the `rsa` crate's default is 4096.
const RSA_MAX_BITS: usize = super::RSA_MAX_BITS;

/// RustCrypto crates.
pub(crate) struct RustCrypto;

impl Backend for RustCrypto {
    const NAME: &'static str = "rustcrypto";

    fn verify_p256_sha256(point: &[u8; 65], msg: &[u8], sig: &[u8]) -> bool {
        // `from_sec1_bytes` refuses points not on the curve and the identity;
        // `from_slice` refuses `r` or `s` that is zero or not below the group order.
        let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(point) else {
            return false;
        };
        let Ok(sig) = p256::ecdsa::Signature::from_slice(sig) else {
            return false;
        };
        key.verify(msg, &sig).is_ok()
    }

    fn verify_ed25519(key: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(key) else {
            return false;
        };
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
            return false;
        };
        key.verify_strict(msg, &sig).is_ok()
    }

    fn verify_rsa_sha256(n: &[u8], e: &[u8], padding: RsaPadding, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(key) = RsaPublicKey::new_with_max_size(
            BigUint::from_bytes_be(n),
            BigUint::from_bytes_be(e),
            RSA_MAX_BITS,
        ) else {
            return false;
        };
        let hashed = Sha256::digest(msg);
        match padding {
            RsaPadding::Pkcs1v15 => key.verify(Pkcs1v15Sign::new::<Sha256>(), &hashed, sig),
            RsaPadding::Pss => key.verify(Pss::new::<Sha256>(), &hashed, sig),
        }
        .is_ok()
    }

    fn sha256(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    fn sha512(data: &[u8]) -> [u8; 64] {
        Sha512::digest(data).into()
    }
}
