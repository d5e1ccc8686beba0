//! The sans-IO seam: drive the core with a dozen lines of HTTP/1.1 over `std::net::TcpStream`
//! (plain http, loopback only: this is a demonstration, not a transport to ship). Runs against
//! the embedded testkit issuer.
//!
//! `cargo run -p authpi-idp-async --example sans_io_tcp`
use authpi_idp::{Client, Config, KeySet, Operation, Step, UnixTime};
use authpi_idp_testkit::Served;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

type BoxError = Box<dyn std::error::Error>;

/// One request, `Connection: close`, `Content-Length` bodies only.
fn send(req: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, BoxError> {
    let uri = req.uri();
    let authority = uri.authority().ok_or("absolute URI expected")?.as_str();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut stream = TcpStream::connect(authority)?;
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n",
        req.method()
    );
    for (name, value) in req.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str()?));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", req.body().len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(req.body())?;

    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .ok_or("bad status line")?
        .parse()?;
    let mut builder = http::Response::builder().status(status);
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse()?;
        }
        builder = builder.header(name, value.trim());
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(builder.body(body)?)
}

/// The loop every driver runs.
fn run<O: Operation>(mut op: O, keys: &mut KeySet) -> Result<O::Output, BoxError> {
    loop {
        let now = UnixTime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs(),
        );
        match op.poll(now)? {
            Step::Send(out) => op.handle_response(send(out.request)?),
            Step::Persist(tokens) => {
                println!("persist rotated tokens ({} bytes)", tokens.to_json().len())
            }
            Step::KeysRefreshed(k) => *keys = k,
            Step::Done(output) => return Ok(output),
        }
    }
}

fn main() -> Result<(), BoxError> {
    let served = Served::start_demo()?;
    let config = Config::builder(served.issuer_url(), "c_m2m")
        .client_secret("secret_m2m")
        .build()?;
    let discovered = run(Client::discover(config), &mut KeySet::empty())?;
    let (client, mut keys) = (discovered.client, discovered.keys);
    println!("discovered {} ({} keys)", client.issuer(), keys.len());

    let agent = run(client.client_credentials(["reports:read"], &[])?, &mut keys)?;
    println!(
        "{} may read reports: {}",
        agent.id(),
        agent.has_access("read", "reports")
    );

    let token = agent.tokens().access_token.clone();
    let info = run(
        client.validate_access_token(&token, "c_m2m", &keys),
        &mut keys,
    )?;
    println!(
        "access token valid for {} (jti {})",
        info.client_id, info.jti
    );
    let introspection = run(client.introspect(&token, None)?, &mut keys)?;
    println!("introspection: active = {}", introspection.active);
    Ok(())
}
