//! Test signing keys (ring), shared by the unit tests of every module that needs signed tokens.
//!
//! ES256 and Ed25519 keys are generated fresh; RSA keys come from the PKCS#8 fixtures under
//! `tests/fixtures/keys/` (ring cannot generate RSA keys).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::{Algorithm, BASE64URL};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{Value, json};

/// The RSA-2048 fixtures, by index.
pub(crate) const RSA_FIXTURES: [&[u8]; 2] = [
    include_bytes!("../../tests/fixtures/keys/rsa2048-a.pk8.der"),
    include_bytes!("../../tests/fixtures/keys/rsa2048-b.pk8.der"),
];

/// The public JWK of an RSA-1024 key (must be skipped by JWKS parsing).
pub(crate) const RSA1024_JWK: &str = include_str!("../../tests/fixtures/keys/rsa1024.pub.jwk.json");

enum Pair {
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A signing key with its algorithm and optional `kid`.
pub(crate) struct TestKey {
    /// The algorithm the key signs with.
    pub(crate) alg: Algorithm,
    /// The `kid` put in the JWK and in headers made by [`TestKey::token`].
    pub(crate) kid: Option<String>,
    pair: Pair,
}

/// Unpadded base64url.
pub(crate) fn b64(bytes: &[u8]) -> String {
    BASE64URL.encode(bytes)
}

impl TestKey {
    /// A key for `alg`: fresh for ES256/EdDSA, the first RSA fixture for RS256/PS256.
    pub(crate) fn generate(alg: Algorithm, kid: Option<&str>) -> TestKey {
        TestKey::generate_nth(alg, kid, 0)
    }

    /// Like [`generate`](Self::generate), with RSA fixture `n` (0 or 1) so that two distinct
    /// RSA keys are available.
    pub(crate) fn generate_nth(alg: Algorithm, kid: Option<&str>, n: usize) -> TestKey {
        let rng = SystemRandom::new();
        let pair = match alg {
            Algorithm::Es256 => {
                let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
                Pair::Es256(EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap())
            }
            Algorithm::EdDsa => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
                Pair::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
            }
            Algorithm::Rs256 | Algorithm::Ps256 => {
                Pair::Rsa(RsaKeyPair::from_pkcs8(RSA_FIXTURES[n]).unwrap())
            }
        };
        TestKey {
            alg,
            kid: kid.map(str::to_owned),
            pair,
        }
    }

    /// The public JWK, as AuthPI publishes it (`kty`, `crv`, `alg`, `use: sig`, `kid`, key).
    pub(crate) fn jwk(&self) -> Value {
        let mut jwk = match &self.pair {
            Pair::Es256(p) => {
                let point = p.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Pair::Ed25519(p) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(p.public_key().as_ref())})
            }
            Pair::Rsa(p) => {
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = p.public().into();
                json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)})
            }
        };
        let obj = jwk.as_object_mut().unwrap();
        obj.insert("alg".into(), self.alg.name().into());
        obj.insert("use".into(), "sig".into());
        if let Some(kid) = &self.kid {
            obj.insert("kid".into(), kid.clone().into());
        }
        jwk
    }

    /// A JWKS document holding `keys`' JWKs.
    pub(crate) fn jwks(keys: &[&TestKey]) -> String {
        json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()}).to_string()
    }

    /// The raw signature of `msg`.
    pub(crate) fn sign_raw(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Es256(p) => p.sign(&rng, msg).unwrap().as_ref().to_vec(),
            Pair::Ed25519(p) => p.sign(msg).as_ref().to_vec(),
            Pair::Rsa(p) => {
                let padding: &dyn signature::RsaEncoding = match self.alg {
                    Algorithm::Ps256 => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; p.public().modulus_len()];
                p.sign(padding, &rng, msg, &mut sig).unwrap();
                sig
            }
        }
    }

    /// A compact JWS of the given header and payload JSON texts (used verbatim).
    pub(crate) fn sign(&self, header_json: &str, payload_json: &str) -> String {
        let input = format!(
            "{}.{}",
            b64(header_json.as_bytes()),
            b64(payload_json.as_bytes())
        );
        let sig = self.sign_raw(input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }

    /// The header `{"alg":…,"kid":…}` this key would normally send.
    pub(crate) fn header_json(&self) -> String {
        let mut h = json!({"alg": self.alg.name()});
        if let Some(kid) = &self.kid {
            h["kid"] = kid.clone().into();
        }
        h.to_string()
    }

    /// A compact JWS of `payload_json` under [`header_json`](Self::header_json).
    pub(crate) fn token(&self, payload_json: &str) -> String {
        self.sign(&self.header_json(), payload_json)
    }
}
