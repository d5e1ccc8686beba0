//! Same-process comparison on identical inputs (same keys, same token response JSON, same JWKS):
//!
//! - `bare`: the core's crypto backend library (ring by default; aws-lc-rs or RustCrypto with
//!   `--no-default-features --features aws-lc-rs|rustcrypto`) verifying the ID token's
//!   signature over its signing input, nothing else (the cost of the cryptography, with the key
//!   material decoded beforehand and parsed per call, as the core's seam does);
//! - `ours`: authpi-idp, token response (`http::Response`) → fully validated ID token → `Agent`;
//! - `oidc`: openidconnect 4, token response JSON → `CoreTokenResponse` → `IdToken::claims`
//!   with `CoreIdTokenVerifier` (signature, iss, aud, exp, iat, nonce) → `at_hash` check as in
//!   its documented flow.
//!
//! Variants are interleaved round by round; each round times a batch, and the median of the
//! rounds is reported. Run: `cargo run --release -p authpi-idp-bench-compare [-- ROUNDS BATCH]`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../fixture.rs"]
mod fixture;

use authpi_idp_testkit::Alg;
#[cfg(feature = "aws-lc-rs")]
use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fixture::{ALGS, ISSUER, Login, NOW, SECRET};
use openidconnect::core::{
    CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreTokenResponse,
};
use openidconnect::{
    AccessTokenHash, ClientId, ClientSecret, IssuerUrl, Nonce, OAuth2TokenResponse, TokenResponse,
};
#[cfg(feature = "ring")]
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;
use std::hint::black_box;
use std::time::Instant;

/// The backend's library, on the token's signing input, with the key material decoded
/// beforehand.
struct Bare {
    alg: Alg,
    key: Vec<u8>,
    e: Vec<u8>,
    message: Vec<u8>,
    signature: Vec<u8>,
}

impl Bare {
    fn new(jwks: &[u8], id_token: &str) -> Bare {
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(id_token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        let kid = header["kid"].as_str().unwrap();
        let alg = Alg::from_name(header["alg"].as_str().unwrap()).unwrap();
        let doc: Value = serde_json::from_slice(jwks).unwrap();
        let jwk = doc["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap();
        let b64 = |m: &str| URL_SAFE_NO_PAD.decode(jwk[m].as_str().unwrap()).unwrap();
        let (key, e) = match alg {
            Alg::Es256 => {
                let mut point = vec![4u8];
                point.extend(b64("x"));
                point.extend(b64("y"));
                (point, Vec::new())
            }
            Alg::EdDsa => (b64("x"), Vec::new()),
            Alg::Rs256 | Alg::Ps256 => (b64("n"), b64("e")),
        };
        let (message, signature) = id_token.rsplit_once('.').unwrap();
        Bare {
            alg,
            key,
            e,
            message: message.as_bytes().to_vec(),
            signature: URL_SAFE_NO_PAD.decode(signature).unwrap(),
        }
    }

    #[cfg(feature = "rustcrypto")]
    #[inline]
    fn verify(&self) -> bool {
        use p256::ecdsa::signature::Verifier as _;
        use sha2::Digest as _;
        match self.alg {
            Alg::Es256 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&self.key).unwrap();
                let sig = p256::ecdsa::Signature::from_slice(&self.signature).unwrap();
                key.verify(&self.message, &sig).is_ok()
            }
            Alg::EdDsa => {
                let key =
                    ed25519_dalek::VerifyingKey::from_bytes(&self.key[..].try_into().unwrap())
                        .unwrap();
                let sig = ed25519_dalek::Signature::from_slice(&self.signature).unwrap();
                key.verify_strict(&self.message, &sig).is_ok()
            }
            Alg::Rs256 | Alg::Ps256 => {
                let key = rsa::RsaPublicKey::new_with_max_size(
                    rsa::BigUint::from_bytes_be(&self.key),
                    rsa::BigUint::from_bytes_be(&self.e),
                    8192,
                )
                .unwrap();
                let hashed = sha2::Sha256::digest(&self.message);
                key.verify(
                    rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    &hashed,
                    &self.signature,
                )
                .is_ok()
            }
        }
    }

