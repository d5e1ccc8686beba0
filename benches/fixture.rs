//! Shared bench fixtures: real logins against the embedded AuthPI issuer (testkit), and crafted
//! stored sessions. Used by `benches/core.rs` and by `benches/compare` (via `#[path]`), so both
//! measure exactly the same inputs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use authpi_idp::{
    AuthorizationRequest, AuthorizationUrl, Client, Config, KeySet, Operation, RefreshOptions,
    Step, TokenSet, UnixTime,
};
use authpi_idp_testkit::{Alg, Issuer};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::{Value, json};

/// The issuer URL of the fixture (https, so the client accepts it; the issuer is sans-IO).
pub const ISSUER: &str = "https://idp.example.com/i_bench";
/// The registered redirect URI.
pub const REDIRECT: &str = "https://app.example.com/callback";
/// The virtual time of every login (the demo memberships were joined at 1767312000).
pub const NOW: UnixTime = UnixTime(1_767_312_100);

/// The three AuthPI algorithms, with a confidential client for each.
pub const ALGS: [(Alg, &str); 3] = [
    (Alg::Es256, "client_es"),
    (Alg::EdDsa, "client_ed"),
    (Alg::Rs256, "client_rs"),
];
/// The client secret of every fixture client.
pub const SECRET: &str = "secret_bench";

/// The embedded issuer with the demo user and one confidential client per algorithm.
pub fn issuer() -> Issuer {
    let mut b = Issuer::authpi_demo(ISSUER);
    for (alg, id) in ALGS {
        b = b.client(authpi_idp_testkit::Client::confidential(id, SECRET, &[REDIRECT]).alg(alg));
    }
    b.build().unwrap()
}

/// An `http::Response` copy (responses are not `Clone`).
pub fn copy_response(r: &http::Response<Vec<u8>>) -> http::Response<Vec<u8>> {
    let mut out = http::Response::new(r.body().clone());
    *out.status_mut() = r.status();
    *out.headers_mut() = r.headers().clone();
    out
}

/// GET `path` under the issuer.
pub fn get(issuer: &mut Issuer, path: &str) -> http::Response<Vec<u8>> {
    let req = http::Request::get(format!("{ISSUER}{path}"))
        .body(Vec::new())
        .unwrap();
    issuer.handle(req, NOW.0)
}

/// The JWKS document as served (all six keys), and the key set parsed from it at [`NOW`].
pub fn jwks(issuer: &mut Issuer) -> (Vec<u8>, KeySet) {
    let resp = get(issuer, "/jwks.json");
    assert_eq!(resp.status(), 200);
    let keys = KeySet::from_response(&resp, NOW).unwrap();
    assert_eq!(keys.len(), 6);
    (resp.body().clone(), keys)
}

/// A client of the fixture (AuthPI layout: no discovery round trip).
pub fn client(client_id: &str) -> Client {
    let config = Config::builder(ISSUER, client_id)
        .client_secret(SECRET)
        .redirect_uri(REDIRECT)
        .build()
        .unwrap();
    Client::new(config).unwrap()
}

/// One real login, stopped right before the token response is handed to the client.
pub struct Login {
    /// The algorithm the client's tokens are signed with.
    pub alg: Alg,
    /// The client.
    pub client: Client,
    /// The fresh key set (no JWKS request happens during verification).
    pub keys: KeySet,
    /// The transaction kept between the redirect and the callback.
    pub tx: AuthorizationUrl,
    /// The callback URL the provider redirected to.
    pub callback: String,
    /// The provider's real token response (status, headers, JSON body).
    pub token_response: http::Response<Vec<u8>>,
}

