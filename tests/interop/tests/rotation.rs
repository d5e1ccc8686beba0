//! Key rotation: the provider restarts on the same port (same issuer) with new keys; each
//! adapter has its own provider.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use authpi_idp::AuthorizationRequest;
use authpi_idp_adapter_suite::api::Hooks;
use authpi_idp_interop::{Adapter, Provider, jws_alg, kids, login, temp_keys_path, web_config};

const JWKS: (&str, &str) = ("GET", "/jwks.json");

fn jwks_fetches(p: &Provider) -> usize {
    p.requests(JWKS.0, JWKS.1)
}

async fn key_rotation<A: Adapter>() {
    let p = Provider::start(0, &temp_keys_path());
    let api: A = A::discover(web_config(&p, "client_es256")).await.unwrap();
    assert_eq!(jwks_fetches(&p), 1, "discovery fetches the keys once");
    let old_kids = kids(&api.keys());
    assert_eq!(old_kids.len(), 3);
    let openid = AuthorizationRequest::new(["openid", "email"]);
    let agent = login(&api, &openid).await;
    assert_eq!(
        jws_alg(agent.tokens().id_token.as_deref().unwrap()),
        "ES256"
    );
    assert_eq!(jwks_fetches(&p), 1, "cached keys verify the login");

    p.restart(&temp_keys_path());
    let base = jwks_fetches(&p);

    // Keys fetched less than the cooldown (60 s) ago: the ID token comes from the token
    // endpoint (no third party can forge it), so its unknown kid still gets its one refetch
    // (DESIGN §4: only tokens anyone can present obey the cooldown) and the login goes on.
    let agent = login(&api, &openid).await;
    assert_eq!(agent.id(), "usr_alice");
    assert_eq!(
        jwks_fetches(&p),
        base + 1,
        "one refetch for the new kid, inside the cooldown too"
    );
    let new_kids = kids(&api.keys());
    assert_eq!(new_kids.len(), 3);
    assert!(
        new_kids.iter().all(|k| !old_kids.contains(k)),
        "every kid rotated"
    );

    // Later verifications use the refreshed cache: no more JWKS requests.
    let refreshed = api
        .refresh(agent.tokens().clone(), Hooks::default())
        .await
        .unwrap();
    assert_eq!(refreshed.id(), "usr_alice");
    let again = login(&api, &openid).await;
    assert_eq!(again.id(), "usr_alice");
    assert_eq!(jwks_fetches(&p), base + 1, "no further refetch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_reqwest() {
    key_rotation::<authpi_idp_reqwest::IdpClient>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_hyper() {
    key_rotation::<authpi_idp_hyper::IdpClient>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_ureq() {
    key_rotation::<authpi_idp_ureq::IdpClientSync>().await;
}
