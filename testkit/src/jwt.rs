//! Signing keys and compact JWS for tests.
//!
//! [`TestKey`] is what the issuer itself signs with, and what negative tests use to forge
//! tokens with exact control over the header (`sign`) or over every byte (`sign_raw`).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{Value, json};

use crate::Error;

/// RSA-2048 PKCS#8 keys made once with `openssl genpkey` (RSA key generation is not in ring).
const RSA_KEYS: [&[u8]; 8] = [
    include_bytes!("../keys/rsa1.pk8.der"),
    include_bytes!("../keys/rsa2.pk8.der"),
    include_bytes!("../keys/rsa3.pk8.der"),
    include_bytes!("../keys/rsa4.pk8.der"),
    include_bytes!("../keys/rsa5.pk8.der"),
    include_bytes!("../keys/rsa6.pk8.der"),
    include_bytes!("../keys/rsa7.pk8.der"),
    include_bytes!("../keys/rsa8.pk8.der"),
];

/// Next RSA key of the pool handed out by [`TestKey::generate`].
static NEXT_RSA: AtomicUsize = AtomicUsize::new(0);

/// A JWS algorithm the testkit can sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    /// ECDSA P-256 with SHA-256, 64-byte `r‖s` signatures.
    Es256,
    /// Ed25519.
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RSA-2048).
    Rs256,
    /// RSASSA-PSS with SHA-256 (RSA-2048). Not used by AuthPI itself; for client tests.
    Ps256,
}

