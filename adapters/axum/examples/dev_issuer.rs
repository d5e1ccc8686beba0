//! A local AuthPI-compatible issuer for the `service` example (the testkit's served issuer)
//! until `authpi-idp issuer serve` is available: the demo fixture (`usr_alice` in `org_acme`
//! with `projects:**`, `client_web` / `secret_web`, `c_m2m` / `secret_m2m` with
//! `reports:read`), logins auto-approved as `usr_alice`, one log line per request, and
//! back-channel logout delivered to `APP_URL/backchannel-logout`.
//!
//! `ISSUER_PORT` (default 9090) and `APP_URL` (default `http://127.0.0.1:3000`) configure it:
//! the same URLs as `authpi-idp issuer serve --port 9090 --config testkit/dev-issuer.toml`.
//! `cargo run -p authpi-idp-axum --example dev_issuer`
use authpi_idp_testkit::{Client, Issuer, ServeOptions, Served};
use std::net::SocketAddr;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("ISSUER_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(9090);
    let app = std::env::var("APP_URL").unwrap_or_else(|_| "http://127.0.0.1:3000".to_owned());
    let builder = Issuer::authpi_demo("http://127.0.0.1/i_dev")
        .current_user("usr_alice")
        .client(
            Client::confidential("client_web", "secret_web", &["http://127.0.0.1/callback"])
                .post_logout_redirect_uri(&format!("{app}/"))
                .backchannel_logout_uri(&format!("{app}/backchannel-logout")),
        );
    let options = ServeOptions::default()
        .bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .log_requests(true);
    let served = Served::start_with(builder, options)?;
    println!("issuer: {}", served.issuer_url());
    println!("client: client_web / secret_web (redirect http://127.0.0.1:<any port>/callback)");
    println!("end the browser's provider session (back-channel logout): type `end` + Enter");
    for line in std::io::stdin().lines() {
        if line?.trim() == "end" {
            match served.with(|i| i.session_id().map(str::to_owned)) {
                Some(sid) => println!("{:?}", served.end_session(&sid)?),
                None => println!("no provider session"),
            }
        }
    }
    // stdin closed (e.g. started in the background): serve until killed.
    loop {
        std::thread::park();
    }
}