    #[cfg(not(feature = "rustcrypto"))]
    #[inline]
    fn verify(&self) -> bool {
        match self.alg {
            Alg::Es256 => UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &self.key)
                .verify(&self.message, &self.signature)
                .is_ok(),
            Alg::EdDsa => UnparsedPublicKey::new(&signature::ED25519, &self.key)
                .verify(&self.message, &self.signature)
                .is_ok(),
            Alg::Rs256 | Alg::Ps256 => RsaPublicKeyComponents {
                n: &self.key,
                e: &self.e,
            }
            .verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                &self.message,
                &self.signature,
            )
            .is_ok(),
        }
    }
}

/// openidconnect 4's documented flow, minus the HTTP request. `None` when anything is refused.
fn oidc_validate(body: &[u8], verifier: &CoreIdTokenVerifier<'_>, nonce: &Nonce) -> Option<String> {
    let response: CoreTokenResponse = serde_json::from_slice(body).ok()?;
    let id_token = response.id_token()?;
    let claims = id_token.claims(verifier, nonce).ok()?;
    if let Some(expected) = claims.access_token_hash() {
        let actual = AccessTokenHash::from_token(
            response.access_token(),
            id_token.signing_alg().ok()?,
            id_token.signing_key(verifier).ok()?,
        )
        .ok()?;
        if actual != *expected {
            return None;
        }
    }
    Some(claims.subject().to_string())
}

fn oidc_alg(alg: Alg) -> CoreJwsSigningAlgorithm {
    match alg {
        Alg::Es256 => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        Alg::EdDsa => CoreJwsSigningAlgorithm::EdDsa,
        Alg::Rs256 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        Alg::Ps256 => CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    }
}

