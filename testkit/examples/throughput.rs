//! Rough throughput of the testkit itself: `cargo run --release -p authpi-idp-testkit --example throughput`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use authpi_idp_testkit::{Alg, Client, Issuer, Served, pkce_challenge};
use http::Request;

const ISS: &str = "https://idp.test/i_b";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const N: u32 = 2000;

fn login(idp: &mut Issuer, client: &str, now: u64) -> String {
    let q = format!(
        "client_id={client}&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&response_type=code&scope=openid%20email&state=s&nonce=n&code_challenge={}&code_challenge_method=S256",
        pkce_challenge(VERIFIER)
    );
    let r = idp.handle(
        Request::get(format!("{ISS}/authorize?{q}"))
            .body(Vec::new())
            .unwrap(),
        now,
    );
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let code = url::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let body = format!(
        "grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&code_verifier={VERIFIER}&client_id={client}&client_secret=s"
    );
    let r = idp.handle(
        Request::post(format!("{ISS}/token"))
            .body(body.into_bytes())
            .unwrap(),
        now,
    );
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
    v["refresh_token"].as_str().unwrap().to_owned()
}

fn main() {
    let mut b = Issuer::builder(ISS)
        .user(authpi_idp_testkit::User::new("usr_a").email("a@example.com", true));
    for alg in [Alg::Es256, Alg::EdDsa, Alg::Rs256] {
        b = b.client(
            Client::confidential(alg.as_str(), "s", &["https://app.example.com/callback"]).alg(alg),
        );
    }
    let mut idp = b.build().unwrap();
    for alg in [Alg::Es256, Alg::EdDsa, Alg::Rs256] {
        let t = Instant::now();
        let mut rt = String::new();
        for i in 0..N {
            rt = login(&mut idp, alg.as_str(), 1_767_400_000 + u64::from(i));
        }
        let per = t.elapsed() / N;
        let t = Instant::now();
        for i in 0..N {
            let body = format!(
                "grant_type=refresh_token&refresh_token={rt}&client_id={}&client_secret=s",
                alg.as_str()
            );
            let r = idp.handle(
                Request::post(format!("{ISS}/token"))
                    .body(body.into_bytes())
                    .unwrap(),
                1_767_410_000 + u64::from(i),
            );
            let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
            rt = v["refresh_token"].as_str().unwrap().to_owned();
        }
        println!(
            "{alg}: login (authorize+code exchange, 3 signatures) {per:?}; refresh {:?}",
            t.elapsed() / N
        );
    }

    let served = Served::start_demo().unwrap();
    let s = TcpStream::connect(served.addr()).unwrap();
    s.set_nodelay(true).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let t = Instant::now();
    for _ in 0..N {
        w.write_all(b"GET /i_test/.well-known/openid-configuration HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length: ") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
    }
    println!(
        "served: discovery GET over keep-alive {:?} per request",
        t.elapsed() / N
    );
}
