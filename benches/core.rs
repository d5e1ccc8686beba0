//! Criterion benchmarks of the core's hot paths. Run: `cargo bench --bench core`.
//!
//! Every input is real: tokens, JWKS and discovery come from the embedded AuthPI issuer
//! (testkit); key sets are prepared and fresh, so no JWKS request happens while measuring.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "fixture.rs"]
mod fixture;

use authpi_idp::{AuthorizationRequest, KeySet, Operation, ProviderMetadata, Step, UnixTime};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use fixture::{ALGS, ISSUER, Login, NOW};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use std::hint::black_box;

fn authorization_url(c: &mut Criterion) {
    let client = fixture::client("client_es");
    let request = AuthorizationRequest::new(["openid", "email", "profile"]);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    c.bench_function("authorization_url", |b| {
        b.iter(|| {
            client
                .authorization_url(black_box(&request), &mut rng)
                .unwrap()
        })
    });
}

fn exchange(c: &mut Criterion) {
    let mut issuer = fixture::issuer();
    let (_, keys) = fixture::jwks(&mut issuer);
    let mut g = c.benchmark_group("exchange");
    for (alg, _) in ALGS {
        let login = Login::new(&mut issuer, &keys, alg);
        // The whole callback handling: callback checks + token request, token response,
        // full ID-token validation, agent.
        g.bench_function(BenchmarkId::new("callback_to_agent", alg), |b| {
            b.iter_batched(
                || fixture::copy_response(&login.token_response),
                |resp| {
                    let mut op = login
                        .client
                        .exchange_callback(login.callback.as_str(), &login.tx, &login.keys)
                        .unwrap();
                    let Step::Send(out) = op.poll(NOW).unwrap() else {
                        panic!()
                    };
                    black_box(out);
                    op.handle_response(resp);
                    match op.poll(NOW).unwrap() {
                        Step::Done(agent) => agent,
                        _ => panic!(),
                    }
                },
                BatchSize::SmallInput,
            )
        });
        // Only token response → agent (the request is built in the untimed setup).
        g.bench_function(BenchmarkId::new("token_response_to_agent", alg), |b| {
            b.iter_batched(
                || login.exchange_ready(),
                fixture::Ready::finish,
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn rebuild_agent(c: &mut Criterion) {
    let mut issuer = fixture::issuer();
    let (_, keys) = fixture::jwks(&mut issuer);
    let client = fixture::client("client_es");
    let mut g = c.benchmark_group("create_agent");
    for n in [2usize, 50] {
        let stored = fixture::stored_session(&issuer, n);
        let len = fixture::id_token_len(&stored);
        let agent = fixture::rebuild(&client, &keys, &stored);
        assert_eq!(agent.organizations().len(), n);
        g.bench_function(
            BenchmarkId::new("from_stored_json", format!("{n}_orgs_{len}B_id_token")),
            |b| b.iter(|| fixture::rebuild(&client, &keys, black_box(&stored))),
        );
        assert_eq!(yardstick::typed_parse(&stored).organizations.len(), n);
        g.bench_function(
            BenchmarkId::new("typed_serde_yardstick", format!("{n}_orgs_{len}B_id_token")),
            |b| b.iter(|| yardstick::typed_parse(black_box(&stored))),
        );
    }
    g.finish();
}

#[path = "yardstick.rs"]
mod yardstick;

fn has_access_in(c: &mut Criterion) {
    let mut issuer = fixture::issuer();
    let (_, keys) = fixture::jwks(&mut issuer);
    let client = fixture::client("client_es");
    let mut g = c.benchmark_group("has_access_in");
    for n in [1usize, 50, 1000] {
        let agent = fixture::rebuild(&client, &keys, &fixture::stored_session(&issuer, n));
        let last = format!("org_{:03}", if n == 1 { 0 } else { (n - 2) & !1 });
        // Deep wildcard grant in an org near the end of the list, and a denial.
        assert!(agent.has_access_in(&last, "delete", "projects.tasks"));
        assert!(!agent.has_access_in(&last, "write", "users"));
        g.bench_function(BenchmarkId::new("granted_deep", n), |b| {
            b.iter(|| {
                agent.has_access_in(
                    black_box(&last),
                    black_box("delete"),
                    black_box("projects.tasks"),
                )
            })
        });
        g.bench_function(BenchmarkId::new("denied", n), |b| {
            b.iter(|| agent.has_access_in(black_box(&last), black_box("write"), black_box("users")))
        });
    }
    g.finish();
}

/// `ScopeSet::allows` on request-derived resources: a long dotted resource under `R:**` scopes
/// (linear in its length, ~1 KB at most), and a 64 KB one (denied before any work).
fn scope_long_resource(c: &mut Criterion) {
    use authpi_idp::scope::{MAX_RESOURCE_LEN, ScopeSet};
    let set = ScopeSet::new(["projects:**", "users:read", "billing.invoices:**", "*:list"]);
    let longest = format!("{}a", "a.".repeat(MAX_RESOURCE_LEN / 2 - 1));
    let huge = "a.".repeat(32 * 1024);
    assert!(!set.allows("read", &longest) && !set.allows("read", &huge));
    let deep = format!("projects.{}", "a.".repeat(500));
    let deep = deep.trim_end_matches('.');
    assert!(set.allows("read", deep));
    let mut g = c.benchmark_group("scope_allows");
    g.bench_function("denied_1k_dotted", |b| {
        b.iter(|| set.allows(black_box("read"), black_box(&longest)))
    });
    g.bench_function("granted_1k_dotted", |b| {
        b.iter(|| set.allows(black_box("read"), black_box(deep)))
    });
    g.bench_function("denied_64k_dotted", |b| {
        b.iter(|| set.allows(black_box("read"), black_box(&huge)))
    });
    g.finish();
}

fn parsing(c: &mut Criterion) {
    let mut issuer = fixture::issuer();
    let (jwks, _) = fixture::jwks(&mut issuer);
    c.bench_function("jwks_from_json_6_keys", |b| {
        b.iter(|| KeySet::from_json(black_box(&jwks), NOW, 3600).unwrap())
    });
    let discovery = fixture::get(&mut issuer, "/.well-known/openid-configuration");
    assert_eq!(discovery.status(), 200);
    c.bench_function("discovery_from_response", |b| {
        b.iter(|| ProviderMetadata::from_response(black_box(&discovery), ISSUER, NOW).unwrap())
    });
}

fn access_token(c: &mut Criterion) {
    let mut issuer = fixture::issuer();
    let (_, keys) = fixture::jwks(&mut issuer);
    let mut g = c.benchmark_group("validate_access_token");
    for (alg, client_id) in ALGS {
        let login = Login::new(&mut issuer, &keys, alg);
        let token = login.token_member("access_token");
        let run = |now: UnixTime| {
            let mut op = login.client.validate_access_token(&token, client_id, &keys);
            match op.poll(now).unwrap() {
                Step::Done(info) => info,
                _ => panic!(),
            }
        };
        assert_eq!(run(NOW).agent.id(), "usr_alice");
        g.bench_function(BenchmarkId::from_parameter(alg), |b| b.iter(|| run(NOW)));
    }
    g.finish();
}

criterion_group!(
    benches,
    authorization_url,
    exchange,
    rebuild_agent,
    has_access_in,
    scope_long_resource,
    parsing,
    access_token
);
criterion_main!(benches);