/// Nanoseconds per iteration of one timed batch.
fn time_batch(batch: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..batch {
        f();
    }
    start.elapsed().as_nanos() as f64 / batch as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(21, |a| a.parse().unwrap());
    let batch: usize = args.next().map_or(200, |a| a.parse().unwrap());

    let mut issuer = fixture::issuer();
    let (jwks, keys) = fixture::jwks(&mut issuer);
    let oidc_jwks: CoreJsonWebKeySet = serde_json::from_slice(&jwks).unwrap();
    let now = chrono::DateTime::from_timestamp(NOW.0 as i64, 0).unwrap();

    println!(
        "rounds={rounds} batch={batch}; median ns per validation (min in brackets)\n\
         {:<6} {:>16} {:>16} {:>16} {:>11} {:>11}",
        "alg",
        format!("bare {}", authpi_idp::CRYPTO_BACKEND),
        "ours",
        "openidconnect",
        "ours/bare",
        "oidc/ours"
    );
    for (alg, client_id) in ALGS {
        let login = Login::new(&mut issuer, &keys, alg);
        let id_token = login.token_member("id_token");
        let body = login.token_json().to_vec();
        let bare = Bare::new(&jwks, &id_token);
        assert!(bare.verify());
        let verifier = CoreIdTokenVerifier::new_confidential_client(
            ClientId::new(client_id.to_owned()),
            ClientSecret::new(SECRET.to_owned()),
            IssuerUrl::new(ISSUER.to_owned()).unwrap(),
            oidc_jwks.clone(),
        )
        .set_allowed_algs(ALGS.iter().map(|(a, _)| oidc_alg(*a)))
        .set_time_fn(move || now);
        let nonce = Nonce::new(login.tx.nonce.clone());
        assert_eq!(
            oidc_validate(&body, &verifier, &nonce).as_deref(),
            Some("usr_alice")
        );
        // A wrong nonce is refused: the measured path really checks it.
        assert_eq!(
            oidc_validate(&body, &verifier, &Nonce::new("x".into())),
            None
        );

        // Profiling mode: `COMPARE_ONLY=ours|bare|oidc` runs just that path, `batch` times.
        if let Ok(only) = std::env::var("COMPARE_ONLY") {
            if std::env::var("COMPARE_ALG").is_ok_and(|a| a != alg.as_str()) {
                continue;
            }
            let mut ready: Vec<_> = (0..batch).map(|_| login.exchange_ready()).collect();
            for _ in 0..batch {
                match only.as_str() {
                    "bare" => assert!(black_box(&bare).verify()),
                    "ours" => drop(black_box(ready.pop().unwrap().finish())),
                    _ => drop(black_box(oidc_validate(&body, &verifier, &nonce))),
                }
            }
            continue;
        }
        // Where our overhead goes: `COMPARE_BREAKDOWN=1` times the public pieces of the path.
        if std::env::var("COMPARE_BREAKDOWN").is_ok() {
            use authpi_idp::{
                AlgorithmSet,
                internal::jose::{Jws, verify_jws},
            };
            let access = login.token_member("access_token");
            let jws = Jws::parse(&id_token).unwrap();
            let at_alg = jws.header().alg;
            let response = http::Response::builder()
                .status(200)
                .body(body.clone())
                .unwrap();
            type Piece<'a> = (&'static str, Box<dyn FnMut() + 'a>);
            let mut pieces: Vec<Piece<'_>> = vec![
                ("bare verify", Box::new(|| assert!(bare.verify()))),
                (
                    "Jws::verify (select+verify)",
                    Box::new(|| verify_jws(&keys, &jws, AlgorithmSet::ALL).unwrap()),
                ),
                (
                    "typed read of the token response",
                    Box::new(|| {
                        authpi_idp::internal::readers::token_response(black_box(&response))
                            .unwrap();
                    }),
                ),
                (
                    "Jws::parse(id_token)",
                    Box::new(|| drop(black_box(Jws::parse(&id_token).unwrap()))),
                ),
                (
                    "typed read of the ID-token payload",
                    Box::new(|| {
                        authpi_idp::internal::readers::id_token_claims(black_box(jws.payload()))
                            .unwrap();
                    }),
                ),
                (
                    "at_hash",
                    Box::new(|| drop(black_box(at_alg.at_hash(&access)))),
                ),
                (
                    "exchange_ready (untimed setup)",
                    Box::new(|| drop(black_box(login.exchange_ready()))),
                ),
            ];
            for (name, f) in &mut pieces {
                let mut t: Vec<f64> = (0..rounds).map(|_| time_batch(batch, &mut *f)).collect();
                println!(
                    "  {:<6} {:<40} {:>9.0} ns",
                    alg.as_str(),
                    name,
                    median(&mut t)
                );
            }
            continue;
        }
        let (mut t_bare, mut t_ours, mut t_oidc) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            t_bare.push(time_batch(batch, || {
                black_box(black_box(&bare).verify());
            }));
            let mut ready: Vec<_> = (0..batch).map(|_| login.exchange_ready()).collect();
            t_ours.push(time_batch(batch, || {
                black_box(ready.pop().unwrap().finish());
            }));
            t_oidc.push(time_batch(batch, || {
                black_box(oidc_validate(black_box(&body), &verifier, &nonce));
            }));
        }
        let mins =
            [&t_bare, &t_ours, &t_oidc].map(|v| v.iter().copied().fold(f64::INFINITY, f64::min));
        let (b, o, c) = (
            median(&mut t_bare),
            median(&mut t_ours),
            median(&mut t_oidc),
        );
        println!(
            "{:<6} {:>9.0} [{:>5.0}] {:>9.0} [{:>5.0}] {:>9.0} [{:>5.0}] {:>11.3} {:>11.2}",
            alg.as_str(),
            b,
            mins[0],
            o,
            mins[1],
            c,
            mins[2],
            o / b,
            c / o
        );
    }
}
