//! The core's hot paths on fixed inputs, for counting instructions under callgrind.
//!
//! `.ci/perf-gate.sh` runs `gate PATH ITERATIONS` once per path under
//! `valgrind --tool=callgrind --toggle-collect=…measured…`, so that only the work inside
//! [`measured`] is counted: the inputs are prepared before, and one warm-up run of the path
//! happens before too (one-time initialisation such as ring's CPU feature detection or the
//! first-use compilation of an organization's scopes is not what the gate watches).
//!
//! Every input byte is the same on every run: fixed signing keys (P-256 and Ed25519 from
//! fixed secrets, RSA-2048 from the testkit's committed pool), deterministic signatures
//! (RFC 6979 for ES256, Ed25519 and RSA PKCS#1 v1.5 are deterministic), a fixed `now`, a seeded
//! RNG for the authorization request, fixed `jti`/`sid`/code values. The token response, the
//! ID token and the JWKS have the shapes the testkit issuer (AuthPI) produces.
//!
//! `gate list` prints the paths with their iteration counts; `gate check` runs every path once
//! natively and checks its result (used by the script before counting).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use authpi_idp::{
    Agent, AuthorizationRequest, Client, Config, KeySet, Operation, RefreshOptions, Step, TokenSet,
    UnixTime,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use ring::signature::{self, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{Value, json};
use std::hint::black_box;

const ISSUER: &str = "https://idp.example.com/i_gate";
const REDIRECT: &str = "https://app.example.com/callback";
const SECRET: &str = "secret_gate";
const NOW: UnixTime = UnixTime(1_767_312_100);
const JOINED_AT: u64 = 1_767_312_000;

/// The measured paths and how many times each runs under callgrind.
const PATHS: [(&str, usize); 12] = [
    ("exchange_es256", 20),
    ("exchange_eddsa", 20),
    ("exchange_rs256", 20),
    ("rebuild_2_orgs", 50),
    ("rebuild_50_orgs", 20),
    ("typed_parse_2_orgs", 50),
    ("typed_parse_50_orgs", 20),
    ("has_access_in_granted_1000_orgs", 5000),
    ("has_access_in_denied_1000_orgs", 5000),
    ("has_access_in_granted_1_org", 5000),
    ("jwks_parse_6_keys", 50),
    ("validate_access_token_es256", 20),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Alg {
    Es256,
    EdDsa,
    Rs256,
}

impl Alg {
    fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
            Alg::Rs256 => "RS256",
        }
    }

    fn client_id(self) -> &'static str {
        match self {
            Alg::Es256 => "client_es",
            Alg::EdDsa => "client_ed",
            Alg::Rs256 => "client_rs",
        }
    }
}

/// One key generation (one key per algorithm), like the testkit issuer's.
struct Generation {
    es: p256::ecdsa::SigningKey,
    ed: Ed25519KeyPair,
    rsa: RsaKeyPair,
    kids: [String; 3],
}

impl Generation {
    fn new(index: u8) -> Generation {
        let rsa: [&[u8]; 2] = [
            include_bytes!("../../../testkit/keys/rsa1.pk8.der"),
            include_bytes!("../../../testkit/keys/rsa2.pk8.der"),
        ];
        let kid = |k: u8| format!("00000000-0000-4000-8000-0000000000{index}{k}");
        Generation {
            es: p256::ecdsa::SigningKey::from_bytes(&[0x11 + index; 32].into()).unwrap(),
            ed: Ed25519KeyPair::from_seed_unchecked(&[0x22 + index; 32]).unwrap(),
            rsa: RsaKeyPair::from_pkcs8(rsa[usize::from(index)]).unwrap(),
            kids: [kid(0), kid(1), kid(2)],
        }
    }

    fn kid(&self, alg: Alg) -> &str {
        match alg {
            Alg::Es256 => &self.kids[0],
            Alg::EdDsa => &self.kids[1],
            Alg::Rs256 => &self.kids[2],
        }
    }

    fn jwks(&self) -> [Value; 3] {
        let b = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let point = self.es.verifying_key().to_encoded_point(false);
        let rsa = signature::RsaPublicKeyComponents::<Vec<u8>>::from(self.rsa.public());
        [
            json!({"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":self.kids[0],
                "x":b(point.x().unwrap()),"y":b(point.y().unwrap())}),
            json!({"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":self.kids[1],
                "x":b(self.ed.public_key().as_ref())}),
            json!({"kty":"RSA","alg":"RS256","use":"sig","kid":self.kids[2],"n":b(&rsa.n),"e":b(&rsa.e)}),
        ]
    }

