//! Served mode over real loopback sockets, driven with raw `std::net::TcpStream`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use authpi_idp_testkit::{Issuer, Served, jwt, pkce_challenge};
use serde_json::Value;

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

impl Conn {
    fn open(served: &Served) -> Conn {
        let s = TcpStream::connect(served.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }

    fn send(&mut self, raw: &str) {
        self.writer.write_all(raw.as_bytes()).unwrap();
    }

    /// Reads one response; `None` if the server closed the connection first.
    fn read(&mut self) -> Option<Resp> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
        assert!(line.starts_with("HTTP/1.1 "), "{line}");
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            headers.push((k.to_owned(), v.trim().to_owned()));
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .expect("content-length always present");
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).unwrap();
        Some(Resp {
            status,
            headers,
            body,
        })
    }

    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0) | Err(_))
    }
}

fn path(served: &Served, suffix: &str) -> String {
    let url = url::Url::parse(served.issuer_url()).unwrap();
    format!("{}{suffix}", url.path())
}

fn get(conn: &mut Conn, served: &Served, suffix: &str) -> Resp {
    let host = served.addr();
    conn.send(&format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\n\r\n",
        path(served, suffix)
    ));
    conn.read().expect("response")
}

#[test]
fn raw_request_then_keep_alive_second_request() {
    let served = Served::start_demo().unwrap();
    assert!(served.issuer_url().starts_with("http://127.0.0.1:"));
    assert!(served.issuer_url().ends_with("/i_test"));
    let mut conn = Conn::open(&served);
    let d = get(&mut conn, &served, "/.well-known/openid-configuration");
    assert_eq!(d.status, 200);
    assert_eq!(d.header("content-type"), Some("application/json"));
    assert_eq!(d.json()["issuer"], served.issuer_url());
    assert_eq!(
        d.json()["token_endpoint"],
        format!("{}/token", served.issuer_url())
    );
    // same socket, second request
    let j = get(&mut conn, &served, "/jwks.json");
    assert_eq!(j.status, 200);
    assert_eq!(j.json()["keys"].as_array().unwrap().len(), 6);
    assert_eq!(j.header("cache-control"), Some("public, max-age=3600"));
    let s = served.stats();
    assert_eq!((s.discovery_requests, s.jwks_requests), (1, 1));
}