impl Login {
    /// Performs a login for `alg` against `issuer`, with `keys` as the cached JWKS.
    pub fn new(issuer: &mut Issuer, keys: &KeySet, alg: Alg) -> Login {
        let client_id = ALGS.iter().find(|(a, _)| *a == alg).unwrap().1;
        let client = client(client_id);
        let mut rng = ChaCha20Rng::seed_from_u64(42);
        let tx = client
            .authorization_url(
                &AuthorizationRequest::new(["openid", "email", "profile"]),
                &mut rng,
            )
            .unwrap();
        let redirect = issuer.handle(
            http::Request::get(tx.url.as_str())
                .body(Vec::new())
                .unwrap(),
            NOW.0,
        );
        let callback = redirect.headers()["location"].to_str().unwrap().to_owned();
        let mut op = client
            .exchange_callback(callback.as_str(), &tx, keys)
            .unwrap();
        let Step::Send(out) = op.poll(NOW).unwrap() else {
            panic!("expected the token request")
        };
        let token_response = issuer.handle(out.request, NOW.0);
        assert_eq!(token_response.status(), 200);
        let login = Login {
            alg,
            client,
            keys: keys.clone(),
            tx,
            callback,
            token_response,
        };
        // Sanity: the prepared inputs validate, with no JWKS request.
        let agent = login.exchange_ready().finish();
        assert_eq!(agent.id(), "usr_alice");
        assert!(agent.has_access_in("org_acme", "delete", "projects.tasks"));
        login
    }

    /// An exchange that has sent its token request and awaits the response.
    pub fn exchange_ready(&self) -> Ready {
        let mut op = self
            .client
            .exchange_callback(self.callback.as_str(), &self.tx, &self.keys)
            .unwrap();
        let Step::Send(_) = op.poll(NOW).unwrap() else {
            panic!("expected the token request")
        };
        Ready {
            op,
            response: copy_response(&self.token_response),
        }
    }

    /// The token response body (JSON).
    pub fn token_json(&self) -> &[u8] {
        self.token_response.body()
    }

    /// A member of the token response.
    pub fn token_member(&self, name: &str) -> String {
        let v: Value = serde_json::from_slice(self.token_json()).unwrap();
        v[name].as_str().unwrap().to_owned()
    }
}

/// An exchange waiting for its token response, and that response.
pub struct Ready {
    /// The operation.
    pub op: authpi_idp::flow::Exchange,
    /// The token response to feed it.
    pub response: http::Response<Vec<u8>>,
}

impl Ready {
    /// Token response → validated agent (the measured path).
    #[inline]
    pub fn finish(mut self) -> authpi_idp::Agent {
        self.op.handle_response(self.response);
        match self.op.poll(NOW) {
            Ok(Step::Done(agent)) => agent,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// `n` AuthPI-shaped memberships (`title`, two scopes, `joined_at`), ids `org_000`…
pub fn organizations(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                json!({
                    "id": format!("org_{i:03}"),
                    "title": if i == 0 { Value::from("Founder") } else { Value::Null },
                    "scopes": if i % 2 == 0 { json!(["projects:**", "users:read"]) } else { json!(["member"]) },
                    "joined_at": 1_767_312_000u64,
                })
            })
            .collect(),
    )
}

/// A stored session of `client_es` whose ID token carries `n` organizations: the Python-shaped
/// JSON an application keeps in its session store, with no refresh due at [`NOW`].
pub fn stored_session(issuer: &Issuer, n: usize) -> String {
    let id_token = issuer
        .sign(
            Alg::Es256,
            None,
            &json!({
                "iss": ISSUER,
                "sub": "usr_alice",
                "aud": "client_es",
                "exp": NOW.0 + 3600,
                "iat": NOW.0,
                "auth_time": NOW.0,
                "nonce": "n-0S6_WzA2Mj",
                "email": "alice@example.com",
                "email_verified": true,
                "organizations": organizations(n),
            }),
        )
        .unwrap();
    TokenSet {
        access_token: "at-opaque-for-this-bench".to_owned(),
        token_type: "Bearer".to_owned(),
        expires_at: NOW.0 + 1800,
        refresh_token: Some("rt-opaque-for-this-bench".to_owned()),
        id_token: Some(id_token),
        subject_hint: None,
        scope: Some("openid email profile".to_owned()),
    }
    .to_json()
}

/// Rebuilds the agent of a stored session (the per-request path of a web app).
#[inline]
pub fn rebuild(client: &Client, keys: &KeySet, stored: &str) -> authpi_idp::Agent {
    let tokens = TokenSet::from_json(stored.as_bytes()).unwrap();
    let mut op = client
        .create_agent(tokens, RefreshOptions::new(), keys)
        .unwrap();
    match op.poll(NOW) {
        Ok(Step::Done(agent)) => agent,
        other => panic!("unexpected {other:?}"),
    }
}

/// Length of the ID token of a stored session.
pub fn id_token_len(stored: &str) -> usize {
    TokenSet::from_json(stored.as_bytes())
        .unwrap()
        .id_token
        .map_or(0, |t| t.len())
}