    fn sign(&self, alg: Alg, typ: Option<&str>, claims: &Value) -> String {
        let header = match typ {
            Some(t) => json!({"alg": alg.name(), "kid": self.kid(alg), "typ": t}),
            None => json!({"alg": alg.name(), "kid": self.kid(alg)}),
        };
        let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig = match alg {
            Alg::Es256 => {
                let sig: p256::ecdsa::Signature = self.es.sign(input.as_bytes());
                sig.to_bytes().to_vec()
            }
            Alg::EdDsa => self.ed.sign(input.as_bytes()).as_ref().to_vec(),
            Alg::Rs256 => {
                let mut out = vec![0u8; self.rsa.public().modulus_len()];
                // The RNG only blinds the private-key operation: PKCS#1 v1.5 is deterministic.
                self.rsa
                    .sign(
                        &signature::RSA_PKCS1_SHA256,
                        &ring::rand::SystemRandom::new(),
                        input.as_bytes(),
                        &mut out,
                    )
                    .unwrap();
                out
            }
        };
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(sig));
        input
    }
}

/// The fixed issuer: two key generations, the newest signs and is listed first.
struct Fixture {
    old: Generation,
    new: Generation,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            old: Generation::new(0),
            new: Generation::new(1),
        }
    }

    fn jwks_json(&self) -> Vec<u8> {
        let keys: Vec<Value> = self.new.jwks().into_iter().chain(self.old.jwks()).collect();
        serde_json::to_vec(&json!({ "keys": keys })).unwrap()
    }

    fn keys(&self) -> KeySet {
        let keys = KeySet::from_json(&self.jwks_json(), NOW, 3600).unwrap();
        assert_eq!(keys.len(), 6);
        keys
    }

    fn client(alg: Alg) -> Client {
        let config = Config::builder(ISSUER, alg.client_id())
            .client_secret(SECRET)
            .redirect_uri(REDIRECT)
            .build()
            .unwrap();
        Client::new(config).unwrap()
    }

    /// The demo user's two memberships, as AuthPI sends them.
    fn demo_organizations() -> Value {
        json!([
            {"id": "org_acme", "title": "Founder", "scopes": ["owner", "projects:**", "users:read"], "joined_at": JOINED_AT},
            {"id": "org_globex", "title": null, "scopes": ["billing:read"], "joined_at": JOINED_AT},
        ])
    }

    /// `n` AuthPI-shaped memberships, ids `org_000`… (as `benches/fixture.rs`).
    fn organizations(n: usize) -> Value {
        Value::Array(
            (0..n)
                .map(|i| {
                    json!({
                        "id": format!("org_{i:03}"),
                        "title": if i == 0 { Value::from("Founder") } else { Value::Null },
                        "scopes": if i % 2 == 0 { json!(["projects:**", "users:read"]) } else { json!(["member"]) },
                        "joined_at": JOINED_AT,
                    })
                })
                .collect(),
        )
    }

    /// The RFC 9068 access token AuthPI issues to the demo user with `alg`'s client.
    fn access_token(&self, alg: Alg) -> String {
        self.new.sign(
            alg,
            Some("at+jwt"),
            &json!({
                "iss": ISSUER, "sub": "usr_alice", "aud": alg.client_id(), "exp": NOW.0 + 3600,
                "iat": NOW.0, "auth_time": NOW.0, "jti": "jti_access_0000000", "sid": "sid_gate_0000000",
                "client_id": alg.client_id(), "dat": {"type": "identity"}, "scope": "openid email profile",
                "organizations": Self::demo_organizations(),
            }),
        )
    }

    /// The token response AuthPI sends for the demo user's login with `client`'s algorithm.
    fn token_response(&self, alg: Alg, nonce: &str) -> http::Response<Vec<u8>> {
        let scope = "openid email profile";
        let at = self.access_token(alg);
        let rt = self.new.sign(
            alg,
            None,
            &json!({
                "iss": ISSUER, "sub": "usr_alice", "aud": alg.client_id(), "exp": NOW.0 + 2_592_000,
                "iat": NOW.0, "jti": "jti_refresh_000000", "sid": "sid_gate_0000000",
                "client_id": alg.client_id(), "scope": scope,
            }),
        );
        let digest = match alg {
            Alg::EdDsa => ring::digest::digest(&ring::digest::SHA512, at.as_bytes()),
            _ => ring::digest::digest(&ring::digest::SHA256, at.as_bytes()),
        };
        let half = digest.as_ref().len() / 2;
        let at_hash = URL_SAFE_NO_PAD.encode(&digest.as_ref()[..half]);
        let id = self.new.sign(
            alg,
            None,
            &json!({
                "iss": ISSUER, "sub": "usr_alice", "aud": alg.client_id(), "exp": NOW.0 + 3600,
                "iat": NOW.0, "nonce": nonce, "auth_time": NOW.0, "sid": "sid_gate_0000000",
                "at_hash": at_hash, "name": "Alice Example", "email": "alice@example.com",
                "email_verified": true, "organizations": Self::demo_organizations(),
            }),
        );
        let body = json!({
            "access_token": at, "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": rt, "scope": scope, "id_token": id,
        });
        http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("cache-control", "no-store")
            .header("pragma", "no-cache")
            .body(serde_json::to_vec(&body).unwrap())
            .unwrap()
    }

    /// A stored session of `client_es` whose ID token carries `n` organizations.
    fn stored_session(&self, n: usize) -> String {
        let id_token = self.new.sign(
            Alg::Es256,
            None,
            &json!({
                "iss": ISSUER, "sub": "usr_alice", "aud": "client_es", "exp": NOW.0 + 3600,
                "iat": NOW.0, "auth_time": NOW.0, "nonce": "n-0S6_WzA2Mj",
                "email": "alice@example.com", "email_verified": true,
                "organizations": Self::organizations(n),
            }),
        );
        TokenSet {
            access_token: "at-opaque-for-this-gate".to_owned(),
            token_type: "Bearer".to_owned(),
            expires_at: NOW.0 + 1800,
            refresh_token: Some("rt-opaque-for-this-gate".to_owned()),
            id_token: Some(id_token),
            subject_hint: None,
            scope: Some("openid email profile".to_owned()),
        }
        .to_json()
    }
}