#[test]
fn pipelined_requests_and_post_with_body() {
    let served = Served::start_demo().unwrap();
    let mut conn = Conn::open(&served);
    let body = "grant_type=client_credentials&client_id=c_m2m&client_secret=secret_m2m";
    let p = path(&served, "/token");
    // two requests written at once (pipelining)
    conn.send(&format!(
        "POST {p} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len(),
        body.len()
    ));
    for i in 0..2 {
        let r = conn.read().unwrap();
        assert_eq!(r.status, 200, "{i}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let at = r.json()["access_token"].as_str().unwrap().to_owned();
        assert_eq!(jwt::decode_claims(&at).unwrap()["sub"], "c_m2m");
        if i == 1 {
            assert_eq!(r.header("connection"), Some("close"));
        }
    }
    assert!(conn.closed(), "Connection: close honoured");
    assert_eq!(served.stats().client_credentials_requests, 2);
}

#[test]
fn malformed_requests() {
    // (raw request, expected status)
    let cases = [
        ("GARBAGE\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\n\r\n", 505),
        (
            "POST /i_test/token HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            501,
        ),
        (
            "POST /i_test/token HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            400,
        ),
        (
            "POST /i_test/token HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
            413,
        ),
        ("GET /i_test/jwks.json HTTP/1.1\r\n folded\r\n\r\n", 400),
    ];
    let served = Served::start_demo().unwrap();
    for (raw, status) in cases {
        let mut conn = Conn::open(&served);
        conn.send(raw);
        let r = conn
            .read()
            .unwrap_or_else(|| panic!("{raw:?}: no response"));
        assert_eq!(r.status, status, "{raw:?}");
        assert!(conn.closed(), "{raw:?}: connection closed after an error");
    }
    // HTTP/1.0 closes by default
    let mut conn = Conn::open(&served);
    conn.send("GET /i_test/jwks.json HTTP/1.0\r\n\r\n");
    assert_eq!(conn.read().unwrap().status, 200);
    assert!(conn.closed());
}

#[test]
fn login_flow_over_the_wire_with_virtual_clock() {
    let served = Served::start(Issuer::authpi_demo("http://127.0.0.1/custom_path")).unwrap();
    assert!(served.issuer_url().ends_with("/custom_path"));
    served.set_clock(1_767_400_000);
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let q = format!(
        "client_id=client_native&redirect_uri=http%3A%2F%2F127.0.0.1%3A6001%2Fcallback&response_type=code&scope=openid&state=s&nonce=n&code_challenge={}&code_challenge_method=S256",
        pkce_challenge(verifier)
    );
    let mut conn = Conn::open(&served);
    let r = get(&mut conn, &served, &format!("/authorize?{q}"));
    assert_eq!(r.status, 302);
    let loc = url::Url::parse(r.header("location").unwrap()).unwrap();
    assert_eq!(loc.port(), Some(6001));
    let code = loc
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    served.advance(30);
    let body = format!(
        "grant_type=authorization_code&code={code}&redirect_uri=http%3A%2F%2F127.0.0.1%3A6001%2Fcallback&code_verifier={verifier}&client_id=client_native"
    );
    conn.send(&format!(
        "POST {} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
        path(&served, "/token"),
        body.len()
    ));
    let t = conn.read().unwrap();
    assert_eq!(t.status, 200, "{}", String::from_utf8_lossy(&t.body));
    let claims = jwt::decode_claims(t.json()["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["iat"], 1_767_400_030);
    assert_eq!(claims["auth_time"], 1_767_400_000);
    assert_eq!(claims["iss"], served.issuer_url());
    assert_eq!(served.now(), 1_767_400_030);
    served.use_system_clock();
    assert!(served.now() > 1_700_000_000);
}

#[test]
fn stall_and_pushed_faults() {
    let served = Served::start_demo().unwrap();
    served.with(|idp| {
        idp.set_stall("/jwks.json", Duration::from_millis(300));
        let mut r = http::Response::new(Vec::new());
        *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
        r.headers_mut().insert("retry-after", "2".parse().unwrap());
        idp.push_response("/.well-known/openid-configuration", r);
    });
    let mut conn = Conn::open(&served);
    let start = Instant::now();
    assert_eq!(get(&mut conn, &served, "/jwks.json").status, 200);
    assert!(start.elapsed() >= Duration::from_millis(300));
    let start = Instant::now();
    let d = get(&mut conn, &served, "/.well-known/openid-configuration");
    assert!(start.elapsed() < Duration::from_millis(300), "not stalled");
    assert_eq!(d.status, 503);
    assert_eq!(d.header("retry-after"), Some("2"));
    assert_eq!(
        get(&mut conn, &served, "/.well-known/openid-configuration").status,
        200
    );
    served.set_stall("/jwks.json", Duration::ZERO);
    let start = Instant::now();
    get(&mut conn, &served, "/jwks.json");
    assert!(start.elapsed() < Duration::from_millis(300));
}

#[test]
fn concurrent_connections() {
    let served = Served::start_demo().unwrap();
    // One connection stalls; the others must not wait for it.
    served.with(|idp| idp.set_stall("/userinfo", Duration::from_secs(2)));
    let addr = served.addr();
    let p = path(&served, "/userinfo");
    let slow = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(format!("GET {p} HTTP/1.1\r\n\r\n").as_bytes())
            .unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
    });
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let p = path(&served, "/jwks.json");
            std::thread::spawn(move || {
                let s = TcpStream::connect(addr).unwrap();
                let mut c = Conn {
                    reader: BufReader::new(s.try_clone().unwrap()),
                    writer: s,
                };
                for _ in 0..5 {
                    c.send(&format!("GET {p} HTTP/1.1\r\n\r\n"));
                    assert_eq!(c.read().unwrap().status, 200);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(served.stats().jwks_requests, 40);
    drop(served); // stops the stalled connection too
    slow.join().unwrap();
}

#[test]
fn drop_stops_the_listener_and_closes_connections() {
    let served = Served::start_demo().unwrap();
    let addr = served.addr();
    let mut conn = Conn::open(&served);
    assert_eq!(get(&mut conn, &served, "/jwks.json").status, 200);
    let start = Instant::now();
    drop(served);
    assert!(start.elapsed() < Duration::from_secs(2), "drop is prompt");
    assert!(conn.closed(), "idle keep-alive connection closed");
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "listener gone"
    );
}
