//! The device authorization grant (RFC 8628) against oidc-provider: the core's sans-IO
//! [`DevicePoll`] driven over a plain blocking transport, while a second thread plays the user
//! who enters the code in a browser. (The CLI's `login --device` is tested against the same
//! provider in `cli/tests/device.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use authpi_idp::flow::Discovered;
use authpi_idp::flow::device::{self, DeviceAuthorization, DevicePoll, DeviceStep};
use authpi_idp::{Agent, Client, ClientAuth, Config, Error, KeySet, Operation, Step, UnixTime};
use authpi_idp_interop::{Browser, Provider};
use authpi_idp_ureq::{TransportOptions, UreqTransport};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> UnixTime {
    UnixTime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
}

fn discover(p: &Provider) -> (Client, KeySet, UreqTransport) {
    let config = Config::builder(p.issuer(), "client_device")
        .client_auth(ClientAuth::None)
        .build()
        .unwrap();
    let transport = UreqTransport::new(TransportOptions::default());
    let mut op = Client::discover(config);
    loop {
        match op.poll(now()).unwrap() {
            Step::Send(out) => op.handle_response(transport.send(out.request).unwrap()),
            Step::Done(Discovered { client, keys, .. }) => return (client, keys, transport),
            _ => {}
        }
    }
}

/// The `value` of the hidden input `name` in an HTML page.
fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in: {body}"))
        + marker.len();
    body[start..].split('"').next().unwrap().to_owned()
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The user: opens the verification page, enters the code, confirms (or aborts), and goes
/// through the provider's login and consent (finished by provider.mjs's interaction route).
fn user_enters_code(verification_uri: &str, user_code: &str, approve: bool) {
    let mut browser = Browser::new();
    let page = browser.request(verification_uri, None);
    assert_eq!(page.status, 200, "{}", page.body);
    let xsrf = hidden(&page.body, "xsrf");
    let page = browser.request(
        verification_uri,
        Some(&form(&[("xsrf", &xsrf), ("user_code", user_code)])),
    );
    assert_eq!(page.status, 200, "{}", page.body);
    let xsrf = hidden(&page.body, "xsrf");
    let decision = if approve {
        ("confirm", "yes")
    } else {
        ("abort", "yes")
    };
    let mut page = browser.request(
        verification_uri,
        Some(&form(&[
            ("xsrf", &xsrf),
            ("user_code", user_code),
            decision,
        ])),
    );
    for _ in 0..10 {
        let Some(next) = page.location.clone() else {
            break;
        };
        page = browser.request(&next, None);
    }
    assert_eq!(page.status, 200, "{}", page.body);
}

enum Outcome {
    Agent(Box<Agent>),
    Error(Error),
}

/// Drives the poll with the real clock; returns the outcome and the token requests sent.
fn drive(
    client: &Client,
    keys: &KeySet,
    transport: &UreqTransport,
    auth: &DeviceAuthorization,
) -> (Outcome, usize) {
    let mut poll = DevicePoll::new(client, auth, keys, now());
    let mut polls = 0;
    loop {
        match poll.poll(now()) {
            Err(e) => return (Outcome::Error(e), polls),
            Ok(DeviceStep::Wait { until }) => {
                let secs = until.as_secs().saturating_sub(now().as_secs()).max(1);
                std::thread::sleep(Duration::from_secs(secs));
            }
            Ok(DeviceStep::Send(out)) => {
                polls += usize::from(out.kind == authpi_idp::RequestKind::DeviceCode);
                poll.handle_response(transport.send(out.request).unwrap());
            }
            Ok(DeviceStep::Done(agent)) => return (Outcome::Agent(Box::new(agent)), polls),
            Ok(DeviceStep::KeysRefreshed(_)) => {}
        }
    }
}

fn start(p: &Provider) -> (Client, KeySet, UreqTransport, DeviceAuthorization) {
    let (client, keys, transport) = discover(p);
    let out = device::request(&client, ["openid", "email", "offline_access"]).unwrap();
    assert_eq!(
        out.request.uri().path(),
        "/device/auth",
        "the endpoint comes from discovery"
    );
    let resp = transport.send(out.request).unwrap();
    let auth = DeviceAuthorization::from_response(&client, &resp, now()).unwrap();
    assert_eq!(auth.interval(), 5, "oidc-provider's default interval");
    (client, keys, transport, auth)
}

#[test]
fn device_login_is_approved_and_the_id_token_verified() {
    let p = Provider::shared();
    let (client, keys, transport, auth) = start(p);
    let (uri, code) = (
        auth.verification_uri().to_string(),
        auth.user_code().to_owned(),
    );
    // The user approves a little after the first poll went out (so that at least one
    // `authorization_pending` is seen).
    let user = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        user_enters_code(&uri, &code, true);
    });
    let (outcome, polls) = drive(&client, &keys, &transport, &auth);
    user.join().unwrap();
    let agent = match outcome {
        Outcome::Agent(a) => a,
        Outcome::Error(e) => panic!("{e} ({e:?})\n{}", p.stderr()),
    };
    assert_eq!(agent.id(), "usr_alice");
    assert_eq!(agent.email(), Some("alice@example.com"));
    assert!(agent.tokens().refresh_token.is_some());
    assert!(agent.tokens().id_token.is_some());
    assert!(
        polls >= 2,
        "the first poll must have been pending ({polls} polls)"
    );
}

#[test]
fn device_login_aborted_by_the_user_is_access_denied() {
    let p = Provider::shared();
    let (client, keys, transport, auth) = start(p);
    user_enters_code(auth.verification_uri().as_ref(), auth.user_code(), false);
    let (outcome, _) = drive(&client, &keys, &transport, &auth);
    match outcome {
        Outcome::Error(e) => assert_eq!(e.code(), "access_denied", "{e:?}"),
        Outcome::Agent(_) => panic!("an aborted device login produced an agent"),
    }
}