/// A code exchange that has sent its token request, with the response to feed it.
struct Ready {
    op: authpi_idp::flow::Exchange,
    response: http::Response<Vec<u8>>,
}

/// Everything one login needs, prepared once.
struct Login {
    client: Client,
    keys: KeySet,
    tx: authpi_idp::AuthorizationUrl,
    callback: String,
    body: Vec<u8>,
}

impl Login {
    fn new(fixture: &Fixture, alg: Alg) -> Login {
        let client = Fixture::client(alg);
        let tx = client
            .authorization_url(
                &AuthorizationRequest::new(["openid", "email", "profile"]),
                &mut ChaCha20Rng::seed_from_u64(42),
            )
            .unwrap();
        let callback = format!(
            "{REDIRECT}?code=code_gate_0000000000000000&state={}",
            tx.state
        );
        let response = fixture.token_response(alg, &tx.nonce);
        Login {
            client,
            keys: fixture.keys(),
            tx,
            callback,
            body: response.into_body(),
        }
    }

    fn ready(&self) -> Ready {
        let mut op = self
            .client
            .exchange_callback(self.callback.as_str(), &self.tx, &self.keys)
            .unwrap();
        let Ok(Step::Send(_)) = op.poll(NOW) else {
            panic!("expected the token request")
        };
        let response = http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("cache-control", "no-store")
            .header("pragma", "no-cache")
            .body(self.body.clone())
            .unwrap();
        Ready { op, response }
    }
}

fn finish(mut ready: Ready) -> Agent {
    ready.op.handle_response(ready.response);
    match ready.op.poll(NOW) {
        Ok(Step::Done(agent)) => agent,
        other => panic!("unexpected {other:?}"),
    }
}

fn rebuild(client: &Client, keys: &KeySet, stored: &str) -> Agent {
    let tokens = TokenSet::from_json(stored.as_bytes()).unwrap();
    let mut op = client
        .create_agent(tokens, RefreshOptions::new(), keys)
        .unwrap();
    match op.poll(NOW) {
        Ok(Step::Done(agent)) => agent,
        other => panic!("unexpected {other:?}"),
    }
}

#[path = "../../yardstick.rs"]
mod yardstick;
use yardstick::typed_parse;

/// The only function whose instructions callgrind counts (`--toggle-collect`).
#[inline(never)]
fn measured(f: &mut dyn FnMut()) {
    f();
}

