//! The `aws-lc-rs` backend (AWS-LC; its API mirrors ring's).

use super::{Backend, RsaPadding};
use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};

/// aws-lc-rs 1.
pub(crate) struct AwsLc;

impl Backend for AwsLc {
    const NAME: &'static str = "aws-lc-rs";

    fn verify_p256_sha256(point: &[u8; 65], msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
            .verify(msg, sig)
            .is_ok()
    }

    fn verify_ed25519(key: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::ED25519, key)
            .verify(msg, sig)
            .is_ok()
    }

    fn verify_rsa_sha256(n: &[u8], e: &[u8], padding: RsaPadding, msg: &[u8], sig: &[u8]) -> bool {
        let params = match padding {
            RsaPadding::Pkcs1v15 => &signature::RSA_PKCS1_2048_8192_SHA256,
            RsaPadding::Pss => &signature::RSA_PSS_2048_8192_SHA256,
        };
        RsaPublicKeyComponents { n, e }
            .verify(params, msg, sig)
            .is_ok()
    }

    fn sha256(data: &[u8]) -> [u8; 32] {
        let d = digest::digest(&digest::SHA256, data);
        // A SHA-256 digest is always 32 bytes.
        <[u8; 32]>::try_from(d.as_ref()).unwrap_or_default()
    }

    fn sha512(data: &[u8]) -> [u8; 64] {
        let d = digest::digest(&digest::SHA512, data);
        // A SHA-512 digest is always 64 bytes.
        <[u8; 64]>::try_from(d.as_ref()).unwrap_or([0; 64])
    }
}