impl Alg {
    /// The JOSE name (`"ES256"`, `"EdDSA"`, `"RS256"`, `"PS256"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
            Alg::Rs256 => "RS256",
            Alg::Ps256 => "PS256",
        }
    }

    /// Parses a JOSE name; `None` for anything else (names are case-sensitive).
    pub fn from_name(name: &str) -> Option<Alg> {
        match name {
            "ES256" => Some(Alg::Es256),
            "EdDSA" => Some(Alg::EdDsa),
            "RS256" => Some(Alg::Rs256),
            "PS256" => Some(Alg::Ps256),
            _ => None,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

enum Pair {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A private signing key with its `kid` and algorithm. `Debug` shows neither key material
/// nor anything secret.
pub struct TestKey {
    alg: Alg,
    kid: String,
    pair: Pair,
    rng: SystemRandom,
}

impl fmt::Debug for TestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TestKey {
    /// A fresh key for `alg`. EC and Ed25519 keys are generated; RSA keys come from a pool of
    /// eight committed RSA-2048 keys, taken in turn (so two RSA `TestKey`s may share key
    /// material after eight calls, under different `kid`s).
    pub fn generate(alg: Alg, kid: &str) -> Result<TestKey, Error> {
        let rng = SystemRandom::new();
        let pair = match alg {
            Alg::Es256 => {
                let algo = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
                let doc = EcdsaKeyPair::generate_pkcs8(algo, &rng).map_err(|_| Error::Crypto)?;
                Pair::Ec(
                    EcdsaKeyPair::from_pkcs8(algo, doc.as_ref(), &rng)
                        .map_err(|_| Error::Crypto)?,
                )
            }
            Alg::EdDsa => {
                let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| Error::Crypto)?;
                Pair::Ed(Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|_| Error::Crypto)?)
            }
            Alg::Rs256 | Alg::Ps256 => {
                let n = NEXT_RSA.fetch_add(1, Ordering::Relaxed);
                return Self::from_rsa_pool(alg, n, kid);
            }
        };
        Ok(TestKey {
            alg,
            kid: kid.to_owned(),
            pair,
            rng,
        })
    }

    /// An RSA key from the committed pool (`index` modulo the pool size); `alg` must be
    /// RS256 or PS256.
    pub fn from_rsa_pool(alg: Alg, index: usize, kid: &str) -> Result<TestKey, Error> {
        if !matches!(alg, Alg::Rs256 | Alg::Ps256) {
            return Err(Error::Crypto);
        }
        let der = RSA_KEYS.get(index % RSA_KEYS.len()).ok_or(Error::Crypto)?;
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|_| Error::Crypto)?;
        Ok(TestKey {
            alg,
            kid: kid.to_owned(),
            pair: Pair::Rsa(pair),
            rng: SystemRandom::new(),
        })
    }

    /// The algorithm.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK: `{kty, crv?, alg, use:"sig", kid, x/y | n/e}`.
    pub fn jwk(&self) -> Value {
        let b = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        match &self.pair {
            Pair::Ec(p) => {
                // Uncompressed point: 0x04 ‖ x (32) ‖ y (32).
                let point = p.public_key().as_ref();
                let x = point.get(1..33).unwrap_or_default();
                let y = point.get(33..65).unwrap_or_default();
                json!({"kty":"EC","crv":"P-256","alg":self.alg.as_str(),"use":"sig","kid":self.kid,"x":b(x),"y":b(y)})
            }
            Pair::Ed(p) => {
                json!({"kty":"OKP","crv":"Ed25519","alg":self.alg.as_str(),"use":"sig","kid":self.kid,"x":b(p.public_key().as_ref())})
            }
            Pair::Rsa(p) => {
                let c = signature::RsaPublicKeyComponents::<Vec<u8>>::from(p.public());
                json!({"kty":"RSA","alg":self.alg.as_str(),"use":"sig","kid":self.kid,"n":b(&c.n),"e":b(&c.e)})
            }
        }
    }

    /// Signs `header` and `claims` as given (serialized compactly, nothing added: the caller
    /// chooses `alg`, `kid`, `typ`, even wrong ones).
    pub fn sign(&self, header: &Value, claims: &Value) -> Result<String, Error> {
        self.sign_raw(&header.to_string(), &claims.to_string())
    }

    /// Signs the exact header and payload texts (for duplicate members, odd whitespace, …).
    pub fn sign_raw(&self, header_json: &str, payload_json: &str) -> Result<String, Error> {
        let mut input = URL_SAFE_NO_PAD.encode(header_json.as_bytes());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(payload_json.as_bytes()));
        let sig = self.signature(input.as_bytes())?;
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(sig));
        Ok(input)
    }

    /// Signs with the standard header `{"alg", "kid"}` plus `typ` when given.
    pub fn sign_claims(&self, typ: Option<&str>, claims: &Value) -> Result<String, Error> {
        let header = match typ {
            Some(t) => json!({"alg": self.alg.as_str(), "kid": self.kid, "typ": t}),
            None => json!({"alg": self.alg.as_str(), "kid": self.kid}),
        };
        self.sign(&header, claims)
    }

    /// The raw signature over `message` with this key's algorithm.
    pub fn signature(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        match &self.pair {
            Pair::Ec(p) => p
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::Crypto),
            Pair::Ed(p) => Ok(p.sign(message).as_ref().to_vec()),
            Pair::Rsa(p) => {
                let mut out = vec![0u8; p.public().modulus_len()];
                let padding: &dyn signature::RsaEncoding = match self.alg {
                    Alg::Ps256 => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                p.sign(padding, &self.rng, message, &mut out)
                    .map_err(|_| Error::Crypto)?;
                Ok(out)
            }
        }
    }

    /// Verifies a compact JWS made by this key (`alg` in the header must be this key's).
    /// Returns the decoded payload bytes. Used by the issuer to recognise its own tokens.
    pub fn verify(&self, token: &str) -> Option<Vec<u8>> {
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        if header.get("alg")?.as_str()? != self.alg.as_str() {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(s).ok()?;
        let signed_len = h.len() + 1 + p.len();
        let message = token.as_bytes().get(..signed_len)?;
        let public = self.public_key_bytes();
        let algo: &dyn signature::VerificationAlgorithm = match self.alg {
            Alg::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            Alg::EdDsa => &signature::ED25519,
            Alg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
        };
        signature::UnparsedPublicKey::new(algo, public)
            .verify(message, &sig)
            .ok()?;
        URL_SAFE_NO_PAD.decode(p).ok()
    }

    fn public_key_bytes(&self) -> Vec<u8> {
        match &self.pair {
            Pair::Ec(p) => p.public_key().as_ref().to_vec(),
            Pair::Ed(p) => p.public_key().as_ref().to_vec(),
            Pair::Rsa(p) => p.public().as_ref().to_vec(),
        }
    }
}

/// Decodes the header of a compact JWS (no verification).
pub fn decode_header(token: &str) -> Option<Value> {
    let h = token.split('.').next()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()
}

/// Decodes the payload of a compact JWS (no verification). Handy in tests.
pub fn decode_claims(token: &str) -> Option<Value> {
    let p = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
}

/// base64url without padding.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `n` random bytes from the OS.
pub(crate) fn random_bytes<const N: usize>(rng: &SystemRandom) -> Result<[u8; N], Error> {
    let mut buf = [0u8; N];
    rng.fill(&mut buf).map_err(|_| Error::Crypto)?;
    Ok(buf)
}