/// Prepares `path`, checks its result once, then runs it `iterations` times inside
/// [`measured`]. Returns `false` for an unknown path.
fn run(path: &str, iterations: usize) -> bool {
    let fixture = Fixture::new();
    match path {
        "exchange_es256" | "exchange_eddsa" | "exchange_rs256" => {
            let alg = match path {
                "exchange_es256" => Alg::Es256,
                "exchange_eddsa" => Alg::EdDsa,
                _ => Alg::Rs256,
            };
            let login = Login::new(&fixture, alg);
            let agent = finish(login.ready());
            assert_eq!(agent.id(), "usr_alice");
            assert!(agent.has_access_in("org_acme", "delete", "projects.tasks"));
            let mut inputs: Vec<Ready> = (0..iterations).map(|_| login.ready()).collect();
            let mut agents = Vec::with_capacity(iterations);
            measured(&mut || {
                for ready in inputs.drain(..) {
                    agents.push(finish(black_box(ready)));
                }
            });
            black_box(agents);
        }
        "rebuild_2_orgs" | "rebuild_50_orgs" => {
            let n = if path == "rebuild_2_orgs" { 2 } else { 50 };
            let client = Fixture::client(Alg::Es256);
            let keys = fixture.keys();
            let stored = fixture.stored_session(n);
            assert_eq!(rebuild(&client, &keys, &stored).organizations().len(), n);
            let mut agents = Vec::with_capacity(iterations);
            measured(&mut || {
                for _ in 0..iterations {
                    agents.push(rebuild(&client, &keys, black_box(&stored)));
                }
            });
            black_box(agents);
        }
        "typed_parse_2_orgs" | "typed_parse_50_orgs" => {
            let n = if path == "typed_parse_2_orgs" { 2 } else { 50 };
            let stored = fixture.stored_session(n);
            assert_eq!(typed_parse(&stored).organizations.len(), n);
            let mut out = Vec::with_capacity(iterations);
            measured(&mut || {
                for _ in 0..iterations {
                    out.push(typed_parse(black_box(&stored)));
                }
            });
            black_box(out);
        }
        "has_access_in_granted_1000_orgs"
        | "has_access_in_denied_1000_orgs"
        | "has_access_in_granted_1_org" => {
            let n = if path.ends_with("1_org") { 1 } else { 1000 };
            let client = Fixture::client(Alg::Es256);
            let agent = rebuild(&client, &fixture.keys(), &fixture.stored_session(n));
            // An org near the end of the list with a deep `projects:**` grant.
            let org = format!("org_{:03}", if n == 1 { 0 } else { (n - 2) & !1 });
            let (action, resource, expected) = if path.contains("granted") {
                ("delete", "projects.tasks", true)
            } else {
                ("write", "users", false)
            };
            // Warm-up: the first check of an org compiles its scopes.
            assert_eq!(agent.has_access_in(&org, action, resource), expected);
            let mut granted = 0usize;
            measured(&mut || {
                for _ in 0..iterations {
                    granted += usize::from(agent.has_access_in(
                        black_box(&org),
                        black_box(action),
                        black_box(resource),
                    ));
                }
            });
            assert_eq!(granted, if expected { iterations } else { 0 });
        }
        "jwks_parse_6_keys" => {
            let jwks = fixture.jwks_json();
            let mut sets = Vec::with_capacity(iterations);
            measured(&mut || {
                for _ in 0..iterations {
                    sets.push(KeySet::from_json(black_box(&jwks), NOW, 3600).unwrap());
                }
            });
            assert!(sets.iter().all(|s| s.len() == 6));
        }
        "validate_access_token_es256" => {
            let client = Fixture::client(Alg::Es256);
            let keys = fixture.keys();
            let token = fixture.access_token(Alg::Es256);
            let validate = |token: &str| {
                let mut op = client.validate_access_token(token, Alg::Es256.client_id(), &keys);
                match op.poll(NOW) {
                    Ok(Step::Done(info)) => info,
                    other => panic!("unexpected {other:?}"),
                }
            };
            let info = validate(&token);
            assert_eq!(info.agent.id(), "usr_alice");
            assert!(
                info.agent
                    .has_access_in("org_acme", "delete", "projects.tasks")
            );
            let mut out = Vec::with_capacity(iterations);
            measured(&mut || {
                for _ in 0..iterations {
                    out.push(validate(black_box(&token)));
                }
            });
            black_box(out);
        }
        _ => return false,
    }
    true
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["list"] => {
            for (path, iterations) in PATHS {
                println!("{path} {iterations}");
            }
        }
        ["check"] => {
            for (path, _) in PATHS {
                assert!(run(path, 2), "unknown path {path}");
            }
            println!("ok: {} paths", PATHS.len());
        }
        [path, iterations] => {
            let iterations: usize = iterations.parse().expect("ITERATIONS must be a number");
            if !run(path, iterations) {
                eprintln!("unknown path {path}; `gate list` shows them");
                std::process::exit(2);
            }
        }
        _ => {
            eprintln!("usage: gate list | gate check | gate PATH ITERATIONS");
            std::process::exit(2);
        }
    }
}
